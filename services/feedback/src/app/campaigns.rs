//! Campaigns: creating one (and sending it when it is due), the run that
//! issues invitations, and the caller's side of delivery.

use std::collections::{BTreeMap, HashMap, HashSet};

use banso_events::{
    Tx,
    db::{Identified, RequestKey, remembered},
};
use banso_kit::{Error, Result, auth::Caller, wire};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{App, Links};
use crate::{
    domain::{
        campaign::{Body, Campaign, Counts, Invitation, Schedule, State, Status, throttled},
        projection::Projected,
        results::Calendar,
        survey::Survey,
    },
    events, store,
};

const OP_CREATE_CAMPAIGN: &str = "CreateCampaign";

impl Identified for Campaign {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

/// CreateCampaign, parsed.
#[derive(Debug, Clone)]
pub(crate) struct NewCampaign {
    pub survey_id: Uuid,
    pub body: Body,
    pub close_time: Option<DateTime<Utc>>,
}

/// An invitation with what the caller delivers: its token and answer link.
pub(crate) struct Issued {
    pub invitation: Invitation,
    pub token: String,
    pub answer_url: String,
}

/// The accounts a campaign's selection takes at `now`: its listed
/// accounts, its segment's members (evaluated on the projection with the
/// segment's CEL expression, as Accounts evaluates it), or every account.
pub(crate) async fn selected(
    conn: &impl ConnectionTrait,
    tenant: &str,
    body: &Body,
    cal: &Calendar,
    now: DateTime<Utc>,
) -> Result<Vec<Projected>> {
    if !body.account_ids.is_empty() {
        return store::projection::accounts(conn, tenant, Some(&body.account_ids)).await;
    }
    let all = store::projection::accounts(conn, tenant, None).await?;
    let Some(segment) = body.segment_id else { return Ok(all) };
    let members = Members::of(conn, tenant, segment).await?;
    Ok(all.into_iter().filter(|a| members.has(a, cal, now)).collect())
}

/// A segment's expression, compiled once for a run.
struct Members(Option<banso_cel::Expression>);

impl Members {
    async fn of(conn: &impl ConnectionTrait, tenant: &str, segment: Uuid) -> Result<Members> {
        let Some(source) = store::projection::segment(conn, tenant, segment).await? else { return Ok(Members(None)) };
        match banso_cel::Expression::compile(&source, &banso_cel::account_schema()) {
            Ok(e) => Ok(Members(Some(e))),
            Err(e) => {
                // Accounts checked it when it was saved: a segment that no
                // longer compiles selects no one, loudly.
                tracing::warn!(%segment, error = %e, "segment expression does not compile: no members");
                Ok(Members(None))
            }
        }
    }

    /// An account whose evaluation fails (a null compared) is not a member, as in Accounts.
    fn has(&self, a: &Projected, cal: &Calendar, now: DateTime<Utc>) -> bool {
        self.0.as_ref().is_some_and(|e| e.evaluate_bool(&a.account.facts(cal.day(now), now)).unwrap_or(false))
    }
}

/// Issues the invitations of one run of `c` at `now` in `tx` (whose first
/// statement was a write): selects the accounts (for a standing campaign,
/// those whose day has come, each for that day's cycle), their contacts
/// the selector takes that the campaign has not invited (or skipped) for
/// that cycle, and skips — recording the skip, so it is counted once —
/// those within their kind's throttle.
pub(crate) async fn issue(tx: &Tx, c: &mut Campaign, links: &Links, now: DateTime<Utc>) -> Result<()> {
    let (conn, tenant) = (tx.conn(), tx.tenant());
    let settings = store::tenants::get(conn, tenant).await?;
    let cal = settings.calendar();
    let today = cal.day(now);
    let created = cal.day(c.create_time);
    let accounts = selected(conn, tenant, &c.body, &cal, now).await?;
    // Each account's cycle: the send day, or its due day once it has come.
    let cycles: BTreeMap<Uuid, (NaiveDate, &Projected)> = accounts
        .iter()
        .filter_map(|a| {
            let cycle = match c.body.schedule {
                Schedule::Once { send_time } => Some(cal.day(send_time)),
                ref s => s.due(a, cal.day(a.stage_since), created, today),
            };
            Some((a.account.id, (cycle?, a)))
        })
        .collect();
    let ids: Vec<Uuid> = cycles.keys().copied().collect();
    let contacts: Vec<_> = store::projection::contacts_of(conn, tenant, &ids)
        .await?
        .into_iter()
        .filter(|x| c.body.contacts.selects(x))
        .collect();
    let with_contacts: HashSet<Uuid> = contacts.iter().map(|x| x.account_id).collect();
    let without = ids.iter().filter(|id| !with_contacts.contains(id)).count() as i64;
    let done: HashSet<(Uuid, NaiveDate)> =
        store::campaigns::invited_contacts(conn, tenant, c.id).await?.into_iter().collect();
    let fresh: Vec<_> = contacts
        .into_iter()
        .filter_map(|x| {
            let (cycle, a) = cycles.get(&x.account_id)?;
            (!done.contains(&(x.id, *cycle))).then_some((x, *cycle, *a))
        })
        .collect();
    let fresh_ids: Vec<Uuid> = fresh.iter().map(|(x, ..)| x.id).collect();
    let fresh_names: Vec<(Uuid, String)> = fresh.iter().map(|(x, ..)| (x.id, x.name.clone())).collect();
    let last = store::campaigns::last_invited(conn, tenant, c.kind, &fresh_ids).await?;
    let days = settings.throttle_days(c.kind);
    let expire_time = now + Duration::days(i64::from(c.body.token_valid_days));
    let mut rows = Vec::with_capacity(fresh.len());
    for (x, cycle, a) in fresh {
        let skip = throttled(last.get(&x.id).copied(), days, now);
        let invitation = Invitation {
            id: Uuid::now_v7(),
            campaign_id: c.id,
            survey_id: c.survey_id,
            kind: c.kind,
            account_id: x.account_id,
            contact_id: x.id,
            cycle,
            email: x.email.clone(),
            send_time: now,
            deliver_time: None,
            failure: None,
            answer_time: None,
            expire_time,
        };
        rows.push((invitation, a.snapshot(), skip));
    }
    store::campaigns::insert_invitations(conn, tenant, &rows).await?;
    // Delivered by a Playbooks endpoint: an event per invitation, in this transaction.
    if let Some(endpoint) = c.body.delivery_endpoint_id {
        let survey = store::surveys::get(conn, tenant, c.survey_id).await?;
        let names: HashMap<Uuid, &str> = fresh_names.iter().map(|(id, n)| (*id, n.as_str())).collect();
        let mut out = Vec::new();
        for (i, _, _) in rows.iter().filter(|(.., skip)| !*skip) {
            let plan = cycles.get(&i.account_id).and_then(|(_, a)| a.plan_outcome.as_deref());
            let token = links.token(tenant, i);
            out.push(events::survey_invitation_issued(events::Issued {
                invitation: i,
                survey: &survey,
                endpoint,
                contact_name: names.get(&i.contact_id).copied().unwrap_or_default(),
                question: survey.question(&survey.outcome(plan)),
                answer_url: links.answer_url(&token),
            }));
        }
        tx.emit_all(out).await?;
    }
    let skipped = rows.iter().filter(|(.., skip)| *skip).count() as i64;
    c.counts.invited += rows.len() as i64 - skipped;
    c.counts.throttled += skipped;
    // As of this run: an account without contacts is not a skip to remember.
    c.counts.accounts_without_contacts = without;
    Ok(())
}

/// A campaign with its delivered and answered counts.
async fn campaign_with_counts(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Campaign> {
    let (mut c, _) = store::campaigns::get(conn, tenant, id).await?;
    (c.counts.delivered, c.counts.answered, c.counts.failed) =
        store::campaigns::delivered_answered(conn, tenant, id).await?;
    Ok(c)
}

/// What a new campaign names must exist: its survey, its segment, its accounts.
async fn prepare(conn: &impl ConnectionTrait, tenant: &str, cmd: &NewCampaign) -> Result<Survey> {
    let survey = store::surveys::get(conn, tenant, cmd.survey_id).await?;
    if let Some(seg) = cmd.body.segment_id
        && store::projection::segment(conn, tenant, seg).await?.is_none()
    {
        return Err(Error::not_found("segment", seg.to_string()));
    }
    if !cmd.body.account_ids.is_empty() {
        let known: HashSet<Uuid> = store::projection::accounts(conn, tenant, Some(&cmd.body.account_ids))
            .await?
            .into_iter()
            .map(|a| a.account.id)
            .collect();
        if let Some(missing) = cmd.body.account_ids.iter().find(|a| !known.contains(a)) {
            return Err(Error::not_found("account", missing.to_string()));
        }
    }
    Ok(survey)
}

impl App {
    pub(crate) async fn create_campaign(
        &self,
        caller: &Caller,
        request_id: Option<String>,
        cmd: NewCampaign,
    ) -> Result<Campaign> {
        let key = request_id.as_deref().map(|request_id| RequestKey { operation: OP_CREATE_CAMPAIGN, request_id });
        let (s, p) = (self.scope(&caller.tenant_id), self.scope(&caller.tenant_id));
        let by = caller.subject.clone();
        let checked = cmd.clone();
        let links = self.links();
        self.db
            .create_once_with(
                &caller.tenant_id,
                "campaign",
                key,
                async move |id| campaign_with_counts(&s.conn, &s.tenant, remembered(id)?).await,
                async move || prepare(&p.conn, &p.tenant, &checked).await,
                async move |tx, survey| {
                    let now = wire::now();
                    let due = match cmd.body.schedule {
                        Schedule::Once { send_time } => send_time <= now,
                        _ => true,
                    };
                    let close_time = match cmd.body.schedule {
                        Schedule::Once { send_time } => Some(
                            cmd.close_time.unwrap_or(send_time + Duration::days(i64::from(cmd.body.token_valid_days))),
                        ),
                        _ => cmd.close_time,
                    };
                    let mut c = Campaign {
                        id: Uuid::now_v7(),
                        survey_id: survey.id,
                        kind: survey.body.kind,
                        body: cmd.body.clone(),
                        state: if due { State::Active } else { State::Scheduled },
                        close_time,
                        counts: Counts::default(),
                        created_by: by.clone(),
                        create_time: now,
                        last_run: due.then_some(now),
                    };
                    store::campaigns::insert(tx.conn(), tx.tenant(), &c).await?;
                    if due {
                        issue(tx, &mut c, &links, now).await?;
                        if !store::campaigns::update(tx.conn(), tx.tenant(), &c, 1).await? {
                            return Ok(None);
                        }
                    }
                    Ok(Some(c))
                },
            )
            .await
    }

    pub(crate) async fn get_campaign(&self, caller: &Caller, id: Uuid) -> Result<Campaign> {
        campaign_with_counts(self.db.conn(), &caller.tenant_id, id).await
    }

    pub(crate) async fn list_campaigns(
        &self,
        caller: &Caller,
        survey: Option<Uuid>,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Campaign>> {
        let conn = self.db.conn();
        let mut out = Vec::new();
        for mut c in store::campaigns::list(conn, &caller.tenant_id, survey, before, limit).await? {
            (c.counts.delivered, c.counts.answered, c.counts.failed) =
                store::campaigns::delivered_answered(conn, &caller.tenant_id, c.id).await?;
            out.push(c);
        }
        Ok(out)
    }

    /// Closes a campaign now (a closed one stays as it is).
    pub(crate) async fn close_campaign(&self, caller: &Caller, id: Uuid) -> Result<Campaign> {
        for attempt in 0..banso_events::db::WRITE_ATTEMPTS {
            banso_events::db::backoff(attempt).await;
            let (mut c, version) = store::campaigns::get(self.db.conn(), &caller.tenant_id, id).await?;
            if c.state == State::Closed {
                return self.get_campaign(caller, id).await;
            }
            let now = wire::now();
            c.state = State::Closed;
            c.close_time = Some(c.close_time.map_or(now, |t| t.min(now)));
            let written = self
                .db
                .write(&caller.tenant_id, async |tx| {
                    store::campaigns::update(tx.conn(), tx.tenant(), &c, version).await
                })
                .await?;
            if written {
                return self.get_campaign(caller, id).await;
            }
        }
        Err(Error::Aborted { reason: "CONCURRENT_UPDATE", message: format!("campaign {id} kept changing; try again") })
    }

    pub(crate) async fn list_invitations(
        &self,
        caller: &Caller,
        campaign: Uuid,
        status: Option<Status>,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Issued>> {
        let conn = self.db.conn();
        store::campaigns::get(conn, &caller.tenant_id, campaign).await?;
        let rows =
            store::campaigns::invitations(conn, &caller.tenant_id, campaign, status, wire::now(), after, limit).await?;
        let links = self.links();
        Ok(rows
            .into_iter()
            .map(|invitation| {
                let token = links.token(&caller.tenant_id, &invitation);
                let answer_url = links.answer_url(&token);
                Issued { invitation, token, answer_url }
            })
            .collect())
    }

    /// Marks invitations of a campaign delivered; how many were newly marked.
    pub(crate) async fn mark_delivered(
        &self,
        caller: &Caller,
        campaign: Uuid,
        ids: Vec<Uuid>,
        at: Option<DateTime<Utc>>,
    ) -> Result<u64> {
        store::campaigns::get(self.db.conn(), &caller.tenant_id, campaign).await?;
        let at = at.unwrap_or_else(wire::now);
        self.db
            .write(&caller.tenant_id, async |tx| {
                store::campaigns::mark_delivered(tx.conn(), tx.tenant(), campaign, &ids, at).await
            })
            .await
    }

    /// Runs a due campaign of `tenant` at `now` (the sender): claims the
    /// run by moving the campaign's version, so of several replicas one
    /// runs it; false when another did.
    pub(crate) async fn run_campaign(&self, tenant: &str, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
        let Some((mut c, version)) = store::campaigns::find(self.db.conn(), tenant, id).await? else {
            return Ok(false);
        };
        let links = self.links();
        self.db
            .write(tenant, async |tx| {
                let (conn, tenant) = (tx.conn(), tx.tenant());
                c.last_run = Some(now);
                if c.state == State::Scheduled {
                    c.state = State::Active;
                }
                // The claim is the transaction's first write.
                if !store::campaigns::update(conn, tenant, &c, version).await? {
                    return Ok(false);
                }
                if c.open_at(now) {
                    issue(tx, &mut c, &links, now).await?;
                } else {
                    c.state = State::Closed;
                }
                store::campaigns::update(conn, tenant, &c, version + 1).await
            })
            .await
    }
}
