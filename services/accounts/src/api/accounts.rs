//! Accounts on the wire: requests parsed into commands of valid domain
//! values (or INVALID_ARGUMENT with every bad field), accounts as protos.

use std::collections::BTreeMap;

use banso_kit::{
    Error, Result, Violations, auth::Caller, etag, fieldmask, fieldmask::FieldPath as _, paging::QueryKey, server::Kit,
    shown, wire,
};
use banso_proto::{accounts as pb, types as tpb};
use prost::Message as _;
use uuid::Uuid;

use super::convert::{Paged, external_id, money_from_proto, money_to_proto, page_size, path, request_id, required};
use crate::{
    app::{CreateAccount, UpdateAccount, UpsertAccount},
    domain::{
        self as domain, Account, AccountCursor, AccountField, AccountFields, AccountFilter, AccountOrder, AttrValue,
        LifecycleStage, MixChange, MixSetBy, TouchModel, TouchShare, validate,
    },
};

/// The most ids a BatchGetAccounts names.
const MAX_BATCH: usize = 1000;

fn attr_from_proto(v: &mut Violations, field: &str, a: &tpb::AttributeValue) -> Option<AttrValue> {
    use tpb::attribute_value::Kind;
    if !wire::attribute_value(v, field, a) {
        return None;
    }
    match a.kind.as_ref()? {
        Kind::StringValue(s) => Some(AttrValue::String(s.clone())),
        Kind::IntValue(i) => Some(AttrValue::Int(*i)),
        Kind::DoubleValue(d) => Some(AttrValue::Double(*d)),
        Kind::BoolValue(b) => Some(AttrValue::Bool(*b)),
        Kind::DateValue(d) => {
            wire::date(v, &format!("{field}.date_value"), d.year, d.month, d.day).map(AttrValue::Date)
        }
        Kind::TimestampValue(t) => v.take(wire::time(&format!("{field}.timestamp_value"), t)).map(AttrValue::Timestamp),
    }
}

fn attr_to_proto(a: &AttrValue) -> tpb::AttributeValue {
    use tpb::attribute_value::Kind;
    let kind = match a {
        AttrValue::String(s) => Kind::StringValue(s.clone()),
        AttrValue::Int(i) => Kind::IntValue(*i),
        AttrValue::Double(d) => Kind::DoubleValue(*d),
        AttrValue::Bool(b) => Kind::BoolValue(*b),
        AttrValue::Date(d) => Kind::DateValue(wire::date_to_proto(*d)),
        AttrValue::Timestamp(t) => Kind::TimestampValue(wire::timestamp(*t)),
    };
    tpb::AttributeValue { kind: Some(kind) }
}

/// The account fields of `p` named in `mask`, each parsed; fields not named
/// keep neutral values and are not looked at. `prefix` is the message's
/// path (`account`; empty for an import row).
pub(crate) fn fields(p: &pb::Account, prefix: &str, mask: &[AccountField], v: &mut Violations) -> AccountFields {
    let f = |name: &str| path(prefix, name);
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
        touch_mix: Vec::new(),
        touch_mix_manual: false,
        owner_id: String::new(),
        arr: None,
        contract_start_date: None,
        renewal_date: None,
        tags: Vec::new(),
        custom_attributes: BTreeMap::new(),
    };
    for field in mask {
        match field {
            AccountField::Name => {
                wire::required_text(v, &f("name"), &p.name, 200);
                out.name = p.name.trim().to_owned();
            }
            AccountField::ExternalId => out.external_id = external_id(v, &f("external_id"), &p.external_id),
            AccountField::Industry => {
                wire::text(v, &f("industry"), &p.industry, 100);
                out.industry = p.industry.clone();
            }
            AccountField::EmployeeCount => {
                if let Some(n) = p.employee_count
                    && !(0..=10_000_000).contains(&n)
                {
                    v.add(f("employee_count"), format!("must be between 0 and 10000000, got {n}"));
                }
                out.employee_count = p.employee_count;
            }
            AccountField::RevenueBand => {
                wire::text(v, &f("revenue_band"), &p.revenue_band, 100);
                out.revenue_band = p.revenue_band.clone();
            }
            AccountField::Region => {
                wire::text(v, &f("region"), &p.region, 100);
                out.region = p.region.clone();
            }
            AccountField::PlanTier => {
                wire::text(v, &f("plan_tier"), &p.plan_tier, 100);
                out.plan_tier = p.plan_tier.clone();
            }
            AccountField::LifecycleStage => {
                if let Some(s) = wire::lifecycle_stage(v, &f("lifecycle_stage"), p.lifecycle_stage) {
                    out.lifecycle_stage = s;
                }
            }
            AccountField::TouchModel => {
                // Unset is fine when the mix names the dominant pattern.
                let from_mix = mask.contains(&AccountField::TouchMix) && !p.touch_mix.is_empty();
                if !(from_mix && p.touch_model == 0)
                    && let Some(t) = wire::touch_model(v, &f("touch_model"), p.touch_model)
                {
                    out.touch_model = t;
                }
            }
            AccountField::TouchMix => {
                let with_model = mask.contains(&AccountField::TouchModel);
                match touch_mix(v, &f("touch_mix"), &p.touch_mix) {
                    // Only touch_model sent: 100% of it (set below).
                    None if with_model => {}
                    None => v.add(f("touch_mix"), "must hold at least one share (the shares add up to 100)"),
                    Some(None) => {}
                    Some(Some(mix)) => {
                        let d = domain::dominant(&mix);
                        if with_model
                            && p.touch_model != 0
                            && let Some(t) = TouchModel::from_proto(p.touch_model)
                            && Some(t) != d
                        {
                            v.add(
                                f("touch_model"),
                                format!(
                                    "{} is not the dominant pattern of touch_mix ({}); send one that agrees or \
                                     leave it unset",
                                    t.to_proto().as_str_name().to_lowercase(),
                                    d.map(|d| d.to_proto().as_str_name().to_lowercase()).unwrap_or_default()
                                ),
                            );
                        }
                        if let Some(d) = d {
                            out.touch_model = d;
                        }
                        out.touch_mix = mix;
                        // A mix sent is a mix set by hand (create; an update
                        // marks it whenever touch_model or touch_mix is set).
                        out.touch_mix_manual = true;
                    }
                }
            }
            AccountField::OwnerId => {
                wire::text(v, &f("owner_id"), &p.owner_id, 128);
                out.owner_id = p.owner_id.clone();
            }
            AccountField::Arr => out.arr = p.arr.as_ref().and_then(|m| money_from_proto(v, &f("arr"), m)),
            AccountField::ContractStartDate => {
                out.contract_start_date =
                    wire::optional_date(v, &f("contract_start_date"), p.contract_start_date.as_ref())
            }
            AccountField::RenewalDate => {
                out.renewal_date = wire::optional_date(v, &f("renewal_date"), p.renewal_date.as_ref())
            }
            AccountField::Tags => out.tags = validate::tags(v, &f("tags"), &p.tags),
            AccountField::CustomAttributes => {
                if p.custom_attributes.len() > 100 {
                    v.add(f("custom_attributes"), format!("at most 100 attributes, got {}", p.custom_attributes.len()));
                }
                for (name, value) in &p.custom_attributes {
                    let field = f(&format!("custom_attributes[{}]", shown(name)));
                    if !validate::attribute_name(name) {
                        v.add(&field, "name must match [a-z][a-z0-9_]{0,63}");
                    }
                    if let Some(a) = attr_from_proto(v, &field, value) {
                        out.custom_attributes.insert(name.clone(), a);
                    }
                }
            }
        }
    }
    if mask.contains(&AccountField::TouchModel) && out.touch_mix.is_empty() {
        out.touch_mix = domain::single_mix(out.touch_model);
    }
    out
}

/// A touch mix of the wire: `None` when empty, `Some(None)` when it breaks a
/// rule (each recorded), else the canonical mix.
pub(crate) fn touch_mix(
    v: &mut Violations,
    field: &str,
    shares: &[tpb::TouchShare],
) -> Option<Option<Vec<TouchShare>>> {
    if shares.is_empty() {
        return None;
    }
    let mut ok = true;
    let parsed: Vec<(Option<TouchModel>, i32)> = shares
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let t = wire::touch_model(v, &format!("{field}[{i}].touch_model"), s.touch_model);
            ok &= t.is_some();
            (t, s.percent)
        })
        .collect();
    for (i, name, why) in domain::mix_problems(&parsed) {
        ok = false;
        match i {
            Some(i) => v.add(format!("{field}[{i}].{name}"), why),
            None => v.add(field, why),
        }
    }
    if !ok {
        return Some(None);
    }
    let mix = parsed
        .into_iter()
        .filter_map(|(t, p)| Some(TouchShare { touch_model: t?, percent: u8::try_from(p).ok()? }))
        .collect();
    Some(Some(domain::canonical(mix)))
}

pub(crate) fn touch_mix_to_proto(mix: &[TouchShare]) -> Vec<tpb::TouchShare> {
    mix.iter()
        .map(|s| tpb::TouchShare { touch_model: s.touch_model.to_proto() as i32, percent: i32::from(s.percent) })
        .collect()
}

/// A whole account (every field parsed, the rules across fields checked).
pub(crate) fn whole(p: &pb::Account, prefix: &str, v: &mut Violations) -> AccountFields {
    let fields = fields(p, prefix, AccountField::ALL, v);
    if let Some((field, why)) = fields.inconsistency() {
        v.add(path(prefix, field.name()), why);
    }
    fields
}

pub(crate) fn to_proto(a: &Account) -> pb::Account {
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
        lifecycle_stage: f.lifecycle_stage.to_proto() as i32,
        touch_model: f.touch_model.to_proto() as i32,
        touch_mix: touch_mix_to_proto(&f.touch_mix),
        touch_mix_manual: f.touch_mix_manual,
        owner_id: f.owner_id.clone(),
        arr: f.arr.as_ref().map(money_to_proto),
        contract_start_date: f.contract_start_date.map(wire::date_to_proto),
        renewal_date: f.renewal_date.map(wire::date_to_proto),
        tags: f.tags.clone(),
        custom_attributes: f.custom_attributes.iter().map(|(k, v)| (k.clone(), attr_to_proto(v))).collect(),
        create_time: Some(wire::timestamp(a.create_time)),
        update_time: Some(wire::timestamp(a.update_time)),
        etag: etag::of(a.version),
    }
}

pub(crate) fn create(r: pb::CreateAccountRequest) -> Result<CreateAccount> {
    let mut v = Violations::new();
    let request_id = request_id(&mut v, &r.request_id);
    let fields = required(&mut v, "account", r.account.as_ref()).map(|p| whole(p, "account", &mut v));
    let fields = v.finish_with(fields)?;
    Ok(CreateAccount { request_id, fields })
}

pub(crate) fn update(r: pb::UpdateAccountRequest) -> Result<UpdateAccount> {
    let mut v = Violations::new();
    let mut mask = v.take(fieldmask::parse::<AccountField>("update_mask", r.update_mask.as_ref()));
    // touch_mix named, empty, without touch_model: hand the mix back to the
    // touch-mix rules (no other change of the mix).
    let clear =
        mask.as_ref().is_some_and(|m| m.contains(&AccountField::TouchMix) && !m.contains(&AccountField::TouchModel))
            && r.account.as_ref().is_some_and(|p| p.touch_mix.is_empty());
    if clear && let Some(m) = mask.as_mut() {
        m.retain(|f| *f != AccountField::TouchMix);
    }
    let p = required(&mut v, "account", r.account.as_ref());
    let id = p.and_then(|p| v.take(wire::uuid("account.id", &p.id)));
    let etag = p.and_then(|p| v.take(etag::parse("account.etag", &p.etag)));
    // Only the fields the mask names are looked at (none if it is bad).
    let fields = p.map(|p| fields(p, "account", mask.as_deref().unwrap_or_default(), &mut v));
    let (mask, id, etag, fields) = v.finish_with((mask, id, etag, fields))?;
    Ok(UpdateAccount { id, etag, mask, fields, clear_manual_touch_mix: clear })
}

pub(crate) fn upsert(r: pb::UpsertAccountRequest) -> Result<UpsertAccount> {
    let mut v = Violations::new();
    let mask = v.take(fieldmask::parse::<AccountField>("update_mask", r.update_mask.as_ref())).map(|mut mask| {
        // Upserts match on the external_id: it is always set.
        if !mask.contains(&AccountField::ExternalId) {
            mask.push(AccountField::ExternalId);
        }
        mask
    });
    let p = required(&mut v, "account", r.account.as_ref());
    if p.is_some_and(|p| p.external_id.is_empty()) {
        v.add("account.external_id", "is required: upserts match on it");
    }
    let fields = p.map(|p| fields(p, "account", mask.as_deref().unwrap_or_default(), &mut v));
    let (mask, fields, p) = v.finish_with((mask, fields, p))?;
    // The whole account, for when none has the external_id yet: its
    // violations are the answer only then.
    let mut whole_v = Violations::new();
    let full = whole(p, "account", &mut whole_v);
    let create = match whole_v.finish() {
        Ok(()) => Ok(full),
        Err(Error::InvalidArgument(vs)) => Err(vs),
        Err(other) => return Err(other),
    };
    Ok(UpsertAccount { mask, fields, create })
}

pub(crate) fn batch_ids(r: &pb::BatchGetAccountsRequest) -> Result<Vec<Uuid>> {
    if r.ids.is_empty() || r.ids.len() > MAX_BATCH {
        return Err(Error::invalid("ids", format!("must name 1 to {MAX_BATCH} accounts, got {}", r.ids.len())));
    }
    let mut v = Violations::new();
    let ids: Vec<Uuid> =
        r.ids.iter().enumerate().filter_map(|(i, s)| v.take(wire::uuid(&format!("ids[{i}]"), s))).collect();
    v.finish()?;
    Ok(ids)
}

/// A ListAccounts request, parsed.
pub(crate) struct ListAccounts {
    pub filter: AccountFilter,
    pub order: AccountOrder,
    pub page: Paged<AccountCursor>,
}

pub(crate) fn list(kit: &Kit, caller: &Caller, r: pb::ListAccountsRequest) -> Result<ListAccounts> {
    let mut v = Violations::new();
    let limit = page_size(&mut v, r.page_size);
    let order = v.take(AccountOrder::parse(&r.order_by).map_err(|e| Error::invalid("order_by", e)));
    let filter = filter_from_proto(r.filter.as_ref(), &mut v);
    let (limit, order) = v.finish_with((limit, order))?;
    let key = QueryKey::new("ListAccounts", &caller.tenant_id)
        .part(r.filter.as_ref().map(|f| f.encode_to_vec()).unwrap_or_default())
        .part(format!("{order:?}"));
    let page = Paged::new(&kit.page_tokens, key, &r.page_token, limit)?;
    Ok(ListAccounts { filter, order, page })
}

pub(crate) fn list_reply(kit: &Kit, q: &ListAccounts, rows: Vec<Account>) -> Result<pb::ListAccountsResponse> {
    let (rows, next_page_token) = q.page.page(&kit.page_tokens, rows, |last| AccountCursor::after(last, q.order))?;
    Ok(pb::ListAccountsResponse { accounts: rows.iter().map(to_proto).collect(), next_page_token })
}

fn filter_from_proto(p: Option<&pb::AccountFilter>, v: &mut Violations) -> AccountFilter {
    let Some(p) = p else { return AccountFilter::default() };
    let text = |v: &mut Violations, name: &str, s: &str| {
        wire::text(v, &format!("filter.{name}"), s, 200);
        (!s.is_empty()).then(|| s.to_owned())
    };
    let mut f = AccountFilter {
        lifecycle_stages: p
            .lifecycle_stages
            .iter()
            .enumerate()
            .filter_map(|(i, s)| wire::lifecycle_stage(v, &format!("filter.lifecycle_stages[{i}]"), *s))
            .collect(),
        touch_models: p
            .touch_models
            .iter()
            .enumerate()
            .filter_map(|(i, t)| wire::touch_model(v, &format!("filter.touch_models[{i}]"), *t))
            .collect(),
        owner_id: text(v, "owner_id", &p.owner_id),
        industry: text(v, "industry", &p.industry),
        region: text(v, "region", &p.region),
        plan_tier: text(v, "plan_tier", &p.plan_tier),
        revenue_band: text(v, "revenue_band", &p.revenue_band),
        tag: text(v, "tag", p.tag.trim()),
        renewal_date_from: wire::optional_date(v, "filter.renewal_date_from", p.renewal_date_from.as_ref()),
        renewal_date_to: wire::optional_date(v, "filter.renewal_date_to", p.renewal_date_to.as_ref()),
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
                    "{} differs from arr_min's {}; ARR bounds must share a currency",
                    shown(&b.currency_code),
                    shown(&a.currency_code)
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

/// A ListTouchMixHistory request, parsed.
pub(crate) struct ListMixHistory {
    pub account_id: Uuid,
    pub page: Paged<(chrono::DateTime<chrono::Utc>, Uuid)>,
}

pub(crate) fn mix_history(kit: &Kit, caller: &Caller, r: pb::ListTouchMixHistoryRequest) -> Result<ListMixHistory> {
    let mut v = Violations::new();
    let limit = page_size(&mut v, r.page_size);
    let account_id = v.take(wire::uuid("account_id", &r.account_id));
    let (limit, account_id) = v.finish_with((limit, account_id))?;
    let key = QueryKey::new("ListTouchMixHistory", &caller.tenant_id).part(account_id.to_string());
    Ok(ListMixHistory { account_id, page: Paged::new(&kit.page_tokens, key, &r.page_token, limit)? })
}

pub(crate) fn mix_history_reply(
    kit: &Kit,
    q: &ListMixHistory,
    rows: Vec<MixChange>,
) -> Result<pb::ListTouchMixHistoryResponse> {
    let (rows, next_page_token) = q.page.page(&kit.page_tokens, rows, |last| (last.change_time, last.id))?;
    Ok(pb::ListTouchMixHistoryResponse {
        changes: rows
            .iter()
            .map(|c| pb::TouchMixChange {
                change_time: Some(wire::timestamp(c.change_time)),
                touch_mix: touch_mix_to_proto(&c.touch_mix),
                set_by: match c.set_by {
                    MixSetBy::Manual => pb::TouchMixSetter::Manual,
                    MixSetBy::Rule => pb::TouchMixSetter::Rule,
                } as i32,
                setter_id: c.setter.clone(),
            })
            .collect(),
        next_page_token,
    })
}
