//! The transactional outbox and its relay.
//!
//! A service writes its events with [`record`] inside the transaction that
//! changes its state: the change and its events commit together or not at
//! all. The [`Relay`] then publishes pending rows to the bus in the order
//! they were recorded, marks them published, retries with backoff when the
//! bus is down, survives restarts (the rows are durable), and prunes
//! published rows after a retention period.
//!
//! Only one relay of a service publishes at a time: each round starts by
//! updating the service's row in `outbox_lease`, which holds a row lock (a
//! write lock on SQLite) until the round commits. Replicas therefore take
//! turns instead of publishing the same rows out of order.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use prost::Message;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, TransactionTrait, Value, sea_query::ArrayType,
};
use sea_orm_migration::{prelude::*, schema::*};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    bus::{Bus, Outgoing, PUBLISHED_TOTAL},
    envelope::{self, Envelope},
};

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub id: String,
        pub tenant_id: String,
        pub subject: String,
        pub payload: Vec<u8>,
        pub create_time: ChronoDateTimeUtc,
        pub published_time: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Records `envelope` for publication; call inside the state change's transaction.
pub async fn record(conn: &impl ConnectionTrait, envelope: &Envelope) -> Result<(), DbErr> {
    entity::Entity::insert(entity::ActiveModel {
        seq: sea_orm::ActiveValue::NotSet,
        id: Set(envelope.id.clone()),
        tenant_id: Set(envelope.tenant_id.clone()),
        subject: Set(envelope::subject(envelope)),
        payload: Set(envelope.encode_to_vec()),
        create_time: Set(chrono::Utc::now()),
        published_time: Set(None),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Records many envelopes in as few statements as the database allows
/// (bulk writes: imports), in the order given.
pub async fn record_many(conn: &impl ConnectionTrait, envelopes: &[Envelope]) -> Result<(), DbErr> {
    if envelopes.is_empty() {
        return Ok(());
    }
    if conn.get_database_backend() == DbBackend::Postgres {
        let b = PgBatch::new(envelopes);
        use banso_kit::db::pg_array;
        let strings = |v: &[String]| pg_array(ArrayType::String, v, |s| Value::from(s.as_str()));
        let payloads = pg_array(ArrayType::Bytes, &b.payloads, |p| Value::Bytes(Some(p.clone())));
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            PgBatch::INSERT,
            [strings(&b.ids), strings(&b.tenants), strings(&b.subjects), payloads, b.now.into()],
        ))
        .await?;
        return Ok(());
    }
    let now = chrono::Utc::now();
    // 6 bound values a row: stay far below SQLite's limit per statement.
    for chunk in envelopes.chunks(2000) {
        let rows = chunk.iter().map(|e| entity::ActiveModel {
            seq: sea_orm::ActiveValue::NotSet,
            id: Set(e.id.clone()),
            tenant_id: Set(e.tenant_id.clone()),
            subject: Set(envelope::subject(e)),
            payload: Set(e.encode_to_vec()),
            create_time: Set(now),
            published_time: Set(None),
        });
        entity::Entity::insert_many(rows).exec_without_returning(conn).await?;
    }
    Ok(())
}

/// Envelopes encoded as outbox rows for one PostgreSQL statement, a bound
/// array a column: for bulk writes that run their transaction on sqlx
/// directly ([`PgBatch::record`]). Build it before the transaction begins.
pub struct PgBatch {
    ids: Vec<String>,
    tenants: Vec<String>,
    subjects: Vec<String>,
    payloads: Vec<Vec<u8>>,
    now: chrono::DateTime<chrono::Utc>,
}

impl PgBatch {
    /// `seq` follows the order of the arrays.
    const INSERT: &str = "INSERT INTO \"outbox\" (id, tenant_id, subject, payload, create_time) \
         SELECT id, tenant_id, subject, payload, $5 \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) WITH ORDINALITY \
           AS e(id, tenant_id, subject, payload, n) \
         ORDER BY n";

    pub fn new(envelopes: &[Envelope]) -> PgBatch {
        let mut b = PgBatch {
            ids: Vec::with_capacity(envelopes.len()),
            tenants: Vec::with_capacity(envelopes.len()),
            subjects: Vec::with_capacity(envelopes.len()),
            payloads: Vec::with_capacity(envelopes.len()),
            now: chrono::Utc::now(),
        };
        for e in envelopes {
            b.ids.push(e.id.clone());
            b.tenants.push(e.tenant_id.clone());
            b.subjects.push(envelope::subject(e));
            b.payloads.push(e.encode_to_vec());
        }
        b
    }

    /// Records the envelopes; call inside the state change's transaction.
    pub async fn record(&self, conn: &mut sea_orm::sqlx::PgConnection) -> Result<(), sea_orm::sqlx::Error> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sea_orm::sqlx::query(Self::INSERT)
            .bind(&self.ids)
            .bind(&self.tenants)
            .bind(&self.subjects)
            .bind(&self.payloads)
            .bind(self.now)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// Wakes the relay after a commit, so events leave within milliseconds
/// instead of at the next poll.
#[derive(Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    pub fn notify(&self) {
        self.0.notify_one();
    }
}

#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Rows per round.
    pub batch: u64,
    /// How often to look for rows another process recorded.
    pub poll_interval: Duration,
    /// While events keep coming, rounds start at most this often: a wake-up
    /// within `linger` of the previous round that published rows waits out
    /// the rest, so a bulk write's many commits leave in a few large rounds
    /// instead of one round each. After a quiet spell a wake-up publishes
    /// at once.
    pub linger: Duration,
    /// How long published rows are kept.
    pub retention: Duration,
    /// How often to prune.
    pub prune_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            batch: 2000,
            poll_interval: Duration::from_millis(250),
            linger: Duration::from_millis(25),
            retention: Duration::from_secs(7 * 24 * 3600),
            prune_interval: Duration::from_secs(600),
        }
    }
}

/// Publishes one service's outbox.
pub struct Relay {
    db: DatabaseConnection,
    bus: Arc<dyn Bus>,
    source: String,
    signal: OutboxSignal,
    config: RelayConfig,
    holder: String,
}

impl Relay {
    pub fn new(
        db: DatabaseConnection,
        bus: Arc<dyn Bus>,
        source: &str,
        signal: OutboxSignal,
        config: RelayConfig,
    ) -> Self {
        let holder = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
        metrics::counter!(PUBLISHED_TOTAL, "source" => source.to_owned()).increment(0);
        Relay { db, bus, source: source.to_owned(), signal, config, holder }
    }

    /// Runs the relay as task `<source>-outbox-relay` of the gRPC service `service`
    /// under the supervisor, which restarts it if it dies.
    pub fn supervise(
        self,
        supervisor: &banso_kit::supervise::Supervisor,
        service: &'static str,
    ) -> tokio::task::JoinHandle<()> {
        let relay = Arc::new(self);
        supervisor.spawn(service, format!("{}-outbox-relay", relay.source), move |shutdown| {
            let relay = relay.clone();
            async move { relay.run(shutdown).await }
        })
    }

    /// Publishes until `shutdown`, then flushes once more. Bus and database
    /// failures are retried here, with backoff; it returns only at shutdown.
    pub async fn run(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        {
            let mut failures = 0u32;
            let mut last_prune = tokio::time::Instant::now();
            while let Err(e) = self.bus.prepare_source(&self.source).await {
                tracing::warn!(source = self.source, error = format!("{e:#}"), "bus not ready; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
            }
            // When the last round that published rows ended.
            let mut last_published: Option<tokio::time::Instant> = None;
            loop {
                match self.publish_pending().await {
                    Ok(n) => {
                        failures = 0;
                        if n > 0 {
                            last_published = Some(tokio::time::Instant::now());
                        }
                        if n as u64 == self.config.batch && !shutdown.is_cancelled() {
                            continue;
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        let wait = Duration::from_millis(100 * 2u64.pow(Ord::min(failures, 6)));
                        tracing::warn!(
                            source = self.source,
                            error = format!("{e:#}"),
                            retry_in_ms = wait.as_millis() as u64,
                            "outbox relay failed"
                        );
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = shutdown.cancelled() => {}
                        }
                    }
                }
                if shutdown.is_cancelled() {
                    // Whatever committed before shutdown leaves now if it can;
                    // if not, it stays in the outbox for the next start.
                    let _ = tokio::time::timeout(Duration::from_secs(2), self.publish_pending()).await;
                    return Ok(());
                }
                if last_prune.elapsed() >= self.config.prune_interval {
                    last_prune = tokio::time::Instant::now();
                    if let Err(e) = self.prune().await {
                        tracing::warn!(error = %e, "outbox prune failed");
                    }
                }
                tokio::select! {
                    _ = self.signal.0.notified() => {}
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                    _ = shutdown.cancelled() => {}
                }
                // Events keep coming (a bulk write commits batch after batch):
                // let the commits of the rest of `linger` join this round.
                if let Some(at) = last_published {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at + self.config.linger) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
    }

    /// One round: publish up to a batch of pending rows in order and mark them.
    pub async fn publish_pending(&self) -> anyhow::Result<usize> {
        let txn = self.db.begin().await?;
        let backend = txn.get_database_backend();
        // The lease: first statement, so the lock is taken before reading.
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            match backend {
                DbBackend::Postgres => "UPDATE outbox_lease SET holder = $1, heartbeat = $2 WHERE name = 'relay'",
                _ => "UPDATE outbox_lease SET holder = ?, heartbeat = ? WHERE name = 'relay'",
            },
            [self.holder.clone().into(), chrono::Utc::now().into()],
        ))
        .await?;
        let rows = entity::Entity::find()
            .filter(entity::Column::PublishedTime.is_null())
            .order_by_asc(entity::Column::Seq)
            .limit(self.config.batch)
            .all(&txn)
            .await?;
        if rows.is_empty() {
            txn.commit().await?;
            return Ok(0);
        }
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        // The publish spans continue each event's trace; decoding the
        // payloads for them is wasted when no subscriber records them.
        if tracing::level_filters::LevelFilter::current() >= tracing::Level::INFO {
            for r in &rows {
                if let Ok(env) = Envelope::decode(r.payload.as_slice()) {
                    let _span = envelope::span("publish", &self.source, &env).entered();
                    tracing::debug!(seq = r.seq, "publishing");
                }
            }
        }
        let batch: Vec<Outgoing> = rows
            .into_iter()
            .map(|r| Outgoing { id: r.id, subject: r.subject, payload: Bytes::from(r.payload) })
            .collect();
        self.bus.publish(&batch).await?;
        let now = chrono::Utc::now();
        if backend == DbBackend::Postgres {
            // One array parameter: one prepared statement whatever the count.
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                "UPDATE \"outbox\" SET \"published_time\" = $1 WHERE seq = ANY($2)",
                [now.into(), banso_kit::db::pg_array(ArrayType::BigInt, &seqs, |s| Value::from(*s))],
            ))
            .await?;
        } else {
            for chunk in seqs.chunks(500) {
                entity::Entity::update_many()
                    .col_expr(entity::Column::PublishedTime, Expr::value(now))
                    .filter(entity::Column::Seq.is_in(chunk.iter().copied()))
                    .exec(&txn)
                    .await?;
            }
        }
        txn.commit().await?;
        metrics::counter!(PUBLISHED_TOTAL, "source" => self.source.clone()).increment(batch.len() as u64);
        Ok(batch.len())
    }

    /// Deletes rows published longer ago than the retention. `published_time`
    /// has no index of its own (it would make every marking update dearer,
    /// see [`PendingIndex`]), so pruning walks the rows by `seq`, oldest
    /// first, a window at a time, and stops at the first window with nothing
    /// to delete: the relay publishes in `seq` order, so the rows it keeps
    /// (unpublished, or published within the retention) are the newest.
    pub async fn prune(&self) -> Result<u64, DbErr> {
        const WINDOW: u64 = 10_000;
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(self.config.retention).unwrap_or_default();
        let (mut total, mut after) = (0, i64::MIN);
        loop {
            // The window's last row; none: the window runs to the end.
            let upper = entity::Entity::find()
                .select_only()
                .column(entity::Column::Seq)
                .filter(entity::Column::Seq.gt(after))
                .order_by_asc(entity::Column::Seq)
                .offset(WINDOW - 1)
                .limit(1)
                .into_tuple::<i64>()
                .one(&self.db)
                .await?;
            let deleted = entity::Entity::delete_many()
                .filter(entity::Column::Seq.gt(after))
                .filter(entity::Column::Seq.lte(upper.unwrap_or(i64::MAX)))
                .filter(entity::Column::PublishedTime.lt(cutoff))
                .exec(&self.db)
                .await?
                .rows_affected;
            total += deleted;
            match upper {
                Some(seq) if deleted > 0 => after = seq,
                _ => return Ok(total),
            }
        }
    }

    /// Rows not yet published.
    pub async fn pending(&self) -> Result<u64, DbErr> {
        pending_rows(&self.db).await
    }
}

/// Rows of `db`'s outbox not yet published.
pub async fn pending_rows(db: &DatabaseConnection) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    entity::Entity::find().filter(entity::Column::PublishedTime.is_null()).count(db).await
}

/// Makes marking rows published cheaper. The first schema indexed
/// `(published_time, seq)` and kept `id` unique, so each marking update wrote
/// a new row version and three index entries; now the pending rows have a
/// partial index of their own (a published row leaves it: no entry to
/// write), and `id` (a UUIDv7 minted by the service, deduplicated downstream
/// on `Nats-Msg-Id`) is no longer a unique constraint on PostgreSQL.
/// Measured on the Accounts import: docs/benchmarks.md. SQLite keeps `id`
/// unique: dropping a column constraint there means rebuilding the table.
pub struct PendingIndex;

impl MigrationName for PendingIndex {
    fn name(&self) -> &str {
        "m00000000_000002_events_outbox_pending_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PendingIndex {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS outbox_pending").await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (seq) WHERE published_time IS NULL",
        )
        .await?;
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_id_key").await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("ALTER TABLE outbox ADD CONSTRAINT outbox_id_key UNIQUE (id)").await?;
        }
        db.execute_unprepared("DROP INDEX IF EXISTS outbox_unpublished").await?;
        db.execute_unprepared("CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (published_time, seq)").await?;
        Ok(())
    }
}

/// PostgreSQL keeps the outbox's payloads out of line without compressing
/// them (`STORAGE EXTERNAL`). A row lives until the relay has published it
/// and the retention has passed, so compressing a large payload (an
/// import's FeedbackImported, up to 64 KiB) is CPU spent for a few seconds'
/// worth of disk: pglz cost an import of 100,000 feedback items about a
/// fifth of PostgreSQL's CPU (docs/benchmarks.md). Payloads under 2 KB were
/// never compressed. SQLite has no such setting. Existing rows keep how
/// they were stored; rows written after it are not compressed.
pub struct PayloadStorage;

impl MigrationName for PayloadStorage {
    fn name(&self) -> &str {
        "m00000000_000003_events_outbox_payload_storage"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PayloadStorage {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("ALTER TABLE outbox ALTER COLUMN payload SET STORAGE EXTERNAL").await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("ALTER TABLE outbox ALTER COLUMN payload SET STORAGE EXTENDED").await?;
        }
        Ok(())
    }
}

/// Creates `outbox` and `outbox_lease` in the service's schema.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m00000000_000001_events_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("outbox")
                .if_not_exists()
                .col(ColumnDef::new("seq").big_integer().not_null().auto_increment().primary_key())
                .col(string_len("id", 36).unique_key())
                .col(string_len("tenant_id", 64))
                .col(text("subject"))
                .col(blob("payload"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone_null("published_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("outbox_pending")
                .table("outbox")
                .col("published_time")
                .col("seq")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("outbox_lease")
                .if_not_exists()
                .col(string_len("name", 32).primary_key())
                .col(text("holder"))
                .col(timestamp_with_time_zone("heartbeat"))
                .to_owned(),
        )
        .await?;
        let insert = Query::insert()
            .into_table("outbox_lease")
            .columns(["name", "holder", "heartbeat"])
            .values_panic(["relay".into(), "".into(), chrono::Utc::now().into()])
            .to_owned();
        m.exec_stmt(insert).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("outbox_lease").to_owned()).await?;
        m.drop_table(Table::drop().table("outbox").to_owned()).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use banso_proto::{accounts::Account, events::AccountCreated};
    use sea_orm_migration::MigratorTrait;

    use super::*;
    use crate::envelope::Payload;

    struct Migrator;

    impl MigratorTrait for Migrator {
        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![Box::new(Migration), Box::new(PendingIndex)]
        }
    }

    /// A bus that keeps the ids of each published batch.
    #[derive(Default)]
    struct Recording(Mutex<Vec<Vec<String>>>);

    #[async_trait::async_trait]
    impl Bus for Recording {
        fn kind(&self) -> &'static str {
            "recording"
        }

        async fn prepare_source(&self, _: &str) -> anyhow::Result<()> {
            Ok(())
        }

        async fn publish(&self, batch: &[Outgoing]) -> anyhow::Result<()> {
            self.0.lock().unwrap().push(batch.iter().map(|m| m.id.clone()).collect());
            Ok(())
        }

        async fn consume(
            &self,
            _: &str,
            _: &[String],
            _: Arc<dyn crate::Handler>,
            _: crate::bus::DeliveryPolicy,
            _: CancellationToken,
        ) -> anyhow::Result<()> {
            Ok(())
        }
    }

    /// Bulk-recorded events keep their order (through sea-orm and, on
    /// PostgreSQL, through sqlx), and the relay publishes each once, in that
    /// order, in rounds of its batch size.
    #[tokio::test]
    async fn bulk_recorded_events_are_published_once_in_order() {
        let db = banso_testkit::fresh_database().await.unwrap();
        let conn = db.connect::<Migrator>("events").await.unwrap();
        let envelopes: Vec<Envelope> = (0..2500)
            .map(|i| {
                let account = Account { name: format!("account {i}"), ..Default::default() };
                envelope::new(
                    ["t1", "t2"][i % 2],
                    "test",
                    Payload::AccountCreated(AccountCreated { account: Some(account) }),
                )
            })
            .collect();
        let (first, rest) = envelopes.split_at(1200);
        let txn = conn.begin().await.unwrap();
        record_many(&txn, first).await.unwrap();
        txn.commit().await.unwrap();
        if conn.get_database_backend() == DbBackend::Postgres {
            let mut txn = conn.get_postgres_connection_pool().begin().await.unwrap();
            PgBatch::new(rest).record(&mut txn).await.unwrap();
            txn.commit().await.unwrap();
        } else {
            record_many(&conn, rest).await.unwrap();
        }

        let bus = Arc::new(Recording::default());
        let config = RelayConfig { batch: 1000, ..Default::default() };
        let relay = Relay::new(conn.clone(), bus.clone(), "test", OutboxSignal::default(), config);
        assert_eq!(relay.pending().await.unwrap(), 2500);
        while relay.publish_pending().await.unwrap() > 0 {}
        assert_eq!(relay.pending().await.unwrap(), 0);
        let batches = bus.0.lock().unwrap().clone();
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [1000, 1000, 500]);
        let published: Vec<String> = batches.into_iter().flatten().collect();
        let recorded: Vec<String> = envelopes.iter().map(|e| e.id.clone()).collect();
        assert_eq!(published, recorded, "published once each, in the order recorded");
    }

    fn envelopes(n: usize) -> Vec<Envelope> {
        (0..n)
            .map(|i| {
                let account = Account { name: format!("account {i}"), ..Default::default() };
                envelope::new("t1", "test", Payload::AccountCreated(AccountCreated { account: Some(account) }))
            })
            .collect()
    }

    /// Pruning walks several windows of rows, deletes exactly those published
    /// before the retention, and keeps younger and unpublished rows.
    #[tokio::test]
    async fn prune_deletes_only_rows_published_before_the_retention() {
        let db = banso_testkit::fresh_database().await.unwrap();
        let conn = db.connect::<Migrator>("events").await.unwrap();
        record_many(&conn, &envelopes(25_000)).await.unwrap();
        let bus = Arc::new(Recording::default());
        let config = RelayConfig { retention: Duration::from_secs(7 * 24 * 3600), ..Default::default() };
        let relay = Relay::new(conn.clone(), bus.clone(), "test", OutboxSignal::default(), config);
        while relay.publish_pending().await.unwrap() > 0 {}
        // The oldest 22,000 were published 8 days ago, the rest just now.
        let min_seq: i64 = entity::Entity::find()
            .select_only()
            .column_as(entity::Column::Seq.min(), "m")
            .into_tuple::<Option<i64>>()
            .one(&conn)
            .await
            .unwrap()
            .flatten()
            .unwrap();
        entity::Entity::update_many()
            .col_expr(entity::Column::PublishedTime, Expr::value(chrono::Utc::now() - chrono::Duration::days(8)))
            .filter(entity::Column::Seq.lt(min_seq + 22_000))
            .exec(&conn)
            .await
            .unwrap();
        record_many(&conn, &envelopes(5)).await.unwrap();

        assert_eq!(relay.prune().await.unwrap(), 22_000);
        use sea_orm::PaginatorTrait;
        assert_eq!(entity::Entity::find().count(&conn).await.unwrap(), 3_005);
        assert_eq!(relay.pending().await.unwrap(), 5, "unpublished rows stay");
        let oldest = entity::Entity::find().order_by_asc(entity::Column::Seq).one(&conn).await.unwrap().unwrap();
        assert_eq!(oldest.seq, min_seq + 22_000, "the youngest published rows stay");
        assert_eq!(relay.prune().await.unwrap(), 0, "nothing left to prune");
    }
}
