//! Live firing: event triggers, the one open CTA per playbook and account,
//! cooldowns, enrolment limits, touch routing, audience and condition.

use banso_events::Payload;
use banso_proto::{events as ev, health::Band, playbooks as pb, types as tpb};

use crate::common::*;

async fn firings(c: &mut Client, playbook: &str) -> Vec<pb::Firing> {
    c.list_firings(pb::ListFiringsRequest { playbook_id: playbook.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .firings
}

#[tokio::test]
async fn red_opens_one_cta_for_the_owner_and_a_repeat_raises_it() {
    let app = spawn().await;
    let mut c = admin(&app);
    let p = create_enabled(&mut c, red_playbook("Red alert")).await;
    let a = account("Acme Corp", "csm-ann", tpb::TouchModel::High);
    known_account(&app, TENANT, &a).await;

    // Yellow is not red: nothing.
    publish(&app, TENANT, "health", score_changed(&a.id, Some((70.0, Band::Green)), (55.0, Band::Yellow))).await;
    let turned =
        publish(&app, TENANT, "health", score_changed(&a.id, Some((55.0, Band::Yellow)), (31.5, Band::Red))).await;
    let cta = until("the CTA opens", || {
        let mut c = c.clone();
        let id = a.id.clone();
        async move { ctas_of(&mut c, &id).await.into_iter().next() }
    })
    .await;
    assert_eq!(cta.title, "Acme Corp turned red");
    assert_eq!(cta.owner_id, "csm-ann");
    assert_eq!(cta.priority, pb::CtaPriority::High as i32);
    assert_eq!(cta.status, pb::CtaStatus::Open as i32);
    assert_eq!(cta.playbook_id, p.id);
    assert_eq!(cta.tasks.len(), 1);
    assert_eq!(cta.reasons.len(), 1);
    assert_eq!(cta.reasons[0].trigger_event_id, turned.id);
    assert_eq!(cta.description, "score 31.5 (red)");

    // The same event again (a redelivery) fires nothing twice.
    publish_envelope(&app, &turned).await;
    // Recovers, turns red again: the open CTA is raised, not duplicated.
    publish(&app, TENANT, "health", score_changed(&a.id, Some((31.5, Band::Red)), (60.0, Band::Yellow))).await;
    publish(&app, TENANT, "health", score_changed(&a.id, Some((60.0, Band::Yellow)), (20.0, Band::Red))).await;
    let raised = until("the CTA is raised", || {
        let mut c = c.clone();
        let id = a.id.clone();
        async move { ctas_of(&mut c, &id).await.into_iter().find(|x| x.reasons.len() == 2) }
    })
    .await;
    assert_eq!(raised.id, cta.id);
    assert_eq!(raised.priority, pb::CtaPriority::Critical as i32, "a repeat raises one level");
    assert_eq!(ctas_of(&mut c, &a.id).await.len(), 1);
    let f = firings(&mut c, &p.id).await;
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(f.iter().all(|f| f.status == pb::FiringStatus::Fired as i32));
    assert!(f[0].actions[0].detail.starts_with("raised cta"), "{:?}", f[0].actions);
    assert!(f[1].actions[0].detail.starts_with("opened cta"), "{:?}", f[1].actions);

    // Closed, a new firing opens a new one.
    let mut csm = client(&app, TENANT, Role::Csm);
    csm.close_call_to_action(pb::CloseCallToActionRequest {
        id: cta.id.clone(),
        outcome: pb::CtaOutcome::Resolved as i32,
        note: "sponsor re-engaged".into(),
        etag: raised.etag.clone(),
    })
    .await
    .unwrap();
    publish(&app, TENANT, "health", score_changed(&a.id, Some((20.0, Band::Red)), (60.0, Band::Yellow))).await;
    publish(&app, TENANT, "health", score_changed(&a.id, Some((60.0, Band::Yellow)), (25.0, Band::Red))).await;
    until("a second CTA opens", || {
        let mut c = c.clone();
        let id = a.id.clone();
        async move { (ctas_of(&mut c, &id).await.len() == 2).then_some(()) }
    })
    .await;
}

fn fell_by(points: f64, cooldown_secs: i64, limit: Option<pb::enrolment_limit::Limit>) -> pb::Playbook {
    pb::Playbook {
        display_name: "Falling".into(),
        trigger: Some(pb::Trigger {
            kind: Some(pb::trigger::Kind::Event(pb::EventTrigger {
                event_type: "health_score_changed".into(),
                score_fell_by: Some(points),
                ..Default::default()
            })),
        }),
        actions: vec![open_cta("{{account.name}} is falling", pb::CtaPriority::Medium, &[])],
        cooldown: Some(pbjson_types::Duration { seconds: cooldown_secs, nanos: 0 }),
        enrolment_limit: limit.map(|l| pb::EnrolmentLimit { limit: Some(l) }),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_cooldown_and_the_enrolment_limit_suppress_and_say_so() {
    let app = spawn().await;
    let mut c = admin(&app);
    let cooled = create_enabled(&mut c, fell_by(10.0, 3600, None)).await;
    let once = create_enabled(&mut c, fell_by(10.0, 60, Some(pb::enrolment_limit::Limit::OncePerAccount(true)))).await;
    let a = account("Initech", "csm-bob", tpb::TouchModel::High);
    known_account(&app, TENANT, &a).await;
    publish(&app, TENANT, "health", score_changed(&a.id, Some((90.0, Band::Green)), (75.0, Band::Green))).await;
    publish(&app, TENANT, "health", score_changed(&a.id, Some((75.0, Band::Green)), (74.0, Band::Green))).await;
    publish(&app, TENANT, "health", score_changed(&a.id, Some((74.0, Band::Green)), (60.0, Band::Yellow))).await;
    for (p, second) in [(&cooled, pb::FiringStatus::Cooldown), (&once, pb::FiringStatus::EnrolmentLimit)] {
        let f = until("two firings", || {
            let mut c = c.clone();
            let id = p.id.clone();
            async move { Some(firings(&mut c, &id).await).filter(|f| f.len() == 2) }
        })
        .await;
        assert_eq!(f[1].status, pb::FiringStatus::Fired as i32);
        assert_eq!(f[0].status, second as i32, "{f:?}");
        assert!(f[0].actions.is_empty(), "a suppressed firing runs no action");
    }
}

#[tokio::test]
async fn actions_route_by_touch_model_audience_and_condition_filter() {
    let app = spawn().await;
    let mut c = admin(&app);
    let mut p = red_playbook("Routed");
    p.actions = vec![
        open_cta("call {{account.name}}", pb::CtaPriority::High, &[tpb::TouchModel::High]),
        open_cta("nudge {{account.name}}", pb::CtaPriority::Low, &[tpb::TouchModel::Tech]),
    ];
    p.audience =
        Some(pb::Audience { lifecycle_stages: vec![tpb::LifecycleStage::Adoption as i32], ..Default::default() });
    p.condition = "account.arr >= 1000000 && health.band == 'red'".into();
    let p = create_enabled(&mut c, p).await;

    let high = account("Big", "ann", tpb::TouchModel::High);
    let mut small = account("Small", "ann", tpb::TouchModel::High);
    small.arr = Some(tpb::Money { currency_code: "USD".into(), amount_minor: 10_000 });
    let mut onboarding = account("New", "ann", tpb::TouchModel::High);
    onboarding.lifecycle_stage = tpb::LifecycleStage::Onboarding as i32;
    for a in [&high, &small, &onboarding] {
        known_account(&app, TENANT, a).await;
        publish(&app, TENANT, "health", score_changed(&a.id, Some((50.0, Band::Yellow)), (20.0, Band::Red))).await;
    }
    let f = until("the big account fires", || {
        let mut c = c.clone();
        let id = p.id.clone();
        async move { firings(&mut c, &id).await.into_iter().next() }
    })
    .await;
    assert_eq!(f.account_id, high.id);
    assert_eq!(f.actions[0].status, pb::ActionStatus::Done as i32);
    assert_eq!(f.actions[1].status, pb::ActionStatus::Skipped as i32);
    assert_eq!(f.actions[1].detail, "skipped: the account is served high touch; the action is for tech");
    // Give the others time to be (not) evaluated: the next event of the
    // tenant is applied after them, in order.
    let marker = account("Marker", "ann", tpb::TouchModel::High);
    known_account(&app, TENANT, &marker).await;
    assert_eq!(firings(&mut c, &p.id).await.len(), 1, "the small and the onboarding accounts do not fire");
    let titles: Vec<_> = ctas_of(&mut c, &high.id).await.into_iter().map(|x| x.title).collect();
    assert_eq!(titles, vec!["call Big"]);
}

#[tokio::test]
async fn a_stage_change_and_a_closed_cta_are_triggers() {
    let app = spawn().await;
    let mut c = admin(&app);
    let stage = pb::Playbook {
        display_name: "Renewal kickoff".into(),
        trigger: Some(pb::Trigger {
            kind: Some(pb::trigger::Kind::Event(pb::EventTrigger {
                event_type: "account_updated".into(),
                stage_entered: tpb::LifecycleStage::Renewal as i32,
                ..Default::default()
            })),
        }),
        actions: vec![open_cta("renewal of {{account.name}}", pb::CtaPriority::Medium, &[])],
        ..Default::default()
    };
    let stage = create_enabled(&mut c, stage).await;
    let follow = pb::Playbook {
        display_name: "Follow-up".into(),
        trigger: Some(pb::Trigger {
            kind: Some(pb::trigger::Kind::Event(pb::EventTrigger {
                event_type: "cta_closed".into(),
                ..Default::default()
            })),
        }),
        condition: "event.data.cta.outcome == 'CTA_OUTCOME_LOST'".into(),
        actions: vec![open_cta("post-mortem {{account.name}}", pb::CtaPriority::Low, &[])],
        ..Default::default()
    };
    let follow = create_enabled(&mut c, follow).await;
    let mut a = account("Umbrella", "ann", tpb::TouchModel::High);
    known_account(&app, TENANT, &a).await;
    // An update that keeps the stage is not a stage change.
    a.name = "Umbrella Corp".into();
    publish(
        &app,
        TENANT,
        "accounts",
        Payload::AccountUpdated(ev::AccountUpdated {
            account: Some(a.clone()),
            changed_fields: vec!["name".into()],
            ..Default::default()
        }),
    )
    .await;
    a.lifecycle_stage = tpb::LifecycleStage::Renewal as i32;
    publish(
        &app,
        TENANT,
        "accounts",
        Payload::AccountUpdated(ev::AccountUpdated {
            account: Some(a.clone()),
            changed_fields: vec!["lifecycle_stage".into()],
            ..Default::default()
        }),
    )
    .await;
    let cta = until("the renewal CTA", || {
        let mut c = c.clone();
        let id = a.id.clone();
        async move { ctas_of(&mut c, &id).await.into_iter().next() }
    })
    .await;
    assert_eq!(cta.title, "renewal of Umbrella Corp");
    assert_eq!(firings(&mut c, &stage.id).await.len(), 1);
    c.close_call_to_action(pb::CloseCallToActionRequest {
        id: cta.id,
        outcome: pb::CtaOutcome::Lost as i32,
        note: String::new(),
        etag: String::new(),
    })
    .await
    .unwrap();
    let post = until("the follow-up CTA", || {
        let mut c = c.clone();
        let id = a.id.clone();
        async move { ctas_of(&mut c, &id).await.into_iter().find(|x| x.title.starts_with("post-mortem")) }
    })
    .await;
    assert_eq!(post.playbook_id, follow.id);
}

#[tokio::test]
async fn test_condition_shows_the_values_a_condition_read() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = account("Globex", "ann", tpb::TouchModel::High);
    known_account(&app, TENANT, &a).await;
    let env = publish(&app, TENANT, "health", score_changed(&a.id, Some((50.0, Band::Yellow)), (0.0, Band::Red))).await;
    let condition = "health.band == 'red' && account.touch_mix.high == 100 && event.data.new_score == 0.0 && event.data.old_band == 'BAND_YELLOW'";
    let r = until("the event is stored", || {
        let mut c = c.clone();
        let req = pb::TestConditionRequest {
            condition: condition.into(),
            account_id: a.id.clone(),
            event_id: env.id.clone(),
        };
        async move { c.test_condition(req).await.ok().map(|r| r.into_inner()).filter(|r| r.result) }
    })
    .await;
    assert!(r.error.is_empty(), "{r:?}");
    assert_eq!(r.values.get("health.band").map(String::as_str), Some("'red'"), "{:?}", r.values);
    assert_eq!(r.values.get("account.touch_mix.high").map(String::as_str), Some("100"), "{:?}", r.values);
    assert_eq!(r.values.get("event.data.old_band").map(String::as_str), Some("'BAND_YELLOW'"), "{:?}", r.values);
    assert!(r.values.contains_key("event.data.new_score"), "a field at its default is present: {:?}", r.values);
    // An evaluation error is shown, not a failure of the call.
    let r = c
        .test_condition(pb::TestConditionRequest {
            condition: "account.renewal_date < now".into(),
            account_id: a.id.clone(),
            event_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!r.result && !r.error.is_empty(), "{r:?}");
    assert_eq!(r.values.get("account.renewal_date").map(String::as_str), Some("null"));
    let e = c
        .test_condition(pb::TestConditionRequest {
            condition: "true".into(),
            account_id: a.id.clone(),
            event_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn a_blend_serves_every_share_and_a_segment_forbids_a_pattern() {
    let app = spawn().await;
    let mut c = admin(&app);
    // Regulated finance: no one-to-many outreach.
    let seg = banso_proto::accounts::Segment {
        id: uuid::Uuid::now_v7().to_string(),
        display_name: "Regulated".into(),
        expression: "account.industry == 'finance'".into(),
        forbidden_touch_models: vec![tpb::TouchModel::Tech as i32],
        ..Default::default()
    };
    publish(
        &app,
        TENANT,
        "accounts",
        Payload::SegmentChanged(ev::SegmentChanged {
            segment: Some(seg),
            change: ev::segment_changed::Change::Created as i32,
        }),
    )
    .await;
    let mut p = red_playbook("Blend");
    p.touch_routing = pb::TouchRouting::Blend as i32;
    p.actions = vec![
        open_cta("call {{account.name}}", pb::CtaPriority::High, &[tpb::TouchModel::High]),
        open_cta("nudge {{account.name}}", pb::CtaPriority::Low, &[tpb::TouchModel::Tech]),
        open_cta("teach {{account.name}}", pb::CtaPriority::Low, &[tpb::TouchModel::Low]),
    ];
    let p = create_enabled(&mut c, p).await;
    let mix = |high, tech| {
        vec![
            tpb::TouchShare { touch_model: tpb::TouchModel::High as i32, percent: high },
            tpb::TouchShare { touch_model: tpb::TouchModel::Tech as i32, percent: tech },
        ]
    };
    let mut open = account("Open Co", "ann", tpb::TouchModel::High);
    open.touch_mix = mix(60, 40);
    let mut bank = account("Bank Co", "ann", tpb::TouchModel::High);
    bank.touch_mix = mix(60, 40);
    bank.industry = "finance".into();
    for a in [&open, &bank] {
        known_account(&app, TENANT, a).await;
        publish(&app, TENANT, "health", score_changed(&a.id, Some((50.0, Band::Yellow)), (20.0, Band::Red))).await;
    }
    let f = until("both fire", || {
        let mut c = c.clone();
        let id = p.id.clone();
        async move { Some(firings(&mut c, &id).await).filter(|f| f.len() == 2) }
    })
    .await;
    let of = |a: &str| f.iter().find(|x| x.account_id == a).unwrap().actions.clone();
    let statuses = |v: &[pb::ActionOutcome]| v.iter().map(|x| x.status).collect::<Vec<_>>();
    let (done, skipped) = (pb::ActionStatus::Done as i32, pb::ActionStatus::Skipped as i32);
    assert_eq!(statuses(&of(&open.id)), vec![done, done, skipped], "high and tech are served; low is not");
    let bank_actions = of(&bank.id);
    assert_eq!(statuses(&bank_actions), vec![done, skipped, skipped]);
    assert_eq!(bank_actions[1].detail, "skipped: touch model tech is forbidden in segment Regulated");
}

#[tokio::test]
async fn a_usage_drop_fires_and_usage_seen_feeds_the_no_usage_schedule() {
    let app = spawn().await;
    let mut c = admin(&app);
    let mut p = red_playbook("Usage drop");
    p.trigger = Some(pb::Trigger {
        kind: Some(pb::trigger::Kind::Event(pb::EventTrigger {
            event_type: "health_score_changed".into(),
            measure_dropped: Some(pb::MeasureDrop { measure: "events_30d:login".into(), percent: 50.0 }),
            ..Default::default()
        })),
    });
    let p = create_enabled(&mut c, p).await;
    let a = account("Dropper", "ann", tpb::TouchModel::High);
    known_account(&app, TENANT, &a).await;
    let reading = |value, previous| ev::MeasureReading {
        measure: "events_30d:login".into(),
        value: Some(value),
        previous_value: Some(previous),
        points: Some(50.0),
        weight: 1.0,
    };
    for (value, previous) in [(60.0, 100.0), (40.0, 100.0)] {
        let mut e = score_changed(&a.id, Some((80.0, Band::Green)), (70.0, Band::Green));
        if let Payload::HealthScoreChanged(h) = &mut e {
            h.measures = vec![reading(value, previous)];
            h.trend_7d = Some(-10.0);
        }
        publish(&app, TENANT, "health", e).await;
    }
    let f = until("the 60% drop fires", || {
        let mut c = c.clone();
        let id = p.id.clone();
        async move { Some(firings(&mut c, &id).await).filter(|f| !f.is_empty()) }
    })
    .await;
    assert_eq!(f.len(), 1, "a 40% drop does not fire, a 60% one does");
    let r = c
        .test_condition(pb::TestConditionRequest {
            condition: "health.measures['events_30d:login'].previous_value == 100.0 && health.trend_7d == -10.0".into(),
            account_id: a.id.clone(),
            event_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.result, "{r:?}");

    // No usage for 10 days: Health's UsageSeen of 20 days ago says so; a newer one clears it.
    let sched = pb::Playbook {
        display_name: "Quiet".into(),
        trigger: Some(pb::Trigger {
            kind: Some(pb::trigger::Kind::Schedule(pb::ScheduleTrigger {
                when: Some(pb::schedule_trigger::When::NoUsageForDays(10)),
            })),
        }),
        actions: vec![open_cta("quiet {{account.name}}", pb::CtaPriority::Low, &[])],
        ..Default::default()
    };
    let sched = c
        .create_playbook(pb::CreatePlaybookRequest { playbook: Some(sched), request_id: String::new() })
        .await
        .unwrap()
        .into_inner();
    let day = |d: chrono::NaiveDate| {
        use chrono::Datelike;
        tpb::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 }
    };
    let today = chrono::Utc::now().date_naive();
    publish(
        &app,
        TENANT,
        "health",
        Payload::UsageSeen(ev::UsageSeen {
            account_id: a.id.clone(),
            day: Some(day(today - chrono::Duration::days(20))),
        }),
    )
    .await;
    let quiet = |want: i64| {
        let c = c.clone();
        let id = sched.id.clone();
        async move {
            until(&format!("{want} quiet accounts"), || {
                let mut c = c.clone();
                let id = id.clone();
                async move {
                    let s = c
                        .simulate_playbook(pb::SimulatePlaybookRequest { id, ..Default::default() })
                        .await
                        .unwrap()
                        .into_inner();
                    (s.would_fire == want).then_some(())
                }
            })
            .await
        }
    };
    quiet(1).await;
    // A newer day moves it forward; an older one never moves it back.
    publish(
        &app,
        TENANT,
        "health",
        Payload::UsageSeen(ev::UsageSeen { account_id: a.id.clone(), day: Some(day(today)) }),
    )
    .await;
    quiet(0).await;
    publish(
        &app,
        TENANT,
        "health",
        Payload::UsageSeen(ev::UsageSeen {
            account_id: a.id.clone(),
            day: Some(day(today - chrono::Duration::days(30))),
        }),
    )
    .await;
    let marker = account("Marker", "ann", tpb::TouchModel::High);
    known_account(&app, TENANT, &marker).await;
    quiet(0).await;
}

#[tokio::test]
async fn a_churn_risk_turning_high_opens_a_cta() {
    let app = spawn().await;
    let mut c = admin(&app);
    let p = create_enabled(
        &mut c,
        pb::Playbook {
            display_name: "Churn risk".into(),
            trigger: Some(pb::Trigger {
                kind: Some(pb::trigger::Kind::Event(pb::EventTrigger {
                    event_type: "churn_risk_changed".into(),
                    ..Default::default()
                })),
            }),
            condition: "event.data.new_bucket == 'CHURN_RISK_BUCKET_HIGH' && event.data.probability >= 0.3".into(),
            actions: vec![open_cta("{{account.name}} may churn", pb::CtaPriority::High, &[])],
            ..Default::default()
        },
    )
    .await;
    let a = account("Hooli", "csm-ann", tpb::TouchModel::High);
    known_account(&app, TENANT, &a).await;
    let risk = |old: ev::ChurnRiskBucket, new: ev::ChurnRiskBucket, probability: f64| {
        Payload::ChurnRiskChanged(ev::ChurnRiskChanged {
            account_id: a.id.clone(),
            old_bucket: old as i32,
            new_bucket: new as i32,
            probability,
            horizon_days: 90,
            ..Default::default()
        })
    };
    publish(&app, TENANT, "health", risk(ev::ChurnRiskBucket::Low, ev::ChurnRiskBucket::Medium, 0.2)).await;
    publish(&app, TENANT, "health", risk(ev::ChurnRiskBucket::Medium, ev::ChurnRiskBucket::High, 0.45)).await;
    let f = until("the high risk fires", || {
        let mut c = c.clone();
        let id = p.id.clone();
        async move { Some(firings(&mut c, &id).await).filter(|f| !f.is_empty()) }
    })
    .await;
    assert_eq!(f.len(), 1, "the medium bucket does not match the condition: {f:?}");
    let ctas = ctas_of(&mut c, &a.id).await;
    assert_eq!(ctas.len(), 1);
    assert_eq!(ctas[0].title, "Hooli may churn");
}

#[tokio::test]
async fn an_upsell_signal_opens_an_opportunity_cta() {
    let app = spawn().await;
    let mut c = admin(&app);
    let p = create_enabled(
        &mut c,
        pb::Playbook {
            display_name: "Upsell".into(),
            trigger: Some(pb::Trigger {
                kind: Some(pb::trigger::Kind::Event(pb::EventTrigger {
                    event_type: "expansion_signal_changed".into(),
                    ..Default::default()
                })),
            }),
            condition:
                "event.data.target == 'EXPANSION_TARGET_UPSELL' && event.data.new_bucket == 'CHURN_RISK_BUCKET_HIGH'"
                    .into(),
            actions: vec![open_cta("offer {{account.name}} the next edition", pb::CtaPriority::Medium, &[])],
            ..Default::default()
        },
    )
    .await;
    let a = account("Pied Piper", "csm-ann", tpb::TouchModel::High);
    known_account(&app, TENANT, &a).await;
    let signal = |target: ev::ExpansionTarget| {
        Payload::ExpansionSignalChanged(ev::ExpansionSignalChanged {
            account_id: a.id.clone(),
            target: target as i32,
            old_bucket: ev::ChurnRiskBucket::Medium as i32,
            new_bucket: ev::ChurnRiskBucket::High as i32,
            probability: 0.4,
            horizon_days: 90,
            ..Default::default()
        })
    };
    publish(&app, TENANT, "health", signal(ev::ExpansionTarget::CrossSell)).await;
    publish(&app, TENANT, "health", signal(ev::ExpansionTarget::Upsell)).await;
    let f = until("the upsell signal fires", || {
        let mut c = c.clone();
        let id = p.id.clone();
        async move { Some(firings(&mut c, &id).await).filter(|f| !f.is_empty()) }
    })
    .await;
    assert_eq!(f.len(), 1, "the cross-sell signal does not match the condition: {f:?}");
    assert_eq!(ctas_of(&mut c, &a.id).await[0].title, "offer Pied Piper the next edition");
}
