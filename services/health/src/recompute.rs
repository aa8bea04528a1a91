//! Full recomputes of a tenant, as background jobs with progress.
//!
//! A job is a row: queued by StartRecompute, a scorecard created or edited,
//! a segment or time-zone change (each in the transaction of its cause), or
//! the daily schedule (usage windows slide with the calendar, so an account
//! that stopped using the product must lose points without an event to say
//! so). A runner in every replica claims queued jobs; the claimant renews a
//! lease after each chunk of accounts and records a cursor, so a job whose
//! replica died is resumed by another one where it stopped. At most one job
//! per tenant is queued or running.
//!
//! A job scores through the same code as live rescoring ([`Scoring`]),
//! reading the next chunk's inputs while the previous chunk's scores are
//! stored, while ingest goes on: a score is stored only if no score computed
//! from newer inputs is there already.

use std::{collections::HashMap, sync::Arc, time::Duration};

use banso_kit::{Result, supervise::Supervisor};
use chrono::Utc;
use futures::{StreamExt as _, TryFutureExt as _, future::BoxFuture};
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    domain::rollup::day_of,
    scorer::{CHUNK, Inputs, Scoring, TenantContext},
    store::{
        self,
        jobs::{Job, JobState, Trigger},
    },
};

/// A running job's lease: renewed after every chunk; a job not renewed for
/// this long is taken over by another runner.
const LEASE: Duration = Duration::from_secs(60);
/// How often a runner looks for jobs queued elsewhere.
const POLL: Duration = Duration::from_secs(5);
/// How often the daily schedule is checked.
const DAILY_CHECK: Duration = Duration::from_secs(600);

/// Chunks whose inputs a job reads at once while it stores the one before:
/// two keep both of a small machine's cores busy with the reads, most of a
/// job's database time (docs/benchmarks.md, "Recompute").
const READ_AHEAD: usize = 2;

/// Wakes this replica's runner, and runs jobs.
#[derive(Clone)]
pub(crate) struct Recompute {
    scoring: Scoring,
    wake: Arc<Notify>,
}

impl Recompute {
    /// Starts this replica's runner under the supervisor; it stops with
    /// shutdown between chunks (the job resumes from its cursor once its
    /// lease lapses).
    pub(crate) fn supervise(scoring: Scoring, supervisor: &Supervisor, service: &'static str) -> Recompute {
        let runner = Recompute { scoring, wake: Arc::new(Notify::new()) };
        let r = runner.clone();
        supervisor.spawn(service, "health-recompute", move |shutdown| {
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
    pub(crate) fn idle(scoring: Scoring) -> Recompute {
        Recompute { scoring, wake: Arc::new(Notify::new()) }
    }

    /// Claims the oldest queued job and runs it here and now (tests that
    /// run jobs by hand); its id, if there was one.
    #[cfg(test)]
    pub(crate) async fn run_queued(&self) -> Option<Uuid> {
        let job = store::jobs::claim(self.scoring.db.conn(), Utc::now()).await.unwrap()?;
        let id = job.id;
        self.execute(job, &CancellationToken::new()).await;
        Some(id)
    }

    /// A job was queued (and committed): run it now rather than at the next poll.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    async fn run(&self, shutdown: CancellationToken) {
        let mut next_daily = Instant::now();
        loop {
            if Instant::now() >= next_daily {
                if let Err(e) = self.schedule_daily().await {
                    tracing::warn!(error = %e, "daily recompute schedule failed");
                }
                next_daily = Instant::now() + DAILY_CHECK;
            }
            let stale = Utc::now() - chrono::Duration::seconds(LEASE.as_secs() as i64);
            match store::jobs::claim(self.scoring.db.conn(), stale).await {
                Ok(Some(job)) => {
                    self.execute(job, &shutdown).await;
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
        let db = &self.scoring.db;
        for tenant in store::accounts::tenants(db.conn()).await? {
            let tz = store::tenants::time_zone(db.conn(), &tenant).await?;
            let today = day_of(Utc::now(), tz);
            let last = store::jobs::last_time(db.conn(), &tenant).await?;
            if last.is_none_or(|t| day_of(t, tz) < today) {
                db.write(&tenant, async |tx| store::jobs::queue(tx.conn(), &tenant, Trigger::Daily).await).await?;
            }
        }
        Ok(())
    }

    async fn execute(&self, mut job: Job, shutdown: &CancellationToken) {
        let span =
            tracing::info_span!("recompute", job = %job.id, tenant = %job.tenant_id, trigger = job.trigger.as_str());
        let _enter = span.enter();
        let conn = self.scoring.db.conn();
        match self.chunks(&mut job, shutdown).await {
            Ok(true) => {
                tracing::info!(
                    accounts = job.accounts_done,
                    scored = job.accounts_scored,
                    changed = job.scores_changed,
                    "recompute done"
                );
                if let Err(e) = store::jobs::finish(conn, job.id, JobState::Succeeded, "").await {
                    tracing::warn!(error = %e, "could not mark the recompute done");
                }
            }
            // Stopping, or another runner took the job over: it resumes there.
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "recompute failed");
                if let Err(e2) = store::jobs::finish(conn, job.id, JobState::Failed, &e.to_string()).await {
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
        after: Option<Uuid>,
    ) -> Result<Option<(Inputs<'c>, Uuid, usize)>> {
        let rows = store::accounts::page(self.scoring.db.conn(), tenant, after, CHUNK as u64).await?;
        let Some(last) = rows.last().map(|r| r.account_id) else { return Ok(None) };
        let n = rows.len();
        Ok(Some((self.scoring.read_inputs(tenant, ctx, rows).await?, last, n)))
    }

    /// Every account's value of `measures`, computed as scoring would, chunk
    /// by chunk; `None` if stopped.
    async fn values_ahead(
        &self,
        tenant: &str,
        ctx: &TenantContext,
        measures: &[String],
        shutdown: &CancellationToken,
    ) -> Result<Option<HashMap<String, HashMap<Uuid, f64>>>> {
        let mut out: HashMap<String, HashMap<Uuid, f64>> = HashMap::new();
        let mut after = None;
        while let Some((inputs, last, _)) = self.read_chunk(tenant, ctx, after).await? {
            if shutdown.is_cancelled() {
                return Ok(None);
            }
            for (account, values) in inputs.values(ctx) {
                for m in measures {
                    if let Some(Some(v)) = values.get(m) {
                        out.entry(m.clone()).or_default().insert(account, *v);
                    }
                }
            }
            after = Some(last);
        }
        Ok(Some(out))
    }

    /// Scores the tenant chunk by chunk from the job's cursor; false if it
    /// stopped before the end.
    async fn chunks(&self, job: &mut Job, shutdown: &CancellationToken) -> Result<bool> {
        let conn = self.scoring.db.conn();
        let tenant = job.tenant_id.clone();
        let mut ctx = TenantContext::load(conn, &tenant).await?;
        // A scorecard ranks by a measure no account has a value of yet (a new
        // scorecard, say): every account's value first, so that the first
        // chunks rank among the whole tenant rather than among themselves.
        let unpopulated = ctx.unpopulated();
        if job.cursor.is_none() && !unpopulated.is_empty() {
            match self.values_ahead(&tenant, &ctx, &unpopulated, shutdown).await? {
                Some(values) => ctx.rank_ahead(values),
                None => return Ok(false),
            }
        }
        // All accounts for a fresh job; those after the cursor for a resumed one.
        job.accounts_total = job.accounts_done + store::accounts::count(conn, &tenant, job.cursor).await?;
        if !store::jobs::progress(conn, job).await? {
            return Ok(false);
        }
        let mut chunks: u64 = 0;
        // The chunks' inputs are read READ_AHEAD at a time, on their own
        // connections (the reads are most of a job's database time), while
        // the database stores the chunk before: the service's work and the
        // database's overlap instead of taking turns.
        let mut reads = futures::stream::FuturesOrdered::new();
        // Where the next page of accounts begins; none past the last.
        let mut paged = Some(job.cursor);
        let mut current = None;
        loop {
            if shutdown.is_cancelled() {
                return Ok(false);
            }
            while reads.len() < READ_AHEAD
                && let Some(after) = paged
            {
                let rows = store::accounts::page(conn, &tenant, after, CHUNK as u64).await?;
                let Some(last) = rows.last().map(|r| r.account_id) else {
                    paged = None;
                    break;
                };
                paged = Some(Some(last));
                let n = rows.len();
                let read: BoxFuture<'_, Result<(Inputs<'_>, Uuid, usize)>> =
                    Box::pin(self.scoring.read_inputs(&tenant, &ctx, rows).map_ok(move |inputs| (inputs, last, n)));
                reads.push_back(read);
            }
            let chunk = match current.take() {
                Some(chunk) => chunk,
                None => match reads.next().await {
                    Some(read) => read?,
                    None => break,
                },
            };
            let (inputs, last, n) = chunk;
            let (out, following) = tokio::join!(self.scoring.score_inputs(&tenant, &ctx, inputs), reads.next());
            current = following.transpose()?;
            let out = out?;
            chunks += 1;
            // After chunks 1, 2, 4, 8, …: the tables grew by half since.
            if chunks.is_power_of_two()
                && let Err(e) = store::jobs::refresh_statistics(conn).await
            {
                tracing::warn!(tenant, error = %e, "refreshing statistics failed");
            }
            job.cursor = Some(last);
            job.accounts_done += n as i64;
            job.accounts_scored += out.scored as i64;
            job.scores_changed += out.changed as i64;
            // Accounts created meanwhile are scored too.
            job.accounts_total = job.accounts_total.max(job.accounts_done);
            if !store::jobs::progress(conn, job).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use banso_kit::auth::{Caller, Role};

    use crate::{
        app::scorecards::{CreateScorecard, ScorecardChanges, UpdateScorecard},
        domain::{
            account::{AccountRow, LifecycleStage, TouchModel},
            scorecard::{Bands, Direction, MissingData, Normalisation, Scope, ScorecardDef, WeightedMeasure},
        },
        store::{self, jobs::JobState},
    };

    fn admin() -> Caller {
        Caller { tenant_id: "acme".into(), subject: "test".into(), roles: vec![Role::Admin] }
    }

    /// `n` accounts of tenant acme, in id order, each with the external
    /// measures `values(i)` gives the i-th.
    async fn accounts(
        conn: &sea_orm::DatabaseConnection,
        n: u32,
        values: impl Fn(u32) -> Vec<(&'static str, f64)>,
    ) -> Vec<uuid::Uuid> {
        let now = banso_kit::wire::now();
        let mut ids = Vec::new();
        for i in 0..n {
            let row = AccountRow {
                account_id: uuid::Uuid::now_v7(),
                name: format!("Account {i}"),
                lifecycle_stage: LifecycleStage::Adoption,
                touch_model: TouchModel::Low,
                ..Default::default()
            };
            store::accounts::upsert(conn, "acme", &row).await.unwrap();
            for (measure, v) in values(i) {
                store::measures::set(conn, "acme", row.account_id, measure, Some(v), now).await.unwrap();
            }
            ids.push(row.account_id);
        }
        ids
    }

    fn weighted(measure: &str, normalisation: Normalisation) -> WeightedMeasure {
        WeightedMeasure {
            measure: measure.into(),
            weight: 1.0,
            normalisation,
            direction: Direction::HigherIsBetter,
            missing: MissingData::SkipAndReweight,
        }
    }

    fn scorecard(name: &str, measures: Vec<WeightedMeasure>) -> CreateScorecard {
        let def = ScorecardDef { name: name.into(), scope: Scope::All, measures, bands: Bands::default() };
        CreateScorecard { def, request_id: None }
    }

    /// A scorecard ranking by a measure no account has a value of yet: its
    /// first recompute ranks every account among the whole tenant, not each
    /// chunk of 1,000 accounts among itself.
    #[tokio::test]
    async fn a_new_percentile_ranks_among_the_whole_tenant_from_the_first_job() {
        let guard = banso_testkit::fresh_database().await.unwrap();
        let app = crate::testing::app(&guard).await;
        let conn = app.db.conn();
        let ids = accounts(conn, 1_500, |i| vec![("csat", f64::from(i))]).await;
        let card = scorecard("CSAT rank", vec![weighted("external:csat", Normalisation::Percentile)]);
        app.create_scorecard(&admin(), card).await.unwrap();
        let job = app.recompute.run_queued().await.expect("creating the scorecard queued a job");
        let job = store::jobs::get_job(conn, "acme", job).await.unwrap();
        assert_eq!((job.state, job.accounts_scored), (JobState::Succeeded, 1_500), "{job:?}");
        // The last account of the first chunk ranks 999th of 1,500, not first of 1,000.
        let scores = store::health::of(conn, "acme", &[ids[0], ids[999], ids[1_499]]).await.unwrap();
        let score = |i: usize| scores[&ids[i]].score;
        assert_eq!((score(0), score(999), score(1_499)), (0.0, 66.6, 100.0));
    }

    /// A job of several chunks, read two at a time ahead of the one being
    /// stored: every account scored once, from its own inputs, in order.
    #[tokio::test]
    async fn chunks_read_ahead_score_every_account_from_its_own_inputs() {
        let guard = banso_testkit::fresh_database().await.unwrap();
        let app = crate::testing::app(&guard).await;
        let conn = app.db.conn();
        let ids = accounts(conn, 2_600, |i| vec![("csat", f64::from(i % 101))]).await;
        let linear = Normalisation::Linear { min: 0.0, max: 100.0 };
        app.create_scorecard(&admin(), scorecard("CSAT", vec![weighted("external:csat", linear)])).await.unwrap();
        let job = app.recompute.run_queued().await.expect("creating the scorecard queued a job");
        let job = store::jobs::get_job(conn, "acme", job).await.unwrap();
        assert_eq!(job.state, JobState::Succeeded, "{job:?}");
        assert_eq!((job.accounts_total, job.accounts_done, job.accounts_scored), (2_600, 2_600, 2_600));
        assert_eq!(job.cursor, ids.iter().max().copied());
        let scores = store::health::of(conn, "acme", &ids).await.unwrap();
        assert_eq!(scores.len(), 2_600);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(scores[id].score, f64::from(i as u32 % 101), "account {i}");
        }
    }

    /// Only the measures some scorecard ranks by are kept as snapshots (the
    /// percentile populations are all that reads them); a measure ranked
    /// later has none and its recompute computes them ahead, so it still
    /// ranks among the whole tenant.
    #[tokio::test]
    async fn only_ranked_measures_keep_snapshots_and_one_ranked_later_ranks_among_all() {
        let guard = banso_testkit::fresh_database().await.unwrap();
        let app = crate::testing::app(&guard).await;
        let conn = app.db.conn();
        let ids = accounts(conn, 1_200, |i| vec![("csat", f64::from(i)), ("nps", f64::from(i % 11))]).await;
        let linear = Normalisation::Linear { min: 0.0, max: 10.0 };
        let measures = vec![weighted("external:csat", Normalisation::Percentile), weighted("external:nps", linear)];
        let card = app.create_scorecard(&admin(), scorecard("CSAT rank, NPS linear", measures)).await.unwrap();
        let job = app.recompute.run_queued().await.expect("creating the scorecard queued a job");
        assert_eq!(store::jobs::get_job(conn, "acme", job).await.unwrap().state, JobState::Succeeded);
        let population = async |m: &str| store::measures::population(conn, "acme", m).await.unwrap();
        assert_eq!(population("external:csat").await.len(), 1_200);
        assert!(population("external:nps").await.is_empty(), "an unranked measure keeps no snapshots");

        // NPS ranked from now on: no snapshot of it, so the recompute
        // computes every account's ahead and the first chunk ranks among all.
        let measures = vec![
            weighted("external:csat", Normalisation::Percentile),
            weighted("external:nps", Normalisation::Percentile),
        ];
        let changes = ScorecardChanges { measures: Some(measures), ..Default::default() };
        app.update_scorecard(&admin(), UpdateScorecard { id: card.id, etag: None, changes }).await.unwrap();
        let job = app.recompute.run_queued().await.expect("changing the scorecard queued a job");
        assert_eq!(store::jobs::get_job(conn, "acme", job).await.unwrap().state, JobState::Succeeded);
        let nps = population("external:nps").await;
        assert_eq!(nps.len(), 1_200);
        assert_eq!((nps[0], nps[1_199]), (0.0, 10.0));
        // Accounts 10 and 1,198 both answered NPS 10; one is scored in the
        // first chunk of 1,000, the other in the last: each ranked among the
        // whole tenant, they get the same points.
        let health = store::health::of(conn, "acme", &[ids[10], ids[1_198]]).await.unwrap();
        let points = |i: usize| {
            let c = health[&ids[i]].contributions.iter().find(|c| c.measure == "external:nps").unwrap();
            assert_eq!(c.raw, Some(10.0));
            c.points
        };
        assert_eq!(points(10), points(1_198));
        assert!(points(10).is_some_and(|p| p > 90.0), "{:?}", points(10));
    }
}
