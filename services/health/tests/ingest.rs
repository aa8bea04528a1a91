//! Usage ingest through a real gRPC client: idempotency, late and rejected
//! events, unknown accounts, day buckets in the tenant's time zone, distinct
//! users, external measures. Accounts runs beside Health on one bus, so the
//! projection Health scores against comes from real Accounts events.

mod common;

use std::time::Duration;

use banso_proto::{accounts as apb, health as pb};
use banso_testkit::TestRole as Role;
use chrono::{DateTime, Timelike, Utc};
use common::{Health, account, accounts, health, health_db, rolled_up, rows, spawn};
use tonic::Code;

fn ts(t: DateTime<Utc>) -> Option<pbjson_types::Timestamp> {
    Some(pbjson_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
}

fn event(id: &str, account_id: &str, user: &str, name: &str, at: DateTime<Utc>) -> pb::UsageEvent {
    pb::UsageEvent {
        event_id: id.into(),
        account_id: account_id.into(),
        user_id: user.into(),
        event_name: name.into(),
        timestamp: ts(at),
        ..Default::default()
    }
}

async fn batch(h: &mut Health, events: Vec<pb::UsageEvent>) -> pb::IngestUsageResponse {
    h.batch_ingest_usage(pb::BatchIngestUsageRequest { events }).await.unwrap().into_inner()
}

fn summary(r: &pb::IngestUsageResponse) -> (i64, i64, i64) {
    (r.accepted, r.duplicates, r.rejected)
}

#[tokio::test]
async fn the_same_event_id_counts_once_across_batches_streams_and_retries() {
    let app = spawn().await;
    let a = account(&app, "acme", "株式会社ユーセージ", "crm-1").await;
    let mut h = health(&app, "acme", Role::Service);
    let now = Utc::now() - chrono::Duration::minutes(1);
    let three: Vec<_> = (1..=3).map(|i| event(&format!("e{i}"), &a, "u1", "report_exported", now)).collect();
    assert_eq!(summary(&batch(&mut h, three.clone()).await), (3, 0, 0));
    // A retry of the whole batch stores nothing more.
    assert_eq!(summary(&batch(&mut h, three).await), (0, 3, 0));
    // A stream mixing a duplicate and a new event, and one id twice in a batch.
    let msgs = vec![
        pb::IngestUsageRequest {
            events: vec![event("e3", &a, "u2", "report_exported", now), event("e4", &a, "u2", "login", now)],
        },
        pb::IngestUsageRequest {
            events: vec![event("e5", &a, "u3", "login", now), event("e5", &a, "u3", "login", now)],
        },
    ];
    let r = h.ingest_usage(futures::stream::iter(msgs)).await.unwrap().into_inner();
    assert_eq!(summary(&r), (2, 2, 0));

    // The rollups hold each event once: 3 report_exported by u1, login by u2 and u3.
    let db = health_db(&app).await;
    rolled_up(&db).await;
    let usage = rows(&db, "SELECT event_name, events FROM daily_usage ORDER BY event_name").await;
    let got: Vec<(String, i64)> =
        usage.iter().map(|r| (r.try_get("", "event_name").unwrap(), r.try_get("", "events").unwrap())).collect();
    assert_eq!(got, [("login".to_string(), 2), ("report_exported".to_string(), 3)]);
    let users = rows(&db, "SELECT event_name, user_key FROM daily_users ORDER BY event_name, user_key").await;
    assert_eq!(users.len(), 3, "login by u2 and u3, report_exported by u1");
    let raw = rows(&db, "SELECT event_id FROM usage_events").await;
    assert_eq!(raw.len(), 5);
}

#[tokio::test]
async fn late_future_unknown_and_invalid_events_are_rejected_one_by_one() {
    let app = spawn().await;
    let a = account(&app, "acme", "A", "crm-a").await;
    let theirs = account(&app, "globex", "Globex's", "crm-g").await;
    let mut h = health(&app, "acme", Role::Service);
    let now = Utc::now();
    let mut by_external = event("ext", "", "u", "login", now);
    by_external.account_external_id = "crm-a".into();
    let mut unknown_external = event("ext-unknown", "", "u", "login", now);
    unknown_external.account_external_id = "crm-nobody".into();
    let mut bad_quantity = event("bad-qty", &a, "u", "login", now);
    bad_quantity.quantity = Some(-1.0);
    let mut bad_duration = event("bad-dur", &a, "u", "login", now);
    bad_duration.duration_seconds = Some(f64::NAN);
    let mut no_time = event("no-time", &a, "u", "login", now);
    no_time.timestamp = None;
    let events = vec![
        event("ok-late", &a, "u", "login", now - chrono::Duration::days(6)),
        event("too-old", &a, "u", "login", now - chrono::Duration::days(8)),
        event("future", &a, "u", "login", now + chrono::Duration::hours(1)),
        event("unknown", &uuid::Uuid::now_v7().to_string(), "u", "login", now),
        event("foreign", &theirs, "u", "login", now),
        by_external,
        unknown_external,
        event("bad-name", &a, "u", "has space", now),
        event("", &a, "u", "login", now),
        event("bad-account", "not-a-uuid", "u", "login", now),
        bad_quantity,
        bad_duration,
        no_time,
    ];
    let r = batch(&mut h, events).await;
    assert_eq!(summary(&r), (2, 0, 11), "{:#?}", r.rejections);
    let got: Vec<(i64, &str, &str)> =
        r.rejections.iter().map(|x| (x.index, x.reason.as_str(), x.field.as_str())).collect();
    assert_eq!(
        got,
        [
            (1, "TOO_OLD", "timestamp"),
            (2, "IN_FUTURE", "timestamp"),
            (3, "UNKNOWN_ACCOUNT", "account_id"),
            (4, "UNKNOWN_ACCOUNT", "account_id"),
            (6, "UNKNOWN_ACCOUNT", "account_id"),
            (7, "INVALID", "event_name"),
            (8, "INVALID", "event_id"),
            (9, "INVALID", "account_id"),
            (10, "INVALID", "quantity"),
            (11, "INVALID", "duration_seconds"),
            (12, "INVALID", "timestamp"),
        ]
    );
    assert!(r.rejections[0].description.contains("late window"), "{:?}", r.rejections[0]);
    // Too large a batch is refused whole, with the field named.
    let many: Vec<_> = (0..5001).map(|i| event(&format!("m{i}"), &a, "u", "login", now)).collect();
    let err = h.batch_ingest_usage(pb::BatchIngestUsageRequest { events: many }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // Roles and tokens.
    let mut viewer = health(&app, "acme", Role::Viewer);
    let err = viewer.batch_ingest_usage(pb::BatchIngestUsageRequest { events: vec![] }).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let mut anonymous = pb::health_service_client::HealthServiceClient::new(app.channel.clone());
    let err = anonymous.batch_ingest_usage(pb::BatchIngestUsageRequest { events: vec![] }).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn days_are_cut_in_the_tenant_time_zone() {
    let app = spawn().await;
    let a = account(&app, "acme", "東京の会社", "crm-t").await;
    accounts(&app, "acme")
        .update_tenant_settings(apb::UpdateTenantSettingsRequest {
            settings: Some(apb::TenantSettings { time_zone: "Asia/Tokyo".into(), ..Default::default() }),
            update_mask: Some(pbjson_types::FieldMask { paths: vec!["time_zone".into()] }),
        })
        .await
        .unwrap();
    let db = health_db(&app).await;
    for _ in 0..200 {
        if !rows(&db, "SELECT time_zone FROM tenants WHERE time_zone = 'Asia/Tokyo'").await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // 16:30 UTC, within the last day: already the next day in Tokyo (UTC+9).
    let mut t = (Utc::now() - chrono::Duration::hours(24)).with_minute(30).unwrap().with_second(0).unwrap();
    while t.hour() != 16 {
        t += chrono::Duration::hours(1);
    }
    let mut h = health(&app, "acme", Role::Service);
    assert_eq!(summary(&batch(&mut h, vec![event("tz-1", &a, "u", "login", t)]).await), (1, 0, 0));
    rolled_up(&db).await;
    let day: chrono::NaiveDate = rows(&db, "SELECT day FROM daily_usage").await[0].try_get("", "day").unwrap();
    assert_eq!(day, t.date_naive().succ_opt().unwrap(), "{t} is {day} in Tokyo");
}

#[tokio::test]
async fn external_measures_are_set_cleared_and_checked() {
    let app = spawn().await;
    let a = account(&app, "acme", "A", "crm-m").await;
    let mut h = health(&app, "acme", Role::Service);
    let set = |measure: &str, value: Option<f64>| pb::SetMeasureValueRequest {
        account_id: a.clone(),
        measure: measure.into(),
        value,
        observe_time: None,
    };
    let r = h.set_measure_value(set("nps", Some(42.0))).await.unwrap().into_inner();
    assert_eq!((r.measure.as_str(), r.value), ("external:nps", Some(42.0)));
    let db = health_db(&app).await;
    let stored = rows(&db, "SELECT value FROM measure_values WHERE measure = 'nps'").await;
    assert_eq!(stored[0].try_get::<f64>("", "value").unwrap(), 42.0);
    h.set_measure_value(set("nps", None)).await.unwrap();
    assert!(rows(&db, "SELECT value FROM measure_values WHERE measure = 'nps'").await.is_empty());

    for (bad, field) in
        [(set("NPS", Some(1.0)), "measure"), (set("", Some(1.0)), "measure"), (set("x", Some(f64::INFINITY)), "value")]
    {
        let err = h.set_measure_value(bad).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(field), "{}", err.message());
    }
    let err = h
        .set_measure_value(pb::SetMeasureValueRequest {
            account_id: uuid::Uuid::now_v7().to_string(),
            ..set("nps", Some(1.0))
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // Another tenant's account is not found either.
    let mut other = health(&app, "globex", Role::Service);
    assert_eq!(other.set_measure_value(set("nps", Some(1.0))).await.unwrap_err().code(), Code::NotFound);
}

#[tokio::test]
async fn a_batch_nobody_announced_is_rolled_up_by_the_running_service() {
    // A batch stored without waking this replica's rollup task: one that
    // another replica acknowledged just before it stopped, say. The task
    // looks for pending batches on its own and folds it.
    let app = spawn().await;
    let a = account(&app, "acme", "A", "crm-r").await;
    let db = health_db(&app).await;
    let other_replica = banso_health::store::Store::new(db.clone(), Default::default());
    let now = Utc::now() - chrono::Duration::minutes(1);
    let stored_elsewhere = banso_health::store::AcceptedEvent {
        event_id: "from-elsewhere".into(),
        account_id: a.parse().unwrap(),
        user_key: "u1".into(),
        event_name: "login".into(),
        occur_time: now,
        day: now.date_naive(),
        quantity: 1.0,
        duration_secs: None,
        properties: serde_json::json!({}),
    };
    let stored = other_replica.ingest("acme", &[stored_elsewhere]).await.unwrap();
    assert_eq!(stored.len(), 1);
    rolled_up(&db).await;
    let usage = rows(&db, "SELECT events FROM daily_usage WHERE event_name = 'login'").await;
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].try_get::<i64>("", "events").unwrap(), 1);
    // And the service counts the same id as a duplicate from then on.
    let mut h = health(&app, "acme", Role::Service);
    let r = batch(&mut h, vec![event("from-elsewhere", &a, "u1", "login", now)]).await;
    assert_eq!(summary(&r), (0, 1, 0));
}
