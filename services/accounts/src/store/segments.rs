//! Saved segments.

use banso_kit::{Error, Result, db};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::entities::segment;
use crate::domain::segment::{Segment, SegmentFields};

fn from_model(m: segment::Model) -> Result<Segment> {
    let forbidden_touch_models = match m.forbidden_touch_models {
        Some(j) => serde_json::from_value(j).map_err(|e| super::corrupt("forbidden_touch_models", e))?,
        None => Vec::new(),
    };
    Ok(Segment {
        id: m.id,
        fields: SegmentFields {
            display_name: m.display_name,
            description: m.description,
            expression: m.expression,
            forbidden_touch_models,
        },
        create_time: m.create_time,
        update_time: m.update_time,
        version: m.version,
    })
}

fn active(tenant: &str, s: &Segment) -> Result<segment::ActiveModel> {
    let forbidden = serde_json::to_value(&s.fields.forbidden_touch_models).map_err(Error::internal)?;
    Ok(segment::ActiveModel {
        id: Set(s.id),
        tenant_id: Set(tenant.to_owned()),
        display_name: Set(s.fields.display_name.clone()),
        description: Set(s.fields.description.clone()),
        expression: Set(s.fields.expression.clone()),
        create_time: Set(s.create_time),
        update_time: Set(s.update_time),
        version: Set(s.version),
        forbidden_touch_models: Set(Some(forbidden)),
    })
}

/// The segment, or NOT_FOUND (also for another tenant's).
pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Segment> {
    segment::Entity::find_by_id(id)
        .filter(segment::Column::TenantId.eq(tenant))
        .one(conn)
        .await?
        .map(from_model)
        .transpose()?
        .ok_or_else(|| Error::not_found("segment", id.to_string()))
}

/// Segments in creation order after `after`.
pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Segment>> {
    let mut q = segment::Entity::find().filter(segment::Column::TenantId.eq(tenant));
    if let Some(id) = after {
        q = q.filter(segment::Column::Id.gt(id));
    }
    q.order_by(segment::Column::Id, Order::Asc).limit(limit).all(conn).await?.into_iter().map(from_model).collect()
}

pub(crate) async fn insert(conn: &impl ConnectionTrait, tenant: &str, s: &Segment) -> Result<()> {
    segment::Entity::insert(active(tenant, s)?).exec_without_returning(conn).await?;
    Ok(())
}

/// Writes `next` over `current` if the stored version is still `current`'s.
pub(crate) async fn update(
    conn: &impl ConnectionTrait,
    tenant: &str,
    current: &Segment,
    next: &Segment,
) -> Result<bool> {
    db::update_at_version::<segment::Entity>(conn, tenant, current.id, current.version, active(tenant, next)?).await
}

/// Deletes the segment if the stored version is still `current`'s.
pub(crate) async fn delete(conn: &impl ConnectionTrait, tenant: &str, current: &Segment) -> Result<bool> {
    db::delete_at_version::<segment::Entity>(conn, tenant, current.id, current.version).await
}
