//! PostgreSQL's binary `COPY … FROM STDIN (FORMAT binary)` encoding: the
//! fastest way rows reach a table (one bulk heap insert per page, no SQL to
//! parse, no per-row parameters). Used by the Health ingest for raw usage
//! events and by the benchmarks for their baselines, so both write the same
//! bytes.

use chrono::{DateTime, NaiveDate, Utc};

/// Seconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_SECS: i64 = 946_684_800;

/// Rows in binary COPY format: [`BinaryCopy::new`], then per row
/// [`BinaryCopy::row`] with its field count followed by each field in the
/// column order of the `COPY` statement, then [`BinaryCopy::finish`].
#[derive(Debug)]
pub struct BinaryCopy(Vec<u8>);

impl Default for BinaryCopy {
    fn default() -> Self {
        Self::new()
    }
}

impl BinaryCopy {
    pub fn new() -> BinaryCopy {
        let mut b = Vec::with_capacity(1 << 20);
        // Signature, flags (no OIDs), header extension length.
        b.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        BinaryCopy(b)
    }
    /// Starts a row of `fields` columns.
    pub fn row(&mut self, fields: i16) {
        self.0.extend_from_slice(&fields.to_be_bytes());
    }
    fn field(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        self.0.extend_from_slice(bytes);
    }
    /// `text`, `varchar`, and `json` (whose binary form is its text).
    pub fn text(&mut self, s: &str) {
        self.field(s.as_bytes());
    }
    pub fn uuid(&mut self, u: uuid::Uuid) {
        self.field(u.as_bytes());
    }
    /// `float8`.
    pub fn f64(&mut self, v: f64) {
        self.field(&v.to_be_bytes());
    }
    pub fn null(&mut self) {
        self.0.extend_from_slice(&(-1i32).to_be_bytes());
    }
    /// `timestamptz`: microseconds since 2000-01-01 UTC (nanoseconds are cut,
    /// as PostgreSQL stores them).
    pub fn timestamptz(&mut self, t: DateTime<Utc>) {
        let micros = (t.timestamp() - PG_EPOCH_SECS) * 1_000_000 + i64::from(t.timestamp_subsec_micros());
        self.field(&micros.to_be_bytes());
    }
    /// `date`: days since 2000-01-01.
    pub fn date(&mut self, d: NaiveDate) {
        use chrono::Datelike as _;
        // 2000-01-01 is day 730,120 of the common era.
        self.field(&(d.num_days_from_ce() - 730_120).to_be_bytes());
    }
    /// The buffer with its trailer, ready to send.
    pub fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&(-1i16).to_be_bytes());
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_header_fields_and_trailer_postgresql_expects() {
        let mut c = BinaryCopy::new();
        c.row(4);
        c.text("ab");
        c.date(NaiveDate::from_ymd_opt(2000, 1, 2).unwrap());
        c.timestamptz(DateTime::from_timestamp(PG_EPOCH_SECS + 1, 5_000).unwrap());
        c.null();
        let b = c.finish();
        let mut want = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        want.extend_from_slice(&[0, 4]);
        want.extend_from_slice(&[0, 0, 0, 2, b'a', b'b']);
        want.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 1]);
        want.extend_from_slice(&[0, 0, 0, 8]);
        want.extend_from_slice(&1_000_005i64.to_be_bytes());
        want.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        want.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(b, want);
    }
}
