//! Routing the voice to every department: subscriptions by department,
//! category, theme and severity; an alert at once when an item is recorded
//! (or joins a subscribed theme later), stored and listed, and delivered
//! through Playbooks (NoticeIssued) when the subscription has an endpoint;
//! bad input, tenancy and roles. The daily digest is driven at a given
//! time by the crate's own tests (src/app/voice/routing_tests.rs).

use banso_events::Payload;
use banso_proto::feedback as pb;
use tonic::Code;

use crate::common::*;

fn subscription(department: pb::Department) -> pb::Subscription {
    pb::Subscription { department: department as i32, ..Default::default() }
}

async fn subscribe(v: &mut Voice, s: pb::Subscription) -> pb::Subscription {
    v.create_subscription(pb::CreateSubscriptionRequest { subscription: Some(s) }).await.unwrap().into_inner()
}

async fn notices(v: &mut Voice, department: pb::Department, kind: pb::NoticeKind) -> Vec<pb::Notice> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = v
            .list_notices(pb::ListNoticesRequest {
                department: department as i32,
                kind: kind as i32,
                page_size: 2,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.notices.len() <= 2);
        out.extend(page.notices);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

#[tokio::test]
async fn a_subscription_hears_of_its_departments_items_at_once_and_through_its_endpoint() {
    let app = spawn().await;
    let issued = collect(&app, "banso.feedback.notice_issued");
    let mut v = voice(&app);
    let a = account("Alpha", "retail");
    publish_account(&app, TENANT, &a).await;
    settle(&app, TENANT).await;
    let csv = create_theme(&mut v, pb::Theme { keywords: vec!["CSV".into()], ..theme("CSV export") }).await;
    let endpoint = uuid::Uuid::now_v7().to_string();
    let product = subscribe(&mut v, subscription(pb::Department::Product)).await;
    let export = subscribe(
        &mut v,
        pb::Subscription {
            category: "Export".into(),
            min_severity: 4,
            endpoint_id: endpoint.clone(),
            ..subscription(pb::Department::Product)
        },
    )
    .await;
    let support =
        subscribe(&mut v, pb::Subscription { theme_id: csv.id.clone(), ..subscription(pb::Department::Support) }).await;
    let sales = subscribe(&mut v, subscription(pb::Department::Sales)).await;
    assert_eq!(
        (export.category.as_str(), export.min_severity, export.endpoint_id.as_str()),
        ("Export", 4, endpoint.as_str())
    );
    assert_eq!(support.theme_id, csv.id);
    assert!(product.create_time.is_some());

    // A severe export item of the product: the product's two subscriptions hear of it.
    let severe = create_item(
        &mut v,
        pb::FeedbackItem {
            category: "export".into(),
            ..item(&a, "CSV export fails every night", pb::Department::Product, 4)
        },
    )
    .await;
    assert_eq!(severe.theme_ids, std::slice::from_ref(&csv.id));
    // A milder one: only the subscription to any product item.
    let mild = create_item(
        &mut v,
        pb::FeedbackItem { category: "EXPORT".into(), ..item(&a, "the export is slow", pb::Department::Product, 3) },
    )
    .await;
    // Support's item outside the CSV theme: nothing, until it joins the theme.
    let login = create_item(&mut v, item(&a, "ログインできない", pb::Department::Support, 2)).await;
    assert!(notices(&mut v, pb::Department::Support, pb::NoticeKind::Unspecified).await.is_empty());
    v.assign_theme(pb::AssignThemeRequest { item_id: login.id.clone(), theme_id: csv.id.clone() }).await.unwrap();
    // Assigned again: no second alert.
    v.assign_theme(pb::AssignThemeRequest { item_id: login.id.clone(), theme_id: csv.id.clone() }).await.unwrap();

    let all = notices(&mut v, pb::Department::Unspecified, pb::NoticeKind::Alert).await;
    let seen: Vec<(&str, &str)> = all.iter().map(|n| (n.subscription_id.as_str(), n.item_ids[0].as_str())).collect();
    assert_eq!(
        seen,
        [
            (support.id.as_str(), login.id.as_str()),
            (product.id.as_str(), mild.id.as_str()),
            (export.id.as_str(), severe.id.as_str()),
            (product.id.as_str(), severe.id.as_str()),
        ],
        "newest first: one alert per subscription and item"
    );
    assert!(all.iter().all(|n| n.kind == pb::NoticeKind::Alert as i32 && n.day.is_none() && n.item_ids.len() == 1));
    assert!(!all.iter().any(|n| n.subscription_id == sales.id), "the voice reaches the departments it concerns");
    let support_only = notices(&mut v, pb::Department::Support, pb::NoticeKind::Unspecified).await;
    assert_eq!(support_only.len(), 1);
    assert_eq!(support_only[0].department, pb::Department::Support as i32);
    assert!(notices(&mut v, pb::Department::Product, pb::NoticeKind::Digest).await.is_empty());
    // Any role reads them.
    let mut viewer = voice_as(&app, TENANT, Role::Viewer);
    assert_eq!(notices(&mut viewer, pb::Department::Product, pb::NoticeKind::Alert).await.len(), 3);

    // The subscription with an endpoint is delivered through Playbooks: one NoticeIssued.
    let e = until("NoticeIssued is published", || {
        let issued = issued.clone();
        async move {
            issued.lock().unwrap().iter().find_map(|env| match &env.payload {
                Some(Payload::NoticeIssued(e)) => Some(e.clone()),
                _ => None,
            })
        }
    })
    .await;
    assert_eq!(e.endpoint_id, endpoint);
    assert_eq!(e.subscription_id, export.id);
    assert_eq!(e.notice_id, all[2].id);
    assert_eq!((e.kind, e.department), (pb::NoticeKind::Alert as i32, pb::Department::Product as i32));
    assert_eq!(e.items_total, 1);
    assert_eq!(e.items.len(), 1);
    assert_eq!(
        (e.items[0].id.as_str(), e.items[0].text.as_str()),
        (severe.id.as_str(), "CSV export fails every night")
    );
    assert_eq!(e.items[0].theme_ids, std::slice::from_ref(&csv.id));
    assert!(e.day.is_none());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(issued.lock().unwrap().len(), 1, "the others are stored and listed only");

    // A deleted subscription hears of nothing more; its notices stay listed.
    v.delete_subscription(pb::DeleteSubscriptionRequest { id: product.id.clone() }).await.unwrap();
    create_item(&mut v, item(&a, "another product item", pb::Department::Product, 1)).await;
    let after = notices(&mut v, pb::Department::Product, pb::NoticeKind::Alert).await;
    assert_eq!(after.len(), 3);
    let listed =
        v.list_subscriptions(pb::ListSubscriptionsRequest::default()).await.unwrap().into_inner().subscriptions;
    let ids: Vec<&str> = listed.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [export.id.as_str(), support.id.as_str(), sales.id.as_str()], "oldest first");
    let only = v
        .list_subscriptions(pb::ListSubscriptionsRequest { department: pb::Department::Support as i32 })
        .await
        .unwrap()
        .into_inner()
        .subscriptions;
    assert_eq!(only, [support]);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn bad_subscriptions_name_every_field_and_other_tenants_see_nothing() {
    let app = spawn().await;
    let mut v = voice(&app);
    let e = v
        .create_subscription(pb::CreateSubscriptionRequest {
            subscription: Some(pb::Subscription {
                department: 0,
                category: "c".repeat(101),
                theme_id: "not-a-theme".into(),
                min_severity: 6,
                endpoint_id: "hook".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    for field in [
        "subscription.department",
        "subscription.category",
        "subscription.theme_id",
        "subscription.min_severity",
        "subscription.endpoint_id",
    ] {
        assert_violation(&e, field);
    }
    let e = v
        .create_subscription(pb::CreateSubscriptionRequest {
            subscription: Some(pb::Subscription { department: 42, min_severity: -1, ..Default::default() }),
        })
        .await
        .unwrap_err();
    assert_violation(&e, "subscription.department");
    assert_violation(&e, "subscription.min_severity");
    let e = v.create_subscription(pb::CreateSubscriptionRequest { subscription: None }).await.unwrap_err();
    assert_violation(&e, "subscription");
    // A category of exactly 100 characters (Japanese counts in characters) is fine.
    let ok = subscribe(
        &mut v,
        pb::Subscription { category: "請".repeat(100), min_severity: 5, ..subscription(pb::Department::Billing) },
    )
    .await;
    assert_eq!(ok.category.chars().count(), 100);

    // A theme that does not exist, or is another tenant's: NOT_FOUND.
    let missing = uuid::Uuid::now_v7().to_string();
    let e = v
        .create_subscription(pb::CreateSubscriptionRequest {
            subscription: Some(pb::Subscription { theme_id: missing, ..subscription(pb::Department::Product) }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let mut globex = voice_as(&app, "globex", Role::Admin);
    let theirs = create_theme(&mut globex, theme("Globex's")).await;
    let e = v
        .create_subscription(pb::CreateSubscriptionRequest {
            subscription: Some(pb::Subscription {
                theme_id: theirs.id.clone(),
                ..subscription(pb::Department::Product)
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Subscriptions need an admin; reading needs any role.
    let mut csm = voice_as(&app, TENANT, Role::Csm);
    let e = csm
        .create_subscription(pb::CreateSubscriptionRequest { subscription: Some(subscription(pb::Department::Cs)) })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = csm.delete_subscription(pb::DeleteSubscriptionRequest { id: ok.id.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let mut viewer = voice_as(&app, TENANT, Role::Viewer);
    let listed = viewer.list_subscriptions(pb::ListSubscriptionsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.subscriptions, std::slice::from_ref(&ok));

    // Another tenant sees none, and cannot delete ours.
    let theirs = globex.list_subscriptions(pb::ListSubscriptionsRequest::default()).await.unwrap().into_inner();
    assert!(theirs.subscriptions.is_empty());
    let e = globex.delete_subscription(pb::DeleteSubscriptionRequest { id: ok.id.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = v.delete_subscription(pb::DeleteSubscriptionRequest { id: "x".into() }).await.unwrap_err();
    assert_violation(&e, "id");
    v.delete_subscription(pb::DeleteSubscriptionRequest { id: ok.id.clone() }).await.unwrap();
    let e = v.delete_subscription(pb::DeleteSubscriptionRequest { id: ok.id.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        v.list_subscriptions(pb::ListSubscriptionsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .subscriptions
            .is_empty()
    );

    // Filters: unknown values are named; a page token holds to its filter.
    let e = v.list_subscriptions(pb::ListSubscriptionsRequest { department: 9 }).await.unwrap_err();
    assert_violation(&e, "department");
    let e = v
        .list_notices(pb::ListNoticesRequest { department: 9, kind: 7, page_size: -1, page_token: String::new() })
        .await
        .unwrap_err();
    for field in ["department", "kind", "page_size"] {
        assert_violation(&e, field);
    }
    let e =
        v.list_notices(pb::ListNoticesRequest { page_token: "forged".into(), ..Default::default() }).await.unwrap_err();
    assert_violation(&e, "page_token");
    app.stop().await.unwrap();
}

/// A page token of one filter is refused with another.
#[tokio::test]
async fn a_notice_page_token_holds_to_its_filter() {
    let app = spawn().await;
    let mut v = voice(&app);
    let a = account("Alpha", "retail");
    publish_account(&app, TENANT, &a).await;
    settle(&app, TENANT).await;
    subscribe(&mut v, subscription(pb::Department::Cs)).await;
    for k in 0..3 {
        create_item(&mut v, item(&a, &format!("note {k}"), pb::Department::Cs, 2)).await;
    }
    let page = v
        .list_notices(pb::ListNoticesRequest {
            department: pb::Department::Cs as i32,
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.notices.len(), 2);
    assert!(!page.next_page_token.is_empty());
    let e = v
        .list_notices(pb::ListNoticesRequest {
            department: pb::Department::Product as i32,
            page_size: 2,
            page_token: page.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_violation(&e, "page_token");
    let e = voice_as(&app, "globex", Role::Admin)
        .list_notices(pb::ListNoticesRequest {
            department: pb::Department::Cs as i32,
            page_size: 2,
            page_token: page.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_violation(&e, "page_token");
    let rest = v
        .list_notices(pb::ListNoticesRequest {
            department: pb::Department::Cs as i32,
            page_size: 2,
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.notices.len(), 1);
    assert!(rest.next_page_token.is_empty());
    app.stop().await.unwrap();
}
