//! Replaying a scorecard version on past days: what it would have scored
//! each account on each snapshot day, from the daily usage rollups (kept
//! forever). Pure; the store reads the rollups.
//!
//! Only usage measures have a past: Health keeps the days of usage, but an
//! external measure (a pushed value, days to renewal, contract active, the
//! e-mail response rate) only as it is now. A replay takes those as
//! missing, so the scorecard's missing-data policy decides, and says which
//! measures it could not replay.

use std::collections::{BTreeMap, HashMap};

use chrono::{Days, NaiveDate};

use super::{
    measure::{MeasureDef, compute_usage, parse_measure},
    rollup::DailyRollup,
    score::{Band, score_and_band},
    scorecard::{Normalisation, ScorecardDef, population},
};

/// The measures of `def` a replay cannot know the past values of.
pub fn unreplayable(def: &ScorecardDef) -> Vec<String> {
    def.measures
        .iter()
        .filter(|m| !matches!(parse_measure(&m.measure), Ok(d) if !matches!(d, MeasureDef::External { .. })))
        .map(|m| m.measure.clone())
        .collect()
}

/// The days of rollups before a snapshot day the replay of `def` reads.
pub fn lookback(def: &ScorecardDef) -> u32 {
    def.measures.iter().filter_map(|m| parse_measure(&m.measure).ok()).map(|d| d.lookback_days()).max().unwrap_or(0)
}

/// The event names `def`'s measures count, when they count events of named
/// events only (a replay then reads no other rollups); `None` when some
/// measure reads every event (users, minutes, breadth).
pub fn event_names(def: &ScorecardDef) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for m in &def.measures {
        let d = match parse_measure(&m.measure) {
            Ok(MeasureDef::Change { of }) => *of,
            Ok(d) => d,
            Err(_) => continue,
        };
        match d {
            MeasureDef::Events { event_name, .. } => names.push(event_name),
            MeasureDef::External { .. } => {}
            _ => return None,
        }
    }
    names.sort();
    names.dedup();
    Some(names)
}

/// Whether `def` has a feature-breadth measure (it needs the tenant's
/// tracked event names per day).
pub fn needs_tracked(def: &ScorecardDef) -> bool {
    def.measures.iter().any(|m| {
        matches!(parse_measure(&m.measure), Ok(MeasureDef::FeatureBreadth { .. }))
            || matches!(parse_measure(&m.measure), Ok(MeasureDef::Change { of }) if matches!(*of, MeasureDef::FeatureBreadth { .. }))
    })
}

/// Per day of `days`, the event names the tenant used in the 90 days ending
/// that day (the denominator of feature breadth, as live scoring counts it).
pub fn tracked_per_day(name_days: &[(NaiveDate, String)], days: &[NaiveDate]) -> HashMap<NaiveDate, usize> {
    days.iter()
        .map(|&d| {
            let since = d.checked_sub_days(Days::new(90)).unwrap_or(NaiveDate::MIN);
            let names: std::collections::HashSet<&str> =
                name_days.iter().filter(|(nd, _)| *nd >= since && *nd <= d).map(|(_, n)| n.as_str()).collect();
            (d, names.len())
        })
        .collect()
}

/// One account's usage: the first day it ever had usage, and its rollups
/// over the replayed days and their lookback, sorted by day (so that each
/// day reads only the rollups of its windows).
#[derive(Clone, Copy)]
pub struct AccountUsage<'a> {
    pub first_day: Option<NaiveDate>,
    pub rollups: &'a [DailyRollup],
}

/// A scorecard's measures, parsed once for a replay (external or unknown
/// ones as `None`), and the longest window they read.
pub struct Measures {
    parsed: Vec<Option<MeasureDef>>,
    lookback: u32,
}

impl Measures {
    pub fn of(def: &ScorecardDef) -> Measures {
        let parsed = def
            .measures
            .iter()
            .map(|m| parse_measure(&m.measure).ok().filter(|d| !matches!(d, MeasureDef::External { .. })))
            .collect();
        Measures { parsed, lookback: lookback(def) }
    }
}

/// The raw values of the measures (in the scorecard's order) for an account
/// on `day`: usage measures from its rollups (missing before its first
/// usage, as live scoring has them), external ones missing.
pub fn values_on(measures: &Measures, usage: &AccountUsage<'_>, day: NaiveDate, tracked: usize) -> Vec<Option<f64>> {
    let has_usage = usage.first_day.is_some_and(|f| f <= day);
    // The rollups of the longest window ending `day`.
    let from = day.checked_sub_days(Days::new(u64::from(measures.lookback))).unwrap_or(NaiveDate::MIN);
    let lo = usage.rollups.partition_point(|r| r.day <= from);
    let hi = usage.rollups.partition_point(|r| r.day <= day);
    let rollups = &usage.rollups[lo..hi.max(lo)];
    measures
        .parsed
        .iter()
        .map(|d| match d {
            Some(d) if has_usage => compute_usage(d, rollups, day, tracked),
            _ => None,
        })
        .collect()
}

/// The raw values of `def`'s measures for each snapshot (its day, its
/// account's usage) of `snapshots`, in their order; `tracked` holds each
/// day's tracked event names. Snapshots of one account next to each other
/// read its rollups while they are in the cache.
pub fn values(
    def: &ScorecardDef,
    snapshots: &[(NaiveDate, AccountUsage<'_>)],
    tracked: &HashMap<NaiveDate, usize>,
) -> Vec<Vec<Option<f64>>> {
    let measures = Measures::of(def);
    snapshots
        .iter()
        .map(|(day, usage)| values_on(&measures, usage, *day, tracked.get(day).copied().unwrap_or(0)))
        .collect()
}

/// Scores snapshots from their raw values: `values[i]` (in the scorecard's
/// order) on `days[i]`. Percentile measures rank among the values of the
/// same day. `None` where nothing counts.
pub fn score_snapshots(
    def: &ScorecardDef,
    values: &[Vec<Option<f64>>],
    days: &[NaiveDate],
) -> Vec<Option<(f64, Band)>> {
    let percentile: Vec<usize> = (0..def.measures.len())
        .filter(|&i| matches!(def.measures[i].normalisation, Normalisation::Percentile))
        .collect();
    if percentile.is_empty() {
        let none = vec![None; def.measures.len()];
        return values.iter().map(|v| score_and_band(def, v, &none)).collect();
    }
    let mut by_day: BTreeMap<NaiveDate, Vec<usize>> = BTreeMap::new();
    for (i, day) in days.iter().enumerate() {
        by_day.entry(*day).or_default().push(i);
    }
    let mut out = vec![None; values.len()];
    for snapshots in by_day.values() {
        let mut populations: Vec<Option<Vec<f64>>> = vec![None; def.measures.len()];
        for &m in &percentile {
            populations[m] = Some(population(snapshots.iter().map(|&i| values[i][m])));
        }
        let populations: Vec<Option<&[f64]>> = populations.iter().map(Option::as_deref).collect();
        for &i in snapshots {
            out[i] = score_and_band(def, &values[i], &populations);
        }
    }
    out
}

/// Replays `def` over `snapshots` (as [`values`] has them): what it would
/// have scored each.
pub fn replay(
    def: &ScorecardDef,
    snapshots: &[(NaiveDate, AccountUsage<'_>)],
    tracked: &HashMap<NaiveDate, usize>,
) -> Vec<Option<(f64, Band)>> {
    let days: Vec<NaiveDate> = snapshots.iter().map(|(day, _)| *day).collect();
    score_snapshots(def, &values(def, snapshots, tracked), &days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scorecard::{Bands, Direction, MissingData, Scope, WeightedMeasure};

    fn card(measures: &[(&str, Normalisation)]) -> ScorecardDef {
        ScorecardDef {
            name: "t".into(),
            scope: Scope::All,
            measures: measures
                .iter()
                .map(|(m, n)| WeightedMeasure {
                    measure: (*m).into(),
                    weight: 1.0,
                    normalisation: n.clone(),
                    direction: Direction::HigherIsBetter,
                    missing: MissingData::SkipAndReweight,
                })
                .collect(),
            bands: Bands::default(),
        }
    }

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    fn logins(d: NaiveDate, n: i64) -> DailyRollup {
        DailyRollup { events: n, ..DailyRollup::new(d, "login") }
    }

    #[test]
    fn a_replay_scores_each_day_from_the_usage_of_its_window() {
        let def = card(&[
            ("events_7d:login", Normalisation::Linear { min: 0.0, max: 10.0 }),
            ("external:nps", Normalisation::Linear { min: 0.0, max: 10.0 }),
        ]);
        assert_eq!(unreplayable(&def), ["external:nps"]);
        assert_eq!(lookback(&def), 7);
        assert_eq!(event_names(&def), Some(vec!["login".to_owned()]));
        assert_eq!(event_names(&card(&[("active_users_7d", Normalisation::Percentile)])), None);
        let a = [logins(day(1, 1), 5), logins(day(1, 5), 3), logins(day(1, 20), 10)];
        let usage = AccountUsage { first_day: Some(day(1, 1)), rollups: &a };
        // 01-07: 5 + 3 = 8 → 80 points; 01-15: none in 01-09..01-15 → 0; 01-20: 10 → 100.
        let snapshots: Vec<_> = [day(1, 7), day(1, 15), day(1, 20)]
            .into_iter()
            .map(|d| (d, AccountUsage { first_day: usage.first_day, rollups: usage.rollups }))
            .collect();
        let got = replay(&def, &snapshots, &HashMap::new());
        assert_eq!(got, [Some((80.0, Band::Green)), Some((0.0, Band::Red)), Some((100.0, Band::Green))]);
        // Before its first usage an account has no usage values: no score.
        let early = AccountUsage { first_day: Some(day(1, 10)), rollups: &a };
        assert_eq!(values_on(&Measures::of(&def), &early, day(1, 7), 0), [None, None]);
    }

    #[test]
    fn percentiles_rank_among_the_days_snapshots() {
        let def = card(&[("events_7d:login", Normalisation::Percentile)]);
        let rows: Vec<Vec<DailyRollup>> = [1, 5, 9, 2, 4].iter().map(|n| vec![logins(day(1, 3), *n)]).collect();
        // Three accounts on 01-05, two on 01-06 (each day its own population), interleaved.
        let days = [day(1, 5), day(1, 5), day(1, 5), day(1, 6), day(1, 6)];
        let order = [0, 3, 1, 4, 2];
        let snapshots: Vec<_> =
            order.iter().map(|&i| (days[i], AccountUsage { first_day: Some(day(1, 1)), rollups: &rows[i] })).collect();
        let got: Vec<f64> = replay(&def, &snapshots, &HashMap::new()).into_iter().map(|s| s.unwrap().0).collect();
        assert_eq!(got, [0.0, 0.0, 50.0, 100.0, 100.0]);
    }

    #[test]
    fn tracked_names_count_the_ninety_days_to_the_day() {
        let names = [(day(1, 1), "a".to_owned()), (day(3, 1), "b".to_owned()), (day(3, 2), "a".to_owned())];
        let t = tracked_per_day(&names, &[day(1, 1), day(3, 1), day(4, 15)]);
        assert_eq!((t[&day(1, 1)], t[&day(3, 1)], t[&day(4, 15)]), (1, 2, 2));
        assert!(needs_tracked(&card(&[("change:feature_breadth_7d", Normalisation::Percentile)])));
    }
}
