//! What conditions and templates read of an account, kept from other
//! services' events (never their databases): its attributes and touch mix
//! from Accounts, its latest score from Health.

use std::collections::BTreeMap;

use banso_cel::{AccountFacts, Fact, Facts};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{LifecycleStage, TouchModel, playbook::Band, touch::Share};

/// A custom attribute's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Attr {
    String(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
}

impl From<&Attr> for Fact {
    fn from(a: &Attr) -> Fact {
        match a {
            Attr::String(s) => Fact::String(s.clone()),
            Attr::Int(i) => Fact::Int(*i),
            Attr::Double(d) => Fact::Double(*d),
            Attr::Bool(b) => Fact::Bool(*b),
            Attr::Date(d) => Fact::Date(*d),
            Attr::Timestamp(t) => Fact::Timestamp(*t),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Account {
    pub id: Uuid,
    pub name: String,
    pub external_id: Option<String>,
    pub lifecycle_stage: LifecycleStage,
    /// The dominant pattern, as Accounts sends it.
    pub touch_model: TouchModel,
    /// Empty when Accounts sent no mix: 100% `touch_model`.
    #[serde(default)]
    pub touch_mix: Vec<Share>,
    pub arr_currency: Option<String>,
    pub arr_minor: Option<i64>,
    pub renewal_date: Option<NaiveDate>,
    pub contract_start_date: Option<NaiveDate>,
    pub industry: String,
    pub employee_count: Option<i64>,
    pub revenue_band: String,
    pub region: String,
    pub plan_tier: String,
    pub owner_id: String,
    pub tags: Vec<String>,
    pub attributes: BTreeMap<String, Attr>,
}

impl Account {
    pub(crate) fn mix(&self) -> Vec<Share> {
        if self.touch_mix.is_empty() {
            vec![Share { model: self.touch_model, percent: 100 }]
        } else {
            self.touch_mix.clone()
        }
    }

    /// The `account` (and `now`) variables of CEL: segments' and playbooks'.
    pub(crate) fn facts(&self, today: NaiveDate, now: DateTime<Utc>) -> Facts {
        AccountFacts {
            name: &self.name,
            external_id: self.external_id.as_deref(),
            industry: &self.industry,
            employee_count: self.employee_count,
            revenue_band: &self.revenue_band,
            region: &self.region,
            plan_tier: &self.plan_tier,
            lifecycle_stage: self.lifecycle_stage.as_str(),
            touch_model: self.touch_model.as_str(),
            owner_id: &self.owner_id,
            arr: self.arr_minor.unwrap_or(0),
            arr_currency: self.arr_currency.as_deref().unwrap_or_default(),
            contract_start_date: self.contract_start_date,
            renewal_date: self.renewal_date,
            tags: &self.tags,
            attributes: self.attributes.iter().map(|(k, v)| (k.clone(), Fact::from(v))).collect(),
            today,
        }
        .into_facts(now)
    }
}

/// One measure of the latest score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Reading {
    pub value: Option<f64>,
    pub previous_value: Option<f64>,
    pub points: Option<f64>,
}

/// The latest HealthScoreChanged of an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Health {
    pub score: f64,
    pub band: Band,
    pub trend_7d: Option<f64>,
    pub trend_30d: Option<f64>,
    pub measures: BTreeMap<String, Reading>,
    pub time: DateTime<Utc>,
}

/// The `health` variable: the latest score, or nulls before the first.
pub(crate) fn health_fact(h: Option<&Health>) -> Fact {
    let opt = |v: Option<f64>| v.map_or(Fact::Null, Fact::Double);
    let measures = h
        .map(|h| {
            h.measures
                .iter()
                .map(|(k, r)| {
                    let m: BTreeMap<String, Fact> = [
                        ("value".to_string(), opt(r.value)),
                        ("previous_value".to_string(), opt(r.previous_value)),
                        ("points".to_string(), opt(r.points)),
                    ]
                    .into();
                    (k.clone(), Fact::Map(m))
                })
                .collect()
        })
        .unwrap_or_default();
    let fields: BTreeMap<String, Fact> = [
        ("score".to_string(), opt(h.map(|h| h.score))),
        ("band".to_string(), Fact::String(h.map(|h| h.band.as_str()).unwrap_or_default().to_string())),
        ("trend_7d".to_string(), opt(h.and_then(|h| h.trend_7d))),
        ("trend_30d".to_string(), opt(h.and_then(|h| h.trend_30d))),
        ("measures".to_string(), Fact::Map(measures)),
    ]
    .into();
    Fact::Map(fields)
}

/// A segment as the projection keeps it: the expression that decides
/// membership and the patterns it forbids.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub id: Uuid,
    pub display_name: String,
    pub expression: String,
    pub forbidden: Vec<TouchModel>,
}
