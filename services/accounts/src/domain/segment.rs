//! Segments: saved account filters written in CEL.

use banso_events::db::{Identified, Versioned};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What a client sets of a segment: a name, a description, and an
/// expression that compiled when it was saved.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentFields {
    pub display_name: String,
    pub description: String,
    pub expression: String,
    /// Touch patterns not to be used for the members (canonical order).
    pub forbidden_touch_models: Vec<super::TouchModel>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub id: Uuid,
    pub fields: SegmentFields,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub version: i64,
}

impl Versioned for Segment {
    fn version(&self) -> i64 {
        self.version
    }

    fn advance(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.update_time = now;
    }
}

impl Identified for Segment {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

banso_kit::field_paths! {
    /// What UpdateSegment may change.
    pub enum SegmentField {
        DisplayName = "display_name",
        Description = "description",
        Expression = "expression",
        ForbiddenTouchModels = "forbidden_touch_models",
    }
}

impl SegmentFields {
    /// Copies the fields named in `mask` from `new`.
    pub fn apply(&mut self, new: &SegmentFields, mask: &[SegmentField]) {
        for field in mask {
            match field {
                SegmentField::DisplayName => self.display_name = new.display_name.clone(),
                SegmentField::Description => self.description = new.description.clone(),
                SegmentField::Expression => self.expression = new.expression.clone(),
                SegmentField::ForbiddenTouchModels => self.forbidden_touch_models = new.forbidden_touch_models.clone(),
            }
        }
    }
}

use std::collections::BTreeMap;

use banso_cel::{AccountFacts, Expression, Fact, Facts};
use chrono::NaiveDate;

use super::{Account, AttrValue};

/// Compiles a segment expression against the account environment.
pub fn compile(source: &str) -> Result<Expression, banso_cel::CompileError> {
    Expression::compile(source, &banso_cel::account_schema())
}

/// What a segment expression sees of `a` (docs/cel.md); `today` is the
/// tenant's date, for `days_to_renewal`.
pub fn facts(a: &Account, today: NaiveDate, now: DateTime<Utc>) -> Facts<'_> {
    facts_of(&a.fields, today, now)
}

/// What an expression sees of an account's fields (see [`facts`]).
pub fn facts_of(f: &super::AccountFields, today: NaiveDate, now: DateTime<Utc>) -> Facts<'_> {
    let attributes: BTreeMap<String, Fact> = f
        .custom_attributes
        .iter()
        .map(|(k, v)| {
            let fact = match v {
                AttrValue::String(s) => Fact::String(s.clone()),
                AttrValue::Int(i) => Fact::Int(*i),
                AttrValue::Double(d) => Fact::Double(*d),
                AttrValue::Bool(b) => Fact::Bool(*b),
                AttrValue::Date(d) => Fact::Date(*d),
                AttrValue::Timestamp(t) => Fact::Timestamp(*t),
            };
            (k.clone(), fact)
        })
        .collect();
    AccountFacts {
        name: &f.name,
        external_id: f.external_id.as_deref(),
        industry: &f.industry,
        employee_count: f.employee_count,
        revenue_band: &f.revenue_band,
        region: &f.region,
        plan_tier: &f.plan_tier,
        lifecycle_stage: f.lifecycle_stage.as_str(),
        touch_model: f.touch_model.as_str(),
        owner_id: &f.owner_id,
        arr: f.arr.as_ref().map(|m| m.amount_minor).unwrap_or(0),
        arr_currency: f.arr.as_ref().map(|m| m.currency_code.as_str()).unwrap_or(""),
        contract_start_date: f.contract_start_date,
        renewal_date: f.renewal_date,
        tags: &f.tags,
        attributes,
        today,
    }
    .into_facts(now)
}

/// Is `a` a member? An evaluation error (say, a null date compared) means
/// "not a member", with the reason.
pub fn is_member(expr: &Expression, a: &Account, today: NaiveDate, now: DateTime<Utc>) -> Result<bool, String> {
    expr.evaluate_bool(&facts(a, today, now)).map_err(|e| e.to_string())
}
