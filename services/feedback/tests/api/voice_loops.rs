//! Closing the loop (issue #15): decisions, each department's
//! acknowledgement, reach per department and month, the roadmap's status
//! history, and LoopClosed to each account that raised a shipped or
//! declined theme — exactly once, also when the status event is
//! redelivered.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use banso_events::{Envelope, Payload};
use banso_proto::{accounts as apb, events as ev, feedback as pb};
use banso_testkit::{Bearer, TestApp};
use tonic::{Code, codegen::InterceptedService, transport::Channel};

use crate::common::*;

type Voice = pb::voice_service_client::VoiceServiceClient<InterceptedService<Channel, Bearer>>;

fn voice(app: &TestApp, tenant: &str, role: Role) -> Voice {
    pb::voice_service_client::VoiceServiceClient::with_interceptor(app.channel.clone(), app.bearer(tenant, role))
}

/// A client acting as `subject`.
fn voice_as(app: &TestApp, tenant: &str, subject: &str, role: Role) -> Voice {
    let issuer = banso_kit::auth::DevTokenIssuer::from_config(&app.config.auth).expect("test signing key");
    let token = issuer.mint(tenant, subject, &[role], Duration::from_secs(3600));
    pb::voice_service_client::VoiceServiceClient::with_interceptor(app.channel.clone(), Bearer::new(&token))
}

use pb::Department as D;
use pb::RoadmapStatus as S;

async fn create_theme(v: &mut Voice, name: &str, departments: &[D]) -> pb::Theme {
    v.create_theme(pb::CreateThemeRequest {
        theme: Some(pb::Theme {
            display_name: name.into(),
            decision_owner: "vp-product".into(),
            departments: departments.iter().map(|d| *d as i32).collect(),
            roadmap: Some(pb::RoadmapLink {
                tracker: "Jira".into(),
                key: "PROD-42".into(),
                url: "https://jira.example.com/browse/PROD-42".into(),
                status: 0,
            }),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
}

fn decision(text: &str, consulted: &[D]) -> pb::Decision {
    pb::Decision {
        decision: text.into(),
        rationale: "eight enterprise accounts raised it; support sees it weekly".into(),
        departments_consulted: consulted.iter().map(|d| *d as i32).collect(),
        ..Default::default()
    }
}

async fn decide(v: &mut Voice, theme: &str, d: pb::Decision) -> Result<pb::Theme, tonic::Status> {
    v.record_decision(pb::RecordDecisionRequest { theme_id: theme.into(), decision: Some(d) })
        .await
        .map(|r| r.into_inner())
}

async fn ack(v: &mut Voice, theme: &str, d: D) -> Result<pb::Theme, tonic::Status> {
    v.acknowledge_theme(pb::AcknowledgeThemeRequest { theme_id: theme.into(), department: d as i32 })
        .await
        .map(|r| r.into_inner())
}

async fn move_to(v: &mut Voice, theme: &str, s: S) -> Result<pb::Theme, tonic::Status> {
    v.set_roadmap_status(pb::SetRoadmapStatusRequest { theme_id: theme.into(), status: s as i32 })
        .await
        .map(|r| r.into_inner())
}

async fn reach(v: &mut Voice, by_month: bool) -> pb::Reach {
    v.get_reach(pb::GetReachRequest { by_month, ..Default::default() }).await.unwrap().into_inner()
}

fn row<'a>(r: &'a pb::Reach, d: D, period: &str) -> &'a pb::ReachRow {
    r.rows
        .iter()
        .find(|x| x.department == d as i32 && x.period == period)
        .unwrap_or_else(|| panic!("no row {d:?} {period:?} in {r:?}"))
}

/// A row's counts, its reach to a millionth of a percent.
fn counts(r: &pb::ReachRow) -> (i64, i64, i64, Option<f64>) {
    (r.themes, r.fully_acknowledged, r.acknowledged, r.reach_percent.and_then(pct))
}

fn pct(x: f64) -> Option<f64> {
    Some((x * 1e6).round() / 1e6)
}

#[tokio::test]
async fn decisions_acknowledgements_and_reach() {
    let app = spawn().await;
    let mut v = voice(&app, TENANT, Role::Admin);
    let t1 = create_theme(&mut v, "CSV export", &[D::Product, D::Support]).await;
    let t2 = create_theme(&mut v, "Invoice in yen", &[D::Product, D::Billing]).await;
    let t3 = create_theme(&mut v, "Slow support replies", &[D::Support]).await;

    // A decision, by whoever records it (a CSM may), with the departments consulted.
    let mut vp = voice_as(&app, TENANT, "vp-product", Role::Csm);
    let got = decide(&mut vp, &t1.id, decision("build it in Q3", &[D::Product, D::Support])).await.unwrap();
    assert_eq!(got.decisions.len(), 1);
    let d = &got.decisions[0];
    assert_eq!((d.decision.as_str(), d.decided_by.as_str()), ("build it in Q3", "vp-product"));
    assert_eq!(d.departments_consulted, vec![D::Product as i32, D::Support as i32]);
    assert!(d.decide_time.is_some());
    let got = decide(&mut vp, &t1.id, decision("ship the CSV first, Excel later", &[])).await.unwrap();
    let log: Vec<_> = got.decisions.iter().map(|d| d.decision.as_str()).collect();
    assert_eq!(log, vec!["build it in Q3", "ship the CSV first, Excel later"], "oldest first");

    // Every bad field at once.
    let err = decide(
        &mut vp,
        &t1.id,
        pb::Decision {
            decision: "  ".into(),
            rationale: "理".repeat(5001),
            departments_consulted: vec![0, 99, D::Sales as i32, D::Sales as i32],
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: BTreeSet<String> = violations(&err).into_iter().map(|(f, _)| f).collect();
    let want: BTreeSet<String> = [
        "decision.decision",
        "decision.rationale",
        "decision.departments_consulted[0]",
        "decision.departments_consulted[1]",
        "decision.departments_consulted[3]",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(fields, want, "{err:?}");
    let err =
        vp.record_decision(pb::RecordDecisionRequest { theme_id: "nope".into(), decision: None }).await.unwrap_err();
    assert_violation(&err, "theme_id");
    assert_violation(&err, "decision");

    // Acknowledgements: who (the caller) and when; the first one of a department is kept.
    let mut pat = voice_as(&app, TENANT, "pat", Role::Csm);
    let mut pia = voice_as(&app, TENANT, "pia", Role::Csm);
    let first = ack(&mut pat, &t1.id, D::Product).await.unwrap();
    assert_eq!(first.acknowledgements.len(), 1);
    assert_eq!(first.acknowledgements[0].acknowledged_by, "pat");
    let again = ack(&mut pia, &t1.id, D::Product).await.unwrap();
    assert_eq!(again.acknowledgements, first.acknowledgements, "a second acknowledgement by product changes nothing");
    assert_eq!(again.etag, first.etag, "nothing written");
    ack(&mut pia, &t1.id, D::Support).await.unwrap();
    ack(&mut pat, &t2.id, D::Product).await.unwrap();
    // A department the theme does not concern.
    let err = ack(&mut pat, &t3.id, D::Sales).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "DEPARTMENT_NOT_CONCERNED");
    assert!(err.message().contains(&t3.id) && err.message().contains("sales"), "{}", err.message());
    let err = ack(&mut pat, "nope", D::Unspecified).await.unwrap_err();
    assert_violation(&err, "theme_id");
    assert_violation(&err, "department");
    let err = pat
        .acknowledge_theme(pb::AcknowledgeThemeRequest { theme_id: t3.id.clone(), department: 42 })
        .await
        .unwrap_err();
    assert_violation(&err, "department");

    // Roles and tenancy.
    let mut reader = voice(&app, TENANT, Role::Viewer);
    assert_eq!(ack(&mut reader, &t3.id, D::Support).await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(decide(&mut reader, &t3.id, decision("x", &[])).await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(move_to(&mut reader, &t3.id, S::Planned).await.unwrap_err().code(), Code::PermissionDenied);
    let mut other = voice(&app, "globex", Role::Admin);
    assert_eq!(ack(&mut other, &t3.id, D::Support).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(decide(&mut other, &t3.id, decision("x", &[])).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(move_to(&mut other, &t3.id, S::Planned).await.unwrap_err().code(), Code::NotFound);
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(ack(&mut v, &unknown, D::Support).await.unwrap_err().code(), Code::NotFound);
    assert!(reach(&mut other, false).await.rows.is_empty(), "another tenant's themes are not counted");

    // Reach over the whole range: t1 fully acknowledged, t2 by product
    // only, t3 by no one.
    let r = reach(&mut reader, false).await;
    assert_eq!(r.rows.len(), 6, "the all-departments row and five departments: {r:?}");
    assert_eq!(r.rows[0].department, D::Unspecified as i32);
    assert_eq!(counts(row(&r, D::Unspecified, "")), (3, 1, 2, pct(100.0 / 3.0)));
    assert_eq!(counts(row(&r, D::Product, "")), (2, 1, 2, Some(50.0)));
    assert_eq!(counts(row(&r, D::Support, "")), (2, 1, 1, Some(50.0)));
    assert_eq!(counts(row(&r, D::Billing, "")), (1, 0, 0, Some(0.0)));
    assert_eq!(counts(row(&r, D::Sales, "")), (0, 0, 0, None), "no themes: no reach");
    assert_eq!(r.unacknowledged_theme_ids, vec![t3.id.clone()]);

    // By month of creation (the tenant's calendar, UTC here).
    let created = t1.create_time.expect("a create time");
    let month = chrono::DateTime::from_timestamp(created.seconds, 0).unwrap().format("%Y-%m").to_string();
    let r = reach(&mut reader, true).await;
    assert_eq!(counts(row(&r, D::Unspecified, &month)), (3, 1, 2, pct(100.0 / 3.0)));
    // A range before the themes: nothing.
    let r = reader
        .get_reach(pb::GetReachRequest {
            end_time: Some(pbjson_types::Timestamp { seconds: created.seconds - 3600, nanos: 0 }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.rows.is_empty() && r.unacknowledged_theme_ids.is_empty(), "{r:?}");
    let err = reader
        .get_reach(pb::GetReachRequest {
            start_time: Some(pbjson_types::Timestamp { seconds: 2_000_000_000, nanos: 0 }),
            end_time: Some(pbjson_types::Timestamp { seconds: 1_900_000_000, nanos: 0 }),
            by_month: true,
        })
        .await
        .unwrap_err();
    assert_violation(&err, "end_time");
    let err = reader
        .get_reach(pb::GetReachRequest {
            start_time: Some(pbjson_types::Timestamp { seconds: -5, nanos: 0 }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_violation(&err, "start_time");
}

/// Collects what the service publishes on `subjects`, under a consumer
/// name of its own.
fn collect_as(app: &TestApp, name: &str, subjects: &[&str]) -> Arc<Mutex<Vec<Envelope>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(Collected(seen.clone()));
    let bus = app.runtime.bus.clone();
    let (name, subjects): (String, Vec<String>) = (name.into(), subjects.iter().map(|s| s.to_string()).collect());
    tokio::spawn(async move {
        bus.prepare_source("feedback").await.unwrap();
        let _ = bus
            .consume(&name, &subjects, handler, Default::default(), tokio_util::sync::CancellationToken::new())
            .await;
    });
    seen
}

fn loops_closed(seen: &Arc<Mutex<Vec<Envelope>>>) -> Vec<ev::LoopClosed> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::LoopClosed(x)) => Some(x.clone()),
            _ => None,
        })
        .collect()
}

fn status_changes(seen: &Arc<Mutex<Vec<Envelope>>>) -> Vec<(Envelope, ev::ThemeStatusChanged)> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::ThemeStatusChanged(x)) => Some((e.clone(), x.clone())),
            _ => None,
        })
        .collect()
}

async fn item(
    v: &mut Voice,
    theme: &str,
    account: &apb::Account,
    contact: Option<&apb::Contact>,
    text: &str,
) -> String {
    let item = v
        .create_feedback_item(pb::CreateFeedbackItemRequest {
            item: Some(pb::FeedbackItem {
                text: text.into(),
                channel: pb::Channel::CsmNote as i32,
                account_id: account.id.clone(),
                contact_id: contact.map(|c| c.id.clone()).unwrap_or_default(),
                department: D::Product as i32,
                severity: 3,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    v.assign_theme(pb::AssignThemeRequest { item_id: item.id.clone(), theme_id: theme.into() }).await.unwrap();
    item.id
}

#[tokio::test]
async fn each_requesting_account_is_told_exactly_once_also_when_the_status_event_is_redelivered() {
    const N: usize = 4;
    let app = spawn().await;
    let seen = collect_as(&app, "test-loops", &["banso.feedback.theme_status_changed", "banso.feedback.loop_closed"]);
    let mut v = voice(&app, TENANT, Role::Admin);
    let mut customers = Vec::new();
    for i in 0..N {
        customers.push(account_with_contacts(&app, &format!("Customer {i}"), "retail", 2).await);
    }
    // An account that never raised the theme.
    let (bystander, _) = account_with_contacts(&app, "Bystander", "retail", 1).await;
    settle(&app, TENANT).await;

    let theme = create_theme(&mut v, "CSV export", &[D::Product]).await;
    let other = create_theme(&mut v, "Dark mode", &[D::Product]).await;
    // Each account raised it; the first twice, through both contacts; the
    // last without a contact.
    let mut want: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for (i, (a, cs)) in customers.iter().enumerate() {
        let contact = (i + 1 < N).then(|| &cs[0]);
        let id = item(&mut v, &theme.id, a, contact, "CSVで書き出したい").await;
        let e = want.entry(a.id.clone()).or_default();
        e.0.extend(contact.map(|c| c.id.clone()));
        e.1.insert(id);
        if i == 0 {
            let id = item(&mut v, &theme.id, a, Some(&cs[1]), "export to CSV please").await;
            e.0.insert(cs[1].id.clone());
            e.1.insert(id);
        }
    }
    item(&mut v, &other.id, &bystander, None, "dark mode").await;

    // The tenant requires a decision before the loop closes.
    v.update_voice_settings(pb::UpdateVoiceSettingsRequest {
        settings: Some(pb::VoiceSettings { require_decision: true, ..Default::default() }),
        update_mask: Some(pbjson_types::FieldMask { paths: vec!["require_decision".into()] }),
    })
    .await
    .unwrap();
    let mut pm = voice_as(&app, TENANT, "pm-1", Role::Csm);
    let planned = move_to(&mut pm, &theme.id, S::Planned).await.unwrap();
    assert_eq!(planned.roadmap.as_ref().map(|r| r.status), Some(S::Planned as i32));
    // The same status again changes nothing (no second change, no event).
    let same = move_to(&mut pm, &theme.id, S::Planned).await.unwrap();
    assert_eq!((same.roadmap_history.len(), same.etag.as_str()), (1, planned.etag.as_str()));
    let err = move_to(&mut pm, &theme.id, S::Shipped).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "DECISION_REQUIRED");
    assert!(err.message().contains(&theme.id), "{}", err.message());
    decide(&mut pm, &theme.id, decision("ship CSV export in 3.2", &[D::Product, D::Cs])).await.unwrap();
    let shipped = move_to(&mut pm, &theme.id, S::Shipped).await.unwrap();
    let history: Vec<_> = shipped.roadmap_history.iter().map(|c| (c.status, c.changed_by.as_str())).collect();
    assert_eq!(history, vec![(S::Planned as i32, "pm-1"), (S::Shipped as i32, "pm-1")]);
    assert_eq!(shipped.roadmap.as_ref().map(|r| r.status), Some(S::Shipped as i32));

    until("each account is told", || {
        let seen = seen.clone();
        async move { (loops_closed(&seen).len() >= N).then_some(()) }
    })
    .await;
    let changes = status_changes(&seen);
    let summary: Vec<_> = changes.iter().map(|(_, c)| (c.change, c.old_status, c.new_status)).collect();
    assert_eq!(summary, vec![(1, S::Unspecified as i32, S::Planned as i32), (2, S::Planned as i32, S::Shipped as i32)]);
    let (shipped_env, shipped_change) = changes[1].clone();
    assert_eq!((shipped_change.theme_id.as_str(), shipped_change.changed_by.as_str()), (theme.id.as_str(), "pm-1"));

    // Redelivered: the same envelope twice, and the same change under a
    // new envelope id (a producer that published it again).
    publish_envelope(&app, &shipped_env).await;
    publish_envelope(&app, &shipped_env).await;
    publish(&app, TENANT, "feedback", Payload::ThemeStatusChanged(shipped_change.clone())).await;
    // Then a later change (reopened, declined): once it is told, everything
    // published before it was handled (one consumer, in order).
    move_to(&mut pm, &theme.id, S::InProgress).await.unwrap();
    move_to(&mut pm, &theme.id, S::Declined).await.unwrap();
    until("the declined loop is told", || {
        let seen = seen.clone();
        async move { (loops_closed(&seen).iter().filter(|x| x.status == S::Declined as i32).count() >= N).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let all = loops_closed(&seen);
    assert_eq!(all.len(), 2 * N, "one LoopClosed per account and closing change: {all:#?}");
    for status in [S::Shipped, S::Declined] {
        let of: Vec<&ev::LoopClosed> = all.iter().filter(|x| x.status == status as i32).collect();
        let accounts: BTreeSet<&str> = of.iter().map(|x| x.account_id.as_str()).collect();
        assert_eq!(accounts.len(), N, "{status:?}: each requesting account exactly once");
        for x in of {
            let (contacts, items) = &want[&x.account_id];
            assert_eq!(
                x.contact_ids.iter().cloned().collect::<BTreeSet<_>>(),
                *contacts,
                "its contacts that raised it"
            );
            assert_eq!(x.item_ids.iter().cloned().collect::<BTreeSet<_>>(), *items, "its items");
            assert_eq!((x.theme_id.as_str(), x.display_name.as_str()), (theme.id.as_str(), "CSV export"));
            assert_eq!(x.owner_id, "csm-1", "the account's owner, told first");
            assert_eq!(x.decision, "ship CSV export in 3.2");
            let r = x.roadmap.as_ref().expect("the roadmap link");
            assert_eq!((r.tracker.as_str(), r.key.as_str(), r.status), ("Jira", "PROD-42", status as i32));
        }
    }
    assert!(all.iter().all(|x| x.account_id != bystander.id), "only accounts that raised it");

    // accounts_told per change, known once the fan-out ran (the same status
    // again reads the theme and changes nothing).
    let now = move_to(&mut pm, &theme.id, S::Declined).await.unwrap();
    let told: Vec<_> = now.roadmap_history.iter().map(|c| (c.status, c.accounts_told)).collect();
    let n = N as i64;
    assert_eq!(
        told,
        vec![(S::Planned as i32, 0), (S::Shipped as i32, n), (S::InProgress as i32, 0), (S::Declined as i32, n)]
    );

    // Bad input.
    let err = move_to(&mut pm, "nope", S::Unspecified).await.unwrap_err();
    assert_violation(&err, "theme_id");
    assert_violation(&err, "status");
    let err = pm
        .set_roadmap_status(pb::SetRoadmapStatusRequest { theme_id: theme.id.clone(), status: 17 })
        .await
        .unwrap_err();
    assert_violation(&err, "status");
}
