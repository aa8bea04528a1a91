//! The voice of the customer: feedback items from every channel, themes
//! across accounts, and the loop closed inward (decision owner, decision
//! log, each department's acknowledgement) and outward (the roadmap's
//! status back to every customer who asked).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{projection::Band, rank::Assessment};

named!(Channel {
    SurveyComment = "survey_comment",
    CsmNote = "csm_note",
    SupportTicket = "support_ticket",
    Call = "call",
    Community = "community",
    Email = "email",
});
named!(Department { Product = "product", Support = "support", Sales = "sales", Cs = "cs", Billing = "billing" });
named!(CxDimension { Sense = "sense", Feel = "feel", Think = "think", Act = "act", Relate = "relate" });
named!(JourneyPhase { Buying = "buying", Using = "using", Support = "support" });
named!(RoadmapStatus {
    UnderReview = "under_review",
    Planned = "planned",
    InProgress = "in_progress",
    Shipped = "shipped",
    Declined = "declined",
});

/// The tenant's voice settings (tenants.voice_settings, JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct VoiceSettings {
    pub weights: super::rank::Weights,
    /// SHIPPED or DECLINED needs a recorded decision first.
    pub require_decision: bool,
    /// The least similarity a suggestion shows.
    pub min_similarity: f64,
    /// The local time of the daily digest, "HH:MM".
    pub digest_time: String,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        VoiceSettings {
            weights: Default::default(),
            require_decision: false,
            min_similarity: 0.05,
            digest_time: "08:00".into(),
        }
    }
}

/// The severity of a survey comment, from its answer: the worse the score
/// on its scale, the more severe (1–5); 3 without a score.
pub(crate) fn comment_severity(kind: super::survey::Kind, score: Option<i32>) -> i32 {
    let Some(x) = score else { return 3 };
    let Some((lo, hi)) = kind.scale() else { return 3 };
    // Where the score sits on its scale, 0 (worst) to 1 (best).
    let at = f64::from(x - lo) / f64::from(hi - lo);
    (5.0 - (at * 4.0).round()).clamp(1.0, 5.0) as i32
}

/// Longest item text, in characters.
pub(crate) const MAX_ITEM_TEXT: usize = 5000;

impl RoadmapStatus {
    /// Shipped or declined: the loop closes, back to every customer who asked.
    pub(crate) fn closes_loop(self) -> bool {
        matches!(self, RoadmapStatus::Shipped | RoadmapStatus::Declined)
    }
}

/// The account as it was when an item was recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ItemSnapshot {
    pub arr_currency: Option<String>,
    pub arr_minor: Option<i64>,
    pub plan: String,
    pub lifecycle_stage: Option<super::LifecycleStage>,
    pub band: Option<Band>,
}

/// What a person (or the survey path) writes of an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ItemFields {
    pub text: String,
    pub channel: Channel,
    pub account_id: Uuid,
    pub contact_id: Option<Uuid>,
    pub department: Department,
    pub category: String,
    pub cx_dimension: Option<CxDimension>,
    pub journey_phase: Option<JourneyPhase>,
    pub severity: i32,
    /// When the customer said it, if earlier than it is recorded (history
    /// imported from another tool); `None`: when recorded.
    #[serde(default)]
    pub mention_time: Option<DateTime<Utc>>,
}

/// The earliest mention time an item may carry: before it, a time is a
/// client's zero value (1970), not a customer's words.
pub(crate) const EARLIEST_MENTION: DateTime<Utc> = DateTime::from_timestamp(946_684_800, 0).unwrap();

/// How far past the moment it is recorded a mention time may be: a
/// client's clock runs a little ahead.
pub(crate) const MENTION_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    pub id: Uuid,
    pub fields: ItemFields,
    pub snapshot: ItemSnapshot,
    pub theme_ids: Vec<Uuid>,
    pub answer_id: Option<Uuid>,
    pub create_time: DateTime<Utc>,
    pub created_by: String,
}

/// Why a mention time cannot be an item's, recorded at `now`.
pub(crate) fn mention_time_problem(t: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
    if t < EARLIEST_MENTION {
        Some(format!("must not be before 2000-01-01T00:00:00Z, got {}", t.to_rfc3339()))
    } else if t > now + MENTION_SKEW {
        Some(format!("must not be in the future, got {} (now {})", t.to_rfc3339(), now.to_rfc3339()))
    } else {
        None
    }
}

impl Item {
    /// When the customer said it: what longevity and the CX coverage's
    /// periods read.
    pub(crate) fn mention_time(&self) -> DateTime<Utc> {
        self.fields.mention_time.unwrap_or(self.create_time)
    }
}

/// The theme's link to the roadmap: where it is tracked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Roadmap {
    pub tracker: String,
    pub key: String,
    pub url: String,
}

/// What a person writes of a theme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ThemeBody {
    pub display_name: String,
    pub description: String,
    pub keywords: Vec<String>,
    pub decision_owner: String,
    pub departments: Vec<Department>,
    pub assessment: Assessment,
    pub roadmap: Roadmap,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Decision {
    pub decision: String,
    pub rationale: String,
    pub departments_consulted: Vec<Department>,
    pub decided_by: String,
    pub decide_time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Acknowledgement {
    pub department: Department,
    pub acknowledged_by: String,
    pub acknowledge_time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RoadmapChange {
    pub status: RoadmapStatus,
    pub changed_by: String,
    pub change_time: DateTime<Utc>,
    pub accounts_told: i64,
}

/// What the theme has been through: its decisions, acknowledgements and
/// roadmap history (kept in one row with the body).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ThemeLog {
    pub decisions: Vec<Decision>,
    pub acknowledgements: Vec<Acknowledgement>,
    pub roadmap_history: Vec<RoadmapChange>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Theme {
    pub id: Uuid,
    pub body: ThemeBody,
    pub log: ThemeLog,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub version: i64,
}

impl Theme {
    pub(crate) fn status(&self) -> Option<RoadmapStatus> {
        self.log.roadmap_history.last().map(|c| c.status)
    }

    /// Whether every department the theme concerns has acknowledged it.
    pub(crate) fn fully_acknowledged(&self) -> bool {
        !self.body.departments.is_empty()
            && self.body.departments.iter().all(|d| self.log.acknowledgements.iter().any(|a| a.department == *d))
    }

    /// Whether any keyword rule takes `text`.
    pub(crate) fn keyword_takes(&self, text: &str) -> bool {
        self.body.keywords.iter().any(|k| super::text::contains_keyword(text, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn theme(departments: Vec<Department>, acks: Vec<Department>) -> Theme {
        let t = DateTime::UNIX_EPOCH;
        Theme {
            id: Uuid::nil(),
            body: ThemeBody {
                display_name: "CSV".into(),
                description: String::new(),
                keywords: vec!["csv".into(), "エクスポート".into()],
                decision_owner: String::new(),
                departments,
                assessment: Assessment::default(),
                roadmap: Roadmap::default(),
            },
            log: ThemeLog {
                acknowledgements: acks
                    .into_iter()
                    .map(|d| Acknowledgement { department: d, acknowledged_by: "x".into(), acknowledge_time: t })
                    .collect(),
                ..Default::default()
            },
            create_time: t,
            update_time: t,
            version: 1,
        }
    }

    #[test]
    fn a_mention_time_is_this_century_and_not_to_come() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z").unwrap().to_utc();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        assert_eq!(mention_time_problem(at("2000-01-01T00:00:00Z"), now), None);
        assert_eq!(mention_time_problem(at("2026-12-06T12:05:00Z"), now), None, "five minutes of skew");
        let early = mention_time_problem(at("1999-12-31T23:59:59Z"), now).unwrap();
        assert!(early.contains("2000-01-01") && early.contains("1999-12-31"), "{early}");
        let late = mention_time_problem(at("2026-12-06T12:05:01Z"), now).unwrap();
        assert!(late.contains("future") && late.contains("2026-12-06T12:05:01"), "{late}");
        let mut item = theme_item(now);
        assert_eq!(item.mention_time(), now, "unset: the create time");
        item.fields.mention_time = Some(at("2025-01-02T03:04:05Z"));
        assert_eq!(item.mention_time(), at("2025-01-02T03:04:05Z"));
    }

    fn theme_item(t: DateTime<Utc>) -> Item {
        Item {
            id: Uuid::nil(),
            fields: ItemFields {
                text: "x".into(),
                channel: Channel::CsmNote,
                account_id: Uuid::nil(),
                contact_id: None,
                department: Department::Product,
                category: String::new(),
                cx_dimension: None,
                journey_phase: None,
                severity: 1,
                mention_time: None,
            },
            snapshot: ItemSnapshot::default(),
            theme_ids: vec![],
            answer_id: None,
            create_time: t,
            created_by: String::new(),
        }
    }

    #[test]
    fn a_comments_severity_follows_its_score() {
        use super::super::survey::Kind;
        let nps: Vec<_> = [0, 2, 5, 7, 8, 10].into_iter().map(|x| comment_severity(Kind::Nps, Some(x))).collect();
        assert_eq!(nps, [5, 4, 3, 2, 2, 1]);
        assert_eq!((comment_severity(Kind::Csat, Some(1)), comment_severity(Kind::Csat, Some(5))), (5, 1));
        assert_eq!(comment_severity(Kind::Ces, None), 3);
        assert_eq!(comment_severity(Kind::Custom, Some(3)), 3);
    }

    #[test]
    fn a_theme_is_fully_acknowledged_by_every_department_it_concerns() {
        use Department::*;
        assert!(!theme(vec![], vec![]).fully_acknowledged(), "a theme that concerns no one reached no one");
        assert!(!theme(vec![Product, Support], vec![Product]).fully_acknowledged());
        assert!(theme(vec![Product, Support], vec![Support, Product, Sales]).fully_acknowledged());
        assert!(theme(vec![], vec![]).keyword_takes("CSVが出せない"));
        assert!(theme(vec![], vec![]).keyword_takes("エクスポートが遅い"));
        assert!(!theme(vec![], vec![]).keyword_takes("ログイン"));
    }
}
