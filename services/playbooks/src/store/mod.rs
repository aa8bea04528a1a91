//! The repository: the only code that speaks SQL to the `playbooks`
//! schema. Every function takes the tenant and a connection: the pool for
//! reads, the use case's transaction ([`banso_events::Tx`]) for writes.

pub(crate) mod account_changes;
pub(crate) mod ctas;
pub(crate) mod entities;
pub(crate) mod firings;
pub(crate) mod outreach;
pub(crate) mod plans;
pub(crate) mod playbooks;
pub(crate) mod programmes;
pub(crate) mod projection;
pub(crate) mod tenants;
pub(crate) mod trigger_events;

use banso_kit::{Error, Result};

/// A JSON column written by this service that no longer reads: a bug or a
/// hand edit, never the caller's fault.
pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(anyhow::anyhow!("stored {what} does not read: {e}"))
}

pub(crate) fn to_json<T: serde::Serialize>(what: &str, v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| corrupt(what, e))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt(what, e))
}
