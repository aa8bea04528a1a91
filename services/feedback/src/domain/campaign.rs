//! Campaigns: whom a survey goes to, when, and the throttle that keeps a
//! contact from being asked again too soon.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    LifecycleStage,
    projection::{Contact, Level, Projected},
    survey::Kind,
};

named!(State { Scheduled = "scheduled", Active = "active", Closed = "closed" });
named!(Status { Sent = "sent", Delivered = "delivered", Answered = "answered", Expired = "expired", Failed = "failed" });

/// Default days a contact is not invited again to a survey of the same kind.
pub(crate) const DEFAULT_THROTTLE_DAYS: i32 = 90;
/// Default days an invitation's token is valid.
pub(crate) const DEFAULT_TOKEN_DAYS: i32 = 14;
/// Most accounts a campaign lists by id.
pub(crate) const MAX_ACCOUNT_IDS: usize = 1000;

/// Which contacts of the selected accounts are invited; empty narrows nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ContactSelector {
    pub levels: Vec<Level>,
    pub champions_only: bool,
    pub decision_makers_only: bool,
    /// Lower case.
    pub departments: Vec<String>,
}

impl ContactSelector {
    pub(crate) fn selects(&self, c: &Contact) -> bool {
        (self.levels.is_empty() || c.level.is_some_and(|l| self.levels.contains(&l)))
            && (!self.champions_only || c.champion)
            && (!self.decision_makers_only || c.decision_maker)
            && (self.departments.is_empty() || self.departments.contains(&c.department.trim().to_lowercase()))
    }
}

/// When a campaign invites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Schedule {
    /// Everyone selected, once, at this time.
    Once { send_time: DateTime<Utc> },
    /// Each selected account `days` after it entered `stage`.
    AfterStage { stage: LifecycleStage, days: i32 },
    /// Each selected account `days` before its renewal date.
    BeforeRenewal { days: i32 },
}

impl Schedule {
    pub(crate) fn is_standing(&self) -> bool {
        !matches!(self, Schedule::Once { .. })
    }

    /// The day a standing schedule invites `a` (`stage_day`: the day it
    /// entered its stage), if it has one now: `days` into the schedule's
    /// stage while the account is in it, or `days` before its renewal date.
    pub(crate) fn due_day(&self, a: &Projected, stage_day: NaiveDate) -> Option<NaiveDate> {
        match *self {
            Schedule::Once { .. } => None,
            Schedule::AfterStage { stage, days } => {
                (a.account.lifecycle_stage == stage).then(|| stage_day + Duration::days(i64::from(days)))
            }
            Schedule::BeforeRenewal { days } => a.account.renewal_date.map(|r| r - Duration::days(i64::from(days))),
        }
    }

    /// The cycle a run on `today` invites `a` for, if any: its due day,
    /// once it has come. After a stage, only days from the campaign's
    /// creation on (`created`): accounts long in the stage are not swept
    /// up; before a renewal, while the renewal is still ahead. A missed
    /// day is caught up by the next run; an account is invited once a
    /// cycle (a later renewal, a stage entered again, is a new one).
    pub(crate) fn due(
        &self,
        a: &Projected,
        stage_day: NaiveDate,
        created: NaiveDate,
        today: NaiveDate,
    ) -> Option<NaiveDate> {
        let day = self.due_day(a, stage_day)?;
        let open = match self {
            Schedule::BeforeRenewal { .. } => a.account.renewal_date.is_some_and(|r| today <= r),
            _ => day >= created,
        };
        (day <= today && open).then_some(day)
    }
}

/// What a person writes of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Body {
    pub display_name: String,
    pub segment_id: Option<Uuid>,
    pub account_ids: Vec<Uuid>,
    pub contacts: ContactSelector,
    pub schedule: Schedule,
    pub token_valid_days: i32,
    /// A Playbooks webhook endpoint that delivers the invitations; `None`:
    /// the caller delivers them.
    #[serde(default)]
    pub delivery_endpoint_id: Option<Uuid>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub invited: i64,
    pub throttled: i64,
    pub delivered: i64,
    pub answered: i64,
    /// Failed deliveries not delivered since.
    pub failed: i64,
    pub accounts_without_contacts: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Campaign {
    pub id: Uuid,
    pub survey_id: Uuid,
    pub kind: Kind,
    pub body: Body,
    pub state: State,
    /// None for a standing campaign until it is closed.
    pub close_time: Option<DateTime<Utc>>,
    pub counts: Counts,
    pub created_by: String,
    pub create_time: DateTime<Utc>,
    /// When a standing campaign last looked for accounts that came due.
    pub last_run: Option<DateTime<Utc>>,
}

impl Campaign {
    /// Whether it takes predictions and new invitations at `now`.
    pub(crate) fn open_at(&self, now: DateTime<Utc>) -> bool {
        self.state != State::Closed && self.close_time.is_none_or(|t| now < t)
    }
}

/// One contact's invitation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Invitation {
    pub id: Uuid,
    pub campaign_id: Uuid,
    pub survey_id: Uuid,
    pub kind: Kind,
    pub account_id: Uuid,
    pub contact_id: Uuid,
    /// The day it is for: the send day, or a standing campaign's due day.
    pub cycle: NaiveDate,
    pub email: String,
    pub send_time: DateTime<Utc>,
    pub deliver_time: Option<DateTime<Utc>>,
    pub answer_time: Option<DateTime<Utc>>,
    pub expire_time: DateTime<Utc>,
    /// Its delivery's last failure, if Playbooks' outreach gave up.
    pub failure: Option<Failure>,
}

/// A delivery Playbooks gave up on (its OutreachFailed).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub at: DateTime<Utc>,
    /// The last attempt's error and the attempts made, as reported.
    pub error: String,
}

impl Invitation {
    /// Answered; failed (never delivered, whatever its expiry: it never
    /// reached the contact); expired; delivered; sent.
    pub(crate) fn status(&self, now: DateTime<Utc>) -> Status {
        if self.answer_time.is_some() {
            Status::Answered
        } else if self.deliver_time.is_none() && self.failure.is_some() {
            Status::Failed
        } else if now >= self.expire_time {
            Status::Expired
        } else if self.deliver_time.is_some() {
            Status::Delivered
        } else {
            Status::Sent
        }
    }
}

/// Whether a contact last invited to this kind at `last` is still within
/// the throttle of `days` at `now` (0 days: never throttled).
pub(crate) fn throttled(last: Option<DateTime<Utc>>, days: i32, now: DateTime<Utc>) -> bool {
    days > 0 && last.is_some_and(|t| now - t < Duration::days(i64::from(days)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{TouchModel, projection::Account};

    fn projected(stage: LifecycleStage, renewal: Option<NaiveDate>) -> Projected {
        Projected {
            account: Account {
                id: Uuid::nil(),
                name: "a".into(),
                external_id: None,
                lifecycle_stage: stage,
                touch_model: TouchModel::High,
                arr_currency: None,
                arr_minor: None,
                renewal_date: renewal,
                contract_start_date: None,
                industry: String::new(),
                employee_count: None,
                revenue_band: String::new(),
                region: String::new(),
                plan_tier: String::new(),
                owner_id: String::new(),
                tags: vec![],
                attributes: Default::default(),
            },
            stage_since: DateTime::UNIX_EPOCH,
            band: None,
            score: None,
            plan_outcome: None,
        }
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// "30 days after onboarding ends" is 30 days into adoption; "90 days
    /// before renewal" holds from that day to the renewal date.
    #[test]
    fn standing_schedules_come_due() {
        let after = Schedule::AfterStage { stage: LifecycleStage::Adoption, days: 30 };
        let a = projected(LifecycleStage::Adoption, None);
        let (entered, created) = (day("2026-01-01"), day("2026-01-10"));
        assert_eq!(after.due(&a, entered, created, day("2026-01-30")), None);
        assert_eq!(after.due(&a, entered, created, day("2026-01-31")), Some(day("2026-01-31")));
        assert_eq!(
            after.due(&a, entered, created, day("2026-03-01")),
            Some(day("2026-01-31")),
            "a missed day is caught up"
        );
        assert_eq!(
            after.due(&a, day("2025-01-01"), created, day("2026-03-01")),
            None,
            "not swept up from before the campaign"
        );
        assert_eq!(after.due(&projected(LifecycleStage::Onboarding, None), entered, created, day("2026-03-01")), None);
        let before = Schedule::BeforeRenewal { days: 90 };
        let r = projected(LifecycleStage::Renewal, Some(day("2026-06-30")));
        assert_eq!(before.due(&r, entered, created, day("2026-03-31")), None);
        assert_eq!(before.due(&r, entered, created, day("2026-04-01")), Some(day("2026-04-01")));
        assert_eq!(
            before.due(&r, entered, day("2026-05-01"), day("2026-06-30")),
            Some(day("2026-04-01")),
            "renewals ahead are taken whenever the campaign began"
        );
        assert_eq!(before.due(&r, entered, created, day("2026-07-01")), None, "past the renewal: the next one decides");
        assert_eq!(before.due(&projected(LifecycleStage::Renewal, None), entered, created, day("2026-06-30")), None);
    }

    #[test]
    fn the_throttle_counts_days_from_the_last_invitation() {
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        assert!(!throttled(None, 90, t0));
        assert!(throttled(Some(t0), 90, t0 + Duration::days(89)));
        assert!(!throttled(Some(t0), 90, t0 + Duration::days(90)));
        assert!(!throttled(Some(t0), 0, t0), "0 days: no throttle");
    }

    #[test]
    fn contacts_are_selected_by_level_role_and_department() {
        let c = Contact {
            id: Uuid::nil(),
            account_id: Uuid::nil(),
            name: "n".into(),
            email: "e@x".into(),
            department: " Finance ".into(),
            level: Some(Level::Manager),
            champion: true,
            decision_maker: false,
        };
        assert!(ContactSelector::default().selects(&c));
        let s = |levels: Vec<Level>, champ, dm, deps: &[&str]| ContactSelector {
            levels,
            champions_only: champ,
            decision_makers_only: dm,
            departments: deps.iter().map(|d| d.to_string()).collect(),
        };
        assert!(s(vec![Level::Manager, Level::Executive], true, false, &["finance"]).selects(&c));
        assert!(!s(vec![Level::Executive], false, false, &[]).selects(&c));
        assert!(!s(vec![], false, true, &[]).selects(&c));
        assert!(!s(vec![], false, false, &["it"]).selects(&c));
    }

    #[test]
    fn an_invitation_is_answered_expired_delivered_or_sent() {
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut i = Invitation {
            id: Uuid::nil(),
            campaign_id: Uuid::nil(),
            survey_id: Uuid::nil(),
            kind: Kind::Nps,
            account_id: Uuid::nil(),
            contact_id: Uuid::nil(),
            cycle: day("2026-01-01"),
            email: String::new(),
            send_time: t0,
            deliver_time: None,
            answer_time: None,
            expire_time: t0 + Duration::days(14),
            failure: None,
        };
        assert_eq!(i.status(t0), Status::Sent);
        // A failed delivery stays failed past the expiry, until delivered.
        i.failure = Some(Failure { at: t0, error: "HTTP 503".into() });
        assert_eq!(i.status(t0), Status::Failed);
        assert_eq!(i.status(t0 + Duration::days(30)), Status::Failed);
        i.deliver_time = Some(t0);
        assert_eq!(i.status(t0), Status::Delivered);
        assert_eq!(i.status(t0 + Duration::days(14)), Status::Expired);
        i.answer_time = Some(t0);
        assert_eq!(i.status(t0 + Duration::days(20)), Status::Answered);
    }
}
