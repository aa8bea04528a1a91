//! Account changes: update_account actions queued by firings, applied
//! through Accounts' API by the worker in `crate::accounts`.

use banso_kit::Result;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr};
use uuid::Uuid;

use super::{corrupt, entities::account_change as c, from_json, to_json};
use crate::domain::playbook::{ChangeStatus, UpdateAccount};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AccountChange {
    pub id: Uuid,
    pub firing_id: Uuid,
    pub action_index: u32,
    pub playbook_id: Uuid,
    pub account_id: Uuid,
    pub change: UpdateAccount,
    pub status: ChangeStatus,
    pub attempts: i32,
    pub detail: String,
    pub create_time: DateTime<Utc>,
}

fn from_model(m: c::Model) -> Result<AccountChange> {
    Ok(AccountChange {
        id: m.id,
        firing_id: m.firing_id,
        action_index: u32::try_from(m.action_index).map_err(|e| corrupt("account change action_index", e))?,
        playbook_id: m.playbook_id,
        account_id: m.account_id,
        change: from_json("account change", &m.change)?,
        status: ChangeStatus::parse(&m.status).ok_or_else(|| corrupt("account change status", &m.status))?,
        attempts: m.attempts,
        detail: m.detail,
        create_time: m.create_time,
    })
}

/// Queues a change, due at once.
pub(crate) async fn insert(conn: &impl ConnectionTrait, tenant: &str, x: &AccountChange) -> Result<()> {
    let m = c::ActiveModel {
        id: Set(x.id),
        tenant_id: Set(tenant.to_owned()),
        firing_id: Set(x.firing_id),
        action_index: Set(x.action_index as i32),
        playbook_id: Set(x.playbook_id),
        account_id: Set(x.account_id),
        change: Set(to_json("account change", &x.change)?),
        status: Set(x.status.as_str().to_owned()),
        attempts: Set(x.attempts),
        next_attempt_time: Set(Some(x.create_time)),
        lease_owner: Set(String::new()),
        lease_until: Set(None),
        detail: Set(x.detail.clone()),
        create_time: Set(x.create_time),
        update_time: Set(x.create_time),
    };
    c::Entity::insert(m).exec_without_returning(conn).await?;
    Ok(())
}

impl banso_kit::db::LeasedQueue for c::Entity {
    const ID: c::Column = c::Column::Id;
    const STATUS: c::Column = c::Column::Status;
    const PENDING: &'static str = ChangeStatus::Pending.as_str();
    const NEXT_ATTEMPT_TIME: c::Column = c::Column::NextAttemptTime;
    const LEASE_OWNER: c::Column = c::Column::LeaseOwner;
    const LEASE_UNTIL: c::Column = c::Column::LeaseUntil;
}

/// Claims up to `limit` due pending changes of any tenant for `owner` until
/// `until` (`banso_kit::db::claim_due`), with their tenants.
pub(crate) async fn claim_due(
    conn: &impl ConnectionTrait,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<(String, AccountChange)>> {
    let won = banso_kit::db::claim_due::<c::Entity>(conn, owner, now, until, limit).await?;
    won.into_iter().map(|m| Ok((m.tenant_id.clone(), from_model(m)?))).collect()
}

/// The outcome of one attempt, written only while `owner` still holds the
/// lease; returns whether it wrote.
pub(crate) struct Attempted<'a> {
    pub status: ChangeStatus,
    pub attempts: i32,
    pub next_attempt_time: Option<DateTime<Utc>>,
    pub detail: &'a str,
}

pub(crate) async fn finish(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Uuid,
    owner: &str,
    r: &Attempted<'_>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let res = c::Entity::update_many()
        .col_expr(c::Column::Status, Expr::value(r.status.as_str()))
        .col_expr(c::Column::Attempts, Expr::value(r.attempts))
        .col_expr(c::Column::NextAttemptTime, Expr::value(r.next_attempt_time))
        .col_expr(c::Column::Detail, Expr::value(r.detail))
        .col_expr(c::Column::LeaseOwner, Expr::value(""))
        .col_expr(c::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(c::Column::UpdateTime, Expr::value(now))
        .filter(c::Column::TenantId.eq(tenant))
        .filter(c::Column::Id.eq(id))
        .filter(c::Column::LeaseOwner.eq(owner))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Deletes up to `limit` finished changes (applied or failed) last touched
/// before `cutoff`; the firing keeps what each did. Returns how many went.
pub(crate) async fn prune(conn: &impl ConnectionTrait, cutoff: DateTime<Utc>, limit: u64) -> Result<u64> {
    let ids: Vec<Uuid> = c::Entity::find()
        .select_only()
        .column(c::Column::Id)
        .filter(c::Column::Status.ne(ChangeStatus::Pending.as_str()))
        .filter(c::Column::UpdateTime.lt(cutoff))
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(c::Entity::delete_many().filter(c::Column::Id.is_in(ids)).exec(conn).await?.rows_affected)
}
