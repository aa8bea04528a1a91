//! `account_health`: each scored account's current score, band,
//! explanation and trend.

use std::collections::{HashMap, HashSet};

use banso_kit::{Result, db::uuid_in};
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DbBackend, QueryResult, Statement, Value,
    sea_query::{ArrayType, Expr, ExprTrait, Iden, OnConflict, Query, SelectStatement},
};
use uuid::Uuid;

use super::{CHUNK, Unnest, all, corrupt, exec, get, insert, json, schema::AccountHealth as H};
use crate::domain::score::{Band, Contribution};

/// An account's stored health.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredHealth {
    pub account_id: Uuid,
    pub score: f64,
    pub band: Band,
    pub scorecard_id: Uuid,
    pub scorecard_version: i64,
    pub contributions: Vec<Contribution>,
    pub compute_time: DateTime<Utc>,
    /// Change since the latest daily score 7 (30) days before the compute day.
    pub change_7d: Option<f64>,
    pub change_30d: Option<f64>,
}

/// One account's new score, as the scorer decided to store it.
#[derive(Debug, Clone)]
pub(crate) struct ScoreWrite {
    pub account_id: Uuid,
    pub score: f64,
    pub band: Band,
    pub contributions: Vec<Contribution>,
    pub scorecard_id: Uuid,
    pub scorecard_version: i64,
    pub change_7d: Option<f64>,
    pub change_30d: Option<f64>,
    /// A band change since the previous score: recorded in the history.
    pub band_changed: bool,
}

/// `SELECT <the row's columns> FROM account_health`, qualified by the table (for joins).
pub(crate) fn select() -> SelectStatement {
    Query::select().columns(H::ROW.map(|c| (H::Table, c))).from(H::Table).to_owned()
}

/// The health of a row holding [`H::ROW`].
pub(crate) fn from_row(r: &QueryResult) -> Result<StoredHealth> {
    let band: String = get(r, H::Band)?;
    let contributions: serde_json::Value = get(r, H::Contributions)?;
    Ok(StoredHealth {
        account_id: get(r, H::AccountId)?,
        score: get(r, H::Score)?,
        band: Band::parse(&band).ok_or_else(|| corrupt("band", &band))?,
        scorecard_id: get(r, H::ScorecardId)?,
        scorecard_version: get(r, H::ScorecardVersion)?,
        contributions: serde_json::from_value(contributions).map_err(|e| corrupt("contributions", e))?,
        compute_time: get(r, H::ComputeTime)?,
        change_7d: get(r, H::Change7d)?,
        change_30d: get(r, H::Change30d)?,
    })
}

/// The stored health of `ids` (those scored).
pub(crate) async fn of(conn: &impl ConnectionTrait, tenant: &str, ids: &[Uuid]) -> Result<HashMap<Uuid, StoredHealth>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let mut q = select();
        q.and_where(Expr::col((H::Table, H::TenantId)).eq(tenant)).and_where(uuid_in(
            conn,
            Expr::col((H::Table, H::AccountId)),
            chunk,
        ));
        for r in all(conn, &q).await? {
            let h = from_row(&r)?;
            out.insert(h.account_id, h);
        }
    }
    Ok(out)
}

/// Removes the current score of `ids` unless one computed from inputs
/// newer than `read_micros` is stored (their history stays).
pub(crate) async fn remove(conn: &impl ConnectionTrait, tenant: &str, ids: &[Uuid], read_micros: i64) -> Result<()> {
    for chunk in ids.chunks(CHUNK) {
        let q = Query::delete()
            .from_table(H::Table)
            .and_where(Expr::col(H::TenantId).eq(tenant))
            .and_where(uuid_in(conn, Expr::col(H::AccountId), chunk))
            .and_where(Expr::col(H::ReadMicros).lte(read_micros))
            .to_owned();
        exec(conn, &q).await?;
    }
    Ok(())
}

/// Stores each score of `writes` unless a score computed from newer inputs
/// (`read_time`) is stored already; returns the accounts whose score was
/// stored.
pub(crate) async fn upsert(
    conn: &impl ConnectionTrait,
    tenant: &str,
    read_time: DateTime<Utc>,
    writes: &[ScoreWrite],
) -> Result<HashSet<Uuid>> {
    let mut stored = HashSet::new();
    if conn.get_database_backend() == DbBackend::Postgres {
        // One statement of typed arrays a chunk.
        for chunk in writes.chunks(CHUNK) {
            for r in conn.query_all_raw(upsert_pg(tenant, read_time, chunk)?).await? {
                stored.insert(get(&r, H::AccountId)?);
            }
        }
        return Ok(stored);
    }
    // On SQLite, a multi-row VALUES.
    let read_micros = read_time.timestamp_micros();
    for chunk in writes.chunks(CHUNK / 2) {
        let rows = chunk
            .iter()
            .map(|w| {
                Ok([
                    (H::AccountId, Expr::val(w.account_id)),
                    (H::TenantId, Expr::val(tenant)),
                    (H::Score, Expr::val(w.score)),
                    (H::Band, Expr::val(w.band.as_str())),
                    (H::ScorecardId, Expr::val(w.scorecard_id)),
                    (H::ScorecardVersion, Expr::val(w.scorecard_version)),
                    (H::Contributions, json(&w.contributions)?),
                    (H::ComputeTime, Expr::val(read_time)),
                    (H::Change7d, Expr::val(w.change_7d)),
                    (H::Change30d, Expr::val(w.change_30d)),
                    (H::ReadMicros, Expr::val(read_micros)),
                ])
            })
            .collect::<Result<Vec<_>>>()?;
        let Some(mut q) = insert(H::Table, rows)? else { continue };
        q.on_conflict(
            OnConflict::column(H::AccountId)
                .update_columns(updated())
                .action_and_where(Expr::col((H::Table, H::ReadMicros)).lte(Expr::col((Excluded, H::ReadMicros))))
                .to_owned(),
        )
        .returning_col(H::AccountId);
        for r in all(conn, &q).await? {
            stored.insert(get(&r, H::AccountId)?);
        }
    }
    Ok(stored)
}

/// The columns an upsert replaces: all but the key and the tenant.
fn updated() -> impl Iterator<Item = H> {
    H::ROW.into_iter().filter(|c| *c != H::AccountId)
}

/// The `excluded` row of `INSERT … ON CONFLICT DO UPDATE`.
#[derive(Clone, Copy, sea_orm::DeriveIden)]
struct Excluded;

/// The scores of `writes` as one `INSERT … SELECT FROM unnest(…)` upsert,
/// with the portable statement's guard: a stored score from newer inputs
/// stays.
fn upsert_pg(tenant: &str, read_time: DateTime<Utc>, writes: &[ScoreWrite]) -> Result<Statement> {
    let array = |ty, f: &dyn Fn(&ScoreWrite) -> Value| banso_kit::db::pg_array(ty, writes, f);
    let contributions = writes
        .iter()
        .map(|w| serde_json::to_string(&w.contributions).map(Value::from))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| banso_kit::Error::internal(anyhow::anyhow!("serializing contributions: {e}")))?;
    let mut u = Unnest::default();
    let tenant = u.param(tenant);
    let time = u.param(read_time);
    let micros = u.param(read_time.timestamp_micros());
    let a = u.array("uuid", array(ArrayType::Uuid, &|w| w.account_id.into()));
    u.column(H::AccountId, a);
    u.column(H::TenantId, tenant);
    let s = u.array("float8", array(ArrayType::Double, &|w| w.score.into()));
    u.column(H::Score, s);
    let b = u.array("text", array(ArrayType::String, &|w| w.band.as_str().into()));
    u.column(H::Band, b);
    let c = u.array("uuid", array(ArrayType::Uuid, &|w| w.scorecard_id.into()));
    u.column(H::ScorecardId, c);
    let v = u.array("int8", array(ArrayType::BigInt, &|w| w.scorecard_version.into()));
    u.column(H::ScorecardVersion, v);
    let j = u.array("text", Value::Array(ArrayType::String, Some(Box::new(contributions))));
    u.column(H::Contributions, format!("{j}::json"));
    u.column(H::ComputeTime, time);
    // The driver's arrays hold no NULL: a value and whether there is one.
    type Change = fn(&ScoreWrite) -> Option<f64>;
    let changes: [(H, Change); 2] = [(H::Change7d, |w| w.change_7d), (H::Change30d, |w| w.change_30d)];
    for (col, change) in changes {
        let value = u.array("float8", array(ArrayType::Double, &|w| change(w).unwrap_or(0.0).into()));
        let present = u.array("bool", array(ArrayType::Bool, &|w| change(w).is_some().into()));
        u.column(col, format!("CASE WHEN {present} THEN {value} END"));
    }
    u.column(H::ReadMicros, micros);
    let table = H::Table.to_string();
    let set: Vec<String> = updated().map(|c| format!("{0} = excluded.{0}", c.to_string())).collect();
    let tail = format!(
        "ON CONFLICT ({key}) DO UPDATE SET {set} WHERE {table}.{rm} <= excluded.{rm} RETURNING {key}",
        key = H::AccountId.to_string(),
        set = set.join(", "),
        rm = H::ReadMicros.to_string(),
    );
    Ok(u.statement(H::Table, &tail))
}
