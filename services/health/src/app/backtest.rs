//! Backtests: the scores as served, or a scorecard version replayed on the
//! same days, labelled by the churns that followed them
//! ([`crate::domain::backtest`], [`crate::domain::replay`]). A read;
//! nothing is stored.

pub(crate) use crate::domain::backtest::{BacktestQuery, BacktestResult, CardRef, Scored};

use std::collections::HashMap;

use banso_events::{Db, db::RequestKey};
use banso_kit::{Result, auth::Caller};
use chrono::{Days, NaiveDate, Utc};

use super::App;
use crate::{
    domain::{
        backtest::{self, AccountHistory, Churn, Labels, SnapshotKey},
        outcome::OutcomeKind,
        replay::{self, AccountUsage},
        rollup::day_of,
        score::Band,
        scorecard::ScorecardDef,
    },
    store::{
        self,
        backtest_jobs::{BacktestJob, Phase},
        scorecards::StoredScorecard,
    },
};

/// The default horizon, in days.
pub(crate) const DEFAULT_HORIZON: u32 = 90;
/// The longest horizon.
pub(crate) const MAX_HORIZON: u32 = 730;
/// The longest range of snapshot days, end minus start.
pub(crate) const MAX_RANGE_DAYS: i64 = 731;

/// Before any contract event (dates are 1900–9999 on the wire).
const FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// Each account's churns and reactivations, oldest first.
pub(crate) fn histories(outcomes: Vec<crate::domain::outcome::Outcome>) -> HashMap<uuid::Uuid, AccountHistory> {
    let mut out: HashMap<uuid::Uuid, AccountHistory> = HashMap::new();
    for o in outcomes {
        let h = out.entry(o.account_id).or_default();
        match o.kind {
            OutcomeKind::Churned => h.churns.push(Churn {
                account: o.account_id,
                date: o.effective_date,
                currency: o.currency,
                arr_lost: o.arr_before,
            }),
            OutcomeKind::Reactivated => h.reactivations.push(o.effective_date),
            _ => {}
        }
    }
    out
}

impl App {
    /// Snapshots in [start, end] labelled by churns within the horizon,
    /// scored as served or by a replayed scorecard version, and optionally
    /// compared with another on the same snapshots.
    pub(crate) async fn backtest_scorecard(&self, caller: &Caller, q: BacktestQuery) -> Result<BacktestResult> {
        run(&self.db, caller.tenant_id.as_str(), q, Report::Nowhere).await
    }

    /// Queues `q` as a background job (its scorecards checked first); a
    /// `request_id` seen before returns the job it queued.
    pub(crate) async fn start_backtest(
        &self,
        caller: &Caller,
        q: BacktestQuery,
        request_id: Option<&str>,
    ) -> Result<BacktestJob> {
        let tenant = caller.tenant_id.as_str();
        let key = request_id.map(|request_id| RequestKey { operation: "StartBacktest", request_id });
        let (conn, owner) = (self.db.conn().clone(), caller.tenant_id.clone());
        let find = async move |id: &str| {
            let id = banso_events::db::remembered(id)?;
            store::backtest_jobs::get(&conn, &owner, id).await
        };
        // A retry finds its job before the scorecards are checked again (one
        // deleted since must not turn a queued job into an error).
        if let Some(k) = key
            && let Some(id) = banso_kit::idempotency::lookup(self.db.conn(), tenant, k.operation, k.request_id).await?
        {
            return find(&id).await;
        }
        cards(self.db.conn(), tenant, &q).await?;
        let job = self
            .db
            .create_once(tenant, key, find, async |tx| {
                let job = BacktestJob::queued(q);
                store::backtest_jobs::insert(tx.conn(), tx.tenant(), &job).await?;
                Ok(job)
            })
            .await?;
        self.backtests.wake();
        Ok(job)
    }

    /// A backtest job of the caller's tenant.
    pub(crate) async fn get_backtest_job(&self, caller: &Caller, id: uuid::Uuid) -> Result<BacktestJob> {
        store::backtest_jobs::get(self.db.conn(), caller.tenant_id.as_str(), id).await
    }
}

/// The scorecards `q` names; NOT_FOUND for an unknown one or another tenant's.
async fn cards(
    conn: &impl sea_orm::ConnectionTrait,
    tenant: &str,
    q: &BacktestQuery,
) -> Result<(Option<StoredScorecard>, Option<StoredScorecard>)> {
    let main = match q.scorecard {
        Some((id, v)) => Some(store::scorecards::get_version(conn, tenant, id, v).await?),
        None => None,
    };
    let other = match q.compare {
        Some((id, v)) => Some(store::scorecards::get_version(conn, tenant, id, v).await?),
        None => None,
    };
    Ok((main, other))
}

/// Where a run reports how far it got: nowhere (the RPC answers at once),
/// or its job's row (`GetBacktestJob` shows it).
pub(crate) enum Report<'a> {
    Nowhere,
    Job { id: uuid::Uuid, owner: &'a str },
}

impl Report<'_> {
    async fn step(&self, db: &Db, tenant: &str, phase: Phase, steps: (i32, i32), snapshots: Option<i64>) {
        let Report::Job { id, owner } = self else { return };
        match store::backtest_jobs::progress(db.conn(), tenant, *id, owner, phase, steps, snapshots).await {
            Ok(true) => {}
            // The lease moved on; `finish` will say so.
            Ok(false) => {}
            // Progress is for reading only: a failed write does not stop the run.
            Err(e) => tracing::warn!(tenant, job = %id, error = %e, "recording a backtest job's progress failed"),
        }
    }
}

/// A backtest of `q` for `tenant` (the RPC's and the background job's),
/// reporting its steps to `report`: labelling, a replay per scorecard
/// replayed, the report.
pub(crate) async fn run(db: &Db, tenant: &str, q: BacktestQuery, report: Report<'_>) -> Result<BacktestResult> {
    let conn = db.conn();
    // Unknown (or another tenant's) scorecards first: NOT_FOUND before any work.
    let (main_card, other_card) = cards(conn, tenant, &q).await?;
    let total = 2 + i32::from(main_card.is_some()) + i32::from(other_card.is_some());
    report.step(db, tenant, Phase::Labelling, (0, total), None).await;
    // The usage both replayed scorecards need, read beside the labels.
    let read = [&main_card, &other_card].into_iter().flatten().map(|c| &c.def);
    let (labels, snapshots, usage) = match read.clone().next() {
        Some(first) => {
            let mut both = first.clone();
            both.measures = read.flat_map(|d| d.measures.iter().cloned()).collect();
            let (labels, snapshots, usage) = labelled_with_usage(db, tenant, &both, q.start, q.end, q.horizon).await?;
            (labels, snapshots, Some(usage))
        }
        None => {
            let (labels, snapshots) = labelled(conn, tenant, q.start, q.end, q.horizon).await?;
            (labels, snapshots, None)
        }
    };
    let n = Some(i64::try_from(labels.labels.len()).unwrap_or(i64::MAX));
    let next = if other_card.is_some() {
        Phase::Comparing
    } else if main_card.is_some() {
        Phase::Replaying
    } else {
        Phase::Reporting
    };
    report.step(db, tenant, next, (1, total), n).await;
    let served: HashMap<SnapshotKey, (f64, Band)> = snapshots
        .iter()
        .map(|(account, day, score, band)| (SnapshotKey { account: *account, day: *day }, (*score, *band)))
        .collect();
    // Two scorecards replay at once, one per core: each reads the same
    // usage and labels, and neither waits on the other.
    let (main_scores, other_scores) = match (&main_card, &other_card, &usage) {
        (Some(card), Some(other), Some(usage)) => {
            let (main, other) = std::thread::scope(|s| {
                let other = s.spawn(|| replay_with(usage, &other.def, &labels));
                let main = replay_with(usage, &card.def, &labels);
                (main, other.join())
            });
            let other = other.map_err(|_| banso_kit::Error::internal(anyhow::anyhow!("a replay panicked")))?;
            report.step(db, tenant, Phase::Reporting, (total - 1, total), n).await;
            (main, Some(other))
        }
        (Some(card), None, Some(usage)) => {
            let scores = replay_with(usage, &card.def, &labels);
            report.step(db, tenant, Phase::Reporting, (total - 1, total), n).await;
            (scores, None)
        }
        (None, Some(other), Some(usage)) => {
            let served = labels.labels.iter().map(|l| served.get(&l.key).copied()).collect();
            let scores = replay_with(usage, &other.def, &labels);
            report.step(db, tenant, Phase::Reporting, (total - 1, total), n).await;
            (served, Some(scores))
        }
        _ => (labels.labels.iter().map(|l| served.get(&l.key).copied()).collect(), None),
    };
    // The snapshots every scorer scored.
    let keep: Vec<usize> = (0..labels.labels.len())
        .filter(|&i| main_scores[i].is_some() && other_scores.as_ref().is_none_or(|o| o[i].is_some()))
        .collect();
    let unscored = (labels.labels.len() - keep.len()) as u64;
    let kept = Labels { labels: keep.iter().map(|&i| labels.labels[i]).collect(), ..labels.clone() };
    let pick =
        |scores: &[Option<(f64, Band)>]| -> Vec<(f64, Band)> { keep.iter().filter_map(|&i| scores[i]).collect() };
    let main = pick(&main_scores);
    let scored = |card: Option<&StoredScorecard>, s: &[(f64, Band)]| Scored {
        scorecard: card.map(|c| (c.id, c.version)),
        unreplayable: card.map(|c| replay::unreplayable(&c.def)).unwrap_or_default(),
        report: backtest::report(&kept, s),
    };
    // The second scorecard's report and the comparison beside the first's
    // report: each sorts every snapshot.
    let (main, other) = std::thread::scope(|s| {
        let other = other_scores.map(|o| {
            let o = pick(&o);
            let (main, kept, other_card, scored) = (&main, &kept, other_card.as_ref(), &scored);
            let b: Vec<f64> = o.iter().map(|(s, _)| *s).collect();
            let compared = s.spawn(move || {
                let a: Vec<f64> = main.iter().map(|(s, _)| *s).collect();
                backtest::compare(&kept.labels, &a, &b)
            });
            let scored = s.spawn(move || scored(other_card, &o));
            (scored, compared)
        });
        let main = scored(main_card.as_ref(), &main);
        (
            main,
            other.map(|(scored, compared)| Ok::<_, Box<dyn std::any::Any + Send>>((scored.join()?, compared.join()?))),
        )
    });
    let other = other.transpose().map_err(|_| banso_kit::Error::internal(anyhow::anyhow!("a report panicked")))?;
    Ok(BacktestResult {
        query: q,
        too_recent: labels.too_recent,
        after_churn: labels.after_churn,
        unscored,
        main,
        other,
    })
}

/// The tenant's daily snapshots in [start, end], and their labels by churns
/// within `horizon` days.
pub(crate) async fn labelled(
    conn: &impl sea_orm::ConnectionTrait,
    tenant: &str,
    start: NaiveDate,
    end: NaiveDate,
    horizon: u32,
) -> Result<(Labels, Vec<(uuid::Uuid, NaiveDate, f64, Band)>)> {
    let today = day_of(Utc::now(), store::tenants::time_zone(conn, tenant).await?);
    let snapshots = store::history::daily_in_range(conn, tenant, start, end).await?;
    // Churns up to the last day a kept snapshot's horizon reaches, and
    // every earlier one (a churn before the range still marks the days after it).
    let until = end.checked_add_days(Days::new(u64::from(horizon) + 1)).unwrap_or(end);
    let kinds = [OutcomeKind::Churned, OutcomeKind::Reactivated];
    let outcomes = store::outcomes::list(conn, tenant, &kinds, FIRST_DAY, until).await?;
    let histories = histories(outcomes);
    let mut keys: Vec<SnapshotKey> =
        snapshots.iter().map(|(account, day, _, _)| SnapshotKey { account: *account, day: *day }).collect();
    keys.dedup();
    let labels: Labels = backtest::label(keys, &histories, horizon, today);
    Ok((labels, snapshots))
}

/// [`labelled`] and the usage a replay of `def` reads over the same days,
/// read at once (a replay of a large tenant spends its time reading).
pub(crate) async fn labelled_with_usage(
    db: &Db,
    tenant: &str,
    def: &ScorecardDef,
    start: NaiveDate,
    end: NaiveDate,
    horizon: u32,
) -> Result<(Labels, Vec<(uuid::Uuid, NaiveDate, f64, Band)>, PastUsage)> {
    // A task of its own, so that decoding its rows takes the other core.
    let read = {
        let (db, tenant, def) = (db.clone(), tenant.to_owned(), def.clone());
        tokio::spawn(async move { PastUsage::read(&db, &tenant, &def, start, end, None).await })
    };
    let (labels, snapshots) = labelled(db.conn(), tenant, start, end, horizon).await?;
    let mut usage =
        read.await.map_err(|e| banso_kit::Error::internal(anyhow::anyhow!("reading past usage: {e}")))??;
    usage.count_tracked(&labels);
    Ok((labels, snapshots, usage))
}

/// The usage a replay of `def` over the labelled snapshots reads.
pub(crate) struct PastUsage {
    rollups: HashMap<uuid::Uuid, Vec<crate::domain::rollup::DailyRollup>>,
    first_days: HashMap<uuid::Uuid, NaiveDate>,
    /// The days each event name was used, when `def` has a breadth measure.
    name_days: Vec<(NaiveDate, String)>,
    /// Per snapshot day, the event names of its 90 days ([`PastUsage::count_tracked`]).
    tracked: HashMap<NaiveDate, usize>,
}

impl PastUsage {
    /// The usage of the snapshots of `labels`.
    async fn load(db: &Db, tenant: &str, def: &ScorecardDef, labels: &Labels) -> Result<PastUsage> {
        let (Some(first), Some(last)) =
            (labels.labels.iter().map(|l| l.key.day).min(), labels.labels.iter().map(|l| l.key.day).max())
        else {
            return Ok(PastUsage {
                rollups: HashMap::new(),
                first_days: HashMap::new(),
                name_days: Vec::new(),
                tracked: HashMap::new(),
            });
        };
        let mut accounts: Vec<uuid::Uuid> = labels.labels.iter().map(|l| l.key.account).collect();
        accounts.sort();
        accounts.dedup();
        let mut out = PastUsage::read(db, tenant, def, first, last, Some(&accounts)).await?;
        out.count_tracked(labels);
        Ok(out)
    }

    /// The usage `def`'s replay reads for snapshot days in [first, last]
    /// of `accounts`, or of every account of the tenant (then it needs no
    /// labels first, and is read beside them: [`labelled_with_usage`]).
    async fn read(
        db: &Db,
        tenant: &str,
        def: &ScorecardDef,
        first: NaiveDate,
        last: NaiveDate,
        accounts: Option<&[uuid::Uuid]>,
    ) -> Result<PastUsage> {
        let conn = db.conn();
        let from = first.checked_sub_days(Days::new(u64::from(replay::lookback(def)))).unwrap_or(first);
        let with_users = def.measures.iter().any(|m| m.measure.contains("active_users_"));
        let names = replay::event_names(def);
        // The accounts with usage first (an index seek each), so that their
        // rollups can be read in two halves at once, one per core.
        let first_days = store::inputs::first_usage_days(conn, tenant, accounts).await?;
        let mut ids: Vec<uuid::Uuid> = match accounts {
            Some(accounts) => accounts.iter().filter(|a| first_days.contains_key(a)).copied().collect(),
            None => first_days.keys().copied().collect(),
        };
        ids.sort();
        let read = |half: Vec<uuid::Uuid>| {
            let names = names.clone();
            async move {
                let mut rollups = match names {
                    // Event counts only: their counts alone.
                    Some(names) => {
                        store::inputs::daily_event_counts(conn, tenant, Some(&half), from, last, &names).await?
                    }
                    None => store::inputs::daily_rollups(conn, tenant, Some(&half), from, last, with_users).await?,
                };
                for r in rollups.values_mut() {
                    r.sort_by_key(|r| r.day);
                }
                Ok::<_, banso_kit::Error>(rollups)
            }
        };
        let half = ids.len().div_ceil(2);
        let second = ids.split_off(half);
        let name_days = async {
            if !replay::needs_tracked(def) {
                return Ok(Vec::new());
            }
            let since = first.checked_sub_days(Days::new(90)).unwrap_or(first);
            store::inputs::event_name_days(conn, tenant, since, last).await
        };
        // Separate reads on separate connections, at once.
        let (mut rollups, more, name_days) = tokio::try_join!(read(ids), read(second), name_days)?;
        rollups.extend(more);
        Ok(PastUsage { rollups, first_days, name_days, tracked: HashMap::new() })
    }

    /// Counts the tracked event names of each snapshot day of `labels`.
    fn count_tracked(&mut self, labels: &Labels) {
        if self.name_days.is_empty() {
            return;
        }
        let mut days: Vec<NaiveDate> = labels.labels.iter().map(|l| l.key.day).collect();
        days.sort();
        days.dedup();
        self.tracked = replay::tracked_per_day(&self.name_days, &days);
    }

    fn of(&self, account: uuid::Uuid) -> AccountUsage<'_> {
        AccountUsage {
            first_day: self.first_days.get(&account).copied(),
            rollups: self.rollups.get(&account).map_or(&[], Vec::as_slice),
        }
    }

    /// Each labelled snapshot's day and account usage, in the labels' order.
    fn snapshots(&self, labels: &Labels) -> Vec<(NaiveDate, AccountUsage<'_>)> {
        let mut last: Option<(uuid::Uuid, AccountUsage<'_>)> = None;
        labels
            .labels
            .iter()
            .map(|l| {
                // The labels come by account: look each one up once.
                let usage = match last {
                    Some((a, u)) if a == l.key.account => u,
                    _ => self.of(l.key.account),
                };
                last = Some((l.key.account, usage));
                (l.key.day, usage)
            })
            .collect()
    }
}

/// What `def` would have scored each labelled snapshot, from `usage` read
/// for it (or for more).
pub(crate) fn replay_with(usage: &PastUsage, def: &ScorecardDef, labels: &Labels) -> Vec<Option<(f64, Band)>> {
    replay::replay(def, &usage.snapshots(labels), &usage.tracked)
}

/// The raw values of `def`'s measures for each labelled snapshot on its day.
pub(crate) async fn replay_values(
    db: &Db,
    tenant: &str,
    def: &ScorecardDef,
    labels: &Labels,
) -> Result<Vec<Vec<Option<f64>>>> {
    let usage = PastUsage::load(db, tenant, def, labels).await?;
    Ok(values_with(&usage, def, labels))
}

/// The raw values of `def`'s measures for each labelled snapshot, from
/// `usage` read for it.
pub(crate) fn values_with(usage: &PastUsage, def: &ScorecardDef, labels: &Labels) -> Vec<Vec<Option<f64>>> {
    replay::values(def, &usage.snapshots(labels), &usage.tracked)
}
