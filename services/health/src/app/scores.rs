//! An account's current health.

use banso_kit::{Error, Result, auth::Caller};
use uuid::Uuid;

use super::App;
use crate::{
    domain::account::AccountRow,
    store::{self, health::StoredHealth},
};

impl App {
    /// A live account's current health: NOT_FOUND for an account the tenant
    /// does not have, and for one not scored (no scorecard applies, or none
    /// of its measures counts).
    pub(crate) async fn get_account_health(
        &self,
        caller: &Caller,
        account: Uuid,
    ) -> Result<(AccountRow, StoredHealth)> {
        let tenant = caller.tenant_id.as_str();
        let conn = self.db.conn();
        let row = store::accounts::get_live(conn, tenant, account)
            .await?
            .ok_or_else(|| Error::not_found("account", account.to_string()))?;
        let health = store::health::of(conn, tenant, &[account])
            .await?
            .remove(&account)
            .ok_or_else(|| Error::not_found("account health", account.to_string()))?;
        Ok((row, health))
    }
}
