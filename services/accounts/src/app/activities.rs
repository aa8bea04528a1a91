//! The timeline: activities logged once per request_id; lists; e-mail
//! response rates.

use banso_events::db::RequestKey;
use banso_kit::{Error, Result, Violations, auth::Caller, shown, wire};
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{App, remembered};
use crate::{
    domain::activity::{Activity, ActivityFilter, ActivityKind, EmailStats, NewActivity, TouchCounts},
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

/// How GetProactiveRatio groups touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RatioGrouping {
    Account,
    Owner,
    Segment,
}

/// GetProactiveRatio: a period `[start, end)` and a grouping; with
/// SEGMENT, the segments to report (all of the tenant's when empty).
pub(crate) struct RatioQuery {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub group_by: RatioGrouping,
    pub segment_ids: Vec<Uuid>,
}

/// Touches per group (by key, ordered) and for the tenant.
pub(crate) struct RatioReport {
    pub groups: Vec<(String, TouchCounts)>,
    pub total: TouchCounts,
}

impl App {
    /// Vendor- and customer-started touches over the period, per group.
    pub(crate) async fn proactive_ratio(&self, caller: &Caller, q: RatioQuery) -> Result<RatioReport> {
        let (tenant, conn) = (&caller.tenant_id, self.db.conn());
        let per_account = store::activities::touches_by_account(conn, tenant, q.start, q.end).await?;
        let mut total = TouchCounts::default();
        for (_, c) in &per_account {
            total.add(*c);
        }
        let groups = match q.group_by {
            RatioGrouping::Account => per_account.iter().map(|(id, c)| (id.to_string(), *c)).collect(),
            RatioGrouping::Owner => {
                let ids: Vec<Uuid> = per_account.iter().map(|(id, _)| *id).collect();
                let owners = store::accounts::owners(conn, tenant, &ids).await?;
                let mut by_owner: BTreeMap<String, TouchCounts> = BTreeMap::new();
                for (id, c) in &per_account {
                    // An account deleted since takes its activities with it.
                    if let Some(owner) = owners.get(id) {
                        by_owner.entry(owner.clone()).or_default().add(*c);
                    }
                }
                by_owner.into_iter().collect()
            }
            RatioGrouping::Segment => {
                let segment_ids =
                    if q.segment_ids.is_empty() { self.all_segment_ids(tenant).await? } else { q.segment_ids.clone() };
                let mut by_segment = BTreeMap::new();
                for id in segment_ids {
                    let members = self.segment_members(tenant, id).await?;
                    let mut c = TouchCounts::default();
                    for (account, counts) in &per_account {
                        if members.contains(account) {
                            c.add(*counts);
                        }
                    }
                    by_segment.insert(id.to_string(), c);
                }
                by_segment.into_iter().collect()
            }
        };
        Ok(RatioReport { groups, total })
    }

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
                        origin: a.origin.or(a.kind.default_origin()),
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
