//! Contract events: recorded with the account change they cause, in one
//! transaction with their ContractChanged event.

use banso_kit::{Error, Result, idempotency};
use chrono::NaiveDate;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use super::{
    Store, UNCONDITIONAL_UPDATE_ATTEMPTS, account_active, backoff, corrupt,
    entities::{account, contract_event},
};
use crate::domain::{
    Account, Money,
    contract::{self, ContractEvent, ContractInput, ContractKind},
    now,
    retention::ContractMovement,
};

const OP_RECORD_CONTRACT: &str = "RecordContractEvent";

fn from_model(m: contract_event::Model) -> Result<ContractEvent> {
    Ok(ContractEvent {
        id: m.id,
        account_id: m.account_id,
        kind: ContractKind::parse(&m.kind).ok_or_else(|| corrupt("contract kind", &m.kind))?,
        arr_before: Money { currency_code: m.currency.clone(), amount_minor: m.arr_before },
        arr_after: Money { currency_code: m.currency, amount_minor: m.arr_after },
        effective_date: m.effective_date,
        term_end: m.term_end,
        reason_code: m.reason_code,
        note: m.note,
        recorded_by: m.recorded_by,
        create_time: m.create_time,
    })
}

impl Store {
    async fn last_effective_date(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        tenant: &str,
        account_id: Uuid,
    ) -> Result<Option<NaiveDate>> {
        Ok(contract_event::Entity::find()
            .filter(contract_event::Column::TenantId.eq(tenant))
            .filter(contract_event::Column::AccountId.eq(account_id))
            .order_by_desc(contract_event::Column::EffectiveDate)
            .limit(1)
            .one(conn)
            .await?
            .map(|m| m.effective_date))
    }

    async fn get_contract_event(&self, tenant: &str, id: Uuid) -> Result<ContractEvent> {
        contract_event::Entity::find_by_id(id)
            .filter(contract_event::Column::TenantId.eq(tenant))
            .one(&self.db)
            .await?
            .map(from_model)
            .transpose()?
            .ok_or_else(|| Error::not_found("contract event", id.to_string()))
    }

    /// The event a `request_id` already recorded, with its account now.
    async fn recorded(&self, tenant: &str, request_id: Option<&str>) -> Result<Option<(ContractEvent, Account)>> {
        let Some(key) = request_id else { return Ok(None) };
        let Some(id) = idempotency::lookup(&self.db, tenant, OP_RECORD_CONTRACT, key).await? else { return Ok(None) };
        let event = self.get_contract_event(tenant, Uuid::parse_str(&id).map_err(Error::internal)?).await?;
        let account = self.get_account(tenant, event.account_id).await?;
        Ok(Some((event, account)))
    }

    /// Applies `input` to the account and records it; a retry with the same
    /// `request_id` returns the first result.
    pub async fn record_contract_event(
        &self,
        tenant: &str,
        account_id: Uuid,
        input: ContractInput,
        recorded_by: &str,
        request_id: Option<&str>,
    ) -> Result<(ContractEvent, Account)> {
        for attempt in 0..UNCONDITIONAL_UPDATE_ATTEMPTS {
            backoff(attempt).await;
            // Every attempt looks for the key first: a racing retry whose
            // twin committed meanwhile must return that result, not re-apply
            // the event to the account the twin already changed.
            if let Some(found) = self.recorded(tenant, request_id).await? {
                return Ok(found);
            }
            let current = self.get_account(tenant, account_id).await?;
            let last = self.last_effective_date(&self.db, tenant, account_id).await?;
            let mut next = current.clone();
            let before = match contract::apply(&mut next.fields, last, &input) {
                Ok(before) => before,
                Err(e) => {
                    // Refused against a state a racing twin may have made.
                    if let Some(found) = self.recorded(tenant, request_id).await? {
                        return Ok(found);
                    }
                    return Err(e);
                }
            };
            let t = now();
            next.update_time = t;
            next.version = current.version + 1;
            let event = ContractEvent {
                id: Uuid::now_v7(),
                account_id,
                kind: input.kind,
                arr_before: before,
                arr_after: next.fields.arr.clone().expect("apply sets ARR"),
                effective_date: input.effective_date,
                term_end: input.term_end,
                reason_code: input.reason_code.clone(),
                note: input.note.clone(),
                recorded_by: recorded_by.to_owned(),
                create_time: t,
            };
            let txn = self.db.begin().await?;
            let res = account::Entity::update_many()
                .set(account_active(tenant, &next))
                .filter(account::Column::Id.eq(account_id))
                .filter(account::Column::TenantId.eq(tenant))
                .filter(account::Column::Version.eq(current.version))
                .exec(&txn)
                .await?;
            if res.rows_affected == 0 {
                // The account changed meanwhile: re-check against its new state.
                txn.rollback().await?;
                continue;
            }
            // A concurrent event may have landed between the read and the lock.
            if self.last_effective_date(&txn, tenant, account_id).await? != last {
                txn.rollback().await?;
                continue;
            }
            contract_event::Entity::insert(contract_event::ActiveModel {
                id: Set(event.id),
                tenant_id: Set(tenant.to_owned()),
                account_id: Set(account_id),
                kind: Set(event.kind.as_str().to_owned()),
                currency: Set(event.arr_after.currency_code.clone()),
                arr_before: Set(event.arr_before.amount_minor),
                arr_after: Set(event.arr_after.amount_minor),
                effective_date: Set(event.effective_date),
                term_end: Set(event.term_end),
                reason_code: Set(event.reason_code.clone()),
                note: Set(event.note.clone()),
                recorded_by: Set(event.recorded_by.clone()),
                create_time: Set(event.create_time),
            })
            .exec_without_returning(&txn)
            .await?;
            if let Some(key) = request_id
                && let Err(e) = idempotency::record(&txn, tenant, OP_RECORD_CONTRACT, key, &event.id.to_string()).await
            {
                txn.rollback().await?;
                match e {
                    // A concurrent retry with the same key won: the next
                    // attempt finds and returns its result.
                    Error::AlreadyExists(_) => continue,
                    other => return Err(other),
                }
            }
            self.emit(&txn, tenant, crate::events::contract_changed(&event, &next)).await?;
            self.commit(txn).await?;
            return Ok((event, next));
        }
        Err(Error::Aborted {
            reason: "CONCURRENT_UPDATE",
            message: format!("account {account_id} is being changed concurrently; retry"),
        })
    }

    /// An account's contract history, oldest first, after `(date, id)`.
    pub async fn list_contract_events(
        &self,
        tenant: &str,
        account_id: Uuid,
        after: Option<(NaiveDate, Uuid)>,
        limit: u64,
    ) -> Result<Vec<ContractEvent>> {
        self.get_account(tenant, account_id).await?;
        use contract_event::Column as C;
        let mut q = contract_event::Entity::find().filter(C::TenantId.eq(tenant)).filter(C::AccountId.eq(account_id));
        if let Some((date, id)) = after {
            q = q.filter(
                Condition::any()
                    .add(C::EffectiveDate.gt(date))
                    .add(Condition::all().add(C::EffectiveDate.eq(date)).add(C::Id.gt(id))),
            );
        }
        q.order_by(C::EffectiveDate, Order::Asc)
            .order_by(C::Id, Order::Asc)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(from_model)
            .collect()
    }

    /// Every contract movement of the tenant in `currency`, in recorded
    /// order (effective date, then creation), for retention metrics.
    pub async fn contract_movements(&self, tenant: &str, currency: &str) -> Result<Vec<ContractMovement>> {
        use contract_event::Column as C;
        let rows = contract_event::Entity::find()
            .filter(C::TenantId.eq(tenant))
            .filter(C::Currency.eq(currency))
            .order_by(C::EffectiveDate, Order::Asc)
            .order_by(C::Id, Order::Asc)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|m| {
                Ok(ContractMovement {
                    account_id: m.account_id,
                    kind: ContractKind::parse(&m.kind).ok_or_else(|| corrupt("contract kind", &m.kind))?,
                    arr_before: m.arr_before,
                    arr_after: m.arr_after,
                    effective_date: m.effective_date,
                })
            })
            .collect()
    }
}
