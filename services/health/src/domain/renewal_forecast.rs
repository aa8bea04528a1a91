//! The renewal forecast: for the renewals due in a period, the ARR due and
//! the ARR expected to renew, Σ ARR × (1 − churn probability), per group
//! (an owner, or everyone) and currency (ARR is never summed across
//! currencies). Pure; no I/O.

use std::collections::BTreeMap;

use chrono::NaiveDate;

/// The account attribute a forecast is also grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentBy {
    Industry,
    Region,
    PlanTier,
    RevenueBand,
    LifecycleStage,
    TouchModel,
}

impl SegmentBy {
    pub const NAMES: [&'static str; 6] =
        ["industry", "region", "plan_tier", "revenue_band", "lifecycle_stage", "touch_model"];

    pub fn parse(s: &str) -> Option<SegmentBy> {
        use SegmentBy::*;
        let all = [Industry, Region, PlanTier, RevenueBand, LifecycleStage, TouchModel];
        Self::NAMES.iter().position(|n| *n == s).map(|i| all[i])
    }

    /// The account's value of the attribute.
    pub fn value_of(self, a: &super::account::AccountRow) -> &str {
        match self {
            SegmentBy::Industry => &a.industry,
            SegmentBy::Region => &a.region,
            SegmentBy::PlanTier => &a.plan_tier,
            SegmentBy::RevenueBand => &a.revenue_band,
            SegmentBy::LifecycleStage => a.lifecycle_stage.as_str(),
            SegmentBy::TouchModel => a.touch_model.as_str(),
        }
    }
}

/// The renewal days a forecast covers, as the request names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// From the first to the last day, both included.
    Days(NaiveDate, NaiveDate),
    /// A fiscal year of the tenant (`quarter` 0), or one quarter of it.
    Fiscal { year: i32, quarter: u32 },
}

impl Window {
    /// The first and last day (inclusive) in a tenant whose fiscal year
    /// starts in `fy_start_month`; `None` for a year beyond the calendar.
    pub fn days(self, fy_start_month: u32) -> Option<(NaiveDate, NaiveDate)> {
        use banso_kit::calendar::Period;
        let period = match self {
            Window::Days(start, end) => return Some((start, end)),
            Window::Fiscal { year, quarter: 0 } => Period::fiscal_year(year, fy_start_month),
            Window::Fiscal { year, quarter } => Period::quarter_of_fiscal_year(year, quarter, fy_start_month),
        };
        let p = period.ok()?;
        Some((p.start, p.end.pred_opt()?))
    }
}

/// What a forecast group is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupKind {
    Total,
    Owner,
    Segment,
}

/// One group's forecast in one currency: what the group is, its owner or
/// segment value (empty for the total), the currency, the figures.
pub type Grouped = (GroupKind, String, String, Forecast);

/// An account due to renew, as the forecast reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Due<'a> {
    pub group: &'a str,
    pub currency: &'a str,
    /// ARR in minor units.
    pub arr: i64,
    pub renewal_date: NaiveDate,
    /// Its churn probability within the model's horizon; `None` when no
    /// model scored it.
    pub churn_probability: Option<f64>,
}

/// One group's renewals in one currency.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Forecast {
    pub renewals: u64,
    /// ARR due, minor units.
    pub arr_due: i64,
    /// Σ ARR × (1 − p) over the scored renewals, minor units (rounded).
    pub expected_renewed_arr: i64,
    /// Σ ARR × p: the ARR at risk, minor units (rounded).
    pub arr_at_risk: i64,
    /// Renewals no model scored, and their ARR: in `arr_due`, in neither
    /// expectation.
    pub unscored: u64,
    pub unscored_arr: i64,
}

/// The forecast of the accounts due in `[start, end]`, by (group, currency).
pub fn forecast<'a>(
    due: impl IntoIterator<Item = Due<'a>>,
    start: NaiveDate,
    end: NaiveDate,
) -> BTreeMap<(&'a str, &'a str), Forecast> {
    let mut out: BTreeMap<(&str, &str), (Forecast, f64, f64)> = BTreeMap::new();
    for d in due.into_iter().filter(|d| d.renewal_date >= start && d.renewal_date <= end) {
        let (f, renewed, risk) = out.entry((d.group, d.currency)).or_default();
        f.renewals += 1;
        f.arr_due += d.arr;
        match d.churn_probability {
            Some(p) => {
                *renewed += d.arr as f64 * (1.0 - p);
                *risk += d.arr as f64 * p;
            }
            None => {
                f.unscored += 1;
                f.unscored_arr += d.arr;
            }
        }
    }
    out.into_iter()
        .map(|(k, (mut f, renewed, risk))| {
            f.expected_renewed_arr = renewed.round() as i64;
            f.arr_at_risk = risk.round() as i64;
            (k, f)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_renewed_arr_is_arr_times_the_chance_of_staying() {
        let d = |m: u32, day: u32| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let due = [
            Due { group: "ana", currency: "JPY", arr: 1_000, renewal_date: d(4, 1), churn_probability: Some(0.1) },
            Due { group: "ana", currency: "JPY", arr: 3_000, renewal_date: d(6, 30), churn_probability: Some(0.5) },
            Due { group: "ana", currency: "USD", arr: 500, renewal_date: d(5, 1), churn_probability: Some(0.2) },
            Due { group: "ana", currency: "JPY", arr: 700, renewal_date: d(5, 2), churn_probability: None },
            Due { group: "bo", currency: "JPY", arr: 2_000, renewal_date: d(5, 5), churn_probability: Some(0.25) },
            // Outside the quarter.
            Due { group: "bo", currency: "JPY", arr: 9_000, renewal_date: d(7, 1), churn_probability: Some(0.9) },
            Due { group: "bo", currency: "JPY", arr: 9_000, renewal_date: d(3, 31), churn_probability: Some(0.9) },
        ];
        let f = forecast(due, d(4, 1), d(6, 30));
        assert_eq!(
            f[&("ana", "JPY")],
            Forecast {
                renewals: 3,
                arr_due: 4_700,
                // 1,000 × 0.9 + 3,000 × 0.5; the unscored 700 in neither.
                expected_renewed_arr: 2_400,
                arr_at_risk: 1_600,
                unscored: 1,
                unscored_arr: 700,
            }
        );
        assert_eq!((f[&("ana", "USD")].expected_renewed_arr, f[&("ana", "USD")].arr_at_risk), (400, 100));
        assert_eq!((f[&("bo", "JPY")].renewals, f[&("bo", "JPY")].expected_renewed_arr), (1, 1_500));
        assert_eq!(f.len(), 3);
    }
}
