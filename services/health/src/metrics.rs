//! The Health service's metrics (docs/operations.md). Every counter is
//! registered at zero when the service starts, so a dashboard sees 0 before
//! the first event rather than no series at all.

use crate::{app::ingest::IngestOutcome, store::ingest::RolledUp};

/// Ingested usage events by what became of them.
pub(crate) const INGESTED_EVENTS_TOTAL: &str = "banso_health_ingested_events_total";
/// Ingested events folded into the daily rollups.
pub(crate) const ROLLED_UP_EVENTS_TOTAL: &str = "banso_health_rolled_up_events_total";
/// Per rollup round, how long its oldest batch had waited.
pub(crate) const ROLLUP_LAG_SECONDS: &str = "banso_health_rollup_lag_seconds";
/// Per background round that waited for a saturated ingest, how long, by task.
pub(crate) const GAVE_WAY_SECONDS: &str = "banso_health_gave_way_seconds";

/// Accounts the live scorer of this replica rescored.
pub(crate) const LIVE_SCORED_ACCOUNTS_TOTAL: &str = "banso_health_live_scored_accounts_total";
/// Accounts this replica handed over to the replica holding their partition.
pub(crate) const HANDED_OVER_ACCOUNTS_TOTAL: &str = "banso_health_handed_over_accounts_total";

/// The `outcome` label values of [`INGESTED_EVENTS_TOTAL`].
const OUTCOMES: [&str; 3] = ["accepted", "duplicate", "rejected"];

/// Describes the metrics and registers the counters at zero.
pub(crate) fn register() {
    // The recorder must exist before anything is registered with it.
    let _ = banso_kit::telemetry::prometheus();
    metrics::describe_counter!(
        INGESTED_EVENTS_TOTAL,
        "usage events ingested, by outcome: accepted (stored now), duplicate (stored before), rejected"
    );
    metrics::describe_counter!(ROLLED_UP_EVENTS_TOTAL, "ingested events folded into the daily rollups");
    metrics::describe_histogram!(
        ROLLUP_LAG_SECONDS,
        "per rollup round, how long its oldest batch had waited since it was acknowledged"
    );
    metrics::describe_histogram!(
        GAVE_WAY_SECONDS,
        "per round of the rollup task or the live scorer (task) that waited for a saturated ingest, how long"
    );
    metrics::describe_counter!(LIVE_SCORED_ACCOUNTS_TOTAL, "accounts the live scorer of this replica rescored");
    metrics::describe_counter!(
        HANDED_OVER_ACCOUNTS_TOTAL,
        "accounts queued on this replica and handed over to the replica holding their partition"
    );
    metrics::counter!(LIVE_SCORED_ACCOUNTS_TOTAL).increment(0);
    metrics::counter!(HANDED_OVER_ACCOUNTS_TOTAL).increment(0);
    for outcome in OUTCOMES {
        metrics::counter!(INGESTED_EVENTS_TOTAL, "outcome" => outcome).increment(0);
    }
    metrics::counter!(ROLLED_UP_EVENTS_TOTAL).increment(0);
}

/// Counts what became of one ingested batch.
pub(crate) fn ingested(outcome: &IngestOutcome) {
    let counts = [outcome.accepted, outcome.duplicates, outcome.rejected];
    for (label, n) in OUTCOMES.into_iter().zip(counts) {
        metrics::counter!(INGESTED_EVENTS_TOTAL, "outcome" => label).increment(n);
    }
}

/// Counts a rollup round and the lag it caught up.
pub(crate) fn rolled_up(done: &RolledUp) {
    metrics::counter!(ROLLED_UP_EVENTS_TOTAL).increment(u64::try_from(done.events).unwrap_or(0));
    if let Some(oldest) = done.oldest {
        let lag = (chrono::Utc::now() - oldest).to_std().unwrap_or_default();
        metrics::histogram!(ROLLUP_LAG_SECONDS).record(lag.as_secs_f64());
    }
}

/// Records how long a background round waited for a saturated ingest.
pub(crate) fn gave_way(task: &'static str, waited: std::time::Duration) {
    if !waited.is_zero() {
        metrics::histogram!(GAVE_WAY_SECONDS, "task" => task).record(waited.as_secs_f64());
    }
}

/// Counts accounts the live scorer rescored.
pub(crate) fn live_scored(accounts: usize) {
    metrics::counter!(LIVE_SCORED_ACCOUNTS_TOTAL).increment(accounts as u64);
}

/// Counts accounts handed over to other replicas.
pub(crate) fn handed_over(accounts: usize) {
    metrics::counter!(HANDED_OVER_ACCOUNTS_TOTAL).increment(accounts as u64);
}
