//! Usage ingest and its rollups.
//!
//! An ingest stores a batch's new raw events and one `ingest_batches` row in
//! one transaction and returns: that is the acknowledgement, and all it
//! costs on PostgreSQL is a duplicate check and a binary COPY. The rollup
//! task ([`crate::rollups`]) then folds pending batches into the daily
//! rollups with [`roll_up`], which marks them rolled up in the same
//! transaction. A batch is named by its `ingest_time`, which every one of
//! its events carries and which is unique within the tenant, so the events
//! of a batch are found by the `usage_events (ingest_time, tenant_id)` index.
//!
//! Both own their transaction rather than a use case's [`banso_events::Tx`]:
//! the PostgreSQL ingest speaks COPY through the driver (and starts over on
//! a lost race), and a rollup spans tenants, so it records its UsageSeen
//! events in the outbox itself (the caller wakes the relay).

use std::{
    collections::{BTreeMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
};

use banso_kit::{Error, Result};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value,
    sea_query::{
        Expr, ExprTrait, Func, Iden, InsertStatement, LockBehavior, LockType, OnConflict, Order, Query, SelectStatement,
    },
};
use uuid::Uuid;

use super::{
    CHUNK, all, exec, get, insert, one,
    schema::{
        DailyUsage as DU, DailyUsers as DS, EventNameDays as N, IngestBatches as B, LastUsage as L, Out,
        UsageEvents as UE,
    },
};

/// An event that passed validation, with its account resolved.
#[derive(Debug, Clone)]
pub(crate) struct AcceptedEvent {
    pub event_id: String,
    pub account_id: Uuid,
    pub user_key: String,
    pub event_name: String,
    pub occur_time: DateTime<Utc>,
    /// The tenant's day of `occur_time`.
    pub day: NaiveDate,
    pub quantity: f64,
    pub duration_secs: Option<f64>,
    pub properties: serde_json::Value,
}

/// How often an ingest that lost a race for an event id to a concurrent
/// batch (a unique violation or a deadlock during its COPY, [`lost_race`])
/// starts over; each retry's duplicate check sees the other batch's
/// committed events.
const RACE_RETRIES: usize = 5;

/// What one [`roll_up`] folded.
#[derive(Debug, Default)]
pub(crate) struct RolledUp {
    pub batches: usize,
    pub events: i64,
    /// The oldest batch's ingest time: how far behind the rollups were.
    pub oldest: Option<DateTime<Utc>>,
    /// Accounts whose rollups changed, per tenant: to rescore.
    pub touched: BTreeMap<String, Vec<Uuid>>,
    /// UsageSeen events recorded in the outbox: the relay is to be woken.
    pub seen: usize,
}

/// The ingest's state in this process: the batch clock, and whether the
/// last batch held events stored before.
#[derive(Clone, Default)]
pub(crate) struct Ingest {
    /// The last batch time handed out by this process ([`Ingest::batch_time`]).
    batch_micros: Arc<AtomicI64>,
    /// Whether the last batch this process checked held stored events: the
    /// PostgreSQL ingest then looks before it copies.
    saw_duplicates: Arc<AtomicBool>,
}

/// A stored event's values, in the order of [`UE::ROW`].
fn event_row(tenant: &str, e: &AcceptedEvent, ingest_time: DateTime<Utc>) -> [(UE, Expr); 11] {
    [
        (UE::TenantId, Expr::val(tenant)),
        (UE::EventId, Expr::val(e.event_id.as_str())),
        (UE::AccountId, Expr::val(e.account_id)),
        (UE::UserKey, Expr::val(e.user_key.as_str())),
        (UE::EventName, Expr::val(e.event_name.as_str())),
        (UE::OccurTime, Expr::val(e.occur_time)),
        (UE::Day, Expr::val(e.day)),
        (UE::Quantity, Expr::val(e.quantity)),
        (UE::DurationSecs, Expr::val(e.duration_secs)),
        (UE::Properties, Expr::val(Value::Json(Some(Box::new(e.properties.clone()))))),
        (UE::IngestTime, Expr::val(ingest_time)),
    ]
}

/// `events` as one binary COPY into `usage_events`, stamped `ingest_time`:
/// the values of each row in the order of [`UE::ROW`].
async fn copy_events(
    conn: &mut sea_orm::sqlx::PgConnection,
    tenant: &str,
    events: &[&AcceptedEvent],
    ingest_time: DateTime<Utc>,
) -> std::result::Result<(), sea_orm::sqlx::Error> {
    let mut rows = banso_kit::db::copy::BinaryCopy::new();
    for e in events {
        rows.row(UE::ROW.len() as i16);
        for column in UE::ROW {
            match column {
                UE::TenantId => rows.text(tenant),
                UE::EventId => rows.text(&e.event_id),
                UE::AccountId => rows.uuid(e.account_id),
                UE::UserKey => rows.text(&e.user_key),
                UE::EventName => rows.text(&e.event_name),
                UE::OccurTime => rows.timestamptz(e.occur_time),
                UE::Day => rows.date(e.day),
                UE::Quantity => rows.f64(e.quantity),
                UE::DurationSecs => match e.duration_secs {
                    Some(d) => rows.f64(d),
                    None => rows.null(),
                },
                UE::Properties => rows.text(&e.properties.to_string()),
                UE::IngestTime => rows.timestamptz(ingest_time),
                UE::Table => {}
            }
        }
    }
    let columns: Vec<String> = UE::ROW.iter().map(|c| c.to_string()).collect();
    let sql = format!("COPY {} ({}) FROM STDIN (FORMAT binary)", UE::Table.to_string(), columns.join(", "));
    let mut copy = conn.copy_in_raw(&sql).await?;
    copy.send(rows.finish()).await?;
    copy.finish().await?;
    Ok(())
}

/// `INSERT INTO table (key) SELECT DISTINCT key … ORDER BY key ON CONFLICT DO
/// NOTHING` over `select`'s rows (of `usage_events`): each target column
/// beside the column of the events it takes; in key order, so that
/// concurrent folds take the rows' locks in the same order.
fn insert_distinct<T: Iden + Copy + 'static, const K: usize>(
    table: T,
    key: [(T, UE); K],
    mut select: SelectStatement,
) -> Result<InsertStatement> {
    select.distinct().columns(key.map(|(_, from)| from));
    for (_, from) in key {
        select.order_by(from, Order::Asc);
    }
    Ok(Query::insert()
        .into_table(table)
        .columns(key.map(|(to, _)| to))
        .select_from(select)
        .map_err(|e| Error::internal(anyhow::anyhow!("{e}")))?
        .on_conflict(OnConflict::columns(key.map(|(to, _)| to)).do_nothing().to_owned())
        .to_owned())
}

/// A concurrent batch stored, or is storing, one of the same new ids: a
/// unique violation, or a deadlock when two batches hold the same ids in
/// different orders (each COPY waiting for the other's uncommitted key; the
/// server fails one). Either way the batch starts over.
fn lost_race(e: &sea_orm::sqlx::Error) -> bool {
    matches!(sql_state(e).as_deref(), Some("23505" | "40P01"))
}

fn unique_violation(e: &sea_orm::sqlx::Error) -> bool {
    sql_state(e).as_deref() == Some("23505")
}

/// The SQLSTATE of a database error.
fn sql_state(e: &sea_orm::sqlx::Error) -> Option<std::borrow::Cow<'_, str>> {
    e.as_database_error().and_then(|d| d.code())
}

impl Ingest {
    /// A time for a new batch: now, to the microsecond (what PostgreSQL
    /// keeps), and after every batch time this process handed out, so that
    /// batches of one replica never collide. Across replicas the
    /// `ingest_batches` key decides; the loser takes the next time.
    fn batch_time(&self) -> DateTime<Utc> {
        let now = Utc::now().timestamp_micros();
        let mut last = self.batch_micros.load(Ordering::Relaxed);
        loop {
            let next = std::cmp::max(now, last + 1);
            match self.batch_micros.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                // Microseconds since 1970 of now and after: always a time.
                Ok(_) => return DateTime::from_timestamp_micros(next).unwrap_or_else(Utc::now),
                Err(seen) => last = seen,
            }
        }
    }

    /// Stores the events not stored before (by tenant and event_id; the
    /// first of an id repeated within `events`) as one batch for the rollup
    /// task, in one transaction. Returns the event ids stored now; the
    /// others were duplicates. Their rollups follow within moments
    /// ([`roll_up`]).
    pub(crate) async fn store(
        &self,
        db: &DatabaseConnection,
        tenant: &str,
        events: &[AcceptedEvent],
    ) -> Result<HashSet<String>> {
        let mut seen = HashSet::with_capacity(events.len());
        let unique: Vec<&AcceptedEvent> = events.iter().filter(|e| seen.insert(e.event_id.as_str())).collect();
        if unique.is_empty() {
            return Ok(HashSet::new());
        }
        if db.get_database_backend() != DbBackend::Postgres {
            return self.store_portable(db, tenant, &unique).await;
        }
        let mut attempt = 0;
        loop {
            match self.store_pg(db, tenant, &unique).await {
                Err(e) if lost_race(&e) && attempt < RACE_RETRIES => {
                    tracing::debug!(
                        tenant,
                        attempt,
                        error = %e,
                        "a concurrent batch stored one of the same new event ids; starting over"
                    );
                    attempt += 1
                }
                r => return Ok(r?),
            }
        }
    }

    /// PostgreSQL: the batch's row, then its events as one binary COPY,
    /// betting that they are all new (a first delivery; COPY has no
    /// `ON CONFLICT`). When one is stored already, the COPY fails on the key
    /// at that row and the transaction is rolled back; then only the events
    /// not stored (one index probe each, the ids bound as one array) are
    /// copied. After a batch with duplicates (a client resending), the next
    /// batches are checked first, until one has none. A concurrent batch
    /// carrying one of the same new ids makes the COPY fail too, and the
    /// caller starts over.
    async fn store_pg(
        &self,
        db: &DatabaseConnection,
        tenant: &str,
        events: &[&AcceptedEvent],
    ) -> std::result::Result<HashSet<String>, sea_orm::sqlx::Error> {
        use sea_orm::sqlx;
        let pool = db.get_postgres_connection_pool();
        let mut tx = pool.begin().await?;
        if !self.saw_duplicates.load(Ordering::Relaxed) {
            let ingest_time = self.reserve_batch_pg(&mut tx, tenant, events.len()).await?;
            match copy_events(&mut tx, tenant, events, ingest_time).await {
                Ok(()) => {
                    tx.commit().await?;
                    return Ok(events.iter().map(|e| e.event_id.clone()).collect());
                }
                Err(e) if unique_violation(&e) => {
                    // The batch's row goes with the transaction; the next takes a new time.
                    tx.rollback().await?;
                    tx = pool.begin().await?;
                }
                Err(e) => return Err(e),
            }
        }
        // The last batch had duplicates (a client resending, whose next
        // batches likely repeat too), or this one has: look first.
        let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        let sql = format!(
            "SELECT {id} FROM {table} WHERE {tenant} = $1 AND {id} = ANY($2)",
            id = UE::EventId.to_string(),
            table = UE::Table.to_string(),
            tenant = UE::TenantId.to_string(),
        );
        let stored: HashSet<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let new: Vec<&AcceptedEvent> = events.iter().copied().filter(|e| !stored.contains(&e.event_id)).collect();
        self.saw_duplicates.store(!stored.is_empty(), Ordering::Relaxed);
        if new.is_empty() {
            return Ok(HashSet::new());
        }
        let ingest_time = self.reserve_batch_pg(&mut tx, tenant, new.len()).await?;
        copy_events(&mut tx, tenant, &new, ingest_time).await?;
        tx.commit().await?;
        Ok(new.into_iter().map(|e| e.event_id.clone()).collect())
    }

    /// Inserts the batch's `ingest_batches` row under a time of its own;
    /// returns the time.
    async fn reserve_batch_pg(
        &self,
        tx: &mut sea_orm::sqlx::PgConnection,
        tenant: &str,
        events: usize,
    ) -> std::result::Result<DateTime<Utc>, sea_orm::sqlx::Error> {
        let sql = format!(
            "INSERT INTO {table} ({tenant}, {time}, {events}) VALUES ($1, $2, $3) \
             ON CONFLICT ({tenant}, {time}) DO NOTHING",
            table = B::Table.to_string(),
            tenant = B::TenantId.to_string(),
            time = B::IngestTime.to_string(),
            events = B::Events.to_string(),
        );
        loop {
            let t = self.batch_time();
            let claimed = sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(sql.as_str()))
                .bind(tenant)
                .bind(t)
                .bind(events as i64)
                .execute(&mut *tx)
                .await?;
            if claimed.rows_affected() == 1 {
                return Ok(t);
            }
        }
    }

    /// SQLite: `INSERT … ON CONFLICT DO NOTHING RETURNING`, in chunks, and
    /// the batch's row with the count of what was stored.
    async fn store_portable(
        &self,
        db: &DatabaseConnection,
        tenant: &str,
        events: &[&AcceptedEvent],
    ) -> Result<HashSet<String>> {
        let mut inserted = HashSet::new();
        let txn = db.begin().await?;
        // The batch's row first: its key is the event rows' ingest_time.
        let ingest_time = loop {
            let t = self.batch_time();
            let row = [(B::TenantId, Expr::val(tenant)), (B::IngestTime, Expr::val(t)), (B::Events, Expr::val(0i64))];
            let Some(mut q) = insert(B::Table, [row])? else { continue };
            q.on_conflict(OnConflict::columns([B::TenantId, B::IngestTime]).do_nothing().to_owned());
            if exec(&txn, &q).await? == 1 {
                break t;
            }
        };
        for chunk in events.chunks(CHUNK) {
            let Some(mut q) = insert(UE::Table, chunk.iter().map(|e| event_row(tenant, e, ingest_time)))? else {
                continue;
            };
            q.on_conflict(OnConflict::columns([UE::TenantId, UE::EventId]).do_nothing().to_owned())
                .returning_col(UE::EventId);
            for r in all(&txn, &q).await? {
                inserted.insert(get::<String>(&r, UE::EventId)?);
            }
        }
        if inserted.is_empty() {
            // Nothing new: no batch to roll up.
            txn.rollback().await?;
            return Ok(inserted);
        }
        let q = Query::update()
            .table(B::Table)
            .value(B::Events, inserted.len() as i64)
            .and_where(Expr::col(B::TenantId).eq(tenant))
            .and_where(Expr::col(B::IngestTime).eq(ingest_time))
            .to_owned();
        exec(&txn, &q).await?;
        txn.commit().await?;
        Ok(inserted)
    }
}

/// Folds up to `max_batches` pending batches, oldest first, into the
/// daily rollups (events, quantity and duration per account, day and
/// event name; the distinct users; the days each name was used) and
/// marks them rolled up, in one transaction: a batch counts once,
/// whatever fails where. Batches another replica is folding are skipped
/// (`FOR UPDATE SKIP LOCKED`). `None` when nothing is pending.
///
/// In the same transaction, each account's latest day of usage
/// (`last_usage`) advances to the newest day of its events in these batches,
/// and each advance records a UsageSeen in the outbox: at most one per
/// account and day, never for a day before the latest one (a late event for
/// an older day advances nothing), and a re-sent event — not stored again,
/// so in no batch — nothing at all.
pub(crate) async fn roll_up(db: &DatabaseConnection, max_batches: u64) -> Result<Option<RolledUp>> {
    let txn = db.begin().await?;
    let postgres = banso_kit::db::is_postgres(&txn);
    let mut pending = Query::select();
    pending
        .columns([B::TenantId, B::IngestTime])
        .from(B::Table)
        .and_where(Expr::col(B::RolledUpTime).is_null())
        .order_by(B::IngestTime, Order::Asc)
        .limit(max_batches);
    if postgres {
        pending.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    // Claiming is the transaction's first statement, a write: on SQLite
    // it takes the write lock at once (a read first could not upgrade).
    let claim = Query::update()
        .table(B::Table)
        .value(B::RolledUpTime, Utc::now())
        .and_where(Expr::tuple([Expr::col(B::TenantId), Expr::col(B::IngestTime)]).in_subquery(pending))
        .and_where(Expr::col(B::RolledUpTime).is_null())
        .returning(Query::returning().columns([B::TenantId, B::IngestTime, B::Events]))
        .to_owned();
    let mut claimed: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
    let mut out = RolledUp::default();
    for r in all(&txn, &claim).await? {
        let time: DateTime<Utc> = get(&r, B::IngestTime)?;
        out.oldest = Some(out.oldest.map_or(time, |o| std::cmp::min(o, time)));
        claimed.entry(get(&r, B::TenantId)?).or_default().push(time);
        out.batches += 1;
        out.events += get::<i64>(&r, B::Events)?;
    }
    if claimed.is_empty() {
        txn.rollback().await?;
        return Ok(None);
    }
    if postgres {
        // A batch's events are a few thousand rows of `usage_events`,
        // found by the `(ingest_time, tenant_id)` index (M0006). A table
        // grown since its last ANALYZE looks small to the planner,
        // which may then prefer to scan it; the index is right whatever
        // the statistics say.
        txn.execute_unprepared("SET LOCAL enable_seqscan = off").await?;
    }
    for (tenant, times) in &claimed {
        let events_of =
            |q: &mut SelectStatement| {
                q.from(UE::Table)
                    .and_where(Expr::col(UE::TenantId).eq(tenant.as_str()))
                    .and_where(banso_kit::db::time_in(&txn, Expr::col(UE::IngestTime), times));
            };
        let key = [
            (DU::TenantId, UE::TenantId),
            (DU::AccountId, UE::AccountId),
            (DU::Day, UE::Day),
            (DU::EventName, UE::EventName),
        ];
        let mut usage = Query::select();
        usage
            .columns(key.map(|(_, from)| from))
            .expr(Func::count(Expr::col(UE::EventId)))
            .expr(Func::sum(Expr::col(UE::Quantity)))
            .expr(Func::sum(Func::coalesce([Expr::col(UE::DurationSecs), Expr::val(0.0)])))
            .group_by_columns(key.map(|(_, from)| from));
        events_of(&mut usage);
        // In key order, so that concurrent folds lock rollup rows in the same order.
        for (_, from) in key {
            usage.order_by(from, Order::Asc);
        }
        let sum = |c: DU| Expr::col((DU::Table, c)).add(Expr::col((Excluded, c)));
        let q = Query::insert()
            .into_table(DU::Table)
            .columns(key.map(|(to, _)| to).into_iter().chain([DU::Events, DU::Quantity, DU::DurationSecs]))
            .select_from(usage)
            .map_err(|e| Error::internal(anyhow::anyhow!("{e}")))?
            .on_conflict(
                OnConflict::columns(key.map(|(to, _)| to))
                    .value(DU::Events, sum(DU::Events))
                    .value(DU::Quantity, sum(DU::Quantity))
                    .value(DU::DurationSecs, sum(DU::DurationSecs))
                    .to_owned(),
            )
            .returning_col(DU::AccountId)
            .to_owned();
        let mut touched: Vec<Uuid> = Vec::new();
        for r in all(&txn, &q).await? {
            touched.push(get(&r, DU::AccountId)?);
        }
        touched.sort();
        touched.dedup();
        out.touched.insert(tenant.clone(), touched);

        let mut users = Query::select();
        users.and_where(Expr::col(UE::UserKey).ne(""));
        events_of(&mut users);
        let key = [
            (DS::TenantId, UE::TenantId),
            (DS::AccountId, UE::AccountId),
            (DS::Day, UE::Day),
            (DS::EventName, UE::EventName),
            (DS::UserKey, UE::UserKey),
        ];
        exec(&txn, &insert_distinct(DS::Table, key, users)?).await?;
        let mut names = Query::select();
        events_of(&mut names);
        let key = [(N::TenantId, UE::TenantId), (N::Day, UE::Day), (N::EventName, UE::EventName)];
        exec(&txn, &insert_distinct(N::Table, key, names)?).await?;

        let mut latest = Query::select();
        latest
            .columns([UE::TenantId, UE::AccountId])
            .expr(Func::max(Expr::col(UE::Day)))
            .group_by_columns([UE::TenantId, UE::AccountId])
            .order_by(UE::AccountId, Order::Asc);
        events_of(&mut latest);
        let q = Query::insert()
            .into_table(L::Table)
            .columns([L::TenantId, L::AccountId, L::Day])
            .select_from(latest)
            .map_err(|e| Error::internal(anyhow::anyhow!("{e}")))?
            .on_conflict(
                OnConflict::columns([L::TenantId, L::AccountId])
                    .update_column(L::Day)
                    .action_and_where(Expr::col((L::Table, L::Day)).lt(Expr::col((Excluded, L::Day))))
                    .to_owned(),
            )
            .returning(Query::returning().columns([L::AccountId, L::Day]))
            .to_owned();
        let mut seen = Vec::new();
        for r in all(&txn, &q).await? {
            let payload = crate::events::usage_seen(get(&r, L::AccountId)?, get(&r, L::Day)?);
            seen.push(banso_events::envelope::new(tenant, crate::NAME, payload));
        }
        if !seen.is_empty() {
            banso_events::outbox::record_many(&txn, &seen).await?;
            out.seen += seen.len();
        }
    }
    txn.commit().await?;
    Ok(Some(out))
}

/// The `excluded` row of `INSERT … ON CONFLICT DO UPDATE`.
#[derive(Clone, Copy, sea_orm::DeriveIden)]
struct Excluded;

/// The batches not rolled up yet, and the events they hold.
#[cfg(test)]
pub(crate) async fn pending(conn: &impl ConnectionTrait) -> Result<(i64, i64)> {
    let q = Query::select()
        .expr_as(Func::count(Expr::col(B::IngestTime)), Out::N)
        .expr_as(Expr::cust(format!("CAST(COALESCE(SUM({}), 0) AS BIGINT)", B::Events.to_string())), B::Events)
        .from(B::Table)
        .and_where(Expr::col(B::RolledUpTime).is_null())
        .to_owned();
    match one(conn, &q).await? {
        Some(r) => Ok((get(&r, Out::N)?, get(&r, B::Events)?)),
        None => Ok((0, 0)),
    }
}

/// Deletes raw usage events ingested before `cutoff`, at most `batch`
/// at a time, and then the rolled-up batches they belonged to; returns
/// how many events went. Rollups keep their counts: raw events are only
/// the audit trail and the idempotency keys, and an event older than
/// the late window is refused anyway. Events of a batch not rolled up
/// yet stay, whatever their age.
pub(crate) async fn prune_raw_events(conn: &impl ConnectionTrait, cutoff: DateTime<Utc>, batch: u64) -> Result<u64> {
    let oldest_pending = Query::select()
        .expr_as(Func::min(Expr::col(B::IngestTime)), Out::Oldest)
        .from(B::Table)
        .and_where(Expr::col(B::RolledUpTime).is_null())
        .to_owned();
    let oldest: Option<DateTime<Utc>> = match one(conn, &oldest_pending).await? {
        Some(r) => get(&r, Out::Oldest)?,
        None => None,
    };
    let cutoff = oldest.map_or(cutoff, |o| std::cmp::min(o, cutoff));
    let backend = conn.get_database_backend();
    let (p1, p2) = if backend == DbBackend::Postgres { ("$1", "$2") } else { ("?", "?") };
    let sql = format!(
        "DELETE FROM {table} WHERE ({tenant}, {id}) IN \
         (SELECT {tenant}, {id} FROM {table} WHERE {time} < {p1} LIMIT {p2})",
        table = UE::Table.to_string(),
        tenant = UE::TenantId.to_string(),
        id = UE::EventId.to_string(),
        time = UE::IngestTime.to_string(),
    );
    let limit = i64::try_from(batch).unwrap_or(i64::MAX);
    let stmt = Statement::from_sql_and_values(backend, sql, [cutoff.into(), limit.into()]);
    let deleted = conn.execute_raw(stmt).await?.rows_affected();
    if deleted < batch {
        // Their events are gone, so the rows no longer guard a time in
        // use; and batch times come from the clock, so a time before the
        // cutoff is not handed out again.
        let q = Query::delete()
            .from_table(B::Table)
            .and_where(Expr::col(B::IngestTime).lt(cutoff))
            .and_where(Expr::col(B::RolledUpTime).is_not_null())
            .to_owned();
        exec(conn, &q).await?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    //! The ingest's queue and the rollups, at the store: an acknowledged
    //! batch is rolled up exactly once, whoever stores the same ids at once,
    //! whether the rollup task runs now or after a restart, and pruning never
    //! takes the events of a batch still waiting.

    use std::collections::HashSet;

    use chrono::{NaiveDate, Utc};
    use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
    use uuid::Uuid;

    use super::*;

    /// A fresh database and an ingest; no rollup task runs, each test rolls
    /// up by hand when it wants to.
    async fn store() -> (banso_testkit::TestDb, DatabaseConnection, Ingest) {
        let db = banso_testkit::fresh_database().await.unwrap();
        let conn = db.connect::<crate::migration::Migrator>(crate::NAME).await.unwrap();
        (db, conn, Ingest::default())
    }

    fn event(id: &str, account: Uuid, user: &str, name: &str, day: NaiveDate) -> AcceptedEvent {
        AcceptedEvent {
            event_id: id.into(),
            account_id: account,
            user_key: user.into(),
            event_name: name.into(),
            occur_time: day.and_hms_opt(12, 0, 0).unwrap().and_utc(),
            day,
            quantity: 1.0,
            duration_secs: None,
            properties: serde_json::json!({"plan": "enterprise", "page": "/reports"}),
        }
    }

    async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
        db.query_all_raw(Statement::from_string(db.get_database_backend(), sql.to_owned())).await.unwrap()
    }

    /// (tenant, account, event name, events, quantity, duration) of every daily_usage row, sorted.
    async fn usage(db: &DatabaseConnection) -> Vec<(String, Uuid, String, i64, f64, f64)> {
        let mut out: Vec<_> = rows(db, "SELECT * FROM daily_usage")
            .await
            .iter()
            .map(|r| {
                (
                    r.try_get("", "tenant_id").unwrap(),
                    r.try_get("", "account_id").unwrap(),
                    r.try_get("", "event_name").unwrap(),
                    r.try_get("", "events").unwrap(),
                    r.try_get("", "quantity").unwrap(),
                    r.try_get("", "duration_secs").unwrap(),
                )
            })
            .collect();
        out.sort_by(|a, b| (&a.0, a.1, &a.2).cmp(&(&b.0, b.1, &b.2)));
        out
    }

    async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
        rows(db, sql).await[0].try_get_by_index::<i64>(0).unwrap()
    }

    fn ids(list: &[&str]) -> HashSet<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn an_acknowledged_batch_is_rolled_up_once_and_only_when_asked() {
        let (_guard, db, ingest) = store().await;
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let day = Utc::now().date_naive();
        let mut timed = event("e2", a, "u2", "report_viewed", day);
        timed.quantity = 2.5;
        timed.duration_secs = Some(30.0);
        let batch = vec![
            event("e1", a, "u1", "report_viewed", day),
            timed,
            // The same id again in the batch: the first one counts.
            event("e1", b, "u9", "login", day),
            event("e3", b, "", "login", day),
        ];
        assert_eq!(ingest.store(&db, "acme", &batch).await.unwrap(), ids(&["e1", "e2", "e3"]));
        // Acknowledged and stored, not rolled up yet: that is the task's job.
        assert_eq!(count(&db, "SELECT count(*) FROM usage_events").await, 3);
        assert!(usage(&db).await.is_empty());
        assert_eq!(pending(&db).await.unwrap(), (1, 3));

        let done = roll_up(&db, 16).await.unwrap().expect("a batch was pending");
        assert_eq!((done.batches, done.events), (1, 3));
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(done.touched.get("acme"), Some(&want));
        let (acme, report, login) = ("acme".to_string(), "report_viewed".to_string(), "login".to_string());
        let mut expected = vec![(acme.clone(), a, report, 2, 3.5, 30.0), (acme.clone(), b, login, 1, 1.0, 0.0)];
        expected.sort_by(|x, y| (&x.0, x.1, &x.2).cmp(&(&y.0, y.1, &y.2)));
        assert_eq!(usage(&db).await, expected);
        // Distinct users: u1 and u2 used reports; b's login had no user.
        assert_eq!(count(&db, "SELECT count(*) FROM daily_users").await, 2);
        assert_eq!(count(&db, "SELECT count(*) FROM event_name_days").await, 2);
        assert_eq!(pending(&db).await.unwrap(), (0, 0));

        // Nothing is folded twice, and a retried batch makes no new batch.
        assert!(roll_up(&db, 16).await.unwrap().is_none());
        assert!(ingest.store(&db, "acme", &batch).await.unwrap().is_empty());
        assert_eq!(pending(&db).await.unwrap(), (0, 0));
        assert_eq!(usage(&db).await, expected);

        // Batches of two tenants, rolled up in one round, each into its own tenant.
        let c = Uuid::now_v7();
        ingest.store(&db, "acme", &[event("e4", a, "u1", "report_viewed", day)]).await.unwrap();
        ingest.store(&db, "globex", &[event("e1", c, "u1", "report_viewed", day)]).await.unwrap();
        assert_eq!(pending(&db).await.unwrap(), (2, 2));
        let done = roll_up(&db, 16).await.unwrap().unwrap();
        assert_eq!((done.batches, done.events), (2, 2));
        assert_eq!(done.touched.get("acme"), Some(&vec![a]));
        assert_eq!(done.touched.get("globex"), Some(&vec![c]));
        let after = usage(&db).await;
        assert_eq!(after.iter().filter(|r| r.0 == "acme").map(|r| r.3).sum::<i64>(), 4);
        assert_eq!(after.iter().filter(|r| r.0 == "globex").map(|r| r.3).sum::<i64>(), 1);
        // u1 had already used reports that day: no new user row for acme.
        assert_eq!(count(&db, "SELECT count(*) FROM daily_users WHERE tenant_id = 'acme'").await, 2);
    }

    #[tokio::test]
    async fn batches_stored_at_once_with_the_same_new_ids_count_each_id_once() {
        let (_guard, db, ingest) = store().await;
        let a = Uuid::now_v7();
        let day = Utc::now().date_naive();
        // Eight batches of 200 ids, each overlapping the next by half.
        let batches: Vec<Vec<AcceptedEvent>> = (0..8)
            .map(|i| (i * 100..i * 100 + 200).map(|n| event(&format!("id-{n}"), a, "u", "login", day)).collect())
            .collect();
        let stored = futures::future::join_all(batches.iter().map(|b| ingest.store(&db, "acme", b))).await;
        let mut all = HashSet::new();
        let mut acknowledged = 0;
        for s in stored {
            let s = s.expect("a race for an id is retried, not failed");
            acknowledged += s.len();
            all.extend(s);
        }
        assert_eq!((acknowledged, all.len()), (900, 900), "each id stored by exactly one batch");
        while roll_up(&db, 3).await.unwrap().is_some() {}
        assert_eq!(count(&db, "SELECT count(*) FROM usage_events").await, 900);
        assert_eq!(usage(&db).await.iter().map(|r| r.3).sum::<i64>(), 900);
        let batches = rows(&db, "SELECT events FROM ingest_batches").await;
        assert_eq!(batches.iter().map(|r| r.try_get::<i64>("", "events").unwrap()).sum::<i64>(), 900);
    }

    /// Two batches of the same new ids in opposite orders, stored at once
    /// (two messages of one stream, or two clients resending): on
    /// PostgreSQL each COPY can wait for the other's uncommitted key, a
    /// deadlock the server breaks by failing one; that one starts over.
    #[tokio::test]
    async fn batches_of_the_same_ids_in_opposite_orders_do_not_fail() {
        let (_guard, db, ingest) = store().await;
        let a = Uuid::now_v7();
        let day = Utc::now().date_naive();
        for round in 0..3 {
            let forward: Vec<AcceptedEvent> =
                (0..2_000).map(|n| event(&format!("r{round}-{n}"), a, "u", "login", day)).collect();
            let backward: Vec<AcceptedEvent> = forward.iter().rev().cloned().collect();
            let (f, b) = tokio::join!(ingest.store(&db, "acme", &forward), ingest.store(&db, "acme", &backward));
            let (f, b) = (f.expect("forward batch"), b.expect("backward batch"));
            assert_eq!(f.len() + b.len(), 2_000, "each id stored once");
            assert!(f.is_disjoint(&b));
        }
        assert_eq!(count(&db, "SELECT count(*) FROM usage_events").await, 6_000);
    }

    #[tokio::test]
    async fn pruning_keeps_the_events_of_batches_not_rolled_up() {
        let (_guard, db, ingest) = store().await;
        let a = Uuid::now_v7();
        let day = Utc::now().date_naive();
        ingest
            .store(&db, "acme", &[event("old-1", a, "u", "login", day), event("old-2", a, "u", "login", day)])
            .await
            .unwrap();
        roll_up(&db, 16).await.unwrap().unwrap();
        ingest.store(&db, "acme", &[event("waiting", a, "u", "login", day)]).await.unwrap();

        // Everything is past the cutoff, but the last batch waits for its rollup.
        let cutoff = Utc::now() + chrono::Duration::seconds(1);
        assert_eq!(prune_raw_events(&db, cutoff, 1_000).await.unwrap(), 2);
        let left = rows(&db, "SELECT event_id FROM usage_events").await;
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].try_get::<String>("", "event_id").unwrap(), "waiting");
        // The pruned batch's row went with its events; the waiting one stays.
        assert_eq!(count(&db, "SELECT count(*) FROM ingest_batches").await, 1);
        assert_eq!(pending(&db).await.unwrap(), (1, 1));

        let done = roll_up(&db, 16).await.unwrap().unwrap();
        assert_eq!(done.events, 1);
        assert_eq!(usage(&db).await.iter().map(|r| r.3).sum::<i64>(), 3, "pruning kept the counts");
        assert_eq!(prune_raw_events(&db, cutoff, 1_000).await.unwrap(), 1);
        assert_eq!(count(&db, "SELECT count(*) FROM ingest_batches").await, 0);
    }
}
