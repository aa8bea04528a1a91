//! What CS = CO + CX reads: success plans' attainment per checkpoint (kept
//! from Playbooks' CheckpointRecorded), CES and outcome answers, and the
//! feedback items that speak to a CX dimension.

use banso_kit::Result;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::OnConflict,
};
use uuid::Uuid;

use super::{
    corrupt,
    entities::{answer as a, item as i, plan_attainment as pa},
};
use crate::domain::{
    survey::Kind,
    voice::{CxDimension, JourneyPhase},
};

/// A checkpoint's attainment (0–100) as of `at`: kept when it is the
/// checkpoint's latest (a reading recorded earlier than the one kept
/// changes nothing).
pub(crate) async fn record_attainment(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account: Uuid,
    plan: Uuid,
    checkpoint: Uuid,
    attainment: f64,
    at: DateTime<Utc>,
) -> Result<()> {
    let checkpoint = checkpoint.to_string();
    let kept = pa::Entity::find()
        .filter(pa::Column::TenantId.eq(tenant))
        .filter(pa::Column::AccountId.eq(account))
        .filter(pa::Column::PlanId.eq(plan))
        .filter(pa::Column::Checkpoint.eq(checkpoint.as_str()))
        .one(conn)
        .await?;
    if kept.is_some_and(|k| k.record_time > at) {
        return Ok(());
    }
    let row = pa::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        account_id: Set(account),
        plan_id: Set(plan),
        checkpoint: Set(checkpoint),
        attainment: Set(attainment),
        record_time: Set(at),
    };
    pa::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                pa::Column::TenantId,
                pa::Column::AccountId,
                pa::Column::PlanId,
                pa::Column::Checkpoint,
            ])
            .update_columns([pa::Column::Attainment, pa::Column::RecordTime])
            .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Each checkpoint's latest attainment recorded in `[from, to)`, by account.
pub(crate) async fn attainments(
    conn: &impl ConnectionTrait,
    tenant: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(Uuid, f64)>> {
    Ok(pa::Entity::find()
        .select_only()
        .column(pa::Column::AccountId)
        .column(pa::Column::Attainment)
        .filter(pa::Column::TenantId.eq(tenant))
        .filter(pa::Column::RecordTime.gte(from))
        .filter(pa::Column::RecordTime.lt(to))
        .into_tuple()
        .all(conn)
        .await?)
}

/// The scores of CES and outcome answers given in `[from, to)`: account,
/// kind, score.
pub(crate) async fn scores(
    conn: &impl ConnectionTrait,
    tenant: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(Uuid, Kind, i32)>> {
    let rows: Vec<(Uuid, String, i32)> = a::Entity::find()
        .select_only()
        .column(a::Column::AccountId)
        .column(a::Column::Kind)
        .column(a::Column::Score)
        .filter(a::Column::TenantId.eq(tenant))
        .filter(a::Column::Kind.is_in([Kind::Ces.as_str(), Kind::Outcome.as_str()]))
        .filter(a::Column::AnswerTime.gte(from))
        .filter(a::Column::AnswerTime.lt(to))
        .filter(a::Column::Score.is_not_null())
        .into_tuple()
        .all(conn)
        .await?;
    rows.into_iter()
        .map(|(account, kind, score)| {
            Ok((account, Kind::parse(&kind).ok_or_else(|| corrupt("survey kind", &kind))?, score))
        })
        .collect()
}

/// An item that speaks to a CX dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CxItem {
    pub account_id: Uuid,
    pub dimension: CxDimension,
    pub phase: Option<JourneyPhase>,
    pub severity: i32,
}

/// The items mentioned in `[from, to)` (when the customer said them) that
/// have a CX dimension.
pub(crate) async fn cx_items(
    conn: &impl ConnectionTrait,
    tenant: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<CxItem>> {
    let rows: Vec<(Uuid, Option<String>, Option<String>, i32)> = i::Entity::find()
        .select_only()
        .column(i::Column::AccountId)
        .column(i::Column::CxDimension)
        .column(i::Column::JourneyPhase)
        .column(i::Column::Severity)
        .filter(i::Column::TenantId.eq(tenant))
        .filter(i::Column::MentionTime.gte(from))
        .filter(i::Column::MentionTime.lt(to))
        .filter(i::Column::CxDimension.is_not_null())
        .into_tuple()
        .all(conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (account_id, dimension, phase, severity) in rows {
        let Some(d) = dimension else { continue };
        out.push(CxItem {
            account_id,
            dimension: CxDimension::parse(&d).ok_or_else(|| corrupt("cx dimension", &d))?,
            phase: phase.map(|p| JourneyPhase::parse(&p).ok_or_else(|| corrupt("journey phase", &p))).transpose()?,
            severity,
        });
    }
    Ok(out)
}
