//! Retention KPIs from contract movements: churn by logo and by revenue,
//! gross and net revenue retention, expansion, renewal rate; and the periods
//! they are computed over (months, fiscal quarters, fiscal years).
//!
//! Pure: the service loads the movements and the tenant's settings, this
//! computes. The same definitions, with a worked example a CS leader can
//! check by hand, are in docs/metrics.md; keep the two in step.
//!
//! All amounts are integer minor units of one currency (the caller keeps the
//! movements of the currency asked for). Rates are `f64` fractions (0.25 is
//! 25%), `None` when their denominator is 0, never NaN or infinite.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use uuid::Uuid;

/// What happened to an account's contract (proto `ContractEventKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContractKind {
    /// The first contract of an account with no contract history.
    New,
    /// The contract was renewed, at any ARR.
    Renewal,
    /// ARR grew during the term (upsell, cross-sell).
    Expansion,
    /// ARR shrank during the term; the customer stays.
    Contraction,
    /// The customer left; ARR becomes 0.
    Churn,
    /// A churned customer came back.
    Reactivation,
}

/// One change of an account's ARR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContractMovement {
    pub account_id: Uuid,
    pub kind: ContractKind,
    /// Minor units: the account's ARR just before.
    pub arr_before: i64,
    /// Minor units: the ARR from `effective_date` on (0 after a churn).
    pub arr_after: i64,
    pub effective_date: NaiveDate,
}

impl ContractMovement {
    /// The ARR this movement leaves the account with, as the metrics read it.
    /// A churn always leaves 0, whatever was recorded, and a negative amount
    /// (the service rejects one when recording) counts as 0: the identities
    /// of [`RetentionMetrics`] then hold on any input.
    fn arr_left(&self) -> i64 {
        match self.kind {
            ContractKind::Churn => 0,
            _ => self.arr_after.max(0),
        }
    }
}

pub use banso_kit::calendar::{Period, PeriodSpec, today_in};

/// The retention KPIs of a set of accounts over a period. Field names are
/// those of the proto message `banso.accounts.v1.RetentionMetrics`.
///
/// Identities (checked by a debug assertion and the tests):
/// - the ARR bridge: `starting_arr - churned_arr - contraction_arr +
///   expansion_arr + new_arr == ending_arr`;
/// - `gross_revenue_retention <= 1` and `== 1 - revenue_churn_rate`;
/// - `net_revenue_retention == gross_revenue_retention + expansion_arr / starting_arr`,
///   and `net_revenue_retention * starting_arr` is the starting cohort's ARR at the end;
/// - `0 <= logo_churn_rate <= 1`, `0 <= renewal_rate <= 1`, `0 <= arr_renewal_rate <= 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetentionMetrics {
    pub period: Period,
    /// The starting cohort: accounts with ARR > 0 as of `period.start`.
    pub starting_logos: i64,
    /// The cohort's ARR as of `period.start`.
    pub starting_arr: i64,
    /// All accounts with ARR > 0 as of `period.end`, new ones included.
    pub ending_logos: i64,
    /// Their ARR as of `period.end`.
    pub ending_arr: i64,
    /// Cohort accounts with ARR 0 as of `period.end`.
    pub churned_logos: i64,
    /// The starting ARR of the churned logos.
    pub churned_arr: i64,
    /// Σ (start − end) over cohort accounts still active that end lower.
    pub contraction_arr: i64,
    /// Σ (end − start) over cohort accounts that end higher.
    pub expansion_arr: i64,
    /// Accounts outside the cohort with ARR > 0 as of `period.end`: new
    /// business and reactivations.
    pub new_logos: i64,
    /// Their ARR as of `period.end`.
    pub new_arr: i64,
    /// churned_logos ÷ starting_logos.
    pub logo_churn_rate: Option<f64>,
    /// Gross revenue churn: (churned_arr + contraction_arr) ÷ starting_arr.
    pub revenue_churn_rate: Option<f64>,
    /// (churned_arr + contraction_arr − expansion_arr) ÷ starting_arr;
    /// negative when expansion outgrows the losses.
    pub net_revenue_churn_rate: Option<f64>,
    /// GRR: (starting_arr − churned_arr − contraction_arr) ÷ starting_arr.
    pub gross_revenue_retention: Option<f64>,
    /// NRR: (starting_arr − churned_arr − contraction_arr + expansion_arr) ÷ starting_arr.
    pub net_revenue_retention: Option<f64>,
    /// Renewal movements effective in the period.
    pub renewals: i64,
    /// Churn movements effective in the period: decisions not to renew.
    pub renewal_churns: i64,
    /// renewals ÷ (renewals + renewal_churns).
    pub renewal_rate: Option<f64>,
    /// Σ arr_before over the renewal decisions of the period (renewals and
    /// churns): the ARR that was up for renewal.
    pub renewal_arr_due: i64,
    /// Σ min(arr_before, arr_after) over the renewals: the part of the due
    /// ARR that was kept, any uplift left out.
    pub renewal_arr_retained: i64,
    /// Σ arr_after over the renewals: the ARR they were signed at, uplift in.
    pub renewal_arr_booked: i64,
    /// renewal_arr_retained ÷ renewal_arr_due: at most 1. An uplift on one
    /// renewal does not hide a downsell or a churn on another.
    pub arr_renewal_rate: Option<f64>,
    /// renewal_arr_booked ÷ renewal_arr_due: above 1 when uplifts at
    /// renewal outweigh what was lost at renewal.
    pub net_arr_renewal_rate: Option<f64>,
}

/// Computes the retention KPIs of `period` from `movements`, the whole
/// contract history of the accounts in scope (a segment or the tenant), in
/// one currency, in any order.
///
/// The ARR of an account as of day `d` (its state at the start of that day)
/// is the ARR left by its latest movement with `effective_date < d`, 0 if it
/// has none. Movements on the same day are applied in their order in the
/// slice (a stable sort by date): the service passes them in recording order,
/// so of two same-day movements the one recorded last wins. Apart from such
/// ties the order of the slice does not matter.
///
/// Each cohort account (ARR > 0 as of `period.start`) is compared net over the
/// period, ARR as of `period.end` against ARR as of `period.start`: 0 at the
/// end is a churned logo (`churned_arr` += its starting ARR), lower is
/// contraction, higher is expansion. An account that expands then contracts
/// inside the period counts once, by its net change; one that churns and
/// comes back within the period is not churned.
///
/// The renewal rates read the decisions dated in the period instead: every
/// `Renewal` and `Churn` movement with `period.start <= effective_date <
/// period.end`, whether or not the account is active at the end.
pub fn compute(movements: &[ContractMovement], period: Period) -> Result<RetentionMetrics, AmountsTooLarge> {
    let mut by_date: Vec<&ContractMovement> = movements.iter().collect();
    by_date.sort_by_key(|m| m.effective_date);

    // Per account, (ARR as of start, ARR as of end). Walking in date order, a
    // later movement overwrites an earlier one.
    let mut states: BTreeMap<Uuid, (i64, i64)> = BTreeMap::new();
    for m in by_date {
        let (at_start, at_end) = states.entry(m.account_id).or_default();
        if m.effective_date < period.start {
            *at_start = m.arr_left();
        }
        if m.effective_date < period.end {
            *at_end = m.arr_left();
        }
    }

    // Sums over many accounts in 128 bits: a single ARR may be any int64,
    // so their total need not fit one; it must fit to be answered.
    let (mut starting_logos, mut starting_arr, mut ending_logos, mut ending_arr) = (0i64, 0i128, 0i64, 0i128);
    let (mut churned_logos, mut churned_arr, mut contraction_arr, mut expansion_arr) = (0i64, 0i128, 0i128, 0i128);
    let (mut new_logos, mut new_arr) = (0i64, 0i128);
    for &(start, end) in states.values() {
        let (start, end) = (i128::from(start), i128::from(end));
        if start > 0 {
            starting_logos += 1;
            starting_arr += start;
            if end == 0 {
                churned_logos += 1;
                churned_arr += start;
            } else if end < start {
                contraction_arr += start - end;
            } else {
                expansion_arr += end - start;
            }
        } else if end > 0 {
            new_logos += 1;
            new_arr += end;
        }
        if end > 0 {
            ending_logos += 1;
            ending_arr += end;
        }
    }
    debug_assert_eq!(
        starting_arr - churned_arr - contraction_arr + expansion_arr + new_arr,
        ending_arr,
        "the ARR bridge must balance"
    );

    let (mut renewals, mut renewal_churns) = (0i64, 0i64);
    let (mut renewal_arr_due, mut renewal_arr_retained, mut renewal_arr_booked) = (0i128, 0i128, 0i128);
    for m in movements.iter().filter(|m| period.contains(m.effective_date)) {
        let before = i128::from(m.arr_before.max(0));
        let left = i128::from(m.arr_left());
        match m.kind {
            ContractKind::Renewal => {
                renewals += 1;
                renewal_arr_due += before;
                renewal_arr_retained += before.min(left);
                renewal_arr_booked += left;
            }
            ContractKind::Churn => {
                renewal_churns += 1;
                renewal_arr_due += before;
            }
            _ => {}
        }
    }

    // One division over an exact integer numerator: NRR is not GRR plus a
    // second rounded quotient, so the identities hold to the last bits.
    let lost = churned_arr + contraction_arr;
    let amount = |v: i128| i64::try_from(v).map_err(|_| AmountsTooLarge);
    Ok(RetentionMetrics {
        period,
        starting_logos,
        starting_arr: amount(starting_arr)?,
        ending_logos,
        ending_arr: amount(ending_arr)?,
        churned_logos,
        churned_arr: amount(churned_arr)?,
        contraction_arr: amount(contraction_arr)?,
        expansion_arr: amount(expansion_arr)?,
        new_logos,
        new_arr: amount(new_arr)?,
        logo_churn_rate: ratio(churned_logos.into(), starting_logos.into()),
        revenue_churn_rate: ratio(lost, starting_arr),
        net_revenue_churn_rate: ratio(lost - expansion_arr, starting_arr),
        gross_revenue_retention: ratio(starting_arr - lost, starting_arr),
        net_revenue_retention: ratio(starting_arr - lost + expansion_arr, starting_arr),
        renewals,
        renewal_churns,
        renewal_rate: ratio(renewals.into(), i128::from(renewals) + i128::from(renewal_churns)),
        renewal_arr_due: amount(renewal_arr_due)?,
        renewal_arr_retained: amount(renewal_arr_retained)?,
        renewal_arr_booked: amount(renewal_arr_booked)?,
        arr_renewal_rate: ratio(renewal_arr_retained, renewal_arr_due),
        net_arr_renewal_rate: ratio(renewal_arr_booked, renewal_arr_due),
    })
}

/// The totals of a period do not fit the int64 amounts of the API (each
/// ARR does; their sum over many accounts need not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the ARR totals of this period do not fit in a 64-bit amount of minor units")]
pub struct AmountsTooLarge;

/// `numerator ÷ denominator`, `None` for a zero denominator (no NaN, no
/// infinity reaches a client). Exact below 2^53 minor units.
fn ratio(numerator: i128, denominator: i128) -> Option<f64> {
    (denominator != 0).then(|| numerator as f64 / denominator as f64)
}

#[cfg(test)]
mod tests {
    use banso_kit::calendar::{PeriodError, PeriodKind, fiscal_year_of};
    use chrono::{DateTime, Datelike, Utc};

    use super::ContractKind::*;
    use super::*;

    /// The metrics of amounts that fit (every test's but one).
    fn compute(movements: &[ContractMovement], period: Period) -> RetentionMetrics {
        super::compute(movements, period).expect("amounts fit")
    }

    #[test]
    fn totals_beyond_int64_are_an_error_not_an_overflow() {
        let big = |account: u128| mv(account, New, 0, i64::MAX, d(2024, 1, 1));
        // One account at the largest amount is answered.
        let r = compute(&[big(1)], q1_fy2025());
        assert_eq!((r.starting_arr, r.gross_revenue_retention), (i64::MAX, Some(1.0)));
        // Two of them do not fit a total.
        assert_eq!(super::compute(&[big(1), big(2)], q1_fy2025()), Err(AmountsTooLarge));
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn p(start: NaiveDate, end: NaiveDate) -> Period {
        Period { start, end }
    }

    fn mv(account: u128, kind: ContractKind, arr_before: i64, arr_after: i64, date: NaiveDate) -> ContractMovement {
        ContractMovement { account_id: Uuid::from_u128(account), kind, arr_before, arr_after, effective_date: date }
    }

    fn close(actual: Option<f64>, expected: f64) {
        let a = actual.expect("rate is set");
        assert!((a - expected).abs() <= 1e-12, "{a} != {expected}");
    }

    /// Q1 of FY2025 for a company whose fiscal year starts in April.
    fn q1_fy2025() -> Period {
        p(d(2025, 4, 1), d(2025, 7, 1))
    }

    /// The worked example of docs/metrics.md: eight accounts, amounts in yen
    /// (no minor unit), period [2025-04-01, 2025-07-01). Deliberately not in
    /// date order.
    ///
    /// account  story                                       as of 04-01  as of 07-01  counts as
    /// A        churned at renewal, effective 04-01          1,200,000            0   churned 1,200,000
    /// B        seats cut 05-01; renews 07-01 (next period)  2,400,000    1,800,000   contraction 600,000
    /// C        upsell 04-15 to 800k; renewed 05-20 at 900k    600,000      900,000   expansion 300,000
    /// D        renewed 04-10 at the same ARR              3,000,000    3,000,000   expansion 0
    /// E        new business 06-15                                 0    1,000,000   new 1,000,000
    /// F        churned 2024-07-01, reactivated 05-01              0      700,000   new 700,000
    /// G        +500k 04-20, then −700k 06-10 (net −200k)  1,000,000      800,000   contraction 200,000
    /// H        churned at renewal 05-01, back 06-01         800,000      900,000   expansion 100,000
    ///
    /// Starting cohort A B C D G H: 6 logos, 1.2+2.4+0.6+3.0+1.0+0.8 = 9,000,000.
    /// Ending: B C D E F G H: 7 logos, 1.8+0.9+3.0+1.0+0.7+0.8+0.9 = 9,100,000.
    /// churned 1 logo, 1,200,000; contraction 600,000 + 200,000 = 800,000;
    /// expansion 300,000 + 0 + 100,000 = 400,000; new 2 logos, 1,700,000.
    /// Bridge: 9,000,000 − 1,200,000 − 800,000 + 400,000 + 1,700,000 = 9,100,000.
    /// logo churn 1/6; revenue churn 2,000,000/9,000,000 = 2/9;
    /// net revenue churn 1,600,000/9,000,000 = 8/45; GRR 7,000,000/9,000,000 = 7/9;
    /// NRR 7,400,000/9,000,000 = 37/45 (7,400,000 = the cohort's ARR at the end).
    /// Renewal decisions dated in the period: renewals C (05-20), D (04-10);
    /// churns A (04-01), H (05-01). B's renewal on 07-01 and F's churn in 2024
    /// are outside. renewal rate 2/4 = 1/2.
    /// Due: A 1,200,000 + C 800,000 + D 3,000,000 + H 800,000 = 5,800,000.
    /// Retained: min(800k, 900k) + min(3M, 3M) = 3,800,000 → 38/58 = 19/29.
    /// Booked: 900,000 + 3,000,000 = 3,900,000 → 39/58.
    fn worked_example() -> Vec<ContractMovement> {
        let (a, b, c, dd, e, f, g, h) = (0xA, 0xB, 0xC, 0xD, 0xE, 0xF, 0x10, 0x11);
        vec![
            mv(h, Reactivation, 0, 900_000, d(2025, 6, 1)),
            mv(a, New, 0, 1_200_000, d(2023, 4, 1)),
            mv(b, Renewal, 1_800_000, 1_800_000, d(2025, 7, 1)),
            mv(g, Contraction, 1_500_000, 800_000, d(2025, 6, 10)),
            mv(a, Renewal, 1_200_000, 1_200_000, d(2024, 4, 1)),
            mv(a, Churn, 1_200_000, 0, d(2025, 4, 1)),
            mv(b, New, 0, 2_400_000, d(2024, 7, 1)),
            mv(b, Contraction, 2_400_000, 1_800_000, d(2025, 5, 1)),
            mv(c, Renewal, 800_000, 900_000, d(2025, 5, 20)),
            mv(c, New, 0, 600_000, d(2024, 5, 20)),
            mv(c, Expansion, 600_000, 800_000, d(2025, 4, 15)),
            mv(dd, New, 0, 3_000_000, d(2024, 4, 10)),
            mv(dd, Renewal, 3_000_000, 3_000_000, d(2025, 4, 10)),
            mv(e, New, 0, 1_000_000, d(2025, 6, 15)),
            mv(f, Churn, 500_000, 0, d(2024, 7, 1)),
            mv(f, New, 0, 500_000, d(2023, 7, 1)),
            mv(f, Reactivation, 0, 700_000, d(2025, 5, 1)),
            mv(g, New, 0, 1_000_000, d(2024, 9, 1)),
            mv(g, Expansion, 1_000_000, 1_500_000, d(2025, 4, 20)),
            mv(h, New, 0, 800_000, d(2024, 5, 1)),
            mv(h, Churn, 800_000, 0, d(2025, 5, 1)),
        ]
    }

    /// The identities every result must satisfy, whatever the input.
    fn check_identities(r: &RetentionMetrics) {
        assert_eq!(
            r.starting_arr - r.churned_arr - r.contraction_arr + r.expansion_arr + r.new_arr,
            r.ending_arr,
            "ARR bridge of {r:?}"
        );
        assert_eq!(r.starting_logos - r.churned_logos + r.new_logos, r.ending_logos, "logo bridge of {r:?}");
        assert!(r.churned_logos <= r.starting_logos);
        assert!(r.churned_arr + r.contraction_arr <= r.starting_arr);
        match (r.gross_revenue_retention, r.net_revenue_retention) {
            (Some(grr), Some(nrr)) => {
                let s = r.starting_arr as f64;
                assert!((0.0..=1.0).contains(&grr), "GRR {grr}");
                assert!((nrr - (grr + r.expansion_arr as f64 / s)).abs() <= 1e-12);
                close(r.revenue_churn_rate, 1.0 - grr);
                close(r.net_revenue_churn_rate, 1.0 - nrr);
                let cohort_end = r.starting_arr - r.churned_arr - r.contraction_arr + r.expansion_arr;
                assert!((nrr * s - cohort_end as f64).abs() <= 1e-6 * s.max(1.0));
                let churn = r.logo_churn_rate.unwrap();
                assert!((0.0..=1.0).contains(&churn), "logo churn {churn}");
            }
            (None, None) => {
                assert_eq!((r.starting_arr, r.starting_logos), (0, 0));
                assert_eq!((r.churned_arr, r.contraction_arr, r.expansion_arr, r.churned_logos), (0, 0, 0, 0));
                assert_eq!(r.logo_churn_rate, None);
                assert_eq!(r.revenue_churn_rate, None);
                assert_eq!(r.net_revenue_churn_rate, None);
            }
            other => panic!("GRR and NRR share a denominator: {other:?}"),
        }
        for x in [r.renewal_rate, r.arr_renewal_rate].into_iter().flatten() {
            assert!((0.0..=1.0).contains(&x), "{x} in {r:?}");
        }
        assert_eq!(r.renewal_rate.is_none(), r.renewals + r.renewal_churns == 0);
        assert!(r.renewal_arr_retained <= r.renewal_arr_due);
        assert!(r.renewal_arr_retained <= r.renewal_arr_booked);
    }

    #[test]
    fn worked_example_by_hand() {
        let r = compute(&worked_example(), q1_fy2025());
        assert_eq!(r.period, q1_fy2025());
        assert_eq!(r.starting_logos, 6);
        assert_eq!(r.starting_arr, 9_000_000);
        assert_eq!(r.ending_logos, 7);
        assert_eq!(r.ending_arr, 9_100_000);
        assert_eq!(r.churned_logos, 1);
        assert_eq!(r.churned_arr, 1_200_000);
        assert_eq!(r.contraction_arr, 800_000);
        assert_eq!(r.expansion_arr, 400_000);
        assert_eq!(r.new_logos, 2);
        assert_eq!(r.new_arr, 1_700_000);
        close(r.logo_churn_rate, 1.0 / 6.0);
        close(r.revenue_churn_rate, 2.0 / 9.0);
        close(r.net_revenue_churn_rate, 8.0 / 45.0);
        close(r.gross_revenue_retention, 7.0 / 9.0);
        close(r.net_revenue_retention, 37.0 / 45.0);
        assert_eq!(r.renewals, 2);
        assert_eq!(r.renewal_churns, 2);
        close(r.renewal_rate, 0.5);
        assert_eq!(r.renewal_arr_due, 5_800_000);
        assert_eq!(r.renewal_arr_retained, 3_800_000);
        assert_eq!(r.renewal_arr_booked, 3_900_000);
        close(r.arr_renewal_rate, 19.0 / 29.0);
        close(r.net_arr_renewal_rate, 39.0 / 58.0);
        check_identities(&r);
        // NRR × starting ARR is the cohort's ARR at the end: B C D G H (A churned).
        close(r.net_revenue_retention.map(|nrr| nrr * 9_000_000.0), 7_400_000.0);
    }

    #[test]
    fn worked_example_in_the_next_quarter() {
        // Q2 [07-01, 10-01): the cohort is the 7 accounts at 9,100,000; B's
        // renewal on 07-01 at the same ARR is the only movement.
        let r = compute(&worked_example(), p(d(2025, 7, 1), d(2025, 10, 1)));
        assert_eq!((r.starting_logos, r.starting_arr, r.ending_logos, r.ending_arr), (7, 9_100_000, 7, 9_100_000));
        assert_eq!((r.churned_arr, r.contraction_arr, r.expansion_arr, r.new_arr), (0, 0, 0, 0));
        close(r.gross_revenue_retention, 1.0);
        close(r.net_revenue_retention, 1.0);
        assert_eq!((r.renewals, r.renewal_churns), (1, 0));
        close(r.renewal_rate, 1.0);
        close(r.arr_renewal_rate, 1.0);
    }

    #[test]
    fn empty_input_has_no_rates() {
        let r = compute(&[], q1_fy2025());
        assert_eq!((r.starting_logos, r.starting_arr, r.ending_logos, r.ending_arr), (0, 0, 0, 0));
        assert_eq!((r.churned_logos, r.new_logos, r.renewals, r.renewal_churns), (0, 0, 0, 0));
        assert_eq!((r.renewal_arr_due, r.renewal_arr_retained, r.renewal_arr_booked), (0, 0, 0));
        for rate in [
            r.logo_churn_rate,
            r.revenue_churn_rate,
            r.net_revenue_churn_rate,
            r.gross_revenue_retention,
            r.net_revenue_retention,
            r.renewal_rate,
            r.arr_renewal_rate,
            r.net_arr_renewal_rate,
        ] {
            assert_eq!(rate, None);
        }
        check_identities(&r);
    }

    #[test]
    fn period_without_starting_arr_has_no_retention_rates() {
        // The history before 2025-04-01 is empty, so there is no cohort: one
        // account signs up inside the period, another only after it.
        let ms = [mv(1, New, 0, 500_000, d(2025, 5, 1)), mv(2, New, 0, 300_000, d(2025, 7, 1))];
        let r = compute(&ms, q1_fy2025());
        assert_eq!((r.starting_logos, r.starting_arr), (0, 0));
        assert_eq!((r.new_logos, r.new_arr, r.ending_logos, r.ending_arr), (1, 500_000, 1, 500_000));
        assert_eq!((r.churned_logos, r.churned_arr, r.contraction_arr, r.expansion_arr), (0, 0, 0, 0));
        assert_eq!(r.logo_churn_rate, None);
        assert_eq!(r.revenue_churn_rate, None);
        assert_eq!(r.net_revenue_churn_rate, None);
        assert_eq!(r.gross_revenue_retention, None);
        assert_eq!(r.net_revenue_retention, None);
        assert_eq!((r.renewals, r.renewal_churns, r.renewal_rate), (0, 0, None));
        check_identities(&r);
    }

    #[test]
    fn boundaries_are_half_open() {
        // A movement on period.start is inside the period (the starting state
        // is before it); one on period.end belongs to the next period.
        let ms = [
            mv(1, New, 0, 100, d(2024, 1, 1)),
            mv(1, Churn, 100, 0, d(2025, 4, 1)),
            mv(2, New, 0, 100, d(2024, 1, 1)),
            mv(2, Churn, 100, 0, d(2025, 7, 1)),
            mv(3, New, 0, 100, d(2025, 7, 1)),
        ];
        let r = compute(&ms, q1_fy2025());
        assert_eq!((r.starting_logos, r.churned_logos, r.ending_logos, r.new_logos), (2, 1, 1, 0));
        assert_eq!((r.renewal_churns, r.ending_arr), (1, 100));
    }

    #[test]
    fn renewal_uplift_is_capped_per_renewal() {
        // X renews 100,000 → 150,000 (uplift), Y renews 100,000 → 50,000
        // (downsell). Due 200,000. Retained min(100k,150k) + min(100k,50k) =
        // 150,000 → 0.75. Booked 150,000 + 50,000 = 200,000 → 1.0. Capping
        // the aggregate instead would have shown 100% and hidden Y's downsell.
        let ms = [
            mv(1, New, 0, 100_000, d(2024, 5, 1)),
            mv(1, Renewal, 100_000, 150_000, d(2025, 5, 1)),
            mv(2, New, 0, 100_000, d(2024, 6, 1)),
            mv(2, Renewal, 100_000, 50_000, d(2025, 6, 1)),
        ];
        let r = compute(&ms, q1_fy2025());
        assert_eq!((r.renewals, r.renewal_churns), (2, 0));
        assert_eq!((r.renewal_arr_due, r.renewal_arr_retained, r.renewal_arr_booked), (200_000, 150_000, 200_000));
        close(r.renewal_rate, 1.0);
        close(r.arr_renewal_rate, 0.75);
        close(r.net_arr_renewal_rate, 1.0);
        // X alone: booked 150,000 on 100,000 due → the net rate exceeds 1.
        let r = compute(&ms[..2], q1_fy2025());
        close(r.arr_renewal_rate, 1.0);
        close(r.net_arr_renewal_rate, 1.5);
        check_identities(&r);
    }

    #[test]
    fn net_revenue_churn_can_be_negative() {
        // 100 → 250: expansion 150 on 100 starting; net churn −1.5, NRR 2.5.
        let ms = [mv(1, New, 0, 100, d(2024, 1, 1)), mv(1, Expansion, 100, 250, d(2025, 5, 1))];
        let r = compute(&ms, q1_fy2025());
        close(r.net_revenue_churn_rate, -1.5);
        close(r.gross_revenue_retention, 1.0);
        close(r.net_revenue_retention, 2.5);
        check_identities(&r);
    }

    #[test]
    fn invalid_amounts_do_not_break_the_bridge() {
        // A churn recorded with a leftover arr_after and a negative amount:
        // the service rejects both, but the metrics read them as 0.
        let ms = [
            mv(1, New, 0, 100, d(2024, 1, 1)),
            mv(1, Churn, 100, 40, d(2025, 5, 1)),
            mv(2, New, 0, 100, d(2024, 1, 1)),
            mv(2, Contraction, 100, -5, d(2025, 5, 1)),
        ];
        let r = compute(&ms, q1_fy2025());
        assert_eq!((r.churned_logos, r.churned_arr, r.ending_arr), (2, 200, 0));
        check_identities(&r);
    }

    #[test]
    fn order_of_the_slice_does_not_matter() {
        let ms = worked_example();
        let expected = compute(&ms, q1_fy2025());
        let mut rng = Lcg(7);
        for _ in 0..20 {
            let mut shuffled = ms.clone();
            rng.shuffle(&mut shuffled);
            assert_eq!(compute(&shuffled, q1_fy2025()), expected);
        }
        let mut reversed = ms;
        reversed.reverse();
        assert_eq!(compute(&reversed, q1_fy2025()), expected);
    }

    #[test]
    fn same_day_movements_apply_in_slice_order() {
        // Two movements of one account on one day: the later in the slice
        // wins, whatever their kinds.
        let new = mv(1, New, 0, 100, d(2024, 1, 1));
        let up = mv(1, Expansion, 100, 200, d(2025, 5, 1));
        let down = mv(1, Contraction, 200, 150, d(2025, 5, 1));
        let r = compute(&[new, up, down], q1_fy2025());
        assert_eq!((r.ending_arr, r.expansion_arr, r.contraction_arr), (150, 50, 0));
        let r = compute(&[down, new, up], q1_fy2025());
        assert_eq!((r.ending_arr, r.expansion_arr, r.contraction_arr), (200, 100, 0));
        // A churn and a reactivation on one day: active or not by slice order.
        let churn = mv(2, Churn, 100, 0, d(2025, 6, 1));
        let back = mv(2, Reactivation, 0, 100, d(2025, 6, 1));
        let base = mv(2, New, 0, 100, d(2024, 1, 1));
        assert_eq!(compute(&[base, churn, back], q1_fy2025()).churned_logos, 0);
        assert_eq!(compute(&[base, back, churn], q1_fy2025()).churned_logos, 1);
    }

    /// A 64-bit linear congruential generator (Knuth's MMIX constants):
    /// deterministic pseudo-random histories without a crate.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn shuffle<T>(&mut self, xs: &mut [T]) {
            for i in (1..xs.len()).rev() {
                let j = self.below(i as u64 + 1) as usize;
                xs.swap(i, j);
            }
        }
    }

    /// A consistent contract history of `accounts` accounts between 2022 and
    /// 2027: each movement's arr_before is the previous arr_after. With
    /// `ties`, some movements of an account share a day.
    fn random_history(rng: &mut Lcg, accounts: u128, ties: bool) -> Vec<ContractMovement> {
        let mut out = Vec::new();
        for id in 0..accounts {
            let mut date = d(2022, 1, 1) + chrono::Duration::days(rng.below(1_200) as i64);
            let mut arr = 0;
            let mut ever = false;
            for _ in 0..1 + rng.below(7) {
                let (kind, after) = if arr == 0 {
                    let after = 10_000 * (1 + rng.below(100) as i64);
                    (if ever { Reactivation } else { New }, after)
                } else {
                    match rng.below(5) {
                        0 => (Churn, 0),
                        1 => (Renewal, arr + (rng.below(41) as i64 - 20) * arr / 100),
                        2 => (Expansion, arr + 1 + rng.below(500_000) as i64),
                        3 => (Contraction, (arr - 1 - rng.below(arr as u64) as i64).max(1)),
                        _ => (Renewal, arr),
                    }
                };
                out.push(ContractMovement {
                    account_id: Uuid::from_u128(id),
                    kind,
                    arr_before: arr,
                    arr_after: after,
                    effective_date: date,
                });
                arr = after;
                ever = true;
                let step = if ties && rng.below(4) == 0 { 0 } else { 1 + rng.below(300) };
                date += chrono::Duration::days(step as i64);
            }
        }
        rng.shuffle(&mut out);
        out
    }

    /// The definitions read literally, one account and one date at a time:
    /// an independent oracle for `compute`.
    fn oracle(ms: &[ContractMovement], period: Period) -> RetentionMetrics {
        let arr_as_of = |id: Uuid, day: NaiveDate| {
            let mut latest: Option<&ContractMovement> = None;
            for m in ms.iter().filter(|m| m.account_id == id && m.effective_date < day) {
                // `>=`: of movements on the same day, the later in the slice wins.
                if latest.is_none_or(|l| m.effective_date >= l.effective_date) {
                    latest = Some(m);
                }
            }
            latest.map_or(0, |m| m.arr_after)
        };
        let mut ids: Vec<Uuid> = ms.iter().map(|m| m.account_id).collect();
        ids.sort();
        ids.dedup();
        let mut r = compute(&[], period);
        for id in ids {
            let (s, e) = (arr_as_of(id, period.start), arr_as_of(id, period.end));
            if s > 0 {
                r.starting_logos += 1;
                r.starting_arr += s;
                if e == 0 {
                    r.churned_logos += 1;
                    r.churned_arr += s;
                } else if e < s {
                    r.contraction_arr += s - e;
                } else {
                    r.expansion_arr += e - s;
                }
            }
            if e > 0 {
                r.ending_logos += 1;
                r.ending_arr += e;
                if s == 0 {
                    r.new_logos += 1;
                    r.new_arr += e;
                }
            }
        }
        for m in ms.iter().filter(|m| period.start <= m.effective_date && m.effective_date < period.end) {
            if m.kind == Renewal {
                r.renewals += 1;
                r.renewal_arr_due += m.arr_before;
                r.renewal_arr_retained += m.arr_before.min(m.arr_after);
                r.renewal_arr_booked += m.arr_after;
            } else if m.kind == Churn {
                r.renewal_churns += 1;
                r.renewal_arr_due += m.arr_before;
            }
        }
        r
    }

    fn same_counts(a: &RetentionMetrics, b: &RetentionMetrics) {
        let ints = |r: &RetentionMetrics| {
            [
                r.starting_logos,
                r.starting_arr,
                r.ending_logos,
                r.ending_arr,
                r.churned_logos,
                r.churned_arr,
                r.contraction_arr,
                r.expansion_arr,
                r.new_logos,
                r.new_arr,
                r.renewals,
                r.renewal_churns,
                r.renewal_arr_due,
                r.renewal_arr_retained,
                r.renewal_arr_booked,
            ]
        };
        assert_eq!(ints(a), ints(b), "over {:?}", a.period);
    }

    /// Every month, fiscal quarter (April start) and fiscal year of the
    /// generated history, and a few explicit ranges.
    fn periods_to_check() -> Vec<Period> {
        let mut out = Vec::new();
        for year in 2022..=2027 {
            for month in 1..=12 {
                out.push(Period::month(year, month).unwrap());
            }
            for quarter in 1..=4 {
                out.push(Period::quarter_of_fiscal_year(year, quarter, 4).unwrap());
            }
            out.push(Period::fiscal_year(year, 4).unwrap());
        }
        out.push(Period::new(d(2023, 2, 14), d(2023, 2, 15)).unwrap());
        out.push(Period::new(d(2021, 1, 1), d(2028, 1, 1)).unwrap());
        out
    }

    #[test]
    fn generated_history_satisfies_the_identities_and_the_oracle() {
        let mut rng = Lcg(2025);
        let ms = random_history(&mut rng, 300, true);
        assert!(ms.len() > 800, "{} movements", ms.len());
        let mut some_churn = false;
        let mut some_expansion = false;
        for period in periods_to_check() {
            let r = compute(&ms, period);
            check_identities(&r);
            same_counts(&r, &oracle(&ms, period));
            some_churn |= r.churned_logos > 0;
            some_expansion |= r.expansion_arr > 0 && r.contraction_arr > 0 && r.new_logos > 0;
        }
        assert!(some_churn && some_expansion, "the generator exercises every branch");
    }

    #[test]
    fn generated_history_does_not_depend_on_order() {
        // Without same-day movements of one account, any order gives the same
        // result.
        let mut rng = Lcg(42);
        let ms = random_history(&mut rng, 200, false);
        let mut shuffled = ms.clone();
        rng.shuffle(&mut shuffled);
        for period in periods_to_check() {
            assert_eq!(compute(&ms, period), compute(&shuffled, period));
        }
    }

    #[test]
    fn months() {
        assert_eq!(Period::month(2025, 1).unwrap(), p(d(2025, 1, 1), d(2025, 2, 1)));
        assert_eq!(Period::month(2025, 12).unwrap(), p(d(2025, 12, 1), d(2026, 1, 1)));
        assert_eq!(Period::month(2024, 2).unwrap().days(), 29);
        assert_eq!(Period::month(2025, 2).unwrap().days(), 28);
        assert_eq!(Period::month(2000, 2).unwrap().days(), 29);
        assert_eq!(Period::month(1900, 2).unwrap().days(), 28);
        assert_eq!(Period::month(2025, 0), Err(PeriodError::Month(0)));
        assert_eq!(Period::month(2025, 13), Err(PeriodError::Month(13)));
        assert_eq!(Period::month(2025, 13).unwrap_err().to_string(), "month must be 1 to 12, got 13");
        assert_eq!(Period::month(300_000, 1), Err(PeriodError::Year(300_000)));
    }

    #[test]
    fn fiscal_quarters_with_an_april_start() {
        assert_eq!(Period::quarter_of_fiscal_year(2025, 1, 4).unwrap(), p(d(2025, 4, 1), d(2025, 7, 1)));
        assert_eq!(Period::quarter_of_fiscal_year(2025, 2, 4).unwrap(), p(d(2025, 7, 1), d(2025, 10, 1)));
        assert_eq!(Period::quarter_of_fiscal_year(2025, 3, 4).unwrap(), p(d(2025, 10, 1), d(2026, 1, 1)));
        assert_eq!(Period::quarter_of_fiscal_year(2025, 4, 4).unwrap(), p(d(2026, 1, 1), d(2026, 4, 1)));
        // With a January start the fiscal quarters are calendar quarters.
        assert_eq!(Period::quarter_of_fiscal_year(2025, 4, 1).unwrap(), p(d(2025, 10, 1), d(2026, 1, 1)));
        // A leap day in Q4 of FY2023.
        assert_eq!(Period::quarter_of_fiscal_year(2023, 4, 4).unwrap().days(), 31 + 29 + 31);
        assert_eq!(Period::quarter_of_fiscal_year(2025, 0, 4), Err(PeriodError::Quarter(0)));
        assert_eq!(Period::quarter_of_fiscal_year(2025, 5, 4), Err(PeriodError::Quarter(5)));
        assert_eq!(Period::quarter_of_fiscal_year(2025, 1, 13), Err(PeriodError::FiscalYearStartMonth(13)));
    }

    #[test]
    fn fiscal_years() {
        assert_eq!(Period::fiscal_year(2025, 4).unwrap(), p(d(2025, 4, 1), d(2026, 4, 1)));
        assert_eq!(Period::fiscal_year(2025, 1).unwrap(), p(d(2025, 1, 1), d(2026, 1, 1)));
        assert_eq!(Period::fiscal_year(2023, 4).unwrap().days(), 366, "includes 2024-02-29");
        assert_eq!(Period::fiscal_year(2024, 4).unwrap().days(), 365);
        assert_eq!(Period::fiscal_year(2025, 0), Err(PeriodError::FiscalYearStartMonth(0)));
        assert_eq!(
            Period::fiscal_year(2025, 0).unwrap_err().to_string(),
            "fiscal_year_start_month must be 1 to 12, got 0"
        );
        assert_eq!(Period::fiscal_year(2025, 0).unwrap_err().field(), "fiscal_year_start_month");
    }

    #[test]
    fn december_start_crosses_the_calendar_year() {
        assert_eq!(Period::fiscal_year(2025, 12).unwrap(), p(d(2025, 12, 1), d(2026, 12, 1)));
        assert_eq!(Period::quarter_of_fiscal_year(2025, 1, 12).unwrap(), p(d(2025, 12, 1), d(2026, 3, 1)));
        assert_eq!(Period::quarter_of_fiscal_year(2025, 2, 12).unwrap(), p(d(2026, 3, 1), d(2026, 6, 1)));
        assert_eq!(Period::quarter_of_fiscal_year(2025, 4, 12).unwrap(), p(d(2026, 9, 1), d(2026, 12, 1)));
        assert_eq!(Period::quarter_of_fiscal_year(2023, 1, 12).unwrap().days(), 31 + 31 + 29);
        assert_eq!(
            Period::containing(d(2025, 11, 30), PeriodKind::FiscalYear, 12).unwrap(),
            p(d(2024, 12, 1), d(2025, 12, 1))
        );
        assert_eq!(
            Period::containing(d(2025, 11, 30), PeriodKind::FiscalQuarter, 12).unwrap(),
            p(d(2025, 9, 1), d(2025, 12, 1))
        );
        assert_eq!(
            Period::containing(d(2025, 12, 1), PeriodKind::FiscalQuarter, 12).unwrap(),
            p(d(2025, 12, 1), d(2026, 3, 1))
        );
        assert_eq!(
            Period::containing(d(2025, 12, 31), PeriodKind::Month, 12).unwrap(),
            Period::month(2025, 12).unwrap()
        );
    }

    #[test]
    fn containing_an_april_fiscal_year() {
        let last_day = d(2026, 3, 31);
        assert_eq!(fiscal_year_of(last_day, 4), Ok(2025));
        assert_eq!(Period::containing(last_day, PeriodKind::FiscalYear, 4), Period::fiscal_year(2025, 4));
        assert_eq!(
            Period::containing(last_day, PeriodKind::FiscalQuarter, 4),
            Period::quarter_of_fiscal_year(2025, 4, 4)
        );
        assert_eq!(Period::containing(last_day, PeriodKind::Month, 4), Period::month(2026, 3));
        let first_day = d(2026, 4, 1);
        assert_eq!(fiscal_year_of(first_day, 4), Ok(2026));
        assert_eq!(
            Period::containing(first_day, PeriodKind::FiscalQuarter, 4),
            Period::quarter_of_fiscal_year(2026, 1, 4)
        );
        assert_eq!(Period::containing(d(2024, 2, 29), PeriodKind::Month, 4), Period::month(2024, 2));
        assert_eq!(Period::containing(last_day, PeriodKind::Month, 0), Err(PeriodError::FiscalYearStartMonth(0)));
    }

    #[test]
    fn periods_tile_and_agree_with_tenant_settings() {
        for m in 1..=12 {
            let settings = crate::domain::TenantSettings { fiscal_year_start_month: m, ..Default::default() };
            for fy in 2019..=2030 {
                let year = Period::fiscal_year(fy, m).unwrap();
                let quarters: Vec<Period> =
                    (1..=4).map(|q| Period::quarter_of_fiscal_year(fy, q, m).unwrap()).collect();
                assert_eq!(quarters[0].start, year.start);
                assert_eq!(quarters[3].end, year.end);
                assert!(quarters.windows(2).all(|w| w[0].end == w[1].start));
                assert_eq!(Period::fiscal_year(fy + 1, m).unwrap().start, year.end);
            }
            let mut day = d(2023, 1, 1);
            while day < d(2025, 1, 1) {
                for kind in [PeriodKind::Month, PeriodKind::FiscalQuarter, PeriodKind::FiscalYear] {
                    assert!(Period::containing(day, kind, m).unwrap().contains(day), "{day} {kind:?} {m}");
                }
                assert_eq!(
                    Period::containing(day, PeriodKind::FiscalYear, m).unwrap().start,
                    settings.fiscal_year_start(day).unwrap()
                );
                assert_eq!(fiscal_year_of(day, m).unwrap(), settings.fiscal_year_start(day).unwrap().year());
                day += chrono::Duration::days(1);
            }
        }
    }

    #[test]
    fn explicit_ranges() {
        let start = d(2025, 4, 1);
        assert_eq!(Period::new(start, d(2025, 4, 2)).unwrap().days(), 1);
        assert_eq!(Period::new(start, start).unwrap_err().to_string(), "end 2025-04-01 must be after start 2025-04-01");
        assert_eq!(
            Period::new(start, d(2025, 3, 31)),
            Err(PeriodError::EndNotAfterStart { start, end: d(2025, 3, 31) })
        );
        assert!(Period::new(start, d(2035, 4, 1)).is_ok(), "exactly 10 years");
        let too_long = Period::new(start, d(2035, 4, 2)).unwrap_err();
        assert_eq!(too_long.to_string(), "range 2025-04-01 to 2035-04-02 is longer than 10 years");
        assert_eq!(too_long.field(), "end");
        // From a leap day, 10 years later is 2034-02-28.
        assert!(Period::new(d(2024, 2, 29), d(2034, 2, 28)).is_ok());
        assert!(Period::new(d(2024, 2, 29), d(2034, 3, 1)).is_err());
        assert!(Period::new(NaiveDate::MAX - chrono::Duration::days(1), NaiveDate::MAX).is_ok());
    }

    #[test]
    fn today_in_the_tenant_time_zone() {
        let tokyo = chrono_tz::Asia::Tokyo;
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // 16:00 UTC on 31 March is 01:00 on 1 April in Tokyo (UTC+9): a new
        // fiscal year for an April start, still the old one in UTC.
        let now = at("2026-03-31T16:00:00Z");
        assert_eq!(today_in(tokyo, now), d(2026, 4, 1));
        assert_eq!(today_in(chrono_tz::UTC, now), d(2026, 3, 31));
        assert_eq!(
            Period::containing(today_in(tokyo, now), PeriodKind::FiscalYear, 4).unwrap(),
            p(d(2026, 4, 1), d(2027, 4, 1))
        );
        assert_eq!(
            Period::containing(today_in(chrono_tz::UTC, now), PeriodKind::FiscalYear, 4).unwrap(),
            p(d(2025, 4, 1), d(2026, 4, 1))
        );
        // One second before midnight in Tokyo is still 31 March there.
        assert_eq!(today_in(tokyo, at("2026-03-31T14:59:59Z")), d(2026, 3, 31));
        // West of UTC the day changes later.
        assert_eq!(today_in(chrono_tz::America::Los_Angeles, at("2026-01-01T05:00:00Z")), d(2025, 12, 31));
    }
}
