//! Recompute jobs started through the API.

use banso_events::db::RequestKey;
use banso_kit::{Result, auth::Caller};
use uuid::Uuid;

use super::App;
use crate::store::{
    self,
    jobs::{Job, Trigger},
};

impl App {
    /// Queues a recompute of the tenant (or returns the job already
    /// queued); a `request_id` seen before returns the job it started.
    pub(crate) async fn start_recompute(&self, caller: &Caller, request_id: Option<&str>) -> Result<Job> {
        let tenant = caller.tenant_id.as_str();
        let key = request_id.map(|request_id| RequestKey { operation: "StartRecompute", request_id });
        let (conn, owner) = (self.db.conn().clone(), caller.tenant_id.clone());
        let job = self
            .db
            .create_once(
                tenant,
                key,
                // Owned captures: see `App::update_scorecard`.
                async move |id: &str| {
                    let id = banso_events::db::remembered(id)?;
                    store::jobs::get_job(&conn, &owner, id).await
                },
                async |tx| store::jobs::queue(tx.conn(), tenant, Trigger::Api).await,
            )
            .await?;
        self.recompute.wake();
        Ok(job)
    }

    pub(crate) async fn get_recompute_job(&self, caller: &Caller, id: Uuid) -> Result<Job> {
        store::jobs::get_job(self.db.conn(), &caller.tenant_id, id).await
    }
}
