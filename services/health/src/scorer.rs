//! Scoring accounts: read their inputs in bulk, compute, store.
//!
//! Two callers share [`score_rows`]: the live scorer below — every change
//! that can move a score (ingested usage, a measure value, an account
//! attribute, an e-mail reply) queues its account, and a background task
//! rescores what is queued, de-duplicating bursts — and the recompute job
//! (`recompute.rs`), which walks a whole tenant in chunks. A score moving by
//! at least the configured step, or changing band, publishes
//! HealthScoreChanged through the outbox in the transaction that stores it.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use banso_cel::Expression;
use banso_kit::{Result, supervise::Supervisor};
use banso_proto::{events as ev, health as pb};
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::{
    domain::{
        account::AccountRow,
        measure::{self, MeasureDef, compute_usage, parse_measure},
        rollup::{DailyRollup, day_of},
        score::{self, Band, trend},
        scorecard::{AccountScope, Normalisation, ScorecardDef, choose},
    },
    store::{ScoreWrite, Store, scores::StoredScorecard},
};

pub(crate) fn band_to_proto(b: Band) -> pb::Band {
    match b {
        Band::Red => pb::Band::Red,
        Band::Yellow => pb::Band::Yellow,
        Band::Green => pb::Band::Green,
    }
}

/// Accounts a recompute job scores per transaction.
pub const CHUNK: usize = 1_000;
/// Accounts the live scorer scores at once: its inputs (usage summed per
/// bucket of days, the user keys) are held in memory meanwhile, and the
/// live scorer runs beside ingest, whose memory it shares. 500 halves the
/// round's statements and commits of 100 for a burst touching every
/// account; memory stays far under its goal (docs/benchmarks.md).
const LIVE_CHUNK: usize = 500;

/// The longest the live scorer rests after a round (see [`Scorer::spawn`]).
/// The queue is a set of accounts, so resting never builds a backlog: under
/// a burst that touches every account a score follows its usage within
/// about three rounds, and in steady flow within a few milliseconds more.
const MAX_REST: std::time::Duration = std::time::Duration::from_secs(1);
/// The live scorer rests this many times as long as its last round took.
const REST_PER_ROUND: u32 = 3;

/// What scoring a tenant's accounts needs beyond the accounts' own inputs,
/// read once per batch or job.
pub struct TenantContext {
    pub today: NaiveDate,
    pub now: DateTime<Utc>,
    cards: Vec<StoredScorecard>,
    candidates: Vec<(Uuid, ScorecardDef, DateTime<Utc>)>,
    /// Segment id (as scopes name it) → its compiled expression; `None` if
    /// the segment is unknown here or its expression does not compile.
    segments: HashMap<String, Option<Expression>>,
    shared: Shared,
    /// Where the windows of the tenant's measures begin and end
    /// ([`measure::window_cuts`]), and which inputs they need.
    cuts: Vec<u32>,
    needs_users: bool,
    needs_email: bool,
    /// Measures some scorecard normalises by percentile: their populations
    /// are read once per batch or job. (Every measure's values are kept as
    /// snapshots, so a measure switched to percentile ranks at once.)
    ranked: BTreeSet<String>,
}

/// The tenant-wide inputs that cost a scan: the denominator of feature
/// breadth and the percentile populations (ranked against each account's
/// latest stored values; during a recompute, accounts not reached yet hold
/// their previous ones).
struct Shared {
    tracked: usize,
    populations: HashMap<String, Vec<f64>>,
}

impl TenantContext {
    pub async fn load(store: &Store, tenant: &str) -> Result<TenantContext> {
        let mut ctx = Self::without_shared(store, tenant).await?;
        ctx.shared = ctx.load_shared(store, tenant).await?;
        Ok(ctx)
    }

    async fn without_shared(store: &Store, tenant: &str) -> Result<TenantContext> {
        let now = Utc::now();
        let today = day_of(now, store.time_zone(tenant).await?);
        let cards = store.scorecards(tenant).await?;
        let candidates = cards.iter().map(|c| (c.id, c.def.clone(), c.create_time)).collect();
        let known = store.segments(tenant).await?;
        let mut segments = HashMap::new();
        let (mut defs, mut needs_users, mut needs_email) = (Vec::new(), false, false);
        let mut ranked = BTreeSet::new();
        for c in &cards {
            if let crate::domain::scorecard::Scope::Segment(id) = &c.def.scope {
                let expr = Uuid::parse_str(id)
                    .ok()
                    .and_then(|u| known.get(&u))
                    .and_then(|src| Expression::compile(src, &banso_cel::account_schema()).ok());
                segments.insert(id.clone(), expr);
            }
            for m in &c.def.measures {
                if matches!(m.normalisation, Normalisation::Percentile) {
                    ranked.insert(m.measure.clone());
                }
                let Ok(d) = parse_measure(&m.measure) else { continue };
                let base = match &d {
                    MeasureDef::Change { of } => of.as_ref(),
                    other => other,
                };
                needs_users |= matches!(base, MeasureDef::ActiveUsers { .. });
                needs_email |= matches!(&d, MeasureDef::External { name } if name == measure::EMAIL_RESPONSE_RATE_90D);
                defs.push(d);
            }
        }
        Ok(TenantContext {
            today,
            now,
            cards,
            candidates,
            segments,
            shared: Shared { tracked: 0, populations: HashMap::new() },
            cuts: measure::window_cuts(&defs),
            needs_users,
            needs_email,
            ranked,
        })
    }

    async fn load_shared(&self, store: &Store, tenant: &str) -> Result<Shared> {
        let tracked = if !self.cuts.is_empty() {
            store.tracked_event_names(tenant, self.today - chrono::Duration::days(90)).await?
        } else {
            0
        };
        let mut populations = HashMap::new();
        for m in &self.ranked {
            populations.insert(m.clone(), store.population(tenant, m).await?);
        }
        Ok(Shared { tracked, populations })
    }

    /// The scorecard that scores `row`, if any (the most specific wins).
    pub fn scorecard_for(&self, row: &AccountRow) -> Option<&StoredScorecard> {
        let scope = AccountScope { lifecycle_stage: row.lifecycle_stage.clone(), touch_model: row.touch_model.clone() };
        let facts = std::cell::OnceCell::new();
        let member = |segment: &str| {
            let Some(Some(expr)) = self.segments.get(segment) else { return false };
            let facts = facts.get_or_init(|| row.facts(self.today, self.now));
            expr.evaluate_bool(facts).unwrap_or(false)
        };
        let (id, _, _) = choose(&self.candidates, &scope, member)?;
        self.cards.iter().find(|c| c.id == *id)
    }
}

/// What one scoring pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Accounts a scorecard applies to that got a score.
    pub scored: u64,
    /// HealthScoreChanged events recorded.
    pub changed: u64,
}

/// Scores `rows` (accounts of one tenant, at most a few thousand): reads
/// their inputs with one query per kind, computes every score, and stores
/// the chunk in one transaction. `step` is the move that is news.
pub async fn score_rows(
    store: &Store,
    tenant: &str,
    ctx: &TenantContext,
    rows: Vec<AccountRow>,
    step: f64,
) -> Result<Outcome> {
    let inputs = read_inputs(store, tenant, ctx, rows).await?;
    score_inputs(store, tenant, ctx, inputs, step).await
}

/// What scoring a chunk of accounts reads, read by [`read_inputs`] and
/// used by [`score_inputs`]: a job reads the next chunk's while the
/// database stores the previous one's scores.
pub struct Inputs<'c> {
    /// Inputs read from then on are at least this new.
    read_time: DateTime<Utc>,
    rows: Vec<AccountRow>,
    /// Index in `rows` of each account a scorecard applies to, and the card.
    chosen: Vec<(usize, &'c StoredScorecard)>,
    /// Accounts no scorecard applies to (any more).
    unscored: Vec<Uuid>,
    rollups: HashMap<Uuid, BTreeMap<(NaiveDate, String), DailyRollup>>,
    pushed: HashMap<Uuid, HashMap<String, f64>>,
    emails: HashMap<Uuid, (i64, i64)>,
    latest: HashMap<Uuid, (NaiveDate, f64)>,
    week_ago: HashMap<Uuid, (NaiveDate, f64)>,
    month_ago: HashMap<Uuid, (NaiveDate, f64)>,
}

/// Reads what scoring `rows` needs, one query per kind of input.
pub async fn read_inputs<'c>(
    store: &Store,
    tenant: &str,
    ctx: &'c TenantContext,
    rows: Vec<AccountRow>,
) -> Result<Inputs<'c>> {
    let read_time = Utc::now();
    let today = ctx.today;
    let mut chosen = Vec::with_capacity(rows.len());
    let mut unscored: Vec<Uuid> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        match ctx.scorecard_for(r) {
            Some(c) => chosen.push((i, c)),
            None => unscored.push(r.account_id),
        }
    }
    let mut inputs = Inputs {
        read_time,
        rows,
        chosen,
        unscored,
        rollups: HashMap::new(),
        pushed: HashMap::new(),
        emails: HashMap::new(),
        latest: HashMap::new(),
        week_ago: HashMap::new(),
        month_ago: HashMap::new(),
    };
    if inputs.chosen.is_empty() {
        return Ok(inputs);
    }
    let ids: Vec<Uuid> = inputs.chosen.iter().map(|(i, _)| inputs.rows[*i].account_id).collect();
    let rollups = &mut inputs.rollups;
    // A rollup per bucket of days between the windows' cuts, dated at its
    // newest day: every window measure reads the same sums as from days.
    let bucket_day = |start: u32| today - chrono::Days::new(u64::from(start));
    for (account, start, name, events, quantity, duration) in
        store.usage_in_buckets(tenant, &ids, today, &ctx.cuts).await?
    {
        let day = bucket_day(start);
        let r = rollups
            .entry(account)
            .or_default()
            .entry((day, name.clone()))
            .or_insert_with(|| DailyRollup::new(day, name));
        r.events = events;
        r.quantity = quantity;
        r.duration_secs = duration;
    }
    if ctx.needs_users {
        // Users count across event names: one row of users per bucket, with
        // no name and no events (feature breadth counts names with events).
        for (account, start, user) in store.users_in_buckets(tenant, &ids, today, &ctx.cuts).await? {
            let day = bucket_day(start);
            rollups
                .entry(account)
                .or_default()
                .entry((day, String::new()))
                .or_insert_with(|| DailyRollup::new(day, ""))
                .add_user(&user);
        }
    }
    inputs.pushed = store.measures_of(tenant, &ids).await?;
    if ctx.needs_email {
        inputs.emails = store.email_counts_of(tenant, &ids, ctx.now - chrono::Duration::days(90), ctx.now).await?;
    }
    inputs.latest = store.daily_score_on_or_before(tenant, &ids, today).await?;
    inputs.week_ago = store.daily_score_on_or_before(tenant, &ids, today - chrono::Duration::days(7)).await?;
    inputs.month_ago = store.daily_score_on_or_before(tenant, &ids, today - chrono::Duration::days(30)).await?;
    Ok(inputs)
}

/// Computes the scores of what [`read_inputs`] read and stores them in one
/// transaction.
pub async fn score_inputs(
    store: &Store,
    tenant: &str,
    ctx: &TenantContext,
    inputs: Inputs<'_>,
    step: f64,
) -> Result<Outcome> {
    let Inputs { read_time, rows, chosen, mut unscored, rollups, pushed, emails, latest, week_ago, month_ago } = inputs;
    let today = ctx.today;
    // The stored scores the moves are measured from, read under the
    // tenant's scoring lock (held until this chunk's scores are stored).
    let _scoring = store.scoring_lock(tenant).await;
    if chosen.is_empty() {
        store.save_scores(tenant, today, read_time, &[], &[], &unscored).await?;
        return Ok(Outcome::default());
    }
    let ids: Vec<Uuid> = chosen.iter().map(|(i, _)| rows[*i].account_id).collect();
    let previous = store.health_of(tenant, &ids).await?;
    let no_rollups = BTreeMap::new();
    let no_pushed = HashMap::new();
    let mut snapshots = Vec::with_capacity(chosen.len());
    let mut writes = Vec::new();
    let mut outcome = Outcome::default();
    for (i, card) in chosen {
        let row = &rows[i];
        let id = row.account_id;
        let account_rollups: Vec<DailyRollup> = rollups.get(&id).unwrap_or(&no_rollups).values().cloned().collect();
        let pushed = pushed.get(&id).unwrap_or(&no_pushed);
        let mut values: HashMap<String, Option<f64>> = HashMap::new();
        for m in &card.def.measures {
            let Ok(def) = parse_measure(&m.measure) else { continue };
            let v = match &def {
                MeasureDef::External { name } => match name.as_str() {
                    measure::EMAIL_RESPONSE_RATE_90D => emails
                        .get(&id)
                        .filter(|(sent, _)| *sent > 0)
                        .map(|(sent, replied)| (*replied as f64 / *sent as f64).min(1.0)),
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
                usage => compute_usage(usage, &account_rollups, today, ctx.shared.tracked),
            };
            values.insert(m.measure.clone(), v);
        }
        let new = score::score(&card.def, &values, &ctx.shared.populations);
        snapshots.push((id, values));
        let Some(new) = new else {
            unscored.push(id);
            continue;
        };
        outcome.scored += 1;
        let prev = previous.get(&id);
        // The trend as of today, the new score being today's.
        let history: Vec<(NaiveDate, f64)> = [month_ago.get(&id), week_ago.get(&id)]
            .into_iter()
            .flatten()
            .copied()
            .chain([(today, new.score)])
            .collect();
        let (change_7d, change_30d) = trend(&history, today);
        let moved = score::moved(prev.map(|p| (p.score, p.band)), (new.score, new.band), step);
        let unchanged = prev.is_some_and(|p| {
            p.score == new.score
                && p.band == new.band
                && p.scorecard_id == card.id
                && p.scorecard_version == card.version
                && p.contributions == new.contributions
                && p.change_7d == change_7d
                && p.change_30d == change_30d
        });
        let snapshot_today = latest.get(&id).is_some_and(|(day, _)| *day == today);
        if !moved && unchanged && snapshot_today {
            continue;
        }
        let event = moved.then(|| {
            banso_events::Payload::HealthScoreChanged(ev::HealthScoreChanged {
                account_id: id.to_string(),
                old_score: prev.map(|p| p.score),
                new_score: new.score,
                old_band: prev.map(|p| band_to_proto(p.band) as i32).unwrap_or(0),
                new_band: band_to_proto(new.band) as i32,
                scorecard_id: card.id.to_string(),
                scorecard_version: card.version,
            })
        });
        writes.push(ScoreWrite {
            account_id: id,
            score: new.score,
            band: new.band,
            contributions: new.contributions,
            scorecard_id: card.id,
            scorecard_version: card.version,
            change_7d,
            change_30d,
            band_changed: prev.is_some_and(|p| p.band != new.band),
            event,
        });
    }
    outcome.changed = store.save_scores(tenant, today, read_time, &snapshots, &writes, &unscored).await?;
    Ok(outcome)
}

/// Queues accounts for live rescoring.
#[derive(Clone)]
pub struct Scorer {
    tx: mpsc::UnboundedSender<(String, Uuid)>,
}

impl Scorer {
    /// Starts the scoring task under the supervisor; `step` is the score
    /// change that counts as a move. The queue outlives the task, so a
    /// restarted task carries on with what was queued.
    pub fn supervise(store: Store, step: f64, supervisor: &Supervisor, service: &'static str) -> Scorer {
        let (tx, rx) = mpsc::unbounded_channel::<(String, Uuid)>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        supervisor.spawn(service, "health-live-scorer", move |shutdown| {
            let (store, rx) = (store.clone(), rx.clone());
            async move {
                let mut rx = rx.lock().await;
                loop {
                    let first = tokio::select! {
                        job = rx.recv() => match job { Some(j) => j, None => return Ok(()) },
                        _ = shutdown.cancelled() => return Ok(()),
                    };
                    // Everything queued meanwhile, once each, by tenant.
                    let mut queued: BTreeMap<String, BTreeSet<Uuid>> = BTreeMap::new();
                    queued.entry(first.0).or_default().insert(first.1);
                    while let Ok((tenant, id)) = rx.try_recv() {
                        queued.entry(tenant).or_default().insert(id);
                    }
                    let round = std::time::Instant::now();
                    for (tenant, ids) in queued {
                        let ids: Vec<Uuid> = ids.into_iter().collect();
                        if let Err(e) = rescore(&store, &tenant, &ids, step).await {
                            tracing::warn!(tenant, accounts = ids.len(), error = %e, "rescoring failed");
                        }
                    }
                    // Rescoring is background work beside the ingest its clients
                    // wait on: under a burst that touches every account, back to
                    // back rounds would take a core and rescore each account
                    // over and over. Resting three times as long as the round
                    // took keeps the scorer to a quarter of the time at most, and lets
                    // the next round take in more; a round of a few accounts
                    // rests a few ms.
                    let rest = (round.elapsed() * REST_PER_ROUND).min(MAX_REST);
                    tokio::select! {
                        _ = tokio::time::sleep(rest) => {}
                        _ = shutdown.cancelled() => return Ok(()),
                    }
                }
            }
        });
        Scorer { tx }
    }

    /// Queues one account.
    pub fn account(&self, tenant: &str, id: Uuid) {
        let _ = self.tx.send((tenant.to_owned(), id));
    }
}

async fn rescore(store: &Store, tenant: &str, ids: &[Uuid], step: f64) -> Result<()> {
    let ctx = TenantContext::load(store, tenant).await?;
    for chunk in ids.chunks(LIVE_CHUNK) {
        let rows = store.accounts_by_id(tenant, chunk).await?;
        score_rows(store, tenant, &ctx, rows, step).await?;
    }
    Ok(())
}
