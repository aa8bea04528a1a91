//! The tenant's calendar (from Accounts' settings) and its feedback settings.

use std::collections::BTreeMap;

use banso_kit::Result;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, sea_query::OnConflict};

use super::{entities::tenant as t, from_json, to_json};
use crate::domain::{results::Calendar, survey::Kind};

/// What the service keeps of a tenant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tenant {
    pub time_zone: String,
    pub fiscal_year_start_month: u32,
    /// Days per kind; a kind not here throttles the default.
    pub throttles: BTreeMap<Kind, i32>,
}

impl Default for Tenant {
    fn default() -> Self {
        Tenant { time_zone: "UTC".into(), fiscal_year_start_month: 1, throttles: BTreeMap::new() }
    }
}

impl Tenant {
    pub(crate) fn calendar(&self) -> Calendar {
        Calendar {
            tz: self.time_zone.parse().unwrap_or(chrono_tz::UTC),
            fy_start_month: self.fiscal_year_start_month.clamp(1, 12),
        }
    }

    pub(crate) fn throttle_days(&self, kind: Kind) -> i32 {
        self.throttles.get(&kind).copied().unwrap_or(crate::domain::campaign::DEFAULT_THROTTLE_DAYS)
    }
}

pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str) -> Result<Tenant> {
    let Some(m) = t::Entity::find_by_id(tenant.to_string()).one(conn).await? else { return Ok(Tenant::default()) };
    Ok(Tenant {
        time_zone: m.time_zone,
        fiscal_year_start_month: u32::try_from(m.fiscal_year_start_month).unwrap_or(1),
        throttles: from_json("throttles", &m.throttles)?,
    })
}

async fn put(conn: &impl ConnectionTrait, tenant: &str, x: &Tenant) -> Result<()> {
    let row = t::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        time_zone: Set(x.time_zone.clone()),
        fiscal_year_start_month: Set(i32::try_from(x.fiscal_year_start_month).unwrap_or(1)),
        throttles: Set(to_json("throttles", &x.throttles)?),
        voice_settings: Set("{}".into()),
        voice_generation: Set(0),
    };
    t::Entity::insert(row)
        .on_conflict(
            OnConflict::column(t::Column::TenantId)
                .update_columns([t::Column::TimeZone, t::Column::FiscalYearStartMonth, t::Column::Throttles])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The calendar Accounts announced, keeping the feedback settings.
pub(crate) async fn set_calendar(
    conn: &impl ConnectionTrait,
    tenant: &str,
    tz: &str,
    fy_start_month: u32,
) -> Result<()> {
    let mut x = get(conn, tenant).await?;
    x.time_zone = tz.to_string();
    x.fiscal_year_start_month = fy_start_month;
    put(conn, tenant, &x).await
}

/// Sets the throttle of the kinds given, keeping the others.
pub(crate) async fn set_throttles(
    conn: &impl ConnectionTrait,
    tenant: &str,
    days: &BTreeMap<Kind, i32>,
) -> Result<Tenant> {
    // A write first: on SQLite a transaction that reads before it writes
    // may not get the write lock.
    let row = t::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        time_zone: Set("UTC".into()),
        fiscal_year_start_month: Set(1),
        throttles: Set("{}".into()),
        voice_settings: Set("{}".into()),
        voice_generation: Set(0),
    };
    t::Entity::insert(row).on_conflict_do_nothing_on([t::Column::TenantId]).exec(conn).await?;
    let mut x = get(conn, tenant).await?;
    x.throttles.extend(days.iter().map(|(k, d)| (*k, *d)));
    put(conn, tenant, &x).await?;
    Ok(x)
}

/// The tenant's voice settings (defaults when none were set).
pub(crate) async fn voice_settings(
    conn: &impl ConnectionTrait,
    tenant: &str,
) -> Result<crate::domain::voice::VoiceSettings> {
    let Some(m) = t::Entity::find_by_id(tenant.to_string()).one(conn).await? else { return Ok(Default::default()) };
    from_json("voice settings", &m.voice_settings)
}

/// The tenant's voice settings and its voice generation (see
/// [`super::voice::generation`]), one read: what a suggestion needs of the
/// tenant.
pub(crate) async fn voice_settings_and_generation(
    conn: &impl ConnectionTrait,
    tenant: &str,
) -> Result<(crate::domain::voice::VoiceSettings, i64)> {
    let Some(m) = t::Entity::find_by_id(tenant.to_string()).one(conn).await? else {
        return Ok((Default::default(), 0));
    };
    Ok((from_json("voice settings", &m.voice_settings)?, m.voice_generation))
}

/// Writes the tenant's voice settings (its first statement is a write).
pub(crate) async fn set_voice_settings(
    conn: &impl ConnectionTrait,
    tenant: &str,
    x: &crate::domain::voice::VoiceSettings,
) -> Result<()> {
    let json = to_json("voice settings", x)?;
    let row = t::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        time_zone: Set("UTC".into()),
        fiscal_year_start_month: Set(1),
        throttles: Set("{}".into()),
        voice_settings: Set(json),
        voice_generation: Set(0),
    };
    t::Entity::insert(row)
        .on_conflict(OnConflict::column(t::Column::TenantId).update_columns([t::Column::VoiceSettings]).to_owned())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}
