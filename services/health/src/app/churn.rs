//! Churn prediction: a model fitted on the labelled snapshots
//! ([`crate::domain::churn_model`]), trained on the older and validated on
//! the newer.

use std::collections::HashSet;

use banso_kit::{Error, Result, auth::Caller};
use chrono::{NaiveDate, Utc};

use super::{App, backtest::CardRef};
use crate::{
    app::backtest::{labelled, replay_values},
    domain::{
        backtest::{self, Label, Labels, SnapshotKey},
        churn_model::{self, FitError, FitOptions, Model, RiskBucket},
        rollup::day_of,
    },
    events, store,
};

/// The share of snapshot days (the older ones) a model is trained on.
const TRAIN_SHARE: f64 = 0.8;

/// A model asked for: checked by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrainQuery {
    pub scorecard: CardRef,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub horizon: u32,
}

/// A fitted model and how it did on the newer snapshots.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Trained {
    pub scorecard: (uuid::Uuid, i64),
    pub horizon: u32,
    pub model: Model,
    pub split_day: NaiveDate,
    pub training: (u64, u64),
    pub validation: (u64, u64),
    pub validation_auc: Option<f64>,
    /// Live accounts scored today, and those whose bucket moved.
    pub accounts_scored: u64,
    pub risk_changes: u64,
}

/// An account's probability, bucket and reasons.
type Risk = (uuid::Uuid, f64, RiskBucket, Vec<(String, f64)>);

/// Snapshots and distinct churns of `idx` in `labels`.
fn counts(labels: &Labels, idx: &[usize]) -> (u64, u64) {
    let churns: HashSet<u32> = idx.iter().filter_map(|&i| labels.labels[i].churn).collect();
    (idx.len() as u64, churns.len() as u64)
}

impl App {
    pub(crate) async fn train_churn_model(&self, caller: &Caller, q: TrainQuery) -> Result<Trained> {
        let tenant = caller.tenant_id.as_str();
        let conn = self.db.conn();
        let card = store::scorecards::get_version(conn, tenant, q.scorecard.0, q.scorecard.1).await?;
        let (labels, _) = labelled(conn, tenant, q.start, q.end, q.horizon).await?;
        // Older days train, newer validate.
        let mut days: Vec<NaiveDate> = labels.labels.iter().map(|l| l.key.day).collect();
        days.sort();
        days.dedup();
        let split_day =
            days.get(((days.len() as f64) * TRAIN_SHARE).floor() as usize).or(days.last()).copied().unwrap_or(q.end);
        let (train, valid): (Vec<usize>, Vec<usize>) =
            (0..labels.labels.len()).partition(|&i| labels.labels[i].key.day < split_day);
        let training = counts(&labels, &train);
        let validation = counts(&labels, &valid);
        let min = self.settings.min_churns;
        if training.1 < min {
            return Err(too_few(training.1, min));
        }
        let values = replay_values(&self.db, tenant, &card.def, &labels).await?;
        let features: Vec<String> = card.def.measures.iter().map(|m| m.measure.clone()).collect();
        let rows: Vec<Vec<Option<f64>>> = train.iter().map(|&i| values[i].clone()).collect();
        let churned: Vec<bool> = train.iter().map(|&i| labels.labels[i].churn.is_some()).collect();
        // The minimum is of distinct churns (checked above); every churned snapshot counts in the fit.
        let model = churn_model::fit(&features, &rows, &churned, 1, FitOptions::default()).map_err(|e| match e {
            FitError::TooFewChurns { churns, .. } => too_few(churns, min),
            other => Error::FailedPrecondition { reason: "NOT_TRAINABLE", message: other.to_string() },
        })?;
        let valid_labels: Vec<_> = valid.iter().map(|&i| labels.labels[i]).collect();
        // AUC ranks by a score where higher is healthier: the negated probability.
        let risk: Vec<f64> = valid.iter().map(|&i| -model.probability(&values[i])).collect();
        let validation_auc = backtest::auc(&valid_labels, &risk).map(|a| a.auc);
        let mut trained = Trained {
            scorecard: (card.id, card.version),
            horizon: q.horizon,
            model,
            split_day,
            training,
            validation,
            validation_auc,
            accounts_scored: 0,
            risk_changes: 0,
        };
        // Every live account on today's values: its probability, and
        // ChurnRiskChanged where its bucket moved.
        let today = day_of(Utc::now(), store::tenants::time_zone(conn, tenant).await?);
        let mut accounts = Vec::new();
        let mut after = None;
        loop {
            let page = store::accounts::page(conn, tenant, after, 1_000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.account_id);
            accounts.extend(page.iter().map(|a| a.account_id));
        }
        let today_labels = Labels {
            labels: accounts
                .iter()
                .map(|&account| Label { key: SnapshotKey { account, day: today }, churn: None })
                .collect(),
            ..Default::default()
        };
        let values = replay_values(&self.db, tenant, &card.def, &today_labels).await?;
        let risks: Vec<Risk> = accounts
            .iter()
            .zip(&values)
            .map(|(a, v)| {
                let p = trained.model.probability(v);
                (*a, p, RiskBucket::of(p), trained.model.reasons(v))
            })
            .collect();
        let t = &trained;
        let changes = self
            .db
            .write(tenant, async |tx| {
                let old = store::churn_risk::buckets(tx.conn(), tx.tenant()).await?;
                let rows: Vec<_> = risks.iter().map(|(a, p, b, _)| (*a, *p, *b)).collect();
                store::churn_risk::upsert(tx.conn(), tx.tenant(), &rows).await?;
                let changed: Vec<_> = risks
                    .iter()
                    .filter(|(a, _, b, _)| old.get(a) != Some(b))
                    .map(|(a, p, _, reasons)| {
                        events::churn_risk_changed(*a, old.get(a).copied(), *p, t, reasons.clone())
                    })
                    .collect();
                let n = changed.len() as u64;
                tx.emit_all(changed).await?;
                Ok(n)
            })
            .await?;
        trained.accounts_scored = accounts.len() as u64;
        trained.risk_changes = changes;
        Ok(trained)
    }
}

fn too_few(churns: u64, minimum: u64) -> Error {
    Error::FailedPrecondition {
        reason: "TOO_FEW_CHURNS",
        message: format!(
            "{churns} labelled churns in the training snapshots, fewer than the minimum of {minimum} \
             (BANSO_HEALTH_MIN_CHURNS): no model is trained"
        ),
    }
}
