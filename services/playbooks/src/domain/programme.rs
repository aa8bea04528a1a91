//! Programmes (the low-touch "teacher": webinars, courses) and the
//! enrolments of accounts in them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

named!(Kind { WebinarSeries = "webinar_series", Course = "course", OfficeHours = "office_hours", UserGroup = "user_group", Other = "other" });
named!(Status { Enrolled = "enrolled", Active = "active", Completed = "completed", Withdrawn = "withdrawn" });

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Programme {
    pub id: Uuid,
    pub display_name: String,
    pub description: String,
    pub kind: Kind,
    /// 0: no limit.
    pub capacity: i32,
    pub open: bool,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub version: i64,
}

impl Programme {
    /// Why it takes no new enrolment, with `enrolled` accounts in it.
    pub(crate) fn refuses(&self, enrolled: i64) -> Option<String> {
        if !self.open {
            return Some(format!("programme {} is closed", self.display_name));
        }
        (self.capacity > 0 && enrolled >= i64::from(self.capacity))
            .then(|| format!("programme {} is full ({} of {})", self.display_name, enrolled, self.capacity))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Enrolment {
    pub id: Uuid,
    pub programme_id: Uuid,
    pub account_id: Uuid,
    pub status: Status,
    pub playbook_id: Option<Uuid>,
    pub enrolled_by: String,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub version: i64,
}

impl Enrolment {
    /// The key that keeps one live enrolment per programme and account.
    pub(crate) fn live_key(&self) -> Option<String> {
        (self.status != Status::Withdrawn).then(|| live_key(self.programme_id, self.account_id))
    }

    /// Moves to `next`: forward only; completed and withdrawn are final.
    pub(crate) fn move_to(&mut self, next: Status) -> Result<(), String> {
        use Status::*;
        let ok =
            matches!((self.status, next), (Enrolled, Active | Completed | Withdrawn) | (Active, Completed | Withdrawn))
                || self.status == next;
        if !ok {
            return Err(format!("an enrolment {} cannot become {}", self.status.as_str(), next.as_str()));
        }
        self.status = next;
        Ok(())
    }
}

pub(crate) fn live_key(programme: Uuid, account: Uuid) -> String {
    format!("{programme}/{account}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrolments_move_forward_only_and_programmes_refuse_when_closed_or_full() {
        let t = Utc::now();
        let mut e = Enrolment {
            id: Uuid::now_v7(),
            programme_id: Uuid::now_v7(),
            account_id: Uuid::now_v7(),
            status: Status::Enrolled,
            playbook_id: None,
            enrolled_by: String::new(),
            create_time: t,
            update_time: t,
            version: 1,
        };
        assert!(e.move_to(Status::Active).is_ok());
        assert_eq!(e.move_to(Status::Enrolled).unwrap_err(), "an enrolment active cannot become enrolled");
        assert!(e.move_to(Status::Withdrawn).is_ok());
        assert_eq!(e.live_key(), None);
        assert!(e.move_to(Status::Completed).is_err());
        let p = Programme {
            id: Uuid::now_v7(),
            display_name: "Webinars".into(),
            description: String::new(),
            kind: Kind::WebinarSeries,
            capacity: 2,
            open: true,
            create_time: t,
            update_time: t,
            version: 1,
        };
        assert_eq!(p.refuses(1), None);
        assert_eq!(p.refuses(2).unwrap(), "programme Webinars is full (2 of 2)");
        assert_eq!(Programme { open: false, ..p }.refuses(0).unwrap(), "programme Webinars is closed");
    }
}
