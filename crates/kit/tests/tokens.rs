//! Production tokens: RS256 and EdDSA verified with a public key only.

use std::time::{SystemTime, UNIX_EPOCH};

use banso_kit::{
    Error,
    auth::{Authenticator, Claims, Role},
    config::{AuthConfig, KeyAlgorithm, Secret},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys");

fn key(name: &str) -> String {
    std::fs::read_to_string(format!("{KEYS}/{name}")).unwrap()
}

fn claims() -> Claims {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    Claims {
        sub: "svc-crm".into(),
        tenant_id: "acme".into(),
        roles: vec!["service".into(), "some-other-systems-role".into()],
        iss: "https://id.example.com".into(),
        aud: "banso".into(),
        exp: now + 300,
        iat: now,
    }
}

fn config(pem: &str, algorithm: KeyAlgorithm) -> AuthConfig {
    AuthConfig {
        hs256_secret: None,
        public_key_pem: Some(pem.into()),
        algorithm,
        issuer: "https://id.example.com".into(),
        audience: "banso".into(),
        ..AuthConfig::default()
    }
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

#[test]
fn rs256_tokens_verify_with_the_public_key() {
    let auth = Authenticator::from_config(&config(&key("rsa.pub.pem"), KeyAlgorithm::Rs256)).unwrap();
    let signer = EncodingKey::from_rsa_pem(key("rsa.pem").as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims(), &signer).unwrap();
    let caller = auth.authenticate(Some(&bearer(&token))).unwrap();
    assert_eq!(caller.tenant_id, "acme");
    assert_eq!(caller.roles, vec![Role::Service], "unknown roles grant nothing");
}

#[test]
fn eddsa_tokens_verify_with_the_public_key() {
    let auth = Authenticator::from_config(&config(&key("ed25519.pub.pem"), KeyAlgorithm::EdDsa)).unwrap();
    let signer = EncodingKey::from_ed_pem(key("ed25519.pem").as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims(), &signer).unwrap();
    assert_eq!(auth.authenticate(Some(&bearer(&token))).unwrap().subject, "svc-crm");

    // Tampering with the payload breaks the signature.
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    parts[1] = parts[1].replace('a', "b");
    assert!(matches!(auth.authenticate(Some(&bearer(&parts.join(".")))), Err(Error::Unauthenticated(_))));
}

#[test]
fn hs256_tokens_are_refused_when_only_a_public_key_is_configured() {
    // Algorithm confusion: an attacker signs HS256 with the public key as the secret.
    let pem = key("rsa.pub.pem");
    let auth = Authenticator::from_config(&config(&pem, KeyAlgorithm::Rs256)).unwrap();
    let forged =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims(), &EncodingKey::from_secret(pem.as_bytes()))
            .unwrap();
    assert!(matches!(auth.authenticate(Some(&bearer(&forged))), Err(Error::Unauthenticated(_))));
}

#[test]
fn wrong_issuer_or_another_private_key_is_refused() {
    let auth = Authenticator::from_config(&config(&key("ed25519.pub.pem"), KeyAlgorithm::EdDsa)).unwrap();
    let signer = EncodingKey::from_ed_pem(key("ed25519.pem").as_bytes()).unwrap();
    let mut c = claims();
    c.iss = "https://evil.example.com".into();
    let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &c, &signer).unwrap();
    assert!(auth.authenticate(Some(&bearer(&token))).is_err());
    // An RS256 token when the configured key is Ed25519.
    let rsa = EncodingKey::from_rsa_pem(key("rsa.pem").as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims(), &rsa).unwrap();
    assert!(auth.authenticate(Some(&bearer(&token))).is_err());
}

#[test]
fn a_bad_public_key_fails_at_start() {
    assert!(Authenticator::from_config(&config("not a pem", KeyAlgorithm::Rs256)).is_err());
    let none = AuthConfig { public_key_pem: None, hs256_secret: None, ..config("", KeyAlgorithm::Rs256) };
    assert!(Authenticator::from_config(&none).is_err());
    let dev = AuthConfig { hs256_secret: Some(Secret::new("x".repeat(32))), ..none };
    assert!(Authenticator::from_config(&dev).is_ok());
}
