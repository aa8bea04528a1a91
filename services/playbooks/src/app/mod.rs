//! The use cases of the Playbooks service, a file a resource: one
//! `pub(crate) async fn` each, one transaction each through
//! [`banso_events::Db`]. The engine ([`engine`]) is shared by the live
//! consumer, the schedule, manual runs and simulation, so a simulation runs
//! exactly the rules the live engine runs.

mod ctas;
pub(crate) mod engine;
pub(crate) mod outreach;
pub(crate) mod plans;
mod playbooks;
pub(crate) mod programmes;
pub(crate) mod schedule;
mod settings;

pub(crate) use ctas::{CloseCta, CreateCta, CtaQuery, MAX_TASKS, TaskChanges, UpdateCta};
pub(crate) use outreach::{CreateEndpoint, UpdateEndpoint};
pub(crate) use playbooks::{CreatePlaybook, UpdatePlaybook};
pub(crate) use settings::UpdateSettings;

use std::sync::Arc;

use banso_events::Db;
use sea_orm::DatabaseConnection;

/// The service's use cases over its database.
#[derive(Clone)]
pub(crate) struct App {
    pub db: Db,
    pub engine: Arc<engine::Engine>,
}

impl App {
    /// What a closure given to [`Db`] reads with, owned (see Accounts' `Scope`).
    fn scope(&self, tenant: &str) -> Scope {
        Scope { conn: self.db.conn().clone(), tenant: tenant.to_owned() }
    }
}

#[derive(Clone)]
struct Scope {
    conn: DatabaseConnection,
    tenant: String,
}
