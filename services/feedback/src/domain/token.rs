//! The response token of an invitation: signed, expiring, single-use.
//!
//! `base64url(payload) "." base64url(mac)`, where the payload is a version
//! byte, the invitation's id (16 bytes), its expiry (Unix seconds, 8 bytes
//! big-endian) and the tenant, and the MAC is the first 16 bytes of
//! HMAC-SHA256 over the payload with `BANSO_FEEDBACK_TOKEN_SECRET`. The
//! tenant travels inside so the public path needs no login; the signature
//! makes it trustworthy. Single use is the invitation's state, not the
//! token's: an answered invitation refuses a second answer.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;
/// Longest token read: a version, an id, an expiry and a 64-byte tenant,
/// encoded, with the MAC. Anything longer is not ours.
pub(crate) const MAX_TOKEN_LEN: usize = 200;

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claims {
    pub tenant: String,
    pub invitation: Uuid,
    pub expire_time: DateTime<Utc>,
}

/// Why a token is refused. Only a token we signed can be expired; a forged
/// one says nothing about any invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a token this service signed (or cut, or changed).
    Invalid,
    /// Signed, but past its expiry.
    Expired,
}

/// Signs and reads response tokens with one secret.
#[derive(Clone)]
pub(crate) struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub(crate) fn new(secret: &[u8]) -> Self {
        Signer { key: secret.to_vec() }
    }

    #[allow(clippy::expect_used, reason = "HMAC takes a key of any length")]
    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("hmac accepts any key length");
        m.update(payload);
        m
    }

    /// The token of `c`: the same claims always give the same token, so a
    /// listing can show it again without storing it.
    pub(crate) fn sign(&self, c: &Claims) -> String {
        let mut payload = Vec::with_capacity(25 + c.tenant.len());
        payload.push(VERSION);
        payload.extend_from_slice(c.invitation.as_bytes());
        payload.extend_from_slice(&c.expire_time.timestamp().to_be_bytes());
        payload.extend_from_slice(c.tenant.as_bytes());
        let mac = self.mac(&payload).finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(&mac[..MAC_LEN]))
    }

    /// The claims of `token` at `now`, or why it is refused.
    pub(crate) fn read(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, Refusal> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Refusal::Invalid);
        }
        let (payload, mac) = token.split_once('.').ok_or(Refusal::Invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| Refusal::Invalid)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| Refusal::Invalid)?;
        if mac.len() != MAC_LEN {
            return Err(Refusal::Invalid);
        }
        // Constant time: the MAC is checked before anything else is read.
        self.mac(&payload).verify_truncated_left(&mac).map_err(|_| Refusal::Invalid)?;
        if payload.len() < 26 || payload[0] != VERSION {
            return Err(Refusal::Invalid);
        }
        let invitation = Uuid::from_slice(&payload[1..17]).map_err(|_| Refusal::Invalid)?;
        let mut secs = [0u8; 8];
        secs.copy_from_slice(&payload[17..25]);
        let expire_time = DateTime::from_timestamp(i64::from_be_bytes(secs), 0).ok_or(Refusal::Invalid)?;
        let tenant = String::from_utf8(payload[25..].to_vec()).map_err(|_| Refusal::Invalid)?;
        if now >= expire_time {
            return Err(Refusal::Expired);
        }
        Ok(Claims { tenant, invitation, expire_time })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            tenant: "acme".into(),
            invitation: Uuid::now_v7(),
            expire_time: DateTime::from_timestamp(2_000_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn a_token_reads_back_until_it_expires() {
        let s = Signer::new(b"0123456789abcdef0123456789abcdef");
        let c = claims();
        let t = s.sign(&c);
        assert_eq!(t, s.sign(&c), "deterministic");
        assert!(t.len() < MAX_TOKEN_LEN && !t.contains('/') && !t.contains('+'), "{t}");
        let before = c.expire_time - chrono::Duration::seconds(1);
        assert_eq!(s.read(&t, before), Ok(c.clone()));
        assert_eq!(s.read(&t, c.expire_time), Err(Refusal::Expired));
    }

    /// A token changed anywhere, cut, signed with another key or not a
    /// token at all is Invalid — never Expired, which would tell a forger
    /// something.
    #[test]
    fn forged_tokens_are_invalid() {
        let s = Signer::new(b"0123456789abcdef0123456789abcdef");
        let c = claims();
        let t = s.sign(&c);
        let now = DateTime::from_timestamp(1_000_000_000, 0).unwrap();
        let other = Signer::new(b"another key another key another!").sign(&c);
        let mut flipped = t.clone().into_bytes();
        flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
        let later = Claims { expire_time: c.expire_time + chrono::Duration::days(365), ..c.clone() };
        let (payload, _) = s.sign(&later).split_once('.').map(|(a, b)| (a.to_string(), b.to_string())).unwrap();
        let (_, mac) = t.split_once('.').unwrap();
        for bad in [
            other,
            String::from_utf8(flipped).unwrap(),
            t[..t.len() - 2].to_string(),
            format!("{payload}.{mac}"),
            "".into(),
            ".".into(),
            "not a token".into(),
            "x".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert_eq!(s.read(&bad, now), Err(Refusal::Invalid), "{bad}");
        }
    }
}
