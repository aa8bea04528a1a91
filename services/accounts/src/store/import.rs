//! Bulk import (CRM sync): upsert accounts by external_id, many rows per
//! statement, with their AccountCreated/AccountUpdated events.

use std::collections::{HashMap, HashSet};

use banso_events::{Envelope, outbox::PgBatch};
use banso_kit::{Error, Result};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, RuntimeErr, TransactionTrait, sea_query::Expr, sqlx,
};
use uuid::Uuid;

use super::{
    Store, account_active, account_from_model,
    entities::{account, account_tag},
};
use crate::domain::{Account, AccountFields, now};

/// What became of one import row.
#[derive(Debug)]
pub enum RowOutcome {
    Created,
    Updated,
    Unchanged,
}

impl Store {
    async fn accounts_by_external_id(&self, tenant: &str, ids: &[String]) -> Result<HashMap<String, Account>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(1000) {
            // An index probe on (tenant_id, external_id) per id whatever the
            // statistics; an IN list of 1,000 parameters could turn into a
            // scan of the tenant's accounts per lookup (measured: an import
            // quadratic in the tenant's size, docs/benchmarks.md).
            let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let by_external_id = banso_kit::db::text_in(&self.db, Expr::col(account::Column::ExternalId), &chunk);
            let rows = account::Entity::find()
                .filter(account::Column::TenantId.eq(tenant))
                .filter(by_external_id)
                .all(&self.db)
                .await?;
            for r in rows {
                let a = account_from_model(r)?;
                out.insert(a.fields.external_id.clone().unwrap_or_default(), a);
            }
        }
        Ok(out)
    }

    /// Upserts whole accounts by external_id, in row order: a row whose
    /// external_id appeared earlier in `rows` applies after it.
    pub async fn import_accounts(&self, tenant: &str, rows: Vec<AccountFields>) -> Result<Vec<Result<RowOutcome>>> {
        let prepared = self.prepare_import(tenant, rows).await?;
        self.finish_import(prepared).await
    }

    /// The reading half of [`Self::import_accounts`]: looks up the rows,
    /// settles the unchanged ones and encodes the new ones, writing nothing.
    /// An import stream prepares its next rows while the previous ones are
    /// written ([`Self::finish_import`]); rows whose external_ids that write
    /// may still create or change must wait for it.
    pub async fn prepare_import(&self, tenant: &str, rows: Vec<AccountFields>) -> Result<PreparedImport> {
        let mut p = PreparedImport {
            tenant: tenant.to_owned(),
            external_ids: rows.iter().map(|r| r.external_id.clone().unwrap_or_default()).collect(),
            results: (0..rows.len()).map(|_| None).collect(),
            pending: (0..rows.len()).collect(),
            rows: rows.into_iter().map(Some).collect(),
            first: None,
        };
        if !p.pending.is_empty() {
            p.first = Some(self.plan_round(&mut p).await?);
        }
        Ok(p)
    }

    /// The writing half of [`Self::import_accounts`]: writes the prepared
    /// round, then the rows that repeat an external_id, a round at a time.
    pub async fn finish_import(&self, mut p: PreparedImport) -> Result<Vec<Result<RowOutcome>>> {
        let mut next = p.first.take();
        while let Some(round) = next {
            self.apply_round(&mut p, round).await?;
            next = if p.pending.is_empty() { None } else { Some(self.plan_round(&mut p).await?) };
        }
        Ok(p.results.into_iter().map(|r| r.expect("every row has a result")).collect())
    }

    /// The next round of `p` (each external_id once), looked up and sorted:
    /// unchanged rows are settled, new ones encoded for their write.
    async fn plan_round(&self, p: &mut PreparedImport) -> Result<Round> {
        let mut seen = HashSet::new();
        let (round, later): (Vec<usize>, Vec<usize>) =
            p.pending.iter().partition(|i| seen.insert(p.external_ids[**i].as_str()));
        p.pending = later;
        let ids: Vec<String> = round.iter().map(|i| p.external_ids[*i].clone()).collect();
        let existing = self.accounts_by_external_id(&p.tenant, &ids).await?;
        let t = now();
        let mut updates = Vec::new();
        let mut rows = Vec::new();
        let mut accounts = Vec::new();
        for i in round {
            let fields = p.rows[i].take().expect("a row is planned once");
            match existing.get(&p.external_ids[i]) {
                Some(current) if current.fields == fields => p.results[i] = Some(Ok(RowOutcome::Unchanged)),
                Some(current) => updates.push((i, current.id, fields)),
                None => {
                    accounts.push(Account { id: Uuid::now_v7(), fields, create_time: t, update_time: t, version: 1 });
                    rows.push(i);
                }
            }
        }
        let encoded = Encoded::new(&p.tenant, &accounts, banso_kit::db::is_postgres(&self.db));
        Ok(Round { updates, creates: rows, accounts, encoded })
    }

    async fn apply_round(&self, p: &mut PreparedImport, round: Round) -> Result<()> {
        for (i, id, fields) in round.updates {
            let updated = self
                .update_account(&p.tenant, id, "", |f| {
                    *f = fields.clone();
                    Ok(())
                })
                .await;
            p.results[i] = Some(updated.map(|_| RowOutcome::Updated));
        }
        match self.create_many(&p.tenant, &round.accounts, round.encoded).await {
            Ok(()) => {
                for i in round.creates {
                    p.results[i] = Some(Ok(RowOutcome::Created));
                }
            }
            // Another writer created some of them meanwhile: one by one.
            Err(Error::AlreadyExists(_)) => {
                for (i, a) in round.creates.into_iter().zip(round.accounts) {
                    let r = self
                        .upsert_account(
                            &p.tenant,
                            a.fields.clone(),
                            crate::domain::ACCOUNT_UPDATABLE,
                            Ok(a.fields),
                            |_| Ok(()),
                        )
                        .await;
                    p.results[i] =
                        Some(r.map(|(_, created)| if created { RowOutcome::Created } else { RowOutcome::Updated }));
                }
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Creates in bulk: accounts, tags and events in one transaction, from
    /// what [`Encoded::new`] made of `accounts`.
    async fn create_many(&self, tenant: &str, accounts: &[Account], encoded: Encoded) -> Result<()> {
        if accounts.is_empty() {
            return Ok(());
        }
        match encoded {
            Encoded::Postgres(w) => {
                let PgWrite { accounts, tags, tag_accounts, events } = *w;
                // Three statements whatever the count, on sqlx directly.
                let mut txn = self.db.get_postgres_connection_pool().begin().await.map_err(sqlx_error)?;
                accounts.insert(&mut txn, tenant).await.map_err(sqlx_error)?;
                if !tags.is_empty() {
                    sqlx::query(
                        "INSERT INTO \"account_tags\" (tenant_id, tag, account_id) \
                         SELECT $1, tag, account_id FROM unnest($2::text[], $3::uuid[]) AS t(tag, account_id)",
                    )
                    .bind(tenant)
                    .bind(&tags)
                    .bind(&tag_accounts)
                    .execute(&mut *txn)
                    .await
                    .map_err(sqlx_error)?;
                }
                events.record(&mut txn).await.map_err(sqlx_error)?;
                txn.commit().await.map_err(sqlx_error)?;
                self.outbox.notify();
                Ok(())
            }
            Encoded::Sqlite { envelopes } => {
                let txn = self.db.begin().await?;
                // 21 bound values an account, 3 a tag: far below SQLite's limit.
                for chunk in accounts.chunks(1000) {
                    account::Entity::insert_many(chunk.iter().map(|a| account_active(tenant, a)))
                        .exec_without_returning(&txn)
                        .await?;
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
                    account_tag::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
                }
                banso_events::outbox::record_many(&txn, &envelopes).await?;
                self.commit(txn).await
            }
        }
    }
}

/// Rows of an import looked up and sorted, their first round ready to
/// write ([`Store::prepare_import`], [`Store::finish_import`]).
pub struct PreparedImport {
    tenant: String,
    external_ids: Vec<String>,
    /// Each row until a round takes it.
    rows: Vec<Option<AccountFields>>,
    results: Vec<Option<Result<RowOutcome>>>,
    /// Rows for later rounds (their external_id came earlier).
    pending: Vec<usize>,
    first: Option<Round>,
}

impl PreparedImport {
    /// The external_ids of its rows.
    pub fn external_ids(&self) -> impl Iterator<Item = &str> {
        self.external_ids.iter().map(String::as_str)
    }
}

/// One round of an import: each external_id at most once.
struct Round {
    /// Changed rows: index, the stored account's id, the new fields.
    updates: Vec<(usize, Uuid, AccountFields)>,
    /// Indexes of the new rows, and their accounts.
    creates: Vec<usize>,
    accounts: Vec<Account>,
    encoded: Encoded,
}

/// The arrays of a PostgreSQL bulk create.
struct PgWrite {
    accounts: PgAccounts,
    tags: Vec<String>,
    tag_accounts: Vec<Uuid>,
    events: PgBatch,
}

/// New accounts encoded for their write ahead of the transaction, so it
/// holds its connection only while the database works.
enum Encoded {
    /// Each column as one typed array (`INSERT … SELECT FROM unnest(…)`),
    /// the events as outbox rows.
    Postgres(Box<PgWrite>),
    /// The events; the rows go through sea-orm.
    Sqlite { envelopes: Vec<Envelope> },
}

impl Encoded {
    fn new(tenant: &str, accounts: &[Account], postgres: bool) -> Encoded {
        let envelopes: Vec<Envelope> = accounts
            .iter()
            .map(|a| banso_events::envelope::new(tenant, crate::NAME, crate::events::account_created(a)))
            .collect();
        if !postgres {
            return Encoded::Sqlite { envelopes };
        }
        let (tags, tag_accounts) =
            accounts.iter().flat_map(|a| a.fields.tags.iter().map(|t| (t.clone(), a.id))).unzip();
        Encoded::Postgres(Box::new(PgWrite {
            accounts: PgAccounts::new(accounts),
            tags,
            tag_accounts,
            events: PgBatch::new(&envelopes),
        }))
    }
}

/// One contact row: the account by id or by its external_id.
pub struct ContactRow {
    pub account_id: Option<Uuid>,
    pub account_external_id: Option<String>,
    pub fields: crate::domain::ContactFields,
}

impl Store {
    /// Upserts contacts by external_id, in row order. A row whose account
    /// does not exist fails alone.
    pub async fn import_contacts(&self, tenant: &str, rows: Vec<ContactRow>) -> Result<Vec<Result<RowOutcome>>> {
        use super::entities::contact;
        let ext_accounts: Vec<String> = rows.iter().filter_map(|r| r.account_external_id.clone()).collect();
        let accounts = self.accounts_by_external_id(tenant, &ext_accounts).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let account_id = match (row.account_id, &row.account_external_id) {
                (Some(id), _) => Some(id),
                (None, Some(ext)) => accounts.get(ext).map(|a| a.id),
                (None, None) => None,
            };
            let Some(account_id) = account_id else {
                out.push(Err(Error::not_found(
                    "account",
                    row.account_external_id.clone().unwrap_or_else(|| "(none given)".into()),
                )));
                continue;
            };
            let ext = row.fields.external_id.clone().unwrap_or_default();
            let existing = contact::Entity::find()
                .filter(contact::Column::TenantId.eq(tenant))
                .filter(contact::Column::ExternalId.eq(ext.as_str()))
                .one(&self.db)
                .await?;
            let outcome = match existing {
                Some(c) if c.account_id != account_id => Err(Error::FailedPrecondition {
                    reason: "CONTACT_ON_OTHER_ACCOUNT",
                    message: format!(
                        "contact {ext:?} belongs to another account; contacts do not move between accounts"
                    ),
                }),
                Some(c) => {
                    let current = self.get_contact(tenant, c.id).await?;
                    if current.fields == row.fields {
                        Ok(RowOutcome::Unchanged)
                    } else {
                        let new = row.fields.clone();
                        self.update_contact(tenant, c.id, "", |f| {
                            *f = new.clone();
                            Ok(())
                        })
                        .await
                        .map(|_| RowOutcome::Updated)
                    }
                }
                None => self.create_contact(tenant, account_id, row.fields, None).await.map(|_| RowOutcome::Created),
            };
            out.push(outcome);
        }
        Ok(out)
    }
}

/// A driver error as the service reports it (a unique violation is
/// ALREADY_EXISTS, a lost connection UNAVAILABLE), as for sea-orm's.
fn sqlx_error(e: sqlx::Error) -> Error {
    Error::from(DbErr::Exec(RuntimeErr::SqlxError(std::sync::Arc::new(e))))
}

/// Accounts as the columns of `accounts`, one array each, with exactly the
/// values [`super::account_active`] gives them (tags and attributes as the
/// same JSON).
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
    fn new(accounts: &[Account]) -> Self {
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
            c.owner_id.push(f.owner_id.clone());
            c.arr_currency.push(f.arr.as_ref().map(|m| m.currency_code.clone()));
            c.arr_amount_minor.push(f.arr.as_ref().map(|m| m.amount_minor));
            c.contract_start_date.push(f.contract_start_date);
            c.renewal_date.push(f.renewal_date);
            c.tags.push(serde_json::to_value(&f.tags).expect("tags serialize"));
            c.custom_attributes.push(serde_json::to_value(&f.custom_attributes).expect("attributes serialize"));
            c.create_time.push(a.create_time);
            c.update_time.push(a.update_time);
            c.version.push(a.version);
        }
        c
    }

    async fn insert(&self, conn: &mut sqlx::PgConnection, tenant: &str) -> std::result::Result<(), sqlx::Error> {
        // The JSON travels as jsonb, as sea-orm binds it for `account_active`.
        sqlx::query(
            "INSERT INTO \"accounts\" (id, tenant_id, name, external_id, industry, employee_count, revenue_band, \
               region, plan_tier, lifecycle_stage, touch_model, owner_id, arr_currency, arr_amount_minor, \
               contract_start_date, renewal_date, tags, custom_attributes, create_time, update_time, version) \
             SELECT id, $1, name, external_id, industry, employee_count, revenue_band, region, plan_tier, \
               lifecycle_stage, touch_model, owner_id, arr_currency, arr_amount_minor, contract_start_date, \
               renewal_date, tags::json, custom_attributes::json, create_time, update_time, version \
             FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::text[], \
               $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::int8[], $15::date[], \
               $16::date[], $17::jsonb[], $18::jsonb[], $19::timestamptz[], $20::timestamptz[], $21::int8[]) \
               AS r(id, name, external_id, industry, employee_count, revenue_band, region, plan_tier, \
               lifecycle_stage, touch_model, owner_id, arr_currency, arr_amount_minor, contract_start_date, \
               renewal_date, tags, custom_attributes, create_time, update_time, version)",
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
        .execute(conn)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use banso_events::outbox::{self, OutboxSignal};
    use sea_orm::PaginatorTrait;

    use super::*;
    use crate::domain::{LifecycleStage, Money, TouchModel};

    fn fields(external_id: &str, tags: &[&str]) -> AccountFields {
        AccountFields {
            name: format!("株式会社 {external_id}"),
            external_id: Some(external_id.to_owned()),
            industry: "manufacturing".into(),
            employee_count: None,
            revenue_band: "1-10M".into(),
            region: "Kanto".into(),
            plan_tier: "growth".into(),
            lifecycle_stage: LifecycleStage::Adoption,
            touch_model: TouchModel::Low,
            owner_id: "u-1".into(),
            arr: Some(Money { currency_code: "JPY".into(), amount_minor: 1_200_000 }),
            contract_start_date: None,
            renewal_date: NaiveDate::from_ymd_opt(2027, 3, 31),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            custom_attributes: Default::default(),
        }
    }

    /// A bulk create that runs into an existing external_id fails as
    /// ALREADY_EXISTS (so the import retries its rows one by one) and leaves
    /// nothing behind: no account, tag or event of the batch.
    #[tokio::test]
    async fn a_bulk_create_that_collides_writes_nothing() {
        let db = banso_testkit::fresh_database().await.unwrap();
        let conn = db.connect::<crate::migration::Migrator>(crate::NAME).await.unwrap();
        let store = Store::new(conn.clone(), OutboxSignal::default());
        store.create_account("acme", fields("crm-1", &[]), None).await.unwrap();
        let t = now();
        let batch: Vec<Account> = [fields("crm-2", &["vip", "apac"]), fields("crm-1", &["vip"])]
            .into_iter()
            .map(|fields| Account { id: Uuid::now_v7(), fields, create_time: t, update_time: t, version: 1 })
            .collect();
        let encoded = Encoded::new("acme", &batch, banso_kit::db::is_postgres(&conn));
        let err = store.create_many("acme", &batch, encoded).await.unwrap_err();
        assert!(matches!(err, Error::AlreadyExists(_)), "{err:?}");
        assert_eq!(account::Entity::find().count(&conn).await.unwrap(), 1);
        assert_eq!(account_tag::Entity::find().count(&conn).await.unwrap(), 0);
        assert_eq!(outbox::entity::Entity::find().count(&conn).await.unwrap(), 1);

        // The import itself gets the row right: crm-1 updated, crm-2 created.
        let rows = vec![fields("crm-2", &["vip", "apac"]), fields("crm-1", &["vip"])];
        let outcomes = store.import_accounts("acme", rows).await.unwrap();
        assert!(matches!(outcomes[..], [Ok(RowOutcome::Created), Ok(RowOutcome::Updated)]), "{outcomes:?}");
        let stored = store.find_account_by_external_id("acme", "crm-2").await.unwrap().unwrap();
        assert_eq!(stored.fields, fields("crm-2", &["vip", "apac"]), "every column round-trips");
        assert_eq!(account_tag::Entity::find().count(&conn).await.unwrap(), 3);
        assert_eq!(outbox::entity::Entity::find().count(&conn).await.unwrap(), 3);
    }
}
