//! The Segment-compatible tracking API: `POST /v1/track`, `/v1/identify`,
//! `/v1/group`, `/v1/page`, `/v1/screen` and `/v1/batch` take Segment's
//! JSON with a Banso write key, so a product's existing Segment library
//! works once its host points here (docs/tracking.md).
//!
//! A write key is `bk.<tenant>.<secret>`. The gateway reads the tenant from
//! it, mints a short-lived `service` token of that tenant, and asks Accounts
//! (`VerifyWriteKey`) whether the key is valid; a verified key is cached
//! for `BANSO_GATEWAY_WRITE_KEY_TTL_SECS` (revocation takes effect within
//! it). With the same token it then calls the services: identify and group
//! upsert contacts and accounts in Accounts, in the order sent; track, page
//! and screen become Health usage events (`BatchIngestUsage`, the
//! messageId as event id, so a retried batch counts once).
//!
//! What one message cannot do never fails the batch: it is counted
//! (`banso_gateway_tracking_events_total{type,outcome}`), listed in the
//! reply, and the batch answers 200 `{"success": true, …}`. Only an
//! unreadable request (4xx) or a service that cannot answer now (5xx, so
//! the SDK retries the whole batch, which changes nothing twice) fail it.

mod cache;
pub mod message;

use std::{
    collections::{BTreeMap, HashMap},
    io::Read as _,
    sync::Arc,
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::Request,
    response::{IntoResponse, Response},
    routing::any,
};
use banso_kit::{
    auth::{DevTokenIssuer, Role},
    config::Config,
};
use banso_proto::{accounts as apb, health as hpb};
use base64::Engine as _;
use chrono::Utc;
use futures::StreamExt as _;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tonic::{Code, Status, metadata::MetadataMap, transport::Channel};
use tonic_types::StatusExt as _;

use self::{
    cache::TtlCache,
    message::{AccountTraits, BatchMeta, ContactTraits, Kind, MAX_EVENT_BYTES, Message, Refusal},
};
use crate::{Gateway, edge::labelled, problem::Problem};

/// Events of the tracking API by call type and what became of them.
pub const EVENTS_TOTAL: &str = "banso_gateway_tracking_events_total";
/// Segment's limit for a batch request.
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// How long a service token the gateway mints lives.
const TOKEN_TTL: Duration = Duration::from_secs(300);
/// How long an identify's traits wait for the user's first group call.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// How long an account a group call created counts as new: Health may not
/// have heard of it yet, so its usage is sent again a few times.
const NEW_ACCOUNT_TTL: Duration = Duration::from_secs(60);
/// Entries each cache holds at most.
const CACHE_CAP: usize = 10_000;
const ACCOUNTS: &str = "banso.accounts.v1.AccountsService";
const HEALTH: &str = "banso.health.v1.HealthService";
/// Events per BatchIngestUsage call: Health takes 5,000 but lists at most
/// 1,000 rejections a reply, and each rejected event is reported by index.
const INGEST_CHUNK: usize = 1_000;
/// Events the reply lists (all are counted).
const MAX_LISTED: usize = 100;
/// Contact lookups in flight at once for one request.
const LOOKUPS_IN_FLIGHT: usize = 8;
/// Waits before resending usage of an account this request created, while
/// Health has not heard of it yet (it learns from Accounts' events).
const FRESH_ACCOUNT_RETRIES_MS: &[u64] = &[20, 50, 100, 200, 400, 800, 1600];

/// The routes and what they read.
const ROUTES: &[(&str, Option<Kind>)] = &[
    ("/v1/track", Some(Kind::Track)),
    ("/v1/identify", Some(Kind::Identify)),
    ("/v1/group", Some(Kind::Group)),
    ("/v1/page", Some(Kind::Page)),
    ("/v1/screen", Some(Kind::Screen)),
    ("/v1/batch", None),
];

/// What the tracking API needs beyond the gateway: how it authenticates to
/// the services on behalf of a write key's tenant, and what it remembers.
/// `None` inside: no signing key, so the routes answer 503.
#[derive(Clone, Default)]
pub struct Tracking {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    issuer: DevTokenIssuer,
    /// Verified keys by the SHA-256 of the key (the key itself is not kept).
    keys: TtlCache<[u8; 32], VerifiedKey>,
    /// A user's account, by (tenant, user id): contacts do not move between
    /// accounts, so this only goes stale when a contact is deleted.
    users: TtlCache<(String, String), String>,
    /// Identify traits of users no account is known for yet, by (tenant, user id).
    pending: TtlCache<(String, String), ContactTraits>,
    /// Accounts group calls created lately, by (tenant, account).
    created: TtlCache<(String, AccountRef), ()>,
}

#[derive(Clone, Debug)]
struct VerifiedKey {
    tenant: String,
    key_id: String,
}

impl Tracking {
    /// `BANSO_GATEWAY_WRITE_KEY_TTL_SECS` (default 30): how long a verified
    /// key is trusted without asking Accounts again (0: every request asks).
    /// `BANSO_GATEWAY_TRACKING_USER_TTL_SECS` (default 60): how long a
    /// user's account is remembered. Tokens are minted with the HS256
    /// secret (`BANSO_JWT_HS256_SECRET`); without it the API is off.
    pub fn from_config(config: &Config) -> anyhow::Result<Tracking> {
        let v = config.vars();
        let key_ttl = v.secs("BANSO_GATEWAY_WRITE_KEY_TTL_SECS", 30.0)?;
        let user_ttl = v.secs("BANSO_GATEWAY_TRACKING_USER_TTL_SECS", 60.0)?;
        metrics::describe_counter!(
            EVENTS_TOTAL,
            "tracking API messages, by type (track, identify, group, page, screen, alias) and outcome \
             (accepted, duplicate, rejected, skipped, deferred)"
        );
        let Some(issuer) = DevTokenIssuer::from_config(&config.auth) else {
            tracing::warn!(
                "tracking API disabled: the gateway signs its calls to the services with BANSO_JWT_HS256_SECRET, \
                 which is not set; /v1/track, /v1/batch, … answer 503 TRACKING_DISABLED"
            );
            return Ok(Tracking::default());
        };
        Ok(Tracking {
            inner: Some(Arc::new(Inner {
                issuer,
                keys: TtlCache::new(key_ttl, CACHE_CAP),
                users: TtlCache::new(user_ttl, CACHE_CAP),
                pending: TtlCache::new(PENDING_TTL, CACHE_CAP),
                created: TtlCache::new(NEW_ACCOUNT_TTL, CACHE_CAP),
            })),
        })
    }

    /// Whether the routes serve (a signing key is configured).
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }
}

/// `POST /v1/track`, `/v1/identify`, `/v1/group`, `/v1/page`, `/v1/screen`, `/v1/batch`.
pub fn router(gw: Arc<Gateway>) -> axum::Router {
    let mut router = axum::Router::new();
    for &(path, kind) in ROUTES {
        let gw = gw.clone();
        router = router.route(
            path,
            any(move |req: Request| {
                let gw = gw.clone();
                async move {
                    let res = match serve(gw, kind, req).await {
                        Ok(res) => res,
                        Err(p) => p.into_response(),
                    };
                    labelled(path, res)
                }
            }),
        );
    }
    router
}

async fn serve(gw: Arc<Gateway>, kind: Option<Kind>, req: Request) -> Result<Response, Problem> {
    if req.method() != Method::POST {
        let p = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("{} takes POST, not {}", req.uri().path(), req.method()),
        );
        let mut res = p.into_response();
        res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Ok(res);
    }
    let Some(t) = gw.tracking.inner.clone() else {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TRACKING_DISABLED",
            "the tracking API is off: the gateway has no key to sign its calls to the services with \
             (BANSO_JWT_HS256_SECRET)",
        );
        p.retry_after = Some(60);
        return Err(p);
    };
    let received_at = Utc::now();
    let (parts, body) = req.into_parts();
    let limit = if kind.is_some() { MAX_EVENT_BYTES } else { MAX_BATCH_BYTES };
    let raw = read_body(body, &parts.headers, limit).await?;
    // A malformed Basic header is refused before the body is parsed.
    let header_key = basic_user(&parts.headers)?;
    let Value::Object(mut body) = serde_json::from_slice::<Value>(&raw)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "MALFORMED_JSON", format!("the body is not JSON: {e}")))?
    else {
        return Err(Problem::new(StatusCode::BAD_REQUEST, "MALFORMED_JSON", "the body must be a JSON object"));
    };
    let key = match header_key {
        Some(k) => k,
        None => match body.get("writeKey") {
            Some(Value::String(k)) if !k.is_empty() => k.clone(),
            _ => return Err(unauthorized("WRITE_KEY_MISSING", "send the write key as the HTTP Basic user name")),
        },
    };
    let verified = t.verify(&gw, &key, &parts.headers).await?;

    let mut meta = BatchMeta { received_at, ..Default::default() };
    let items: Vec<Item> = match kind {
        Some(k) => vec![Item::new(Some(k), Value::Object(body), raw.len())],
        None => {
            meta.sent_at = match body.get("sentAt") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(message::timestamp(s).ok_or_else(|| {
                    Problem::invalid("sentAt", format!("{} is not an ISO 8601 time", banso_kit::error::shown(s)))
                })?),
                Some(_) => return Err(Problem::invalid("sentAt", "must be an ISO 8601 string")),
            };
            meta.group_id = body
                .get("context")
                .and_then(|c| c.get("groupId"))
                .and_then(|g| g.as_str())
                .filter(|g| !g.trim().is_empty())
                .map(str::to_owned);
            let Some(Value::Array(batch)) = body.remove("batch") else {
                return Err(Problem::invalid("batch", "is required: a list of messages"));
            };
            batch
                .into_iter()
                .map(|v| {
                    let size = json_size(&v);
                    Item::new(None, v, size)
                })
                .collect()
        }
    };

    let calls = Calls::new(&gw, &t, &verified, &parts.headers)?;
    let mut run =
        Run { t: &t, calls, tenant: verified.tenant.clone(), report: Report::default(), users: HashMap::new() };
    run.all(items, &meta).await?;
    let report = run.report.finish(&verified.tenant);
    let body = serde_json::to_vec(&report).unwrap_or_else(|_| br#"{"success":true}"#.to_vec());
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// One message of a request: its kind and JSON object (or why it has
/// none), its messageId as sent, its size.
struct Item {
    message: Result<(Kind, Map<String, Value>), Refusal>,
    message_id: String,
    size: usize,
}

impl Item {
    /// `hint`: the endpoint's kind (a batch's messages say their own).
    fn new(hint: Option<Kind>, v: Value, size: usize) -> Self {
        let message_id = v.get("messageId").and_then(Value::as_str).unwrap_or_default().to_owned();
        let message = match v {
            Value::Object(o) => message::kind_of(&o, hint).map(|k| (k, o)),
            _ => Err(Refusal::new("INVALID", "a message must be a JSON object")),
        };
        Item { message, message_id, size }
    }
}

/// The bytes of a value as compact JSON, without writing them anywhere.
fn json_size(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// The body, at most `limit` bytes (413 past it), gunzipped when sent with
/// `Content-Encoding: gzip` (as Segment's Python library can).
async fn read_body(body: axum::body::Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, Problem> {
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
            format!(
                "the body is larger than {limit} bytes (Segment's limits: 32 KB a message, 500 KB a batch); \
                 send smaller batches"
            ),
        )
    };
    let raw = match crate::edge::read_body(body, limit).await {
        Ok(b) => b,
        Err(p) if p.status == StatusCode::PAYLOAD_TOO_LARGE.as_u16() => return Err(too_large()),
        Err(p) => return Err(p),
    };
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity");
    match encoding.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(raw),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            let read = flate2::read::GzDecoder::new(&raw[..]).take(limit as u64 + 1).read_to_end(&mut out);
            match read {
                Ok(n) if n > limit => Err(too_large()),
                Ok(_) => Ok(Bytes::from(out)),
                Err(e) => Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "BODY_UNREADABLE",
                    format!("the body is not valid gzip: {e}"),
                )),
            }
        }
        other => Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_CONTENT_ENCODING",
            format!("Content-Encoding {} is not supported: send identity or gzip", banso_kit::error::shown(other)),
        )),
    }
}

fn unauthorized(code: &str, detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, code, detail)
}

/// The write key of an `Authorization: Basic` header (its user name; the
/// password is empty), `None` without such a header. Another scheme is
/// not a write key: the body's `writeKey` may still be.
fn basic_user(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().unwrap_or_default().trim();
    let Some((scheme, creds)) = value.split_once(' ') else { return Ok(None) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let malformed = || unauthorized("WRITE_KEY_INVALID", "the Authorization header is not valid HTTP Basic");
    let decoded = base64::engine::general_purpose::STANDARD.decode(creds.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
    Ok((!user.is_empty()).then(|| user.to_owned()))
}

/// The tenant a write key names (`bk.<tenant>.<43 characters>`); Accounts
/// checks the rest.
fn key_tenant(key: &str) -> Option<&str> {
    let mut parts = key.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("bk"), Some(tenant), Some(secret), None)
            if banso_kit::auth::valid_tenant_id(tenant)
                && secret.len() == 43
                && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Some(tenant)
        }
        _ => None,
    }
}

impl Inner {
    /// The key's tenant and id, from the cache or from Accounts.
    async fn verify(&self, gw: &Gateway, key: &str, headers: &HeaderMap) -> Result<VerifiedKey, Problem> {
        let invalid = || unauthorized("WRITE_KEY_INVALID", "the write key is not valid: unknown, revoked or malformed");
        let tenant = key_tenant(key).ok_or_else(invalid)?;
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        if let Some(v) = self.keys.get(&digest) {
            return Ok(v);
        }
        let token = self.issuer.mint(tenant, "gateway:tracking", &[Role::Service], TOKEN_TTL);
        let md = metadata(headers, &token)?;
        let channel = upstream(gw, ACCOUNTS)?;
        let mut req = tonic::Request::new(apb::VerifyWriteKeyRequest { key: key.to_owned() });
        *req.metadata_mut() = md;
        req.set_timeout(gw.settings.timeout);
        match apb::accounts_service_client::AccountsServiceClient::new(channel).verify_write_key(req).await {
            Ok(r) => {
                let v = VerifiedKey { tenant: tenant.to_owned(), key_id: r.into_inner().write_key_id };
                self.keys.insert(digest, v.clone());
                Ok(v)
            }
            Err(s) if matches!(s.code(), Code::NotFound | Code::InvalidArgument) => Err(invalid()),
            Err(s) => Err(unavailable("Accounts", &s)),
        }
    }
}

fn upstream(gw: &Gateway, service: &str) -> Result<Channel, Problem> {
    gw.upstreams.channel(service).ok_or_else(|| {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TRACKING_UNAVAILABLE",
            format!("{service} is not reached by this gateway"),
        );
        p.retry_after = Some(30);
        p
    })
}

/// The gRPC metadata of the gateway's calls: its token, and the request's
/// id and trace context.
fn metadata(headers: &HeaderMap, token: &str) -> Result<MetadataMap, Problem> {
    let mut md = crate::edge::metadata_of(headers);
    let bearer = format!("Bearer {token}").parse().map_err(|_| {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "a minted token is not valid metadata")
    })?;
    md.insert("authorization", bearer);
    Ok(md)
}

/// The 5xx (or 429) for a service that cannot answer now: the SDK retries
/// the whole batch, which is safe (everything it does is idempotent).
fn unavailable(service: &str, s: &Status) -> Problem {
    match s.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => {
            tracing::warn!(service, code = ?s.code(), message = s.message(), "tracking: a service cannot answer now");
            Problem::from_status(s)
        }
        code => {
            tracing::error!(service, ?code, message = s.message(), "tracking: a service refused the gateway's call");
            let mut p = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "TRACKING_UNAVAILABLE",
                format!("{service} cannot take tracking calls now ({}); retry later", crate::problem::code_name(code)),
            );
            p.retry_after = Some(5);
            p
        }
    }
}

/// What a service said to one message's call: refused (the message alone
/// fails), or cannot answer now (the request fails with 5xx).
enum Failed {
    Refused(Refusal),
    Retry(Problem),
}

impl From<Problem> for Failed {
    fn from(p: Problem) -> Self {
        Failed::Retry(p)
    }
}

fn failed(service: &str, s: Status) -> Failed {
    match s.code() {
        Code::InvalidArgument
        | Code::NotFound
        | Code::FailedPrecondition
        | Code::AlreadyExists
        | Code::OutOfRange
        | Code::Internal
        | Code::Unknown
        | Code::DataLoss => {
            if matches!(s.code(), Code::Internal | Code::Unknown | Code::DataLoss) {
                tracing::error!(service, message = s.message(), "tracking: a service failed one message");
            }
            let details = s.get_error_details();
            let reason = details
                .error_info()
                .map(|i| i.reason.clone())
                .unwrap_or_else(|| crate::problem::code_name(s.code()).to_ascii_uppercase());
            let detail = match details.bad_request() {
                Some(b) if !b.field_violations.is_empty() => b
                    .field_violations
                    .iter()
                    .map(|v| format!("{}: {}", v.field, v.description))
                    .collect::<Vec<_>>()
                    .join("; "),
                _ => s.message().to_owned(),
            };
            Failed::Refused(Refusal { reason, detail })
        }
        _ => Failed::Retry(unavailable(service, &s)),
    }
}

/// The services, called as the key's tenant.
struct Calls {
    accounts: apb::accounts_service_client::AccountsServiceClient<Channel>,
    health: hpb::health_service_client::HealthServiceClient<Channel>,
    md: MetadataMap,
    timeout: Duration,
}

impl Calls {
    fn new(gw: &Gateway, t: &Inner, key: &VerifiedKey, headers: &HeaderMap) -> Result<Self, Problem> {
        // The subject names the key in the services' logs and records.
        let token = t.issuer.mint(&key.tenant, &format!("write-key:{}", key.key_id), &[Role::Service], TOKEN_TTL);
        let max = gw.settings.max_message_bytes;
        Ok(Calls {
            accounts: apb::accounts_service_client::AccountsServiceClient::new(upstream(gw, ACCOUNTS)?)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
            health: hpb::health_service_client::HealthServiceClient::new(upstream(gw, HEALTH)?)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
            md: metadata(headers, &token)?,
            timeout: gw.settings.timeout,
        })
    }

    fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        *r.metadata_mut() = self.md.clone();
        r.set_timeout(self.timeout);
        r
    }

    /// The contact whose external_id is `user`, if any.
    async fn contact(&self, user: &str) -> Result<Option<apb::Contact>, Failed> {
        let req = apb::ListContactsRequest { external_id: user.to_owned(), page_size: 1, ..Default::default() };
        match self.accounts.clone().list_contacts(self.req(req)).await {
            Ok(r) => Ok(r.into_inner().contacts.into_iter().next()),
            Err(s) => Err(failed("Accounts", s)),
        }
    }

    /// One contact row through ImportContacts (an upsert by external_id).
    async fn import_contact(&self, row: apb::ContactImportRow) -> Result<(), Failed> {
        let msg = apb::ImportContactsRequest { rows: vec![row] };
        let req = self.req(futures::stream::iter([msg]));
        match self.accounts.clone().import_contacts(req).await {
            Ok(r) => match r.into_inner().errors.into_iter().next() {
                None => Ok(()),
                Some(e) => Err(Failed::Refused(Refusal::new(
                    "CONTACT_REFUSED",
                    if e.field.is_empty() { e.description } else { format!("{}: {}", e.field, e.description) },
                ))),
            },
            Err(s) => Err(failed("Accounts", s)),
        }
    }

    async fn update_contact(&self, contact: &apb::Contact, traits: &ContactTraits) -> Result<(), Failed> {
        let mut c = apb::Contact { id: contact.id.clone(), ..Default::default() };
        let paths = traits.apply(&mut c);
        if paths.is_empty() {
            return Ok(());
        }
        let req = apb::UpdateContactRequest { contact: Some(c), update_mask: Some(pbjson_types::FieldMask { paths }) };
        self.accounts.clone().update_contact(self.req(req)).await.map(drop).map_err(|s| failed("Accounts", s))
    }
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Stored (or applied) now.
    Accepted,
    /// Its messageId was stored before: counted once.
    Duplicate,
    /// A service (or the gateway) refused it; the reason says why.
    Rejected,
    /// Nothing in Banso takes it (alias, an identify without userId).
    Skipped,
    /// An identify of a user no account is known for yet: its traits wait
    /// for the user's group call.
    Deferred,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected => "rejected",
            Outcome::Skipped => "skipped",
            Outcome::Deferred => "deferred",
        }
    }
}

/// The reply of an accepted request: Segment's `{"success": true}`, and
/// what became of the messages (Segment's libraries read only the status).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    success: bool,
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    skipped: u64,
    deferred: u64,
    /// The messages not accepted, in order, up to [`MAX_LISTED`].
    rejections: Vec<Note>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Note {
    index: usize,
    message_id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    outcome: &'static str,
    reason: String,
    detail: String,
}

impl Report {
    fn count(&mut self, kind: Kind, outcome: Outcome, n: u64) {
        if n == 0 {
            return;
        }
        match outcome {
            Outcome::Accepted => self.accepted += n,
            Outcome::Duplicate => self.duplicates += n,
            Outcome::Rejected => self.rejected += n,
            Outcome::Skipped => self.skipped += n,
            Outcome::Deferred => self.deferred += n,
        }
        metrics::counter!(EVENTS_TOTAL, "type" => kind.as_str(), "outcome" => outcome.as_str()).increment(n);
    }

    /// One message not accepted: counted, logged, listed.
    fn note(&mut self, index: usize, kind: Option<Kind>, message_id: &str, outcome: Outcome, why: Refusal) {
        let label = kind.map_or("unknown", Kind::as_str);
        match kind {
            Some(k) => self.count(k, outcome, 1),
            None => {
                self.rejected += 1;
                metrics::counter!(EVENTS_TOTAL, "type" => "unknown", "outcome" => outcome.as_str()).increment(1);
            }
        }
        tracing::debug!(index, r#type = label, message_id, outcome = outcome.as_str(), reason = %why.reason,
            detail = %why.detail, "tracking message not accepted");
        if self.rejections.len() < MAX_LISTED {
            self.rejections.push(Note {
                index,
                message_id: message_id.to_owned(),
                kind: label,
                outcome: outcome.as_str(),
                reason: why.reason,
                detail: why.detail,
            });
        }
    }

    fn finish(mut self, tenant: &str) -> Self {
        self.success = true;
        self.rejections.sort_by_key(|n| n.index);
        if self.rejected + self.skipped + self.deferred > 0 {
            let first = self.rejections.first().map(|n| format!("{}: {}", n.reason, n.detail)).unwrap_or_default();
            tracing::info!(
                tenant,
                accepted = self.accepted,
                duplicates = self.duplicates,
                rejected = self.rejected,
                skipped = self.skipped,
                deferred = self.deferred,
                first,
                "tracking request with messages not accepted"
            );
        }
        self
    }
}

/// The account of a usage event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum AccountRef {
    Id(String),
    External(String),
}

/// One request's work: its messages through the services, as its tenant.
struct Run<'a> {
    t: &'a Inner,
    calls: Calls,
    tenant: String,
    report: Report,
    /// Users' accounts learned in this request (`None`: no contact).
    users: HashMap<String, Option<String>>,
}

impl Run<'_> {
    /// Identify and group first, in the order sent (a track later in the
    /// batch then finds the account a group made); then usage; every
    /// message has an outcome. Err: a service cannot answer now.
    async fn all(&mut self, items: Vec<Item>, meta: &BatchMeta) -> Result<(), Problem> {
        let mut usage = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            let (kind, obj) = match item.message {
                Ok(m) => m,
                Err(why) => {
                    self.report.note(index, None, &item.message_id, Outcome::Rejected, why);
                    continue;
                }
            };
            if item.size > MAX_EVENT_BYTES {
                let why = Refusal::new(
                    "TOO_LARGE",
                    format!("the message is {} bytes; Segment's limit (and Banso's) is {MAX_EVENT_BYTES}", item.size),
                );
                self.report.note(index, Some(kind), &item.message_id, Outcome::Rejected, why);
                continue;
            }
            let m = match message::read(kind, &obj, meta) {
                Ok(m) => m,
                Err(why) => {
                    self.report.note(index, Some(kind), &item.message_id, Outcome::Rejected, why);
                    continue;
                }
            };
            let done = match kind {
                Kind::Identify => self.identify(&m).await,
                Kind::Group => self.group(&m).await,
                Kind::Alias => Err(Failed::Refused(Refusal::new(
                    "UNSUPPORTED",
                    "alias is not used: Banso finds a user's contact by userId",
                ))),
                Kind::Track | Kind::Page | Kind::Screen => {
                    usage.push((index, m));
                    continue;
                }
            };
            match done {
                Ok(outcome) => self.report.count(kind, outcome, 1),
                Err(Failed::Refused(why)) => {
                    let outcome = if kind == Kind::Alias { Outcome::Skipped } else { Outcome::Rejected };
                    self.report.note(index, Some(kind), &m.event_id, outcome, why);
                }
                Err(Failed::Retry(p)) => return Err(p),
            }
        }
        self.usage(usage).await
    }

    /// identify → the contact whose external_id is the userId: its fields
    /// from the traits (only those given), created on `context.groupId`'s
    /// account when it does not exist. A user with neither is deferred.
    async fn identify(&mut self, m: &Message) -> Result<Outcome, Failed> {
        let Some(user) = &m.user_id else {
            return Err(Failed::Refused(Refusal::new(
                "NO_USER_ID",
                "identify without userId: Banso keeps contacts by userId, not anonymous traits",
            )));
        };
        let traits = ContactTraits::from_traits(&m.traits);
        if let Some(c) = self.calls.contact(user).await? {
            self.learn(user, Some(c.account_id.clone()));
            self.calls.update_contact(&c, &traits).await?;
            return Ok(Outcome::Accepted);
        }
        let Some(group) = &m.group_id else {
            let key = (self.tenant.clone(), user.clone());
            let merged = self.t.pending.remove(&key).unwrap_or_default().merged(&traits);
            self.t.pending.insert(key, merged);
            return Ok(Outcome::Deferred);
        };
        let row = apb::ContactImportRow { contact: Some(traits.new_contact(user)), account_external_id: group.clone() };
        self.calls.import_contact(row).await?;
        self.users.remove(user);
        Ok(Outcome::Accepted)
    }

    /// group → the account whose external_id is the groupId, created or
    /// updated from the traits; the userId becomes its contact.
    async fn group(&mut self, m: &Message) -> Result<Outcome, Failed> {
        let group = m.group_id.clone().unwrap_or_default();
        let traits = AccountTraits::from_traits(&group, &m.traits);
        let req = apb::UpsertAccountRequest {
            account: Some(traits.new_account()),
            update_mask: Some(pbjson_types::FieldMask { paths: traits.mask.clone() }),
        };
        let r = self.calls.accounts.clone().upsert_account(self.calls.req(req)).await;
        let r = r.map_err(|s| failed("Accounts", s))?.into_inner();
        let account = r.account.unwrap_or_default();
        if r.created {
            for a in [AccountRef::Id(account.id.clone()), AccountRef::External(group.clone())] {
                self.t.created.insert((self.tenant.clone(), a), ());
            }
        } else if !traits.custom.is_empty() {
            self.merge_custom(account.clone(), &traits).await?;
        }
        let Some(user) = &m.user_id else { return Ok(Outcome::Accepted) };
        let waiting = self.t.pending.remove(&(self.tenant.clone(), user.clone()));
        match self.calls.contact(user).await? {
            Some(c) if c.account_id == account.id => {
                if let Some(w) = &waiting {
                    self.calls.update_contact(&c, w).await?;
                }
                self.learn(user, Some(account.id));
                Ok(Outcome::Accepted)
            }
            Some(c) => {
                self.learn(user, Some(c.account_id.clone()));
                Err(Failed::Refused(Refusal::new(
                    "CONTACT_ON_OTHER_ACCOUNT",
                    format!(
                        "account {} was upserted, but user {} stays a contact of account {}: contacts do not \
                         move between accounts (send context.groupId with its events instead)",
                        banso_kit::error::shown(&group),
                        banso_kit::error::shown(user),
                        c.account_id
                    ),
                )))
            }
            None => {
                let mut contact = waiting.unwrap_or_default().new_contact(user);
                contact.account_id.clone_from(&account.id);
                self.calls
                    .import_contact(apb::ContactImportRow {
                        contact: Some(contact),
                        account_external_id: String::new(),
                    })
                    .await?;
                self.learn(user, Some(account.id));
                Ok(Outcome::Accepted)
            }
        }
    }

    /// Adds the traits' custom attributes to an existing account's (an
    /// upsert's mask would replace them all), up to the 100 Accounts keeps.
    async fn merge_custom(&self, mut account: apb::Account, traits: &AccountTraits) -> Result<(), Failed> {
        for _ in 0..3 {
            let mut merged = account.custom_attributes.clone();
            for (k, v) in &traits.custom {
                if merged.len() < message::MAX_CUSTOM_ATTRIBUTES || merged.contains_key(k) {
                    merged.insert(k.clone(), v.clone());
                }
            }
            if merged == account.custom_attributes {
                return Ok(());
            }
            let change = apb::Account {
                id: account.id.clone(),
                custom_attributes: merged,
                etag: account.etag.clone(),
                ..Default::default()
            };
            let req = apb::UpdateAccountRequest {
                account: Some(change),
                update_mask: Some(pbjson_types::FieldMask { paths: vec!["custom_attributes".to_owned()] }),
            };
            match self.calls.accounts.clone().update_account(self.calls.req(req)).await {
                Ok(_) => return Ok(()),
                // Changed meanwhile: read it again and merge into that.
                Err(s) if s.code() == Code::Aborted => {
                    let get = apb::GetAccountRequest { id: account.id.clone() };
                    let r = self.calls.accounts.clone().get_account(self.calls.req(get)).await;
                    account = r.map_err(|s| failed("Accounts", s))?.into_inner();
                }
                Err(s) => return Err(failed("Accounts", s)),
            }
        }
        Err(Failed::Refused(Refusal::new(
            "CONCURRENT_UPDATE",
            "the account's custom attributes kept changing while they were merged; send the group again",
        )))
    }

    /// Remembers a user's account for this request and the next ones.
    fn learn(&mut self, user: &str, account: Option<String>) {
        if let Some(a) = &account {
            self.t.users.insert((self.tenant.clone(), user.to_owned()), a.clone());
        }
        self.users.insert(user.to_owned(), account);
    }

    /// The accounts of the users of `usage` that have no `context.groupId`,
    /// looked up a few at a time.
    async fn resolve_users(&mut self, usage: &[(usize, Message)]) -> Result<(), Problem> {
        let mut wanted = Vec::new();
        for (_, m) in usage {
            let Some(user) = m.user_id.as_ref().filter(|_| m.group_id.is_none()) else { continue };
            if self.users.contains_key(user) || wanted.contains(user) {
                continue;
            }
            match self.t.users.get(&(self.tenant.clone(), user.clone())) {
                Some(a) => {
                    self.users.insert(user.clone(), Some(a));
                }
                None => wanted.push(user.clone()),
            }
        }
        let calls = &self.calls;
        let found: Vec<(String, Result<Option<apb::Contact>, Failed>)> = futures::stream::iter(wanted)
            .map(|u| async move {
                let r = calls.contact(&u).await;
                (u, r)
            })
            .buffer_unordered(LOOKUPS_IN_FLIGHT)
            .collect()
            .await;
        for (user, r) in found {
            match r {
                Ok(c) => self.learn(&user, c.map(|c| c.account_id)),
                // A user id Accounts cannot hold as an external id has no contact.
                Err(Failed::Refused(_)) => self.learn(&user, None),
                Err(Failed::Retry(p)) => return Err(p),
            }
        }
        Ok(())
    }

    /// track, page, screen → Health usage events, one BatchIngestUsage per
    /// kind (so each kind's outcomes are counted as its own).
    async fn usage(&mut self, usage: Vec<(usize, Message)>) -> Result<(), Problem> {
        if usage.is_empty() {
            return Ok(());
        }
        self.resolve_users(&usage).await?;
        let mut by_kind: BTreeMap<Kind, Vec<Pending>> = BTreeMap::new();
        for (index, m) in usage {
            let account = match (&m.group_id, &m.user_id) {
                (Some(g), _) => AccountRef::External(g.clone()),
                (None, Some(u)) => match self.users.get(u).cloned().flatten() {
                    Some(a) => AccountRef::Id(a),
                    None => {
                        let why = Refusal::new(
                            "NO_ACCOUNT",
                            format!(
                                "no context.groupId, and user {} is no account's contact yet: send a group call \
                                 for the user first, or context.groupId",
                                banso_kit::error::shown(u)
                            ),
                        );
                        self.report.note(index, Some(m.kind), &m.event_id, Outcome::Rejected, why);
                        continue;
                    }
                },
                (None, None) => {
                    let why = Refusal::new(
                        "NO_ACCOUNT",
                        "an anonymous event without context.groupId: Banso cannot tell its account",
                    );
                    self.report.note(index, Some(m.kind), &m.event_id, Outcome::Rejected, why);
                    continue;
                }
            };
            let event = usage_event(&m, &account);
            by_kind.entry(m.kind).or_default().push(Pending { index, account, event, id: m.event_id });
        }
        for (kind, events) in by_kind {
            for chunk in chunks(events, INGEST_CHUNK) {
                self.ingest(kind, chunk).await?;
            }
        }
        Ok(())
    }

    /// One BatchIngestUsage; events refused as UNKNOWN_ACCOUNT whose account
    /// a group call created lately are sent again after a short wait, while
    /// Health learns of the account (from Accounts' events).
    async fn ingest(&mut self, kind: Kind, mut events: Vec<Pending>) -> Result<(), Problem> {
        let mut waits = FRESH_ACCOUNT_RETRIES_MS.iter();
        loop {
            let req = hpb::BatchIngestUsageRequest { events: events.iter().map(|p| p.event.clone()).collect() };
            let r = self.calls.health.clone().batch_ingest_usage(self.calls.req(req)).await;
            let r = match r {
                Ok(r) => r.into_inner(),
                // The whole batch failed: Segment's library sends it again.
                Err(s) => return Err(unavailable("Health", &s)),
            };
            self.report.count(kind, Outcome::Accepted, u64::try_from(r.accepted).unwrap_or(0));
            self.report.count(kind, Outcome::Duplicate, u64::try_from(r.duplicates).unwrap_or(0));
            let mut again = Vec::new();
            let mut refused: HashMap<usize, Refusal> = HashMap::new();
            for rej in r.rejections {
                let Some(i) = usize::try_from(rej.index).ok().filter(|i| *i < events.len()) else { continue };
                let detail =
                    if rej.field.is_empty() { rej.description } else { format!("{}: {}", rej.field, rej.description) };
                // A second violation of the same event adds to its detail.
                refused
                    .entry(i)
                    .and_modify(|r| {
                        r.detail.push_str("; ");
                        r.detail.push_str(&detail);
                    })
                    .or_insert(Refusal { reason: rej.reason, detail });
            }
            // Refused events past the reply's list are counted all the same.
            let unlisted = u64::try_from(r.rejected).unwrap_or(0).saturating_sub(refused.len() as u64);
            self.report.count(kind, Outcome::Rejected, unlisted);
            let retry = waits.len() > 0;
            let mut refused: Vec<(usize, Refusal)> = refused.into_iter().collect();
            refused.sort_by_key(|(i, _)| *i);
            let mut taken = vec![false; events.len()];
            for (i, why) in refused {
                let new = || self.t.created.get(&(self.tenant.clone(), events[i].account.clone())).is_some();
                if retry && why.reason == "UNKNOWN_ACCOUNT" && new() {
                    taken[i] = true;
                    continue;
                }
                let p = &events[i];
                self.report.note(p.index, Some(kind), &p.id, Outcome::Rejected, why);
            }
            for (p, t) in events.into_iter().zip(taken) {
                if t {
                    again.push(p);
                }
            }
            if again.is_empty() {
                return Ok(());
            }
            if let Some(ms) = waits.next() {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
            }
            events = again;
        }
    }
}

/// A usage event waiting for Health, with where it came from.
struct Pending {
    index: usize,
    account: AccountRef,
    event: hpb::UsageEvent,
    id: String,
}

fn chunks<T>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(size).collect());
    }
    out
}

/// A track, page or screen as Health's usage event: the user is the userId
/// (else the anonymousId); `properties.quantity` and `properties.duration`
/// (seconds) fill quantity and duration when they are numbers.
fn usage_event(m: &Message, account: &AccountRef) -> hpb::UsageEvent {
    let (account_id, account_external_id) = match account {
        AccountRef::Id(id) => (id.clone(), String::new()),
        AccountRef::External(e) => (String::new(), e.clone()),
    };
    hpb::UsageEvent {
        event_id: m.event_id.clone(),
        account_id,
        account_external_id,
        user_id: m.user_id.clone().or_else(|| m.anonymous_id.clone()).unwrap_or_default(),
        event_name: m.event_name.clone(),
        timestamp: Some(banso_kit::wire::timestamp(m.time)),
        quantity: message::number(&m.properties, "quantity"),
        duration_seconds: message::number(&m.properties, "duration"),
        properties: message::properties(&m.properties).into_iter().collect(),
    }
}

/// The tracking routes in the OpenAPI document: `(paths, schemas)`.
pub fn openapi() -> (serde_json::Map<String, serde_json::Value>, serde_json::Map<String, serde_json::Value>) {
    use serde_json::json;
    let id = json!({ "anyOf": [{ "type": "string" }, { "type": "number" }] });
    let time = json!({ "type": "string", "description": "ISO 8601 / RFC 3339" });
    let message = json!({
        "type": "object",
        "description": "A Segment message (docs/tracking.md has what Banso reads of it); other fields are accepted and ignored.",
        "properties": {
            "type": { "type": "string", "enum": ["track", "identify", "group", "page", "screen", "alias"],
                      "description": "in a batch: which call the message is" },
            "messageId": id, "userId": id, "anonymousId": id, "groupId": id,
            "event": { "type": "string" }, "name": { "type": "string" },
            "timestamp": time, "originalTimestamp": time, "sentAt": time,
            "context": { "type": "object", "properties": { "groupId": id } },
            "properties": { "type": "object" }, "traits": { "type": "object" },
            "writeKey": { "type": "string", "description": "read when the Authorization header has none" }
        }
    });
    let batch = json!({
        "type": "object",
        "properties": {
            "batch": { "type": "array", "items": { "$ref": "#/components/schemas/TrackingMessage" } },
            "sentAt": time, "context": { "type": "object" }, "writeKey": { "type": "string" }
        },
        "required": ["batch"]
    });
    let report = json!({
        "type": "object",
        "description": "Segment's reply ({\"success\": true}) with what became of each message",
        "properties": {
            "success": { "type": "boolean" },
            "accepted": { "type": "integer" }, "duplicates": { "type": "integer" },
            "rejected": { "type": "integer" }, "skipped": { "type": "integer" }, "deferred": { "type": "integer" },
            "rejections": { "type": "array", "items": { "type": "object", "properties": {
                "index": { "type": "integer" }, "messageId": { "type": "string" }, "type": { "type": "string" },
                "outcome": { "type": "string" }, "reason": { "type": "string" }, "detail": { "type": "string" }
            } } }
        },
        "required": ["success"]
    });
    let mut schemas = serde_json::Map::new();
    schemas.insert("TrackingMessage".into(), message);
    schemas.insert("TrackingBatch".into(), batch);
    schemas.insert("TrackingReport".into(), report);
    let problem = json!({ "$ref": "#/components/responses/Problem" });
    let mut paths = serde_json::Map::new();
    for &(path, kind) in ROUTES {
        let (name, body) = match kind {
            Some(k) => (format!("{k:?}"), "#/components/schemas/TrackingMessage"),
            None => ("Batch".to_owned(), "#/components/schemas/TrackingBatch"),
        };
        paths.insert(
            path.to_owned(),
            json!({ "post": {
                "operationId": format!("Tracking_{name}"),
                "tags": ["Tracking"],
                "summary": format!("Segment-compatible {}", name.to_ascii_lowercase()),
                "description": "The tracking API (docs/tracking.md): Segment's JSON, the write key as the HTTP Basic user name. \
                    An accepted request answers 200 whatever becomes of each message.",
                "security": [{ "writeKey": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": body } } } },
                "responses": {
                    "200": { "description": "accepted", "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/TrackingReport" } } } },
                    "400": problem, "401": problem, "405": problem, "413": problem, "415": problem,
                    "429": problem, "503": problem, "504": problem, "default": problem
                }
            } }),
        );
    }
    (paths, schemas)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_headers_give_the_user_name() {
        let mut h = HeaderMap::new();
        assert_eq!(basic_user(&h).unwrap(), None);
        let enc = base64::engine::general_purpose::STANDARD.encode("bk.acme.secret:");
        h.insert(header::AUTHORIZATION, format!("Basic {enc}").parse().unwrap());
        assert_eq!(basic_user(&h).unwrap().as_deref(), Some("bk.acme.secret"));
        let enc = base64::engine::general_purpose::STANDARD.encode("nocolon");
        h.insert(header::AUTHORIZATION, format!("basic {enc}").parse().unwrap());
        assert_eq!(basic_user(&h).unwrap().as_deref(), Some("nocolon"));
        h.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(basic_user(&h).unwrap_err().status, 401);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(basic_user(&h).unwrap(), None);
    }

    #[test]
    fn key_tenants() {
        let secret = "A".repeat(43);
        assert_eq!(key_tenant(&format!("bk.acme_1-x.{secret}")), Some("acme_1-x"));
        for bad in [
            String::new(),
            format!("bk.acme.{}", &secret[1..]),
            format!("xx.acme.{secret}"),
            format!("bk.a.b.{secret}"),
            format!("bk..{secret}"),
            format!("bk.acme.{}+", &secret[1..]),
        ] {
            assert_eq!(key_tenant(&bad), None, "{bad}");
        }
    }

    #[test]
    fn chunks_keep_order() {
        assert_eq!(chunks((0..5).collect(), 2), vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert!(chunks(Vec::<u8>::new(), 2).is_empty());
    }

    #[test]
    fn json_size_is_the_compact_length() {
        let v = serde_json::json!({"a": [1, "two"], "b": null});
        assert_eq!(json_size(&v), serde_json::to_vec(&v).unwrap().len());
    }
}
