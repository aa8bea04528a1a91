//! Segments: saved CEL account filters. CRUD with masks, etags and
//! idempotency; evaluation over a seeded set of accounts (members in
//! creation order, paged); counts with evaluation errors; membership checks;
//! and bad input (a CEL error names its line and column).

use std::collections::HashSet;

use banso_proto::{accounts as pb, types as tpb};
use base64::Engine;
use chrono::{Datelike, NaiveDate};
use tonic::Code;

use crate::common::*;

fn segment(display_name: &str, expression: &str) -> pb::Segment {
    pb::Segment { display_name: display_name.into(), expression: expression.into(), ..Default::default() }
}

async fn create_segment(c: &mut Client, display_name: &str, expression: &str) -> pb::Segment {
    c.create_segment(pb::CreateSegmentRequest {
        segment: Some(segment(display_name, expression)),
        request_id: "".into(),
    })
    .await
    .unwrap_or_else(|e| panic!("create segment {expression:?}: {e:?}"))
    .into_inner()
}

/// Every member of a segment, paging with `page_size` until the token runs
/// out. A page may hold fewer than `page_size` members (even none) while a
/// next_page_token is set (the per-call scan budget): keep paging.
async fn members(c: &mut Client, segment_id: &str, page_size: i32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token = String::new();
    for _ in 0..1000 {
        let page = c
            .evaluate_segment(pb::EvaluateSegmentRequest {
                segment_id: segment_id.into(),
                page_size,
                page_token: token.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("evaluate segment {segment_id}: {e:?}"))
            .into_inner();
        assert!(page.accounts.len() <= page_size as usize, "a page holds at most page_size members");
        ids.extend(page.accounts.into_iter().map(|a| a.id));
        if page.next_page_token.is_empty() {
            let unique: HashSet<_> = ids.iter().collect();
            assert_eq!(unique.len(), ids.len(), "no member is listed twice: {ids:?}");
            return ids;
        }
        token = page.next_page_token;
    }
    panic!("EvaluateSegment never ran out of pages");
}

async fn count(c: &mut Client, segment_id: &str) -> (i64, i64, i64) {
    let r = c
        .count_segment_members(pb::CountSegmentMembersRequest { segment_id: segment_id.into() })
        .await
        .unwrap()
        .into_inner();
    (r.member_count, r.evaluated_count, r.error_count)
}

async fn check(c: &mut Client, segment_id: &str, account_id: &str) -> pb::CheckSegmentMembershipResponse {
    c.check_segment_membership(pb::CheckSegmentMembershipRequest {
        segment_id: segment_id.into(),
        account_id: account_id.into(),
    })
    .await
    .unwrap()
    .into_inner()
}

fn pdate(d: NaiveDate) -> Option<tpb::Date> {
    date(d.year(), d.month() as i32, d.day() as i32)
}

fn int_attr(name: &str, v: i64) -> (String, tpb::AttributeValue) {
    (name.into(), tpb::AttributeValue { kind: Some(tpb::attribute_value::Kind::IntValue(v)) })
}

fn bool_attr(name: &str, v: bool) -> (String, tpb::AttributeValue) {
    (name.into(), tpb::AttributeValue { kind: Some(tpb::attribute_value::Kind::BoolValue(v)) })
}

/// Today in Asia/Tokyo, the zone the seeded tenant is set to: the zone
/// `days_to_renewal` is counted in. Renewal dates are set relative to it so
/// the test does not rot.
fn today_in_tokyo() -> NaiveDate {
    chrono::Utc::now().with_timezone(&chrono_tz::Asia::Tokyo).date_naive()
}

struct Seeded {
    /// In creation order: alpha, beta, gamma, delta, epsilon, zeta.
    ids: Vec<String>,
    today: NaiveDate,
}

/// Six accounts of tenant "acme" (Asia/Tokyo), created one after another,
/// and one of tenant "globex" that would match almost every segment.
///
/// | # | name | stage | tags | ARR | industry | renewal | attributes |
/// |---|---|---|---|---|---|---|---|
/// | 0 | 株式会社アルファ | renewal | vip, jp-east | JPY 12,000,000 | 製造業 | today+30 | seats 150 |
/// | 1 | Beta Inc | adoption | – | USD 50,000,000 (minor) | Software | – | – |
/// | 2 | 株式会社ガンマ | renewal | jp-west | JPY 3,000,000 | 小売業 | today+200 | seats 40 |
/// | 3 | Delta KK | churned | vip | – | 製造業 | – | trial true |
/// | 4 | 株式会社イプシロン | expansion | vip, jp-north | JPY 20,000,000 | 製造業 | today−10 | seats 500 |
/// | 5 | Zeta | onboarding | enterprise | JPY 800,000 | 情報通信業 | today+60 | – |
async fn seed(app: &banso_testkit::TestApp) -> Seeded {
    let mut c = admin(app);
    c.update_tenant_settings(pb::UpdateTenantSettingsRequest {
        settings: Some(pb::TenantSettings { time_zone: "Asia/Tokyo".into(), ..Default::default() }),
        update_mask: mask(&["time_zone"]),
    })
    .await
    .unwrap();
    let today = today_in_tokyo();
    let days = |n: i64| pdate(today + chrono::Duration::days(n));
    use pb::LifecycleStage as S;
    let rows = vec![
        pb::Account {
            lifecycle_stage: S::Renewal as i32,
            tags: vec!["vip".into(), "jp-east".into()],
            arr: money("JPY", 12_000_000),
            industry: "製造業".into(),
            renewal_date: days(30),
            custom_attributes: [int_attr("seats", 150)].into(),
            ..account("株式会社アルファ")
        },
        pb::Account {
            lifecycle_stage: S::Adoption as i32,
            arr: money("USD", 50_000_000),
            industry: "Software".into(),
            ..account("Beta Inc")
        },
        pb::Account {
            lifecycle_stage: S::Renewal as i32,
            tags: vec!["jp-west".into()],
            arr: money("JPY", 3_000_000),
            industry: "小売業".into(),
            renewal_date: days(200),
            custom_attributes: [int_attr("seats", 40)].into(),
            ..account("株式会社ガンマ")
        },
        pb::Account {
            lifecycle_stage: S::Churned as i32,
            tags: vec!["vip".into()],
            industry: "製造業".into(),
            custom_attributes: [bool_attr("trial", true)].into(),
            ..account("Delta KK")
        },
        pb::Account {
            lifecycle_stage: S::Expansion as i32,
            tags: vec!["vip".into(), "jp-north".into()],
            arr: money("JPY", 20_000_000),
            industry: "製造業".into(),
            renewal_date: days(-10),
            custom_attributes: [int_attr("seats", 500)].into(),
            ..account("株式会社イプシロン")
        },
        pb::Account {
            lifecycle_stage: S::Onboarding as i32,
            tags: vec!["enterprise".into()],
            arr: money("JPY", 800_000),
            industry: "情報通信業".into(),
            renewal_date: days(60),
            ..account("Zeta")
        },
    ];
    let mut ids = Vec::new();
    // One at a time: creation order is the order members are listed in.
    for a in rows {
        ids.push(create(&mut c, a).await.id);
    }
    // Another tenant's account matching nearly everything: never evaluated for acme.
    let mut globex = client(app, "globex", Role::Admin);
    create(
        &mut globex,
        pb::Account {
            lifecycle_stage: S::Renewal as i32,
            tags: vec!["vip".into(), "jp-east".into(), "enterprise".into()],
            arr: money("JPY", 99_000_000),
            industry: "製造業".into(),
            renewal_date: days(30),
            custom_attributes: [int_attr("seats", 9999)].into(),
            ..account("Globex 株式会社")
        },
    )
    .await;
    Seeded { ids, today }
}

#[tokio::test]
async fn create_get_list_update_delete_a_segment() {
    let app = spawn().await;
    let mut c = admin(&app);
    let created = c
        .create_segment(pb::CreateSegmentRequest {
            segment: Some(pb::Segment {
                display_name: "  更新間近のVIP  ".into(),
                description: "VIP accounts renewing within 90 days".into(),
                expression: "'vip' in account.tags && account.days_to_renewal != null && account.days_to_renewal <= 90"
                    .into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(uuid::Uuid::parse_str(&created.id).unwrap().get_version_num(), 7, "ids are UUIDv7");
    assert_eq!(created.display_name, "更新間近のVIP", "the display name is trimmed");
    assert_eq!(created.description, "VIP accounts renewing within 90 days");
    assert!(created.expression.starts_with("'vip' in account.tags"));
    assert!(created.create_time.is_some() && created.update_time.is_some() && !created.etag.is_empty());

    let got = c.get_segment(pb::GetSegmentRequest { id: created.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got, created, "a read returns exactly what the create returned");

    // A masked update changes only the masked field, even if the others are
    // different (and would be invalid) in the request.
    let change = pb::Segment {
        id: created.id.clone(),
        etag: created.etag.clone(),
        display_name: "Renewing VIPs".into(),
        expression: "this is not CEL ((".into(),
        ..Default::default()
    };
    let updated = c
        .update_segment(pb::UpdateSegmentRequest {
            segment: Some(change.clone()),
            update_mask: mask(&["display_name"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.display_name, "Renewing VIPs");
    assert_eq!(updated.expression, created.expression);
    assert_eq!(updated.description, created.description);
    assert_eq!(updated.create_time, created.create_time);
    assert_ne!(updated.etag, created.etag, "a change moves the etag");

    // The etag we sent is now stale.
    let err = c
        .update_segment(pb::UpdateSegmentRequest { segment: Some(change), update_mask: mask(&["display_name"]) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(reason(&err), "ETAG_MISMATCH");

    // An update that changes nothing keeps the etag.
    let same = pb::Segment { id: created.id.clone(), display_name: "Renewing VIPs".into(), ..Default::default() };
    let unchanged = c
        .update_segment(pb::UpdateSegmentRequest { segment: Some(same), update_mask: mask(&["display_name"]) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.etag, updated.etag);

    // An empty mask updates every mutable field, each validated.
    let all = pb::Segment {
        id: created.id.clone(),
        etag: updated.etag.clone(),
        display_name: "Manufacturing".into(),
        description: String::new(),
        expression: "account.industry == '製造業'".into(),
        ..Default::default()
    };
    let replaced = c
        .update_segment(pb::UpdateSegmentRequest { segment: Some(all), update_mask: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (replaced.display_name.as_str(), replaced.description.as_str(), replaced.expression.as_str()),
        ("Manufacturing", "", "account.industry == '製造業'")
    );

    // An invalid expression in the mask is refused and nothing changes.
    let bad = pb::Segment { id: created.id.clone(), expression: "account.nmae == 'x'".into(), ..Default::default() };
    let err = c
        .update_segment(pb::UpdateSegmentRequest { segment: Some(bad), update_mask: mask(&["expression"]) })
        .await
        .unwrap_err();
    assert_violation(&err, "segment.expression");
    // A field that cannot be updated.
    let err = c
        .update_segment(pb::UpdateSegmentRequest {
            segment: Some(pb::Segment { id: created.id.clone(), ..Default::default() }),
            update_mask: mask(&["create_time"]),
        })
        .await
        .unwrap_err();
    assert_violation(&err, "update_mask");
    let now = c.get_segment(pb::GetSegmentRequest { id: created.id.clone() }).await.unwrap().into_inner();
    assert_eq!(now, replaced, "refused updates changed nothing");

    // Delete: a stale etag is ABORTED, the current one deletes.
    let err = c
        .delete_segment(pb::DeleteSegmentRequest { id: created.id.clone(), etag: created.etag.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(reason(&err), "ETAG_MISMATCH");
    c.delete_segment(pb::DeleteSegmentRequest { id: created.id.clone(), etag: replaced.etag.clone() }).await.unwrap();
    let err = c.get_segment(pb::GetSegmentRequest { id: created.id.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err =
        c.delete_segment(pb::DeleteSegmentRequest { id: created.id.clone(), etag: String::new() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .evaluate_segment(pb::EvaluateSegmentRequest { segment_id: created.id.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let list = c.list_segments(pb::ListSegmentsRequest::default()).await.unwrap().into_inner();
    assert!(list.segments.is_empty());
}

#[tokio::test]
async fn list_segments_pages_oldest_first() {
    let app = spawn().await;
    let mut c = admin(&app);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create_segment(&mut c, &format!("セグメント{i}"), &format!("account.arr > {i}")).await.id);
    }
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_segments(pb::ListSegmentsRequest { page_size: 2, page_token: token.clone() })
            .await
            .unwrap()
            .into_inner();
        sizes.push(page.segments.len());
        seen.extend(page.segments.into_iter().map(|s| s.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ids, "every segment once, oldest first");
    assert_eq!(sizes, [2, 2, 1]);

    // The default page holds all five; another tenant sees none of them.
    let all = c.list_segments(pb::ListSegmentsRequest::default()).await.unwrap().into_inner();
    assert_eq!(all.segments.len(), 5);
    assert!(all.next_page_token.is_empty());
    let theirs = client(&app, "globex", Role::Viewer)
        .list_segments(pb::ListSegmentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(theirs.segments.is_empty());

    // Bad paging input.
    let err = c.list_segments(pb::ListSegmentsRequest { page_size: -1, page_token: "".into() }).await.unwrap_err();
    assert_violation(&err, "page_size");
    let first =
        c.list_segments(pb::ListSegmentsRequest { page_size: 2, page_token: "".into() }).await.unwrap().into_inner();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut raw = engine.decode(&first.next_page_token).unwrap();
    raw[2] ^= 0x01;
    for bad in [engine.encode(raw), "garbage!".to_string()] {
        let err = c.list_segments(pb::ListSegmentsRequest { page_size: 2, page_token: bad }).await.unwrap_err();
        assert_violation(&err, "page_token");
    }
    // A token of another tenant.
    let err = client(&app, "globex", Role::Admin)
        .list_segments(pb::ListSegmentsRequest { page_size: 2, page_token: first.next_page_token })
        .await
        .unwrap_err();
    assert_violation(&err, "page_token");
}

#[tokio::test]
async fn a_retried_create_with_a_request_id_writes_one_segment() {
    let app = spawn().await;
    let mut c = admin(&app);
    let req = pb::CreateSegmentRequest {
        segment: Some(segment("Enterprise", "'enterprise' in account.tags")),
        request_id: "seg-req-1".into(),
    };
    let first = c.create_segment(req.clone()).await.unwrap().into_inner();
    let second = c.create_segment(req.clone()).await.unwrap().into_inner();
    assert_eq!(first, second);

    // Concurrent first attempts with one key also create one segment.
    let racers: Vec<_> = (0..6)
        .map(|_| {
            let mut c = c.clone();
            let req = pb::CreateSegmentRequest { request_id: "seg-req-2".into(), ..req.clone() };
            async move { c.create_segment(req).await.unwrap().into_inner().id }
        })
        .collect();
    let ids: HashSet<String> = futures::future::join_all(racers).await.into_iter().collect();
    assert_eq!(ids.len(), 1, "one segment for one key, got {ids:?}");

    // The same key in another tenant is another request.
    let theirs = client(&app, "globex", Role::Admin).create_segment(req).await.unwrap().into_inner();
    assert_ne!(theirs.id, first.id);

    let list = c.list_segments(pb::ListSegmentsRequest::default()).await.unwrap().into_inner();
    let listed: Vec<&str> = list.segments.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(listed.len(), 2, "one segment per key: {listed:?}");
    assert_eq!(listed[0], first.id);
}

#[tokio::test]
async fn evaluate_lists_exactly_the_members_in_creation_order() {
    let app = spawn().await;
    let Seeded { ids, today } = seed(&app).await;
    let mut c = admin(&app);
    let soon = today + chrono::Duration::days(100);
    let cases: Vec<(&str, String, Vec<usize>)> = vec![
        ("stage", "account.lifecycle_stage == 'renewal'".into(), vec![0, 2]),
        ("tag", "'vip' in account.tags".into(), vec![0, 3, 4]),
        ("ARR, any currency", "account.arr >= 10000000".into(), vec![0, 1, 4]),
        ("ARR in yen", "account.arr >= 10000000 && account.arr_currency == 'JPY'".into(), vec![0, 4]),
        ("no ARR", "account.arr_currency == ''".into(), vec![3]),
        ("Japanese industry", "account.industry == '製造業'".into(), vec![0, 3, 4]),
        ("not an industry", "account.industry != '製造業' && account.industry != 'Software'".into(), vec![2, 5]),
        ("attribute with has()", "has(account.attributes.seats) && account.attributes.seats > 100".into(), vec![0, 4]),
        ("bool attribute", "has(account.attributes.trial) && account.attributes.trial".into(), vec![3]),
        ("index read of a missing attribute", "account.attributes['seats'] == null".into(), vec![1, 3, 5]),
        (
            "renewal date with a null guard",
            format!("account.renewal_date != null && account.renewal_date < timestamp('{soon}T00:00:00Z')"),
            vec![0, 4, 5],
        ),
        (
            "renews within 90 days",
            "account.days_to_renewal != null && account.days_to_renewal >= 0 && account.days_to_renewal <= 90".into(),
            vec![0, 5],
        ),
        ("renewal has passed", "account.days_to_renewal != null && account.days_to_renewal < 0".into(), vec![4]),
        ("no renewal date", "account.renewal_date == null".into(), vec![1, 3]),
        ("exists()", "account.tags.exists(t, t.startsWith('jp-'))".into(), vec![0, 2, 4]),
        ("all() is true on no tags", "account.tags.all(t, t != 'vip')".into(), vec![1, 2, 5]),
        (
            "stage and renewal, guarded by the stage",
            "account.lifecycle_stage == 'renewal' && account.days_to_renewal <= 90".into(),
            vec![0],
        ),
        (
            "multi-line with a comment",
            "// 製造業のVIP\n'vip' in account.tags &&\n  account.industry == '製造業'".into(),
            vec![0, 3, 4],
        ),
        ("everything", "true".into(), vec![0, 1, 2, 3, 4, 5]),
        ("nothing", "false".into(), vec![]),
    ];
    for (what, expression, expected) in cases {
        let s = create_segment(&mut c, what, &expression).await;
        let want: Vec<String> = expected.iter().map(|&i| ids[i].clone()).collect();
        for page_size in [1, 2, 50] {
            assert_eq!(members(&mut c, &s.id, page_size).await, want, "{what}: {expression} (page size {page_size})");
        }
        assert_eq!(count(&mut c, &s.id).await, (want.len() as i64, 6, 0), "{what}: count, evaluated, errors");
        for (i, id) in ids.iter().enumerate() {
            let r = check(&mut c, &s.id, id).await;
            assert_eq!(r.member, expected.contains(&i), "{what}: check account {i}");
            assert_eq!(r.evaluation_error, "", "{what}: check account {i}");
        }
    }

    // days_to_renewal is exact, counted from today in the tenant's zone.
    let exact = create_segment(&mut c, "in 30 days", "account.days_to_renewal == 30").await;
    assert!(check(&mut c, &exact.id, &ids[0]).await.member, "alpha renews in exactly 30 days");
    assert!(!check(&mut c, &exact.id, &ids[5]).await.member);
    let passed = create_segment(&mut c, "10 days ago", "account.days_to_renewal == -10").await;
    assert!(check(&mut c, &passed.id, &ids[4]).await.member, "epsilon's renewal was 10 days ago");

    // Evaluation uses the segment's expression as it is now.
    let renamed = c
        .update_segment(pb::UpdateSegmentRequest {
            segment: Some(pb::Segment {
                id: exact.id.clone(),
                expression: "'jp-east' in account.tags || 'jp-north' in account.tags".into(),
                ..Default::default()
            }),
            update_mask: mask(&["expression"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(members(&mut c, &renamed.id, 1).await, [ids[0].clone(), ids[4].clone()]);

    // Evaluation sees accounts as they are now.
    let vip = create_segment(&mut c, "VIP", "'vip' in account.tags").await;
    c.update_account(pb::UpdateAccountRequest {
        account: Some(pb::Account { id: ids[5].clone(), tags: vec!["vip".into()], ..Default::default() }),
        update_mask: mask(&["tags"]),
    })
    .await
    .unwrap();
    c.delete_account(pb::DeleteAccountRequest { id: ids[3].clone(), etag: String::new() }).await.unwrap();
    assert_eq!(members(&mut c, &vip.id, 2).await, [ids[0].clone(), ids[4].clone(), ids[5].clone()]);
    assert_eq!(count(&mut c, &vip.id).await, (3, 5, 0));

    // The members come back as whole accounts.
    let page = c
        .evaluate_segment(pb::EvaluateSegmentRequest {
            segment_id: vip.id.clone(),
            page_size: 1,
            page_token: "".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let alpha = c.get_account(pb::GetAccountRequest { id: ids[0].clone() }).await.unwrap().into_inner();
    assert_eq!(page.accounts, [alpha]);
    assert!(!page.next_page_token.is_empty());

    // A viewer may evaluate, count and check.
    let mut viewer = client(&app, "acme", Role::Viewer);
    assert_eq!(members(&mut viewer, &vip.id, 10).await.len(), 3);
    assert_eq!(count(&mut viewer, &vip.id).await.0, 3);
    assert!(check(&mut viewer, &vip.id, &ids[0]).await.member);
}

#[tokio::test]
async fn paging_members_through_many_non_members() {
    // Members are sparse among many accounts: pages may come back short (or
    // empty) with a token; paging to the end finds each member exactly once.
    let app = spawn().await;
    let c = admin(&app);
    let mut want = Vec::new();
    let mut all = Vec::new();
    for chunk in (0..240).collect::<Vec<usize>>().chunks(8) {
        let calls = chunk.iter().map(|&i| {
            let mut c = c.clone();
            async move {
                let tags = if i % 37 == 0 { vec!["needle".to_string()] } else { vec![] };
                (i, create(&mut c, pb::Account { tags, ..account(&format!("acct-{i:03}")) }).await.id)
            }
        });
        for (i, id) in futures::future::join_all(calls).await {
            all.push((i, id));
        }
    }
    // Creation order is id order (UUIDv7); concurrent creates may land in any order.
    all.sort_by(|a, b| a.1.cmp(&b.1));
    for (i, id) in &all {
        if i % 37 == 0 {
            want.push(id.clone());
        }
    }
    assert_eq!(want.len(), 7);
    let mut c = c;
    let s = create_segment(&mut c, "needles", "'needle' in account.tags").await;
    for page_size in [1, 3, 7, 1000] {
        assert_eq!(members(&mut c, &s.id, page_size).await, want, "page size {page_size}");
    }
    assert_eq!(count(&mut c, &s.id).await, (7, 240, 0));

    // A token is bound to its segment.
    let other = create_segment(&mut c, "other", "true").await;
    let first = c
        .evaluate_segment(pb::EvaluateSegmentRequest { segment_id: s.id.clone(), page_size: 1, page_token: "".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    let err = c
        .evaluate_segment(pb::EvaluateSegmentRequest {
            segment_id: other.id.clone(),
            page_size: 1,
            page_token: first.next_page_token.clone(),
        })
        .await
        .unwrap_err();
    assert_violation(&err, "page_token");
}

#[tokio::test]
async fn evaluation_errors_are_counted_and_reported_not_members() {
    let app = spawn().await;
    let Seeded { ids, .. } = seed(&app).await;
    let mut c = admin(&app);

    // No null guard: beta and delta have no renewal date, so comparing it fails.
    let unguarded =
        create_segment(&mut c, "renews this century", "account.renewal_date < timestamp('2100-01-01T00:00:00Z')").await;
    assert_eq!(count(&mut c, &unguarded.id).await, (4, 6, 2), "members, evaluated, errors");
    assert_eq!(
        members(&mut c, &unguarded.id, 2).await,
        [ids[0].clone(), ids[2].clone(), ids[4].clone(), ids[5].clone()],
        "accounts that fail are not members"
    );
    let ok = check(&mut c, &unguarded.id, &ids[0]).await;
    assert!(ok.member && ok.evaluation_error.is_empty(), "{ok:?}");
    for i in [1, 3] {
        let r = check(&mut c, &unguarded.id, &ids[i]).await;
        assert!(!r.member, "account {i}");
        assert!(r.evaluation_error.contains("null"), "account {i}: the error names the null: {r:?}");
    }

    // A dotted read of a missing attribute fails where it is unset: beta, delta, zeta.
    let attr = create_segment(&mut c, "big seats", "account.attributes.seats > 100").await;
    assert_eq!(count(&mut c, &attr.id).await, (2, 6, 3));
    let r = check(&mut c, &attr.id, &ids[5]).await;
    assert!(!r.member && r.evaluation_error.contains("seats"), "{r:?}");
    let r = check(&mut c, &attr.id, &ids[2]).await;
    assert!(!r.member && r.evaluation_error.is_empty(), "gamma has 40 seats: false, not an error: {r:?}");

    // A non-bool result is an error on every account.
    let name = create_segment(&mut c, "a name", "account.name").await;
    assert_eq!(count(&mut c, &name.id).await, (0, 6, 6));
    assert!(members(&mut c, &name.id, 10).await.is_empty());
    let r = check(&mut c, &name.id, &ids[0]).await;
    assert!(!r.member && r.evaluation_error.contains("bool"), "{r:?}");

    // days_to_renewal is null without a renewal date.
    let days = create_segment(&mut c, "soon", "account.days_to_renewal <= 90").await;
    assert_eq!(count(&mut c, &days.id).await, (3, 6, 2), "alpha, epsilon, zeta; beta and delta fail");
}

#[tokio::test]
async fn bad_expressions_are_refused_with_line_and_column() {
    let app = spawn().await;
    let mut c = admin(&app);
    let refuse = |expression: &str| pb::CreateSegmentRequest {
        segment: Some(segment("bad", expression)),
        request_id: String::new(),
    };
    let cases: &[(&str, &str, &str)] = &[
        // (expression, position in the description, text in the description)
        ("account.arr > 1 ||", "line 1, column 19", ""),
        // Columns count characters: the Japanese string does not shift them.
        ("account.industry == '製造業' &&", "line 1, column 29", ""),
        ("account.arr > 1 &&\n  )", "line 2, column 3", ""),
        ("account.nmae == 'x'", "line 1, column 9", "unknown field nmae of account"),
        ("has(account.nmae)", "line 1, column 13", "unknown field nmae"),
        ("acount.name == 'x'", "line 1, column 1", "unknown variable"),
        ("account.name.lowerAscii() == 'x'", "", "lowerAscii"),
        ("account.name.exists(c, c == 'a')", "", ""),
        ("", "line 1, column 1", "expression is empty"),
        ("   ", "", "empty"),
    ];
    for (expression, at, text) in cases {
        let err = c.create_segment(refuse(expression)).await.unwrap_err();
        let vs = violations(&err);
        let (_, description) = vs
            .iter()
            .find(|(f, _)| f == "segment.expression")
            .unwrap_or_else(|| panic!("{expression:?}: no violation on segment.expression in {vs:?}"));
        assert!(description.contains(at), "{expression:?}: {description:?} should name {at:?}");
        assert!(description.contains(text), "{expression:?}: {description:?} should say {text:?}");
    }
    let long = format!("account.arr > 1 && {}", "true && ".repeat(600)) + "true";
    let err = c.create_segment(refuse(&long)).await.unwrap_err();
    assert_violation(&err, "segment.expression");

    // Every bad field at once.
    let err = c
        .create_segment(pb::CreateSegmentRequest {
            segment: Some(pb::Segment {
                display_name: "  ".into(),
                description: "d".repeat(2001),
                expression: "account.nmae".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    let fields: Vec<String> = violations(&err).into_iter().map(|(f, _)| f).collect();
    for f in ["segment.display_name", "segment.description", "segment.expression"] {
        assert!(fields.iter().any(|x| x == f), "{f} missing in {fields:?}");
    }
    let err = c.create_segment(refuse_name("")).await.unwrap_err();
    assert_violation(&err, "segment.display_name");
    let err = c.create_segment(refuse_name(&"名".repeat(201))).await.unwrap_err();
    assert_violation(&err, "segment.display_name");
    let err = c.create_segment(pb::CreateSegmentRequest { segment: None, request_id: "".into() }).await.unwrap_err();
    assert_violation(&err, "segment");
    let err =
        c.create_segment(pb::CreateSegmentRequest { request_id: "x".repeat(129), ..refuse("true") }).await.unwrap_err();
    assert_violation(&err, "request_id");

    let list = c.list_segments(pb::ListSegmentsRequest::default()).await.unwrap().into_inner();
    assert!(list.segments.is_empty(), "nothing was saved: {:?}", list.segments);
}

fn refuse_name(display_name: &str) -> pb::CreateSegmentRequest {
    pb::CreateSegmentRequest { segment: Some(segment(display_name, "true")), request_id: String::new() }
}

#[tokio::test]
async fn bad_ids_tokens_other_tenants_and_roles() {
    let app = spawn().await;
    let mut c = admin(&app);
    let s = create_segment(&mut c, "VIP", "'vip' in account.tags").await;
    let a = create(&mut c, pb::Account { tags: vec!["vip".into()], ..account("Acme") }).await;
    create(&mut c, pb::Account { tags: vec!["vip".into()], ..account("Acme 2") }).await;

    // Malformed ids name their field.
    let err = c.get_segment(pb::GetSegmentRequest { id: "seg-1".into() }).await.unwrap_err();
    assert_violation(&err, "id");
    let err = c.delete_segment(pb::DeleteSegmentRequest { id: "".into(), etag: "".into() }).await.unwrap_err();
    assert_violation(&err, "id");
    let err = c
        .update_segment(pb::UpdateSegmentRequest {
            segment: Some(pb::Segment { id: "nope".into(), display_name: "x".into(), ..Default::default() }),
            update_mask: mask(&["display_name"]),
        })
        .await
        .unwrap_err();
    assert_violation(&err, "segment.id");
    let err = c
        .evaluate_segment(pb::EvaluateSegmentRequest { segment_id: "x".into(), page_size: -1, page_token: "".into() })
        .await
        .unwrap_err();
    assert_violation(&err, "segment_id");
    assert_violation(&err, "page_size");
    let err = c.count_segment_members(pb::CountSegmentMembersRequest { segment_id: "x".into() }).await.unwrap_err();
    assert_violation(&err, "segment_id");
    let err = c
        .check_segment_membership(pb::CheckSegmentMembershipRequest { segment_id: "x".into(), account_id: "y".into() })
        .await
        .unwrap_err();
    assert_violation(&err, "segment_id");
    assert_violation(&err, "account_id");

    // Well-formed unknown ids are NOT_FOUND.
    let unknown = uuid::Uuid::now_v7().to_string();
    let err = c.get_segment(pb::GetSegmentRequest { id: unknown.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .check_segment_membership(pb::CheckSegmentMembershipRequest {
            segment_id: s.id.clone(),
            account_id: unknown.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "unknown account");

    // A tampered page token.
    let first = c
        .evaluate_segment(pb::EvaluateSegmentRequest { segment_id: s.id.clone(), page_size: 1, page_token: "".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.accounts.len(), 1);
    assert!(!first.next_page_token.is_empty());
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut raw = engine.decode(&first.next_page_token).unwrap();
    raw[2] ^= 0x01;
    for bad in [engine.encode(raw), "garbage!".to_string(), format!("{}AA", first.next_page_token)] {
        let err = c
            .evaluate_segment(pb::EvaluateSegmentRequest { segment_id: s.id.clone(), page_size: 1, page_token: bad })
            .await
            .unwrap_err();
        assert_violation(&err, "page_token");
    }

    // Another tenant's segment does not exist for the caller.
    let mut globex = client(&app, "globex", Role::Admin);
    let theirs_account = create(&mut globex, pb::Account { tags: vec!["vip".into()], ..account("Globex") }).await;
    let err = globex.get_segment(pb::GetSegmentRequest { id: s.id.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "get");
    let err = globex
        .evaluate_segment(pb::EvaluateSegmentRequest { segment_id: s.id.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "evaluate");
    let err =
        globex.count_segment_members(pb::CountSegmentMembersRequest { segment_id: s.id.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "count");
    let err = globex
        .check_segment_membership(pb::CheckSegmentMembershipRequest {
            segment_id: s.id.clone(),
            account_id: theirs_account.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "check");
    let err = globex
        .update_segment(pb::UpdateSegmentRequest {
            segment: Some(pb::Segment { id: s.id.clone(), display_name: "mine".into(), ..Default::default() }),
            update_mask: mask(&["display_name"]),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "update");
    let err = globex.delete_segment(pb::DeleteSegmentRequest { id: s.id.clone(), etag: "".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "delete");
    // Their token on our segment, and our segment with their account.
    let err = c
        .check_segment_membership(pb::CheckSegmentMembershipRequest {
            segment_id: s.id.clone(),
            account_id: theirs_account.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "another tenant's account");
    let err = globex
        .evaluate_segment(pb::EvaluateSegmentRequest {
            segment_id: s.id.clone(),
            page_size: 1,
            page_token: first.next_page_token.clone(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err.code(), Code::NotFound | Code::InvalidArgument), "{err:?}");

    // Roles: a viewer reads but does not write.
    let mut viewer = client(&app, "acme", Role::Viewer);
    let err = viewer
        .create_segment(pb::CreateSegmentRequest { segment: Some(segment("v", "true")), request_id: "".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Checked before the request is validated.
    let err = viewer
        .create_segment(pb::CreateSegmentRequest { segment: Some(segment("", "account.nmae")), request_id: "".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = viewer
        .update_segment(pb::UpdateSegmentRequest {
            segment: Some(pb::Segment { id: s.id.clone(), display_name: "v".into(), ..Default::default() }),
            update_mask: mask(&["display_name"]),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = viewer.delete_segment(pb::DeleteSegmentRequest { id: s.id.clone(), etag: "".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(viewer.get_segment(pb::GetSegmentRequest { id: s.id.clone() }).await.unwrap().into_inner(), s);
    assert!(check(&mut viewer, &s.id, &a.id).await.member);
    // A csm writes.
    let mut csm = client(&app, "acme", Role::Csm);
    create_segment(&mut csm, "csm's", "true").await;

    let list = c.list_segments(pb::ListSegmentsRequest::default()).await.unwrap().into_inner();
    assert_eq!(list.segments.len(), 2);
    assert_eq!(list.segments[0], s, "the refused calls changed nothing");
}

#[tokio::test]
async fn days_to_renewal_counts_in_the_tenant_time_zone() {
    // Kiritimati (UTC+14) and Pago Pago (UTC−11) are 25 hours apart: at any
    // instant their dates differ, by one day or two. The same renewal date is
    // then a different number of days away depending on the tenant's zone.
    let app = spawn().await;
    let mut c = admin(&app);
    let set_zone = |zone: &'static str| pb::UpdateTenantSettingsRequest {
        settings: Some(pb::TenantSettings { time_zone: zone.into(), ..Default::default() }),
        update_mask: mask(&["time_zone"]),
    };
    let now = chrono::Utc::now();
    let east = now.with_timezone(&chrono_tz::Pacific::Kiritimati).date_naive();
    let west = now.with_timezone(&chrono_tz::Pacific::Pago_Pago).date_naive();
    assert!(east > west);
    let renewal = east + chrono::Duration::days(10);
    let a = create(&mut c, pb::Account { renewal_date: pdate(renewal), ..account("Pacific") }).await;
    let in_east = create_segment(&mut c, "east", "account.days_to_renewal == 10").await;
    let west_days = (renewal - west).num_days();
    let in_west = create_segment(&mut c, "west", &format!("account.days_to_renewal == {west_days}")).await;

    c.update_tenant_settings(set_zone("Pacific/Kiritimati")).await.unwrap();
    assert!(check(&mut c, &in_east.id, &a.id).await.member, "10 days away in Kiritimati");
    assert!(!check(&mut c, &in_west.id, &a.id).await.member);
    c.update_tenant_settings(set_zone("Pacific/Pago_Pago")).await.unwrap();
    assert!(!check(&mut c, &in_east.id, &a.id).await.member);
    assert!(check(&mut c, &in_west.id, &a.id).await.member, "{west_days} days away in Pago Pago");
    assert_eq!(members(&mut c, &in_west.id, 10).await, vec![a.id.clone()]);
}

/// Updates without an etag that race each other are retried, as those of
/// every resource: each is applied, none is lost or refused.
#[tokio::test]
async fn racing_updates_without_an_etag_are_retried_not_lost() {
    let app = spawn().await;
    let mut c = admin(&app);
    let s = create_segment(&mut c, "Racing", "true").await;
    let update = |field: &'static str, segment: pb::Segment| {
        let mut c = c.clone();
        async move {
            c.update_segment(pb::UpdateSegmentRequest { segment: Some(segment), update_mask: mask(&[field]) }).await
        }
    };
    let mut racers = Vec::new();
    for i in 0..4 {
        let desc = pb::Segment { id: s.id.clone(), description: format!("description {i}"), ..Default::default() };
        racers.push(tokio::spawn(update("description", desc)));
    }
    let name = pb::Segment { id: s.id.clone(), display_name: "Renamed".into(), ..Default::default() };
    racers.push(tokio::spawn(update("display_name", name)));
    for r in racers {
        r.await.unwrap().expect("a racing update without an etag is retried until it applies");
    }
    let got = c.get_segment(pb::GetSegmentRequest { id: s.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got.display_name, "Renamed", "the rename was not lost to the description updates");
    assert!(got.description.starts_with("description "), "{got:?}");
    assert_eq!(got.etag, "v6", "five updates, each applied once");
}
