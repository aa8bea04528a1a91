//! The history of accounts' touch mixes: one row per change, kept after
//! the account is gone (it names the account by id only).

use banso_kit::{Error, Result};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{corrupt, entities::touch_mix_change as h};
use crate::domain::{MixChange, MixSetBy, TouchShare};

fn active(tenant: &str, c: &MixChange) -> Result<h::ActiveModel> {
    Ok(h::ActiveModel {
        id: Set(c.id),
        tenant_id: Set(tenant.to_owned()),
        account_id: Set(c.account_id),
        change_time: Set(c.change_time),
        touch_mix: Set(serde_json::to_value(&c.touch_mix).map_err(Error::internal)?),
        set_by: Set(c.set_by.as_str().to_owned()),
        setter: Set(c.setter.clone()),
    })
}

/// Records changes of touch mixes.
pub(crate) async fn record(conn: &impl ConnectionTrait, tenant: &str, changes: &[MixChange]) -> Result<()> {
    for chunk in changes.chunks(500) {
        let rows = chunk.iter().map(|c| active(tenant, c)).collect::<Result<Vec<_>>>()?;
        if !rows.is_empty() {
            h::Entity::insert_many(rows).exec_without_returning(conn).await?;
        }
    }
    Ok(())
}

/// An account's changes newest first, after `(change_time, id)`.
pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<MixChange>> {
    let mut q = h::Entity::find().filter(h::Column::TenantId.eq(tenant)).filter(h::Column::AccountId.eq(account_id));
    if let Some((t, id)) = after {
        q = q.filter(
            Condition::any()
                .add(h::Column::ChangeTime.lt(t))
                .add(Condition::all().add(h::Column::ChangeTime.eq(t)).add(h::Column::Id.lt(id))),
        );
    }
    q.order_by(h::Column::ChangeTime, Order::Desc)
        .order_by(h::Column::Id, Order::Desc)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| {
            let touch_mix: Vec<TouchShare> =
                serde_json::from_value(m.touch_mix).map_err(|e| corrupt("touch_mix history", e))?;
            Ok(MixChange {
                id: m.id,
                account_id: m.account_id,
                change_time: m.change_time,
                touch_mix,
                set_by: MixSetBy::parse(&m.set_by).ok_or_else(|| corrupt("touch_mix set_by", &m.set_by))?,
                setter: m.setter,
            })
        })
        .collect()
}
