//! Outreach: webhook endpoints (created, rotated, updated, deleted), the
//! send_outreach action (contacts, the fatigue budget, a delivery queued
//! in the firing's transaction), its simulation, and deliveries (listed,
//! read with their attempts, redelivered). The worker that sends them is
//! `crate::outreach`.

use std::collections::{BTreeMap, HashMap};

use banso_events::{
    Tx,
    db::{Identified, RequestKey, Versioned, remembered},
};
use banso_kit::{Error, Result, auth::Caller, wire};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    App,
    engine::{Occasion, Program},
};
use crate::{
    domain::{
        outreach::{self as rules, Contact, DeliveryStatus},
        playbook::{ActionKind, SendOutreach},
        template,
    },
    store::{
        self,
        firings::ActionOutcome,
        outreach::{Attempt, Delivery, DeliveryFilter, Endpoint},
    },
};

const OP_CREATE_ENDPOINT: &str = "CreateWebhookEndpoint";

impl Versioned for Endpoint {
    fn version(&self) -> i64 {
        self.version
    }

    fn advance(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.update_time = now;
    }
}

impl Identified for Endpoint {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

pub(crate) struct CreateEndpoint {
    pub request_id: Option<String>,
    pub display_name: String,
    pub url: String,
    pub enabled: bool,
}

/// UpdateWebhookEndpoint: each `Some` is a field of the mask.
#[derive(Debug, Clone, Default)]
pub(crate) struct UpdateEndpoint {
    pub id: Uuid,
    pub etag: Option<i64>,
    pub display_name: Option<String>,
    pub url: Option<String>,
    pub enabled: Option<bool>,
}

impl App {
    /// Creates an endpoint with a new secret; a retry with the same
    /// request_id returns the first (with its secret).
    pub(crate) async fn create_endpoint(&self, caller: &Caller, cmd: CreateEndpoint) -> Result<Endpoint> {
        let key = cmd.request_id.clone();
        let key = key.as_deref().map(|request_id| RequestKey { operation: OP_CREATE_ENDPOINT, request_id });
        let scope = self.scope(&caller.tenant_id);
        self.db
            .create_once(
                &caller.tenant_id,
                key,
                async move |id| store::outreach::get_endpoint(&scope.conn, &scope.tenant, remembered(id)?).await,
                async move |tx| {
                    let t = wire::now();
                    let e = Endpoint {
                        id: Uuid::now_v7(),
                        display_name: cmd.display_name,
                        url: cmd.url,
                        enabled: cmd.enabled,
                        secret: rules::new_secret(),
                        previous_secret: None,
                        previous_secret_until: None,
                        create_time: t,
                        update_time: t,
                        version: 1,
                    };
                    store::outreach::insert_endpoint(tx.conn(), tx.tenant(), &e).await?;
                    Ok(e)
                },
            )
            .await
    }

    pub(crate) async fn get_endpoint(&self, caller: &Caller, id: Uuid) -> Result<Endpoint> {
        store::outreach::get_endpoint(self.db.conn(), &caller.tenant_id, id).await
    }

    pub(crate) async fn list_endpoints(
        &self,
        caller: &Caller,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Endpoint>> {
        store::outreach::list_endpoints(self.db.conn(), &caller.tenant_id, after, limit).await
    }

    pub(crate) async fn update_endpoint(&self, caller: &Caller, cmd: UpdateEndpoint) -> Result<Endpoint> {
        let s = self.scope(&caller.tenant_id);
        let id = cmd.id;
        self.db
            .update_versioned(
                &caller.tenant_id,
                &format!("webhook endpoint {id}"),
                cmd.etag,
                async move || store::outreach::get_endpoint(&s.conn, &s.tenant, id).await,
                |e| {
                    if let Some(x) = &cmd.display_name {
                        e.display_name = x.clone();
                    }
                    if let Some(x) = &cmd.url {
                        e.url = x.clone();
                    }
                    if let Some(x) = cmd.enabled {
                        e.enabled = x;
                    }
                    Ok(())
                },
                async |tx, current, next| store::outreach::update_endpoint(tx.conn(), tx.tenant(), current, next).await,
            )
            .await
    }

    /// A new secret; the previous one signs beside it for a day.
    pub(crate) async fn rotate_secret(&self, caller: &Caller, id: Uuid, etag: Option<i64>) -> Result<Endpoint> {
        let s = self.scope(&caller.tenant_id);
        let secret = rules::new_secret();
        self.db
            .update_versioned(
                &caller.tenant_id,
                &format!("webhook endpoint {id}"),
                etag,
                async move || store::outreach::get_endpoint(&s.conn, &s.tenant, id).await,
                |e| {
                    let now = wire::now();
                    e.previous_secret = Some(std::mem::replace(&mut e.secret, secret.clone()));
                    e.previous_secret_until = Some(now + rules::ROTATION_OVERLAP);
                    Ok(())
                },
                async |tx, current, next| store::outreach::update_endpoint(tx.conn(), tx.tenant(), current, next).await,
            )
            .await
    }

    /// Deletes an endpoint; its pending deliveries become DEAD (each with
    /// OutreachFailed).
    pub(crate) async fn delete_endpoint(&self, caller: &Caller, id: Uuid, etag: Option<i64>) -> Result<()> {
        let s = self.scope(&caller.tenant_id);
        self.db
            .delete_versioned(
                &caller.tenant_id,
                &format!("webhook endpoint {id}"),
                etag,
                async move || store::outreach::get_endpoint(&s.conn, &s.tenant, id).await,
                async move |tx, current| {
                    if !store::outreach::delete_endpoint(tx.conn(), tx.tenant(), current).await? {
                        return Ok(false);
                    }
                    let killed = store::outreach::kill_pending_of(tx.conn(), tx.tenant(), id, wire::now()).await?;
                    tx.emit_all(
                        killed
                            .iter()
                            .map(|d| crate::outreach::failed(d, d.attempts, "the webhook endpoint was deleted")),
                    )
                    .await?;
                    Ok(true)
                },
            )
            .await
            .map(drop)
    }

    pub(crate) async fn list_deliveries(
        &self,
        caller: &Caller,
        filter: &DeliveryFilter,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Delivery>> {
        store::outreach::list_deliveries(self.db.conn(), &caller.tenant_id, filter, before, limit).await
    }

    pub(crate) async fn get_delivery(&self, caller: &Caller, id: Uuid) -> Result<(Delivery, Vec<Attempt>)> {
        let conn = self.db.conn();
        let d = store::outreach::get_delivery(conn, &caller.tenant_id, id).await?;
        let attempts = store::outreach::attempts_of(conn, &caller.tenant_id, id).await?;
        Ok((d, attempts))
    }

    /// A DEAD or SUCCEEDED delivery is PENDING again, with a new series of attempts.
    pub(crate) async fn redeliver(&self, caller: &Caller, id: Uuid) -> Result<(Delivery, Vec<Attempt>)> {
        let tenant = caller.tenant_id.as_str();
        let current = store::outreach::get_delivery(self.db.conn(), tenant, id).await?;
        if !matches!(current.status, DeliveryStatus::Dead | DeliveryStatus::Succeeded) {
            return Err(Error::FailedPrecondition {
                reason: "DELIVERY_NOT_FINISHED",
                message: format!(
                    "delivery {id} is {}; only DEAD or SUCCEEDED deliveries can be redelivered",
                    current.status.as_str().to_uppercase()
                ),
            });
        }
        let done = self
            .db
            .write(tenant, async |tx| store::outreach::redeliver(tx.conn(), tx.tenant(), &current, wire::now()).await)
            .await?;
        if !done {
            return Err(Error::Aborted {
                reason: "CONCURRENT_UPDATE",
                message: format!("delivery {id} changed while it was redelivered; read it again"),
            });
        }
        self.engine.outreach.wake();
        self.get_delivery(caller, id).await
    }
}

/// The contacts a message goes to (`None`: about the account), at most
/// [`rules::MAX_CONTACTS_PER_ACTION`], and how many were left out.
fn recipients(contacts: Vec<Contact>, roles: &[String]) -> (Vec<Option<Contact>>, usize) {
    let picked: Vec<Contact> = contacts.into_iter().filter(|c| c.picked(roles)).collect();
    if picked.is_empty() {
        return (vec![None], 0);
    }
    let over = picked.len().saturating_sub(rules::MAX_CONTACTS_PER_ACTION);
    (picked.into_iter().take(rules::MAX_CONTACTS_PER_ACTION).map(Some).collect(), over)
}

/// The JSON a receiver gets.
fn payload(
    id: Uuid,
    o: &Occasion<'_, '_>,
    p: &Program,
    contact: Option<&Contact>,
    subject: &str,
    body: &str,
    now: DateTime<Utc>,
) -> serde_json::Value {
    let a = &o.subject.projected.account;
    serde_json::json!({
        "id": id.to_string(),
        "type": "outreach",
        "account": {
            "id": a.id.to_string(),
            "name": a.name,
            "external_id": a.external_id.clone().unwrap_or_default(),
            "owner_id": a.owner_id,
            "lifecycle_stage": a.lifecycle_stage.as_str(),
            "touch_model": a.touch_model.as_str(),
        },
        "contact": contact.map(|c| serde_json::json!({
            "id": c.id.to_string(),
            "name": c.name,
            "email": c.email,
            "title": c.title,
        })),
        "playbook_id": p.id.to_string(),
        "trigger": { "kind": o.kind, "event_id": o.event_id.clone().unwrap_or_default() },
        "subject": subject,
        "body": body,
        "created_at": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    })
}

/// The trigger kind of a delivery Feedback asked for; its trigger event id
/// is the invitation's.
pub(crate) const SURVEY_INVITATION: &str = "survey_invitation";

/// The stored trigger kind of a survey invitation's delivery (the column
/// holds 16 characters).
pub(crate) const SURVEY_INVITATION_KIND: &str = "survey_invite";

/// Feedback's SurveyInvitationIssued, in the consumer's transaction: a
/// delivery of the invitation to its contact through the campaign's
/// endpoint. Feedback's throttle already decided who is asked, so the
/// fatigue budget does not hold it back, but it counts toward the budget
/// like every message to the contact. An endpoint that is gone or
/// disabled makes a dead delivery (listed, redeliverable) and
/// OutreachFailed. Returns whether a delivery was queued.
pub(crate) async fn survey_invitation(tx: &Tx, e: &banso_proto::events::SurveyInvitationIssued) -> Result<bool> {
    let (conn, tenant) = (tx.conn(), tx.tenant());
    let invitation = wire::uuid("invitation_id", &e.invitation_id)?;
    let endpoint_id = wire::uuid("endpoint_id", &e.endpoint_id)?;
    let account = wire::uuid("account_id", &e.account_id)?;
    let contact = wire::uuid("contact_id", &e.contact_id)?;
    let now = wire::now();
    let endpoint = store::outreach::find_endpoint(conn, tenant, endpoint_id).await?;
    let refused = match &endpoint {
        None => Some(format!("webhook endpoint {endpoint_id} does not exist")),
        Some(x) if !x.enabled => Some(format!("webhook endpoint {endpoint_id} is disabled")),
        Some(_) => None,
    };
    let name = store::projection::get(conn, tenant, account).await?.map(|p| p.account.name).unwrap_or_default();
    let id = Uuid::now_v7();
    let subject = e.survey_name.clone();
    let body = format!("{}\n\n{}", e.question, e.answer_url);
    let payload = serde_json::json!({
        "id": id.to_string(),
        "type": SURVEY_INVITATION,
        "account": { "id": e.account_id, "name": name },
        "contact": { "id": e.contact_id, "name": e.contact_name, "email": e.email },
        "survey": { "id": e.survey_id, "name": e.survey_name, "question": e.question, "language": e.language },
        "invitation": {
            "id": e.invitation_id,
            "campaign_id": e.campaign_id,
            "answer_url": e.answer_url,
            "expire_time": e
                .expire_time
                .as_ref()
                .and_then(|t| wire::time("expire_time", t).ok())
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        },
        "subject": subject,
        "body": body,
        "created_at": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    });
    let d = Delivery {
        id,
        endpoint_id,
        account_id: account,
        contact_id: Some(contact),
        playbook_id: None,
        firing_id: None,
        trigger_kind: SURVEY_INVITATION_KIND.to_string(),
        trigger_event_id: invitation.to_string(),
        subject,
        body,
        payload: payload.to_string(),
        fatigue_key: rules::fatigue_key(account, Some(contact)),
        status: if refused.is_none() { DeliveryStatus::Pending } else { DeliveryStatus::Dead },
        attempts: 0,
        series: 1,
        next_attempt_time: refused.is_none().then_some(now),
        last_error: refused.clone().unwrap_or_default(),
        sent_time: None,
        create_time: now,
        update_time: now,
    };
    store::outreach::insert_delivery(conn, tenant, &d).await?;
    if let Some(why) = refused {
        tx.emit(crate::outreach::failed(&d, 0, &why)).await?;
        return Ok(false);
    }
    Ok(true)
}

/// The trigger kind of a department's alert or digest Feedback asked to
/// deliver; its trigger event id is the notice's.
pub(crate) const FEEDBACK_NOTICE: &str = "feedback_notice";

/// Characters of an item's text a notice's body shows (the payload has it whole).
const NOTICE_LINE_CHARS: usize = 200;

/// A proto enum's name without its prefix, in lower case ("DEPARTMENT_PRODUCT" → "product").
fn enum_name(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_lowercase()
}

/// Feedback's NoticeIssued, in the consumer's transaction: a delivery of a
/// department's alert or digest through the subscription's endpoint. It
/// is about no account and no contact (the nil account, a fatigue key of
/// its own): a department's notice never counts toward a customer's
/// fatigue budget. An endpoint that is gone or disabled makes a dead
/// delivery and OutreachFailed. Returns whether a delivery was queued.
pub(crate) async fn feedback_notice(tx: &Tx, e: &banso_proto::events::NoticeIssued) -> Result<bool> {
    use banso_proto::feedback as fpb;
    let (conn, tenant) = (tx.conn(), tx.tenant());
    let notice = wire::uuid("notice_id", &e.notice_id)?;
    let endpoint_id = wire::uuid("endpoint_id", &e.endpoint_id)?;
    let now = wire::now();
    let endpoint = store::outreach::find_endpoint(conn, tenant, endpoint_id).await?;
    let refused = match &endpoint {
        None => Some(format!("webhook endpoint {endpoint_id} does not exist")),
        Some(x) if !x.enabled => Some(format!("webhook endpoint {endpoint_id} is disabled")),
        Some(_) => None,
    };
    let department =
        fpb::Department::try_from(e.department).map(|d| enum_name(d.as_str_name(), "DEPARTMENT_")).unwrap_or_default();
    let kind =
        fpb::NoticeKind::try_from(e.kind).map(|k| enum_name(k.as_str_name(), "NOTICE_KIND_")).unwrap_or_default();
    let day = e.day.as_ref().map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day));
    // The accounts' names, as the projection knows them.
    let mut names: HashMap<String, String> = HashMap::new();
    for i in &e.items {
        if names.contains_key(&i.account_id) {
            continue;
        }
        let name = match Uuid::parse_str(&i.account_id) {
            Ok(id) => store::projection::get(conn, tenant, id).await?.map(|p| p.account.name).unwrap_or_default(),
            Err(_) => String::new(),
        };
        names.insert(i.account_id.clone(), name);
    }
    let name_of = |account: &str| names.get(account).cloned().unwrap_or_default();
    let subject = match (&day, e.items.first()) {
        (Some(day), _) => format!("Feedback digest for {department}, {day}: {} items", e.items_total),
        (None, Some(i)) => format!(
            "Feedback alert for {department}: {}",
            i.text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(80).collect::<String>()
        ),
        (None, None) => format!("Feedback for {department}"),
    };
    let mut lines: Vec<String> = e
        .items
        .iter()
        .map(|i| {
            let text: String =
                i.text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(NOTICE_LINE_CHARS).collect();
            let who = name_of(&i.account_id);
            let who = if who.is_empty() { i.account_id.clone() } else { who };
            format!("- [severity {}] {who}: {text}", i.severity)
        })
        .collect();
    let more = i64::from(e.items_total) - e.items.len() as i64;
    if more > 0 {
        lines.push(format!("… and {more} more"));
    }
    let body = lines.join("\n");
    let id = Uuid::now_v7();
    let payload = serde_json::json!({
        "id": id.to_string(),
        "type": FEEDBACK_NOTICE,
        "notice_id": e.notice_id,
        "subscription_id": e.subscription_id,
        "department": department,
        "kind": kind,
        "day": day,
        "items": e.items.iter().map(|i| serde_json::json!({
            "id": i.id,
            "text": i.text,
            "account": { "id": i.account_id, "name": name_of(&i.account_id) },
            "severity": i.severity,
            "category": i.category,
            "theme_ids": i.theme_ids,
        })).collect::<Vec<_>>(),
        "items_total": e.items_total,
        "subject": subject,
        "body": body,
        "created_at": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    });
    let d = Delivery {
        id,
        endpoint_id,
        account_id: Uuid::nil(),
        contact_id: None,
        playbook_id: None,
        firing_id: None,
        trigger_kind: FEEDBACK_NOTICE.to_string(),
        trigger_event_id: notice.to_string(),
        subject,
        body,
        payload: payload.to_string(),
        fatigue_key: format!("department:{department}"),
        status: if refused.is_none() { DeliveryStatus::Pending } else { DeliveryStatus::Dead },
        attempts: 0,
        series: 1,
        next_attempt_time: refused.is_none().then_some(now),
        last_error: refused.clone().unwrap_or_default(),
        sent_time: None,
        create_time: now,
        update_time: now,
    };
    store::outreach::insert_delivery(conn, tenant, &d).await?;
    if let Some(why) = refused {
        tx.emit(crate::outreach::failed(&d, 0, &why)).await?;
        return Ok(false);
    }
    Ok(true)
}

/// The send_outreach action in the firing's transaction: a delivery per
/// contact (or one about the account), PENDING within the fatigue budget
/// and SKIPPED (logged, not queued) over it. Returns the action's outcome
/// (status and detail) and whether anything was queued.
pub(crate) async fn queue(
    tx: &Tx,
    p: &Program,
    o: &Occasion<'_, '_>,
    firing: Uuid,
    spec: &SendOutreach,
    values: &BTreeMap<&'static str, String>,
    outcome: &mut ActionOutcome,
) -> Result<bool> {
    let (conn, tenant) = (tx.conn(), tx.tenant());
    let account = o.subject.projected.account.id;
    let now = o.subject.now;
    let Some(endpoint) = store::outreach::find_endpoint(conn, tenant, spec.endpoint_id).await? else {
        outcome.status = "failed".into();
        outcome.detail = format!("webhook endpoint {} does not exist", spec.endpoint_id);
        return Ok(false);
    };
    if !endpoint.enabled {
        outcome.status = "skipped".into();
        outcome.detail = format!("webhook endpoint {} is disabled", endpoint.id);
        return Ok(false);
    }
    let settings = store::tenants::get(conn, tenant).await?;
    let since = now - chrono::Duration::days(i64::from(settings.fatigue_window_days));
    let (to, left_out) = recipients(store::outreach::contacts_of(conn, tenant, account).await?, &spec.contact_roles);
    let subject = template::render(&spec.subject, values);
    let body = template::render(&spec.body, values);
    let (mut queued, mut skipped) = (Vec::new(), Vec::new());
    for contact in &to {
        let contact_id = contact.as_ref().map(|c| c.id);
        let key = rules::fatigue_key(account, contact_id);
        store::outreach::take_turn(conn, tenant, &key).await?;
        let already = store::outreach::queued_since(conn, tenant, &key, since).await?;
        let verdict = rules::within_budget(
            already,
            settings.fatigue_max_messages,
            settings.fatigue_window_days,
            account,
            contact_id,
        );
        let id = Uuid::now_v7();
        let d = Delivery {
            id,
            endpoint_id: endpoint.id,
            account_id: account,
            contact_id,
            playbook_id: Some(p.id),
            firing_id: Some(firing),
            trigger_kind: o.kind.to_string(),
            trigger_event_id: o.event_id.clone().unwrap_or_default(),
            subject: subject.clone(),
            body: body.clone(),
            payload: payload(id, o, p, contact.as_ref(), &subject, &body, now).to_string(),
            fatigue_key: key,
            status: if verdict.is_ok() { DeliveryStatus::Pending } else { DeliveryStatus::Skipped },
            attempts: 0,
            series: 1,
            next_attempt_time: verdict.is_ok().then_some(now),
            last_error: verdict.clone().err().unwrap_or_default(),
            sent_time: None,
            create_time: now,
            update_time: now,
        };
        store::outreach::insert_delivery(conn, tenant, &d).await?;
        match verdict {
            Ok(()) => queued.push(id),
            Err(why) => skipped.push((id, why)),
        }
    }
    let who = |n: usize| if to[0].is_none() { "about the account".to_string() } else { format!("to {n} contact(s)") };
    let mut detail = if queued.is_empty() {
        outcome.status = "skipped".into();
        skipped.iter().map(|(_, w)| w.as_str()).collect::<Vec<_>>().join("; ")
    } else {
        format!(
            "queued outreach {} via endpoint {}: {}",
            who(queued.len()),
            endpoint.id,
            queued.iter().map(Uuid::to_string).collect::<Vec<_>>().join(", ")
        )
    };
    if !queued.is_empty() && !skipped.is_empty() {
        detail
            .push_str(&format!("; skipped {}", skipped.iter().map(|(_, w)| w.as_str()).collect::<Vec<_>>().join("; ")));
    }
    if left_out > 0 {
        detail.push_str(&format!("; {left_out} more contacts left out (at most {})", rules::MAX_CONTACTS_PER_ACTION));
    }
    outcome.detail = detail;
    outcome.resource_id = queued.first().or(skipped.first().map(|(id, _)| id)).map(Uuid::to_string);
    Ok(!queued.is_empty())
}

/// What a simulation knows of outreach, read before it runs: the
/// endpoints its actions name, each account's contacts, and the messages
/// queued for them — so the fatigue budget applies as it stands, together
/// with the messages the simulation itself would send. Reads only.
#[derive(Default)]
pub(crate) struct Preview {
    on: bool,
    playbook: Uuid,
    start: Option<DateTime<Utc>>,
    max: i32,
    window: chrono::Duration,
    window_days: i32,
    endpoints: HashMap<Uuid, Option<bool>>,
    contacts: HashMap<Uuid, Vec<Contact>>,
    /// Per fatigue key: when messages were (or would be) queued.
    sent: HashMap<String, Vec<DateTime<Utc>>>,
}

impl Preview {
    /// `start`: where the simulation's replay begins; this playbook's own
    /// messages after it are replaced by the simulated ones.
    pub(crate) async fn new(
        conn: &impl sea_orm::ConnectionTrait,
        tenant: &str,
        p: &Program,
        settings: &store::tenants::Settings,
        start: DateTime<Utc>,
    ) -> Result<Self> {
        let mut endpoints = HashMap::new();
        for a in &p.def.actions {
            if let ActionKind::SendOutreach(s) = &a.kind {
                let e = store::outreach::find_endpoint(conn, tenant, s.endpoint_id).await?;
                endpoints.insert(s.endpoint_id, e.map(|e| e.enabled));
            }
        }
        Ok(Preview {
            on: !endpoints.is_empty(),
            playbook: p.id,
            start: Some(start),
            max: settings.fatigue_max_messages,
            window: chrono::Duration::days(i64::from(settings.fatigue_window_days)),
            window_days: settings.fatigue_window_days,
            endpoints,
            contacts: HashMap::new(),
            sent: HashMap::new(),
        })
    }

    /// Reads an account's contacts and their messages, once.
    pub(crate) async fn load(
        &mut self,
        conn: &impl sea_orm::ConnectionTrait,
        tenant: &str,
        account: Uuid,
    ) -> Result<()> {
        if !self.on || self.contacts.contains_key(&account) {
            return Ok(());
        }
        let Some(start) = self.start else { return Ok(()) };
        let contacts = store::outreach::contacts_of(conn, tenant, account).await?;
        let mut keys = vec![rules::fatigue_key(account, None)];
        keys.extend(contacts.iter().map(|c| rules::fatigue_key(account, Some(c.id))));
        for key in keys {
            let times = store::outreach::queued_times(conn, tenant, &key, start - self.window).await?;
            let kept = times.into_iter().filter(|(t, by)| *by != Some(self.playbook) || *t < start).map(|(t, _)| t);
            self.sent.entry(key).or_default().extend(kept);
        }
        self.contacts.insert(account, contacts);
        Ok(())
    }

    /// What the action would do for the subject at its time.
    pub(crate) fn send(
        &mut self,
        spec: &SendOutreach,
        o: &Occasion<'_, '_>,
        values: &BTreeMap<&'static str, String>,
        outcome: &mut ActionOutcome,
    ) {
        match self.endpoints.get(&spec.endpoint_id) {
            Some(Some(true)) => {}
            Some(Some(false)) => {
                outcome.status = "skipped".into();
                outcome.detail = format!("webhook endpoint {} is disabled", spec.endpoint_id);
                return;
            }
            _ => {
                outcome.status = "failed".into();
                outcome.detail = format!("webhook endpoint {} does not exist", spec.endpoint_id);
                return;
            }
        }
        let account = o.subject.projected.account.id;
        let now = o.subject.now;
        let contacts = self.contacts.get(&account).cloned().unwrap_or_default();
        let (to, _) = recipients(contacts, &spec.contact_roles);
        let (mut would, mut skipped) = (0, Vec::new());
        for c in &to {
            let contact_id = c.as_ref().map(|c| c.id);
            let key = rules::fatigue_key(account, contact_id);
            let times = self.sent.entry(key).or_default();
            let already = times.iter().filter(|t| **t > now - self.window && **t <= now).count() as i64;
            match rules::within_budget(already, self.max, self.window_days, account, contact_id) {
                Ok(()) => {
                    times.push(now);
                    would += 1;
                }
                Err(why) => skipped.push(why),
            }
        }
        let subject = template::render(&spec.subject, values);
        if would == 0 {
            outcome.status = "skipped".into();
            outcome.detail = skipped.join("; ");
            return;
        }
        let whom = if to[0].is_none() { "about the account".to_string() } else { format!("to {would} contact(s)") };
        outcome.detail = format!("would send outreach \"{subject}\" {whom} via endpoint {}", spec.endpoint_id);
        if !skipped.is_empty() {
            outcome.detail.push_str(&format!("; would skip {}", skipped.join("; ")));
        }
    }
}

/// Accounts' ContactChanged, kept in the contacts projection outreach picks from.
pub(crate) async fn contact_changed(
    conn: &impl sea_orm::ConnectionTrait,
    tenant: &str,
    e: &banso_proto::events::ContactChanged,
) -> Result<()> {
    let Some(c) = &e.contact else { return Ok(()) };
    let id = wire::uuid("contact.id", &c.id)?;
    if e.change == banso_proto::events::contact_changed::Change::Deleted as i32 {
        return store::outreach::delete_contact(conn, tenant, id).await;
    }
    use banso_proto::accounts::ContactLevel;
    let level = match ContactLevel::try_from(c.level) {
        Ok(ContactLevel::Executive) => "executive",
        Ok(ContactLevel::Manager) => "manager",
        Ok(ContactLevel::Practitioner) => "practitioner",
        _ => "",
    };
    let contact = Contact {
        id,
        account_id: wire::uuid("contact.account_id", &c.account_id)?,
        name: c.name.clone(),
        email: c.email.clone(),
        title: c.title.clone(),
        champion: c.champion,
        decision_maker: c.decision_maker,
        level: level.to_string(),
    };
    store::outreach::upsert_contact(conn, tenant, &contact).await
}
