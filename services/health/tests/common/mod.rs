//! What the health suites share: an app running Accounts beside Health on
//! one bus, clients, and an account Health's projection already knows.

#![allow(dead_code)]

use std::time::Duration;

use banso_proto::{accounts as apb, health as pb};
use banso_testkit::{Bearer, TestApp, TestRole as Role};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tonic::{Code, codegen::InterceptedService, transport::Channel};

pub type Health = pb::health_service_client::HealthServiceClient<InterceptedService<Channel, Bearer>>;
pub type Accounts = apb::accounts_service_client::AccountsServiceClient<InterceptedService<Channel, Bearer>>;

pub async fn spawn() -> TestApp {
    banso_testkit::spawn(&[&banso_accounts::SERVICE, &banso_health::SERVICE]).await.expect("test server starts")
}

pub fn health(app: &TestApp, tenant: &str, role: Role) -> Health {
    pb::health_service_client::HealthServiceClient::with_interceptor(app.channel.clone(), app.bearer(tenant, role))
}

pub fn accounts(app: &TestApp, tenant: &str) -> Accounts {
    apb::accounts_service_client::AccountsServiceClient::with_interceptor(
        app.channel.clone(),
        app.bearer(tenant, Role::Admin),
    )
}

/// Creates an account (adoption, tech touch) and waits until Health's
/// projection knows it.
pub async fn account(app: &TestApp, tenant: &str, name: &str, external_id: &str) -> String {
    let a = accounts(app, tenant)
        .create_account(apb::CreateAccountRequest {
            account: Some(apb::Account {
                name: name.into(),
                external_id: external_id.into(),
                lifecycle_stage: apb::LifecycleStage::Adoption as i32,
                touch_model: apb::TouchModel::Tech as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    wait_known(app, tenant, &a.id).await;
    a.id
}

/// Waits until Health's projection knows the account.
pub async fn wait_known(app: &TestApp, tenant: &str, id: &str) {
    let mut h = health(app, tenant, Role::Service);
    for _ in 0..1200 {
        let probe = pb::SetMeasureValueRequest {
            account_id: id.into(),
            measure: "probe".into(),
            value: None,
            observe_time: None,
        };
        match h.set_measure_value(probe).await {
            Ok(_) => return,
            Err(s) if s.code() == Code::NotFound => tokio::time::sleep(Duration::from_millis(25)).await,
            Err(s) => panic!("{s:?}"),
        }
    }
    panic!("health never learned of account {id}");
}

/// Waits until the account's health satisfies `ok` (NOT_FOUND counts as not yet).
pub async fn health_until(h: &mut Health, account: &str, ok: impl Fn(&pb::AccountHealth) -> bool) -> pb::AccountHealth {
    let mut last = None;
    for _ in 0..1200 {
        if let Ok(r) = h.get_account_health(pb::GetAccountHealthRequest { account_id: account.into() }).await {
            let r = r.into_inner();
            if ok(&r) {
                return r;
            }
            last = Some(r);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("account {account} never reached the expected health; last: {last:#?}");
}

/// A connection to the app's Health database, for reading what it stored.
pub async fn health_db(app: &TestApp) -> DatabaseConnection {
    let url = banso_kit::db::url_for(&app.config, "health").unwrap();
    banso_kit::db::connect(&url, "health", &app.config.database).await.unwrap()
}

pub async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql.to_owned())).await.unwrap()
}

/// Waits until the rollup task has folded every ingested batch.
pub async fn rolled_up(db: &DatabaseConnection) {
    for _ in 0..1200 {
        if rows(db, "SELECT ingest_time FROM ingest_batches WHERE rolled_up_time IS NULL").await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("ingested batches were never rolled up");
}
