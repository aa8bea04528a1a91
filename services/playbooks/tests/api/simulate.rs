//! Simulation runs the live engine's rules on stored events, writing
//! nothing; enabled, the live engine then does what it predicted.

use std::collections::BTreeMap;

use banso_events::Payload;
use banso_proto::{health::Band, playbooks as pb, types as tpb};

use crate::common::*;

/// The trigger events: X turns red twice (the second within the cooldown),
/// Y turns red once, Z only turns yellow.
fn story(x: &str, y: &str, z: &str) -> Vec<Payload> {
    vec![
        score_changed(x, Some((60.0, Band::Yellow)), (30.0, Band::Red)),
        score_changed(y, Some((50.0, Band::Yellow)), (20.0, Band::Red)),
        score_changed(z, Some((80.0, Band::Green)), (55.0, Band::Yellow)),
        score_changed(x, Some((30.0, Band::Red)), (45.0, Band::Yellow)),
        score_changed(x, Some((45.0, Band::Yellow)), (25.0, Band::Red)),
    ]
}

type Outcome = BTreeMap<String, Vec<i32>>;

fn by_account(f: &[pb::Firing]) -> Outcome {
    let mut m: Outcome = BTreeMap::new();
    for f in f {
        m.entry(f.account_id.clone()).or_default().push(f.status);
    }
    m
}

#[tokio::test]
async fn a_draft_simulated_on_stored_events_predicts_the_live_firings() {
    let app = spawn().await;
    let mut c = admin(&app);
    let mut draft = red_playbook("Red, once an hour");
    draft.cooldown = Some(pbjson_types::Duration { seconds: 3600, nanos: 0 });
    let draft = c
        .create_playbook(pb::CreatePlaybookRequest { playbook: Some(draft), request_id: String::new() })
        .await
        .unwrap()
        .into_inner();
    let (x, y, z) = (
        account("X", "ann", tpb::TouchModel::High),
        account("Y", "ann", tpb::TouchModel::High),
        account("Z", "ann", tpb::TouchModel::High),
    );
    for a in [&x, &y, &z] {
        known_account(&app, TENANT, a).await;
    }
    for p in story(&x.id, &y.id, &z.id) {
        publish(&app, TENANT, "health", p).await;
    }
    let sim = until("the five events are stored", || {
        let mut c = c.clone();
        let id = draft.id.clone();
        async move {
            let s = c
                .simulate_playbook(pb::SimulatePlaybookRequest { id, ..Default::default() })
                .await
                .unwrap()
                .into_inner();
            (s.evaluated == 5).then_some(s)
        }
    })
    .await;
    assert_eq!((sim.matched, sim.would_fire, sim.suppressed_by_cooldown, sim.accounts), (3, 2, 1, 2), "{sim:?}");
    assert!(sim.firings.iter().all(|f| f.id.is_empty()), "simulated firings have no id");
    let fired = pb::FiringStatus::Fired as i32;
    let predicted = by_account(&sim.firings);
    assert_eq!(predicted[&x.id], vec![fired, pb::FiringStatus::Cooldown as i32]);
    assert_eq!(predicted[&y.id], vec![fired]);
    // Nothing was written.
    assert!(ctas_of(&mut c, &x.id).await.is_empty());
    assert!(c.list_firings(pb::ListFiringsRequest::default()).await.unwrap().into_inner().firings.is_empty());

    // Live, on the same events.
    c.enable_playbook(pb::EnablePlaybookRequest { id: draft.id.clone(), version: 0, etag: draft.etag.clone() })
        .await
        .unwrap();
    for p in story(&x.id, &y.id, &z.id) {
        publish(&app, TENANT, "health", p).await;
    }
    let live = until("three firings", || {
        let mut c = c.clone();
        let id = draft.id.clone();
        async move {
            let mut f = c
                .list_firings(pb::ListFiringsRequest { playbook_id: id, ..Default::default() })
                .await
                .unwrap()
                .into_inner()
                .firings;
            f.reverse();
            (f.len() == 3).then_some(f)
        }
    })
    .await;
    assert_eq!(by_account(&live), predicted);
}

#[tokio::test]
async fn a_schedule_draft_is_simulated_against_todays_accounts() {
    let app = spawn().await;
    let mut c = admin(&app);
    let today = chrono::Utc::now().date_naive();
    let date = |d: chrono::NaiveDate| {
        use chrono::Datelike;
        tpb::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 }
    };
    let mut near = account("Near", "ann", tpb::TouchModel::High);
    near.renewal_date = Some(date(today + chrono::Duration::days(20)));
    let mut far = account("Far", "ann", tpb::TouchModel::High);
    far.renewal_date = Some(date(today + chrono::Duration::days(200)));
    for a in [&near, &far] {
        known_account(&app, TENANT, a).await;
    }
    let p = pb::Playbook {
        display_name: "Renewal in 90 days".into(),
        trigger: Some(pb::Trigger {
            kind: Some(pb::trigger::Kind::Schedule(pb::ScheduleTrigger {
                when: Some(pb::schedule_trigger::When::RenewalWithinDays(90)),
            })),
        }),
        actions: vec![open_cta(
            "renewal of {{account.name}} in {{account.days_to_renewal}} days",
            pb::CtaPriority::Medium,
            &[],
        )],
        ..Default::default()
    };
    let p = c
        .create_playbook(pb::CreatePlaybookRequest { playbook: Some(p), request_id: String::new() })
        .await
        .unwrap()
        .into_inner();
    let sim =
        c.simulate_playbook(pb::SimulatePlaybookRequest { id: p.id, ..Default::default() }).await.unwrap().into_inner();
    assert_eq!((sim.evaluated, sim.would_fire), (2, 1));
    assert_eq!(sim.firings[0].account_id, near.id);
    assert_eq!(sim.firings[0].actions[0].detail, "would open cta \"renewal of Near in 20 days\"");
}
