//! The daily digest driven round by round at a given `now` on one
//! database, as replicas would: once per subscription and day (also with
//! two replicas at once), at the tenant's digest time in its time zone,
//! the days missed while down caught up after a restart, and the bounded
//! NoticeIssued of a large digest.

use banso_events::{Db, Envelope, Payload};
use banso_kit::auth::{Caller, Role};
use chrono::{DateTime, NaiveDate, Utc};
use prost::Message as _;
use sea_orm::EntityTrait as _;
use uuid::Uuid;

use super::NewSubscription;
use crate::{
    app::App,
    domain::{
        routing::{Notice, NoticeKind, Subscription},
        voice::{Channel, Department, Item, ItemFields, ItemSnapshot, VoiceSettings},
    },
    store,
};

const TENANT: &str = "acme";

async fn app(db: &banso_testkit::TestDb) -> App {
    let conn = db.connect::<crate::migration::Migrator>(crate::NAME).await.unwrap();
    App::new(
        Db::new(conn, Default::default(), crate::NAME),
        crate::domain::token::Signer::new(b"routing-tests-token-secret-0123456789"),
        "",
    )
}

fn admin() -> Caller {
    Caller { tenant_id: TENANT.into(), subject: "test-admin".into(), roles: vec![Role::Admin] }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// A tenant in Tokyo with its digest at `at`.
async fn tokyo(app: &App, at: &str) {
    let conn = app.db.conn();
    store::tenants::set_calendar(conn, TENANT, "Asia/Tokyo", 4).await.unwrap();
    let settings = VoiceSettings { digest_time: at.into(), ..Default::default() };
    store::tenants::set_voice_settings(conn, TENANT, &settings).await.unwrap();
}

/// A subscription made at `created`.
async fn subscribe(
    app: &App,
    department: Department,
    category: &str,
    endpoint: Option<Uuid>,
    created: &str,
) -> Subscription {
    let cmd = NewSubscription {
        department,
        category: category.into(),
        theme_id: None,
        min_severity: 0,
        endpoint_id: endpoint,
    };
    let s = app.create_subscription(&admin(), cmd).await.unwrap();
    // Made earlier than the test's clock: the digests of its first days are owed.
    let s = Subscription { create_time: utc(created), ..s };
    app.db
        .write(TENANT, async |tx| {
            store::routing::delete_subscription(tx.conn(), tx.tenant(), s.id).await?;
            store::routing::insert_subscription(tx.conn(), tx.tenant(), &s).await
        })
        .await
        .unwrap();
    s
}

/// Items recorded at `at` (as the items slice stores them).
async fn record(app: &App, department: Department, category: &str, at: &str, n: usize) -> Vec<Uuid> {
    let items: Vec<Item> = (0..n)
        .map(|k| Item {
            id: Uuid::now_v7(),
            fields: ItemFields {
                text: format!("{}件目: CSVの出力が遅い。{}", k + 1, "長い説明。".repeat(300)),
                channel: Channel::SupportTicket,
                account_id: Uuid::now_v7(),
                contact_id: None,
                department,
                category: category.into(),
                cx_dimension: None,
                journey_phase: None,
                severity: 3,
                mention_time: None,
            },
            snapshot: ItemSnapshot::default(),
            theme_ids: vec![],
            answer_id: None,
            create_time: utc(at),
            created_by: "test".into(),
        })
        .collect();
    app.db.write(TENANT, async |tx| store::voice::insert_items(tx.conn(), tx.tenant(), &items).await).await.unwrap();
    items.iter().map(|i| i.id).collect()
}

async fn digests(app: &App) -> Vec<Notice> {
    let mut out = app.list_notices(&admin(), None, Some(NoticeKind::Digest), None, 1000).await.unwrap();
    out.sort_by_key(|n| (n.subscription_id, n.day));
    out
}

/// The NoticeIssued events in the outbox.
async fn issued(app: &App) -> Vec<banso_proto::events::NoticeIssued> {
    banso_events::outbox::entity::Entity::find()
        .all(app.db.conn())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match Envelope::decode(m.payload.as_slice()).unwrap().payload {
            Some(Payload::NoticeIssued(e)) => Some(e),
            _ => None,
        })
        .collect()
}

async fn last_day(app: &App, s: &Subscription) -> Option<NaiveDate> {
    let all = store::routing::subscriptions(app.db.conn(), TENANT, None).await.unwrap();
    all.into_iter().find(|x| x.id == s.id).and_then(|x| x.last_digest_day)
}

#[tokio::test]
async fn a_digest_comes_once_a_day_at_the_tenants_digest_time_also_with_two_replicas() {
    let db = banso_testkit::fresh_database().await.unwrap();
    let (one, two) = (app(&db).await, app(&db).await);
    tokyo(&one, "09:30").await;
    let endpoint = Uuid::now_v7();
    let product = subscribe(&one, Department::Product, "", Some(endpoint), "2026-12-01T00:00:00Z").await;
    let export = subscribe(&one, Department::Product, "Export", None, "2026-12-01T00:00:00Z").await;
    let sales = subscribe(&one, Department::Sales, "", None, "2026-12-01T00:00:00Z").await;
    // 2026-12-05 in Tokyo is 12-04T15:00Z to 12-05T15:00Z.
    let before = record(&one, Department::Product, "export", "2026-12-04T14:59:59Z", 1).await;
    let first = record(&one, Department::Product, "export", "2026-12-04T15:00:00Z", 1).await;
    let other = record(&one, Department::Product, "billing", "2026-12-05T03:00:00Z", 1).await;
    let last = record(&one, Department::Product, "EXPORT", "2026-12-05T14:59:59Z", 1).await;
    let after = record(&one, Department::Product, "export", "2026-12-05T15:00:00Z", 1).await;
    // 12-06 09:29 in Tokyo: the 5th's digest is not due yet (the 4th's is, with one item).
    assert_eq!(one.digest_round(utc("2026-12-06T00:29:00Z")).await.unwrap(), 2);
    let ds = digests(&one).await;
    assert!(ds.iter().all(|n| n.day == Some(date("2026-12-04")) && n.item_ids == before), "{ds:?}");
    // 09:30: the two replicas run the round at once; each digest is written once.
    let now = utc("2026-12-06T00:30:00Z");
    let (a, b) = tokio::join!(one.digest_round(now), two.digest_round(now));
    assert_eq!(a.unwrap() + b.unwrap(), 2, "one product digest, one export digest; sales had nothing");
    let ds: Vec<Notice> = digests(&one).await.into_iter().filter(|n| n.day == Some(date("2026-12-05"))).collect();
    assert_eq!(ds.len(), 2, "{ds:?}");
    let of = |s: &Subscription| ds.iter().find(|n| n.subscription_id == s.id).unwrap().clone();
    let mut all = [first.clone(), other.clone(), last.clone()].concat();
    all.sort();
    assert_eq!(of(&product).item_ids, all, "the local day's items, none of the days around it");
    assert_eq!(of(&product).department, Department::Product);
    assert_eq!(of(&export).item_ids, [first, last].concat(), "categories compare without case");
    assert!(!ds.iter().any(|n| n.subscription_id == sales.id), "a day without items sends no digest");
    assert!(!of(&product).item_ids.contains(&after[0]));
    // Again (a later tick, a restarted replica): nothing more.
    assert_eq!(two.digest_round(utc("2026-12-06T10:00:00Z")).await.unwrap(), 0);
    assert_eq!(last_day(&one, &product).await, Some(date("2026-12-05")));
    assert_eq!(last_day(&one, &sales).await, Some(date("2026-12-05")), "an empty day is done too");
    // Only the endpoint's subscription is delivered through Playbooks, once per digest.
    let events = issued(&one).await;
    assert_eq!(events.len(), 2, "the 4th's and the 5th's product digests");
    let e = events.iter().find(|e| e.day == Some(banso_kit::wire::date_to_proto(date("2026-12-05")))).unwrap();
    assert_eq!(e.endpoint_id, endpoint.to_string());
    assert_eq!(e.subscription_id, product.id.to_string());
    assert_eq!(e.kind, banso_proto::feedback::NoticeKind::Digest as i32);
    assert_eq!(e.department, banso_proto::feedback::Department::Product as i32);
    assert_eq!(e.items_total, 3);
    assert_eq!(
        e.items.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        all.iter().map(|i| i.to_string()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn missed_days_are_caught_up_after_a_restart_and_a_large_digest_is_bounded() {
    let db = banso_testkit::fresh_database().await.unwrap();
    let app1 = app(&db).await;
    tokyo(&app1, "08:00").await;
    let endpoint = Uuid::now_v7();
    let s = subscribe(&app1, Department::Support, "", Some(endpoint), "2026-12-01T00:00:00Z").await;
    record(&app1, Department::Support, "", "2026-12-02T01:00:00Z", 1).await;
    assert_eq!(app1.digest_round(utc("2026-12-03T00:00:00Z")).await.unwrap(), 1, "the 2nd's");
    assert_eq!(last_day(&app1, &s).await, Some(date("2026-12-02")));
    // Down from the 3rd to the 7th: items of the 3rd, the 4th (150 of them) and the 6th.
    record(&app1, Department::Support, "", "2026-12-03T01:00:00Z", 2).await;
    let many = record(&app1, Department::Support, "", "2026-12-04T01:00:00Z", 150).await;
    record(&app1, Department::Support, "", "2026-12-06T01:00:00Z", 1).await;
    drop(app1);
    let app2 = app(&db).await;
    // Up again on the 7th at 10:00 in Tokyo: the 3rd to the 6th are owed.
    assert_eq!(app2.digest_round(utc("2026-12-07T01:00:00Z")).await.unwrap(), 3, "the 3rd, the 4th and the 6th");
    let days: Vec<Option<NaiveDate>> = digests(&app2).await.iter().map(|n| n.day).collect();
    assert_eq!(
        days,
        ["2026-12-02", "2026-12-03", "2026-12-04", "2026-12-06"].map(|d| Some(date(d))).to_vec(),
        "the 5th had no items"
    );
    assert_eq!(last_day(&app2, &s).await, Some(date("2026-12-06")));
    let big = digests(&app2).await.into_iter().find(|n| n.day == Some(date("2026-12-04"))).unwrap();
    assert_eq!(big.item_ids, many, "the notice keeps every item");
    let e = issued(&app2)
        .await
        .into_iter()
        .find(|e| e.day == Some(banso_kit::wire::date_to_proto(date("2026-12-04"))))
        .unwrap();
    assert_eq!(e.items_total, 150);
    assert_eq!(e.items.len(), 100, "the event carries the first 100");
    assert_eq!(e.items[0].id, many[0].to_string());
    assert!(e.items.iter().all(|i| i.text.chars().count() <= crate::events::DIGEST_TEXT_CHARS));
    // Down for a month: a week is caught up, no more.
    for day in ["2026-12-10T01:00:00Z", "2026-12-20T01:00:00Z", "2026-12-30T01:00:00Z"] {
        record(&app2, Department::Support, "", day, 1).await;
    }
    assert_eq!(
        app2.digest_round(utc("2027-01-05T01:00:00Z")).await.unwrap(),
        1,
        "of the three, only the 30th is within a week"
    );
    assert_eq!(last_day(&app2, &s).await, Some(date("2027-01-04")));
}

#[tokio::test]
async fn a_subscription_made_today_owes_no_digest_of_the_days_before() {
    let db = banso_testkit::fresh_database().await.unwrap();
    let app = app(&db).await;
    record(&app, Department::Billing, "", "2026-12-04T12:00:00Z", 1).await;
    let s = subscribe(&app, Department::Billing, "", None, "2026-12-05T12:00:00Z").await;
    // UTC, 08:00 by default.
    assert_eq!(app.digest_round(utc("2026-12-06T07:59:00Z")).await.unwrap(), 0);
    assert_eq!(last_day(&app, &s).await, None);
    record(&app, Department::Billing, "", "2026-12-05T13:00:00Z", 1).await;
    assert_eq!(app.digest_round(utc("2026-12-06T08:00:00Z")).await.unwrap(), 1);
    assert_eq!(digests(&app).await[0].day, Some(date("2026-12-05")));
    assert!(issued(&app).await.is_empty(), "stored and listable only: no endpoint");
}
