//! `banso-bench playbooks-*`: the Playbooks service's three figures, each
//! beside a baseline measured in the same run.
//!
//! - `playbooks-rules`: trigger events evaluated against 200 playbooks with
//!   CEL conditions by the engine's own code (trigger helpers, audience,
//!   condition, the variables made once per event), beside the same 200
//!   conditions written as Rust closures over the same data. Both must agree
//!   on every event; the bench fails if they do not.
//! - `playbooks-schedule`: 100,000 accounts × 20 schedule playbooks, the
//!   daily pass's selection (candidates read by the pushed-down date
//!   conditions, every condition, audience and CEL checked in Rust), beside
//!   one SQL statement selecting the same (playbook, account) pairs; then the
//!   whole pass with its firings and CTAs, for information.
//! - `playbooks-latency`: usage ingested into Health → HealthScoreChanged →
//!   Playbooks → the CTA raised, under steady load on 1,000 accounts with 50
//!   enabled playbooks; ingest ack → CtaOpened/CtaUpdated consumed (the CTA
//!   is committed before its event is published, so it is visible through
//!   the API by then), beside ack → HealthScoreChanged and the bus alone.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use async_trait::async_trait;
use banso_events::{Envelope, Handler, HandlerError, Payload};
use banso_playbooks::bench::{BenchAccount, Case, RuleSpec, Rules};
use banso_proto::{events as ev, health as pb, playbooks as ppb, types as tpb};
use chrono::{Duration as Days, NaiveDate, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use sea_orm::{ConnectionTrait, Statement};
use tokio::sync::mpsc;

use crate::{
    harness::{Harness, Service, TENANT},
    health_common::{create_scorecard, linear, measure, quantile, wait_quiet},
    import::{int, loadavg, machine},
    usage::{Tenant, timestamp},
};

// ------------------------------------------------------------------ rules

#[derive(clap::Args, Debug, Clone)]
pub struct RulesArgs {
    /// Playbooks with CEL conditions.
    #[arg(long, default_value_t = 200)]
    pub playbooks: usize,
    /// Trigger events (HealthScoreChanged of random accounts).
    #[arg(long, default_value_t = 5_000)]
    pub events: usize,
    #[arg(long, default_value_t = 20_261_204)]
    pub seed: u64,
}

const RULES_GOAL_RATIO: f64 = 0.25;
const RULES_GOAL_EVALS: f64 = 20_000.0;

/// What a closure reads: the same values the CEL variables hold.
struct Plain<'a> {
    arr: i64,
    stage: &'a str,
    industry: &'a str,
    owner: &'a str,
    tags: &'a [String],
    days_to_renewal: Option<i64>,
    score: f64,
    band: &'a str,
    trend_7d: f64,
    events_30d: (f64, f64),
    old_score: f64,
    new_score: f64,
}

type Closure = Box<dyn Fn(&Plain<'_>) -> bool + Send + Sync>;

/// Rule `i`: a CEL condition, its closure, and its audience.
fn rule(i: usize) -> (RuleSpec, Closure, Vec<&'static str>) {
    let k = i / 6;
    let stages: Vec<&'static str> = if i.is_multiple_of(4) { vec!["adoption", "renewal"] } else { vec![] };
    let (cel, f): (String, Closure) = match i % 6 {
        0 => {
            let (x, y) = (30.0 + (k % 40) as f64, 100_000 * (k as i64 % 50));
            (
                format!("health.score < {x:.1} && account.arr > {y}"),
                Box::new(move |p: &Plain<'_>| p.score < x && p.arr > y),
            )
        }
        1 => (
            format!(
                "health.band == 'red' && account.lifecycle_stage in ['adoption', 'renewal'] && account.arr >= {}",
                k * 1000
            ),
            Box::new(move |p: &Plain<'_>| {
                p.band == "red" && (p.stage == "adoption" || p.stage == "renewal") && p.arr >= (k * 1000) as i64
            }),
        ),
        2 => {
            let n = 30 + (k as i64 % 120);
            (
                format!(
                    "account.days_to_renewal != null && account.days_to_renewal < {n} && health.trend_7d < -{}.0",
                    k % 10
                ),
                Box::new(move |p: &Plain<'_>| {
                    p.days_to_renewal.is_some_and(|d| d < n) && p.trend_7d < -((k % 10) as f64)
                }),
            )
        }
        3 => {
            let ratio = 0.3 + (k % 5) as f64 / 10.0;
            (
                format!(
                    "'vip' in account.tags && health.measures.events_30d.value < health.measures.events_30d.previous_value * {ratio:.1}"
                ),
                Box::new(move |p: &Plain<'_>| {
                    p.tags.iter().any(|t| t == "vip") && p.events_30d.0 < p.events_30d.1 * ratio
                }),
            )
        }
        4 => {
            let d = 5 + (k % 20) as i64;
            (
                format!("event.data.old_score - event.data.new_score >= {d}.0"),
                Box::new(move |p: &Plain<'_>| p.old_score - p.new_score >= d as f64),
            )
        }
        _ => {
            let industry = ["software", "retail", "finance", "manufacturing"][k % 4];
            (
                format!("account.industry == '{industry}' && account.owner_id != '' && health.score < 50.0"),
                Box::new(move |p: &Plain<'_>| p.industry == industry && !p.owner.is_empty() && p.score < 50.0),
            )
        }
    };
    (RuleSpec { score_fell_by: None, lifecycle_stages: stages.clone(), condition: cel }, f, stages)
}

struct Event {
    account: BenchAccount,
    old: f64,
    new: f64,
    events_30d: (f64, f64),
    today: NaiveDate,
}

pub async fn rules(args: RulesArgs) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let (mut specs, mut closures, mut audiences) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.playbooks {
        let (s, f, a) = rule(i);
        specs.push(s);
        closures.push(f);
        audiences.push(a);
    }
    let engine_rules = Rules::compile(&specs)?;
    let today = Utc::now().date_naive();
    let stages = ["onboarding", "adoption", "expansion", "renewal"];
    let industries = ["software", "retail", "finance", "manufacturing", "health"];
    let events: Vec<Event> = (0..args.events)
        .map(|i| {
            let old = rng.random_range(20.0..100.0f64).round();
            Event {
                account: BenchAccount {
                    id: uuid::Uuid::now_v7(),
                    name: format!("account {i}"),
                    lifecycle_stage: stages[rng.random_range(0..stages.len())],
                    touch_model: "high",
                    arr_minor: rng.random_range(0..10_000_000),
                    owner_id: if rng.random_bool(0.9) { format!("csm-{}", i % 17) } else { String::new() },
                    renewal_date: rng.random_bool(0.8).then(|| today + Days::days(rng.random_range(-30..400))),
                    last_usage_day: None,
                    stage_since: Utc::now(),
                    tags: if rng.random_bool(0.3) { vec!["vip".into()] } else { vec!["smb".into()] },
                    industry: industries[rng.random_range(0..industries.len())].into(),
                },
                old,
                new: (old - rng.random_range(0.0..30.0f64)).max(0.0).round(),
                events_30d: (rng.random_range(0.0..500.0f64).round(), rng.random_range(1.0..500.0f64).round()),
                today,
            }
        })
        .collect();
    let cases: Vec<Case> = events
        .iter()
        .map(|e| {
            let env = banso_events::envelope::new(
                TENANT,
                "health",
                Payload::HealthScoreChanged(ev::HealthScoreChanged {
                    account_id: e.account.id.to_string(),
                    old_score: Some(e.old),
                    new_score: e.new,
                    old_band: band(e.old) as i32,
                    new_band: band(e.new) as i32,
                    scorecard_id: uuid::Uuid::now_v7().to_string(),
                    scorecard_version: 1,
                    ..Default::default()
                }),
            );
            Case::health(&e.account, e.old, e.new, &[("events_30d", e.events_30d.0, e.events_30d.1)], env)
        })
        .collect::<anyhow::Result<_>>()?;
    println!(
        "banso-bench playbooks-rules: {} trigger events × {} playbooks with CEL conditions; machine: {}; load {}",
        int(args.events),
        args.playbooks,
        machine(),
        loadavg()
    );
    // Warm up both, then time each over every event, best of three.
    let mut engine_fired = vec![0usize; cases.len()];
    let mut closure_fired = vec![0usize; cases.len()];
    let (mut engine_best, mut closure_best) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        let t = Instant::now();
        for (i, c) in cases.iter().enumerate() {
            engine_fired[i] = engine_rules.evaluate(c);
        }
        engine_best = engine_best.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for (i, e) in events.iter().enumerate() {
            let band_name = band_str(e.new);
            let p = Plain {
                arr: e.account.arr_minor,
                stage: e.account.lifecycle_stage,
                industry: &e.account.industry,
                owner: &e.account.owner_id,
                tags: &e.account.tags,
                days_to_renewal: e.account.renewal_date.map(|r| (r - e.today).num_days()),
                score: e.new,
                band: band_name,
                trend_7d: e.new - e.old,
                events_30d: e.events_30d,
                old_score: e.old,
                new_score: e.new,
            };
            closure_fired[i] = closures
                .iter()
                .zip(&audiences)
                .filter(|(f, aud)| (aud.is_empty() || aud.contains(&p.stage)) && f(&p))
                .count();
        }
        closure_best = closure_best.min(t.elapsed().as_secs_f64());
    }
    let mismatches = engine_fired.iter().zip(&closure_fired).filter(|(a, b)| a != b).count();
    let fired: usize = engine_fired.iter().sum();
    let evals = (args.events * args.playbooks) as f64;
    let (engine_rate, closure_rate) = (evals / engine_best, evals / closure_best);
    let (facts_ns, gates_ns) = engine_rules.breakdown(&cases);
    let engine_ns = engine_best * 1e9 / args.events as f64;
    println!();
    println!("| evaluator | event × playbook evaluations/s | events/s | fired |");
    println!("|---|---:|---:|---:|");
    println!(
        "| the engine (CEL) | {} | {} | {} |",
        int(engine_rate as usize),
        int((engine_rate / args.playbooks as f64) as usize),
        int(fired)
    );
    println!(
        "| baseline: Rust closures | {} | {} | {} |",
        int(closure_rate as usize),
        int((closure_rate / args.playbooks as f64) as usize),
        int(closure_fired.iter().sum())
    );
    println!();
    println!(
        "the engine per event: {engine_ns:.0} ns — variables {facts_ns:.0} ns, trigger helpers and audiences {gates_ns:.0} ns, conditions ~{:.0} ns ({:.1} ns each, the payload fields they read included); the closures: {:.0} ns",
        (engine_ns - facts_ns - gates_ns).max(0.0),
        (engine_ns - facts_ns - gates_ns).max(0.0) / args.playbooks as f64,
        closure_best * 1e9 / args.events as f64
    );
    anyhow::ensure!(mismatches == 0, "the engine and the closures disagree on {mismatches} events");
    let ratio = engine_rate / closure_rate;
    println!();
    let ok = |b: bool| if b { "MET   " } else { "MISSED" };
    println!(
        "goal {}: ≥ {:.0}% of the closures (got {:.1}%)",
        ok(ratio >= RULES_GOAL_RATIO),
        RULES_GOAL_RATIO * 100.0,
        ratio * 100.0
    );
    println!(
        "goal {}: ≥ {} evaluations/s (got {})",
        ok(engine_rate >= RULES_GOAL_EVALS),
        int(RULES_GOAL_EVALS as usize),
        int(engine_rate as usize)
    );
    Ok(())
}

fn band(score: f64) -> pb::Band {
    if score < 40.0 {
        pb::Band::Red
    } else if score < 70.0 {
        pb::Band::Yellow
    } else {
        pb::Band::Green
    }
}

fn band_str(score: f64) -> &'static str {
    match band(score) {
        pb::Band::Red => "red",
        pb::Band::Yellow => "yellow",
        _ => "green",
    }
}

// --------------------------------------------------------------- schedule

#[derive(clap::Args, Debug, Clone)]
pub struct ScheduleArgs {
    #[arg(long, default_value_t = 100_000)]
    pub accounts: usize,
    /// Schedule playbooks (cycling through renewal, no-usage and days-in-stage conditions).
    #[arg(long, default_value_t = 20)]
    pub playbooks: usize,
    /// PostgreSQL server; a fresh database is created on it and dropped after.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub database_url: String,
    #[arg(long, default_value_t = 20_261_204)]
    pub seed: u64,
    #[arg(long)]
    pub keep: bool,
    /// Also time the whole pass with its firings and CTAs (one a selected
    /// pair: with the defaults, hundreds of thousands of rows).
    #[arg(long)]
    pub with_firings: bool,
}

const SCHEDULE_GOAL: f64 = 3.0;

/// Playbook `i`'s schedule condition and audience, and the same as SQL.
fn schedule_rule(i: usize) -> (ppb::schedule_trigger::When, Vec<tpb::LifecycleStage>, String) {
    use ppb::schedule_trigger::When;
    let stages: Vec<tpb::LifecycleStage> =
        if i.is_multiple_of(3) { vec![tpb::LifecycleStage::Adoption, tpb::LifecycleStage::Renewal] } else { vec![] };
    let stage_sql =
        if stages.is_empty() { String::new() } else { " AND lifecycle_stage IN ('adoption', 'renewal')".into() };
    let (when, sql) = match i % 3 {
        0 => {
            let n = [30, 60, 90, 120, 180][i / 3 % 5];
            (When::RenewalWithinDays(n), format!("renewal_date BETWEEN CURRENT_DATE AND CURRENT_DATE + {n}"))
        }
        1 => {
            let n = [7, 14, 30, 45][i / 3 % 4];
            (
                When::NoUsageForDays(n),
                format!("coalesce(last_usage_day, (create_time AT TIME ZONE 'UTC')::date) <= CURRENT_DATE - {n}"),
            )
        }
        _ => {
            let n = [30, 90, 180][i / 3 % 3];
            (When::DaysInStage(n), format!("(stage_since AT TIME ZONE 'UTC')::date <= CURRENT_DATE - {n}"))
        }
    };
    (when, stages, format!("{sql}{stage_sql}"))
}

pub async fn schedule(args: ScheduleArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut harness = Harness::start_service(&args.database_url, Service::Playbooks, None).await?;
    harness.keep = args.keep;
    let result = schedule_phases(&args, &harness).await;
    let stopped = harness.stop().await;
    result?;
    stopped?;
    println!("(total {:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

async fn schedule_phases(args: &ScheduleArgs, h: &Harness) -> anyhow::Result<()> {
    let pool = h.pool_for(banso_playbooks::NAME).await?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let today = Utc::now().date_naive();
    let now = Utc::now();
    let stages = ["onboarding", "adoption", "expansion", "renewal", "churned"];
    let accounts: Vec<BenchAccount> = (0..args.accounts)
        .map(|i| BenchAccount {
            id: uuid::Uuid::now_v7(),
            name: format!("account {i}"),
            lifecycle_stage: stages[rng.random_range(0..stages.len())],
            touch_model: ["high", "low", "tech"][i % 3],
            arr_minor: rng.random_range(0..10_000_000),
            owner_id: format!("csm-{}", i % 40),
            renewal_date: rng.random_bool(0.9).then(|| today + Days::days(rng.random_range(-60..730))),
            last_usage_day: rng.random_bool(0.85).then(|| today - Days::days(rng.random_range(0..90))),
            stage_since: now - Days::hours(rng.random_range(0..400 * 24)),
            tags: vec![],
            industry: "software".into(),
        })
        .collect();
    let t = Instant::now();
    banso_playbooks::bench::seed_accounts(&pool, TENANT, &accounts).await?;
    pool.execute_unprepared("ANALYZE playbooks.accounts").await?;
    println!(
        "banso-bench playbooks-schedule: {} accounts seeded in {:.1} s; {} schedule playbooks; machine: {}; load {}",
        int(args.accounts),
        t.elapsed().as_secs_f64(),
        args.playbooks,
        machine(),
        loadavg()
    );
    let mut client = h.playbooks_client();
    let mut sql = Vec::new();
    for i in 0..args.playbooks {
        let (when, stages, pred) = schedule_rule(i);
        let p = client
            .create_playbook(ppb::CreatePlaybookRequest {
                playbook: Some(ppb::Playbook {
                    display_name: format!("schedule {i}"),
                    trigger: Some(ppb::Trigger {
                        kind: Some(ppb::trigger::Kind::Schedule(ppb::ScheduleTrigger { when: Some(when) })),
                    }),
                    audience: Some(ppb::Audience {
                        lifecycle_stages: stages.iter().map(|s| *s as i32).collect(),
                        ..Default::default()
                    }),
                    actions: vec![ppb::Action {
                        touch_models: vec![],
                        kind: Some(ppb::action::Kind::OpenCta(ppb::OpenCtaAction {
                            r#type: ppb::CtaType::Lifecycle as i32,
                            priority: ppb::CtaPriority::Medium as i32,
                            title_template: format!("schedule {i}: {{{{account.name}}}}"),
                            ..Default::default()
                        })),
                    }],
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await?
            .into_inner();
        client.enable_playbook(ppb::EnablePlaybookRequest { id: p.id, version: 0, etag: p.etag }).await?;
        sql.push(format!("SELECT {i} AS playbook, account_id FROM playbooks.accounts WHERE tenant_id = '{TENANT}' AND NOT deleted AND {pred}"));
    }
    let statement = sql.join("\nUNION ALL\n");
    // Best of three for each, alternating, after one warm-up of each.
    let backend = pool.get_database_backend();
    let (mut engine_best, mut sql_best) = (f64::MAX, f64::MAX);
    let (mut selected, mut sql_rows) = (0u64, 0usize);
    for round in 0..4 {
        let t = Instant::now();
        let (n, _) = banso_playbooks::bench::schedule_pass(&pool, TENANT, today, false).await?;
        let e = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let rows = pool.query_all_raw(Statement::from_string(backend, statement.clone())).await?;
        let s = t.elapsed().as_secs_f64();
        if round > 0 {
            engine_best = engine_best.min(e);
            sql_best = sql_best.min(s);
        }
        selected = n;
        sql_rows = rows.len();
    }
    anyhow::ensure!(
        selected as usize == sql_rows,
        "the schedule selected {selected} (playbook, account) pairs, the SQL statement {sql_rows}"
    );
    let full = if args.with_firings {
        let t = Instant::now();
        let (_, fired) = banso_playbooks::bench::schedule_pass(&pool, TENANT, today, true).await?;
        Some((fired, t.elapsed().as_secs_f64()))
    } else {
        None
    };
    let ratio = engine_best / sql_best;
    println!();
    println!("| step | time | pairs |");
    println!("|---|---:|---:|");
    println!(
        "| the daily pass: selection (date conditions in SQL, every rule in Rust) | {:.0} ms | {} |",
        engine_best * 1000.0,
        int(selected as usize)
    );
    println!(
        "| baseline: one SQL statement selecting the same pairs | {:.0} ms | {} |",
        sql_best * 1000.0,
        int(sql_rows)
    );
    if let Some((fired, secs)) = full {
        println!("| the whole pass: selection + firings + CTAs | {secs:.1} s | {} |", int(fired as usize));
    }
    println!();
    println!(
        "goal {}: selection ≤ {SCHEDULE_GOAL}× the SQL statement (got {ratio:.2}×)",
        if ratio <= SCHEDULE_GOAL { "MET   " } else { "MISSED" }
    );
    pool.close().await.ok();
    Ok(())
}

// ---------------------------------------------------------------- latency

#[derive(clap::Args, Debug, Clone)]
pub struct LatencyArgs {
    /// Usage events a second, spread evenly over the accounts.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    #[arg(long, default_value_t = 30)]
    pub secs: u64,
    #[arg(long, default_value_t = 1_000)]
    pub accounts: usize,
    /// Enabled playbooks (one opens the CTA; the others are evaluated and do not fire).
    #[arg(long, default_value_t = 50)]
    pub playbooks: usize,
    #[arg(long, default_value_t = 50)]
    pub tick_ms: u64,
    /// Run on NATS JetStream at this URL instead of the embedded bus.
    #[arg(long)]
    pub nats_url: Option<String>,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub database_url: String,
    #[arg(long, default_value_t = 20_261_204)]
    pub seed: u64,
    #[arg(long)]
    pub keep: bool,
}

const LATENCY_GOAL_P99: Duration = Duration::from_secs(1);
const MAX_EVENTS_PER_ACCOUNT: usize = 19;

/// What the bench's consumer saw: (source, account, score or reasons, when).
struct Observer(mpsc::UnboundedSender<(bool, String, f64, Instant)>);

#[async_trait]
impl Handler for Observer {
    async fn handle(&self, env: &Envelope) -> Result<(), HandlerError> {
        let now = Instant::now();
        let seen = match &env.payload {
            Some(Payload::HealthScoreChanged(e)) => Some((false, e.account_id.clone(), e.new_score)),
            Some(Payload::CtaOpened(ev::CtaOpened { cta: Some(c) }))
            | Some(Payload::CtaUpdated(ev::CtaUpdated { cta: Some(c), .. })) => {
                Some((true, c.account_id.clone(), c.reasons.len() as f64))
            }
            _ => None,
        };
        if let Some((cta, account, v)) = seen {
            let _ = self.0.send((cta, account, v, now));
        }
        Ok(())
    }
}

pub async fn latency(args: LatencyArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.rate > 0 && args.secs > 0 && args.accounts > 0 && args.playbooks > 0, "counts must be > 0");
    let per_account = (u64::from(args.rate) * args.secs).div_ceil(args.accounts as u64) as usize;
    anyhow::ensure!(
        per_account <= MAX_EVENTS_PER_ACCOUNT,
        "{per_account} events an account: at most {MAX_EVENTS_PER_ACCOUNT}; raise --accounts"
    );
    let load_before = loadavg();
    let mut harness =
        Harness::start_service(&args.database_url, Service::HealthAndPlaybooks, args.nats_url.as_deref()).await?;
    harness.keep = args.keep;
    println!(
        "banso-bench playbooks-latency: {} events/s for {} s over {} accounts, {} enabled playbooks; bus: {}",
        args.rate,
        args.secs,
        int(args.accounts),
        args.playbooks,
        harness.bus_kind()
    );
    let result = latency_phases(&args, &harness).await;
    let stopped = harness.stop().await;
    let (to_cta, to_score, unmatched, sent) = result?;
    stopped?;
    let ms = |v: &[f64], q: f64| quantile(v, q) * 1000.0;
    println!();
    println!("machine:  {}; load average {load_before} before, {} after", machine(), loadavg());
    println!("load:     {} events", int(sent));
    println!();
    println!("| latency (ms)                                  | n      |    p50 |    p90 |    p99 |    max |");
    println!("|-----------------------------------------------|--------|-------:|-------:|-------:|-------:|");
    for (name, v) in [
        ("ingest ack → CTA opened/raised (event consumed)", &to_cta),
        ("baseline: ingest ack → HealthScoreChanged", &to_score),
    ] {
        println!(
            "| {name:<45} | {:<6} | {:>6.1} | {:>6.1} | {:>6.1} | {:>6.1} |",
            v.len(),
            ms(v, 0.5),
            ms(v, 0.9),
            ms(v, 0.99),
            ms(v, 1.0)
        );
    }
    if unmatched > 0 {
        println!("note: {unmatched} acknowledged events never showed as a CTA change within 30 s");
    }
    let p99 = if unmatched > 0 || to_cta.is_empty() {
        Duration::MAX
    } else {
        Duration::from_secs_f64(quantile(&to_cta, 0.99))
    };
    println!();
    println!(
        "goal {}: event → CTA p99 <= {} ms (got {})",
        if p99 <= LATENCY_GOAL_P99 { "MET   " } else { "MISSED" },
        LATENCY_GOAL_P99.as_millis(),
        if p99 == Duration::MAX { "events lost".to_string() } else { format!("{:.1} ms", p99.as_secs_f64() * 1000.0) }
    );
    Ok(())
}

async fn latency_phases(args: &LatencyArgs, h: &Harness) -> anyhow::Result<(Vec<f64>, Vec<f64>, usize, usize)> {
    let health_pool = h.pool_for(banso_health::NAME).await?;
    let tenant = Tenant::new(args.accounts, args.seed);
    tenant.seed(&health_pool).await?;
    let playbooks_pool = h.pool_for(banso_playbooks::NAME).await?;
    let now = Utc::now();
    let accounts: Vec<BenchAccount> = tenant
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| BenchAccount {
            id: a.row.account_id,
            name: a.row.name.clone(),
            lifecycle_stage: "adoption",
            touch_model: "high",
            arr_minor: 1_000_000,
            owner_id: format!("csm-{}", i % 40),
            renewal_date: None,
            last_usage_day: None,
            stage_since: now,
            tags: vec![],
            industry: "software".into(),
        })
        .collect();
    banso_playbooks::bench::seed_accounts(&playbooks_pool, TENANT, &accounts).await?;
    // 50 playbooks on HealthScoreChanged: the first opens a CTA when the
    // score falls; the others are evaluated on every event and do not fire.
    let mut pc = h.playbooks_client();
    for i in 0..args.playbooks {
        let target = i == 0;
        let p = pc
            .create_playbook(ppb::CreatePlaybookRequest {
                playbook: Some(ppb::Playbook {
                    display_name: format!("latency {i}"),
                    trigger: Some(ppb::Trigger {
                        kind: Some(ppb::trigger::Kind::Event(ppb::EventTrigger {
                            event_type: "health_score_changed".into(),
                            // The target fires on every move after the first
                            // score (an account without usage scores 0 first,
                            // then 95, 90, … as its errors add up).
                            score_fell_by: (!target).then_some(1.0),
                            ..Default::default()
                        })),
                    }),
                    condition: if target {
                        "health.score > 0.0 && health.score < 100.0".into()
                    } else {
                        format!("account.arr > {} && health.score < 100.0", 1_000_000_000 + i)
                    },
                    actions: vec![ppb::Action {
                        touch_models: vec![],
                        kind: Some(ppb::action::Kind::OpenCta(ppb::OpenCtaAction {
                            r#type: ppb::CtaType::Risk as i32,
                            priority: ppb::CtaPriority::Low as i32,
                            title_template: "{{account.name}} is slipping: {{health.score}}".into(),
                            ..Default::default()
                        })),
                    }],
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await?
            .into_inner();
        pc.enable_playbook(ppb::EnablePlaybookRequest { id: p.id, version: 0, etag: p.etag }).await?;
    }
    let mut hc = h.health_client();
    // Usage lowers the score: 0 minutes is 100 points, each 60 s event takes 5.
    let card = pb::Scorecard {
        name: "Latency (bench): 5 points lost a minute of errors".into(),
        measures: vec![pb::WeightedMeasure {
            missing: pb::MissingData::CountAsZero as i32,
            direction: pb::Direction::LowerIsBetter as i32,
            ..measure("usage_minutes_7d", 1.0, linear(0.0, 20.0))
        }],
        ..Default::default()
    };
    create_scorecard(&mut hc, card).await?;
    wait_quiet(&health_pool, Some(args.accounts as i64), Duration::from_secs(120))
        .await?
        .context("the accounts were not scored within 120 s")?;
    let (tx, mut seen) = mpsc::unbounded_channel();
    for (source, name) in
        [(banso_health::NAME, "bench-latency-health"), (banso_playbooks::NAME, "bench-latency-playbooks")]
    {
        banso_events::bus::supervise_consumer(
            &h.events.supervisor,
            "bench",
            h.events.bus.clone(),
            name,
            vec![banso_events::envelope::all_of(source)],
            Arc::new(Observer(tx.clone())),
            Default::default(),
            &banso_events::partition::Partitions::all(h.events.bus.partitions()),
        );
    }
    // Wait out the first scores (no CTA: the target's condition wants a score above 0).
    let mut initial = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while initial < args.accounts {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, seen.recv()).await {
            Ok(Some((false, _, _, _))) => initial += 1,
            Ok(Some(_)) => {}
            _ => anyhow::bail!("saw {initial} of the {} first scores", args.accounts),
        }
    }

    let mut order: Vec<usize> = (0..args.accounts).collect();
    let mut rng = StdRng::seed_from_u64(args.seed);
    order.shuffle(&mut rng);
    let index: HashMap<String, usize> = accounts.iter().enumerate().map(|(i, a)| (a.id.to_string(), i)).collect();
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<anyhow::Result<(Vec<(usize, usize)>, Instant)>>();
    let mut sent_to = vec![0usize; args.accounts];
    let total = (u64::from(args.rate) * args.secs) as usize;
    let mut ticker = tokio::time::interval(Duration::from_millis(args.tick_ms.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let (mut sent, mut next) = (0usize, 0usize);
    while sent < total {
        ticker.tick().await;
        let due = ((start.elapsed().as_secs_f64() * f64::from(args.rate)) as usize).min(total);
        if due <= sent {
            continue;
        }
        let mut events = Vec::with_capacity(due - sent);
        let mut keys = Vec::with_capacity(due - sent);
        let t = Utc::now();
        for _ in sent..due {
            let a = order[next % order.len()];
            next += 1;
            sent_to[a] += 1;
            keys.push((a, sent_to[a]));
            events.push(pb::UsageEvent {
                event_id: uuid::Uuid::now_v7().to_string(),
                account_id: accounts[a].id.to_string(),
                user_id: format!("usr_{a}"),
                event_name: "error_shown".into(),
                timestamp: Some(timestamp(t)),
                duration_seconds: Some(60.0),
                ..Default::default()
            });
        }
        sent = due;
        let mut c = hc.clone();
        let tx = ack_tx.clone();
        tokio::spawn(async move {
            let n = events.len() as i64;
            let res = c.batch_ingest_usage(pb::BatchIngestUsageRequest { events }).await;
            let at = Instant::now();
            let _ = tx.send(match res {
                Ok(r) if r.get_ref().accepted == n => Ok((keys, at)),
                Ok(r) => Err(anyhow::anyhow!("BatchIngestUsage accepted {} of {n}", r.get_ref().accepted)),
                Err(s) => Err(anyhow::anyhow!("BatchIngestUsage failed: {s}")),
            });
        });
    }
    drop(ack_tx);
    let mut acked = Vec::with_capacity(sent);
    while let Some(r) = ack_rx.recv().await {
        let (keys, at) = r?;
        acked.extend(keys.into_iter().map(|(a, n)| (a, n, at)));
    }
    // Per account: when the nth score (100 − 5n) and the nth reason were seen.
    let mut scores: Vec<Vec<(f64, Instant)>> = vec![Vec::new(); args.accounts];
    let mut ctas: Vec<Vec<(f64, Instant)>> = vec![Vec::new(); args.accounts];
    let done = |ctas: &Vec<Vec<(f64, Instant)>>| {
        ctas.iter().zip(&sent_to).all(|(c, n)| *n == 0 || c.last().is_some_and(|x| x.0 >= *n as f64))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(&ctas) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((is_cta, id, v, at))) = tokio::time::timeout(left, seen.recv()).await else { break };
        let Some(&a) = index.get(&id) else { continue };
        if is_cta { ctas[a].push((v, at)) } else { scores[a].push((v, at)) }
    }
    let (mut to_cta, mut to_score, mut unmatched) = (Vec::new(), Vec::new(), 0);
    for (a, n, at) in acked {
        let want_score = 100.0 - 5.0 * n as f64 + 0.05;
        if let Some(&(_, t)) = scores[a].iter().find(|x| x.0 <= want_score) {
            to_score.push(t.saturating_duration_since(at).as_secs_f64());
        }
        match ctas[a].iter().find(|x| x.0 >= n as f64) {
            Some(&(_, t)) => to_cta.push(t.saturating_duration_since(at).as_secs_f64()),
            None => unmatched += 1,
        }
    }
    to_cta.sort_by(f64::total_cmp);
    to_score.sort_by(f64::total_cmp);
    // The CTA is visible through the API: check one.
    let probe = accounts.iter().zip(&sent_to).find(|(_, n)| **n > 0).map(|(a, _)| a.id.to_string());
    if let Some(account) = probe {
        let r = pc
            .list_calls_to_action(ppb::ListCallsToActionRequest {
                filter: Some(ppb::CtaFilter { account_id: account.clone(), ..Default::default() }),
                ..Default::default()
            })
            .await?
            .into_inner();
        anyhow::ensure!(r.ctas.len() == 1, "account {account} has {} CTAs through the API, not 1", r.ctas.len());
    }
    health_pool.close().await.ok();
    playbooks_pool.close().await.ok();
    Ok((to_cta, to_score, unmatched, sent))
}
