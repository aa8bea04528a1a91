//! What the feedback service publishes — SurveyAnswered, recorded in the
//! transaction that stores the answer — and what it consumes: Accounts'
//! accounts, contacts, segments and calendars; Health's bands; Playbooks'
//! success plans (the outcome a plan aims at), kept as a small projection.

use async_trait::async_trait;
use banso_cel::Attr;
use banso_events::{Db, Envelope, Handler, HandlerError, Payload, inbox};
use banso_kit::{Error, Result, wire};
use banso_proto::{accounts as apb, events as ev, feedback as pb};

use crate::{
    domain::{
        LifecycleStage, TouchModel,
        projection::{Account, Band, Contact, Level},
        survey::{Kind, NpsCategory},
    },
    store::{self, answers::Answer},
};

/// The durable consumer name of the feedback service.
pub(crate) const CONSUMER: &str = "feedback";

pub(crate) fn kind_to_proto(k: Kind) -> pb::SurveyKind {
    match k {
        Kind::Ces => pb::SurveyKind::Ces,
        Kind::Outcome => pb::SurveyKind::Outcome,
        Kind::Nps => pb::SurveyKind::Nps,
        Kind::Csat => pb::SurveyKind::Csat,
        Kind::Custom => pb::SurveyKind::Custom,
    }
}

pub(crate) fn category_to_proto(c: Option<NpsCategory>) -> pb::NpsCategory {
    match c {
        None => pb::NpsCategory::Unspecified,
        Some(NpsCategory::Detractor) => pb::NpsCategory::Detractor,
        Some(NpsCategory::Passive) => pb::NpsCategory::Passive,
        Some(NpsCategory::Promoter) => pb::NpsCategory::Promoter,
    }
}

/// SurveyAnswered: what Health scores (nps, csat, ces, outcome) and
/// playbooks trigger on (a detractor answered).
pub(crate) fn survey_answered(a: &Answer, category: Option<NpsCategory>) -> Payload {
    Payload::SurveyAnswered(ev::SurveyAnswered {
        answer_id: a.id.to_string(),
        survey_id: a.survey_id.to_string(),
        kind: kind_to_proto(a.kind) as i32,
        campaign_id: a.campaign_id.to_string(),
        invitation_id: a.invitation_id.to_string(),
        account_id: a.account_id.to_string(),
        contact_id: a.contact_id.to_string(),
        score: a.score,
        nps_category: category_to_proto(category) as i32,
        comment: a.comment.clone(),
        answer_time: Some(wire::timestamp(a.answer_time)),
        perception_agreement: a.perception,
    })
}

/// What a SurveyInvitationIssued says.
pub(crate) struct Issued<'a> {
    pub invitation: &'a crate::domain::campaign::Invitation,
    pub survey: &'a crate::domain::survey::Survey,
    pub endpoint: uuid::Uuid,
    pub contact_name: &'a str,
    pub question: String,
    pub answer_url: String,
}

/// SurveyInvitationIssued: Playbooks' outreach delivers it through `endpoint`.
pub(crate) fn survey_invitation_issued(x: Issued<'_>) -> Payload {
    let i = x.invitation;
    Payload::SurveyInvitationIssued(ev::SurveyInvitationIssued {
        invitation_id: i.id.to_string(),
        campaign_id: i.campaign_id.to_string(),
        survey_id: i.survey_id.to_string(),
        kind: kind_to_proto(i.kind) as i32,
        account_id: i.account_id.to_string(),
        contact_id: i.contact_id.to_string(),
        contact_name: x.contact_name.to_string(),
        email: i.email.clone(),
        endpoint_id: x.endpoint.to_string(),
        survey_name: x.survey.body.display_name.clone(),
        question: x.question,
        answer_url: x.answer_url,
        expire_time: Some(wire::timestamp(i.expire_time)),
        language: x.survey.body.language.as_str().to_string(),
    })
}

/// The invitation an outreach message was sent for, if it was one.
pub(crate) fn invitation_of(correlation_id: &str) -> Option<uuid::Uuid> {
    correlation_id.strip_prefix(INVITATION_PREFIX).and_then(|id| uuid::Uuid::parse_str(id).ok())
}

/// How an invitation is named in an outreach message's correlation id.
pub(crate) const INVITATION_PREFIX: &str = "survey_invitation:";

/// A date Accounts sent (it checked it; one that is not a date is left out).
fn date(d: Option<&banso_proto::types::Date>) -> Option<chrono::NaiveDate> {
    wire::optional_date(&mut banso_kit::Violations::new(), "date", d)
}

/// The projected account of an Accounts' account.
pub(crate) fn account(a: &apb::Account) -> Result<Account> {
    let id = wire::uuid("account.id", &a.id)?;
    let lifecycle_stage = LifecycleStage::from_proto(a.lifecycle_stage)
        .ok_or_else(|| Error::invalid("account.lifecycle_stage", format!("account {id} has no lifecycle stage")))?;
    let touch_model = TouchModel::from_proto(a.touch_model)
        .ok_or_else(|| Error::invalid("account.touch_model", format!("account {id} has no touch model")))?;
    Ok(Account {
        id,
        name: a.name.clone(),
        external_id: (!a.external_id.is_empty()).then(|| a.external_id.clone()),
        lifecycle_stage,
        touch_model,
        arr_currency: a.arr.as_ref().map(|m| m.currency_code.clone()),
        arr_minor: a.arr.as_ref().map(|m| m.amount_minor),
        renewal_date: date(a.renewal_date.as_ref()),
        contract_start_date: date(a.contract_start_date.as_ref()),
        industry: a.industry.clone(),
        employee_count: a.employee_count,
        revenue_band: a.revenue_band.clone(),
        region: a.region.clone(),
        plan_tier: a.plan_tier.clone(),
        owner_id: a.owner_id.clone(),
        tags: a.tags.clone(),
        attributes: a.custom_attributes.iter().filter_map(|(k, v)| Some((k.clone(), Attr::from_proto(v)?))).collect(),
    })
}

fn contact(c: &apb::Contact) -> Result<Contact> {
    Ok(Contact {
        id: wire::uuid("contact.id", &c.id)?,
        account_id: wire::uuid("contact.account_id", &c.account_id)?,
        name: c.name.clone(),
        email: c.email.clone(),
        department: c.department.clone(),
        level: match apb::ContactLevel::try_from(c.level) {
            Ok(apb::ContactLevel::Executive) => Some(Level::Executive),
            Ok(apb::ContactLevel::Manager) => Some(Level::Manager),
            Ok(apb::ContactLevel::Practitioner) => Some(Level::Practitioner),
            _ => None,
        },
        champion: c.champion,
        decision_maker: c.decision_maker,
    })
}

fn band(raw: i32) -> Option<Band> {
    match banso_proto::health::Band::try_from(raw).ok()? {
        banso_proto::health::Band::Red => Some(Band::Red),
        banso_proto::health::Band::Yellow => Some(Band::Yellow),
        banso_proto::health::Band::Green => Some(Band::Green),
        banso_proto::health::Band::Unspecified => None,
    }
}

/// The outcome a success plan aims at, as the outcome question names it:
/// its objectives, else its problem.
fn plan_outcome(p: &banso_proto::playbooks::SuccessPlan) -> Option<String> {
    let objectives: Vec<&str> = p.objectives.iter().map(|o| o.trim()).filter(|o| !o.is_empty()).collect();
    if !objectives.is_empty() {
        return Some(objectives.join("; "));
    }
    let problem = p.problem.trim();
    (!problem.is_empty()).then(|| problem.chars().take(500).collect())
}

/// Keeps the projection from Accounts', Health's and Playbooks' events.
pub(crate) struct Projection {
    pub db: Db,
}

#[async_trait]
impl Handler for Projection {
    async fn handle(&self, env: &Envelope) -> std::result::Result<(), HandlerError> {
        let tenant = env.tenant_id.as_str();
        self.db
            .write(tenant, async |tx| {
                let conn = tx.conn();
                if !inbox::claim(conn, CONSUMER, env).await? {
                    // Seen before: its effect is already committed.
                    return Ok(());
                }
                let time =
                    env.occurred_at.as_ref().and_then(|t| wire::time("occurred_at", t).ok()).unwrap_or_else(wire::now);
                match &env.payload {
                    Some(Payload::AccountCreated(ev::AccountCreated { account: Some(a) }))
                    | Some(Payload::AccountUpdated(ev::AccountUpdated { account: Some(a), .. }))
                    | Some(Payload::ContractChanged(ev::ContractChanged { account: Some(a), .. })) => {
                        store::projection::upsert_account(conn, tenant, &account(a)?, time).await?;
                    }
                    Some(Payload::AccountDeleted(e)) => {
                        store::projection::delete_account(conn, tenant, wire::uuid("account_id", &e.account_id)?)
                            .await?;
                    }
                    Some(Payload::ContactChanged(e)) => {
                        if let Some(c) = &e.contact {
                            let deleted = e.change == ev::contact_changed::Change::Deleted as i32;
                            if deleted {
                                store::projection::delete_contact(conn, tenant, wire::uuid("contact.id", &c.id)?)
                                    .await?;
                            } else {
                                store::projection::upsert_contact(conn, tenant, &contact(c)?).await?;
                            }
                        }
                    }
                    Some(Payload::SegmentChanged(e)) => {
                        if let Some(seg) = &e.segment {
                            let id = wire::uuid("segment.id", &seg.id)?;
                            if e.change == ev::segment_changed::Change::Deleted as i32 {
                                store::projection::delete_segment(conn, tenant, id).await?;
                            } else {
                                store::projection::upsert_segment(conn, tenant, id, &seg.expression).await?;
                            }
                        }
                    }
                    Some(Payload::TenantSettingsChanged(e)) => {
                        if let Some(s) = &e.settings {
                            let fy = u32::try_from(s.fiscal_year_start_month).unwrap_or(1).clamp(1, 12);
                            store::tenants::set_calendar(conn, tenant, &s.time_zone, fy).await?;
                        }
                    }
                    Some(Payload::HealthScoreChanged(e)) => {
                        let id = wire::uuid("account_id", &e.account_id)?;
                        store::projection::set_health(conn, tenant, id, band(e.new_band), e.new_score).await?;
                    }
                    // Playbooks' outreach delivered an invitation (a message for anything else is not ours).
                    Some(Payload::OutreachSent(e)) => {
                        if let Some(id) = invitation_of(&e.correlation_id) {
                            let at = e.sent_time.as_ref().and_then(|t| wire::time("sent_time", t).ok()).unwrap_or(time);
                            store::campaigns::delivered(conn, tenant, id, at).await?;
                        }
                    }
                    Some(Payload::PlanCreated(ev::PlanCreated { plan: Some(p) })) => {
                        if let Some(outcome) = plan_outcome(p) {
                            let id = wire::uuid("plan.account_id", &p.account_id)?;
                            store::projection::set_plan_outcome(conn, tenant, id, &outcome).await?;
                        }
                    }
                    _ => {}
                }
                Ok(())
            })
            .await?;
        Ok(())
    }
}
