//! Wire pieces several resources share: field paths, money, external ids,
//! request ids, required messages, and paging.

use banso_kit::{
    Result, Violations, idempotency,
    paging::{self, QueryKey},
    server::Kit,
    wire,
};
use banso_proto::types as tpb;
use serde::{Serialize, de::DeserializeOwned};

use crate::domain::{Money, validate};

/// The path of field `name` of a message at `prefix` (`account.name`); a row
/// of an import stream has no prefix (`name`).
pub(super) fn path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") }
}

/// A required message field: `None` with a violation when unset.
pub(super) fn required<T>(v: &mut Violations, field: &str, m: Option<T>) -> Option<T> {
    if m.is_none() {
        v.add(field, "is required");
    }
    m
}

/// A client's `request_id`: `None` when empty, a violation when malformed.
pub(super) fn request_id(v: &mut Violations, s: &str) -> Option<String> {
    v.take(idempotency::optional("request_id", s)).flatten().map(str::to_owned)
}

/// An external id (a CRM's): at most 128 characters; `None` when empty.
pub(super) fn external_id(v: &mut Violations, field: &str, s: &str) -> Option<String> {
    wire::text(v, field, s, 128);
    (!s.is_empty()).then(|| s.to_owned())
}

/// Money in an ISO 4217 currency with a minor unit, not negative.
pub(super) fn money_from_proto(v: &mut Violations, field: &str, m: &tpb::Money) -> Option<Money> {
    let exponent = validate::currency(v, &format!("{field}.currency_code"), &m.currency_code);
    if m.amount_minor < 0 {
        v.add(format!("{field}.amount_minor"), format!("must not be negative, got {}", m.amount_minor));
        return None;
    }
    exponent.map(|_| Money { currency_code: m.currency_code.clone(), amount_minor: m.amount_minor })
}

pub(super) fn money_to_proto(m: &Money) -> tpb::Money {
    tpb::Money { currency_code: m.currency_code.clone(), amount_minor: m.amount_minor }
}

/// One page of a list method: the query its tokens are bound to, where it
/// resumes (the cursor of a page token) and how many rows it holds.
pub(crate) struct Paged<C> {
    key: QueryKey,
    pub after: Option<C>,
    pub limit: u64,
}

impl<C: Serialize + DeserializeOwned> Paged<C> {
    /// The page a request asks for; INVALID_ARGUMENT `page_token` if the
    /// token was not made for this query (edited, or of another filter,
    /// order or tenant).
    pub(crate) fn new(kit: &Kit, key: QueryKey, token: &str, limit: u64) -> Result<Self> {
        let after = kit.page_tokens.decode(&key, token)?;
        Ok(Paged { key, after, limit })
    }

    /// Rows to fetch: one more than the page, to know whether another follows.
    pub(crate) fn fetch(&self) -> u64 {
        self.limit.saturating_add(1)
    }

    /// The page of `rows` (fetched with [`Self::fetch`]) and the token of
    /// the next one (empty on the last).
    pub(crate) fn page<T>(&self, kit: &Kit, rows: Vec<T>, cursor: impl FnOnce(&T) -> C) -> Result<(Vec<T>, String)> {
        kit.page_tokens.page(&self.key, rows, self.limit, cursor)
    }

    /// The token that resumes after `cursor`; empty for none (the end).
    pub(crate) fn token(&self, kit: &Kit, cursor: Option<&C>) -> Result<String> {
        cursor.map_or_else(|| Ok(String::new()), |c| kit.page_tokens.encode(&self.key, c))
    }
}

/// A page size, or a violation (`page_size`) when negative.
pub(super) fn page_size(v: &mut Violations, requested: i32) -> Option<u64> {
    v.take(paging::page_size(requested))
}

/// The id and etag of a Delete request, both checked.
pub(super) fn id_and_etag(id: &str, etag: &str) -> Result<(uuid::Uuid, Option<i64>)> {
    let mut v = Violations::new();
    let id = v.take(wire::uuid("id", id));
    let etag = v.take(banso_kit::etag::parse("etag", etag));
    v.finish_with((id, etag))
}
