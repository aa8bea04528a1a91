//! Feedback on the Accounts side (issue #15): a theme the account raised
//! was shipped or declined — Feedback's LoopClosed — lands on the account's
//! timeline once, with the contacts that raised it.

use banso_events::Payload;
use banso_proto::{accounts as pb, events as ev, feedback as fpb, types as tpb};
use chrono::{Duration, Utc};

use crate::common::*;

/// Publishes an envelope onto the app's bus, as its source's relay would.
async fn publish(app: &banso_testkit::TestApp, env: &banso_events::Envelope) {
    use prost::Message as _;
    let out = banso_events::bus::Outgoing {
        id: env.id.clone(),
        subject: banso_events::envelope::subject(env),
        payload: env.encode_to_vec().into(),
    };
    app.runtime.bus.prepare_source(&env.source).await.unwrap();
    app.runtime.bus.publish(&[out]).await.unwrap();
}

/// An envelope of Feedback's that occurred `hours_ago`.
fn from_feedback(payload: Payload, hours_ago: i64) -> banso_events::Envelope {
    let mut env = banso_events::envelope::new("acme", "feedback", payload);
    let t = Utc::now() - Duration::hours(hours_ago);
    env.occurred_at = Some(pbjson_types::Timestamp { seconds: t.timestamp(), nanos: 0 });
    env
}

fn closed(account: &str, theme: &str, status: fpb::RoadmapStatus, contacts: &[&str], items: usize) -> Payload {
    Payload::LoopClosed(ev::LoopClosed {
        theme_id: theme.into(),
        display_name: "CSV export".into(),
        status: status as i32,
        account_id: account.into(),
        contact_ids: contacts.iter().map(|c| c.to_string()).collect(),
        item_ids: (0..items).map(|_| uuid::Uuid::now_v7().to_string()).collect(),
        roadmap: Some(fpb::RoadmapLink {
            tracker: "Jira".into(),
            key: "PROD-42".into(),
            url: "https://jira.example.com/browse/PROD-42".into(),
            status: status as i32,
        }),
        owner_id: "csm-1".into(),
        decision: "ship CSV export in 3.2".into(),
    })
}

async fn contact(c: &mut Client, account: &str, name: &str) -> pb::Contact {
    c.create_contact(pb::CreateContactRequest {
        contact: Some(pb::Contact { account_id: account.into(), name: name.into(), ..Default::default() }),
        request_id: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
}

#[tokio::test]
async fn a_closed_loop_lands_on_the_timeline_once_with_the_contacts_that_raised_it() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("Loop closed")).await;
    let b = create(&mut c, account("Someone else")).await;
    let sato = contact(&mut c, &a.id, "佐藤").await;
    let _suzuki = contact(&mut c, &a.id, "鈴木").await;
    let stranger = contact(&mut c, &b.id, "Stranger").await;
    let theme = "0192f000-0000-7000-8000-0000000000e1";
    let other_theme = "0192f000-0000-7000-8000-0000000000e2";

    // Named contacts: its own one is kept, another account's and a
    // malformed id are not.
    let shipped =
        from_feedback(closed(&a.id, theme, fpb::RoadmapStatus::Shipped, &[&sato.id, &stranger.id, "nope"], 3), 2);
    let declined = from_feedback(closed(&a.id, other_theme, fpb::RoadmapStatus::Declined, &[], 1), 1);
    // An account Accounts does not know: nothing.
    let unknown = uuid::Uuid::now_v7().to_string();
    let lost = from_feedback(closed(&unknown, theme, fpb::RoadmapStatus::Shipped, &[], 1), 1);
    // Other events of Feedback are not the timeline's (nor read at all).
    let status = from_feedback(
        Payload::ThemeStatusChanged(ev::ThemeStatusChanged {
            theme_id: theme.into(),
            display_name: "CSV export".into(),
            new_status: fpb::RoadmapStatus::Shipped as i32,
            change: 1,
            ..Default::default()
        }),
        2,
    );
    for env in [&status, &shipped, &lost, &declined] {
        publish(&app, env).await;
    }
    // Redelivered.
    publish(&app, &shipped).await;

    let list = pb::ListActivitiesRequest { account_id: a.id.clone(), ..Default::default() };
    let got = banso_testkit::eventually("two closed loops", std::time::Duration::from_secs(30), || {
        let (mut c, list) = (c.clone(), list.clone());
        async move {
            let r = c.list_activities(list).await.unwrap().into_inner();
            (r.activities.len() >= 2).then_some(r.activities)
        }
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(c.list_activities(list).await.unwrap().into_inner().activities.len(), 2, "a redelivery writes nothing");
    let kind = pb::ActivityKind::LoopClosed as i32;
    let row = |x: &pb::Activity| (x.kind, x.subject.clone(), x.author_id.clone(), x.origin);
    let vendor = tpb::TouchOrigin::Vendor as i32;
    assert_eq!(
        got.iter().map(row).collect::<Vec<_>>(),
        vec![
            (kind, "loop closed (declined): CSV export".into(), "feedback".into(), vendor),
            (kind, "loop closed (shipped): CSV export".into(), "feedback".into(), vendor),
        ]
    );
    let s = &got[1];
    assert_eq!(s.contact_ids, vec![sato.id.clone()], "only its own contacts");
    assert_eq!(
        s.body,
        "decision: ship CSV export in 3.2\nroadmap: Jira PROD-42 https://jira.example.com/browse/PROD-42\nfeedback items: 3"
    );
    assert_eq!(s.occur_time, shipped.occurred_at, "when the loop closed");
    assert_eq!(s.external_ref, format!("loop_closed:{theme}:{}", shipped.id));
    assert!(got[0].contact_ids.is_empty());
    let other = c
        .list_activities(pb::ListActivitiesRequest { account_id: b.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(other.activities.is_empty(), "the stranger's account raised nothing: {other:?}");
}
