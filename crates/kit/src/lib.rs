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
//! - [`fieldmask`]: typed FieldMask paths, one enum per resource.
//! - [`etag`]: the etag of a version, parsed and checked once.
//! - [`wire`]: ids, times, dates and text as every service reads them, bounded.
//! - [`rpc`]: the handler prologue (caller, role, call, error table).
//! - [`tls`]: the rustls provider (ring) and PEM CA, certificate and key files.
//! - [`supervise`]: background tasks restarted when they die, with health.

// Caller data must never reach a panic: the lints hold it outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::unreachable, clippy::todo)
)]

pub mod auth;
pub mod calendar;
pub mod config;
pub mod db;
pub mod error;
pub mod etag;
pub mod fieldmask;
pub mod idempotency;
pub mod paging;
pub mod rpc;
pub mod server;
pub mod supervise;
pub mod telemetry;
pub mod tls;
pub mod wire;

pub use error::{Error, Result, Violations, reply, shown};
