//! Scorecards and live scores through a real gRPC client: hand-computed
//! scores and explanations, missing-data reweighting, a new scorecard
//! version rescoring accounts, HealthScoreChanged on the bus, bad
//! scorecards, concurrent updates, and what an account without usage scores.

mod health;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use banso_events::{Envelope, Handler, HandlerError, Payload, bus::supervise_consumer};
use banso_proto::{accounts as apb, events as ev, health as pb, types as tpb};
use banso_testkit::{TestApp, TestRole as Role, eventually};
use health::{
    Health, WAIT, create_account, create_scorecard, health_until, linear, measure, percentile, raw, set_measure,
    thresholds, usage, wait_job,
};
use tonic::Code;

fn health(app: &TestApp, role: Role) -> Health {
    health::health(app, "acme", role)
}

async fn account(app: &TestApp) -> String {
    health::account(app, "acme", "株式会社スコア", "crm-score").await
}

/// active users over 7 days (60%, 0/1/3 users → 0/50/100 points) and NPS
/// (40%, linear 0..100, skipped while missing).
fn scorecard() -> pb::Scorecard {
    pb::Scorecard {
        name: "Tech touch".into(),
        measures: vec![
            measure("active_users_7d", 60.0, thresholds(&[(0.0, 0.0), (1.0, 50.0), (3.0, 100.0)])),
            measure("external:nps", 40.0, linear(0.0, 100.0)),
        ],
        ..Default::default()
    }
}

struct Collector(Mutex<Vec<ev::HealthScoreChanged>>);

#[async_trait]
impl Handler for Collector {
    async fn handle(&self, env: &Envelope) -> Result<(), HandlerError> {
        if let Some(Payload::HealthScoreChanged(c)) = &env.payload {
            self.0.lock().unwrap().push(c.clone());
        }
        Ok(())
    }
}

#[tokio::test]
async fn scores_follow_usage_measures_and_scorecard_versions_with_explanations_and_events() {
    let app = health::spawn().await;
    let collector = Arc::new(Collector(Mutex::new(Vec::new())));
    supervise_consumer(
        &app.runtime.supervisor,
        "test",
        app.runtime.bus.clone(),
        "test-collector",
        vec![banso_events::envelope::all_of("health")],
        collector.clone(),
        Default::default(),
        &banso_events::partition::Partitions::all(app.runtime.bus.partitions()),
    );
    let a = account(&app).await;
    // Usage first: with no scorecard yet, nothing is scored.
    let mut svc = health(&app, Role::Service);
    svc.batch_ingest_usage(pb::BatchIngestUsageRequest {
        events: vec![usage("e1", &a, "u1", "login"), usage("e2", &a, "u2", "login")],
    })
    .await
    .unwrap();
    let mut admin = health(&app, Role::Admin);
    let card = admin
        .create_scorecard(pb::CreateScorecardRequest { scorecard: Some(scorecard()), request_id: "card-1".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((card.version, card.etag.as_str()), (1, "v1"));
    // The same request id returns the same scorecard.
    let again = admin
        .create_scorecard(pb::CreateScorecardRequest { scorecard: Some(scorecard()), request_id: "card-1".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, card);

    // The new scorecard scores the account: 2 active users → 50 points; NPS
    // missing → its weight moves to the usage measure: 50 × 1.0 = 50.0, yellow.
    let h = health_until(&admin, &a, |h| h.score == 50.0).await;
    assert_eq!(h.band, pb::Band::Yellow as i32);
    assert_eq!((h.scorecard_id.as_str(), h.scorecard_version), (card.id.as_str(), 1));
    let c = &h.contributions;
    assert_eq!(c.len(), 2);
    assert_eq!((c[0].measure.as_str(), c[0].raw, c[0].points), ("active_users_7d", Some(2.0), Some(50.0)));
    assert_eq!((c[0].weight, c[0].effective_weight, c[0].contribution), (60.0, 1.0, 50.0));
    assert_eq!(
        (c[1].measure.as_str(), c[1].raw, c[1].points, c[1].effective_weight),
        ("external:nps", None, None, 0.0)
    );

    // NPS 90: 50 × 0.6 + 90 × 0.4 = 66.0, still yellow.
    set_measure(&svc, &a, "nps", Some(90.0)).await;
    let h = health_until(&admin, &a, |h| h.score == 66.0).await;
    let sum: f64 = h.contributions.iter().map(|c| c.contribution).sum();
    assert!((sum - 66.0).abs() < 0.05, "contributions sum to the score: {sum}");

    // Version 2 moves green down to 60: the same 66.0 is now green.
    let mut v2 = card.clone();
    v2.bands = Some(pb::Bands { yellow_from: 40.0, green_from: 60.0 });
    let updated = admin
        .update_scorecard(pb::UpdateScorecardRequest {
            scorecard: Some(v2.clone()),
            update_mask: Some(pbjson_types::FieldMask { paths: vec!["bands".into()] }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.version, updated.etag.as_str()), (2, "v2"));
    let h = health_until(&admin, &a, |h| h.scorecard_version == 2).await;
    assert_eq!((h.score, h.band), (66.0, pb::Band::Green as i32));
    // The stale etag of version 1 is refused; version 1 is still readable.
    let err = admin
        .update_scorecard(pb::UpdateScorecardRequest { scorecard: Some(v2), update_mask: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    let old =
        admin.get_scorecard(pb::GetScorecardRequest { id: card.id.clone(), version: 1 }).await.unwrap().into_inner();
    assert_eq!(old.bands.unwrap().green_from, 70.0);

    // A third user: 3 active users → 100 points: 60 + 36 = 96.0, green.
    svc.batch_ingest_usage(pb::BatchIngestUsageRequest {
        events: vec![usage("e3", &a, "u3", "login"), usage("e1", &a, "u1", "login")],
    })
    .await
    .unwrap();
    health_until(&admin, &a, |h| h.score == 96.0).await;

    // Every move was announced, with old and new score, band and version.
    let collector = &collector;
    let events = eventually("four HealthScoreChanged events", WAIT, || async move {
        let seen = collector.0.lock().unwrap().clone();
        (seen.len() >= 4).then_some(seen)
    })
    .await;
    let seen: Vec<(Option<f64>, f64, i32, i32, i64)> =
        events.iter().map(|e| (e.old_score, e.new_score, e.old_band, e.new_band, e.scorecard_version)).collect();
    let (y, g) = (pb::Band::Yellow as i32, pb::Band::Green as i32);
    assert_eq!(
        seen,
        [(None, 50.0, 0, y, 1), (Some(50.0), 66.0, y, y, 1), (Some(66.0), 66.0, y, g, 2), (Some(66.0), 96.0, g, g, 2)]
    );
    assert!(events.iter().all(|e| e.account_id == a && e.scorecard_id == card.id));
}

/// Without an etag a lost race is retried, never reported as a stale etag:
/// concurrent updates of one scorecard all succeed, each a version.
#[tokio::test]
async fn concurrent_updates_without_an_etag_all_succeed_each_a_new_version() {
    let app = health::spawn().await;
    let admin = health(&app, Role::Admin);
    let card = create_scorecard(&admin, scorecard()).await;
    let names: Vec<String> = (1..=4).map(|i| format!("Tech touch, take {i}")).collect();
    let updates = names.iter().map(|name| {
        let mut admin = admin.clone();
        let change = pb::Scorecard { id: card.id.clone(), name: name.clone(), ..Default::default() };
        async move {
            admin
                .update_scorecard(pb::UpdateScorecardRequest {
                    scorecard: Some(change),
                    update_mask: Some(pbjson_types::FieldMask { paths: vec!["name".into()] }),
                })
                .await
        }
    });
    let results = futures::future::join_all(updates).await;
    let mut versions: Vec<i64> =
        results.into_iter().map(|r| r.expect("no etag: retried, not refused").into_inner().version).collect();
    versions.sort();
    assert_eq!(versions, [2, 3, 4, 5]);
    let mut seen: Vec<String> = Vec::new();
    for version in 2..=5 {
        let v = admin.clone().get_scorecard(pb::GetScorecardRequest { id: card.id.clone(), version }).await.unwrap();
        seen.push(v.into_inner().name);
    }
    seen.sort();
    assert_eq!(seen, names, "every update is a version of its own");
    // An etag names the version meant: a stale one is refused.
    let stale = pb::Scorecard { id: card.id.clone(), name: "late".into(), etag: "v2".into(), ..Default::default() };
    let err = admin
        .clone()
        .update_scorecard(pb::UpdateScorecardRequest {
            scorecard: Some(stale),
            update_mask: Some(pbjson_types::FieldMask { paths: vec!["name".into()] }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    let reason = tonic_types::StatusExt::get_error_details(&err).error_info().unwrap().reason.clone();
    assert_eq!(reason, "ETAG_MISMATCH");
}

/// Issue #10: a scorecard scoped to a lifecycle stage whose only measure is
/// a percentile of a measure no scorecard used before unscored its accounts
/// (its populations were read before any account had a value of it). Now
/// creating or editing it leaves every account in scope scored, ranked
/// among the values computed with it.
#[tokio::test]
async fn a_new_percentile_scorecard_scores_every_account_in_scope() {
    let app = health::spawn().await;
    let admin = health(&app, Role::Admin);
    let svc = health(&app, Role::Service);
    let general = create_scorecard(
        &admin,
        pb::Scorecard {
            name: "All".into(),
            measures: vec![measure("external:nps", 1.0, linear(0.0, 100.0))],
            ..Default::default()
        },
    )
    .await;
    let mut renewing = Vec::new();
    let mut adopting = Vec::new();
    for i in 0..8 {
        let stage = if i % 2 == 0 { tpb::LifecycleStage::Renewal } else { tpb::LifecycleStage::Adoption };
        let a = apb::Account {
            name: format!("Account {i}"),
            lifecycle_stage: stage as i32,
            touch_model: tpb::TouchModel::High as i32,
            ..Default::default()
        };
        let id = create_account(&app, "acme", a).await;
        set_measure(&svc, &id, "nps", Some(50.0)).await;
        // A measure no scorecard reads yet.
        set_measure(&svc, &id, "csat", Some(f64::from(i))).await;
        if i % 2 == 0 { renewing.push(id) } else { adopting.push(id) }
    }
    for id in renewing.iter().chain(&adopting) {
        health_until(&admin, id, |h| h.scorecard_id == general.id && h.score == 50.0).await;
    }
    let stage_card = create_scorecard(
        &admin,
        pb::Scorecard {
            name: "Renewals by CSAT".into(),
            scope: Some(pb::Scope { kind: Some(pb::scope::Kind::LifecycleStage(tpb::LifecycleStage::Renewal as i32)) }),
            measures: vec![measure("external:csat", 1.0, percentile())],
            ..Default::default()
        },
    )
    .await;
    // CSAT 0, 2, 4, 6 rank 0, 33.3, 66.7, 100 among the four.
    for (id, score) in renewing.iter().zip([0.0, 33.3, 66.7, 100.0]) {
        let h = health_until(&admin, id, |h| h.scorecard_id == stage_card.id).await;
        assert_eq!(h.score, score, "{h:?}");
    }
    for id in &adopting {
        health_until(&admin, id, |h| h.scorecard_id == general.id && h.score == 50.0).await;
    }
    // A recompute finds nothing left to do: every account was scored right.
    let job = admin.clone().start_recompute(pb::StartRecomputeRequest::default()).await.unwrap().into_inner();
    let done = wait_job(&admin, &job.id).await;
    assert_eq!((done.accounts_total, done.accounts_scored, done.scores_changed), (8, 8, 0), "{done:?}");
}

/// Issue #10: an account with no usage at all has its usage measures
/// missing, not 0: the scorecard's missing-data policy decides, and its
/// first event scores it.
#[tokio::test]
async fn no_usage_is_missing_data_not_zero() {
    let app = health::spawn().await;
    let admin = health(&app, Role::Admin);
    let mut svc = health(&app, Role::Service);
    let skip = health::account(&app, "acme", "Skipped", "crm-skip").await;
    let counted = create_account(
        &app,
        "acme",
        apb::Account {
            name: "Counted".into(),
            lifecycle_stage: tpb::LifecycleStage::Onboarding as i32,
            touch_model: tpb::TouchModel::Tech as i32,
            ..Default::default()
        },
    )
    .await;
    // Usage alone, missing data skipped (the default): no usage, no score.
    let usage_only = create_scorecard(
        &admin,
        pb::Scorecard {
            name: "Usage".into(),
            measures: vec![measure("events_7d:login", 1.0, linear(0.0, 10.0))],
            ..Default::default()
        },
    )
    .await;
    // Onboarding accounts: missing usage counts as zero.
    let zero = create_scorecard(
        &admin,
        pb::Scorecard {
            name: "Onboarding".into(),
            scope: Some(pb::Scope {
                kind: Some(pb::scope::Kind::LifecycleStage(tpb::LifecycleStage::Onboarding as i32)),
            }),
            measures: vec![pb::WeightedMeasure {
                missing: pb::MissingData::CountAsZero as i32,
                ..measure("events_7d:login", 1.0, linear(0.0, 10.0))
            }],
            ..Default::default()
        },
    )
    .await;
    let h = health_until(&admin, &counted, |h| h.scorecard_id == zero.id).await;
    assert_eq!((h.score, h.band), (0.0, pb::Band::Red as i32));
    assert_eq!((h.contributions[0].raw, h.contributions[0].points), (None, Some(0.0)), "missing, counted as 0 points");
    // The scorecards' recompute is done: the account without usage under
    // the skipping scorecard is not scored (and counted as unscored).
    let job = admin.clone().start_recompute(pb::StartRecomputeRequest::default()).await.unwrap().into_inner();
    let done = wait_job(&admin, &job.id).await;
    assert_eq!((done.accounts_total, done.accounts_scored), (2, 1), "{done:?}");
    let err =
        admin.clone().get_account_health(pb::GetAccountHealthRequest { account_id: skip.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let d = admin.clone().get_health_distribution(pb::GetHealthDistributionRequest::default()).await.unwrap();
    assert_eq!((d.get_ref().accounts, d.get_ref().unscored_accounts), (1, 1));

    // The first event scores it: 1 login of 10.
    svc.batch_ingest_usage(pb::BatchIngestUsageRequest { events: vec![usage("first", &skip, "u", "login")] })
        .await
        .unwrap();
    let h = health_until(&admin, &skip, |h| h.scorecard_id == usage_only.id).await;
    assert_eq!((raw(&h, "events_7d:login"), h.score), (Some(1.0), 10.0));
    // Usage of other names: the account has usage, so no login is 0 logins.
    svc.batch_ingest_usage(pb::BatchIngestUsageRequest { events: vec![usage("other", &counted, "u", "export")] })
        .await
        .unwrap();
    let h = health_until(&admin, &counted, |h| raw(h, "events_7d:login").is_some()).await;
    assert_eq!((raw(&h, "events_7d:login"), h.score), (Some(0.0), 0.0));
}

#[tokio::test]
async fn bad_scorecards_are_refused_naming_each_field() {
    let app = health::spawn().await;
    let mut admin = health(&app, Role::Admin);
    let mut bad = scorecard();
    bad.name = "  ".into();
    bad.measures[0].weight = -1.0;
    bad.measures[1].measure = "external:NPS".into();
    bad.measures.push(measure("events_30d:export", 10.0, thresholds(&[(5.0, 10.0), (5.0, 20.0)])));
    bad.measures.push(measure("usage_minutes_30d", 1.0, linear(10.0, 10.0)));
    bad.measures.push(measure("nonsense_measure", 1.0, linear(0.0, 1.0)));
    bad.measures.push(measure("active_users_30d", 1.0, None));
    bad.bands = Some(pb::Bands { yellow_from: 80.0, green_from: 70.0 });
    bad.scope = Some(pb::Scope { kind: Some(pb::scope::Kind::LifecycleStage(42)) });
    let err = admin
        .create_scorecard(pb::CreateScorecardRequest { scorecard: Some(bad), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<String> = banso_testkit::field_violations(&err).into_iter().map(|(f, _)| f).collect();
    for f in [
        "scorecard.name",
        "scorecard.measures[0].weight",
        "scorecard.measures[1].measure",
        "scorecard.measures[4].measure",
        "scorecard.measures[5].normalisation",
        "scorecard.scope.lifecycle_stage",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
    }
    assert!(fields.iter().any(|x| x.starts_with("scorecard.measures[2].normalisation")), "{fields:?}");
    assert!(fields.iter().any(|x| x.starts_with("scorecard.measures[3].normalisation")), "{fields:?}");
    assert!(fields.iter().any(|x| x.starts_with("scorecard.bands")), "{fields:?}");

    let mut zero = scorecard();
    for m in &mut zero.measures {
        m.weight = 0.0;
    }
    let err = admin
        .create_scorecard(pb::CreateScorecardRequest { scorecard: Some(zero), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = admin.create_scorecard(pb::CreateScorecardRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // A segment scope names a segment by its id.
    let mut by_name = scorecard();
    by_name.scope = Some(pb::Scope { kind: Some(pb::scope::Kind::SegmentId("vip".into())) });
    let err = admin
        .create_scorecard(pb::CreateScorecardRequest { scorecard: Some(by_name), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(banso_testkit::field_violations(&err)[0].0, "scorecard.scope.segment_id");
    // Nothing was stored.
    let list = admin.list_scorecards(pb::ListScorecardsRequest::default()).await.unwrap().into_inner();
    assert!(list.scorecards.is_empty());

    // Only admins write scorecards; other tenants do not see them.
    let mut csm = health(&app, Role::Csm);
    let err = csm
        .create_scorecard(pb::CreateScorecardRequest { scorecard: Some(scorecard()), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let card = create_scorecard(&admin, scorecard()).await;
    let mut globex = health::health(&app, "globex", Role::Admin);
    let err = globex.get_scorecard(pb::GetScorecardRequest { id: card.id.clone(), version: 0 }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = admin.get_scorecard(pb::GetScorecardRequest { id: "nope".into(), version: 0 }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = admin
        .get_account_health(pb::GetAccountHealthRequest { account_id: uuid::Uuid::now_v7().to_string() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // Unknown mask paths are refused, naming the updatable ones.
    let err = admin
        .update_scorecard(pb::UpdateScorecardRequest {
            scorecard: Some(pb::Scorecard { id: card.id.clone(), ..Default::default() }),
            update_mask: Some(pbjson_types::FieldMask { paths: vec!["version".into()] }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("name, scope, measures, bands"), "{}", err.message());
}

/// Feature breadth end to end: distinct names an account used in 30 days ÷
/// the names its tenant used in 90 days (kept by ingest beside the rollups),
/// hand-computed; another tenant's names do not count.
#[tokio::test]
async fn feature_breadth_divides_by_the_tenants_tracked_event_names() {
    let app = health::spawn().await;
    let a = health::account(&app, "acme", "Narrow", "crm-narrow").await;
    let b = health::account(&app, "acme", "Broad", "crm-broad").await;
    let other = health::account(&app, "globex", "Other", "crm-other").await;
    let event = |id: &str, account: &str, name: &str| usage(id, account, "u1", name);
    // acme uses login, export, report, search (4 names); globex two more.
    health(&app, Role::Service)
        .batch_ingest_usage(pb::BatchIngestUsageRequest {
            events: vec![
                event("a1", &a, "login"),
                event("a2", &a, "export"),
                event("a3", &a, "export"),
                event("b1", &b, "login"),
                event("b2", &b, "report"),
                event("b3", &b, "search"),
            ],
        })
        .await
        .unwrap();
    health::health(&app, "globex", Role::Service)
        .batch_ingest_usage(pb::BatchIngestUsageRequest {
            events: vec![event("o1", &other, "billing"), event("o2", &other, "audit")],
        })
        .await
        .unwrap();
    let card = pb::Scorecard {
        name: "Breadth".into(),
        measures: vec![measure("feature_breadth_30d", 1.0, linear(0.0, 1.0))],
        ..Default::default()
    };
    let admin = health(&app, Role::Admin);
    admin
        .clone()
        .create_scorecard(pb::CreateScorecardRequest { scorecard: Some(card), request_id: "breadth".into() })
        .await
        .unwrap();
    // 2 of 4 names → 0.5 → 50 points; 3 of 4 → 75.
    let h = health_until(&admin, &a, |h| h.contributions.first().and_then(|c| c.raw).is_some()).await;
    assert_eq!((h.contributions[0].raw, h.score), (Some(0.5), 50.0));
    let h = health_until(&admin, &b, |h| h.contributions.first().and_then(|c| c.raw).is_some()).await;
    assert_eq!((h.contributions[0].raw, h.score), (Some(0.75), 75.0));
    // A fifth name, used by the narrow account: 3 of 5 and 3 of 5.
    health(&app, Role::Service)
        .batch_ingest_usage(pb::BatchIngestUsageRequest { events: vec![event("a4", &a, "share")] })
        .await
        .unwrap();
    let h = health_until(&admin, &a, |h| h.contributions[0].raw == Some(0.6)).await;
    assert_eq!(h.score, 60.0);
}
