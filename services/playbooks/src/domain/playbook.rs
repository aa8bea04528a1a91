//! A playbook version's definition: immutable once saved, stored as JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    LifecycleStage, TouchModel,
    cta::{CtaType, Priority},
};

/// The event types a playbook may be triggered by. Events a playbook itself
/// causes (CtaOpened, CtaUpdated, OutreachSent, PlaybookFired) are left out:
/// a playbook triggered by its own effects would loop.
pub(crate) const EVENT_TYPES: &[&str] = &[
    "health_score_changed",
    "churn_risk_changed",
    "expansion_signal_changed",
    "account_created",
    "account_updated",
    "contract_changed",
    "activity_logged",
    "cta_closed",
    "checkpoint_recorded",
    "review_concluded",
    // Feedback's: a contact answered a survey (an NPS detractor…).
    "survey_answered",
    // Feedback's: a theme the account raised was shipped or declined — the
    // owner is told first (a CTA), the customer after (outreach on its close).
    "loop_closed",
];

/// Share a pattern needs in an account's mix to be served under BLEND routing.
pub(crate) const BLEND_MIN_SHARE: u8 = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Definition {
    pub display_name: String,
    pub description: String,
    pub trigger: Trigger,
    pub audience: Audience,
    /// CEL; empty: always true.
    pub condition: String,
    pub actions: Vec<Action>,
    pub cooldown_secs: i64,
    pub enrolment_limit: Option<EnrolmentLimit>,
    pub priority: i32,
    pub routing: Routing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Trigger {
    Event(EventTrigger),
    Schedule(ScheduleTrigger),
    Manual,
}

impl ScheduleTrigger {
    /// Whether it reads the account's success plans.
    pub(crate) fn reads_plans(&self) -> bool {
        matches!(
            self,
            ScheduleTrigger::CheckpointOverdueDays(_)
                | ScheduleTrigger::CheckpointOffTrack
                | ScheduleTrigger::ProxyWorkOverdue
                | ScheduleTrigger::PlanStalledDays(_)
        )
    }
}

impl Trigger {
    /// The key the live playbooks are found by: `event:<type>`, `schedule`, `manual`.
    pub(crate) fn key(&self) -> String {
        match self {
            Trigger::Event(e) => format!("event:{}", e.event_type),
            Trigger::Schedule(_) => "schedule".into(),
            Trigger::Manual => "manual".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Band {
    Red,
    Yellow,
    Green,
}

impl Band {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Band::Red => "red",
            Band::Yellow => "yellow",
            Band::Green => "green",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EventTrigger {
    pub event_type: String,
    pub band_became: Option<Band>,
    pub score_fell_by: Option<f64>,
    pub measure_dropped: Option<MeasureDrop>,
    pub stage_entered: Option<LifecycleStage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MeasureDrop {
    pub measure: String,
    pub percent: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ScheduleTrigger {
    RenewalWithinDays(i32),
    NoUsageForDays(i32),
    DaysInStage(i32),
    /// An active plan's checkpoint due at least this many days without a
    /// reading as of its due date.
    CheckpointOverdueDays(i32),
    /// An active plan's checkpoint is off track.
    CheckpointOffTrack,
    /// Proxy work (代走) not done and past its end date.
    ProxyWorkOverdue,
    /// An active plan in its stage at least this many days.
    PlanStalledDays(i32),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Audience {
    pub segment_ids: Vec<Uuid>,
    pub touch_models: Vec<TouchModel>,
    pub lifecycle_stages: Vec<LifecycleStage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EnrolmentLimit {
    OncePerAccount,
    Rolling { times: u32, days: u32 },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Routing {
    #[default]
    Dominant,
    Blend,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Action {
    /// Empty: every account.
    pub touch_models: Vec<TouchModel>,
    pub kind: ActionKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ActionKind {
    OpenCta(OpenCta),
    SendOutreach(SendOutreach),
    Enrol { programme_id: Uuid },
    UpdateAccount(UpdateAccount),
    StartSuccessPlan { template_id: Uuid },
    ProposeSuccessModel { model_id: Uuid },
}

impl ActionKind {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            ActionKind::OpenCta(_) => "open_cta",
            ActionKind::SendOutreach(_) => "send_outreach",
            ActionKind::Enrol { .. } => "enrol",
            ActionKind::UpdateAccount(_) => "update_account",
            ActionKind::StartSuccessPlan { .. } => "start_success_plan",
            ActionKind::ProposeSuccessModel { .. } => "propose_success_model",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OpenCta {
    pub cta_type: CtaType,
    pub priority: Priority,
    pub title: String,
    pub description: String,
    pub owner: OwnerRule,
    pub due_in_days: u32,
    pub tasks: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OwnerRule {
    AccountOwner,
    User(String),
    RoundRobin(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SendOutreach {
    pub endpoint_id: Uuid,
    pub subject: String,
    pub body: String,
    pub contact_roles: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct UpdateAccount {
    pub lifecycle_stage: Option<LifecycleStage>,
    pub add_tags: Vec<String>,
    pub remove_tags: Vec<String>,
    /// Custom attributes as proto3 JSON of `banso.types.v1.AttributeValue`.
    pub set_attributes: BTreeMap<String, serde_json::Value>,
}

/// Tags and attributes one update_account action may name, each.
pub(crate) const MAX_ACCOUNT_CHANGES: usize = 20;

impl UpdateAccount {
    /// The stage after the change, if it moves the account.
    pub(crate) fn stage_after(&self, current: LifecycleStage) -> Option<LifecycleStage> {
        self.lifecycle_stage.filter(|s| *s != current)
    }

    /// The tags after the change (removals, then additions at the end, in
    /// order), if they differ.
    pub(crate) fn tags_after(&self, current: &[String]) -> Option<Vec<String>> {
        let mut tags: Vec<String> = current.iter().filter(|t| !self.remove_tags.contains(t)).cloned().collect();
        for t in &self.add_tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        (tags != current).then_some(tags)
    }

    /// What it does, for a firing's outcome: `stage renewal, +vip, -trial, set seats`.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.lifecycle_stage {
            parts.push(format!("stage {}", s.as_str()));
        }
        parts.extend(self.add_tags.iter().map(|t| format!("+{t}")));
        parts.extend(self.remove_tags.iter().map(|t| format!("-{t}")));
        if !self.set_attributes.is_empty() {
            parts.push(format!("set {}", self.set_attributes.keys().cloned().collect::<Vec<_>>().join(", ")));
        }
        parts.join(", ")
    }
}

/// Where a queued account change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// Accounts took it, or the account already was so.
    Applied,
    /// Accounts refused it, or every attempt failed.
    Failed,
}

impl ChangeStatus {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            ChangeStatus::Pending => "pending",
            ChangeStatus::Applied => "applied",
            ChangeStatus::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [ChangeStatus::Pending, ChangeStatus::Applied, ChangeStatus::Failed].into_iter().find(|c| c.as_str() == s)
    }
}

/// A stored version: its definition and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Playbook {
    pub id: Uuid,
    /// The version `definition` is.
    pub version: i64,
    pub definition: Definition,
    pub head_version: i64,
    /// 0 when disabled.
    pub live_version: i64,
    pub create_time: chrono::DateTime<chrono::Utc>,
    pub update_time: chrono::DateTime<chrono::Utc>,
    /// The row's version (the etag).
    pub row_version: i64,
}

/// The most a cooldown may be: a year.
pub(crate) const MAX_COOLDOWN_SECS: i64 = 365 * 86_400;

/// The fields of an update, each `Some` where the mask names it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fields {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub trigger: Option<Trigger>,
    pub audience: Option<Audience>,
    pub condition: Option<String>,
    pub actions: Option<Vec<Action>>,
    pub cooldown_secs: Option<i64>,
    pub enrolment_limit: Option<Option<EnrolmentLimit>>,
    pub priority: Option<i32>,
    pub routing: Option<Routing>,
}

impl Definition {
    pub(crate) fn apply(&mut self, f: &Fields) {
        macro_rules! set {
            ($($f:ident => $d:ident),+) => { $( if let Some(v) = &f.$f { self.$d = v.clone(); } )+ };
        }
        set!(display_name => display_name, description => description, trigger => trigger, audience => audience,
             condition => condition, actions => actions, cooldown_secs => cooldown_secs,
             enrolment_limit => enrolment_limit, priority => priority, routing => routing);
    }

    /// The rules that join several fields, as (field, problem) pairs: an
    /// enrolment limit needs a cooldown; trigger helpers belong to their
    /// event type; an action's touch models must meet the audience's.
    pub(crate) fn problems(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        if self.enrolment_limit.is_some() && self.cooldown_secs == 0 {
            v.push(("playbook.cooldown".into(), "must be more than 0 with an enrolment limit".into()));
        }
        if let Trigger::Event(e) = &self.trigger {
            let health = e.event_type == "health_score_changed";
            let account = matches!(e.event_type.as_str(), "account_created" | "account_updated" | "contract_changed");
            let only = |field: &str, set: bool, ok: bool, types: &str| {
                (set && !ok).then(|| {
                    (
                        format!("playbook.trigger.event.{field}"),
                        format!("applies to {types} only, not {}", e.event_type),
                    )
                })
            };
            v.extend(only("band_became", e.band_became.is_some(), health, "health_score_changed"));
            v.extend(only("score_fell_by", e.score_fell_by.is_some(), health, "health_score_changed"));
            v.extend(only("measure_dropped", e.measure_dropped.is_some(), health, "health_score_changed"));
            v.extend(only(
                "stage_entered",
                e.stage_entered.is_some(),
                account,
                "account_created, account_updated and contract_changed",
            ));
        }
        if self.routing == Routing::Dominant && !self.audience.touch_models.is_empty() {
            for (i, a) in self.actions.iter().enumerate() {
                if !a.touch_models.is_empty() && !a.touch_models.iter().any(|m| self.audience.touch_models.contains(m))
                {
                    let names = |m: &[TouchModel]| m.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ");
                    v.push((
                        format!("playbook.actions[{i}].touch_models"),
                        format!(
                            "excludes every account of the audience: the action is for {}, the audience is {} (by dominant pattern)",
                            names(&a.touch_models),
                            names(&self.audience.touch_models)
                        ),
                    ));
                }
            }
        }
        v
    }
}

#[cfg(test)]
mod update_account_tests {
    use super::*;

    fn change(add: &[&str], remove: &[&str]) -> UpdateAccount {
        UpdateAccount {
            add_tags: add.iter().map(|s| s.to_string()).collect(),
            remove_tags: remove.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn tags_change_only_when_they_differ() {
        let current = vec!["vip".to_string(), "trial".to_string()];
        assert_eq!(change(&["at-risk"], &["trial"]).tags_after(&current), Some(vec!["vip".into(), "at-risk".into()]));
        assert_eq!(change(&["vip"], &["gone"]).tags_after(&current), None, "already so");
        assert_eq!(change(&[], &[]).tags_after(&[]), None);
    }

    #[test]
    fn the_stage_changes_only_when_it_moves() {
        let c = UpdateAccount { lifecycle_stage: Some(LifecycleStage::Renewal), ..Default::default() };
        assert_eq!(c.stage_after(LifecycleStage::Adoption), Some(LifecycleStage::Renewal));
        assert_eq!(c.stage_after(LifecycleStage::Renewal), None);
        assert_eq!(UpdateAccount::default().stage_after(LifecycleStage::Adoption), None);
        assert_eq!(
            UpdateAccount { lifecycle_stage: Some(LifecycleStage::Renewal), ..change(&["a"], &["b"]) }.describe(),
            "stage renewal, +a, -b"
        );
    }
}
