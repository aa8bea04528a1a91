//! CS = CO + CX: the outcome axis (success-plan attainment, else the
//! outcome question) beside the experience axis (CES and CX-dimension
//! feedback), per account, kept as two numbers and never blended; and the
//! coverage of the five CX dimensions per journey phase.
//!
//! Every value is on 0–100:
//!
//! - a checkpoint's attainment: Playbooks sends a fraction (1 = the target
//!   reached, 0 = still at the baseline; below 0 is worse than the
//!   baseline, above 1 beyond the target): × 100, kept within 0–100;
//! - an outcome answer (1–5): (x − 1) ÷ 4 × 100;
//! - a CES answer (1–7): (x − 1) ÷ 6 × 100;
//! - a CX-dimension item's severity (1 mild – 5 severe): 100 − (s − 1) ÷ 4 × 100.
//!
//! outcome    = mean attainment of the account's checkpoints when it has
//!              any, else the mean of its outcome answers; absent without either.
//! experience = the mean over every piece of evidence, each counting once:
//!              its CES answers and its CX-dimension items together; absent
//!              without any.

use uuid::Uuid;

use super::voice::{CxDimension, JourneyPhase};

/// Where an account's outcome comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutcomeSource {
    SuccessPlan,
    OutcomeQuestion,
}

impl OutcomeSource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OutcomeSource::SuccessPlan => "success_plan",
            OutcomeSource::OutcomeQuestion => "outcome_question",
        }
    }
}

/// A checkpoint's attainment as Playbooks sends it (a fraction: 1 = the
/// target reached) on 0–100, capped at 100 and floored at 0; `None` when it
/// is not a number (a target equal to the baseline).
pub(crate) fn attainment_points(fraction: f64) -> Option<f64> {
    fraction.is_finite().then(|| (fraction * 100.0).clamp(0.0, 100.0))
}

/// An answer on `lo..=hi` on 0–100; `None` off the scale.
fn scale_points(x: i32, lo: i32, hi: i32) -> Option<f64> {
    (lo..=hi).contains(&x).then(|| f64::from(x - lo) / f64::from(hi - lo) * 100.0)
}

/// An outcome answer (1–5) on 0–100.
pub(crate) fn outcome_points(x: i32) -> Option<f64> {
    scale_points(x, 1, 5)
}

/// A CES answer (1–7) on 0–100.
pub(crate) fn ces_points(x: i32) -> Option<f64> {
    scale_points(x, 1, 7)
}

/// A CX-dimension item's severity (1 mild – 5 severe) on 0–100: a mild
/// item is a good experience (100), a severe one a bad one (0).
pub(crate) fn severity_points(s: i32) -> Option<f64> {
    scale_points(s, 1, 5).map(|p| 100.0 - p)
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// What one account has in the range.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Evidence {
    /// Its checkpoints' latest attainment, 0–100 ([`attainment_points`]).
    pub attainments: Vec<f64>,
    /// Its outcome answers, 1–5.
    pub outcome_answers: Vec<i32>,
    /// Its CES answers, 1–7.
    pub ces_answers: Vec<i32>,
    /// The severities of its items that have a CX dimension, 1–5.
    pub cx_severities: Vec<i32>,
}

/// One account on the two axes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Axes {
    pub outcome: Option<f64>,
    pub outcome_source: Option<OutcomeSource>,
    pub outcome_evidence: i64,
    pub experience: Option<f64>,
    pub experience_evidence: i64,
}

/// The account's two axes (module docs).
pub(crate) fn axes(e: &Evidence) -> Axes {
    let plan: Vec<f64> = e.attainments.iter().copied().filter(|x| x.is_finite()).collect();
    let answers: Vec<f64> = e.outcome_answers.iter().filter_map(|&x| outcome_points(x)).collect();
    let (outcome, outcome_source, outcome_evidence) = if !plan.is_empty() {
        (mean(&plan), Some(OutcomeSource::SuccessPlan), plan.len())
    } else if !answers.is_empty() {
        (mean(&answers), Some(OutcomeSource::OutcomeQuestion), answers.len())
    } else {
        (None, None, 0)
    };
    let experience: Vec<f64> = e
        .ces_answers
        .iter()
        .filter_map(|&x| ces_points(x))
        .chain(e.cx_severities.iter().filter_map(|&s| severity_points(s)))
        .collect();
    Axes {
        outcome,
        outcome_source,
        outcome_evidence: outcome_evidence as i64,
        experience: mean(&experience),
        experience_evidence: experience.len() as i64,
    }
}

/// Items of one dimension in one phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cell {
    pub dimension: CxDimension,
    pub phase: JourneyPhase,
    pub items: i64,
}

/// Every dimension × phase, dimension by dimension (sense, feel, think,
/// act, relate) and within each the phases (buying, using, support), with
/// the items that have both; an item without one of them counts nowhere.
pub(crate) fn coverage(items: impl IntoIterator<Item = (Option<CxDimension>, Option<JourneyPhase>)>) -> Vec<Cell> {
    let mut cells: Vec<Cell> = CxDimension::ALL
        .iter()
        .flat_map(|&dimension| JourneyPhase::ALL.iter().map(move |&phase| Cell { dimension, phase, items: 0 }))
        .collect();
    for (d, p) in items {
        if let (Some(d), Some(p)) = (d, p)
            && let Some(c) = cells.iter_mut().find(|c| c.dimension == d && c.phase == p)
        {
            c.items += 1;
        }
    }
    cells
}

/// The cells no item speaks to: what is missing.
pub(crate) fn uncovered(cells: &[Cell]) -> i64 {
    cells.iter().filter(|c| c.items == 0).count() as i64
}

/// One account of the scope.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AccountAxes {
    pub account_id: Uuid,
    pub display_name: String,
    pub axes: Axes,
}

/// CS = CO + CX over a scope.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SuccessAxes {
    pub accounts: Vec<AccountAxes>,
    /// The mean outcome of the accounts that have one, each counting once.
    pub mean_outcome: Option<f64>,
    /// The mean experience of the accounts that have one, each counting once.
    pub mean_experience: Option<f64>,
    pub coverage: Vec<Cell>,
    pub uncovered_cells: i64,
}

/// The scope's accounts (by name, then id) on both axes, the means across
/// them, and the coverage of `items` (dimension, phase).
pub(crate) fn success_axes(
    accounts: impl IntoIterator<Item = (Uuid, String, Evidence)>,
    items: impl IntoIterator<Item = (Option<CxDimension>, Option<JourneyPhase>)>,
) -> SuccessAxes {
    let mut accounts: Vec<AccountAxes> = accounts
        .into_iter()
        .map(|(account_id, display_name, e)| AccountAxes { account_id, display_name, axes: axes(&e) })
        .collect();
    accounts.sort_by(|a, b| (&a.display_name, a.account_id).cmp(&(&b.display_name, b.account_id)));
    let outcomes: Vec<f64> = accounts.iter().filter_map(|a| a.axes.outcome).collect();
    let experiences: Vec<f64> = accounts.iter().filter_map(|a| a.axes.experience).collect();
    let coverage = coverage(items);
    SuccessAxes {
        uncovered_cells: uncovered(&coverage),
        mean_outcome: mean(&outcomes),
        mean_experience: mean(&experiences),
        accounts,
        coverage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("a value");
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }

    #[test]
    fn each_scale_maps_onto_0_to_100() {
        assert_eq!((outcome_points(1), outcome_points(3), outcome_points(5)), (Some(0.0), Some(50.0), Some(100.0)));
        assert_eq!((outcome_points(0), outcome_points(6)), (None, None));
        assert_eq!((ces_points(1), ces_points(4), ces_points(7)), (Some(0.0), Some(50.0), Some(100.0)));
        assert_eq!((ces_points(0), ces_points(8)), (None, None));
        assert_eq!((severity_points(1), severity_points(3), severity_points(5)), (Some(100.0), Some(50.0), Some(0.0)));
        assert_eq!(severity_points(6), None);
    }

    /// Playbooks' attainment is a fraction: 5 of 9 points → 55.6; beyond
    /// the target capped at 100; worse than the baseline floored at 0; a
    /// target equal to the baseline (±∞, NaN) is no reading.
    #[test]
    fn attainment_is_a_fraction_kept_within_0_and_100() {
        close(attainment_points(5.0 / 9.0), 500.0 / 9.0);
        assert_eq!(attainment_points(1.0), Some(100.0));
        assert_eq!(attainment_points(1.4), Some(100.0));
        assert_eq!(attainment_points(-0.3), Some(0.0));
        assert_eq!(attainment_points(f64::INFINITY), None);
        assert_eq!(attainment_points(f64::NAN), None);
    }

    /// Plans win over the outcome question; the question is the fallback;
    /// without either the axis is absent.
    #[test]
    fn the_outcome_comes_from_plans_first_then_the_question() {
        let plans = Evidence { attainments: vec![100.0, 40.0], outcome_answers: vec![1, 1], ..Default::default() };
        let a = axes(&plans);
        close(a.outcome, 70.0);
        assert_eq!((a.outcome_source, a.outcome_evidence), (Some(OutcomeSource::SuccessPlan), 2));
        // Answers 4 and 5: (75 + 100) ÷ 2 = 87.5.
        let question = Evidence { outcome_answers: vec![4, 5], ..Default::default() };
        let a = axes(&question);
        close(a.outcome, 87.5);
        assert_eq!((a.outcome_source, a.outcome_evidence), (Some(OutcomeSource::OutcomeQuestion), 2));
        let none = axes(&Evidence { ces_answers: vec![7], ..Default::default() });
        assert_eq!((none.outcome, none.outcome_source, none.outcome_evidence), (None, None, 0));
    }

    /// CES 7 and 4 (100, 50) and items of severity 2 and 5 (75, 0): four
    /// pieces, each once: (100 + 50 + 75 + 0) ÷ 4 = 56.25 — not the mean of
    /// the two means (75 and 37.5 → 56.25 only by chance of equal counts).
    #[test]
    fn the_experience_is_the_mean_over_every_piece_of_evidence() {
        let e = Evidence { ces_answers: vec![7, 4], cx_severities: vec![2, 5], ..Default::default() };
        let a = axes(&e);
        close(a.experience, 56.25);
        assert_eq!(a.experience_evidence, 4);
        // Unequal counts: CES 7 alone and three severe items: 100 ÷ 4 = 25.
        let e = Evidence { ces_answers: vec![7], cx_severities: vec![5, 5, 5], ..Default::default() };
        close(axes(&e).experience, 25.0);
        let none = axes(&Evidence { attainments: vec![10.0], ..Default::default() });
        assert_eq!((none.experience, none.experience_evidence), (None, 0));
    }

    /// Fifteen cells, dimension by dimension; an item needs both to count.
    #[test]
    fn coverage_has_every_cell_and_counts_items_with_both() {
        use CxDimension::*;
        use JourneyPhase::*;
        let cells = coverage([
            (Some(Feel), Some(Support)),
            (Some(Feel), Some(Support)),
            (Some(Sense), Some(Buying)),
            (Some(Act), None),
            (None, Some(Using)),
        ]);
        assert_eq!(cells.len(), 15);
        assert_eq!((cells[0].dimension, cells[0].phase), (Sense, Buying));
        assert_eq!((cells[14].dimension, cells[14].phase), (Relate, Support));
        let count = |d, p| cells.iter().find(|c| c.dimension == d && c.phase == p).map(|c| c.items);
        assert_eq!((count(Feel, Support), count(Sense, Buying), count(Act, Using)), (Some(2), Some(1), Some(0)));
        assert_eq!(uncovered(&cells), 13);
        assert_eq!(uncovered(&coverage([])), 15);
    }

    /// The means across accounts count each account once, among those that
    /// have the axis; accounts are listed by name.
    #[test]
    fn the_means_count_each_account_with_the_axis_once() {
        let id = |n: u128| Uuid::from_u128(n);
        let s = success_axes(
            [
                (
                    id(1),
                    "Beta".into(),
                    Evidence { attainments: vec![80.0], ces_answers: vec![4], ..Default::default() },
                ),
                (
                    id(2),
                    "Alpha".into(),
                    Evidence { outcome_answers: vec![3, 3, 3], cx_severities: vec![1], ..Default::default() },
                ),
                (id(3), "Gamma".into(), Evidence::default()),
            ],
            [],
        );
        let names: Vec<_> = s.accounts.iter().map(|a| a.display_name.as_str()).collect();
        assert_eq!(names, ["Alpha", "Beta", "Gamma"]);
        // (80 + 50) ÷ 2 and (50 + 100) ÷ 2; Gamma has neither.
        close(s.mean_outcome, 65.0);
        close(s.mean_experience, 75.0);
        assert_eq!(s.uncovered_cells, 15);
        let empty = success_axes([], []);
        assert_eq!((empty.mean_outcome, empty.mean_experience, empty.accounts.len()), (None, None, 0));
    }
}
