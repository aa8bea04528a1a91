//! Accounts: read and list; create once per request_id; update and delete
//! by version; upsert by external_id.

use banso_events::{
    Tx,
    db::{RequestKey, WRITE_ATTEMPTS, backoff},
};
use banso_kit::{Error, Result, auth::Caller, error::FieldViolation, fieldmask::FieldPath as _, shown, wire};
use std::sync::Arc;

use uuid::Uuid;

use super::{App, external_id_taken, remembered};
use crate::{
    domain::{
        Account, AccountCursor, AccountField, AccountFields, AccountFilter, AccountOrder, MixChange,
        touch_rules::MixPolicy,
    },
    events, store,
};

const OP_CREATE_ACCOUNT: &str = "CreateAccount";

/// CreateAccount: a complete account whose fields agree.
pub(crate) struct CreateAccount {
    pub request_id: Option<String>,
    pub fields: AccountFields,
}

/// UpdateAccount: the fields of `mask` set from `fields`.
pub(crate) struct UpdateAccount {
    pub id: Uuid,
    pub etag: Option<i64>,
    pub mask: Vec<AccountField>,
    pub fields: AccountFields,
    /// Hand the mix back to the touch-mix rules (they apply at once).
    pub clear_manual_touch_mix: bool,
}

/// UpsertAccount: the fields of `mask` (external_id among them) set on the
/// account with `fields.external_id`, or, when there is none, the whole
/// account created — if the request holds a whole one.
pub(crate) struct UpsertAccount {
    pub mask: Vec<AccountField>,
    pub fields: AccountFields,
    /// The account to create, or why the request does not describe one.
    pub create: std::result::Result<AccountFields, Vec<FieldViolation>>,
}

impl App {
    /// An account's touch-mix changes, newest first (NOT_FOUND for an
    /// account that does not exist).
    pub(crate) async fn list_touch_mix_history(
        &self,
        caller: &Caller,
        account_id: Uuid,
        after: Option<(chrono::DateTime<chrono::Utc>, Uuid)>,
        limit: u64,
    ) -> Result<Vec<MixChange>> {
        store::accounts::must_exist(self.db.conn(), &caller.tenant_id, account_id).await?;
        store::touch_mix::list(self.db.conn(), &caller.tenant_id, account_id, after, limit).await
    }

    pub(crate) async fn get_account(&self, caller: &Caller, id: Uuid) -> Result<Account> {
        store::accounts::get(self.db.conn(), &caller.tenant_id, id).await
    }

    pub(crate) async fn batch_get_accounts(&self, caller: &Caller, ids: &[Uuid]) -> Result<Vec<Account>> {
        store::accounts::batch_get(self.db.conn(), &caller.tenant_id, ids).await
    }

    pub(crate) async fn list_accounts(
        &self,
        caller: &Caller,
        filter: &AccountFilter,
        order: AccountOrder,
        after: Option<&AccountCursor>,
        limit: u64,
    ) -> Result<Vec<Account>> {
        store::accounts::list(self.db.conn(), &caller.tenant_id, filter, order, after, limit).await
    }

    pub(crate) async fn create_account(&self, caller: &Caller, cmd: CreateAccount) -> Result<Account> {
        let CreateAccount { request_id, fields } = cmd;
        let key = request_id.as_deref().map(|request_id| RequestKey { operation: OP_CREATE_ACCOUNT, request_id });
        let s = self.scope(&caller.tenant_id);
        let by = caller.subject.clone();
        let policy = self.mix_policy(&caller.tenant_id).await?;
        self.db
            .create_once(
                &caller.tenant_id,
                key,
                async move |id| store::accounts::get(&s.conn, &s.tenant, remembered(id)?).await,
                async move |tx| insert_account(tx, fields, &by, &policy).await,
            )
            .await
    }

    pub(crate) async fn update_account(&self, caller: &Caller, cmd: UpdateAccount) -> Result<Account> {
        self.change_account(&caller.tenant_id, cmd.id, cmd.etag, &caller.subject, |f| {
            f.apply(&cmd.fields, &cmd.mask);
            if cmd.clear_manual_touch_mix {
                f.touch_mix_manual = false;
            }
            consistent(f)
        })
        .await
    }

    pub(crate) async fn delete_account(&self, caller: &Caller, id: Uuid, etag: Option<i64>) -> Result<()> {
        let s = self.scope(&caller.tenant_id);
        self.db
            .delete_versioned(
                &caller.tenant_id,
                &format!("account {id}"),
                etag,
                async move || store::accounts::get(&s.conn, &s.tenant, id).await,
                async |tx, current| {
                    if !store::accounts::delete(tx.conn(), tx.tenant(), current).await? {
                        return Ok(false);
                    }
                    tx.emit(events::account_deleted(current)).await?;
                    Ok(true)
                },
            )
            .await
            .map(drop)
    }

    /// Returns the account and whether it was created.
    pub(crate) async fn upsert_account(&self, caller: &Caller, cmd: UpsertAccount) -> Result<(Account, bool)> {
        self.upsert(&caller.tenant_id, &cmd, &caller.subject).await
    }

    pub(super) async fn upsert(&self, tenant: &str, cmd: &UpsertAccount, by: &str) -> Result<(Account, bool)> {
        let external_id = cmd.fields.external_id.clone().unwrap_or_default();
        // Each round trip may find the account gone (deleted between the
        // lookup and the update) or taken (created by a concurrent upsert).
        for attempt in 0..WRITE_ATTEMPTS {
            backoff(attempt).await;
            if let Some(existing) = store::accounts::find_by_external_id(self.db.conn(), tenant, &external_id).await? {
                let updated = self
                    .change_account(tenant, existing.id, None, by, |f| {
                        f.apply(&cmd.fields, &cmd.mask);
                        consistent(f)
                    })
                    .await;
                match updated {
                    Err(Error::NotFound { .. }) => continue,
                    other => return other.map(|a| (a, false)),
                }
            }
            let fields = cmd.create.clone().map_err(Error::InvalidArgument)?;
            let s = self.scope(tenant);
            let by = by.to_owned();
            let policy = self.mix_policy(tenant).await?;
            let created = self
                .db
                .create_once(
                    tenant,
                    None,
                    async move |id| store::accounts::get(&s.conn, &s.tenant, remembered(id)?).await,
                    async move |tx| insert_account(tx, fields, &by, &policy).await,
                )
                .await;
            match created {
                Err(Error::AlreadyExists(_)) => continue,
                other => return other.map(|a| (a, true)),
            }
        }
        Err(Error::Aborted {
            reason: "CONCURRENT_UPDATE",
            message: format!("account with external_id {} is being changed concurrently; retry", shown(&external_id)),
        })
    }

    /// The one way an account's fields change: read it, let `change` edit
    /// them (or refuse), apply the touch-mix rules, write the next version
    /// with its AccountUpdated.
    pub(super) async fn change_account(
        &self,
        tenant: &str,
        id: Uuid,
        etag: Option<i64>,
        by: &str,
        change: impl Fn(&mut AccountFields) -> Result<()>,
    ) -> Result<Account> {
        let policy = self.mix_policy(tenant).await?;
        self.change_with(tenant, id, etag, by, policy, change).await
    }

    /// [`App::change_account`] under a policy already read.
    pub(super) async fn change_with(
        &self,
        tenant: &str,
        id: Uuid,
        etag: Option<i64>,
        by: &str,
        policy: Arc<MixPolicy>,
        change: impl Fn(&mut AccountFields) -> Result<()>,
    ) -> Result<Account> {
        let s = self.scope(tenant);
        let by = by.to_owned();
        let rules = policy.clone();
        self.db
            .update_versioned(
                tenant,
                &format!("account {id}"),
                etag,
                async move || store::accounts::get(&s.conn, &s.tenant, id).await,
                |a| {
                    change(&mut a.fields)?;
                    rules.apply(&mut a.fields);
                    Ok(())
                },
                async move |tx, current, next| {
                    let written = store::accounts::update(tx.conn(), tx.tenant(), current, next)
                        .await
                        .map_err(|e| external_id_taken(e, "account", next.fields.external_id.as_deref()))?;
                    if written && next.fields.touch_mix != current.fields.touch_mix {
                        // Not set by hand, the mix changed: the rule set it.
                        let change = match policy.rule_for(&next.fields) {
                            Some((rule, _)) if !next.fields.touch_mix_manual => MixChange::rule(next, rule),
                            _ => MixChange::manual(next, &by),
                        };
                        store::touch_mix::record(tx.conn(), tx.tenant(), &[change]).await?;
                    }
                    if written {
                        tx.emit(events::account_updated(next, &next.fields.changed_fields(&current.fields), &by))
                            .await?;
                    }
                    Ok(written)
                },
            )
            .await
    }
}

/// Inserts a new account with its AccountCreated; its mix, set by `by` or
/// by the first touch-mix rule that holds, starts its history.
async fn insert_account(tx: &Tx, mut fields: AccountFields, by: &str, policy: &MixPolicy) -> Result<Account> {
    let rule = policy.apply(&mut fields);
    let t = wire::now();
    let account = Account { id: Uuid::now_v7(), fields, create_time: t, update_time: t, version: 1 };
    store::accounts::insert(tx.conn(), tx.tenant(), &account)
        .await
        .map_err(|e| external_id_taken(e, "account", account.fields.external_id.as_deref()))?;
    let change = match rule {
        Some(rule) => MixChange::rule(&account, &rule),
        None => MixChange::manual(&account, by),
    };
    store::touch_mix::record(tx.conn(), tx.tenant(), &[change]).await?;
    tx.emit(events::account_created(&account)).await?;
    Ok(account)
}

/// INVALID_ARGUMENT unless the account's fields agree with each other
/// (checked on the account as it will be stored).
fn consistent(f: &AccountFields) -> Result<()> {
    match f.inconsistency() {
        Some((field, why)) => Err(Error::invalid(format!("account.{}", field.name()), why)),
        None => Ok(()),
    }
}
