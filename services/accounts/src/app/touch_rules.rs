//! Touch-mix rules: read; replace by version, then re-apply to every
//! account they govern (each change its own transaction, with its history
//! row and AccountUpdated, as any account write).
//!
//! The call re-applies for up to [`REQUEST_BUDGET`]; what it leaves (a large
//! tenant), or what a crash cut short, the background pass finishes
//! ([`App::finish_reapplying`]): the rules row keeps the version last
//! applied to every account, so unfinished work survives a restart.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use banso_kit::{Error, Result, auth::Caller};
use chrono::Utc;

use super::App;
use crate::{
    domain::{
        AccountCursor, AccountFilter, AccountOrder, AccountSort, SortKey, retention,
        touch_rules::{MixPolicy, TouchMixRule, TouchMixRules},
    },
    store,
};

/// Accounts read a page while re-applying rules.
const REAPPLY_PAGE: u64 = 500;

/// How long UpdateTouchMixRules re-applies before it leaves the rest to the
/// background pass: well within the request deadline.
pub(crate) const REQUEST_BUDGET: Duration = Duration::from_secs(5);

/// What a rule list would do: per rule (name, accounts governed, accounts
/// changed), accounts evaluated, accounts held by hand.
pub(crate) struct RulesPreview {
    pub rules: Vec<(String, i64, i64)>,
    pub evaluated: i64,
    pub held: i64,
}

/// Who the background pass writes accounts as (the history's setter is
/// the rule's name either way).
const REAPPLIER: &str = "touch-mix-rules";

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
        let (changed, _) = self.reapply_rules(&caller.tenant_id, &caller.subject, Some(self.reapply_budget)).await?;
        Ok((rules, changed))
    }

    /// What `rules` would do to the tenant's accounts now, writing nothing:
    /// per rule (in order) the accounts it governs and those it would change;
    /// the accounts looked at, and those held by hand.
    pub(crate) async fn preview_touch_mix_rules(
        &self,
        caller: &Caller,
        rules: Vec<TouchMixRule>,
    ) -> Result<RulesPreview> {
        let tenant = &caller.tenant_id;
        let policy = self.policy_with(tenant, &rules).await?;
        let mut out =
            RulesPreview { rules: policy.names().map(|n| (n.to_owned(), 0, 0)).collect(), evaluated: 0, held: 0 };
        let order = AccountOrder { sort: AccountSort::CreateTime, desc: false };
        let mut after: Option<AccountCursor> = None;
        loop {
            let batch = store::accounts::list(
                self.db.conn(),
                tenant,
                &AccountFilter::default(),
                order,
                after.as_ref(),
                REAPPLY_PAGE,
            )
            .await?;
            let Some(last) = batch.last() else { return Ok(out) };
            after = Some(AccountCursor { key: SortKey::Id, id: last.id });
            for a in &batch {
                out.evaluated += 1;
                if a.fields.touch_mix_manual {
                    out.held += 1;
                    continue;
                }
                if let Some((name, mix)) = policy.rule_for(&a.fields)
                    && let Some(row) = out.rules.iter_mut().find(|r| r.0 == name)
                {
                    row.1 += 1;
                    if mix != a.fields.touch_mix {
                        row.2 += 1;
                    }
                }
            }
        }
    }

    /// Sets the rules' mix on each governed account it changes, a page at a
    /// time, for up to `budget`; returns how many changed and whether it
    /// went through every account (then the rules are marked applied).
    async fn reapply_rules(&self, tenant: &str, by: &str, budget: Option<Duration>) -> Result<(u64, bool)> {
        let started = Instant::now();
        // The version marked applied is the one these rules are.
        let rules = store::touch_mix_rules::get(self.db.conn(), tenant).await?;
        let policy = self.policy_with(tenant, &rules.rules).await?;
        let version = rules.version;
        let mut changed = 0;
        let mut after = None;
        while !policy.is_empty() {
            if budget.is_some_and(|b| started.elapsed() >= b) {
                return Ok((changed, false));
            }
            let batch = store::accounts::ruled_after(self.db.conn(), tenant, after, REAPPLY_PAGE).await?;
            let Some(last) = batch.last() else { break };
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
        // Rules changed since `version` was read leave the row behind, for
        // the next pass.
        store::touch_mix_rules::mark_applied(self.db.conn(), tenant, version).await?;
        Ok((changed, true))
    }

    /// Re-applies the rules of every tenant whose last re-apply did not
    /// finish; returns how many accounts changed.
    pub(crate) async fn finish_reapplying(&self) -> Result<u64> {
        let mut changed = 0;
        for tenant in store::touch_mix_rules::behind(self.db.conn(), 100).await? {
            changed += self.reapply_rules(&tenant, REAPPLIER, None).await?.0;
        }
        Ok(changed)
    }

    /// What the tenant's rules do to an account written now: the rules,
    /// the segments forbidding patterns, today in the tenant's zone.
    pub(super) async fn mix_policy(&self, tenant: &str) -> Result<Arc<MixPolicy>> {
        let rules = store::touch_mix_rules::get(self.db.conn(), tenant).await?;
        self.policy_with(tenant, &rules.rules).await
    }

    /// The policy of `rules` in the tenant (its segments, its today).
    async fn policy_with(&self, tenant: &str, rules: &[TouchMixRule]) -> Result<Arc<MixPolicy>> {
        let now = Utc::now();
        // No rule (most tenants, most writes): nothing more to read.
        if rules.is_empty() {
            return Ok(Arc::new(MixPolicy::new(rules, &[], now.date_naive(), now)));
        }
        let conn = self.db.conn();
        let settings = store::settings::get(conn, tenant).await?;
        let today = retention::today_in(settings.tz(), now);
        let mut forbidding = Vec::new();
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
        Ok(Arc::new(MixPolicy::new(rules, &forbidding, today, now)))
    }
}
