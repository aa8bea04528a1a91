//! The Accounts service (`banso.accounts.v1`): customer accounts, their
//! stakeholders (contacts), each tenant's settings (time zone, fiscal year,
//! currency), contracts and retention KPIs, the timeline, segments, bulk
//! import. Its rooms are those of every service (docs/architecture.md):
//! `api` parses and replies, `app` holds the use cases, `domain` the rules,
//! `store` the SQL.

// Caller data must never reach a panic: the lints hold it outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::unreachable, clippy::todo)
)]

mod api;
mod app;
pub(crate) mod domain;
mod events;
mod migration;
pub(crate) mod store;

use banso_events::{ServiceDef, service::Context};
use banso_kit::server::Kit;
use banso_proto::accounts::accounts_service_server::AccountsServiceServer;
use tonic::server::NamedService as _;

/// The service's name: its schema, its SQLite file, its `banso serve` role.
pub const NAME: &str = "accounts";

type Server = AccountsServiceServer<api::AccountsApi>;

/// The service as `banso up`, `banso serve accounts`, `banso migrate`, the
/// tests and the bench run it.
pub const SERVICE: ServiceDef = ServiceDef {
    name: NAME,
    consumes: &["playbooks"],
    migrate: |cfg| Box::pin(banso_kit::db::migrate_service::<migration::Migrator>(cfg, NAME)),
    build: |cx, set| Box::pin(async move { Ok(set.with(build(cx).await?)) }),
};

/// The gRPC service over an already migrated database; `outbox` wakes the
/// relay that publishes what it records.
fn service(db: sea_orm::DatabaseConnection, outbox: banso_events::outbox::OutboxSignal, kit: &Kit) -> Server {
    let app = app::App::new(banso_events::Db::new(db, outbox, NAME));
    AccountsServiceServer::new(api::AccountsApi::new(app, kit.clone()))
        .max_decoding_message_size(kit.max_message_bytes)
        .max_encoding_message_size(kit.max_message_bytes)
}

/// What the benchmarks need beyond [`SERVICE`] (feature `bench`).
#[cfg(feature = "bench")]
pub mod bench {
    use banso_kit::server::ServiceSet;

    /// The service without its outbox relay, added to `set`: the import
    /// benchmark's `--no-relay` diagnostic (events are recorded, never
    /// published), to tell the relay's share of the import's time.
    pub async fn without_relay(
        cfg: &banso_kit::config::Config,
        kit: &super::Kit,
        set: ServiceSet,
    ) -> anyhow::Result<ServiceSet> {
        let db = banso_kit::db::open::<super::migration::Migrator>(cfg, super::NAME).await?;
        Ok(set.with(super::service(db, banso_events::outbox::OutboxSignal::default(), kit)))
    }
}

/// Connect, migrate, and build the service; the outbox relay and
/// housekeeping run under the runtime's supervisor.
async fn build(cx: &Context<'_>) -> anyhow::Result<Server> {
    let db = cx.database::<migration::Migrator>(&SERVICE, Server::NAME).await?;
    let signal = banso_events::outbox::OutboxSignal::default();
    banso_events::outbox::Relay::new(db.clone(), cx.runtime.bus.clone(), NAME, signal.clone(), Default::default())
        .supervise(&cx.runtime.supervisor, Server::NAME);
    // Request ids and the timeline consumer's inbox claims.
    banso_events::housekeeping::supervise(&cx.runtime.supervisor, Server::NAME, NAME, db.clone(), vec![]);
    banso_events::bus::supervise_consumer(
        &cx.runtime.supervisor,
        Server::NAME,
        cx.runtime.bus.clone(),
        events::CONSUMER,
        vec![banso_events::envelope::all_of("playbooks")],
        std::sync::Arc::new(events::PlaybooksTimeline { db: banso_events::Db::new(db.clone(), signal.clone(), NAME) }),
        Default::default(),
    );
    Ok(service(db, signal, cx.kit))
}
