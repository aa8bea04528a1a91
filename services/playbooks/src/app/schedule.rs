//! Schedule triggers: once a day per tenant, at its schedule time in its
//! time zone, every live schedule playbook over the accounts it selects.
//!
//! With several replicas exactly one runs a tenant's day: it takes the
//! tenant's lease (a conditional UPDATE, so the database decides), renews it
//! while it works, and marks the day done at the end. A replica that dies
//! mid-run leaves the day undone; after the lease expires another (or the
//! same, restarted) takes it and runs it again — firings are unique per
//! playbook, account and day, so nothing fires twice. A day missed while
//! every replica was down is caught up at the next start: schedule
//! conditions read today's state, so the run happens once, for today.

use std::{collections::HashMap, sync::Arc, time::Duration};

use banso_kit::{Result, supervise::Supervisor, wire};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use uuid::Uuid;

use super::{
    App,
    engine::{self, Applies, Occasion, Program, Segments, Subject},
};
use crate::{
    domain::{
        engine::{PlanCalendar, scheduled},
        playbook::{ScheduleTrigger, Trigger},
    },
    store::{self, projection::Projected},
};

/// How long a lease holds before another replica may take the day over.
const LEASE: chrono::Duration = chrono::Duration::minutes(5);
/// Accounts read (and fired, in one transaction) at a time.
const BATCH: u64 = 500;

/// When a tenant's day is due: at or after its schedule time, local.
pub(crate) fn due(
    schedule_time: &str,
    tz: chrono_tz::Tz,
    last: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> Option<NaiveDate> {
    let local = now.with_timezone(&tz);
    let today = local.date_naive();
    let at = NaiveTime::parse_from_str(schedule_time, "%H:%M").unwrap_or(NaiveTime::MIN);
    (local.time() >= at && last.is_none_or(|d| d < today)).then_some(today)
}

/// Runs the schedule every `tick` under the supervisor.
pub(crate) fn supervise(app: App, supervisor: &Supervisor, service: &'static str, tick: Duration) {
    let owner = Uuid::now_v7().to_string();
    supervisor.spawn(service, "playbooks-schedule", move |shutdown| {
        let (app, owner) = (app.clone(), owner.clone());
        async move {
            loop {
                if let Err(e) = app.schedule_round(&owner, wire::now()).await {
                    tracing::warn!(error = %e, "schedule round failed");
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
    /// One round: every tenant whose day is due and whose lease this
    /// replica takes. Returns the tenants it ran.
    pub(crate) async fn schedule_round(&self, owner: &str, now: DateTime<Utc>) -> Result<Vec<String>> {
        let conn = self.db.conn();
        let mut ran = Vec::new();
        for tenant in store::tenants::with_schedules(conn).await? {
            let settings = store::tenants::get(conn, &tenant).await?;
            let Some(today) = due(&settings.schedule_time, settings.tz(), settings.last_schedule_day, now) else {
                continue;
            };
            if !store::tenants::claim_schedule(conn, &tenant, today, owner, now, now + LEASE).await? {
                continue;
            }
            self.run_schedule(&tenant, today, owner).await?;
            store::tenants::finish_schedule(conn, &tenant, today, owner).await?;
            ran.push(tenant);
        }
        Ok(ran)
    }

    /// Every live schedule playbook of the tenant over its accounts, for `today`.
    pub(crate) async fn run_schedule(&self, tenant: &str, today: NaiveDate, owner: &str) -> Result<u64> {
        Ok(self.schedule_pass(tenant, today, Some(owner), true).await?.1)
    }

    /// One pass over the tenant's accounts in batches: which (playbook,
    /// account) pairs the live schedule playbooks select today, and — with
    /// `fire` — their firings, a transaction a batch. Returns (selected,
    /// fired). With an `owner`, the lease is renewed after each batch.
    pub(crate) async fn schedule_pass(
        &self,
        tenant: &str,
        today: NaiveDate,
        owner: Option<&str>,
        fire: bool,
    ) -> Result<(u64, u64)> {
        let conn = self.db.conn();
        let settings = store::tenants::get(conn, tenant).await?;
        let tz = settings.tz();
        let segments = self.engine.segments(conn, tenant).await?;
        let mut programs = Vec::new();
        for row in store::playbooks::live(conn, tenant, "schedule").await? {
            programs.push(self.engine.program(conn, tenant, row.id, row.live_version).await?);
        }
        programs.sort_by_key(|p| std::cmp::Reverse(p.def.priority));
        let key = format!("schedule:{today}");
        let conditions: Vec<ScheduleTrigger> = programs
            .iter()
            .filter_map(|p| if let Trigger::Schedule(s) = p.def.trigger { Some(s) } else { None })
            .collect();
        let (mut selected, mut fired) = (0u64, 0u64);
        let mut after = None;
        loop {
            let page = store::projection::scheduled_page(conn, tenant, &conditions, today, tz, after, BATCH).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.account.id);
            let now = wire::now();
            let plans = plan_calendars(conn, tenant, &conditions, &page, tz).await?;
            // The work of this batch, decided outside the transaction.
            let work = select(&programs, &page, &plans, tz, today, now, &segments);
            selected += work.len() as u64;
            if fire && !work.is_empty() {
                fired += self
                    .db
                    .write(tenant, async |tx| {
                        let mut n = 0u64;
                        for (p, projected) in &work {
                            let subject = Subject { projected, tz, now, event: None, facts: Default::default() };
                            let o = Occasion { kind: "schedule", key: key.clone(), event_id: None, subject: &subject };
                            if engine::fire(tx, &self.engine, p, &o, &segments).await?.is_some() {
                                n += 1;
                            }
                        }
                        Ok(n)
                    })
                    .await?;
                self.engine.after_commit();
            }
            if let Some(owner) = owner {
                // Still working: keep the lease.
                store::tenants::claim_schedule(conn, tenant, today, owner, wire::now(), wire::now() + LEASE).await?;
            }
        }
        Ok((selected, fired))
    }
}

/// The plan calendars of a page's accounts, read only when a condition
/// reads plans.
pub(crate) async fn plan_calendars(
    conn: &impl sea_orm::ConnectionTrait,
    tenant: &str,
    conditions: &[ScheduleTrigger],
    page: &[Projected],
    tz: chrono_tz::Tz,
) -> Result<HashMap<Uuid, PlanCalendar>> {
    if !conditions.iter().any(ScheduleTrigger::reads_plans) {
        return Ok(HashMap::new());
    }
    let ids: Vec<Uuid> = page.iter().map(|p| p.account.id).collect();
    store::plans::calendars(conn, tenant, &ids, tz).await
}

/// The (playbook, account) pairs the schedule selects in one batch: the
/// schedule condition, then the audience and the condition.
pub(crate) fn select<'a>(
    programs: &[Arc<Program>],
    page: &'a [Projected],
    plans: &HashMap<Uuid, PlanCalendar>,
    tz: chrono_tz::Tz,
    today: NaiveDate,
    now: DateTime<Utc>,
    segments: &Segments,
) -> Vec<(Arc<Program>, &'a Projected)> {
    let mut work = Vec::new();
    for projected in page {
        let calendar = projected.calendar(tz, plans);
        let subject = Subject { projected, tz, now, event: None, facts: Default::default() };
        for p in programs {
            let Trigger::Schedule(s) = p.def.trigger else { continue };
            if !scheduled(s, &calendar, today) {
                continue;
            }
            if engine::applies(p, &subject, segments) == Applies::Yes {
                work.push((p.clone(), projected));
            }
        }
    }
    work
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_due_at_its_local_time_once() {
        let tz: chrono_tz::Tz = "Asia/Tokyo".parse().unwrap();
        // 2026-12-04 21:30 UTC is 06:30 on the 5th in Tokyo.
        let now = DateTime::parse_from_rfc3339("2026-12-04T21:30:00Z").unwrap().to_utc();
        let d5 = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        assert_eq!(due("06:00", tz, None, now), Some(d5));
        assert_eq!(due("07:00", tz, None, now), None);
        assert_eq!(due("06:00", tz, Some(d5), now), None, "ran today already");
        assert_eq!(
            due("06:00", tz, NaiveDate::from_ymd_opt(2026, 11, 30), now),
            Some(d5),
            "missed days: run once, today"
        );
    }
}
