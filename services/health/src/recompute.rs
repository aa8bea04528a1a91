//! Full recomputes of a tenant, as background jobs with progress.
//!
//! A job is a row: queued by StartRecompute, a scorecard edit, a segment or
//! time-zone change, or the daily schedule (usage windows slide with the
//! calendar, so an account that stopped using the product must lose points
//! without an event to say so). A runner in every replica claims queued
//! jobs; the claimant renews a lease after each chunk of accounts and
//! records a cursor, so a job whose replica died is resumed by another one
//! where it stopped. At most one job per tenant is queued or running.
//!
//! A job scores through the same code as live rescoring
//! ([`crate::scorer::read_inputs`], [`score_inputs`]), reading the next
//! chunk's inputs while the previous chunk's scores are stored, while ingest
//! goes on: a score is stored only if no score computed from newer inputs is
//! there already.

use std::{sync::Arc, time::Duration};

use banso_kit::{Result, supervise::Supervisor};
use chrono::Utc;
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::{
    domain::rollup::day_of,
    scorer::{CHUNK, Inputs, TenantContext, read_inputs, score_inputs},
    store::{
        Store,
        jobs::{Job, JobState},
    },
};

/// A running job's lease: renewed after every chunk; a job not renewed for
/// this long is taken over by another runner.
const LEASE: Duration = Duration::from_secs(60);
/// How often a runner looks for jobs queued elsewhere.
const POLL: Duration = Duration::from_secs(5);
/// How often the daily schedule is checked.
const DAILY_CHECK: Duration = Duration::from_secs(600);

/// Why a job was queued, as GetRecomputeJob reports it.
pub mod trigger {
    pub const API: &str = "api";
    pub const SCORECARD: &str = "scorecard";
    pub const SEGMENT: &str = "segment";
    pub const TIME_ZONE: &str = "time_zone";
    pub const DAILY: &str = "daily";
}

/// Starts recompute jobs and runs them.
#[derive(Clone)]
pub struct Recompute {
    store: Store,
    wake: Arc<Notify>,
}

impl Recompute {
    /// Starts this replica's runner under the supervisor; it stops with
    /// shutdown between chunks (the job resumes from its cursor once its
    /// lease lapses).
    pub fn supervise(store: Store, step: f64, supervisor: &Supervisor, service: &'static str) -> Recompute {
        let wake = Arc::new(Notify::new());
        let runner = Recompute { store, wake };
        let r = runner.clone();
        supervisor.spawn(service, "health-recompute", move |shutdown| {
            let r = r.clone();
            async move {
                r.run(step, shutdown).await;
                Ok(())
            }
        });
        runner
    }

    /// Queues a job for the tenant (or returns the one queued or running).
    pub async fn start(&self, tenant: &str, trigger: &str, request_id: Option<&str>) -> Result<Job> {
        let job = self.store.start_job(tenant, trigger, request_id).await?;
        self.wake.notify_one();
        Ok(job)
    }

    /// Queues a job from a background path, where a failure can only be logged.
    pub async fn start_logged(&self, tenant: &str, trigger: &str) {
        if let Err(e) = self.start(tenant, trigger, None).await {
            tracing::warn!(tenant, trigger, error = %e, "could not queue a recompute");
        }
    }

    async fn run(&self, step: f64, shutdown: CancellationToken) {
        let mut next_daily = Instant::now();
        loop {
            if Instant::now() >= next_daily {
                if let Err(e) = self.schedule_daily().await {
                    tracing::warn!(error = %e, "daily recompute schedule failed");
                }
                next_daily = Instant::now() + DAILY_CHECK;
            }
            let stale = Utc::now() - chrono::Duration::from_std(LEASE).expect("small");
            match self.store.claim_job(stale).await {
                Ok(Some(job)) => {
                    self.execute(job, step, &shutdown).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "claiming a recompute job failed"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Queues a daily job for every tenant without a job since its midnight.
    async fn schedule_daily(&self) -> Result<()> {
        for tenant in self.store.tenants().await? {
            let tz = self.store.time_zone(&tenant).await?;
            let today = day_of(Utc::now(), tz);
            let last = self.store.last_job_time(&tenant).await?;
            if last.is_none_or(|t| day_of(t, tz) < today) {
                self.start(&tenant, trigger::DAILY, None).await?;
            }
        }
        Ok(())
    }

    async fn execute(&self, mut job: Job, step: f64, shutdown: &CancellationToken) {
        let span = tracing::info_span!("recompute", job = %job.id, tenant = %job.tenant_id, trigger = %job.trigger);
        let _enter = span.enter();
        match self.chunks(&mut job, step, shutdown).await {
            Ok(true) => {
                tracing::info!(
                    accounts = job.accounts_done,
                    scored = job.accounts_scored,
                    changed = job.scores_changed,
                    "recompute done"
                );
                if let Err(e) = self.store.finish_job(job.id, JobState::Succeeded, "").await {
                    tracing::warn!(error = %e, "could not mark the recompute done");
                }
            }
            // Stopping, or another runner took the job over: it resumes there.
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "recompute failed");
                if let Err(e2) = self.store.finish_job(job.id, JobState::Failed, &e.to_string()).await {
                    tracing::warn!(error = %e2, "could not mark the recompute failed");
                }
            }
        }
    }

    /// The inputs of the chunk of accounts after `after` (by id), its last
    /// account and its size; `None` past the last account.
    async fn read_chunk<'c>(
        &self,
        tenant: &str,
        ctx: &'c TenantContext,
        after: Option<uuid::Uuid>,
    ) -> Result<Option<(Inputs<'c>, uuid::Uuid, usize)>> {
        let rows = self.store.accounts_page(tenant, after, CHUNK as u64).await?;
        let Some(last) = rows.last().map(|r| r.account_id) else { return Ok(None) };
        let n = rows.len();
        Ok(Some((read_inputs(&self.store, tenant, ctx, rows).await?, last, n)))
    }

    /// Scores the tenant chunk by chunk from the job's cursor; false if it
    /// stopped before the end.
    async fn chunks(&self, job: &mut Job, step: f64, shutdown: &CancellationToken) -> Result<bool> {
        let tenant = job.tenant_id.clone();
        let ctx = TenantContext::load(&self.store, &tenant).await?;
        // All accounts for a fresh job; those after the cursor for a resumed one.
        job.accounts_total = job.accounts_done + self.store.count_accounts(&tenant, job.cursor).await?;
        if !self.store.job_progress(job).await? {
            return Ok(false);
        }
        let mut chunks: u64 = 0;
        let mut next = self.read_chunk(&tenant, &ctx, job.cursor).await?;
        loop {
            if shutdown.is_cancelled() {
                return Ok(false);
            }
            let Some((inputs, last, n)) = next.take() else { break };
            // The database stores this chunk's scores while it reads the
            // next chunk's inputs, on another connection: the service's work
            // and the database's overlap instead of taking turns.
            let (out, following) = tokio::join!(
                score_inputs(&self.store, &tenant, &ctx, inputs, step),
                self.read_chunk(&tenant, &ctx, Some(last)),
            );
            let out = out?;
            next = following?;
            chunks += 1;
            // After chunks 1, 2, 4, 8, …: the tables grew by half since.
            if chunks.is_power_of_two()
                && let Err(e) = self.store.refresh_statistics().await
            {
                tracing::warn!(tenant, error = %e, "refreshing statistics failed");
            }
            job.cursor = Some(last);
            job.accounts_done += n as i64;
            job.accounts_scored += out.scored as i64;
            job.scores_changed += out.changed as i64;
            // Accounts created meanwhile are scored too.
            job.accounts_total = job.accounts_total.max(job.accounts_done);
            if !self.store.job_progress(job).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
