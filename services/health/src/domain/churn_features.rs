//! The account attributes a churn model reads beside the measures: ARR band,
//! plan tier, lifecycle stage and touch model one-hot (1 for the account's
//! value, 0 otherwise; standardised with the rest), and days to renewal as a
//! number. And how every feature is worded in a reason. Pure; no I/O.

use chrono::NaiveDate;

use super::account::{AccountRow, LifecycleStage};

/// ARR bands, by their upper bound in major units of the contract's
/// currency (the projection keeps one currency per account; bands do not
/// convert between them).
pub const ARR_BANDS: [(&str, f64); 4] =
    [("under_10k", 10_000.0), ("10k_50k", 50_000.0), ("50k_250k", 250_000.0), ("250k_plus", f64::INFINITY)];

/// The feature of days to renewal: the renewal date minus the snapshot's day.
pub const DAYS_TO_RENEWAL: &str = "days_to_renewal";

/// The ARR band of an amount in minor units (cents); `None` without ARR.
pub fn arr_band(minor: Option<i64>) -> Option<&'static str> {
    let major = minor? as f64 / 100.0;
    ARR_BANDS.iter().find(|(_, upper)| major < *upper).map(|(name, _)| *name)
}

/// The one-hot features of an account: `(attribute, value)`, each present
/// only when known. A churned lifecycle stage is left out: it is the
/// outcome itself, not a sign of it.
fn categories(a: &AccountRow) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(b) = arr_band(a.arr_amount_minor) {
        out.push(("arr_band", b.to_owned()));
    }
    if !a.plan_tier.is_empty() {
        out.push(("plan_tier", a.plan_tier.clone()));
    }
    if a.lifecycle_stage != LifecycleStage::Churned {
        out.push(("lifecycle_stage", a.lifecycle_stage.as_str().to_owned()));
    }
    out.push(("touch_model", a.touch_model.as_str().to_owned()));
    out
}

/// The attribute features of the training accounts: one per
/// `attribute:value` seen on some but not all of them (a value every
/// account has tells nothing apart), sorted; then days to renewal when some
/// account has a renewal date.
pub fn attribute_features<'a>(accounts: impl IntoIterator<Item = &'a AccountRow>) -> Vec<String> {
    let mut seen: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut n = 0;
    let mut renewal = false;
    for a in accounts {
        n += 1;
        renewal |= a.renewal_date.is_some();
        for (attr, value) in categories(a) {
            *seen.entry(format!("{attr}:{value}")).or_default() += 1;
        }
    }
    let mut out: Vec<String> = seen.into_iter().filter(|(_, c)| *c < n).map(|(f, _)| f).collect();
    if renewal {
        out.push(DAYS_TO_RENEWAL.to_owned());
    }
    out
}

/// The values of `features` (from [`attribute_features`]) for an account on
/// `day`; all missing for an account the projection no longer has.
pub fn attribute_values(features: &[String], account: Option<&AccountRow>, day: NaiveDate) -> Vec<Option<f64>> {
    let Some(a) = account else { return vec![None; features.len()] };
    let cats: Vec<String> = categories(a).into_iter().map(|(attr, v)| format!("{attr}:{v}")).collect();
    features
        .iter()
        .map(|f| {
            if f == DAYS_TO_RENEWAL {
                a.renewal_date.map(|r| (r - day).num_days() as f64)
            } else {
                Some(if cats.contains(f) { 1.0 } else { 0.0 })
            }
        })
        .collect()
}

/// How a model's feature is read on an account's day.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A usage measure, from the account's rollups.
    Usage(super::measure::MeasureDef),
    /// A measure with no past (pushed, external): missing in every training
    /// snapshot (a replay cannot know it), so missing when scored too.
    Missing,
    /// An account attribute ([`attribute_features`]).
    Attribute,
}

/// How each of a model's `features` is read.
pub fn inputs(features: &[String]) -> Vec<Input> {
    use super::measure::{MeasureDef, parse_measure};
    features
        .iter()
        .map(|f| match parse_measure(f) {
            Ok(MeasureDef::External { .. }) => Input::Missing,
            Ok(d) => Input::Usage(d),
            Err(_) => Input::Attribute,
        })
        .collect()
}

/// A model's features for `account` on `day`, read as `inputs` say: usage
/// measures by `usage` (the live scorer computes them from the account's
/// rollups, as a training replays them), attributes from the account.
pub fn live_values(
    features: &[String],
    inputs: &[Input],
    account: &AccountRow,
    day: NaiveDate,
    usage: impl Fn(&super::measure::MeasureDef) -> Option<f64>,
) -> Vec<Option<f64>> {
    let mut row = attribute_values(features, Some(account), day);
    for (v, input) in row.iter_mut().zip(inputs) {
        match input {
            Input::Usage(d) => *v = usage(d),
            Input::Missing => *v = None,
            Input::Attribute => {}
        }
    }
    row
}

/// A feature in words, for a reason: a measure as the catalog defines it
/// (`events_7d:login`: "login events in the last 7 days"), an attribute by
/// its name and value ("plan tier is starter").
pub fn describe(feature: &str) -> String {
    use super::measure::{MeasureDef, parse_measure};
    fn measure(m: &MeasureDef) -> String {
        match m {
            MeasureDef::ActiveUsers { days } => format!("active users in the last {days} days"),
            MeasureDef::Events { days, event_name } => format!("{event_name} events in the last {days} days"),
            MeasureDef::UsageMinutes { days } => format!("minutes of use in the last {days} days"),
            MeasureDef::FeatureBreadth { days } => format!("share of features used in the last {days} days"),
            MeasureDef::Change { of } => format!("change in {}", measure(of)),
            MeasureDef::External { name } => name.replace('_', " "),
        }
    }
    if feature == DAYS_TO_RENEWAL {
        return "days to renewal".to_owned();
    }
    for attr in ["arr_band", "plan_tier", "lifecycle_stage", "touch_model"] {
        if let Some(value) = feature.strip_prefix(attr).and_then(|r| r.strip_prefix(':')) {
            let value = if attr == "arr_band" { value.replace('_', " ") } else { value.to_owned() };
            return format!("{} is {value}", attr.replace('_', " ").replace("arr", "ARR"));
        }
    }
    parse_measure(feature).map_or_else(|_| feature.to_owned(), |m| measure(&m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::TouchModel;

    fn account(arr: Option<i64>, plan: &str, stage: LifecycleStage, renewal: Option<NaiveDate>) -> AccountRow {
        AccountRow {
            arr_amount_minor: arr,
            plan_tier: plan.into(),
            lifecycle_stage: stage,
            touch_model: TouchModel::High,
            renewal_date: renewal,
            ..Default::default()
        }
    }

    #[test]
    fn arr_bands_cut_at_10k_50k_and_250k() {
        let b: Vec<_> = [None, Some(999_999), Some(1_000_000), Some(4_999_999), Some(5_000_000), Some(25_000_000)]
            .into_iter()
            .map(arr_band)
            .collect();
        assert_eq!(b, [None, Some("under_10k"), Some("10k_50k"), Some("10k_50k"), Some("50k_250k"), Some("250k_plus")]);
    }

    #[test]
    fn attributes_are_one_hot_and_renewal_is_days() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let a =
            account(Some(2_000_000), "starter", LifecycleStage::Adoption, day.checked_add_days(chrono::Days::new(30)));
        let b = account(Some(2_000_000), "enterprise", LifecycleStage::Churned, None);
        let f = attribute_features([&a, &b]);
        // Shared values (the band, the touch model) tell nothing apart; a churned stage is the outcome.
        assert_eq!(f, ["lifecycle_stage:adoption", "plan_tier:enterprise", "plan_tier:starter", "days_to_renewal"]);
        assert_eq!(attribute_values(&f, Some(&a), day), [Some(1.0), Some(0.0), Some(1.0), Some(30.0)]);
        assert_eq!(attribute_values(&f, Some(&b), day), [Some(0.0), Some(1.0), Some(0.0), None]);
        assert_eq!(attribute_values(&f, None, day), [None; 4]);
    }

    #[test]
    fn a_model_reads_usage_from_rollups_attributes_from_the_account_and_no_external_measure() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let features: Vec<String> =
            ["events_7d:login", "external:nps", "plan_tier:starter", "days_to_renewal"].map(String::from).into();
        let inputs = inputs(&features);
        assert!(matches!(inputs[0], Input::Usage(_)));
        assert_eq!(inputs[1..], [Input::Missing, Input::Attribute, Input::Attribute]);
        let a = account(None, "starter", LifecycleStage::Adoption, day.checked_add_days(chrono::Days::new(45)));
        let row = live_values(&features, &inputs, &a, day, |_| Some(12.0));
        // An external measure had no past in training: missing, whatever it is now.
        assert_eq!(row, [Some(12.0), None, Some(1.0), Some(45.0)]);
    }

    #[test]
    fn features_are_worded_from_the_catalog_and_attribute_names() {
        assert_eq!(describe("events_7d:login"), "login events in the last 7 days");
        assert_eq!(describe("change:active_users_30d"), "change in active users in the last 30 days");
        assert_eq!(describe("external:email_response_rate_90d"), "email response rate 90d");
        assert_eq!(describe("plan_tier:starter"), "plan tier is starter");
        assert_eq!(describe("arr_band:10k_50k"), "ARR band is 10k 50k");
        assert_eq!(describe("days_to_renewal"), "days to renewal");
    }
}
