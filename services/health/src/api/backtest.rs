//! Backtests on the wire.

use std::collections::BTreeMap;

use banso_kit::{Result, Violations, wire};
use banso_proto::{health as pb, types};

use super::convert::band_to_proto;
use crate::{
    app::backtest::{BacktestQuery, BacktestResult, DEFAULT_HORIZON, MAX_HORIZON, MAX_RANGE_DAYS},
    domain::score::Band,
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
    let (start, end, horizon) = v.finish_with((start, end, horizon))?;
    Ok(BacktestQuery { start, end, horizon })
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
    let r = &b.report;
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
    }
}
