//! Scorecards: which measures make a health score, how each raw value
//! becomes points (0 to 100), how much each weighs, which accounts a
//! scorecard scores, and where the bands start.

use std::cmp::Ordering;

use banso_kit::shown;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    account::{LifecycleStage, TouchModel},
    measure::parse_measure,
};

/// The most measures a scorecard may hold.
pub const MAX_MEASURES: usize = 50;
/// The most thresholds one measure may have.
pub const MAX_THRESHOLDS: usize = 100;
/// The largest weight. Weights are relative, so nothing is lost by a bound,
/// and 50 of them can never add up to infinity.
pub const MAX_WEIGHT: f64 = 1_000_000.0;

/// One step of a step function: values at or above `at` (and below the
/// next threshold) earn `points`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub at: f64,
    pub points: f64,
}

/// How a raw value becomes points, 0 to 100, before the direction applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalisation {
    /// A step function over thresholds ascending by `at`: a value earns the
    /// points of the highest threshold it reaches (value ≥ at). A value
    /// below the first threshold reaches none and earns 0 points; to give it
    /// something, start with a threshold low enough (e.g. `at: 0`).
    Thresholds(Vec<Threshold>),
    /// `min` is worth 0 points, `max` 100, linear between, clamped outside.
    Linear { min: f64, max: f64 },
    /// The value's rank among the tenant's values of this measure: the
    /// lowest 0, the highest 100, ties share the mean of their ranks, so a
    /// population of one value (or of equal values) puts everyone at 50.
    Percentile,
}

impl Normalisation {
    /// Points for `raw`, 0 to 100. `population` is the tenant's values of
    /// the measure, sorted ascending (only Percentile reads it). `None` when
    /// the value cannot be placed: a non-finite raw value, or a percentile
    /// without a population.
    pub fn points(&self, raw: f64, population: Option<&[f64]>) -> Option<f64> {
        if !raw.is_finite() {
            return None;
        }
        let p = match self {
            Normalisation::Thresholds(ts) => ts.iter().rev().find(|t| raw >= t.at).map_or(0.0, |t| t.points),
            Normalisation::Linear { min, max } => {
                if raw <= *min {
                    0.0
                } else if raw >= *max {
                    100.0
                } else {
                    (raw - min) / (max - min) * 100.0
                }
            }
            Normalisation::Percentile => percentile_rank(raw, population?)?,
        };
        Some(p.clamp(0.0, 100.0))
    }
}

/// The percentile rank of `value` within `sorted` (ascending), 0 to 100:
/// (values below + (values equal − 1) ÷ 2) ÷ (n − 1) × 100. The lowest
/// value is 0, the highest 100, ties take the mean of their ranks. A value
/// not in the population (a stale population) falls between its neighbours;
/// below all of them 0, above all 100. A population of one ranks its value
/// at 50. `None` for an empty population.
pub fn percentile_rank(value: f64, sorted: &[f64]) -> Option<f64> {
    debug_assert!(sorted.is_sorted_by(|a, b| a <= b), "the population must be sorted ascending");
    let n = sorted.len();
    if n == 0 || !value.is_finite() {
        return None;
    }
    let below = sorted.partition_point(|x| *x < value);
    let equal = sorted[below..].partition_point(|x| *x <= value);
    if n == 1 {
        return Some(match equal {
            1 => 50.0,
            _ if below == 1 => 100.0,
            _ => 0.0,
        });
    }
    let rank = if equal == 0 { below as f64 - 0.5 } else { below as f64 + (equal as f64 - 1.0) / 2.0 };
    Some((rank / (n as f64 - 1.0) * 100.0).clamp(0.0, 100.0))
}

/// Sorts the tenant's values of a measure into a percentile population,
/// leaving out missing and non-finite ones.
pub fn population(values: impl IntoIterator<Item = Option<f64>>) -> Vec<f64> {
    let mut v: Vec<f64> = values.into_iter().flatten().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The population `sorted` (ascending) with some accounts' values replaced:
/// one occurrence of each of `removed` (their values as stored) taken out,
/// `added` (their values now) put in, missing and non-finite ones left out;
/// ascending. A removed value the population does not hold (stored after
/// the population was read) takes nothing out.
///
/// Scoring ranks each account's value of a percentile measure in the
/// tenant's latest values, its own included: the chunk being scored brings
/// its values now, so an account whose measure nobody had a value of yet
/// still ranks (issue #10: a new scorecard unscored its accounts).
pub fn replaced(sorted: &[f64], removed: &[f64], added: &[f64]) -> Vec<f64> {
    let removed = population(removed.iter().copied().map(Some));
    let added = population(added.iter().copied().map(Some));
    let mut kept = Vec::with_capacity(sorted.len() + added.len());
    let mut r = 0;
    for v in sorted {
        while removed.get(r).is_some_and(|x| x.total_cmp(v) == Ordering::Less) {
            r += 1;
        }
        if removed.get(r).is_some_and(|x| x.total_cmp(v) == Ordering::Equal) {
            r += 1;
            continue;
        }
        kept.push(*v);
    }
    let mut out = Vec::with_capacity(kept.len() + added.len());
    let (mut i, mut j) = (0, 0);
    while i < kept.len() || j < added.len() {
        let take_kept = match (kept.get(i), added.get(j)) {
            (Some(k), Some(a)) => k.total_cmp(a) != Ordering::Greater,
            (Some(_), None) => true,
            _ => false,
        };
        if take_kept {
            out.extend(kept.get(i));
            i += 1;
        } else {
            out.extend(added.get(j));
            j += 1;
        }
    }
    out
}

/// Whether more of the measure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    HigherIsBetter,
    /// Fewer support tickets, fewer days since the last login: the
    /// normalised points are inverted (100 − points).
    LowerIsBetter,
}

impl Direction {
    /// Applies the direction to normalised points.
    pub fn apply(self, points: f64) -> f64 {
        match self {
            Direction::HigherIsBetter => points,
            Direction::LowerIsBetter => 100.0 - points,
        }
    }
}

/// What a missing value does to the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingData {
    /// Leave the measure out and spread its weight over the others: no NPS
    /// survey answered yet should not sink an account.
    #[default]
    SkipAndReweight,
    /// Count it as 0 points (whatever the direction): a missing contract is
    /// itself bad news.
    CountAsZero,
}

/// A measure in a scorecard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedMeasure {
    /// The measure id (see [`super::measure`]).
    pub measure: String,
    /// Relative weight, 0 to [`MAX_WEIGHT`].
    pub weight: f64,
    pub normalisation: Normalisation,
    pub direction: Direction,
    pub missing: MissingData,
}

/// Which accounts a scorecard scores.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    #[default]
    All,
    /// Members of this Accounts segment (by id).
    Segment(String),
    /// Accounts in this lifecycle stage (stored as its name, "onboarding").
    LifecycleStage(LifecycleStage),
    /// Accounts with this touch model (stored as "high", "low" or "tech").
    TouchModel(TouchModel),
}

impl Scope {
    /// How specific the scope is: the higher, the more it wins.
    pub fn specificity(&self) -> u8 {
        match self {
            Scope::All => 0,
            Scope::TouchModel(_) => 1,
            Scope::LifecycleStage(_) => 2,
            Scope::Segment(_) => 3,
        }
    }
}

/// Where the bands start: red below `yellow_from`, yellow from it, green
/// from `green_from`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bands {
    pub yellow_from: f64,
    pub green_from: f64,
}

impl Default for Bands {
    fn default() -> Self {
        Bands { yellow_from: 40.0, green_from: 70.0 }
    }
}

/// A scorecard (one version of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorecardDef {
    pub name: String,
    pub scope: Scope,
    pub measures: Vec<WeightedMeasure>,
    pub bands: Bands,
}

/// Every rule `def` breaks, as (field path, description), e.g.
/// `("measures[2].weight", "must be a number from 0 to 1000000, got -1")`.
/// Empty when valid. All are reported at once, so that a scorecard editor
/// can mark every bad field in one round trip. The paths are those of the
/// `banso.health.v1.Scorecard` message (`scope.segment_id`,
/// `measures[0].normalisation.thresholds.thresholds[1].at`), so the API
/// only prefixes them with `scorecard.`.
///
/// The rules: name 1 to 200 characters (not only spaces, no control
/// characters); a segment id when scoped to a segment (stages and touch
/// models are typed, so always known); 1 to
/// 50 measures, each id valid and used once; weights 0 to [`MAX_WEIGHT`],
/// not all 0; thresholds 1 to [`MAX_THRESHOLDS`], finite, strictly
/// ascending by `at` (two at the same value overlap), points 0 to 100;
/// linear bounds finite with min < max; bands 0 ≤ yellow_from <
/// green_from ≤ 100.
pub fn validate(def: &ScorecardDef) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    let mut add = |field: String, description: String| v.push((field, description));

    let n = def.name.chars().count();
    if def.name.trim().is_empty() {
        add("name".into(), "is required".into());
    } else if n > 200 {
        add("name".into(), format!("must be at most 200 characters, got {n}"));
    } else if def.name.chars().any(char::is_control) {
        add("name".into(), "must not contain control characters".into());
    }

    match &def.scope {
        Scope::All => {}
        Scope::Segment(id) => {
            if id.trim().is_empty() {
                add("scope.segment_id".into(), "is required".into());
            }
        }
        Scope::LifecycleStage(_) | Scope::TouchModel(_) => {}
    }

    if def.measures.is_empty() {
        add("measures".into(), "at least one measure is required".into());
    } else if def.measures.len() > MAX_MEASURES {
        add("measures".into(), format!("at most {MAX_MEASURES} measures, got {}", def.measures.len()));
    }
    let mut seen: Vec<(usize, super::measure::MeasureDef)> = Vec::new();
    for (i, m) in def.measures.iter().enumerate() {
        let at = |field: &str| format!("measures[{i}].{field}");
        match parse_measure(&m.measure) {
            Ok(parsed) => {
                if let Some((first, _)) = seen.iter().find(|(_, p)| *p == parsed) {
                    add(at("measure"), format!("{} is already measures[{first}]", shown(&m.measure)));
                } else {
                    seen.push((i, parsed));
                }
            }
            Err(e) => add(at("measure"), e),
        }
        if !m.weight.is_finite() || !(0.0..=MAX_WEIGHT).contains(&m.weight) {
            add(at("weight"), format!("must be a number from 0 to {MAX_WEIGHT}, got {}", m.weight));
        }
        match &m.normalisation {
            Normalisation::Thresholds(ts) => {
                let field = at("normalisation.thresholds.thresholds");
                if ts.is_empty() {
                    add(field.clone(), "at least one threshold is required".into());
                } else if ts.len() > MAX_THRESHOLDS {
                    add(field.clone(), format!("at most {MAX_THRESHOLDS} thresholds, got {}", ts.len()));
                }
                for (j, t) in ts.iter().enumerate() {
                    if !t.at.is_finite() {
                        add(format!("{field}[{j}].at"), format!("must be a finite number, got {}", t.at));
                    } else if j > 0 && ts[j - 1].at.is_finite() {
                        let prev = ts[j - 1].at;
                        match t.at.partial_cmp(&prev) {
                            Some(Ordering::Equal) => add(
                                format!("{field}[{j}].at"),
                                format!("overlaps thresholds[{}]: both are at {prev}", j - 1),
                            ),
                            Some(Ordering::Less) => add(
                                format!("{field}[{j}].at"),
                                format!(
                                    "thresholds must be strictly ascending by at: {} is below thresholds[{}].at = {prev}",
                                    t.at,
                                    j - 1
                                ),
                            ),
                            _ => {}
                        }
                    }
                    if !t.points.is_finite() || !(0.0..=100.0).contains(&t.points) {
                        add(format!("{field}[{j}].points"), format!("must be from 0 to 100, got {}", t.points));
                    }
                }
            }
            Normalisation::Linear { min, max } => {
                let field = at("normalisation.linear");
                if !min.is_finite() {
                    add(format!("{field}.min"), format!("must be a finite number, got {min}"));
                }
                if !max.is_finite() {
                    add(format!("{field}.max"), format!("must be a finite number, got {max}"));
                }
                if min.is_finite() && max.is_finite() && min >= max {
                    add(format!("{field}.max"), format!("must be greater than min ({min}), got {max}"));
                }
            }
            Normalisation::Percentile => {}
        }
    }
    if !def.measures.is_empty() && def.measures.iter().all(|m| m.weight == 0.0) {
        add("measures".into(), "the weights must not all be 0".into());
    }

    let Bands { yellow_from: y, green_from: g } = def.bands;
    if !y.is_finite() || !(0.0..=100.0).contains(&y) {
        add("bands.yellow_from".into(), format!("must be from 0 to 100, got {y}"));
    }
    if !g.is_finite() || !(0.0..=100.0).contains(&g) {
        add("bands.green_from".into(), format!("must be from 0 to 100, got {g}"));
    } else if y.is_finite() && y >= g {
        add("bands.green_from".into(), format!("must be greater than yellow_from ({y}), got {g}"));
    }
    v
}

/// An account's attributes that scopes match on (from the Accounts projection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountScope {
    pub lifecycle_stage: LifecycleStage,
    pub touch_model: TouchModel,
}

/// Which scorecard scores `account`, from `candidates` (id, current
/// version, creation time): the most specific scope that applies wins —
/// a segment the account belongs to, then its lifecycle stage, then its
/// touch model, then all accounts. Among equally specific ones (say, two
/// segments the account belongs to) the newest wins, then the greater id.
/// `None` when nothing applies (no scorecard for all accounts).
///
/// Pass the scorecard's creation time, not its latest version's: editing
/// an older scorecard must not silently take accounts from a newer one.
/// `segment_member` is only asked about segments that could still win, as
/// evaluating one costs a CEL run.
pub fn choose<'a>(
    candidates: &'a [(Uuid, ScorecardDef, DateTime<Utc>)],
    account: &AccountScope,
    segment_member: impl Fn(&str) -> bool,
) -> Option<&'a (Uuid, ScorecardDef, DateTime<Utc>)> {
    let key = |c: &(Uuid, ScorecardDef, DateTime<Utc>)| (c.1.scope.specificity(), c.2, c.0);
    let mut best: Option<&'a (Uuid, ScorecardDef, DateTime<Utc>)> = None;
    for c in candidates {
        if best.is_some_and(|b| key(c) <= key(b)) {
            continue;
        }
        let applies = match &c.1.scope {
            Scope::All => true,
            Scope::Segment(id) => segment_member(id),
            Scope::LifecycleStage(s) => *s == account.lifecycle_stage,
            Scope::TouchModel(t) => *t == account.touch_model,
        };
        if applies {
            best = Some(c);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    fn th(pairs: &[(f64, f64)]) -> Normalisation {
        Normalisation::Thresholds(pairs.iter().map(|&(at, points)| Threshold { at, points }).collect())
    }

    fn pts(n: &Normalisation, dir: Direction, raw: f64, population: Option<&[f64]>) -> Option<f64> {
        n.points(raw, population).map(|p| dir.apply(p))
    }

    #[test]
    fn thresholds_below_between_and_above() {
        use Direction::*;
        // Active users: ≥ 1 → 20, ≥ 5 → 60, ≥ 20 → 100.
        let n = th(&[(1.0, 20.0), (5.0, 60.0), (20.0, 100.0)]);
        assert_eq!(pts(&n, HigherIsBetter, 0.0, None), Some(0.0)); // below the first
        assert_eq!(pts(&n, HigherIsBetter, 1.0, None), Some(20.0)); // at the first
        assert_eq!(pts(&n, HigherIsBetter, 4.9, None), Some(20.0)); // between
        assert_eq!(pts(&n, HigherIsBetter, 5.0, None), Some(60.0));
        assert_eq!(pts(&n, HigherIsBetter, 19.0, None), Some(60.0));
        assert_eq!(pts(&n, HigherIsBetter, 20.0, None), Some(100.0)); // at the last
        assert_eq!(pts(&n, HigherIsBetter, 1e9, None), Some(100.0)); // above the last
        // Open tickets, lower is better: same steps, inverted.
        assert_eq!(pts(&n, LowerIsBetter, 0.0, None), Some(100.0));
        assert_eq!(pts(&n, LowerIsBetter, 3.0, None), Some(80.0));
        assert_eq!(pts(&n, LowerIsBetter, 5.0, None), Some(40.0));
        assert_eq!(pts(&n, LowerIsBetter, 25.0, None), Some(0.0));
        // Negative values and a first threshold below them.
        let n = th(&[(-0.5, 10.0), (0.0, 50.0), (0.2, 90.0)]);
        assert_eq!(pts(&n, HigherIsBetter, -0.8, None), Some(0.0));
        assert_eq!(pts(&n, HigherIsBetter, -0.1, None), Some(10.0));
        assert_eq!(pts(&n, HigherIsBetter, 0.1, None), Some(50.0));
        assert_eq!(pts(&n, HigherIsBetter, 0.3, None), Some(90.0));
        assert_eq!(pts(&n, LowerIsBetter, 0.1, None), Some(50.0));
        // Non-finite raw values cannot be placed.
        assert_eq!(pts(&n, HigherIsBetter, f64::NAN, None), None);
    }

    #[test]
    fn linear_with_clamping() {
        use Direction::*;
        // Usage minutes 30d: 60 → 0 points, 660 → 100.
        let n = Normalisation::Linear { min: 60.0, max: 660.0 };
        assert_eq!(pts(&n, HigherIsBetter, 0.0, None), Some(0.0)); // clamped
        assert_eq!(pts(&n, HigherIsBetter, 60.0, None), Some(0.0));
        assert_eq!(pts(&n, HigherIsBetter, 210.0, None), Some(25.0)); // 150 / 600
        assert_eq!(pts(&n, HigherIsBetter, 360.0, None), Some(50.0));
        assert_eq!(pts(&n, HigherIsBetter, 660.0, None), Some(100.0));
        assert_eq!(pts(&n, HigherIsBetter, 5000.0, None), Some(100.0)); // clamped
        assert_eq!(pts(&n, LowerIsBetter, 210.0, None), Some(75.0));
        assert_eq!(pts(&n, LowerIsBetter, 0.0, None), Some(100.0));
        assert_eq!(pts(&n, LowerIsBetter, 5000.0, None), Some(0.0));
        // Days to renewal from −30 to 90.
        let n = Normalisation::Linear { min: -30.0, max: 90.0 };
        assert_eq!(pts(&n, HigherIsBetter, 0.0, None), Some(25.0));
    }

    #[test]
    fn percentile_with_ties_and_a_single_value() {
        use Direction::*;
        let n = Normalisation::Percentile;
        // Five values, two tied at 3: ranks 0, 1, 2.5 (mean of 2 and 3), 4 of 4.
        let popn = [1.0, 2.0, 3.0, 3.0, 10.0];
        let p = Some(&popn[..]);
        assert_eq!(pts(&n, HigherIsBetter, 1.0, p), Some(0.0));
        assert_eq!(pts(&n, HigherIsBetter, 2.0, p), Some(25.0));
        assert_eq!(pts(&n, HigherIsBetter, 3.0, p), Some(62.5)); // 2.5 / 4
        assert_eq!(pts(&n, HigherIsBetter, 10.0, p), Some(100.0));
        assert_eq!(pts(&n, LowerIsBetter, 2.0, p), Some(75.0));
        assert_eq!(pts(&n, LowerIsBetter, 3.0, p), Some(37.5));
        // Not in the population: between neighbours, or at the ends.
        assert_eq!(pts(&n, HigherIsBetter, 5.0, p), Some(87.5)); // 3.5 / 4
        assert_eq!(pts(&n, HigherIsBetter, 0.0, p), Some(0.0));
        assert_eq!(pts(&n, HigherIsBetter, 99.0, p), Some(100.0));
        // Everyone equal: everyone at 50.
        assert_eq!(pts(&n, HigherIsBetter, 7.0, Some(&[7.0, 7.0, 7.0])), Some(50.0));
        // A population of one.
        assert_eq!(pts(&n, HigherIsBetter, 7.0, Some(&[7.0])), Some(50.0));
        assert_eq!(pts(&n, LowerIsBetter, 7.0, Some(&[7.0])), Some(50.0));
        assert_eq!(pts(&n, HigherIsBetter, 8.0, Some(&[7.0])), Some(100.0));
        assert_eq!(pts(&n, HigherIsBetter, 6.0, Some(&[7.0])), Some(0.0));
        // No population: cannot rank.
        assert_eq!(pts(&n, HigherIsBetter, 7.0, Some(&[])), None);
        assert_eq!(pts(&n, HigherIsBetter, 7.0, None), None);
    }

    #[test]
    fn population_sorts_and_drops_missing_values() {
        assert_eq!(population([Some(3.0), None, Some(1.0), Some(f64::NAN), Some(2.0)]), vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn a_population_with_values_replaced() {
        let base = [1.0, 2.0, 2.0, 5.0, 9.0];
        // One of the two 2s replaced by 7, and a value never stored (3) added.
        assert_eq!(replaced(&base, &[2.0], &[7.0, 3.0]), vec![1.0, 2.0, 3.0, 5.0, 7.0, 9.0]);
        // A removed value the population does not hold takes nothing out.
        assert_eq!(replaced(&base, &[4.0], &[]), base.to_vec());
        // A measure nobody had a value of: the new values alone.
        assert_eq!(replaced(&[], &[], &[3.0, f64::NAN, 1.0]), vec![1.0, 3.0]);
        assert_eq!(replaced(&base, &base, &[]), Vec::<f64>::new());
    }

    fn measure(id: &str, weight: f64) -> WeightedMeasure {
        WeightedMeasure {
            measure: id.into(),
            weight,
            normalisation: Normalisation::Linear { min: 0.0, max: 10.0 },
            direction: Direction::HigherIsBetter,
            missing: MissingData::SkipAndReweight,
        }
    }

    fn valid() -> ScorecardDef {
        ScorecardDef {
            name: "標準ヘルススコア".into(),
            scope: Scope::All,
            measures: vec![
                WeightedMeasure { normalisation: th(&[(1.0, 20.0), (5.0, 60.0)]), ..measure("active_users_30d", 50.0) },
                measure("usage_minutes_30d", 30.0),
                WeightedMeasure {
                    normalisation: Normalisation::Percentile,
                    direction: Direction::LowerIsBetter,
                    missing: MissingData::CountAsZero,
                    ..measure("external:open_tickets", 0.0)
                },
            ],
            bands: Bands::default(),
        }
    }

    fn fields(def: &ScorecardDef) -> Vec<String> {
        validate(def).into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn a_valid_scorecard_has_no_violations() {
        assert_eq!(validate(&valid()), vec![]);
        // 200 kanji are 600 bytes but 200 characters.
        let def = ScorecardDef { name: "株".repeat(200), ..valid() };
        assert_eq!(validate(&def), vec![]);
        for scope in [
            Scope::Segment("0198c6a2-0000-7000-8000-000000000001".into()),
            Scope::LifecycleStage(LifecycleStage::Onboarding),
            Scope::TouchModel(TouchModel::Tech),
        ] {
            assert_eq!(validate(&ScorecardDef { scope, ..valid() }), vec![]);
        }
        let def = ScorecardDef { bands: Bands { yellow_from: 0.0, green_from: 100.0 }, ..valid() };
        assert_eq!(validate(&def), vec![]);
    }

    #[test]
    fn validate_names() {
        assert_eq!(fields(&ScorecardDef { name: " ".into(), ..valid() }), ["name"]);
        let long = ScorecardDef { name: "株".repeat(201), ..valid() };
        assert_eq!(validate(&long), [("name".to_owned(), "must be at most 200 characters, got 201".to_owned())]);
        assert_eq!(fields(&ScorecardDef { name: "a\nb".into(), ..valid() }), ["name"]);
    }

    #[test]
    fn validate_scopes() {
        assert_eq!(fields(&ScorecardDef { scope: Scope::Segment("".into()), ..valid() }), ["scope.segment_id"]);
    }

    #[test]
    fn validate_measure_count() {
        assert_eq!(fields(&ScorecardDef { measures: vec![], ..valid() }), ["measures"]);
        let many = (1..=51).map(|n| measure(&format!("active_users_{n}d"), 1.0)).collect();
        assert_eq!(
            validate(&ScorecardDef { measures: many, ..valid() }),
            [("measures".to_owned(), "at most 50 measures, got 51".to_owned())]
        );
        let fifty = (1..=50).map(|n| measure(&format!("active_users_{n}d"), 1.0)).collect();
        assert_eq!(validate(&ScorecardDef { measures: fifty, ..valid() }), vec![]);
    }

    #[test]
    fn validate_measure_ids_and_duplicates() {
        let mut def = valid();
        def.measures[1].measure = "logins_30d".into();
        let v = validate(&def);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0, "measures[1].measure");
        assert!(v[0].1.starts_with(r#"measure "logins_30d": unknown measure"#), "{}", v[0].1);

        let mut def = valid();
        def.measures[2].measure = "active_users_30d".into();
        assert_eq!(
            validate(&def),
            [("measures[2].measure".to_owned(), r#""active_users_30d" is already measures[0]"#.to_owned())]
        );
    }

    #[test]
    fn validate_weights() {
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e7] {
            let mut def = valid();
            def.measures[1].weight = bad;
            assert_eq!(fields(&def), ["measures[1].weight"], "{bad}");
        }
        let mut def = valid();
        def.measures[1].weight = -1.0;
        assert_eq!(validate(&def)[0].1, "must be a number from 0 to 1000000, got -1");
        let mut def = valid();
        for m in &mut def.measures {
            m.weight = 0.0;
        }
        assert_eq!(validate(&def), [("measures".to_owned(), "the weights must not all be 0".to_owned())]);
    }

    #[test]
    fn validate_thresholds() {
        let with = |n: Normalisation| {
            let mut def = valid();
            def.measures[0].normalisation = n;
            validate(&def)
        };
        assert_eq!(
            with(th(&[])),
            [(
                "measures[0].normalisation.thresholds.thresholds".to_owned(),
                "at least one threshold is required".to_owned()
            )]
        );
        // Overlapping: two thresholds at the same value.
        assert_eq!(
            with(th(&[(1.0, 20.0), (5.0, 60.0), (5.0, 80.0)])),
            [(
                "measures[0].normalisation.thresholds.thresholds[2].at".to_owned(),
                "overlaps thresholds[1]: both are at 5".to_owned()
            )]
        );
        // Descending.
        assert_eq!(
            with(th(&[(5.0, 20.0), (1.0, 60.0)])),
            [(
                "measures[0].normalisation.thresholds.thresholds[1].at".to_owned(),
                "thresholds must be strictly ascending by at: 1 is below thresholds[0].at = 5".to_owned()
            )]
        );
        let f = |v: Vec<(String, String)>| v.into_iter().map(|(f, _)| f).collect::<Vec<_>>();
        assert_eq!(
            f(with(th(&[(1.0, -1.0), (2.0, 100.5), (3.0, f64::NAN)]))),
            [
                "measures[0].normalisation.thresholds.thresholds[0].points",
                "measures[0].normalisation.thresholds.thresholds[1].points",
                "measures[0].normalisation.thresholds.thresholds[2].points"
            ]
        );
        assert_eq!(
            f(with(th(&[(f64::NAN, 10.0), (2.0, 20.0)]))),
            ["measures[0].normalisation.thresholds.thresholds[0].at"]
        );
        let many: Vec<(f64, f64)> = (0..101).map(|i| (f64::from(i), 50.0)).collect();
        assert_eq!(f(with(th(&many))), ["measures[0].normalisation.thresholds.thresholds"]);
    }

    #[test]
    fn validate_linear_bounds() {
        let with = |min: f64, max: f64| {
            let mut def = valid();
            def.measures[1].normalisation = Normalisation::Linear { min, max };
            validate(&def)
        };
        assert_eq!(
            with(10.0, 10.0),
            [("measures[1].normalisation.linear.max".to_owned(), "must be greater than min (10), got 10".to_owned())]
        );
        assert_eq!(with(10.0, 5.0)[0].0, "measures[1].normalisation.linear.max");
        assert_eq!(with(f64::NEG_INFINITY, 5.0)[0].0, "measures[1].normalisation.linear.min");
        assert_eq!(with(0.0, f64::NAN)[0].0, "measures[1].normalisation.linear.max");
        assert_eq!(with(-5.0, 5.0), vec![]);
    }

    #[test]
    fn validate_bands() {
        let with = |yellow_from: f64, green_from: f64| {
            fields(&ScorecardDef { bands: Bands { yellow_from, green_from }, ..valid() })
        };
        assert_eq!(with(-1.0, 70.0), ["bands.yellow_from"]);
        assert_eq!(with(40.0, 101.0), ["bands.green_from"]);
        assert_eq!(with(70.0, 70.0), ["bands.green_from"]);
        assert_eq!(with(80.0, 70.0), ["bands.green_from"]);
        assert_eq!(with(f64::NAN, 70.0), ["bands.yellow_from"]);
        assert_eq!(with(30.0, 60.0), Vec::<String>::new());
    }

    #[test]
    fn validate_reports_every_violation_at_once() {
        let mut def = valid();
        def.name = String::new();
        def.measures[0].weight = -2.0;
        def.measures[1].normalisation = Normalisation::Linear { min: 1.0, max: 0.0 };
        def.bands.green_from = 30.0;
        assert_eq!(
            fields(&def),
            ["name", "measures[0].weight", "measures[1].normalisation.linear.max", "bands.green_from"]
        );
    }

    #[test]
    fn scorecards_round_trip_through_json() {
        let def = ScorecardDef { scope: Scope::TouchModel(TouchModel::Tech), ..valid() };
        let json = serde_json::to_value(&def).unwrap();
        assert_eq!(json["scope"], serde_json::json!({ "touch_model": "tech" }));
        assert_eq!(
            json["measures"][0]["normalisation"]["thresholds"][1],
            serde_json::json!({ "at": 5.0, "points": 60.0 })
        );
        assert_eq!(json["measures"][2]["direction"], "lower_is_better");
        assert_eq!(json["measures"][2]["missing"], "count_as_zero");
        assert_eq!(json["measures"][2]["normalisation"], "percentile");
        assert_eq!(serde_json::from_value::<ScorecardDef>(json).unwrap(), def);
    }

    #[test]
    fn scopes_stored_as_names_still_read() {
        // Scopes were strings before stages and touch models were typed: the
        // JSON is the same.
        let json = serde_json::json!({ "lifecycle_stage": "onboarding" });
        assert_eq!(serde_json::from_value::<Scope>(json).unwrap(), Scope::LifecycleStage(LifecycleStage::Onboarding));
        assert!(serde_json::from_value::<Scope>(serde_json::json!({ "touch_model": "medium" })).is_err());
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn card(scope: Scope) -> ScorecardDef {
        ScorecardDef { scope, ..valid() }
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn choose_the_most_specific_scope() {
        let cands = vec![
            (id(1), card(Scope::All), t("2026-01-01T00:00:00Z")),
            (id(2), card(Scope::TouchModel(TouchModel::Tech)), t("2026-01-02T00:00:00Z")),
            (id(3), card(Scope::LifecycleStage(LifecycleStage::Onboarding)), t("2026-01-03T00:00:00Z")),
            (id(4), card(Scope::Segment("enterprise".into())), t("2026-01-04T00:00:00Z")),
        ];
        let acct = |stage: &str, touch: &str| AccountScope {
            lifecycle_stage: LifecycleStage::parse(stage).unwrap(),
            touch_model: TouchModel::parse(touch).unwrap(),
        };
        let pick = |a: &AccountScope, member: bool| choose(&cands, a, |_| member).map(|c| c.0);
        // Everything applies: the segment wins.
        assert_eq!(pick(&acct("onboarding", "tech"), true), Some(id(4)));
        // Not in the segment: the lifecycle stage wins over the touch model.
        assert_eq!(pick(&acct("onboarding", "tech"), false), Some(id(3)));
        // Another stage: the touch model.
        assert_eq!(pick(&acct("adoption", "tech"), false), Some(id(2)));
        // Nothing specific: all accounts.
        assert_eq!(pick(&acct("adoption", "high"), false), Some(id(1)));
        // Specificity beats age: the All card is older, but put it last and newest.
        let mut reordered = cands.clone();
        reordered[0].2 = t("2026-12-31T00:00:00Z");
        reordered.rotate_left(1);
        assert_eq!(choose(&reordered, &acct("adoption", "tech"), |_| false).map(|c| c.0), Some(id(2)));
        // No scorecard for all accounts and nothing else applies.
        assert_eq!(choose(&cands[1..], &acct("adoption", "high"), |_| false), None);
        assert_eq!(choose(&[], &acct("adoption", "high"), |_| true), None);
    }

    #[test]
    fn choose_the_newest_among_equals() {
        let cands = vec![
            (id(9), card(Scope::Segment("s-old".into())), t("2026-01-01T00:00:00Z")),
            (id(1), card(Scope::Segment("s-new".into())), t("2026-03-01T00:00:00Z")),
            (id(5), card(Scope::Segment("s-mid".into())), t("2026-02-01T00:00:00Z")),
            (id(7), card(Scope::All), t("2026-04-01T00:00:00Z")),
            (id(8), card(Scope::All), t("2026-04-01T00:00:00Z")),
        ];
        let a = AccountScope { lifecycle_stage: LifecycleStage::Adoption, touch_model: TouchModel::High };
        // Member of all three segments: the newest.
        assert_eq!(choose(&cands, &a, |_| true).map(|c| c.0), Some(id(1)));
        // Not of the newest: the next newest.
        assert_eq!(choose(&cands, &a, |s| s != "s-new").map(|c| c.0), Some(id(5)));
        assert_eq!(choose(&cands, &a, |s| s == "s-old").map(|c| c.0), Some(id(9)));
        // Equal times: the greater id.
        assert_eq!(choose(&cands, &a, |_| false).map(|c| c.0), Some(id(8)));
    }

    #[test]
    fn choose_asks_about_segments_only_while_they_can_win() {
        let cands = vec![
            (id(1), card(Scope::Segment("new".into())), t("2026-03-01T00:00:00Z")),
            (id(2), card(Scope::Segment("old".into())), t("2026-01-01T00:00:00Z")),
        ];
        let asked = RefCell::new(Vec::new());
        let a = AccountScope { lifecycle_stage: LifecycleStage::Onboarding, touch_model: TouchModel::High };
        let got = choose(&cands, &a, |s| {
            asked.borrow_mut().push(s.to_owned());
            true
        });
        assert_eq!(got.map(|c| c.0), Some(id(1)));
        assert_eq!(*asked.borrow(), ["new"]);
    }
}
