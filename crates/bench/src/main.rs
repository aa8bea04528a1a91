//! Benchmark programs. Each prints its figure beside a baseline measured in
//! the same run on the same machine; docs/benchmarks.md says how to run them
//! and what they measure.

// The bench reads its own knobs (and test settings) from the environment.
#![allow(clippy::disallowed_methods)]

mod bus;
mod churn;
mod data;
mod feedback;
mod freshness;
mod gateway;
mod harness;
mod health_common;
mod health_ingest;
mod import;
mod memory;
mod monitor;
mod playbooks;
mod recompute;
mod usage;
mod voice;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "banso-bench", version, about = "Banso benchmarks: each figure beside a baseline from the same run")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// ImportAccounts (create, then the idempotent re-run) against a plain
    /// multi-row INSERT of the same rows into a copy of the accounts table.
    Import(import::Args),
    /// Health: IngestUsage (client streaming) against a binary COPY of the
    /// same rows into a copy of the usage_events table.
    HealthIngest(health_ingest::Args),
    /// Health: ingest acknowledgement to HealthScoreChanged seen by a bus
    /// consumer, under steady load, against the bus alone.
    HealthFreshness(freshness::Args),
    /// Health: the freshness benchmark at 250 … 4,000 events/s over 10,000
    /// accounts (on the embedded bus, and NATS with --nats-url), and the
    /// rate at which p99 crosses 1 s.
    HealthFreshnessCurve(freshness::CurveArgs),
    /// Health: peak RSS of `banso serve health` while 1,000,000 events
    /// stream in, against the same process idle.
    HealthMemory(memory::Args),
    /// Health: a full recompute of 100,000 accounts × 10 measures
    /// (StartRecompute) against one SQL aggregate of the same raw values.
    HealthRecompute(recompute::Args),
    /// Health: the benchmarks above in sequence, with their defaults, then
    /// a summary of the goals.
    Health(AllArgs),
    /// The gateway: REST GET and POST of an account and the tracking API's
    /// batches against the same calls direct over gRPC, every service and
    /// the gateway in-process on the embedded defaults.
    Gateway(gateway::Args),
    /// Playbooks: trigger events × 200 CEL playbooks through the engine
    /// against the same conditions as Rust closures.
    PlaybooksRules(playbooks::RulesArgs),
    /// Playbooks: the daily schedule's selection over 100,000 accounts × 20
    /// schedule playbooks against one SQL statement selecting the same pairs.
    PlaybooksSchedule(playbooks::ScheduleArgs),
    /// Health: a backtest of a synthetic tenant whose churn follows a known
    /// logistic function of its usage (10,000 accounts × 365 days), as
    /// served and replayed, against one SQL query reading the same snapshots.
    Churn(churn::Args),
    /// The event bus alone: publish → consume latency at a steady rate
    /// (publishers in batches, several consumers), against the same log
    /// written with no consumer.
    Bus(bus::Args),
    /// Playbooks: usage ingest ack → the CTA opened or raised, through
    /// Health's rescoring, under steady load with 50 enabled playbooks.
    PlaybooksLatency(playbooks::LatencyArgs),
    /// Feedback: survey answers through the public path (the invitation's
    /// token, no bearer token), 1,000 invitations answered at once, against
    /// a plain INSERT of the same rows into a copy of the answers table
    /// (SQLite, or PostgreSQL when BANSO_TEST_DATABASE_URL is set).
    Feedback(feedback::Args),
    /// Feedback: the voice of the customer at 100,000 items in 1,000
    /// themes — ImportFeedbackItems against a plain INSERT of the same rows
    /// in the same batches, SuggestThemes for a new item, RankThemes.
    FeedbackVoice(voice::Args),
}

#[derive(clap::Args, Debug)]
struct AllArgs {
    /// PostgreSQL server; each benchmark creates a fresh database on it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    database_url: String,
    /// Also run the freshness benchmark on NATS JetStream at this URL.
    #[arg(long)]
    nats_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Import(args) => import::run(args).await,
        Command::HealthIngest(args) => health_ingest::run(args).await.map(drop),
        Command::HealthFreshness(args) => freshness::run(args).await.map(drop),
        Command::HealthFreshnessCurve(args) => freshness::curve(args).await,
        Command::HealthMemory(args) => memory::run(args).await.map(drop),
        Command::HealthRecompute(args) => recompute::run(args).await.map(drop),
        Command::Health(args) => health(args).await,
        Command::Gateway(args) => gateway::run(args).await,
        Command::PlaybooksRules(args) => playbooks::rules(args).await,
        Command::PlaybooksSchedule(args) => playbooks::schedule(args).await,
        Command::PlaybooksLatency(args) => playbooks::latency(args).await,
        Command::Churn(args) => churn::run(args).await,
        Command::Bus(args) => bus::run(args).await,
        Command::Feedback(args) => feedback::run(args).await,
        Command::FeedbackVoice(args) => voice::run(args).await,
    }
}

/// Parses the defaults of a benchmark's arguments, with `extra` flags.
fn defaults<A: clap::Args>(extra: &[&str]) -> anyhow::Result<A> {
    #[derive(Parser)]
    struct Wrap<A: clap::Args> {
        #[command(flatten)]
        args: A,
    }
    let argv = std::iter::once("banso-bench").chain(extra.iter().copied());
    Ok(Wrap::<A>::try_parse_from(argv)?.args)
}

async fn health(all: AllArgs) -> anyhow::Result<()> {
    let db = ["--database-url", all.database_url.as_str()];
    let mut summary = Vec::new();
    println!("==== 1. ingest ====");
    let ingest = health_ingest::run(defaults(&db)?).await?;
    summary.push(format!(
        "ingest: {:.0} events/s, {:.1}% of binary COPY (goals >= 20,000 events/s and >= 50%)",
        ingest.ingest_rate,
        ingest.ratio * 100.0
    ));
    println!("\n==== 2. freshness (embedded bus) ====");
    let fresh = freshness::run(defaults(&db)?).await?;
    summary.push(format!("freshness, embedded bus: p99 {} (goal <= 1 s)", fmt_p99(fresh.p99)));
    if let Some(url) = &all.nats_url {
        println!("\n==== 2b. freshness (NATS JetStream) ====");
        let fresh = freshness::run(defaults(&[db[0], db[1], "--nats-url", url])?).await?;
        summary.push(format!("freshness, NATS JetStream: p99 {} (goal <= 1 s)", fmt_p99(fresh.p99)));
    }
    println!("\n==== 3. memory ====");
    let mem = memory::run(defaults(&db)?).await?;
    summary.push(format!("memory: peak RSS {:.1} MiB (goal <= 200 MiB)", mem.peak_mib));
    println!("\n==== 4. recompute ====");
    match recompute::run(defaults(&db)?).await {
        Ok(r) => summary.push(format!(
            "recompute: {:.0} accounts/s, {:.1}× the SQL aggregate (goal <= 3×)",
            r.accounts_per_sec, r.ratio
        )),
        Err(e) => summary.push(format!("recompute: could not run: {e:#}")),
    }
    println!("\n==== summary ====");
    for s in summary {
        println!("  {s}");
    }
    Ok(())
}

fn fmt_p99(d: std::time::Duration) -> String {
    if d == std::time::Duration::MAX {
        "n/a (events unmatched)".into()
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_health_benchmark_parses_its_defaults() {
        let db = ["--database-url", "postgres://h/db"];
        let ingest: health_ingest::Args = defaults(&db).unwrap();
        assert_eq!((ingest.events, ingest.batch, ingest.database_url.as_str()), (200_000, 5_000, "postgres://h/db"));
        let fresh: freshness::Args = defaults(&["--nats-url", "nats://n:4222"]).unwrap();
        assert_eq!((fresh.rate, fresh.nats_url.as_deref()), (200, Some("nats://n:4222")));
        let mem: memory::Args = defaults(&db).unwrap();
        assert_eq!(mem.events, 1_000_000);
        let re: recompute::Args = defaults(&db).unwrap();
        assert_eq!((re.accounts, re.days), (100_000, 35));
        let gw: gateway::Args = defaults(&[]).unwrap();
        assert_eq!((gw.accounts, gw.concurrency, gw.batch, gw.rounds), (1_000, 16, 100, 4));
    }
}
