//! Each account's latest churn probability and bucket.

use std::collections::HashMap;

use banso_kit::{Result, wire};
use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

use super::{CHUNK, all, corrupt, exec, get, insert, json_text, one, schema::AccountChurnRisk as R};
use crate::domain::churn_model::{Held, Prediction, RiskBucket, Scored, Target};

/// The tenant's stored probabilities, buckets and model versions, by
/// account: of `accounts` only, or of all.
pub(crate) async fn held(
    conn: &impl ConnectionTrait,
    tenant: &str,
    accounts: Option<&[Uuid]>,
) -> Result<HashMap<Uuid, Held>> {
    let base = Query::select().from(R::Table).and_where(Expr::col(R::TenantId).eq(tenant)).to_owned();
    super::held_by_account(conn, base, [R::AccountId, R::Bucket, R::Probability, R::ModelVersion], accounts).await
}

/// Stores each account's probability and bucket, as model `version` scored it.
pub(crate) async fn upsert(conn: &impl ConnectionTrait, tenant: &str, version: i64, rows: &[Scored]) -> Result<()> {
    let now = wire::now();
    for chunk in rows.chunks(CHUNK) {
        let values = chunk.iter().map(|(a, p, b, reasons)| -> Result<_> {
            let reasons = json_text(reasons)?;
            Ok([
                (R::TenantId, Expr::val(tenant)),
                (R::AccountId, Expr::val(*a)),
                (R::Probability, Expr::val(*p)),
                (R::Bucket, Expr::val(b.as_str())),
                (R::UpdateTime, Expr::val(now)),
                (R::ModelVersion, Expr::val(version)),
                (R::Reasons, Expr::val(reasons)),
            ])
        });
        let values: Vec<_> = values.collect::<Result<_>>()?;
        let Some(mut q) = insert(R::Table, values)? else { continue };
        q.on_conflict(
            OnConflict::columns([R::TenantId, R::AccountId])
                .update_columns([R::Probability, R::Bucket, R::UpdateTime, R::ModelVersion, R::Reasons])
                // An older model never overwrites a newer one's (the live
                // scorer may hold the model a training just replaced).
                .action_and_where(
                    Expr::col((R::Table, R::ModelVersion)).lte(Expr::col((Alias::new("excluded"), R::ModelVersion))),
                )
                .to_owned(),
        );
        exec(conn, &q).await?;
    }
    Ok(())
}

/// An account's stored churn probability, if a model scored it.
pub(crate) async fn of_account(conn: &impl ConnectionTrait, tenant: &str, account: Uuid) -> Result<Option<Prediction>> {
    let q = Query::select()
        .columns([R::Probability, R::Bucket, R::ModelVersion, R::Reasons, R::UpdateTime])
        .from(R::Table)
        .and_where(Expr::col(R::TenantId).eq(tenant))
        .and_where(Expr::col(R::AccountId).eq(account))
        .to_owned();
    let Some(r) = one(conn, &q).await? else { return Ok(None) };
    let b: String = get(&r, R::Bucket)?;
    let reasons: String = get(&r, R::Reasons)?;
    Ok(Some(Prediction {
        target: Target::Churn,
        probability: get(&r, R::Probability)?,
        bucket: RiskBucket::parse(&b).ok_or_else(|| corrupt("churn risk bucket", &b))?,
        model_version: get(&r, R::ModelVersion)?,
        reasons: serde_json::from_str(&reasons).map_err(|e| corrupt("churn reasons", e))?,
        update_time: get(&r, R::UpdateTime)?,
    }))
}

/// The tenant's stored churn probabilities, by account.
pub(crate) async fn probabilities(conn: &impl ConnectionTrait, tenant: &str) -> Result<HashMap<Uuid, f64>> {
    let q = Query::select()
        .columns([R::AccountId, R::Probability])
        .from(R::Table)
        .and_where(Expr::col(R::TenantId).eq(tenant))
        .to_owned();
    all(conn, &q).await?.iter().map(|r| Ok((get(r, R::AccountId)?, get(r, R::Probability)?))).collect()
}
