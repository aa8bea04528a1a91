use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cel::Value;
use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelTimestamp};
use cel::common::value::{CowVal, Val};
use cel::objects::Key;
use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};

use crate::paths::{quote, split};

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
    /// A JSON value (an event's payload) as a fact: a number written without
    /// fraction or exponent is an int if it fits in 64 bits, any other a
    /// double; an object is a map, an array a list, `null` null.
    pub fn from_json(value: serde_json::Value) -> Fact {
        use serde_json::Value as Json;
        match value {
            Json::Null => Fact::Null,
            Json::Bool(b) => Fact::Bool(b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Fact::Int(i),
                None => Fact::Double(n.as_f64().unwrap_or(f64::NAN)),
            },
            Json::String(s) => Fact::String(s),
            Json::Array(items) => Fact::List(items.into_iter().map(Fact::from_json).collect()),
            Json::Object(entries) => Fact::Map(entries.into_iter().map(|(k, v)| (k, Fact::from_json(v))).collect()),
        }
    }

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
/// The fixed fields of the `account`, `health` and `event` records
/// ([`SLOTS`]) each have a slot, filled by [`AccountFacts::into_facts`] and
/// [`PlaybookFacts::into_facts`], so that the fast evaluator (see `fast.rs`)
/// reads `account.arr` by index, without a map lookup. A slot borrows what
/// it can from the caller's own data (`'a`): the account's strings and
/// tags, the measures map; the event's payload is converted only when an
/// expression first reads it. Nothing is copied per evaluation. The
/// interpreter's representation is made from the slots on the first
/// evaluation that needs it and kept, so one `Facts` evaluated against many
/// expressions (every segment, every playbook) converts once, and not at
/// all when every expression stays on the fast path.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// By [`SLOTS`] index.
    pub(crate) slots: [Slot<'a>; SLOTS.len()],
    /// Variables set by name whose fields have no slot set.
    pub(crate) named: Vec<(String, Fact)>,
    vals: std::sync::OnceLock<HashMap<String, Arc<dyn Val>>>,
}

impl Default for Facts<'_> {
    fn default() -> Self {
        Facts { slots: std::array::from_fn(|_| Slot::Unset), named: Vec::new(), vals: Default::default() }
    }
}

/// The value of one slot of [`Facts`].
#[derive(Clone)]
pub(crate) enum Slot<'a> {
    Unset,
    Fact(Fact),
    Text(Cow<'a, str>),
    Texts(&'a [String]),
    Measures(Cow<'a, BTreeMap<String, MeasureFacts>>),
    /// Made on first read (the event's payload).
    Lazy(Arc<LazyFact<'a>>),
    /// Read field by field, each on first read (the event's payload).
    Record(Arc<LazyRecord<'a>>),
}

/// A record whose fields are read one at a time, when an expression first
/// reads each: an event's payload, of which a condition reads a field or
/// two (decoding every field cost more than the conditions: see
/// docs/benchmarks.md, rule throughput).
pub trait Record: Send + Sync {
    /// How many fields the record may hold.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The place of field `name`, if the record may hold it.
    fn index(&self, name: &str) -> Option<usize>;
    /// The value of the field at `i`; `None` when it is not present.
    fn field(&self, i: usize) -> Option<Fact>;
    /// The record as a map of its present fields; must agree with
    /// [`Record::field`].
    fn fact(&self) -> Fact;
}

/// A [`Record`] and the fields read of it so far.
pub(crate) struct LazyRecord<'a> {
    record: Arc<dyn Record + 'a>,
    /// Made on the first field read: nothing of the record is touched
    /// before (a payload is not even encoded).
    fields: std::sync::OnceLock<Box<[std::sync::OnceLock<Option<Fact>>]>>,
    whole: std::sync::OnceLock<Fact>,
}

impl<'a> LazyRecord<'a> {
    fn new(record: Arc<dyn Record + 'a>) -> Self {
        LazyRecord { record, fields: Default::default(), whole: Default::default() }
    }

    /// Field `name`, read on the first call; `None` when absent.
    pub(crate) fn field(&self, name: &str) -> Option<&Fact> {
        let i = self.record.index(name)?;
        let fields = self.fields.get_or_init(|| (0..self.record.len()).map(|_| std::sync::OnceLock::new()).collect());
        fields.get(i)?.get_or_init(|| self.record.field(i)).as_ref()
    }

    pub(crate) fn whole(&self) -> &Fact {
        self.whole.get_or_init(|| self.record.fact())
    }
}

/// A fact made on first read.
pub(crate) struct LazyFact<'a> {
    made: std::sync::OnceLock<Fact>,
    make: Arc<dyn Fn() -> Fact + Send + Sync + 'a>,
}

impl LazyFact<'_> {
    pub(crate) fn get(&self) -> &Fact {
        self.made.get_or_init(|| (self.make)())
    }
}

impl std::fmt::Debug for Slot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Slot::Unset => f.write_str("Unset"),
            Slot::Lazy(l) => match l.made.get() {
                Some(fact) => f.debug_tuple("Lazy").field(fact).finish(),
                None => f.write_str("Lazy(not read)"),
            },
            Slot::Record(r) => match r.whole.get() {
                Some(fact) => f.debug_tuple("Record").field(fact).finish(),
                None => f.write_str("Record(not read whole)"),
            },
            other => other.to_fact().fmt(f),
        }
    }
}

impl Slot<'_> {
    pub(crate) fn is_set(&self) -> bool {
        !matches!(self, Slot::Unset)
    }

    /// The slot's value as an owned fact (for the interpreter).
    pub(crate) fn to_fact(&self) -> Fact {
        match self {
            Slot::Unset => Fact::Null,
            Slot::Fact(f) => f.clone(),
            Slot::Text(s) => Fact::String(s.to_string()),
            Slot::Texts(items) => Fact::List(items.iter().map(|t| Fact::String(t.clone())).collect()),
            Slot::Measures(m) => Fact::Map(m.iter().map(|(k, v)| (k.clone(), Fact::from(*v))).collect()),
            Slot::Lazy(l) => l.get().clone(),
            Slot::Record(r) => r.whole().clone(),
        }
    }
}

impl From<Fact> for Slot<'_> {
    fn from(f: Fact) -> Self {
        Slot::Fact(f)
    }
}

/// The fixed fields that have a slot in [`Facts`], as paths from their
/// variable. A value under one (a custom attribute, a measure, a payload
/// field) is read from its slot's map.
pub(crate) const SLOTS: [&str; 33] = [
    "now",
    "account.name",
    "account.external_id",
    "account.industry",
    "account.employee_count",
    "account.revenue_band",
    "account.region",
    "account.plan_tier",
    "account.lifecycle_stage",
    "account.touch_model",
    "account.owner_id",
    "account.arr",
    "account.arr_currency",
    "account.contract_start_date",
    "account.renewal_date",
    "account.tags",
    "account.attributes",
    "account.days_to_renewal",
    "account.touch_mix.high",
    "account.touch_mix.low",
    "account.touch_mix.tech",
    "account.stage_days",
    "health.score",
    "health.band",
    "health.trend_7d",
    "health.trend_30d",
    "health.measures",
    "event.type",
    "event.id",
    "event.occurred_at",
    "event.data",
    // Keeps the array's length honest when a field is added above.
    "",
    "",
];

/// The slot of a path (`account.arr`), if it has one.
pub(crate) fn slot(path: &str) -> Option<usize> {
    if path.is_empty() {
        return None;
    }
    SLOTS.iter().position(|s| *s == path)
}

/// The slot of a path known when this crate compiles.
#[allow(clippy::panic, reason = "only ever evaluated in const context: a wrong path fails the build")]
const fn at(path: &str) -> usize {
    let mut i = 0;
    while i < SLOTS.len() {
        if same(SLOTS[i].as_bytes(), path.as_bytes()) {
            return i;
        }
        i += 1;
    }
    panic!("no such slot")
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The variable a slot belongs to.
fn slot_root(i: usize) -> &'static str {
    let path = SLOTS[i];
    path.split('.').next().unwrap_or(path)
}

impl<'a> Facts<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a variable, replacing any earlier value of that name.
    pub fn insert(&mut self, name: impl Into<String>, fact: impl Into<Fact>) -> &mut Self {
        let name = name.into();
        self.clear(&name);
        self.named.retain(|(n, _)| *n != name);
        self.named.push((name, fact.into()));
        self.vals = Default::default();
        self
    }

    /// [`Facts::insert`], builder style.
    pub fn with(mut self, name: impl Into<String>, fact: impl Into<Fact>) -> Self {
        self.insert(name, fact);
        self
    }

    /// Unsets every slot of variable `root`.
    fn clear(&mut self, root: &str) {
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.is_set() && slot_root(i) == root {
                *s = Slot::Unset;
            }
        }
    }

    /// Sets the slot of a fixed field (see [`SLOTS`]).
    fn set(&mut self, slot: usize, value: impl Into<Slot<'a>>) {
        self.slots[slot] = value.into();
    }

    pub fn contains(&self, name: &str) -> bool {
        self.named.iter().any(|(n, _)| n == name)
            || self.slots.iter().enumerate().any(|(i, s)| s.is_set() && slot_root(i) == name)
    }

    /// The value at `path` (as [`Expression::paths`](crate::Expression::paths)
    /// writes it: `account.arr`, `account.attributes['go-live']`), written as
    /// CEL writes it: `12`, `1.5`, `'red'`, `null`, `true`,
    /// `timestamp('2026-12-04T00:00:00Z')`, `['a', 'b']`, `{'k': 1}` (keys
    /// sorted). `None` if the variable or a step is missing, or the path is
    /// not one.
    pub fn lookup(&self, path: &str) -> Option<String> {
        let (root, keys) = split(path)?;
        let value = self.vals().get(root)?;
        let value = step(value.as_ref(), &keys)?;
        Some(cel_literal(&value))
    }

    /// The variables as the interpreter holds them, made once.
    pub(crate) fn vals(&self) -> &HashMap<String, Arc<dyn Val>> {
        self.vals.get_or_init(|| {
            let mut trees: Vec<(String, Fact)> = self.named.clone();
            for (i, value) in self.slots.iter().enumerate() {
                if !value.is_set() {
                    continue;
                }
                let mut steps = SLOTS[i].split('.');
                let root = steps.next().unwrap_or_default();
                let steps: Vec<&str> = steps.collect();
                let tree = match trees.iter().position(|(n, _)| n == root) {
                    Some(at) => &mut trees[at].1,
                    None => {
                        let fresh = if steps.is_empty() { Fact::Null } else { Fact::Map(BTreeMap::new()) };
                        trees.push((root.to_string(), fresh));
                        let last = trees.len() - 1;
                        &mut trees[last].1
                    }
                };
                place(tree, &steps, value.to_fact());
            }
            trees.into_iter().map(|(n, f)| (n, Arc::from(f.into_val()))).collect()
        })
    }

    /// A variable set by name.
    pub(crate) fn named(&self, root: &str) -> Option<&Fact> {
        self.named.iter().find(|(n, _)| n == root).map(|(_, f)| f)
    }

    /// Sets `now`, replacing any variable of that name.
    // `now`, `account`, `health` and `event` below fill the slots of a
    // fresh `Facts` (every builder starts from `Facts::new()`): nothing set
    // before to clear.
    fn now(mut self, now: DateTime<Utc>) -> Self {
        self.set(const { at("now") }, Fact::Timestamp(now));
        self
    }

    /// Replaces any `account` set by name (the slots then hold it all).
    fn account(&mut self, a: AccountFacts<'a>) {
        let days_to_renewal = a.renewal_date.map(|r| (r - a.today).num_days());
        self.set(const { at("account.name") }, Slot::Text(Cow::Borrowed(a.name)));
        self.set(const { at("account.external_id") }, Slot::Text(Cow::Borrowed(a.external_id.unwrap_or_default())));
        self.set(const { at("account.industry") }, Slot::Text(Cow::Borrowed(a.industry)));
        self.set(const { at("account.employee_count") }, Fact::from(a.employee_count));
        self.set(const { at("account.revenue_band") }, Slot::Text(Cow::Borrowed(a.revenue_band)));
        self.set(const { at("account.region") }, Slot::Text(Cow::Borrowed(a.region)));
        self.set(const { at("account.plan_tier") }, Slot::Text(Cow::Borrowed(a.plan_tier)));
        self.set(const { at("account.lifecycle_stage") }, Slot::Text(Cow::Borrowed(a.lifecycle_stage)));
        self.set(const { at("account.touch_model") }, Slot::Text(Cow::Borrowed(a.touch_model)));
        self.set(const { at("account.owner_id") }, Slot::Text(Cow::Borrowed(a.owner_id)));
        self.set(const { at("account.arr") }, Fact::Int(a.arr));
        self.set(const { at("account.arr_currency") }, Slot::Text(Cow::Borrowed(a.arr_currency)));
        self.set(const { at("account.contract_start_date") }, Fact::from(a.contract_start_date));
        self.set(const { at("account.renewal_date") }, Fact::from(a.renewal_date));
        self.set(const { at("account.tags") }, Slot::Texts(a.tags));
        self.set(const { at("account.attributes") }, Fact::Map(a.attributes));
        self.set(const { at("account.days_to_renewal") }, Fact::from(days_to_renewal));
        self.vals = Default::default();
    }
}
/// Puts `value` at `steps` under `tree`, making maps on the way.
fn place(tree: &mut Fact, steps: &[&str], value: Fact) {
    let Some((first, rest)) = steps.split_first() else {
        *tree = value;
        return;
    };
    if !matches!(tree, Fact::Map(_)) {
        *tree = Fact::Map(BTreeMap::new());
    }
    if let Fact::Map(m) = tree {
        let child = m.entry((*first).to_string()).or_insert(Fact::Null);
        place(child, rest, value);
    }
}

/// The value `keys` lead to from `v`, each a key of a map.
fn step(v: &dyn Val, keys: &[String]) -> Option<Value> {
    let Some((key, rest)) = keys.split_first() else {
        return Value::try_from(v).ok();
    };
    v.downcast_ref::<CelMap>()?;
    let found = v.as_indexer()?.get(&CelString::from(key.clone())).ok()?;
    step(found.as_ref(), rest)
}

/// A value as a CEL literal (or, for a timestamp or duration, the call that
/// makes it).
pub(crate) fn cel_literal(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => format!("{u}u"),
        Value::Float(d) if d.is_nan() => "double('NaN')".into(),
        Value::Float(d) if d.is_infinite() => {
            if *d > 0.0 {
                "double('Infinity')".into()
            } else {
                "double('-Infinity')".into()
            }
        }
        // Debug keeps the point of a whole double: 2.0, not 2.
        Value::Float(d) => format!("{d:?}"),
        Value::String(s) => quote(s),
        Value::Bytes(b) => {
            let mut out = String::from("b'");
            for byte in b.iter() {
                match byte {
                    b'\\' => out.push_str("\\\\"),
                    b'\'' => out.push_str("\\'"),
                    0x20..=0x7e => out.push(char::from(*byte)),
                    other => out.push_str(&format!("\\x{other:02x}")),
                }
            }
            out.push('\'');
            out
        }
        Value::List(items) => format!("[{}]", items.iter().map(cel_literal).collect::<Vec<_>>().join(", ")),
        Value::Map(m) => {
            let mut entries: Vec<(&Key, &Value)> = m.map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let entries: Vec<String> =
                entries.into_iter().map(|(k, v)| format!("{}: {}", key_literal(k), cel_literal(v))).collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Timestamp(t) => {
            format!("timestamp('{}')", t.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::AutoSi, true))
        }
        Value::Duration(d) => {
            let (secs, nanos) = (d.num_seconds(), d.subsec_nanos());
            if nanos == 0 {
                format!("duration('{secs}s')")
            } else {
                let sign = if secs < 0 || nanos < 0 { "-" } else { "" };
                let fraction = format!("{:09}", nanos.unsigned_abs());
                format!("duration('{sign}{}.{}s')", secs.unsigned_abs(), fraction.trim_end_matches('0'))
            }
        }
        other => crate::runtime::describe(other),
    }
}

fn key_literal(k: &Key) -> String {
    match k {
        Key::Int(i) => i.to_string(),
        Key::Uint(u) => format!("{u}u"),
        Key::Bool(b) => b.to_string(),
        Key::String(s) => quote(s),
    }
}

/// Hands the interpreter the variables of a [`Facts`] by reference.
pub(crate) struct Resolver<'a, 'f>(pub(crate) &'a Facts<'f>);

impl cel::context::VariableResolver for Resolver<'_, '_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        self.0.vals().get(variable).map(|v| CowVal::Borrowed(v.as_ref()))
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

impl<'a> AccountFacts<'a> {
    /// The `account` map and `now`.
    pub fn into_facts(self, now: DateTime<Utc>) -> Facts<'a> {
        let mut f = Facts::new().now(now);
        f.account(self);
        f
    }

    /// The `account` map alone, as [`account_schema`](crate::account_schema)
    /// describes it.
    pub fn into_fact(self) -> Fact {
        let facts = self.into_facts(DateTime::UNIX_EPOCH);
        let mut map = BTreeMap::new();
        for (i, s) in facts.slots.iter().enumerate() {
            if let Some(field) = SLOTS[i].strip_prefix("account.")
                && s.is_set()
            {
                map.insert(field.to_string(), s.to_fact());
            }
        }
        Fact::Map(map)
    }
}

/// `account.touch_mix` of a playbook condition: the percent of each touch
/// pattern in the account's mix (`high: 60, tech: 40`); all 0 when unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TouchMix {
    pub high: i64,
    pub low: i64,
    pub tech: i64,
}

impl From<TouchMix> for Fact {
    fn from(m: TouchMix) -> Fact {
        let fields = [("high", m.high), ("low", m.low), ("tech", m.tech)];
        Fact::Map(fields.into_iter().map(|(k, v)| (k.to_string(), Fact::Int(v))).collect())
    }
}

/// One entry of `health.measures`: the measure's value in the current and
/// the previous window, and the points it gave the score. Serialised with
/// these field names, so a service can keep its projection in this type
/// and hand it to [`HealthFacts`] without a copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MeasureFacts {
    pub value: Option<f64>,
    pub previous_value: Option<f64>,
    pub points: Option<f64>,
}

impl MeasureFacts {
    /// A field of the entry by name; `None` for any other name.
    pub(crate) fn field(&self, name: &str) -> Option<Option<f64>> {
        let is = |field: &str| crate::fast::same(name, field);
        if is("value") {
            Some(self.value)
        } else if is("previous_value") {
            Some(self.previous_value)
        } else if is("points") {
            Some(self.points)
        } else {
            None
        }
    }
}

impl From<MeasureFacts> for Fact {
    fn from(m: MeasureFacts) -> Fact {
        let fields = [("value", m.value), ("previous_value", m.previous_value), ("points", m.points)];
        Fact::Map(fields.into_iter().map(|(k, v)| (k.to_string(), Fact::from(v))).collect())
    }
}

/// The `health` variable of a playbook condition, as
/// [`playbook_schema`](crate::playbook_schema) describes it. The default
/// (before an account's first score) has every number `null`, `band` `""`
/// and no measures. Strings and the measures may be borrowed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthFacts<'a> {
    pub score: Option<f64>,
    /// `red`, `yellow` or `green`; `""` without a score.
    pub band: Cow<'a, str>,
    pub trend_7d: Option<f64>,
    pub trend_30d: Option<f64>,
    /// By measure id.
    pub measures: Cow<'a, BTreeMap<String, MeasureFacts>>,
}

impl From<HealthFacts<'_>> for Fact {
    fn from(h: HealthFacts<'_>) -> Fact {
        let mut f = Facts::new();
        f.health(h);
        f.variable("health")
    }
}

/// The `event` variable of a playbook condition: the event that triggered
/// it. The default (a schedule or manual trigger: no event) has `type` and
/// `id` `""`, `occurred_at` `null` and `data` an empty map.
#[derive(Debug, Clone, Default)]
pub struct EventFacts<'a> {
    /// `event.type`: the event's type name, as the bus names it
    /// (`HealthScoreChanged`).
    pub event_type: Cow<'a, str>,
    pub id: Cow<'a, str>,
    /// `null` when `None`.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The payload's fields by their snake_case names. Not checked when a
    /// condition compiles: any field may be read.
    pub data: EventData<'a>,
}

/// `event.data`: a fact, or how to make it when a condition first reads it
/// (converting a payload costs more than most conditions).
#[derive(Clone)]
pub enum EventData<'a> {
    Fact(Fact),
    Lazy(Arc<dyn Fn() -> Fact + Send + Sync + 'a>),
    /// Read field by field: a field on its first read, the whole map only
    /// when an expression reads `event.data` itself or the interpreter runs.
    Record(Arc<dyn Record + 'a>),
}

impl Default for EventData<'_> {
    fn default() -> Self {
        EventData::Fact(Fact::Map(BTreeMap::new()))
    }
}

impl std::fmt::Debug for EventData<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventData::Fact(fact) => fact.fmt(f),
            EventData::Lazy(_) => f.write_str("Lazy"),
            EventData::Record(_) => f.write_str("Record"),
        }
    }
}

impl From<Fact> for EventData<'_> {
    fn from(f: Fact) -> Self {
        EventData::Fact(f)
    }
}

impl From<EventFacts<'_>> for Fact {
    fn from(e: EventFacts<'_>) -> Fact {
        let mut f = Facts::new();
        f.event(e);
        f.variable("event")
    }
}

/// Everything a playbook condition reads, as
/// [`playbook_schema`](crate::playbook_schema) describes it;
/// [`PlaybookFacts::into_facts`] makes the `account`, `health`, `event` and
/// `now` variables.
#[derive(Debug, Clone, Default)]
pub struct PlaybookFacts<'a> {
    /// The fields a segment reads; `account` gains the two below.
    pub account: AccountFacts<'a>,
    /// `account.touch_mix`.
    pub touch_mix: TouchMix,
    /// `account.stage_days`: whole days since the account entered its
    /// current lifecycle stage, in the tenant's time zone; `null` when unknown.
    pub stage_days: Option<i64>,
    pub health: HealthFacts<'a>,
    pub event: EventFacts<'a>,
}

impl<'a> PlaybookFacts<'a> {
    pub fn into_facts(self, now: DateTime<Utc>) -> Facts<'a> {
        let mut f = Facts::new().now(now);
        f.account(self.account);
        f.set(const { at("account.touch_mix.high") }, Fact::Int(self.touch_mix.high));
        f.set(const { at("account.touch_mix.low") }, Fact::Int(self.touch_mix.low));
        f.set(const { at("account.touch_mix.tech") }, Fact::Int(self.touch_mix.tech));
        f.set(const { at("account.stage_days") }, Fact::from(self.stage_days));
        f.health(self.health);
        f.event(self.event);
        f
    }
}

impl<'a> Facts<'a> {
    fn health(&mut self, h: HealthFacts<'a>) {
        self.set(const { at("health.score") }, Fact::from(h.score));
        self.set(const { at("health.band") }, Slot::Text(h.band));
        self.set(const { at("health.trend_7d") }, Fact::from(h.trend_7d));
        self.set(const { at("health.trend_30d") }, Fact::from(h.trend_30d));
        self.set(const { at("health.measures") }, Slot::Measures(h.measures));
        self.vals = Default::default();
    }

    fn event(&mut self, e: EventFacts<'a>) {
        self.set(const { at("event.type") }, Slot::Text(e.event_type));
        self.set(const { at("event.id") }, Slot::Text(e.id));
        self.set(const { at("event.occurred_at") }, Fact::from(e.occurred_at));
        self.event_data(e.data);
    }

    /// Sets `event.data`.
    pub(crate) fn event_data(&mut self, data: EventData<'a>) {
        self.set(
            const { at("event.data") },
            match data {
                EventData::Fact(f) => Slot::Fact(f),
                EventData::Lazy(make) => Slot::Lazy(Arc::new(LazyFact { made: Default::default(), make })),
                EventData::Record(r) => Slot::Record(Arc::new(LazyRecord::new(r))),
            },
        );
        self.vals = Default::default();
    }

    /// The variable `root` made of its slots, as an owned fact.
    fn variable(&self, root: &str) -> Fact {
        let mut tree = Fact::Map(BTreeMap::new());
        for (i, s) in self.slots.iter().enumerate() {
            if slot_root(i) == root
                && s.is_set()
                && let Some(rest) = SLOTS[i].strip_prefix(root).and_then(|r| r.strip_prefix('.'))
            {
                let steps: Vec<&str> = rest.split('.').collect();
                place(&mut tree, &steps, s.to_fact());
            }
        }
        tree
    }
}
