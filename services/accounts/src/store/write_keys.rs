//! Write keys: stored by hash, never the key.

use banso_kit::{Error, Result};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};
use uuid::Uuid;

use super::entities::write_key;
use crate::domain::write_key::WriteKey;

fn from_model(m: write_key::Model) -> WriteKey {
    WriteKey {
        id: m.id,
        display_name: m.display_name,
        key_prefix: m.key_prefix,
        key_hash: m.key_hash,
        creator: m.creator,
        create_time: m.create_time,
        revoke_time: m.revoke_time,
    }
}

/// The key, or NOT_FOUND (also for another tenant's).
pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<WriteKey> {
    write_key::Entity::find_by_id(id)
        .filter(write_key::Column::TenantId.eq(tenant))
        .one(conn)
        .await?
        .map(from_model)
        .ok_or_else(|| Error::not_found("write key", id.to_string()))
}

/// The tenant's key with this hash, revoked or not.
pub(crate) async fn by_hash(conn: &impl ConnectionTrait, tenant: &str, key_hash: &str) -> Result<Option<WriteKey>> {
    Ok(write_key::Entity::find()
        .filter(write_key::Column::TenantId.eq(tenant))
        .filter(write_key::Column::KeyHash.eq(key_hash))
        .one(conn)
        .await?
        .map(from_model))
}

/// Keys in creation order after `after`.
pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<WriteKey>> {
    let mut q = write_key::Entity::find().filter(write_key::Column::TenantId.eq(tenant));
    if let Some(id) = after {
        q = q.filter(write_key::Column::Id.gt(id));
    }
    Ok(q.order_by(write_key::Column::Id, Order::Asc)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(from_model)
        .collect())
}

pub(crate) async fn insert(conn: &impl ConnectionTrait, tenant: &str, k: &WriteKey) -> Result<()> {
    let row = write_key::ActiveModel {
        id: Set(k.id),
        tenant_id: Set(tenant.to_owned()),
        display_name: Set(k.display_name.clone()),
        key_prefix: Set(k.key_prefix.clone()),
        key_hash: Set(k.key_hash.clone()),
        creator: Set(k.creator.clone()),
        create_time: Set(k.create_time),
        revoke_time: Set(k.revoke_time),
    };
    write_key::Entity::insert(row).exec_without_returning(conn).await?;
    Ok(())
}

/// Marks the key revoked at `at` unless it already is; whether it was
/// revoked now.
pub(crate) async fn revoke(conn: &impl ConnectionTrait, tenant: &str, id: Uuid, at: DateTime<Utc>) -> Result<bool> {
    let res = write_key::Entity::update_many()
        .col_expr(write_key::Column::RevokeTime, Expr::value(Some(at)))
        .filter(write_key::Column::TenantId.eq(tenant))
        .filter(write_key::Column::Id.eq(id))
        .filter(write_key::Column::RevokeTime.is_null())
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}
