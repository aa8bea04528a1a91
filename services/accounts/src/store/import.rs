//! Bulk import (CRM sync): upsert accounts by external_id, many rows per
//! statement, with their AccountCreated/AccountUpdated events.

use std::collections::{HashMap, HashSet};

use banso_kit::{Error, Result};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, EntityTrait, QueryFilter, TransactionTrait,
    sea_query::{Expr, ExprTrait, extension::postgres::PgFunc},
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
        let postgres = banso_kit::db::is_postgres(&self.db);
        for chunk in ids.chunks(1000) {
            // On PostgreSQL the ids travel as one array: `external_id =
            // ANY($2)` stays an index probe on (tenant_id, external_id)
            // whatever the statistics, while a list of 1,000 parameters can
            // turn into a scan of the tenant's accounts per lookup (measured:
            // an import quadratic in the tenant's size, docs/benchmarks.md).
            let by_external_id = if postgres {
                let array = sea_orm::Value::Array(
                    sea_orm::sea_query::ArrayType::String,
                    Some(Box::new(chunk.iter().map(|s| sea_orm::Value::from(s.as_str())).collect())),
                );
                Expr::col(account::Column::ExternalId).eq(PgFunc::any(Expr::val(array)))
            } else {
                account::Column::ExternalId.is_in(chunk.iter().map(String::as_str))
            };
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

    /// Creates in bulk: accounts, tags and events in one transaction.
    async fn create_many(&self, tenant: &str, accounts: &[Account]) -> Result<()> {
        if accounts.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin().await?;
        // 21 bound values an account, 3 a tag: far below PostgreSQL's 65,535.
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
        let envelopes: Vec<_> = accounts
            .iter()
            .map(|a| banso_events::envelope::new(tenant, crate::NAME, crate::events::account_created(a)))
            .collect();
        banso_events::outbox::record_many(&txn, &envelopes).await?;
        self.commit(txn).await
    }

    /// Upserts whole accounts by external_id, in row order: a row whose
    /// external_id appeared earlier in `rows` applies after it.
    pub async fn import_accounts(&self, tenant: &str, rows: Vec<AccountFields>) -> Result<Vec<Result<RowOutcome>>> {
        let mut results: Vec<Option<Result<RowOutcome>>> = (0..rows.len()).map(|_| None).collect();
        let mut pending: Vec<usize> = (0..rows.len()).collect();
        while !pending.is_empty() {
            // One round holds each external_id once.
            let mut seen = HashSet::new();
            let (round, later): (Vec<usize>, Vec<usize>) =
                pending.iter().partition(|i| seen.insert(rows[**i].external_id.clone().unwrap_or_default()));
            pending = later;
            let ids: Vec<String> = round.iter().map(|i| rows[*i].external_id.clone().unwrap_or_default()).collect();
            let existing = self.accounts_by_external_id(tenant, &ids).await?;
            let t = now();
            let mut creates = Vec::new();
            let mut create_rows = Vec::new();
            for &i in &round {
                let fields = &rows[i];
                match existing.get(fields.external_id.as_deref().unwrap_or_default()) {
                    Some(current) if current.fields == *fields => results[i] = Some(Ok(RowOutcome::Unchanged)),
                    Some(current) => {
                        let new = fields.clone();
                        let updated = self
                            .update_account(tenant, current.id, "", |f| {
                                *f = new.clone();
                                Ok(())
                            })
                            .await;
                        results[i] = Some(updated.map(|_| RowOutcome::Updated));
                    }
                    None => {
                        creates.push(Account {
                            id: Uuid::now_v7(),
                            fields: fields.clone(),
                            create_time: t,
                            update_time: t,
                            version: 1,
                        });
                        create_rows.push(i);
                    }
                }
            }
            match self.create_many(tenant, &creates).await {
                Ok(()) => {
                    for i in create_rows {
                        results[i] = Some(Ok(RowOutcome::Created));
                    }
                }
                // Another writer created some of them meanwhile: one by one.
                Err(Error::AlreadyExists(_)) => {
                    for i in create_rows {
                        let r = self
                            .upsert_account(
                                tenant,
                                rows[i].clone(),
                                crate::domain::ACCOUNT_UPDATABLE,
                                Ok(rows[i].clone()),
                                |_| Ok(()),
                            )
                            .await;
                        results[i] =
                            Some(r.map(|(_, created)| if created { RowOutcome::Created } else { RowOutcome::Updated }));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(results.into_iter().map(|r| r.expect("every row has a result")).collect())
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
