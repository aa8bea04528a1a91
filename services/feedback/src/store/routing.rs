//! Departments' subscriptions, the notices sent to them, and what a digest
//! reads: a day's items and the tenant's digest time.

use banso_kit::Result;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait as _},
};
use uuid::Uuid;

use super::{
    corrupt,
    entities::{item as i, notice as n, subscription as s},
    from_json, to_json,
};
use crate::domain::{
    routing::{Notice, NoticeKind, Subscription},
    voice::{Department, Item},
};

fn department(raw: &str) -> Result<Department> {
    Department::parse(raw).ok_or_else(|| corrupt("department", raw))
}

fn subscription(m: s::Model) -> Result<Subscription> {
    Ok(Subscription {
        id: m.id,
        department: department(&m.department)?,
        category: m.category,
        theme_id: m.theme_id,
        min_severity: m.min_severity,
        endpoint_id: m.endpoint_id,
        last_digest_day: m.last_digest_day,
        create_time: m.create_time,
    })
}

pub(crate) async fn insert_subscription(conn: &impl ConnectionTrait, tenant: &str, x: &Subscription) -> Result<()> {
    let row = s::ActiveModel {
        id: Set(x.id),
        tenant_id: Set(tenant.to_string()),
        department: Set(x.department.as_str().to_string()),
        category: Set(x.category.clone()),
        theme_id: Set(x.theme_id),
        min_severity: Set(x.min_severity),
        endpoint_id: Set(x.endpoint_id),
        last_digest_day: Set(x.last_digest_day),
        create_time: Set(x.create_time),
    };
    s::Entity::insert(row).exec_without_returning(conn).await?;
    Ok(())
}

pub(crate) async fn count_subscriptions(conn: &impl ConnectionTrait, tenant: &str) -> Result<u64> {
    Ok(s::Entity::find().filter(s::Column::TenantId.eq(tenant)).count(conn).await?)
}

/// The tenant's subscriptions of these departments (none given: of all), oldest first.
pub(crate) async fn subscriptions(
    conn: &impl ConnectionTrait,
    tenant: &str,
    departments: Option<&[Department]>,
) -> Result<Vec<Subscription>> {
    let mut q = s::Entity::find().filter(s::Column::TenantId.eq(tenant));
    if let Some(ds) = departments {
        q = q.filter(s::Column::Department.is_in(ds.iter().map(|d| d.as_str())));
    }
    q.order_by(s::Column::Id, Order::Asc).all(conn).await?.into_iter().map(subscription).collect()
}

/// The tenant's subscriptions to one theme.
pub(crate) async fn subscriptions_to_theme(
    conn: &impl ConnectionTrait,
    tenant: &str,
    theme: Uuid,
) -> Result<Vec<Subscription>> {
    s::Entity::find()
        .filter(s::Column::TenantId.eq(tenant))
        .filter(s::Column::ThemeId.eq(theme))
        .order_by(s::Column::Id, Order::Asc)
        .all(conn)
        .await?
        .into_iter()
        .map(subscription)
        .collect()
}

/// Deletes a subscription; false when the tenant has none of that id.
pub(crate) async fn delete_subscription(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<bool> {
    let r =
        s::Entity::delete_many().filter(s::Column::TenantId.eq(tenant)).filter(s::Column::Id.eq(id)).exec(conn).await?;
    Ok(r.rows_affected > 0)
}

/// Tenants with a subscription (the digest round's work list).
pub(crate) async fn subscribed_tenants(conn: &impl ConnectionTrait) -> Result<Vec<String>> {
    Ok(s::Entity::find()
        .select_only()
        .column(s::Column::TenantId)
        .distinct()
        .order_by_asc(s::Column::TenantId)
        .into_tuple()
        .all(conn)
        .await?)
}

/// Moves a subscription's last digest day forward to `day` (never back:
/// a replica that finished a later day first keeps it).
pub(crate) async fn set_last_digest_day(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Uuid,
    day: NaiveDate,
) -> Result<()> {
    s::Entity::update_many()
        .col_expr(s::Column::LastDigestDay, Expr::value(day))
        .filter(s::Column::TenantId.eq(tenant))
        .filter(s::Column::Id.eq(id))
        .filter(s::Column::LastDigestDay.is_null().or(s::Column::LastDigestDay.lt(day)))
        .exec(conn)
        .await?;
    Ok(())
}

fn notice_row(tenant: &str, x: &Notice) -> Result<n::ActiveModel> {
    Ok(n::ActiveModel {
        id: Set(x.id),
        tenant_id: Set(tenant.to_string()),
        subscription_id: Set(x.subscription_id),
        department: Set(x.department.as_str().to_string()),
        kind: Set(x.kind.as_str().to_string()),
        item_ids: Set(to_json("notice items", &x.item_ids)?),
        day: Set(x.day),
        create_time: Set(x.create_time),
    })
}

fn notice(m: n::Model) -> Result<Notice> {
    Ok(Notice {
        id: m.id,
        subscription_id: m.subscription_id,
        department: department(&m.department)?,
        kind: NoticeKind::parse(&m.kind).ok_or_else(|| corrupt("notice kind", &m.kind))?,
        item_ids: from_json("notice items", &m.item_ids)?,
        day: m.day,
        create_time: m.create_time,
    })
}

/// Inserts alerts (bounded statements).
pub(crate) async fn insert_notices(conn: &impl ConnectionTrait, tenant: &str, xs: &[Notice]) -> Result<()> {
    for chunk in xs.chunks(500) {
        let rows = chunk.iter().map(|x| notice_row(tenant, x)).collect::<Result<Vec<_>>>()?;
        if !rows.is_empty() {
            n::Entity::insert_many(rows).exec_without_returning(conn).await?;
        }
    }
    Ok(())
}

/// Inserts a digest unless the subscription has that day's already (from
/// another replica, or an earlier round); whether it did.
pub(crate) async fn insert_digest(conn: &impl ConnectionTrait, tenant: &str, x: &Notice) -> Result<bool> {
    let r = n::Entity::insert(notice_row(tenant, x)?)
        .on_conflict_do_nothing_on([n::Column::TenantId, n::Column::SubscriptionId, n::Column::Kind, n::Column::Day])
        .exec_without_returning(conn)
        .await?;
    Ok(matches!(r, sea_orm::TryInsertResult::Inserted(k) if k > 0))
}

/// Newest first (ids are UUIDv7), before `before`.
pub(crate) async fn list_notices(
    conn: &impl ConnectionTrait,
    tenant: &str,
    department: Option<Department>,
    kind: Option<NoticeKind>,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Notice>> {
    let mut q = n::Entity::find().filter(n::Column::TenantId.eq(tenant));
    if let Some(d) = department {
        q = q.filter(n::Column::Department.eq(d.as_str()));
    }
    if let Some(k) = kind {
        q = q.filter(n::Column::Kind.eq(k.as_str()));
    }
    if let Some(b) = before {
        q = q.filter(n::Column::Id.lt(b));
    }
    q.order_by(n::Column::Id, Order::Desc).limit(limit).all(conn).await?.into_iter().map(notice).collect()
}

/// The items of these departments recorded in [start, end), oldest first, with their themes.
pub(crate) async fn items_between(
    conn: &impl ConnectionTrait,
    tenant: &str,
    departments: &[Department],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<Item>> {
    let rows = i::Entity::find()
        .filter(i::Column::TenantId.eq(tenant))
        .filter(i::Column::CreateTime.gte(start))
        .filter(i::Column::CreateTime.lt(end))
        .filter(i::Column::Department.is_in(departments.iter().map(|d| d.as_str())))
        .order_by(i::Column::Id, Order::Asc)
        .all(conn)
        .await?;
    super::voice::with_themes(conn, tenant, rows).await
}
