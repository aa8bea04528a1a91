//! What surveys read of accounts and contacts, kept from Accounts', Health's
//! and Playbooks' events (never their databases): attributes for campaign
//! selection and result groups, the health band for the matrix, the
//! success plan's objective for the outcome question.

use std::collections::BTreeMap;

use banso_cel::{AccountFacts, Attr, Fact, Facts};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{LifecycleStage, TouchModel};

named!(Band { Red = "red", Yellow = "yellow", Green = "green" });
named!(Level { Executive = "executive", Manager = "manager", Practitioner = "practitioner" });

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Account {
    pub id: Uuid,
    pub name: String,
    pub external_id: Option<String>,
    pub lifecycle_stage: LifecycleStage,
    pub touch_model: TouchModel,
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
    /// The `account` (and `now`) variables of segments.
    pub(crate) fn facts(&self, today: NaiveDate, now: DateTime<Utc>) -> Facts<'_> {
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

/// The account as the projection holds it, with what other services said.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Projected {
    pub account: Account,
    /// When it entered its current lifecycle stage (as far as the
    /// projection saw: its creation, or the update that moved it).
    pub stage_since: DateTime<Utc>,
    pub band: Option<Band>,
    pub score: Option<f64>,
    /// The objective of its latest success plan, for the outcome question.
    pub plan_outcome: Option<String>,
}

impl Projected {
    /// The attributes results group by, as they are now: stored with an
    /// answer, so results see the account as it was when it answered.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let a = &self.account;
        Snapshot {
            industry: a.industry.clone(),
            size: size_band(a.employee_count).to_string(),
            region: a.region.clone(),
            plan: a.plan_tier.clone(),
            lifecycle_stage: a.lifecycle_stage.as_str().to_string(),
            touch_model: a.touch_model.as_str().to_string(),
            health_band: self.band.map(|b| b.as_str().to_string()).unwrap_or_default(),
        }
    }
}

/// An account's result groups at one moment; "" where unknown.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub industry: String,
    pub size: String,
    pub region: String,
    pub plan: String,
    pub lifecycle_stage: String,
    pub touch_model: String,
    pub health_band: String,
}

/// Size bands by employees: 1–10, 11–50, 51–200, 201–1000, 1001+.
pub(crate) fn size_band(employees: Option<i64>) -> &'static str {
    match employees {
        Some(..=0) | None => "",
        Some(1..=10) => "1-10",
        Some(11..=50) => "11-50",
        Some(51..=200) => "51-200",
        Some(201..=1000) => "201-1000",
        Some(_) => "1001+",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Contact {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    pub email: String,
    pub department: String,
    pub level: Option<Level>,
    pub champion: bool,
    pub decision_maker: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_bands_cover_every_count() {
        let bands: Vec<_> = [None, Some(0), Some(1), Some(10), Some(11), Some(200), Some(201), Some(1000), Some(1001)]
            .into_iter()
            .map(size_band)
            .collect();
        assert_eq!(bands, ["", "", "1-10", "1-10", "11-50", "51-200", "201-1000", "201-1000", "1001+"]);
    }
}
