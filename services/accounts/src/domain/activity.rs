//! Timeline activities: the touches a CS team reads an account's state from
//! (meetings, calls, e-mails sent and answered, notes, outreach, surveys).

use banso_events::db::Identified;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The most contacts one activity names.
pub const MAX_CONTACTS: usize = 50;
/// The longest body, in characters (a pasted e-mail thread, meeting notes).
pub const MAX_BODY_CHARS: usize = 20_000;
/// How far ahead of the server's clock an activity may be dated: clients'
/// clocks differ by a little, never by a day.
pub const FUTURE_TOLERANCE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Whether an activity dated `occur_time` lies in the future as of `now`,
/// beyond [`FUTURE_TOLERANCE`].
pub fn in_future(occur_time: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    // `now` is a real clock: adding minutes cannot leave chrono's range,
    // and if it ever did, nothing would be "in the future" of it.
    now.checked_add_signed(FUTURE_TOLERANCE).is_some_and(|limit| occur_time > limit)
}

/// What a client asks to log: an activity without its id and creation
/// time; `author_id` is the caller when not given.
#[derive(Debug, Clone, PartialEq)]
pub struct NewActivity {
    pub account_id: Uuid,
    pub kind: ActivityKind,
    pub contact_ids: Vec<Uuid>,
    pub author_id: Option<String>,
    pub occur_time: DateTime<Utc>,
    pub subject: String,
    pub body: String,
    pub external_ref: Option<String>,
    /// Who started it; `None`: the default of its kind.
    pub origin: Option<TouchOrigin>,
}

/// Who started a touch: the vendor (proactive) or the customer (reactive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TouchOrigin {
    Vendor,
    Customer,
}

impl TouchOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            TouchOrigin::Vendor => "vendor",
            TouchOrigin::Customer => "customer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [TouchOrigin::Vendor, TouchOrigin::Customer].into_iter().find(|o| o.as_str() == s)
    }
}

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
    Ticket,
    Cta,
    SuccessPlan,
    LoopClosed,
}

impl ActivityKind {
    pub const ALL: [ActivityKind; 12] = [
        ActivityKind::Meeting,
        ActivityKind::Call,
        ActivityKind::EmailSent,
        ActivityKind::EmailReplied,
        ActivityKind::Note,
        ActivityKind::Outreach,
        ActivityKind::Survey,
        ActivityKind::Other,
        ActivityKind::Ticket,
        ActivityKind::Cta,
        ActivityKind::SuccessPlan,
        ActivityKind::LoopClosed,
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
            ActivityKind::Ticket => "ticket",
            ActivityKind::Cta => "cta",
            ActivityKind::SuccessPlan => "success_plan",
            ActivityKind::LoopClosed => "loop_closed",
        }
    }

    /// Who starts a touch of this kind unless the client says: the CS team
    /// for what it does, the customer for replies and tickets; notes and
    /// other activities are no touch (`None`).
    pub fn default_origin(self) -> Option<TouchOrigin> {
        use ActivityKind as K;
        match self {
            K::Meeting | K::Call | K::EmailSent | K::Outreach | K::Survey | K::Cta | K::SuccessPlan | K::LoopClosed => {
                Some(TouchOrigin::Vendor)
            }
            K::EmailReplied | K::Ticket => Some(TouchOrigin::Customer),
            K::Note | K::Other => None,
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
    /// `None`: not a touch (a note, or OTHER without an origin).
    pub origin: Option<TouchOrigin>,
}

impl Identified for Activity {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivityFilter {
    pub account_id: Option<Uuid>,
    pub kinds: Vec<ActivityKind>,
    pub author_id: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    /// Only these origins (`None` in it: activities that are no touch).
    pub origins: Vec<Option<TouchOrigin>>,
}

/// Touches of one group over a period (docs/metrics.md, proactive ratio).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TouchCounts {
    pub vendor: u64,
    pub customer: u64,
}

impl TouchCounts {
    /// vendor ÷ (vendor + customer); `None` when there are no touches.
    pub fn ratio(&self) -> Option<f64> {
        let all = self.vendor + self.customer;
        (all > 0).then(|| self.vendor as f64 / all as f64)
    }

    pub fn add(&mut self, other: TouchCounts) {
        self.vendor += other.vendor;
        self.customer += other.customer;
    }
}

/// E-mails sent and replied on an account's timeline over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailStats {
    pub sent: u64,
    pub replied: u64,
}

impl EmailStats {
    /// Replies ÷ e-mails sent, capped at 1 (a thread can be answered more
    /// than once); `None` when nothing was sent.
    pub fn response_rate(&self) -> Option<f64> {
        (self.sent > 0).then(|| (self.replied as f64 / self.sent as f64).min(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_rates() {
        let rate = |sent, replied| EmailStats { sent, replied }.response_rate();
        assert_eq!(rate(0, 0), None);
        assert_eq!(rate(0, 3), None);
        assert_eq!(rate(4, 1), Some(0.25));
        assert_eq!(rate(2, 5), Some(1.0));
        for k in ActivityKind::ALL {
            assert_eq!(ActivityKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn origins_default_by_kind_and_ratios() {
        assert_eq!(ActivityKind::Call.default_origin(), Some(TouchOrigin::Vendor));
        assert_eq!(ActivityKind::Ticket.default_origin(), Some(TouchOrigin::Customer));
        assert_eq!(ActivityKind::Note.default_origin(), None);
        assert_eq!(TouchCounts { vendor: 0, customer: 0 }.ratio(), None);
        assert_eq!(TouchCounts { vendor: 3, customer: 1 }.ratio(), Some(0.75));
    }

    #[test]
    fn the_future_begins_five_minutes_ahead() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert!(!in_future(now + chrono::TimeDelta::minutes(5), now));
        assert!(in_future(now + chrono::TimeDelta::minutes(6), now));
        assert!(!in_future(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC));
    }
}
