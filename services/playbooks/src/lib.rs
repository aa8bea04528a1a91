//! The Playbooks service (`banso.playbooks.v1`): rules that turn what
//! happens to an account into calls to action — within a second of the
//! event, simulated against real data before they go live.
//!
//! Its public face is what `banso` needs to run it: [`NAME`] and
//! [`SERVICE`]. The rooms behind it follow docs/architecture.md (`api/` the
//! door, `app/` the use cases and the engine, `domain/` the rules, `store/`
//! the SQL); docs/playbooks.md is the user's guide.

// Caller data must never reach a panic: the lints hold it outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::unreachable, clippy::todo)
)]

mod accounts;
mod api;
mod app;
#[cfg(feature = "bench")]
pub mod bench;
mod domain;
mod events;
mod migration;
mod outreach;
mod payload;
#[cfg(test)]
mod service_tests;
mod store;
#[cfg(test)]
mod testing;

use std::{sync::Arc, time::Duration};

use banso_events::{Db, ServiceDef, service::Context};
use banso_kit::{config::Config, supervise::Supervisor};
use banso_proto::playbooks::{
    outreach_service_server::OutreachServiceServer, playbooks_service_server::PlaybooksServiceServer,
    programmes_service_server::ProgrammesServiceServer, success_plans_service_server::SuccessPlansServiceServer,
};
use tonic::server::NamedService as _;

/// The service's name: its schema, its SQLite file, its `banso serve` role.
pub const NAME: &str = "playbooks";

type Server = PlaybooksServiceServer<api::PlaybooksApi>;

/// Settings of the playbooks service beyond the kit's.
#[derive(Debug, Clone)]
pub struct PlaybooksSettings {
    /// How often each replica looks for tenants whose daily schedule is due.
    pub schedule_tick: Duration,
    /// How long trigger events are kept for simulation.
    pub trigger_retention: Duration,
    /// How long finished outreach deliveries (and their attempts) are kept.
    pub delivery_retention: Duration,
}

impl PlaybooksSettings {
    /// `BANSO_PLAYBOOKS_SCHEDULE_TICK_SECS` (default 30; 1 to 3600),
    /// `BANSO_PLAYBOOKS_TRIGGER_RETENTION_DAYS` (default 30; 30 to 365: at
    /// least the 30 days a simulation may look back),
    /// `BANSO_PLAYBOOKS_DELIVERY_RETENTION_DAYS` (default 400; 365 to 3650:
    /// at least the longest fatigue window, 365 days, so that a budget
    /// always counts every message it covers).
    pub fn from_config(cfg: &Config) -> anyhow::Result<Self> {
        let v = cfg.vars();
        let tick = v.number("BANSO_PLAYBOOKS_SCHEDULE_TICK_SECS", 30u64, 1, 3600)?;
        let days = v.number("BANSO_PLAYBOOKS_TRIGGER_RETENTION_DAYS", 30u64, 30, 365)?;
        let delivery_days = v.number("BANSO_PLAYBOOKS_DELIVERY_RETENTION_DAYS", 400u64, 365, 3650)?;
        Ok(PlaybooksSettings {
            schedule_tick: Duration::from_secs(tick),
            trigger_retention: Duration::from_secs(days * 86_400),
            delivery_retention: Duration::from_secs(delivery_days * 86_400),
        })
    }
}

/// The service as `banso up`, `banso serve playbooks`, `banso migrate`,
/// the tests and the bench run it. It consumes its own events too: a CTA
/// closed is a trigger; and of Feedback's, a survey answered and a loop
/// closed (triggers)
/// and a survey invitation or a department's notice to deliver (an
/// outreach message).
pub const SERVICE: ServiceDef = ServiceDef {
    name: NAME,
    consumes: &["accounts", "health", "playbooks", FEEDBACK],
    migrate: |cfg| Box::pin(banso_kit::db::migrate_service::<migration::Migrator>(cfg, NAME)),
    build: |cx, set| {
        Box::pin(async move {
            let (playbooks, programmes, outreach, plans) = build(cx).await?;
            Ok(set
                .with(playbooks)
                .with_following(programmes, Server::NAME)
                .with_following(outreach, Server::NAME)
                .with_following(plans, Server::NAME))
        })
    },
};

/// The Feedback service's event source: only `survey_answered`,
/// `survey_invitation_issued`, `notice_issued` and `loop_closed` are read.
const FEEDBACK: &str = "feedback";

type Programmes = ProgrammesServiceServer<api::programmes::ProgrammesApi>;
type Outreach = OutreachServiceServer<api::outreach::OutreachApi>;
type Plans = SuccessPlansServiceServer<api::plans::SuccessPlansApi>;

async fn build(cx: &Context<'_>) -> anyhow::Result<(Server, Programmes, Outreach, Plans)> {
    let settings = PlaybooksSettings::from_config(cx.config)?;
    let webhooks = outreach::OutreachSettings::from_config(cx.config)?;
    let conn = cx.database::<migration::Migrator>(&SERVICE, Server::NAME).await?;
    let sup = &cx.runtime.supervisor;
    let name = Server::NAME;
    let signal = banso_events::outbox::OutboxSignal::default();
    banso_events::outbox::Relay::new(conn.clone(), cx.runtime.bus.clone(), NAME, signal.clone(), Default::default())
        .supervise(sup, name);
    let db = Db::new(conn.clone(), signal, NAME);
    let accounts_settings = accounts::AccountsSettings::from_config(cx.config)?;
    let tokens = banso_kit::auth::ServiceTokens::from_config(&cx.config.auth, NAME);
    let engine = Arc::new(app::engine::Engine::new(tokens.is_some()));
    let accounts_client = accounts::Accounts::new(tokens, accounts_settings.url.clone(), cx.runtime.local_grpc.clone());
    // One durable consumer a source (a JetStream consumer reads one stream;
    // the embedded log keeps a position per consumer name), all with the
    // same handler and inbox.
    let consumer = Arc::new(events::Consumer { db: db.clone(), engine: engine.clone() });
    let partitions = cx.partitions(&SERVICE, name);
    for source in SERVICE.consumes {
        // Of its own events only a closed CTA, a checkpoint reading and a
        // concluded review are triggers: the others (CtaOpened, CtaUpdated,
        // PlaybookFired, outreach, PlanCreated) would cost a transaction
        // each for nothing. Of Feedback's only an answer and a closed loop
        // are triggers, and nothing else of it is kept here. Its stream is made by whichever
        // of the publisher and this consumer starts first (on NATS; the
        // embedded log needs none), so Playbooks starts, and waits for
        // answers, where no Feedback service runs.
        let subjects = match *source {
            NAME => ["cta_closed", "checkpoint_recorded", "review_concluded"]
                .iter()
                .map(|t| format!("banso.{NAME}.{t}"))
                .collect(),
            FEEDBACK => ["survey_answered", "survey_invitation_issued", "notice_issued", "loop_closed"]
                .iter()
                .map(|t| format!("banso.{FEEDBACK}.{t}"))
                .collect(),
            other => vec![banso_events::envelope::all_of(other)],
        };
        banso_events::bus::supervise_consumer(
            sup,
            name,
            cx.runtime.bus.clone(),
            &format!("{}-{source}", events::CONSUMER),
            subjects,
            consumer.clone(),
            Default::default(),
            &partitions,
        );
    }
    let app = app::App { db, engine };
    app::schedule::supervise(app.clone(), sup, name, settings.schedule_tick);
    supervise_pruning(sup, conn, settings.trigger_retention, settings.delivery_retention);
    outreach::supervise(sup, Outreach::NAME, app.db.clone(), app.engine.outreach.clone(), webhooks.clone());
    accounts::supervise(
        sup,
        name,
        app.db.clone(),
        app.engine.account_changes.clone(),
        accounts_client,
        accounts_settings,
    );
    let outreach = OutreachServiceServer::new(api::outreach::OutreachApi::new(app.clone(), cx.kit.clone(), webhooks))
        .max_decoding_message_size(cx.kit.max_message_bytes)
        .max_encoding_message_size(cx.kit.max_message_bytes);
    let programmes = ProgrammesServiceServer::new(api::programmes::ProgrammesApi::new(app.clone(), cx.kit.clone()))
        .max_decoding_message_size(cx.kit.max_message_bytes)
        .max_encoding_message_size(cx.kit.max_message_bytes);
    let plans = SuccessPlansServiceServer::new(api::plans::SuccessPlansApi::new(app.clone(), cx.kit.clone()))
        .max_decoding_message_size(cx.kit.max_message_bytes)
        .max_encoding_message_size(cx.kit.max_message_bytes);
    let playbooks = PlaybooksServiceServer::new(api::PlaybooksApi::new(app, cx.kit.clone()))
        .max_decoding_message_size(cx.kit.max_message_bytes)
        .max_encoding_message_size(cx.kit.max_message_bytes);
    Ok((playbooks, programmes, outreach, plans))
}

/// Every hour (with the inbox and request ids): trigger events past the
/// retention, finished account changes after it (the firing keeps each
/// one's outcome), and finished outreach deliveries past theirs.
fn supervise_pruning(
    supervisor: &Supervisor,
    conn: sea_orm::DatabaseConnection,
    retention: Duration,
    delivery_retention: Duration,
) {
    use banso_events::housekeeping::Step;
    let keep = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(30));
    let cutoff = move || banso_kit::wire::now() - keep;
    let keep_deliveries = chrono::Duration::from_std(delivery_retention).unwrap_or(chrono::Duration::days(400));
    let deliveries: Step = Box::new(move |conn| {
        Box::pin(async move {
            Ok(store::outreach::prune_deliveries(&conn, banso_kit::wire::now() - keep_deliveries, 5_000).await?)
        })
    });
    let triggers: Step =
        Box::new(move |conn| Box::pin(async move { Ok(store::trigger_events::prune(&conn, cutoff(), 5_000).await?) }));
    let changes: Step =
        Box::new(move |conn| Box::pin(async move { Ok(store::account_changes::prune(&conn, cutoff(), 5_000).await?) }));
    banso_events::housekeeping::supervise(
        supervisor,
        Server::NAME,
        NAME,
        conn,
        vec![("trigger events", triggers), ("account changes", changes), ("outreach deliveries", deliveries)],
    );
}

#[cfg(test)]
mod settings_tests {
    use banso_kit::config::{Config, Vars};

    use super::PlaybooksSettings;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<PlaybooksSettings> {
        PlaybooksSettings::from_config(&Config::from_vars(&Vars::from_pairs(pairs.iter().copied()))?)
    }

    /// Finished deliveries are kept 400 days by default; less than the
    /// longest fatigue window (365 days) is refused, naming the variable.
    #[test]
    fn deliveries_are_kept_at_least_as_long_as_the_longest_fatigue_window() {
        let days = |d: u64| std::time::Duration::from_secs(d * 86_400);
        assert_eq!(settings(&[]).unwrap().delivery_retention, days(400));
        let v = "BANSO_PLAYBOOKS_DELIVERY_RETENTION_DAYS";
        assert_eq!(settings(&[(v, "365")]).unwrap().delivery_retention, days(365));
        for bad in ["364", "3651", "forever"] {
            let e = settings(&[(v, bad)]).unwrap_err().to_string();
            assert!(e.contains(v), "{bad}: {e}");
        }
    }
}
