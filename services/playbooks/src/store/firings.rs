//! Firings: each evaluation whose audience and condition held, once per
//! playbook, account and trigger.

use banso_kit::Result;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, OnConflict},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{entities::firing as f, from_json, to_json};
use crate::domain::engine::Verdict;

/// What one action did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ActionOutcome {
    pub index: u32,
    pub kind: String,
    /// "done", "skipped", "failed".
    pub status: String,
    pub detail: String,
    pub resource_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Firing {
    pub id: Uuid,
    pub playbook_id: Uuid,
    pub playbook_version: i64,
    pub account_id: Uuid,
    pub trigger_kind: String,
    pub trigger_key: String,
    pub fire_time: DateTime<Utc>,
    pub verdict: Verdict,
    pub actions: Vec<ActionOutcome>,
}

fn from_model(m: f::Model) -> Result<Firing> {
    Ok(Firing {
        id: m.id,
        playbook_id: m.playbook_id,
        playbook_version: m.playbook_version,
        account_id: m.account_id,
        trigger_kind: m.trigger_kind,
        trigger_key: m.trigger_key,
        fire_time: m.fire_time,
        verdict: Verdict::parse(&m.status).unwrap_or(Verdict::Fire),
        actions: from_json("firing actions", &m.actions)?,
    })
}

/// Records a firing unless this playbook already has one for this account
/// and trigger; returns whether it was recorded.
pub(crate) async fn insert_once(conn: &impl ConnectionTrait, tenant: &str, x: &Firing) -> Result<bool> {
    let m = f::ActiveModel {
        id: Set(x.id),
        tenant_id: Set(tenant.to_string()),
        playbook_id: Set(x.playbook_id),
        playbook_version: Set(x.playbook_version),
        account_id: Set(x.account_id),
        trigger_kind: Set(x.trigger_kind.clone()),
        trigger_key: Set(x.trigger_key.clone()),
        fire_time: Set(x.fire_time),
        status: Set(x.verdict.as_str().to_string()),
        actions: Set(to_json("firing actions", &x.actions)?),
    };
    let keys = [f::Column::TenantId, f::Column::PlaybookId, f::Column::AccountId, f::Column::TriggerKey];
    let n = f::Entity::insert(m)
        .on_conflict(OnConflict::columns(keys).do_nothing().to_owned())
        .exec_without_returning(conn)
        .await?;
    Ok(n == 1)
}

pub(crate) async fn set_actions(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Uuid,
    actions: &[ActionOutcome],
) -> Result<()> {
    f::Entity::update_many()
        .col_expr(f::Column::Actions, Expr::value(to_json("firing actions", &actions)?))
        .filter(f::Column::TenantId.eq(tenant))
        .filter(f::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Sets what action `index` of a firing did, once it is known (an action
/// finished by a worker after the firing committed).
pub(crate) async fn set_action(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Uuid,
    index: u32,
    status: &str,
    detail: &str,
) -> Result<()> {
    let Some(m) = f::Entity::find_by_id(id).filter(f::Column::TenantId.eq(tenant)).one(conn).await? else {
        return Ok(());
    };
    let mut actions: Vec<ActionOutcome> = from_json("firing actions", &m.actions)?;
    if let Some(a) = actions.iter_mut().find(|a| a.index == index) {
        a.status = status.to_owned();
        a.detail = detail.to_owned();
        set_actions(conn, tenant, id, &actions).await?;
    }
    Ok(())
}

/// When the playbook fired for the account (every version), newest first.
pub(crate) async fn fired_times(
    conn: &impl ConnectionTrait,
    tenant: &str,
    playbook: Uuid,
    account: Uuid,
) -> Result<Vec<DateTime<Utc>>> {
    Ok(f::Entity::find()
        .select_only()
        .column(f::Column::FireTime)
        .filter(f::Column::TenantId.eq(tenant))
        .filter(f::Column::AccountId.eq(account))
        .filter(f::Column::PlaybookId.eq(playbook))
        .filter(f::Column::Status.eq(Verdict::Fire.as_str()))
        .order_by(f::Column::FireTime, Order::Desc)
        .limit(1000)
        .into_tuple()
        .all(conn)
        .await?)
}

/// Every firing of a playbook before `before`: (account, time), for simulation.
pub(crate) async fn fired_before(
    conn: &impl ConnectionTrait,
    tenant: &str,
    playbook: Uuid,
    before: DateTime<Utc>,
) -> Result<Vec<(Uuid, DateTime<Utc>)>> {
    Ok(f::Entity::find()
        .select_only()
        .column(f::Column::AccountId)
        .column(f::Column::FireTime)
        .filter(f::Column::TenantId.eq(tenant))
        .filter(f::Column::PlaybookId.eq(playbook))
        .filter(f::Column::Status.eq(Verdict::Fire.as_str()))
        .filter(f::Column::FireTime.lt(before))
        .into_tuple()
        .all(conn)
        .await?)
}

/// Firings newest first (by id, a UUIDv7) before `before`.
pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    playbook: Option<Uuid>,
    account: Option<Uuid>,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Firing>> {
    let mut q = f::Entity::find().filter(f::Column::TenantId.eq(tenant));
    if let Some(p) = playbook {
        q = q.filter(f::Column::PlaybookId.eq(p));
    }
    if let Some(a) = account {
        q = q.filter(f::Column::AccountId.eq(a));
    }
    if let Some(b) = before {
        q = q.filter(f::Column::Id.lt(b));
    }
    q.order_by(f::Column::Id, Order::Desc).limit(limit).all(conn).await?.into_iter().map(from_model).collect()
}
