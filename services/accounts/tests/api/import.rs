//! Bulk import: a client stream of rows, per-row errors, idempotent re-runs.

use banso_proto::accounts as pb;
use tonic::Code;

use crate::common::*;

fn row(i: usize) -> pb::Account {
    pb::Account {
        external_id: format!("crm-{i:04}"),
        tags: if i.is_multiple_of(3) { vec!["vip".into()] } else { vec![] },
        arr: money("JPY", 100_000 * i as i64),
        ..account(&format!("株式会社インポート{i}"))
    }
}

async fn import(c: &mut Client, messages: Vec<Vec<pb::Account>>) -> pb::ImportAccountsResponse {
    let stream = futures::stream::iter(messages.into_iter().map(|accounts| pb::ImportAccountsRequest { accounts }));
    c.import_accounts(stream).await.unwrap().into_inner()
}

async fn all_accounts(c: &mut Client) -> Vec<pb::Account> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_accounts(pb::ListAccountsRequest { page_size: 1000, page_token: token, ..Default::default() })
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

#[tokio::test]
async fn import_creates_reports_bad_rows_and_reruns_idempotently() {
    let app = spawn().await;
    let mut c = admin(&app);
    let mut bad_currency = row(7);
    bad_currency.arr = money("YEN", 1);
    let mut no_external_id = row(8);
    no_external_id.external_id.clear();
    let mut no_name = row(9);
    no_name.name.clear();
    let first: Vec<pb::Account> = (0..7).map(row).chain([bad_currency, no_external_id, no_name]).collect();
    let second: Vec<pb::Account> = (10..250).map(row).collect();
    let resp = import(&mut c, vec![first.clone(), second.clone()]).await;
    assert_eq!((resp.rows, resp.created, resp.updated, resp.unchanged, resp.failed), (250, 247, 0, 0, 3));
    let errs: Vec<(i64, &str, &str)> =
        resp.errors.iter().map(|e| (e.row, e.external_id.as_str(), e.field.as_str())).collect();
    assert_eq!(
        errs,
        [(7, "crm-0007", "arr.currency_code"), (8, "", "external_id"), (9, "crm-0009", "name")],
        "{:?}",
        resp.errors
    );
    let stored = all_accounts(&mut c).await;
    assert_eq!(stored.len(), 247);
    let vip = c
        .list_accounts(pb::ListAccountsRequest {
            filter: Some(pb::AccountFilter { tag: "vip".into(), ..Default::default() }),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(vip.accounts.len(), (0..250).filter(|i: &usize| i.is_multiple_of(3) && ![7, 8, 9].contains(i)).count());

    // The same import again changes nothing: same etags, no new rows.
    let again = import(&mut c, vec![first, second]).await;
    assert_eq!((again.created, again.updated, again.unchanged, again.failed), (0, 0, 247, 3));
    let after = all_accounts(&mut c).await;
    assert_eq!(after, stored, "an idempotent re-run writes nothing");

    // A changed row updates; a repeated external_id in one stream applies in order.
    let mut changed = row(3);
    changed.plan_tier = "enterprise".into();
    let mut twice_a = row(500);
    twice_a.region = "Kanto".into();
    let mut twice_b = row(500);
    twice_b.region = "Kansai".into();
    let resp = import(&mut c, vec![vec![changed, twice_a, twice_b]]).await;
    assert_eq!((resp.created, resp.updated, resp.unchanged, resp.failed), (1, 2, 0, 0));
    let by_ext = c
        .upsert_account(pb::UpsertAccountRequest {
            account: Some(pb::Account { external_id: "crm-0500".into(), ..Default::default() }),
            update_mask: mask(&["external_id"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_ext.account.unwrap().region, "Kansai", "the later row wins");
}

#[tokio::test]
async fn import_contacts_by_account_external_id() {
    let app = spawn().await;
    let mut c = admin(&app);
    import(&mut c, vec![(0..3).map(row).collect()]).await;
    let rows = vec![
        pb::ContactImportRow {
            contact: Some(pb::Contact {
                name: "田中 一郎".into(),
                external_id: "c-1".into(),
                email: "ichiro@example.jp".into(),
                ..Default::default()
            }),
            account_external_id: "crm-0001".into(),
        },
        pb::ContactImportRow {
            contact: Some(pb::Contact { name: "No Account".into(), external_id: "c-2".into(), ..Default::default() }),
            account_external_id: "crm-9999".into(),
        },
        pb::ContactImportRow {
            contact: Some(pb::Contact {
                name: "Bad Mail".into(),
                external_id: "c-3".into(),
                email: "nope".into(),
                ..Default::default()
            }),
            account_external_id: "crm-0001".into(),
        },
        pb::ContactImportRow {
            contact: Some(pb::Contact { name: "No Ref".into(), external_id: "c-4".into(), ..Default::default() }),
            account_external_id: String::new(),
        },
    ];
    let send = |rows: Vec<pb::ContactImportRow>| futures::stream::iter([pb::ImportContactsRequest { rows }]);
    let resp = c.import_contacts(send(rows.clone())).await.unwrap().into_inner();
    assert_eq!((resp.rows, resp.created, resp.failed), (4, 1, 3));
    let fields: Vec<(i64, &str)> = resp.errors.iter().map(|e| (e.row, e.field.as_str())).collect();
    assert_eq!(fields, [(1, ""), (2, "email"), (3, "account_external_id")]);
    assert!(resp.errors.iter().any(|e| e.row == 1 && e.description.contains("crm-9999")), "{:?}", resp.errors);
    // Re-run: unchanged.
    let again = c.import_contacts(send(rows)).await.unwrap().into_inner();
    assert_eq!((again.created, again.unchanged, again.failed), (0, 1, 3));
    let contacts = c.list_contacts(pb::ListContactsRequest::default()).await.unwrap().into_inner();
    assert_eq!(contacts.contacts.len(), 1);
    assert_eq!(contacts.contacts[0].name, "田中 一郎");
}

#[tokio::test]
async fn viewers_cannot_import_and_tenants_stay_apart() {
    let app = spawn().await;
    let mut viewer = client(&app, "acme", Role::Viewer);
    let err = viewer
        .import_accounts(futures::stream::iter([pb::ImportAccountsRequest { accounts: vec![row(1)] }]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let mut acme = admin(&app);
    let mut globex = client(&app, "globex", Role::Service);
    import(&mut acme, vec![vec![row(1)]]).await;
    // The same external id in another tenant is another account.
    let resp = import(&mut globex, vec![vec![row(1)]]).await;
    assert_eq!(resp.created, 1);
    assert_eq!(all_accounts(&mut acme).await.len(), 1);
    assert_eq!(all_accounts(&mut globex).await.len(), 1);
}

#[tokio::test]
async fn a_message_over_1000_rows_is_refused_and_the_messages_before_it_are_kept() {
    let app = spawn().await;
    let mut c = admin(&app);
    let rows = |from: usize, n: usize| -> Vec<pb::Account> { (from..from + n).map(row).collect() };
    let stream = futures::stream::iter([
        pb::ImportAccountsRequest { accounts: rows(0, 10) },
        pb::ImportAccountsRequest { accounts: rows(10, 1001) },
    ]);
    let err = c.import_accounts(stream).await.unwrap_err();
    let violations = banso_testkit::field_violations(&err);
    assert_eq!(violations[0].0, "accounts");
    assert!(violations[0].1.contains("at most 1000 rows"), "{violations:?}");
    let listed = c.list_accounts(pb::ListAccountsRequest { page_size: 100, ..Default::default() }).await.unwrap();
    assert_eq!(listed.into_inner().accounts.len(), 10, "the first message was kept");

    let contacts = futures::stream::iter([pb::ImportContactsRequest {
        rows: (0..1001)
            .map(|i| pb::ContactImportRow {
                account_external_id: "crm-0".into(),
                contact: Some(pb::Contact {
                    name: format!("c{i}"),
                    external_id: format!("c-{i}"),
                    ..Default::default()
                }),
            })
            .collect(),
    }]);
    let err = c.import_contacts(contacts).await.unwrap_err();
    assert_eq!(banso_testkit::field_violations(&err)[0].0, "rows");
}

#[tokio::test]
async fn imported_accounts_get_the_touch_mix_rules_and_rerun_unchanged() {
    use pb::TouchModel as T;
    let app = spawn().await;
    let mut c = admin(&app);
    let share = |t: T, percent| banso_proto::types::TouchShare { touch_model: t as i32, percent };
    c.update_touch_mix_rules(pb::UpdateTouchMixRulesRequest {
        touch_mix_rules: Some(pb::TouchMixRules {
            rules: vec![pb::TouchMixRule {
                name: "big".into(),
                condition: "account.arr >= 500000".into(),
                touch_mix: vec![share(T::High, 70), share(T::Tech, 30)],
            }],
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    // Rows 0-4 have ARR below the bound, 5-9 at or above it; row 9 sends its
    // own mix, which holds.
    let mut rows: Vec<pb::Account> = (0..10).map(row).collect();
    rows[9].touch_model = 0;
    rows[9].touch_mix = vec![share(T::Low, 100)];
    let resp = import(&mut c, vec![rows.clone()]).await;
    assert_eq!((resp.created, resp.failed), (10, 0));
    let all = all_accounts(&mut c).await;
    let by = |x: &str| all.iter().find(|a| a.external_id == x).unwrap().clone();
    assert_eq!(by("crm-0001").touch_mix, vec![share(T::High, 100)]);
    assert_eq!(by("crm-0005").touch_mix, vec![share(T::High, 70), share(T::Tech, 30)]);
    assert_eq!(by("crm-0009").touch_mix, vec![share(T::Low, 100)]);
    let h = c
        .list_touch_mix_history(pb::ListTouchMixHistoryRequest { account_id: by("crm-0005").id, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .changes;
    assert_eq!(h.len(), 1);
    assert_eq!((h[0].set_by, h[0].setter_id.as_str()), (pb::TouchMixSetter::Rule as i32, "big"));

    let again = import(&mut c, vec![rows]).await;
    assert_eq!((again.unchanged, again.updated, again.created), (10, 0, 0), "the rules' mix is no change");
}
