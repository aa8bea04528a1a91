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

fn playbook(name: &str, trigger: ppb::trigger::Kind, action: ppb::action::Kind) -> ppb::CreatePlaybookRequest {
    ppb::CreatePlaybookRequest {
        playbook: Some(ppb::Playbook {
            display_name: name.into(),
            trigger: Some(ppb::Trigger { kind: Some(trigger) }),
            actions: vec![ppb::Action { touch_models: vec![], kind: Some(action) }],
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

type Playbooks = ppb::playbooks_service_client::PlaybooksServiceClient<
    tonic::codegen::InterceptedService<tonic::transport::Channel, banso_testkit::Bearer>,
>;

/// The outcome of a firing's first action once the worker has written it.
async fn applied(c: &Playbooks, playbook: &str, account: &str, firing: &str) -> ppb::ActionOutcome {
    eventually("the change applied and recorded in the firing", WAIT, || {
        let mut c = c.clone();
        let (playbook, account, firing) = (playbook.to_string(), account.to_string(), firing.to_string());
        async move {
            let r = c
                .list_firings(ppb::ListFiringsRequest {
                    playbook_id: playbook,
                    account_id: account,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let f = r.firings.into_iter().find(|f| f.id == firing)?;
            let a = f.actions.into_iter().next()?;
            (!a.detail.starts_with("queued")).then_some(a)
        }
    })
    .await
}

/// update_account goes through Accounts' API with a service token (not its
/// database), changes only what differs, writes its result into the firing,
/// and the AccountUpdated it causes triggers no playbook.
#[tokio::test]
async fn a_playbook_updates_the_account_through_accounts_and_triggers_nothing() {
    let app = health::spawn().await;
    let tenant = "acme";
    let mut playbooks = ppb::playbooks_service_client::PlaybooksServiceClient::with_interceptor(
        app.channel.clone(),
        app.bearer(tenant, Role::Admin),
    );
    let mut accounts = health::accounts(&app, tenant);
    let account = create_account(
        &app,
        tenant,
        apb::Account {
            name: "Globex".into(),
            lifecycle_stage: tpb::LifecycleStage::Adoption as i32,
            touch_model: tpb::TouchModel::High as i32,
            owner_id: "csm-ann".into(),
            tags: vec!["vip".into(), "trial".into()],
            ..Default::default()
        },
    )
    .await;
    let change = ppb::UpdateAccountAction {
        lifecycle_stage: tpb::LifecycleStage::Renewal as i32,
        add_tags: vec!["at-risk".into()],
        remove_tags: vec!["trial".into()],
        set_attributes: [(
            "risk_reason".to_string(),
            tpb::AttributeValue { kind: Some(tpb::attribute_value::Kind::StringValue("usage fell".into())) },
        )]
        .into(),
    };
    let updater = playbooks
        .create_playbook(playbook(
            "Move to renewal",
            ppb::trigger::Kind::Manual(Default::default()),
            ppb::action::Kind::UpdateAccount(change),
        ))
        .await
        .unwrap()
        .into_inner();
    // Any account update opens a CTA: it must see the user's edit, never
    // the playbook's own.
    let watcher = playbooks
        .create_playbook(playbook(
            "Any update",
            ppb::trigger::Kind::Event(ppb::EventTrigger { event_type: "account_updated".into(), ..Default::default() }),
            ppb::action::Kind::OpenCta(ppb::OpenCtaAction {
                r#type: ppb::CtaType::Lifecycle as i32,
                priority: ppb::CtaPriority::Low as i32,
                title_template: "{{account.name}} changed".into(),
                due_in_days: 7,
                ..Default::default()
            }),
        ))
        .await
        .unwrap()
        .into_inner();
    for p in [&updater, &watcher] {
        playbooks
            .enable_playbook(ppb::EnablePlaybookRequest { id: p.id.clone(), version: 0, etag: p.etag.clone() })
            .await
            .unwrap();
    }

    let run = |request_id: &str| ppb::RunPlaybookRequest {
        id: updater.id.clone(),
        account_ids: vec![account.clone()],
        request_id: request_id.into(),
    };
    let fired = playbooks.run_playbook(run("first")).await.unwrap().into_inner().firings;
    assert_eq!(fired.len(), 1);
    let outcome = &fired[0].actions[0];
    assert_eq!(outcome.status, ppb::ActionStatus::Done as i32);
    assert!(outcome.detail.starts_with("queued account update"), "{}", outcome.detail);

    let outcome = applied(&playbooks, &updater.id, &account, &fired[0].id).await;
    assert_eq!(outcome.status, ppb::ActionStatus::Done as i32, "{}", outcome.detail);
    assert_eq!(outcome.detail, "applied: stage renewal, +at-risk, -trial, set risk_reason");
    let a = accounts.get_account(apb::GetAccountRequest { id: account.clone() }).await.unwrap().into_inner();
    assert_eq!(a.lifecycle_stage, tpb::LifecycleStage::Renewal as i32);
    assert_eq!(a.tags, vec!["vip".to_string(), "at-risk".to_string()]);
    assert_eq!(
        a.custom_attributes.get("risk_reason").and_then(|v| v.kind.clone()),
        Some(tpb::attribute_value::Kind::StringValue("usage fell".into()))
    );

    // Run again: the account already is so, and Accounts is not written.
    let again = playbooks.run_playbook(run("second")).await.unwrap().into_inner().firings;
    let outcome = applied(&playbooks, &updater.id, &account, &again[0].id).await;
    assert!(outcome.detail.starts_with("the account already was so"), "{}", outcome.detail);
    let b = accounts.get_account(apb::GetAccountRequest { id: account.clone() }).await.unwrap().into_inner();
    assert_eq!(b.etag, a.etag, "no write when nothing differs");

    // A user's edit triggers the watcher; the playbook's edit before it did not.
    accounts
        .update_account(apb::UpdateAccountRequest {
            account: Some(apb::Account { id: account.clone(), name: "Globex Inc".into(), ..Default::default() }),
            update_mask: Some(pbjson_types::FieldMask { paths: vec!["name".into()] }),
        })
        .await
        .unwrap();
    // The user's edit comes after the playbook's on Accounts' stream: the
    // watcher's CTA, named as the account is after the user's edit, shows
    // both were consumed, and that the first opened nothing.
    let cta = eventually("the watcher's CTA for the user's edit", WAIT, || {
        let mut c = playbooks.clone();
        let (account, watcher) = (account.clone(), watcher.id.clone());
        async move {
            let r = c
                .list_calls_to_action(ppb::ListCallsToActionRequest {
                    filter: Some(ppb::CtaFilter { account_id: account, playbook_id: watcher, ..Default::default() }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            r.ctas.into_iter().next()
        }
    })
    .await;
    assert_eq!(cta.title, "Globex Inc changed", "the playbook's own AccountUpdated opened it");
    let watched = playbooks
        .list_firings(ppb::ListFiringsRequest {
            playbook_id: watcher.id.clone(),
            account_id: account.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .firings;
    assert_eq!(watched.len(), 1, "the playbook's own AccountUpdated triggered nothing: {watched:?}");
}
