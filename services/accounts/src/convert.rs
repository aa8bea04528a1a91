//! Conversions between the protos and the domain, with validation: shared
//! by the gRPC handlers and the events the service publishes.

use std::collections::BTreeMap;

use banso_kit::{Result, Violations};
use banso_proto::{accounts as pb, types as tpb};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::domain::{
    Account, AccountFields, AccountFilter, AttrValue, Contact, ContactFields, ContactLevel, LifecycleStage, Money,
    TenantSettings, TouchModel, etag, validate,
};

pub(crate) use banso_kit::wire::{timestamp, uuid as parse_id};

pub(crate) use banso_kit::wire::date_to_proto;

pub(crate) fn date_from_proto(v: &mut Violations, field: &str, d: Option<&tpb::Date>) -> Option<NaiveDate> {
    d.and_then(|d| validate::date(v, field, d.year, d.month, d.day))
}

pub(crate) fn money_from_proto(v: &mut Violations, field: &str, m: &tpb::Money) -> Option<Money> {
    let exp = validate::currency(v, &format!("{field}.currency_code"), &m.currency_code);
    if m.amount_minor < 0 {
        v.add(format!("{field}.amount_minor"), format!("must not be negative, got {}", m.amount_minor));
        return None;
    }
    exp.map(|_| Money { currency_code: m.currency_code.clone(), amount_minor: m.amount_minor })
}

pub(crate) fn attr_from_proto(v: &mut Violations, field: &str, a: &tpb::AttributeValue) -> Option<AttrValue> {
    use tpb::attribute_value::Kind;
    match &a.kind {
        None => {
            v.add(
                field,
                "must set one of string_value, int_value, double_value, bool_value, date_value, timestamp_value",
            );
            None
        }
        Some(Kind::StringValue(s)) => {
            validate::text(v, &format!("{field}.string_value"), s, 1000);
            Some(AttrValue::String(s.clone()))
        }
        Some(Kind::IntValue(i)) => Some(AttrValue::Int(*i)),
        Some(Kind::DoubleValue(d)) if d.is_finite() => Some(AttrValue::Double(*d)),
        Some(Kind::DoubleValue(d)) => {
            v.add(format!("{field}.double_value"), format!("must be a finite number, got {d}"));
            None
        }
        Some(Kind::BoolValue(b)) => Some(AttrValue::Bool(*b)),
        Some(Kind::DateValue(d)) => {
            validate::date(v, &format!("{field}.date_value"), d.year, d.month, d.day).map(AttrValue::Date)
        }
        Some(Kind::TimestampValue(t)) => {
            match DateTime::from_timestamp(t.seconds, t.nanos.try_into().unwrap_or(u32::MAX)) {
                Some(t) => Some(AttrValue::Timestamp(t)),
                None => {
                    v.add(format!("{field}.timestamp_value"), "is not a valid timestamp");
                    None
                }
            }
        }
    }
}

pub(crate) fn attr_to_proto(a: &AttrValue) -> tpb::AttributeValue {
    use tpb::attribute_value::Kind;
    let kind = match a {
        AttrValue::String(s) => Kind::StringValue(s.clone()),
        AttrValue::Int(i) => Kind::IntValue(*i),
        AttrValue::Double(d) => Kind::DoubleValue(*d),
        AttrValue::Bool(b) => Kind::BoolValue(*b),
        AttrValue::Date(d) => Kind::DateValue(date_to_proto(*d)),
        AttrValue::Timestamp(t) => Kind::TimestampValue(timestamp(*t)),
    };
    tpb::AttributeValue { kind: Some(kind) }
}

pub(crate) fn stage_from_proto(v: &mut Violations, field: &str, raw: i32, required: bool) -> Option<LifecycleStage> {
    match pb::LifecycleStage::try_from(raw) {
        Ok(pb::LifecycleStage::Unspecified) if required => {
            v.add(field, "is required (LIFECYCLE_STAGE_UNSPECIFIED is not a stage)");
            None
        }
        Ok(pb::LifecycleStage::Unspecified) => None,
        Ok(pb::LifecycleStage::Onboarding) => Some(LifecycleStage::Onboarding),
        Ok(pb::LifecycleStage::Adoption) => Some(LifecycleStage::Adoption),
        Ok(pb::LifecycleStage::Expansion) => Some(LifecycleStage::Expansion),
        Ok(pb::LifecycleStage::Renewal) => Some(LifecycleStage::Renewal),
        Ok(pb::LifecycleStage::Churned) => Some(LifecycleStage::Churned),
        Err(_) => {
            v.add(field, format!("{raw} is not a LifecycleStage"));
            None
        }
    }
}

pub(crate) fn stage_to_proto(s: LifecycleStage) -> pb::LifecycleStage {
    match s {
        LifecycleStage::Onboarding => pb::LifecycleStage::Onboarding,
        LifecycleStage::Adoption => pb::LifecycleStage::Adoption,
        LifecycleStage::Expansion => pb::LifecycleStage::Expansion,
        LifecycleStage::Renewal => pb::LifecycleStage::Renewal,
        LifecycleStage::Churned => pb::LifecycleStage::Churned,
    }
}

pub(crate) fn touch_from_proto(v: &mut Violations, field: &str, raw: i32, required: bool) -> Option<TouchModel> {
    match pb::TouchModel::try_from(raw) {
        Ok(pb::TouchModel::Unspecified) if required => {
            v.add(field, "is required (TOUCH_MODEL_UNSPECIFIED is not a touch model)");
            None
        }
        Ok(pb::TouchModel::Unspecified) => None,
        Ok(pb::TouchModel::High) => Some(TouchModel::High),
        Ok(pb::TouchModel::Low) => Some(TouchModel::Low),
        Ok(pb::TouchModel::Tech) => Some(TouchModel::Tech),
        Err(_) => {
            v.add(field, format!("{raw} is not a TouchModel"));
            None
        }
    }
}

pub(crate) fn touch_to_proto(t: TouchModel) -> pb::TouchModel {
    match t {
        TouchModel::High => pb::TouchModel::High,
        TouchModel::Low => pb::TouchModel::Low,
        TouchModel::Tech => pb::TouchModel::Tech,
    }
}

pub(crate) fn level_from_proto(v: &mut Violations, field: &str, raw: i32) -> Option<ContactLevel> {
    match pb::ContactLevel::try_from(raw) {
        Ok(pb::ContactLevel::Unspecified) => None,
        Ok(pb::ContactLevel::Executive) => Some(ContactLevel::Executive),
        Ok(pb::ContactLevel::Manager) => Some(ContactLevel::Manager),
        Ok(pb::ContactLevel::Practitioner) => Some(ContactLevel::Practitioner),
        Err(_) => {
            v.add(field, format!("{raw} is not a ContactLevel"));
            None
        }
    }
}

pub(crate) fn level_to_proto(l: Option<ContactLevel>) -> pb::ContactLevel {
    match l {
        None => pb::ContactLevel::Unspecified,
        Some(ContactLevel::Executive) => pb::ContactLevel::Executive,
        Some(ContactLevel::Manager) => pb::ContactLevel::Manager,
        Some(ContactLevel::Practitioner) => pb::ContactLevel::Practitioner,
    }
}

pub(crate) fn external_id(v: &mut Violations, field: &str, s: &str) -> Option<String> {
    validate::text(v, field, s, 128);
    (!s.is_empty()).then(|| s.to_owned())
}

/// The account fields of `p` named in `paths`, each validated; fields not
/// named keep neutral values and are not looked at.
pub(crate) fn account_fields(p: &pb::Account, prefix: &str, paths: &[&str], v: &mut Violations) -> AccountFields {
    let f = |name: &str| format!("{prefix}.{name}");
    let mut out = AccountFields {
        name: String::new(),
        external_id: None,
        industry: String::new(),
        employee_count: None,
        revenue_band: String::new(),
        region: String::new(),
        plan_tier: String::new(),
        lifecycle_stage: LifecycleStage::Onboarding,
        touch_model: TouchModel::High,
        owner_id: String::new(),
        arr: None,
        contract_start_date: None,
        renewal_date: None,
        tags: Vec::new(),
        custom_attributes: BTreeMap::new(),
    };
    for path in paths {
        match *path {
            "name" => {
                validate::required_text(v, &f("name"), &p.name, 200);
                out.name = p.name.trim().to_owned();
            }
            "external_id" => out.external_id = external_id(v, &f("external_id"), &p.external_id),
            "industry" => {
                validate::text(v, &f("industry"), &p.industry, 100);
                out.industry = p.industry.clone();
            }
            "employee_count" => {
                if let Some(n) = p.employee_count
                    && !(0..=10_000_000).contains(&n)
                {
                    v.add(f("employee_count"), format!("must be between 0 and 10000000, got {n}"));
                }
                out.employee_count = p.employee_count;
            }
            "revenue_band" => {
                validate::text(v, &f("revenue_band"), &p.revenue_band, 100);
                out.revenue_band = p.revenue_band.clone();
            }
            "region" => {
                validate::text(v, &f("region"), &p.region, 100);
                out.region = p.region.clone();
            }
            "plan_tier" => {
                validate::text(v, &f("plan_tier"), &p.plan_tier, 100);
                out.plan_tier = p.plan_tier.clone();
            }
            "lifecycle_stage" => {
                if let Some(s) = stage_from_proto(v, &f("lifecycle_stage"), p.lifecycle_stage, true) {
                    out.lifecycle_stage = s;
                }
            }
            "touch_model" => {
                if let Some(t) = touch_from_proto(v, &f("touch_model"), p.touch_model, true) {
                    out.touch_model = t;
                }
            }
            "owner_id" => {
                validate::text(v, &f("owner_id"), &p.owner_id, 128);
                out.owner_id = p.owner_id.clone();
            }
            "arr" => out.arr = p.arr.as_ref().and_then(|m| money_from_proto(v, &f("arr"), m)),
            "contract_start_date" => {
                out.contract_start_date = date_from_proto(v, &f("contract_start_date"), p.contract_start_date.as_ref())
            }
            "renewal_date" => out.renewal_date = date_from_proto(v, &f("renewal_date"), p.renewal_date.as_ref()),
            "tags" => out.tags = validate::tags(v, &f("tags"), &p.tags),
            "custom_attributes" => {
                if p.custom_attributes.len() > 100 {
                    v.add(f("custom_attributes"), format!("at most 100 attributes, got {}", p.custom_attributes.len()));
                }
                for (name, value) in &p.custom_attributes {
                    let field = format!("{prefix}.custom_attributes[{name:?}]");
                    if !validate::attribute_name(name) {
                        v.add(&field, "name must match [a-z][a-z0-9_]{0,63}");
                    }
                    if let Some(a) = attr_from_proto(v, &field, value) {
                        out.custom_attributes.insert(name.clone(), a);
                    }
                }
            }
            other => unreachable!("{other} is not an account field"),
        }
    }
    out
}

pub(crate) fn account_to_proto(a: &Account) -> pb::Account {
    let f = &a.fields;
    pb::Account {
        id: a.id.to_string(),
        name: f.name.clone(),
        external_id: f.external_id.clone().unwrap_or_default(),
        industry: f.industry.clone(),
        employee_count: f.employee_count,
        revenue_band: f.revenue_band.clone(),
        region: f.region.clone(),
        plan_tier: f.plan_tier.clone(),
        lifecycle_stage: stage_to_proto(f.lifecycle_stage) as i32,
        touch_model: touch_to_proto(f.touch_model) as i32,
        owner_id: f.owner_id.clone(),
        arr: f
            .arr
            .as_ref()
            .map(|m| tpb::Money { currency_code: m.currency_code.clone(), amount_minor: m.amount_minor }),
        contract_start_date: f.contract_start_date.map(date_to_proto),
        renewal_date: f.renewal_date.map(date_to_proto),
        tags: f.tags.clone(),
        custom_attributes: f.custom_attributes.iter().map(|(k, v)| (k.clone(), attr_to_proto(v))).collect(),
        create_time: Some(timestamp(a.create_time)),
        update_time: Some(timestamp(a.update_time)),
        etag: etag(a.version),
    }
}

pub(crate) fn filter_from_proto(p: Option<&pb::AccountFilter>, v: &mut Violations) -> AccountFilter {
    let Some(p) = p else { return AccountFilter::default() };
    let text = |v: &mut Violations, name: &str, s: &str| {
        validate::text(v, &format!("filter.{name}"), s, 200);
        (!s.is_empty()).then(|| s.to_owned())
    };
    let mut f = AccountFilter {
        lifecycle_stages: p
            .lifecycle_stages
            .iter()
            .enumerate()
            .filter_map(|(i, s)| stage_from_proto(v, &format!("filter.lifecycle_stages[{i}]"), *s, true))
            .collect(),
        touch_models: p
            .touch_models
            .iter()
            .enumerate()
            .filter_map(|(i, t)| touch_from_proto(v, &format!("filter.touch_models[{i}]"), *t, true))
            .collect(),
        owner_id: text(v, "owner_id", &p.owner_id),
        industry: text(v, "industry", &p.industry),
        region: text(v, "region", &p.region),
        plan_tier: text(v, "plan_tier", &p.plan_tier),
        revenue_band: text(v, "revenue_band", &p.revenue_band),
        tag: text(v, "tag", p.tag.trim()),
        renewal_date_from: date_from_proto(v, "filter.renewal_date_from", p.renewal_date_from.as_ref()),
        renewal_date_to: date_from_proto(v, "filter.renewal_date_to", p.renewal_date_to.as_ref()),
        arr_currency: None,
        arr_min: None,
        arr_max: None,
        name_prefix: text(v, "name_prefix", &p.name_prefix),
    };
    if let (Some(from), Some(to)) = (f.renewal_date_from, f.renewal_date_to)
        && from > to
    {
        v.add("filter.renewal_date_to", format!("{to} is before renewal_date_from {from}"));
    }
    let min = p.arr_min.as_ref().and_then(|m| money_from_proto(v, "filter.arr_min", m));
    let max = p.arr_max.as_ref().and_then(|m| money_from_proto(v, "filter.arr_max", m));
    if let (Some(a), Some(b)) = (&min, &max) {
        if a.currency_code != b.currency_code {
            v.add(
                "filter.arr_max.currency_code",
                format!(
                    "{:?} differs from arr_min's {:?}; ARR bounds must share a currency",
                    b.currency_code, a.currency_code
                ),
            );
        } else if a.amount_minor > b.amount_minor {
            v.add("filter.arr_max.amount_minor", format!("{} is less than arr_min {}", b.amount_minor, a.amount_minor));
        }
    }
    f.arr_currency = min.as_ref().or(max.as_ref()).map(|m| m.currency_code.clone());
    f.arr_min = min.map(|m| m.amount_minor);
    f.arr_max = max.map(|m| m.amount_minor);
    f
}

pub(crate) fn contact_fields(p: &pb::Contact, prefix: &str, paths: &[&str], v: &mut Violations) -> ContactFields {
    let f = |name: &str| format!("{prefix}.{name}");
    let mut out = ContactFields {
        name: String::new(),
        email: String::new(),
        title: String::new(),
        department: String::new(),
        level: None,
        champion: false,
        decision_maker: false,
        external_id: None,
    };
    for path in paths {
        match *path {
            "name" => {
                validate::required_text(v, &f("name"), &p.name, 200);
                out.name = p.name.trim().to_owned();
            }
            "email" => {
                let email = p.email.trim();
                validate::email(v, &f("email"), email);
                out.email = email.to_owned();
            }
            "title" => {
                validate::text(v, &f("title"), &p.title, 200);
                out.title = p.title.clone();
            }
            "department" => {
                validate::text(v, &f("department"), &p.department, 200);
                out.department = p.department.clone();
            }
            "level" => out.level = level_from_proto(v, &f("level"), p.level),
            "champion" => out.champion = p.champion,
            "decision_maker" => out.decision_maker = p.decision_maker,
            "external_id" => out.external_id = external_id(v, &f("external_id"), &p.external_id),
            other => unreachable!("{other} is not a contact field"),
        }
    }
    out
}

pub(crate) fn contact_to_proto(c: &Contact) -> pb::Contact {
    let f = &c.fields;
    pb::Contact {
        id: c.id.to_string(),
        account_id: c.account_id.to_string(),
        name: f.name.clone(),
        email: f.email.clone(),
        title: f.title.clone(),
        department: f.department.clone(),
        level: level_to_proto(f.level) as i32,
        champion: f.champion,
        decision_maker: f.decision_maker,
        external_id: f.external_id.clone().unwrap_or_default(),
        create_time: Some(timestamp(c.create_time)),
        update_time: Some(timestamp(c.update_time)),
        etag: etag(c.version),
    }
}

pub(crate) fn settings_to_proto(s: &TenantSettings) -> pb::TenantSettings {
    pb::TenantSettings {
        time_zone: s.time_zone.clone(),
        fiscal_year_start_month: s.fiscal_year_start_month as i32,
        default_currency_code: s.default_currency_code.clone(),
        update_time: s.update_time.map(timestamp),
        etag: etag(s.version),
    }
}

pub(crate) use banso_kit::idempotency::optional as request_id;

pub(crate) fn consistency(f: &AccountFields) -> Result<()> {
    let mut v = Violations::new();
    f.check_consistency("account", &mut v);
    v.finish()
}

pub(crate) fn money_to_proto(m: &Money) -> tpb::Money {
    tpb::Money { currency_code: m.currency_code.clone(), amount_minor: m.amount_minor }
}

pub(crate) fn contract_kind_from_proto(
    v: &mut Violations,
    field: &str,
    raw: i32,
) -> Option<crate::domain::contract::ContractKind> {
    use crate::domain::contract::ContractKind as K;
    match pb::ContractEventKind::try_from(raw) {
        Ok(pb::ContractEventKind::New) => Some(K::New),
        Ok(pb::ContractEventKind::Renewal) => Some(K::Renewal),
        Ok(pb::ContractEventKind::Expansion) => Some(K::Expansion),
        Ok(pb::ContractEventKind::Contraction) => Some(K::Contraction),
        Ok(pb::ContractEventKind::Churn) => Some(K::Churn),
        Ok(pb::ContractEventKind::Reactivation) => Some(K::Reactivation),
        Ok(pb::ContractEventKind::Unspecified) => {
            v.add(field, "is required (CONTRACT_EVENT_KIND_UNSPECIFIED is not a kind)");
            None
        }
        Err(_) => {
            v.add(field, format!("{raw} is not a ContractEventKind"));
            None
        }
    }
}

fn contract_kind_to_proto(k: crate::domain::contract::ContractKind) -> pb::ContractEventKind {
    use crate::domain::contract::ContractKind as K;
    match k {
        K::New => pb::ContractEventKind::New,
        K::Renewal => pb::ContractEventKind::Renewal,
        K::Expansion => pb::ContractEventKind::Expansion,
        K::Contraction => pb::ContractEventKind::Contraction,
        K::Churn => pb::ContractEventKind::Churn,
        K::Reactivation => pb::ContractEventKind::Reactivation,
    }
}

pub(crate) fn contract_event_to_proto(e: &crate::domain::contract::ContractEvent) -> pb::ContractEvent {
    pb::ContractEvent {
        id: e.id.to_string(),
        account_id: e.account_id.to_string(),
        kind: contract_kind_to_proto(e.kind) as i32,
        arr_before: Some(money_to_proto(&e.arr_before)),
        arr_after: Some(money_to_proto(&e.arr_after)),
        effective_date: Some(date_to_proto(e.effective_date)),
        term_end: e.term_end.map(date_to_proto),
        reason_code: e.reason_code.clone(),
        note: e.note.clone(),
        recorded_by: e.recorded_by.clone(),
        create_time: Some(timestamp(e.create_time)),
    }
}

pub(crate) fn activity_kind_from_proto(
    v: &mut Violations,
    field: &str,
    raw: i32,
) -> Option<crate::domain::activity::ActivityKind> {
    use crate::domain::activity::ActivityKind as K;
    match pb::ActivityKind::try_from(raw) {
        Ok(pb::ActivityKind::Meeting) => Some(K::Meeting),
        Ok(pb::ActivityKind::Call) => Some(K::Call),
        Ok(pb::ActivityKind::EmailSent) => Some(K::EmailSent),
        Ok(pb::ActivityKind::EmailReplied) => Some(K::EmailReplied),
        Ok(pb::ActivityKind::Note) => Some(K::Note),
        Ok(pb::ActivityKind::Outreach) => Some(K::Outreach),
        Ok(pb::ActivityKind::Survey) => Some(K::Survey),
        Ok(pb::ActivityKind::Other) => Some(K::Other),
        Ok(pb::ActivityKind::Unspecified) => {
            v.add(field, "is required (ACTIVITY_KIND_UNSPECIFIED is not a kind)");
            None
        }
        Err(_) => {
            v.add(field, format!("{raw} is not an ActivityKind"));
            None
        }
    }
}

fn activity_kind_to_proto(k: crate::domain::activity::ActivityKind) -> pb::ActivityKind {
    use crate::domain::activity::ActivityKind as K;
    match k {
        K::Meeting => pb::ActivityKind::Meeting,
        K::Call => pb::ActivityKind::Call,
        K::EmailSent => pb::ActivityKind::EmailSent,
        K::EmailReplied => pb::ActivityKind::EmailReplied,
        K::Note => pb::ActivityKind::Note,
        K::Outreach => pb::ActivityKind::Outreach,
        K::Survey => pb::ActivityKind::Survey,
        K::Other => pb::ActivityKind::Other,
    }
}

pub(crate) fn activity_to_proto(a: &crate::domain::activity::Activity) -> pb::Activity {
    pb::Activity {
        id: a.id.to_string(),
        account_id: a.account_id.to_string(),
        kind: activity_kind_to_proto(a.kind) as i32,
        contact_ids: a.contact_ids.iter().map(Uuid::to_string).collect(),
        author_id: a.author_id.clone(),
        occur_time: Some(timestamp(a.occur_time)),
        subject: a.subject.clone(),
        body: a.body.clone(),
        external_ref: a.external_ref.clone().unwrap_or_default(),
        create_time: Some(timestamp(a.create_time)),
    }
}

pub(crate) fn segment_to_proto(s: &crate::domain::segment::Segment) -> pb::Segment {
    pb::Segment {
        id: s.id.to_string(),
        display_name: s.display_name.clone(),
        description: s.description.clone(),
        expression: s.expression.clone(),
        create_time: Some(timestamp(s.create_time)),
        update_time: Some(timestamp(s.update_time)),
        etag: etag(s.version),
    }
}

/// A timestamp from the wire, or a violation.
pub(crate) fn timestamp_from_proto(
    v: &mut Violations,
    field: &str,
    t: &pbjson_types::Timestamp,
) -> Option<DateTime<Utc>> {
    v.take(banso_kit::wire::time(field, t))
}
