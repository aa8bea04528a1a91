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
    testing::{Client, client, seed_account, service},
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
