//! What every server has: health, reflection, metrics, graceful shutdown.

use std::time::Duration;

use banso_proto::accounts as pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use crate::common::*;

const SERVICE: &str = "banso.accounts.v1.AccountsService";

#[tokio::test]
async fn health_is_serving_then_not_serving_once_shutdown_begins() {
    let app = spawn_with(banso_testkit::Options { shutdown_delay: Duration::from_secs(2), ..Default::default() }).await;
    // No token needed: probes carry none.
    let mut health = HealthClient::new(app.channel.clone());
    for service in [SERVICE, ""] {
        let s = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(s.status(), ServingStatus::Serving, "{service:?}");
    }
    let mut watch = health.watch(HealthCheckRequest { service: SERVICE.into() }).await.unwrap().into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::Serving);

    app.begin_shutdown();
    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("a status change")
        .unwrap()
        .unwrap();
    assert_eq!(next.status(), ServingStatus::NotServing);
    // During the shutdown delay the server still answers, and says it is going.
    let s = health.check(HealthCheckRequest { service: SERVICE.into() }).await.unwrap().into_inner();
    assert_eq!(s.status(), ServingStatus::NotServing);
    drop(watch);
    // Then it stops on its own, cleanly.
    tokio::time::timeout(Duration::from_secs(30), app.stop()).await.expect("server stops").expect("clean stop");
}

/// A call the server received before shutdown began finishes with OK,
/// even while the server no longer accepts connections; a call made after
/// it stopped accepting is refused as UNAVAILABLE, never answered in part.
#[tokio::test]
async fn in_flight_calls_finish_during_shutdown() {
    let app =
        spawn_with(banso_testkit::Options { shutdown_delay: Duration::from_millis(500), ..Default::default() }).await;
    let c = admin(&app);
    let rows = |range: std::ops::Range<usize>| pb::ImportAccountsRequest {
        accounts: range
            .map(|i| pb::Account { external_id: format!("crm-{i}"), ..account(&format!("Late {i}")) })
            .collect(),
    };
    // A slow import: its stream stays open across the whole shutdown.
    let (send, received) = tokio::sync::mpsc::channel(4);
    let stream = futures::stream::unfold(received, |mut r| async move { r.recv().await.map(|m| (m, r)) });
    let import = tokio::spawn({
        let mut c = c.clone();
        async move { c.import_accounts(stream).await }
    });
    send.send(rows(0..50)).await.unwrap();
    // Provably in flight: the server has read and written its first message.
    let listed = || {
        let mut c = c.clone();
        async move {
            let page = c.list_accounts(pb::ListAccountsRequest { page_size: 100, ..Default::default() }).await;
            page.ok().map(|p| p.into_inner().accounts.len())
        }
    };
    banso_testkit::eventually("the import's first rows", Duration::from_secs(10), || {
        let n = listed();
        async move { n.await.filter(|n| *n == 50) }
    })
    .await;

    app.begin_shutdown();
    // After the delay the server stops accepting: a call on a new connection
    // is refused, and refused cleanly.
    let url = format!("http://{}", app.addr);
    let refused = banso_testkit::eventually("the server to stop accepting", Duration::from_secs(10), || {
        let (url, bearer) = (url.clone(), app.bearer("acme", Role::Admin));
        async move {
            let channel = tonic::transport::Channel::from_shared(url).ok()?.connect_lazy();
            let mut late = pb::accounts_service_client::AccountsServiceClient::with_interceptor(channel, bearer);
            late.list_accounts(pb::ListAccountsRequest::default()).await.err()
        }
    })
    .await;
    assert_eq!(refused.code(), tonic::Code::Unavailable, "a call after the server stopped accepting: {refused:?}");

    // The call begun before it all goes on, and finishes with every row.
    send.send(rows(50..100)).await.unwrap();
    drop(send);
    let done = tokio::time::timeout(Duration::from_secs(10), import)
        .await
        .expect("the in-flight import finishes")
        .unwrap()
        .expect("an import begun before shutdown finishes OK")
        .into_inner();
    assert_eq!((done.rows, done.created, done.failed), (100, 100, 0));
    tokio::time::timeout(Duration::from_secs(30), app.stop()).await.expect("server stops").expect("clean stop");
}

#[tokio::test]
async fn reflection_lists_the_services_without_a_token() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let app = spawn().await;
    let mut client = ServerReflectionClient::new(app.channel.clone());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client.server_reflection_info(futures::stream::iter([req])).await.unwrap().into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else { panic!("{resp:?}") };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&SERVICE.to_string()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_string()), "{names:?}");

    // And it can describe the service's file, for `buf curl` and grpcurl.
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(SERVICE.into())),
    };
    let mut stream = client.server_reflection_info(futures::stream::iter([req])).await.unwrap().into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    assert!(matches!(resp.message_response, Some(MessageResponse::FileDescriptorResponse(_))), "{resp:?}");
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    body
}

#[tokio::test]
async fn metrics_count_rpcs_by_method_and_code() {
    let app = spawn().await;
    let mut c = admin(&app);
    let missing = uuid::Uuid::now_v7().to_string();
    let _ = c.get_account(pb::GetAccountRequest { id: missing }).await;
    c.list_accounts(pb::ListAccountsRequest::default()).await.unwrap();
    let mut bare = pb::accounts_service_client::AccountsServiceClient::new(app.channel.clone());
    let _ = bare.list_accounts(pb::ListAccountsRequest::default()).await;

    let text = http_get(app.admin_addr.expect("admin port"), "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let has = |method: &str, code: &str| {
        text.lines().any(|l| {
            l.starts_with("banso_grpc_server_requests_total")
                && l.contains(&format!("method=\"/{SERVICE}/{method}\""))
                && l.contains(&format!("code=\"{code}\""))
        })
    };
    assert!(has("GetAccount", "NOT_FOUND"), "{text}");
    assert!(has("ListAccounts", "OK"), "{text}");
    assert!(has("ListAccounts", "UNAUTHENTICATED"), "{text}");
    assert!(text.contains("banso_grpc_server_duration_seconds_bucket"), "latency histogram present");
}
