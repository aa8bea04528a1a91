//! Every churn model a tenant trained, by version: the fit and its figures
//! kept whole as JSON.

use banso_kit::{Error, Result};
use sea_orm::{
    ConnectionTrait,
    sea_query::{Expr, ExprTrait, Func, Order, Query},
};

use super::{all, corrupt, exec, get, insert, json_text, one, schema::ChurnModels as M};
use crate::domain::churn_model::Trained;

fn from_row(r: &sea_orm::QueryResult) -> Result<Trained> {
    let text: String = get(r, M::Model)?;
    let mut t: Trained = serde_json::from_str(&text).map_err(|e| corrupt("churn model", e))?;
    t.version = get(r, M::Version)?;
    Ok(t)
}

/// Keeps `t` as the tenant's next version, which it returns. In the
/// training's transaction: two trainings at once conflict on the key
/// rather than share a version.
pub(crate) async fn insert_next(conn: &impl ConnectionTrait, tenant: &str, t: &Trained) -> Result<i64> {
    let q = Query::select()
        .expr_as(Func::max(Expr::col(M::Version)), M::Version)
        .from(M::Table)
        .and_where(Expr::col(M::TenantId).eq(tenant))
        .to_owned();
    let last: Option<i64> = match one(conn, &q).await? {
        Some(r) => get(&r, M::Version)?,
        None => None,
    };
    let version = last.unwrap_or(0) + 1;
    let row = [
        (M::TenantId, Expr::val(tenant)),
        (M::Version, Expr::val(version)),
        (M::Model, Expr::val(json_text(&Trained { version, ..t.clone() })?)),
        (M::CreateTime, Expr::val(t.train_time)),
        (M::Target, Expr::val(t.target.as_str())),
    ];
    let q = insert(M::Table, [row])?.ok_or_else(|| Error::internal(anyhow::anyhow!("no row to insert")))?;
    exec(conn, &q).await?;
    Ok(version)
}

/// A version of the tenant's models, the latest without one; NOT_FOUND
/// for a version it does not have (another tenant's included).
pub(crate) async fn get_version(conn: &impl ConnectionTrait, tenant: &str, version: Option<i64>) -> Result<Trained> {
    let mut q = Query::select();
    q.columns([M::Version, M::Model]).from(M::Table).and_where(Expr::col(M::TenantId).eq(tenant));
    match version {
        Some(v) => q.and_where(Expr::col(M::Version).eq(v)),
        None => q.order_by(M::Version, Order::Desc).limit(1),
    };
    let name = version.map_or_else(|| "latest".to_owned(), |v| v.to_string());
    one(conn, &q).await?.map(|r| from_row(&r)).transpose()?.ok_or_else(|| Error::not_found("churn model", name))
}

/// The tenant's models, newest first, below version `before`, at most `limit`.
pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<Trained>> {
    let mut q = Query::select();
    q.columns([M::Version, M::Model])
        .from(M::Table)
        .and_where(Expr::col(M::TenantId).eq(tenant))
        .order_by(M::Version, Order::Desc)
        .limit(limit);
    if let Some(b) = before {
        q.and_where(Expr::col(M::Version).lt(b));
    }
    all(conn, &q).await?.iter().map(from_row).collect()
}

/// The tenant's latest model of each target it trained (what the live
/// scorer applies), by target.
pub(crate) async fn latest_per_target(conn: &impl ConnectionTrait, tenant: &str) -> Result<Vec<Trained>> {
    let newest = Query::select()
        .expr(Func::max(Expr::col(M::Version)))
        .from(M::Table)
        .and_where(Expr::col(M::TenantId).eq(tenant))
        .group_by_col(M::Target)
        .to_owned();
    let q = Query::select()
        .columns([M::Version, M::Model])
        .from(M::Table)
        .and_where(Expr::col(M::TenantId).eq(tenant))
        .and_where(Expr::col(M::Version).in_subquery(newest))
        .order_by(M::Version, Order::Asc)
        .to_owned();
    all(conn, &q).await?.iter().map(from_row).collect()
}

/// The tenant's newest model version of each target it trained.
pub(crate) async fn newest_versions(
    conn: &impl ConnectionTrait,
    tenant: &str,
) -> Result<Vec<(crate::domain::churn_model::Target, i64)>> {
    let q = Query::select()
        .column(M::Target)
        .expr_as(Func::max(Expr::col(M::Version)), M::Version)
        .from(M::Table)
        .and_where(Expr::col(M::TenantId).eq(tenant))
        .group_by_col(M::Target)
        .to_owned();
    all(conn, &q)
        .await?
        .iter()
        .map(|r| {
            let target: String = get(r, M::Target)?;
            let target = crate::domain::churn_model::Target::parse(&target)
                .ok_or_else(|| corrupt("churn model target", &target))?;
            Ok((target, get(r, M::Version)?))
        })
        .collect()
}
