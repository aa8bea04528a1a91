//! The only code that speaks SQL to the `accounts` schema, a file an
//! entity. Every function takes the tenant and a connection (the pool for
//! reads, the use case's transaction for writes); a row of another tenant
//! is NOT_FOUND. Versioned writes return whether the stored version was the
//! one read; the use case (`banso_events::Db`) decides what follows.

pub(crate) mod accounts;
pub(crate) mod activities;
pub(crate) mod contacts;
pub(crate) mod contracts;
pub(crate) mod entities;
pub(crate) mod import;
pub(crate) mod segments;
pub(crate) mod settings;
pub(crate) mod touch_mix;
pub(crate) mod touch_mix_rules;
pub(crate) mod write_keys;

use banso_kit::Error;

pub(crate) fn corrupt(what: &str, value: impl std::fmt::Display) -> Error {
    Error::internal(anyhow::anyhow!("stored {what} {value} is not valid"))
}

/// Whether an insert failed because the row it points at is gone (an
/// account deleted since it was read).
fn is_foreign_key_violation(e: &sea_orm::DbErr) -> bool {
    matches!(e.sql_err(), Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)))
}
