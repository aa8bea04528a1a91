//! What the benchmarks need beyond the gRPC API (`bench` feature): seeding
//! the projection in bulk, the daily schedule pass with and without its
//! firings, and the rule engine itself on in-memory subjects — the same
//! code the live consumer runs.

use std::sync::Arc;

use banso_events::{Db, Envelope};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};
use uuid::Uuid;

use crate::{
    app::{
        App,
        engine::{self, LiveSet, Program, Subject},
    },
    domain::{
        LifecycleStage, TouchModel,
        playbook::Band,
        projection::{Account, Health, Reading},
    },
    store::{self, entities::account as a, projection::Projected},
};

/// One account as the bench seeds it.
#[derive(Debug, Clone)]
pub struct BenchAccount {
    pub id: Uuid,
    pub name: String,
    pub lifecycle_stage: &'static str,
    pub touch_model: &'static str,
    pub arr_minor: i64,
    pub owner_id: String,
    pub renewal_date: Option<NaiveDate>,
    pub last_usage_day: Option<NaiveDate>,
    pub stage_since: DateTime<Utc>,
    pub tags: Vec<String>,
    pub industry: String,
}

impl BenchAccount {
    fn account(&self) -> anyhow::Result<Account> {
        Ok(Account {
            id: self.id,
            name: self.name.clone(),
            external_id: None,
            lifecycle_stage: LifecycleStage::parse(self.lifecycle_stage).ok_or_else(|| anyhow::anyhow!("stage"))?,
            touch_model: TouchModel::parse(self.touch_model).ok_or_else(|| anyhow::anyhow!("touch model"))?,
            touch_mix: vec![],
            arr_currency: Some("USD".into()),
            arr_minor: Some(self.arr_minor),
            renewal_date: self.renewal_date,
            contract_start_date: None,
            industry: self.industry.clone(),
            employee_count: Some(250),
            revenue_band: String::new(),
            region: "APAC".into(),
            plan_tier: "enterprise".into(),
            owner_id: self.owner_id.clone(),
            tags: self.tags.clone(),
            attributes: Default::default(),
        })
    }
}

/// Writes accounts into the projection, 500 rows a statement.
pub async fn seed_accounts(conn: &DatabaseConnection, tenant: &str, accounts: &[BenchAccount]) -> anyhow::Result<()> {
    let now = banso_kit::wire::now();
    for chunk in accounts.chunks(500) {
        let mut rows = Vec::with_capacity(chunk.len());
        for b in chunk {
            let acc = b.account()?;
            rows.push(a::ActiveModel {
                account_id: Set(b.id),
                tenant_id: Set(tenant.to_string()),
                deleted: Set(false),
                account: Set(serde_json::to_string(&acc)?),
                health: Set(None),
                lifecycle_stage: Set(b.lifecycle_stage.to_string()),
                stage_since: Set(b.stage_since),
                renewal_date: Set(b.renewal_date),
                last_usage_day: Set(b.last_usage_day),
                create_time: Set(now - chrono::Duration::days(400)),
                update_time: Set(now),
            });
        }
        a::Entity::insert_many(rows).exec_without_returning(conn).await?;
    }
    Ok(())
}

/// Sets the tenant's daily schedule time.
pub async fn set_schedule_time(conn: &DatabaseConnection, tenant: &str, hh_mm: &str) -> anyhow::Result<()> {
    let s = store::tenants::get(conn, tenant).await?;
    let next = store::tenants::Settings { schedule_time: hh_mm.into(), ..s.clone() };
    anyhow::ensure!(store::tenants::update(conn, tenant, &s, &next).await?, "the settings changed meanwhile");
    Ok(())
}

/// The use cases over `conn`, idle (no consumer, relay or schedule task).
fn app(conn: &DatabaseConnection) -> App {
    App { db: Db::new(conn.clone(), Default::default(), crate::NAME), engine: Default::default() }
}

/// One pass of the tenant's live schedule playbooks over its accounts:
/// (selected pairs, firings made). Without `fire`, the selection alone.
pub async fn schedule_pass(
    conn: &DatabaseConnection,
    tenant: &str,
    today: NaiveDate,
    fire: bool,
) -> anyhow::Result<(u64, u64)> {
    Ok(app(conn).schedule_pass(tenant, today, None, fire).await?)
}

/// A set of compiled playbooks, evaluated as the live consumer does.
pub struct Rules {
    set: LiveSet,
}

/// A playbook for [`Rules`]: an event trigger on HealthScoreChanged (with
/// `score_fell_by`), an audience of lifecycle stages, and a CEL condition.
pub struct RuleSpec {
    pub score_fell_by: Option<f64>,
    pub lifecycle_stages: Vec<&'static str>,
    pub condition: String,
}

impl Rules {
    pub fn compile(specs: &[RuleSpec]) -> anyhow::Result<Rules> {
        use crate::domain::playbook::{Audience, Definition, EventTrigger, Routing, Trigger};
        let mut programs = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            let condition = engine::compile(&s.condition).map_err(|e| anyhow::anyhow!("rule {i}: {e}"))?;
            let def = Definition {
                display_name: format!("rule {i}"),
                description: String::new(),
                trigger: Trigger::Event(EventTrigger {
                    event_type: "health_score_changed".into(),
                    band_became: None,
                    score_fell_by: s.score_fell_by,
                    measure_dropped: None,
                    stage_entered: None,
                }),
                audience: Audience {
                    lifecycle_stages: s.lifecycle_stages.iter().filter_map(|x| LifecycleStage::parse(x)).collect(),
                    ..Default::default()
                },
                condition: s.condition.clone(),
                actions: vec![],
                cooldown_secs: 0,
                enrolment_limit: None,
                priority: 0,
                routing: Routing::Dominant,
            };
            programs.push(Arc::new(Program::new(Uuid::now_v7(), 1, def, condition)));
        }
        Ok(Rules { set: LiveSet::new(programs) })
    }

    /// Where the time of [`Rules::evaluate`] goes, in ns per event over
    /// `cases`: (making the variables; the trigger helpers and audiences
    /// alone). The rest is the conditions, with the payload's fields they
    /// read (each decoded on its first read).
    pub fn breakdown(&self, cases: &[Case]) -> (f64, f64) {
        use std::hint::black_box;
        let per_event = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1e9 / cases.len().max(1) as f64;
        let t = std::time::Instant::now();
        for case in cases {
            let subject = Subject {
                projected: &case.projected,
                tz: chrono_tz::UTC,
                now: case.now,
                event: Some(&case.envelope),
                facts: Default::default(),
            };
            black_box(subject.facts());
        }
        let facts = per_event(t);
        let segments = engine::Segments::empty();
        let t = std::time::Instant::now();
        for case in cases {
            let subject = Subject {
                projected: &case.projected,
                tz: chrono_tz::UTC,
                now: case.now,
                event: Some(&case.envelope),
                facts: Default::default(),
            };
            black_box(self.set.gated(&case.signal, &subject, &segments));
        }
        (facts, per_event(t))
    }

    /// How many playbooks one trigger event makes fire for `case`: the
    /// trigger helpers, the audience, the condition — the engine's code,
    /// with the condition's variables made once per event.
    pub fn evaluate(&self, case: &Case) -> usize {
        let segments = engine::Segments::empty();
        let subject = Subject {
            projected: &case.projected,
            tz: chrono_tz::UTC,
            now: case.now,
            event: Some(&case.envelope),
            facts: Default::default(),
        };
        self.set.applying(&case.signal, &subject, &segments).len()
    }
}

/// One trigger event for one account, as the consumer sees it.
pub struct Case {
    projected: Projected,
    envelope: Envelope,
    signal: crate::domain::engine::Signal,
    now: DateTime<Utc>,
}

impl Case {
    /// A HealthScoreChanged from `old` to `new` for `account`, whose
    /// measures hold `measures` (value, previous value).
    pub fn health(
        account: &BenchAccount,
        old: f64,
        new: f64,
        measures: &[(&str, f64, f64)],
        envelope: Envelope,
    ) -> anyhow::Result<Case> {
        let band = |s: f64| {
            if s < 40.0 {
                Band::Red
            } else if s < 70.0 {
                Band::Yellow
            } else {
                Band::Green
            }
        };
        let now = banso_kit::wire::now();
        let health = Health {
            score: new,
            band: band(new),
            trend_7d: Some(new - old),
            trend_30d: None,
            measures: measures
                .iter()
                .map(|(m, v, p)| (m.to_string(), Reading { value: Some(*v), previous_value: Some(*p), points: None }))
                .collect(),
            time: now,
        };
        let projected = Projected {
            account: account.account()?,
            health: Some(health),
            stage_since: account.stage_since,
            last_usage_day: None,
            create_time: now,
        };
        let signal = crate::events::signal(&envelope, None);
        Ok(Case { projected, envelope, signal, now })
    }
}
