//! The timeline: LogActivity, ListActivities, GetEmailResponseRate.

use banso_proto::accounts as pb;
use tonic::Code;

use crate::common::*;

fn ts(t: chrono::DateTime<chrono::Utc>) -> Option<pbjson_types::Timestamp> {
    Some(pbjson_types::Timestamp { seconds: t.timestamp(), nanos: 0 })
}

fn activity(account_id: &str, kind: pb::ActivityKind, minutes_ago: i64) -> pb::Activity {
    pb::Activity {
        account_id: account_id.into(),
        kind: kind as i32,
        occur_time: ts(chrono::Utc::now() - chrono::Duration::minutes(minutes_ago)),
        subject: format!("{kind:?} {minutes_ago}m ago"),
        ..Default::default()
    }
}

async fn log(c: &mut Client, a: pb::Activity) -> pb::Activity {
    c.log_activity(pb::LogActivityRequest { activity: Some(a), request_id: String::new() }).await.unwrap().into_inner()
}

#[tokio::test]
async fn log_list_and_response_rate() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("株式会社タイムライン")).await;
    let b = create(&mut c, account("Other")).await;
    let contact = c
        .create_contact(pb::CreateContactRequest {
            contact: Some(pb::Contact { account_id: a.id.clone(), name: "鈴木".into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    use pb::ActivityKind as K;
    let meeting = log(
        &mut c,
        pb::Activity {
            contact_ids: vec![contact.id.clone()],
            body: "定例会議。活用状況を確認。".into(),
            external_ref: "cal-123".into(),
            ..activity(&a.id, K::Meeting, 500)
        },
    )
    .await;
    assert_eq!(meeting.author_id, "test-user", "the author defaults to the caller");
    assert_eq!(meeting.contact_ids, vec![contact.id.clone()]);
    for m in [400, 300, 200] {
        log(&mut c, activity(&a.id, K::EmailSent, m)).await;
    }
    log(&mut c, activity(&a.id, K::EmailReplied, 100)).await;
    log(&mut c, activity(&b.id, K::Note, 50)).await;
    // An e-mail long ago, outside the default 90-day window.
    log(&mut c, activity(&a.id, K::EmailSent, 60 * 24 * 200)).await;

    // Newest first, paged, filtered.
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_activities(pb::ListActivitiesRequest {
                account_id: a.id.clone(),
                page_size: 2,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.activities);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(all.len(), 6);
    let times: Vec<i64> = all.iter().map(|x| x.occur_time.unwrap().seconds).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    let emails = c
        .list_activities(pb::ListActivitiesRequest {
            kinds: vec![K::EmailSent as i32, K::EmailReplied as i32],
            start_time: ts(chrono::Utc::now() - chrono::Duration::days(1)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(emails.activities.len(), 4);
    let by_author = c
        .list_activities(pb::ListActivitiesRequest { author_id: "someone-else".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(by_author.activities.is_empty());

    // 3 sent, 1 replied in the last 90 days.
    let rate = c
        .get_email_response_rate(pb::GetEmailResponseRateRequest { account_id: a.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((rate.emails_sent, rate.emails_replied), (3, 1));
    assert!((rate.response_rate.unwrap() - 1.0 / 3.0).abs() < 1e-12);
    // A window with nothing sent has no rate.
    let none = c
        .get_email_response_rate(pb::GetEmailResponseRateRequest { account_id: b.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.response_rate, None);
    // An explicit window that covers the old e-mail too.
    let wide = c
        .get_email_response_rate(pb::GetEmailResponseRateRequest {
            account_id: a.id.clone(),
            start_time: ts(chrono::Utc::now() - chrono::Duration::days(365)),
            end_time: ts(chrono::Utc::now()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(wide.emails_sent, 4);
}

#[tokio::test]
async fn duplicates_idempotency_and_bad_activities() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("A")).await;
    let other = create(&mut c, account("B")).await;
    let foreign_contact = c
        .create_contact(pb::CreateContactRequest {
            contact: Some(pb::Contact { account_id: other.id.clone(), name: "x".into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    use pb::ActivityKind as K;
    // The same external_ref twice: the second is refused.
    let mail = pb::Activity { external_ref: "msg-<abc@example.com>".into(), ..activity(&a.id, K::EmailSent, 5) };
    log(&mut c, mail.clone()).await;
    let err =
        c.log_activity(pb::LogActivityRequest { activity: Some(mail), request_id: String::new() }).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    // A retried request_id logs once.
    let req = pb::LogActivityRequest { activity: Some(activity(&a.id, K::Call, 3)), request_id: "call-1".into() };
    let one = c.log_activity(req.clone()).await.unwrap().into_inner();
    let two = c.log_activity(req).await.unwrap().into_inner();
    assert_eq!(one.id, two.id);

    let cases: Vec<(&str, pb::Activity)> = vec![
        ("activity.account_id", pb::Activity { account_id: "x".into(), ..activity(&a.id, K::Note, 1) }),
        ("activity.kind", pb::Activity { kind: 0, ..activity(&a.id, K::Note, 1) }),
        ("activity.kind", pb::Activity { kind: 99, ..activity(&a.id, K::Note, 1) }),
        ("activity.occur_time", pb::Activity { occur_time: None, ..activity(&a.id, K::Note, 1) }),
        ("activity.occur_time", activity(&a.id, K::Note, -60)),
        ("activity.subject", pb::Activity { subject: "件".repeat(201), ..activity(&a.id, K::Note, 1) }),
        ("activity.body", pb::Activity { body: "x".repeat(20_001), ..activity(&a.id, K::Note, 1) }),
        ("activity.contact_ids[0]", pb::Activity { contact_ids: vec!["nope".into()], ..activity(&a.id, K::Note, 1) }),
        (
            "activity.contact_ids[0]",
            pb::Activity { contact_ids: vec![foreign_contact.id.clone()], ..activity(&a.id, K::Note, 1) },
        ),
    ];
    for (field, bad) in cases {
        let err = c
            .log_activity(pb::LogActivityRequest { activity: Some(bad), request_id: String::new() })
            .await
            .expect_err(field);
        assert_violation(&err, field);
    }
    let err = c.log_activity(pb::LogActivityRequest::default()).await.unwrap_err();
    assert_violation(&err, "activity");
    // Unknown and foreign accounts are NOT_FOUND.
    let err = c
        .log_activity(pb::LogActivityRequest {
            activity: Some(activity(&uuid::Uuid::now_v7().to_string(), K::Note, 1)),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let mut globex = client(&app, "globex", Role::Admin);
    let err = globex
        .log_activity(pb::LogActivityRequest { activity: Some(activity(&a.id, K::Note, 1)), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = globex
        .get_email_response_rate(pb::GetEmailResponseRateRequest { account_id: a.id.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let theirs = globex.list_activities(pb::ListActivitiesRequest::default()).await.unwrap().into_inner();
    assert!(theirs.activities.is_empty());
    // A viewer does not log.
    let mut viewer = client(&app, "acme", Role::Viewer);
    let err = viewer
        .log_activity(pb::LogActivityRequest { activity: Some(activity(&a.id, K::Note, 1)), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Bad list and rate requests.
    let err = c
        .list_activities(pb::ListActivitiesRequest { kinds: vec![0], page_size: -1, ..Default::default() })
        .await
        .unwrap_err();
    let fields: Vec<String> = violations(&err).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["page_size", "kinds[0]"]);
    let err = c
        .get_email_response_rate(pb::GetEmailResponseRateRequest {
            account_id: a.id.clone(),
            start_time: ts(chrono::Utc::now()),
            end_time: ts(chrono::Utc::now() - chrono::Duration::days(1)),
        })
        .await
        .unwrap_err();
    assert_violation(&err, "end_time");
    // Only the two good activities exist.
    let mine = c.list_activities(pb::ListActivitiesRequest::default()).await.unwrap().into_inner();
    assert_eq!(mine.activities.len(), 2);
}

/// Timestamps outside 1970–9999 are INVALID_ARGUMENT naming the field,
/// never a panic of the date arithmetic (the default window is computed
/// with a checked subtraction); the edges themselves are answered.
#[tokio::test]
async fn email_response_rate_at_and_beyond_the_edges_of_time() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("A")).await;
    let at = |seconds: i64| Some(pbjson_types::Timestamp { seconds, nanos: 0 });
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let req = |start_time, end_time| pb::GetEmailResponseRateRequest { account_id: a.id.clone(), start_time, end_time };
    let cases = [
        ("end_time", req(None, at(i64::MIN))),
        ("end_time", req(None, at(i64::MAX))),
        ("end_time", req(None, at(-1))),
        ("end_time", req(None, at(LAST + 1))),
        ("end_time", req(None, Some(pbjson_types::Timestamp { seconds: 0, nanos: -1 }))),
        ("start_time", req(at(i64::MIN), None)),
        ("start_time", req(at(i64::MAX), at(0))),
        ("start_time", req(at(-62_135_596_800), at(0))),
        ("end_time", req(at(0), at(0))),
        ("end_time", req(at(LAST), at(0))),
    ];
    for (field, bad) in cases {
        let err = c.get_email_response_rate(bad.clone()).await.expect_err(&format!("{bad:?}"));
        assert_violation(&err, field);
        assert!(banso_testkit::status_wire_size(&err) < 8192);
    }
    // The first and last instants are in range: answered, with nothing sent.
    for ok in [req(None, at(0)), req(at(0), at(LAST)), req(at(LAST - 1), at(LAST)), req(at(0), at(1))] {
        let r = c.get_email_response_rate(ok.clone()).await.unwrap_or_else(|e| panic!("{ok:?}: {e:?}")).into_inner();
        assert_eq!((r.emails_sent, r.response_rate), (0, None));
    }
    // And the server still serves.
    c.get_account(pb::GetAccountRequest { id: a.id.clone() }).await.unwrap();
}
