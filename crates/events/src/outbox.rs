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
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, TransactionTrait,
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
        #[sea_orm(unique)]
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
/// (bulk writes: imports).
pub async fn record_many(conn: &impl ConnectionTrait, envelopes: &[Envelope]) -> Result<(), DbErr> {
    // 6 bound values a row: stay far below PostgreSQL's 65,535 per statement.
    for chunk in envelopes.chunks(2000) {
        let now = chrono::Utc::now();
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
    /// How long published rows are kept.
    pub retention: Duration,
    /// How often to prune.
    pub prune_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            batch: 500,
            poll_interval: Duration::from_millis(250),
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
        Relay { db, bus, source: source.to_owned(), signal, config, holder }
    }

    /// Publishes until `shutdown`, then flushes once more.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut failures = 0u32;
            let mut last_prune = tokio::time::Instant::now();
            while let Err(e) = self.bus.prepare_source(&self.source).await {
                tracing::warn!(source = self.source, error = format!("{e:#}"), "bus not ready; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
            loop {
                match self.publish_pending().await {
                    Ok(n) => {
                        failures = 0;
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
                    return;
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
            }
        })
    }

    /// One round: publish up to a batch of pending rows in order and mark them.
    pub async fn publish_pending(&self) -> anyhow::Result<usize> {
        let txn = self.db.begin().await?;
        let backend = txn.get_database_backend();
        // The lease: first statement, so the lock is taken before reading.
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            match backend {
                sea_orm::DbBackend::Postgres => {
                    "UPDATE outbox_lease SET holder = $1, heartbeat = $2 WHERE name = 'relay'"
                }
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
        let batch: Vec<Outgoing> = rows
            .iter()
            .map(|r| Outgoing { id: r.id.clone(), subject: r.subject.clone(), payload: Bytes::from(r.payload.clone()) })
            .collect();
        for r in &rows {
            if let Ok(env) = Envelope::decode(r.payload.as_slice()) {
                let _span = envelope::span("publish", &self.source, &env).entered();
                tracing::debug!(seq = r.seq, "publishing");
            }
        }
        self.bus.publish(&batch).await?;
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        entity::Entity::update_many()
            .col_expr(entity::Column::PublishedTime, Expr::value(chrono::Utc::now()))
            .filter(entity::Column::Seq.is_in(seqs))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        metrics::counter!(PUBLISHED_TOTAL, "source" => self.source.clone()).increment(rows.len() as u64);
        Ok(rows.len())
    }

    /// Deletes rows published longer ago than the retention.
    pub async fn prune(&self) -> Result<u64, DbErr> {
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(self.config.retention).unwrap_or_default();
        let res = entity::Entity::delete_many().filter(entity::Column::PublishedTime.lt(cutoff)).exec(&self.db).await?;
        Ok(res.rows_affected)
    }

    /// Rows not yet published.
    pub async fn pending(&self) -> Result<u64, DbErr> {
        use sea_orm::PaginatorTrait;
        entity::Entity::find().filter(entity::Column::PublishedTime.is_null()).count(&self.db).await
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
