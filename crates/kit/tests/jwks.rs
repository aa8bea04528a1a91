//! Tokens from an identity provider: a real HTTP server on 127.0.0.1:0
//! serves OIDC discovery and a JWKS that the test rotates, takes down and
//! counts, as Keycloak, Auth0 or Dex would.
#![allow(clippy::disallowed_methods)]

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use banso_kit::{
    auth::{Authenticator, Role},
    config::{Config, Vars},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const RSA1: &str = include_str!("keys/rsa.pem");
const RSA2: &str = include_str!("keys/rsa2.pem");

fn jwk(file: &str, kid: &str) -> Value {
    let mut k: Value = serde_json::from_str(file).unwrap();
    k["kid"] = json!(kid);
    k
}
fn jwk1() -> Value {
    jwk(include_str!("keys/rsa.jwk.json"), "k1")
}
fn jwk2() -> Value {
    jwk(include_str!("keys/rsa2.jwk.json"), "k2")
}

#[derive(Clone)]
struct Idp {
    keys: Arc<Mutex<Vec<Value>>>,
    down: Arc<AtomicBool>,
    jwks_requests: Arc<AtomicUsize>,
    addr: SocketAddr,
}

impl Idp {
    async fn start(keys: Vec<Value>) -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let idp = Idp {
            keys: Arc::new(Mutex::new(keys)),
            down: Arc::new(AtomicBool::new(false)),
            jwks_requests: Arc::new(AtomicUsize::new(0)),
            addr,
        };
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(|State(idp): State<Idp>| async move {
                    if idp.down.load(Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    json_reply(json!({ "issuer": idp.issuer(), "jwks_uri": format!("{}/keys", idp.issuer()) }))
                }),
            )
            .route(
                "/keys",
                get(|State(idp): State<Idp>| async move {
                    idp.jwks_requests.fetch_add(1, Ordering::SeqCst);
                    if idp.down.load(Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    let keys = idp.keys.lock().unwrap().clone();
                    json_reply(json!({ "keys": keys }))
                }),
            )
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        idp
    }

    fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> usize {
        self.jwks_requests.load(Ordering::SeqCst)
    }
}

fn json_reply(v: Value) -> axum::response::Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A Keycloak-style token: tenant in `org`, roles in `realm_access.roles`.
fn claims(issuer: &str) -> Value {
    json!({
        "sub": "user-1", "iss": issuer, "aud": ["account", "banso"], "iat": now(), "exp": now() + 300,
        "org": "acme", "realm_access": { "roles": ["csm", "offline_access"] },
    })
}

fn sign(pem: &str, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    let token = jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()).unwrap();
    format!("Bearer {token}")
}

fn authenticator(idp: &Idp, extra: &[(&str, &str)]) -> Authenticator {
    let issuer = idp.issuer();
    let mut vars = Vars::from_pairs([
        ("BANSO_JWT_OIDC_ISSUER_URL", issuer.as_str()),
        ("BANSO_JWT_TENANT_CLAIM", "org"),
        ("BANSO_JWT_ROLES_CLAIM", "realm_access.roles"),
    ]);
    for (k, v) in extra {
        vars.set(*k, *v);
    }
    let cfg = Config::from_vars(&vars).expect("valid settings");
    cfg.require_auth_keys().expect("a JWKS is a key source");
    Authenticator::from_config(&cfg.auth).unwrap()
}

/// Waits until `auth` accepts `token` (the first fetch runs in the background).
async fn accepted(auth: &Authenticator, token: &str) -> banso_kit::auth::Caller {
    for _ in 0..250 {
        if let Ok(c) = auth.authenticate_async(Some(token)).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never accepted: {:?}", auth.authenticate_async(Some(token)).await);
}

fn refused(res: banso_kit::Result<banso_kit::auth::Caller>) -> String {
    match res {
        Err(banso_kit::Error::Unauthenticated(m)) => m,
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    }
}

#[tokio::test]
async fn discovered_keys_verify_tokens_with_the_configured_claim_names() {
    let idp = Idp::start(vec![jwk1()]).await;
    let auth = authenticator(&idp, &[]);
    let caller = accepted(&auth, &sign(RSA1, "k1", &claims(&idp.issuer()))).await;
    assert_eq!(caller.tenant_id, "acme");
    assert_eq!(caller.subject, "user-1");
    assert_eq!(caller.roles, vec![Role::Csm], "roles of other systems grant nothing");

    // Roles as a space-separated string, under a namespaced claim (Auth0).
    let auth = authenticator(&idp, &[("BANSO_JWT_ROLES_CLAIM", "https://banso.example/roles")]);
    let mut c = claims(&idp.issuer());
    c["https://banso.example/roles"] = json!("viewer admin");
    let caller = accepted(&auth, &sign(RSA1, "k1", &c)).await;
    assert_eq!(caller.roles, vec![Role::Viewer, Role::Admin]);
}

#[tokio::test]
async fn a_rotated_key_is_taken_without_restart_and_a_removed_one_stops_verifying() {
    let idp = Idp::start(vec![jwk1()]).await;
    let auth = authenticator(&idp, &[]);
    let issuer = idp.issuer();
    accepted(&auth, &sign(RSA1, "k1", &claims(&issuer))).await;

    // The provider rotates: k2 in, k1 out. A k2 token is verified at its
    // first use (the unknown kid fetches the set again), once the
    // unknown-kid rate limit allows a fetch (the polling above may have used
    // it while the first fetch was under way).
    tokio::time::sleep(banso_kit::auth::KID_REFRESH_INTERVAL).await;
    *idp.keys.lock().unwrap() = vec![jwk2()];
    let caller = auth.authenticate_async(Some(&sign(RSA2, "k2", &claims(&issuer)))).await.expect("k2 at first use");
    assert_eq!(caller.tenant_id, "acme");
    // That fetch also dropped k1.
    let msg = refused(auth.authenticate_async(Some(&sign(RSA1, "k1", &claims(&issuer)))).await);
    assert!(msg.contains("k1"), "{msg}");
}

#[tokio::test]
async fn unknown_key_ids_cannot_make_the_service_hammer_the_provider() {
    let idp = Idp::start(vec![jwk1()]).await;
    let auth = authenticator(&idp, &[]);
    let issuer = idp.issuer();
    accepted(&auth, &sign(RSA1, "k1", &claims(&issuer))).await;
    let before = idp.requests();
    let forged: Vec<String> = (0..50).map(|i| sign(RSA2, &format!("forged-{i}"), &claims(&issuer))).collect();
    let results = futures::future::join_all(forged.iter().map(|t| auth.authenticate_async(Some(t)))).await;
    assert!(results.iter().all(|r| r.is_err()), "forged kids are refused");
    let fetched = idp.requests() - before;
    assert!(fetched <= 1, "50 unknown kids fetched the JWKS {fetched} times (at most once per interval)");
}

#[tokio::test]
async fn a_provider_down_at_start_is_waited_for() {
    let idp = Idp::start(vec![jwk1()]).await;
    idp.down.store(true, Ordering::SeqCst);
    let auth = authenticator(&idp, &[]);
    let token = sign(RSA1, "k1", &claims(&idp.issuer()));
    let msg = refused(auth.authenticate(Some(&token)));
    assert!(!msg.is_empty());
    idp.down.store(false, Ordering::SeqCst);
    let caller = accepted(&auth, &token).await;
    assert_eq!(caller.tenant_id, "acme");
}

#[tokio::test]
async fn bad_tokens_are_refused_with_their_reason() {
    let idp = Idp::start(vec![jwk1()]).await;
    let auth = authenticator(&idp, &[]);
    let issuer = idp.issuer();
    accepted(&auth, &sign(RSA1, "k1", &claims(&issuer))).await;

    let mut wrong_issuer = claims(&issuer);
    wrong_issuer["iss"] = json!("https://evil.example");
    let mut wrong_audience = claims(&issuer);
    wrong_audience["aud"] = json!("someone-else");
    let mut expired = claims(&issuer);
    expired["exp"] = json!(now() - 3600);
    let mut no_tenant = claims(&issuer);
    no_tenant["org"] = json!("not a tenant!");
    for (name, c) in [("issuer", wrong_issuer), ("audience", wrong_audience), ("expired", expired)] {
        let msg = refused(auth.authenticate_async(Some(&sign(RSA1, "k1", &c))).await).to_lowercase();
        assert!(msg.contains("invalid token") || msg.contains(name), "{name}: {msg}");
    }
    let msg = refused(auth.authenticate_async(Some(&sign(RSA1, "k1", &no_tenant))).await);
    assert!(msg.contains("org") || msg.contains("tenant"), "{msg}");

    // alg none, and an HS256 token signed with the public key's bytes (the
    // algorithm-confusion attack), against a JWKS-only configuration.
    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!("Bearer {}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims(&issuer)));
    let msg = refused(auth.authenticate_async(Some(&none)).await);
    assert!(!msg.is_empty());
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&issuer),
        &EncodingKey::from_secret(include_bytes!("keys/rsa.pub.pem")),
    )
    .unwrap();
    let msg = refused(auth.authenticate_async(Some(&format!("Bearer {hs}"))).await);
    assert!(msg.contains("HS256"), "{msg}");
}

#[test]
fn jwks_settings_are_checked_at_start() {
    let bad = |pairs: &[(&str, &str)]| Config::from_vars(&Vars::from_pairs(pairs.iter().copied())).unwrap_err();
    let err =
        bad(&[("BANSO_JWT_OIDC_ISSUER_URL", "https://id.example"), ("BANSO_JWT_JWKS_URL", "https://id.example/k")]);
    assert!(err.var.starts_with("BANSO_JWT_"), "{err}");
    assert_eq!(bad(&[("BANSO_JWT_JWKS_URL", "not a url")]).var, "BANSO_JWT_JWKS_URL");
    assert_eq!(bad(&[("BANSO_JWT_OIDC_ISSUER_URL", "ftp://id.example")]).var, "BANSO_JWT_OIDC_ISSUER_URL");
    let err = bad(&[("BANSO_JWT_JWKS_REFRESH_SECS", "60")]);
    assert_eq!(err.var, "BANSO_JWT_JWKS_REFRESH_SECS");
}
