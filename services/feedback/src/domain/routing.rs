//! Routing the voice to every department: which items a department's
//! subscription takes, and when its daily digest is due in the tenant's
//! time zone.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone as _, Utc};
use uuid::Uuid;

use super::voice::{Department, Item};

named!(NoticeKind { Alert = "alert", Digest = "digest" });

/// Longest category a subscription filters on, in characters (an item's own limit).
pub(crate) const MAX_CATEGORY: usize = 100;
/// Highest severity a subscription may ask for at least.
pub(crate) const MAX_MIN_SEVERITY: i32 = 5;
/// Most subscriptions a tenant keeps: every recorded item is matched against all of them.
pub(crate) const MAX_SUBSCRIPTIONS: u64 = 500;
/// Most items a NoticeIssued carries (its `items_total` says how many the notice has).
pub(crate) const MAX_EVENT_ITEMS: usize = 100;
/// Most past days a digest round catches up for a subscription (after downtime).
pub(crate) const CATCH_UP_DAYS: i64 = 7;
/// The digest's local time when the tenant set none.
pub(crate) const DEFAULT_DIGEST_TIME: NaiveTime = match NaiveTime::from_hms_opt(8, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

/// A department's subscription to feedback: what it takes, where its
/// notices go, and the last day its digest covered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Subscription {
    pub id: Uuid,
    pub department: Department,
    /// Empty: any category.
    pub category: String,
    pub theme_id: Option<Uuid>,
    /// 0: any severity.
    pub min_severity: i32,
    /// A Playbooks webhook endpoint; none: stored and listable only.
    pub endpoint_id: Option<Uuid>,
    pub last_digest_day: Option<NaiveDate>,
    pub create_time: DateTime<Utc>,
}

impl Subscription {
    /// Whether the subscription takes `item` as it is: its department, the
    /// category (case-insensitive, empty takes any), the theme (the item is
    /// in it; none takes any) and at least the severity.
    pub(crate) fn takes(&self, item: &Item) -> bool {
        self.takes_fields(item) && self.theme_id.is_none_or(|t| item.theme_ids.contains(&t))
    }

    /// Whether `item`, having just joined `theme`, is news to the
    /// subscription: only a subscription to that theme hears of it (the
    /// others took the item, or not, when it was recorded).
    pub(crate) fn takes_joining(&self, item: &Item, theme: Uuid) -> bool {
        self.theme_id == Some(theme) && self.takes_fields(item)
    }

    fn takes_fields(&self, item: &Item) -> bool {
        let f = &item.fields;
        f.department == self.department
            && (self.category.is_empty() || same_category(&self.category, &f.category))
            && f.severity >= self.min_severity
    }
}

/// Categories are free text: compared without case and surrounding blanks.
fn same_category(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// An alert (one item, at once) or a digest (a day's items) sent to a subscription.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Notice {
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub department: Department,
    pub kind: NoticeKind,
    pub item_ids: Vec<Uuid>,
    /// A digest's day (local to the tenant); none for an alert.
    pub day: Option<NaiveDate>,
    pub create_time: DateTime<Utc>,
}

/// A digest time as the settings hold it: "HH:MM" (or "HH:MM:SS").
pub(crate) fn parse_digest_time(s: &str) -> Option<NaiveTime> {
    let s = s.trim();
    NaiveTime::parse_from_str(s, "%H:%M").or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S")).ok()
}

/// The latest day whose digest is due at `now`: yesterday (local) once the
/// digest time has passed today, else the day before.
pub(crate) fn due_day(tz: chrono_tz::Tz, at: NaiveTime, now: DateTime<Utc>) -> NaiveDate {
    let local = now.with_timezone(&tz).naive_local();
    let back = if local.time() >= at { 1 } else { 2 };
    local.date() - Duration::days(back)
}

/// The days a subscription's digest still owes at `now`, oldest first:
/// after its last digest (from the day it was created), up to the due
/// day, at most [`CATCH_UP_DAYS`] of them (the latest).
pub(crate) fn owed_days(s: &Subscription, tz: chrono_tz::Tz, at: NaiveTime, now: DateTime<Utc>) -> Vec<NaiveDate> {
    let due = due_day(tz, at, now);
    let created = s.create_time.with_timezone(&tz).date_naive();
    let first =
        s.last_digest_day.map_or(created, |d| d + Duration::days(1)).max(due - Duration::days(CATCH_UP_DAYS - 1));
    first.iter_days().take_while(|d| *d <= due).collect()
}

/// The instants a local day spans, [start, end), in UTC. A day that starts
/// in a daylight-saving gap starts when the clocks resume.
pub(crate) fn day_span(tz: chrono_tz::Tz, day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    (start_of(tz, day), start_of(tz, day + Duration::days(1)))
}

fn start_of(tz: chrono_tz::Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight: NaiveDateTime = day.and_time(NaiveTime::MIN);
    (0..=24)
        .find_map(|h| tz.from_local_datetime(&(midnight + Duration::hours(h))).earliest())
        .map_or_else(|| midnight.and_utc(), |t| t.to_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::voice::{Channel, ItemFields, ItemSnapshot};

    fn item(department: Department, category: &str, severity: i32, themes: &[Uuid]) -> Item {
        Item {
            id: Uuid::now_v7(),
            fields: ItemFields {
                text: "CSVが出せない".into(),
                channel: Channel::SupportTicket,
                account_id: Uuid::now_v7(),
                contact_id: None,
                department,
                category: category.into(),
                cx_dimension: None,
                journey_phase: None,
                severity,
                mention_time: None,
            },
            snapshot: ItemSnapshot::default(),
            theme_ids: themes.to_vec(),
            answer_id: None,
            create_time: DateTime::UNIX_EPOCH,
            created_by: "x".into(),
        }
    }

    fn subscription(department: Department, category: &str, theme: Option<Uuid>, min: i32) -> Subscription {
        Subscription {
            id: Uuid::now_v7(),
            department,
            category: category.into(),
            theme_id: theme,
            min_severity: min,
            endpoint_id: None,
            last_digest_day: None,
            create_time: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_subscription_takes_its_departments_items_by_category_theme_and_severity() {
        use Department::*;
        let theme = Uuid::now_v7();
        let any = subscription(Product, "", None, 0);
        assert!(any.takes(&item(Product, "export", 1, &[])));
        assert!(!any.takes(&item(Support, "export", 5, &[])), "another department's voice is not its");
        let category = subscription(Product, "Export", None, 0);
        assert!(category.takes(&item(Product, " export ", 1, &[])), "categories compare without case");
        assert!(!category.takes(&item(Product, "billing", 1, &[])));
        assert!(!category.takes(&item(Product, "", 1, &[])));
        let themed = subscription(Product, "", Some(theme), 0);
        assert!(themed.takes(&item(Product, "", 1, &[Uuid::now_v7(), theme])));
        assert!(!themed.takes(&item(Product, "", 1, &[Uuid::now_v7()])));
        let severe = subscription(Product, "", None, 4);
        assert!(severe.takes(&item(Product, "", 4, &[])), "at least: 4 takes 4");
        assert!(severe.takes(&item(Product, "", 5, &[])));
        assert!(!severe.takes(&item(Product, "", 3, &[])));
        let all = subscription(Sales, "pricing", Some(theme), 3);
        assert!(all.takes(&item(Sales, "PRICING", 3, &[theme])));
        assert!(!all.takes(&item(Sales, "PRICING", 2, &[theme])));
    }

    #[test]
    fn an_item_joining_a_theme_is_news_only_to_that_themes_subscriptions() {
        use Department::*;
        let (theme, other) = (Uuid::now_v7(), Uuid::now_v7());
        let x = item(Support, "login", 3, &[theme]);
        assert!(subscription(Support, "", Some(theme), 0).takes_joining(&x, theme));
        assert!(!subscription(Support, "", Some(other), 0).takes_joining(&x, theme));
        assert!(!subscription(Support, "", None, 0).takes_joining(&x, theme), "it heard when the item came");
        assert!(!subscription(Product, "", Some(theme), 0).takes_joining(&x, theme));
        assert!(!subscription(Support, "", Some(theme), 4).takes_joining(&x, theme));
    }

    #[test]
    fn digest_times_parse() {
        assert_eq!(parse_digest_time("08:00"), Some(DEFAULT_DIGEST_TIME));
        assert_eq!(parse_digest_time("23:59:00"), NaiveTime::from_hms_opt(23, 59, 0));
        assert_eq!(parse_digest_time("24:00"), None);
        assert_eq!(parse_digest_time("8"), None);
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_digest_of_a_day_is_due_the_next_morning_in_the_tenants_time_zone() {
        let tokyo = chrono_tz::Asia::Tokyo;
        // 2026-12-05 07:59 in Tokyo (22:59 UTC the day before): not yet the 4th's.
        assert_eq!(due_day(tokyo, DEFAULT_DIGEST_TIME, utc("2026-12-04T22:59:00Z")), date("2026-12-03"));
        // 08:00 in Tokyo: the 4th's is due.
        assert_eq!(due_day(tokyo, DEFAULT_DIGEST_TIME, utc("2026-12-04T23:00:00Z")), date("2026-12-04"));
        assert_eq!(due_day(chrono_tz::UTC, DEFAULT_DIGEST_TIME, utc("2026-12-04T23:00:00Z")), date("2026-12-03"));
    }

    #[test]
    fn owed_days_start_at_creation_follow_the_last_digest_and_catch_up_a_week() {
        let tokyo = chrono_tz::Asia::Tokyo;
        let now = utc("2026-12-10T00:00:00Z"); // 09:00 on the 10th in Tokyo: the 9th is due.
        let mut s = subscription(Department::Cs, "", None, 0);
        s.create_time = utc("2026-12-08T15:30:00Z"); // the 9th, 00:30 in Tokyo
        assert_eq!(owed_days(&s, tokyo, DEFAULT_DIGEST_TIME, now), vec![date("2026-12-09")]);
        s.last_digest_day = Some(date("2026-12-09"));
        assert!(owed_days(&s, tokyo, DEFAULT_DIGEST_TIME, now).is_empty(), "done for the day");
        s.create_time = utc("2026-11-01T00:00:00Z");
        s.last_digest_day = Some(date("2026-12-06"));
        assert_eq!(
            owed_days(&s, tokyo, DEFAULT_DIGEST_TIME, now),
            vec![date("2026-12-07"), date("2026-12-08"), date("2026-12-09")],
            "the days missed while down"
        );
        s.last_digest_day = Some(date("2026-10-01"));
        let owed = owed_days(&s, tokyo, DEFAULT_DIGEST_TIME, now);
        assert_eq!(owed.len(), CATCH_UP_DAYS as usize);
        assert_eq!(owed.first(), Some(&date("2026-12-03")));
        assert_eq!(owed.last(), Some(&date("2026-12-09")));
    }

    #[test]
    fn a_local_day_spans_its_utc_instants_also_across_daylight_saving() {
        let (start, end) = day_span(chrono_tz::Asia::Tokyo, date("2026-12-05"));
        assert_eq!(start, utc("2026-12-04T15:00:00Z"));
        assert_eq!(end, utc("2026-12-05T15:00:00Z"));
        // New York springs forward on 2026-03-08: a 23-hour day.
        let (start, end) = day_span(chrono_tz::America::New_York, date("2026-03-08"));
        assert_eq!((end - start).num_hours(), 23);
        // Santiago's clocks skip midnight (2026-09-06 00:00 → 01:00): the day starts at 01:00.
        let (start, _) = day_span(chrono_tz::America::Santiago, date("2026-09-06"));
        assert_eq!(start, utc("2026-09-06T04:00:00Z"));
    }
}
