//! Daily usage rollups: one row per (account, day, event name), the days cut
//! in the tenant's time zone. Measures read rollups, never raw events, so a
//! score over 90 days costs at most 90 × (event names) rows, however busy the
//! account is.
//!
//! The ingest path folds events into rollups incrementally: [`DailyRollup::add_event`]
//! for one event, [`accumulate`] to build a batch's rollups in memory and
//! [`DailyRollup::merge`] to fold a batch's rollup into the stored one. Every
//! operation is commutative and idempotent in the user set, so late and
//! out-of-order events land in the same row as on-time ones.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The tenant's calendar day of `ts`. A CS team in Tokyo reads "yesterday"
/// as a Tokyo day: an event at 2026-03-31T15:30Z belongs to 2026-04-01.
pub fn day_of(ts: DateTime<Utc>, tz: Tz) -> NaiveDate {
    ts.with_timezone(&tz).date_naive()
}

/// One account's usage of one event name on one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyRollup {
    pub day: NaiveDate,
    pub event_name: String,
    /// Number of events.
    pub events: i64,
    /// Sum of the events' quantities (each defaults to 1 at ingest).
    pub quantity: f64,
    /// Sum of the events' durations; events without one add 0.
    pub duration_secs: f64,
    /// Distinct user keys that used this event name that day. Kept sorted by
    /// the helpers here (so that adding a user is a binary search), but
    /// measures do not rely on the order: rows read from storage may come in
    /// any order.
    pub users: Vec<String>,
}

impl DailyRollup {
    /// An empty rollup, to fold events into.
    pub fn new(day: NaiveDate, event_name: impl Into<String>) -> Self {
        DailyRollup { day, event_name: event_name.into(), events: 0, quantity: 0.0, duration_secs: 0.0, users: vec![] }
    }

    /// Folds one event in: one more event, its quantity and duration, its
    /// user (an empty user key means "anonymous" and is not counted as a
    /// user). Returns whether the user is new to this row. (The rollup task
    /// folds events in SQL; this is the model its tests compare with.)
    #[cfg(test)]
    pub fn add_event(&mut self, user: &str, quantity: f64, duration_secs: Option<f64>) -> bool {
        self.events += 1;
        self.quantity += quantity;
        self.duration_secs += duration_secs.unwrap_or(0.0);
        self.add_user(user)
    }

    /// Adds `user` to the distinct users; returns whether it was new.
    pub fn add_user(&mut self, user: &str) -> bool {
        if user.is_empty() {
            return false;
        }
        match self.users.binary_search_by(|u| u.as_str().cmp(user)) {
            Ok(_) => false,
            Err(at) => {
                self.users.insert(at, user.to_owned());
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn ts(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn day_of_cuts_days_in_the_tenant_time_zone() {
        let tokyo = chrono_tz::Asia::Tokyo;
        // 15:30Z is 00:30 the next day in Tokyo (UTC+9).
        assert_eq!(day_of(ts("2026-03-31T15:30:00Z"), tokyo), d(2026, 4, 1));
        assert_eq!(day_of(ts("2026-03-31T15:30:00Z"), chrono_tz::UTC), d(2026, 3, 31));
        // The last second before Tokyo midnight, and midnight itself.
        assert_eq!(day_of(ts("2026-03-31T14:59:59Z"), tokyo), d(2026, 3, 31));
        assert_eq!(day_of(ts("2026-03-31T15:00:00Z"), tokyo), d(2026, 4, 1));
        // West of UTC the day is earlier.
        assert_eq!(day_of(ts("2026-04-01T03:00:00Z"), chrono_tz::America::New_York), d(2026, 3, 31));
    }

    #[test]
    fn add_event_counts_events_sums_and_distinct_users() {
        let mut r = DailyRollup::new(d(2026, 4, 1), "report_exported");
        assert!(r.add_event("u2", 1.0, Some(30.0)));
        assert!(r.add_event("u1", 2.5, None));
        assert!(!r.add_event("u2", 1.0, Some(15.0)));
        assert!(!r.add_event("", 1.0, None)); // anonymous: an event, not a user
        assert_eq!(r.events, 4);
        assert_eq!(r.quantity, 5.5);
        assert_eq!(r.duration_secs, 45.0);
        assert_eq!(r.users, vec!["u1", "u2"]);
    }
}
