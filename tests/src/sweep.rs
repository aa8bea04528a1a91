//! Bad input generated from descriptors: every place in a request message
//! where a value can go (a "leaf", reached through nested messages, the
//! first element of a repeated field, the one entry of a map), and the
//! hostile values each kind of leaf gets. The sweep (tests/sweep.rs) sends
//! them to every method; nothing here names a method or a message of ours.

use std::{collections::HashMap, fmt};

use base64::Engine as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage as _, Value};

/// How deep into nested messages leaves are looked for.
pub const MAX_DEPTH: usize = 5;
/// The length of the long strings (in characters).
pub const LONG: usize = 100_000;
/// The size of the big lists and maps (past every documented limit).
pub const MANY: usize = 10_001;

/// One step from a message to a leaf.
#[derive(Clone)]
pub enum Step {
    /// A field of the current message.
    Field(FieldDescriptor),
    /// The first element of the repeated field just named (made if absent).
    First,
    /// The key of the map field just named (its only entry).
    MapKey,
    /// The value of the map field just named (its only entry).
    MapValue,
}

/// What a leaf holds, which decides the values it gets.
#[derive(Clone, Debug, PartialEq)]
pub enum LeafKind {
    Scalar(Kind),
    /// `google.protobuf.Timestamp`, set whole.
    Timestamp,
    /// A calendar date (a message of exactly `year`, `month`, `day`), set whole.
    Date,
    /// `google.protobuf.FieldMask`, set whole.
    FieldMask,
    /// A repeated or map field as a whole (its size).
    Many,
}

/// A place in a request where a value goes.
#[derive(Clone)]
pub struct Leaf {
    pub path: Vec<Step>,
    /// Dotted, e.g. `account.custom_attributes{value}.string_value`.
    pub name: String,
    pub kind: LeafKind,
    /// The name of the field (or the map/list field) the value lands in.
    pub field_name: String,
}

impl fmt::Debug for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)
    }
}

impl Leaf {
    /// A string leaf that holds ids: `id`, `*_id`, or an element of `ids`/`*_ids`.
    pub fn is_id(&self) -> bool {
        self.kind == LeafKind::Scalar(Kind::String) && is_id_name(&self.field_name)
    }
}

fn is_date(desc: &MessageDescriptor) -> bool {
    let mut names: Vec<String> = desc.fields().map(|f| f.name().to_owned()).collect();
    names.sort();
    names == ["day", "month", "year"] && desc.fields().all(|f| matches!(f.kind(), Kind::Int32))
}

fn message_leaf(desc: &MessageDescriptor) -> Option<LeafKind> {
    match desc.full_name() {
        "google.protobuf.Timestamp" => Some(LeafKind::Timestamp),
        "google.protobuf.FieldMask" => Some(LeafKind::FieldMask),
        _ if is_date(desc) => Some(LeafKind::Date),
        _ => None,
    }
}

/// Every leaf of `desc`, to [`MAX_DEPTH`] nested messages.
pub fn leaves(desc: &MessageDescriptor) -> Vec<Leaf> {
    let mut out = Vec::new();
    walk(desc, 0, &mut Vec::new(), "", &mut out);
    out
}

fn walk(desc: &MessageDescriptor, depth: usize, path: &mut Vec<Step>, prefix: &str, out: &mut Vec<Leaf>) {
    if depth >= MAX_DEPTH {
        return;
    }
    for f in desc.fields() {
        let name = if prefix.is_empty() { f.name().to_owned() } else { format!("{prefix}.{}", f.name()) };
        path.push(Step::Field(f.clone()));
        if f.is_map() || f.is_list() {
            out.push(Leaf {
                path: path.clone(),
                name: name.clone(),
                kind: LeafKind::Many,
                field_name: f.name().to_owned(),
            });
        }
        if f.is_map() {
            let Kind::Message(entry) = f.kind() else { unreachable!("a map field is an entry message") };
            let (k, v) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            path.push(Step::MapKey);
            out.push(Leaf {
                path: path.clone(),
                name: format!("{name}{{key}}"),
                kind: LeafKind::Scalar(k.kind()),
                field_name: f.name().to_owned(),
            });
            path.pop();
            path.push(Step::MapValue);
            value_leaves(&v.kind(), depth, path, &format!("{name}{{value}}"), f.name(), out);
            path.pop();
        } else if f.is_list() {
            path.push(Step::First);
            value_leaves(&f.kind(), depth, path, &format!("{name}[0]"), f.name(), out);
            path.pop();
        } else {
            value_leaves(&f.kind(), depth, path, &name, f.name(), out);
        }
        path.pop();
    }
}

fn value_leaves(kind: &Kind, depth: usize, path: &mut Vec<Step>, name: &str, field_name: &str, out: &mut Vec<Leaf>) {
    match kind {
        Kind::Message(m) => match message_leaf(m) {
            Some(k) => {
                out.push(Leaf { path: path.clone(), name: name.to_owned(), kind: k, field_name: field_name.to_owned() })
            }
            None => walk(m, depth + 1, path, name, out),
        },
        k => out.push(Leaf {
            path: path.clone(),
            name: name.to_owned(),
            kind: LeafKind::Scalar(k.clone()),
            field_name: field_name.to_owned(),
        }),
    }
}

/// Puts `value` at `path` in `msg`, making the messages, the list element
/// or the map entry on the way.
pub fn apply(msg: &mut DynamicMessage, path: &[Step], value: Value) {
    let Some((Step::Field(f), rest)) = path.split_first() else { panic!("a path starts with a field") };
    if rest.is_empty() {
        msg.set_field(f, value);
        return;
    }
    let kind = f.kind();
    let slot = msg.get_field_mut(f);
    match &rest[0] {
        Step::First => {
            let list = slot.as_list_mut().expect("a repeated field");
            if list.is_empty() {
                list.push(Value::default_value(&kind));
            }
            place(&mut list[0], &rest[1..], value);
        }
        Step::MapKey => {
            let Kind::Message(entry) = kind else { unreachable!() };
            let map = slot.as_map_mut().expect("a map field");
            let old = map.drain().next().map(|(_, v)| v);
            let v = old.unwrap_or_else(|| Value::default_value(&entry.map_entry_value_field().kind()));
            map.insert(value.into_map_key().expect("a key value"), v);
        }
        Step::MapValue => {
            let Kind::Message(entry) = kind else { unreachable!() };
            let map = slot.as_map_mut().expect("a map field");
            if map.is_empty() {
                map.insert(
                    default_key(&entry.map_entry_key_field().kind()),
                    Value::default_value(&entry.map_entry_value_field().kind()),
                );
            }
            let v = map.values_mut().next().expect("one entry");
            place(v, &rest[1..], value);
        }
        Step::Field(_) => apply(slot.as_message_mut().expect("a message field"), rest, value),
    }
}

/// The repeated or map field at `leaf` with `n` elements: copies of its
/// first element (or a default one), or entries with distinct keys.
fn many(msg: &mut DynamicMessage, leaf: &Leaf, n: usize) {
    let Some(Step::Field(f)) = leaf.path.last() else { panic!("a size applies to a field") };
    let current = get(msg, &leaf.path);
    let value = if f.is_map() {
        let Kind::Message(entry) = f.kind() else { unreachable!() };
        let (kf, vf) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        let first = current.as_ref().and_then(|v| v.as_map()).and_then(|m| m.values().next().cloned());
        let v = first.unwrap_or_else(|| Value::default_value(&vf.kind()));
        let key = |i: usize| match kf.kind() {
            Kind::String => MapKey::String(format!("k{i}")),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(i as i32),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(i as i64),
            Kind::Uint32 | Kind::Fixed32 => MapKey::U32(i as u32),
            Kind::Bool => MapKey::Bool(i.is_multiple_of(2)),
            _ => MapKey::U64(i as u64),
        };
        Value::Map((0..n).map(|i| (key(i), v.clone())).collect())
    } else {
        let first = current.as_ref().and_then(|v| v.as_list()).and_then(|l| l.first().cloned());
        Value::List(vec![first.unwrap_or_else(|| Value::default_value(&f.kind())); n])
    };
    apply(msg, &leaf.path, value);
}

/// The value at `path` in `msg`, if every step on the way is set.
pub fn get(msg: &DynamicMessage, path: &[Step]) -> Option<Value> {
    let Some((Step::Field(f), rest)) = path.split_first() else { return None };
    if !msg.has_field(f) {
        return None;
    }
    let v = msg.get_field(f).into_owned();
    match rest.first() {
        None => Some(v),
        Some(Step::First) => {
            let first = v.as_list()?.first()?.clone();
            match &rest[1..] {
                [] => Some(first),
                more => get(first.as_message()?, more),
            }
        }
        Some(Step::MapKey | Step::MapValue) => None,
        Some(Step::Field(_)) => get(v.as_message()?, rest),
    }
}

fn place(slot: &mut Value, rest: &[Step], value: Value) {
    if rest.is_empty() {
        *slot = value;
    } else {
        apply(slot.as_message_mut().expect("a message element"), rest, value);
    }
}

fn default_key(kind: &Kind) -> MapKey {
    match kind {
        Kind::String => MapKey::String("k".into()),
        Kind::Bool => MapKey::Bool(true),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(1),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(1),
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(1),
        _ => MapKey::U64(1),
    }
}

/// A value for a leaf, made when the call is sent (the long ones are big).
#[derive(Clone, Debug)]
pub enum Gen {
    Long {
        japanese: bool,
    },
    Small(Value),
    /// A FieldMask of `n` paths of `len` characters.
    Mask {
        n: usize,
        len: usize,
    },
    Timestamp {
        seconds: i64,
        nanos: i32,
    },
    Date {
        year: i32,
        month: i32,
        day: i32,
    },
    Text(String),
    /// `((((…[{` nested to [`LONG`] characters.
    Nested,
    /// This many elements (copies of the first, or entries with distinct keys).
    Many(usize),
}

/// `n` characters: ASCII, or Japanese (three UTF-8 bytes each).
pub fn long_text(n: usize, japanese: bool) -> String {
    if japanese { "健全性スコア".chars().cycle().take(n).collect() } else { "x".repeat(n) }
}

impl Gen {
    /// Puts this value at `leaf` in `msg`.
    pub fn apply_to(&self, msg: &mut DynamicMessage, leaf: &Leaf) {
        match self {
            Gen::Many(n) => many(msg, leaf, *n),
            g => apply(msg, &leaf.path, g.value(leaf)),
        }
    }

    /// The value, shaped for `leaf` (not for [`Gen::Many`]).
    pub fn value(&self, leaf: &Leaf) -> Value {
        let message = |leaf: &Leaf| -> MessageDescriptor {
            let f = leaf
                .path
                .iter()
                .rev()
                .find_map(|s| if let Step::Field(f) = s { Some(f.clone()) } else { None })
                .expect("a field");
            match f.kind() {
                Kind::Message(m) if f.is_map() => match m.map_entry_value_field().kind() {
                    Kind::Message(v) => v,
                    _ => unreachable!(),
                },
                Kind::Message(m) => m,
                _ => unreachable!("{} is not a message leaf", leaf.name),
            }
        };
        match self {
            Gen::Long { japanese } => {
                let s = long_text(LONG, *japanese);
                match &leaf.kind {
                    LeafKind::Scalar(Kind::Bytes) => Value::Bytes(s.into_bytes().into()),
                    _ => Value::String(s),
                }
            }
            Gen::Many(_) => unreachable!("a size is applied with apply_to"),
            Gen::Nested => {
                let s: String =
                    "((([{".chars().cycle().take(LONG / 2).chain("}])))".chars().cycle().take(LONG / 2)).collect();
                Gen::Text(s).value(leaf)
            }
            Gen::Text(s) => match &leaf.kind {
                LeafKind::Scalar(Kind::Bytes) => Value::Bytes(s.clone().into_bytes().into()),
                _ => Value::String(s.clone()),
            },
            Gen::Small(v) => v.clone(),
            Gen::Mask { n, len } => {
                let desc = message(leaf);
                let mut m = DynamicMessage::new(desc.clone());
                let paths =
                    (0..*n).map(|i| Value::String(format!("{i:03}{}", "p".repeat(len.saturating_sub(3))))).collect();
                m.set_field_by_name("paths", Value::List(paths));
                Value::Message(m)
            }
            Gen::Timestamp { seconds, nanos } => {
                let mut m = DynamicMessage::new(message(leaf));
                m.set_field_by_name("seconds", Value::I64(*seconds));
                m.set_field_by_name("nanos", Value::I32(*nanos));
                Value::Message(m)
            }
            Gen::Date { year, month, day } => {
                let mut m = DynamicMessage::new(message(leaf));
                m.set_field_by_name("year", Value::I32(*year));
                m.set_field_by_name("month", Value::I32(*month));
                m.set_field_by_name("day", Value::I32(*day));
                Value::Message(m)
            }
        }
    }
}

/// The hostile values of a leaf, each with a label.
pub fn hostile(leaf: &Leaf) -> Vec<(String, Gen)> {
    let small = |vs: Vec<(String, Value)>| vs.into_iter().map(|(l, v)| (l, Gen::Small(v))).collect::<Vec<_>>();
    match &leaf.kind {
        LeafKind::Scalar(Kind::String) | LeafKind::Scalar(Kind::Bytes) => vec![
            (format!("{LONG} ASCII characters"), Gen::Long { japanese: false }),
            (format!("{LONG} Japanese characters"), Gen::Long { japanese: true }),
            // PostgreSQL refuses U+0000 in text: a value that reaches a
            // query unchecked fails there.
            ("text with a NUL character".into(), Gen::Text("nul\u{0}here".into())),
            // Anything parsed (expressions, orderings, tokens) meets its
            // nesting limit, not the end of the stack.
            (format!("{LONG} nested brackets"), Gen::Nested),
            // Deep but short, under any length limit: "((…(1)…))".
            ("1 nested 999 times in parentheses".into(), Gen::Text(format!("{}1{}", "(".repeat(999), ")".repeat(999)))),
        ],
        // A bool has no bad value.
        LeafKind::Scalar(Kind::Bool) => Vec::new(),
        LeafKind::Scalar(Kind::Int32 | Kind::Sint32 | Kind::Sfixed32) => {
            small([i32::MIN, i32::MAX, 0, -1].map(|v| (format!("{v}"), Value::I32(v))).to_vec())
        }
        LeafKind::Scalar(Kind::Int64 | Kind::Sint64 | Kind::Sfixed64) => small(
            [i64::MIN, i64::MAX, i32::MIN as i64, i32::MAX as i64, u32::MAX as i64, 0, -1]
                .map(|v| (format!("{v}"), Value::I64(v)))
                .to_vec(),
        ),
        LeafKind::Scalar(Kind::Uint32 | Kind::Fixed32) => {
            small([0, u32::MAX].map(|v| (format!("{v}"), Value::U32(v))).to_vec())
        }
        LeafKind::Scalar(Kind::Uint64 | Kind::Fixed64) => {
            small([0, u64::MAX, u32::MAX as u64].map(|v| (format!("{v}"), Value::U64(v))).to_vec())
        }
        LeafKind::Scalar(Kind::Double) => small(
            [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, f64::MIN]
                .map(|v| (format!("{v:e}"), Value::F64(v)))
                .to_vec(),
        ),
        LeafKind::Scalar(Kind::Float) => small(
            [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN]
                .map(|v| (format!("{v:e}"), Value::F32(v)))
                .to_vec(),
        ),
        LeafKind::Scalar(Kind::Enum(_)) => {
            small([999, -1].map(|v| (format!("unknown enum value {v}"), Value::EnumNumber(v))).to_vec())
        }
        LeafKind::Scalar(Kind::Message(_)) => unreachable!("messages are walked, not leaves"),
        LeafKind::Timestamp => {
            // 253402300800 is 10000-01-01T00:00:00Z, one second past the kit's range.
            [
                (i64::MIN, 0),
                (i64::MAX, 0),
                (-1, 0),
                (0, 0),
                (253_402_300_799, 999_999_999),
                (253_402_300_800, 0),
                (1_700_000_000, -1),
                (1_700_000_000, 1_000_000_000),
                (i64::MIN, -1),
            ]
            .into_iter()
            .map(|(seconds, nanos)| (format!("timestamp {seconds}s {nanos}ns"), Gen::Timestamp { seconds, nanos }))
            .collect()
        }
        LeafKind::Date => [
            (i32::MIN, 1, 1),
            (i32::MAX, 12, 31),
            (-1, -1, -1),
            (1, 1, 1),
            (1899, 12, 31),
            (10_000, 1, 1),
            (2024, 2, 30),
            (2023, 2, 29),
            (2024, 0, 1),
            (2024, 13, 1),
            (2024, i32::MIN, 1),
            (2024, i32::MAX, 1),
            (2024, 1, 0),
            (2024, 1, 32),
            (2024, 1, i32::MIN),
            (2024, 1, i32::MAX),
        ]
        .into_iter()
        .map(|(year, month, day)| (format!("date {year}-{month}-{day}"), Gen::Date { year, month, day }))
        .collect(),
        LeafKind::Many => vec![(format!("{MANY} elements"), Gen::Many(MANY))],
        LeafKind::FieldMask => vec![
            ("51 unknown paths of 1000 characters".into(), Gen::Mask { n: 51, len: 1000 }),
            ("51 unknown short paths".into(), Gen::Mask { n: 51, len: 12 }),
        ],
    }
}

/// Garbage page tokens that need nothing from the server.
pub fn garbage_tokens() -> Vec<(String, String)> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let random: [u8; 48] = rand::random();
    let big: Vec<u8> = (0..(LONG / 4 * 3)).map(|_| rand::random::<u8>()).collect();
    vec![
        ("random bytes, base64".into(), b64.encode(random)),
        ("random bytes, standard base64".into(), base64::engine::general_purpose::STANDARD.encode(random)),
        (format!("{LONG} characters of base64"), b64.encode(big)),
        ("not base64".into(), "%%%not a token%%%".into()),
        (format!("{LONG} Japanese characters"), long_text(LONG, true)),
    ]
}

/// Objects seen in a tenant's replies and requests, by message type: the
/// first of each type fills a request's message fields, so a hostile value
/// reaches a request that is otherwise valid.
#[derive(Default, Clone)]
pub struct Objects {
    by_type: HashMap<String, DynamicMessage>,
    /// Every `id` of every object seen, with its message type.
    pub ids: Vec<(String, String)>,
    /// Every other value of an id-like field seen (`request_id`,
    /// `external_id`, `event_id`, `owner_id`…), with `Type.field`: keys a
    /// service must scope to the tenant as it scopes ids.
    pub keys: Vec<(String, String)>,
}

/// A field that holds ids or keys: `id`, `*_id`, `ids`, `*_ids`.
pub fn is_id_name(n: &str) -> bool {
    n == "id" || n.ends_with("_id") || n == "ids" || n.ends_with("_ids")
}

impl Objects {
    /// Records `msg` and every message inside it.
    pub fn record(&mut self, msg: &DynamicMessage) {
        let desc = msg.descriptor();
        let name = desc.full_name().to_owned();
        if let Some(id) = msg.get_field_by_name("id").and_then(|v| v.as_str().map(str::to_owned))
            && !id.is_empty()
            && !self.ids.iter().any(|(_, i)| *i == id)
        {
            self.ids.push((name.clone(), id));
        }
        for (f, v) in msg.fields() {
            if !is_id_name(f.name()) || f.name() == "id" {
                continue;
            }
            let values: Vec<&str> = match v {
                Value::String(s) => vec![s.as_str()],
                Value::List(l) => l.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for value in values {
                let known = self.ids.iter().chain(&self.keys).any(|(_, k)| k == value);
                if !value.is_empty() && !known {
                    let short = name.rsplit('.').next().unwrap_or(&name);
                    self.keys.push((format!("{short}.{}", f.name()), value.to_owned()));
                }
            }
        }
        // The first object of a type, unless a later one has an id and it
        // has none (a create's request comes before its reply).
        let has_id =
            |m: &DynamicMessage| m.get_field_by_name("id").is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()));
        match self.by_type.get(&name) {
            Some(old) if has_id(old) || !has_id(msg) => {}
            _ => {
                self.by_type.insert(name, msg.clone());
            }
        }
        for (_, v) in msg.fields() {
            self.record_value(v);
        }
    }

    /// Every id and key seen, with where it was seen.
    pub fn all_ids(&self) -> impl Iterator<Item = &(String, String)> {
        self.ids.iter().chain(&self.keys)
    }

    fn record_value(&mut self, v: &Value) {
        match v {
            Value::Message(m) => self.record(m),
            Value::List(l) => l.iter().for_each(|v| self.record_value(v)),
            Value::Map(m) => m.values().for_each(|v| self.record_value(v)),
            _ => {}
        }
    }

    pub fn get(&self, full_name: &str) -> Option<&DynamicMessage> {
        self.by_type.get(full_name)
    }

    /// The id of the first object whose type is called `short` (e.g. `Account`).
    pub fn id_of(&self, short: &str) -> Option<&str> {
        self.ids.iter().find(|(t, _)| t.rsplit('.').next() == Some(short)).map(|(_, id)| id.as_str())
    }

    /// `desc` with its message fields (top level) filled with recorded
    /// objects, and its id fields with the id of the object they name:
    /// `<thing>_id` the id of a `Thing`, `id` of a `GetThing` request the id
    /// of a `Thing`.
    ///
    /// A request of exactly this type that the tenant sent while seeding is
    /// the base instead: it was valid then.
    pub fn fill(&self, desc: &MessageDescriptor, method_name: &str) -> DynamicMessage {
        if let Some(sent) = self.get(desc.full_name()) {
            return sent.clone();
        }
        let mut msg = DynamicMessage::new(desc.clone());
        for f in desc.fields() {
            // One member of a oneof at most: the first that can be filled.
            if let Some(o) = f.containing_oneof()
                && !o.is_synthetic()
                && o.fields().any(|g| msg.has_field(&g))
            {
                continue;
            }
            match f.kind() {
                // Times, dates and masks keep their defaults: one recorded
                // value in both ends of a range would be an empty range.
                Kind::Message(m) if message_leaf(&m).is_some() => {}
                Kind::Message(m) if !f.is_map() => {
                    if let Some(obj) = self.get(m.full_name()) {
                        let v = Value::Message(obj.clone());
                        msg.set_field(&f, if f.is_list() { Value::List(vec![v]) } else { v });
                    }
                }
                Kind::String if !f.is_list() && !f.is_map() => {
                    let n = f.name();
                    let id = if n == "id" {
                        // A Delete… names the last object of its type, so the
                        // first stays for every other method's base.
                        self.resource_of_method(method_name, method_name.starts_with("Delete"))
                    } else {
                        n.strip_suffix("_id").and_then(|thing| self.id_of(&camel(thing)))
                    };
                    if let Some(id) = id {
                        msg.set_field(&f, Value::String(id.to_owned()));
                    }
                }
                // `ids` of a BatchGetThings, `thing_ids`: one id of a Thing.
                Kind::String if f.is_list() => {
                    let n = f.name();
                    let id = if n == "ids" {
                        self.resource_of_method(method_name.strip_suffix('s').unwrap_or(method_name), false)
                    } else {
                        n.strip_suffix("_ids").and_then(|thing| self.id_of(&camel(thing)))
                    };
                    if let Some(id) = id {
                        msg.set_field(&f, Value::List(vec![Value::String(id.to_owned())]));
                    }
                }
                _ => {}
            }
        }
        msg
    }

    /// The first (or last) id of the type whose name ends the method's
    /// name, the longest such name (`GetRecomputeJob`: a RecomputeJob).
    fn resource_of_method(&self, method_name: &str, last: bool) -> Option<&str> {
        let len = self
            .ids
            .iter()
            .filter_map(|(t, _)| t.rsplit('.').next().filter(|short| method_name.ends_with(short)).map(str::len))
            .max()?;
        let mut of_type = self.ids.iter().filter(|(t, _)| {
            t.rsplit('.').next().is_some_and(|short| short.len() == len && method_name.ends_with(short))
        });
        let found = if last { of_type.next_back() } else { of_type.next() };
        found.map(|(_, id)| id.as_str())
    }
}

/// `scorecard` → `Scorecard`, `recompute_job` → `RecomputeJob`.
pub fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_reach_nested_lists_and_maps() {
        let pool = crate::raw::pool();
        let req = pool.get_message_by_name("banso.accounts.v1.UpdateAccountRequest").unwrap();
        let names: Vec<String> = leaves(&req).iter().map(|l| l.name.clone()).collect();
        for want in [
            "account.name",
            "account.tags[0]",
            "account.custom_attributes{key}",
            "account.custom_attributes{value}.string_value",
            "account.renewal_date",
            "update_mask",
            "account.arr.amount_minor",
        ] {
            assert!(names.contains(&want.to_owned()), "{want} not in {names:?}");
        }
        // Every leaf can take each of its values.
        for leaf in leaves(&req) {
            for (_, g) in hostile(&leaf) {
                let mut m = DynamicMessage::new(req.clone());
                g.apply_to(&mut m, &leaf);
            }
        }
    }

    #[test]
    fn camel_case() {
        assert_eq!(camel("recompute_job"), "RecomputeJob");
        assert_eq!(camel("account"), "Account");
    }
}
