//! Backtests: the scores as served, labelled by the churns that followed
//! them ([`crate::domain::backtest`]). A read; nothing is stored.

use std::collections::HashMap;

use banso_kit::{Result, auth::Caller};
use chrono::{Days, NaiveDate, Utc};

use super::App;
use crate::{
    domain::{
        backtest::{self, AccountHistory, Churn, Labels, Report, SnapshotKey},
        outcome::OutcomeKind,
        rollup::day_of,
    },
    store,
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

/// A backtest asked for: checked by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BacktestQuery {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub horizon: u32,
}

/// What a backtest found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BacktestResult {
    pub query: BacktestQuery,
    pub too_recent: u64,
    pub after_churn: u64,
    pub report: Report,
}

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
    /// The scores as served in [start, end], labelled by churns within the horizon.
    pub(crate) async fn backtest_scorecard(&self, caller: &Caller, q: BacktestQuery) -> Result<BacktestResult> {
        let tenant = caller.tenant_id.as_str();
        let conn = self.db.conn();
        let today = day_of(Utc::now(), store::tenants::time_zone(conn, tenant).await?);
        let snapshots = store::history::daily_in_range(conn, tenant, q.start, q.end).await?;
        // Churns up to the last day a kept snapshot's horizon reaches, and
        // every earlier one (a churn before the range still marks the days after it).
        let until = q.end.checked_add_days(Days::new(u64::from(q.horizon) + 1)).unwrap_or(q.end);
        let kinds = [OutcomeKind::Churned, OutcomeKind::Reactivated];
        let outcomes = store::outcomes::list(conn, tenant, &kinds, FIRST_DAY, until).await?;
        let histories = histories(outcomes);
        let mut keys: Vec<SnapshotKey> =
            snapshots.iter().map(|(account, day, _, _)| SnapshotKey { account: *account, day: *day }).collect();
        keys.dedup();
        let labels: Labels = backtest::label(keys, &histories, q.horizon, today);
        // The scores of the kept snapshots, in the labels' order.
        let scores: HashMap<SnapshotKey, (f64, crate::domain::score::Band)> = snapshots
            .iter()
            .map(|(account, day, score, band)| (SnapshotKey { account: *account, day: *day }, (*score, *band)))
            .collect();
        let scored: Vec<_> = labels.labels.iter().filter_map(|l| scores.get(&l.key).copied()).collect();
        let report = backtest::report(&labels, &scored);
        Ok(BacktestResult { query: q, too_recent: labels.too_recent, after_churn: labels.after_churn, report })
    }
}
