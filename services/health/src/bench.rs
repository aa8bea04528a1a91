//! What the benchmarks need of Health beyond its gRPC API (feature
//! `bench`): writing accounts into its projection as the Accounts consumer
//! does, for tenants too large to create through Accounts within a
//! benchmark's time.

pub use crate::domain::account::{AccountRow, LifecycleStage, TouchModel};

/// The projection row Accounts' AccountCreated gives Health.
pub fn account_row(a: &banso_proto::accounts::Account) -> anyhow::Result<AccountRow> {
    Ok(crate::events::account_row(a)?)
}

/// Writes an account into the projection of `tenant`, as the consumer does.
pub async fn upsert_account(db: &sea_orm::DatabaseConnection, tenant: &str, row: &AccountRow) -> anyhow::Result<()> {
    Ok(crate::store::accounts::upsert(db, tenant, row).await?)
}
