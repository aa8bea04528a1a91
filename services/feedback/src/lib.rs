//! The Feedback service (`banso.feedback.v1`): surveys that measure effort
//! and outcome first, campaigns that invite contacts with signed,
//! expiring, single-use response tokens, results with their sample sizes
//! and 95% intervals, and the perception gap between what the vendor
//! believes and what the customer says.
//!
//! Its public face is what `banso` needs to run it: [`NAME`] and
//! [`SERVICE`]. The rooms behind it follow docs/architecture.md (`api/` the
//! doors, `app/` the use cases and the sender, `domain/` the rules,
//! `store/` the SQL); docs/feedback.md is the user's guide.

// Caller data must never reach a panic: the lints hold it outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::unreachable, clippy::todo)
)]

mod api;
mod app;
#[cfg(feature = "bench")]
pub mod bench;
mod domain;
mod events;
mod migration;
mod store;

use std::{sync::Arc, time::Duration};

use banso_events::{Db, ServiceDef, service::Context};
use banso_kit::config::Config;
use banso_proto::feedback::{
    survey_response_service_server::SurveyResponseServiceServer, surveys_service_server::SurveysServiceServer,
    voice_service_server::VoiceServiceServer,
};
use tonic::server::NamedService as _;

/// The service's name: its schema, its SQLite file, its `banso serve` role.
pub const NAME: &str = "feedback";

/// The gRPC service of the public answer path, which takes no bearer token
/// (its only credential is the invitation's token): the server exempts it
/// from authentication.
pub const PUBLIC_SERVICE: &str = "banso.feedback.v1.SurveyResponseService";

type Server = SurveysServiceServer<api::SurveysApi>;
type Responses = SurveyResponseServiceServer<api::ResponsesApi>;
type Voice = VoiceServiceServer<api::voice::VoiceApi>;

/// Settings of the feedback service beyond the kit's.
#[derive(Clone)]
pub struct FeedbackSettings {
    /// Signs response tokens.
    token_secret: banso_kit::config::Secret,
    /// Prefixed to answer paths ("" keeps them relative to the gateway).
    pub answer_base_url: String,
    /// How often the sender looks for due campaigns.
    pub send_tick: Duration,
    /// How often a standing campaign looks for accounts that came due.
    pub standing_interval: Duration,
    /// A Japanese–English lexicon (EDICT) theme suggestions read Japanese
    /// through, if any.
    pub lexicon: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for FeedbackSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedbackSettings")
            .field("answer_base_url", &self.answer_base_url)
            .field("send_tick", &self.send_tick)
            .field("standing_interval", &self.standing_interval)
            .field("lexicon", &self.lexicon)
            .finish_non_exhaustive()
    }
}

impl FeedbackSettings {
    /// `BANSO_FEEDBACK_TOKEN_SECRET` (or `_FILE`; required, at least 32
    /// characters: it signs the response tokens customers answer with),
    /// `BANSO_FEEDBACK_ANSWER_BASE_URL` (default "": answer links are paths
    /// of the gateway; e.g. `https://banso.example.com`),
    /// `BANSO_FEEDBACK_SEND_TICK_SECS` (default 30; 1 to 3600),
    /// `BANSO_FEEDBACK_STANDING_INTERVAL_SECS` (default 3600; 1 to 86400),
    /// `BANSO_FEEDBACK_LEXICON` (default none: a path to EDICT, e.g. Debian's
    /// `/usr/share/edict/edict`, for theme suggestions; docs/feedback.md).
    pub fn from_config(cfg: &Config) -> anyhow::Result<Self> {
        let v = cfg.vars();
        let Some(token_secret) = v.secret("BANSO_FEEDBACK_TOKEN_SECRET")? else {
            anyhow::bail!(
                "BANSO_FEEDBACK_TOKEN_SECRET is required: it signs the survey response tokens (at least 32 characters)"
            );
        };
        anyhow::ensure!(
            token_secret.expose().chars().count() >= 32,
            "BANSO_FEEDBACK_TOKEN_SECRET must be at least 32 characters"
        );
        let answer_base_url =
            v.get("BANSO_FEEDBACK_ANSWER_BASE_URL").unwrap_or_default().trim_end_matches('/').to_string();
        anyhow::ensure!(
            answer_base_url.is_empty()
                || answer_base_url.starts_with("https://")
                || answer_base_url.starts_with("http://"),
            "BANSO_FEEDBACK_ANSWER_BASE_URL must be an http(s) URL, got {answer_base_url:?}"
        );
        let tick = v.number("BANSO_FEEDBACK_SEND_TICK_SECS", 30u64, 1, 3600)?;
        let standing = v.number("BANSO_FEEDBACK_STANDING_INTERVAL_SECS", 3600u64, 1, 86_400)?;
        let lexicon = v.get("BANSO_FEEDBACK_LEXICON").filter(|p| !p.trim().is_empty()).map(std::path::PathBuf::from);
        Ok(FeedbackSettings {
            token_secret,
            answer_base_url,
            send_tick: Duration::from_secs(tick),
            standing_interval: Duration::from_secs(standing),
            lexicon,
        })
    }
}

/// The service as `banso up`, `banso serve feedback`, `banso migrate`, the
/// tests and the bench run it.
pub const SERVICE: ServiceDef = ServiceDef {
    name: NAME,
    consumes: &["accounts", "health", "playbooks", NAME],
    migrate: |cfg| Box::pin(banso_kit::db::migrate_service::<migration::Migrator>(cfg, NAME)),
    build: |cx, set| {
        Box::pin(async move {
            let (surveys, responses, voice) = build(cx).await?;
            Ok(set.with(surveys).with_following(responses, Server::NAME).with_following(voice, Server::NAME))
        })
    },
};

async fn build(cx: &Context<'_>) -> anyhow::Result<(Server, Responses, Voice)> {
    let settings = FeedbackSettings::from_config(cx.config)?;
    if let Some(path) = &settings.lexicon {
        app::voice::use_lexicon(path).await?;
    }
    let conn = cx.database::<migration::Migrator>(&SERVICE, Server::NAME).await?;
    let sup = &cx.runtime.supervisor;
    let name = Server::NAME;
    let signal = banso_events::outbox::OutboxSignal::default();
    banso_events::outbox::Relay::new(conn.clone(), cx.runtime.bus.clone(), NAME, signal.clone(), Default::default())
        .supervise(sup, name);
    let db = Db::new(conn, signal, NAME);
    let consumer = Arc::new(events::Projection { db: db.clone() });
    let partitions = cx.partitions(&SERVICE, name);
    for source in SERVICE.consumes {
        // Of Health's events only scores, of Playbooks' only new plans,
        // checkpoints' readings (the outcome axis) and messages sent or
        // given up on (an invitation delivered or failed): the others would cost a transaction each
        // for nothing. Of its own only a theme's status change: the loop it
        // closes is told to each account once, whatever redelivers it.
        let subjects = match *source {
            NAME => vec![format!("banso.{NAME}.theme_status_changed")],
            "health" => vec![format!("banso.{source}.health_score_changed")],
            "playbooks" => ["plan_created", "checkpoint_recorded", "outreach_sent", "outreach_failed"]
                .iter()
                .map(|t| format!("banso.{source}.{t}"))
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
    let signer = domain::token::Signer::new(settings.token_secret.expose().as_bytes());
    let app = app::App::new(db, signer, &settings.answer_base_url);
    app::sender::supervise(app.clone(), sup, name, settings.send_tick, settings.standing_interval);
    app::voice::routing::supervise(app.clone(), sup, name, app::voice::routing::DIGEST_TICK);
    let responses = SurveyResponseServiceServer::new(api::ResponsesApi::new(app.clone()))
        .max_decoding_message_size(cx.kit.max_message_bytes)
        .max_encoding_message_size(cx.kit.max_message_bytes);
    let voice = VoiceServiceServer::new(api::voice::VoiceApi::new(app.clone(), cx.kit.clone()))
        .max_decoding_message_size(cx.kit.max_message_bytes)
        .max_encoding_message_size(cx.kit.max_message_bytes);
    let surveys = SurveysServiceServer::new(api::SurveysApi::new(app, cx.kit.clone()))
        .max_decoding_message_size(cx.kit.max_message_bytes)
        .max_encoding_message_size(cx.kit.max_message_bytes);
    Ok((surveys, responses, voice))
}

#[cfg(test)]
mod settings_tests {
    use banso_kit::config::{Config, Vars};

    use super::FeedbackSettings;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<FeedbackSettings> {
        FeedbackSettings::from_config(&Config::from_vars(&Vars::from_pairs(pairs.iter().copied()))?)
    }

    /// The token secret is required and long; it never prints.
    #[test]
    fn the_token_secret_is_required_and_never_printed() {
        let key = "BANSO_FEEDBACK_TOKEN_SECRET";
        assert!(settings(&[]).unwrap_err().to_string().contains(key));
        assert!(settings(&[(key, "short")]).unwrap_err().to_string().contains("32"));
        let s = settings(&[(key, &"k".repeat(32))]).unwrap();
        assert!(!format!("{s:?}").contains("kkkk"));
        assert_eq!(s.send_tick.as_secs(), 30);
        let url = "BANSO_FEEDBACK_ANSWER_BASE_URL";
        let s = settings(&[(key, &"k".repeat(32)), (url, "https://cs.example.com/")]).unwrap();
        assert_eq!(s.answer_base_url, "https://cs.example.com");
        assert!(settings(&[(key, &"k".repeat(32)), (url, "ftp://x")]).is_err());
    }
}
