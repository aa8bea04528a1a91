//! Calls to action.

use banso_kit::{Error, Result, db};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{entities::cta as c, from_json, to_json};
use crate::domain::cta::{Cta, CtaType, Outcome, Priority, Status};

fn from_model(m: c::Model) -> Result<Cta> {
    let bad = |what: &str, v: &str| super::corrupt("cta", format!("{what} {v}"));
    Ok(Cta {
        id: m.id,
        account_id: m.account_id,
        playbook_id: m.playbook_id,
        playbook_version: m.playbook_version,
        cta_type: CtaType::parse(&m.cta_type).ok_or_else(|| bad("type", &m.cta_type))?,
        priority: Priority::from_rank(m.priority).ok_or_else(|| bad("priority", &m.priority.to_string()))?,
        status: Status::parse(&m.status).ok_or_else(|| bad("status", &m.status))?,
        title: m.title,
        description: m.description,
        owner_id: m.owner_id,
        due_date: m.due_date,
        tasks: from_json("cta tasks", &m.tasks)?,
        reasons: from_json("cta reasons", &m.reasons)?,
        snooze_until: m.snooze_until,
        outcome: Outcome::parse(&m.outcome),
        close_note: m.close_note,
        create_time: m.create_time,
        update_time: m.update_time,
        close_time: m.close_time,
        version: m.version,
    })
}

fn active(tenant: &str, x: &Cta) -> Result<c::ActiveModel> {
    Ok(c::ActiveModel {
        id: Set(x.id),
        tenant_id: Set(tenant.to_string()),
        account_id: Set(x.account_id),
        playbook_id: Set(x.playbook_id),
        playbook_version: Set(x.playbook_version),
        open_key: Set(x.open_key()),
        cta_type: Set(x.cta_type.as_str().to_string()),
        priority: Set(x.priority.rank()),
        status: Set(x.status.as_str().to_string()),
        title: Set(x.title.clone()),
        description: Set(x.description.clone()),
        owner_id: Set(x.owner_id.clone()),
        due_date: Set(x.due_date),
        tasks: Set(to_json("cta tasks", &x.tasks)?),
        reasons: Set(to_json("cta reasons", &x.reasons)?),
        snooze_until: Set(x.snooze_until),
        outcome: Set(x.outcome.map(|o| o.as_str().to_string()).unwrap_or_default()),
        close_note: Set(x.close_note.clone()),
        create_time: Set(x.create_time),
        update_time: Set(x.update_time),
        close_time: Set(x.close_time),
        version: Set(x.version),
    })
}

pub(crate) async fn insert(conn: &impl ConnectionTrait, tenant: &str, x: &Cta) -> Result<()> {
    c::Entity::insert(active(tenant, x)?).exec_without_returning(conn).await?;
    Ok(())
}

pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Cta> {
    c::Entity::find_by_id(id)
        .filter(c::Column::TenantId.eq(tenant))
        .one(conn)
        .await?
        .map(from_model)
        .transpose()?
        .ok_or_else(|| Error::not_found("cta", id.to_string()))
}

/// The open CTA a playbook keeps for an account, if any.
pub(crate) async fn open_of(conn: &impl ConnectionTrait, tenant: &str, key: &str) -> Result<Option<Cta>> {
    c::Entity::find()
        .filter(c::Column::TenantId.eq(tenant))
        .filter(c::Column::OpenKey.eq(key))
        .one(conn)
        .await?
        .map(from_model)
        .transpose()
}

/// Writes `next` if the stored CTA is still at `current.version`.
pub(crate) async fn update(conn: &impl ConnectionTrait, tenant: &str, current: &Cta, next: &Cta) -> Result<bool> {
    db::update_at_version::<c::Entity>(conn, tenant, current.id, current.version, active(tenant, next)?).await
}

/// Which CTAs a list returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Filter {
    pub owner_id: Option<String>,
    pub statuses: Vec<Status>,
    pub types: Vec<CtaType>,
    pub min_priority: Option<Priority>,
    pub due_before: Option<NaiveDate>,
    pub account_id: Option<Uuid>,
    pub playbook_id: Option<Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum CtaOrder {
    DueDate { desc: bool },
    Priority,
    CreateTime { desc: bool },
}

/// Where a page resumes: the last row's sort key and id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Cursor {
    Due(Option<NaiveDate>, Uuid),
    Priority(i32, Uuid),
    Id(Uuid),
}

impl Cursor {
    pub(crate) fn of(order: CtaOrder, x: &Cta) -> Cursor {
        match order {
            CtaOrder::DueDate { .. } => Cursor::Due(x.due_date, x.id),
            CtaOrder::Priority => Cursor::Priority(x.priority.rank(), x.id),
            CtaOrder::CreateTime { .. } => Cursor::Id(x.id),
        }
    }
}

fn status_condition(s: Status, now: DateTime<Utc>) -> Condition {
    let st = |s: Status| c::Column::Status.eq(s.as_str());
    match s {
        // A snoozed CTA whose time has come reads as open.
        Status::Open => Condition::any()
            .add(st(Status::Open))
            .add(Condition::all().add(st(Status::Snoozed)).add(c::Column::SnoozeUntil.lte(now))),
        Status::Snoozed => Condition::all().add(st(Status::Snoozed)).add(c::Column::SnoozeUntil.gt(now)),
        other => Condition::all().add(st(other)),
    }
}

pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    f: &Filter,
    order: CtaOrder,
    after: Option<&Cursor>,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<Vec<Cta>> {
    let mut q = c::Entity::find().filter(c::Column::TenantId.eq(tenant));
    if let Some(o) = &f.owner_id {
        q = q.filter(c::Column::OwnerId.eq(o.as_str()));
    }
    if !f.statuses.is_empty() {
        q = q.filter(f.statuses.iter().fold(Condition::any(), |c, s| c.add(status_condition(*s, now))));
    }
    if !f.types.is_empty() {
        q = q.filter(c::Column::CtaType.is_in(f.types.iter().map(|t| t.as_str())));
    }
    if let Some(p) = f.min_priority {
        q = q.filter(c::Column::Priority.gte(p.rank()));
    }
    if let Some(d) = f.due_before {
        q = q.filter(c::Column::DueDate.lte(d));
    }
    if let Some(a) = f.account_id {
        q = q.filter(c::Column::AccountId.eq(a));
    }
    if let Some(p) = f.playbook_id {
        q = q.filter(c::Column::PlaybookId.eq(p));
    }
    let due_null = Expr::col(c::Column::DueDate).is_null();
    q = match order {
        CtaOrder::DueDate { desc } => {
            if let Some(Cursor::Due(due, id)) = after {
                let (gt, dir_id) = (!desc, *id);
                q = q.filter(match due {
                    Some(d) => {
                        let past = if gt { c::Column::DueDate.gt(*d) } else { c::Column::DueDate.lt(*d) };
                        Condition::any()
                            .add(past)
                            .add(Condition::all().add(c::Column::DueDate.eq(*d)).add(c::Column::Id.gt(dir_id)))
                            .add(c::Column::DueDate.is_null())
                    }
                    None => Condition::all().add(c::Column::DueDate.is_null()).add(c::Column::Id.gt(dir_id)),
                });
            }
            // CTAs without a due date come last either way.
            q.order_by(due_null, Order::Asc)
                .order_by(c::Column::DueDate, if desc { Order::Desc } else { Order::Asc })
                .order_by(c::Column::Id, Order::Asc)
        }
        CtaOrder::Priority => {
            if let Some(Cursor::Priority(p, id)) = after {
                q = q.filter(
                    Condition::any()
                        .add(c::Column::Priority.lt(*p))
                        .add(Condition::all().add(c::Column::Priority.eq(*p)).add(c::Column::Id.gt(*id))),
                );
            }
            q.order_by(c::Column::Priority, Order::Desc).order_by(c::Column::Id, Order::Asc)
        }
        CtaOrder::CreateTime { desc } => {
            if let Some(Cursor::Id(id)) = after {
                q = q.filter(if desc { c::Column::Id.lt(*id) } else { c::Column::Id.gt(*id) });
            }
            q.order_by(c::Column::Id, if desc { Order::Desc } else { Order::Asc })
        }
    };
    q.limit(limit).all(conn).await?.into_iter().map(from_model).collect()
}
