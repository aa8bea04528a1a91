//! The repository: the only code that speaks SQL to the `health` schema.
//! Every function takes the tenant (where rows have one) and a connection:
//! the pool for reads, the use case's transaction ([`banso_events::Tx`])
//! for writes. Tables and columns are named through [`schema`].

pub(crate) mod accounts;
pub(crate) mod backtest_jobs;
pub(crate) mod churn_models;
pub(crate) mod churn_risk;
pub(crate) mod expansion_signal;
pub(crate) mod health;
pub(crate) mod history;
pub(crate) mod ingest;
pub(crate) mod inputs;
pub(crate) mod jobs;
pub(crate) mod measures;
pub(crate) mod model_schedules;
pub(crate) mod outcomes;
pub(crate) mod portfolio;
pub(crate) mod schema;
pub(crate) mod scorecards;
pub(crate) mod segments;
pub(crate) mod survey_answers;
pub(crate) mod tenants;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use banso_kit::{Error, Result};
use sea_orm::{
    ConnectionTrait, DbBackend, QueryResult, Statement, TryGetable,
    sea_query::{
        Expr, Iden, InsertStatement, IntoIden, PostgresQueryBuilder, Query, QueryStatementWriter, SqliteQueryBuilder,
    },
};

/// Rows per multi-row statement: 11 values a usage event keeps every
/// statement far below PostgreSQL's 65,535 bound parameters.
pub(crate) const CHUNK: usize = 2_000;

/// `stmt` for the connection's database.
pub(crate) fn build(conn: &impl ConnectionTrait, stmt: &impl QueryStatementWriter) -> Statement {
    let backend = conn.get_database_backend();
    let (sql, values) = match backend {
        DbBackend::Postgres => stmt.build(PostgresQueryBuilder),
        _ => stmt.build(SqliteQueryBuilder),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Runs a statement; returns the rows it affected.
pub(crate) async fn exec(conn: &impl ConnectionTrait, stmt: &impl QueryStatementWriter) -> Result<u64> {
    Ok(conn.execute_raw(build(conn, stmt)).await?.rows_affected())
}

/// Every row of a query.
pub(crate) async fn all(conn: &impl ConnectionTrait, stmt: &impl QueryStatementWriter) -> Result<Vec<QueryResult>> {
    Ok(conn.query_all_raw(build(conn, stmt)).await?)
}

/// The first row of a query, if any.
pub(crate) async fn one(conn: &impl ConnectionTrait, stmt: &impl QueryStatementWriter) -> Result<Option<QueryResult>> {
    Ok(conn.query_one_raw(build(conn, stmt)).await?)
}

/// The value of column `col` of a row.
pub(crate) fn get<T: TryGetable>(r: &QueryResult, col: impl Iden) -> Result<T> {
    Ok(r.try_get("", col.unquoted())?)
}

/// Stored predictions by account (`held` of `churn_risk` and
/// `expansion_signal`): `base` selects from one table, filtered to the
/// tenant (and target); `cols` are its account, bucket, probability and
/// model version columns. Of `accounts` only (in chunks), or of all.
pub(crate) async fn held_by_account<C: Iden + Copy + 'static>(
    conn: &impl ConnectionTrait,
    base: sea_orm::sea_query::SelectStatement,
    cols: [C; 4],
    accounts: Option<&[uuid::Uuid]>,
) -> Result<HashMap<uuid::Uuid, crate::domain::churn_model::Held>> {
    use crate::domain::churn_model::{Held, RiskBucket};
    use sea_orm::sea_query::ExprTrait;
    let [account, bucket, probability, version] = cols;
    let chunks: Vec<Option<&[uuid::Uuid]>> = match accounts {
        Some(ids) => ids.chunks(CHUNK).map(Some).collect(),
        None => vec![None],
    };
    let mut out = HashMap::new();
    for ids in chunks {
        let mut q = base.clone();
        q.columns(cols);
        if let Some(ids) = ids {
            q.and_where(Expr::col(account).is_in(ids.iter().copied()));
        }
        for r in all(conn, &q).await? {
            let b: String = get(&r, bucket)?;
            let bucket = RiskBucket::parse(&b).ok_or_else(|| corrupt("prediction bucket", &b))?;
            let held = Held { bucket, probability: get(&r, probability)?, version: get(&r, version)? };
            out.insert(get(&r, account)?, held);
        }
    }
    Ok(out)
}

/// The JSON array of `columns`' values of every row of a group, as text:
/// one row per account instead of one per account-day where a replay
/// reads millions of them. The database builds the arrays in C, while
/// each row handed over one by one costs about a microsecond in the driver
/// (docs/benchmarks.md, *Backtests*). Read with [`json_rows`].
pub(crate) fn json_rows_of(conn: &impl ConnectionTrait, columns: Vec<Expr>) -> Expr {
    use sea_orm::sea_query::{Alias, ExprTrait, Func};
    if conn.get_database_backend() == DbBackend::Postgres {
        let row: Expr = Func::cust(Alias::new("json_build_array")).args(columns).into();
        Expr::from(Func::cust(Alias::new("json_agg")).arg(row)).cast_as(Alias::new("TEXT"))
    } else {
        let row: Expr = Func::cust(Alias::new("json_array")).args(columns).into();
        Func::cust(Alias::new("json_group_array")).arg(row).into()
    }
}

/// The rows of a [`json_rows_of`] column `col` of `r`.
pub(crate) fn json_rows<T: serde::de::DeserializeOwned>(r: &QueryResult, col: impl Iden, what: &str) -> Result<Vec<T>> {
    let json: String = get(r, col)?;
    serde_json::from_str(&json).map_err(|e| corrupt(what, format!("{e}: {json:.80}")))
}

/// A stored value that does not parse: a bug or a hand-edited row.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::internal(anyhow::anyhow!("stored {what}: {detail}"))
}

/// A JSON value for a `json` column.
pub(crate) fn json(v: &impl serde::Serialize) -> Result<Expr> {
    let value = serde_json::to_value(v).map_err(|e| Error::internal(anyhow::anyhow!("serializing to JSON: {e}")))?;
    Ok(Expr::val(sea_orm::Value::Json(Some(Box::new(value)))))
}

/// JSON text for a `text` column (tags and attributes of the projection).
pub(crate) fn json_text(v: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::internal(anyhow::anyhow!("serializing to JSON: {e}")))
}

/// `INSERT INTO table (…) VALUES (…), …` of `rows`, each row its values
/// beside their columns, so that no value can drift from its column; `None`
/// without rows. Every row must name the same columns in the same order
/// (the rows of one table come from its one row function).
pub(crate) fn insert<C, const N: usize>(
    table: impl IntoIden,
    rows: impl IntoIterator<Item = [(C, Expr); N]>,
) -> Result<Option<InsertStatement>>
where
    C: Iden + Copy + PartialEq + 'static,
{
    let mut rows = rows.into_iter();
    let Some(first) = rows.next() else { return Ok(None) };
    let columns: [C; N] = first.each_ref().map(|(c, _)| *c);
    let mut q = Query::insert();
    q.into_table(table).columns(columns);
    let mut add = |row: [(C, Expr); N]| -> Result<()> {
        if row.iter().map(|(c, _)| c).ne(columns.iter()) {
            return Err(Error::internal(anyhow::anyhow!("rows of one insert name different columns")));
        }
        q.values(row.map(|(_, v)| v)).map_err(|e| Error::internal(anyhow::anyhow!("{e}")))?;
        Ok(())
    };
    add(first)?;
    for row in rows {
        add(row)?;
    }
    Ok(Some(q))
}

/// `INSERT … SELECT FROM unnest(…)` for PostgreSQL (the kit's, shared with
/// the other services' bulk writes).
pub(crate) use banso_kit::db::Unnest;

/// One lock per tenant, held while a chunk's scores are computed from the
/// stored ones and written. The live scorer and a recompute job may score
/// the same account at once; each decides whether the score moved
/// (HealthScoreChanged) against the stored score it reads under this lock,
/// so the second sees the first's score instead of both announcing the same
/// move. (Across replicas the stored score still ends up the newest,
/// `read_micros`; an event may then repeat, as any event may under
/// at-least-once delivery.)
#[derive(Clone, Default)]
pub(crate) struct ScoringLocks {
    tenants: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl ScoringLocks {
    /// Waits for the tenant's lock. A task that panicked while scoring
    /// released the tenant's lock as it unwound (tokio's locks do not
    /// poison), and the map behind them is only ever extended by one
    /// `entry().or_default()`, which leaves it whole whatever happens: a
    /// poisoned map is taken as it is, so one panic never stops scoring for
    /// every tenant.
    pub(crate) async fn lock(&self, tenant: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
            map.entry(tenant.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_while_holding_the_locks_stops_no_scoring() {
        let locks = ScoringLocks::default();
        drop(locks.lock("acme").await);
        // A panic while the map is held poisons it…
        let map = locks.tenants.clone();
        let panicked = std::thread::spawn(move || {
            let _held = map.lock().unwrap();
            panic!("a bug while holding the scoring locks");
        })
        .join();
        assert!(panicked.is_err());
        assert!(locks.tenants.is_poisoned());
        // …and a panic while scoring a tenant unwinds through its guard.
        let tenant_lock = locks.clone();
        let task = tokio::spawn(async move {
            let _scoring = tenant_lock.lock("globex").await;
            panic!("a bug while scoring");
        });
        assert!(task.await.unwrap_err().is_panic());
        // Every tenant still scores: the known ones, and new ones.
        for tenant in ["acme", "globex", "initech"] {
            let guard = tokio::time::timeout(std::time::Duration::from_secs(5), locks.lock(tenant))
                .await
                .unwrap_or_else(|_| panic!("scoring {tenant} is blocked"));
            drop(guard);
        }
    }
}
