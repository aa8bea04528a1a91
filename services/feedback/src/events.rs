//! What the feedback service publishes — SurveyAnswered, recorded in the
//! transaction that stores the answer — and what it consumes: Accounts'
//! accounts, contacts, segments and calendars; Health's bands; Playbooks'
//! success plans (the outcome a plan aims at) and their checkpoints'
//! attainment (the outcome axis), kept as a small projection.

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
                    // Playbooks' outreach gave up on an invitation: it shows FAILED, and why.
                    Some(Payload::OutreachFailed(e)) => {
                        if let Some(id) = invitation_of(&e.correlation_id) {
                            let error = format!("{} ({} attempts)", e.last_error, e.attempts);
                            let failure = crate::domain::campaign::Failure { at: time, error };
                            store::campaigns::delivery_failed(conn, tenant, id, &failure).await?;
                        }
                    }
                    Some(Payload::PlanCreated(ev::PlanCreated { plan: Some(p) })) => {
                        if let Some(outcome) = plan_outcome(p) {
                            let id = wire::uuid("plan.account_id", &p.account_id)?;
                            store::projection::set_plan_outcome(conn, tenant, id, &outcome).await?;
                        }
                    }
                    // A checkpoint's reading, for the outcome axis: the checkpoint's own
                    // (not a sub-metric's) and only with an attainment.
                    Some(Payload::CheckpointRecorded(e)) => {
                        if e.sub_metric_id.is_empty()
                            && let Some(attainment) = e.attainment.and_then(crate::domain::axes::attainment_points)
                        {
                            let at = e
                                .reading
                                .as_ref()
                                .and_then(|r| r.record_time.as_ref())
                                .and_then(|t| wire::time("reading.record_time", t).ok())
                                .unwrap_or(time);
                            store::axes::record_attainment(
                                conn,
                                tenant,
                                wire::uuid("account_id", &e.account_id)?,
                                wire::uuid("plan_id", &e.plan_id)?,
                                wire::uuid("checkpoint_id", &e.checkpoint_id)?,
                                attainment,
                                at,
                            )
                            .await?;
                        }
                    }
                    // Its own: a shipped or declined theme closes the loop with
                    // every account that raised it, once (loops_closed).
                    Some(Payload::ThemeStatusChanged(e)) if env.source == crate::NAME => {
                        if let Some(status) = roadmap_status_from(e.new_status) {
                            let theme = wire::uuid("theme_id", &e.theme_id)?;
                            crate::app::voice::loops::close_loop(tx, theme, e.change, status).await?;
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

// ---- the voice of the customer ----

pub(crate) fn department_to_proto(d: crate::domain::voice::Department) -> i32 {
    use crate::domain::voice::Department as D;
    (match d {
        D::Product => pb::Department::Product,
        D::Support => pb::Department::Support,
        D::Sales => pb::Department::Sales,
        D::Cs => pb::Department::Cs,
        D::Billing => pb::Department::Billing,
    }) as i32
}

pub(crate) fn channel_to_proto(c: crate::domain::voice::Channel) -> i32 {
    use crate::domain::voice::Channel as C;
    (match c {
        C::SurveyComment => pb::Channel::SurveyComment,
        C::CsmNote => pb::Channel::CsmNote,
        C::SupportTicket => pb::Channel::SupportTicket,
        C::Call => pb::Channel::Call,
        C::Community => pb::Channel::Community,
        C::Email => pb::Channel::Email,
    }) as i32
}

pub(crate) fn cx_to_proto(c: Option<crate::domain::voice::CxDimension>) -> i32 {
    use crate::domain::voice::CxDimension as X;
    (match c {
        None => pb::CxDimension::Unspecified,
        Some(X::Sense) => pb::CxDimension::Sense,
        Some(X::Feel) => pb::CxDimension::Feel,
        Some(X::Think) => pb::CxDimension::Think,
        Some(X::Act) => pb::CxDimension::Act,
        Some(X::Relate) => pb::CxDimension::Relate,
    }) as i32
}

pub(crate) fn phase_to_proto(p: Option<crate::domain::voice::JourneyPhase>) -> i32 {
    use crate::domain::voice::JourneyPhase as P;
    (match p {
        None => pb::JourneyPhase::Unspecified,
        Some(P::Buying) => pb::JourneyPhase::Buying,
        Some(P::Using) => pb::JourneyPhase::Using,
        Some(P::Support) => pb::JourneyPhase::Support,
    }) as i32
}

pub(crate) fn roadmap_status_to_proto(s: Option<crate::domain::voice::RoadmapStatus>) -> i32 {
    use crate::domain::voice::RoadmapStatus as S;
    (match s {
        None => pb::RoadmapStatus::Unspecified,
        Some(S::UnderReview) => pb::RoadmapStatus::UnderReview,
        Some(S::Planned) => pb::RoadmapStatus::Planned,
        Some(S::InProgress) => pb::RoadmapStatus::InProgress,
        Some(S::Shipped) => pb::RoadmapStatus::Shipped,
        Some(S::Declined) => pb::RoadmapStatus::Declined,
    }) as i32
}

pub(crate) fn band_to_proto(b: Option<Band>) -> i32 {
    (match b {
        None => banso_proto::health::Band::Unspecified,
        Some(Band::Red) => banso_proto::health::Band::Red,
        Some(Band::Yellow) => banso_proto::health::Band::Yellow,
        Some(Band::Green) => banso_proto::health::Band::Green,
    }) as i32
}

/// An item on the wire (its events and its API).
pub(crate) fn item_to_proto(i: &crate::domain::voice::Item) -> pb::FeedbackItem {
    let f = &i.fields;
    let s = &i.snapshot;
    pb::FeedbackItem {
        id: i.id.to_string(),
        text: f.text.clone(),
        channel: channel_to_proto(f.channel),
        account_id: f.account_id.to_string(),
        contact_id: f.contact_id.map(|c| c.to_string()).unwrap_or_default(),
        department: department_to_proto(f.department),
        category: f.category.clone(),
        cx_dimension: cx_to_proto(f.cx_dimension),
        journey_phase: phase_to_proto(f.journey_phase),
        severity: f.severity,
        snapshot: Some(pb::AccountSnapshot {
            arr: s.arr_currency.as_ref().map(|c| banso_proto::types::Money {
                currency_code: c.clone(),
                amount_minor: s.arr_minor.unwrap_or(0),
            }),
            plan: s.plan.clone(),
            lifecycle_stage: s.lifecycle_stage.map_or(0, |l| l.to_proto() as i32),
            health_band: band_to_proto(s.band),
        }),
        theme_ids: i.theme_ids.iter().map(|t| t.to_string()).collect(),
        answer_id: i.answer_id.map(|a| a.to_string()).unwrap_or_default(),
        create_time: Some(wire::timestamp(i.create_time)),
        created_by: i.created_by.clone(),
        mention_time: Some(wire::timestamp(i.mention_time())),
    }
}

/// FeedbackReceived: the item as recorded, with its keyword themes.
pub(crate) fn feedback_received(i: &crate::domain::voice::Item) -> Payload {
    Payload::FeedbackReceived(ev::FeedbackReceived { item: Some(item_to_proto(i)) })
}

/// Most bytes of items one FeedbackImported carries: far below a bus
/// message's limit (NATS: 1 MiB by default), and a relay round (up to 2,000
/// rows read at once) stays within about three times what 2,000 of the
/// largest FeedbackReceived (5,000 characters each) held; an import's usual
/// batch (500 items of a few hundred bytes) is a few events.
const MAX_IMPORTED_BYTES: usize = 64 * 1024;

/// FeedbackImported: an import's items, in order, as few events as
/// [`MAX_IMPORTED_BYTES`] allows (an item is at most 5,000 characters, so
/// one always fits). One event a batch instead of one an item: an item's
/// event was most of an import's cost (its outbox row, the relay's read,
/// publish and marking).
pub(crate) fn feedback_imported(items: &[crate::domain::voice::Item]) -> Vec<Payload> {
    let mut out = Vec::new();
    let (mut batch, mut bytes) = (Vec::new(), 0);
    for i in items {
        let item = item_to_proto(i);
        let n = prost::Message::encoded_len(&item);
        if !batch.is_empty() && bytes + n > MAX_IMPORTED_BYTES {
            out.push(Payload::FeedbackImported(ev::FeedbackImported { items: std::mem::take(&mut batch) }));
            bytes = 0;
        }
        bytes += n;
        batch.push(item);
    }
    if !batch.is_empty() {
        out.push(Payload::FeedbackImported(ev::FeedbackImported { items: batch }));
    }
    out
}

// ---- routing to departments ----

pub(crate) fn notice_kind_to_proto(k: crate::domain::routing::NoticeKind) -> i32 {
    use crate::domain::routing::NoticeKind as K;
    (match k {
        K::Alert => pb::NoticeKind::Alert,
        K::Digest => pb::NoticeKind::Digest,
    }) as i32
}

/// Characters of an item's text a digest's NoticeIssued carries (100 full
/// items could pass the bus's message limit); an alert carries it whole.
pub(crate) const DIGEST_TEXT_CHARS: usize = 1000;

/// NoticeIssued: Playbooks' outreach delivers an alert or digest through
/// `endpoint`; at most [`crate::domain::routing::MAX_EVENT_ITEMS`] of its
/// items, `items_total` says how many it has.
pub(crate) fn notice_issued(
    n: &crate::domain::routing::Notice,
    endpoint: uuid::Uuid,
    items: &[&crate::domain::voice::Item],
) -> Payload {
    let digest = n.kind == crate::domain::routing::NoticeKind::Digest;
    let items = items
        .iter()
        .take(crate::domain::routing::MAX_EVENT_ITEMS)
        .map(|i| {
            let mut x = item_to_proto(i);
            if digest && x.text.chars().count() > DIGEST_TEXT_CHARS {
                x.text = x.text.chars().take(DIGEST_TEXT_CHARS).collect();
            }
            x
        })
        .collect();
    Payload::NoticeIssued(ev::NoticeIssued {
        notice_id: n.id.to_string(),
        subscription_id: n.subscription_id.to_string(),
        department: department_to_proto(n.department),
        kind: notice_kind_to_proto(n.kind),
        endpoint_id: endpoint.to_string(),
        day: n.day.map(wire::date_to_proto),
        items,
        items_total: i32::try_from(n.item_ids.len()).unwrap_or(i32::MAX),
    })
}

// ---- closing the loop ----

/// The theme's roadmap link on the wire, with its current status.
pub(crate) fn roadmap_to_proto(t: &crate::domain::voice::Theme) -> pb::RoadmapLink {
    let r = &t.body.roadmap;
    pb::RoadmapLink {
        tracker: r.tracker.clone(),
        key: r.key.clone(),
        url: r.url.clone(),
        status: roadmap_status_to_proto(t.status()),
    }
}

/// ThemeStatusChanged: the theme's last roadmap change (its place in the
/// history, from 1), recorded with it. Feedback consumes it itself to close
/// the loop with each account that raised the theme.
pub(crate) fn theme_status_changed(
    t: &crate::domain::voice::Theme,
    old: Option<crate::domain::voice::RoadmapStatus>,
) -> Payload {
    let last = t.log.roadmap_history.last();
    Payload::ThemeStatusChanged(ev::ThemeStatusChanged {
        theme_id: t.id.to_string(),
        display_name: t.body.display_name.clone(),
        old_status: roadmap_status_to_proto(old),
        new_status: roadmap_status_to_proto(t.status()),
        change: i32::try_from(t.log.roadmap_history.len()).unwrap_or(i32::MAX),
        changed_by: last.map(|c| c.changed_by.clone()).unwrap_or_default(),
    })
}

/// What a LoopClosed tells one account.
pub(crate) struct Told<'a> {
    pub theme: &'a crate::domain::voice::Theme,
    pub status: crate::domain::voice::RoadmapStatus,
    pub raiser: &'a crate::domain::loops::Raiser,
    pub owner_id: &'a str,
    pub decision: &'a str,
}

/// LoopClosed: a theme the account raised was shipped or declined.
pub(crate) fn loop_closed(x: Told<'_>) -> Payload {
    let mut roadmap = roadmap_to_proto(x.theme);
    roadmap.status = roadmap_status_to_proto(Some(x.status));
    Payload::LoopClosed(ev::LoopClosed {
        theme_id: x.theme.id.to_string(),
        display_name: x.theme.body.display_name.clone(),
        status: roadmap_status_to_proto(Some(x.status)),
        account_id: x.raiser.account.to_string(),
        contact_ids: x.raiser.contacts.iter().map(uuid::Uuid::to_string).collect(),
        item_ids: x.raiser.items.iter().map(uuid::Uuid::to_string).collect(),
        roadmap: Some(roadmap),
        owner_id: x.owner_id.to_string(),
        decision: x.decision.to_string(),
    })
}

/// The status a ThemeStatusChanged moved to, if it is one this build knows.
fn roadmap_status_from(raw: i32) -> Option<crate::domain::voice::RoadmapStatus> {
    use crate::domain::voice::RoadmapStatus as S;
    match pb::RoadmapStatus::try_from(raw).ok()? {
        pb::RoadmapStatus::Unspecified => None,
        pb::RoadmapStatus::UnderReview => Some(S::UnderReview),
        pb::RoadmapStatus::Planned => Some(S::Planned),
        pb::RoadmapStatus::InProgress => Some(S::InProgress),
        pb::RoadmapStatus::Shipped => Some(S::Shipped),
        pb::RoadmapStatus::Declined => Some(S::Declined),
    }
}
