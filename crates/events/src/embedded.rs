//! The embedded bus for `banso up`: a durable log in its own SQLite file.
//!
//! Same semantics as JetStream, so services behave alike in both modes:
//! publishing stores each message once (deduplicated on the envelope id, as
//! `Nats-Msg-Id` is), every durable consumer keeps its position in the log
//! and resumes there after a restart, messages are handled in log order, a
//! failed handler is retried, and how often the current message was delivered
//! survives a crash, so a message that kills the process still reaches the
//! dead letter (`bus_dead_letters`).

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
             pending_seq INTEGER NOT NULL DEFAULT 0, delivered INTEGER NOT NULL DEFAULT 0)",
            "CREATE TABLE IF NOT EXISTS bus_dead_letters (consumer TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, \
             subject TEXT NOT NULL, payload BLOB NOT NULL, error TEXT NOT NULL, create_time INTEGER NOT NULL, \
             PRIMARY KEY (consumer, seq))",
        ] {
            db.execute_unprepared(sql).await?;
        }
        let head = db
            .query_one_raw(stmt("SELECT COALESCE(MAX(seq), 0) AS head FROM bus_messages", []))
            .await?
            .map(|r| r.try_get::<i64>("", "head"))
            .transpose()?
            .unwrap_or(0);
        Ok(EmbeddedBus { db, head: watch::channel(head).0 })
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

    async fn set_position(&self, consumer: &str, seq: i64) -> anyhow::Result<()> {
        self.db
            .execute_raw(stmt(
                "UPDATE bus_consumers SET position = ?, pending_seq = 0, delivered = 0 WHERE consumer = ?",
                [seq.into(), consumer.into()],
            ))
            .await?;
        Ok(())
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
        let now = chrono::Utc::now().timestamp();
        let txn = self.db.begin().await?;
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
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let position: i64 = self
                .db
                .query_one_raw(stmt("SELECT position FROM bus_consumers WHERE consumer = ?", [consumer.into()]))
                .await?
                .ok_or_else(|| anyhow::anyhow!("consumer {consumer} vanished"))?
                .try_get("", "position")?;
            let rows = self
                .db
                .query_all_raw(stmt(
                    "SELECT seq, id, subject, payload FROM bus_messages WHERE seq > ? ORDER BY seq LIMIT 256",
                    [position.into()],
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
            for row in rows {
                let seq: i64 = row.try_get("", "seq")?;
                let subject: String = row.try_get("", "subject")?;
                if !subjects.iter().any(|p| subject_matches(p, &subject)) {
                    self.set_position(consumer, seq).await?;
                    continue;
                }
                let id: String = row.try_get("", "id")?;
                let payload: Vec<u8> = row.try_get("", "payload")?;
                let outcome = match Envelope::decode(payload.as_slice()) {
                    Ok(envelope) => {
                        let delivered = self.count_delivery(consumer, seq).await?;
                        deliver(handler.as_ref(), consumer, &envelope, delivered, &policy, &shutdown).await
                    }
                    Err(e) => Outcome::DeadLetter(format!("payload is not an Envelope: {e}")),
                };
                match outcome {
                    Outcome::Handled => self.set_position(consumer, seq).await?,
                    Outcome::DeadLetter(error) => {
                        let txn = self.db.begin().await?;
                        txn.execute_raw(stmt(
                            "INSERT INTO bus_dead_letters (consumer, seq, id, subject, payload, error, create_time) \
                             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                            [
                                consumer.into(),
                                seq.into(),
                                id.into(),
                                subject.into(),
                                payload.into(),
                                error.into(),
                                chrono::Utc::now().timestamp().into(),
                            ],
                        ))
                        .await?;
                        txn.execute_raw(stmt(
                            "UPDATE bus_consumers SET position = ?, pending_seq = 0, delivered = 0 WHERE consumer = ?",
                            [seq.into(), consumer.into()],
                        ))
                        .await?;
                        txn.commit().await?;
                    }
                    Outcome::Stopped => return Ok(()),
                }
            }
        }
    }
}
