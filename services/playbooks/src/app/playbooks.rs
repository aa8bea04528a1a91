//! Playbooks: versioned definitions, enabled and disabled by version,
//! simulated against stored trigger events, run by hand.

use std::collections::{BTreeMap, HashMap, HashSet};

use banso_events::db::{RequestKey, Versioned, remembered};
use banso_kit::{Error, Result, auth::Caller, wire};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    App,
    engine::{self, Applies, Occasion, Program, Subject},
};
use crate::{
    domain::{
        engine::{Verdict, scheduled},
        playbook::{Definition, Playbook, Trigger},
    },
    events,
    store::{self, firings::Firing, playbooks::Row},
};

const OP_CREATE_PLAYBOOK: &str = "CreatePlaybook";
const OP_RUN_PLAYBOOK: &str = "RunPlaybook";

/// Trigger events one simulation replays at most.
pub(crate) const SIMULATION_MAX_EVENTS: u64 = 200_000;

pub(crate) struct CreatePlaybook {
    pub request_id: Option<String>,
    pub definition: Definition,
}

/// The masked fields applied to the newest definition, checked together.
pub(crate) type DefinitionChange = Box<dyn Fn(&mut Definition) -> Result<()> + Send + Sync>;

/// UpdatePlaybook: the fields of the newest version the mask names, set
/// from `definition` (the parse already merged them).
pub(crate) struct UpdatePlaybook {
    pub id: Uuid,
    pub etag: Option<i64>,
    pub change: DefinitionChange,
}

/// A playbook's row with its newest definition: what an update changes.
#[derive(Debug, Clone, PartialEq)]
struct Head {
    row: Row,
    def: Definition,
}

impl Versioned for Head {
    fn version(&self) -> i64 {
        self.row.version
    }

    fn advance(&mut self, now: DateTime<Utc>) {
        self.row.version += 1;
        self.row.update_time = now;
    }
}

impl banso_events::db::Identified for Playbook {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

/// What a simulation found.
#[derive(Debug, Default)]
pub(crate) struct Simulation {
    pub evaluated: i64,
    pub matched: i64,
    pub would_fire: i64,
    pub cooldown: i64,
    pub limit: i64,
    pub deduplicated: i64,
    pub condition_errors: i64,
    pub accounts: i64,
    pub firings: Vec<Firing>,
    pub errors: Vec<String>,
}

impl App {
    pub(crate) async fn create_playbook(&self, caller: &Caller, cmd: CreatePlaybook) -> Result<Playbook> {
        let CreatePlaybook { request_id, definition } = cmd;
        runnable(&definition, self.engine.updates_accounts)?;
        let key = request_id.as_deref().map(|request_id| RequestKey { operation: OP_CREATE_PLAYBOOK, request_id });
        let scope = self.scope(&caller.tenant_id);
        let author = caller.subject.clone();
        self.db
            .create_once(
                &caller.tenant_id,
                key,
                async move |id| store::playbooks::get(&scope.conn, &scope.tenant, remembered(id)?, 0).await,
                async move |tx| {
                    let t = wire::now();
                    let row = Row {
                        id: Uuid::now_v7(),
                        head_version: 1,
                        live_version: 0,
                        live_trigger: String::new(),
                        round_robin: 0,
                        create_time: t,
                        update_time: t,
                        version: 1,
                    };
                    store::playbooks::insert(tx.conn(), tx.tenant(), &row, &definition, &author).await?;
                    Ok(Playbook {
                        id: row.id,
                        version: 1,
                        definition,
                        head_version: 1,
                        live_version: 0,
                        create_time: t,
                        update_time: t,
                        row_version: 1,
                    })
                },
            )
            .await
    }

    pub(crate) async fn get_playbook(&self, caller: &Caller, id: Uuid, version: i64) -> Result<Playbook> {
        store::playbooks::get(self.db.conn(), &caller.tenant_id, id, version).await
    }

    pub(crate) async fn list_playbooks(
        &self,
        caller: &Caller,
        enabled: Option<bool>,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Playbook>> {
        let conn = self.db.conn();
        let rows = store::playbooks::list(conn, &caller.tenant_id, enabled, after, limit).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let (definition, made) =
                store::playbooks::definition(conn, &caller.tenant_id, r.id, r.head_version).await?;
            out.push(playbook(&r, r.head_version, definition, made));
        }
        Ok(out)
    }

    pub(crate) async fn list_versions(
        &self,
        caller: &Caller,
        id: Uuid,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<Playbook>> {
        let conn = self.db.conn();
        let r = store::playbooks::row(conn, &caller.tenant_id, id).await?;
        let versions = store::playbooks::versions(conn, &caller.tenant_id, id, before, limit).await?;
        Ok(versions.into_iter().map(|(v, d, made)| playbook(&r, v, d, made)).collect())
    }

    async fn head(&self, tenant: &str, id: Uuid) -> Result<Head> {
        let conn = self.db.conn();
        let row = store::playbooks::row(conn, tenant, id).await?;
        let (def, _) = store::playbooks::definition(conn, tenant, id, row.head_version).await?;
        Ok(Head { row, def })
    }

    pub(crate) async fn update_playbook(&self, caller: &Caller, cmd: UpdatePlaybook) -> Result<Playbook> {
        let id = cmd.id;
        let updates_accounts = self.engine.updates_accounts;
        let author = caller.subject.clone();
        let this = self.clone();
        let tenant = caller.tenant_id.clone();
        let next = self
            .db
            .update_versioned(
                &caller.tenant_id,
                &format!("playbook {id}"),
                cmd.etag,
                async move || this.head(&tenant, id).await,
                |h| {
                    let before = h.def.clone();
                    (cmd.change)(&mut h.def)?;
                    runnable(&h.def, updates_accounts)?;
                    if h.def != before {
                        h.row.head_version += 1;
                    }
                    Ok(())
                },
                async move |tx, current, next| {
                    let new =
                        (next.row.head_version != current.row.head_version).then_some((&next.def, author.as_str()));
                    store::playbooks::update(tx.conn(), tx.tenant(), &current.row, &next.row, new).await
                },
            )
            .await?;
        Ok(playbook(&next.row, next.row.head_version, next.def, next.row.update_time))
    }

    /// Makes `version` (0: the newest) live.
    pub(crate) async fn enable_playbook(
        &self,
        caller: &Caller,
        id: Uuid,
        version: i64,
        etag: Option<i64>,
    ) -> Result<Playbook> {
        let conn = self.db.conn().clone();
        let tenant = caller.tenant_id.clone();
        let row = store::playbooks::row(&conn, &tenant, id).await?;
        let version = if version == 0 { row.head_version } else { version };
        if version > row.head_version {
            return Err(Error::invalid(
                "version",
                format!("playbook {id} has no version {version}; its newest is {}", row.head_version),
            ));
        }
        let (def, made) = store::playbooks::definition(&conn, &tenant, id, version).await?;
        let trigger = def.trigger.key();
        let this = self.clone();
        let t2 = tenant.clone();
        let next = self
            .db
            .update_versioned(
                &tenant,
                &format!("playbook {id}"),
                etag,
                async move || this.head(&t2, id).await,
                |h| {
                    h.row.live_version = version;
                    h.row.live_trigger = trigger.clone();
                    Ok(())
                },
                async |tx, current, next| {
                    store::playbooks::update(tx.conn(), tx.tenant(), &current.row, &next.row, None).await
                },
            )
            .await?;
        Ok(playbook(&next.row, version, def, made))
    }

    pub(crate) async fn disable_playbook(&self, caller: &Caller, id: Uuid, etag: Option<i64>) -> Result<Playbook> {
        let this = self.clone();
        let tenant = caller.tenant_id.clone();
        let next = self
            .db
            .update_versioned(
                &caller.tenant_id,
                &format!("playbook {id}"),
                etag,
                async move || this.head(&tenant, id).await,
                |h| {
                    h.row.live_version = 0;
                    h.row.live_trigger = String::new();
                    Ok(())
                },
                async |tx, current, next| {
                    store::playbooks::update(tx.conn(), tx.tenant(), &current.row, &next.row, None).await
                },
            )
            .await?;
        Ok(playbook(&next.row, next.row.head_version, next.def, next.row.update_time))
    }

    pub(crate) async fn delete_playbook(&self, caller: &Caller, id: Uuid, etag: Option<i64>) -> Result<()> {
        let this = self.clone();
        let tenant = caller.tenant_id.clone();
        self.db
            .delete_versioned(
                &caller.tenant_id,
                &format!("playbook {id}"),
                etag,
                async move || this.head(&tenant, id).await,
                async |tx, current| store::playbooks::delete(tx.conn(), tx.tenant(), &current.row).await,
            )
            .await
            .map(drop)
    }

    pub(crate) async fn list_firings(
        &self,
        caller: &Caller,
        playbook: Option<Uuid>,
        account: Option<Uuid>,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Firing>> {
        store::firings::list(self.db.conn(), &caller.tenant_id, playbook, account, before, limit).await
    }

    /// Runs the live version for `accounts` now: one transaction per account.
    pub(crate) async fn run_playbook(
        &self,
        caller: &Caller,
        id: Uuid,
        accounts: Vec<Uuid>,
        request_id: Option<String>,
    ) -> Result<(Vec<Firing>, i64)> {
        let tenant = caller.tenant_id.as_str();
        let conn = self.db.conn();
        let row = store::playbooks::row(conn, tenant, id).await?;
        if row.live_version == 0 {
            return Err(Error::FailedPrecondition {
                reason: "PLAYBOOK_DISABLED",
                message: format!("playbook {id} is disabled; enable a version to run it"),
            });
        }
        let p = self.engine.program(conn, tenant, id, row.live_version).await?;
        // The run's key: a retry with the same request_id fires nothing twice.
        let run = match &request_id {
            Some(r) => format!("manual:{OP_RUN_PLAYBOOK}:{r}"),
            None => format!("manual:{}", Uuid::now_v7()),
        };
        let settings = store::tenants::get(conn, tenant).await?;
        let segments = self.engine.segments(conn, tenant).await?;
        let (mut firings, mut not_matched) = (Vec::new(), 0);
        for account in accounts {
            let Some(projected) = store::projection::get(conn, tenant, account).await? else {
                return Err(Error::not_found("account", account.to_string()));
            };
            let subject = Subject {
                projected: &projected,
                tz: settings.tz(),
                now: wire::now(),
                event: None,
                facts: Default::default(),
            };
            if engine::applies(&p, &subject, &segments) != Applies::Yes {
                not_matched += 1;
                continue;
            }
            let o = Occasion { kind: "manual", key: run.clone(), event_id: None, subject: &subject };
            let fired =
                self.db.write(tenant, async |tx| engine::fire(tx, &self.engine, &p, &o, &segments).await).await?;
            self.engine.after_commit();
            match fired {
                Some(f) => firings.push(f),
                // Fired by an earlier attempt of this run: show what it did.
                None => firings.extend(
                    store::firings::list(conn, tenant, Some(id), Some(account), None, 50)
                        .await?
                        .into_iter()
                        .find(|f| f.trigger_key == run),
                ),
            }
        }
        Ok((firings, not_matched))
    }

    /// Runs version `version` against the stored trigger events of the
    /// last `days` days (or today's accounts for a schedule), writing nothing.
    pub(crate) async fn simulate(
        &self,
        caller: &Caller,
        id: Uuid,
        version: i64,
        days: u32,
        max_firings: usize,
    ) -> Result<Simulation> {
        let tenant = caller.tenant_id.as_str();
        let conn = self.db.conn();
        let row = store::playbooks::row(conn, tenant, id).await?;
        let version = if version == 0 { row.head_version } else { version };
        let p = self.engine.program(conn, tenant, id, version).await?;
        let settings = store::tenants::get(conn, tenant).await?;
        let tz = settings.tz();
        let segments = self.engine.segments(conn, tenant).await?;
        let now = wire::now();
        let since = now - chrono::Duration::days(i64::from(days));
        // Firings before the window, of every version: the history the
        // cooldown and the limit read from the start.
        let mut history: HashMap<Uuid, Vec<DateTime<Utc>>> = HashMap::new();
        let start = match p.def.trigger {
            Trigger::Event(_) => since,
            _ => now,
        };
        for (account, t) in store::firings::fired_before(conn, tenant, id, start).await? {
            history.entry(account).or_default().push(t);
        }
        let mut outreach = super::outreach::Preview::new(conn, tenant, &p, &settings, start).await?;
        let mut open: HashSet<Uuid> = HashSet::new();
        let mut sim = Simulation::default();
        let mut fired_accounts = HashSet::new();
        let mut accounts_cache: HashMap<Uuid, Option<store::projection::Projected>> = HashMap::new();
        match &p.def.trigger {
            Trigger::Event(t) => {
                let mut after = None;
                loop {
                    let batch = store::trigger_events::since(conn, tenant, &t.event_type, since, after, 1000).await?;
                    let Some((last_t, last_seq, _, _)) = batch.last() else { break };
                    after = Some((*last_t, *last_seq));
                    for (time, _, stage_entered, env) in &batch {
                        sim.evaluated += 1;
                        let Some(account) = events::account_of(env) else { continue };
                        if let std::collections::hash_map::Entry::Vacant(slot) = accounts_cache.entry(account) {
                            let got = store::projection::get(conn, tenant, account).await?;
                            if got.is_some() {
                                outreach.load(conn, tenant, account).await?;
                                // An open CTA of this playbook now: a firing would raise it.
                                let key = crate::domain::cta::open_key(id, account);
                                if store::ctas::open_of(conn, tenant, &key).await?.is_some() {
                                    open.insert(account);
                                }
                            }
                            slot.insert(got);
                        }
                        let Some(projected) = accounts_cache.get(&account).and_then(Option::as_ref) else { continue };
                        // The stage it entered as the live engine saw it then.
                        let mut signal = events::signal(env, None);
                        signal.stage_entered = *stage_entered;
                        if !engine::triggered(&p, &signal) {
                            continue;
                        }
                        let subject =
                            Subject { projected, tz, now: *time, event: Some(env), facts: Default::default() };
                        let o = Occasion {
                            kind: "event",
                            key: env.id.clone(),
                            event_id: Some(env.id.clone()),
                            subject: &subject,
                        };
                        self.simulate_one(
                            &p,
                            &o,
                            &segments,
                            &mut history,
                            &mut open,
                            &mut sim,
                            &mut fired_accounts,
                            max_firings,
                            &mut outreach,
                        );
                    }
                    if sim.evaluated as u64 >= SIMULATION_MAX_EVENTS {
                        sim.errors.push(format!("stopped after {SIMULATION_MAX_EVENTS} events; shorten lookback_days"));
                        break;
                    }
                }
            }
            Trigger::Schedule(s) => {
                let today = now.with_timezone(&tz).date_naive();
                let mut after = None;
                loop {
                    let page = store::projection::page(conn, tenant, after, 1000).await?;
                    let Some(last) = page.last() else { break };
                    after = Some(last.account.id);
                    let plans = super::schedule::plan_calendars(conn, tenant, &[*s], &page, tz).await?;
                    for projected in &page {
                        sim.evaluated += 1;
                        if !scheduled(*s, &projected.calendar(tz, &plans), today) {
                            continue;
                        }
                        let account = projected.account.id;
                        if store::ctas::open_of(conn, tenant, &crate::domain::cta::open_key(id, account))
                            .await?
                            .is_some()
                        {
                            open.insert(account);
                        }
                        outreach.load(conn, tenant, account).await?;
                        let subject = Subject { projected, tz, now, event: None, facts: Default::default() };
                        let o = Occasion {
                            kind: "schedule",
                            key: format!("schedule:{today}"),
                            event_id: None,
                            subject: &subject,
                        };
                        self.simulate_one(
                            &p,
                            &o,
                            &segments,
                            &mut history,
                            &mut open,
                            &mut sim,
                            &mut fired_accounts,
                            max_firings,
                            &mut outreach,
                        );
                    }
                }
            }
            Trigger::Manual => {}
        }
        sim.accounts = fired_accounts.len() as i64;
        Ok(sim)
    }

    #[allow(clippy::too_many_arguments, reason = "the simulation's running state, kept apart for clarity")]
    fn simulate_one(
        &self,
        p: &Program,
        o: &Occasion<'_, '_>,
        segments: &engine::Segments,
        history: &mut HashMap<Uuid, Vec<DateTime<Utc>>>,
        open: &mut HashSet<Uuid>,
        sim: &mut Simulation,
        fired_accounts: &mut HashSet<Uuid>,
        max_firings: usize,
        outreach: &mut super::outreach::Preview,
    ) {
        match engine::applies(p, o.subject, segments) {
            Applies::Yes => {}
            Applies::ConditionError(e) => {
                sim.condition_errors += 1;
                if sim.errors.len() < 20 {
                    sim.errors.push(format!("account {} event {}: {e}", o.subject.projected.account.id, o.key));
                }
                return;
            }
            _ => return,
        }
        sim.matched += 1;
        let account = o.subject.projected.account.id;
        let past = history.entry(account).or_default();
        let (verdict, actions, dedup) = engine::simulate_fire(p, o, segments, past, open.contains(&account), outreach);
        match verdict {
            Verdict::Fire => {
                sim.would_fire += 1;
                past.push(o.subject.now);
                fired_accounts.insert(account);
                if dedup {
                    sim.deduplicated += 1;
                }
                if actions.iter().any(|a| a.kind == "open_cta" && a.status == "done") {
                    open.insert(account);
                }
            }
            Verdict::Cooldown => sim.cooldown += 1,
            Verdict::EnrolmentLimit => sim.limit += 1,
        }
        if sim.firings.len() < max_firings {
            sim.firings.push(Firing {
                id: Uuid::nil(),
                playbook_id: p.id,
                playbook_version: p.version,
                account_id: account,
                trigger_kind: o.kind.to_string(),
                trigger_key: o.key.clone(),
                fire_time: o.subject.now,
                verdict,
                actions,
            });
        }
    }

    /// Evaluates a condition against one account (and a stored event).
    pub(crate) async fn test_condition(
        &self,
        caller: &Caller,
        condition: banso_cel::Expression,
        account: Uuid,
        event: Option<Uuid>,
    ) -> Result<(std::result::Result<bool, String>, BTreeMap<String, String>)> {
        let tenant = caller.tenant_id.as_str();
        let conn = self.db.conn();
        let projected = store::projection::get(conn, tenant, account)
            .await?
            .ok_or_else(|| Error::not_found("account", account.to_string()))?;
        let env = match event {
            Some(e) => Some(
                store::trigger_events::get(conn, tenant, e)
                    .await?
                    .ok_or_else(|| Error::not_found("event", e.to_string()))?,
            ),
            None => None,
        };
        let settings = store::tenants::get(conn, tenant).await?;
        let subject = Subject {
            projected: &projected,
            tz: settings.tz(),
            now: wire::now(),
            event: env.as_ref(),
            facts: Default::default(),
        };
        let facts = subject.facts();
        let result = condition.evaluate_bool(facts).map_err(|e| e.to_string());
        let values = condition
            .paths()
            .into_iter()
            .map(|p| {
                let v = facts.lookup(&p).unwrap_or_else(|| "null".into());
                (p, v)
            })
            .collect();
        Ok((result, values))
    }
}

fn playbook(r: &Row, version: i64, definition: Definition, made: DateTime<Utc>) -> Playbook {
    Playbook {
        id: r.id,
        version,
        definition,
        head_version: r.head_version,
        live_version: r.live_version,
        create_time: r.create_time,
        update_time: made,
        row_version: r.version,
    }
}

/// INVALID_ARGUMENT for an action this deployment cannot run: an
/// update_account action needs the service token key, without which
/// Playbooks cannot call Accounts — refused when saved rather than failing
/// at every firing.
fn runnable(def: &crate::domain::playbook::Definition, updates_accounts: bool) -> Result<()> {
    use crate::domain::playbook::ActionKind;
    let mut v = banso_kit::Violations::new();
    for (i, a) in def.actions.iter().enumerate() {
        if matches!(a.kind, ActionKind::UpdateAccount(_)) && !updates_accounts {
            v.add(
                format!("playbook.actions[{i}].update_account"),
                "this deployment cannot update accounts: set BANSO_SERVICE_TOKEN_SECRET on the playbooks and accounts services",
            );
        }
    }
    v.finish()
}
