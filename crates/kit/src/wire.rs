//! Wire values every service reads and writes the same way: ids, times,
//! dates, text. Each conversion from the wire checks its value once, here,
//! and answers with a violation naming the field; the ranges are the API's
//! (docs/api.md, "Values").

use banso_proto::vocab::{LifecycleStage, TouchModel};
use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::error::{Error, Result, Violations, shown};

/// The earliest instant the API takes: 1970-01-01T00:00:00Z.
pub const MIN_TIME_SECS: i64 = 0;
/// The latest: 9999-12-31T23:59:59Z (and its fractions of a second).
pub const MAX_TIME_SECS: i64 = 253_402_300_799;
/// Calendar dates (renewals, contract starts, attributes): years 1900 to 9999.
pub const MIN_YEAR: i32 = 1900;
pub const MAX_YEAR: i32 = 9999;

/// Now, truncated to microseconds: what both databases keep, so a value a
/// write returns equals the value read back later.
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// A required UUID field: INVALID_ARGUMENT naming `field` if empty or malformed.
pub fn uuid(field: &str, s: &str) -> Result<uuid::Uuid> {
    if s.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    uuid::Uuid::parse_str(s).map_err(|_| Error::invalid(field, format!("{} is not a UUID", shown(s))))
}

/// An optional UUID field: `None` when empty.
pub fn optional_uuid(field: &str, s: &str) -> Result<Option<uuid::Uuid>> {
    if s.is_empty() { Ok(None) } else { uuid(field, s).map(Some) }
}

/// A protobuf timestamp of `t`.
pub fn timestamp(t: DateTime<Utc>) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

/// The time of a protobuf timestamp between 1970 and 9999, or
/// INVALID_ARGUMENT naming `field`. Inside that range, adding or subtracting
/// any duration the API allows (at most a few thousand years) stays inside
/// what chrono can represent, so no later date arithmetic can overflow.
pub fn time(field: &str, t: &pbjson_types::Timestamp) -> Result<DateTime<Utc>> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(Error::invalid(field, format!("nanos must be 0 to 999999999, got {}", t.nanos)));
    }
    if !(MIN_TIME_SECS..=MAX_TIME_SECS).contains(&t.seconds) {
        return Err(Error::invalid(
            field,
            format!("must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z, got {} seconds", t.seconds),
        ));
    }
    DateTime::from_timestamp(t.seconds, t.nanos as u32)
        .ok_or_else(|| Error::invalid(field, format!("{}s {}ns is not a valid timestamp", t.seconds, t.nanos)))
}

/// An optional timestamp field: `None` when unset; a bad one is a violation.
pub fn optional_time(v: &mut Violations, field: &str, t: Option<&pbjson_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| v.take(time(field, t)))
}

/// A calendar date from its parts, years 1900 to 9999; a violation naming
/// `field` (or `field.year`) otherwise.
pub fn date(v: &mut Violations, field: &str, year: i32, month: i32, day: i32) -> Option<NaiveDate> {
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
        v.add(format!("{field}.year"), format!("must be between {MIN_YEAR} and {MAX_YEAR}, got {year}"));
        return None;
    }
    match u32::try_from(month).ok().zip(u32::try_from(day).ok()).and_then(|(m, d)| NaiveDate::from_ymd_opt(year, m, d))
    {
        Some(d) => Some(d),
        None => {
            v.add(field, format!("{year:04}-{month:02}-{day:02} is not a calendar date"));
            None
        }
    }
}

/// An optional date message: `None` when unset; a bad one is a violation.
pub fn optional_date(v: &mut Violations, field: &str, d: Option<&banso_proto::types::Date>) -> Option<NaiveDate> {
    d.and_then(|d| date(v, field, d.year, d.month, d.day))
}

/// The protobuf date of `d`.
pub fn date_to_proto(d: NaiveDate) -> banso_proto::types::Date {
    banso_proto::types::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 }
}

/// A required lifecycle stage of the wire; a violation for UNSPECIFIED or
/// an unknown value.
pub fn lifecycle_stage(v: &mut Violations, field: &str, raw: i32) -> Option<LifecycleStage> {
    let stage = LifecycleStage::from_proto(raw);
    if stage.is_none() {
        v.add(field, enum_problem(raw, "lifecycle stage", &LifecycleStage::wire_names()));
    }
    stage
}

/// A required touch model of the wire; a violation for UNSPECIFIED or an
/// unknown value.
pub fn touch_model(v: &mut Violations, field: &str, raw: i32) -> Option<TouchModel> {
    let touch = TouchModel::from_proto(raw);
    if touch.is_none() {
        v.add(field, enum_problem(raw, "touch model", &TouchModel::wire_names()));
    }
    touch
}

/// Why a required enum value is refused: unset (0, UNSPECIFIED) or unknown.
fn enum_problem(raw: i32, what: &str, names: &str) -> String {
    if raw == 0 { format!("is required: one of {names}") } else { format!("{raw} is not a {what}; use one of {names}") }
}

/// An optional text field: at most `max` characters (not bytes: names are
/// often Japanese, 3 bytes a character), no control characters.
pub fn text(v: &mut Violations, field: &str, value: &str, max: usize) {
    let n = value.chars().count();
    if n > max {
        v.add(field, format!("must be at most {max} characters, got {n}"));
    }
    if value.chars().any(char::is_control) {
        v.add(field, "must not contain control characters");
    }
}

/// A multi-line text field (a note's body, a comment): at most `max`
/// characters; line breaks and tabs are kept, other control characters —
/// NUL above all, which PostgreSQL cannot store — are refused.
pub fn multiline_text(v: &mut Violations, field: &str, value: &str, max: usize) {
    let n = value.chars().count();
    if n > max {
        v.add(field, format!("must be at most {max} characters, got {n}"));
    }
    if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        v.add(field, "must not contain control characters other than line breaks and tabs");
    }
}

/// A required text field: 1 to `max` characters, not only spaces.
pub fn required_text(v: &mut Violations, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        v.add(field, "is required");
    } else {
        text(v, field, value, max);
    }
}

/// A required message field: `None` with a violation when unset.
pub fn required<T>(v: &mut Violations, field: &str, m: Option<T>) -> Option<T> {
    if m.is_none() {
        v.add(field, "is required");
    }
    m
}

/// A client's `request_id`: `None` when empty, a violation when malformed.
pub fn request_id(v: &mut Violations, s: &str) -> Option<String> {
    v.take(crate::idempotency::optional("request_id", s)).flatten().map(str::to_owned)
}

/// A custom attribute name: `[a-z][a-z0-9_]{0,63}`, so it can be named in
/// CEL expressions (segments, playbook conditions).
pub fn attribute_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A custom attribute value as Accounts keeps it: one kind set, text of at
/// most 1,000 characters, a finite double, a real date or time. Whether it
/// is one (each problem added to `v`).
pub fn attribute_value(v: &mut Violations, field: &str, a: &banso_proto::types::AttributeValue) -> bool {
    use banso_proto::types::attribute_value::Kind;
    match &a.kind {
        None => {
            v.add(
                field,
                "must set one of string_value, int_value, double_value, bool_value, date_value, timestamp_value",
            );
            false
        }
        Some(Kind::StringValue(s)) => {
            text(v, &format!("{field}.string_value"), s, 1000);
            s.chars().count() <= 1000 && !s.chars().any(char::is_control)
        }
        Some(Kind::IntValue(_) | Kind::BoolValue(_)) => true,
        Some(Kind::DoubleValue(d)) => {
            v.check(!d.is_finite(), format!("{field}.double_value"), format!("must be a finite number, got {d}"));
            d.is_finite()
        }
        Some(Kind::DateValue(d)) => date(v, &format!("{field}.date_value"), d.year, d.month, d.day).is_some(),
        Some(Kind::TimestampValue(t)) => v.take(time(&format!("{field}.timestamp_value"), t)).is_some(),
    }
}

/// Tags: at most `max`, each 1 to 64 characters without control
/// characters; returns them trimmed, without duplicates, in first-seen order.
pub fn tags(v: &mut Violations, field: &str, tags: &[String], max: usize) -> Vec<String> {
    if tags.len() > max {
        v.add(field, format!("at most {max} tags, got {}", tags.len()));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let t = t.trim();
        let n = t.chars().count();
        if n == 0 || n > 64 {
            v.add(format!("{field}[{i}]"), format!("must be 1 to 64 characters, got {n}"));
        } else if t.chars().any(char::is_control) {
            v.add(format!("{field}[{i}]"), "must not contain control characters");
        } else if !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_and_timestamps() {
        assert!(uuid("id", "").is_err());
        assert!(uuid("id", "nope").is_err());
        let id = uuid::Uuid::now_v7();
        assert_eq!(uuid("id", &id.to_string()).unwrap(), id);
        assert_eq!(optional_uuid("id", "").unwrap(), None);
        let t = DateTime::from_timestamp(1_700_000_000, 123_000).unwrap();
        assert_eq!(time("t", &timestamp(t)).unwrap(), t);
        assert!(time("t", &pbjson_types::Timestamp { seconds: 0, nanos: -1 }).is_err());
    }

    #[test]
    fn timestamps_are_bounded_so_arithmetic_cannot_overflow() {
        for seconds in [i64::MIN, -1, MAX_TIME_SECS + 1, i64::MAX] {
            assert!(time("t", &pbjson_types::Timestamp { seconds, nanos: 0 }).is_err(), "{seconds}");
        }
        let last = time("t", &pbjson_types::Timestamp { seconds: MAX_TIME_SECS, nanos: 999_999_999 }).unwrap();
        let first = time("t", &pbjson_types::Timestamp { seconds: 0, nanos: 0 }).unwrap();
        // Ten thousand years either way still fits chrono's range.
        let span = chrono::Duration::days(3_660_000);
        assert!(last.checked_add_signed(span).is_some());
        assert!(first.checked_sub_signed(span).is_some());
    }

    #[test]
    fn dates_and_text() {
        let mut v = Violations::new();
        assert_eq!(date(&mut v, "d", 2027, 3, 31), NaiveDate::from_ymd_opt(2027, 3, 31));
        assert_eq!(date(&mut v, "d", 1899, 1, 1), None);
        assert_eq!(date(&mut v, "d", 2027, 2, 30), None);
        assert_eq!(date(&mut v, "d", 2027, i32::MIN, i32::MAX), None);
        text(&mut v, "t", &"名".repeat(10), 10);
        assert!(!v.is_empty());
        let mut v = Violations::new();
        text(&mut v, "t", &"名".repeat(10), 10);
        required_text(&mut v, "t", "株式会社", 4);
        assert!(v.is_empty());
        required_text(&mut v, "t", "  ", 4);
        text(&mut v, "t", "a\u{0}", 4);
        multiline_text(&mut v, "m", "line\nline\ttab", 20);
        assert!(!v.is_empty());
        let mut w = Violations::new();
        multiline_text(&mut w, "m", "line\nline\ttab\r\n", 20);
        assert!(w.is_empty());
        multiline_text(&mut w, "m", "nul\u{0}", 20);
        assert!(!w.is_empty());
        let Err(Error::InvalidArgument(vs)) = v.finish() else { panic!("two violations expected") };
        assert_eq!(vs.len(), 2, "{vs:?}");
    }
}
