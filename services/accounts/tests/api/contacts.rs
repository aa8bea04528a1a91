//! Contacts (stakeholders): every method, filters, and bad input.

use banso_proto::accounts as pb;
use tonic::Code;

use crate::common::*;

fn contact(account_id: &str, name: &str) -> pb::Contact {
    pb::Contact { account_id: account_id.into(), name: name.into(), ..Default::default() }
}

async fn create_contact(c: &mut Client, contact: pb::Contact) -> pb::Contact {
    c.create_contact(pb::CreateContactRequest { contact: Some(contact), request_id: String::new() })
        .await
        .expect("create contact")
        .into_inner()
}

#[tokio::test]
async fn contact_lifecycle() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("株式会社サンプル")).await;
    let created = create_contact(
        &mut c,
        pb::Contact {
            email: "Taro.Yamada@Example.co.jp".into(),
            title: "情報システム部長".into(),
            department: "情報システム部".into(),
            level: pb::ContactLevel::Executive as i32,
            champion: true,
            decision_maker: true,
            external_id: "crm-c-1".into(),
            ..contact(&a.id, "山田 太郎")
        },
    )
    .await;
    assert_eq!(created.account_id, a.id);
    let got = c.get_contact(pb::GetContactRequest { id: created.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got, created);

    let upd = pb::Contact { id: created.id.clone(), etag: created.etag.clone(), champion: false, ..Default::default() };
    let updated = c
        .update_contact(pb::UpdateContactRequest { contact: Some(upd.clone()), update_mask: mask(&["champion"]) })
        .await
        .unwrap()
        .into_inner();
    assert!(!updated.champion);
    assert_eq!(updated.name, "山田 太郎");
    let err = c
        .update_contact(pb::UpdateContactRequest { contact: Some(upd), update_mask: mask(&["champion"]) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    // account_id is fixed at create: it is not an updatable path.
    let move_it = pb::Contact { id: created.id.clone(), account_id: a.id.clone(), ..Default::default() };
    let err = c
        .update_contact(pb::UpdateContactRequest { contact: Some(move_it), update_mask: mask(&["account_id"]) })
        .await
        .unwrap_err();
    assert_violation(&err, "update_mask");

    c.delete_contact(pb::DeleteContactRequest { id: created.id.clone(), etag: updated.etag }).await.unwrap();
    assert_eq!(c.get_contact(pb::GetContactRequest { id: created.id }).await.unwrap_err().code(), Code::NotFound);
}

#[tokio::test]
async fn list_contacts_filters_and_pages() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("A")).await;
    let b = create(&mut c, account("B")).await;
    for i in 0..5 {
        create_contact(
            &mut c,
            pb::Contact { level: pb::ContactLevel::Practitioner as i32, ..contact(&a.id, &format!("a{i}")) },
        )
        .await;
    }
    create_contact(
        &mut c,
        pb::Contact {
            champion: true,
            email: "Boss@B.example".into(),
            level: pb::ContactLevel::Executive as i32,
            external_id: "user-42".into(),
            ..contact(&b.id, "boss")
        },
    )
    .await;
    create_contact(&mut c, pb::Contact { decision_maker: true, ..contact(&b.id, "cfo") }).await;

    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_contacts(pb::ListContactsRequest {
                page_size: 2,
                page_token: token,
                account_id: a.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.contacts);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(all.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), ["a0", "a1", "a2", "a3", "a4"]);

    let q = |r: pb::ListContactsRequest| {
        let mut c = c.clone();
        async move {
            c.list_contacts(r).await.unwrap().into_inner().contacts.into_iter().map(|x| x.name).collect::<Vec<_>>()
        }
    };
    assert_eq!(q(pb::ListContactsRequest { champions_only: true, ..Default::default() }).await, ["boss"]);
    assert_eq!(q(pb::ListContactsRequest { decision_makers_only: true, ..Default::default() }).await, ["cfo"]);
    assert_eq!(q(pb::ListContactsRequest { email: "boss@b.EXAMPLE".into(), ..Default::default() }).await, ["boss"]);
    assert_eq!(
        q(pb::ListContactsRequest { level: pb::ContactLevel::Executive as i32, ..Default::default() }).await,
        ["boss"]
    );
    assert_eq!(q(pb::ListContactsRequest::default()).await.len(), 7);
    // By external_id (the tracking API finds a user's account this way): exact match only.
    assert_eq!(q(pb::ListContactsRequest { external_id: "user-42".into(), ..Default::default() }).await, ["boss"]);
    assert!(q(pb::ListContactsRequest { external_id: "USER-42".into(), ..Default::default() }).await.is_empty());
    assert!(q(pb::ListContactsRequest { external_id: "user-4".into(), ..Default::default() }).await.is_empty());
    // Another tenant's contact is not found by its external_id.
    let mut globex = client(&app, "globex", Role::Admin);
    let none = globex
        .list_contacts(pb::ListContactsRequest { external_id: "user-42".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(none.contacts.is_empty());
    // A bad one names the field.
    for bad in ["x".repeat(129), "a\u{0}b".to_owned()] {
        let err =
            c.list_contacts(pb::ListContactsRequest { external_id: bad, ..Default::default() }).await.unwrap_err();
        assert_violation(&err, "external_id");
    }
}

#[tokio::test]
async fn bad_contacts_are_refused() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("A")).await;
    let cases = [
        ("contact.account_id", pb::Contact { account_id: "".into(), ..contact("", "x") }),
        ("contact.account_id", contact("not-a-uuid", "x")),
        ("contact.name", contact(&a.id, "")),
        ("contact.name", contact(&a.id, &"名".repeat(201))),
        ("contact.email", pb::Contact { email: "not-an-email".into(), ..contact(&a.id, "x") }),
        ("contact.email", pb::Contact { email: "a@b".into(), ..contact(&a.id, "x") }),
        ("contact.title", pb::Contact { title: "t".repeat(201), ..contact(&a.id, "x") }),
        ("contact.level", pb::Contact { level: 17, ..contact(&a.id, "x") }),
        ("contact.external_id", pb::Contact { external_id: "e".repeat(129), ..contact(&a.id, "x") }),
    ];
    for (field, bad) in cases {
        let err = c
            .create_contact(pb::CreateContactRequest { contact: Some(bad), request_id: String::new() })
            .await
            .expect_err(field);
        assert_violation(&err, field);
    }
    let err = c.create_contact(pb::CreateContactRequest::default()).await.unwrap_err();
    assert_violation(&err, "contact");
    // A well-formed id of no account is NOT_FOUND.
    let err = c
        .create_contact(pb::CreateContactRequest {
            contact: Some(contact(&uuid::Uuid::now_v7().to_string(), "x")),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err =
        c.list_contacts(pb::ListContactsRequest { account_id: "zzz".into(), ..Default::default() }).await.unwrap_err();
    assert_violation(&err, "account_id");
    let err = c.list_contacts(pb::ListContactsRequest { page_size: -3, ..Default::default() }).await.unwrap_err();
    assert_violation(&err, "page_size");
    // Every bad field at once, not just the first.
    let err = c
        .list_contacts(pb::ListContactsRequest {
            page_size: -1,
            account_id: "x".into(),
            level: 9,
            ..Default::default()
        })
        .await
        .unwrap_err();
    let fields: Vec<String> = violations(&err).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["page_size", "account_id", "level"]);
    let none = c.list_contacts(pb::ListContactsRequest::default()).await.unwrap().into_inner();
    assert!(none.contacts.is_empty(), "no bad request wrote a contact");
}

#[tokio::test]
async fn contact_create_is_idempotent_with_a_request_id() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("A")).await;
    let req = pb::CreateContactRequest { contact: Some(contact(&a.id, "Once")), request_id: "c-1".into() };
    let one = c.create_contact(req.clone()).await.unwrap().into_inner();
    let two = c.create_contact(req).await.unwrap().into_inner();
    assert_eq!(one, two);
    let all = c.list_contacts(pb::ListContactsRequest::default()).await.unwrap().into_inner();
    assert_eq!(all.contacts.len(), 1);
}
