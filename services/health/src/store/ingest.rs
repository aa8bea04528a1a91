//! Usage ingest and its rollups.
//!
//! An ingest stores a batch's new raw events and one `ingest_batches` row in
//! one transaction and returns: that is the acknowledgement, and all it
//! costs on PostgreSQL is a duplicate check and a binary COPY. The rollup
//! task ([`crate::rollups`]) then folds pending batches into the daily
//! rollups with [`Store::roll_up`], which marks them rolled up in the same
//! transaction. A batch is named by its `ingest_time`, which every one of
//! its events carries and which is unique within the tenant, so the events
//! of a batch are found by the `usage_events (ingest_time, tenant_id)` index.

use std::collections::{BTreeMap, HashSet};

use banso_kit::Result;
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DbBackend, Statement, TransactionTrait, Value,
    sea_query::{Alias, Expr, ExprTrait, Func, LockBehavior, LockType, OnConflict, Order, Query, SelectStatement},
};
use uuid::Uuid;

use super::{AcceptedEvent, CHUNK, Store, build};

/// Columns of a raw event, in the order the COPY and the INSERT write them.
const EVENT_COLUMNS: [&str; 11] = [
    "tenant_id",
    "event_id",
    "account_id",
    "user_key",
    "event_name",
    "occur_time",
    "day",
    "quantity",
    "duration_secs",
    "properties",
    "ingest_time",
];

/// How often an ingest that lost a race for an event id to a concurrent
/// batch (a unique violation during its COPY) starts over; each retry's
/// duplicate check sees the other batch's committed events.
const RACE_RETRIES: usize = 5;

/// What one [`Store::roll_up`] folded.
#[derive(Debug, Default)]
pub struct RolledUp {
    pub batches: usize,
    pub events: i64,
    /// The oldest batch's ingest time: how far behind the rollups were.
    pub oldest: Option<DateTime<Utc>>,
    /// Accounts whose rollups changed, per tenant: to rescore.
    pub touched: BTreeMap<String, Vec<Uuid>>,
}

/// `events` as one binary COPY into `usage_events`, stamped `ingest_time`.
async fn copy_events(
    conn: &mut sea_orm::sqlx::PgConnection,
    tenant: &str,
    events: &[&AcceptedEvent],
    ingest_time: DateTime<Utc>,
) -> std::result::Result<(), sea_orm::sqlx::Error> {
    let mut rows = banso_kit::db::copy::BinaryCopy::new();
    for e in events {
        rows.row(EVENT_COLUMNS.len() as i16);
        rows.text(tenant);
        rows.text(&e.event_id);
        rows.uuid(e.account_id);
        rows.text(&e.user_key);
        rows.text(&e.event_name);
        rows.timestamptz(e.occur_time);
        rows.date(e.day);
        rows.f64(e.quantity);
        match e.duration_secs {
            Some(d) => rows.f64(d),
            None => rows.null(),
        }
        rows.text(&e.properties.to_string());
        rows.timestamptz(ingest_time);
    }
    let sql = format!("COPY usage_events ({}) FROM STDIN (FORMAT binary)", EVENT_COLUMNS.join(", "));
    let mut copy = conn.copy_in_raw(&sql).await?;
    copy.send(rows.finish()).await?;
    copy.finish().await?;
    Ok(())
}

/// `INSERT INTO table (key) SELECT DISTINCT key … ORDER BY key ON CONFLICT DO
/// NOTHING` over `select`'s rows: in key order, so that concurrent folds take
/// the rows' locks in the same order.
fn insert_distinct(
    table: &str,
    key: &[&str],
    mut select: SelectStatement,
) -> Result<sea_orm::sea_query::InsertStatement> {
    select.distinct().columns(key.iter().map(|c| Alias::new(*c)));
    for c in key {
        select.order_by(Alias::new(*c), Order::Asc);
    }
    Ok(Query::insert()
        .into_table(Alias::new(table))
        .columns(key.iter().map(|c| Alias::new(*c)))
        .select_from(select)
        .map_err(|e| banso_kit::Error::Internal(e.into()))?
        .on_conflict(OnConflict::columns(key.iter().map(|c| Alias::new(*c))).do_nothing().to_owned())
        .to_owned())
}

fn unique_violation(e: &sea_orm::sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).as_deref() == Some("23505")
}

impl Store {
    /// A time for a new batch: now, to the microsecond (what PostgreSQL
    /// keeps), and after every batch time this process handed out, so that
    /// batches of one replica never collide. Across replicas the
    /// `ingest_batches` key decides; the loser takes the next time.
    fn batch_time(&self) -> DateTime<Utc> {
        use std::sync::atomic::Ordering;
        let now = Utc::now().timestamp_micros();
        let mut last = self.batch_micros.load(Ordering::Relaxed);
        loop {
            let next = std::cmp::max(now, last + 1);
            match self.batch_micros.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return DateTime::from_timestamp_micros(next).expect("now is representable"),
                Err(seen) => last = seen,
            }
        }
    }

    /// Stores the events not stored before (by tenant and event_id; the
    /// first of an id repeated within `events`) as one batch for the rollup
    /// task, in one transaction. Returns the event ids stored now; the
    /// others were duplicates. Their rollups follow within moments
    /// ([`Store::roll_up`]).
    pub async fn ingest(&self, tenant: &str, events: &[AcceptedEvent]) -> Result<HashSet<String>> {
        let mut seen = HashSet::with_capacity(events.len());
        let unique: Vec<&AcceptedEvent> = events.iter().filter(|e| seen.insert(e.event_id.as_str())).collect();
        if unique.is_empty() {
            return Ok(HashSet::new());
        }
        if self.db.get_database_backend() != DbBackend::Postgres {
            return self.ingest_portable(tenant, &unique).await;
        }
        let mut attempt = 0;
        loop {
            match self.ingest_pg(tenant, &unique).await {
                Err(e) if unique_violation(&e) && attempt < RACE_RETRIES => {
                    tracing::debug!(
                        tenant,
                        attempt,
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
    async fn ingest_pg(
        &self,
        tenant: &str,
        events: &[&AcceptedEvent],
    ) -> std::result::Result<HashSet<String>, sea_orm::sqlx::Error> {
        use sea_orm::sqlx;
        use std::sync::atomic::Ordering::Relaxed;
        let pool = self.db.get_postgres_connection_pool();
        let mut tx = pool.begin().await?;
        if !self.saw_duplicates.load(Relaxed) {
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
        let stored: HashSet<String> =
            sqlx::query_scalar("SELECT event_id FROM usage_events WHERE tenant_id = $1 AND event_id = ANY($2)")
                .bind(tenant)
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        let new: Vec<&AcceptedEvent> = events.iter().copied().filter(|e| !stored.contains(&e.event_id)).collect();
        self.saw_duplicates.store(!stored.is_empty(), Relaxed);
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
        loop {
            let t = self.batch_time();
            let claimed = sea_orm::sqlx::query(
                "INSERT INTO ingest_batches (tenant_id, ingest_time, events) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, ingest_time) DO NOTHING",
            )
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
    async fn ingest_portable(&self, tenant: &str, events: &[&AcceptedEvent]) -> Result<HashSet<String>> {
        let mut inserted = HashSet::new();
        let txn = self.db.begin().await?;
        // The batch's row first: its key is the event rows' ingest_time.
        let ingest_time = loop {
            let t = self.batch_time();
            let q = Query::insert()
                .into_table(Alias::new("ingest_batches"))
                .columns(["tenant_id", "ingest_time", "events"].map(Alias::new))
                .values_panic([tenant.into(), t.into(), 0i64.into()])
                .on_conflict(OnConflict::columns(["tenant_id", "ingest_time"].map(Alias::new)).do_nothing().to_owned())
                .to_owned();
            if txn.execute_raw(build(&txn, &q)).await?.rows_affected() == 1 {
                break t;
            }
        };
        for chunk in events.chunks(CHUNK) {
            let mut q = Query::insert();
            q.into_table(Alias::new("usage_events")).columns(EVENT_COLUMNS.map(Alias::new));
            for e in chunk {
                q.values_panic([
                    tenant.into(),
                    e.event_id.clone().into(),
                    e.account_id.into(),
                    e.user_key.clone().into(),
                    e.event_name.clone().into(),
                    e.occur_time.into(),
                    e.day.into(),
                    e.quantity.into(),
                    e.duration_secs.into(),
                    Expr::val(Value::Json(Some(Box::new(e.properties.clone())))),
                    ingest_time.into(),
                ]);
            }
            q.on_conflict(
                OnConflict::columns([Alias::new("tenant_id"), Alias::new("event_id")]).do_nothing().to_owned(),
            )
            .returning_col(Alias::new("event_id"));
            for r in txn.query_all_raw(build(&txn, &q)).await? {
                inserted.insert(r.try_get::<String>("", "event_id")?);
            }
        }
        if inserted.is_empty() {
            // Nothing new: no batch to roll up.
            txn.rollback().await?;
            return Ok(inserted);
        }
        let q = Query::update()
            .table(Alias::new("ingest_batches"))
            .value(Alias::new("events"), inserted.len() as i64)
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("ingest_time")).eq(ingest_time))
            .to_owned();
        txn.execute_raw(build(&txn, &q)).await?;
        txn.commit().await?;
        Ok(inserted)
    }

    /// Folds up to `max_batches` pending batches, oldest first, into the
    /// daily rollups (events, quantity and duration per account, day and
    /// event name; the distinct users; the days each name was used) and
    /// marks them rolled up, in one transaction: a batch counts once,
    /// whatever fails where. Batches another replica is folding are skipped
    /// (`FOR UPDATE SKIP LOCKED`). `None` when nothing is pending.
    pub async fn roll_up(&self, max_batches: u64) -> Result<Option<RolledUp>> {
        let txn = self.db.begin().await?;
        let postgres = banso_kit::db::is_postgres(&txn);
        let mut pending = Query::select();
        pending
            .columns(["tenant_id", "ingest_time"].map(Alias::new))
            .from(Alias::new("ingest_batches"))
            .and_where(Expr::col(Alias::new("rolled_up_time")).is_null())
            .order_by(Alias::new("ingest_time"), Order::Asc)
            .limit(max_batches);
        if postgres {
            pending.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        // Claiming is the transaction's first statement, a write: on SQLite
        // it takes the write lock at once (a read first could not upgrade).
        let claim = Query::update()
            .table(Alias::new("ingest_batches"))
            .value(Alias::new("rolled_up_time"), Utc::now())
            .and_where(
                Expr::tuple([Expr::col(Alias::new("tenant_id")), Expr::col(Alias::new("ingest_time"))])
                    .in_subquery(pending),
            )
            .and_where(Expr::col(Alias::new("rolled_up_time")).is_null())
            .returning(Query::returning().columns(["tenant_id", "ingest_time", "events"].map(Alias::new)))
            .to_owned();
        let mut claimed: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
        let mut out = RolledUp::default();
        for r in txn.query_all_raw(build(&txn, &claim)).await? {
            let time: DateTime<Utc> = r.try_get("", "ingest_time")?;
            out.oldest = Some(out.oldest.map_or(time, |o| std::cmp::min(o, time)));
            claimed.entry(r.try_get("", "tenant_id")?).or_default().push(time);
            out.batches += 1;
            out.events += r.try_get::<i64>("", "events")?;
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
            let events_of = |q: &mut SelectStatement| {
                q.from(Alias::new("usage_events"))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant.as_str()))
                    .and_where(banso_kit::db::time_in(&txn, Expr::col(Alias::new("ingest_time")), times));
            };
            let key = ["tenant_id", "account_id", "day", "event_name"].map(Alias::new);
            let mut usage = Query::select();
            usage
                .columns(key.clone())
                .expr(Func::count(Expr::col(Alias::new("event_id"))))
                .expr(Func::sum(Expr::col(Alias::new("quantity"))))
                .expr(Func::sum(Func::coalesce([Expr::col(Alias::new("duration_secs")), Expr::val(0.0)])))
                .group_by_columns(key.clone());
            events_of(&mut usage);
            // In key order, so that concurrent folds lock rollup rows in the same order.
            for c in key.clone() {
                usage.order_by(c, Order::Asc);
            }
            let q = Query::insert()
                .into_table(Alias::new("daily_usage"))
                .columns(
                    ["tenant_id", "account_id", "day", "event_name", "events", "quantity", "duration_secs"]
                        .map(Alias::new),
                )
                .select_from(usage)
                .map_err(|e| banso_kit::Error::Internal(e.into()))?
                .on_conflict(
                    OnConflict::columns(key.clone())
                        .value(Alias::new("events"), Expr::cust("daily_usage.events + excluded.events"))
                        .value(Alias::new("quantity"), Expr::cust("daily_usage.quantity + excluded.quantity"))
                        .value(
                            Alias::new("duration_secs"),
                            Expr::cust("daily_usage.duration_secs + excluded.duration_secs"),
                        )
                        .to_owned(),
                )
                .returning_col(Alias::new("account_id"))
                .to_owned();
            let mut touched: Vec<Uuid> = Vec::new();
            for r in txn.query_all_raw(build(&txn, &q)).await? {
                touched.push(r.try_get("", "account_id")?);
            }
            touched.sort();
            touched.dedup();
            out.touched.insert(tenant.clone(), touched);

            let mut users = Query::select();
            users.and_where(Expr::col(Alias::new("user_key")).ne(""));
            events_of(&mut users);
            let q =
                insert_distinct("daily_users", &["tenant_id", "account_id", "day", "event_name", "user_key"], users)?;
            txn.execute_raw(build(&txn, &q)).await?;
            let mut names = Query::select();
            events_of(&mut names);
            let q = insert_distinct("event_name_days", &["tenant_id", "day", "event_name"], names)?;
            txn.execute_raw(build(&txn, &q)).await?;
        }
        txn.commit().await?;
        Ok(Some(out))
    }

    /// The batches not rolled up yet, and the events they hold.
    pub async fn pending_rollups(&self) -> Result<(i64, i64)> {
        let q = Query::select()
            .expr_as(Func::count(Expr::col(Alias::new("ingest_time"))), Alias::new("batches"))
            .expr_as(Expr::cust("CAST(COALESCE(SUM(events), 0) AS BIGINT)"), Alias::new("events"))
            .from(Alias::new("ingest_batches"))
            .and_where(Expr::col(Alias::new("rolled_up_time")).is_null())
            .to_owned();
        let r = self.db.query_one_raw(build(&self.db, &q)).await?.expect("an aggregate returns a row");
        Ok((r.try_get("", "batches")?, r.try_get("", "events")?))
    }

    /// Deletes raw usage events ingested before `cutoff`, at most `batch`
    /// at a time, and then the rolled-up batches they belonged to; returns
    /// how many events went. Rollups keep their counts: raw events are only
    /// the audit trail and the idempotency keys, and an event older than
    /// the late window is refused anyway. Events of a batch not rolled up
    /// yet stay, whatever their age.
    pub async fn prune_raw_events(&self, cutoff: DateTime<Utc>, batch: u64) -> Result<u64> {
        let oldest_pending = Query::select()
            .expr_as(Func::min(Expr::col(Alias::new("ingest_time"))), Alias::new("oldest"))
            .from(Alias::new("ingest_batches"))
            .and_where(Expr::col(Alias::new("rolled_up_time")).is_null())
            .to_owned();
        let oldest: Option<DateTime<Utc>> = match self.db.query_one_raw(build(&self.db, &oldest_pending)).await? {
            Some(r) => r.try_get("", "oldest")?,
            None => None,
        };
        let cutoff = oldest.map_or(cutoff, |o| std::cmp::min(o, cutoff));
        let backend = self.db.get_database_backend();
        let stmt = Statement::from_sql_and_values(
            backend,
            match backend {
                DbBackend::Postgres => {
                    "DELETE FROM usage_events WHERE (tenant_id, event_id) IN \
                     (SELECT tenant_id, event_id FROM usage_events WHERE ingest_time < $1 LIMIT $2)"
                }
                _ => {
                    "DELETE FROM usage_events WHERE (tenant_id, event_id) IN \
                     (SELECT tenant_id, event_id FROM usage_events WHERE ingest_time < ? LIMIT ?)"
                }
            },
            [cutoff.into(), (batch as i64).into()],
        );
        let deleted = self.db.execute_raw(stmt).await?.rows_affected();
        if deleted < batch {
            // Their events are gone, so the rows no longer guard a time in
            // use; and batch times come from the clock, so a time before the
            // cutoff is not handed out again.
            let q = Query::delete()
                .from_table(Alias::new("ingest_batches"))
                .and_where(Expr::col(Alias::new("ingest_time")).lt(cutoff))
                .and_where(Expr::col(Alias::new("rolled_up_time")).is_not_null())
                .to_owned();
            self.db.execute_raw(build(&self.db, &q)).await?;
        }
        Ok(deleted)
    }
}
