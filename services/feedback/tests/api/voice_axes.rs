//! CS = CO + CX against hand-computed values: plan attainment from
//! Playbooks' CheckpointRecorded (latest per checkpoint, sub-metrics and
//! readings without attainment ignored, redelivery harmless), the outcome
//! question as the fallback, CES and CX-dimension items on the experience
//! axis, the coverage grid, the range, the segment, bad input and tenancy.

use banso_events::{Envelope, Payload};
use banso_proto::{accounts as apb, events as ev, feedback as pb, playbooks as ppb};
use banso_testkit::{Bearer, TestApp};
use chrono::{Duration, Utc};
use tonic::{codegen::InterceptedService, transport::Channel};

use crate::common::*;

type Voice = pb::voice_service_client::VoiceServiceClient<InterceptedService<Channel, Bearer>>;

fn voice(app: &TestApp, tenant: &str, role: Role) -> Voice {
    pb::voice_service_client::VoiceServiceClient::with_interceptor(app.channel.clone(), app.bearer(tenant, role))
}

fn ts(t: chrono::DateTime<Utc>) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp { seconds: t.timestamp(), nanos: 0 }
}

/// A CheckpointRecorded as Playbooks publishes it, recorded at `at`.
fn reading(
    plan: &str,
    account: &str,
    checkpoint: &str,
    sub_metric: &str,
    attainment: Option<f64>,
    at: chrono::DateTime<Utc>,
) -> Envelope {
    banso_events::envelope::new(
        TENANT,
        "playbooks",
        Payload::CheckpointRecorded(ev::CheckpointRecorded {
            plan_id: plan.into(),
            account_id: account.into(),
            checkpoint_id: checkpoint.into(),
            sub_metric_id: sub_metric.into(),
            metric: "hours saved".into(),
            reading: Some(ppb::Reading {
                value: 1.0,
                reading_time: Some(ts(at)),
                record_time: Some(ts(at)),
                ..Default::default()
            }),
            attainment,
            off_track: false,
        }),
    )
}

fn id() -> String {
    uuid::Uuid::now_v7().to_string()
}

async fn axes(v: &mut Voice, r: pb::GetSuccessAxesRequest) -> pb::SuccessAxes {
    v.get_success_axes(r).await.unwrap().into_inner()
}

fn of<'a>(s: &'a pb::SuccessAxes, a: &apb::Account) -> &'a pb::AccountAxes {
    s.accounts.iter().find(|x| x.account_id == a.id).unwrap_or_else(|| panic!("{} is listed", a.name))
}

/// Waits until the account's outcome rests on `n` checkpoints.
async fn until_checkpoints(v: &Voice, a: &apb::Account, n: i64, r: pb::GetSuccessAxesRequest) {
    until("the readings reach the projection", || {
        let (mut v, r, id) = (v.clone(), r.clone(), a.id.clone());
        async move {
            let s = v.get_success_axes(r).await.ok()?.into_inner();
            let x = s.accounts.into_iter().find(|x| x.account_id == id)?;
            (x.outcome_source == "success_plan" && x.outcome_evidence == n).then_some(())
        }
    })
    .await;
}

/// Each contact of `contacts` answers the survey's campaign to `accounts`
/// with its score.
async fn answered(
    app: &TestApp,
    c: &mut Client,
    kind: pb::SurveyKind,
    accounts: &[&apb::Account],
    answers: &[(&apb::Contact, i32)],
) {
    let s = create_survey(c, survey(&format!("{kind:?}"), kind)).await;
    let campaign = create_campaign(c, campaign_to(&s, accounts)).await;
    let t = tokens(c, &campaign.id).await;
    let mut p = public(app);
    for (x, score) in answers {
        answer(&mut p, &t[&x.id].token, Some(*score)).await.unwrap();
    }
}

/// Alpha has a plan: checkpoint 1 read 50% two hours ago and 80% an hour
/// ago (a reading from three hours ago arriving last changes nothing),
/// checkpoint 2 at 120% (capped: 100), a sub-metric and a reading without
/// attainment ignored → outcome (80 + 100) ÷ 2 = 90 from the plan, its
/// outcome answer (1) unused; CES 6 → 83.33. Beta has no plan: outcome
/// answers 2 and 5 → (25 + 100) ÷ 2 = 62.5 from the question; CES 7 and 4
/// → (100 + 50) ÷ 2 = 75. Gamma's only checkpoint was read 400 days ago:
/// outside the default year, inside a longer range.
#[tokio::test]
async fn the_two_axes_match_the_hand_computed_values() {
    let app = spawn().await;
    let mut c = admin(&app);
    let mut v = voice(&app, TENANT, Role::Viewer);
    let (alpha, ca) = account_with_contacts(&app, "Alpha", "retail", 1).await;
    let (beta, cb) = account_with_contacts(&app, "Beta", "finance", 2).await;
    let gamma = account("Gamma", "retail");
    publish_account(&app, TENANT, &gamma).await;
    settle(&app, TENANT).await;

    let now = Utc::now();
    let (plan, c1, c2, c3) = (id(), id(), id(), id());
    let a = alpha.id.as_str();
    let latest = reading(&plan, a, &c1, "", Some(0.8), now - Duration::hours(1));
    for env in [
        reading(&plan, a, &c1, "", Some(0.5), now - Duration::hours(2)),
        latest.clone(),
        reading(&plan, a, &c2, "", Some(1.2), now - Duration::minutes(30)),
        reading(&plan, a, &c2, &id(), Some(0.1), now - Duration::minutes(20)),
        reading(&plan, a, &c3, "", None, now - Duration::minutes(10)),
        reading(&plan, a, &c1, "", Some(0.1), now - Duration::hours(3)),
        reading(&id(), &gamma.id, &id(), "", Some(0.3), now - Duration::days(400)),
    ] {
        publish_envelope(&app, &env).await;
    }
    answered(&app, &mut c, pb::SurveyKind::Outcome, &[&alpha, &beta], &[(&ca[0], 1), (&cb[0], 2), (&cb[1], 5)]).await;
    answered(&app, &mut c, pb::SurveyKind::Ces, &[&alpha, &beta], &[(&ca[0], 6), (&cb[0], 7), (&cb[1], 4)]).await;
    // The last reading is the oldest, and the stream keeps its order: once the
    // sentinel checkpoint is in, so is everything before it.
    let sentinel = account("Sentinel plan", "");
    publish_account(&app, TENANT, &sentinel).await;
    settle(&app, TENANT).await;
    publish_envelope(&app, &reading(&id(), &sentinel.id, &id(), "", Some(1.0), now)).await;
    until_checkpoints(&v, &sentinel, 1, Default::default()).await;

    let s = axes(&mut v, Default::default()).await;
    let x = of(&s, &alpha);
    close(x.outcome, 90.0);
    assert_eq!((x.outcome_source.as_str(), x.outcome_evidence), ("success_plan", 2));
    close(x.experience, 250.0 / 3.0);
    assert_eq!(x.experience_evidence, 1);
    assert_eq!(x.display_name, "Alpha");
    let y = of(&s, &beta);
    close(y.outcome, 62.5);
    assert_eq!((y.outcome_source.as_str(), y.outcome_evidence), ("outcome_question", 2));
    close(y.experience, 75.0);
    assert_eq!(y.experience_evidence, 2);
    let z = of(&s, &gamma);
    assert_eq!((z.outcome, z.outcome_source.as_str(), z.outcome_evidence), (None, "", 0));
    assert_eq!((z.experience, z.experience_evidence), (None, 0));
    // Means over the accounts that have the axis: Alpha, Beta and the
    // sentinel plan (100) for the outcome; Alpha and Beta for the experience.
    close(s.mean_outcome, (90.0 + 62.5 + 100.0) / 3.0);
    close(s.mean_experience, (250.0 / 3.0 + 75.0) / 2.0);
    // No item yet: every cell is missing.
    assert_eq!(s.coverage.len(), 15);
    assert!(s.coverage.iter().all(|c| c.items == 0));
    assert_eq!(s.uncovered_cells, 15);

    // The same event again: no second effect.
    publish_envelope(&app, &latest).await;
    publish_envelope(&app, &reading(&id(), &sentinel.id, &id(), "", Some(1.0), now)).await;
    until_checkpoints(&v, &sentinel, 2, Default::default()).await;
    let again = of(&axes(&mut v, Default::default()).await, &alpha).clone();
    assert_eq!(&again, of(&s, &alpha));

    // A range of 500 days takes Gamma's old reading: 30.
    let long = pb::GetSuccessAxesRequest { start_time: Some(ts(now - Duration::days(500))), ..Default::default() };
    let z = of(&axes(&mut v, long).await, &gamma).clone();
    close(z.outcome, 30.0);
    assert_eq!((z.outcome_source.as_str(), z.outcome_evidence), ("success_plan", 1));
    // A range before it all holds no evidence.
    let old = pb::GetSuccessAxesRequest {
        start_time: Some(ts(now - Duration::days(3000))),
        end_time: Some(ts(now - Duration::days(2000))),
        ..Default::default()
    };
    let s = axes(&mut v, old).await;
    assert!(s.accounts.iter().all(|x| x.outcome.is_none() && x.experience.is_none()));
    assert_eq!((s.mean_outcome, s.mean_experience, s.uncovered_cells), (None, None, 15));
    // A range that ends in the readings' past cuts Alpha's recent plan readings.
    let before = pb::GetSuccessAxesRequest { end_time: Some(ts(now - Duration::minutes(45))), ..Default::default() };
    let x = of(&axes(&mut v, before).await, &alpha).clone();
    // Only checkpoint 1's latest (80%, an hour ago) was recorded by then.
    close(x.outcome, 80.0);
    assert_eq!(x.outcome_evidence, 1);
    app.stop().await.unwrap();
}

/// Bad input names each field; an unknown segment, or another tenant's,
/// is NOT_FOUND; another tenant sees none of this tenant's accounts.
#[tokio::test]
async fn bad_input_unknown_segments_and_other_tenants() {
    let app = spawn().await;
    let mut v = voice(&app, TENANT, Role::Admin);
    let segment = id();
    publish(
        &app,
        TENANT,
        "accounts",
        Payload::SegmentChanged(ev::SegmentChanged {
            change: ev::segment_changed::Change::Created as i32,
            segment: Some(apb::Segment {
                id: segment.clone(),
                display_name: "Retail".into(),
                expression: "account.industry == 'retail'".into(),
                ..Default::default()
            }),
        }),
    )
    .await;
    let (alpha, _) = account_with_contacts(&app, "Alpha", "retail", 0).await;
    publish_envelope(&app, &reading(&id(), &alpha.id, &id(), "", Some(0.5), Utc::now())).await;
    settle(&app, TENANT).await;
    until_checkpoints(&v, &alpha, 1, Default::default()).await;

    let e = v
        .get_success_axes(pb::GetSuccessAxesRequest {
            segment_id: "retail".into(),
            start_time: Some(pbjson_types::Timestamp { seconds: 2_000_000_000, nanos: 0 }),
            end_time: Some(pbjson_types::Timestamp { seconds: 1_000_000_000, nanos: 0 }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let fields: Vec<_> = violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["segment_id", "end_time"]);
    let e = v
        .get_success_axes(pb::GetSuccessAxesRequest {
            start_time: Some(pbjson_types::Timestamp { seconds: -1_000_000_000_000, nanos: 0 }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_violation(&e, "start_time");
    let unknown = pb::GetSuccessAxesRequest { segment_id: id(), ..Default::default() };
    assert_eq!(v.get_success_axes(unknown).await.unwrap_err().code(), tonic::Code::NotFound);

    // The segment: Alpha is in it.
    let s = axes(&mut v, pb::GetSuccessAxesRequest { segment_id: segment.clone(), ..Default::default() }).await;
    let ids: Vec<_> = s.accounts.iter().map(|x| x.account_id.as_str()).collect();
    assert_eq!(ids, [alpha.id.as_str()]);
    close(s.mean_outcome, 50.0);

    // Another tenant: nothing of ours, and our segment is not theirs.
    let mut other = voice(&app, "globex", Role::Viewer);
    let s = axes(&mut other, Default::default()).await;
    assert!(s.accounts.is_empty());
    assert_eq!((s.mean_outcome, s.mean_experience, s.uncovered_cells, s.coverage.len()), (None, None, 15, 15));
    let theirs = pb::GetSuccessAxesRequest { segment_id: segment, ..Default::default() };
    assert_eq!(other.get_success_axes(theirs).await.unwrap_err().code(), tonic::Code::NotFound);
    // No token: UNAUTHENTICATED.
    let mut anonymous = pb::voice_service_client::VoiceServiceClient::new(app.channel.clone());
    let e = anonymous.get_success_axes(pb::GetSuccessAxesRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    app.stop().await.unwrap();
}

fn item(a: &apb::Account, dimension: pb::CxDimension, phase: pb::JourneyPhase, severity: i32) -> pb::FeedbackItem {
    pb::FeedbackItem {
        text: format!("{dimension:?} in {phase:?}"),
        channel: pb::Channel::CsmNote as i32,
        account_id: a.id.clone(),
        department: pb::Department::Product as i32,
        cx_dimension: dimension as i32,
        journey_phase: phase as i32,
        severity,
        ..Default::default()
    }
}

/// CX items join CES answers on the experience axis, each counting once:
/// Beta's CES 7 and 4 (100, 50) and its items of severity 5, 1 and 3 (0,
/// 100, 50) → 300 ÷ 5 = 60; an item without a dimension counts nowhere.
/// Coverage: Beta's feel × support and sense × buying, Alpha's act × using
/// → 12 cells missing for the tenant; the finance segment (Beta) misses 13.
#[tokio::test]
async fn cx_items_join_the_experience_axis_and_fill_the_coverage_grid() {
    let app = spawn().await;
    let mut c = admin(&app);
    let mut v = voice(&app, TENANT, Role::Csm);
    let segment = id();
    publish(
        &app,
        TENANT,
        "accounts",
        Payload::SegmentChanged(ev::SegmentChanged {
            change: ev::segment_changed::Change::Created as i32,
            segment: Some(apb::Segment {
                id: segment.clone(),
                display_name: "Finance".into(),
                expression: "account.industry == 'finance'".into(),
                ..Default::default()
            }),
        }),
    )
    .await;
    let (alpha, _) = account_with_contacts(&app, "Alpha", "retail", 0).await;
    let (beta, cb) = account_with_contacts(&app, "Beta", "finance", 2).await;
    settle(&app, TENANT).await;
    answered(&app, &mut c, pb::SurveyKind::Ces, &[&beta], &[(&cb[0], 7), (&cb[1], 4)]).await;
    use pb::{CxDimension as D, JourneyPhase as P};
    for x in [
        item(&beta, D::Feel, P::Support, 5),
        item(&beta, D::Sense, P::Buying, 1),
        item(&beta, D::Think, P::Unspecified, 3),
        item(&beta, D::Unspecified, P::Using, 5),
        item(&alpha, D::Act, P::Using, 2),
    ] {
        v.create_feedback_item(pb::CreateFeedbackItemRequest { item: Some(x), request_id: String::new() })
            .await
            .unwrap();
    }
    let s = axes(&mut v, Default::default()).await;
    let y = of(&s, &beta);
    close(y.experience, 60.0);
    assert_eq!(y.experience_evidence, 5);
    assert_eq!((y.outcome, y.outcome_evidence), (None, 0));
    let x = of(&s, &alpha);
    close(x.experience, 75.0);
    assert_eq!(x.experience_evidence, 1);
    close(s.mean_experience, 67.5);
    assert_eq!(s.mean_outcome, None);
    let grid = |s: &pb::SuccessAxes| -> Vec<(i32, i32, i64)> {
        s.coverage.iter().filter(|c| c.items > 0).map(|c| (c.dimension, c.phase, c.items)).collect()
    };
    assert_eq!(s.coverage.len(), 15);
    assert_eq!(
        (s.coverage[0].dimension, s.coverage[0].phase, s.coverage[14].dimension, s.coverage[14].phase),
        (D::Sense as i32, P::Buying as i32, D::Relate as i32, P::Support as i32)
    );
    assert_eq!(
        grid(&s),
        [
            (D::Sense as i32, P::Buying as i32, 1),
            (D::Feel as i32, P::Support as i32, 1),
            (D::Act as i32, P::Using as i32, 1)
        ]
    );
    assert_eq!(s.uncovered_cells, 12);
    let s = axes(&mut v, pb::GetSuccessAxesRequest { segment_id: segment, ..Default::default() }).await;
    let ids: Vec<_> = s.accounts.iter().map(|x| x.account_id.as_str()).collect();
    assert_eq!(ids, [beta.id.as_str()]);
    assert_eq!(grid(&s), [(D::Sense as i32, P::Buying as i32, 1), (D::Feel as i32, P::Support as i32, 1)]);
    assert_eq!(s.uncovered_cells, 13);
    close(s.mean_experience, 60.0);
    // An item said 400 days ago (imported history) covers its cell in a range
    // that holds that day, whenever it was recorded; not in today's.
    let said = Utc::now() - Duration::days(400);
    v.create_feedback_item(pb::CreateFeedbackItemRequest {
        item: Some(pb::FeedbackItem { mention_time: Some(ts(said)), ..item(&alpha, D::Relate, P::Using, 1) }),
        request_id: String::new(),
    })
    .await
    .unwrap();
    let s = axes(&mut v, Default::default()).await;
    assert_eq!(s.uncovered_cells, 12, "a mention 400 days old is outside the default year");
    let year = pb::GetSuccessAxesRequest {
        start_time: Some(ts(said - Duration::days(1))),
        end_time: Some(ts(said + Duration::days(1))),
        ..Default::default()
    };
    let s = axes(&mut v, year).await;
    assert_eq!(grid(&s), [(D::Relate as i32, P::Using as i32, 1)]);
    close(of(&s, &alpha).experience, 100.0);
    // Another tenant's grid is empty.
    let s = axes(&mut voice(&app, "globex", Role::Viewer), Default::default()).await;
    assert_eq!(s.uncovered_cells, 15);
    app.stop().await.unwrap();
}
