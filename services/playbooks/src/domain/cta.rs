//! Calls to action: what they are and the rules of their life — one open
//! CTA per playbook and account, raised by a repeat firing; snoozed CTAs
//! wake by themselves; closing needs an outcome.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

named!(CtaType { Risk = "risk", Opportunity = "opportunity", Lifecycle = "lifecycle", Objective = "objective" });
named!(Priority { Low = "low", Medium = "medium", High = "high", Critical = "critical" });
named!(Status { Open = "open", InProgress = "in_progress", Snoozed = "snoozed", Closed = "closed" });
named!(Outcome { Resolved = "resolved", NotNeeded = "not_needed", Lost = "lost" });

impl Priority {
    /// Stored as a number so that lists order by it.
    pub(crate) fn rank(self) -> i32 {
        match self {
            Priority::Low => 1,
            Priority::Medium => 2,
            Priority::High => 3,
            Priority::Critical => 4,
        }
    }

    pub(crate) fn from_rank(r: i32) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.rank() == r)
    }

    /// One level up, at most critical.
    pub(crate) fn raised(self) -> Self {
        Self::from_rank((self.rank() + 1).min(4)).unwrap_or(Priority::Critical)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Task {
    pub id: String,
    pub title: String,
    pub done: bool,
    pub done_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Reason {
    pub time: DateTime<Utc>,
    pub text: String,
    pub playbook_id: Option<Uuid>,
    pub trigger_event_id: Option<String>,
}

/// The most reasons a CTA keeps: a CTA raised every day for a year stays readable.
pub(crate) const MAX_REASONS: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cta {
    pub id: Uuid,
    pub account_id: Uuid,
    pub playbook_id: Option<Uuid>,
    pub playbook_version: i64,
    pub cta_type: CtaType,
    pub priority: Priority,
    pub status: Status,
    pub title: String,
    pub description: String,
    pub owner_id: String,
    pub due_date: Option<NaiveDate>,
    pub tasks: Vec<Task>,
    pub reasons: Vec<Reason>,
    pub snooze_until: Option<DateTime<Utc>>,
    pub outcome: Option<Outcome>,
    pub close_note: String,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub close_time: Option<DateTime<Utc>>,
    pub version: i64,
}

impl Cta {
    /// The key that keeps one open CTA per playbook and account.
    pub(crate) fn open_key(&self) -> Option<String> {
        match (self.status, self.playbook_id) {
            (Status::Closed, _) | (_, None) => None,
            (_, Some(p)) => Some(open_key(p, self.account_id)),
        }
    }

    /// The status a reader sees: a snoozed CTA whose time has come is open.
    pub(crate) fn effective_status(&self, now: DateTime<Utc>) -> Status {
        match (self.status, self.snooze_until) {
            (Status::Snoozed, Some(t)) if t <= now => Status::Open,
            (s, _) => s,
        }
    }

    /// A repeat firing: the problem persists. Adds its reason and raises the
    /// priority to the action's, or one level when it is already there.
    pub(crate) fn raise(&mut self, reason: Reason, priority: Priority) -> Vec<&'static str> {
        let mut changed = vec!["reasons"];
        let next = if priority > self.priority { priority } else { self.priority.raised() };
        if next != self.priority {
            self.priority = next;
            changed.push("priority");
        }
        self.reasons.push(reason);
        if self.reasons.len() > MAX_REASONS {
            let extra = self.reasons.len() - MAX_REASONS;
            self.reasons.drain(..extra);
        }
        changed
    }

    pub(crate) fn close(&mut self, outcome: Outcome, note: String, now: DateTime<Utc>) {
        self.status = Status::Closed;
        self.outcome = Some(outcome);
        self.close_note = note;
        self.close_time = Some(now);
        self.snooze_until = None;
    }
}

pub(crate) fn open_key(playbook: Uuid, account: Uuid) -> String {
    format!("{playbook}/{account}")
}

/// Tasks from a checklist of titles, numbered t1, t2, …
pub(crate) fn tasks_from(titles: &[String]) -> Vec<Task> {
    titles
        .iter()
        .enumerate()
        .map(|(i, t)| Task { id: format!("t{}", i + 1), title: t.clone(), done: false, done_time: None })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cta(priority: Priority) -> Cta {
        let t = Utc::now();
        Cta {
            id: Uuid::now_v7(),
            account_id: Uuid::now_v7(),
            playbook_id: Some(Uuid::now_v7()),
            playbook_version: 1,
            cta_type: CtaType::Risk,
            priority,
            status: Status::Open,
            title: "t".into(),
            description: String::new(),
            owner_id: String::new(),
            due_date: None,
            tasks: vec![],
            reasons: vec![],
            snooze_until: None,
            outcome: None,
            close_note: String::new(),
            create_time: t,
            update_time: t,
            close_time: None,
            version: 1,
        }
    }

    fn reason() -> Reason {
        Reason { time: Utc::now(), text: "again".into(), playbook_id: None, trigger_event_id: None }
    }

    #[test]
    fn a_repeat_firing_raises_one_level_or_to_the_actions_priority() {
        let mut c = cta(Priority::Medium);
        assert_eq!(c.raise(reason(), Priority::Medium), vec!["reasons", "priority"]);
        assert_eq!(c.priority, Priority::High);
        c.raise(reason(), Priority::Low);
        assert_eq!(c.priority, Priority::Critical);
        assert_eq!(c.raise(reason(), Priority::Low), vec!["reasons"]);
        assert_eq!(c.priority, Priority::Critical);
        let mut c = cta(Priority::Low);
        c.raise(reason(), Priority::Critical);
        assert_eq!(c.priority, Priority::Critical);
        assert_eq!(c.reasons.len(), 1);
    }

    #[test]
    fn reasons_are_capped_oldest_first() {
        let mut c = cta(Priority::Low);
        for _ in 0..MAX_REASONS + 5 {
            c.raise(reason(), Priority::Low);
        }
        assert_eq!(c.reasons.len(), MAX_REASONS);
    }

    #[test]
    fn a_closed_or_manual_cta_has_no_open_key_and_snoozes_wake() {
        let mut c = cta(Priority::Low);
        assert!(c.open_key().is_some());
        c.status = Status::Snoozed;
        c.snooze_until = Some(Utc::now() - chrono::Duration::minutes(1));
        assert_eq!(c.effective_status(Utc::now()), Status::Open);
        assert!(c.open_key().is_some());
        c.close(Outcome::Resolved, "done".into(), Utc::now());
        assert_eq!(c.open_key(), None);
        let mut m = cta(Priority::Low);
        m.playbook_id = None;
        assert_eq!(m.open_key(), None);
    }
}
