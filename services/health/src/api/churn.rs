//! Churn models on the wire.

use banso_kit::{Result, Violations, paging, wire};
use banso_proto::health as pb;

use super::backtest::parse;
use crate::domain::renewal_forecast::{GroupKind, SegmentBy, Window};
use crate::{
    app::{
        PageRequest,
        churn::{RenewalForecast, Shown, TrainQuery, WeightSuggestion},
    },
    domain::churn_model::{Prediction, RiskBucket, Target},
};

/// TrainChurnModel: a scorecard, a range and a horizon, every bad field named.
pub(crate) fn train(r: &pb::TrainChurnModelRequest) -> Result<TrainQuery> {
    let as_backtest = pb::BacktestScorecardRequest {
        start_day: r.start_day,
        end_day: r.end_day,
        horizon_days: r.horizon_days,
        scorecard_id: r.scorecard_id.clone(),
        scorecard_version: r.scorecard_version,
        ..Default::default()
    };
    let mut v = Violations::new();
    if r.scorecard_id.is_empty() {
        v.add("scorecard_id", "is required");
    }
    let q = v.take(parse(&as_backtest));
    let target = target_from_proto(r.target);
    if target.is_none() {
        v.add("target", "is not a known target");
    }
    let (q, target) = v.finish_with((q, target))?;
    let scorecard = q.scorecard.ok_or_else(|| banso_kit::Error::invalid("scorecard_id", "is required"))?;
    Ok(TrainQuery { scorecard, start: q.start, end: q.end, horizon: q.horizon, target })
}

fn target_from_proto(raw: i32) -> Option<Target> {
    use pb::ModelTarget as T;
    Some(match T::try_from(raw).ok()? {
        T::Unspecified | T::Churn => Target::Churn,
        T::Expansion => Target::Expansion,
        T::Upsell => Target::Upsell,
        T::CrossSell => Target::CrossSell,
    })
}

fn target_to_proto(t: Target) -> pb::ModelTarget {
    match t {
        Target::Churn => pb::ModelTarget::Churn,
        Target::Expansion => pb::ModelTarget::Expansion,
        Target::Upsell => pb::ModelTarget::Upsell,
        Target::CrossSell => pb::ModelTarget::CrossSell,
    }
}

/// GetAccountPredictions: an account id.
pub(crate) fn predictions(r: &pb::GetAccountPredictionsRequest) -> Result<uuid::Uuid> {
    wire::uuid("account_id", &r.account_id)
}

pub(crate) fn predictions_to_proto(account: uuid::Uuid, ps: &[Prediction]) -> pb::AccountPredictions {
    let bucket = |b: RiskBucket| match b {
        RiskBucket::Low => pb::PredictionBucket::Low,
        RiskBucket::Medium => pb::PredictionBucket::Medium,
        RiskBucket::High => pb::PredictionBucket::High,
    } as i32;
    pb::AccountPredictions {
        account_id: account.to_string(),
        predictions: ps
            .iter()
            .map(|p| pb::Prediction {
                target: target_to_proto(p.target) as i32,
                probability: p.probability,
                bucket: bucket(p.bucket),
                model_version: p.model_version,
                reasons: p
                    .reasons
                    .iter()
                    .map(|(f, c)| pb::PredictionReason {
                        feature: f.clone(),
                        description: crate::domain::churn_features::describe(f),
                        contribution: *c,
                    })
                    .collect(),
                update_time: Some(wire::timestamp(p.update_time)),
            })
            .collect(),
    }
}

pub(crate) fn suggestion_to_proto(s: &WeightSuggestion) -> pb::ScorecardWeightSuggestion {
    let m = &s.model.model;
    pb::ScorecardWeightSuggestion {
        model_version: s.model.version,
        scorecard_id: s.model.scorecard.0.to_string(),
        scorecard_version: s.model.scorecard.1,
        weights: s
            .current
            .measures
            .iter()
            .zip(&s.suggested)
            .map(|(w, sug)| pb::WeightSuggestion {
                measure: w.measure.clone(),
                current_weight: w.weight,
                suggested_weight: *sug,
                coefficient: m.features.iter().position(|f| *f == w.measure).map(|j| m.coefficients[j]),
            })
            .collect(),
        current_auc: s.current_auc,
        suggested_auc: s.suggested_auc,
        snapshots: s.snapshots as i64,
    }
}

/// ForecastRenewals: a period of renewal days (or a fiscal period) and the
/// attribute to group by, every bad field named.
pub(crate) fn forecast(r: &pb::ForecastRenewalsRequest) -> Result<(Window, Option<SegmentBy>)> {
    let mut v = Violations::new();
    let window = if r.fiscal_year != 0 {
        for (field, set) in [("start_day", r.start_day.is_some()), ("end_day", r.end_day.is_some())] {
            if set {
                v.add(field, "must be unset when fiscal_year is given");
            }
        }
        let year = (1..=9999).contains(&r.fiscal_year).then_some(r.fiscal_year);
        if year.is_none() {
            v.add("fiscal_year", format!("must be 1 to 9999, got {}", r.fiscal_year));
        }
        let quarter = u32::try_from(r.fiscal_quarter).ok().filter(|q| *q <= 4);
        if quarter.is_none() {
            v.add("fiscal_quarter", format!("must be 1 to 4 (0 for the whole year), got {}", r.fiscal_quarter));
        }
        year.zip(quarter).map(|(year, quarter)| Window::Fiscal { year, quarter })
    } else {
        if r.fiscal_quarter != 0 {
            v.add("fiscal_quarter", format!("needs fiscal_year, got quarter {} alone", r.fiscal_quarter));
        }
        let start = wire::required(&mut v, "start_day", r.start_day.as_ref());
        let end = wire::required(&mut v, "end_day", r.end_day.as_ref());
        let start = start.and_then(|d| wire::optional_date(&mut v, "start_day", Some(d)));
        let end = end.and_then(|d| wire::optional_date(&mut v, "end_day", Some(d)));
        if let (Some(s), Some(e)) = (start, end)
            && (e < s || (e - s).num_days() > 731)
        {
            v.add("end_day", "must be from start_day to 731 days after it");
        }
        start.zip(end).map(|(s, e)| Window::Days(s, e))
    };
    let segment_by = match r.segment_by.as_str() {
        "" => Some(None),
        s => match SegmentBy::parse(s) {
            Some(by) => Some(Some(by)),
            None => {
                v.add("segment_by", format!("must be one of {}, got {s:?}", SegmentBy::NAMES.join(", ")));
                None
            }
        },
    };
    v.finish_with((window, segment_by))
}

pub(crate) fn forecast_to_proto(f: RenewalForecast) -> pb::RenewalForecast {
    let RenewalForecast { groups, measured_renewal_rate: rate, start, end } = f;
    use pb::renewal_group::Kind;
    pb::RenewalForecast {
        groups: groups
            .into_iter()
            .map(|(kind, group, currency, f)| pb::RenewalGroup {
                kind: match kind {
                    GroupKind::Total => Kind::Total,
                    GroupKind::Owner => Kind::Owner,
                    GroupKind::Segment => Kind::Segment,
                } as i32,
                owner_id: if kind == GroupKind::Owner { group.clone() } else { String::new() },
                segment: if kind == GroupKind::Segment { group } else { String::new() },
                currency,
                renewals: f.renewals as i64,
                arr_due: f.arr_due,
                expected_renewed_arr: f.expected_renewed_arr,
                arr_at_risk: f.arr_at_risk,
                unscored: f.unscored as i64,
                unscored_arr: f.unscored_arr,
            })
            .collect(),
        measured_renewal_rate: rate,
        start_day: Some(wire::date_to_proto(start)),
        end_day: Some(wire::date_to_proto(end)),
    }
}

/// GetChurnModel: a version, or `None` (0) for the latest.
pub(crate) fn get(r: &pb::GetChurnModelRequest) -> Result<Option<i64>> {
    match r.version {
        0 => Ok(None),
        v if v < 0 => Err(banso_kit::Error::invalid("version", "must be 0 (the latest) or positive")),
        v => Ok(Some(v)),
    }
}

/// ListChurnModels: a page.
pub(crate) fn list(r: &pb::ListChurnModelsRequest) -> Result<PageRequest> {
    Ok(PageRequest { size: paging::page_size(r.page_size)?, token: r.page_token.clone() })
}

pub(crate) fn list_to_proto((models, next): (Vec<Shown>, String)) -> pb::ListChurnModelsResponse {
    pb::ListChurnModelsResponse { models: models.iter().map(model_to_proto).collect(), next_page_token: next }
}

pub(crate) fn model_to_proto((t, retraining): &Shown) -> pb::ChurnModel {
    let m = &t.model;
    pb::ChurnModel {
        scorecard_id: t.scorecard.0.to_string(),
        scorecard_version: t.scorecard.1,
        horizon_days: t.horizon as i32,
        features: (0..m.features.len())
            .map(|j| pb::ChurnModelFeature {
                measure: m.features[j].clone(),
                description: crate::domain::churn_features::describe(&m.features[j]),
                coefficient: m.coefficients[j],
                mean: m.means[j],
                std_dev: m.std_devs[j],
            })
            .collect(),
        intercept: m.intercept,
        split_day: Some(wire::date_to_proto(t.split_day)),
        training_snapshots: t.training.0 as i64,
        training_churns: t.training.1 as i64,
        validation_snapshots: t.validation.0 as i64,
        validation_churns: t.validation.1 as i64,
        validation_auc: t.validation_auc,
        accounts_scored: t.accounts_scored as i64,
        risk_changes: t.risk_changes as i64,
        version: t.version,
        train_time: Some(wire::timestamp(t.train_time)),
        start_day: Some(wire::date_to_proto(t.start)),
        end_day: Some(wire::date_to_proto(t.end)),
        target: target_to_proto(t.target) as i32,
        retraining: retraining.as_ref().map(|r| pb::Retraining {
            next_time: r.next_time.map(wire::timestamp),
            last_attempt_time: r.last_attempt_time.map(wire::timestamp),
            last_error: r.last_error.clone(),
        }),
    }
}
