//! An import's bulk writes: many new accounts in one transaction. On
//! PostgreSQL each column travels as one typed array (`INSERT … SELECT FROM
//! unnest(…)`, three statements whatever the count, on the driver itself:
//! docs/benchmarks.md); elsewhere through sea-orm, many rows a statement.

use banso_kit::Result;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, sqlx};
use uuid::Uuid;

use super::{
    accounts::{active, json_columns},
    entities::{account, account_tag},
};
use crate::domain::{Account, MixChange};

/// Inserts new accounts and their tags through sea-orm (SQLite).
/// ALREADY_EXISTS: an external_id is taken (nothing is written then, with
/// the transaction's rollback).
pub(crate) async fn insert_many(conn: &impl ConnectionTrait, tenant: &str, accounts: &[Account]) -> Result<()> {
    // 21 bound values an account, 3 a tag: far below SQLite's limit.
    for chunk in accounts.chunks(1000) {
        let rows = chunk.iter().map(|a| active(tenant, a)).collect::<Result<Vec<_>>>()?;
        account::Entity::insert_many(rows).exec_without_returning(conn).await?;
    }
    let tags: Vec<account_tag::ActiveModel> = accounts
        .iter()
        .flat_map(|a| {
            a.fields.tags.iter().map(|t| account_tag::ActiveModel {
                tenant_id: Set(tenant.to_owned()),
                tag: Set(t.clone()),
                account_id: Set(a.id),
            })
        })
        .collect();
    for chunk in tags.chunks(10_000) {
        account_tag::Entity::insert_many(chunk.to_vec()).exec_without_returning(conn).await?;
    }
    Ok(())
}

/// New accounts and their tags as the arrays of PostgreSQL's bulk insert,
/// encoded ahead of the transaction so it holds its connection only while
/// the database works.
pub(crate) struct PgRows {
    accounts: PgAccounts,
    /// Each account's first touch mix, for its history: who set it.
    history_ids: Vec<Uuid>,
    set_by: Vec<&'static str>,
    setters: Vec<String>,
    tags: Vec<String>,
    tag_accounts: Vec<Uuid>,
}

impl PgRows {
    pub(crate) fn new(accounts: &[Account], changes: &[MixChange]) -> Result<PgRows> {
        let (tags, tag_accounts) =
            accounts.iter().flat_map(|a| a.fields.tags.iter().map(|t| (t.clone(), a.id))).unzip();
        Ok(PgRows {
            accounts: PgAccounts::new(accounts)?,
            history_ids: changes.iter().map(|c| c.id).collect(),
            set_by: changes.iter().map(|c| c.set_by.as_str()).collect(),
            setters: changes.iter().map(|c| c.setter.clone()).collect(),
            tags,
            tag_accounts,
        })
    }

    /// Inserts them. ALREADY_EXISTS: an external_id is taken.
    pub(crate) async fn insert(&self, conn: &mut sqlx::PgConnection, tenant: &str) -> Result<()> {
        self.accounts.insert(&mut *conn, tenant).await?;
        // The mix as created is the first of each account's history.
        sqlx::query(
            "INSERT INTO \"touch_mix_history\" (id, tenant_id, account_id, change_time, touch_mix, set_by, setter) \
             SELECT h, $1, a, t, m::json, b, s FROM unnest($2::uuid[], $3::uuid[], $4::timestamptz[], \
               $5::text[], $6::jsonb[], $7::text[]) AS r(h, a, t, b, m, s)",
        )
        .bind(tenant)
        .bind(&self.history_ids)
        .bind(&self.accounts.id)
        .bind(&self.accounts.update_time)
        .bind(&self.set_by)
        .bind(&self.accounts.touch_mix)
        .bind(&self.setters)
        .execute(&mut *conn)
        .await?;
        if !self.tags.is_empty() {
            sqlx::query(
                "INSERT INTO \"account_tags\" (tenant_id, tag, account_id) \
                 SELECT $1, tag, account_id FROM unnest($2::text[], $3::uuid[]) AS t(tag, account_id)",
            )
            .bind(tenant)
            .bind(&self.tags)
            .bind(&self.tag_accounts)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// Accounts as the columns of `accounts`, one array each, with exactly the
/// values [`super::accounts::active`] gives them (tags and attributes as
/// the same JSON).
struct PgAccounts {
    id: Vec<Uuid>,
    name: Vec<String>,
    external_id: Vec<Option<String>>,
    industry: Vec<String>,
    employee_count: Vec<Option<i64>>,
    revenue_band: Vec<String>,
    region: Vec<String>,
    plan_tier: Vec<String>,
    lifecycle_stage: Vec<&'static str>,
    touch_model: Vec<&'static str>,
    touch_mix: Vec<serde_json::Value>,
    touch_mix_manual: Vec<bool>,
    owner_id: Vec<String>,
    arr_currency: Vec<Option<String>>,
    arr_amount_minor: Vec<Option<i64>>,
    contract_start_date: Vec<Option<NaiveDate>>,
    renewal_date: Vec<Option<NaiveDate>>,
    tags: Vec<serde_json::Value>,
    custom_attributes: Vec<serde_json::Value>,
    create_time: Vec<DateTime<Utc>>,
    update_time: Vec<DateTime<Utc>>,
    version: Vec<i64>,
}

impl PgAccounts {
    fn new(accounts: &[Account]) -> Result<Self> {
        let n = accounts.len();
        let mut c = PgAccounts {
            id: Vec::with_capacity(n),
            name: Vec::with_capacity(n),
            external_id: Vec::with_capacity(n),
            industry: Vec::with_capacity(n),
            employee_count: Vec::with_capacity(n),
            revenue_band: Vec::with_capacity(n),
            region: Vec::with_capacity(n),
            plan_tier: Vec::with_capacity(n),
            lifecycle_stage: Vec::with_capacity(n),
            touch_model: Vec::with_capacity(n),
            touch_mix: Vec::with_capacity(n),
            touch_mix_manual: Vec::with_capacity(n),
            owner_id: Vec::with_capacity(n),
            arr_currency: Vec::with_capacity(n),
            arr_amount_minor: Vec::with_capacity(n),
            contract_start_date: Vec::with_capacity(n),
            renewal_date: Vec::with_capacity(n),
            tags: Vec::with_capacity(n),
            custom_attributes: Vec::with_capacity(n),
            create_time: Vec::with_capacity(n),
            update_time: Vec::with_capacity(n),
            version: Vec::with_capacity(n),
        };
        for a in accounts {
            let f = &a.fields;
            let (tags, attributes, mix) = json_columns(f)?;
            c.id.push(a.id);
            c.name.push(f.name.clone());
            c.external_id.push(f.external_id.clone());
            c.industry.push(f.industry.clone());
            c.employee_count.push(f.employee_count);
            c.revenue_band.push(f.revenue_band.clone());
            c.region.push(f.region.clone());
            c.plan_tier.push(f.plan_tier.clone());
            c.lifecycle_stage.push(f.lifecycle_stage.as_str());
            c.touch_model.push(f.touch_model.as_str());
            c.touch_mix.push(mix);
            c.touch_mix_manual.push(f.touch_mix_manual);
            c.owner_id.push(f.owner_id.clone());
            c.arr_currency.push(f.arr.as_ref().map(|m| m.currency_code.clone()));
            c.arr_amount_minor.push(f.arr.as_ref().map(|m| m.amount_minor));
            c.contract_start_date.push(f.contract_start_date);
            c.renewal_date.push(f.renewal_date);
            c.tags.push(tags);
            c.custom_attributes.push(attributes);
            c.create_time.push(a.create_time);
            c.update_time.push(a.update_time);
            c.version.push(a.version);
        }
        Ok(c)
    }

    async fn insert(&self, conn: &mut sqlx::PgConnection, tenant: &str) -> std::result::Result<(), sqlx::Error> {
        // The JSON travels as jsonb, as sea-orm binds it for `active`.
        sqlx::query(
            "INSERT INTO \"accounts\" (id, tenant_id, name, external_id, industry, employee_count, revenue_band, \
               region, plan_tier, lifecycle_stage, touch_model, owner_id, arr_currency, arr_amount_minor, \
               contract_start_date, renewal_date, tags, custom_attributes, create_time, update_time, version, \
               touch_mix, touch_mix_manual) \
             SELECT id, $1, name, external_id, industry, employee_count, revenue_band, region, plan_tier, \
               lifecycle_stage, touch_model, owner_id, arr_currency, arr_amount_minor, contract_start_date, \
               renewal_date, tags::json, custom_attributes::json, create_time, update_time, version, \
               touch_mix::json, touch_mix_manual \
             FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::text[], \
               $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::int8[], $15::date[], \
               $16::date[], $17::jsonb[], $18::jsonb[], $19::timestamptz[], $20::timestamptz[], $21::int8[], \
               $22::jsonb[], $23::bool[]) \
               AS r(id, name, external_id, industry, employee_count, revenue_band, region, plan_tier, \
               lifecycle_stage, touch_model, owner_id, arr_currency, arr_amount_minor, contract_start_date, \
               renewal_date, tags, custom_attributes, create_time, update_time, version, touch_mix, \
               touch_mix_manual)",
        )
        .bind(tenant)
        .bind(&self.id)
        .bind(&self.name)
        .bind(&self.external_id)
        .bind(&self.industry)
        .bind(&self.employee_count)
        .bind(&self.revenue_band)
        .bind(&self.region)
        .bind(&self.plan_tier)
        .bind(&self.lifecycle_stage)
        .bind(&self.touch_model)
        .bind(&self.owner_id)
        .bind(&self.arr_currency)
        .bind(&self.arr_amount_minor)
        .bind(&self.contract_start_date)
        .bind(&self.renewal_date)
        .bind(&self.tags)
        .bind(&self.custom_attributes)
        .bind(&self.create_time)
        .bind(&self.update_time)
        .bind(&self.version)
        .bind(&self.touch_mix)
        .bind(&self.touch_mix_manual)
        .execute(conn)
        .await?;
        Ok(())
    }
}
