//! Tenants' time zones and fiscal-year start months, from Accounts'
//! TenantSettingsChanged.

use banso_kit::Result;
use sea_orm::{
    ConnectionTrait,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};

use super::{exec, get, insert, one, schema::Tenants as T};

/// Keeps what Health reads of a tenant's settings: its time zone and the
/// month its fiscal year starts in (1 when Accounts sends none in range).
pub(crate) async fn set_settings(
    conn: &impl ConnectionTrait,
    tenant: &str,
    tz: &str,
    fy_start_month: i32,
) -> Result<()> {
    let month = if (1..=12).contains(&fy_start_month) { fy_start_month } else { 1 };
    let row =
        [(T::TenantId, Expr::val(tenant)), (T::TimeZone, Expr::val(tz)), (T::FiscalYearStartMonth, Expr::val(month))];
    let Some(mut q) = insert(T::Table, [row])? else {
        return Ok(());
    };
    q.on_conflict(OnConflict::column(T::TenantId).update_columns([T::TimeZone, T::FiscalYearStartMonth]).to_owned());
    exec(conn, &q).await?;
    Ok(())
}

/// The month the tenant's fiscal year starts in (January until Accounts
/// says otherwise).
pub(crate) async fn fiscal_year_start_month(conn: &impl ConnectionTrait, tenant: &str) -> Result<u32> {
    let q = Query::select()
        .column(T::FiscalYearStartMonth)
        .from(T::Table)
        .and_where(Expr::col(T::TenantId).eq(tenant))
        .to_owned();
    Ok(match one(conn, &q).await? {
        Some(r) => {
            u32::try_from(get::<i32>(&r, T::FiscalYearStartMonth)?).ok().filter(|m| (1..=12).contains(m)).unwrap_or(1)
        }
        None => 1,
    })
}

/// The tenant's time zone (UTC until Accounts says otherwise, or if what it
/// said is not a zone this build knows).
pub(crate) async fn time_zone(conn: &impl ConnectionTrait, tenant: &str) -> Result<chrono_tz::Tz> {
    let q = Query::select().column(T::TimeZone).from(T::Table).and_where(Expr::col(T::TenantId).eq(tenant)).to_owned();
    Ok(match one(conn, &q).await? {
        Some(r) => get::<String>(&r, T::TimeZone)?.parse().unwrap_or(chrono_tz::UTC),
        None => chrono_tz::UTC,
    })
}
