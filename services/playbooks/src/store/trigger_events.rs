//! The trigger events of the last days, kept for simulation and condition tests.

use banso_events::Envelope;
use banso_kit::Result;
use chrono::{DateTime, Utc};
use prost::Message as _;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
    sea_query::OnConflict,
};
use uuid::Uuid;

use super::{corrupt, entities::trigger_event as e};
use crate::domain::LifecycleStage;

/// A stored trigger event: when, its order within that time, the stage the
/// account entered with it, and the envelope.
pub(crate) type Stored = (DateTime<Utc>, i64, Option<LifecycleStage>, Envelope);

/// A trigger event as the consumer saw it.
pub(crate) struct TriggerEvent<'a> {
    pub id: Uuid,
    pub event_type: &'a str,
    pub account: Option<Uuid>,
    pub time: DateTime<Utc>,
    pub seq: i64,
    pub stage_entered: Option<LifecycleStage>,
    pub env: &'a Envelope,
}

pub(crate) async fn record(conn: &impl ConnectionTrait, tenant: &str, t: &TriggerEvent<'_>) -> Result<()> {
    let m = e::ActiveModel {
        event_id: Set(t.id),
        tenant_id: Set(tenant.to_string()),
        event_type: Set(t.event_type.to_string()),
        account_id: Set(t.account),
        occur_time: Set(t.time),
        seq: Set(t.seq),
        stage_entered: Set(t.stage_entered.map(|s| s.as_str().to_string())),
        envelope: Set(t.env.encode_to_vec()),
    };
    e::Entity::insert(m)
        .on_conflict(OnConflict::column(e::Column::EventId).do_nothing().to_owned())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

fn decode(m: &e::Model) -> Result<Envelope> {
    Envelope::decode(m.envelope.as_slice()).map_err(|x| corrupt("trigger event", x))
}

pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<Envelope>> {
    e::Entity::find_by_id(id).filter(e::Column::TenantId.eq(tenant)).one(conn).await?.as_ref().map(decode).transpose()
}

/// Events of `event_type` since `since`, oldest first, after (time, seq) `after`.
pub(crate) async fn since(
    conn: &impl ConnectionTrait,
    tenant: &str,
    event_type: &str,
    since: DateTime<Utc>,
    after: Option<(DateTime<Utc>, i64)>,
    limit: u64,
) -> Result<Vec<Stored>> {
    let mut q = e::Entity::find()
        .filter(e::Column::TenantId.eq(tenant))
        .filter(e::Column::EventType.eq(event_type))
        .filter(e::Column::OccurTime.gte(since));
    if let Some((t, seq)) = after {
        q = q.filter(
            sea_orm::Condition::any()
                .add(e::Column::OccurTime.gt(t))
                .add(sea_orm::Condition::all().add(e::Column::OccurTime.eq(t)).add(e::Column::Seq.gt(seq))),
        );
    }
    let rows = q
        .order_by(e::Column::OccurTime, Order::Asc)
        .order_by(e::Column::Seq, Order::Asc)
        .limit(limit)
        .all(conn)
        .await?;
    rows.iter()
        .map(|m| Ok((m.occur_time, m.seq, m.stage_entered.as_deref().and_then(LifecycleStage::parse), decode(m)?)))
        .collect()
}

/// Deletes events older than `cutoff`, at most `limit`; returns how many.
pub(crate) async fn prune(conn: &impl ConnectionTrait, cutoff: DateTime<Utc>, limit: u64) -> Result<u64> {
    let ids: Vec<Uuid> = e::Entity::find()
        .select_only()
        .column(e::Column::EventId)
        .filter(e::Column::OccurTime.lt(cutoff))
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(e::Entity::delete_many().filter(e::Column::EventId.is_in(ids)).exec(conn).await?.rows_affected)
}
