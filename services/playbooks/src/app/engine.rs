//! The engine: for one account and one trigger, does a playbook apply
//! (trigger helpers, audience, CEL condition), may it fire (cooldown,
//! enrolment limit), and what its actions do. Live firings write through the
//! use case's transaction; simulation runs the same decisions against an
//! in-memory history and writes nothing.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
};

use banso_cel::{ConditionSet, Expression, Fact, Facts};
use banso_events::{Envelope, Tx, envelope::type_of};
use banso_kit::Result;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    plans::{Offered, Started},
    programmes::Enrolled,
};
use crate::{
    domain::{
        cta::{self, Cta, Reason, Status},
        engine::{self as rules, Signal, Verdict},
        playbook::{ActionKind, ChangeStatus, Definition, OwnerRule, Trigger},
        projection::{Segment, health_facts},
        template, touch,
    },
    events,
    store::{
        self,
        account_changes::AccountChange,
        firings::{ActionOutcome, Firing},
        projection::Projected,
    },
};

/// A version of a playbook, compiled once.
pub(crate) struct Program {
    pub id: Uuid,
    pub version: i64,
    pub def: Definition,
    pub condition: Option<Expression>,
    /// The event trigger's type as an index (see [`rules::event_index`]).
    pub event_index: Option<u8>,
}

impl Program {
    pub(crate) fn new(id: Uuid, version: i64, def: Definition, condition: Option<Expression>) -> Program {
        let event_index = match &def.trigger {
            Trigger::Event(t) => rules::event_index(&t.event_type),
            _ => None,
        };
        Program { id, version, def, condition, event_index }
    }
}

/// A segment with its expression compiled (or why it does not compile).
struct CompiledSegment {
    segment: Segment,
    expr: Option<Expression>,
}

/// A segment's expression compiled once, `None` if it does not compile.
type CompiledExpression = Arc<Option<Expression>>;

/// Compiled playbook versions and segments, shared by every evaluation.
#[derive(Default)]
pub(crate) struct Engine {
    programs: Mutex<HashMap<(Uuid, i64), Arc<Program>>>,
    /// By tenant and trigger: the set its live playbooks were last
    /// evaluated as (replaced when they change).
    sets: Mutex<HashMap<(String, String), Arc<LiveSet>>>,
    segments: Mutex<HashMap<(Uuid, String), CompiledExpression>>,
    /// Wakes the outreach worker once a firing that queued a delivery commits.
    pub(crate) outreach: crate::outreach::Signal,
    /// Wakes the account-change worker once a firing that queued one commits.
    pub(crate) account_changes: crate::outreach::Signal,
    /// Whether update_account actions can run: a service token key is
    /// configured (`BANSO_SERVICE_TOKEN_SECRET`).
    pub(crate) updates_accounts: bool,
}

impl Engine {
    pub(crate) fn new(updates_accounts: bool) -> Self {
        Engine { updates_accounts, ..Default::default() }
    }

    /// A transaction that may have queued work for a worker committed.
    pub(crate) fn after_commit(&self) {
        self.outreach.after_commit();
        self.account_changes.after_commit();
    }
}

/// The CEL environment of conditions.
pub(crate) fn schema() -> banso_cel::Schema {
    banso_cel::playbook_schema()
}

/// Compiles a condition; empty is "always".
pub(crate) fn compile(condition: &str) -> std::result::Result<Option<Expression>, banso_cel::CompileError> {
    if condition.trim().is_empty() { Ok(None) } else { Expression::compile(condition, &schema()).map(Some) }
}

impl Engine {
    /// The compiled version `version` of playbook `id`.
    pub(crate) async fn program(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        tenant: &str,
        id: Uuid,
        version: i64,
    ) -> Result<Arc<Program>> {
        if let Some(p) = self.programs.lock().unwrap_or_else(PoisonError::into_inner).get(&(id, version)) {
            return Ok(p.clone());
        }
        let (def, _) = store::playbooks::definition(conn, tenant, id, version).await?;
        // Saved conditions compiled when saved; one that no longer does (a
        // schema change) never matches, and says so in the log.
        let condition = match compile(&def.condition) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(playbook = %id, version, error = %e, "stored condition does not compile");
                Some(Expression::compile("false", &schema()).map_err(banso_kit::Error::internal)?)
            }
        };
        let p = Arc::new(Program::new(id, version, def, condition));
        self.programs.lock().unwrap_or_else(PoisonError::into_inner).insert((id, version), p.clone());
        Ok(p)
    }

    /// The tenant's live playbooks of `trigger` (`event:<type>`) as one
    /// set, compiled when they change.
    pub(crate) async fn live_set(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        tenant: &str,
        trigger: &str,
        live: &[store::playbooks::Row],
    ) -> Result<Arc<LiveSet>> {
        let mut versions: Vec<(Uuid, i64)> = live.iter().map(|r| (r.id, r.live_version)).collect();
        versions.sort_unstable();
        let key = (tenant.to_string(), trigger.to_string());
        if let Some(set) = self.sets.lock().unwrap_or_else(PoisonError::into_inner).get(&key)
            && set.is_of(&versions)
        {
            return Ok(set.clone());
        }
        let mut programs = Vec::with_capacity(versions.len());
        for (id, version) in &versions {
            programs.push(self.program(conn, tenant, *id, *version).await?);
        }
        let set = Arc::new(LiveSet::new(programs));
        self.sets.lock().unwrap_or_else(PoisonError::into_inner).insert(key, set.clone());
        Ok(set)
    }

    fn segment(&self, s: &Segment) -> Arc<Option<Expression>> {
        let key = (s.id, s.expression.clone());
        let mut cache = self.segments.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .entry(key)
            .or_insert_with(|| Arc::new(Expression::compile(&s.expression, &banso_cel::account_schema()).ok()))
            .clone()
    }

    /// The tenant's segments, compiled.
    pub(crate) async fn segments(&self, conn: &impl sea_orm::ConnectionTrait, tenant: &str) -> Result<Segments> {
        let list = store::projection::segments(conn, tenant).await?;
        Ok(Segments(
            list.into_iter()
                .map(|s| {
                    let expr = (*self.segment(&s)).clone();
                    CompiledSegment { segment: s, expr }
                })
                .collect(),
        ))
    }
}

/// A tenant's segments, compiled, for one round of evaluations.
pub(crate) struct Segments(Vec<CompiledSegment>);

impl Segments {
    /// The segments an account is in at `now`.
    pub(crate) fn of(&self, projected: &Projected, tz: chrono_tz::Tz, now: DateTime<Utc>) -> Vec<&Segment> {
        Subject { projected, tz, now, event: None, facts: Default::default() }.memberships(self)
    }

    /// Whether an account is in one segment at `now` (only its expression
    /// runs).
    pub(crate) fn has(&self, segment: Uuid, projected: &Projected, tz: chrono_tz::Tz, now: DateTime<Utc>) -> bool {
        let Some(s) = self.0.iter().find(|s| s.segment.id == segment) else { return false };
        let subject = Subject { projected, tz, now, event: None, facts: Default::default() };
        s.expr.as_ref().is_some_and(|e| e.evaluate_bool(&subject.account_facts()).unwrap_or(false))
    }

    /// No segments (a tenant that has none, or the bench).
    #[cfg_attr(not(feature = "bench"), allow(dead_code))]
    pub(crate) fn empty() -> Segments {
        Segments(Vec::new())
    }
}

/// One account at one moment, with everything a condition reads.
pub(crate) struct Subject<'a> {
    pub projected: &'a Projected,
    pub tz: chrono_tz::Tz,
    pub now: DateTime<Utc>,
    pub event: Option<&'a Envelope>,
    /// The condition's variables, made once however many playbooks read them.
    pub facts: std::sync::OnceLock<Facts<'a>>,
}

impl<'a> Subject<'a> {
    fn account_facts(&self) -> Facts<'a> {
        let today = self.now.with_timezone(&self.tz).date_naive();
        let projected: &'a Projected = self.projected;
        projected.account.facts(today, self.now)
    }

    /// The variables of a condition: `account`, `health`, `event`, `now`,
    /// borrowing the projection and the event.
    pub(crate) fn facts(&self) -> &Facts<'a> {
        self.facts.get_or_init(|| {
            let today = self.now.with_timezone(&self.tz).date_naive();
            let projected: &'a Projected = self.projected;
            let a = &projected.account;
            let stage_day = projected.stage_since.with_timezone(&self.tz).date_naive();
            banso_cel::PlaybookFacts {
                account: a.account_facts(today),
                touch_mix: a.touch_mix_facts(),
                stage_days: Some((today - stage_day).num_days()),
                health: health_facts(projected.health.as_ref()),
                event: event_facts(self.event),
            }
            .into_facts(self.now)
        })
    }

    /// The segments the account is in.
    fn memberships<'s>(&self, segments: &'s Segments) -> Vec<&'s Segment> {
        let facts = self.account_facts();
        segments
            .0
            .iter()
            .filter(|s| s.expr.as_ref().is_some_and(|e| e.evaluate_bool(&facts).unwrap_or(false)))
            .map(|s| &s.segment)
            .collect()
    }

    /// Template values of this subject.
    fn values(&self, playbook: &str, trigger_kind: &str) -> BTreeMap<&'static str, String> {
        let a = &self.projected.account;
        let today = self.now.with_timezone(&self.tz).date_naive();
        let mut v = BTreeMap::new();
        v.insert("account.id", a.id.to_string());
        v.insert("account.name", a.name.clone());
        v.insert("account.external_id", a.external_id.clone().unwrap_or_default());
        v.insert("account.owner_id", a.owner_id.clone());
        v.insert("account.lifecycle_stage", a.lifecycle_stage.as_str().to_string());
        v.insert("account.touch_model", a.touch_model.as_str().to_string());
        v.insert("account.arr", a.arr_minor.map(|x| x.to_string()).unwrap_or_default());
        v.insert("account.arr_currency", a.arr_currency.clone().unwrap_or_default());
        v.insert("account.renewal_date", a.renewal_date.map(|d| d.to_string()).unwrap_or_default());
        v.insert(
            "account.days_to_renewal",
            a.renewal_date.map(|d| (d - today).num_days().to_string()).unwrap_or_default(),
        );
        v.insert("account.industry", a.industry.clone());
        v.insert("account.region", a.region.clone());
        v.insert("account.plan_tier", a.plan_tier.clone());
        if let Some(h) = &self.projected.health {
            v.insert("health.score", format!("{:.1}", h.score));
            v.insert("health.band", h.band.as_str().to_string());
            v.insert("health.trend_7d", h.trend_7d.map(|t| format!("{t:+.1}")).unwrap_or_default());
            v.insert("health.trend_30d", h.trend_30d.map(|t| format!("{t:+.1}")).unwrap_or_default());
        }
        if let Some(e) = self.event {
            v.insert("event.type", e.payload.as_ref().map(type_of).unwrap_or_default().to_string());
            v.insert("event.id", e.id.clone());
        }
        v.insert("playbook.name", playbook.to_string());
        v.insert("trigger.kind", trigger_kind.to_string());
        v.insert("today", today.to_string());
        v
    }
}

/// The `event` variable: type, id, time, and the payload's fields by their
/// proto names, every one present (enum values by name, e.g. "BAND_RED"),
/// each converted only when a condition first reads it.
pub(crate) fn event_facts(e: Option<&Envelope>) -> banso_cel::EventFacts<'_> {
    let Some(e) = e else { return Default::default() };
    banso_cel::EventFacts {
        event_type: e.payload.as_ref().map(type_of).unwrap_or_default().into(),
        id: e.id.as_str().into(),
        occurred_at: e.occurred_at.as_ref().and_then(|t| banso_kit::wire::time("occurred_at", t).ok()),
        data: match &e.payload {
            Some(p) => banso_cel::EventData::Record(Arc::new(crate::payload::Fields::new(p))),
            None => banso_cel::EventData::Fact(Fact::Map(BTreeMap::new())),
        },
    }
}

/// Whether a playbook applies to a subject: its audience and its condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Applies {
    Yes,
    NotInAudience,
    ConditionFalse,
    ConditionError(String),
}

pub(crate) fn applies(p: &Program, s: &Subject<'_>, segments: &Segments) -> Applies {
    if !in_audience(p, s, segments) {
        return Applies::NotInAudience;
    }
    match &p.condition {
        None => Applies::Yes,
        Some(c) => match c.evaluate_bool(s.facts()) {
            Ok(true) => Applies::Yes,
            Ok(false) => Applies::ConditionFalse,
            Err(e) => Applies::ConditionError(e.to_string()),
        },
    }
}

/// Whether the subject is in the playbook's audience: its lifecycle
/// stages, touch models and segments.
pub(crate) fn in_audience(p: &Program, s: &Subject<'_>, segments: &Segments) -> bool {
    let a = &s.projected.account;
    let aud = &p.def.audience;
    if !aud.lifecycle_stages.is_empty() && !aud.lifecycle_stages.contains(&a.lifecycle_stage) {
        return false;
    }
    if !aud.touch_models.is_empty() && !aud.touch_models.contains(&touch::dominant(&a.mix(), a.touch_model)) {
        return false;
    }
    aud.segment_ids.is_empty() || s.memberships(segments).iter().any(|seg| aud.segment_ids.contains(&seg.id))
}

/// A tenant's live playbooks of one trigger, compiled together, as the
/// consumer evaluates them against each event: their gates (trigger type
/// and helpers, audience) as one compact array beside their conditions as
/// one [`ConditionSet`] — a predicate written in many conditions is
/// decided once an event, the account's segments and dominant touch
/// pattern are found once an event, not once a playbook. What it decides
/// is what [`triggered`] and [`applies`] decide one playbook at a time
/// (tested against them on generated playbooks and events).
pub(crate) struct LiveSet {
    /// The versions it was compiled from, sorted: the cache key.
    key: Vec<(Uuid, i64)>,
    /// Highest priority first (ties by id): the order firings are made in.
    programs: Vec<Arc<Program>>,
    gates: Vec<Gate>,
    /// The event type most of its playbooks are triggered by (a live set
    /// holds one trigger's playbooks: all of them).
    event_index: Option<u8>,
    /// By lifecycle stage, a bit a playbook (`i % 64` of word `i / 64`):
    /// those triggered by an event of `event_index` whose gates ask nothing
    /// more than the stage, and whose audience takes an account in it.
    by_stage: [Vec<u64>; 5],
    /// The others, whose gates are checked one by one.
    checked: Vec<usize>,
    pub(crate) conditions: ConditionSet,
}

/// What a playbook's trigger and audience ask, read without its definition.
#[derive(Debug, Clone, Copy)]
struct Gate {
    /// An event trigger (any other kind is never triggered by an event).
    event: bool,
    event_index: Option<u8>,
    /// Whether its trigger has helpers (`score_fell_by`, …) to check.
    helpers: bool,
    /// The lifecycle stages of its audience, a bit each; 0 when any.
    stages: u8,
    /// The touch models of its audience, a bit each; 0 when any.
    touch_models: u8,
    /// Whether its audience names segments.
    segments: bool,
}

impl Gate {
    fn of(p: &Program) -> Gate {
        let (event, helpers) = match &p.def.trigger {
            Trigger::Event(t) => (
                true,
                t.band_became.is_some()
                    || t.score_fell_by.is_some()
                    || t.measure_dropped.is_some()
                    || t.stage_entered.is_some(),
            ),
            _ => (false, false),
        };
        let aud = &p.def.audience;
        Gate {
            event,
            event_index: p.event_index,
            helpers,
            stages: aud.lifecycle_stages.iter().fold(0, |m, s| m | stage_bit(*s)),
            touch_models: aud.touch_models.iter().fold(0, |m, t| m | touch_bit(*t)),
            segments: !aud.segment_ids.is_empty(),
        }
    }

    /// Whether it asks nothing of an event of its type but the account's
    /// stage.
    fn by_stage(&self) -> bool {
        self.event && self.event_index.is_some() && !self.helpers && self.touch_models == 0 && !self.segments
    }
}

fn stage_bit(s: crate::domain::LifecycleStage) -> u8 {
    1 << (s as u8)
}

fn touch_bit(t: crate::domain::TouchModel) -> u8 {
    1 << (t as u8)
}

/// What a subject's gates read, found once an event.
#[derive(Default)]
struct Seen {
    touch: Option<u8>,
    member_of: Option<Vec<Uuid>>,
}

impl LiveSet {
    pub(crate) fn new(programs: Vec<Arc<Program>>) -> LiveSet {
        let mut programs = programs;
        programs.sort_by(|a, b| b.def.priority.cmp(&a.def.priority).then(a.id.cmp(&b.id)));
        let mut key: Vec<(Uuid, i64)> = programs.iter().map(|p| (p.id, p.version)).collect();
        key.sort_unstable();
        let gates: Vec<Gate> = programs.iter().map(|p| Gate::of(p)).collect();
        let mut counts: HashMap<u8, usize> = HashMap::new();
        for g in &gates {
            if let Some(i) = g.event_index {
                *counts.entry(i).or_default() += 1;
            }
        }
        let event_index = counts.into_iter().max_by_key(|(i, n)| (*n, std::cmp::Reverse(*i))).map(|(i, _)| i);
        let words = programs.len().div_ceil(64);
        let mut by_stage: [Vec<u64>; 5] = std::array::from_fn(|_| vec![0; words]);
        let mut checked = Vec::new();
        for (i, g) in gates.iter().enumerate() {
            if g.by_stage() && g.event_index == event_index {
                for stage in crate::domain::LifecycleStage::ALL {
                    if g.stages == 0 || g.stages & stage_bit(stage) != 0 {
                        by_stage[stage as usize][i / 64] |= 1 << (i % 64);
                    }
                }
            } else {
                checked.push(i);
            }
        }
        let conditions = ConditionSet::new(programs.iter().map(|p| p.condition.clone()));
        LiveSet { key, programs, gates, event_index, by_stage, checked, conditions }
    }

    /// Whether it was compiled from exactly these versions (sorted).
    fn is_of(&self, versions: &[(Uuid, i64)]) -> bool {
        self.key == versions
    }

    /// The playbooks an event triggers for a subject whose audience and
    /// condition hold, in firing order. A condition that fails to evaluate
    /// does not hold.
    pub(crate) fn applying(&self, signal: &Signal, s: &Subject<'_>, segments: &Segments) -> Vec<&Arc<Program>> {
        let gated = self.gated(signal, s, segments);
        let mut out = Vec::new();
        if gated.iter().all(|w| *w == 0) {
            return out;
        }
        let ev = self.conditions.evaluation_of(s.facts(), &gated);
        let (holds, interpreted) = ev.bits();
        for (w, &g) in gated.iter().enumerate() {
            let mut bits = g & (holds[w] | interpreted[w]);
            while bits != 0 {
                let bit = bits & bits.wrapping_neg();
                bits ^= bit;
                let i = w * 64 + bit.trailing_zeros() as usize;
                if interpreted[w] & bit == 0 || ev.condition(i) == Ok(true) {
                    out.push(&self.programs[i]);
                }
            }
        }
        out
    }

    /// The playbooks (a bit each, in firing order) the event triggers
    /// whose audience holds the subject.
    pub(crate) fn gated(&self, signal: &Signal, s: &Subject<'_>, segments: &Segments) -> Vec<u64> {
        let mut gated = match (signal.event_index, self.event_index) {
            (Some(a), Some(b)) if a == b => self.by_stage[s.projected.account.lifecycle_stage as usize].clone(),
            _ => vec![0; self.programs.len().div_ceil(64)],
        };
        let mut seen = Seen::default();
        for &i in &self.checked {
            if self.gate(i, signal, s, segments, &mut seen) {
                gated[i / 64] |= 1 << (i % 64);
            }
        }
        gated
    }

    /// Playbook `i`'s trigger and audience, one by one.
    fn gate(&self, i: usize, signal: &Signal, s: &Subject<'_>, segments: &Segments, seen: &mut Seen) -> bool {
        let (g, p) = (&self.gates[i], &self.programs[i]);
        let a = &s.projected.account;
        let triggered = match (g.event, g.event_index, signal.event_index) {
            (false, ..) => false,
            (true, Some(x), Some(y)) => x == y && (!g.helpers || triggered(p, signal)),
            (true, ..) => triggered(p, signal),
        };
        if !triggered || (g.stages != 0 && g.stages & stage_bit(a.lifecycle_stage) == 0) {
            return false;
        }
        if g.touch_models != 0
            && g.touch_models & *seen.touch.get_or_insert_with(|| touch_bit(touch::dominant(&a.mix(), a.touch_model)))
                == 0
        {
            return false;
        }
        if g.segments {
            let ids = seen.member_of.get_or_insert_with(|| s.memberships(segments).iter().map(|m| m.id).collect());
            if !p.def.audience.segment_ids.iter().any(|id| ids.contains(id)) {
                return false;
            }
        }
        true
    }
}

/// The event helpers of a playbook's trigger, if it is an event trigger.
pub(crate) fn triggered(p: &Program, s: &Signal) -> bool {
    match &p.def.trigger {
        Trigger::Event(t) => match (p.event_index, s.event_index) {
            (Some(a), Some(b)) => a == b && rules::helpers(t, s),
            _ => rules::triggers(t, s),
        },
        _ => false,
    }
}

/// One trigger of one playbook for one account.
pub(crate) struct Occasion<'a, 's> {
    pub kind: &'static str,
    /// The event id, "schedule:<day>", or "manual:<run id>".
    pub key: String,
    pub event_id: Option<String>,
    pub subject: &'s Subject<'a>,
}

/// Fires (or records the suppression of) a playbook whose audience and
/// condition held, in the use case's transaction: once per playbook,
/// account and trigger. Returns the firing, or `None` if this trigger
/// already fired it.
pub(crate) async fn fire(
    tx: &Tx,
    engine: &Engine,
    p: &Program,
    o: &Occasion<'_, '_>,
    segments: &Segments,
) -> Result<Option<Firing>> {
    let conn = tx.conn();
    let tenant = tx.tenant();
    let account = o.subject.projected.account.id;
    let now = o.subject.now;
    let fired = store::firings::fired_times(conn, tenant, p.id, account).await?;
    let verdict = rules::verdict(&p.def, &fired, now);
    let mut firing = Firing {
        id: Uuid::now_v7(),
        playbook_id: p.id,
        playbook_version: p.version,
        account_id: account,
        trigger_kind: o.kind.to_string(),
        trigger_key: o.key.clone(),
        fire_time: now,
        verdict,
        actions: vec![],
    };
    if !store::firings::insert_once(conn, tenant, &firing).await? {
        return Ok(None);
    }
    if verdict != Verdict::Fire {
        metrics::counter!("banso_playbook_suppressed_total", "reason" => verdict.as_str()).increment(1);
        return Ok(Some(firing));
    }
    firing.actions = run_actions(tx, engine, p, o, firing.id, segments).await?;
    store::firings::set_actions(conn, tenant, firing.id, &firing.actions).await?;
    tx.emit(events::playbook_fired(&firing)).await?;
    metrics::counter!("banso_playbook_fired_total").increment(1);
    Ok(Some(firing))
}

/// The patterns forbidden for the subject, with the segment forbidding each.
fn forbidden(s: &Subject<'_>, segments: &Segments) -> Vec<(crate::domain::TouchModel, String)> {
    s.memberships(segments)
        .iter()
        .flat_map(|seg| seg.forbidden.iter().map(|m| (*m, seg.display_name.clone())))
        .collect()
}

async fn run_actions(
    tx: &Tx,
    engine: &Engine,
    p: &Program,
    o: &Occasion<'_, '_>,
    firing: Uuid,
    segments: &Segments,
) -> Result<Vec<ActionOutcome>> {
    let a = &o.subject.projected.account;
    let served = touch::served(&a.mix(), a.touch_model, p.def.routing);
    let forbidden = forbidden(o.subject, segments);
    let values = o.subject.values(&p.def.display_name, o.kind);
    let mut out = Vec::with_capacity(p.def.actions.len());
    for (i, action) in p.def.actions.iter().enumerate() {
        let mut outcome = ActionOutcome {
            index: i as u32,
            kind: action.kind.name().to_string(),
            status: "done".into(),
            detail: String::new(),
            resource_id: None,
        };
        if let Err(skip) = touch::route(action, &served, &forbidden) {
            outcome.status = "skipped".into();
            outcome.detail = skip.to_string();
            out.push(outcome);
            continue;
        }
        match &action.kind {
            ActionKind::OpenCta(spec) => {
                let (cta, opened) = open_or_raise(tx, p, o, spec, &values).await?;
                outcome.detail = if opened {
                    format!("opened cta {}", cta.id)
                } else {
                    format!("raised cta {} to {}", cta.id, cta.priority.as_str())
                };
                outcome.resource_id = Some(cta.id.to_string());
            }
            ActionKind::SendOutreach(spec) => {
                if super::outreach::queue(tx, p, o, firing, spec, &values, &mut outcome).await? {
                    engine.outreach.queued();
                }
            }
            ActionKind::Enrol { programme_id } => {
                let account = o.subject.projected.account.id;
                match super::programmes::enrol(tx, *programme_id, account, Some(p.id), "").await? {
                    Enrolled::New(e) => {
                        outcome.detail = format!("enrolled in programme {programme_id}");
                        outcome.resource_id = Some(e.id.to_string());
                    }
                    Enrolled::Already(e) => {
                        outcome.detail = format!("already enrolled in programme {programme_id}");
                        outcome.resource_id = Some(e.id.to_string());
                    }
                    Enrolled::Refused(why) => {
                        outcome.status = "failed".into();
                        outcome.detail = why;
                    }
                }
            }
            ActionKind::StartSuccessPlan { template_id } => {
                let account = o.subject.projected.account.id;
                match super::plans::start(tx, *template_id, account, p.id).await? {
                    Started::New(plan) => {
                        outcome.detail = format!("started success plan {} from template {template_id}", plan.id);
                        outcome.resource_id = Some(plan.id.to_string());
                    }
                    Started::Already(plan) => {
                        outcome.detail =
                            format!("already has active success plan {} from template {template_id}", plan.id);
                        outcome.resource_id = Some(plan.id.to_string());
                    }
                    Started::Refused(why) => {
                        outcome.status = "failed".into();
                        outcome.detail = why;
                    }
                }
            }
            ActionKind::ProposeSuccessModel { model_id } => {
                let today = o.subject.now.with_timezone(&o.subject.tz).date_naive();
                match super::plans::offer(tx, *model_id, o.subject.projected, p.id, today).await? {
                    Offered::New(cta) => {
                        outcome.detail = format!("proposed success model {model_id}: opened cta {cta}");
                        outcome.resource_id = Some(cta.to_string());
                    }
                    Offered::Refused(why) => {
                        outcome.status = "skipped".into();
                        outcome.detail = why;
                    }
                }
            }
            ActionKind::UpdateAccount(change) => {
                // Applied through Accounts' API by the worker once this
                // transaction commits: never a call to another service
                // inside it. The worker writes the result into this outcome.
                let queued = AccountChange {
                    id: Uuid::now_v7(),
                    firing_id: firing,
                    action_index: i as u32,
                    playbook_id: p.id,
                    account_id: a.id,
                    change: change.clone(),
                    status: ChangeStatus::Pending,
                    attempts: 0,
                    detail: String::new(),
                    create_time: o.subject.now,
                };
                store::account_changes::insert(tx.conn(), tx.tenant(), &queued).await?;
                engine.account_changes.queued();
                outcome.detail = format!("queued account update: {}", change.describe());
                outcome.resource_id = Some(queued.id.to_string());
            }
        }
        out.push(outcome);
    }
    Ok(out)
}

/// The one open CTA of (playbook, account): opened, or raised by this firing.
async fn open_or_raise(
    tx: &Tx,
    p: &Program,
    o: &Occasion<'_, '_>,
    spec: &crate::domain::playbook::OpenCta,
    values: &BTreeMap<&'static str, String>,
) -> Result<(Cta, bool)> {
    let (conn, tenant) = (tx.conn(), tx.tenant());
    let account = &o.subject.projected.account;
    let now = o.subject.now;
    let reason = Reason {
        time: now,
        text: template::render(if spec.description.is_empty() { &spec.title } else { &spec.description }, values),
        playbook_id: Some(p.id),
        trigger_event_id: o.event_id.clone(),
    };
    let key = cta::open_key(p.id, account.id);
    if let Some(current) = store::ctas::open_of(conn, tenant, &key).await? {
        let mut next = current.clone();
        let mut changed = next.raise(reason, spec.priority);
        if next.effective_status(now) == Status::Open && next.status == Status::Snoozed {
            // Raised while its snooze has passed: it reads as open; make it so.
            next.status = Status::Open;
            next.snooze_until = None;
            changed.push("status");
        }
        next.update_time = now;
        next.version += 1;
        if !store::ctas::update(conn, tenant, &current, &next).await? {
            return Err(banso_kit::Error::Aborted {
                reason: "CONCURRENT_UPDATE",
                message: format!("cta {} changed while a playbook raised it", current.id),
            });
        }
        tx.emit(events::cta_updated(&next, &changed)).await?;
        return Ok((next, false));
    }
    let owner = match &spec.owner {
        OwnerRule::AccountOwner => account.owner_id.clone(),
        OwnerRule::User(u) => u.clone(),
        OwnerRule::RoundRobin(users) => {
            let turn = store::playbooks::next_turn(conn, tenant, p.id).await?;
            users.get((turn.rem_euclid(users.len().max(1) as i64)) as usize).cloned().unwrap_or_default()
        }
    };
    let today = now.with_timezone(&o.subject.tz).date_naive();
    let cta = Cta {
        id: Uuid::now_v7(),
        account_id: account.id,
        playbook_id: Some(p.id),
        playbook_version: p.version,
        cta_type: spec.cta_type,
        priority: spec.priority,
        status: Status::Open,
        title: template::render(&spec.title, values),
        description: template::render(&spec.description, values),
        owner_id: owner,
        due_date: today.checked_add_days(chrono::Days::new(u64::from(spec.due_in_days))),
        tasks: cta::tasks_from(&spec.tasks),
        reasons: vec![reason],
        snooze_until: None,
        outcome: None,
        close_note: String::new(),
        create_time: now,
        update_time: now,
        close_time: None,
        version: 1,
    };
    store::ctas::insert(conn, tenant, &cta).await?;
    tx.emit(events::cta_opened(&cta)).await?;
    Ok((cta, true))
}

/// What a simulated firing would do, without writing: the verdict against
/// `history` (the account's earlier firings, real and simulated), and each
/// action's outcome as the live engine would record it. `open` holds the
/// accounts with an open CTA of this playbook (real or simulated).
pub(crate) fn simulate_fire(
    p: &Program,
    o: &Occasion<'_, '_>,
    segments: &Segments,
    history: &[DateTime<Utc>],
    open_cta: bool,
    outreach: &mut super::outreach::Preview,
) -> (Verdict, Vec<ActionOutcome>, bool) {
    let verdict = rules::verdict(&p.def, history, o.subject.now);
    if verdict != Verdict::Fire {
        return (verdict, vec![], false);
    }
    let a = &o.subject.projected.account;
    let served = touch::served(&a.mix(), a.touch_model, p.def.routing);
    let forbidden = forbidden(o.subject, segments);
    let values = o.subject.values(&p.def.display_name, o.kind);
    let mut deduplicated = false;
    let outcomes = p
        .def
        .actions
        .iter()
        .enumerate()
        .map(|(i, action)| {
            let mut outcome = ActionOutcome {
                index: i as u32,
                kind: action.kind.name().to_string(),
                status: "done".into(),
                detail: String::new(),
                resource_id: None,
            };
            if let Err(skip) = touch::route(action, &served, &forbidden) {
                outcome.status = "skipped".into();
                outcome.detail = skip.to_string();
                return outcome;
            }
            match &action.kind {
                ActionKind::OpenCta(spec) => {
                    if open_cta {
                        deduplicated = true;
                        outcome.detail = "would raise the open cta".into();
                    } else {
                        outcome.detail = format!("would open cta \"{}\"", template::render(&spec.title, &values));
                    }
                }
                ActionKind::SendOutreach(spec) => outreach.send(spec, o, &values, &mut outcome),
                ActionKind::Enrol { programme_id } => {
                    outcome.detail = format!("would enrol in programme {programme_id}");
                }
                ActionKind::StartSuccessPlan { template_id } => {
                    outcome.detail = format!("would start a success plan from template {template_id}");
                }
                ActionKind::ProposeSuccessModel { model_id } => {
                    outcome.detail = format!("would propose success model {model_id}");
                }
                ActionKind::UpdateAccount(change) => {
                    let moves = change.stage_after(a.lifecycle_stage).is_some()
                        || change.tags_after(&a.tags).is_some()
                        || !change.set_attributes.is_empty();
                    outcome.detail = if moves {
                        format!("would update the account: {}", change.describe())
                    } else {
                        "would change nothing: the account already is so".into()
                    };
                }
            }
            outcome
        })
        .collect();
    (verdict, outcomes, deduplicated)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use banso_proto::events as ev;
    use chrono::{NaiveDate, TimeZone};

    use super::*;
    use crate::domain::{
        LifecycleStage, TouchModel,
        playbook::{Audience, Band, EventTrigger, MeasureDrop, Routing},
        projection::{Account, Health, Reading},
        touch::Share,
    };

    /// A small deterministic generator.
    struct Gen(u64);

    impl Gen {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) % n as u64) as usize
        }
        fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
            xs[self.below(xs.len())].clone()
        }
        fn some<T: Clone>(&mut self, xs: &[T]) -> Vec<T> {
            let mut out: Vec<T> = Vec::new();
            for x in xs {
                if self.below(3) == 0 {
                    out.push(x.clone());
                }
            }
            out
        }
    }

    const CONDITIONS: &[&str] = &[
        "",
        "health.score < 50.0",
        "health.band == 'red' && account.arr > 100000",
        "health.band == 'red' || account.lifecycle_stage in ['adoption', 'renewal']",
        "account.days_to_renewal != null && account.days_to_renewal < 90 && health.trend_7d < -3.0",
        "'vip' in account.tags && health.measures.events_30d.value < health.measures.events_30d.previous_value * 0.5",
        "event.data.old_score - event.data.new_score >= 10.0",
        "event.data.new_band == 'BAND_RED'",
        // Read only by the interpreter, or an error for some accounts.
        "account.tags.exists(t, t == 'vip')",
        "account.renewal_date < now",
        "event.data.no_such_field > 1",
        "!(health.score < 50.0) && account.owner_id != ''",
    ];

    fn program(g: &mut Gen, segments: &[Uuid]) -> Arc<Program> {
        let trigger = match g.below(8) {
            0 => Trigger::Manual,
            1 => Trigger::Event(EventTrigger {
                event_type: "account_updated".into(),
                band_became: None,
                score_fell_by: None,
                measure_dropped: None,
                stage_entered: None,
            }),
            _ => Trigger::Event(EventTrigger {
                event_type: "health_score_changed".into(),
                band_became: if g.below(4) == 0 { Some(g.pick(&[Band::Red, Band::Yellow])) } else { None },
                score_fell_by: if g.below(4) == 0 { Some(g.pick(&[5.0, 20.0])) } else { None },
                measure_dropped: if g.below(6) == 0 {
                    Some(MeasureDrop { measure: "events_30d".into(), percent: 30.0 })
                } else {
                    None
                },
                stage_entered: None,
            }),
        };
        let condition = g.pick(CONDITIONS).to_string();
        let def = Definition {
            display_name: "p".into(),
            description: String::new(),
            trigger,
            audience: Audience {
                lifecycle_stages: g.some(&LifecycleStage::ALL),
                touch_models: g.some(&[TouchModel::High, TouchModel::Low, TouchModel::Tech]),
                segment_ids: g.some(segments),
            },
            condition: condition.clone(),
            actions: vec![],
            cooldown_secs: 0,
            enrolment_limit: None,
            priority: g.pick(&[0, 0, 5, 10]),
            routing: Routing::Dominant,
        };
        let compiled = compile(&condition).unwrap();
        Arc::new(Program::new(Uuid::now_v7(), 1, def, compiled))
    }

    fn projected(g: &mut Gen) -> Projected {
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        let score = g.pick(&[20.0, 45.0, 80.0]);
        Projected {
            account: Account {
                id: Uuid::now_v7(),
                name: "Acme".into(),
                external_id: None,
                lifecycle_stage: g.pick(&LifecycleStage::ALL),
                touch_model: g.pick(&[TouchModel::High, TouchModel::Low, TouchModel::Tech]),
                touch_mix: if g.below(2) == 0 {
                    vec![]
                } else {
                    vec![Share { model: TouchModel::Tech, percent: 70 }, Share { model: TouchModel::High, percent: 30 }]
                },
                arr_currency: Some("USD".into()),
                arr_minor: Some(g.pick(&[0, 500_000, 5_000_000])),
                renewal_date: if g.below(3) == 0 { None } else { Some(today + chrono::Days::new(g.pick(&[10, 200]))) },
                contract_start_date: None,
                industry: "software".into(),
                employee_count: None,
                revenue_band: String::new(),
                region: String::new(),
                plan_tier: String::new(),
                owner_id: g.pick(&["", "csm-1"]).into(),
                tags: if g.below(2) == 0 { vec!["vip".into()] } else { vec![] },
                attributes: Default::default(),
            },
            health: (g.below(5) != 0).then(|| Health {
                score,
                band: if score < 40.0 {
                    Band::Red
                } else if score < 70.0 {
                    Band::Yellow
                } else {
                    Band::Green
                },
                trend_7d: Some(g.pick(&[-10.0, 0.0, 4.0])),
                trend_30d: None,
                measures: BTreeMap::from([(
                    "events_30d".to_string(),
                    Reading { value: Some(g.pick(&[10.0, 90.0])), previous_value: Some(100.0), points: None },
                )]),
                time: now,
            }),
            stage_since: now,
            last_usage_day: None,
            create_time: now,
        }
    }

    /// What the set decides is what each playbook decides alone, in
    /// priority order, on generated playbooks, accounts and events.
    #[test]
    fn a_live_set_applies_what_each_playbook_applies_alone() {
        let mut g = Gen(20_261_206);
        let segment_ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let segments = Segments(
            [("account.arr > 100000", 0), ("'vip' in account.tags", 1), ("account.name.size() > 100", 2)]
                .into_iter()
                .map(|(e, i)| CompiledSegment {
                    segment: Segment {
                        id: segment_ids[i],
                        display_name: format!("s{i}"),
                        expression: e.into(),
                        forbidden: vec![],
                    },
                    expr: Expression::compile(e, &banso_cel::account_schema()).ok(),
                })
                .collect(),
        );
        let programs: Vec<Arc<Program>> = (0..300).map(|_| program(&mut g, &segment_ids)).collect();
        let set = LiveSet::new(programs.clone());
        assert!(set.conditions.atoms() < 20, "shared: {} atoms", set.conditions.atoms());
        let mut expected_order = programs.clone();
        expected_order.sort_by(|a, b| b.def.priority.cmp(&a.def.priority).then(a.id.cmp(&b.id)));
        let (mut applied, mut checked) = (0, 0);
        for _ in 0..400 {
            let projected = projected(&mut g);
            let (old, new) = (g.pick(&[40.0, 90.0]), g.pick(&[20.0, 45.0, 85.0]));
            let env = banso_events::envelope::new(
                "acme",
                "health",
                banso_events::Payload::HealthScoreChanged(ev::HealthScoreChanged {
                    account_id: projected.account.id.to_string(),
                    old_score: (g.below(4) != 0).then_some(old),
                    new_score: new,
                    old_band: g.pick(&[1, 2, 3]),
                    new_band: g.pick(&[1, 2, 3]),
                    measures: vec![ev::MeasureReading {
                        measure: "events_30d".into(),
                        value: Some(g.pick(&[10.0, 90.0])),
                        previous_value: Some(100.0),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            );
            let signal = crate::events::signal(&env, None);
            let subject = Subject {
                projected: &projected,
                tz: chrono_tz::Asia::Tokyo,
                now: Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap(),
                event: Some(&env),
                facts: Default::default(),
            };
            // Each alone, on a fresh subject (nothing remembered).
            let alone_subject = Subject { facts: Default::default(), ..subject };
            let alone: Vec<Uuid> = expected_order
                .iter()
                .filter(|p| triggered(p, &signal) && applies(p, &alone_subject, &segments) == Applies::Yes)
                .map(|p| p.id)
                .collect();
            let together: Vec<Uuid> = set.applying(&signal, &subject, &segments).iter().map(|p| p.id).collect();
            assert_eq!(together, alone);
            applied += alone.len();
            checked += programs.len();
        }
        // Neither never nor always.
        assert!(applied > checked / 50 && applied < checked / 2, "{applied} of {checked}");
    }
}
