//! The gRPC face of the Accounts service: check the caller, validate and
//! convert proto ↔ domain, call the store. No rules beyond that live here.

use std::collections::HashSet;

use banso_kit::{
    Error, Result, Violations,
    auth::{self, Access},
    fieldmask,
    paging::{self, QueryKey},
    reply,
    server::Kit,
};
use banso_proto::accounts as pb;
use chrono::{DateTime, NaiveDate, Utc};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    convert::*,
    domain::{
        ACCOUNT_UPDATABLE, Account, AccountCursor, AccountFilter, AccountOrder, AccountSort, CONTACT_UPDATABLE,
        ContactFilter, SETTINGS_UPDATABLE, TenantSettings,
        activity::{self, Activity, ActivityFilter},
        contract::ContractInput,
        retention::{self, Period},
        segment::{self, SEGMENT_UPDATABLE, Segment},
        settings::valid_time_zone,
        validate,
    },
    store::{
        Store,
        import::{ContactRow, RowOutcome},
    },
};

/// Accounts an EvaluateSegment call looks at before it returns a page.
const SEGMENT_SCAN_PER_CALL: u64 = 5_000;
/// Row errors an import response lists (the count covers all).
const MAX_IMPORT_ERRORS: usize = 1_000;

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
                let rows =
                    self.store.list_accounts(&caller.tenant_id, &filter, order, after.as_ref(), limit + 1).await?;
                let (rows, next_page_token) =
                    self.kit.page_tokens.page(&key, rows, limit, |last| AccountCursor::after(last, order))?;
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
                let rows = self.store.list_contacts(&caller.tenant_id, &filter, after, limit + 1).await?;
                let (rows, next_page_token) = self.kit.page_tokens.page(&key, rows, limit, |last| last.id)?;
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

    async fn import_accounts(
        &self,
        req: Request<Streaming<pb::ImportAccountsRequest>>,
    ) -> RpcResult<pb::ImportAccountsResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                // A task of its own decodes and validates the rows ahead of the
                // writes, so checking the next rows overlaps writing these.
                let (tx, mut rx) = tokio::sync::mpsc::channel(IMPORT_READ_AHEAD);
                let _reader = AbortOnDrop(tokio::spawn(
                    read_account_rows(req.into_inner(), tx).instrument(tracing::Span::current()),
                ));
                let mut tally = ImportTally::default();
                // Each chunk is prepared (looked up, encoded) while the one
                // before it is written: one write at a time, in stream order.
                let mut writing: Option<ChunkWrite> = None;
                while let Some(chunk) = rx.recv().await {
                    let prepared = match chunk {
                        Ok(chunk) => {
                            if writing.as_ref().is_some_and(|w| w.touches(&chunk)) {
                                // It may create or change these rows: see it first.
                                writing.take().expect("checked").finish(&mut tally).await?;
                            }
                            self.store.prepare_import(&caller.tenant_id, chunk.valid).await.map(|p| (p, chunk.rest))
                        }
                        Err(e) => Err(e),
                    };
                    // What was sent before a failure is written, as before it.
                    if let Some(w) = writing.take() {
                        w.finish(&mut tally).await?;
                    }
                    let (prepared, rest) = prepared?;
                    writing = Some(ChunkWrite::start(self.store.clone(), prepared, rest));
                }
                if let Some(w) = writing {
                    w.finish(&mut tally).await?;
                }
                let t = tally.finish();
                Ok(pb::ImportAccountsResponse {
                    rows: t.rows,
                    created: t.created,
                    updated: t.updated,
                    unchanged: t.unchanged,
                    failed: t.failed,
                    errors: t.errors,
                })
            }
            .await,
        )
    }

    async fn import_contacts(
        &self,
        req: Request<Streaming<pb::ImportContactsRequest>>,
    ) -> RpcResult<pb::ImportContactsResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                let mut stream = req.into_inner();
                let mut tally = ImportTally::default();
                let mut next_row: i64 = 0;
                while let Some(msg) = stream.message().await.map_err(stream_error)? {
                    let mut valid = Vec::new();
                    let mut valid_rows = Vec::new();
                    for r in &msg.rows {
                        let row = next_row;
                        next_row += 1;
                        tally.rows += 1;
                        let default = pb::Contact::default();
                        let c = r.contact.as_ref().unwrap_or(&default);
                        let mut v = Violations::new();
                        if r.contact.is_none() {
                            v.add("contact", "is required");
                        }
                        if c.external_id.is_empty() {
                            v.add("contact.external_id", "is required: imports match on it");
                        }
                        let account_id = if c.account_id.is_empty() {
                            None
                        } else {
                            v.take(parse_id("contact.account_id", &c.account_id))
                        };
                        if c.account_id.is_empty() && r.account_external_id.is_empty() {
                            v.add("account_external_id", "is required when contact.account_id is empty");
                        }
                        let fields = contact_fields(c, "contact", CONTACT_UPDATABLE, &mut v);
                        match v.finish() {
                            Ok(()) => {
                                valid.push(ContactRow {
                                    account_id,
                                    account_external_id: (!r.account_external_id.is_empty())
                                        .then(|| r.account_external_id.clone()),
                                    fields,
                                });
                                valid_rows.push((row, c.external_id.clone()));
                            }
                            Err(e) => {
                                tally.refused(row, &c.external_id, e);
                            }
                        }
                    }
                    let results = self.store.import_contacts(&caller.tenant_id, valid).await?;
                    tally.outcomes(results, valid_rows);
                }
                let t = tally.finish();
                Ok(pb::ImportContactsResponse {
                    rows: t.rows,
                    created: t.created,
                    updated: t.updated,
                    unchanged: t.unchanged,
                    failed: t.failed,
                    errors: t.errors,
                })
            }
            .await,
        )
    }

    async fn record_contract_event(
        &self,
        req: Request<pb::RecordContractEventRequest>,
    ) -> RpcResult<pb::RecordContractEventResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                let r = req.get_ref();
                let key = request_id("request_id", &r.request_id)?;
                let p = r.contract_event.as_ref().ok_or_else(|| Error::invalid("contract_event", "is required"))?;
                let mut v = Violations::new();
                let account_id = v.take(parse_id("contract_event.account_id", &p.account_id));
                let kind = contract_kind_from_proto(&mut v, "contract_event.kind", p.kind);
                let arr_after =
                    p.arr_after.as_ref().and_then(|m| money_from_proto(&mut v, "contract_event.arr_after", m));
                let effective_date =
                    date_from_proto(&mut v, "contract_event.effective_date", p.effective_date.as_ref());
                if p.effective_date.is_none() {
                    v.add("contract_event.effective_date", "is required");
                }
                let term_end = date_from_proto(&mut v, "contract_event.term_end", p.term_end.as_ref());
                validate::text(&mut v, "contract_event.reason_code", &p.reason_code, 64);
                validate::text(&mut v, "contract_event.note", &p.note, 2000);
                v.finish()?;
                let input = ContractInput {
                    kind: kind.expect("checked above"),
                    arr_after,
                    effective_date: effective_date.expect("checked above"),
                    term_end,
                    reason_code: p.reason_code.clone(),
                    note: p.note.clone(),
                };
                let (event, account) = self
                    .store
                    .record_contract_event(
                        &caller.tenant_id,
                        account_id.expect("checked above"),
                        input,
                        &caller.subject,
                        key,
                    )
                    .await?;
                Ok(pb::RecordContractEventResponse {
                    contract_event: Some(contract_event_to_proto(&event)),
                    account: Some(account_to_proto(&account)),
                })
            }
            .await,
        )
    }

    async fn list_contract_events(
        &self,
        req: Request<pb::ListContractEventsRequest>,
    ) -> RpcResult<pb::ListContractEventsResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let r = req.get_ref();
                let mut v = Violations::new();
                let account_id = v.take(parse_id("account_id", &r.account_id));
                let limit = v.take(paging::page_size(r.page_size));
                v.finish()?;
                let (account_id, limit) = (account_id.expect("checked"), limit.expect("checked"));
                let key = QueryKey::new("ListContractEvents", &caller.tenant_id).part(account_id.as_bytes());
                let after: Option<(NaiveDate, Uuid)> = self.kit.page_tokens.decode(&key, &r.page_token)?;
                let rows = self.store.list_contract_events(&caller.tenant_id, account_id, after, limit + 1).await?;
                let (rows, next_page_token) =
                    self.kit.page_tokens.page(&key, rows, limit, |last| (last.effective_date, last.id))?;
                Ok(pb::ListContractEventsResponse {
                    contract_events: rows.iter().map(contract_event_to_proto).collect(),
                    next_page_token,
                })
            }
            .await,
        )
    }

    async fn log_activity(&self, req: Request<pb::LogActivityRequest>) -> RpcResult<pb::Activity> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                let r = req.get_ref();
                let key = request_id("request_id", &r.request_id)?;
                let p = r.activity.as_ref().ok_or_else(|| Error::invalid("activity", "is required"))?;
                let mut v = Violations::new();
                let account_id = v.take(parse_id("activity.account_id", &p.account_id));
                let kind = activity_kind_from_proto(&mut v, "activity.kind", p.kind);
                if p.contact_ids.len() > 50 {
                    v.add("activity.contact_ids", format!("at most 50 contacts, got {}", p.contact_ids.len()));
                }
                let contact_ids: Vec<Uuid> = p
                    .contact_ids
                    .iter()
                    .enumerate()
                    .filter_map(|(i, id)| v.take(parse_id(&format!("activity.contact_ids[{i}]"), id)))
                    .collect();
                validate::text(&mut v, "activity.author_id", &p.author_id, 128);
                let occur_time = match &p.occur_time {
                    None => {
                        v.add("activity.occur_time", "is required");
                        None
                    }
                    Some(t) => timestamp_from_proto(&mut v, "activity.occur_time", t),
                };
                if let Some(t) = occur_time
                    && t > Utc::now() + chrono::Duration::minutes(5)
                {
                    v.add("activity.occur_time", format!("{t} is in the future"));
                }
                validate::text(&mut v, "activity.subject", &p.subject, 200);
                let body_chars = p.body.chars().count();
                if body_chars > 20_000 {
                    v.add("activity.body", format!("must be at most 20000 characters, got {body_chars}"));
                }
                validate::text(&mut v, "activity.external_ref", &p.external_ref, 256);
                v.finish()?;
                let a = Activity {
                    id: Uuid::nil(),
                    account_id: account_id.expect("checked"),
                    kind: kind.expect("checked"),
                    contact_ids,
                    author_id: if p.author_id.is_empty() { caller.subject.clone() } else { p.author_id.clone() },
                    occur_time: occur_time.expect("checked"),
                    subject: p.subject.clone(),
                    body: p.body.clone(),
                    external_ref: (!p.external_ref.is_empty()).then(|| p.external_ref.clone()),
                    create_time: Utc::now(),
                };
                Ok(activity_to_proto(&self.store.log_activity(&caller.tenant_id, a, key).await?))
            }
            .await,
        )
    }

    async fn list_activities(&self, req: Request<pb::ListActivitiesRequest>) -> RpcResult<pb::ListActivitiesResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let r = req.get_ref();
                let mut v = Violations::new();
                let limit = v.take(paging::page_size(r.page_size));
                let account_id =
                    if r.account_id.is_empty() { None } else { v.take(parse_id("account_id", &r.account_id)) };
                let kinds: Vec<_> = r
                    .kinds
                    .iter()
                    .enumerate()
                    .filter_map(|(i, k)| activity_kind_from_proto(&mut v, &format!("kinds[{i}]"), *k))
                    .collect();
                validate::text(&mut v, "author_id", &r.author_id, 128);
                let start_time = r.start_time.as_ref().and_then(|t| timestamp_from_proto(&mut v, "start_time", t));
                let end_time = r.end_time.as_ref().and_then(|t| timestamp_from_proto(&mut v, "end_time", t));
                if let (Some(s), Some(e)) = (start_time, end_time)
                    && e <= s
                {
                    v.add("end_time", format!("{e} must be after start_time {s}"));
                }
                v.finish()?;
                let limit = limit.expect("checked");
                let filter = ActivityFilter {
                    account_id,
                    kinds,
                    author_id: (!r.author_id.is_empty()).then(|| r.author_id.clone()),
                    start_time,
                    end_time,
                };
                let key = QueryKey::new("ListActivities", &caller.tenant_id).part(format!("{filter:?}"));
                let after: Option<(DateTime<Utc>, Uuid)> = self.kit.page_tokens.decode(&key, &r.page_token)?;
                let rows = self.store.list_activities(&caller.tenant_id, &filter, after, limit + 1).await?;
                let (rows, next_page_token) =
                    self.kit.page_tokens.page(&key, rows, limit, |last| (last.occur_time, last.id))?;
                Ok(pb::ListActivitiesResponse {
                    activities: rows.iter().map(activity_to_proto).collect(),
                    next_page_token,
                })
            }
            .await,
        )
    }

    async fn get_email_response_rate(
        &self,
        req: Request<pb::GetEmailResponseRateRequest>,
    ) -> RpcResult<pb::EmailResponseRate> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let r = req.get_ref();
                let mut v = Violations::new();
                let account_id = v.take(parse_id("account_id", &r.account_id));
                let end = r
                    .end_time
                    .as_ref()
                    .and_then(|t| timestamp_from_proto(&mut v, "end_time", t))
                    .unwrap_or_else(Utc::now);
                let start = r
                    .start_time
                    .as_ref()
                    .and_then(|t| timestamp_from_proto(&mut v, "start_time", t))
                    .unwrap_or(end - chrono::Duration::days(90));
                if end <= start {
                    v.add("end_time", format!("{end} must be after start_time {start}"));
                }
                v.finish()?;
                let (sent, replied) =
                    self.store.email_counts(&caller.tenant_id, account_id.expect("checked"), start, end).await?;
                Ok(pb::EmailResponseRate {
                    emails_sent: sent as i64,
                    emails_replied: replied as i64,
                    response_rate: activity::response_rate(sent, replied),
                })
            }
            .await,
        )
    }

    async fn create_segment(&self, req: Request<pb::CreateSegmentRequest>) -> RpcResult<pb::Segment> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                let r = req.get_ref();
                let key = request_id("request_id", &r.request_id)?;
                let p = r.segment.as_ref().ok_or_else(|| Error::invalid("segment", "is required"))?;
                let s = segment_fields(p, SEGMENT_UPDATABLE)?;
                Ok(segment_to_proto(&self.store.create_segment(&caller.tenant_id, s, key).await?))
            }
            .await,
        )
    }

    async fn get_segment(&self, req: Request<pb::GetSegmentRequest>) -> RpcResult<pb::Segment> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let id = parse_id("id", &req.get_ref().id)?;
                Ok(segment_to_proto(&self.store.get_segment(&caller.tenant_id, id).await?))
            }
            .await,
        )
    }

    async fn list_segments(&self, req: Request<pb::ListSegmentsRequest>) -> RpcResult<pb::ListSegmentsResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let r = req.get_ref();
                let limit = paging::page_size(r.page_size)?;
                let key = QueryKey::new("ListSegments", &caller.tenant_id);
                let after: Option<Uuid> = self.kit.page_tokens.decode(&key, &r.page_token)?;
                let rows = self.store.list_segments(&caller.tenant_id, after, limit + 1).await?;
                let (rows, next_page_token) = self.kit.page_tokens.page(&key, rows, limit, |last| last.id)?;
                Ok(pb::ListSegmentsResponse { segments: rows.iter().map(segment_to_proto).collect(), next_page_token })
            }
            .await,
        )
    }

    async fn update_segment(&self, req: Request<pb::UpdateSegmentRequest>) -> RpcResult<pb::Segment> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                let r = req.get_ref();
                let p = r.segment.as_ref().ok_or_else(|| Error::invalid("segment", "is required"))?;
                let id = parse_id("segment.id", &p.id)?;
                let paths = fieldmask::paths(r.update_mask.as_ref(), SEGMENT_UPDATABLE)?;
                let new = segment_fields(p, &paths)?;
                let s = self
                    .store
                    .update_segment(&caller.tenant_id, id, &p.etag, |s| {
                        for path in &paths {
                            match *path {
                                "display_name" => s.display_name = new.display_name.clone(),
                                "description" => s.description = new.description.clone(),
                                "expression" => s.expression = new.expression.clone(),
                                other => unreachable!("{other} is not a segment field"),
                            }
                        }
                    })
                    .await?;
                Ok(segment_to_proto(&s))
            }
            .await,
        )
    }

    async fn delete_segment(&self, req: Request<pb::DeleteSegmentRequest>) -> RpcResult<pbjson_types::Empty> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                let id = parse_id("id", &req.get_ref().id)?;
                self.store.delete_segment(&caller.tenant_id, id, &req.get_ref().etag).await?;
                Ok(pbjson_types::Empty {})
            }
            .await,
        )
    }

    async fn evaluate_segment(
        &self,
        req: Request<pb::EvaluateSegmentRequest>,
    ) -> RpcResult<pb::EvaluateSegmentResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let r = req.get_ref();
                let mut v = Violations::new();
                let segment_id = v.take(parse_id("segment_id", &r.segment_id));
                let limit = v.take(paging::page_size(r.page_size));
                v.finish()?;
                let (segment_id, limit) = (segment_id.expect("checked"), limit.expect("checked"));
                let (expr, today, now) = self.segment_program(&caller.tenant_id, segment_id).await?;
                let key = QueryKey::new("EvaluateSegment", &caller.tenant_id).part(segment_id.as_bytes());
                let mut after: Option<Uuid> = self.kit.page_tokens.decode(&key, &r.page_token)?;
                let mut members = Vec::new();
                let mut scanned = 0u64;
                let mut exhausted = false;
                while (members.len() as u64) < limit && scanned < SEGMENT_SCAN_PER_CALL {
                    let batch = self.scan_accounts(&caller.tenant_id, after, 500).await?;
                    if batch.is_empty() {
                        exhausted = true;
                        break;
                    }
                    for a in batch {
                        scanned += 1;
                        after = Some(a.id);
                        if segment::is_member(&expr, &a, today, now).unwrap_or(false) {
                            members.push(a);
                            if members.len() as u64 == limit {
                                break;
                            }
                        }
                    }
                }
                let next_page_token = match (exhausted, after) {
                    (false, Some(last)) => self.kit.page_tokens.encode(&key, &last)?,
                    _ => String::new(),
                };
                Ok(pb::EvaluateSegmentResponse {
                    accounts: members.iter().map(account_to_proto).collect(),
                    next_page_token,
                })
            }
            .await,
        )
    }

    async fn count_segment_members(
        &self,
        req: Request<pb::CountSegmentMembersRequest>,
    ) -> RpcResult<pb::CountSegmentMembersResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let segment_id = parse_id("segment_id", &req.get_ref().segment_id)?;
                let (expr, today, now) = self.segment_program(&caller.tenant_id, segment_id).await?;
                let mut resp = pb::CountSegmentMembersResponse::default();
                let mut after = None;
                loop {
                    let batch = self.scan_accounts(&caller.tenant_id, after, 1000).await?;
                    let Some(last) = batch.last() else { break };
                    after = Some(last.id);
                    for a in &batch {
                        resp.evaluated_count += 1;
                        match segment::is_member(&expr, a, today, now) {
                            Ok(true) => resp.member_count += 1,
                            Ok(false) => {}
                            Err(_) => resp.error_count += 1,
                        }
                    }
                }
                Ok(resp)
            }
            .await,
        )
    }

    async fn check_segment_membership(
        &self,
        req: Request<pb::CheckSegmentMembershipRequest>,
    ) -> RpcResult<pb::CheckSegmentMembershipResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let r = req.get_ref();
                let mut v = Violations::new();
                let segment_id = v.take(parse_id("segment_id", &r.segment_id));
                let account_id = v.take(parse_id("account_id", &r.account_id));
                v.finish()?;
                let (expr, today, now) = self.segment_program(&caller.tenant_id, segment_id.expect("checked")).await?;
                let a = self.store.get_account(&caller.tenant_id, account_id.expect("checked")).await?;
                Ok(match segment::is_member(&expr, &a, today, now) {
                    Ok(member) => pb::CheckSegmentMembershipResponse { member, evaluation_error: String::new() },
                    Err(e) => pb::CheckSegmentMembershipResponse { member: false, evaluation_error: e },
                })
            }
            .await,
        )
    }

    async fn get_retention_metrics(
        &self,
        req: Request<pb::GetRetentionMetricsRequest>,
    ) -> RpcResult<pb::RetentionMetrics> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let r = req.get_ref();
                let settings = self.store.get_settings(&caller.tenant_id).await?;
                let fy = settings.fiscal_year_start_month;
                let mut v = Violations::new();
                use pb::get_retention_metrics_request::Period as P;
                let period: Option<Period> = match &r.period {
                    None => {
                        v.add("period", "is required: month, fiscal_quarter, fiscal_year or date_range");
                        None
                    }
                    Some(P::Month(m)) => {
                        let ok =
                            year_ok(&mut v, "month.year", m.year) & in_range(&mut v, "month.month", m.month, 1, 12);
                        if ok { period_or(&mut v, "month", Period::month(m.year, m.month as u32)) } else { None }
                    }
                    Some(P::FiscalQuarter(q)) => {
                        let ok = year_ok(&mut v, "fiscal_quarter.fiscal_year", q.fiscal_year)
                            & in_range(&mut v, "fiscal_quarter.quarter", q.quarter, 1, 4);
                        if ok {
                            period_or(
                                &mut v,
                                "fiscal_quarter",
                                Period::quarter_of_fiscal_year(q.fiscal_year, q.quarter as u32, fy),
                            )
                        } else {
                            None
                        }
                    }
                    Some(P::FiscalYear(y)) => {
                        if year_ok(&mut v, "fiscal_year", *y) {
                            period_or(&mut v, "fiscal_year", Period::fiscal_year(*y, fy))
                        } else {
                            None
                        }
                    }
                    Some(P::DateRange(d)) => {
                        let start = date_from_proto(&mut v, "date_range.start", d.start.as_ref());
                        let end = date_from_proto(&mut v, "date_range.end", d.end.as_ref());
                        if d.start.is_none() {
                            v.add("date_range.start", "is required");
                        }
                        if d.end.is_none() {
                            v.add("date_range.end", "is required");
                        }
                        match (start, end) {
                            (Some(s), Some(e)) => period_or(&mut v, "date_range", Period::new(s, e)),
                            _ => None,
                        }
                    }
                };
                let currency = if r.currency_code.is_empty() {
                    settings.default_currency_code.clone()
                } else {
                    validate::currency(&mut v, "currency_code", &r.currency_code);
                    r.currency_code.clone()
                };
                let segment_id =
                    if r.segment_id.is_empty() { None } else { v.take(parse_id("segment_id", &r.segment_id)) };
                v.finish()?;
                let period = period.expect("checked above");
                let mut movements = self.store.contract_movements(&caller.tenant_id, &currency).await?;
                if let Some(segment_id) = segment_id {
                    let members = self.segment_members(&caller.tenant_id, segment_id).await?;
                    movements.retain(|m| members.contains(&m.account_id));
                }
                let m = retention::compute(&movements, period);
                Ok(pb::RetentionMetrics {
                    period_start: Some(date_to_proto(m.period.start)),
                    period_end: Some(date_to_proto(m.period.end)),
                    currency_code: currency,
                    starting_arr: m.starting_arr,
                    ending_arr: m.ending_arr,
                    starting_logos: m.starting_logos,
                    ending_logos: m.ending_logos,
                    churned_logos: m.churned_logos,
                    new_logos: m.new_logos,
                    churned_arr: m.churned_arr,
                    contraction_arr: m.contraction_arr,
                    expansion_arr: m.expansion_arr,
                    new_arr: m.new_arr,
                    logo_churn_rate: m.logo_churn_rate,
                    revenue_churn_rate: m.revenue_churn_rate,
                    net_revenue_churn_rate: m.net_revenue_churn_rate,
                    gross_revenue_retention: m.gross_revenue_retention,
                    net_revenue_retention: m.net_revenue_retention,
                    renewals: m.renewals,
                    renewal_churns: m.renewal_churns,
                    renewal_rate: m.renewal_rate,
                    arr_renewal_rate: m.arr_renewal_rate,
                    renewal_arr_due: m.renewal_arr_due,
                    renewal_arr_retained: m.renewal_arr_retained,
                    renewal_arr_booked: m.renewal_arr_booked,
                    net_arr_renewal_rate: m.net_arr_renewal_rate,
                })
            }
            .await,
        )
    }
}

impl AccountsApi {
    /// A segment's compiled expression, with "today" in the tenant's zone.
    async fn segment_program(
        &self,
        tenant: &str,
        segment_id: Uuid,
    ) -> Result<(banso_cel::Expression, NaiveDate, DateTime<Utc>)> {
        let s = self.store.get_segment(tenant, segment_id).await?;
        // Stored expressions compiled when saved; a failure now is a bug.
        let expr = segment::compile(&s.expression)
            .map_err(|e| Error::internal(anyhow::anyhow!("stored segment {segment_id} does not compile: {e}")))?;
        let settings: TenantSettings = self.store.get_settings(tenant).await?;
        let now = Utc::now();
        Ok((expr, retention::today_in(settings.tz(), now), now))
    }

    /// Accounts in creation order after `after`.
    async fn scan_accounts(&self, tenant: &str, after: Option<Uuid>, limit: u64) -> Result<Vec<Account>> {
        let order = AccountOrder { sort: AccountSort::CreateTime, desc: false };
        let cursor = after.map(|id| AccountCursor { key: crate::domain::SortKey::Id, id });
        self.store.list_accounts(tenant, &AccountFilter::default(), order, cursor.as_ref(), limit).await
    }

    /// The ids of a segment's members now.
    async fn segment_members(&self, tenant: &str, segment_id: Uuid) -> Result<HashSet<Uuid>> {
        let (expr, today, now) = self.segment_program(tenant, segment_id).await?;
        let mut members = HashSet::new();
        let mut after = None;
        loop {
            let batch = self.scan_accounts(tenant, after, 1000).await?;
            let Some(last) = batch.last() else { return Ok(members) };
            after = Some(last.id);
            for a in &batch {
                if segment::is_member(&expr, a, today, now).unwrap_or(false) {
                    members.insert(a.id);
                }
            }
        }
    }
}

/// Chunks of ImportAccounts rows (up to 1,000 each) validated ahead of the
/// writes.
const IMPORT_READ_AHEAD: usize = 2;

/// Up to 1,000 rows of an ImportAccounts stream, validated.
struct AccountChunk {
    valid: Vec<crate::domain::AccountFields>,
    rest: ChunkRows,
}

/// What the tally needs of a chunk besides the store's outcomes.
struct ChunkRows {
    rows: i64,
    /// Refused rows: index, external_id, why.
    refused: Vec<(i64, String, Error)>,
    /// Index and external_id of each valid row.
    valid_rows: Vec<(i64, String)>,
}

/// A chunk being written, in a task of its own so the next chunk can be
/// prepared meanwhile; aborted if the call ends first.
struct ChunkWrite {
    external_ids: HashSet<String>,
    rows: ChunkRows,
    task: AbortOnDrop<Result<Vec<Result<RowOutcome>>>>,
}

impl ChunkWrite {
    fn start(store: Store, prepared: crate::store::import::PreparedImport, rows: ChunkRows) -> ChunkWrite {
        let external_ids = prepared.external_ids().map(str::to_owned).collect();
        let task =
            tokio::spawn(async move { store.finish_import(prepared).await }.instrument(tracing::Span::current()));
        ChunkWrite { external_ids, rows, task: AbortOnDrop(task) }
    }

    /// Whether `chunk` has rows this write may create or change.
    fn touches(&self, chunk: &AccountChunk) -> bool {
        chunk.valid.iter().any(|f| self.external_ids.contains(f.external_id.as_deref().unwrap_or_default()))
    }

    /// Waits for the write and counts the chunk.
    async fn finish(mut self, tally: &mut ImportTally) -> Result<()> {
        let results = (&mut self.task.0).await.map_err(Error::internal)??;
        let rows = self.rows;
        tally.rows += rows.rows;
        for (row, external_id, e) in rows.refused {
            tally.refused(row, &external_id, e);
        }
        tally.outcomes(results, rows.valid_rows);
        Ok(())
    }
}

/// Reads and validates an ImportAccounts stream into chunks for the writer;
/// ends with the stream, with the first error reading it, or when the writer
/// stops listening.
async fn read_account_rows(
    mut stream: Streaming<pb::ImportAccountsRequest>,
    tx: tokio::sync::mpsc::Sender<Result<AccountChunk>>,
) {
    let mut next_row: i64 = 0;
    loop {
        let msg = match stream.message().await {
            Ok(Some(msg)) => msg,
            Ok(None) => return,
            Err(s) => {
                let _ = tx.send(Err(stream_error(s))).await;
                return;
            }
        };
        for rows in msg.accounts.chunks(1000) {
            let mut valid = Vec::new();
            let mut rest = ChunkRows { rows: 0, refused: Vec::new(), valid_rows: Vec::new() };
            for acc in rows {
                let row = next_row;
                next_row += 1;
                rest.rows += 1;
                let mut v = Violations::new();
                if acc.external_id.is_empty() {
                    v.add("account.external_id", "is required: imports match on it");
                }
                let fields = account_fields(acc, "account", ACCOUNT_UPDATABLE, &mut v);
                fields.check_consistency("account", &mut v);
                match v.finish() {
                    Ok(()) => {
                        valid.push(fields);
                        rest.valid_rows.push((row, acc.external_id.clone()));
                    }
                    Err(e) => rest.refused.push((row, acc.external_id.clone(), e)),
                }
            }
            if tx.send(Ok(AccountChunk { valid, rest })).await.is_err() {
                return;
            }
        }
    }
}

/// Aborts a task when dropped (the call it works for ended).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A broken request stream (bad message, client gone).
fn stream_error(s: Status) -> Error {
    Error::invalid("stream", format!("cannot read the request stream: {}", s.message()))
}

/// What an import stream did, row by row: the counts and the refused rows
/// of both ImportAccounts and ImportContacts.
#[derive(Default)]
struct ImportTally {
    rows: i64,
    created: i64,
    updated: i64,
    unchanged: i64,
    failed: i64,
    errors: Vec<pb::ImportRowError>,
}

impl ImportTally {
    /// A refused row: counted, and its errors listed up to the cap.
    fn refused(&mut self, row: i64, external_id: &str, e: Error) {
        self.failed += 1;
        let strip = |f: &str| f.strip_prefix("account.").or_else(|| f.strip_prefix("contact.")).unwrap_or(f).to_owned();
        let items: Vec<(String, String)> = match e {
            Error::InvalidArgument(vs) => vs.into_iter().map(|v| (strip(&v.field), v.description)).collect(),
            other => vec![(String::new(), other.to_string())],
        };
        for (field, description) in items {
            if self.errors.len() < MAX_IMPORT_ERRORS {
                self.errors.push(pb::ImportRowError { row, external_id: external_id.to_owned(), field, description });
            }
        }
    }

    /// What the store did with the valid rows (`rows`: index and external_id).
    fn outcomes(&mut self, results: Vec<Result<RowOutcome>>, rows: Vec<(i64, String)>) {
        for (result, (row, ext)) in results.into_iter().zip(rows) {
            match result {
                Ok(RowOutcome::Created) => self.created += 1,
                Ok(RowOutcome::Updated) => self.updated += 1,
                Ok(RowOutcome::Unchanged) => self.unchanged += 1,
                Err(e) => self.refused(row, &ext, e),
            }
        }
    }

    /// The tally with its errors in row order.
    fn finish(mut self) -> Self {
        self.errors.sort_by_key(|e| e.row);
        self
    }
}

/// A validated segment from the fields of `p` named in `paths`.
fn segment_fields(p: &pb::Segment, paths: &[&str]) -> Result<Segment> {
    let mut v = Violations::new();
    for path in paths {
        match *path {
            "display_name" => validate::required_text(&mut v, "segment.display_name", &p.display_name, 200),
            "description" => validate::text(&mut v, "segment.description", &p.description, 2000),
            "expression" => {
                if let Err(e) = segment::compile(&p.expression) {
                    v.add("segment.expression", e.to_string());
                }
            }
            other => unreachable!("{other} is not a segment field"),
        }
    }
    v.finish()?;
    Ok(Segment {
        id: Uuid::nil(),
        display_name: p.display_name.trim().to_owned(),
        description: p.description.clone(),
        expression: p.expression.clone(),
        create_time: Utc::now(),
        update_time: Utc::now(),
        version: 0,
    })
}

/// The period, or its error as a violation under `field`.
fn period_or(
    v: &mut Violations,
    field: &str,
    p: std::result::Result<Period, retention::PeriodError>,
) -> Option<Period> {
    match p {
        Ok(p) => Some(p),
        Err(e) => {
            v.add(format!("{field}.{}", e.field()), e.to_string());
            None
        }
    }
}

/// A year the Date type allows (1900–9999); records a violation if not.
fn year_ok(v: &mut Violations, field: &str, year: i32) -> bool {
    in_range(v, field, year, 1900, 9999)
}

/// `lo ≤ value ≤ hi`, quoting the value as sent when it is not.
fn in_range(v: &mut Violations, field: &str, value: i32, lo: i32, hi: i32) -> bool {
    let ok = (lo..=hi).contains(&value);
    v.check(!ok, field, format!("must be {lo} to {hi}, got {value}"));
    ok
}
