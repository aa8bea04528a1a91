//! Success plans (docs/success-plans.md): the five steps of a first
//! success, checkpoints agreed in the customer's business terms, the
//! deliverables and who does them (代走 recorded as such), and the result
//! review — facts first (result, then execution), the conclusion derived
//! by the source's rule, the analysis last — with the customer's ROI.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

named!(Stage {
    TrustAndStructure = "trust_and_structure",
    RealIssue = "real_issue",
    PlanAndCheckpoints = "plan_and_checkpoints",
    Execution = "execution",
    ResultReview = "result_review",
});
named!(State { Active = "active", Concluded = "concluded" });
named!(Group {
    Executives = "executives",
    Field = "field",
    Administration = "administration",
    PromotingDepartment = "promoting_department",
});
named!(BuyIn {
    Unknown = "unknown",
    Opposed = "opposed",
    Skeptical = "skeptical",
    Neutral = "neutral",
    Supportive = "supportive",
    Champion = "champion",
});
named!(Direction { HigherIsBetter = "higher_is_better", LowerIsBetter = "lower_is_better" });
named!(CheckpointKind {
    Revenue = "revenue",
    GrossProfit = "gross_profit",
    CustomersAcquired = "customers_acquired",
    Cost = "cost",
    Rate = "rate",
    ProductUsage = "product_usage",
});
named!(Party { Customer = "customer", Vendor = "vendor" });
named!(ProxyReason {
    TemporaryOverload = "temporary_overload",
    OneOffHump = "one_off_hump",
    MotivatingFirstDeliverable = "motivating_first_deliverable",
});
named!(DeliverableStatus { Planned = "planned", InProgress = "in_progress", Done = "done", Dropped = "dropped" });
named!(DevelopDirection {
    AdvanceResult = "advance_result",
    AbstractProblem = "abstract_problem",
    OptimiseProcess = "optimise_process",
    RefineExperience = "refine_experience",
});
named!(Conclusion {
    Develop = "develop",
    RedefineIssue = "redefine_issue",
    RaiseExecution = "raise_execution",
    FindExecutionCause = "find_execution_cause",
});

/// The default share of deliverables and tasks done at which execution is
/// "sufficient".
pub(crate) const DEFAULT_EXECUTION_THRESHOLD_PERCENT: i32 = 80;

/// A reading behind the straight line to the target by more than this much
/// attainment is off track.
pub(crate) const OFF_TRACK_MARGIN: f64 = 0.10;

/// Agreed values differ by more than this to count as different.
const EPSILON: f64 = 1e-9;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Stakeholder {
    pub contact_id: Uuid,
    pub group: Group,
    pub buy_in: BuyIn,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Reading {
    pub value: f64,
    pub reading_time: DateTime<Utc>,
    pub recorded_by: String,
    pub record_time: DateTime<Utc>,
    pub note: String,
}

/// The baseline and the target, agreed together in stage 3.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Agreed {
    pub baseline: f64,
    pub target: f64,
}

impl Agreed {
    /// Why a baseline and target cannot be agreed with this direction.
    pub(crate) fn refuses(&self, direction: Direction) -> Option<String> {
        let (b, t) = (self.baseline, self.target);
        if (t - b).abs() <= EPSILON {
            return Some(format!("target {t} must differ from baseline {b}"));
        }
        match direction {
            Direction::HigherIsBetter if t < b => {
                Some(format!("target {t} is below baseline {b}, but the direction is higher is better"))
            }
            Direction::LowerIsBetter if t > b => {
                Some(format!("target {t} is above baseline {b}, but the direction is lower is better"))
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SubMetric {
    pub id: Uuid,
    pub metric: String,
    pub axis: String,
    pub unit: String,
    pub direction: Direction,
    pub agreed: Option<Agreed>,
    pub readings: Vec<Reading>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub id: Uuid,
    pub metric: String,
    pub unit: String,
    pub direction: Direction,
    pub kind: CheckpointKind,
    pub agreed: Option<Agreed>,
    pub due_date: Option<NaiveDate>,
    pub assumption: String,
    pub sub_metrics: Vec<SubMetric>,
    pub readings: Vec<Reading>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Task {
    pub id: Uuid,
    pub title: String,
    pub done: bool,
}

/// Vendor work done for the customer: why, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Proxy {
    pub reason: ProxyReason,
    pub end_date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Deliverable {
    pub id: Uuid,
    pub title: String,
    pub responsible: Party,
    pub nature: Party,
    pub owner: String,
    pub approver: String,
    pub status: DeliverableStatus,
    pub proxy: Option<Proxy>,
    /// 1 to 5.
    pub quality_rating: Option<u8>,
    pub quality_note: String,
    pub hours_spent: f64,
    /// 1 to 5.
    pub effect: Option<u8>,
    pub tasks: Vec<Task>,
}

impl Deliverable {
    /// The vendor does work that is the customer's by nature (代走).
    pub(crate) fn is_proxy_work(&self) -> bool {
        self.responsible == Party::Vendor && self.nature == Party::Customer
    }

    /// The formal approver is someone other than the owner.
    pub(crate) fn approver_differs(&self) -> bool {
        !self.approver.trim().is_empty() && self.approver.trim() != self.owner.trim()
    }

    fn open(&self) -> bool {
        !matches!(self.status, DeliverableStatus::Done | DeliverableStatus::Dropped)
    }

    /// Proxy work not done and past its end date on `today`.
    pub(crate) fn proxy_overdue(&self, today: NaiveDate) -> bool {
        self.is_proxy_work() && self.open() && self.proxy.is_some_and(|p| today > p.end_date)
    }
}

/// What a person edits of a plan (and a template holds part of).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Body {
    pub display_name: String,
    pub problem: String,
    pub theme_id: Option<Uuid>,
    pub objectives: Vec<String>,
    pub stakeholders: Vec<Stakeholder>,
    pub checkpoints: Vec<Checkpoint>,
    pub deliverables: Vec<Deliverable>,
    pub investment: f64,
    pub benefit: Option<f64>,
    pub currency: String,
}

/// A concluded review: the facts as they stood, the derived conclusion,
/// and what a person wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Concluded {
    pub facts: Facts,
    pub analysis: String,
    pub next_step: String,
    pub direction: Option<DevelopDirection>,
    pub conclude_time: DateTime<Utc>,
    pub concluded_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub id: Uuid,
    pub account_id: Uuid,
    pub body: Body,
    pub stage: Stage,
    pub stage_since: DateTime<Utc>,
    pub state: State,
    pub template_id: Option<Uuid>,
    pub model_id: Option<Uuid>,
    pub follows_plan_id: Option<Uuid>,
    pub playbook_id: Option<Uuid>,
    pub created_by: String,
    pub review: Option<Concluded>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub version: i64,
}

/// The latest reading: by reading time, then by when it was recorded.
fn latest(readings: &[Reading]) -> Option<&Reading> {
    readings.iter().max_by(|a, b| (a.reading_time, a.record_time).cmp(&(b.reading_time, b.record_time)))
}

/// One checkpoint's (or sub-metric's) result against plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Outcome {
    pub id: Uuid,
    pub metric: String,
    pub unit: String,
    pub direction: Direction,
    pub agreed: Option<Agreed>,
    pub actual: Option<f64>,
    pub attainment: Option<f64>,
    pub change: Option<f64>,
    pub shortfall: Option<f64>,
    pub met: bool,
    pub assumption: String,
    pub sub_metrics: Vec<Outcome>,
}

/// attainment = (actual − baseline) ÷ (target − baseline); change = actual −
/// baseline; shortfall = the distance to the target in the better
/// direction, 0 once met.
pub(crate) fn outcome(
    id: Uuid,
    metric: &str,
    unit: &str,
    direction: Direction,
    agreed: Option<Agreed>,
    readings: &[Reading],
    assumption: &str,
) -> Outcome {
    let actual = latest(readings).map(|r| r.value);
    let (mut attainment, mut change, mut shortfall, mut met) = (None, None, None, false);
    if let (Some(a), Some(g)) = (actual, agreed) {
        let at = (a - g.baseline) / (g.target - g.baseline);
        attainment = Some(at);
        change = Some(a - g.baseline);
        let short = match direction {
            Direction::HigherIsBetter => g.target - a,
            Direction::LowerIsBetter => a - g.target,
        };
        shortfall = Some(short.max(0.0));
        met = at >= 1.0 - EPSILON;
    }
    // The assumption beside the difference: shown where forecast and actual differ.
    let differs = matches!((actual, agreed), (Some(a), Some(g)) if (a - g.target).abs() > EPSILON);
    Outcome {
        id,
        metric: metric.to_string(),
        unit: unit.to_string(),
        direction,
        agreed,
        actual,
        attainment,
        change,
        shortfall,
        met,
        assumption: if differs { assumption.to_string() } else { String::new() },
        sub_metrics: Vec::new(),
    }
}

impl Checkpoint {
    pub(crate) fn outcome(&self) -> Outcome {
        let mut o =
            outcome(self.id, &self.metric, &self.unit, self.direction, self.agreed, &self.readings, &self.assumption);
        o.sub_metrics = self
            .sub_metrics
            .iter()
            .map(|s| outcome(s.id, &s.metric, &s.unit, s.direction, s.agreed, &s.readings, ""))
            .collect();
        o
    }

    /// Whether the latest reading is behind the straight line from the
    /// baseline at `start` to the target at the due date by more than
    /// [`OFF_TRACK_MARGIN`] of attainment.
    pub(crate) fn off_track(&self, start: DateTime<Utc>) -> bool {
        let (Some(r), Some(due)) = (latest(&self.readings), self.due_date) else { return false };
        let Some(attainment) = self.outcome().attainment else { return false };
        let due = due.and_time(chrono::NaiveTime::MIN).and_utc();
        let span = (due - start).num_seconds();
        let expected =
            if span <= 0 { 1.0 } else { ((r.reading_time - start).num_seconds() as f64 / span as f64).clamp(0.0, 1.0) };
        attainment < expected - OFF_TRACK_MARGIN
    }

    /// The due date, if it has no reading as of it or later.
    pub(crate) fn reading_due(&self) -> Option<NaiveDate> {
        let due = self.due_date?;
        (!self.readings.iter().any(|r| r.reading_time.date_naive() >= due)).then_some(due)
    }
}

/// How much and how well the plan was carried out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Execution {
    pub deliverables_planned: u32,
    pub deliverables_done: u32,
    pub tasks_planned: u32,
    pub tasks_done: u32,
    pub quantity: f64,
    pub quality: Option<f64>,
    pub rated: u32,
    pub threshold: f64,
    pub sufficient: bool,
}

/// quantity = (deliverables done + tasks done) ÷ (deliverables planned +
/// tasks planned), dropped ones counted as planned; quality = the mean
/// rating of the rated deliverables.
pub(crate) fn execution(deliverables: &[Deliverable], threshold: f64) -> Execution {
    let planned = deliverables.len() as u32;
    let done = deliverables.iter().filter(|d| d.status == DeliverableStatus::Done).count() as u32;
    let tasks_planned = deliverables.iter().map(|d| d.tasks.len() as u32).sum::<u32>();
    let tasks_done = deliverables.iter().map(|d| d.tasks.iter().filter(|t| t.done).count() as u32).sum::<u32>();
    let all = planned + tasks_planned;
    let quantity = if all == 0 { 0.0 } else { f64::from(done + tasks_done) / f64::from(all) };
    let ratings: Vec<f64> = deliverables.iter().filter_map(|d| d.quality_rating.map(f64::from)).collect();
    let quality = (!ratings.is_empty()).then(|| ratings.iter().sum::<f64>() / ratings.len() as f64);
    Execution {
        deliverables_planned: planned,
        deliverables_done: done,
        tasks_planned,
        tasks_done,
        quantity,
        quality,
        rated: ratings.len() as u32,
        threshold,
        sufficient: all > 0 && quantity >= threshold - EPSILON,
    }
}

/// A deliverable's effect per hour spent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ActivityEffect {
    pub deliverable_id: Uuid,
    pub title: String,
    pub effect: u8,
    pub hours_spent: f64,
    pub effect_per_hour: Option<f64>,
}

/// The rated deliverables by effect per hour, highest first (those without
/// hours last): the low end is what "optimise" drops.
pub(crate) fn activities(deliverables: &[Deliverable]) -> Vec<ActivityEffect> {
    let mut out: Vec<ActivityEffect> = deliverables
        .iter()
        .filter_map(|d| {
            let effect = d.effect?;
            Some(ActivityEffect {
                deliverable_id: d.id,
                title: d.title.clone(),
                effect,
                hours_spent: d.hours_spent,
                effect_per_hour: (d.hours_spent > 0.0).then(|| f64::from(effect) / d.hours_spent),
            })
        })
        .collect();
    out.sort_by(|a, b| match (a.effect_per_hour, b.effect_per_hour) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => b.effect.cmp(&a.effect),
    });
    out
}

/// The customer's return on the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Roi {
    pub benefit: Option<f64>,
    /// "entered" or "checkpoints"; empty without a benefit.
    pub benefit_source: String,
    pub investment: f64,
    pub roi: Option<f64>,
    pub currency: String,
}

/// benefit: entered, or the gross profit gained plus the cost saved by the
/// checkpoints of those kinds that have a reading; ROI = (benefit −
/// investment) ÷ investment.
pub(crate) fn roi(body: &Body) -> Roi {
    let (benefit, source) = match body.benefit {
        Some(b) => (Some(b), "entered"),
        None => {
            let gains: Vec<f64> = body
                .checkpoints
                .iter()
                .filter(|c| matches!(c.kind, CheckpointKind::GrossProfit | CheckpointKind::Cost))
                .filter_map(|c| {
                    let change = c.outcome().change?;
                    Some(match c.direction {
                        Direction::HigherIsBetter => change,
                        Direction::LowerIsBetter => -change,
                    })
                })
                .collect();
            if gains.is_empty() { (None, "") } else { (Some(gains.iter().sum()), "checkpoints") }
        }
    };
    let roi = benefit.filter(|_| body.investment > 0.0).map(|b| (b - body.investment) / body.investment);
    Roi {
        benefit,
        benefit_source: source.to_string(),
        investment: body.investment,
        roi,
        currency: body.currency.clone(),
    }
}

/// The facts of a review and what the rule derives from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Facts {
    pub results: Vec<Outcome>,
    pub execution: Execution,
    pub target_met: bool,
    pub improved: bool,
    pub missing: Vec<String>,
    pub conclusion: Option<Conclusion>,
    pub activities: Vec<ActivityEffect>,
    pub roi: Roi,
}

/// The source's decision rule: target met → develop; otherwise sufficient
/// execution → redefine the issue or hypothesis; insufficient execution
/// with an improvement → the measure likely works, raise execution;
/// insufficient and no improvement → find out why execution failed.
pub(crate) fn conclude(target_met: bool, sufficient: bool, improved: bool) -> Conclusion {
    match (target_met, sufficient, improved) {
        (true, _, _) => Conclusion::Develop,
        (false, true, _) => Conclusion::RedefineIssue,
        (false, false, true) => Conclusion::RaiseExecution,
        (false, false, false) => Conclusion::FindExecutionCause,
    }
}

/// The review of a plan as its facts stand: the result per checkpoint,
/// the execution degree against `threshold` (a share), what is missing,
/// and — only once nothing is — the conclusion. The target is met when
/// every checkpoint is; the result improved when the mean attainment is
/// above 0.
pub(crate) fn review(body: &Body, threshold: f64) -> Facts {
    let results: Vec<Outcome> = body.checkpoints.iter().map(Checkpoint::outcome).collect();
    let execution = execution(&body.deliverables, threshold);
    let mut missing = Vec::new();
    if body.checkpoints.is_empty() {
        missing.push("no checkpoint: agree at least one with the customer".to_string());
    }
    for c in &body.checkpoints {
        if c.agreed.is_none() {
            missing.push(format!("checkpoint {}: baseline and target not agreed", c.metric));
        }
        if c.readings.is_empty() {
            missing.push(format!("checkpoint {}: no reading", c.metric));
        }
    }
    if body.deliverables.is_empty() {
        missing.push("no deliverable: execution cannot be measured".to_string());
    }
    for d in &body.deliverables {
        if d.status == DeliverableStatus::Done && d.quality_rating.is_none() {
            missing.push(format!("deliverable {}: done but its quality is not rated", d.title));
        }
    }
    let attainments: Vec<f64> = results.iter().filter_map(|r| r.attainment).collect();
    let target_met = !results.is_empty() && results.iter().all(|r| r.met);
    let improved = !attainments.is_empty() && attainments.iter().sum::<f64>() / attainments.len() as f64 > EPSILON;
    let conclusion = missing.is_empty().then(|| conclude(target_met, execution.sufficient, improved));
    Facts {
        results,
        execution,
        target_met,
        improved,
        missing,
        conclusion,
        activities: activities(&body.deliverables),
        roi: roi(body),
    }
}

/// Customer-owned deliverables done and all deliverables done.
pub(crate) fn self_run(deliverables: &[Deliverable]) -> (u32, u32) {
    let done = deliverables.iter().filter(|d| d.status == DeliverableStatus::Done);
    let (mut customer, mut all) = (0, 0);
    for d in done {
        all += 1;
        if d.responsible == Party::Customer {
            customer += 1;
        }
    }
    (customer, all)
}

/// customer ÷ all; `None` while nothing is done.
pub(crate) fn ratio(customer: u32, all: u32) -> Option<f64> {
    (all > 0).then(|| f64::from(customer) / f64::from(all))
}

/// What the schedule triggers read of a plan, kept in its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Alerts {
    /// The earliest due date of a checkpoint with no reading as of it.
    pub reading_due: Option<NaiveDate>,
    pub off_track: bool,
    /// The earliest end date of proxy work not done.
    pub proxy_end: Option<NaiveDate>,
}

impl Plan {
    pub(crate) fn alerts(&self) -> Alerts {
        if self.state == State::Concluded {
            return Alerts::default();
        }
        let b = &self.body;
        Alerts {
            reading_due: b.checkpoints.iter().filter_map(Checkpoint::reading_due).min(),
            off_track: b.checkpoints.iter().any(|c| c.off_track(self.create_time)),
            proxy_end: b
                .deliverables
                .iter()
                .filter(|d| d.is_proxy_work() && d.open())
                .filter_map(|d| d.proxy.map(|p| p.end_date))
                .min(),
        }
    }

    /// Why a reading as of `time` cannot be recorded at `now`: before the
    /// plan started, or more than a day ahead (a value not yet measured).
    pub(crate) fn refuses_reading_at(&self, time: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
        if time < self.create_time {
            return Some(format!("{time} is before the plan started ({})", self.create_time));
        }
        (time > now + chrono::Duration::days(1)).then(|| format!("{time} is in the future: record what was measured"))
    }
}

/// Usage is similar over at least this many measures both accounts have …
pub(crate) const USAGE_SHARED_MEASURES: usize = 2;
/// … when their values differ by at most this on average, in ln(1 + |v|):
/// within a factor of two.
pub(crate) const USAGE_DISTANCE: f64 = std::f64::consts::LN_2;

/// A measure value on the scale usage is compared on: ln(1 + |v|), signed,
/// so a count of 1,000 against 1,100 is as close as 10 against 11.
fn usage_scale(v: f64) -> f64 {
    v.signum() * v.abs().ln_1p()
}

/// Whether two usage profiles (measure → value) are similar: at least
/// [`USAGE_SHARED_MEASURES`] measures in common, and the mean distance of
/// their scaled values at most [`USAGE_DISTANCE`]. Returns the distance
/// when they are.
pub(crate) fn similar_usage(
    a: &std::collections::BTreeMap<String, f64>,
    b: &std::collections::BTreeMap<String, f64>,
) -> Option<f64> {
    let diffs: Vec<f64> = a
        .iter()
        .filter_map(|(m, x)| b.get(m).map(|y| (usage_scale(*x) - usage_scale(*y)).abs()))
        .filter(|d| d.is_finite())
        .collect();
    if diffs.len() < USAGE_SHARED_MEASURES {
        return None;
    }
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    (mean <= USAGE_DISTANCE).then_some(mean)
}

/// Why a list edit cannot be applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refusal {
    /// An item names an id the plan does not have: (field, message).
    UnknownId(String, String),
    /// A checkpoint with readings would be removed.
    HasReadings(String),
}

/// The checkpoints after an edit: an item with a nil id is new (fresh ids
/// for it and its sub-metrics); one with an id keeps that checkpoint's
/// readings (and each kept sub-metric's); a checkpoint with readings cannot
/// be removed, nor a sub-metric with readings.
pub(crate) fn merge_checkpoints(current: &[Checkpoint], incoming: Vec<Checkpoint>) -> Result<Vec<Checkpoint>, Refusal> {
    let mut out = Vec::with_capacity(incoming.len());
    for (i, mut c) in incoming.into_iter().enumerate() {
        let old = if c.id.is_nil() {
            c.id = Uuid::now_v7();
            None
        } else {
            let found = current.iter().find(|x| x.id == c.id).ok_or_else(|| {
                Refusal::UnknownId(format!("plan.checkpoints[{i}].id"), format!("no checkpoint {} in this plan", c.id))
            })?;
            Some(found)
        };
        c.readings = old.map(|o| o.readings.clone()).unwrap_or_default();
        for (j, sm) in c.sub_metrics.iter_mut().enumerate() {
            if sm.id.is_nil() {
                sm.id = Uuid::now_v7();
                sm.readings = Vec::new();
            } else {
                let found = old.and_then(|o| o.sub_metrics.iter().find(|x| x.id == sm.id)).ok_or_else(|| {
                    Refusal::UnknownId(
                        format!("plan.checkpoints[{i}].sub_metrics[{j}].id"),
                        format!("no sub-metric {} in this checkpoint", sm.id),
                    )
                })?;
                sm.readings = found.readings.clone();
            }
        }
        if let Some(o) = old {
            for gone in o.sub_metrics.iter().filter(|x| !c.sub_metrics.iter().any(|y| y.id == x.id)) {
                if !gone.readings.is_empty() {
                    return Err(Refusal::HasReadings(format!(
                        "sub-metric {} of checkpoint {} has {} readings and cannot be removed",
                        gone.metric,
                        o.metric,
                        gone.readings.len()
                    )));
                }
            }
        }
        out.push(c);
    }
    for gone in current.iter().filter(|x| !out.iter().any(|y| y.id == x.id)) {
        if !gone.readings.is_empty() || gone.sub_metrics.iter().any(|s| !s.readings.is_empty()) {
            return Err(Refusal::HasReadings(format!("checkpoint {} has readings and cannot be removed", gone.metric)));
        }
    }
    Ok(out)
}

/// The deliverables after an edit: nil ids are new (and their tasks'); a
/// given id must be the plan's.
pub(crate) fn merge_deliverables(
    current: &[Deliverable],
    incoming: Vec<Deliverable>,
) -> Result<Vec<Deliverable>, Refusal> {
    let mut out = Vec::with_capacity(incoming.len());
    for (i, mut d) in incoming.into_iter().enumerate() {
        let old = if d.id.is_nil() {
            d.id = Uuid::now_v7();
            None
        } else {
            Some(current.iter().find(|x| x.id == d.id).ok_or_else(|| {
                Refusal::UnknownId(
                    format!("plan.deliverables[{i}].id"),
                    format!("no deliverable {} in this plan", d.id),
                )
            })?)
        };
        for (j, t) in d.tasks.iter_mut().enumerate() {
            if t.id.is_nil() {
                t.id = Uuid::now_v7();
            } else if !old.is_some_and(|o| o.tasks.iter().any(|x| x.id == t.id)) {
                return Err(Refusal::UnknownId(
                    format!("plan.deliverables[{i}].tasks[{j}].id"),
                    format!("no task {} in this deliverable", t.id),
                ));
            }
        }
        out.push(d);
    }
    Ok(out)
}

/// New ids for every checkpoint, sub-metric, deliverable and task of a
/// new plan (a client's ids on create name nothing yet).
pub(crate) fn new_ids(body: &mut Body) {
    for c in &mut body.checkpoints {
        c.id = Uuid::now_v7();
        for s in &mut c.sub_metrics {
            s.id = Uuid::now_v7();
        }
    }
    for d in &mut body.deliverables {
        d.id = Uuid::now_v7();
        for t in &mut d.tasks {
            t.id = Uuid::now_v7();
        }
    }
}

/// A template's (or model's) parts as a plan starts with them: fresh ids,
/// no readings, every deliverable planned and unrated, every task open.
pub(crate) fn fresh(
    mut checkpoints: Vec<Checkpoint>,
    mut deliverables: Vec<Deliverable>,
) -> (Vec<Checkpoint>, Vec<Deliverable>) {
    for c in &mut checkpoints {
        c.id = Uuid::now_v7();
        c.readings.clear();
        for s in &mut c.sub_metrics {
            s.id = Uuid::now_v7();
            s.readings.clear();
        }
    }
    for d in &mut deliverables {
        d.id = Uuid::now_v7();
        d.status = DeliverableStatus::Planned;
        d.quality_rating = None;
        d.quality_note.clear();
        d.hours_spent = 0.0;
        d.effect = None;
        for t in &mut d.tasks {
            t.id = Uuid::now_v7();
            t.done = false;
        }
    }
    (checkpoints, deliverables)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn reading(value: f64, at: &str) -> Reading {
        Reading { value, reading_time: t(at), recorded_by: "u".into(), record_time: t(at), note: String::new() }
    }

    fn checkpoint(direction: Direction, baseline: f64, target: f64, actual: Option<f64>) -> Checkpoint {
        Checkpoint {
            id: Uuid::now_v7(),
            metric: "m".into(),
            unit: "%".into(),
            direction,
            kind: CheckpointKind::Rate,
            agreed: Some(Agreed { baseline, target }),
            due_date: NaiveDate::from_ymd_opt(2026, 12, 31),
            assumption: "half the leavers are in their first 3 months".into(),
            sub_metrics: vec![],
            readings: actual.map(|a| reading(a, "2026-12-01T00:00:00Z")).into_iter().collect(),
        }
    }

    fn deliverable(status: DeliverableStatus, responsible: Party, tasks: &[bool]) -> Deliverable {
        Deliverable {
            id: Uuid::now_v7(),
            title: "d".into(),
            responsible,
            nature: responsible,
            owner: "o".into(),
            approver: String::new(),
            status,
            proxy: None,
            quality_rating: (status == DeliverableStatus::Done).then_some(4),
            quality_note: String::new(),
            hours_spent: 0.0,
            effect: None,
            tasks: tasks.iter().map(|d| Task { id: Uuid::now_v7(), title: "t".into(), done: *d }).collect(),
        }
    }

    fn body(checkpoints: Vec<Checkpoint>, deliverables: Vec<Deliverable>) -> Body {
        Body {
            display_name: "p".into(),
            problem: String::new(),
            theme_id: None,
            objectives: vec![],
            stakeholders: vec![],
            checkpoints,
            deliverables,
            investment: 0.0,
            benefit: None,
            currency: String::new(),
        }
    }

    /// The source's example: turnover 30% → target 21%, actual 25%, execution
    /// incomplete: attainment 5 of 9 points, "the measure likely works;
    /// raise execution".
    #[test]
    fn the_source_example_comes_out_exactly() {
        let c = checkpoint(Direction::LowerIsBetter, 30.0, 21.0, Some(25.0));
        let d = vec![
            deliverable(DeliverableStatus::Done, Party::Customer, &[true, true]),
            deliverable(DeliverableStatus::InProgress, Party::Customer, &[true, false, false]),
        ];
        let f = review(&body(vec![c], d), 0.8);
        let r = &f.results[0];
        assert!((r.attainment.unwrap() - 5.0 / 9.0).abs() < 1e-12);
        assert_eq!(format!("{:.1}", r.attainment.unwrap() * 100.0), "55.6");
        assert_eq!(r.change, Some(-5.0));
        assert_eq!(r.shortfall, Some(4.0));
        assert!(!r.met);
        assert_eq!(r.assumption, "half the leavers are in their first 3 months");
        assert_eq!(f.execution.quantity, 4.0 / 7.0);
        assert!(!f.execution.sufficient);
        assert!(f.improved && !f.target_met);
        assert_eq!(f.conclusion, Some(Conclusion::RaiseExecution));
    }

    /// Every branch of the rule, with attainment below 0 and above 100%.
    #[test]
    fn the_decision_rule_covers_every_branch() {
        let done = || deliverable(DeliverableStatus::Done, Party::Customer, &[]);
        let planned = || deliverable(DeliverableStatus::Planned, Party::Customer, &[]);
        let rows = [
            // (baseline, target, actual, deliverables done of 5, attainment, conclusion)
            (100.0, 200.0, 250.0, 5, 1.5, Conclusion::Develop),
            (100.0, 200.0, 200.0, 1, 1.0, Conclusion::Develop),
            (100.0, 200.0, 150.0, 4, 0.5, Conclusion::RedefineIssue),
            (100.0, 200.0, 80.0, 5, -0.2, Conclusion::RedefineIssue),
            (100.0, 200.0, 150.0, 3, 0.5, Conclusion::RaiseExecution),
            (100.0, 200.0, 100.0, 3, 0.0, Conclusion::FindExecutionCause),
            (100.0, 200.0, 50.0, 0, -0.5, Conclusion::FindExecutionCause),
        ];
        for (b, tg, a, n, attainment, want) in rows {
            let d = (0..5).map(|i| if i < n { done() } else { planned() }).collect();
            let f = review(&body(vec![checkpoint(Direction::HigherIsBetter, b, tg, Some(a))], d), 0.8);
            assert!((f.results[0].attainment.unwrap() - attainment).abs() < 1e-12, "{a}");
            assert_eq!(f.conclusion, Some(want), "actual {a}, {n} of 5 done");
        }
        assert_eq!(conclude(true, false, false), Conclusion::Develop);
    }

    #[test]
    fn facts_missing_hold_the_conclusion_back_and_say_what_is_missing() {
        let mut c = checkpoint(Direction::HigherIsBetter, 1.0, 2.0, None);
        c.metric = "revenue".into();
        let mut d = deliverable(DeliverableStatus::Done, Party::Vendor, &[]);
        d.title = "kickoff".into();
        d.quality_rating = None;
        let f = review(&body(vec![c], vec![d]), 0.8);
        assert_eq!(
            f.missing,
            ["checkpoint revenue: no reading", "deliverable kickoff: done but its quality is not rated"]
        );
        assert_eq!(f.conclusion, None);
        let f = review(&body(vec![], vec![]), 0.8);
        assert_eq!(f.missing.len(), 2);
    }

    #[test]
    fn agreed_values_refuse_equal_or_contrary_targets() {
        let a = |baseline, target| Agreed { baseline, target };
        assert!(a(30.0, 30.0).refuses(Direction::LowerIsBetter).unwrap().contains("must differ"));
        assert!(a(30.0, 40.0).refuses(Direction::LowerIsBetter).unwrap().contains("above baseline"));
        assert!(a(30.0, 20.0).refuses(Direction::HigherIsBetter).unwrap().contains("below baseline"));
        assert_eq!(a(30.0, 21.0).refuses(Direction::LowerIsBetter), None);
    }

    #[test]
    fn roi_self_run_and_activities() {
        let mut gp = checkpoint(Direction::HigherIsBetter, 1_000.0, 2_000.0, Some(1_600.0));
        gp.kind = CheckpointKind::GrossProfit;
        let mut cost = checkpoint(Direction::LowerIsBetter, 500.0, 300.0, Some(400.0));
        cost.kind = CheckpointKind::Cost;
        let revenue = checkpoint(Direction::HigherIsBetter, 1.0, 2.0, Some(9.0));
        let mut b = body(vec![gp, cost, revenue], vec![]);
        b.investment = 400.0;
        let r = roi(&b);
        assert_eq!((r.benefit, r.benefit_source.as_str()), (Some(700.0), "checkpoints"));
        assert_eq!(r.roi, Some(0.75));
        b.benefit = Some(200.0);
        assert_eq!(roi(&b).roi, Some(-0.5));
        b.investment = 0.0;
        assert_eq!(roi(&b).roi, None);

        let ds = vec![
            deliverable(DeliverableStatus::Done, Party::Customer, &[]),
            deliverable(DeliverableStatus::Done, Party::Vendor, &[]),
            deliverable(DeliverableStatus::Done, Party::Customer, &[]),
            deliverable(DeliverableStatus::InProgress, Party::Customer, &[]),
        ];
        assert_eq!(self_run(&ds), (2, 3));
        assert_eq!(ratio(0, 0), None);

        let mut ds = ds;
        for (d, (effect, hours)) in ds.iter_mut().zip([(5, 10.0), (2, 1.0), (4, 0.0), (1, 20.0)]) {
            d.effect = Some(effect);
            d.hours_spent = hours;
        }
        let ranked: Vec<u8> = activities(&ds).iter().map(|a| a.effect).collect();
        assert_eq!(ranked, [2, 5, 1, 4], "2/h, 0.5/h, 0.05/h, then no hours");
    }

    #[test]
    fn usage_is_similar_within_a_factor_of_two_over_shared_measures() {
        let p = |xs: &[(&str, f64)]| xs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let origin = p(&[("events_30d:login", 120.0), ("feature_breadth_30d", 6.0), ("external:nps", 40.0)]);
        assert!(similar_usage(&origin, &p(&[("events_30d:login", 100.0), ("feature_breadth_30d", 5.0)])).is_some());
        assert!(similar_usage(&origin, &p(&[("events_30d:login", 3.0), ("feature_breadth_30d", 1.0)])).is_none());
        assert!(similar_usage(&origin, &p(&[("events_30d:login", 120.0)])).is_none(), "one shared measure");
        // ln(1 + 120) − ln(1 + 60) = 0.685 is within ln 2; − ln(1 + 59) = 0.701 is not.
        let twice = p(&[("a", 120.0), ("b", 120.0)]);
        assert!((similar_usage(&twice, &p(&[("a", 60.0), ("b", 60.0)])).unwrap() - (121f64 / 61.0).ln()).abs() < 1e-12);
        assert!(similar_usage(&twice, &p(&[("a", 59.0), ("b", 59.0)])).is_none());
    }

    #[test]
    fn alerts_read_due_readings_off_track_and_proxy_work() {
        let start = t("2026-01-01T00:00:00Z");
        let mut c = checkpoint(Direction::HigherIsBetter, 0.0, 100.0, None);
        c.due_date = NaiveDate::from_ymd_opt(2026, 12, 31);
        // Half way through the year at 30% of the way: behind by 20 points.
        c.readings = vec![reading(30.0, "2026-07-02T00:00:00Z")];
        assert!(c.off_track(start));
        c.readings.push(reading(45.0, "2026-07-02T12:00:00Z"));
        assert!(!c.off_track(start), "within 10 points of the line");
        assert_eq!(c.reading_due(), c.due_date);
        c.readings.push(reading(101.0, "2026-12-31T09:00:00Z"));
        assert_eq!(c.reading_due(), None);

        let mut d = deliverable(DeliverableStatus::InProgress, Party::Vendor, &[]);
        d.nature = Party::Customer;
        d.proxy =
            Some(Proxy { reason: ProxyReason::OneOffHump, end_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap() });
        assert!(!d.proxy_overdue(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()));
        assert!(d.proxy_overdue(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()));
        d.status = DeliverableStatus::Done;
        assert!(!d.proxy_overdue(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()));
        d.approver = "cfo".into();
        assert!(d.approver_differs());
    }
}
