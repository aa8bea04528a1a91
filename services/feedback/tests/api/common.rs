//! What the suites share: the service on a fresh database, clients, and
//! the projection fed with events as Accounts, Health and Playbooks
//! publish them.

#![allow(dead_code, reason = "each suite uses its part")]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use banso_events::{Envelope, Handler, HandlerError, Payload, bus::Outgoing};
use banso_proto::{accounts as apb, events as ev, feedback as pb, health as hpb, types as tpb};
use banso_testkit::{Bearer, TestApp};
use tonic::{Status, codegen::InterceptedService, transport::Channel};
use tonic_types::StatusExt;

pub use banso_testkit::TestRole as Role;
pub type Client = pb::surveys_service_client::SurveysServiceClient<InterceptedService<Channel, Bearer>>;
pub type Public = pb::survey_response_service_client::SurveyResponseServiceClient<Channel>;

pub const TENANT: &str = "acme";
/// The token secret of every test server (banso-testkit).
pub const TOKEN_SECRET: &str = "banso-test-feedback-token-secret-0123456789";

pub async fn spawn() -> TestApp {
    spawn_with(&[]).await
}

/// `BANSO_TEST_LEXICON`, if set, is the servers' Japanese–English lexicon
/// (`BANSO_FEEDBACK_LEXICON`; `.ci/run` sets it to Debian's EDICT).
#[allow(clippy::disallowed_methods, reason = "a test switch, as banso-testkit reads BANSO_TEST_*")]
pub fn lexicon() -> Option<String> {
    std::env::var("BANSO_TEST_LEXICON").ok().filter(|p| !p.is_empty())
}

pub async fn spawn_with(vars: &[(&str, &str)]) -> TestApp {
    let mut vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if let Some(path) = lexicon() {
        vars.push(("BANSO_FEEDBACK_LEXICON".into(), path));
    }
    let options = banso_testkit::Options { vars, ..Default::default() };
    banso_testkit::spawn_with(options, &[&banso_feedback::SERVICE]).await.expect("test server starts")
}

pub fn client(app: &TestApp, tenant: &str, role: Role) -> Client {
    pb::surveys_service_client::SurveysServiceClient::with_interceptor(app.channel.clone(), app.bearer(tenant, role))
}

pub fn admin(app: &TestApp) -> Client {
    client(app, TENANT, Role::Admin)
}

/// The public answer path: no bearer token at all.
pub fn public(app: &TestApp) -> Public {
    pb::survey_response_service_client::SurveyResponseServiceClient::new(app.channel.clone())
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

pub fn account(name: &str, industry: &str) -> apb::Account {
    apb::Account {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.into(),
        lifecycle_stage: tpb::LifecycleStage::Adoption as i32,
        touch_model: tpb::TouchModel::High as i32,
        owner_id: "csm-1".into(),
        industry: industry.into(),
        employee_count: Some(120),
        region: "apac".into(),
        plan_tier: "gold".into(),
        arr: Some(tpb::Money { currency_code: "JPY".into(), amount_minor: 12_000_000 }),
        ..Default::default()
    }
}

pub fn contact(account: &apb::Account, name: &str, level: apb::ContactLevel) -> apb::Contact {
    apb::Contact {
        id: uuid::Uuid::now_v7().to_string(),
        account_id: account.id.clone(),
        name: name.into(),
        email: format!("{}@{}.example", name.to_lowercase().replace(' ', "."), account.name.to_lowercase()),
        level: level as i32,
        department: "Finance".into(),
        ..Default::default()
    }
}

pub async fn publish_account(app: &TestApp, tenant: &str, a: &apb::Account) {
    publish(app, tenant, "accounts", Payload::AccountCreated(ev::AccountCreated { account: Some(a.clone()) })).await;
}

pub async fn publish_contact(app: &TestApp, tenant: &str, c: &apb::Contact) {
    publish(
        app,
        tenant,
        "accounts",
        Payload::ContactChanged(ev::ContactChanged {
            change: ev::contact_changed::Change::Created as i32,
            contact: Some(c.clone()),
        }),
    )
    .await;
}

pub async fn publish_band(app: &TestApp, tenant: &str, account: &str, score: f64, band: hpb::Band) {
    publish(
        app,
        tenant,
        "health",
        Payload::HealthScoreChanged(ev::HealthScoreChanged {
            account_id: account.into(),
            new_score: score,
            new_band: band as i32,
            scorecard_id: uuid::Uuid::now_v7().to_string(),
            scorecard_version: 1,
            ..Default::default()
        }),
    )
    .await;
}

/// Waits until everything published on the accounts stream before now has
/// reached the projection: a sentinel account, published last, is known.
/// (Creates a survey with a perception statement to ask with: tests that
/// list surveys settle first.)
pub async fn settle(app: &TestApp, tenant: &str) {
    let sentinel = account("sentinel", "");
    publish_account(app, tenant, &sentinel).await;
    let mut c = client(app, tenant, Role::Admin);
    let probe = create_survey(
        &mut c,
        pb::Survey { perception_statement: "probe".into(), ..survey("probe", pb::SurveyKind::Csat) },
    )
    .await;
    until("the projection catches up", || {
        let mut c = c.clone();
        let (id, survey) = (sentinel.id.clone(), probe.id.clone());
        async move {
            c.get_perception_gap(pb::GetPerceptionGapRequest {
                survey_id: survey,
                scope: pb::GapScope::Account as i32,
                scope_id: id,
                ..Default::default()
            })
            .await
            .ok()
        }
    })
    .await;
    // The sentinel settled the accounts stream; Health's and Playbooks'
    // are streams of their own: give them a turn.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Waits until `probe` gives `Some`.
pub async fn until<T, F: std::future::Future<Output = Option<T>>>(what: &str, probe: impl FnMut() -> F) -> T {
    banso_testkit::eventually(what, Duration::from_secs(15), probe).await
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

pub fn survey(name: &str, kind: pb::SurveyKind) -> pb::Survey {
    pb::Survey { display_name: name.into(), kind: kind as i32, ..Default::default() }
}

pub async fn create_survey(c: &mut Client, s: pb::Survey) -> pb::Survey {
    c.create_survey(pb::CreateSurveyRequest { survey: Some(s), request_id: String::new() }).await.unwrap().into_inner()
}

pub fn campaign_to(survey: &pb::Survey, accounts: &[&apb::Account]) -> pb::Campaign {
    pb::Campaign {
        survey_id: survey.id.clone(),
        display_name: format!("{} campaign", survey.display_name),
        account_ids: accounts.iter().map(|a| a.id.clone()).collect(),
        ..Default::default()
    }
}

pub async fn create_campaign(c: &mut Client, campaign: pb::Campaign) -> pb::Campaign {
    c.create_campaign(pb::CreateCampaignRequest { campaign: Some(campaign), request_id: String::new() })
        .await
        .unwrap()
        .into_inner()
}

pub async fn invitations(c: &mut Client, campaign: &str) -> Vec<pb::Invitation> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_invitations(pb::ListInvitationsRequest {
                campaign_id: campaign.into(),
                page_size: 7,
                page_token: token,
                status: 0,
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(page.invitations);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

pub async fn answer(p: &mut Public, token: &str, score: Option<i32>) -> Result<pb::SubmitSurveyAnswerResponse, Status> {
    p.submit_survey_answer(pb::SubmitSurveyAnswerRequest { token: token.into(), score, ..Default::default() })
        .await
        .map(|r| r.into_inner())
}

/// Collects the events the service publishes on `subject`.
pub struct Collected(pub Arc<Mutex<Vec<Envelope>>>);

#[async_trait::async_trait]
impl Handler for Collected {
    async fn handle(&self, env: &Envelope) -> Result<(), HandlerError> {
        self.0.lock().unwrap().push(env.clone());
        Ok(())
    }
}

pub fn collect(app: &TestApp, subject: &str) -> Arc<Mutex<Vec<Envelope>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(Collected(seen.clone()));
    let bus = app.runtime.bus.clone();
    let subject = subject.to_string();
    tokio::spawn(async move {
        bus.prepare_source("feedback").await.unwrap();
        let _ = bus
            .consume(
                "test-collector",
                &[subject],
                handler,
                Default::default(),
                tokio_util::sync::CancellationToken::new(),
            )
            .await;
    });
    seen
}

/// A client acting as `subject` (a CSM of the account team).
pub fn client_as(app: &TestApp, tenant: &str, subject: &str, role: Role) -> Client {
    let issuer = banso_kit::auth::DevTokenIssuer::from_config(&app.config.auth).expect("test signing key");
    let token = issuer.mint(tenant, subject, &[role], Duration::from_secs(3600));
    pb::surveys_service_client::SurveysServiceClient::with_interceptor(app.channel.clone(), Bearer::new(&token))
}

/// An account with `n` manager contacts, published; the contacts.
pub async fn account_with_contacts(
    app: &TestApp,
    name: &str,
    industry: &str,
    n: usize,
) -> (apb::Account, Vec<apb::Contact>) {
    let a = account(name, industry);
    publish_account(app, TENANT, &a).await;
    let mut cs = Vec::new();
    for i in 0..n {
        let c = contact(&a, &format!("{name} Person {i}"), apb::ContactLevel::Manager);
        publish_contact(app, TENANT, &c).await;
        cs.push(c);
    }
    (a, cs)
}

/// Each contact's token in a campaign.
pub async fn tokens(c: &mut Client, campaign: &str) -> std::collections::HashMap<String, pb::Invitation> {
    invitations(c, campaign).await.into_iter().map(|i| (i.contact_id.clone(), i)).collect()
}

pub fn close(a: Option<f64>, b: f64) {
    let a = a.expect("a value");
    assert!((a - b).abs() < 0.01, "{a} vs {b}");
}

pub type Voice = pb::voice_service_client::VoiceServiceClient<InterceptedService<Channel, Bearer>>;

/// The VoiceService as `role` of `tenant`.
pub fn voice_as(app: &TestApp, tenant: &str, role: Role) -> Voice {
    pb::voice_service_client::VoiceServiceClient::with_interceptor(app.channel.clone(), app.bearer(tenant, role))
}

/// The VoiceService as the tenant's admin.
pub fn voice(app: &TestApp) -> Voice {
    voice_as(app, TENANT, Role::Admin)
}

pub fn item(account: &apb::Account, text: &str, department: pb::Department, severity: i32) -> pb::FeedbackItem {
    pb::FeedbackItem {
        text: text.into(),
        channel: pb::Channel::CsmNote as i32,
        account_id: account.id.clone(),
        department: department as i32,
        severity,
        ..Default::default()
    }
}

pub async fn create_item(v: &mut Voice, item: pb::FeedbackItem) -> pb::FeedbackItem {
    v.create_feedback_item(pb::CreateFeedbackItemRequest { item: Some(item), request_id: String::new() })
        .await
        .unwrap()
        .into_inner()
}

pub async fn create_theme(v: &mut Voice, theme: pb::Theme) -> pb::Theme {
    v.create_theme(pb::CreateThemeRequest { theme: Some(theme), request_id: String::new() }).await.unwrap().into_inner()
}

pub fn theme(name: &str) -> pb::Theme {
    pb::Theme { display_name: name.into(), ..Default::default() }
}
