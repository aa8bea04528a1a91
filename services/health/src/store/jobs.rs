//! Recompute jobs: queued, claimed under a lease, resumable from a cursor.

use banso_kit::{Error, Result, idempotency};
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use uuid::Uuid;

use super::{Store, build};

const OP_START_RECOMPUTE: &str = "StartRecompute";

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            other => return Err(Error::internal(anyhow::anyhow!("stored job state {other:?}"))),
        })
    }
}

/// A recompute job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: Uuid,
    pub tenant_id: String,
    pub state: JobState,
    pub trigger: String,
    pub accounts_total: i64,
    pub accounts_done: i64,
    pub accounts_scored: i64,
    pub scores_changed: i64,
    pub create_time: DateTime<Utc>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub error: String,
    pub cursor: Option<Uuid>,
}

const JOB_COLUMNS: [&str; 13] = [
    "id",
    "tenant_id",
    "state",
    "trigger",
    "accounts_total",
    "accounts_done",
    "accounts_scored",
    "scores_changed",
    "create_time",
    "start_time",
    "end_time",
    "error",
    "cursor",
];

fn job_from(r: &sea_orm::QueryResult) -> Result<Job> {
    Ok(Job {
        id: r.try_get("", "id")?,
        tenant_id: r.try_get("", "tenant_id")?,
        state: JobState::parse(&r.try_get::<String>("", "state")?)?,
        trigger: r.try_get("", "trigger")?,
        accounts_total: r.try_get("", "accounts_total")?,
        accounts_done: r.try_get("", "accounts_done")?,
        accounts_scored: r.try_get("", "accounts_scored")?,
        scores_changed: r.try_get("", "scores_changed")?,
        create_time: r.try_get("", "create_time")?,
        start_time: r.try_get("", "start_time")?,
        end_time: r.try_get("", "end_time")?,
        error: r.try_get("", "error")?,
        cursor: r.try_get("", "cursor")?,
    })
}

impl Store {
    pub async fn get_job(&self, tenant: &str, id: Uuid) -> Result<Job> {
        let q = Query::select()
            .columns(JOB_COLUMNS.map(Alias::new))
            .from(Alias::new("recompute_jobs"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .to_owned();
        let r = self.db.query_one_raw(build(&self.db, &q)).await?;
        job_from(&r.ok_or_else(|| Error::not_found("recompute job", id.to_string()))?)
    }

    /// The tenant's job in `state` (for running, one whose lease is fresh).
    async fn job_in_state(
        &self,
        conn: &impl ConnectionTrait,
        tenant: &str,
        state: JobState,
        stale: Option<DateTime<Utc>>,
    ) -> Result<Option<Job>> {
        let mut q = Query::select()
            .columns(JOB_COLUMNS.map(Alias::new))
            .from(Alias::new("recompute_jobs"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("state")).eq(state.as_str()))
            .limit(1)
            .to_owned();
        if let Some(stale) = stale {
            q.and_where(Expr::col(Alias::new("heartbeat_time")).gte(stale));
        }
        conn.query_one_raw(build(conn, &q)).await?.as_ref().map(job_from).transpose()
    }

    /// Queues a job for the tenant, or returns the one already queued (a
    /// unique index keeps it to one, across replicas; it reads everything
    /// when it starts, so it covers this request too). A `request_id` seen
    /// before returns the job it started.
    pub async fn start_job(&self, tenant: &str, trigger: &str, request_id: Option<&str>) -> Result<Job> {
        if let Some(key) = request_id
            && let Some(id) = idempotency::lookup(&self.db, tenant, OP_START_RECOMPUTE, key).await?
        {
            return self.get_job(tenant, Uuid::parse_str(&id).map_err(Error::internal)?).await;
        }
        let txn = self.db.begin().await?;
        let id = Uuid::now_v7();
        let now = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("in range");
        let insert = Query::insert()
            .into_table(Alias::new("recompute_jobs"))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "state",
                    "trigger",
                    "accounts_total",
                    "accounts_done",
                    "accounts_scored",
                    "scores_changed",
                    "create_time",
                    "error",
                ]
                .map(Alias::new),
            )
            .values_panic([
                id.into(),
                tenant.into(),
                JobState::Queued.as_str().into(),
                trigger.into(),
                0i64.into(),
                0i64.into(),
                0i64.into(),
                0i64.into(),
                now.into(),
                "".into(),
            ])
            .on_conflict(sea_orm::sea_query::OnConflict::new().do_nothing().to_owned())
            .to_owned();
        let inserted = txn.execute_raw(build(&txn, &insert)).await?.rows_affected() == 1;
        let job = if inserted {
            self.get_job_in(&txn, tenant, id).await?
        } else {
            match self.job_in_state(&txn, tenant, JobState::Queued, None).await? {
                Some(j) => j,
                // It started between the insert and this read: queue anew.
                None => {
                    txn.rollback().await?;
                    return Box::pin(self.start_job(tenant, trigger, request_id)).await;
                }
            }
        };
        if let Some(key) = request_id
            && let Err(e) = idempotency::record(&txn, tenant, OP_START_RECOMPUTE, key, &job.id.to_string()).await
        {
            txn.rollback().await?;
            return match (e, idempotency::lookup(&self.db, tenant, OP_START_RECOMPUTE, key).await?) {
                (Error::AlreadyExists(_), Some(id)) => {
                    self.get_job(tenant, Uuid::parse_str(&id).map_err(Error::internal)?).await
                }
                (e, _) => Err(e),
            };
        }
        txn.commit().await?;
        Ok(job)
    }

    async fn get_job_in(&self, conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Job> {
        let q = Query::select()
            .columns(JOB_COLUMNS.map(Alias::new))
            .from(Alias::new("recompute_jobs"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .to_owned();
        job_from(&conn.query_one_raw(build(conn, &q)).await?.ok_or_else(|| Error::not_found("recompute job", id))?)
    }

    /// Claims the oldest queued job, or a running one whose runner stopped
    /// renewing its lease before `stale`; sets it running with a fresh lease.
    pub async fn claim_job(&self, stale: DateTime<Utc>) -> Result<Option<Job>> {
        let q = Query::select()
            .columns(JOB_COLUMNS.map(Alias::new))
            .from(Alias::new("recompute_jobs"))
            .cond_where(
                sea_orm::sea_query::Cond::any().add(Expr::col(Alias::new("state")).eq(JobState::Queued.as_str())).add(
                    Expr::col(Alias::new("state"))
                        .eq(JobState::Running.as_str())
                        .and(Expr::col(Alias::new("heartbeat_time")).lt(stale)),
                ),
            )
            .order_by(Alias::new("create_time"), sea_orm::Order::Asc)
            .limit(5)
            .to_owned();
        let candidates: Vec<Job> =
            self.db.query_all_raw(build(&self.db, &q)).await?.iter().map(job_from).collect::<Result<_>>()?;
        for job in candidates {
            // One job of a tenant runs at a time; the queued one waits.
            if job.state == JobState::Queued
                && self.job_in_state(&self.db, &job.tenant_id, JobState::Running, Some(stale)).await?.is_some()
            {
                continue;
            }
            let now = Utc::now();
            // Whoever moves it first owns it: the state (and the lease we saw) must not have changed.
            let mut claim = Query::update();
            claim
                .table(Alias::new("recompute_jobs"))
                .value(Alias::new("state"), JobState::Running.as_str())
                .value(Alias::new("heartbeat_time"), now)
                .and_where(Expr::col(Alias::new("id")).eq(job.id))
                .and_where(Expr::col(Alias::new("state")).eq(job.state.as_str()));
            if job.state == JobState::Running {
                claim.and_where(Expr::col(Alias::new("heartbeat_time")).lt(stale));
            } else {
                claim.value(Alias::new("start_time"), now);
            }
            if self.db.execute_raw(build(&self.db, &claim)).await?.rows_affected() == 1 {
                return Ok(Some(self.get_job(&job.tenant_id, job.id).await?));
            }
        }
        Ok(None)
    }

    /// Records progress and renews the lease; false if the job is no longer
    /// running (another runner took it over after a stale lease).
    pub async fn job_progress(&self, job: &Job) -> Result<bool> {
        let q = Query::update()
            .table(Alias::new("recompute_jobs"))
            .value(Alias::new("accounts_total"), job.accounts_total)
            .value(Alias::new("accounts_done"), job.accounts_done)
            .value(Alias::new("accounts_scored"), job.accounts_scored)
            .value(Alias::new("scores_changed"), job.scores_changed)
            .value(Alias::new("cursor"), job.cursor)
            .value(Alias::new("heartbeat_time"), Utc::now())
            .and_where(Expr::col(Alias::new("id")).eq(job.id))
            .and_where(Expr::col(Alias::new("state")).eq(JobState::Running.as_str()))
            .to_owned();
        Ok(self.db.execute_raw(build(&self.db, &q)).await?.rows_affected() == 1)
    }

    /// Ends a running job.
    pub async fn finish_job(&self, id: Uuid, state: JobState, error: &str) -> Result<()> {
        let q = Query::update()
            .table(Alias::new("recompute_jobs"))
            .value(Alias::new("state"), state.as_str())
            .value(Alias::new("end_time"), Utc::now())
            .value(Alias::new("error"), error)
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .and_where(Expr::col(Alias::new("state")).eq(JobState::Running.as_str()))
            .to_owned();
        self.db.execute_raw(build(&self.db, &q)).await?;
        Ok(())
    }

    /// Refreshes PostgreSQL's statistics of the tables a job writes. A job
    /// can grow them from nothing to rows for every account within minutes,
    /// faster than autovacuum's analyze follows (if it runs at all); against
    /// stale statistics a chunk's `account_id = ANY($ids)` looks like most of
    /// the table and plans a scan per chunk: a job quadratic in the tenant's
    /// size (measured, docs/benchmarks.md). Sampling costs tens of
    /// milliseconds; nothing to do on SQLite, whose planner uses the indexes.
    pub async fn refresh_statistics(&self) -> Result<()> {
        if banso_kit::db::is_postgres(&self.db) {
            self.db.execute_unprepared("ANALYZE account_health, health_history, measure_snapshots").await?;
        }
        Ok(())
    }

    /// Live accounts of the tenant (after `after`, by id).
    pub async fn count_accounts(&self, tenant: &str, after: Option<Uuid>) -> Result<i64> {
        let mut q = Query::select()
            .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
            .from(Alias::new("accounts"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("deleted")).eq(false))
            .to_owned();
        if let Some(a) = after {
            q.and_where(Expr::col(Alias::new("account_id")).gt(a));
        }
        let r = self.db.query_one_raw(build(&self.db, &q)).await?;
        Ok(r.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0))
    }

    /// Tenants with live accounts.
    pub async fn tenants(&self) -> Result<Vec<String>> {
        let q = Query::select()
            .distinct()
            .column(Alias::new("tenant_id"))
            .from(Alias::new("accounts"))
            .and_where(Expr::col(Alias::new("deleted")).eq(false))
            .to_owned();
        self.db.query_all_raw(build(&self.db, &q)).await?.iter().map(|r| Ok(r.try_get("", "tenant_id")?)).collect()
    }

    /// When the tenant's latest job was created.
    pub async fn last_job_time(&self, tenant: &str) -> Result<Option<DateTime<Utc>>> {
        let q = Query::select()
            .column(Alias::new("create_time"))
            .from(Alias::new("recompute_jobs"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .order_by(Alias::new("create_time"), sea_orm::Order::Desc)
            .limit(1)
            .to_owned();
        Ok(self.db.query_one_raw(build(&self.db, &q)).await?.map(|r| r.try_get("", "create_time")).transpose()?)
    }
}
