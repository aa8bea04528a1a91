//! Calls to action worked by people: created by hand, listed, updated,
//! snoozed and closed.

use banso_events::db::{Identified, RequestKey, Versioned, remembered};
use banso_kit::{Error, Result, auth::Caller, wire};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::App;
use crate::{
    domain::cta::{self, Cta, CtaType, Outcome, Priority, Reason, Status, Task},
    events,
    store::{
        self,
        ctas::{CtaOrder, Cursor, Filter},
    },
};

const OP_CREATE_CTA: &str = "CreateCallToAction";

impl Versioned for Cta {
    fn version(&self) -> i64 {
        self.version
    }

    fn advance(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.update_time = now;
    }
}

impl Identified for Cta {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

pub(crate) struct CreateCta {
    pub request_id: Option<String>,
    pub account_id: Uuid,
    pub cta_type: CtaType,
    pub priority: Priority,
    pub title: String,
    pub description: String,
    /// `None`: the caller.
    pub owner_id: Option<String>,
    pub due_date: Option<NaiveDate>,
    pub tasks: Vec<String>,
}

/// A change to a task list: mark tasks done (or not) by id, add new ones.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskChanges {
    pub done: Vec<(String, bool)>,
    pub added: Vec<String>,
}

/// UpdateCallToAction: each `Some` is a field of the mask.
#[derive(Debug, Clone, Default)]
pub(crate) struct UpdateCta {
    pub id: Uuid,
    pub etag: Option<i64>,
    pub owner_id: Option<String>,
    pub due_date: Option<Option<NaiveDate>>,
    pub priority: Option<Priority>,
    /// OPEN or IN_PROGRESS.
    pub status: Option<Status>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub tasks: Option<TaskChanges>,
}

pub(crate) struct CloseCta {
    pub id: Uuid,
    pub etag: Option<i64>,
    pub outcome: Outcome,
    pub note: String,
}

/// A list query.
pub(crate) struct CtaQuery {
    pub filter: Filter,
    pub order: CtaOrder,
    pub after: Option<Cursor>,
    pub limit: u64,
}

/// The fields of `next` that differ from `current`, by their proto names.
fn changed(current: &Cta, next: &Cta) -> Vec<&'static str> {
    let mut v = Vec::new();
    macro_rules! diff {
        ($($f:ident => $n:literal),+) => { $( if current.$f != next.$f { v.push($n); } )+ };
    }
    diff!(owner_id => "owner_id", due_date => "due_date", priority => "priority", status => "status",
          title => "title", description => "description", tasks => "tasks", snooze_until => "snooze_until");
    v
}

impl App {
    pub(crate) async fn create_cta(&self, caller: &Caller, cmd: CreateCta) -> Result<Cta> {
        let key = cmd.request_id.clone();
        let key = key.as_deref().map(|request_id| RequestKey { operation: OP_CREATE_CTA, request_id });
        let conn = self.db.conn();
        if store::projection::get(conn, &caller.tenant_id, cmd.account_id).await?.is_none() {
            return Err(Error::not_found("account", cmd.account_id.to_string()));
        }
        let scope = self.scope(&caller.tenant_id);
        let owner = cmd.owner_id.clone().unwrap_or_else(|| caller.subject.clone());
        let author = caller.subject.clone();
        self.db
            .create_once(
                &caller.tenant_id,
                key,
                async move |id| store::ctas::get(&scope.conn, &scope.tenant, remembered(id)?).await,
                async move |tx| {
                    let t = wire::now();
                    let c = Cta {
                        id: Uuid::now_v7(),
                        account_id: cmd.account_id,
                        playbook_id: None,
                        playbook_version: 0,
                        cta_type: cmd.cta_type,
                        priority: cmd.priority,
                        status: Status::Open,
                        reasons: vec![Reason {
                            time: t,
                            text: format!("created by {author}"),
                            playbook_id: None,
                            trigger_event_id: None,
                        }],
                        title: cmd.title,
                        description: cmd.description,
                        owner_id: owner,
                        due_date: cmd.due_date,
                        tasks: cta::tasks_from(&cmd.tasks),
                        snooze_until: None,
                        outcome: None,
                        close_note: String::new(),
                        create_time: t,
                        update_time: t,
                        close_time: None,
                        version: 1,
                    };
                    store::ctas::insert(tx.conn(), tx.tenant(), &c).await?;
                    tx.emit(events::cta_opened(&c)).await?;
                    Ok(c)
                },
            )
            .await
    }

    pub(crate) async fn get_cta(&self, caller: &Caller, id: Uuid) -> Result<Cta> {
        store::ctas::get(self.db.conn(), &caller.tenant_id, id).await
    }

    pub(crate) async fn list_ctas(&self, caller: &Caller, q: &CtaQuery) -> Result<Vec<Cta>> {
        store::ctas::list(self.db.conn(), &caller.tenant_id, &q.filter, q.order, q.after.as_ref(), q.limit, wire::now())
            .await
    }

    /// A versioned change of one CTA; `rule` may refuse.
    async fn change_cta(
        &self,
        caller: &Caller,
        id: Uuid,
        etag: Option<i64>,
        rule: impl Fn(&mut Cta) -> Result<()>,
    ) -> Result<Cta> {
        let s = self.scope(&caller.tenant_id);
        self.db
            .update_versioned(
                &caller.tenant_id,
                &format!("cta {id}"),
                etag,
                async move || store::ctas::get(&s.conn, &s.tenant, id).await,
                rule,
                async |tx, current, next| {
                    if !store::ctas::update(tx.conn(), tx.tenant(), current, next).await? {
                        return Ok(false);
                    }
                    if next.status == Status::Closed {
                        tx.emit(events::cta_closed(next)).await?;
                    } else {
                        tx.emit(events::cta_updated(next, &changed(current, next))).await?;
                    }
                    Ok(true)
                },
            )
            .await
    }

    pub(crate) async fn update_cta(&self, caller: &Caller, cmd: UpdateCta) -> Result<Cta> {
        let now = wire::now();
        self.change_cta(caller, cmd.id, cmd.etag, |c| {
            if c.status == Status::Closed {
                return Err(closed(c.id));
            }
            if let Some(o) = &cmd.owner_id {
                c.owner_id = o.clone();
            }
            if let Some(d) = cmd.due_date {
                c.due_date = d;
            }
            if let Some(p) = cmd.priority {
                c.priority = p;
            }
            if let Some(st) = cmd.status {
                c.status = st;
                c.snooze_until = None;
            }
            if let Some(t) = &cmd.title {
                c.title = t.clone();
            }
            if let Some(d) = &cmd.description {
                c.description = d.clone();
            }
            if let Some(t) = &cmd.tasks {
                apply_tasks(c, t, now)?;
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn snooze_cta(
        &self,
        caller: &Caller,
        id: Uuid,
        until: DateTime<Utc>,
        etag: Option<i64>,
    ) -> Result<Cta> {
        self.change_cta(caller, id, etag, |c| {
            if c.status == Status::Closed {
                return Err(closed(c.id));
            }
            c.status = Status::Snoozed;
            c.snooze_until = Some(until);
            Ok(())
        })
        .await
    }

    pub(crate) async fn close_cta(&self, caller: &Caller, cmd: CloseCta) -> Result<Cta> {
        let now = wire::now();
        self.change_cta(caller, cmd.id, cmd.etag, |c| {
            if c.status == Status::Closed {
                return Err(closed(c.id));
            }
            c.close(cmd.outcome, cmd.note.clone(), now);
            Ok(())
        })
        .await
    }
}

fn closed(id: Uuid) -> Error {
    Error::FailedPrecondition { reason: "CTA_CLOSED", message: format!("cta {id} is closed") }
}

/// The most tasks one CTA holds.
pub(crate) const MAX_TASKS: usize = 50;

fn apply_tasks(c: &mut Cta, t: &TaskChanges, now: DateTime<Utc>) -> Result<()> {
    for (id, done) in &t.done {
        let Some(task) = c.tasks.iter_mut().find(|x| &x.id == id) else {
            return Err(Error::invalid("cta.tasks", format!("cta {} has no task {}", c.id, banso_kit::shown(id))));
        };
        if task.done != *done {
            task.done = *done;
            task.done_time = done.then_some(now);
        }
    }
    let mut next = c.tasks.iter().filter_map(|x| x.id.strip_prefix('t')?.parse::<usize>().ok()).max().unwrap_or(0);
    for title in &t.added {
        next += 1;
        c.tasks.push(Task { id: format!("t{next}"), title: title.clone(), done: false, done_time: None });
    }
    if c.tasks.len() > MAX_TASKS {
        return Err(Error::invalid(
            "cta.tasks",
            format!("a cta holds at most {MAX_TASKS} tasks; this would make {}", c.tasks.len()),
        ));
    }
    Ok(())
}
