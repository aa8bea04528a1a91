//! What health knows of an account (its projection of Accounts' events), and
//! what CEL conditions — segment expressions, portfolio filters — see of it.

use std::collections::BTreeMap;

use banso_cel::{AccountFacts, Fact, Facts};
use chrono::{DateTime, NaiveDate, Utc};

use uuid::Uuid;

/// A custom attribute value, as kept in the projection (one type for every
/// service's projection: banso-cel's).
pub use banso_cel::Attr;

/// The shared vocabulary: Accounts keeps both; one definition, one wire
/// conversion for every service.
pub use banso_proto::vocab::{LifecycleStage, TouchModel};

/// One account of the projection.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    pub account_id: Uuid,
    pub external_id: Option<String>,
    pub name: String,
    pub lifecycle_stage: LifecycleStage,
    pub touch_model: TouchModel,
    pub arr_currency: Option<String>,
    pub arr_amount_minor: Option<i64>,
    pub renewal_date: Option<NaiveDate>,
    pub contract_start_date: Option<NaiveDate>,
    pub industry: String,
    pub employee_count: Option<i64>,
    pub revenue_band: String,
    pub region: String,
    pub plan_tier: String,
    pub owner_id: String,
    pub tags: Vec<String>,
    pub attributes: BTreeMap<String, Attr>,
}

/// A row for tests to start from: an onboarding, high-touch account with
/// nothing else set.
#[cfg(test)]
impl Default for AccountRow {
    fn default() -> Self {
        AccountRow {
            account_id: Uuid::nil(),
            external_id: None,
            name: String::new(),
            lifecycle_stage: LifecycleStage::Onboarding,
            touch_model: TouchModel::High,
            arr_currency: None,
            arr_amount_minor: None,
            renewal_date: None,
            contract_start_date: None,
            industry: String::new(),
            employee_count: None,
            revenue_band: String::new(),
            region: String::new(),
            plan_tier: String::new(),
            owner_id: String::new(),
            tags: Vec::new(),
            attributes: BTreeMap::new(),
        }
    }
}

/// Attributes a distribution may be grouped by (besides `attributes.<key>`).
pub const GROUP_BY: &[&str] =
    &["lifecycle_stage", "touch_model", "owner_id", "industry", "region", "plan_tier", "revenue_band", "tag"];

impl AccountRow {
    /// What a CEL condition sees (docs/cel.md); `today` is the tenant's date.
    pub fn facts(&self, today: NaiveDate, now: DateTime<Utc>) -> Facts<'_> {
        let attributes = self.attributes.iter().map(|(k, v)| (k.clone(), Fact::from(v))).collect();
        AccountFacts {
            name: &self.name,
            external_id: self.external_id.as_deref(),
            industry: &self.industry,
            employee_count: self.employee_count,
            revenue_band: &self.revenue_band,
            region: &self.region,
            plan_tier: &self.plan_tier,
            lifecycle_stage: self.lifecycle_stage.as_str(),
            touch_model: self.touch_model.as_str(),
            owner_id: &self.owner_id,
            arr: self.arr_amount_minor.unwrap_or(0),
            arr_currency: self.arr_currency.as_deref().unwrap_or(""),
            contract_start_date: self.contract_start_date,
            renewal_date: self.renewal_date,
            tags: &self.tags,
            attributes,
            today,
        }
        .into_facts(now)
    }

    /// The values of a group_by attribute for this account: one for most,
    /// one per tag for "tag", none when a custom attribute is unset (the
    /// caller files those under ""). `None` for an unknown attribute.
    pub fn group_values(&self, group_by: &str) -> Option<Vec<String>> {
        let one = |s: &str| Some(vec![s.to_owned()]);
        match group_by {
            "lifecycle_stage" => one(self.lifecycle_stage.as_str()),
            "touch_model" => one(self.touch_model.as_str()),
            "owner_id" => one(&self.owner_id),
            "industry" => one(&self.industry),
            "region" => one(&self.region),
            "plan_tier" => one(&self.plan_tier),
            "revenue_band" => one(&self.revenue_band),
            "tag" => Some(self.tags.clone()),
            other => {
                let key = other.strip_prefix("attributes.")?;
                Some(self.attributes.get(key).map(|v| vec![v.label()]).unwrap_or_default())
            }
        }
    }
}

/// Whether `group_by` names a groupable attribute.
pub fn valid_group_by(group_by: &str) -> bool {
    GROUP_BY.contains(&group_by) || group_by.strip_prefix("attributes.").is_some_and(|k| !k.is_empty() && k.len() <= 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> AccountRow {
        AccountRow {
            name: "Acme".into(),
            lifecycle_stage: LifecycleStage::Adoption,
            touch_model: TouchModel::High,
            region: "EMEA".into(),
            tags: vec!["enterprise".into(), "beta".into()],
            attributes: BTreeMap::from([("seats".into(), Attr::Int(40))]),
            ..Default::default()
        }
    }

    #[test]
    fn conditions_see_the_projection() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let row = row();
        let facts = row.facts(today, Utc::now());
        let check = |src: &str| {
            banso_cel::Expression::compile(src, &banso_cel::account_schema()).unwrap().evaluate_bool(&facts).unwrap()
        };
        assert!(check(r#"account.region == "EMEA" && "enterprise" in account.tags"#));
        assert!(check("account.attributes.seats > 30"));
        assert!(!check(r#"account.lifecycle_stage == "onboarding""#));
    }

    #[test]
    fn group_values() {
        let r = row();
        assert_eq!(r.group_values("region"), Some(vec!["EMEA".to_string()]));
        assert_eq!(r.group_values("tag"), Some(vec!["enterprise".to_string(), "beta".to_string()]));
        assert_eq!(r.group_values("attributes.seats"), Some(vec!["40".to_string()]));
        assert_eq!(r.group_values("attributes.missing"), Some(vec![]));
        assert_eq!(r.group_values("color"), None);
        assert!(valid_group_by("attributes.seats") && valid_group_by("tag"));
        assert!(!valid_group_by("attributes.") && !valid_group_by("color"));
    }
}
