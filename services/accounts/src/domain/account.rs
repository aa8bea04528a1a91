use std::collections::BTreeMap;

use banso_kit::Violations;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where an account stands in its life as a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifecycleStage {
    Onboarding,
    Adoption,
    Expansion,
    Renewal,
    Churned,
}

impl LifecycleStage {
    pub const ALL: [LifecycleStage; 5] = [
        LifecycleStage::Onboarding,
        LifecycleStage::Adoption,
        LifecycleStage::Expansion,
        LifecycleStage::Renewal,
        LifecycleStage::Churned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::Onboarding => "onboarding",
            LifecycleStage::Adoption => "adoption",
            LifecycleStage::Expansion => "expansion",
            LifecycleStage::Renewal => "renewal",
            LifecycleStage::Churned => "churned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// How the CS team runs alongside the account (DOMAIN.md: touch models).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TouchModel {
    High,
    Low,
    Tech,
}

impl TouchModel {
    pub const ALL: [TouchModel; 3] = [TouchModel::High, TouchModel::Low, TouchModel::Tech];

    pub fn as_str(self) -> &'static str {
        match self {
            TouchModel::High => "high",
            TouchModel::Low => "low",
            TouchModel::Tech => "tech",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Money in integer minor units of an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub currency_code: String,
    pub amount_minor: i64,
}

/// A typed custom attribute value, stored as tagged JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum AttrValue {
    String(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
}

/// Everything about an account that a client sets.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountFields {
    pub name: String,
    pub external_id: Option<String>,
    pub industry: String,
    pub employee_count: Option<i64>,
    pub revenue_band: String,
    pub region: String,
    pub plan_tier: String,
    pub lifecycle_stage: LifecycleStage,
    pub touch_model: TouchModel,
    pub owner_id: String,
    pub arr: Option<Money>,
    pub contract_start_date: Option<NaiveDate>,
    pub renewal_date: Option<NaiveDate>,
    pub tags: Vec<String>,
    pub custom_attributes: BTreeMap<String, AttrValue>,
}

/// A stored account.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: Uuid,
    pub fields: AccountFields,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub version: i64,
}

/// The fields an UpdateAccount mask may name.
pub const ACCOUNT_UPDATABLE: &[&str] = &[
    "name",
    "external_id",
    "industry",
    "employee_count",
    "revenue_band",
    "region",
    "plan_tier",
    "lifecycle_stage",
    "touch_model",
    "owner_id",
    "arr",
    "contract_start_date",
    "renewal_date",
    "tags",
    "custom_attributes",
];

impl AccountFields {
    /// Copies the fields named in `paths` from `new`.
    pub fn apply(&mut self, new: AccountFields, paths: &[&str]) {
        for p in paths {
            match *p {
                "name" => self.name = new.name.clone(),
                "external_id" => self.external_id = new.external_id.clone(),
                "industry" => self.industry = new.industry.clone(),
                "employee_count" => self.employee_count = new.employee_count,
                "revenue_band" => self.revenue_band = new.revenue_band.clone(),
                "region" => self.region = new.region.clone(),
                "plan_tier" => self.plan_tier = new.plan_tier.clone(),
                "lifecycle_stage" => self.lifecycle_stage = new.lifecycle_stage,
                "touch_model" => self.touch_model = new.touch_model,
                "owner_id" => self.owner_id = new.owner_id.clone(),
                "arr" => self.arr = new.arr.clone(),
                "contract_start_date" => self.contract_start_date = new.contract_start_date,
                "renewal_date" => self.renewal_date = new.renewal_date,
                "tags" => self.tags = new.tags.clone(),
                "custom_attributes" => self.custom_attributes = new.custom_attributes.clone(),
                other => unreachable!("path {other} is checked against ACCOUNT_UPDATABLE"),
            }
        }
    }

    /// The fields (by proto name) that differ from `other`.
    pub fn changed_fields(&self, other: &AccountFields) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut diff = |name, changed: bool| {
            if changed {
                out.push(name)
            }
        };
        diff("name", self.name != other.name);
        diff("external_id", self.external_id != other.external_id);
        diff("industry", self.industry != other.industry);
        diff("employee_count", self.employee_count != other.employee_count);
        diff("revenue_band", self.revenue_band != other.revenue_band);
        diff("region", self.region != other.region);
        diff("plan_tier", self.plan_tier != other.plan_tier);
        diff("lifecycle_stage", self.lifecycle_stage != other.lifecycle_stage);
        diff("touch_model", self.touch_model != other.touch_model);
        diff("owner_id", self.owner_id != other.owner_id);
        diff("arr", self.arr != other.arr);
        diff("contract_start_date", self.contract_start_date != other.contract_start_date);
        diff("renewal_date", self.renewal_date != other.renewal_date);
        diff("tags", self.tags != other.tags);
        diff("custom_attributes", self.custom_attributes != other.custom_attributes);
        out
    }

    /// Rules across fields, checked on the account as it will be stored.
    pub fn check_consistency(&self, prefix: &str, v: &mut Violations) {
        if let (Some(start), Some(renewal)) = (self.contract_start_date, self.renewal_date)
            && renewal < start
        {
            v.add(format!("{prefix}.renewal_date"), format!("{renewal} is before contract_start_date {start}"));
        }
    }
}

/// Filters of ListAccounts; every set field must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountFilter {
    pub lifecycle_stages: Vec<LifecycleStage>,
    pub touch_models: Vec<TouchModel>,
    pub owner_id: Option<String>,
    pub industry: Option<String>,
    pub region: Option<String>,
    pub plan_tier: Option<String>,
    pub revenue_band: Option<String>,
    pub tag: Option<String>,
    pub renewal_date_from: Option<NaiveDate>,
    pub renewal_date_to: Option<NaiveDate>,
    /// Currency both ARR bounds are in (they must agree).
    pub arr_currency: Option<String>,
    pub arr_min: Option<i64>,
    pub arr_max: Option<i64>,
    pub name_prefix: Option<String>,
}

/// What ListAccounts sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountSort {
    /// Creation order: UUIDv7 ids sort by creation time.
    CreateTime,
    UpdateTime,
    Name,
    RenewalDate,
    Arr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountOrder {
    pub sort: AccountSort,
    pub desc: bool,
}

impl AccountOrder {
    /// Parses `"<field>[ asc|desc]"`; an empty string is creation order.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut words = s.split_whitespace();
        let field = words.next().unwrap_or("create_time");
        let desc = match words.next() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(format!("direction {other:?} must be asc or desc")),
        };
        if words.next().is_some() {
            return Err(format!("{s:?} must be a single field, optionally followed by asc or desc"));
        }
        let sort = match field {
            "create_time" => AccountSort::CreateTime,
            "update_time" => AccountSort::UpdateTime,
            "name" => AccountSort::Name,
            "renewal_date" => AccountSort::RenewalDate,
            "arr" => AccountSort::Arr,
            other => {
                return Err(format!(
                    "cannot order by {other:?}; use name, create_time, update_time, renewal_date or arr"
                ));
            }
        };
        Ok(AccountOrder { sort, desc })
    }
}

/// Where a page of accounts ended: the sort key and id of its last row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SortKey {
    /// Creation order needs only the id.
    Id,
    Time(DateTime<Utc>),
    Text(String),
    /// A nullable date; accounts without one come last.
    Date(Option<NaiveDate>),
    /// A nullable amount; accounts without one come last.
    Amount(Option<i64>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountCursor {
    pub key: SortKey,
    pub id: Uuid,
}

impl AccountCursor {
    /// The cursor that resumes after `a` in `order`.
    pub fn after(a: &Account, order: AccountOrder) -> Self {
        let key = match order.sort {
            AccountSort::CreateTime => SortKey::Id,
            AccountSort::UpdateTime => SortKey::Time(a.update_time),
            AccountSort::Name => SortKey::Text(a.fields.name.clone()),
            AccountSort::RenewalDate => SortKey::Date(a.fields.renewal_date),
            AccountSort::Arr => SortKey::Amount(a.fields.arr.as_ref().map(|m| m.amount_minor)),
        };
        AccountCursor { key, id: a.id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_parses() {
        assert_eq!(AccountOrder::parse("").unwrap(), AccountOrder { sort: AccountSort::CreateTime, desc: false });
        assert_eq!(AccountOrder::parse("arr desc").unwrap(), AccountOrder { sort: AccountSort::Arr, desc: true });
        assert!(AccountOrder::parse("id").is_err());
        assert!(AccountOrder::parse("name sideways").is_err());
        assert!(AccountOrder::parse("name asc extra").is_err());
    }

    #[test]
    fn stages_round_trip() {
        for s in LifecycleStage::ALL {
            assert_eq!(LifecycleStage::parse(s.as_str()), Some(s));
        }
        for t in TouchModel::ALL {
            assert_eq!(TouchModel::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn attribute_values_store_as_tagged_json() {
        let v = AttrValue::Date(NaiveDate::from_ymd_opt(2025, 4, 1).unwrap());
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"type":"date","value":"2025-04-01"}"#);
        assert_eq!(serde_json::from_str::<AttrValue>(&json).unwrap(), v);
    }
}
