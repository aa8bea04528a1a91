//! Labelled outcomes per account ([`crate::domain::outcome`]), from
//! Accounts' ContractChanged.

use banso_kit::{Result, wire};
use chrono::NaiveDate;
use sea_orm::{
    ConnectionTrait, QueryResult,
    sea_query::{Expr, ExprTrait, OnConflict, Order, Query},
};

use super::{all, corrupt, exec, get, insert, schema::AccountOutcomes as O};
use crate::domain::outcome::{ExpansionKind, Outcome, OutcomeKind};

/// Records an outcome once (a redelivered event changes nothing).
pub(crate) async fn record(conn: &impl ConnectionTrait, tenant: &str, o: &Outcome) -> Result<()> {
    let row = [
        (O::TenantId, Expr::val(tenant)),
        (O::EventId, Expr::val(o.event_id)),
        (O::AccountId, Expr::val(o.account_id)),
        (O::Kind, Expr::val(o.kind.as_str())),
        (O::Expansion, Expr::val(o.expansion.map(|e| e.as_str()))),
        (O::EffectiveDate, Expr::val(o.effective_date)),
        (O::Currency, Expr::val(o.currency.as_str())),
        (O::ArrBefore, Expr::val(o.arr_before)),
        (O::ArrAfter, Expr::val(o.arr_after)),
        (O::RecordTime, Expr::val(wire::now())),
    ];
    let Some(mut q) = insert(O::Table, [row])? else { return Ok(()) };
    q.on_conflict(OnConflict::columns([O::TenantId, O::EventId]).do_nothing().to_owned());
    exec(conn, &q).await?;
    Ok(())
}

fn from_row(r: &QueryResult) -> Result<Outcome> {
    let kind: String = get(r, O::Kind)?;
    let expansion: Option<String> = get(r, O::Expansion)?;
    Ok(Outcome {
        event_id: get(r, O::EventId)?,
        account_id: get(r, O::AccountId)?,
        kind: OutcomeKind::parse(&kind).ok_or_else(|| corrupt("outcome kind", &kind))?,
        expansion: match expansion {
            Some(e) => Some(ExpansionKind::parse(&e).ok_or_else(|| corrupt("expansion kind", &e))?),
            None => None,
        },
        effective_date: get(r, O::EffectiveDate)?,
        currency: get(r, O::Currency)?,
        arr_before: get(r, O::ArrBefore)?,
        arr_after: get(r, O::ArrAfter)?,
    })
}

/// The tenant's outcomes of `kinds` effective in `[from, to)`, by account,
/// then day, then event (recording order on a day).
pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    kinds: &[OutcomeKind],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Outcome>> {
    let q = Query::select()
        .columns(O::ROW)
        .from(O::Table)
        .and_where(Expr::col(O::TenantId).eq(tenant))
        .and_where(Expr::col(O::Kind).is_in(kinds.iter().map(|k| k.as_str())))
        .and_where(Expr::col(O::EffectiveDate).gte(from))
        .and_where(Expr::col(O::EffectiveDate).lt(to))
        .order_by(O::AccountId, Order::Asc)
        .order_by(O::EffectiveDate, Order::Asc)
        .order_by(O::EventId, Order::Asc)
        .to_owned();
    all(conn, &q).await?.iter().map(from_row).collect()
}
