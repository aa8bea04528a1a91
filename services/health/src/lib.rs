//! The Health scoring service (`banso.health.v1`): live usage ingest, daily
//! rollups in each tenant's time zone, external measures, and the local
//! projection of Accounts it scores against.

pub mod api;
mod api_portfolio;
mod api_scores;
pub mod domain;
pub mod events;
pub mod migration;
pub mod recompute;
pub mod rollups;
pub mod scorer;
pub mod store;

use std::{sync::Arc, time::Duration};

use banso_events::{ServiceDef, service::Context};
use banso_kit::{config::Config, supervise::Supervisor};
pub use banso_proto::health::health_service_server::HealthServiceServer;
use tonic::server::NamedService as _;

/// The service's name: its schema, its SQLite file, its `banso serve` role.
pub const NAME: &str = "health";

pub type Server = HealthServiceServer<api::HealthApi>;

/// Settings of the health service beyond the kit's.
#[derive(Debug, Clone)]
pub struct HealthSettings {
    /// How late an event may arrive (by its timestamp) and still count.
    pub late_window: Duration,
    /// How far a score must move to publish HealthScoreChanged (a band
    /// change always does).
    pub score_step: f64,
    /// How long raw usage events are kept after ingest (rollups stay).
    pub raw_retention: Duration,
}

impl HealthSettings {
    /// `BANSO_HEALTH_LATE_WINDOW_HOURS` (default 168, one week; 1 to 2160),
    /// `BANSO_HEALTH_SCORE_STEP` (default 5; 0 to 100),
    /// `BANSO_HEALTH_RAW_RETENTION_DAYS` (default 400; 1 to 3650, and at
    /// least the late window, so that a re-sent event is still recognised).
    pub fn from_config(cfg: &Config) -> anyhow::Result<Self> {
        let v = cfg.vars();
        let hours = v.number("BANSO_HEALTH_LATE_WINDOW_HOURS", 168u64, 1, 2160)?;
        let score_step = v.number("BANSO_HEALTH_SCORE_STEP", 5.0f64, 0.0, 100.0)?;
        let days = v.number("BANSO_HEALTH_RAW_RETENTION_DAYS", 400u64, 1, 3650)?;
        if days * 24 < hours {
            anyhow::bail!(
                "configuration variable BANSO_HEALTH_RAW_RETENTION_DAYS: {days} days is shorter than the late window \
                 (BANSO_HEALTH_LATE_WINDOW_HOURS={hours}); a re-sent event would count twice"
            );
        }
        Ok(HealthSettings {
            late_window: Duration::from_secs(hours * 3600),
            score_step,
            raw_retention: Duration::from_secs(days * 86_400),
        })
    }
}

/// The service as `banso up`, `banso serve health`, `banso migrate`, the
/// tests and the bench run it.
pub const SERVICE: ServiceDef = ServiceDef {
    name: NAME,
    consumes: &["accounts"],
    migrate: |cfg| Box::pin(async move { connect(cfg).await.map(drop) }),
    build: |cx, set| Box::pin(async move { Ok(set.with(build(cx).await?)) }),
};

pub async fn connect(cfg: &Config) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let url = banso_kit::db::url_for(cfg, NAME)?;
    let db = banso_kit::db::connect(&url, NAME, &cfg.database).await?;
    banso_kit::db::migrate::<migration::Migrator>(&db).await?;
    Ok(db)
}

/// Connect, migrate, start the relay, the Accounts consumer and the
/// workers under the runtime's supervisor, and build the service.
async fn build(cx: &Context<'_>) -> anyhow::Result<Server> {
    let settings = HealthSettings::from_config(cx.config)?;
    let db = connect(cx.config).await?;
    let sup = &cx.runtime.supervisor;
    let name = Server::NAME;
    let signal = banso_events::outbox::OutboxSignal::default();
    banso_events::outbox::Relay::new(db.clone(), cx.runtime.bus.clone(), NAME, signal.clone(), Default::default())
        .supervise(sup, name);
    let store = store::Store::new(db, signal);
    let scorer = scorer::Scorer::supervise(store.clone(), settings.score_step, sup, name);
    let recompute = recompute::Recompute::supervise(store.clone(), settings.score_step, sup, name);
    let rollups = rollups::Rollups::supervise(store.clone(), scorer.clone(), sup, name);
    supervise_pruning(sup, store.clone(), settings.raw_retention);
    banso_events::bus::supervise_consumer(
        sup,
        name,
        cx.runtime.bus.clone(),
        events::CONSUMER,
        vec![banso_events::envelope::all_of("accounts")],
        Arc::new(events::AccountsProjection {
            store: store.clone(),
            scorer: scorer.clone(),
            recompute: recompute.clone(),
        }),
        Default::default(),
    );
    Ok(HealthServiceServer::new(api::HealthApi::new(store, settings, scorer, recompute, rollups, cx.kit.clone()))
        .max_decoding_message_size(cx.kit.max_message_bytes)
        .max_encoding_message_size(cx.kit.max_message_bytes))
}

/// Deletes raw usage events past the retention, every hour, in batches
/// small enough not to hold up ingest.
fn supervise_pruning(supervisor: &Supervisor, store: store::Store, retention: Duration) {
    let keep = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(3650));
    supervisor.spawn(Server::NAME, "health-pruning", move |shutdown| {
        let store = store.clone();
        async move {
            loop {
                let cutoff = chrono::Utc::now() - keep;
                loop {
                    match store.prune_raw_events(cutoff, 10_000).await {
                        Ok(n) if n > 0 && !shutdown.is_cancelled() => {
                            tracing::debug!(deleted = n, "pruned raw usage events")
                        }
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "pruning raw usage events failed");
                            break;
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
            }
        }
    });
}
