//! The Health scoring service (`banso.health.v1`): live usage ingest, daily
//! rollups in each tenant's time zone, external measures, and the local
//! projection of Accounts it scores against.
//!
//! Its public face is what `banso` needs to run it: [`NAME`], [`SERVICE`]
//! and its settings; the rooms behind it follow docs/architecture.md
//! (`api/` the door, `app/` the use cases, `domain/` the rules, `store/` the
//! SQL). The `bench` feature adds `bench`, what the benchmarks seed with.

// Caller data must never reach a panic: the lints hold it outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::unreachable, clippy::todo)
)]

mod api;
mod app;
mod backtests;
#[cfg(feature = "bench")]
pub mod bench;
mod domain;
mod events;
mod ingest_load;
mod metrics;
mod migration;
mod predictions;
mod recompute;
mod retrain;
mod rollups;
mod scorer;
#[cfg(test)]
mod service_tests;
mod store;
mod surveys;
#[cfg(test)]
mod testing;

use std::{sync::Arc, time::Duration};

use banso_events::{Db, ServiceDef, service::Context};
use banso_kit::{config::Config, supervise::Supervisor};
use banso_proto::health::health_service_server::HealthServiceServer;
use tonic::server::NamedService as _;

/// The service's name: its schema, its SQLite file, its `banso serve` role.
pub const NAME: &str = "health";

type Server = HealthServiceServer<api::HealthApi>;

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
    /// The fewest labelled churns a churn model is trained on.
    pub min_churns: u64,
    /// How long a tenant's latest model of a target is kept before it is
    /// trained again on the newest snapshots; `None`: only on demand.
    pub retrain_every: Option<Duration>,
    /// How long the rollup task and the live scorer wait, at most, for an
    /// ingest that keeps this process busy before each round
    /// ([`ingest_load`]).
    pub give_way: Duration,
    /// How far back survey answers count in the survey measures
    /// (`external:nps`, …).
    pub survey_window: Duration,
}

impl HealthSettings {
    /// `BANSO_HEALTH_LATE_WINDOW_HOURS` (default 168, one week; 1 to 2160),
    /// `BANSO_HEALTH_SCORE_STEP` (default 5; 0 to 100),
    /// `BANSO_HEALTH_RAW_RETENTION_DAYS` (default 400; 1 to 3650, and at
    /// least the late window, so that a re-sent event is still recognised),
    /// `BANSO_HEALTH_MIN_CHURNS` (default 20; 1 to 1,000,000),
    /// `BANSO_HEALTH_RETRAIN_HOURS` (default 168, weekly; 0 turns scheduled
    /// retraining off; up to 8760),
    /// `BANSO_HEALTH_GIVE_WAY_MS` (default 1000; 0 to 10000; 0: the
    /// background rounds never wait for the ingest),
    /// `BANSO_HEALTH_SURVEY_WINDOW_DAYS` (default 180; 1 to 730).
    pub fn from_config(cfg: &Config) -> anyhow::Result<Self> {
        let v = cfg.vars();
        let hours = v.number("BANSO_HEALTH_LATE_WINDOW_HOURS", 168u64, 1, 2160)?;
        let score_step = v.number("BANSO_HEALTH_SCORE_STEP", 5.0f64, 0.0, 100.0)?;
        let days = v.number("BANSO_HEALTH_RAW_RETENTION_DAYS", 400u64, 1, 3650)?;
        let min_churns = v.number("BANSO_HEALTH_MIN_CHURNS", domain::churn_model::DEFAULT_MIN_CHURNS, 1, 1_000_000)?;
        let retrain_hours = v.number("BANSO_HEALTH_RETRAIN_HOURS", 168u64, 0, 8760)?;
        let give_way_ms = v.number("BANSO_HEALTH_GIVE_WAY_MS", 1000u64, 0, 10_000)?;
        let survey_days = v.number("BANSO_HEALTH_SURVEY_WINDOW_DAYS", domain::survey::DEFAULT_WINDOW_DAYS, 1, 730)?;
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
            min_churns,
            retrain_every: (retrain_hours > 0).then(|| Duration::from_secs(retrain_hours * 3600)),
            give_way: Duration::from_millis(give_way_ms),
            survey_window: Duration::from_secs(survey_days * 86_400),
        })
    }
}

/// The service as `banso up`, `banso serve health`, `banso migrate`, the
/// tests and the bench run it.
pub const SERVICE: ServiceDef = ServiceDef {
    name: NAME,
    // Feedback's survey answers; its own: accounts handed over between
    // replicas (a partitioned bus).
    consumes: &["accounts", "feedback", "health"],
    migrate: |cfg| Box::pin(banso_kit::db::migrate_service::<migration::Migrator>(cfg, NAME)),
    build: |cx, set| Box::pin(async move { Ok(set.with(build(cx).await?)) }),
};

/// Connect, migrate, start the relay, the Accounts and Feedback consumers
/// and the workers under the runtime's supervisor, and build the service.
async fn build(cx: &Context<'_>) -> anyhow::Result<Server> {
    let settings = HealthSettings::from_config(cx.config)?;
    let conn = cx.database::<migration::Migrator>(&SERVICE, Server::NAME).await?;
    metrics::register();
    let sup = &cx.runtime.supervisor;
    let name = Server::NAME;
    let signal = banso_events::outbox::OutboxSignal::default();
    banso_events::outbox::Relay::new(conn.clone(), cx.runtime.bus.clone(), NAME, signal.clone(), Default::default())
        .supervise(sup, name);
    let db = Db::new(conn.clone(), signal, NAME);
    let scoring = scorer::Scoring::new(db.clone(), settings.score_step);
    let ingest_load = ingest_load::IngestLoad::new(settings.give_way);
    // The accounts this replica scores and the Accounts events it applies:
    // all of them, unless the bus is partitioned among replicas.
    let partitions = cx.partitions(&SERVICE, name);
    let scorer = scorer::Scorer::supervise(scoring.clone(), ingest_load.clone(), partitions.clone(), sup, name);
    scorer::supervise_takeover(scorer.clone(), db.clone(), partitions.clone(), sup, name);
    let recompute = recompute::Recompute::supervise(scoring, sup, name);
    let rollups = rollups::Rollups::supervise(db.clone(), scorer.clone(), ingest_load.clone(), sup, name);
    let backtests = backtests::Backtests::supervise(db.clone(), sup, name);
    supervise_pruning(sup, conn, settings.raw_retention);
    banso_events::bus::supervise_consumer(
        sup,
        name,
        cx.runtime.bus.clone(),
        events::CONSUMER,
        vec![banso_events::envelope::all_of("accounts")],
        Arc::new(events::AccountsProjection { db: db.clone(), scorer: scorer.clone(), recompute: recompute.clone() }),
        Default::default(),
        &partitions,
    );
    // Survey answers, as Feedback announces them. (Feedback need not be
    // running: the embedded log holds every source, and on NATS the consumer
    // creates the source's stream if no publisher has yet.)
    let survey_window = chrono::Duration::from_std(settings.survey_window).unwrap_or(chrono::Duration::days(730));
    banso_events::bus::supervise_consumer(
        sup,
        name,
        cx.runtime.bus.clone(),
        events::SURVEYS,
        vec!["banso.feedback.survey_answered".to_owned()],
        Arc::new(events::SurveyAnswers { db: db.clone(), scorer: scorer.clone(), window: survey_window }),
        Default::default(),
        &partitions,
    );
    surveys::supervise(db.clone(), scorer.clone(), survey_window, sup, name);
    if partitions.count() > 1 {
        banso_events::bus::supervise_consumer(
            sup,
            name,
            cx.runtime.bus.clone(),
            events::HANDED_OVER,
            vec![format!("banso.{NAME}.accounts_to_score")],
            Arc::new(events::HandedOver { scorer: scorer.clone() }),
            Default::default(),
            &partitions,
        );
    }
    let app = app::App {
        db,
        ingest: Default::default(),
        ingest_load,
        settings,
        scorer,
        recompute,
        rollups,
        backtests,
        page_tokens: cx.kit.page_tokens.clone(),
    };
    retrain::supervise(app.clone(), sup, name);
    Ok(HealthServiceServer::new(api::HealthApi::new(app))
        .max_decoding_message_size(cx.kit.max_message_bytes)
        .max_encoding_message_size(cx.kit.max_message_bytes))
}

/// Every hour (with the inbox and request ids): raw usage events past the
/// retention, in batches small enough not to hold up ingest.
fn supervise_pruning(supervisor: &Supervisor, conn: sea_orm::DatabaseConnection, retention: Duration) {
    let keep = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(3650));
    let raw: banso_events::housekeeping::Step = Box::new(move |conn| {
        Box::pin(async move {
            let cutoff =
                chrono::Utc::now().checked_sub_signed(keep).unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
            Ok(store::ingest::prune_raw_events(&conn, cutoff, 10_000).await?)
        })
    });
    banso_events::housekeeping::supervise(supervisor, Server::NAME, NAME, conn, vec![("raw usage events", raw)]);
}

#[cfg(test)]
mod tests {
    use banso_kit::config::{Config, Vars};

    use super::HealthSettings;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<HealthSettings> {
        HealthSettings::from_config(&Config::from_vars(&Vars::from_pairs(pairs.iter().copied()))?)
    }

    /// Weekly by default; 0 turns scheduled retraining off; past a year is
    /// refused, naming the variable.
    #[test]
    fn retraining_is_weekly_unless_told_otherwise() {
        let week = std::time::Duration::from_secs(168 * 3600);
        assert_eq!(settings(&[]).unwrap().retrain_every, Some(week));
        let daily = settings(&[("BANSO_HEALTH_RETRAIN_HOURS", "24")]).unwrap();
        assert_eq!(daily.retrain_every, Some(std::time::Duration::from_secs(24 * 3600)));
        assert_eq!(settings(&[("BANSO_HEALTH_RETRAIN_HOURS", "0")]).unwrap().retrain_every, None);
        for bad in ["8761", "-1", "weekly"] {
            let e = settings(&[("BANSO_HEALTH_RETRAIN_HOURS", bad)]).unwrap_err().to_string();
            assert!(e.contains("BANSO_HEALTH_RETRAIN_HOURS"), "{bad}: {e}");
        }
    }

    /// Survey answers count 180 days back unless told otherwise; 1 to 730
    /// days, anything else refused naming the variable.
    #[test]
    fn the_survey_window_is_180_days_unless_told_otherwise() {
        let days = |n: u64| std::time::Duration::from_secs(n * 86_400);
        assert_eq!(settings(&[]).unwrap().survey_window, days(180));
        let short = settings(&[("BANSO_HEALTH_SURVEY_WINDOW_DAYS", "30")]).unwrap();
        assert_eq!(short.survey_window, days(30));
        assert_eq!(settings(&[("BANSO_HEALTH_SURVEY_WINDOW_DAYS", "730")]).unwrap().survey_window, days(730));
        for bad in ["0", "731", "half a year"] {
            let e = settings(&[("BANSO_HEALTH_SURVEY_WINDOW_DAYS", bad)]).unwrap_err().to_string();
            assert!(e.contains("BANSO_HEALTH_SURVEY_WINDOW_DAYS"), "{bad}: {e}");
        }
    }
}
