//! Conversions of wire values every service needs the same way.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::error::{Error, Result, Violations};

/// A required UUID field: INVALID_ARGUMENT naming `field` if empty or malformed.
pub fn uuid(field: &str, s: &str) -> Result<uuid::Uuid> {
    if s.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    uuid::Uuid::parse_str(s).map_err(|_| Error::invalid(field, format!("{s:?} is not a UUID")))
}

/// A protobuf timestamp of `t`.
pub fn timestamp(t: DateTime<Utc>) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

/// The time of a protobuf timestamp, or INVALID_ARGUMENT naming `field`.
pub fn time(field: &str, t: &pbjson_types::Timestamp) -> Result<DateTime<Utc>> {
    u32::try_from(t.nanos)
        .ok()
        .and_then(|n| DateTime::from_timestamp(t.seconds, n))
        .ok_or_else(|| Error::invalid(field, format!("{}s {}ns is not a valid timestamp", t.seconds, t.nanos)))
}

/// A calendar date from its parts, years 1900 to 9999; a violation naming
/// `field` (or `field.year`) otherwise.
pub fn date(v: &mut Violations, field: &str, year: i32, month: i32, day: i32) -> Option<NaiveDate> {
    if !(1900..=9999).contains(&year) {
        v.add(format!("{field}.year"), format!("must be between 1900 and 9999, got {year}"));
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

/// The protobuf date of `d`.
pub fn date_to_proto(d: NaiveDate) -> banso_proto::types::Date {
    banso_proto::types::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 }
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
        let t = DateTime::from_timestamp(1_700_000_000, 123_000).unwrap();
        assert_eq!(time("t", &timestamp(t)).unwrap(), t);
        assert!(time("t", &pbjson_types::Timestamp { seconds: 0, nanos: -1 }).is_err());
    }
}
