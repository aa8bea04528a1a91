//! Bad input: every bad field named at once, nothing written.

use banso_proto::{playbooks as pb, types as tpb};

use crate::common::*;

#[tokio::test]
async fn a_bad_playbook_names_every_bad_field() {
    let app = spawn().await;
    let mut c = admin(&app);
    let mut p = red_playbook("");
    p.condition = "account.arr > 1 &&\n  account.nope == 2".into();
    p.cooldown = Some(pbjson_types::Duration { seconds: 0, nanos: 0 });
    p.enrolment_limit = Some(pb::EnrolmentLimit { limit: Some(pb::enrolment_limit::Limit::OncePerAccount(true)) });
    p.audience = Some(pb::Audience { touch_models: vec![tpb::TouchModel::High as i32], ..Default::default() });
    p.actions = vec![
        open_cta("hello {{account.nmae}}", pb::CtaPriority::Unspecified, &[tpb::TouchModel::Tech]),
        pb::Action::default(),
    ];
    p.priority = 101;
    let e = c
        .create_playbook(pb::CreatePlaybookRequest { playbook: Some(p), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let vs = violations(&e);
    for field in [
        "playbook.display_name",
        "playbook.condition",
        "playbook.actions[0].open_cta.title_template",
        "playbook.actions[0].open_cta.priority",
        "playbook.actions[1]",
        "playbook.priority",
    ] {
        assert!(vs.iter().any(|(f, _)| f == field), "no violation on {field}: {vs:?}");
    }
    let cond = vs.iter().find(|(f, _)| f == "playbook.condition").unwrap();
    assert!(cond.1.starts_with("line 2, column "), "{cond:?}");
    assert!(c.list_playbooks(pb::ListPlaybooksRequest::default()).await.unwrap().into_inner().playbooks.is_empty());

    // The rules that join fields, once each field is good alone.
    let mut p = red_playbook("Joined");
    p.cooldown = None;
    p.enrolment_limit = Some(pb::EnrolmentLimit { limit: Some(pb::enrolment_limit::Limit::OncePerAccount(true)) });
    p.audience = Some(pb::Audience { touch_models: vec![tpb::TouchModel::High as i32], ..Default::default() });
    p.actions = vec![open_cta("x", pb::CtaPriority::Low, &[tpb::TouchModel::Tech])];
    if let Some(pb::trigger::Kind::Event(e)) = p.trigger.as_mut().and_then(|t| t.kind.as_mut()) {
        e.stage_entered = tpb::LifecycleStage::Renewal as i32;
    }
    let e = c
        .create_playbook(pb::CreatePlaybookRequest { playbook: Some(p), request_id: String::new() })
        .await
        .unwrap_err();
    for field in ["playbook.cooldown", "playbook.actions[0].touch_models", "playbook.trigger.event.stage_entered"] {
        assert_violation(&e, field);
    }

    let mut p = red_playbook("Unknown event");
    p.trigger = Some(pb::Trigger {
        kind: Some(pb::trigger::Kind::Event(pb::EventTrigger {
            event_type: "cta_opened".into(),
            ..Default::default()
        })),
    });
    let e = c
        .create_playbook(pb::CreatePlaybookRequest { playbook: Some(p), request_id: String::new() })
        .await
        .unwrap_err();
    assert_violation(&e, "playbook.trigger.event.event_type");
    let e = c.create_playbook(pb::CreatePlaybookRequest::default()).await.unwrap_err();
    assert_violation(&e, "playbook");
}

#[tokio::test]
async fn bad_ids_masks_and_ranges_are_invalid_arguments() {
    let app = spawn().await;
    let mut c = admin(&app);
    let e = c.get_playbook(pb::GetPlaybookRequest { id: "nope".into(), version: -1 }).await.unwrap_err();
    assert_violation(&e, "id");
    assert_violation(&e, "version");
    let p = create_enabled(&mut c, red_playbook("P")).await;
    let e = c
        .update_playbook(pb::UpdatePlaybookRequest { playbook: Some(p.clone()), update_mask: mask(&["version"]) })
        .await
        .unwrap_err();
    assert_violation(&e, "update_mask");
    let e = c
        .enable_playbook(pb::EnablePlaybookRequest { id: p.id.clone(), version: 9, etag: String::new() })
        .await
        .unwrap_err();
    assert_violation(&e, "version");
    let e = c
        .simulate_playbook(pb::SimulatePlaybookRequest {
            id: p.id.clone(),
            lookback_days: 31,
            max_firings: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_violation(&e, "lookback_days");
    assert_violation(&e, "max_firings");
    let e = c
        .run_playbook(pb::RunPlaybookRequest { id: p.id.clone(), account_ids: vec![], request_id: String::new() })
        .await
        .unwrap_err();
    assert_violation(&e, "account_ids");
    let e = c
        .test_condition(pb::TestConditionRequest {
            condition: "account.".into(),
            account_id: "x".into(),
            event_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_violation(&e, "condition");
    assert_violation(&e, "account_id");
    let e = c
        .update_playbook_settings(pb::UpdatePlaybookSettingsRequest {
            settings: Some(pb::PlaybookSettings {
                schedule_time: "25:00".into(),
                fatigue_max_messages: 0,
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_violation(&e, "settings.schedule_time");
    assert_violation(&e, "settings.fatigue_max_messages");
    let e = c
        .list_calls_to_action(pb::ListCallsToActionRequest {
            order_by: "owner".into(),
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let mut csm = client(&app, TENANT, Role::Csm);
    let e = csm
        .snooze_call_to_action(pb::SnoozeCallToActionRequest {
            id: uuid::Uuid::now_v7().to_string(),
            until: Some(pbjson_types::Timestamp { seconds: 0, nanos: 0 }),
            etag: "bad".into(),
        })
        .await
        .unwrap_err();
    assert_violation(&e, "until");
    assert_violation(&e, "etag");
}

fn update(u: pb::UpdateAccountAction) -> pb::Action {
    pb::Action { touch_models: vec![], kind: Some(pb::action::Kind::UpdateAccount(u)) }
}

fn text(s: &str) -> tpb::AttributeValue {
    tpb::AttributeValue { kind: Some(tpb::attribute_value::Kind::StringValue(s.into())) }
}

#[tokio::test]
async fn a_bad_account_update_names_every_bad_field() {
    let app = spawn().await;
    let mut c = admin(&app);
    let mut p = red_playbook("Updates");
    p.actions = vec![
        update(pb::UpdateAccountAction::default()),
        update(pb::UpdateAccountAction {
            lifecycle_stage: 42,
            add_tags: vec!["ok".into(), "".into(), "x".repeat(65), "both".into()],
            remove_tags: (0..21).map(|i| format!("t{i}")).chain(["both".to_string()]).collect(),
            set_attributes: [
                ("Bad-Name".to_string(), text("x")),
                ("empty".to_string(), tpb::AttributeValue { kind: None }),
                ("long".to_string(), text(&"y".repeat(1001))),
                (
                    "nan".to_string(),
                    tpb::AttributeValue { kind: Some(tpb::attribute_value::Kind::DoubleValue(f64::NAN)) },
                ),
            ]
            .into(),
        }),
    ];
    let e = c
        .create_playbook(pb::CreatePlaybookRequest { playbook: Some(p), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    for field in [
        "playbook.actions[0].update_account",
        "playbook.actions[1].update_account.lifecycle_stage",
        "playbook.actions[1].update_account.add_tags[1]",
        "playbook.actions[1].update_account.add_tags[2]",
        "playbook.actions[1].update_account.add_tags[3]",
        "playbook.actions[1].update_account.remove_tags",
        "playbook.actions[1].update_account.set_attributes[\"Bad-Name\"]",
        "playbook.actions[1].update_account.set_attributes[\"empty\"]",
        "playbook.actions[1].update_account.set_attributes[\"long\"].string_value",
        "playbook.actions[1].update_account.set_attributes[\"nan\"].double_value",
    ] {
        assert_violation(&e, field);
    }
    assert!(c.list_playbooks(pb::ListPlaybooksRequest::default()).await.unwrap().into_inner().playbooks.is_empty());

    // A good one is kept as written and read back.
    let mut p = red_playbook("Tag it");
    let good = pb::UpdateAccountAction {
        lifecycle_stage: tpb::LifecycleStage::Renewal as i32,
        add_tags: vec!["at-risk".into()],
        remove_tags: vec![],
        set_attributes: [("risk_reason".to_string(), text("usage fell"))].into(),
    };
    p.actions = vec![update(good.clone())];
    let made = c
        .create_playbook(pb::CreatePlaybookRequest { playbook: Some(p), request_id: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(made.actions[0].kind, Some(pb::action::Kind::UpdateAccount(good)));
}

#[tokio::test]
async fn account_updates_are_refused_where_playbooks_cannot_call_accounts() {
    let app = banso_testkit::spawn_with(
        banso_testkit::Options {
            vars: vec![("BANSO_SERVICE_TOKEN_SECRET".into(), String::new())],
            ..Default::default()
        },
        &[&banso_playbooks::SERVICE],
    )
    .await
    .unwrap();
    let mut c = admin(&app);
    let mut p = red_playbook("Tag it");
    p.actions = vec![update(pb::UpdateAccountAction { add_tags: vec!["x".into()], ..Default::default() })];
    let e = c
        .create_playbook(pb::CreatePlaybookRequest { playbook: Some(p), request_id: String::new() })
        .await
        .unwrap_err();
    let vs = violations(&e);
    let v = vs.iter().find(|(f, _)| f == "playbook.actions[0].update_account").expect("a violation");
    assert!(v.1.contains("BANSO_SERVICE_TOKEN_SECRET"), "{v:?}");
}
