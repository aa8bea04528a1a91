//! Health's metrics on the admin port (docs/operations.md): every counter
//! is there, at zero, before the first event, and ingest counts what became
//! of each event. (A test binary of its own: the metrics recorder is the
//! process's, so no other test may ingest beside it.)

mod health;

use banso_proto::health as pb;
use banso_testkit::{TestRole as Role, eventually};
use health::{WAIT, account, http_get, usage};

/// The value of the sample `name` (with its labels as written) in a
/// Prometheus text exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn ingest_counts_accepted_duplicate_and_rejected_events_from_zero() {
    let app = health::spawn().await;
    let admin = app.admin_addr.expect("admin port");
    let accepted = r#"banso_health_ingested_events_total{outcome="accepted"}"#;
    let duplicate = r#"banso_health_ingested_events_total{outcome="duplicate"}"#;
    let rejected = r#"banso_health_ingested_events_total{outcome="rejected"}"#;
    let rolled_up = "banso_health_rolled_up_events_total";

    let text = http_get(admin, "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    for name in [accepted, duplicate, rejected, rolled_up] {
        assert_eq!(sample(&text, name), Some(0.0), "{name} at zero before the first event:\n{text}");
    }

    let a = account(&app, "acme", "Counted", "crm-c").await;
    let mut h = health::health(&app, "acme", Role::Service);
    let events = vec![
        usage("e1", &a, "u", "login"),
        usage("e2", &a, "u", "login"),
        usage("e2", &a, "u", "login"),
        usage("bad", &a, "u", "has space"),
    ];
    let r = h.batch_ingest_usage(pb::BatchIngestUsageRequest { events }).await.unwrap().into_inner();
    assert_eq!((r.accepted, r.duplicates, r.rejected), (2, 1, 1));
    let r = h
        .batch_ingest_usage(pb::BatchIngestUsageRequest { events: vec![usage("e1", &a, "u", "login")] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.accepted, r.duplicates, r.rejected), (0, 1, 0));

    let text = http_get(admin, "/metrics").await;
    assert_eq!(sample(&text, accepted), Some(2.0), "{text}");
    assert_eq!(sample(&text, duplicate), Some(2.0), "{text}");
    assert_eq!(sample(&text, rejected), Some(1.0), "{text}");
    // The rollups catch up with what was accepted: the comparison
    // docs/operations.md tells operators to watch.
    eventually("the rollups to count the accepted events", WAIT, || async {
        let text = http_get(admin, "/metrics").await;
        (sample(&text, rolled_up) == Some(2.0)).then_some(())
    })
    .await;
}
