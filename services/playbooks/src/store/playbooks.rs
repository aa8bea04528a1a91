//! Playbooks and their immutable versions.

use banso_kit::{Error, Result, db};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{
    entities::{playbook as p, playbook_version as v},
    from_json, to_json,
};
use crate::domain::playbook::{Definition, Playbook};

/// The row of a playbook: where its versions stand.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub id: Uuid,
    pub head_version: i64,
    pub live_version: i64,
    pub live_trigger: String,
    pub round_robin: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub version: i64,
}

impl From<p::Model> for Row {
    fn from(m: p::Model) -> Row {
        Row {
            id: m.id,
            head_version: m.head_version,
            live_version: m.live_version,
            live_trigger: m.live_trigger,
            round_robin: m.round_robin,
            create_time: m.create_time,
            update_time: m.update_time,
            version: m.version,
        }
    }
}

fn active(tenant: &str, r: &Row) -> p::ActiveModel {
    p::ActiveModel {
        id: Set(r.id),
        tenant_id: Set(tenant.to_string()),
        head_version: Set(r.head_version),
        live_version: Set(r.live_version),
        live_trigger: Set(r.live_trigger.clone()),
        round_robin: Set(r.round_robin),
        create_time: Set(r.create_time),
        update_time: Set(r.update_time),
        version: Set(r.version),
    }
}

pub(crate) async fn row(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Row> {
    p::Entity::find_by_id(id)
        .filter(p::Column::TenantId.eq(tenant))
        .one(conn)
        .await?
        .map(Row::from)
        .ok_or_else(|| Error::not_found("playbook", id.to_string()))
}

/// A version's definition and when it was made.
pub(crate) async fn definition(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Uuid,
    version: i64,
) -> Result<(Definition, DateTime<Utc>)> {
    let m = v::Entity::find_by_id((id, version))
        .filter(v::Column::TenantId.eq(tenant))
        .one(conn)
        .await?
        .ok_or_else(|| Error::not_found("playbook version", format!("{id} version {version}")))?;
    Ok((from_json("playbook definition", &m.definition)?, m.create_time))
}

/// A playbook at `version` (0: its newest).
pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str, id: Uuid, version: i64) -> Result<Playbook> {
    let r = row(conn, tenant, id).await?;
    let version = if version == 0 { r.head_version } else { version };
    let (definition, made) = definition(conn, tenant, id, version).await?;
    Ok(Playbook {
        id,
        version,
        definition,
        head_version: r.head_version,
        live_version: r.live_version,
        create_time: r.create_time,
        update_time: made,
        row_version: r.version,
    })
}

async fn insert_version(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Uuid,
    version: i64,
    d: &Definition,
    author: &str,
    t: DateTime<Utc>,
) -> Result<()> {
    let m = v::ActiveModel {
        playbook_id: Set(id),
        version: Set(version),
        tenant_id: Set(tenant.to_string()),
        definition: Set(to_json("playbook definition", d)?),
        author: Set(author.to_string()),
        create_time: Set(t),
    };
    v::Entity::insert(m).exec_without_returning(conn).await?;
    Ok(())
}

pub(crate) async fn insert(
    conn: &impl ConnectionTrait,
    tenant: &str,
    r: &Row,
    d: &Definition,
    author: &str,
) -> Result<()> {
    p::Entity::insert(active(tenant, r)).exec_without_returning(conn).await?;
    insert_version(conn, tenant, r.id, r.head_version, d, author, r.create_time).await
}

/// Writes `next` over `current` if the stored row is still at `current.version`;
/// with `new_version`, adds that version first.
pub(crate) async fn update(
    conn: &impl ConnectionTrait,
    tenant: &str,
    current: &Row,
    next: &Row,
    new_version: Option<(&Definition, &str)>,
) -> Result<bool> {
    // The round-robin counter moves on its own (next_turn): not written here.
    let row = p::ActiveModel { round_robin: sea_orm::ActiveValue::NotSet, ..active(tenant, next) };
    if !db::update_at_version::<p::Entity>(conn, tenant, current.id, current.version, row).await? {
        return Ok(false);
    }
    if let Some((d, author)) = new_version {
        insert_version(conn, tenant, next.id, next.head_version, d, author, next.update_time).await?;
    }
    Ok(true)
}

pub(crate) async fn delete(conn: &impl ConnectionTrait, tenant: &str, current: &Row) -> Result<bool> {
    if !db::delete_at_version::<p::Entity>(conn, tenant, current.id, current.version).await? {
        return Ok(false);
    }
    v::Entity::delete_many()
        .filter(v::Column::TenantId.eq(tenant))
        .filter(v::Column::PlaybookId.eq(current.id))
        .exec(conn)
        .await?;
    Ok(true)
}

/// Playbooks in id (creation) order after `after`.
pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    enabled: Option<bool>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Row>> {
    let mut q = p::Entity::find().filter(p::Column::TenantId.eq(tenant));
    match enabled {
        Some(true) => q = q.filter(p::Column::LiveVersion.gt(0)),
        Some(false) => q = q.filter(p::Column::LiveVersion.eq(0)),
        None => {}
    }
    if let Some(id) = after {
        q = q.filter(p::Column::Id.gt(id));
    }
    Ok(q.order_by(p::Column::Id, Order::Asc).limit(limit).all(conn).await?.into_iter().map(Row::from).collect())
}

/// Versions of a playbook, newest first, below `before`.
pub(crate) async fn versions(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Uuid,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<(i64, Definition, DateTime<Utc>)>> {
    let mut q = v::Entity::find().filter(v::Column::TenantId.eq(tenant)).filter(v::Column::PlaybookId.eq(id));
    if let Some(b) = before {
        q = q.filter(v::Column::Version.lt(b));
    }
    q.order_by(v::Column::Version, Order::Desc)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| Ok((m.version, from_json("playbook definition", &m.definition)?, m.create_time)))
        .collect()
}

/// The live playbooks of a trigger key (`event:<type>`, `schedule`, `manual`).
pub(crate) async fn live(conn: &impl ConnectionTrait, tenant: &str, trigger: &str) -> Result<Vec<Row>> {
    Ok(p::Entity::find()
        .filter(p::Column::TenantId.eq(tenant))
        .filter(p::Column::LiveTrigger.eq(trigger))
        .filter(p::Column::LiveVersion.gt(0))
        .all(conn)
        .await?
        .into_iter()
        .map(Row::from)
        .collect())
}

/// Takes the next turn of a round robin: returns the counter before.
pub(crate) async fn next_turn(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<i64> {
    let current: Option<i64> = p::Entity::find_by_id(id)
        .select_only()
        .column(p::Column::RoundRobin)
        .filter(p::Column::TenantId.eq(tenant))
        .into_tuple()
        .one(conn)
        .await?;
    p::Entity::update_many()
        .col_expr(p::Column::RoundRobin, Expr::col(p::Column::RoundRobin).add(1))
        .filter(p::Column::TenantId.eq(tenant))
        .filter(p::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(current.unwrap_or(0))
}
