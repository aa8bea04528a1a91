//! What scoring reads besides scores and measure values, one query per kind
//! of input for a whole chunk of accounts: usage summed per bucket of days,
//! distinct users, whether an account ever had usage, e-mails, the
//! denominator of feature breadth.

use std::collections::{HashMap, HashSet};

use banso_kit::{Result, db::uuid_in};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ConnectionTrait, DbBackend, Statement,
    sea_query::{ArrayType, CaseStatement, Expr, ExprTrait, Func, Iden, Query, SelectStatement},
};
use uuid::Uuid;

use super::{
    CHUNK, all, get, one,
    schema::{Accounts, DailyUsage as DU, DailyUsers as DS, EmailActivities as E, EventNameDays as N, Out},
};

/// `ids` in chunks a query can bind; one pass without a filter for `None`
/// (every account of the tenant).
fn chunks(ids: Option<&[Uuid]>) -> Vec<Option<&[Uuid]>> {
    match ids {
        Some(ids) => ids.chunks(CHUNK).map(Some).collect(),
        None => vec![None],
    }
}

/// One row of [`usage_in_buckets`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BucketUsage {
    pub account_id: Uuid,
    /// The bucket's first offset in days before today.
    pub bucket: u32,
    pub event_name: String,
    pub events: i64,
    pub quantity: f64,
    pub duration_secs: f64,
}

/// `SELECT account_id, <bucket> AS bucket FROM <table>` of the tenant's
/// days within the last cut; `None` without cuts. The bucket of a day is
/// the first offset of the range between cuts that holds it
/// ([`crate::domain::measure::bucket_start`]), compared as dates so that
/// both databases use their (…, day) indexes.
fn bucket_select<T: Iden + Copy + 'static>(
    table: T,
    [account, tenant_col, day]: [T; 3],
    tenant: &str,
    today: NaiveDate,
    cuts: &[u32],
) -> Option<SelectStatement> {
    let last = *cuts.last()?;
    let after = |c: u32| day_before(today, c);
    let mut case = CaseStatement::new();
    let mut start = 0;
    for c in cuts {
        case = case.case(Expr::col(day).gt(after(*c)), Expr::val(start as i32));
        start = *c;
    }
    let mut q = Query::select();
    q.column(account)
        .expr_as(case.finally(Expr::val(start as i32)), Out::Bucket)
        .from(table)
        .and_where(Expr::col(tenant_col).eq(tenant))
        .and_where(Expr::col(day).gt(after(last)))
        .and_where(Expr::col(day).lte(today));
    Some(q)
}

/// Offset `c` is the day `today - c`; a day is within `c` days when after
/// it. Cuts are at most 180 days (twice the longest window).
fn day_before(today: NaiveDate, c: u32) -> NaiveDate {
    today.checked_sub_days(chrono::Days::new(u64::from(c))).unwrap_or(NaiveDate::MIN)
}

/// PostgreSQL: `SELECT a.id AS account_id, u.bucket, <outer> FROM (the
/// distinct ids of $2) AS a CROSS JOIN LATERAL (SELECT <bucket>,
/// <inner> FROM <table> WHERE tenant_id = $1 AND account_id = a.id AND
/// <days within the last cut>) AS u <tail>`: one probe of the table's
/// (tenant_id, account_id, day, …) key per account, whatever its
/// statistics say. With the account as `= ANY($2)` of one statement, a
/// table grown since its last ANALYZE (autovacuum off, or not yet run)
/// was planned as a scan of the tenant's whole day range filtered row by
/// row: 56 ms a chunk of 350 accounts against 2.7 ms once analyzed.
/// `OFFSET 0` keeps the subquery a subquery: without it the planner pulls
/// it up into a join and, on the same stale statistics, scans the day
/// range once and filters the accounts — the plan this is to avoid.
/// `table` names its tenant, account and day columns as `daily_usage` does.
/// `None` without cuts.
fn bucket_lateral_pg(
    table: impl Iden,
    today: NaiveDate,
    cuts: &[u32],
    inner: &str,
    outer: &str,
    tail: &str,
) -> Option<String> {
    let last = *cuts.last()?;
    let mut case = String::from("CASE");
    let mut start = 0;
    for c in cuts {
        case.push_str(&format!(" WHEN {} > DATE '{}' THEN {start}", DU::Day.to_string(), day_before(today, *c)));
        start = *c;
    }
    case.push_str(&format!(" ELSE {start} END"));
    Some(format!(
        "SELECT a.id AS {account}, u.{bucket}, {outer} FROM (SELECT DISTINCT unnest($2::uuid[]) AS id) AS a \
         CROSS JOIN LATERAL (SELECT {case} AS {bucket}, {inner} FROM {table} \
           WHERE {tenant} = $1 AND {account} = a.id AND {day} > DATE '{first}' AND {day} <= DATE '{today}' \
           OFFSET 0) AS u {tail}",
        account = DU::AccountId.to_string(),
        bucket = Out::Bucket.to_string(),
        table = table.to_string(),
        tenant = DU::TenantId.to_string(),
        day = DU::Day.to_string(),
        first = day_before(today, last),
    ))
}

fn bucket_of(r: &sea_orm::QueryResult) -> Result<u32> {
    let b: i32 = get(r, Out::Bucket)?;
    u32::try_from(b).map_err(|_| super::corrupt("bucket", b))
}

/// Usage of `ids` summed per bucket of days between `cuts`
/// ([`crate::domain::measure::window_cuts`]); days past the last cut, and
/// after `today`, are left out.
pub(crate) async fn usage_in_buckets(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[Uuid],
    today: NaiveDate,
    cuts: &[u32],
) -> Result<Vec<BucketUsage>> {
    let mut out = Vec::new();
    let row = |r: &sea_orm::QueryResult| {
        Ok::<_, banso_kit::Error>(BucketUsage {
            account_id: get(r, DU::AccountId)?,
            bucket: bucket_of(r)?,
            event_name: get(r, DU::EventName)?,
            events: get(r, DU::Events)?,
            quantity: get(r, DU::Quantity)?,
            duration_secs: get(r, DU::DurationSecs)?,
        })
    };
    if conn.get_database_backend() == DbBackend::Postgres {
        let (name, events, quantity, duration) =
            (DU::EventName.to_string(), DU::Events.to_string(), DU::Quantity.to_string(), DU::DurationSecs.to_string());
        let Some(sql) = bucket_lateral_pg(
            DU::Table,
            today,
            cuts,
            &format!("{name}, {events}, {quantity}, {duration}"),
            &format!(
                "u.{name}, CAST(SUM(u.{events}) AS BIGINT) AS {events}, SUM(u.{quantity}) AS {quantity}, \
                 SUM(u.{duration}) AS {duration}"
            ),
            &format!("GROUP BY a.id, u.{bucket}, u.{name}", bucket = Out::Bucket.to_string()),
        ) else {
            return Ok(out);
        };
        for chunk in ids.chunks(CHUNK) {
            for r in conn.query_all_raw(lateral_statement(&sql, tenant, chunk)).await? {
                out.push(row(&r)?);
            }
        }
        return Ok(out);
    }
    let Some(mut q) = bucket_select(DU::Table, [DU::AccountId, DU::TenantId, DU::Day], tenant, today, cuts) else {
        return Ok(out);
    };
    q.column(DU::EventName)
        .expr_as(Expr::cust(format!("CAST(SUM({}) AS BIGINT)", DU::Events.to_string())), DU::Events)
        .expr_as(Func::sum(Expr::col(DU::Quantity)), DU::Quantity)
        .expr_as(Func::sum(Expr::col(DU::DurationSecs)), DU::DurationSecs)
        .group_by_col(DU::AccountId)
        .add_group_by([Expr::col(Out::Bucket), Expr::col(DU::EventName)]);
    for chunk in ids.chunks(CHUNK) {
        let mut q = q.clone();
        q.and_where(uuid_in(conn, Expr::col(DU::AccountId), chunk));
        for r in all(conn, &q).await? {
            out.push(row(&r)?);
        }
    }
    Ok(out)
}

/// [`bucket_lateral_pg`]'s statement for one chunk of accounts.
fn lateral_statement(sql: &str, tenant: &str, ids: &[Uuid]) -> Statement {
    let array = banso_kit::db::pg_array(ArrayType::Uuid, ids, |id| sea_orm::Value::from(*id));
    Statement::from_sql_and_values(DbBackend::Postgres, sql, [tenant.into(), array])
}

/// The distinct users of `ids` per bucket of days between `cuts`, as
/// [`usage_in_buckets`]: (account, bucket, user key).
pub(crate) async fn users_in_buckets(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[Uuid],
    today: NaiveDate,
    cuts: &[u32],
) -> Result<Vec<(Uuid, u32, String)>> {
    let mut out = Vec::new();
    if conn.get_database_backend() == DbBackend::Postgres {
        let user = DS::UserKey.to_string();
        let Some(sql) = bucket_lateral_pg(
            DS::Table,
            today,
            cuts,
            &user,
            &format!("u.{user}"),
            &format!("WHERE u.{user} <> '' GROUP BY a.id, u.{bucket}, u.{user}", bucket = Out::Bucket.to_string()),
        ) else {
            return Ok(out);
        };
        for chunk in ids.chunks(CHUNK) {
            for r in conn.query_all_raw(lateral_statement(&sql, tenant, chunk)).await? {
                out.push((get(&r, DS::AccountId)?, bucket_of(&r)?, get(&r, DS::UserKey)?));
            }
        }
        return Ok(out);
    }
    let Some(mut q) = bucket_select(DS::Table, [DS::AccountId, DS::TenantId, DS::Day], tenant, today, cuts) else {
        return Ok(out);
    };
    q.distinct().column(DS::UserKey).and_where(Expr::col(DS::UserKey).ne(""));
    for chunk in ids.chunks(CHUNK) {
        let mut q = q.clone();
        q.and_where(uuid_in(conn, Expr::col(DS::AccountId), chunk));
        for r in all(conn, &q).await? {
            out.push((get(&r, DS::AccountId)?, bucket_of(&r)?, get(&r, DS::UserKey)?));
        }
    }
    Ok(out)
}

/// Which of `ids` ever had usage rolled up (any day, any event name): one
/// index probe of `daily_usage` per account, stopping at its first row.
pub(crate) async fn ever_used(conn: &impl ConnectionTrait, tenant: &str, ids: &[Uuid]) -> Result<HashSet<Uuid>> {
    let mut out = HashSet::new();
    for chunk in ids.chunks(CHUNK) {
        let usage = Query::select()
            .expr(Expr::val(1))
            .from(DU::Table)
            .and_where(Expr::col((DU::Table, DU::TenantId)).equals((Accounts::Table, Accounts::TenantId)))
            .and_where(Expr::col((DU::Table, DU::AccountId)).equals((Accounts::Table, Accounts::AccountId)))
            .to_owned();
        let q = Query::select()
            .column((Accounts::Table, Accounts::AccountId))
            .from(Accounts::Table)
            .and_where(Expr::col((Accounts::Table, Accounts::TenantId)).eq(tenant))
            .and_where(uuid_in(conn, Expr::col((Accounts::Table, Accounts::AccountId)), chunk))
            .and_where(Expr::exists(usage))
            .to_owned();
        for r in all(conn, &q).await? {
            out.insert(get(&r, Accounts::AccountId)?);
        }
    }
    Ok(out)
}

/// E-mails (sent, replied) per account of `ids` in [start, end).
pub(crate) async fn email_counts(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[Uuid],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<HashMap<Uuid, (i64, i64)>> {
    let mut out: HashMap<Uuid, (i64, i64)> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let q = Query::select()
            .columns([E::AccountId, E::Replied])
            .expr_as(Func::count(Expr::col(E::ActivityId)), Out::N)
            .from(E::Table)
            .and_where(Expr::col(E::TenantId).eq(tenant))
            .and_where(uuid_in(conn, Expr::col(E::AccountId), chunk))
            .and_where(Expr::col(E::OccurTime).gte(start))
            .and_where(Expr::col(E::OccurTime).lt(end))
            .group_by_columns([E::AccountId, E::Replied])
            .to_owned();
        for r in all(conn, &q).await? {
            let e = out.entry(get(&r, E::AccountId)?).or_default();
            let n: i64 = get(&r, Out::N)?;
            if get::<bool>(&r, E::Replied)? {
                e.1 += n;
            } else {
                e.0 += n;
            }
        }
    }
    Ok(out)
}

/// Distinct event names the tenant used since `since` (the denominator of
/// feature breadth).
pub(crate) async fn tracked_event_names(conn: &impl ConnectionTrait, tenant: &str, since: NaiveDate) -> Result<usize> {
    let q = Query::select()
        .expr_as(Expr::cust(format!("COUNT(DISTINCT {})", N::EventName.to_string())), Out::N)
        .from(N::Table)
        .and_where(Expr::col(N::TenantId).eq(tenant))
        .and_where(Expr::col(N::Day).gte(since))
        .to_owned();
    let n = one(conn, &q).await?.map(|r| get::<i64>(&r, Out::N)).transpose()?.unwrap_or(0);
    Ok(usize::try_from(n).unwrap_or(0))
}

/// The daily counts of the events named `names` of `ids` over [from, to],
/// as rollups (only their `events`), per account. The database hands over
/// one row per account holding all its rows as JSON (`[[day, name's place
/// in names, events], …]`), in the primary key's order so that it groups
/// without sorting: the rows a database hands over one by one, not the
/// bytes in them, are what a replay of a large tenant spent its time on
/// (docs/benchmarks.md, *Backtests*). A replay of event-count measures
/// needs no more.
pub(crate) async fn daily_event_counts(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: Option<&[Uuid]>,
    from: NaiveDate,
    to: NaiveDate,
    names: &[String],
) -> Result<HashMap<Uuid, Vec<crate::domain::rollup::DailyRollup>>> {
    use crate::domain::rollup::DailyRollup;
    let mut out: HashMap<Uuid, Vec<DailyRollup>> = HashMap::new();
    if names.is_empty() {
        return Ok(out);
    }
    let mut place = CaseStatement::new();
    for (i, name) in names.iter().enumerate() {
        place = place.case(Expr::col(DU::EventName).eq(name.as_str()), Expr::val(i as i64));
    }
    let per_account = super::json_rows_of(conn, vec![Expr::col(DU::Day), place.into(), Expr::col(DU::Events)]);
    for chunk in chunks(ids) {
        let mut q = Query::select();
        q.column(DU::AccountId)
            .expr_as(per_account.clone(), Out::Usage)
            .from(DU::Table)
            .and_where(Expr::col(DU::TenantId).eq(tenant));
        if let Some(chunk) = chunk {
            q.and_where(uuid_in(conn, Expr::col(DU::AccountId), chunk));
        }
        q.and_where(Expr::col(DU::Day).gte(from))
            .and_where(Expr::col(DU::Day).lte(to))
            .and_where(Expr::col(DU::EventName).is_in(names.iter().cloned()))
            .group_by_col(DU::AccountId);
        for r in all(conn, &q).await? {
            let account: Uuid = get(&r, DU::AccountId)?;
            let days: Vec<(NaiveDate, usize, i64)> = super::json_rows(&r, Out::Usage, "daily event counts")?;
            let rows = out.entry(account).or_default();
            for (day, name, events) in days {
                let name = names.get(name).ok_or_else(|| super::corrupt("daily event counts", name))?;
                if events != 0 {
                    rows.push(DailyRollup { events, ..DailyRollup::new(day, name.as_str()) });
                }
            }
        }
    }
    Ok(out)
}

/// The daily rollups of `ids` (every account of the tenant for `None`) over
/// [from, to], with their distinct users when `with_users`, per account:
/// what a replay of measures beyond event counts reads.
pub(crate) async fn daily_rollups(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: Option<&[Uuid]>,
    from: NaiveDate,
    to: NaiveDate,
    with_users: bool,
) -> Result<HashMap<Uuid, Vec<crate::domain::rollup::DailyRollup>>> {
    use crate::domain::rollup::DailyRollup;
    let mut out: HashMap<Uuid, Vec<DailyRollup>> = HashMap::new();
    for chunk in chunks(ids) {
        let mut q = Query::select()
            .columns([DU::AccountId, DU::Day, DU::EventName, DU::Events, DU::Quantity, DU::DurationSecs])
            .from(DU::Table)
            .and_where(Expr::col(DU::TenantId).eq(tenant))
            .and_where(Expr::col(DU::Day).gte(from))
            .and_where(Expr::col(DU::Day).lte(to))
            .to_owned();
        if let Some(chunk) = chunk {
            q.and_where(uuid_in(conn, Expr::col(DU::AccountId), chunk));
        }
        // Where each (account, day, name) row is, for the users read after.
        let mut index: HashMap<(Uuid, NaiveDate, String), usize> = HashMap::new();
        for r in all(conn, &q).await? {
            let account: Uuid = get(&r, DU::AccountId)?;
            let day: NaiveDate = get(&r, DU::Day)?;
            let name: String = get(&r, DU::EventName)?;
            let rows = out.entry(account).or_default();
            if with_users {
                index.insert((account, day, name.clone()), rows.len());
            }
            rows.push(DailyRollup {
                events: get(&r, DU::Events)?,
                quantity: get(&r, DU::Quantity)?,
                duration_secs: get(&r, DU::DurationSecs)?,
                ..DailyRollup::new(day, name)
            });
        }
        if !with_users {
            continue;
        }
        let mut q = Query::select()
            .columns([DS::AccountId, DS::Day, DS::EventName, DS::UserKey])
            .from(DS::Table)
            .and_where(Expr::col(DS::TenantId).eq(tenant))
            .and_where(Expr::col(DS::Day).gte(from))
            .and_where(Expr::col(DS::Day).lte(to))
            .to_owned();
        if let Some(chunk) = chunk {
            q.and_where(uuid_in(conn, Expr::col(DS::AccountId), chunk));
        }
        for r in all(conn, &q).await? {
            let key: (Uuid, NaiveDate, String) = (get(&r, DS::AccountId)?, get(&r, DS::Day)?, get(&r, DS::EventName)?);
            let user: String = get(&r, DS::UserKey)?;
            let rows = out.entry(key.0).or_default();
            match index.get(&key) {
                Some(&i) => {
                    rows[i].add_user(&user);
                }
                None => {
                    index.insert(key.clone(), rows.len());
                    let mut row = DailyRollup::new(key.1, key.2);
                    row.add_user(&user);
                    rows.push(row);
                }
            }
        }
    }
    Ok(out)
}

/// The first day of rolled-up usage of each of `ids` that had any.
pub(crate) async fn first_usage_days(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: Option<&[Uuid]>,
) -> Result<HashMap<Uuid, NaiveDate>> {
    let mut out = HashMap::new();
    let Some(ids) = ids else {
        // Every account's: a walk from account to account down the primary
        // key, one index seek per account and one for its first day (a
        // GROUP BY would read every row of the tenant's usage).
        let backend = conn.get_database_backend();
        let (p, n) = if backend == DbBackend::Postgres { (["$1"; 3], 1) } else { (["?"; 3], 3) };
        let sql = format!(
            "WITH RECURSIVE a(id) AS ( \
               SELECT (SELECT account_id FROM daily_usage WHERE tenant_id = {} ORDER BY account_id LIMIT 1) \
               UNION ALL \
               SELECT (SELECT account_id FROM daily_usage WHERE tenant_id = {} AND account_id > a.id \
                       ORDER BY account_id LIMIT 1) \
               FROM a WHERE a.id IS NOT NULL) \
             SELECT id AS account_id, \
               (SELECT day FROM daily_usage u WHERE u.tenant_id = {} AND u.account_id = a.id ORDER BY day LIMIT 1) \
                 AS day \
             FROM a WHERE id IS NOT NULL",
            p[0], p[1], p[2]
        );
        let values = std::iter::repeat_n(sea_orm::Value::from(tenant), n);
        for r in conn.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await? {
            out.insert(get(&r, DU::AccountId)?, get(&r, DU::Day)?);
        }
        return Ok(out);
    };
    for chunk in ids.chunks(CHUNK) {
        let q = Query::select()
            .column(DU::AccountId)
            .expr_as(Func::min(Expr::col(DU::Day)), DU::Day)
            .from(DU::Table)
            .and_where(Expr::col(DU::TenantId).eq(tenant))
            .and_where(uuid_in(conn, Expr::col(DU::AccountId), chunk))
            .group_by_col(DU::AccountId)
            .to_owned();
        for r in all(conn, &q).await? {
            out.insert(get(&r, DU::AccountId)?, get(&r, DU::Day)?);
        }
    }
    Ok(out)
}

/// The days each event name was used by the tenant in [from, to].
pub(crate) async fn event_name_days(
    conn: &impl ConnectionTrait,
    tenant: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, String)>> {
    let q = Query::select()
        .columns([N::Day, N::EventName])
        .from(N::Table)
        .and_where(Expr::col(N::TenantId).eq(tenant))
        .and_where(Expr::col(N::Day).gte(from))
        .and_where(Expr::col(N::Day).lte(to))
        .to_owned();
    all(conn, &q).await?.iter().map(|r| Ok((get(r, N::Day)?, get(r, N::EventName)?))).collect()
}

/// Writes past days' rollups (account, day, event name, events), as the
/// rollup task would have: tests and the synthetic tenants of the
/// benchmarks need usage older than the late window.
#[cfg(any(test, feature = "bench"))]
pub(crate) async fn insert_rollups(
    conn: &impl ConnectionTrait,
    tenant: &str,
    rows: &[(Uuid, NaiveDate, &str, i64)],
) -> Result<()> {
    for chunk in rows.chunks(CHUNK) {
        let values = chunk.iter().map(|(account, day, name, events)| {
            [
                (DU::TenantId, Expr::val(tenant)),
                (DU::AccountId, Expr::val(*account)),
                (DU::Day, Expr::val(*day)),
                (DU::EventName, Expr::val(*name)),
                (DU::Events, Expr::val(*events)),
                (DU::Quantity, Expr::val(*events as f64)),
                (DU::DurationSecs, Expr::val(0.0)),
            ]
        });
        if let Some(q) = super::insert(DU::Table, values)? {
            super::exec(conn, &q).await?;
        }
    }
    Ok(())
}

/// Writes a past day's rollup of one account.
#[cfg(test)]
pub(crate) async fn record_past_rollup(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account: Uuid,
    day: NaiveDate,
    event_name: &str,
    events: i64,
) -> Result<()> {
    insert_rollups(conn, tenant, &[(account, day, event_name, events)]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    /// What a replay reads, packed one row per account: the counts of the
    /// named events in the range only (zero days left out), every
    /// account's first usage day however old, the daily snapshots by
    /// account then day, and nothing of another tenant, on either backend.
    #[tokio::test]
    async fn a_replay_reads_counts_first_days_and_snapshots_one_row_per_account() {
        let db = banso_testkit::fresh_database().await.unwrap();
        let conn = db.connect::<crate::migration::Migrator>(crate::NAME).await.unwrap();
        let (a, b, quiet) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        insert_rollups(
            &conn,
            "acme",
            &[
                (a, day(1), "noise", 4), // first usage, before the range and not a named event
                (a, day(5), "login", 3),
                (a, day(5), "report", 1),
                (a, day(6), "login", 0),
                (a, day(6), "noise", 9),
                (a, day(9), "report", 2),
                (a, day(12), "login", 7), // after the range
                (b, day(7), "login", 5),
            ],
        )
        .await
        .unwrap();
        insert_rollups(&conn, "globex", &[(a, day(2), "login", 100), (quiet, day(3), "login", 1)]).await.unwrap();
        let names = ["login".to_owned(), "report".to_owned()];
        for ids in [vec![a, b, quiet], vec![b]] {
            let got = daily_event_counts(&conn, "acme", Some(&ids), day(4), day(10), &names).await.unwrap();
            let mut got: Vec<_> = got
                .into_iter()
                .flat_map(|(account, rows)| rows.into_iter().map(move |r| (account, r.day, r.event_name, r.events)))
                .collect();
            got.sort();
            let mut want = vec![(b, day(7), "login".to_owned(), 5)];
            if ids.contains(&a) {
                want.extend([
                    (a, day(5), "login".to_owned(), 3),
                    (a, day(5), "report".to_owned(), 1),
                    (a, day(9), "report".to_owned(), 2),
                ]);
            }
            want.sort();
            assert_eq!(got, want, "{ids:?}");
        }
        let first = first_usage_days(&conn, "acme", None).await.unwrap();
        assert_eq!(first, HashMap::from([(a, day(1)), (b, day(7))]));
        assert_eq!(first_usage_days(&conn, "acme", Some(&[b, quiet])).await.unwrap(), HashMap::from([(b, day(7))]));
        assert!(first_usage_days(&conn, "initech", None).await.unwrap().is_empty());

        use crate::{domain::score::Band, store::history};
        for (tenant, account, d, score, band) in [
            ("acme", b, 6, 80.0, Band::Green),
            ("acme", a, 6, 30.5, Band::Red),
            ("acme", a, 5, 55.0, Band::Yellow),
            ("acme", a, 11, 50.0, Band::Yellow), // after the range
            ("globex", a, 6, 90.0, Band::Green),
        ] {
            history::record_past_daily(&conn, tenant, account, day(d), score, band).await.unwrap();
        }
        let got = history::daily_in_range(&conn, "acme", day(4), day(10)).await.unwrap();
        let mut want =
            vec![(a, day(5), 55.0, Band::Yellow), (a, day(6), 30.5, Band::Red), (b, day(6), 80.0, Band::Green)];
        want.sort_by_key(|w| (w.0, w.1));
        assert_eq!(got, want);
        assert!(history::daily_in_range(&conn, "initech", day(4), day(10)).await.unwrap().is_empty());
    }

    /// Rollups of two tenants, days in and out of the cuts; the usage read
    /// by bucket must be the same on either backend (PostgreSQL takes its
    /// own statement), ids repeated in the request counted once.
    #[tokio::test]
    async fn usage_and_users_are_summed_per_bucket_of_days() {
        let db = banso_testkit::fresh_database().await.unwrap();
        let conn = db.connect::<crate::migration::Migrator>(crate::NAME).await.unwrap();
        let (a, b, other, quiet) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let today = day(20);
        // Cuts 1, 7, 14: buckets [0,1) = today, [1,7) = days 14..19, [7,14) = days 7..13.
        let cuts = [1, 7, 14];
        insert_rollups(
            &conn,
            "acme",
            &[
                (a, day(20), "login", 2),
                (a, day(19), "login", 3),
                (a, day(14), "login", 4),
                (a, day(14), "report", 1),
                (a, day(13), "login", 5),
                (a, day(7), "login", 6),
                (a, day(6), "login", 100),  // past the last cut
                (a, day(21), "login", 100), // after today
                (b, day(10), "export", 7),
            ],
        )
        .await
        .unwrap();
        insert_rollups(&conn, "globex", &[(other, day(20), "login", 9), (a, day(20), "login", 100)]).await.unwrap();
        for (account, d, user) in
            [(a, 20, "u1"), (a, 19, "u1"), (a, 19, "u2"), (a, 13, "u3"), (a, 13, ""), (b, 6, "u4")]
        {
            let q = Query::insert()
                .into_table(DS::Table)
                .columns([DS::TenantId, DS::AccountId, DS::Day, DS::EventName, DS::UserKey])
                .values_panic(["acme".into(), account.into(), day(d).into(), "login".into(), user.into()])
                .to_owned();
            super::super::exec(&conn, &q).await.unwrap();
        }

        let ids = [a, b, a, quiet];
        let mut usage = usage_in_buckets(&conn, "acme", &ids, today, &cuts).await.unwrap();
        usage.sort_by(|x, y| (x.account_id, x.bucket, &x.event_name).cmp(&(y.account_id, y.bucket, &y.event_name)));
        let mut want =
            vec![(a, 0, "login", 2), (a, 1, "login", 7), (a, 1, "report", 1), (a, 7, "login", 11), (b, 7, "export", 7)];
        want.sort_by(|x, y| (x.0, x.1, x.2).cmp(&(y.0, y.1, y.2)));
        let got: Vec<_> = usage.iter().map(|u| (u.account_id, u.bucket, u.event_name.as_str(), u.events)).collect();
        assert_eq!(got, want);
        for u in &usage {
            assert_eq!(u.quantity, u.events as f64);
            assert_eq!(u.duration_secs, 0.0);
        }

        let mut users = users_in_buckets(&conn, "acme", &ids, today, &cuts).await.unwrap();
        users.sort();
        let mut want =
            vec![(a, 0, "u1".to_owned()), (a, 1, "u1".to_owned()), (a, 1, "u2".to_owned()), (a, 7, "u3".to_owned())];
        want.sort();
        assert_eq!(users, want);

        assert!(usage_in_buckets(&conn, "acme", &ids, today, &[]).await.unwrap().is_empty());
        assert!(users_in_buckets(&conn, "acme", &ids, today, &[]).await.unwrap().is_empty());
    }
}
