//! `banso-bench health-ingest`: IngestUsage (client streaming) against a
//! binary COPY of the same rows into a copy of the `usage_events` table.
//!
//! One run, one fresh PostgreSQL database, the Health service in-process
//! (as `banso serve health` assembles it), in this order, each phase timed
//! from its first message (or statement) to its last answer:
//!
//! 1. baseline: the rows the service will store, as one
//!    `COPY … FROM STDIN (FORMAT binary)` per batch into
//!    `health.usage_events_copy` (`LIKE usage_events INCLUDING ALL`);
//! 2. ingest: the same events streamed through `IngestUsage`, `--batch`
//!    events a message (all new);
//! 3. re-ingest: the same stream again (all duplicates: the retry path).
//!
//! Between phases (untimed): the scorer and relay are let finish, then
//! `VACUUM (ANALYZE)` and `CHECKPOINT`.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use anyhow::Context;
use banso_proto::health as pb;
use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::{
    harness::{Harness, HealthClient, Service, TENANT},
    health_common::{create_scorecard, typical_scorecard, wait_quiet},
    import::{count, int, loadavg, machine, pg_settings, scalar_text, settle},
    monitor::{Monitor, Profile, Watch},
    usage::{Generated, Tenant, day},
};

/// At most this many events a message: the API's limit (health_service.proto).
const MAX_BATCH: usize = 5_000;
const GOAL_EVENTS_PER_SEC: f64 = 20_000.0;
const GOAL_RATIO: f64 = 0.75;

const COLUMNS: &str = "tenant_id, event_id, account_id, user_key, event_name, occur_time, day, quantity, \
                       duration_secs, properties, ingest_time";

/// Ingested events whose stored columns (all but ingest_time; JSON compared
/// as jsonb) equal those of their COPY row.
const SAME_AS_BASELINE: &str = "SELECT count(*) FROM health.usage_events u \
     JOIN health.usage_events_copy c USING (tenant_id, event_id) \
     WHERE (u.account_id, u.user_key, u.event_name, u.occur_time, u.day, u.quantity, u.duration_secs, \
            u.properties::jsonb) \
     IS NOT DISTINCT FROM (c.account_id, c.user_key, c.event_name, c.occur_time, c.day, c.quantity, \
            c.duration_secs, c.properties::jsonb)";

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Usage events to ingest.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Events a message (and a COPY), 1 to 5000.
    #[arg(long, default_value_t = 5_000)]
    pub batch: usize,
    /// Accounts in Health's projection.
    #[arg(long, default_value_t = 1_000)]
    pub accounts: usize,
    /// Event timestamps are spread over this many days before now (within
    /// the 7-day late window).
    #[arg(long, default_value_t = 6)]
    pub days: u32,
    /// PostgreSQL server; a fresh database is created on it and dropped after.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub database_url: String,
    /// Seed of the generated accounts and events.
    #[arg(long, default_value_t = 20_261_122)]
    pub seed: u64,
    /// Diagnostic: no scorecard, so the scorer has nothing to score while
    /// the events arrive (the tenant is not using health scores yet).
    #[arg(long)]
    pub no_scorecard: bool,
    /// Sample the database sessions every 10 ms during the ingest and print
    /// where their time goes.
    #[arg(long)]
    pub profile: bool,
    /// Keep the database afterwards.
    #[arg(long)]
    pub keep: bool,
}

pub struct Outcome {
    pub ingest_rate: f64,
    pub ratio: f64,
}

pub async fn run(args: Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(args.events > 0 && args.accounts > 0, "--events and --accounts must be at least 1");
    anyhow::ensure!((1..=MAX_BATCH).contains(&args.batch), "--batch must be 1 to {MAX_BATCH}");
    anyhow::ensure!((1..=6).contains(&args.days), "--days must be 1 to 6 (the late window is 7 days)");
    let started = Instant::now();
    let load_before = loadavg();
    let t = Instant::now();
    let tenant = Tenant::new(args.accounts, args.seed);
    let now = Utc::now();
    let spread = chrono::Duration::days(i64::from(args.days));
    let messages: Vec<Vec<Generated>> = (0..args.events.div_ceil(args.batch))
        .map(|i| tenant.message(i as u64, args.batch.min(args.events - i * args.batch), now, spread))
        .collect();
    let requests: Vec<pb::IngestUsageRequest> = messages
        .iter()
        .map(|m| pb::IngestUsageRequest { events: m.iter().map(|g| g.event.clone()).collect() })
        .collect();
    println!(
        "banso-bench health-ingest: {} events over {} accounts and {} event names, the last {} days (seed {}), \
         {} events a message ({} KB a message); generated in {:.2} s",
        int(args.events),
        int(args.accounts),
        tenant.names.len(),
        args.days,
        args.seed,
        int(args.batch),
        int(prost::Message::encoded_len(&requests[0]) / 1024),
        t.elapsed().as_secs_f64()
    );

    let mut harness = Harness::start_service(&args.database_url, Service::Health, None).await?;
    harness.keep = args.keep;
    let result = phases(&args, &harness, &tenant, &messages, requests).await;
    let stopped = harness.stop().await;
    let report = result?;
    stopped?;
    report.print(&args, &load_before, started.elapsed());
    Ok(Outcome { ingest_rate: report.ingest_rate(), ratio: report.ingest_rate() / report.copy_rate() })
}

struct Report {
    events: usize,
    machine: String,
    postgres: String,
    settings: String,
    copy: Duration,
    ingest: Duration,
    /// From the ingest's first message until the rollup task had folded
    /// every batch.
    rolled_up: Duration,
    reingest: Duration,
    ingest_watch: Watch,
    copy_watch: Watch,
    written: String,
    scorer_tail: Option<Duration>,
    scorecard: bool,
}

impl Report {
    fn copy_rate(&self) -> f64 {
        self.events as f64 / self.copy.as_secs_f64()
    }
    fn ingest_rate(&self) -> f64 {
        self.events as f64 / self.ingest.as_secs_f64()
    }
}

async fn phases(
    args: &Args,
    h: &Harness,
    tenant: &Tenant,
    messages: &[Vec<Generated>],
    requests: Vec<pb::IngestUsageRequest>,
) -> anyhow::Result<Report> {
    let pool = h.pool_for(banso_health::NAME).await?;
    let postgres = scalar_text(&pool, "SELECT version()").await?;
    let settings = pg_settings(&pool).await?;
    println!("service: Health in-process on {}, database {}", h.channel_addr(), h.db_url);
    println!("postgres: {postgres}");
    let n = args.events;

    // The tenant: accounts in the projection, a scorecard.
    let t = Instant::now();
    tenant.seed(&pool).await?;
    let mut client = h.health_client();
    if !args.no_scorecard {
        create_scorecard(&mut client, typical_scorecard()).await?;
        wait_quiet(&pool, Some(args.accounts as i64), Duration::from_secs(120)).await?;
    }
    println!(
        "tenant: {} accounts in the projection (Store::upsert_account){}; {:.1} s",
        int(args.accounts),
        if args.no_scorecard {
            ", no scorecard (--no-scorecard)"
        } else {
            ", a 5-measure scorecard, every account scored"
        },
        t.elapsed().as_secs_f64()
    );

    // 1. Baseline: binary COPY of the same rows.
    pool.execute_unprepared("CREATE TABLE health.usage_events_copy (LIKE health.usage_events INCLUDING ALL)").await?;
    let buffers: Vec<Vec<u8>> = messages.iter().map(|m| copy_buffer(tenant, m)).collect();
    settle(&pool).await;
    let monitor = Monitor::start(h.pool_for("health").await?, "SELECT count(*) FROM health.usage_events_copy", None);
    let copy = copy_in(&pool, &buffers).await?;
    let copy_watch = monitor.finish().await;
    drop(buffers);
    let stored = count(&pool, "SELECT count(*) FROM health.usage_events_copy").await?;
    anyhow::ensure!(stored == n as i64, "COPY: {stored} rows stored, expected {n}");
    println!(
        "  binary COPY    {:>8.2} s  {:>9} events/s",
        copy.as_secs_f64(),
        int((n as f64 / copy.as_secs_f64()) as usize)
    );
    settle(&pool).await;

    // 2. Ingest: all new.
    let profile = args.profile.then_some(PROFILE);
    let monitor = Monitor::start(h.pool_for("health").await?, "SELECT count(*) FROM health.usage_events", profile);
    let start = Instant::now();
    let (ingest, resp) = stream(&mut client, requests.clone()).await?;
    let ingest_watch = monitor.finish().await;
    check(&resp, (n, 0))?;
    println!(
        "  IngestUsage    {:>8.2} s  {:>9} events/s acknowledged",
        ingest.as_secs_f64(),
        int((n as f64 / ingest.as_secs_f64()) as usize)
    );
    let rolled_up = rolled_up(&pool, start).await?;
    println!(
        "  rolled up      {:>8.2} s  {:>9} events/s (every batch in the daily rollups, from the first message)",
        rolled_up.as_secs_f64(),
        int((n as f64 / rolled_up.as_secs_f64()) as usize)
    );
    let written = verify(&pool, messages, n).await?;
    let scorer_tail = if args.no_scorecard { None } else { wait_quiet(&pool, None, Duration::from_secs(600)).await? };
    settle(&pool).await;

    // 3. Re-ingest: all duplicates.
    let (reingest, resp) = stream(&mut client, requests).await?;
    check(&resp, (0, n))?;
    let total = count(&pool, "SELECT coalesce(sum(events), 0)::bigint FROM health.daily_usage").await?;
    anyhow::ensure!(total == n as i64, "re-ingest changed the rollups: {total} events counted, expected {n}");
    println!(
        "  re-ingest      {:>8.2} s  {:>9} events/s",
        reingest.as_secs_f64(),
        int((n as f64 / reingest.as_secs_f64()) as usize)
    );
    pool.close().await.ok();
    Ok(Report {
        events: n,
        machine: machine(),
        postgres,
        settings,
        copy,
        ingest,
        rolled_up,
        reingest,
        ingest_watch,
        copy_watch,
        written,
        scorer_tail,
        scorecard: !args.no_scorecard,
    })
}

/// When every ingested batch was rolled up, polled every 10 ms, as time since `start`.
async fn rolled_up(pool: &DatabaseConnection, start: Instant) -> anyhow::Result<Duration> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while count(pool, "SELECT count(*) FROM health.ingest_batches WHERE rolled_up_time IS NULL").await? > 0 {
        anyhow::ensure!(Instant::now() < deadline, "the rollups did not catch up within 10 minutes");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(start.elapsed())
}

async fn stream(
    client: &mut HealthClient,
    requests: Vec<pb::IngestUsageRequest>,
) -> anyhow::Result<(Duration, pb::IngestUsageResponse)> {
    let start = Instant::now();
    let resp = client.ingest_usage(futures::stream::iter(requests)).await.context("IngestUsage failed")?.into_inner();
    Ok((start.elapsed(), resp))
}

fn check(resp: &pb::IngestUsageResponse, (accepted, duplicates): (usize, usize)) -> anyhow::Result<()> {
    let got = (resp.accepted, resp.duplicates, resp.rejected);
    let want = (accepted as i64, duplicates as i64, 0);
    if got != want {
        for r in resp.rejections.iter().take(5) {
            eprintln!("  event {} ({}): {} {}: {}", r.index, r.event_id, r.reason, r.field, r.description);
        }
        anyhow::bail!("IngestUsage answered accepted/duplicates/rejected = {got:?}, expected {want:?}");
    }
    Ok(())
}

/// The stored events equal the COPY's rows; the rollups hold every event
/// once, per account, day and name, and the distinct users.
async fn verify(pool: &DatabaseConnection, messages: &[Vec<Generated>], n: usize) -> anyhow::Result<String> {
    let stored = count(pool, "SELECT count(*) FROM health.usage_events").await?;
    anyhow::ensure!(stored == n as i64, "ingest: {stored} events stored, expected {n}");
    let same = count(pool, SAME_AS_BASELINE).await?;
    anyhow::ensure!(same == n as i64, "only {same} of the {n} stored events equal their COPY row column by column");
    let events = count(pool, "SELECT coalesce(sum(events), 0)::bigint FROM health.daily_usage").await?;
    anyhow::ensure!(events == n as i64, "daily_usage counts {events} events, expected {n}");
    let mut usage_keys = HashSet::new();
    let mut user_keys = HashSet::new();
    for g in messages.iter().flatten() {
        let d = day(g.occur_time);
        usage_keys.insert((g.account, d, g.event.event_name.as_str()));
        user_keys.insert((g.account, d, g.event.event_name.as_str(), g.event.user_id.as_str()));
    }
    let usage_rows = count(pool, "SELECT count(*) FROM health.daily_usage").await?;
    let user_rows = count(pool, "SELECT count(*) FROM health.daily_users").await?;
    anyhow::ensure!(
        usage_rows == usage_keys.len() as i64,
        "daily_usage has {usage_rows} rows, expected {}",
        usage_keys.len()
    );
    anyhow::ensure!(
        user_rows == user_keys.len() as i64,
        "daily_users has {user_rows} rows, expected {}",
        user_keys.len()
    );
    Ok(format!(
        "{} usage_events (each equal to its COPY row), {} daily_usage rows (summing to {} events), {} daily_users rows",
        int(n),
        int(usage_rows as usize),
        int(events as usize),
        int(user_rows as usize)
    ))
}

/// One `COPY … FROM STDIN (FORMAT binary)` a buffer, each its own
/// transaction (as each ingest batch is).
async fn copy_in(pool: &DatabaseConnection, buffers: &[Vec<u8>]) -> anyhow::Result<Duration> {
    use sea_orm::sqlx::postgres::PgPoolCopyExt;
    let pg = pool.get_postgres_connection_pool();
    let sql = format!("COPY health.usage_events_copy ({COLUMNS}) FROM STDIN (FORMAT binary)");
    let start = Instant::now();
    for buf in buffers {
        let mut copy = pg.copy_in_raw(&sql).await?;
        copy.send(buf.as_slice()).await?;
        copy.finish().await?;
    }
    Ok(start.elapsed())
}

/// The rows the service stores for `events` (account resolved, day in UTC,
/// quantity defaulting to 1, properties as the service serializes them).
fn copy_buffer(tenant: &Tenant, events: &[Generated]) -> Vec<u8> {
    let now = Utc::now();
    let mut w = banso_kit::db::copy::BinaryCopy::new();
    for g in events {
        let e = &g.event;
        w.row(11);
        w.text(TENANT);
        w.text(&e.event_id);
        w.uuid(tenant.accounts[g.account].row.account_id);
        w.text(&e.user_id);
        w.text(&e.event_name);
        w.timestamptz(g.occur_time);
        w.date(day(g.occur_time));
        w.f64(e.quantity.unwrap_or(1.0));
        match e.duration_seconds {
            Some(d) => w.f64(d),
            None => w.null(),
        }
        w.text(&g.properties_json);
        w.timestamptz(now);
    }
    w.finish()
}

/// The health service's sessions during an ingest.
const PROFILE: Profile = Profile {
    classify,
    service: "ingest",
    no_sql: "ingest: no SQL in flight (service CPU: gRPC decode, validation, conversion; or waiting for events)",
};

fn classify(state: &str, query: &str) -> &'static str {
    let q = query.trim_start();
    if crate::monitor::is_relay(q) {
        return "relay: outbox (lease, SELECT pending, UPDATE published_time)";
    }
    if q.starts_with("SELECT event_id FROM usage_events") {
        return "ingest: duplicate check, SELECT event_id = ANY [Store::ingest]";
    }
    if q.starts_with("INSERT INTO ingest_batches") {
        return "ingest: INSERT ingest_batches (the batch's row) [Store::ingest]";
    }
    if q.starts_with("COPY usage_events") {
        return "ingest: COPY usage_events FROM STDIN (FORMAT binary) [Store::ingest]";
    }
    if q.starts_with("UPDATE \"ingest_batches\"") {
        return "rollups: claim pending batches [Store::roll_up]";
    }
    if q.starts_with("INSERT INTO \"daily_usage\"") {
        return "rollups: INSERT daily_usage … SELECT … ON CONFLICT DO UPDATE [Store::roll_up]";
    }
    if q.starts_with("INSERT INTO \"daily_users\"") {
        return "rollups: INSERT daily_users … SELECT DISTINCT … ON CONFLICT DO NOTHING [Store::roll_up]";
    }
    if q.starts_with("INSERT INTO \"event_name_days\"") {
        return "rollups: INSERT event_name_days … SELECT DISTINCT [Store::roll_up]";
    }
    if q.starts_with("SELECT \"account_id\" FROM \"accounts\"")
        || q.starts_with("SELECT \"account_id\", \"external_id\" FROM \"accounts\"")
    {
        return "ingest: SELECT accounts [Store::resolve_accounts]";
    }
    if q.starts_with("SELECT \"time_zone\"") {
        return "ingest: SELECT time_zone [Store::time_zone]";
    }
    if q.starts_with("COMMIT") {
        return if state.starts_with("idle") { "other" } else { "ingest, rollups or scorer: COMMIT (WAL flush)" };
    }
    if state.starts_with("idle in transaction") {
        return "ingest, rollups or scorer: idle in transaction (work between statements)";
    }
    "scorer: rescoring (reads rollups, scorecards, snapshots; writes scores) [scorer::rescore]"
}

impl Report {
    fn print(&self, args: &Args, load_before: &str, total: Duration) {
        let (copy, ingest, re) =
            (self.copy_rate(), self.ingest_rate(), self.events as f64 / self.reingest.as_secs_f64());
        let ratio = ingest / copy;
        println!();
        println!("machine:  {}; load average {load_before} before, {} after", self.machine, loadavg());
        println!("postgres: {}", self.postgres);
        println!("          {}", self.settings);
        println!(
            "events:   {} over {} accounts, {} a message / COPY; scorecard: {}",
            int(self.events),
            int(args.accounts),
            int(args.batch),
            if self.scorecard { "yes (the scorer rescored touched accounts during the ingest)" } else { "none" }
        );
        println!("ingest wrote: {}", self.written);
        if let Some(t) = self.scorer_tail {
            println!("scorer: done rescoring {:.1} s after the ingest returned (untimed)", t.as_secs_f64());
        }
        println!();
        println!("| phase                                   |    events |  seconds |  events/s |");
        println!("|-----------------------------------------|----------:|---------:|----------:|");
        let line = |name: &str, d: Duration| {
            println!(
                "| {name:<39} | {:>9} | {:>8.2} | {:>9} |",
                int(self.events),
                d.as_secs_f64(),
                int((self.events as f64 / d.as_secs_f64()) as usize)
            );
        };
        line("IngestUsage, all new (acknowledged)", self.ingest);
        line("… and all rolled up", self.rolled_up);
        line("IngestUsage re-run, all duplicates", self.reingest);
        line("baseline: binary COPY into a copy", self.copy);
        println!("| IngestUsage / binary COPY               |           |          | {:>8.1}% |", ratio * 100.0);
        println!();
        println!("events/s as the table grows (rows committed, polled once a second):");
        println!("  IngestUsage: {}", self.ingest_watch.rates());
        println!("  COPY:        {}", self.copy_watch.rates());
        self.ingest_watch.print_profile("the ingest");
        println!("re-ingest: {} events/s", int(re as usize));
        println!();
        let goal = |ok: bool, what: String| {
            println!("goal {}: {what}", if ok { "MET   " } else { "MISSED" });
            ok
        };
        let g1 = goal(
            ingest >= GOAL_EVENTS_PER_SEC,
            format!("ingest >= {} events/s (got {})", int(GOAL_EVENTS_PER_SEC as usize), int(ingest as usize)),
        );
        let g2 = goal(
            ratio >= GOAL_RATIO,
            format!("ingest >= {:.0}% of binary COPY (got {:.1}%)", GOAL_RATIO * 100.0, ratio * 100.0),
        );
        if g1 && g2 {
            println!("all goals met.");
        } else {
            println!("*** GOAL MISSED: a measurement, not a failure; docs/benchmarks.md says where the time goes ***");
        }
        println!("total run time: {:.1} s", total.as_secs_f64());
    }
}
