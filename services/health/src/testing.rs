//! What the crate's own tests share: the use cases on a fresh database,
//! with no background task running (each test drives what it needs).

use banso_events::Db;

use crate::{
    HealthSettings,
    app::App,
    backtests::Backtests,
    recompute::Recompute,
    rollups::Rollups,
    scorer::{Scorer, Scoring},
};

/// The use cases over `db` (migrated), idle: queued rescoring, recompute
/// jobs and rollups wait until a test runs them.
pub(crate) async fn app(db: &banso_testkit::TestDb) -> App {
    let conn = db.connect::<crate::migration::Migrator>(crate::NAME).await.unwrap();
    let db = Db::new(conn, Default::default(), crate::NAME);
    let settings = HealthSettings {
        late_window: std::time::Duration::from_secs(168 * 3600),
        score_step: 5.0,
        raw_retention: std::time::Duration::from_secs(400 * 86_400),
        min_churns: crate::domain::churn_model::DEFAULT_MIN_CHURNS,
        retrain_every: Some(std::time::Duration::from_secs(168 * 3600)),
        give_way: std::time::Duration::ZERO,
        survey_window: std::time::Duration::from_secs(180 * 86_400),
    };
    App {
        recompute: Recompute::idle(Scoring::new(db.clone(), settings.score_step)),
        backtests: Backtests::idle(db.clone()),
        db,
        ingest: Default::default(),
        ingest_load: crate::ingest_load::IngestLoad::new(std::time::Duration::ZERO),
        settings,
        scorer: Scorer::idle(),
        rollups: Rollups::idle(),
        page_tokens: banso_kit::paging::PageTokens::random(),
    }
}

/// The health service alone, serving on a fresh database, and a connection
/// to that database: accounts come from [`seed_account`], not from Accounts.
pub(crate) async fn service() -> (banso_testkit::TestApp, sea_orm::DatabaseConnection) {
    let app = banso_testkit::spawn(&[&crate::SERVICE]).await.unwrap();
    let conn = banso_kit::db::open::<crate::migration::Migrator>(&app.config, crate::NAME).await.unwrap();
    (app, conn)
}

pub(crate) type Client = banso_proto::health::health_service_client::HealthServiceClient<
    tonic::codegen::InterceptedService<tonic::transport::Channel, banso_testkit::Bearer>,
>;

pub(crate) fn client(app: &banso_testkit::TestApp, tenant: &str, role: banso_testkit::TestRole) -> Client {
    banso_proto::health::health_service_client::HealthServiceClient::with_interceptor(
        app.channel.clone(),
        app.bearer(tenant, role),
    )
}

/// Writes an account (adoption, low touch) into the projection, as the
/// Accounts consumer would.
pub(crate) async fn seed_account(conn: &sea_orm::DatabaseConnection, tenant: &str, name: &str) -> uuid::Uuid {
    use crate::domain::account::{AccountRow, LifecycleStage, TouchModel};
    let row = AccountRow {
        account_id: uuid::Uuid::now_v7(),
        name: name.into(),
        lifecycle_stage: LifecycleStage::Adoption,
        touch_model: TouchModel::Low,
        ..Default::default()
    };
    crate::store::accounts::upsert(conn, tenant, &row).await.unwrap();
    row.account_id
}

/// Writes `accounts` accounts with daily logins over `days` days from
/// `start` (a snapshot a day) and the week before, and the same logins over
/// the last week (what a model scores today), the first `churners` of them
/// logging in less and churning 30 to 36 days after the last snapshot.
pub(crate) async fn seed_churn_history(
    conn: &sea_orm::DatabaseConnection,
    tenant: &str,
    start: chrono::NaiveDate,
    days: i64,
    accounts: usize,
    churners: usize,
) -> Vec<uuid::Uuid> {
    use std::collections::BTreeMap;

    use crate::{
        domain::{
            outcome::{Outcome, OutcomeKind},
            score::Band,
        },
        store,
    };
    let today = chrono::Utc::now().date_naive();
    let mut ids = Vec::new();
    for i in 0..accounts {
        let a = seed_account(conn, tenant, &format!("account {i}")).await;
        ids.push(a);
        let logins = if i < churners { 1 + (i % 3) as i64 } else { 4 + (i % 7) as i64 };
        let mut rollups: BTreeMap<(chrono::NaiveDate, &str), i64> = BTreeMap::new();
        for d in 0..7 {
            rollups.insert((today - chrono::Duration::days(d), "login"), logins);
        }
        let mut snapshots = Vec::new();
        for d in -7..days {
            let day = start + chrono::Duration::days(d);
            rollups.insert((day, "login"), logins);
            rollups.insert((day, "noise"), 1 + (i as i64 * 7 + d + 7) % 5);
            if d >= 0 {
                snapshots.push((a, day, 50.0, Band::Yellow));
            }
        }
        let rows: Vec<_> = rollups.into_iter().map(|((day, name), n)| (a, day, name, n)).collect();
        store::inputs::insert_rollups(conn, tenant, &rows).await.unwrap();
        store::history::insert_daily(conn, tenant, &snapshots).await.unwrap();
        if i < churners {
            let o = Outcome {
                event_id: uuid::Uuid::now_v7(),
                account_id: a,
                kind: OutcomeKind::Churned,
                expansion: None,
                effective_date: start + chrono::Duration::days(days + 30 + (i % 7) as i64),
                currency: "JPY".into(),
                arr_before: 1_000,
                arr_after: 0,
            };
            store::outcomes::record(conn, tenant, &o).await.unwrap();
        }
    }
    ids
}

/// A SurveyAnswered as Feedback publishes it: a new answer of `contact`
/// (of account `account`) to a survey of `kind`, answered at `at`.
pub(crate) fn survey_answered(
    tenant: &str,
    account: uuid::Uuid,
    contact: &str,
    kind: banso_proto::feedback::SurveyKind,
    score: Option<i32>,
    at: chrono::DateTime<chrono::Utc>,
) -> banso_events::Envelope {
    let e = banso_proto::events::SurveyAnswered {
        answer_id: uuid::Uuid::now_v7().to_string(),
        survey_id: uuid::Uuid::now_v7().to_string(),
        kind: kind as i32,
        account_id: account.to_string(),
        contact_id: contact.into(),
        score,
        answer_time: Some(banso_kit::wire::timestamp(at)),
        ..Default::default()
    };
    banso_events::envelope::new(tenant, "feedback", banso_events::Payload::SurveyAnswered(e))
}
