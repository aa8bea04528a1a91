//! The repository: the only code that touches the `accounts` schema. Every
//! method takes the tenant, and a row of another tenant is NOT_FOUND.

pub mod activities;
pub mod contracts;
pub mod entities;
pub mod import;
pub mod segments;

use std::collections::BTreeMap;

use banso_events::{Payload, outbox};
use banso_kit::{Error, Result, idempotency};
use banso_proto::events::contact_changed::Change;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, Order,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, ExprTrait, Func, Query, SimpleExpr},
};
use uuid::Uuid;

use crate::domain::{
    Account, AccountCursor, AccountFields, AccountFilter, AccountOrder, AccountSort, AttrValue, Contact, ContactFields,
    ContactFilter, ContactLevel, LifecycleStage, Money, SortKey, TenantSettings, TouchModel, now,
};
use entities::{account, account_tag, contact, tenant_settings};

const OP_CREATE_ACCOUNT: &str = "CreateAccount";
const OP_CREATE_CONTACT: &str = "CreateContact";
/// Attempts at an update whose caller sent no etag, when a concurrent write
/// keeps winning the race; between them, [`backoff`].
pub(crate) const UNCONDITIONAL_UPDATE_ATTEMPTS: u32 = 8;

/// Waits before retry `attempt` (from 0): exponential with full jitter,
/// so racing writers spread out instead of colliding again.
pub(crate) async fn backoff(attempt: u32) {
    if attempt > 0 {
        let cap_ms = 2u64.pow(Ord::min(attempt, 7));
        tokio::time::sleep(std::time::Duration::from_micros(rand::random_range(0..cap_ms * 1000))).await;
    }
}

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    outbox: outbox::OutboxSignal,
}

pub(crate) fn corrupt(what: &str, value: impl std::fmt::Display) -> Error {
    Error::internal(anyhow::anyhow!("stored {what} {value} is not valid"))
}

pub(crate) fn account_from_model(m: account::Model) -> Result<Account> {
    let arr = match (m.arr_currency, m.arr_amount_minor) {
        (Some(currency_code), Some(amount_minor)) => Some(Money { currency_code, amount_minor }),
        _ => None,
    };
    let tags: Vec<String> = serde_json::from_value(m.tags).map_err(|e| corrupt("tags", e))?;
    let custom_attributes: BTreeMap<String, AttrValue> =
        serde_json::from_value(m.custom_attributes).map_err(|e| corrupt("custom_attributes", e))?;
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
            touch_model: TouchModel::parse(&m.touch_model).ok_or_else(|| corrupt("touch_model", &m.touch_model))?,
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

/// The columns an account's fields are stored in.
pub(crate) fn account_active(tenant: &str, a: &Account) -> account::ActiveModel {
    let f = &a.fields;
    account::ActiveModel {
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
        owner_id: Set(f.owner_id.clone()),
        arr_currency: Set(f.arr.as_ref().map(|m| m.currency_code.clone())),
        arr_amount_minor: Set(f.arr.as_ref().map(|m| m.amount_minor)),
        contract_start_date: Set(f.contract_start_date),
        renewal_date: Set(f.renewal_date),
        tags: Set(serde_json::to_value(&f.tags).expect("tags serialize")),
        custom_attributes: Set(serde_json::to_value(&f.custom_attributes).expect("attributes serialize")),
        create_time: Set(a.create_time),
        update_time: Set(a.update_time),
        version: Set(a.version),
    }
}

fn contact_from_model(m: contact::Model) -> Result<Contact> {
    let level = match m.level.as_deref() {
        None => None,
        Some(l) => Some(ContactLevel::parse(l).ok_or_else(|| corrupt("contact level", l))?),
    };
    Ok(Contact {
        id: m.id,
        account_id: m.account_id,
        fields: ContactFields {
            name: m.name,
            email: m.email,
            title: m.title,
            department: m.department,
            level,
            champion: m.champion,
            decision_maker: m.decision_maker,
            external_id: m.external_id,
        },
        create_time: m.create_time,
        update_time: m.update_time,
        version: m.version,
    })
}

fn contact_active(tenant: &str, c: &Contact) -> contact::ActiveModel {
    let f = &c.fields;
    contact::ActiveModel {
        id: Set(c.id),
        tenant_id: Set(tenant.to_owned()),
        account_id: Set(c.account_id),
        name: Set(f.name.clone()),
        email: Set(f.email.clone()),
        email_lower: Set(f.email.to_lowercase()),
        title: Set(f.title.clone()),
        department: Set(f.department.clone()),
        level: Set(f.level.map(|l| l.as_str().to_owned())),
        champion: Set(f.champion),
        decision_maker: Set(f.decision_maker),
        external_id: Set(f.external_id.clone()),
        create_time: Set(c.create_time),
        update_time: Set(c.update_time),
        version: Set(c.version),
    }
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

impl Store {
    pub fn new(db: DatabaseConnection, outbox: outbox::OutboxSignal) -> Self {
        Store { db, outbox }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Records an event in the transaction of the change it reports.
    pub(crate) async fn emit(&self, conn: &impl ConnectionTrait, tenant: &str, payload: Payload) -> Result<()> {
        outbox::record(conn, &banso_events::envelope::new(tenant, crate::NAME, payload)).await?;
        Ok(())
    }

    /// Commits and wakes the relay, so the events leave at once.
    pub(crate) async fn commit(&self, txn: DatabaseTransaction) -> Result<()> {
        txn.commit().await?;
        self.outbox.notify();
        Ok(())
    }

    // ----- accounts -----

    async fn find_account(&self, conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<Account>> {
        account::Entity::find_by_id(id)
            .filter(account::Column::TenantId.eq(tenant))
            .one(conn)
            .await?
            .map(account_from_model)
            .transpose()
    }

    pub async fn get_account(&self, tenant: &str, id: Uuid) -> Result<Account> {
        self.find_account(&self.db, tenant, id).await?.ok_or_else(|| Error::not_found("account", id.to_string()))
    }

    /// The accounts in the order of `ids`; NOT_FOUND names the first missing one.
    pub async fn batch_get_accounts(&self, tenant: &str, ids: &[Uuid]) -> Result<Vec<Account>> {
        let rows = account::Entity::find()
            .filter(account::Column::TenantId.eq(tenant))
            .filter(account::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?;
        let mut by_id = BTreeMap::new();
        for r in rows {
            let a = account_from_model(r)?;
            by_id.insert(a.id, a);
        }
        ids.iter().map(|id| by_id.get(id).cloned().ok_or_else(|| Error::not_found("account", id.to_string()))).collect()
    }

    pub async fn find_account_by_external_id(&self, tenant: &str, external_id: &str) -> Result<Option<Account>> {
        account::Entity::find()
            .filter(account::Column::TenantId.eq(tenant))
            .filter(account::Column::ExternalId.eq(external_id))
            .one(&self.db)
            .await?
            .map(account_from_model)
            .transpose()
    }

    /// Up to `limit` accounts after `after`, in `order`.
    pub async fn list_accounts(
        &self,
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
            // and compare case-sensitively on both (unlike SQLite's LIKE).
            let n = prefix.chars().count() as i32;
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
                (SortKey::Text(s), Some(c)) => {
                    after_condition(c, Some(s.as_str().into()), cursor.id, order.desc, false)
                }
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
        q.limit(limit).all(&self.db).await?.into_iter().map(account_from_model).collect()
    }

    async fn write_tags(&self, conn: &impl ConnectionTrait, tenant: &str, a: &Account, replace: bool) -> Result<()> {
        if replace {
            account_tag::Entity::delete_many().filter(account_tag::Column::AccountId.eq(a.id)).exec(conn).await?;
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

    /// Creates an account. With a `request_id`, a retry returns the account
    /// the first attempt created.
    pub async fn create_account(
        &self,
        tenant: &str,
        fields: AccountFields,
        request_id: Option<&str>,
    ) -> Result<Account> {
        if let Some(key) = request_id
            && let Some(id) = idempotency::lookup(&self.db, tenant, OP_CREATE_ACCOUNT, key).await?
        {
            return self.get_account(tenant, Uuid::parse_str(&id).map_err(Error::internal)?).await;
        }
        let t = now();
        let account = Account { id: Uuid::now_v7(), fields, create_time: t, update_time: t, version: 1 };
        let txn = self.db.begin().await?;
        let result = async {
            account::Entity::insert(account_active(tenant, &account)).exec_without_returning(&txn).await?;
            self.write_tags(&txn, tenant, &account, false).await?;
            if let Some(key) = request_id {
                idempotency::record(&txn, tenant, OP_CREATE_ACCOUNT, key, &account.id.to_string()).await?;
            }
            self.emit(&txn, tenant, crate::events::account_created(&account)).await?;
            Ok::<_, Error>(())
        }
        .await;
        match result {
            Ok(()) => {
                self.commit(txn).await?;
                Ok(account)
            }
            Err(Error::AlreadyExists(_)) if request_id.is_some() => {
                txn.rollback().await?;
                // Either a concurrent attempt with the same key won, or the
                // external_id is taken.
                match idempotency::lookup(&self.db, tenant, OP_CREATE_ACCOUNT, request_id.unwrap_or_default()).await? {
                    Some(id) => self.get_account(tenant, Uuid::parse_str(&id).map_err(Error::internal)?).await,
                    None => Err(external_id_taken("account", &account.fields.external_id)),
                }
            }
            Err(Error::AlreadyExists(_)) => Err(external_id_taken("account", &account.fields.external_id)),
            Err(e) => Err(e),
        }
    }

    /// Reads the account, lets `change` edit it (and refuse), and writes it
    /// back if nobody wrote in between. With an etag, a stale one is ABORTED;
    /// without, a lost race is retried.
    pub async fn update_account(
        &self,
        tenant: &str,
        id: Uuid,
        etag: &str,
        change: impl Fn(&mut AccountFields) -> Result<()>,
    ) -> Result<Account> {
        for attempt in 0..UNCONDITIONAL_UPDATE_ATTEMPTS {
            backoff(attempt).await;
            let current = self.get_account(tenant, id).await?;
            crate::domain::check_etag(etag, current.version)?;
            let mut next = current.clone();
            change(&mut next.fields)?;
            if next.fields == current.fields {
                return Ok(current);
            }
            next.update_time = now();
            next.version = current.version + 1;
            let txn = self.db.begin().await?;
            // The versioned UPDATE comes first, so SQLite takes its write lock
            // at once instead of upgrading a read lock.
            let res = account::Entity::update_many()
                .set(account_active(tenant, &next))
                .filter(account::Column::Id.eq(id))
                .filter(account::Column::TenantId.eq(tenant))
                .filter(account::Column::Version.eq(current.version))
                .exec(&txn)
                .await
                .map_err(Error::from);
            let res = match res {
                Err(Error::AlreadyExists(_)) => Err(external_id_taken("account", &next.fields.external_id)),
                other => other,
            }?;
            if res.rows_affected == 1 {
                if next.fields.tags != current.fields.tags {
                    self.write_tags(&txn, tenant, &next, true).await?;
                }
                let changed = next.fields.changed_fields(&current.fields);
                self.emit(&txn, tenant, crate::events::account_updated(&next, &changed)).await?;
                self.commit(txn).await?;
                return Ok(next);
            }
            txn.rollback().await?;
            if !etag.is_empty() {
                // Someone else wrote since the caller read; report it as the
                // stale etag it is (or NOT_FOUND if it is gone).
                let now = self.get_account(tenant, id).await?;
                crate::domain::check_etag(etag, now.version)?;
            }
        }
        Err(Error::Aborted {
            reason: "CONCURRENT_UPDATE",
            message: format!("account {id} is being changed concurrently; retry"),
        })
    }

    pub async fn delete_account(&self, tenant: &str, id: Uuid, etag: &str) -> Result<()> {
        let current = self.get_account(tenant, id).await?;
        crate::domain::check_etag(etag, current.version)?;
        let txn = self.db.begin().await?;
        let res = account::Entity::delete_many()
            .filter(account::Column::Id.eq(id))
            .filter(account::Column::TenantId.eq(tenant))
            .filter(account::Column::Version.eq(current.version))
            .exec(&txn)
            .await?;
        if res.rows_affected == 1 {
            // No foreign key cascades to the tag rows (migration M0003).
            account_tag::Entity::delete_many()
                .filter(account_tag::Column::TenantId.eq(tenant))
                .filter(account_tag::Column::AccountId.eq(id))
                .exec(&txn)
                .await?;
            self.emit(&txn, tenant, crate::events::account_deleted(&current)).await?;
            return self.commit(txn).await;
        }
        txn.rollback().await?;
        let now = self.get_account(tenant, id).await?;
        crate::domain::check_etag(etag, now.version)?;
        Err(Error::Aborted {
            reason: "CONCURRENT_UPDATE",
            message: format!("account {id} changed while being deleted; retry"),
        })
    }

    /// Updates `paths` of the account with `update.external_id`, or, if there
    /// is none, creates `create` (the whole account, or why it is invalid).
    pub async fn upsert_account(
        &self,
        tenant: &str,
        update: AccountFields,
        paths: &[&str],
        create: Result<AccountFields>,
        check: impl Fn(&AccountFields) -> Result<()>,
    ) -> Result<(Account, bool)> {
        let fields = update;
        let external_id = fields.external_id.clone().unwrap_or_default();
        for attempt in 0..UNCONDITIONAL_UPDATE_ATTEMPTS {
            backoff(attempt).await;
            if let Some(existing) = self.find_account_by_external_id(tenant, &external_id).await? {
                let updated = self
                    .update_account(tenant, existing.id, "", |f| {
                        f.apply(fields.clone(), paths);
                        check(f)
                    })
                    .await;
                match updated {
                    // Deleted between the lookup and the update: look again.
                    Err(Error::NotFound { .. }) => continue,
                    other => return other.map(|a| (a, false)),
                }
            }
            let new = match &create {
                Ok(f) => f.clone(),
                Err(Error::InvalidArgument(vs)) => return Err(Error::InvalidArgument(vs.clone())),
                Err(e) => return Err(Error::internal(anyhow::anyhow!("{e}"))),
            };
            match self.create_account(tenant, new, None).await {
                // Created concurrently by another upsert: update it instead.
                Err(Error::AlreadyExists(_)) => continue,
                other => return other.map(|a| (a, true)),
            }
        }
        Err(Error::Aborted {
            reason: "CONCURRENT_UPDATE",
            message: format!("account with external_id {external_id:?} is being changed concurrently; retry"),
        })
    }

    // ----- contacts -----

    pub async fn get_contact(&self, tenant: &str, id: Uuid) -> Result<Contact> {
        contact::Entity::find_by_id(id)
            .filter(contact::Column::TenantId.eq(tenant))
            .one(&self.db)
            .await?
            .map(contact_from_model)
            .transpose()?
            .ok_or_else(|| Error::not_found("contact", id.to_string()))
    }

    pub async fn list_contacts(
        &self,
        tenant: &str,
        filter: &ContactFilter,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Contact>> {
        use contact::Column as C;
        let mut q = contact::Entity::find().filter(C::TenantId.eq(tenant));
        if let Some(a) = filter.account_id {
            q = q.filter(C::AccountId.eq(a));
        }
        if let Some(l) = filter.level {
            q = q.filter(C::Level.eq(l.as_str()));
        }
        if filter.champions_only {
            q = q.filter(C::Champion.eq(true));
        }
        if filter.decision_makers_only {
            q = q.filter(C::DecisionMaker.eq(true));
        }
        if let Some(e) = &filter.email {
            q = q.filter(C::EmailLower.eq(e.as_str()));
        }
        if let Some(id) = after {
            q = q.filter(C::Id.gt(id));
        }
        q.order_by(C::Id, Order::Asc).limit(limit).all(&self.db).await?.into_iter().map(contact_from_model).collect()
    }

    pub async fn create_contact(
        &self,
        tenant: &str,
        account_id: Uuid,
        fields: ContactFields,
        request_id: Option<&str>,
    ) -> Result<Contact> {
        if let Some(key) = request_id
            && let Some(id) = idempotency::lookup(&self.db, tenant, OP_CREATE_CONTACT, key).await?
        {
            return self.get_contact(tenant, Uuid::parse_str(&id).map_err(Error::internal)?).await;
        }
        // The account must exist in this tenant; a foreign key alone would
        // accept another tenant's account.
        let exists = account::Entity::find_by_id(account_id)
            .filter(account::Column::TenantId.eq(tenant))
            .count(&self.db)
            .await?;
        if exists == 0 {
            return Err(Error::not_found("account", account_id.to_string()));
        }
        let t = now();
        let c = Contact { id: Uuid::now_v7(), account_id, fields, create_time: t, update_time: t, version: 1 };
        let txn = self.db.begin().await?;
        let result = async {
            contact::Entity::insert(contact_active(tenant, &c)).exec_without_returning(&txn).await?;
            if let Some(key) = request_id {
                idempotency::record(&txn, tenant, OP_CREATE_CONTACT, key, &c.id.to_string()).await?;
            }
            self.emit(&txn, tenant, crate::events::contact_changed(&c, Change::Created)).await?;
            Ok::<_, Error>(())
        }
        .await;
        match result {
            Ok(()) => {
                txn.commit().await.map_err(|e| match Error::from(e) {
                    Error::Internal(_) => Error::not_found("account", account_id.to_string()),
                    other => other,
                })?;
                self.outbox.notify();
                Ok(c)
            }
            Err(Error::AlreadyExists(_)) => {
                txn.rollback().await?;
                if let Some(key) = request_id
                    && let Some(id) = idempotency::lookup(&self.db, tenant, OP_CREATE_CONTACT, key).await?
                {
                    return self.get_contact(tenant, Uuid::parse_str(&id).map_err(Error::internal)?).await;
                }
                Err(external_id_taken("contact", &c.fields.external_id))
            }
            Err(e) => {
                txn.rollback().await.ok();
                // The account was deleted between the check and the insert.
                if self.find_account(&self.db, tenant, account_id).await?.is_none() {
                    return Err(Error::not_found("account", account_id.to_string()));
                }
                Err(e)
            }
        }
    }

    pub async fn update_contact(
        &self,
        tenant: &str,
        id: Uuid,
        etag: &str,
        change: impl Fn(&mut ContactFields) -> Result<()>,
    ) -> Result<Contact> {
        for attempt in 0..UNCONDITIONAL_UPDATE_ATTEMPTS {
            backoff(attempt).await;
            let current = self.get_contact(tenant, id).await?;
            crate::domain::check_etag(etag, current.version)?;
            let mut next = current.clone();
            change(&mut next.fields)?;
            if next.fields == current.fields {
                return Ok(current);
            }
            next.update_time = now();
            next.version = current.version + 1;
            let txn = self.db.begin().await?;
            let res = contact::Entity::update_many()
                .set(contact_active(tenant, &next))
                .filter(contact::Column::Id.eq(id))
                .filter(contact::Column::TenantId.eq(tenant))
                .filter(contact::Column::Version.eq(current.version))
                .exec(&txn)
                .await
                .map_err(|e| match Error::from(e) {
                    Error::AlreadyExists(_) => external_id_taken("contact", &next.fields.external_id),
                    other => other,
                })?;
            if res.rows_affected == 1 {
                self.emit(&txn, tenant, crate::events::contact_changed(&next, Change::Updated)).await?;
                self.commit(txn).await?;
                return Ok(next);
            }
            txn.rollback().await?;
            if !etag.is_empty() {
                let now = self.get_contact(tenant, id).await?;
                crate::domain::check_etag(etag, now.version)?;
            }
        }
        Err(Error::Aborted {
            reason: "CONCURRENT_UPDATE",
            message: format!("contact {id} is being changed concurrently; retry"),
        })
    }

    pub async fn delete_contact(&self, tenant: &str, id: Uuid, etag: &str) -> Result<()> {
        let current = self.get_contact(tenant, id).await?;
        crate::domain::check_etag(etag, current.version)?;
        let txn = self.db.begin().await?;
        let res = contact::Entity::delete_many()
            .filter(contact::Column::Id.eq(id))
            .filter(contact::Column::TenantId.eq(tenant))
            .filter(contact::Column::Version.eq(current.version))
            .exec(&txn)
            .await?;
        if res.rows_affected == 1 {
            self.emit(&txn, tenant, crate::events::contact_changed(&current, Change::Deleted)).await?;
            return self.commit(txn).await;
        }
        txn.rollback().await?;
        let now = self.get_contact(tenant, id).await?;
        crate::domain::check_etag(etag, now.version)?;
        Err(Error::Aborted {
            reason: "CONCURRENT_UPDATE",
            message: format!("contact {id} changed while being deleted; retry"),
        })
    }

    // ----- tenant settings -----

    pub async fn get_settings(&self, tenant: &str) -> Result<TenantSettings> {
        Ok(tenant_settings::Entity::find_by_id(tenant.to_owned())
            .one(&self.db)
            .await?
            .map(|m| TenantSettings {
                time_zone: m.time_zone,
                fiscal_year_start_month: m.fiscal_year_start_month as u32,
                default_currency_code: m.default_currency_code,
                update_time: Some(m.update_time),
                version: m.version,
            })
            .unwrap_or_default())
    }

    pub async fn update_settings(
        &self,
        tenant: &str,
        etag: &str,
        change: impl FnOnce(&mut TenantSettings) -> Result<()>,
    ) -> Result<TenantSettings> {
        let current = self.get_settings(tenant).await?;
        crate::domain::check_etag(etag, current.version)?;
        let mut next = current.clone();
        change(&mut next)?;
        next.version = current.version + 1;
        next.update_time = Some(now());
        let active = tenant_settings::ActiveModel {
            tenant_id: Set(tenant.to_owned()),
            time_zone: Set(next.time_zone.clone()),
            fiscal_year_start_month: Set(next.fiscal_year_start_month as i32),
            default_currency_code: Set(next.default_currency_code.clone()),
            update_time: Set(next.update_time.unwrap_or_else(now)),
            version: Set(next.version),
        };
        let conflict = || Error::Aborted {
            reason: "ETAG_MISMATCH",
            message: "tenant settings changed concurrently; read again and retry".into(),
        };
        let txn = self.db.begin().await?;
        if current.version == 0 {
            // First write: the insert races other first writes on the key.
            tenant_settings::Entity::insert(active).exec_without_returning(&txn).await.map_err(
                |e| match Error::from(e) {
                    Error::AlreadyExists(_) => conflict(),
                    other => other,
                },
            )?;
        } else {
            let res = tenant_settings::Entity::update_many()
                .set(active)
                .filter(tenant_settings::Column::TenantId.eq(tenant))
                .filter(tenant_settings::Column::Version.eq(current.version))
                .exec(&txn)
                .await?;
            if res.rows_affected == 0 {
                return Err(conflict());
            }
        }
        if next != current {
            self.emit(&txn, tenant, crate::events::settings_changed(&next)).await?;
        }
        self.commit(txn).await?;
        Ok(next)
    }
}

fn external_id_taken(resource: &str, external_id: &Option<String>) -> Error {
    Error::AlreadyExists(format!(
        "another {resource} of this tenant already has external_id {:?}",
        external_id.as_deref().unwrap_or_default()
    ))
}
