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
    /// How long raw usage events are kept after ingest (rollups stay).
    pub raw_retention: Duration,
}

fn env_number<T: std::str::FromStr>(name: &str, default: T, ok: impl Fn(&T) -> bool, range: &str) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<T>()
            .ok()
            .filter(ok)
            .ok_or_else(|| anyhow::anyhow!("configuration variable {name}: {v:?} is not {range}")),
        _ => Ok(default),
    }
}

impl HealthSettings {
    /// `BANSO_HEALTH_LATE_WINDOW_HOURS` (default 168, one week; 1 to 2160),
    /// `BANSO_HEALTH_SCORE_STEP` (default 5; 0 to 100),
    /// `BANSO_HEALTH_RAW_RETENTION_DAYS` (default 400; 1 to 3650, and at
    /// least the late window, so that a re-sent event is still recognised).
    pub fn from_env() -> anyhow::Result<Self> {
        let hours =
            env_number("BANSO_HEALTH_LATE_WINDOW_HOURS", 168u64, |h| (1..=2160).contains(h), "1 to 2160 hours")?;
        let score_step = env_number("BANSO_HEALTH_SCORE_STEP", 5.0f64, |s| (0.0..=100.0).contains(s), "0 to 100")?;
        let days = env_number("BANSO_HEALTH_RAW_RETENTION_DAYS", 400u64, |d| (1..=3650).contains(d), "1 to 3650 days")?;
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
    let recompute = recompute::Recompute::spawn(store.clone(), settings.score_step, events.shutdown.clone());
    let rollups = rollups::Rollups::spawn(store.clone(), scorer.clone(), events.shutdown.clone());
    spawn_pruning(store.clone(), settings.raw_retention, events.shutdown.clone());
    banso_events::bus::spawn_consumer(
        events.bus.clone(),
        events::CONSUMER,
        vec![banso_events::envelope::all_of("accounts")],
        Arc::new(events::AccountsProjection {
            store: store.clone(),
            scorer: scorer.clone(),
            recompute: recompute.clone(),
        }),
        Default::default(),
        events.shutdown.clone(),
    );
    Ok(HealthServiceServer::new(api::HealthApi::new(store, settings, scorer, recompute, rollups, kit.clone()))
        .max_decoding_message_size(kit.max_message_bytes)
        .max_encoding_message_size(kit.max_message_bytes))
}

/// Deletes raw usage events past the retention, every hour, in batches
/// small enough not to hold up ingest.
fn spawn_pruning(store: store::Store, retention: Duration, shutdown: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        loop {
            let cutoff = chrono::Utc::now() - chrono::Duration::from_std(retention).expect("at most 10 years");
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
                _ = shutdown.cancelled() => return,
            }
        }
    });
}
