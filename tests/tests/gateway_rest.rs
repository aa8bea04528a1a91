//! REST/JSON through the gateway: every RPC reachable by its
//! google.api.http rule, proto3 JSON both ways, problems for bad requests.

use banso_kit::auth::Role;
use banso_tests::{TestGateway, spawn_all, spawn_gateway};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

struct Rest {
    http: Client,
    gw: TestGateway,
    token: String,
}

impl Rest {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.raw(method, path, body.map(|b| b.to_string()), &[]).await
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.gw.url)).bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.send().await.expect("gateway answers");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(
                headers.get("content-type").map(|v| v.to_str().unwrap()),
                Some("application/problem+json"),
                "{status}: {json}"
            );
            assert!(!status.is_server_error(), "{path}: {status} {json}");
        }
        (status, headers, json)
    }
}

async fn rest() -> (banso_testkit::TestApp, Rest) {
    let app = spawn_all().await;
    let gw = spawn_gateway(&app, &[]).await;
    let token = app.token("acme", Role::Admin);
    (app, Rest { http: Client::new(), gw, token })
}

fn account(name: &str, ext: &str) -> Value {
    json!({"name": name, "externalId": ext, "lifecycleStage": "LIFECYCLE_STAGE_ADOPTION", "touchModel": "TOUCH_MODEL_TECH"})
}

#[tokio::test]
async fn accounts_are_created_listed_patched_with_if_match_and_deleted() {
    let (_app, r) = rest().await;
    let (s, h, a) = r.call(Method::POST, "/v1/accounts", Some(account("Acme", "crm-1"))).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let id = a["id"].as_str().unwrap().to_owned();
    let etag = h.get("etag").unwrap().to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", a["etag"].as_str().unwrap()));
    // Defaults are printed: no field a frontend must guess about.
    assert_eq!(a["industry"], json!(""));
    assert_eq!(a["tags"], json!([]));

    let (s, _, got) = r.call(Method::GET, &format!("/v1/accounts/{id}"), None).await;
    assert_eq!((s, got["name"].clone()), (StatusCode::OK, json!("Acme")));

    r.call(Method::POST, "/v1/accounts", Some(account("Beta", "crm-2"))).await;
    let (s, _, list) = r.call(Method::GET, "/v1/accounts?pageSize=1&orderBy=name", None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["accounts"].as_array().unwrap().len(), 1);
    let next = list["nextPageToken"].as_str().unwrap();
    assert!(!next.is_empty());
    let (_, _, page2) =
        r.call(Method::GET, &format!("/v1/accounts?pageSize=1&orderBy=name&page_token={next}"), None).await;
    assert_eq!(page2["accounts"][0]["name"], json!("Beta"));
    // Filters through nested, repeated query parameters.
    let (s, _, f) = r
        .call(Method::GET, "/v1/accounts?filter.lifecycleStages=LIFECYCLE_STAGE_ADOPTION&filter.lifecycle_stages=LIFECYCLE_STAGE_RENEWAL", None)
        .await;
    assert_eq!((s, f["accounts"].as_array().unwrap().len()), (StatusCode::OK, 2), "{f}");

    // PATCH with the mask in the query (lowerCamelCase, comma-separated).
    let path = format!("/v1/accounts/{id}?updateMask=industry,planTier");
    let body = json!({"industry": "Retail", "planTier": "gold"}).to_string();
    let patch = async |etag: &str| r.raw(Method::PATCH, &path, Some(body.clone()), &[("if-match", etag)]).await;
    let (s, h2, updated) = patch(&etag).await;
    assert_eq!(s, StatusCode::OK, "{updated}");
    assert_eq!((updated["industry"].clone(), updated["planTier"].clone()), (json!("Retail"), json!("gold")));
    // The old etag is stale now: 412.
    let (s, _, p) = patch(&etag).await;
    assert_eq!((s, p["code"].clone()), (StatusCode::PRECONDITION_FAILED, json!("ETAG_MISMATCH")), "{p}");
    let fresh = h2.get("etag").unwrap().to_str().unwrap().to_owned();

    let (s, _, p) = r.raw(Method::DELETE, &format!("/v1/accounts/{id}"), None, &[("if-match", &etag)]).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{p}");
    let (s, _, _) = r.raw(Method::DELETE, &format!("/v1/accounts/{id}"), None, &[("if-match", &fresh)]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, p) = r.call(Method::GET, &format!("/v1/accounts/{id}"), None).await;
    assert_eq!((s, p["code"].clone()), (StatusCode::NOT_FOUND, json!("NOT_FOUND")));
}

#[tokio::test]
async fn bad_requests_are_problem_documents_naming_the_field() {
    let (_app, r) = rest().await;
    // The service's own validation: field violations with JSON pointers.
    let (s, _, p) = r.call(Method::POST, "/v1/accounts", Some(json!({"externalId": "x"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{p}");
    assert!(p["errors"].as_array().unwrap().iter().any(|e| e["pointer"] == json!("#/account/name")), "{p}");
    assert_eq!(p["type"], json!("https://banso.dev/errors/invalid-argument"));

    // The gateway's: unknown fields, wrong types, malformed JSON.
    let (s, _, p) = r.call(Method::POST, "/v1/accounts", Some(json!({"name": "A", "colour": "red"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(p["detail"].as_str().unwrap().contains("colour"), "{p}");
    let (s, _, p) = r.call(Method::POST, "/v1/accounts", Some(json!({"name": "A", "employeeCount": "many"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(p["errors"][0]["pointer"], json!("#/account/employeeCount"), "{p}");
    let (s, _, p) = r.raw(Method::POST, "/v1/accounts", Some("{\"name\": ".into()), &[]).await;
    assert_eq!((s, p["code"].clone()), (StatusCode::BAD_REQUEST, json!("INVALID_ARGUMENT")));
    let (s, _, _) = r.raw(Method::POST, "/v1/accounts", Some("[1,2]".into()), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Query parameters: unknown, given twice, not a boolean, a message.
    for q in ["nope=1", "pageSize=1&pageSize=2", "filter=x", "pageSize=ten"] {
        let (s, _, p) = r.call(Method::GET, &format!("/v1/accounts?{q}"), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {p}");
    }
    // A body where the route takes none.
    let (s, _, _) = r.raw(Method::GET, "/v1/accounts", Some("{\"a\":1}".into()), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Routes: unknown path 404, known path with another method 405.
    let (s, _, p) = r.call(Method::GET, "/v1/nowhere", None).await;
    assert_eq!((s, p["code"].clone()), (StatusCode::NOT_FOUND, json!("ROUTE_NOT_FOUND")));
    let (s, h, _) = r.call(Method::PUT, "/v1/accounts", None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(h.get("allow").unwrap().to_str().unwrap().contains("GET"));
    // No token: the service says 401.
    let res = r.http.get(format!("{}/v1/accounts", r.gw.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = spawn_all().await;
    let gw = spawn_gateway(&app, &[("BANSO_GATEWAY_MAX_BODY_BYTES", "2048")]).await;
    let r = Rest { http: Client::new(), gw, token: app.token("acme", Role::Admin) };
    let big = json!({"name": "x".repeat(4096)});
    let (s, _, p) = r.call(Method::POST, "/v1/accounts", Some(big)).await;
    assert_eq!((s, p["code"].clone()), (StatusCode::PAYLOAD_TOO_LARGE, json!("BODY_TOO_LARGE")));
}

#[tokio::test]
async fn client_streaming_rpcs_take_ndjson() {
    let (_app, r) = rest().await;
    let lines = (0..3)
        .map(|i| json!({"accounts": [account(&format!("N{i}"), &format!("nd-{i}"))]}).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let (s, _, out) = r.raw(Method::POST, "/v1/accounts:import", Some(lines), &[]).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let (_, _, list) = r.call(Method::GET, "/v1/accounts?pageSize=10", None).await;
    assert_eq!(list["accounts"].as_array().unwrap().len(), 3, "{out}");
    // A bad line is named.
    let (s, _, p) =
        r.raw(Method::POST, "/v1/accounts:import", Some("{\"accounts\": []}\n{\"acounts\": 1}".into()), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(p["errors"][0]["field"].as_str().unwrap().starts_with("[1]"), "{p}");
}

#[tokio::test]
async fn the_openapi_document_is_served() {
    let (_app, r) = rest().await;
    let doc: Value = r.http.get(format!("{}/openapi.json", r.gw.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], json!("3.1.0"));
}
