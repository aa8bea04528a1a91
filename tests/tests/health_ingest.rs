//! Usage ingest through a real gRPC client: idempotency, late and rejected
//! events, unknown accounts, day buckets in the tenant's time zone, distinct
//! users, external measures. Accounts runs beside Health on one bus, so the
//! projection Health scores against comes from real Accounts events; what
//! ingest stored is read back through the scores it makes.

mod health;

use banso_proto::{accounts as apb, health as pb};
use banso_testkit::TestRole as Role;
use chrono::{DateTime, Timelike, Utc};
use health::{Health, account, accounts, create_scorecard, health_until, linear, measure, raw, ts};
use tonic::Code;

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

/// A scorecard whose explanation shows each measure's raw value.
fn showing(measures: &[&str]) -> pb::Scorecard {
    pb::Scorecard {
        name: "Shows the raw values".into(),
        measures: measures.iter().map(|m| measure(m, 1.0, linear(0.0, 100.0))).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_same_event_id_counts_once_across_batches_streams_and_retries() {
    let app = health::spawn().await;
    let a = account(&app, "acme", "株式会社ユーセージ", "crm-1").await;
    let mut h = health::health(&app, "acme", Role::Service);
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

    // The rollups hold each event once: 3 report_exported by u1, login by u2
    // and u3; three distinct users across the names.
    let admin = health::health(&app, "acme", Role::Admin);
    create_scorecard(&admin, showing(&["events_7d:report_exported", "events_7d:login", "active_users_7d"])).await;
    let got = health_until(&admin, &a, |h| raw(h, "events_7d:login") == Some(2.0)).await;
    assert_eq!(raw(&got, "events_7d:report_exported"), Some(3.0));
    assert_eq!(raw(&got, "active_users_7d"), Some(3.0));
}

/// A stream's messages are stored two at a time: the outcome still counts
/// every event once, numbers rejections across the stream in order, and an
/// id repeated in the next message (stored beside it) is one duplicate.
#[tokio::test]
async fn a_long_stream_is_counted_and_numbered_in_stream_order() {
    let app = health::spawn().await;
    let a = account(&app, "acme", "A", "crm-a").await;
    let mut h = health::health(&app, "acme", Role::Service);
    let now = Utc::now() - chrono::Duration::minutes(1);
    let msgs: Vec<pb::IngestUsageRequest> = (0..8)
        .map(|m| {
            let mut events: Vec<_> = (0..50).map(|i| event(&format!("m{m}-{i}"), &a, "u", "login", now)).collect();
            // Event 10 of each message is invalid; event 20 repeats an id of
            // the message before (stored at the same time, or just before).
            events[10].event_name = "not valid".into();
            if m > 0 {
                events[20].event_id = format!("m{}-30", m - 1);
            }
            pb::IngestUsageRequest { events }
        })
        .collect();
    let r = h.ingest_usage(futures::stream::iter(msgs.clone())).await.unwrap().into_inner();
    assert_eq!(summary(&r), (8 * 49 - 7, 7, 8), "{:#?}", r.rejections);
    let got: Vec<(i64, &str, &str)> =
        r.rejections.iter().map(|x| (x.index, x.event_id.as_str(), x.reason.as_str())).collect();
    let want: Vec<(i64, String)> = (0..8).map(|m| (m * 50 + 10, format!("m{m}-10"))).collect();
    assert_eq!(got, want.iter().map(|(i, id)| (*i, id.as_str(), "INVALID")).collect::<Vec<_>>());
    // The same stream again: all duplicates, the same rejections.
    let again = h.ingest_usage(futures::stream::iter(msgs)).await.unwrap().into_inner();
    assert_eq!(summary(&again), (0, 8 * 49, 8));

    let admin = health::health(&app, "acme", Role::Admin);
    create_scorecard(&admin, showing(&["events_7d:login"])).await;
    health_until(&admin, &a, |h| raw(h, "events_7d:login") == Some((8 * 49 - 7) as f64)).await;
}

#[tokio::test]
async fn late_future_unknown_and_invalid_events_are_rejected_one_by_one() {
    let app = health::spawn().await;
    let a = account(&app, "acme", "A", "crm-a").await;
    let theirs = account(&app, "globex", "Globex's", "crm-g").await;
    let mut h = health::health(&app, "acme", Role::Service);
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
    // A huge value is echoed cut short.
    let huge = event(&"x".repeat(10_000), &a, "u", "login", now);
    let r = batch(&mut h, vec![huge]).await;
    assert_eq!(summary(&r), (0, 0, 1));
    assert!(r.rejections[0].description.len() < 200, "{}", r.rejections[0].description);
    // Too large a batch is refused whole, with the field named.
    let many: Vec<_> = (0..5001).map(|i| event(&format!("m{i}"), &a, "u", "login", now)).collect();
    let err = h.batch_ingest_usage(pb::BatchIngestUsageRequest { events: many }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // Roles and tokens.
    let mut viewer = health::health(&app, "acme", Role::Viewer);
    let err = viewer.batch_ingest_usage(pb::BatchIngestUsageRequest { events: vec![] }).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let mut anonymous = pb::health_service_client::HealthServiceClient::new(app.channel.clone());
    let err = anonymous.batch_ingest_usage(pb::BatchIngestUsageRequest { events: vec![] }).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn days_are_cut_in_the_tenant_time_zone() {
    let app = health::spawn().await;
    let tokyo = chrono_tz::Asia::Tokyo;
    let mut acc = accounts(&app, "acme");
    acc.update_tenant_settings(apb::UpdateTenantSettingsRequest {
        settings: Some(apb::TenantSettings { time_zone: "Asia/Tokyo".into(), ..Default::default() }),
        update_mask: Some(pbjson_types::FieldMask { paths: vec!["time_zone".into()] }),
    })
    .await
    .unwrap();
    // Accounts' events reach Health in order: once it knows an account
    // created after the change, it knows the time zone too.
    let a = account(&app, "acme", "東京の会社", "crm-t").await;
    // 16:30 UTC, within the last day: already the next day in Tokyo (UTC+9).
    let mut t = (Utc::now() - chrono::Duration::hours(24)).with_minute(30).unwrap().with_second(0).unwrap();
    while t.hour() != 16 {
        t += chrono::Duration::hours(1);
    }
    let mut h = health::health(&app, "acme", Role::Service);
    assert_eq!(summary(&batch(&mut h, vec![event("tz-1", &a, "u", "login", t)]).await), (1, 0, 0));
    // Days ago in Tokyo: 0 or 1. Bucketed by the UTC day it would be one more.
    let today = Utc::now().with_timezone(&tokyo).date_naive();
    let ago = (today - t.with_timezone(&tokyo).date_naive()).num_days();
    assert!((0..=1).contains(&ago), "{t} is {ago} days before {today} in Tokyo");
    let admin = health::health(&app, "acme", Role::Admin);
    create_scorecard(&admin, showing(&["events_1d:login", "events_2d:login"])).await;
    // The score that counts the event: two days hold it whichever day it lands on.
    let got = health_until(&admin, &a, |h| raw(h, "events_2d:login") == Some(1.0)).await;
    let within = |days: i64| raw(&got, &format!("events_{days}d:login"));
    assert_eq!(within(ago + 1), Some(1.0), "{t} lands {ago} days before {today}, Tokyo's today");
    if ago == 1 {
        assert_eq!(within(1), Some(0.0), "{t} is not Tokyo's today");
    }
}

#[tokio::test]
async fn external_measures_are_set_cleared_and_checked() {
    let app = health::spawn().await;
    let a = account(&app, "acme", "A", "crm-m").await;
    let mut h = health::health(&app, "acme", Role::Service);
    let set = |measure: &str, value: Option<f64>| pb::SetMeasureValueRequest {
        account_id: a.clone(),
        measure: measure.into(),
        value,
        observe_time: None,
    };
    let r = h.set_measure_value(set("nps", Some(42.0))).await.unwrap().into_inner();
    assert_eq!((r.measure.as_str(), r.value), ("external:nps", Some(42.0)));
    // What is stored scores: 42 of 0..100.
    let admin = health::health(&app, "acme", Role::Admin);
    create_scorecard(&admin, showing(&["external:nps"])).await;
    let got = health_until(&admin, &a, |h| h.score == 42.0).await;
    assert_eq!(raw(&got, "external:nps"), Some(42.0));
    // Cleared, the only measure is missing: no score.
    h.set_measure_value(set("nps", None)).await.unwrap();
    health::unscored(&admin, &a).await;

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
    let mut other = health::health(&app, "globex", Role::Service);
    assert_eq!(other.set_measure_value(set("nps", Some(1.0))).await.unwrap_err().code(), Code::NotFound);
}
