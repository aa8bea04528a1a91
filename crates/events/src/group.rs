//! Group commit: the small writes of many concurrent callers, a round of them
//! in one transaction, so a database that commits a few thousand
//! transactions a second carries many times that many writes (a survey's
//! answers arriving at once after a campaign's e-mail, say).
//!
//! A caller hands its request to [`GroupCommit::submit`] and waits for its
//! own outcome. A caller that finds fewer than `writers` writers running
//! starts one — a task of its own, so a caller that gives up (its client
//! went away) never aborts the round the others' writes are in. A writer
//! takes what is queued, up to `max_batch` requests of one tenant, and
//! hands them to the [`GroupWork`] in one [`Tx`]; while it writes, the next
//! callers queue and go in its next round. There is no timer: an idle
//! writer writes a lone request at once, a busy one as many as arrived
//! during its last round (the self-clocking of a write-ahead log's group
//! commit), so the batches grow with the load and latency stays one round.
//!
//! A request the work refuses (a token already used, say) writes nothing and
//! gets its refusal while the others commit. If the round's transaction
//! fails as a whole, each of its requests is written again alone, so one bad
//! request never fails the others.

use std::{
    collections::VecDeque,
    future::Future,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use banso_kit::{Error, Result};
use tokio::sync::oneshot;

use crate::db::{Db, Tx};

/// Requests a round of a group wrote, by group.
pub const GROUP_COMMIT_SIZE: &str = "banso_group_commit_size";
/// Rounds whose transaction failed as a whole, their requests then written
/// one by one, by group.
pub const GROUP_COMMIT_SPLITS_TOTAL: &str = "banso_group_commit_splits_total";

/// What a group writes: requests of one tenant, in one transaction.
pub trait GroupWork: Send + Sync + 'static {
    type Request: Send + Sync + 'static;
    type Reply: Send + 'static;

    /// Writes `requests` (of `tx`'s tenant, in arrival order) and gives one
    /// outcome each, in the same order. A refused request must have written
    /// nothing; an `Err` rolls the whole round back (its requests are then
    /// written one by one).
    fn write(
        &self,
        tx: &Tx,
        requests: &[Self::Request],
    ) -> impl Future<Output = Result<Vec<Result<Self::Reply>>>> + Send;
}

/// How a group writes.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    /// Most requests in one transaction (bounds its statements' size).
    pub max_batch: usize,
    /// Writers at once: 1 on SQLite (one writer at a time anyway); more on
    /// PostgreSQL lets one round's commit flush while the next one writes.
    pub writers: usize,
}

impl GroupConfig {
    /// The defaults for `db`'s backend.
    pub fn for_db(db: &Db) -> Self {
        let writers = if banso_kit::db::is_postgres(db.conn()) { 2 } else { 1 };
        GroupConfig { max_batch: 256, writers }
    }
}

/// The group commit of one kind of write (module docs).
pub struct GroupCommit<W: GroupWork> {
    inner: Arc<Inner<W>>,
}

impl<W: GroupWork> Clone for GroupCommit<W> {
    fn clone(&self) -> Self {
        GroupCommit { inner: self.inner.clone() }
    }
}

struct Inner<W: GroupWork> {
    db: Db,
    work: W,
    /// Names the group in metrics and messages.
    name: &'static str,
    config: GroupConfig,
    state: Mutex<State<W>>,
}

struct State<W: GroupWork> {
    queue: VecDeque<Job<W>>,
    running: usize,
}

struct Job<W: GroupWork> {
    tenant: String,
    request: W::Request,
    reply: oneshot::Sender<Result<W::Reply>>,
}

impl<W: GroupWork> GroupCommit<W> {
    pub fn new(db: Db, work: W, name: &'static str, config: GroupConfig) -> Self {
        let config = GroupConfig { max_batch: config.max_batch.max(1), writers: config.writers.max(1) };
        metrics::counter!(GROUP_COMMIT_SPLITS_TOTAL, "group" => name).increment(0);
        GroupCommit {
            inner: Arc::new(Inner {
                db,
                work,
                name,
                config,
                state: Mutex::new(State { queue: VecDeque::new(), running: 0 }),
            }),
        }
    }

    /// The work, for what its caller reads outside the group.
    pub fn work(&self) -> &W {
        &self.inner.work
    }

    /// Writes `request` in the next round of its tenant's requests; its
    /// outcome once that round committed (or was refused).
    pub async fn submit(&self, tenant: &str, request: W::Request) -> Result<W::Reply> {
        let (reply, outcome) = oneshot::channel();
        let start = {
            let mut s = self.inner.lock();
            s.queue.push_back(Job { tenant: tenant.to_owned(), request, reply });
            let start = s.running < self.inner.config.writers;
            if start {
                s.running += 1;
            }
            start
        };
        if start {
            Inner::start(self.inner.clone());
        }
        // A writer that panicked dropped its round's replies.
        outcome.await.unwrap_or_else(|_| {
            Err(Error::Unavailable(format!(
                "the {} writer stopped before this write was done; try again",
                self.inner.name
            )))
        })
    }
}

impl<W: GroupWork> Inner<W> {
    fn lock(&self) -> MutexGuard<'_, State<W>> {
        // A panic never leaves the queue half-changed: its lock is held
        // only around plain pushes and pops.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a writer; its slot is already counted in `running`.
    fn start(this: Arc<Self>) {
        tokio::spawn(async move {
            let mut slot = Slot(Some(this.clone()));
            loop {
                let round = {
                    let mut s = this.lock();
                    if s.queue.is_empty() {
                        // Under the lock a submit checks `running` in, so
                        // no request is left without a writer.
                        s.running -= 1;
                        slot.0 = None;
                        return;
                    }
                    take_round(&mut s.queue, this.config.max_batch)
                };
                this.write(round).await;
            }
        });
    }

    async fn write(&self, round: Vec<Job<W>>) {
        let Some(tenant) = round.first().map(|j| j.tenant.clone()) else { return };
        metrics::histogram!(GROUP_COMMIT_SIZE, "group" => self.name).record(round.len() as f64);
        let (requests, replies): (Vec<_>, Vec<_>) = round.into_iter().map(|j| (j.request, j.reply)).unzip();
        match self.transaction(&tenant, &requests).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // The caller may have gone; its write stands.
                    let _ = reply.send(outcome);
                }
            }
            Err(e) if requests.len() == 1 => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
            Err(e) => {
                tracing::warn!(group = self.name, requests = requests.len(), error = %e, "a group's round failed; writing its requests one by one");
                metrics::counter!(GROUP_COMMIT_SPLITS_TOTAL, "group" => self.name).increment(1);
                for (request, reply) in requests.iter().zip(replies) {
                    let outcome = self
                        .transaction(&tenant, std::slice::from_ref(request))
                        .await
                        .and_then(|mut o| o.pop().unwrap_or_else(|| Err(self.miscounted())));
                    let _ = reply.send(outcome);
                }
            }
        }
    }

    /// One transaction of `requests`: their outcomes, one each.
    async fn transaction(&self, tenant: &str, requests: &[W::Request]) -> Result<Vec<Result<W::Reply>>> {
        self.db
            .write(tenant, async |tx| {
                let outcomes = self.work.write(tx, requests).await?;
                // A work that lost track of a request must not commit the rest.
                if outcomes.len() != requests.len() { Err(self.miscounted()) } else { Ok(outcomes) }
            })
            .await
    }

    fn miscounted(&self) -> Error {
        Error::internal(anyhow::anyhow!("the {} group's work gave a wrong number of outcomes", self.name))
    }
}

/// A writer's place in `running`, given back if the writer panics (its
/// round's callers get UNAVAILABLE; the queue behind them gets a new writer).
struct Slot<W: GroupWork>(Option<Arc<Inner<W>>>);

impl<W: GroupWork> Drop for Slot<W> {
    fn drop(&mut self) {
        let Some(inner) = self.0.take() else { return };
        let restart = {
            let mut s = inner.lock();
            if s.queue.is_empty() {
                s.running -= 1;
                false
            } else {
                true
            }
        };
        if restart {
            Inner::start(inner);
        }
    }
}

/// The first queued request's tenant's requests, in order, up to `max`; the
/// other tenants' stay queued in their order.
fn take_round<W: GroupWork>(queue: &mut VecDeque<Job<W>>, max: usize) -> Vec<Job<W>> {
    let Some(first) = queue.pop_front() else { return Vec::new() };
    let mut round = vec![first];
    let mut rest = VecDeque::with_capacity(queue.len());
    while let Some(job) = queue.pop_front() {
        if round.len() < max && job.tenant == round[0].tenant {
            round.push(job);
        } else {
            rest.push_back(job);
        }
    }
    *queue = rest;
    round
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use sea_orm::{ConnectionTrait, Statement};
    use sea_orm_migration::{MigrationTrait, MigratorTrait};

    use super::*;
    use crate::outbox::OutboxSignal;

    struct Migrator;

    impl MigratorTrait for Migrator {
        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![Box::new(crate::outbox::Migration)]
        }
    }

    /// Writes a note a request: a negative number is refused, 666 panics,
    /// an id already stored fails the statement (and so the round).
    #[derive(Default)]
    struct Notes {
        rounds: Mutex<Vec<(String, usize)>>,
    }

    impl GroupWork for Notes {
        type Request = i64;
        type Reply = i64;

        async fn write(&self, tx: &Tx, requests: &[i64]) -> Result<Vec<Result<i64>>> {
            self.rounds.lock().unwrap().push((tx.tenant().to_owned(), requests.len()));
            let mut out = Vec::new();
            for &n in requests {
                if n == 666 {
                    panic!("note 666");
                }
                if n < 0 {
                    out.push(Err(Error::invalid("note", format!("must not be negative: {n}"))));
                    continue;
                }
                let backend = tx.conn().get_database_backend();
                let sql = match backend {
                    sea_orm::DbBackend::Postgres => "INSERT INTO notes (id, tenant) VALUES ($1, $2)",
                    _ => "INSERT INTO notes (id, tenant) VALUES (?, ?)",
                };
                tx.conn()
                    .execute_raw(Statement::from_sql_and_values(backend, sql, [n.into(), tx.tenant().into()]))
                    .await?;
                out.push(Ok(n));
            }
            Ok(out)
        }
    }

    async fn group(max_batch: usize) -> (GroupCommit<Notes>, sea_orm::DatabaseConnection, banso_testkit::TestDb) {
        let db = banso_testkit::fresh_database().await.unwrap();
        let conn = db.connect::<Migrator>("events").await.unwrap();
        conn.execute_unprepared("CREATE TABLE notes (id BIGINT PRIMARY KEY, tenant TEXT NOT NULL)").await.unwrap();
        let g = GroupCommit::new(
            Db::new(conn.clone(), OutboxSignal::default(), "test"),
            Notes::default(),
            "notes",
            GroupConfig { max_batch, writers: 1 },
        );
        (g, conn, db)
    }

    async fn stored(conn: &sea_orm::DatabaseConnection) -> Vec<(i64, String)> {
        let rows = conn
            .query_all_raw(Statement::from_string(
                conn.get_database_backend(),
                "SELECT id, tenant FROM notes ORDER BY id",
            ))
            .await
            .unwrap();
        rows.iter().map(|r| (r.try_get("", "id").unwrap(), r.try_get("", "tenant").unwrap())).collect()
    }

    /// Concurrent callers share rounds of at most `max_batch`, a tenant a
    /// round, and each gets its own outcome.
    #[tokio::test]
    async fn concurrent_writes_share_rounds_of_one_tenant() {
        let (g, conn, _db) = group(64).await;
        let calls: Vec<_> = (0..300i64)
            .map(|n| {
                let g = g.clone();
                tokio::spawn(async move { g.submit(if n % 3 == 0 { "t2" } else { "t1" }, n).await })
            })
            .collect();
        for (n, c) in calls.into_iter().enumerate() {
            assert_eq!(c.await.unwrap().unwrap(), n as i64);
        }
        let rows = stored(&conn).await;
        assert_eq!(rows.len(), 300);
        assert!(rows.iter().all(|(n, t)| t == if n % 3 == 0 { "t2" } else { "t1" }));
        let rounds = g.work().rounds.lock().unwrap().clone();
        assert!(rounds.iter().all(|(_, n)| *n <= 64), "{rounds:?}");
        assert!(rounds.iter().any(|(_, n)| *n > 1), "no round was shared: {rounds:?}");
        assert!(rounds.len() < 300, "{rounds:?}");
    }

    /// A refusal writes nothing and leaves its round to commit; a request
    /// that fails its round's transaction fails alone after the split.
    #[tokio::test]
    async fn a_bad_request_fails_alone() {
        let (g, conn, _db) = group(64).await;
        g.submit("t1", 7).await.unwrap();
        let calls: Vec<_> = [1i64, -2, 7, 3]
            .into_iter()
            .map(|n| {
                let g = g.clone();
                tokio::spawn(async move { g.submit("t1", n).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for c in calls {
            outcomes.push(c.await.unwrap());
        }
        assert_eq!(outcomes[0].as_ref().unwrap(), &1);
        assert!(matches!(outcomes[1], Err(Error::InvalidArgument(_))), "{:?}", outcomes[1]);
        assert!(outcomes[2].is_err(), "the duplicate was stored: {:?}", outcomes[2]);
        assert_eq!(outcomes[3].as_ref().unwrap(), &3);
        let ids: Vec<i64> = stored(&conn).await.into_iter().map(|(n, _)| n).collect();
        assert_eq!(ids, [1, 3, 7]);
        let rounds = g.work().rounds.lock().unwrap().clone();
        // The lone 7, the round of four, then the four again one by one.
        assert_eq!(rounds.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [1, 4, 1, 1, 1, 1], "{rounds:?}");
    }

    /// A writer that panics fails its round's callers with UNAVAILABLE and
    /// the group goes on writing.
    #[tokio::test]
    async fn a_panicking_round_fails_its_callers_and_the_group_goes_on() {
        let (g, conn, _db) = group(64).await;
        let calls: Vec<_> = [1i64, 666, 2]
            .into_iter()
            .map(|n| {
                let g = g.clone();
                tokio::spawn(async move { g.submit("t1", n).await })
            })
            .collect();
        for c in calls {
            assert!(matches!(c.await.unwrap(), Err(Error::Unavailable(_))));
        }
        assert_eq!(g.submit("t1", 5).await.unwrap(), 5);
        assert_eq!(stored(&conn).await, [(5, "t1".to_owned())]);
    }
}
