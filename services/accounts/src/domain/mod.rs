//! The Accounts rules: types, validation and list semantics. No I/O.

pub mod account;
pub mod activity;
pub mod contact;
pub mod contract;
pub mod retention;
pub mod segment;
pub mod settings;
pub mod validate;

pub use account::*;
pub use contact::*;
pub use settings::*;

/// Now, truncated to microseconds: what both databases store, so a value
/// returned by a write equals the value read back later.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    let t = chrono::Utc::now();
    chrono::DateTime::from_timestamp_micros(t.timestamp_micros()).expect("in range")
}

/// The etag of a stored version of a resource.
pub fn etag(version: i64) -> String {
    format!("v{version}")
}

/// ABORTED unless `given` is empty or the etag of `version`.
pub fn check_etag(given: &str, version: i64) -> banso_kit::Result<()> {
    if given.is_empty() || given == etag(version) {
        Ok(())
    } else {
        Err(banso_kit::Error::Aborted {
            reason: "ETAG_MISMATCH",
            message: format!("etag {given:?} is stale; the current etag is {:?}: read again and retry", etag(version)),
        })
    }
}
