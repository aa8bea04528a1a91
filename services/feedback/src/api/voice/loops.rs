//! Closing the loop on the wire: RecordDecision, AcknowledgeTheme,
//! SetRoadmapStatus, GetReach.

use banso_kit::{
    Violations,
    auth::Access,
    rpc::{Rpc, handle},
    server::Kit,
    wire,
};
use banso_proto::feedback as pb;
use tonic::Request;

use super::items::{department_from, departments_from, roadmap_status_from, theme_to_proto};
use crate::{
    app::{
        App,
        voice::loops::{NewDecision, ReachQuery},
    },
    domain::loops::{Reach, ReachRow},
    events::department_to_proto,
};

/// Longest decision, in characters.
const MAX_DECISION: usize = 2000;
/// Longest rationale, in characters.
const MAX_RATIONALE: usize = 5000;

pub(super) async fn record_decision(app: &App, _kit: &Kit, req: Request<pb::RecordDecisionRequest>) -> Rpc<pb::Theme> {
    handle(req, Access::Write, async |caller, r| {
        let mut v = Violations::new();
        let theme = v.take(wire::uuid("theme_id", &r.theme_id));
        let d = wire::required(&mut v, "decision", r.decision.as_ref()).map(|d| decision(&mut v, d));
        let (theme, d) = v.finish_with((theme, d))?;
        let (t, items) = app.record_decision(&caller, theme, d).await?;
        Ok(theme_to_proto(&t, items))
    })
    .await
}

/// A decision's text, rationale and departments consulted (each a
/// department, once); who and when are the call's.
fn decision(v: &mut Violations, d: &pb::Decision) -> NewDecision {
    let mut text = |field: &str, value: &str, max: usize| {
        if value.trim().is_empty() {
            v.add(field, "is required");
        } else {
            wire::multiline_text(v, field, value, max);
        }
    };
    text("decision.decision", &d.decision, MAX_DECISION);
    text("decision.rationale", &d.rationale, MAX_RATIONALE);
    let consulted = departments_from(v, "decision.departments_consulted", &d.departments_consulted);
    NewDecision { decision: d.decision.clone(), rationale: d.rationale.clone(), departments_consulted: consulted }
}

pub(super) async fn acknowledge_theme(
    app: &App,
    _kit: &Kit,
    req: Request<pb::AcknowledgeThemeRequest>,
) -> Rpc<pb::Theme> {
    handle(req, Access::Write, async |caller, r| {
        let mut v = Violations::new();
        let theme = v.take(wire::uuid("theme_id", &r.theme_id));
        let department = department_from(&mut v, "department", r.department);
        let (theme, department) = v.finish_with((theme, department))?;
        let (t, items) = app.acknowledge_theme(&caller, theme, department).await?;
        Ok(theme_to_proto(&t, items))
    })
    .await
}

pub(super) async fn set_roadmap_status(
    app: &App,
    _kit: &Kit,
    req: Request<pb::SetRoadmapStatusRequest>,
) -> Rpc<pb::Theme> {
    handle(req, Access::Write, async |caller, r| {
        let mut v = Violations::new();
        let theme = v.take(wire::uuid("theme_id", &r.theme_id));
        let s = roadmap_status_from(&mut v, "status", r.status);
        let (theme, s) = v.finish_with((theme, s))?;
        let (t, items) = app.set_roadmap_status(&caller, theme, s).await?;
        Ok(theme_to_proto(&t, items))
    })
    .await
}

pub(super) async fn get_reach(app: &App, _kit: &Kit, req: Request<pb::GetReachRequest>) -> Rpc<pb::Reach> {
    handle(req, Access::Read, async |caller, r| {
        let mut v = Violations::new();
        let start = wire::optional_time(&mut v, "start_time", r.start_time.as_ref());
        let end = wire::optional_time(&mut v, "end_time", r.end_time.as_ref());
        if let (Some(s), Some(e)) = (start, end)
            && e <= s
        {
            v.add("end_time", format!("must be after start_time, got {} ≤ {}", e.to_rfc3339(), s.to_rfc3339()));
        }
        v.finish()?;
        Ok(reach_to_proto(app.get_reach(&caller, ReachQuery { start, end, by_month: r.by_month }).await?))
    })
    .await
}

fn row_to_proto(r: ReachRow) -> pb::ReachRow {
    pb::ReachRow {
        department: r.department.map_or(0, department_to_proto),
        period: r.period,
        themes: r.themes,
        fully_acknowledged: r.fully_acknowledged,
        acknowledged: r.acknowledged,
        reach_percent: r.reach_percent,
    }
}

fn reach_to_proto(r: Reach) -> pb::Reach {
    pb::Reach {
        rows: r.rows.into_iter().map(row_to_proto).collect(),
        unacknowledged_theme_ids: r.unacknowledged.iter().map(|id| id.to_string()).collect(),
    }
}
