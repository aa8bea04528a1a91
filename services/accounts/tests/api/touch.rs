//! Playbooks on the Accounts side (issue #12): the touch mix of an account,
//! the touch patterns a segment forbids, the origin of a touch and the
//! proactive ratio.

use banso_proto::{accounts as pb, types as tpb};
use chrono::{Duration, Utc};

use crate::common::*;

fn share(t: pb::TouchModel, percent: i32) -> tpb::TouchShare {
    tpb::TouchShare { touch_model: t as i32, percent }
}

fn ts(t: chrono::DateTime<Utc>) -> Option<pbjson_types::Timestamp> {
    Some(pbjson_types::Timestamp { seconds: t.timestamp(), nanos: 0 })
}

async fn update(c: &mut Client, a: pb::Account, paths: &[&str]) -> Result<pb::Account, tonic::Status> {
    c.update_account(pb::UpdateAccountRequest { account: Some(a), update_mask: mask(paths) })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn touch_mix_and_dominant_touch_model() {
    use pb::TouchModel as T;
    let app = spawn().await;
    let mut c = admin(&app);

    // Only touch_model: a mix of 100% of it.
    let a = create(&mut c, account("High only")).await;
    assert_eq!(a.touch_mix, vec![share(T::High, 100)]);

    // Only touch_mix: touch_model is the dominant pattern; canonical order.
    let b = create(
        &mut c,
        pb::Account { touch_model: 0, touch_mix: vec![share(T::Tech, 60), share(T::High, 40)], ..account("Mixed") },
    )
    .await;
    assert_eq!(b.touch_model, T::Tech as i32);
    assert_eq!(b.touch_mix, vec![share(T::High, 40), share(T::Tech, 60)]);

    // A tie goes to the more personal pattern.
    let tie = create(
        &mut c,
        pb::Account { touch_model: 0, touch_mix: vec![share(T::Tech, 50), share(T::Low, 50)], ..account("Tie") },
    )
    .await;
    assert_eq!(tie.touch_model, T::Low as i32);

    // Update touch_model alone: the mix follows.
    let a2 = update(
        &mut c,
        pb::Account { id: a.id.clone(), touch_model: T::Low as i32, ..Default::default() },
        &["touch_model"],
    )
    .await
    .unwrap();
    assert_eq!(a2.touch_mix, vec![share(T::Low, 100)]);

    // Update touch_mix alone: touch_model follows; the event says both changed.
    let a3 = update(
        &mut c,
        pb::Account { id: a.id.clone(), touch_mix: vec![share(T::High, 70), share(T::Low, 30)], ..Default::default() },
        &["touch_mix"],
    )
    .await
    .unwrap();
    assert_eq!(a3.touch_model, T::High as i32);
    assert_eq!(a3.touch_mix, vec![share(T::High, 70), share(T::Low, 30)]);
    let got = c.get_account(pb::GetAccountRequest { id: a.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got.touch_mix, a3.touch_mix, "the mix is stored");

    // Both, agreeing: fine; disagreeing: the touch_model is blamed.
    update(
        &mut c,
        pb::Account {
            id: a.id.clone(),
            touch_model: T::Tech as i32,
            touch_mix: vec![share(T::Tech, 100)],
            ..Default::default()
        },
        &["touch_model", "touch_mix"],
    )
    .await
    .unwrap();
    let err = update(
        &mut c,
        pb::Account {
            id: a.id.clone(),
            touch_model: T::High as i32,
            touch_mix: vec![share(T::Tech, 60), share(T::High, 40)],
            ..Default::default()
        },
        &["touch_model", "touch_mix"],
    )
    .await
    .unwrap_err();
    assert_violation(&err, "account.touch_model");

    // Bad mixes: every problem at once, each naming its share.
    let err = c
        .create_account(pb::CreateAccountRequest {
            account: Some(pb::Account {
                touch_model: 0,
                touch_mix: vec![share(T::High, 60), share(T::High, 0), share(T::Tech, 101)],
                ..account("Bad")
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_violation(&err, "account.touch_mix[1].percent");
    assert_violation(&err, "account.touch_mix[1].touch_model");
    assert_violation(&err, "account.touch_mix[2].percent");
    let err = c
        .create_account(pb::CreateAccountRequest {
            account: Some(pb::Account {
                touch_model: 0,
                touch_mix: vec![share(T::High, 60), share(T::Low, 30)],
                ..account("Ninety")
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    let vs = violations(&err);
    assert!(vs.iter().any(|(f, d)| f == "account.touch_mix" && d.contains("90")), "{vs:?}");
    // touch_mix named and empty hands the mix back to the rules (none
    // here): the mix stays, no longer held by hand.
    let held = c.get_account(pb::GetAccountRequest { id: a.id.clone() }).await.unwrap().into_inner();
    assert!(held.touch_mix_manual);
    let back = update(&mut c, pb::Account { id: a.id.clone(), ..Default::default() }, &["touch_mix"]).await.unwrap();
    assert_eq!(back.touch_mix, held.touch_mix);
    assert!(!back.touch_mix_manual);

    // Upsert with touch_model only.
    let up = c
        .upsert_account(pb::UpsertAccountRequest {
            account: Some(pb::Account { external_id: "crm-1".into(), touch_model: T::Tech as i32, ..account("Up") }),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(up.account.unwrap().touch_mix, vec![share(T::Tech, 100)]);
}

#[tokio::test]
async fn segments_forbid_touch_patterns() {
    use pb::TouchModel as T;
    let app = spawn().await;
    let mut c = admin(&app);
    let s = c
        .create_segment(pb::CreateSegmentRequest {
            segment: Some(pb::Segment {
                display_name: "Regulated".into(),
                expression: "account.industry == 'banking'".into(),
                forbidden_touch_models: vec![T::Tech as i32],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.forbidden_touch_models, vec![T::Tech as i32]);
    let got = c.get_segment(pb::GetSegmentRequest { id: s.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got.forbidden_touch_models, vec![T::Tech as i32]);
    let err = c
        .update_segment(pb::UpdateSegmentRequest {
            segment: Some(pb::Segment {
                id: s.id.clone(),
                forbidden_touch_models: vec![T::Low as i32, T::Low as i32, 0],
                ..Default::default()
            }),
            update_mask: mask(&["forbidden_touch_models"]),
        })
        .await
        .unwrap_err();
    assert_violation(&err, "segment.forbidden_touch_models[1]");
    assert_violation(&err, "segment.forbidden_touch_models[2]");
    let err = c
        .update_segment(pb::UpdateSegmentRequest {
            segment: Some(pb::Segment {
                id: s.id.clone(),
                forbidden_touch_models: vec![T::Low as i32, T::High as i32, T::Tech as i32],
                ..Default::default()
            }),
            update_mask: mask(&["forbidden_touch_models"]),
        })
        .await
        .unwrap_err();
    assert_violation(&err, "segment.forbidden_touch_models");
    let cleared = c
        .update_segment(pb::UpdateSegmentRequest {
            segment: Some(pb::Segment { id: s.id.clone(), ..Default::default() }),
            update_mask: mask(&["forbidden_touch_models"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(cleared.forbidden_touch_models.is_empty());
}

async fn log(
    c: &mut Client,
    account_id: &str,
    kind: pb::ActivityKind,
    origin: tpb::TouchOrigin,
    hours_ago: i64,
) -> pb::Activity {
    c.log_activity(pb::LogActivityRequest {
        activity: Some(pb::Activity {
            account_id: account_id.into(),
            kind: kind as i32,
            origin: origin as i32,
            occur_time: ts(Utc::now() - Duration::hours(hours_ago)),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
}

#[tokio::test]
async fn origins_default_by_kind_and_filter() {
    use pb::ActivityKind as K;
    use tpb::TouchOrigin as O;
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("Origins")).await;
    assert_eq!(log(&mut c, &a.id, K::Meeting, O::Unspecified, 5).await.origin, O::Vendor as i32);
    assert_eq!(log(&mut c, &a.id, K::EmailReplied, O::Unspecified, 4).await.origin, O::Customer as i32);
    assert_eq!(log(&mut c, &a.id, K::Ticket, O::Unspecified, 3).await.origin, O::Customer as i32);
    assert_eq!(log(&mut c, &a.id, K::Note, O::Unspecified, 2).await.origin, O::Unspecified as i32);
    assert_eq!(log(&mut c, &a.id, K::Call, O::Customer, 1).await.origin, O::Customer as i32, "given wins");
    assert_eq!(log(&mut c, &a.id, K::Other, O::Unspecified, 1).await.origin, O::Unspecified as i32);

    let list = |origins: Vec<O>| pb::ListActivitiesRequest {
        account_id: a.id.clone(),
        origins: origins.into_iter().map(|o| o as i32).collect(),
        ..Default::default()
    };
    let kinds = |r: pb::ListActivitiesResponse| r.activities.iter().map(|a| a.kind).collect::<Vec<_>>();
    let customer = c.list_activities(list(vec![O::Customer])).await.unwrap().into_inner();
    assert_eq!(kinds(customer), vec![K::Call as i32, K::Ticket as i32, K::EmailReplied as i32]);
    let none = c.list_activities(list(vec![O::Unspecified])).await.unwrap().into_inner();
    assert_eq!(kinds(none), vec![K::Other as i32, K::Note as i32]);

    let err = c
        .log_activity(pb::LogActivityRequest {
            activity: Some(pb::Activity {
                account_id: a.id.clone(),
                kind: K::Note as i32,
                origin: O::Vendor as i32,
                occur_time: ts(Utc::now()),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_violation(&err, "activity.origin");
    let err =
        c.list_activities(pb::ListActivitiesRequest { origins: vec![7], ..Default::default() }).await.unwrap_err();
    assert_violation(&err, "origins[0]");
}

/// The worked example of docs/metrics.md, by hand.
#[tokio::test]
async fn proactive_ratio_by_account_owner_and_segment() {
    use pb::ActivityKind as K;
    use tpb::TouchOrigin as O;
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, pb::Account { owner_id: "u1".into(), ..account("A") }).await;
    let b = create(&mut c, pb::Account { owner_id: "u2".into(), ..account("B") }).await;
    let d = create(&mut c, pb::Account { owner_id: "u1".into(), ..account("C") }).await;
    // A: 3 vendor-started, 1 customer-started; one meeting before the period.
    for k in [K::Meeting, K::Call, K::EmailSent] {
        log(&mut c, &a.id, k, O::Unspecified, 24).await;
    }
    log(&mut c, &a.id, K::EmailReplied, O::Unspecified, 23).await;
    log(&mut c, &a.id, K::Meeting, O::Unspecified, 24 * 30).await;
    // B: 1 vendor-started, 3 customer-started (a call the customer asked for).
    log(&mut c, &b.id, K::Outreach, O::Unspecified, 20).await;
    log(&mut c, &b.id, K::Ticket, O::Unspecified, 19).await;
    log(&mut c, &b.id, K::Ticket, O::Unspecified, 18).await;
    log(&mut c, &b.id, K::Call, O::Customer, 17).await;
    // C: no touches, only a note.
    log(&mut c, &d.id, K::Note, O::Unspecified, 16).await;
    let u1 = c
        .create_segment(pb::CreateSegmentRequest {
            segment: Some(pb::Segment {
                display_name: "u1".into(),
                expression: "account.owner_id == 'u1'".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();

    let now = Utc::now();
    let req = |g: pb::ProactiveRatioGrouping, segment_ids: Vec<String>| pb::GetProactiveRatioRequest {
        start_time: ts(now - Duration::days(7)),
        end_time: ts(now + Duration::hours(1)),
        group_by: g as i32,
        segment_ids,
    };
    let row = |g: &pb::ProactiveRatioGroup| (g.key.clone(), g.vendor_touches, g.customer_touches, g.ratio);

    let r = c.get_proactive_ratio(req(pb::ProactiveRatioGrouping::Account, vec![])).await.unwrap().into_inner();
    let mut expect = vec![(a.id.clone(), 3, 1, Some(0.75)), (b.id.clone(), 1, 3, Some(0.25))];
    expect.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(r.groups.iter().map(row).collect::<Vec<_>>(), expect);
    assert_eq!(row(r.total.as_ref().unwrap()), (String::new(), 4, 4, Some(0.5)));

    let r = c.get_proactive_ratio(req(pb::ProactiveRatioGrouping::Owner, vec![])).await.unwrap().into_inner();
    assert_eq!(
        r.groups.iter().map(row).collect::<Vec<_>>(),
        vec![("u1".to_owned(), 3, 1, Some(0.75)), ("u2".to_owned(), 1, 3, Some(0.25))]
    );

    let r = c
        .get_proactive_ratio(req(pb::ProactiveRatioGrouping::Segment, vec![u1.id.clone()]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.groups.iter().map(row).collect::<Vec<_>>(), vec![(u1.id.clone(), 3, 1, Some(0.75))]);

    // A period without touches: no ratio.
    let empty = c
        .get_proactive_ratio(pb::GetProactiveRatioRequest {
            start_time: ts(now - Duration::days(400)),
            end_time: ts(now - Duration::days(300)),
            group_by: pb::ProactiveRatioGrouping::Account as i32,
            segment_ids: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(empty.groups.is_empty());
    assert_eq!(row(empty.total.as_ref().unwrap()), (String::new(), 0, 0, None));

    // Bad input, every field at once; another tenant's segment is not found.
    let err = c
        .get_proactive_ratio(pb::GetProactiveRatioRequest {
            start_time: ts(now),
            end_time: ts(now - Duration::days(1)),
            group_by: 0,
            segment_ids: vec!["x".into()],
        })
        .await
        .unwrap_err();
    assert_violation(&err, "end_time");
    assert_violation(&err, "group_by");
    assert_violation(&err, "segment_ids[0]");
    let err = c
        .get_proactive_ratio(pb::GetProactiveRatioRequest {
            start_time: ts(now - Duration::days(800)),
            end_time: ts(now),
            group_by: pb::ProactiveRatioGrouping::Account as i32,
            segment_ids: vec![u1.id.clone()],
        })
        .await
        .unwrap_err();
    assert_violation(&err, "end_time");
    assert_violation(&err, "segment_ids");
    let mut other = client(&app, "globex", Role::Admin);
    let err =
        other.get_proactive_ratio(req(pb::ProactiveRatioGrouping::Segment, vec![u1.id.clone()])).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}

/// Publishes `payload` from source "playbooks" onto the app's bus, as the
/// Playbooks relay would; returns the envelope (to redeliver it).
async fn publish(app: &banso_testkit::TestApp, env: &banso_events::Envelope) {
    use prost::Message as _;
    let out = banso_events::bus::Outgoing {
        id: env.id.clone(),
        subject: banso_events::envelope::subject(env),
        payload: env.encode_to_vec().into(),
    };
    app.runtime.bus.prepare_source(&env.source).await.unwrap();
    app.runtime.bus.publish(&[out]).await.unwrap();
}

#[tokio::test]
async fn ctas_and_outreach_of_playbooks_land_on_the_timeline_once() {
    use banso_events::Payload;
    use banso_proto::{events as ev, playbooks as ppb};
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("Timeline of playbooks")).await;
    let contact = c
        .create_contact(pb::CreateContactRequest {
            contact: Some(pb::Contact { account_id: a.id.clone(), name: "佐藤".into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let opened_at = Utc::now() - Duration::hours(3);
    let cta = ppb::CallToAction {
        id: "0192f000-0000-7000-8000-000000000001".into(),
        account_id: a.id.clone(),
        title: "Usage dropped".into(),
        owner_id: "csm-1".into(),
        create_time: ts(opened_at),
        ..Default::default()
    };
    let closed = ppb::CallToAction {
        outcome: ppb::CtaOutcome::Resolved as i32,
        close_time: ts(opened_at + Duration::hours(1)),
        ..cta.clone()
    };
    let envs = [
        banso_events::envelope::new("acme", "playbooks", Payload::CtaOpened(ev::CtaOpened { cta: Some(cta.clone()) })),
        banso_events::envelope::new("acme", "playbooks", Payload::CtaClosed(ev::CtaClosed { cta: Some(closed) })),
        banso_events::envelope::new(
            "acme",
            "playbooks",
            Payload::OutreachSent(ev::OutreachSent {
                delivery_id: "d-1".into(),
                account_id: a.id.clone(),
                contact_id: contact.id.clone(),
                playbook_id: "pb-1".into(),
                subject: "Tips for week 2".into(),
                sent_time: ts(opened_at + Duration::hours(2)),
                ..Default::default()
            }),
        ),
        // An unknown account is skipped, not a failure.
        banso_events::envelope::new(
            "acme",
            "playbooks",
            Payload::CtaOpened(ev::CtaOpened {
                cta: Some(ppb::CallToAction {
                    id: "0192f000-0000-7000-8000-000000000002".into(),
                    account_id: "0192f000-0000-7000-8000-0000000000ff".into(),
                    ..cta.clone()
                }),
            }),
        ),
    ];
    for env in &envs {
        publish(&app, env).await;
    }
    // Redelivered: written once.
    publish(&app, &envs[0]).await;
    let list = pb::ListActivitiesRequest { account_id: a.id.clone(), ..Default::default() };
    let got = banso_testkit::eventually("three activities", std::time::Duration::from_secs(30), || {
        let (mut c, list) = (c.clone(), list.clone());
        async move {
            let r = c.list_activities(list).await.unwrap().into_inner();
            (r.activities.len() >= 3).then_some(r.activities)
        }
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let again = c.list_activities(list).await.unwrap().into_inner().activities;
    assert_eq!(again.len(), 3, "a redelivery writes nothing: {again:?}");
    let row = |a: &pb::Activity| (a.kind, a.origin, a.subject.clone(), a.external_ref.clone(), a.author_id.clone());
    let vendor = tpb::TouchOrigin::Vendor as i32;
    assert_eq!(
        got.iter().map(row).collect::<Vec<_>>(),
        vec![
            (
                pb::ActivityKind::Outreach as i32,
                vendor,
                "Tips for week 2".into(),
                "outreach:d-1".into(),
                "playbook:pb-1".into()
            ),
            (
                pb::ActivityKind::Cta as i32,
                vendor,
                "closed: Usage dropped (resolved)".into(),
                format!("cta:{}:closed", cta.id),
                "csm-1".into()
            ),
            (pb::ActivityKind::Cta as i32, vendor, "Usage dropped".into(), format!("cta:{}", cta.id), "csm-1".into()),
        ]
    );
    assert_eq!(got[0].contact_ids, vec![contact.id.clone()]);
    assert_eq!(got[2].occur_time, ts(opened_at));
}

#[tokio::test]
async fn every_change_of_the_mix_is_kept_newest_first() {
    use pb::TouchModel as T;
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("History")).await;
    update(
        &mut c,
        pb::Account { id: a.id.clone(), touch_mix: vec![share(T::High, 70), share(T::Low, 30)], ..Default::default() },
        &["touch_mix"],
    )
    .await
    .unwrap();
    // Not a change of the mix: nothing kept.
    update(&mut c, pb::Account { id: a.id.clone(), name: "Renamed".into(), ..Default::default() }, &["name"])
        .await
        .unwrap();
    update(
        &mut c,
        pb::Account { id: a.id.clone(), touch_model: T::Low as i32, ..Default::default() },
        &["touch_model"],
    )
    .await
    .unwrap();

    let mut changes = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_touch_mix_history(pb::ListTouchMixHistoryRequest {
                account_id: a.id.clone(),
                page_size: 2,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        changes.extend(page.changes);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mixes: Vec<_> = changes.iter().map(|c| c.touch_mix.clone()).collect();
    assert_eq!(
        mixes,
        vec![vec![share(T::Low, 100)], vec![share(T::High, 70), share(T::Low, 30)], vec![share(T::High, 100)]]
    );
    assert!(changes.iter().all(|c| c.set_by == pb::TouchMixSetter::Manual as i32 && c.setter_id == "test-user"));

    let mut other = client(&app, "globex", Role::Admin);
    let err = other
        .list_touch_mix_history(pb::ListTouchMixHistoryRequest { account_id: a.id.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = c
        .list_touch_mix_history(pb::ListTouchMixHistoryRequest { account_id: "nope".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_violation(&err, "account_id");
}

#[tokio::test]
async fn success_plan_events_land_on_the_timeline_once() {
    use banso_events::Payload;
    use banso_proto::{events as ev, playbooks as ppb};
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("Timeline of plans")).await;
    let started = Utc::now() - Duration::days(30);
    let plan_id = "0192f000-0000-7000-8000-0000000000a1".to_string();
    let envs = [
        banso_events::envelope::new(
            "acme",
            "playbooks",
            Payload::PlanCreated(ev::PlanCreated {
                plan: Some(ppb::SuccessPlan {
                    id: plan_id.clone(),
                    account_id: a.id.clone(),
                    display_name: "離職率を下げる".into(),
                    created_by: "csm-1".into(),
                    create_time: ts(started),
                    ..Default::default()
                }),
            }),
        ),
        banso_events::envelope::new(
            "acme",
            "playbooks",
            Payload::CheckpointRecorded(ev::CheckpointRecorded {
                plan_id: plan_id.clone(),
                account_id: a.id.clone(),
                checkpoint_id: "0192f000-0000-7000-8000-0000000000c1".into(),
                metric: "staff turnover".into(),
                reading: Some(ppb::Reading {
                    value: 25.0,
                    recorded_by: "csm-1".into(),
                    record_time: ts(started + Duration::days(20)),
                    ..Default::default()
                }),
                attainment: Some(5.0 / 9.0),
                off_track: true,
                ..Default::default()
            }),
        ),
        banso_events::envelope::new(
            "acme",
            "playbooks",
            Payload::ReviewConcluded(ev::ReviewConcluded {
                plan_id: plan_id.clone(),
                account_id: a.id.clone(),
                display_name: "離職率を下げる".into(),
                conclusion: ppb::ReviewConclusion::RaiseExecution as i32,
                conclude_time: ts(started + Duration::days(29)),
                ..Default::default()
            }),
        ),
    ];
    for env in &envs {
        publish(&app, env).await;
    }
    publish(&app, &envs[1]).await;
    let list = pb::ListActivitiesRequest { account_id: a.id.clone(), ..Default::default() };
    let got = banso_testkit::eventually("three plan activities", std::time::Duration::from_secs(30), || {
        let (mut c, list) = (c.clone(), list.clone());
        async move {
            let r = c.list_activities(list).await.unwrap().into_inner();
            (r.activities.len() >= 3).then_some(r.activities)
        }
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(c.list_activities(list).await.unwrap().into_inner().activities.len(), 3, "a redelivery writes nothing");
    let row = |a: &pb::Activity| (a.kind, a.subject.clone(), a.author_id.clone());
    let kind = pb::ActivityKind::SuccessPlan as i32;
    assert_eq!(
        got.iter().map(row).collect::<Vec<_>>(),
        vec![
            (kind, "result review concluded: 離職率を下げる (raise execution)".into(), "playbooks".into()),
            (kind, "checkpoint staff turnover: 25 (55.6% of target), off track".into(), "csm-1".into()),
            (kind, "success plan started: 離職率を下げる".into(), "csm-1".into()),
        ]
    );
    assert!(got.iter().all(|x| x.origin == tpb::TouchOrigin::Vendor as i32));
    assert_eq!(got[2].occur_time, ts(started));
}
