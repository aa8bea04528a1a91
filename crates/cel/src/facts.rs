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
/// They are kept as plain [`Fact`]s. The fixed fields of the `account`,
/// `health` and `event` records ([`SLOTS`]) each have a slot, filled by
/// [`AccountFacts::into_facts`] and [`PlaybookFacts::into_facts`], so that
/// the fast evaluator (see `fast.rs`) reads `account.arr` by index, without
/// a map lookup. The interpreter's representation is made from them on the
/// first evaluation that needs it and kept, so one `Facts` evaluated
/// against many expressions (every segment, every playbook) converts once,
/// and not at all when every expression stays on the fast path.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// By [`SLOTS`] index; empty, or one entry per slot.
    pub(crate) slots: Vec<Option<Fact>>,
    /// Variables set by name whose fields have no slot set.
    pub(crate) named: Vec<(String, Fact)>,
    vals: std::sync::OnceLock<HashMap<String, Arc<dyn Val>>>,
}

/// The fixed fields that have a slot in [`Facts`], as paths from their
/// variable. A value under one (a custom attribute, a measure, a payload
/// field) is read from its slot's map.
pub(crate) const SLOTS: [&str; 30] = [
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
    "account.touch_mix",
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
];

/// The slot of a path (`account.arr`), if it has one.
pub(crate) fn slot(path: &str) -> Option<usize> {
    if path.is_empty() {
        return None;
    }
    SLOTS.iter().position(|s| *s == path)
}

/// Whether slot `i` is `root.field` (`root` alone when `field` is empty).
fn slot_is(i: usize, root: &str, field: &str) -> bool {
    let Some(rest) = SLOTS[i].strip_prefix(root) else { return false };
    if field.is_empty() {
        return rest.is_empty();
    }
    rest.strip_prefix('.') == Some(field)
}

/// The variable a slot belongs to.
fn slot_root(i: usize) -> &'static str {
    let path = SLOTS[i];
    path.split('.').next().unwrap_or(path)
}

impl Facts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a variable, replacing any earlier value of that name.
    pub fn insert(&mut self, name: impl Into<String>, fact: impl Into<Fact>) -> &mut Self {
        let name = name.into();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if slot_root(i) == name {
                *s = None;
            }
        }
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

    /// A variable made of slots: each `(field, value)` of `root` goes to its
    /// slot, replacing any earlier value of that variable.
    fn with_slots(mut self, root: &str, fields: impl IntoIterator<Item = (&'static str, Fact)>) -> Self {
        self.named.retain(|(n, _)| n != root);
        if self.slots.is_empty() {
            self.slots = vec![None; SLOTS.len()];
        }
        for (i, s) in self.slots.iter_mut().enumerate() {
            if slot_root(i) == root {
                *s = None;
            }
        }
        // The fields come in SLOTS order: look where the last one was first.
        let mut at = 0;
        for (field, value) in fields {
            let is = |j: &usize| slot_is(*j, root, field);
            match (at..SLOTS.len()).find(is).or_else(|| (0..at).find(is)) {
                Some(i) => {
                    self.slots[i] = Some(value);
                    at = i + 1;
                }
                // Not a slot: kept in the variable's map all the same.
                None => self.spill(root, field, value),
            }
        }
        self.vals = Default::default();
        self
    }

    fn spill(&mut self, root: &str, field: &str, value: Fact) {
        match self.named.iter_mut().find(|(n, _)| n == root) {
            Some((_, Fact::Map(m))) => {
                m.insert(field.to_string(), value);
            }
            _ => self.named.push((root.to_string(), Fact::Map([(field.to_string(), value)].into()))),
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.named.iter().any(|(n, _)| n == name)
            || self.slots.iter().enumerate().any(|(i, s)| s.is_some() && slot_root(i) == name)
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
                let Some(value) = value else { continue };
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
                place(tree, &steps, value.clone());
            }
            trees.into_iter().map(|(n, f)| (n, Arc::from(f.into_val()))).collect()
        })
    }

    /// The value of a path of keys from a variable, as the fast evaluator
    /// reads it: from its slot when the path starts with one.
    pub(crate) fn named(&self, root: &str) -> Option<&Fact> {
        self.named.iter().find(|(n, _)| n == root).map(|(_, f)| f)
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
pub(crate) struct Resolver<'a>(pub(crate) &'a Facts);

impl cel::context::VariableResolver for Resolver<'_> {
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

impl AccountFacts<'_> {
    /// The `account` map and `now`.
    pub fn into_facts(self, now: DateTime<Utc>) -> Facts {
        Facts::new().with_slots("account", self.fields()).with_slots("now", [("", Fact::from(now))])
    }

    /// The `account` map alone, as [`account_schema`](crate::account_schema)
    /// describes it.
    pub fn into_fact(self) -> Fact {
        Fact::Map(self.into_fields())
    }

    fn into_fields(self) -> BTreeMap<String, Fact> {
        self.fields().into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    fn fields(self) -> [(&'static str, Fact); 17] {
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
        fields
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
/// the previous window, and the points it gave the score.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MeasureFacts {
    pub value: Option<f64>,
    pub previous_value: Option<f64>,
    pub points: Option<f64>,
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
/// and no measures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthFacts {
    pub score: Option<f64>,
    /// `red`, `yellow` or `green`; `""` without a score.
    pub band: String,
    pub trend_7d: Option<f64>,
    pub trend_30d: Option<f64>,
    /// By measure id.
    pub measures: BTreeMap<String, MeasureFacts>,
}

impl HealthFacts {
    fn fields(self) -> [(&'static str, Fact); 5] {
        let measures = self.measures.into_iter().map(|(id, m)| (id, Fact::from(m))).collect();
        [
            ("score", Fact::from(self.score)),
            ("band", Fact::String(self.band)),
            ("trend_7d", Fact::from(self.trend_7d)),
            ("trend_30d", Fact::from(self.trend_30d)),
            ("measures", Fact::Map(measures)),
        ]
    }
}

impl From<HealthFacts> for Fact {
    fn from(h: HealthFacts) -> Fact {
        Fact::Map(h.fields().into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
}

/// The `event` variable of a playbook condition: the event that triggered
/// it. The default (a schedule or manual trigger: no event) has `type` and
/// `id` `""`, `occurred_at` `null` and `data` an empty map.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFacts {
    /// `event.type`: the event's type name, as the bus names it
    /// (`HealthScoreChanged`).
    pub event_type: String,
    pub id: String,
    /// `null` when `None`.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The payload's fields by their snake_case names, usually
    /// [`Fact::from_json`] of the payload as JSON. Not checked when a
    /// condition compiles: any field may be read.
    pub data: Fact,
}

impl Default for EventFacts {
    fn default() -> Self {
        EventFacts { event_type: String::new(), id: String::new(), occurred_at: None, data: Fact::Map(BTreeMap::new()) }
    }
}

impl EventFacts {
    fn fields(self) -> [(&'static str, Fact); 4] {
        [
            ("type", Fact::String(self.event_type)),
            ("id", Fact::String(self.id)),
            ("occurred_at", Fact::from(self.occurred_at)),
            ("data", self.data),
        ]
    }
}

impl From<EventFacts> for Fact {
    fn from(e: EventFacts) -> Fact {
        Fact::Map(e.fields().into_iter().map(|(k, v)| (k.to_string(), v)).collect())
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
    pub health: HealthFacts,
    pub event: EventFacts,
}

impl PlaybookFacts<'_> {
    pub fn into_facts(self, now: DateTime<Utc>) -> Facts {
        let account = self
            .account
            .fields()
            .into_iter()
            .chain([("touch_mix", Fact::from(self.touch_mix)), ("stage_days", Fact::from(self.stage_days))]);
        Facts::new()
            .with_slots("account", account)
            .with_slots("health", self.health.fields())
            .with_slots("event", self.event.fields())
            .with_slots("now", [("", Fact::from(now))])
    }
}
