//! What the Accounts service publishes: the right events, in order, each
//! with exactly one effect for a consumer with an inbox, also across a
//! consumer restart; and none for a refused request. Runs on the embedded
//! bus, and on NATS JetStream when BANSO_TEST_NATS_URL is set.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use banso_events::{
    Envelope, Handler, HandlerError, Payload,
    bus::{DeliveryPolicy, supervise_consumer},
    inbox,
};
use banso_kit::supervise::Supervisor;
use banso_proto::accounts as pb;
use sea_orm::{DatabaseConnection, TransactionTrait};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio_util::sync::CancellationToken;

use crate::common::*;

struct InboxOnly;

impl MigratorTrait for InboxOnly {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(inbox::Migration)]
    }
}

/// A consuming service: applies each event once (inbox), records what it saw.
struct Recorder {
    db: DatabaseConnection,
    applied: Mutex<Vec<Envelope>>,
    deliveries: Mutex<usize>,
}

#[async_trait]
impl Handler for Recorder {
    async fn handle(&self, env: &Envelope) -> Result<(), HandlerError> {
        *self.deliveries.lock().unwrap() += 1;
        let txn = self.db.begin().await?;
        let first = inbox::claim(&txn, "recorder", env).await?;
        txn.commit().await?;
        if first {
            self.applied.lock().unwrap().push(env.clone());
        }
        Ok(())
    }
}

fn start(app: &banso_testkit::TestApp, recorder: &Arc<Recorder>) -> CancellationToken {
    let stop = app.runtime.shutdown().child_token();
    supervise_consumer(
        &Supervisor::new(stop.clone()),
        "test",
        app.runtime.bus.clone(),
        "recorder",
        vec![banso_events::envelope::all_of("accounts")],
        recorder.clone(),
        DeliveryPolicy::default(),
        &banso_events::partition::Partitions::all(app.runtime.bus.partitions()),
    );
    stop
}

async fn wait_for(recorder: &Recorder, n: usize) -> Vec<Envelope> {
    banso_testkit::eventually(&format!("{n} events applied"), Duration::from_secs(30), || async move {
        (recorder.applied.lock().unwrap().len() >= n).then_some(())
    })
    .await;
    // Anything extra or late shows up now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    recorder.applied.lock().unwrap().clone()
}

fn kinds(events: &[Envelope]) -> Vec<String> {
    events.iter().map(|e| e.r#type.clone()).collect()
}

#[tokio::test]
async fn every_change_publishes_its_event_exactly_once() {
    let app = spawn().await;
    let db = banso_testkit::fresh_database().await.unwrap();
    let recorder = Arc::new(Recorder {
        db: db.connect::<InboxOnly>("recorder").await.unwrap(),
        applied: Mutex::new(Vec::new()),
        deliveries: Mutex::new(0),
    });
    let stop = start(&app, &recorder);
    let mut c = admin(&app);

    // 1. AccountCreated
    let a = create(&mut c, pb::Account { external_id: "crm-1".into(), ..account("株式会社イベント") }).await;
    // A refused create and a refused contract event publish nothing.
    assert!(
        c.create_account(pb::CreateAccountRequest { account: Some(account("")), request_id: String::new() })
            .await
            .is_err()
    );
    let expand_nothing = pb::RecordContractEventRequest {
        contract_event: Some(pb::ContractEvent {
            account_id: a.id.clone(),
            kind: pb::ContractEventKind::Expansion as i32,
            arr_after: money("JPY", 1),
            effective_date: date(2026, 4, 1),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    assert_eq!(c.record_contract_event(expand_nothing).await.unwrap_err().code(), tonic::Code::FailedPrecondition);
    // 2. ContractChanged
    let contract = c
        .record_contract_event(pb::RecordContractEventRequest {
            contract_event: Some(pb::ContractEvent {
                account_id: a.id.clone(),
                kind: pb::ContractEventKind::New as i32,
                arr_after: money("JPY", 12_000_000),
                effective_date: date(2026, 4, 1),
                term_end: date(2027, 3, 31),
                ..Default::default()
            }),
            request_id: "contract-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    // 3, 4. ActivityLogged ×2
    for kind in [pb::ActivityKind::EmailSent, pb::ActivityKind::EmailReplied] {
        c.log_activity(pb::LogActivityRequest {
            activity: Some(pb::Activity {
                account_id: a.id.clone(),
                kind: kind as i32,
                occur_time: Some(pbjson_types::Timestamp { seconds: chrono::Utc::now().timestamp() - 60, nanos: 0 }),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    }

    // The consumer stops mid-stream and comes back.
    let first_half = wait_for(&recorder, 4).await;
    assert_eq!(kinds(&first_half), ["account_created", "contract_changed", "activity_logged", "activity_logged"]);
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // 5. AccountUpdated, 6. ContactChanged, 7. TenantSettingsChanged, 8. ContactChanged (deleted), 9. AccountDeleted
    let upd = pb::Account { id: a.id.clone(), plan_tier: "enterprise".into(), ..Default::default() };
    c.update_account(pb::UpdateAccountRequest { account: Some(upd), update_mask: mask(&["plan_tier"]) }).await.unwrap();
    let contact = c
        .create_contact(pb::CreateContactRequest {
            contact: Some(pb::Contact { account_id: a.id.clone(), name: "担当者".into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    c.update_tenant_settings(pb::UpdateTenantSettingsRequest {
        settings: Some(pb::TenantSettings { time_zone: "Asia/Tokyo".into(), ..Default::default() }),
        update_mask: mask(&["time_zone"]),
    })
    .await
    .unwrap();
    c.delete_contact(pb::DeleteContactRequest { id: contact.id.clone(), etag: String::new() }).await.unwrap();
    c.delete_account(pb::DeleteAccountRequest { id: a.id.clone(), etag: String::new() }).await.unwrap();
    // 10-12. SegmentChanged: created, updated, deleted (a refused update publishes nothing).
    let seg = c
        .create_segment(pb::CreateSegmentRequest {
            segment: Some(pb::Segment {
                display_name: "Renewals".into(),
                expression: r#"account.lifecycle_stage == "renewal""#.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let bad = pb::Segment { id: seg.id.clone(), expression: "account.".into(), ..Default::default() };
    assert!(
        c.update_segment(pb::UpdateSegmentRequest { segment: Some(bad), update_mask: mask(&["expression"]) })
            .await
            .is_err()
    );
    let wider = pb::Segment { id: seg.id.clone(), expression: "true".into(), ..Default::default() };
    c.update_segment(pb::UpdateSegmentRequest { segment: Some(wider), update_mask: mask(&["expression"]) })
        .await
        .unwrap();
    c.delete_segment(pb::DeleteSegmentRequest { id: seg.id.clone(), etag: String::new() }).await.unwrap();

    let _stop = start(&app, &recorder);
    let all = wait_for(&recorder, 12).await;
    assert_eq!(
        kinds(&all),
        [
            "account_created",
            "contract_changed",
            "activity_logged",
            "activity_logged",
            "account_updated",
            "contact_changed",
            "tenant_settings_changed",
            "contact_changed",
            "account_deleted",
            "segment_changed",
            "segment_changed",
            "segment_changed"
        ]
    );
    let mut ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12, "each event applied once");
    assert!(*recorder.deliveries.lock().unwrap() >= 12);
    for e in &all {
        assert_eq!(e.tenant_id, "acme");
        assert_eq!(e.source, "accounts");
    }

    // The payloads say what changed.
    let Some(Payload::ContractChanged(cc)) = &all[1].payload else { panic!("{:?}", all[1]) };
    assert_eq!(cc.contract_event.as_ref().unwrap().id, contract.contract_event.unwrap().id);
    let after = cc.account.as_ref().unwrap();
    assert_eq!((after.arr.clone(), after.renewal_date), (money("JPY", 12_000_000), date(2027, 3, 31)));
    let Some(Payload::AccountUpdated(au)) = &all[4].payload else { panic!("{:?}", all[4]) };
    assert_eq!(au.changed_fields, ["plan_tier"]);
    let Some(Payload::ContactChanged(deleted)) = &all[7].payload else { panic!("{:?}", all[7]) };
    assert_eq!(deleted.change, banso_proto::events::contact_changed::Change::Deleted as i32);
    let Some(Payload::AccountDeleted(ad)) = &all[8].payload else { panic!("{:?}", all[8]) };
    assert_eq!((ad.account_id.as_str(), ad.external_id.as_str()), (a.id.as_str(), "crm-1"));
    use banso_proto::events::segment_changed::Change;
    let segs: Vec<(i32, String)> = all[9..]
        .iter()
        .map(|e| match &e.payload {
            Some(Payload::SegmentChanged(sc)) => (sc.change, sc.segment.as_ref().unwrap().expression.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    let renewal = r#"account.lifecycle_stage == "renewal""#.to_string();
    assert_eq!(
        segs,
        [
            (Change::Created as i32, renewal),
            (Change::Updated as i32, "true".to_string()),
            (Change::Deleted as i32, "true".to_string())
        ]
    );
}

#[tokio::test]
async fn imports_publish_one_event_per_created_row_and_none_on_rerun() {
    let app = spawn().await;
    let db = banso_testkit::fresh_database().await.unwrap();
    let recorder = Arc::new(Recorder {
        db: db.connect::<InboxOnly>("recorder").await.unwrap(),
        applied: Mutex::new(Vec::new()),
        deliveries: Mutex::new(0),
    });
    let _stop = start(&app, &recorder);
    let mut c = admin(&app);
    let rows: Vec<pb::Account> = (0..120)
        .map(|i| pb::Account { external_id: format!("crm-{i}"), ..account(&format!("Imported {i}")) })
        .collect();
    for _ in 0..2 {
        let stream = futures::stream::iter([pb::ImportAccountsRequest { accounts: rows.clone() }]);
        c.import_accounts(stream).await.unwrap();
    }
    let seen = wait_for(&recorder, 120).await;
    assert_eq!(seen.len(), 120, "one AccountCreated per new row, nothing for the unchanged re-run");
    assert!(seen.iter().all(|e| e.r#type == "account_created"));
}

#[tokio::test]
async fn a_rule_change_of_a_mix_publishes_account_updated() {
    use pb::TouchModel as T;
    let app = spawn().await;
    let db = banso_testkit::fresh_database().await.unwrap();
    let recorder = Arc::new(Recorder {
        db: db.connect::<InboxOnly>("recorder").await.unwrap(),
        applied: Mutex::new(Vec::new()),
        deliveries: Mutex::new(0),
    });
    let _stop = start(&app, &recorder);
    let mut c = admin(&app);
    let a = create(&mut c, account("Ruled")).await;
    let share = |t: T, percent| banso_proto::types::TouchShare { touch_model: t as i32, percent };
    c.update_touch_mix_rules(pb::UpdateTouchMixRulesRequest {
        touch_mix_rules: Some(pb::TouchMixRules {
            rules: vec![pb::TouchMixRule {
                name: "tech for all".into(),
                condition: "true".into(),
                touch_mix: vec![share(T::Low, 30), share(T::Tech, 70)],
            }],
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    let all = wait_for(&recorder, 2).await;
    assert_eq!(kinds(&all), ["account_created", "account_updated"]);
    let Some(Payload::AccountUpdated(au)) = &all[1].payload else { panic!("{:?}", all[1]) };
    let got = au.account.as_ref().unwrap();
    assert_eq!(got.id, a.id);
    assert_eq!(got.touch_mix, vec![share(T::Low, 30), share(T::Tech, 70)]);
    assert_eq!(got.touch_model, T::Tech as i32);
    assert!(au.changed_fields.contains(&"touch_mix".to_owned()), "{:?}", au.changed_fields);
}
