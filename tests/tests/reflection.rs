//! Reflection lists what the process serves, not the whole API: a process
//! that serves Accounts alone (`banso serve accounts`) must not offer
//! Health's methods to tools, which would then answer UNIMPLEMENTED.

use banso_testkit::TestApp;
use tonic_reflection::pb::{v1, v1alpha};

async fn list_v1(app: &TestApp) -> Vec<String> {
    use v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = ServerReflectionClient::new(app.channel.clone())
        .server_reflection_info(futures::stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    match replies.message().await.unwrap().unwrap().message_response {
        Some(MessageResponse::ListServicesResponse(l)) => l.service.into_iter().map(|s| s.name).collect(),
        other => panic!("not a list of services: {other:?}"),
    }
}

async fn list_v1alpha(app: &TestApp) -> Vec<String> {
    use v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = ServerReflectionClient::new(app.channel.clone())
        .server_reflection_info(futures::stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    match replies.message().await.unwrap().unwrap().message_response {
        Some(MessageResponse::ListServicesResponse(l)) => l.service.into_iter().map(|s| s.name).collect(),
        other => panic!("not a list of services: {other:?}"),
    }
}

#[tokio::test]
async fn a_process_serving_accounts_alone_reflects_accounts_alone() {
    let app = banso_testkit::spawn(&[&banso_accounts::SERVICE]).await.unwrap();
    for (version, listed) in [("v1", list_v1(&app).await), ("v1alpha", list_v1alpha(&app).await)] {
        assert!(listed.iter().any(|s| s == "banso.accounts.v1.AccountsService"), "{version}: {listed:?}");
        assert!(listed.iter().any(|s| s == "grpc.health.v1.Health"), "{version}: {listed:?}");
        assert!(!listed.iter().any(|s| s.starts_with("banso.health.")), "{version} lists Health's API: {listed:?}");
    }
}

#[tokio::test]
async fn banso_up_reflects_every_service_it_serves() {
    let app = banso_tests::spawn_all().await;
    let listed = list_v1(&app).await;
    let pool = banso_tests::raw::pool();
    let served: Vec<String> =
        banso_tests::raw::served_services(&app.channel, &pool).await.iter().map(|s| s.full_name().to_owned()).collect();
    // Each service of banso::SERVICES adds at least one gRPC service.
    assert!(served.len() >= banso::SERVICES.len(), "{listed:?}");
    assert!(served.iter().any(|s| s == "banso.health.v1.HealthService"), "{listed:?}");
    // Feedback hosts two: the authenticated one and the public answer path.
    for feedback in ["banso.feedback.v1.SurveysService", "banso.feedback.v1.SurveyResponseService"] {
        assert!(served.iter().any(|s| s == feedback), "{feedback} is not reflected: {listed:?}");
    }
}
