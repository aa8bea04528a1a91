//! What every request crosses before its handler: CORS, request ids, the
//! per-tenant rate limit, the access log and metrics; and the dispatch to
//! the REST transcoder, gRPC-Web or the tracking API.

use std::{net::SocketAddr, num::NonZeroU32, sync::Arc, time::Instant};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{ConnectInfo, Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock as _};
use http::{HeaderName, StatusCode, header};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::Instrument as _;

use crate::{Gateway, problem::Problem};

pub const REQUESTS_TOTAL: &str = "banso_gateway_requests_total";
pub const REQUEST_DURATION: &str = "banso_gateway_request_duration_seconds";
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The route template a handler served, for the access log and metrics
/// (a bounded label: never the raw path).
#[derive(Clone, Debug)]
pub struct RouteLabel(pub String);

/// The whole HTTP application of the gateway.
pub fn app(gw: Arc<Gateway>) -> Router {
    let limiter = Limiter::new(&gw);
    let openapi = gw.openapi.clone();
    let fallback_gw = gw.clone();
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let doc = openapi.clone();
                async move { labelled("/openapi.json", ([(header::CONTENT_TYPE, "application/json")], doc).into_response()) }
            }),
        )
        .route("/healthz", get(|| async { labelled("/healthz", "ok".into_response()) }))
        .merge(crate::tracking::router(gw.clone()))
        .merge(crate::grpc_web::router(gw.clone()))
        .fallback(move |req: Request| {
            let gw = fallback_gw.clone();
            async move { crate::rest::handle(gw, req).await }
        })
        .layer(middleware::from_fn_with_state(Arc::new(limiter), rate_limit))
        .layer(middleware::from_fn(observe))
        .layer(crate::grpc_web::cors(&gw.settings))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
        .layer(SetRequestIdLayer::new(X_REQUEST_ID, MakeRequestUuid))
}

/// Marks a response with the route it served.
pub fn labelled(template: &str, mut res: Response) -> Response {
    res.extensions_mut().insert(RouteLabel(template.to_owned()));
    res
}

/// Access log line and metrics for every request, by route template.
async fn observe(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let id = req.headers().get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let span = banso_kit::telemetry::http_span(&method, &id, req.headers());
    let res = next.run(req).instrument(span.clone()).await;
    let route = res.extensions().get::<RouteLabel>().map(|l| l.0.clone()).unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16().to_string();
    let elapsed = start.elapsed().as_secs_f64();
    span.record("http.route", route.as_str());
    span.record("http.response.status_code", status.as_str());
    let labels = [("method", method.to_string()), ("route", route.clone()), ("status", status.clone())];
    metrics::counter!(REQUESTS_TOTAL, &labels).increment(1);
    metrics::histogram!(REQUEST_DURATION, &labels).record(elapsed);
    tracing::info!(target: "banso_gateway::access", %method, route, status, latency_ms = elapsed * 1000.0, request_id = %id, "request");
    res
}

/// Per-tenant token buckets. The key is the tenant of a valid bearer token,
/// else the write key of a tracking call, else the client address: a caller
/// cannot spend another tenant's budget with a forged token. Calls without
/// a token — the survey answer path, whose credential is the invitation's
/// token in the path (unverifiable here) — are metered by address, not
/// refused.
pub struct Limiter {
    buckets: Option<DefaultKeyedRateLimiter<String>>,
    gw: Arc<Gateway>,
}

impl Limiter {
    fn new(gw: &Arc<Gateway>) -> Self {
        let s = &gw.settings;
        let buckets = NonZeroU32::new(s.rate_per_sec).map(|rate| {
            let burst = NonZeroU32::new(s.rate_burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Limiter { buckets, gw: gw.clone() }
    }

    fn key(&self, req: &Request) -> String {
        let headers = req.headers();
        if let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
            if let Some(a) = &self.gw.auth
                && (auth.starts_with("Bearer ") || auth.starts_with("bearer "))
                && let Ok(caller) = a.authenticate(Some(auth))
            {
                return format!("tenant:{}", caller.tenant_id);
            }
            if let Some(basic) = auth.strip_prefix("Basic ") {
                // The write key's digest: one bucket per key, not per tenant
                // (resolving the tenant needs a call; a key is one tenant's).
                use sha2::Digest;
                let digest = sha2::Sha256::digest(basic.trim().as_bytes());
                return format!("key:{}", hex(&digest[..8]));
            }
        }
        match req.extensions().get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(addr)) => format!("ip:{}", addr.ip()),
            None => "anonymous".to_owned(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn rate_limit(State(limiter): State<Arc<Limiter>>, req: Request, next: Next) -> Response {
    let Some(buckets) = &limiter.buckets else { return next.run(req).await };
    // Probes and the API description are not metered.
    if matches!(req.uri().path(), "/healthz" | "/openapi.json") || req.method() == http::Method::OPTIONS {
        return next.run(req).await;
    }
    let key = limiter.key(&req);
    match buckets.check_key(&key) {
        Ok(()) => next.run(req).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            let mut p = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                format!(
                    "more than {} requests a second; retry after the Retry-After header's seconds",
                    limiter.gw.settings.rate_per_sec
                ),
            );
            p.retry_after = Some(wait.as_secs().max(1));
            labelled("rate-limited", p.into_response())
        }
    }
}

/// Reads a request body up to `limit` bytes: 413 past it.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, Problem> {
    match axum::body::to_bytes(body, limit).await {
        Ok(b) => Ok(b),
        Err(e) => {
            let too_big = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            if too_big {
                Err(Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "BODY_TOO_LARGE",
                    format!("the body is larger than {limit} bytes (BANSO_GATEWAY_MAX_BODY_BYTES)"),
                ))
            } else {
                Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "BODY_UNREADABLE",
                    format!("the body could not be read: {e}"),
                ))
            }
        }
    }
}

/// Request headers passed through to the services as gRPC metadata.
pub const PASSED_THROUGH: &[&str] = &["authorization", "x-request-id", "traceparent", "tracestate"];

/// The gRPC metadata for an HTTP request's headers: the caller's token and
/// request id, and the trace — the gateway's own span as the parent when
/// traces are exported, else the caller's `traceparent` as it came.
pub fn metadata_of(headers: &http::HeaderMap) -> tonic::metadata::MetadataMap {
    let mut md = tonic::metadata::MetadataMap::new();
    for name in PASSED_THROUGH {
        if let Some(v) = headers.get(*name)
            && let Ok(v) = tonic::metadata::MetadataValue::try_from(v.as_bytes())
        {
            md.insert(*name, v);
        }
    }
    banso_kit::telemetry::inject_trace_context(&mut md);
    md
}
