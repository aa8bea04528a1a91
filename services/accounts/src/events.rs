//! What the Accounts service publishes: one builder per event, from the
//! domain objects as stored, in the API's own protos. A use case records
//! them through the outbox in the transaction of the change itself.

use banso_events::Payload;
use banso_proto::events as ev;

use crate::{
    api,
    domain::{
        Account, Contact, TenantSettings,
        activity::{Activity, ActivityKind, TouchOrigin},
        contract::ContractEvent,
        segment::Segment,
    },
};

pub(crate) fn account_created(a: &Account) -> Payload {
    Payload::AccountCreated(ev::AccountCreated { account: Some(api::accounts::to_proto(a)) })
}

pub(crate) fn account_updated(a: &Account, changed: &[&str], by: &str) -> Payload {
    Payload::AccountUpdated(ev::AccountUpdated {
        account: Some(api::accounts::to_proto(a)),
        changed_fields: changed.iter().map(|s| s.to_string()).collect(),
        updated_by: by.to_string(),
    })
}

pub(crate) fn account_deleted(a: &Account) -> Payload {
    Payload::AccountDeleted(ev::AccountDeleted {
        account_id: a.id.to_string(),
        external_id: a.fields.external_id.clone().unwrap_or_default(),
    })
}

pub(crate) fn contact_changed(c: &Contact, change: ev::contact_changed::Change) -> Payload {
    Payload::ContactChanged(ev::ContactChanged { change: change as i32, contact: Some(api::contacts::to_proto(c)) })
}

pub(crate) fn contract_changed(e: &ContractEvent, a: &Account) -> Payload {
    Payload::ContractChanged(ev::ContractChanged {
        contract_event: Some(api::contracts::to_proto(e)),
        account: Some(api::accounts::to_proto(a)),
    })
}

pub(crate) fn activity_logged(a: &Activity) -> Payload {
    Payload::ActivityLogged(ev::ActivityLogged { activity: Some(api::activities::to_proto(a)) })
}

pub(crate) fn settings_changed(s: &TenantSettings) -> Payload {
    Payload::TenantSettingsChanged(ev::TenantSettingsChanged { settings: Some(api::settings::to_proto(s)) })
}

pub(crate) fn segment_changed(s: &Segment, change: ev::segment_changed::Change) -> Payload {
    Payload::SegmentChanged(ev::SegmentChanged { change: change as i32, segment: Some(api::segments::to_proto(s)) })
}

/// The durable consumer that writes Playbooks' calls to action and
/// outreach onto the timeline (its inbox name too).
pub(crate) const CONSUMER: &str = "accounts-timeline";

/// The durable consumer that writes Feedback's closed loops onto the
/// timeline (one durable consumer a source; the same handler and inbox).
pub(crate) const FEEDBACK_CONSUMER: &str = "accounts-timeline-feedback";

/// Consumes source "playbooks": CtaOpened and CtaClosed become CTA
/// activities, OutreachSent an OUTREACH activity, PlanCreated,
/// CheckpointRecorded and ReviewConcluded SUCCESS_PLAN activities; and of
/// source "feedback" only LoopClosed, a LOOP_CLOSED activity — all
/// vendor-started. Each envelope is claimed in the inbox in the
/// transaction that writes its activity, so a redelivery writes nothing;
/// an event about an account that is gone (or never was) is skipped.
pub(crate) struct Timeline {
    pub db: banso_events::Db,
}

/// The activity a LoopClosed of Feedback puts on the account's timeline: a
/// theme the account raised was shipped or declined. Its contacts are those
/// that raised it; its time the event's; its external ref names the theme
/// and the event, so each closed loop is one activity.
fn feedback_activity(env: &banso_events::Envelope) -> Option<Activity> {
    use banso_kit::wire;
    use banso_proto::feedback as fpb;
    let Some(Payload::LoopClosed(e)) = env.payload.as_ref() else { return None };
    let status = fpb::RoadmapStatus::try_from(e.status).unwrap_or(fpb::RoadmapStatus::Unspecified);
    let status = status.as_str_name().trim_start_matches("ROADMAP_STATUS_").to_lowercase().replace('_', " ");
    let mut body = Vec::new();
    if !e.decision.is_empty() {
        body.push(format!("decision: {}", e.decision));
    }
    if let Some(r) = e.roadmap.as_ref().filter(|r| !(r.tracker.is_empty() && r.key.is_empty() && r.url.is_empty())) {
        let link: Vec<&str> =
            [r.tracker.as_str(), r.key.as_str(), r.url.as_str()].into_iter().filter(|x| !x.is_empty()).collect();
        body.push(format!("roadmap: {}", link.join(" ")));
    }
    body.push(format!("feedback items: {}", e.item_ids.len()));
    Some(Activity {
        id: uuid::Uuid::now_v7(),
        account_id: wire::uuid("account_id", &e.account_id).ok()?,
        kind: ActivityKind::LoopClosed,
        contact_ids: e.contact_ids.iter().filter_map(|c| uuid::Uuid::parse_str(c).ok()).take(50).collect(),
        author_id: "feedback".to_owned(),
        occur_time: env.occurred_at.as_ref().and_then(|t| wire::time("occurred_at", t).ok()).unwrap_or_else(wire::now),
        subject: cut(&format!("loop closed ({status}): {}", e.display_name), 200),
        body: cut(&body.join("\n"), 20_000),
        external_ref: Some(cut(&format!("loop_closed:{}:{}", e.theme_id, env.id), 256)),
        create_time: wire::now(),
        origin: Some(TouchOrigin::Vendor),
    })
}

/// The activity an event of Playbooks puts on the timeline, if any.
fn playbooks_activity(payload: &Payload) -> Option<Activity> {
    use banso_kit::wire;
    use banso_proto::playbooks as ppb;
    let time =
        |t: Option<&pbjson_types::Timestamp>| t.and_then(|t| wire::time("time", t).ok()).unwrap_or_else(wire::now);
    let cta = |c: &ppb::CallToAction, subject: String, time_of: Option<&pbjson_types::Timestamp>, suffix: &str| {
        Some(Activity {
            id: uuid::Uuid::now_v7(),
            account_id: wire::uuid("account_id", &c.account_id).ok()?,
            kind: ActivityKind::Cta,
            contact_ids: Vec::new(),
            author_id: if c.owner_id.is_empty() { "playbooks".to_owned() } else { c.owner_id.clone() },
            occur_time: time(time_of),
            subject: cut(&subject, 200),
            body: String::new(),
            external_ref: Some(format!("cta:{}{suffix}", c.id)),
            create_time: wire::now(),
            origin: Some(TouchOrigin::Vendor),
        })
    };
    let plan =
        |account: &str, author: &str, subject: String, at: Option<&pbjson_types::Timestamp>, external_ref: String| {
            Some(Activity {
                id: uuid::Uuid::now_v7(),
                account_id: wire::uuid("account_id", account).ok()?,
                kind: ActivityKind::SuccessPlan,
                contact_ids: Vec::new(),
                author_id: if author.is_empty() { "playbooks".to_owned() } else { author.to_owned() },
                occur_time: time(at),
                subject: cut(&subject, 200),
                body: String::new(),
                external_ref: Some(external_ref),
                create_time: wire::now(),
                origin: Some(TouchOrigin::Vendor),
            })
        };
    match payload {
        Payload::CtaOpened(e) => {
            let c = e.cta.as_ref()?;
            cta(c, c.title.clone(), c.create_time.as_ref(), "")
        }
        Payload::CtaClosed(e) => {
            let c = e.cta.as_ref()?;
            let outcome = ppb::CtaOutcome::try_from(c.outcome).unwrap_or(ppb::CtaOutcome::Unspecified);
            let outcome = outcome.as_str_name().trim_start_matches("CTA_OUTCOME_").to_lowercase().replace('_', " ");
            cta(c, format!("closed: {} ({outcome})", c.title), c.close_time.as_ref(), ":closed")
        }
        Payload::PlanCreated(e) => {
            let p = e.plan.as_ref()?;
            plan(
                &p.account_id,
                &p.created_by,
                format!("success plan started: {}", p.display_name),
                p.create_time.as_ref(),
                format!("plan:{}", p.id),
            )
        }
        Payload::CheckpointRecorded(e) => {
            let r = e.reading.as_ref()?;
            let attainment = e.attainment.map(|a| format!(" ({:.1}% of target)", a * 100.0)).unwrap_or_default();
            let off = if e.off_track { ", off track" } else { "" };
            let at = r.record_time.as_ref().or(r.reading_time.as_ref());
            plan(
                &e.account_id,
                &r.recorded_by,
                format!("checkpoint {}: {}{attainment}{off}", e.metric, r.value),
                at,
                format!(
                    "plan:{}:reading:{}:{}",
                    e.plan_id,
                    e.checkpoint_id,
                    r.record_time.as_ref().map(|t| format!("{}.{}", t.seconds, t.nanos)).unwrap_or_default()
                ),
            )
        }
        Payload::ReviewConcluded(e) => {
            let conclusion =
                ppb::ReviewConclusion::try_from(e.conclusion).unwrap_or(ppb::ReviewConclusion::Unspecified);
            let conclusion =
                conclusion.as_str_name().trim_start_matches("REVIEW_CONCLUSION_").to_lowercase().replace('_', " ");
            plan(
                &e.account_id,
                "",
                format!("result review concluded: {} ({conclusion})", e.display_name),
                e.conclude_time.as_ref(),
                format!("plan:{}:review", e.plan_id),
            )
        }
        Payload::OutreachSent(e) => Some(Activity {
            id: uuid::Uuid::now_v7(),
            account_id: wire::uuid("account_id", &e.account_id).ok()?,
            kind: ActivityKind::Outreach,
            contact_ids: wire::uuid("contact_id", &e.contact_id).ok().into_iter().collect(),
            author_id: if e.playbook_id.is_empty() {
                "playbooks".to_owned()
            } else {
                format!("playbook:{}", e.playbook_id)
            },
            occur_time: time(e.sent_time.as_ref()),
            subject: cut(&e.subject, 200),
            body: String::new(),
            external_ref: Some(format!("outreach:{}", e.delivery_id)),
            create_time: wire::now(),
            origin: Some(TouchOrigin::Vendor),
        }),
        _ => None,
    }
}

/// `s` cut to `max` characters (the timeline's limits).
fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[async_trait::async_trait]
impl banso_events::Handler for Timeline {
    async fn handle(&self, env: &banso_events::Envelope) -> Result<(), banso_events::HandlerError> {
        let activity = env.payload.as_ref().and_then(playbooks_activity).or_else(|| feedback_activity(env));
        let Some(mut activity) = activity else { return Ok(()) };
        let tenant = env.tenant_id.as_str();
        self.db
            .write(tenant, async |tx| {
                let conn = tx.conn();
                if !banso_events::inbox::claim(conn, CONSUMER, env).await? {
                    return Ok(());
                }
                // A deleted (or unknown) account: nothing to write.
                if crate::store::accounts::find(conn, tenant, activity.account_id).await?.is_none() {
                    return Ok(());
                }
                // Only the account's own contact is named.
                if !activity.contact_ids.is_empty() {
                    let known =
                        crate::store::contacts::of_account(conn, tenant, activity.account_id, &activity.contact_ids)
                            .await?;
                    activity.contact_ids.retain(|id| known.contains(id));
                }
                let external_ref = activity.external_ref.clone().unwrap_or_default();
                if crate::store::activities::external_ref_taken(conn, tenant, &external_ref).await? {
                    return Ok(());
                }
                crate::store::activities::insert(conn, tenant, &activity).await?;
                tx.emit(activity_logged(&activity)).await?;
                Ok(())
            })
            .await?;
        Ok(())
    }
}
