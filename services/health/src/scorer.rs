//! Live scoring: every change that can move a score (ingested usage, a
//! measure value, an account attribute, a scorecard edit) queues its account
//! here; a background task rescores queued accounts, de-duplicating bursts,
//! and publishes HealthScoreChanged through the outbox when a score moves by
//! at least the configured step or changes band.

use std::collections::{BTreeSet, HashMap};

use banso_kit::Result;
use banso_proto::{events as ev, health as pb};
use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    domain::{
        measure::{self, MeasureDef, compute_usage, parse_measure},
        rollup::{DailyRollup, day_of},
        score::{self, Band},
        scorecard::{AccountScope, Normalisation, choose},
    },
    store::{Store, scores::StoredHealth},
};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Job {
    Account(String, Uuid),
    Tenant(String),
}

/// Queues accounts for rescoring.
#[derive(Clone)]
pub struct Scorer {
    tx: mpsc::UnboundedSender<Job>,
}

pub(crate) fn band_to_proto(b: Band) -> pb::Band {
    match b {
        Band::Red => pb::Band::Red,
        Band::Yellow => pb::Band::Yellow,
        Band::Green => pb::Band::Green,
    }
}

impl Scorer {
    /// Starts the scoring task; `step` is the score change that counts as a move.
    pub fn spawn(store: Store, step: f64, shutdown: CancellationToken) -> Scorer {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            loop {
                let first = tokio::select! {
                    job = rx.recv() => match job { Some(j) => j, None => return },
                    _ = shutdown.cancelled() => return,
                };
                // Everything queued meanwhile, once each.
                let mut jobs = BTreeSet::from([first]);
                while let Ok(j) = rx.try_recv() {
                    jobs.insert(j);
                }
                for job in jobs {
                    let res = match &job {
                        Job::Account(tenant, id) => rescore(&store, tenant, *id, step).await,
                        Job::Tenant(tenant) => rescore_tenant(&store, tenant, step).await,
                    };
                    if let Err(e) = res {
                        tracing::warn!(?job, error = %e, "rescoring failed");
                    }
                }
            }
        });
        Scorer { tx }
    }

    pub fn account(&self, tenant: &str, id: Uuid) {
        let _ = self.tx.send(Job::Account(tenant.to_owned(), id));
    }

    pub fn tenant(&self, tenant: &str) {
        let _ = self.tx.send(Job::Tenant(tenant.to_owned()));
    }
}

async fn rescore_tenant(store: &Store, tenant: &str, step: f64) -> Result<()> {
    for id in store.account_ids(tenant).await? {
        rescore(store, tenant, id, step).await?;
    }
    Ok(())
}

/// Computes, stores and (if it moved) announces one account's score.
pub async fn rescore(store: &Store, tenant: &str, account: Uuid, step: f64) -> Result<()> {
    let Some(row) = store.account(tenant, account).await? else { return Ok(()) };
    let tz = store.time_zone(tenant).await?;
    let now = Utc::now();
    let today = day_of(now, tz);
    let cards = store.scorecards(tenant).await?;
    let candidates: Vec<_> = cards.iter().map(|c| (c.id, c.def.clone(), c.create_time)).collect();
    let scope = AccountScope { lifecycle_stage: row.lifecycle_stage.clone(), touch_model: row.touch_model.clone() };
    // Segment-scoped scorecards need Accounts' segment membership, which
    // this service does not evaluate yet: they match no account for now.
    let Some((card_id, def, _)) = choose(&candidates, &scope, |_| false) else { return Ok(()) };
    let card = cards.iter().find(|c| c.id == *card_id).expect("chosen from cards").clone();

    let defs: Vec<(String, MeasureDef)> =
        def.measures.iter().filter_map(|m| parse_measure(&m.measure).ok().map(|d| (m.measure.clone(), d))).collect();
    let lookback = defs.iter().map(|(_, d)| d.lookback_days()).max().unwrap_or(0) as i64;
    let rollups = if lookback > 0 {
        let since = today - chrono::Duration::days(lookback);
        let mut by_key: HashMap<(chrono::NaiveDate, String), DailyRollup> = HashMap::new();
        for (day, name, events, quantity, duration) in store.daily_usage(tenant, account, since).await? {
            let r = by_key.entry((day, name.clone())).or_insert_with(|| DailyRollup::new(day, name));
            r.events = events;
            r.quantity = quantity;
            r.duration_secs = duration;
        }
        for (day, name, user) in store.daily_users(tenant, account, since).await? {
            by_key.entry((day, name.clone())).or_insert_with(|| DailyRollup::new(day, name)).add_user(&user);
        }
        let mut v: Vec<DailyRollup> = by_key.into_values().collect();
        v.sort_by(|a, b| (a.day, &a.event_name).cmp(&(b.day, &b.event_name)));
        v
    } else {
        Vec::new()
    };
    let tracked = store.tracked_event_names(tenant, today - chrono::Duration::days(90)).await?;
    let pushed = store.measures(tenant, account).await?;
    let mut values: HashMap<String, Option<f64>> = HashMap::new();
    for (id, d) in &defs {
        let v = match d {
            MeasureDef::External { name } => match name.as_str() {
                measure::EMAIL_RESPONSE_RATE_90D => {
                    let (sent, replied) =
                        store.email_counts(tenant, account, now - chrono::Duration::days(90), now).await?;
                    (sent > 0).then(|| (replied as f64 / sent as f64).min(1.0))
                }
                measure::DAYS_TO_RENEWAL => row.renewal_date.map(|r| (r - today).num_days() as f64),
                measure::CONTRACT_ACTIVE => {
                    Some(if row.lifecycle_stage != "churned" && row.arr_amount_minor.unwrap_or(0) > 0 {
                        1.0
                    } else {
                        0.0
                    })
                }
                other => pushed.get(other).copied(),
            },
            usage => compute_usage(usage, &rollups, today, tracked),
        };
        values.insert(id.clone(), v);
    }
    store.save_snapshots(tenant, account, &values).await?;
    let mut populations = HashMap::new();
    for m in &def.measures {
        if matches!(m.normalisation, Normalisation::Percentile) {
            populations.insert(m.measure.clone(), store.population(tenant, &m.measure).await?);
        }
    }
    let Some(new) = score::score(def, &values, &populations) else { return Ok(()) };
    let previous: Option<StoredHealth> = store.account_health(tenant, account).await?;
    let moved = score::moved(previous.as_ref().map(|p| (p.score, p.band)), (new.score, new.band), step);
    let event = moved.then(|| {
        banso_events::Payload::HealthScoreChanged(ev::HealthScoreChanged {
            account_id: account.to_string(),
            old_score: previous.as_ref().map(|p| p.score),
            new_score: new.score,
            old_band: previous.as_ref().map(|p| band_to_proto(p.band) as i32).unwrap_or(0),
            new_band: band_to_proto(new.band) as i32,
            scorecard_id: card.id.to_string(),
            scorecard_version: card.version,
        })
    });
    // An unchanged score on the same card is not stored again.
    if !moved
        && previous
            .as_ref()
            .is_some_and(|p| p.score == new.score && p.scorecard_id == card.id && p.scorecard_version == card.version)
    {
        return Ok(());
    }
    store.save_score(tenant, account, today, &new, &card, previous.as_ref(), event).await
}
