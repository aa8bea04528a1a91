//! What scoring reads besides scores and measure values, one query per kind
//! of input for a whole chunk of accounts: usage and distinct users totalled
//! per window, whether an account ever had usage, e-mails, the denominator
//! of feature breadth; and the daily rollups a replay reads.

use std::collections::{HashMap, HashSet};

use banso_kit::{Result, db::uuid_in};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ConnectionTrait, DbBackend, Statement,
    sea_query::{ArrayType, CaseStatement, Expr, ExprTrait, Func, Iden, Query},
};
use uuid::Uuid;

use crate::domain::measure::{Totals, Windows};

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

/// What [`usage_totals`] read of one account.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AccountTotals {
    pub totals: Totals,
    /// Whether it had usage rolled up in any window.
    pub used: bool,
}

/// A statement's text and parameters, in the placeholder style of its
/// backend (`$n` or `?`, in the order they appear).
struct Sql {
    backend: DbBackend,
    values: Vec<sea_orm::Value>,
}

impl Sql {
    fn bind(&mut self, v: impl Into<sea_orm::Value>) -> String {
        self.values.push(v.into());
        if self.backend == DbBackend::Postgres { format!("${}", self.values.len()) } else { "?".to_owned() }
    }

    /// A date literal (the days compared are computed, never input).
    fn date(&self, d: NaiveDate) -> String {
        if self.backend == DbBackend::Postgres { format!("DATE '{d}'") } else { format!("'{d}'") }
    }

    /// `day` within `span` (offsets [first, first + days) before `today`),
    /// the statement's rows being within the windows' reach already.
    fn within(&self, today: NaiveDate, (first, days): (u32, u32)) -> String {
        let day = DU::Day.to_string();
        let mut c = format!("{day} > {}", self.date(day_before(today, first + days)));
        if first > 0 {
            c.push_str(&format!(" AND {day} <= {}", self.date(day_before(today, first))));
        }
        c
    }

    fn bigint(&self, e: &str) -> String {
        format!("CAST(COALESCE({e}, 0) AS BIGINT)")
    }

    fn double(&self, e: &str) -> String {
        let ty = if self.backend == DbBackend::Postgres { "DOUBLE PRECISION" } else { "REAL" };
        format!("CAST(COALESCE({e}, 0) AS {ty})")
    }

    /// `account_id = a.id` of the lateral probe (PostgreSQL) or `account_id
    /// IN (…)` of the chunk (SQLite).
    fn accounts(&mut self, ids: &[Uuid]) -> String {
        let account = DU::AccountId.to_string();
        if self.backend == DbBackend::Postgres {
            return format!("{account} = a.id");
        }
        let list: Vec<String> = ids.iter().map(|id| self.bind(*id)).collect();
        format!("{account} IN ({})", list.join(", "))
    }
}

/// Offset `c` is the day `today - c`; a day is within `c` days when after
/// it. Windows reach at most 180 days (twice the longest).
fn day_before(today: NaiveDate, c: u32) -> NaiveDate {
    today.checked_sub_days(chrono::Days::new(u64::from(c))).unwrap_or(NaiveDate::MIN)
}

/// Each account's usage totals over `windows` ([`Totals`]; the reference is
/// [`crate::domain::measure::totals_of`]), computed by the database: one row
/// per account instead of its rollups, which scoring used to sum and
/// de-duplicate itself. With `users`, its distinct users per window too
/// (else 0). Days after `today` are left out. Accounts without usage or
/// users in the windows may be absent.
///
/// Both aggregate in two steps, so no window needs a `COUNT(DISTINCT …)`
/// (a sort each): the usage per event name (its events and durations per
/// window), then per account (the names with events per window, the
/// counted names' events); the users per user key (in which windows it
/// was active), then per account.
///
/// On PostgreSQL one statement a chunk, a `LATERAL` probe of the
/// (tenant_id, account_id, day, …) keys per account (as
/// [`crate::store::history::daily_on_or_before`] reads; the aggregate keeps
/// the subquery a subquery): a `= ANY` of the chunk, on a table grown since
/// its last ANALYZE, was planned as a scan of the tenant's whole day range
/// (docs/benchmarks.md, *Full recompute*). On SQLite a `GROUP BY` of the
/// chunk, usage and users in two statements.
pub(crate) async fn usage_totals(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[Uuid],
    today: NaiveDate,
    windows: &Windows,
    users: bool,
) -> Result<HashMap<Uuid, AccountTotals>> {
    let mut out: HashMap<Uuid, AccountTotals> = HashMap::new();
    if windows.is_empty() || ids.is_empty() {
        return Ok(out);
    }
    let backend = conn.get_database_backend();
    let pg = backend == DbBackend::Postgres;
    let (account, day, name) = (DU::AccountId.to_string(), DU::Day.to_string(), DU::EventName.to_string());
    let (events, secs, user) = (DU::Events.to_string(), DU::DurationSecs.to_string(), DS::UserKey.to_string());
    let (reach, last) = (day_before(today, windows.reach()), today);
    for chunk in ids.chunks(CHUNK) {
        let mut q = Sql { backend, values: Vec::new() };
        // Usage: per event name, then per account.
        let mut outer = vec!["COUNT(*) AS n".to_owned()];
        let mut inner = vec![name.clone()];
        for (i, span) in windows.spans.iter().enumerate() {
            let w = q.within(today, *span);
            inner.push(format!("{} AS e{i}", q.bigint(&format!("SUM(CASE WHEN {w} THEN {events} ELSE 0 END)"))));
            inner.push(format!("SUM(CASE WHEN {w} THEN {secs} ELSE 0 END) AS s{i}"));
            outer.push(format!("{} AS s{i}", q.double(&format!("SUM(s{i})"))));
            outer.push(format!("{} AS k{i}", q.bigint(&format!("SUM(CASE WHEN e{i} > 0 THEN 1 ELSE 0 END)"))));
        }
        for (j, (span, n)) in windows.counted.iter().enumerate() {
            let n = q.bind(n.as_str());
            outer
                .push(format!("{} AS c{j}", q.bigint(&format!("SUM(CASE WHEN {name} = {n} THEN e{span} ELSE 0 END)"))));
        }
        let usage_where = |q: &mut Sql, table: &str| {
            let t = q.bind(tenant);
            let a = q.accounts(chunk);
            format!(
                "FROM {table} WHERE {tenant_col} = {t} AND {a} AND {day} > {} AND {day} <= {}",
                q.date(reach),
                q.date(last),
                tenant_col = DU::TenantId.to_string(),
            )
        };
        // SQLite groups the chunk by account; PostgreSQL's probe is one account.
        let (group, key) = if pg { ("", String::new()) } else { (", ", account.clone()) };
        let per_account = if pg { String::new() } else { format!(" GROUP BY {account}") };
        let usage = {
            let from = usage_where(&mut q, &DU::Table.to_string());
            format!(
                "SELECT {key}{group}{} FROM (SELECT {key}{group}{} {from} GROUP BY {key}{group}{name}) AS g{per_account}",
                outer.join(", "),
                inner.join(", "),
            )
        };
        let users_sql = |q: &mut Sql| {
            let mut outer = vec!["COUNT(*) AS m".to_owned()];
            let mut inner = Vec::new();
            for (i, span) in windows.spans.iter().enumerate() {
                let w = q.within(today, *span);
                inner.push(format!("MAX(CASE WHEN {w} THEN 1 ELSE 0 END) AS w{i}"));
                outer.push(format!("{} AS u{i}", q.bigint(&format!("SUM(w{i})"))));
            }
            let from = usage_where(q, &DS::Table.to_string());
            format!(
                "SELECT {key}{group}{} FROM (SELECT {key}{group}{} {from} AND {user} <> '' GROUP BY {key}{group}{user}) \
                 AS g{per_account}",
                outer.join(", "),
                inner.join(", "),
            )
        };
        let totals = |r: &sea_orm::QueryResult, t: &mut AccountTotals| -> Result<()> {
            let n: i64 = r.try_get("", "n")?;
            t.used = n > 0;
            for (i, s) in t.totals.spans.iter_mut().enumerate() {
                s.duration_secs = r.try_get("", &format!("s{i}"))?;
                s.names = r.try_get("", &format!("k{i}"))?;
            }
            for (j, c) in t.totals.counted.iter_mut().enumerate() {
                *c = r.try_get("", &format!("c{j}"))?;
            }
            Ok(())
        };
        let user_totals = |r: &sea_orm::QueryResult, t: &mut AccountTotals| -> Result<()> {
            for (i, s) in t.totals.spans.iter_mut().enumerate() {
                s.users = r.try_get("", &format!("u{i}"))?;
            }
            Ok(())
        };
        let blank = || AccountTotals { totals: Totals::zero(windows), used: false };
        if pg {
            // One statement: both probes per account, one row each.
            let array = q.bind(banso_kit::db::pg_array(ArrayType::Uuid, chunk, |id| sea_orm::Value::from(*id)));
            let users_lateral =
                if users { format!("CROSS JOIN LATERAL ({}) AS s", users_sql(&mut q)) } else { String::new() };
            let sql = format!(
                "SELECT a.id AS {account}, u.*{} FROM (SELECT DISTINCT unnest({array}::uuid[]) AS id) AS a                  CROSS JOIN LATERAL ({usage}) AS u {users_lateral}",
                if users { ", s.*" } else { "" },
            );
            for r in conn.query_all_raw(Statement::from_sql_and_values(backend, sql, q.values)).await? {
                let id: Uuid = get(&r, DU::AccountId)?;
                let t = out.entry(id).or_insert_with(blank);
                totals(&r, t)?;
                if users {
                    user_totals(&r, t)?;
                }
            }
            continue;
        }
        for r in conn.query_all_raw(Statement::from_sql_and_values(backend, usage, q.values)).await? {
            totals(&r, out.entry(get(&r, DU::AccountId)?).or_insert_with(blank))?;
        }
        if users {
            let mut q = Sql { backend, values: Vec::new() };
            let sql = users_sql(&mut q);
            for r in conn.query_all_raw(Statement::from_sql_and_values(backend, sql, q.values)).await? {
                user_totals(&r, out.entry(get(&r, DS::AccountId)?).or_insert_with(blank))?;
            }
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

    /// Rollups of two tenants, days in and out of the windows: the totals
    /// the database computes equal the reference's from the same rows
    /// ([`crate::domain::measure::totals_of`]), on either backend
    /// (PostgreSQL takes its own statement), ids repeated in the request
    /// counted once, users only when asked for.
    #[tokio::test]
    async fn usage_totals_over_windows_equal_the_reference() {
        use crate::domain::{
            measure::{parse_measure, totals_of},
            rollup::DailyRollup,
        };
        let db = banso_testkit::fresh_database().await.unwrap();
        let conn = db.connect::<crate::migration::Migrator>(crate::NAME).await.unwrap();
        let (a, b, other, quiet) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let today = day(20);
        let defs: Vec<_> = ["active_users_7d", "change:events_7d:login", "events_1d:report", "usage_minutes_7d"]
            .iter()
            .chain(&["feature_breadth_1d", "events_7d:never"])
            .map(|id| parse_measure(id).unwrap())
            .collect();
        // Spans [0,1), [1,1), [0,7), [7,7): days 20, 19, 14..20, 7..13.
        let windows = Windows::of(&defs);
        assert_eq!(windows.reach(), 14);
        // (account, day, name, events, duration, users)
        type Row<'a> = (Uuid, u32, &'a str, i64, f64, &'a [&'a str]);
        let rows: Vec<Row> = vec![
            (a, 20, "login", 2, 30.0, &["u1"]),
            (a, 19, "login", 3, 0.5, &["u1", "u2"]),
            (a, 14, "login", 4, 60.0, &[]),
            (a, 14, "report", 1, 0.25, &["u5"]),
            (a, 13, "login", 5, 1.0, &["u3", ""]),
            (a, 7, "login", 6, 2.0, &["u1"]),
            (a, 6, "login", 100, 100.0, &["u9"]),  // past the reach
            (a, 21, "login", 100, 100.0, &["u9"]), // after today
            (a, 20, "report", 0, 0.0, &[]),        // no events: not a name used
            (b, 10, "export", 7, 4.0, &["u4"]),
            (b, 20, "report", 2, 0.0, &["u4", "u6"]),
        ];
        let mut daily: HashMap<Uuid, Vec<DailyRollup>> = HashMap::new();
        let mut usage = Vec::new();
        for (account, d, name, events, secs, users) in &rows {
            usage.push((*account, day(*d), *name, *events));
            let mut r = DailyRollup { events: *events, duration_secs: *secs, ..DailyRollup::new(day(*d), *name) };
            for u in *users {
                r.add_user(u);
                let q = Query::insert()
                    .into_table(DS::Table)
                    .columns([DS::TenantId, DS::AccountId, DS::Day, DS::EventName, DS::UserKey])
                    .values_panic(["acme".into(), (*account).into(), day(*d).into(), (*name).into(), (*u).into()])
                    .to_owned();
                super::super::exec(&conn, &q).await.unwrap();
            }
            daily.entry(*account).or_default().push(r);
        }
        insert_rollups(&conn, "acme", &usage).await.unwrap();
        for (account, d, name, secs) in rows.iter().map(|r| (r.0, r.1, r.2, r.4)) {
            let q = Query::update()
                .table(DU::Table)
                .value(DU::DurationSecs, secs)
                .and_where(Expr::col(DU::AccountId).eq(account))
                .and_where(Expr::col(DU::Day).eq(day(d)))
                .and_where(Expr::col(DU::EventName).eq(name))
                .to_owned();
            super::super::exec(&conn, &q).await.unwrap();
        }
        insert_rollups(&conn, "globex", &[(other, day(20), "login", 9), (a, day(20), "login", 100)]).await.unwrap();

        let ids = [a, b, a, quiet];
        for users in [true, false] {
            let got = usage_totals(&conn, "acme", &ids, today, &windows, users).await.unwrap();
            for id in [a, b] {
                let mut want = totals_of(&windows, &daily[&id], today);
                if !users {
                    want.spans.iter_mut().for_each(|s| s.users = 0);
                }
                assert_eq!(got[&id], AccountTotals { totals: want, used: true }, "{id} users {users}");
            }
            // Nothing in the windows: zero, or absent.
            if let Some(q) = got.get(&quiet) {
                assert_eq!(*q, AccountTotals { totals: Totals::zero(&windows), used: false });
            }
            assert!(!got.contains_key(&other));
        }
        // The reference's figures, spelled out for account a.
        let t = totals_of(&windows, &daily[&a], today);
        let span = |first, days| windows.spans.iter().position(|s| *s == (first, days)).unwrap();
        assert_eq!(t.spans[span(0, 7)].users, 3); // u1, u2 (days 19, 20), u5 (day 14)
        assert_eq!(t.spans[span(7, 7)].users, 2); // u3 (day 13), u1 (day 7)
        assert_eq!(t.spans[span(0, 1)].names, 1); // login (report had no events)
        // report [0,1), login and never [0,7), report [1,1), login and never [7,7).
        assert_eq!(t.counted, [0, 2 + 3 + 4, 0, 0, 5 + 6, 0]);
        assert!(usage_totals(&conn, "acme", &ids, today, &Windows::default(), true).await.unwrap().is_empty());
    }
}
