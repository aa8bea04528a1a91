//! Portfolio views: which accounts a filter keeps, and the distribution of
//! accounts and ARR over bands, overall and per attribute value.

use std::collections::{BTreeMap, HashMap};

use banso_cel::Expression;
use chrono::{DateTime, NaiveDate, Utc};

use super::{account::AccountRow, score::Band};

/// The CEL parts of a portfolio filter (segment membership and a free
/// condition); column filters go to the store.
#[derive(Default)]
pub struct Conditions {
    pub segment: Option<Expression>,
    pub condition: Option<Expression>,
}

impl Conditions {
    pub fn is_empty(&self) -> bool {
        self.segment.is_none() && self.condition.is_none()
    }

    /// Whether `row` passes; an evaluation error (a null compared, say)
    /// means it does not, as for segment membership.
    pub fn keep(&self, row: &AccountRow, today: NaiveDate, now: DateTime<Utc>) -> bool {
        if self.is_empty() {
            return true;
        }
        let facts = row.facts(today, now);
        [&self.segment, &self.condition].into_iter().flatten().all(|e| e.evaluate_bool(&facts).unwrap_or(false))
    }
}

/// Accounts and ARR (per currency, minor units) of one band.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BandTotal {
    pub accounts: i64,
    /// Summed wide: accounts may each hold an ARR near int64's maximum.
    pub arr: BTreeMap<String, i128>,
}

/// Totals over red, yellow, green.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub bands: [BandTotal; 3],
    pub accounts: i64,
    pub score_sum: f64,
}

impl Totals {
    fn add(&mut self, row: &AccountRow, score: f64, band: Band) {
        let t = &mut self.bands[band.index()];
        t.accounts += 1;
        if let (Some(c), Some(a)) = (&row.arr_currency, row.arr_amount_minor) {
            *t.arr.entry(c.clone()).or_default() += i128::from(a);
        }
        self.accounts += 1;
        self.score_sum += score;
    }

    /// The mean score (0 without accounts), to 0.1.
    pub fn mean(&self) -> f64 {
        if self.accounts == 0 { 0.0 } else { super::score::round1(self.score_sum / self.accounts as f64) }
    }
}

/// A distribution: overall, per group value, and the unscored count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Distribution {
    pub overall: Totals,
    /// Per value, most accounts first, then by value.
    pub groups: Vec<(String, Totals)>,
    pub unscored: i64,
}

/// Sums scored rows into bands, grouped by `group_by` (an attribute that
/// [`super::account::valid_group_by`] accepts) if given. An account counts
/// once overall and once under each of its values (each tag); accounts
/// without a value count under "".
pub fn distribution(rows: &[(&AccountRow, Option<(f64, Band)>)], group_by: Option<&str>) -> Distribution {
    let mut d = Distribution::default();
    let mut groups: HashMap<String, Totals> = HashMap::new();
    for (row, scored) in rows {
        let Some((score, band)) = *scored else {
            d.unscored += 1;
            continue;
        };
        d.overall.add(row, score, band);
        if let Some(g) = group_by {
            let mut values = row.group_values(g).unwrap_or_default();
            if values.is_empty() {
                values.push(String::new());
            }
            values.sort();
            values.dedup();
            for v in values {
                groups.entry(v).or_default().add(row, score, band);
            }
        }
    }
    d.groups = groups.into_iter().collect();
    d.groups.sort_by(|a, b| b.1.accounts.cmp(&a.1.accounts).then_with(|| a.0.cmp(&b.0)));
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(region: &str, tags: &[&str], arr: Option<(&str, i64)>) -> AccountRow {
        AccountRow {
            region: region.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            arr_currency: arr.map(|a| a.0.to_string()),
            arr_amount_minor: arr.map(|a| a.1),
            lifecycle_stage: crate::domain::account::LifecycleStage::Adoption,
            touch_model: crate::domain::account::TouchModel::High,
            ..Default::default()
        }
    }

    #[test]
    fn sums_accounts_and_arr_per_band_and_group() {
        let a = row("EMEA", &["ent", "beta"], Some(("EUR", 1_000_000)));
        let b = row("EMEA", &["ent"], Some(("USD", 500_000)));
        let c = row("", &[], Some(("EUR", 200_000)));
        let u = row("NA", &[], None);
        let rows = vec![
            (&a, Some((30.0, Band::Red))),
            (&b, Some((75.0, Band::Green))),
            (&c, Some((41.0, Band::Yellow))),
            (&u, None),
        ];
        let d = distribution(&rows, Some("region"));
        assert_eq!(d.unscored, 1);
        assert_eq!(d.overall.accounts, 3);
        assert_eq!(d.overall.mean(), 48.7); // (30 + 75 + 41) / 3 = 48.67
        assert_eq!(d.overall.bands[0].arr, BTreeMap::from([("EUR".to_string(), 1_000_000i128)]));
        assert_eq!(d.overall.bands[2].arr, BTreeMap::from([("USD".to_string(), 500_000i128)]));
        let names: Vec<&str> = d.groups.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(names, ["EMEA", ""]); // most accounts first; the unscored NA account is in no group
        assert_eq!(d.groups[0].1.accounts, 2);
        assert_eq!(d.groups[0].1.mean(), 52.5);

        let by_tag = distribution(&rows, Some("tag"));
        let tags: Vec<(&str, i64)> = by_tag.groups.iter().map(|(v, t)| (v.as_str(), t.accounts)).collect();
        assert_eq!(tags, [("ent", 2), ("", 1), ("beta", 1)]);
    }

    #[test]
    fn conditions_keep_what_evaluates_true() {
        let compile = |s: &str| Expression::compile(s, &banso_cel::account_schema()).unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let emea = row("EMEA", &["ent"], None);
        let na = row("NA", &[], None);
        let c = Conditions { segment: Some(compile(r#""ent" in account.tags"#)), condition: None };
        assert!(c.keep(&emea, today, Utc::now()) && !c.keep(&na, today, Utc::now()));
        // An evaluation error (null renewal date compared) keeps nothing.
        let c = Conditions { segment: None, condition: Some(compile("account.renewal_date < now")) };
        assert!(!c.keep(&emea, today, Utc::now()));
        assert!(Conditions::default().keep(&na, today, Utc::now()));
    }
}
