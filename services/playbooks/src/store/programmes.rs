//! Programmes and enrolments.

use banso_kit::{Error, Result, db};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::{
    corrupt,
    entities::{enrolment as e, programme as p},
};
use crate::domain::programme::{Enrolment, Kind, Programme, Status};

fn programme(m: p::Model) -> Result<Programme> {
    Ok(Programme {
        id: m.id,
        kind: Kind::parse(&m.kind).ok_or_else(|| corrupt("programme", format!("kind {}", m.kind)))?,
        display_name: m.display_name,
        description: m.description,
        capacity: m.capacity,
        open: m.open,
        create_time: m.create_time,
        update_time: m.update_time,
        version: m.version,
    })
}

fn programme_row(tenant: &str, x: &Programme) -> p::ActiveModel {
    p::ActiveModel {
        id: Set(x.id),
        tenant_id: Set(tenant.to_string()),
        display_name: Set(x.display_name.clone()),
        description: Set(x.description.clone()),
        kind: Set(x.kind.as_str().to_string()),
        capacity: Set(x.capacity),
        open: Set(x.open),
        create_time: Set(x.create_time),
        update_time: Set(x.update_time),
        version: Set(x.version),
    }
}

fn enrolment(m: e::Model) -> Result<Enrolment> {
    Ok(Enrolment {
        id: m.id,
        programme_id: m.programme_id,
        account_id: m.account_id,
        status: Status::parse(&m.status).ok_or_else(|| corrupt("enrolment", format!("status {}", m.status)))?,
        playbook_id: m.playbook_id,
        enrolled_by: m.enrolled_by,
        create_time: m.create_time,
        update_time: m.update_time,
        version: m.version,
    })
}

fn enrolment_row(tenant: &str, x: &Enrolment) -> e::ActiveModel {
    e::ActiveModel {
        id: Set(x.id),
        tenant_id: Set(tenant.to_string()),
        programme_id: Set(x.programme_id),
        account_id: Set(x.account_id),
        live_key: Set(x.live_key()),
        status: Set(x.status.as_str().to_string()),
        playbook_id: Set(x.playbook_id),
        enrolled_by: Set(x.enrolled_by.clone()),
        create_time: Set(x.create_time),
        update_time: Set(x.update_time),
        version: Set(x.version),
    }
}

pub(crate) async fn insert(conn: &impl ConnectionTrait, tenant: &str, x: &Programme) -> Result<()> {
    p::Entity::insert(programme_row(tenant, x)).exec_without_returning(conn).await?;
    Ok(())
}

pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Programme> {
    find(conn, tenant, id).await?.ok_or_else(|| Error::not_found("programme", id.to_string()))
}

pub(crate) async fn find(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<Programme>> {
    p::Entity::find_by_id(id).filter(p::Column::TenantId.eq(tenant)).one(conn).await?.map(programme).transpose()
}

pub(crate) async fn update(
    conn: &impl ConnectionTrait,
    tenant: &str,
    current: &Programme,
    next: &Programme,
) -> Result<bool> {
    db::update_at_version::<p::Entity>(conn, tenant, current.id, current.version, programme_row(tenant, next)).await
}

pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Programme>> {
    let mut q = p::Entity::find().filter(p::Column::TenantId.eq(tenant));
    if let Some(a) = after {
        q = q.filter(p::Column::Id.gt(a));
    }
    q.order_by(p::Column::Id, Order::Asc).limit(limit).all(conn).await?.into_iter().map(programme).collect()
}

/// Accounts enrolled and not withdrawn.
pub(crate) async fn enrolled(conn: &impl ConnectionTrait, tenant: &str, programme: Uuid) -> Result<i64> {
    let n = e::Entity::find()
        .filter(e::Column::TenantId.eq(tenant))
        .filter(e::Column::ProgrammeId.eq(programme))
        .filter(e::Column::Status.ne(Status::Withdrawn.as_str()))
        .count(conn)
        .await?;
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The live (not withdrawn) enrolment of an account in a programme.
pub(crate) async fn live_enrolment(
    conn: &impl ConnectionTrait,
    tenant: &str,
    programme: Uuid,
    account: Uuid,
) -> Result<Option<Enrolment>> {
    let key = crate::domain::programme::live_key(programme, account);
    e::Entity::find()
        .filter(e::Column::TenantId.eq(tenant))
        .filter(e::Column::LiveKey.eq(key))
        .one(conn)
        .await?
        .map(enrolment)
        .transpose()
}

pub(crate) async fn insert_enrolment(conn: &impl ConnectionTrait, tenant: &str, x: &Enrolment) -> Result<()> {
    e::Entity::insert(enrolment_row(tenant, x)).exec_without_returning(conn).await?;
    Ok(())
}

pub(crate) async fn get_enrolment(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Enrolment> {
    e::Entity::find_by_id(id)
        .filter(e::Column::TenantId.eq(tenant))
        .one(conn)
        .await?
        .map(enrolment)
        .transpose()?
        .ok_or_else(|| Error::not_found("enrolment", id.to_string()))
}

pub(crate) async fn update_enrolment(
    conn: &impl ConnectionTrait,
    tenant: &str,
    current: &Enrolment,
    next: &Enrolment,
) -> Result<bool> {
    db::update_at_version::<e::Entity>(conn, tenant, current.id, current.version, enrolment_row(tenant, next)).await
}

/// Enrolments newest first (by id) before `before`.
pub(crate) async fn enrolments(
    conn: &impl ConnectionTrait,
    tenant: &str,
    programme: Option<Uuid>,
    account: Option<Uuid>,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Enrolment>> {
    let mut q = e::Entity::find().filter(e::Column::TenantId.eq(tenant));
    if let Some(p) = programme {
        q = q.filter(e::Column::ProgrammeId.eq(p));
    }
    if let Some(a) = account {
        q = q.filter(e::Column::AccountId.eq(a));
    }
    if let Some(b) = before {
        q = q.filter(e::Column::Id.lt(b));
    }
    q.order_by(e::Column::Id, Order::Desc).limit(limit).all(conn).await?.into_iter().map(enrolment).collect()
}
