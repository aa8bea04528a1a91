//! Survey measures (`external:nps`, `external:csat`, `external:ces`,
//! `external:outcome`): computed from the answers Feedback announces
//! (SurveyAnswered, applied by [`crate::events::SurveyAnswers`]) and kept in
//! `measure_values` beside the values SetMeasureValue sets, so a scorecard
//! weighs them like any external measure. The rule is
//! [`crate::domain::survey`]'s; this module keeps it true as time passes:
//! answers age out of the window without any event, so an aging pass
//! (hourly, and at start) computes again the measures whose counted answers
//! crossed the window's edge, and has their accounts rescored.

use std::time::Duration;

use banso_events::Db;
use banso_kit::{Result, supervise::Supervisor};
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    domain::survey::{self, SurveyKind},
    scorer::Scorer,
    store,
};

/// How often the aging pass runs.
const EVERY: Duration = Duration::from_secs(3600);
/// Measures computed again per round of the pass.
const GROUPS_PER_ROUND: u64 = 500;

/// Computes again the measure of `kind` of `account` at `now` from its
/// stored answers, marks which of them count, and stores it (or clears it:
/// no answer within the window). Whether the value changed.
pub(crate) async fn refresh(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account: Uuid,
    kind: SurveyKind,
    now: DateTime<Utc>,
    window: chrono::Duration,
) -> Result<bool> {
    store::survey_answers::mark_counted(conn, tenant, account, kind, survey::window_start(now, window)).await?;
    let answers = store::survey_answers::of(conn, tenant, account, kind).await?;
    let value = survey::measure(&answers, now, window);
    let held = store::measures::values_of(conn, tenant, &[account])
        .await?
        .get(&account)
        .and_then(|m| m.get(kind.as_str()).copied());
    if held == value {
        return Ok(false);
    }
    let observed = survey::observed(&answers, now, window).unwrap_or(now);
    store::measures::set(conn, tenant, account, kind.as_str(), value, observed).await?;
    Ok(true)
}

/// The aging pass at `now`: every measure (of every tenant) whose counted
/// answers crossed the window's edge is computed again, each in its own
/// transaction, and its account rescored where the value changed. How many
/// measures changed.
pub(crate) async fn age_out(db: &Db, scorer: &Scorer, window: chrono::Duration, now: DateTime<Utc>) -> Result<usize> {
    let start = survey::window_start(now, window);
    let mut changed = 0;
    loop {
        let due = store::survey_answers::crossed(db.conn(), start, GROUPS_PER_ROUND).await?;
        for (tenant, account, kind) in &due {
            // Each refresh marks its answers, so the next round finds others.
            if db.write(tenant, async |tx| refresh(tx.conn(), tenant, *account, *kind, now, window).await).await? {
                changed += 1;
                scorer.account(tenant, *account);
            }
        }
        if (due.len() as u64) < GROUPS_PER_ROUND {
            return Ok(changed);
        }
    }
}

/// Starts the aging pass under the supervisor: at start (catching up on
/// the time the service was down), then hourly.
pub(crate) fn supervise(
    db: Db,
    scorer: Scorer,
    window: chrono::Duration,
    supervisor: &Supervisor,
    service: &'static str,
) {
    supervisor.spawn(service, "health-survey-aging", move |shutdown| {
        let (db, scorer) = (db.clone(), scorer.clone());
        async move {
            run(&db, &scorer, window, shutdown).await;
            Ok(())
        }
    });
}

async fn run(db: &Db, scorer: &Scorer, window: chrono::Duration, shutdown: CancellationToken) {
    loop {
        match age_out(db, scorer, window, banso_kit::wire::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(measures = n, "survey answers aged out"),
            Err(e) => tracing::warn!(error = %e, "aging survey answers failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
