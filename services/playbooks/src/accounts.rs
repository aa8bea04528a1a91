//! The account-change worker: applies the update_account actions firings
//! queued, through Accounts' gRPC API — never its database — with a
//! service token for the tenant the firing belongs to.
//!
//! Each change reads the account, works out what would differ (a stage the
//! account is already in, tags it already has, attributes already set are
//! no change), and writes only that, with the etag it read: a concurrent
//! edit makes it read again rather than overwrite. Accounts refusing the
//! change (the account was deleted, a value it will not take) fails it at
//! once; an unreachable Accounts is retried with exponential backoff and
//! full jitter, as webhooks are, and fails after the last attempt. The
//! result is written into the firing's action outcome.
//!
//! The change comes back as AccountUpdated with `updated_by`
//! `service:playbooks`; such events are projected but trigger nothing
//! (`events.rs`), so playbooks cannot loop through the accounts they edit.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use banso_events::Db;
use banso_kit::{auth::ServiceTokens, config::Config, supervise::Supervisor, wire};
use banso_proto::{accounts as apb, types as tpb};
use tonic::{Code, transport::Channel};
use uuid::Uuid;

use crate::{
    domain::{LifecycleStage, outreach as backoff, playbook::ChangeStatus},
    store::{
        account_changes::{self as store, AccountChange, Attempted},
        firings,
    },
};

/// How long a claimed change stays with its replica: well past the call
/// timeouts, so a slow attempt is never made twice at once.
const LEASE: chrono::Duration = chrono::Duration::seconds(60);

/// Changes one claim takes, applied concurrently.
const BATCH: u64 = 16;

/// How long one call to Accounts may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads of the account one attempt makes when its etag keeps changing.
const ETAG_RETRIES: usize = 3;

/// How the worker reaches Accounts and how hard it tries.
#[derive(Debug, Clone)]
pub(crate) struct AccountsSettings {
    /// `BANSO_ACCOUNTS_URL`; unset: this process's own gRPC server.
    pub url: Option<String>,
    pub max_attempts: u32,
    pub base_delay: Duration,
}

impl AccountsSettings {
    /// `BANSO_ACCOUNTS_URL` (e.g. `http://banso-accounts:50051`; unset:
    /// Accounts in the same process, as in `banso up`),
    /// `BANSO_PLAYBOOKS_ACCOUNT_UPDATE_MAX_ATTEMPTS` (default 8; 1 to 50),
    /// `BANSO_PLAYBOOKS_ACCOUNT_UPDATE_BASE_DELAY_MS` (default 2000; 1 to 3,600,000).
    pub(crate) fn from_config(cfg: &Config) -> anyhow::Result<Self> {
        let v = cfg.vars();
        let url = v.get("BANSO_ACCOUNTS_URL").map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned);
        if let Some(u) = &url {
            tonic::transport::Endpoint::from_shared(u.clone())
                .map_err(|e| anyhow::anyhow!("BANSO_ACCOUNTS_URL {u:?} is not a URL: {e}"))?;
        }
        Ok(AccountsSettings {
            url,
            max_attempts: v.number("BANSO_PLAYBOOKS_ACCOUNT_UPDATE_MAX_ATTEMPTS", 8u32, 1, 50)?,
            base_delay: Duration::from_millis(v.number(
                "BANSO_PLAYBOOKS_ACCOUNT_UPDATE_BASE_DELAY_MS",
                2000u64,
                1,
                3_600_000,
            )?),
        })
    }
}

/// A client of Accounts' API acting for any tenant.
#[derive(Clone)]
pub(crate) struct Accounts {
    tokens: Option<ServiceTokens>,
    url: Option<String>,
    local: Arc<OnceLock<SocketAddr>>,
    channel: Arc<OnceLock<Channel>>,
}

impl Accounts {
    pub(crate) fn new(tokens: Option<ServiceTokens>, url: Option<String>, local: Arc<OnceLock<SocketAddr>>) -> Self {
        Accounts { tokens, url, local, channel: Default::default() }
    }

    /// The channel, made on first use: the process's own address is known
    /// only once its server listens, after the services are built.
    fn channel(&self) -> Result<Channel, Failure> {
        if let Some(c) = self.channel.get() {
            return Ok(c.clone());
        }
        let url = match (&self.url, self.local.get()) {
            (Some(u), _) => u.clone(),
            (None, Some(addr)) => format!("http://{addr}"),
            (None, None) => return Err(Failure::retry("this process does not serve gRPC yet")),
        };
        let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
            .map_err(|e| Failure::permanent(format!("BANSO_ACCOUNTS_URL {url:?} is not a URL: {e}")))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(CALL_TIMEOUT)
            .tcp_nodelay(true);
        Ok(self.channel.get_or_init(|| endpoint.connect_lazy()).clone())
    }

    fn request<T>(&self, tenant: &str, message: T) -> Result<tonic::Request<T>, Failure> {
        let tokens = self.tokens.as_ref().ok_or_else(|| {
            Failure::permanent(
                "BANSO_SERVICE_TOKEN_SECRET is not set on the playbooks service: it cannot call Accounts",
            )
        })?;
        let mut req = tonic::Request::new(message);
        let bearer = format!("Bearer {}", tokens.token(tenant));
        let value = bearer.parse().map_err(|_| Failure::permanent("the service token is not a header value"))?;
        req.metadata_mut().insert("authorization", value);
        Ok(req)
    }

    /// Applies one change; the detail of what it did.
    async fn apply(&self, tenant: &str, c: &AccountChange) -> Result<String, Failure> {
        let mut client = apb::accounts_service_client::AccountsServiceClient::new(self.channel()?);
        let id = c.account_id.to_string();
        for _ in 0..ETAG_RETRIES {
            let account = client.get_account(self.request(tenant, apb::GetAccountRequest { id: id.clone() })?).await;
            let account = account.map_err(|s| Failure::of(&s, c.account_id, self.url.as_deref()))?.into_inner();
            let Some((patch, mask)) = patch(c, &account)? else {
                return Ok(format!("the account already was so ({})", c.change.describe()));
            };
            let req = apb::UpdateAccountRequest {
                account: Some(patch),
                update_mask: Some(pbjson_types::FieldMask { paths: mask }),
            };
            match client.update_account(self.request(tenant, req)?).await {
                Ok(_) => return Ok(format!("applied: {}", c.change.describe())),
                // Changed since read: read it again.
                Err(s) if matches!(s.code(), Code::Aborted | Code::FailedPrecondition) => continue,
                Err(s) => return Err(Failure::of(&s, c.account_id, self.url.as_deref())),
            }
        }
        Err(Failure::retry(format!("account {id} kept changing while it was being updated")))
    }
}

/// The account fields the change sets, with the etag read, and their mask;
/// `None` when the account already is as the change would make it.
fn patch(c: &AccountChange, a: &apb::Account) -> Result<Option<(apb::Account, Vec<String>)>, Failure> {
    let mut out = apb::Account { id: a.id.clone(), etag: a.etag.clone(), ..Default::default() };
    let mut mask = Vec::new();
    let current = LifecycleStage::from_proto(a.lifecycle_stage)
        .ok_or_else(|| Failure::permanent(format!("account {} has no lifecycle stage Banso knows", a.id)))?;
    if let Some(stage) = c.change.stage_after(current) {
        out.lifecycle_stage = stage.to_proto() as i32;
        mask.push("lifecycle_stage".to_string());
    }
    if let Some(tags) = c.change.tags_after(&a.tags) {
        out.tags = tags;
        mask.push("tags".to_string());
    }
    let mut attributes = a.custom_attributes.clone();
    let mut changed = false;
    for (name, json) in &c.change.set_attributes {
        let value: tpb::AttributeValue = serde_json::from_value(json.clone())
            .map_err(|e| Failure::permanent(format!("stored attribute {name} does not read: {e}")))?;
        if attributes.get(name) != Some(&value) {
            attributes.insert(name.clone(), value);
            changed = true;
        }
    }
    if changed {
        out.custom_attributes = attributes;
        mask.push("custom_attributes".to_string());
    }
    Ok((!mask.is_empty()).then_some((out, mask)))
}

/// Why an attempt did not apply the change, and whether another may.
#[derive(Debug)]
struct Failure {
    retry: bool,
    message: String,
}

impl Failure {
    fn retry(message: impl Into<String>) -> Self {
        Failure { retry: true, message: message.into() }
    }

    fn permanent(message: impl Into<String>) -> Self {
        Failure { retry: false, message: message.into() }
    }

    /// Accounts' answer: a refusal of this change fails it; anything that
    /// may pass (Accounts down, overloaded, a key being rotated) is retried.
    fn of(s: &tonic::Status, account: Uuid, url: Option<&str>) -> Self {
        let said = s.message();
        match s.code() {
            Code::NotFound => Failure::permanent(format!("account {account} no longer exists in Accounts")),
            Code::InvalidArgument | Code::OutOfRange => {
                Failure::permanent(format!("Accounts refused the change: {said}"))
            }
            Code::Unimplemented => Failure::permanent(format!(
                "Accounts is not served at {}: set BANSO_ACCOUNTS_URL",
                url.unwrap_or("this process's address")
            )),
            code => Failure::retry(format!("Accounts answered {code:?}: {said}")),
        }
    }
}

/// Runs the worker under the supervisor.
pub(crate) fn supervise(
    supervisor: &Supervisor,
    service: &'static str,
    db: Db,
    signal: crate::outreach::Signal,
    accounts: Accounts,
    settings: AccountsSettings,
) {
    signal.drive(supervisor, service, "playbooks-account-changes", move |replica| {
        let (db, accounts, settings) = (db.clone(), accounts.clone(), settings.clone());
        async move { round(&db, &accounts, &settings, &replica).await }
    });
}

/// Applies every due change, a claimed batch at a time.
async fn round(db: &Db, accounts: &Accounts, settings: &AccountsSettings, replica: &str) -> banso_kit::Result<()> {
    loop {
        let owner = format!("{replica}-{}", Uuid::now_v7().simple());
        let now = wire::now();
        let claimed = store::claim_due(db.conn(), &owner, now, now + LEASE, BATCH).await?;
        let n = claimed.len() as u64;
        let work = claimed.into_iter().map(|(tenant, c)| {
            let owner = owner.clone();
            async move {
                if let Err(e) = attempt(db, accounts, settings, &tenant, c, &owner).await {
                    tracing::warn!(tenant, error = %e, "an account change failed to record");
                }
            }
        });
        futures::future::join_all(work).await;
        if n < BATCH {
            return Ok(());
        }
    }
}

/// One attempt of one claimed change, recorded with its outcome.
async fn attempt(
    db: &Db,
    accounts: &Accounts,
    settings: &AccountsSettings,
    tenant: &str,
    c: AccountChange,
    owner: &str,
) -> banso_kit::Result<()> {
    let outcome = accounts.apply(tenant, &c).await;
    let number = c.attempts + 1;
    let now = wire::now();
    let (status, next, detail) = match outcome {
        Ok(detail) => (ChangeStatus::Applied, None, detail),
        Err(f) if !f.retry => (ChangeStatus::Failed, None, f.message),
        Err(f) if number as u32 >= settings.max_attempts => {
            (ChangeStatus::Failed, None, format!("gave up after {number} attempts: {}", f.message))
        }
        Err(f) => {
            let wait = backoff::backoff(settings.base_delay, backoff::MAX_DELAY, number as u32, rand::random::<f64>());
            let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
            (ChangeStatus::Pending, Some(now + wait), format!("attempt {number} failed: {}", f.message))
        }
    };
    metrics::counter!("banso_playbooks_account_changes_total", "outcome" => status.as_str()).increment(1);
    let r = Attempted { status, attempts: number, next_attempt_time: next, detail: &detail };
    db.write(tenant, async |tx| {
        // Written only while the lease is ours: a replica that took over an
        // expired lease records its own attempt instead.
        if store::finish(tx.conn(), tx.tenant(), c.id, owner, &r, now).await? && status != ChangeStatus::Pending {
            let action = if status == ChangeStatus::Applied { "done" } else { "failed" };
            firings::set_action(tx.conn(), tx.tenant(), c.firing_id, c.action_index, action, &detail).await?;
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::playbook::UpdateAccount;

    fn change(u: UpdateAccount) -> AccountChange {
        AccountChange {
            id: Uuid::now_v7(),
            firing_id: Uuid::now_v7(),
            action_index: 0,
            playbook_id: Uuid::now_v7(),
            account_id: Uuid::now_v7(),
            change: u,
            status: ChangeStatus::Pending,
            attempts: 0,
            detail: String::new(),
            create_time: wire::now(),
        }
    }

    fn text(s: &str) -> tpb::AttributeValue {
        tpb::AttributeValue { kind: Some(tpb::attribute_value::Kind::StringValue(s.into())) }
    }

    #[test]
    fn only_what_differs_is_written_with_the_etag_read() {
        let account = apb::Account {
            id: "a1".into(),
            etag: "7".into(),
            lifecycle_stage: tpb::LifecycleStage::Renewal as i32,
            tags: vec!["vip".into()],
            custom_attributes: [("seats".to_string(), text("10")), ("plan".to_string(), text("gold"))].into(),
            ..Default::default()
        };
        let u = UpdateAccount {
            lifecycle_stage: Some(LifecycleStage::Renewal),
            add_tags: vec!["vip".into()],
            remove_tags: vec![],
            set_attributes: BTreeMap::from([("plan".to_string(), serde_json::to_value(text("gold")).unwrap())]),
        };
        assert!(patch(&change(u.clone()), &account).unwrap().is_none(), "already so");

        let u = UpdateAccount {
            set_attributes: BTreeMap::from([("plan".to_string(), serde_json::to_value(text("platinum")).unwrap())]),
            add_tags: vec![],
            remove_tags: vec!["vip".into()],
            ..u
        };
        let (p, mask) = patch(&change(u), &account).unwrap().unwrap();
        assert_eq!(mask, vec!["tags".to_string(), "custom_attributes".to_string()]);
        assert_eq!(p.etag, "7");
        assert!(p.tags.is_empty());
        assert_eq!(p.custom_attributes.get("seats"), Some(&text("10")), "the others kept");
        assert_eq!(p.custom_attributes.get("plan"), Some(&text("platinum")));
    }

    #[test]
    fn refusals_fail_at_once_and_outages_are_retried() {
        let id = Uuid::now_v7();
        for (code, retry) in [
            (Code::NotFound, false),
            (Code::InvalidArgument, false),
            (Code::Unimplemented, false),
            (Code::Unavailable, true),
            (Code::DeadlineExceeded, true),
            (Code::Unauthenticated, true),
            (Code::Internal, true),
        ] {
            assert_eq!(Failure::of(&tonic::Status::new(code, "x"), id, None).retry, retry, "{code:?}");
        }
        let f = Failure::of(&tonic::Status::not_found("gone"), id, None);
        assert_eq!(f.message, format!("account {id} no longer exists in Accounts"));
    }
}
