//! Portfolio views and recompute jobs over gRPC: conversions and validation.

use banso_cel::Expression;
use banso_kit::{Error, Result, Violations, wire::timestamp};
use banso_proto::health as pb;
use uuid::Uuid;

use crate::{
    api_scores::contribution_to_proto,
    domain::{
        account::AccountRow,
        portfolio::{Conditions, Distribution, Totals},
        score::Band,
    },
    scorer::band_to_proto,
    store::{
        Store,
        jobs::{Job, JobState},
        portfolio::{ColumnFilter, HealthOrder},
        scores::StoredHealth,
    },
};

const LIFECYCLE_STAGES: &[&str] = &["onboarding", "adoption", "expansion", "renewal", "churned"];
const TOUCH_MODELS: &[&str] = &["high", "low", "tech"];

/// A validated AccountHealthFilter.
pub(crate) struct PortfolioFilter {
    pub columns: ColumnFilter,
    pub segment_id: Option<Uuid>,
    pub condition: Option<Expression>,
}

impl PortfolioFilter {
    /// What a page token is bound to.
    pub fn query_part(&self) -> String {
        format!(
            "{:?}|{:?}|{}",
            self.columns,
            self.segment_id,
            self.condition.as_ref().map(|c| c.source()).unwrap_or_default()
        )
    }

    /// The CEL parts, the segment's expression taken from the projection:
    /// NOT_FOUND for a segment health has not heard of.
    pub async fn conditions(self, store: &Store, tenant: &str) -> Result<(ColumnFilter, Conditions)> {
        let segment = match self.segment_id {
            None => None,
            Some(id) => {
                let src = store
                    .segments(tenant)
                    .await?
                    .remove(&id)
                    .ok_or_else(|| Error::not_found("segment", id.to_string()))?;
                Some(Expression::compile(&src, &banso_cel::account_schema()).map_err(|e| {
                    Error::internal(anyhow::anyhow!("segment {id}: its stored expression does not compile: {e}"))
                })?)
            }
        };
        Ok((self.columns, Conditions { segment, condition: self.condition }))
    }
}

fn band_from_proto(v: &mut Violations, field: &str, b: i32) -> Option<Band> {
    match pb::Band::try_from(b) {
        Ok(pb::Band::Red) => Some(Band::Red),
        Ok(pb::Band::Yellow) => Some(Band::Yellow),
        Ok(pb::Band::Green) => Some(Band::Green),
        _ => {
            v.add(field, format!("{b} is not a band; use BAND_RED, BAND_YELLOW or BAND_GREEN"));
            None
        }
    }
}

fn one_of(v: &mut Violations, field: &str, values: &[String], allowed: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, s) in values.iter().enumerate() {
        let s = s.trim().to_lowercase();
        if allowed.contains(&s.as_str()) {
            out.push(s);
        } else {
            v.add(format!("{field}[{i}]"), format!("{:?} is not one of {}", values[i], allowed.join(", ")));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Checks every field of a filter, naming each bad one under `filter.`.
pub(crate) fn filter_from_proto(v: &mut Violations, f: Option<&pb::AccountHealthFilter>) -> PortfolioFilter {
    let Some(f) = f else {
        return PortfolioFilter { columns: ColumnFilter::default(), segment_id: None, condition: None };
    };
    let mut bands: Vec<Band> =
        f.bands.iter().enumerate().filter_map(|(i, b)| band_from_proto(v, &format!("filter.bands[{i}]"), *b)).collect();
    bands.sort_by_key(|b| b.as_str());
    bands.dedup();
    let uuid = |v: &mut Violations, field: &str, s: &str| {
        if s.is_empty() { None } else { v.take(banso_kit::wire::uuid(field, s)) }
    };
    let scorecard_id = uuid(v, "filter.scorecard_id", &f.scorecard_id);
    let segment_id = uuid(v, "filter.segment_id", &f.segment_id);
    let owner_id = f.owner_id.trim();
    if owner_id.len() > 128 {
        v.add("filter.owner_id", format!("must be at most 128 characters, got {}", owner_id.len()));
    }
    let condition = match f.condition.trim() {
        "" => None,
        src => match Expression::compile(src, &banso_cel::account_schema()) {
            Ok(e) => Some(e),
            Err(e) => {
                v.add("filter.condition", e.to_string());
                None
            }
        },
    };
    PortfolioFilter {
        columns: ColumnFilter {
            bands,
            scorecard_id,
            lifecycle_stages: one_of(v, "filter.lifecycle_stages", &f.lifecycle_stages, LIFECYCLE_STAGES),
            touch_models: one_of(v, "filter.touch_models", &f.touch_models, TOUCH_MODELS),
            owner_id: (!owner_id.is_empty()).then(|| owner_id.to_owned()),
        },
        segment_id,
        condition,
    }
}

pub(crate) fn order_from_proto(v: &mut Violations, o: i32) -> HealthOrder {
    use pb::AccountHealthOrder as O;
    match O::try_from(o) {
        Ok(O::Unspecified | O::ScoreAsc) => HealthOrder::ScoreAsc,
        Ok(O::ScoreDesc) => HealthOrder::ScoreDesc,
        Ok(O::Change7dAsc) => HealthOrder::Change7dAsc,
        Ok(O::Change7dDesc) => HealthOrder::Change7dDesc,
        Ok(O::Change30dAsc) => HealthOrder::Change30dAsc,
        Ok(O::Change30dDesc) => HealthOrder::Change30dDesc,
        Err(_) => {
            v.add("order_by", format!("{o} is not an AccountHealthOrder"));
            HealthOrder::ScoreAsc
        }
    }
}

pub(crate) fn health_to_proto(row: &AccountRow, h: &StoredHealth, contributions: bool) -> pb::AccountHealth {
    pb::AccountHealth {
        account_id: row.account_id.to_string(),
        score: h.score,
        band: band_to_proto(h.band) as i32,
        change_7d: h.change_7d,
        change_30d: h.change_30d,
        scorecard_id: h.scorecard_id.to_string(),
        scorecard_version: h.scorecard_version,
        contributions: if contributions { h.contributions.iter().map(contribution_to_proto).collect() } else { vec![] },
        compute_time: Some(timestamp(h.compute_time)),
        arr: match (&row.arr_currency, row.arr_amount_minor) {
            (Some(c), Some(a)) => Some(banso_proto::types::Money { currency_code: c.clone(), amount_minor: a }),
            _ => None,
        },
    }
}

fn bands_to_proto(t: &Totals) -> Vec<pb::BandTotal> {
    Band::ALL
        .iter()
        .zip(&t.bands)
        .map(|(b, bt)| pb::BandTotal {
            band: band_to_proto(*b) as i32,
            accounts: bt.accounts,
            arr: bt
                .arr
                .iter()
                .map(|(c, a)| banso_proto::types::Money { currency_code: c.clone(), amount_minor: *a })
                .collect(),
        })
        .collect()
}

pub(crate) fn distribution_to_proto(d: &Distribution) -> pb::GetHealthDistributionResponse {
    pb::GetHealthDistributionResponse {
        overall: bands_to_proto(&d.overall),
        groups: d
            .groups
            .iter()
            .map(|(value, t)| pb::HealthGroup {
                value: value.clone(),
                bands: bands_to_proto(t),
                accounts: t.accounts,
                mean_score: t.mean(),
            })
            .collect(),
        accounts: d.overall.accounts,
        unscored_accounts: d.unscored,
        mean_score: d.overall.mean(),
    }
}

pub(crate) fn job_to_proto(j: &Job) -> pb::RecomputeJob {
    use pb::recompute_job::State;
    pb::RecomputeJob {
        id: j.id.to_string(),
        state: match j.state {
            JobState::Queued => State::Queued,
            JobState::Running => State::Running,
            JobState::Succeeded => State::Succeeded,
            JobState::Failed => State::Failed,
        } as i32,
        trigger: j.trigger.clone(),
        accounts_total: j.accounts_total,
        accounts_done: j.accounts_done,
        accounts_scored: j.accounts_scored,
        scores_changed: j.scores_changed,
        create_time: Some(timestamp(j.create_time)),
        start_time: j.start_time.map(timestamp),
        end_time: j.end_time.map(timestamp),
        error: j.error.clone(),
    }
}
