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

/// Writes past days' usage rollups (account, day, event name, events) of
/// `tenant`, as the rollup task would have: a synthetic history.
pub async fn insert_rollups(
    db: &sea_orm::DatabaseConnection,
    tenant: &str,
    rows: &[(uuid::Uuid, chrono::NaiveDate, &str, i64)],
) -> anyhow::Result<()> {
    Ok(crate::store::inputs::insert_rollups(db, tenant, rows).await?)
}

/// Writes past daily score snapshots (account, day, score) of `tenant`,
/// banded by the default bands.
pub async fn insert_daily_snapshots(
    db: &sea_orm::DatabaseConnection,
    tenant: &str,
    rows: &[(uuid::Uuid, chrono::NaiveDate, f64)],
) -> anyhow::Result<()> {
    let bands = Default::default();
    let rows: Vec<_> = rows.iter().map(|(a, d, s)| (*a, *d, *s, crate::domain::score::band_of(*s, &bands))).collect();
    Ok(crate::store::history::insert_daily(db, tenant, &rows).await?)
}

/// Records a churn of `account` effective on `date`, losing `arr` (minor
/// units of `currency`), as Health keeps it from ContractChanged.
pub async fn record_churn(
    db: &sea_orm::DatabaseConnection,
    tenant: &str,
    account: uuid::Uuid,
    date: chrono::NaiveDate,
    currency: &str,
    arr: i64,
) -> anyhow::Result<()> {
    let o = crate::domain::outcome::Outcome {
        event_id: uuid::Uuid::now_v7(),
        account_id: account,
        kind: crate::domain::outcome::OutcomeKind::Churned,
        expansion: None,
        effective_date: date,
        currency: currency.to_owned(),
        arr_before: arr,
        arr_after: 0,
    };
    Ok(crate::store::outcomes::record(db, tenant, &o).await?)
}

/// A connection to Health's database as `cfg` names it (migrated).
pub async fn open(cfg: &banso_kit::config::Config) -> anyhow::Result<sea_orm::DatabaseConnection> {
    banso_kit::db::open::<crate::migration::Migrator>(cfg, crate::NAME).await
}

/// Records an expansion of `account` effective on `date` (an upsell, else
/// a cross-sell, as the contract event's reason code says), its ARR growing
/// from `arr` by a tenth, as Health keeps it from ContractChanged.
pub async fn record_expansion(
    db: &sea_orm::DatabaseConnection,
    tenant: &str,
    account: uuid::Uuid,
    date: chrono::NaiveDate,
    upsell: bool,
    currency: &str,
    arr: i64,
) -> anyhow::Result<()> {
    use crate::domain::outcome::{ExpansionKind, Outcome, OutcomeKind};
    let o = Outcome {
        event_id: uuid::Uuid::now_v7(),
        account_id: account,
        kind: OutcomeKind::Expanded,
        expansion: Some(if upsell { ExpansionKind::Upsell } else { ExpansionKind::CrossSell }),
        effective_date: date,
        currency: currency.to_owned(),
        arr_before: arr,
        arr_after: arr + arr / 10,
    };
    Ok(crate::store::outcomes::record(db, tenant, &o).await?)
}
