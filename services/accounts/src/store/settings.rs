//! Each tenant's settings: one row once first changed, the defaults before.

use banso_kit::Result;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::{corrupt, entities::tenant_settings};
use crate::domain::TenantSettings;

/// The tenant's settings, or the defaults (version 0) if never changed.
pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str) -> Result<TenantSettings> {
    let Some(m) = tenant_settings::Entity::find_by_id(tenant.to_owned()).one(conn).await? else {
        return Ok(TenantSettings::default());
    };
    let month = m.fiscal_year_start_month;
    Ok(TenantSettings {
        time_zone: m.time_zone,
        fiscal_year_start_month: u32::try_from(month)
            .ok()
            .filter(|m| (1..=12).contains(m))
            .ok_or_else(|| corrupt("fiscal_year_start_month", month))?,
        default_currency_code: m.default_currency_code,
        update_time: Some(m.update_time),
        version: m.version,
    })
}

fn active(tenant: &str, s: &TenantSettings) -> tenant_settings::ActiveModel {
    tenant_settings::ActiveModel {
        tenant_id: Set(tenant.to_owned()),
        time_zone: Set(s.time_zone.clone()),
        fiscal_year_start_month: Set(i32::try_from(s.fiscal_year_start_month).unwrap_or(1)),
        default_currency_code: Set(s.default_currency_code.clone()),
        update_time: Set(s.update_time.unwrap_or_else(banso_kit::wire::now)),
        version: Set(s.version),
    }
}

/// Writes `next` over `current` if the stored version is still `current`'s;
/// returns whether it was. The first write of a tenant (version 0: nothing
/// stored yet) is an insert, and one that loses to another first write
/// (the key is taken) lost the race like an update that finds a newer
/// version.
pub(crate) async fn write(
    conn: &impl ConnectionTrait,
    tenant: &str,
    current: &TenantSettings,
    next: &TenantSettings,
) -> Result<bool> {
    if current.version == 0 {
        return match tenant_settings::Entity::insert(active(tenant, next)).exec_without_returning(conn).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => Ok(false),
            Err(e) => Err(e.into()),
        };
    }
    let res = tenant_settings::Entity::update_many()
        .set(active(tenant, next))
        .filter(tenant_settings::Column::TenantId.eq(tenant))
        .filter(tenant_settings::Column::Version.eq(current.version))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}
