//! Etags of versioned resources (AIP-154): `v<version>`, one format for
//! every service. An update or delete that sends one applies only to that
//! version; a stale one is ABORTED, a malformed one INVALID_ARGUMENT.

use crate::error::{Error, Result, shown};

/// The etag of a stored version of a resource.
pub fn of(version: i64) -> String {
    format!("v{version}")
}

/// The version a caller's etag names: `None` when it sent none.
pub fn parse(field: &str, etag: &str) -> Result<Option<i64>> {
    if etag.is_empty() {
        return Ok(None);
    }
    // Clients that quote etags as HTTP does are read the same.
    let bare = etag.trim_matches('"');
    bare.strip_prefix('v')
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| Error::invalid(field, format!("{} is not an etag this API gave out (e.g. \"v3\")", shown(etag))))
}

/// ABORTED `ETAG_MISMATCH` unless the caller expected no version or `current`.
pub fn check(resource: &str, expected: Option<i64>, current: i64) -> Result<()> {
    match expected {
        Some(v) if v != current => Err(Error::Aborted {
            reason: "ETAG_MISMATCH",
            message: format!(
                "etag {:?} of {resource} is stale; the current etag is {:?}: read it again and retry",
                of(v),
                of(current)
            ),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_round_trip_and_refuse_garbage() {
        assert_eq!(parse("etag", "").unwrap(), None);
        assert_eq!(parse("etag", &of(7)).unwrap(), Some(7));
        assert_eq!(parse("etag", "\"v7\"").unwrap(), Some(7));
        for bad in ["7", "v", "v-1", "vx", "v99999999999999999999", "W/\"v1\""] {
            assert!(matches!(parse("etag", bad), Err(Error::InvalidArgument(_))), "{bad}");
        }
        assert!(check("account", None, 3).is_ok());
        assert!(check("account", Some(3), 3).is_ok());
        assert!(matches!(check("account", Some(2), 3), Err(Error::Aborted { reason: "ETAG_MISMATCH", .. })));
    }
}
