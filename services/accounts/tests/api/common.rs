use banso_proto::{accounts as pb, types as tpb};
use banso_testkit::{Bearer, TestApp, TestRole};
use tonic::{Status, codegen::InterceptedService, transport::Channel};
use tonic_types::StatusExt;

pub use banso_testkit::TestRole as Role;
pub type Client = pb::accounts_service_client::AccountsServiceClient<InterceptedService<Channel, Bearer>>;

pub async fn spawn() -> TestApp {
    spawn_with(banso_testkit::Options::default()).await
}

pub async fn spawn_with(options: banso_testkit::Options) -> TestApp {
    banso_testkit::spawn_with(options, &[&banso_accounts::SERVICE]).await.expect("test server starts")
}

pub fn client(app: &TestApp, tenant: &str, role: TestRole) -> Client {
    pb::accounts_service_client::AccountsServiceClient::with_interceptor(app.channel.clone(), app.bearer(tenant, role))
}

/// An admin client of tenant "acme".
pub fn admin(app: &TestApp) -> Client {
    client(app, "acme", Role::Admin)
}

pub fn date(year: i32, month: i32, day: i32) -> Option<tpb::Date> {
    Some(tpb::Date { year, month, day })
}

pub fn money(code: &str, amount_minor: i64) -> Option<tpb::Money> {
    Some(tpb::Money { currency_code: code.into(), amount_minor })
}

/// A valid account with only the required fields besides its name.
pub fn account(name: &str) -> pb::Account {
    pb::Account {
        name: name.into(),
        lifecycle_stage: pb::LifecycleStage::Onboarding as i32,
        touch_model: pb::TouchModel::High as i32,
        ..Default::default()
    }
}

pub async fn create(c: &mut Client, a: pb::Account) -> pb::Account {
    c.create_account(pb::CreateAccountRequest { account: Some(a), request_id: String::new() })
        .await
        .expect("create account")
        .into_inner()
}

pub fn mask(paths: &[&str]) -> Option<pbjson_types::FieldMask> {
    Some(pbjson_types::FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() })
}

/// The (field, description) pairs of an INVALID_ARGUMENT status.
pub fn violations(status: &Status) -> Vec<(String, String)> {
    banso_testkit::field_violations(status)
}

/// Asserts INVALID_ARGUMENT naming exactly `field` (among possibly others).
pub fn assert_violation(status: &Status, field: &str) {
    let vs = violations(status);
    assert!(vs.iter().any(|(f, _)| f == field), "expected a violation on {field:?}, got {vs:?}");
}

pub fn reason(status: &Status) -> String {
    status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default()
}
