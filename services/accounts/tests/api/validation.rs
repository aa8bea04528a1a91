//! Bad input: INVALID_ARGUMENT naming every bad field, and nothing written.

use banso_proto::{accounts as pb, types as tpb};
use tonic::Code;

use crate::common::*;

fn attr(kind: tpb::attribute_value::Kind) -> tpb::AttributeValue {
    tpb::AttributeValue { kind: Some(kind) }
}

#[tokio::test]
async fn every_bad_account_field_is_named() {
    let app = spawn().await;
    let mut c = admin(&app);
    use tpb::attribute_value::Kind;
    let cases: Vec<(&str, pb::Account)> = vec![
        ("account.name", pb::Account { name: "".into(), ..account("") }),
        ("account.name", account("   ")),
        ("account.name", account(&"株".repeat(201))),
        ("account.name", account("tab\tinside")),
        ("account.external_id", pb::Account { external_id: "x".repeat(129), ..account("A") }),
        ("account.industry", pb::Account { industry: "i".repeat(101), ..account("A") }),
        ("account.employee_count", pb::Account { employee_count: Some(-1), ..account("A") }),
        ("account.lifecycle_stage", pb::Account { lifecycle_stage: 0, ..account("A") }),
        ("account.lifecycle_stage", pb::Account { lifecycle_stage: 99, ..account("A") }),
        ("account.touch_model", pb::Account { touch_model: 0, ..account("A") }),
        ("account.owner_id", pb::Account { owner_id: "o".repeat(129), ..account("A") }),
        ("account.arr.currency_code", pb::Account { arr: money("YEN", 100), ..account("A") }),
        ("account.arr.currency_code", pb::Account { arr: money("", 100), ..account("A") }),
        ("account.arr.currency_code", pb::Account { arr: money("jpy", 100), ..account("A") }),
        ("account.arr.amount_minor", pb::Account { arr: money("JPY", -5), ..account("A") }),
        ("account.contract_start_date", pb::Account { contract_start_date: date(2026, 2, 30), ..account("A") }),
        ("account.renewal_date.year", pb::Account { renewal_date: date(12026, 1, 1), ..account("A") }),
        (
            "account.renewal_date",
            pb::Account { contract_start_date: date(2026, 4, 1), renewal_date: date(2026, 3, 31), ..account("A") },
        ),
        ("account.tags", pb::Account { tags: (0..51).map(|i| format!("t{i}")).collect(), ..account("A") }),
        ("account.tags[1]", pb::Account { tags: vec!["ok".into(), "".into()], ..account("A") }),
        (
            "account.custom_attributes[\"Seats\"]",
            pb::Account { custom_attributes: [("Seats".to_string(), attr(Kind::IntValue(1)))].into(), ..account("A") },
        ),
        (
            "account.custom_attributes[\"ratio\"].double_value",
            pb::Account {
                custom_attributes: [("ratio".to_string(), attr(Kind::DoubleValue(f64::NAN)))].into(),
                ..account("A")
            },
        ),
        (
            "account.custom_attributes[\"empty\"]",
            pb::Account {
                custom_attributes: [("empty".to_string(), tpb::AttributeValue { kind: None })].into(),
                ..account("A")
            },
        ),
    ];
    for (field, bad) in cases {
        let err = c
            .create_account(pb::CreateAccountRequest { account: Some(bad.clone()), request_id: String::new() })
            .await
            .expect_err(field);
        assert_violation(&err, field);
        assert!(err.message().contains(field), "the message names the field: {}", err.message());
    }
    // Several bad fields are all reported at once.
    let many = pb::Account { name: "".into(), arr: money("XYZ", -1), lifecycle_stage: 0, ..account("") };
    let err = c
        .create_account(pb::CreateAccountRequest { account: Some(many), request_id: String::new() })
        .await
        .unwrap_err();
    let fields: Vec<String> = violations(&err).into_iter().map(|(f, _)| f).collect();
    for f in ["account.name", "account.arr.currency_code", "account.arr.amount_minor", "account.lifecycle_stage"] {
        assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
    }
    // Nothing was written by any failed request.
    let page = c.list_accounts(pb::ListAccountsRequest::default()).await.unwrap().into_inner();
    assert!(page.accounts.is_empty(), "{:?}", page.accounts);
}

#[tokio::test]
async fn requests_missing_their_resource_or_with_bad_ids() {
    let app = spawn().await;
    let mut c = admin(&app);
    let err = c.create_account(pb::CreateAccountRequest::default()).await.unwrap_err();
    assert_violation(&err, "account");
    let err = c.get_account(pb::GetAccountRequest { id: "not-a-uuid".into() }).await.unwrap_err();
    assert_violation(&err, "id");
    let err = c.get_account(pb::GetAccountRequest { id: String::new() }).await.unwrap_err();
    assert_violation(&err, "id");
    let err = c.update_account(pb::UpdateAccountRequest::default()).await.unwrap_err();
    assert_violation(&err, "account");
    let err = c
        .update_account(pb::UpdateAccountRequest { account: Some(account("x")), update_mask: None })
        .await
        .unwrap_err();
    assert_violation(&err, "account.id");
    let err = c.delete_account(pb::DeleteAccountRequest { id: "42".into(), etag: String::new() }).await.unwrap_err();
    assert_violation(&err, "id");
    let err = c
        .batch_get_accounts(pb::BatchGetAccountsRequest { ids: vec![uuid::Uuid::now_v7().to_string(), "nope".into()] })
        .await
        .unwrap_err();
    assert_violation(&err, "ids[1]");
    let err = c.batch_get_accounts(pb::BatchGetAccountsRequest { ids: vec![] }).await.unwrap_err();
    assert_violation(&err, "ids");
    let too_many = (0..1001).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let err = c.batch_get_accounts(pb::BatchGetAccountsRequest { ids: too_many }).await.unwrap_err();
    assert_violation(&err, "ids");
    let err = c
        .create_account(pb::CreateAccountRequest { account: Some(account("A")), request_id: "has space".into() })
        .await
        .unwrap_err();
    assert_violation(&err, "request_id");
    let err = c
        .upsert_account(pb::UpsertAccountRequest { account: Some(account("no external id")), update_mask: None })
        .await
        .unwrap_err();
    assert_violation(&err, "account.external_id");
}

#[tokio::test]
async fn bad_updates_change_nothing() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, pb::Account { contract_start_date: date(2026, 4, 1), ..account("Keep") }).await;
    let id = a.id.clone();
    let upd = |acc: pb::Account, paths: &[&str]| pb::UpdateAccountRequest {
        account: Some(pb::Account { id: id.clone(), ..acc }),
        update_mask: mask(paths),
    };
    // A path that is not an updatable field.
    let err = c.update_account(upd(account("x"), &["id"])).await.unwrap_err();
    assert_violation(&err, "update_mask");
    let err = c.update_account(upd(account("x"), &["name", "create_time"])).await.unwrap_err();
    assert_violation(&err, "update_mask");
    // Masked fields are validated; unmasked ones are not looked at.
    let err =
        c.update_account(upd(pb::Account { name: "".into(), ..Default::default() }, &["name"])).await.unwrap_err();
    assert_violation(&err, "account.name");
    c.update_account(upd(pb::Account { region: "Tohoku".into(), ..Default::default() }, &["region"])).await.unwrap();
    // Cross-field rules hold on the merged account.
    let err = c
        .update_account(upd(pb::Account { renewal_date: date(2026, 1, 1), ..Default::default() }, &["renewal_date"]))
        .await
        .unwrap_err();
    assert_violation(&err, "account.renewal_date");
    let got = c.get_account(pb::GetAccountRequest { id: a.id }).await.unwrap().into_inner();
    assert_eq!(got.name, "Keep");
    assert_eq!(got.region, "Tohoku");
    assert_eq!(got.renewal_date, None);
}

#[tokio::test]
async fn bad_list_requests() {
    let app = spawn().await;
    let mut c = admin(&app);
    let list = |filter: pb::AccountFilter, order_by: &str, page_size: i32| pb::ListAccountsRequest {
        page_size,
        page_token: String::new(),
        filter: Some(filter),
        order_by: order_by.into(),
    };
    let f = pb::AccountFilter::default;
    let err = c.list_accounts(list(f(), "", -1)).await.unwrap_err();
    assert_violation(&err, "page_size");
    let err = c.list_accounts(list(f(), "password", 0)).await.unwrap_err();
    assert_violation(&err, "order_by");
    let err = c.list_accounts(list(f(), "name upward", 0)).await.unwrap_err();
    assert_violation(&err, "order_by");
    let err = c.list_accounts(list(pb::AccountFilter { lifecycle_stages: vec![0], ..f() }, "", 0)).await.unwrap_err();
    assert_violation(&err, "filter.lifecycle_stages[0]");
    let err = c.list_accounts(list(pb::AccountFilter { touch_models: vec![1, 42], ..f() }, "", 0)).await.unwrap_err();
    assert_violation(&err, "filter.touch_models[1]");
    let err = c
        .list_accounts(list(
            pb::AccountFilter { renewal_date_from: date(2027, 1, 1), renewal_date_to: date(2026, 1, 1), ..f() },
            "",
            0,
        ))
        .await
        .unwrap_err();
    assert_violation(&err, "filter.renewal_date_to");
    let err = c
        .list_accounts(list(pb::AccountFilter { arr_min: money("JPY", 1), arr_max: money("USD", 5), ..f() }, "", 0))
        .await
        .unwrap_err();
    assert_violation(&err, "filter.arr_max.currency_code");
    let err = c
        .list_accounts(list(pb::AccountFilter { arr_min: money("JPY", 10), arr_max: money("JPY", 5), ..f() }, "", 0))
        .await
        .unwrap_err();
    assert_violation(&err, "filter.arr_max.amount_minor");
    let err = c
        .list_accounts(list(pb::AccountFilter { renewal_date_from: date(2026, 13, 1), ..f() }, "", 0))
        .await
        .unwrap_err();
    assert_violation(&err, "filter.renewal_date_from");
    // A huge page size is lowered to the maximum, not refused.
    c.list_accounts(list(f(), "", 100_000)).await.unwrap();
    // Unknown ids are NOT_FOUND, not INTERNAL.
    let err = c.get_account(pb::GetAccountRequest { id: uuid::Uuid::now_v7().to_string() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

/// An etag this API never gave out is INVALID_ARGUMENT naming its field;
/// a stale one stays ABORTED (accounts.rs, settings.rs).
#[tokio::test]
async fn malformed_etags_are_invalid_arguments() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("Etag")).await;
    for bad in ["garbage", "7", "v", "v-1", "W/\"v1\"", &"v9".repeat(50_000)] {
        let upd = pb::Account { id: a.id.clone(), etag: bad.into(), name: "x".into(), ..Default::default() };
        let err = c
            .update_account(pb::UpdateAccountRequest { account: Some(upd), update_mask: mask(&["name"]) })
            .await
            .unwrap_err();
        assert_violation(&err, "account.etag");
        assert!(banso_testkit::status_wire_size(&err) < 8192, "{}", banso_testkit::status_wire_size(&err));
        let err = c.delete_account(pb::DeleteAccountRequest { id: a.id.clone(), etag: bad.into() }).await.unwrap_err();
        assert_violation(&err, "etag");
    }
    let settings = pb::TenantSettings { time_zone: "Asia/Tokyo".into(), etag: "x1".into(), ..Default::default() };
    let err = c
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            settings: Some(settings),
            update_mask: mask(&["time_zone"]),
        })
        .await
        .unwrap_err();
    assert_violation(&err, "settings.etag");
    // Quoted as HTTP quotes it, a current etag is read the same.
    let quoted =
        pb::Account { id: a.id.clone(), etag: format!("\"{}\"", a.etag), name: "y".into(), ..Default::default() };
    let y = c
        .update_account(pb::UpdateAccountRequest { account: Some(quoted), update_mask: mask(&["name"]) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(y.name, "y");
    let got = c.get_account(pb::GetAccountRequest { id: a.id }).await.unwrap().into_inner();
    assert_eq!(got.name, "y", "nothing but the good update was written");
}

/// 51 unknown mask paths of 1,000 characters each: one violation that
/// names a few of them, cut, in a status far below what stock gRPC clients
/// accept.
#[tokio::test]
async fn unknown_mask_paths_are_one_small_violation() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("Masked")).await;
    let paths: Vec<String> = (0..51).map(|i| format!("nope{i}{}", "x".repeat(1000))).collect();
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let upd = pb::Account { id: a.id.clone(), ..Default::default() };
    let err =
        c.update_account(pb::UpdateAccountRequest { account: Some(upd), update_mask: mask(&refs) }).await.unwrap_err();
    let vs = violations(&err);
    assert_eq!(vs.len(), 1, "{vs:?}");
    assert_eq!(vs[0].0, "update_mask");
    assert!(vs[0].1.contains("(1005 characters)"), "the paths are cut when echoed: {}", vs[0].1);
    assert!(banso_testkit::status_wire_size(&err) < 8192, "{}", banso_testkit::status_wire_size(&err));
    // Every typed mask does the same.
    let err = c
        .update_contact(pb::UpdateContactRequest {
            contact: Some(pb::Contact { id: uuid::Uuid::now_v7().to_string(), ..Default::default() }),
            update_mask: mask(&refs),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err).len(), 1);
    assert!(banso_testkit::status_wire_size(&err) < 8192);
    let err = c
        .update_segment(pb::UpdateSegmentRequest {
            segment: Some(pb::Segment { id: uuid::Uuid::now_v7().to_string(), ..Default::default() }),
            update_mask: mask(&refs),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err).len(), 1);
    let err = c
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            settings: Some(Default::default()),
            update_mask: mask(&refs),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err).len(), 1);
    assert!(banso_testkit::status_wire_size(&err) < 8192);
}

/// A 100,000-character id is INVALID_ARGUMENT in a small status, not the
/// id echoed back twice (message and violation).
#[tokio::test]
async fn huge_ids_get_small_refusals() {
    let app = spawn().await;
    let mut c = admin(&app);
    let huge = "x".repeat(100_000);
    let small = |err: &tonic::Status, field: &str| {
        assert_violation(err, field);
        let size = banso_testkit::status_wire_size(err);
        assert!(size < 8192, "{field}: a status of {size} bytes");
        assert!(err.message().contains("(100000 characters)"), "{}", err.message());
    };
    small(&c.get_account(pb::GetAccountRequest { id: huge.clone() }).await.unwrap_err(), "id");
    small(&c.get_contact(pb::GetContactRequest { id: huge.clone() }).await.unwrap_err(), "id");
    small(&c.get_segment(pb::GetSegmentRequest { id: huge.clone() }).await.unwrap_err(), "id");
    small(
        &c.delete_account(pb::DeleteAccountRequest { id: huge.clone(), etag: String::new() }).await.unwrap_err(),
        "id",
    );
    small(
        &c.batch_get_accounts(pb::BatchGetAccountsRequest { ids: vec![huge.clone(); 3] }).await.unwrap_err(),
        "ids[0]",
    );
    small(
        &c.list_contract_events(pb::ListContractEventsRequest { account_id: huge.clone(), ..Default::default() })
            .await
            .unwrap_err(),
        "account_id",
    );
    small(
        &c.update_account(pb::UpdateAccountRequest {
            account: Some(pb::Account { id: huge.clone(), ..account("x") }),
            update_mask: mask(&["name"]),
        })
        .await
        .unwrap_err(),
        "account.id",
    );
}
