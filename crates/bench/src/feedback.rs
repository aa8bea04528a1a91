//! `banso-bench feedback`: survey answers through the public path
//! (`SurveyResponseService/SubmitSurveyAnswer`, the invitation's token and
//! no bearer token) with `--invitations` invitations answered at once,
//! beside a plain INSERT of the same rows into a table of the same shape,
//! on the same database, in the same run.
//!
//! The Feedback service runs in-process through banso-testkit, on a fresh
//! SQLite file, or a fresh PostgreSQL database when
//! `BANSO_TEST_DATABASE_URL` names a server (and on NATS when
//! `BANSO_TEST_NATS_URL` does, else the embedded bus), with the production
//! pool size (`BANSO_DB_MAX_CONNECTIONS`, default 10, read from the
//! environment like every `BANSO_DB_*` and `BANSO_FEEDBACK_*` setting).
//! Untimed set-up: accounts, their contacts and health bands reach the
//! projection as Accounts' and Health's events on the service's bus; one
//! NPS survey; campaigns (`CreateCampaign` with `account_ids`) invite every
//! contact; `ListInvitations` gives each invitation's token.
//!
//! Each round then runs two phases, in alternating order, with the outbox
//! drained and the database checkpointed between them:
//!
//! - **answers**: `--concurrency` callers (closed loop) answer the round's
//!   invitations, each once, over `--connections` HTTP/2 connections (one
//!   by default: the gateway reaches the service over one channel);
//! - **baseline**: the same number of callers insert the same rows (same
//!   invitation, survey, campaign, account, contact, score, comment and
//!   account snapshot as the service stores; a fresh id and time) into
//!   `answers_baseline`, created with the `answers` table's columns and
//!   indexes, one autocommitted INSERT a row, on a pool of the service's size.
//!
//! The run fails (exit non-zero) when an answer is refused or the stored
//! state is not exactly one answer, one claimed invitation and one
//! SurveyAnswered an invitation, equal to its baseline row.
//!
//! `--breakdown` also answers three more sets of invitations in-process,
//! without gRPC, through the service's own code (`banso_feedback::bench`):
//! the use case whole, then its reads alone, its transaction alone, and its
//! transaction without SurveyAnswered; and times the token's verification.

use std::{
    collections::HashMap,
    fmt::Write as _,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use banso_events::{Payload, bus::Outgoing};
use banso_feedback::bench::{AnswerPath, Prepared};
use banso_proto::{accounts as apb, events as ev, feedback as pb, health as hpb};
use banso_testkit::TestApp;
use prost::Message as _;
use rand::{Rng, SeedableRng, rngs::StdRng};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::harness::count;

use crate::{
    harness::TENANT,
    health_common::quantile,
    import::{CpuSample, int, loadavg, machine},
    monitor::{Monitor, Profile, is_relay},
};

const GOAL_RATIO: f64 = 0.50;
const NAME: &str = banso_feedback::NAME;
/// The most accounts one campaign lists.
const MAX_CAMPAIGN_ACCOUNTS: usize = 1_000;
const BASELINE_TABLE: &str = "answers_baseline";
/// The columns of `answers`, in the order the service's INSERT names them.
const COLUMNS: [&str; 14] = [
    "id",
    "tenant_id",
    "invitation_id",
    "survey_id",
    "campaign_id",
    "kind",
    "account_id",
    "contact_id",
    "score",
    "perception",
    "comment",
    "answers",
    "answer_time",
    "snapshot",
];
const COMMENTS: &[&str] = &[
    "請求書の画面が分かりにくい",
    "サポートの対応が早くて助かっています。",
    "Reporting is what we use most; exports are slow at month end.",
    "導入から三か月、現場の定着はまだ半分ほどです",
];

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Invitations answered in a round, all of them open at once.
    #[arg(long, default_value_t = 1_000)]
    pub invitations: usize,
    /// Answers in flight at once (closed loop); the baseline inserts with
    /// as many callers.
    #[arg(long, default_value_t = 1_000)]
    pub concurrency: usize,
    /// Answers in all, a multiple of --invitations: one round each, the
    /// order of the two phases alternating (default: one round).
    #[arg(long)]
    pub answers: Option<usize>,
    /// Contacts of each account: a round's accounts are invitations ÷ this.
    #[arg(long, default_value_t = 5)]
    pub contacts_per_account: usize,
    /// HTTP/2 connections the answers are spread over.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Share of the answers with a comment (0 to 1); the others give a score alone.
    #[arg(long, default_value_t = 0.3)]
    pub comment_share: f64,
    /// Seed of the accounts, scores and comments.
    #[arg(long, default_value_t = 20_261_206)]
    pub seed: u64,
    /// Also time the answer path's parts in-process (three more sets of
    /// invitations): the use case without gRPC, its reads, its transaction
    /// with and without SurveyAnswered, and the token's verification.
    #[arg(long)]
    pub breakdown: bool,
    /// PostgreSQL only: sample the service's sessions in pg_stat_activity
    /// every 10 ms during the answers.
    #[arg(long)]
    pub profile: bool,
}

/// One invitation to answer, and what its answer says.
#[derive(Clone)]
struct Item {
    token: String,
    invitation: Uuid,
    score: i32,
    comment: &'static str,
}

/// What the baseline writes for an invitation besides the answer: the
/// invitation's row as the service reads it.
#[derive(Clone)]
struct InvitationRow {
    campaign: Uuid,
    survey: Uuid,
    kind: String,
    account: Uuid,
    contact: Uuid,
    snapshot: String,
}

/// A timed phase: `n` calls by a closed loop of callers.
struct Phase {
    n: usize,
    elapsed: Duration,
    /// Seconds of each successful call, sorted.
    latencies: Vec<f64>,
    errors: Vec<String>,
    cpu: String,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn ms(&self, q: f64) -> f64 {
        quantile(&self.latencies, q) * 1000.0
    }

    fn line(&self, name: &str) -> String {
        format!(
            "| {name:<52} | {:>6} | {:>7.2} | {:>7} | {:>8.1} | {:>8.1} | {:>8.1} |",
            int(self.latencies.len()),
            self.elapsed.as_secs_f64(),
            int(self.rate().round() as usize),
            self.ms(0.5),
            self.ms(0.99),
            self.ms(1.0),
        )
    }

    fn check(&self, what: &str) -> anyhow::Result<()> {
        if let Some(first) = self.errors.first() {
            anyhow::bail!("{what}: {} of {} calls failed; the first: {first}", self.errors.len(), self.n);
        }
        Ok(())
    }
}

const HEADER: &str = "| phase                                                |   rows | seconds |  rows/s |   p50 ms |   p99 ms |   max ms |\n\
                      |------------------------------------------------------|-------:|--------:|--------:|---------:|---------:|---------:|";

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.invitations > 0, "--invitations must be at least 1");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    anyhow::ensure!((0.0..=1.0).contains(&args.comment_share), "--comment-share must be 0 to 1");
    anyhow::ensure!(args.contacts_per_account > 0, "--contacts-per-account must be at least 1");
    anyhow::ensure!(
        args.invitations.is_multiple_of(args.contacts_per_account),
        "--invitations must be a multiple of --contacts-per-account"
    );
    let answers = args.answers.unwrap_or(args.invitations);
    anyhow::ensure!(
        answers > 0 && answers.is_multiple_of(args.invitations),
        "--answers must be a multiple of --invitations"
    );
    let started = Instant::now();
    let load_before = loadavg();
    let pool_size = std::env::var("BANSO_DB_MAX_CONNECTIONS").unwrap_or_else(|_| "10".into());
    let mut vars = vec![
        // The production default (the testkit's is 5, for tests).
        ("BANSO_DB_MAX_CONNECTIONS".to_owned(), pool_size),
        // A slow round is measured, not cut off (the default is 20 s).
        ("BANSO_REQUEST_TIMEOUT_SECS".to_owned(), "600".to_owned()),
    ];
    vars.extend(std::env::vars().filter(|(k, _)| {
        k.starts_with("BANSO_FEEDBACK_") || k.starts_with("BANSO_DB_") || k == "BANSO_CONCURRENCY_LIMIT"
    }));
    let options = banso_testkit::Options { vars, ..Default::default() };
    let app = banso_testkit::spawn_with(options, &[&banso_feedback::SERVICE]).await?;
    let result = bench(&args, answers / args.invitations, &app).await;
    let stopped = app.stop().await;
    result?;
    stopped?;
    println!(
        "\ndone in {:.0} s; load average before {load_before}, after {}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    Ok(())
}

async fn bench(args: &Args, rounds: usize, app: &TestApp) -> anyhow::Result<()> {
    let url = banso_kit::db::url_for(&app.config, NAME)?;
    let pool = banso_kit::db::connect(&url, NAME, &app.config.database).await?;
    let backend = pool.get_database_backend();
    let pg = backend == DbBackend::Postgres;
    anyhow::ensure!(!args.profile || pg, "--profile samples pg_stat_activity: PostgreSQL only");
    let n = args.invitations;
    let sets = rounds + if args.breakdown { 3 } else { 0 };
    let per_set = n / args.contacts_per_account;

    // The projection: accounts, their contacts and bands, as events.
    let t = Instant::now();
    let mut accounts = crate::data::accounts(per_set * sets, args.seed);
    for a in &mut accounts {
        a.id = Uuid::now_v7().to_string();
    }
    seed_projection(app, &pool, &accounts, args.contacts_per_account).await?;
    println!(
        "seeded the projection with {} accounts × {} contacts, through the bus, in {:.1} s",
        int(accounts.len()),
        args.contacts_per_account,
        t.elapsed().as_secs_f64()
    );

    // The survey and the campaigns: one set of invitations per round (and
    // per breakdown stage).
    let t = Instant::now();
    let mut admin = pb::surveys_service_client::SurveysServiceClient::with_interceptor(
        app.channel.clone(),
        app.bearer(TENANT, banso_testkit::TestRole::Admin),
    )
    .max_decoding_message_size(64 << 20);
    let survey = admin
        .create_survey(pb::CreateSurveyRequest {
            survey: Some(pb::Survey {
                display_name: "NPS (bench)".into(),
                kind: pb::SurveyKind::Nps as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .context("CreateSurvey")?
        .into_inner();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut item_sets: Vec<Vec<Item>> = Vec::with_capacity(sets);
    for (s, chunk) in accounts.chunks(per_set).enumerate() {
        let mut items = Vec::with_capacity(n);
        for part in chunk.chunks(MAX_CAMPAIGN_ACCOUNTS) {
            let campaign = admin
                .create_campaign(pb::CreateCampaignRequest {
                    campaign: Some(pb::Campaign {
                        survey_id: survey.id.clone(),
                        display_name: format!("bench set {}", s + 1),
                        account_ids: part.iter().map(|a| a.id.clone()).collect(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .context("CreateCampaign")?
                .into_inner();
            for inv in list_invitations(&mut admin, &campaign.id).await? {
                items.push(Item {
                    invitation: inv.id.parse().context("invitation id")?,
                    token: inv.token,
                    score: rng.random_range(0..=10),
                    comment: if rng.random_bool(args.comment_share) {
                        COMMENTS[rng.random_range(0..COMMENTS.len())]
                    } else {
                        ""
                    },
                });
            }
        }
        anyhow::ensure!(items.len() == n, "set {} has {} invitations, expected {n}", s + 1, items.len());
        item_sets.push(items);
    }
    println!(
        "created the NPS survey and {} invitations ({} sets of {}), listed their tokens, in {:.1} s",
        int(n * sets),
        sets,
        int(n),
        t.elapsed().as_secs_f64()
    );

    let rows = invitation_rows(&pool).await?;
    crate::harness::copy_table(&pool, "answers", BASELINE_TABLE).await?;
    if pg {
        // As autovacuum would have by now: the tables the reads use have statistics.
        pool.execute_unprepared("ANALYZE").await?;
    }
    let connections = connect(app, args.connections).await?;

    let mut answered = Vec::new();
    let mut baseline = Vec::new();
    let mut profile = None;
    for (r, items) in item_sets.iter().take(rounds).enumerate() {
        let answers_first = r % 2 == 1;
        for answers_now in [answers_first, !answers_first] {
            crate::harness::settle_outbox(&pool, Duration::from_secs(120)).await?;
            if answers_now {
                let monitor = if args.profile {
                    let cfg = banso_kit::config::DatabaseConfig { max_connections: 2, ..app.config.database.clone() };
                    let watcher = banso_kit::db::connect(&url, NAME, &cfg).await?;
                    Some(Monitor::start(watcher, "SELECT count(*) FROM feedback.answers", Some(PROFILE)))
                } else {
                    None
                };
                let phase = answer_phase(&pool, &connections, items, args.concurrency).await?;
                if let Some(m) = monitor {
                    profile = Some(m.finish().await);
                }
                phase.check("SubmitSurveyAnswer")?;
                answered.push(phase);
            } else {
                let phase = baseline_phase(&pool, items, &rows, args.concurrency, false).await?;
                phase.check("the plain INSERT")?;
                baseline.push(phase);
            }
        }
    }
    crate::harness::settle_outbox(&pool, Duration::from_secs(120)).await?;

    let breakdown = if args.breakdown {
        Some(breakdown(app, &pool, &connections, &item_sets[rounds..], &rows, args.concurrency).await?)
    } else {
        None
    };

    // Correctness: every invitation answered exactly once, with its event,
    // and every answer equal to its baseline row.
    let expected = rounds * n + if args.breakdown { 3 * n } else { 0 };
    let without_event = if args.breakdown { n } else { 0 };
    // The breakdown inserts the rows of its in-process set too (in BEGIN … COMMIT).
    let baseline_rows = rounds * n + if args.breakdown { n } else { 0 };
    let results = admin
        .get_survey_results(pb::GetSurveyResultsRequest { survey_id: survey.id.clone(), ..Default::default() })
        .await
        .context("GetSurveyResults")?
        .into_inner();
    let total = results.total.map_or(0, |t| t.answers);
    let tenant = format!("tenant_id = '{TENANT}'");
    let checks = [
        ("GetSurveyResults total answers", total, expected),
        (
            "answers rows",
            crate::harness::count(&pool, &format!("SELECT count(*) FROM answers WHERE {tenant}")).await?,
            expected,
        ),
        (
            "invitations answered (distinct)",
            crate::harness::count(&pool, &format!("SELECT count(DISTINCT invitation_id) FROM answers WHERE {tenant}"))
                .await?,
            expected,
        ),
        (
            "invitations claimed (answer_time set)",
            crate::harness::count(
                &pool,
                &format!("SELECT count(*) FROM invitations WHERE {tenant} AND answer_time IS NOT NULL"),
            )
            .await?,
            expected,
        ),
        (
            "SurveyAnswered events, published",
            count(
                &pool,
                "SELECT count(*) FROM outbox WHERE subject = 'banso.feedback.survey_answered' \
                 AND published_time IS NOT NULL",
            )
            .await?,
            expected - without_event,
        ),
        (
            "baseline rows",
            crate::harness::count(&pool, &format!("SELECT count(*) FROM {BASELINE_TABLE} WHERE {tenant}")).await?,
            baseline_rows,
        ),
        (
            "baseline rows equal to their answer (all but id and time)",
            crate::harness::count(&pool, SAME_ROWS).await?,
            baseline_rows,
        ),
    ];
    let mut failed = Vec::new();
    for (what, got, want) in checks {
        if got != want as i64 {
            failed.push(format!("{what}: {got}, expected {want}"));
        }
    }

    // The report.
    let version = if pg {
        crate::harness::scalar(&pool, "SELECT version()").await?
    } else {
        format!("SQLite {} (WAL, synchronous NORMAL)", crate::harness::scalar(&pool, "SELECT sqlite_version()").await?)
    };
    println!();
    println!("machine:  {}; load average {}", machine(), loadavg());
    println!("database: {version}");
    println!(
        "          pool {} connections (BANSO_DB_MAX_CONNECTIONS) for the service and for the baseline; bus: {}",
        app.config.database.max_connections,
        app.runtime.bus.kind()
    );
    println!(
        "answers:  {} invitations a round × {rounds} round{}, {} callers in flight, over {} HTTP/2 connection{}; \
         {} accounts × {} contacts a round",
        int(n),
        if rounds == 1 { "" } else { "s" },
        int(args.concurrency.min(n)),
        args.connections,
        if args.connections == 1 { "" } else { "s" },
        int(per_set),
        args.contacts_per_account
    );
    let with_comment = item_sets.iter().take(rounds).flatten().filter(|i| !i.comment.is_empty()).count();
    println!(
        "          each answer an NPS score; {} of {} with a comment (--comment-share {})",
        int(with_comment),
        int(rounds * n),
        args.comment_share
    );
    println!();
    println!("{HEADER}");
    for (r, (a, b)) in answered.iter().zip(&baseline).enumerate() {
        let tag = if rounds == 1 { String::new() } else { format!(" (round {})", r + 1) };
        println!("{}", a.line(&format!("SubmitSurveyAnswer, public gRPC path{tag}")));
        println!("{}", b.line(&format!("baseline: plain INSERT, one row a transaction{tag}")));
    }
    let rate = |ps: &[Phase]| {
        ps.iter().map(|p| p.latencies.len()).sum::<usize>() as f64
            / ps.iter().map(|p| p.elapsed.as_secs_f64()).sum::<f64>().max(1e-9)
    };
    let ratio = rate(&answered) / rate(&baseline);
    if rounds > 1 {
        // The rounds as one phase: rows over the summed seconds, latencies pooled.
        let all = |ps: &[Phase]| {
            let mut latencies: Vec<f64> = ps.iter().flat_map(|p| p.latencies.iter().copied()).collect();
            latencies.sort_by(f64::total_cmp);
            let elapsed = ps.iter().map(|p| p.elapsed).sum();
            Phase { n: latencies.len(), elapsed, latencies, errors: Vec::new(), cpu: String::new() }
        };
        println!("{}", all(&answered).line("all rounds: SubmitSurveyAnswer"));
        println!("{}", all(&baseline).line("all rounds: plain INSERT"));
    }
    println!(
        "| {:<52} |        |         | {:>6.1}% |          |          |          |",
        "answers / plain INSERT",
        ratio * 100.0
    );
    println!();
    println!("CPU seconds (user + system) of each phase:");
    for (r, (a, b)) in answered.iter().zip(&baseline).enumerate() {
        let tag = if rounds == 1 { String::new() } else { format!(" (round {})", r + 1) };
        println!("  answers{tag}:      {}", a.cpu);
        println!("  plain INSERT{tag}: {}", b.cpu);
    }
    if let Some(p) = &profile {
        p.print_profile("the answers (last round)");
    }
    if let Some(b) = &breakdown {
        b.print(rate(&answered), rate(&baseline));
    }
    let slowest = answered.iter().map(|p| p.ms(1.0)).fold(0.0, f64::max);
    if slowest > 20_000.0 {
        println!(
            "note: the slowest answer took {:.1} s, past the default request timeout (20 s, BANSO_REQUEST_TIMEOUT_SECS); \
             the bench raises it to 600 s",
            slowest / 1000.0
        );
    }
    println!();
    if failed.is_empty() {
        println!(
            "checks passed: every invitation answered exactly once (GetSurveyResults {total} answers), with its SurveyAnswered published; every baseline row equals its answer"
        );
    } else {
        for f in &failed {
            println!("CHECK FAILED: {f}");
        }
    }
    println!(
        "goal {}: answers >= {:.0}% of the plain INSERT's rows/s in the same run (got {:.1}%: {} answers/s against {} rows/s)",
        if ratio >= GOAL_RATIO { "MET   " } else { "MISSED" },
        GOAL_RATIO * 100.0,
        ratio * 100.0,
        int(rate(&answered).round() as usize),
        int(rate(&baseline).round() as usize)
    );
    anyhow::ensure!(failed.is_empty(), "the service answered wrongly: {}", failed.join("; "));
    Ok(())
}

/// Answers and baseline rows that agree on everything but id and time.
const SAME_ROWS: &str = "SELECT count(*) FROM answers a JOIN answers_baseline b \
     ON b.tenant_id = a.tenant_id AND b.invitation_id = a.invitation_id \
     WHERE a.survey_id = b.survey_id AND a.campaign_id = b.campaign_id AND a.kind = b.kind \
     AND a.account_id = b.account_id AND a.contact_id = b.contact_id \
     AND coalesce(a.score, -1) = coalesce(b.score, -1) AND coalesce(a.perception, -1) = coalesce(b.perception, -1) \
     AND a.comment = b.comment AND a.answers = b.answers AND a.snapshot = b.snapshot";

/// Publishes the accounts (AccountCreated), `per_account` contacts each
/// (ContactChanged) and a health band each (HealthScoreChanged) as their
/// services' relays would, and waits until the projection holds them all.
async fn seed_projection(
    app: &TestApp,
    pool: &DatabaseConnection,
    accounts: &[apb::Account],
    per_account: usize,
) -> anyhow::Result<()> {
    let bus = &app.runtime.bus;
    bus.prepare_source("accounts").await?;
    bus.prepare_source("health").await?;
    let mut out = Vec::new();
    let mut push = |source: &str, payload: Payload| {
        let env = banso_events::envelope::new(TENANT, source, payload);
        out.push(Outgoing {
            id: env.id.clone(),
            subject: banso_events::envelope::subject(&env),
            payload: bytes::Bytes::from(env.encode_to_vec()),
        });
    };
    for (i, a) in accounts.iter().enumerate() {
        push("accounts", Payload::AccountCreated(ev::AccountCreated { account: Some(a.clone()) }));
        for c in 0..per_account {
            let contact = apb::Contact {
                id: Uuid::now_v7().to_string(),
                account_id: a.id.clone(),
                name: format!("Contact {} of {}", c + 1, a.external_id),
                email: format!("contact{}.{}@example.com", c + 1, a.external_id),
                level: [apb::ContactLevel::Executive, apb::ContactLevel::Manager, apb::ContactLevel::Practitioner]
                    [c % 3] as i32,
                department: ["Finance", "Operations", "IT"][c % 3].into(),
                ..Default::default()
            };
            push(
                "accounts",
                Payload::ContactChanged(ev::ContactChanged {
                    change: ev::contact_changed::Change::Created as i32,
                    contact: Some(contact),
                }),
            );
        }
        let score = (i * 37 % 100) as f64;
        let band = match score {
            s if s < 40.0 => hpb::Band::Red,
            s if s < 70.0 => hpb::Band::Yellow,
            _ => hpb::Band::Green,
        };
        push(
            "health",
            Payload::HealthScoreChanged(ev::HealthScoreChanged {
                account_id: a.id.clone(),
                new_score: score,
                new_band: band as i32,
                scorecard_id: Uuid::now_v7().to_string(),
                scorecard_version: 1,
                ..Default::default()
            }),
        );
    }
    for chunk in out.chunks(500) {
        bus.publish(chunk).await?;
    }
    let want =
        [("accounts", accounts.len()), ("contacts", accounts.len() * per_account), ("account_signals", accounts.len())];
    crate::harness::await_projection(pool, TENANT, &want).await?;
    Ok(())
}

type Admin = pb::surveys_service_client::SurveysServiceClient<
    tonic::codegen::InterceptedService<Channel, banso_testkit::Bearer>,
>;

async fn list_invitations(admin: &mut Admin, campaign: &str) -> anyhow::Result<Vec<pb::Invitation>> {
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = admin
            .list_invitations(pb::ListInvitationsRequest {
                campaign_id: campaign.into(),
                page_size: 1_000,
                page_token,
                status: 0,
            })
            .await
            .context("ListInvitations")?
            .into_inner();
        out.extend(page.invitations);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        page_token = page.next_page_token;
    }
}

/// The invitations' rows as the service reads them for an answer.
async fn invitation_rows(pool: &DatabaseConnection) -> anyhow::Result<HashMap<Uuid, InvitationRow>> {
    let sql = format!(
        "SELECT id, campaign_id, survey_id, kind, account_id, contact_id, snapshot FROM invitations \
         WHERE tenant_id = '{TENANT}'"
    );
    let rows = pool.query_all_raw(Statement::from_string(pool.get_database_backend(), sql)).await?;
    rows.into_iter()
        .map(|r| {
            Ok((
                r.try_get::<Uuid>("", "id")?,
                InvitationRow {
                    campaign: r.try_get("", "campaign_id")?,
                    survey: r.try_get("", "survey_id")?,
                    kind: r.try_get("", "kind")?,
                    account: r.try_get("", "account_id")?,
                    contact: r.try_get("", "contact_id")?,
                    snapshot: r.try_get("", "snapshot")?,
                },
            ))
        })
        .collect()
}

async fn connect(app: &TestApp, n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        // Each `connect` opens a connection of its own.
        out.push(Channel::from_shared(format!("http://{}", app.addr))?.tcp_nodelay(true).connect().await?);
    }
    Ok(out)
}

/// Runs `work(0..n)` with `concurrency` callers, each taking the next index
/// when its call returns; timed from the moment all callers are ready.
async fn closed_loop<F, Fut>(pool: &DatabaseConnection, n: usize, concurrency: usize, work: F) -> Phase
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let callers = concurrency.clamp(1, n.max(1));
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Barrier::new(callers + 1));
    let mut tasks = Vec::with_capacity(callers);
    for _ in 0..callers {
        let (work, next, gate) = (work.clone(), next.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), Vec::new());
            gate.wait().await;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t = Instant::now();
                match work(i).await {
                    Ok(()) => latencies.push(t.elapsed().as_secs_f64()),
                    Err(e) => errors.push(format!("{e:#}")),
                }
            }
            (latencies, errors)
        }));
    }
    let cpu = CpuSample::take(pool).await;
    gate.wait().await;
    let start = Instant::now();
    let (mut latencies, mut errors) = (Vec::with_capacity(n), Vec::new());
    for t in tasks {
        match t.await {
            Ok((l, e)) => {
                latencies.extend(l);
                errors.extend(e);
            }
            Err(e) => errors.push(format!("a caller panicked: {e}")),
        }
    }
    let elapsed = start.elapsed();
    let cpu = cpu.since(pool).await;
    latencies.sort_by(f64::total_cmp);
    let cpu = if pool.get_database_backend() == DbBackend::Postgres {
        cpu.to_string()
    } else {
        format!("bench process {:>6.2} s (the service, SQLite and the client)", cpu.process)
    };
    Phase { n, elapsed, latencies, errors, cpu }
}

fn category(score: i32) -> pb::NpsCategory {
    match score {
        0..=6 => pb::NpsCategory::Detractor,
        7..=8 => pb::NpsCategory::Passive,
        _ => pb::NpsCategory::Promoter,
    }
}

async fn answer_phase(
    pool: &DatabaseConnection,
    connections: &[Channel],
    items: &[Item],
    concurrency: usize,
) -> anyhow::Result<Phase> {
    let items: Arc<[Item]> = items.into();
    let connections: Arc<[Channel]> = connections.into();
    let phase = closed_loop(pool, items.len(), concurrency, move |i| {
        let item = items[i].clone();
        // No bearer token: the token is the only credential.
        let mut public = pb::survey_response_service_client::SurveyResponseServiceClient::new(
            connections[i % connections.len()].clone(),
        );
        async move {
            let r = public
                .submit_survey_answer(pb::SubmitSurveyAnswerRequest {
                    token: item.token,
                    score: Some(item.score),
                    comment: item.comment.into(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            Uuid::parse_str(&r.answer_id).context("answer_id")?;
            anyhow::ensure!(
                r.nps_category == category(item.score) as i32,
                "score {} came back as category {}",
                item.score,
                r.nps_category
            );
            Ok(())
        }
    })
    .await;
    Ok(phase)
}

/// The plain INSERT of `items`' rows, one a transaction: autocommitted, or
/// with `explicit`, between BEGIN (IMMEDIATE on SQLite, as the service's)
/// and COMMIT.
async fn baseline_phase(
    pool: &DatabaseConnection,
    items: &[Item],
    rows: &HashMap<Uuid, InvitationRow>,
    concurrency: usize,
    explicit: bool,
) -> anyhow::Result<Phase> {
    let backend = pool.get_database_backend();
    let mut sql = format!("INSERT INTO \"{BASELINE_TABLE}\" (");
    for (i, c) in COLUMNS.iter().enumerate() {
        let _ = write!(sql, "{}\"{c}\"", if i == 0 { "" } else { ", " });
    }
    sql.push_str(") VALUES (");
    for i in 1..=COLUMNS.len() {
        let sep = if i == 1 { "" } else { ", " };
        match backend {
            DbBackend::Postgres => {
                let _ = write!(sql, "{sep}${i}");
            }
            _ => {
                let _ = write!(sql, "{sep}?");
            }
        }
    }
    sql.push(')');
    let planned: Vec<(Item, InvitationRow)> = items
        .iter()
        .map(|it| Ok((it.clone(), rows.get(&it.invitation).context("an invitation not in the table")?.clone())))
        .collect::<anyhow::Result<_>>()?;
    let planned: Arc<[(Item, InvitationRow)]> = planned.into();
    let (conn, sql) = (pool.clone(), Arc::<str>::from(sql));
    let phase = closed_loop(pool, planned.len(), concurrency, move |i| {
        let (item, row) = planned[i].clone();
        let (conn, sql) = (conn.clone(), sql.clone());
        async move {
            let values: Vec<Value> = vec![
                Uuid::now_v7().into(),
                TENANT.into(),
                item.invitation.into(),
                row.survey.into(),
                row.campaign.into(),
                row.kind.into(),
                row.account.into(),
                row.contact.into(),
                Some(item.score).into(),
                None::<i32>.into(),
                item.comment.into(),
                "[]".into(),
                chrono::Utc::now().into(),
                row.snapshot.into(),
            ];
            let insert = Statement::from_sql_and_values(backend, sql.as_ref(), values);
            if explicit {
                use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait as _};
                let options = TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..Default::default()
                };
                let txn = conn.begin_with_options(options).await?;
                txn.execute_raw(insert).await?;
                txn.commit().await?;
            } else {
                conn.execute_raw(insert).await?;
            }
            Ok(())
        }
    })
    .await;
    Ok(phase)
}

/// Where an answer's time goes, measured on three more sets.
struct Breakdown {
    verify_us: f64,
    forged: Phase,
    submit: Phase,
    reads: Phase,
    write: Phase,
    write_no_event: Phase,
    insert_tx: Phase,
}

/// `token` with its MAC changed: it decodes, and the HMAC refuses it.
fn forged(token: &str) -> String {
    let mut t = token.to_owned();
    if let Some(dot) = t.find('.') {
        let c = if t[dot + 1..].starts_with('A') { "B" } else { "A" };
        t.replace_range(dot + 1..dot + 2, c);
    }
    t
}

async fn breakdown(
    app: &TestApp,
    pool: &DatabaseConnection,
    connections: &[Channel],
    sets: &[Vec<Item>],
    rows: &HashMap<Uuid, InvitationRow>,
    concurrency: usize,
) -> anyhow::Result<Breakdown> {
    let path = Arc::new(AnswerPath::open(&app.config, &app.runtime).await?);
    // The token alone: HMAC-SHA256 and the expiry, on one core.
    let all: Vec<&str> = sets.iter().flatten().map(|i| i.token.as_str()).collect();
    let t = Instant::now();
    let mut ok = 0usize;
    for _ in 0..10 {
        ok += all.iter().filter(|tok| path.verify(tok)).count();
    }
    let verify_us = t.elapsed().as_secs_f64() * 1e6 / (10 * all.len()) as f64;
    anyhow::ensure!(ok == 10 * all.len(), "a token the service signed did not verify");
    anyhow::ensure!(!path.verify(&forged(all[0])), "a forged token verified");

    // The gRPC path without the database: the same call with each token's
    // MAC changed, refused (INVALID_ARGUMENT) after the HMAC.
    crate::harness::settle_outbox(pool, Duration::from_secs(120)).await?;
    let tokens: Arc<[String]> = sets[0].iter().map(|i| forged(&i.token)).collect();
    let channels: Arc<[Channel]> = connections.into();
    let forged = closed_loop(pool, tokens.len(), concurrency, move |i| {
        let token = tokens[i].clone();
        let mut public =
            pb::survey_response_service_client::SurveyResponseServiceClient::new(channels[i % channels.len()].clone());
        async move {
            let r = public
                .submit_survey_answer(pb::SubmitSurveyAnswerRequest { token, score: Some(9), ..Default::default() })
                .await;
            match r {
                Err(e) if e.code() == tonic::Code::InvalidArgument => Ok(()),
                other => anyhow::bail!("a forged token got {other:?}"),
            }
        }
    })
    .await;
    forged.check("the forged tokens")?;

    // The use case whole, in-process.
    crate::harness::settle_outbox(pool, Duration::from_secs(120)).await?;
    let items: Arc<[Item]> = sets[0].as_slice().into();
    let p = path.clone();
    let submit = closed_loop(pool, items.len(), concurrency, move |i| {
        let (p, it) = (p.clone(), items[i].clone());
        async move { p.submit(&it.token, it.score, it.comment).await.map(drop) }
    })
    .await;
    submit.check("the use case in-process")?;
    // The same rows as a plain INSERT in a transaction of its own each.
    crate::harness::settle_outbox(pool, Duration::from_secs(120)).await?;
    let insert_tx = baseline_phase(pool, &sets[0], rows, concurrency, true).await?;
    insert_tx.check("the plain INSERT in BEGIN … COMMIT")?;

    // Its two halves, on two more sets: the reads (timed), then the
    // transaction with SurveyAnswered; the reads again (timed), then the
    // transaction without it.
    let mut halves = Vec::new();
    for (k, emit) in [(1, true), (2, false)] {
        crate::harness::settle_outbox(pool, Duration::from_secs(120)).await?;
        let items: Arc<[Item]> = sets[k].as_slice().into();
        let prepared: Arc<std::sync::Mutex<Vec<Option<Prepared>>>> =
            Arc::new(std::sync::Mutex::new((0..items.len()).map(|_| None).collect()));
        let (p, out) = (path.clone(), prepared.clone());
        let reads = closed_loop(pool, items.len(), concurrency, move |i| {
            let (p, it, out) = (p.clone(), items[i].clone(), out.clone());
            async move {
                let ready = p.read(&it.token, it.score, it.comment).await?;
                out.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[i] = Some(ready);
                Ok(())
            }
        })
        .await;
        reads.check("the reads in-process")?;
        let prepared: Arc<[Prepared]> = std::mem::take(&mut *prepared.lock().map_err(|_| anyhow::anyhow!("poisoned"))?)
            .into_iter()
            .map(|p| p.context("an answer was not read"))
            .collect::<anyhow::Result<Vec<_>>>()?
            .into();
        crate::harness::settle_outbox(pool, Duration::from_secs(120)).await?;
        let p = path.clone();
        let write = closed_loop(pool, prepared.len(), concurrency, move |i| {
            let (p, prepared) = (p.clone(), prepared.clone());
            async move { p.write(&prepared[i], emit).await }
        })
        .await;
        write.check("the transaction in-process")?;
        halves.push((reads, write));
    }
    crate::harness::settle_outbox(pool, Duration::from_secs(120)).await?;
    let (_, write_no_event) = halves.pop().context("two halves")?;
    let (reads, write) = halves.pop().context("two halves")?;
    Ok(Breakdown { verify_us, forged, submit, reads, write, write_no_event, insert_tx })
}

impl Breakdown {
    fn print(&self, grpc: f64, baseline: f64) {
        println!();
        println!(
            "where an answer's time goes, each part on invitations of its own at the same concurrency; the in-process"
        );
        println!("parts run the service's own code (banso_feedback::bench) on a pool of the same size:");
        println!("{HEADER}");
        let parts = [
            (&self.forged, "gRPC path, forged tokens (refused after the HMAC)"),
            (&self.submit, "the use case in-process (no gRPC)"),
            (&self.reads, "its reads: invitation, survey, account, signals"),
            (&self.write, "its transaction: claim, INSERT, outbox, COMMIT"),
            (&self.write_no_event, "its transaction without SurveyAnswered"),
            (&self.insert_tx, "plain INSERT in BEGIN … COMMIT"),
        ];
        for (p, name) in parts {
            println!(
                "{}  {:>6.1}% of gRPC answers/s, {:>5.1}% of INSERT rows/s",
                p.line(name),
                p.rate() / grpc * 100.0,
                p.rate() / baseline * 100.0
            );
        }
        println!("token verification alone (HMAC-SHA256, one core): {:.2} µs a token", self.verify_us);
        println!("CPU seconds (user + system) of each part:");
        for (p, name) in parts {
            println!("  {name:<52} {}", p.cpu);
        }
    }
}

/// The service's sessions during the answers.
const PROFILE: Profile = Profile {
    classify,
    service: "answer",
    no_sql: "answer: no SQL in flight (gRPC, token, service CPU; or callers waiting for a pool connection)",
};

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
        return "answer: idle in transaction (service work between statements)";
    }
    if q.starts_with("SELECT \"invitations\"") {
        "answer: SELECT invitation [find_invitation]"
    } else if q.starts_with("SELECT \"surveys\"") {
        "answer: SELECT survey [surveys::find]"
    } else if q.starts_with("SELECT \"accounts\"") {
        "answer: SELECT projected account [projection::get]"
    } else if q.starts_with("SELECT \"account_signals\"") {
        "answer: SELECT account signals [projection::get]"
    } else if q.starts_with("UPDATE \"invitations\"") {
        "answer: UPDATE invitations, the claim [claim_answer]"
    } else if q.starts_with("INSERT INTO \"answers\"") {
        "answer: INSERT answers [answers::insert]"
    } else if q.starts_with("INSERT INTO \"outbox\"") {
        "answer: INSERT outbox [Tx::emit]"
    } else if q.starts_with("COMMIT") {
        "answer: COMMIT (WAL flush)"
    } else if q.starts_with("BEGIN") {
        "answer: BEGIN"
    } else if q.starts_with("UPDATE \"tenants\"") || q.starts_with("INSERT INTO \"tenants\"") {
        "answer: the tenant's row (a comment's feedback item: UPDATE tenants)"
    } else {
        "other SQL"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_ddl_is_copied_to_the_baseline_table() {
        let table = r#"CREATE TABLE "answers" ( "id" uuid_text NOT NULL PRIMARY KEY, "answers" text NOT NULL )"#;
        assert_eq!(
            crate::harness::sqlite_copy("answers", BASELINE_TABLE, "table", table).unwrap(),
            r#"CREATE TABLE "answers_baseline" ( "id" uuid_text NOT NULL PRIMARY KEY, "answers" text NOT NULL )"#
        );
        let index = r#"CREATE UNIQUE INDEX "answers_invitation" ON "answers" ("tenant_id", "invitation_id")"#;
        assert_eq!(
            crate::harness::sqlite_copy("answers", BASELINE_TABLE, "index", index).unwrap(),
            r#"CREATE UNIQUE INDEX "answers_baseline_invitation" ON "answers_baseline" ("tenant_id", "invitation_id")"#
        );
        assert!(crate::harness::sqlite_copy("answers", BASELINE_TABLE, "trigger", table).is_err());
    }

    #[test]
    fn defaults_parse() {
        let a: Args = crate::defaults(&[]).unwrap();
        assert_eq!((a.invitations, a.concurrency, a.answers, a.connections), (1_000, 1_000, None, 1));
    }
}
