//! What the Health suites share: every service of `banso up` on a fresh
//! database and bus (Accounts feeds Health's projection through its
//! events), clients, accounts Health already knows, and waits that fail
//! loudly.

#![allow(dead_code)]

use std::time::Duration;

use banso_proto::{accounts as apb, health as pb, types as tpb};
use banso_testkit::{Bearer, TestApp, TestRole as Role, eventually};
use tonic::{Code, codegen::InterceptedService, transport::Channel};

pub type Health = pb::health_service_client::HealthServiceClient<InterceptedService<Channel, Bearer>>;
pub type Accounts = apb::accounts_service_client::AccountsServiceClient<InterceptedService<Channel, Bearer>>;

/// How long a test waits for what happens in the background (events,
/// rollups, scores, jobs) before it fails.
pub const WAIT: Duration = Duration::from_secs(30);

pub async fn spawn() -> TestApp {
    banso_tests::spawn_all().await
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

/// Creates `account` in Accounts and waits until Health's projection knows it.
pub async fn create_account(app: &TestApp, tenant: &str, account: apb::Account) -> String {
    let a = accounts(app, tenant)
        .create_account(apb::CreateAccountRequest { account: Some(account), request_id: String::new() })
        .await
        .unwrap()
        .into_inner();
    wait_known(app, tenant, &a.id).await;
    a.id
}

/// Creates an account (adoption, tech touch) and waits until Health's
/// projection knows it.
pub async fn account(app: &TestApp, tenant: &str, name: &str, external_id: &str) -> String {
    let a = apb::Account {
        name: name.into(),
        external_id: external_id.into(),
        lifecycle_stage: tpb::LifecycleStage::Adoption as i32,
        touch_model: tpb::TouchModel::Tech as i32,
        ..Default::default()
    };
    create_account(app, tenant, a).await
}

/// Waits until Health's projection knows the account (SetMeasureValue of a
/// measure no scorecard reads answers NOT_FOUND until then).
pub async fn wait_known(app: &TestApp, tenant: &str, id: &str) {
    let h = health(app, tenant, Role::Service);
    eventually(&format!("health to learn of account {id}"), WAIT, || {
        let mut h = h.clone();
        let probe = pb::SetMeasureValueRequest {
            account_id: id.into(),
            measure: "probe".into(),
            value: None,
            observe_time: None,
        };
        async move {
            match h.set_measure_value(probe).await {
                Ok(_) => Some(()),
                Err(s) if s.code() == Code::NotFound => None,
                Err(s) => panic!("{s:?}"),
            }
        }
    })
    .await
}

/// The account's health, or `None` while it has none (NOT_FOUND).
pub async fn current(h: &Health, account: &str) -> Option<pb::AccountHealth> {
    match h.clone().get_account_health(pb::GetAccountHealthRequest { account_id: account.into() }).await {
        Ok(r) => Some(r.into_inner()),
        Err(s) if s.code() == Code::NotFound => None,
        Err(s) => panic!("{s:?}"),
    }
}

/// Waits until the account's health satisfies `ok` (NOT_FOUND counts as not yet).
pub async fn health_until(h: &Health, account: &str, ok: impl Fn(&pb::AccountHealth) -> bool) -> pb::AccountHealth {
    let ok = &ok;
    eventually(&format!("account {account} to reach the expected health"), WAIT, || async move {
        current(h, account).await.filter(|r| ok(r))
    })
    .await
}

/// Waits until the account has no current score (NOT_FOUND).
pub async fn unscored(h: &Health, account: &str) {
    eventually(&format!("account {account} to lose its score"), WAIT, || async move {
        current(h, account).await.is_none().then_some(())
    })
    .await
}

/// Waits until a recompute job has finished (succeeded or failed).
pub async fn wait_job(h: &Health, id: &str) -> pb::RecomputeJob {
    use pb::recompute_job::State;
    eventually(&format!("recompute job {id} to finish"), WAIT, || async move {
        let j = h.clone().get_recompute_job(pb::GetRecomputeJobRequest { id: id.into() }).await.unwrap().into_inner();
        [State::Succeeded as i32, State::Failed as i32].contains(&j.state).then_some(j)
    })
    .await
}

pub fn ts(t: chrono::DateTime<chrono::Utc>) -> Option<pbjson_types::Timestamp> {
    Some(banso_kit::wire::timestamp(t))
}

/// A usage event of `account` by `user` now (a few seconds ago).
pub fn usage(id: &str, account: &str, user: &str, name: &str) -> pb::UsageEvent {
    pb::UsageEvent {
        event_id: id.into(),
        account_id: account.into(),
        user_id: user.into(),
        event_name: name.into(),
        timestamp: ts(chrono::Utc::now() - chrono::Duration::seconds(5)),
        ..Default::default()
    }
}

pub fn linear(min: f64, max: f64) -> Option<pb::Normalisation> {
    Some(pb::Normalisation { kind: Some(pb::normalisation::Kind::Linear(pb::normalisation::Linear { min, max })) })
}

pub fn thresholds(points: &[(f64, f64)]) -> Option<pb::Normalisation> {
    Some(pb::Normalisation {
        kind: Some(pb::normalisation::Kind::Thresholds(pb::normalisation::Thresholds {
            thresholds: points
                .iter()
                .map(|(at, points)| pb::normalisation::Threshold { at: *at, points: *points })
                .collect(),
        })),
    })
}

pub fn percentile() -> Option<pb::Normalisation> {
    Some(pb::Normalisation { kind: Some(pb::normalisation::Kind::Percentile(pb::normalisation::Percentile {})) })
}

/// A measure of weight `weight`, higher is better, missing data skipped.
pub fn measure(id: &str, weight: f64, normalisation: Option<pb::Normalisation>) -> pb::WeightedMeasure {
    pb::WeightedMeasure { measure: id.into(), weight, normalisation, ..Default::default() }
}

/// Creates a scorecard (admin).
pub async fn create_scorecard(h: &Health, card: pb::Scorecard) -> pb::Scorecard {
    h.clone()
        .create_scorecard(pb::CreateScorecardRequest { scorecard: Some(card), request_id: String::new() })
        .await
        .unwrap()
        .into_inner()
}

pub async fn set_measure(h: &Health, account: &str, measure: &str, value: Option<f64>) {
    h.clone()
        .set_measure_value(pb::SetMeasureValueRequest {
            account_id: account.into(),
            measure: measure.into(),
            value,
            observe_time: None,
        })
        .await
        .unwrap();
}

/// The raw value of `measure` in a health's explanation.
pub fn raw(h: &pb::AccountHealth, measure: &str) -> Option<f64> {
    h.contributions.iter().find(|c| c.measure == measure).and_then(|c| c.raw)
}

/// `GET path` on the admin port: the status line, headers and body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
