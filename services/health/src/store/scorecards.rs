//! Scorecards: the current version in `scorecards`, every version in
//! `scorecard_versions`. An update is a new version: a new row there and the
//! current one moved on, `… WHERE version = ?` first.

use banso_kit::{Error, Result};
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, QueryResult,
    sea_query::{Expr, ExprTrait, Query},
};
use uuid::Uuid;

use super::{
    all, corrupt, exec, get, insert, json, one,
    schema::{ScorecardVersions as SV, Scorecards as S},
};
use crate::domain::scorecard::ScorecardDef;

/// A stored scorecard version.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredScorecard {
    pub id: Uuid,
    pub version: i64,
    pub def: ScorecardDef,
    pub create_time: DateTime<Utc>,
    /// When this version was written.
    pub update_time: DateTime<Utc>,
}

impl banso_events::db::Versioned for StoredScorecard {
    fn version(&self) -> i64 {
        self.version
    }

    fn advance(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.update_time = now;
    }
}

impl banso_events::db::Identified for StoredScorecard {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

fn definition(r: &QueryResult, col: impl sea_orm::sea_query::Iden) -> Result<ScorecardDef> {
    let def: serde_json::Value = get(r, col)?;
    serde_json::from_value(def).map_err(|e| corrupt("scorecard", e))
}

fn from_row(r: &QueryResult) -> Result<StoredScorecard> {
    Ok(StoredScorecard {
        id: get(r, S::Id)?,
        version: get(r, S::Version)?,
        def: definition(r, S::Definition)?,
        create_time: get(r, S::CreateTime)?,
        update_time: get(r, S::UpdateTime)?,
    })
}

/// The current version of a scorecard, or `version` of it; NOT_FOUND for
/// another tenant's.
pub(crate) async fn get_version(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Uuid,
    version: Option<i64>,
) -> Result<StoredScorecard> {
    let q = Query::select()
        .columns(S::ROW)
        .from(S::Table)
        .and_where(Expr::col(S::TenantId).eq(tenant))
        .and_where(Expr::col(S::Id).eq(id))
        .to_owned();
    let row = one(conn, &q).await?;
    let mut card = from_row(&row.ok_or_else(|| Error::not_found("scorecard", id.to_string()))?)?;
    if let Some(v) = version.filter(|v| *v != card.version) {
        let q = Query::select()
            .columns([SV::Definition, SV::CreateTime])
            .from(SV::Table)
            .and_where(Expr::col(SV::TenantId).eq(tenant))
            .and_where(Expr::col(SV::Id).eq(id))
            .and_where(Expr::col(SV::Version).eq(v))
            .to_owned();
        let r = one(conn, &q).await?.ok_or_else(|| Error::not_found("scorecard version", format!("{id} v{v}")))?;
        card.def = definition(&r, SV::Definition)?;
        card.version = v;
        card.update_time = get(&r, SV::CreateTime)?;
    }
    Ok(card)
}

/// Current versions, oldest first, after `after`.
pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    after: Option<Uuid>,
    limit: Option<u64>,
) -> Result<Vec<StoredScorecard>> {
    let mut q = Query::select();
    q.columns(S::ROW).from(S::Table).and_where(Expr::col(S::TenantId).eq(tenant));
    if let Some(a) = after {
        q.and_where(Expr::col(S::Id).gt(a));
    }
    q.order_by(S::Id, sea_orm::Order::Asc);
    if let Some(limit) = limit {
        q.limit(limit);
    }
    all(conn, &q).await?.iter().map(from_row).collect()
}

/// Every version of `c` is kept: the new one's row.
async fn insert_version(conn: &impl ConnectionTrait, tenant: &str, c: &StoredScorecard) -> Result<()> {
    let row = [
        (SV::Id, Expr::val(c.id)),
        (SV::Version, Expr::val(c.version)),
        (SV::TenantId, Expr::val(tenant)),
        (SV::Definition, json(&c.def)?),
        (SV::CreateTime, Expr::val(c.update_time)),
    ];
    if let Some(q) = insert(SV::Table, [row])? {
        exec(conn, &q).await?;
    }
    Ok(())
}

/// Writes a new scorecard (version 1).
pub(crate) async fn create(conn: &impl ConnectionTrait, tenant: &str, c: &StoredScorecard) -> Result<()> {
    let row = [
        (S::Id, Expr::val(c.id)),
        (S::TenantId, Expr::val(tenant)),
        (S::Version, Expr::val(c.version)),
        (S::Definition, json(&c.def)?),
        (S::CreateTime, Expr::val(c.create_time)),
        (S::UpdateTime, Expr::val(c.update_time)),
    ];
    if let Some(q) = insert(S::Table, [row])? {
        exec(conn, &q).await?;
    }
    insert_version(conn, tenant, c).await
}

/// Writes `next` as the scorecard's new version if `current` is still the
/// stored one (the first statement: on SQLite it takes the write lock at
/// once); false if another writer moved it on first.
pub(crate) async fn update(
    conn: &impl ConnectionTrait,
    tenant: &str,
    current: &StoredScorecard,
    next: &StoredScorecard,
) -> Result<bool> {
    let q = Query::update()
        .table(S::Table)
        .value(S::Version, next.version)
        .value(S::Definition, json(&next.def)?)
        .value(S::UpdateTime, next.update_time)
        .and_where(Expr::col(S::TenantId).eq(tenant))
        .and_where(Expr::col(S::Id).eq(current.id))
        .and_where(Expr::col(S::Version).eq(current.version))
        .to_owned();
    if exec(conn, &q).await? == 0 {
        return Ok(false);
    }
    insert_version(conn, tenant, next).await?;
    Ok(true)
}
