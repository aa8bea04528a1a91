//! CTAs worked by people: created by hand, listed, updated, snoozed, closed.

use banso_proto::{playbooks as pb, types as tpb};

use crate::common::*;

fn new_cta(account: &str, title: &str, priority: pb::CtaPriority, due: Option<(i32, i32, i32)>) -> pb::CallToAction {
    pb::CallToAction {
        account_id: account.into(),
        r#type: pb::CtaType::Risk as i32,
        priority: priority as i32,
        title: title.into(),
        due_date: due.map(|(year, month, day)| tpb::Date { year, month, day }),
        tasks: vec![pb::CtaTask { title: "first".into(), ..Default::default() }],
        ..Default::default()
    }
}

async fn create(c: &mut Client, cta: pb::CallToAction) -> pb::CallToAction {
    c.create_call_to_action(pb::CreateCallToActionRequest { cta: Some(cta), request_id: String::new() })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn created_by_hand_updated_with_etags_snoozed_and_closed() {
    let app = spawn().await;
    let a = account("Hooli", "ann", tpb::TouchModel::High);
    known_account(&app, TENANT, &a).await;
    let mut c = client(&app, TENANT, Role::Csm);
    let cta = create(&mut c, new_cta(&a.id, "Check in", pb::CtaPriority::Medium, Some((2030, 1, 15)))).await;
    assert_eq!(cta.owner_id, "test-user", "the caller owns a CTA created without an owner");
    assert_eq!(cta.status, pb::CtaStatus::Open as i32);
    assert_eq!(cta.tasks[0].id, "t1");

    // A retry with a request_id returns the first.
    let req = pb::CreateCallToActionRequest {
        cta: Some(new_cta(&a.id, "Once", pb::CtaPriority::Low, None)),
        request_id: "k1".into(),
    };
    let first = c.create_call_to_action(req.clone()).await.unwrap().into_inner();
    assert_eq!(c.create_call_to_action(req).await.unwrap().into_inner().id, first.id);

    let mut change = cta.clone();
    change.priority = pb::CtaPriority::High as i32;
    change.status = pb::CtaStatus::InProgress as i32;
    change.tasks = vec![
        pb::CtaTask { id: "t1".into(), done: true, ..Default::default() },
        pb::CtaTask { title: "second".into(), ..Default::default() },
    ];
    let updated = c
        .update_call_to_action(pb::UpdateCallToActionRequest {
            cta: Some(change.clone()),
            update_mask: mask(&["priority", "status", "tasks"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.priority, pb::CtaPriority::High as i32);
    assert_eq!(updated.status, pb::CtaStatus::InProgress as i32);
    assert_eq!(
        updated.tasks.iter().map(|t| (t.id.as_str(), t.done)).collect::<Vec<_>>(),
        vec![("t1", true), ("t2", false)]
    );
    assert!(updated.tasks[0].done_time.is_some());
    // The old etag is stale now.
    let stale = c
        .update_call_to_action(pb::UpdateCallToActionRequest { cta: Some(change), update_mask: mask(&["priority"]) })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Aborted);
    assert_eq!(reason(&stale), "ETAG_MISMATCH");

    let future = banso_kit::wire::timestamp(chrono::Utc::now() + chrono::Duration::days(2));
    let snoozed = c
        .snooze_call_to_action(pb::SnoozeCallToActionRequest {
            id: cta.id.clone(),
            until: Some(future),
            etag: updated.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(snoozed.status, pb::CtaStatus::Snoozed as i32);
    let open_only = c
        .list_calls_to_action(pb::ListCallsToActionRequest {
            filter: Some(pb::CtaFilter {
                statuses: vec![pb::CtaStatus::Open as i32],
                account_id: a.id.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(open_only.ctas.iter().map(|x| x.title.as_str()).collect::<Vec<_>>(), vec!["Once"]);

    let closed = c
        .close_call_to_action(pb::CloseCallToActionRequest {
            id: cta.id.clone(),
            outcome: pb::CtaOutcome::NotNeeded as i32,
            note: "ok".into(),
            etag: snoozed.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((closed.status, closed.outcome), (pb::CtaStatus::Closed as i32, pb::CtaOutcome::NotNeeded as i32));
    assert!(closed.close_time.is_some());
    let again = c
        .close_call_to_action(pb::CloseCallToActionRequest {
            id: cta.id.clone(),
            outcome: pb::CtaOutcome::Lost as i32,
            note: String::new(),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    assert_eq!(reason(&again), "CTA_CLOSED");

    // Another tenant sees nothing; a viewer cannot write.
    let mut other = client(&app, "globex", Role::Admin);
    assert_eq!(
        other.get_call_to_action(pb::GetCallToActionRequest { id: cta.id.clone() }).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    let mut viewer = client(&app, TENANT, Role::Viewer);
    let e = viewer
        .create_call_to_action(pb::CreateCallToActionRequest {
            cta: Some(new_cta(&a.id, "x", pb::CtaPriority::Low, None)),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    // An account the service has never heard of.
    let e = c
        .create_call_to_action(pb::CreateCallToActionRequest {
            cta: Some(new_cta(&uuid::Uuid::now_v7().to_string(), "x", pb::CtaPriority::Low, None)),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn lists_order_by_due_date_or_priority_page_and_my_queue_puts_overdue_first() {
    let app = spawn().await;
    let a = account("Pied Piper", "ann", tpb::TouchModel::High);
    known_account(&app, TENANT, &a).await;
    let mut c = client(&app, TENANT, Role::Csm);
    let specs = [
        ("no due", pb::CtaPriority::Critical, None),
        ("overdue", pb::CtaPriority::Low, Some((2020, 1, 1))),
        ("later", pb::CtaPriority::High, Some((2031, 6, 1))),
        ("soon", pb::CtaPriority::Medium, Some((2030, 1, 1))),
    ];
    for (title, p, due) in specs {
        create(&mut c, new_cta(&a.id, title, p, due)).await;
    }
    let mut other_owner = new_cta(&a.id, "not mine", pb::CtaPriority::Critical, Some((2019, 1, 1)));
    other_owner.owner_id = "someone-else".into();
    create(&mut c, other_owner).await;

    // Page by page, by due date: no due date comes last.
    let mut titles = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_calls_to_action(pb::ListCallsToActionRequest {
                page_size: 2,
                page_token: token,
                order_by: "due_date".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        titles.extend(page.ctas.into_iter().map(|x| x.title));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(titles, vec!["not mine", "overdue", "soon", "later", "no due"]);
    let by_priority = c
        .list_calls_to_action(pb::ListCallsToActionRequest {
            order_by: "priority".into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first: Vec<_> = by_priority.ctas.iter().map(|x| x.priority).collect();
    assert_eq!(first, vec![pb::CtaPriority::Critical as i32; 2]);
    // A token replayed with another order is refused.
    let e = c
        .list_calls_to_action(pb::ListCallsToActionRequest {
            order_by: "due_date".into(),
            page_token: by_priority.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_violation(&e, "page_token");

    let mine = c.list_my_calls_to_action(pb::ListMyCallsToActionRequest::default()).await.unwrap().into_inner();
    assert_eq!(
        mine.ctas.iter().map(|x| x.title.as_str()).collect::<Vec<_>>(),
        vec!["overdue", "soon", "later", "no due"]
    );
    let filtered = c
        .list_calls_to_action(pb::ListCallsToActionRequest {
            filter: Some(pb::CtaFilter {
                min_priority: pb::CtaPriority::High as i32,
                due_before: Some(tpb::Date { year: 2031, month: 12, day: 31 }),
                owner_id: "test-user".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(filtered.ctas.iter().map(|x| x.title.as_str()).collect::<Vec<_>>(), vec!["later"]);
}
