use std::collections::BTreeMap;

use banso_events::db::{Identified, Versioned};
use banso_kit::{fieldmask::FieldPath as _, shown};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The shared vocabulary (one definition and one wire conversion for every
/// service): where an account stands, how the CS team runs alongside it.
pub use banso_proto::vocab::{LifecycleStage, TouchModel};

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
    /// The dominant pattern of `touch_mix`.
    pub touch_model: TouchModel,
    /// The split of effort over the patterns: canonical (high, low, tech
    /// order, no zero shares), adding up to 100.
    pub touch_mix: Vec<TouchShare>,
    /// The mix was set by hand: the touch-mix rules leave it alone until it
    /// is handed back (an update naming touch_mix with an empty mix). Set by
    /// a touch_mix sent on create or import, and by touch_model or touch_mix
    /// set by an update or upsert; touch_model alone on create (or in an
    /// import row) is a starting mix the rules may replace.
    pub touch_mix_manual: bool,
    pub owner_id: String,
    pub arr: Option<Money>,
    pub contract_start_date: Option<NaiveDate>,
    pub renewal_date: Option<NaiveDate>,
    pub tags: Vec<String>,
    pub custom_attributes: BTreeMap<String, AttrValue>,
}

/// One pattern's share of an account's touch mix, in percent (1 to 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TouchShare {
    pub touch_model: TouchModel,
    pub percent: u8,
}

/// A mix of 100% of `t`.
pub fn single_mix(t: TouchModel) -> Vec<TouchShare> {
    vec![TouchShare { touch_model: t, percent: 100 }]
}

/// The dominant pattern of a mix: the largest share; ties go to the more
/// personal pattern (high > low > tech). `None` for an empty mix.
pub fn dominant(mix: &[TouchShare]) -> Option<TouchModel> {
    // TouchModel orders high < low < tech: the smallest wins a tie.
    mix.iter().max_by(|a, b| a.percent.cmp(&b.percent).then(b.touch_model.cmp(&a.touch_model))).map(|s| s.touch_model)
}

/// The mix in canonical order (high, low, tech).
pub fn canonical(mut mix: Vec<TouchShare>) -> Vec<TouchShare> {
    mix.sort_by_key(|s| s.touch_model);
    mix
}

/// What breaks the rules of a mix, if anything: the index of the share (or
/// `None` for the mix as a whole) and why. Shares 1 to 100, each pattern at
/// most once, the sum exactly 100.
pub fn mix_problems(mix: &[(Option<TouchModel>, i32)]) -> Vec<(Option<usize>, &'static str, String)> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for (i, (t, percent)) in mix.iter().enumerate() {
        if !(1..=100).contains(percent) {
            out.push((Some(i), "percent", format!("must be between 1 and 100, got {percent}")));
        }
        if let Some(t) = t {
            if seen.contains(t) {
                out.push((Some(i), "touch_model", format!("{} appears more than once", t.as_str())));
            }
            seen.push(*t);
        }
    }
    let sum: i64 = mix.iter().map(|(_, p)| i64::from(*p)).sum();
    if out.is_empty() && sum != 100 {
        out.push((None, "", format!("shares must add up to 100, got {sum}")));
    }
    out
}

/// Where a forbidden pattern's share goes: the nearest allowed pattern,
/// the more personal one on a tie (tech → low → high, low → high → tech,
/// high → low → tech).
fn fallbacks(t: TouchModel) -> [TouchModel; 2] {
    match t {
        TouchModel::High => [TouchModel::Low, TouchModel::Tech],
        TouchModel::Low => [TouchModel::High, TouchModel::Tech],
        TouchModel::Tech => [TouchModel::Low, TouchModel::High],
    }
}

/// A rule's mix for a member of segments forbidding `forbidden`: each
/// forbidden pattern's share moves to its first allowed fallback (a
/// regulated segment forbidding tech: tech 40 becomes low 40). With every
/// pattern forbidden the mix is kept.
pub fn without_forbidden(mix: &[TouchShare], forbidden: &[TouchModel]) -> Vec<TouchShare> {
    let mut out: Vec<TouchShare> = Vec::new();
    for s in mix {
        let target = if forbidden.contains(&s.touch_model) {
            fallbacks(s.touch_model).into_iter().find(|t| !forbidden.contains(t)).unwrap_or(s.touch_model)
        } else {
            s.touch_model
        };
        match out.iter_mut().find(|o| o.touch_model == target) {
            Some(o) => o.percent = o.percent.saturating_add(s.percent),
            None => out.push(TouchShare { touch_model: target, percent: s.percent }),
        }
    }
    canonical(out)
}

/// Who set a touch mix: a user by hand (create, update, upsert, import)
/// or a touch-mix rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixSetBy {
    Manual,
    Rule,
}

impl MixSetBy {
    pub fn as_str(self) -> &'static str {
        match self {
            MixSetBy::Manual => "manual",
            MixSetBy::Rule => "rule",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [MixSetBy::Manual, MixSetBy::Rule].into_iter().find(|m| m.as_str() == s)
    }
}

/// One change of an account's touch mix: when, to what, by whom (a user
/// id for MANUAL, the rule's name for RULE).
#[derive(Debug, Clone, PartialEq)]
pub struct MixChange {
    pub id: Uuid,
    pub account_id: Uuid,
    pub change_time: DateTime<Utc>,
    pub touch_mix: Vec<TouchShare>,
    pub set_by: MixSetBy,
    pub setter: String,
}

impl MixChange {
    /// `a`'s mix as set by hand by `user`, at its last update.
    pub fn manual(a: &Account, user: &str) -> Self {
        MixChange {
            id: Uuid::now_v7(),
            account_id: a.id,
            change_time: a.update_time,
            touch_mix: a.fields.touch_mix.clone(),
            set_by: MixSetBy::Manual,
            setter: user.to_owned(),
        }
    }

    /// `a`'s mix as set by the touch-mix rule `rule`, at its last update.
    pub fn rule(a: &Account, rule: &str) -> Self {
        MixChange { set_by: MixSetBy::Rule, setter: rule.to_owned(), ..MixChange::manual(a, "") }
    }
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

impl Versioned for Account {
    fn version(&self) -> i64 {
        self.version
    }

    fn advance(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.update_time = now;
    }
}

impl Identified for Account {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

banso_kit::field_paths! {
    /// What UpdateAccount (and UpsertAccount) may change.
    pub enum AccountField {
        Name = "name",
        ExternalId = "external_id",
        Industry = "industry",
        EmployeeCount = "employee_count",
        RevenueBand = "revenue_band",
        Region = "region",
        PlanTier = "plan_tier",
        LifecycleStage = "lifecycle_stage",
        TouchModel = "touch_model",
        TouchMix = "touch_mix",
        OwnerId = "owner_id",
        Arr = "arr",
        ContractStartDate = "contract_start_date",
        RenewalDate = "renewal_date",
        Tags = "tags",
        CustomAttributes = "custom_attributes",
    }
}

impl AccountFields {
    /// Copies the fields named in `mask` from `new`.
    pub fn apply(&mut self, new: &AccountFields, mask: &[AccountField]) {
        for field in mask {
            match field {
                AccountField::Name => self.name = new.name.clone(),
                AccountField::ExternalId => self.external_id = new.external_id.clone(),
                AccountField::Industry => self.industry = new.industry.clone(),
                AccountField::EmployeeCount => self.employee_count = new.employee_count,
                AccountField::RevenueBand => self.revenue_band = new.revenue_band.clone(),
                AccountField::Region => self.region = new.region.clone(),
                AccountField::PlanTier => self.plan_tier = new.plan_tier.clone(),
                AccountField::LifecycleStage => self.lifecycle_stage = new.lifecycle_stage,
                // The two describe one thing: setting one alone sets the
                // other (the parse made `new`'s agree).
                AccountField::TouchModel => {
                    self.touch_mix_manual = true;
                    self.touch_model = new.touch_model;
                    if !mask.contains(&AccountField::TouchMix) {
                        self.touch_mix = single_mix(new.touch_model);
                    }
                }
                AccountField::TouchMix => {
                    self.touch_mix_manual = true;
                    self.touch_mix = new.touch_mix.clone();
                    if !mask.contains(&AccountField::TouchModel)
                        && let Some(t) = dominant(&new.touch_mix)
                    {
                        self.touch_model = t;
                    }
                }
                AccountField::OwnerId => self.owner_id = new.owner_id.clone(),
                AccountField::Arr => self.arr = new.arr.clone(),
                AccountField::ContractStartDate => self.contract_start_date = new.contract_start_date,
                AccountField::RenewalDate => self.renewal_date = new.renewal_date,
                AccountField::Tags => self.tags = new.tags.clone(),
                AccountField::CustomAttributes => self.custom_attributes = new.custom_attributes.clone(),
            }
        }
    }

    /// Whether `field` differs between `self` and `other`.
    fn differs(&self, other: &AccountFields, field: AccountField) -> bool {
        match field {
            AccountField::Name => self.name != other.name,
            AccountField::ExternalId => self.external_id != other.external_id,
            AccountField::Industry => self.industry != other.industry,
            AccountField::EmployeeCount => self.employee_count != other.employee_count,
            AccountField::RevenueBand => self.revenue_band != other.revenue_band,
            AccountField::Region => self.region != other.region,
            AccountField::PlanTier => self.plan_tier != other.plan_tier,
            AccountField::LifecycleStage => self.lifecycle_stage != other.lifecycle_stage,
            AccountField::TouchModel => self.touch_model != other.touch_model,
            AccountField::TouchMix => self.touch_mix != other.touch_mix,
            AccountField::OwnerId => self.owner_id != other.owner_id,
            AccountField::Arr => self.arr != other.arr,
            AccountField::ContractStartDate => self.contract_start_date != other.contract_start_date,
            AccountField::RenewalDate => self.renewal_date != other.renewal_date,
            AccountField::Tags => self.tags != other.tags,
            AccountField::CustomAttributes => self.custom_attributes != other.custom_attributes,
        }
    }

    /// The fields (by proto name) that differ from `other`.
    pub fn changed_fields(&self, other: &AccountFields) -> Vec<&'static str> {
        AccountField::ALL.iter().filter(|f| self.differs(other, **f)).map(|f| f.name()).collect()
    }

    /// What breaks a rule across fields, if anything: the field to blame and
    /// why. Checked on the account as it will be stored.
    pub fn inconsistency(&self) -> Option<(AccountField, String)> {
        match (self.contract_start_date, self.renewal_date) {
            (Some(start), Some(renewal)) if renewal < start => {
                Some((AccountField::RenewalDate, format!("{renewal} is before contract_start_date {start}")))
            }
            _ => None,
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
            Some(other) => return Err(format!("direction {} must be asc or desc", shown(other))),
        };
        if words.next().is_some() {
            return Err(format!("{} must be a single field, optionally followed by asc or desc", shown(s)));
        }
        let sort = match field {
            "create_time" => AccountSort::CreateTime,
            "update_time" => AccountSort::UpdateTime,
            "name" => AccountSort::Name,
            "renewal_date" => AccountSort::RenewalDate,
            "arr" => AccountSort::Arr,
            other => {
                return Err(format!(
                    "cannot order by {}; use name, create_time, update_time, renewal_date or arr",
                    shown(other)
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

    fn mix(shares: &[(TouchModel, u8)]) -> Vec<TouchShare> {
        shares.iter().map(|(t, p)| TouchShare { touch_model: *t, percent: *p }).collect()
    }

    #[test]
    fn the_dominant_pattern_has_the_largest_share_ties_go_high_then_low() {
        use TouchModel::*;
        assert_eq!(dominant(&mix(&[(Tech, 60), (High, 40)])), Some(Tech));
        assert_eq!(dominant(&mix(&[(Tech, 50), (Low, 50)])), Some(Low));
        assert_eq!(dominant(&mix(&[(Low, 50), (High, 50)])), Some(High));
        assert_eq!(dominant(&mix(&[(Tech, 34), (Low, 33), (High, 33)])), Some(Tech));
        assert_eq!(dominant(&[]), None);
    }

    #[test]
    fn mix_rules() {
        use TouchModel::*;
        assert!(mix_problems(&[(Some(High), 60), (Some(Tech), 40)]).is_empty());
        let p = mix_problems(&[(Some(High), 60), (Some(High), 0)]);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].0, Some(1));
        let p = mix_problems(&[(Some(High), 60), (Some(Low), 30)]);
        assert_eq!(p, vec![(None, "", "shares must add up to 100, got 90".to_owned())]);
    }

    #[test]
    fn forbidden_shares_move_to_the_nearest_allowed_pattern() {
        use TouchModel::*;
        // A regulated segment forbidding tech: tech 40 becomes low 40.
        assert_eq!(without_forbidden(&mix(&[(High, 60), (Tech, 40)]), &[Tech]), mix(&[(High, 60), (Low, 40)]));
        assert_eq!(without_forbidden(&mix(&[(Low, 60), (Tech, 40)]), &[Tech]), mix(&[(Low, 100)]));
        assert_eq!(without_forbidden(&mix(&[(High, 20), (Low, 80)]), &[High]), mix(&[(Low, 100)]));
        assert_eq!(without_forbidden(&mix(&[(High, 20), (Low, 80)]), &[Low]), mix(&[(High, 100)]));
        assert_eq!(without_forbidden(&mix(&[(High, 20), (Low, 80)]), &[High, Low]), mix(&[(Tech, 100)]));
        assert_eq!(without_forbidden(&mix(&[(Tech, 100)]), &[Tech, Low]), mix(&[(High, 100)]));
        assert_eq!(without_forbidden(&mix(&[(Tech, 100)]), &[High, Low, Tech]), mix(&[(Tech, 100)]));
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
