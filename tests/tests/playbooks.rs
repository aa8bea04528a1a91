//! Usage to action, end to end, as `banso up` runs it: product usage goes
//! into Health, the score turns red, HealthScoreChanged reaches Playbooks,
//! and the account owner's CTA opens — visible through the API.

mod health;

use banso_proto::{accounts as apb, health as pb, playbooks as ppb, types as tpb};
use banso_testkit::{TestRole as Role, eventually};
use health::{WAIT, create_account, create_scorecard, health_until, linear, measure, usage};

#[tokio::test]
async fn usage_turns_an_account_red_and_its_owner_gets_a_cta() {
    let app = health::spawn().await;
    let tenant = "acme";
    let mut playbooks = ppb::playbooks_service_client::PlaybooksServiceClient::with_interceptor(
        app.channel.clone(),
        app.bearer(tenant, Role::Admin),
    );
    let p = playbooks
        .create_playbook(ppb::CreatePlaybookRequest {
            playbook: Some(ppb::Playbook {
                display_name: "Red alert".into(),
                trigger: Some(ppb::Trigger {
                    kind: Some(ppb::trigger::Kind::Event(ppb::EventTrigger {
                        event_type: "health_score_changed".into(),
                        band_became: pb::Band::Red as i32,
                        ..Default::default()
                    })),
                }),
                audience: Some(ppb::Audience {
                    touch_models: vec![tpb::TouchModel::High as i32],
                    ..Default::default()
                }),
                actions: vec![ppb::Action {
                    touch_models: vec![tpb::TouchModel::High as i32],
                    kind: Some(ppb::action::Kind::OpenCta(ppb::OpenCtaAction {
                        r#type: ppb::CtaType::Risk as i32,
                        priority: ppb::CtaPriority::High as i32,
                        title_template: "{{account.name}}: errors pushed the score to {{health.score}}".into(),
                        due_in_days: 2,
                        ..Default::default()
                    })),
                }],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    playbooks.enable_playbook(ppb::EnablePlaybookRequest { id: p.id.clone(), version: 0, etag: p.etag }).await.unwrap();

    // Errors the customer sees: 0 is 100 points, 10 or more is 0.
    let admin = health::health(&app, tenant, Role::Admin);
    let mut errors = measure("events_7d:error_shown", 100.0, linear(0.0, 10.0));
    errors.direction = pb::Direction::LowerIsBetter as i32;
    create_scorecard(&admin, pb::Scorecard { name: "Errors".into(), measures: vec![errors], ..Default::default() })
        .await;
    let account = create_account(
        &app,
        tenant,
        apb::Account {
            name: "Acme Corp".into(),
            lifecycle_stage: tpb::LifecycleStage::Adoption as i32,
            touch_model: tpb::TouchModel::High as i32,
            owner_id: "csm-ann".into(),
            ..Default::default()
        },
    )
    .await;

    let mut svc = health::health(&app, tenant, Role::Service);
    svc.batch_ingest_usage(pb::BatchIngestUsageRequest { events: vec![usage("e0", &account, "u1", "error_shown")] })
        .await
        .unwrap();
    let h = health_until(&admin, &account, |h| h.score == 90.0).await;
    assert_eq!(h.band, pb::Band::Green as i32);
    let events: Vec<_> = (1..9).map(|i| usage(&format!("e{i}"), &account, "u1", "error_shown")).collect();
    svc.batch_ingest_usage(pb::BatchIngestUsageRequest { events }).await.unwrap();
    health_until(&admin, &account, |h| h.band == pb::Band::Red as i32).await;

    let mut csm = ppb::playbooks_service_client::PlaybooksServiceClient::with_interceptor(
        app.channel.clone(),
        app.bearer(tenant, Role::Csm),
    );
    let cta = eventually("the owner's CTA", WAIT, || {
        let mut c = csm.clone();
        let account = account.clone();
        async move {
            let r = c
                .list_calls_to_action(ppb::ListCallsToActionRequest {
                    filter: Some(ppb::CtaFilter {
                        account_id: account,
                        owner_id: "csm-ann".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            r.ctas.into_iter().next()
        }
    })
    .await;
    assert_eq!(cta.title, "Acme Corp: errors pushed the score to 10.0");
    assert_eq!(cta.r#type, ppb::CtaType::Risk as i32);
    assert_eq!(cta.playbook_id, p.id);
    let fired = csm
        .list_firings(ppb::ListFiringsRequest { account_id: account.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .firings;
    assert_eq!(fired.len(), 1, "one red turn, one firing: {fired:?}");
}
