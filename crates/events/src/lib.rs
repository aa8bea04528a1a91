//! banso-events: how Banso services talk, written once for all of them.
//!
//! - [`envelope`]: the `banso.events.v1.Envelope` every event travels in,
//!   its subject `banso.<source>.<type>` and its W3C trace context.
//! - [`outbox`]: a service records its state change and its events in one
//!   transaction ([`outbox::record`]); the [`outbox::Relay`] publishes them in
//!   order, marks them published, retries with backoff, and prunes them.
//! - [`bus`]: the [`bus::Bus`] trait with two implementations: NATS
//!   JetStream ([`nats::NatsBus`], when `BANSO_NATS_URL` is set) and an
//!   embedded durable log ([`embedded::EmbeddedBus`], for `banso up`), both
//!   at-least-once, ordered, with redelivery after a failed handler and a
//!   dead letter for messages that keep failing.
//! - [`inbox`]: a consumer records the event id in the same transaction as
//!   its effect ([`inbox::claim`]), so a redelivered event has no second effect.
//! - [`db`]: a service's database with its outbox: one transaction per use
//!   case, idempotent creates, optimistic versioned updates and deletes.
//! - [`service`]: what a service is to the process that runs it
//!   ([`service::ServiceDef`]) and what it gets to run ([`service::Runtime`]).

// Caller data must never reach a panic: the lints hold it outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::unreachable, clippy::todo)
)]

pub mod bus;
pub mod db;
pub mod embedded;
pub mod envelope;
pub mod group;
pub mod housekeeping;
pub mod inbox;
pub mod nats;
pub mod outbox;
pub mod partition;
pub mod service;

use std::sync::Arc;

pub use bus::{Bus, Handler, HandlerError};
pub use db::{Db, Tx};
pub use envelope::{Envelope, Payload};
pub use service::{Runtime, ServiceDef};

/// The bus a process uses: NATS when `BANSO_NATS_URL` is set, else the
/// embedded log under the data directory.
pub async fn connect_bus(cfg: &banso_kit::config::Config) -> anyhow::Result<Arc<dyn Bus>> {
    match &cfg.bus.nats_url {
        Some(url) => Ok(Arc::new(
            nats::NatsBus::connect_with(url.expose(), cfg.bus.nats_namespace.as_deref(), &cfg.bus.nats)
                .await?
                .with_partitions(cfg.bus.nats_partitions)?,
        )),
        None => Ok(Arc::new(embedded::EmbeddedBus::open(&cfg.data_dir).await?)),
    }
}
