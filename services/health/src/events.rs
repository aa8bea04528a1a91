//! What the health service consumes: Accounts' events kept as a small local
//! projection (never Accounts' database): account attributes for scorecard
//! scopes and days to renewal, tenant time zones for day buckets, e-mails
//! sent and replied for the response-rate measure.

use async_trait::async_trait;
use banso_events::{Envelope, Handler, HandlerError, Payload, inbox};
use banso_proto::accounts as apb;
use sea_orm::TransactionTrait;
use uuid::Uuid;

use crate::{
    scorer::Scorer,
    store::{AccountRow, Store},
};

/// The durable consumer name of the health service.
pub const CONSUMER: &str = "health";

pub struct AccountsProjection {
    pub store: Store,
    pub scorer: Scorer,
}

fn rejected(what: String) -> HandlerError {
    HandlerError::Rejected(anyhow::anyhow!(what))
}

fn row(a: &apb::Account) -> Result<AccountRow, HandlerError> {
    let account_id = Uuid::parse_str(&a.id).map_err(|_| rejected(format!("account id {:?} is not a UUID", a.id)))?;
    let stage = match apb::LifecycleStage::try_from(a.lifecycle_stage) {
        Ok(apb::LifecycleStage::Onboarding) => "onboarding",
        Ok(apb::LifecycleStage::Adoption) => "adoption",
        Ok(apb::LifecycleStage::Expansion) => "expansion",
        Ok(apb::LifecycleStage::Renewal) => "renewal",
        Ok(apb::LifecycleStage::Churned) => "churned",
        _ => return Err(rejected(format!("account {account_id} has no lifecycle stage"))),
    };
    let touch = match apb::TouchModel::try_from(a.touch_model) {
        Ok(apb::TouchModel::High) => "high",
        Ok(apb::TouchModel::Low) => "low",
        Ok(apb::TouchModel::Tech) => "tech",
        _ => return Err(rejected(format!("account {account_id} has no touch model"))),
    };
    Ok(AccountRow {
        account_id,
        external_id: (!a.external_id.is_empty()).then(|| a.external_id.clone()),
        lifecycle_stage: stage.into(),
        touch_model: touch.into(),
        arr_currency: a.arr.as_ref().map(|m| m.currency_code.clone()),
        arr_amount_minor: a.arr.as_ref().map(|m| m.amount_minor),
        renewal_date: a
            .renewal_date
            .as_ref()
            .and_then(|d| chrono::NaiveDate::from_ymd_opt(d.year, d.month as u32, d.day as u32)),
    })
}

#[async_trait]
impl Handler for AccountsProjection {
    async fn handle(&self, env: &Envelope) -> Result<(), HandlerError> {
        let tenant = env.tenant_id.as_str();
        let mut rescore: Option<Uuid> = None;
        let mut rescore_tenant = false;
        let txn = self.store.db().begin().await?;
        if !inbox::claim(&txn, CONSUMER, env).await? {
            // Seen before: its effect is already committed.
            txn.commit().await?;
            return Ok(());
        }
        match &env.payload {
            Some(Payload::AccountCreated(e)) => {
                if let Some(a) = &e.account {
                    let r = row(a)?;
                    rescore = Some(r.account_id);
                    self.store.upsert_account(&txn, tenant, &r).await?;
                }
            }
            Some(Payload::AccountUpdated(e)) => {
                if let Some(a) = &e.account {
                    let r = row(a)?;
                    rescore = Some(r.account_id);
                    self.store.upsert_account(&txn, tenant, &r).await?;
                }
            }
            Some(Payload::ContractChanged(e)) => {
                if let Some(a) = &e.account {
                    let r = row(a)?;
                    rescore = Some(r.account_id);
                    self.store.upsert_account(&txn, tenant, &r).await?;
                }
            }
            Some(Payload::AccountDeleted(e)) => {
                let id = Uuid::parse_str(&e.account_id)
                    .map_err(|_| rejected(format!("account id {:?} is not a UUID", e.account_id)))?;
                self.store.delete_account(&txn, tenant, id).await?;
            }
            Some(Payload::ActivityLogged(e)) => {
                if let Some(a) = &e.activity {
                    let replied = match apb::ActivityKind::try_from(a.kind) {
                        Ok(apb::ActivityKind::EmailSent) => Some(false),
                        Ok(apb::ActivityKind::EmailReplied) => Some(true),
                        _ => None,
                    };
                    if let (Some(replied), Ok(id), Ok(account), Some(t)) = (
                        replied,
                        Uuid::parse_str(&a.id),
                        Uuid::parse_str(&a.account_id),
                        a.occur_time.as_ref().and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32)),
                    ) {
                        self.store.record_email(&txn, tenant, id, account, replied, t).await?;
                        rescore = Some(account);
                    }
                }
            }
            Some(Payload::TenantSettingsChanged(e)) => {
                if let Some(s) = &e.settings {
                    self.store.set_time_zone(&txn, tenant, &s.time_zone).await?;
                    rescore_tenant = true;
                }
            }
            _ => {}
        }
        txn.commit().await?;
        // Attributes, contract state, e-mail replies and day cuts feed scores.
        if let Some(id) = rescore {
            self.scorer.account(tenant, id);
        }
        if rescore_tenant {
            self.scorer.tenant(tenant);
        }
        Ok(())
    }
}
