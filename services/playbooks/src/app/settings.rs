//! The tenant's playbook settings.

use banso_events::db::Versioned;
use banso_kit::{Result, auth::Caller};
use chrono::{DateTime, Utc};

use super::App;
use crate::store::{self, tenants::Settings};

/// UpdatePlaybookSettings: each `Some` is a field of the mask.
#[derive(Debug, Clone, Default)]
pub(crate) struct UpdateSettings {
    pub etag: Option<i64>,
    pub schedule_time: Option<String>,
    pub fatigue_max_messages: Option<i32>,
    pub fatigue_window_days: Option<i32>,
    pub review_execution_threshold_percent: Option<i32>,
}

impl Versioned for Settings {
    fn version(&self) -> i64 {
        // A tenant never written reads as version 1 (etag "v1").
        self.version.max(1)
    }

    fn advance(&mut self, _now: DateTime<Utc>) {
        self.version = self.version.max(1) + 1;
    }
}

impl App {
    pub(crate) async fn get_settings(&self, caller: &Caller) -> Result<Settings> {
        store::tenants::get(self.db.conn(), &caller.tenant_id).await
    }

    pub(crate) async fn update_settings(&self, caller: &Caller, cmd: UpdateSettings) -> Result<Settings> {
        let s = self.scope(&caller.tenant_id);
        self.db
            .update_versioned(
                &caller.tenant_id,
                "playbook settings",
                cmd.etag,
                async move || store::tenants::get(&s.conn, &s.tenant).await,
                |x| {
                    if let Some(t) = &cmd.schedule_time {
                        x.schedule_time = t.clone();
                    }
                    if let Some(n) = cmd.fatigue_max_messages {
                        x.fatigue_max_messages = n;
                    }
                    if let Some(n) = cmd.fatigue_window_days {
                        x.fatigue_window_days = n;
                    }
                    if let Some(n) = cmd.review_execution_threshold_percent {
                        x.review_execution_threshold_percent = n;
                    }
                    Ok(())
                },
                async |tx, current, next| store::tenants::update(tx.conn(), tx.tenant(), current, next).await,
            )
            .await
    }
}
