//! Contract events: the history of each account's ARR.

use banso_kit::{Error, Result};
use chrono::NaiveDate;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{corrupt, entities::contract_event};
use crate::domain::{
    Money,
    contract::{ContractEvent, ContractKind},
    retention::ContractMovement,
};

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

/// The effective date of the account's latest contract event.
pub(crate) async fn last_effective_date(
    conn: &impl ConnectionTrait,
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

/// The contract event, or NOT_FOUND.
pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<ContractEvent> {
    contract_event::Entity::find_by_id(id)
        .filter(contract_event::Column::TenantId.eq(tenant))
        .one(conn)
        .await?
        .map(from_model)
        .transpose()?
        .ok_or_else(|| Error::not_found("contract event", id.to_string()))
}

pub(crate) async fn insert(conn: &impl ConnectionTrait, tenant: &str, e: &ContractEvent) -> Result<()> {
    contract_event::Entity::insert(contract_event::ActiveModel {
        id: Set(e.id),
        tenant_id: Set(tenant.to_owned()),
        account_id: Set(e.account_id),
        kind: Set(e.kind.as_str().to_owned()),
        currency: Set(e.arr_after.currency_code.clone()),
        arr_before: Set(e.arr_before.amount_minor),
        arr_after: Set(e.arr_after.amount_minor),
        effective_date: Set(e.effective_date),
        term_end: Set(e.term_end),
        reason_code: Set(e.reason_code.clone()),
        note: Set(e.note.clone()),
        recorded_by: Set(e.recorded_by.clone()),
        create_time: Set(e.create_time),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// An account's contract history, oldest first, after `(date, id)`.
pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account_id: Uuid,
    after: Option<(NaiveDate, Uuid)>,
    limit: u64,
) -> Result<Vec<ContractEvent>> {
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
        .all(conn)
        .await?
        .into_iter()
        .map(from_model)
        .collect()
}

/// Every contract movement of the tenant in `currency`, in recorded order
/// (effective date, then creation), for retention metrics.
pub(crate) async fn movements(
    conn: &impl ConnectionTrait,
    tenant: &str,
    currency: &str,
) -> Result<Vec<ContractMovement>> {
    use contract_event::Column as C;
    let rows = contract_event::Entity::find()
        .filter(C::TenantId.eq(tenant))
        .filter(C::Currency.eq(currency))
        .order_by(C::EffectiveDate, Order::Asc)
        .order_by(C::Id, Order::Asc)
        .all(conn)
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
