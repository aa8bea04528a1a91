//! Accounts' segments as SegmentChanged carries them: id and CEL expression.

use std::collections::HashMap;

use banso_kit::Result;
use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

use super::{Store, build};

impl Store {
    pub async fn upsert_segment(
        &self,
        conn: &impl ConnectionTrait,
        tenant: &str,
        id: Uuid,
        expression: &str,
    ) -> Result<()> {
        let q = Query::insert()
            .into_table(Alias::new("segments"))
            .columns(["segment_id", "tenant_id", "expression"].map(Alias::new))
            .values_panic([id.into(), tenant.into(), expression.into()])
            .on_conflict(
                OnConflict::column(Alias::new("segment_id")).update_column(Alias::new("expression")).to_owned(),
            )
            .to_owned();
        conn.execute_raw(build(conn, &q)).await?;
        Ok(())
    }

    pub async fn delete_segment(&self, conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<()> {
        let q = Query::delete()
            .from_table(Alias::new("segments"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("segment_id")).eq(id))
            .to_owned();
        conn.execute_raw(build(conn, &q)).await?;
        Ok(())
    }

    /// The tenant's segments: id → expression.
    pub async fn segments(&self, tenant: &str) -> Result<HashMap<Uuid, String>> {
        let q = Query::select()
            .columns(["segment_id", "expression"].map(Alias::new))
            .from(Alias::new("segments"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .to_owned();
        self.db
            .query_all_raw(build(&self.db, &q))
            .await?
            .iter()
            .map(|r| Ok((r.try_get("", "segment_id")?, r.try_get("", "expression")?)))
            .collect()
    }
}
