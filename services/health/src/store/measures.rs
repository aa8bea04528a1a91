//! Measure values: the external ones set with SetMeasureValue
//! (`measure_values`), and every scored account's latest raw value of each
//! measure some scorecard of the tenant ranks by (`measure_snapshots`, the
//! percentile populations).

use std::collections::HashMap;

use banso_kit::{Result, db::uuid_in};
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DbBackend, Statement, Value,
    sea_query::{ArrayType, Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

use super::{
    CHUNK, Unnest, all, exec, get, insert,
    schema::{MeasureSnapshots as S, MeasureValues as V},
};

/// Sets an external measure of an account, or clears it (`None`).
pub(crate) async fn set(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account: Uuid,
    measure: &str,
    value: Option<f64>,
    observe_time: DateTime<Utc>,
) -> Result<()> {
    match value {
        Some(v) => {
            let row = [
                (V::TenantId, Expr::val(tenant)),
                (V::AccountId, Expr::val(account)),
                (V::Measure, Expr::val(measure)),
                (V::Value, Expr::val(v)),
                (V::ObserveTime, Expr::val(observe_time)),
            ];
            let Some(mut q) = insert(V::Table, [row])? else { return Ok(()) };
            q.on_conflict(
                OnConflict::columns([V::TenantId, V::AccountId, V::Measure])
                    .update_columns([V::Value, V::ObserveTime])
                    .to_owned(),
            );
            exec(conn, &q).await?;
        }
        None => {
            let q = Query::delete()
                .from_table(V::Table)
                .and_where(Expr::col(V::TenantId).eq(tenant))
                .and_where(Expr::col(V::AccountId).eq(account))
                .and_where(Expr::col(V::Measure).eq(measure))
                .to_owned();
            exec(conn, &q).await?;
        }
    }
    Ok(())
}

/// The external values of `ids`: account → name → value.
pub(crate) async fn values_of(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, HashMap<String, f64>>> {
    let mut out: HashMap<Uuid, HashMap<String, f64>> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let q = Query::select()
            .columns([V::AccountId, V::Measure, V::Value])
            .from(V::Table)
            .and_where(Expr::col(V::TenantId).eq(tenant))
            .and_where(uuid_in(conn, Expr::col(V::AccountId), chunk))
            .to_owned();
        for r in all(conn, &q).await? {
            out.entry(get(&r, V::AccountId)?).or_default().insert(get(&r, V::Measure)?, get(&r, V::Value)?);
        }
    }
    Ok(out)
}

/// The tenant's stored values of `measure`, sorted (a percentile population).
pub(crate) async fn population(conn: &impl ConnectionTrait, tenant: &str, measure: &str) -> Result<Vec<f64>> {
    let q = Query::select()
        .column(S::Value)
        .from(S::Table)
        .and_where(Expr::col(S::TenantId).eq(tenant))
        .and_where(Expr::col(S::Measure).eq(measure))
        .to_owned();
    let mut v: Vec<f64> = all(conn, &q).await?.iter().map(|r| get(r, S::Value)).collect::<Result<_>>()?;
    v.sort_by(f64::total_cmp);
    Ok(v)
}

/// The stored values of `measures` of `ids`: account → measure → value.
pub(crate) async fn snapshots_of(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[Uuid],
    measures: &[&str],
) -> Result<HashMap<Uuid, HashMap<String, f64>>> {
    let mut out: HashMap<Uuid, HashMap<String, f64>> = HashMap::new();
    if measures.is_empty() {
        return Ok(out);
    }
    for chunk in ids.chunks(CHUNK) {
        let q = Query::select()
            .columns([S::AccountId, S::Measure, S::Value])
            .from(S::Table)
            .and_where(Expr::col(S::TenantId).eq(tenant))
            .and_where(uuid_in(conn, Expr::col(S::AccountId), chunk))
            .and_where(Expr::col(S::Measure).is_in(measures.iter().copied()))
            .to_owned();
        for r in all(conn, &q).await? {
            out.entry(get(&r, S::AccountId)?).or_default().insert(get(&r, S::Measure)?, get(&r, S::Value)?);
        }
    }
    Ok(out)
}

/// Replaces the snapshots of `measures` of `accounts` with `values`
/// (account, measure, value): what they hold now, the missing values left
/// out. The scorer passes the measures some scorecard ranks by — the
/// percentile populations are all that reads snapshots — so a tenant that
/// ranks by none writes none; another measure's rows, from when it was
/// ranked, stay as they were (a population again if it is ranked again).
pub(crate) async fn replace_snapshots(
    conn: &impl ConnectionTrait,
    tenant: &str,
    accounts: &[Uuid],
    measures: &[&str],
    values: &[(Uuid, &str, f64)],
) -> Result<()> {
    if measures.is_empty() {
        return Ok(());
    }
    for chunk in accounts.chunks(CHUNK) {
        let q = Query::delete()
            .from_table(S::Table)
            .and_where(Expr::col(S::TenantId).eq(tenant))
            .and_where(uuid_in(conn, Expr::col(S::AccountId), chunk))
            .and_where(Expr::col(S::Measure).is_in(measures.iter().copied()))
            .to_owned();
        exec(conn, &q).await?;
    }
    if conn.get_database_backend() == DbBackend::Postgres {
        // Typed arrays: a chunk's ~10,000 snapshots in one statement.
        for chunk in values.chunks(CHUNK * 10) {
            conn.execute_raw(insert_snapshots_pg(tenant, chunk)).await?;
        }
        return Ok(());
    }
    for chunk in values.chunks(CHUNK) {
        let rows = chunk.iter().map(|(a, m, v)| {
            [
                (S::TenantId, Expr::val(tenant)),
                (S::Measure, Expr::val(*m)),
                (S::AccountId, Expr::val(*a)),
                (S::Value, Expr::val(*v)),
            ]
        });
        if let Some(q) = insert(S::Table, rows)? {
            exec(conn, &q).await?;
        }
    }
    Ok(())
}

/// `INSERT INTO measure_snapshots … SELECT … FROM unnest(…)`: a chunk's
/// rows as one typed array per column.
fn insert_snapshots_pg(tenant: &str, values: &[(Uuid, &str, f64)]) -> Statement {
    let array = |ty, f: &dyn Fn(&(Uuid, &str, f64)) -> Value| banso_kit::db::pg_array(ty, values, f);
    let mut u = Unnest::default();
    let t = u.param(tenant);
    u.column(S::TenantId, t);
    let m = u.array("text", array(ArrayType::String, &|(_, m, _)| (*m).into()));
    u.column(S::Measure, m);
    let a = u.array("uuid", array(ArrayType::Uuid, &|(a, _, _)| (*a).into()));
    u.column(S::AccountId, a);
    let v = u.array("float8", array(ArrayType::Double, &|(_, _, v)| (*v).into()));
    u.column(S::Value, v);
    u.statement(S::Table, "")
}
