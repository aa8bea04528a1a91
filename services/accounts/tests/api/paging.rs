//! Keyset paging: no duplicates or gaps while rows are inserted, and page
//! tokens that cannot be forged or replayed against another query.

use std::collections::HashSet;

use banso_proto::accounts as pb;
use base64::Engine;
use tonic::Code;

use crate::common::*;

async fn seed(c: &Client, n: usize, prefix: &str) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    // Eight writers at a time: fast on PostgreSQL, still fine on SQLite.
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        let calls = chunk.iter().map(|i| {
            let mut c = c.clone();
            let name = format!("{prefix}-{:05}-{}", (i * 7919) % 100_000, i);
            async move { create(&mut c, account(&name)).await.id }
        });
        ids.extend(futures::future::join_all(calls).await);
    }
    ids
}

async fn walk_while_inserting(c: &Client, order_by: &str, existing: &[String]) {
    let mut seen = HashSet::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = c
            .clone()
            .list_accounts(pb::ListAccountsRequest {
                page_size: 100,
                page_token: token.clone(),
                filter: None,
                order_by: order_by.into(),
            })
            .await
            .unwrap()
            .into_inner();
        for a in &page.accounts {
            assert!(seen.insert(a.id.clone()), "{} listed twice (order {order_by:?})", a.id);
        }
        pages += 1;
        // New rows land between pages: before, within and after the cursor.
        seed(c, 3, &format!("new{pages}")).await;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let missing: Vec<_> = existing.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(missing.is_empty(), "{} accounts never listed (order {order_by:?})", missing.len());
}

#[tokio::test]
async fn paging_walks_2500_accounts_without_duplicates_or_gaps_under_inserts() {
    let app = spawn().await;
    let c = admin(&app);
    let existing = seed(&c, 2500, "acct").await;
    walk_while_inserting(&c, "", &existing).await;
    walk_while_inserting(&c, "name desc", &existing).await;
}

#[tokio::test]
async fn page_size_defaults_to_50_and_is_capped_at_1000() {
    let app = spawn().await;
    let mut c = admin(&app);
    // 1,100 accounts in one import (two messages), quicker than 1,100 creates.
    let accounts: Vec<pb::Account> =
        (0..1100).map(|i| pb::Account { external_id: format!("crm-{i}"), ..account(&format!("p-{i}")) }).collect();
    let messages: Vec<_> =
        accounts.chunks(1000).map(|rows| pb::ImportAccountsRequest { accounts: rows.to_vec() }).collect();
    let imported = c.import_accounts(futures::stream::iter(messages)).await.unwrap().into_inner();
    assert_eq!(imported.created, 1100);
    let page = c.list_accounts(pb::ListAccountsRequest::default()).await.unwrap().into_inner();
    assert_eq!(page.accounts.len(), 50, "the default page");
    assert!(!page.next_page_token.is_empty());
    // Asked for 5,000: given the maximum, 1,000, and a token for the rest.
    let big =
        c.list_accounts(pb::ListAccountsRequest { page_size: 5000, ..Default::default() }).await.unwrap().into_inner();
    assert_eq!(big.accounts.len(), 1000);
    assert!(!big.next_page_token.is_empty());
    let rest = c
        .list_accounts(pb::ListAccountsRequest {
            page_size: 5000,
            page_token: big.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.accounts.len(), 100);
    assert!(rest.next_page_token.is_empty());
    let ids: HashSet<String> = big.accounts.into_iter().chain(rest.accounts).map(|a| a.id).collect();
    assert_eq!(ids.len(), 1100, "every account once");
}

#[tokio::test]
async fn tampered_or_replayed_page_tokens_are_invalid() {
    let app = spawn().await;
    let mut c = admin(&app);
    seed(&c, 5, "t").await;
    let first =
        c.list_accounts(pb::ListAccountsRequest { page_size: 2, ..Default::default() }).await.unwrap().into_inner();
    let token = first.next_page_token;

    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut raw = engine.decode(&token).unwrap();
    raw[2] ^= 0x01;
    let tampered = engine.encode(raw);
    for (bad, why) in
        [(tampered, "flipped bit"), ("garbage!".to_string(), "not base64"), (format!("{token}AA"), "extended")]
    {
        let err = c
            .list_accounts(pb::ListAccountsRequest { page_size: 2, page_token: bad, ..Default::default() })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{why}");
        assert_violation(&err, "page_token");
    }
    // The same token with another filter or order, or from another tenant.
    let err = c
        .list_accounts(pb::ListAccountsRequest {
            page_size: 2,
            page_token: token.clone(),
            filter: Some(pb::AccountFilter { region: "US".into(), ..Default::default() }),
            order_by: String::new(),
        })
        .await
        .unwrap_err();
    assert_violation(&err, "page_token");
    let err = c
        .list_accounts(pb::ListAccountsRequest {
            page_size: 2,
            page_token: token.clone(),
            order_by: "name".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_violation(&err, "page_token");
    let mut other = client(&app, "globex", Role::Admin);
    let err = other
        .list_accounts(pb::ListAccountsRequest { page_size: 2, page_token: token.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_violation(&err, "page_token");
    // A different page size with the same query is fine (AIP-158).
    c.list_accounts(pb::ListAccountsRequest { page_size: 3, page_token: token, ..Default::default() }).await.unwrap();
}
