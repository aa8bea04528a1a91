use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelTimestamp};
use cel::common::value::{CowVal, Val};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

/// A typed value an expression can read.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    String(String),
    /// Read as a timestamp at 00:00 UTC of the date: CEL has no date type.
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
    List(Vec<Fact>),
    Map(BTreeMap<String, Fact>),
}

impl Fact {
    fn into_val(self) -> Box<dyn Val> {
        match self {
            Fact::Null => Box::new(CelNull),
            Fact::Bool(b) => Box::new(CelBool::from(b)),
            Fact::Int(i) => Box::new(CelInt::from(i)),
            Fact::Double(d) => Box::new(CelDouble::from(d)),
            Fact::String(s) => Box::new(CelString::from(s)),
            Fact::Date(d) => timestamp(midnight(d)),
            Fact::Timestamp(t) => timestamp(t),
            Fact::List(items) => Box::new(CelList::from(items.into_iter().map(Fact::into_val).collect::<Vec<_>>())),
            Fact::Map(entries) => {
                let map: HashMap<CelMapKey<'static>, Box<dyn Val>> =
                    entries.into_iter().map(|(k, v)| (CelMapKey::from(k), v.into_val())).collect();
                Box::new(CelMap::from(map))
            }
        }
    }
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

fn timestamp(t: DateTime<Utc>) -> Box<dyn Val> {
    Box::new(CelTimestamp::from(t.fixed_offset()))
}

impl From<bool> for Fact {
    fn from(v: bool) -> Self {
        Fact::Bool(v)
    }
}

impl From<i64> for Fact {
    fn from(v: i64) -> Self {
        Fact::Int(v)
    }
}

impl From<f64> for Fact {
    fn from(v: f64) -> Self {
        Fact::Double(v)
    }
}

impl From<&str> for Fact {
    fn from(v: &str) -> Self {
        Fact::String(v.to_string())
    }
}

impl From<String> for Fact {
    fn from(v: String) -> Self {
        Fact::String(v)
    }
}

impl From<NaiveDate> for Fact {
    fn from(v: NaiveDate) -> Self {
        Fact::Date(v)
    }
}

impl From<DateTime<Utc>> for Fact {
    fn from(v: DateTime<Utc>) -> Self {
        Fact::Timestamp(v)
    }
}

/// `None` is `null`.
impl<T: Into<Fact>> From<Option<T>> for Fact {
    fn from(v: Option<T>) -> Self {
        v.map_or(Fact::Null, Into::into)
    }
}

impl<T: Into<Fact>> From<Vec<T>> for Fact {
    fn from(v: Vec<T>) -> Self {
        Fact::List(v.into_iter().map(Into::into).collect())
    }
}

/// The variables one evaluation sees.
///
/// Values are converted to the interpreter's representation on insert, so
/// one `Facts` can be evaluated against many expressions (every segment, on
/// an account change) without converting again; an evaluation borrows them
/// (cel 0.15 would deep-copy a value bound with `add_variable`).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub(crate) variables: HashMap<String, Arc<dyn Val>>,
}

impl Facts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a variable, replacing any earlier value of that name.
    pub fn insert(&mut self, name: impl Into<String>, fact: impl Into<Fact>) -> &mut Self {
        self.variables.insert(name.into(), Arc::from(fact.into().into_val()));
        self
    }

    /// [`Facts::insert`], builder style.
    pub fn with(mut self, name: impl Into<String>, fact: impl Into<Fact>) -> Self {
        self.insert(name, fact);
        self
    }

    pub fn contains(&self, name: &str) -> bool {
        self.variables.contains_key(name)
    }
}

/// Hands the interpreter the variables of a [`Facts`] by reference.
pub(crate) struct Resolver<'a>(pub(crate) &'a Facts);

impl cel::context::VariableResolver for Resolver<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        self.0.variables.get(variable).map(|v| CowVal::Borrowed(v.as_ref()))
    }
}

/// The plain values of one account, as [`account_schema`](crate::account_schema)
/// describes them; [`AccountFacts::into_facts`] makes the `account` and `now`
/// variables from them.
///
/// It takes plain values rather than the accounts service's `Account` so that
/// this crate depends on no service.
#[derive(Debug, Clone, Default)]
pub struct AccountFacts<'a> {
    pub name: &'a str,
    /// `None` reads as `""`.
    pub external_id: Option<&'a str>,
    pub industry: &'a str,
    pub employee_count: Option<i64>,
    pub revenue_band: &'a str,
    pub region: &'a str,
    pub plan_tier: &'a str,
    /// `LifecycleStage::as_str()`: onboarding, adoption, expansion, renewal, churned.
    pub lifecycle_stage: &'a str,
    /// `TouchModel::as_str()`: high, low, tech.
    pub touch_model: &'a str,
    pub owner_id: &'a str,
    /// ARR in minor units of `arr_currency`; 0 when the account has none.
    pub arr: i64,
    /// ISO 4217 code; `""` when the account has no ARR.
    pub arr_currency: &'a str,
    pub contract_start_date: Option<NaiveDate>,
    pub renewal_date: Option<NaiveDate>,
    pub tags: &'a [String],
    /// Custom attributes: bool, int, double, string, date or timestamp facts.
    pub attributes: BTreeMap<String, Fact>,
    /// Today in the tenant's time zone, for `days_to_renewal`.
    pub today: NaiveDate,
}

impl AccountFacts<'_> {
    /// The `account` map and `now`.
    pub fn into_facts(self, now: DateTime<Utc>) -> Facts {
        let days_to_renewal = self.renewal_date.map(|r| (r - self.today).num_days());
        let fields: [(&str, Fact); 17] = [
            ("name", self.name.into()),
            ("external_id", self.external_id.unwrap_or_default().into()),
            ("industry", self.industry.into()),
            ("employee_count", self.employee_count.into()),
            ("revenue_band", self.revenue_band.into()),
            ("region", self.region.into()),
            ("plan_tier", self.plan_tier.into()),
            ("lifecycle_stage", self.lifecycle_stage.into()),
            ("touch_model", self.touch_model.into()),
            ("owner_id", self.owner_id.into()),
            ("arr", self.arr.into()),
            ("arr_currency", self.arr_currency.into()),
            ("contract_start_date", self.contract_start_date.into()),
            ("renewal_date", self.renewal_date.into()),
            ("tags", Fact::List(self.tags.iter().map(|t| Fact::String(t.clone())).collect())),
            ("attributes", Fact::Map(self.attributes)),
            ("days_to_renewal", days_to_renewal.into()),
        ];
        let account = Fact::Map(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        Facts::new().with("account", account).with("now", now)
    }
}
