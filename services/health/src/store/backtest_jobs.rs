//! Backtest jobs: a request queued, claimed under a lease by a runner
//! (`banso_kit::db::claim_due`, the one lease-claim of a table-backed work
//! queue), and its result kept for later reading.

use banso_kit::{Error, Result};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;

use super::corrupt;
use crate::domain::backtest::{BacktestQuery, BacktestResult};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "backtest_jobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub status: String,
        #[sea_orm(column_type = "Text")]
        pub request: String,
        #[sea_orm(column_type = "Text", nullable)]
        pub result: Option<String>,
        #[sea_orm(column_type = "Text")]
        pub error: String,
        pub next_attempt_time: Option<ChronoDateTimeUtc>,
        #[sea_orm(column_type = "Text")]
        pub lease_owner: String,
        pub lease_until: Option<ChronoDateTimeUtc>,
        pub create_time: ChronoDateTimeUtc,
        pub end_time: Option<ChronoDateTimeUtc>,
        pub phase: String,
        pub steps_done: i32,
        pub steps_total: i32,
        pub snapshots: i64,
        pub start_time: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity as j;

const PENDING: &str = "pending";
const SUCCEEDED: &str = "succeeded";
const FAILED: &str = "failed";

impl banso_kit::db::LeasedQueue for j::Entity {
    const ID: j::Column = j::Column::Id;
    const STATUS: j::Column = j::Column::Status;
    const PENDING: &'static str = PENDING;
    const NEXT_ATTEMPT_TIME: j::Column = j::Column::NextAttemptTime;
    const LEASE_OWNER: j::Column = j::Column::LeaseOwner;
    const LEASE_UNTIL: j::Column = j::Column::LeaseUntil;
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BacktestState {
    Queued,
    /// A runner holds its lease.
    Running,
    Succeeded,
    Failed,
}

/// What a running backtest is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Labelling,
    Replaying,
    Comparing,
    Reporting,
}

impl Phase {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Phase::Labelling => "labelling",
            Phase::Replaying => "replaying",
            Phase::Comparing => "comparing",
            Phase::Reporting => "reporting",
        }
    }
}

/// How far a job got: its phase (`""` while queued), steps done of steps
/// in all, and the labelled snapshots once known.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Progress {
    pub phase: String,
    pub steps_done: i32,
    pub steps_total: i32,
    pub snapshots: i64,
    pub start_time: Option<DateTime<Utc>>,
}

/// A backtest job as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BacktestJob {
    pub id: Uuid,
    pub state: BacktestState,
    pub query: BacktestQuery,
    pub create_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub error: String,
    pub result: Option<BacktestResult>,
    pub progress: Progress,
}

impl banso_events::db::Identified for BacktestJob {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

impl BacktestJob {
    /// A new job for `query`, queued now.
    pub(crate) fn queued(query: BacktestQuery) -> BacktestJob {
        BacktestJob {
            id: Uuid::now_v7(),
            state: BacktestState::Queued,
            query,
            create_time: banso_kit::wire::now(),
            end_time: None,
            error: String::new(),
            result: None,
            progress: Progress::default(),
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::internal(anyhow::anyhow!("serializing a backtest: {e}")))
}

fn from_model(m: j::Model, now: DateTime<Utc>) -> Result<BacktestJob> {
    let state = match m.status.as_str() {
        PENDING if m.lease_until.is_some_and(|t| t > now) => BacktestState::Running,
        PENDING => BacktestState::Queued,
        SUCCEEDED => BacktestState::Succeeded,
        FAILED => BacktestState::Failed,
        other => return Err(corrupt("backtest job status", other)),
    };
    Ok(BacktestJob {
        id: m.id,
        state,
        query: serde_json::from_str(&m.request).map_err(|e| corrupt("backtest request", e))?,
        create_time: m.create_time,
        end_time: m.end_time,
        error: m.error,
        result: m.result.map(|r| serde_json::from_str(&r)).transpose().map_err(|e| corrupt("backtest result", e))?,
        progress: Progress {
            phase: m.phase,
            steps_done: m.steps_done,
            steps_total: m.steps_total,
            snapshots: m.snapshots,
            start_time: m.start_time,
        },
    })
}

/// Queues a job, due at once.
pub(crate) async fn insert(conn: &impl ConnectionTrait, tenant: &str, job: &BacktestJob) -> Result<()> {
    let m = j::ActiveModel {
        id: Set(job.id),
        tenant_id: Set(tenant.to_owned()),
        status: Set(PENDING.to_owned()),
        request: Set(json(&job.query)?),
        result: Set(None),
        error: Set(String::new()),
        next_attempt_time: Set(Some(job.create_time)),
        lease_owner: Set(String::new()),
        lease_until: Set(None),
        create_time: Set(job.create_time),
        end_time: Set(None),
        phase: Set(String::new()),
        steps_done: Set(0),
        steps_total: Set(0),
        snapshots: Set(0),
        start_time: Set(None),
    };
    j::Entity::insert(m).exec_without_returning(conn).await?;
    Ok(())
}

/// A job of the tenant; NOT_FOUND for another tenant's.
pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<BacktestJob> {
    let m = j::Entity::find()
        .filter(j::Column::TenantId.eq(tenant))
        .filter(j::Column::Id.eq(id))
        .one(conn)
        .await?
        .ok_or_else(|| Error::not_found("backtest job", id.to_string()))?;
    from_model(m, Utc::now())
}

/// Claims one due job of any tenant for `owner` until `until`, with its tenant.
pub(crate) async fn claim(
    conn: &impl ConnectionTrait,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Option<(String, BacktestJob)>> {
    let won = banso_kit::db::claim_due::<j::Entity>(conn, owner, now, until, 1).await?;
    won.into_iter().next().map(|m| Ok((m.tenant_id.clone(), from_model(m, now)?))).transpose()
}

/// Ends a job with its result or error, only while `owner` holds its
/// lease; returns whether it wrote.
pub(crate) async fn finish(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Uuid,
    owner: &str,
    outcome: &Result<BacktestResult>,
) -> Result<bool> {
    let (status, result, error) = match outcome {
        Ok(r) => (SUCCEEDED, Some(json(r)?), String::new()),
        Err(e) => (FAILED, None, e.to_string()),
    };
    let mut update = j::Entity::update_many();
    if outcome.is_ok() {
        // Every step done; a failure keeps the step it failed in.
        update = update.col_expr(j::Column::StepsDone, Expr::col(j::Column::StepsTotal));
    }
    let res = update
        .col_expr(j::Column::Status, Expr::value(status))
        .col_expr(j::Column::Result, Expr::value(result))
        .col_expr(j::Column::Error, Expr::value(error))
        .col_expr(j::Column::LeaseOwner, Expr::value(""))
        .col_expr(j::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(j::Column::EndTime, Expr::value(Some(banso_kit::wire::now())))
        .filter(j::Column::TenantId.eq(tenant))
        .filter(j::Column::Id.eq(id))
        .filter(j::Column::LeaseOwner.eq(owner))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Records how far a running job got, only while `owner` holds its lease
/// (the first report of a run sets its start time); returns whether it wrote.
pub(crate) async fn progress(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Uuid,
    owner: &str,
    phase: Phase,
    steps: (i32, i32),
    snapshots: Option<i64>,
) -> Result<bool> {
    let mut update = j::Entity::update_many()
        .col_expr(j::Column::Phase, Expr::value(phase.as_str()))
        .col_expr(j::Column::StepsDone, Expr::value(steps.0))
        .col_expr(j::Column::StepsTotal, Expr::value(steps.1));
    if let Some(n) = snapshots {
        update = update.col_expr(j::Column::Snapshots, Expr::value(n));
    }
    if phase == Phase::Labelling && steps.0 == 0 {
        // A run begins (again, after a runner died): its own start time.
        update = update.col_expr(j::Column::StartTime, Expr::value(Some(banso_kit::wire::now())));
    }
    let res = update
        .filter(j::Column::TenantId.eq(tenant))
        .filter(j::Column::Id.eq(id))
        .filter(j::Column::LeaseOwner.eq(owner))
        .filter(j::Column::Status.eq(PENDING))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}
