//! Surveys.

use banso_kit::{Error, Result};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{entities::survey as s, from_json, to_json};
use crate::domain::survey::{Kind, Survey};

fn survey(m: s::Model) -> Result<Survey> {
    Ok(Survey { id: m.id, body: from_json("survey", &m.body)?, create_time: m.create_time })
}

pub(crate) async fn insert(conn: &impl ConnectionTrait, tenant: &str, x: &Survey) -> Result<()> {
    let row = s::ActiveModel {
        id: Set(x.id),
        tenant_id: Set(tenant.to_string()),
        kind: Set(x.body.kind.as_str().to_string()),
        body: Set(to_json("survey", &x.body)?),
        create_time: Set(x.create_time),
    };
    s::Entity::insert(row).exec_without_returning(conn).await?;
    Ok(())
}

pub(crate) async fn find(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<Survey>> {
    s::Entity::find_by_id(id).filter(s::Column::TenantId.eq(tenant)).one(conn).await?.map(survey).transpose()
}

/// The surveys of these ids that exist in the tenant.
pub(crate) async fn find_many(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, Survey>> {
    s::Entity::find()
        .filter(s::Column::TenantId.eq(tenant))
        .filter(banso_kit::db::uuid_in(conn, sea_orm::sea_query::Expr::col(s::Column::Id), ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| survey(m).map(|x| (x.id, x)))
        .collect()
}

pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Survey> {
    find(conn, tenant, id).await?.ok_or_else(|| Error::not_found("survey", id.to_string()))
}

pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    kind: Option<Kind>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Survey>> {
    let mut q = s::Entity::find().filter(s::Column::TenantId.eq(tenant));
    if let Some(k) = kind {
        q = q.filter(s::Column::Kind.eq(k.as_str()));
    }
    if let Some(a) = after {
        q = q.filter(s::Column::Id.gt(a));
    }
    q.order_by(s::Column::Id, Order::Asc).limit(limit).all(conn).await?.into_iter().map(survey).collect()
}
