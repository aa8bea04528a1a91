//! Tenants: their time zone (from Accounts' events), their playbook
//! settings, and the lease of their daily schedule.

use banso_kit::Result;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Condition, Expr, OnConflict},
};

use super::entities::{playbook as p, tenant as t};

/// A tenant's settings, with defaults for a tenant never seen.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    pub time_zone: String,
    /// "HH:MM".
    pub schedule_time: String,
    pub fatigue_max_messages: i32,
    pub fatigue_window_days: i32,
    pub last_schedule_day: Option<NaiveDate>,
    /// A review's execution is sufficient from this share done, in percent.
    pub review_execution_threshold_percent: i32,
    pub version: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            time_zone: "UTC".into(),
            schedule_time: "06:00".into(),
            fatigue_max_messages: 3,
            fatigue_window_days: 7,
            last_schedule_day: None,
            review_execution_threshold_percent: crate::domain::plan::DEFAULT_EXECUTION_THRESHOLD_PERCENT,
            version: 0,
        }
    }
}

impl Settings {
    pub(crate) fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }
}

pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str) -> Result<Settings> {
    Ok(t::Entity::find_by_id(tenant.to_string())
        .one(conn)
        .await?
        .map(|m| Settings {
            time_zone: m.time_zone,
            schedule_time: m.schedule_time,
            fatigue_max_messages: m.fatigue_max_messages,
            fatigue_window_days: m.fatigue_window_days,
            last_schedule_day: m.last_schedule_day,
            review_execution_threshold_percent: m.review_execution_threshold_percent,
            version: m.version,
        })
        .unwrap_or_default())
}

/// Makes the tenant's row if it has none (with the defaults).
async fn ensure(conn: &impl ConnectionTrait, tenant: &str) -> Result<()> {
    let d = Settings::default();
    let row = t::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        time_zone: Set(d.time_zone),
        schedule_time: Set(d.schedule_time),
        fatigue_max_messages: Set(d.fatigue_max_messages),
        fatigue_window_days: Set(d.fatigue_window_days),
        last_schedule_day: Set(None),
        review_execution_threshold_percent: Set(d.review_execution_threshold_percent),
        schedule_lease_owner: Set(String::new()),
        schedule_lease_until: Set(None),
        version: Set(1),
    };
    t::Entity::insert(row)
        .on_conflict(OnConflict::column(t::Column::TenantId).do_nothing().to_owned())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub(crate) async fn set_time_zone(conn: &impl ConnectionTrait, tenant: &str, tz: &str) -> Result<()> {
    ensure(conn, tenant).await?;
    t::Entity::update_many()
        .col_expr(t::Column::TimeZone, Expr::value(tz))
        .filter(t::Column::TenantId.eq(tenant))
        .exec(conn)
        .await?;
    Ok(())
}

/// Writes `next` if the stored settings are still at `current.version`.
pub(crate) async fn update(
    conn: &impl ConnectionTrait,
    tenant: &str,
    current: &Settings,
    next: &Settings,
) -> Result<bool> {
    ensure(conn, tenant).await?;
    let stored = current.version.max(1);
    let res = t::Entity::update_many()
        .col_expr(t::Column::ScheduleTime, Expr::value(next.schedule_time.clone()))
        .col_expr(t::Column::FatigueMaxMessages, Expr::value(next.fatigue_max_messages))
        .col_expr(t::Column::FatigueWindowDays, Expr::value(next.fatigue_window_days))
        .col_expr(t::Column::ReviewExecutionThresholdPercent, Expr::value(next.review_execution_threshold_percent))
        .col_expr(t::Column::Version, Expr::value(stored + 1))
        .filter(t::Column::TenantId.eq(tenant))
        .filter(t::Column::Version.eq(stored))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Tenants with a live schedule playbook.
pub(crate) async fn with_schedules(conn: &impl ConnectionTrait) -> Result<Vec<String>> {
    Ok(p::Entity::find()
        .select_only()
        .column(p::Column::TenantId)
        .distinct()
        .filter(p::Column::LiveTrigger.eq("schedule"))
        .into_tuple::<String>()
        .all(conn)
        .await?)
}

/// Takes the lease of the tenant's schedule for `today` if it has not run
/// today and no other replica holds an unexpired lease; returns whether it did.
pub(crate) async fn claim_schedule(
    conn: &impl ConnectionTrait,
    tenant: &str,
    today: NaiveDate,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool> {
    ensure(conn, tenant).await?;
    let res = t::Entity::update_many()
        .col_expr(t::Column::ScheduleLeaseOwner, Expr::value(owner))
        .col_expr(t::Column::ScheduleLeaseUntil, Expr::value(until))
        .filter(t::Column::TenantId.eq(tenant))
        .filter(Condition::any().add(t::Column::LastScheduleDay.is_null()).add(t::Column::LastScheduleDay.lt(today)))
        .filter(
            Condition::any()
                .add(t::Column::ScheduleLeaseUntil.is_null())
                .add(t::Column::ScheduleLeaseUntil.lt(now))
                .add(t::Column::ScheduleLeaseOwner.eq(owner)),
        )
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Marks the tenant's schedule done for `today` and frees the lease.
pub(crate) async fn finish_schedule(
    conn: &impl ConnectionTrait,
    tenant: &str,
    today: NaiveDate,
    owner: &str,
) -> Result<()> {
    t::Entity::update_many()
        .col_expr(t::Column::LastScheduleDay, Expr::value(today))
        .col_expr(t::Column::ScheduleLeaseOwner, Expr::value(""))
        .col_expr(t::Column::ScheduleLeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(t::Column::TenantId.eq(tenant))
        .filter(t::Column::ScheduleLeaseOwner.eq(owner))
        .exec(conn)
        .await?;
    Ok(())
}
