//! What the Health benchmarks share: scorecards, waiting for the scorer and
//! the relay to go quiet, percentiles, RSS.

use std::time::{Duration, Instant};

use anyhow::Context;
use banso_proto::health as pb;
use sea_orm::DatabaseConnection;

use crate::{harness::HealthClient, import::count};

pub fn thresholds(points: &[(f64, f64)]) -> Option<pb::Normalisation> {
    Some(pb::Normalisation {
        kind: Some(pb::normalisation::Kind::Thresholds(pb::normalisation::Thresholds {
            thresholds: points.iter().map(|&(at, points)| pb::normalisation::Threshold { at, points }).collect(),
        })),
    })
}

pub fn linear(min: f64, max: f64) -> Option<pb::Normalisation> {
    Some(pb::Normalisation { kind: Some(pb::normalisation::Kind::Linear(pb::normalisation::Linear { min, max })) })
}

pub fn measure(id: &str, weight: f64, normalisation: Option<pb::Normalisation>) -> pb::WeightedMeasure {
    pb::WeightedMeasure { measure: id.into(), weight, normalisation, ..Default::default() }
}

/// The scorecard a tenant scoring on usage would have: 5 measures over
/// users, one feature, minutes, breadth and the contract.
pub fn typical_scorecard() -> pb::Scorecard {
    pb::Scorecard {
        name: "Adoption (bench)".into(),
        measures: vec![
            measure("active_users_30d", 30.0, linear(0.0, 20.0)),
            measure(
                "events_7d:report_viewed",
                20.0,
                thresholds(&[(0.0, 0.0), (1.0, 40.0), (5.0, 70.0), (20.0, 100.0)]),
            ),
            measure("usage_minutes_7d", 20.0, linear(0.0, 120.0)),
            measure("feature_breadth_30d", 15.0, linear(0.0, 0.5)),
            measure("external:contract_active", 15.0, thresholds(&[(0.0, 0.0), (1.0, 100.0)])),
        ],
        ..Default::default()
    }
}

pub async fn create_scorecard(client: &mut HealthClient, card: pb::Scorecard) -> anyhow::Result<pb::Scorecard> {
    Ok(client
        .create_scorecard(pb::CreateScorecardRequest { scorecard: Some(card), request_id: String::new() })
        .await
        .context("CreateScorecard failed")?
        .into_inner())
}

/// Waits until the health service's background work is done: `scored`
/// accounts have a score (when given), the outbox is published, and the
/// scorer has written nothing for a second. Returns how long it took, or
/// None at `limit`.
pub async fn wait_quiet(
    pool: &DatabaseConnection,
    scored: Option<i64>,
    limit: Duration,
) -> anyhow::Result<Option<Duration>> {
    let start = Instant::now();
    let mut last = (-1i64, -1i64);
    let mut same_since = Instant::now();
    while start.elapsed() < limit {
        let n = count(pool, "SELECT count(*) FROM health.account_health").await?;
        let pending = count(pool, "SELECT count(*) FROM health.outbox WHERE published_time IS NULL").await?;
        let written = count(pool, "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint FROM pg_stat_user_tables WHERE schemaname = 'health' AND relname IN ('account_health', 'measure_snapshots', 'health_history')").await?;
        let state = (n, written);
        if state != last {
            last = state;
            same_since = Instant::now();
        }
        let enough = scored.is_none_or(|s| n >= s);
        if enough && pending == 0 && same_since.elapsed() >= Duration::from_secs(1) {
            return Ok(Some(start.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(None)
}

/// The value at quantile `q` (0..=1) of sorted `v` (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A field of /proc/<pid>/status in KiB (VmRSS, VmHWM).
pub fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[3.0], 0.99), 3.0);
    }
}
