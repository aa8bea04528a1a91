//! The Segment-compatible tracking API through a real gateway in front of
//! every service (docs/tracking.md): raw Segment JSON over HTTP with a
//! write key, and the effects read back through Accounts and Health.

mod health;

use banso_proto::{accounts as apb, health as hpb};
use banso_testkit::{TestApp, TestRole as Role};
use banso_tests::TestGateway;
use chrono::{SecondsFormat, Utc};
use health::{create_scorecard, health_until, linear, measure, raw};
use serde_json::{Value, json};

/// A gateway that asks Accounts about keys and users on every request.
async fn setup() -> (TestApp, TestGateway, String) {
    let app = banso_tests::spawn_all().await;
    let gw = banso_tests::spawn_gateway(
        &app,
        &[("BANSO_GATEWAY_WRITE_KEY_TTL_SECS", "0"), ("BANSO_GATEWAY_TRACKING_USER_TTL_SECS", "0")],
    )
    .await;
    let key = write_key(&app, "acme").await;
    (app, gw, key)
}

async fn write_key(app: &TestApp, tenant: &str) -> String {
    health::accounts(app, tenant)
        .create_write_key(apb::CreateWriteKeyRequest {
            write_key: Some(apb::WriteKey { display_name: "tests".into(), ..Default::default() }),
        })
        .await
        .unwrap()
        .into_inner()
        .key
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn at(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// POSTs `body` to `path` with `key` as the Basic user name: the status and the JSON reply.
async fn post(gw: &TestGateway, path: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(format!("{}{path}", gw.url)).json(body);
    if let Some(k) = key {
        req = req.basic_auth(k, Some(""));
    }
    let res = req.send().await.unwrap();
    reply(res).await
}

async fn reply(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let ctype = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let text = res.text().await.unwrap();
    if status >= 400 {
        assert_eq!(ctype, "application/problem+json", "{status}: {text}");
    }
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The counts of an accepted request: (accepted, duplicates, rejected).
fn counts(v: &Value) -> (u64, u64, u64) {
    assert_eq!(v["success"], true, "{v}");
    (v["accepted"].as_u64().unwrap(), v["duplicates"].as_u64().unwrap(), v["rejected"].as_u64().unwrap())
}

fn reasons(v: &Value) -> Vec<(u64, String)> {
    v["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["index"].as_u64().unwrap(), n["reason"].as_str().unwrap().to_owned()))
        .collect()
}

async fn account_by_external_id(app: &TestApp, tenant: &str, external_id: &str) -> Option<apb::Account> {
    let r = health::accounts(app, tenant)
        .list_accounts(apb::ListAccountsRequest { page_size: 1000, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    r.accounts.into_iter().find(|a| a.external_id == external_id)
}

async fn contact(app: &TestApp, tenant: &str, external_id: &str) -> Option<apb::Contact> {
    health::accounts(app, tenant)
        .list_contacts(apb::ListContactsRequest { external_id: external_id.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .contacts
        .into_iter()
        .next()
}

fn attr(a: &apb::Account, name: &str) -> Option<banso_proto::types::attribute_value::Kind> {
    a.custom_attributes.get(name).and_then(|v| v.kind.clone())
}

/// The process's count of tracking events of `kind` with `outcome`.
fn tracked(kind: &str, outcome: &str) -> f64 {
    let name = format!(r#"banso_gateway_tracking_events_total{{type="{kind}",outcome="{outcome}"}}"#);
    let text = banso_kit::telemetry::prometheus().render();
    text.lines().find_map(|l| l.strip_prefix(&name)?.trim().parse().ok()).unwrap_or(0.0)
}

#[tokio::test]
async fn a_batch_upserts_the_account_and_contacts_and_its_usage_reaches_health() {
    let (app, gw, key) = setup().await;
    let batch = json!({
        "batch": [
            // Traits of a user no account is known for yet wait for the user's group.
            {"type": "identify", "userId": "u-3", "messageId": "i-3",
             "traits": {"firstName": "Ken", "lastName": "Mori", "email": "ken@acme.example"}, "timestamp": now()},
            {"type": "group", "userId": "u-1", "groupId": "crm-1", "messageId": "g-1", "timestamp": now(),
             "traits": {"name": "株式会社アクメ", "industry": "Retail", "employees": 120, "plan": "Enterprise",
                        "monthlySpend": 12.5, "createdAt": "2024-03-01T10:00:00Z"}},
            {"type": "group", "userId": "u-3", "groupId": "crm-1", "messageId": "g-3", "timestamp": now()},
            {"type": "identify", "userId": "u-1", "messageId": "i-1", "timestamp": now(),
             "traits": {"name": "Hana Sato", "email": "hana@acme.example", "title": "CTO", "phone": "03"}},
            // The user's account from their group call (no context.groupId).
            {"type": "track", "userId": "u-1", "event": "Report Exported", "messageId": "t-1",
             "properties": {"format": "csv", "rows": 120, "quantity": 3}, "timestamp": now()},
            {"type": "track", "anonymousId": "anon-9", "event": "Report Exported", "messageId": "t-2",
             "context": {"groupId": "crm-1"}, "timestamp": now()},
            {"type": "page", "userId": "u-3", "name": "Pricing", "messageId": "p-1", "timestamp": now()},
            {"type": "screen", "userId": "u-1", "name": "Home", "messageId": "s-1", "timestamp": now()}
        ],
        "sentAt": now()
    });
    let (status, r) = post(&gw, "/v1/batch", Some(&key), &batch).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(counts(&r), (7, 0, 0), "{r}");
    assert_eq!(r["deferred"], 1, "{r}");

    // The account, from the group's traits; unknown traits as custom attributes.
    let a = account_by_external_id(&app, "acme", "crm-1").await.expect("the group made the account");
    assert_eq!(
        (a.name.as_str(), a.industry.as_str(), a.plan_tier.as_str()),
        ("株式会社アクメ", "Retail", "Enterprise")
    );
    assert_eq!(a.employee_count, Some(120));
    use banso_proto::types::attribute_value::Kind as K;
    assert_eq!(attr(&a, "monthly_spend"), Some(K::DoubleValue(12.5)));
    assert!(matches!(attr(&a, "created_at"), Some(K::TimestampValue(_))), "{a:?}");
    // The contacts: by userId, on the account, with the identify's traits (the
    // deferred ones applied when the group came).
    let c1 = contact(&app, "acme", "u-1").await.expect("u-1 is a contact");
    assert_eq!(
        (c1.account_id.as_str(), c1.name.as_str(), c1.email.as_str(), c1.title.as_str()),
        (a.id.as_str(), "Hana Sato", "hana@acme.example", "CTO")
    );
    let c3 = contact(&app, "acme", "u-3").await.expect("u-3 is a contact");
    assert_eq!(
        (c3.account_id.as_str(), c3.name.as_str(), c3.email.as_str()),
        (a.id.as_str(), "Ken Mori", "ken@acme.example")
    );

    // The usage, in Health's rollups of the account.
    let admin = health::health(&app, "acme", Role::Admin);
    let card = hpb::Scorecard {
        name: "Tracked".into(),
        measures: ["events_1d:report_exported", "events_1d:page:pricing", "events_1d:screen:home", "active_users_1d"]
            .iter()
            .map(|m| measure(m, 1.0, linear(0.0, 100.0)))
            .collect(),
        ..Default::default()
    };
    create_scorecard(&admin, card).await;
    let h = health_until(&admin, &a.id, |h| raw(h, "events_1d:report_exported") == Some(2.0)).await;
    let h = if raw(&h, "events_1d:screen:home") == Some(1.0) {
        h
    } else {
        health_until(&admin, &a.id, |h| raw(h, "events_1d:screen:home") == Some(1.0)).await
    };
    assert_eq!(raw(&h, "events_1d:page:pricing"), Some(1.0));
    // u-1, u-3 and the anonymous user.
    assert_eq!(raw(&h, "active_users_1d"), Some(3.0));

    // A later group adds custom attributes to those the account has.
    let more = json!({"userId": "u-1", "groupId": "crm-1", "traits": {"seats": 40}, "messageId": "g-more"});
    let (status, r) = post(&gw, "/v1/group", Some(&key), &more).await;
    assert_eq!((status, counts(&r)), (200, (1, 0, 0)), "{r}");
    let a = account_by_external_id(&app, "acme", "crm-1").await.unwrap();
    assert_eq!(attr(&a, "seats"), Some(K::IntValue(40)));
    assert_eq!(attr(&a, "monthly_spend"), Some(K::DoubleValue(12.5)));
    assert_eq!(a.name, "株式会社アクメ", "a group without a name keeps the account's");

    // Contacts do not move: u-1 grouped into another account is refused,
    // though that account is upserted.
    let other = json!({"userId": "u-1", "groupId": "crm-2", "traits": {"name": "Other"}, "messageId": "g-other"});
    let (status, r) = post(&gw, "/v1/group", Some(&key), &other).await;
    assert_eq!(status, 200);
    assert_eq!(reasons(&r), [(0, "CONTACT_ON_OTHER_ACCOUNT".to_owned())], "{r}");
    assert!(account_by_external_id(&app, "acme", "crm-2").await.is_some());
    assert_eq!(contact(&app, "acme", "u-1").await.unwrap().account_id, c1.account_id);
}

#[tokio::test]
async fn a_retried_batch_counts_each_message_once() {
    let (app, gw, key) = setup().await;
    let t = now();
    let batch = json!({"batch": [
        {"type": "group", "userId": "u", "groupId": "crm-r", "traits": {"name": "Retry"}, "messageId": "g"},
        {"type": "track", "userId": "u", "event": "login", "messageId": "m-1", "timestamp": t},
        {"type": "track", "userId": "u", "event": "login", "messageId": "m-2", "timestamp": t},
        {"type": "track", "userId": "u", "event": "login", "messageId": "m-2", "timestamp": t}
    ]});
    let (status, r) = post(&gw, "/v1/batch", Some(&key), &batch).await;
    assert_eq!((status, counts(&r)), (200, (3, 1, 0)), "{r}");
    // Segment's libraries send the whole batch again after a 5xx or a lost reply.
    let (status, r) = post(&gw, "/v1/batch", Some(&key), &batch).await;
    assert_eq!((status, counts(&r)), (200, (1, 3, 0)), "the group is applied again (unchanged): {r}");

    let a = account_by_external_id(&app, "acme", "crm-r").await.unwrap();
    let admin = health::health(&app, "acme", Role::Admin);
    let card = hpb::Scorecard {
        name: "Logins".into(),
        measures: vec![measure("events_1d:login", 1.0, linear(0.0, 100.0))],
        ..Default::default()
    };
    create_scorecard(&admin, card).await;
    let h = health_until(&admin, &a.id, |h| raw(h, "events_1d:login").is_some()).await;
    assert_eq!(raw(&h, "events_1d:login"), Some(2.0));
}

#[tokio::test]
async fn client_clock_skew_is_corrected_with_sent_at() {
    let (_app, gw, key) = setup().await;
    let group = json!({"userId": "u", "groupId": "crm-s", "messageId": "g"});
    assert_eq!(post(&gw, "/v1/group", Some(&key), &group).await.0, 200);
    let real = Utc::now();
    // A device whose clock is 2 hours fast, one 10 days slow: uncorrected,
    // their events would be IN_FUTURE and TOO_OLD.
    let fast = real + chrono::Duration::hours(2);
    let slow = real - chrono::Duration::days(10);
    let batch = json!({"batch": [
        {"type": "track", "userId": "u", "event": "fast", "messageId": "f",
         "timestamp": at(fast - chrono::Duration::seconds(30)), "sentAt": at(fast)},
        // The batch's sentAt serves a message without its own.
        {"type": "track", "userId": "u", "event": "slow", "messageId": "s",
         "originalTimestamp": at(slow - chrono::Duration::seconds(30)), "timestamp": at(slow)}
    ], "sentAt": at(slow)});
    let (status, r) = post(&gw, "/v1/batch", Some(&key), &batch).await;
    assert_eq!((status, counts(&r)), (200, (2, 0, 0)), "{r}");
    // Without sentAt the device's time stands: two hours ahead is refused.
    let ahead = json!({"userId": "u", "event": "ahead", "messageId": "a", "timestamp": at(fast)});
    let (status, r) = post(&gw, "/v1/track", Some(&key), &ahead).await;
    assert_eq!(status, 200);
    assert_eq!(reasons(&r), [(0, "IN_FUTURE".to_owned())], "{r}");
}

#[tokio::test]
async fn bad_missing_and_foreign_keys_are_401() {
    let (app, gw, key) = setup().await;
    let track = json!({"userId": "u", "event": "x", "context": {"groupId": "g"}});
    let secret = key.rsplit('.').next().unwrap();
    let globex_key = write_key(&app, "globex").await;
    for (bad, code) in [
        (None, "WRITE_KEY_MISSING"),
        (Some("nonsense".to_owned()), "WRITE_KEY_INVALID"),
        (Some(format!("bk.acme.{}", "A".repeat(43))), "WRITE_KEY_INVALID"),
        // acme's secret under globex's name is no key of globex's.
        (Some(format!("bk.globex.{secret}")), "WRITE_KEY_INVALID"),
        (Some(globex_key.replacen("bk.globex.", "bk.acme.", 1)), "WRITE_KEY_INVALID"),
    ] {
        let (status, r) = post(&gw, "/v1/track", bad.as_deref(), &track).await;
        assert_eq!((status, r["code"].as_str().unwrap()), (401, code), "{bad:?}: {r}");
        assert!(!r.to_string().contains(secret), "the secret is echoed: {r}");
    }
    // A bearer token is not a write key; a malformed Basic header is refused.
    let res = reqwest::Client::new()
        .post(format!("{}/v1/track", gw.url))
        .bearer_auth(app.token("acme", Role::Admin))
        .json(&track)
        .send()
        .await
        .unwrap();
    assert_eq!(reply(res).await.0, 401);
    let res = reqwest::Client::new()
        .post(format!("{}/v1/track", gw.url))
        .header("authorization", "Basic %%%")
        .json(&track)
        .send()
        .await
        .unwrap();
    assert_eq!(reply(res).await.0, 401);
    // The body's writeKey serves, as Segment's libraries also send it.
    let mut with_key = track.clone();
    with_key["writeKey"] = json!(key);
    let (status, r) = post(&gw, "/v1/track", None, &with_key).await;
    assert_eq!(status, 200, "{r}");
}

#[tokio::test]
async fn a_revoked_key_is_refused_once_the_cache_lets_go() {
    let (app, gw, key) = setup().await;
    // A second gateway that trusts a verified key for an hour.
    let cached = banso_tests::spawn_gateway(&app, &[("BANSO_GATEWAY_WRITE_KEY_TTL_SECS", "3600")]).await;
    let track = json!({"userId": "u", "event": "x", "context": {"groupId": "g"}});
    assert_eq!(post(&gw, "/v1/track", Some(&key), &track).await.0, 200);
    assert_eq!(post(&cached, "/v1/track", Some(&key), &track).await.0, 200);

    let mut accounts = health::accounts(&app, "acme");
    let keys = accounts.list_write_keys(apb::ListWriteKeysRequest::default()).await.unwrap().into_inner();
    let id = keys.write_keys[0].id.clone();
    accounts.revoke_write_key(apb::RevokeWriteKeyRequest { id }).await.unwrap();

    let (status, r) = post(&gw, "/v1/track", Some(&key), &track).await;
    assert_eq!((status, r["code"].as_str()), (401, Some("WRITE_KEY_INVALID")), "{r}");
    // Within its TTL the other gateway still takes the key (docs/tracking.md).
    assert_eq!(post(&cached, "/v1/track", Some(&key), &track).await.0, 200);
}

#[tokio::test]
async fn messages_that_cannot_land_are_counted_not_failed() {
    let (app, gw, key) = setup().await;
    // globex has crm-g; acme's key cannot reach it.
    let globex_key = write_key(&app, "globex").await;
    let g = json!({"userId": "x", "groupId": "crm-g", "messageId": "g"});
    assert_eq!(post(&gw, "/v1/group", Some(&globex_key), &g).await.0, 200);
    let known = json!({"userId": "known", "groupId": "crm-k", "messageId": "g-k"});
    assert_eq!(post(&gw, "/v1/group", Some(&key), &known).await.0, 200);

    let rejected_before = tracked("track", "rejected");
    let batch = json!({"batch": [
        {"type": "track", "userId": "u", "event": "x", "messageId": "1", "context": {"groupId": "nobody"}},
        {"type": "track", "userId": "u", "event": "x", "messageId": "2", "context": {"groupId": "crm-g"}},
        {"type": "track", "userId": "stranger", "event": "x", "messageId": "3"},
        {"type": "track", "anonymousId": "a", "event": "x", "messageId": "4"},
        {"type": "track", "userId": "known", "messageId": "5"},
        {"type": "teleport", "userId": "known", "messageId": "6"},
        "not an object",
        {"type": "alias", "userId": "known", "previousId": "old", "messageId": "8"},
        {"type": "identify", "anonymousId": "a", "traits": {"name": "?"}, "messageId": "9"},
        {"type": "identify", "userId": "known", "traits": {"email": "not-an-email"}, "messageId": "10"},
        {"type": "track", "userId": "known", "event": "ok", "messageId": "11"},
        {"type": "track", "userId": "known", "event": "x", "messageId": "12", "timestamp": "last tuesday"},
        {"type": "track", "userId": "known", "event": "big", "messageId": "13",
         "properties": {"blob": "z".repeat(40 * 1024)}}
    ]});
    let (status, r) = post(&gw, "/v1/batch", Some(&key), &batch).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["accepted"], 1, "{r}");
    assert_eq!(r["skipped"], 1, "{r}");
    let got = reasons(&r);
    let want = [
        (0, "UNKNOWN_ACCOUNT"),
        (1, "UNKNOWN_ACCOUNT"),
        (2, "NO_ACCOUNT"),
        (3, "NO_ACCOUNT"),
        (4, "INVALID"),
        (5, "INVALID"),
        (6, "INVALID"),
        (7, "UNSUPPORTED"),
        (8, "NO_USER_ID"),
        (9, "INVALID_ARGUMENT"),
        (11, "INVALID"),
        (12, "TOO_LARGE"),
    ];
    assert_eq!(got, want.map(|(i, r)| (i, r.to_owned())), "{r}");
    // Counted in the process's metrics (other tests may add to them meanwhile).
    assert!(tracked("track", "rejected") - rejected_before >= 7.0);
    assert!(tracked("alias", "skipped") >= 1.0);
}

#[tokio::test]
async fn unreadable_requests_are_4xx_problems() {
    let (_app, gw, key) = setup().await;
    let client = reqwest::Client::new();
    let send = |path: &str, body: Vec<u8>, encoding: Option<&str>| {
        let mut req = client.post(format!("{}{path}", gw.url)).basic_auth(&key, Some("")).body(body);
        req = req.header("content-type", "application/json");
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        async move { reply(req.send().await.unwrap()).await }
    };
    for (body, code, status) in [
        (&b"{not json"[..], "MALFORMED_JSON", 400),
        (b"[]", "MALFORMED_JSON", 400),
        (b"{}", "INVALID_ARGUMENT", 400),
        (br#"{"batch": {}}"#, "INVALID_ARGUMENT", 400),
        (br#"{"batch": [], "sentAt": "soon"}"#, "INVALID_ARGUMENT", 400),
    ] {
        let (s, r) = send("/v1/batch", body.to_vec(), None).await;
        assert_eq!((s, r["code"].as_str().unwrap()), (status, code), "{}: {r}", String::from_utf8_lossy(body));
    }
    let (s, r) = send("/v1/batch", br#"{"batch": []}"#.to_vec(), None).await;
    assert_eq!((s, counts(&r)), (200, (0, 0, 0)));

    // Past Segment's limits: 500 KB a batch, 32 KB a single message.
    let big = json!({"batch": [{"type": "track", "event": "x", "properties": {"p": "y".repeat(600 * 1024)}}]});
    let (s, r) = send("/v1/batch", serde_json::to_vec(&big).unwrap(), None).await;
    assert_eq!((s, r["code"].as_str()), (413, Some("BODY_TOO_LARGE")), "{r}");
    let one = json!({"event": "x", "properties": {"p": "y".repeat(33 * 1024)}});
    let (s, _) = send("/v1/track", serde_json::to_vec(&one).unwrap(), None).await;
    assert_eq!(s, 413);

    // gzip bodies are read; others are refused.
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"{"batch": [{"type": "alias", "userId": "a", "previousId": "b"}]}"#).unwrap();
    let (s, r) = send("/v1/batch", gz.finish().unwrap(), Some("gzip")).await;
    assert_eq!((s, r["skipped"].as_u64()), (200, Some(1)), "{r}");
    let (s, _) = send("/v1/batch", b"not gzip".to_vec(), Some("gzip")).await;
    assert_eq!(s, 400);
    let (s, _) = send("/v1/batch", b"{}".to_vec(), Some("br")).await;
    assert_eq!(s, 415);

    // Only POST.
    let res = client.get(format!("{}/v1/track", gw.url)).send().await.unwrap();
    assert_eq!(res.headers().get("allow").unwrap(), "POST");
    assert_eq!(reply(res).await.0, 405);
}

#[tokio::test]
async fn without_a_signing_key_the_api_is_off() {
    let app = banso_tests::spawn_all().await;
    let gw = banso_tests::spawn_gateway(&app, &[("BANSO_JWT_HS256_SECRET", "")]).await;
    let (status, r) = post(&gw, "/v1/track", Some("bk.acme.x"), &json!({"event": "x"})).await;
    assert_eq!((status, r["code"].as_str()), (503, Some("TRACKING_DISABLED")), "{r}");
}

#[tokio::test]
async fn usage_of_an_account_made_in_the_same_batch_waits_for_health_to_know_it() {
    let (app, gw, key) = setup().await;
    // Many new accounts at once, each used right away.
    let mut batch = Vec::new();
    for i in 0..20 {
        batch.push(json!({"type": "group", "userId": format!("u{i}"), "groupId": format!("crm-{i}"), "messageId": format!("g{i}")}));
        batch.push(json!({"type": "track", "userId": format!("u{i}"), "event": "login", "messageId": format!("t{i}")}));
    }
    let (status, r) = post(&gw, "/v1/batch", Some(&key), &json!({"batch": batch})).await;
    assert_eq!((status, counts(&r)), (200, (40, 0, 0)), "{r}");
    let a = account_by_external_id(&app, "acme", "crm-7").await.unwrap();
    let admin = health::health(&app, "acme", Role::Admin);
    let card = hpb::Scorecard {
        name: "Logins".into(),
        measures: vec![measure("events_1d:login", 1.0, linear(0.0, 100.0))],
        ..Default::default()
    };
    create_scorecard(&admin, card).await;
    let h = health_until(&admin, &a.id, |h| raw(h, "events_1d:login").is_some()).await;
    assert_eq!(raw(&h, "events_1d:login"), Some(1.0));
}
