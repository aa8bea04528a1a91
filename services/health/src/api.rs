//! The gRPC face of the health service: check the caller, validate and
//! convert, call the store.

use banso_kit::{
    Error, Result, Violations,
    auth::{self, Access},
    fieldmask, idempotency,
    paging::{self, QueryKey},
    reply,
    server::Kit,
    wire,
};
use banso_proto::health as pb;
use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::{
    HealthSettings, api_portfolio,
    api_scores::{def_from_proto, merged, scorecard_to_proto},
    domain::{
        account::{AccountRow, GROUP_BY, valid_group_by},
        portfolio::distribution,
        rollup::day_of,
    },
    recompute::{Recompute, trigger},
    rollups::Rollups,
    scorer::{Scorer, band_to_proto},
    store::{AcceptedEvent, Store, portfolio::HistoryPoint, scores::StoredHealth},
};

/// Fields an UpdateScorecard mask may name.
const SCORECARD_UPDATABLE: &[&str] = &["name", "scope", "measures", "bands"];

/// Events one request message may carry.
const MAX_BATCH: usize = 5_000;
/// Rejections a response lists (all are counted).
const MAX_REJECTIONS: usize = 1_000;
/// How far ahead of the server's clock an event may be (clock skew).
const FUTURE_SLACK_SECS: i64 = 300;

pub struct HealthApi {
    store: Store,
    settings: HealthSettings,
    scorer: Scorer,
    recompute: Recompute,
    rollups: Rollups,
    kit: Kit,
}

impl HealthApi {
    pub fn new(
        store: Store,
        settings: HealthSettings,
        scorer: Scorer,
        recompute: Recompute,
        rollups: Rollups,
        kit: Kit,
    ) -> Self {
        HealthApi { store, settings, scorer, recompute, rollups, kit }
    }
}

type RpcResult<T> = std::result::Result<Response<T>, Status>;

fn valid_event_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

/// Where a usage event's account is, before it is looked up.
enum AccountRef {
    Id(Uuid),
    External(String),
}

/// A usage event that passed the field checks.
struct Checked {
    index: i64,
    event_id: String,
    account: AccountRef,
    user_key: String,
    event_name: String,
    occur_time: DateTime<Utc>,
    quantity: f64,
    duration_secs: Option<f64>,
    properties: serde_json::Value,
}

fn reject(
    resp: &mut pb::IngestUsageResponse,
    index: i64,
    event_id: &str,
    reason: &str,
    field: &str,
    description: String,
) {
    resp.rejected += 1;
    if resp.rejections.len() < MAX_REJECTIONS {
        resp.rejections.push(pb::UsageRejection {
            index,
            event_id: event_id.to_owned(),
            reason: reason.to_owned(),
            field: field.to_owned(),
            description,
        });
    }
}

/// Checks one event's fields; its time against the window is checked later.
fn check(index: i64, e: &pb::UsageEvent) -> std::result::Result<Checked, Vec<(String, String)>> {
    let mut v = Violations::new();
    let chars = e.event_id.chars().count();
    if chars == 0 || chars > 128 || e.event_id.chars().any(char::is_control) {
        v.add("event_id", format!("must be 1 to 128 printable characters, got {:?}", e.event_id));
    }
    let account = if !e.account_id.is_empty() {
        match Uuid::parse_str(&e.account_id) {
            Ok(id) => Some(AccountRef::Id(id)),
            Err(_) => {
                v.add("account_id", format!("{:?} is not a UUID", e.account_id));
                None
            }
        }
    } else if !e.account_external_id.is_empty() && e.account_external_id.chars().count() <= 128 {
        Some(AccountRef::External(e.account_external_id.clone()))
    } else {
        v.add("account_id", "is required (or account_external_id, at most 128 characters)");
        None
    };
    if e.user_id.chars().count() > 256 {
        v.add("user_id", "must be at most 256 characters");
    }
    if !valid_event_name(&e.event_name) {
        v.add("event_name", format!("must be 1 to 128 of [A-Za-z0-9_.:-], got {:?}", e.event_name));
    }
    let occur_time = match &e.timestamp {
        None => {
            v.add("timestamp", "is required");
            None
        }
        Some(t) => v.take(banso_kit::wire::time("timestamp", t)),
    };
    let quantity = e.quantity.unwrap_or(1.0);
    if !quantity.is_finite() || quantity < 0.0 {
        v.add("quantity", format!("must be finite and not negative, got {quantity}"));
    }
    if let Some(d) = e.duration_seconds
        && !(d.is_finite() && (0.0..=86_400.0).contains(&d))
    {
        v.add("duration_seconds", format!("must be 0 to 86400, got {d}"));
    }
    if e.properties.len() > 50 {
        v.add("properties", format!("at most 50 entries, got {}", e.properties.len()));
    }
    for (k, val) in &e.properties {
        if k.is_empty() || k.chars().count() > 64 || val.chars().count() > 1024 {
            v.add(format!("properties[{k:?}]"), "keys must be 1 to 64 characters and values at most 1,024");
        }
    }
    match v.finish() {
        Ok(()) => Ok(Checked {
            index,
            event_id: e.event_id.clone(),
            account: account.expect("checked"),
            user_key: e.user_id.clone(),
            event_name: e.event_name.clone(),
            occur_time: occur_time.expect("checked"),
            quantity,
            duration_secs: e.duration_seconds,
            properties: serde_json::to_value(&e.properties).expect("a string map serializes"),
        }),
        Err(Error::InvalidArgument(vs)) => Err(vs.into_iter().map(|x| (x.field, x.description)).collect()),
        Err(other) => Err(vec![(String::new(), other.to_string())]),
    }
}

impl HealthApi {
    /// Ingests one batch; `first_index` numbers its events in the stream.
    async fn ingest_batch(
        &self,
        tenant: &str,
        events: &[pb::UsageEvent],
        first_index: i64,
        resp: &mut pb::IngestUsageResponse,
    ) -> Result<()> {
        let now = Utc::now();
        let oldest = now - chrono::Duration::from_std(self.settings.late_window).expect("window fits");
        let newest = now + chrono::Duration::seconds(FUTURE_SLACK_SECS);
        let mut checked = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            let index = first_index + i as i64;
            match check(index, e) {
                Ok(c) if c.occur_time < oldest => reject(
                    resp,
                    index,
                    &c.event_id,
                    "TOO_OLD",
                    "timestamp",
                    format!(
                        "{} is older than the late window ({} hours)",
                        c.occur_time,
                        self.settings.late_window.as_secs() / 3600
                    ),
                ),
                Ok(c) if c.occur_time > newest => reject(
                    resp,
                    index,
                    &c.event_id,
                    "IN_FUTURE",
                    "timestamp",
                    format!("{} is in the future", c.occur_time),
                ),
                Ok(c) => checked.push(c),
                Err(violations) => {
                    for (field, description) in violations {
                        reject(resp, index, &e.event_id, "INVALID", &field, description);
                        // Count the event once, however many fields are bad.
                        resp.rejected -= 1;
                    }
                    resp.rejected += 1;
                }
            }
        }
        let ids: Vec<Uuid> =
            checked.iter().filter_map(|c| if let AccountRef::Id(id) = c.account { Some(id) } else { None }).collect();
        let externals: Vec<String> = checked
            .iter()
            .filter_map(|c| if let AccountRef::External(x) = &c.account { Some(x.clone()) } else { None })
            .collect();
        let (known, by_external) = self.store.resolve_accounts(tenant, &ids, &externals).await?;
        let tz = self.store.time_zone(tenant).await?;
        let mut accepted = Vec::with_capacity(checked.len());
        for c in checked {
            let account = match &c.account {
                AccountRef::Id(id) => known.contains(id).then_some(*id),
                AccountRef::External(x) => by_external.get(x).copied(),
            };
            // Events of unknown accounts are refused, never dropped silently:
            // the sender learns at once and can resend once the account exists.
            let Some(account_id) = account else {
                let which = match &c.account {
                    AccountRef::Id(id) => format!("account {id}"),
                    AccountRef::External(x) => format!("account with external_id {x:?}"),
                };
                reject(
                    resp,
                    c.index,
                    &c.event_id,
                    "UNKNOWN_ACCOUNT",
                    "account_id",
                    format!("{which} is not known to this tenant"),
                );
                continue;
            };
            accepted.push(AcceptedEvent {
                event_id: c.event_id,
                account_id,
                user_key: c.user_key,
                event_name: c.event_name,
                occur_time: c.occur_time,
                day: day_of(c.occur_time, tz),
                quantity: c.quantity,
                duration_secs: c.duration_secs,
                properties: c.properties,
            });
        }
        let inserted = self.store.ingest(tenant, &accepted).await?;
        if !inserted.is_empty() {
            // The rollup task folds the batch and has its accounts rescored.
            self.rollups.wake();
        }
        resp.accepted += inserted.len() as i64;
        resp.duplicates += (accepted.len() - inserted.len()) as i64;
        resp.rejections.sort_by_key(|r| r.index);
        Ok(())
    }
}

#[tonic::async_trait]
impl pb::health_service_server::HealthService for HealthApi {
    async fn ingest_usage(
        &self,
        req: Request<Streaming<pb::IngestUsageRequest>>,
    ) -> RpcResult<pb::IngestUsageResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                let mut stream = req.into_inner();
                let read = |r: std::result::Result<Option<pb::IngestUsageRequest>, Status>| {
                    r.map_err(|s| Error::invalid("stream", format!("cannot read the request stream: {}", s.message())))
                };
                let mut resp = pb::IngestUsageResponse::default();
                let mut next = 0i64;
                let mut message = read(stream.message().await)?;
                while let Some(msg) = message {
                    // The next message is read and decoded while this one is
                    // written: the service's CPU and the database's overlap.
                    let store = async {
                        for chunk in msg.events.chunks(MAX_BATCH) {
                            self.ingest_batch(&caller.tenant_id, chunk, next, &mut resp).await?;
                            next += chunk.len() as i64;
                        }
                        Ok::<_, Error>(())
                    };
                    let (stored, following) = tokio::join!(store, stream.message());
                    stored?;
                    message = read(following)?;
                }
                Ok(resp)
            }
            .await,
        )
    }

    async fn batch_ingest_usage(
        &self,
        req: Request<pb::BatchIngestUsageRequest>,
    ) -> RpcResult<pb::IngestUsageResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                let events = &req.get_ref().events;
                if events.len() > MAX_BATCH {
                    return Err(Error::invalid(
                        "events",
                        format!(
                            "at most {MAX_BATCH} events per batch, got {}; use IngestUsage to stream more",
                            events.len()
                        ),
                    ));
                }
                let mut resp = pb::IngestUsageResponse::default();
                self.ingest_batch(&caller.tenant_id, events, 0, &mut resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn set_measure_value(
        &self,
        req: Request<pb::SetMeasureValueRequest>,
    ) -> RpcResult<pb::SetMeasureValueResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Write)?;
                let r = req.get_ref();
                let mut v = Violations::new();
                let account = match Uuid::parse_str(&r.account_id) {
                    Ok(id) => Some(id),
                    Err(_) => {
                        v.add("account_id", format!("{:?} is not a UUID", r.account_id));
                        None
                    }
                };
                let name_ok = !r.measure.is_empty()
                    && r.measure.len() <= 64
                    && r.measure.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                v.check(!name_ok, "measure", format!("must be 1 to 64 of [a-z0-9_], got {:?}", r.measure));
                if let Some(x) = r.value {
                    v.check(!x.is_finite(), "value", format!("must be a finite number, got {x}"));
                }
                let observe_time = match &r.observe_time {
                    None => Utc::now(),
                    Some(t) => v.take(banso_kit::wire::time("observe_time", t)).unwrap_or_else(Utc::now),
                };
                v.finish()?;
                let account = account.expect("checked");
                if self.store.account(&caller.tenant_id, account).await?.is_none() {
                    return Err(Error::not_found("account", account.to_string()));
                }
                self.store.set_measure(&caller.tenant_id, account, &r.measure, r.value, observe_time).await?;
                self.scorer.account(&caller.tenant_id, account);
                Ok(pb::SetMeasureValueResponse {
                    account_id: account.to_string(),
                    measure: format!("external:{}", r.measure),
                    value: r.value,
                })
            }
            .await,
        )
    }

    async fn create_scorecard(&self, req: Request<pb::CreateScorecardRequest>) -> RpcResult<pb::Scorecard> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Admin)?;
                let r = req.get_ref();
                let key = idempotency::optional("request_id", &r.request_id)?;
                let p = r.scorecard.as_ref().ok_or_else(|| Error::invalid("scorecard", "is required"))?;
                let def = def_from_proto(p)?;
                let card = self.store.create_scorecard(&caller.tenant_id, def, key).await?;
                self.recompute.start(&caller.tenant_id, trigger::SCORECARD, None).await?;
                Ok(scorecard_to_proto(&card))
            }
            .await,
        )
    }

    async fn get_scorecard(&self, req: Request<pb::GetScorecardRequest>) -> RpcResult<pb::Scorecard> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let r = req.get_ref();
                let id = banso_kit::wire::uuid("id", &r.id)?;
                if r.version < 0 {
                    return Err(Error::invalid("version", format!("must not be negative, got {}", r.version)));
                }
                let version = (r.version > 0).then_some(r.version);
                Ok(scorecard_to_proto(&self.store.get_scorecard(&caller.tenant_id, id, version).await?))
            }
            .await,
        )
    }

    async fn list_scorecards(&self, req: Request<pb::ListScorecardsRequest>) -> RpcResult<pb::ListScorecardsResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let r = req.get_ref();
                let limit = paging::page_size(r.page_size)?;
                let key = QueryKey::new("ListScorecards", &caller.tenant_id);
                let after: Option<Uuid> = self.kit.page_tokens.decode(&key, &r.page_token)?;
                let rows = self.store.list_scorecards(&caller.tenant_id, after, limit + 1).await?;
                let (rows, next_page_token) = self.kit.page_tokens.page(&key, rows, limit, |last| last.id)?;
                Ok(pb::ListScorecardsResponse {
                    scorecards: rows.iter().map(scorecard_to_proto).collect(),
                    next_page_token,
                })
            }
            .await,
        )
    }

    async fn update_scorecard(&self, req: Request<pb::UpdateScorecardRequest>) -> RpcResult<pb::Scorecard> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Admin)?;
                let r = req.get_ref();
                let p = r.scorecard.as_ref().ok_or_else(|| Error::invalid("scorecard", "is required"))?;
                let id = banso_kit::wire::uuid("scorecard.id", &p.id)?;
                let paths = fieldmask::paths(r.update_mask.as_ref(), SCORECARD_UPDATABLE)?;
                let current = self.store.get_scorecard(&caller.tenant_id, id, None).await?;
                if !p.etag.is_empty() && p.etag != crate::api_scores::etag(current.version) {
                    return Err(Error::Aborted {
                        reason: "ETAG_MISMATCH",
                        message: format!("etag {:?} is stale; the current version is {}", p.etag, current.version),
                    });
                }
                let def = def_from_proto(&merged(&scorecard_to_proto(&current), p, &paths))?;
                if def == current.def {
                    return Ok(scorecard_to_proto(&current));
                }
                let next = self.store.update_scorecard(&caller.tenant_id, &current, def).await?;
                self.recompute.start(&caller.tenant_id, trigger::SCORECARD, None).await?;
                Ok(scorecard_to_proto(&next))
            }
            .await,
        )
    }

    async fn get_account_health(&self, req: Request<pb::GetAccountHealthRequest>) -> RpcResult<pb::AccountHealth> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let account = banso_kit::wire::uuid("account_id", &req.get_ref().account_id)?;
                let tenant = caller.tenant_id.as_str();
                let row = self
                    .store
                    .account(tenant, account)
                    .await?
                    .ok_or_else(|| Error::not_found("account", account.to_string()))?;
                let h = self
                    .store
                    .account_health(tenant, account)
                    .await?
                    .ok_or_else(|| Error::not_found("account health", account.to_string()))?;
                Ok(api_portfolio::health_to_proto(&row, &h, true))
            }
            .await,
        )
    }

    async fn list_account_health(
        &self,
        req: Request<pb::ListAccountHealthRequest>,
    ) -> RpcResult<pb::ListAccountHealthResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let r = req.get_ref();
                let tenant = caller.tenant_id.as_str();
                let mut v = Violations::new();
                let filter = api_portfolio::filter_from_proto(&mut v, r.filter.as_ref());
                let order = api_portfolio::order_from_proto(&mut v, r.order_by);
                let page_size = v.take(paging::page_size(r.page_size));
                v.finish()?;
                let page_size = page_size.expect("checked");
                let query = QueryKey::new("ListAccountHealth", tenant)
                    .part(filter.query_part())
                    .part(format!("{order:?}|{}", r.skip_contributions));
                let (columns, conditions) = filter.conditions(&self.store, tenant).await?;
                let mut after: Option<(f64, Uuid)> = self.kit.page_tokens.decode(&query, &r.page_token)?;
                let today = day_of(Utc::now(), self.store.time_zone(tenant).await?);
                let now = Utc::now();
                // Columns filter in SQL; CEL conditions here, fetching on until
                // the page is full (one more row tells whether another page exists).
                let mut page: Vec<(AccountRow, StoredHealth)> = Vec::new();
                let batch = if conditions.is_empty() { page_size + 1 } else { (page_size + 1).max(500) };
                'fill: loop {
                    let rows = self.store.health_page(tenant, &columns, order, after, batch).await?;
                    let exhausted = (rows.len() as u64) < batch;
                    for (row, h) in rows {
                        after = Some((order.key(&h), row.account_id));
                        if conditions.keep(&row, today, now) {
                            page.push((row, h));
                            if page.len() as u64 > page_size {
                                break 'fill;
                            }
                        }
                    }
                    if exhausted {
                        break;
                    }
                }
                let (page, next_page_token) =
                    self.kit.page_tokens.page(&query, page, page_size, |(row, h)| (order.key(h), row.account_id))?;
                Ok(pb::ListAccountHealthResponse {
                    accounts: page
                        .iter()
                        .map(|(row, h)| api_portfolio::health_to_proto(row, h, !r.skip_contributions))
                        .collect(),
                    next_page_token,
                })
            }
            .await,
        )
    }

    async fn get_health_distribution(
        &self,
        req: Request<pb::GetHealthDistributionRequest>,
    ) -> RpcResult<pb::GetHealthDistributionResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let r = req.get_ref();
                let tenant = caller.tenant_id.as_str();
                let mut v = Violations::new();
                let filter = api_portfolio::filter_from_proto(&mut v, r.filter.as_ref());
                let group_by = r.group_by.trim();
                if !group_by.is_empty() && !valid_group_by(group_by) {
                    v.add(
                        "group_by",
                        format!(
                            "{group_by:?} is not an account attribute; use one of {} or attributes.<key>",
                            GROUP_BY.join(", ")
                        ),
                    );
                }
                v.finish()?;
                let (columns, conditions) = filter.conditions(&self.store, tenant).await?;
                let today = day_of(Utc::now(), self.store.time_zone(tenant).await?);
                let now = Utc::now();
                let rows = self.store.health_all(tenant, &columns).await?;
                let kept: Vec<_> = rows
                    .iter()
                    .filter(|(row, scored)| {
                        // Unscored accounts cannot pass a filter on the score.
                        (scored.is_some() || !columns.on_health()) && conditions.keep(row, today, now)
                    })
                    .map(|(row, scored)| (row, *scored))
                    .collect();
                let d = distribution(&kept, (!group_by.is_empty()).then_some(group_by));
                Ok(api_portfolio::distribution_to_proto(&d))
            }
            .await,
        )
    }

    async fn get_health_history(
        &self,
        req: Request<pb::GetHealthHistoryRequest>,
    ) -> RpcResult<pb::GetHealthHistoryResponse> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let r = req.get_ref();
                let tenant = caller.tenant_id.as_str();
                let mut v = Violations::new();
                let account = v.take(banso_kit::wire::uuid("account_id", &r.account_id));
                let start = r.start_day.as_ref().and_then(|d| wire::date(&mut v, "start_day", d.year, d.month, d.day));
                let end = r.end_day.as_ref().and_then(|d| wire::date(&mut v, "end_day", d.year, d.month, d.day));
                let page_size = v.take(paging::page_size(r.page_size));
                v.finish()?;
                let (account, page_size) = (account.expect("checked"), page_size.expect("checked"));
                if self.store.account(tenant, account).await?.is_none() {
                    return Err(Error::not_found("account", account.to_string()));
                }
                let end = match end {
                    Some(e) => e,
                    None => day_of(Utc::now(), self.store.time_zone(tenant).await?),
                };
                let start = start.unwrap_or(end - chrono::Duration::days(90));
                if start > end {
                    return Err(Error::invalid("start_day", format!("{start} is after end_day {end}")));
                }
                let query = QueryKey::new("GetHealthHistory", tenant)
                    .part(account.as_bytes())
                    .part(format!("{start}|{end}|{}", r.band_changes_only));
                let after: Option<(chrono::NaiveDate, Uuid)> = self.kit.page_tokens.decode(&query, &r.page_token)?;
                let rows =
                    self.store.history(tenant, account, start, end, r.band_changes_only, after, page_size + 1).await?;
                let (rows, next_page_token) =
                    self.kit.page_tokens.page(&query, rows, page_size, |p: &HistoryPoint| (p.day, p.id))?;
                Ok(pb::GetHealthHistoryResponse {
                    points: rows
                        .iter()
                        .map(|p| pb::HealthPoint {
                            day: Some(wire::date_to_proto(p.day)),
                            kind: if p.band_change {
                                pb::HealthPointKind::BandChange
                            } else {
                                pb::HealthPointKind::Daily
                            } as i32,
                            score: p.score,
                            band: band_to_proto(p.band) as i32,
                            record_time: Some(wire::timestamp(p.record_time)),
                        })
                        .collect(),
                    next_page_token,
                })
            }
            .await,
        )
    }

    async fn start_recompute(&self, req: Request<pb::StartRecomputeRequest>) -> RpcResult<pb::RecomputeJob> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Admin)?;
                let key = idempotency::optional("request_id", &req.get_ref().request_id)?;
                let job = self.recompute.start(&caller.tenant_id, trigger::API, key).await?;
                Ok(api_portfolio::job_to_proto(&job))
            }
            .await,
        )
    }

    async fn get_recompute_job(&self, req: Request<pb::GetRecomputeJobRequest>) -> RpcResult<pb::RecomputeJob> {
        reply(
            async {
                let caller = auth::caller(&req)?;
                caller.require(Access::Read)?;
                let id = banso_kit::wire::uuid("id", &req.get_ref().id)?;
                let job = self.store.get_job(&caller.tenant_id, id).await?;
                Ok(api_portfolio::job_to_proto(&job))
            }
            .await,
        )
    }
}
