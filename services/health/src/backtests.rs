//! Backtests in the background: a runner in every replica claims queued
//! backtest jobs (`store::backtest_jobs`, under a lease), runs each as
//! BacktestScorecard would (`app::backtest::run`) and keeps its result for
//! GetBacktestJob. A replica that dies mid-job leaves the lease to lapse;
//! another runner then runs the job again from the start (a backtest writes
//! nothing else, so a rerun is harmless).

use std::{sync::Arc, time::Duration};

use banso_events::Db;
use banso_kit::supervise::Supervisor;
use chrono::Utc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    app,
    store::{self, backtest_jobs::BacktestJob},
};

/// How long a runner holds a job: a backtest is one read and an in-memory
/// computation, not resumable by chunks, so the lease covers the longest
/// (the goal is 30 s for 10,000 accounts × 365 days; docs/health.md).
const LEASE: Duration = Duration::from_secs(30 * 60);
/// How often a runner looks for jobs queued elsewhere.
const POLL: Duration = Duration::from_secs(5);

/// Wakes this replica's runner.
#[derive(Clone)]
pub(crate) struct Backtests {
    db: Db,
    wake: Arc<Notify>,
}

impl Backtests {
    /// Starts this replica's runner under the supervisor.
    pub(crate) fn supervise(db: Db, supervisor: &Supervisor, service: &'static str) -> Backtests {
        let runner = Backtests { db, wake: Arc::new(Notify::new()) };
        let r = runner.clone();
        supervisor.spawn(service, "health-backtests", move |shutdown| {
            let r = r.clone();
            async move {
                r.run(shutdown).await;
                Ok(())
            }
        });
        runner
    }

    /// A runner that never runs (tests that run jobs by hand).
    #[cfg(test)]
    pub(crate) fn idle(db: Db) -> Backtests {
        Backtests { db, wake: Arc::new(Notify::new()) }
    }

    /// A job was queued (and committed): run it now rather than at the next poll.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    async fn run(&self, shutdown: CancellationToken) {
        loop {
            let owner = uuid::Uuid::now_v7().to_string();
            let now = Utc::now();
            let until = now + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::minutes(30));
            match store::backtest_jobs::claim(self.db.conn(), &owner, now, until).await {
                Ok(Some((tenant, job))) => {
                    self.execute(&owner, &tenant, job).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "claiming a backtest job failed"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn execute(&self, owner: &str, tenant: &str, job: BacktestJob) {
        let report = app::backtest::Report::Job { id: job.id, owner };
        let outcome = app::backtest::run(&self.db, tenant, job.query, report).await;
        if let Err(e) = &outcome {
            tracing::warn!(tenant, job = %job.id, error = %e, "a backtest job failed");
        }
        match store::backtest_jobs::finish(self.db.conn(), tenant, job.id, owner, &outcome).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(tenant, job = %job.id, "a backtest job's lease was lost before it finished"),
            Err(e) => tracing::warn!(tenant, job = %job.id, error = %e, "storing a backtest job's result failed"),
        }
    }
}
