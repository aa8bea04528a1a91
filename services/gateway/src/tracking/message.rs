//! Segment's messages read into what Banso stores: pure functions, no I/O.
//!
//! One message of Segment's JSON (a `/v1/track` body or one item of a
//! `/v1/batch`) becomes a [`Message`]: its kind, ids, the time it happened
//! (clock skew corrected as Segment does), and for usage the event name and
//! properties as Health accepts them; traits become contact or account
//! fields. What cannot be read is a [`Refusal`] of that message alone.

use std::collections::BTreeMap;

use banso_proto::{accounts as apb, types as tpb};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Segment's limit for one message: a larger one is refused by itself.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// Health's limits (docs/health.md): properties per event, key and value lengths.
const MAX_PROPERTIES: usize = 50;
const MAX_PROPERTY_KEY_CHARS: usize = 64;
const MAX_PROPERTY_VALUE_CHARS: usize = 1024;
/// Health's event_id and event_name lengths.
const MAX_EVENT_ID_CHARS: usize = 128;
const MAX_EVENT_NAME_CHARS: usize = 128;
/// Accounts' limits: custom attributes per account and a text value's length.
pub const MAX_CUSTOM_ATTRIBUTES: usize = 100;
const MAX_ATTRIBUTE_TEXT_CHARS: usize = 1000;
const MAX_ATTRIBUTE_NAME_CHARS: usize = 64;
const MAX_NAME_CHARS: usize = 200;

/// The kinds of Segment call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Track,
    Identify,
    Group,
    Page,
    Screen,
    Alias,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "track" => Kind::Track,
            "identify" => Kind::Identify,
            "group" => Kind::Group,
            "page" => Kind::Page,
            "screen" => Kind::Screen,
            "alias" => Kind::Alias,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Track => "track",
            Kind::Identify => "identify",
            Kind::Group => "group",
            Kind::Page => "page",
            Kind::Screen => "screen",
            Kind::Alias => "alias",
        }
    }

    /// Whether the message is product usage (a Health event).
    pub fn is_usage(self) -> bool {
        matches!(self, Kind::Track | Kind::Page | Kind::Screen)
    }
}

/// Why one message was not taken: an UPPER_SNAKE reason and the detail.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub reason: String,
    pub detail: String,
}

impl Refusal {
    pub fn new(reason: &str, detail: impl Into<String>) -> Self {
        Refusal { reason: reason.to_owned(), detail: detail.into() }
    }

    fn invalid(field: &str, why: impl std::fmt::Display) -> Self {
        Refusal::new("INVALID", format!("{field}: {why}"))
    }
}

/// What applies to every message of a batch.
#[derive(Debug, Clone, Default)]
pub struct BatchMeta {
    /// The batch's `sentAt`, for messages without their own.
    pub sent_at: Option<DateTime<Utc>>,
    /// The batch's `context.groupId`, for messages without their own.
    pub group_id: Option<String>,
    /// When the gateway received the request (Segment's `receivedAt`).
    pub received_at: DateTime<Utc>,
}

/// One message, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: Kind,
    /// The messageId (or one derived from the message: see [`event_id`]).
    pub event_id: String,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    /// `groupId` of a group call; `context.groupId` of the others.
    pub group_id: Option<String>,
    /// The usage event's name (track, page, screen).
    pub event_name: String,
    /// When it happened, skew corrected.
    pub time: DateTime<Utc>,
    pub properties: Map<String, Value>,
    pub traits: Map<String, Value>,
}

/// A message's `kind` (`hint`: the endpoint's, else its `type`), or why not.
pub fn kind_of(v: &Map<String, Value>, hint: Option<Kind>) -> Result<Kind, Refusal> {
    if let Some(k) = hint {
        return Ok(k);
    }
    match v.get("type") {
        Some(Value::String(s)) => Kind::parse(s).ok_or_else(|| {
            Refusal::invalid("type", format!("{} is not one of track, identify, group, page, screen, alias", shown(s)))
        }),
        None | Some(Value::Null) => Err(Refusal::invalid("type", "is required in a batch")),
        Some(_) => Err(Refusal::invalid("type", "must be a string")),
    }
}

/// Reads one message of kind `kind`.
pub fn read(kind: Kind, v: &Map<String, Value>, meta: &BatchMeta) -> Result<Message, Refusal> {
    let user_id = id(v, "userId")?;
    let anonymous_id = id(v, "anonymousId")?;
    let context = match v.get("context") {
        None | Some(Value::Null) => None,
        Some(Value::Object(c)) => Some(c),
        Some(_) => return Err(Refusal::invalid("context", "must be an object")),
    };
    let group_id = if kind == Kind::Group {
        Some(id(v, "groupId")?.ok_or_else(|| Refusal::invalid("groupId", "is required for group"))?)
    } else {
        match context {
            Some(c) => id(c, "groupId").map_err(|r| Refusal::new(&r.reason, format!("context.{}", r.detail)))?,
            None => None,
        }
        .or_else(|| meta.group_id.clone())
    };
    let properties = object(v, "properties")?;
    let traits = object(v, "traits")?;
    let event_name = match kind {
        Kind::Track => {
            let raw = match v.get("event") {
                Some(Value::String(s)) if !s.trim().is_empty() => s,
                _ => return Err(Refusal::invalid("event", "is required for track (a non-empty string)")),
            };
            event_name(raw).ok_or_else(|| {
                Refusal::invalid("event", format!("{} has no letter or digit Banso can name it by", shown(raw)))
            })?
        }
        Kind::Page | Kind::Screen => named(kind.as_str(), v, &properties),
        _ => String::new(),
    };
    Ok(Message {
        kind,
        event_id: event_id(v)?,
        user_id,
        anonymous_id,
        group_id,
        event_name,
        time: time(v, meta)?,
        properties,
        traits,
    })
}

/// An id field: a string, or a number as its text (Segment accepts both);
/// empty is absent.
fn id(v: &Map<String, Value>, field: &str) -> Result<Option<String>, Refusal> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(Refusal::invalid(field, "must be a string")),
    }
}

fn object(v: &Map<String, Value>, field: &str) -> Result<Map<String, Value>, Refusal> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(_) => Err(Refusal::invalid(field, "must be an object")),
    }
}

/// The event id Health stores: the messageId when it fits Health's 128
/// printable characters; a longer or unprintable one as `m-` and its
/// SHA-256; none at all, `c-` and the SHA-256 of the message itself (less
/// `sentAt`, which a retry changes), so a retried batch still counts once.
pub fn event_id(v: &Map<String, Value>) -> Result<String, Refusal> {
    match v.get("messageId") {
        Some(Value::String(s)) if !s.is_empty() => {
            if s.chars().count() <= MAX_EVENT_ID_CHARS && !s.chars().any(char::is_control) {
                Ok(s.clone())
            } else {
                Ok(format!("m-{}", hex(&Sha256::digest(s.as_bytes()))))
            }
        }
        Some(Value::Number(n)) => Ok(n.to_string()),
        None | Some(Value::Null) => {
            let mut m = v.clone();
            m.remove("sentAt");
            m.remove("writeKey");
            let bytes = serde_json::to_vec(&m).unwrap_or_default();
            Ok(format!("c-{}", hex(&Sha256::digest(&bytes))))
        }
        Some(Value::String(_)) => Err(Refusal::invalid("messageId", "must not be empty")),
        Some(_) => Err(Refusal::invalid("messageId", "must be a string")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A time field: RFC 3339 (ISO 8601 with an offset; without one, UTC).
fn parse_time(v: &Map<String, Value>, field: &str) -> Result<Option<DateTime<Utc>>, Refusal> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => timestamp(s)
            .map(Some)
            .ok_or_else(|| Refusal::invalid(field, format!("{} is not an ISO 8601 time", shown(s)))),
        Some(_) => Err(Refusal::invalid(field, "must be an ISO 8601 string")),
    }
}

/// An ISO 8601 time with an offset, or without one as UTC.
pub fn timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}

/// When the message happened. The client's clock says `originalTimestamp`
/// (else `timestamp`); when the client also says when it sent the message
/// (`sentAt`, the message's or the batch's), its clock's error is taken out
/// as Segment does: `receivedAt − (sentAt − originalTimestamp)`. Without a
/// client time, the time it was received.
pub fn time(v: &Map<String, Value>, meta: &BatchMeta) -> Result<DateTime<Utc>, Refusal> {
    let client = match parse_time(v, "originalTimestamp")? {
        Some(t) => Some(t),
        None => parse_time(v, "timestamp")?,
    };
    let sent_at = parse_time(v, "sentAt")?.or(meta.sent_at);
    Ok(match (client, sent_at) {
        (Some(t), Some(sent)) => meta.received_at - (sent - t),
        (Some(t), None) => t,
        (None, _) => meta.received_at,
    })
}

/// An event name as Health accepts it (`[A-Za-z0-9_.:-]`, 1 to 128): lower
/// case, each run of other characters (spaces above all: "Report
/// Exported") one `_`, none at the ends. `None` if nothing is left (a name
/// of only other characters, e.g. Japanese).
pub fn event_name(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut gap = false;
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-') {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
        if out.len() >= MAX_EVENT_NAME_CHARS {
            break;
        }
    }
    out.truncate(MAX_EVENT_NAME_CHARS);
    let out = out.trim_end_matches('_').to_owned();
    (!out.is_empty()).then_some(out)
}

/// A page or screen call's event: `page:<name>` (`screen:<name>`), the
/// name from `name` or else `properties.name`; just `page` without one.
fn named(prefix: &str, v: &Map<String, Value>, properties: &Map<String, Value>) -> String {
    let name = [v.get("name"), properties.get("name")].into_iter().flatten().find_map(|n| n.as_str());
    match name.and_then(event_name) {
        Some(n) => {
            let mut s = format!("{prefix}:{n}");
            s.truncate(MAX_EVENT_NAME_CHARS);
            s
        }
        None => prefix.to_owned(),
    }
}

/// Properties as Health stores them: text values (a string as it is, any
/// other value as its JSON), at most 50 (in key order), keys of 1 to 64
/// characters, values cut at 1,024 characters, nulls and unprintable
/// characters left out.
pub fn properties(p: &Map<String, Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut keys: Vec<&String> = p.keys().collect();
    keys.sort();
    for k in keys {
        if out.len() == MAX_PROPERTIES {
            break;
        }
        let n = k.chars().count();
        if n == 0 || n > MAX_PROPERTY_KEY_CHARS || k.chars().any(char::is_control) {
            continue;
        }
        let text = match &p[k] {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let text: String = text
            .chars()
            .filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
            .take(MAX_PROPERTY_VALUE_CHARS)
            .collect();
        out.insert(k.clone(), text);
    }
    out
}

/// A number property (a JSON number or a numeric string).
pub fn number(p: &Map<String, Value>, key: &str) -> Option<f64> {
    match p.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(t: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match t.get(*k) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The contact fields an identify's traits give (Segment's reserved
/// traits; the rest has no place on a contact).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactTraits {
    pub name: Option<String>,
    pub email: Option<String>,
    pub title: Option<String>,
    pub department: Option<String>,
}

impl ContactTraits {
    pub fn from_traits(t: &Map<String, Value>) -> Self {
        let first = text(t, &["firstName", "first_name"]);
        let last = text(t, &["lastName", "last_name"]);
        let joined = match (first, last) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (f, l) => f.or(l),
        };
        ContactTraits {
            name: text(t, &["name"]).or(joined).map(|n| cut(&n, MAX_NAME_CHARS)),
            email: text(t, &["email"]),
            title: text(t, &["title"]).map(|s| cut(&s, 200)),
            department: text(t, &["department"]).map(|s| cut(&s, 200)),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == ContactTraits::default()
    }

    /// Later traits over earlier ones, field by field.
    pub fn merged(mut self, later: &ContactTraits) -> Self {
        for (mine, theirs) in [
            (&mut self.name, &later.name),
            (&mut self.email, &later.email),
            (&mut self.title, &later.title),
            (&mut self.department, &later.department),
        ] {
            if theirs.is_some() {
                mine.clone_from(theirs);
            }
        }
        self
    }

    /// The contact fields set and their update mask paths.
    pub fn apply(&self, c: &mut apb::Contact) -> Vec<String> {
        let mut mask = Vec::new();
        for (value, field, path) in [
            (&self.name, &mut c.name, "name"),
            (&self.email, &mut c.email, "email"),
            (&self.title, &mut c.title, "title"),
            (&self.department, &mut c.department, "department"),
        ] {
            if let Some(v) = value {
                field.clone_from(v);
                mask.push(path.to_owned());
            }
        }
        mask
    }

    /// A new contact for user `user_id`: its name from the traits, else its
    /// e-mail, else the user id (a contact needs a name).
    pub fn new_contact(&self, user_id: &str) -> apb::Contact {
        let mut c = apb::Contact { external_id: user_id.to_owned(), ..Default::default() };
        self.apply(&mut c);
        if c.name.is_empty() {
            c.name = cut(self.email.as_deref().unwrap_or(user_id), MAX_NAME_CHARS);
        }
        c
    }
}

/// A group's traits as an account: the fields Account has (name, industry,
/// employees, plan, region, revenue band), the rest as custom attributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountTraits {
    /// The account's fields (external_id set) and their mask paths.
    pub account: apb::Account,
    pub mask: Vec<String>,
    pub custom: BTreeMap<String, tpb::AttributeValue>,
}

/// Group traits with a field of their own on Account.
const ACCOUNT_TRAITS: &[&str] = &[
    "name",
    "industry",
    "employees",
    "employee_count",
    "employeeCount",
    "plan",
    "plan_tier",
    "planTier",
    "region",
    "revenue_band",
    "revenueBand",
];

impl AccountTraits {
    pub fn from_traits(group_id: &str, t: &Map<String, Value>) -> Self {
        let mut a = apb::Account { external_id: group_id.to_owned(), ..Default::default() };
        let mut mask = vec!["external_id".to_owned()];
        let mut set = |path: &str, field: &mut String, keys: &[&str], max: usize| {
            if let Some(v) = text(t, keys) {
                *field = cut(&v, max);
                mask.push(path.to_owned());
            }
        };
        set("name", &mut a.name, &["name"], MAX_NAME_CHARS);
        set("industry", &mut a.industry, &["industry"], 100);
        set("plan_tier", &mut a.plan_tier, &["plan", "plan_tier", "planTier"], 100);
        set("region", &mut a.region, &["region"], 100);
        set("revenue_band", &mut a.revenue_band, &["revenue_band", "revenueBand"], 100);
        let employees = ["employees", "employee_count", "employeeCount"].iter().find_map(|k| number(t, k));
        if let Some(n) = employees.filter(|n| n.is_finite() && *n >= 0.0 && n.fract() == 0.0 && *n <= 10_000_000.0) {
            a.employee_count = Some(n as i64);
            mask.push("employee_count".to_owned());
        }
        let mut custom = BTreeMap::new();
        let mut keys: Vec<&String> = t.keys().filter(|k| !ACCOUNT_TRAITS.contains(&k.as_str())).collect();
        keys.sort();
        for k in keys {
            if custom.len() == MAX_CUSTOM_ATTRIBUTES {
                break;
            }
            if let (Some(name), Some(value)) = (attribute_name(k), attribute_value(&t[k])) {
                custom.entry(name).or_insert(value);
            }
        }
        AccountTraits { account: a, mask, custom }
    }

    /// The account to create when none has the external id yet: a name
    /// (the group id without one), onboarding, tech touch, and the custom
    /// attributes.
    pub fn new_account(&self) -> apb::Account {
        let mut a = self.account.clone();
        if a.name.is_empty() {
            a.name = cut(&a.external_id, MAX_NAME_CHARS);
        }
        a.lifecycle_stage = tpb::LifecycleStage::Onboarding as i32;
        a.touch_model = tpb::TouchModel::Tech as i32;
        a.custom_attributes = self.custom.clone().into_iter().collect();
        a
    }
}

/// A trait name as a custom attribute name (`[a-z][a-z0-9_]{0,63}`):
/// camelCase to snake_case, other characters to `_`. `None` if it does not
/// start with a letter.
pub fn attribute_name(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut prev_lower = false;
    let mut gap = false;
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            if (c.is_ascii_uppercase() && prev_lower) || (gap && !out.is_empty()) {
                out.push('_');
            }
            gap = false;
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c.to_ascii_lowercase());
        } else {
            gap = true;
            prev_lower = false;
        }
    }
    out.truncate(MAX_ATTRIBUTE_NAME_CHARS);
    let out = out.trim_end_matches('_').to_owned();
    out.starts_with(|c: char| c.is_ascii_lowercase()).then_some(out)
}

/// A trait value as a custom attribute: numbers, booleans, dates
/// (`YYYY-MM-DD`), times (ISO 8601) and text (cut at 1,000 characters);
/// objects and lists as their JSON when that fits. `None` for null.
pub fn attribute_value(v: &Value) -> Option<tpb::AttributeValue> {
    use tpb::attribute_value::Kind as K;
    let kind = match v {
        Value::Null => return None,
        Value::Bool(b) => K::BoolValue(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => K::IntValue(i),
            None => K::DoubleValue(n.as_f64().filter(|f| f.is_finite())?),
        },
        Value::String(s) => {
            if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                K::DateValue(banso_kit::wire::date_to_proto(d))
            } else if let Some(t) = DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)) {
                K::TimestampValue(banso_kit::wire::timestamp(t))
            } else {
                K::StringValue(
                    s.chars()
                        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
                        .take(MAX_ATTRIBUTE_TEXT_CHARS)
                        .collect(),
                )
            }
        }
        other => {
            let json = other.to_string();
            if json.chars().count() > MAX_ATTRIBUTE_TEXT_CHARS {
                return None;
            }
            K::StringValue(json)
        }
    };
    Some(tpb::AttributeValue { kind: Some(kind) })
}

/// A caller's value in a detail: quoted and cut.
fn shown(s: &str) -> String {
    banso_kit::error::shown(s)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn meta() -> BatchMeta {
        BatchMeta { received_at: Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap(), ..Default::default() }
    }

    #[test]
    fn event_names_follow_health_rules() {
        assert_eq!(event_name("Report Exported").as_deref(), Some("report_exported"));
        assert_eq!(event_name("  Order   Completed!! ").as_deref(), Some("order_completed"));
        assert_eq!(event_name("signup:started.v2-beta").as_deref(), Some("signup:started.v2-beta"));
        assert_eq!(event_name("レポート出力"), None);
        assert_eq!(event_name("レポート export").as_deref(), Some("export"));
        assert_eq!(event_name(&"x".repeat(300)).map(|s| s.len()), Some(128));
        assert_eq!(event_name("a b").as_deref(), Some("a_b"));
    }

    #[test]
    fn page_and_screen_are_named_by_their_name() {
        let m = read(Kind::Page, &obj(json!({"name": "Pricing Page", "messageId": "m"})), &meta()).unwrap();
        assert_eq!(m.event_name, "page:pricing_page");
        let m = read(Kind::Screen, &obj(json!({"properties": {"name": "Home"}, "messageId": "m"})), &meta()).unwrap();
        assert_eq!(m.event_name, "screen:home");
        let m = read(Kind::Page, &obj(json!({"messageId": "m"})), &meta()).unwrap();
        assert_eq!(m.event_name, "page");
    }

    #[test]
    fn clock_skew_is_corrected_with_sent_at() {
        let m = meta();
        // The client's clock is an hour fast: sent "13:00", event at "12:59:30".
        let v = obj(json!({"timestamp": "2026-05-01T12:59:30Z", "sentAt": "2026-05-01T13:00:00Z"}));
        assert_eq!(time(&v, &m).unwrap(), Utc.with_ymd_and_hms(2026, 5, 1, 11, 59, 30).unwrap());
        // originalTimestamp wins over timestamp; the batch's sentAt serves.
        let batch = BatchMeta { sent_at: Some(Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 10).unwrap()), ..m.clone() };
        let v = obj(json!({"originalTimestamp": "2026-05-01T12:00:00+00:00", "timestamp": "2020-01-01T00:00:00Z"}));
        assert_eq!(time(&v, &batch).unwrap(), Utc.with_ymd_and_hms(2026, 5, 1, 11, 59, 50).unwrap());
        // Without sentAt the client's time stands; without any, the time received.
        let v = obj(json!({"timestamp": "2026-04-30T08:00:00+09:00"}));
        assert_eq!(time(&v, &m).unwrap(), Utc.with_ymd_and_hms(2026, 4, 29, 23, 0, 0).unwrap());
        assert_eq!(time(&obj(json!({})), &m).unwrap(), m.received_at);
        // No offset: UTC.
        let v = obj(json!({"timestamp": "2026-04-30T08:00:00.250"}));
        assert_eq!(
            time(&v, &m).unwrap().timestamp_millis(),
            Utc.with_ymd_and_hms(2026, 4, 30, 8, 0, 0).unwrap().timestamp_millis() + 250
        );
        let err = time(&obj(json!({"timestamp": "yesterday"})), &m).unwrap_err();
        assert_eq!(err.reason, "INVALID");
        assert!(err.detail.starts_with("timestamp:"), "{}", err.detail);
        assert!(time(&obj(json!({"sentAt": 5})), &m).is_err());
    }

    #[test]
    fn event_ids_are_message_ids_or_derived() {
        assert_eq!(event_id(&obj(json!({"messageId": "abc"}))).unwrap(), "abc");
        assert_eq!(event_id(&obj(json!({"messageId": 42}))).unwrap(), "42");
        let long = event_id(&obj(json!({"messageId": "x".repeat(200)}))).unwrap();
        assert!(long.starts_with("m-") && long.len() == 66);
        // Without one: the same message (whatever its sentAt) gets the same id.
        let a = event_id(&obj(json!({"event": "e", "sentAt": "2026-01-01T00:00:00Z"}))).unwrap();
        let b = event_id(&obj(json!({"event": "e", "sentAt": "2026-01-02T00:00:00Z"}))).unwrap();
        let c = event_id(&obj(json!({"event": "f"}))).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(event_id(&obj(json!({"messageId": ""}))).is_err());
        assert!(event_id(&obj(json!({"messageId": {}}))).is_err());
    }

    #[test]
    fn a_message_reads_ids_group_and_refuses_bad_fields() {
        let v = obj(json!({
            "userId": 17, "anonymousId": "anon", "event": "Clicked", "messageId": "m1",
            "context": {"groupId": "acme"}, "properties": {"a": 1}
        }));
        let m = read(Kind::Track, &v, &meta()).unwrap();
        assert_eq!(m.user_id.as_deref(), Some("17"));
        assert_eq!(m.anonymous_id.as_deref(), Some("anon"));
        assert_eq!(m.group_id.as_deref(), Some("acme"));
        assert_eq!(m.event_name, "clicked");
        // The batch's context.groupId serves a message without one.
        let batch = BatchMeta { group_id: Some("globex".into()), ..meta() };
        let m = read(Kind::Track, &obj(json!({"event": "x", "messageId": "m"})), &batch).unwrap();
        assert_eq!(m.group_id.as_deref(), Some("globex"));
        for (kind, bad, field) in [
            (Kind::Track, json!({"messageId": "m"}), "event"),
            (Kind::Track, json!({"event": "  "}), "event"),
            (Kind::Track, json!({"event": "x", "userId": ["a"]}), "userId"),
            (Kind::Track, json!({"event": "x", "properties": "p"}), "properties"),
            (Kind::Track, json!({"event": "x", "context": []}), "context"),
            (Kind::Track, json!({"event": "x", "context": {"groupId": {}}}), "context.groupId"),
            (Kind::Group, json!({"userId": "u"}), "groupId"),
            (Kind::Identify, json!({"traits": 3}), "traits"),
        ] {
            let err = read(kind, &obj(bad.clone()), &meta()).unwrap_err();
            assert!(err.detail.starts_with(&format!("{field}:")), "{bad}: {err:?}");
        }
        assert!(kind_of(&obj(json!({"type": "teleport"})), None).is_err());
        assert!(kind_of(&obj(json!({})), None).is_err());
        assert_eq!(kind_of(&obj(json!({"type": "identify"})), Some(Kind::Track)).unwrap(), Kind::Track);
    }

    #[test]
    fn properties_fit_health() {
        let mut p = Map::new();
        for i in 0..60 {
            p.insert(format!("k{i:02}"), json!(i));
        }
        p.insert("a_nested".into(), json!({"a": [1, 2]}));
        p.insert("a_nothing".into(), Value::Null);
        p.insert("x".repeat(65), json!("too long a key"));
        p.insert("a_big".into(), json!("y".repeat(5000)));
        p.insert("a_ctl".into(), json!("a\u{0}b\nc"));
        let out = properties(&p);
        assert_eq!(out.len(), 50);
        assert_eq!(out["a_big"].len(), 1024);
        assert_eq!(out["a_ctl"], "ab\nc");
        assert_eq!(out["a_nested"], r#"{"a":[1,2]}"#);
        assert!(!out.contains_key("a_nothing"));
        assert!(out.contains_key("k46") && !out.contains_key("k47"));
        assert_eq!(out["k00"], "0");
    }

    #[test]
    fn identify_traits_map_to_contact_fields() {
        let t = ContactTraits::from_traits(&obj(
            json!({"firstName": "Hana", "lastName": "Sato", "email": "h@x.jp", "phone": "1"}),
        ));
        assert_eq!(t.name.as_deref(), Some("Hana Sato"));
        let c = t.new_contact("u1");
        assert_eq!((c.name.as_str(), c.email.as_str(), c.external_id.as_str()), ("Hana Sato", "h@x.jp", "u1"));
        let mut c = apb::Contact::default();
        assert_eq!(ContactTraits { title: Some("CTO".into()), ..Default::default() }.apply(&mut c), ["title"]);
        // Without a name: the e-mail, else the user id.
        assert_eq!(ContactTraits::default().new_contact("u2").name, "u2");
        let later = ContactTraits { title: Some("CEO".into()), ..Default::default() };
        assert_eq!(t.clone().merged(&later).title.as_deref(), Some("CEO"));
        assert_eq!(t.merged(&later).name.as_deref(), Some("Hana Sato"));
    }

    #[test]
    fn group_traits_map_to_account_fields_and_custom_attributes() {
        let t = obj(json!({
            "name": "Acme", "industry": "Retail", "employees": 120, "plan": "Enterprise",
            "createdAt": "2024-03-01T10:00:00Z", "monthlySpend": 12.5, "isTrial": false,
            "website": "https://acme.example", "renewal day": "2026-04-01", "1st": "x", "nothing": null
        }));
        let a = AccountTraits::from_traits("crm-1", &t);
        assert_eq!(a.account.name, "Acme");
        assert_eq!(a.account.employee_count, Some(120));
        assert_eq!(a.account.plan_tier, "Enterprise");
        assert_eq!(a.mask, ["external_id", "name", "industry", "plan_tier", "employee_count"]);
        let names: Vec<&str> = a.custom.keys().map(String::as_str).collect();
        assert_eq!(names, ["created_at", "is_trial", "monthly_spend", "renewal_day", "website"]);
        use tpb::attribute_value::Kind as K;
        assert!(matches!(a.custom["created_at"].kind, Some(K::TimestampValue(_))));
        assert!(matches!(a.custom["renewal_day"].kind, Some(K::DateValue(_))));
        assert!(matches!(a.custom["monthly_spend"].kind, Some(K::DoubleValue(f)) if f == 12.5));
        let new = AccountTraits::from_traits("crm-2", &Map::new()).new_account();
        assert_eq!((new.name.as_str(), new.lifecycle_stage, new.touch_model), ("crm-2", 1, 3));
        // Employees that Accounts would refuse are left out, not sent.
        let a = AccountTraits::from_traits("c", &obj(json!({"employees": -3})));
        assert_eq!(a.account.employee_count, None);
    }

    #[test]
    fn attribute_names_are_snake_case() {
        assert_eq!(attribute_name("createdAt").as_deref(), Some("created_at"));
        assert_eq!(attribute_name("Monthly Spend ($)").as_deref(), Some("monthly_spend"));
        assert_eq!(attribute_name("ARR").as_deref(), Some("arr"));
        assert_eq!(attribute_name("seats2024").as_deref(), Some("seats2024"));
        assert_eq!(attribute_name("_1st"), None);
        assert_eq!(attribute_name("日本"), None);
        assert_eq!(attribute_name(&"a".repeat(100)).map(|s| s.len()), Some(64));
    }
}
