//! When each tenant's model of each target is next retrained: one row per
//! tenant and target, a leased work queue (`banso_kit::db::claim_due`, the
//! one lease-claim of a table-backed queue) that never empties — a
//! retraining sets the next due time.

use banso_kit::Result;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use super::corrupt;
use crate::domain::churn_model::Target;

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "model_schedules")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub target: String,
        pub status: String,
        pub next_attempt_time: Option<ChronoDateTimeUtc>,
        #[sea_orm(column_type = "Text")]
        pub lease_owner: String,
        pub lease_until: Option<ChronoDateTimeUtc>,
        pub last_attempt_time: Option<ChronoDateTimeUtc>,
        #[sea_orm(column_type = "Text")]
        pub last_error: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity as s;

/// A schedule is always waiting for its next retraining.
const PENDING: &str = "pending";

impl banso_kit::db::LeasedQueue for s::Entity {
    const ID: s::Column = s::Column::Id;
    const STATUS: s::Column = s::Column::Status;
    const PENDING: &'static str = PENDING;
    const NEXT_ATTEMPT_TIME: s::Column = s::Column::NextAttemptTime;
    const LEASE_OWNER: s::Column = s::Column::LeaseOwner;
    const LEASE_UNTIL: s::Column = s::Column::LeaseUntil;
}

/// A retraining due, as claimed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Due {
    pub id: Uuid,
    pub tenant: String,
    pub target: Target,
}

/// Sets the tenant's next retraining of `target` to `due` (in a
/// training's transaction: every kept model pushes its schedule on). A
/// lease held meanwhile stays with its holder.
pub(crate) async fn schedule(
    conn: &impl ConnectionTrait,
    tenant: &str,
    target: Target,
    due: DateTime<Utc>,
) -> Result<()> {
    let row = s::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.to_owned()),
        target: Set(target.as_str().to_owned()),
        status: Set(PENDING.to_owned()),
        next_attempt_time: Set(Some(due)),
        lease_owner: Set(String::new()),
        lease_until: Set(None),
        last_attempt_time: Set(None),
        last_error: Set(String::new()),
    };
    s::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([s::Column::TenantId, s::Column::Target])
                .update_column(s::Column::NextAttemptTime)
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Claims one due retraining of any tenant for `owner` until `until`.
pub(crate) async fn claim(
    conn: &impl ConnectionTrait,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Option<Due>> {
    let won = banso_kit::db::claim_due::<s::Entity>(conn, owner, now, until, 1).await?;
    won.into_iter()
        .next()
        .map(|m| {
            let target = Target::parse(&m.target).ok_or_else(|| corrupt("model schedule target", &m.target))?;
            Ok(Due { id: m.id, tenant: m.tenant_id, target })
        })
        .transpose()
}

/// Ends `owner`'s attempt: the next one is due at `next`, and `error` (empty
/// on success) says why this one kept no model. Returns whether it wrote
/// (`false`: the lease lapsed and moved on).
pub(crate) async fn finish(
    conn: &impl ConnectionTrait,
    id: Uuid,
    owner: &str,
    next: DateTime<Utc>,
    error: &str,
) -> Result<bool> {
    let res = s::Entity::update_many()
        .col_expr(s::Column::NextAttemptTime, Expr::value(Some(next)))
        .col_expr(s::Column::LeaseOwner, Expr::value(""))
        .col_expr(s::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(s::Column::LastAttemptTime, Expr::value(Some(banso_kit::wire::now())))
        .col_expr(s::Column::LastError, Expr::value(error))
        .filter(s::Column::Id.eq(id))
        .filter(s::Column::LeaseOwner.eq(owner))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// A tenant's scheduled retraining of a target, as a model shows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Retraining {
    pub next_time: Option<DateTime<Utc>>,
    pub last_attempt_time: Option<DateTime<Utc>>,
    /// Empty when the last attempt kept a model (or before the first).
    pub last_error: String,
}

/// The tenant's scheduled retraining of each target it has a schedule of.
pub(crate) async fn of_tenant(conn: &impl ConnectionTrait, tenant: &str) -> Result<Vec<(Target, Retraining)>> {
    s::Entity::find()
        .filter(s::Column::TenantId.eq(tenant))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| {
            let target = Target::parse(&m.target).ok_or_else(|| corrupt("model schedule target", &m.target))?;
            let r = Retraining {
                next_time: m.next_attempt_time,
                last_attempt_time: m.last_attempt_time,
                last_error: m.last_error,
            };
            Ok((target, r))
        })
        .collect()
}

/// A tenant's schedule of `target`: the next due time and the last
/// attempt's error, if it has one.
#[cfg(test)]
pub(crate) async fn of(
    conn: &impl ConnectionTrait,
    tenant: &str,
    target: Target,
) -> Result<Option<(Option<DateTime<Utc>>, String)>> {
    let m = s::Entity::find()
        .filter(s::Column::TenantId.eq(tenant))
        .filter(s::Column::Target.eq(target.as_str()))
        .one(conn)
        .await?;
    Ok(m.map(|m| (m.next_attempt_time, m.last_error)))
}
