//! Write keys: created by admins and shown once, stored as a hash, listed
//! without the secret, revoked, and verified only for the caller's tenant.

use banso_proto::accounts as pb;
use banso_testkit::TestApp;
use prost::Message as _;
use sea_orm::{ConnectionTrait, Statement};
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::common::*;

async fn create_key(c: &mut Client, name: &str) -> pb::CreateWriteKeyResponse {
    c.create_write_key(pb::CreateWriteKeyRequest {
        write_key: Some(pb::WriteKey { display_name: name.into(), ..Default::default() }),
    })
    .await
    .expect("create write key")
    .into_inner()
}

async fn verify(app: &TestApp, tenant: &str, role: Role, key: &str) -> Result<String, tonic::Status> {
    client(app, tenant, role)
        .verify_write_key(pb::VerifyWriteKeyRequest { key: key.into() })
        .await
        .map(|r| r.into_inner().write_key_id)
}

/// The stored rows, read from the service's own database.
async fn stored_rows(app: &TestApp) -> Vec<(String, String, String)> {
    let url = banso_kit::db::url_for(&app.config, "accounts").unwrap();
    let db = banso_kit::db::connect(&url, "accounts", &app.config.database).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT key_hash, key_prefix, display_name FROM write_keys ORDER BY id",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get::<String>("", "key_hash").unwrap(),
                r.try_get::<String>("", "key_prefix").unwrap(),
                r.try_get::<String>("", "display_name").unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_key_is_shown_once_and_stored_as_its_hash() {
    let app = spawn().await;
    let mut c = admin(&app);
    let created = create_key(&mut c, "  web app  ").await;
    let key = created.key.clone();
    let (head, secret) = key.rsplit_once('.').unwrap();
    assert_eq!(head, "bk.acme");
    assert_eq!(secret.len(), 43);
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{key}");
    let k = created.write_key.unwrap();
    assert_eq!(k.display_name, "web app");
    assert_eq!(k.creator, "test-user");
    assert!(key.starts_with(&k.key_prefix) && k.key_prefix.len() == "bk.acme.".len() + 6, "{}", k.key_prefix);
    assert!(k.create_time.is_some() && k.revoke_time.is_none());

    // A second key has another secret.
    let other = create_key(&mut c, "server").await;
    assert_ne!(other.key, key);

    // Lists never carry a key: not in any field, not in the encoded reply.
    let listed = c.list_write_keys(pb::ListWriteKeysRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.write_keys.iter().map(|k| k.display_name.as_str()).collect::<Vec<_>>(), ["web app", "server"]);
    let bytes = listed.encode_to_vec();
    for secret in [secret, other.key.rsplit('.').next().unwrap()] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "a listed key leaks its secret");
    }

    // The database holds the SHA-256 and the short prefix, never the key.
    let rows = stored_rows(&app).await;
    assert_eq!(rows.len(), 2);
    let want: String = Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(rows[0].0, want);
    assert_eq!(rows[0].1, k.key_prefix);
    for (hash, prefix, name) in &rows {
        for text in [hash, prefix, name] {
            assert!(!text.contains(secret), "a stored column holds the secret");
        }
    }

    // Paging, oldest first.
    let page = c.list_write_keys(pb::ListWriteKeysRequest { page_size: 1, page_token: String::new() }).await.unwrap();
    let page = page.into_inner();
    assert_eq!(page.write_keys.len(), 1);
    let next = c
        .list_write_keys(pb::ListWriteKeysRequest { page_size: 1, page_token: page.next_page_token })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.write_keys[0].display_name, "server");
}

#[tokio::test]
async fn verify_answers_only_for_the_callers_tenant() {
    let app = spawn().await;
    let mut acme = admin(&app);
    let created = create_key(&mut acme, "web").await;
    let id = created.write_key.unwrap().id;
    assert_eq!(verify(&app, "acme", Role::Service, &created.key).await.unwrap(), id);

    // Another tenant's service learns nothing: the same NOT_FOUND as an unknown key.
    let err = verify(&app, "globex", Role::Service, &created.key).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let unknown = format!("bk.acme.{}", "A".repeat(42) + "A");
    let err_unknown = verify(&app, "acme", Role::Service, &unknown).await.unwrap_err();
    assert_eq!(err_unknown.code(), Code::NotFound);
    // A key naming globex but of acme's secret: not globex's key either.
    let renamed = created.key.replacen("bk.acme.", "bk.globex.", 1);
    assert_eq!(verify(&app, "globex", Role::Service, &renamed).await.unwrap_err().code(), Code::NotFound);
    // The secret is never echoed.
    let secret = created.key.rsplit('.').next().unwrap().to_owned();
    assert!(!err.message().contains(&secret), "{}", err.message());

    // Only services verify.
    for role in [Role::Admin, Role::Csm, Role::Viewer] {
        let err = verify(&app, "acme", role, &created.key).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role:?}");
    }

    // Malformed keys are INVALID_ARGUMENT naming `key`, without the value.
    for bad in ["", "nonsense", "bk.acme.short", &format!("{}x", created.key), &format!("bk.ac me.{secret}")] {
        let err = verify(&app, "acme", Role::Service, bad).await.unwrap_err();
        assert_violation(&err, "key");
        if !bad.is_empty() {
            assert!(!err.message().contains(&secret), "{}", err.message());
        }
    }
}

#[tokio::test]
async fn a_revoked_key_no_longer_verifies() {
    let app = spawn().await;
    let mut c = admin(&app);
    let created = create_key(&mut c, "old").await;
    let kept = create_key(&mut c, "kept").await;
    let id = created.write_key.unwrap().id;

    let revoked = c.revoke_write_key(pb::RevokeWriteKeyRequest { id: id.clone() }).await.unwrap().into_inner();
    assert!(revoked.revoke_time.is_some());
    assert_eq!(verify(&app, "acme", Role::Service, &created.key).await.unwrap_err().code(), Code::NotFound);
    // The other key is untouched.
    assert!(verify(&app, "acme", Role::Service, &kept.key).await.is_ok());

    // Revoking again changes nothing: the first revoke time stays.
    let again = c.revoke_write_key(pb::RevokeWriteKeyRequest { id: id.clone() }).await.unwrap().into_inner();
    assert_eq!(again.revoke_time, revoked.revoke_time);
    // Listed with its revoke time.
    let listed = c.list_write_keys(pb::ListWriteKeysRequest::default()).await.unwrap().into_inner();
    let old = listed.write_keys.iter().find(|k| k.id == id).unwrap();
    assert_eq!(old.revoke_time, revoked.revoke_time);
}

#[tokio::test]
async fn only_admins_manage_keys_and_other_tenants_keys_are_not_found() {
    let app = spawn().await;
    let mut acme = admin(&app);
    let created = create_key(&mut acme, "web").await;
    let id = created.write_key.unwrap().id;

    for role in [Role::Csm, Role::Viewer, Role::Service] {
        let mut c = client(&app, "acme", role);
        let err = c
            .create_write_key(pb::CreateWriteKeyRequest {
                write_key: Some(pb::WriteKey { display_name: "x".into(), ..Default::default() }),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role:?}");
        let err = c.list_write_keys(pb::ListWriteKeysRequest::default()).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role:?}");
        let err = c.revoke_write_key(pb::RevokeWriteKeyRequest { id: id.clone() }).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role:?}");
    }

    // Another tenant's admin sees none of acme's keys and cannot revoke them.
    let mut globex = client(&app, "globex", Role::Admin);
    let listed = globex.list_write_keys(pb::ListWriteKeysRequest::default()).await.unwrap().into_inner();
    assert!(listed.write_keys.is_empty());
    let err = globex.revoke_write_key(pb::RevokeWriteKeyRequest { id: id.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(verify(&app, "acme", Role::Service, &created.key).await.is_ok());

    // Bad input names its field.
    let err = acme.revoke_write_key(pb::RevokeWriteKeyRequest { id: "nope".into() }).await.unwrap_err();
    assert_violation(&err, "id");
    let err = acme.create_write_key(pb::CreateWriteKeyRequest { write_key: None }).await.unwrap_err();
    assert_violation(&err, "write_key");
    for name in ["", "   ", &"x".repeat(201), "a\u{0}b"] {
        let err = acme
            .create_write_key(pb::CreateWriteKeyRequest {
                write_key: Some(pb::WriteKey { display_name: name.into(), ..Default::default() }),
            })
            .await
            .unwrap_err();
        assert_violation(&err, "write_key.display_name");
    }
    let err = acme.list_write_keys(pb::ListWriteKeysRequest { page_size: -1, page_token: String::new() }).await;
    assert_violation(&err.unwrap_err(), "page_size");
    let err = acme.list_write_keys(pb::ListWriteKeysRequest { page_size: 0, page_token: "garbage".into() }).await;
    assert_violation(&err.unwrap_err(), "page_token");
}
