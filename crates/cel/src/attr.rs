//! A custom attribute's value as services keep it in their projections of
//! Accounts (stored as JSON), read from the wire once and shown to CEL.

use banso_proto::types::{AttributeValue, attribute_value::Kind};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::Fact;

/// A custom attribute value: the wire's `AttributeValue` without its oneof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attr {
    String(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
}

impl Attr {
    /// The value an event carries; `None` for an empty value or a date or
    /// time out of range (Accounts checked them: such a value is left out).
    pub fn from_proto(v: &AttributeValue) -> Option<Attr> {
        Some(match v.kind.as_ref()? {
            Kind::StringValue(s) => Attr::String(s.clone()),
            Kind::IntValue(i) => Attr::Int(*i),
            Kind::DoubleValue(d) => Attr::Double(*d),
            Kind::BoolValue(b) => Attr::Bool(*b),
            Kind::DateValue(d) => {
                Attr::Date(NaiveDate::from_ymd_opt(d.year, u32::try_from(d.month).ok()?, u32::try_from(d.day).ok()?)?)
            }
            Kind::TimestampValue(t) if t.seconds >= 0 => {
                Attr::Timestamp(DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)?)
            }
            Kind::TimestampValue(_) => return None,
        })
    }

    /// The value as a group label (distributions, templates).
    pub fn label(&self) -> String {
        match self {
            Attr::String(s) => s.clone(),
            Attr::Int(i) => i.to_string(),
            Attr::Double(d) => d.to_string(),
            Attr::Bool(b) => b.to_string(),
            Attr::Date(d) => d.to_string(),
            Attr::Timestamp(t) => t.to_rfc3339(),
        }
    }
}

impl From<&Attr> for Fact {
    fn from(a: &Attr) -> Fact {
        match a {
            Attr::String(s) => Fact::String(s.clone()),
            Attr::Int(i) => Fact::Int(*i),
            Attr::Double(d) => Fact::Double(*d),
            Attr::Bool(b) => Fact::Bool(*b),
            Attr::Date(d) => Fact::Date(*d),
            Attr::Timestamp(t) => Fact::Timestamp(*t),
        }
    }
}

#[cfg(test)]
mod tests {
    use banso_proto::types::Date;

    use super::*;

    #[test]
    fn wire_values_convert_and_out_of_range_ones_are_left_out() {
        let v = |kind| AttributeValue { kind: Some(kind) };
        assert_eq!(Attr::from_proto(&v(Kind::IntValue(3))), Some(Attr::Int(3)));
        assert_eq!(
            Attr::from_proto(&v(Kind::DateValue(Date { year: 2026, month: 12, day: 4 }))),
            NaiveDate::from_ymd_opt(2026, 12, 4).map(Attr::Date)
        );
        assert_eq!(Attr::from_proto(&v(Kind::DateValue(Date { year: 2026, month: 2, day: 30 }))), None);
        assert_eq!(Attr::from_proto(&v(Kind::TimestampValue(pbjson_types::Timestamp { seconds: -1, nanos: 0 }))), None);
        assert_eq!(Attr::from_proto(&AttributeValue { kind: None }), None);
        // The stored JSON every projection already holds.
        assert_eq!(serde_json::to_string(&Attr::Int(3)).unwrap(), r#"{"int":3}"#);
        assert_eq!(Fact::from(&Attr::Bool(true)), Fact::Bool(true));
    }
}
