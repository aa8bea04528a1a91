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
    consumes: &["playbooks", "feedback"],
    migrate: |cfg| Box::pin(banso_kit::db::migrate_service::<migration::Migrator>(cfg, NAME)),
    build: |cx, set| Box::pin(async move { Ok(set.with(build(cx).await?)) }),
};

/// The gRPC service over an already migrated database; `outbox` wakes the
/// relay that publishes what it records.
#[cfg(feature = "bench")]
fn service(db: sea_orm::DatabaseConnection, outbox: banso_events::outbox::OutboxSignal, kit: &Kit) -> Server {
    serve(app::App::new(banso_events::Db::new(db, outbox, NAME)), kit)
}

fn serve(app: app::App, kit: &Kit) -> Server {
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
    // The timeline: Playbooks' CTAs, outreach and plans; of Feedback's
    // events only LoopClosed (a theme the account raised was shipped or
    // declined). One durable consumer a source, one handler and inbox.
    let timeline =
        std::sync::Arc::new(events::Timeline { db: banso_events::Db::new(db.clone(), signal.clone(), NAME) });
    let partitions = cx.partitions(&SERVICE, Server::NAME);
    for (consumer, subject) in [
        (events::CONSUMER, banso_events::envelope::all_of("playbooks")),
        (events::FEEDBACK_CONSUMER, "banso.feedback.loop_closed".to_string()),
    ] {
        banso_events::bus::supervise_consumer(
            &cx.runtime.supervisor,
            Server::NAME,
            cx.runtime.bus.clone(),
            consumer,
            vec![subject],
            timeline.clone(),
            Default::default(),
            &partitions,
        );
    }
    // `BANSO_ACCOUNTS_TOUCH_RULES_BUDGET_MS` (default 5000; 0 to 60,000): how
    // long UpdateTouchMixRules re-applies before the background pass takes over.
    let budget = cx.config.vars().number("BANSO_ACCOUNTS_TOUCH_RULES_BUDGET_MS", 5000u64, 0, 60_000)?;
    let app = app::App::new(banso_events::Db::new(db, signal, NAME))
        .with_reapply_budget(std::time::Duration::from_millis(budget));
    supervise_reapplying(&cx.runtime.supervisor, app.clone());
    Ok(serve(app, cx.kit))
}

/// Every few seconds: finishes re-applying touch-mix rules a call left
/// (past its budget) or a crash cut short.
fn supervise_reapplying(supervisor: &banso_kit::supervise::Supervisor, app: app::App) {
    supervisor.spawn(Server::NAME, "accounts-touch-mix-rules", move |shutdown| {
        let app = app.clone();
        async move {
            loop {
                match app.finish_reapplying().await {
                    Ok(n) if n > 0 => tracing::info!(changed = n, "touch-mix rules re-applied"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "re-applying touch-mix rules failed"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
            }
        }
    });
}
