//! `event.data`: an event's payload as a CEL fact, read straight from the
//! decoded message by its descriptor — no JSON in between, which cost more
//! than most conditions that read it (docs/benchmarks.md, rule throughput).
//!
//! Every field is present by its proto name with its default when unset,
//! except fields with presence (`optional`, messages, oneof members), which
//! are present only when set, as `has(event.data.f)` expects. Integers of
//! every width are ints (a uint64 beyond the int range is a double), floats
//! and doubles are doubles, enum values are their names (an unknown number
//! stays a number), bytes are base64, maps are maps with string keys, and
//! Timestamp and Duration are strings as proto3 JSON writes them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use banso_cel::Fact;
use banso_events::{Payload, envelope::type_of};
use base64::Engine as _;
use prost_reflect::ReflectMessage as _;
use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};

fn envelope() -> Option<&'static MessageDescriptor> {
    static ENVELOPE: OnceLock<Option<MessageDescriptor>> = OnceLock::new();
    ENVELOPE
        .get_or_init(|| {
            DescriptorPool::decode(banso_proto::FILE_DESCRIPTOR_SET)
                .ok()?
                .get_message_by_name("banso.events.v1.Envelope")
        })
        .as_ref()
}

/// The payload as a fact; an empty map if it cannot be read.
pub(crate) fn fact(p: &Payload) -> Fact {
    read(p).unwrap_or_else(|| Fact::Map(BTreeMap::new()))
}

fn read(p: &Payload) -> Option<Fact> {
    let env = envelope()?;
    let field = env.get_field_by_name(type_of(p))?;
    // The oneof encodes as its envelope field: tag, length, message.
    let mut buf = Vec::with_capacity(p.encoded_len());
    p.encode(&mut buf);
    let mut bytes = buf.as_slice();
    prost::encoding::decode_key(&mut bytes).ok()?;
    let len = prost::encoding::decode_varint(&mut bytes).ok()?;
    let body = bytes.get(..usize::try_from(len).ok()?)?;
    let msg = DynamicMessage::decode(field.kind().as_message()?.clone(), body).ok()?;
    Some(message(&msg))
}

fn message(m: &DynamicMessage) -> Fact {
    let d = m.descriptor();
    match d.full_name() {
        "google.protobuf.Timestamp" | "google.protobuf.Duration" => return well_known(m),
        _ => {}
    }
    let mut map = BTreeMap::new();
    for f in d.fields() {
        if f.supports_presence() && !m.has_field(&f) {
            continue;
        }
        let v = m.get_field(&f);
        map.insert(f.name().to_string(), field(&f, &v));
    }
    Fact::Map(map)
}

/// Timestamp and Duration as proto3 JSON writes them.
fn well_known(m: &DynamicMessage) -> Fact {
    let options = prost_reflect::SerializeOptions::new();
    match m.serialize_with_options(serde_json::value::Serializer, &options) {
        Ok(serde_json::Value::String(s)) => Fact::String(s),
        _ => Fact::Null,
    }
}

fn field(f: &FieldDescriptor, v: &Value) -> Fact {
    match v {
        Value::List(items) => Fact::List(items.iter().map(|x| scalar(&f.kind(), x)).collect()),
        Value::Map(entries) => {
            let value_kind = f.kind().as_message().map(|entry| entry.map_entry_value_field().kind());
            let mut map = BTreeMap::new();
            for (k, x) in entries {
                let key = match k {
                    MapKey::Bool(b) => b.to_string(),
                    MapKey::I32(i) => i.to_string(),
                    MapKey::I64(i) => i.to_string(),
                    MapKey::U32(u) => u.to_string(),
                    MapKey::U64(u) => u.to_string(),
                    MapKey::String(s) => s.clone(),
                };
                let fact = match &value_kind {
                    Some(kind) => scalar(kind, x),
                    None => Fact::Null,
                };
                map.insert(key, fact);
            }
            Fact::Map(map)
        }
        single => scalar(&f.kind(), single),
    }
}

fn scalar(kind: &Kind, v: &Value) -> Fact {
    match v {
        Value::Bool(b) => Fact::Bool(*b),
        Value::I32(i) => Fact::Int(i64::from(*i)),
        Value::I64(i) => Fact::Int(*i),
        Value::U32(u) => Fact::Int(i64::from(*u)),
        Value::U64(u) => i64::try_from(*u).map_or(Fact::Double(*u as f64), Fact::Int),
        Value::F32(x) => Fact::Double(f64::from(*x)),
        Value::F64(x) => Fact::Double(*x),
        Value::String(s) => Fact::String(s.clone()),
        Value::Bytes(b) => Fact::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::EnumNumber(n) => match kind.as_enum().and_then(|e| e.get_value(*n)) {
            Some(e) => Fact::String(e.name().to_string()),
            None => Fact::Int(i64::from(*n)),
        },
        Value::Message(m) => message(m),
        Value::List(_) | Value::Map(_) => Fact::Null,
    }
}

#[cfg(test)]
mod tests {
    use banso_proto::{accounts as apb, events as ev, types as tpb};

    use super::*;

    fn map(f: Fact) -> BTreeMap<String, Fact> {
        match f {
            Fact::Map(m) => m,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn every_field_by_its_proto_name_with_defaults_and_presence() {
        let p = Payload::HealthScoreChanged(ev::HealthScoreChanged {
            account_id: "a1".into(),
            old_score: None,
            new_score: 0.0,
            new_band: 1,
            scorecard_version: 7,
            measures: vec![ev::MeasureReading { measure: "events_30d".into(), value: Some(4.0), ..Default::default() }],
            ..Default::default()
        });
        let m = map(fact(&p));
        assert_eq!(m["account_id"], Fact::String("a1".into()));
        assert!(!m.contains_key("old_score"), "an unset optional is absent: {m:?}");
        assert_eq!(m["new_score"], Fact::Double(0.0), "a default is present");
        assert_eq!(m["new_band"], Fact::String("BAND_RED".into()));
        assert_eq!(m["old_band"], Fact::String("BAND_UNSPECIFIED".into()));
        assert_eq!(m["scorecard_version"], Fact::Int(7), "an int64 is an int");
        let Fact::List(measures) = &m["measures"] else { panic!("measures: {m:?}") };
        let first = map(measures[0].clone());
        assert_eq!(first["measure"], Fact::String("events_30d".into()));
        assert_eq!(first["value"], Fact::Double(4.0));
        assert!(!first.contains_key("previous_value"));
    }

    #[test]
    fn messages_maps_oneofs_and_timestamps() {
        let mut attrs = std::collections::HashMap::new();
        attrs.insert("seats".to_string(), tpb::AttributeValue { kind: Some(tpb::attribute_value::Kind::IntValue(40)) });
        let p = Payload::AccountUpdated(ev::AccountUpdated {
            account: Some(apb::Account {
                name: "Acme".into(),
                custom_attributes: attrs,
                create_time: Some(pbjson_types::Timestamp { seconds: 1_800_000_000, nanos: 0 }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let m = map(fact(&p));
        let account = map(m["account"].clone());
        assert_eq!(account["name"], Fact::String("Acme".into()));
        assert_eq!(account["create_time"], Fact::String("2027-01-15T08:00:00Z".into()));
        let attrs = map(account["custom_attributes"].clone());
        assert_eq!(map(attrs["seats"].clone())["int_value"], Fact::Int(40), "{attrs:?}");
        assert!(!account.contains_key("update_time"), "an unset message is absent");
    }
}
