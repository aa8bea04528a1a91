//! Feedback's LoopClosed as a trigger (issue #15): a theme the account
//! raised was shipped, so its owner is told first — a CTA — and the
//! customer after: closing that CTA resolved sends the outreach. A
//! redelivered LoopClosed opens nothing twice; a declined theme, or an
//! account Playbooks does not know, nothing at all.

use std::sync::{Arc, Mutex};

use axum::{body::Bytes, extract::State, http::StatusCode};
use banso_events::Payload;
use banso_proto::{accounts as apb, events as ev, feedback as fpb, playbooks as pb, types as tpb};
use banso_testkit::TestApp;

use crate::common::*;

type Outreach = pb::outreach_service_client::OutreachServiceClient<
    tonic::codegen::InterceptedService<tonic::transport::Channel, banso_testkit::Bearer>,
>;

/// Webhooks may reach the receiver on 127.0.0.1 over http.
async fn spawn_local() -> TestApp {
    let vars = [("BANSO_PLAYBOOKS_WEBHOOK_ALLOW_HTTP", "true"), ("BANSO_PLAYBOOKS_WEBHOOK_ALLOW_PRIVATE", "true")];
    let options = banso_testkit::Options {
        vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    };
    banso_testkit::spawn_with(options, &[&banso_playbooks::SERVICE]).await.expect("test server starts")
}

/// A receiver that keeps each body and answers 200; its URL.
async fn receiver() -> (Arc<Mutex<Vec<Bytes>>>, String) {
    async fn answer(State(got): State<Arc<Mutex<Vec<Bytes>>>>, body: Bytes) -> StatusCode {
        got.lock().unwrap().push(body);
        StatusCode::OK
    }
    let got = Arc::new(Mutex::new(Vec::new()));
    let router = axum::Router::new().route("/hook", axum::routing::post(answer)).with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (got, format!("http://{addr}/hook"))
}

/// A loop closed with `account` as Feedback publishes it.
fn loop_closed(account: &str, status: fpb::RoadmapStatus) -> Payload {
    Payload::LoopClosed(ev::LoopClosed {
        theme_id: uuid::Uuid::now_v7().to_string(),
        display_name: "CSV export".into(),
        status: status as i32,
        account_id: account.into(),
        contact_ids: vec![],
        item_ids: vec![uuid::Uuid::now_v7().to_string()],
        roadmap: Some(fpb::RoadmapLink {
            tracker: "Jira".into(),
            key: "PROD-42".into(),
            url: "https://jira.example.com/browse/PROD-42".into(),
            status: status as i32,
        }),
        owner_id: "csm-ann".into(),
        decision: "ship CSV export in 3.2".into(),
    })
}

/// The owner first: a shipped theme opens an objective CTA for the
/// account's owner.
fn tell_the_owner() -> pb::Playbook {
    pb::Playbook {
        display_name: "A request shipped: tell the owner".into(),
        trigger: Some(pb::Trigger {
            kind: Some(pb::trigger::Kind::Event(pb::EventTrigger {
                event_type: "loop_closed".into(),
                ..Default::default()
            })),
        }),
        condition: "event.data.status == 'ROADMAP_STATUS_SHIPPED'".into(),
        actions: vec![pb::Action {
            touch_models: vec![],
            kind: Some(pb::action::Kind::OpenCta(pb::OpenCtaAction {
                r#type: pb::CtaType::Objective as i32,
                priority: pb::CtaPriority::Medium as i32,
                title_template: "{{account.name}}: something they asked for shipped".into(),
                description_template: "Tell them before the release note does.".into(),
                owner: Some(pb::OwnerRule { rule: Some(pb::owner_rule::Rule::AccountOwner(true)) }),
                due_in_days: 3,
                task_titles: vec![
                    "read the decision and the roadmap item".into(),
                    "call the contacts who asked".into(),
                ],
            })),
        }],
        ..Default::default()
    }
}

/// The customer after: the owner's CTA closed resolved sends the outreach.
fn then_the_customer(owner_playbook: &str, endpoint: &str) -> pb::Playbook {
    pb::Playbook {
        display_name: "Then tell the customer".into(),
        trigger: Some(pb::Trigger {
            kind: Some(pb::trigger::Kind::Event(pb::EventTrigger {
                event_type: "cta_closed".into(),
                ..Default::default()
            })),
        }),
        condition: format!(
            "event.data.cta.playbook_id == '{owner_playbook}' && event.data.cta.outcome == 'CTA_OUTCOME_RESOLVED'"
        ),
        actions: vec![pb::Action {
            touch_models: vec![],
            kind: Some(pb::action::Kind::SendOutreach(pb::SendOutreachAction {
                endpoint_id: endpoint.into(),
                subject_template: "{{account.name}}: what you asked for has shipped".into(),
                body_template: "Thank you for telling us.".into(),
                contact_roles: vec![],
            })),
        }],
        ..Default::default()
    }
}

async fn firings(c: &mut Client, playbook: &str) -> Vec<pb::Firing> {
    c.list_firings(pb::ListFiringsRequest { playbook_id: playbook.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .firings
}

#[tokio::test]
async fn a_shipped_theme_tells_the_owner_first_then_the_customer() {
    let app = spawn_local().await;
    let mut c = admin(&app);
    let mut o: Outreach = pb::outreach_service_client::OutreachServiceClient::with_interceptor(
        app.channel.clone(),
        app.bearer(TENANT, Role::Admin),
    );
    let (got, url) = receiver().await;
    let endpoint = o
        .create_webhook_endpoint(pb::CreateWebhookEndpointRequest {
            endpoint: Some(pb::WebhookEndpoint {
                display_name: "Customer e-mail".into(),
                url,
                enabled: true,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let owner = create_enabled(&mut c, tell_the_owner()).await;
    let customer = create_enabled(&mut c, then_the_customer(&owner.id, &endpoint.id)).await;

    let a = account("Acme Corp", "csm-ann", tpb::TouchModel::High);
    let champion = apb::Contact {
        id: uuid::Uuid::now_v7().to_string(),
        account_id: a.id.clone(),
        name: "Ann".into(),
        email: "ann@acme.example".into(),
        champion: true,
        ..Default::default()
    };
    let change = ev::contact_changed::Change::Created as i32;
    publish(
        &app,
        TENANT,
        "accounts",
        Payload::ContactChanged(ev::ContactChanged { change, contact: Some(champion.clone()) }),
    )
    .await;
    known_account(&app, TENANT, &a).await;

    // Declined: this playbook's condition wants shipped. Then shipped.
    publish(&app, TENANT, "feedback", loop_closed(&a.id, fpb::RoadmapStatus::Declined)).await;
    let shipped = publish(&app, TENANT, "feedback", loop_closed(&a.id, fpb::RoadmapStatus::Shipped)).await;
    let cta = until("the owner's CTA opens", || {
        let mut c = c.clone();
        let id = a.id.clone();
        async move { ctas_of(&mut c, &id).await.into_iter().next() }
    })
    .await;
    assert_eq!(cta.owner_id, "csm-ann", "the account's owner is told first");
    assert_eq!(cta.r#type, pb::CtaType::Objective as i32);
    assert_eq!(cta.title, "Acme Corp: something they asked for shipped");
    assert_eq!(cta.playbook_id, owner.id);
    assert_eq!(cta.reasons.len(), 1, "{:?}", cta.reasons);
    assert_eq!(cta.reasons[0].trigger_event_id, shipped.id);

    // What a condition reads of a closed loop.
    let r = c
        .test_condition(pb::TestConditionRequest {
            condition: "event.data.display_name == 'CSV export' && event.data.roadmap.key == 'PROD-42' \
                        && event.data.decision != '' && size(event.data.item_ids) == 1"
                .into(),
            account_id: a.id.clone(),
            event_id: shipped.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.result && r.error.is_empty(), "{r:?}");

    // Redelivered: nothing twice. An account Playbooks does not know: nothing.
    publish_envelope(&app, &shipped).await;
    let stranger = uuid::Uuid::now_v7().to_string();
    publish(&app, TENANT, "feedback", loop_closed(&stranger, fpb::RoadmapStatus::Shipped)).await;
    // Nothing sent to the customer while the owner has not closed the CTA.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(got.lock().unwrap().is_empty(), "the owner first");
    let f = firings(&mut c, &owner.id).await;
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].trigger_key, shipped.id);
    assert_eq!(ctas_of(&mut c, &a.id).await.len(), 1);

    // The owner told the account and closes the CTA: the customer hears it.
    c.close_call_to_action(pb::CloseCallToActionRequest {
        id: cta.id.clone(),
        outcome: pb::CtaOutcome::Resolved as i32,
        note: "called Ann; she is trying the export".into(),
        etag: cta.etag.clone(),
    })
    .await
    .unwrap();
    let body = until("the customer's message arrives", || {
        let got = got.clone();
        async move { got.lock().unwrap().first().cloned() }
    })
    .await;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["account"]["id"], a.id.as_str());
    assert_eq!(json["contact"]["id"], champion.id.as_str());
    assert_eq!(json["subject"], "Acme Corp: what you asked for has shipped");
    assert_eq!(json["playbook_id"], customer.id.as_str());
    let f = firings(&mut c, &customer.id).await;
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].status, pb::FiringStatus::Fired as i32);
}
