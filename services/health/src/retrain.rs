//! Scheduled retraining: a runner in every replica claims the tenants'
//! models that are due (`store::model_schedules`, under a lease, so one
//! replica retrains each) and trains each again as `TrainChurnModel` would,
//! on the same scorecard (its latest version), horizon and target, over a
//! range as long as the last one's that ends on the newest day whose
//! horizon is over. Every kept model — trained on demand or here — sets its
//! target's next due time `BANSO_HEALTH_RETRAIN_HOURS` on.

use std::time::Duration;

use banso_kit::{Error, Result, supervise::Supervisor};
use chrono::{DateTime, Days, Utc};
use tokio_util::sync::CancellationToken;

use crate::{
    app::{App, churn::TrainQuery},
    domain::{churn_model::Trained, rollup::day_of},
    store::{self, model_schedules::Due},
};

/// How long a runner holds a retraining: a training is one read and a fit
/// in memory (the goal is 30 s for 10,000 accounts × 365 days).
const LEASE: Duration = Duration::from_secs(30 * 60);
/// How often a runner looks for due retrainings.
const POLL: Duration = Duration::from_secs(60);
/// When a retraining failed for a passing reason (the database), the next
/// attempt is this much later rather than a whole interval.
const RETRY: Duration = Duration::from_secs(3600);

/// Starts this replica's runner under the supervisor; nothing when
/// scheduled retraining is off.
pub(crate) fn supervise(app: App, supervisor: &Supervisor, service: &'static str) {
    let Some(every) = app.settings.retrain_every else { return };
    supervisor.spawn(service, "health-model-retrainer", move |shutdown| {
        let app = app.clone();
        async move {
            run(&app, every, shutdown).await;
            Ok(())
        }
    });
}

async fn run(app: &App, every: Duration, shutdown: CancellationToken) {
    loop {
        match retrain_due(app, Utc::now(), every).await {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "claiming a model retraining failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Claims one retraining due at `now` and runs it: the model kept, or the
/// error that kept it from being trained (recorded on the schedule, the
/// next attempt set). `None`: nothing was due.
pub(crate) async fn retrain_due(
    app: &App,
    now: DateTime<Utc>,
    every: Duration,
) -> Result<Option<std::result::Result<Trained, Error>>> {
    let owner = uuid::Uuid::now_v7().to_string();
    let until = crate::app::churn::after(now, LEASE).unwrap_or(now);
    let Some(due) = store::model_schedules::claim(app.db.conn(), &owner, now, until).await? else {
        return Ok(None);
    };
    let outcome = retrain(app, &due).await;
    let (wait, error) = match &outcome {
        Ok(m) => {
            tracing::info!(tenant = due.tenant, target = due.target.as_str(), version = m.version, "model retrained");
            (every, String::new())
        }
        // What a person must change (too few churns, a scorecard deleted):
        // the next interval tries again.
        Err(e @ (Error::FailedPrecondition { .. } | Error::NotFound { .. } | Error::InvalidArgument(_))) => {
            tracing::warn!(tenant = due.tenant, target = due.target.as_str(), error = %e, "a scheduled retraining kept no model");
            (every, e.to_string())
        }
        Err(e) => {
            tracing::warn!(tenant = due.tenant, target = due.target.as_str(), error = %e, "a scheduled retraining failed");
            (RETRY.min(every), e.to_string())
        }
    };
    let next = crate::app::churn::after(now, wait).unwrap_or(now);
    if !store::model_schedules::finish(app.db.conn(), due.id, &owner, next, &error).await? {
        tracing::warn!(
            tenant = due.tenant,
            target = due.target.as_str(),
            "a retraining's lease lapsed before it finished"
        );
    }
    Ok(Some(outcome))
}

/// Trains the tenant's model of the due target again on the newest snapshots.
async fn retrain(app: &App, due: &Due) -> Result<Trained> {
    let conn = app.db.conn();
    let last = store::churn_models::latest_per_target(conn, &due.tenant)
        .await?
        .into_iter()
        .find(|m| m.target == due.target)
        .ok_or_else(|| Error::not_found("churn model", format!("latest of target {}", due.target.as_str())))?;
    let today = day_of(Utc::now(), store::tenants::time_zone(conn, &due.tenant).await?);
    // The newest snapshot day whose horizon is over: later ones are left
    // out as too recent anyway.
    let end = today
        .checked_sub_days(Days::new(u64::from(last.horizon) + 1))
        .ok_or_else(|| Error::invalid("end_day", "the horizon reaches before the calendar's start"))?;
    let span = u64::try_from((last.end - last.start).num_days()).unwrap_or(0);
    let start = end.checked_sub_days(Days::new(span)).unwrap_or(end);
    let q = TrainQuery { scorecard: (last.scorecard.0, None), start, end, horizon: last.horizon, target: due.target };
    app.train_model(&due.tenant, q).await
}

#[cfg(test)]
mod tests {
    use banso_kit::auth::{Caller, Role};
    use chrono::{Duration as Span, NaiveDate};

    use super::*;
    use crate::{
        app::scorecards::CreateScorecard,
        domain::{
            churn_model::Target,
            scorecard::{Bands, Direction, MissingData, Normalisation, Scope, ScorecardDef, WeightedMeasure},
        },
        testing::seed_churn_history,
    };

    const WEEK: Duration = Duration::from_secs(168 * 3600);

    async fn scorecard(app: &App, tenant: &str) -> uuid::Uuid {
        let caller = Caller { tenant_id: tenant.into(), subject: "test".into(), roles: vec![Role::Admin] };
        let def = ScorecardDef {
            name: "usage".into(),
            scope: Scope::All,
            measures: ["events_7d:login", "events_7d:noise"]
                .iter()
                .map(|m| WeightedMeasure {
                    measure: (*m).into(),
                    weight: 1.0,
                    normalisation: Normalisation::Linear { min: 0.0, max: 70.0 },
                    direction: Direction::HigherIsBetter,
                    missing: MissingData::SkipAndReweight,
                })
                .collect(),
            bands: Bands::default(),
        };
        app.create_scorecard(&caller, CreateScorecard { def, request_id: None }).await.unwrap().id
    }

    fn query(card: uuid::Uuid, start: NaiveDate, end: NaiveDate) -> TrainQuery {
        TrainQuery { scorecard: (card, None), start, end, horizon: 90, target: Target::Churn }
    }

    /// A model due is trained again on the newest snapshots whose horizon
    /// is over, by one replica of two asking at once; then not again until
    /// the next interval. One that cannot be trained any more says why on
    /// its schedule and waits an interval.
    #[tokio::test]
    async fn a_model_due_is_trained_again_on_the_newest_snapshots_by_one_replica() {
        let db = banso_testkit::fresh_database().await.unwrap();
        let app = crate::testing::app(&db).await;
        let conn = app.db.conn().clone();
        let today = Utc::now().date_naive();
        let day = |n: i64| today - Span::days(n);
        // Snapshots from 200 to 81 days ago; the 20 churns 50 to 44 days ago.
        seed_churn_history(&conn, "acme", day(200), 120, 40, 20).await;
        let card = scorecard(&app, "acme").await;
        let first = app.train_model("acme", query(card, day(110), day(101))).await.unwrap();
        assert_eq!(first.version, 1);
        // Not due yet.
        assert!(retrain_due(&app, Utc::now(), WEEK).await.unwrap().is_none());
        let (next, error) = store::model_schedules::of(&conn, "acme", Target::Churn).await.unwrap().unwrap();
        assert!(next.is_some_and(|n| n > Utc::now() + Span::days(6)), "{next:?}");
        assert_eq!(error, "");

        // A week on it is due: one of two replicas trains it again.
        let later = Utc::now() + Span::days(7) + Span::minutes(1);
        let (a, b) = tokio::join!(retrain_due(&app, later, WEEK), retrain_due(&app, later, WEEK));
        let mut done: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
        assert_eq!(done.len(), 1, "one replica retrains it");
        let m = done.pop().unwrap().unwrap();
        assert_eq!(m.version, 2);
        // As long a range as before, ending on the newest day whose 90-day horizon is over.
        assert_eq!((m.start, m.end), (day(100), day(91)));
        assert_eq!((m.scorecard, m.horizon, m.target), (first.scorecard, 90, Target::Churn));
        assert!(m.training.1 >= 20, "{m:?}");
        assert!(retrain_due(&app, later, WEEK).await.unwrap().is_none(), "not due again at once");
        let (next, _) = store::model_schedules::of(&conn, "acme", Target::Churn).await.unwrap().unwrap();
        assert!(next.is_some_and(|n| n >= later + Span::days(7) - Span::minutes(1)), "{next:?}");

        // A tenant whose newest snapshots hold no churns any more.
        seed_churn_history(&conn, "gone", day(120), 10, 40, 20).await;
        let card = scorecard(&app, "gone").await;
        app.train_model("gone", query(card, day(120), day(111))).await.unwrap();
        let much_later = later + Span::days(7);
        // Acme is due again too: one claim each.
        let mut outcomes = Vec::new();
        while let Some(o) = retrain_due(&app, much_later, WEEK).await.unwrap() {
            outcomes.push(o);
        }
        assert_eq!(outcomes.len(), 2, "{outcomes:?}");
        let refused: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
        assert_eq!(refused.len(), 1, "{outcomes:?}");
        assert!(matches!(refused[0], Error::FailedPrecondition { reason: "TOO_FEW_CHURNS", .. }), "{refused:?}");
        let (next, error) = store::model_schedules::of(&conn, "gone", Target::Churn).await.unwrap().unwrap();
        assert!(error.contains("fewer than the minimum of 20"), "{error}");
        assert!(next.is_some_and(|n| n >= much_later + Span::days(7) - Span::minutes(1)), "{next:?}");
        // The refused retraining kept no model: its latest is still the first.
        let kept = store::churn_models::latest_per_target(&conn, "gone").await.unwrap();
        assert_eq!(kept.iter().map(|m| m.version).collect::<Vec<_>>(), [1]);

        // A model shows its target's schedule when it is the newest of it:
        // when it is due and why the last attempt kept nothing.
        let caller = |tenant: &str| Caller { tenant_id: tenant.into(), subject: "t".into(), roles: vec![Role::Viewer] };
        let (m, shown) = app.get_churn_model(&caller("gone"), None).await.unwrap();
        let shown = shown.expect("the newest model shows its schedule");
        assert_eq!((m.version, shown.next_time), (1, next));
        assert!(shown.last_error.contains("fewer than the minimum of 20"), "{shown:?}");
        assert!(shown.last_attempt_time.is_some(), "{shown:?}");
        let page = crate::app::PageRequest { size: 10, token: String::new() };
        let (models, _) = app.list_churn_models(&caller("acme"), page).await.unwrap();
        let versions: Vec<_> = models.iter().map(|(m, r)| (m.version, r.is_some())).collect();
        assert_eq!(versions, [(3, true), (2, false), (1, false)], "only the newest of a target shows it");
        assert_eq!(models[0].1.as_ref().map(|r| r.last_error.as_str()), Some(""));
        assert_eq!(app.get_churn_model(&caller("acme"), Some(1)).await.unwrap().1, None);
        // Another tenant's schedule is never shown.
        assert!(app.get_churn_model(&caller("initech"), None).await.is_err());
    }
}
