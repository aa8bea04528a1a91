//! The accounts projection: what Health knows of Accounts' accounts, kept
//! from their events; and the e-mails the response-rate measure counts.

use std::collections::{BTreeSet, HashMap, HashSet};

use banso_kit::{Result, db::uuid_in, wire};
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, QueryResult,
    sea_query::{Expr, ExprTrait, OnConflict, Query, SelectStatement},
};
use uuid::Uuid;

use super::{
    CHUNK, all, corrupt, exec, get, insert, json_text, one,
    schema::{Accounts as A, EmailActivities as E},
};
use crate::domain::account::{AccountRow, LifecycleStage, TouchModel};

/// The projection row of `a` as written: every column beside its value.
fn row(tenant: &str, a: &AccountRow) -> Result<[(A, Expr); 20]> {
    Ok([
        (A::AccountId, Expr::val(a.account_id)),
        (A::TenantId, Expr::val(tenant)),
        (A::Deleted, Expr::val(false)),
        (A::ExternalId, Expr::val(a.external_id.clone())),
        (A::Name, Expr::val(a.name.as_str())),
        (A::LifecycleStage, Expr::val(a.lifecycle_stage.as_str())),
        (A::TouchModel, Expr::val(a.touch_model.as_str())),
        (A::ArrCurrency, Expr::val(a.arr_currency.clone())),
        (A::ArrAmountMinor, Expr::val(a.arr_amount_minor)),
        (A::RenewalDate, Expr::val(a.renewal_date)),
        (A::ContractStartDate, Expr::val(a.contract_start_date)),
        (A::Industry, Expr::val(a.industry.as_str())),
        (A::EmployeeCount, Expr::val(a.employee_count)),
        (A::RevenueBand, Expr::val(a.revenue_band.as_str())),
        (A::Region, Expr::val(a.region.as_str())),
        (A::PlanTier, Expr::val(a.plan_tier.as_str())),
        (A::OwnerId, Expr::val(a.owner_id.as_str())),
        (A::Tags, Expr::val(json_text(&a.tags)?)),
        (A::Attributes, Expr::val(json_text(&a.attributes)?)),
        (A::UpdateTime, Expr::val(wire::now())),
    ])
}

/// Writes an account as its latest event carries it. A deleted account
/// stays deleted (a late update does not bring it back).
pub(crate) async fn upsert(conn: &impl ConnectionTrait, tenant: &str, a: &AccountRow) -> Result<()> {
    let row = row(tenant, a)?;
    let updated: Vec<A> =
        row.iter().map(|(c, _)| *c).filter(|c| !matches!(c, A::AccountId | A::TenantId | A::Deleted)).collect();
    let Some(mut q) = insert(A::Table, [row])? else { return Ok(()) };
    q.on_conflict(OnConflict::column(A::AccountId).update_columns(updated).to_owned());
    exec(conn, &q).await?;
    Ok(())
}

/// Marks an account deleted: its usage no longer scores, late events for
/// it are refused.
pub(crate) async fn delete(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<()> {
    let q = Query::update()
        .table(A::Table)
        .value(A::Deleted, true)
        .and_where(Expr::col(A::AccountId).eq(id))
        .and_where(Expr::col(A::TenantId).eq(tenant))
        .to_owned();
    exec(conn, &q).await?;
    Ok(())
}

/// Which of `ids` are live accounts of the tenant, and the ids of
/// `external_ids` that are.
pub(crate) async fn resolve(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[Uuid],
    external_ids: &[&str],
) -> Result<(HashSet<Uuid>, HashMap<String, Uuid>)> {
    // A batch names an account once per event: look each up once.
    let ids: Vec<Uuid> = ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    let external_ids: Vec<&str> = external_ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    let mut known = HashSet::new();
    for chunk in ids.chunks(CHUNK) {
        let q = Query::select()
            .column(A::AccountId)
            .from(A::Table)
            .and_where(Expr::col(A::TenantId).eq(tenant))
            .and_where(Expr::col(A::Deleted).eq(false))
            .and_where(uuid_in(conn, Expr::col(A::AccountId), chunk))
            .to_owned();
        for r in all(conn, &q).await? {
            known.insert(get(&r, A::AccountId)?);
        }
    }
    let mut by_external = HashMap::new();
    for chunk in external_ids.chunks(CHUNK) {
        let q = Query::select()
            .columns([A::AccountId, A::ExternalId])
            .from(A::Table)
            .and_where(Expr::col(A::TenantId).eq(tenant))
            .and_where(Expr::col(A::Deleted).eq(false))
            .and_where(banso_kit::db::text_in(conn, Expr::col(A::ExternalId), chunk))
            .to_owned();
        for r in all(conn, &q).await? {
            by_external.insert(get(&r, A::ExternalId)?, get(&r, A::AccountId)?);
        }
    }
    Ok((known, by_external))
}

/// `SELECT <the row's columns> FROM accounts`, qualified by the table (for joins).
pub(crate) fn select() -> SelectStatement {
    Query::select().columns(A::ROW.map(|c| (A::Table, c))).from(A::Table).to_owned()
}

/// The account of a row holding [`A::ROW`].
pub(crate) fn from_row(r: &QueryResult) -> Result<AccountRow> {
    let tags: String = get(r, A::Tags)?;
    let attributes: String = get(r, A::Attributes)?;
    let stage: String = get(r, A::LifecycleStage)?;
    let touch: String = get(r, A::TouchModel)?;
    Ok(AccountRow {
        account_id: get(r, A::AccountId)?,
        external_id: get(r, A::ExternalId)?,
        name: get(r, A::Name)?,
        lifecycle_stage: LifecycleStage::parse(&stage).ok_or_else(|| corrupt("lifecycle stage", &stage))?,
        touch_model: TouchModel::parse(&touch).ok_or_else(|| corrupt("touch model", &touch))?,
        arr_currency: get(r, A::ArrCurrency)?,
        arr_amount_minor: get(r, A::ArrAmountMinor)?,
        renewal_date: get(r, A::RenewalDate)?,
        contract_start_date: get(r, A::ContractStartDate)?,
        industry: get(r, A::Industry)?,
        employee_count: get(r, A::EmployeeCount)?,
        revenue_band: get(r, A::RevenueBand)?,
        region: get(r, A::Region)?,
        plan_tier: get(r, A::PlanTier)?,
        owner_id: get(r, A::OwnerId)?,
        tags: serde_json::from_str(&tags).map_err(|e| corrupt("tags", e))?,
        attributes: serde_json::from_str(&attributes).map_err(|e| corrupt("attributes", e))?,
    })
}

/// The live projection row of an account.
pub(crate) async fn get_live(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<AccountRow>> {
    let mut q = select();
    q.and_where(Expr::col((A::Table, A::TenantId)).eq(tenant))
        .and_where(Expr::col((A::Table, A::Deleted)).eq(false))
        .and_where(Expr::col((A::Table, A::AccountId)).eq(id));
    one(conn, &q).await?.as_ref().map(from_row).transpose()
}

/// The live projection rows of `ids` (those that exist), in no order.
pub(crate) async fn by_ids(conn: &impl ConnectionTrait, tenant: &str, ids: &[Uuid]) -> Result<Vec<AccountRow>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut q = select();
        q.and_where(Expr::col((A::Table, A::TenantId)).eq(tenant))
            .and_where(Expr::col((A::Table, A::Deleted)).eq(false))
            .and_where(uuid_in(conn, Expr::col((A::Table, A::AccountId)), chunk));
        for r in all(conn, &q).await? {
            out.push(from_row(&r)?);
        }
    }
    Ok(out)
}

/// A page of the tenant's live accounts by id, after `after`.
pub(crate) async fn page(
    conn: &impl ConnectionTrait,
    tenant: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<AccountRow>> {
    let mut q = select();
    q.and_where(Expr::col((A::Table, A::TenantId)).eq(tenant)).and_where(Expr::col((A::Table, A::Deleted)).eq(false));
    if let Some(a) = after {
        q.and_where(Expr::col((A::Table, A::AccountId)).gt(a));
    }
    q.order_by((A::Table, A::AccountId), sea_orm::Order::Asc).limit(limit);
    all(conn, &q).await?.iter().map(from_row).collect()
}

/// `SELECT … FROM accounts` of the tenant's live accounts after `after` (by id).
fn live_after(tenant: &str, after: Option<Uuid>) -> SelectStatement {
    let mut q = Query::select()
        .from(A::Table)
        .and_where(Expr::col(A::TenantId).eq(tenant))
        .and_where(Expr::col(A::Deleted).eq(false))
        .to_owned();
    if let Some(a) = after {
        q.and_where(Expr::col(A::AccountId).gt(a));
    }
    q
}

/// Live accounts of the tenant (after `after`, by id).
pub(crate) async fn count(conn: &impl ConnectionTrait, tenant: &str, after: Option<Uuid>) -> Result<i64> {
    use super::schema::Out;
    let q = live_after(tenant, after).expr_as(Expr::cust("COUNT(*)"), Out::N).to_owned();
    Ok(one(conn, &q).await?.map(|r| get::<i64>(&r, Out::N)).transpose()?.unwrap_or(0))
}

/// The ids of the tenant's live accounts, after `after`, by id, `limit` at most.
pub(crate) async fn ids_after(
    conn: &impl ConnectionTrait,
    tenant: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Uuid>> {
    let q = live_after(tenant, after)
        .column(A::AccountId)
        .order_by(A::AccountId, sea_orm::Order::Asc)
        .limit(limit)
        .to_owned();
    all(conn, &q).await?.iter().map(|r| get(r, A::AccountId)).collect()
}

/// Tenants with live accounts.
pub(crate) async fn tenants(conn: &impl ConnectionTrait) -> Result<Vec<String>> {
    let q = Query::select()
        .distinct()
        .column(A::TenantId)
        .from(A::Table)
        .and_where(Expr::col(A::Deleted).eq(false))
        .to_owned();
    all(conn, &q).await?.iter().map(|r| get(r, A::TenantId)).collect()
}

/// Records an e-mail sent (`replied` false) or replied, once per activity.
pub(crate) async fn record_email(
    conn: &impl ConnectionTrait,
    tenant: &str,
    activity_id: Uuid,
    account_id: Uuid,
    replied: bool,
    occur_time: DateTime<Utc>,
) -> Result<()> {
    let row = [
        (E::ActivityId, Expr::val(activity_id)),
        (E::TenantId, Expr::val(tenant)),
        (E::AccountId, Expr::val(account_id)),
        (E::Replied, Expr::val(replied)),
        (E::OccurTime, Expr::val(occur_time)),
    ];
    let Some(mut q) = insert(E::Table, [row])? else { return Ok(()) };
    q.on_conflict(OnConflict::column(E::ActivityId).do_nothing().to_owned());
    exec(conn, &q).await?;
    Ok(())
}
