//! `health_history`: one snapshot a day per scored account (the day's
//! latest score) and a row for every band change.

use std::collections::HashMap;

use banso_kit::{Result, db::uuid_in};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ConnectionTrait, DbBackend, Statement,
    sea_query::{ArrayType, Expr, ExprTrait, Func, Iden, Query, SubQueryStatement},
};
use uuid::Uuid;

use super::{
    CHUNK, Unnest, all, corrupt, exec, get,
    health::ScoreWrite,
    insert,
    schema::{HealthHistory as HH, Out},
};
use crate::domain::score::Band;

/// What a history row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The day's latest score.
    Daily,
    /// The score entered another band.
    BandChange,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Daily => "daily",
            Kind::BandChange => "band_change",
        }
    }
}

/// One point of an account's history.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistoryPoint {
    pub id: Uuid,
    pub day: NaiveDate,
    pub kind: Kind,
    pub score: f64,
    pub band: Band,
    pub record_time: DateTime<Utc>,
}

/// Records the scores stored today: each account's daily snapshot replaces
/// the day's earlier one; band changes are added beside it.
pub(crate) async fn record(
    conn: &impl ConnectionTrait,
    tenant: &str,
    today: NaiveDate,
    now: DateTime<Utc>,
    stored: &[&ScoreWrite],
) -> Result<()> {
    let ids: Vec<Uuid> = stored.iter().map(|w| w.account_id).collect();
    for chunk in ids.chunks(CHUNK) {
        let q = Query::delete()
            .from_table(HH::Table)
            .and_where(Expr::col(HH::TenantId).eq(tenant))
            .and_where(uuid_in(conn, Expr::col(HH::AccountId), chunk))
            .and_where(Expr::col(HH::Day).eq(today))
            .and_where(Expr::col(HH::Kind).eq(Kind::Daily.as_str()))
            .to_owned();
        exec(conn, &q).await?;
    }
    let points: Vec<(&ScoreWrite, Kind)> = stored
        .iter()
        .flat_map(|w| std::iter::once((*w, Kind::Daily)).chain(w.band_changed.then_some((*w, Kind::BandChange))))
        .collect();
    if conn.get_database_backend() == DbBackend::Postgres {
        // Typed arrays: a chunk's points in one short statement.
        for chunk in points.chunks(CHUNK * 2) {
            conn.execute_raw(insert_pg(tenant, today, now, chunk)).await?;
        }
        return Ok(());
    }
    for chunk in points.chunks(CHUNK / 2) {
        let rows = chunk.iter().map(|(w, kind)| {
            [
                (HH::Id, Expr::val(Uuid::now_v7())),
                (HH::TenantId, Expr::val(tenant)),
                (HH::AccountId, Expr::val(w.account_id)),
                (HH::Day, Expr::val(today)),
                (HH::Kind, Expr::val(kind.as_str())),
                (HH::Score, Expr::val(w.score)),
                (HH::Band, Expr::val(w.band.as_str())),
                (HH::RecordTime, Expr::val(now)),
            ]
        });
        if let Some(q) = insert(HH::Table, rows)? {
            exec(conn, &q).await?;
        }
    }
    Ok(())
}

/// `INSERT INTO health_history … SELECT … FROM unnest(…)`: [`record`]'s
/// points as one typed array per column.
fn insert_pg(tenant: &str, today: NaiveDate, now: DateTime<Utc>, points: &[(&ScoreWrite, Kind)]) -> Statement {
    let array = |ty, f: &dyn Fn(&(&ScoreWrite, Kind)) -> sea_orm::Value| banso_kit::db::pg_array(ty, points, f);
    let mut u = Unnest::default();
    let id = u.array("uuid", array(ArrayType::Uuid, &|_| Uuid::now_v7().into()));
    u.column(HH::Id, id);
    let t = u.param(tenant);
    u.column(HH::TenantId, t);
    let a = u.array("uuid", array(ArrayType::Uuid, &|(w, _)| w.account_id.into()));
    u.column(HH::AccountId, a);
    let d = u.param(today);
    u.column(HH::Day, d);
    let k = u.array("text", array(ArrayType::String, &|(_, k)| k.as_str().into()));
    u.column(HH::Kind, k);
    let s = u.array("float8", array(ArrayType::Double, &|(w, _)| w.score.into()));
    u.column(HH::Score, s);
    let b = u.array("text", array(ArrayType::String, &|(w, _)| w.band.as_str().into()));
    u.column(HH::Band, b);
    let r = u.param(now);
    u.column(HH::RecordTime, r);
    u.statement(HH::Table, "")
}

/// Per day of `days`, [`daily_on_or_before`] it: on PostgreSQL in one
/// statement a chunk, each day's probe a `LEFT JOIN LATERAL` of its own
/// (scoring reads three days, and the round trips of a chunk add up).
pub(crate) async fn daily_on_or_before_each<const N: usize>(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[Uuid],
    days: [NaiveDate; N],
) -> Result<[HashMap<Uuid, (NaiveDate, f64)>; N]> {
    let mut out = std::array::from_fn(|_| HashMap::new());
    if conn.get_database_backend() != DbBackend::Postgres {
        for (o, day) in out.iter_mut().zip(days) {
            *o = daily_on_or_before(conn, tenant, ids, day).await?;
        }
        return Ok(out);
    }
    let (account, d, score) = (HH::AccountId.to_string(), HH::Day.to_string(), HH::Score.to_string());
    let (mut columns, mut probes) = (vec![format!("a.id AS {account}")], Vec::new());
    for i in 0..N {
        columns.push(format!("h{i}.{d} AS d{i}, h{i}.{score} AS s{i}"));
        probes.push(format!(
            "LEFT JOIN LATERAL (SELECT {d}, {score} FROM {table} \
               WHERE {tenant} = $1 AND {account} = a.id AND {kind} = '{daily}' AND {d} <= ${p} \
               ORDER BY {d} DESC LIMIT 1) AS h{i} ON true",
            p = i + 3,
            table = HH::Table.to_string(),
            tenant = HH::TenantId.to_string(),
            kind = HH::Kind.to_string(),
            daily = Kind::Daily.as_str(),
        ));
    }
    let sql = format!("SELECT {} FROM unnest($2::uuid[]) AS a(id) {}", columns.join(", "), probes.join(" "));
    for chunk in ids.chunks(CHUNK) {
        let array = banso_kit::db::pg_array(ArrayType::Uuid, chunk, |id| sea_orm::Value::from(*id));
        let values = [tenant.into(), array].into_iter().chain(days.iter().map(|d| sea_orm::Value::from(*d)));
        for r in conn.query_all_raw(Statement::from_sql_and_values(DbBackend::Postgres, &sql, values)).await? {
            let id: Uuid = get(&r, HH::AccountId)?;
            for (i, o) in out.iter_mut().enumerate() {
                let day: Option<NaiveDate> = r.try_get("", &format!("d{i}"))?;
                if let Some(day) = day {
                    o.insert(id, (day, r.try_get("", &format!("s{i}"))?));
                }
            }
        }
    }
    Ok(out)
}

/// Per account of `ids`, its latest daily snapshot on or before `day`.
pub(crate) async fn daily_on_or_before(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[Uuid],
    day: NaiveDate,
) -> Result<HashMap<Uuid, (NaiveDate, f64)>> {
    let mut out = HashMap::new();
    if conn.get_database_backend() == DbBackend::Postgres {
        // One backward probe of (tenant_id, account_id, kind, day) per
        // account, whatever the table's statistics say: the correlated
        // form below got a scan of the tenant's history per chunk once a
        // recompute had grown the table past its last ANALYZE.
        let sql = format!(
            "SELECT a.id AS {account}, h.{d}, h.{score} FROM unnest($2::uuid[]) AS a(id) \
             CROSS JOIN LATERAL (SELECT {d}, {score} FROM {table} \
               WHERE {tenant} = $1 AND {account} = a.id AND {kind} = '{daily}' AND {d} <= $3 \
               ORDER BY {d} DESC LIMIT 1) AS h",
            account = HH::AccountId.to_string(),
            d = HH::Day.to_string(),
            score = HH::Score.to_string(),
            table = HH::Table.to_string(),
            tenant = HH::TenantId.to_string(),
            kind = HH::Kind.to_string(),
            daily = Kind::Daily.as_str(),
        );
        for chunk in ids.chunks(CHUNK) {
            let array = banso_kit::db::pg_array(ArrayType::Uuid, chunk, |id| sea_orm::Value::from(*id));
            let stmt = Statement::from_sql_and_values(DbBackend::Postgres, &sql, [tenant.into(), array, day.into()]);
            for r in conn.query_all_raw(stmt).await? {
                out.insert(get(&r, HH::AccountId)?, (get(&r, HH::Day)?, get(&r, HH::Score)?));
            }
        }
        return Ok(out);
    }
    for chunk in ids.chunks(CHUNK) {
        // The newest day per account first, then that day's row.
        let latest = Query::select()
            .expr(Func::max(Expr::col((Out::Latest, HH::Day))))
            .from_as(HH::Table, Out::Latest)
            .and_where(Expr::col((Out::Latest, HH::TenantId)).eq(tenant))
            .and_where(Expr::col((Out::Latest, HH::AccountId)).equals((HH::Table, HH::AccountId)))
            .and_where(Expr::col((Out::Latest, HH::Kind)).eq(Kind::Daily.as_str()))
            .and_where(Expr::col((Out::Latest, HH::Day)).lte(day))
            .to_owned();
        let q = Query::select()
            .columns([HH::AccountId, HH::Day, HH::Score].map(|c| (HH::Table, c)))
            .from(HH::Table)
            .and_where(Expr::col((HH::Table, HH::TenantId)).eq(tenant))
            .and_where(uuid_in(conn, Expr::col((HH::Table, HH::AccountId)), chunk))
            .and_where(Expr::col((HH::Table, HH::Kind)).eq(Kind::Daily.as_str()))
            .and_where(
                Expr::col((HH::Table, HH::Day))
                    .eq(Expr::SubQuery(None, Box::new(SubQueryStatement::SelectStatement(latest)))),
            )
            .to_owned();
        for r in all(conn, &q).await? {
            out.insert(get(&r, HH::AccountId)?, (get(&r, HH::Day)?, get(&r, HH::Score)?));
        }
    }
    Ok(out)
}

/// An account's history in [start, end], oldest first, after the cursor
/// (day, id).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn page(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account: Uuid,
    start: NaiveDate,
    end: NaiveDate,
    band_changes_only: bool,
    after: Option<(NaiveDate, Uuid)>,
    limit: u64,
) -> Result<Vec<HistoryPoint>> {
    let mut q = Query::select();
    q.columns(HH::ROW)
        .from(HH::Table)
        .and_where(Expr::col(HH::TenantId).eq(tenant))
        .and_where(Expr::col(HH::AccountId).eq(account))
        .and_where(Expr::col(HH::Day).gte(start))
        .and_where(Expr::col(HH::Day).lte(end));
    if band_changes_only {
        q.and_where(Expr::col(HH::Kind).eq(Kind::BandChange.as_str()));
    }
    if let Some((day, id)) = after {
        q.and_where(Expr::col(HH::Day).gt(day).or(Expr::col(HH::Day).eq(day).and(Expr::col(HH::Id).gt(id))));
    }
    q.order_by(HH::Day, sea_orm::Order::Asc).order_by(HH::Id, sea_orm::Order::Asc).limit(limit);
    all(conn, &q)
        .await?
        .iter()
        .map(|r| {
            let band: String = get(r, HH::Band)?;
            let kind: String = get(r, HH::Kind)?;
            Ok(HistoryPoint {
                id: get(r, HH::Id)?,
                day: get(r, HH::Day)?,
                kind: [Kind::Daily, Kind::BandChange]
                    .into_iter()
                    .find(|k| k.as_str() == kind)
                    .ok_or_else(|| corrupt("history kind", &kind))?,
                score: get(r, HH::Score)?,
                band: Band::parse(&band).ok_or_else(|| corrupt("band", &band))?,
                record_time: get(r, HH::RecordTime)?,
            })
        })
        .collect()
}

/// Writes a past daily snapshot, as a day's scoring would have (tests of
/// trends need history older than the test).
#[cfg(test)]
pub(crate) async fn record_past_daily(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account: Uuid,
    day: NaiveDate,
    score: f64,
    band: Band,
) -> Result<()> {
    let w = ScoreWrite {
        account_id: account,
        score,
        band,
        contributions: vec![],
        scorecard_id: Uuid::nil(),
        scorecard_version: 0,
        change_7d: None,
        change_30d: None,
        band_changed: false,
    };
    record(conn, tenant, day, banso_kit::wire::now(), &[&w]).await
}

/// Every daily snapshot of the tenant in [start, end]: account, day, score
/// and band, by account then day (what a backtest labels). Read as one
/// row per account ([`super::json_rows_of`]): a large tenant has millions.
pub(crate) async fn daily_in_range(
    conn: &impl ConnectionTrait,
    tenant: &str,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Vec<(Uuid, NaiveDate, f64, Band)>> {
    let q = Query::select()
        .column(HH::AccountId)
        .expr_as(
            super::json_rows_of(conn, vec![Expr::col(HH::Day), Expr::col(HH::Score), Expr::col(HH::Band)]),
            Out::Rows,
        )
        .from(HH::Table)
        .and_where(Expr::col(HH::TenantId).eq(tenant))
        .and_where(Expr::col(HH::Kind).eq(Kind::Daily.as_str()))
        .and_where(Expr::col(HH::Day).gte(start))
        .and_where(Expr::col(HH::Day).lte(end))
        .group_by_col(HH::AccountId)
        .to_owned();
    let mut accounts = Vec::new();
    for r in all(conn, &q).await? {
        let account: Uuid = get(&r, HH::AccountId)?;
        let mut days: Vec<(NaiveDate, f64, Band)> = super::json_rows(&r, Out::Rows, "daily snapshots")?;
        days.sort_by_key(|d| d.0);
        accounts.push((account, days));
    }
    accounts.sort_by_key(|a| a.0);
    Ok(accounts.into_iter().flat_map(|(a, days)| days.into_iter().map(move |(d, s, b)| (a, d, s, b))).collect())
}

/// Writes past daily snapshots (account, day, score, band) in bulk: the
/// synthetic tenants of the benchmarks, and tests.
#[cfg(any(test, feature = "bench"))]
pub(crate) async fn insert_daily(
    conn: &impl ConnectionTrait,
    tenant: &str,
    rows: &[(Uuid, NaiveDate, f64, Band)],
) -> Result<()> {
    let now = banso_kit::wire::now();
    for chunk in rows.chunks(CHUNK) {
        let values = chunk.iter().map(|(account, day, score, band)| {
            [
                (HH::Id, Expr::val(Uuid::now_v7())),
                (HH::TenantId, Expr::val(tenant)),
                (HH::AccountId, Expr::val(*account)),
                (HH::Day, Expr::val(*day)),
                (HH::Kind, Expr::val(Kind::Daily.as_str())),
                (HH::Score, Expr::val(*score)),
                (HH::Band, Expr::val(band.as_str())),
                (HH::RecordTime, Expr::val(now)),
            ]
        });
        if let Some(q) = insert(HH::Table, values)? {
            exec(conn, &q).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    /// The days read together give what each read alone gives, on either
    /// backend (PostgreSQL takes its own statement).
    #[tokio::test]
    async fn days_read_together_are_each_day_read_alone() {
        let db = banso_testkit::fresh_database().await.unwrap();
        let conn = db.connect::<crate::migration::Migrator>(crate::NAME).await.unwrap();
        let (a, b, quiet) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        for (tenant, account, d, score) in [
            ("acme", a, 2, 10.0),
            ("acme", a, 9, 20.0),
            ("acme", a, 20, 30.0),
            ("acme", b, 15, 40.0),
            ("globex", b, 1, 50.0),
        ] {
            record_past_daily(&conn, tenant, account, day(d), score, Band::Green).await.unwrap();
        }
        let ids = [a, b, quiet];
        let days = [day(20), day(13), day(1)];
        let got = daily_on_or_before_each(&conn, "acme", &ids, days).await.unwrap();
        for (got, d) in got.iter().zip(days) {
            assert_eq!(*got, daily_on_or_before(&conn, "acme", &ids, d).await.unwrap(), "{d}");
        }
        assert_eq!(got[0], HashMap::from([(a, (day(20), 30.0)), (b, (day(15), 40.0))]));
        assert_eq!(got[1], HashMap::from([(a, (day(9), 20.0))]));
        assert!(got[2].is_empty());
    }
}
