//! The schedule with several replicas, after a crash and after downtime —
//! driven round by round on one database, as replicas would.

use chrono::{Duration, NaiveTime, Utc};

use crate::{
    app::{App, CreatePlaybook},
    domain::{
        cta::{CtaType, Priority},
        playbook::{Action, ActionKind, Audience, Definition, OpenCta, OwnerRule, Routing, ScheduleTrigger, Trigger},
    },
    store,
    testing::{admin, app, seed_account},
};

const TENANT: &str = "acme";

fn renewal_playbook() -> Definition {
    Definition {
        display_name: "Renewal in 90 days".into(),
        description: String::new(),
        trigger: Trigger::Schedule(ScheduleTrigger::RenewalWithinDays(90)),
        audience: Audience::default(),
        condition: String::new(),
        actions: vec![Action {
            touch_models: vec![],
            kind: ActionKind::OpenCta(OpenCta {
                cta_type: CtaType::Lifecycle,
                priority: Priority::Medium,
                title: "renewal of {{account.name}}".into(),
                description: String::new(),
                owner: OwnerRule::AccountOwner,
                due_in_days: 7,
                tasks: vec![],
            }),
        }],
        cooldown_secs: 0,
        enrolment_limit: None,
        priority: 0,
        routing: Routing::Dominant,
    }
}

/// A tenant with `n` accounts renewing in 30 days, one far off, and a live
/// renewal playbook; the schedule time is midnight UTC.
async fn tenant(app: &App, n: usize) {
    let today = Utc::now().date_naive();
    for i in 0..n {
        seed_account(app, TENANT, &format!("a{i}"), Some(today + Duration::days(30))).await;
    }
    seed_account(app, TENANT, "far", Some(today + Duration::days(300))).await;
    let caller = admin(TENANT);
    let p = app
        .create_playbook(&caller, CreatePlaybook { request_id: None, definition: renewal_playbook() })
        .await
        .unwrap();
    app.enable_playbook(&caller, p.id, 0, None).await.unwrap();
    let s = store::tenants::get(app.db.conn(), TENANT).await.unwrap();
    let next = store::tenants::Settings { schedule_time: "00:00".into(), ..s.clone() };
    assert!(store::tenants::update(app.db.conn(), TENANT, &s, &next).await.unwrap());
}

async fn firings(app: &App) -> usize {
    store::firings::list(app.db.conn(), TENANT, None, None, None, 10_000).await.unwrap().len()
}

#[tokio::test]
async fn two_replicas_run_a_tenants_day_once() {
    let db = banso_testkit::fresh_database().await.unwrap();
    let (a, b) = (app(&db).await, app(&db).await);
    tenant(&a, 40).await;
    let now = Utc::now().date_naive().and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap()).and_utc();
    let (ra, rb) = tokio::join!(a.schedule_round("replica-a", now), b.schedule_round("replica-b", now));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.len() + rb.len(), 1, "exactly one replica ran the day: {ra:?} {rb:?}");
    assert_eq!(firings(&a).await, 40);
    // The day is done: later rounds that day run nothing.
    assert!(b.schedule_round("replica-b", now + Duration::hours(1)).await.unwrap().is_empty());
    assert_eq!(firings(&a).await, 40);
    let ctas = store::ctas::list(
        a.db.conn(),
        TENANT,
        &Default::default(),
        store::ctas::CtaOrder::CreateTime { desc: false },
        None,
        1000,
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(ctas.len(), 40);
}

#[tokio::test]
async fn a_crashed_replicas_day_is_taken_over_after_its_lease_and_nothing_fires_twice() {
    let db = banso_testkit::fresh_database().await.unwrap();
    let (a, b) = (app(&db).await, app(&db).await);
    tenant(&a, 10).await;
    // The day B will run after A's lease: A must have fired that same day,
    // which `now`'s date is not within minutes of midnight.
    let now = Utc::now();
    let later = now + Duration::minutes(6);
    let today = later.date_naive();
    // Replica A takes the lease, fires everything, and dies before marking the day done.
    assert!(
        store::tenants::claim_schedule(a.db.conn(), TENANT, today, "replica-a", now, now + Duration::minutes(5))
            .await
            .unwrap()
    );
    assert_eq!(a.run_schedule(TENANT, today, "replica-a").await.unwrap(), 10);
    // While A's lease holds, B leaves the tenant alone.
    assert!(b.schedule_round("replica-b", now).await.unwrap().is_empty());
    // After it, B runs the day again: the firings exist already, none repeats.
    assert_eq!(b.schedule_round("replica-b", later).await.unwrap(), vec![TENANT.to_string()]);
    assert_eq!(firings(&a).await, 10);
    assert_eq!(store::tenants::get(a.db.conn(), TENANT).await.unwrap().last_schedule_day, Some(later.date_naive()));
}

#[tokio::test]
async fn a_day_missed_while_down_is_caught_up_once_at_start() {
    let db = banso_testkit::fresh_database().await.unwrap();
    let a = app(&db).await;
    tenant(&a, 3).await;
    // The last run was three days ago; the process was down since.
    let s = store::tenants::get(a.db.conn(), TENANT).await.unwrap();
    let three_days_ago = Utc::now().date_naive() - Duration::days(3);
    let t = a.db.conn();
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    store::entities::tenant::Entity::update_many()
        .col_expr(store::entities::tenant::Column::LastScheduleDay, Expr::value(three_days_ago))
        .filter(store::entities::tenant::Column::TenantId.eq(TENANT))
        .exec(t)
        .await
        .unwrap();
    drop(s);
    // Restarted: the first round runs today's schedule, once.
    let restarted = app(&db).await;
    let now = Utc::now();
    assert_eq!(restarted.schedule_round("replica-new", now).await.unwrap().len(), 1);
    assert!(restarted.schedule_round("replica-new", now).await.unwrap().is_empty());
    assert_eq!(firings(&a).await, 3);
}

#[tokio::test]
async fn the_sql_prefilter_never_drops_an_account_the_exact_rule_selects() {
    use crate::domain::engine::scheduled;
    let db = banso_testkit::fresh_database().await.unwrap();
    let a = app(&db).await;
    let tz: chrono_tz::Tz = "Asia/Tokyo".parse().unwrap();
    let today = Utc::now().with_timezone(&tz).date_naive();
    let conn = a.db.conn();
    // Accounts at every distance around the boundaries.
    for d in -3i64..=40 {
        let id = seed_account(&a, TENANT, &format!("d{d}"), Some(today + Duration::days(d))).await;
        let m = store::entities::account::ActiveModel {
            account_id: sea_orm::ActiveValue::Set(id),
            last_usage_day: sea_orm::ActiveValue::Set((d % 3 != 0).then(|| today - Duration::days(d))),
            stage_since: sea_orm::ActiveValue::Set(Utc::now() - Duration::hours(d * 24 + 5)),
            create_time: sea_orm::ActiveValue::Set(Utc::now() - Duration::hours(d * 24 + 7)),
            ..Default::default()
        };
        use sea_orm::EntityTrait;
        store::entities::account::Entity::update(m).exec(conn).await.unwrap();
    }
    let all = store::projection::page(conn, TENANT, None, 1000).await.unwrap();
    for c in [
        ScheduleTrigger::RenewalWithinDays(10),
        ScheduleTrigger::NoUsageForDays(7),
        ScheduleTrigger::DaysInStage(14),
        ScheduleTrigger::DaysInStage(1),
    ] {
        let exact: Vec<_> = all
            .iter()
            .filter(|p| scheduled(c, &p.calendar(tz, &Default::default()), today))
            .map(|p| p.account.id)
            .collect();
        let pre = store::projection::scheduled_page(conn, TENANT, &[c], today, tz, None, 1000).await.unwrap();
        let pre_exact: Vec<_> = pre
            .iter()
            .filter(|p| scheduled(c, &p.calendar(tz, &Default::default()), today))
            .map(|p| p.account.id)
            .collect();
        assert_eq!(pre_exact, exact, "{c:?}");
        assert!(
            !exact.is_empty() && pre.len() < all.len(),
            "{c:?}: the prefilter narrows ({} of {})",
            pre.len(),
            all.len()
        );
    }
}

/// Queued account changes: of two replicas claiming at once each change
/// goes to one; a held lease keeps it from the other until it expires; a
/// finished change is pruned after the retention, a pending one never.
#[tokio::test]
async fn account_changes_are_claimed_once_and_pruned_when_finished() {
    use crate::{
        domain::playbook::{ChangeStatus, UpdateAccount},
        store::account_changes::{self as changes, AccountChange, Attempted},
    };
    let db = banso_testkit::fresh_database().await.unwrap();
    let app = app(&db).await;
    let conn = app.db.conn();
    let now = Utc::now();
    let change = |i: u32| AccountChange {
        id: uuid::Uuid::now_v7(),
        firing_id: uuid::Uuid::now_v7(),
        action_index: i,
        playbook_id: uuid::Uuid::now_v7(),
        account_id: uuid::Uuid::now_v7(),
        change: UpdateAccount { add_tags: vec![format!("t{i}")], ..Default::default() },
        status: ChangeStatus::Pending,
        attempts: 0,
        detail: String::new(),
        create_time: now,
    };
    for i in 0..10 {
        changes::insert(conn, TENANT, &change(i)).await.unwrap();
    }
    let until = now + Duration::seconds(60);
    let (a, b) = tokio::join!(
        changes::claim_due(conn, "replica-a", now, until, 10),
        changes::claim_due(conn, "replica-b", now, until, 10)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 10, "each change claimed once");
    let mut ids: Vec<_> = a.iter().chain(&b).map(|(_, c)| c.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10);
    // Held: nobody else gets them until the lease runs out.
    assert!(changes::claim_due(conn, "replica-c", now, until, 10).await.unwrap().is_empty());
    let later = until + Duration::seconds(1);
    let retaken = changes::claim_due(conn, "replica-c", later, later + Duration::seconds(60), 10).await.unwrap();
    assert_eq!(retaken.len(), 10, "an expired lease is taken over");
    // The old holder can no longer write its outcome.
    let (_, first) = &retaken[0];
    let done = Attempted { status: ChangeStatus::Applied, attempts: 1, next_attempt_time: None, detail: "applied" };
    assert!(!changes::finish(conn, TENANT, first.id, "replica-a", &done, later).await.unwrap());
    assert!(changes::finish(conn, TENANT, first.id, "replica-c", &done, later).await.unwrap());
    // Pruning takes the finished one, never a pending one.
    assert_eq!(changes::prune(conn, later + Duration::days(31), 100).await.unwrap(), 1);
    assert_eq!(changes::prune(conn, later + Duration::days(31), 100).await.unwrap(), 0);
}

/// The plan schedule triggers select accounts by their active plans (the
/// kept columns pushed down to SQL, then checked again): a checkpoint due
/// without a reading, one off track, proxy work past its end, a stalled stage.
#[tokio::test]
async fn plan_schedules_select_accounts_by_their_active_plans() {
    use crate::{
        app::plans::CreatePlan,
        domain::plan::{
            Agreed, Body, Checkpoint, CheckpointKind, Deliverable, DeliverableStatus, Direction, Party, Proxy,
            ProxyReason,
        },
    };
    let db = banso_testkit::fresh_database().await.unwrap();
    let app = app(&db).await;
    let caller = admin(TENANT);
    let today = Utc::now().date_naive();
    let checkpoint = |due: chrono::NaiveDate| Checkpoint {
        id: uuid::Uuid::nil(),
        metric: "usage".into(),
        unit: String::new(),
        direction: Direction::HigherIsBetter,
        kind: CheckpointKind::ProductUsage,
        agreed: Some(Agreed { baseline: 0.0, target: 100.0 }),
        due_date: Some(due),
        assumption: String::new(),
        sub_metrics: vec![],
        readings: vec![],
    };
    let body = |checkpoints, deliverables| Body {
        display_name: "plan".into(),
        problem: String::new(),
        theme_id: None,
        objectives: vec![],
        stakeholders: vec![],
        checkpoints,
        deliverables,
        investment: 0.0,
        benefit: None,
        currency: String::new(),
    };
    let plan = async |account, b| {
        let cmd = CreatePlan {
            request_id: None,
            account_id: account,
            body: b,
            stage: None,
            template_id: None,
            model_id: None,
            follows_plan_id: None,
        };
        app.create_plan(&caller, cmd).await.unwrap()
    };
    let overdue = seed_account(&app, TENANT, "overdue", None).await;
    plan(overdue, body(vec![checkpoint(today - Duration::days(3))], vec![])).await;
    let proxy = seed_account(&app, TENANT, "proxy", None).await;
    let work = Deliverable {
        id: uuid::Uuid::nil(),
        title: "cleansing".into(),
        responsible: Party::Vendor,
        nature: Party::Customer,
        owner: String::new(),
        approver: String::new(),
        status: DeliverableStatus::InProgress,
        proxy: Some(Proxy { reason: ProxyReason::OneOffHump, end_date: today - Duration::days(1) }),
        quality_rating: None,
        quality_note: String::new(),
        hours_spent: 0.0,
        effect: None,
        tasks: vec![],
    };
    plan(proxy, body(vec![], vec![work])).await;
    let behind = seed_account(&app, TENANT, "behind", None).await;
    let p = plan(behind, body(vec![checkpoint(today)], vec![])).await;
    let reading = crate::app::plans::RecordReading {
        plan_id: p.id,
        checkpoint_id: p.body.checkpoints[0].id,
        sub_metric_id: None,
        value: 30.0,
        reading_time: None,
        note: String::new(),
    };
    app.record_reading(&caller, reading).await.unwrap();
    seed_account(&app, TENANT, "no plan", None).await;

    let schedule = |s: ScheduleTrigger| Definition { trigger: Trigger::Schedule(s), ..renewal_playbook() };
    for s in [
        ScheduleTrigger::CheckpointOverdueDays(2),
        ScheduleTrigger::CheckpointOverdueDays(4),
        ScheduleTrigger::CheckpointOffTrack,
        ScheduleTrigger::ProxyWorkOverdue,
        ScheduleTrigger::PlanStalledDays(2),
    ] {
        let p =
            app.create_playbook(&caller, CreatePlaybook { request_id: None, definition: schedule(s) }).await.unwrap();
        app.enable_playbook(&caller, p.id, 0, None).await.unwrap();
    }
    // Today: overdue (3 ≥ 2, not ≥ 4), behind, proxy; nothing stalled yet.
    assert_eq!(app.schedule_pass(TENANT, today, None, false).await.unwrap().0, 3);
    // Two days on: the same three, overdue by 5 ≥ 4 days too, and every
    // account with an active plan stalled.
    assert_eq!(app.schedule_pass(TENANT, today + Duration::days(2), None, false).await.unwrap().0, 7);
    // Fired for real, the overdue account gets its CTA.
    let (_, fired) = app.schedule_pass(TENANT, today, None, true).await.unwrap();
    assert_eq!(fired, 3);
}
