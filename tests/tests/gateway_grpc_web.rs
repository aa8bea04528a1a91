//! gRPC-Web, gRPC and Connect through the gateway, made by hand with
//! reqwest the way a browser client frames them: every method of every
//! service through one proxy, errors as gRPC statuses, CORS by allow-list.

use banso_kit::auth::Role;
use banso_proto::{accounts as apb, types as tpb};
use banso_tests::{TestGateway, spawn_all, spawn_gateway};
use base64::Engine as _;
use prost::Message;
use reqwest::{Client, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use tonic_types::StatusExt as _;

const ACCOUNTS: &str = "/banso.accounts.v1.AccountsService";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64_NO_PAD: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

/// One gRPC-Web message frame: flag 0, big-endian length, the message.
fn frame(msg: &impl Message) -> Vec<u8> {
    let bytes = msg.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&bytes);
    out
}

/// A gRPC-Web reply: its messages and its status (from the trailer frame,
/// or from the headers of a trailers-only reply).
#[derive(Debug)]
struct Reply {
    http: StatusCode,
    headers: HeaderMap,
    messages: Vec<Vec<u8>>,
    trailers: Vec<(String, String)>,
}

impl Reply {
    fn parse(http: StatusCode, headers: HeaderMap, body: &[u8]) -> Reply {
        let (mut messages, mut trailers) = (Vec::new(), Vec::new());
        let mut rest = body;
        while !rest.is_empty() {
            assert!(rest.len() >= 5, "a truncated frame header: {rest:?}");
            let flag = rest[0];
            let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
            let data = &rest[5..5 + len];
            if flag & 0x80 != 0 {
                for line in String::from_utf8(data.to_vec()).unwrap().split("\r\n").filter(|l| !l.is_empty()) {
                    let (k, v) = line.split_once(':').unwrap();
                    trailers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            } else {
                messages.push(data.to_vec());
            }
            rest = &rest[5 + len..];
        }
        Reply { http, headers, messages, trailers }
    }

    /// A trailer, else the header of the same name (trailers-only replies).
    fn get(&self, name: &str) -> Option<String> {
        self.trailers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| self.headers.get(name).map(|v| v.to_str().unwrap().to_owned()))
    }

    fn code(&self) -> i32 {
        assert_eq!(self.http, StatusCode::OK, "gRPC-Web answers 200 and a grpc-status: {self:?}");
        self.get("grpc-status").unwrap_or_else(|| panic!("no grpc-status: {self:?}")).parse().unwrap()
    }

    fn message<M: Message + Default>(&self) -> M {
        assert_eq!(self.code(), 0, "{:?}", self.get("grpc-message"));
        assert_eq!(self.messages.len(), 1, "{self:?}");
        M::decode(self.messages[0].as_slice()).unwrap()
    }

    /// The status, with the details of grpc-status-details-bin.
    fn status(&self) -> tonic::Status {
        let details = self
            .get("grpc-status-details-bin")
            .map(|b| B64_NO_PAD.decode(b.trim_end_matches('=')).expect("details are base64"))
            .unwrap_or_default();
        let message = percent_decode(&self.get("grpc-message").unwrap_or_default());
        tonic::Status::with_details(tonic::Code::from_i32(self.code()), message, details.into())
    }
}

/// grpc-message is percent-encoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        if let (b'%', Some(Ok(b))) = (bytes[i], hex.map(|h| u8::from_str_radix(h, 16))) {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes the concatenated, separately padded base64 chunks of a
/// grpc-web-text reply (each 4-character group stands alone).
fn decode_text(body: &[u8]) -> Vec<u8> {
    let text: Vec<u8> = body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    assert_eq!(text.len() % 4, 0, "grpc-web-text is whole base64 groups");
    text.chunks(4).flat_map(|g| B64.decode(g).unwrap()).collect()
}

struct Web {
    http: Client,
    gw: TestGateway,
    token: String,
}

impl Web {
    async fn start(vars: &[(&str, &str)]) -> (banso_testkit::TestApp, Web) {
        let app = spawn_all().await;
        let gw = spawn_gateway(&app, vars).await;
        let token = app.token("acme", Role::Admin);
        (app, Web { http: Client::new(), gw, token })
    }

    /// A binary gRPC-Web call, with `headers` beside the usual ones.
    async fn call(&self, path: &str, msg: &impl Message, headers: &[(&str, &str)]) -> Reply {
        self.call_raw(path, frame(msg), "application/grpc-web+proto", headers).await
    }

    async fn call_raw(&self, path: &str, body: Vec<u8>, content_type: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self
            .http
            .post(format!("{}{path}", self.gw.url))
            .header("content-type", content_type)
            .header("x-grpc-web", "1")
            .header("x-user-agent", "grpc-web-javascript/0.1");
        if !headers.iter().any(|(k, _)| *k == "authorization") {
            req = req.bearer_auth(&self.token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.body(body).send().await.expect("gateway answers");
        let (status, headers) = (res.status(), res.headers().clone());
        let body = res.bytes().await.unwrap();
        if content_type.starts_with("application/grpc-web-text") {
            assert_eq!(headers.get("content-type").unwrap(), "application/grpc-web-text+proto");
            return Reply::parse(status, headers, &decode_text(&body));
        }
        Reply::parse(status, headers, &body)
    }

    /// A Connect unary call with a JSON body.
    async fn connect(&self, method: &str, body: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Value) {
        let mut req = self
            .http
            .post(format!("{}{ACCOUNTS}/{method}", self.gw.url))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .header("connect-protocol-version", "1");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.body(body.to_owned()).send().await.expect("gateway answers");
        let (status, headers) = (res.status(), res.headers().clone());
        let text = res.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text}"));
        assert!(!status.is_server_error(), "{method}: {status} {json}");
        (status, headers, json)
    }
}

fn account(name: &str, ext: &str) -> apb::CreateAccountRequest {
    apb::CreateAccountRequest {
        account: Some(apb::Account {
            name: name.into(),
            external_id: ext.into(),
            lifecycle_stage: tpb::LifecycleStage::Adoption as i32,
            touch_model: tpb::TouchModel::Tech as i32,
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn grpc_web_binary_and_text_create_and_get_an_account() {
    let (_app, w) = Web::start(&[]).await;
    let r =
        w.call(&format!("{ACCOUNTS}/CreateAccount"), &account("Acme", "crm-1"), &[("x-request-id", "req-web-1")]).await;
    assert_eq!(r.headers.get("content-type").unwrap(), "application/grpc-web+proto");
    assert_eq!(r.headers.get("x-request-id").unwrap(), "req-web-1");
    let created: apb::Account = r.message();
    assert_eq!((created.name.as_str(), created.external_id.as_str()), ("Acme", "crm-1"));
    assert!(!created.id.is_empty() && !created.etag.is_empty());

    // Text mode: the frames in base64, both ways.
    let get = apb::GetAccountRequest { id: created.id.clone() };
    let body = B64.encode(frame(&get)).into_bytes();
    let r = w
        .call_raw(
            &format!("{ACCOUNTS}/GetAccount"),
            body,
            "application/grpc-web-text",
            &[("accept", "application/grpc-web-text")],
        )
        .await;
    let got: apb::Account = r.message();
    assert_eq!(got, created);
    // A text client that does not say what it accepts still gets text.
    let body = B64.encode(frame(&get)).into_bytes();
    let r = w.call_raw(&format!("{ACCOUNTS}/GetAccount"), body, "application/grpc-web-text", &[]).await;
    assert_eq!(r.message::<apb::Account>().id, created.id);

    // Any method of any service, through the same proxy: a list, and Health.
    let r = w.call(&format!("{ACCOUNTS}/ListAccounts"), &apb::ListAccountsRequest::default(), &[]).await;
    let list: apb::ListAccountsResponse = r.message();
    assert_eq!(list.accounts.len(), 1);
    let r = w
        .call(
            "/banso.health.v1.HealthService/ListScorecards",
            &banso_proto::health::ListScorecardsRequest::default(),
            &[],
        )
        .await;
    assert_eq!(r.code(), 0, "{:?}", r.get("grpc-message"));
}

#[tokio::test]
async fn grpc_web_errors_are_grpc_statuses_with_details() {
    let (_app, w) = Web::start(&[]).await;
    // The service's own validation: INVALID_ARGUMENT with field violations.
    let r = w.call(&format!("{ACCOUNTS}/CreateAccount"), &account("", "crm-1"), &[]).await;
    let status = r.status();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let bad = status.get_error_details().bad_request().cloned().expect("a BadRequest detail");
    assert!(bad.field_violations.iter().any(|v| v.field == "account.name"), "{bad:?}");

    // Not found, and no token: the services' codes come through.
    let r = w.call(&format!("{ACCOUNTS}/GetAccount"), &apb::GetAccountRequest { id: "nope".into() }, &[]).await;
    assert!(matches!(r.code(), 3 | 5), "{:?}", r.get("grpc-message"));
    let r = w
        .call(&format!("{ACCOUNTS}/ListAccounts"), &apb::ListAccountsRequest::default(), &[("authorization", "")])
        .await;
    assert_eq!(r.code(), 16, "{:?}", r.get("grpc-message"));

    // Unknown methods and services: UNIMPLEMENTED, in gRPC-Web form.
    for path in [format!("{ACCOUNTS}/NoSuchMethod"), "/no.such.v1.Service/Get".into(), "/Service/Get".into()] {
        let r = w.call(&path, &apb::GetAccountRequest::default(), &[]).await;
        assert_eq!(r.code(), 12, "{path}: {r:?}");
        assert_eq!(r.headers.get("content-type").unwrap(), "application/grpc-web+proto");
    }

    // A malformed deadline is the caller's mistake; a long one is capped.
    let list = apb::ListAccountsRequest::default();
    let r = w.call(&format!("{ACCOUNTS}/ListAccounts"), &list, &[("grpc-timeout", "soon")]).await;
    assert_eq!(r.code(), 3);
    assert!(r.status().message().contains("grpc-timeout"), "{:?}", r.status());
    let r = w.call(&format!("{ACCOUNTS}/ListAccounts"), &list, &[("grpc-timeout", "99999999H")]).await;
    assert_eq!(r.code(), 0);

    // Frames that do not hold the request message, and text that is not
    // base64: INVALID_ARGUMENT, never INTERNAL.
    for garbage in [vec![0, 0, 0, 0, 3, 0xff, 0xff, 0xff], vec![0, 0, 0, 0, 9, 1], vec![0, 0], vec![7, 0, 0, 0, 0]] {
        let r = w.call_raw(&format!("{ACCOUNTS}/GetAccount"), garbage.clone(), "application/grpc-web+proto", &[]).await;
        assert_eq!(r.code(), 3, "{garbage:?}: {:?}", r.get("grpc-message"));
    }
    let r = w
        .call_raw(&format!("{ACCOUNTS}/GetAccount"), b"!!!not base64".to_vec(), "application/grpc-web-text", &[])
        .await;
    assert_eq!(r.code(), 3, "{:?}", r.get("grpc-message"));
    // gRPC-Web takes POST only.
    let res = w
        .http
        .get(format!("{}{ACCOUNTS}/GetAccount", w.gw.url))
        .header("content-type", "application/grpc-web+proto")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused() {
    let (app, w) = Web::start(&[("BANSO_GATEWAY_MAX_BODY_BYTES", "1024")]).await;
    let mut big = account("Big", "crm-big");
    big.account.as_mut().unwrap().industry = "x".repeat(2000);
    let r = w.call(&format!("{ACCOUNTS}/CreateAccount"), &big, &[]).await;
    assert_eq!(r.code(), 8, "{:?}", r.get("grpc-message"));
    assert!(r.status().message().contains("1024 bytes"), "{:?}", r.status());
    let body = serde_json::to_string(&json!({"account": {"name": "x".repeat(2000)}})).unwrap();
    let (s, _, e) = w.connect("CreateAccount", &body, &[]).await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("resource_exhausted")), "{e}");
    // Within the limit, all is well.
    let r = w.call(&format!("{ACCOUNTS}/CreateAccount"), &account("Small", "crm-small"), &[]).await;
    assert_eq!(r.code(), 0);

    // A client stream (plain gRPC) counts every message against the limit.
    let channel = tonic::transport::Endpoint::from_shared(w.gw.url.clone()).unwrap().connect().await.unwrap();
    let mut client =
        apb::accounts_service_client::AccountsServiceClient::with_interceptor(channel, app.bearer("acme", Role::Admin));
    let rows = (0..4).map(|i| {
        let mut a = account(&format!("Streamed {i}"), &format!("s-{i}")).account.unwrap();
        a.industry = "y".repeat(400);
        apb::ImportAccountsRequest { accounts: vec![a] }
    });
    let e = client.import_accounts(futures::stream::iter(rows)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
}

#[tokio::test]
async fn plain_grpc_over_h2c_goes_through_the_same_proxy_streams_included() {
    let (app, w) = Web::start(&[]).await;
    let channel = tonic::transport::Endpoint::from_shared(w.gw.url.clone()).unwrap().connect().await.unwrap();
    let mut client =
        apb::accounts_service_client::AccountsServiceClient::with_interceptor(channel, app.bearer("acme", Role::Admin));
    let a = client.create_account(account("Direct", "crm-d")).await.unwrap().into_inner();
    let got = client.get_account(apb::GetAccountRequest { id: a.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got.name, "Direct");
    // A client stream (ImportAccounts) passes through as a stream.
    let rows = (0..3).map(|i| apb::ImportAccountsRequest {
        accounts: vec![account(&format!("Imported {i}"), &format!("imp-{i}")).account.unwrap()],
    });
    let done = client.import_accounts(futures::stream::iter(rows)).await.unwrap().into_inner();
    assert_eq!((done.rows, done.created), (3, 3));
    let e = client.get_account(apb::GetAccountRequest { id: String::new() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn rest_keeps_its_two_segment_paths() {
    let (_app, w) = Web::start(&[]).await;
    let res = w
        .http
        .post(format!("{}/v1/accounts", w.gw.url))
        .bearer_auth(&w.token)
        .json(&json!({"name": "Rest", "externalId": "r-1", "lifecycleStage": "LIFECYCLE_STAGE_ADOPTION", "touchModel": "TOUCH_MODEL_TECH"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = w.http.get(format!("{}/v1/accounts", w.gw.url)).bearer_auth(&w.token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = res.json().await.unwrap();
    assert_eq!(list["accounts"][0]["name"], "Rest");
    let res = w.http.get(format!("{}/v1/nothing", w.gw.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers().get("content-type").unwrap(), "application/problem+json");
}

#[tokio::test]
async fn cors_answers_only_the_allowed_origins() {
    let (_app, w) =
        Web::start(&[("BANSO_GATEWAY_CORS_ORIGINS", "http://localhost:5173, https://app.example.com/")]).await;
    let preflight = async |origin: &str| {
        w.http
            .request(reqwest::Method::OPTIONS, format!("{}{ACCOUNTS}/CreateAccount", w.gw.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,x-grpc-web,x-user-agent,authorization,grpc-timeout")
            .send()
            .await
            .unwrap()
    };
    for origin in ["http://localhost:5173", "https://app.example.com"] {
        let res = preflight(origin).await;
        assert!(res.status().is_success(), "{}", res.status());
        let h = res.headers();
        assert_eq!(h.get("access-control-allow-origin").unwrap(), origin);
        let allowed = h.get("access-control-allow-headers").unwrap().to_str().unwrap().to_owned();
        for name in ["authorization", "content-type", "x-grpc-web", "grpc-timeout", "connect-protocol-version"] {
            assert!(allowed.contains(name), "{name} in {allowed}");
        }
        assert!(h.get("access-control-allow-methods").unwrap().to_str().unwrap().contains("POST"));
        assert_eq!(h.get("access-control-max-age").unwrap(), "600");
        assert!(h.get("access-control-allow-credentials").is_none());
    }
    let res = preflight("https://evil.example.com").await;
    assert!(res.headers().get("access-control-allow-origin").is_none(), "{:?}", res.headers());

    // The call itself exposes the gRPC status headers to the page.
    let r = w
        .call(&format!("{ACCOUNTS}/CreateAccount"), &account("Cors", "c-1"), &[("origin", "http://localhost:5173")])
        .await;
    assert_eq!(r.code(), 0);
    assert_eq!(r.headers.get("access-control-allow-origin").unwrap(), "http://localhost:5173");
    let exposed = r.headers.get("access-control-expose-headers").unwrap().to_str().unwrap();
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin", "etag", "x-request-id"] {
        assert!(exposed.contains(name), "{name} in {exposed}");
    }
    let r = w
        .call(
            &format!("{ACCOUNTS}/ListAccounts"),
            &apb::ListAccountsRequest::default(),
            &[("origin", "https://evil.example.com")],
        )
        .await;
    assert!(r.headers.get("access-control-allow-origin").is_none());

    // No origins configured: no CORS headers at all.
    let (_app2, plain) = Web::start(&[]).await;
    let res = plain
        .http
        .request(reqwest::Method::OPTIONS, format!("{}{ACCOUNTS}/CreateAccount", plain.gw.url))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    let cors: Vec<_> = res.headers().keys().filter(|k| k.as_str().starts_with("access-control-")).collect();
    assert!(cors.is_empty(), "{cors:?}");
    let r = plain
        .call(
            &format!("{ACCOUNTS}/ListAccounts"),
            &apb::ListAccountsRequest::default(),
            &[("origin", "http://localhost:5173")],
        )
        .await;
    assert_eq!(r.code(), 0);
    assert!(!r.headers.keys().any(|k| k.as_str().starts_with("access-control-")), "{:?}", r.headers);

    // "*" only when configured so.
    let (_app3, any) = Web::start(&[("BANSO_GATEWAY_CORS_ORIGINS", "*")]).await;
    let r = any
        .call(
            &format!("{ACCOUNTS}/ListAccounts"),
            &apb::ListAccountsRequest::default(),
            &[("origin", "https://anywhere.example")],
        )
        .await;
    assert_eq!(r.headers.get("access-control-allow-origin").unwrap(), "*");
}

#[tokio::test]
async fn connect_json_and_binary_calls_and_errors() {
    let (_app, w) = Web::start(&[]).await;
    let body = json!({"account": {"name": "Acme", "externalId": "crm-1", "lifecycleStage": "LIFECYCLE_STAGE_ADOPTION", "touchModel": "TOUCH_MODEL_TECH"}});
    let (s, h, created) = w.connect("CreateAccount", &body.to_string(), &[]).await;
    assert_eq!(s, StatusCode::OK, "{created}");
    assert_eq!(h.get("content-type").unwrap(), "application/json");
    assert_eq!(created["name"], "Acme");
    // Defaults are printed, as REST prints them.
    assert_eq!((created["industry"].clone(), created["tags"].clone()), (json!(""), json!([])));
    let id = created["id"].as_str().unwrap().to_owned();
    // Both spellings of a field name are read.
    let (s, _, got) = w.connect("GetAccount", &json!({"id": id}).to_string(), &[("connect-timeout-ms", "5000")]).await;
    assert_eq!((s, got.clone()), (StatusCode::OK, created.clone()));
    let (s, _, list) = w.connect("ListAccounts", r#"{"page_size": 10}"#, &[]).await;
    assert_eq!((s, list["accounts"].as_array().unwrap().len()), (StatusCode::OK, 1), "{list}");
    let (s, _, empty) = w.connect("ListAccounts", "", &[]).await;
    assert_eq!((s, empty["nextPageToken"].clone()), (StatusCode::OK, json!("")), "{empty}");

    // Binary Connect: application/proto both ways.
    let res = w
        .http
        .post(format!("{}{ACCOUNTS}/GetAccount", w.gw.url))
        .bearer_auth(&w.token)
        .header("content-type", "application/proto")
        .body(apb::GetAccountRequest { id: id.clone() }.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers().get("content-type").unwrap(), "application/proto");
    let a = apb::Account::decode(res.bytes().await.unwrap()).unwrap();
    assert_eq!(a.name, "Acme");

    // The service's validation: Connect's error body, with the details.
    let (s, _, e) = w.connect("CreateAccount", r#"{"account": {"name": ""}}"#, &[]).await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_argument")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("name"), "{e}");
    let bad =
        e["details"].as_array().unwrap().iter().find(|d| d["type"] == "google.rpc.BadRequest").expect("BadRequest");
    let bytes = B64_NO_PAD.decode(bad["value"].as_str().unwrap()).unwrap();
    let decoded = tonic_types::pb::BadRequest::decode(bytes.as_slice()).unwrap();
    assert!(decoded.field_violations.iter().any(|v| v.field == "account.name"), "{decoded:?}");
    assert!(bad["debug"]["fieldViolations"].as_array().unwrap().iter().any(|v| v["field"] == "account.name"), "{e}");

    // The gateway's own refusals: never a 5xx.
    let (s, _, e) = w.connect("GetAccount", "{not json", &[]).await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_argument")), "{e}");
    let (s, _, e) = w.connect("CreateAccount", r#"{"account": {"nmae": "x"}}"#, &[]).await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_argument")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("nmae"), "{e}");
    // The violation is at the object that holds the unknown name (as REST points to it).
    assert_eq!(e["details"][0]["debug"]["fieldViolations"][0]["field"], "account", "{e}");
    let (s, _, e) = w.connect("GetAccount", r#"{"id": 5}"#, &[]).await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_argument")), "{e}");
    let (s, _, e) = w.connect("GetAccount", "[]", &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, _, e) = w.connect("GetAccount", r#"{"id": "x"}"#, &[("connect-timeout-ms", "soon")]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    // Not served: Connect's code, a 4xx status (as a Connect server answers them).
    let (s, _, e) = w.connect("GetAccount", r#"{"id": "x"}"#, &[("content-encoding", "gzip")]).await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unimplemented")), "{e}");
    let (s, _, e) = w.connect("GetAccount", r#"{"id": "x"}"#, &[("connect-protocol-version", "7")]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, _, e) = w.connect("NoSuchMethod", "{}", &[]).await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::NOT_FOUND, Some("unimplemented")), "{e}");
    let (s, _, e) = w.connect("ImportAccounts", "{}", &[]).await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unimplemented")), "{e}");
    let (s, _, e) = w.connect("GetAccount", r#"{"id": "nope"}"#, &[]).await;
    assert!(matches!(s, StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST), "{s} {e}");
    // No token: the service says so.
    let res = w
        .http
        .post(format!("{}{ACCOUNTS}/ListAccounts", w.gw.url))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "unauthenticated");
    // A content type no protocol uses, and a GET.
    let res = w
        .http
        .post(format!("{}{ACCOUNTS}/ListAccounts", w.gw.url))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "invalid_argument");
    let res = w
        .http
        .get(format!("{}{ACCOUNTS}/ListAccounts", w.gw.url))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}
