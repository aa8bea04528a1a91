//! Watching a phase from a connection of the bench's own: rows committed
//! once a second (how the rate evolves as the table grows), and, with
//! `--profile`, what the service's database sessions are doing every 10 ms
//! (sampled from `pg_stat_activity`, classified by statement).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Monitor {
    stop: CancellationToken,
    task: JoinHandle<Watch>,
}

/// What a monitor saw.
#[derive(Default)]
pub struct Watch {
    /// (seconds since start, rows committed).
    pub progress: Vec<(f64, i64)>,
    /// Samples taken, and in how many each activity was seen.
    pub samples: u64,
    pub seen: BTreeMap<&'static str, u64>,
}

impl Monitor {
    /// Watches `count_sql` (a `SELECT count(*)`) once a second and, with a
    /// `profile`, samples the other sessions on the database every 10 ms.
    pub fn start(pool: DatabaseConnection, count_sql: &'static str, profile: Option<Profile>) -> Monitor {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut watch = Watch::default();
            let mut next_count = start;
            loop {
                if Instant::now() >= next_count {
                    next_count += Duration::from_secs(1);
                    if let Ok(n) = count(&pool, count_sql).await {
                        watch.progress.push((start.elapsed().as_secs_f64(), n));
                    }
                }
                if let Some(p) = profile
                    && let Ok(rows) = activity(&pool).await
                {
                    watch.samples += 1;
                    let mut kinds: Vec<&'static str> = rows.iter().map(|(s, q)| (p.classify)(s, q)).collect();
                    if !kinds.iter().any(|k| k.starts_with(p.service)) {
                        kinds.push(p.no_sql);
                    }
                    kinds.sort_unstable();
                    kinds.dedup();
                    for k in kinds {
                        *watch.seen.entry(k).or_default() += 1;
                    }
                }
                let wait = if profile.is_some() { Duration::from_millis(10) } else { next_count - Instant::now() };
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            watch
        });
        Monitor { stop, task }
    }

    pub async fn finish(self) -> Watch {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

/// How to read the sampled sessions of one benchmark.
#[derive(Clone, Copy)]
pub struct Profile {
    /// One category per session state and statement.
    pub classify: fn(&str, &str) -> &'static str,
    /// Categories of the service's request path start with this.
    pub service: &'static str,
    /// The category of a sample where none of them was seen.
    pub no_sql: &'static str,
}

/// The import's sessions.
pub const IMPORT: Profile = Profile {
    classify,
    service: "import",
    no_sql: "import: no SQL in flight (service CPU: gRPC decode, validation, conversion, envelopes; or waiting for rows)",
};

/// Whether `q` is one of the outbox relay's statements (its lease, the
/// pending rows, their marking).
pub fn is_relay(q: &str) -> bool {
    q.starts_with("UPDATE outbox_lease") || q.starts_with("SELECT \"outbox\"") || q.starts_with("UPDATE \"outbox\" SET")
}

/// One category per session state and statement.
fn classify(state: &str, query: &str) -> &'static str {
    let q = query.trim_start();
    if is_relay(q) {
        return if state == "active" {
            "relay: SQL (lease, SELECT pending, UPDATE published_time)"
        } else {
            "relay: idle in transaction (publishing to the bus)"
        };
    }
    if state.starts_with("idle in transaction") {
        return "import: idle in transaction (service work between statements)";
    }
    if q.starts_with("SELECT \"accounts\"") {
        "import: SELECT accounts by external_id [accounts_by_external_id]"
    } else if q.starts_with("INSERT INTO \"accounts\"") {
        "import: INSERT accounts [create_many]"
    } else if q.starts_with("INSERT INTO \"account_tags\"") {
        "import: INSERT account_tags [create_many]"
    } else if q.starts_with("INSERT INTO \"outbox\"") {
        "import: INSERT outbox [outbox::record_many]"
    } else if q.starts_with("COMMIT") {
        "import: COMMIT (WAL flush)"
    } else if q.starts_with("UPDATE \"accounts\"") || q.starts_with("SELECT \"account_tags\"") {
        "import: update path [update_account]"
    } else {
        "other SQL"
    }
}

async fn count(pool: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row = pool
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no row"))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// (state, query start) of every other client session on this database
/// that is not idle.
async fn activity(pool: &DatabaseConnection) -> anyhow::Result<Vec<(String, String)>> {
    let rows = pool
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT state, left(query, 1024) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND backend_type = 'client backend' AND state IS NOT NULL AND state <> 'idle'",
        ))
        .await?;
    rows.into_iter().map(|r| Ok((r.try_get_by_index::<String>(0)?, r.try_get_by_index::<String>(1)?))).collect()
}

impl Watch {
    /// Rows a second in each of about ten windows, e.g.
    /// "0–10 s: 4,100 · 10–20 s: 2,300".
    pub fn rates(&self) -> String {
        let Some(&(end, _)) = self.progress.last() else { return String::new() };
        let step = (end / 10.0).round().max(1.0);
        let mut out = Vec::new();
        let (mut t0, mut n0) = (0.0, 0i64);
        for (i, &(t, n)) in self.progress.iter().enumerate() {
            let last = i + 1 == self.progress.len();
            if t - t0 >= step - 0.5 || (last && t - t0 >= 0.5) {
                out.push(format!(
                    "{:.0}–{:.0} s: {}",
                    t0,
                    t,
                    crate::import::int(((n - n0) as f64 / (t - t0)) as usize)
                ));
                (t0, n0) = (t, n);
            }
        }
        out.join(" · ")
    }

    pub fn print_profile(&self, name: &str) {
        if self.samples == 0 {
            return;
        }
        println!("profile of {name}: {} samples of pg_stat_activity, 10 ms apart (share of samples)", self.samples);
        let mut rows: Vec<_> = self.seen.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1));
        for (k, n) in rows {
            println!("  {:>5.1}%  {k}", *n as f64 * 100.0 / self.samples as f64);
        }
    }
}
