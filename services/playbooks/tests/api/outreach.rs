//! Outreach webhooks through the real API: endpoints (the SSRF guard, the
//! secret shown once, rotation), signed deliveries verified by a receiver
//! on 127.0.0.1, retries, dead letters and redelivery, the fatigue budget
//! across playbooks, simulation, tenancy and roles.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU16, Ordering},
    },
};

use axum::{body::Bytes, extract::State, http::HeaderMap, http::StatusCode};
use banso_events::Payload;
use banso_proto::{accounts as apb, events as ev, health::Band, playbooks as pb, types as tpb};
use banso_testkit::TestApp;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tonic::Code;

use crate::common::*;

type Outreach = pb::outreach_service_client::OutreachServiceClient<
    tonic::codegen::InterceptedService<tonic::transport::Channel, banso_testkit::Bearer>,
>;

fn outreach(app: &TestApp, tenant: &str, role: Role) -> Outreach {
    pb::outreach_service_client::OutreachServiceClient::with_interceptor(app.channel.clone(), app.bearer(tenant, role))
}

/// The service with webhooks allowed to reach the receiver on 127.0.0.1
/// over http, quick retries and three attempts.
async fn spawn_local() -> TestApp {
    spawn_allowing(true).await
}

async fn spawn_allowing(private: bool) -> TestApp {
    let vars = [
        ("BANSO_PLAYBOOKS_WEBHOOK_ALLOW_HTTP", "true"),
        ("BANSO_PLAYBOOKS_WEBHOOK_ALLOW_PRIVATE", if private { "true" } else { "false" }),
        ("BANSO_PLAYBOOKS_WEBHOOK_BASE_DELAY_MS", "50"),
        ("BANSO_PLAYBOOKS_WEBHOOK_MAX_ATTEMPTS", "3"),
    ];
    let options = banso_testkit::Options {
        vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    };
    banso_testkit::spawn_with(options, &[&banso_playbooks::SERVICE]).await.expect("test server starts")
}

/// A webhook receiver: records every request, answers with the scripted
/// statuses first, then with `otherwise`.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    otherwise: Arc<AtomicU16>,
}

impl Receiver {
    async fn start(script: &[u16], otherwise: u16) -> (Receiver, String) {
        let r = Receiver {
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            otherwise: Arc::new(AtomicU16::new(otherwise)),
            ..Default::default()
        };
        let router = axum::Router::new().route("/hook", axum::routing::post(answer)).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        (r, format!("http://{addr}/hook"))
    }

    fn requests(&self) -> Vec<(HeaderMap, Bytes)> {
        self.got.lock().unwrap().clone()
    }
}

async fn answer(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.got.lock().unwrap().push((headers, body));
    let s = r.script.lock().unwrap().pop_front().unwrap_or_else(|| r.otherwise.load(Ordering::SeqCst));
    StatusCode::from_u16(s).unwrap()
}

/// Whether one of the `v1=` signatures is HMAC-SHA256(secret, "<t>.<body>").
fn verifies(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let sig = headers["banso-signature"].to_str().unwrap();
    let t = sig.split(',').find_map(|p| p.strip_prefix("t=")).expect("t= in the signature");
    assert_eq!(headers["banso-webhook-timestamp"].to_str().unwrap(), t);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    sig.split(',').filter_map(|p| p.strip_prefix("v1=")).any(|v| v == want)
}

async fn endpoint(o: &mut Outreach, url: &str) -> pb::WebhookEndpoint {
    o.create_webhook_endpoint(pb::CreateWebhookEndpointRequest {
        endpoint: Some(pb::WebhookEndpoint {
            display_name: "Marketing automation".into(),
            url: url.into(),
            enabled: true,
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
}

fn send(endpoint: &str, roles: &[&str]) -> pb::Action {
    pb::Action {
        touch_models: vec![],
        kind: Some(pb::action::Kind::SendOutreach(pb::SendOutreachAction {
            endpoint_id: endpoint.into(),
            subject_template: "{{account.name}} needs a hand".into(),
            body_template: "Playbook {{playbook.name}} ({{trigger.kind}})".into(),
            contact_roles: roles.iter().map(|r| r.to_string()).collect(),
        })),
    }
}

fn manual(name: &str, action: pb::Action) -> pb::Playbook {
    pb::Playbook {
        display_name: name.into(),
        trigger: Some(pb::Trigger { kind: Some(pb::trigger::Kind::Manual(pb::ManualTrigger {})) }),
        actions: vec![action],
        ..Default::default()
    }
}

/// Publishes a contact (before its account, so one wait covers both).
async fn contact(app: &TestApp, account: &apb::Account, name: &str, champion: bool) -> apb::Contact {
    let c = apb::Contact {
        id: uuid::Uuid::now_v7().to_string(),
        account_id: account.id.clone(),
        name: name.into(),
        email: format!("{}@example.com", name.to_lowercase()),
        title: "VP Operations".into(),
        champion,
        ..Default::default()
    };
    let change = ev::contact_changed::Change::Created as i32;
    publish(app, TENANT, "accounts", Payload::ContactChanged(ev::ContactChanged { change, contact: Some(c.clone()) }))
        .await;
    c
}

async fn run(c: &mut Client, playbook: &str, account: &str) -> pb::Firing {
    let r = c
        .run_playbook(pb::RunPlaybookRequest {
            id: playbook.into(),
            account_ids: vec![account.into()],
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    r.firings.into_iter().next().expect("a firing")
}

async fn deliveries(o: &mut Outreach, account: &str, status: pb::DeliveryStatus) -> Vec<pb::Delivery> {
    o.list_deliveries(pb::ListDeliveriesRequest {
        account_id: account.into(),
        status: status as i32,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .deliveries
}

async fn settled(o: &Outreach, id: &str, status: pb::DeliveryStatus) -> pb::Delivery {
    until("the delivery settles", || {
        let mut o = o.clone();
        let id = id.to_string();
        async move {
            let d = o.get_delivery(pb::GetDeliveryRequest { id }).await.unwrap().into_inner();
            (d.status == status as i32).then_some(d)
        }
    })
    .await
}

#[tokio::test]
async fn a_red_account_sends_a_signed_webhook_the_receiver_verifies() {
    let app = spawn_local().await;
    let mut c = admin(&app);
    let mut o = outreach(&app, TENANT, Role::Admin);
    let (rx, url) = Receiver::start(&[], 200).await;
    let e = endpoint(&mut o, &url).await;
    assert!(e.signing_secret.starts_with("whsec_"), "{e:?}");
    let got = o.get_webhook_endpoint(pb::GetWebhookEndpointRequest { id: e.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got.signing_secret, "", "the secret is shown once");

    let mut p = red_playbook("Red outreach");
    p.actions = vec![send(&e.id, &[])];
    let p = create_enabled(&mut c, p).await;
    let a = account("Acme Corp", "csm-ann", tpb::TouchModel::Tech);
    let ann = contact(&app, &a, "Ann", true).await;
    contact(&app, &a, "Bob", false).await; // not a primary contact: left out
    known_account(&app, TENANT, &a).await;
    let turned =
        publish(&app, TENANT, "health", score_changed(&a.id, Some((55.0, Band::Yellow)), (31.5, Band::Red))).await;

    let (headers, body) = until("the receiver gets the webhook", || {
        let rx = rx.clone();
        async move { rx.requests().into_iter().next() }
    })
    .await;
    assert!(verifies(&e.signing_secret, &headers, &body), "{headers:?}");
    assert!(!verifies("whsec_wrong", &headers, &body));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["type"], "outreach");
    assert_eq!(json["account"]["id"], a.id);
    assert_eq!(json["account"]["name"], "Acme Corp");
    assert_eq!(json["contact"]["id"], ann.id);
    assert_eq!(json["contact"]["email"], "ann@example.com");
    assert_eq!(json["playbook_id"], p.id);
    assert_eq!(json["trigger"]["kind"], "event");
    assert_eq!(json["trigger"]["event_id"], turned.id);
    assert_eq!(json["subject"], "Acme Corp needs a hand");
    assert_eq!(json["body"], "Playbook Red outreach (event)");
    assert_eq!(headers["banso-webhook-id"].to_str().unwrap(), json["id"].as_str().unwrap());
    assert_eq!(headers["content-type"], "application/json");

    let d = settled(&o, json["id"].as_str().unwrap(), pb::DeliveryStatus::Succeeded).await;
    assert_eq!(d.attempt_count, 1);
    assert_eq!(d.contact_id, ann.id);
    assert_eq!(d.attempts.len(), 1);
    assert_eq!(d.attempts[0].http_status, 200);
    assert_eq!(d.attempts[0].error, "");
    assert!(d.sent_time.is_some());
    let listed = deliveries(&mut o, &a.id, pb::DeliveryStatus::Succeeded).await;
    assert_eq!(listed.len(), 1, "one primary contact, one message: {listed:?}");
    assert!(listed[0].attempts.is_empty(), "lists leave attempts out");
    let f = c
        .list_firings(pb::ListFiringsRequest { playbook_id: p.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .firings;
    assert_eq!(f[0].actions[0].status, pb::ActionStatus::Done as i32);
    assert!(f[0].actions[0].detail.starts_with("queued outreach to 1 contact(s)"), "{:?}", f[0].actions);
    assert_eq!(f[0].actions[0].resource_id, d.id);
}

/// Records what the service publishes.
#[derive(Default)]
struct Published(Mutex<Vec<banso_events::Envelope>>);

#[async_trait::async_trait]
impl banso_events::Handler for Published {
    async fn handle(&self, env: &banso_events::Envelope) -> Result<(), banso_events::HandlerError> {
        self.0.lock().unwrap().push(env.clone());
        Ok(())
    }
}

fn listen(app: &TestApp) -> Arc<Published> {
    let published = Arc::new(Published::default());
    banso_events::bus::supervise_consumer(
        &app.runtime.supervisor,
        "test",
        app.runtime.bus.clone(),
        "outreach-test",
        vec![banso_events::envelope::all_of("playbooks")],
        published.clone(),
        Default::default(),
        &banso_events::partition::Partitions::all(app.runtime.bus.partitions()),
    );
    published
}

#[tokio::test]
async fn a_failing_receiver_is_retried_dead_lettered_and_redelivered() {
    let app = spawn_local().await;
    let published = listen(&app);
    let mut c = admin(&app);
    let mut o = outreach(&app, TENANT, Role::Admin);

    // 500 twice, then 200: SUCCEEDED after three attempts.
    let (flaky, url) = Receiver::start(&[500, 500], 200).await;
    let e = endpoint(&mut o, &url).await;
    let p = create_enabled(&mut c, manual("Check-in", send(&e.id, &[]))).await;
    let a = account("Initech", "csm-bob", tpb::TouchModel::Tech);
    known_account(&app, TENANT, &a).await;
    let f = run(&mut c, &p.id, &a.id).await;
    let d = settled(&o, &f.actions[0].resource_id, pb::DeliveryStatus::Succeeded).await;
    let flaky_id = d.id.clone();
    assert_eq!(d.contact_id, "", "no contact: a message about the account");
    assert_eq!(d.attempt_count, 3);
    let codes: Vec<i32> = d.attempts.iter().map(|x| x.http_status).collect();
    assert_eq!(codes, [500, 500, 200]);
    assert_eq!(d.attempts[0].error, "HTTP 500");
    let at = |x: &pb::DeliveryAttempt| x.attempt_time.as_ref().map(|t| (t.seconds, t.nanos)).unwrap();
    assert!(d.attempts.windows(2).all(|w| at(&w[0]) <= at(&w[1])));
    assert_eq!(flaky.requests().len(), 3);
    let ids: Vec<_> = flaky.requests().iter().map(|(h, _)| h["banso-webhook-id"].clone()).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "every attempt carries the same id");
    let json: serde_json::Value = serde_json::from_slice(&flaky.requests()[0].1).unwrap();
    assert!(json["contact"].is_null());

    // Always 503: DEAD after the last (third) attempt, then redelivered.
    let (down, url) = Receiver::start(&[], 503).await;
    let dead_end = endpoint(&mut o, &url).await;
    let p = create_enabled(&mut c, manual("Nudge", send(&dead_end.id, &[]))).await;
    let f = run(&mut c, &p.id, &a.id).await;
    let id = f.actions[0].resource_id.clone();
    let d = settled(&o, &id, pb::DeliveryStatus::Dead).await;
    assert_eq!(d.attempt_count, 3);
    assert_eq!(d.last_error, "HTTP 503");
    assert_eq!(d.next_attempt_time, None);
    let dead = deliveries(&mut o, &a.id, pb::DeliveryStatus::Dead).await;
    assert_eq!(dead.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);

    down.otherwise.store(200, Ordering::SeqCst);
    let mut csm = outreach(&app, TENANT, Role::Csm);
    let again = csm.redeliver_delivery(pb::RedeliverDeliveryRequest { id: id.clone() }).await.unwrap().into_inner();
    assert_eq!(again.status, pb::DeliveryStatus::Pending as i32);
    assert_eq!(again.attempt_count, 0);
    let d = settled(&o, &id, pb::DeliveryStatus::Succeeded).await;
    assert_eq!(d.attempts.len(), 4);
    let last = &d.attempts[3];
    assert_eq!((last.series, last.number, last.http_status), (2, 1, 200));
    assert_eq!(down.requests().len(), 4);

    // OutreachSent for each success (3 attempts, then 1 of the new series), OutreachFailed for the dead letter.
    let outcomes = until("the outreach events", || {
        let published = published.clone();
        async move {
            let v: Vec<(String, String, i32)> = published
                .0
                .lock()
                .unwrap()
                .iter()
                .filter_map(|e| match &e.payload {
                    Some(Payload::OutreachSent(x)) => Some(("sent".into(), x.delivery_id.clone(), x.attempts)),
                    Some(Payload::OutreachFailed(x)) => Some(("failed".into(), x.delivery_id.clone(), x.attempts)),
                    _ => None,
                })
                .collect();
            (v.len() >= 3).then_some(v)
        }
    })
    .await;
    assert!(outcomes.contains(&("sent".into(), flaky_id, 3)), "{outcomes:?}");
    assert!(outcomes.contains(&("failed".into(), id.clone(), 3)), "{outcomes:?}");
    assert!(outcomes.contains(&("sent".into(), id.clone(), 1)), "{outcomes:?}");

    // A pending one cannot be redelivered; a succeeded one can.
    let err = csm.redeliver_delivery(pb::RedeliverDeliveryRequest { id: id.clone() }).await.map(|_| ());
    assert!(err.is_ok(), "SUCCEEDED is redeliverable: {err:?}");
    let err = csm.redeliver_delivery(pb::RedeliverDeliveryRequest { id: id.clone() }).await;
    if let Err(e) = err {
        // The worker may not have sent it yet: still PENDING.
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert_eq!(reason(&e), "DELIVERY_NOT_FINISHED");
    }
}

#[tokio::test]
async fn the_fatigue_budget_holds_across_playbooks_and_simulation_applies_it() {
    let app = spawn_local().await;
    let mut c = admin(&app);
    let mut o = outreach(&app, TENANT, Role::Admin);
    let s = c.get_playbook_settings(pb::GetPlaybookSettingsRequest {}).await.unwrap().into_inner();
    c.update_playbook_settings(pb::UpdatePlaybookSettingsRequest {
        settings: Some(pb::PlaybookSettings { fatigue_max_messages: 2, fatigue_window_days: 7, etag: s.etag, ..s }),
        update_mask: mask(&["fatigue_max_messages", "fatigue_window_days"]),
    })
    .await
    .unwrap();
    let (_rx, url) = Receiver::start(&[], 200).await;
    let e = endpoint(&mut o, &url).await;
    let welcome = create_enabled(&mut c, manual("Welcome", send(&e.id, &["champion"]))).await;
    let webinar = create_enabled(&mut c, manual("Webinar", send(&e.id, &["champion"]))).await;
    let a = account("Globex", "csm-cy", tpb::TouchModel::Tech);
    let cy = contact(&app, &a, "Cy", true).await;
    known_account(&app, TENANT, &a).await;

    let first = run(&mut c, &welcome.id, &a.id).await;
    let second = run(&mut c, &webinar.id, &a.id).await;
    for f in [&first, &second] {
        assert_eq!(f.actions[0].status, pb::ActionStatus::Done as i32, "{:?}", f.actions);
    }
    let third = run(&mut c, &welcome.id, &a.id).await;
    assert_eq!(third.actions[0].status, pb::ActionStatus::Skipped as i32, "{:?}", third.actions);
    assert_eq!(third.actions[0].detail, format!("fatigue budget: 2 messages in 7 days to contact {}", cy.id));
    let skipped = deliveries(&mut o, &a.id, pb::DeliveryStatus::Skipped).await;
    assert_eq!(skipped.len(), 1, "logged, not queued: {skipped:?}");
    assert_eq!(skipped[0].id, third.actions[0].resource_id);
    assert_eq!(skipped[0].last_error, third.actions[0].detail);
    assert_eq!(skipped[0].next_attempt_time, None);
    assert_eq!(skipped[0].attempt_count, 0);

    // An event playbook simulated over today's red account: over budget too.
    let mut red = red_playbook("Red outreach");
    red.actions = vec![send(&e.id, &["champion"])];
    let red = create_enabled(&mut c, red).await;
    publish(&app, TENANT, "health", score_changed(&a.id, Some((55.0, Band::Yellow)), (31.5, Band::Red))).await;
    let fired = until("the red playbook fires", || {
        let mut c = c.clone();
        let id = red.id.clone();
        async move {
            let f = c
                .list_firings(pb::ListFiringsRequest { playbook_id: id, ..Default::default() })
                .await
                .unwrap()
                .into_inner()
                .firings;
            f.into_iter().next()
        }
    })
    .await;
    assert_eq!(fired.actions[0].status, pb::ActionStatus::Skipped as i32, "{:?}", fired.actions);
    let sim = c
        .simulate_playbook(pb::SimulatePlaybookRequest { id: red.id.clone(), lookback_days: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sim.would_fire, 1, "{sim:?}");
    let action = &sim.firings[0].actions[0];
    assert_eq!(action.status, pb::ActionStatus::Skipped as i32, "{action:?}");
    assert!(action.detail.starts_with("fatigue budget: 2 messages in 7 days to contact"), "{action:?}");
    let before = deliveries(&mut o, &a.id, pb::DeliveryStatus::Unspecified).await.len();

    // With room in the budget, the simulation says what it would send, and writes nothing.
    let s = c.get_playbook_settings(pb::GetPlaybookSettingsRequest {}).await.unwrap().into_inner();
    c.update_playbook_settings(pb::UpdatePlaybookSettingsRequest {
        settings: Some(pb::PlaybookSettings { fatigue_max_messages: 10, etag: s.etag, ..s }),
        update_mask: mask(&["fatigue_max_messages"]),
    })
    .await
    .unwrap();
    let sim = c
        .simulate_playbook(pb::SimulatePlaybookRequest { id: red.id.clone(), lookback_days: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let action = &sim.firings[0].actions[0];
    assert_eq!(action.status, pb::ActionStatus::Done as i32, "{action:?}");
    assert!(action.detail.starts_with("would send outreach \"Globex needs a hand\" to 1 contact(s)"), "{action:?}");
    assert_eq!(deliveries(&mut o, &a.id, pb::DeliveryStatus::Unspecified).await.len(), before);
}

#[tokio::test]
async fn the_ssrf_guard_refuses_internal_urls_as_field_violations() {
    let app = spawn().await; // neither http nor private addresses allowed
    let mut o = outreach(&app, TENANT, Role::Admin);
    for (url, shows) in [
        ("https://127.0.0.1/hook", "127.0.0.1"),
        ("https://10.0.0.1/hook", "10.0.0.1"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("https://[::1]:8443/hook", "::1"),
        ("https://localhost/hook", "localhost"),
        ("http://hooks.example.com/banso", "https"),
    ] {
        let err = o
            .create_webhook_endpoint(pb::CreateWebhookEndpointRequest {
                endpoint: Some(pb::WebhookEndpoint {
                    display_name: "x".into(),
                    url: url.into(),
                    enabled: true,
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        let v = violations(&err);
        assert!(v.iter().any(|(f, d)| f == "endpoint.url" && d.contains(shows)), "{url}: {v:?}");
    }
    let ok = endpoint(&mut o, "https://hooks.example.com/banso").await;
    let err = o
        .update_webhook_endpoint(pb::UpdateWebhookEndpointRequest {
            endpoint: Some(pb::WebhookEndpoint {
                id: ok.id.clone(),
                url: "https://192.168.1.10/x".into(),
                etag: ok.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["url"]),
        })
        .await
        .unwrap_err();
    assert_violation(&err, "endpoint.url");

    // A send_outreach action names its endpoint, templates and roles correctly.
    let mut c = admin(&app);
    let mut bad = manual("Bad", send("not-an-id", &["boss"]));
    if let Some(pb::action::Kind::SendOutreach(s)) = &mut bad.actions[0].kind {
        s.subject_template = "{{account.nme}}".into();
    }
    let err = c.create_playbook(pb::CreatePlaybookRequest { playbook: Some(bad), request_id: String::new() }).await;
    let err = err.unwrap_err();
    for f in [
        "playbook.actions[0].send_outreach.endpoint_id",
        "playbook.actions[0].send_outreach.subject_template",
        "playbook.actions[0].send_outreach.contact_roles[0]",
    ] {
        assert_violation(&err, f);
    }
}

#[tokio::test]
async fn endpoints_rotate_updates_and_deletes_with_tenancy_and_roles() {
    let app = spawn_local().await;
    let mut o = outreach(&app, TENANT, Role::Admin);
    let mut c = admin(&app);
    let (rx, url) = Receiver::start(&[], 200).await;
    let e = endpoint(&mut o, &url).await;

    // Another tenant sees nothing; a viewer reads but cannot write.
    let mut other = outreach(&app, "globex", Role::Admin);
    let err = other.get_webhook_endpoint(pb::GetWebhookEndpointRequest { id: e.id.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = other
        .rotate_webhook_secret(pb::RotateWebhookSecretRequest { id: e.id.clone(), etag: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let listed = other.list_webhook_endpoints(pb::ListWebhookEndpointsRequest::default()).await.unwrap().into_inner();
    assert!(listed.endpoints.is_empty());
    let mut viewer = outreach(&app, TENANT, Role::Viewer);
    viewer.get_webhook_endpoint(pb::GetWebhookEndpointRequest { id: e.id.clone() }).await.unwrap();
    let err = viewer
        .create_webhook_endpoint(pb::CreateWebhookEndpointRequest {
            endpoint: Some(pb::WebhookEndpoint { display_name: "x".into(), url: url.clone(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = viewer.redeliver_delivery(pb::RedeliverDeliveryRequest { id: e.id.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let mut csm = outreach(&app, TENANT, Role::Csm);
    let err = csm
        .rotate_webhook_secret(pb::RotateWebhookSecretRequest { id: e.id.clone(), etag: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Rotated: both secrets sign for a day.
    let r = o
        .rotate_webhook_secret(pb::RotateWebhookSecretRequest { id: e.id.clone(), etag: e.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(r.signing_secret.starts_with("whsec_") && r.signing_secret != e.signing_secret);
    assert!(r.previous_secret_expire_time.is_some());
    let stale =
        o.rotate_webhook_secret(pb::RotateWebhookSecretRequest { id: e.id.clone(), etag: e.etag.clone() }).await;
    assert_eq!(stale.unwrap_err().code(), Code::Aborted);
    let p = create_enabled(&mut c, manual("Rotated", send(&e.id, &[]))).await;
    let a = account("Umbrella", "csm-dee", tpb::TouchModel::Tech);
    known_account(&app, TENANT, &a).await;
    let f = run(&mut c, &p.id, &a.id).await;
    let d = settled(&o, &f.actions[0].resource_id, pb::DeliveryStatus::Succeeded).await;
    let (headers, body) = rx.requests().into_iter().next().unwrap();
    let sig = headers["banso-signature"].to_str().unwrap().to_string();
    assert_eq!(sig.matches("v1=").count(), 2, "{sig}");
    assert!(verifies(&r.signing_secret, &headers, &body));
    assert!(verifies(&e.signing_secret, &headers, &body));
    let err = other.get_delivery(pb::GetDeliveryRequest { id: d.id.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = other.redeliver_delivery(pb::RedeliverDeliveryRequest { id: d.id.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Disabled: the action is skipped and says why.
    let off = o
        .update_webhook_endpoint(pb::UpdateWebhookEndpointRequest {
            endpoint: Some(pb::WebhookEndpoint {
                id: e.id.clone(),
                enabled: false,
                display_name: "Renamed".into(),
                etag: r.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["enabled", "display_name"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!off.enabled);
    assert_eq!(off.display_name, "Renamed");
    assert_eq!(off.signing_secret, "");
    let f = run(&mut c, &p.id, &a.id).await;
    assert_eq!(f.actions[0].status, pb::ActionStatus::Skipped as i32);
    assert_eq!(f.actions[0].detail, format!("webhook endpoint {} is disabled", e.id));

    // Deleted: gone, and a playbook still naming it fails its action.
    o.delete_webhook_endpoint(pb::DeleteWebhookEndpointRequest { id: e.id.clone(), etag: off.etag.clone() })
        .await
        .unwrap();
    let err = o.get_webhook_endpoint(pb::GetWebhookEndpointRequest { id: e.id.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let f = run(&mut c, &p.id, &a.id).await;
    assert_eq!(f.actions[0].status, pb::ActionStatus::Failed as i32);
    assert_eq!(f.actions[0].detail, format!("webhook endpoint {} does not exist", e.id));
}

/// The machine's host name, when it resolves only to addresses the guard
/// refuses (loopback, or a container's private address).
async fn internal_name() -> Option<String> {
    let name = std::fs::read_to_string("/etc/hostname").ok()?.trim().to_string();
    let addrs: Vec<_> = tokio::net::lookup_host((name.as_str(), 80)).await.ok()?.collect();
    let internal = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    };
    (!name.is_empty() && !addrs.is_empty() && addrs.iter().all(|a| internal(a.ip()))).then_some(name)
}

#[tokio::test]
async fn a_host_name_resolving_to_an_internal_address_is_refused_at_delivery() {
    let Some(name) = internal_name().await else {
        eprintln!("skipped: this machine's host name does not resolve to an internal address only");
        return;
    };
    let app = spawn_allowing(false).await; // http allowed, private addresses not
    let mut c = admin(&app);
    let mut o = outreach(&app, TENANT, Role::Admin);
    let (rx, url) = Receiver::start(&[], 200).await;
    // A name passes on save (only IP literals are judged then); its addresses are judged at every attempt.
    let url = url.replace("127.0.0.1", &name);
    let e = endpoint(&mut o, &url).await;
    let p = create_enabled(&mut c, manual("Rebound", send(&e.id, &[]))).await;
    let a = account("Hooli", "csm-gav", tpb::TouchModel::Tech);
    known_account(&app, TENANT, &a).await;
    let f = run(&mut c, &p.id, &a.id).await;
    let d = settled(&o, &f.actions[0].resource_id, pb::DeliveryStatus::Dead).await;
    assert_eq!(d.attempt_count, 3);
    assert!(d.last_error.starts_with(&format!("refused: {name} resolves to ")), "{d:?}");
    assert!(d.attempts.iter().all(|x| x.http_status == 0), "{d:?}");
    assert!(rx.requests().is_empty(), "nothing reached the internal receiver");
}

fn invitation_issued(a: &apb::Account, c: &apb::Contact, endpoint: &str, invitation: &str) -> Payload {
    Payload::SurveyInvitationIssued(ev::SurveyInvitationIssued {
        invitation_id: invitation.into(),
        campaign_id: uuid::Uuid::now_v7().to_string(),
        survey_id: uuid::Uuid::now_v7().to_string(),
        kind: banso_proto::feedback::SurveyKind::Nps as i32,
        account_id: a.id.clone(),
        contact_id: c.id.clone(),
        contact_name: c.name.clone(),
        email: c.email.clone(),
        endpoint_id: endpoint.into(),
        survey_name: "How are we doing?".into(),
        question: "How likely are you to recommend us?".into(),
        answer_url: format!("https://cs.example.com/v1/public/surveyForms/tok-{invitation}"),
        expire_time: Some(pbjson_types::Timestamp { seconds: 2_000_000_000, nanos: 0 }),
        language: "en".into(),
    })
}

/// Feedback's invitations go out through an endpoint as signed webhooks
/// with the answer link; OutreachSent names the invitation back. An
/// endpoint that is gone makes a dead delivery and OutreachFailed, named
/// the same way.
#[tokio::test]
async fn survey_invitations_are_delivered_through_an_endpoint() {
    let app = spawn_local().await;
    let published = listen(&app);
    let mut o = outreach(&app, TENANT, Role::Admin);
    let (rx, url) = Receiver::start(&[], 200).await;
    let e = endpoint(&mut o, &url).await;
    let a = account("Acme Corp", "csm-ann", tpb::TouchModel::Tech);
    let ann = contact(&app, &a, "Ann", true).await;
    known_account(&app, TENANT, &a).await;
    let invitation = uuid::Uuid::now_v7().to_string();
    publish(&app, TENANT, "feedback", invitation_issued(&a, &ann, &e.id, &invitation)).await;
    let (headers, body) = until("the receiver gets the invitation", || {
        let rx = rx.clone();
        async move { rx.requests().into_iter().next() }
    })
    .await;
    assert!(verifies(&e.signing_secret, &headers, &body));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["type"], "survey_invitation");
    assert_eq!(json["contact"]["email"], "ann@example.com");
    assert_eq!(json["account"]["name"], "Acme Corp");
    assert_eq!(json["invitation"]["id"], invitation);
    assert_eq!(
        json["invitation"]["answer_url"],
        format!("https://cs.example.com/v1/public/surveyForms/tok-{invitation}")
    );
    assert_eq!(json["subject"], "How are we doing?");
    let d = settled(&o, json["id"].as_str().unwrap(), pb::DeliveryStatus::Succeeded).await;
    assert_eq!(d.contact_id, ann.id);
    let sent = until("OutreachSent names the invitation", || {
        let published = published.clone();
        async move {
            published.0.lock().unwrap().iter().find_map(|env| match &env.payload {
                Some(Payload::OutreachSent(s)) => Some(s.clone()),
                _ => None,
            })
        }
    })
    .await;
    assert_eq!(sent.correlation_id, format!("survey_invitation:{invitation}"));
    assert_eq!(sent.playbook_id, "");
    // An endpoint that does not exist: dead at once, and said so.
    let gone = uuid::Uuid::now_v7().to_string();
    let other = uuid::Uuid::now_v7().to_string();
    publish(&app, TENANT, "feedback", invitation_issued(&a, &ann, &gone, &other)).await;
    let failed = until("OutreachFailed names the invitation", || {
        let published = published.clone();
        async move {
            published.0.lock().unwrap().iter().find_map(|env| match &env.payload {
                Some(Payload::OutreachFailed(f)) => Some(f.clone()),
                _ => None,
            })
        }
    })
    .await;
    assert_eq!(failed.correlation_id, format!("survey_invitation:{other}"));
    assert!(failed.last_error.contains(&gone), "{failed:?}");
    let dead = deliveries(&mut o, &a.id, pb::DeliveryStatus::Dead).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(rx.requests().len(), 1, "nothing was sent for the missing endpoint");
    app.stop().await.unwrap();
}

fn notice_issued(endpoint: &str, notice: &str, items: Vec<banso_proto::feedback::FeedbackItem>, total: i32) -> Payload {
    Payload::NoticeIssued(ev::NoticeIssued {
        notice_id: notice.into(),
        subscription_id: uuid::Uuid::now_v7().to_string(),
        department: banso_proto::feedback::Department::Product as i32,
        kind: banso_proto::feedback::NoticeKind::Digest as i32,
        endpoint_id: endpoint.into(),
        day: Some(tpb::Date { year: 2026, month: 12, day: 5 }),
        items,
        items_total: total,
    })
}

fn feedback_item(a: &apb::Account, text: &str, severity: i32, theme: &str) -> banso_proto::feedback::FeedbackItem {
    banso_proto::feedback::FeedbackItem {
        id: uuid::Uuid::now_v7().to_string(),
        text: text.into(),
        account_id: a.id.clone(),
        department: banso_proto::feedback::Department::Product as i32,
        category: "export".into(),
        severity,
        theme_ids: vec![theme.into()],
        ..Default::default()
    }
}

/// Feedback's department notices (here a digest) go out through the
/// subscription's endpoint as signed webhooks naming the department, the
/// day and the items with their accounts; they are about no customer, so
/// no fatigue budget holds them. OutreachSent names the notice back; an
/// endpoint that is gone makes a dead delivery and OutreachFailed.
#[tokio::test]
async fn feedback_notices_are_delivered_through_an_endpoint() {
    let app = spawn_local().await;
    let published = listen(&app);
    let mut o = outreach(&app, TENANT, Role::Admin);
    let (rx, url) = Receiver::start(&[], 200).await;
    let e = endpoint(&mut o, &url).await;
    let a = account("Acme Corp", "csm-ann", tpb::TouchModel::Tech);
    known_account(&app, TENANT, &a).await;
    let theme = uuid::Uuid::now_v7().to_string();
    let items =
        vec![feedback_item(&a, "CSV export times out", 4, &theme), feedback_item(&a, "エクスポートが遅い", 3, &theme)];
    let notice = uuid::Uuid::now_v7().to_string();
    publish(&app, TENANT, "feedback", notice_issued(&e.id, &notice, items.clone(), 120)).await;
    let (headers, body) = until("the receiver gets the digest", || {
        let rx = rx.clone();
        async move { rx.requests().into_iter().next() }
    })
    .await;
    assert!(verifies(&e.signing_secret, &headers, &body));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["type"], "feedback_notice");
    assert_eq!(json["notice_id"], notice);
    assert_eq!(json["department"], "product");
    assert_eq!(json["kind"], "digest");
    assert_eq!(json["day"], "2026-12-05");
    assert_eq!(json["items_total"], 120);
    assert_eq!(json["items"].as_array().unwrap().len(), 2);
    let first = &json["items"][0];
    assert_eq!(first["id"], items[0].id);
    assert_eq!(first["text"], "CSV export times out");
    assert_eq!(first["account"]["id"], a.id);
    assert_eq!(first["account"]["name"], "Acme Corp");
    assert_eq!(first["severity"], 4);
    assert_eq!(first["category"], "export");
    assert_eq!(first["theme_ids"][0], theme);
    assert_eq!(json["items"][1]["text"], "エクスポートが遅い");
    assert_eq!(json["subject"], "Feedback digest for product, 2026-12-05: 120 items");
    let lines: Vec<&str> = json["body"].as_str().unwrap().lines().collect();
    assert_eq!(
        lines,
        [
            "- [severity 4] Acme Corp: CSV export times out",
            "- [severity 3] Acme Corp: エクスポートが遅い",
            "… and 118 more"
        ]
    );
    let d = settled(&o, json["id"].as_str().unwrap(), pb::DeliveryStatus::Succeeded).await;
    assert_eq!(d.trigger_kind, "feedback_notice");
    assert_eq!(d.trigger_event_id, notice);
    assert_eq!(d.contact_id, "");
    let sent = until("OutreachSent names the notice", || {
        let published = published.clone();
        async move {
            published.0.lock().unwrap().iter().find_map(|env| match &env.payload {
                Some(Payload::OutreachSent(s)) => Some(s.clone()),
                _ => None,
            })
        }
    })
    .await;
    assert_eq!(sent.correlation_id, format!("feedback_notice:{notice}"));
    // An endpoint that does not exist: dead at once, and said so.
    let gone = uuid::Uuid::now_v7().to_string();
    let other = uuid::Uuid::now_v7().to_string();
    publish(&app, TENANT, "feedback", notice_issued(&gone, &other, items, 2)).await;
    let failed = until("OutreachFailed names the notice", || {
        let published = published.clone();
        async move {
            published.0.lock().unwrap().iter().find_map(|env| match &env.payload {
                Some(Payload::OutreachFailed(f)) => Some(f.clone()),
                _ => None,
            })
        }
    })
    .await;
    assert_eq!(failed.correlation_id, format!("feedback_notice:{other}"));
    assert!(failed.last_error.contains(&gone), "{failed:?}");
    let dead = o
        .list_deliveries(pb::ListDeliveriesRequest {
            endpoint_id: gone.clone(),
            status: pb::DeliveryStatus::Dead as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].trigger_event_id, other);
    assert_eq!(rx.requests().len(), 1, "nothing was sent for the missing endpoint");
    app.stop().await.unwrap();
}
