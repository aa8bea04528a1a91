//! `banso-bench import`: ImportAccounts against a plain multi-row INSERT.
//!
//! One run, one fresh PostgreSQL database, in this order, each phase timed
//! from its first message (or statement) to its last answer:
//!
//! 1. baseline: the rows as one multi-row `INSERT` per batch, one
//!    transaction per batch, into `accounts.accounts_baseline`, a copy of
//!    `accounts.accounts` with all its indexes (`LIKE … INCLUDING ALL`);
//! 2. import: the same rows streamed through `ImportAccounts`, `--batch`
//!    rows a message (all new: N created);
//! 3. re-import: the same stream again (all unchanged: the idempotent path).
//!
//! Between phases (untimed): the outbox relay is let drain, then
//! `VACUUM (ANALYZE)` and `CHECKPOINT`, so no phase pays for the one before.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    time::{Duration, Instant},
};

use anyhow::Context;
use banso_proto::{accounts as pb, types as tpb};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value};

use crate::{
    data,
    harness::Harness,
    monitor::{self, Monitor, Watch},
};

/// At most this many rows a message: the API's limit (accounts_service.proto).
const MAX_BATCH: usize = 1000;
/// Bound values a baseline row.
const COLUMNS: &[&str] = &[
    "id",
    "tenant_id",
    "name",
    "external_id",
    "industry",
    "employee_count",
    "revenue_band",
    "region",
    "plan_tier",
    "lifecycle_stage",
    "touch_model",
    "owner_id",
    "arr_currency",
    "arr_amount_minor",
    "contract_start_date",
    "renewal_date",
    "tags",
    "custom_attributes",
    "create_time",
    "update_time",
    "version",
];
const PG_MAX_PARAMS: usize = 65_535;
const _: () = assert!(MAX_BATCH * COLUMNS.len() <= PG_MAX_PARAMS);

/// Imported accounts whose columns (all but id and timestamps; JSON as
/// text) equal those of their baseline row.
const SAME_AS_BASELINE: &str = "SELECT count(*) FROM accounts.accounts a \
     JOIN accounts.accounts_baseline b USING (tenant_id, external_id) \
     WHERE (a.name, a.industry, a.employee_count, a.revenue_band, a.region, a.plan_tier, a.lifecycle_stage, \
            a.touch_model, a.owner_id, a.arr_currency, a.arr_amount_minor, a.contract_start_date, a.renewal_date, \
            a.tags::text, a.custom_attributes::text, a.version) \
     IS NOT DISTINCT FROM (b.name, b.industry, b.employee_count, b.revenue_band, b.region, b.plan_tier, \
            b.lifecycle_stage, b.touch_model, b.owner_id, b.arr_currency, b.arr_amount_minor, b.contract_start_date, \
            b.renewal_date, b.tags::text, b.custom_attributes::text, b.version)";

const GOAL_ROWS_PER_SEC: f64 = 10_000.0;
const GOAL_RATIO: f64 = 0.5;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Accounts to import.
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Rows a message (and a baseline transaction), 1 to 1000.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// PostgreSQL server; a fresh database is created on it and dropped after.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    database_url: String,
    /// Seed of the generated rows.
    #[arg(long, default_value_t = 20_261_122)]
    seed: u64,
    /// Cancel the import after this many seconds (0: no limit), so a slow
    /// service cannot stretch the run; its rate is then over the rows
    /// committed by that time.
    #[arg(long, default_value_t = 120)]
    import_budget_secs: u64,
    /// Sample the database sessions every 10 ms during the imports and print
    /// where their time goes (costs the service a little).
    #[arg(long)]
    profile: bool,
    /// Diagnostic: run the service without its outbox relay (events are
    /// recorded, not published), to see what publishing them costs the import.
    #[arg(long)]
    no_relay: bool,
    /// Keep the database afterwards (for EXPLAIN and friends).
    #[arg(long)]
    keep: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.rows > 0, "--rows must be at least 1");
    anyhow::ensure!(
        (1..=MAX_BATCH).contains(&args.batch),
        "--batch must be between 1 and {MAX_BATCH} (ImportAccounts takes at most {MAX_BATCH} rows a message)"
    );
    let started = Instant::now();
    let load_before = loadavg();
    let t = Instant::now();
    let accounts = data::accounts(args.rows, args.seed);
    let first = pb::ImportAccountsRequest { accounts: accounts[..args.batch.min(args.rows)].to_vec() };
    println!(
        "banso-bench import: {} accounts (seed {}), {} rows a message / transaction ({} KB a message); \
         generated in {:.2} s",
        int(args.rows),
        args.seed,
        int(args.batch),
        int(prost::Message::encoded_len(&first) / 1024),
        t.elapsed().as_secs_f64()
    );

    let mut harness = Harness::start(&args.database_url, !args.no_relay).await?;
    if args.no_relay {
        println!("diagnostic: the service runs WITHOUT its outbox relay (--no-relay): not a production figure");
    }
    harness.keep = args.keep;
    let result = phases(&args, &harness, &accounts).await;
    let stopped = harness.stop().await;
    let mut report = result?;
    stopped?;
    report.load = format!("load average {load_before} before, {} after", loadavg());
    report.print(started.elapsed());
    Ok(())
}

struct Report {
    rows: usize,
    batch: usize,
    machine: String,
    load: String,
    postgres: String,
    settings: String,
    baseline: Phase,
    import: Phase,
    reimport: Phase,
    /// Rows the import's rate is over: all of them, or those committed when
    /// its budget ran out.
    import_rows: usize,
    /// Rows the import left in the table, and the re-import sends again.
    imported: usize,
    budget: Option<Duration>,
    relay_drain: Option<Duration>,
    no_relay: bool,
    written: String,
    checkpoint_note: Option<String>,
}

struct Phase {
    elapsed: Duration,
    /// CPU seconds it cost.
    cpu: CpuUse,
    /// Seconds per batch, when the bench can see batches (the baseline).
    batches: Vec<f64>,
    watch: Watch,
}

impl Phase {
    fn rate(&self, rows: usize) -> f64 {
        rows as f64 / self.elapsed.as_secs_f64()
    }

    fn spread(&self) -> String {
        if self.batches.is_empty() {
            return String::new();
        }
        let mut s = self.batches.clone();
        s.sort_by(f64::total_cmp);
        let q = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize] * 1000.0;
        let tenth = (self.batches.len() / 10).max(1);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64 * 1000.0;
        format!(
            "a batch: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms; first 10% {:.1} ms, last 10% {:.1} ms",
            q(0.5),
            q(0.9),
            q(1.0),
            mean(&self.batches[..tenth]),
            mean(&self.batches[self.batches.len() - tenth..])
        )
    }
}

async fn phases(args: &Args, h: &Harness, accounts: &[pb::Account]) -> anyhow::Result<Report> {
    let pool = h.pool().await?;
    let postgres = scalar_text(&pool, "SELECT version()").await?;
    let settings = pg_settings(&pool).await?;
    let n = accounts.len();
    println!("service: Accounts in-process on {}, database {}", h.channel_addr(), h.db_url);
    println!("postgres: {postgres}");

    // 1. Baseline.
    pool.execute_unprepared("CREATE TABLE accounts.accounts_baseline (LIKE accounts.accounts INCLUDING ALL)").await?;
    let rows: Vec<[Value; 17]> = accounts.iter().map(baseline_values).collect();
    let checkpoint_note = settle(&pool).await;
    let monitor = Monitor::start(h.pool().await?, "SELECT count(*) FROM accounts.accounts_baseline", None);
    let cpu = CpuSample::take(&pool).await;
    let (elapsed, batches) = insert_baseline(&pool, &rows, args.batch).await?;
    let cpu = cpu.since(&pool).await;
    let baseline = Phase { elapsed, cpu, batches, watch: monitor.finish().await };
    drop(rows);
    let stored = count(&pool, "SELECT count(*) FROM accounts.accounts_baseline").await?;
    anyhow::ensure!(stored == n as i64, "baseline: {stored} rows stored, expected {n}");
    println!(
        "  plain INSERT   {:>8.2} s  {:>9} rows/s",
        baseline.elapsed.as_secs_f64(),
        int(baseline.rate(n) as usize)
    );
    settle(&pool).await;

    // 2. Import: all new.
    let budget = (args.import_budget_secs > 0).then(|| Duration::from_secs(args.import_budget_secs));
    let mut client = h.client();
    let monitor = Monitor::start(
        h.pool().await?,
        "SELECT count(*) FROM accounts.accounts",
        args.profile.then_some(monitor::IMPORT),
    );
    let cpu = CpuSample::take(&pool).await;
    let outcome = stream_import(&mut client, accounts, args.batch, budget).await?;
    let cpu = cpu.since(&pool).await;
    let watch = monitor.finish().await;
    let (elapsed, import_rows, imported) = match outcome {
        Streamed::Answered { elapsed, response } => {
            check(&response, n, (n, 0, 0))?;
            (elapsed, n, n)
        }
        Streamed::Cancelled { elapsed } => {
            let at_cutoff = count(&pool, "SELECT count(*) FROM accounts.accounts").await? as usize;
            let committed = wait_until_quiet(&pool).await?;
            println!(
                "  import: cancelled at its {} s budget (--import-budget-secs) with {} of {} rows committed \
                 ({} once the batch in flight settled)",
                args.import_budget_secs,
                int(at_cutoff),
                int(n),
                int(committed)
            );
            (elapsed, at_cutoff, committed)
        }
    };
    let import = Phase { elapsed, cpu, batches: Vec::new(), watch };
    println!(
        "  import         {:>8.2} s  {:>9} rows/s",
        import.elapsed.as_secs_f64(),
        int(import.rate(import_rows) as usize)
    );
    let tag_rows: usize = accounts[..imported].iter().map(|a| a.tags.len()).sum();
    let stored = count(&pool, "SELECT count(*) FROM accounts.accounts").await?;
    let last = scalar_text(&pool, "SELECT coalesce(max(external_id), '') FROM accounts.accounts").await?;
    let tags = count(&pool, "SELECT count(*) FROM accounts.account_tags").await?;
    let events = count(&pool, "SELECT count(*) FROM accounts.outbox").await?;
    anyhow::ensure!(imported > 0, "import: no row was committed within the budget");
    anyhow::ensure!(stored == imported as i64, "import: {stored} accounts stored, expected {imported}");
    anyhow::ensure!(
        last == accounts[imported - 1].external_id,
        "import: the stored accounts are not the first {imported} rows (last external_id {last:?})"
    );
    anyhow::ensure!(tags == tag_rows as i64, "import: {tags} tag rows stored, expected {tag_rows}");
    anyhow::ensure!(events >= imported as i64, "import: {events} outbox rows, expected at least {imported}");
    // Fairness: the baseline wrote the same values as the service did.
    let same = count(&pool, SAME_AS_BASELINE).await?;
    anyhow::ensure!(
        same == imported as i64,
        "only {same} of the {imported} imported accounts equal their baseline row column by column"
    );
    let envelope = count(&pool, "SELECT coalesce(avg(length(payload)), 0)::bigint FROM accounts.outbox").await?;
    let written = format!(
        "{} accounts (each equal to its baseline row, column by column), {} account_tags rows, \
         {} outbox events ({} bytes each on average)",
        int(imported),
        int(tag_rows),
        int(events as usize),
        int(envelope as usize)
    );
    let relay_drain = if args.no_relay { None } else { drain_outbox(&pool, Duration::from_secs(60)).await? };
    settle(&pool).await;

    // 3. Re-import of the same rows: all unchanged.
    let monitor = Monitor::start(
        h.pool().await?,
        "SELECT count(*) FROM accounts.accounts",
        args.profile.then_some(monitor::IMPORT),
    );
    let cpu = CpuSample::take(&pool).await;
    let Streamed::Answered { elapsed, response } =
        stream_import(&mut client, &accounts[..imported], args.batch, None).await?
    else {
        unreachable!("no budget, no cancellation")
    };
    let cpu = cpu.since(&pool).await;
    let reimport = Phase { elapsed, cpu, batches: Vec::new(), watch: monitor.finish().await };
    check(&response, imported, (0, 0, imported))?;
    println!(
        "  re-import      {:>8.2} s  {:>9} rows/s",
        reimport.elapsed.as_secs_f64(),
        int(reimport.rate(imported) as usize)
    );
    pool.close().await.ok();

    Ok(Report {
        rows: n,
        batch: args.batch,
        machine: machine(),
        load: String::new(),
        postgres,
        settings,
        baseline,
        import,
        reimport,
        import_rows,
        imported,
        budget,
        relay_drain,
        no_relay: args.no_relay,
        written,
        checkpoint_note,
    })
}

/// The 17 values of a row between its id and its timestamps, as the
/// service stores them: stages and touch models by their lowercase names,
/// tags and attributes as the same JSON (attributes tagged by kind).
fn baseline_values(a: &pb::Account) -> [Value; 17] {
    use tpb::attribute_value::Kind;
    // LIFECYCLE_STAGE_ADOPTION is stored as "adoption", TOUCH_MODEL_LOW as "low".
    let stage = a.lifecycle_stage().as_str_name().trim_start_matches("LIFECYCLE_STAGE_").to_lowercase();
    let touch = a.touch_model().as_str_name().trim_start_matches("TOUCH_MODEL_").to_lowercase();
    let date = |d: &Option<tpb::Date>| {
        d.as_ref().map(|d| chrono::NaiveDate::from_ymd_opt(d.year, d.month as u32, d.day as u32).expect("valid date"))
    };
    let attrs: BTreeMap<String, serde_json::Value> = a
        .custom_attributes
        .iter()
        .map(|(k, v)| {
            let (kind, value) = match v.kind.as_ref().expect("generated attribute has a value") {
                Kind::StringValue(s) => ("string", serde_json::json!(s)),
                Kind::IntValue(i) => ("int", serde_json::json!(i)),
                Kind::DoubleValue(d) => ("double", serde_json::json!(d)),
                Kind::BoolValue(b) => ("bool", serde_json::json!(b)),
                Kind::DateValue(d) => ("date", serde_json::json!(date(&Some(*d)).expect("valid date"))),
                Kind::TimestampValue(t) => (
                    "timestamp",
                    serde_json::json!(chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32).expect("valid")),
                ),
            };
            (k.clone(), serde_json::json!({ "type": kind, "value": value }))
        })
        .collect();
    let json = |v: serde_json::Value| Value::Json(Some(Box::new(v)));
    [
        Value::from(crate::harness::TENANT.to_owned()),
        Value::from(a.name.clone()),
        Value::from(Some(a.external_id.clone())),
        Value::from(a.industry.clone()),
        Value::from(a.employee_count),
        Value::from(a.revenue_band.clone()),
        Value::from(a.region.clone()),
        Value::from(a.plan_tier.clone()),
        Value::from(stage),
        Value::from(touch),
        Value::from(a.owner_id.clone()),
        Value::from(a.arr.as_ref().map(|m| m.currency_code.clone())),
        Value::from(a.arr.as_ref().map(|m| m.amount_minor)),
        Value::from(date(&a.contract_start_date)),
        Value::from(date(&a.renewal_date)),
        json(serde_json::to_value(&a.tags).expect("tags serialize")),
        json(serde_json::to_value(&attrs).expect("attributes serialize")),
    ]
}

/// One multi-row INSERT a batch, one transaction a batch.
async fn insert_baseline(
    pool: &DatabaseConnection,
    rows: &[[Value; 17]],
    batch: usize,
) -> anyhow::Result<(Duration, Vec<f64>)> {
    let start = Instant::now();
    let mut batches = Vec::with_capacity(rows.len().div_ceil(batch));
    for chunk in rows.chunks(batch) {
        let t = Instant::now();
        let now = chrono::Utc::now();
        let mut sql = format!("INSERT INTO accounts.accounts_baseline ({}) VALUES ", COLUMNS.join(", "));
        let mut values = Vec::with_capacity(chunk.len() * COLUMNS.len());
        for (r, row) in chunk.iter().enumerate() {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..COLUMNS.len() {
                let sep = if c == 0 { "" } else { ", " };
                let _ = write!(sql, "{sep}${}", r * COLUMNS.len() + c + 1);
            }
            sql.push(')');
            values.push(Value::from(uuid::Uuid::now_v7()));
            values.extend(row.iter().cloned());
            values.extend([Value::from(now), Value::from(now), Value::from(1i64)]);
        }
        let txn = pool.begin().await?;
        txn.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values)).await?;
        txn.commit().await?;
        batches.push(t.elapsed().as_secs_f64());
    }
    Ok((start.elapsed(), batches))
}

/// CPU time used so far: this process's, and each of the PostgreSQL
/// processes serving this database (read from /proc, so only when the server
/// runs on this machine).
pub(crate) struct CpuSample {
    process: f64,
    backends: BTreeMap<u32, f64>,
}

/// CPU seconds a phase cost.
pub(crate) struct CpuUse {
    pub(crate) process: f64,
    /// None when no server process could be read.
    postgres: Option<f64>,
}

impl std::fmt::Display for CpuUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.postgres {
            Some(pg) => write!(f, "PostgreSQL {pg:>6.2} s, bench process {:>6.2} s", self.process),
            None => write!(f, "PostgreSQL    n/a (not on this machine), bench process {:>6.2} s", self.process),
        }
    }
}

impl CpuSample {
    pub(crate) async fn take(pool: &DatabaseConnection) -> CpuSample {
        let pids = pool
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()",
            ))
            .await
            .map(|rows| rows.iter().filter_map(|r| r.try_get_by_index::<i32>(0).ok()).collect::<Vec<_>>())
            .unwrap_or_default();
        let backends =
            pids.into_iter().filter_map(|p| Some((p as u32, cpu_seconds(&format!("/proc/{p}/stat"))?))).collect();
        CpuSample { process: cpu_seconds("/proc/self/stat").unwrap_or(0.0), backends }
    }

    /// The CPU used since this sample (a server process started since
    /// counts whole; one that ended since is missed).
    pub(crate) async fn since(self, pool: &DatabaseConnection) -> CpuUse {
        let now = CpuSample::take(pool).await;
        let postgres = (!now.backends.is_empty()).then(|| {
            now.backends.iter().map(|(pid, t)| t - self.backends.get(pid).copied().unwrap_or(0.0)).sum::<f64>()
        });
        CpuUse { process: now.process - self.process, postgres }
    }
}

/// utime + stime of a /proc/<pid>/stat, in seconds (USER_HZ = 100).
fn cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after "pid (comm) ": state is the first; utime and stime the 12th and 13th.
    let mut fields = stat[stat.rfind(')')? + 2..].split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

enum Streamed {
    Answered {
        elapsed: Duration,
        response: pb::ImportAccountsResponse,
    },
    /// The budget ran out: the call was cancelled (rows already committed stay).
    Cancelled {
        elapsed: Duration,
    },
}

/// Streams `accounts` in messages of `batch` rows; the clock runs from the
/// call (the first message) to the response. When `budget` runs out first,
/// the call is cancelled: the client cannot stop by sending less, as tonic
/// and HTTP/2 buffer megabytes of messages ahead of the server.
async fn stream_import(
    client: &mut crate::harness::Client,
    accounts: &[pb::Account],
    batch: usize,
    budget: Option<Duration>,
) -> anyhow::Result<Streamed> {
    let messages: Vec<pb::ImportAccountsRequest> =
        accounts.chunks(batch).map(|c| pb::ImportAccountsRequest { accounts: c.to_vec() }).collect();
    let start = Instant::now();
    let call = client.import_accounts(futures::stream::iter(messages));
    let response = match budget {
        None => call.await,
        Some(b) => match tokio::time::timeout(b, call).await {
            Ok(r) => r,
            Err(_) => return Ok(Streamed::Cancelled { elapsed: start.elapsed() }),
        },
    };
    let response = response.context("ImportAccounts failed")?.into_inner();
    Ok(Streamed::Answered { elapsed: start.elapsed(), response })
}

/// After a cancelled import: waits until no service session has run import
/// SQL for a second (the batch in flight commits or rolls back); the rows
/// committed then.
async fn wait_until_quiet(pool: &DatabaseConnection) -> anyhow::Result<usize> {
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
               AND pid <> pg_backend_pid() AND state IS NOT NULL AND state <> 'idle' \
               AND query NOT LIKE '%outbox_lease%' AND query NOT LIKE 'SELECT \"outbox\"%' \
               AND query NOT LIKE 'UPDATE \"outbox\" SET%'";
    let start = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    while start.elapsed() < Duration::from_secs(120) {
        if count(pool, sql).await? == 0 {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_secs(1) {
                break;
            }
        } else {
            quiet_since = None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(count(pool, "SELECT count(*) FROM accounts.accounts").await? as usize)
}

fn check(
    resp: &pb::ImportAccountsResponse,
    n: usize,
    (created, updated, unchanged): (usize, usize, usize),
) -> anyhow::Result<()> {
    let got = (resp.rows, resp.created, resp.updated, resp.unchanged, resp.failed);
    let want = (n as i64, created as i64, updated as i64, unchanged as i64, 0);
    if got != want {
        for e in resp.errors.iter().take(5) {
            eprintln!("  row {} ({}): {}: {}", e.row, e.external_id, e.field, e.description);
        }
        anyhow::bail!("ImportAccounts answered rows/created/updated/unchanged/failed = {got:?}, expected {want:?}");
    }
    Ok(())
}

/// Waits until the relay has published every outbox row; how long it took.
async fn drain_outbox(pool: &DatabaseConnection, limit: Duration) -> anyhow::Result<Option<Duration>> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if count(pool, "SELECT count(*) FROM accounts.outbox WHERE published_time IS NULL").await? == 0 {
            return Ok(Some(start.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(None)
}

/// Untimed housekeeping between phases, so none pays for the one before:
/// vacuum and analyze everything, then flush dirty pages.
pub(crate) async fn settle(pool: &DatabaseConnection) -> Option<String> {
    if let Err(e) = pool.execute_unprepared("VACUUM (ANALYZE)").await {
        return Some(format!("VACUUM failed: {e}"));
    }
    match pool.execute_unprepared("CHECKPOINT").await {
        Ok(_) => None,
        Err(e) => Some(format!("CHECKPOINT failed (needs superuser or pg_checkpoint): {e}")),
    }
}

/// The PostgreSQL settings that move the figures, for the report.
pub(crate) async fn pg_settings(pool: &DatabaseConnection) -> anyhow::Result<String> {
    scalar_text(
        pool,
        "SELECT 'shared_buffers=' || current_setting('shared_buffers') || ', fsync=' || current_setting('fsync') \
         || ', synchronous_commit=' || current_setting('synchronous_commit') \
         || ', autovacuum=' || current_setting('autovacuum') \
         || ', max_wal_size=' || current_setting('max_wal_size')",
    )
    .await
}

pub(crate) async fn scalar_text(pool: &DatabaseConnection, sql: &str) -> anyhow::Result<String> {
    let row = pool.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await?.context("no row")?;
    Ok(row.try_get_by_index::<String>(0)?)
}

pub(crate) async fn count(pool: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row = pool.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await?.context("no row")?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

pub(crate) fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
    });
    match cpu {
        Some(cpu) => format!("{cores} cores (nproc), {cpu}"),
        None => format!("{cores} cores (nproc)"),
    }
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// 12345 → "12,345".
pub fn int(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Report {
    fn print(&self, total: Duration) {
        let (n, k) = (self.rows, self.imported);
        let (base, imp, re) = (self.baseline.rate(n), self.import.rate(self.import_rows), self.reimport.rate(k));
        let ratio = imp / base;
        println!();
        println!("machine:  {}; {}", self.machine, self.load);
        println!("postgres: {}", self.postgres);
        println!("          {}", self.settings);
        println!("rows:     {} accounts, {} rows a message / transaction", int(n), int(self.batch));
        if k < n {
            println!(
                "          the import ran out of its {} s budget: its rate is over the {} rows committed by then, \
                 the re-import sends the first {} rows (all committed)",
                self.budget.map_or(0, |b| b.as_secs()),
                int(self.import_rows),
                int(k)
            );
        }
        println!("import wrote: {}", self.written);
        match self.relay_drain {
            _ if self.no_relay => println!("outbox relay: OFF (--no-relay diagnostic); the events stay in the outbox"),
            Some(d) => println!(
                "outbox relay: every event published {:.2} s after the import returned (untimed)",
                d.as_secs_f64()
            ),
            None => println!("outbox relay: events still unpublished 60 s after the import returned (untimed)"),
        }
        if let Some(note) = &self.checkpoint_note {
            println!("note: {note}");
        }
        println!();
        println!("| phase                                  |     rows |  seconds |   rows/s |");
        println!("|----------------------------------------|---------:|---------:|---------:|");
        let line = |name: &str, rows: usize, p: &Phase| {
            println!(
                "| {name:<38} | {:>8} | {:>8.2} | {:>8} |",
                int(rows),
                p.elapsed.as_secs_f64(),
                int(p.rate(rows) as usize)
            );
        };
        line("ImportAccounts, all new (created)", self.import_rows, &self.import);
        line("ImportAccounts re-run (all unchanged)", k, &self.reimport);
        line("baseline: plain multi-row INSERT", n, &self.baseline);
        println!("| import / plain INSERT                  |          |          | {:>7.1}% |", ratio * 100.0);
        println!();
        println!("rows/s as the table grows (rows committed, polled once a second):");
        println!("  import:       {}", self.import.watch.rates());
        println!("  plain INSERT: {}", self.baseline.watch.rates());
        println!("  plain INSERT {}", self.baseline.spread());
        println!("CPU seconds (user + system) during each phase, of the PostgreSQL processes serving this database");
        println!("and of the bench process (the service with its relay and bus, and the client):");
        for (name, p) in [("plain INSERT", &self.baseline), ("import", &self.import), ("re-import", &self.reimport)] {
            println!("  {name:<13} {}", p.cpu);
        }
        self.import.watch.print_profile("the import");
        self.reimport.watch.print_profile("the re-import");
        if self.import.elapsed > crate::harness::DEFAULT_REQUEST_TIMEOUT {
            println!(
                "note: the import call took longer than the default request timeout ({} s, BANSO_REQUEST_TIMEOUT_SECS); \
                 the bench raises it to {} s",
                crate::harness::DEFAULT_REQUEST_TIMEOUT.as_secs(),
                crate::harness::REQUEST_TIMEOUT.as_secs()
            );
        }
        println!();
        let goal = |ok: bool, what: String| {
            println!("goal {}: {what}", if ok { "MET   " } else { "MISSED" });
            ok
        };
        let goal_rate = int(GOAL_ROWS_PER_SEC as usize);
        let g1 = goal(imp >= GOAL_ROWS_PER_SEC, format!("import >= {goal_rate} rows/s (got {})", int(imp as usize)));
        let g2 = goal(
            ratio >= GOAL_RATIO,
            format!("import >= {:.0}% of plain INSERT (got {:.1}%)", GOAL_RATIO * 100.0, ratio * 100.0),
        );
        let g3 = goal(re >= GOAL_ROWS_PER_SEC, format!("re-import >= {goal_rate} rows/s (got {})", int(re as usize)));
        if base < GOAL_ROWS_PER_SEC {
            println!(
                "note: the plain INSERT itself does {} rows/s here: below {goal_rate}, so the import cannot reach it on this machine",
                int(base as usize)
            );
        }
        if k < n {
            println!(
                "note: the import was cancelled at its time budget, so it covers {} of {} rows; \
                 the rates as the table grows (above) show how the rest would go",
                int(self.import_rows),
                int(n)
            );
        }
        if g1 && g2 && g3 {
            println!("all goals met.");
        } else {
            println!("*** GOAL MISSED: a measurement, not a failure; docs/benchmarks.md says where the time goes ***");
        }
        println!("total run time: {:.1} s", total.as_secs_f64());
    }
}
