//! The use cases of the Accounts service, a file a resource: one
//! `pub(crate) async fn` each. A write is one transaction through
//! [`banso_events::Db`] (read, apply the domain rule, write through the
//! store, emit the event beside the write); the imports write one
//! transaction a chunk (accounts) or a row (contacts), as their streams
//! arrive. Reads go to the store on the pool. Commands arrive parsed
//! (every value valid, `api/`), replies leave as domain values.

mod accounts;
mod activities;
mod contacts;
mod contracts;
mod import;
mod retention;
mod segments;
mod settings;
mod touch_rules;
mod write_keys;

pub(crate) use accounts::{CreateAccount, UpdateAccount, UpsertAccount};
pub(crate) use activities::{EmailWindow, RatioGrouping, RatioQuery, RatioReport};
pub(crate) use contacts::{CreateContact, UpdateContact};
pub(crate) use contracts::RecordContract;
pub(crate) use import::{AccountChunk, AccountRef, AccountRow, Chunk, ContactRow, ImportTally, Refused};
pub(crate) use retention::MetricsQuery;
pub(crate) use segments::{CreateSegment, SegmentCount, UpdateSegment};
pub(crate) use settings::UpdateSettings;
pub(crate) use touch_rules::{RulesPreview, UpdateTouchMixRules};

use banso_events::{Db, db::remembered};
use banso_kit::{Error, shown};
use sea_orm::DatabaseConnection;

/// The service's use cases over its database.
#[derive(Clone)]
pub(crate) struct App {
    db: Db,
    /// How long UpdateTouchMixRules re-applies before leaving the rest to
    /// the background pass.
    reapply_budget: std::time::Duration,
}

impl App {
    pub(crate) fn new(db: Db) -> Self {
        App { db, reapply_budget: touch_rules::REQUEST_BUDGET }
    }

    pub(crate) fn with_reapply_budget(self, reapply_budget: std::time::Duration) -> Self {
        App { reapply_budget, ..self }
    }

    /// What a closure given to [`Db`] reads with, owned.
    fn scope(&self, tenant: &str) -> Scope {
        Scope { conn: self.db.conn().clone(), tenant: tenant.to_owned() }
    }
}

/// The pool and the tenant, owned. The async closures a use case gives to
/// [`Db`] own what they capture (`async move`, no borrowed upvar): one that
/// captures a reference makes the handler's future fail the `Send` bound
/// tonic requires (rust-lang/rust#139475), so they read through a `Scope`
/// and write through the `Tx` (which knows its tenant).
#[derive(Clone)]
struct Scope {
    conn: DatabaseConnection,
    tenant: String,
}

/// A unique violation of an account's or a contact's write: the only
/// unique key a client sets is its external_id, so that is what is taken.
fn external_id_taken(e: Error, resource: &str, external_id: Option<&str>) -> Error {
    match e {
        Error::AlreadyExists(_) => Error::AlreadyExists(format!(
            "another {resource} of this tenant already has external_id {}",
            shown(external_id.unwrap_or_default())
        )),
        other => other,
    }
}
