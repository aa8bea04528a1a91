//! The embedded bus for `banso up`: a durable log in its own SQLite file.
//!
//! Same semantics as JetStream, so services behave alike in both modes:
//! publishing stores each message once (deduplicated on the envelope id, as
//! `Nats-Msg-Id` is), every durable consumer keeps its position in the log
//! and resumes there after a restart, messages are handled in log order, a
//! failed handler is retried, and how often a message was delivered
//! survives a crash, so a message that kills the process still reaches the
//! dead letter (`bus_dead_letters`).
//!
//! Consumers read the log in batches: one write marks a batch as being
//! handled, one moves the position past it. A batch that did not finish
//! (the process died or stopped in it) is handled again one message at a
//! time, each delivery counted before its handler runs: the deliveries of
//! the message that killed the process add up across restarts.

use std::{path::Path, sync::Arc, time::Duration};

use async_trait::async_trait;
use prost::Message;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    bus::{Bus, DeliveryPolicy, Handler, Outcome, Outgoing, deliver},
    envelope::{Envelope, subject_matches},
};

/// Messages kept after every consumer has passed them.
const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Messages a consumer reads at a time.
const BATCH: i64 = 256;

pub struct EmbeddedBus {
    db: DatabaseConnection,
    /// The highest sequence number stored; consumers wait on it.
    head: watch::Sender<i64>,
}

fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

impl EmbeddedBus {
    /// Opens (or creates) `<dir>/bus.db`.
    pub async fn open(dir: &Path) -> anyhow::Result<Self> {
        let url = banso_kit::db::sqlite_url_in(dir, "bus")?;
        let cfg = banso_kit::config::DatabaseConfig {
            url: None,
            max_connections: 4,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(30),
            ..Default::default()
        };
        let db = banso_kit::db::connect(&url, "bus", &cfg).await?;
        for sql in [
            "CREATE TABLE IF NOT EXISTS bus_messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, \
             subject TEXT NOT NULL, payload BLOB NOT NULL, create_time INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS bus_consumers (consumer TEXT PRIMARY KEY, position INTEGER NOT NULL, \
             pending_seq INTEGER NOT NULL DEFAULT 0, delivered INTEGER NOT NULL DEFAULT 0, \
             unfinished INTEGER NOT NULL DEFAULT 0)",
            "CREATE TABLE IF NOT EXISTS bus_dead_letters (consumer TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, \
             subject TEXT NOT NULL, payload BLOB NOT NULL, error TEXT NOT NULL, create_time INTEGER NOT NULL, \
             PRIMARY KEY (consumer, seq))",
        ] {
            db.execute_unprepared(sql).await?;
        }
        // Logs written before consumers read in batches lack the column.
        let has_unfinished = db
            .query_one_raw(stmt(
                "SELECT COUNT(*) AS n FROM pragma_table_info('bus_consumers') WHERE name = 'unfinished'",
                [],
            ))
            .await?
            .map(|r| r.try_get::<i64>("", "n"))
            .transpose()?
            .unwrap_or(0);
        if has_unfinished == 0 {
            db.execute_unprepared("ALTER TABLE bus_consumers ADD COLUMN unfinished INTEGER NOT NULL DEFAULT 0").await?;
        }
        let head = db
            .query_one_raw(stmt("SELECT COALESCE(MAX(seq), 0) AS head FROM bus_messages", []))
            .await?
            .map(|r| r.try_get::<i64>("", "head"))
            .transpose()?
            .unwrap_or(0);
        Ok(EmbeddedBus { db, head: watch::channel(head).0 })
    }

    /// Writes `batch` to the log in a transaction of its own and nothing
    /// else: no consumer is woken. The baseline of `banso-bench bus`.
    pub async fn append_only(&self, batch: &[Outgoing]) -> anyhow::Result<()> {
        let txn = self.db.begin().await?;
        append(&txn, batch).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Dead-lettered messages of `consumer`: (envelope id, error).
    pub async fn dead_letters(&self, consumer: &str) -> anyhow::Result<Vec<(String, String)>> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT id, error FROM bus_dead_letters WHERE consumer = ? ORDER BY seq",
                [consumer.into()],
            ))
            .await?;
        rows.iter().map(|r| Ok((r.try_get("", "id")?, r.try_get("", "error")?))).collect()
    }

    /// Drops messages every consumer has passed and that are older than a day.
    async fn prune(&self) -> anyhow::Result<()> {
        let cutoff = chrono::Utc::now().timestamp() - RETENTION.as_secs() as i64;
        self.db
            .execute_raw(stmt(
                "DELETE FROM bus_messages WHERE create_time < ? AND seq <= \
                 (SELECT COALESCE(MIN(position), 9223372036854775807) FROM bus_consumers)",
                [cutoff.into()],
            ))
            .await?;
        Ok(())
    }

    /// Where `consumer` is: its position, and the last message of a batch
    /// it had begun and not finished (0 if none).
    async fn consumer_state(&self, consumer: &str) -> anyhow::Result<(i64, i64)> {
        let row = self
            .db
            .query_one_raw(stmt("SELECT position, unfinished FROM bus_consumers WHERE consumer = ?", [consumer.into()]))
            .await?
            .ok_or_else(|| anyhow::anyhow!("consumer {consumer} vanished"))?;
        Ok((row.try_get("", "position")?, row.try_get("", "unfinished")?))
    }

    /// Moves `consumer` to `seq`, with `unfinished` the last message of the
    /// batch it is in (0 when none is).
    async fn set_position(&self, consumer: &str, seq: i64, unfinished: i64) -> anyhow::Result<()> {
        self.db
            .execute_raw(stmt(
                "UPDATE bus_consumers SET position = ?, pending_seq = 0, delivered = 0, unfinished = ? \
                 WHERE consumer = ?",
                [seq.into(), unfinished.into(), consumer.into()],
            ))
            .await?;
        Ok(())
    }

    /// Hands `m` to `handler` (its `delivered`-th delivery) and dead-letters
    /// it when the policy says so. `None` when the consumer is stopping.
    async fn handle(
        &self,
        consumer: &str,
        m: &Stored,
        delivered: u32,
        handler: &dyn Handler,
        policy: &DeliveryPolicy,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<()>> {
        if !m.wanted {
            return Ok(Some(()));
        }
        // A message delivered this often without an outcome has killed the
        // consumer each time: JetStream's `max_deliver` backstop, here.
        let most = policy.max_attempts.saturating_mul(2).max(10);
        let outcome = match Envelope::decode(m.payload.as_slice()) {
            Ok(_) if delivered > most => Outcome::DeadLetter(format!(
                "delivered {delivered} times without an outcome (the consumer died handling it)"
            )),
            Ok(envelope) => deliver(handler, consumer, &envelope, delivered, policy, shutdown).await,
            Err(e) => Outcome::DeadLetter(format!("payload is not an Envelope: {e}")),
        };
        match outcome {
            Outcome::Handled => Ok(Some(())),
            Outcome::DeadLetter(error) => {
                self.db
                    .execute_raw(stmt(
                        "INSERT INTO bus_dead_letters (consumer, seq, id, subject, payload, error, create_time) \
                         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        [
                            consumer.into(),
                            m.seq.into(),
                            m.id.clone().into(),
                            m.subject.clone().into(),
                            m.payload.clone().into(),
                            error.into(),
                            chrono::Utc::now().timestamp().into(),
                        ],
                    ))
                    .await?;
                Ok(Some(()))
            }
            Outcome::Stopped => Ok(None),
        }
    }

    /// Counts one more delivery of `seq` to `consumer`; returns the count.
    async fn count_delivery(&self, consumer: &str, seq: i64) -> anyhow::Result<u32> {
        self.db
            .execute_raw(stmt(
                "UPDATE bus_consumers SET delivered = CASE WHEN pending_seq = ? THEN delivered + 1 ELSE 1 END, \
                 pending_seq = ? WHERE consumer = ?",
                [seq.into(), seq.into(), consumer.into()],
            ))
            .await?;
        let row = self
            .db
            .query_one_raw(stmt("SELECT delivered FROM bus_consumers WHERE consumer = ?", [consumer.into()]))
            .await?
            .ok_or_else(|| anyhow::anyhow!("consumer {consumer} vanished"))?;
        Ok(row.try_get::<i64>("", "delivered")? as u32)
    }
}

/// Appends `batch` to the log in `txn`, in order, each message once.
async fn append(txn: &impl ConnectionTrait, batch: &[Outgoing]) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp();
    // Many rows a statement, in publish order (SQLite assigns ascending
    // seq in VALUES order); 4 values a row stays far below its limit.
    for chunk in batch.chunks(500) {
        let sql = format!(
            "INSERT INTO bus_messages (id, subject, payload, create_time) VALUES {} ON CONFLICT (id) DO NOTHING",
            vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let values = chunk
            .iter()
            .flat_map(|m| [m.id.clone().into(), m.subject.clone().into(), m.payload.to_vec().into(), now.into()]);
        txn.execute_raw(stmt(&sql, values)).await?;
    }
    Ok(())
}

#[async_trait]
impl Bus for EmbeddedBus {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn prepare_source(&self, _source: &str) -> anyhow::Result<()> {
        Ok(())
    }

    async fn publish(&self, batch: &[Outgoing]) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin().await?;
        append(&txn, batch).await?;
        let head = txn
            .query_one_raw(stmt("SELECT COALESCE(MAX(seq), 0) AS head FROM bus_messages", []))
            .await?
            .map(|r| r.try_get::<i64>("", "head"))
            .transpose()?
            .unwrap_or(0);
        txn.commit().await?;
        self.head.send_replace(head);
        if rand::random::<u8>() == 0 {
            // About once in 256 publishes: cheap enough, often enough.
            self.prune().await?;
        }
        Ok(())
    }

    async fn consume(
        &self,
        consumer: &str,
        subjects: &[String],
        handler: Arc<dyn Handler>,
        policy: DeliveryPolicy,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        // A new consumer starts at the beginning of the log, as a JetStream
        // durable consumer with DeliverPolicy::All does.
        self.db
            .execute_raw(stmt(
                "INSERT INTO bus_consumers (consumer, position) VALUES (?, 0) ON CONFLICT (consumer) DO NOTHING",
                [consumer.into()],
            ))
            .await?;
        let mut head = self.head.subscribe();
        let (mut position, mut unfinished) = self.consumer_state(consumer).await?;
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let rows = self
                .db
                .query_all_raw(stmt(
                    "SELECT seq, id, subject, payload FROM bus_messages WHERE seq > ? ORDER BY seq LIMIT ?",
                    [position.into(), BATCH.into()],
                ))
                .await?;
            if rows.is_empty() {
                tokio::select! {
                    _ = head.changed() => {}
                    // Another process may write the log (banso migrate, tools).
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
                continue;
            }
            let mut batch = Vec::with_capacity(rows.len());
            for row in rows {
                let subject: String = row.try_get("", "subject")?;
                let wanted = subjects.iter().any(|p| subject_matches(p, &subject));
                batch.push(Stored {
                    seq: row.try_get("", "seq")?,
                    id: if wanted { row.try_get("", "id")? } else { String::new() },
                    payload: if wanted { row.try_get("", "payload")? } else { Vec::new() },
                    subject,
                    wanted,
                });
            }
            if unfinished > position {
                // The last batch did not finish (the process died or stopped
                // in it): its messages one at a time, each delivery counted
                // before it is handled, so the one that kills the process
                // reaches the dead letter after `max_attempts` restarts.
                for m in batch.iter().filter(|m| m.seq <= unfinished) {
                    let delivered = if m.wanted { self.count_delivery(consumer, m.seq).await? } else { 0 };
                    match self.handle(consumer, m, delivered, handler.as_ref(), &policy, &shutdown).await? {
                        Some(()) => {
                            self.set_position(consumer, m.seq, unfinished).await?;
                            position = m.seq;
                        }
                        None => return Ok(()),
                    }
                }
                if position >= unfinished {
                    unfinished = 0;
                    self.set_position(consumer, position, unfinished).await?;
                }
                continue;
            }
            // The usual case: one write marks the batch as being handled, one
            // moves the position past it; the messages between cost nothing
            // in the log (messages of other subjects not even that).
            let last = batch.last().map_or(position, |m| m.seq);
            if batch.iter().any(|m| m.wanted) {
                self.set_position(consumer, position, last).await?;
            }
            for m in &batch {
                match self.handle(consumer, m, 1, handler.as_ref(), &policy, &shutdown).await? {
                    Some(()) => position = m.seq,
                    None => {
                        // Stopping: what was handled stays handled; the rest
                        // is the unfinished batch of the next start.
                        self.set_position(consumer, position, last).await?;
                        return Ok(());
                    }
                }
            }
            self.set_position(consumer, position, 0).await?;
        }
    }
}

/// A message of the log as a consumer reads it; `id` and `payload` only
/// where `wanted` (its subject is the consumer's).
struct Stored {
    seq: i64,
    id: String,
    subject: String,
    payload: Vec<u8>,
    wanted: bool,
}
