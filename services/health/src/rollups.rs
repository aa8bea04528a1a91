//! The rollup task: folds ingested batches into the daily rollups, records
//! UsageSeen when an account's latest day of usage advances, and queues the
//! accounts they touched for the live scorer.
//!
//! Ingest acknowledges once a batch's raw events are stored
//! ([`crate::store::ingest::Ingest::store`]); the rollups are derived from them here, off the
//! request path, so the acknowledgement costs what storing the events costs.
//! An ingest wakes the task at once, so in steady flow a batch is rolled up
//! milliseconds after it is acknowledged; under a burst the task folds
//! several batches per transaction and catches up. The queue is the
//! `ingest_batches` table, so a batch acknowledged just before a crash is
//! rolled up after the restart, by this replica or any other (they poll).

use std::{sync::Arc, time::Duration};

use banso_events::Db;
use banso_kit::supervise::Supervisor;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{ingest_load::IngestLoad, metrics, scorer::Scorer, store};

/// Batches folded per transaction at most (5,000 events each at most).
const BATCHES_PER_ROUND: u64 = 16;
/// How often the task looks for pending batches nobody woke it for: those
/// of a replica that stopped before rolling them up.
const POLL: Duration = Duration::from_secs(1);
/// The longest the task rests after catching up.
const MAX_REST: Duration = Duration::from_millis(500);
/// Pause after a failed round (the database is away, say).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Wakes the rollup task.
#[derive(Clone)]
pub(crate) struct Rollups {
    wake: Arc<Notify>,
}

impl Rollups {
    /// Starts the task under the supervisor; it stops with shutdown, after
    /// its current round (what is left pending is rolled up after the next
    /// start).
    pub(crate) fn supervise(
        db: Db,
        scorer: Scorer,
        load: IngestLoad,
        supervisor: &Supervisor,
        service: &'static str,
    ) -> Rollups {
        let wake = Arc::new(Notify::new());
        let woken = wake.clone();
        supervisor.spawn(service, "health-rollups", move |shutdown| {
            let (db, scorer, woken, load) = (db.clone(), scorer.clone(), woken.clone(), load.clone());
            async move {
                loop {
                    let round = std::time::Instant::now();
                    let pause = drain(&db, &scorer, &load, &shutdown).await;
                    // Caught up: rest as long as catching up took. Under a burst
                    // the next round then folds the batches that came meanwhile
                    // in one go (fewer rollup rows per event) rather than each
                    // as it comes, and the ingest has the cores meanwhile. While
                    // behind, `drain` folds up to 16 batches a round without
                    // resting, so resting never makes the rollups fall behind.
                    // In steady flow a round and its rest are milliseconds.
                    let rest = round.elapsed().min(MAX_REST);
                    tokio::select! {
                        _ = tokio::time::sleep(rest) => {}
                        _ = shutdown.cancelled() => return Ok(()),
                    }
                    tokio::select! {
                        _ = woken.notified(), if pause.is_none() => {}
                        _ = tokio::time::sleep(pause.unwrap_or(POLL)) => {}
                        _ = shutdown.cancelled() => return Ok(()),
                    }
                }
            }
        });
        Rollups { wake }
    }

    /// A task that never runs (tests that roll up by hand).
    #[cfg(test)]
    pub(crate) fn idle() -> Rollups {
        Rollups { wake: Arc::new(Notify::new()) }
    }

    /// A batch was stored: roll it up now. (A wake-up while the task is busy
    /// is kept, so none is lost.)
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Rolls up until nothing is pending; `Some(pause)` after a failure.
///
/// A round first gives way to a saturated ingest (bounded), unless the
/// round before it was full: then the rounds after it fold, without
/// waiting, what came meanwhile until one is not full. Giving way before
/// every round would let a sustained saturating stream outrun the rollups
/// (one round of 16 batches per wait); this way each wait is followed by
/// catching up, which takes the cores from the ingest as long as it needs:
/// the rollups lag at most one wait more than they would without waiting.
async fn drain(db: &Db, scorer: &Scorer, load: &IngestLoad, shutdown: &CancellationToken) -> Option<Duration> {
    let mut behind = false;
    while !shutdown.is_cancelled() {
        if !behind {
            load.give_way("rollups", shutdown).await;
        }
        match store::ingest::roll_up(db.conn(), BATCHES_PER_ROUND).await {
            Ok(Some(done)) => {
                behind = done.batches as u64 >= BATCHES_PER_ROUND;
                if done.seen > 0 {
                    // UsageSeen events were committed with the rollups.
                    db.outbox().notify();
                }
                metrics::rolled_up(&done);
                for (tenant, accounts) in &done.touched {
                    for account in accounts {
                        scorer.account(tenant, *account);
                    }
                }
            }
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "rolling up ingested usage failed; retrying");
                return Some(RETRY_AFTER);
            }
        }
    }
    None
}
