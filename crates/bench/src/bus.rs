//! `banso-bench bus`: publish → consume latency of the event bus alone at a
//! steady rate, the way the services use it: several publishers (each
//! service's outbox relay) publish what is due every few milliseconds as
//! one batch, several durable consumers read every subject of the source,
//! and bystander consumers of another source read the same log (on the
//! embedded bus every consumer walks the one log; on JetStream the server
//! filters).
//!
//! Baseline in the same run: the bus's own log table written without any
//! consumer — the same messages, the same batches, one transaction each,
//! as fast as it goes — so the figure beside the latency says how much of
//! the write capacity the load uses.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use banso_events::{Bus, Envelope, Handler, HandlerError, Payload, bus::Outgoing, embedded::EmbeddedBus};
use banso_proto::events as ev;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    harness::TENANT,
    health_common::quantile,
    import::{int, loadavg, machine},
};

const GOAL_P99: Duration = Duration::from_millis(50);
const SOURCE: &str = "benchbus";

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Messages per second, all publishers together.
    #[arg(long, default_value_t = 10_000)]
    rate: u32,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Publishers, each publishing its share every `--tick-ms` as one batch.
    #[arg(long, default_value_t = 3)]
    publishers: usize,
    #[arg(long, default_value_t = 5)]
    tick_ms: u64,
    /// Consumers of every message.
    #[arg(long, default_value_t = 3)]
    consumers: usize,
    /// Consumers of another source, which see none of the messages.
    #[arg(long, default_value_t = 2)]
    bystanders: usize,
    /// Use NATS JetStream at this URL (a namespace of its own) instead of
    /// the embedded bus.
    #[arg(long)]
    nats_url: Option<String>,
}

/// What a consumer saw: the message's number and when.
struct Seen(mpsc::UnboundedSender<(usize, Instant)>);

#[async_trait]
impl Handler for Seen {
    async fn handle(&self, env: &Envelope) -> Result<(), HandlerError> {
        let now = Instant::now();
        if let Some(Payload::UsageSeen(e)) = &env.payload
            && let Ok(n) = e.account_id.parse()
        {
            let _ = self.0.send((n, now));
        }
        Ok(())
    }
}

fn message(n: usize) -> Outgoing {
    let env = banso_events::envelope::new(
        TENANT,
        SOURCE,
        Payload::UsageSeen(ev::UsageSeen { account_id: n.to_string(), day: None }),
    );
    Outgoing {
        id: env.id.clone(),
        subject: banso_events::envelope::subject(&env),
        payload: prost::Message::encode_to_vec(&env).into(),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.rate > 0 && args.secs > 0 && args.publishers > 0, "--rate, --secs, --publishers must be > 0");
    anyhow::ensure!(args.consumers > 0, "--consumers must be > 0");
    let load_before = loadavg();
    let dir = std::env::temp_dir().join(format!("banso-bench-bus-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(&args, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    report.print(&args, &load_before);
    Ok(())
}

struct Report {
    bus: String,
    latencies: Vec<f64>,
    lost: usize,
    sent: usize,
    achieved: f64,
    append_rate: f64,
}

async fn measure(args: &Args, dir: &std::path::Path) -> anyhow::Result<Report> {
    let bus: Arc<dyn Bus> = match &args.nats_url {
        Some(url) => {
            let ns = format!("benchbus{}", uuid::Uuid::now_v7().simple());
            Arc::new(banso_events::nats::NatsBus::connect_in(url, Some(&ns)).await?)
        }
        None => Arc::new(EmbeddedBus::open(dir).await?),
    };
    bus.prepare_source(SOURCE).await?;
    bus.prepare_source("benchother").await?;
    let total = (u64::from(args.rate) * args.secs) as usize;
    let per_tick = f64::from(args.rate) * args.tick_ms as f64 / 1000.0 / args.publishers as f64;

    // The baseline first, on a log of its own, before any consumer exists.
    let append_rate = if args.nats_url.is_none() {
        let base = dir.join("baseline");
        std::fs::create_dir_all(&base)?;
        let log = EmbeddedBus::open(&base).await?;
        let batch = (per_tick.ceil() as usize).max(1);
        let msgs: Vec<Outgoing> = (0..total).map(message).collect();
        let t = Instant::now();
        for chunk in msgs.chunks(batch) {
            log.append_only(chunk).await?;
        }
        total as f64 / t.elapsed().as_secs_f64()
    } else {
        0.0
    };

    let stop = CancellationToken::new();
    let (tx, mut seen) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for c in 0..args.consumers + args.bystanders {
        let (bus, stop) = (bus.clone(), stop.clone());
        let (name, source) =
            if c < args.consumers { (format!("bench-{c}"), SOURCE) } else { (format!("bystander-{c}"), "benchother") };
        let handler: Arc<dyn Handler> = Arc::new(Seen(tx.clone()));
        tasks.push(tokio::spawn(async move {
            let subjects = vec![banso_events::envelope::all_of(source)];
            bus.consume(&name, &subjects, handler, Default::default(), stop).await
        }));
    }
    drop(tx);
    // Let the consumers start before the clock does.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let sent_at: Arc<Vec<std::sync::OnceLock<Instant>>> = Arc::new((0..total).map(|_| Default::default()).collect());
    let started = Instant::now();
    let mut publishers = Vec::new();
    for p in 0..args.publishers {
        let (bus, sent_at) = (bus.clone(), sent_at.clone());
        let (publishers_n, tick) = (args.publishers, Duration::from_millis(args.tick_ms));
        let rate = f64::from(args.rate);
        publishers.push(tokio::spawn(async move {
            // Publisher p sends messages p, p + n, p + 2n, … as they fall due.
            let mut next = p;
            let mut ticker = tokio::time::interval(tick);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while next < total {
                ticker.tick().await;
                let due = ((started.elapsed().as_secs_f64() * rate) as usize).min(total);
                let mut batch = Vec::new();
                while next < due {
                    batch.push(message(next));
                    next += publishers_n;
                }
                if batch.is_empty() {
                    continue;
                }
                let now = Instant::now();
                for m in 0..batch.len() {
                    let _ = sent_at[next - (batch.len() - m) * publishers_n].set(now);
                }
                bus.publish(&batch).await?;
            }
            anyhow::Ok(())
        }));
    }
    for p in publishers {
        p.await??;
    }
    let achieved = total as f64 / started.elapsed().as_secs_f64();

    let expected = total * args.consumers;
    let mut latencies = Vec::with_capacity(expected);
    let mut got: HashMap<usize, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while latencies.len() < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((n, at))) = tokio::time::timeout(left, seen.recv()).await else { break };
        if let Some(t) = sent_at.get(n).and_then(|t| t.get()) {
            *got.entry(n).or_default() += 1;
            latencies.push(at.saturating_duration_since(*t).as_secs_f64());
        }
    }
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    latencies.sort_by(f64::total_cmp);
    Ok(Report {
        bus: if args.nats_url.is_some() { "NATS JetStream".into() } else { "embedded (SQLite log)".into() },
        lost: expected.saturating_sub(latencies.len()),
        latencies,
        sent: total,
        achieved,
        append_rate,
    })
}

impl Report {
    fn print(&self, args: &Args, load_before: &str) {
        let ms = |q: f64| quantile(&self.latencies, q) * 1000.0;
        println!();
        println!("machine:  {}; load average {load_before} before, {} after", machine(), loadavg());
        println!(
            "load:     {} messages in {} s ({:.0}/s achieved) by {} publishers every {} ms, bus {}",
            int(self.sent),
            args.secs,
            self.achieved,
            args.publishers,
            args.tick_ms,
            self.bus
        );
        println!("          {} consumers of every message, {} of another source", args.consumers, args.bystanders);
        println!();
        println!("| publish → consumed (ms) | n        |    p50 |    p90 |    p99 |    max |");
        println!("|-------------------------|----------|-------:|-------:|-------:|-------:|");
        println!(
            "| every consumer          | {:<8} | {:>6.1} | {:>6.1} | {:>6.1} | {:>6.1} |",
            self.latencies.len(),
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(1.0)
        );
        if self.lost > 0 {
            println!("note: {} deliveries were not seen within 60 s of the last publish", self.lost);
        }
        if self.append_rate > 0.0 {
            println!(
                "baseline: the log written alone, same batches: {:.0} messages/s; this load is {:.1}% of it",
                self.append_rate,
                100.0 * f64::from(args.rate) / self.append_rate
            );
        }
        let p99 = Duration::from_secs_f64(quantile(&self.latencies, 0.99));
        let ok = self.lost == 0 && p99 <= GOAL_P99;
        println!(
            "goal {}: publish → consume p99 <= {} ms at {} messages/s (got {:.1} ms{})",
            if ok { "MET   " } else { "MISSED" },
            GOAL_P99.as_millis(),
            int(args.rate as usize),
            p99.as_secs_f64() * 1000.0,
            if self.lost > 0 { format!(", {} lost", self.lost) } else { String::new() }
        );
    }
}
