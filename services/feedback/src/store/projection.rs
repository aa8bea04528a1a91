//! The projection of accounts, contacts and segments kept from other
//! services' events.

use std::collections::HashMap;

use banso_kit::Result;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, sea_query::OnConflict,
};
use uuid::Uuid;

use super::{
    corrupt,
    entities::{account as a, contact as c, segment as s, signal as g},
    from_json, to_json,
};
use crate::domain::projection::{Account, Band, Contact, Projected};

fn projected(m: a::Model, signal: Option<&g::Model>) -> Result<Projected> {
    let band = signal.and_then(|g| g.band.as_deref());
    Ok(Projected {
        account: from_json("projected account", &m.account)?,
        stage_since: m.stage_since,
        band: band.map(|b| Band::parse(b).ok_or_else(|| corrupt("band", b))).transpose()?,
        score: signal.and_then(|g| g.score),
        plan_outcome: signal.and_then(|g| g.plan_outcome.clone()),
    })
}

/// The signals of these accounts.
async fn signals(conn: &impl ConnectionTrait, tenant: &str, ids: &[Uuid]) -> Result<HashMap<Uuid, g::Model>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(1000) {
        let rows = g::Entity::find()
            .filter(g::Column::TenantId.eq(tenant))
            .filter(g::Column::AccountId.is_in(chunk.iter().copied()))
            .all(conn)
            .await?;
        out.extend(rows.into_iter().map(|r| (r.account_id, r)));
    }
    Ok(out)
}

/// Keeps the account as its latest event carried it; the stage's start
/// moves to `at` when the stage changed (or the account is new).
pub(crate) async fn upsert_account(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account: &Account,
    at: DateTime<Utc>,
) -> Result<()> {
    let existing = a::Entity::find_by_id(account.id).filter(a::Column::TenantId.eq(tenant)).one(conn).await?;
    let stage = account.lifecycle_stage.as_str().to_string();
    let stage_since = match &existing {
        Some(e) if e.lifecycle_stage == stage && !e.deleted => e.stage_since,
        _ => at,
    };
    let row = a::ActiveModel {
        account_id: Set(account.id),
        tenant_id: Set(tenant.to_string()),
        deleted: Set(false),
        account: Set(to_json("projected account", account)?),
        lifecycle_stage: Set(stage),
        stage_since: Set(stage_since),
        update_time: Set(at),
    };
    a::Entity::insert(row)
        .on_conflict(
            OnConflict::column(a::Column::AccountId)
                .update_columns([
                    a::Column::Deleted,
                    a::Column::Account,
                    a::Column::LifecycleStage,
                    a::Column::StageSince,
                    a::Column::UpdateTime,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub(crate) async fn delete_account(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<()> {
    a::Entity::update_many()
        .col_expr(a::Column::Deleted, true.into())
        .filter(a::Column::TenantId.eq(tenant))
        .filter(a::Column::AccountId.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// The latest score and band Health announced.
pub(crate) async fn set_health(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Uuid,
    band: Option<Band>,
    score: f64,
) -> Result<()> {
    let row = g::ActiveModel {
        account_id: Set(id),
        tenant_id: Set(tenant.to_string()),
        band: Set(band.map(|b| b.as_str().to_string())),
        score: Set(Some(score)),
        plan_outcome: Set(None),
    };
    g::Entity::insert(row)
        .on_conflict(
            OnConflict::column(g::Column::AccountId).update_columns([g::Column::Band, g::Column::Score]).to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The objective of the account's latest success plan.
pub(crate) async fn set_plan_outcome(conn: &impl ConnectionTrait, tenant: &str, id: Uuid, outcome: &str) -> Result<()> {
    let row = g::ActiveModel {
        account_id: Set(id),
        tenant_id: Set(tenant.to_string()),
        band: Set(None),
        score: Set(None),
        plan_outcome: Set(Some(outcome.to_string())),
    };
    g::Entity::insert(row)
        .on_conflict(OnConflict::column(g::Column::AccountId).update_columns([g::Column::PlanOutcome]).to_owned())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// A live account of the tenant.
pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<Projected>> {
    let Some(m) = a::Entity::find_by_id(id)
        .filter(a::Column::TenantId.eq(tenant))
        .filter(a::Column::Deleted.eq(false))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let s = signals(conn, tenant, &[id]).await?;
    projected(m, s.get(&id)).map(Some)
}

/// Live accounts of the tenant: these ids, or all of them (`None`).
pub(crate) async fn accounts(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: Option<&[Uuid]>,
) -> Result<Vec<Projected>> {
    let mut q = a::Entity::find().filter(a::Column::TenantId.eq(tenant)).filter(a::Column::Deleted.eq(false));
    if let Some(ids) = ids {
        q = q.filter(a::Column::AccountId.is_in(ids.iter().copied()));
    }
    let rows = q.order_by_asc(a::Column::AccountId).all(conn).await?;
    let ids: Vec<Uuid> = rows.iter().map(|m| m.account_id).collect();
    let s = signals(conn, tenant, &ids).await?;
    rows.into_iter()
        .map(|m| {
            let id = m.account_id;
            projected(m, s.get(&id))
        })
        .collect()
}

pub(crate) async fn upsert_contact(conn: &impl ConnectionTrait, tenant: &str, contact: &Contact) -> Result<()> {
    let row = c::ActiveModel {
        contact_id: Set(contact.id),
        tenant_id: Set(tenant.to_string()),
        account_id: Set(contact.account_id),
        deleted: Set(false),
        contact: Set(to_json("projected contact", contact)?),
    };
    c::Entity::insert(row)
        .on_conflict(
            OnConflict::column(c::Column::ContactId)
                .update_columns([c::Column::AccountId, c::Column::Deleted, c::Column::Contact])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub(crate) async fn delete_contact(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<()> {
    c::Entity::update_many()
        .col_expr(c::Column::Deleted, true.into())
        .filter(c::Column::TenantId.eq(tenant))
        .filter(c::Column::ContactId.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// The live contacts of these accounts, by account then id.
pub(crate) async fn contacts_of(conn: &impl ConnectionTrait, tenant: &str, accounts: &[Uuid]) -> Result<Vec<Contact>> {
    let mut out = Vec::new();
    // Bounded IN lists: SQLite takes at most 32,766 parameters.
    for chunk in accounts.chunks(1000) {
        let rows = c::Entity::find()
            .filter(c::Column::TenantId.eq(tenant))
            .filter(c::Column::Deleted.eq(false))
            .filter(c::Column::AccountId.is_in(chunk.iter().copied()))
            .order_by_asc(c::Column::AccountId)
            .order_by_asc(c::Column::ContactId)
            .all(conn)
            .await?;
        for r in rows {
            out.push(from_json("projected contact", &r.contact)?);
        }
    }
    Ok(out)
}

pub(crate) async fn upsert_segment(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Uuid,
    expression: &str,
) -> Result<()> {
    let row =
        s::ActiveModel { id: Set(id), tenant_id: Set(tenant.to_string()), expression: Set(expression.to_string()) };
    s::Entity::insert(row)
        .on_conflict(OnConflict::column(s::Column::Id).update_columns([s::Column::Expression]).to_owned())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub(crate) async fn delete_segment(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<()> {
    s::Entity::delete_many().filter(s::Column::TenantId.eq(tenant)).filter(s::Column::Id.eq(id)).exec(conn).await?;
    Ok(())
}

/// A segment's expression; `None` when the projection has not seen it.
pub(crate) async fn segment(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<String>> {
    Ok(s::Entity::find_by_id(id).filter(s::Column::TenantId.eq(tenant)).one(conn).await?.map(|m| m.expression))
}
