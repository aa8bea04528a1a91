//! What the suites share: the service on a fresh database, clients, and
//! events published onto its bus as Accounts and Health would publish them.

use std::time::Duration;

use banso_events::{Envelope, Payload, bus::Outgoing};
use banso_proto::{accounts as apb, events as ev, health as hpb, playbooks as pb, types as tpb};
use banso_testkit::{Bearer, TestApp};
use tonic::{Status, codegen::InterceptedService, transport::Channel};
use tonic_types::StatusExt;

pub use banso_testkit::TestRole as Role;
pub type Client = pb::playbooks_service_client::PlaybooksServiceClient<InterceptedService<Channel, Bearer>>;

pub const TENANT: &str = "acme";

pub async fn spawn() -> TestApp {
    banso_testkit::spawn(&[&banso_playbooks::SERVICE]).await.expect("test server starts")
}

pub fn client(app: &TestApp, tenant: &str, role: Role) -> Client {
    pb::playbooks_service_client::PlaybooksServiceClient::with_interceptor(
        app.channel.clone(),
        app.bearer(tenant, role),
    )
}

pub fn admin(app: &TestApp) -> Client {
    client(app, TENANT, Role::Admin)
}

/// Publishes an envelope onto the app's bus, as its source's relay would.
pub async fn publish_envelope(app: &TestApp, env: &Envelope) {
    use prost::Message as _;
    let out = Outgoing {
        id: env.id.clone(),
        subject: banso_events::envelope::subject(env),
        payload: bytes::Bytes::from(env.encode_to_vec()),
    };
    app.runtime.bus.prepare_source(&env.source).await.unwrap();
    app.runtime.bus.publish(&[out]).await.unwrap();
}

pub async fn publish(app: &TestApp, tenant: &str, source: &str, payload: Payload) -> Envelope {
    let env = banso_events::envelope::new(tenant, source, payload);
    publish_envelope(app, &env).await;
    env
}

pub fn account(name: &str, owner: &str, touch: tpb::TouchModel) -> apb::Account {
    apb::Account {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.into(),
        lifecycle_stage: tpb::LifecycleStage::Adoption as i32,
        touch_model: touch as i32,
        owner_id: owner.into(),
        arr: Some(tpb::Money { currency_code: "USD".into(), amount_minor: 1_200_000 }),
        ..Default::default()
    }
}

/// Publishes AccountCreated and waits until the projection has it (a CTA
/// created by hand for it succeeds).
pub async fn known_account(app: &TestApp, tenant: &str, a: &apb::Account) {
    publish(app, tenant, "accounts", Payload::AccountCreated(ev::AccountCreated { account: Some(a.clone()) })).await;
    let mut c = client(app, tenant, Role::Admin);
    let id = a.id.clone();
    banso_testkit::eventually("the account reaches the projection", Duration::from_secs(10), || {
        let mut c = c.clone();
        let id = id.clone();
        async move {
            c.test_condition(pb::TestConditionRequest {
                condition: "true".into(),
                account_id: id,
                event_id: String::new(),
            })
            .await
            .ok()
        }
    })
    .await;
    let _ = &mut c;
}

pub fn score_changed(account: &str, old: Option<(f64, hpb::Band)>, new: (f64, hpb::Band)) -> Payload {
    Payload::HealthScoreChanged(ev::HealthScoreChanged {
        account_id: account.into(),
        old_score: old.map(|o| o.0),
        new_score: new.0,
        old_band: old.map(|o| o.1 as i32).unwrap_or(0),
        new_band: new.1 as i32,
        scorecard_id: uuid::Uuid::now_v7().to_string(),
        scorecard_version: 1,
        ..Default::default()
    })
}

/// An event trigger on HealthScoreChanged turning red, opening a risk CTA.
pub fn red_playbook(name: &str) -> pb::Playbook {
    pb::Playbook {
        display_name: name.into(),
        trigger: Some(pb::Trigger {
            kind: Some(pb::trigger::Kind::Event(pb::EventTrigger {
                event_type: "health_score_changed".into(),
                band_became: hpb::Band::Red as i32,
                ..Default::default()
            })),
        }),
        actions: vec![open_cta("{{account.name}} turned red", pb::CtaPriority::High, &[])],
        ..Default::default()
    }
}

pub fn open_cta(title: &str, priority: pb::CtaPriority, models: &[tpb::TouchModel]) -> pb::Action {
    pb::Action {
        touch_models: models.iter().map(|m| *m as i32).collect(),
        kind: Some(pb::action::Kind::OpenCta(pb::OpenCtaAction {
            r#type: pb::CtaType::Risk as i32,
            priority: priority as i32,
            title_template: title.into(),
            description_template: "score {{health.score}} ({{health.band}})".into(),
            due_in_days: 3,
            task_titles: vec!["call the sponsor".into()],
            ..Default::default()
        })),
    }
}

pub async fn create_enabled(c: &mut Client, p: pb::Playbook) -> pb::Playbook {
    let p = c
        .create_playbook(pb::CreatePlaybookRequest { playbook: Some(p), request_id: String::new() })
        .await
        .unwrap()
        .into_inner();
    c.enable_playbook(pb::EnablePlaybookRequest { id: p.id.clone(), version: 0, etag: p.etag.clone() })
        .await
        .unwrap()
        .into_inner()
}

/// The CTAs of an account.
pub async fn ctas_of(c: &mut Client, account: &str) -> Vec<pb::CallToAction> {
    c.list_calls_to_action(pb::ListCallsToActionRequest {
        filter: Some(pb::CtaFilter { account_id: account.into(), ..Default::default() }),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .ctas
}

/// Waits until `probe` gives `Some`.
pub async fn until<T, F: std::future::Future<Output = Option<T>>>(what: &str, probe: impl FnMut() -> F) -> T {
    banso_testkit::eventually(what, Duration::from_secs(10), probe).await
}

pub fn mask(paths: &[&str]) -> Option<pbjson_types::FieldMask> {
    Some(pbjson_types::FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() })
}

pub fn violations(status: &Status) -> Vec<(String, String)> {
    banso_testkit::field_violations(status)
}

pub fn assert_violation(status: &Status, field: &str) {
    let vs = violations(status);
    assert!(vs.iter().any(|(f, _)| f == field), "expected a violation on {field:?}, got {vs:?}");
}

pub fn reason(status: &Status) -> String {
    status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default()
}
