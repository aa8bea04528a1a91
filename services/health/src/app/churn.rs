//! Churn prediction: a model fitted on the labelled snapshots
//! ([`crate::domain::churn_model`]), trained on the older and validated on
//! the newer.

use std::collections::{HashMap, HashSet};

use banso_kit::{Error, Result, auth::Caller, paging::QueryKey};
use chrono::{Days, NaiveDate, Utc};

use super::{App, PageRequest, backtest::CardRef};
use crate::{
    app::backtest::{labelled_with_usage, replay_values, replay_with, values_with},
    domain::{
        account::AccountRow,
        backtest::{self, Label, Labels, SnapshotKey},
        churn_features,
        churn_model::{self, FitError, FitOptions, RiskBucket, Target, Trained},
        outcome::OutcomeKind,
        renewal_forecast::{self, Due, GroupKind, Grouped, SegmentBy, Window},
        rollup::day_of,
    },
    predictions, store,
    store::model_schedules::Retraining,
};

/// A model as the API shows it: with its target's scheduled retraining
/// when it is the tenant's newest of that target.
pub(crate) type Shown = (Trained, Option<Retraining>);

/// The share of snapshot days (the older ones) a model is trained on.
const TRAIN_SHARE: f64 = 0.8;

/// A model asked for: checked by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrainQuery {
    pub scorecard: CardRef,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub horizon: u32,
    pub target: Target,
}

use churn_model::Scored as Risk;

/// Each labelled snapshot's outcome to predict: the account and day of the
/// churn (or expansion) within its horizon, if any.
type Positive = Option<(uuid::Uuid, NaiveDate)>;

/// Snapshots and distinct outcomes of `idx`.
fn counts(positives: &[Positive], idx: &[usize]) -> (u64, u64) {
    let distinct: HashSet<(uuid::Uuid, NaiveDate)> = idx.iter().filter_map(|&i| positives[i]).collect();
    (idx.len() as u64, distinct.len() as u64)
}

impl App {
    pub(crate) async fn train_churn_model(&self, caller: &Caller, q: TrainQuery) -> Result<Shown> {
        let t = self.train_model(caller.tenant_id.as_str(), q).await?;
        Ok(self.with_retraining(&caller.tenant_id, vec![t]).await?.remove(0))
    }

    /// Trains and keeps a model of `tenant` (on demand, or scheduled by
    /// `retrain`): fit on the older snapshots, validated on the newer, and
    /// every live account scored.
    pub(crate) async fn train_model(&self, tenant: &str, q: TrainQuery) -> Result<Trained> {
        let conn = self.db.conn();
        let card = store::scorecards::get_version(conn, tenant, q.scorecard.0, q.scorecard.1).await?;
        let (labels, _, usage) = labelled_with_usage(&self.db, tenant, &card.def, q.start, q.end, q.horizon).await?;
        // Older days train, newer validate.
        let mut days: Vec<NaiveDate> = labels.labels.iter().map(|l| l.key.day).collect();
        days.sort();
        days.dedup();
        let split_day =
            days.get(((days.len() as f64) * TRAIN_SHARE).floor() as usize).or(days.last()).copied().unwrap_or(q.end);
        let (train, valid): (Vec<usize>, Vec<usize>) =
            (0..labels.labels.len()).partition(|&i| labels.labels[i].key.day < split_day);
        let positives: Vec<Positive> = match q.target.expansion() {
            None => labels
                .labels
                .iter()
                .map(|l| l.churn.map(|c| &labels.churns[c as usize]).map(|c| (c.account, c.date)))
                .collect(),
            Some(want) => {
                let until = q.end.checked_add_days(Days::new(u64::from(q.horizon) + 1)).unwrap_or(q.end);
                let outcomes = store::outcomes::list(conn, tenant, &[OutcomeKind::Expanded], q.start, until).await?;
                let mut by_account: HashMap<uuid::Uuid, Vec<_>> = HashMap::new();
                for o in outcomes {
                    by_account.entry(o.account_id).or_default().push((o.effective_date, o.expansion));
                }
                labels
                    .labels
                    .iter()
                    .map(|l| {
                        let e = by_account.get(&l.key.account).map_or(&[][..], |v| v.as_slice());
                        churn_model::expansion_within(e, l.key.day, q.horizon, want).map(|d| (l.key.account, d))
                    })
                    .collect()
            }
        };
        let training = counts(&positives, &train);
        let validation = counts(&positives, &valid);
        let min = self.settings.min_churns;
        if training.1 < min {
            return Err(too_few(q.target, training.1, min));
        }
        let mut values = values_with(&usage, &card.def, &labels);
        drop(usage);
        // Beside the measures, the attributes of the training accounts as
        // the projection has them now (it keeps no history of them).
        let mut ids: Vec<uuid::Uuid> = labels.labels.iter().map(|l| l.key.account).collect();
        ids.sort();
        ids.dedup();
        let rows_now = store::accounts::by_ids(conn, tenant, &ids).await?;
        let known: HashMap<uuid::Uuid, &AccountRow> = rows_now.iter().map(|a| (a.account_id, a)).collect();
        let trained_on: HashSet<uuid::Uuid> = train.iter().map(|&i| labels.labels[i].key.account).collect();
        let attributes =
            churn_features::attribute_features(rows_now.iter().filter(|a| trained_on.contains(&a.account_id)));
        for (v, l) in values.iter_mut().zip(&labels.labels) {
            v.extend(churn_features::attribute_values(&attributes, known.get(&l.key.account).copied(), l.key.day));
        }
        let mut features: Vec<String> = card.def.measures.iter().map(|m| m.measure.clone()).collect();
        features.extend(attributes.iter().cloned());
        let rows: Vec<Vec<Option<f64>>> = train.iter().map(|&i| values[i].clone()).collect();
        let churned: Vec<bool> = train.iter().map(|&i| positives[i].is_some()).collect();
        // The minimum is of distinct churns (checked above); every churned snapshot counts in the fit.
        let model = churn_model::fit(&features, &rows, &churned, 1, FitOptions::default()).map_err(|e| match e {
            FitError::TooFewChurns { churns, .. } => too_few(q.target, churns, min),
            other => Error::FailedPrecondition { reason: "NOT_TRAINABLE", message: other.to_string() },
        })?;
        // A label whose `churn` is any index when positive: what the AUC reads.
        let valid_labels: Vec<_> =
            valid.iter().map(|&i| Label { churn: positives[i].map(|_| 0), ..labels.labels[i] }).collect();
        // AUC ranks by a score where higher is healthier: the negated probability.
        let risk: Vec<f64> = valid.iter().map(|&i| -model.probability(&values[i])).collect();
        let validation_auc = backtest::auc(&valid_labels, &risk).map(|a| a.auc);
        let mut trained = Trained {
            version: 0,
            target: q.target,
            scorecard: (card.id, card.version),
            start: q.start,
            end: q.end,
            horizon: q.horizon,
            model,
            split_day,
            training,
            validation,
            validation_auc,
            accounts_scored: 0,
            risk_changes: 0,
            train_time: banso_kit::wire::now(),
        };
        // Every live account on today's values: its probability, and
        // ChurnRiskChanged where its bucket moved.
        let today = day_of(Utc::now(), store::tenants::time_zone(conn, tenant).await?);
        let mut live = Vec::new();
        let mut after = None;
        loop {
            let page = store::accounts::page(conn, tenant, after, 1_000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.account_id);
            live.extend(page);
        }
        let accounts: Vec<uuid::Uuid> = live.iter().map(|a| a.account_id).collect();
        let today_labels = Labels {
            labels: accounts
                .iter()
                .map(|&account| Label { key: SnapshotKey { account, day: today }, churn: None })
                .collect(),
            ..Default::default()
        };
        let mut values = replay_values(&self.db, tenant, &card.def, &today_labels).await?;
        for (v, a) in values.iter_mut().zip(&live) {
            v.extend(churn_features::attribute_values(&attributes, Some(a), today));
        }
        let risks: Vec<Risk> = accounts
            .iter()
            .zip(&values)
            .map(|(a, v)| {
                let p = trained.model.probability(v);
                (*a, p, RiskBucket::of(p), trained.model.reasons(v))
            })
            .collect();
        trained.accounts_scored = accounts.len() as u64;
        let t = &trained;
        let target = q.target;
        // Two trainings of one tenant finishing together both want the next
        // version: the loser's transaction meets the winner's key and is
        // made again on top of it (a new version, the buckets as the winner
        // left them), a few times, then ABORTED for the caller to retry.
        let mut attempt = 0;
        let (version, changes) = loop {
            attempt += 1;
            let kept = self.keep_model(tenant, t, target, &risks).await;
            match kept {
                Err(Error::AlreadyExists(_)) if attempt < KEEP_ATTEMPTS => {
                    tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
                }
                Err(Error::AlreadyExists(_)) => {
                    return Err(Error::Aborted {
                        reason: "CONCURRENT_UPDATE",
                        message: "other trainings of this tenant's models kept taking the next version; retry".into(),
                    });
                }
                other => break other?,
            }
        };
        trained.version = version;
        trained.risk_changes = changes;
        Ok(trained)
    }

    /// Keeps a trained model as the tenant's next version with the
    /// accounts' new probabilities, and the bucket moves as events, in one
    /// transaction: (version, moves).
    async fn keep_model(&self, tenant: &str, t: &Trained, target: Target, risks: &[Risk]) -> Result<(i64, u64)> {
        let retrain_every = self.settings.retrain_every;
        self.db
            .write(tenant, async |tx| {
                let held = predictions::held(tx.conn(), tx.tenant(), target, None).await?;
                // The model is kept with the count of moves it made.
                let kept = Trained { risk_changes: predictions::moves(&held, risks).len() as u64, ..t.clone() };
                let version = store::churn_models::insert_next(tx.conn(), tx.tenant(), &kept).await?;
                let n = predictions::record(tx, &kept, version, risks, &held).await?;
                // The next retraining of this target is due one interval on.
                if let Some(due) = retrain_every.and_then(|every| after(kept.train_time, every)) {
                    store::model_schedules::schedule(tx.conn(), tx.tenant(), target, due).await?;
                }
                Ok((version, n))
            })
            .await
    }
}

/// `t` plus `d`; `None` past the calendar's end.
pub(crate) fn after(t: chrono::DateTime<Utc>, d: std::time::Duration) -> Option<chrono::DateTime<Utc>> {
    t.checked_add_signed(chrono::Duration::from_std(d).ok()?)
}

/// Attempts at keeping a model when concurrent trainings take its version.
const KEEP_ATTEMPTS: u64 = 5;

/// The renewal forecast of a period: its groups, the renewal rate of the
/// year before, and the days it covers (both included).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RenewalForecast {
    pub groups: Vec<Grouped>,
    pub measured_renewal_rate: Option<f64>,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// Suggested weights beside the current ones, and the AUC of each.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WeightSuggestion {
    pub model: Trained,
    pub current: crate::domain::scorecard::ScorecardDef,
    pub suggested: Vec<Option<f64>>,
    pub current_auc: Option<f64>,
    pub suggested_auc: Option<f64>,
    pub snapshots: u64,
}

impl App {
    /// The renewal forecast of `[start, end]`: totals per currency (group
    /// ""), then per owner and currency; and the renewal rate of the year
    /// before `start`.
    pub(crate) async fn forecast_renewals(
        &self,
        caller: &Caller,
        window: Window,
        segment_by: Option<SegmentBy>,
    ) -> Result<RenewalForecast> {
        let (conn, tenant) = (self.db.conn(), caller.tenant_id.as_str());
        let fy_start_month = store::tenants::fiscal_year_start_month(conn, tenant).await?;
        let (start, end) = window.days(fy_start_month).ok_or_else(|| {
            Error::invalid("fiscal_year", format!("{window:?} is beyond the supported range of dates"))
        })?;
        let p = store::churn_risk::probabilities(conn, tenant).await?;
        let mut live = Vec::new();
        let mut after = None;
        loop {
            let page = store::accounts::page(conn, tenant, after, 1_000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.account_id);
            live.extend(page);
        }
        let due = |kind: GroupKind| {
            live.iter()
                .filter_map(|a| {
                    Some(Due {
                        group: match (kind, segment_by) {
                            (GroupKind::Total, _) => "",
                            (GroupKind::Owner, _) => a.owner_id.as_str(),
                            (GroupKind::Segment, Some(by)) => by.value_of(a),
                            (GroupKind::Segment, None) => return None,
                        },
                        currency: a.arr_currency.as_deref()?,
                        arr: a.arr_amount_minor?,
                        renewal_date: a.renewal_date?,
                        churn_probability: p.get(&a.account_id).copied(),
                    })
                })
                .collect::<Vec<_>>()
        };
        let mut out: Vec<Grouped> = Vec::new();
        for kind in [GroupKind::Total, GroupKind::Owner, GroupKind::Segment] {
            for ((g, c), f) in renewal_forecast::forecast(due(kind), start, end) {
                out.push((kind, g.to_owned(), c.to_owned(), f));
            }
        }
        let from = start.checked_sub_days(Days::new(365)).unwrap_or(start);
        let until = start.pred_opt().unwrap_or(start);
        let kinds = [OutcomeKind::Renewed, OutcomeKind::Churned];
        let outcomes = store::outcomes::list(conn, tenant, &kinds, from, until).await?;
        let renewed: HashSet<uuid::Uuid> =
            outcomes.iter().filter(|o| o.kind == OutcomeKind::Renewed).map(|o| o.account_id).collect();
        let churned: HashSet<uuid::Uuid> =
            outcomes.iter().filter(|o| o.kind == OutcomeKind::Churned).map(|o| o.account_id).collect();
        let n = renewed.len() + churned.len();
        let rate = (n > 0).then(|| renewed.len() as f64 / n as f64);
        Ok(RenewalForecast { groups: out, measured_renewal_rate: rate, start, end })
    }

    /// Weights for the model's scorecard that rank as the model does,
    /// backtested beside the current ones on the model's validation days.
    pub(crate) async fn suggest_weights(&self, caller: &Caller, version: Option<i64>) -> Result<WeightSuggestion> {
        let (conn, tenant) = (self.db.conn(), caller.tenant_id.as_str());
        let model = store::churn_models::get_version(conn, tenant, version).await?;
        if model.target != Target::Churn {
            return Err(Error::FailedPrecondition {
                reason: "NOT_A_CHURN_MODEL",
                message: format!(
                    "model {} predicts {}: scorecard weights are suggested from a churn model",
                    model.version,
                    model.target.as_str()
                ),
            });
        }
        let card = store::scorecards::get_version(conn, tenant, model.scorecard.0, Some(model.scorecard.1)).await?;
        let suggested = churn_model::suggested_weights(&card.def, &model.model);
        let mut def = card.def.clone();
        for (m, w) in def.measures.iter_mut().zip(&suggested) {
            m.weight = w.unwrap_or(0.0);
        }
        // Both scorecards read the same measures: one read beside the labels.
        let (labels, _, usage) =
            labelled_with_usage(&self.db, tenant, &card.def, model.split_day, model.end, model.horizon).await?;
        let current = replay_with(&usage, &card.def, &labels);
        let other = replay_with(&usage, &def, &labels);
        // The snapshots both scored.
        let keep: Vec<usize> =
            (0..labels.labels.len()).filter(|&i| current[i].is_some() && other[i].is_some()).collect();
        let kept: Vec<Label> = keep.iter().map(|&i| labels.labels[i]).collect();
        let auc = |s: &[Option<(f64, crate::domain::score::Band)>]| {
            let scores: Vec<f64> = keep.iter().filter_map(|&i| s[i].map(|x| x.0)).collect();
            backtest::auc(&kept, &scores).map(|a| a.auc)
        };
        Ok(WeightSuggestion {
            current_auc: auc(&current),
            suggested_auc: auc(&other),
            snapshots: kept.len() as u64,
            model,
            current: card.def,
            suggested,
        })
    }

    /// An account's latest churn probability (if a model scored it) and
    /// expansion probabilities, each with its reasons and model version;
    /// NOT_FOUND for an account the tenant does not have.
    pub(crate) async fn get_account_predictions(
        &self,
        caller: &Caller,
        account: uuid::Uuid,
    ) -> Result<Vec<churn_model::Prediction>> {
        let (conn, tenant) = (self.db.conn(), caller.tenant_id.as_str());
        if store::accounts::get_live(conn, tenant, account).await?.is_none() {
            return Err(Error::not_found("account", account.to_string()));
        }
        let mut out: Vec<_> = store::churn_risk::of_account(conn, tenant, account).await?.into_iter().collect();
        out.extend(store::expansion_signal::of_account(conn, tenant, account).await?);
        Ok(out)
    }

    /// A version of the tenant's churn models (the latest without one),
    /// with its target's scheduled retraining if it is the newest of it.
    pub(crate) async fn get_churn_model(&self, caller: &Caller, version: Option<i64>) -> Result<Shown> {
        let t = store::churn_models::get_version(self.db.conn(), &caller.tenant_id, version).await?;
        Ok(self.with_retraining(&caller.tenant_id, vec![t]).await?.remove(0))
    }

    /// The tenant's churn models, newest first, a page at a time, as
    /// [`Self::get_churn_model`] shows them.
    pub(crate) async fn list_churn_models(&self, caller: &Caller, page: PageRequest) -> Result<(Vec<Shown>, String)> {
        let key = QueryKey::new("ListChurnModels", &caller.tenant_id);
        let before: Option<i64> = self.page_tokens.decode(&key, &page.token)?;
        let rows = store::churn_models::list(self.db.conn(), &caller.tenant_id, before, page.size + 1).await?;
        let (rows, next) = self.page_tokens.page(&key, rows, page.size, |last| last.version)?;
        Ok((self.with_retraining(&caller.tenant_id, rows).await?, next))
    }

    /// `models` each with its target's scheduled retraining when it is the
    /// tenant's newest of that target and scheduled retraining is on.
    pub(crate) async fn with_retraining(&self, tenant: &str, models: Vec<Trained>) -> Result<Vec<Shown>> {
        if self.settings.retrain_every.is_none() || models.is_empty() {
            return Ok(models.into_iter().map(|t| (t, None)).collect());
        }
        let conn = self.db.conn();
        let newest: HashMap<Target, i64> =
            store::churn_models::newest_versions(conn, tenant).await?.into_iter().collect();
        let mut schedules: HashMap<Target, Retraining> =
            store::model_schedules::of_tenant(conn, tenant).await?.into_iter().collect();
        Ok(models
            .into_iter()
            .map(|t| {
                let r = (newest.get(&t.target) == Some(&t.version)).then(|| schedules.remove(&t.target)).flatten();
                (t, r)
            })
            .collect())
    }
}

fn too_few(target: Target, count: u64, minimum: u64) -> Error {
    let (reason, what) = match target {
        Target::Churn => ("TOO_FEW_CHURNS", "churns"),
        Target::Expansion => ("TOO_FEW_EXPANSIONS", "expansions"),
        Target::Upsell => ("TOO_FEW_EXPANSIONS", "upsells"),
        Target::CrossSell => ("TOO_FEW_EXPANSIONS", "cross-sells"),
    };
    Error::FailedPrecondition {
        reason,
        message: format!(
            "{count} labelled {what} in the training snapshots, fewer than the minimum of {minimum} \
             (BANSO_HEALTH_MIN_CHURNS): no model is trained"
        ),
    }
}
