//! `event.data`: an event's payload as a CEL fact, read straight from its
//! protobuf encoding by a plan made once per message type from the
//! descriptors — no JSON and no `DynamicMessage` in between: each cost more
//! than most conditions that read the payload (docs/benchmarks.md, rule
//! throughput).
//!
//! Every field is present by its proto name with its default when unset,
//! except fields with presence (`optional`, messages, oneof members), which
//! are present only when set, as `has(event.data.f)` expects. Integers of
//! every width are ints (a uint64 beyond the int range is a double), floats
//! and doubles are doubles, enum values are their names (an unknown number
//! stays a number), bytes are base64, maps are maps with string keys, and
//! Timestamp and Duration are strings as proto3 JSON writes them.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use banso_cel::Fact;
use banso_events::Payload;
use base64::Engine as _;
use prost::encoding::{WireType, decode_key, decode_varint};
use prost_reflect::{Cardinality, DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};

/// The payload as a fact; an empty map if it cannot be read.
pub(crate) fn fact(p: &Payload) -> Fact {
    read(p).unwrap_or_else(|| Fact::Map(BTreeMap::new()))
}

/// The payload as a [`Record`](banso_cel::Record): encoded once, when a
/// condition first reads one of its fields, and each field then decoded
/// alone when first read.
pub(crate) struct Fields<'e> {
    payload: &'e Payload,
    body: OnceLock<Option<Body>>,
}

/// A payload encoded: its message's plan, the encoding, and where the
/// message lies in it.
struct Body {
    message: usize,
    buf: Vec<u8>,
    range: std::ops::Range<usize>,
}

impl<'e> Fields<'e> {
    pub(crate) fn new(payload: &'e Payload) -> Self {
        Fields { payload, body: OnceLock::new() }
    }

    fn body(&self) -> Option<(&'static Plans, usize, &[u8])> {
        let plans = plans()?;
        let body = self
            .body
            .get_or_init(|| {
                let mut buf = Vec::with_capacity(self.payload.encoded_len());
                self.payload.encode(&mut buf);
                let mut bytes = buf.as_slice();
                let (number, _) = decode_key(&mut bytes).ok()?;
                let len = usize::try_from(decode_varint(&mut bytes).ok()?).ok()?;
                let start = buf.len() - bytes.len();
                let field = plans.messages[plans.envelope].fields.iter().find(|f| f.number == number)?;
                let Ty::Message(m) = field.ty else { return None };
                buf.get(start..start + len)?;
                Some(Body { message: m, buf, range: start..start + len })
            })
            .as_ref()?;
        Some((plans, body.message, body.buf.get(body.range.clone())?))
    }
}

impl banso_cel::Record for Fields<'_> {
    fn len(&self) -> usize {
        self.body().map_or(0, |(plans, m, _)| plans.messages[m].fields.len())
    }

    fn index(&self, name: &str) -> Option<usize> {
        let (plans, m, _) = self.body()?;
        plans.messages[m].fields.iter().position(|f| f.name.len() == name.len() && f.name == name)
    }

    fn field(&self, i: usize) -> Option<Fact> {
        let (plans, m, body) = self.body()?;
        plans.field(m, body, i)
    }

    fn fact(&self) -> Fact {
        fact(self.payload)
    }
}

fn read(p: &Payload) -> Option<Fact> {
    let plans = plans()?;
    thread_local! {
        // One buffer per thread: encoding a payload allocates nothing after
        // the first event.
        static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        buf.clear();
        // The oneof encodes as its envelope field: tag, length, message.
        p.encode(buf);
        let mut bytes = buf.as_slice();
        let (number, _) = decode_key(&mut bytes).ok()?;
        let len = usize::try_from(decode_varint(&mut bytes).ok()?).ok()?;
        let body = bytes.get(..len)?;
        let field = plans.messages[plans.envelope].fields.iter().find(|f| f.number == number)?;
        let Ty::Message(m) = field.ty else { return None };
        plans.message(m, body)
    })
}

/// How to read each message type of the pool, made once.
struct Plans {
    messages: Vec<Plan>,
    /// Each enum's value names by number.
    enums: Vec<HashMap<i32, String>>,
    envelope: usize,
}

struct Plan {
    /// Timestamp and Duration are read into their JSON strings.
    well_known: Option<WellKnown>,
    fields: Vec<FieldPlan>,
}

#[derive(Clone, Copy)]
enum WellKnown {
    Timestamp,
    Duration,
}

struct FieldPlan {
    number: u32,
    name: String,
    ty: Ty,
    /// Present only when set (otherwise present with its default).
    presence: bool,
    shape: Shape,
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Single,
    List,
    /// A map entry's key and value types.
    Map(Ty, Ty),
}

#[derive(Clone, Copy, PartialEq)]
enum Ty {
    Bool,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Float,
    Double,
    String,
    Bytes,
    /// By its index in [`Plans::enums`].
    Enum(usize),
    /// By its index in [`Plans::messages`].
    Message(usize),
}

fn plans() -> Option<&'static Plans> {
    static PLANS: OnceLock<Option<Plans>> = OnceLock::new();
    PLANS.get_or_init(make).as_ref()
}

fn make() -> Option<Plans> {
    let pool = DescriptorPool::decode(banso_proto::FILE_DESCRIPTOR_SET).ok()?;
    let messages: Vec<MessageDescriptor> = pool.all_messages().collect();
    let at: HashMap<String, usize> = messages.iter().enumerate().map(|(i, m)| (m.full_name().to_string(), i)).collect();
    let enums: Vec<_> = pool.all_enums().collect();
    let enum_at: HashMap<String, usize> =
        enums.iter().enumerate().map(|(i, e)| (e.full_name().to_string(), i)).collect();
    let ty = |k: &Kind| -> Option<Ty> {
        Some(match k {
            Kind::Bool => Ty::Bool,
            Kind::Int32 => Ty::Int32,
            Kind::Int64 => Ty::Int64,
            Kind::Uint32 => Ty::Uint32,
            Kind::Uint64 => Ty::Uint64,
            Kind::Sint32 => Ty::Sint32,
            Kind::Sint64 => Ty::Sint64,
            Kind::Fixed32 => Ty::Fixed32,
            Kind::Fixed64 => Ty::Fixed64,
            Kind::Sfixed32 => Ty::Sfixed32,
            Kind::Sfixed64 => Ty::Sfixed64,
            Kind::Float => Ty::Float,
            Kind::Double => Ty::Double,
            Kind::String => Ty::String,
            Kind::Bytes => Ty::Bytes,
            Kind::Enum(e) => Ty::Enum(*enum_at.get(e.full_name())?),
            Kind::Message(m) => Ty::Message(*at.get(m.full_name())?),
        })
    };
    let field = |f: FieldDescriptor| -> Option<FieldPlan> {
        let shape = if f.is_map() {
            let entry = f.kind().as_message()?.clone();
            Shape::Map(ty(&entry.map_entry_key_field().kind())?, ty(&entry.map_entry_value_field().kind())?)
        } else if f.cardinality() == Cardinality::Repeated {
            Shape::List
        } else {
            Shape::Single
        };
        Some(FieldPlan {
            number: f.number(),
            name: f.name().to_string(),
            ty: ty(&f.kind())?,
            presence: f.supports_presence(),
            shape,
        })
    };
    let plans = messages
        .iter()
        .map(|m| {
            Some(Plan {
                well_known: match m.full_name() {
                    "google.protobuf.Timestamp" => Some(WellKnown::Timestamp),
                    "google.protobuf.Duration" => Some(WellKnown::Duration),
                    _ => None,
                },
                fields: m.fields().map(field).collect::<Option<Vec<_>>>()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Plans {
        messages: plans,
        enums: enums.iter().map(|e| e.values().map(|v| (v.number(), v.name().to_string())).collect()).collect(),
        envelope: *at.get("banso.events.v1.Envelope")?,
    })
}

/// A field's values as read so far.
enum Read {
    Unset,
    One(Fact),
    Many(Vec<Fact>),
    Entries(BTreeMap<String, Fact>),
}

impl Plans {
    fn message(&self, m: usize, mut bytes: &[u8]) -> Option<Fact> {
        let plan = &self.messages[m];
        if let Some(wk) = plan.well_known {
            return well_known(wk, bytes);
        }
        let mut read: Vec<Read> = plan.fields.iter().map(|_| Read::Unset).collect();
        while !bytes.is_empty() {
            let (number, wire) = decode_key(&mut bytes).ok()?;
            let Some(at) = plan.fields.iter().position(|f| f.number == number) else {
                skip(wire, &mut bytes)?;
                continue;
            };
            self.accumulate(&plan.fields[at], wire, &mut bytes, &mut read[at])?;
        }
        let mut map = BTreeMap::new();
        for (f, r) in plan.fields.iter().zip(read) {
            if let Some(fact) = self.finish(f, r) {
                map.insert(f.name.clone(), fact);
            }
        }
        Some(Fact::Map(map))
    }

    /// Field `at` of message `m` alone, the others skipped: `None` when it
    /// is not present or cannot be read. What this module reads of a
    /// message prost encoded (every payload: see [`Fields`]) always reads,
    /// so the field is the one [`Plans::message`] gives.
    fn field(&self, m: usize, mut bytes: &[u8], at: usize) -> Option<Fact> {
        let plan = &self.messages[m];
        if plan.well_known.is_some() {
            return None;
        }
        let f = plan.fields.get(at)?;
        let mut read = Read::Unset;
        while !bytes.is_empty() {
            let (number, wire) = decode_key(&mut bytes).ok()?;
            if number == f.number {
                self.accumulate(f, wire, &mut bytes, &mut read)?;
            } else {
                skip(wire, &mut bytes)?;
            }
        }
        self.finish(f, read)
    }

    /// One occurrence of field `f` on the wire, added to what was read of it.
    fn accumulate(&self, f: &FieldPlan, wire: WireType, bytes: &mut &[u8], read: &mut Read) -> Option<()> {
        match f.shape {
            Shape::Single => *read = Read::One(self.value(f.ty, wire, bytes)?),
            Shape::List => {
                if !matches!(read, Read::Many(_)) {
                    *read = Read::Many(Vec::new());
                }
                let Read::Many(list) = read else { return None };
                if wire == WireType::LengthDelimited && packable(f.ty) {
                    let mut packed = length_delimited(bytes)?;
                    let inner = wire_of(f.ty);
                    while !packed.is_empty() {
                        list.push(self.value(f.ty, inner, &mut packed)?);
                    }
                } else {
                    list.push(self.value(f.ty, wire, bytes)?);
                }
            }
            Shape::Map(kt, vt) => {
                let mut entry = length_delimited(bytes)?;
                let (mut key, mut value) = (None, None);
                while !entry.is_empty() {
                    let (n, w) = decode_key(&mut entry).ok()?;
                    match n {
                        // A uint64 key beyond the int range stays exact.
                        1 if matches!(kt, Ty::Uint64 | Ty::Fixed64) && w == wire_of(kt) => {
                            let u = match kt {
                                Ty::Uint64 => decode_varint(&mut entry).ok()?,
                                _ => u64::from_le_bytes(take(&mut entry)?),
                            };
                            key = Some(Fact::String(u.to_string()));
                        }
                        1 => key = Some(self.value(kt, w, &mut entry)?),
                        2 => value = Some(self.value(vt, w, &mut entry)?),
                        _ => skip(w, &mut entry)?,
                    }
                }
                let key = match key.unwrap_or_else(|| self.default(kt)) {
                    Fact::String(s) => s,
                    Fact::Int(i) => i.to_string(),
                    Fact::Bool(b) => b.to_string(),
                    _ => return None,
                };
                let value = value.unwrap_or_else(|| self.default(vt));
                match read {
                    Read::Entries(map) => {
                        map.insert(key, value);
                    }
                    slot => *slot = Read::Entries(BTreeMap::from([(key, value)])),
                }
            }
        }
        Some(())
    }

    /// A field's value once every occurrence is read: its default when it
    /// was not on the wire, unless it has presence (then absent).
    fn finish(&self, f: &FieldPlan, r: Read) -> Option<Fact> {
        Some(match r {
            Read::One(x) => x,
            Read::Many(l) => Fact::List(l),
            Read::Entries(e) => Fact::Map(e),
            Read::Unset if f.presence => return None,
            Read::Unset => match f.shape {
                Shape::Single => self.default(f.ty),
                Shape::List => Fact::List(Vec::new()),
                Shape::Map(..) => Fact::Map(BTreeMap::new()),
            },
        })
    }

    fn value(&self, ty: Ty, wire: WireType, bytes: &mut &[u8]) -> Option<Fact> {
        if wire != wire_of(ty) {
            return None;
        }
        Some(match ty {
            Ty::Bool => Fact::Bool(decode_varint(bytes).ok()? != 0),
            // int32 and enums are sign-extended to 64 bits on the wire.
            Ty::Int32 => Fact::Int(i64::from(decode_varint(bytes).ok()? as i32)),
            Ty::Int64 => Fact::Int(decode_varint(bytes).ok()? as i64),
            Ty::Uint32 => Fact::Int(i64::from(decode_varint(bytes).ok()? as u32)),
            Ty::Uint64 => uint(decode_varint(bytes).ok()?),
            Ty::Sint32 => Fact::Int(i64::from(zigzag(decode_varint(bytes).ok()?) as i32)),
            Ty::Sint64 => Fact::Int(zigzag(decode_varint(bytes).ok()?)),
            Ty::Fixed32 => Fact::Int(i64::from(u32::from_le_bytes(take(bytes)?))),
            Ty::Sfixed32 => Fact::Int(i64::from(i32::from_le_bytes(take(bytes)?))),
            Ty::Float => Fact::Double(f64::from(f32::from_le_bytes(take(bytes)?))),
            Ty::Fixed64 => uint(u64::from_le_bytes(take(bytes)?)),
            Ty::Sfixed64 => Fact::Int(i64::from_le_bytes(take(bytes)?)),
            Ty::Double => Fact::Double(f64::from_le_bytes(take(bytes)?)),
            Ty::String => Fact::String(std::str::from_utf8(length_delimited(bytes)?).ok()?.to_string()),
            Ty::Bytes => Fact::String(base64::engine::general_purpose::STANDARD.encode(length_delimited(bytes)?)),
            Ty::Enum(e) => self.enum_value(e, decode_varint(bytes).ok()? as i32),
            Ty::Message(m) => self.message(m, length_delimited(bytes)?)?,
        })
    }

    fn enum_value(&self, e: usize, n: i32) -> Fact {
        match self.enums[e].get(&n) {
            Some(name) => Fact::String(name.clone()),
            None => Fact::Int(i64::from(n)),
        }
    }

    /// The value of an unset field without presence.
    fn default(&self, ty: Ty) -> Fact {
        match ty {
            Ty::Bool => Fact::Bool(false),
            Ty::Float | Ty::Double => Fact::Double(0.0),
            Ty::String | Ty::Bytes => Fact::String(String::new()),
            Ty::Enum(e) => self.enum_value(e, 0),
            Ty::Message(_) => Fact::Null,
            _ => Fact::Int(0),
        }
    }
}

/// A uint64 is an int when it fits, a double beyond.
fn uint(u: u64) -> Fact {
    i64::try_from(u).map_or(Fact::Double(u as f64), Fact::Int)
}

fn zigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn wire_of(ty: Ty) -> WireType {
    match ty {
        Ty::Fixed32 | Ty::Sfixed32 | Ty::Float => WireType::ThirtyTwoBit,
        Ty::Fixed64 | Ty::Sfixed64 | Ty::Double => WireType::SixtyFourBit,
        Ty::String | Ty::Bytes | Ty::Message(_) => WireType::LengthDelimited,
        _ => WireType::Varint,
    }
}

fn packable(ty: Ty) -> bool {
    wire_of(ty) != WireType::LengthDelimited
}

fn take<const N: usize>(bytes: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = bytes.split_first_chunk::<N>()?;
    *bytes = rest;
    Some(*head)
}

fn length_delimited<'b>(bytes: &mut &'b [u8]) -> Option<&'b [u8]> {
    let len = usize::try_from(decode_varint(bytes).ok()?).ok()?;
    let (head, rest) = (bytes.get(..len)?, bytes.get(len..)?);
    *bytes = rest;
    Some(head)
}

fn skip(wire: WireType, bytes: &mut &[u8]) -> Option<()> {
    match wire {
        WireType::Varint => {
            decode_varint(bytes).ok()?;
        }
        WireType::SixtyFourBit => {
            take::<8>(bytes)?;
        }
        WireType::ThirtyTwoBit => {
            take::<4>(bytes)?;
        }
        WireType::LengthDelimited => {
            length_delimited(bytes)?;
        }
        WireType::StartGroup | WireType::EndGroup => return None,
    }
    Some(())
}

/// Timestamp and Duration as proto3 JSON writes them: RFC 3339 in UTC, and
/// seconds with a `s`, each with 0, 3, 6 or 9 fractional digits.
fn well_known(wk: WellKnown, mut bytes: &[u8]) -> Option<Fact> {
    let (mut seconds, mut nanos) = (0i64, 0i32);
    while !bytes.is_empty() {
        let (n, w) = decode_key(&mut bytes).ok()?;
        match (n, w) {
            (1, WireType::Varint) => seconds = decode_varint(&mut bytes).ok()? as i64,
            (2, WireType::Varint) => nanos = decode_varint(&mut bytes).ok()? as i32,
            _ => skip(w, &mut bytes)?,
        }
    }
    Some(match wk {
        // Out of range (negative nanos included) is null, never unreadable:
        // a payload reads field by field as it reads whole.
        WellKnown::Timestamp => {
            match u32::try_from(nanos).ok().and_then(|n| chrono::DateTime::from_timestamp(seconds, n)) {
                Some(t) => Fact::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                None => Fact::Null,
            }
        }
        WellKnown::Duration => {
            let negative = seconds < 0 || nanos < 0;
            let (s, n) = (seconds.unsigned_abs(), nanos.unsigned_abs());
            let sign = if negative { "-" } else { "" };
            Fact::String(match n {
                0 => format!("{sign}{s}s"),
                n if n % 1_000_000 == 0 => format!("{sign}{s}.{:03}s", n / 1_000_000),
                n if n % 1_000 == 0 => format!("{sign}{s}.{:06}s", n / 1_000),
                n => format!("{sign}{s}.{n:09}s"),
            })
        }
    })
}

/// The reading this module replaced (prost-reflect's `DynamicMessage`),
/// kept as the oracle the plans are checked against.
#[cfg(test)]
mod oracle {
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
    pub(super) fn fact(p: &Payload) -> Fact {
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

    /// Every event type of the envelope, with its fields filled in many
    /// ways (unset, defaults, negative, beyond the int range, unknown enum
    /// numbers, Japanese text, nested messages, lists, maps, timestamps and
    /// durations with every precision), reads as the `DynamicMessage`
    /// oracle reads it.
    #[test]
    fn the_plans_read_every_event_as_the_oracle_does() {
        use prost::Message as _;
        use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MapKey, MessageDescriptor, Value};

        struct Gen(u64);
        impl Gen {
            fn next(&mut self) -> u64 {
                self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                self.0 >> 33
            }
            fn pick(&mut self, n: u64) -> u64 {
                self.next() % n
            }
        }

        fn scalar(kind: &Kind, g: &mut Gen, depth: usize) -> Option<Value> {
            let i = g.pick(6);
            Some(match kind {
                Kind::Bool => Value::Bool(i.is_multiple_of(2)),
                Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                    Value::I32([0, -1, 7, i32::MIN, i32::MAX, -300][i as usize])
                }
                Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                    Value::I64([0, -1, 7, i64::MIN, i64::MAX, -300][i as usize])
                }
                Kind::Uint32 | Kind::Fixed32 => Value::U32([0, 1, 7, u32::MAX, 300, 65_536][i as usize]),
                Kind::Uint64 | Kind::Fixed64 => Value::U64([0, 1, 7, u64::MAX, 1 << 63, 300][i as usize]),
                Kind::Float => Value::F32([0.0, -1.5, 7.25, 1e30, f32::MIN_POSITIVE, 3.0][i as usize]),
                Kind::Double => Value::F64([0.0, -1.5, 7.25, 1e300, f64::MIN_POSITIVE, 42.0][i as usize]),
                Kind::String => Value::String(
                    ["", "acme", "顧客の声", "a\"b\\c", "é", "x".repeat(300).as_str()][i as usize].to_string(),
                ),
                Kind::Bytes => Value::Bytes(bytes::Bytes::from(vec![0u8, 255, i as u8])),
                Kind::Enum(e) => Value::EnumNumber(match i {
                    0 => 0,
                    5 => 99,
                    _ => e.values().nth((i as usize) % e.values().len()).map_or(0, |v| v.number()),
                }),
                Kind::Message(m) => Value::Message(message(m, g, depth + 1)?),
            })
        }

        fn message(d: &MessageDescriptor, g: &mut Gen, depth: usize) -> Option<DynamicMessage> {
            if depth > 4 {
                return None;
            }
            let mut m = DynamicMessage::new(d.clone());
            match d.full_name() {
                "google.protobuf.Timestamp" | "google.protobuf.Duration" => {
                    let secs = [0i64, 1_800_000_000, 1_800_000_001, 86_400][g.pick(4) as usize];
                    let nanos = [0i32, 500_000_000, 123_456_000, 1][g.pick(4) as usize];
                    m.set_field_by_name("seconds", Value::I64(secs));
                    m.set_field_by_name("nanos", Value::I32(nanos));
                    return Some(m);
                }
                _ => {}
            }
            for f in d.fields() {
                // About one field in four stays unset.
                if g.pick(4) == 0 {
                    continue;
                }
                let v = if f.is_map() {
                    let entry = f.kind().as_message()?.clone();
                    let (kf, vf) = (entry.map_entry_key_field(), entry.map_entry_value_field());
                    let mut map = std::collections::HashMap::new();
                    for k in 0..g.pick(3) {
                        let key = match kf.kind() {
                            Kind::String => MapKey::String(format!("k{k}")),
                            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(k as i32 - 1),
                            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(k as i64 - 1),
                            Kind::Uint32 | Kind::Fixed32 => MapKey::U32(k as u32),
                            Kind::Uint64 | Kind::Fixed64 => MapKey::U64(if k == 2 { u64::MAX } else { k }),
                            Kind::Bool => MapKey::Bool(k == 1),
                            _ => continue,
                        };
                        let Some(v) = scalar(&vf.kind(), g, depth) else { continue };
                        map.insert(key, v);
                    }
                    Value::Map(map)
                } else if f.is_list() {
                    let items: Vec<Value> = (0..g.pick(3)).filter_map(|_| scalar(&f.kind(), g, depth)).collect();
                    Value::List(items)
                } else {
                    let Some(v) = scalar(&f.kind(), g, depth) else { continue };
                    v
                };
                m.set_field(&f, v);
            }
            Some(m)
        }

        let pool = DescriptorPool::decode(banso_proto::FILE_DESCRIPTOR_SET).unwrap();
        let envelope = pool.get_message_by_name("banso.events.v1.Envelope").unwrap();
        let oneof = envelope.oneofs().find(|o| o.name() == "payload").expect("the payload oneof");
        let mut g = Gen(20_261_205);
        let (mut checked, mut read_something) = (0, 0);
        for field in oneof.fields() {
            let Kind::Message(d) = field.kind() else { panic!("{} is not a message", field.name()) };
            for _ in 0..40 {
                let body = message(&d, &mut g, 0).unwrap();
                let mut env = DynamicMessage::new(envelope.clone());
                env.set_field(&field, Value::Message(body));
                let decoded = banso_events::Envelope::decode(env.encode_to_vec().as_slice()).unwrap();
                let p = decoded.payload.expect("a payload");
                let read = fact(&p);
                assert_eq!(read, super::oracle::fact(&p), "{}", field.name());
                // Field by field, each decoded alone, as read whole.
                let record = Fields::new(&p);
                let whole = map(read.clone());
                assert_eq!(banso_cel::Record::len(&record), d.fields().count());
                for f in d.fields() {
                    let at = banso_cel::Record::index(&record, f.name()).expect("every field has a place");
                    assert_eq!(
                        banso_cel::Record::field(&record, at),
                        whole.get(f.name()).cloned(),
                        "{}.{}",
                        field.name(),
                        f.name()
                    );
                }
                assert_eq!(banso_cel::Record::index(&record, "no_such_field"), None);
                // Both failing alike (an empty map each) proves nothing.
                if matches!(&read, Fact::Map(m) if !m.is_empty()) {
                    read_something += 1;
                }
                checked += 1;
            }
        }
        assert!(oneof.fields().count() >= 18, "every event type");
        assert_eq!(checked, 40 * oneof.fields().count());
        assert!(read_something * 10 >= checked * 9, "{read_something} of {checked} read into a non-empty map");
    }
}
