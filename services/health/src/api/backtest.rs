//! Backtests on the wire.

use std::collections::BTreeMap;

use banso_kit::{Result, Violations, idempotency, wire};
use banso_proto::{health as pb, types};

use super::convert::band_to_proto;
use crate::{
    app::backtest::{BacktestQuery, BacktestResult, CardRef, DEFAULT_HORIZON, MAX_HORIZON, MAX_RANGE_DAYS, Scored},
    domain::score::Band,
    store::backtest_jobs::{BacktestJob, BacktestState},
};

/// The range and horizon, every bad field named.
pub(crate) fn parse(r: &pb::BacktestScorecardRequest) -> Result<BacktestQuery> {
    let mut v = Violations::new();
    let start = wire::required(&mut v, "start_day", r.start_day.as_ref());
    let start = start.and_then(|d| wire::optional_date(&mut v, "start_day", Some(d)));
    let end = wire::required(&mut v, "end_day", r.end_day.as_ref());
    let end = end.and_then(|d| wire::optional_date(&mut v, "end_day", Some(d)));
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            v.add("end_day", format!("{e} is before start_day {s}"));
        } else if (e - s).num_days() > MAX_RANGE_DAYS {
            v.add("end_day", format!("{e} is more than {MAX_RANGE_DAYS} days after start_day {s}"));
        }
    }
    let horizon = match r.horizon_days {
        0 => Some(DEFAULT_HORIZON),
        h if (1..=MAX_HORIZON as i32).contains(&h) => Some(h as u32),
        h => {
            v.add("horizon_days", format!("must be between 1 and {MAX_HORIZON} (0 for {DEFAULT_HORIZON}), got {h}"));
            None
        }
    };
    let scorecard = card(&mut v, "scorecard_id", &r.scorecard_id, "scorecard_version", r.scorecard_version);
    let compare = card(
        &mut v,
        "compare_scorecard_id",
        &r.compare_scorecard_id,
        "compare_scorecard_version",
        r.compare_scorecard_version,
    );
    let (start, end, horizon, scorecard, compare) = v.finish_with((start, end, horizon, scorecard, compare))?;
    Ok(BacktestQuery { start, end, horizon, scorecard, compare })
}

/// An optional scorecard and version (0: the current one).
fn card(v: &mut Violations, id_field: &str, id: &str, version_field: &str, version: i64) -> Option<Option<CardRef>> {
    let id = v.take(wire::optional_uuid(id_field, id))?;
    match (id, version) {
        (_, n) if n < 0 => {
            v.add(version_field, format!("must be 0 (the current version) or above, got {n}"));
            None
        }
        (None, 0) => Some(None),
        (None, n) => {
            v.add(version_field, format!("{n} is set without {id_field}"));
            None
        }
        (Some(id), 0) => Some(Some((id, None))),
        (Some(id), n) => Some(Some((id, Some(n)))),
    }
}

fn money(by_currency: &BTreeMap<String, i64>) -> Vec<types::Money> {
    by_currency
        .iter()
        .map(|(currency_code, amount_minor)| types::Money {
            currency_code: currency_code.clone(),
            amount_minor: *amount_minor,
        })
        .collect()
}

pub(crate) fn to_proto(b: &BacktestResult) -> pb::Backtest {
    let mut main = scored_to_proto(b, &b.main);
    main.comparison = b.other.as_ref().map(|(other, c)| {
        Box::new(pb::BacktestComparison {
            other: Some(Box::new(scored_to_proto(b, other))),
            auc_difference: c.map(|c| c.difference),
            auc_difference_lower: c.and_then(|c| c.lower),
            auc_difference_upper: c.and_then(|c| c.upper),
            auc_difference_std_error: c.and_then(|c| c.std_error),
        })
    });
    main
}

fn scored_to_proto(b: &BacktestResult, s: &Scored) -> pb::Backtest {
    let r = &s.report;
    let auc = r.auc.as_ref();
    pb::Backtest {
        start_day: Some(wire::date_to_proto(b.query.start)),
        end_day: Some(wire::date_to_proto(b.query.end)),
        horizon_days: b.query.horizon as i32,
        snapshots: r.snapshots as i64,
        churned_snapshots: r.churned_snapshots as i64,
        accounts: r.accounts as i64,
        churns: r.churns as i64,
        too_recent_snapshots: b.too_recent as i64,
        after_churn_snapshots: b.after_churn as i64,
        auc: auc.map(|a| a.auc),
        auc_lower: auc.and_then(|a| a.lower),
        auc_upper: auc.and_then(|a| a.upper),
        auc_std_error: auc.and_then(|a| a.std_error),
        calibration: Band::ALL
            .iter()
            .zip(&r.bands)
            .map(|(band, row)| pb::BandCalibration {
                band: band_to_proto(*band) as i32,
                snapshots: row.snapshots as i64,
                churned_snapshots: row.churned_snapshots as i64,
                churn_rate: row.churn_rate,
                accounts: row.accounts as i64,
                churns: row.churns as i64,
                churned_arr: money(&row.churned_arr),
            })
            .collect(),
        lift_red_over_green: r.lift_red_over_green,
        brier_score: r.brier,
        red_precision: r.red_precision,
        red_recall: r.red_recall,
        median_lead_days: r.median_lead_days,
        churns_flagged: r.churns_flagged as i64,
        churns_missed: r.churns_missed as i64,
        scorecard_id: s.scorecard.map(|(id, _)| id.to_string()).unwrap_or_default(),
        scorecard_version: s.scorecard.map_or(0, |(_, v)| v),
        unscored_snapshots: b.unscored as i64,
        unreplayable_measures: s.unreplayable.clone(),
        comparison: None,
    }
}

/// StartBacktest: the backtest request, checked as BacktestScorecard checks it.
/// The query of a StartBacktest and its idempotency key, with every bad
/// field of both.
pub(crate) fn start(r: &pb::StartBacktestRequest) -> Result<(BacktestQuery, Option<&str>)> {
    let mut v = Violations::new();
    let request_id = v.take(idempotency::optional("request_id", &r.request_id));
    let query = v.take(query_of_start(r));
    v.finish_with((query, request_id))
}

fn query_of_start(r: &pb::StartBacktestRequest) -> Result<BacktestQuery> {
    let Some(b) = &r.backtest else {
        return Err(banso_kit::Error::invalid("backtest", "is required"));
    };
    parse(b).map_err(|e| match e {
        banso_kit::Error::InvalidArgument(vs) => banso_kit::Error::InvalidArgument(
            vs.into_iter()
                .map(|mut v| {
                    v.field = format!("backtest.{}", v.field);
                    v
                })
                .collect(),
        ),
        other => other,
    })
}

pub(crate) fn get_job(r: &pb::GetBacktestJobRequest) -> Result<uuid::Uuid> {
    wire::uuid("id", &r.id)
}

/// The request of a job as it was checked.
fn request_to_proto(q: &BacktestQuery) -> pb::BacktestScorecardRequest {
    let id = |c: Option<CardRef>| c.map(|(id, _)| id.to_string()).unwrap_or_default();
    let version = |c: Option<CardRef>| c.and_then(|(_, v)| v).unwrap_or(0);
    pb::BacktestScorecardRequest {
        start_day: Some(wire::date_to_proto(q.start)),
        end_day: Some(wire::date_to_proto(q.end)),
        horizon_days: q.horizon as i32,
        scorecard_id: id(q.scorecard),
        scorecard_version: version(q.scorecard),
        compare_scorecard_id: id(q.compare),
        compare_scorecard_version: version(q.compare),
    }
}

pub(crate) fn job_to_proto(j: &BacktestJob) -> pb::BacktestJob {
    use pb::backtest_job::State;
    pb::BacktestJob {
        id: j.id.to_string(),
        state: match j.state {
            BacktestState::Queued => State::Queued,
            BacktestState::Running => State::Running,
            BacktestState::Succeeded => State::Succeeded,
            BacktestState::Failed => State::Failed,
        } as i32,
        backtest: Some(request_to_proto(&j.query)),
        create_time: Some(wire::timestamp(j.create_time)),
        end_time: j.end_time.map(wire::timestamp),
        error: j.error.clone(),
        result: j.result.as_ref().map(to_proto),
        phase: j.progress.phase.clone(),
        steps_done: j.progress.steps_done,
        steps_total: j.progress.steps_total,
        snapshots: j.progress.snapshots,
        start_time: j.progress.start_time.map(wire::timestamp),
    }
}
