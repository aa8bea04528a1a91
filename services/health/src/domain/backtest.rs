//! Backtests: how well did a score foretell churn? Pure functions over
//! labelled snapshots (no I/O): labels from the churns that followed each
//! account-day snapshot within a horizon, then ROC AUC with a DeLong 95%
//! interval, the calibration table per band, lift, Brier score, precision
//! and recall of red as an alarm, median lead time, and the paired DeLong
//! difference of two versions' AUC on the same snapshots
//! (docs/health.md, *Backtests*).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::score::Band;

/// The two-sided 95% quantile of the standard normal distribution.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A churn of an account: the day it takes effect and the ARR it lost.
#[derive(Debug, Clone, PartialEq)]
pub struct Churn {
    pub account: Uuid,
    pub date: NaiveDate,
    pub currency: String,
    pub arr_lost: i64,
}

/// What labelling needs of an account's outcomes: its churns and its
/// reactivations, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountHistory {
    pub churns: Vec<Churn>,
    pub reactivations: Vec<NaiveDate>,
}

/// A snapshot: an account on a day (its score comes beside, per version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapshotKey {
    pub account: Uuid,
    pub day: NaiveDate,
}

/// A labelled snapshot: the index (in [`Labels::churns`]) of the churn that
/// followed it within the horizon, if one did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    pub key: SnapshotKey,
    pub churn: Option<u32>,
}

/// Labelled snapshots, and what was left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    /// The snapshots kept, in the order given.
    pub labels: Vec<Label>,
    /// The churns some kept snapshot is labelled with.
    pub churns: Vec<Churn>,
    /// Snapshots too recent to know: their horizon is not over by `today`.
    pub too_recent: u64,
    /// Snapshots of an account already churned that day (and not come back):
    /// nothing left to foretell.
    pub after_churn: u64,
}

/// Labels each snapshot by whether its account churned within `horizon`
/// days after it: positive when a churn takes effect on a day `c` with
/// `day < c ≤ day + horizon`. A snapshot whose horizon is not over
/// (`day + horizon ≥ today`) is left out and counted, whatever happened
/// since — keeping only the known churns of recent days would inflate the
/// churn rate. A snapshot on or after a churn of its account, before the
/// account's reactivation, is left out and counted too.
pub fn label(
    snapshots: impl IntoIterator<Item = SnapshotKey>,
    histories: &HashMap<Uuid, AccountHistory>,
    horizon: u32,
    today: NaiveDate,
) -> Labels {
    let mut out = Labels::default();
    let mut churn_index: HashMap<(Uuid, NaiveDate), u32> = HashMap::new();
    let empty = AccountHistory::default();
    for key in snapshots {
        let end = key.day.checked_add_days(chrono::Days::new(horizon.into()));
        if end.is_none_or(|end| end >= today) {
            out.too_recent += 1;
            continue;
        }
        let h = histories.get(&key.account).unwrap_or(&empty);
        // The latest churn on or before the day, and whether a reactivation came after it.
        let last_churn = h.churns.iter().rev().find(|c| c.date <= key.day);
        if let Some(c) = last_churn
            && !h.reactivations.iter().any(|r| *r > c.date && *r <= key.day)
        {
            out.after_churn += 1;
            continue;
        }
        let next = h.churns.iter().find(|c| c.date > key.day && end.is_some_and(|end| c.date <= end));
        let churn = next.map(|c| {
            *churn_index.entry((c.account, c.date)).or_insert_with(|| {
                out.churns.push(c.clone());
                (out.churns.len() - 1) as u32
            })
        });
        out.labels.push(Label { key, churn });
    }
    out
}

/// A ROC AUC and its DeLong 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Auc {
    /// P(a snapshot followed by no churn scores higher than one followed
    /// by a churn), ties counting one half.
    pub auc: f64,
    /// DeLong's standard error; absent with fewer than two churned or two
    /// other snapshots.
    pub std_error: Option<f64>,
    /// The 95% interval, clamped to [0, 1].
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// 1-based ranks of `values`, ties sharing their mean rank.
fn midranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        // Positions i..=j (0-based) share ranks i+1..=j+1.
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = mean;
        }
        i = j + 1;
    }
    ranks
}

/// DeLong's structural components of the AUC of `risk` (higher = more
/// likely to churn) for positives `pos` and negatives `neg`: per positive,
/// the share of negatives it outranks (ties one half), and per negative the
/// share of positives that outrank it. In O(N log N) by midranks (Sun & Xu,
/// 2014).
fn components(pos: &[f64], neg: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (m, n) = (pos.len(), neg.len());
    let all: Vec<f64> = pos.iter().chain(neg).copied().collect();
    let r_all = midranks(&all);
    let r_pos = midranks(pos);
    let r_neg = midranks(neg);
    let v10 = (0..m).map(|i| (r_all[i] - r_pos[i]) / n as f64).collect();
    let v01 = (0..n).map(|j| 1.0 - (r_all[m + j] - r_neg[j]) / m as f64).collect();
    (v10, v01)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The sample covariance of two equally long series.
fn cov(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum::<f64>() / (a.len() - 1) as f64
}

/// Splits `scores` (one per label) into churned and other snapshots, as
/// risks (the negated score: a lower score should mean churn).
fn split(labels: &[Label], scores: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    for (l, s) in labels.iter().zip(scores) {
        if l.churn.is_some() { pos.push(-s) } else { neg.push(-s) }
    }
    (pos, neg)
}

/// The ROC AUC of `scores` (one per label; higher = healthier) as a
/// predictor of churn, with DeLong's 95% interval. Absent without a churned
/// snapshot or without another one.
pub fn auc(labels: &[Label], scores: &[f64]) -> Option<Auc> {
    let (pos, neg) = split(labels, scores);
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let (v10, v01) = components(&pos, &neg);
    let auc = mean(&v10);
    let se = (pos.len() >= 2 && neg.len() >= 2)
        .then(|| (cov(&v10, &v10) / pos.len() as f64 + cov(&v01, &v01) / neg.len() as f64).max(0.0).sqrt());
    Some(Auc {
        auc,
        std_error: se,
        lower: se.map(|se| (auc - Z95 * se).max(0.0)),
        upper: se.map(|se| (auc + Z95 * se).min(1.0)),
    })
}

/// Two versions' AUC on the same snapshots and their difference (`b − a`)
/// with the paired DeLong 95% interval (DeLong, DeLong & Clarke-Pearson,
/// 1988): the components of both are taken on the same positives and
/// negatives, so the variance of the difference subtracts their covariance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub a: f64,
    pub b: f64,
    pub difference: f64,
    pub std_error: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// Compares the AUC of `a` and `b` (one score each per label).
pub fn compare(labels: &[Label], a: &[f64], b: &[f64]) -> Option<Comparison> {
    let (pa, na) = split(labels, a);
    let (pb, nb) = split(labels, b);
    if pa.is_empty() || na.is_empty() {
        return None;
    }
    let (a10, a01) = components(&pa, &na);
    let (b10, b01) = components(&pb, &nb);
    let (auc_a, auc_b) = (mean(&a10), mean(&b10));
    let difference = auc_b - auc_a;
    let (m, n) = (pa.len() as f64, na.len() as f64);
    let se = (pa.len() >= 2 && na.len() >= 2).then(|| {
        let v10 = cov(&a10, &a10) + cov(&b10, &b10) - 2.0 * cov(&a10, &b10);
        let v01 = cov(&a01, &a01) + cov(&b01, &b01) - 2.0 * cov(&a01, &b01);
        (v10 / m + v01 / n).max(0.0).sqrt()
    });
    Some(Comparison {
        a: auc_a,
        b: auc_b,
        difference,
        std_error: se,
        lower: se.map(|se| (difference - Z95 * se).max(-1.0)),
        upper: se.map(|se| (difference + Z95 * se).min(1.0)),
    })
}

/// One row of the calibration table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BandRow {
    pub snapshots: u64,
    /// Snapshots followed by a churn within the horizon.
    pub churned_snapshots: u64,
    /// churned_snapshots ÷ snapshots; absent without snapshots.
    pub churn_rate: Option<f64>,
    /// Distinct accounts with a snapshot in the band.
    pub accounts: u64,
    /// Distinct churns (account and day) that followed a snapshot in the band.
    pub churns: u64,
    /// Σ ARR those churns lost, per currency (minor units).
    pub churned_arr: BTreeMap<String, i64>,
}

/// What a backtest reports of one version's scores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub snapshots: u64,
    pub churned_snapshots: u64,
    pub accounts: u64,
    /// Distinct churns some snapshot is labelled with.
    pub churns: u64,
    pub auc: Option<Auc>,
    /// Red, yellow, green ([`Band::ALL`] order).
    pub bands: [BandRow; 3],
    /// Churn rate of red ÷ churn rate of green; absent when either is
    /// absent or green's is 0.
    pub lift_red_over_green: Option<f64>,
    /// Mean of (the band's churn rate − 1 if churned else 0)²: the band's
    /// churn rate used as the probability of churn, in sample.
    pub brier: Option<f64>,
    /// Red as a churn alarm: churned red snapshots ÷ red snapshots…
    pub red_precision: Option<f64>,
    /// …and ÷ churned snapshots.
    pub red_recall: Option<f64>,
    /// Median over churns of the days between the first red snapshot within
    /// the horizon before the churn and the churn.
    pub median_lead_days: Option<f64>,
    /// Churns with a red snapshot within the horizon before them…
    pub churns_flagged: u64,
    /// …and without.
    pub churns_missed: u64,
}

/// The median of `v` (sorted here); absent when empty.
pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 })
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The backtest of one version: `scored[i]` is the score and band of
/// `labels.labels[i]`.
pub fn report(labels: &Labels, scored: &[(f64, Band)]) -> Report {
    let ls = &labels.labels;
    let mut r = Report { snapshots: ls.len() as u64, ..Default::default() };
    let mut accounts: [HashSet<Uuid>; 3] = Default::default();
    let mut churns: [HashSet<u32>; 3] = Default::default();
    let mut all_accounts = HashSet::new();
    // Per churn, the earliest red snapshot before it.
    let mut first_red: HashMap<u32, NaiveDate> = HashMap::new();
    for (l, &(_, band)) in ls.iter().zip(scored) {
        let row = &mut r.bands[band.index()];
        row.snapshots += 1;
        accounts[band.index()].insert(l.key.account);
        all_accounts.insert(l.key.account);
        if let Some(c) = l.churn {
            r.churned_snapshots += 1;
            row.churned_snapshots += 1;
            churns[band.index()].insert(c);
            if band == Band::Red {
                let d = first_red.entry(c).or_insert(l.key.day);
                *d = (*d).min(l.key.day);
            }
        }
    }
    r.accounts = all_accounts.len() as u64;
    r.churns = churns.iter().flatten().collect::<HashSet<_>>().len() as u64;
    for (i, row) in r.bands.iter_mut().enumerate() {
        row.churn_rate = ratio(row.churned_snapshots, row.snapshots);
        row.accounts = accounts[i].len() as u64;
        row.churns = churns[i].len() as u64;
        for &c in &churns[i] {
            let c = &labels.churns[c as usize];
            *row.churned_arr.entry(c.currency.clone()).or_default() += c.arr_lost;
        }
    }
    let scores: Vec<f64> = scored.iter().map(|(s, _)| *s).collect();
    r.auc = auc(ls, &scores);
    let (red, green) = (&r.bands[Band::Red.index()], &r.bands[Band::Green.index()]);
    r.lift_red_over_green = match (red.churn_rate, green.churn_rate) {
        (Some(red), Some(green)) if green > 0.0 => Some(red / green),
        _ => None,
    };
    r.red_precision = red.churn_rate;
    r.red_recall = ratio(red.churned_snapshots, r.churned_snapshots);
    if !ls.is_empty() {
        let sum: f64 = ls
            .iter()
            .zip(scored)
            .map(|(l, (_, band))| {
                let p = r.bands[band.index()].churn_rate.unwrap_or(0.0);
                let y = if l.churn.is_some() { 1.0 } else { 0.0 };
                (p - y) * (p - y)
            })
            .sum();
        r.brier = Some(sum / ls.len() as f64);
    }
    let mut leads: Vec<f64> =
        first_red.iter().map(|(c, day)| (labels.churns[*c as usize].date - *day).num_days() as f64).collect();
    r.churns_flagged = leads.len() as u64;
    r.churns_missed = r.churns - r.churns_flagged;
    r.median_lead_days = median(&mut leads);
    r
}

/// A scorecard by id, and a version of it (`None`: the current one).
pub type CardRef = (Uuid, Option<i64>);

/// A backtest asked for (checked by the API): a range of snapshot days,
/// a horizon, and the scorecards replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BacktestQuery {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub horizon: u32,
    /// The scorecard replayed; `None`: the scores as served.
    pub scorecard: Option<CardRef>,
    /// A scorecard compared with, replayed on the same snapshots.
    pub compare: Option<CardRef>,
}

/// The backtest of one scorer (as served, or a replayed version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// The scorecard and version replayed; `None` as served.
    pub scorecard: Option<(Uuid, i64)>,
    pub unreplayable: Vec<String>,
    pub report: Report,
}

/// What a backtest found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestResult {
    pub query: BacktestQuery,
    pub too_recent: u64,
    pub after_churn: u64,
    /// Snapshots a scorer gave no score.
    pub unscored: u64,
    pub main: Scored,
    /// The compared scorecard's backtest and the AUC difference.
    pub other: Option<(Scored, Option<Comparison>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    fn band(score: f64) -> Band {
        super::super::score::band_of(score, &Default::default())
    }

    /// The AUC by its definition, over every pair.
    fn brute_auc(labels: &[Label], scores: &[f64]) -> f64 {
        let (pos, neg) = split(labels, scores);
        let mut s = 0.0;
        for p in &pos {
            for n in &neg {
                s += if p > n {
                    1.0
                } else if p == n {
                    0.5
                } else {
                    0.0
                };
            }
        }
        s / (pos.len() * neg.len()) as f64
    }

    /// Ten accounts, one snapshot each on 2026-01-01 (horizon 90 days,
    /// today 2026-06-01), computed by hand in docs/health.md.
    fn ten_accounts() -> (Labels, Vec<(f64, Band)>) {
        let ids: Vec<Uuid> = (0..10u128).map(Uuid::from_u128).collect();
        let scores = [10.0, 20.0, 30.0, 45.0, 50.0, 55.0, 60.0, 75.0, 80.0, 90.0];
        // A, B, D and I churn 30, 60, 10 and 20 days later.
        let churns = [
            (0, day(1, 31), 1_000_000),
            (1, day(3, 2), 2_000_000),
            (3, day(1, 11), 500_000),
            (8, day(1, 21), 3_000_000),
        ];
        let mut histories = HashMap::new();
        for (i, date, arr) in churns {
            histories.insert(
                ids[i],
                AccountHistory {
                    churns: vec![Churn { account: ids[i], date, currency: "JPY".into(), arr_lost: arr }],
                    reactivations: vec![],
                },
            );
        }
        let keys = ids.iter().map(|&account| SnapshotKey { account, day: day(1, 1) });
        let labels = label(keys, &histories, 90, day(6, 1));
        (labels, scores.iter().map(|&s| (s, band(s))).collect())
    }

    #[test]
    fn the_ten_account_example_matches_the_hand_computation() {
        let (labels, scored) = ten_accounts();
        assert_eq!((labels.labels.len(), labels.churns.len(), labels.too_recent, labels.after_churn), (10, 4, 0, 0));
        let r = report(&labels, &scored);
        assert_eq!((r.snapshots, r.churned_snapshots, r.accounts, r.churns), (10, 4, 10, 4));
        // 18 of the 24 (churned, other) pairs have the churned one lower.
        let auc = r.auc.unwrap();
        assert_eq!(auc.auc, 0.75);
        // S10 = 17/108, S01 = 1/40: var = 17/432 + 1/240 = 47/1080.
        let se = (47.0f64 / 1080.0).sqrt();
        assert!((auc.std_error.unwrap() - se).abs() < 1e-12);
        assert!((auc.lower.unwrap() - (0.75 - Z95 * se)).abs() < 1e-12);
        assert_eq!(auc.upper, Some(1.0));
        let rows: Vec<_> = r.bands.iter().map(|b| (b.snapshots, b.churned_snapshots, b.accounts, b.churns)).collect();
        assert_eq!(rows, [(3, 2, 3, 2), (4, 1, 4, 1), (3, 1, 3, 1)]);
        assert_eq!(r.bands.iter().map(|b| b.churn_rate.unwrap()).collect::<Vec<_>>(), [2.0 / 3.0, 0.25, 1.0 / 3.0]);
        let arr: Vec<i64> = r.bands.iter().map(|b| b.churned_arr["JPY"]).collect();
        assert_eq!(arr, [3_000_000, 500_000, 3_000_000]);
        assert_eq!(r.lift_red_over_green, Some(2.0));
        // (2/3 + 3/4 + 2/3) ÷ 10 = 5/24.
        assert!((r.brier.unwrap() - 5.0 / 24.0).abs() < 1e-15);
        assert_eq!((r.red_precision, r.red_recall), (Some(2.0 / 3.0), Some(0.5)));
        // A turned red 30 days before its churn, B 60: median 45; D and I never red.
        assert_eq!((r.median_lead_days, r.churns_flagged, r.churns_missed), (Some(45.0), 2, 2));
    }

    #[test]
    fn labels_leave_out_recent_snapshots_and_days_after_a_churn() {
        let a = Uuid::from_u128(1);
        let c = |date| Churn { account: a, date, currency: "JPY".into(), arr_lost: 10 };
        let mut histories = HashMap::new();
        histories
            .insert(a, AccountHistory { churns: vec![c(day(3, 1)), c(day(5, 1))], reactivations: vec![day(4, 1)] });
        let keys = [day(1, 1), day(2, 1), day(3, 1), day(3, 15), day(4, 1), day(4, 20), day(5, 2)]
            .map(|day| SnapshotKey { account: a, day });
        let l = label(keys, &histories, 30, day(6, 1));
        let got: Vec<_> = l.labels.iter().map(|l| (l.key.day, l.churn)).collect();
        // 01-01: the churn of 03-01 is 59 days later, beyond 30; 02-01: 28 days, within.
        // 03-01 and 03-15 are churned days; 04-01 is back, 30 days before 05-01.
        // 04-20 is too recent? 04-20 + 30 = 05-20 < 06-01: kept, churn in 11 days; 05-02: too recent.
        assert_eq!(got, [(day(1, 1), None), (day(2, 1), Some(0)), (day(4, 1), Some(1)), (day(4, 20), Some(1))]);
        assert_eq!((l.too_recent, l.after_churn), (1, 2));
        assert_eq!(l.churns.iter().map(|c| c.date).collect::<Vec<_>>(), [day(3, 1), day(5, 1)]);
    }

    #[test]
    fn lead_time_counts_from_the_first_red_day_within_the_horizon() {
        let a = Uuid::from_u128(7);
        let mut histories = HashMap::new();
        let churn = Churn { account: a, date: day(4, 1), currency: "USD".into(), arr_lost: 5 };
        histories.insert(a, AccountHistory { churns: vec![churn], reactivations: vec![] });
        let days = [day(1, 1), day(2, 1), day(3, 1), day(3, 20)];
        let l = label(days.map(|day| SnapshotKey { account: a, day }), &histories, 60, day(12, 1));
        // 01-01 is 90 days before: not labelled with the churn (and red there does not count).
        let scored = [(10.0, Band::Red), (50.0, Band::Yellow), (20.0, Band::Red), (15.0, Band::Red)];
        let r = report(&l, &scored);
        assert_eq!(r.median_lead_days, Some(31.0));
        assert_eq!((r.churns_flagged, r.churns_missed), (1, 0));
    }

    #[test]
    fn midrank_auc_equals_the_pairwise_definition_with_ties() {
        // A deterministic mix with many ties.
        let n = 300;
        let labels: Vec<Label> = (0..n)
            .map(|i| Label {
                key: SnapshotKey { account: Uuid::from_u128(i as u128), day: day(1, 1) },
                churn: (i % 7 == 0 || i % 11 == 0).then_some(0),
            })
            .collect();
        let scores: Vec<f64> = (0..n).map(|i| ((i * 37) % 23) as f64 + if i % 7 == 0 { -3.0 } else { 0.0 }).collect();
        let a = auc(&labels, &scores).unwrap();
        assert!((a.auc - brute_auc(&labels, &scores)).abs() < 1e-12);
    }

    #[test]
    fn a_version_compared_with_itself_differs_by_zero_and_a_better_one_wins() {
        let (labels, scored) = ten_accounts();
        let a: Vec<f64> = scored.iter().map(|(s, _)| *s).collect();
        let same = compare(&labels.labels, &a, &a).unwrap();
        assert_eq!((same.difference, same.std_error), (0.0, Some(0.0)));
        // B ranks D and I (the churns A missed) lowest of all: AUC 1.
        let mut b = a.clone();
        b[3] = 5.0;
        b[8] = 1.0;
        let c = compare(&labels.labels, &a, &b).unwrap();
        assert_eq!((c.a, c.b, c.difference), (0.75, 1.0, 0.25));
        // Paired: the variance of b − a by hand. B's components are all 1
        // (no variance), so var = S10_A/m + S01_A/n = 47/1080.
        assert!((c.std_error.unwrap() - (47.0f64 / 1080.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn no_auc_without_both_classes() {
        let (labels, _) = ten_accounts();
        let only_churned: Vec<Label> = labels.labels.iter().filter(|l| l.churn.is_some()).copied().collect();
        assert_eq!(auc(&only_churned, &[1.0, 2.0, 3.0, 4.0]), None);
        assert_eq!(report(&Labels::default(), &[]).brier, None);
    }
}
