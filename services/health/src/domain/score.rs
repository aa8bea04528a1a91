//! Scores: measure values → points → a weighted score 0–100, its band, its
//! explanation (what each measure contributed), its trend, and whether a
//! change is worth telling anyone about.

use std::collections::HashMap;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use super::scorecard::{Bands, MissingData, ScorecardDef, WeightedMeasure};

/// A health band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// At risk.
    Red,
    /// Watch.
    Yellow,
    /// Healthy.
    Green,
}

impl Band {
    pub const ALL: [Band; 3] = [Band::Red, Band::Yellow, Band::Green];

    pub fn as_str(self) -> &'static str {
        match self {
            Band::Red => "red",
            Band::Yellow => "yellow",
            Band::Green => "green",
        }
    }

    /// Its place in [`Band::ALL`].
    pub fn index(self) -> usize {
        match self {
            Band::Red => 0,
            Band::Yellow => 1,
            Band::Green => 2,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

/// The band of `score`: red below `yellow_from`, yellow from it, green from
/// `green_from` (each boundary belongs to the better band).
pub fn band_of(score: f64, bands: &Bands) -> Band {
    if score >= bands.green_from {
        Band::Green
    } else if score >= bands.yellow_from {
        Band::Yellow
    } else {
        Band::Red
    }
}

/// One measure's part in a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// The measure id.
    pub measure: String,
    /// The raw value; `None` when missing.
    pub raw: Option<f64>,
    /// Points 0 to 100 after normalisation and direction; `None` when the
    /// measure was skipped, 0 when a missing value counted as zero.
    pub points: Option<f64>,
    /// The weight in the scorecard.
    pub weight: f64,
    /// The weight renormalised over the measures that counted: a fraction,
    /// and the effective weights of a score sum to 1.
    pub effective_weight: f64,
    /// points × effective_weight; the contributions sum to the score (before
    /// its rounding to 0.1).
    pub contribution: f64,
}

/// A computed health score with its explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// 0 to 100, rounded to 0.1.
    pub score: f64,
    /// The band of the rounded score, so the number shown and its colour agree.
    pub band: Band,
    /// One per scorecard measure, in the scorecard's order.
    pub contributions: Vec<Contribution>,
}

/// Rounds to one decimal: what a person reads, and what bands and steps compare.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Scores an account with `def`. `values` holds the account's value of each
/// measure by id (absent or `None`: missing); `percentile_population` the
/// tenant's values of each Percentile measure, sorted ascending.
///
/// A measure counts when it has points: a finite value that can be placed
/// (a Percentile measure needs a non-empty population), or a missing value
/// with CountAsZero (0 points, whatever the direction: missing data never
/// helps). A missing value with SkipAndReweight does not count, and its
/// weight is spread over the others in proportion to theirs: weights
/// 50/30/20 with the 30 missing become 62.5% and 37.5%.
///
/// `None` when nothing counts — every measure missing and skipped, or only
/// zero-weight measures left — as there is nothing to base a score on; the
/// account then has no score rather than a misleading 0.
pub fn score(
    def: &ScorecardDef,
    values: &HashMap<String, Option<f64>>,
    percentile_population: &HashMap<String, Vec<f64>>,
) -> Option<Score> {
    let mut contributions: Vec<Contribution> = def
        .measures
        .iter()
        .map(|m| {
            let raw = values.get(&m.measure).copied().flatten().filter(|x| x.is_finite());
            Contribution {
                measure: m.measure.clone(),
                raw,
                points: points_of(m, raw, percentile_population.get(&m.measure).map(Vec::as_slice)),
                weight: m.weight,
                effective_weight: 0.0,
                contribution: 0.0,
            }
        })
        .collect();
    let (total, sum) = weigh(contributions.iter().map(|c| (c.weight, c.points)))?;
    for c in &mut contributions {
        if let Some(p) = c.points {
            c.effective_weight = c.weight / total;
            c.contribution = p * c.effective_weight;
        }
    }
    let score = round1(sum.clamp(0.0, 100.0));
    Some(Score { score, band: band_of(score, &def.bands), contributions })
}

/// The score and band [`score`] gives, without its explanation: `raw[i]`
/// and `populations[i]` are the value and percentile population of the
/// scorecard's i-th measure. What a replay computes for millions of
/// snapshots, where building each one's explanation cost more than the
/// score.
pub fn score_and_band(def: &ScorecardDef, raw: &[Option<f64>], populations: &[Option<&[f64]>]) -> Option<(f64, Band)> {
    let points = def.measures.iter().enumerate().map(|(i, m)| {
        let raw = raw.get(i).copied().flatten().filter(|x| x.is_finite());
        (m.weight, points_of(m, raw, populations.get(i).copied().flatten()))
    });
    let (_, sum) = weigh(points)?;
    let score = round1(sum.clamp(0.0, 100.0));
    Some((score, band_of(score, &def.bands)))
}

/// A measure's points from its raw value (see [`score`]).
fn points_of(m: &WeightedMeasure, raw: Option<f64>, population: Option<&[f64]>) -> Option<f64> {
    let placed = raw.and_then(|r| m.normalisation.points(r, population)).map(|p| m.direction.apply(p));
    match (placed, m.missing) {
        (Some(p), _) => Some(p),
        (None, MissingData::CountAsZero) => Some(0.0),
        (None, MissingData::SkipAndReweight) => None,
    }
}

/// The total weight of the measures that count and the weighted sum of
/// their points (each weight renormalised over that total), from (weight,
/// points) in the scorecard's order; `None` when nothing counts.
fn weigh(parts: impl Iterator<Item = (f64, Option<f64>)> + Clone) -> Option<(f64, f64)> {
    let total: f64 = parts.clone().filter(|(_, p)| p.is_some()).map(|(w, _)| w).sum();
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    let sum = parts.filter_map(|(w, p)| p.map(|p| p * (w / total))).fold(0.0, |sum, c| sum + c);
    Some((total, sum))
}

/// The change of the score over 7 and 30 days: the latest score on or
/// before `today` minus the latest on or before `today` − 7 (− 30), rounded
/// to 0.1. `None` without a score that old (or without a current one).
/// `history` may come in any order; of scores on the same day the last in
/// the slice is the latest (a daily snapshot followed by a band change).
pub fn trend(history: &[(NaiveDate, f64)], today: NaiveDate) -> (Option<f64>, Option<f64>) {
    let latest_on_or_before = |day: NaiveDate| {
        history.iter().enumerate().filter(|(_, (d, _))| *d <= day).max_by_key(|(i, (d, _))| (*d, *i)).map(|(_, e)| e.1)
    };
    let Some(now) = latest_on_or_before(today) else { return (None, None) };
    let change = |days: u64| {
        let then = today.checked_sub_days(Days::new(days))?;
        latest_on_or_before(then).map(|old| round1(now - old))
    };
    (change(7), change(30))
}

/// Whether a new score is news (publish HealthScoreChanged, record history):
/// the first score always is; then a band change, or a move of at least
/// `step` points. An unchanged score in the same band never is, so a step
/// of 0 means "every change". Scores are rounded to 0.1, so the comparison
/// allows for floating-point error (70.3 − 70.1 is a step of 0.2).
pub fn moved(old: Option<(f64, Band)>, new: (f64, Band), step: f64) -> bool {
    let Some((old_score, old_band)) = old else { return true };
    if old_band != new.1 {
        return true;
    }
    let delta = (new.0 - old_score).abs();
    delta > 0.0 && delta >= step - 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scorecard::{Direction, Normalisation, Scope, Threshold, WeightedMeasure};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn linear(id: &str, weight: f64, missing: MissingData) -> WeightedMeasure {
        WeightedMeasure {
            measure: id.into(),
            weight,
            normalisation: Normalisation::Linear { min: 0.0, max: 100.0 },
            direction: Direction::HigherIsBetter,
            missing,
        }
    }

    fn card(measures: Vec<WeightedMeasure>) -> ScorecardDef {
        ScorecardDef { name: "test".into(), scope: Scope::All, measures, bands: Bands::default() }
    }

    fn values(pairs: &[(&str, Option<f64>)]) -> HashMap<String, Option<f64>> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn bands_at_the_boundaries() {
        let b = Bands::default();
        assert_eq!(band_of(0.0, &b), Band::Red);
        assert_eq!(band_of(39.9, &b), Band::Red);
        assert_eq!(band_of(40.0, &b), Band::Yellow);
        assert_eq!(band_of(69.9, &b), Band::Yellow);
        assert_eq!(band_of(70.0, &b), Band::Green);
        assert_eq!(band_of(100.0, &b), Band::Green);
    }

    #[test]
    fn custom_bands() {
        let b = Bands { yellow_from: 50.0, green_from: 80.0 };
        assert_eq!(band_of(49.9, &b), Band::Red);
        assert_eq!(band_of(50.0, &b), Band::Yellow);
        assert_eq!(band_of(79.9, &b), Band::Yellow);
        assert_eq!(band_of(80.0, &b), Band::Green);
        // No red at all.
        let b = Bands { yellow_from: 0.0, green_from: 60.0 };
        assert_eq!(band_of(0.0, &b), Band::Yellow);
        // Green only at a perfect score.
        let b = Bands { yellow_from: 40.0, green_from: 100.0 };
        assert_eq!(band_of(99.9, &b), Band::Yellow);
        assert_eq!(band_of(100.0, &b), Band::Green);
    }

    #[test]
    fn the_band_follows_the_rounded_score() {
        // 69.96 shows as 70.0, and 70.0 is green.
        let def = card(vec![linear("external:x", 1.0, MissingData::SkipAndReweight)]);
        let s = score(&def, &values(&[("external:x", Some(69.96))]), &HashMap::new()).unwrap();
        assert_eq!((s.score, s.band), (70.0, Band::Green));
        let s = score(&def, &values(&[("external:x", Some(69.94))]), &HashMap::new()).unwrap();
        assert_eq!((s.score, s.band), (69.9, Band::Yellow));
    }

    fn three(missing: MissingData) -> ScorecardDef {
        card(vec![
            linear("external:a", 50.0, missing),
            linear("external:b", 30.0, missing),
            linear("external:c", 20.0, missing),
        ])
    }

    #[test]
    fn skip_and_reweight_spreads_the_missing_weight() {
        let def = three(MissingData::SkipAndReweight);
        let none = HashMap::new();

        // Weights 50 / 30 / 20, the 20 one missing: 50 / 80 = 62.5%, 30 / 80 = 37.5%.
        let s = score(&def, &values(&[("external:a", Some(80.0)), ("external:b", Some(40.0))]), &none).unwrap();
        let c = &s.contributions;
        assert_eq!((c[0].effective_weight, c[1].effective_weight, c[2].effective_weight), (0.625, 0.375, 0.0));
        assert_eq!((c[2].raw, c[2].points, c[2].contribution), (None, None, 0.0));
        // 80 × 0.625 + 40 × 0.375 = 50 + 15.
        assert_eq!((c[0].contribution, c[1].contribution), (50.0, 15.0));
        assert_eq!((s.score, s.band), (65.0, Band::Yellow));

        // The 30 one missing (absent, or present as None): 50 / 70 and 20 / 70.
        let s = score(
            &def,
            &values(&[("external:a", Some(80.0)), ("external:b", None), ("external:c", Some(40.0))]),
            &none,
        )
        .unwrap();
        let c = &s.contributions;
        assert!(close(c[0].effective_weight, 5.0 / 7.0), "{}", c[0].effective_weight);
        assert!(close(c[2].effective_weight, 2.0 / 7.0));
        assert_eq!((c[1].points, c[1].effective_weight), (None, 0.0));
        // 80 × 5/7 + 40 × 2/7 = 480 / 7 = 68.571… → 68.6.
        assert_eq!((s.score, s.band), (68.6, Band::Yellow));
        let total: f64 = c.iter().map(|c| c.effective_weight).sum();
        assert!(close(total, 1.0));
    }

    #[test]
    fn count_as_zero_keeps_the_weight_with_zero_points() {
        let def = three(MissingData::CountAsZero);
        let s =
            score(&def, &values(&[("external:a", Some(80.0)), ("external:c", Some(40.0))]), &HashMap::new()).unwrap();
        let c = &s.contributions;
        assert_eq!((c[0].effective_weight, c[1].effective_weight, c[2].effective_weight), (0.5, 0.3, 0.2));
        assert_eq!((c[1].raw, c[1].points, c[1].contribution), (None, Some(0.0), 0.0));
        // 80 × 0.5 + 0 + 40 × 0.2 = 40 + 8.
        assert_eq!((s.score, s.band), (48.0, Band::Yellow));

        // Lower is better does not turn a missing value into 100 points.
        let mut def = three(MissingData::CountAsZero);
        def.measures[1].direction = Direction::LowerIsBetter;
        let s =
            score(&def, &values(&[("external:a", Some(80.0)), ("external:c", Some(40.0))]), &HashMap::new()).unwrap();
        assert_eq!((s.contributions[1].points, s.score), (Some(0.0), 48.0));

        // Everything missing but counted as zero: a score of 0, red.
        let s = score(&def, &HashMap::new(), &HashMap::new()).unwrap();
        assert_eq!((s.score, s.band), (0.0, Band::Red));
    }

    #[test]
    fn nothing_to_count_means_no_score() {
        let none: HashMap<String, Vec<f64>> = HashMap::new();
        // All missing and skipped.
        let def = three(MissingData::SkipAndReweight);
        assert_eq!(score(&def, &values(&[("external:a", None)]), &none), None);
        assert_eq!(score(&def, &HashMap::new(), &none), None);
        // Only a zero-weight measure left: no weight to renormalise.
        let mut def = three(MissingData::SkipAndReweight);
        def.measures[0].weight = 0.0;
        assert_eq!(score(&def, &values(&[("external:a", Some(80.0))]), &none), None);
        // A non-finite value is missing too.
        assert_eq!(
            score(&three(MissingData::SkipAndReweight), &values(&[("external:a", Some(f64::NAN))]), &none),
            None
        );
        // A percentile measure without a population cannot be placed: missing.
        let def = card(vec![WeightedMeasure {
            normalisation: Normalisation::Percentile,
            ..linear("external:nps", 1.0, MissingData::SkipAndReweight)
        }]);
        assert_eq!(score(&def, &values(&[("external:nps", Some(30.0))]), &none), None);
    }

    /// Four measures, every normalisation, both directions, computed by hand:
    ///
    /// | measure | weight | normalisation | raw | points | eff. weight | contribution |
    /// |---|---|---|---|---|---|---|
    /// | active_users_30d | 40 | ≥1 → 20, ≥5 → 60, ≥10 → 100 | 7 | 60 | 0.4 | 24 |
    /// | usage_minutes_30d | 30 | linear 60..660 | 300 | 240 / 600 = 40 | 0.3 | 12 |
    /// | external:open_tickets | 20 | percentile in [0, 1, 2, 2, 6], lower is better | 2 | 100 − 2.5/4 × 100 = 37.5 | 0.2 | 7.5 |
    /// | external:email_response_rate_90d | 10 | linear 0..1 | 0.333 | 33.3 | 0.1 | 3.33 |
    ///
    /// Σ = 46.83 → 46.8, yellow.
    #[test]
    fn a_full_scorecard_by_hand() {
        let def = card(vec![
            WeightedMeasure {
                measure: "active_users_30d".into(),
                weight: 40.0,
                normalisation: Normalisation::Thresholds(vec![
                    Threshold { at: 1.0, points: 20.0 },
                    Threshold { at: 5.0, points: 60.0 },
                    Threshold { at: 10.0, points: 100.0 },
                ]),
                direction: Direction::HigherIsBetter,
                missing: MissingData::SkipAndReweight,
            },
            WeightedMeasure {
                normalisation: Normalisation::Linear { min: 60.0, max: 660.0 },
                ..linear("usage_minutes_30d", 30.0, MissingData::SkipAndReweight)
            },
            WeightedMeasure {
                normalisation: Normalisation::Percentile,
                direction: Direction::LowerIsBetter,
                ..linear("external:open_tickets", 20.0, MissingData::SkipAndReweight)
            },
            WeightedMeasure {
                normalisation: Normalisation::Linear { min: 0.0, max: 1.0 },
                ..linear("external:email_response_rate_90d", 10.0, MissingData::CountAsZero)
            },
        ]);
        let vals = values(&[
            ("active_users_30d", Some(7.0)),
            ("usage_minutes_30d", Some(300.0)),
            ("external:open_tickets", Some(2.0)),
            ("external:email_response_rate_90d", Some(0.333)),
        ]);
        let popn: HashMap<String, Vec<f64>> =
            [("external:open_tickets".to_owned(), vec![0.0, 1.0, 2.0, 2.0, 6.0])].into_iter().collect();
        let s = score(&def, &vals, &popn).unwrap();
        let expect = [
            ("active_users_30d", 7.0, 60.0, 40.0, 0.4, 24.0),
            ("usage_minutes_30d", 300.0, 40.0, 30.0, 0.3, 12.0),
            ("external:open_tickets", 2.0, 37.5, 20.0, 0.2, 7.5),
            ("external:email_response_rate_90d", 0.333, 33.3, 10.0, 0.1, 3.33),
        ];
        assert_eq!(s.contributions.len(), 4);
        for (c, (id, raw, points, weight, eff, contribution)) in s.contributions.iter().zip(expect) {
            assert_eq!(c.measure, id);
            assert_eq!(c.raw, Some(raw));
            assert!(close(c.points.unwrap(), points), "{id}: {:?}", c.points);
            assert_eq!(c.weight, weight);
            assert!(close(c.effective_weight, eff), "{id}: {}", c.effective_weight);
            assert!(close(c.contribution, contribution), "{id}: {}", c.contribution);
        }
        assert_eq!((s.score, s.band), (46.8, Band::Yellow));
        // The explanation adds up to the score (which is rounded to 0.1).
        let sum: f64 = s.contributions.iter().map(|c| c.contribution).sum();
        assert!(close(sum, 46.83), "{sum}");
        assert!((sum - s.score).abs() <= 0.05);
    }

    #[test]
    fn trend_over_7_and_30_days() {
        let today = d(2026, 4, 30);
        let history = [
            (d(2026, 4, 27), 70.0),
            (d(2026, 3, 31), 50.0), // today − 30
            (d(2026, 3, 20), 10.0), // older: not the latest on or before today − 30
            (d(2026, 4, 22), 55.0), // today − 8
            (d(2026, 4, 23), 60.0), // today − 7: daily snapshot …
            (d(2026, 4, 23), 61.9), // … then a band change the same day: the latest
            (d(2026, 4, 30), 72.4), // today
            (d(2026, 5, 1), 99.0),  // after today: ignored
        ];
        // 72.4 − 61.9 and 72.4 − 50.
        assert_eq!(trend(&history, today), (Some(10.5), Some(22.4)));
        // Without today's score the latest before it stands: 70 − 61.9, 70 − 50.
        assert_eq!(trend(&history[..6], today), (Some(8.1), Some(20.0)));
        // A week of history: no 7-day-old score yet… and none 30 days old.
        assert_eq!(trend(&[(d(2026, 4, 25), 40.0), (d(2026, 4, 30), 45.0)], today), (None, None));
        // Ten days: 7 days yes, 30 no.
        assert_eq!(trend(&[(d(2026, 4, 20), 48.0), (d(2026, 4, 30), 45.0)], today), (Some(-3.0), None));
        // No history at all.
        assert_eq!(trend(&[], today), (None, None));
    }

    #[test]
    fn moved_on_first_score_band_change_or_step() {
        use Band::*;
        // The first score is always news.
        assert!(moved(None, (50.0, Yellow), 5.0));
        // A band change, however small the move.
        assert!(moved(Some((69.9, Yellow)), (70.0, Green), 5.0));
        assert!(moved(Some((40.0, Yellow)), (39.9, Red), 5.0));
        // Same band: only a move of at least the step.
        assert!(!moved(Some((50.0, Yellow)), (54.9, Yellow), 5.0));
        assert!(moved(Some((50.0, Yellow)), (55.0, Yellow), 5.0));
        assert!(moved(Some((55.0, Yellow)), (50.0, Yellow), 5.0));
        // Floating point: 70.3 − 70.1 is a step of 0.2.
        assert!(moved(Some((70.1, Green)), (70.3, Green), 0.2));
        // Step 0: every change, but not no change.
        assert!(moved(Some((50.0, Yellow)), (50.1, Yellow), 0.0));
        assert!(!moved(Some((50.0, Yellow)), (50.0, Yellow), 0.0));
    }

    #[test]
    fn bands_parse_and_print() {
        for (i, b) in Band::ALL.into_iter().enumerate() {
            assert_eq!(Band::parse(b.as_str()), Some(b));
            assert_eq!(b.index(), i);
        }
        assert_eq!(Band::parse("amber"), None);
    }

    /// The replay's score without explanation is the score, on every mix
    /// of missing, non-finite, percentile and count-as-zero values.
    #[test]
    fn the_score_without_its_explanation_is_the_score() {
        let mut def = three(MissingData::SkipAndReweight);
        def.measures[1].missing = MissingData::CountAsZero;
        def.measures[2].normalisation = Normalisation::Percentile;
        def.measures[2].direction = Direction::LowerIsBetter;
        let population = vec![1.0, 5.0, 9.0, 30.0];
        let cases = [Some(0.0), Some(33.3), Some(5.0), Some(250.0), Some(f64::NAN), Some(f64::INFINITY), None];
        let mut compared = 0;
        for with_population in [true, false] {
            let pops: HashMap<String, Vec<f64>> = if with_population {
                HashMap::from([("external:c".to_owned(), population.clone())])
            } else {
                HashMap::new()
            };
            let by_place: Vec<Option<&[f64]>> = vec![None, None, with_population.then_some(population.as_slice())];
            for a in cases {
                for b in cases {
                    for c in cases {
                        let raw = [a, b, c];
                        let by_id = values(&[("external:a", a), ("external:b", b), ("external:c", c)]);
                        let full = score(&def, &by_id, &pops).map(|s| (s.score, s.band));
                        assert_eq!(score_and_band(&def, &raw, &by_place), full, "{raw:?} {with_population}");
                        compared += usize::from(full.is_some());
                    }
                }
            }
        }
        // Most cases have a score (b counts as zero when missing).
        assert!(compared > 600, "{compared}");
    }
}
