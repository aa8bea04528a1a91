//! `banso-bench feedback-voice`: the voice of the customer at the size of
//! issue #15 — `--items` feedback items (100,000) in `--themes` themes
//! (1,000) — measured three ways, each beside its goal:
//!
//! - **import**: the items arrive through `ImportFeedbackItems` (a client
//!   stream; one stream of at most 100,000 items, the service's limit),
//!   timed from the first message to the response, beside a plain INSERT
//!   of the same rows into `items_baseline` (the `items` table's columns
//!   and indexes) in the import's batches — one multi-row INSERT of 500
//!   rows a transaction, one caller, as the import writes them — without
//!   the import's validation, account snapshot, FeedbackImported outbox
//!   rows (one a batch), routing or generation bump. Goal: ≥ 50% of the INSERT's rows/s.
//! - **suggestion**: `--probes` times, a new item (`CreateFeedbackItem`)
//!   and then `SuggestThemes` for it twice: the first call after a new
//!   item (the tenant's index has moved) and a repeated one (it has not).
//!   Goal: p99 ≤ 50 ms.
//! - **ranking**: `RankThemes` over every theme and account, `--rank-runs`
//!   times. Goal: ≤ 1 s.
//!
//! The service runs in-process through banso-testkit on a fresh SQLite
//! file, or a fresh PostgreSQL database when `BANSO_TEST_DATABASE_URL`
//! names a server (on NATS when `BANSO_TEST_NATS_URL` does), with the
//! production pool size (`BANSO_DB_MAX_CONNECTIONS`, default 10).
//! Untimed set-up: accounts and their contacts and health bands reach the
//! projection as Accounts' and Health's events; the themes are made with
//! `CreateTheme` (an assessment each, no keyword rules, so the import
//! measures items alone); after the import every item joins its theme by
//! `AssignTheme`.
//!
//! The texts are generated from a seed: mixed Japanese and English
//! sentences, a theme's own key terms (a product area, a problem and a
//! feature name of its own) with filler every theme shares, so the index
//! has the shape of a real tenant's (shared words, distinct ones, two
//! scripts). The run fails (exit non-zero) when a call is refused or the
//! stored state is not exactly the items sent, each in its theme, each
//! announced (FeedbackImported; the probes' FeedbackReceived), and a
//! baseline row equal to each item.

use std::{
    fmt::Write as _,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use banso_events::{Payload, bus::Outgoing};
use banso_proto::{accounts as apb, events as ev, feedback as pb, health as hpb};
use banso_testkit::TestApp;
use futures::{StreamExt as _, TryStreamExt as _};
use prost::Message as _;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait as _, Value};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::harness::count;

use crate::{
    harness::TENANT,
    health_common::quantile,
    import::{CpuSample, int, loadavg, machine},
};

const NAME: &str = banso_feedback::NAME;
const GOAL_RATIO: f64 = 0.50;
const GOAL_SUGGEST_P99_MS: f64 = 50.0;
const GOAL_RANK_MS: f64 = 1_000.0;
/// Items one ImportFeedbackItems stream takes (the service's limit).
const MAX_IMPORT: usize = 100_000;
/// Rows a transaction of the baseline writes: the import's batch.
const BATCH: usize = 500;
const BASELINE_TABLE: &str = "items_baseline";
/// The columns of `items`, as the service's INSERT names them.
const COLUMNS: [&str; 15] = [
    "id",
    "tenant_id",
    "account_id",
    "contact_id",
    "department",
    "category",
    "cx_dimension",
    "journey_phase",
    "severity",
    "channel",
    "body",
    "snapshot",
    "answer_id",
    "created_by",
    "create_time",
];

/// Product areas: (Japanese, English). A theme is an area × a problem.
const AREAS: &[(&str, &str)] = &[
    ("請求書", "invoice"),
    ("CSV出力", "CSV export"),
    ("ログイン画面", "login page"),
    ("ダッシュボード", "dashboard"),
    ("権限設定", "permission settings"),
    ("通知メール", "notification email"),
    ("検索機能", "search"),
    ("月次レポート", "monthly report"),
    ("API連携", "API integration"),
    ("モバイルアプリ", "mobile app"),
    ("カレンダー同期", "calendar sync"),
    ("承認フロー", "approval workflow"),
    ("請求先住所", "billing address"),
    ("契約更新", "contract renewal"),
    ("オンボーディング", "onboarding checklist"),
    ("データ移行", "data migration"),
    ("シングルサインオン", "single sign-on"),
    ("監査ログ", "audit log"),
    ("ファイル添付", "file attachment"),
    ("在庫管理", "inventory screen"),
    ("勤怠入力", "timesheet entry"),
    ("見積書", "quote builder"),
    ("ワークフロー", "workflow editor"),
    ("チャット窓口", "support chat"),
    ("タグ付け", "tagging"),
    ("一括取込", "bulk upload"),
    ("帳票印刷", "form printing"),
    ("多言語対応", "localization"),
    ("二段階認証", "two-factor login"),
    ("グラフ表示", "charts"),
    ("絞り込み", "filters"),
    ("テンプレート", "templates"),
    ("Webhook", "webhooks"),
    ("ユーザー管理", "user administration"),
    ("支払い方法", "payment method"),
    ("予約画面", "booking calendar"),
    ("アンケート", "survey builder"),
    ("アクセス解析", "usage analytics"),
    ("バックアップ", "backups"),
    ("料金プラン", "pricing tiers"),
];
/// Problems: (Japanese, English).
const PROBLEMS: &[(&str, &str)] = &[
    ("が遅い", "is slow"),
    ("でエラーが出る", "fails with an error"),
    ("が分かりにくい", "is confusing"),
    ("が動かない", "does not work"),
    ("の項目が足りない", "is missing fields"),
    ("で文字化けする", "shows garbled characters"),
    ("がタイムアウトする", "times out"),
    ("の設定が難しい", "is hard to configure"),
    ("の表示が崩れる", "renders badly"),
    ("でデータが重複する", "creates duplicate records"),
    ("の権限が細かく分けられない", "lacks fine-grained roles"),
    ("が英語にならない", "cannot be switched to English"),
    ("の履歴が消える", "loses its history"),
    ("が月末に止まる", "stalls at month end"),
    ("の通知が届かない", "sends no notifications"),
    ("の金額が合わない", "shows wrong totals"),
    ("がスマホで見づらい", "is unreadable on phones"),
    ("の並び替えができない", "cannot be sorted"),
    ("が古いブラウザで使えない", "breaks on older browsers"),
    ("の上限が低すぎる", "has limits that are too low"),
    ("の操作が多すぎる", "takes too many clicks"),
    ("のマニュアルがない", "has no documentation"),
    ("が他社製品と連携できない", "does not connect to other tools"),
    ("のコストが高い", "costs too much"),
    ("の初期設定に時間がかかる", "takes long to set up"),
];
/// A feature's name: three syllables (katakana, romaji).
const SYLLABLES: &[(&str, &str)] = &[
    ("カ", "ka"),
    ("キ", "ki"),
    ("ク", "ku"),
    ("ケ", "ke"),
    ("コ", "ko"),
    ("サ", "sa"),
    ("シ", "shi"),
    ("ス", "su"),
    ("セ", "se"),
    ("ソ", "so"),
    ("タ", "ta"),
    ("ト", "to"),
    ("ナ", "na"),
    ("ニ", "ni"),
    ("ノ", "no"),
    ("ハ", "ha"),
    ("ヒ", "hi"),
    ("フ", "fu"),
    ("ホ", "ho"),
    ("マ", "ma"),
    ("ミ", "mi"),
    ("ム", "mu"),
    ("メ", "me"),
    ("モ", "mo"),
    ("ラ", "ra"),
    ("リ", "ri"),
    ("ル", "ru"),
    ("レ", "re"),
    ("ロ", "ro"),
    ("ガ", "ga"),
    ("ゴ", "go"),
    ("ザ", "za"),
    ("ゾ", "zo"),
    ("ダ", "da"),
    ("ド", "do"),
    ("バ", "ba"),
    ("ボ", "bo"),
    ("パ", "pa"),
    ("ポ", "po"),
    ("ヴィ", "vi"),
];
/// Words every theme's items share.
const FILLER_JA: &[&str] = &[
    "いつも大変お世話になっております。",
    "現場の担当者から声が上がっています。",
    "至急ご対応いただけると助かります。",
    "先月から何度か同じことが起きています。",
    "他の部署でも同じ状況のようです。",
    "ご検討のほどよろしくお願いいたします。",
    "回避策があれば教えてください。",
    "来期の更新判断に影響しそうです。",
    "導入当初から気になっていました。",
    "管理者としてはかなり困っています。",
    "社内の説明に時間がかかっています。",
    "サポートに問い合わせましたが解決していません。",
];
const FILLER_EN: &[&str] = &[
    "Our team raised this again this week.",
    "This has been going on since the last release.",
    "We would appreciate an update on the plan.",
    "It affects several departments on our side.",
    "Any workaround would help in the meantime.",
    "This matters for our renewal discussion.",
    "Our admins spend too much time on it.",
    "We mentioned it to our CSM last quarter.",
    "Please let us know if you need more details.",
    "Thanks for looking into it.",
    "Several users asked about this in our internal chat.",
    "It is the main complaint we hear from the field.",
];
const CATEGORIES: &[&str] = &["bug", "feature request", "usability", "performance", "pricing", "documentation"];

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Feedback items imported (one stream per 100,000).
    #[arg(long, default_value_t = 100_000)]
    pub items: usize,
    /// Themes the items are spread over.
    #[arg(long, default_value_t = 1_000)]
    pub themes: usize,
    /// Accounts raising them (3 contacts each).
    #[arg(long, default_value_t = 2_000)]
    pub accounts: usize,
    /// New items, each followed by SuggestThemes twice.
    #[arg(long, default_value_t = 1_000)]
    pub probes: usize,
    /// Stop the probes after this many seconds (the ones done are reported).
    #[arg(long, default_value_t = 600)]
    pub probe_seconds: u64,
    /// RankThemes calls over every theme.
    #[arg(long, default_value_t = 7)]
    pub rank_runs: usize,
    /// Callers in flight for the untimed CreateTheme and AssignTheme calls.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Share of the texts in Japanese (the others in English).
    #[arg(long, default_value_t = 0.6)]
    pub japanese_share: f64,
    /// Seed of the accounts, themes and texts.
    #[arg(long, default_value_t = 20_261_206)]
    pub seed: u64,
    /// Stop after the import and its baseline (no AssignTheme, no probes,
    /// no RankThemes).
    #[arg(long)]
    pub import_only: bool,
    /// Put the items in their themes by writing the links straight into
    /// `item_themes` (the rows AssignTheme writes: how "hand", 1,000 a
    /// statement) and moving the tenant's generation once, instead of one
    /// AssignTheme call an item: the untimed set-up in seconds, not
    /// minutes. The measured parts are the same: no suggestion index exists
    /// yet, the first SuggestThemes builds it from the store (links written
    /// behind the service's back record no change, so an index there was
    /// would be built again too).
    #[arg(long)]
    pub assign_in_sql: bool,
}

/// A theme's own words.
struct ThemeSpec {
    area: usize,
    problem: usize,
    /// Its feature name (katakana, romaji).
    name: (String, String),
}

/// An account of the projection and its contacts.
struct Acct {
    id: Uuid,
    contacts: Vec<Uuid>,
}

type Client =
    pb::voice_service_client::VoiceServiceClient<tonic::codegen::InterceptedService<Channel, banso_testkit::Bearer>>;

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.items > 0, "--items must be at least 1, got {}", args.items);
    anyhow::ensure!(args.themes > 0, "--themes must be at least 1, got {}", args.themes);
    anyhow::ensure!(args.accounts > 0, "--accounts must be at least 1, got {}", args.accounts);
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1, got {}", args.concurrency);
    anyhow::ensure!(args.rank_runs > 0, "--rank-runs must be at least 1, got {}", args.rank_runs);
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.japanese_share),
        "--japanese-share must be 0 to 1, got {}",
        args.japanese_share
    );
    let started = Instant::now();
    let load_before = loadavg();
    let pool_size = std::env::var("BANSO_DB_MAX_CONNECTIONS").unwrap_or_else(|_| "10".into());
    let mut vars = vec![
        // The production default (the testkit's is 5, for tests).
        ("BANSO_DB_MAX_CONNECTIONS".to_owned(), pool_size),
        // A 100,000-item stream is measured, not cut off (the default is 20 s).
        ("BANSO_REQUEST_TIMEOUT_SECS".to_owned(), "3600".to_owned()),
    ];
    vars.extend(std::env::vars().filter(|(k, _)| {
        k.starts_with("BANSO_FEEDBACK_") || k.starts_with("BANSO_DB_") || k == "BANSO_CONCURRENCY_LIMIT"
    }));
    let options = banso_testkit::Options { vars, ..Default::default() };
    let app = banso_testkit::spawn_with(options, &[&banso_feedback::SERVICE]).await?;
    let result = bench(&args, &app).await;
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

async fn bench(args: &Args, app: &TestApp) -> anyhow::Result<()> {
    let url = banso_kit::db::url_for(&app.config, NAME)?;
    let pool = banso_kit::db::connect(&url, NAME, &app.config.database).await?;
    let pg = pool.get_database_backend() == DbBackend::Postgres;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let channel = Channel::from_shared(format!("http://{}", app.addr))?.tcp_nodelay(true).connect().await?;
    let client: Client = pb::voice_service_client::VoiceServiceClient::with_interceptor(
        channel,
        app.bearer(TENANT, banso_testkit::TestRole::Admin),
    )
    .max_decoding_message_size(256 << 20)
    .max_encoding_message_size(256 << 20);

    // The projection.
    let t = Instant::now();
    let accounts = seed_projection(app, &pool, args.accounts, args.seed).await?;
    println!(
        "seeded the projection with {} accounts × 3 contacts, through the bus, in {:.1} s",
        int(accounts.len()),
        t.elapsed().as_secs_f64()
    );

    // The themes.
    let t = Instant::now();
    let specs = theme_specs(args.themes, &mut rng);
    let theme_ids = create_themes(&client, &specs, args.concurrency, &mut rng).await?;
    println!("created {} themes (CreateTheme) in {:.1} s", int(theme_ids.len()), t.elapsed().as_secs_f64());

    // The items: item i is in theme i mod --themes.
    let items: Vec<pb::FeedbackItem> =
        (0..args.items).map(|i| item(&specs[i % specs.len()], &accounts, args.japanese_share, &mut rng)).collect();
    let chars: usize = items.iter().map(|i| i.text.chars().count()).sum();
    let ja = items.iter().filter(|i| !i.text.is_ascii()).count();

    // 1. The import, timed.
    crate::harness::settle_outbox(&pool, Duration::from_secs(600)).await?;
    let cpu = CpuSample::take(&pool).await;
    let t = Instant::now();
    for chunk in items.chunks(MAX_IMPORT) {
        let requests: Vec<pb::ImportFeedbackItemsRequest> =
            chunk.iter().map(|i| pb::ImportFeedbackItemsRequest { item: Some(i.clone()) }).collect();
        let r = client
            .clone()
            .import_feedback_items(futures::stream::iter(requests))
            .await
            .context("ImportFeedbackItems")?
            .into_inner();
        anyhow::ensure!(
            r.created == chunk.len() as i64 && r.failed == 0,
            "the import created {} and refused {} of {} items; the first refusal: {:?}",
            r.created,
            r.failed,
            chunk.len(),
            r.failures.first()
        );
    }
    let import = t.elapsed();
    let import_cpu = cpu.since(&pool).await;
    let t = Instant::now();
    crate::harness::settle_outbox(&pool, Duration::from_secs(600)).await?;
    let relay_tail = t.elapsed();
    println!(
        "imported {} items ({} in Japanese, {:.0} characters on average) in {:.2} s; the relay published the last \
         FeedbackImported {:.2} s later",
        int(items.len()),
        int(ja),
        chars as f64 / items.len() as f64,
        import.as_secs_f64(),
        relay_tail.as_secs_f64()
    );

    // What the import stored, in the order sent (ids are UUIDv7, made in order).
    let stored = stored_items(&pool).await?;
    let mut failed = Vec::new();
    check_stored(&stored, &items, &mut failed);

    // 2. The baseline: the same rows, the import's batches, plain INSERTs.
    crate::harness::copy_table(&pool, "items", BASELINE_TABLE).await?;
    crate::harness::settle_outbox(&pool, Duration::from_secs(600)).await?;
    let cpu = CpuSample::take(&pool).await;
    let t = Instant::now();
    baseline_insert(&pool, &stored).await?;
    let baseline = t.elapsed();
    let baseline_cpu = cpu.since(&pool).await;
    println!("baseline: inserted the same {} rows in {:.2} s", int(stored.len()), baseline.as_secs_f64());

    let import_rate = args.items as f64 / import.as_secs_f64();
    let baseline_rate = args.items as f64 / baseline.as_secs_f64();
    let ratio = import_rate / baseline_rate;
    let import_lines = format!(
        "| bulk import                                                     |    rows | seconds |  rows/s |\n\
         |-----------------------------------------------------------------|--------:|--------:|--------:|\n\
         | ImportFeedbackItems (client stream)                             | {:>7} | {:>7.2} | {:>7} |\n\
         | baseline: plain INSERT, {BATCH} rows a statement and a transaction | {:>7} | {:>7.2} | {:>7} |\n\
         | import / plain INSERT                                           |         |         | {:>6.1}% |\n\
         CPU seconds (user + system): import {import_cpu}; plain INSERT {baseline_cpu}",
        int(args.items),
        import.as_secs_f64(),
        int(import_rate.round() as usize),
        int(args.items),
        baseline.as_secs_f64(),
        int(baseline_rate.round() as usize),
        ratio * 100.0
    );
    let import_goal = format!(
        "goal {}: the import >= {:.0}% of the plain INSERT's rows/s (got {:.1}%: {} items/s against {} rows/s)",
        if ratio >= GOAL_RATIO { "MET   " } else { "MISSED" },
        GOAL_RATIO * 100.0,
        ratio * 100.0,
        int(import_rate.round() as usize),
        int(baseline_rate.round() as usize)
    );
    if args.import_only {
        crate::harness::settle_outbox(&pool, Duration::from_secs(600)).await?;
        let tenant = format!("tenant_id = '{TENANT}'");
        for (what, sql) in [
            ("baseline rows", format!("SELECT count(*) FROM {BASELINE_TABLE} WHERE {tenant}")),
            ("baseline rows equal to their item", SAME_ROWS.to_owned()),
        ] {
            let got = crate::harness::count(&pool, &sql).await?;
            if got != args.items as i64 {
                failed.push(format!("{what}: {got}, expected {}", args.items));
            }
        }
        check_imported_events(&pool, &stored, &mut failed).await?;
        println!("\nmachine:  {}; load average {}", machine(), loadavg());
        println!("database: {}\n", version(&pool).await?);
        println!("{import_lines}");
        for f in &failed {
            println!("CHECK FAILED: {f}");
        }
        println!("{import_goal}");
        anyhow::ensure!(failed.is_empty(), "the service answered wrongly: {}", failed.join("; "));
        return Ok(());
    }

    // Each item into its theme (untimed set-up of the two reads).
    crate::harness::settle_outbox(&pool, Duration::from_secs(600)).await?;
    let t = Instant::now();
    let pairs: Vec<(String, String)> = stored
        .iter()
        .enumerate()
        .map(|(i, row)| (row.id.to_string(), theme_ids[i % theme_ids.len()].clone()))
        .collect();
    let how = if args.assign_in_sql {
        // Written behind the service's back, with no record of the change:
        // an index the service keeps is built again at the next suggestion.
        assign_in_sql(&pool, &pairs).await?;
        "links written in SQL, --assign-in-sql".to_owned()
    } else {
        assign(&client, &pairs, args.concurrency).await?;
        format!("AssignTheme, {} callers", args.concurrency)
    };
    println!("assigned {} items to their themes ({how}) in {:.1} s", int(pairs.len()), t.elapsed().as_secs_f64());
    crate::harness::settle_outbox(&pool, Duration::from_secs(600)).await?;
    if pg {
        // As autovacuum would have by now: the tables the reads use have statistics.
        pool.execute_unprepared("ANALYZE").await?;
    }

    // 3. Suggestions: a new item, then SuggestThemes for it twice.
    let probes = probe(&client, args, &specs, &theme_ids, &accounts, &mut rng).await?;

    // 4. RankThemes over every theme.
    let mut rank = Vec::with_capacity(args.rank_runs);
    for _ in 0..args.rank_runs {
        let t = Instant::now();
        let r = client.clone().rank_themes(pb::RankThemesRequest::default()).await.context("RankThemes")?.into_inner();
        rank.push(t.elapsed().as_secs_f64());
        if r.themes.len() != theme_ids.len() {
            failed.push(format!("RankThemes listed {} themes, expected {}", r.themes.len(), theme_ids.len()));
        }
        let without = r.themes.iter().filter(|t| t.accounts == 0).count();
        if without > 0 {
            failed.push(format!("RankThemes gave {without} themes no mentioning account"));
        }
    }
    rank.sort_by(f64::total_cmp);

    // Correctness of the stored state.
    crate::harness::settle_outbox(&pool, Duration::from_secs(600)).await?;
    let n = args.items;
    let created = n + probes.done;
    let tenant = format!("tenant_id = '{TENANT}'");
    let checks = [
        (
            "items rows",
            crate::harness::count(&pool, &format!("SELECT count(*) FROM items WHERE {tenant}")).await?,
            created,
        ),
        (
            "links (item_themes rows)",
            crate::harness::count(&pool, &format!("SELECT count(*) FROM item_themes WHERE {tenant}")).await?,
            n,
        ),
        (
            "items in exactly one theme",
            count(
                &pool,
                &format!(
                    "SELECT count(*) FROM (SELECT item_id FROM item_themes WHERE {tenant} GROUP BY item_id \
                     HAVING count(*) = 1) x"
                ),
            )
            .await?,
            n,
        ),
        (
            "FeedbackReceived events (the probes' items), published",
            count(
                &pool,
                "SELECT count(*) FROM outbox WHERE subject = 'banso.feedback.feedback_received' \
                 AND published_time IS NOT NULL",
            )
            .await?,
            probes.done,
        ),
        (
            "baseline rows",
            crate::harness::count(&pool, &format!("SELECT count(*) FROM {BASELINE_TABLE} WHERE {tenant}")).await?,
            n,
        ),
        ("baseline rows equal to their item", crate::harness::count(&pool, SAME_ROWS).await?, n),
    ];
    for (what, got, want) in checks {
        if got != want as i64 {
            failed.push(format!("{what}: {got}, expected {want}"));
        }
    }
    check_imported_events(&pool, &stored, &mut failed).await?;
    let links_right = count_links(&pool, &stored, &theme_ids).await?;
    if links_right != n {
        failed.push(format!("items in the theme they were assigned: {links_right}, expected {n}"));
    }

    // The report.
    let version = version(&pool).await?;
    println!();
    println!("machine:  {}; load average {}", machine(), loadavg());
    println!("database: {version}");
    println!(
        "          pool {} connections (BANSO_DB_MAX_CONNECTIONS); bus: {}",
        app.config.database.max_connections,
        app.runtime.bus.kind()
    );
    println!(
        "data:     {} items in {} themes from {} accounts; {:.0}% of the texts in Japanese",
        int(n),
        int(theme_ids.len()),
        int(accounts.len()),
        ja as f64 / n as f64 * 100.0
    );
    println!();
    println!("{import_lines}");
    println!();
    println!("| SuggestThemes, {} probes{:<22} |  p50 ms |  p95 ms |  p99 ms |  max ms |", probes.done, "");
    println!("|-------------------------------------------------|--------:|--------:|--------:|--------:|");
    for (name, xs) in [
        ("CreateFeedbackItem (the probe's new item)", &probes.create),
        ("SuggestThemes, first after the new item", &probes.first),
        ("SuggestThemes, repeated (index unchanged)", &probes.repeat),
        ("SuggestThemes, all calls", &probes.all()),
    ] {
        println!(
            "| {name:<47} | {:>7.1} | {:>7.1} | {:>7.1} | {:>7.1} |",
            ms(xs, 0.5),
            ms(xs, 0.95),
            ms(xs, 0.99),
            ms(xs, 1.0)
        );
    }
    if probes.done < args.probes {
        println!(
            "note: {} of {} probes done: --probe-seconds {} ran out",
            probes.done, args.probes, args.probe_seconds
        );
    }
    println!(
        "top suggestion = the probe's own theme: {} of {} ({:.1}%); in the top 5: {}",
        probes.top1,
        probes.done,
        probes.top1 as f64 / probes.done.max(1) as f64 * 100.0,
        probes.top5
    );
    println!();
    println!(
        "RankThemes over {} themes, {} runs: min {:.0} ms, median {:.0} ms, max {:.0} ms",
        int(theme_ids.len()),
        rank.len(),
        rank[0] * 1000.0,
        quantile(&rank, 0.5) * 1000.0,
        rank[rank.len() - 1] * 1000.0
    );
    println!();
    if failed.is_empty() {
        println!(
            "checks passed: every item stored as sent, in its one theme, announced (FeedbackImported, the probes FeedbackReceived) and published; \
             every baseline row equals its item"
        );
    } else {
        for f in &failed {
            println!("CHECK FAILED: {f}");
        }
    }
    let first_p99 = ms(&probes.first, 0.99);
    let rank_median = quantile(&rank, 0.5) * 1000.0;
    let met = |ok: bool| if ok { "MET   " } else { "MISSED" };
    println!("{import_goal}");
    println!(
        "goal {}: SuggestThemes for a new item p99 <= {GOAL_SUGGEST_P99_MS:.0} ms (got {first_p99:.1} ms; repeated \
         calls {:.1} ms)",
        met(first_p99 <= GOAL_SUGGEST_P99_MS),
        ms(&probes.repeat, 0.99)
    );
    println!(
        "goal {}: RankThemes <= {GOAL_RANK_MS:.0} ms (median {rank_median:.0} ms, max {:.0} ms)",
        met(rank_median <= GOAL_RANK_MS),
        rank[rank.len() - 1] * 1000.0
    );
    anyhow::ensure!(failed.is_empty(), "the service answered wrongly: {}", failed.join("; "));
    Ok(())
}

fn ms(sorted: &[f64], q: f64) -> f64 {
    quantile(sorted, q) * 1000.0
}

/// Themes with distinct feature names (and an area × problem each).
fn theme_specs(n: usize, rng: &mut StdRng) -> Vec<ThemeSpec> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let parts: Vec<&(&str, &str)> = (0..3).map(|_| &SYLLABLES[rng.random_range(0..SYLLABLES.len())]).collect();
        let kana: String = parts.iter().map(|p| p.0).collect();
        if !seen.insert(kana.clone()) {
            continue;
        }
        let mut romaji: String = parts.iter().map(|p| p.1).collect();
        romaji[..1].make_ascii_uppercase();
        let k = out.len();
        out.push(ThemeSpec {
            area: k % AREAS.len(),
            problem: (k / AREAS.len() + k) % PROBLEMS.len(),
            name: (kana, romaji),
        });
    }
    out
}

/// A feedback text of `spec`'s theme: its area and problem, often its
/// feature's name, and shared filler, in Japanese or English.
fn text(spec: &ThemeSpec, japanese: bool, rng: &mut StdRng) -> String {
    let (area, problem) = (AREAS[spec.area], PROBLEMS[spec.problem]);
    let named = rng.random_bool(0.5);
    let mut s = String::new();
    if japanese {
        if named {
            let _ = write!(s, "{}の", spec.name.0);
        }
        let _ = write!(s, "{}{}。", area.0, problem.0);
        for _ in 0..rng.random_range(1..=2) {
            s.push_str(FILLER_JA.choose(rng).copied().unwrap_or_default());
        }
    } else {
        let _ = write!(s, "The {} {}", area.1, problem.1);
        if named {
            let _ = write!(s, " in {}", spec.name.1);
        }
        s.push('.');
        for _ in 0..rng.random_range(1..=2) {
            s.push(' ');
            s.push_str(FILLER_EN.choose(rng).copied().unwrap_or_default());
        }
    }
    s
}

fn item(spec: &ThemeSpec, accounts: &[Acct], japanese_share: f64, rng: &mut StdRng) -> pb::FeedbackItem {
    let account = &accounts[rng.random_range(0..accounts.len())];
    let contact = if rng.random_bool(0.7) { account.contacts.choose(rng).map(Uuid::to_string) } else { None };
    let channels = [
        pb::Channel::CsmNote,
        pb::Channel::SupportTicket,
        pb::Channel::Call,
        pb::Channel::Community,
        pb::Channel::Email,
    ];
    let departments = [
        pb::Department::Product,
        pb::Department::Support,
        pb::Department::Sales,
        pb::Department::Cs,
        pb::Department::Billing,
    ];
    pb::FeedbackItem {
        text: text(spec, rng.random_bool(japanese_share), rng),
        channel: channels[rng.random_range(0..channels.len())] as i32,
        account_id: account.id.to_string(),
        contact_id: contact.unwrap_or_default(),
        department: departments[rng.random_range(0..departments.len())] as i32,
        category: CATEGORIES.choose(rng).copied().unwrap_or_default().into(),
        cx_dimension: rng.random_range(0..=5),
        journey_phase: rng.random_range(0..=3),
        severity: rng.random_range(1..=5),
        ..Default::default()
    }
}

async fn create_themes(
    client: &Client,
    specs: &[ThemeSpec],
    concurrency: usize,
    rng: &mut StdRng,
) -> anyhow::Result<Vec<String>> {
    let themes: Vec<pb::Theme> = specs
        .iter()
        .map(|s| {
            let (area, problem) = (AREAS[s.area], PROBLEMS[s.problem]);
            pb::Theme {
                display_name: format!("{}: the {} {}", s.name.1, area.1, problem.1),
                description: format!("{}の{}{}", s.name.0, area.0, problem.0),
                departments: vec![pb::Department::Product as i32, pb::Department::Support as i32],
                assessment: Some(pb::ThemeAssessment {
                    main_component: rng.random_bool(0.3),
                    mainstream: rng.random_bool(0.3),
                    root_cause: rng.random_bool(0.2),
                    bottleneck: rng.random_bool(0.2),
                    we_can_support: rng.random_bool(0.6),
                    customers_consult_us: rng.random_bool(0.5),
                    expertise: rng.random_range(1..=5),
                    competitor_meets_need: rng.random_bool(0.2),
                    certainty: rng.random_range(1..=5),
                    speed: rng.random_range(1..=5),
                    initial_cost: f64::from(rng.random_range(1..=100)),
                    operating_cost_per_account: f64::from(rng.random_range(1..=10)),
                }),
                ..Default::default()
            }
        })
        .collect();
    // In order: the themes' ids follow the specs.
    futures::stream::iter(themes)
        .map(|theme| {
            let mut c = client.clone();
            async move {
                let t = c
                    .create_theme(pb::CreateThemeRequest { theme: Some(theme), request_id: String::new() })
                    .await
                    .context("CreateTheme")?
                    .into_inner();
                Ok::<_, anyhow::Error>(t.id)
            }
        })
        .buffered(concurrency)
        .try_collect()
        .await
}

async fn assign(client: &Client, pairs: &[(String, String)], concurrency: usize) -> anyhow::Result<()> {
    futures::stream::iter(pairs.iter().cloned())
        .map(|(item_id, theme_id)| {
            let mut c = client.clone();
            async move {
                let item = c
                    .assign_theme(pb::AssignThemeRequest { item_id, theme_id: theme_id.clone() })
                    .await
                    .context("AssignTheme")?
                    .into_inner();
                anyhow::ensure!(
                    item.theme_ids == [theme_id.clone()],
                    "item {} came back in themes {:?}, expected [{theme_id}]",
                    item.id,
                    item.theme_ids
                );
                Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// The links AssignTheme would write (item, theme), 1,000 a statement, and
/// the tenant's generation moved once, as AssignTheme moves it.
async fn assign_in_sql(pool: &DatabaseConnection, pairs: &[(String, String)]) -> anyhow::Result<()> {
    let backend = pool.get_database_backend();
    let now = chrono::Utc::now();
    let txn = pool.begin().await?;
    for chunk in pairs.chunks(1000) {
        let mut sql = String::from("INSERT INTO item_themes (tenant_id, theme_id, item_id, how, create_time) VALUES ");
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 5);
        for (k, (item, theme)) in chunk.iter().enumerate() {
            let n = k * 5;
            if backend == DbBackend::Postgres {
                let _ = write!(
                    sql,
                    "{}(${}, ${}, ${}, ${}, ${})",
                    if k == 0 { "" } else { ", " },
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5
                );
            } else {
                let _ = write!(sql, "{}(?, ?, ?, ?, ?)", if k == 0 { "" } else { ", " });
            }
            values.extend([
                TENANT.into(),
                Uuid::parse_str(theme)?.into(),
                Uuid::parse_str(item)?.into(),
                "hand".into(),
                now.into(),
            ]);
        }
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    }
    let bump = format!("UPDATE tenants SET voice_generation = voice_generation + 1 WHERE tenant_id = '{TENANT}'");
    txn.execute_unprepared(&bump).await?;
    txn.commit().await?;
    Ok(())
}

/// The suggestion probes' latencies (seconds, sorted).
struct Probes {
    done: usize,
    create: Vec<f64>,
    first: Vec<f64>,
    repeat: Vec<f64>,
    /// Probes whose own theme came first; in the top five.
    top1: usize,
    top5: usize,
}

impl Probes {
    fn all(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.first.iter().chain(&self.repeat).copied().collect();
        v.sort_by(f64::total_cmp);
        v
    }
}

async fn probe(
    client: &Client,
    args: &Args,
    specs: &[ThemeSpec],
    theme_ids: &[String],
    accounts: &[Acct],
    rng: &mut StdRng,
) -> anyhow::Result<Probes> {
    let mut c = client.clone();
    let mut p = Probes { done: 0, create: vec![], first: vec![], repeat: vec![], top1: 0, top5: 0 };
    let deadline = Instant::now() + Duration::from_secs(args.probe_seconds);
    let t0 = Instant::now();
    for k in 0..args.probes {
        if Instant::now() >= deadline {
            break;
        }
        let theme = rng.random_range(0..specs.len());
        let new = item(&specs[theme], accounts, args.japanese_share, rng);
        let t = Instant::now();
        let created = c
            .create_feedback_item(pb::CreateFeedbackItemRequest { item: Some(new), request_id: String::new() })
            .await
            .context("CreateFeedbackItem")?
            .into_inner();
        p.create.push(t.elapsed().as_secs_f64());
        let mut tops = Vec::new();
        for repeat in [false, true] {
            let t = Instant::now();
            let r = c
                .suggest_themes(pb::SuggestThemesRequest {
                    item_id: created.id.clone(),
                    text: String::new(),
                    max_suggestions: 5,
                })
                .await
                .context("SuggestThemes")?
                .into_inner();
            let elapsed = t.elapsed().as_secs_f64();
            if repeat {
                p.repeat.push(elapsed)
            } else {
                p.first.push(elapsed)
            }
            tops.push(r.suggestions.iter().map(|s| s.theme_id.clone()).collect::<Vec<_>>());
        }
        anyhow::ensure!(tops[0] == tops[1], "probe {k}: the repeated SuggestThemes answered otherwise");
        let own = &theme_ids[theme];
        p.top1 += usize::from(tops[0].first() == Some(own));
        p.top5 += usize::from(tops[0].contains(own));
        p.done += 1;
        if k == 0 || (k + 1) % 100 == 0 {
            println!(
                "probe {}: first SuggestThemes {:.1} ms ({:.0} s into the probes)",
                k + 1,
                p.first[k] * 1000.0,
                t0.elapsed().as_secs_f64()
            );
        }
    }
    for v in [&mut p.create, &mut p.first, &mut p.repeat] {
        v.sort_by(f64::total_cmp);
    }
    anyhow::ensure!(p.done > 0, "no probe ran in --probe-seconds {}", args.probe_seconds);
    Ok(p)
}

/// Publishes `n` accounts (AccountCreated), three contacts each
/// (ContactChanged) and a health band each (HealthScoreChanged) as their
/// services' relays would, and waits until the projection holds them all.
async fn seed_projection(app: &TestApp, pool: &DatabaseConnection, n: usize, seed: u64) -> anyhow::Result<Vec<Acct>> {
    const CONTACTS: usize = 3;
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
    let mut accounts = Vec::with_capacity(n);
    for (i, mut a) in crate::data::accounts(n, seed).into_iter().enumerate() {
        let id = Uuid::now_v7();
        a.id = id.to_string();
        push("accounts", Payload::AccountCreated(ev::AccountCreated { account: Some(a.clone()) }));
        let mut contacts = Vec::with_capacity(CONTACTS);
        for c in 0..CONTACTS {
            let cid = Uuid::now_v7();
            contacts.push(cid);
            let contact = apb::Contact {
                id: cid.to_string(),
                account_id: a.id.clone(),
                name: format!("Contact {} of {}", c + 1, a.external_id),
                email: format!("contact{}.{}@example.com", c + 1, a.external_id),
                level: [apb::ContactLevel::Executive, apb::ContactLevel::Manager, apb::ContactLevel::Practitioner][c]
                    as i32,
                department: ["Finance", "Operations", "IT"][c].into(),
                // One account in four has a champion (the ranking's relationship).
                champion: c == 0 && i % 4 == 0,
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
        accounts.push(Acct { id, contacts });
    }
    for chunk in out.chunks(500) {
        bus.publish(chunk).await?;
    }
    let want = [("accounts", n), ("contacts", n * CONTACTS), ("account_signals", n)];
    crate::harness::await_projection(pool, TENANT, &want).await?;
    Ok(accounts)
}

/// An `items` row as stored.
struct Row {
    id: Uuid,
    account_id: Uuid,
    contact_id: Option<Uuid>,
    department: String,
    category: String,
    cx_dimension: Option<String>,
    journey_phase: Option<String>,
    severity: i32,
    channel: String,
    body: String,
    snapshot: String,
    answer_id: Option<Uuid>,
    created_by: String,
    create_time: chrono::DateTime<chrono::Utc>,
}

/// Checks that the import's items were announced, each once and in order,
/// in published FeedbackImported events (one a batch).
async fn check_imported_events(
    pool: &DatabaseConnection,
    stored: &[Row],
    failed: &mut Vec<String>,
) -> anyhow::Result<()> {
    let sql = "SELECT payload FROM outbox WHERE subject = 'banso.feedback.feedback_imported' \
               AND published_time IS NOT NULL ORDER BY seq";
    let rows = pool.query_all_raw(Statement::from_string(pool.get_database_backend(), sql)).await?;
    let mut ids = Vec::with_capacity(stored.len());
    for r in &rows {
        let payload: Vec<u8> = r.try_get_by_index(0)?;
        match banso_events::Envelope::decode(payload.as_slice())?.payload {
            Some(Payload::FeedbackImported(e)) => ids.extend(e.items.into_iter().map(|i| i.id)),
            other => failed.push(format!("a feedback_imported outbox row holds {other:?}")),
        }
    }
    let want: Vec<String> = stored.iter().map(|r| r.id.to_string()).collect();
    if ids != want {
        failed.push(format!(
            "items announced by FeedbackImported ({} events, published): {}, expected the {} imported in order",
            rows.len(),
            ids.len(),
            want.len()
        ));
    }
    Ok(())
}

async fn stored_items(pool: &DatabaseConnection) -> anyhow::Result<Vec<Row>> {
    let sql = format!("SELECT {} FROM items WHERE tenant_id = '{TENANT}' ORDER BY id", COLUMNS.join(", "));
    let rows = pool.query_all_raw(Statement::from_string(pool.get_database_backend(), sql)).await?;
    rows.into_iter()
        .map(|r| {
            Ok(Row {
                id: r.try_get("", "id")?,
                account_id: r.try_get("", "account_id")?,
                contact_id: r.try_get("", "contact_id")?,
                department: r.try_get("", "department")?,
                category: r.try_get("", "category")?,
                cx_dimension: r.try_get("", "cx_dimension")?,
                journey_phase: r.try_get("", "journey_phase")?,
                severity: r.try_get("", "severity")?,
                channel: r.try_get("", "channel")?,
                body: r.try_get("", "body")?,
                snapshot: r.try_get("", "snapshot")?,
                answer_id: r.try_get("", "answer_id")?,
                created_by: r.try_get("", "created_by")?,
                create_time: r.try_get("", "create_time")?,
            })
        })
        .collect()
}

/// Each stored row against the item sent in its place.
fn check_stored(stored: &[Row], sent: &[pb::FeedbackItem], failed: &mut Vec<String>) {
    if stored.len() != sent.len() {
        failed.push(format!("the import stored {} items, expected {}", stored.len(), sent.len()));
        return;
    }
    let wrong: Vec<usize> = stored
        .iter()
        .zip(sent)
        .enumerate()
        .filter(|(_, (r, s))| {
            r.body != s.text
                || r.account_id.to_string() != s.account_id
                || r.contact_id.map(|c| c.to_string()).unwrap_or_default() != s.contact_id
                || r.severity != s.severity
                || r.category != s.category
                || r.snapshot.is_empty()
        })
        .map(|(i, _)| i)
        .collect();
    if let Some(first) = wrong.first() {
        failed.push(format!(
            "{} stored items differ from the item sent in their place; the first at {first}",
            wrong.len()
        ));
    }
}

/// Items in the theme the bench assigned them to.
async fn count_links(pool: &DatabaseConnection, stored: &[Row], themes: &[String]) -> anyhow::Result<usize> {
    let sql = format!("SELECT item_id, theme_id FROM item_themes WHERE tenant_id = '{TENANT}'");
    let rows = pool.query_all_raw(Statement::from_string(pool.get_database_backend(), sql)).await?;
    let mut links = std::collections::HashMap::new();
    for r in rows {
        links.insert(r.try_get::<Uuid>("", "item_id")?, r.try_get::<Uuid>("", "theme_id")?.to_string());
    }
    Ok(stored.iter().enumerate().filter(|(i, r)| links.get(&r.id) == Some(&themes[i % themes.len()])).count())
}

/// Baseline rows that agree with their item on every column.
const SAME_ROWS: &str = "SELECT count(*) FROM items a JOIN items_baseline b ON b.id = a.id \
     WHERE a.tenant_id = b.tenant_id AND a.account_id = b.account_id \
     AND coalesce(a.contact_id, a.id) = coalesce(b.contact_id, b.id) AND a.department = b.department \
     AND a.category = b.category AND coalesce(a.cx_dimension, '') = coalesce(b.cx_dimension, '') \
     AND coalesce(a.journey_phase, '') = coalesce(b.journey_phase, '') AND a.severity = b.severity \
     AND a.channel = b.channel AND a.body = b.body AND a.snapshot = b.snapshot \
     AND a.answer_id IS NULL AND b.answer_id IS NULL AND a.created_by = b.created_by \
     AND a.create_time = b.create_time";

/// The rows again into `items_baseline`: one multi-row INSERT of `BATCH`
/// rows a transaction (BEGIN IMMEDIATE on SQLite, as the service's), one
/// caller — the import's statements without the rest of its work.
async fn baseline_insert(pool: &DatabaseConnection, rows: &[Row]) -> anyhow::Result<()> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions};
    let backend = pool.get_database_backend();
    let options =
        TransactionOptions { sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate), ..Default::default() };
    for batch in rows.chunks(BATCH) {
        let sql = insert_sql(backend, batch.len());
        let mut values: Vec<Value> = Vec::with_capacity(batch.len() * COLUMNS.len());
        for r in batch {
            values.extend([
                r.id.into(),
                TENANT.into(),
                r.account_id.into(),
                r.contact_id.into(),
                r.department.clone().into(),
                r.category.clone().into(),
                r.cx_dimension.clone().into(),
                r.journey_phase.clone().into(),
                r.severity.into(),
                r.channel.clone().into(),
                r.body.clone().into(),
                r.snapshot.clone().into(),
                r.answer_id.into(),
                r.created_by.clone().into(),
                r.create_time.into(),
            ]);
        }
        let txn = pool.begin_with_options(options).await?;
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
        txn.commit().await?;
    }
    Ok(())
}

fn insert_sql(backend: DbBackend, rows: usize) -> String {
    let mut sql = format!("INSERT INTO \"{BASELINE_TABLE}\" (");
    for (i, c) in COLUMNS.iter().enumerate() {
        let _ = write!(sql, "{}\"{c}\"", if i == 0 { "" } else { ", " });
    }
    sql.push_str(") VALUES ");
    let mut n = 0;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..COLUMNS.len() {
            n += 1;
            let sep = if c == 0 { "" } else { ", " };
            if backend == DbBackend::Postgres {
                let _ = write!(sql, "{sep}${n}");
            } else {
                let _ = write!(sql, "{sep}?");
            }
        }
        sql.push(')');
    }
    sql
}

async fn version(pool: &DatabaseConnection) -> anyhow::Result<String> {
    Ok(if pool.get_database_backend() == DbBackend::Postgres {
        crate::harness::scalar(pool, "SELECT version()").await?
    } else {
        format!("SQLite {} (WAL, synchronous NORMAL)", crate::harness::scalar(pool, "SELECT sqlite_version()").await?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_deterministic_and_carry_their_themes_words() {
        let make = || {
            let mut rng = StdRng::seed_from_u64(7);
            let specs = theme_specs(50, &mut rng);
            let texts: Vec<String> = (0..200).map(|i| text(&specs[i % 50], i % 3 != 0, &mut rng)).collect();
            (specs, texts)
        };
        let (specs, texts) = make();
        assert_eq!(texts, make().1);
        let names: std::collections::HashSet<&str> = specs.iter().map(|s| s.name.0.as_str()).collect();
        assert_eq!(names.len(), 50);
        for (i, t) in texts.iter().enumerate() {
            let s = &specs[i % 50];
            let (area, problem) = (AREAS[s.area], PROBLEMS[s.problem]);
            let ja = i % 3 != 0;
            assert!(t.contains(if ja { area.0 } else { area.1 }) && t.contains(if ja { problem.0 } else { problem.1 }));
            assert_eq!(t.is_ascii(), !ja, "{t}");
        }
    }

    #[test]
    fn the_baseline_statement_has_a_placeholder_a_value() {
        let n = COLUMNS.len();
        let pg = insert_sql(DbBackend::Postgres, 2);
        // The second row's placeholders follow the first's: ($n+1, …, $2n).
        assert!(pg.contains(&format!("(${}, ${}", n + 1, n + 2)), "{pg}");
        assert!(pg.ends_with(&format!(", ${})", 2 * n)), "{pg}");
        assert_eq!(pg.matches('$').count(), 2 * n);
        assert_eq!(insert_sql(DbBackend::Sqlite, 3).matches('?').count(), 3 * COLUMNS.len());
    }

    #[test]
    fn sqlite_ddl_is_copied_to_the_baseline_table() {
        let index = r#"CREATE INDEX "items_account" ON "items" ("tenant_id", "account_id")"#;
        assert_eq!(
            crate::harness::sqlite_copy("items", BASELINE_TABLE, "index", index).unwrap(),
            r#"CREATE INDEX "items_baseline_account" ON "items_baseline" ("tenant_id", "account_id")"#
        );
        assert!(crate::harness::sqlite_copy("items", BASELINE_TABLE, "trigger", index).is_err());
    }

    #[test]
    fn defaults_parse() {
        let a: Args = crate::defaults(&[]).unwrap();
        assert_eq!((a.items, a.themes, a.probes), (100_000, 1_000, 1_000));
    }
}
