//! Accounts and their tag index (`account_tags`, kept by every write of an
//! account's tags, for the tag filter).

use std::collections::{BTreeMap, HashMap};

use banso_kit::{Error, Result, db};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func, Query, SimpleExpr},
};
use uuid::Uuid;

use super::{
    corrupt,
    entities::{account, account_tag},
};
use crate::domain::{
    Account, AccountCursor, AccountFields, AccountFilter, AccountOrder, AccountSort, AttrValue, LifecycleStage, Money,
    SortKey, TouchModel, single_mix,
};

pub(crate) fn from_model(m: account::Model) -> Result<Account> {
    let arr = match (m.arr_currency, m.arr_amount_minor) {
        (Some(currency_code), Some(amount_minor)) => Some(Money { currency_code, amount_minor }),
        _ => None,
    };
    let tags: Vec<String> = serde_json::from_value(m.tags).map_err(|e| corrupt("tags", e))?;
    let custom_attributes: BTreeMap<String, AttrValue> =
        serde_json::from_value(m.custom_attributes).map_err(|e| corrupt("custom_attributes", e))?;
    let touch_model = TouchModel::parse(&m.touch_model).ok_or_else(|| corrupt("touch_model", &m.touch_model))?;
    let touch_mix = match m.touch_mix {
        Some(j) => serde_json::from_value(j).map_err(|e| corrupt("touch_mix", e))?,
        None => single_mix(touch_model),
    };
    Ok(Account {
        id: m.id,
        fields: AccountFields {
            name: m.name,
            external_id: m.external_id,
            industry: m.industry,
            employee_count: m.employee_count,
            revenue_band: m.revenue_band,
            region: m.region,
            plan_tier: m.plan_tier,
            lifecycle_stage: LifecycleStage::parse(&m.lifecycle_stage)
                .ok_or_else(|| corrupt("lifecycle_stage", &m.lifecycle_stage))?,
            touch_model,
            touch_mix,
            touch_mix_manual: m.touch_mix_manual,
            owner_id: m.owner_id,
            arr,
            contract_start_date: m.contract_start_date,
            renewal_date: m.renewal_date,
            tags,
            custom_attributes,
        },
        create_time: m.create_time,
        update_time: m.update_time,
        version: m.version,
    })
}

/// The stored JSON of an account's tags, custom attributes and touch mix.
pub(crate) fn json_columns(f: &AccountFields) -> Result<(serde_json::Value, serde_json::Value, serde_json::Value)> {
    let tags = serde_json::to_value(&f.tags).map_err(Error::internal)?;
    let attributes = serde_json::to_value(&f.custom_attributes).map_err(Error::internal)?;
    let mix = serde_json::to_value(&f.touch_mix).map_err(Error::internal)?;
    Ok((tags, attributes, mix))
}

/// The columns an account is stored in.
pub(crate) fn active(tenant: &str, a: &Account) -> Result<account::ActiveModel> {
    let f = &a.fields;
    let (tags, attributes, mix) = json_columns(f)?;
    Ok(account::ActiveModel {
        id: Set(a.id),
        tenant_id: Set(tenant.to_owned()),
        name: Set(f.name.clone()),
        external_id: Set(f.external_id.clone()),
        industry: Set(f.industry.clone()),
        employee_count: Set(f.employee_count),
        revenue_band: Set(f.revenue_band.clone()),
        region: Set(f.region.clone()),
        plan_tier: Set(f.plan_tier.clone()),
        lifecycle_stage: Set(f.lifecycle_stage.as_str().to_owned()),
        touch_model: Set(f.touch_model.as_str().to_owned()),
        touch_mix: Set(Some(mix)),
        touch_mix_manual: Set(f.touch_mix_manual),
        owner_id: Set(f.owner_id.clone()),
        arr_currency: Set(f.arr.as_ref().map(|m| m.currency_code.clone())),
        arr_amount_minor: Set(f.arr.as_ref().map(|m| m.amount_minor)),
        contract_start_date: Set(f.contract_start_date),
        renewal_date: Set(f.renewal_date),
        tags: Set(tags),
        custom_attributes: Set(attributes),
        create_time: Set(a.create_time),
        update_time: Set(a.update_time),
        version: Set(a.version),
    })
}

pub(crate) async fn find(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<Account>> {
    account::Entity::find_by_id(id)
        .filter(account::Column::TenantId.eq(tenant))
        .one(conn)
        .await?
        .map(from_model)
        .transpose()
}

/// The account, or NOT_FOUND (also for another tenant's).
pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Account> {
    find(conn, tenant, id).await?.ok_or_else(|| Error::not_found("account", id.to_string()))
}

/// NOT_FOUND unless the account exists in this tenant.
pub(crate) async fn must_exist(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<()> {
    let n = account::Entity::find_by_id(id).filter(account::Column::TenantId.eq(tenant)).count(conn).await?;
    if n == 0 { Err(Error::not_found("account", id.to_string())) } else { Ok(()) }
}

/// The accounts in the order of `ids`; NOT_FOUND names the first missing one.
pub(crate) async fn batch_get(conn: &impl ConnectionTrait, tenant: &str, ids: &[Uuid]) -> Result<Vec<Account>> {
    let rows = account::Entity::find()
        .filter(account::Column::TenantId.eq(tenant))
        .filter(account::Column::Id.is_in(ids.iter().copied()))
        .all(conn)
        .await?;
    let mut by_id = BTreeMap::new();
    for r in rows {
        let a = from_model(r)?;
        by_id.insert(a.id, a);
    }
    ids.iter().map(|id| by_id.get(id).cloned().ok_or_else(|| Error::not_found("account", id.to_string()))).collect()
}

/// The owner ids of the accounts with these ids that exist.
pub(crate) async fn owners(conn: &impl ConnectionTrait, tenant: &str, ids: &[Uuid]) -> Result<HashMap<Uuid, String>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(1000) {
        let rows: Vec<(Uuid, String)> = account::Entity::find()
            .select_only()
            .column(account::Column::Id)
            .column(account::Column::OwnerId)
            .filter(account::Column::TenantId.eq(tenant))
            .filter(account::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(conn)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}

pub(crate) async fn find_by_external_id(
    conn: &impl ConnectionTrait,
    tenant: &str,
    external_id: &str,
) -> Result<Option<Account>> {
    account::Entity::find()
        .filter(account::Column::TenantId.eq(tenant))
        .filter(account::Column::ExternalId.eq(external_id))
        .one(conn)
        .await?
        .map(from_model)
        .transpose()
}

/// Up to `limit` accounts whose touch mix the rules govern (not set by
/// hand), in creation order after `after`.
pub(crate) async fn ruled_after(
    conn: &impl ConnectionTrait,
    tenant: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Account>> {
    let mut q = account::Entity::find()
        .filter(account::Column::TenantId.eq(tenant))
        .filter(account::Column::TouchMixManual.eq(false));
    if let Some(id) = after {
        q = q.filter(account::Column::Id.gt(id));
    }
    q.order_by(account::Column::Id, Order::Asc).limit(limit).all(conn).await?.into_iter().map(from_model).collect()
}

/// The accounts with these external_ids, by external_id.
pub(crate) async fn by_external_ids(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[String],
) -> Result<HashMap<String, Account>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(1000) {
        // An index probe on (tenant_id, external_id) per id whatever the
        // statistics; an IN list of 1,000 parameters could turn into a
        // scan of the tenant's accounts per lookup (measured: an import
        // quadratic in the tenant's size, docs/benchmarks.md).
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let by_external_id = banso_kit::db::text_in(conn, Expr::col(account::Column::ExternalId), &chunk);
        let rows = account::Entity::find()
            .filter(account::Column::TenantId.eq(tenant))
            .filter(by_external_id)
            .all(conn)
            .await?;
        for r in rows {
            let a = from_model(r)?;
            out.insert(a.fields.external_id.clone().unwrap_or_default(), a);
        }
    }
    Ok(out)
}

/// Keyset condition "after `cursor`" for a nullable or non-null column,
/// with NULLs sorting last in both directions.
fn after_condition(col: account::Column, value: Option<SimpleExpr>, id: Uuid, desc: bool, nullable: bool) -> Condition {
    let id_col = account::Column::Id;
    let id_after = if desc { id_col.lt(id) } else { id_col.gt(id) };
    match value {
        Some(v) => {
            let past = if desc { Expr::col(col).lt(v.clone()) } else { Expr::col(col).gt(v.clone()) };
            let mut c = Condition::any().add(past).add(Condition::all().add(Expr::col(col).eq(v)).add(id_after));
            if nullable {
                c = c.add(col.is_null());
            }
            c
        }
        None => Condition::all().add(col.is_null()).add(id_after),
    }
}

/// Up to `limit` accounts after `after`, in `order`.
pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    filter: &AccountFilter,
    order: AccountOrder,
    after: Option<&AccountCursor>,
    limit: u64,
) -> Result<Vec<Account>> {
    use account::Column as C;
    let mut q = account::Entity::find().filter(C::TenantId.eq(tenant));
    if !filter.lifecycle_stages.is_empty() {
        q = q.filter(C::LifecycleStage.is_in(filter.lifecycle_stages.iter().map(|s| s.as_str())));
    }
    if !filter.touch_models.is_empty() {
        q = q.filter(C::TouchModel.is_in(filter.touch_models.iter().map(|s| s.as_str())));
    }
    for (col, value) in [
        (C::OwnerId, &filter.owner_id),
        (C::Industry, &filter.industry),
        (C::Region, &filter.region),
        (C::PlanTier, &filter.plan_tier),
        (C::RevenueBand, &filter.revenue_band),
    ] {
        if let Some(v) = value {
            q = q.filter(col.eq(v.as_str()));
        }
    }
    if let Some(tag) = &filter.tag {
        q = q.filter(
            C::Id.in_subquery(
                Query::select()
                    .column(account_tag::Column::AccountId)
                    .from(account_tag::Entity)
                    .and_where(account_tag::Column::TenantId.eq(tenant))
                    .and_where(account_tag::Column::Tag.eq(tag.as_str()))
                    .to_owned(),
            ),
        );
    }
    if let Some(d) = filter.renewal_date_from {
        q = q.filter(C::RenewalDate.gte(d));
    }
    if let Some(d) = filter.renewal_date_to {
        q = q.filter(C::RenewalDate.lte(d));
    }
    if let Some(cur) = &filter.arr_currency {
        q = q.filter(C::ArrCurrency.eq(cur.as_str()));
    }
    if let Some(min) = filter.arr_min {
        q = q.filter(C::ArrAmountMinor.gte(min));
    }
    if let Some(max) = filter.arr_max {
        q = q.filter(C::ArrAmountMinor.lte(max));
    }
    if let Some(prefix) = &filter.name_prefix {
        // substr and length count characters on both PostgreSQL and SQLite,
        // and compare case-sensitively on both (unlike SQLite's LIKE). The
        // prefix is at most 200 characters (the API's limit).
        let n = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
        let head = Func::cust("substr").arg(Expr::col(C::Name)).arg(1i32).arg(n);
        q = q.filter(Expr::expr(head).eq(prefix.as_str()));
    }

    let dir = if order.desc { Order::Desc } else { Order::Asc };
    let (col, nullable) = match order.sort {
        AccountSort::CreateTime => (None, false),
        AccountSort::UpdateTime => (Some(C::UpdateTime), false),
        AccountSort::Name => (Some(C::Name), false),
        AccountSort::RenewalDate => (Some(C::RenewalDate), true),
        AccountSort::Arr => (Some(C::ArrAmountMinor), true),
    };
    if let Some(cursor) = after {
        let cond = match (&cursor.key, col) {
            (SortKey::Id, None) => {
                Condition::all().add(if order.desc { C::Id.lt(cursor.id) } else { C::Id.gt(cursor.id) })
            }
            (SortKey::Time(t), Some(c)) => after_condition(c, Some((*t).into()), cursor.id, order.desc, false),
            (SortKey::Text(s), Some(c)) => after_condition(c, Some(s.as_str().into()), cursor.id, order.desc, false),
            (SortKey::Date(d), Some(c)) => after_condition(c, d.map(Into::into), cursor.id, order.desc, true),
            (SortKey::Amount(a), Some(c)) => after_condition(c, a.map(Into::into), cursor.id, order.desc, true),
            // The token is bound to the order by its MAC; a mismatch is a bug.
            _ => return Err(Error::internal(anyhow::anyhow!("page cursor does not fit order {order:?}"))),
        };
        q = q.filter(cond);
    }
    if let Some(c) = col {
        if nullable {
            q = q.order_by(Expr::col(c).is_null(), Order::Asc);
        }
        q = q.order_by(c, dir.clone());
    }
    q = q.order_by(C::Id, dir);
    q.limit(limit).all(conn).await?.into_iter().map(from_model).collect()
}

/// Writes the tag rows of `a` (after removing its old ones if `replace`).
async fn write_tags(conn: &impl ConnectionTrait, tenant: &str, a: &Account, replace: bool) -> Result<()> {
    if replace {
        delete_tags(conn, tenant, a.id).await?;
    }
    if a.fields.tags.is_empty() {
        return Ok(());
    }
    let rows = a.fields.tags.iter().map(|t| account_tag::ActiveModel {
        tenant_id: Set(tenant.to_owned()),
        tag: Set(t.clone()),
        account_id: Set(a.id),
    });
    account_tag::Entity::insert_many(rows).exec_without_returning(conn).await?;
    Ok(())
}

/// No foreign key cascades to the tag rows (migration M0003): every write
/// that removes an account or changes its tags removes them itself.
async fn delete_tags(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<()> {
    account_tag::Entity::delete_many()
        .filter(account_tag::Column::TenantId.eq(tenant))
        .filter(account_tag::Column::AccountId.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Inserts a new account with its tags. ALREADY_EXISTS: its external_id
/// is taken.
pub(crate) async fn insert(conn: &impl ConnectionTrait, tenant: &str, a: &Account) -> Result<()> {
    account::Entity::insert(active(tenant, a)?).exec_without_returning(conn).await?;
    write_tags(conn, tenant, a, false).await
}

/// Writes `next` over `current` if the stored version is still
/// `current`'s: the versioned UPDATE is the first statement, so SQLite takes
/// its write lock at once. Returns whether it was. ALREADY_EXISTS: the new
/// external_id is taken.
pub(crate) async fn update(
    conn: &impl ConnectionTrait,
    tenant: &str,
    current: &Account,
    next: &Account,
) -> Result<bool> {
    if !db::update_at_version::<account::Entity>(conn, tenant, current.id, current.version, active(tenant, next)?)
        .await?
    {
        return Ok(false);
    }
    if next.fields.tags != current.fields.tags {
        write_tags(conn, tenant, next, true).await?;
    }
    Ok(true)
}

/// Deletes the account (its contacts, contract events and activities go
/// with it by foreign key) if the stored version is still `current`'s;
/// returns whether it did.
pub(crate) async fn delete(conn: &impl ConnectionTrait, tenant: &str, current: &Account) -> Result<bool> {
    if !db::delete_at_version::<account::Entity>(conn, tenant, current.id, current.version).await? {
        return Ok(false);
    }
    delete_tags(conn, tenant, current.id).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LifecycleStage, TouchModel};

    fn account(name: &str, tags: &[&str]) -> Account {
        let t = banso_kit::wire::now();
        Account {
            id: Uuid::now_v7(),
            fields: AccountFields {
                name: name.into(),
                external_id: None,
                industry: String::new(),
                employee_count: None,
                revenue_band: String::new(),
                region: String::new(),
                plan_tier: String::new(),
                lifecycle_stage: LifecycleStage::Adoption,
                touch_model: TouchModel::Low,
                touch_mix: single_mix(TouchModel::Low),
                touch_mix_manual: false,
                owner_id: String::new(),
                arr: None,
                contract_start_date: None,
                renewal_date: None,
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                custom_attributes: Default::default(),
            },
            create_time: t,
            update_time: t,
            version: 1,
        }
    }

    async fn tag_rows(conn: &impl ConnectionTrait, id: Uuid) -> u64 {
        account_tag::Entity::find().filter(account_tag::Column::AccountId.eq(id)).count(conn).await.unwrap()
    }

    /// No tag row outlives its account or a change of its tags (no foreign
    /// key cascades to them on PostgreSQL); the API cannot see stale rows
    /// (the tag filter joins live accounts), so this is checked here.
    #[tokio::test]
    async fn tag_rows_follow_updates_and_deletes() {
        let db = banso_testkit::fresh_database().await.unwrap();
        let conn = db.connect::<crate::migration::Migrator>(crate::NAME).await.unwrap();
        let a = account("Acme", &["vip", "beta"]);
        insert(&conn, "acme", &a).await.unwrap();
        assert_eq!(tag_rows(&conn, a.id).await, 2);
        let mut next = account("Acme", &["vip"]);
        next.id = a.id;
        next.version = 2;
        assert!(update(&conn, "acme", &a, &next).await.unwrap());
        assert_eq!(tag_rows(&conn, a.id).await, 1);
        assert!(!update(&conn, "acme", &a, &next).await.unwrap(), "a stale version writes nothing");
        assert!(!delete(&conn, "acme", &a).await.unwrap(), "a stale version deletes nothing");
        assert!(delete(&conn, "acme", &next).await.unwrap());
        assert_eq!(tag_rows(&conn, a.id).await, 0, "no tag row outlives its account");
        assert!(find(&conn, "acme", a.id).await.unwrap().is_none());
    }
}
