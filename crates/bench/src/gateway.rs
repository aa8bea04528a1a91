//! `banso-bench gateway`: the same calls through the gateway (REST/JSON over
//! HTTP/1.1, the tracking API) and direct over gRPC, in one process, on the
//! same data, in the same run.
//!
//! Every service starts in-process on the embedded defaults (`banso up`'s
//! assembly: SQLite files and the embedded bus in a fresh temp directory),
//! with the gateway in front of it through `banso::local_upstreams`, as
//! `banso up` serves it. The bench seeds `--accounts` accounts, then for each
//! scenario runs both sides for the same time at the same concurrency, in
//! `--rounds` rounds whose order alternates (direct first, then gateway
//! first, …) so drift (the SQLite files growing, the machine warming) falls
//! on both:
//!
//! - (a) `GET /v1/accounts/{id}` against `GetAccount`;
//! - (b) `POST /v1/accounts` (the account as proto3 JSON) against
//!   `CreateAccount`, a new external id each call;
//! - (c) the tracking API's `POST /v1/batch` with `--batch` Segment `track`
//!   events (write key as HTTP Basic user) against `BatchIngestUsage` with the
//!   same events, in events a second. Each run of (c) starts a fresh process
//!   and data directory (seeded alike), because Health's ingest on SQLite
//!   slows as its data grows. Skipped, with the reason printed, when the
//!   build has no tracking API or write keys.
//!
//! For (a) and (b) the p50 the gateway adds is also measured with one caller
//! (`--latency-secs`, concurrency 1): at saturation the latency of a closed
//! loop follows its throughput, so the loaded p50 mostly restates the ratio.
//!
//! Clients: a reqwest pool (one HTTP/1.1 keep-alive connection per caller)
//! for HTTP, one tonic channel (HTTP/2, multiplexed) for gRPC: what a
//! browser-facing frontend and an internal gRPC caller would use. Client,
//! gateway and services share the machine's cores.

use std::{
    fmt::Write as _,
    future::Future,
    net::SocketAddr,
    path::PathBuf,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use banso_kit::{
    auth::{DevTokenIssuer, Role},
    config::{Config, Vars},
};
use banso_proto::{accounts as apb, health as hpb};
use banso_testkit::Bearer;
use chrono::Utc;
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::{
    data,
    harness::TENANT,
    health_common::quantile,
    import::{int, loadavg, machine},
    usage::{event_names, timestamp},
};

const GOAL_REST_RATIO: f64 = 0.60;
const GOAL_ADDED_P50_MS: f64 = 1.0;
const GOAL_TRACKING_RATIO: f64 = 0.70;
/// Health's limit of events in one BatchIngestUsage call.
const MAX_BATCH: usize = 5_000;
/// One REST response in this many is parsed in full and checked (the others
/// by status): the client's own JSON work stays small beside the server's.
const CHECK_EVERY: u64 = 64;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Accounts seeded before the measurements (GET reads them; tracking
    /// events name them by external id).
    #[arg(long, default_value_t = 1_000)]
    pub accounts: usize,
    /// Concurrent callers on each side.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds each side runs in each round of each scenario.
    #[arg(long, default_value_t = 10.0)]
    pub secs: f64,
    /// Rounds per scenario (the order of the sides alternates).
    #[arg(long, default_value_t = 4)]
    pub rounds: usize,
    /// Seconds each side runs with one caller, for the latency the gateway
    /// adds without queueing (0: skip).
    #[arg(long, default_value_t = 3.0)]
    pub latency_secs: f64,
    /// Seconds each side runs, untimed, before a scenario's first round.
    #[arg(long, default_value_t = 1.0)]
    pub warmup_secs: f64,
    /// Segment events per tracking request (and per BatchIngestUsage call).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Seed of the generated accounts and events.
    #[arg(long, default_value_t = 20_261_122)]
    pub seed: u64,
    /// Which scenarios to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "get,post,tracking")]
    pub scenarios: Vec<Scenario>,
    /// Keep the data directory afterwards.
    #[arg(long)]
    pub keep: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// (a) REST GET /v1/accounts/{id} vs GetAccount.
    Get,
    /// (b) REST POST /v1/accounts vs CreateAccount.
    Post,
    /// (c) the tracking API's POST /v1/batch vs BatchIngestUsage.
    Tracking,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.accounts > 0, "--accounts must be at least 1");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    anyhow::ensure!(args.secs > 0.0 && args.secs.is_finite(), "--secs must be above 0");
    anyhow::ensure!(args.latency_secs >= 0.0 && args.latency_secs.is_finite(), "--latency-secs must be 0 or more");
    anyhow::ensure!(args.warmup_secs >= 0.0 && args.warmup_secs.is_finite(), "--warmup-secs must be 0 or more");
    anyhow::ensure!((1..=MAX_BATCH).contains(&args.batch), "--batch must be 1 to {MAX_BATCH}");
    let started = Instant::now();
    let load_before = loadavg();
    let stack = Stack::start(args.keep).await?;
    let result = scenarios(&args, &stack).await;
    let stopped = stack.stop().await;
    result?;
    stopped?;
    println!(
        "\ndone in {:.0} s; load average before {load_before}, after {}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    Ok(())
}

async fn scenarios(args: &Args, stack: &Stack) -> anyhow::Result<()> {
    println!(
        "banso-bench gateway: every service in-process on the embedded defaults (SQLite and the embedded bus in {}), \
         the gateway in front at {}; {} callers a side, {} round(s) of {} s a side per scenario (order alternating), \
         {} s warm-up; one caller for {} s a side for the latency added",
        stack.dir.display(),
        stack.gateway_url,
        args.concurrency,
        args.rounds,
        args.secs,
        args.warmup_secs,
        args.latency_secs,
    );
    println!("machine: {}", machine());
    println!(
        "clients: reqwest (HTTP/1.1, a keep-alive pool) to the gateway; one tonic channel (HTTP/2) to the services"
    );

    let t = Instant::now();
    let ids = seed(stack, args).await?;
    println!("seeded {} accounts through CreateAccount in {:.1} s", int(ids.len()), t.elapsed().as_secs_f64());
    let ids = Arc::new(ids);

    let mut summary = Vec::new();

    // (a) GET one account.
    if args.scenarios.contains(&Scenario::Get) {
        let get = get_account(args, stack, &ids).await?;
        summary.push(get.summary("GET /v1/accounts/{id}"));
    }

    // (b) create an account. Each side numbers its own accounts.
    let made = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
    if args.scenarios.contains(&Scenario::Post) {
        let post = create_account(args, stack, &made).await?;
        summary.push(post.summary("POST /v1/accounts"));
    }

    // (c) tracking.
    if args.scenarios.contains(&Scenario::Tracking) {
        match tracking_key(stack).await? {
            Err(why) => {
                println!("\n(c) tracking: POST /v1/batch vs BatchIngestUsage");
                println!("    skipped: tracking API not available ({why})");
                summary.push(format!("tracking POST /v1/batch: skipped: tracking API not available ({why})"));
            }
            Ok(_) => {
                let t = tracking(args).await?;
                summary.push(format!(
                    "tracking POST /v1/batch: {:.1}% of BatchIngestUsage's events/s (goal >= {:.0}%: {})",
                    t.ratio() * 100.0,
                    GOAL_TRACKING_RATIO * 100.0,
                    verdict(t.ratio() >= GOAL_TRACKING_RATIO)
                ));
            }
        }
    }

    println!("\nsummary");
    for s in summary {
        println!("  {s}");
    }
    Ok(())
}

/// (a): REST GET of one account against GetAccount, over the seeded accounts.
async fn get_account(args: &Args, stack: &Stack, ids: &Arc<Vec<Seeded>>) -> anyhow::Result<Comparison> {
    compare(
        args,
        "(a) one account: REST GET /v1/accounts/{id} vs GetAccount",
        "requests/s",
        true,
        {
            let client = stack.accounts();
            let ids = ids.clone();
            op(move |w, i| {
                let mut client = client.clone();
                let id = pick(&ids, w, i);
                async move {
                    let got = client.get_account(apb::GetAccountRequest { id: id.clone() }).await?.into_inner();
                    anyhow::ensure!(got.id == id, "GetAccount {id} answered account {}", got.id);
                    Ok(1)
                }
            })
        },
        {
            let http = stack.http(args.concurrency)?;
            let base = stack.gateway_url.clone();
            let token = stack.token.clone();
            let ids = ids.clone();
            op(move |w, i| {
                let id = pick(&ids, w, i);
                let req = http.get(format!("{base}/v1/accounts/{id}")).bearer_auth(&token);
                async move {
                    let body = send(req, "GET /v1/accounts/{id}").await?;
                    if i % CHECK_EVERY == 0 {
                        let v: serde_json::Value = serde_json::from_slice(&body).context("GET answered no JSON")?;
                        anyhow::ensure!(v["id"] == id.as_str(), "GET /v1/accounts/{id} answered {v}");
                    }
                    Ok(1)
                }
            })
        },
    )
    .await
}

/// (b): REST POST of an account against CreateAccount, a new external id
/// each call (`bench-grpc-<n>`, `bench-rest-<n>`, counted in `made`).
async fn create_account(args: &Args, stack: &Stack, made: &[Arc<AtomicU64>; 2]) -> anyhow::Result<Comparison> {
    let template = data::accounts(1, args.seed ^ 0xacc0).pop().context("one generated account")?;
    compare(
        args,
        "(b) create an account: REST POST /v1/accounts vs CreateAccount",
        "requests/s",
        true,
        {
            let client = stack.accounts();
            let template = template.clone();
            let counter = made[0].clone();
            op(move |_, _| {
                let mut client = client.clone();
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let account = apb::Account { external_id: format!("bench-grpc-{n}"), ..template.clone() };
                async move {
                    let made = client
                        .create_account(apb::CreateAccountRequest { account: Some(account), request_id: String::new() })
                        .await?
                        .into_inner();
                    anyhow::ensure!(!made.id.is_empty(), "CreateAccount answered no id");
                    Ok(1)
                }
            })
        },
        {
            let http = stack.http(args.concurrency)?;
            let url = format!("{}/v1/accounts", stack.gateway_url);
            let token = stack.token.clone();
            // The account as proto3 JSON once; each call swaps in its own
            // external id (ASCII, nothing to escape).
            let marker = "bench-external-id-marker";
            let json = serde_json::to_string(&apb::Account { external_id: marker.into(), ..template.clone() })?;
            let counter = made[1].clone();
            op(move |_, i| {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let body = json.replace(marker, &format!("bench-rest-{n}"));
                let req = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body);
                async move {
                    let body = send(req, "POST /v1/accounts").await?;
                    if i % CHECK_EVERY == 0 {
                        let v: serde_json::Value = serde_json::from_slice(&body).context("POST answered no JSON")?;
                        anyhow::ensure!(v["id"].as_str().is_some_and(|s| !s.is_empty()), "POST answered {v}");
                    }
                    Ok(1)
                }
            })
        },
    )
    .await
}

/// (c): the write key's batches against BatchIngestUsage, the same events.
///
/// Unlike (a) and (b), every run (each side of each round) gets a fresh
/// process and data directory, seeded the same way: Health's ingest on
/// SQLite slows as its tables and write-ahead log grow (within one process
/// the events/s of a side fell from ~4,600 to ~550 over four rounds), so
/// sides sharing one process would measure how much the other stored before
/// them rather than the gateway.
async fn tracking(args: &Args) -> anyhow::Result<Comparison> {
    println!(
        "\n(c) tracking: POST /v1/batch ({b} track events) vs BatchIngestUsage ({b} events); each run on a fresh process \
         and data directory with {} accounts",
        int(args.accounts),
        b = args.batch
    );
    let (mut d, mut g) = (Measured::default(), Measured::default());
    for round in 0..args.rounds {
        let gateway_first = round % 2 == 1;
        for gateway in [gateway_first, !gateway_first] {
            let t = Instant::now();
            let stack = Stack::start(false).await?;
            let run = tracking_run(args, &stack, gateway).await;
            let stopped = stack.stop().await;
            let (m, setup) = run?;
            stopped?;
            println!(
                "    round {} {}: {:>9.0} events/s, p50 {:.2} ms, p99 {:.2} ms (set-up {:.1} s, whole run {:.1} s)",
                round + 1,
                if gateway { "gateway" } else { "direct " },
                m.rate(),
                m.p(0.5),
                m.p(0.99),
                setup.as_secs_f64(),
                t.elapsed().as_secs_f64()
            );
            if gateway { g.add(m) } else { d.add(m) }
        }
    }
    let c = Comparison { unit: "events/s", direct: d, gateway: g, single: None, concurrency: args.concurrency };
    c.print(false);
    Ok(c)
}

/// One side of (c) on `stack`: seeds the accounts, makes a write key, waits
/// until Health knows every account, warms up, then measures. Returns the
/// measure and how long the set-up took.
async fn tracking_run(args: &Args, stack: &Stack, gateway: bool) -> anyhow::Result<(Measured, Duration)> {
    let t = Instant::now();
    let ids = Arc::new(seed(stack, args).await?);
    let key = tracking_key(stack).await?.map_err(|why| anyhow::anyhow!("tracking API not available: {why}"))?;
    wait_for_projection(stack, &ids.iter().map(|s| s.external_id.clone()).collect::<Vec<_>>()).await?;
    let setup = t.elapsed();
    let op = if gateway { tracking_via_gateway(args, stack, &ids, key)? } else { tracking_direct(args, stack, &ids) };
    if args.warmup_secs > 0.0 {
        drive(&op, args.concurrency, args.warmup_secs).await.context("warm-up")?;
    }
    Ok((drive(&op, args.concurrency, args.secs).await?, setup))
}

/// Batch after batch of fresh usage events over `ids`.
fn events_of(args: &Args, ids: &Arc<Vec<Seeded>>) -> Arc<dyn Fn() -> Vec<hpb::UsageEvent> + Send + Sync> {
    let names = Arc::new(event_names());
    let seq = Arc::new(AtomicU64::new(0));
    let (ids, batch, seed) = (ids.clone(), args.batch, args.seed);
    Arc::new(move || generate(&ids, &names, seed, seq.fetch_add(1, Ordering::Relaxed), batch))
}

/// BatchIngestUsage with the events; every one must be accepted.
fn tracking_direct(args: &Args, stack: &Stack, ids: &Arc<Vec<Seeded>>) -> Op {
    let events = events_of(args, ids);
    let health = stack.health();
    op(move |_, _| {
        let mut health = health.clone();
        let events = (*events)();
        async move {
            let n = events.len() as u64;
            let r = health.batch_ingest_usage(hpb::BatchIngestUsageRequest { events }).await?.into_inner();
            anyhow::ensure!(
                r.accepted as u64 == n,
                "BatchIngestUsage accepted {} of {n} events (duplicates {}, rejected {}: {:?})",
                r.accepted,
                r.duplicates,
                r.rejected,
                r.rejections.first()
            );
            Ok(n)
        }
    })
}

/// The same events as Segment batches to POST /v1/batch with the write key;
/// the reply must count every one accepted.
fn tracking_via_gateway(args: &Args, stack: &Stack, ids: &Arc<Vec<Seeded>>, key: String) -> anyhow::Result<Op> {
    let events = events_of(args, ids);
    let http = stack.http(args.concurrency)?;
    let url = format!("{}/v1/batch", stack.gateway_url);
    Ok(op(move |_, _| {
        let events = (*events)();
        let n = events.len() as u64;
        let req = http
            .post(&url)
            .basic_auth(&key, Some(""))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(segment_batch(&events));
        async move {
            let body = send(req, "POST /v1/batch").await?;
            let v: serde_json::Value = serde_json::from_slice(&body).context("POST /v1/batch answered no JSON")?;
            anyhow::ensure!(v["success"] == true, "POST /v1/batch answered {v}");
            // The reply counts what became of the messages; every one must
            // be stored, or the comparison is of different work.
            if let Some(accepted) = v.get("accepted").and_then(serde_json::Value::as_u64) {
                anyhow::ensure!(accepted == n, "POST /v1/batch accepted {accepted} of {n} events: {v}");
            }
            Ok(n)
        }
    }))
}

/// A write key for the tracking API, or why there is none.
async fn tracking_key(stack: &Stack) -> anyhow::Result<Result<String, String>> {
    let http = stack.http(1)?;
    let res = http
        .post(format!("{}/v1/writeKeys", stack.gateway_url))
        .bearer_auth(&stack.token)
        .json(&serde_json::json!({"displayName": "banso-bench"}))
        .send()
        .await?;
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    if !status.is_success() {
        return Ok(Err(format!("POST /v1/writeKeys (CreateWriteKey) answered {status}: {body}")));
    }
    let Some(key) = body["key"].as_str().filter(|k| !k.is_empty()) else {
        return Ok(Err(format!("POST /v1/writeKeys answered no key: {body}")));
    };
    // The route exists and answers for this build's gateway?
    let probe = http
        .post(format!("{}/v1/batch", stack.gateway_url))
        .basic_auth(key, Some(""))
        .json(&serde_json::json!({"batch": []}))
        .send()
        .await?;
    if !probe.status().is_success() {
        let status = probe.status();
        let body = probe.text().await.unwrap_or_default();
        return Ok(Err(format!("POST /v1/batch answered {status}: {}", body.chars().take(300).collect::<String>())));
    }
    Ok(Ok(key.to_owned()))
}

/// Health learns the accounts from Accounts' events: waits until it knows
/// every account of `external_ids`, by ingesting one event per account (the
/// same event ids each try, so a retry stores nothing twice) until none is
/// UNKNOWN_ACCOUNT. Accounts' events reach Health in order, so knowing the
/// last account made means the backlog before it is done.
async fn wait_for_projection(stack: &Stack, external_ids: &[String]) -> anyhow::Result<()> {
    let t = Instant::now();
    let mut health = stack.health();
    let now = Utc::now();
    let events: Vec<hpb::UsageEvent> = external_ids
        .iter()
        .map(|x| hpb::UsageEvent {
            event_id: format!("bench-probe-{x}"),
            account_external_id: x.clone(),
            user_id: "bench-probe".into(),
            event_name: "bench_probe".into(),
            timestamp: Some(timestamp(now)),
            ..Default::default()
        })
        .collect();
    let mut pending: Vec<hpb::UsageEvent> = events;
    while !pending.is_empty() {
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(120),
            "Health did not learn {} seeded accounts within 120 s",
            pending.len()
        );
        let mut unknown = Vec::new();
        for chunk in pending.chunks(MAX_BATCH) {
            let r =
                health.batch_ingest_usage(hpb::BatchIngestUsageRequest { events: chunk.to_vec() }).await?.into_inner();
            for rej in r.rejections {
                anyhow::ensure!(rej.reason == "UNKNOWN_ACCOUNT", "probe event refused: {rej:?}");
                if let Some(e) = usize::try_from(rej.index).ok().and_then(|i| chunk.get(i)) {
                    unknown.push(e.clone());
                }
            }
        }
        pending = unknown;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Usage batch `index`: `n` events over the seeded accounts (by external id,
/// as `context.groupId` names them), the event names skewed, times in the
/// last hour, two properties; fresh event ids.
fn generate(ids: &[Seeded], names: &[String], seed: u64, index: u64, n: usize) -> Vec<hpb::UsageEvent> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index);
    let now = Utc::now();
    (0..n)
        .map(|_| {
            let a = &ids[rng.random_range(0..ids.len())];
            // A few names make most events, as in product usage.
            let name = &names[(rng.random::<f64>().powi(3) * names.len() as f64) as usize % names.len()];
            let at = now - chrono::Duration::milliseconds(rng.random_range(0..3_600_000));
            let mut properties = std::collections::HashMap::new();
            properties.insert("plan".to_owned(), ["starter", "standard", "enterprise"][rng.random_range(0..3)].into());
            properties.insert("browser".to_owned(), ["chrome", "safari", "edge"][rng.random_range(0..3)].into());
            hpb::UsageEvent {
                event_id: uuid::Builder::from_random_bytes(rng.random()).into_uuid().to_string(),
                account_external_id: a.external_id.clone(),
                user_id: format!("usr_{}_{}", a.index, rng.random_range(0..20)),
                event_name: name.clone(),
                timestamp: Some(timestamp(at)),
                properties,
                ..Default::default()
            }
        })
        .collect()
}

/// The same events as a Segment batch: `track` messages, the account as
/// `context.groupId`. Every value is ASCII from fixed alphabets (uuids,
/// `crm-000001`, `usr_1_2`, `[a-z_]` names, RFC 3339 times), so nothing needs
/// escaping.
fn segment_batch(events: &[hpb::UsageEvent]) -> String {
    let mut s = String::with_capacity(events.len() * 260 + 16);
    s.push_str(r#"{"batch":["#);
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let ts = e
            .timestamp
            .as_ref()
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32))
            .unwrap_or_else(Utc::now)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let _ = write!(
            s,
            r#"{{"type":"track","event":"{}","messageId":"{}","userId":"{}","context":{{"groupId":"{}"}},"timestamp":"{}","properties":{{"#,
            e.event_name, e.event_id, e.user_id, e.account_external_id, ts
        );
        for (j, (k, v)) in e.properties.iter().enumerate() {
            let _ = write!(s, r#"{}"{k}":"{v}""#, if j > 0 { "," } else { "" });
        }
        s.push_str("}}");
    }
    s.push_str("]}");
    s
}

/// A seeded account.
struct Seeded {
    id: String,
    external_id: String,
    index: usize,
}

/// The id caller `w` reads on its call `i`: spread over every account.
fn pick(ids: &[Seeded], w: usize, i: u64) -> String {
    let k = (w as u64).wrapping_mul(7919).wrapping_add(i.wrapping_mul(104_729)) as usize % ids.len();
    ids[k].id.clone()
}

async fn seed(stack: &Stack, args: &Args) -> anyhow::Result<Vec<Seeded>> {
    use futures::{StreamExt as _, TryStreamExt as _};
    let client = stack.accounts();
    futures::stream::iter(data::accounts(args.accounts, args.seed).into_iter().enumerate())
        .map(|(index, account)| {
            let mut client = client.clone();
            async move {
                let external_id = account.external_id.clone();
                let made = client
                    .create_account(apb::CreateAccountRequest { account: Some(account), request_id: String::new() })
                    .await
                    .with_context(|| format!("seeding account {external_id}"))?
                    .into_inner();
                anyhow::Ok(Seeded { id: made.id, external_id, index })
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await
}

/// Sends an HTTP request; its body if 200, else an error with the answer.
async fn send(req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<bytes::Bytes> {
    let res = req.send().await.with_context(|| format!("{what}: no answer"))?;
    let status = res.status();
    let body = res.bytes().await.with_context(|| format!("{what}: body"))?;
    if status != reqwest::StatusCode::OK {
        anyhow::bail!("{what} answered {status}: {}", String::from_utf8_lossy(&body[..body.len().min(500)]));
    }
    Ok(body)
}

// --- load -----------------------------------------------------------------

type OpFuture = Pin<Box<dyn Future<Output = anyhow::Result<u64>> + Send>>;
/// One call of caller `w`, its `i`-th: how many units (requests, events) it did.
type Op = Arc<dyn Fn(usize, u64) -> OpFuture + Send + Sync>;

fn op<F, Fut>(f: F) -> Op
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<u64>> + Send + 'static,
{
    Arc::new(move |w, i| Box::pin(f(w, i)))
}

/// What one side did in one or more runs.
#[derive(Default, Clone)]
struct Measured {
    calls: u64,
    units: u64,
    elapsed: Duration,
    /// Every call's latency in milliseconds.
    latencies: Vec<f64>,
}

impl Measured {
    fn add(&mut self, other: Measured) {
        self.calls += other.calls;
        self.units += other.units;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
    }

    fn rate(&self) -> f64 {
        self.units as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.latencies.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    fn p(&self, q: f64) -> f64 {
        quantile(&self.sorted(), q)
    }
}

/// `concurrency` callers, each calling `op` back to back until `secs` are
/// over; the time runs until the last call in flight has answered.
async fn drive(op: &Op, concurrency: usize, secs: f64) -> anyhow::Result<Measured> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut m = Measured::default();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    m.units += op(w, i).await?;
                    m.latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    m.calls += 1;
                    i += 1;
                }
                anyhow::Ok(m)
            })
        })
        .collect();
    let mut total = Measured::default();
    for w in workers {
        let m = w.await.context("a caller panicked")??;
        total.calls += m.calls;
        total.units += m.units;
        total.latencies.extend(m.latencies);
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

/// Both sides of one scenario.
struct Comparison {
    unit: &'static str,
    direct: Measured,
    gateway: Measured,
    /// One caller each: (direct, gateway).
    single: Option<(Measured, Measured)>,
    concurrency: usize,
}

impl Comparison {
    fn ratio(&self) -> f64 {
        self.gateway.rate() / self.direct.rate().max(1e-9)
    }

    fn added_p50(&self) -> f64 {
        self.gateway.p(0.5) - self.direct.p(0.5)
    }

    fn summary(&self, what: &str) -> String {
        let mut s = format!(
            "{what}: {:.1}% of direct gRPC throughput (goal >= {:.0}%: {})",
            self.ratio() * 100.0,
            GOAL_REST_RATIO * 100.0,
            verdict(self.ratio() >= GOAL_REST_RATIO)
        );
        if let Some((d, g)) = &self.single {
            let added = g.p(0.5) - d.p(0.5);
            let _ = write!(
                s,
                "; p50 added {added:.2} ms with one caller (goal <= {GOAL_ADDED_P50_MS} ms: {})",
                verdict(added <= GOAL_ADDED_P50_MS)
            );
        }
        let _ = write!(
            s,
            ", {:.2} ms at {} callers ({})",
            self.added_p50(),
            self.concurrency,
            verdict(self.added_p50() <= GOAL_ADDED_P50_MS)
        );
        s
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// Runs both sides of a scenario in one process: warm-up, the rounds, and
/// with `latency` the one-caller runs; prints and returns the comparison.
async fn compare(
    args: &Args,
    title: &str,
    unit: &'static str,
    latency: bool,
    direct: Op,
    gateway: Op,
) -> anyhow::Result<Comparison> {
    println!("\n{title}");
    if args.warmup_secs > 0.0 {
        drive(&direct, args.concurrency, args.warmup_secs).await.context("warm-up, direct")?;
        drive(&gateway, args.concurrency, args.warmup_secs).await.context("warm-up, gateway")?;
    }
    let (mut d, mut g) = (Measured::default(), Measured::default());
    for round in 0..args.rounds {
        let gateway_first = round % 2 == 1;
        for side in [gateway_first, !gateway_first] {
            let (m, name) = if side {
                (drive(&gateway, args.concurrency, args.secs).await.context("gateway")?, "gateway")
            } else {
                (drive(&direct, args.concurrency, args.secs).await.context("direct")?, "direct ")
            };
            println!(
                "    round {} {name}: {:>9.0} {unit}, p50 {:.2} ms, p99 {:.2} ms",
                round + 1,
                m.rate(),
                m.p(0.5),
                m.p(0.99)
            );
            if side { g.add(m) } else { d.add(m) }
        }
    }
    let single = if latency && args.latency_secs > 0.0 {
        let sd = drive(&direct, 1, args.latency_secs).await.context("one caller, direct")?;
        let sg = drive(&gateway, 1, args.latency_secs).await.context("one caller, gateway")?;
        Some((sd, sg))
    } else {
        None
    };
    let c = Comparison { unit, direct: d, gateway: g, single, concurrency: args.concurrency };
    c.print(latency);
    Ok(c)
}

impl Comparison {
    fn print(&self, latency_goal: bool) {
        println!(
            "    {:<28} {:>12} {:>9} {:>9} {:>9}",
            format!("{} callers", self.concurrency),
            self.unit,
            "p50 ms",
            "p99 ms",
            "calls"
        );
        for (name, m) in [("direct gRPC", &self.direct), ("through the gateway", &self.gateway)] {
            println!(
                "    {name:<28} {:>12} {:>9.2} {:>9.2} {:>9}",
                int(m.rate().round() as usize),
                m.p(0.5),
                m.p(0.99),
                int(m.calls as usize)
            );
        }
        let goal = if latency_goal { GOAL_REST_RATIO } else { GOAL_TRACKING_RATIO };
        println!(
            "    ratio {:.1}% (goal >= {:.0}%: {}); p50 added {:.2} ms{}",
            self.ratio() * 100.0,
            goal * 100.0,
            verdict(self.ratio() >= goal),
            self.added_p50(),
            if latency_goal {
                format!(
                    " (goal <= {GOAL_ADDED_P50_MS} ms: {}; at saturation this follows the ratio)",
                    verdict(self.added_p50() <= GOAL_ADDED_P50_MS)
                )
            } else {
                String::new()
            }
        );
        if let Some((d, g)) = &self.single {
            let added = g.p(0.5) - d.p(0.5);
            println!(
                "    one caller: direct p50 {:.2} ms p99 {:.2} ms, gateway p50 {:.2} ms p99 {:.2} ms: \
                 p50 added {added:.2} ms (goal <= {GOAL_ADDED_P50_MS} ms: {})",
                d.p(0.5),
                d.p(0.99),
                g.p(0.5),
                g.p(0.99),
                verdict(added <= GOAL_ADDED_P50_MS)
            );
        }
    }
}

// --- the process under test --------------------------------------------------

/// Every service and the gateway, as `banso up` runs them.
struct Stack {
    dir: PathBuf,
    keep: bool,
    token: String,
    gateway_url: String,
    channel: Channel,
    max_message_bytes: usize,
    shutdown: CancellationToken,
    process: banso::Process,
    gateway: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Stack {
    async fn start(keep: bool) -> anyhow::Result<Stack> {
        let dir = std::env::temp_dir().join(format!("banso-bench-gateway-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let dir_s = dir.display().to_string();
        let vars = Vars::from_pairs([
            ("BANSO_DATA_DIR", dir_s.as_str()),
            ("BANSO_GRPC_ADDR", "127.0.0.1:0"),
            ("BANSO_ADMIN_ADDR", "off"),
            ("BANSO_GATEWAY_ADDR", "127.0.0.1:0"),
            ("BANSO_JWT_HS256_SECRET", banso_testkit::TEST_SECRET),
            ("BANSO_PAGE_TOKEN_SECRET", "banso-bench-page-token-secret-0123456789"),
            ("BANSO_FEEDBACK_TOKEN_SECRET", "banso-bench-feedback-token-secret-0123456789"),
            ("BANSO_SHUTDOWN_GRACE_SECS", "2"),
            // The limiter runs (its cost is measured) but never refuses: one
            // tenant sends everything here.
            ("BANSO_GATEWAY_RATE_LIMIT", "1000000"),
            ("BANSO_GATEWAY_RATE_BURST", "1000000"),
            ("BANSO_MIGRATE_ON_START", "true"),
        ]);
        let config = Config::from_vars(&vars)?;
        let shutdown = CancellationToken::new();
        let process = banso::start(&config, banso::SERVICES, shutdown.clone()).await?;
        let grpc_addr: SocketAddr = process.server.grpc_addr;
        let upstreams = banso::local_upstreams(&config, grpc_addr)?;
        let gateway = banso::start_gateway(&config, upstreams, shutdown.clone()).await?;
        let issuer = DevTokenIssuer::from_config(&config.auth).context("an HS256 secret is configured")?;
        let token = issuer.mint(TENANT, "banso-bench", &[Role::Admin], Duration::from_secs(36_000));
        let channel = Channel::from_shared(format!("http://{grpc_addr}"))?.tcp_nodelay(true).connect().await?;
        Ok(Stack {
            dir,
            keep,
            token,
            gateway_url: format!("http://{}", gateway.addr),
            channel,
            max_message_bytes: config.server.max_message_bytes,
            shutdown,
            process,
            gateway: gateway.task,
        })
    }

    fn accounts(&self) -> crate::harness::Client {
        apb::accounts_service_client::AccountsServiceClient::with_interceptor(
            self.channel.clone(),
            Bearer::new(&self.token),
        )
        .max_encoding_message_size(self.max_message_bytes)
        .max_decoding_message_size(self.max_message_bytes)
    }

    fn health(&self) -> crate::harness::HealthClient {
        crate::harness::health_client(self.channel.clone(), &self.token, self.max_message_bytes)
    }

    /// An HTTP client keeping up to `pool` idle connections.
    fn http(&self, pool: usize) -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder().pool_max_idle_per_host(pool).tcp_nodelay(true).build()?)
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.process.runtime.shutdown().cancel();
        let gw = self.gateway.await;
        let server = self.process.server.wait().await;
        if self.keep {
            eprintln!("kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        gw??;
        server
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded(n: usize) -> Vec<Seeded> {
        (0..n).map(|i| Seeded { id: format!("id-{i}"), external_id: format!("crm-{i:06}"), index: i }).collect()
    }

    #[test]
    fn a_segment_batch_carries_the_same_events() {
        let ids = seeded(30);
        let events = generate(&ids, &event_names(), 7, 3, 100);
        assert_eq!(events.len(), 100);
        let v: serde_json::Value = serde_json::from_str(&segment_batch(&events)).unwrap();
        let batch = v["batch"].as_array().unwrap();
        assert_eq!(batch.len(), 100);
        for (m, e) in batch.iter().zip(&events) {
            assert_eq!(m["type"], "track");
            assert_eq!(m["event"], e.event_name.as_str());
            assert_eq!(m["messageId"], e.event_id.as_str());
            assert_eq!(m["userId"], e.user_id.as_str());
            assert_eq!(m["context"]["groupId"], e.account_external_id.as_str());
            let at = chrono::DateTime::parse_from_rfc3339(m["timestamp"].as_str().unwrap()).unwrap();
            let ts = e.timestamp.as_ref().unwrap();
            assert_eq!(at.timestamp_millis(), ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000);
            let props = m["properties"].as_object().unwrap();
            assert_eq!(props.len(), e.properties.len());
            for (k, val) in &e.properties {
                assert_eq!(props[k], val.as_str());
            }
        }
        // Fresh event ids per batch, the same batch for the same index.
        let again = generate(&ids, &event_names(), 7, 3, 100);
        assert_eq!(
            again.iter().map(|e| &e.event_id).collect::<Vec<_>>(),
            events.iter().map(|e| &e.event_id).collect::<Vec<_>>()
        );
        let next = generate(&ids, &event_names(), 7, 4, 100);
        assert!(next.iter().all(|e| !events.iter().any(|f| f.event_id == e.event_id)));
    }

    #[test]
    fn picks_spread_over_every_account() {
        let ids = seeded(10);
        let mut seen = std::collections::HashSet::new();
        for i in 0..100 {
            seen.insert(pick(&ids, 3, i));
        }
        assert_eq!(seen.len(), 10);
    }

    #[test]
    fn latency_quantiles_and_ratio() {
        let m = |units, ms: &[f64]| Measured {
            calls: ms.len() as u64,
            units,
            elapsed: Duration::from_secs(1),
            latencies: ms.to_vec(),
        };
        let c = Comparison {
            unit: "requests/s",
            direct: m(100, &[1.0, 2.0, 3.0]),
            gateway: m(70, &[2.0, 3.0, 9.0]),
            single: None,
            concurrency: 4,
        };
        assert!((c.ratio() - 0.7).abs() < 1e-9);
        assert!((c.added_p50() - 1.0).abs() < 1e-9);
        assert!(c.summary("GET").contains("70.0% of direct gRPC throughput (goal >= 60%: met)"));
    }
}
