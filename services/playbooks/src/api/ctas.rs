//! Calls to action on the wire.

use banso_kit::{Result, Violations, auth::Caller, etag, field_paths, fieldmask, paging::QueryKey, wire};
use banso_proto::playbooks as pb;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::playbooks::priority;
use crate::{
    app::{CloseCta, CreateCta, UpdateCta},
    domain::cta::{Cta, CtaType, Outcome, Status},
    store::ctas::{CtaOrder, Filter},
};

field_paths! {
    /// What UpdateCallToAction may change.
    pub(crate) enum CtaField {
        OwnerId = "owner_id",
        DueDate = "due_date",
        Priority = "priority",
        Status = "status",
        Title = "title",
        Description = "description",
        Tasks = "tasks",
    }
}

pub(crate) fn type_proto(t: CtaType) -> pb::CtaType {
    match t {
        CtaType::Risk => pb::CtaType::Risk,
        CtaType::Opportunity => pb::CtaType::Opportunity,
        CtaType::Lifecycle => pb::CtaType::Lifecycle,
        CtaType::Objective => pb::CtaType::Objective,
    }
}

fn type_from(raw: i32) -> Option<CtaType> {
    match pb::CtaType::try_from(raw).ok()? {
        pb::CtaType::Risk => Some(CtaType::Risk),
        pb::CtaType::Opportunity => Some(CtaType::Opportunity),
        pb::CtaType::Lifecycle => Some(CtaType::Lifecycle),
        pb::CtaType::Objective => Some(CtaType::Objective),
        pb::CtaType::Unspecified => None,
    }
}

fn status_proto(s: Status) -> pb::CtaStatus {
    match s {
        Status::Open => pb::CtaStatus::Open,
        Status::InProgress => pb::CtaStatus::InProgress,
        Status::Snoozed => pb::CtaStatus::Snoozed,
        Status::Closed => pb::CtaStatus::Closed,
    }
}

fn status_from(raw: i32) -> Option<Status> {
    match pb::CtaStatus::try_from(raw).ok()? {
        pb::CtaStatus::Open => Some(Status::Open),
        pb::CtaStatus::InProgress => Some(Status::InProgress),
        pb::CtaStatus::Snoozed => Some(Status::Snoozed),
        pb::CtaStatus::Closed => Some(Status::Closed),
        pb::CtaStatus::Unspecified => None,
    }
}

fn outcome_proto(o: Option<Outcome>) -> pb::CtaOutcome {
    match o {
        None => pb::CtaOutcome::Unspecified,
        Some(Outcome::Resolved) => pb::CtaOutcome::Resolved,
        Some(Outcome::NotNeeded) => pb::CtaOutcome::NotNeeded,
        Some(Outcome::Lost) => pb::CtaOutcome::Lost,
    }
}

/// A CTA as a reader sees it at `now` (a snoozed one whose time has come is open).
pub(crate) fn to_proto(c: &Cta, now: DateTime<Utc>) -> pb::CallToAction {
    let status = c.effective_status(now);
    pb::CallToAction {
        id: c.id.to_string(),
        account_id: c.account_id.to_string(),
        r#type: type_proto(c.cta_type) as i32,
        priority: c.priority.rank(),
        status: status_proto(status) as i32,
        title: c.title.clone(),
        description: c.description.clone(),
        owner_id: c.owner_id.clone(),
        due_date: c.due_date.map(wire::date_to_proto),
        tasks: c
            .tasks
            .iter()
            .map(|t| pb::CtaTask {
                id: t.id.clone(),
                title: t.title.clone(),
                done: t.done,
                done_time: t.done_time.map(wire::timestamp),
            })
            .collect(),
        reasons: c
            .reasons
            .iter()
            .map(|r| pb::CtaReason {
                time: Some(wire::timestamp(r.time)),
                text: r.text.clone(),
                playbook_id: r.playbook_id.map(|p| p.to_string()).unwrap_or_default(),
                trigger_event_id: r.trigger_event_id.clone().unwrap_or_default(),
            })
            .collect(),
        playbook_id: c.playbook_id.map(|p| p.to_string()).unwrap_or_default(),
        playbook_version: c.playbook_version,
        snooze_until: if status == Status::Snoozed { c.snooze_until.map(wire::timestamp) } else { None },
        outcome: outcome_proto(c.outcome) as i32,
        close_note: c.close_note.clone(),
        create_time: Some(wire::timestamp(c.create_time)),
        update_time: Some(wire::timestamp(c.update_time)),
        close_time: c.close_time.map(wire::timestamp),
        etag: etag::of(c.version),
    }
}

fn required_type(v: &mut Violations, field: &str, raw: i32) -> Option<CtaType> {
    let t = type_from(raw);
    if t.is_none() {
        let what = if raw == 0 { "is required".to_string() } else { format!("{raw} is not a cta type") };
        v.add(
            field,
            format!("{what}: use CTA_TYPE_RISK, CTA_TYPE_OPPORTUNITY, CTA_TYPE_LIFECYCLE or CTA_TYPE_OBJECTIVE"),
        );
    }
    t
}

fn task_titles(v: &mut Violations, field: &str, tasks: &[pb::CtaTask]) -> Vec<String> {
    if tasks.len() > crate::app::MAX_TASKS {
        v.add(field, format!("at most {} tasks, got {}", crate::app::MAX_TASKS, tasks.len()));
    }
    tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            wire::required_text(v, &format!("{field}[{i}].title"), &t.title, 200);
            t.title.trim().to_string()
        })
        .collect()
}

pub(crate) fn create(r: pb::CreateCallToActionRequest) -> Result<CreateCta> {
    let mut v = Violations::new();
    let request_id = wire::request_id(&mut v, &r.request_id);
    let Some(c) = r.cta else {
        v.add("cta", "is required");
        return Err(v.finish().err().unwrap_or_else(|| banso_kit::Error::invalid("cta", "is required")));
    };
    let account_id = v.take(wire::uuid("cta.account_id", &c.account_id));
    let cta_type = required_type(&mut v, "cta.type", c.r#type);
    let priority = priority(&mut v, "cta.priority", c.priority);
    wire::required_text(&mut v, "cta.title", &c.title, 200);
    wire::multiline_text(&mut v, "cta.description", &c.description, 20_000);
    wire::text(&mut v, "cta.owner_id", &c.owner_id, 128);
    let due_date = wire::optional_date(&mut v, "cta.due_date", c.due_date.as_ref());
    let tasks = task_titles(&mut v, "cta.tasks", &c.tasks);
    let (account_id, cta_type, priority) = v.finish_with((account_id, cta_type, priority))?;
    Ok(CreateCta {
        request_id,
        account_id,
        cta_type,
        priority,
        title: c.title.trim().to_string(),
        description: c.description,
        owner_id: (!c.owner_id.is_empty()).then_some(c.owner_id),
        due_date,
        tasks,
    })
}

pub(crate) fn update(r: pb::UpdateCallToActionRequest) -> Result<UpdateCta> {
    let mut v = Violations::new();
    let mask = v.take(fieldmask::parse::<CtaField>("update_mask", r.update_mask.as_ref()));
    let c = wire::required(&mut v, "cta", r.cta.as_ref());
    let id = c.and_then(|c| v.take(wire::uuid("cta.id", &c.id)));
    let etag = c.and_then(|c| v.take(etag::parse("cta.etag", &c.etag)));
    let mut cmd = UpdateCta::default();
    if let (Some(c), Some(mask)) = (c, mask.as_ref()) {
        for f in mask {
            match f {
                CtaField::OwnerId => {
                    wire::text(&mut v, "cta.owner_id", &c.owner_id, 128);
                    cmd.owner_id = Some(c.owner_id.clone());
                }
                CtaField::DueDate => cmd.due_date = Some(wire::optional_date(&mut v, "cta.due_date", c.due_date.as_ref())),
                CtaField::Priority => cmd.priority = priority(&mut v, "cta.priority", c.priority),
                CtaField::Status => match status_from(c.status) {
                    Some(s @ (Status::Open | Status::InProgress)) => cmd.status = Some(s),
                    _ => v.add(
                        "cta.status",
                        format!(
                            "{} cannot be set here: use CTA_STATUS_OPEN or CTA_STATUS_IN_PROGRESS (SnoozeCallToAction and CloseCallToAction do the rest)",
                            c.status
                        ),
                    ),
                },
                CtaField::Title => {
                    wire::required_text(&mut v, "cta.title", &c.title, 200);
                    cmd.title = Some(c.title.trim().to_string());
                }
                CtaField::Description => {
                    wire::multiline_text(&mut v, "cta.description", &c.description, 20_000);
                    cmd.description = Some(c.description.clone());
                }
                CtaField::Tasks => {
                    let mut t = crate::app::TaskChanges::default();
                    if c.tasks.len() > crate::app::MAX_TASKS {
                        v.add("cta.tasks", format!("at most {} tasks, got {}", crate::app::MAX_TASKS, c.tasks.len()));
                    }
                    for (i, task) in c.tasks.iter().enumerate() {
                        if task.id.is_empty() {
                            wire::required_text(&mut v, &format!("cta.tasks[{i}].title"), &task.title, 200);
                            t.added.push(task.title.trim().to_string());
                        } else {
                            wire::text(&mut v, &format!("cta.tasks[{i}].id"), &task.id, 16);
                            t.done.push((task.id.clone(), task.done));
                        }
                    }
                    cmd.tasks = Some(t);
                }
            }
        }
    }
    let (id, etag) = v.finish_with((id, etag))?;
    cmd.id = id;
    cmd.etag = etag;
    Ok(cmd)
}

pub(crate) fn snooze(
    r: &pb::SnoozeCallToActionRequest,
    now: DateTime<Utc>,
) -> Result<(Uuid, DateTime<Utc>, Option<i64>)> {
    let mut v = Violations::new();
    let id = v.take(wire::uuid("id", &r.id));
    let until = match r.until.as_ref() {
        None => {
            v.add("until", "is required");
            None
        }
        Some(t) => v.take(wire::time("until", t)).filter(|t| {
            let ok = *t > now && *t <= now + chrono::Duration::days(366);
            if !ok {
                v.add("until", format!("must be in the future and at most a year ahead, got {}", t.to_rfc3339()));
            }
            ok
        }),
    };
    let etag = v.take(etag::parse("etag", &r.etag));
    v.finish_with((id, until, etag))
}

pub(crate) fn close(r: pb::CloseCallToActionRequest) -> Result<CloseCta> {
    let mut v = Violations::new();
    let id = v.take(wire::uuid("id", &r.id));
    let outcome = match pb::CtaOutcome::try_from(r.outcome) {
        Ok(pb::CtaOutcome::Resolved) => Some(Outcome::Resolved),
        Ok(pb::CtaOutcome::NotNeeded) => Some(Outcome::NotNeeded),
        Ok(pb::CtaOutcome::Lost) => Some(Outcome::Lost),
        _ => {
            v.add(
                "outcome",
                format!(
                    "{} is not an outcome: use CTA_OUTCOME_RESOLVED, CTA_OUTCOME_NOT_NEEDED or CTA_OUTCOME_LOST",
                    r.outcome
                ),
            );
            None
        }
    };
    wire::multiline_text(&mut v, "note", &r.note, 20_000);
    let etag = v.take(etag::parse("etag", &r.etag));
    let (id, outcome, etag) = v.finish_with((id, outcome, etag))?;
    Ok(CloseCta { id, etag, outcome, note: r.note })
}

/// A list's filter and order, and the key its page tokens are bound to.
pub(crate) fn query(
    caller: &Caller,
    method: &str,
    f: Option<&pb::CtaFilter>,
    order_by: &str,
) -> Result<(Filter, CtaOrder, QueryKey)> {
    let mut v = Violations::new();
    let mut filter = Filter::default();
    if let Some(f) = f {
        wire::text(&mut v, "filter.owner_id", &f.owner_id, 128);
        filter.owner_id = (!f.owner_id.is_empty()).then(|| f.owner_id.clone());
        for (i, s) in f.statuses.iter().enumerate() {
            match status_from(*s) {
                Some(s) => filter.statuses.push(s),
                None => v.add(format!("filter.statuses[{i}]"), format!("{s} is not a cta status")),
            }
        }
        for (i, t) in f.types.iter().enumerate() {
            match type_from(*t) {
                Some(t) => filter.types.push(t),
                None => v.add(format!("filter.types[{i}]"), format!("{t} is not a cta type")),
            }
        }
        if f.min_priority != 0 {
            filter.min_priority = priority(&mut v, "filter.min_priority", f.min_priority);
        }
        filter.due_before = wire::optional_date(&mut v, "filter.due_before", f.due_before.as_ref());
        filter.account_id = v.take(wire::optional_uuid("filter.account_id", &f.account_id)).flatten();
        filter.playbook_id = v.take(wire::optional_uuid("filter.playbook_id", &f.playbook_id)).flatten();
    }
    let order = match order_by.trim() {
        "" | "due_date" => CtaOrder::DueDate { desc: false },
        "due_date desc" => CtaOrder::DueDate { desc: true },
        "priority" | "priority desc" => CtaOrder::Priority,
        "create_time" => CtaOrder::CreateTime { desc: false },
        "create_time desc" => CtaOrder::CreateTime { desc: true },
        other => {
            v.add(
                "order_by",
                format!(
                    "{} is not an order; use due_date, due_date desc, priority, create_time or create_time desc",
                    banso_kit::shown(other)
                ),
            );
            CtaOrder::DueDate { desc: false }
        }
    };
    v.finish()?;
    let key = QueryKey::new(method, &caller.tenant_id)
        .part(serde_json::to_vec(&filter).unwrap_or_default())
        .part(serde_json::to_vec(&order).unwrap_or_default());
    Ok((filter, order, key))
}
