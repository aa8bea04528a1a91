//! Outreach: webhook endpoints, the contacts projection, deliveries and
//! their attempts.

use banso_kit::{Error, Result, db};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use uuid::Uuid;

use super::{from_json, to_json};
use crate::domain::outreach::{Contact, DeliveryStatus};

pub(crate) mod entities {
    macro_rules! entity {
        ($m:ident, $table:literal, { $($body:tt)* }) => {
            pub mod $m {
                use sea_orm::entity::prelude::*;

                #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
                #[sea_orm(table_name = $table)]
                pub struct Model { $($body)* }

                #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
                pub enum Relation {}

                impl ActiveModelBehavior for ActiveModel {}
            }
        };
    }

    entity!(endpoint, "webhook_endpoints", {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        #[sea_orm(column_type = "Text")]
        pub display_name: String,
        #[sea_orm(column_type = "Text")]
        pub url: String,
        pub enabled: bool,
        #[sea_orm(column_type = "Text")]
        pub secret: String,
        #[sea_orm(column_type = "Text", nullable)]
        pub previous_secret: Option<String>,
        pub previous_secret_until: Option<ChronoDateTimeUtc>,
        pub create_time: ChronoDateTimeUtc,
        pub update_time: ChronoDateTimeUtc,
        pub version: i64,
    });

    entity!(contact, "contacts", {
        #[sea_orm(primary_key, auto_increment = false)]
        pub contact_id: Uuid,
        pub tenant_id: String,
        pub account_id: Uuid,
        #[sea_orm(column_type = "Text")]
        pub contact: String,
    });

    entity!(delivery, "deliveries", {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub endpoint_id: Uuid,
        pub account_id: Uuid,
        pub contact_id: Option<Uuid>,
        pub playbook_id: Option<Uuid>,
        pub firing_id: Option<Uuid>,
        pub trigger_kind: String,
        #[sea_orm(column_type = "Text")]
        pub trigger_event_id: String,
        #[sea_orm(column_type = "Text")]
        pub subject: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        #[sea_orm(column_type = "Text")]
        pub payload: String,
        #[sea_orm(column_type = "Text")]
        pub fatigue_key: String,
        pub status: String,
        pub attempts: i32,
        pub series: i32,
        pub next_attempt_time: Option<ChronoDateTimeUtc>,
        #[sea_orm(column_type = "Text")]
        pub lease_owner: String,
        pub lease_until: Option<ChronoDateTimeUtc>,
        #[sea_orm(column_type = "Text")]
        pub last_error: String,
        pub sent_time: Option<ChronoDateTimeUtc>,
        pub create_time: ChronoDateTimeUtc,
        pub update_time: ChronoDateTimeUtc,
    });

    entity!(attempt, "delivery_attempts", {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub delivery_id: Uuid,
        pub series: i32,
        pub number: i32,
        pub attempt_time: ChronoDateTimeUtc,
        pub duration_micros: i64,
        pub http_status: i32,
        #[sea_orm(column_type = "Text")]
        pub error: String,
    });

    entity!(fatigue_key, "fatigue_keys", {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
        pub fatigue_key: String,
        pub turns: i64,
    });

    impl banso_kit::db::VersionedTable for endpoint::Entity {
        const ID: endpoint::Column = endpoint::Column::Id;
        const TENANT: endpoint::Column = endpoint::Column::TenantId;
        const VERSION: endpoint::Column = endpoint::Column::Version;
    }
}

use entities::{attempt as at, contact as ct, delivery as d, endpoint as e, fatigue_key as fk};

// ---- endpoints ----

/// A webhook endpoint with its secrets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Endpoint {
    pub id: Uuid,
    pub display_name: String,
    pub url: String,
    pub enabled: bool,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub version: i64,
}

impl Endpoint {
    /// The secrets that sign at `now`: the current one, and the previous
    /// one within a day of a rotation.
    pub(crate) fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut v = vec![self.secret.as_str()];
        if let (Some(p), Some(until)) = (&self.previous_secret, self.previous_secret_until)
            && now < until
        {
            v.push(p.as_str());
        }
        v
    }
}

fn endpoint(m: e::Model) -> Endpoint {
    Endpoint {
        id: m.id,
        display_name: m.display_name,
        url: m.url,
        enabled: m.enabled,
        secret: m.secret,
        previous_secret: m.previous_secret,
        previous_secret_until: m.previous_secret_until,
        create_time: m.create_time,
        update_time: m.update_time,
        version: m.version,
    }
}

fn endpoint_row(tenant: &str, x: &Endpoint) -> e::ActiveModel {
    e::ActiveModel {
        id: Set(x.id),
        tenant_id: Set(tenant.to_string()),
        display_name: Set(x.display_name.clone()),
        url: Set(x.url.clone()),
        enabled: Set(x.enabled),
        secret: Set(x.secret.clone()),
        previous_secret: Set(x.previous_secret.clone()),
        previous_secret_until: Set(x.previous_secret_until),
        create_time: Set(x.create_time),
        update_time: Set(x.update_time),
        version: Set(x.version),
    }
}

pub(crate) async fn insert_endpoint(conn: &impl ConnectionTrait, tenant: &str, x: &Endpoint) -> Result<()> {
    e::Entity::insert(endpoint_row(tenant, x)).exec_without_returning(conn).await?;
    Ok(())
}

pub(crate) async fn find_endpoint(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<Endpoint>> {
    Ok(e::Entity::find_by_id(id).filter(e::Column::TenantId.eq(tenant)).one(conn).await?.map(endpoint))
}

pub(crate) async fn get_endpoint(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Endpoint> {
    find_endpoint(conn, tenant, id).await?.ok_or_else(|| Error::not_found("webhook endpoint", id.to_string()))
}

/// Endpoints oldest first (by id, a UUIDv7) after `after`.
pub(crate) async fn list_endpoints(
    conn: &impl ConnectionTrait,
    tenant: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Endpoint>> {
    let mut q = e::Entity::find().filter(e::Column::TenantId.eq(tenant));
    if let Some(a) = after {
        q = q.filter(e::Column::Id.gt(a));
    }
    Ok(q.order_by(e::Column::Id, Order::Asc).limit(limit).all(conn).await?.into_iter().map(endpoint).collect())
}

/// Writes `next` if the stored endpoint is still at `current.version`.
pub(crate) async fn update_endpoint(
    conn: &impl ConnectionTrait,
    tenant: &str,
    current: &Endpoint,
    next: &Endpoint,
) -> Result<bool> {
    db::update_at_version::<e::Entity>(conn, tenant, current.id, current.version, endpoint_row(tenant, next)).await
}

/// Deletes the endpoint if it is still at `current.version`.
pub(crate) async fn delete_endpoint(conn: &impl ConnectionTrait, tenant: &str, current: &Endpoint) -> Result<bool> {
    db::delete_at_version::<e::Entity>(conn, tenant, current.id, current.version).await
}

// ---- contacts ----

pub(crate) async fn upsert_contact(conn: &impl ConnectionTrait, tenant: &str, c: &Contact) -> Result<()> {
    let row = ct::ActiveModel {
        contact_id: Set(c.id),
        tenant_id: Set(tenant.to_string()),
        account_id: Set(c.account_id),
        contact: Set(to_json("contact", c)?),
    };
    ct::Entity::insert(row)
        .on_conflict(
            OnConflict::column(ct::Column::ContactId)
                .update_columns([ct::Column::AccountId, ct::Column::Contact])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub(crate) async fn delete_contact(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<()> {
    ct::Entity::delete_many()
        .filter(ct::Column::TenantId.eq(tenant))
        .filter(ct::Column::ContactId.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Forgets an account's contacts (the account was deleted).
pub(crate) async fn delete_contacts_of(conn: &impl ConnectionTrait, tenant: &str, account: Uuid) -> Result<()> {
    ct::Entity::delete_many()
        .filter(ct::Column::TenantId.eq(tenant))
        .filter(ct::Column::AccountId.eq(account))
        .exec(conn)
        .await?;
    Ok(())
}

/// An account's contacts, oldest first.
pub(crate) async fn contacts_of(conn: &impl ConnectionTrait, tenant: &str, account: Uuid) -> Result<Vec<Contact>> {
    ct::Entity::find()
        .filter(ct::Column::TenantId.eq(tenant))
        .filter(ct::Column::AccountId.eq(account))
        .order_by(ct::Column::ContactId, Order::Asc)
        .limit(1000)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| from_json("contact", &m.contact))
        .collect()
}

// ---- deliveries ----

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub account_id: Uuid,
    pub contact_id: Option<Uuid>,
    pub playbook_id: Option<Uuid>,
    pub firing_id: Option<Uuid>,
    pub trigger_kind: String,
    pub trigger_event_id: String,
    pub subject: String,
    pub body: String,
    pub payload: String,
    pub fatigue_key: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub series: i32,
    pub next_attempt_time: Option<DateTime<Utc>>,
    pub last_error: String,
    pub sent_time: Option<DateTime<Utc>>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

fn delivery(m: d::Model) -> Result<Delivery> {
    Ok(Delivery {
        id: m.id,
        endpoint_id: m.endpoint_id,
        account_id: m.account_id,
        contact_id: m.contact_id,
        playbook_id: m.playbook_id,
        firing_id: m.firing_id,
        trigger_kind: m.trigger_kind,
        trigger_event_id: m.trigger_event_id,
        subject: m.subject,
        body: m.body,
        payload: m.payload,
        fatigue_key: m.fatigue_key,
        status: DeliveryStatus::parse(&m.status)
            .ok_or_else(|| super::corrupt("delivery", format!("status {}", m.status)))?,
        attempts: m.attempts,
        series: m.series,
        next_attempt_time: m.next_attempt_time,
        last_error: m.last_error,
        sent_time: m.sent_time,
        create_time: m.create_time,
        update_time: m.update_time,
    })
}

pub(crate) async fn insert_delivery(conn: &impl ConnectionTrait, tenant: &str, x: &Delivery) -> Result<()> {
    let row = d::ActiveModel {
        id: Set(x.id),
        tenant_id: Set(tenant.to_string()),
        endpoint_id: Set(x.endpoint_id),
        account_id: Set(x.account_id),
        contact_id: Set(x.contact_id),
        playbook_id: Set(x.playbook_id),
        firing_id: Set(x.firing_id),
        trigger_kind: Set(x.trigger_kind.clone()),
        trigger_event_id: Set(x.trigger_event_id.clone()),
        subject: Set(x.subject.clone()),
        body: Set(x.body.clone()),
        payload: Set(x.payload.clone()),
        fatigue_key: Set(x.fatigue_key.clone()),
        status: Set(x.status.as_str().to_string()),
        attempts: Set(x.attempts),
        series: Set(x.series),
        next_attempt_time: Set(x.next_attempt_time),
        lease_owner: Set(String::new()),
        lease_until: Set(None),
        last_error: Set(x.last_error.clone()),
        sent_time: Set(x.sent_time),
        create_time: Set(x.create_time),
        update_time: Set(x.update_time),
    };
    d::Entity::insert(row).exec_without_returning(conn).await?;
    Ok(())
}

pub(crate) async fn get_delivery(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Delivery> {
    d::Entity::find_by_id(id)
        .filter(d::Column::TenantId.eq(tenant))
        .one(conn)
        .await?
        .map(delivery)
        .transpose()?
        .ok_or_else(|| Error::not_found("delivery", id.to_string()))
}

/// Takes the turn of `key` in the fatigue budget until the transaction
/// ends: a concurrent transaction queueing for the same contact waits here,
/// then counts this one's messages.
pub(crate) async fn take_turn(conn: &impl ConnectionTrait, tenant: &str, key: &str) -> Result<()> {
    let row = fk::ActiveModel { tenant_id: Set(tenant.to_string()), fatigue_key: Set(key.to_string()), turns: Set(1) };
    fk::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([fk::Column::TenantId, fk::Column::FatigueKey])
                .value(fk::Column::Turns, Expr::col((fk::Entity, fk::Column::Turns)).add(1))
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Messages queued (not skipped) for `key` since `since`.
pub(crate) async fn queued_since(
    conn: &impl ConnectionTrait,
    tenant: &str,
    key: &str,
    since: DateTime<Utc>,
) -> Result<i64> {
    let n = d::Entity::find()
        .filter(d::Column::TenantId.eq(tenant))
        .filter(d::Column::FatigueKey.eq(key))
        .filter(d::Column::CreateTime.gt(since))
        .filter(d::Column::Status.ne(DeliveryStatus::Skipped.as_str()))
        .count(conn)
        .await?;
    Ok(n as i64)
}

/// Messages queued (not skipped) for `key` since `since`: when, and by which playbook.
pub(crate) async fn queued_times(
    conn: &impl ConnectionTrait,
    tenant: &str,
    key: &str,
    since: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, Option<Uuid>)>> {
    Ok(d::Entity::find()
        .select_only()
        .column(d::Column::CreateTime)
        .column(d::Column::PlaybookId)
        .filter(d::Column::TenantId.eq(tenant))
        .filter(d::Column::FatigueKey.eq(key))
        .filter(d::Column::CreateTime.gt(since))
        .filter(d::Column::Status.ne(DeliveryStatus::Skipped.as_str()))
        .limit(10_000)
        .into_tuple()
        .all(conn)
        .await?)
}

/// Which deliveries a list returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DeliveryFilter {
    pub endpoint_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub status: Option<DeliveryStatus>,
}

/// Deliveries newest first (by id, a UUIDv7) before `before`.
pub(crate) async fn list_deliveries(
    conn: &impl ConnectionTrait,
    tenant: &str,
    f: &DeliveryFilter,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Delivery>> {
    let mut q = d::Entity::find().filter(d::Column::TenantId.eq(tenant));
    if let Some(x) = f.endpoint_id {
        q = q.filter(d::Column::EndpointId.eq(x));
    }
    if let Some(x) = f.account_id {
        q = q.filter(d::Column::AccountId.eq(x));
    }
    if let Some(x) = f.status {
        q = q.filter(d::Column::Status.eq(x.as_str()));
    }
    if let Some(b) = before {
        q = q.filter(d::Column::Id.lt(b));
    }
    q.order_by(d::Column::Id, Order::Desc).limit(limit).all(conn).await?.into_iter().map(delivery).collect()
}

impl banso_kit::db::LeasedQueue for d::Entity {
    const ID: d::Column = d::Column::Id;
    const STATUS: d::Column = d::Column::Status;
    const PENDING: &'static str = DeliveryStatus::Pending.as_str();
    const NEXT_ATTEMPT_TIME: d::Column = d::Column::NextAttemptTime;
    const LEASE_OWNER: d::Column = d::Column::LeaseOwner;
    const LEASE_UNTIL: d::Column = d::Column::LeaseUntil;
}

/// Claims up to `limit` due pending deliveries of any tenant for `owner`
/// until `until` (`banso_kit::db::claim_due`), with their tenants.
pub(crate) async fn claim_due(
    conn: &impl ConnectionTrait,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<(String, Delivery)>> {
    let won = banso_kit::db::claim_due::<d::Entity>(conn, owner, now, until, limit).await?;
    won.into_iter().map(|m| Ok((m.tenant_id.clone(), delivery(m)?))).collect()
}

/// The outcome of an attempt, written only while `owner` still holds the
/// delivery's lease; returns whether it wrote.
#[derive(Debug, Clone)]
pub(crate) struct AttemptResult {
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_time: Option<DateTime<Utc>>,
    pub last_error: String,
    pub sent_time: Option<DateTime<Utc>>,
}

pub(crate) async fn finish_attempt(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Uuid,
    owner: &str,
    r: &AttemptResult,
    now: DateTime<Utc>,
) -> Result<bool> {
    let res = d::Entity::update_many()
        .col_expr(d::Column::Status, Expr::value(r.status.as_str()))
        .col_expr(d::Column::Attempts, Expr::value(r.attempts))
        .col_expr(d::Column::NextAttemptTime, Expr::value(r.next_attempt_time))
        .col_expr(d::Column::LastError, Expr::value(r.last_error.clone()))
        .col_expr(d::Column::SentTime, Expr::value(r.sent_time))
        .col_expr(d::Column::LeaseOwner, Expr::value(""))
        .col_expr(d::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(d::Column::UpdateTime, Expr::value(now))
        .filter(d::Column::TenantId.eq(tenant))
        .filter(d::Column::Id.eq(id))
        .filter(d::Column::LeaseOwner.eq(owner))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Gives a claimed delivery back without an attempt, due again at `next`.
pub(crate) async fn postpone(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Uuid,
    owner: &str,
    next: DateTime<Utc>,
) -> Result<()> {
    d::Entity::update_many()
        .col_expr(d::Column::NextAttemptTime, Expr::value(next))
        .col_expr(d::Column::LeaseOwner, Expr::value(""))
        .col_expr(d::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(d::Column::TenantId.eq(tenant))
        .filter(d::Column::Id.eq(id))
        .filter(d::Column::LeaseOwner.eq(owner))
        .exec(conn)
        .await?;
    Ok(())
}

/// Makes a DEAD or SUCCEEDED delivery PENDING again with a new series;
/// returns whether it did (it was in one of those states).
pub(crate) async fn redeliver(
    conn: &impl ConnectionTrait,
    tenant: &str,
    x: &Delivery,
    now: DateTime<Utc>,
) -> Result<bool> {
    let res = d::Entity::update_many()
        .col_expr(d::Column::Status, Expr::value(DeliveryStatus::Pending.as_str()))
        .col_expr(d::Column::Attempts, Expr::value(0))
        .col_expr(d::Column::Series, Expr::value(x.series + 1))
        .col_expr(d::Column::NextAttemptTime, Expr::value(now))
        .col_expr(d::Column::LastError, Expr::value(""))
        .col_expr(d::Column::SentTime, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(d::Column::LeaseOwner, Expr::value(""))
        .col_expr(d::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(d::Column::UpdateTime, Expr::value(now))
        .filter(d::Column::TenantId.eq(tenant))
        .filter(d::Column::Id.eq(x.id))
        .filter(d::Column::Series.eq(x.series))
        .filter(d::Column::Status.is_in([DeliveryStatus::Dead.as_str(), DeliveryStatus::Succeeded.as_str()]))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// The pending deliveries of a deleted endpoint become DEAD; returns them.
pub(crate) async fn kill_pending_of(
    conn: &impl ConnectionTrait,
    tenant: &str,
    endpoint: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Delivery>> {
    let pending = d::Entity::find()
        .filter(d::Column::TenantId.eq(tenant))
        .filter(d::Column::EndpointId.eq(endpoint))
        .filter(d::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .all(conn)
        .await?
        .into_iter()
        .map(delivery)
        .collect::<Result<Vec<_>>>()?;
    d::Entity::update_many()
        .col_expr(d::Column::Status, Expr::value(DeliveryStatus::Dead.as_str()))
        .col_expr(d::Column::NextAttemptTime, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(d::Column::LastError, Expr::value("the webhook endpoint was deleted"))
        .col_expr(d::Column::UpdateTime, Expr::value(now))
        .filter(d::Column::TenantId.eq(tenant))
        .filter(d::Column::EndpointId.eq(endpoint))
        .filter(d::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .exec(conn)
        .await?;
    Ok(pending)
}

// ---- attempts ----

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Attempt {
    pub series: i32,
    pub number: i32,
    pub attempt_time: DateTime<Utc>,
    pub duration_micros: i64,
    /// 0: no answer.
    pub http_status: i32,
    pub error: String,
}

pub(crate) async fn insert_attempt(
    conn: &impl ConnectionTrait,
    tenant: &str,
    delivery: Uuid,
    a: &Attempt,
) -> Result<()> {
    let row = at::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.to_string()),
        delivery_id: Set(delivery),
        series: Set(a.series),
        number: Set(a.number),
        attempt_time: Set(a.attempt_time),
        duration_micros: Set(a.duration_micros),
        http_status: Set(a.http_status),
        error: Set(a.error.clone()),
    };
    at::Entity::insert(row).exec_without_returning(conn).await?;
    Ok(())
}

/// A delivery's attempts, oldest first.
pub(crate) async fn attempts_of(conn: &impl ConnectionTrait, tenant: &str, delivery: Uuid) -> Result<Vec<Attempt>> {
    Ok(at::Entity::find()
        .filter(at::Column::TenantId.eq(tenant))
        .filter(at::Column::DeliveryId.eq(delivery))
        .order_by(at::Column::Id, Order::Asc)
        .limit(1000)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| Attempt {
            series: m.series,
            number: m.number,
            attempt_time: m.attempt_time,
            duration_micros: m.duration_micros,
            http_status: m.http_status,
            error: m.error,
        })
        .collect())
}

/// A UUIDv7 of time `t`: an id below it was made no later than `t`'s
/// millisecond (its random bits decide within it; filter the time too).
fn v7_at(t: DateTime<Utc>) -> Uuid {
    let secs = u64::try_from(t.timestamp()).unwrap_or(0);
    Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, t.timestamp_subsec_nanos()))
}

/// Deletes up to `limit` finished deliveries (succeeded, dead or skipped)
/// created and last touched before `cutoff`, with their attempts, in one
/// transaction; returns how many deliveries went. A pending one is never
/// pruned. Ids are UUIDv7, so "created before" is a range of the primary
/// key and the hourly pass reads only the old rows.
pub(crate) async fn prune_deliveries(
    conn: &sea_orm::DatabaseConnection,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<u64> {
    use sea_orm::TransactionTrait;
    let bound = v7_at(cutoff);
    let finished = [DeliveryStatus::Succeeded, DeliveryStatus::Dead, DeliveryStatus::Skipped].map(|s| s.as_str());
    let tx = conn.begin().await?;
    let rows: Vec<(Uuid, String)> = d::Entity::find()
        .select_only()
        .column(d::Column::Id)
        .column(d::Column::TenantId)
        .filter(d::Column::Id.lt(bound))
        .filter(d::Column::CreateTime.lt(cutoff))
        .filter(d::Column::UpdateTime.lt(cutoff))
        .filter(d::Column::Status.is_in(finished))
        .order_by(d::Column::Id, Order::Asc)
        .limit(limit)
        .into_tuple()
        .all(&tx)
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    // Attempts by tenant and delivery, as their index has them.
    let mut by_tenant: std::collections::BTreeMap<&str, Vec<Uuid>> = Default::default();
    for (id, tenant) in &rows {
        by_tenant.entry(tenant.as_str()).or_default().push(*id);
    }
    for (tenant, ids) in by_tenant {
        at::Entity::delete_many()
            .filter(at::Column::TenantId.eq(tenant))
            .filter(at::Column::DeliveryId.is_in(ids))
            .exec(&tx)
            .await?;
    }
    let ids = rows.into_iter().map(|(id, _)| id);
    let n = d::Entity::delete_many().filter(d::Column::Id.is_in(ids)).exec(&tx).await?.rows_affected;
    tx.commit().await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Finished deliveries past the retention go with their attempts, of
    /// every tenant, a batch at a time; a pending one, one redelivered
    /// since, and a recent one stay.
    #[tokio::test]
    async fn finished_deliveries_are_pruned_with_their_attempts_after_the_retention() {
        let db = banso_testkit::fresh_database().await.unwrap();
        let conn = db.connect::<crate::migration::Migrator>(crate::NAME).await.unwrap();
        let now = banso_kit::wire::now();
        let ago = |days: i64| now - chrono::Duration::days(days);
        let delivery = |created: DateTime<Utc>, touched: DateTime<Utc>, status: DeliveryStatus| Delivery {
            id: v7_at(created),
            endpoint_id: Uuid::now_v7(),
            account_id: Uuid::now_v7(),
            contact_id: None,
            playbook_id: None,
            firing_id: None,
            trigger_kind: "event".into(),
            trigger_event_id: "e".into(),
            subject: "s".into(),
            body: "b".into(),
            payload: "{}".into(),
            fatigue_key: "account:x".into(),
            status,
            attempts: 1,
            series: 1,
            next_attempt_time: None,
            last_error: String::new(),
            sent_time: None,
            create_time: created,
            update_time: touched,
        };
        let attempt = Attempt {
            series: 1,
            number: 1,
            attempt_time: ago(500),
            duration_micros: 10,
            http_status: 200,
            error: String::new(),
        };
        let old_done = delivery(ago(500), ago(500), DeliveryStatus::Succeeded);
        let old_dead = delivery(ago(450), ago(450), DeliveryStatus::Dead);
        let old_pending = delivery(ago(500), ago(500), DeliveryStatus::Pending);
        let redelivered = delivery(ago(500), ago(10), DeliveryStatus::Succeeded);
        let recent = delivery(ago(10), ago(10), DeliveryStatus::Skipped);
        for (tenant, d) in [
            ("acme", &old_done),
            ("globex", &old_dead),
            ("acme", &old_pending),
            ("acme", &redelivered),
            ("acme", &recent),
        ] {
            insert_delivery(&conn, tenant, d).await.unwrap();
            insert_attempt(&conn, tenant, d.id, &attempt).await.unwrap();
        }
        insert_attempt(&conn, "acme", old_done.id, &Attempt { number: 2, ..attempt.clone() }).await.unwrap();
        let cutoff = ago(400);
        assert_eq!(prune_deliveries(&conn, cutoff, 1).await.unwrap(), 1, "a batch at a time");
        assert_eq!(prune_deliveries(&conn, cutoff, 100).await.unwrap(), 1);
        assert_eq!(prune_deliveries(&conn, cutoff, 100).await.unwrap(), 0);
        for (tenant, d) in [("acme", &old_done), ("globex", &old_dead)] {
            assert!(matches!(get_delivery(&conn, tenant, d.id).await, Err(Error::NotFound { .. })));
            assert!(attempts_of(&conn, tenant, d.id).await.unwrap().is_empty());
        }
        for d in [&old_pending, &redelivered, &recent] {
            assert_eq!(get_delivery(&conn, "acme", d.id).await.unwrap().id, d.id);
            assert_eq!(attempts_of(&conn, "acme", d.id).await.unwrap().len(), 1);
        }
    }

    /// Four claimers racing over 200 due deliveries (on PostgreSQL with
    /// BANSO_TEST_DATABASE_URL, each on its own pooled connection): every
    /// delivery is won by exactly one.
    #[tokio::test]
    async fn concurrent_claims_never_share_a_delivery() {
        let db = banso_testkit::fresh_database().await.unwrap();
        let conn = db.connect::<crate::migration::Migrator>(crate::NAME).await.unwrap();
        let now = banso_kit::wire::now();
        let mut all = HashSet::new();
        for i in 0..200 {
            let id = Uuid::now_v7();
            all.insert(id);
            let d = Delivery {
                id,
                endpoint_id: Uuid::now_v7(),
                account_id: Uuid::now_v7(),
                contact_id: None,
                playbook_id: None,
                firing_id: None,
                trigger_kind: "manual".into(),
                trigger_event_id: String::new(),
                subject: format!("s{i}"),
                body: String::new(),
                payload: "{}".into(),
                fatigue_key: "account:x".into(),
                status: DeliveryStatus::Pending,
                attempts: 0,
                series: 1,
                next_attempt_time: Some(now),
                last_error: String::new(),
                sent_time: None,
                create_time: now,
                update_time: now,
            };
            insert_delivery(&conn, if i % 2 == 0 { "acme" } else { "globex" }, &d).await.unwrap();
        }
        let claimer = |name: &'static str| {
            let conn = conn.clone();
            async move {
                let mut won = Vec::new();
                loop {
                    let owner = format!("{name}-{}", Uuid::now_v7().simple());
                    let t = banso_kit::wire::now();
                    let got = claim_due(&conn, &owner, t, t + chrono::Duration::seconds(60), 16).await.unwrap();
                    if got.is_empty() {
                        return won;
                    }
                    won.extend(got.into_iter().map(|(_, d)| d.id));
                }
            }
        };
        let (a, b, c, d) = tokio::join!(claimer("a"), claimer("b"), claimer("c"), claimer("d"));
        let mut seen = HashSet::new();
        for id in a.iter().chain(&b).chain(&c).chain(&d) {
            assert!(seen.insert(*id), "delivery {id} was claimed twice");
        }
        assert_eq!(seen, all, "every due delivery is claimed once");
        // Leased: nothing is due again until the leases expire.
        let t = banso_kit::wire::now();
        assert!(claim_due(&conn, "late", t, t, 16).await.unwrap().is_empty());
        let later = t + chrono::Duration::seconds(61);
        assert_eq!(claim_due(&conn, "after", later, later, 500).await.unwrap().len(), 200);
    }
}
