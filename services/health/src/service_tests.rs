//! The running service where a test must set up what the API cannot make:
//! history of days past, a batch another replica stored, raw events past
//! their retention. Health runs alone; its projection is seeded through the
//! store, as the Accounts consumer writes it. (Everything the API can show
//! is tested through it, with Accounts beside Health, in `tests/`.)

use std::time::Duration;

use banso_proto::health as pb;
use banso_testkit::{TestRole as Role, eventually};
use chrono::Utc;

use crate::{
    domain::score::Band,
    store,
    testing::{Client, client, seed_account, seed_churn_history, service},
};

const WAIT: Duration = Duration::from_secs(30);

fn linear(min: f64, max: f64) -> Option<pb::Normalisation> {
    Some(pb::Normalisation { kind: Some(pb::normalisation::Kind::Linear(pb::normalisation::Linear { min, max })) })
}

async fn create_scorecard(c: &Client, measure: &str, normalisation: Option<pb::Normalisation>) {
    let card = pb::Scorecard {
        name: measure.into(),
        measures: vec![pb::WeightedMeasure {
            measure: measure.into(),
            weight: 1.0,
            normalisation,
            ..Default::default()
        }],
        ..Default::default()
    };
    c.clone()
        .create_scorecard(pb::CreateScorecardRequest { scorecard: Some(card), request_id: String::new() })
        .await
        .unwrap();
}

async fn health_until(c: &Client, account: uuid::Uuid, ok: impl Fn(&pb::AccountHealth) -> bool) -> pb::AccountHealth {
    let ok = &ok;
    eventually(&format!("account {account} to reach the expected health"), WAIT, || async move {
        let r = c.clone().get_account_health(pb::GetAccountHealthRequest { account_id: account.to_string() }).await;
        r.ok().map(|r| r.into_inner()).filter(|h| ok(h))
    })
    .await
}

async fn recompute(c: &Client) -> pb::RecomputeJob {
    let job = c.clone().start_recompute(pb::StartRecomputeRequest::default()).await.unwrap().into_inner();
    eventually("the recompute to finish", WAIT, || async {
        let j = c.clone().get_recompute_job(pb::GetRecomputeJobRequest { id: job.id.clone() }).await.unwrap();
        let j = j.into_inner();
        (j.state == pb::recompute_job::State::Succeeded as i32).then_some(j)
    })
    .await
}

fn login(id: &str, account: uuid::Uuid) -> pb::UsageEvent {
    pb::UsageEvent {
        event_id: id.into(),
        account_id: account.to_string(),
        user_id: "u".into(),
        event_name: "login".into(),
        timestamp: Some(banso_kit::wire::timestamp(Utc::now() - chrono::Duration::seconds(30))),
        ..Default::default()
    }
}

async fn set_nps(c: &Client, account: uuid::Uuid, nps: f64) {
    let r = pb::SetMeasureValueRequest {
        account_id: account.to_string(),
        measure: "nps".into(),
        value: Some(nps),
        observe_time: None,
    };
    c.clone().set_measure_value(r).await.unwrap();
}

#[tokio::test]
async fn trends_compare_with_the_score_of_a_week_ago_and_order_the_list() {
    let (app, conn) = service().await;
    let admin = client(&app, "acme", Role::Admin);
    create_scorecard(&admin, "external:nps", linear(0.0, 100.0)).await;
    let a = seed_account(&conn, "acme", "Falling").await;
    let b = seed_account(&conn, "acme", "Rising").await;
    set_nps(&admin, a, 30.0).await;
    set_nps(&admin, b, 50.0).await;
    health_until(&admin, a, |h| h.score == 30.0).await;
    health_until(&admin, b, |h| h.score == 50.0).await;
    // Eight days ago A was 70 and B 20: A fell 40, B rose 30.
    let week_ago = Utc::now().date_naive() - chrono::Duration::days(8);
    store::history::record_past_daily(&conn, "acme", a, week_ago, 70.0, Band::Green).await.unwrap();
    store::history::record_past_daily(&conn, "acme", b, week_ago, 20.0, Band::Red).await.unwrap();
    recompute(&admin).await;
    let ha = health_until(&admin, a, |h| h.change_7d.is_some()).await;
    assert_eq!((ha.change_7d, ha.change_30d), (Some(-40.0), None));
    let hb = health_until(&admin, b, |h| h.change_7d.is_some()).await;
    assert_eq!(hb.change_7d, Some(30.0));
    use pb::AccountHealthOrder as O;
    let order = |o: O| {
        let mut c = admin.clone();
        async move {
            let r = c.list_account_health(pb::ListAccountHealthRequest { order_by: o as i32, ..Default::default() });
            r.await.unwrap().into_inner().accounts.into_iter().map(|h| h.account_id).collect::<Vec<_>>()
        }
    };
    let (a, b) = (a.to_string(), b.to_string());
    assert_eq!(order(O::Change7dAsc).await, [a.clone(), b.clone()]);
    assert_eq!(order(O::Change7dDesc).await, [b.clone(), a.clone()]);
    // Without a 30-day trend both sort last, by id.
    assert_eq!(order(O::Change30dAsc).await, [a.clone(), b.clone()]);
    // The history starts with the old snapshot.
    let first = admin
        .clone()
        .get_health_history(pb::GetHealthHistoryRequest { account_id: a, page_size: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.points.iter().map(|p| p.score).collect::<Vec<_>>(), [70.0]);
    assert!(!first.next_page_token.is_empty());
}

#[tokio::test]
async fn a_batch_nobody_announced_is_rolled_up_by_the_running_service() {
    // A batch stored without waking this replica's rollup task: one that
    // another replica acknowledged just before it stopped, say. The task
    // looks for pending batches on its own and folds it.
    let (app, conn) = service().await;
    let admin = client(&app, "acme", Role::Admin);
    let a = seed_account(&conn, "acme", "A").await;
    let now = Utc::now() - chrono::Duration::minutes(1);
    let stored_elsewhere = store::ingest::AcceptedEvent {
        event_id: "from-elsewhere".into(),
        account_id: a,
        user_key: "u1".into(),
        event_name: "login".into(),
        occur_time: now,
        day: now.date_naive(),
        quantity: 1.0,
        duration_secs: None,
        properties: serde_json::json!({}),
    };
    let other_replica = store::ingest::Ingest::default();
    assert_eq!(other_replica.store(&conn, "acme", &[stored_elsewhere]).await.unwrap().len(), 1);
    eventually("the running service to roll the batch up", WAIT, || async {
        (store::ingest::pending(&conn).await.unwrap() == (0, 0)).then_some(())
    })
    .await;
    create_scorecard(&admin, "events_7d:login", linear(0.0, 10.0)).await;
    let h = health_until(&admin, a, |h| h.score > 0.0).await;
    assert_eq!(h.contributions[0].raw, Some(1.0));
    // And the service counts the same id as a duplicate from then on.
    let r = client(&app, "acme", Role::Service)
        .batch_ingest_usage(pb::BatchIngestUsageRequest { events: vec![login("from-elsewhere", a)] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.accepted, r.duplicates, r.rejected), (0, 1, 0));
}

#[tokio::test]
async fn raw_events_are_pruned_past_retention_and_rollups_stay() {
    let (app, conn) = service().await;
    let admin = client(&app, "acme", Role::Admin);
    create_scorecard(&admin, "events_7d:login", linear(0.0, 10.0)).await;
    let id = seed_account(&conn, "acme", "Pruned").await;
    let events: Vec<pb::UsageEvent> = (0..5).map(|i| login(&format!("p{i}"), id)).collect();
    client(&app, "acme", Role::Service).batch_ingest_usage(pb::BatchIngestUsageRequest { events }).await.unwrap();
    health_until(&admin, id, |h| h.contributions[0].raw == Some(5.0)).await;

    // Nothing is older than a day…
    let day_ago = Utc::now() - chrono::Duration::days(1);
    assert_eq!(store::ingest::prune_raw_events(&conn, day_ago, 100).await.unwrap(), 0);
    // …and everything is older than a minute from now: deleted in batches of 2.
    let cutoff = Utc::now() + chrono::Duration::minutes(1);
    let mut batches = Vec::new();
    loop {
        let n = store::ingest::prune_raw_events(&conn, cutoff, 2).await.unwrap();
        if n == 0 {
            break;
        }
        batches.push(n);
    }
    assert_eq!(batches, [2, 2, 1]);
    // The rollups keep the counts: a recompute still sees 5 logins.
    let done = recompute(&admin).await;
    assert_eq!((done.accounts_scored, done.scores_changed), (1, 0));
    let h = health_until(&admin, id, |h| h.contributions[0].raw.is_some()).await;
    assert_eq!(h.contributions[0].raw, Some(5.0));
}

/// Every event the service publishes, in the order the bus delivers them.
struct Published(std::sync::Mutex<Vec<banso_events::Envelope>>);

#[async_trait::async_trait]
impl banso_events::Handler for Published {
    async fn handle(&self, env: &banso_events::Envelope) -> Result<(), banso_events::HandlerError> {
        self.0.lock().unwrap().push(env.clone());
        Ok(())
    }
}

impl Published {
    /// A consumer of everything health publishes, on the test app's bus.
    fn subscribe(app: &banso_testkit::TestApp) -> std::sync::Arc<Published> {
        let published = std::sync::Arc::new(Published(Default::default()));
        banso_events::bus::supervise_consumer(
            &app.runtime.supervisor,
            "test",
            app.runtime.bus.clone(),
            "test-published",
            vec![banso_events::envelope::all_of(crate::NAME)],
            published.clone(),
            Default::default(),
            &banso_events::partition::Partitions::all(app.runtime.bus.partitions()),
        );
        published
    }

    fn score_changes(&self) -> Vec<banso_proto::events::HealthScoreChanged> {
        let seen = self.0.lock().unwrap();
        seen.iter()
            .filter_map(|e| match &e.payload {
                Some(banso_events::Payload::HealthScoreChanged(c)) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    /// (account, day) of each UsageSeen, in order.
    fn usage_seen(&self) -> Vec<(String, chrono::NaiveDate)> {
        let seen = self.0.lock().unwrap();
        seen.iter()
            .filter_map(|e| match &e.payload {
                Some(banso_events::Payload::UsageSeen(u)) => {
                    let d = u.day.as_ref()?;
                    Some((u.account_id.clone(), chrono::NaiveDate::from_ymd_opt(d.year, d.month as u32, d.day as u32)?))
                }
                _ => None,
            })
            .collect()
    }
}

fn usage_at(id: &str, account: uuid::Uuid, time: chrono::DateTime<Utc>) -> pb::UsageEvent {
    pb::UsageEvent { timestamp: Some(banso_kit::wire::timestamp(time)), ..login(id, account) }
}

/// HealthScoreChanged carries what playbook conditions read: the trends, and
/// per measure the value that scored, the previous window's value, points
/// and weight.
#[tokio::test]
async fn score_changes_carry_trends_and_each_measures_value_and_previous_window() {
    let (app, conn) = service().await;
    let published = Published::subscribe(&app);
    let admin = client(&app, "acme", Role::Admin);
    // Logins over 3 days (weight 3, 0..10 logins → 0..100) and NPS (weight 1,
    // never set: skipped).
    let card = pb::Scorecard {
        name: "usage".into(),
        measures: vec![
            pb::WeightedMeasure {
                measure: "events_3d:login".into(),
                weight: 3.0,
                normalisation: linear(0.0, 10.0),
                ..Default::default()
            },
            pb::WeightedMeasure {
                measure: "external:nps".into(),
                weight: 1.0,
                normalisation: linear(0.0, 100.0),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    admin
        .clone()
        .create_scorecard(pb::CreateScorecardRequest { scorecard: Some(card), request_id: String::new() })
        .await
        .unwrap();
    let a = seed_account(&conn, "acme", "Dropping").await;
    // Eight days ago it scored 70, thirty-one days ago 90.
    let today = Utc::now().date_naive();
    store::history::record_past_daily(&conn, "acme", a, today - chrono::Days::new(8), 70.0, Band::Green).await.unwrap();
    store::history::record_past_daily(&conn, "acme", a, today - chrono::Days::new(31), 90.0, Band::Green)
        .await
        .unwrap();
    // 8 logins four days ago (the previous 3-day window, days 3 to 5 back)
    // and 2 today, in one batch.
    let four_days_ago = Utc::now() - chrono::Duration::days(4);
    let mut events: Vec<pb::UsageEvent> = (0..8).map(|i| usage_at(&format!("old{i}"), a, four_days_ago)).collect();
    events.extend((0..2).map(|i| login(&format!("new{i}"), a)));
    let r = client(&app, "acme", Role::Service)
        .batch_ingest_usage(pb::BatchIngestUsageRequest { events })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.accepted, 10);
    // 2 logins → 20 points; NPS skipped: 20.0, red.
    health_until(&admin, a, |h| h.score == 20.0).await;
    let published = &published;
    let e = eventually("HealthScoreChanged to 20", WAIT, || async move {
        published.score_changes().into_iter().find(|e| e.new_score == 20.0)
    })
    .await;
    assert_eq!(e.account_id, a.to_string());
    assert_eq!((e.old_score, e.new_band), (None, pb::Band::Red as i32));
    // The trends GetAccountHealth reports: 20 − 70 and 20 − 90.
    assert_eq!((e.trend_7d, e.trend_30d), (Some(-50.0), Some(-70.0)));
    let h = admin
        .clone()
        .get_account_health(pb::GetAccountHealthRequest { account_id: a.to_string() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((h.change_7d, h.change_30d), (e.trend_7d, e.trend_30d));
    let m: Vec<_> =
        e.measures.iter().map(|m| (m.measure.as_str(), m.value, m.previous_value, m.points, m.weight)).collect();
    assert_eq!(
        m,
        [("events_3d:login", Some(2.0), Some(8.0), Some(20.0), 3.0), ("external:nps", None, None, None, 1.0)]
    );
    // The usage drop a playbook reads: (previous − value) ÷ previous = 75%.
    let login = &e.measures[0];
    let drop = (login.previous_value.unwrap() - login.value.unwrap()) / login.previous_value.unwrap();
    assert_eq!(drop, 0.75);
}

/// UsageSeen: once per account and tenant day, the first time that day's
/// usage is rolled up; re-sent events and late events for an older day
/// publish nothing.
#[tokio::test]
async fn usage_seen_is_published_once_per_account_and_day() {
    let (app, conn) = service().await;
    let published = Published::subscribe(&app);
    let svc = client(&app, "acme", Role::Service);
    let (a, b, marker) = (
        seed_account(&conn, "acme", "A").await,
        seed_account(&conn, "acme", "B").await,
        seed_account(&conn, "acme", "Marker").await,
    );
    let today = Utc::now().date_naive();
    let yesterday = today - chrono::Days::new(1);
    let noon_yesterday = yesterday.and_hms_opt(12, 0, 0).unwrap().and_utc();
    let ingest = async |events: Vec<pb::UsageEvent>| {
        svc.clone().batch_ingest_usage(pb::BatchIngestUsageRequest { events }).await.unwrap().into_inner()
    };
    let published = &published;
    let seen_until = async |n: usize| {
        eventually(&format!("{n} UsageSeen events"), WAIT, || async move {
            let seen = published.usage_seen();
            (seen.len() >= n).then_some(seen)
        })
        .await
    };
    // Yesterday: A and B in one batch, then A again in another.
    let yesterdays = [
        usage_at("a1", a, noon_yesterday),
        usage_at("b1", b, noon_yesterday),
        usage_at("a2", a, noon_yesterday + chrono::Duration::hours(1)),
    ];
    assert_eq!(ingest(yesterdays[..2].to_vec()).await.accepted, 2);
    seen_until(2).await;
    assert_eq!(ingest(yesterdays[2..].to_vec()).await.accepted, 1);
    // Today: A once, B twice.
    let todays = [login("a3", a), login("b2", b), login("b3", b)];
    assert_eq!(ingest(todays.to_vec()).await.accepted, 3);
    let seen = seen_until(4).await;
    // Within a batch the order of accounts is the database's.
    let sorted = |mut v: Vec<(String, chrono::NaiveDate)>| {
        v.sort();
        v
    };
    let (a_, b_) = (a.to_string(), b.to_string());
    assert_eq!(sorted(seen[..2].to_vec()), sorted(vec![(a_.clone(), yesterday), (b_.clone(), yesterday)]));
    assert_eq!(sorted(seen[2..].to_vec()), sorted(vec![(a_, today), (b_, today)]));
    // The same events again (duplicates), and a late event of yesterday…
    let r = ingest(yesterdays.iter().chain(&todays).cloned().collect()).await;
    assert_eq!((r.accepted, r.duplicates), (0, 6));
    assert_eq!(ingest(vec![usage_at("a-late", a, noon_yesterday)]).await.accepted, 1);
    // …then a marker: batches are rolled up and published in order, so
    // once its UsageSeen is on the bus, anything they caused is too.
    assert_eq!(ingest(vec![login("m1", marker)]).await.accepted, 1);
    let seen = seen_until(5).await;
    assert_eq!(seen[4], (marker.to_string(), today));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(published.usage_seen().len(), 5, "{:?}", published.usage_seen());
}

/// The ten accounts of docs/health.md (*Backtests*), one snapshot each 200
/// days ago; A, B, D and I churn 30, 60, 10 and 20 days after it.
#[tokio::test]
async fn a_backtest_of_the_scores_as_served_matches_the_hand_computed_example() {
    use crate::domain::outcome::{Outcome, OutcomeKind};
    let (app, conn) = service().await;
    let viewer = client(&app, "acme", Role::Viewer);
    let today = Utc::now().date_naive();
    let day = today - chrono::Duration::days(200);
    let scores = [10.0, 20.0, 30.0, 45.0, 50.0, 55.0, 60.0, 75.0, 80.0, 90.0];
    let churns = [(0, 30, 1_000_000), (1, 60, 2_000_000), (3, 10, 500_000), (8, 20, 3_000_000)];
    let mut ids = Vec::new();
    for (i, score) in scores.iter().enumerate() {
        let a = seed_account(&conn, "acme", &format!("account {i}")).await;
        let band = crate::domain::score::band_of(*score, &Default::default());
        store::history::record_past_daily(&conn, "acme", a, day, *score, band).await.unwrap();
        // A snapshot of yesterday: too recent to know.
        store::history::record_past_daily(&conn, "acme", a, today - chrono::Duration::days(1), *score, band)
            .await
            .unwrap();
        ids.push(a);
    }
    for (i, after, arr) in churns {
        let o = Outcome {
            event_id: uuid::Uuid::now_v7(),
            account_id: ids[i],
            kind: OutcomeKind::Churned,
            expansion: None,
            effective_date: day + chrono::Duration::days(after),
            currency: "JPY".into(),
            arr_before: arr,
            arr_after: 0,
        };
        store::outcomes::record(&conn, "acme", &o).await.unwrap();
    }
    let ask = |start: chrono::NaiveDate, end: chrono::NaiveDate, horizon: i32| pb::BacktestScorecardRequest {
        start_day: Some(banso_kit::wire::date_to_proto(start)),
        end_day: Some(banso_kit::wire::date_to_proto(end)),
        horizon_days: horizon,
        ..Default::default()
    };
    let r = viewer.clone().backtest_scorecard(ask(day, today, 0)).await.unwrap().into_inner();
    assert_eq!(r.horizon_days, 90);
    assert_eq!((r.snapshots, r.churned_snapshots, r.accounts, r.churns), (10, 4, 10, 4));
    // Yesterday's ten; the churned accounts' are also after their churn, but too recent comes first.
    assert_eq!((r.too_recent_snapshots, r.after_churn_snapshots), (10, 0));
    assert_eq!(r.auc, Some(0.75));
    let se = (47.0f64 / 1080.0).sqrt();
    assert!((r.auc_std_error.unwrap() - se).abs() < 1e-12);
    assert_eq!(r.auc_upper, Some(1.0));
    let rows: Vec<_> = r
        .calibration
        .iter()
        .map(|b| (b.band, b.snapshots, b.churned_snapshots, b.churned_arr.iter().map(|m| m.amount_minor).sum::<i64>()))
        .collect();
    use pb::Band as B;
    assert_eq!(
        rows,
        [(B::Red as i32, 3, 2, 3_000_000), (B::Yellow as i32, 4, 1, 500_000), (B::Green as i32, 3, 1, 3_000_000)]
    );
    assert_eq!(r.lift_red_over_green, Some(2.0));
    assert!((r.brier_score.unwrap() - 5.0 / 24.0).abs() < 1e-15);
    assert_eq!((r.red_precision, r.red_recall), (Some(2.0 / 3.0), Some(0.5)));
    assert_eq!((r.median_lead_days, r.churns_flagged, r.churns_missed), (Some(45.0), 2, 2));
    // A horizon of 15 days: only D (45, 10 days) churned within it; six of
    // the nine others score higher.
    let r = viewer.clone().backtest_scorecard(ask(day, day, 15)).await.unwrap().into_inner();
    assert_eq!((r.snapshots, r.churned_snapshots, r.auc), (10, 1, Some(6.0 / 9.0)));
    // Another tenant has no snapshot.
    let other = client(&app, "globex", Role::Viewer);
    let r = other.clone().backtest_scorecard(ask(day, today, 0)).await.unwrap().into_inner();
    assert_eq!((r.snapshots, r.auc, r.brier_score), (0, None, None));
    // The same in the background: queued, run, kept.
    let csm = client(&app, "acme", Role::Csm);
    let sync = viewer.clone().backtest_scorecard(ask(day, today, 0)).await.unwrap().into_inner();
    let start = pb::StartBacktestRequest { backtest: Some(ask(day, today, 0)), ..Default::default() };
    let job = csm.clone().start_backtest(start).await.unwrap().into_inner();
    assert_eq!(job.backtest.as_ref().map(|b| b.horizon_days), Some(90));
    let done = eventually("the backtest job to finish", WAIT, || async {
        let j = viewer.clone().get_backtest_job(pb::GetBacktestJobRequest { id: job.id.clone() }).await.unwrap();
        let j = j.into_inner();
        (j.state == pb::backtest_job::State::Succeeded as i32).then_some(j)
    })
    .await;
    // Queued, it has not begun; done, every step is: labelling and the
    // report (the scores as served need no replay), over the snapshots.
    assert_eq!((job.phase.as_str(), job.steps_done, job.steps_total, job.start_time.is_none()), ("", 0, 0, true));
    assert_eq!((done.phase.as_str(), done.steps_done, done.steps_total), ("reporting", 2, 2));
    assert_eq!(done.snapshots, sync.snapshots as i64);
    let (began, ended) = (done.start_time.unwrap(), done.end_time.unwrap());
    assert!((began.seconds, began.nanos) <= (ended.seconds, ended.nanos), "{began:?} after {ended:?}");
    assert_eq!(done.result, Some(sync));
    // Another tenant's job does not exist for the caller; a viewer may not start one.
    let e = other.clone().get_backtest_job(pb::GetBacktestJobRequest { id: job.id.clone() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let start = pb::StartBacktestRequest { backtest: Some(ask(day, today, 0)), ..Default::default() };
    let e = viewer.clone().start_backtest(start).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    // Its request is checked as BacktestScorecard's, the fields named under `backtest.`.
    let e = csm
        .clone()
        .start_backtest(pb::StartBacktestRequest { backtest: Some(ask(day, today, 999)), ..Default::default() })
        .await;
    let v = banso_testkit::field_violations(&e.unwrap_err());
    assert_eq!(v, [("backtest.horizon_days".to_owned(), "must be between 1 and 730 (0 for 90), got 999".to_owned())]);
    let e = csm
        .clone()
        .start_backtest(pb::StartBacktestRequest { backtest: None, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(banso_testkit::field_violations(&e), [("backtest".to_owned(), "is required".to_owned())]);
    let mut unknown = ask(day, today, 0);
    unknown.scorecard_id = uuid::Uuid::now_v7().to_string();
    let e = csm
        .clone()
        .start_backtest(pb::StartBacktestRequest { backtest: Some(unknown.clone()), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    // A retry with the same request_id gets the job the first attempt
    // queued, even when its body differs (the key decides); a new key, a new job.
    let keyed = |key: &str, horizon| pb::StartBacktestRequest {
        backtest: Some(ask(day, today, horizon)),
        request_id: key.into(),
    };
    let first = csm.clone().start_backtest(keyed("bt-1", 30)).await.unwrap().into_inner();
    let again = csm.clone().start_backtest(keyed("bt-1", 60)).await.unwrap().into_inner();
    assert_eq!((again.id.as_str(), again.backtest.as_ref().map(|b| b.horizon_days)), (first.id.as_str(), Some(30)));
    let other_key = csm.clone().start_backtest(keyed("bt-2", 30)).await.unwrap().into_inner();
    assert_ne!(other_key.id, first.id);
    // Keys are per tenant: globex's "bt-1" is its own job.
    let globex = client(&app, "globex", Role::Csm);
    let theirs = globex.clone().start_backtest(keyed("bt-1", 30)).await.unwrap().into_inner();
    assert_ne!(theirs.id, first.id);
    // A bad key and a bad request: both named at once.
    let mut both = keyed(&"k".repeat(129), 999);
    let e = csm.clone().start_backtest(both.clone()).await.unwrap_err();
    let fields: Vec<String> = banso_testkit::field_violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["request_id", "backtest.horizon_days"]);
    both.backtest = Some(unknown);
    both.request_id = "bt-3".into();
    let e = csm.clone().start_backtest(both).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "an unknown scorecard queues nothing under the key");
}

#[tokio::test]
async fn a_backtest_names_every_bad_field() {
    let (app, _conn) = service().await;
    let viewer = client(&app, "acme", Role::Viewer);
    let d = |y, m, day| Some(banso_proto::types::Date { year: y, month: m, day });
    let bad = |r: pb::BacktestScorecardRequest| {
        let mut c = viewer.clone();
        async move {
            let e = c.backtest_scorecard(r).await.unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            banso_testkit::field_violations(&e)
        }
    };
    let v = bad(pb::BacktestScorecardRequest { horizon_days: 731, ..Default::default() }).await;
    let fields: Vec<&str> = v.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["start_day", "end_day", "horizon_days"]);
    assert!(v[2].1.contains("731"), "{v:?}");
    let v = bad(pb::BacktestScorecardRequest {
        start_day: d(2026, 5, 1),
        end_day: d(2026, 4, 1),
        horizon_days: -1,
        ..Default::default()
    })
    .await;
    assert_eq!(
        v,
        [
            ("end_day".to_owned(), "2026-04-01 is before start_day 2026-05-01".to_owned()),
            ("horizon_days".to_owned(), "must be between 1 and 730 (0 for 90), got -1".to_owned()),
        ]
    );
    let v = bad(pb::BacktestScorecardRequest {
        start_day: d(2020, 1, 1),
        end_day: d(2026, 2, 30),
        horizon_days: 0,
        ..Default::default()
    })
    .await;
    assert_eq!(v, [("end_day".to_owned(), "2026-02-30 is not a calendar date".to_owned())]);
    let v = bad(pb::BacktestScorecardRequest {
        start_day: d(2020, 1, 1),
        end_day: d(2026, 1, 1),
        horizon_days: 0,
        ..Default::default()
    })
    .await;
    assert_eq!(v[0].0, "end_day");
    assert!(v[0].1.contains("more than 731 days"), "{v:?}");
}

/// Two scorecards replayed on the same snapshots of 200 days ago: one on
/// the usage that foretold churn, one on a measure that did not.
#[tokio::test]
async fn a_replayed_scorecard_is_compared_with_another_on_the_same_snapshots() {
    use crate::domain::outcome::{Outcome, OutcomeKind};
    let (app, conn) = service().await;
    let admin = client(&app, "acme", Role::Admin);
    let card = |measure: &str| pb::Scorecard {
        name: measure.into(),
        measures: vec![pb::WeightedMeasure {
            measure: measure.into(),
            weight: 1.0,
            normalisation: linear(0.0, 10.0),
            ..Default::default()
        }],
        ..Default::default()
    };
    let create = async |c: pb::Scorecard| {
        let r = pb::CreateScorecardRequest { scorecard: Some(c), request_id: String::new() };
        admin.clone().create_scorecard(r).await.unwrap().into_inner().id
    };
    let informative = create(card("events_7d:login")).await;
    let noise = create(card("events_7d:noise")).await;
    let mut with_nps = card("events_7d:login");
    with_nps.measures.push(pb::WeightedMeasure {
        measure: "external:nps".into(),
        weight: 1.0,
        normalisation: linear(0.0, 10.0),
        ..Default::default()
    });
    let nps = create(with_nps).await;
    let day = Utc::now().date_naive() - chrono::Duration::days(200);
    // Churners log in 1, 2, 3 times in the week before; the others 6, 8, 10.
    // Their use of "noise" says nothing: 5, 9, 2 against 3, 7, 1.
    let logins = [1, 2, 3, 6, 8, 10];
    let noises = [5, 9, 2, 3, 7, 1];
    for i in 0..6 {
        let a = seed_account(&conn, "acme", &format!("account {i}")).await;
        store::history::record_past_daily(&conn, "acme", a, day, 50.0, Band::Yellow).await.unwrap();
        let two_days_before = day - chrono::Duration::days(2);
        store::inputs::record_past_rollup(&conn, "acme", a, two_days_before, "login", logins[i]).await.unwrap();
        store::inputs::record_past_rollup(&conn, "acme", a, two_days_before, "noise", noises[i]).await.unwrap();
        if i < 3 {
            let o = Outcome {
                event_id: uuid::Uuid::now_v7(),
                account_id: a,
                kind: OutcomeKind::Churned,
                expansion: None,
                effective_date: day + chrono::Duration::days(30),
                currency: "USD".into(),
                arr_before: 100,
                arr_after: 0,
            };
            store::outcomes::record(&conn, "acme", &o).await.unwrap();
        }
    }
    let ask = |id: &str, compare: &str| pb::BacktestScorecardRequest {
        start_day: Some(banso_kit::wire::date_to_proto(day)),
        end_day: Some(banso_kit::wire::date_to_proto(day)),
        scorecard_id: id.into(),
        compare_scorecard_id: compare.into(),
        ..Default::default()
    };
    let viewer = client(&app, "acme", Role::Viewer);
    let r = viewer.clone().backtest_scorecard(ask(&informative, &noise)).await.unwrap().into_inner();
    assert_eq!((r.scorecard_id.as_str(), r.scorecard_version), (informative.as_str(), 1));
    assert_eq!((r.snapshots, r.churned_snapshots, r.unscored_snapshots), (6, 3, 0));
    // Logins 1, 2, 3 → 10, 20, 30 points (red) against 60, 80, 100: a perfect ranking.
    assert_eq!(r.auc, Some(1.0));
    let red = &r.calibration[0];
    assert_eq!((red.snapshots, red.churned_snapshots, red.churn_rate), (3, 3, Some(1.0)));
    assert_eq!(red.churned_arr, [banso_proto::types::Money { currency_code: "USD".into(), amount_minor: 300 }]);
    assert_eq!((r.median_lead_days, r.churns_flagged), (Some(30.0), 3));
    let c = r.comparison.unwrap();
    let other = c.other.clone().unwrap();
    assert_eq!((other.scorecard_id.as_str(), other.snapshots), (noise.as_str(), 6));
    // Noise: of the 9 (churned, other) pairs, 3 have the churned one lower.
    assert!((other.auc.unwrap() - 1.0 / 3.0).abs() < 1e-12);
    assert!((c.auc_difference.unwrap() + 2.0 / 3.0).abs() < 1e-12);
    assert!(c.auc_difference_upper.unwrap() < 0.0, "the noise scorecard is worse beyond chance: {c:?}");
    // The same comparison as a job: labelling, a replay of each scorecard,
    // the report — four steps, and the result the RPC gave.
    let csm = client(&app, "acme", Role::Csm);
    let start = pb::StartBacktestRequest { backtest: Some(ask(&informative, &noise)), ..Default::default() };
    let job = csm.clone().start_backtest(start).await.unwrap().into_inner();
    let done = eventually("the comparison job to finish", WAIT, || async {
        let j = viewer.clone().get_backtest_job(pb::GetBacktestJobRequest { id: job.id.clone() }).await.unwrap();
        let j = j.into_inner();
        (j.state == pb::backtest_job::State::Succeeded as i32).then_some(j)
    })
    .await;
    assert_eq!((done.phase.as_str(), done.steps_done, done.steps_total, done.snapshots), ("reporting", 4, 4, 6));
    assert_eq!(done.result.map(|b| b.auc), Some(Some(1.0)));
    // The scores as served (all 50) tell nothing: AUC 0.5.
    let served = viewer.clone().backtest_scorecard(ask("", "")).await.unwrap().into_inner();
    assert_eq!((served.auc, served.scorecard_id.as_str()), (Some(0.5), ""));
    // An external measure has no past: missing, and said so.
    let r = viewer.clone().backtest_scorecard(ask(&nps, "")).await.unwrap().into_inner();
    assert_eq!(r.unreplayable_measures, ["external:nps"]);
    assert_eq!(r.auc, Some(1.0));
    // Unknown scorecards, and another tenant's, are NOT_FOUND.
    let e = viewer.clone().backtest_scorecard(ask(&uuid::Uuid::now_v7().to_string(), "")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let globex = client(&app, "globex", Role::Viewer);
    let e = globex.clone().backtest_scorecard(ask(&informative, "")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let mut versioned = ask(&informative, &noise);
    versioned.compare_scorecard_version = 7;
    let e = viewer.clone().backtest_scorecard(versioned).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    // Bad ids and versions are named.
    let mut bad = ask("nope", "");
    bad.scorecard_version = -1;
    bad.compare_scorecard_version = 2;
    let e = viewer.clone().backtest_scorecard(bad).await.unwrap_err();
    let fields: Vec<String> = banso_testkit::field_violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["scorecard_id", "compare_scorecard_version"]);
}

/// Creates the scorecard the model tests train on (7-day logins and the
/// noise event, linear 0..70): its id.
async fn usage_card(admin: &Client) -> String {
    let s = pb::Scorecard {
        name: "usage".into(),
        measures: ["events_7d:login", "events_7d:noise"]
            .iter()
            .map(|m| pb::WeightedMeasure {
                measure: (*m).into(),
                weight: 1.0,
                normalisation: linear(0.0, 70.0),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let r = pb::CreateScorecardRequest { scorecard: Some(s), request_id: String::new() };
    admin.clone().create_scorecard(r).await.unwrap().into_inner().id
}

#[tokio::test]
async fn an_expansion_model_learns_who_expands_and_publishes_expansion_signals() {
    use crate::domain::outcome::{ExpansionKind, Outcome, OutcomeKind};
    let (app, conn) = service().await;
    let start = Utc::now().date_naive() - chrono::Duration::days(200);
    let ids = seed_churn_history(&conn, "grow", start, 10, 60, 0).await;
    // The heaviest users (8 to 10 logins a day) expand after the range:
    // cross-sells at 8, upsells at 9 and 10 (16 of them).
    for (i, a) in ids.iter().enumerate().filter(|(i, _)| i % 7 >= 4) {
        let o = Outcome {
            event_id: uuid::Uuid::now_v7(),
            account_id: *a,
            kind: OutcomeKind::Expanded,
            expansion: Some(if i % 7 == 4 { ExpansionKind::CrossSell } else { ExpansionKind::Upsell }),
            effective_date: start + chrono::Duration::days(40 + (i % 7) as i64),
            currency: "JPY".into(),
            arr_before: 1_000,
            arr_after: 2_000,
        };
        store::outcomes::record(&conn, "grow", &o).await.unwrap();
    }
    let admin = client(&app, "grow", Role::Admin);
    let id = usage_card(&admin).await;
    let ask = |target: pb::ModelTarget| pb::TrainChurnModelRequest {
        scorecard_id: id.clone(),
        start_day: Some(banso_kit::wire::date_to_proto(start)),
        end_day: Some(banso_kit::wire::date_to_proto(start + chrono::Duration::days(9))),
        target: target as i32,
        ..Default::default()
    };
    let published = Published::subscribe(&app);
    let m = admin.clone().train_churn_model(ask(pb::ModelTarget::Expansion)).await.unwrap().into_inner();
    assert_eq!(m.target, pb::ModelTarget::Expansion as i32);
    assert_eq!((m.training_churns, m.accounts_scored, m.risk_changes), (24, 60, 60), "{m:?}");
    let coef = |name: &str| m.features.iter().find(|f| f.measure == name).unwrap().coefficient;
    // More logins, more expansion.
    assert!(coef("events_7d:login") > 1.0, "{m:?}");
    assert_eq!(m.validation_auc, Some(1.0));
    let signals = eventually("60 ExpansionSignalChanged", WAIT, || async {
        let seen: Vec<banso_proto::events::ExpansionSignalChanged> = published
            .0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match &e.payload {
                Some(banso_events::Payload::ExpansionSignalChanged(c)) => Some(c.clone()),
                _ => None,
            })
            .collect();
        (seen.len() >= 60).then_some(seen)
    })
    .await;
    use banso_proto::events::{ChurnRiskBucket as B, ExpansionTarget as T};
    let high: Vec<_> = signals.iter().filter(|r| r.new_bucket == B::High as i32).collect();
    assert_eq!(high.len(), 24, "{signals:?}");
    assert!(signals.iter().all(|r| r.target == T::Any as i32 && r.model_version == m.version));
    assert!(high.iter().all(|r| r.reasons[0].description == "login events in the last 7 days"));
    // No churn risk was touched: the churn model's buckets are apart.
    assert!(
        published
            .0
            .lock()
            .unwrap()
            .iter()
            .all(|e| !matches!(e.payload, Some(banso_events::Payload::ChurnRiskChanged(_))))
    );
    // Each account's predictions side by side: churn (none trained here) and expansion.
    let reader = client(&app, "grow", Role::Viewer);
    let ask_p = |account: String| pb::GetAccountPredictionsRequest { account_id: account };
    let heavy = reader.clone().get_account_predictions(ask_p(ids[6].to_string())).await.unwrap().into_inner();
    assert_eq!(heavy.predictions.len(), 1, "{heavy:?}");
    let p = &heavy.predictions[0];
    assert_eq!(
        (p.target, p.bucket, p.model_version),
        (pb::ModelTarget::Expansion as i32, pb::PredictionBucket::High as i32, m.version)
    );
    assert_eq!(p.reasons[0].description, "login events in the last 7 days");
    let light = reader.clone().get_account_predictions(ask_p(ids[0].to_string())).await.unwrap().into_inner();
    assert_eq!(light.predictions[0].bucket, pb::PredictionBucket::Low as i32, "{light:?}");
    let other = client(&app, "acme", Role::Viewer);
    let e = other.clone().get_account_predictions(ask_p(ids[6].to_string())).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = reader.clone().get_account_predictions(ask_p("nope".into())).await.unwrap_err();
    let fields: Vec<String> = banso_testkit::field_violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["account_id"]);
    // Weights are suggested from churn models only; a version not kept is NOT_FOUND.
    let suggest = |v: i64| {
        let c = admin.clone();
        async move { c.clone().suggest_scorecard_weights(pb::SuggestScorecardWeightsRequest { model_version: v }).await }
    };
    assert_eq!(suggest(m.version).await.unwrap_err().code(), tonic::Code::FailedPrecondition);
    assert_eq!(suggest(m.version + 1).await.unwrap_err().code(), tonic::Code::NotFound);
    let fields: Vec<String> =
        banso_testkit::field_violations(&suggest(-1).await.unwrap_err()).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["model_version"]);
    // Upsells alone are 16: too few.
    let e = admin.clone().train_churn_model(ask(pb::ModelTarget::Upsell)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(e.message().starts_with("16 labelled upsells in the training snapshots"), "{e:?}");
    // An unknown target is named.
    let e = admin
        .clone()
        .train_churn_model(pb::TrainChurnModelRequest { target: 99, ..ask(pb::ModelTarget::Churn) })
        .await
        .unwrap_err();
    let fields: Vec<String> = banso_testkit::field_violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["target"]);
}

/// Between trainings the live scorer keeps each account's probability
/// with its measures: an account at high risk that starts using the
/// product moves to low, and ChurnRiskChanged says so, made by the same
/// model version; an account whose usage did not move keeps its stored one.
#[tokio::test]
async fn a_churn_probability_follows_the_measures_between_trainings() {
    let (app, conn) = service().await;
    let start = Utc::now().date_naive() - chrono::Duration::days(200);
    let ids = seed_churn_history(&conn, "acme", start, 10, 40, 20).await;
    let admin = client(&app, "acme", Role::Admin);
    let card = usage_card(&admin).await;
    // The scorecard's first recompute scores every account before the model exists.
    recompute(&admin).await;
    let published = Published::subscribe(&app);
    let m = admin
        .clone()
        .train_churn_model(pb::TrainChurnModelRequest {
            scorecard_id: card,
            start_day: Some(banso_kit::wire::date_to_proto(start)),
            end_day: Some(banso_kit::wire::date_to_proto(start + chrono::Duration::days(9))),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let viewer = client(&app, "acme", Role::Viewer);
    let predict = |a: uuid::Uuid| {
        let c = viewer.clone();
        async move {
            let r = pb::GetAccountPredictionsRequest { account_id: a.to_string() };
            c.clone().get_account_predictions(r).await.unwrap().into_inner().predictions.remove(0)
        }
    };
    // Account 0 logs in once a day: at high risk.
    let (risky, steady) = (ids[0], ids[1]);
    let before = predict(risky).await;
    assert_eq!((before.bucket, before.model_version), (pb::PredictionBucket::High as i32, m.version), "{before:?}");
    let steady_before = predict(steady).await;
    // …then 60 times today.
    let events: Vec<pb::UsageEvent> = (0..60).map(|i| login(&format!("back-{i}"), risky)).collect();
    client(&app, "acme", Role::Service).batch_ingest_usage(pb::BatchIngestUsageRequest { events }).await.unwrap();
    let after = eventually("the live scorer to move account 0's churn risk", WAIT, || async {
        let p = predict(risky).await;
        (p.bucket == pb::PredictionBucket::Low as i32).then_some(p)
    })
    .await;
    assert!(after.probability < before.probability / 10.0, "{before:?} → {after:?}");
    assert_eq!(after.model_version, m.version, "made by the model it was trained as");
    assert!(after.reasons.iter().all(|r| r.feature != "events_7d:login"), "logins no longer push it up: {after:?}");
    use banso_proto::events::ChurnRiskBucket as B;
    let moved = eventually("ChurnRiskChanged high → low", WAIT, || async {
        published.0.lock().unwrap().iter().find_map(|e| match &e.payload {
            Some(banso_events::Payload::ChurnRiskChanged(c))
                if c.account_id == risky.to_string() && c.old_bucket == B::High as i32 =>
            {
                Some(c.clone())
            }
            _ => None,
        })
    })
    .await;
    assert_eq!(
        (moved.new_bucket, moved.model_version, moved.probability),
        (B::Low as i32, m.version, after.probability)
    );
    assert_eq!(moved.horizon_days, 90);
    // An account nobody touched keeps what the training stored.
    assert_eq!(predict(steady).await, steady_before);
}

#[tokio::test]
async fn a_churn_model_learns_from_usage_and_refuses_too_few_churns() {
    let (app, conn) = service().await;
    let start = Utc::now().date_naive() - chrono::Duration::days(200);
    seed_churn_history(&conn, "acme", start, 10, 60, 24).await;
    seed_churn_history(&conn, "small", start, 10, 20, 5).await;
    let card = |tenant: &'static str| {
        let c = client(&app, tenant, Role::Admin);
        async move { (usage_card(&c).await, c) }
    };
    let ask = |id: &str| pb::TrainChurnModelRequest {
        scorecard_id: id.into(),
        start_day: Some(banso_kit::wire::date_to_proto(start)),
        end_day: Some(banso_kit::wire::date_to_proto(start + chrono::Duration::days(9))),
        ..Default::default()
    };
    let published = Published::subscribe(&app);
    let (id, admin) = card("acme").await;
    let m = admin.clone().train_churn_model(ask(&id)).await.unwrap().into_inner();
    // Every live account scored today, each its first bucket.
    assert_eq!((m.accounts_scored, m.risk_changes), (60, 60));
    // Ten snapshot days: the first eight train, the last two validate.
    assert_eq!(m.split_day, Some(banso_kit::wire::date_to_proto(start + chrono::Duration::days(8))));
    assert_eq!((m.training_snapshots, m.training_churns), (480, 24));
    assert_eq!((m.validation_snapshots, m.validation_churns), (120, 24));
    let coef = |name: &str| m.features.iter().find(|f| f.measure == name).unwrap().coefficient;
    // Fewer logins, more risk; the noise says little.
    assert!(coef("events_7d:login") < -1.0, "{m:?}");
    assert!(coef("events_7d:noise").abs() < coef("events_7d:login").abs(), "{m:?}");
    assert_eq!(m.validation_auc, Some(1.0));
    let risks = eventually("60 ChurnRiskChanged", WAIT, || async {
        let seen: Vec<banso_proto::events::ChurnRiskChanged> = published
            .0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match &e.payload {
                Some(banso_events::Payload::ChurnRiskChanged(c)) => Some(c.clone()),
                _ => None,
            })
            .collect();
        (seen.len() >= 60).then_some(seen)
    })
    .await;
    use banso_proto::events::ChurnRiskBucket as B;
    let high: Vec<_> = risks.iter().filter(|r| r.new_bucket == B::High as i32).collect();
    let low = risks.iter().filter(|r| r.new_bucket == B::Low as i32).count();
    // The 24 who log in little are at high risk, and logins say why; the
    // others low (those at 4 logins a day, the fewest, medium).
    assert_eq!((high.len(), risks.len()), (24, 60), "{risks:?}");
    assert!(low >= 30, "{risks:?}");
    assert!(high.iter().all(|r| r.old_bucket == B::Unspecified as i32 && r.probability >= 0.3));
    assert!(high.iter().all(|r| r.reasons.first().map(|x| x.measure.as_str()) == Some("events_7d:login")));
    assert!(high.iter().all(|r| r.reasons[0].description == "login events in the last 7 days"));
    // Trained again on the same data: no bucket moves, nothing published.
    assert!(risks.iter().all(|r| r.model_version == 1));
    let p = client(&app, "acme", Role::Viewer)
        .get_account_predictions(pb::GetAccountPredictionsRequest { account_id: high[0].account_id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.predictions.len(), 1);
    assert_eq!((p.predictions[0].target, p.predictions[0].model_version), (pb::ModelTarget::Churn as i32, 1));
    assert_eq!(p.predictions[0].probability, high[0].probability);
    assert_eq!(p.predictions[0].reasons[0].feature, "events_7d:login");
    let again = admin.clone().train_churn_model(ask(&id)).await.unwrap().into_inner();
    assert_eq!((again.accounts_scored, again.risk_changes), (60, 0));
    // Each training is kept as the tenant's next version, read back as trained.
    assert_eq!((m.version, again.version), (1, 2));
    assert_eq!(m.start_day, Some(banso_kit::wire::date_to_proto(start)));
    assert_eq!(m.end_day, Some(banso_kit::wire::date_to_proto(start + chrono::Duration::days(9))));
    assert!(m.train_time.is_some());
    let reader = client(&app, "acme", Role::Viewer);
    let get = |version: i64| {
        let c = reader.clone();
        async move { c.clone().get_churn_model(pb::GetChurnModelRequest { version }).await }
    };
    // The newest of a target shows its scheduled retraining (a week after
    // its training, as the test app is set); once replaced, none.
    let week = 168 * 3600;
    let due = |t: &pb::ChurnModel| t.retraining.as_ref().and_then(|r| r.next_time).map(|n| n.seconds);
    assert_eq!(due(&m), m.train_time.map(|t| t.seconds + week));
    assert_eq!(due(&again), again.train_time.map(|t| t.seconds + week));
    let m = pb::ChurnModel { retraining: None, ..m };
    assert_eq!(get(1).await.unwrap().into_inner(), m);
    assert_eq!(get(0).await.unwrap().into_inner(), again);
    assert_eq!(get(3).await.unwrap_err().code(), tonic::Code::NotFound);
    let e = get(-1).await.unwrap_err();
    let fields: Vec<String> = banso_testkit::field_violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["version"]);
    let page = |token: String| {
        let c = reader.clone();
        async move {
            c.clone()
                .list_churn_models(pb::ListChurnModelsRequest { page_size: 1, page_token: token })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let first = page(String::new()).await;
    assert_eq!(first.models, std::slice::from_ref(&again));
    let second = page(first.next_page_token).await;
    assert_eq!((second.models, second.next_page_token), (vec![m.clone()], String::new()));
    // Trainings at once all succeed, kept as successive versions (one that
    // meets another's version is kept on top of it).
    let train = || {
        let (mut c, r) = (admin.clone(), ask(&id));
        async move { c.train_churn_model(r).await }
    };
    let (a, b, c) = tokio::join!(train(), train(), train());
    let mut versions: Vec<i64> = [a, b, c].into_iter().map(|r| r.unwrap().into_inner().version).collect();
    versions.sort_unstable();
    assert_eq!(versions, [3, 4, 5]);
    // Five churns are too few to be shown a probability.
    let (id, small) = card("small").await;
    let e = small.clone().train_churn_model(ask(&id)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    // Another tenant's models are not found; a refused training keeps none.
    let other = small.clone().get_churn_model(pb::GetChurnModelRequest { version: 1 }).await.unwrap_err();
    assert_eq!(other.code(), tonic::Code::NotFound);
    let none = small.clone().list_churn_models(pb::ListChurnModelsRequest::default()).await.unwrap().into_inner();
    assert!(none.models.is_empty());
    assert!(
        e.message().starts_with("5 labelled churns in the training snapshots, fewer than the minimum of 20"),
        "{e:?}"
    );
    // A viewer may not train; bad input is named; another tenant's scorecard is NOT_FOUND.
    let viewer = client(&app, "acme", Role::Viewer);
    assert_eq!(viewer.clone().train_churn_model(ask(&id)).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    let e = admin.clone().train_churn_model(ask(&id)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = admin.clone().train_churn_model(pb::TrainChurnModelRequest::default()).await.unwrap_err();
    let fields: Vec<String> = banso_testkit::field_violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["scorecard_id", "start_day", "end_day"]);
}

#[tokio::test]
async fn the_renewal_forecast_weighs_each_renewal_by_its_chance_of_staying() {
    use crate::domain::{
        account::AccountRow,
        churn_model::RiskBucket,
        outcome::{Outcome, OutcomeKind},
    };
    let (app, conn) = service().await;
    let d = |m: u32, day: u32| chrono::NaiveDate::from_ymd_opt(2027, m, day).unwrap();
    // (owner, ARR, renewal, churn probability)
    let accounts = [
        ("ana", 1_000, d(4, 1), Some(0.1)),
        ("ana", 3_000, d(6, 30), Some(0.5)),
        ("bo", 2_000, d(5, 5), Some(0.25)),
        ("bo", 700, d(5, 6), None),
        ("bo", 9_000, d(7, 1), Some(0.9)),
    ];
    let mut risks = Vec::new();
    for (i, (owner, arr, renewal, p)) in accounts.iter().enumerate() {
        let row = AccountRow {
            account_id: uuid::Uuid::now_v7(),
            name: format!("account {i}"),
            owner_id: (*owner).into(),
            arr_currency: Some("JPY".into()),
            arr_amount_minor: Some(*arr),
            renewal_date: Some(*renewal),
            // Accounts 0 and 2 are retail, 1 software, the others have none.
            industry: ["retail", "software", "retail", "", ""][i].into(),
            ..Default::default()
        };
        store::accounts::upsert(&conn, "renew", &row).await.unwrap();
        if let Some(p) = p {
            risks.push((row.account_id, *p, RiskBucket::of(*p), Vec::new()));
        }
        // A year before: the first three renewed, the fourth churned.
        let kind = if i < 3 { OutcomeKind::Renewed } else { OutcomeKind::Churned };
        if i < 4 {
            let o = Outcome {
                event_id: uuid::Uuid::now_v7(),
                account_id: row.account_id,
                kind,
                expansion: None,
                effective_date: d(1, 10),
                currency: "JPY".into(),
                arr_before: *arr,
                arr_after: if i < 3 { *arr } else { 0 },
            };
            store::outcomes::record(&conn, "renew", &o).await.unwrap();
        }
    }
    store::churn_risk::upsert(&conn, "renew", 1, &risks).await.unwrap();
    let c = client(&app, "renew", Role::Viewer);
    let ask = |start, end| pb::ForecastRenewalsRequest {
        start_day: Some(banso_kit::wire::date_to_proto(start)),
        end_day: Some(banso_kit::wire::date_to_proto(end)),
        ..Default::default()
    };
    let f = c.clone().forecast_renewals(ask(d(4, 1), d(6, 30))).await.unwrap().into_inner();
    let g: Vec<(&str, i64, i64, i64, i64, i64)> = f
        .groups
        .iter()
        .map(|g| (g.owner_id.as_str(), g.renewals, g.arr_due, g.expected_renewed_arr, g.arr_at_risk, g.unscored_arr))
        .collect();
    // Everyone: 1,000 × 0.9 + 3,000 × 0.5 + 2,000 × 0.75; the unscored 700
    // is due but in neither expectation; the July renewal is outside.
    assert_eq!(
        g,
        [("", 4, 6_700, 3_900, 2_100, 700), ("ana", 2, 4_000, 2_400, 1_600, 0), ("bo", 2, 2_700, 1_500, 500, 700)]
    );
    assert!(f.groups.iter().all(|g| g.currency == "JPY"));
    use pb::renewal_group::Kind;
    let kinds: Vec<i32> = f.groups.iter().map(|g| g.kind).collect();
    assert_eq!(kinds, [Kind::Total as i32, Kind::Owner as i32, Kind::Owner as i32]);
    assert_eq!(f.measured_renewal_rate, Some(0.75));
    // By industry as well: retail 1,000 × 0.9 + 2,000 × 0.75; software
    // 3,000 × 0.5; no industry: the unscored 700 alone.
    let by = pb::ForecastRenewalsRequest { segment_by: "industry".into(), ..ask(d(4, 1), d(6, 30)) };
    let f = c.clone().forecast_renewals(by).await.unwrap().into_inner();
    let g: Vec<(i32, &str, &str, i64, i64, i64, i64)> = f
        .groups
        .iter()
        .map(|g| {
            (
                g.kind,
                g.owner_id.as_str(),
                g.segment.as_str(),
                g.renewals,
                g.arr_due,
                g.expected_renewed_arr,
                g.arr_at_risk,
            )
        })
        .collect();
    let (t, o, sg) = (Kind::Total as i32, Kind::Owner as i32, Kind::Segment as i32);
    assert_eq!(
        g,
        [
            (t, "", "", 4, 6_700, 3_900, 2_100),
            (o, "ana", "", 2, 4_000, 2_400, 1_600),
            (o, "bo", "", 2, 2_700, 1_500, 500),
            (sg, "", "", 1, 700, 0, 0),
            (sg, "", "retail", 2, 3_000, 2_400, 600),
            (sg, "", "software", 1, 3_000, 1_500, 1_500),
        ]
    );
    // The period asked for by fiscal quarter: with an April start (from
    // TenantSettingsChanged), Q1 of FY2027 is 2027-04-01 to 2027-06-30, the
    // same days as above; Q4 of FY2026 (2027-01-01 to 03-31) has nothing
    // due; the whole FY2027 takes the July renewal in as well.
    store::tenants::set_settings(&conn, "renew", "UTC", 4).await.unwrap();
    let fiscal =
        |fiscal_year, fiscal_quarter| pb::ForecastRenewalsRequest { fiscal_year, fiscal_quarter, ..Default::default() };
    let q1 = c.clone().forecast_renewals(fiscal(2027, 1)).await.unwrap().into_inner();
    let by_days = c.clone().forecast_renewals(ask(d(4, 1), d(6, 30))).await.unwrap().into_inner();
    assert_eq!(q1, by_days);
    assert_eq!(
        (q1.start_day, q1.end_day),
        (Some(banso_kit::wire::date_to_proto(d(4, 1))), Some(banso_kit::wire::date_to_proto(d(6, 30))))
    );
    let q4 = c.clone().forecast_renewals(fiscal(2026, 4)).await.unwrap().into_inner();
    assert!(q4.groups.is_empty());
    assert_eq!(q4.start_day, Some(banso_kit::wire::date_to_proto(d(1, 1))));
    let year = c.clone().forecast_renewals(fiscal(2027, 0)).await.unwrap().into_inner();
    assert_eq!((year.groups[0].renewals, year.groups[0].arr_due), (5, 15_700));
    assert_eq!(
        year.end_day,
        Some(banso_kit::wire::date_to_proto(chrono::NaiveDate::from_ymd_opt(2028, 3, 31).unwrap()))
    );
    // A fiscal period with days as well, or out of range, is named.
    let both = pb::ForecastRenewalsRequest { fiscal_year: 2027, fiscal_quarter: 5, ..ask(d(4, 1), d(6, 30)) };
    let e = c.clone().forecast_renewals(both).await.unwrap_err();
    let fields: Vec<String> = banso_testkit::field_violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["start_day", "end_day", "fiscal_quarter"]);
    let e = c.clone().forecast_renewals(fiscal(0, 2)).await.unwrap_err();
    let v = banso_testkit::field_violations(&e);
    assert_eq!(v[0], ("fiscal_quarter".to_owned(), "needs fiscal_year, got quarter 2 alone".to_owned()));
    let e = c.clone().forecast_renewals(fiscal(10_000, 0)).await.unwrap_err();
    assert_eq!(banso_testkit::field_violations(&e)[0].0, "fiscal_year");
    let bad = pb::ForecastRenewalsRequest { segment_by: "colour".into(), ..ask(d(6, 30), d(4, 1)) };
    let e = c.clone().forecast_renewals(bad).await.unwrap_err();
    let v = banso_testkit::field_violations(&e);
    assert_eq!(v[0].0, "end_day");
    assert_eq!(
        v[1],
        (
            "segment_by".to_owned(),
            "must be one of industry, region, plan_tier, revenue_band, lifecycle_stage, touch_model, got \"colour\""
                .to_owned()
        )
    );
    // Another tenant has nothing due; bad periods are named.
    let other = client(&app, "acme", Role::Viewer).forecast_renewals(ask(d(4, 1), d(6, 30))).await.unwrap();
    assert!(other.into_inner().groups.is_empty());
    let e = c.clone().forecast_renewals(ask(d(6, 30), d(4, 1))).await.unwrap_err();
    let fields: Vec<String> = banso_testkit::field_violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["end_day"]);
    let e = c.clone().forecast_renewals(pb::ForecastRenewalsRequest::default()).await.unwrap_err();
    let fields: Vec<String> = banso_testkit::field_violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["start_day", "end_day"]);
}

/// Only the outbox: the schema of a publisher of someone else's events.
struct OutboxOnly;

impl sea_orm_migration::MigratorTrait for OutboxOnly {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        vec![Box::new(banso_events::outbox::Migration), Box::new(banso_events::outbox::PendingIndex)]
    }
}

/// Feedback as Health sees it: envelopes recorded in an outbox of its own
/// database and published onto the app's bus by its relay, as the Feedback
/// service publishes them.
struct Feedback {
    conn: sea_orm::DatabaseConnection,
    relay: banso_events::outbox::Relay,
    _db: banso_testkit::TestDb,
}

impl Feedback {
    async fn new(app: &banso_testkit::TestApp) -> Feedback {
        let db = banso_testkit::fresh_database().await.unwrap();
        let conn = db.connect::<OutboxOnly>("feedback").await.unwrap();
        let bus = app.runtime.bus.clone();
        bus.prepare_source("feedback").await.unwrap();
        let relay =
            banso_events::outbox::Relay::new(conn.clone(), bus, "feedback", Default::default(), Default::default());
        Feedback { conn, relay, _db: db }
    }

    async fn publish(&self, env: &banso_events::Envelope) {
        banso_events::outbox::record(&self.conn, env).await.unwrap();
        assert_eq!(self.relay.publish_pending().await.unwrap(), 1);
    }
}

/// Feedback's SurveyAnswered on the bus: the account's survey measures
/// follow each contact's latest answer within the window, and a scorecard
/// weighting them scores the account from them; the aging pass clears what
/// aged out.
#[tokio::test]
async fn survey_answers_on_the_bus_become_measures_a_scorecard_scores() {
    use banso_proto::feedback::SurveyKind as K;

    use crate::testing::survey_answered as answered;
    let (app, conn) = service().await;
    let feedback = Feedback::new(&app).await;
    let admin = client(&app, "acme", Role::Admin);
    let weighted = |measure: &str, min: f64, max: f64| pb::WeightedMeasure {
        measure: measure.into(),
        weight: 1.0,
        normalisation: linear(min, max),
        ..Default::default()
    };
    let card = pb::Scorecard {
        name: "voice of the customer".into(),
        measures: vec![weighted("external:nps", 0.0, 10.0), weighted("external:csat", 1.0, 5.0)],
        ..Default::default()
    };
    let r = pb::CreateScorecardRequest { scorecard: Some(card), request_id: String::new() };
    admin.clone().create_scorecard(r).await.unwrap();
    let a = seed_account(&conn, "acme", "Surveyed").await;
    let now = Utc::now();
    let ago = |d: i64| now - chrono::Duration::days(d);
    let raw = |h: &pb::AccountHealth| -> Vec<Option<f64>> { h.contributions.iter().map(|c| c.raw).collect() };

    // Two contacts answer NPS 9 and 5: external:nps 7 → 70 points, CSAT
    // missing (skipped): 70.
    feedback.publish(&answered("acme", a, "c1", K::Nps, Some(9), ago(100))).await;
    let c2 = answered("acme", a, "c2", K::Nps, Some(5), ago(99));
    feedback.publish(&c2).await;
    let h = health_until(&admin, a, |h| h.score == 70.0).await;
    assert_eq!(raw(&h), [Some(7.0), None]);
    // The first answers again: (3 + 5) / 2 = 4.
    let c1 = answered("acme", a, "c1", K::Nps, Some(3), ago(98));
    feedback.publish(&c1).await;
    health_until(&admin, a, |h| raw(h) == [Some(4.0), None]).await;
    // Its older answer delivered late is not counted, then CSAT 4 and 2
    // (3 → 50 points): (40 + 50) / 2 = 45 (with the late answer, nps
    // would be 7.5 and the score 62.5).
    feedback.publish(&answered("acme", a, "c1", K::Nps, Some(10), ago(150))).await;
    feedback.publish(&answered("acme", a, "c1", K::Csat, Some(4), ago(0))).await;
    feedback.publish(&answered("acme", a, "c2", K::Csat, Some(2), ago(0))).await;
    let h = health_until(&admin, a, |h| raw(h).get(1) == Some(&Some(3.0))).await;
    assert_eq!((raw(&h), h.score), (vec![Some(4.0), Some(3.0)], 45.0));
    // The same answer again (Feedback re-sent it), an answer older than the
    // window (0, 200 days ago) and a CUSTOM one change nothing; then a third
    // contact's 10: (3 + 5 + 10) / 3 = 6 → 60 points, score 55.
    feedback.publish(&banso_events::Envelope { id: uuid::Uuid::now_v7().to_string(), ..c1.clone() }).await;
    feedback.publish(&answered("acme", a, "c3", K::Nps, Some(0), ago(200))).await;
    feedback.publish(&answered("acme", a, "c3", K::Custom, Some(1), ago(0))).await;
    feedback.publish(&answered("acme", a, "c4", K::Nps, Some(10), ago(97))).await;
    let h = health_until(&admin, a, |h| raw(h).first() == Some(&Some(6.0))).await;
    assert_eq!((raw(&h), h.score), (vec![Some(6.0), Some(3.0)], 55.0));

    // 90 days on, the window starts 90 days ago: every NPS answer aged out
    // (the pass as the running service's hourly task runs it), so NPS is
    // missing and the account scores on CSAT alone.
    let db = banso_events::Db::new(conn.clone(), Default::default(), crate::NAME);
    let window = chrono::Duration::days(180);
    let later = now + chrono::Duration::days(90);
    let scorer = crate::scorer::Scorer::idle();
    assert_eq!(crate::surveys::age_out(&db, &scorer, window, later).await.unwrap(), 1);
    assert_eq!(crate::surveys::age_out(&db, &scorer, window, later).await.unwrap(), 0);
    recompute(&admin).await;
    let h = health_until(&admin, a, |h| raw(h).first() == Some(&None)).await;
    assert_eq!((raw(&h), h.score), (vec![None, Some(3.0)], 50.0));
}
