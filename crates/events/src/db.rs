//! A service's database as its use cases write to it: one transaction per
//! use case, the events beside the rows, and the three write shapes every
//! resource has written once — a plain transaction ([`Db::write`]), an
//! idempotent create ([`Db::create_once`]) and an optimistic versioned
//! update or delete ([`Db::update_versioned`], [`Db::delete_versioned`]).
//!
//! Behaviour, the same for every resource of every service:
//! - **create with a `request_id`**: a retry returns what the first attempt
//!   created; two concurrent first attempts race on the key, and the loser
//!   rolls back and returns the winner's resource. A unique violation that is
//!   not the key (an external id taken) is the create's own ALREADY_EXISTS.
//! - **update / delete**: read, check the caller's etag (stale → ABORTED
//!   `ETAG_MISMATCH`), apply the rule, then write with `… WHERE version = ?`
//!   as the first statement of the transaction. An update that changes
//!   nothing writes nothing and keeps the etag. When another writer won the
//!   race: with an etag the caller's version is now stale (ABORTED
//!   `ETAG_MISMATCH`, or NOT_FOUND if it is gone); without one, the whole
//!   read-apply-write is retried with jittered backoff, then ABORTED
//!   `CONCURRENT_UPDATE`.
//! - **create that reads first** ([`Db::create_once_with`]): a create whose
//!   rule needs other records (a contact its account, a contract event its
//!   account's ARR) reads them outside the transaction, then writes; a lost
//!   race on a versioned record it changes is retried as an update's is, and
//!   a refusal is the answer unless a concurrent attempt with the same key
//!   succeeded meanwhile (then that attempt's result is).
//!
//! The async closures given to these methods own what they capture
//! (`async move`, clones of the pool and the tenant; the `Tx` gives the
//! tenant to writes): one that borrows from its surroundings makes the
//! caller's future fail the `Send` bound a tonic handler needs, an open
//! compiler bug (rust-lang/rust#139475). Plain closures (`change`) may borrow.

use banso_kit::{Error, Result, etag, idempotency};
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DatabaseTransaction};

use crate::{Payload, envelope, outbox};

/// Attempts at an update or delete without an etag while concurrent writes
/// keep winning; between them, [`backoff`].
pub const WRITE_ATTEMPTS: u32 = 8;

/// Waits before retry `attempt` (from 0): exponential with full jitter, so
/// racing writers spread out instead of colliding again.
pub async fn backoff(attempt: u32) {
    if attempt > 0 {
        let cap_micros = 1000 * 2u64.pow(Ord::min(attempt, 7));
        tokio::time::sleep(std::time::Duration::from_micros(rand::random_range(0..cap_micros))).await;
    }
}

/// A record with an optimistic-concurrency version (its etag is `v<version>`).
pub trait Versioned {
    fn version(&self) -> i64;
    /// Becomes the next version, written at `now`.
    fn advance(&mut self, now: DateTime<Utc>);
}

/// A created record's id, as its `request_id` key remembers it.
pub trait Identified {
    fn resource_id(&self) -> String;
}

/// The id a `request_id` key remembers, as the UUID every resource has: a
/// key holding anything else is a corrupt row (INTERNAL), never a panic.
pub fn remembered(id: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(id).map_err(|e| Error::internal(anyhow::anyhow!("stored request id key {id:?}: {e}")))
}

/// A `request_id` for one kind of create: the operation name keeps keys of
/// different creates apart.
#[derive(Debug, Clone, Copy)]
pub struct RequestKey<'a> {
    pub operation: &'static str,
    pub request_id: &'a str,
}

/// One service's database and outbox.
#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    outbox: outbox::OutboxSignal,
    source: &'static str,
}

/// The transaction of one use case: its rows and its events.
pub struct Tx {
    txn: DatabaseTransaction,
    tenant: String,
    source: &'static str,
}

impl Tx {
    /// The transaction, for the store's statements.
    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Records an event of this tenant; it is published once the
    /// transaction commits, and never if it rolls back.
    pub async fn emit(&self, payload: Payload) -> Result<()> {
        outbox::record(&self.txn, &envelope::new(&self.tenant, self.source, payload)).await?;
        Ok(())
    }

    /// Records several events at once (a bulk write's).
    pub async fn emit_all(&self, payloads: impl IntoIterator<Item = Payload>) -> Result<()> {
        let envelopes: Vec<_> = payloads.into_iter().map(|p| envelope::new(&self.tenant, self.source, p)).collect();
        outbox::record_many(&self.txn, &envelopes).await?;
        Ok(())
    }
}

impl Db {
    /// `source` names the service in its events (`banso.<source>.<type>`).
    pub fn new(conn: DatabaseConnection, outbox: outbox::OutboxSignal, source: &'static str) -> Self {
        Db { conn, outbox, source }
    }

    /// The connection pool, for reads.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// What wakes the relay after a commit.
    pub fn outbox(&self) -> &outbox::OutboxSignal {
        &self.outbox
    }

    /// Begins a use case's transaction. On SQLite it takes the write lock at
    /// once (`BEGIN IMMEDIATE`): a use case that reads before it writes would
    /// otherwise hold a read snapshot that cannot become a write one when
    /// another writer committed meanwhile (SQLITE_BUSY, whatever the busy
    /// timeout). PostgreSQL ignores the mode.
    pub async fn begin(&self, tenant: &str) -> Result<Tx> {
        use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait as _};
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        Ok(Tx { txn: self.conn.begin_with_options(options).await?, tenant: tenant.to_owned(), source: self.source })
    }

    /// Commits and wakes the relay, so the events leave at once.
    pub async fn commit(&self, tx: Tx) -> Result<()> {
        tx.txn.commit().await?;
        self.outbox.notify();
        Ok(())
    }

    /// Runs `work` in one transaction: committed (and its events published)
    /// if it succeeds, rolled back if it fails.
    pub async fn write<T>(&self, tenant: &str, work: impl AsyncFnOnce(&Tx) -> Result<T>) -> Result<T> {
        let tx = self.begin(tenant).await?;
        match work(&tx).await {
            Ok(v) => {
                self.commit(tx).await?;
                Ok(v)
            }
            Err(e) => {
                // The error that matters is the work's; a failed rollback
                // ends with the connection anyway.
                let _ = tx.txn.rollback().await;
                Err(e)
            }
        }
    }

    /// Creates a resource once per `key`: `create` inserts it (and emits its
    /// events) in a transaction that also records the key; `find` reads a
    /// resource by the id a key remembers.
    pub async fn create_once<T: Identified>(
        &self,
        tenant: &str,
        key: Option<RequestKey<'_>>,
        find: impl AsyncFn(&str) -> Result<T>,
        create: impl AsyncFnOnce(&Tx) -> Result<T>,
    ) -> Result<T> {
        if let Some(k) = key
            && let Some(id) = idempotency::lookup(&self.conn, tenant, k.operation, k.request_id).await?
        {
            return find(&id).await;
        }
        let result = self
            .write(tenant, async |tx| {
                let created = create(tx).await?;
                if let Some(k) = key {
                    idempotency::record(tx.conn(), tenant, k.operation, k.request_id, &created.resource_id()).await?;
                }
                Ok(created)
            })
            .await;
        match result {
            // A concurrent first attempt with the same key won the race.
            Err(Error::AlreadyExists(m)) => match key {
                Some(k) => match idempotency::lookup(&self.conn, tenant, k.operation, k.request_id).await? {
                    Some(id) => find(&id).await,
                    None => Err(Error::AlreadyExists(m)),
                },
                None => Err(Error::AlreadyExists(m)),
            },
            other => other,
        }
    }

    /// An idempotent create whose rule reads other records first. Each
    /// attempt looks the key up; then `prepare` reads and applies the rule
    /// outside any transaction (on SQLite a transaction that reads before it
    /// writes can fail to take the write lock), and `create` writes in one
    /// transaction with the key, returning `None` when a versioned record it
    /// changes moved on since `prepare` read it: the attempt is then made
    /// again, with jittered backoff, and after [`WRITE_ATTEMPTS`] it is
    /// ABORTED `CONCURRENT_UPDATE`. A refusal (by `prepare` or `create`) is
    /// the answer unless a concurrent attempt with the same key succeeded
    /// meanwhile: then that attempt's result is. `what` names the record
    /// being changed in messages.
    pub async fn create_once_with<P, T: Identified>(
        &self,
        tenant: &str,
        what: &str,
        key: Option<RequestKey<'_>>,
        find: impl AsyncFn(&str) -> Result<T>,
        prepare: impl AsyncFn() -> Result<P>,
        create: impl AsyncFn(&Tx, P) -> Result<Option<T>>,
    ) -> Result<T> {
        for attempt in 0..WRITE_ATTEMPTS {
            backoff(attempt).await;
            if let Some(found) = self.created(tenant, key, &find).await? {
                return Ok(found);
            }
            let prepared = match prepare().await {
                Ok(p) => p,
                Err(e) => return self.created(tenant, key, &find).await?.ok_or(e),
            };
            let result = self
                .write(tenant, async |tx| {
                    let Some(created) = create(tx, prepared).await? else { return Err(LostRace.into()) };
                    if let Some(k) = key {
                        idempotency::record(tx.conn(), tenant, k.operation, k.request_id, &created.resource_id())
                            .await?;
                    }
                    Ok(created)
                })
                .await;
            match result {
                Ok(created) => return Ok(created),
                Err(e) if is_lost_race(&e) => {}
                // A concurrent first attempt with the same key may have won.
                Err(e) => return self.created(tenant, key, &find).await?.ok_or(e),
            }
        }
        Err(concurrent(what))
    }

    /// What `key` already created, if anything.
    async fn created<T>(
        &self,
        tenant: &str,
        key: Option<RequestKey<'_>>,
        find: &impl AsyncFn(&str) -> Result<T>,
    ) -> Result<Option<T>> {
        let Some(k) = key else { return Ok(None) };
        match idempotency::lookup(&self.conn, tenant, k.operation, k.request_id).await? {
            Some(id) => find(&id).await.map(Some),
            None => Ok(None),
        }
    }

    /// A transaction on PostgreSQL's driver itself, for the statements the
    /// ORM does not speak (a bulk write bound as one typed array a column,
    /// COPY): committed and the relay woken as by [`Db::write`], rolled back
    /// if `work` fails. INTERNAL on another database: callers check
    /// [`banso_kit::db::is_postgres`] first.
    pub async fn write_pg<T>(
        &self,
        work: impl AsyncFnOnce(&mut sea_orm::sqlx::PgConnection) -> Result<T>,
    ) -> Result<T> {
        if !banso_kit::db::is_postgres(&self.conn) {
            return Err(Error::internal(anyhow::anyhow!("a PostgreSQL transaction on another database")));
        }
        let mut txn = self.conn.get_postgres_connection_pool().begin().await?;
        match work(&mut txn).await {
            Ok(v) => {
                txn.commit().await?;
                self.outbox.notify();
                Ok(v)
            }
            Err(e) => {
                // The error that matters is the work's.
                let _ = txn.rollback().await;
                Err(e)
            }
        }
    }

    /// Updates one record optimistically (module docs): `read` gives the
    /// current record (NOT_FOUND if missing), `change` applies the rule to
    /// a copy (and may refuse), `write` stores the next version if the
    /// stored one is still `current` — returning whether it was — and emits
    /// the events. `what` names the record in messages (`account 0190…`).
    pub async fn update_versioned<T: Versioned + Clone + PartialEq>(
        &self,
        tenant: &str,
        what: &str,
        expected: Option<i64>,
        read: impl AsyncFn() -> Result<T>,
        change: impl Fn(&mut T) -> Result<()>,
        write: impl AsyncFn(&Tx, &T, &T) -> Result<bool>,
    ) -> Result<T> {
        for attempt in 0..WRITE_ATTEMPTS {
            backoff(attempt).await;
            let current = read().await?;
            etag::check(what, expected, current.version())?;
            let mut next = current.clone();
            change(&mut next)?;
            if next == current {
                return Ok(current);
            }
            next.advance(banso_kit::wire::now());
            let written = self
                .write(
                    tenant,
                    async |tx| {
                        if write(tx, &current, &next).await? { Ok(true) } else { Err(LostRace.into()) }
                    },
                )
                .await;
            match written {
                Ok(_) => return Ok(next),
                Err(e) if is_lost_race(&e) => self.after_lost_race(what, expected, &read).await?,
                Err(e) => return Err(e),
            }
        }
        Err(concurrent(what))
    }

    /// Deletes one record optimistically: `delete` removes it if the stored
    /// version is still `current` (returning whether it did) and emits the
    /// events. Returns the record as it was.
    pub async fn delete_versioned<T: Versioned>(
        &self,
        tenant: &str,
        what: &str,
        expected: Option<i64>,
        read: impl AsyncFn() -> Result<T>,
        delete: impl AsyncFn(&Tx, &T) -> Result<bool>,
    ) -> Result<T> {
        for attempt in 0..WRITE_ATTEMPTS {
            backoff(attempt).await;
            let current = read().await?;
            etag::check(what, expected, current.version())?;
            let deleted = self
                .write(tenant, async |tx| if delete(tx, &current).await? { Ok(()) } else { Err(LostRace.into()) })
                .await;
            match deleted {
                Ok(()) => return Ok(current),
                Err(e) if is_lost_race(&e) => self.after_lost_race(what, expected, &read).await?,
                Err(e) => return Err(e),
            }
        }
        Err(concurrent(what))
    }

    /// Another writer changed the record first. With an etag the caller's
    /// version is stale now (or the record is gone); without, try again.
    async fn after_lost_race<T: Versioned>(
        &self,
        what: &str,
        expected: Option<i64>,
        read: &impl AsyncFn() -> Result<T>,
    ) -> Result<()> {
        if expected.is_some() {
            let now = read().await?;
            etag::check(what, expected, now.version())?;
        }
        Ok(())
    }
}

/// Marks a versioned write that found another version: rolled back, retried.
#[derive(Debug, thiserror::Error)]
#[error("the record changed since it was read")]
struct LostRace;

impl From<LostRace> for Error {
    fn from(e: LostRace) -> Error {
        Error::Aborted { reason: LOST_RACE, message: e.to_string() }
    }
}

const LOST_RACE: &str = "LOST_RACE";

fn is_lost_race(e: &Error) -> bool {
    matches!(e, Error::Aborted { reason, .. } if *reason == LOST_RACE)
}

fn concurrent(what: &str) -> Error {
    Error::Aborted { reason: "CONCURRENT_UPDATE", message: format!("{what} is being changed concurrently; retry") }
}
