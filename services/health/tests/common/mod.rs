//! What the health suites share: an app running Accounts beside Health on
//! one bus, clients, and an account Health's projection already knows.

#![allow(dead_code)]

use std::time::Duration;

use banso_kit::server::ServiceSet;
use banso_proto::{accounts as apb, health as pb};
use banso_testkit::{Bearer, TestApp, TestRole as Role};
use tonic::{Code, codegen::InterceptedService, transport::Channel};

pub type Health = pb::health_service_client::HealthServiceClient<InterceptedService<Channel, Bearer>>;
pub type Accounts = apb::accounts_service_client::AccountsServiceClient<InterceptedService<Channel, Bearer>>;

pub async fn spawn() -> TestApp {
    banso_testkit::spawn(|cfg, kit, events| async move {
        Ok(ServiceSet::new()
            .with(banso_accounts::build(&cfg, &kit, &events).await?)
            .with(banso_health::build(&cfg, &kit, &events).await?))
    })
    .await
    .expect("test server starts")
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
    let mut h = health(app, tenant, Role::Service);
    for _ in 0..200 {
        let probe = pb::SetMeasureValueRequest {
            account_id: a.id.clone(),
            measure: "probe".into(),
            value: None,
            observe_time: None,
        };
        match h.set_measure_value(probe).await {
            Ok(_) => return a.id,
            Err(s) if s.code() == Code::NotFound => tokio::time::sleep(Duration::from_millis(25)).await,
            Err(s) => panic!("{s:?}"),
        }
    }
    panic!("health never learned of account {}", a.id);
}
