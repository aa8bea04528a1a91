//! Tokens, roles and tenant isolation.

use banso_proto::accounts as pb;
use tonic::{Code, Request};

use crate::common::*;

#[tokio::test]
async fn missing_or_bad_tokens_are_unauthenticated() {
    let app = spawn().await;
    let mut bare = pb::accounts_service_client::AccountsServiceClient::new(app.channel.clone());
    let err = bare.list_accounts(pb::ListAccountsRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    for header in ["Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
        let mut req = Request::new(pb::ListAccountsRequest::default());
        req.metadata_mut().insert("authorization", header.parse().unwrap());
        let err = bare.list_accounts(req).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{header}");
    }

    // A token signed with another key.
    let forged = banso_kit::auth::DevTokenIssuer::new("not-the-server-secret-not-the-server", "banso", "banso").mint(
        "acme",
        "mallory",
        &[Role::Admin],
        std::time::Duration::from_secs(60),
    );
    let mut req = Request::new(pb::ListAccountsRequest::default());
    req.metadata_mut().insert("authorization", format!("Bearer {forged}").parse().unwrap());
    assert_eq!(bare.list_accounts(req).await.unwrap_err().code(), Code::Unauthenticated);
}

#[tokio::test]
async fn viewers_read_but_do_not_write() {
    let app = spawn().await;
    let mut admin = admin(&app);
    let a = create(&mut admin, account("Readable")).await;
    let mut viewer = client(&app, "acme", Role::Viewer);
    viewer.get_account(pb::GetAccountRequest { id: a.id.clone() }).await.unwrap();
    viewer.list_accounts(pb::ListAccountsRequest::default()).await.unwrap();

    let err = viewer
        .create_account(pb::CreateAccountRequest { account: Some(account("No")), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let upd = pb::Account { id: a.id.clone(), name: "No".into(), ..Default::default() };
    let err = viewer
        .update_account(pb::UpdateAccountRequest { account: Some(upd), update_mask: mask(&["name"]) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err =
        viewer.delete_account(pb::DeleteAccountRequest { id: a.id.clone(), etag: String::new() }).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = viewer
        .create_contact(pb::CreateContactRequest {
            contact: Some(pb::Contact { account_id: a.id.clone(), name: "x".into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Permission is checked before validation: a viewer learns nothing about the payload.
    let err = viewer.create_account(pb::CreateAccountRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Service accounts (CRM sync) may write.
    let mut service = client(&app, "acme", Role::Service);
    create(&mut service, account("Synced")).await;
}

#[tokio::test]
async fn another_tenants_rows_are_not_found() {
    let app = spawn().await;
    let mut acme = admin(&app);
    let a =
        create(&mut acme, pb::Account { tags: vec!["vip".into()], external_id: "crm-9".into(), ..account("Acme's") })
            .await;
    let contact = acme
        .create_contact(pb::CreateContactRequest {
            contact: Some(pb::Contact { account_id: a.id.clone(), name: "佐藤".into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();

    let mut globex = client(&app, "globex", Role::Admin);
    fn code<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> Code {
        r.unwrap_err().code()
    }
    assert_eq!(code(globex.get_account(pb::GetAccountRequest { id: a.id.clone() }).await), Code::NotFound);
    let upd = pb::Account { id: a.id.clone(), name: "Stolen".into(), ..Default::default() };
    assert_eq!(
        code(
            globex.update_account(pb::UpdateAccountRequest { account: Some(upd), update_mask: mask(&["name"]) }).await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(globex.delete_account(pb::DeleteAccountRequest { id: a.id.clone(), etag: String::new() }).await),
        Code::NotFound
    );
    assert_eq!(
        code(globex.batch_get_accounts(pb::BatchGetAccountsRequest { ids: vec![a.id.clone()] }).await),
        Code::NotFound
    );
    assert_eq!(code(globex.get_contact(pb::GetContactRequest { id: contact.id.clone() }).await), Code::NotFound);
    assert_eq!(
        code(globex.delete_contact(pb::DeleteContactRequest { id: contact.id.clone(), etag: String::new() }).await),
        Code::NotFound
    );
    assert_eq!(
        code(
            globex
                .create_contact(pb::CreateContactRequest {
                    contact: Some(pb::Contact { account_id: a.id.clone(), name: "x".into(), ..Default::default() }),
                    request_id: String::new(),
                })
                .await
        ),
        Code::NotFound
    );
    let lists = globex.list_accounts(pb::ListAccountsRequest::default()).await.unwrap().into_inner();
    assert!(lists.accounts.is_empty());
    let by_tag = globex
        .list_accounts(pb::ListAccountsRequest {
            filter: Some(pb::AccountFilter { tag: "vip".into(), ..Default::default() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(by_tag.accounts.is_empty());
    let contacts = globex
        .list_contacts(pb::ListContactsRequest { account_id: a.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(contacts.contacts.is_empty());
    // An upsert with acme's external id creates globex's own account.
    let up = globex
        .upsert_account(pb::UpsertAccountRequest {
            account: Some(pb::Account { external_id: "crm-9".into(), ..account("Globex's") }),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(up.created);
    // And acme's account is untouched.
    let still = acme.get_account(pb::GetAccountRequest { id: a.id }).await.unwrap().into_inner();
    assert_eq!(still.name, "Acme's");
}
