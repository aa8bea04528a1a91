//! Each account's latest churn probability and bucket.

use std::collections::HashMap;

use banso_kit::{Result, wire};
use sea_orm::{
    ConnectionTrait,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

use super::{CHUNK, all, corrupt, exec, get, insert, schema::AccountChurnRisk as R};
use crate::domain::churn_model::RiskBucket;

/// The tenant's stored buckets, by account.
pub(crate) async fn buckets(conn: &impl ConnectionTrait, tenant: &str) -> Result<HashMap<Uuid, RiskBucket>> {
    let q = Query::select()
        .columns([R::AccountId, R::Bucket])
        .from(R::Table)
        .and_where(Expr::col(R::TenantId).eq(tenant))
        .to_owned();
    all(conn, &q)
        .await?
        .iter()
        .map(|r| {
            let b: String = get(r, R::Bucket)?;
            Ok((get(r, R::AccountId)?, RiskBucket::parse(&b).ok_or_else(|| corrupt("churn risk bucket", &b))?))
        })
        .collect()
}

/// Stores each account's probability and bucket, as model `version` scored it.
pub(crate) async fn upsert(
    conn: &impl ConnectionTrait,
    tenant: &str,
    version: i64,
    rows: &[(Uuid, f64, RiskBucket)],
) -> Result<()> {
    let now = wire::now();
    for chunk in rows.chunks(CHUNK) {
        let values = chunk.iter().map(|(a, p, b)| {
            [
                (R::TenantId, Expr::val(tenant)),
                (R::AccountId, Expr::val(*a)),
                (R::Probability, Expr::val(*p)),
                (R::Bucket, Expr::val(b.as_str())),
                (R::UpdateTime, Expr::val(now)),
                (R::ModelVersion, Expr::val(version)),
            ]
        });
        let Some(mut q) = insert(R::Table, values)? else { continue };
        q.on_conflict(
            OnConflict::columns([R::TenantId, R::AccountId])
                .update_columns([R::Probability, R::Bucket, R::UpdateTime, R::ModelVersion])
                .to_owned(),
        );
        exec(conn, &q).await?;
    }
    Ok(())
}
