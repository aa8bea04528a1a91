//! Success plans: templates, plans, readings, the result review, the
//! self-run summary, and success models with their spread.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use banso_events::{
    Tx,
    db::{Identified, RequestKey, Versioned, remembered},
};
use banso_kit::{Error, Result, auth::Caller, wire};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::App;
use crate::{
    domain::{
        cta::{self, CtaType, Priority, Reason, Status},
        plan::{
            self, Body, Checkpoint, Concluded, Conclusion, Deliverable, DevelopDirection, Facts, Plan, Reading,
            Refusal, Stage, Stakeholder, State,
        },
    },
    events,
    store::{
        self,
        plans::{Adoption, Model, PlanFilter, Template},
        projection::Projected,
    },
};

const OP_CREATE_TEMPLATE: &str = "CreateSuccessPlanTemplate";
const OP_CREATE_PLAN: &str = "CreateSuccessPlan";
const OP_CREATE_MODEL: &str = "CreateSuccessModel";

/// Checkpoints and deliverables a plan may hold (with a template's).
pub(crate) const MAX_CHECKPOINTS: usize = 20;
pub(crate) const MAX_DELIVERABLES: usize = 100;
pub(crate) const MAX_OBJECTIVES: usize = 20;
/// Readings a checkpoint (or sub-metric) keeps.
pub(crate) const MAX_READINGS: usize = 1_000;

impl Versioned for Plan {
    fn version(&self) -> i64 {
        self.version
    }

    fn advance(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.update_time = now;
    }
}

impl Identified for Plan {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

impl Identified for Template {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

impl Identified for Model {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

/// CreateSuccessPlan, parsed.
#[derive(Debug, Clone)]
pub(crate) struct CreatePlan {
    pub request_id: Option<String>,
    pub account_id: Uuid,
    /// Its display name may be empty with a template or model.
    pub body: Body,
    pub stage: Option<Stage>,
    pub template_id: Option<Uuid>,
    pub model_id: Option<Uuid>,
    pub follows_plan_id: Option<Uuid>,
}

/// UpdateSuccessPlan: each `Some` is a field of the mask.
#[derive(Debug, Clone, Default)]
pub(crate) struct PlanChanges {
    pub display_name: Option<String>,
    pub problem: Option<String>,
    pub theme_id: Option<Option<Uuid>>,
    pub objectives: Option<Vec<String>>,
    pub stage: Option<Stage>,
    pub stakeholders: Option<Vec<Stakeholder>>,
    pub checkpoints: Option<Vec<Checkpoint>>,
    pub deliverables: Option<Vec<Deliverable>>,
    pub investment: Option<f64>,
    pub benefit: Option<Option<f64>>,
    pub currency: Option<String>,
}

/// RecordCheckpointReading, parsed.
#[derive(Debug, Clone)]
pub(crate) struct RecordReading {
    pub plan_id: Uuid,
    pub checkpoint_id: Uuid,
    pub sub_metric_id: Option<Uuid>,
    pub value: f64,
    /// `None`: now.
    pub reading_time: Option<DateTime<Utc>>,
    pub note: String,
}

/// ConcludeResultReview, parsed.
#[derive(Debug, Clone)]
pub(crate) struct ConcludeReview {
    pub plan_id: Uuid,
    pub analysis: String,
    pub next_step: String,
    pub direction: Option<DevelopDirection>,
    pub etag: Option<i64>,
}

/// A plan's review as shown: the facts (stored once concluded, live
/// before), and the concluded parts.
pub(crate) struct Review {
    pub plan_id: Uuid,
    pub facts: Facts,
    pub concluded: Option<Concluded>,
}

/// A success model with its evidence and spread.
pub(crate) struct ModelView {
    pub model: Model,
    /// The first plan, then each adopting plan that met its target.
    pub evidence: Vec<Adoption>,
    pub proposed: u64,
    /// Proposed accounts that started a plan from it.
    pub proposed_adopted: u64,
    pub adopted: u64,
    pub succeeded: u64,
    pub segment_accounts: Option<u64>,
    /// Accounts in its segment with a success from it.
    pub successful_accounts: u64,
    /// ("YYYY-MM", successes up to its end).
    pub stock: Vec<(String, u64)>,
}

/// One proposal made (or that a dry run would make).
pub(crate) struct Proposed {
    pub account_id: Uuid,
    pub reason: &'static str,
    pub cta_id: Option<Uuid>,
}

/// A group's self-run counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SelfRunRow {
    pub key: String,
    pub display_name: String,
    pub plans: u32,
    pub customer_done: u32,
    pub done: u32,
}

impl SelfRunRow {
    fn add(&mut self, p: &Plan) {
        let (c, all) = plan::self_run(&p.body.deliverables);
        self.plans += 1;
        self.customer_done += c;
        self.done += all;
    }
}

/// What a playbook's start_success_plan action did.
pub(crate) enum Started {
    New(Plan),
    Already(Plan),
    Refused(String),
}

fn refusal(r: Refusal) -> Error {
    match r {
        Refusal::UnknownId(field, message) => Error::invalid(field, message),
        Refusal::HasReadings(message) => Error::FailedPrecondition { reason: "CHECKPOINT_HAS_READINGS", message },
    }
}

fn concluded_refuses(p: &Plan) -> Result<()> {
    if p.state == State::Concluded {
        return Err(Error::FailedPrecondition {
            reason: "PLAN_CONCLUDED",
            message: format!(
                "success plan {} is concluded and no longer changes; start its next cycle as a new plan",
                p.id
            ),
        });
    }
    Ok(())
}

fn limits(body: &Body) -> Result<()> {
    let mut v = banso_kit::Violations::new();
    v.check(
        body.checkpoints.len() > MAX_CHECKPOINTS,
        "plan.checkpoints",
        format_args!("at most {MAX_CHECKPOINTS} (with the template's), got {}", body.checkpoints.len()),
    );
    v.check(
        body.deliverables.len() > MAX_DELIVERABLES,
        "plan.deliverables",
        format_args!("at most {MAX_DELIVERABLES} (with the template's), got {}", body.deliverables.len()),
    );
    v.check(
        body.objectives.len() > MAX_OBJECTIVES,
        "plan.objectives",
        format_args!("at most {MAX_OBJECTIVES} (with the template's), got {}", body.objectives.len()),
    );
    v.finish()
}

/// A new plan for `account` from a template's parts and the caller's.
fn new_plan(
    account: Uuid,
    mut body: Body,
    template: Option<&Template>,
    stage: Option<Stage>,
    by: &str,
    now: DateTime<Utc>,
) -> Plan {
    plan::new_ids(&mut body);
    if let Some(t) = template {
        let (checkpoints, deliverables) = plan::fresh(t.body.checkpoints.clone(), t.body.deliverables.clone());
        if body.display_name.is_empty() {
            body.display_name = t.body.display_name.clone();
        }
        if body.problem.is_empty() {
            body.problem = t.body.problem.clone();
        }
        body.objectives = t.body.objectives.iter().cloned().chain(body.objectives).collect();
        body.checkpoints = checkpoints.into_iter().chain(body.checkpoints).collect();
        body.deliverables = deliverables.into_iter().chain(body.deliverables).collect();
    }
    Plan {
        id: Uuid::now_v7(),
        account_id: account,
        body,
        stage: stage.unwrap_or(Stage::TrustAndStructure),
        stage_since: now,
        state: State::Active,
        template_id: template.map(|t| t.id),
        model_id: None,
        follows_plan_id: None,
        playbook_id: None,
        created_by: by.to_string(),
        review: None,
        create_time: now,
        update_time: now,
        version: 1,
    }
}

/// Inserts a plan with its PlanCreated; `false` if the account has an
/// active plan from its template already.
async fn insert_plan(tx: &Tx, p: &Plan) -> Result<bool> {
    if !store::plans::insert(tx.conn(), tx.tenant(), p).await? {
        return Ok(false);
    }
    tx.emit(events::plan_created(p)).await?;
    Ok(true)
}

/// Starts a plan from a template in the use case's transaction (a
/// playbook's action): an account with an active plan from it keeps that one.
pub(crate) async fn start(tx: &Tx, template: Uuid, account: Uuid, playbook: Uuid) -> Result<Started> {
    let (conn, tenant) = (tx.conn(), tx.tenant());
    let Some(t) = store::plans::find_template(conn, tenant, template).await? else {
        return Ok(Started::Refused(format!("success plan template {template} does not exist")));
    };
    if let Some(p) = store::plans::active_from_template(conn, tenant, template, account).await? {
        return Ok(Started::Already(p));
    }
    let mut p = new_plan(account, empty_body(), Some(&t), None, &format!("playbook:{playbook}"), wire::now());
    p.playbook_id = Some(playbook);
    if !insert_plan(tx, &p).await? {
        return Err(Error::Aborted {
            reason: "CONCURRENT_UPDATE",
            message: format!("account {account} got a plan from template {template} while a playbook started one"),
        });
    }
    Ok(Started::New(p))
}

/// Proposes a model to one account in the use case's transaction: a CTA
/// for its owner and the proposal, once per model and account. Returns the
/// CTA, or `None` if the account had the proposal already.
async fn propose(
    tx: &Tx,
    model: &Model,
    account: &Projected,
    reason: &str,
    by: &str,
    playbook: Option<Uuid>,
    due_date: Option<chrono::NaiveDate>,
) -> Result<Option<Uuid>> {
    let now = wire::now();
    let c = cta::Cta {
        id: Uuid::now_v7(),
        account_id: account.account.id,
        // Not the playbook's own CTA (that key keeps one open CTA per
        // playbook and account, which an open_cta action of the same
        // playbook, or a second model, would collide with): the reason
        // names the playbook.
        playbook_id: None,
        playbook_version: 0,
        cta_type: CtaType::Opportunity,
        priority: Priority::Medium,
        status: Status::Open,
        reasons: vec![Reason {
            time: now,
            text: format!("success model {} proposed {by} ({reason})", model.display_name),
            playbook_id: playbook,
            trigger_event_id: None,
        }],
        title: format!("Propose success model: {}", model.display_name),
        description: format!(
            "A similar customer succeeded with this approach. Problem: {}\nStart a plan from success model {}.",
            model.problem, model.id
        ),
        owner_id: account.account.owner_id.clone(),
        due_date,
        tasks: Vec::new(),
        snooze_until: None,
        outcome: None,
        close_note: String::new(),
        create_time: now,
        update_time: now,
        close_time: None,
        version: 1,
    };
    if !store::plans::insert_proposal(tx.conn(), tx.tenant(), model.id, account.account.id, reason, Some(c.id), now)
        .await?
    {
        return Ok(None);
    }
    store::ctas::insert(tx.conn(), tx.tenant(), &c).await?;
    tx.emit(events::cta_opened(&c)).await?;
    Ok(Some(c.id))
}

/// What a playbook's propose_success_model action did.
pub(crate) enum Offered {
    New(Uuid),
    Refused(String),
}

/// Proposes a model to the account a playbook fired for (the playbook's
/// audience and condition chose it): never to the model's own account, an
/// account with a plan from it, or one it was proposed to.
pub(crate) async fn offer(
    tx: &Tx,
    model_id: Uuid,
    account: &Projected,
    playbook: Uuid,
    today: chrono::NaiveDate,
) -> Result<Offered> {
    let (conn, tenant) = (tx.conn(), tx.tenant());
    let Some(model) = store::plans::find_model(conn, tenant, model_id).await? else {
        return Ok(Offered::Refused(format!("success model {model_id} does not exist")));
    };
    let id = account.account.id;
    if store::plans::find(conn, tenant, model.plan_id).await?.is_some_and(|p| p.account_id == id) {
        return Ok(Offered::Refused(format!(
            "success model {} comes from this account's own plan",
            model.display_name
        )));
    }
    if store::plans::adoptions(conn, tenant, model.id).await?.iter().any(|a| a.account_id == id) {
        return Ok(Offered::Refused(format!(
            "the account already has a plan from success model {}",
            model.display_name
        )));
    }
    let due = today.checked_add_days(chrono::Days::new(14));
    match propose(tx, &model, account, "playbook", &format!("by playbook {playbook}"), Some(playbook), due).await? {
        Some(cta) => Ok(Offered::New(cta)),
        None => {
            Ok(Offered::Refused(format!("success model {} was proposed to the account already", model.display_name)))
        }
    }
}

/// An account's usage profile: the values of its latest score's measures.
fn usage_of(p: Option<&Projected>) -> BTreeMap<String, f64> {
    p.and_then(|p| p.health.as_ref())
        .map(|h| h.measures.iter().filter_map(|(m, r)| r.value.map(|v| (m.clone(), v))).collect())
        .unwrap_or_default()
}

fn empty_body() -> Body {
    Body {
        display_name: String::new(),
        problem: String::new(),
        theme_id: None,
        objectives: Vec::new(),
        stakeholders: Vec::new(),
        checkpoints: Vec::new(),
        deliverables: Vec::new(),
        investment: 0.0,
        benefit: None,
        currency: String::new(),
    }
}

impl App {
    /// The tenant's execution threshold, as a share.
    async fn threshold(&self, tenant: &str) -> Result<f64> {
        let s = store::tenants::get(self.db.conn(), tenant).await?;
        Ok(f64::from(s.review_execution_threshold_percent) / 100.0)
    }

    /// Stakeholders must be contacts of the plan's account.
    async fn check_stakeholders(&self, tenant: &str, account: Uuid, stakeholders: &[Stakeholder]) -> Result<()> {
        if stakeholders.is_empty() {
            return Ok(());
        }
        let known: BTreeSet<Uuid> =
            store::outreach::contacts_of(self.db.conn(), tenant, account).await?.into_iter().map(|c| c.id).collect();
        let mut v = banso_kit::Violations::new();
        for (i, s) in stakeholders.iter().enumerate() {
            v.check(
                !known.contains(&s.contact_id),
                format!("plan.stakeholders[{i}].contact_id"),
                format_args!("{} is not a contact of account {account}", s.contact_id),
            );
        }
        v.finish()
    }

    pub(crate) async fn create_template(
        &self,
        caller: &Caller,
        request_id: Option<String>,
        body: Body,
    ) -> Result<Template> {
        let key = request_id.as_deref().map(|request_id| RequestKey { operation: OP_CREATE_TEMPLATE, request_id });
        let scope = self.scope(&caller.tenant_id);
        self.db
            .create_once(
                &caller.tenant_id,
                key,
                async move |id| store::plans::get_template(&scope.conn, &scope.tenant, remembered(id)?).await,
                async move |tx| {
                    let mut body = body;
                    let (checkpoints, deliverables) = plan::fresh(body.checkpoints, body.deliverables);
                    body.checkpoints = checkpoints;
                    body.deliverables = deliverables;
                    let t = Template { id: Uuid::now_v7(), body, create_time: wire::now() };
                    store::plans::insert_template(tx.conn(), tx.tenant(), &t).await?;
                    Ok(t)
                },
            )
            .await
    }

    pub(crate) async fn get_template(&self, caller: &Caller, id: Uuid) -> Result<Template> {
        store::plans::get_template(self.db.conn(), &caller.tenant_id, id).await
    }

    pub(crate) async fn list_templates(
        &self,
        caller: &Caller,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Template>> {
        store::plans::templates(self.db.conn(), &caller.tenant_id, after, limit).await
    }

    pub(crate) async fn create_plan(&self, caller: &Caller, cmd: CreatePlan) -> Result<Plan> {
        let tenant = caller.tenant_id.as_str();
        let conn = self.db.conn();
        let key = cmd.request_id.clone();
        let key = key.as_deref().map(|request_id| RequestKey { operation: OP_CREATE_PLAN, request_id });
        // A retry with the same key answers before the checks below, which
        // the first attempt's own plan could now fail (its active template).
        if let Some(k) = key
            && let Some(id) = banso_kit::idempotency::lookup(conn, tenant, k.operation, k.request_id).await?
        {
            return store::plans::get(conn, tenant, remembered(&id)?).await;
        }
        if store::projection::get(conn, tenant, cmd.account_id).await?.is_none() {
            return Err(Error::not_found("account", cmd.account_id.to_string()));
        }
        let model = match cmd.model_id {
            Some(m) => Some(store::plans::get_model(conn, tenant, m).await?),
            None => None,
        };
        let template_id = model.as_ref().map(|m| m.template_id).or(cmd.template_id);
        let template = match template_id {
            Some(t) => Some(store::plans::get_template(conn, tenant, t).await?),
            None => None,
        };
        if let Some(f) = cmd.follows_plan_id {
            let previous = store::plans::get(conn, tenant, f).await?;
            if previous.account_id != cmd.account_id {
                return Err(Error::invalid(
                    "plan.follows_plan_id",
                    format!("plan {f} is account {}'s, not account {}'s", previous.account_id, cmd.account_id),
                ));
            }
        }
        self.check_stakeholders(tenant, cmd.account_id, &cmd.body.stakeholders).await?;
        let mut p = new_plan(cmd.account_id, cmd.body, template.as_ref(), cmd.stage, &caller.subject, wire::now());
        p.model_id = model.as_ref().map(|m| m.id);
        p.follows_plan_id = cmd.follows_plan_id;
        limits(&p.body)?;
        let scope = self.scope(tenant);
        self.db
            .create_once(
                tenant,
                key,
                async move |id| store::plans::get(&scope.conn, &scope.tenant, remembered(id)?).await,
                async move |tx| {
                    if insert_plan(tx, &p).await? {
                        return Ok(p);
                    }
                    let other = match p.template_id {
                        Some(t) => store::plans::active_from_template(tx.conn(), tx.tenant(), t, p.account_id).await?,
                        None => None,
                    };
                    Err(Error::AlreadyExists(format!(
                        "account {} already has active success plan {} from template {}",
                        p.account_id,
                        other.map(|o| o.id.to_string()).unwrap_or_default(),
                        p.template_id.map(|t| t.to_string()).unwrap_or_default(),
                    )))
                },
            )
            .await
    }

    pub(crate) async fn get_plan(&self, caller: &Caller, id: Uuid) -> Result<Plan> {
        store::plans::get(self.db.conn(), &caller.tenant_id, id).await
    }

    pub(crate) async fn list_plans(
        &self,
        caller: &Caller,
        filter: PlanFilter,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Plan>> {
        store::plans::list(self.db.conn(), &caller.tenant_id, &filter, before, limit).await
    }

    pub(crate) async fn update_plan(
        &self,
        caller: &Caller,
        id: Uuid,
        etag: Option<i64>,
        c: PlanChanges,
    ) -> Result<Plan> {
        let tenant = caller.tenant_id.as_str();
        if let Some(st) = &c.stakeholders {
            let account = store::plans::get(self.db.conn(), tenant, id).await?.account_id;
            self.check_stakeholders(tenant, account, st).await?;
        }
        let s = self.scope(tenant);
        self.db
            .update_versioned(
                tenant,
                &format!("success plan {id}"),
                etag,
                async move || store::plans::get(&s.conn, &s.tenant, id).await,
                |p| {
                    concluded_refuses(p)?;
                    let b = &mut p.body;
                    if let Some(x) = &c.display_name {
                        b.display_name = x.clone();
                    }
                    if let Some(x) = &c.problem {
                        b.problem = x.clone();
                    }
                    if let Some(x) = c.theme_id {
                        b.theme_id = x;
                    }
                    if let Some(x) = &c.objectives {
                        b.objectives = x.clone();
                    }
                    if let Some(x) = &c.stakeholders {
                        b.stakeholders = x.clone();
                    }
                    if let Some(x) = &c.checkpoints {
                        b.checkpoints = plan::merge_checkpoints(&b.checkpoints, x.clone()).map_err(refusal)?;
                    }
                    if let Some(x) = &c.deliverables {
                        b.deliverables = plan::merge_deliverables(&b.deliverables, x.clone()).map_err(refusal)?;
                    }
                    if let Some(x) = c.investment {
                        b.investment = x;
                    }
                    if let Some(x) = c.benefit {
                        b.benefit = x;
                    }
                    if let Some(x) = &c.currency {
                        b.currency = x.clone();
                    }
                    if let Some(st) = c.stage
                        && st != p.stage
                    {
                        p.stage = st;
                        p.stage_since = wire::now();
                    }
                    Ok(())
                },
                async |tx, current, next| store::plans::update(tx.conn(), tx.tenant(), current, next).await,
            )
            .await
    }

    pub(crate) async fn record_reading(&self, caller: &Caller, cmd: RecordReading) -> Result<Plan> {
        let s = self.scope(&caller.tenant_id);
        let now = wire::now();
        let reading = Reading {
            value: cmd.value,
            reading_time: cmd.reading_time.unwrap_or(now),
            recorded_by: caller.subject.clone(),
            record_time: now,
            note: cmd.note.clone(),
        };
        let plan_id = cmd.plan_id;
        let checkpoint = cmd.checkpoint_id;
        let sub = cmd.sub_metric_id;
        let recorded = reading.clone();
        self.db
            .update_versioned(
                &caller.tenant_id,
                &format!("success plan {plan_id}"),
                None,
                async move || store::plans::get(&s.conn, &s.tenant, plan_id).await,
                |p| {
                    concluded_refuses(p)?;
                    if let Some(why) = p.refuses_reading_at(reading.reading_time, now) {
                        return Err(Error::invalid("reading.reading_time", why));
                    }
                    let c = p
                        .body
                        .checkpoints
                        .iter_mut()
                        .find(|c| c.id == checkpoint)
                        .ok_or_else(|| Error::not_found("checkpoint", checkpoint.to_string()))?;
                    let readings = match sub {
                        None => &mut c.readings,
                        Some(sid) => {
                            &mut c
                                .sub_metrics
                                .iter_mut()
                                .find(|x| x.id == sid)
                                .ok_or_else(|| Error::not_found("sub-metric", sid.to_string()))?
                                .readings
                        }
                    };
                    if readings.len() >= MAX_READINGS {
                        return Err(Error::FailedPrecondition {
                            reason: "TOO_MANY_READINGS",
                            message: format!(
                                "checkpoint {checkpoint} holds {MAX_READINGS} readings, the most it keeps"
                            ),
                        });
                    }
                    let at = readings.partition_point(|r| r.reading_time <= reading.reading_time);
                    readings.insert(at, reading.clone());
                    Ok(())
                },
                async move |tx, current, next| {
                    if !store::plans::update(tx.conn(), tx.tenant(), current, next).await? {
                        return Ok(false);
                    }
                    tx.emit(events::checkpoint_recorded(next, checkpoint, sub, &recorded)).await?;
                    Ok(true)
                },
            )
            .await
    }

    pub(crate) async fn get_review(&self, caller: &Caller, plan_id: Uuid) -> Result<Review> {
        let p = store::plans::get(self.db.conn(), &caller.tenant_id, plan_id).await?;
        Ok(match p.review {
            Some(c) => Review { plan_id, facts: c.facts.clone(), concluded: Some(c) },
            None => Review {
                plan_id,
                facts: plan::review(&p.body, self.threshold(&caller.tenant_id).await?),
                concluded: None,
            },
        })
    }

    pub(crate) async fn conclude_review(&self, caller: &Caller, cmd: ConcludeReview) -> Result<Plan> {
        let threshold = self.threshold(&caller.tenant_id).await?;
        let s = self.scope(&caller.tenant_id);
        let plan_id = cmd.plan_id;
        let by = caller.subject.clone();
        self.db
            .update_versioned(
                &caller.tenant_id,
                &format!("success plan {plan_id}"),
                cmd.etag,
                async move || store::plans::get(&s.conn, &s.tenant, plan_id).await,
                |p| {
                    concluded_refuses(p)?;
                    let facts = plan::review(&p.body, threshold);
                    let Some(conclusion) = facts.conclusion else {
                        return Err(Error::FailedPrecondition {
                            reason: "REVIEW_FACTS_MISSING",
                            message: format!(
                                "the facts come before the analysis; record them first: {}",
                                facts.missing.join("; ")
                            ),
                        });
                    };
                    match (conclusion, cmd.direction) {
                        (Conclusion::Develop, None) => {
                            return Err(Error::invalid(
                                "direction",
                                "is required: the target is met, so the review records which way the next cycle develops",
                            ));
                        }
                        (c, Some(d)) if c != Conclusion::Develop => {
                            return Err(Error::invalid(
                                "direction",
                                format!(
                                    "{} is only for a review that met its target; this one concludes {}",
                                    d.as_str(),
                                    c.as_str()
                                ),
                            ));
                        }
                        _ => {}
                    }
                    let now = wire::now();
                    p.review = Some(Concluded {
                        facts,
                        analysis: cmd.analysis.clone(),
                        next_step: cmd.next_step.clone(),
                        direction: cmd.direction,
                        conclude_time: now,
                        concluded_by: by.clone(),
                    });
                    p.state = State::Concluded;
                    if p.stage != Stage::ResultReview {
                        p.stage = Stage::ResultReview;
                        p.stage_since = now;
                    }
                    Ok(())
                },
                async |tx, current, next| {
                    if !store::plans::update(tx.conn(), tx.tenant(), current, next).await? {
                        return Ok(false);
                    }
                    tx.emit(events::review_concluded(next)).await?;
                    Ok(true)
                },
            )
            .await
    }

    /// Self-run counts per account (`by_segment` false) or per segment, and
    /// over every plan.
    pub(crate) async fn summarize_self_run(
        &self,
        caller: &Caller,
        by_segment: bool,
    ) -> Result<(Vec<SelfRunRow>, SelfRunRow)> {
        let tenant = caller.tenant_id.as_str();
        let conn = self.db.conn();
        let mut per_account: BTreeMap<Uuid, Vec<Plan>> = BTreeMap::new();
        let mut after = None;
        loop {
            let page = store::plans::page(conn, tenant, after, 500).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for p in page {
                per_account.entry(p.account_id).or_default().push(p);
            }
        }
        let mut total = SelfRunRow { key: String::new(), display_name: "all plans".into(), ..Default::default() };
        let mut rows: BTreeMap<String, SelfRunRow> = BTreeMap::new();
        let settings = store::tenants::get(conn, tenant).await?;
        let segments = if by_segment { Some(self.engine.segments(conn, tenant).await?) } else { None };
        let now = wire::now();
        for (account, plans) in &per_account {
            for p in plans {
                total.add(p);
            }
            let projected = store::projection::get(conn, tenant, *account).await?;
            let groups: Vec<(String, String)> = match (&segments, &projected) {
                (None, _) => {
                    vec![(account.to_string(), projected.as_ref().map(|p| p.account.name.clone()).unwrap_or_default())]
                }
                (Some(segs), Some(p)) => segs
                    .of(p, settings.tz(), now)
                    .into_iter()
                    .map(|s| (s.id.to_string(), s.display_name.clone()))
                    .collect(),
                // A deleted account is in no segment.
                (Some(_), None) => vec![],
            };
            for (key, name) in groups {
                let row = rows.entry(key.clone()).or_insert_with(|| SelfRunRow {
                    key,
                    display_name: name,
                    ..Default::default()
                });
                for p in plans {
                    row.add(p);
                }
            }
        }
        Ok((rows.into_values().collect(), total))
    }

    pub(crate) async fn create_model(
        &self,
        caller: &Caller,
        request_id: Option<String>,
        plan_id: Uuid,
        display_name: String,
        segment_id: Option<Uuid>,
    ) -> Result<ModelView> {
        let tenant = caller.tenant_id.as_str();
        let conn = self.db.conn();
        let key = request_id.as_deref().map(|request_id| RequestKey { operation: OP_CREATE_MODEL, request_id });
        if let Some(k) = key
            && let Some(id) = banso_kit::idempotency::lookup(conn, tenant, k.operation, k.request_id).await?
        {
            return self.get_model(caller, remembered(&id)?).await;
        }
        let p = store::plans::get(conn, tenant, plan_id).await?;
        let Some(review) = &p.review else {
            return Err(Error::FailedPrecondition {
                reason: "PLAN_NOT_CONCLUDED",
                message: format!("success plan {plan_id} has no concluded review: only a proven success is a model"),
            });
        };
        if !review.facts.target_met {
            return Err(Error::FailedPrecondition {
                reason: "TARGET_NOT_MET",
                message: format!("success plan {plan_id} did not meet its target: only a proven success is a model"),
            });
        }
        match review.facts.roi.roi {
            Some(r) if r > 0.0 => {}
            other => {
                return Err(Error::FailedPrecondition {
                    reason: "ROI_NOT_POSITIVE",
                    message: format!(
                        "success plan {plan_id}'s ROI for the customer is {}: only spread what truly paid off for the customer",
                        other.map_or_else(
                            || "unknown (no benefit or no investment recorded)".to_string(),
                            |r| format!("{r:.3}")
                        )
                    ),
                });
            }
        }
        if let Some(seg) = segment_id
            && !store::projection::segments(conn, tenant).await?.iter().any(|s| s.id == seg)
        {
            return Err(Error::not_found("segment", seg.to_string()));
        }
        let usage = usage_of(store::projection::get(conn, tenant, p.account_id).await?.as_ref());
        let scope = self.scope(tenant);
        let created = self
            .db
            .create_once(
                tenant,
                key,
                async move |id| store::plans::get_model(&scope.conn, &scope.tenant, remembered(id)?).await,
                async move |tx| {
                    let (conn, tenant) = (tx.conn(), tx.tenant());
                    // The approach: the plan's template, or one made from the plan.
                    let template_id = match p.template_id {
                        Some(t) => t,
                        None => {
                            let (mut checkpoints, deliverables) =
                                plan::fresh(p.body.checkpoints.clone(), p.body.deliverables.clone());
                            // Each adopting customer agrees its own numbers.
                            for c in &mut checkpoints {
                                c.agreed = None;
                                c.due_date = None;
                                for s in &mut c.sub_metrics {
                                    s.agreed = None;
                                }
                            }
                            let t = Template {
                                id: Uuid::now_v7(),
                                body: Body {
                                    stakeholders: Vec::new(),
                                    checkpoints,
                                    deliverables,
                                    investment: 0.0,
                                    benefit: None,
                                    ..p.body.clone()
                                },
                                create_time: wire::now(),
                            };
                            store::plans::insert_template(conn, tenant, &t).await?;
                            t.id
                        }
                    };
                    let mut checkpoints = p.body.checkpoints.clone();
                    for c in &mut checkpoints {
                        c.readings.clear();
                        for s in &mut c.sub_metrics {
                            s.readings.clear();
                        }
                    }
                    let m = Model {
                        usage: usage.clone(),
                        id: Uuid::now_v7(),
                        plan_id: p.id,
                        template_id,
                        segment_id,
                        theme_id: p.body.theme_id,
                        display_name,
                        problem: p.body.problem.clone(),
                        checkpoints,
                        create_time: wire::now(),
                    };
                    if !store::plans::insert_model(conn, tenant, &m).await? {
                        let other = store::plans::model_of_plan(conn, tenant, p.id).await?;
                        return Err(Error::AlreadyExists(format!(
                            "success plan {} already is success model {}",
                            p.id,
                            other.map(|o| o.id.to_string()).unwrap_or_default()
                        )));
                    }
                    Ok(m)
                },
            )
            .await?;
        self.model_view(tenant, created, &mut HashMap::new()).await
    }

    pub(crate) async fn get_model(&self, caller: &Caller, id: Uuid) -> Result<ModelView> {
        let m = store::plans::get_model(self.db.conn(), &caller.tenant_id, id).await?;
        self.model_view(&caller.tenant_id, m, &mut HashMap::new()).await
    }

    pub(crate) async fn list_models(&self, caller: &Caller, after: Option<Uuid>, limit: u64) -> Result<Vec<ModelView>> {
        let mut out = Vec::new();
        // Models of one segment share its members, read once.
        let mut members = HashMap::new();
        for m in store::plans::models(self.db.conn(), &caller.tenant_id, after, limit).await? {
            out.push(self.model_view(&caller.tenant_id, m, &mut members).await?);
        }
        Ok(out)
    }

    /// The accounts of the tenant in a segment now.
    async fn segment_members(&self, tenant: &str, segment: Uuid) -> Result<Vec<Uuid>> {
        let conn = self.db.conn();
        let segments = self.engine.segments(conn, tenant).await?;
        let tz = store::tenants::get(conn, tenant).await?.tz();
        let now = wire::now();
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = store::projection::page(conn, tenant, after, 1_000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.account.id);
            out.extend(page.iter().filter(|p| segments.has(segment, p, tz, now)).map(|p| p.account.id));
        }
        Ok(out)
    }

    async fn model_view(
        &self,
        tenant: &str,
        model: Model,
        members: &mut HashMap<Uuid, BTreeSet<Uuid>>,
    ) -> Result<ModelView> {
        let conn = self.db.conn();
        let origin = store::plans::find(conn, tenant, model.plan_id).await?;
        let adoptions = store::plans::adoptions(conn, tenant, model.id).await?;
        let mut evidence = Vec::new();
        if let Some(o) = &origin {
            let c = o.review.as_ref();
            evidence.push(Adoption {
                plan_id: o.id,
                account_id: o.account_id,
                target_met: c.map(|c| c.facts.target_met),
                roi: c.and_then(|c| c.facts.roi.roi),
                conclude_time: c.map(|c| c.conclude_time),
            });
        }
        let succeeded: Vec<Adoption> = adoptions.iter().filter(|a| a.target_met == Some(true)).copied().collect();
        evidence.extend(succeeded.iter().copied());
        let successful: BTreeSet<Uuid> = evidence.iter().map(|e| e.account_id).collect();
        let (segment_accounts, successful_accounts) = match model.segment_id {
            Some(s) => {
                let m = match members.entry(s) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(self.segment_members(tenant, s).await?.into_iter().collect())
                    }
                };
                (Some(m.len() as u64), m.intersection(&successful).count() as u64)
            }
            None => (None, successful.len() as u64),
        };
        let proposed: BTreeSet<Uuid> =
            store::plans::proposed_accounts(conn, tenant, model.id).await?.into_iter().collect();
        let adopters: BTreeSet<Uuid> = adoptions.iter().map(|a| a.account_id).collect();
        let tz = store::tenants::get(conn, tenant).await?.tz();
        let mut months: BTreeMap<String, u64> = BTreeMap::new();
        for at in evidence.iter().filter_map(|e| e.conclude_time) {
            *months.entry(at.with_timezone(&tz).format("%Y-%m").to_string()).or_default() += 1;
        }
        let mut running = 0;
        let stock = months
            .into_iter()
            .map(|(m, n)| {
                running += n;
                (m, running)
            })
            .collect();
        Ok(ModelView {
            proposed: proposed.len() as u64,
            proposed_adopted: proposed.intersection(&adopters).count() as u64,
            adopted: adoptions.len() as u64,
            succeeded: succeeded.len() as u64,
            model,
            evidence,
            segment_accounts,
            successful_accounts,
            stock,
        })
    }

    /// Proposes a model to similar accounts: in its segment, or with a plan
    /// on its theme; never its own account, an account with a plan from it,
    /// or one it was proposed to.
    pub(crate) async fn propose_model(
        &self,
        caller: &Caller,
        id: Uuid,
        dry_run: bool,
        max: usize,
        due_in_days: u32,
    ) -> Result<Vec<Proposed>> {
        let tenant = caller.tenant_id.as_str();
        let conn = self.db.conn();
        let model = store::plans::get_model(conn, tenant, id).await?;
        if model.segment_id.is_none() && model.theme_id.is_none() && model.usage.len() < plan::USAGE_SHARED_MEASURES {
            return Err(Error::FailedPrecondition {
                reason: "NO_SIMILARITY",
                message: format!(
                    "success model {id} has neither a segment, a problem theme nor a usage profile to find similar accounts by"
                ),
            });
        }
        let mut excluded: BTreeSet<Uuid> =
            store::plans::proposed_accounts(conn, tenant, id).await?.into_iter().collect();
        excluded.extend(store::plans::adoptions(conn, tenant, id).await?.into_iter().map(|a| a.account_id));
        if let Some(o) = store::plans::find(conn, tenant, model.plan_id).await? {
            excluded.insert(o.account_id);
        }
        let mut candidates: Vec<(Uuid, &'static str)> = Vec::new();
        if let Some(seg) = model.segment_id {
            candidates.extend(self.segment_members(tenant, seg).await?.into_iter().map(|a| (a, "segment")));
        }
        if let Some(theme) = model.theme_id {
            let on_theme = store::plans::themes(conn, tenant).await?;
            candidates.extend(on_theme.into_iter().filter(|(_, t)| *t == Some(theme)).map(|(a, _)| (a, "theme")));
        }
        if model.usage.len() >= plan::USAGE_SHARED_MEASURES {
            // Accounts used like the first plan's was when it succeeded.
            let mut by_usage: Vec<(f64, Uuid)> = Vec::new();
            let mut after = None;
            loop {
                let page = store::projection::page(conn, tenant, after, 1_000).await?;
                let Some(last) = page.last() else { break };
                after = Some(last.account.id);
                for p in &page {
                    if let Some(d) = plan::similar_usage(&model.usage, &usage_of(Some(p))) {
                        by_usage.push((d, p.account.id));
                    }
                }
            }
            // The closest first.
            by_usage.sort_by(|a, b| a.0.total_cmp(&b.0));
            candidates.extend(by_usage.into_iter().map(|(_, a)| (a, "usage")));
        }
        let mut seen = BTreeSet::new();
        candidates.retain(|(a, _)| !excluded.contains(a) && seen.insert(*a));
        candidates.truncate(max);
        if dry_run {
            return Ok(candidates
                .into_iter()
                .map(|(a, r)| Proposed { account_id: a, reason: r, cta_id: None })
                .collect());
        }
        let mut accounts = HashMap::new();
        for (a, _) in &candidates {
            if let Some(p) = store::projection::get(conn, tenant, *a).await? {
                accounts.insert(*a, p);
            }
        }
        let tz = store::tenants::get(conn, tenant).await?.tz();
        let by = caller.subject.clone();
        let made = self
            .db
            .write(tenant, async |tx| {
                let today = wire::now().with_timezone(&tz).date_naive();
                let mut out = Vec::new();
                for (a, reason) in &candidates {
                    let Some(p) = accounts.get(a) else { continue };
                    let who = format!("by {by}");
                    if let Some(c) = propose(
                        tx,
                        &model,
                        p,
                        reason,
                        &who,
                        None,
                        today.checked_add_days(chrono::Days::new(u64::from(due_in_days))),
                    )
                    .await?
                    {
                        out.push(Proposed { account_id: *a, reason, cta_id: Some(c) });
                    }
                }
                Ok(out)
            })
            .await?;
        Ok(made)
    }
}
