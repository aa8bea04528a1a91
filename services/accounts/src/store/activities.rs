//! The timeline: activities of accounts.

use banso_kit::{Error, Result};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{corrupt, entities::activity, is_foreign_key_violation};
use crate::domain::activity::{Activity, ActivityFilter, ActivityKind, TouchCounts, TouchOrigin};

fn from_model(m: activity::Model) -> Result<Activity> {
    let ids: Vec<String> = serde_json::from_value(m.contact_ids).map_err(|e| corrupt("contact_ids", e))?;
    Ok(Activity {
        id: m.id,
        account_id: m.account_id,
        kind: ActivityKind::parse(&m.kind).ok_or_else(|| corrupt("activity kind", &m.kind))?,
        contact_ids: ids
            .iter()
            .map(|s| Uuid::parse_str(s).map_err(|e| corrupt("contact id", e)))
            .collect::<Result<_>>()?,
        author_id: m.author_id,
        occur_time: m.occur_time,
        subject: m.subject,
        body: m.body,
        external_ref: m.external_ref,
        create_time: m.create_time,
        origin: match m.origin {
            Some(o) => Some(TouchOrigin::parse(&o).ok_or_else(|| corrupt("activity origin", &o))?),
            None => None,
        },
    })
}

/// The activity, or NOT_FOUND.
pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Activity> {
    activity::Entity::find_by_id(id)
        .filter(activity::Column::TenantId.eq(tenant))
        .one(conn)
        .await?
        .map(from_model)
        .transpose()?
        .ok_or_else(|| Error::not_found("activity", id.to_string()))
}

/// Inserts an activity. ALREADY_EXISTS: its external_ref is on the
/// timeline already; NOT_FOUND: its account is gone.
pub(crate) async fn insert(conn: &impl ConnectionTrait, tenant: &str, a: &Activity) -> Result<()> {
    let ids: Vec<String> = a.contact_ids.iter().map(Uuid::to_string).collect();
    let inserted = activity::Entity::insert(activity::ActiveModel {
        id: Set(a.id),
        tenant_id: Set(tenant.to_owned()),
        account_id: Set(a.account_id),
        kind: Set(a.kind.as_str().to_owned()),
        contact_ids: Set(serde_json::to_value(ids).map_err(Error::internal)?),
        author_id: Set(a.author_id.clone()),
        occur_time: Set(a.occur_time),
        subject: Set(a.subject.clone()),
        body: Set(a.body.clone()),
        external_ref: Set(a.external_ref.clone()),
        create_time: Set(a.create_time),
        origin: Set(a.origin.map(|o| o.as_str().to_owned())),
    })
    .exec_without_returning(conn)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_foreign_key_violation(&e) => Err(Error::not_found("account", a.account_id.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// Whether an activity with this external_ref is on the tenant's timeline.
pub(crate) async fn external_ref_taken(conn: &impl ConnectionTrait, tenant: &str, external_ref: &str) -> Result<bool> {
    let n = activity::Entity::find()
        .filter(activity::Column::TenantId.eq(tenant))
        .filter(activity::Column::ExternalRef.eq(external_ref))
        .count(conn)
        .await?;
    Ok(n > 0)
}

/// Activities newest first, after `(occur_time, id)`.
pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    f: &ActivityFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<Activity>> {
    use activity::Column as C;
    let mut q = activity::Entity::find().filter(C::TenantId.eq(tenant));
    if let Some(a) = f.account_id {
        q = q.filter(C::AccountId.eq(a));
    }
    if !f.kinds.is_empty() {
        q = q.filter(C::Kind.is_in(f.kinds.iter().map(|k| k.as_str())));
    }
    if let Some(author) = &f.author_id {
        q = q.filter(C::AuthorId.eq(author.as_str()));
    }
    if !f.origins.is_empty() {
        let mut any = Condition::any();
        for o in &f.origins {
            any = any.add(match o {
                Some(o) => C::Origin.eq(o.as_str()),
                None => C::Origin.is_null(),
            });
        }
        q = q.filter(any);
    }
    if let Some(t) = f.start_time {
        q = q.filter(C::OccurTime.gte(t));
    }
    if let Some(t) = f.end_time {
        q = q.filter(C::OccurTime.lt(t));
    }
    if let Some((t, id)) = after {
        q = q.filter(
            Condition::any().add(C::OccurTime.lt(t)).add(Condition::all().add(C::OccurTime.eq(t)).add(C::Id.lt(id))),
        );
    }
    q.order_by(C::OccurTime, Order::Desc)
        .order_by(C::Id, Order::Desc)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(from_model)
        .collect()
}

/// Activities of `kind` on an account's timeline in [start, end).
pub(crate) async fn count(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account_id: Uuid,
    kind: ActivityKind,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<u64> {
    Ok(activity::Entity::find()
        .filter(activity::Column::TenantId.eq(tenant))
        .filter(activity::Column::AccountId.eq(account_id))
        .filter(activity::Column::Kind.eq(kind.as_str()))
        .filter(activity::Column::OccurTime.gte(start))
        .filter(activity::Column::OccurTime.lt(end))
        .count(conn)
        .await?)
}

/// Touches in [start, end) per account: (account id, owner id, counts).
/// Activities that are no touch (no origin) do not count.
pub(crate) async fn touches_by_account(
    conn: &impl ConnectionTrait,
    tenant: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<(Uuid, TouchCounts)>> {
    use activity::Column as C;
    let rows: Vec<(Uuid, String, i64)> = activity::Entity::find()
        .select_only()
        .column(C::AccountId)
        .column(C::Origin)
        .column_as(C::Id.count(), "n")
        .filter(C::TenantId.eq(tenant))
        .filter(C::OccurTime.gte(start))
        .filter(C::OccurTime.lt(end))
        .filter(C::Origin.is_not_null())
        .group_by(C::AccountId)
        .group_by(C::Origin)
        .into_tuple()
        .all(conn)
        .await?;
    let mut out: std::collections::BTreeMap<Uuid, TouchCounts> = std::collections::BTreeMap::new();
    for (account, origin, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        let c = out.entry(account).or_default();
        match TouchOrigin::parse(&origin).ok_or_else(|| corrupt("activity origin", &origin))? {
            TouchOrigin::Vendor => c.vendor += n,
            TouchOrigin::Customer => c.customer += n,
        }
    }
    Ok(out.into_iter().collect())
}
