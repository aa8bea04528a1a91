//! Each account's latest expansion probability and bucket, per target.

use std::collections::HashMap;

use banso_kit::{Result, wire};
use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

use super::{CHUNK, all, corrupt, exec, get, insert, json_text, schema::AccountExpansionSignal as R};
use crate::domain::churn_model::{Held, Prediction, RiskBucket, Scored, Target};

/// The tenant's stored probabilities, buckets and model versions of
/// `target`, by account: of `accounts` only, or of all.
pub(crate) async fn held(
    conn: &impl ConnectionTrait,
    tenant: &str,
    target: Target,
    accounts: Option<&[Uuid]>,
) -> Result<HashMap<Uuid, Held>> {
    let base = Query::select()
        .from(R::Table)
        .and_where(Expr::col(R::TenantId).eq(tenant))
        .and_where(Expr::col(R::Target).eq(target.as_str()))
        .to_owned();
    super::held_by_account(conn, base, [R::AccountId, R::Bucket, R::Probability, R::ModelVersion], accounts).await
}

/// Stores each account's probability and bucket of `target`, as model
/// `version` scored it.
pub(crate) async fn upsert(
    conn: &impl ConnectionTrait,
    tenant: &str,
    target: Target,
    version: i64,
    rows: &[Scored],
) -> Result<()> {
    let now = wire::now();
    for chunk in rows.chunks(CHUNK) {
        let values = chunk.iter().map(|(a, p, b, reasons)| -> Result<_> {
            let reasons = json_text(reasons)?;
            Ok([
                (R::TenantId, Expr::val(tenant)),
                (R::AccountId, Expr::val(*a)),
                (R::Target, Expr::val(target.as_str())),
                (R::Probability, Expr::val(*p)),
                (R::Bucket, Expr::val(b.as_str())),
                (R::ModelVersion, Expr::val(version)),
                (R::Reasons, Expr::val(reasons)),
                (R::UpdateTime, Expr::val(now)),
            ])
        });
        let values: Vec<_> = values.collect::<Result<_>>()?;
        let Some(mut q) = insert(R::Table, values)? else { continue };
        q.on_conflict(
            OnConflict::columns([R::TenantId, R::AccountId, R::Target])
                .update_columns([R::Probability, R::Bucket, R::ModelVersion, R::Reasons, R::UpdateTime])
                // As for churn: an older model never overwrites a newer one's.
                .action_and_where(
                    Expr::col((R::Table, R::ModelVersion)).lte(Expr::col((Alias::new("excluded"), R::ModelVersion))),
                )
                .to_owned(),
        );
        exec(conn, &q).await?;
    }
    Ok(())
}

/// An account's stored probabilities, one per target it was scored for.
pub(crate) async fn of_account(conn: &impl ConnectionTrait, tenant: &str, account: Uuid) -> Result<Vec<Prediction>> {
    let q = Query::select()
        .columns([R::Target, R::Probability, R::Bucket, R::ModelVersion, R::Reasons, R::UpdateTime])
        .from(R::Table)
        .and_where(Expr::col(R::TenantId).eq(tenant))
        .and_where(Expr::col(R::AccountId).eq(account))
        .order_by(R::Target, sea_orm::sea_query::Order::Asc)
        .to_owned();
    all(conn, &q)
        .await?
        .iter()
        .map(|r| {
            let t: String = get(r, R::Target)?;
            let target = [Target::Expansion, Target::Upsell, Target::CrossSell]
                .into_iter()
                .find(|x| x.as_str() == t)
                .ok_or_else(|| corrupt("expansion target", &t))?;
            let b: String = get(r, R::Bucket)?;
            let reasons: String = get(r, R::Reasons)?;
            Ok(Prediction {
                target,
                probability: get(r, R::Probability)?,
                bucket: RiskBucket::parse(&b).ok_or_else(|| corrupt("expansion bucket", &b))?,
                model_version: get(r, R::ModelVersion)?,
                reasons: serde_json::from_str(&reasons).map_err(|e| corrupt("expansion reasons", e))?,
                update_time: get(r, R::UpdateTime)?,
            })
        })
        .collect()
}
