//! Success plans through SuccessPlansService: the source's example, every
//! branch of the decision rule, facts before analysis, the self-run ratio,
//! the customer's ROI, success models and their spread, bad input, and
//! playbooks that start plans and react to their events.

use banso_events::Payload;
use banso_proto::{accounts as apb, events as ev, playbooks as pb, types as tpb};
use banso_testkit::TestApp;
use tonic::Code;

use crate::common::*;

type Plans = pb::success_plans_service_client::SuccessPlansServiceClient<
    tonic::codegen::InterceptedService<tonic::transport::Channel, banso_testkit::Bearer>,
>;

fn plans(app: &TestApp, tenant: &str, role: Role) -> Plans {
    pb::success_plans_service_client::SuccessPlansServiceClient::with_interceptor(
        app.channel.clone(),
        app.bearer(tenant, role),
    )
}

fn date(y: i32, m: i32, d: i32) -> Option<tpb::Date> {
    Some(tpb::Date { year: y, month: m, day: d })
}

fn checkpoint(
    metric: &str,
    dir: pb::Direction,
    kind: pb::CheckpointKind,
    baseline: f64,
    target: f64,
) -> pb::Checkpoint {
    pb::Checkpoint {
        metric: metric.into(),
        unit: "%".into(),
        direction: dir as i32,
        kind: kind as i32,
        baseline: Some(baseline),
        target: Some(target),
        due_date: date(2030, 3, 31),
        assumption: "half of the leavers leave within 3 months of joining".into(),
        ..Default::default()
    }
}

fn deliverable(
    title: &str,
    who: pb::Party,
    status: pb::DeliverableStatus,
    rating: i32,
    tasks: &[bool],
) -> pb::Deliverable {
    pb::Deliverable {
        title: title.into(),
        responsible: who as i32,
        owner: "owner-1".into(),
        status: status as i32,
        quality_rating: rating,
        tasks: tasks
            .iter()
            .enumerate()
            .map(|(i, d)| pb::PlanTask { title: format!("task {i}"), done: *d, ..Default::default() })
            .collect(),
        ..Default::default()
    }
}

async fn an_account(app: &TestApp, name: &str, industry: &str) -> apb::Account {
    let mut a = account(name, "ann", tpb::TouchModel::High);
    a.industry = industry.into();
    known_account(app, TENANT, &a).await;
    a
}

async fn create(p: &mut Plans, plan: pb::SuccessPlan) -> pb::SuccessPlan {
    p.create_success_plan(pb::CreateSuccessPlanRequest { plan: Some(plan), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
}

async fn record(p: &mut Plans, plan: &pb::SuccessPlan, checkpoint: usize, value: f64) -> pb::SuccessPlan {
    p.record_checkpoint_reading(pb::RecordCheckpointReadingRequest {
        plan_id: plan.id.clone(),
        checkpoint_id: plan.checkpoints[checkpoint].id.clone(),
        sub_metric_id: String::new(),
        reading: Some(pb::Reading { value, ..Default::default() }),
    })
    .await
    .unwrap()
    .into_inner()
}

async fn review(p: &mut Plans, plan: &pb::SuccessPlan) -> pb::ResultReview {
    p.get_result_review(pb::GetResultReviewRequest { plan_id: plan.id.clone() }).await.unwrap().into_inner()
}

async fn conclude(
    p: &mut Plans,
    plan: &pb::SuccessPlan,
    direction: pb::DevelopDirection,
) -> Result<pb::SuccessPlan, tonic::Status> {
    p.conclude_result_review(pb::ConcludeResultReviewRequest {
        plan_id: plan.id.clone(),
        analysis: "Facts first:\nthe onboarding buddy worked where it ran.".into(),
        next_step: "run it in every team".into(),
        direction: direction as i32,
        etag: String::new(),
    })
    .await
    .map(|r| r.into_inner())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// The source's example: staff turnover, baseline 30% (last year), target
/// 21%, actual 25%, execution incomplete → attainment 55.6% (5 of 9
/// points), "the measure likely works; raise execution" — and the analysis
/// can be written only once both facts are recorded.
#[tokio::test]
async fn the_source_example_reviews_to_raise_execution_with_the_facts_first() {
    let app = spawn().await;
    let mut p = plans(&app, TENANT, Role::Csm);
    let a = an_account(&app, "Kobe Logistics", "logistics").await;
    let mut turnover = checkpoint("staff turnover", pb::Direction::LowerIsBetter, pb::CheckpointKind::Rate, 30.0, 21.0);
    turnover.sub_metrics = vec![pb::SubMetric {
        metric: "leavers within 3 months of joining".into(),
        axis: "tenure".into(),
        unit: "%".into(),
        direction: pb::Direction::LowerIsBetter as i32,
        baseline: Some(12.0),
        target: Some(6.0),
        ..Default::default()
    }];
    let plan = create(
        &mut p,
        pb::SuccessPlan {
            account_id: a.id.clone(),
            display_name: "Keep new hires".into(),
            problem: "new staff leave in their first months".into(),
            stage: pb::PlanStage::Execution as i32,
            checkpoints: vec![turnover],
            deliverables: vec![
                deliverable(
                    "onboarding buddy programme",
                    pb::Party::Customer,
                    pb::DeliverableStatus::Done,
                    0,
                    &[true, true],
                ),
                deliverable(
                    "manager 1:1 cadence",
                    pb::Party::Customer,
                    pb::DeliverableStatus::InProgress,
                    0,
                    &[true, false, false],
                ),
            ],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(plan.state, pb::PlanState::Active as i32);
    assert_eq!(plan.stage, pb::PlanStage::Execution as i32);

    // No facts yet: the review lists what is missing and concludes nothing.
    let r = review(&mut p, &plan).await;
    assert_eq!(
        r.missing,
        vec![
            "checkpoint staff turnover: no reading".to_string(),
            "deliverable onboarding buddy programme: done but its quality is not rated".to_string(),
        ]
    );
    assert_eq!(r.conclusion, pb::ReviewConclusion::Unspecified as i32);
    let e = conclude(&mut p, &plan, pb::DevelopDirection::Unspecified).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(reason(&e), "REVIEW_FACTS_MISSING");
    assert!(e.message().contains("checkpoint staff turnover: no reading"), "{}", e.message());

    // The result: 25%, and the breakdown: 9% of joiners leave in 3 months.
    let plan = record(&mut p, &plan, 0, 25.0).await;
    let plan = p
        .record_checkpoint_reading(pb::RecordCheckpointReadingRequest {
            plan_id: plan.id.clone(),
            checkpoint_id: plan.checkpoints[0].id.clone(),
            sub_metric_id: plan.checkpoints[0].sub_metrics[0].id.clone(),
            reading: Some(pb::Reading { value: 9.0, note: "HR export".into(), ..Default::default() }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plan.checkpoints[0].readings.len(), 1);
    assert_eq!(plan.checkpoints[0].readings[0].recorded_by, "test-user");
    let r = review(&mut p, &plan).await;
    assert_eq!(
        r.missing,
        vec!["deliverable onboarding buddy programme: done but its quality is not rated".to_string()]
    );
    // Execution's quality: rated with a note.
    let mut d = plan.deliverables.clone();
    d[0].quality_rating = 4;
    d[0].quality_note = "buddies met weekly".into();
    let plan = p
        .update_success_plan(pb::UpdateSuccessPlanRequest {
            plan: Some(pb::SuccessPlan {
                id: plan.id.clone(),
                etag: plan.etag.clone(),
                deliverables: d,
                ..Default::default()
            }),
            update_mask: mask(&["deliverables"]),
        })
        .await
        .unwrap()
        .into_inner();

    let r = review(&mut p, &plan).await;
    assert!(r.missing.is_empty(), "{:?}", r.missing);
    let t = &r.results[0];
    assert!(close(t.attainment.unwrap(), 5.0 / 9.0));
    assert_eq!(format!("{:.1}%", t.attainment.unwrap() * 100.0), "55.6%");
    assert_eq!((t.actual, t.change, t.shortfall, t.met), (Some(25.0), Some(-5.0), Some(4.0), false));
    assert_eq!(t.assumption, "half of the leavers leave within 3 months of joining", "shown beside the difference");
    assert!(close(t.sub_metrics[0].attainment.unwrap(), 0.5), "(9 − 12) ÷ (6 − 12)");
    let x = r.execution.unwrap();
    assert_eq!((x.deliverables_planned, x.deliverables_done, x.tasks_planned, x.tasks_done), (2, 1, 5, 3));
    assert!(close(x.quantity, 4.0 / 7.0));
    assert_eq!((x.quality, x.rated, x.threshold, x.sufficient), (Some(4.0), 1, 0.8, false));
    assert!(r.improved && !r.target_met);
    assert_eq!(r.conclusion, pb::ReviewConclusion::RaiseExecution as i32);

    // The direction of development is for a met target only.
    let e = conclude(&mut p, &plan, pb::DevelopDirection::AdvanceResult).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_violation(&e, "direction");
    let done = conclude(&mut p, &plan, pb::DevelopDirection::Unspecified).await.unwrap();
    assert_eq!(done.state, pb::PlanState::Concluded as i32);
    assert_eq!(done.stage, pb::PlanStage::ResultReview as i32);
    let kept = done.review.clone().unwrap();
    assert_eq!(kept.conclusion, pb::ReviewConclusion::RaiseExecution as i32);
    assert!(kept.analysis.starts_with("Facts first:\n"));
    assert_eq!(kept.concluded_by, "test-user");

    // Concluded: it no longer changes.
    let e = record_err(&mut p, &done, 24.0).await;
    assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "PLAN_CONCLUDED"));
    let e = p
        .update_success_plan(pb::UpdateSuccessPlanRequest {
            plan: Some(pb::SuccessPlan { id: done.id.clone(), display_name: "x".into(), ..Default::default() }),
            update_mask: mask(&["display_name"]),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "PLAN_CONCLUDED");
}

async fn record_err(p: &mut Plans, plan: &pb::SuccessPlan, value: f64) -> tonic::Status {
    p.record_checkpoint_reading(pb::RecordCheckpointReadingRequest {
        plan_id: plan.id.clone(),
        checkpoint_id: plan.checkpoints[0].id.clone(),
        sub_metric_id: String::new(),
        reading: Some(pb::Reading { value, ..Default::default() }),
    })
    .await
    .unwrap_err()
}

/// A plan with one checkpoint and five deliverables, `done` of them done
/// (rated 3), with `actual` recorded.
async fn reviewed(
    p: &mut Plans,
    account: &str,
    dir: pb::Direction,
    b: f64,
    t: f64,
    actual: f64,
    done: usize,
) -> (pb::SuccessPlan, pb::ResultReview) {
    let plan = create(
        p,
        pb::SuccessPlan {
            account_id: account.into(),
            display_name: format!("{b} → {t}, actual {actual}, {done} of 5 done"),
            checkpoints: vec![checkpoint("m", dir, pb::CheckpointKind::ProductUsage, b, t)],
            deliverables: (0..5)
                .map(|i| {
                    let (status, rating) =
                        if i < done { (pb::DeliverableStatus::Done, 3) } else { (pb::DeliverableStatus::Planned, 0) };
                    deliverable(&format!("d{i}"), pb::Party::Customer, status, rating, &[])
                })
                .collect(),
            ..Default::default()
        },
    )
    .await;
    let plan = record(p, &plan, 0, actual).await;
    let r = review(p, &plan).await;
    (plan, r)
}

/// Hand-computed reviews over every branch of the rule, with attainment
/// below 0 and above 100%, and the tenant's threshold moving one.
#[tokio::test]
async fn hand_computed_reviews_cover_every_branch_of_the_decision_rule() {
    use pb::{Direction::*, ReviewConclusion as C};
    let app = spawn().await;
    let mut p = plans(&app, TENANT, Role::Csm);
    let a = an_account(&app, "Branches", "retail").await;
    // (direction, baseline, target, actual, done of 5, attainment, shortfall, conclusion)
    let rows = [
        (HigherIsBetter, 100.0, 200.0, 250.0, 5, 1.5, 0.0, C::Develop),
        (HigherIsBetter, 100.0, 200.0, 200.0, 1, 1.0, 0.0, C::Develop),
        (LowerIsBetter, 30.0, 21.0, 18.0, 2, 4.0 / 3.0, 0.0, C::Develop),
        (HigherIsBetter, 100.0, 200.0, 150.0, 4, 0.5, 50.0, C::RedefineIssue),
        (HigherIsBetter, 100.0, 200.0, 80.0, 5, -0.2, 120.0, C::RedefineIssue),
        (HigherIsBetter, 100.0, 200.0, 150.0, 3, 0.5, 50.0, C::RaiseExecution),
        (LowerIsBetter, 30.0, 21.0, 25.0, 2, 5.0 / 9.0, 4.0, C::RaiseExecution),
        (HigherIsBetter, 100.0, 200.0, 100.0, 3, 0.0, 100.0, C::FindExecutionCause),
        (LowerIsBetter, 30.0, 21.0, 33.0, 0, -1.0 / 3.0, 12.0, C::FindExecutionCause),
    ];
    for (dir, b, t, actual, done, attainment, shortfall, want) in rows {
        let (plan, r) = reviewed(&mut p, &a.id, dir, b, t, actual, done).await;
        let x = &r.results[0];
        assert!(close(x.attainment.unwrap(), attainment), "{}: attainment {:?}", plan.display_name, x.attainment);
        assert!(close(x.shortfall.unwrap(), shortfall), "{}: shortfall {:?}", plan.display_name, x.shortfall);
        assert!(close(x.change.unwrap(), actual - b));
        assert_eq!(x.met, attainment >= 1.0);
        assert!(close(r.execution.as_ref().unwrap().quantity, done as f64 / 5.0));
        assert_eq!(r.conclusion, want as i32, "{}", plan.display_name);
    }

    // At a 60% threshold, 3 of 5 done is sufficient: raise execution becomes
    // redefine the issue.
    let mut admin_c = admin(&app);
    let s = admin_c.get_playbook_settings(pb::GetPlaybookSettingsRequest {}).await.unwrap().into_inner();
    assert_eq!(s.review_execution_threshold_percent, 80);
    admin_c
        .update_playbook_settings(pb::UpdatePlaybookSettingsRequest {
            settings: Some(pb::PlaybookSettings { review_execution_threshold_percent: 60, ..Default::default() }),
            update_mask: mask(&["review_execution_threshold_percent"]),
        })
        .await
        .unwrap();
    let (_, r) = reviewed(&mut p, &a.id, HigherIsBetter, 100.0, 200.0, 150.0, 3).await;
    assert_eq!((r.execution.unwrap().threshold, r.conclusion), (0.6, C::RedefineIssue as i32));
    let e = admin_c
        .update_playbook_settings(pb::UpdatePlaybookSettingsRequest {
            settings: Some(pb::PlaybookSettings { review_execution_threshold_percent: 101, ..Default::default() }),
            update_mask: mask(&["review_execution_threshold_percent"]),
        })
        .await
        .unwrap_err();
    assert_violation(&e, "settings.review_execution_threshold_percent");
}

async fn segment(app: &TestApp, name: &str, expression: &str) -> String {
    let seg = apb::Segment {
        id: uuid::Uuid::now_v7().to_string(),
        display_name: name.into(),
        expression: expression.into(),
        ..Default::default()
    };
    let change = ev::segment_changed::Change::Created as i32;
    publish(
        app,
        TENANT,
        "accounts",
        Payload::SegmentChanged(ev::SegmentChanged { segment: Some(seg.clone()), change }),
    )
    .await;
    seg.id
}

/// The self-run ratio per plan, per account and per segment, and the
/// customer's ROI from entered and derived benefits.
#[tokio::test]
async fn self_run_ratio_per_plan_account_and_segment_and_the_customers_roi() {
    let app = spawn().await;
    let mut p = plans(&app, TENANT, Role::Csm);
    let seg = segment(&app, "Manufacturing", "account.industry == 'manufacturing'").await;
    let maker = an_account(&app, "Maker", "manufacturing").await;
    let shop = an_account(&app, "Shop", "retail").await;
    let mut proxy = deliverable("data cleansing", pb::Party::Vendor, pb::DeliverableStatus::Done, 4, &[]);
    proxy.nature = pb::Party::Customer as i32;
    proxy.proxy_reason = pb::ProxyReason::OneOffHump as i32;
    proxy.proxy_end_date = date(2020, 1, 31);
    proxy.approver = "cfo".into();
    let mut gp =
        checkpoint("gross profit", pb::Direction::HigherIsBetter, pb::CheckpointKind::GrossProfit, 1000.0, 2000.0);
    gp.unit = "JPY".into();
    let mut cost = checkpoint("cost", pb::Direction::LowerIsBetter, pb::CheckpointKind::Cost, 500.0, 300.0);
    cost.unit = "JPY".into();
    let revenue = checkpoint("revenue", pb::Direction::HigherIsBetter, pb::CheckpointKind::Revenue, 1.0, 2.0);
    let one = create(
        &mut p,
        pb::SuccessPlan {
            account_id: maker.id.clone(),
            display_name: "Lean line".into(),
            checkpoints: vec![gp, cost, revenue],
            deliverables: vec![
                deliverable("kaizen board", pb::Party::Customer, pb::DeliverableStatus::Done, 5, &[]),
                deliverable("shift handover", pb::Party::Customer, pb::DeliverableStatus::Done, 4, &[]),
                proxy,
                deliverable("training", pb::Party::Customer, pb::DeliverableStatus::InProgress, 0, &[]),
            ],
            investment: 400.0,
            currency: "JPY".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(close(one.self_run_ratio.unwrap(), 2.0 / 3.0));
    assert!(one.deliverables[2].approver_differs, "the approver is not the owner");
    assert!(!one.deliverables[2].proxy_overdue, "done: not overdue however old its end date");
    let two = create(
        &mut p,
        pb::SuccessPlan {
            account_id: shop.id.clone(),
            display_name: "Shop".into(),
            deliverables: vec![deliverable("pos rollout", pb::Party::Customer, pb::DeliverableStatus::Done, 3, &[])],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(two.self_run_ratio, Some(1.0));

    // ROI: gross profit +600 and cost −100 (revenue is not what the
    // customer keeps) = 700 against 400 invested → 0.75.
    let one = record(&mut p, &one, 0, 1600.0).await;
    let one = record(&mut p, &one, 1, 400.0).await;
    let one = record(&mut p, &one, 2, 9.0).await;
    let roi = review(&mut p, &one).await.roi.unwrap();
    assert_eq!((roi.benefit, roi.benefit_source.as_str(), roi.roi), (Some(700.0), "checkpoints", Some(0.75)));
    let one = p
        .update_success_plan(pb::UpdateSuccessPlanRequest {
            plan: Some(pb::SuccessPlan { id: one.id.clone(), benefit: Some(200.0), ..Default::default() }),
            update_mask: mask(&["benefit"]),
        })
        .await
        .unwrap()
        .into_inner();
    let roi = review(&mut p, &one).await.roi.unwrap();
    assert_eq!((roi.benefit, roi.benefit_source.as_str(), roi.roi), (Some(200.0), "entered", Some(-0.5)));

    let by_account = p
        .summarize_self_run(pb::SummarizeSelfRunRequest { group_by: pb::SelfRunGrouping::Account as i32 })
        .await
        .unwrap()
        .into_inner();
    let row = |rows: &[pb::SelfRunRow], key: &str| rows.iter().find(|r| r.key == key).cloned().unwrap();
    let m = row(&by_account.rows, &maker.id);
    assert_eq!((m.display_name.as_str(), m.plans, m.customer_done, m.done), ("Maker", 1, 2, 3));
    assert_eq!(row(&by_account.rows, &shop.id).self_run_ratio, Some(1.0));
    let total = by_account.total.unwrap();
    assert_eq!((total.plans, total.customer_done, total.done, total.self_run_ratio), (2, 3, 4, Some(0.75)));
    let by_segment = p
        .summarize_self_run(pb::SummarizeSelfRunRequest { group_by: pb::SelfRunGrouping::Segment as i32 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_segment.rows.len(), 1, "only the maker is in a segment");
    let s = &by_segment.rows[0];
    assert_eq!(
        (s.key.as_str(), s.display_name.as_str(), s.customer_done, s.done),
        (seg.as_str(), "Manufacturing", 2, 3)
    );
    let e = p.summarize_self_run(pb::SummarizeSelfRunRequest { group_by: 0 }).await.unwrap_err();
    assert_violation(&e, "group_by");
}

/// A met plan with `roi` for the customer, concluded.
async fn succeeded(p: &mut Plans, account: &str, model: &str, benefit: f64) -> pb::SuccessPlan {
    let plan = if model.is_empty() {
        create(
            p,
            pb::SuccessPlan {
                account_id: account.into(),
                display_name: "Ship faster".into(),
                problem: "orders ship late".into(),
                checkpoints: vec![checkpoint(
                    "on-time shipping",
                    pb::Direction::HigherIsBetter,
                    pb::CheckpointKind::Rate,
                    70.0,
                    90.0,
                )],
                deliverables: vec![deliverable(
                    "pick-path redesign",
                    pb::Party::Customer,
                    pb::DeliverableStatus::Done,
                    4,
                    &[true],
                )],
                investment: 100.0,
                benefit: Some(benefit),
                ..Default::default()
            },
        )
        .await
    } else {
        let plan = p
            .create_success_plan(pb::CreateSuccessPlanRequest {
                plan: Some(pb::SuccessPlan {
                    account_id: account.into(),
                    investment: 100.0,
                    benefit: Some(benefit),
                    ..Default::default()
                }),
                success_model_id: model.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        // The model's approach, with this customer's own agreed numbers.
        assert_eq!(plan.checkpoints[0].baseline, None, "each adopting customer agrees its own numbers");
        let mut d = plan.deliverables.clone();
        for x in &mut d {
            x.status = pb::DeliverableStatus::Done as i32;
            x.quality_rating = 5;
        }
        let mut cp = plan.checkpoints.clone();
        cp[0].baseline = Some(60.0);
        cp[0].target = Some(85.0);
        p.update_success_plan(pb::UpdateSuccessPlanRequest {
            plan: Some(pb::SuccessPlan { id: plan.id.clone(), deliverables: d, checkpoints: cp, ..Default::default() }),
            update_mask: mask(&["deliverables", "checkpoints"]),
        })
        .await
        .unwrap()
        .into_inner()
    };
    let plan = record(p, &plan, 0, 95.0).await;
    conclude(p, &plan, pb::DevelopDirection::AdvanceResult).await.unwrap()
}

/// Only a proven success with a positive ROI becomes a model; proposed to
/// the segment, it counts its proposals, adoptions, successes and
/// penetration.
#[tokio::test]
async fn a_success_model_spreads_to_its_segment_and_counts_adoption_and_penetration() {
    let app = spawn().await;
    let mut csm = plans(&app, TENANT, Role::Csm);
    let mut adm = plans(&app, TENANT, Role::Admin);
    let seg = segment(&app, "Logistics", "account.industry == 'logistics'").await;
    let origin = an_account(&app, "Origin", "logistics").await;
    let mut similar = Vec::new();
    for name in ["North", "South", "East"] {
        similar.push(an_account(&app, name, "logistics").await);
    }
    let _outside = an_account(&app, "Bakery", "food").await;

    let model_of = |plan: &pb::SuccessPlan| pb::CreateSuccessModelRequest {
        plan_id: plan.id.clone(),
        display_name: "Pick-path redesign".into(),
        segment_id: seg.clone(),
        request_id: String::new(),
    };
    // Not concluded, not met, not paid off: refused, each saying why.
    let open = create(
        &mut csm,
        pb::SuccessPlan { account_id: origin.id.clone(), display_name: "open".into(), ..Default::default() },
    )
    .await;
    let e = adm.create_success_model(model_of(&open)).await.unwrap_err();
    assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "PLAN_NOT_CONCLUDED"));
    let (missed, _) = reviewed(&mut csm, &origin.id, pb::Direction::HigherIsBetter, 1.0, 2.0, 1.5, 5).await;
    let missed = conclude(&mut csm, &missed, pb::DevelopDirection::Unspecified).await.unwrap();
    let e = adm.create_success_model(model_of(&missed)).await.unwrap_err();
    assert_eq!(reason(&e), "TARGET_NOT_MET");
    let unpaid = succeeded(&mut csm, &origin.id, "", 50.0).await;
    let e = adm.create_success_model(model_of(&unpaid)).await.unwrap_err();
    assert_eq!(reason(&e), "ROI_NOT_POSITIVE");
    assert!(e.message().contains("-0.500"), "{}", e.message());

    let proven = succeeded(&mut csm, &origin.id, "", 300.0).await;
    assert_eq!(proven.review.as_ref().unwrap().roi.as_ref().unwrap().roi, Some(2.0));
    let e = csm.create_success_model(model_of(&proven)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "models need admin");
    let m = adm.create_success_model(model_of(&proven)).await.unwrap().into_inner();
    assert_eq!((m.proposed, m.adopted, m.succeeded, m.segment_accounts), (0, 0, 0, 4));
    assert_eq!((m.adoption_rate, m.penetration), (None, Some(0.25)));
    assert_eq!(m.evidence.len(), 1);
    assert_eq!(m.evidence[0].roi, Some(2.0));
    assert_eq!(m.stock.len(), 1);
    assert_eq!(m.stock[0].successes, 1);
    assert_eq!(m.checkpoints[0].metric, "on-time shipping");
    assert!(m.checkpoints[0].readings.is_empty(), "the model keeps the agreement, not the readings");
    let e = adm.create_success_model(model_of(&proven)).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);

    // Proposed to the similar accounts: not its own, not the bakery.
    let propose =
        |dry_run| pb::ProposeSuccessModelRequest { id: m.id.clone(), dry_run, max_accounts: 0, due_in_days: 0 };
    let dry = adm.propose_success_model(propose(true)).await.unwrap().into_inner().proposals;
    let mut want: Vec<String> = similar.iter().map(|a| a.id.clone()).collect();
    want.sort();
    let mut got: Vec<String> = dry.iter().map(|x| x.account_id.clone()).collect();
    got.sort();
    assert_eq!(got, want);
    assert!(dry.iter().all(|x| x.cta_id.is_empty() && x.reason == "segment"));
    let made = adm.propose_success_model(propose(false)).await.unwrap().into_inner().proposals;
    assert_eq!(made.len(), 3);
    let mut c = admin(&app);
    let ctas = ctas_of(&mut c, &similar[0].id).await;
    assert_eq!(ctas.len(), 1);
    assert_eq!(
        (ctas[0].title.as_str(), ctas[0].owner_id.as_str()),
        ("Propose success model: Pick-path redesign", "ann")
    );
    assert!(
        adm.propose_success_model(propose(false)).await.unwrap().into_inner().proposals.is_empty(),
        "once per account"
    );

    // One adopts it and succeeds.
    let adopted = succeeded(&mut csm, &similar[0].id, &m.id, 500.0).await;
    assert_eq!(adopted.success_model_id, m.id);
    assert_eq!(adopted.template_id, m.template_id);
    assert_eq!(adopted.display_name, "Ship faster", "from the model's template");
    let m = adm.get_success_model(pb::GetSuccessModelRequest { id: m.id.clone() }).await.unwrap().into_inner();
    assert_eq!((m.proposed, m.adopted, m.succeeded, m.segment_accounts), (3, 1, 1, 4));
    assert!(close(m.adoption_rate.unwrap(), 1.0 / 3.0));
    assert_eq!(m.penetration, Some(0.5));
    assert_eq!(
        m.evidence.iter().map(|e| e.account_id.clone()).collect::<Vec<_>>(),
        vec![origin.id.clone(), similar[0].id.clone()]
    );
    assert_eq!(m.stock.last().unwrap().successes, 2);
    let listed = adm.list_success_models(pb::ListSuccessModelsRequest::default()).await.unwrap().into_inner().models;
    assert_eq!(listed.len(), 1);
    let by_model = csm
        .list_success_plans(pb::ListSuccessPlansRequest { success_model_id: m.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .plans;
    assert_eq!(by_model.len(), 1);

    // A playbook's audience chooses whom: its action proposes the model to
    // a newcomer, and refuses the model's own account.
    let west = an_account(&app, "West", "logistics").await;
    let offer = c
        .create_playbook(pb::CreatePlaybookRequest {
            playbook: Some(pb::Playbook {
                display_name: "Offer the pick-path model".into(),
                trigger: Some(pb::Trigger { kind: Some(pb::trigger::Kind::Manual(pb::ManualTrigger {})) }),
                actions: vec![
                    open_cta("welcome {{account.name}}", pb::CtaPriority::Low, &[]),
                    pb::Action {
                        touch_models: vec![],
                        kind: Some(pb::action::Kind::ProposeSuccessModel(pb::ProposeSuccessModelAction {
                            model_id: m.id.clone(),
                        })),
                    },
                ],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let offer = c
        .enable_playbook(pb::EnablePlaybookRequest { id: offer.id.clone(), version: 0, etag: offer.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    let run = c
        .run_playbook(pb::RunPlaybookRequest {
            id: offer.id.clone(),
            account_ids: vec![west.id.clone(), origin.id.clone()],
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    // Beside the playbook's own CTA: the proposal is a CTA of its own.
    let of = |a: &str| run.firings.iter().find(|f| f.account_id == a).unwrap().actions[1].clone();
    let to_west = of(&west.id);
    assert_eq!(to_west.status, pb::ActionStatus::Done as i32, "{}", to_west.detail);
    let west_ctas = ctas_of(&mut c, &west.id).await;
    assert_eq!(west_ctas.len(), 2);
    assert!(
        west_ctas.iter().any(|x| x.id == to_west.resource_id && x.title == "Propose success model: Pick-path redesign")
    );
    let to_origin = of(&origin.id);
    assert_eq!(to_origin.status, pb::ActionStatus::Skipped as i32);
    assert_eq!(to_origin.detail, "success model Pick-path redesign comes from this account's own plan");
    let m = adm.get_success_model(pb::GetSuccessModelRequest { id: m.id.clone() }).await.unwrap().into_inner();
    assert_eq!((m.proposed, m.segment_accounts), (4, 5));
}

/// Every bad field at once, NOT_FOUND across tenants, and what a list edit
/// may not do.
#[tokio::test]
async fn bad_input_is_refused_field_by_field_and_loses_nothing() {
    let app = spawn().await;
    let mut p = plans(&app, TENANT, Role::Csm);
    let a = an_account(&app, "Bad Input", "retail").await;
    let mut equal = checkpoint("equal", pb::Direction::HigherIsBetter, pb::CheckpointKind::Rate, 5.0, 5.0);
    equal.due_date = date(2030, 2, 30);
    let contrary = checkpoint("contrary", pb::Direction::LowerIsBetter, pb::CheckpointKind::Cost, 5.0, 9.0);
    let mut half = checkpoint("half", pb::Direction::HigherIsBetter, pb::CheckpointKind::Revenue, 5.0, 9.0);
    half.target = None;
    let mut nan = checkpoint("nan", pb::Direction::Unspecified, pb::CheckpointKind::Unspecified, f64::NAN, 1.0);
    nan.metric = String::new();
    let mut proxy = deliverable("cleansing", pb::Party::Vendor, pb::DeliverableStatus::Planned, 7, &[]);
    proxy.nature = pb::Party::Customer as i32;
    proxy.effect = -1;
    proxy.hours_spent = -2.0;
    let e = p
        .create_success_plan(pb::CreateSuccessPlanRequest {
            plan: Some(pb::SuccessPlan {
                account_id: a.id.clone(),
                display_name: "名".repeat(201),
                checkpoints: vec![equal, contrary, half, nan],
                deliverables: vec![proxy],
                stakeholders: vec![pb::Stakeholder { contact_id: "nope".into(), ..Default::default() }],
                currency: "yen".into(),
                investment: -1.0,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    for field in [
        "plan.display_name",
        "plan.checkpoints[0].target",
        "plan.checkpoints[0].due_date",
        "plan.checkpoints[1].target",
        "plan.checkpoints[2].target",
        "plan.checkpoints[3].metric",
        "plan.checkpoints[3].direction",
        "plan.checkpoints[3].kind",
        "plan.checkpoints[3].baseline",
        "plan.deliverables[0].proxy_reason",
        "plan.deliverables[0].proxy_end_date",
        "plan.deliverables[0].quality_rating",
        "plan.deliverables[0].effect",
        "plan.deliverables[0].hours_spent",
        "plan.stakeholders[0].contact_id",
        "plan.stakeholders[0].group",
        "plan.currency",
        "plan.investment",
    ] {
        assert_violation(&e, field);
    }
    let vs = violations(&e);
    let msg = |f: &str| vs.iter().find(|(x, _)| x == f).map(|(_, m)| m.clone()).unwrap();
    assert_eq!(msg("plan.checkpoints[0].target"), "target 5 must differ from baseline 5");
    assert_eq!(msg("plan.checkpoints[1].target"), "target 9 is above baseline 5, but the direction is lower is better");
    assert_eq!(msg("plan.display_name"), "must be at most 200 characters, got 201");

    // A stakeholder must be a contact of the account.
    let e = p
        .create_success_plan(pb::CreateSuccessPlanRequest {
            plan: Some(pb::SuccessPlan {
                account_id: a.id.clone(),
                display_name: "p".into(),
                stakeholders: vec![pb::Stakeholder {
                    contact_id: uuid::Uuid::now_v7().to_string(),
                    group: pb::StakeholderGroup::Executives as i32,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_violation(&e, "plan.stakeholders[0].contact_id");

    let plan = create(
        &mut p,
        pb::SuccessPlan {
            account_id: a.id.clone(),
            display_name: "Kept".into(),
            checkpoints: vec![checkpoint("kept", pb::Direction::HigherIsBetter, pb::CheckpointKind::Rate, 1.0, 2.0)],
            ..Default::default()
        },
    )
    .await;
    // A reading before the plan started, or not a number.
    for (value, time, field) in [
        (1.0, Some(pbjson_types::Timestamp { seconds: 946_684_800, nanos: 0 }), "reading.reading_time"),
        (f64::INFINITY, None, "reading.value"),
        (1.0, Some(pbjson_types::Timestamp { seconds: 4_102_444_800, nanos: 0 }), "reading.reading_time"),
    ] {
        let e = p
            .record_checkpoint_reading(pb::RecordCheckpointReadingRequest {
                plan_id: plan.id.clone(),
                checkpoint_id: plan.checkpoints[0].id.clone(),
                sub_metric_id: String::new(),
                reading: Some(pb::Reading { value, reading_time: time, ..Default::default() }),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert_violation(&e, field);
    }
    let e = p
        .record_checkpoint_reading(pb::RecordCheckpointReadingRequest {
            plan_id: plan.id.clone(),
            checkpoint_id: uuid::Uuid::now_v7().to_string(),
            sub_metric_id: String::new(),
            reading: Some(pb::Reading { value: 1.0, ..Default::default() }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let plan = record(&mut p, &plan, 0, 1.5).await;

    // A checkpoint with readings cannot go; an id the plan lacks is refused.
    let e = p
        .update_success_plan(pb::UpdateSuccessPlanRequest {
            plan: Some(pb::SuccessPlan { id: plan.id.clone(), checkpoints: vec![], ..Default::default() }),
            update_mask: mask(&["checkpoints"]),
        })
        .await
        .unwrap_err();
    assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "CHECKPOINT_HAS_READINGS"));
    let mut stranger = plan.checkpoints[0].clone();
    stranger.id = uuid::Uuid::now_v7().to_string();
    let e = p
        .update_success_plan(pb::UpdateSuccessPlanRequest {
            plan: Some(pb::SuccessPlan { id: plan.id.clone(), checkpoints: vec![stranger], ..Default::default() }),
            update_mask: mask(&["checkpoints"]),
        })
        .await
        .unwrap_err();
    assert_violation(&e, "plan.checkpoints[0].id");
    // Editing the checkpoint keeps its readings.
    let mut edited = plan.checkpoints[0].clone();
    edited.target = Some(3.0);
    edited.readings.clear();
    let plan = p
        .update_success_plan(pb::UpdateSuccessPlanRequest {
            plan: Some(pb::SuccessPlan {
                id: plan.id.clone(),
                etag: plan.etag.clone(),
                checkpoints: vec![edited],
                ..Default::default()
            }),
            update_mask: mask(&["checkpoints"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((plan.checkpoints[0].target, plan.checkpoints[0].readings.len()), (Some(3.0), 1));
    // A stale etag.
    let e = p
        .update_success_plan(pb::UpdateSuccessPlanRequest {
            plan: Some(pb::SuccessPlan {
                id: plan.id.clone(),
                etag: "v1".into(),
                display_name: "x".into(),
                ..Default::default()
            }),
            update_mask: mask(&["display_name"]),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);

    // Another tenant sees nothing.
    let mut other = plans(&app, "globex", Role::Admin);
    let e = other.get_success_plan(pb::GetSuccessPlanRequest { id: plan.id.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = other.get_result_review(pb::GetResultReviewRequest { plan_id: plan.id.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = other
        .create_success_plan(pb::CreateSuccessPlanRequest {
            plan: Some(pb::SuccessPlan {
                account_id: a.id.clone(),
                display_name: "theirs".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "the account is not the other tenant's");
    assert!(
        other.list_success_plans(pb::ListSuccessPlansRequest::default()).await.unwrap().into_inner().plans.is_empty()
    );
    // A viewer reads, never writes.
    let mut viewer = plans(&app, TENANT, Role::Viewer);
    viewer.get_success_plan(pb::GetSuccessPlanRequest { id: plan.id.clone() }).await.unwrap();
    let e = record_err(&mut viewer, &plan, 2.0).await;
    assert_eq!(e.code(), Code::PermissionDenied);
    // Nothing was lost along the way.
    let kept = p.get_success_plan(pb::GetSuccessPlanRequest { id: plan.id.clone() }).await.unwrap().into_inner();
    assert_eq!(kept.checkpoints[0].readings.len(), 1);
}

/// A playbook starts a plan from a template once per account; a concluded
/// review triggers a playbook within the same process.
#[tokio::test]
async fn a_playbook_starts_a_plan_once_and_a_concluded_review_triggers_a_playbook() {
    let app = spawn().await;
    let mut adm = plans(&app, TENANT, Role::Admin);
    let a = an_account(&app, "Templated", "retail").await;
    let mut agreed_later =
        checkpoint("weekly active users", pb::Direction::HigherIsBetter, pb::CheckpointKind::ProductUsage, 0.0, 1.0);
    agreed_later.baseline = None;
    agreed_later.target = None;
    let template = adm
        .create_success_plan_template(pb::CreateSuccessPlanTemplateRequest {
            template: Some(pb::SuccessPlanTemplate {
                display_name: "Onboarding success".into(),
                problem: "the team does not use the product yet".into(),
                objectives: vec!["every team works in it weekly".into()],
                checkpoints: vec![agreed_later],
                deliverables: vec![deliverable(
                    "kick-off",
                    pb::Party::Vendor,
                    pb::DeliverableStatus::Done,
                    5,
                    &[true, true],
                )],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        template.deliverables[0].status,
        pb::DeliverableStatus::Planned as i32,
        "a template starts nothing done"
    );

    let mut c = admin(&app);
    let starter = c
        .create_playbook(pb::CreatePlaybookRequest {
            playbook: Some(pb::Playbook {
                display_name: "Start onboarding".into(),
                trigger: Some(pb::Trigger { kind: Some(pb::trigger::Kind::Manual(pb::ManualTrigger {})) }),
                actions: vec![pb::Action {
                    touch_models: vec![],
                    kind: Some(pb::action::Kind::StartSuccessPlan(pb::StartSuccessPlanAction {
                        template_id: template.id.clone(),
                    })),
                }],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let starter = c
        .enable_playbook(pb::EnablePlaybookRequest { id: starter.id.clone(), version: 0, etag: starter.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    let run = |c: &mut Client| {
        let mut c = c.clone();
        let (id, account) = (starter.id.clone(), a.id.clone());
        async move {
            c.run_playbook(pb::RunPlaybookRequest { id, account_ids: vec![account], request_id: String::new() })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let first = run(&mut c).await;
    let outcome = &first.firings[0].actions[0];
    assert_eq!(outcome.kind, "start_success_plan");
    assert_eq!(outcome.status, pb::ActionStatus::Done as i32);
    assert!(outcome.detail.starts_with("started success plan"), "{}", outcome.detail);
    let listed = adm
        .list_success_plans(pb::ListSuccessPlansRequest { account_id: a.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .plans;
    assert_eq!(listed.len(), 1);
    let plan = &listed[0];
    assert_eq!((plan.template_id.as_str(), plan.playbook_id.as_str()), (template.id.as_str(), starter.id.as_str()));
    assert_eq!(plan.display_name, "Onboarding success");
    assert_eq!(plan.objectives, vec!["every team works in it weekly".to_string()]);
    assert_eq!(plan.checkpoints[0].baseline, None, "agreed in stage 3");
    assert_eq!(plan.deliverables[0].tasks.len(), 2);
    assert_eq!(plan.stage, pb::PlanStage::TrustAndStructure as i32);
    assert_eq!(outcome.resource_id, plan.id);
    // Again: the account keeps its active plan (a later day's firing).
    let again = run(&mut c).await;
    let detail = &again.firings[0].actions[0].detail;
    assert!(detail.starts_with("already has active success plan"), "{detail}");
    let e = adm
        .create_success_plan(pb::CreateSuccessPlanRequest {
            plan: Some(pb::SuccessPlan { account_id: a.id.clone(), ..Default::default() }),
            template_id: template.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);

    // A review concluded "raise execution" opens a CTA for the owner.
    let mut p = red_playbook("Raise execution");
    p.trigger = Some(pb::Trigger {
        kind: Some(pb::trigger::Kind::Event(pb::EventTrigger {
            event_type: "review_concluded".into(),
            ..Default::default()
        })),
    });
    p.condition = "event.data.conclusion == 'REVIEW_CONCLUSION_RAISE_EXECUTION'".into();
    p.actions = vec![open_cta("raise execution at {{account.name}}", pb::CtaPriority::Medium, &[])];
    create_enabled(&mut c, p).await;
    let mut csm = plans(&app, TENANT, Role::Csm);
    let (plan, r) = reviewed(&mut csm, &a.id, pb::Direction::HigherIsBetter, 100.0, 200.0, 150.0, 3).await;
    assert_eq!(r.conclusion, pb::ReviewConclusion::RaiseExecution as i32);
    conclude(&mut csm, &plan, pb::DevelopDirection::Unspecified).await.unwrap();
    let ctas = until("the review's playbook fires", || {
        let mut c = c.clone();
        let id = a.id.clone();
        async move {
            let ctas = ctas_of(&mut c, &id).await;
            ctas.iter().any(|x| x.title == "raise execution at Templated").then_some(ctas)
        }
    })
    .await;
    assert!(ctas.iter().any(|x| x.owner_id == "ann"));
}

/// Publishes a score whose measures are `usage`, and waits until the
/// projection holds it.
async fn used(app: &TestApp, account: &str, usage: &[(&str, f64)]) {
    use banso_proto::health as hpb;
    let payload = Payload::HealthScoreChanged(ev::HealthScoreChanged {
        account_id: account.into(),
        new_score: 70.0,
        new_band: hpb::Band::Green as i32,
        scorecard_id: uuid::Uuid::now_v7().to_string(),
        scorecard_version: 1,
        measures: usage
            .iter()
            .map(|(m, v)| ev::MeasureReading { measure: m.to_string(), value: Some(*v), ..Default::default() })
            .collect(),
        ..Default::default()
    });
    publish(app, TENANT, "health", payload).await;
    let c = admin(app);
    until("the score reaches the projection", || {
        let mut c = c.clone();
        let account = account.to_string();
        async move {
            let r = c
                .test_condition(pb::TestConditionRequest {
                    condition: "health.score == 70.0".into(),
                    account_id: account,
                    event_id: String::new(),
                })
                .await
                .ok()?
                .into_inner();
            r.result.then_some(())
        }
    })
    .await;
}

/// A model with neither segment nor theme finds the accounts used like its
/// first plan's account was when it succeeded: within a factor of two on
/// average, closest first.
#[tokio::test]
async fn a_success_model_finds_accounts_of_similar_usage() {
    let app = spawn().await;
    let mut csm = plans(&app, TENANT, Role::Csm);
    let mut adm = plans(&app, TENANT, Role::Admin);
    let origin = an_account(&app, "Origin", "a").await;
    let close = an_account(&app, "Close", "b").await;
    let closer = an_account(&app, "Closer", "c").await;
    let far = an_account(&app, "Far", "d").await;
    let idle = an_account(&app, "Idle", "e").await;
    used(&app, &origin.id, &[("events_30d:login", 120.0), ("feature_breadth_30d", 6.0)]).await;
    used(&app, &close.id, &[("events_30d:login", 80.0), ("feature_breadth_30d", 4.0)]).await;
    used(&app, &closer.id, &[("events_30d:login", 110.0), ("feature_breadth_30d", 6.0)]).await;
    used(&app, &far.id, &[("events_30d:login", 3.0), ("feature_breadth_30d", 1.0)]).await;
    let proven = succeeded(&mut csm, &origin.id, "", 300.0).await;
    let m = adm
        .create_success_model(pb::CreateSuccessModelRequest {
            plan_id: proven.id.clone(),
            display_name: "Usage-led".into(),
            segment_id: String::new(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.usage_profile.get("events_30d:login"), Some(&120.0));
    let dry = adm
        .propose_success_model(pb::ProposeSuccessModelRequest {
            id: m.id.clone(),
            dry_run: true,
            max_accounts: 0,
            due_in_days: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .proposals;
    let got: Vec<(String, String)> = dry.iter().map(|p| (p.account_id.clone(), p.reason.clone())).collect();
    assert_eq!(got, vec![(closer.id.clone(), "usage".to_string()), (close.id.clone(), "usage".to_string())]);
    let _ = (far, idle);
}
