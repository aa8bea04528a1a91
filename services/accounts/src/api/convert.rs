//! Wire pieces several resources share: field paths, money, external ids,
//! request ids, required messages, and paging.

use banso_kit::{Result, Violations, paging, wire};
use banso_proto::types as tpb;

use crate::domain::{Money, validate};

/// The path of field `name` of a message at `prefix` (`account.name`); a row
/// of an import stream has no prefix (`name`).
pub(super) fn path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") }
}

/// A required message field; a client's `request_id` (the kit's, once).
pub(super) use banso_kit::wire::{request_id, required};

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

/// One page of a list method (the kit's, bound to the query and the tenant).
pub(crate) use banso_kit::paging::Paged;

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
