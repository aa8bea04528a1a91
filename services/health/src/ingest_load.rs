//! How busy this process is storing usage, so that the rollup task and the
//! live scorer give way to a saturated ingest — for a bounded time.
//!
//! An acknowledgement is what a client waits on; the rollups and the scores
//! are derived from stored events and can follow. On a machine whose cores
//! an ingest burst fills (a backfill, a client flushing a queue), the two
//! background tasks took half of what the ingest could have had
//! (docs/benchmarks.md, "Ingest against COPY"). So before each round they
//! look at the ingest: while it has been storing for most of the last few
//! milliseconds they wait, at most `BANSO_HEALTH_GIVE_WAY_MS`; then they
//! fold, or rescore, everything that came meanwhile in one round (each
//! account once), which is also less work per event. Below saturation —
//! every load the freshness benchmark runs, up to its knee — an ingest is
//! in flight a small share of the time, so they do not wait at all, or one
//! sample. The bound keeps the lag bounded past saturation: a score follows
//! its event within about twice the bound and a round.
//!
//! Only `IngestUsage` streams count, while a message is being stored: the
//! bulk path. Unary `BatchIngestUsage` calls do not — many clients each
//! sending a few live events keep some call in flight most of the time
//! without saturating anything, and their scores must not wait.
//!
//! Per process: a replica gives way to its own ingests only.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

// Tokio's clock, so that tests can run it paused.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long the ingest's busy share is sampled.
const SAMPLE: Duration = Duration::from_millis(20);
/// The busy share over a sample at which the ingest counts as saturated.
const SATURATED: f64 = 0.8;

/// Ingests in flight in this process and the time they kept it busy.
#[derive(Clone)]
pub(crate) struct IngestLoad {
    state: Arc<Mutex<State>>,
    give_way: Duration,
}

#[derive(Default)]
struct State {
    in_flight: usize,
    /// Since when some ingest has been in flight.
    busy_since: Option<Instant>,
    /// Busy time before `busy_since`.
    busy: Duration,
}

/// An ingest in flight; dropped when it is done.
pub(crate) struct Storing(IngestLoad);

impl IngestLoad {
    /// Background rounds wait for a saturated ingest at most `give_way`
    /// (zero: never).
    pub(crate) fn new(give_way: Duration) -> IngestLoad {
        IngestLoad { state: Arc::default(), give_way }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks an ingest in flight until the guard is dropped.
    pub(crate) fn storing(&self) -> Storing {
        let mut s = self.state();
        if s.in_flight == 0 {
            s.busy_since = Some(Instant::now());
        }
        s.in_flight += 1;
        Storing(self.clone())
    }

    /// The time some ingest was in flight so far, and whether one is now.
    fn busy(&self) -> (Duration, bool) {
        let s = self.state();
        match s.busy_since {
            Some(since) => (s.busy + since.elapsed(), true),
            None => (s.busy, false),
        }
    }

    /// Before a round of background `task`: [`IngestLoad::wait_while_saturated`],
    /// the wait recorded in `banso_health_gave_way_seconds`.
    pub(crate) async fn give_way(&self, task: &'static str, shutdown: &CancellationToken) {
        crate::metrics::gave_way(task, self.wait_while_saturated(shutdown).await);
    }

    /// Waits while the ingest is saturated — in flight for at least 80% of
    /// each 20 ms sample — at most the bound; returns at once when no
    /// ingest is in flight. Returns how long it waited.
    async fn wait_while_saturated(&self, shutdown: &CancellationToken) -> Duration {
        let start = Instant::now();
        loop {
            let (before, storing) = self.busy();
            let left = self.give_way.saturating_sub(start.elapsed());
            if !storing || left.is_zero() {
                return start.elapsed();
            }
            let sampled = Instant::now();
            tokio::select! {
                _ = tokio::time::sleep(SAMPLE.min(left)) => {}
                _ = shutdown.cancelled() => return start.elapsed(),
            }
            let (after, _) = self.busy();
            if (after - before).as_secs_f64() < sampled.elapsed().as_secs_f64() * SATURATED {
                return start.elapsed();
            }
        }
    }
}

impl Drop for Storing {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0
            && let Some(since) = s.busy_since.take()
        {
            s.busy += since.elapsed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn background_rounds_wait_only_while_the_ingest_is_saturated_and_at_most_the_bound() {
        let load = IngestLoad::new(Duration::from_millis(500));
        let shutdown = CancellationToken::new();
        // Nothing in flight: no wait.
        assert_eq!(load.wait_while_saturated(&shutdown).await, Duration::ZERO);

        // Storing the whole time: the full bound.
        let storing = load.storing();
        assert_eq!(load.wait_while_saturated(&shutdown).await, Duration::from_millis(500));

        // Storing ends 50 ms in: the first sample after it shows a share
        // under 80%, and the wait ends there.
        let ends = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(storing);
        });
        let waited = load.wait_while_saturated(&shutdown).await;
        ends.await.unwrap();
        assert!(waited >= Duration::from_millis(40) && waited <= Duration::from_millis(60), "waited {waited:?}");

        // Storing a fifth of the time (4 ms in each 20): not saturated, one sample.
        let pulses = {
            let load = load.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    let s = load.storing();
                    tokio::time::sleep(Duration::from_millis(4)).await;
                    drop(s);
                    tokio::time::sleep(Duration::from_millis(16)).await;
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(load.wait_while_saturated(&shutdown).await, SAMPLE);
        pulses.abort();

        // Zero bound: never waits, even while storing.
        let never = IngestLoad::new(Duration::ZERO);
        let _s = never.storing();
        assert_eq!(never.wait_while_saturated(&shutdown).await, Duration::ZERO);
    }

    #[test]
    fn busy_time_counts_overlapping_ingests_once() {
        let load = IngestLoad::new(Duration::from_secs(1));
        let a = load.storing();
        let b = load.storing();
        drop(a);
        assert!(load.busy().1, "still storing while one is in flight");
        drop(b);
        let (busy, storing) = load.busy();
        assert!(!storing);
        assert!(busy < Duration::from_secs(1));
        // A new ingest starts a new busy span on top of the old.
        let _c = load.storing();
        assert!(load.busy().0 >= busy);
    }
}
