//! The Health scoring service (`banso.health.v1`): live usage ingest, daily
//! rollups in each tenant's time zone, external measures, and the local
//! projection of Accounts it scores against.

pub mod api;
mod api_scores;
pub mod domain;
pub mod events;
pub mod migration;
pub mod scorer;
pub mod store;

use std::{sync::Arc, time::Duration};

use banso_kit::{config::Config, server::Kit};
pub use banso_proto::health::health_service_server::HealthServiceServer;

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
}

impl HealthSettings {
    /// `BANSO_HEALTH_LATE_WINDOW_HOURS` (default 168, one week; 1 to 2160).
    pub fn from_env() -> anyhow::Result<Self> {
        let hours = match std::env::var("BANSO_HEALTH_LATE_WINDOW_HOURS") {
            Ok(v) if !v.trim().is_empty() => {
                v.trim().parse::<u64>().ok().filter(|h| (1..=2160).contains(h)).ok_or_else(|| {
                    anyhow::anyhow!(
                        "configuration variable BANSO_HEALTH_LATE_WINDOW_HOURS: {v:?} is not 1 to 2160 hours"
                    )
                })?
            }
            _ => 168,
        };
        let score_step = match std::env::var("BANSO_HEALTH_SCORE_STEP") {
            Ok(v) if !v.trim().is_empty() => {
                v.trim().parse::<f64>().ok().filter(|s| (0.0..=100.0).contains(s)).ok_or_else(|| {
                    anyhow::anyhow!("configuration variable BANSO_HEALTH_SCORE_STEP: {v:?} is not 0 to 100")
                })?
            }
            _ => 5.0,
        };
        Ok(HealthSettings { late_window: Duration::from_secs(hours * 3600), score_step })
    }
}

pub async fn connect(cfg: &Config) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let url = banso_kit::db::url_for(cfg, NAME)?;
    let db = banso_kit::db::connect(&url, NAME, &cfg.database).await?;
    banso_kit::db::migrate::<migration::Migrator>(&db).await?;
    Ok(db)
}

/// Connect, migrate, start the relay and the Accounts consumer, and build
/// the service; background tasks stop with `events.shutdown`.
pub async fn build(cfg: &Config, kit: &Kit, events: &banso_events::Runtime) -> anyhow::Result<Server> {
    let settings = HealthSettings::from_env()?;
    let db = connect(cfg).await?;
    let signal = banso_events::outbox::OutboxSignal::default();
    banso_events::outbox::Relay::new(db.clone(), events.bus.clone(), NAME, signal.clone(), Default::default())
        .spawn(events.shutdown.clone());
    let store = store::Store::new(db, signal);
    let scorer = scorer::Scorer::spawn(store.clone(), settings.score_step, events.shutdown.clone());
    banso_events::bus::spawn_consumer(
        events.bus.clone(),
        events::CONSUMER,
        vec![banso_events::envelope::all_of("accounts")],
        Arc::new(events::AccountsProjection { store: store.clone(), scorer: scorer.clone() }),
        Default::default(),
        events.shutdown.clone(),
    );
    Ok(HealthServiceServer::new(api::HealthApi::new(store, settings, scorer, kit.clone()))
        .max_decoding_message_size(kit.max_message_bytes)
        .max_encoding_message_size(kit.max_message_bytes))
}
