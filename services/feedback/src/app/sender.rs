//! The sender: every tick, the campaigns whose time came (one-off) or
//! whose next run is due (standing, each `interval`), of every tenant. Of
//! several replicas one runs each campaign: a run claims it by moving its
//! version ([`App::run_campaign`]).

use std::time::Duration;

use banso_kit::{Result, supervise::Supervisor, wire};
use chrono::{DateTime, Utc};

use super::App;
use crate::store;

/// Campaigns a round takes at most (the next round takes the rest).
const ROUND: u64 = 200;

pub(crate) fn supervise(app: App, supervisor: &Supervisor, service: &'static str, tick: Duration, interval: Duration) {
    supervisor.spawn(service, "feedback-sender", move |shutdown| {
        let app = app.clone();
        async move {
            loop {
                if let Err(e) = app.send_round(wire::now(), interval).await {
                    tracing::warn!(error = %e, "campaign round failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(tick) => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
            }
        }
    });
}

impl App {
    /// One round at `now`; the campaigns it ran.
    pub(crate) async fn send_round(&self, now: DateTime<Utc>, interval: Duration) -> Result<Vec<uuid::Uuid>> {
        let every = chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::hours(1));
        let mut ran = Vec::new();
        for (tenant, id) in store::campaigns::due(self.db.conn(), now, now - every, ROUND).await? {
            match self.run_campaign(&tenant, id, now).await {
                Ok(true) => ran.push(id),
                Ok(false) => {}
                // One campaign's failure does not stop the others.
                Err(e) => tracing::warn!(%tenant, campaign = %id, error = %e, "campaign run failed"),
            }
        }
        Ok(ran)
    }
}
