//! The projection of Accounts and Health: accounts with their latest score,
//! and segments.

use banso_kit::{Result, wire};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{
    entities::account as a,
    entities::segment as s,
    from_json,
    plans::{self, PlanAlert},
    to_json,
};
use crate::domain::{
    TouchModel,
    engine::Calendar,
    playbook::ScheduleTrigger,
    projection::{Account, Health, Segment},
};

/// An account of the projection with what schedules and conditions read.
#[derive(Debug, Clone)]
pub(crate) struct Projected {
    pub account: Account,
    pub health: Option<Health>,
    pub stage_since: DateTime<Utc>,
    pub last_usage_day: Option<NaiveDate>,
    pub create_time: DateTime<Utc>,
}

impl Projected {
    /// What schedule conditions read, in the tenant's time zone.
    /// `plans` holds the plan calendars of the accounts with active plans.
    pub(crate) fn calendar(
        &self,
        tz: chrono_tz::Tz,
        plans: &std::collections::HashMap<Uuid, crate::domain::engine::PlanCalendar>,
    ) -> Calendar {
        let day = |t: DateTime<Utc>| t.with_timezone(&tz).date_naive();
        Calendar {
            renewal_date: self.account.renewal_date,
            last_usage_day: self.last_usage_day,
            known_since: day(self.create_time),
            stage_since: day(self.stage_since),
            plans: plans.get(&self.account.id).copied().unwrap_or_default(),
        }
    }
}

fn projected(m: a::Model) -> Result<Projected> {
    Ok(Projected {
        account: from_json("account", &m.account)?,
        health: m.health.as_deref().map(|h| from_json("health", h)).transpose()?,
        stage_since: m.stage_since,
        last_usage_day: m.last_usage_day,
        create_time: m.create_time,
    })
}

/// Writes an account as an event of `time` carries it. The stage's start
/// moves when the stage changes. A deleted account stays deleted.
pub(crate) async fn upsert_account(
    conn: &impl ConnectionTrait,
    tenant: &str,
    acc: &Account,
    time: DateTime<Utc>,
) -> Result<()> {
    let doc = to_json("account", acc)?;
    let stage = acc.lifecycle_stage.as_str().to_string();
    let existing = a::Entity::find_by_id(acc.id).filter(a::Column::TenantId.eq(tenant)).one(conn).await?;
    match existing {
        Some(m) if m.deleted => Ok(()),
        Some(m) => {
            let stage_since = if m.lifecycle_stage == stage { m.stage_since } else { time };
            let row = a::ActiveModel {
                account_id: Set(acc.id),
                account: Set(doc),
                lifecycle_stage: Set(stage),
                stage_since: Set(stage_since),
                renewal_date: Set(acc.renewal_date),
                update_time: Set(wire::now()),
                ..Default::default()
            };
            a::Entity::update_many()
                .set(row)
                .filter(a::Column::TenantId.eq(tenant))
                .filter(a::Column::AccountId.eq(acc.id))
                .exec(conn)
                .await?;
            Ok(())
        }
        None => {
            let now = wire::now();
            let row = a::ActiveModel {
                account_id: Set(acc.id),
                tenant_id: Set(tenant.to_string()),
                deleted: Set(false),
                account: Set(doc),
                health: Set(None),
                lifecycle_stage: Set(stage),
                stage_since: Set(time),
                renewal_date: Set(acc.renewal_date),
                last_usage_day: Set(None),
                create_time: Set(now),
                update_time: Set(now),
            };
            a::Entity::insert(row).exec_without_returning(conn).await?;
            Ok(())
        }
    }
}

pub(crate) async fn delete_account(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<()> {
    a::Entity::update_many()
        .col_expr(a::Column::Deleted, sea_orm::sea_query::Expr::value(true))
        .filter(a::Column::TenantId.eq(tenant))
        .filter(a::Column::AccountId.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// A live account of the tenant, if the projection knows it.
pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<Projected>> {
    a::Entity::find_by_id(id)
        .filter(a::Column::TenantId.eq(tenant))
        .filter(a::Column::Deleted.eq(false))
        .one(conn)
        .await?
        .map(projected)
        .transpose()
}

/// Live accounts of the tenant in id order after `after`.
pub(crate) async fn page(
    conn: &impl ConnectionTrait,
    tenant: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Projected>> {
    let mut q = a::Entity::find().filter(a::Column::TenantId.eq(tenant)).filter(a::Column::Deleted.eq(false));
    if let Some(id) = after {
        q = q.filter(a::Column::AccountId.gt(id));
    }
    q.order_by(a::Column::AccountId, Order::Asc).limit(limit).all(conn).await?.into_iter().map(projected).collect()
}

/// Live accounts after `after` (id order) that at least one of `conditions`
/// may select on `today`: the date conditions pushed down to SQL (indexable
/// columns), so a daily pass reads the candidates, not every account. The
/// caller checks each condition exactly again ([`crate::domain::engine::scheduled`]).
pub(crate) async fn scheduled_page(
    conn: &impl ConnectionTrait,
    tenant: &str,
    conditions: &[ScheduleTrigger],
    today: NaiveDate,
    tz: chrono_tz::Tz,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Projected>> {
    use sea_orm::sea_query::Condition;
    // The instant the tenant's local day `d` starts.
    let start_of = |d: NaiveDate| {
        use chrono::TimeZone as _;
        tz.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN)).earliest().map(|t| t.to_utc())
    };
    let mut any = Condition::any();
    for c in conditions {
        match *c {
            ScheduleTrigger::RenewalWithinDays(n) => {
                let until =
                    today.checked_add_days(chrono::Days::new(u64::from(n.unsigned_abs()))).unwrap_or(NaiveDate::MAX);
                any = any.add(
                    Condition::all().add(a::Column::RenewalDate.gte(today)).add(a::Column::RenewalDate.lte(until)),
                );
            }
            ScheduleTrigger::NoUsageForDays(n) => {
                let last =
                    today.checked_sub_days(chrono::Days::new(u64::from(n.unsigned_abs()))).unwrap_or(NaiveDate::MIN);
                // Never used: counted from the day the account became known.
                let mut never = Condition::all().add(a::Column::LastUsageDay.is_null());
                if let Some(t) = last.succ_opt().and_then(start_of) {
                    never = never.add(a::Column::CreateTime.lt(t));
                }
                any = any.add(Condition::any().add(a::Column::LastUsageDay.lte(last)).add(never));
            }
            ScheduleTrigger::DaysInStage(n) => {
                let last =
                    today.checked_sub_days(chrono::Days::new(u64::from(n.unsigned_abs()))).unwrap_or(NaiveDate::MIN);
                if let Some(t) = last.succ_opt().and_then(start_of) {
                    any = any.add(a::Column::StageSince.lt(t));
                }
            }
            // Plan conditions: the accounts whose active plans' kept
            // columns say so.
            ScheduleTrigger::CheckpointOverdueDays(n) => {
                let by =
                    today.checked_sub_days(chrono::Days::new(u64::from(n.unsigned_abs()))).unwrap_or(NaiveDate::MIN);
                any = any.add(
                    a::Column::AccountId.in_subquery(plans::accounts_alerted(tenant, PlanAlert::ReadingDueBy(by))),
                );
            }
            ScheduleTrigger::CheckpointOffTrack => {
                any = any.add(a::Column::AccountId.in_subquery(plans::accounts_alerted(tenant, PlanAlert::OffTrack)));
            }
            ScheduleTrigger::ProxyWorkOverdue => {
                any = any.add(
                    a::Column::AccountId
                        .in_subquery(plans::accounts_alerted(tenant, PlanAlert::ProxyEndedBefore(today))),
                );
            }
            ScheduleTrigger::PlanStalledDays(n) => {
                let last =
                    today.checked_sub_days(chrono::Days::new(u64::from(n.unsigned_abs()))).unwrap_or(NaiveDate::MIN);
                if let Some(t) = last.succ_opt().and_then(start_of) {
                    any = any.add(
                        a::Column::AccountId
                            .in_subquery(plans::accounts_alerted(tenant, PlanAlert::StageSinceBefore(t))),
                    );
                }
            }
        }
    }
    if conditions.is_empty() {
        return Ok(Vec::new());
    }
    let mut q =
        a::Entity::find().filter(a::Column::TenantId.eq(tenant)).filter(a::Column::Deleted.eq(false)).filter(any);
    if let Some(id) = after {
        q = q.filter(a::Column::AccountId.gt(id));
    }
    q.order_by(a::Column::AccountId, Order::Asc).limit(limit).all(conn).await?.into_iter().map(projected).collect()
}

/// Stores the latest score of an account the projection knows (a score of
/// an unknown account waits for nothing: the account's event carries none).
pub(crate) async fn set_health(conn: &impl ConnectionTrait, tenant: &str, id: Uuid, h: &Health) -> Result<()> {
    let row = a::ActiveModel { account_id: Set(id), health: Set(Some(to_json("health", h)?)), ..Default::default() };
    a::Entity::update_many()
        .set(row)
        .filter(a::Column::TenantId.eq(tenant))
        .filter(a::Column::AccountId.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Moves the day of the last usage forward (never back).
pub(crate) async fn set_last_usage(conn: &impl ConnectionTrait, tenant: &str, id: Uuid, day: NaiveDate) -> Result<()> {
    use sea_orm::sea_query::{Condition, Expr};
    a::Entity::update_many()
        .col_expr(a::Column::LastUsageDay, Expr::value(day))
        .filter(a::Column::TenantId.eq(tenant))
        .filter(a::Column::AccountId.eq(id))
        .filter(Condition::any().add(a::Column::LastUsageDay.is_null()).add(a::Column::LastUsageDay.lt(day)))
        .exec(conn)
        .await?;
    Ok(())
}

pub(crate) async fn upsert_segment(conn: &impl ConnectionTrait, tenant: &str, seg: &Segment) -> Result<()> {
    let forbidden: Vec<&str> = seg.forbidden.iter().map(|m| m.as_str()).collect();
    let row = s::ActiveModel {
        id: Set(seg.id),
        tenant_id: Set(tenant.to_string()),
        display_name: Set(seg.display_name.clone()),
        expression: Set(seg.expression.clone()),
        forbidden_touch_models: Set(to_json("segment", &forbidden)?),
    };
    let on_conflict = sea_orm::sea_query::OnConflict::column(s::Column::Id)
        .update_columns([s::Column::DisplayName, s::Column::Expression, s::Column::ForbiddenTouchModels])
        .to_owned();
    s::Entity::insert(row).on_conflict(on_conflict).exec_without_returning(conn).await?;
    Ok(())
}

pub(crate) async fn delete_segment(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<()> {
    s::Entity::delete_many().filter(s::Column::TenantId.eq(tenant)).filter(s::Column::Id.eq(id)).exec(conn).await?;
    Ok(())
}

/// Every segment of the tenant.
pub(crate) async fn segments(conn: &impl ConnectionTrait, tenant: &str) -> Result<Vec<Segment>> {
    let rows = s::Entity::find().filter(s::Column::TenantId.eq(tenant)).order_by_asc(s::Column::Id).all(conn).await?;
    rows.into_iter()
        .map(|m| {
            let names: Vec<String> = from_json("segment", &m.forbidden_touch_models)?;
            Ok(Segment {
                id: m.id,
                display_name: m.display_name,
                expression: m.expression,
                forbidden: names.iter().filter_map(|n| TouchModel::parse(n)).collect(),
            })
        })
        .collect()
}
