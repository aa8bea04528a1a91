//! banso-kit: the mechanisms every Banso service shares, written once.
//!
//! - [`config`]: typed `BANSO_*` configuration, validated at start.
//! - [`telemetry`]: logs, traces (OTLP, W3C propagation), Prometheus metrics.
//! - [`server`]: serve tonic services with health, reflection, layers and
//!   graceful shutdown.
//! - [`error`]: the domain error type and its one table to `tonic::Status`.
//! - [`auth`]: JWT bearer tokens → tenant, subject, roles.
//! - [`paging`]: page sizes and tamper-evident keyset page tokens.
//! - [`db`]: connect (PostgreSQL schema or SQLite file) and migrate.
//! - [`idempotency`]: `request_id` keys that make creates safe to retry.
//! - [`fieldmask`]: FieldMask paths checked against what a resource allows.
//! - [`wire`]: UUID fields and timestamps as every service reads them.

pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod fieldmask;
pub mod idempotency;
pub mod paging;
pub mod server;
pub mod telemetry;
pub mod wire;

pub use error::{Error, Result, Violations, reply};
