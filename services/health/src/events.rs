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
    domain::account::{AccountRow, Attr},
    recompute::{Recompute, trigger},
    scorer::Scorer,
    store::Store,
};

/// The durable consumer name of the health service.
pub const CONSUMER: &str = "health";

pub struct AccountsProjection {
    pub store: Store,
    pub scorer: Scorer,
    pub recompute: Recompute,
}

fn rejected(what: String) -> HandlerError {
    HandlerError::Rejected(anyhow::anyhow!(what))
}

fn date(d: Option<&banso_proto::types::Date>) -> Option<chrono::NaiveDate> {
    d.and_then(|d| chrono::NaiveDate::from_ymd_opt(d.year, d.month as u32, d.day as u32))
}

/// The projection row of an Accounts' account as its events carry it.
pub fn account_row(a: &apb::Account) -> Result<AccountRow, HandlerError> {
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
    let attributes = a
        .custom_attributes
        .iter()
        .filter_map(|(k, v)| {
            use banso_proto::types::attribute_value::Kind;
            let attr = match v.kind.as_ref()? {
                Kind::StringValue(s) => Attr::String(s.clone()),
                Kind::IntValue(i) => Attr::Int(*i),
                Kind::DoubleValue(d) => Attr::Double(*d),
                Kind::BoolValue(b) => Attr::Bool(*b),
                Kind::DateValue(d) => Attr::Date(date(Some(d))?),
                Kind::TimestampValue(t) => {
                    Attr::Timestamp(chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32)?)
                }
            };
            Some((k.clone(), attr))
        })
        .collect();
    Ok(AccountRow {
        account_id,
        external_id: (!a.external_id.is_empty()).then(|| a.external_id.clone()),
        name: a.name.clone(),
        lifecycle_stage: stage.into(),
        touch_model: touch.into(),
        arr_currency: a.arr.as_ref().map(|m| m.currency_code.clone()),
        arr_amount_minor: a.arr.as_ref().map(|m| m.amount_minor),
        renewal_date: date(a.renewal_date.as_ref()),
        contract_start_date: date(a.contract_start_date.as_ref()),
        industry: a.industry.clone(),
        employee_count: a.employee_count,
        revenue_band: a.revenue_band.clone(),
        region: a.region.clone(),
        plan_tier: a.plan_tier.clone(),
        owner_id: a.owner_id.clone(),
        tags: a.tags.clone(),
        attributes,
    })
}

#[async_trait]
impl Handler for AccountsProjection {
    async fn handle(&self, env: &Envelope) -> Result<(), HandlerError> {
        let tenant = env.tenant_id.as_str();
        let mut rescore: Option<Uuid> = None;
        let mut recompute: Option<&str> = None;
        let txn = self.store.db().begin().await?;
        if !inbox::claim(&txn, CONSUMER, env).await? {
            // Seen before: its effect is already committed.
            txn.commit().await?;
            return Ok(());
        }
        match &env.payload {
            Some(Payload::AccountCreated(e)) => {
                if let Some(a) = &e.account {
                    let r = account_row(a)?;
                    rescore = Some(r.account_id);
                    self.store.upsert_account(&txn, tenant, &r).await?;
                }
            }
            Some(Payload::AccountUpdated(e)) => {
                if let Some(a) = &e.account {
                    let r = account_row(a)?;
                    rescore = Some(r.account_id);
                    self.store.upsert_account(&txn, tenant, &r).await?;
                }
            }
            Some(Payload::ContractChanged(e)) => {
                if let Some(a) = &e.account {
                    let r = account_row(a)?;
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
            Some(Payload::SegmentChanged(e)) => {
                if let Some(seg) = &e.segment {
                    let id = Uuid::parse_str(&seg.id)
                        .map_err(|_| rejected(format!("segment id {:?} is not a UUID", seg.id)))?;
                    let deleted = e.change == banso_proto::events::segment_changed::Change::Deleted as i32;
                    if deleted {
                        self.store.delete_segment(&txn, tenant, id).await?;
                    } else {
                        self.store.upsert_segment(&txn, tenant, id, &seg.expression).await?;
                    }
                    // Accounts scored by a scorecard scoped to it may now score elsewhere.
                    recompute = Some(trigger::SEGMENT);
                }
            }
            Some(Payload::TenantSettingsChanged(e)) => {
                if let Some(s) = &e.settings {
                    self.store.set_time_zone(&txn, tenant, &s.time_zone).await?;
                    recompute = Some(trigger::TIME_ZONE);
                }
            }
            _ => {}
        }
        txn.commit().await?;
        // Attributes, contract state, e-mail replies and day cuts feed scores.
        if let Some(id) = rescore {
            self.scorer.account(tenant, id);
        }
        if let Some(trigger) = recompute {
            self.recompute.start_logged(tenant, trigger).await;
        }
        Ok(())
    }
}
