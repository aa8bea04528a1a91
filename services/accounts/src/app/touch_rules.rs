//! Touch-mix rules: read; replace by version, then re-apply to every
//! account they govern (each change its own transaction, with its history
//! row and AccountUpdated, as any account write).

use std::sync::Arc;

use banso_kit::{Error, Result, auth::Caller};
use chrono::Utc;

use super::App;
use crate::{
    domain::{
        retention,
        touch_rules::{MixPolicy, TouchMixRule, TouchMixRules},
    },
    store,
};

/// Accounts read a page while re-applying rules.
const REAPPLY_PAGE: u64 = 500;

/// UpdateTouchMixRules: the whole list, each rule valid.
pub(crate) struct UpdateTouchMixRules {
    pub etag: Option<i64>,
    pub rules: Vec<TouchMixRule>,
}

impl App {
    pub(crate) async fn get_touch_mix_rules(&self, caller: &Caller) -> Result<TouchMixRules> {
        store::touch_mix_rules::get(self.db.conn(), &caller.tenant_id).await
    }

    /// Replaces the rules, then sets the mix of every account they govern
    /// (not set by hand) whose mix they change. Returns the rules and how
    /// many accounts changed.
    pub(crate) async fn update_touch_mix_rules(
        &self,
        caller: &Caller,
        cmd: UpdateTouchMixRules,
    ) -> Result<(TouchMixRules, u64)> {
        let s = self.scope(&caller.tenant_id);
        let rules = self
            .db
            .update_versioned(
                &caller.tenant_id,
                "touch mix rules",
                cmd.etag,
                async move || store::touch_mix_rules::get(&s.conn, &s.tenant).await,
                |r| {
                    r.rules = cmd.rules.clone();
                    Ok(())
                },
                async |tx, current, next| store::touch_mix_rules::write(tx.conn(), tx.tenant(), current, next).await,
            )
            .await?;
        let changed = self.reapply_rules(&caller.tenant_id, &caller.subject).await?;
        Ok((rules, changed))
    }

    /// Sets the rules' mix on each governed account it changes, a page at a
    /// time; returns how many changed.
    async fn reapply_rules(&self, tenant: &str, by: &str) -> Result<u64> {
        let policy = self.mix_policy(tenant).await?;
        if policy.is_empty() {
            return Ok(0);
        }
        let mut changed = 0;
        let mut after = None;
        loop {
            let batch = store::accounts::ruled_after(self.db.conn(), tenant, after, REAPPLY_PAGE).await?;
            let Some(last) = batch.last() else { return Ok(changed) };
            after = Some(last.id);
            for a in batch {
                let mut f = a.fields.clone();
                if policy.apply(&mut f).is_none() {
                    continue;
                }
                // Changed or deleted meanwhile: that write applied the rules.
                match self.change_with(tenant, a.id, None, by, policy.clone(), |_| Ok(())).await {
                    Ok(_) => changed += 1,
                    Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// What the tenant's rules do to an account written now: the rules,
    /// the segments forbidding patterns, today in the tenant's zone.
    pub(super) async fn mix_policy(&self, tenant: &str) -> Result<Arc<MixPolicy>> {
        let conn = self.db.conn();
        let rules = store::touch_mix_rules::get(conn, tenant).await?;
        let now = Utc::now();
        let settings = store::settings::get(conn, tenant).await?;
        let today = retention::today_in(settings.tz(), now);
        let mut forbidding = Vec::new();
        if !rules.rules.is_empty() {
            let mut after = None;
            loop {
                let batch = store::segments::list(conn, tenant, after, 1000).await?;
                let Some(last) = batch.last() else { break };
                after = Some(last.id);
                forbidding.extend(
                    batch
                        .into_iter()
                        .filter(|s| !s.fields.forbidden_touch_models.is_empty())
                        .map(|s| (s.fields.expression, s.fields.forbidden_touch_models)),
                );
            }
        }
        Ok(Arc::new(MixPolicy::new(&rules.rules, &forbidding, today, now)))
    }
}
