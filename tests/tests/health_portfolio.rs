//! Portfolio views, history, recompute jobs and segment-scoped scorecards
//! through a real gRPC client, with Accounts beside Health. (Trends over
//! days past and raw-event retention need history and time the API cannot
//! make: they are the crate's own tests, `services/health/src/service_tests.rs`.)

mod health;

use banso_proto::{accounts as apb, health as pb, types as tpb};
use banso_testkit::{TestApp, TestRole as Role, eventually};
use chrono::Utc;
use health::{Health, WAIT, accounts, linear, spawn, wait_job};
use tonic::Code;

const TENANT: &str = "acme";

fn health(app: &TestApp, role: Role) -> Health {
    health::health(app, TENANT, role)
}

/// Scores an account exactly its NPS (linear 0..100, skipped while missing).
fn nps_card(name: &str, scope: Option<pb::scope::Kind>) -> pb::Scorecard {
    pb::Scorecard {
        name: name.into(),
        scope: scope.map(|k| pb::Scope { kind: Some(k) }),
        measures: vec![pb::WeightedMeasure {
            measure: "external:nps".into(),
            weight: 1.0,
            normalisation: linear(0.0, 100.0),
            ..Default::default()
        }],
        ..Default::default()
    }
}

struct Spec {
    name: &'static str,
    stage: tpb::LifecycleStage,
    region: &'static str,
    owner: &'static str,
    tags: &'static [&'static str],
    arr: Option<(&'static str, i64)>,
}

/// Creates an account with attributes and waits until Health knows it.
async fn account(app: &TestApp, s: &Spec) -> String {
    let a = accounts(app, TENANT)
        .create_account(apb::CreateAccountRequest {
            account: Some(apb::Account {
                name: s.name.into(),
                lifecycle_stage: s.stage as i32,
                touch_model: tpb::TouchModel::Low as i32,
                region: s.region.into(),
                owner_id: s.owner.into(),
                tags: s.tags.iter().map(|t| t.to_string()).collect(),
                arr: s.arr.map(|(c, a)| tpb::Money { currency_code: c.into(), amount_minor: a }),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    health::wait_known(app, TENANT, &a.id).await;
    a.id
}

async fn set_nps(app: &TestApp, id: &str, nps: f64) {
    health(app, Role::Service)
        .set_measure_value(pb::SetMeasureValueRequest {
            account_id: id.into(),
            measure: "nps".into(),
            value: Some(nps),
            observe_time: None,
        })
        .await
        .unwrap();
}

/// Waits until `check` holds for the account's health (NOT_FOUND counts as not yet).
async fn until(app: &TestApp, id: &str, check: impl Fn(&pb::AccountHealth) -> bool) -> pb::AccountHealth {
    health::health_until(&health(app, Role::Viewer), id, check).await
}

async fn list(h: &mut Health, filter: pb::AccountHealthFilter, order: pb::AccountHealthOrder) -> Vec<(String, f64)> {
    let r = h
        .list_account_health(pb::ListAccountHealthRequest {
            filter: Some(filter),
            order_by: order as i32,
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.next_page_token.is_empty());
    r.accounts.into_iter().map(|a| (a.account_id, a.score)).collect()
}

fn field_of(s: &tonic::Status) -> Vec<String> {
    banso_testkit::field_violations(s).into_iter().map(|(f, _)| f).collect()
}

#[tokio::test]
async fn portfolio_lists_filters_orders_pages_and_distributes() {
    let app = spawn().await;
    let mut admin = health(&app, Role::Admin);
    admin
        .create_scorecard(pb::CreateScorecardRequest { scorecard: Some(nps_card("NPS", None)), request_id: "".into() })
        .await
        .unwrap();
    use tpb::LifecycleStage::{Adoption, Onboarding, Renewal};
    let specs = [
        Spec {
            name: "Red EMEA",
            stage: Adoption,
            region: "EMEA",
            owner: "u1",
            tags: &["vip", "beta"],
            arr: Some(("EUR", 1_000_000)),
        },
        Spec {
            name: "Yellow NA",
            stage: Onboarding,
            region: "NA",
            owner: "u2",
            tags: &[],
            arr: Some(("USD", 500_000)),
        },
        Spec {
            name: "Green EMEA",
            stage: Renewal,
            region: "EMEA",
            owner: "u1",
            tags: &["vip"],
            arr: Some(("EUR", 700_000)),
        },
        Spec { name: "Green NA", stage: Adoption, region: "NA", owner: "u2", tags: &[], arr: None },
        Spec { name: "Unscored", stage: Adoption, region: "EMEA", owner: "u1", tags: &[], arr: Some(("EUR", 100)) },
    ];
    let mut ids = Vec::new();
    for s in &specs {
        ids.push(account(&app, s).await);
    }
    for (id, nps) in ids.iter().zip([20.0, 50.0, 80.0, 90.0]) {
        set_nps(&app, id, nps).await;
        until(&app, id, |h| h.score == nps).await;
    }
    let mut viewer = health(&app, Role::Viewer);
    use pb::AccountHealthOrder as O;
    let all = pb::AccountHealthFilter::default;
    let scores = |v: Vec<(String, f64)>| v.into_iter().map(|(_, s)| s).collect::<Vec<_>>();

    // Worst first by default; best first on request; the unscored account is not listed.
    assert_eq!(scores(list(&mut viewer, all(), O::Unspecified).await), [20.0, 50.0, 80.0, 90.0]);
    assert_eq!(scores(list(&mut viewer, all(), O::ScoreDesc).await), [90.0, 80.0, 50.0, 20.0]);

    // Pages of 3 then 1, the token bound to its filter.
    let first = viewer
        .list_account_health(pb::ListAccountHealthRequest { page_size: 3, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.accounts.len(), 3);
    assert!(!first.accounts[0].contributions.is_empty());
    let second = viewer
        .list_account_health(pb::ListAccountHealthRequest {
            page_size: 3,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.accounts.iter().map(|a| a.score).collect::<Vec<_>>(), [90.0]);
    assert!(second.next_page_token.is_empty());
    let replayed = viewer
        .list_account_health(pb::ListAccountHealthRequest {
            page_size: 3,
            page_token: first.next_page_token,
            filter: Some(pb::AccountHealthFilter { owner_id: "u1".into(), ..Default::default() }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(replayed.code(), Code::InvalidArgument);

    // Column filters, a CEL condition, and both with paging through the condition.
    let green = pb::AccountHealthFilter { bands: vec![pb::Band::Green as i32], ..Default::default() };
    assert_eq!(scores(list(&mut viewer, green, O::ScoreAsc).await), [80.0, 90.0]);
    let stage = pb::AccountHealthFilter { lifecycle_stages: vec![Adoption as i32], ..Default::default() };
    assert_eq!(scores(list(&mut viewer, stage, O::ScoreAsc).await), [20.0, 90.0]);
    let owner = pb::AccountHealthFilter { owner_id: "u2".into(), ..Default::default() };
    assert_eq!(scores(list(&mut viewer, owner, O::ScoreAsc).await), [50.0, 90.0]);
    let emea = pb::AccountHealthFilter { condition: r#"account.region == "EMEA""#.into(), ..Default::default() };
    assert_eq!(scores(list(&mut viewer, emea.clone(), O::ScoreDesc).await), [80.0, 20.0]);
    let one = viewer
        .list_account_health(pb::ListAccountHealthRequest {
            filter: Some(emea.clone()),
            page_size: 1,
            skip_contributions: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.accounts.iter().map(|a| a.score).collect::<Vec<_>>(), [20.0]);
    assert!(one.accounts[0].contributions.is_empty());
    let two = viewer
        .list_account_health(pb::ListAccountHealthRequest {
            filter: Some(emea),
            page_size: 1,
            skip_contributions: true,
            page_token: one.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(two.accounts.iter().map(|a| a.score).collect::<Vec<_>>(), [80.0]);
    assert!(two.next_page_token.is_empty());

    // Members of an Accounts segment, once SegmentChanged reached Health.
    let segment = accounts(&app, TENANT)
        .create_segment(apb::CreateSegmentRequest {
            segment: Some(apb::Segment {
                display_name: "VIP".into(),
                expression: r#""vip" in account.tags"#.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let vip = pb::AccountHealthFilter { segment_id: segment.id.clone(), ..Default::default() };
    let members = eventually("health to learn of the segment", WAIT, || {
        let (mut viewer, vip) = (viewer.clone(), vip.clone());
        async move {
            match viewer
                .list_account_health(pb::ListAccountHealthRequest { filter: Some(vip), ..Default::default() })
                .await
            {
                Ok(r) => Some(r.into_inner()),
                Err(s) if s.code() == Code::NotFound => None,
                Err(s) => panic!("{s:?}"),
            }
        }
    })
    .await;
    assert_eq!(members.accounts.iter().map(|a| a.score).collect::<Vec<_>>(), [20.0, 80.0]);

    // Distribution: accounts and ARR per band, overall and by region and tag.
    let d = viewer
        .get_health_distribution(pb::GetHealthDistributionRequest { group_by: "region".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((d.accounts, d.unscored_accounts, d.mean_score), (4, 1, 60.0));
    let counts = |b: &[pb::BandTotal]| b.iter().map(|t| (t.band, t.accounts)).collect::<Vec<_>>();
    let (r, y, g) = (pb::Band::Red as i32, pb::Band::Yellow as i32, pb::Band::Green as i32);
    assert_eq!(counts(&d.overall), [(r, 1), (y, 1), (g, 2)]);
    let money = |c: &str, a: i64| tpb::Money { currency_code: c.into(), amount_minor: a };
    assert_eq!(d.overall[0].arr, [money("EUR", 1_000_000)]);
    assert_eq!(d.overall[1].arr, [money("USD", 500_000)]);
    assert_eq!(d.overall[2].arr, [money("EUR", 700_000)]);
    let groups: Vec<(&str, i64, f64)> = d.groups.iter().map(|g| (g.value.as_str(), g.accounts, g.mean_score)).collect();
    assert_eq!(groups, [("EMEA", 2, 50.0), ("NA", 2, 70.0)]);
    let by_tag = viewer
        .get_health_distribution(pb::GetHealthDistributionRequest {
            group_by: "tag".into(),
            filter: Some(pb::AccountHealthFilter { bands: vec![r, g], ..Default::default() }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((by_tag.accounts, by_tag.unscored_accounts), (3, 0));
    let tags: Vec<(&str, i64)> = by_tag.groups.iter().map(|g| (g.value.as_str(), g.accounts)).collect();
    assert_eq!(tags, [("vip", 2), ("", 1), ("beta", 1)]);

    // An account whose only measure is cleared has no score any more (not a stale one).
    health(&app, Role::Service)
        .set_measure_value(pb::SetMeasureValueRequest {
            account_id: ids[3].clone(),
            measure: "nps".into(),
            value: None,
            observe_time: None,
        })
        .await
        .unwrap();
    health::unscored(&viewer, &ids[3]).await;
    assert_eq!(scores(list(&mut viewer, all(), O::Unspecified).await), [20.0, 50.0, 80.0]);
    let d = viewer.get_health_distribution(pb::GetHealthDistributionRequest::default()).await.unwrap().into_inner();
    assert_eq!((d.accounts, d.unscored_accounts), (3, 2));

    // Bad input names each field; other tenants see nothing of acme.
    let bad = viewer
        .list_account_health(pb::ListAccountHealthRequest {
            filter: Some(pb::AccountHealthFilter {
                bands: vec![9],
                scorecard_id: "nope".into(),
                lifecycle_stages: vec![42],
                condition: "account.region ==".into(),
                ..Default::default()
            }),
            order_by: 42,
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let mut fields = field_of(&bad);
    fields.sort();
    assert_eq!(
        fields,
        [
            "filter.bands[0]",
            "filter.condition",
            "filter.lifecycle_stages[0]",
            "filter.scorecard_id",
            "order_by",
            "page_size"
        ]
    );
    let bad = viewer
        .get_health_distribution(pb::GetHealthDistributionRequest { group_by: "colour".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(field_of(&bad), ["group_by"]);
    let unknown = viewer
        .list_account_health(pb::ListAccountHealthRequest {
            filter: Some(pb::AccountHealthFilter {
                segment_id: uuid::Uuid::now_v7().to_string(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let mut other = health::health(&app, "globex", Role::Viewer);
    let r = other.list_account_health(pb::ListAccountHealthRequest::default()).await.unwrap().into_inner();
    assert!(r.accounts.is_empty());
    let d = other.get_health_distribution(pb::GetHealthDistributionRequest::default()).await.unwrap().into_inner();
    assert_eq!((d.accounts, d.unscored_accounts), (0, 0));
    let s = other
        .list_account_health(pb::ListAccountHealthRequest {
            filter: Some(pb::AccountHealthFilter { segment_id: segment.id, ..Default::default() }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
}

#[tokio::test]
async fn history_records_daily_scores_and_band_changes() {
    let app = spawn().await;
    let mut admin = health(&app, Role::Admin);
    admin
        .create_scorecard(pb::CreateScorecardRequest { scorecard: Some(nps_card("NPS", None)), request_id: "".into() })
        .await
        .unwrap();
    let spec = |name| Spec { name, stage: tpb::LifecycleStage::Adoption, region: "", owner: "", tags: &[], arr: None };
    let a = account(&app, &spec("Falling")).await;
    let b = account(&app, &spec("Rising")).await;
    set_nps(&app, &a, 80.0).await;
    until(&app, &a, |h| h.score == 80.0).await;
    set_nps(&app, &a, 30.0).await; // green → red: a band change
    until(&app, &a, |h| h.score == 30.0).await;
    set_nps(&app, &b, 50.0).await;
    until(&app, &b, |h| h.score == 50.0).await;

    let mut viewer = health(&app, Role::Viewer);
    let points = viewer
        .get_health_history(pb::GetHealthHistoryRequest { account_id: a.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .points;
    let kinds: Vec<(i32, f64, i32)> = points.iter().map(|p| (p.kind, p.score, p.band)).collect();
    use pb::HealthPointKind as K;
    // Today's daily snapshot holds the day's latest score; the band change is kept beside it.
    assert_eq!(
        kinds,
        [(K::Daily as i32, 30.0, pb::Band::Red as i32), (K::BandChange as i32, 30.0, pb::Band::Red as i32)]
    );
    let changes = viewer
        .get_health_history(pb::GetHealthHistoryRequest {
            account_id: a.clone(),
            band_changes_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .points;
    assert_eq!(changes.len(), 1);
    // A page at a time.
    let first = viewer
        .get_health_history(pb::GetHealthHistoryRequest { account_id: a.clone(), page_size: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.points.iter().map(|p| p.kind).collect::<Vec<_>>(), [K::Daily as i32]);
    let second = viewer
        .get_health_history(pb::GetHealthHistoryRequest {
            account_id: a.clone(),
            page_size: 1,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.points.iter().map(|p| p.kind).collect::<Vec<_>>(), [K::BandChange as i32]);
    assert!(second.next_page_token.is_empty());

    // Bad input, and NOT_FOUND across tenants.
    let date = |y, m, d| Some(tpb::Date { year: y, month: m, day: d });
    let bad = viewer
        .get_health_history(pb::GetHealthHistoryRequest {
            account_id: "x".into(),
            start_day: date(2026, 13, 1),
            end_day: date(1800, 1, 1),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let mut fields = field_of(&bad);
    fields.sort();
    assert_eq!(fields, ["account_id", "end_day.year", "start_day"]);
    let reversed = viewer
        .get_health_history(pb::GetHealthHistoryRequest {
            account_id: a.clone(),
            start_day: date(2026, 5, 2),
            end_day: date(2026, 5, 1),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&reversed), ["start_day"]);
    let other = health::health(&app, "globex", Role::Viewer)
        .get_health_history(pb::GetHealthHistoryRequest { account_id: a, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound);
}

#[tokio::test]
async fn recompute_jobs_report_progress_are_idempotent_and_tenant_scoped() {
    let app = spawn().await;
    let mut admin = health(&app, Role::Admin);
    let spec = |name| Spec { name, stage: tpb::LifecycleStage::Adoption, region: "", owner: "", tags: &[], arr: None };
    let mut ids = Vec::new();
    for name in ["One", "Two", "Three"] {
        let id = account(&app, &spec(name)).await;
        set_nps(&app, &id, 60.0).await;
        ids.push(id);
    }
    // No scorecard yet: nothing is scored. Creating one queues a job that scores all three.
    admin
        .create_scorecard(pb::CreateScorecardRequest { scorecard: Some(nps_card("NPS", None)), request_id: "".into() })
        .await
        .unwrap();
    for id in &ids {
        until(&app, id, |h| h.score == 60.0).await;
    }
    let job =
        admin.start_recompute(pb::StartRecomputeRequest { request_id: "once".into() }).await.unwrap().into_inner();
    assert_eq!(job.trigger, "api");
    let again =
        admin.start_recompute(pb::StartRecomputeRequest { request_id: "once".into() }).await.unwrap().into_inner();
    assert_eq!(again.id, job.id);
    let done = wait_job(&admin, &job.id).await;
    assert_eq!(done.state, pb::recompute_job::State::Succeeded as i32, "{done:?}");
    assert_eq!((done.accounts_total, done.accounts_done, done.accounts_scored), (3, 3, 3));
    // Nothing moved since the scorecard's job: no event.
    assert_eq!(done.scores_changed, 0);
    assert!(done.start_time.is_some() && done.end_time.is_some());

    // Only admins start jobs; ids are checked; other tenants do not see them.
    let viewer = health(&app, Role::Viewer).start_recompute(pb::StartRecomputeRequest::default()).await.unwrap_err();
    assert_eq!(viewer.code(), Code::PermissionDenied);
    let bad = admin.get_recompute_job(pb::GetRecomputeJobRequest { id: "nope".into() }).await.unwrap_err();
    assert_eq!(field_of(&bad), ["id"]);
    let other = health::health(&app, "globex", Role::Admin)
        .get_recompute_job(pb::GetRecomputeJobRequest { id: job.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound);
    let long = admin.start_recompute(pb::StartRecomputeRequest { request_id: "k".repeat(129) }).await.unwrap_err();
    assert_eq!(field_of(&long), ["request_id"]);

    // Ingest and a recompute at once: the final scores hold every event.
    let events: Vec<pb::UsageEvent> = (0..200)
        .map(|i| pb::UsageEvent {
            event_id: format!("e{i}"),
            account_id: ids[i % 3].clone(),
            user_id: format!("u{}", i % 7),
            event_name: "login".into(),
            timestamp: Some(banso_kit::wire::timestamp(Utc::now() - chrono::Duration::seconds(30))),
            ..Default::default()
        })
        .collect();
    let card_id = admin.list_scorecards(pb::ListScorecardsRequest::default()).await.unwrap().into_inner().scorecards[0]
        .id
        .clone();
    admin
        .update_scorecard(pb::UpdateScorecardRequest {
            scorecard: Some(pb::Scorecard {
                id: card_id,
                measures: vec![pb::WeightedMeasure {
                    measure: "events_7d:login".into(),
                    weight: 1.0,
                    normalisation: linear(0.0, 100.0),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask { paths: vec!["measures".into()] }),
        })
        .await
        .unwrap();
    let mut ingest = health(&app, Role::Service);
    let (started, _) = tokio::join!(admin.start_recompute(pb::StartRecomputeRequest::default()), async {
        for chunk in events.chunks(20) {
            ingest.batch_ingest_usage(pb::BatchIngestUsageRequest { events: chunk.to_vec() }).await.unwrap();
        }
    });
    wait_job(&admin, &started.unwrap().into_inner().id).await;
    // 200 events over 3 accounts: 67, 67 and 66 logins.
    for (id, n) in ids.iter().zip([67.0, 67.0, 66.0]) {
        until(&app, id, |h| h.score == n && h.contributions[0].raw == Some(n)).await;
    }
}

#[tokio::test]
async fn segment_scoped_scorecards_follow_membership() {
    let app = spawn().await;
    let mut admin = health(&app, Role::Admin);
    let segment = accounts(&app, TENANT)
        .create_segment(apb::CreateSegmentRequest {
            segment: Some(apb::Segment {
                display_name: "Strategic".into(),
                expression: r#"account.region == "APAC" && "strategic" in account.tags"#.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let general = admin
        .create_scorecard(pb::CreateScorecardRequest { scorecard: Some(nps_card("All", None)), request_id: "".into() })
        .await
        .unwrap()
        .into_inner();
    // The segment's card halves NPS into points: 0..200 → 0..100.
    let mut strategic = nps_card("Strategic", Some(pb::scope::Kind::SegmentId(segment.id.clone())));
    strategic.measures[0].normalisation = linear(0.0, 200.0);
    let strategic = admin
        .create_scorecard(pb::CreateScorecardRequest { scorecard: Some(strategic), request_id: "".into() })
        .await
        .unwrap()
        .into_inner();
    let spec =
        |name, tags| Spec { name, stage: tpb::LifecycleStage::Adoption, region: "APAC", owner: "", tags, arr: None };
    let member = account(&app, &spec("Member", &["strategic"])).await;
    let outsider = account(&app, &spec("Outsider", &[])).await;
    set_nps(&app, &member, 80.0).await;
    set_nps(&app, &outsider, 80.0).await;
    until(&app, &member, |h| h.scorecard_id == strategic.id && h.score == 40.0).await;
    until(&app, &outsider, |h| h.scorecard_id == general.id && h.score == 80.0).await;

    // Leaving the segment (an attribute change) moves the account to the general card.
    let mut acc = accounts(&app, TENANT);
    let current = acc.get_account(apb::GetAccountRequest { id: member.clone() }).await.unwrap().into_inner();
    acc.update_account(apb::UpdateAccountRequest {
        account: Some(apb::Account { id: member.clone(), tags: vec![], etag: current.etag, ..Default::default() }),
        update_mask: Some(pbjson_types::FieldMask { paths: vec!["tags".into()] }),
    })
    .await
    .unwrap();
    until(&app, &member, |h| h.scorecard_id == general.id && h.score == 80.0).await;

    // A wider segment expression takes the outsider in (a recompute follows SegmentChanged).
    let seg = acc.get_segment(apb::GetSegmentRequest { id: segment.id.clone() }).await.unwrap().into_inner();
    acc.update_segment(apb::UpdateSegmentRequest {
        segment: Some(apb::Segment {
            id: segment.id.clone(),
            expression: r#"account.region == "APAC""#.into(),
            etag: seg.etag,
            ..Default::default()
        }),
        update_mask: Some(pbjson_types::FieldMask { paths: vec!["expression".into()] }),
    })
    .await
    .unwrap();
    until(&app, &outsider, |h| h.scorecard_id == strategic.id && h.score == 40.0).await;
    until(&app, &member, |h| h.scorecard_id == strategic.id && h.score == 40.0).await;

    // Deleting the segment leaves its card matching nobody.
    acc.delete_segment(apb::DeleteSegmentRequest { id: segment.id, etag: String::new() }).await.unwrap();
    until(&app, &outsider, |h| h.scorecard_id == general.id).await;
    until(&app, &member, |h| h.scorecard_id == general.id).await;
}

/// The fiscal year set in Accounts reaches Health through
/// TenantSettingsChanged: a quarter of the renewal forecast is the
/// tenant's quarter, not the calendar's.
#[tokio::test]
async fn the_renewal_forecast_reads_the_fiscal_year_set_in_accounts() {
    use chrono::Datelike;
    let app = spawn().await;
    let mut acc = accounts(&app, TENANT);
    acc.update_tenant_settings(apb::UpdateTenantSettingsRequest {
        settings: Some(apb::TenantSettings { fiscal_year_start_month: 4, ..Default::default() }),
        update_mask: Some(pbjson_types::FieldMask { paths: vec!["fiscal_year_start_month".into()] }),
    })
    .await
    .unwrap();
    // Next year's May: the first quarter of a fiscal year starting in April.
    let year = Utc::now().year() + 1;
    let renewal = |month: i32| tpb::Date { year, month, day: 15 };
    let renewing = |name: &str, month: i32| apb::Account {
        name: name.into(),
        lifecycle_stage: tpb::LifecycleStage::Adoption as i32,
        touch_model: tpb::TouchModel::Tech as i32,
        arr: Some(tpb::Money { currency_code: "JPY".into(), amount_minor: 1_200_000 }),
        renewal_date: Some(renewal(month)),
        ..Default::default()
    };
    // Accounts' events reach Health in order: once it knows accounts
    // created after the change, it knows the fiscal year too.
    health::create_account(&app, TENANT, renewing("May", 5)).await;
    health::create_account(&app, TENANT, renewing("February", 2)).await;
    let q1 = health(&app, Role::Viewer)
        .forecast_renewals(pb::ForecastRenewalsRequest { fiscal_year: year, fiscal_quarter: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let day = |month: i32, day: i32| Some(tpb::Date { year, month, day });
    assert_eq!((q1.start_day, q1.end_day), (day(4, 1), day(6, 30)), "April to June, not January to March");
    let total: Vec<_> = q1.groups.iter().filter(|g| g.kind == pb::renewal_group::Kind::Total as i32).collect();
    assert_eq!(total.len(), 1, "{q1:?}");
    // May's renewal only: February's falls in the previous fiscal year's last quarter.
    assert_eq!((total[0].renewals, total[0].arr_due, total[0].currency.as_str()), (1, 1_200_000, "JPY"));
}
