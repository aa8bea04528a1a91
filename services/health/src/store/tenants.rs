//! Tenants' time zones, from Accounts' TenantSettingsChanged.

use banso_kit::Result;
use sea_orm::{
    ConnectionTrait,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};

use super::{exec, get, insert, one, schema::Tenants as T};

pub(crate) async fn set_time_zone(conn: &impl ConnectionTrait, tenant: &str, tz: &str) -> Result<()> {
    let Some(mut q) = insert(T::Table, [[(T::TenantId, Expr::val(tenant)), (T::TimeZone, Expr::val(tz))]])? else {
        return Ok(());
    };
    q.on_conflict(OnConflict::column(T::TenantId).update_column(T::TimeZone).to_owned());
    exec(conn, &q).await?;
    Ok(())
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
