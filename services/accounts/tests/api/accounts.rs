//! Every Account method's happy path, filters, idempotency and etags.

use banso_proto::{accounts as pb, types as tpb};
use tonic::Code;

use crate::common::*;

fn full_account() -> pb::Account {
    let mut attrs = std::collections::HashMap::new();
    attrs.insert("seats".to_string(), tpb::AttributeValue { kind: Some(tpb::attribute_value::Kind::IntValue(120)) });
    attrs.insert(
        "kickoff".to_string(),
        tpb::AttributeValue {
            kind: Some(tpb::attribute_value::Kind::DateValue(tpb::Date { year: 2026, month: 4, day: 1 })),
        },
    );
    pb::Account {
        name: "株式会社サンプル".into(),
        external_id: "crm-001".into(),
        industry: "製造業".into(),
        employee_count: Some(1200),
        revenue_band: "10B-100B JPY".into(),
        region: "Kanto".into(),
        plan_tier: "enterprise".into(),
        lifecycle_stage: pb::LifecycleStage::Adoption as i32,
        touch_model: pb::TouchModel::High as i32,
        owner_id: "csm-tanaka".into(),
        arr: money("JPY", 12_000_000),
        contract_start_date: date(2026, 4, 1),
        renewal_date: date(2027, 3, 31),
        tags: vec!["vip".into(), "重要".into(), "vip".into()],
        custom_attributes: attrs,
        ..Default::default()
    }
}

#[tokio::test]
async fn create_then_get_returns_every_field() {
    let app = spawn().await;
    let mut c = admin(&app);
    let created = create(&mut c, full_account()).await;
    assert!(uuid::Uuid::parse_str(&created.id).unwrap().get_version_num() == 7, "ids are UUIDv7");
    assert_eq!(created.name, "株式会社サンプル");
    assert_eq!(created.tags, vec!["vip", "重要"], "duplicate tags are dropped, order kept");
    assert_eq!(created.arr, money("JPY", 12_000_000));
    assert_eq!(created.employee_count, Some(1200));
    assert!(created.create_time.is_some() && !created.etag.is_empty());

    let got = c.get_account(pb::GetAccountRequest { id: created.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got, created, "a read returns exactly what the create returned");
}

#[tokio::test]
async fn update_changes_only_masked_fields_and_moves_the_etag() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, full_account()).await;
    let change = pb::Account {
        id: a.id.clone(),
        etag: a.etag.clone(),
        name: "ignored because not in the mask".into(),
        arr: money("JPY", 15_000_000),
        tags: vec!["expansion".into()],
        ..Default::default()
    };
    let updated = c
        .update_account(pb::UpdateAccountRequest { account: Some(change), update_mask: mask(&["arr", "tags"]) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name, a.name);
    assert_eq!(updated.arr, money("JPY", 15_000_000));
    assert_eq!(updated.tags, vec!["expansion"]);
    assert_ne!(updated.etag, a.etag);
    assert_eq!(updated.create_time, a.create_time);

    // The tag index follows the update.
    let by_old_tag = list(&mut c, pb::AccountFilter { tag: "vip".into(), ..Default::default() }, "").await;
    assert!(by_old_tag.is_empty());
    let by_new_tag = list(&mut c, pb::AccountFilter { tag: "expansion".into(), ..Default::default() }, "").await;
    assert_eq!(by_new_tag.len(), 1);
}

#[tokio::test]
async fn stale_etag_is_aborted_on_update_and_delete() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("Acme")).await;
    let first = pb::Account { id: a.id.clone(), etag: a.etag.clone(), name: "Acme 2".into(), ..Default::default() };
    c.update_account(pb::UpdateAccountRequest { account: Some(first.clone()), update_mask: mask(&["name"]) })
        .await
        .unwrap();
    // The same etag again is now stale.
    let err = c
        .update_account(pb::UpdateAccountRequest { account: Some(first), update_mask: mask(&["name"]) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(reason(&err), "ETAG_MISMATCH");
    let err = c.delete_account(pb::DeleteAccountRequest { id: a.id.clone(), etag: a.etag.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    // Nothing was lost: the account is still there with the first update.
    let got = c.get_account(pb::GetAccountRequest { id: a.id }).await.unwrap().into_inner();
    assert_eq!(got.name, "Acme 2");
}

/// Deleting an account takes it out of the tag filter, and its tags stay
/// free for other accounts (that no tag row outlives its account is the
/// store's own unit test: the API cannot see such a row).
#[tokio::test]
async fn delete_removes_the_account_from_its_tags() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, pb::Account { tags: vec!["vip".into(), "beta".into()], ..account("Acme") }).await;
    c.delete_account(pb::DeleteAccountRequest { id: a.id.clone(), etag: String::new() }).await.unwrap();
    let beta = list(&mut c, pb::AccountFilter { tag: "beta".into(), ..Default::default() }, "").await;
    assert!(beta.is_empty(), "{beta:?}");
    let b = create(&mut c, pb::Account { tags: vec!["vip".into()], ..account("Beta") }).await;
    let vip = list(&mut c, pb::AccountFilter { tag: "vip".into(), ..Default::default() }, "").await;
    assert_eq!(vip.iter().map(|x| x.id.clone()).collect::<Vec<_>>(), [b.id]);
}

#[tokio::test]
async fn an_unchanged_update_keeps_the_etag() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("Same")).await;
    let same = pb::Account { id: a.id.clone(), name: "Same".into(), ..Default::default() };
    let u =
        c.update_account(pb::UpdateAccountRequest { account: Some(same), update_mask: mask(&["name"]) }).await.unwrap();
    assert_eq!(u.into_inner().etag, a.etag);
}

#[tokio::test]
async fn delete_removes_the_account_and_its_contacts() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("Gone")).await;
    let contact = c
        .create_contact(pb::CreateContactRequest {
            contact: Some(pb::Contact { account_id: a.id.clone(), name: "山田 太郎".into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    c.delete_account(pb::DeleteAccountRequest { id: a.id.clone(), etag: a.etag.clone() }).await.unwrap();
    assert_eq!(c.get_account(pb::GetAccountRequest { id: a.id.clone() }).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(c.get_contact(pb::GetContactRequest { id: contact.id }).await.unwrap_err().code(), Code::NotFound);
    let again = c.delete_account(pb::DeleteAccountRequest { id: a.id, etag: String::new() }).await.unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
}

#[tokio::test]
async fn retried_create_with_a_request_id_writes_one_account() {
    let app = spawn().await;
    let mut c = admin(&app);
    let req = pb::CreateAccountRequest { account: Some(account("Once")), request_id: "req-7f3a".into() };
    let first = c.create_account(req.clone()).await.unwrap().into_inner();
    let second = c.create_account(req.clone()).await.unwrap().into_inner();
    assert_eq!(first, second);

    // Concurrent first attempts with one key also create one account.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let mut c = c.clone();
            let req = pb::CreateAccountRequest { account: Some(account("Race")), request_id: "req-race".into() };
            tokio::spawn(async move { c.create_account(req).await.map(|r| r.into_inner().id) })
        })
        .collect();
    let mut ids = Vec::new();
    for r in racers {
        ids.push(r.await.unwrap().expect("every racer gets the account"));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "all racers see one account: {ids:?}");

    let all = list(&mut c, Default::default(), "").await;
    assert_eq!(all.len(), 2, "one row per request id: {:?}", all.iter().map(|a| &a.name).collect::<Vec<_>>());

    // The key belongs to its tenant: another tenant's identical key creates its own.
    let mut other = client(&app, "globex", Role::Csm);
    let theirs = other.create_account(req).await.unwrap().into_inner();
    assert_ne!(theirs.id, first.id);
}

#[tokio::test]
async fn external_ids_are_unique_per_tenant() {
    let app = spawn().await;
    let mut c = admin(&app);
    create(&mut c, pb::Account { external_id: "crm-1".into(), ..account("A") }).await;
    let err = c
        .create_account(pb::CreateAccountRequest {
            account: Some(pb::Account { external_id: "crm-1".into(), ..account("B") }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().contains("crm-1"), "{}", err.message());
    assert!(!err.message().to_lowercase().contains("constraint"), "no SQL in errors: {}", err.message());
    // Another tenant may use the same CRM id.
    let mut other = client(&app, "globex", Role::Admin);
    create(&mut other, pb::Account { external_id: "crm-1".into(), ..account("B") }).await;
}

#[tokio::test]
async fn upsert_creates_then_updates_by_external_id() {
    let app = spawn().await;
    let mut c = admin(&app);
    let first = c
        .upsert_account(pb::UpsertAccountRequest { account: Some(full_account()), update_mask: None })
        .await
        .unwrap()
        .into_inner();
    assert!(first.created);
    let change = pb::Account { external_id: "crm-001".into(), plan_tier: "premium".into(), ..Default::default() };
    let second = c
        .upsert_account(pb::UpsertAccountRequest { account: Some(change), update_mask: mask(&["plan_tier"]) })
        .await
        .unwrap()
        .into_inner();
    assert!(!second.created);
    let (a1, a2) = (first.account.unwrap(), second.account.unwrap());
    assert_eq!(a1.id, a2.id);
    assert_eq!(a2.plan_tier, "premium");
    assert_eq!(a2.name, a1.name, "fields outside the mask are kept");

    // An upsert that would create needs a complete account.
    let partial = pb::Account { external_id: "crm-new".into(), plan_tier: "x".into(), ..Default::default() };
    let err = c
        .upsert_account(pb::UpsertAccountRequest { account: Some(partial), update_mask: mask(&["plan_tier"]) })
        .await
        .unwrap_err();
    assert_violation(&err, "account.name");
    assert_violation(&err, "account.lifecycle_stage");
}

#[tokio::test]
async fn batch_get_keeps_request_order_and_names_the_missing_id() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("A")).await;
    let b = create(&mut c, account("B")).await;
    let got = c
        .batch_get_accounts(pb::BatchGetAccountsRequest { ids: vec![b.id.clone(), a.id.clone()] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.accounts.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), ["B", "A"]);
    let missing = uuid::Uuid::now_v7().to_string();
    let err = c
        .batch_get_accounts(pb::BatchGetAccountsRequest { ids: vec![a.id.clone(), missing.clone()] })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains(&missing));
}

pub async fn list(c: &mut Client, filter: pb::AccountFilter, order_by: &str) -> Vec<pb::Account> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_accounts(pb::ListAccountsRequest {
                page_size: 2,
                page_token: token.clone(),
                filter: Some(filter.clone()),
                order_by: order_by.into(),
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(page.accounts);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

fn names(accounts: &[pb::Account]) -> Vec<&str> {
    accounts.iter().map(|a| a.name.as_str()).collect()
}

#[tokio::test]
async fn every_list_filter_and_order() {
    let app = spawn().await;
    let mut c = admin(&app);
    use pb::{LifecycleStage as S, TouchModel as T};
    let seed = [
        (
            "株式会社あおば",
            S::Adoption,
            T::High,
            "u1",
            "製造業",
            "Kanto",
            "enterprise",
            "large",
            &["vip"][..],
            Some((2027, 1, 31)),
            Some(("JPY", 5_000_000)),
        ),
        (
            "株式会社いろは",
            S::Renewal,
            T::Low,
            "u2",
            "小売",
            "Kansai",
            "standard",
            "mid",
            &["vip", "risk"],
            Some((2026, 12, 1)),
            Some(("JPY", 1_200_000)),
        ),
        (
            "Acme Corp",
            S::Expansion,
            T::Tech,
            "u1",
            "SaaS",
            "US",
            "starter",
            "small",
            &[],
            Some((2027, 6, 30)),
            Some(("USD", 990_000)),
        ),
        ("acme labs", S::Churned, T::Tech, "u3", "SaaS", "US", "starter", "small", &["risk"], None, None),
        (
            "Beta KK",
            S::Onboarding,
            T::High,
            "u2",
            "製造業",
            "Kanto",
            "enterprise",
            "large",
            &[],
            Some((2027, 1, 31)),
            Some(("JPY", 30_000_000)),
        ),
    ];
    for (name, stage, touch, owner, industry, region, plan, band, tags, renewal, arr) in seed {
        create(
            &mut c,
            pb::Account {
                name: name.into(),
                lifecycle_stage: stage as i32,
                touch_model: touch as i32,
                owner_id: owner.into(),
                industry: industry.into(),
                region: region.into(),
                plan_tier: plan.into(),
                revenue_band: band.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                renewal_date: renewal.and_then(|(y, m, d)| date(y, m, d)),
                arr: arr.and_then(|(cur, amt)| money(cur, amt)),
                ..Default::default()
            },
        )
        .await;
    }
    let f = pb::AccountFilter::default;
    let check = |got: Vec<pb::Account>, want: &[&str]| {
        let mut got: Vec<String> = names(&got).into_iter().map(String::from).collect();
        got.sort();
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want);
    };
    check(
        list(&mut c, pb::AccountFilter { lifecycle_stages: vec![S::Renewal as i32, S::Churned as i32], ..f() }, "")
            .await,
        &["株式会社いろは", "acme labs"],
    );
    check(
        list(&mut c, pb::AccountFilter { touch_models: vec![T::Tech as i32], ..f() }, "").await,
        &["Acme Corp", "acme labs"],
    );
    check(list(&mut c, pb::AccountFilter { owner_id: "u2".into(), ..f() }, "").await, &["株式会社いろは", "Beta KK"]);
    check(
        list(&mut c, pb::AccountFilter { industry: "製造業".into(), ..f() }, "").await,
        &["株式会社あおば", "Beta KK"],
    );
    check(list(&mut c, pb::AccountFilter { region: "US".into(), ..f() }, "").await, &["Acme Corp", "acme labs"]);
    check(
        list(&mut c, pb::AccountFilter { plan_tier: "enterprise".into(), ..f() }, "").await,
        &["株式会社あおば", "Beta KK"],
    );
    check(list(&mut c, pb::AccountFilter { revenue_band: "mid".into(), ..f() }, "").await, &["株式会社いろは"]);
    check(list(&mut c, pb::AccountFilter { tag: "risk".into(), ..f() }, "").await, &["株式会社いろは", "acme labs"]);
    check(
        list(
            &mut c,
            pb::AccountFilter { renewal_date_from: date(2027, 1, 1), renewal_date_to: date(2027, 1, 31), ..f() },
            "",
        )
        .await,
        &["株式会社あおば", "Beta KK"],
    );
    check(
        list(
            &mut c,
            pb::AccountFilter { arr_min: money("JPY", 1_000_000), arr_max: money("JPY", 5_000_000), ..f() },
            "",
        )
        .await,
        &["株式会社あおば", "株式会社いろは"],
    );
    check(list(&mut c, pb::AccountFilter { arr_min: money("USD", 1), ..f() }, "").await, &["Acme Corp"]);
    check(
        list(&mut c, pb::AccountFilter { name_prefix: "株式会社".into(), ..f() }, "").await,
        &["株式会社あおば", "株式会社いろは"],
    );
    check(list(&mut c, pb::AccountFilter { name_prefix: "Acme".into(), ..f() }, "").await, &["Acme Corp"]); // case-sensitive
    check(
        list(&mut c, pb::AccountFilter { owner_id: "u1".into(), tag: "vip".into(), ..f() }, "").await,
        &["株式会社あおば"],
    );

    // Orders; accounts without a renewal date or ARR come last either way.
    assert_eq!(
        names(&list(&mut c, f(), "").await),
        ["株式会社あおば", "株式会社いろは", "Acme Corp", "acme labs", "Beta KK"]
    );
    assert_eq!(
        names(&list(&mut c, f(), "create_time desc").await),
        ["Beta KK", "acme labs", "Acme Corp", "株式会社いろは", "株式会社あおば"]
    );
    let by_renewal = list(&mut c, f(), "renewal_date").await;
    assert_eq!(names(&by_renewal), ["株式会社いろは", "株式会社あおば", "Beta KK", "Acme Corp", "acme labs"]);
    let by_renewal_desc = list(&mut c, f(), "renewal_date desc").await;
    assert_eq!(names(&by_renewal_desc), ["Acme Corp", "Beta KK", "株式会社あおば", "株式会社いろは", "acme labs"]);
    let by_arr_desc = list(&mut c, f(), "arr desc").await;
    assert_eq!(names(&by_arr_desc), ["Beta KK", "株式会社あおば", "株式会社いろは", "Acme Corp", "acme labs"]);
    let by_name = list(&mut c, f(), "name").await;
    assert_eq!(by_name.len(), 5);
    let mut sorted = names(&by_name).into_iter().map(String::from).collect::<Vec<_>>();
    sorted.sort();
    // Byte order on SQLite, collation order on PostgreSQL: both list each once.
    assert_eq!(sorted.len(), 5);
    assert_eq!(list(&mut c, f(), "update_time desc").await.len(), 5);
}
