//! What the playbooks service publishes (CtaOpened, CtaUpdated, CtaClosed,
//! PlaybookFired — recorded in the transaction of the change) and what it
//! consumes: Accounts' and Health's events, kept as the projection
//! conditions read, and every trigger event (Feedback's SurveyAnswered
//! and LoopClosed among them), which runs the live playbooks of its type in the same
//! transaction as its inbox entry — a redelivered event fires nothing twice.

use async_trait::async_trait;
use banso_events::{Db, Envelope, Handler, HandlerError, Payload, envelope::type_of, inbox};
use banso_kit::{Error, Result, wire};
use banso_proto::{accounts as apb, events as ev};
use std::sync::Arc;
use uuid::Uuid;

use crate::{
    api::ctas::to_proto as cta_to_proto,
    app::engine::{self, Engine, Occasion, Subject},
    domain::{
        LifecycleStage, TouchModel,
        cta::Cta,
        engine::Signal,
        plan::{Plan, Reading as PlanReading},
        playbook::{Band, EVENT_TYPES},
        projection::{Account, Attr, Health, Reading, Segment},
        touch::Share,
    },
    store::{self, firings::Firing},
};

/// The durable consumer name of the playbooks service.
pub(crate) const CONSUMER: &str = "playbooks";

pub(crate) fn cta_opened(c: &Cta) -> Payload {
    Payload::CtaOpened(ev::CtaOpened { cta: Some(cta_to_proto(c, wire::now())) })
}

pub(crate) fn cta_updated(c: &Cta, changed: &[&str]) -> Payload {
    Payload::CtaUpdated(ev::CtaUpdated {
        cta: Some(cta_to_proto(c, wire::now())),
        changed_fields: changed.iter().map(|s| s.to_string()).collect(),
    })
}

pub(crate) fn cta_closed(c: &Cta) -> Payload {
    Payload::CtaClosed(ev::CtaClosed { cta: Some(cta_to_proto(c, wire::now())) })
}

pub(crate) fn plan_created(p: &Plan) -> Payload {
    Payload::PlanCreated(ev::PlanCreated { plan: Some(crate::api::plans::to_proto(p, wire::now())) })
}

pub(crate) fn checkpoint_recorded(p: &Plan, checkpoint: Uuid, sub_metric: Option<Uuid>, r: &PlanReading) -> Payload {
    let c = p.body.checkpoints.iter().find(|c| c.id == checkpoint);
    let (metric, attainment) = match (c, sub_metric) {
        (Some(c), None) => (c.metric.clone(), c.outcome().attainment),
        (Some(c), Some(s)) => {
            let o = c.outcome();
            let sub = o.sub_metrics.into_iter().find(|x| x.id == s);
            (sub.as_ref().map(|x| x.metric.clone()).unwrap_or_default(), sub.and_then(|x| x.attainment))
        }
        (None, _) => (String::new(), None),
    };
    Payload::CheckpointRecorded(ev::CheckpointRecorded {
        plan_id: p.id.to_string(),
        account_id: p.account_id.to_string(),
        checkpoint_id: checkpoint.to_string(),
        sub_metric_id: sub_metric.map(|s| s.to_string()).unwrap_or_default(),
        metric,
        reading: Some(crate::api::plans::reading_proto(r)),
        attainment,
        off_track: c.is_some_and(|c| c.off_track(p.create_time)),
    })
}

pub(crate) fn review_concluded(p: &Plan) -> Payload {
    let r = p.review.as_ref();
    Payload::ReviewConcluded(ev::ReviewConcluded {
        plan_id: p.id.to_string(),
        account_id: p.account_id.to_string(),
        display_name: p.body.display_name.clone(),
        conclusion: r.and_then(|r| r.facts.conclusion).map_or(0, |c| crate::api::plans::conclusion_proto(c) as i32),
        target_met: r.is_some_and(|r| r.facts.target_met),
        roi: r.and_then(|r| r.facts.roi.roi),
        direction: r.and_then(|r| r.direction).map_or(0, |d| crate::api::plans::direction_proto(d) as i32),
        conclude_time: r.map(|r| wire::timestamp(r.conclude_time)),
    })
}

pub(crate) fn playbook_fired(f: &Firing) -> Payload {
    Payload::PlaybookFired(ev::PlaybookFired {
        firing_id: f.id.to_string(),
        playbook_id: f.playbook_id.to_string(),
        playbook_version: f.playbook_version,
        account_id: f.account_id.to_string(),
        trigger_event_id: if f.trigger_kind == "event" { f.trigger_key.clone() } else { String::new() },
        trigger_kind: f.trigger_kind.clone(),
        action_outcomes: f
            .actions
            .iter()
            .map(|a| format!("{}: {}", a.kind, if a.detail.is_empty() { &a.status } else { &a.detail }))
            .collect(),
    })
}

fn date(d: Option<&banso_proto::types::Date>) -> Option<chrono::NaiveDate> {
    wire::optional_date(&mut banso_kit::Violations::new(), "date", d)
}

/// The projection's account as an Accounts event carries it.
pub(crate) fn account(a: &apb::Account) -> Result<Account> {
    let id = wire::uuid("account.id", &a.id)?;
    let lifecycle_stage = LifecycleStage::from_proto(a.lifecycle_stage)
        .ok_or_else(|| Error::invalid("account.lifecycle_stage", format!("account {id} has no lifecycle stage")))?;
    let touch_model = TouchModel::from_proto(a.touch_model)
        .ok_or_else(|| Error::invalid("account.touch_model", format!("account {id} has no touch model")))?;
    let attributes = a.custom_attributes.iter().filter_map(|(k, v)| Some((k.clone(), Attr::from_proto(v)?))).collect();
    let touch_mix = a
        .touch_mix
        .iter()
        .filter_map(|s| {
            Some(Share { model: TouchModel::from_proto(s.touch_model)?, percent: u8::try_from(s.percent).ok()? })
        })
        .collect();
    Ok(Account {
        id,
        name: a.name.clone(),
        external_id: (!a.external_id.is_empty()).then(|| a.external_id.clone()),
        lifecycle_stage,
        touch_model,
        touch_mix,
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
        attributes,
    })
}

pub(crate) fn band(raw: i32) -> Option<Band> {
    match banso_proto::health::Band::try_from(raw).ok()? {
        banso_proto::health::Band::Red => Some(Band::Red),
        banso_proto::health::Band::Yellow => Some(Band::Yellow),
        banso_proto::health::Band::Green => Some(Band::Green),
        banso_proto::health::Band::Unspecified => None,
    }
}

/// The account an event is about, if any (`banso_events::envelope::account_of`,
/// which names it for every payload).
pub(crate) fn account_of(env: &Envelope) -> Option<Uuid> {
    banso_events::envelope::account_of(env).and_then(|id| Uuid::parse_str(id).ok())
}

/// What trigger helpers read of an event; `previous` is the account's
/// stage before it.
pub(crate) fn signal(env: &Envelope, previous: Option<LifecycleStage>) -> Signal {
    let event_type = env.payload.as_ref().map(type_of).unwrap_or_default();
    let mut s = Signal {
        event_type: event_type.to_string(),
        event_index: crate::domain::engine::event_index(event_type),
        account_id: account_of(env),
        ..Default::default()
    };
    let stage = |a: &Option<apb::Account>| a.as_ref().and_then(|a| LifecycleStage::from_proto(a.lifecycle_stage));
    match &env.payload {
        Some(Payload::HealthScoreChanged(e)) => {
            s.old_score = e.old_score;
            s.new_score = Some(e.new_score);
            s.old_band = band(e.old_band);
            s.new_band = band(e.new_band);
            s.measures = e.measures.iter().map(|m| (m.measure.clone(), (m.value, m.previous_value))).collect();
        }
        Some(Payload::AccountCreated(e)) => s.stage_entered = stage(&e.account),
        Some(Payload::AccountUpdated(e)) => s.stage_entered = stage(&e.account).filter(|st| Some(*st) != previous),
        Some(Payload::ContractChanged(e)) => s.stage_entered = stage(&e.account).filter(|st| Some(*st) != previous),
        _ => {}
    }
    s
}

/// An account change a playbook's update_account action made: projected,
/// but no trigger, so two playbooks editing the same account cannot loop.
fn made_by_playbooks(env: &Envelope) -> bool {
    match &env.payload {
        Some(Payload::AccountUpdated(e)) => {
            e.updated_by.strip_prefix(banso_kit::auth::SERVICE_SUBJECT_PREFIX) == Some(crate::NAME)
        }
        _ => false,
    }
}

pub(crate) struct Consumer {
    pub db: Db,
    pub engine: Arc<Engine>,
}

#[async_trait]
impl Handler for Consumer {
    async fn handle(&self, env: &Envelope) -> std::result::Result<(), HandlerError> {
        let tenant = env.tenant_id.as_str();
        self.db
            .write(tenant, async |tx| {
                let conn = tx.conn();
                if !inbox::claim(conn, CONSUMER, env).await? {
                    return Ok(());
                }
                let time =
                    env.occurred_at.as_ref().and_then(|t| wire::time("occurred_at", t).ok()).unwrap_or_else(wire::now);
                // Of a trigger's event only: the others (a deletion, a
                // contact, usage seen, outreach) need no account read here.
                let event_type = env.payload.as_ref().map(type_of).unwrap_or_default();
                let account_id = account_of(env).filter(|_| EVENT_TYPES.contains(&event_type));
                let before = match account_id {
                    Some(id) => store::projection::get(conn, tenant, id).await?,
                    None => None,
                };
                // The account as conditions will read it after this event:
                // read again only when the event changed more than its score.
                let mut after: Option<Option<store::projection::Projected>> = None;
                match &env.payload {
                    Some(Payload::AccountCreated(ev::AccountCreated { account: Some(a) }))
                    | Some(Payload::AccountUpdated(ev::AccountUpdated { account: Some(a), .. }))
                    | Some(Payload::ContractChanged(ev::ContractChanged { account: Some(a), .. })) => {
                        store::projection::upsert_account(conn, tenant, &account(a)?, time).await?;
                    }
                    Some(Payload::AccountDeleted(e)) => {
                        let id = wire::uuid("account_id", &e.account_id)?;
                        store::projection::delete_account(conn, tenant, id).await?;
                        store::outreach::delete_contacts_of(conn, tenant, id).await?;
                    }
                    Some(Payload::ContactChanged(e)) => crate::app::outreach::contact_changed(conn, tenant, e).await?,
                    Some(Payload::SurveyInvitationIssued(e)) => {
                        let queued = crate::app::outreach::survey_invitation(tx, e).await?;
                        if queued {
                            self.engine.outreach.queued();
                        }
                    }
                    Some(Payload::NoticeIssued(e)) => {
                        let queued = crate::app::outreach::feedback_notice(tx, e).await?;
                        if queued {
                            self.engine.outreach.queued();
                        }
                    }
                    Some(Payload::HealthScoreChanged(e)) => {
                        if let (Some(id), Some(band)) = (account_id, band(e.new_band)) {
                            let h = Health {
                                score: e.new_score,
                                band,
                                trend_7d: e.trend_7d,
                                trend_30d: e.trend_30d,
                                measures: e
                                    .measures
                                    .iter()
                                    .map(|m| {
                                        let r = Reading {
                                            value: m.value,
                                            previous_value: m.previous_value,
                                            points: m.points,
                                        };
                                        (m.measure.clone(), r)
                                    })
                                    .collect(),
                                time,
                            };
                            store::projection::set_health(conn, tenant, id, &h).await?;
                            after = Some(before.clone().map(|mut p| {
                                p.health = Some(h);
                                p
                            }));
                        }
                    }
                    Some(Payload::UsageSeen(e)) => {
                        let id = wire::uuid("account_id", &e.account_id)?;
                        if let Some(day) = date(e.day.as_ref()) {
                            store::projection::set_last_usage(conn, tenant, id, day).await?;
                        }
                    }
                    Some(Payload::SegmentChanged(e)) => {
                        if let Some(seg) = &e.segment {
                            let id = wire::uuid("segment.id", &seg.id)?;
                            if e.change == ev::segment_changed::Change::Deleted as i32 {
                                store::projection::delete_segment(conn, tenant, id).await?;
                            } else {
                                let forbidden = seg
                                    .forbidden_touch_models
                                    .iter()
                                    .filter_map(|m| TouchModel::from_proto(*m))
                                    .collect();
                                let s = Segment {
                                    id,
                                    display_name: seg.display_name.clone(),
                                    expression: seg.expression.clone(),
                                    forbidden,
                                };
                                store::projection::upsert_segment(conn, tenant, &s).await?;
                            }
                        }
                    }
                    Some(Payload::TenantSettingsChanged(e)) => {
                        if let Some(s) = &e.settings {
                            store::tenants::set_time_zone(conn, tenant, &s.time_zone).await?;
                        }
                    }
                    _ => {}
                }
                let Some(account_id) = account_id.filter(|_| !made_by_playbooks(env)) else {
                    return Ok(());
                };
                let event_id = wire::uuid("id", &env.id)?;
                let signal = signal(env, before.map(|b| b.account.lifecycle_stage));
                let stored = store::trigger_events::TriggerEvent {
                    id: event_id,
                    event_type,
                    account: Some(account_id),
                    time,
                    seq: seq(env),
                    stage_entered: signal.stage_entered,
                    env,
                };
                store::trigger_events::record(conn, tenant, &stored).await?;
                let trigger = format!("event:{event_type}");
                let live = store::playbooks::live(conn, tenant, &trigger).await?;
                if live.is_empty() {
                    return Ok(());
                }
                let projected = match after {
                    Some(p) => p,
                    None => store::projection::get(conn, tenant, account_id).await?,
                };
                let Some(projected) = projected else { return Ok(()) };
                let settings = store::tenants::get(conn, tenant).await?;
                let segments = self.engine.segments(conn, tenant).await?;
                let set = self.engine.live_set(conn, tenant, &trigger, &live).await?;
                let subject = Subject {
                    projected: &projected,
                    tz: settings.tz(),
                    now: wire::now(),
                    event: Some(env),
                    facts: Default::default(),
                };
                for p in set.applying(&signal, &subject, &segments) {
                    let o = Occasion {
                        kind: "event",
                        key: env.id.clone(),
                        event_id: Some(env.id.clone()),
                        subject: &subject,
                    };
                    engine::fire(tx, &self.engine, p, &o, &segments).await?;
                }
                Ok(())
            })
            .await
            .map_err(HandlerError::from)?;
        self.engine.after_commit();
        Ok(())
    }
}

/// An order among events of one time: the high half of the envelope id
/// (UUIDv7: its millisecond, then the counter the uuid crate keeps within a
/// millisecond) — the low half is random.
fn seq(env: &Envelope) -> i64 {
    Uuid::parse_str(&env.id).map(|u| (u.as_u128() >> 64) as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use banso_proto::feedback::{NpsCategory, SurveyKind};

    use super::*;
    use crate::{
        app::engine::{compile, event_facts},
        domain::{
            engine::triggers,
            playbook::{Definition, EventTrigger, Trigger},
        },
    };

    fn answered(kind: SurveyKind, score: Option<i32>, category: NpsCategory) -> Envelope {
        banso_events::envelope::new(
            "acme",
            "feedback",
            Payload::SurveyAnswered(ev::SurveyAnswered {
                answer_id: Uuid::now_v7().to_string(),
                survey_id: Uuid::now_v7().to_string(),
                kind: kind as i32,
                account_id: Uuid::now_v7().to_string(),
                contact_id: Uuid::now_v7().to_string(),
                score,
                nps_category: category as i32,
                comment: "too slow to reach support".into(),
                answer_time: Some(pbjson_types::Timestamp { seconds: 1_800_000_000, nanos: 0 }),
                ..Default::default()
            }),
        )
    }

    /// The condition's result on an event, as the engine evaluates it.
    fn holds(condition: &str, env: &Envelope) -> std::result::Result<bool, String> {
        let c = compile(condition).unwrap().unwrap();
        let facts =
            banso_cel::PlaybookFacts { event: event_facts(Some(env)), ..Default::default() }.into_facts(wire::now());
        c.evaluate_bool(&facts).map_err(|e| e.to_string())
    }

    #[test]
    fn a_survey_answer_is_a_trigger_of_its_type_about_its_account() {
        let env = answered(SurveyKind::Nps, Some(3), NpsCategory::Detractor);
        let s = signal(&env, None);
        assert_eq!(s.event_type, "survey_answered");
        assert!(s.event_index.is_some(), "survey_answered is in EVENT_TYPES");
        let Some(Payload::SurveyAnswered(e)) = &env.payload else { panic!("not an answer") };
        assert_eq!(s.account_id.map(|a| a.to_string()), Some(e.account_id.clone()));
        let t = EventTrigger {
            event_type: "survey_answered".into(),
            band_became: None,
            score_fell_by: None,
            measure_dropped: None,
            stage_entered: None,
        };
        assert!(triggers(&t, &s));
        assert!(!triggers(&EventTrigger { event_type: "health_score_changed".into(), ..t.clone() }, &s));
        // Health's helpers are not for answers.
        let def = Definition {
            display_name: "Detractor".into(),
            description: String::new(),
            trigger: Trigger::Event(EventTrigger { band_became: Some(Band::Red), ..t }),
            audience: Default::default(),
            condition: String::new(),
            actions: vec![],
            cooldown_secs: 0,
            enrolment_limit: None,
            priority: 0,
            routing: Default::default(),
        };
        let problems = def.problems();
        assert!(problems.iter().any(|(f, _)| f == "playbook.trigger.event.band_became"), "{problems:?}");
    }

    #[test]
    fn a_detractor_condition_reads_the_category_kind_and_score_by_name() {
        let detractor = answered(SurveyKind::Nps, Some(3), NpsCategory::Detractor);
        let promoter = answered(SurveyKind::Nps, Some(10), NpsCategory::Promoter);
        let custom = answered(SurveyKind::Custom, None, NpsCategory::Unspecified);
        let is_detractor = "event.data.nps_category == 'NPS_CATEGORY_DETRACTOR'";
        assert_eq!(holds(is_detractor, &detractor), Ok(true));
        assert_eq!(holds(is_detractor, &promoter), Ok(false));
        assert_eq!(holds(is_detractor, &custom), Ok(false));
        let low_nps = "event.data.kind == 'SURVEY_KIND_NPS' && event.data.score <= 6";
        assert_eq!(holds(low_nps, &detractor), Ok(true));
        assert_eq!(holds(low_nps, &promoter), Ok(false));
        assert_eq!(holds("event.type == 'survey_answered' && event.data.comment != ''", &detractor), Ok(true));
        assert_eq!(holds("event.data.answer_time == '2027-01-15T08:00:00Z'", &detractor), Ok(true));
        // Without a score (a CUSTOM survey) the field is absent: `has`
        // says so, and reading it is an error (no match).
        assert_eq!(holds("has(event.data.score)", &custom), Ok(false));
        assert_eq!(holds("has(event.data.perception_agreement)", &detractor), Ok(false));
        assert!(holds("event.data.score <= 6", &custom).is_err());
        assert_eq!(holds("event.data.nps_category == 'NPS_CATEGORY_UNSPECIFIED'", &custom), Ok(true));
    }
}
