//! The tenant's feedback settings.

use std::collections::BTreeMap;

use banso_kit::{Result, auth::Caller};

use super::App;
use crate::{
    domain::survey::Kind,
    store::{self, tenants::Tenant},
};

impl App {
    pub(crate) async fn feedback_settings(&self, caller: &Caller) -> Result<Tenant> {
        store::tenants::get(self.db.conn(), &caller.tenant_id).await
    }

    /// Sets the throttle of the kinds given.
    pub(crate) async fn update_feedback_settings(&self, caller: &Caller, days: BTreeMap<Kind, i32>) -> Result<Tenant> {
        self.db
            .write(&caller.tenant_id, async |tx| store::tenants::set_throttles(tx.conn(), tx.tenant(), &days).await)
            .await
    }
}
