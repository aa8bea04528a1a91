//! Churn prediction: a logistic regression over standardised measure
//! values, fitted by iteratively reweighted least squares (Newton's method
//! on the penalised log-likelihood) with an L2 penalty and class weights
//! for rare churn. Pure; no I/O.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The fewest labelled churns a model is trained on, by default: below it a
/// probability would be noise dressed as a number.
pub const DEFAULT_MIN_CHURNS: u64 = 20;

/// How likely an account is to churn within the horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RiskBucket {
    /// Below 10%.
    Low,
    /// 10% to 30%.
    Medium,
    /// 30% or more.
    High,
}

impl RiskBucket {
    pub fn of(probability: f64) -> RiskBucket {
        if probability >= 0.3 {
            RiskBucket::High
        } else if probability >= 0.1 {
            RiskBucket::Medium
        } else {
            RiskBucket::Low
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RiskBucket::Low => "low",
            RiskBucket::Medium => "medium",
            RiskBucket::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<RiskBucket> {
        [RiskBucket::Low, RiskBucket::Medium, RiskBucket::High].into_iter().find(|b| b.as_str() == s)
    }
}

/// How a model is fitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// The L2 penalty on the coefficients (not the intercept), in units of
    /// the weighted sample size.
    pub l2: f64,
    /// Weigh each class by N ÷ (2 × its count), so that rare churn counts
    /// as much as the rest. The intercept is then corrected by the log of
    /// the sample's odds of churn (King & Zeng's prior correction), so that
    /// probabilities are of the tenant's base rate again.
    pub balanced: bool,
    pub max_iterations: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions { l2: 1e-3, balanced: true, max_iterations: 50 }
    }
}

/// A fitted model: per feature its mean and standard deviation (for
/// standardising) and coefficient, and the intercept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub features: Vec<String>,
    pub means: Vec<f64>,
    pub std_devs: Vec<f64>,
    pub coefficients: Vec<f64>,
    pub intercept: f64,
    /// Newton iterations it took.
    pub iterations: usize,
}

/// What a model predicts within the horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A churn (the default).
    #[default]
    Churn,
    /// An expansion of any kind.
    Expansion,
    /// An expansion the contract event calls an upsell (a higher edition).
    Upsell,
    /// An expansion the contract event calls a cross-sell (another product).
    CrossSell,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Churn => "churn",
            Target::Expansion => "expansion",
            Target::Upsell => "upsell",
            Target::CrossSell => "cross_sell",
        }
    }

    /// The target of [`Target::as_str`].
    pub fn parse(s: &str) -> Option<Target> {
        [Target::Churn, Target::Expansion, Target::Upsell, Target::CrossSell].into_iter().find(|t| t.as_str() == s)
    }

    /// The expansions it counts: `None` for churn, `Some(None)` for any.
    pub fn expansion(self) -> Option<Option<super::outcome::ExpansionKind>> {
        use super::outcome::ExpansionKind;
        match self {
            Target::Churn => None,
            Target::Expansion => Some(None),
            Target::Upsell => Some(Some(ExpansionKind::Upsell)),
            Target::CrossSell => Some(Some(ExpansionKind::CrossSell)),
        }
    }
}

/// The first expansion of `want` (any kind for `None`) among an account's
/// `expansions` that takes effect within `horizon` days after `day`
/// (`day < date ≤ day + horizon`), as a backtest labels churn.
pub fn expansion_within(
    expansions: &[(NaiveDate, Option<super::outcome::ExpansionKind>)],
    day: NaiveDate,
    horizon: u32,
    want: Option<super::outcome::ExpansionKind>,
) -> Option<NaiveDate> {
    let end = day.checked_add_days(chrono::Days::new(horizon.into()))?;
    expansions.iter().filter(|(d, k)| *d > day && *d <= end && (want.is_none() || *k == want)).map(|(d, _)| *d).min()
}

/// An account as a model scored it: its probability, bucket and reasons.
pub type Scored = (uuid::Uuid, f64, RiskBucket, Vec<(String, f64)>);

/// An account's stored probability of a target: what a new one is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Held {
    pub bucket: RiskBucket,
    pub probability: f64,
    pub version: i64,
}

/// How far a probability must move for the live scorer to store it again
/// (a bucket change, or a newer model, always does): each event moves it a
/// little, and a write per event would be noise.
pub const PROBABILITY_STEP: f64 = 0.001;

/// Whether `new` (from model `version`) is worth storing over `held`:
/// never over a newer model's; over an older model's, a bucket move or a
/// move of at least [`PROBABILITY_STEP`].
pub fn worth_storing(held: Option<&Held>, version: i64, probability: f64) -> bool {
    match held {
        None => true,
        Some(h) if h.version > version => false,
        Some(h) => {
            h.version < version
                || h.bucket != RiskBucket::of(probability)
                || (h.probability - probability).abs() >= PROBABILITY_STEP
        }
    }
}

/// An account's latest probability of a target, as a kept model scored it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub target: Target,
    pub probability: f64,
    pub bucket: RiskBucket,
    pub model_version: i64,
    /// What pushes the probability up, most first.
    pub reasons: Vec<(String, f64)>,
    pub update_time: chrono::DateTime<chrono::Utc>,
}

/// A model as trained and kept, one version per training of a tenant:
/// what it was fitted on, the fit, and how it did on the newer snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trained {
    /// 1, 2, … per tenant, in the order trained; 0 until stored.
    pub version: i64,
    /// What it predicts; models kept before expansion were all of churn.
    #[serde(default)]
    pub target: Target,
    /// The scorecard whose measures are the features, and its version.
    pub scorecard: (uuid::Uuid, i64),
    /// The snapshot days asked for (inclusive).
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub horizon: u32,
    pub model: Model,
    /// Snapshots before it train, those from it validate.
    pub split_day: NaiveDate,
    /// Snapshots and distinct churns that trained it…
    pub training: (u64, u64),
    /// …and that validated it.
    pub validation: (u64, u64),
    pub validation_auc: Option<f64>,
    /// Live accounts scored when it was trained, and those whose bucket moved.
    pub accounts_scored: u64,
    pub risk_changes: u64,
    pub train_time: chrono::DateTime<chrono::Utc>,
}

/// Why a model was not fitted.
#[derive(Debug, Clone, PartialEq)]
pub enum FitError {
    /// Fewer labelled churns than the minimum.
    TooFewChurns { churns: u64, minimum: u64 },
    /// No snapshot without churn.
    NoNegatives,
    /// Rows of another width than the feature names.
    Shape,
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FitError::TooFewChurns { churns, minimum } => {
                write!(f, "{churns} labelled churns in the training snapshots, fewer than the minimum of {minimum}")
            }
            FitError::NoNegatives => write!(f, "no training snapshot without churn"),
            FitError::Shape => write!(f, "rows do not match the features"),
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

// Matrix code: indices read as the formulas do.
#[allow(clippy::needless_range_loop)]
/// Solves `a x = b` for a symmetric positive definite `a` (Cholesky);
/// `None` if it is not.
fn solve_spd(a: &[Vec<f64>], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = a[i][i] - s;
                if d <= 0.0 || !d.is_finite() {
                    return None;
                }
                l[i][j] = d.sqrt();
            } else {
                l[i][j] = (a[i][j] - s) / l[j][j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i][k] * y[k]).sum::<f64>()) / l[i][i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[k][i] * x[k]).sum::<f64>()) / l[i][i];
    }
    Some(x)
}

/// Per feature the mean and standard deviation of its present values (a
/// missing value is `None`); a constant feature gets 1, so it standardises
/// to 0.
fn moments(rows: &[Vec<Option<f64>>], k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut means = vec![0.0; k];
    let mut sds = vec![1.0; k];
    for j in 0..k {
        let vals: Vec<f64> = rows.iter().filter_map(|r| r[j]).filter(|v| v.is_finite()).collect();
        if vals.is_empty() {
            continue;
        }
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        let var = vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / vals.len() as f64;
        means[j] = m;
        sds[j] = if var > 1e-12 { var.sqrt() } else { 1.0 };
    }
    (means, sds)
}

impl Model {
    /// The standardised features of a row: (value − mean) ÷ sd; a missing
    /// value is the mean (0).
    pub fn standardise(&self, row: &[Option<f64>]) -> Vec<f64> {
        row.iter()
            .enumerate()
            .map(|(j, v)| v.filter(|v| v.is_finite()).map_or(0.0, |v| (v - self.means[j]) / self.std_devs[j]))
            .collect()
    }

    /// The probability of churn within the horizon of a row.
    pub fn probability(&self, row: &[Option<f64>]) -> f64 {
        let z = self.standardise(row);
        sigmoid(self.intercept + z.iter().zip(&self.coefficients).map(|(x, b)| x * b).sum::<f64>())
    }

    /// The features that push this row's risk up, most first: coefficient
    /// × standardised value, positive ones only.
    pub fn reasons(&self, row: &[Option<f64>]) -> Vec<(String, f64)> {
        let z = self.standardise(row);
        let mut r: Vec<(String, f64)> = self
            .features
            .iter()
            .zip(z.iter().zip(&self.coefficients))
            .map(|(f, (x, b))| (f.clone(), x * b))
            .filter(|(_, c)| *c > 0.0)
            .collect();
        r.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        r
    }
}

// Matrix code: indices read as the formulas do.
#[allow(clippy::needless_range_loop)]
/// Fits a model of `churned` on `rows` (one value per feature, `None` when
/// missing). Refused below `min_churns` churned rows.
pub fn fit(
    features: &[String],
    rows: &[Vec<Option<f64>>],
    churned: &[bool],
    min_churns: u64,
    opts: FitOptions,
) -> Result<Model, FitError> {
    let k = features.len();
    if rows.len() != churned.len() || rows.iter().any(|r| r.len() != k) {
        return Err(FitError::Shape);
    }
    let positives = churned.iter().filter(|c| **c).count() as u64;
    if positives < min_churns || positives == 0 {
        return Err(FitError::TooFewChurns { churns: positives, minimum: min_churns });
    }
    let negatives = churned.len() as u64 - positives;
    if negatives == 0 {
        return Err(FitError::NoNegatives);
    }
    let (means, std_devs) = moments(rows, k);
    let mut model = Model {
        features: features.to_vec(),
        means,
        std_devs,
        coefficients: vec![0.0; k],
        intercept: 0.0,
        iterations: 0,
    };
    let xs: Vec<Vec<f64>> = rows.iter().map(|r| model.standardise(r)).collect();
    let n = rows.len() as f64;
    let (w_pos, w_neg) =
        if opts.balanced { (n / (2.0 * positives as f64), n / (2.0 * negatives as f64)) } else { (1.0, 1.0) };
    let lambda = opts.l2 * n;
    // β = (intercept, coefficients…)
    let mut beta = vec![0.0; k + 1];
    for it in 0..opts.max_iterations {
        let mut g = vec![0.0; k + 1];
        let mut h = vec![vec![0.0; k + 1]; k + 1];
        for (x, &y) in xs.iter().zip(churned) {
            let eta = beta[0] + x.iter().zip(&beta[1..]).map(|(a, b)| a * b).sum::<f64>();
            let p = sigmoid(eta);
            let w = if y { w_pos } else { w_neg };
            let r = w * (p - if y { 1.0 } else { 0.0 });
            let s = w * p * (1.0 - p);
            let xi = |i: usize| if i == 0 { 1.0 } else { x[i - 1] };
            for i in 0..=k {
                g[i] += r * xi(i);
                for j in 0..=i {
                    h[i][j] += s * xi(i) * xi(j);
                }
            }
        }
        for i in 0..=k {
            for j in 0..i {
                h[j][i] = h[i][j];
            }
        }
        for i in 1..=k {
            g[i] += lambda * beta[i];
            h[i][i] += lambda;
        }
        // A tiny ridge on the intercept keeps a separable sample solvable.
        h[0][0] += 1e-9 * n;
        let Some(step) = solve_spd(&h, &g) else { break };
        let mut biggest: f64 = 0.0;
        for i in 0..=k {
            beta[i] -= step[i];
            biggest = biggest.max(step[i].abs());
        }
        model.iterations = it + 1;
        if biggest < 1e-9 {
            break;
        }
    }
    model.intercept = beta[0];
    if opts.balanced {
        model.intercept += (positives as f64 / negatives as f64).ln();
    }
    model.coefficients = beta[1..].to_vec();
    Ok(model)
}

/// Scorecard weights that rank accounts as a churn model does, as far as a
/// weighted sum of normalised measures can: a measure's weight is
/// proportional to how much a unit of its raw value lowers the model's
/// log-odds of churn (−coefficient ÷ standard deviation, turned by the
/// measure's direction) times the raw span its normalisation spreads over
/// 0–100 points (max − min for linear, the thresholds' span for a step
/// function, 4 standard deviations for a percentile). A measure the model
/// says works against its direction gets 0. The weights are scaled to sum to
/// the current ones' sum and rounded to hundredths. `None` for a measure the
/// model does not have.
pub fn suggested_weights(def: &super::scorecard::ScorecardDef, model: &Model) -> Vec<Option<f64>> {
    use super::scorecard::{Direction, Normalisation};
    let raw: Vec<Option<f64>> = def
        .measures
        .iter()
        .map(|m| {
            let j = model.features.iter().position(|f| *f == m.measure)?;
            let sd = model.std_devs[j];
            let span = match &m.normalisation {
                Normalisation::Linear { min, max } => (max - min).abs(),
                Normalisation::Thresholds(ts) => match (ts.first(), ts.last()) {
                    (Some(a), Some(b)) if b.at > a.at => b.at - a.at,
                    _ => 4.0 * sd,
                },
                Normalisation::Percentile => 4.0 * sd,
            };
            let turn = if m.direction == Direction::LowerIsBetter { -1.0 } else { 1.0 };
            Some((-model.coefficients[j] * turn / sd * span).max(0.0))
        })
        .collect();
    let total: f64 = raw.iter().flatten().sum();
    let current: f64 = def.measures.iter().map(|m| m.weight).sum();
    let scale = if total > 0.0 { current / total } else { 0.0 };
    raw.into_iter().map(|w| w.map(|w| (w * scale * 100.0).round() / 100.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_probability_is_stored_when_it_moves_and_never_over_a_newer_model() {
        let held = Held { bucket: RiskBucket::Low, probability: 0.05, version: 3 };
        assert!(worth_storing(None, 1, 0.05), "an account's first");
        assert!(!worth_storing(Some(&held), 3, 0.0505), "a move under the step");
        assert!(worth_storing(Some(&held), 3, 0.052), "a move of the step");
        assert!(worth_storing(Some(&held), 3, 0.15), "a bucket move");
        assert!(worth_storing(Some(&held), 4, 0.05), "a newer model");
        assert!(!worth_storing(Some(&held), 2, 0.9), "an older model");
    }

    /// A small deterministic generator (xorshift64*), uniform in (0, 1).
    struct Rng(u64);

    impl Rng {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let (u1, u2) = (self.uniform(), self.uniform());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }
    }

    /// Rows of two informative features and one noise feature, churn drawn
    /// from σ(−3 − 1.5 x₁ + 0.8 x₂).
    fn sample(n: usize, seed: u64) -> (Vec<String>, Vec<Vec<Option<f64>>>, Vec<bool>) {
        let mut rng = Rng(seed);
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let (x1, x2, x3) = (rng.normal(), rng.normal(), rng.normal());
            y.push(rng.uniform() < sigmoid(-3.0 - 1.5 * x1 + 0.8 * x2));
            // Scaled and shifted as raw measures are: standardising undoes it.
            rows.push(vec![Some(10.0 + 5.0 * x1), Some(x2 * 0.1), Some(100.0 + x3)]);
        }
        (vec!["logins".into(), "tickets".into(), "noise".into()], rows, y)
    }

    #[test]
    fn an_unweighted_fit_recovers_the_true_coefficients() {
        let (f, rows, y) = sample(20_000, 7);
        let opts = FitOptions { l2: 0.0, balanced: false, ..Default::default() };
        let m = fit(&f, &rows, &y, 20, opts).unwrap();
        // Standardised coefficients are the true ones × the features' sd (≈ 1 here).
        assert!((m.coefficients[0] + 1.5).abs() < 0.15, "{m:?}");
        assert!((m.coefficients[1] - 0.8).abs() < 0.15, "{m:?}");
        assert!(m.coefficients[2].abs() < 0.1, "{m:?}");
        assert!((m.intercept + 3.0).abs() < 0.2, "{m:?}");
        assert!(m.iterations < 20);
    }

    #[test]
    fn class_weights_keep_the_signs_and_the_base_rate() {
        let (f, rows, y) = sample(20_000, 11);
        let m = fit(&f, &rows, &y, 20, FitOptions::default()).unwrap();
        assert!(m.coefficients[0] < -1.0 && m.coefficients[1] > 0.5, "{m:?}");
        // Balanced, then corrected for the sample's odds: the mean
        // probability is near the churn rate again.
        let n = y.len() as f64;
        let pos = y.iter().filter(|c| **c).count() as f64;
        let mean = rows.iter().map(|r| m.probability(r)).sum::<f64>() / n;
        assert!((mean - pos / n).abs() < 0.03, "{mean} against a churn rate of {}", pos / n);
    }

    #[test]
    fn reasons_name_what_pushes_risk_up() {
        let (f, rows, y) = sample(5_000, 3);
        let m = fit(&f, &rows, &y, 20, FitOptions::default()).unwrap();
        // Few logins (−2 sd) and many tickets (+2 sd): both raise the risk, logins most.
        let row = [Some(0.0), Some(0.2), Some(100.0)];
        let r = m.reasons(&row);
        assert_eq!(r.iter().map(|(f, _)| f.as_str()).take(2).collect::<Vec<_>>(), ["logins", "tickets"]);
        assert!(m.probability(&row) > m.probability(&[Some(20.0), Some(-0.2), Some(100.0)]));
        // A missing value is the mean: it explains nothing.
        assert!(m.reasons(&[None, None, None]).is_empty());
    }

    #[test]
    fn expansions_label_by_kind_within_the_horizon() {
        use crate::domain::outcome::ExpansionKind::*;
        let d = |n: u64| NaiveDate::from_ymd_opt(2026, 1, 1).unwrap().checked_add_days(chrono::Days::new(n)).unwrap();
        let e = [(d(10), Some(CrossSell)), (d(40), None), (d(50), Some(Upsell))];
        assert_eq!(expansion_within(&e, d(0), 90, None), Some(d(10)));
        assert_eq!(expansion_within(&e, d(0), 90, Some(Upsell)), Some(d(50)));
        assert_eq!(expansion_within(&e, d(0), 45, Some(Upsell)), None);
        // The day itself is not within; the horizon's last day is.
        assert_eq!(expansion_within(&e, d(10), 30, None), Some(d(40)));
        assert_eq!(expansion_within(&e, d(50), 90, None), None);
        let names: Vec<&str> =
            [Target::Churn, Target::Expansion, Target::Upsell, Target::CrossSell].map(Target::as_str).to_vec();
        assert_eq!(names, ["churn", "expansion", "upsell", "cross_sell"]);
    }

    #[test]
    fn suggested_weights_follow_the_coefficients_per_point() {
        use crate::domain::scorecard::{Direction, Normalisation, ScorecardDef, WeightedMeasure};
        let m = |measure: &str, max: f64, direction: Direction| WeightedMeasure {
            measure: measure.into(),
            weight: 1.0,
            normalisation: Normalisation::Linear { min: 0.0, max },
            direction,
            missing: Default::default(),
        };
        let def = ScorecardDef {
            measures: vec![
                m("logins", 40.0, Direction::HigherIsBetter),
                m("tickets", 10.0, Direction::LowerIsBetter),
                m("noise", 40.0, Direction::HigherIsBetter),
                m("unknown", 1.0, Direction::HigherIsBetter),
            ],
            name: "card".into(),
            scope: Default::default(),
            bands: Default::default(),
        };
        let model = Model {
            features: vec!["logins".into(), "tickets".into(), "noise".into()],
            means: vec![0.0; 3],
            std_devs: vec![10.0, 2.0, 5.0],
            // Logins lower the risk, tickets raise it, noise raises it against its direction.
            coefficients: vec![-1.0, 0.5, 0.2],
            intercept: 0.0,
            iterations: 1,
        };
        // Per unit of log-odds: logins 1 ÷ 10 × 40 = 4, tickets 0.5 ÷ 2 × 10 = 2.5, noise 0;
        // scaled to the current sum of 4.
        assert_eq!(suggested_weights(&def, &model), [Some(2.46), Some(1.54), Some(0.0), None]);
    }

    #[test]
    fn buckets_cut_at_ten_and_thirty_percent() {
        let b: Vec<RiskBucket> = [0.0, 0.0999, 0.1, 0.2999, 0.3, 1.0].into_iter().map(RiskBucket::of).collect();
        use RiskBucket::*;
        assert_eq!(b, [Low, Low, Medium, Medium, High, High]);
        for x in [Low, Medium, High] {
            assert_eq!(RiskBucket::parse(x.as_str()), Some(x));
        }
    }

    #[test]
    fn below_the_minimum_of_churns_no_model() {
        let f = vec!["x".to_owned()];
        let rows: Vec<Vec<Option<f64>>> = (0..100).map(|i| vec![Some(i as f64)]).collect();
        let y: Vec<bool> = (0..100).map(|i| i < 3).collect();
        let e = fit(&f, &rows, &y, DEFAULT_MIN_CHURNS, FitOptions::default()).unwrap_err();
        assert_eq!(e, FitError::TooFewChurns { churns: 3, minimum: 20 });
        assert_eq!(e.to_string(), "3 labelled churns in the training snapshots, fewer than the minimum of 20");
        assert_eq!(fit(&f, &rows, &[true; 100], 20, FitOptions::default()), Err(FitError::NoNegatives));
    }
}
