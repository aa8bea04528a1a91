//! Feedback's SurveyAnswered as a trigger: "a detractor answered" opens a
//! risk CTA for the account's owner — simulated on stored answers, then
//! live — and answers the engine cannot use harm nothing.

use banso_events::{Payload, bus::Outgoing};
use banso_proto::{
    events as ev,
    feedback::{NpsCategory, SurveyKind},
    playbooks as pb, types as tpb,
};

use crate::common::*;

/// What a user writes: an event trigger on survey_answered, the condition
/// on the NPS category, a RISK CTA for the account's owner.
fn detractor_playbook() -> pb::Playbook {
    pb::Playbook {
        display_name: "A detractor answered".into(),
        trigger: Some(pb::Trigger {
            kind: Some(pb::trigger::Kind::Event(pb::EventTrigger {
                event_type: "survey_answered".into(),
                ..Default::default()
            })),
        }),
        condition: "event.data.nps_category == 'NPS_CATEGORY_DETRACTOR'".into(),
        actions: vec![pb::Action {
            touch_models: vec![],
            kind: Some(pb::action::Kind::OpenCta(pb::OpenCtaAction {
                r#type: pb::CtaType::Risk as i32,
                priority: pb::CtaPriority::High as i32,
                title_template: "{{account.name}}: a detractor answered".into(),
                description_template: "Call back within two days.".into(),
                owner: Some(pb::OwnerRule { rule: Some(pb::owner_rule::Rule::AccountOwner(true)) }),
                due_in_days: 2,
                task_titles: vec!["call the contact back".into()],
            })),
        }],
        ..Default::default()
    }
}

/// An answer as Feedback publishes it.
fn answered(account: &str, kind: SurveyKind, score: Option<i32>, category: NpsCategory) -> Payload {
    Payload::SurveyAnswered(ev::SurveyAnswered {
        answer_id: uuid::Uuid::now_v7().to_string(),
        survey_id: uuid::Uuid::now_v7().to_string(),
        kind: kind as i32,
        campaign_id: uuid::Uuid::now_v7().to_string(),
        invitation_id: uuid::Uuid::now_v7().to_string(),
        account_id: account.into(),
        contact_id: uuid::Uuid::now_v7().to_string(),
        score,
        nps_category: category as i32,
        comment: "サポートに繋がるまでが遅い".into(),
        answer_time: Some(pbjson_types::Timestamp { seconds: chrono::Utc::now().timestamp(), nanos: 0 }),
        perception_agreement: None,
    })
}

fn nps(account: &str, score: i32) -> Payload {
    let category = match score {
        0..=6 => NpsCategory::Detractor,
        7..=8 => NpsCategory::Passive,
        _ => NpsCategory::Promoter,
    };
    answered(account, SurveyKind::Nps, Some(score), category)
}

async fn firings(c: &mut Client, playbook: &str) -> Vec<pb::Firing> {
    c.list_firings(pb::ListFiringsRequest { playbook_id: playbook.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .firings
}

#[tokio::test]
async fn a_detractor_opens_a_risk_cta_for_the_owner_and_a_promoter_does_not() {
    let app = spawn().await;
    let mut c = admin(&app);
    let draft = c
        .create_playbook(pb::CreatePlaybookRequest { playbook: Some(detractor_playbook()), request_id: String::new() })
        .await
        .unwrap()
        .into_inner();
    let a = account("Acme Corp", "csm-ann", tpb::TouchModel::High);
    known_account(&app, TENANT, &a).await;

    // Simulated first, on the answers of the last days: of a promoter, a
    // passive, a CUSTOM survey (no score, no category) and a detractor,
    // only the detractor fires.
    let stored = [
        nps(&a.id, 10),
        nps(&a.id, 7),
        answered(&a.id, SurveyKind::Custom, None, NpsCategory::Unspecified),
        nps(&a.id, 3),
    ];
    let mut envs = Vec::new();
    for p in stored {
        envs.push(publish(&app, TENANT, "feedback", p).await);
    }
    let sim = until("the four answers are stored", || {
        let mut c = c.clone();
        let id = draft.id.clone();
        async move {
            let s = c
                .simulate_playbook(pb::SimulatePlaybookRequest { id, ..Default::default() })
                .await
                .unwrap()
                .into_inner();
            (s.evaluated == 4).then_some(s)
        }
    })
    .await;
    assert_eq!((sim.matched, sim.would_fire, sim.accounts), (1, 1, 1), "{sim:?}");
    assert_eq!(sim.condition_errors, 0, "{sim:?}");
    assert_eq!(sim.firings[0].trigger_key, envs[3].id);
    assert_eq!(sim.firings[0].actions[0].detail, "would open cta \"Acme Corp: a detractor answered\"");
    assert!(ctas_of(&mut c, &a.id).await.is_empty(), "a simulation writes nothing");

    // What the condition reads of a stored answer.
    let r = c
        .test_condition(pb::TestConditionRequest {
            condition: "event.data.nps_category == 'NPS_CATEGORY_DETRACTOR' && event.data.kind == 'SURVEY_KIND_NPS' \
                        && event.data.score <= 6"
                .into(),
            account_id: a.id.clone(),
            event_id: envs[3].id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.result && r.error.is_empty(), "{r:?}");
    let value = |k: &str| r.values.get(k).map(String::as_str);
    assert_eq!(value("event.data.nps_category"), Some("'NPS_CATEGORY_DETRACTOR'"), "{:?}", r.values);
    assert_eq!(value("event.data.kind"), Some("'SURVEY_KIND_NPS'"), "{:?}", r.values);
    assert_eq!(value("event.data.score"), Some("3"), "{:?}", r.values);
    let custom = c
        .test_condition(pb::TestConditionRequest {
            condition: "has(event.data.score)".into(),
            account_id: a.id.clone(),
            event_id: envs[2].id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!custom.result && custom.error.is_empty(), "a CUSTOM answer has no score: {custom:?}");

    // Live: a promoter, then a detractor, of the same account (in order).
    c.enable_playbook(pb::EnablePlaybookRequest { id: draft.id.clone(), version: 0, etag: draft.etag.clone() })
        .await
        .unwrap();
    publish(&app, TENANT, "feedback", nps(&a.id, 9)).await;
    let detractor = publish(&app, TENANT, "feedback", nps(&a.id, 2)).await;
    let cta = until("the risk CTA opens", || {
        let mut c = c.clone();
        let id = a.id.clone();
        async move { ctas_of(&mut c, &id).await.into_iter().next() }
    })
    .await;
    assert_eq!(cta.r#type, pb::CtaType::Risk as i32);
    assert_eq!(cta.owner_id, "csm-ann", "the account's owner");
    assert_eq!(cta.title, "Acme Corp: a detractor answered");
    assert_eq!(cta.priority, pb::CtaPriority::High as i32);
    assert_eq!(cta.status, pb::CtaStatus::Open as i32);
    assert_eq!(cta.playbook_id, draft.id);
    assert_eq!(cta.reasons.len(), 1, "the promoter before it fired nothing: {:?}", cta.reasons);
    assert_eq!(cta.reasons[0].trigger_event_id, detractor.id);
    let f = firings(&mut c, &draft.id).await;
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].trigger_key, detractor.id);
    assert_eq!(f[0].status, pb::FiringStatus::Fired as i32);

    // A redelivered answer fires nothing twice.
    publish_envelope(&app, &detractor).await;
    // A promoter of another account: nothing; a later detractor of it is
    // the marker that the promoter was handled (one consumer, in order,
    // on one partition: the same account).
    let b = account("Globex", "csm-bob", tpb::TouchModel::High);
    known_account(&app, TENANT, &b).await;
    publish(&app, TENANT, "feedback", nps(&b.id, 10)).await;
    publish(&app, TENANT, "feedback", nps(&b.id, 0)).await;
    let other = until("the second account's CTA", || {
        let mut c = c.clone();
        let id = b.id.clone();
        async move { ctas_of(&mut c, &id).await.into_iter().next() }
    })
    .await;
    assert_eq!(other.owner_id, "csm-bob");
    assert_eq!(other.reasons.len(), 1, "{:?}", other.reasons);
    assert_eq!(firings(&mut c, &draft.id).await.len(), 2);
    assert_eq!(ctas_of(&mut c, &a.id).await.len(), 1);
}

#[tokio::test]
async fn answers_the_engine_cannot_use_harm_nothing() {
    use prost::Message as _;
    let app = spawn().await;
    let mut c = admin(&app);
    // Fires on every answer it can read: none of the bad ones below may.
    let mut always = detractor_playbook();
    always.display_name = "Any answer".into();
    always.condition = String::new();
    let p = create_enabled(&mut c, always).await;
    let a = account("Initech", "csm-ann", tpb::TouchModel::High);
    known_account(&app, TENANT, &a).await;

    let subject = "banso.feedback.survey_answered".to_string();
    app.runtime.bus.prepare_source("feedback").await.unwrap();
    // Not an envelope at all.
    let garbage = Outgoing {
        id: uuid::Uuid::now_v7().to_string(),
        subject: subject.clone(),
        payload: bytes::Bytes::from_static(b"\xff\xff not protobuf"),
    };
    app.runtime.bus.publish(&[garbage]).await.unwrap();
    // An envelope of the type without its payload.
    let mut empty = banso_events::envelope::new(TENANT, "feedback", nps(&a.id, 1));
    empty.payload = None;
    let out =
        Outgoing { id: empty.id.clone(), subject: subject.clone(), payload: bytes::Bytes::from(empty.encode_to_vec()) };
    app.runtime.bus.publish(&[out]).await.unwrap();
    // No account, not an id, an account Playbooks does not know.
    publish(&app, TENANT, "feedback", nps("", 1)).await;
    publish(&app, TENANT, "feedback", nps("not-a-uuid", 1)).await;
    let stranger = uuid::Uuid::now_v7().to_string();
    publish(&app, TENANT, "feedback", nps(&stranger, 1)).await;
    // An enum value a newer Feedback added (a number this build has no
    // name for) stays a number: the detractor condition does not match it.
    let mut newer = detractor_playbook();
    newer.display_name = "Detractors only".into();
    let newer = create_enabled(&mut c, newer).await;
    let unknown = publish(
        &app,
        TENANT,
        "feedback",
        Payload::SurveyAnswered(ev::SurveyAnswered {
            account_id: a.id.clone(),
            kind: 99,
            nps_category: 42,
            ..Default::default()
        }),
    )
    .await;
    // The consumer is alive after all of them: a real answer fires both.
    let good = publish(&app, TENANT, "feedback", nps(&a.id, 4)).await;
    let cta = until("the good answer's CTA", || {
        let mut c = c.clone();
        let (id, playbook) = (a.id.clone(), newer.id.clone());
        async move { ctas_of(&mut c, &id).await.into_iter().find(|x| x.playbook_id == playbook) }
    })
    .await;
    assert_eq!(cta.reasons.len(), 1);
    assert_eq!(cta.reasons[0].trigger_event_id, good.id);
    let any = firings(&mut c, &p.id).await;
    let fired_on: Vec<_> = any.iter().map(|f| f.trigger_key.clone()).collect();
    assert_eq!(fired_on, vec![good.id.clone(), unknown.id.clone()], "only the readable answers of a known account");
    assert!(any.iter().all(|f| f.account_id == a.id));
    let r = c
        .test_condition(pb::TestConditionRequest {
            condition: "event.data.nps_category == 42 && event.data.kind == 99".into(),
            account_id: a.id.clone(),
            event_id: unknown.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.result, "an unknown enum number stays a number: {r:?}");
    assert!(ctas_of(&mut c, &stranger).await.is_empty());
}

#[tokio::test]
async fn health_helpers_are_refused_on_survey_answered() {
    let app = spawn().await;
    let mut c = admin(&app);
    let mut p = detractor_playbook();
    p.trigger = Some(pb::Trigger {
        kind: Some(pb::trigger::Kind::Event(pb::EventTrigger {
            event_type: "survey_answered".into(),
            band_became: banso_proto::health::Band::Red as i32,
            ..Default::default()
        })),
    });
    let e = c
        .create_playbook(pb::CreatePlaybookRequest { playbook: Some(p), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_violation(&e, "playbook.trigger.event.band_became");
}
