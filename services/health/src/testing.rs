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
    };
    App {
        recompute: Recompute::idle(Scoring::new(db.clone(), settings.score_step)),
        backtests: Backtests::idle(db.clone()),
        db,
        ingest: Default::default(),
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
