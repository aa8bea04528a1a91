//! Recompute jobs: queued, claimed under a lease, resumable from a cursor.

use banso_kit::{Error, Result, wire};
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, QueryResult,
    sea_query::{Cond, Expr, ExprTrait, Iden, OnConflict, Query},
};
use uuid::Uuid;

use super::{
    all, corrupt, exec, get, insert, one,
    schema::{AccountHealth, HealthHistory, MeasureSnapshots, RecomputeJobs as J},
};

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    const ALL: [JobState; 4] = [JobState::Queued, JobState::Running, JobState::Succeeded, JobState::Failed];

    fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }
}

/// Why a job was queued, as GetRecomputeJob reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// StartRecompute.
    Api,
    /// A scorecard was created or changed.
    Scorecard,
    /// A segment changed: accounts may score elsewhere.
    Segment,
    /// The tenant's time zone changed: days are cut elsewhere.
    TimeZone,
    /// A new day: usage windows slid.
    Daily,
}

impl Trigger {
    const ALL: [Trigger; 5] = [Trigger::Api, Trigger::Scorecard, Trigger::Segment, Trigger::TimeZone, Trigger::Daily];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Trigger::Api => "api",
            Trigger::Scorecard => "scorecard",
            Trigger::Segment => "segment",
            Trigger::TimeZone => "time_zone",
            Trigger::Daily => "daily",
        }
    }
}

/// A recompute job as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Job {
    pub id: Uuid,
    pub tenant_id: String,
    pub state: JobState,
    pub trigger: Trigger,
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

impl banso_events::db::Identified for Job {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

fn from_row(r: &QueryResult) -> Result<Job> {
    let state: String = get(r, J::State)?;
    let trigger: String = get(r, J::Trigger)?;
    Ok(Job {
        id: get(r, J::Id)?,
        tenant_id: get(r, J::TenantId)?,
        state: JobState::ALL.into_iter().find(|s| s.as_str() == state).ok_or_else(|| corrupt("job state", &state))?,
        trigger: Trigger::ALL
            .into_iter()
            .find(|t| t.as_str() == trigger)
            .ok_or_else(|| corrupt("job trigger", &trigger))?,
        accounts_total: get(r, J::AccountsTotal)?,
        accounts_done: get(r, J::AccountsDone)?,
        accounts_scored: get(r, J::AccountsScored)?,
        scores_changed: get(r, J::ScoresChanged)?,
        create_time: get(r, J::CreateTime)?,
        start_time: get(r, J::StartTime)?,
        end_time: get(r, J::EndTime)?,
        error: get(r, J::Error)?,
        cursor: get(r, J::Cursor)?,
    })
}

/// A job of the tenant; NOT_FOUND for another tenant's.
pub(crate) async fn get_job(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Job> {
    let q = Query::select()
        .columns(J::ROW)
        .from(J::Table)
        .and_where(Expr::col(J::TenantId).eq(tenant))
        .and_where(Expr::col(J::Id).eq(id))
        .to_owned();
    from_row(&one(conn, &q).await?.ok_or_else(|| Error::not_found("recompute job", id.to_string()))?)
}

/// The tenant's job in `state` (for running, one whose lease is fresh).
async fn in_state(
    conn: &impl ConnectionTrait,
    tenant: &str,
    state: JobState,
    fresh_since: Option<DateTime<Utc>>,
) -> Result<Option<Job>> {
    let mut q = Query::select()
        .columns(J::ROW)
        .from(J::Table)
        .and_where(Expr::col(J::TenantId).eq(tenant))
        .and_where(Expr::col(J::State).eq(state.as_str()))
        .limit(1)
        .to_owned();
    if let Some(t) = fresh_since {
        q.and_where(Expr::col(J::HeartbeatTime).gte(t));
    }
    one(conn, &q).await?.as_ref().map(from_row).transpose()
}

/// Queues a job for the tenant in the caller's transaction, or returns the
/// one already queued: a unique index keeps it to one, across replicas, and
/// it reads scorecards and inputs when it starts, so it covers this request
/// too. (A running job does not count: it read them already.)
pub(crate) async fn queue(conn: &impl ConnectionTrait, tenant: &str, trigger: Trigger) -> Result<Job> {
    // The queued job may start between a refused insert and the read that
    // looks for it: then its slot is free again, and the next insert takes it.
    for _ in 0..5 {
        let id = Uuid::now_v7();
        let row = [
            (J::Id, Expr::val(id)),
            (J::TenantId, Expr::val(tenant)),
            (J::State, Expr::val(JobState::Queued.as_str())),
            (J::Trigger, Expr::val(trigger.as_str())),
            (J::AccountsTotal, Expr::val(0i64)),
            (J::AccountsDone, Expr::val(0i64)),
            (J::AccountsScored, Expr::val(0i64)),
            (J::ScoresChanged, Expr::val(0i64)),
            (J::CreateTime, Expr::val(wire::now())),
            (J::Error, Expr::val("")),
        ];
        let Some(mut q) = insert(J::Table, [row])? else { break };
        q.on_conflict(OnConflict::new().do_nothing().to_owned());
        if exec(conn, &q).await? == 1 {
            return get_job(conn, tenant, id).await;
        }
        if let Some(queued) = in_state(conn, tenant, JobState::Queued, None).await? {
            // Hold the queued job's row until this transaction commits. The
            // job reads scorecards and inputs when it starts: a runner that
            // claims it meanwhile waits on this lock, so the job starts after
            // what this transaction wrote. Without it, a claim landing
            // between the read above and the commit ran a job that never saw
            // this change, and nothing else was queued for it.
            let mut hold = Query::update();
            hold.table(J::Table)
                .value(J::Trigger, Expr::col(J::Trigger))
                .and_where(Expr::col(J::Id).eq(queued.id))
                .and_where(Expr::col(J::State).eq(JobState::Queued.as_str()));
            if exec(conn, &hold).await? == 1 {
                return Ok(queued);
            }
            // Claimed since the read: its slot is free, queue a new one.
        }
    }
    Err(Error::Aborted {
        reason: "CONCURRENT_UPDATE",
        message: "recompute jobs of this tenant are being queued and started concurrently; retry".into(),
    })
}

/// Claims the oldest queued job, or a running one whose runner stopped
/// renewing its lease before `stale`; sets it running with a fresh lease.
pub(crate) async fn claim(conn: &impl ConnectionTrait, stale: DateTime<Utc>) -> Result<Option<Job>> {
    let q = Query::select()
        .columns(J::ROW)
        .from(J::Table)
        .cond_where(
            Cond::any()
                .add(Expr::col(J::State).eq(JobState::Queued.as_str()))
                .add(Expr::col(J::State).eq(JobState::Running.as_str()).and(Expr::col(J::HeartbeatTime).lt(stale))),
        )
        .order_by(J::CreateTime, sea_orm::Order::Asc)
        .limit(5)
        .to_owned();
    let candidates: Vec<Job> = all(conn, &q).await?.iter().map(from_row).collect::<Result<_>>()?;
    for job in candidates {
        // One job of a tenant runs at a time; the queued one waits.
        if job.state == JobState::Queued
            && in_state(conn, &job.tenant_id, JobState::Running, Some(stale)).await?.is_some()
        {
            continue;
        }
        let now = Utc::now();
        // Whoever moves it first owns it: the state (and the lease we saw) must not have changed.
        let mut claim = Query::update();
        claim
            .table(J::Table)
            .value(J::State, JobState::Running.as_str())
            .value(J::HeartbeatTime, now)
            .and_where(Expr::col(J::Id).eq(job.id))
            .and_where(Expr::col(J::State).eq(job.state.as_str()));
        if job.state == JobState::Running {
            claim.and_where(Expr::col(J::HeartbeatTime).lt(stale));
        } else {
            claim.value(J::StartTime, now);
        }
        if exec(conn, &claim).await? == 1 {
            return Ok(Some(get_job(conn, &job.tenant_id, job.id).await?));
        }
    }
    Ok(None)
}

/// Records progress and renews the lease; false if the job is no longer
/// running (another runner took it over after a stale lease).
pub(crate) async fn progress(conn: &impl ConnectionTrait, job: &Job) -> Result<bool> {
    let q = Query::update()
        .table(J::Table)
        .value(J::AccountsTotal, job.accounts_total)
        .value(J::AccountsDone, job.accounts_done)
        .value(J::AccountsScored, job.accounts_scored)
        .value(J::ScoresChanged, job.scores_changed)
        .value(J::Cursor, job.cursor)
        .value(J::HeartbeatTime, Utc::now())
        .and_where(Expr::col(J::Id).eq(job.id))
        .and_where(Expr::col(J::State).eq(JobState::Running.as_str()))
        .to_owned();
    Ok(exec(conn, &q).await? == 1)
}

/// Ends a running job.
pub(crate) async fn finish(conn: &impl ConnectionTrait, id: Uuid, state: JobState, error: &str) -> Result<()> {
    let q = Query::update()
        .table(J::Table)
        .value(J::State, state.as_str())
        .value(J::EndTime, Utc::now())
        .value(J::Error, error)
        .and_where(Expr::col(J::Id).eq(id))
        .and_where(Expr::col(J::State).eq(JobState::Running.as_str()))
        .to_owned();
    exec(conn, &q).await?;
    Ok(())
}

/// When the tenant's latest job was created.
pub(crate) async fn last_time(conn: &impl ConnectionTrait, tenant: &str) -> Result<Option<DateTime<Utc>>> {
    let q = Query::select()
        .column(J::CreateTime)
        .from(J::Table)
        .and_where(Expr::col(J::TenantId).eq(tenant))
        .order_by(J::CreateTime, sea_orm::Order::Desc)
        .limit(1)
        .to_owned();
    one(conn, &q).await?.map(|r| get(&r, J::CreateTime)).transpose()
}

/// Refreshes PostgreSQL's statistics of the tables a job writes. A job
/// can grow them from nothing to rows for every account within minutes,
/// faster than autovacuum's analyze follows (if it runs at all); against
/// stale statistics a chunk's `account_id = ANY($ids)` looks like most of
/// the table and plans a scan per chunk: a job quadratic in the tenant's
/// size (measured, docs/benchmarks.md). Sampling costs tens of
/// milliseconds; nothing to do on SQLite, whose planner uses the indexes.
pub(crate) async fn refresh_statistics(conn: &impl ConnectionTrait) -> Result<()> {
    if banso_kit::db::is_postgres(conn) {
        let tables =
            [AccountHealth::Table.to_string(), HealthHistory::Table.to_string(), MeasureSnapshots::Table.to_string()];
        conn.execute_unprepared(&format!("ANALYZE {}", tables.join(", "))).await?;
    }
    Ok(())
}
