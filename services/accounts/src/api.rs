//! The gRPC face of the Accounts service: check the caller, validate and
//! convert proto ↔ domain, call the store. No rules beyond that live here.

use std::collections::BTreeMap;

use banso_kit::{
    Error, Result, Violations,
    auth::{self, Access},
    fieldmask, idempotency,
    paging::{self, QueryKey},
    server::Kit,
};
use banso_proto::{accounts as pb, types as tpb};
use chrono::{DateTime, NaiveDate, Utc};
use prost::Message;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::{
        ACCOUNT_UPDATABLE, Account, AccountCursor, AccountFields, AccountFilter, AccountOrder, AttrValue,
        CONTACT_UPDATABLE, Contact, ContactFields, ContactFilter, ContactLevel, LifecycleStage, Money,
        SETTINGS_UPDATABLE, TenantSettings, TouchModel, etag, settings::valid_time_zone, validate,
    },
    store::Store,
};

pub struct AccountsApi {
    store: Store,
    kit: Kit,
}

impl AccountsApi {
    pub fn new(store: Store, kit: Kit) -> Self {
        AccountsApi { store, kit }
    }
}

type RpcResult<T> = std::result::Result<Response<T>, Status>;

fn reply<T>(r: Result<T>) -> RpcResult<T> {
    r.map(Response::new).map_err(Status::from)
}

// ----- conversions -----

pub(crate) fn parse_id(field: &str, s: &str) -> Result<Uuid> {
    if s.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    Uuid::parse_str(s).map_err(|_| Error::invalid(field, format!("{s:?} is not a UUID")))
}

fn timestamp(t: DateTime<Utc>) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

fn date_to_proto(d: NaiveDate) -> tpb::Date {
    use chrono::Datelike;
    tpb::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 }
}

fn date_from_proto(v: &mut Violations, field: &str, d: Option<&tpb::Date>) -> Option<NaiveDate> {
    d.and_then(|d| validate::date(v, field, d.year, d.month, d.day))
}

fn money_from_proto(v: &mut Violations, field: &str, m: &tpb::Money) -> Option<Money> {
    let exp = validate::currency(v, &format!("{field}.currency_code"), &m.currency_code);
    if m.amount_minor < 0 {
        v.add(format!("{field}.amount_minor"), format!("must not be negative, got {}", m.amount_minor));
        return None;
    }
    exp.map(|_| Money { currency_code: m.currency_code.clone(), amount_minor: m.amount_minor })
}

fn attr_from_proto(v: &mut Violations, field: &str, a: &tpb::AttributeValue) -> Option<AttrValue> {
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

fn attr_to_proto(a: &AttrValue) -> tpb::AttributeValue {
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

fn stage_from_proto(v: &mut Violations, field: &str, raw: i32, required: bool) -> Option<LifecycleStage> {
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

fn stage_to_proto(s: LifecycleStage) -> pb::LifecycleStage {
    match s {
        LifecycleStage::Onboarding => pb::LifecycleStage::Onboarding,
        LifecycleStage::Adoption => pb::LifecycleStage::Adoption,
        LifecycleStage::Expansion => pb::LifecycleStage::Expansion,
        LifecycleStage::Renewal => pb::LifecycleStage::Renewal,
        LifecycleStage::Churned => pb::LifecycleStage::Churned,
    }
}

fn touch_from_proto(v: &mut Violations, field: &str, raw: i32, required: bool) -> Option<TouchModel> {
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

fn touch_to_proto(t: TouchModel) -> pb::TouchModel {
    match t {
        TouchModel::High => pb::TouchModel::High,
        TouchModel::Low => pb::TouchModel::Low,
        TouchModel::Tech => pb::TouchModel::Tech,
    }
}

fn level_from_proto(v: &mut Violations, field: &str, raw: i32) -> Option<ContactLevel> {
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

fn level_to_proto(l: Option<ContactLevel>) -> pb::ContactLevel {
    match l {
        None => pb::ContactLevel::Unspecified,
        Some(ContactLevel::Executive) => pb::ContactLevel::Executive,
        Some(ContactLevel::Manager) => pb::ContactLevel::Manager,
        Some(ContactLevel::Practitioner) => pb::ContactLevel::Practitioner,
    }
}

fn external_id(v: &mut Violations, field: &str, s: &str) -> Option<String> {
    validate::text(v, field, s, 128);
    (!s.is_empty()).then(|| s.to_owned())
}

/// The account fields of `p` named in `paths`, each validated; fields not
/// named keep neutral values and are not looked at.
fn account_fields(p: &pb::Account, prefix: &str, paths: &[&str], v: &mut Violations) -> AccountFields {
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

fn filter_from_proto(p: Option<&pb::AccountFilter>, v: &mut Violations) -> AccountFilter {
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

fn contact_fields(p: &pb::Contact, prefix: &str, paths: &[&str], v: &mut Violations) -> ContactFields {
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

fn contact_to_proto(c: &Contact) -> pb::Contact {
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

fn settings_to_proto(s: &TenantSettings) -> pb::TenantSettings {
    pb::TenantSettings {
        time_zone: s.time_zone.clone(),
        fiscal_year_start_month: s.fiscal_year_start_month as i32,
        default_currency_code: s.default_currency_code.clone(),
        update_time: s.update_time.map(timestamp),
        etag: etag(s.version),
    }
}

fn request_id<'a>(field: &str, s: &'a str) -> Result<Option<&'a str>> {
    if s.is_empty() {
        return Ok(None);
    }
    idempotency::validate(field, s)?;
    Ok(Some(s))
}

fn consistency(f: &AccountFields) -> Result<()> {
    let mut v = Violations::new();
    f.check_consistency("account", &mut v);
    v.finish()
}

// ----- the service -----

#[tonic::async_trait]
impl pb::accounts_service_server::AccountsService for AccountsApi {
    async fn get_account(&self, req: Request<pb::GetAccountRequest>) -> RpcResult<pb::Account> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let id = parse_id("id", &req.get_ref().id)?;
                Ok(account_to_proto(&self.store.get_account(&caller.tenant_id, id).await?))
            }
            .await,
        )
    }

    async fn list_accounts(&self, req: Request<pb::ListAccountsRequest>) -> RpcResult<pb::ListAccountsResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let r = req.get_ref();
                let mut v = Violations::new();
                let limit = v.take(paging::page_size(r.page_size));
                let order = v.take(AccountOrder::parse(&r.order_by).map_err(|e| Error::invalid("order_by", e)));
                let filter = filter_from_proto(r.filter.as_ref(), &mut v);
                v.finish()?;
                let (limit, order) = (limit.expect("checked above"), order.expect("checked above"));
                let key = QueryKey::new("ListAccounts", &caller.tenant_id)
                    .part(r.filter.as_ref().map(|f| f.encode_to_vec()).unwrap_or_default())
                    .part(format!("{order:?}"));
                let after: Option<AccountCursor> = self.kit.page_tokens.decode(&key, &r.page_token)?;
                let mut rows =
                    self.store.list_accounts(&caller.tenant_id, &filter, order, after.as_ref(), limit + 1).await?;
                let next_page_token = if rows.len() as u64 > limit {
                    rows.truncate(limit as usize);
                    let last = rows.last().expect("limit is at least 1");
                    self.kit.page_tokens.encode(&key, &AccountCursor::after(last, order))
                } else {
                    String::new()
                };
                Ok(pb::ListAccountsResponse { accounts: rows.iter().map(account_to_proto).collect(), next_page_token })
            }
            .await,
        )
    }

    async fn create_account(&self, req: Request<pb::CreateAccountRequest>) -> RpcResult<pb::Account> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                let r = req.get_ref();
                let key = request_id("request_id", &r.request_id)?;
                let p = r.account.as_ref().ok_or_else(|| Error::invalid("account", "is required"))?;
                let mut v = Violations::new();
                let fields = account_fields(p, "account", ACCOUNT_UPDATABLE, &mut v);
                fields.check_consistency("account", &mut v);
                v.finish()?;
                Ok(account_to_proto(&self.store.create_account(&caller.tenant_id, fields, key).await?))
            }
            .await,
        )
    }

    async fn update_account(&self, req: Request<pb::UpdateAccountRequest>) -> RpcResult<pb::Account> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                let r = req.get_ref();
                let p = r.account.as_ref().ok_or_else(|| Error::invalid("account", "is required"))?;
                let id = parse_id("account.id", &p.id)?;
                let paths = fieldmask::paths(r.update_mask.as_ref(), ACCOUNT_UPDATABLE)?;
                let mut v = Violations::new();
                let new = account_fields(p, "account", &paths, &mut v);
                v.finish()?;
                let account = self
                    .store
                    .update_account(&caller.tenant_id, id, &p.etag, |f| {
                        f.apply(new.clone(), &paths);
                        consistency(f)
                    })
                    .await?;
                Ok(account_to_proto(&account))
            }
            .await,
        )
    }

    async fn delete_account(&self, req: Request<pb::DeleteAccountRequest>) -> RpcResult<pbjson_types::Empty> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                let id = parse_id("id", &req.get_ref().id)?;
                self.store.delete_account(&caller.tenant_id, id, &req.get_ref().etag).await?;
                Ok(pbjson_types::Empty {})
            }
            .await,
        )
    }

    async fn batch_get_accounts(
        &self,
        req: Request<pb::BatchGetAccountsRequest>,
    ) -> RpcResult<pb::BatchGetAccountsResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let r = req.get_ref();
                if r.ids.is_empty() || r.ids.len() > 1000 {
                    return Err(Error::invalid("ids", format!("must name 1 to 1000 accounts, got {}", r.ids.len())));
                }
                let mut v = Violations::new();
                let ids: Vec<Uuid> =
                    r.ids.iter().enumerate().filter_map(|(i, s)| v.take(parse_id(&format!("ids[{i}]"), s))).collect();
                v.finish()?;
                let accounts = self.store.batch_get_accounts(&caller.tenant_id, &ids).await?;
                Ok(pb::BatchGetAccountsResponse { accounts: accounts.iter().map(account_to_proto).collect() })
            }
            .await,
        )
    }

    async fn upsert_account(&self, req: Request<pb::UpsertAccountRequest>) -> RpcResult<pb::UpsertAccountResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                let r = req.get_ref();
                let p = r.account.as_ref().ok_or_else(|| Error::invalid("account", "is required"))?;
                if p.external_id.is_empty() {
                    return Err(Error::invalid("account.external_id", "is required: upserts match on it"));
                }
                let mut paths = fieldmask::paths(r.update_mask.as_ref(), ACCOUNT_UPDATABLE)?;
                if !paths.contains(&"external_id") {
                    paths.push("external_id");
                }
                let mut v = Violations::new();
                let update = account_fields(p, "account", &paths, &mut v);
                v.finish()?;
                // The full account, for the case that it does not exist yet.
                let mut v = Violations::new();
                let full = account_fields(p, "account", ACCOUNT_UPDATABLE, &mut v);
                full.check_consistency("account", &mut v);
                let create = v.finish().map(|()| full);
                let (account, created) =
                    self.store.upsert_account(&caller.tenant_id, update, &paths, create, consistency).await?;
                Ok(pb::UpsertAccountResponse { account: Some(account_to_proto(&account)), created })
            }
            .await,
        )
    }

    async fn get_contact(&self, req: Request<pb::GetContactRequest>) -> RpcResult<pb::Contact> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let id = parse_id("id", &req.get_ref().id)?;
                Ok(contact_to_proto(&self.store.get_contact(&caller.tenant_id, id).await?))
            }
            .await,
        )
    }

    async fn list_contacts(&self, req: Request<pb::ListContactsRequest>) -> RpcResult<pb::ListContactsResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let r = req.get_ref();
                let mut v = Violations::new();
                let limit = v.take(paging::page_size(r.page_size));
                let account_id =
                    if r.account_id.is_empty() { None } else { v.take(parse_id("account_id", &r.account_id)) };
                let level = level_from_proto(&mut v, "level", r.level);
                let email = r.email.trim().to_lowercase();
                validate::text(&mut v, "email", &email, 254);
                v.finish()?;
                let limit = limit.expect("checked above");
                let filter = ContactFilter {
                    account_id,
                    level,
                    champions_only: r.champions_only,
                    decision_makers_only: r.decision_makers_only,
                    email: (!email.is_empty()).then_some(email),
                };
                let key = QueryKey::new("ListContacts", &caller.tenant_id).part(format!("{filter:?}"));
                let after: Option<Uuid> = self.kit.page_tokens.decode(&key, &r.page_token)?;
                let mut rows = self.store.list_contacts(&caller.tenant_id, &filter, after, limit + 1).await?;
                let next_page_token = if rows.len() as u64 > limit {
                    rows.truncate(limit as usize);
                    self.kit.page_tokens.encode(&key, &rows.last().expect("limit is at least 1").id)
                } else {
                    String::new()
                };
                Ok(pb::ListContactsResponse { contacts: rows.iter().map(contact_to_proto).collect(), next_page_token })
            }
            .await,
        )
    }

    async fn create_contact(&self, req: Request<pb::CreateContactRequest>) -> RpcResult<pb::Contact> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                let r = req.get_ref();
                let key = request_id("request_id", &r.request_id)?;
                let p = r.contact.as_ref().ok_or_else(|| Error::invalid("contact", "is required"))?;
                let mut v = Violations::new();
                let account_id = v.take(parse_id("contact.account_id", &p.account_id));
                let fields = contact_fields(p, "contact", CONTACT_UPDATABLE, &mut v);
                v.finish()?;
                let account_id = account_id.expect("checked above");
                Ok(contact_to_proto(&self.store.create_contact(&caller.tenant_id, account_id, fields, key).await?))
            }
            .await,
        )
    }

    async fn update_contact(&self, req: Request<pb::UpdateContactRequest>) -> RpcResult<pb::Contact> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                let r = req.get_ref();
                let p = r.contact.as_ref().ok_or_else(|| Error::invalid("contact", "is required"))?;
                let id = parse_id("contact.id", &p.id)?;
                let paths = fieldmask::paths(r.update_mask.as_ref(), CONTACT_UPDATABLE)?;
                let mut v = Violations::new();
                let new = contact_fields(p, "contact", &paths, &mut v);
                v.finish()?;
                let contact = self
                    .store
                    .update_contact(&caller.tenant_id, id, &p.etag, |f| {
                        f.apply(new.clone(), &paths);
                        Ok(())
                    })
                    .await?;
                Ok(contact_to_proto(&contact))
            }
            .await,
        )
    }

    async fn delete_contact(&self, req: Request<pb::DeleteContactRequest>) -> RpcResult<pbjson_types::Empty> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                let id = parse_id("id", &req.get_ref().id)?;
                self.store.delete_contact(&caller.tenant_id, id, &req.get_ref().etag).await?;
                Ok(pbjson_types::Empty {})
            }
            .await,
        )
    }

    async fn get_tenant_settings(&self, req: Request<pb::GetTenantSettingsRequest>) -> RpcResult<pb::TenantSettings> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                Ok(settings_to_proto(&self.store.get_settings(&caller.tenant_id).await?))
            }
            .await,
        )
    }

    async fn update_tenant_settings(
        &self,
        req: Request<pb::UpdateTenantSettingsRequest>,
    ) -> RpcResult<pb::TenantSettings> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Admin)?;
                let r = req.get_ref();
                let p = r.settings.as_ref().ok_or_else(|| Error::invalid("settings", "is required"))?;
                let paths = fieldmask::paths(r.update_mask.as_ref(), SETTINGS_UPDATABLE)?;
                let mut v = Violations::new();
                let mut new = TenantSettings::default();
                for path in &paths {
                    match *path {
                        "time_zone" => {
                            if !valid_time_zone(&p.time_zone) {
                                v.add(
                                    "settings.time_zone",
                                    format!("{:?} is not an IANA time zone (e.g. Asia/Tokyo)", p.time_zone),
                                );
                            }
                            new.time_zone = p.time_zone.clone();
                        }
                        "fiscal_year_start_month" => {
                            if !(1..=12).contains(&p.fiscal_year_start_month) {
                                v.add(
                                    "settings.fiscal_year_start_month",
                                    format!("must be 1 to 12, got {}", p.fiscal_year_start_month),
                                );
                            }
                            new.fiscal_year_start_month = p.fiscal_year_start_month.clamp(1, 12) as u32;
                        }
                        "default_currency_code" => {
                            validate::currency(&mut v, "settings.default_currency_code", &p.default_currency_code);
                            new.default_currency_code = p.default_currency_code.clone();
                        }
                        other => unreachable!("{other} is not a settings field"),
                    }
                }
                v.finish()?;
                let s = self
                    .store
                    .update_settings(&caller.tenant_id, &p.etag, |s| {
                        s.apply(new, &paths);
                        Ok(())
                    })
                    .await?;
                Ok(settings_to_proto(&s))
            }
            .await,
        )
    }
}
