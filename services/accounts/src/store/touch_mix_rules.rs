//! Each tenant's touch-mix rules: one row once first set, none before.

use banso_kit::{Error, Result};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait as _},
};
use serde::{Deserialize, Serialize};

use super::{corrupt, entities::touch_mix_rules as r};
use crate::domain::{
    TouchShare,
    touch_rules::{TouchMixRule, TouchMixRules},
};

/// A rule as stored in the JSON array.
#[derive(Serialize, Deserialize)]
struct Stored {
    name: String,
    condition: String,
    touch_mix: Vec<TouchShare>,
}

/// The tenant's rules, or none (version 0) if never set.
pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str) -> Result<TouchMixRules> {
    let Some(m) = r::Entity::find_by_id(tenant.to_owned()).one(conn).await? else {
        return Ok(TouchMixRules::default());
    };
    let stored: Vec<Stored> = serde_json::from_value(m.rules).map_err(|e| corrupt("touch_mix_rules", e))?;
    Ok(TouchMixRules {
        rules: stored
            .into_iter()
            .map(|s| TouchMixRule { name: s.name, condition: s.condition, touch_mix: s.touch_mix })
            .collect(),
        update_time: Some(m.update_time),
        version: m.version,
    })
}

fn active(tenant: &str, rules: &TouchMixRules) -> Result<r::ActiveModel> {
    let stored: Vec<Stored> = rules
        .rules
        .iter()
        .map(|x| Stored { name: x.name.clone(), condition: x.condition.clone(), touch_mix: x.touch_mix.clone() })
        .collect();
    Ok(r::ActiveModel {
        tenant_id: Set(tenant.to_owned()),
        rules: Set(serde_json::to_value(&stored).map_err(Error::internal)?),
        update_time: Set(rules.update_time.unwrap_or_else(banso_kit::wire::now)),
        version: Set(rules.version),
        // Moved only by `mark_applied`.
        applied_version: sea_orm::ActiveValue::NotSet,
    })
}

/// Writes `next` over `current` if the stored version is still `current`'s;
/// returns whether it was. The first write of a tenant is an insert, and
/// one that loses to another first write lost the race (as settings).
pub(crate) async fn write(
    conn: &impl ConnectionTrait,
    tenant: &str,
    current: &TouchMixRules,
    next: &TouchMixRules,
) -> Result<bool> {
    if current.version == 0 {
        return match r::Entity::insert(active(tenant, next)?).exec_without_returning(conn).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => Ok(false),
            Err(e) => Err(e.into()),
        };
    }
    let res = r::Entity::update_many()
        .set(active(tenant, next)?)
        .filter(r::Column::TenantId.eq(tenant))
        .filter(r::Column::Version.eq(current.version))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Tenants whose rules changed since they were last applied to every
/// account (a re-apply cut short, or a crash in the middle of one).
pub(crate) async fn behind(conn: &impl ConnectionTrait, limit: u64) -> Result<Vec<String>> {
    Ok(r::Entity::find()
        .select_only()
        .column(r::Column::TenantId)
        .filter(Expr::col(r::Column::AppliedVersion).lt(Expr::col(r::Column::Version)))
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?)
}

/// Records that `version` of the tenant's rules governs every account,
/// unless the rules changed since.
pub(crate) async fn mark_applied(conn: &impl ConnectionTrait, tenant: &str, version: i64) -> Result<()> {
    r::Entity::update_many()
        .col_expr(r::Column::AppliedVersion, Expr::value(version))
        .filter(r::Column::TenantId.eq(tenant))
        .filter(r::Column::Version.eq(version))
        .exec(conn)
        .await?;
    Ok(())
}
