//! The repository: the only code that speaks SQL to the `feedback`
//! schema. Every function takes the tenant and a connection: the pool for
//! reads, the use case's transaction ([`banso_events::Tx`]) for writes.

pub(crate) mod answers;
pub(crate) mod axes;
pub(crate) mod campaigns;
pub(crate) mod entities;
pub(crate) mod loops;
pub(crate) mod projection;
pub(crate) mod rank;
pub(crate) mod routing;
pub(crate) mod surveys;
pub(crate) mod tenants;
pub(crate) mod voice;

pub(crate) use banso_kit::db::{corrupt, from_json, to_json};
