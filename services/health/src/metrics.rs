//! The Health service's metrics (docs/operations.md).

use crate::store::ingest::RolledUp;

/// Ingested events folded into the daily rollups.
pub(crate) const ROLLED_UP_EVENTS_TOTAL: &str = "banso_health_rolled_up_events_total";
/// Per rollup round, how long its oldest batch had waited.
pub(crate) const ROLLUP_LAG_SECONDS: &str = "banso_health_rollup_lag_seconds";

/// Counts a rollup round and the lag it caught up.
pub(crate) fn rolled_up(done: &RolledUp) {
    metrics::counter!(ROLLED_UP_EVENTS_TOTAL).increment(u64::try_from(done.events).unwrap_or(0));
    if let Some(oldest) = done.oldest {
        let lag = (chrono::Utc::now() - oldest).to_std().unwrap_or_default();
        metrics::histogram!(ROLLUP_LAG_SECONDS).record(lag.as_secs_f64());
    }
}
