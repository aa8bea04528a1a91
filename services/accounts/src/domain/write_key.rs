//! Write keys: the tracking API's credentials. A key is
//! `bk.<tenant>.<secret>`, the secret 32 random bytes in unpadded base64url
//! (43 characters). The tenant is in the key so the gateway knows whom to
//! ask before it is verified; the secret makes it unguessable. Only the
//! key's SHA-256 is stored: 256 random bits need no slow hash, and a
//! leaked table gives no usable key.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Every key starts with this, so a key is recognisable in a leak scan.
pub const PREFIX: &str = "bk";
/// Random bytes in a key's secret.
pub const SECRET_BYTES: usize = 32;
/// Characters of a secret: 32 bytes in unpadded base64url.
pub const SECRET_CHARS: usize = 43;
/// Characters of the secret a key's visible prefix keeps.
const VISIBLE_SECRET_CHARS: usize = 6;

/// A stored write key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteKey {
    pub id: Uuid,
    pub display_name: String,
    /// `bk.<tenant>.<first 6 characters of the secret>`.
    pub key_prefix: String,
    /// Hex SHA-256 of the whole key.
    pub key_hash: String,
    pub creator: String,
    pub create_time: DateTime<Utc>,
    pub revoke_time: Option<DateTime<Utc>>,
}

impl WriteKey {
    pub fn is_revoked(&self) -> bool {
        self.revoke_time.is_some()
    }
}

/// A new key of `tenant` from `secret` (random bytes the caller drew).
pub fn compose(tenant: &str, secret: &[u8; SECRET_BYTES]) -> String {
    format!("{PREFIX}.{tenant}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret))
}

/// The tenant a key names, if it has a key's shape: `bk.`, a tenant id,
/// `.`, then 43 base64url characters.
pub fn tenant_of(key: &str) -> Option<&str> {
    let mut parts = key.split('.');
    let (Some(PREFIX), Some(tenant), Some(secret), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let secret_ok = secret.len() == SECRET_CHARS
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(secret).is_ok_and(|b| b.len() == SECRET_BYTES);
    (banso_kit::auth::valid_tenant_id(tenant) && secret_ok).then_some(tenant)
}

/// What is stored of a key: its hex SHA-256.
pub fn hash(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The part of a key shown in lists: the tenant and a few characters of
/// the secret (36 bits of 256: enough to tell keys apart, far from enough
/// to use one).
pub fn visible_prefix(key: &str) -> String {
    match key.rsplit_once('.') {
        Some((head, secret)) => format!("{head}.{}", secret.chars().take(VISIBLE_SECRET_CHARS).collect::<String>()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_composed_key_names_its_tenant_and_hides_its_secret() {
        let key = compose("acme-1_x", &[7u8; SECRET_BYTES]);
        assert!(key.starts_with("bk.acme-1_x."));
        assert_eq!(key.len(), "bk.acme-1_x.".len() + SECRET_CHARS);
        assert_eq!(tenant_of(&key), Some("acme-1_x"));
        let prefix = visible_prefix(&key);
        assert_eq!(prefix.len(), "bk.acme-1_x.".len() + 6);
        assert!(key.starts_with(&prefix));
        assert_eq!(hash(&key).len(), 64);
        assert_ne!(hash(&key), hash(&compose("acme-1_x", &[8u8; SECRET_BYTES])));
    }

    #[test]
    fn malformed_keys_name_no_tenant() {
        let good = compose("acme", &[1u8; SECRET_BYTES]);
        let secret = good.rsplit('.').next().unwrap().to_owned();
        for bad in [
            String::new(),
            "bk".into(),
            "bk.acme".into(),
            format!("xx.acme.{secret}"),
            format!("bk..{secret}"),
            format!("bk.ac me.{secret}"),
            format!("bk.{}.{secret}", "a".repeat(65)),
            format!("bk.acme.{secret}.x"),
            format!("bk.acme.{}", &secret[1..]),
            format!("bk.acme.{secret}A"),
            format!("bk.acme.{}+", &secret[1..]),
            // The last character of 43 carries 2 padding bits: non-canonical forms are refused.
            format!("bk.acme.{}", secret.replace(|_: char| true, "_")),
        ] {
            assert_eq!(tenant_of(&bad), None, "{bad:?}");
        }
    }
}
