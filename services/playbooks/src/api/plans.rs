//! Success plans, templates and success models on the wire: parse (every
//! bad field at once) and convert; the door of SuccessPlansService.

use banso_kit::{
    Violations,
    auth::Access,
    etag, field_paths, fieldmask,
    paging::{self, Paged, QueryKey},
    rpc::{Rpc, handle},
    server::Kit,
    wire,
};
use banso_proto::playbooks as pb;
use chrono::{DateTime, Utc};
use tonic::Request;
use uuid::Uuid;

use crate::{
    app::{
        App,
        plans::{ConcludeReview, CreatePlan, ModelView, PlanChanges, RecordReading, Review, SelfRunRow},
    },
    domain::plan::{
        self, Agreed, Body, BuyIn, Checkpoint, CheckpointKind, Conclusion, Deliverable, DeliverableStatus,
        DevelopDirection, Direction, Facts, Group, Outcome, Party, Plan, Proxy, ProxyReason, Reading, Stage,
        Stakeholder, State, SubMetric, Task,
    },
    store::plans::{PlanFilter, Template},
};

pub struct SuccessPlansApi {
    app: App,
    kit: Kit,
}

impl SuccessPlansApi {
    pub(crate) fn new(app: App, kit: Kit) -> Self {
        SuccessPlansApi { app, kit }
    }
}

field_paths! {
    /// What UpdateSuccessPlan may change.
    pub(crate) enum PlanField {
        DisplayName = "display_name",
        Problem = "problem",
        ThemeId = "theme_id",
        Objectives = "objectives",
        Stage = "stage",
        Stakeholders = "stakeholders",
        Checkpoints = "checkpoints",
        Deliverables = "deliverables",
        Investment = "investment",
        Benefit = "benefit",
        Currency = "currency",
    }
}

/// A domain enum and its wire enum, both ways; `$from` is `None` for
/// UNSPECIFIED and unknown numbers, `$names` the values a client may send.
macro_rules! wire_enum {
    ($from:ident, $to:ident, $names:ident, $pb:ty, $dom:ident, [$($v:ident),+ $(,)?]) => {
        #[allow(dead_code, reason = "output-only enums are never parsed")]
        fn $from(raw: i32) -> Option<$dom> {
            $(if raw == <$pb>::$v as i32 { return Some($dom::$v); })+
            None
        }

        pub(crate) fn $to(x: $dom) -> $pb {
            match x { $($dom::$v => <$pb>::$v),+ }
        }

        #[allow(dead_code, reason = "output-only enums are never parsed")]
        fn $names() -> String {
            [$(<$pb>::$v.as_str_name()),+].join(", ")
        }
    };
}

wire_enum!(
    stage_from,
    stage_proto,
    stage_names,
    pb::PlanStage,
    Stage,
    [TrustAndStructure, RealIssue, PlanAndCheckpoints, Execution, ResultReview]
);
wire_enum!(state_from, state_proto, state_names, pb::PlanState, State, [Active, Concluded]);
wire_enum!(
    group_from,
    group_proto,
    group_names,
    pb::StakeholderGroup,
    Group,
    [Executives, Field, Administration, PromotingDepartment]
);
fn buy_in_from(raw: i32) -> Option<BuyIn> {
    match pb::BuyIn::try_from(raw).ok()? {
        pb::BuyIn::Unspecified => Some(BuyIn::Unknown),
        pb::BuyIn::Opposed => Some(BuyIn::Opposed),
        pb::BuyIn::Skeptical => Some(BuyIn::Skeptical),
        pb::BuyIn::Neutral => Some(BuyIn::Neutral),
        pb::BuyIn::Supportive => Some(BuyIn::Supportive),
        pb::BuyIn::Champion => Some(BuyIn::Champion),
    }
}

fn buy_in_proto(b: BuyIn) -> pb::BuyIn {
    match b {
        BuyIn::Unknown => pb::BuyIn::Unspecified,
        BuyIn::Opposed => pb::BuyIn::Opposed,
        BuyIn::Skeptical => pb::BuyIn::Skeptical,
        BuyIn::Neutral => pb::BuyIn::Neutral,
        BuyIn::Supportive => pb::BuyIn::Supportive,
        BuyIn::Champion => pb::BuyIn::Champion,
    }
}

fn buy_in_names() -> String {
    "BUY_IN_OPPOSED, BUY_IN_SKEPTICAL, BUY_IN_NEUTRAL, BUY_IN_SUPPORTIVE, BUY_IN_CHAMPION (unset: not known)".into()
}
wire_enum!(direction_from, direction_wire, direction_names, pb::Direction, Direction, [HigherIsBetter, LowerIsBetter]);
wire_enum!(
    kind_from,
    kind_proto,
    kind_names,
    pb::CheckpointKind,
    CheckpointKind,
    [Revenue, GrossProfit, CustomersAcquired, Cost, Rate, ProductUsage]
);
wire_enum!(party_from, party_proto, party_names, pb::Party, Party, [Customer, Vendor]);
wire_enum!(
    proxy_reason_from,
    proxy_reason_proto,
    proxy_reason_names,
    pb::ProxyReason,
    ProxyReason,
    [TemporaryOverload, OneOffHump, MotivatingFirstDeliverable]
);
wire_enum!(
    deliverable_status_from,
    deliverable_status_proto,
    deliverable_status_names,
    pb::DeliverableStatus,
    DeliverableStatus,
    [Planned, InProgress, Done, Dropped]
);
wire_enum!(
    develop_from,
    direction_proto,
    develop_names,
    pb::DevelopDirection,
    DevelopDirection,
    [AdvanceResult, AbstractProblem, OptimiseProcess, RefineExperience]
);
wire_enum!(
    conclusion_from,
    conclusion_proto,
    conclusion_names,
    pb::ReviewConclusion,
    Conclusion,
    [Develop, RedefineIssue, RaiseExecution, FindExecutionCause]
);

/// A required (or, with `default`, optional) enum field.
fn pick<T>(
    v: &mut Violations,
    field: &str,
    raw: i32,
    parsed: Option<T>,
    default: Option<T>,
    names: String,
) -> Option<T> {
    match (parsed, raw, default) {
        (Some(x), _, _) => Some(x),
        (None, 0, Some(d)) => Some(d),
        (None, 0, None) => {
            v.add(field, format!("is required: one of {names}"));
            None
        }
        (None, _, _) => {
            v.add(field, format!("{raw} is not one of {names}"));
            None
        }
    }
}

/// The largest magnitude a number of a plan may have.
const MAX_NUMBER: f64 = 1e15;

fn number(v: &mut Violations, field: &str, x: f64) -> f64 {
    if !x.is_finite() || x.abs() > MAX_NUMBER {
        v.add(field, format!("must be a finite number of at most 1e15 in magnitude, got {x}"));
    }
    x
}

fn bounded(v: &mut Violations, field: &str, x: f64, min: f64, max: f64) -> f64 {
    if !x.is_finite() || x < min || x > max {
        v.add(field, format!("must be {min} to {max}, got {x}"));
    }
    x
}

fn rating(v: &mut Violations, field: &str, raw: i32) -> Option<u8> {
    if !(0..=5).contains(&raw) {
        v.add(field, format!("must be 1 to 5 (0: not rated), got {raw}"));
        return None;
    }
    u8::try_from(raw).ok().filter(|r| *r > 0)
}

/// An item's id: nil when empty (a new item).
fn item_id(v: &mut Violations, field: &str, raw: &str) -> Uuid {
    v.take(wire::optional_uuid(field, raw)).flatten().unwrap_or_else(Uuid::nil)
}

fn agreed(
    v: &mut Violations,
    field: &str,
    direction: Option<Direction>,
    baseline: Option<f64>,
    target: Option<f64>,
) -> Option<Agreed> {
    match (baseline, target) {
        (None, None) => None,
        (Some(_), None) => {
            v.add(format!("{field}.target"), "is required with baseline: both are agreed together, or neither");
            None
        }
        (None, Some(_)) => {
            v.add(format!("{field}.baseline"), "is required with target: both are agreed together, or neither");
            None
        }
        (Some(b), Some(t)) => {
            let a = Agreed {
                baseline: number(v, &format!("{field}.baseline"), b),
                target: number(v, &format!("{field}.target"), t),
            };
            if let Some(d) = direction
                && let Some(why) = a.refuses(d)
            {
                v.add(format!("{field}.target"), why);
            }
            Some(a)
        }
    }
}

fn sub_metric(v: &mut Violations, field: &str, s: &pb::SubMetric) -> SubMetric {
    wire::required_text(v, &format!("{field}.metric"), &s.metric, 200);
    wire::text(v, &format!("{field}.axis"), &s.axis, 200);
    wire::text(v, &format!("{field}.unit"), &s.unit, 50);
    let direction = direction_from(s.direction);
    let d = pick(v, &format!("{field}.direction"), s.direction, direction, None, direction_names());
    SubMetric {
        id: item_id(v, &format!("{field}.id"), &s.id),
        metric: s.metric.trim().to_string(),
        axis: s.axis.clone(),
        unit: s.unit.clone(),
        direction: d.unwrap_or(Direction::HigherIsBetter),
        agreed: agreed(v, field, d, s.baseline, s.target),
        readings: Vec::new(),
    }
}

fn checkpoint(v: &mut Violations, field: &str, c: &pb::Checkpoint) -> Checkpoint {
    wire::required_text(v, &format!("{field}.metric"), &c.metric, 200);
    wire::text(v, &format!("{field}.unit"), &c.unit, 50);
    wire::multiline_text(v, &format!("{field}.assumption"), &c.assumption, 2000);
    let d = pick(v, &format!("{field}.direction"), c.direction, direction_from(c.direction), None, direction_names());
    let kind = pick(v, &format!("{field}.kind"), c.kind, kind_from(c.kind), None, kind_names());
    if c.sub_metrics.len() > 10 {
        v.add(format!("{field}.sub_metrics"), format!("at most 10, got {}", c.sub_metrics.len()));
    }
    Checkpoint {
        id: item_id(v, &format!("{field}.id"), &c.id),
        metric: c.metric.trim().to_string(),
        unit: c.unit.clone(),
        direction: d.unwrap_or(Direction::HigherIsBetter),
        kind: kind.unwrap_or(CheckpointKind::Rate),
        agreed: agreed(v, field, d, c.baseline, c.target),
        due_date: wire::optional_date(v, &format!("{field}.due_date"), c.due_date.as_ref()),
        assumption: c.assumption.clone(),
        sub_metrics: c
            .sub_metrics
            .iter()
            .take(10)
            .enumerate()
            .map(|(i, s)| sub_metric(v, &format!("{field}.sub_metrics[{i}]"), s))
            .collect(),
        readings: Vec::new(),
    }
}

fn deliverable(v: &mut Violations, field: &str, d: &pb::Deliverable) -> Deliverable {
    wire::required_text(v, &format!("{field}.title"), &d.title, 200);
    wire::text(v, &format!("{field}.owner"), &d.owner, 128);
    wire::text(v, &format!("{field}.approver"), &d.approver, 128);
    wire::multiline_text(v, &format!("{field}.quality_note"), &d.quality_note, 2000);
    let responsible =
        pick(v, &format!("{field}.responsible"), d.responsible, party_from(d.responsible), None, party_names());
    let nature = pick(v, &format!("{field}.nature"), d.nature, party_from(d.nature), responsible, party_names());
    let status = pick(
        v,
        &format!("{field}.status"),
        d.status,
        deliverable_status_from(d.status),
        Some(DeliverableStatus::Planned),
        deliverable_status_names(),
    );
    let reason = if d.proxy_reason == 0 {
        None
    } else {
        let parsed = proxy_reason_from(d.proxy_reason);
        pick(v, &format!("{field}.proxy_reason"), d.proxy_reason, parsed, None, proxy_reason_names())
    };
    let end = wire::optional_date(v, &format!("{field}.proxy_end_date"), d.proxy_end_date.as_ref());
    let is_proxy = responsible == Some(Party::Vendor) && nature == Some(Party::Customer);
    let proxy = if is_proxy {
        if d.proxy_reason == 0 {
            v.add(
                format!("{field}.proxy_reason"),
                format!(
                    "is required: the vendor doing the customer's work (代走) needs a reason, one of {}",
                    proxy_reason_names()
                ),
            );
        }
        if end.is_none() && d.proxy_end_date.is_none() {
            v.add(
                format!("{field}.proxy_end_date"),
                "is required: the vendor doing the customer's work (代走) is temporary and needs an end date",
            );
        }
        reason.zip(end).map(|(reason, end_date)| Proxy { reason, end_date })
    } else {
        if d.proxy_reason != 0 || d.proxy_end_date.is_some() {
            v.add(
                format!("{field}.proxy_reason"),
                "is only for a vendor-responsible deliverable that is the customer's by nature",
            );
        }
        None
    };
    if d.tasks.len() > 50 {
        v.add(format!("{field}.tasks"), format!("at most 50, got {}", d.tasks.len()));
    }
    let tasks = d
        .tasks
        .iter()
        .take(50)
        .enumerate()
        .map(|(i, t)| {
            let f = format!("{field}.tasks[{i}]");
            wire::required_text(v, &format!("{f}.title"), &t.title, 200);
            Task { id: item_id(v, &format!("{f}.id"), &t.id), title: t.title.trim().to_string(), done: t.done }
        })
        .collect();
    Deliverable {
        id: item_id(v, &format!("{field}.id"), &d.id),
        title: d.title.trim().to_string(),
        responsible: responsible.unwrap_or(Party::Vendor),
        nature: nature.unwrap_or(Party::Vendor),
        owner: d.owner.clone(),
        approver: d.approver.clone(),
        status: status.unwrap_or(DeliverableStatus::Planned),
        proxy,
        quality_rating: rating(v, &format!("{field}.quality_rating"), d.quality_rating),
        quality_note: d.quality_note.clone(),
        hours_spent: bounded(v, &format!("{field}.hours_spent"), d.hours_spent, 0.0, 100_000.0),
        effect: rating(v, &format!("{field}.effect"), d.effect),
        tasks,
    }
}

fn stakeholder(v: &mut Violations, field: &str, s: &pb::Stakeholder) -> Option<Stakeholder> {
    wire::multiline_text(v, &format!("{field}.note"), &s.note, 2000);
    let contact = v.take(wire::uuid(&format!("{field}.contact_id"), &s.contact_id));
    let group = pick(v, &format!("{field}.group"), s.group, group_from(s.group), None, group_names());
    let buy_in =
        pick(v, &format!("{field}.buy_in"), s.buy_in, buy_in_from(s.buy_in), Some(BuyIn::Unknown), buy_in_names());
    Some(Stakeholder { contact_id: contact?, group: group?, buy_in: buy_in?, note: s.note.clone() })
}

/// A required multi-line text: not only spaces, line breaks kept.
fn required_multiline(v: &mut Violations, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        v.add(field, "is required");
    } else {
        wire::multiline_text(v, field, value, max);
    }
}

fn objectives(v: &mut Violations, field: &str, o: &[String]) -> Vec<String> {
    if o.len() > 20 {
        v.add(field, format!("at most 20, got {}", o.len()));
    }
    for (i, x) in o.iter().enumerate() {
        wire::required_text(v, &format!("{field}[{i}]"), x, 500);
    }
    o.iter().map(|x| x.trim().to_string()).collect()
}

fn checkpoints(v: &mut Violations, field: &str, c: &[pb::Checkpoint]) -> Vec<Checkpoint> {
    if c.len() > 20 {
        v.add(field, format!("at most 20, got {}", c.len()));
    }
    c.iter().take(20).enumerate().map(|(i, x)| checkpoint(v, &format!("{field}[{i}]"), x)).collect()
}

fn deliverables(v: &mut Violations, field: &str, d: &[pb::Deliverable]) -> Vec<Deliverable> {
    if d.len() > 100 {
        v.add(field, format!("at most 100, got {}", d.len()));
    }
    d.iter().take(100).enumerate().map(|(i, x)| deliverable(v, &format!("{field}[{i}]"), x)).collect()
}

fn stakeholders(v: &mut Violations, field: &str, s: &[pb::Stakeholder]) -> Vec<Stakeholder> {
    if s.len() > 50 {
        v.add(field, format!("at most 50, got {}", s.len()));
    }
    s.iter().take(50).enumerate().filter_map(|(i, x)| stakeholder(v, &format!("{field}[{i}]"), x)).collect()
}

fn currency(v: &mut Violations, field: &str, c: &str) -> String {
    if !(c.is_empty() || (c.len() == 3 && c.chars().all(|x| x.is_ascii_uppercase()))) {
        v.add(field, format!("must be an ISO 4217 code such as JPY or USD, got {}", banso_kit::shown(c)));
    }
    c.to_string()
}

fn theme(v: &mut Violations, field: &str, raw: &str) -> Option<Uuid> {
    v.take(wire::optional_uuid(field, raw)).flatten()
}

fn benefit(v: &mut Violations, field: &str, b: Option<f64>) -> Option<f64> {
    b.map(|x| number(v, field, x))
}

/// A plan's editable parts from the wire (all of them, as on create).
fn body(v: &mut Violations, p: &pb::SuccessPlan, name_required: bool) -> Body {
    if name_required {
        wire::required_text(v, "plan.display_name", &p.display_name, 200);
    } else {
        wire::text(v, "plan.display_name", &p.display_name, 200);
    }
    wire::multiline_text(v, "plan.problem", &p.problem, 5000);
    Body {
        display_name: p.display_name.trim().to_string(),
        problem: p.problem.clone(),
        theme_id: theme(v, "plan.theme_id", &p.theme_id),
        objectives: objectives(v, "plan.objectives", &p.objectives),
        stakeholders: stakeholders(v, "plan.stakeholders", &p.stakeholders),
        checkpoints: checkpoints(v, "plan.checkpoints", &p.checkpoints),
        deliverables: deliverables(v, "plan.deliverables", &p.deliverables),
        investment: bounded(v, "plan.investment", p.investment, 0.0, MAX_NUMBER),
        benefit: benefit(v, "plan.benefit", p.benefit),
        currency: currency(v, "plan.currency", &p.currency),
    }
}

pub(crate) fn reading_proto(r: &Reading) -> pb::Reading {
    pb::Reading {
        value: r.value,
        reading_time: Some(wire::timestamp(r.reading_time)),
        recorded_by: r.recorded_by.clone(),
        record_time: Some(wire::timestamp(r.record_time)),
        note: r.note.clone(),
    }
}

fn checkpoint_proto(c: &Checkpoint, start: DateTime<Utc>) -> pb::Checkpoint {
    pb::Checkpoint {
        id: c.id.to_string(),
        metric: c.metric.clone(),
        unit: c.unit.clone(),
        direction: direction_wire(c.direction) as i32,
        kind: kind_proto(c.kind) as i32,
        baseline: c.agreed.map(|a| a.baseline),
        target: c.agreed.map(|a| a.target),
        due_date: c.due_date.map(wire::date_to_proto),
        assumption: c.assumption.clone(),
        sub_metrics: c
            .sub_metrics
            .iter()
            .map(|s| pb::SubMetric {
                id: s.id.to_string(),
                metric: s.metric.clone(),
                axis: s.axis.clone(),
                unit: s.unit.clone(),
                direction: direction_wire(s.direction) as i32,
                baseline: s.agreed.map(|a| a.baseline),
                target: s.agreed.map(|a| a.target),
                readings: s.readings.iter().map(reading_proto).collect(),
            })
            .collect(),
        readings: c.readings.iter().map(reading_proto).collect(),
        off_track: c.off_track(start),
    }
}

fn deliverable_proto(d: &Deliverable, today: chrono::NaiveDate) -> pb::Deliverable {
    pb::Deliverable {
        id: d.id.to_string(),
        title: d.title.clone(),
        responsible: party_proto(d.responsible) as i32,
        nature: party_proto(d.nature) as i32,
        owner: d.owner.clone(),
        approver: d.approver.clone(),
        approver_differs: d.approver_differs(),
        status: deliverable_status_proto(d.status) as i32,
        proxy_reason: d.proxy.map_or(0, |p| proxy_reason_proto(p.reason) as i32),
        proxy_end_date: d.proxy.map(|p| wire::date_to_proto(p.end_date)),
        proxy_overdue: d.proxy_overdue(today),
        quality_rating: d.quality_rating.map_or(0, i32::from),
        quality_note: d.quality_note.clone(),
        hours_spent: d.hours_spent,
        effect: d.effect.map_or(0, i32::from),
        tasks: d
            .tasks
            .iter()
            .map(|t| pb::PlanTask { id: t.id.to_string(), title: t.title.clone(), done: t.done })
            .collect(),
    }
}

fn outcome_proto(o: &Outcome) -> pb::CheckpointResult {
    pb::CheckpointResult {
        id: o.id.to_string(),
        metric: o.metric.clone(),
        unit: o.unit.clone(),
        direction: direction_wire(o.direction) as i32,
        baseline: o.agreed.map(|a| a.baseline),
        target: o.agreed.map(|a| a.target),
        actual: o.actual,
        attainment: o.attainment,
        change: o.change,
        shortfall: o.shortfall,
        met: o.met,
        assumption: o.assumption.clone(),
        sub_metrics: o.sub_metrics.iter().map(outcome_proto).collect(),
    }
}

fn review_proto(plan_id: Uuid, f: &Facts, concluded: Option<&plan::Concluded>) -> pb::ResultReview {
    let e = &f.execution;
    pb::ResultReview {
        plan_id: plan_id.to_string(),
        results: f.results.iter().map(outcome_proto).collect(),
        execution: Some(pb::Execution {
            deliverables_planned: e.deliverables_planned as i32,
            deliverables_done: e.deliverables_done as i32,
            tasks_planned: e.tasks_planned as i32,
            tasks_done: e.tasks_done as i32,
            quantity: e.quantity,
            quality: e.quality,
            rated: e.rated as i32,
            threshold: e.threshold,
            sufficient: e.sufficient,
        }),
        target_met: f.target_met,
        improved: f.improved,
        missing: f.missing.clone(),
        conclusion: f.conclusion.map_or(0, |c| conclusion_proto(c) as i32),
        activities: f
            .activities
            .iter()
            .map(|a| pb::ActivityEffect {
                deliverable_id: a.deliverable_id.to_string(),
                title: a.title.clone(),
                effect: i32::from(a.effect),
                hours_spent: a.hours_spent,
                effect_per_hour: a.effect_per_hour,
            })
            .collect(),
        roi: Some(pb::Roi {
            benefit: f.roi.benefit,
            benefit_source: f.roi.benefit_source.clone(),
            investment: f.roi.investment,
            roi: f.roi.roi,
            currency: f.roi.currency.clone(),
        }),
        analysis: concluded.map(|c| c.analysis.clone()).unwrap_or_default(),
        next_step: concluded.map(|c| c.next_step.clone()).unwrap_or_default(),
        direction: concluded.and_then(|c| c.direction).map_or(0, |d| direction_proto(d) as i32),
        conclude_time: concluded.map(|c| wire::timestamp(c.conclude_time)),
        concluded_by: concluded.map(|c| c.concluded_by.clone()).unwrap_or_default(),
    }
}

fn opt_id(x: Option<Uuid>) -> String {
    x.map(|x| x.to_string()).unwrap_or_default()
}

pub(crate) fn to_proto(p: &Plan, now: DateTime<Utc>) -> pb::SuccessPlan {
    let b = &p.body;
    let (customer, done) = plan::self_run(&b.deliverables);
    let today = now.date_naive();
    pb::SuccessPlan {
        id: p.id.to_string(),
        account_id: p.account_id.to_string(),
        display_name: b.display_name.clone(),
        problem: b.problem.clone(),
        theme_id: opt_id(b.theme_id),
        objectives: b.objectives.clone(),
        stage: stage_proto(p.stage) as i32,
        stage_time: Some(wire::timestamp(p.stage_since)),
        state: state_proto(p.state) as i32,
        stakeholders: b
            .stakeholders
            .iter()
            .map(|s| pb::Stakeholder {
                contact_id: s.contact_id.to_string(),
                group: group_proto(s.group) as i32,
                buy_in: buy_in_proto(s.buy_in) as i32,
                note: s.note.clone(),
            })
            .collect(),
        checkpoints: b.checkpoints.iter().map(|c| checkpoint_proto(c, p.create_time)).collect(),
        deliverables: b.deliverables.iter().map(|d| deliverable_proto(d, today)).collect(),
        investment: b.investment,
        benefit: b.benefit,
        currency: b.currency.clone(),
        self_run_ratio: plan::ratio(customer, done),
        template_id: opt_id(p.template_id),
        success_model_id: opt_id(p.model_id),
        follows_plan_id: opt_id(p.follows_plan_id),
        playbook_id: opt_id(p.playbook_id),
        created_by: p.created_by.clone(),
        review: p.review.as_ref().map(|c| review_proto(p.id, &c.facts, Some(c))),
        create_time: Some(wire::timestamp(p.create_time)),
        update_time: Some(wire::timestamp(p.update_time)),
        etag: etag::of(p.version),
    }
}

fn template_proto(t: &Template) -> pb::SuccessPlanTemplate {
    let today = t.create_time.date_naive();
    pb::SuccessPlanTemplate {
        id: t.id.to_string(),
        display_name: t.body.display_name.clone(),
        problem: t.body.problem.clone(),
        objectives: t.body.objectives.clone(),
        checkpoints: t.body.checkpoints.iter().map(|c| checkpoint_proto(c, t.create_time)).collect(),
        deliverables: t.body.deliverables.iter().map(|d| deliverable_proto(d, today)).collect(),
        create_time: Some(wire::timestamp(t.create_time)),
    }
}

fn model_proto(m: &ModelView) -> pb::SuccessModel {
    let ratio = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
    let count = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
    pb::SuccessModel {
        id: m.model.id.to_string(),
        display_name: m.model.display_name.clone(),
        plan_id: m.model.plan_id.to_string(),
        problem: m.model.problem.clone(),
        theme_id: opt_id(m.model.theme_id),
        segment_id: opt_id(m.model.segment_id),
        template_id: m.model.template_id.to_string(),
        checkpoints: m.model.checkpoints.iter().map(|c| checkpoint_proto(c, m.model.create_time)).collect(),
        evidence: m
            .evidence
            .iter()
            .map(|e| pb::Evidence {
                plan_id: e.plan_id.to_string(),
                account_id: e.account_id.to_string(),
                roi: e.roi,
                conclude_time: e.conclude_time.map(wire::timestamp),
            })
            .collect(),
        proposed: count(m.proposed),
        adopted: count(m.adopted),
        succeeded: count(m.succeeded),
        adoption_rate: ratio(m.proposed_adopted, m.proposed),
        segment_accounts: count(m.segment_accounts.unwrap_or(0)),
        penetration: m.segment_accounts.and_then(|n| ratio(m.successful_accounts, n)),
        usage_profile: m.model.usage.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        stock: m
            .stock
            .iter()
            .map(|(month, n)| pb::SuccessStock { month: month.clone(), successes: count(*n) })
            .collect(),
        create_time: Some(wire::timestamp(m.model.create_time)),
    }
}

fn self_run_proto(r: &SelfRunRow) -> pb::SelfRunRow {
    pb::SelfRunRow {
        key: r.key.clone(),
        display_name: r.display_name.clone(),
        plans: r.plans as i32,
        customer_done: r.customer_done as i32,
        done: r.done as i32,
        self_run_ratio: plan::ratio(r.customer_done, r.done),
    }
}

fn changes(v: &mut Violations, p: &pb::SuccessPlan, mask: &[PlanField]) -> PlanChanges {
    let mut c = PlanChanges::default();
    for f in mask {
        match f {
            PlanField::DisplayName => {
                wire::required_text(v, "plan.display_name", &p.display_name, 200);
                c.display_name = Some(p.display_name.trim().to_string());
            }
            PlanField::Problem => {
                wire::multiline_text(v, "plan.problem", &p.problem, 5000);
                c.problem = Some(p.problem.clone());
            }
            PlanField::ThemeId => c.theme_id = Some(theme(v, "plan.theme_id", &p.theme_id)),
            PlanField::Objectives => c.objectives = Some(objectives(v, "plan.objectives", &p.objectives)),
            PlanField::Stage => c.stage = pick(v, "plan.stage", p.stage, stage_from(p.stage), None, stage_names()),
            PlanField::Stakeholders => c.stakeholders = Some(stakeholders(v, "plan.stakeholders", &p.stakeholders)),
            PlanField::Checkpoints => c.checkpoints = Some(checkpoints(v, "plan.checkpoints", &p.checkpoints)),
            PlanField::Deliverables => c.deliverables = Some(deliverables(v, "plan.deliverables", &p.deliverables)),
            PlanField::Investment => {
                c.investment = Some(bounded(v, "plan.investment", p.investment, 0.0, MAX_NUMBER));
            }
            PlanField::Benefit => c.benefit = Some(benefit(v, "plan.benefit", p.benefit)),
            PlanField::Currency => c.currency = Some(currency(v, "plan.currency", &p.currency)),
        }
    }
    c
}

fn review_reply(r: &Review) -> pb::ResultReview {
    review_proto(r.plan_id, &r.facts, r.concluded.as_ref())
}

#[tonic::async_trait]
impl pb::success_plans_service_server::SuccessPlansService for SuccessPlansApi {
    async fn create_success_plan_template(
        &self,
        req: Request<pb::CreateSuccessPlanTemplateRequest>,
    ) -> Rpc<pb::SuccessPlanTemplate> {
        handle(req, Access::Admin, async |caller, r| {
            let mut v = Violations::new();
            let request_id = wire::request_id(&mut v, &r.request_id);
            let t = wire::required(&mut v, "template", r.template.as_ref());
            let b = t.map(|t| {
                wire::required_text(&mut v, "template.display_name", &t.display_name, 200);
                wire::multiline_text(&mut v, "template.problem", &t.problem, 5000);
                Body {
                    display_name: t.display_name.trim().to_string(),
                    problem: t.problem.clone(),
                    theme_id: None,
                    objectives: objectives(&mut v, "template.objectives", &t.objectives),
                    stakeholders: Vec::new(),
                    checkpoints: checkpoints(&mut v, "template.checkpoints", &t.checkpoints),
                    deliverables: deliverables(&mut v, "template.deliverables", &t.deliverables),
                    investment: 0.0,
                    benefit: None,
                    currency: String::new(),
                }
            });
            let b = v.finish_with(b)?;
            Ok(template_proto(&self.app.create_template(&caller, request_id, b).await?))
        })
        .await
    }

    async fn get_success_plan_template(
        &self,
        req: Request<pb::GetSuccessPlanTemplateRequest>,
    ) -> Rpc<pb::SuccessPlanTemplate> {
        handle(req, Access::Read, async |caller, r| {
            let id = wire::uuid("id", &r.id)?;
            Ok(template_proto(&self.app.get_template(&caller, id).await?))
        })
        .await
    }

    async fn list_success_plan_templates(
        &self,
        req: Request<pb::ListSuccessPlanTemplatesRequest>,
    ) -> Rpc<pb::ListSuccessPlanTemplatesResponse> {
        handle(req, Access::Read, async |caller, r| {
            let limit = paging::page_size(r.page_size)?;
            let key = QueryKey::new("ListSuccessPlanTemplates", &caller.tenant_id);
            let page: Paged<Uuid> = Paged::new(&self.kit.page_tokens, key, &r.page_token, limit)?;
            let rows = self.app.list_templates(&caller, page.after, page.fetch()).await?;
            let (rows, next_page_token) = page.page(&self.kit.page_tokens, rows, |t| t.id)?;
            Ok(pb::ListSuccessPlanTemplatesResponse {
                templates: rows.iter().map(template_proto).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn create_success_plan(&self, req: Request<pb::CreateSuccessPlanRequest>) -> Rpc<pb::SuccessPlan> {
        handle(req, Access::Write, async |caller, r| {
            let mut v = Violations::new();
            let request_id = wire::request_id(&mut v, &r.request_id);
            let template_id = v.take(wire::optional_uuid("template_id", &r.template_id)).flatten();
            let model_id = v.take(wire::optional_uuid("success_model_id", &r.success_model_id)).flatten();
            if template_id.is_some() && model_id.is_some() {
                v.add("template_id", "give a template or a success model (which has its template), not both");
            }
            let p = wire::required(&mut v, "plan", r.plan.as_ref());
            let account = p.and_then(|p| v.take(wire::uuid("plan.account_id", &p.account_id)));
            let follows = p.and_then(|p| v.take(wire::optional_uuid("plan.follows_plan_id", &p.follows_plan_id)));
            let stage = p.and_then(|p| {
                if p.stage == 0 {
                    Some(None)
                } else {
                    pick(&mut v, "plan.stage", p.stage, stage_from(p.stage), None, stage_names()).map(Some)
                }
            });
            let name_required = template_id.is_none() && model_id.is_none();
            let b = p.map(|p| body(&mut v, p, name_required));
            let (account, follows, stage, b) = v.finish_with((account, follows, stage, b))?;
            let cmd = CreatePlan {
                request_id,
                account_id: account,
                body: b,
                stage,
                template_id,
                model_id,
                follows_plan_id: follows,
            };
            Ok(to_proto(&self.app.create_plan(&caller, cmd).await?, wire::now()))
        })
        .await
    }

    async fn get_success_plan(&self, req: Request<pb::GetSuccessPlanRequest>) -> Rpc<pb::SuccessPlan> {
        handle(req, Access::Read, async |caller, r| {
            let id = wire::uuid("id", &r.id)?;
            Ok(to_proto(&self.app.get_plan(&caller, id).await?, wire::now()))
        })
        .await
    }

    async fn list_success_plans(&self, req: Request<pb::ListSuccessPlansRequest>) -> Rpc<pb::ListSuccessPlansResponse> {
        handle(req, Access::Read, async |caller, r| {
            let mut v = Violations::new();
            let limit = v.take(paging::page_size(r.page_size));
            let account = v.take(wire::optional_uuid("account_id", &r.account_id)).flatten();
            let model = v.take(wire::optional_uuid("success_model_id", &r.success_model_id)).flatten();
            let state = if r.state == 0 {
                None
            } else {
                pick(&mut v, "state", r.state, state_from(r.state), None, state_names())
            };
            let limit = v.finish_with(limit)?;
            let filter = PlanFilter { account, state, model };
            let key =
                QueryKey::new("ListSuccessPlans", &caller.tenant_id).part(format!("{account:?}/{state:?}/{model:?}"));
            let page: Paged<Uuid> = Paged::new(&self.kit.page_tokens, key, &r.page_token, limit)?;
            let rows = self.app.list_plans(&caller, filter, page.after, page.fetch()).await?;
            let (rows, next_page_token) = page.page(&self.kit.page_tokens, rows, |p| p.id)?;
            let now = wire::now();
            Ok(pb::ListSuccessPlansResponse { plans: rows.iter().map(|p| to_proto(p, now)).collect(), next_page_token })
        })
        .await
    }

    async fn update_success_plan(&self, req: Request<pb::UpdateSuccessPlanRequest>) -> Rpc<pb::SuccessPlan> {
        handle(req, Access::Write, async |caller, r| {
            let mut v = Violations::new();
            let mask = v.take(fieldmask::parse::<PlanField>("update_mask", r.update_mask.as_ref()));
            let p = wire::required(&mut v, "plan", r.plan.as_ref());
            let id = p.and_then(|p| v.take(wire::uuid("plan.id", &p.id)));
            let tag = p.and_then(|p| v.take(etag::parse("plan.etag", &p.etag)));
            let c = p.map(|p| changes(&mut v, p, mask.as_deref().unwrap_or_default()));
            let (id, tag, c) = v.finish_with((id, tag, c))?;
            Ok(to_proto(&self.app.update_plan(&caller, id, tag, c).await?, wire::now()))
        })
        .await
    }

    async fn record_checkpoint_reading(
        &self,
        req: Request<pb::RecordCheckpointReadingRequest>,
    ) -> Rpc<pb::SuccessPlan> {
        handle(req, Access::Write, async |caller, r| {
            let mut v = Violations::new();
            let plan_id = v.take(wire::uuid("plan_id", &r.plan_id));
            let checkpoint_id = v.take(wire::uuid("checkpoint_id", &r.checkpoint_id));
            let sub = v.take(wire::optional_uuid("sub_metric_id", &r.sub_metric_id));
            let reading = wire::required(&mut v, "reading", r.reading.as_ref());
            let value = reading.map(|x| number(&mut v, "reading.value", x.value));
            let time = reading.map(|x| wire::optional_time(&mut v, "reading.reading_time", x.reading_time.as_ref()));
            if let Some(x) = reading {
                wire::multiline_text(&mut v, "reading.note", &x.note, 2000);
            }
            let note = reading.map(|x| x.note.clone()).unwrap_or_default();
            let (plan_id, checkpoint_id, sub, value, time) =
                v.finish_with((plan_id, checkpoint_id, sub, value, time))?;
            let cmd = RecordReading { plan_id, checkpoint_id, sub_metric_id: sub, value, reading_time: time, note };
            Ok(to_proto(&self.app.record_reading(&caller, cmd).await?, wire::now()))
        })
        .await
    }

    async fn get_result_review(&self, req: Request<pb::GetResultReviewRequest>) -> Rpc<pb::ResultReview> {
        handle(req, Access::Read, async |caller, r| {
            let id = wire::uuid("plan_id", &r.plan_id)?;
            Ok(review_reply(&self.app.get_review(&caller, id).await?))
        })
        .await
    }

    async fn conclude_result_review(&self, req: Request<pb::ConcludeResultReviewRequest>) -> Rpc<pb::SuccessPlan> {
        handle(req, Access::Write, async |caller, r| {
            let mut v = Violations::new();
            let plan_id = v.take(wire::uuid("plan_id", &r.plan_id));
            required_multiline(&mut v, "analysis", &r.analysis, 20_000);
            required_multiline(&mut v, "next_step", &r.next_step, 5_000);
            let direction = if r.direction == 0 {
                Some(None)
            } else {
                pick(&mut v, "direction", r.direction, develop_from(r.direction), None, develop_names()).map(Some)
            };
            let tag = v.take(etag::parse("etag", &r.etag));
            let (plan_id, direction, tag) = v.finish_with((plan_id, direction, tag))?;
            let cmd = ConcludeReview {
                plan_id,
                analysis: r.analysis.clone(),
                next_step: r.next_step.clone(),
                direction,
                etag: tag,
            };
            Ok(to_proto(&self.app.conclude_review(&caller, cmd).await?, wire::now()))
        })
        .await
    }

    async fn summarize_self_run(&self, req: Request<pb::SummarizeSelfRunRequest>) -> Rpc<pb::SummarizeSelfRunResponse> {
        handle(req, Access::Read, async |caller, r| {
            let by_segment = match pb::SelfRunGrouping::try_from(r.group_by) {
                Ok(pb::SelfRunGrouping::Account) => false,
                Ok(pb::SelfRunGrouping::Segment) => true,
                _ => {
                    let names = "SELF_RUN_GROUPING_ACCOUNT, SELF_RUN_GROUPING_SEGMENT";
                    let what =
                        if r.group_by == 0 { "is required".to_string() } else { format!("{} is not", r.group_by) };
                    return Err(banso_kit::Error::invalid("group_by", format!("{what} one of {names}")));
                }
            };
            let (rows, total) = self.app.summarize_self_run(&caller, by_segment).await?;
            Ok(pb::SummarizeSelfRunResponse {
                rows: rows.iter().map(self_run_proto).collect(),
                total: Some(self_run_proto(&total)),
            })
        })
        .await
    }

    async fn create_success_model(&self, req: Request<pb::CreateSuccessModelRequest>) -> Rpc<pb::SuccessModel> {
        handle(req, Access::Admin, async |caller, r| {
            let mut v = Violations::new();
            let request_id = wire::request_id(&mut v, &r.request_id);
            let plan_id = v.take(wire::uuid("plan_id", &r.plan_id));
            wire::required_text(&mut v, "display_name", &r.display_name, 200);
            let segment = v.take(wire::optional_uuid("segment_id", &r.segment_id));
            let (plan_id, segment) = v.finish_with((plan_id, segment))?;
            let m =
                self.app.create_model(&caller, request_id, plan_id, r.display_name.trim().to_string(), segment).await?;
            Ok(model_proto(&m))
        })
        .await
    }

    async fn get_success_model(&self, req: Request<pb::GetSuccessModelRequest>) -> Rpc<pb::SuccessModel> {
        handle(req, Access::Read, async |caller, r| {
            let id = wire::uuid("id", &r.id)?;
            Ok(model_proto(&self.app.get_model(&caller, id).await?))
        })
        .await
    }

    async fn list_success_models(
        &self,
        req: Request<pb::ListSuccessModelsRequest>,
    ) -> Rpc<pb::ListSuccessModelsResponse> {
        handle(req, Access::Read, async |caller, r| {
            let limit = paging::page_size(r.page_size)?;
            let key = QueryKey::new("ListSuccessModels", &caller.tenant_id);
            let page: Paged<Uuid> = Paged::new(&self.kit.page_tokens, key, &r.page_token, limit)?;
            let rows = self.app.list_models(&caller, page.after, page.fetch()).await?;
            let (rows, next_page_token) = page.page(&self.kit.page_tokens, rows, |m| m.model.id)?;
            Ok(pb::ListSuccessModelsResponse { models: rows.iter().map(model_proto).collect(), next_page_token })
        })
        .await
    }

    async fn propose_success_model(
        &self,
        req: Request<pb::ProposeSuccessModelRequest>,
    ) -> Rpc<pb::ProposeSuccessModelResponse> {
        handle(req, Access::Admin, async |caller, r| {
            let mut v = Violations::new();
            let id = v.take(wire::uuid("id", &r.id));
            let max = if r.max_accounts == 0 { 100 } else { r.max_accounts };
            v.check(
                !(1..=1000).contains(&max),
                "max_accounts",
                format_args!("must be 1 to 1000 (0: 100), got {}", r.max_accounts),
            );
            let due = if r.due_in_days == 0 { 14 } else { r.due_in_days };
            v.check(
                !(0..=365).contains(&due),
                "due_in_days",
                format_args!("must be 0 to 365 (0: 14), got {}", r.due_in_days),
            );
            let id = v.finish_with(id)?;
            let made = self
                .app
                .propose_model(&caller, id, r.dry_run, max.clamp(1, 1000) as usize, due.clamp(0, 365) as u32)
                .await?;
            Ok(pb::ProposeSuccessModelResponse {
                proposals: made
                    .iter()
                    .map(|p| pb::Proposal {
                        account_id: p.account_id.to_string(),
                        reason: p.reason.to_string(),
                        cta_id: opt_id(p.cta_id),
                    })
                    .collect(),
            })
        })
        .await
    }
}
