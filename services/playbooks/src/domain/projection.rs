//! What conditions and templates read of an account, kept from other
//! services' events (never their databases): its attributes and touch mix
//! from Accounts, its latest score from Health.

use std::collections::BTreeMap;

use banso_cel::{AccountFacts, Fact, Facts, HealthFacts, TouchMix};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{LifecycleStage, TouchModel, playbook::Band, touch::Share};

pub(crate) use banso_cel::Attr;

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

    /// The `account` (and `now`) variables of segments.
    pub(crate) fn facts(&self, today: NaiveDate, now: DateTime<Utc>) -> Facts<'_> {
        self.account_facts(today).into_facts(now)
    }

    /// The account's values as CEL reads them (today in the tenant's zone).
    pub(crate) fn account_facts(&self, today: NaiveDate) -> AccountFacts<'_> {
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
    }

    /// The shares of its mix as `account.touch_mix` reads them.
    pub(crate) fn touch_mix_facts(&self) -> TouchMix {
        let mut m = TouchMix::default();
        for s in self.mix() {
            let p = i64::from(s.percent);
            match s.model {
                TouchModel::High => m.high = p,
                TouchModel::Low => m.low = p,
                TouchModel::Tech => m.tech = p,
            }
        }
        m
    }
}

/// One measure of the latest score: what conditions read of it, kept in
/// the type they read so that evaluating borrows it.
pub(crate) type Reading = banso_cel::MeasureFacts;

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
pub(crate) fn health_facts(h: Option<&Health>) -> HealthFacts<'_> {
    let Some(h) = h else { return HealthFacts::default() };
    HealthFacts {
        score: Some(h.score),
        band: h.band.as_str().into(),
        trend_7d: h.trend_7d,
        trend_30d: h.trend_30d,
        measures: std::borrow::Cow::Borrowed(&h.measures),
    }
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
