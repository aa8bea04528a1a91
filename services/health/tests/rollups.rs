//! The ingest's queue and the rollups, at the store: an acknowledged batch
//! is rolled up exactly once, whoever stores the same ids at once, whether
//! the rollup task runs now or after a restart, and pruning never takes the
//! events of a batch still waiting. No rollup task runs here: each test
//! rolls up by hand, when it wants to.

use std::collections::HashSet;

use banso_health::store::{AcceptedEvent, Store};
use chrono::{NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use uuid::Uuid;

async fn store() -> (banso_testkit::TestDb, DatabaseConnection, Store) {
    let db = banso_testkit::fresh_database().await.unwrap();
    let conn = db.connect::<banso_health::migration::Migrator>("health").await.unwrap();
    let store = Store::new(conn.clone(), Default::default());
    (db, conn, store)
}

fn event(id: &str, account: Uuid, user: &str, name: &str, day: NaiveDate) -> AcceptedEvent {
    AcceptedEvent {
        event_id: id.into(),
        account_id: account,
        user_key: user.into(),
        event_name: name.into(),
        occur_time: day.and_hms_opt(12, 0, 0).unwrap().and_utc(),
        day,
        quantity: 1.0,
        duration_secs: None,
        properties: serde_json::json!({"plan": "enterprise", "page": "/reports"}),
    }
}

async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql.to_owned())).await.unwrap()
}

/// (tenant, account, event name, events, quantity, duration) of every daily_usage row, sorted.
async fn usage(db: &DatabaseConnection) -> Vec<(String, Uuid, String, i64, f64, f64)> {
    let mut out: Vec<_> = rows(db, "SELECT * FROM daily_usage")
        .await
        .iter()
        .map(|r| {
            (
                r.try_get("", "tenant_id").unwrap(),
                r.try_get("", "account_id").unwrap(),
                r.try_get("", "event_name").unwrap(),
                r.try_get("", "events").unwrap(),
                r.try_get("", "quantity").unwrap(),
                r.try_get("", "duration_secs").unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| (&a.0, a.1, &a.2).cmp(&(&b.0, b.1, &b.2)));
    out
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    rows(db, sql).await[0].try_get_by_index::<i64>(0).unwrap()
}

fn ids(list: &[&str]) -> HashSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn an_acknowledged_batch_is_rolled_up_once_and_only_when_asked() {
    let (_guard, db, store) = store().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let day = Utc::now().date_naive();
    let mut timed = event("e2", a, "u2", "report_viewed", day);
    timed.quantity = 2.5;
    timed.duration_secs = Some(30.0);
    let batch = vec![
        event("e1", a, "u1", "report_viewed", day),
        timed,
        // The same id again in the batch: the first one counts.
        event("e1", b, "u9", "login", day),
        event("e3", b, "", "login", day),
    ];
    assert_eq!(store.ingest("acme", &batch).await.unwrap(), ids(&["e1", "e2", "e3"]));
    // Acknowledged and stored, not rolled up yet: that is the task's job.
    assert_eq!(count(&db, "SELECT count(*) FROM usage_events").await, 3);
    assert!(usage(&db).await.is_empty());
    assert_eq!(store.pending_rollups().await.unwrap(), (1, 3));

    let done = store.roll_up(16).await.unwrap().expect("a batch was pending");
    assert_eq!((done.batches, done.events), (1, 3));
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(done.touched.get("acme"), Some(&want));
    let (acme, report, login) = ("acme".to_string(), "report_viewed".to_string(), "login".to_string());
    let mut expected = vec![(acme.clone(), a, report, 2, 3.5, 30.0), (acme.clone(), b, login, 1, 1.0, 0.0)];
    expected.sort_by(|x, y| (&x.0, x.1, &x.2).cmp(&(&y.0, y.1, &y.2)));
    assert_eq!(usage(&db).await, expected);
    // Distinct users: u1 and u2 used reports; b's login had no user.
    assert_eq!(count(&db, "SELECT count(*) FROM daily_users").await, 2);
    assert_eq!(count(&db, "SELECT count(*) FROM event_name_days").await, 2);
    assert_eq!(store.pending_rollups().await.unwrap(), (0, 0));

    // Nothing is folded twice, and a retried batch makes no new batch.
    assert!(store.roll_up(16).await.unwrap().is_none());
    assert!(store.ingest("acme", &batch).await.unwrap().is_empty());
    assert_eq!(store.pending_rollups().await.unwrap(), (0, 0));
    assert_eq!(usage(&db).await, expected);

    // Batches of two tenants, rolled up in one round, each into its own tenant.
    let c = Uuid::now_v7();
    store.ingest("acme", &[event("e4", a, "u1", "report_viewed", day)]).await.unwrap();
    store.ingest("globex", &[event("e1", c, "u1", "report_viewed", day)]).await.unwrap();
    assert_eq!(store.pending_rollups().await.unwrap(), (2, 2));
    let done = store.roll_up(16).await.unwrap().unwrap();
    assert_eq!((done.batches, done.events), (2, 2));
    assert_eq!(done.touched.get("acme"), Some(&vec![a]));
    assert_eq!(done.touched.get("globex"), Some(&vec![c]));
    let after = usage(&db).await;
    assert_eq!(after.iter().filter(|r| r.0 == "acme").map(|r| r.3).sum::<i64>(), 4);
    assert_eq!(after.iter().filter(|r| r.0 == "globex").map(|r| r.3).sum::<i64>(), 1);
    // u1 had already used reports that day: no new user row for acme.
    assert_eq!(count(&db, "SELECT count(*) FROM daily_users WHERE tenant_id = 'acme'").await, 2);
}

#[tokio::test]
async fn batches_stored_at_once_with_the_same_new_ids_count_each_id_once() {
    let (_guard, db, store) = store().await;
    let a = Uuid::now_v7();
    let day = Utc::now().date_naive();
    // Eight batches of 200 ids, each overlapping the next by half.
    let batches: Vec<Vec<AcceptedEvent>> = (0..8)
        .map(|i| (i * 100..i * 100 + 200).map(|n| event(&format!("id-{n}"), a, "u", "login", day)).collect())
        .collect();
    let stored = futures::future::join_all(batches.iter().map(|b| store.ingest("acme", b))).await;
    let mut all = HashSet::new();
    let mut acknowledged = 0;
    for s in stored {
        let s = s.expect("a race for an id is retried, not failed");
        acknowledged += s.len();
        all.extend(s);
    }
    assert_eq!((acknowledged, all.len()), (900, 900), "each id stored by exactly one batch");
    while store.roll_up(3).await.unwrap().is_some() {}
    assert_eq!(count(&db, "SELECT count(*) FROM usage_events").await, 900);
    assert_eq!(usage(&db).await.iter().map(|r| r.3).sum::<i64>(), 900);
    let batches = rows(&db, "SELECT events FROM ingest_batches").await;
    assert_eq!(batches.iter().map(|r| r.try_get::<i64>("", "events").unwrap()).sum::<i64>(), 900);
}

#[tokio::test]
async fn pruning_keeps_the_events_of_batches_not_rolled_up() {
    let (_guard, db, store) = store().await;
    let a = Uuid::now_v7();
    let day = Utc::now().date_naive();
    store.ingest("acme", &[event("old-1", a, "u", "login", day), event("old-2", a, "u", "login", day)]).await.unwrap();
    store.roll_up(16).await.unwrap().unwrap();
    store.ingest("acme", &[event("waiting", a, "u", "login", day)]).await.unwrap();

    // Everything is past the cutoff, but the last batch waits for its rollup.
    let cutoff = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(store.prune_raw_events(cutoff, 1_000).await.unwrap(), 2);
    let left = rows(&db, "SELECT event_id FROM usage_events").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].try_get::<String>("", "event_id").unwrap(), "waiting");
    // The pruned batch's row went with its events; the waiting one stays.
    assert_eq!(count(&db, "SELECT count(*) FROM ingest_batches").await, 1);
    assert_eq!(store.pending_rollups().await.unwrap(), (1, 1));

    let done = store.roll_up(16).await.unwrap().unwrap();
    assert_eq!(done.events, 1);
    assert_eq!(usage(&db).await.iter().map(|r| r.3).sum::<i64>(), 3, "pruning kept the counts");
    assert_eq!(store.prune_raw_events(cutoff, 1_000).await.unwrap(), 1);
    assert_eq!(count(&db, "SELECT count(*) FROM ingest_batches").await, 0);
}
