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

pub(crate) use banso_kit::db::{corrupt, from_json, to_json};
