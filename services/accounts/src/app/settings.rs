//! Tenant settings: read (the defaults until first changed) and update by
//! version.

use banso_kit::{Result, auth::Caller};

use super::App;
use crate::{
    domain::{SettingsChange, SettingsField, TenantSettings},
    events, store,
};

/// UpdateTenantSettings: the fields of `mask` set from `values`.
pub(crate) struct UpdateSettings {
    pub etag: Option<i64>,
    pub mask: Vec<SettingsField>,
    pub values: SettingsChange,
}

impl App {
    pub(crate) async fn get_settings(&self, caller: &Caller) -> Result<TenantSettings> {
        store::settings::get(self.db.conn(), &caller.tenant_id).await
    }

    pub(crate) async fn update_settings(&self, caller: &Caller, cmd: UpdateSettings) -> Result<TenantSettings> {
        let s = self.scope(&caller.tenant_id);
        self.db
            .update_versioned(
                &caller.tenant_id,
                "tenant settings",
                cmd.etag,
                async move || store::settings::get(&s.conn, &s.tenant).await,
                |s| {
                    s.apply(&cmd.values, &cmd.mask);
                    Ok(())
                },
                // The first write inserts; one that loses to another first
                // write lost the race, as an update that finds a newer version.
                async |tx, current, next| {
                    let written = store::settings::write(tx.conn(), tx.tenant(), current, next).await?;
                    if written {
                        tx.emit(events::settings_changed(next)).await?;
                    }
                    Ok(written)
                },
            )
            .await
    }
}
