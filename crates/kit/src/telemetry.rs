//! Logs, traces and metrics.
//!
//! - Logs: `tracing`, human format on a terminal and JSON otherwise (or as
//!   configured). Test binaries stay quiet unless `BANSO_TEST_LOG` is set.
//! - Traces: OpenTelemetry spans, exported over OTLP/gRPC when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set. W3C trace context is extracted from
//!   incoming gRPC metadata ([`RpcObserveLayer`]) and injected into outgoing
//!   calls ([`inject_trace_context`]).
//! - Metrics: the `metrics` facade rendered by a Prometheus recorder, served
//!   at `/metrics` on the admin port ([`admin_router`]). Every RPC counts into
//!   `banso_grpc_server_requests_total{method,code}` and
//!   `banso_grpc_server_duration_seconds{method,code}`.

use std::{
    io::IsTerminal,
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::{
    global,
    propagation::{Extractor, Injector},
    trace::TracerProvider as _,
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer as _, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{Config, LogFormat};

pub const REQUESTS_TOTAL: &str = "banso_grpc_server_requests_total";
pub const REQUEST_DURATION: &str = "banso_grpc_server_duration_seconds";

/// Keeps the trace exporter alive; flushes pending spans on drop.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber, trace pipeline and propagator. Call once
/// per process; later calls only return a guard (tests start many servers).
pub fn init(service_name: &str, cfg: &Config) -> anyhow::Result<TelemetryGuard> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_new(&cfg.log_filter)?;
    let terminal = std::io::stderr().is_terminal();
    let json = match cfg.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !terminal,
    };
    // Logs go to stderr: stdout is for what a command prints for its user
    // (`banso up`'s address and token, `banso token`'s token).
    let fmt_layer = if json {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed()
    } else {
        // Colour codes only where a terminal reads them, never into a file.
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(terminal).boxed()
    };

    // A provider always exists, so every span has a trace id that is passed
    // on to downstream calls; spans leave the process only with an endpoint.
    // The standard variable wins, as every OpenTelemetry SDK does it.
    let service_name = cfg.traces.service_name.clone().unwrap_or_else(|| service_name.to_owned());
    let mut builder =
        SdkTracerProvider::builder().with_resource(Resource::builder().with_service_name(service_name).build());
    if let Some(endpoint) = &cfg.traces.otlp_endpoint {
        let exporter = otlp_exporter(endpoint, cfg.traces.otlp_certificate.as_deref())?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let otel_layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("banso"));

    let installed = tracing_subscriber::registry().with(filter).with(fmt_layer).with(otel_layer).try_init().is_ok();
    if installed {
        global::set_tracer_provider(provider.clone());
        Ok(TelemetryGuard { provider: Some(provider) })
    } else {
        Ok(TelemetryGuard { provider: None })
    }
}

/// The OTLP/gRPC span exporter for `endpoint`: TLS for `https://` (the
/// public web roots, plus `ca` when the collector's certificate comes from a
/// private CA). The exporter reads `OTEL_EXPORTER_OTLP_HEADERS` itself.
pub fn otlp_exporter(endpoint: &str, ca: Option<&std::path::Path>) -> anyhow::Result<opentelemetry_otlp::SpanExporter> {
    use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
    crate::tls::install_provider();
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint);
    if endpoint.starts_with("https://") {
        let mut tls = tonic::transport::ClientTlsConfig::new().with_webpki_roots();
        if let Some(ca) = ca {
            let pem = crate::tls::ca_pem(ca).context("OTEL_EXPORTER_OTLP_CERTIFICATE")?;
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
        }
        builder = builder.with_tls_config(tls);
    }
    Ok(builder.build()?)
}

/// The process's Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = builder
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed: /metrics will stay empty");
        }
        let upkeep = handle.clone();
        // Without the exporter's own HTTP listener, upkeep must be driven.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    upkeep.run_upkeep();
                }
            });
        }
        handle
    })
}

/// Registers the per-method counters at zero for every method of the hosted
/// services, so a dashboard sees `0` before the first call or panic rather
/// than no series at all.
pub fn register_rpc_metrics(services: &[&str]) {
    use prost::Message as _;
    let _ = prometheus();
    metrics::describe_counter!(REQUESTS_TOTAL, "gRPC calls handled, by method and status code");
    metrics::describe_histogram!(REQUEST_DURATION, "gRPC call latency in seconds, by method and status code");
    metrics::describe_counter!(crate::server::PANICS_TOTAL, "handlers that panicked (answered INTERNAL), by method");
    let Ok(set) = prost_types::FileDescriptorSet::decode(banso_proto::FILE_DESCRIPTOR_SET) else { return };
    for file in &set.file {
        for svc in &file.service {
            let full = format!("{}.{}", file.package(), svc.name());
            if !services.contains(&full.as_str()) {
                continue;
            }
            for m in &svc.method {
                let method = format!("/{full}/{}", m.name());
                metrics::counter!(crate::server::PANICS_TOTAL, "method" => method.clone()).increment(0);
                metrics::counter!(REQUESTS_TOTAL, "method" => method, "code" => "OK").increment(0);
            }
        }
    }
}

/// Whether the process is ready for traffic: `Ok`, or why not (text).
pub type ReadyCheck = std::sync::Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// How stale the runtime's heartbeat may be before `/livez` says 503.
pub const LIVENESS_STALE: Duration = Duration::from_secs(10);

/// The admin HTTP routes: `/metrics` (Prometheus text), `/livez` and
/// `/readyz`. They run on their own listener, outside the gRPC stack and
/// its concurrency limit, so a busy server still answers them.
/// - `/livez`: 200 while a heartbeat task of the async runtime keeps
///   ticking (a runtime whose workers are all blocked stops it), whatever
///   the dependencies do: restarting the process would not bring them back.
/// - `/readyz`: 200 when `ready` says so, else 503 with the reasons.
pub fn admin_router(ready: ReadyCheck) -> axum::Router {
    use axum::http::StatusCode;
    let handle = prometheus();
    let beat = heartbeat();
    axum::Router::new()
        .route("/metrics", axum::routing::get(move || std::future::ready(handle.render())))
        .route(
            "/livez",
            axum::routing::get(move || {
                let age =
                    Duration::from_millis(epoch_ms().saturating_sub(beat.load(std::sync::atomic::Ordering::Relaxed)));
                std::future::ready(if age <= LIVENESS_STALE {
                    (StatusCode::OK, "ok".to_owned())
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, format!("runtime heartbeat is {} s old", age.as_secs()))
                })
            }),
        )
        .route(
            "/readyz",
            axum::routing::get(move || {
                std::future::ready(match ready() {
                    Ok(()) => (StatusCode::OK, "ok".to_owned()),
                    Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
                })
            }),
        )
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A heartbeat: a task on the current runtime stamps it every second for as
/// long as the returned value lives (one per admin server, on the runtime
/// that serves it).
fn heartbeat() -> std::sync::Arc<std::sync::atomic::AtomicU64> {
    let beat = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(epoch_ms()));
    let weak = std::sync::Arc::downgrade(&beat);
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            while let Some(beat) = weak.upgrade() {
                beat.store(epoch_ms(), std::sync::atomic::Ordering::Relaxed);
                drop(beat);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    beat
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// Writes the current span's W3C trace context into outgoing gRPC metadata.
pub fn inject_trace_context(metadata: &mut tonic::metadata::MetadataMap) {
    let cx = tracing::Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut MetadataInjector(metadata)));
}

/// A tonic client interceptor that propagates the current trace.
pub fn trace_interceptor(mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    inject_trace_context(req.metadata_mut());
    Ok(req)
}

/// The server span of one RPC: a child of the caller's trace when the
/// request carries a W3C `traceparent`.
pub fn rpc_span(method: &str, headers: &http::HeaderMap) -> tracing::Span {
    let span = tracing::info_span!(
        "rpc",
        otel.name = %method,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.method = %method,
        tenant_id = tracing::field::Empty,
        rpc.grpc.status_code = tracing::field::Empty,
    );
    let parent = global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    let _ = span.set_parent(parent);
    span
}

/// The server span of one HTTP request (the gateway): a child of the
/// caller's trace when it sends a W3C `traceparent`, so the gateway's span
/// and the services' spans below it form one trace.
pub fn http_span(method: &http::Method, request_id: &str, headers: &http::HeaderMap) -> tracing::Span {
    let span = tracing::info_span!(
        "http",
        otel.name = %method,
        otel.kind = "server",
        http.request.method = %method,
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        request_id = %request_id,
    );
    let parent = global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    let _ = span.set_parent(parent);
    span
}

/// Tower layer: a span per RPC (child of the caller's trace), and the RPC's
/// count and latency by method and gRPC status code.
#[derive(Clone, Default)]
pub struct RpcObserveLayer;

impl<S> tower::Layer<S> for RpcObserveLayer {
    type Service = RpcObserve<S>;
    fn layer(&self, inner: S) -> Self::Service {
        // Make sure the recorder exists before the first RPC records into it.
        let _ = prometheus();
        RpcObserve { inner }
    }
}

#[derive(Clone)]
pub struct RpcObserve<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for RpcObserve<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().to_owned();
        let span = rpc_span(&method, req.headers());
        let start = Instant::now();
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let fut = {
            let _entered = span.enter();
            inner.call(req)
        };
        Box::pin(
            async move {
                let resp = fut.await?;
                // Errors are usually "trailers-only": the code is in the headers.
                let code = resp.headers().get("grpc-status").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let (parts, body) = resp.into_parts();
                let observed = ObservedBody {
                    inner: body,
                    rpc: Some(RpcRecord { method, start, code, span: tracing::Span::current() }),
                };
                Ok(http::Response::from_parts(parts, tonic::body::Body::new(observed)))
            }
            .instrument(span),
        )
    }
}

struct RpcRecord {
    method: String,
    start: Instant,
    code: Option<String>,
    span: tracing::Span,
}

impl RpcRecord {
    fn finish(self) {
        // A body that ends with no grpc-status was cut off.
        let code = self.code.unwrap_or_else(|| "2".to_owned());
        let name = code_name(&code);
        let elapsed = self.start.elapsed().as_secs_f64();
        self.span.record("rpc.grpc.status_code", code.as_str());
        let labels = [("method", self.method.clone()), ("code", name.to_owned())];
        metrics::counter!(REQUESTS_TOTAL, &labels).increment(1);
        metrics::histogram!(REQUEST_DURATION, &labels).record(elapsed);
        let _g = self.span.enter();
        match name {
            "INTERNAL" | "UNKNOWN" | "DATA_LOSS" | "UNAVAILABLE" => {
                tracing::warn!(code = name, elapsed_ms = elapsed * 1e3, "rpc failed")
            }
            _ => tracing::debug!(code = name, elapsed_ms = elapsed * 1e3, "rpc done"),
        }
    }
}

fn code_name(code: &str) -> &'static str {
    match code.parse::<i32>().map(tonic::Code::from) {
        Ok(tonic::Code::Ok) => "OK",
        Ok(tonic::Code::Cancelled) => "CANCELLED",
        Ok(tonic::Code::InvalidArgument) => "INVALID_ARGUMENT",
        Ok(tonic::Code::DeadlineExceeded) => "DEADLINE_EXCEEDED",
        Ok(tonic::Code::NotFound) => "NOT_FOUND",
        Ok(tonic::Code::AlreadyExists) => "ALREADY_EXISTS",
        Ok(tonic::Code::PermissionDenied) => "PERMISSION_DENIED",
        Ok(tonic::Code::ResourceExhausted) => "RESOURCE_EXHAUSTED",
        Ok(tonic::Code::FailedPrecondition) => "FAILED_PRECONDITION",
        Ok(tonic::Code::Aborted) => "ABORTED",
        Ok(tonic::Code::OutOfRange) => "OUT_OF_RANGE",
        Ok(tonic::Code::Unimplemented) => "UNIMPLEMENTED",
        Ok(tonic::Code::Internal) => "INTERNAL",
        Ok(tonic::Code::Unavailable) => "UNAVAILABLE",
        Ok(tonic::Code::DataLoss) => "DATA_LOSS",
        Ok(tonic::Code::Unauthenticated) => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

pin_project_lite::pin_project! {
    /// A response body that records its RPC when it ends (or is dropped),
    /// reading the status code from the trailers of streaming responses.
    struct ObservedBody {
        #[pin]
        inner: tonic::body::Body,
        rpc: Option<RpcRecord>,
    }

    impl PinnedDrop for ObservedBody {
        fn drop(this: Pin<&mut Self>) {
            if let Some(rpc) = this.project().rpc.take() {
                rpc.finish();
            }
        }
    }
}

impl http_body::Body for ObservedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let poll = this.inner.poll_frame(cx);
        match &poll {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(trailers), Some(rpc)) = (frame.trailers_ref(), this.rpc.as_mut())
                    && let Some(code) = trailers.get("grpc-status").and_then(|v| v.to_str().ok())
                {
                    rpc.code = Some(code.to_owned());
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                if let Some(rpc) = this.rpc.take() {
                    rpc.finish();
                }
            }
            Poll::Pending => {}
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_context_is_extracted_from_requests_and_injected_into_calls() {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01").parse().unwrap());
            let span = rpc_span("/banso.accounts.v1.AccountsService/GetAccount", &headers);
            let _entered = span.enter();
            // A call made while serving carries the same trace, with a new parent span.
            let mut outgoing = tonic::metadata::MetadataMap::new();
            inject_trace_context(&mut outgoing);
            let sent = outgoing.get("traceparent").expect("traceparent injected").to_str().unwrap().to_owned();
            let parts: Vec<&str> = sent.split('-').collect();
            assert_eq!(parts[1], trace_id, "{sent}");
            assert_ne!(parts[2], "00f067aa0ba902b7", "the parent is this server's span");
        });
    }
}
