//! What the crate's own tests share: the use cases on a fresh database, with
//! no background task running (each test drives what it needs).

use banso_events::Db;
use banso_kit::auth::{Caller, Role};
use uuid::Uuid;

use crate::{
    app::App,
    domain::{LifecycleStage, TouchModel, projection::Account},
};

/// The use cases over `db` (migrated), idle. Two calls on one database are
/// two replicas.
pub(crate) async fn app(db: &banso_testkit::TestDb) -> App {
    let conn = db.connect::<crate::migration::Migrator>(crate::NAME).await.unwrap();
    App { db: Db::new(conn, Default::default(), crate::NAME), engine: Default::default() }
}

pub(crate) fn admin(tenant: &str) -> Caller {
    Caller { tenant_id: tenant.into(), subject: "test-admin".into(), roles: vec![Role::Admin] }
}

/// Writes an account into the projection, as the Accounts consumer would.
pub(crate) async fn seed_account(app: &App, tenant: &str, name: &str, renewal: Option<chrono::NaiveDate>) -> Uuid {
    let a = Account {
        id: Uuid::now_v7(),
        name: name.into(),
        external_id: None,
        lifecycle_stage: LifecycleStage::Adoption,
        touch_model: TouchModel::High,
        touch_mix: vec![],
        arr_currency: None,
        arr_minor: None,
        renewal_date: renewal,
        contract_start_date: None,
        industry: String::new(),
        employee_count: None,
        revenue_band: String::new(),
        region: String::new(),
        plan_tier: String::new(),
        owner_id: "ann".into(),
        tags: vec![],
        attributes: Default::default(),
    };
    crate::store::projection::upsert_account(app.db.conn(), tenant, &a, banso_kit::wire::now()).await.unwrap();
    a.id
}
