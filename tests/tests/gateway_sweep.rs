//! Generated bad input over every REST route: whatever arrives, the answer
//! is a response the API describes — never a 5xx, every error a problem
//! document. (schemathesis does the same from the OpenAPI document in
//! .ci/e2e.sh; this runs in every `cargo test`.)

use banso_gateway::routes::{RouteTable, Segment};
use banso_kit::auth::Role;
use banso_tests::{spawn_all, spawn_gateway};
use reqwest::{Client, Method};

const BAD_VALUES: &[&str] =
    &["x", "%00", "..%2F..", "%FF%FE", "0", "-1", "99999999999999999999999", "%E2%80%AE", "a%20b"];

const BAD_BODIES: &[&[u8]] = &[
    b"",
    b"{}",
    b"null",
    b"[]",
    b"\"text\"",
    b"{\"unknown\": 1}",
    b"{\"name\": 12, \"pageSize\": \"x\"}",
    b"{\"a\": ",
    b"\xff\xfe\x00",
    b"{\"id\": {\"nested\": [1, 2, {\"deep\": null}]}}",
    b"[{\"events\": [{\"eventId\": 1}]}]",
];

const BAD_QUERIES: &[&str] = &[
    "",
    "pageSize=-1",
    "pageSize=99999999999",
    "pageToken=%00%FF",
    "nope=1",
    "updateMask=a..b,%00",
    "filter.lifecycleStages=NOT_A_STAGE",
    "pageSize=1&pageSize=2",
    "startTime=yesterday",
    "skipContributions=maybe",
];

#[tokio::test]
async fn no_route_answers_a_server_error_to_bad_input() {
    let app = spawn_all().await;
    let gw = spawn_gateway(&app, &[("BANSO_GATEWAY_RATE_LIMIT", "0")]).await;
    let token = app.token("acme", Role::Admin);
    let http = Client::new();
    let routes = RouteTable::build(&banso_gateway::descriptor_pool().unwrap()).unwrap();
    let mut calls = 0;
    let mut anonymous = 0;
    for route in &routes.routes {
        // The survey answer path takes no token: it gets everything
        // without one too (its token, in the path, gets the bad values).
        let public = banso_kit::auth::is_public_service(route.method.parent_service().full_name());
        for (i, value) in BAD_VALUES.iter().enumerate() {
            let mut path = String::new();
            for s in &route.segments {
                path.push('/');
                match s {
                    Segment::Literal(l) => path.push_str(l),
                    _ => path.push_str(value),
                }
            }
            if let Some(v) = &route.verb {
                path.push(':');
                path.push_str(v);
            }
            let body = BAD_BODIES[i % BAD_BODIES.len()];
            let queries = [BAD_QUERIES[i % BAD_QUERIES.len()], BAD_QUERIES[(i + 3) % BAD_QUERIES.len()]];
            let bearers = if public { vec![Some(&token), None] } else { vec![Some(&token)] };
            for (query, bearer) in queries.iter().flat_map(|q| bearers.iter().map(move |b| (q, *b))) {
                let url = format!("{}{path}?{query}", gw.url);
                let method = Method::from_bytes(route.http_method.as_str().as_bytes()).unwrap();
                let mut req = http.request(method, &url);
                if let Some(t) = bearer {
                    req = req.bearer_auth(t);
                } else {
                    anonymous += 1;
                }
                let res = req
                    .header("content-type", "application/json")
                    .header("if-match", "\"v1\"")
                    .body(body.to_vec())
                    .send()
                    .await
                    .unwrap();
                calls += 1;
                let status = res.status();
                let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let text = res.text().await.unwrap();
                assert!(
                    bearer.is_some() || ![401, 403].contains(&status.as_u16()),
                    "{url} without a token: {status} {text}"
                );
                assert!(
                    status.as_u16() < 500,
                    "{} {url} body {:?}: {status} {text}",
                    route.http_method,
                    String::from_utf8_lossy(body)
                );
                if !status.is_success() {
                    assert_eq!(ct, "application/problem+json", "{url}: {status} {text}");
                    let p: serde_json::Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(p["status"].as_u64(), Some(u64::from(status.as_u16())), "{text}");
                    assert!(text.len() < 8 * 1024, "{url}: a {} byte problem", text.len());
                }
            }
        }
    }
    assert!(calls > 500, "{calls} calls");
    assert!(anonymous > 0, "no route is public: the answer path went unswept without a token");
}

#[tokio::test]
async fn request_ids_are_kept_or_made_and_rate_limits_answer_429() {
    let app = spawn_all().await;
    let gw = spawn_gateway(&app, &[("BANSO_GATEWAY_RATE_LIMIT", "1"), ("BANSO_GATEWAY_RATE_BURST", "2")]).await;
    let token = app.token("acme", Role::Admin);
    let http = Client::new();
    let get = |id: Option<&str>| {
        let mut r = http.get(format!("{}/v1/accounts", gw.url)).bearer_auth(&token);
        if let Some(id) = id {
            r = r.header("x-request-id", id);
        }
        r.send()
    };
    let res = get(Some("req-42")).await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "req-42");
    let res = get(None).await.unwrap();
    assert_eq!(res.headers()["x-request-id"].len(), 36, "a UUID is made when none is given");
    // The burst of 2 is spent: within the next calls (faster than one a
    // second, however slow the machine) one is refused.
    let mut refused = None;
    for _ in 0..6 {
        let res = get(None).await.unwrap();
        if res.status() == 429 {
            refused = Some(res);
            break;
        }
    }
    let res = refused.expect("a call past the burst is refused");
    assert!(res.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    // Another tenant has its own bucket.
    let other =
        http.get(format!("{}/v1/accounts", gw.url)).bearer_auth(app.token("globex", Role::Admin)).send().await.unwrap();
    assert_eq!(other.status(), 200);
}
