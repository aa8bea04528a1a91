//! Accounts' segments as SegmentChanged carries them: id and CEL expression.

use std::collections::HashMap;

use banso_kit::Result;
use sea_orm::{
    ConnectionTrait,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

use super::{all, exec, get, insert, schema::Segments as S};

pub(crate) async fn upsert(conn: &impl ConnectionTrait, tenant: &str, id: Uuid, expression: &str) -> Result<()> {
    let row = [(S::SegmentId, Expr::val(id)), (S::TenantId, Expr::val(tenant)), (S::Expression, Expr::val(expression))];
    let Some(mut q) = insert(S::Table, [row])? else { return Ok(()) };
    q.on_conflict(OnConflict::column(S::SegmentId).update_column(S::Expression).to_owned());
    exec(conn, &q).await?;
    Ok(())
}

pub(crate) async fn delete(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<()> {
    let q = Query::delete()
        .from_table(S::Table)
        .and_where(Expr::col(S::TenantId).eq(tenant))
        .and_where(Expr::col(S::SegmentId).eq(id))
        .to_owned();
    exec(conn, &q).await?;
    Ok(())
}

/// The tenant's segments: id → expression.
pub(crate) async fn all_of(conn: &impl ConnectionTrait, tenant: &str) -> Result<HashMap<Uuid, String>> {
    let q = Query::select()
        .columns([S::SegmentId, S::Expression])
        .from(S::Table)
        .and_where(Expr::col(S::TenantId).eq(tenant))
        .to_owned();
    all(conn, &q).await?.iter().map(|r| Ok((get(r, S::SegmentId)?, get(r, S::Expression)?))).collect()
}

/// One segment's expression, if the projection knows it.
pub(crate) async fn expression(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<String>> {
    let q = Query::select()
        .column(S::Expression)
        .from(S::Table)
        .and_where(Expr::col(S::TenantId).eq(tenant))
        .and_where(Expr::col(S::SegmentId).eq(id))
        .to_owned();
    super::one(conn, &q).await?.map(|r| get(&r, S::Expression)).transpose()
}
