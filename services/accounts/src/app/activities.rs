//! The timeline: activities logged once per request_id; lists; e-mail
//! response rates.

use banso_events::db::RequestKey;
use banso_kit::{Error, Result, Violations, auth::Caller, shown, wire};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{App, remembered};
use crate::{
    domain::activity::{Activity, ActivityFilter, ActivityKind, EmailStats, NewActivity},
    events, store,
};

const OP_LOG_ACTIVITY: &str = "LogActivity";

/// GetEmailResponseRate: an account and a window `[start, end)`, `start`
/// before `end`.
pub(crate) struct EmailWindow {
    pub account_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl App {
    /// Logs `activity` on its account's timeline; its contacts must be the
    /// account's, its author is the caller unless given.
    pub(crate) async fn log_activity(
        &self,
        caller: &Caller,
        request_id: Option<&str>,
        activity: NewActivity,
    ) -> Result<Activity> {
        let key = request_id.map(|request_id| RequestKey { operation: OP_LOG_ACTIVITY, request_id });
        let (found, read) = (self.scope(&caller.tenant_id), self.scope(&caller.tenant_id));
        let (account_id, contact_ids) = (activity.account_id, activity.contact_ids.clone());
        let author = activity.author_id.clone().unwrap_or_else(|| caller.subject.clone());
        self.db
            .create_once_with(
                &caller.tenant_id,
                "activity",
                key,
                async move |id| store::activities::get(&found.conn, &found.tenant, remembered(id)?).await,
                async move || {
                    store::accounts::must_exist(&read.conn, &read.tenant, account_id).await?;
                    if contact_ids.is_empty() {
                        return Ok(());
                    }
                    let known = store::contacts::of_account(&read.conn, &read.tenant, account_id, &contact_ids).await?;
                    let mut v = Violations::new();
                    for (i, id) in contact_ids.iter().enumerate() {
                        v.check(
                            !known.contains(id),
                            format!("activity.contact_ids[{i}]"),
                            format!("{id} is not a contact of account {account_id}"),
                        );
                    }
                    v.finish()
                },
                async move |tx, ()| {
                    let a = &activity;
                    let logged = Activity {
                        id: Uuid::now_v7(),
                        account_id: a.account_id,
                        kind: a.kind,
                        contact_ids: a.contact_ids.clone(),
                        author_id: author.clone(),
                        occur_time: a.occur_time,
                        subject: a.subject.clone(),
                        body: a.body.clone(),
                        external_ref: a.external_ref.clone(),
                        create_time: wire::now(),
                    };
                    store::activities::insert(tx.conn(), tx.tenant(), &logged).await.map_err(|e| match e {
                        Error::AlreadyExists(_) => Error::AlreadyExists(format!(
                            "an activity with external_ref {} is already on the timeline",
                            shown(logged.external_ref.as_deref().unwrap_or_default())
                        )),
                        other => other,
                    })?;
                    tx.emit(events::activity_logged(&logged)).await?;
                    Ok(Some(logged))
                },
            )
            .await
    }

    /// Activities newest first, after `(occur_time, id)`.
    pub(crate) async fn list_activities(
        &self,
        caller: &Caller,
        filter: &ActivityFilter,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u64,
    ) -> Result<Vec<Activity>> {
        store::activities::list(self.db.conn(), &caller.tenant_id, filter, after, limit).await
    }

    /// E-mails sent and replied on an account's timeline in the window.
    pub(crate) async fn email_stats(&self, caller: &Caller, w: EmailWindow) -> Result<EmailStats> {
        let (tenant, conn) = (&caller.tenant_id, self.db.conn());
        store::accounts::must_exist(conn, tenant, w.account_id).await?;
        let count = async |kind| store::activities::count(conn, tenant, w.account_id, kind, w.start, w.end).await;
        Ok(EmailStats {
            sent: count(ActivityKind::EmailSent).await?,
            replied: count(ActivityKind::EmailReplied).await?,
        })
    }
}
