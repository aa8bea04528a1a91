//! MERGE-D: stand-ins until banso-cel's playbook environment lands.

use std::collections::BTreeMap;

use banso_cel::{Fact, Schema, Shape};

pub(crate) fn playbook_schema() -> Schema {
    let base = banso_cel::account_schema();
    let account = base.variable("account").cloned().unwrap_or(Shape::Any);
    let reading =
        Shape::record([("value", Shape::Double), ("previous_value", Shape::Double), ("points", Shape::Double)]);
    let health = Shape::record([
        ("score", Shape::Double),
        ("band", Shape::String),
        ("trend_7d", Shape::Double),
        ("trend_30d", Shape::Double),
        ("measures", Shape::Map(Box::new(reading))),
    ]);
    let event = Shape::record([
        ("type", Shape::String),
        ("id", Shape::String),
        ("occurred_at", Shape::Timestamp),
        ("data", Shape::Any),
    ]);
    Schema::new()
        .with_variable("account", account)
        .with_variable("health", health)
        .with_variable("event", event)
        .with_variable("now", Shape::Timestamp)
}

pub(crate) fn from_json(v: serde_json::Value) -> Fact {
    use serde_json::Value;
    match v {
        Value::Null => Fact::Null,
        Value::Bool(b) => Fact::Bool(b),
        Value::Number(n) => n.as_i64().map(Fact::Int).unwrap_or_else(|| Fact::Double(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => Fact::String(s),
        Value::Array(a) => Fact::List(a.into_iter().map(from_json).collect()),
        Value::Object(o) => Fact::Map(o.into_iter().map(|(k, v)| (k, from_json(v))).collect::<BTreeMap<_, _>>()),
    }
}
