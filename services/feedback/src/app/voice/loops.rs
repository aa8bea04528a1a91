//! Closing the loop: inward — a decision logged, each department the theme
//! concerns acknowledging it, reach — and outward — the roadmap's status,
//! and on SHIPPED or DECLINED a LoopClosed to every account that raised
//! the theme. The status change and its ThemeStatusChanged commit together;
//! the fan-out is the service's own consumer of that event ([`close_loop`]),
//! so a redelivered status event tells no account twice.

use banso_events::Tx;
use banso_kit::{Error, Result, auth::Caller, wire};
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::{
    app::App,
    domain::{
        loops::{self, Reach, Refusal},
        voice::{Decision, Department, RoadmapStatus, Theme},
    },
    events, store,
};

/// RecordDecision, parsed: the decider and the time are the call's.
#[derive(Debug, Clone)]
pub(crate) struct NewDecision {
    pub decision: String,
    pub rationale: String,
    pub departments_consulted: Vec<Department>,
}

/// GetReach, parsed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReachQuery {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub by_month: bool,
}

fn refused(theme: Uuid, r: Refusal) -> Error {
    match r {
        Refusal::NotConcerned(d) => Error::FailedPrecondition {
            reason: "DEPARTMENT_NOT_CONCERNED",
            message: format!(
                "theme {theme} does not concern department {}; add it to the theme's departments first",
                d.as_str()
            ),
        },
        Refusal::DecisionRequired(s) => Error::FailedPrecondition {
            reason: "DECISION_REQUIRED",
            message: format!(
                "theme {theme} has no recorded decision: the tenant requires one before {}; record a decision first",
                s.as_str()
            ),
        },
    }
}

/// Sets the themes' `accounts_told` from the loops recorded: the count is
/// known once the fan-out ran, so it is read, never stored in the theme
/// (whose etag then does not move behind its editor's back).
pub(crate) async fn with_accounts_told(conn: &impl ConnectionTrait, tenant: &str, themes: &mut [Theme]) -> Result<()> {
    let ids: Vec<Uuid> = themes.iter().filter(|t| !t.log.roadmap_history.is_empty()).map(|t| t.id).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let told = store::loops::told(conn, tenant, &ids).await?;
    for t in themes.iter_mut() {
        if let Some(by_change) = told.get(&t.id) {
            loops::with_told(t, by_change);
        }
    }
    Ok(())
}

/// The fan-out of a closing status change, in the consumer's transaction
/// (its first statement, the inbox claim, was a write): each account that
/// raised the theme — the accounts of its items now — is recorded in
/// `loops_closed` for (theme, change) and gets one LoopClosed, only if the
/// row is new. A change that does not close the loop, or a theme that is
/// gone, tells no one.
pub(crate) async fn close_loop(tx: &Tx, theme: Uuid, change: i32, status: RoadmapStatus) -> Result<usize> {
    if !status.closes_loop() || change < 1 {
        return Ok(0);
    }
    let (conn, tenant) = (tx.conn(), tx.tenant());
    let Some(t) = store::voice::find_theme(conn, tenant, theme).await? else { return Ok(0) };
    let raisers = loops::raisers(&store::loops::raised(conn, tenant, theme).await?);
    if raisers.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = raisers.iter().map(|r| r.account).collect();
    let fresh = store::loops::record_told(conn, tenant, theme, change, &ids, wire::now()).await?;
    if fresh.is_empty() {
        return Ok(0);
    }
    let owners: std::collections::HashMap<Uuid, String> = store::projection::accounts(conn, tenant, Some(&ids))
        .await?
        .into_iter()
        .map(|p| (p.account.id, p.account.owner_id))
        .collect();
    let decision = loops::latest_decision(&t).map(|d| d.decision.as_str()).unwrap_or_default();
    let payloads: Vec<_> = raisers
        .iter()
        .filter(|r| fresh.contains(&r.account))
        .map(|r| {
            events::loop_closed(events::Told {
                theme: &t,
                status,
                raiser: r,
                owner_id: owners.get(&r.account).map(String::as_str).unwrap_or_default(),
                decision,
            })
        })
        .collect();
    let n = payloads.len();
    tx.emit_all(payloads).await?;
    Ok(n)
}

impl App {
    /// One change of the theme's log, at its latest version (a lost race is
    /// retried, then ABORTED `CONCURRENT_UPDATE`); a change that changes
    /// nothing writes nothing. A status change emits ThemeStatusChanged in
    /// the same transaction. The theme is returned with its items and the
    /// accounts each closing change told.
    async fn change_log(
        &self,
        caller: &Caller,
        id: Uuid,
        rule: impl Fn(&mut Theme) -> Result<()> + Send + Sync,
    ) -> Result<(Theme, i64)> {
        let s = self.scope(&caller.tenant_id);
        self.db
            .update_versioned(
                &caller.tenant_id,
                &format!("theme {id}"),
                None,
                async move || store::voice::get_theme(&s.conn, &s.tenant, id).await,
                rule,
                async |tx, current, next| {
                    if !store::voice::update_theme(tx.conn(), tx.tenant(), current, next).await? {
                        return Ok(false);
                    }
                    if next.log.roadmap_history.len() > current.log.roadmap_history.len() {
                        tx.emit(events::theme_status_changed(next, current.status())).await?;
                    }
                    Ok(true)
                },
            )
            .await?;
        let conn = self.db.conn();
        let mut t = store::voice::get_theme(conn, &caller.tenant_id, id).await?;
        with_accounts_told(conn, &caller.tenant_id, std::slice::from_mut(&mut t)).await?;
        let n = store::voice::theme_sizes(conn, &caller.tenant_id, &[id]).await?.get(&id).copied().unwrap_or(0);
        Ok((t, n))
    }

    /// RecordDecision: appended to the theme's log, decided by the caller now.
    pub(crate) async fn record_decision(&self, caller: &Caller, theme: Uuid, d: NewDecision) -> Result<(Theme, i64)> {
        let by = caller.subject.clone();
        self.change_log(caller, theme, move |t| {
            loops::decide(
                t,
                Decision {
                    decision: d.decision.clone(),
                    rationale: d.rationale.clone(),
                    departments_consulted: d.departments_consulted.clone(),
                    decided_by: by.clone(),
                    decide_time: wire::now(),
                },
            );
            Ok(())
        })
        .await
    }

    /// AcknowledgeTheme: a department the theme concerns, once (the first
    /// acknowledgement is kept); another department FAILED_PRECONDITION
    /// `DEPARTMENT_NOT_CONCERNED`.
    pub(crate) async fn acknowledge_theme(&self, caller: &Caller, theme: Uuid, d: Department) -> Result<(Theme, i64)> {
        let by = caller.subject.clone();
        self.change_log(caller, theme, move |t| {
            loops::acknowledge(t, d, &by, wire::now()).map(|_| ()).map_err(|r| refused(theme, r))
        })
        .await
    }

    /// SetRoadmapStatus: appended to the roadmap history with its
    /// ThemeStatusChanged; the current status again changes nothing.
    /// SHIPPED or DECLINED without a decision, where the tenant's voice
    /// settings require one: FAILED_PRECONDITION `DECISION_REQUIRED`.
    pub(crate) async fn set_roadmap_status(
        &self,
        caller: &Caller,
        theme: Uuid,
        status: RoadmapStatus,
    ) -> Result<(Theme, i64)> {
        let require = store::tenants::voice_settings(self.db.conn(), &caller.tenant_id).await?.require_decision;
        let by = caller.subject.clone();
        self.change_log(caller, theme, move |t| {
            loops::move_to(t, status, &by, wire::now(), require).map(|_| ()).map_err(|r| refused(theme, r))
        })
        .await
    }

    /// GetReach over the themes created in [start, end), by month of the
    /// tenant's calendar or the whole range.
    pub(crate) async fn get_reach(&self, caller: &Caller, q: ReachQuery) -> Result<Reach> {
        let conn = self.db.conn();
        let tenant = &caller.tenant_id;
        let cal = store::tenants::get(conn, tenant).await?.calendar();
        let end = q.end.unwrap_or_else(wire::now);
        let themes: Vec<Theme> = store::voice::all_themes(conn, tenant)
            .await?
            .into_iter()
            .filter(|t| q.start.is_none_or(|s| t.create_time >= s) && t.create_time < end)
            .collect();
        let labelled: Vec<(String, &Theme)> = themes
            .iter()
            .map(|t| {
                let label = if q.by_month { cal.day(t.create_time).format("%Y-%m").to_string() } else { String::new() };
                (label, t)
            })
            .collect();
        Ok(loops::reach(&labelled))
    }
}
