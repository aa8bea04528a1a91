//! Playbooks on the wire: parse a Playbook message into a definition (every
//! bad field at once), and back.

use banso_kit::{Result, Violations, field_paths, fieldmask, wire};
use banso_proto::{playbooks as pb, types as tpb};
use uuid::Uuid;

use crate::{
    app::engine,
    domain::{
        LifecycleStage, TouchModel,
        cta::{CtaType, Priority},
        playbook::{
            Action, ActionKind, Audience, Band, Definition, EVENT_TYPES, EnrolmentLimit, EventTrigger, Fields,
            MAX_ACCOUNT_CHANGES, MAX_COOLDOWN_SECS, MeasureDrop, OpenCta, OwnerRule, Playbook, Routing,
            ScheduleTrigger, Trigger, UpdateAccount,
        },
        template,
    },
};

field_paths! {
    /// What UpdatePlaybook may change.
    pub(crate) enum PlaybookField {
        DisplayName = "display_name",
        Description = "description",
        Trigger = "trigger",
        Audience = "audience",
        Condition = "condition",
        Actions = "actions",
        Cooldown = "cooldown",
        EnrolmentLimit = "enrolment_limit",
        Priority = "priority",
        TouchRouting = "touch_routing",
    }
}

pub(crate) const MAX_ACTIONS: usize = 20;

fn band(v: &mut Violations, field: &str, raw: i32) -> Option<Band> {
    match banso_proto::health::Band::try_from(raw) {
        Ok(banso_proto::health::Band::Unspecified) => None,
        Ok(banso_proto::health::Band::Red) => Some(Band::Red),
        Ok(banso_proto::health::Band::Yellow) => Some(Band::Yellow),
        Ok(banso_proto::health::Band::Green) => Some(Band::Green),
        Err(_) => {
            v.add(field, format!("{raw} is not a band; use BAND_RED, BAND_YELLOW or BAND_GREEN"));
            None
        }
    }
}

fn optional_stage(v: &mut Violations, field: &str, raw: i32) -> Option<LifecycleStage> {
    if raw == 0 { None } else { wire::lifecycle_stage(v, field, raw) }
}

fn touch_models(v: &mut Violations, field: &str, raw: &[i32]) -> Vec<TouchModel> {
    let mut out = Vec::new();
    for (i, m) in raw.iter().enumerate() {
        if let Some(t) = wire::touch_model(v, &format!("{field}[{i}]"), *m)
            && !out.contains(&t)
        {
            out.push(t);
        }
    }
    out
}

fn range_i32(v: &mut Violations, field: &str, x: i32, lo: i32, hi: i32) -> i32 {
    if !(lo..=hi).contains(&x) {
        v.add(field, format!("must be {lo} to {hi}, got {x}"));
    }
    x
}

fn template(v: &mut Violations, field: &str, t: &str, required: bool, max: usize) -> String {
    if required {
        wire::required_text(v, field, t, max);
    } else {
        wire::multiline_text(v, field, t, max);
    }
    if let Err(e) = template::check(t) {
        v.add(field, e);
    }
    t.to_string()
}

fn trigger(v: &mut Violations, t: Option<&pb::Trigger>) -> Option<Trigger> {
    use pb::{schedule_trigger::When, trigger::Kind};
    let Some(kind) = t.and_then(|t| t.kind.as_ref()) else {
        v.add("playbook.trigger", "is required: one of event, schedule, manual");
        return None;
    };
    match kind {
        Kind::Event(e) => {
            let f = "playbook.trigger.event";
            if !EVENT_TYPES.contains(&e.event_type.as_str()) {
                v.add(
                    format!("{f}.event_type"),
                    format!(
                        "{} is not a trigger event; use one of {}",
                        banso_kit::shown(&e.event_type),
                        EVENT_TYPES.join(", ")
                    ),
                );
            }
            let score_fell_by = e.score_fell_by.filter(|x| {
                let ok = x.is_finite() && *x > 0.0 && *x <= 100.0;
                if !ok {
                    v.add(format!("{f}.score_fell_by"), format!("must be more than 0 and at most 100, got {x}"));
                }
                ok
            });
            let measure_dropped = e.measure_dropped.as_ref().and_then(|m| {
                let mut ok = true;
                if m.measure.trim().is_empty() || m.measure.chars().count() > 128 {
                    v.add(
                        format!("{f}.measure_dropped.measure"),
                        "is required: a measure id of at most 128 characters",
                    );
                    ok = false;
                }
                if !(m.percent.is_finite() && m.percent > 0.0 && m.percent <= 100.0) {
                    v.add(
                        format!("{f}.measure_dropped.percent"),
                        format!("must be more than 0 and at most 100, got {}", m.percent),
                    );
                    ok = false;
                }
                ok.then(|| MeasureDrop { measure: m.measure.clone(), percent: m.percent })
            });
            Some(Trigger::Event(EventTrigger {
                event_type: e.event_type.clone(),
                band_became: band(v, &format!("{f}.band_became"), e.band_became),
                score_fell_by,
                measure_dropped,
                stage_entered: optional_stage(v, &format!("{f}.stage_entered"), e.stage_entered),
            }))
        }
        Kind::Schedule(s) => {
            let f = "playbook.trigger.schedule";
            match s.when {
                Some(When::RenewalWithinDays(n)) => Some(Trigger::Schedule(ScheduleTrigger::RenewalWithinDays(
                    range_i32(v, &format!("{f}.renewal_within_days"), n, 1, 730),
                ))),
                Some(When::NoUsageForDays(n)) => Some(Trigger::Schedule(ScheduleTrigger::NoUsageForDays(range_i32(
                    v,
                    &format!("{f}.no_usage_for_days"),
                    n,
                    1,
                    730,
                )))),
                Some(When::DaysInStage(n)) => Some(Trigger::Schedule(ScheduleTrigger::DaysInStage(range_i32(
                    v,
                    &format!("{f}.days_in_stage"),
                    n,
                    1,
                    3650,
                )))),
                Some(When::CheckpointOverdueDays(n)) => {
                    Some(Trigger::Schedule(ScheduleTrigger::CheckpointOverdueDays(range_i32(
                        v,
                        &format!("{f}.checkpoint_overdue_days"),
                        n,
                        0,
                        365,
                    ))))
                }
                Some(When::CheckpointOffTrack(set)) => {
                    if !set {
                        v.add(format!("{f}.checkpoint_off_track"), "must be true when chosen");
                    }
                    Some(Trigger::Schedule(ScheduleTrigger::CheckpointOffTrack))
                }
                Some(When::ProxyWorkOverdue(set)) => {
                    if !set {
                        v.add(format!("{f}.proxy_work_overdue"), "must be true when chosen");
                    }
                    Some(Trigger::Schedule(ScheduleTrigger::ProxyWorkOverdue))
                }
                Some(When::PlanStalledDays(n)) => Some(Trigger::Schedule(ScheduleTrigger::PlanStalledDays(range_i32(
                    v,
                    &format!("{f}.plan_stalled_days"),
                    n,
                    1,
                    3650,
                )))),
                None => {
                    v.add(
                        f,
                        "needs one of renewal_within_days, no_usage_for_days, days_in_stage, checkpoint_overdue_days, \
                         checkpoint_off_track, proxy_work_overdue, plan_stalled_days",
                    );
                    None
                }
            }
        }
        Kind::Manual(_) => Some(Trigger::Manual),
    }
}

fn audience(v: &mut Violations, a: Option<&pb::Audience>) -> Audience {
    let Some(a) = a else { return Audience::default() };
    let f = "playbook.audience";
    if a.segment_ids.len() > 20 {
        v.add(format!("{f}.segment_ids"), format!("at most 20 segments, got {}", a.segment_ids.len()));
    }
    let segment_ids = a
        .segment_ids
        .iter()
        .enumerate()
        .filter_map(|(i, s)| v.take(wire::uuid(&format!("{f}.segment_ids[{i}]"), s)))
        .collect();
    let mut lifecycle_stages = Vec::new();
    for (i, s) in a.lifecycle_stages.iter().enumerate() {
        if let Some(st) = wire::lifecycle_stage(v, &format!("{f}.lifecycle_stages[{i}]"), *s)
            && !lifecycle_stages.contains(&st)
        {
            lifecycle_stages.push(st);
        }
    }
    Audience {
        segment_ids,
        touch_models: touch_models(v, &format!("{f}.touch_models"), &a.touch_models),
        lifecycle_stages,
    }
}

fn cta_type(v: &mut Violations, field: &str, raw: i32) -> Option<CtaType> {
    let t = match pb::CtaType::try_from(raw) {
        Ok(pb::CtaType::Risk) => Some(CtaType::Risk),
        Ok(pb::CtaType::Opportunity) => Some(CtaType::Opportunity),
        Ok(pb::CtaType::Lifecycle) => Some(CtaType::Lifecycle),
        Ok(pb::CtaType::Objective) => Some(CtaType::Objective),
        _ => None,
    };
    if t.is_none() {
        let what = if raw == 0 { "is required".to_string() } else { format!("{raw} is not a cta type") };
        v.add(
            field,
            format!("{what}: use CTA_TYPE_RISK, CTA_TYPE_OPPORTUNITY, CTA_TYPE_LIFECYCLE or CTA_TYPE_OBJECTIVE"),
        );
    }
    t
}

pub(crate) fn priority(v: &mut Violations, field: &str, raw: i32) -> Option<Priority> {
    let p = Priority::from_rank(raw);
    if p.is_none() {
        let what = if raw == 0 { "is required".to_string() } else { format!("{raw} is not a priority") };
        v.add(
            field,
            format!("{what}: use CTA_PRIORITY_LOW, CTA_PRIORITY_MEDIUM, CTA_PRIORITY_HIGH or CTA_PRIORITY_CRITICAL"),
        );
    }
    p
}

fn user_id(v: &mut Violations, field: &str, s: &str) -> String {
    wire::required_text(v, field, s, 128);
    s.to_string()
}

fn open_cta(v: &mut Violations, f: &str, c: &pb::OpenCtaAction) -> Option<OpenCta> {
    use pb::owner_rule::Rule;
    let cta_type = cta_type(v, &format!("{f}.type"), c.r#type);
    let priority = priority(v, &format!("{f}.priority"), c.priority);
    let title = template(v, &format!("{f}.title_template"), &c.title_template, true, 200);
    let description = template(v, &format!("{f}.description_template"), &c.description_template, false, 20_000);
    let owner = match c.owner.as_ref().and_then(|o| o.rule.as_ref()) {
        None | Some(Rule::AccountOwner(_)) => OwnerRule::AccountOwner,
        Some(Rule::UserId(u)) => OwnerRule::User(user_id(v, &format!("{f}.owner.user_id"), u)),
        Some(Rule::RoundRobin(r)) => {
            let field = format!("{f}.owner.round_robin.user_ids");
            if r.user_ids.is_empty() || r.user_ids.len() > 100 {
                v.add(&field, format!("must name 1 to 100 users, got {}", r.user_ids.len()));
            }
            OwnerRule::RoundRobin(
                r.user_ids.iter().enumerate().map(|(i, u)| user_id(v, &format!("{field}[{i}]"), u)).collect(),
            )
        }
    };
    let due = range_i32(v, &format!("{f}.due_in_days"), c.due_in_days, 0, 365);
    if c.task_titles.len() > 50 {
        v.add(format!("{f}.task_titles"), format!("at most 50 tasks, got {}", c.task_titles.len()));
    }
    for (i, t) in c.task_titles.iter().enumerate() {
        wire::required_text(v, &format!("{f}.task_titles[{i}]"), t, 200);
    }
    Some(OpenCta {
        cta_type: cta_type?,
        priority: priority?,
        title,
        description,
        owner,
        due_in_days: due.max(0) as u32,
        tasks: c.task_titles.clone(),
    })
}

/// An update_account action: Accounts' own rules for tags and attribute
/// names, checked here so a playbook cannot be saved with a change Accounts
/// would refuse at every firing.
fn update_account(v: &mut Violations, f: &str, u: &pb::UpdateAccountAction) -> Option<UpdateAccount> {
    let clean = v.is_empty();
    let lifecycle_stage = match u.lifecycle_stage {
        0 => None,
        raw => wire::lifecycle_stage(v, &format!("{f}.lifecycle_stage"), raw),
    };
    let add_tags = wire::tags(v, &format!("{f}.add_tags"), &u.add_tags, MAX_ACCOUNT_CHANGES);
    let remove_tags = wire::tags(v, &format!("{f}.remove_tags"), &u.remove_tags, MAX_ACCOUNT_CHANGES);
    for (i, t) in u.add_tags.iter().enumerate() {
        if remove_tags.iter().any(|r| r == t.trim()) {
            v.add(format!("{f}.add_tags[{i}]"), format!("{} is also in remove_tags", banso_kit::shown(t)));
        }
    }
    if u.set_attributes.len() > MAX_ACCOUNT_CHANGES {
        v.add(
            format!("{f}.set_attributes"),
            format!("at most {MAX_ACCOUNT_CHANGES} attributes, got {}", u.set_attributes.len()),
        );
    }
    let mut set_attributes = std::collections::BTreeMap::new();
    for (name, value) in &u.set_attributes {
        let field = format!("{f}.set_attributes[{}]", banso_kit::shown(name));
        if !wire::attribute_name(name) {
            v.add(&field, format!("{} is not an attribute name ([a-z][a-z0-9_]{{0,63}})", banso_kit::shown(name)));
            continue;
        }
        if wire::attribute_value(v, &field, value) {
            match serde_json::to_value(value) {
                Ok(json) => {
                    set_attributes.insert(name.clone(), json);
                }
                Err(e) => v.add(&field, format!("cannot be stored: {e}")),
            }
        }
    }
    if lifecycle_stage.is_none() && add_tags.is_empty() && remove_tags.is_empty() && u.set_attributes.is_empty() {
        v.add(f, "changes nothing: set lifecycle_stage, add_tags, remove_tags or set_attributes");
    }
    // Every action is parsed before the violations are read: an action adds
    // its value only while none has been found.
    (clean && v.is_empty()).then_some(UpdateAccount { lifecycle_stage, add_tags, remove_tags, set_attributes })
}

fn actions(v: &mut Violations, list: &[pb::Action]) -> Vec<Action> {
    use pb::action::Kind;
    if list.is_empty() || list.len() > MAX_ACTIONS {
        v.add("playbook.actions", format!("must hold 1 to {MAX_ACTIONS} actions, got {}", list.len()));
    }
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let f = format!("playbook.actions[{i}]");
        let models = touch_models(v, &format!("{f}.touch_models"), &a.touch_models);
        let kind = match &a.kind {
            None => {
                v.add(&f, "needs one of open_cta, send_outreach, enrol, update_account, start_success_plan, propose_success_model");
                None
            }
            Some(Kind::OpenCta(c)) => open_cta(v, &format!("{f}.open_cta"), c).map(ActionKind::OpenCta),
            Some(Kind::SendOutreach(o)) => {
                super::outreach::send_outreach(v, &format!("{f}.send_outreach"), o).map(ActionKind::SendOutreach)
            }
            Some(Kind::Enrol(e)) => v
                .take(wire::uuid(&format!("{f}.enrol.programme_id"), &e.programme_id))
                .map(|programme_id| ActionKind::Enrol { programme_id }),
            Some(Kind::UpdateAccount(u)) => {
                update_account(v, &format!("{f}.update_account"), u).map(ActionKind::UpdateAccount)
            }
            Some(Kind::StartSuccessPlan(s)) => v
                .take(wire::uuid(&format!("{f}.start_success_plan.template_id"), &s.template_id))
                .map(|template_id| ActionKind::StartSuccessPlan { template_id }),
            Some(Kind::ProposeSuccessModel(s)) => v
                .take(wire::uuid(&format!("{f}.propose_success_model.model_id"), &s.model_id))
                .map(|model_id| ActionKind::ProposeSuccessModel { model_id }),
        };
        if let Some(kind) = kind {
            out.push(Action { touch_models: models, kind });
        }
    }
    out
}

fn cooldown(v: &mut Violations, d: Option<&pbjson_types::Duration>) -> i64 {
    let Some(d) = d else { return 0 };
    if d.seconds < 0 || d.nanos < 0 || d.seconds > MAX_COOLDOWN_SECS {
        v.add("playbook.cooldown", format!("must be 0 to 365 days, got {}s", d.seconds));
        return 0;
    }
    // Whole seconds: a firing's time is kept to the second in effect.
    d.seconds + i64::from(d.nanos > 0)
}

fn enrolment_limit(v: &mut Violations, l: Option<&pb::EnrolmentLimit>) -> Option<EnrolmentLimit> {
    use pb::enrolment_limit::Limit;
    match l.and_then(|l| l.limit.as_ref())? {
        Limit::OncePerAccount(true) => Some(EnrolmentLimit::OncePerAccount),
        Limit::OncePerAccount(false) => {
            v.add(
                "playbook.enrolment_limit.once_per_account",
                "must be true when set; leave enrolment_limit unset for no limit",
            );
            None
        }
        Limit::Rolling(r) => {
            let f = "playbook.enrolment_limit.rolling";
            let times = range_i32(v, &format!("{f}.times"), r.times, 1, 1000);
            let days = range_i32(v, &format!("{f}.days"), r.days, 1, 3650);
            Some(EnrolmentLimit::Rolling { times: times.max(1) as u32, days: days.max(1) as u32 })
        }
    }
}

fn routing(v: &mut Violations, raw: i32) -> Routing {
    match pb::TouchRouting::try_from(raw) {
        Ok(pb::TouchRouting::Unspecified | pb::TouchRouting::Dominant) => Routing::Dominant,
        Ok(pb::TouchRouting::Blend) => Routing::Blend,
        Err(_) => {
            v.add(
                "playbook.touch_routing",
                format!("{raw} is not a touch routing; use TOUCH_ROUTING_DOMINANT or TOUCH_ROUTING_BLEND"),
            );
            Routing::Dominant
        }
    }
}

/// The fields of `p` the mask names, each parsed.
fn fields(v: &mut Violations, p: &pb::Playbook, mask: &[PlaybookField]) -> Fields {
    let mut f = Fields::default();
    for field in mask {
        match field {
            PlaybookField::DisplayName => {
                wire::required_text(v, "playbook.display_name", &p.display_name, 200);
                f.display_name = Some(p.display_name.trim().to_string());
            }
            PlaybookField::Description => {
                wire::multiline_text(v, "playbook.description", &p.description, 2000);
                f.description = Some(p.description.clone());
            }
            PlaybookField::Trigger => f.trigger = trigger(v, p.trigger.as_ref()),
            PlaybookField::Audience => f.audience = Some(audience(v, p.audience.as_ref())),
            PlaybookField::Condition => {
                if let Err(e) = engine::compile(&p.condition) {
                    v.add("playbook.condition", e.to_string());
                }
                f.condition = Some(p.condition.clone());
            }
            PlaybookField::Actions => f.actions = Some(actions(v, &p.actions)),
            PlaybookField::Cooldown => f.cooldown_secs = Some(cooldown(v, p.cooldown.as_ref())),
            PlaybookField::EnrolmentLimit => f.enrolment_limit = Some(enrolment_limit(v, p.enrolment_limit.as_ref())),
            PlaybookField::Priority => f.priority = Some(range_i32(v, "playbook.priority", p.priority, 0, 100)),
            PlaybookField::TouchRouting => f.routing = Some(routing(v, p.touch_routing)),
        }
    }
    f
}

/// A new playbook's definition, or every bad field.
pub(crate) fn definition(p: Option<&pb::Playbook>) -> Result<Definition> {
    let mut v = Violations::new();
    let p = wire::required(&mut v, "playbook", p);
    let f = p.map(|p| fields(&mut v, p, PlaybookField::ALL_FIELDS));
    let f = v.finish_with(f)?;
    let mut d = Definition {
        display_name: String::new(),
        description: String::new(),
        trigger: Trigger::Manual,
        audience: Audience::default(),
        condition: String::new(),
        actions: vec![],
        cooldown_secs: 0,
        enrolment_limit: None,
        priority: 0,
        routing: Routing::Dominant,
    };
    d.apply(&f);
    consistent(&d)?;
    Ok(d)
}

/// The rules that join fields (domain), as field violations.
pub(crate) fn consistent(d: &Definition) -> Result<()> {
    let mut v = Violations::new();
    for (field, problem) in d.problems() {
        v.add(field, problem);
    }
    v.finish()
}

impl PlaybookField {
    const ALL_FIELDS: &'static [PlaybookField] = <PlaybookField as fieldmask::FieldPath>::ALL;
}

/// An update: the id, the etag, and the masked fields (valid each alone).
pub(crate) fn update(r: &pb::UpdatePlaybookRequest) -> Result<(Uuid, Option<i64>, Fields)> {
    let mut v = Violations::new();
    let mask = v.take(fieldmask::parse::<PlaybookField>("update_mask", r.update_mask.as_ref()));
    let p = wire::required(&mut v, "playbook", r.playbook.as_ref());
    let id = p.and_then(|p| v.take(wire::uuid("playbook.id", &p.id)));
    let etag = p.and_then(|p| v.take(banso_kit::etag::parse("playbook.etag", &p.etag)));
    let f = p.map(|p| fields(&mut v, p, mask.as_deref().unwrap_or_default()));
    let (id, etag, f) = v.finish_with((id, etag, f))?;
    Ok((id, etag, f))
}

fn stage_proto(s: Option<LifecycleStage>) -> i32 {
    s.map(|s| s.to_proto() as i32).unwrap_or(0)
}

fn band_proto(b: Option<Band>) -> i32 {
    (match b {
        None => banso_proto::health::Band::Unspecified,
        Some(Band::Red) => banso_proto::health::Band::Red,
        Some(Band::Yellow) => banso_proto::health::Band::Yellow,
        Some(Band::Green) => banso_proto::health::Band::Green,
    }) as i32
}

fn models_proto(m: &[TouchModel]) -> Vec<i32> {
    m.iter().map(|m| m.to_proto() as i32).collect()
}

fn action_proto(a: &Action) -> pb::Action {
    use pb::{action::Kind, owner_rule::Rule};
    let kind = match &a.kind {
        ActionKind::OpenCta(c) => Kind::OpenCta(pb::OpenCtaAction {
            r#type: super::ctas::type_proto(c.cta_type) as i32,
            priority: c.priority.rank(),
            title_template: c.title.clone(),
            description_template: c.description.clone(),
            owner: Some(pb::OwnerRule {
                rule: Some(match &c.owner {
                    OwnerRule::AccountOwner => Rule::AccountOwner(true),
                    OwnerRule::User(u) => Rule::UserId(u.clone()),
                    OwnerRule::RoundRobin(u) => Rule::RoundRobin(pb::RoundRobin { user_ids: u.clone() }),
                }),
            }),
            due_in_days: c.due_in_days as i32,
            task_titles: c.tasks.clone(),
        }),
        ActionKind::SendOutreach(o) => Kind::SendOutreach(pb::SendOutreachAction {
            endpoint_id: o.endpoint_id.to_string(),
            subject_template: o.subject.clone(),
            body_template: o.body.clone(),
            contact_roles: o.contact_roles.clone(),
        }),
        ActionKind::Enrol { programme_id } => Kind::Enrol(pb::EnrolAction { programme_id: programme_id.to_string() }),
        ActionKind::StartSuccessPlan { template_id } => {
            Kind::StartSuccessPlan(pb::StartSuccessPlanAction { template_id: template_id.to_string() })
        }
        ActionKind::ProposeSuccessModel { model_id } => {
            Kind::ProposeSuccessModel(pb::ProposeSuccessModelAction { model_id: model_id.to_string() })
        }
        ActionKind::UpdateAccount(u) => Kind::UpdateAccount(pb::UpdateAccountAction {
            lifecycle_stage: stage_proto(u.lifecycle_stage),
            add_tags: u.add_tags.clone(),
            remove_tags: u.remove_tags.clone(),
            set_attributes: u
                .set_attributes
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), serde_json::from_value::<tpb::AttributeValue>(v.clone()).ok()?)))
                .collect(),
        }),
    };
    pb::Action { touch_models: models_proto(&a.touch_models), kind: Some(kind) }
}

pub(crate) fn to_proto(p: &Playbook) -> pb::Playbook {
    use pb::{enrolment_limit::Limit, schedule_trigger::When, trigger::Kind};
    let d = &p.definition;
    let trigger = match &d.trigger {
        Trigger::Event(e) => Kind::Event(pb::EventTrigger {
            event_type: e.event_type.clone(),
            band_became: band_proto(e.band_became),
            score_fell_by: e.score_fell_by,
            measure_dropped: e
                .measure_dropped
                .as_ref()
                .map(|m| pb::MeasureDrop { measure: m.measure.clone(), percent: m.percent }),
            stage_entered: stage_proto(e.stage_entered),
        }),
        Trigger::Schedule(s) => Kind::Schedule(pb::ScheduleTrigger {
            when: Some(match s {
                ScheduleTrigger::RenewalWithinDays(n) => When::RenewalWithinDays(*n),
                ScheduleTrigger::NoUsageForDays(n) => When::NoUsageForDays(*n),
                ScheduleTrigger::DaysInStage(n) => When::DaysInStage(*n),
                ScheduleTrigger::CheckpointOverdueDays(n) => When::CheckpointOverdueDays(*n),
                ScheduleTrigger::CheckpointOffTrack => When::CheckpointOffTrack(true),
                ScheduleTrigger::ProxyWorkOverdue => When::ProxyWorkOverdue(true),
                ScheduleTrigger::PlanStalledDays(n) => When::PlanStalledDays(*n),
            }),
        }),
        Trigger::Manual => Kind::Manual(pb::ManualTrigger {}),
    };
    pb::Playbook {
        id: p.id.to_string(),
        display_name: d.display_name.clone(),
        description: d.description.clone(),
        trigger: Some(pb::Trigger { kind: Some(trigger) }),
        audience: Some(pb::Audience {
            segment_ids: d.audience.segment_ids.iter().map(Uuid::to_string).collect(),
            touch_models: models_proto(&d.audience.touch_models),
            lifecycle_stages: d.audience.lifecycle_stages.iter().map(|s| s.to_proto() as i32).collect(),
        }),
        condition: d.condition.clone(),
        actions: d.actions.iter().map(action_proto).collect(),
        cooldown: Some(pbjson_types::Duration { seconds: d.cooldown_secs, nanos: 0 }),
        enrolment_limit: d.enrolment_limit.map(|l| pb::EnrolmentLimit {
            limit: Some(match l {
                EnrolmentLimit::OncePerAccount => Limit::OncePerAccount(true),
                EnrolmentLimit::Rolling { times, days } => {
                    Limit::Rolling(pb::RollingLimit { times: times as i32, days: days as i32 })
                }
            }),
        }),
        priority: d.priority,
        touch_routing: (match d.routing {
            Routing::Dominant => pb::TouchRouting::Dominant,
            Routing::Blend => pb::TouchRouting::Blend,
        }) as i32,
        version: p.version,
        live_version: p.live_version,
        head_version: p.head_version,
        create_time: Some(wire::timestamp(p.create_time)),
        update_time: Some(wire::timestamp(p.update_time)),
        etag: banso_kit::etag::of(p.row_version),
    }
}
