//! Page sizes and opaque, tamper-evident page tokens.
//!
//! A token carries a keyset cursor (the sort key and id of the last row
//! returned, never an OFFSET, so rows inserted meanwhile neither repeat nor
//! go missing) and an HMAC over the cursor *and the query that made it*
//! (tenant, method, filter, order). A token that was edited, or replayed
//! with another filter or by another tenant, fails with INVALID_ARGUMENT.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Rows per page when the request leaves `page_size` at 0.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// The most rows one page returns; larger requests are lowered to it.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// The effective page size of a request, or INVALID_ARGUMENT if negative.
pub fn page_size(requested: i32) -> Result<u64> {
    match requested {
        n if n < 0 => Err(Error::invalid("page_size", format!("must not be negative, got {n}"))),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok((n as u64).min(MAX_PAGE_SIZE)),
    }
}

/// What a page token is bound to: built from the parts of a list query.
#[derive(Clone)]
pub struct QueryKey(Sha256);

impl QueryKey {
    /// Starts a key for `method` (e.g. `"ListAccounts"`) of `tenant_id`.
    pub fn new(method: &str, tenant_id: &str) -> Self {
        let mut h = Sha256::new();
        for part in [method.as_bytes(), tenant_id.as_bytes()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        QueryKey(h)
    }

    /// Adds one part of the query (an encoded filter, an order_by…).
    pub fn part(mut self, bytes: impl AsRef<[u8]>) -> Self {
        let b = bytes.as_ref();
        self.0.update((b.len() as u64).to_be_bytes());
        self.0.update(b);
        self
    }

    fn digest(&self) -> [u8; 32] {
        self.0.clone().finalize().into()
    }
}

/// Signs and checks page tokens with a server-side key.
#[derive(Clone)]
pub struct PageTokens {
    key: Vec<u8>,
}

const MAC_LEN: usize = 16;

impl PageTokens {
    pub fn new(secret: &[u8]) -> Self {
        PageTokens { key: secret.to_vec() }
    }

    /// A random key: tokens die with the process (fine for one replica).
    pub fn random() -> Self {
        let key: [u8; 32] = rand::random();
        PageTokens { key: key.to_vec() }
    }

    #[allow(clippy::expect_used, reason = "HMAC takes a key of any length")]
    fn hmac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("hmac accepts any key length")
    }

    fn mac(&self, query: &QueryKey, payload: &[u8]) -> [u8; MAC_LEN] {
        let mut m = self.hmac();
        m.update(&query.digest());
        m.update(payload);
        let full = m.finalize().into_bytes();
        let mut out = [0; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// A token for the page after `cursor`.
    pub fn encode<C: Serialize>(&self, query: &QueryKey, cursor: &C) -> Result<String> {
        let payload = serde_json::to_vec(cursor).map_err(Error::internal)?;
        let mut raw = payload.clone();
        raw.extend_from_slice(&self.mac(query, &payload));
        Ok(URL_SAFE_NO_PAD.encode(raw))
    }

    /// Cuts `rows` (fetched with `limit + 1`) to one page, and makes the
    /// token that resumes after its last row (empty on the last page).
    pub fn page<T, C: Serialize>(
        &self,
        query: &QueryKey,
        mut rows: Vec<T>,
        limit: u64,
        cursor: impl FnOnce(&T) -> C,
    ) -> Result<(Vec<T>, String)> {
        if rows.len() as u64 <= limit {
            return Ok((rows, String::new()));
        }
        rows.truncate(limit as usize);
        let token = match rows.last() {
            Some(last) => self.encode(query, &cursor(last))?,
            None => String::new(),
        };
        Ok((rows, token))
    }

    /// The cursor in `token`, `None` for the first page (empty token).
    pub fn decode<C: DeserializeOwned>(&self, query: &QueryKey, token: &str) -> Result<Option<C>> {
        if token.is_empty() {
            return Ok(None);
        }
        let bad = || {
            Error::invalid(
                "page_token",
                "is not a token issued for this query (it was altered, expired with a key change, or the filter or order changed)",
            )
        };
        let raw = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| bad())?;
        if raw.len() <= MAC_LEN {
            return Err(bad());
        }
        let (payload, mac) = raw.split_at(raw.len() - MAC_LEN);
        let mut m = self.hmac();
        m.update(&query.digest());
        m.update(payload);
        // Constant-time comparison of the truncated tag.
        m.verify_truncated_left(mac).map_err(|_| bad())?;
        serde_json::from_slice(payload).map(Some).map_err(|_| bad())
    }
}

/// One page of a list method: the query its tokens are bound to, where it
/// resumes (the cursor of a page token) and how many rows it holds.
pub struct Paged<C> {
    key: QueryKey,
    pub after: Option<C>,
    pub limit: u64,
}

impl<C: Serialize + DeserializeOwned> Paged<C> {
    /// The page a request asks for; INVALID_ARGUMENT `page_token` if the
    /// token was not made for this query (edited, or of another filter,
    /// order or tenant).
    pub fn new(tokens: &PageTokens, key: QueryKey, token: &str, limit: u64) -> Result<Self> {
        let after = tokens.decode(&key, token)?;
        Ok(Paged { key, after, limit })
    }

    /// Rows to fetch: one more than the page, to know whether another follows.
    pub fn fetch(&self) -> u64 {
        self.limit.saturating_add(1)
    }

    /// The page of `rows` (fetched with [`Self::fetch`]) and the token of
    /// the next one (empty on the last).
    pub fn page<T>(&self, tokens: &PageTokens, rows: Vec<T>, cursor: impl FnOnce(&T) -> C) -> Result<(Vec<T>, String)> {
        tokens.page(&self.key, rows, self.limit, cursor)
    }

    /// The token that resumes after `cursor`; empty for none (the end).
    pub fn token(&self, tokens: &PageTokens, cursor: Option<&C>) -> Result<String> {
        cursor.map_or_else(|| Ok(String::new()), |c| tokens.encode(&self.key, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_defaults_caps_and_rejects_negative() {
        assert_eq!(page_size(0).unwrap(), 50);
        assert_eq!(page_size(7).unwrap(), 7);
        assert_eq!(page_size(5000).unwrap(), 1000);
        assert!(page_size(-1).is_err());
    }

    #[test]
    fn tokens_round_trip_and_detect_tampering() {
        let tokens = PageTokens::new(b"k");
        let q = QueryKey::new("ListAccounts", "acme").part("filter");
        let t = tokens.encode(&q, &("2024-01-01", 42)).unwrap();
        let back: Option<(String, i32)> = tokens.decode(&q, &t).unwrap();
        assert_eq!(back, Some(("2024-01-01".to_string(), 42)));

        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        raw[3] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(raw);
        assert!(tokens.decode::<(String, i32)>(&q, &tampered).is_err());

        let other_query = QueryKey::new("ListAccounts", "acme").part("other filter");
        assert!(tokens.decode::<(String, i32)>(&other_query, &t).is_err());
        let other_tenant = QueryKey::new("ListAccounts", "evil").part("filter");
        assert!(tokens.decode::<(String, i32)>(&other_tenant, &t).is_err());
        assert!(tokens.decode::<(String, i32)>(&q, "!!!").is_err());
        assert_eq!(tokens.decode::<(String, i32)>(&q, "").unwrap(), None);
    }
}
