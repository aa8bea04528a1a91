//! Scoring accounts: read their inputs in bulk, compute, store.
//!
//! Two callers share [`Scoring`]: the live scorer below — every change
//! that can move a score (ingested usage, a measure value, an account
//! attribute, an e-mail reply) queues its account, and a background task
//! rescores what is queued, de-duplicating bursts — and the recompute job
//! (`recompute.rs`), which walks a whole tenant in chunks. A score moving by
//! at least the configured step, or changing band, publishes
//! HealthScoreChanged through the outbox in the transaction that stores it.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::Arc,
};

use banso_cel::Expression;
use banso_events::{
    Db, Payload,
    partition::{Partitions, partition_of},
};
use banso_kit::{Result, supervise::Supervisor};
use chrono::{DateTime, Days, NaiveDate, Utc};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::{
    domain::{
        account::{AccountRow, LifecycleStage},
        churn_features::{self, Input},
        churn_model::{RiskBucket, Scored, Trained, worth_storing},
        measure::{self, MeasureDef, Totals, Windows, parse_measure, previous_usage_value_of, usage_value_of},
        rollup::day_of,
        score::{self, trend},
        scorecard::{
            AccountScope, Normalisation, Scope, ScorecardDef, choose, population as score_population, replaced,
        },
    },
    events,
    ingest_load::IngestLoad,
    metrics, predictions,
    store::{self, ScoringLocks, health::ScoreWrite, scorecards::StoredScorecard},
};

/// Accounts a recompute job scores per transaction.
pub(crate) const CHUNK: usize = 1_000;
/// Accounts the live scorer scores at once: its inputs (usage totals per
/// window, pushed values, scores) are held in memory meanwhile, and the
/// live scorer runs beside ingest, whose memory it shares. 500 halves the
/// round's statements and commits of 100 for a burst touching every
/// account; memory stays far under its goal (docs/benchmarks.md).
const LIVE_CHUNK: usize = 500;

/// The longest the live scorer rests after a round (see [`Scorer::supervise`]).
/// The queue is a set of accounts, so resting never builds a backlog of
/// work, only of accounts: a round rescores each queued account once. The
/// cap keeps the rest a coalescing window rather than a throttle: resting
/// in proportion to long rounds made the next round longer still (each
/// account costs about 0.3 ms), and at 2,000 events/s over 10,000
/// accounts the rounds grew to seconds (docs/benchmarks.md, bus and
/// freshness under load).
const MAX_REST: std::time::Duration = std::time::Duration::from_millis(100);
/// The live scorer rests this many times as long as its last round took,
/// up to [`MAX_REST`]: a round of a few accounts rests a few ms.
const REST_PER_ROUND: u32 = 3;

/// The day `days` before `day` (the calendar's first day if before it).
fn days_before(day: NaiveDate, days: u64) -> NaiveDate {
    day.checked_sub_days(Days::new(days)).unwrap_or(NaiveDate::MIN)
}

/// What scoring a tenant's accounts needs beyond the accounts' own inputs,
/// read once per batch or job.
pub(crate) struct TenantContext {
    pub today: NaiveDate,
    pub now: DateTime<Utc>,
    cards: Vec<StoredScorecard>,
    candidates: Vec<(Uuid, ScorecardDef, DateTime<Utc>)>,
    /// Segment id (as scopes name it) → its compiled expression; `None` if
    /// the segment is unknown here or its expression does not compile.
    segments: HashMap<String, Option<Expression>>,
    /// The denominator of feature breadth.
    tracked: usize,
    /// The windows of days the tenant's usage measures read, and which
    /// inputs they need.
    windows: Windows,
    needs_users: bool,
    needs_email: bool,
    /// Measures some scorecard normalises by percentile, with their stored
    /// populations (each scored account's latest value; during a recompute,
    /// accounts not reached yet hold their previous ones). Every measure's
    /// values are kept as snapshots, so a measure switched to percentile
    /// ranks at once.
    ranked: HashMap<String, Vec<f64>>,
    /// Values of ranked measures a recompute computed ahead of scoring
    /// ([`TenantContext::rank_ahead`]): they stand in the populations for
    /// accounts not stored yet.
    ahead: HashMap<String, HashMap<Uuid, f64>>,
    /// The tenant's latest model of each target, and how each of its
    /// features is read: every account scored is scored by them too.
    models: Vec<(Trained, Vec<Input>)>,
}

impl TenantContext {
    pub(crate) async fn load(conn: &impl sea_orm::ConnectionTrait, tenant: &str) -> Result<TenantContext> {
        let now = Utc::now();
        let today = day_of(now, store::tenants::time_zone(conn, tenant).await?);
        let cards = store::scorecards::list(conn, tenant, None, None).await?;
        let candidates = cards.iter().map(|c| (c.id, c.def.clone(), c.create_time)).collect();
        let known = store::segments::all_of(conn, tenant).await?;
        let mut segments = HashMap::new();
        let (mut defs, mut needs_users, mut needs_email) = (Vec::new(), false, false);
        let mut ranked = HashMap::new();
        for c in &cards {
            if let Scope::Segment(id) = &c.def.scope {
                let expr = Uuid::parse_str(id)
                    .ok()
                    .and_then(|u| known.get(&u))
                    .and_then(|src| match Expression::compile(src, &banso_cel::account_schema()) {
                        Ok(e) => Some(e),
                        Err(e) => {
                            // Its scorecards then score no account: say why.
                            tracing::warn!(tenant, segment = %id, error = %e, "a segment's expression no longer compiles");
                            None
                        }
                    });
                segments.insert(id.clone(), expr);
            }
            for m in &c.def.measures {
                if matches!(m.normalisation, Normalisation::Percentile) {
                    ranked.insert(m.measure.clone(), Vec::new());
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
        // The models read their usage measures the way they were trained:
        // from the same windows of rollups.
        let models: Vec<(Trained, Vec<Input>)> = store::churn_models::latest_per_target(conn, tenant)
            .await?
            .into_iter()
            .map(|m| {
                let inputs = churn_features::inputs(&m.model.features);
                (m, inputs)
            })
            .collect();
        for (_, inputs) in &models {
            for i in inputs {
                if let Input::Usage(d) = i {
                    let base = match d {
                        MeasureDef::Change { of } => of.as_ref(),
                        other => other,
                    };
                    needs_users |= matches!(base, MeasureDef::ActiveUsers { .. });
                    defs.push(d.clone());
                }
            }
        }
        let windows = Windows::of(&defs);
        let tracked = if windows.is_empty() {
            0
        } else {
            store::inputs::tracked_event_names(conn, tenant, days_before(today, 90)).await?
        };
        for (m, population) in &mut ranked {
            *population = store::measures::population(conn, tenant, m).await?;
        }
        Ok(TenantContext {
            today,
            now,
            cards,
            candidates,
            segments,
            tracked,
            windows,
            needs_users,
            needs_email,
            ranked,
            ahead: HashMap::new(),
            models,
        })
    }

    /// Ranked measures no account has a stored value of: a scorecard ranks
    /// by a measure no scorecard used before.
    pub(crate) fn unpopulated(&self) -> Vec<String> {
        self.ranked.iter().filter(|(_, p)| p.is_empty()).map(|(m, _)| m.clone()).collect()
    }

    /// Takes `values` (every account's value of the measures, computed ahead
    /// by a recompute) as their populations: the job's first chunks then rank
    /// among every account, not among themselves.
    pub(crate) fn rank_ahead(&mut self, values: HashMap<String, HashMap<Uuid, f64>>) {
        for (m, by_account) in &values {
            self.ranked.insert(m.clone(), score_population(by_account.values().map(|v| Some(*v))));
        }
        self.ahead = values;
    }

    /// The scorecard that scores `row`, if any (the most specific wins).
    pub(crate) fn scorecard_for(&self, row: &AccountRow) -> Option<&StoredScorecard> {
        let scope = AccountScope { lifecycle_stage: row.lifecycle_stage, touch_model: row.touch_model };
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
pub(crate) struct Outcome {
    /// Accounts a scorecard applies to that got a score.
    pub scored: u64,
    /// HealthScoreChanged events recorded.
    pub changed: u64,
}

/// What scoring a chunk of accounts reads, read by [`Scoring::read_inputs`]
/// and used by [`Scoring::score_inputs`]: a job reads the next chunk's while
/// the database stores the previous one's scores.
pub(crate) struct Inputs<'c> {
    /// Inputs read from then on are at least this new.
    read_time: DateTime<Utc>,
    rows: Vec<AccountRow>,
    /// Index in `rows` of each account a scorecard applies to, and the card.
    chosen: Vec<(usize, &'c StoredScorecard)>,
    /// Accounts no scorecard applies to (any more).
    unscored: Vec<Uuid>,
    /// Each account's usage over the windows (absent: none in any).
    totals: HashMap<Uuid, Totals>,
    /// Accounts that ever had usage rolled up.
    used: HashSet<Uuid>,
    pushed: HashMap<Uuid, HashMap<String, f64>>,
    emails: HashMap<Uuid, (i64, i64)>,
    /// The stored values of the ranked measures, which this chunk's values replace.
    stored_ranked: HashMap<Uuid, HashMap<String, f64>>,
    latest: HashMap<Uuid, (NaiveDate, f64)>,
    week_ago: HashMap<Uuid, (NaiveDate, f64)>,
    month_ago: HashMap<Uuid, (NaiveDate, f64)>,
}

/// One account's raw value of each measure of its scorecard (`None`: missing).
pub(crate) type Values = HashMap<String, Option<f64>>;

/// One account's value of each usage window measure of its scorecard over
/// the window just before ([`measure::previous_usage_value`]); measures
/// without one are absent.
pub(crate) type Previous = HashMap<String, f64>;

/// What [`Inputs::readings`] read of one account.
struct Reading {
    id: Uuid,
    values: Values,
    previous: Previous,
    /// Each model's features (in [`TenantContext`]'s order of models), as
    /// the model reads them.
    features: Vec<Vec<Option<f64>>>,
}

impl Inputs<'_> {
    /// The raw values of every account a scorecard applies to.
    pub(crate) fn values(&self, ctx: &TenantContext) -> Vec<(Uuid, Values)> {
        self.readings(ctx, false).into_iter().map(|r| (r.id, r.values)).collect()
    }

    /// The raw values of every account a scorecard applies to and, with
    /// `scoring`, the previous windows' values of its usage measures and
    /// the features of the tenant's models.
    fn readings(&self, ctx: &TenantContext, scoring: bool) -> Vec<Reading> {
        let today = ctx.today;
        let no_usage = Totals::zero(&ctx.windows);
        let no_pushed = HashMap::new();
        let mut out = Vec::with_capacity(self.chosen.len());
        for (i, card) in &self.chosen {
            let row = &self.rows[*i];
            let id = row.account_id;
            let totals = self.totals.get(&id).unwrap_or(&no_usage);
            let pushed = self.pushed.get(&id).unwrap_or(&no_pushed);
            let used = self.used.contains(&id);
            let mut values = Values::new();
            let mut before = Previous::new();
            for m in &card.def.measures {
                let Ok(def) = parse_measure(&m.measure) else { continue };
                let v = match &def {
                    MeasureDef::External { name } => match name.as_str() {
                        measure::EMAIL_RESPONSE_RATE_90D => self
                            .emails
                            .get(&id)
                            .filter(|(sent, _)| *sent > 0)
                            .map(|(sent, replied)| (*replied as f64 / *sent as f64).min(1.0)),
                        measure::DAYS_TO_RENEWAL => row.renewal_date.map(|r| (r - today).num_days() as f64),
                        measure::CONTRACT_ACTIVE => Some(
                            if row.lifecycle_stage != LifecycleStage::Churned && row.arr_amount_minor.unwrap_or(0) > 0 {
                                1.0
                            } else {
                                0.0
                            },
                        ),
                        other => pushed.get(other).copied(),
                    },
                    usage => {
                        if scoring
                            && let Some(p) = previous_usage_value_of(usage, used, &ctx.windows, totals, ctx.tracked)
                        {
                            before.insert(m.measure.clone(), p);
                        }
                        usage_value_of(usage, used, &ctx.windows, totals, ctx.tracked)
                    }
                };
                values.insert(m.measure.clone(), v);
            }
            let features = if scoring {
                ctx.models
                    .iter()
                    .map(|(m, inputs)| {
                        churn_features::live_values(&m.model.features, inputs, row, today, |d| {
                            usage_value_of(d, used, &ctx.windows, totals, ctx.tracked)
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            out.push(Reading { id, values, previous: before, features });
        }
        out
    }
}

/// Scores accounts: the service's database, the tenants' scoring locks and
/// the move that is news.
#[derive(Clone)]
pub(crate) struct Scoring {
    pub(crate) db: Db,
    locks: ScoringLocks,
    /// How far a score must move to publish HealthScoreChanged (a band
    /// change always does).
    step: f64,
}

impl Scoring {
    pub(crate) fn new(db: Db, step: f64) -> Self {
        Scoring { db, locks: ScoringLocks::default(), step }
    }

    /// Scores `rows` (accounts of one tenant, at most a few thousand): reads
    /// their inputs with one query per kind, computes every score, and
    /// stores the chunk in one transaction.
    pub(crate) async fn score_rows(&self, tenant: &str, ctx: &TenantContext, rows: Vec<AccountRow>) -> Result<Outcome> {
        let inputs = self.read_inputs(tenant, ctx, rows).await?;
        self.score_inputs(tenant, ctx, inputs).await
    }

    /// Reads what scoring `rows` needs, one query per kind of input.
    pub(crate) async fn read_inputs<'c>(
        &self,
        tenant: &str,
        ctx: &'c TenantContext,
        rows: Vec<AccountRow>,
    ) -> Result<Inputs<'c>> {
        let conn = self.db.conn();
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
            totals: HashMap::new(),
            used: HashSet::new(),
            pushed: HashMap::new(),
            emails: HashMap::new(),
            stored_ranked: HashMap::new(),
            latest: HashMap::new(),
            week_ago: HashMap::new(),
            month_ago: HashMap::new(),
        };
        if inputs.chosen.is_empty() {
            return Ok(inputs);
        }
        let ids: Vec<Uuid> = inputs.chosen.iter().map(|(i, _)| inputs.rows[*i].account_id).collect();
        if !ctx.windows.is_empty() {
            // Each account's totals over the windows, one row each. Usage in
            // a window says the account has had usage; for the others (none
            // in any window) ask whether they ever had any.
            let totals = store::inputs::usage_totals(conn, tenant, &ids, today, &ctx.windows, ctx.needs_users).await?;
            for (id, t) in totals {
                if t.used {
                    inputs.used.insert(id);
                }
                inputs.totals.insert(id, t.totals);
            }
            let idle: Vec<Uuid> = ids.iter().copied().filter(|id| !inputs.used.contains(id)).collect();
            if !idle.is_empty() {
                inputs.used.extend(store::inputs::ever_used(conn, tenant, &idle).await?);
            }
        }
        inputs.pushed = store::measures::values_of(conn, tenant, &ids).await?;
        if ctx.needs_email {
            let since = ctx.now.checked_sub_signed(chrono::Duration::days(90)).unwrap_or(DateTime::<Utc>::MIN_UTC);
            inputs.emails = store::inputs::email_counts(conn, tenant, &ids, since, ctx.now).await?;
        }
        if !ctx.ranked.is_empty() {
            let ranked: Vec<&str> = ctx.ranked.keys().map(String::as_str).collect();
            inputs.stored_ranked = store::measures::snapshots_of(conn, tenant, &ids, &ranked).await?;
        }
        let days = [today, days_before(today, 7), days_before(today, 30)];
        [inputs.latest, inputs.week_ago, inputs.month_ago] =
            store::history::daily_on_or_before_each(conn, tenant, &ids, days).await?;
        Ok(inputs)
    }

    /// Computes the scores of what [`Self::read_inputs`] read and stores
    /// them in one transaction.
    pub(crate) async fn score_inputs(&self, tenant: &str, ctx: &TenantContext, inputs: Inputs<'_>) -> Result<Outcome> {
        let readings = inputs.readings(ctx, true);
        let mut previous_windows: HashMap<Uuid, Previous> = HashMap::with_capacity(readings.len());
        // Each model's features of every account read.
        let mut features: Vec<Vec<FeatureRow>> = vec![Vec::with_capacity(readings.len()); ctx.models.len()];
        let snapshots: Vec<(Uuid, Values)> = readings
            .into_iter()
            .map(|r| {
                for (out, row) in features.iter_mut().zip(r.features) {
                    out.push((r.id, row));
                }
                previous_windows.insert(r.id, r.previous);
                (r.id, r.values)
            })
            .collect();
        let Inputs { read_time, rows, chosen, mut unscored, stored_ranked, latest, week_ago, month_ago, .. } = inputs;
        let today = ctx.today;
        // The stored scores the moves are measured from, read under the
        // tenant's scoring lock (held until this chunk's scores are stored).
        let _scoring = self.locks.lock(tenant).await;
        if chosen.is_empty() {
            self.save(tenant, today, read_time, Chunk { unscored: &unscored, ..Chunk::default() }).await?;
            return Ok(Outcome::default());
        }
        let ids: Vec<Uuid> = chosen.iter().map(|(i, _)| rows[*i].account_id).collect();
        let previous = store::health::of(self.db.conn(), tenant, &ids).await?;
        // The percentile populations with this chunk's values in place of
        // their stored ones (or of the ones computed ahead), so that every
        // value ranks among the tenant's latest, its own included: a measure
        // nobody had a value of before still ranks.
        let populations: HashMap<String, Vec<f64>> = ctx
            .ranked
            .iter()
            .map(|(m, stored)| {
                let ahead = ctx.ahead.get(m);
                let removed: Vec<f64> = ids
                    .iter()
                    .filter_map(|id| stored_ranked.get(id).and_then(|s| s.get(m)).or_else(|| ahead?.get(id)).copied())
                    .collect();
                let added: Vec<f64> = snapshots.iter().filter_map(|(_, vs)| vs.get(m).copied().flatten()).collect();
                (m.clone(), replaced(stored, &removed, &added))
            })
            .collect();
        // …then the scores.
        let mut writes: Vec<(ScoreWrite, Option<Payload>)> = Vec::new();
        let mut outcome = Outcome::default();
        for ((_, card), (id, values)) in chosen.iter().zip(&snapshots) {
            let id = *id;
            let Some(new) = score::score(&card.def, values, &populations) else {
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
            let moved = score::moved(prev.map(|p| (p.score, p.band)), (new.score, new.band), self.step);
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
                let no_previous = Previous::new();
                events::health_score_changed(events::ScoreChange {
                    account: id,
                    old: prev.map(|p| (p.score, p.band)),
                    new: &new,
                    card,
                    trend: (change_7d, change_30d),
                    previous: previous_windows.get(&id).unwrap_or(&no_previous),
                })
            });
            writes.push((
                ScoreWrite {
                    account_id: id,
                    score: new.score,
                    band: new.band,
                    contributions: new.contributions,
                    scorecard_id: card.id,
                    scorecard_version: card.version,
                    change_7d,
                    change_30d,
                    band_changed: prev.is_some_and(|p| p.band != new.band),
                },
                event,
            ));
        }
        let models: Vec<(&Trained, Vec<FeatureRow>)> = ctx.models.iter().map(|(m, _)| m).zip(features).collect();
        let ranked: Vec<&str> = ctx.ranked.keys().map(String::as_str).collect();
        let chunk =
            Chunk { snapshots: &snapshots, ranked: &ranked, writes: &writes, unscored: &unscored, models: &models };
        outcome.changed = self.save(tenant, today, read_time, chunk).await?;
        Ok(outcome)
    }

    /// Stores a chunk's measure values and scores in one transaction: the
    /// snapshots (the percentile population), then each score unless one
    /// computed from newer inputs is already stored (`read_time`); for the
    /// scores stored, today's daily snapshot, band changes and the
    /// HealthScoreChanged events. The current score of `unscored` accounts
    /// (no scorecard applies, or no measure counts) is removed, so no stale
    /// score outlives its scorecard; their history stays. Each model's
    /// probabilities of the chunk are stored where they moved
    /// ([`worth_storing`]), their bucket moves published — except for
    /// accounts whose newer inputs another pass stored meanwhile. Returns how
    /// many HealthScoreChanged events were recorded.
    async fn save(&self, tenant: &str, today: NaiveDate, read_time: DateTime<Utc>, chunk: Chunk<'_>) -> Result<u64> {
        let Chunk { snapshots, ranked, writes, unscored, models } = chunk;
        let now = Utc::now();
        let accounts: Vec<Uuid> = snapshots.iter().map(|(a, _)| *a).collect();
        let values: Vec<(Uuid, &str, f64)> = snapshots
            .iter()
            .flat_map(|(a, vs)| {
                vs.iter()
                    .filter(|(m, _)| ranked.contains(&m.as_str()))
                    .filter_map(move |(m, v)| v.map(|v| (*a, m.as_str(), v)))
            })
            .collect();
        let scores: Vec<ScoreWrite> = writes.iter().map(|(w, _)| w.clone()).collect();
        self.db
            .write(tenant, async |tx| {
                let conn = tx.conn();
                store::health::remove(conn, tenant, unscored, read_time.timestamp_micros()).await?;
                store::measures::replace_snapshots(conn, tenant, &accounts, ranked, &values).await?;
                let stored = store::health::upsert(conn, tenant, read_time, &scores).await?;
                let applied: Vec<&ScoreWrite> = scores.iter().filter(|w| stored.contains(&w.account_id)).collect();
                store::history::record(conn, tenant, today, now, &applied).await?;
                let events: Vec<Payload> = writes
                    .iter()
                    .filter(|(w, _)| stored.contains(&w.account_id))
                    .filter_map(|(_, e)| e.clone())
                    .collect();
                let n = events.len() as u64;
                if n > 0 {
                    tx.emit_all(events).await?;
                }
                let stale: HashSet<Uuid> =
                    scores.iter().map(|w| w.account_id).filter(|a| !stored.contains(a)).collect();
                for (model, rows) in models {
                    let rows: Vec<&FeatureRow> = rows.iter().filter(|r| !stale.contains(&r.0)).collect();
                    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
                    let held = predictions::held(conn, tenant, model.target, Some(&ids)).await?;
                    // Reasons only for what is stored.
                    let moved: Vec<Scored> = rows
                        .iter()
                        .filter_map(|(a, row)| {
                            let p = model.model.probability(row);
                            worth_storing(held.get(a), model.version, p)
                                .then(|| (*a, p, RiskBucket::of(p), model.model.reasons(row)))
                        })
                        .collect();
                    predictions::record(tx, model, model.version, &moved, &held).await?;
                }
                Ok(n)
            })
            .await
    }
}

/// An account and a model's features of it.
type FeatureRow = (Uuid, Vec<Option<f64>>);

/// What a pass stores of a chunk of accounts ([`Scoring::save`]).
#[derive(Default)]
struct Chunk<'a> {
    /// Each account's raw measure values.
    snapshots: &'a [(Uuid, Values)],
    /// The measures some scorecard of the tenant ranks by: only their values
    /// are stored (the percentile populations are all that reads them).
    ranked: &'a [&'a str],
    /// The scores to store, each with its HealthScoreChanged if it moved.
    writes: &'a [(ScoreWrite, Option<Payload>)],
    /// Accounts no scorecard scores.
    unscored: &'a [Uuid],
    /// Each model's features of the accounts.
    models: &'a [(&'a Trained, Vec<FeatureRow>)],
}

/// Queues accounts for live rescoring.
///
/// On a partitioned bus each replica scores the accounts of the partitions
/// it holds ([`banso_events::partition`]); an account queued on another
/// replica (its usage was rolled up there, say) is handed over to the
/// holder as an AccountsToScore event ([`hand_over`]), so each account is
/// scored by one replica and its HealthScoreChanged published once.
#[derive(Clone)]
pub(crate) struct Scorer {
    tx: mpsc::UnboundedSender<(String, Uuid)>,
}

/// Accounts an AccountsToScore event names at most.
const HANDED_OVER_PER_EVENT: usize = 1_000;

impl Scorer {
    /// Starts the scoring task under the supervisor. The queue outlives the
    /// task, so a restarted task carries on with what was queued.
    pub(crate) fn supervise(
        scoring: Scoring,
        load: IngestLoad,
        partitions: Partitions,
        supervisor: &Supervisor,
        service: &'static str,
    ) -> Scorer {
        let (tx, rx) = mpsc::unbounded_channel::<(String, Uuid)>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let requeue = Scorer { tx: tx.clone() };
        supervisor.spawn(service, "health-live-scorer", move |shutdown| {
            let (scoring, rx, load, partitions, requeue) =
                (scoring.clone(), rx.clone(), load.clone(), partitions.clone(), requeue.clone());
            async move {
                let mut rx = rx.lock().await;
                loop {
                    let first = tokio::select! {
                        job = rx.recv() => match job { Some(j) => j, None => return Ok(()) },
                        _ = shutdown.cancelled() => return Ok(()),
                    };
                    // A saturated ingest first (bounded), then everything
                    // queued meanwhile, once each, by tenant.
                    load.give_way("live-scorer", &shutdown).await;
                    let mut queued: BTreeMap<String, BTreeSet<Uuid>> = BTreeMap::new();
                    queued.entry(first.0).or_default().insert(first.1);
                    while let Ok((tenant, id)) = rx.try_recv() {
                        queued.entry(tenant).or_default().insert(id);
                    }
                    let round = std::time::Instant::now();
                    let mut theirs: Vec<(String, Uuid)> = Vec::new();
                    for (tenant, ids) in queued {
                        let (ids, others): (Vec<Uuid>, Vec<Uuid>) =
                            ids.into_iter().partition(|id| partitions.holds_account(&tenant, *id));
                        theirs.extend(others.into_iter().map(|id| (tenant.clone(), id)));
                        if ids.is_empty() {
                            continue;
                        }
                        match rescore(&scoring, &tenant, &ids).await {
                            Ok(()) => metrics::live_scored(ids.len()),
                            Err(e) => tracing::warn!(tenant, accounts = ids.len(), error = %e, "rescoring failed"),
                        }
                    }
                    if !theirs.is_empty()
                        && let Err(e) = hand_over(&scoring.db, partitions.count(), &theirs).await
                    {
                        // Kept, for the next round (the database is away, say).
                        tracing::warn!(accounts = theirs.len(), error = %e, "handing accounts over failed; retrying");
                        for (tenant, id) in &theirs {
                            requeue.account(tenant, *id);
                        }
                    }
                    // Rescoring is background work beside the ingest its clients
                    // wait on: a short rest after a short round lets the next
                    // round take in more accounts (each rescored once however
                    // many events it had) and gives ingest the core meanwhile.
                    // Long rounds rest at most MAX_REST: under heavy load the
                    // scorer then takes most of a core, and a score follows its
                    // usage within about two rounds.
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

    /// A queue nobody reads (tests that score by hand).
    #[cfg(test)]
    pub(crate) fn idle() -> Scorer {
        Scorer { tx: mpsc::unbounded_channel().0 }
    }

    /// Queues one account.
    pub(crate) fn account(&self, tenant: &str, id: Uuid) {
        let _ = self.tx.send((tenant.to_owned(), id));
    }
}

/// Records, in the outbox, AccountsToScore events for the replicas that
/// hold `accounts`' partitions: one per tenant and partition (of at most
/// [`HANDED_OVER_PER_EVENT`] accounts), its subject naming the partition.
pub(crate) async fn hand_over(db: &Db, partitions: u32, accounts: &[(String, Uuid)]) -> Result<()> {
    let mut by: BTreeMap<&str, BTreeMap<u32, Vec<String>>> = BTreeMap::new();
    for (tenant, id) in accounts {
        let p = partition_of(tenant, Some(*id), partitions);
        by.entry(tenant.as_str()).or_default().entry(p).or_default().push(id.to_string());
    }
    for (tenant, parts) in by {
        let payloads: Vec<Payload> = parts
            .into_values()
            .flat_map(|ids| {
                ids.chunks(HANDED_OVER_PER_EVENT)
                    .map(|c| Payload::AccountsToScore(banso_proto::events::AccountsToScore { account_ids: c.to_vec() }))
                    .collect::<Vec<_>>()
            })
            .collect();
        db.write(tenant, async |tx| tx.emit_all(payloads).await).await?;
    }
    metrics::handed_over(accounts.len());
    Ok(())
}

/// Queues for rescoring every live account of the partitions this replica
/// has just taken, in the background: whatever the replica that held them
/// had queued and not scored when it died is scored here, once.
pub(crate) fn supervise_takeover(
    scorer: Scorer,
    db: Db,
    partitions: Partitions,
    supervisor: &Supervisor,
    service: &'static str,
) {
    if partitions.count() <= 1 {
        return;
    }
    supervisor.spawn(service, "health-partition-takeover", move |shutdown| {
        let (scorer, db, partitions) = (scorer.clone(), db.clone(), partitions.clone());
        async move {
            let mut held = partitions.subscribe();
            let mut known: BTreeSet<u32> = BTreeSet::new();
            loop {
                let now = held.borrow_and_update().clone();
                let taken: BTreeSet<u32> = now.difference(&known).copied().collect();
                known = now;
                if !taken.is_empty() {
                    let mut queued = 0usize;
                    for tenant in store::accounts::tenants(db.conn()).await? {
                        let mut after = None;
                        loop {
                            let ids = store::accounts::ids_after(db.conn(), &tenant, after, 5_000).await?;
                            let Some(last) = ids.last() else { break };
                            after = Some(*last);
                            for id in ids {
                                if taken.contains(&partition_of(&tenant, Some(id), partitions.count())) {
                                    scorer.account(&tenant, id);
                                    queued += 1;
                                }
                            }
                        }
                    }
                    tracing::info!(partitions = ?taken, accounts = queued, "partitions taken: their accounts queued for rescoring");
                }
                tokio::select! {
                    changed = held.changed() => if changed.is_err() { return Ok(()) },
                    _ = shutdown.cancelled() => return Ok(()),
                }
            }
        }
    });
}

async fn rescore(scoring: &Scoring, tenant: &str, ids: &[Uuid]) -> Result<()> {
    let ctx = TenantContext::load(scoring.db.conn(), tenant).await?;
    for chunk in ids.chunks(LIVE_CHUNK) {
        let rows = store::accounts::by_ids(scoring.db.conn(), tenant, chunk).await?;
        scoring.score_rows(tenant, &ctx, rows).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scoring task that panics while it holds a tenant's scoring lock
    /// (or the map of locks) leaves scoring working for every tenant.
    #[tokio::test]
    async fn scoring_goes_on_after_a_panic_under_the_scoring_lock() {
        let db = banso_testkit::fresh_database().await.unwrap();
        let conn = db.connect::<crate::migration::Migrator>(crate::NAME).await.unwrap();
        let scoring = Scoring::new(Db::new(conn, Default::default(), crate::NAME), 5.0);
        let locks = scoring.locks.clone();
        let task = tokio::spawn(async move {
            let _held = locks.lock("acme").await;
            panic!("a bug while scoring acme");
        });
        assert!(task.await.unwrap_err().is_panic());
        for tenant in ["acme", "globex"] {
            let ctx = TenantContext::load(scoring.db.conn(), tenant).await.unwrap();
            let out =
                tokio::time::timeout(std::time::Duration::from_secs(10), scoring.score_rows(tenant, &ctx, vec![]))
                    .await
                    .unwrap_or_else(|_| panic!("scoring {tenant} is blocked"))
                    .unwrap();
            assert_eq!(out, Outcome::default());
        }
    }
}
