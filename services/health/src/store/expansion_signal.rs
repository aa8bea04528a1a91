//! Each account's latest expansion probability and bucket, per target.

use std::collections::HashMap;

use banso_kit::{Result, wire};
use sea_orm::{
    ConnectionTrait,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

use super::{CHUNK, all, corrupt, exec, get, insert, schema::AccountExpansionSignal as R};
use crate::domain::churn_model::{RiskBucket, Target};

/// The tenant's stored buckets of `target`, by account.
pub(crate) async fn buckets(
    conn: &impl ConnectionTrait,
    tenant: &str,
    target: Target,
) -> Result<HashMap<Uuid, RiskBucket>> {
    let q = Query::select()
        .columns([R::AccountId, R::Bucket])
        .from(R::Table)
        .and_where(Expr::col(R::TenantId).eq(tenant))
        .and_where(Expr::col(R::Target).eq(target.as_str()))
        .to_owned();
    all(conn, &q)
        .await?
        .iter()
        .map(|r| {
            let b: String = get(r, R::Bucket)?;
            Ok((get(r, R::AccountId)?, RiskBucket::parse(&b).ok_or_else(|| corrupt("expansion bucket", &b))?))
        })
        .collect()
}

/// Stores each account's probability and bucket of `target`, as model
/// `version` scored it.
pub(crate) async fn upsert(
    conn: &impl ConnectionTrait,
    tenant: &str,
    target: Target,
    version: i64,
    rows: &[(Uuid, f64, RiskBucket)],
) -> Result<()> {
    let now = wire::now();
    for chunk in rows.chunks(CHUNK) {
        let values = chunk.iter().map(|(a, p, b)| {
            [
                (R::TenantId, Expr::val(tenant)),
                (R::AccountId, Expr::val(*a)),
                (R::Target, Expr::val(target.as_str())),
                (R::Probability, Expr::val(*p)),
                (R::Bucket, Expr::val(b.as_str())),
                (R::ModelVersion, Expr::val(version)),
                (R::UpdateTime, Expr::val(now)),
            ]
        });
        let Some(mut q) = insert(R::Table, values)? else { continue };
        q.on_conflict(
            OnConflict::columns([R::TenantId, R::AccountId, R::Target])
                .update_columns([R::Probability, R::Bucket, R::ModelVersion, R::UpdateTime])
                .to_owned(),
        );
        exec(conn, &q).await?;
    }
    Ok(())
}
