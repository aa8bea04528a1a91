//! Success plans, their templates, success models and their proposals.
//! A plan is one row: what a person edits (with the readings) and the
//! concluded review as JSON, beside the columns lists and schedule
//! triggers filter by (state, model, the alerts of domain::plan::Alerts).

use banso_kit::{Error, Result, db};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
    sea_query::OnConflict,
};
use uuid::Uuid;

use super::{
    corrupt,
    entities::{success_model as sm, success_model_proposal as pr, success_plan as sp, success_plan_template as st},
    from_json, to_json,
};
use crate::domain::{
    engine::PlanCalendar,
    plan::{Body, Checkpoint, Plan, Stage, State},
};

/// A plan template: a name and the parts a plan starts with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    pub id: Uuid,
    pub body: Body,
    pub create_time: DateTime<Utc>,
}

/// A success model as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Model {
    pub id: Uuid,
    pub plan_id: Uuid,
    pub template_id: Uuid,
    pub segment_id: Option<Uuid>,
    pub theme_id: Option<Uuid>,
    pub display_name: String,
    pub problem: String,
    pub checkpoints: Vec<Checkpoint>,
    /// The first plan's account's usage (measure → value) when the model
    /// was saved: "similar usage" is measured against it.
    pub usage: std::collections::BTreeMap<String, f64>,
    pub create_time: DateTime<Utc>,
}

/// The key that keeps one active plan per template and account.
pub(crate) fn active_key(template: Uuid, account: Uuid) -> String {
    format!("{template}/{account}")
}

fn template(m: st::Model) -> Result<Template> {
    Ok(Template { id: m.id, body: from_json("success plan template", &m.body)?, create_time: m.create_time })
}

pub(crate) async fn insert_template(conn: &impl ConnectionTrait, tenant: &str, t: &Template) -> Result<()> {
    let row = st::ActiveModel {
        id: Set(t.id),
        tenant_id: Set(tenant.to_string()),
        display_name: Set(t.body.display_name.clone()),
        body: Set(to_json("success plan template", &t.body)?),
        create_time: Set(t.create_time),
    };
    st::Entity::insert(row).exec_without_returning(conn).await?;
    Ok(())
}

pub(crate) async fn find_template(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<Template>> {
    st::Entity::find_by_id(id).filter(st::Column::TenantId.eq(tenant)).one(conn).await?.map(template).transpose()
}

pub(crate) async fn get_template(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Template> {
    find_template(conn, tenant, id).await?.ok_or_else(|| Error::not_found("success plan template", id.to_string()))
}

pub(crate) async fn templates(
    conn: &impl ConnectionTrait,
    tenant: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Template>> {
    let mut q = st::Entity::find().filter(st::Column::TenantId.eq(tenant));
    if let Some(a) = after {
        q = q.filter(st::Column::Id.gt(a));
    }
    q.order_by(st::Column::Id, Order::Asc).limit(limit).all(conn).await?.into_iter().map(template).collect()
}

fn plan(m: sp::Model) -> Result<Plan> {
    Ok(Plan {
        id: m.id,
        account_id: m.account_id,
        body: from_json("success plan", &m.body)?,
        stage: Stage::parse(&m.stage).ok_or_else(|| corrupt("success plan", format!("stage {}", m.stage)))?,
        stage_since: m.stage_since,
        state: State::parse(&m.state).ok_or_else(|| corrupt("success plan", format!("state {}", m.state)))?,
        template_id: m.template_id,
        model_id: m.model_id,
        follows_plan_id: m.follows_plan_id,
        playbook_id: m.playbook_id,
        created_by: m.created_by,
        review: m.review.as_deref().map(|r| from_json("success plan review", r)).transpose()?,
        create_time: m.create_time,
        update_time: m.update_time,
        version: m.version,
    })
}

fn plan_row(tenant: &str, x: &Plan) -> Result<sp::ActiveModel> {
    let alerts = x.alerts();
    let active = x.state == State::Active;
    Ok(sp::ActiveModel {
        id: Set(x.id),
        tenant_id: Set(tenant.to_string()),
        account_id: Set(x.account_id),
        state: Set(x.state.as_str().to_string()),
        stage: Set(x.stage.as_str().to_string()),
        stage_since: Set(x.stage_since),
        template_id: Set(x.template_id),
        model_id: Set(x.model_id),
        follows_plan_id: Set(x.follows_plan_id),
        playbook_id: Set(x.playbook_id),
        created_by: Set(x.created_by.clone()),
        active_key: Set(x.template_id.filter(|_| active).map(|t| active_key(t, x.account_id))),
        body: Set(to_json("success plan", &x.body)?),
        review: Set(x.review.as_ref().map(|r| to_json("success plan review", r)).transpose()?),
        target_met: Set(x.review.as_ref().map(|r| r.facts.target_met)),
        roi: Set(x.review.as_ref().and_then(|r| r.facts.roi.roi)),
        conclude_time: Set(x.review.as_ref().map(|r| r.conclude_time)),
        reading_due: Set(alerts.reading_due),
        off_track: Set(alerts.off_track),
        proxy_end: Set(alerts.proxy_end),
        create_time: Set(x.create_time),
        update_time: Set(x.update_time),
        version: Set(x.version),
    })
}

/// Inserts a plan; `false` if the account already has an active plan from
/// its template (nothing written).
pub(crate) async fn insert(conn: &impl ConnectionTrait, tenant: &str, x: &Plan) -> Result<bool> {
    let res = sp::Entity::insert(plan_row(tenant, x)?)
        .on_conflict(OnConflict::columns([sp::Column::TenantId, sp::Column::ActiveKey]).do_nothing().to_owned())
        .exec_without_returning(conn)
        .await?;
    Ok(res == 1)
}

/// The account's active plan from a template.
pub(crate) async fn active_from_template(
    conn: &impl ConnectionTrait,
    tenant: &str,
    template: Uuid,
    account: Uuid,
) -> Result<Option<Plan>> {
    sp::Entity::find()
        .filter(sp::Column::TenantId.eq(tenant))
        .filter(sp::Column::ActiveKey.eq(active_key(template, account)))
        .one(conn)
        .await?
        .map(plan)
        .transpose()
}

pub(crate) async fn find(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<Plan>> {
    sp::Entity::find_by_id(id).filter(sp::Column::TenantId.eq(tenant)).one(conn).await?.map(plan).transpose()
}

pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Plan> {
    find(conn, tenant, id).await?.ok_or_else(|| Error::not_found("success plan", id.to_string()))
}

pub(crate) async fn update(conn: &impl ConnectionTrait, tenant: &str, current: &Plan, next: &Plan) -> Result<bool> {
    db::update_at_version::<sp::Entity>(conn, tenant, current.id, current.version, plan_row(tenant, next)?).await
}

/// What ListSuccessPlans filters by.
#[derive(Debug, Clone, Default)]
pub(crate) struct PlanFilter {
    pub account: Option<Uuid>,
    pub state: Option<State>,
    pub model: Option<Uuid>,
}

/// Plans newest first (by id) before `before`.
pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    f: &PlanFilter,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Plan>> {
    let mut q = sp::Entity::find().filter(sp::Column::TenantId.eq(tenant));
    if let Some(a) = f.account {
        q = q.filter(sp::Column::AccountId.eq(a));
    }
    if let Some(s) = f.state {
        q = q.filter(sp::Column::State.eq(s.as_str()));
    }
    if let Some(m) = f.model {
        q = q.filter(sp::Column::ModelId.eq(m));
    }
    if let Some(b) = before {
        q = q.filter(sp::Column::Id.lt(b));
    }
    q.order_by(sp::Column::Id, Order::Desc).limit(limit).all(conn).await?.into_iter().map(plan).collect()
}

/// The tenant's plans oldest first after `after`, a page at a time (the
/// self-run summary reads them all).
pub(crate) async fn page(
    conn: &impl ConnectionTrait,
    tenant: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Plan>> {
    let mut q = sp::Entity::find().filter(sp::Column::TenantId.eq(tenant));
    if let Some(a) = after {
        q = q.filter(sp::Column::Id.gt(a));
    }
    q.order_by(sp::Column::Id, Order::Asc).limit(limit).all(conn).await?.into_iter().map(plan).collect()
}

/// Every plan's account and problem theme (the theme is inside the body:
/// plans are few per tenant next to accounts).
pub(crate) async fn themes(conn: &impl ConnectionTrait, tenant: &str) -> Result<Vec<(Uuid, Option<Uuid>)>> {
    let rows = sp::Entity::find().filter(sp::Column::TenantId.eq(tenant)).all(conn).await?;
    rows.into_iter()
        .map(|m| {
            let body: Body = from_json("success plan", &m.body)?;
            Ok((m.account_id, body.theme_id))
        })
        .collect()
}

/// The plan calendars of these accounts (those with an active plan), the
/// stage's day in `tz`.
pub(crate) async fn calendars(
    conn: &impl ConnectionTrait,
    tenant: &str,
    accounts: &[Uuid],
    tz: chrono_tz::Tz,
) -> Result<std::collections::HashMap<Uuid, PlanCalendar>> {
    type Row = (Uuid, Option<NaiveDate>, bool, Option<NaiveDate>, DateTime<Utc>);
    let rows: Vec<Row> = sp::Entity::find()
        .select_only()
        .column(sp::Column::AccountId)
        .column(sp::Column::ReadingDue)
        .column(sp::Column::OffTrack)
        .column(sp::Column::ProxyEnd)
        .column(sp::Column::StageSince)
        .filter(sp::Column::TenantId.eq(tenant))
        .filter(sp::Column::State.eq(State::Active.as_str()))
        .filter(sp::Column::AccountId.is_in(accounts.iter().copied()))
        .into_tuple()
        .all(conn)
        .await?;
    let mut out = std::collections::HashMap::<Uuid, PlanCalendar>::new();
    for (account, due, off, proxy, since) in rows {
        let c = out.entry(account).or_default();
        c.reading_due = c.reading_due.into_iter().chain(due).min();
        c.off_track |= off;
        c.proxy_end = c.proxy_end.into_iter().chain(proxy).min();
        c.stage_since = c.stage_since.into_iter().chain(Some(since.with_timezone(&tz).date_naive())).min();
    }
    Ok(out)
}

/// The condition on active plans' columns a plan schedule trigger selects
/// by (`None` for the other triggers): due without a reading since
/// `reading_due_by`, off track, proxy work ended before `proxy_before`,
/// in its stage since before `stalled_before`.
pub(crate) enum PlanAlert {
    ReadingDueBy(NaiveDate),
    OffTrack,
    ProxyEndedBefore(NaiveDate),
    StageSinceBefore(DateTime<Utc>),
}

/// `account_id IN (SELECT account_id FROM success_plans WHERE …)` for the
/// schedule's pre-selection of accounts.
pub(crate) fn accounts_alerted(tenant: &str, alert: PlanAlert) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::sea_query::Query;
    let mut q = Query::select();
    q.column(sp::Column::AccountId)
        .from(sp::Entity)
        .and_where(sp::Column::TenantId.eq(tenant))
        .and_where(sp::Column::State.eq(State::Active.as_str()));
    match alert {
        PlanAlert::ReadingDueBy(d) => q.and_where(sp::Column::ReadingDue.lte(d)),
        PlanAlert::OffTrack => q.and_where(sp::Column::OffTrack.eq(true)),
        PlanAlert::ProxyEndedBefore(d) => q.and_where(sp::Column::ProxyEnd.lt(d)),
        PlanAlert::StageSinceBefore(t) => q.and_where(sp::Column::StageSince.lt(t)),
    };
    q.to_owned()
}

fn model(m: sm::Model) -> Result<Model> {
    Ok(Model {
        id: m.id,
        plan_id: m.plan_id,
        template_id: m.template_id,
        segment_id: m.segment_id,
        theme_id: m.theme_id,
        display_name: m.display_name,
        problem: m.problem,
        checkpoints: from_json("success model", &m.checkpoints)?,
        usage: from_json("success model usage", &m.usage)?,
        create_time: m.create_time,
    })
}

/// Inserts a model; `false` if the plan already is one (nothing written).
pub(crate) async fn insert_model(conn: &impl ConnectionTrait, tenant: &str, x: &Model) -> Result<bool> {
    let row = sm::ActiveModel {
        id: Set(x.id),
        tenant_id: Set(tenant.to_string()),
        plan_id: Set(x.plan_id),
        template_id: Set(x.template_id),
        segment_id: Set(x.segment_id),
        theme_id: Set(x.theme_id),
        display_name: Set(x.display_name.clone()),
        problem: Set(x.problem.clone()),
        checkpoints: Set(to_json("success model", &x.checkpoints)?),
        usage: Set(to_json("success model usage", &x.usage)?),
        create_time: Set(x.create_time),
    };
    let res = sm::Entity::insert(row)
        .on_conflict(OnConflict::columns([sm::Column::TenantId, sm::Column::PlanId]).do_nothing().to_owned())
        .exec_without_returning(conn)
        .await?;
    Ok(res == 1)
}

pub(crate) async fn model_of_plan(conn: &impl ConnectionTrait, tenant: &str, plan: Uuid) -> Result<Option<Model>> {
    sm::Entity::find()
        .filter(sm::Column::TenantId.eq(tenant))
        .filter(sm::Column::PlanId.eq(plan))
        .one(conn)
        .await?
        .map(model)
        .transpose()
}

pub(crate) async fn find_model(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<Model>> {
    sm::Entity::find_by_id(id).filter(sm::Column::TenantId.eq(tenant)).one(conn).await?.map(model).transpose()
}

pub(crate) async fn get_model(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Model> {
    find_model(conn, tenant, id).await?.ok_or_else(|| Error::not_found("success model", id.to_string()))
}

pub(crate) async fn models(
    conn: &impl ConnectionTrait,
    tenant: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Model>> {
    let mut q = sm::Entity::find().filter(sm::Column::TenantId.eq(tenant));
    if let Some(a) = after {
        q = q.filter(sm::Column::Id.gt(a));
    }
    q.order_by(sm::Column::Id, Order::Asc).limit(limit).all(conn).await?.into_iter().map(model).collect()
}

/// Records a proposal; `false` if the account already had one of this model.
pub(crate) async fn insert_proposal(
    conn: &impl ConnectionTrait,
    tenant: &str,
    model: Uuid,
    account: Uuid,
    reason: &str,
    cta: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let row = pr::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.to_string()),
        model_id: Set(model),
        account_id: Set(account),
        reason: Set(reason.to_string()),
        cta_id: Set(cta),
        create_time: Set(now),
    };
    let res = pr::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([pr::Column::TenantId, pr::Column::ModelId, pr::Column::AccountId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(res == 1)
}

/// Accounts the model was proposed to.
pub(crate) async fn proposed_accounts(conn: &impl ConnectionTrait, tenant: &str, model: Uuid) -> Result<Vec<Uuid>> {
    Ok(pr::Entity::find()
        .select_only()
        .column(pr::Column::AccountId)
        .filter(pr::Column::TenantId.eq(tenant))
        .filter(pr::Column::ModelId.eq(model))
        .into_tuple::<Uuid>()
        .all(conn)
        .await?)
}

/// A plan as a model's evidence and spread count it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Adoption {
    pub plan_id: Uuid,
    pub account_id: Uuid,
    /// `None` while its review is open.
    pub target_met: Option<bool>,
    pub roi: Option<f64>,
    pub conclude_time: Option<DateTime<Utc>>,
}

/// Plans adopting a model.
pub(crate) async fn adoptions(conn: &impl ConnectionTrait, tenant: &str, model: Uuid) -> Result<Vec<Adoption>> {
    type Row = (Uuid, Uuid, Option<bool>, Option<f64>, Option<DateTime<Utc>>);
    let rows: Vec<Row> = sp::Entity::find()
        .select_only()
        .column(sp::Column::Id)
        .column(sp::Column::AccountId)
        .column(sp::Column::TargetMet)
        .column(sp::Column::Roi)
        .column(sp::Column::ConcludeTime)
        .filter(sp::Column::TenantId.eq(tenant))
        .filter(sp::Column::ModelId.eq(model))
        .order_by(sp::Column::Id, Order::Asc)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(plan_id, account_id, target_met, roi, conclude_time)| Adoption {
            plan_id,
            account_id,
            target_met,
            roi,
            conclude_time,
        })
        .collect())
}
