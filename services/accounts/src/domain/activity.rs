//! Timeline activities: the touches a CS team reads an account's state from
//! (meetings, calls, e-mails sent and answered, notes, outreach, surveys).

use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivityKind {
    Meeting,
    Call,
    EmailSent,
    EmailReplied,
    Note,
    Outreach,
    Survey,
    Other,
}

impl ActivityKind {
    pub const ALL: [ActivityKind; 8] = [
        ActivityKind::Meeting,
        ActivityKind::Call,
        ActivityKind::EmailSent,
        ActivityKind::EmailReplied,
        ActivityKind::Note,
        ActivityKind::Outreach,
        ActivityKind::Survey,
        ActivityKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Meeting => "meeting",
            ActivityKind::Call => "call",
            ActivityKind::EmailSent => "email_sent",
            ActivityKind::EmailReplied => "email_replied",
            ActivityKind::Note => "note",
            ActivityKind::Outreach => "outreach",
            ActivityKind::Survey => "survey",
            ActivityKind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub id: Uuid,
    pub account_id: Uuid,
    pub kind: ActivityKind,
    pub contact_ids: Vec<Uuid>,
    pub author_id: String,
    pub occur_time: DateTime<Utc>,
    pub subject: String,
    pub body: String,
    pub external_ref: Option<String>,
    pub create_time: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivityFilter {
    pub account_id: Option<Uuid>,
    pub kinds: Vec<ActivityKind>,
    pub author_id: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
}

/// Replies ÷ e-mails sent over a window, capped at 1 (a thread can be
/// answered more than once); `None` when nothing was sent.
pub fn response_rate(sent: u64, replied: u64) -> Option<f64> {
    (sent > 0).then(|| (replied as f64 / sent as f64).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_rates() {
        assert_eq!(response_rate(0, 0), None);
        assert_eq!(response_rate(0, 3), None);
        assert_eq!(response_rate(4, 1), Some(0.25));
        assert_eq!(response_rate(2, 5), Some(1.0));
        for k in ActivityKind::ALL {
            assert_eq!(ActivityKind::parse(k.as_str()), Some(k));
        }
    }
}
