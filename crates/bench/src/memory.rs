//! `banso-bench health-memory`: the peak resident memory of the Health
//! service, as its own process (`banso serve health`, the release binary),
//! while 1,000,000 usage events stream in through IngestUsage.
//!
//! Baseline in the same run: the same process idle, after start-up, with
//! the tenant's accounts in its projection and every account scored.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::Context;
use banso_kit::config::{Config, Vars};
use banso_proto::health as pb;
use chrono::Utc;
use futures::StreamExt as _;
use tonic::transport::Channel;

use crate::{
    harness::{FreshDatabase, health_client, mint},
    health_common::{create_scorecard, mib, proc_kib, typical_scorecard, wait_quiet},
    import::{int, loadavg, machine},
    usage::Tenant,
};

const GOAL_MIB: f64 = 200.0;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Usage events to stream.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: usize,
    /// Events a message, 1 to 5000.
    #[arg(long, default_value_t = 5_000)]
    pub batch: usize,
    /// Accounts in Health's projection.
    #[arg(long, default_value_t = 1_000)]
    pub accounts: usize,
    /// The `banso` binary; default: `banso` next to this program
    /// (target/release/banso: `cargo build --release -p banso`).
    #[arg(long)]
    pub banso_bin: Option<PathBuf>,
    /// PostgreSQL server; a fresh database is created on it and dropped after.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub database_url: String,
    #[arg(long, default_value_t = 20_261_122)]
    pub seed: u64,
    /// Diagnostic: no scorecard, so the scorer does not run during the
    /// stream (the ingest path alone).
    #[arg(long)]
    pub no_scorecard: bool,
    /// Diagnostic: an extra environment variable for the service process,
    /// e.g. `MALLOC_ARENA_MAX=2` (repeatable).
    #[arg(long = "service-env", value_name = "KEY=VALUE")]
    pub service_env: Vec<String>,
    /// Keep the database afterwards.
    #[arg(long)]
    pub keep: bool,
}

pub struct Outcome {
    pub peak_mib: f64,
}

/// The service process; killed if the bench stops early.
struct Child {
    child: tokio::process::Child,
    pid: u32,
    log: PathBuf,
}

impl Child {
    fn rss(&self) -> Option<u64> {
        proc_kib(self.pid, "VmRSS")
    }
    fn hwm(&self) -> Option<u64> {
        proc_kib(self.pid, "VmHWM")
    }

    /// SIGTERM (graceful, as Kubernetes stops a pod), then waits up to 10 s.
    async fn stop(mut self) -> anyhow::Result<()> {
        let _ = tokio::process::Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status().await;
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(_) => Ok(()),
            Err(_) => {
                self.child.kill().await.ok();
                anyhow::bail!("the service did not stop within 10 s of SIGTERM (killed); log: {}", self.log.display())
            }
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(args.events > 0 && args.accounts > 0, "--events and --accounts must be at least 1");
    anyhow::ensure!((1..=5000).contains(&args.batch), "--batch must be 1 to 5000");
    let bin = match &args.banso_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("banso"),
    };
    anyhow::ensure!(
        bin.is_file(),
        "no banso binary at {} (build it: cargo build --release -p banso, or pass --banso-bin)",
        bin.display()
    );
    let started = Instant::now();
    let load_before = loadavg();
    let db = FreshDatabase::create(&args.database_url).await?;
    let dir = std::env::temp_dir().join(&db.name);
    std::fs::create_dir_all(&dir)?;
    let result = measure(&args, &bin, &db, &dir).await;
    let dropped = db.drop_or_keep(args.keep).await;
    let report = result?;
    let _ = std::fs::remove_dir_all(&dir);
    dropped?;
    report.print(&args, &bin, &load_before, started.elapsed());
    Ok(Outcome { peak_mib: mib(report.peak_hwm) })
}

struct Report {
    machine: String,
    started_rss: u64,
    idle_rss: u64,
    idle_hwm: u64,
    peak_sampled: u64,
    peak_hwm: u64,
    end_rss: u64,
    after_scoring_rss: u64,
    ingest: Duration,
    samples: Vec<(f64, u64)>,
    threads: u64,
}

async fn measure(args: &Args, bin: &PathBuf, db: &FreshDatabase, dir: &std::path::Path) -> anyhow::Result<Report> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = format!("127.0.0.1:{port}");
    let log = dir.join("health.log");
    let vars = [
        ("BANSO_DATABASE_URL", db.url.as_str()),
        ("BANSO_MIGRATE_ON_START", "true"),
        ("BANSO_GRPC_ADDR", addr.as_str()),
        ("BANSO_ADMIN_ADDR", "off"),
        ("BANSO_JWT_HS256_SECRET", banso_testkit::TEST_SECRET),
        ("BANSO_DATA_DIR", dir.to_str().context("temp dir is not UTF-8")?),
        ("BANSO_REQUEST_TIMEOUT_SECS", "3600"),
        ("BANSO_LOG", "warn"),
        ("BANSO_LOG_FORMAT", "json"),
        // A fresh database: `serve` migrates it instead of refusing it.
    ];
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(["serve", "health"])
        .env_remove("BANSO_NATS_URL")
        .env_remove("BANSO_CONFIG_FILE")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(dir.join("health.err"))?)
        .kill_on_drop(true);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    for kv in &args.service_env {
        let (k, v) = kv.split_once('=').with_context(|| format!("--service-env {kv:?} is not KEY=VALUE"))?;
        cmd.env(k, v);
    }
    let child = cmd.spawn().with_context(|| format!("cannot start {}", bin.display()))?;
    let pid = child.id().context("the service exited at once")?;
    let mut child = Child { child, pid, log };
    let result = drive(args, &mut child, &addr, db, vars).await;
    let stopped = child.stop().await;
    let report = result?;
    stopped?;
    Ok(report)
}

async fn drive(
    args: &Args,
    child: &mut Child,
    addr: &str,
    db: &FreshDatabase,
    vars: [(&str, &str); 9],
) -> anyhow::Result<Report> {
    // Connect once the service listens (it migrates first).
    let start = Instant::now();
    let channel = loop {
        if let Ok(Some(status)) = child.child.try_wait() {
            anyhow::bail!("the service exited ({status}) during start-up; see {}", child.log.display());
        }
        match Channel::from_shared(format!("http://{addr}"))?.connect().await {
            Ok(c) => break c,
            Err(_) if start.elapsed() < Duration::from_secs(60) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => anyhow::bail!("the service did not listen on {addr} within 60 s: {e}"),
        }
    };
    let started_rss = child.rss().unwrap_or(0);
    println!(
        "banso-bench health-memory: banso serve health (pid {}) on {addr}, up in {:.1} s, RSS {:.1} MiB",
        child.pid,
        start.elapsed().as_secs_f64(),
        mib(started_rss)
    );
    let config = Config::from_vars(&Vars::from_pairs(vars))?;
    let mut client = health_client(channel, &mint(&config)?, config.server.max_message_bytes);

    // The tenant: accounts in the projection (written by the bench through
    // the store, as the Accounts consumer would), a scorecard.
    let pool = banso_kit::db::connect(&db.url, banso_health::NAME, &config.database).await?;
    let tenant = Tenant::new(args.accounts, args.seed);
    tenant.seed(&pool).await?;
    if !args.no_scorecard {
        create_scorecard(&mut client, typical_scorecard()).await?;
        wait_quiet(&pool, Some(args.accounts as i64), Duration::from_secs(120)).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = child.rss().unwrap_or(0);
    let idle_hwm = child.hwm().unwrap_or(0);
    println!(
        "  idle, {} accounts{}: RSS {:.1} MiB (VmHWM so far {:.1} MiB)",
        int(args.accounts),
        if args.no_scorecard { ", no scorecard (--no-scorecard)" } else { " scored" },
        mib(idle_rss),
        mib(idle_hwm)
    );

    // The stream, generated as it is sent.
    let now = Utc::now();
    let spread = chrono::Duration::days(6);
    let (events, batch) = (args.events, args.batch);
    let messages = events.div_ceil(batch);
    let tenant = std::sync::Arc::new(tenant);
    let gen_tenant = tenant.clone();
    let requests = futures::stream::iter(0..messages).map(move |i| pb::IngestUsageRequest {
        events: gen_tenant
            .message(i as u64, batch.min(events - i * batch), now, spread)
            .into_iter()
            .map(|g| g.event)
            .collect(),
    });
    let pid = child.pid;
    let sampling = tokio_util::sync::CancellationToken::new();
    let stop = sampling.clone();
    let sampler = tokio::spawn(async move {
        let t0 = Instant::now();
        let mut samples = Vec::new();
        loop {
            if let Some(kib) = proc_kib(pid, "VmRSS") {
                samples.push((t0.elapsed().as_secs_f64(), kib));
            }
            tokio::select! {
                _ = stop.cancelled() => return samples,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    });
    let t = Instant::now();
    let resp = client.ingest_usage(requests).await.context("IngestUsage failed")?.into_inner();
    let ingest = t.elapsed();
    let end_rss = child.rss().unwrap_or(0);
    anyhow::ensure!(
        resp.accepted == events as i64 && resp.rejected == 0,
        "IngestUsage answered accepted {} rejected {} duplicates {}, expected {events} accepted",
        resp.accepted,
        resp.rejected,
        resp.duplicates
    );
    println!(
        "  ingested {} events in {:.1} s ({} events/s); RSS {:.1} MiB",
        int(events),
        ingest.as_secs_f64(),
        int((events as f64 / ingest.as_secs_f64()) as usize),
        mib(end_rss)
    );
    // The scorer keeps working after the ack: its tail counts too.
    wait_quiet(&pool, None, Duration::from_secs(600)).await?;
    let after_scoring_rss = child.rss().unwrap_or(0);
    let peak_hwm = child.hwm().unwrap_or(0);
    sampling.cancel();
    let samples = sampler.await.unwrap_or_default();
    let peak_sampled = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let threads = proc_kib(pid, "Threads").unwrap_or(0);
    pool.close().await.ok();
    Ok(Report {
        machine: machine(),
        started_rss,
        idle_rss,
        idle_hwm,
        peak_sampled,
        peak_hwm,
        end_rss,
        after_scoring_rss,
        ingest,
        samples,
        threads,
    })
}

impl Report {
    fn print(&self, args: &Args, bin: &std::path::Path, load_before: &str, total: Duration) {
        println!();
        println!("machine:  {}; load average {load_before} before, {} after", self.machine, loadavg());
        println!(
            "binary:   {} serve health (own process, PostgreSQL, embedded bus; {} threads at the end){}{}",
            bin.display(),
            self.threads,
            if args.no_scorecard { "; no scorecard: the scorer idles (diagnostic)" } else { "" },
            if args.service_env.is_empty() {
                String::new()
            } else {
                format!("; diagnostic env {}", args.service_env.join(" "))
            }
        );
        println!(
            "stream:   {} events in messages of {} over {} accounts, {:.1} s",
            int(args.events),
            int(args.batch),
            int(args.accounts),
            self.ingest.as_secs_f64()
        );
        println!();
        println!("| resident memory of the service                       |      MiB |");
        println!("|------------------------------------------------------|---------:|");
        let line = |name: &str, kib: u64| println!("| {name:<52} | {:>8.1} |", mib(kib));
        line("just started (listening)", self.started_rss);
        if args.no_scorecard {
            line("baseline: idle, accounts in projection (no scorecard)", self.idle_rss);
        } else {
            line("baseline: idle, accounts in projection, all scored", self.idle_rss);
        }
        line("peak before the stream (VmHWM: start-up, scoring)", self.idle_hwm);
        line("peak during the stream (VmRSS sampled every 100 ms)", self.peak_sampled);
        line("peak over the whole run (VmHWM)", self.peak_hwm);
        line("when the stream was acknowledged", self.end_rss);
        line("after the scorer finished", self.after_scoring_rss);
        println!(
            "| peak − idle baseline                                 | {:>8.1} |",
            mib(self.peak_hwm.saturating_sub(self.idle_rss))
        );
        println!();
        let step = (self.samples.len() / 10).max(1);
        let shape: Vec<String> =
            self.samples.iter().step_by(step).map(|(t, k)| format!("{t:.0} s: {:.0}", mib(*k))).collect();
        println!("RSS (MiB) during the stream: {}", shape.join(" · "));
        println!();
        let peak = mib(self.peak_hwm);
        let ok = peak <= GOAL_MIB;
        println!(
            "goal {}: peak RSS <= {GOAL_MIB:.0} MiB while ingesting {} events (got {peak:.1} MiB)",
            if ok { "MET   " } else { "MISSED" },
            int(args.events)
        );
        if !ok {
            println!(
                "*** GOAL MISSED: a measurement, not a failure; docs/benchmarks.md says where the memory goes ***"
            );
        }
        println!("total run time: {:.1} s", total.as_secs_f64());
    }
}
