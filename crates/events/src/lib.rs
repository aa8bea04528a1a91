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

pub mod bus;
pub mod embedded;
pub mod envelope;
pub mod inbox;
pub mod nats;
pub mod outbox;

use std::sync::Arc;

pub use bus::{Bus, Handler, HandlerError};
pub use envelope::{Envelope, Payload};

/// What a service needs to publish and consume: the process's bus and the
/// token that stops its relays and consumers.
#[derive(Clone)]
pub struct Runtime {
    pub bus: Arc<dyn Bus>,
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The bus a process uses: NATS when `BANSO_NATS_URL` is set, else the
/// embedded log under the data directory.
pub async fn connect_bus(data_dir: &std::path::Path) -> anyhow::Result<Arc<dyn Bus>> {
    match std::env::var("BANSO_NATS_URL") {
        Ok(url) if !url.trim().is_empty() => {
            let ns = std::env::var("BANSO_NATS_NAMESPACE").ok().filter(|s| !s.is_empty());
            Ok(Arc::new(nats::NatsBus::connect_in(&url, ns.as_deref()).await?))
        }
        _ => Ok(Arc::new(embedded::EmbeddedBus::open(data_dir).await?)),
    }
}
