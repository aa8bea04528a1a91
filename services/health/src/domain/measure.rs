//! The measure catalog, defined as data: a scorecard names its measures by
//! id, and an id parses to a [`MeasureDef`] that says how to compute it.
//!
//! ## Measure ids
//!
//! | id | value |
//! |---|---|
//! | `active_users_<N>d` | distinct users over all event names in the last N days |
//! | `events_<N>d:<event name>` | events of that name in the last N days |
//! | `usage_minutes_<N>d` | summed durations in the last N days, in minutes |
//! | `feature_breadth_<N>d` | distinct event names used in the last N days ÷ the tenant's tracked event names |
//! | `change:<usage measure id>` | (current − previous) ÷ previous, previous being the N days before the window |
//! | `external:<name>` | a value pushed from outside (`email_response_rate_90d`, `days_to_renewal`, `contract_active`, or any SetMeasureValue name) |
//!
//! N is 1 to 90, written without leading zeros (so every measure has exactly
//! one id, and "the same measure twice" is a string comparison). An event
//! name is 1 to 128 characters of `[A-Za-z0-9_.:-]` (as ingest accepts it;
//! it may itself contain `:`); an external name is 1 to 64 of `[a-z0-9_]`.
//! `change:` applies to usage measures only, once.
//!
//! "The last N days" end today inclusive: `active_users_7d` on 2026-04-07
//! covers 2026-04-01 to 2026-04-07, in the tenant's days.

use std::collections::HashSet;
use std::fmt;

use banso_kit::shown;
use chrono::{Days, NaiveDate};

use super::rollup::DailyRollup;

/// The longest window a usage measure may cover, in days.
pub const MAX_WINDOW_DAYS: u32 = 90;

/// The e-mail response rate over 90 days (0..1), from ActivityLogged.
pub const EMAIL_RESPONSE_RATE_90D: &str = "email_response_rate_90d";
/// Days until the account's renewal date (negative once past), from Accounts.
pub const DAYS_TO_RENEWAL: &str = "days_to_renewal";
/// 1 while the account has an active contract, else 0, from Accounts.
pub const CONTRACT_ACTIVE: &str = "contract_active";

/// How a measure is computed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MeasureDef {
    /// Distinct users over all event names in the last `days` days.
    ActiveUsers { days: u32 },
    /// Events of `event_name` in the last `days` days.
    Events { days: u32, event_name: String },
    /// Summed durations in the last `days` days, in minutes.
    UsageMinutes { days: u32 },
    /// Distinct event names used in the last `days` days ÷ tracked event names.
    FeatureBreadth { days: u32 },
    /// Relative change of a usage measure against the window before it.
    /// `of` is always a usage measure (never a change or external one).
    Change { of: Box<MeasureDef> },
    /// A value pushed from outside, by name (without the `external:` prefix).
    External { name: String },
}

impl MeasureDef {
    /// How many days of rollups, ending today, the measure reads: N for a
    /// window, 2N for a change, 0 for an external measure. Lets the store
    /// load no more rows than needed.
    pub fn lookback_days(&self) -> u32 {
        match self {
            MeasureDef::ActiveUsers { days }
            | MeasureDef::Events { days, .. }
            | MeasureDef::UsageMinutes { days }
            | MeasureDef::FeatureBreadth { days } => *days,
            MeasureDef::Change { of } => 2 * of.lookback_days(),
            MeasureDef::External { .. } => 0,
        }
    }
}

impl fmt::Display for MeasureDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeasureDef::ActiveUsers { days } => write!(f, "active_users_{days}d"),
            MeasureDef::Events { days, event_name } => write!(f, "events_{days}d:{event_name}"),
            MeasureDef::UsageMinutes { days } => write!(f, "usage_minutes_{days}d"),
            MeasureDef::FeatureBreadth { days } => write!(f, "feature_breadth_{days}d"),
            MeasureDef::Change { of } => write!(f, "change:{of}"),
            MeasureDef::External { name } => write!(f, "external:{name}"),
        }
    }
}

/// An event name as ingest accepts it: 1 to 128 of `[A-Za-z0-9_.:-]`.
pub fn is_event_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// An external measure name as SetMeasureValue accepts it: 1 to 64 of `[a-z0-9_]`.
pub fn is_external_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Parses a measure id (see the module docs for the syntax).
pub fn parse_measure(id: &str) -> Result<MeasureDef, String> {
    if let Some(name) = id.strip_prefix("external:") {
        return if is_external_name(name) {
            Ok(MeasureDef::External { name: name.to_owned() })
        } else {
            Err(format!("measure {}: an external measure name is 1 to 64 characters of a-z, 0-9 and _", shown(id)))
        };
    }
    if let Some(inner) = id.strip_prefix("change:") {
        if inner.starts_with("change:") || inner.starts_with("external:") {
            return Err(format!("measure {}: change: applies to usage measures only, once", shown(id)));
        }
        return parse_usage(inner)
            .map(|of| MeasureDef::Change { of: Box::new(of) })
            .map_err(|why| format!("measure {}: {why}", shown(id)));
    }
    parse_usage(id).map_err(|why| format!("measure {}: {why}", shown(id)))
}

/// Parses a usage measure id; the error says why, without the id.
fn parse_usage(id: &str) -> Result<MeasureDef, String> {
    let (head, event_name) = match id.split_once(':') {
        Some((h, e)) => (h, Some(e)),
        None => (id, None),
    };
    let unknown = || {
        "unknown measure; expected active_users_<N>d, events_<N>d:<event name>, usage_minutes_<N>d, \
         feature_breadth_<N>d, change:<usage measure> or external:<name>"
            .to_owned()
    };
    let Some(rest) = head.strip_suffix('d') else { return Err(unknown()) };
    let Some((kind, n)) = rest.rsplit_once('_') else { return Err(unknown()) };
    let kind_known = matches!(kind, "active_users" | "events" | "usage_minutes" | "feature_breadth");
    if !kind_known || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unknown());
    }
    let days = match n.parse::<u32>() {
        Ok(days) if (1..=MAX_WINDOW_DAYS).contains(&days) && !n.starts_with('0') => days,
        _ => {
            return Err(format!(
                "the window must be 1 to {MAX_WINDOW_DAYS} days, without leading zeros, got {}",
                shown(n)
            ));
        }
    };
    match (kind, event_name) {
        ("events", None) => Err("events_<N>d needs an event name: events_<N>d:<event name>".to_owned()),
        ("events", Some(e)) if !is_event_name(e) => {
            Err(format!("event name {} must be 1 to 128 characters of A-Z, a-z, 0-9, _, ., : and -", shown(e)))
        }
        ("events", Some(e)) => Ok(MeasureDef::Events { days, event_name: e.to_owned() }),
        (_, Some(_)) => Err(format!("{kind}_<N>d takes no event name")),
        ("active_users", None) => Ok(MeasureDef::ActiveUsers { days }),
        ("usage_minutes", None) => Ok(MeasureDef::UsageMinutes { days }),
        ("feature_breadth", None) => Ok(MeasureDef::FeatureBreadth { days }),
        _ => Err(unknown()),
    }
}

/// The windows of days a set of usage measures reads, and the event names
/// whose events they count in each: the scorer reads each account's totals
/// over them ([`Totals`]), one row per account computed by the database,
/// instead of its rollups. A window measure of N days reads the window
/// ending today, offsets [0, N) (0 is today), and the one before it,
/// [N, 2N): what a change compares with, and what HealthScoreChanged
/// reports beside every window measure ([`previous_usage_value_of`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Windows {
    /// (first offset, days): offsets [first, first + days) before today,
    /// ascending, each once.
    pub spans: Vec<(u32, u32)>,
    /// (index in `spans`, event name): the events counted, each once.
    pub counted: Vec<(usize, String)>,
}

impl Windows {
    /// The windows `defs` read (external measures read none).
    pub fn of<'a>(defs: impl IntoIterator<Item = &'a MeasureDef>) -> Windows {
        let mut spans = std::collections::BTreeSet::new();
        let mut counted = std::collections::BTreeSet::new();
        for d in defs {
            let window = match d {
                MeasureDef::Change { of } => of.as_ref(),
                MeasureDef::External { .. } => continue,
                window => window,
            };
            let days = window.lookback_days();
            if days == 0 {
                continue;
            }
            for first in [0, days] {
                spans.insert((first, days));
                if let MeasureDef::Events { event_name, .. } = window {
                    counted.insert(((first, days), event_name.clone()));
                }
            }
        }
        let spans: Vec<(u32, u32)> = spans.into_iter().collect();
        let counted =
            counted.into_iter().filter_map(|(span, name)| Some((spans.binary_search(&span).ok()?, name))).collect();
        Windows { spans, counted }
    }

    /// No usage measure: nothing to read.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// How many days back the windows reach: offsets [0, reach) (0 without
    /// windows).
    pub fn reach(&self) -> u32 {
        self.spans.iter().map(|(first, days)| first + days).max().unwrap_or(0)
    }

    fn span(&self, first: u32, days: u32) -> Option<usize> {
        self.spans.binary_search(&(first, days)).ok()
    }
}

/// One account's usage over the windows of a [`Windows`]: what its usage
/// measures are computed from ([`usage_value_of`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// Per span of [`Windows::spans`].
    pub spans: Vec<SpanTotals>,
    /// Events per entry of [`Windows::counted`].
    pub counted: Vec<i64>,
}

/// An account's usage over one window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SpanTotals {
    /// Summed durations.
    pub duration_secs: f64,
    /// Distinct event names with events.
    pub names: i64,
    /// Distinct (non-empty) user keys, over all event names.
    pub users: i64,
}

impl Totals {
    /// No usage in any window.
    pub fn zero(windows: &Windows) -> Totals {
        Totals { spans: vec![SpanTotals::default(); windows.spans.len()], counted: vec![0; windows.counted.len()] }
    }
}

/// The value of a usage measure for one account, or `None` (missing), from
/// its [`Totals`] over `windows` (which must hold the measure's windows:
/// [`Windows::of`] its def).
///
/// An account that never had usage — no event of it was ever rolled up —
/// has no usage values at all: nothing is known of its use yet (it was just
/// created, or its product is not instrumented), so each usage measure is
/// missing and the scorecard's missing-data policy decides (skipped and
/// reweighted, or counted as zero). Once it has had usage, its counts in a
/// window without events are 0, not missing: no logins in 30 days is the
/// strongest churn signal there is. See [`compute_usage`] for the rest.
pub fn usage_value_of(
    def: &MeasureDef,
    has_usage: bool,
    windows: &Windows,
    totals: &Totals,
    tracked_event_names: usize,
) -> Option<f64> {
    if !has_usage {
        return None;
    }
    match def {
        MeasureDef::Change { of } => {
            let days = of.lookback_days();
            let current = span_value(of, windows, totals, 0, tracked_event_names)?;
            let previous = span_value(of, windows, totals, days, tracked_event_names)?;
            if previous == 0.0 { None } else { Some((current - previous) / previous) }
        }
        _ => span_value(def, windows, totals, 0, tracked_event_names),
    }
}

/// The value of a usage window measure over the window just before the one
/// [`usage_value_of`] reads: days [N, 2N) back for a window of N days (the
/// window a `change:` measure compares with). `None` where it has no
/// meaning — `change:` and external measures — and for an account that
/// never had usage.
pub fn previous_usage_value_of(
    def: &MeasureDef,
    has_usage: bool,
    windows: &Windows,
    totals: &Totals,
    tracked_event_names: usize,
) -> Option<f64> {
    if !has_usage {
        return None;
    }
    span_value(def, windows, totals, def.lookback_days(), tracked_event_names)
}

/// A window measure over the window of its length starting `first` days
/// back, as [`window_value`] computes it from rollups.
fn span_value(def: &MeasureDef, windows: &Windows, totals: &Totals, first: u32, tracked: usize) -> Option<f64> {
    let days = match def {
        MeasureDef::Change { .. } | MeasureDef::External { .. } => return None,
        _ => def.lookback_days(),
    };
    if days == 0 {
        return None;
    }
    let span = windows.span(first, days)?;
    let t = totals.spans.get(span)?;
    match def {
        MeasureDef::ActiveUsers { .. } => Some(t.users as f64),
        MeasureDef::Events { event_name, .. } => {
            let i = windows.counted.iter().position(|(s, n)| *s == span && n == event_name)?;
            Some(*totals.counted.get(i)? as f64)
        }
        MeasureDef::UsageMinutes { .. } => Some(t.duration_secs / 60.0),
        MeasureDef::FeatureBreadth { .. } => {
            if tracked == 0 {
                return None;
            }
            // Capped at 1, as from rollups.
            Some((t.names as f64 / tracked as f64).min(1.0))
        }
        MeasureDef::Change { .. } | MeasureDef::External { .. } => None,
    }
}

/// An account's [`Totals`] over `windows` from its daily rollups: the
/// reference the database's totals are tested against (the store computes
/// them in SQL).
#[cfg(test)]
pub fn totals_of(windows: &Windows, rollups: &[DailyRollup], today: NaiveDate) -> Totals {
    let in_span = |(first, days): (u32, u32), day: NaiveDate| {
        let end = today.checked_sub_days(Days::new(u64::from(first))).unwrap_or(NaiveDate::MIN);
        let start = end.checked_sub_days(Days::new(u64::from(days) - 1)).unwrap_or(NaiveDate::MIN);
        start <= day && day <= end
    };
    let spans = windows
        .spans
        .iter()
        .map(|span| {
            let rows: Vec<&DailyRollup> = rollups.iter().filter(|r| in_span(*span, r.day)).collect();
            let users: HashSet<&str> =
                rows.iter().flat_map(|r| r.users.iter().map(String::as_str)).filter(|u| !u.is_empty()).collect();
            let names: HashSet<&str> = rows.iter().filter(|r| r.events > 0).map(|r| r.event_name.as_str()).collect();
            SpanTotals {
                duration_secs: rows.iter().map(|r| r.duration_secs).sum(),
                names: names.len() as i64,
                users: users.len() as i64,
            }
        })
        .collect();
    let counted = windows
        .counted
        .iter()
        .map(|(span, name)| {
            rollups
                .iter()
                .filter(|r| in_span(windows.spans[*span], r.day) && &r.event_name == name)
                .map(|r| r.events)
                .sum()
        })
        .collect();
    Totals { spans, counted }
}

/// The value of a usage measure for one account from its daily rollups
/// (the reference of [`usage_value_of`], which scoring uses).
#[cfg(test)]
pub fn usage_value(
    def: &MeasureDef,
    has_usage: bool,
    rollups: &[DailyRollup],
    today: NaiveDate,
    tracked_event_names: usize,
) -> Option<f64> {
    if !has_usage {
        return None;
    }
    compute_usage(def, rollups, today, tracked_event_names)
}

/// The value of a usage window measure over the window just before the one
/// [`usage_value`] reads: days [N, 2N) back for a window of N days (the
/// window a `change:` measure compares with). `None` where it has no
/// meaning — `change:` and external measures — and, as for [`usage_value`],
/// for an account that never had usage.
#[cfg(test)]
pub fn previous_usage_value(
    def: &MeasureDef,
    has_usage: bool,
    rollups: &[DailyRollup],
    today: NaiveDate,
    tracked_event_names: usize,
) -> Option<f64> {
    if !has_usage {
        return None;
    }
    previous_window_value(def, rollups, today, tracked_event_names)
}

/// A window measure over the window of the same length just before the one
/// ending `today`; `None` for other measures.
fn previous_window_value(def: &MeasureDef, rollups: &[DailyRollup], today: NaiveDate, tracked: usize) -> Option<f64> {
    let previous_end = today.checked_sub_days(Days::new(u64::from(def.lookback_days())))?;
    window_value(def, rollups, previous_end, tracked)
}

/// Computes a usage measure for one account from its rollups. `today` is
/// the tenant's current day; `tracked_event_names` is how many event names
/// the tenant tracks (the denominator of feature breadth).
///
/// Counts over no rollups are 0 (whether the account has had usage at all is
/// [`usage_value`]'s question). `None` only where a ratio is undefined —
/// feature breadth with no tracked names, a change whose previous window is
/// 0 — and for external measures, which are not computed here (the store
/// holds their pushed values).
pub fn compute_usage(
    def: &MeasureDef,
    rollups: &[DailyRollup],
    today: NaiveDate,
    tracked_event_names: usize,
) -> Option<f64> {
    match def {
        MeasureDef::Change { of } => {
            let current = window_value(of, rollups, today, tracked_event_names)?;
            let previous = previous_window_value(of, rollups, today, tracked_event_names)?;
            if previous == 0.0 { None } else { Some((current - previous) / previous) }
        }
        _ => window_value(def, rollups, today, tracked_event_names),
    }
}

/// A window measure over the `days` days ending at `end`, inclusive.
fn window_value(def: &MeasureDef, rollups: &[DailyRollup], end: NaiveDate, tracked: usize) -> Option<f64> {
    let days = match def {
        MeasureDef::Change { .. } | MeasureDef::External { .. } => return None,
        _ => u64::from(def.lookback_days()),
    };
    if days == 0 {
        // Only a hand-built def can have an empty window; ids cannot.
        return None;
    }
    // A window reaching before the calendar's first day starts there.
    let start = end.checked_sub_days(Days::new(days - 1)).unwrap_or(NaiveDate::MIN);
    let mut in_window = rollups.iter().filter(|r| start <= r.day && r.day <= end);
    match def {
        MeasureDef::ActiveUsers { .. } => {
            let users: HashSet<&str> =
                in_window.flat_map(|r| r.users.iter().map(String::as_str)).filter(|u| !u.is_empty()).collect();
            Some(users.len() as f64)
        }
        MeasureDef::Events { event_name, .. } => {
            Some(in_window.filter(|r| &r.event_name == event_name).map(|r| r.events).sum::<i64>() as f64)
        }
        MeasureDef::UsageMinutes { .. } => Some(in_window.map(|r| r.duration_secs).sum::<f64>() / 60.0),
        MeasureDef::FeatureBreadth { .. } => {
            if tracked == 0 {
                return None;
            }
            let used: HashSet<&str> =
                in_window.by_ref().filter(|r| r.events > 0).map(|r| r.event_name.as_str()).collect();
            // Capped at 1: an account may use a name the tenant no longer
            // tracks, and breadth beyond "everything" means nothing.
            Some((used.len() as f64 / tracked as f64).min(1.0))
        }
        MeasureDef::Change { .. } | MeasureDef::External { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every measure computed from an account's totals over its windows
    /// ([`Windows`], [`totals_of`]) has the value its daily rollups give.
    #[test]
    fn totals_over_windows_give_the_daily_values() {
        let defs: Vec<MeasureDef> = [
            "active_users_7d",
            "active_users_30d",
            "change:active_users_7d",
            "events_30d:report_viewed",
            "events_1d:login",
            "change:events_7d:report_viewed",
            "usage_minutes_30d",
            "usage_minutes_7d",
            "change:usage_minutes_30d",
            "feature_breadth_30d",
            "feature_breadth_14d",
            "external:nps",
        ]
        .iter()
        .map(|id| parse(id))
        .collect();
        let windows = Windows::of(&defs);
        assert_eq!(windows.spans, [(0, 1), (0, 7), (0, 14), (0, 30), (1, 1), (7, 7), (14, 14), (30, 30)]);
        assert_eq!(
            windows.counted,
            [
                (0, "login".to_owned()),
                (1, "report_viewed".to_owned()),
                (3, "report_viewed".to_owned()),
                (4, "login".to_owned()),
                (5, "report_viewed".to_owned()),
                (7, "report_viewed".to_owned()),
            ]
        );
        assert_eq!(windows.reach(), 60);
        assert!(Windows::of(&[parse("external:nps")]).is_empty());

        let today = d(2026, 11, 22);
        let names = ["login", "report_viewed", "dashboard_viewed", "export"];
        // 70 days of irregular usage by six users (a deterministic pattern),
        // and a day after today that no window holds.
        let mut daily = Vec::new();
        for offset in -1..70i64 {
            let day = today.checked_add_signed(chrono::Duration::days(-offset)).unwrap();
            let o = (offset + 1) as usize;
            for (k, name) in names.iter().enumerate() {
                let n = (o * 7 + k * 3) % 5;
                if n == 0 {
                    continue;
                }
                let mut r = DailyRollup::new(day, *name);
                for e in 0..n {
                    r.add_event(&format!("user-{}", (o + e + k) % 6), 1.5, Some(40.0 * e as f64));
                }
                daily.push(r);
            }
        }
        let totals = totals_of(&windows, &daily, today);
        for def in &defs {
            let want = usage_value(def, true, &daily, today, names.len());
            assert_eq!(want.is_some(), !matches!(def, MeasureDef::External { .. }), "{def:?} has a value");
            assert_eq!(usage_value_of(def, true, &windows, &totals, names.len()), want, "{def:?}");
            assert_eq!(usage_value_of(def, false, &windows, &totals, names.len()), None, "{def:?}");
            // The previous window too, where a measure has one.
            let previous = previous_usage_value(def, true, &daily, today, names.len());
            assert_eq!(previous.is_some(), !matches!(def, MeasureDef::Change { .. } | MeasureDef::External { .. }));
            assert_eq!(previous_usage_value_of(def, true, &windows, &totals, names.len()), previous, "{def:?}");
        }
        // No usage in any window: counts 0, changes undefined.
        let zero = Totals::zero(&windows);
        for def in &defs {
            assert_eq!(usage_value_of(def, true, &windows, &zero, names.len()), usage_value(def, true, &[], today, 4));
        }
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn parse(id: &str) -> MeasureDef {
        parse_measure(id).unwrap()
    }

    #[test]
    fn parses_every_kind_of_id() {
        assert_eq!(parse("active_users_7d"), MeasureDef::ActiveUsers { days: 7 });
        assert_eq!(parse("active_users_30d"), MeasureDef::ActiveUsers { days: 30 });
        assert_eq!(
            parse("events_30d:report_exported"),
            MeasureDef::Events { days: 30, event_name: "report_exported".into() }
        );
        assert_eq!(parse("events_1d:app:opened"), MeasureDef::Events { days: 1, event_name: "app:opened".into() });
        assert_eq!(parse("usage_minutes_30d"), MeasureDef::UsageMinutes { days: 30 });
        assert_eq!(parse("feature_breadth_90d"), MeasureDef::FeatureBreadth { days: 90 });
        assert_eq!(
            parse("change:active_users_30d"),
            MeasureDef::Change { of: Box::new(MeasureDef::ActiveUsers { days: 30 }) }
        );
        assert_eq!(
            parse("change:events_7d:login"),
            MeasureDef::Change { of: Box::new(MeasureDef::Events { days: 7, event_name: "login".into() }) }
        );
        assert_eq!(
            parse("external:email_response_rate_90d"),
            MeasureDef::External { name: EMAIL_RESPONSE_RATE_90D.into() }
        );
        assert_eq!(parse("external:nps"), MeasureDef::External { name: "nps".into() });
        assert_eq!(parse("external:days_to_renewal"), MeasureDef::External { name: DAYS_TO_RENEWAL.into() });
        assert_eq!(parse("external:contract_active"), MeasureDef::External { name: CONTRACT_ACTIVE.into() });
    }

    #[test]
    fn ids_round_trip() {
        for id in [
            "active_users_7d",
            "events_30d:report_exported",
            "usage_minutes_1d",
            "feature_breadth_30d",
            "change:usage_minutes_30d",
            "change:events_14d:a.b-c",
            "external:nps",
        ] {
            assert_eq!(parse(id).to_string(), id);
        }
    }

    #[test]
    fn rejects_unknown_and_malformed_ids_quoting_them() {
        for bad in [
            "",
            "active_users",
            "active_users_d",
            "active_users_0d",
            "active_users_07d",
            "active_users_91d",
            "active_users_7",
            "active_users_-7d",
            "active_users_+7d",
            "active_users_7d:login",
            "Active_Users_7d",
            "logins_7d",
            "events_30d",
            "events_30d:",
            "events_30d:レポート",
            "events_30d:has space",
            "change:",
            "change:external:nps",
            "change:change:active_users_7d",
            "external:",
            "external:NPS",
            "external:nps-score",
            " active_users_7d",
        ] {
            let e = parse_measure(bad).unwrap_err();
            let prefix = format!("measure {bad:?}: ");
            assert!(e.starts_with(&prefix), "{bad}: {e}");
            assert!(e[prefix.len()..].starts_with(|c: char| c.is_ascii_lowercase()), "{bad}: {e}");
        }
        // A long id is quoted cut short, with its length.
        let long = format!("external:{}", "x".repeat(10_000));
        assert!(parse_measure(&long).unwrap_err().len() < 250);
        assert_eq!(
            parse_measure("active_users_91d").unwrap_err(),
            r#"measure "active_users_91d": the window must be 1 to 90 days, without leading zeros, got "91""#
        );
    }

    #[test]
    fn lookback_days() {
        assert_eq!(parse("active_users_7d").lookback_days(), 7);
        assert_eq!(parse("change:usage_minutes_30d").lookback_days(), 60);
        assert_eq!(parse("external:nps").lookback_days(), 0);
        // A hand-built empty window has no value (ids cannot express one).
        assert_eq!(compute_usage(&MeasureDef::ActiveUsers { days: 0 }, &[], d(2026, 4, 7), 1), None);
    }

    fn row(day: NaiveDate, name: &str, events: i64, duration_secs: f64, users: &[&str]) -> DailyRollup {
        DailyRollup {
            day,
            event_name: name.into(),
            events,
            quantity: events as f64,
            duration_secs,
            users: users.iter().map(|u| (*u).to_owned()).collect(),
        }
    }

    /// 60 days of one account, 2026-02-07 to 2026-04-07 (today).
    ///
    /// Last 7 days (04-01..04-07):
    ///   04-07 login   3 events, 600 s,  users a, b
    ///   04-05 export  2 events, 120 s,  users b, c
    ///   04-01 login   1 event,  60 s,   user d          (first day of the 7d window)
    /// Days 8..30 back (03-09..03-31):
    ///   03-31 login   4 events, 1200 s, users a, e      (just outside 7d)
    ///   03-15 search  5 events, 300 s,  users a, f
    ///   03-09 export  1 event,  0 s,    user g          (last day of the 30d window)
    /// Previous 30-day window (02-07..03-08):
    ///   03-08 login   10 events, 1800 s, users a, b, h   (just outside 30d)
    ///   02-07 login   2 events, 0 s,    user a          (first day of 60)
    /// Before both windows:
    ///   02-06 login   100 events, 6000 s, user z        (61 days back: ignored)
    /// After today:
    ///   04-08 login   50 events, 60 s, user y           (not yet happened in the tenant's day)
    fn sixty_days() -> Vec<DailyRollup> {
        vec![
            row(d(2026, 4, 7), "login", 3, 600.0, &["a", "b"]),
            row(d(2026, 4, 5), "export", 2, 120.0, &["b", "c"]),
            row(d(2026, 4, 1), "login", 1, 60.0, &["d"]),
            row(d(2026, 3, 31), "login", 4, 1200.0, &["a", "e"]),
            row(d(2026, 3, 15), "search", 5, 300.0, &["f", "a"]),
            row(d(2026, 3, 9), "export", 1, 0.0, &["g"]),
            row(d(2026, 3, 8), "login", 10, 1800.0, &["a", "b", "h"]),
            row(d(2026, 2, 7), "login", 2, 0.0, &["a"]),
            row(d(2026, 2, 6), "login", 100, 6000.0, &["z"]),
            row(d(2026, 4, 8), "login", 50, 60.0, &["y"]),
        ]
    }

    const TODAY: (i32, u32, u32) = (2026, 4, 7);

    fn usage(id: &str, rollups: &[DailyRollup], tracked: usize) -> Option<f64> {
        compute_usage(&parse(id), rollups, d(TODAY.0, TODAY.1, TODAY.2), tracked)
    }

    #[test]
    fn active_users_are_distinct_across_days_and_event_names() {
        let r = sixty_days();
        // a, b, c, d.
        assert_eq!(usage("active_users_7d", &r, 4), Some(4.0));
        // a, b, c, d, e, f, g.
        assert_eq!(usage("active_users_30d", &r, 4), Some(7.0));
        // Only today: a, b.
        assert_eq!(usage("active_users_1d", &r, 4), Some(2.0));
        // 60 days add h.
        assert_eq!(usage("active_users_60d", &r, 4), Some(8.0));
    }

    #[test]
    fn events_of_one_name() {
        let r = sixty_days();
        assert_eq!(usage("events_7d:login", &r, 4), Some(4.0)); // 3 + 1
        assert_eq!(usage("events_30d:login", &r, 4), Some(8.0)); // 3 + 1 + 4
        assert_eq!(usage("events_30d:export", &r, 4), Some(3.0)); // 2 + 1
        assert_eq!(usage("events_30d:never_used", &r, 4), Some(0.0));
    }

    #[test]
    fn usage_minutes() {
        let r = sixty_days();
        // (600 + 120 + 60) / 60.
        assert_eq!(usage("usage_minutes_7d", &r, 4), Some(13.0));
        // (600 + 120 + 60 + 1200 + 300 + 0) / 60 = 2280 / 60.
        assert_eq!(usage("usage_minutes_30d", &r, 4), Some(38.0));
    }

    #[test]
    fn feature_breadth() {
        let r = sixty_days();
        // login, export of 4 tracked.
        assert_eq!(usage("feature_breadth_7d", &r, 4), Some(0.5));
        // login, export, search of 4.
        assert_eq!(usage("feature_breadth_30d", &r, 4), Some(0.75));
        // More names used than the tenant tracks: capped at 1.
        assert_eq!(usage("feature_breadth_30d", &r, 2), Some(1.0));
        // Nothing tracked: undefined.
        assert_eq!(usage("feature_breadth_30d", &r, 0), None);
    }

    #[test]
    fn change_against_the_previous_window() {
        let r = sixty_days();
        // Usage minutes: 30d = 38; previous 30d (02-07..03-08) = 1800 / 60 = 30.
        // (38 − 30) / 30.
        let c = usage("change:usage_minutes_30d", &r, 4).unwrap();
        assert!((c - 8.0 / 30.0).abs() < 1e-12, "{c}");
        // Active users: 30d = 7; previous = a, b, h = 3. (7 − 3) / 3.
        let c = usage("change:active_users_30d", &r, 4).unwrap();
        assert!((c - 4.0 / 3.0).abs() < 1e-12, "{c}");
        // Logins 7d = 4; previous 7d (03-25..03-31) = 4: no change.
        assert_eq!(usage("change:events_7d:login", &r, 4), Some(0.0));
        // Exports 7d = 2; previous 7d = 0: undefined.
        assert_eq!(usage("change:events_7d:export", &r, 4), None);
        // Feature breadth 7d = 0.5 (login, export); previous 7d = 0.25 (login). (0.5 − 0.25) / 0.25.
        assert_eq!(usage("change:feature_breadth_7d", &r, 4), Some(1.0));
        // Logins today = 3, yesterday (04-06) = 0: undefined.
        assert_eq!(usage("change:events_1d:login", &r, 4), None);
        // A fall: 1 login this week against 4 the week before. (1 − 4) / 4.
        let fall = vec![row(d(2026, 4, 7), "login", 1, 0.0, &["a"]), row(d(2026, 3, 31), "login", 4, 0.0, &["a"])];
        assert_eq!(usage("change:events_7d:login", &fall, 1), Some(-0.75));
    }

    /// The previous window of a plain window measure is the one a `change:`
    /// of it compares with: (value − previous) ÷ previous is the change.
    #[test]
    fn previous_values_are_the_window_before() {
        let r = sixty_days();
        let today = d(TODAY.0, TODAY.1, TODAY.2);
        let previous = |id: &str| previous_usage_value(&parse(id), true, &r, today, 4);
        // Usage minutes over 02-07..03-08: 1800 / 60.
        assert_eq!(previous("usage_minutes_30d"), Some(30.0));
        // Users a, b, h.
        assert_eq!(previous("active_users_30d"), Some(3.0));
        // Logins 03-25..03-31: 4; exports: 0 (a value, not missing).
        assert_eq!(previous("events_7d:login"), Some(4.0));
        assert_eq!(previous("events_7d:export"), Some(0.0));
        // login only, of 4 tracked.
        assert_eq!(previous("feature_breadth_7d"), Some(0.25));
        for id in ["usage_minutes_30d", "active_users_30d", "events_7d:login", "feature_breadth_7d"] {
            let (v, p) = (usage(id, &r, 4).unwrap(), previous(id).unwrap());
            let change = usage(&format!("change:{id}"), &r, 4).unwrap();
            assert!(((v - p) / p - change).abs() < 1e-12, "{id}");
        }
        // No meaning for changes and external measures; none without usage.
        assert_eq!(previous("change:events_7d:login"), None);
        assert_eq!(previous("external:nps"), None);
        assert_eq!(previous_usage_value(&parse("events_7d:login"), false, &r, today, 4), None);
    }

    #[test]
    fn an_account_whose_usage_stopped_counts_zero() {
        let none: Vec<DailyRollup> = vec![];
        let today = d(TODAY.0, TODAY.1, TODAY.2);
        let value = |id: &str| usage_value(&parse(id), true, &none, today, 4);
        assert_eq!(value("active_users_30d"), Some(0.0));
        assert_eq!(value("events_30d:login"), Some(0.0));
        assert_eq!(value("usage_minutes_30d"), Some(0.0));
        assert_eq!(value("feature_breadth_30d"), Some(0.0));
        assert_eq!(value("change:active_users_30d"), None);
        assert_eq!(value("external:nps"), None);
    }

    #[test]
    fn an_account_that_never_had_usage_has_no_usage_values() {
        let today = d(TODAY.0, TODAY.1, TODAY.2);
        for id in ["active_users_30d", "events_30d:login", "usage_minutes_30d", "feature_breadth_30d"] {
            assert_eq!(usage_value(&parse(id), false, &[], today, 4), None, "{id}");
            assert_eq!(usage_value(&parse(id), true, &[], today, 4), Some(0.0), "{id}");
        }
    }
}
