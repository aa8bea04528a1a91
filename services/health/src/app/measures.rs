//! External measure values (support desk, surveys, the feedback service).

use banso_kit::{Error, Result, auth::Caller};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::App;
use crate::store;

/// SetMeasureValue: a valid external measure name, a finite value or none.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SetMeasure {
    pub account: Uuid,
    /// Without the `external:` prefix.
    pub measure: String,
    /// `None` clears it (the measure is then missing).
    pub value: Option<f64>,
    pub observe_time: DateTime<Utc>,
}

impl App {
    /// Sets (or clears) an external measure of a live account of the
    /// tenant, and has the account rescored.
    pub(crate) async fn set_measure_value(&self, caller: &Caller, cmd: SetMeasure) -> Result<SetMeasure> {
        let tenant = caller.tenant_id.as_str();
        // Read before the transaction: on SQLite a transaction's first
        // statement must be its write, or it cannot take the write lock
        // while another writer holds it. (An account deleted meanwhile keeps
        // a value nothing reads.)
        if store::accounts::get_live(self.db.conn(), tenant, cmd.account).await?.is_none() {
            return Err(Error::not_found("account", cmd.account.to_string()));
        }
        self.db
            .write(tenant, async |tx| {
                store::measures::set(tx.conn(), tenant, cmd.account, &cmd.measure, cmd.value, cmd.observe_time).await
            })
            .await?;
        self.scorer.account(tenant, cmd.account);
        Ok(cmd)
    }
}
