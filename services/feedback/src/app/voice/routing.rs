//! Routing the voice to every department: subscriptions (by department,
//! category, theme, severity), an alert at once for each item a
//! subscription takes (in the item's transaction), and a daily digest at
//! the tenant's digest time, in its time zone (the digest round, run by a
//! supervised task). A subscription with a Playbooks webhook endpoint gets
//! each notice delivered through NoticeIssued; without one, notices are
//! stored and listed.

use std::{collections::BTreeSet, time::Duration};

use banso_events::Tx;
use banso_kit::{Error, Result, auth::Caller, supervise::Supervisor, wire};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::{
    app::App,
    domain::{
        routing::{
            DEFAULT_DIGEST_TIME, MAX_SUBSCRIPTIONS, Notice, NoticeKind, Subscription, day_span, owed_days,
            parse_digest_time,
        },
        voice::{Department, Item},
    },
    events, store,
};

/// How often the digest round looks for digests that came due.
pub(crate) const DIGEST_TICK: Duration = Duration::from_secs(60);

/// CreateSubscription, parsed.
#[derive(Debug, Clone)]
pub(crate) struct NewSubscription {
    pub department: Department,
    pub category: String,
    pub theme_id: Option<Uuid>,
    pub min_severity: i32,
    pub endpoint_id: Option<Uuid>,
}

/// An alert of `item` for `s` at `now`.
fn alert(s: &Subscription, item: &Item, now: DateTime<Utc>) -> Notice {
    Notice {
        id: Uuid::now_v7(),
        subscription_id: s.id,
        department: s.department,
        kind: NoticeKind::Alert,
        item_ids: vec![item.id],
        day: None,
        create_time: now,
    }
}

/// Stores the alerts and emits NoticeIssued for those with an endpoint.
async fn send_alerts(tx: &Tx, alerts: Vec<(Notice, Option<Uuid>, &Item)>) -> Result<()> {
    if alerts.is_empty() {
        return Ok(());
    }
    let notices: Vec<Notice> = alerts.iter().map(|(n, ..)| n.clone()).collect();
    store::routing::insert_notices(tx.conn(), tx.tenant(), &notices).await?;
    tx.emit_all(alerts.iter().filter_map(|(n, endpoint, item)| endpoint.map(|e| events::notice_issued(n, e, &[*item]))))
        .await
}

/// Alerts for recorded items, in their transaction (after their insert,
/// its first write): one ALERT notice per subscription that takes an item
/// and item, NoticeIssued for a subscription with an endpoint.
pub(crate) async fn route_items(tx: &Tx, items: &[Item]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let departments: Vec<Department> =
        items.iter().map(|i| i.fields.department).collect::<BTreeSet<_>>().into_iter().collect();
    let subs = store::routing::subscriptions(tx.conn(), tx.tenant(), Some(&departments)).await?;
    if subs.is_empty() {
        return Ok(());
    }
    let now = wire::now();
    let alerts = items
        .iter()
        .flat_map(|i| subs.iter().filter(|s| s.takes(i)).map(move |s| (alert(s, i, now), s.endpoint_id, i)))
        .collect();
    send_alerts(tx, alerts).await
}

/// Alerts for an item that just joined `theme` (in the transaction that
/// linked it, only when the link is new): the subscriptions to that theme
/// that take the item hear of it; the others heard, or not, when it was
/// recorded.
pub(crate) async fn route_assignment(tx: &Tx, item: &Item, theme: Uuid) -> Result<()> {
    let subs = store::routing::subscriptions_to_theme(tx.conn(), tx.tenant(), theme).await?;
    let mut joined = item.clone();
    if !joined.theme_ids.contains(&theme) {
        joined.theme_ids.push(theme);
        joined.theme_ids.sort();
    }
    let now = wire::now();
    let alerts = subs
        .iter()
        .filter(|s| s.takes_joining(&joined, theme))
        .map(|s| (alert(s, &joined, now), s.endpoint_id, &joined))
        .collect();
    send_alerts(tx, alerts).await
}

/// Runs the digest round every `tick` until shutdown.
pub(crate) fn supervise(app: App, supervisor: &Supervisor, service: &'static str, tick: Duration) {
    supervisor.spawn(service, "feedback-digests", move |shutdown| {
        let app = app.clone();
        async move {
            loop {
                if let Err(e) = app.digest_round(wire::now()).await {
                    tracing::warn!(error = %e, "digest round failed");
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
    pub(crate) async fn create_subscription(&self, caller: &Caller, cmd: NewSubscription) -> Result<Subscription> {
        let conn = self.db.conn();
        let tenant = caller.tenant_id.as_str();
        if let Some(theme) = cmd.theme_id {
            store::voice::get_theme(conn, tenant, theme).await?;
        }
        if store::routing::count_subscriptions(conn, tenant).await? >= MAX_SUBSCRIPTIONS {
            return Err(Error::FailedPrecondition {
                reason: "TOO_MANY_SUBSCRIPTIONS",
                message: format!("a tenant keeps at most {MAX_SUBSCRIPTIONS} subscriptions: delete one first"),
            });
        }
        let s = Subscription {
            id: Uuid::now_v7(),
            department: cmd.department,
            category: cmd.category,
            theme_id: cmd.theme_id,
            min_severity: cmd.min_severity,
            endpoint_id: cmd.endpoint_id,
            last_digest_day: None,
            create_time: wire::now(),
        };
        self.db.write(tenant, async |tx| store::routing::insert_subscription(tx.conn(), tx.tenant(), &s).await).await?;
        Ok(s)
    }

    pub(crate) async fn list_subscriptions(
        &self,
        caller: &Caller,
        department: Option<Department>,
    ) -> Result<Vec<Subscription>> {
        let only = department.map(|d| [d]);
        store::routing::subscriptions(self.db.conn(), &caller.tenant_id, only.as_ref().map(|d| d.as_slice())).await
    }

    /// Deletes a subscription (its notices stay listed); NOT_FOUND when the tenant has none of that id.
    pub(crate) async fn delete_subscription(&self, caller: &Caller, id: Uuid) -> Result<()> {
        let deleted = self
            .db
            .write(&caller.tenant_id, async |tx| store::routing::delete_subscription(tx.conn(), tx.tenant(), id).await)
            .await?;
        if deleted { Ok(()) } else { Err(Error::not_found("subscription", id.to_string())) }
    }

    pub(crate) async fn list_notices(
        &self,
        caller: &Caller,
        department: Option<Department>,
        kind: Option<NoticeKind>,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Notice>> {
        store::routing::list_notices(self.db.conn(), &caller.tenant_id, department, kind, before, limit).await
    }

    /// One digest round at `now`, over every tenant with a subscription:
    /// each subscription's owed days (after its last digest, up to the
    /// day whose digest time has passed in the tenant's time zone, a week
    /// at most). The digests it wrote.
    pub(crate) async fn digest_round(&self, now: DateTime<Utc>) -> Result<usize> {
        let mut written = 0;
        for tenant in store::routing::subscribed_tenants(self.db.conn()).await? {
            match self.digest_tenant(&tenant, now).await {
                Ok(n) => written += n,
                // One tenant's failure does not stop the others.
                Err(e) => tracing::warn!(%tenant, error = %e, "digest failed"),
            }
        }
        Ok(written)
    }

    async fn digest_tenant(&self, tenant: &str, now: DateTime<Utc>) -> Result<usize> {
        let conn = self.db.conn();
        let tz = store::tenants::get(conn, tenant).await?.calendar().tz;
        let at = parse_digest_time(&store::tenants::voice_settings(conn, tenant).await?.digest_time)
            .unwrap_or(DEFAULT_DIGEST_TIME);
        let owed: Vec<(Subscription, Vec<NaiveDate>)> = store::routing::subscriptions(conn, tenant, None)
            .await?
            .into_iter()
            .map(|s| {
                let days = owed_days(&s, tz, at, now);
                (s, days)
            })
            .filter(|(_, days)| !days.is_empty())
            .collect();
        let days: BTreeSet<NaiveDate> = owed.iter().flat_map(|(_, d)| d.iter().copied()).collect();
        let mut written = 0;
        for day in days {
            let due: Vec<&Subscription> = owed.iter().filter(|(_, d)| d.contains(&day)).map(|(s, _)| s).collect();
            let departments: Vec<Department> =
                due.iter().map(|s| s.department).collect::<BTreeSet<_>>().into_iter().collect();
            let (start, end) = day_span(tz, day);
            let items = store::routing::items_between(conn, tenant, &departments, start, end).await?;
            for s in due {
                let taken: Vec<&Item> = items.iter().filter(|i| s.takes(i)).collect();
                if self.digest(tenant, s, day, &taken, now).await? {
                    written += 1;
                }
            }
        }
        Ok(written)
    }

    /// A subscription's digest of `day`: the notice (unless another
    /// replica or round wrote it; none for a day without items) with
    /// NoticeIssued for an endpoint, and its last digest day moved, in one
    /// transaction. Whether it wrote the notice.
    async fn digest(
        &self,
        tenant: &str,
        s: &Subscription,
        day: NaiveDate,
        items: &[&Item],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.db
            .write(tenant, async |tx| {
                let (conn, tenant) = (tx.conn(), tx.tenant());
                let mut wrote = false;
                if !items.is_empty() {
                    let n = Notice {
                        id: Uuid::now_v7(),
                        subscription_id: s.id,
                        department: s.department,
                        kind: NoticeKind::Digest,
                        item_ids: items.iter().map(|i| i.id).collect(),
                        day: Some(day),
                        create_time: now,
                    };
                    // The insert-or-skip is the transaction's first write.
                    wrote = store::routing::insert_digest(conn, tenant, &n).await?;
                    if wrote && let Some(endpoint) = s.endpoint_id {
                        tx.emit(events::notice_issued(&n, endpoint, items)).await?;
                    }
                }
                store::routing::set_last_digest_day(conn, tenant, s.id, day).await?;
                Ok(wrote)
            })
            .await
    }
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
