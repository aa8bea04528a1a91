//! gRPC-Web, gRPC and Connect for every service, on the gateway's port:
//! one generic proxy, no code per RPC.
//!
//! A request to `/<package>.<Service>/<Method>` is an RPC call, told apart
//! from REST (whose paths start with `/v1/`) by the dot in its first
//! segment or by a gRPC content type:
//!
//! - `application/grpc-web(+proto)` and `application/grpc-web-text`: tonic-web
//!   turns the call into plain gRPC, which is forwarded as it is (bytes, not
//!   decoded messages) to the service's channel, and turns the reply back;
//! - `application/grpc` over HTTP/2 (h2c): forwarded the same way;
//! - `application/json` and `application/proto`: the Connect protocol's
//!   unary calls, decoded with the method's descriptor and made with a
//!   dynamic message, answered as proto3 JSON (defaults printed) or binary.
//!
//! Every other two-segment path is REST and goes to [`crate::rest::handle`].

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::Request,
    response::{IntoResponse, Response},
    routing::any,
};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version, header};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, MethodDescriptor};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};
use tower::{Layer as _, ServiceExt as _};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{
    Gateway,
    edge::{labelled, metadata_of},
    problem::{code_name, http_status},
    settings::GatewaySettings,
};

/// The metrics label of a call to no known method (bounded: the raw path
/// never becomes a label).
pub const UNKNOWN_LABEL: &str = "grpc-unknown";

const GRPC_WEB_TYPES: [&str; 4] = [
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/grpc-web-text",
    "application/grpc-web-text+proto",
];
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
const CONNECT_TIMEOUT: HeaderName = HeaderName::from_static("connect-timeout-ms");
const CONNECT_VERSION: HeaderName = HeaderName::from_static("connect-protocol-version");

/// The gRPC protocol's request headers a proxied call keeps, beside the
/// gateway's pass-through list (grpc-timeout is set separately).
const GRPC_KEPT: &[&str] = &["grpc-encoding", "grpc-accept-encoding"];

/// Routes `/<package>.<Service>/<Method>` for gRPC-Web, gRPC and Connect
/// clients; other two-segment paths go to the REST transcoder.
pub fn router(gw: Arc<Gateway>) -> Router {
    let rpc = Arc::new(Rpc::new(gw));
    Router::new().route(
        "/{service}/{method}",
        any(move |req: Request| {
            let rpc = rpc.clone();
            async move { rpc.handle(req).await }
        }),
    )
}

/// CORS for the allow-listed origins (REST, gRPC-Web and Connect alike).
/// An empty list sends no CORS headers: browsers then refuse cross-origin
/// calls. `*` allows every origin, only when configured so. No credentials
/// mode: the bearer token travels in a header, not a cookie.
pub fn cors(settings: &GatewaySettings) -> CorsLayer {
    if settings.cors_origins.is_empty() {
        return CorsLayer::new().vary(Vec::<HeaderName>::new());
    }
    let origin = if settings.cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        // The settings checked each origin's form; one that is not a valid
        // header value could never match a browser's Origin anyway.
        AllowOrigin::list(settings.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    let names = |list: &[&'static str]| list.iter().map(|h| HeaderName::from_static(h)).collect::<Vec<_>>();
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers(names(&[
            "authorization",
            "content-type",
            "if-match",
            "x-request-id",
            "traceparent",
            "tracestate",
            "x-grpc-web",
            "x-user-agent",
            "grpc-timeout",
            "connect-protocol-version",
            "connect-timeout-ms",
        ]))
        .expose_headers(names(&[
            "grpc-status",
            "grpc-message",
            "grpc-status-details-bin",
            "etag",
            "x-request-id",
            "retry-after",
            "location",
        ]))
        .max_age(Duration::from_secs(600))
}

/// The protocol a call speaks, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    GrpcWeb { text: bool },
    Grpc,
    ConnectJson,
    ConnectProto,
    Other,
}

fn protocol(headers: &HeaderMap) -> (Protocol, String) {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let p = match essence.as_str() {
        t if GRPC_WEB_TYPES.contains(&t) => Protocol::GrpcWeb { text: t.starts_with("application/grpc-web-text") },
        t if t == "application/grpc" || t.starts_with("application/grpc+") => Protocol::Grpc,
        "application/json" => Protocol::ConnectJson,
        "application/proto" => Protocol::ConnectProto,
        _ => Protocol::Other,
    };
    (p, essence)
}

/// An RPC path names a fully qualified service: `/banso.accounts.v1.AccountsService/GetAccount`.
/// REST templates never put a dot in their first segment.
fn is_rpc_path(path: &str) -> bool {
    path.strip_prefix('/').and_then(|p| p.split('/').next()).is_some_and(|s| s.contains('.'))
}

struct Rpc {
    gw: Arc<Gateway>,
    /// The Banso descriptors plus google.rpc's, to show error details of
    /// Connect errors as JSON (`debug`) beside their bytes.
    details: Option<DescriptorPool>,
}

impl Rpc {
    fn new(gw: Arc<Gateway>) -> Self {
        let mut pool = gw.pool.clone();
        let details = match pool.decode_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET) {
            Ok(()) => Some(pool),
            Err(e) => {
                tracing::warn!(error = %e, "google.rpc descriptors do not decode: Connect errors carry no debug JSON");
                None
            }
        };
        Rpc { gw, details }
    }

    /// The method a path names, if it is a method of a Banso service.
    fn method(&self, path: &str) -> Option<MethodDescriptor> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        if !service.starts_with("banso.") {
            return None;
        }
        self.gw.pool.get_service_by_name(service)?.methods().find(|m| m.name() == method)
    }

    async fn handle(self: Arc<Self>, mut req: Request) -> Response {
        let (protocol, essence) = protocol(req.headers());
        let path = req.uri().path().to_owned();
        if protocol != Protocol::Grpc && !matches!(protocol, Protocol::GrpcWeb { .. }) && !is_rpc_path(&path) {
            return crate::rest::handle(self.gw.clone(), req).await;
        }
        let method = self.method(&path);
        let label = method
            .as_ref()
            .map(|m| format!("/{}/{}", m.parent_service().full_name(), m.name()))
            .unwrap_or_else(|| UNKNOWN_LABEL.to_owned());
        let res = match protocol {
            Protocol::GrpcWeb { text } => {
                // tonic-web matches content types exactly: drop parameters.
                if let Ok(v) = HeaderValue::from_str(&essence) {
                    req.headers_mut().insert(header::CONTENT_TYPE, v);
                }
                // A text-mode client that does not say what it accepts gets
                // text back, not binary it may not read.
                let accepts_any = req.headers().get(header::ACCEPT).is_none_or(|a| a.as_bytes() == b"*/*");
                if text && accepts_any {
                    req.headers_mut().insert(header::ACCEPT, HeaderValue::from_static("application/grpc-web-text"));
                }
                self.grpc_web(req).await
            }
            Protocol::Grpc if req.version() == Version::HTTP_2 => {
                let res = self.forward(req.map(tonic::body::Body::new)).await;
                res.map(Body::new)
            }
            Protocol::Grpc => Status::unimplemented("gRPC needs HTTP/2; browsers call with application/grpc-web+proto")
                .into_http::<tonic::body::Body>()
                .map(Body::new),
            Protocol::ConnectJson | Protocol::ConnectProto => {
                if req.method() == Method::POST {
                    self.connect(req, method, protocol == Protocol::ConnectProto).await
                } else {
                    let mut res = connect_error(
                        &Status::unimplemented(format!("{} is not served here: call RPCs with POST", req.method())),
                        self.details.as_ref(),
                    );
                    *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                    res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
                    res
                }
            }
            Protocol::Other => {
                let mut res = connect_error(
                    &Status::invalid_argument(format!(
                        "content-type {} is not served on RPC paths; send application/grpc-web+proto, \
                         application/grpc-web-text, application/grpc (HTTP/2), application/json or application/proto",
                        banso_kit::error::shown(&essence)
                    )),
                    self.details.as_ref(),
                );
                *res.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
                res
            }
        };
        labelled(&label, res)
    }

    /// gRPC-Web: tonic-web in front of the gRPC proxy.
    async fn grpc_web(self: Arc<Self>, req: Request) -> Response {
        let rpc = self.clone();
        let proxy = tower::service_fn(move |req: http::Request<tonic::body::Body>| {
            let rpc = rpc.clone();
            async move { Ok::<_, Infallible>(rpc.forward(req).await) }
        });
        match tonic_web::GrpcWebLayer::new().layer(proxy).oneshot(req).await {
            Ok(res) => res.map(Body::new),
            Err(never) => match never {},
        }
    }

    /// Forwards a gRPC request to its service as it is, with the headers
    /// the gateway passes through and a deadline no longer than its own.
    async fn forward(&self, req: http::Request<tonic::body::Body>) -> http::Response<tonic::body::Body> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path();
        let Some(method) = self.method(path) else {
            return Status::unimplemented(format!("no method {} is served here", banso_kit::error::shown(path)))
                .into_http();
        };
        let service = method.parent_service();
        let Some(channel) = self.gw.upstreams.channel_for_path(path) else {
            return Status::unimplemented(format!("{} is not reached by this gateway", service.full_name()))
                .into_http();
        };
        let deadline = match grpc_timeout(&parts.headers) {
            Ok(asked) => self.capped(asked),
            Err(status) => return status.into_http(),
        };
        let limit = self.gw.settings.max_body_bytes;
        let over_limit = Arc::new(AtomicBool::new(false));
        let body = if method.is_client_streaming() {
            // A stream is passed on as it comes; past the limit it fails
            // and the call with it.
            let flag = over_limit.clone();
            tonic::body::Body::new(Limited::new(body, limit).map_err(move |e| {
                if e.is::<LengthLimitError>() {
                    flag.store(true, Ordering::Relaxed);
                }
                e
            }))
        } else {
            // One request message: read whole, checked against the method's
            // input so a malformed one is INVALID_ARGUMENT here rather than
            // the service's INTERNAL "failed to decode".
            let checked = match read_limited(body, limit).await {
                Ok(bytes) => check_unary_frame(&method.input(), &bytes).map(|()| bytes),
                Err(status) => Err(status),
            };
            match checked {
                Ok(bytes) => tonic::body::Body::new(http_body_util::Full::new(bytes)),
                Err(status) => return status.into_http(),
            }
        };

        let mut out = http::Request::new(body);
        *out.method_mut() = Method::POST;
        *out.uri_mut() = parts.uri.clone();
        *out.version_mut() = Version::HTTP_2;
        let headers = out.headers_mut();
        if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
            headers.insert(header::CONTENT_TYPE, ct.clone());
        }
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        // The token, the request id and the trace (the gateway's span as
        // the parent), as REST passes them; then gRPC's own headers.
        headers.extend(metadata_of(&parts.headers).into_headers());
        for name in GRPC_KEPT {
            for v in parts.headers.get_all(*name) {
                headers.append(HeaderName::from_static(name), v.clone());
            }
        }
        if let Ok(v) = HeaderValue::from_str(&format_grpc_timeout(deadline)) {
            headers.insert(GRPC_TIMEOUT, v);
        }

        // The deadline travels as grpc-timeout; this bounds the wait for a
        // service that cannot be reached at all.
        match tokio::time::timeout(deadline + Duration::from_secs(1), channel.oneshot(out)).await {
            Ok(Ok(res)) => res,
            Ok(Err(_)) if over_limit.load(Ordering::Relaxed) => too_large(limit).into_http(),
            Ok(Err(e)) => Status::unavailable(format!("{} is unreachable: {e}", service.name())).into_http(),
            Err(_) => {
                Status::deadline_exceeded(format!("{} did not answer within {deadline:?}", service.name())).into_http()
            }
        }
    }

    /// The deadline of a call: what the client asked, at most the gateway's.
    fn capped(&self, asked: Option<Duration>) -> Duration {
        let max = self.gw.settings.timeout;
        asked.map_or(max, |d| d.min(max))
    }

    /// A Connect unary call: the message decoded by the method's input
    /// descriptor, called with a dynamic message, answered in the request's
    /// encoding.
    async fn connect(&self, req: Request, method: Option<MethodDescriptor>, binary: bool) -> Response {
        let (parts, body) = req.into_parts();
        // Refusals before the call take the HTTP status a Connect server
        // answers them with (a 4xx: they are the caller's to fix); the
        // body's code is what Connect clients read.
        let refuse = |http: StatusCode, status: Status| {
            let mut res = connect_error(&status, self.details.as_ref());
            *res.status_mut() = http;
            res
        };
        let shown = |v: &HeaderValue| banso_kit::error::shown(&String::from_utf8_lossy(v.as_bytes()));
        let Some(method) = method else {
            let path = banso_kit::error::shown(parts.uri.path());
            return refuse(StatusCode::NOT_FOUND, Status::unimplemented(format!("no method {path} is served here")));
        };
        if method.is_client_streaming() || method.is_server_streaming() {
            let msg = format!("{} streams: call it over gRPC or gRPC-Web (Connect serves unary calls)", method.name());
            return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, Status::unimplemented(msg));
        }
        if let Some(enc) = parts.headers.get(header::CONTENT_ENCODING)
            && !enc.as_bytes().eq_ignore_ascii_case(b"identity")
        {
            let msg = format!("content-encoding {} is not served; send the body uncompressed", shown(enc));
            return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, Status::unimplemented(msg));
        }
        let result = async {
            if let Some(v) = parts.headers.get(&CONNECT_VERSION)
                && v.as_bytes() != b"1"
            {
                return Err(Status::invalid_argument(format!(
                    "connect-protocol-version {} is not served; send 1",
                    shown(v)
                )));
            }
            let deadline = self.capped(connect_timeout(&parts.headers)?);
            let bytes = read_limited(body, self.gw.settings.max_body_bytes).await?;
            let input = method.input();
            let message = if binary {
                DynamicMessage::decode(input, bytes).map_err(|e| {
                    Status::invalid_argument(format!("the body is not a {} message: {e}", method.input().name()))
                })?
            } else {
                read_json(&input, &bytes)?
            };
            let mut request = tonic::Request::new(message);
            *request.metadata_mut() = metadata_of(&parts.headers);
            request.set_timeout(deadline);
            match tokio::time::timeout(deadline + Duration::from_secs(1), self.gw.upstreams.unary(&method, request))
                .await
            {
                Ok(reply) => reply.map(tonic::Response::into_inner),
                Err(_) => Err(Status::deadline_exceeded(format!(
                    "{} did not answer within {deadline:?}",
                    method.parent_service().name()
                ))),
            }
        }
        .await;
        match result {
            Ok(reply) if binary => {
                ([(header::CONTENT_TYPE, "application/proto")], reply.encode_to_vec()).into_response()
            }
            Ok(reply) => ([(header::CONTENT_TYPE, "application/json")], crate::rest::to_json(&reply)).into_response(),
            Err(status) => connect_error(&status, self.details.as_ref()),
        }
    }
}

/// The body up to `limit` bytes; RESOURCE_EXHAUSTED past it.
async fn read_limited<B>(body: B, limit: usize) -> Result<Bytes, Status>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large(limit)),
        Err(e) => Err(Status::invalid_argument(format!("the request body could not be read: {e}"))),
    }
}

/// The body of a call with one request message: one length-prefixed frame
/// holding a valid `input` (a compressed frame is left to the service).
fn check_unary_frame(input: &MessageDescriptor, body: &[u8]) -> Result<(), Status> {
    let bad = |why: String| Status::invalid_argument(format!("the request is not one {} message: {why}", input.name()));
    let Some((&[flag, a, b, c, d], rest)) = body.split_first_chunk::<5>() else {
        return Err(bad(format!("{} bytes, shorter than a frame header", body.len())));
    };
    let len = u32::from_be_bytes([a, b, c, d]) as usize;
    if rest.len() != len {
        return Err(bad(format!("the frame says {len} bytes and {} follow", rest.len())));
    }
    match flag {
        0 => DynamicMessage::decode(input.clone(), rest).map(drop).map_err(|e| bad(e.to_string())),
        1 => Ok(()),
        other => Err(bad(format!("frame flag {other} is neither 0 nor 1"))),
    }
}

fn too_large(limit: usize) -> Status {
    Status::resource_exhausted(format!("the request body is larger than {limit} bytes (BANSO_GATEWAY_MAX_BODY_BYTES)"))
}

/// The `grpc-timeout` a client asked for: 1 to 8 digits and a unit.
fn grpc_timeout(headers: &HeaderMap) -> Result<Option<Duration>, Status> {
    let Some(raw) = headers.get(&GRPC_TIMEOUT) else { return Ok(None) };
    let bad = || {
        Status::invalid_argument(format!(
            "grpc-timeout {} is not a gRPC timeout (1 to 8 digits and a unit: H, M, S, m, u or n)",
            banso_kit::error::shown(&String::from_utf8_lossy(raw.as_bytes()))
        ))
    };
    let s = raw.to_str().map_err(|_| bad())?;
    let (digits, unit) = s.split_at(s.len().saturating_sub(1));
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    Ok(Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return Err(bad()),
    }))
}

/// A deadline as `grpc-timeout` writes it (at most 8 digits).
fn format_grpc_timeout(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        format!("{}u", d.as_micros().max(1))
    } else if ms < 100_000_000 {
        format!("{ms}m")
    } else {
        format!("{}S", d.as_secs().min(99_999_999))
    }
}

/// The `connect-timeout-ms` a client asked for: 1 to 10 digits.
fn connect_timeout(headers: &HeaderMap) -> Result<Option<Duration>, Status> {
    let Some(raw) = headers.get(&CONNECT_TIMEOUT) else { return Ok(None) };
    let s = String::from_utf8_lossy(raw.as_bytes());
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Status::invalid_argument(format!(
            "connect-timeout-ms {} is not a number of milliseconds (1 to 10 digits)",
            banso_kit::error::shown(&s)
        )));
    }
    Ok(s.parse::<u64>().ok().map(Duration::from_millis))
}

/// Reads proto3 JSON (both field spellings; unknown fields refused) into
/// the method's input, naming the path of a refused value.
fn read_json(desc: &MessageDescriptor, bytes: &[u8]) -> Result<DynamicMessage, Status> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let mut track = serde_path_to_error::Track::new();
    let read = DynamicMessage::deserialize_with_options(
        desc.clone(),
        serde_path_to_error::Deserializer::new(&mut json, &mut track),
        &DeserializeOptions::new(),
    );
    let read = read.and_then(|m| json.end().map(|()| m));
    read.map_err(|e| {
        let (field, msg) = crate::problem::refused_at(&track.path(), &e);
        let message = if field.is_empty() {
            format!("the body is not a valid {} in proto3 JSON: {msg}", desc.name())
        } else {
            format!("{field}: {msg}")
        };
        Status::with_error_details(Code::InvalidArgument, message, ErrorDetails::with_bad_request_violation(field, msg))
    })
}

/// A Connect error: `{"code", "message", "details"}` with the HTTP status
/// Connect gives the code. Each detail is the google.protobuf.Any of the
/// gRPC status (type without its URL prefix, value in unpadded base64) and,
/// for the types the gateway knows, its JSON as `debug`.
pub fn connect_error(status: &Status, pool: Option<&DescriptorPool>) -> Response {
    let mut body = serde_json::Map::new();
    body.insert("code".into(), code_name(status.code()).into());
    if !status.message().is_empty() {
        body.insert("message".into(), status.message().into());
    }
    let details = connect_details(status, pool);
    if !details.is_empty() {
        body.insert("details".into(), details.into());
    }
    let code = if status.code() == Code::Ok { Code::Unknown } else { status.code() };
    let bytes = serde_json::to_vec(&serde_json::Value::Object(body)).unwrap_or_else(|_| b"{}".to_vec());
    (http_status(code), [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

fn connect_details(status: &Status, pool: Option<&DescriptorPool>) -> Vec<serde_json::Value> {
    if status.details().is_empty() {
        return Vec::new();
    }
    let Ok(decoded) = tonic_types::pb::Status::decode(status.details()) else { return Vec::new() };
    decoded
        .details
        .iter()
        .map(|any| {
            let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
            let mut d = serde_json::Map::new();
            d.insert("type".into(), type_name.into());
            d.insert("value".into(), base64::engine::general_purpose::STANDARD_NO_PAD.encode(&any.value).into());
            let debug = pool
                .and_then(|p| p.get_message_by_name(type_name))
                .and_then(|desc| DynamicMessage::decode(desc, any.value.as_slice()).ok())
                .and_then(|m| serde_json::from_slice::<serde_json::Value>(&crate::rest::to_json(&m)).ok());
            if let Some(debug) = debug {
                d.insert("debug".into(), debug);
            }
            serde_json::Value::Object(d)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tracking API's static `/v1/…` routes and this router's
    /// `/{service}/{method}` live side by side: a two-segment REST path
    /// that no static route takes still reaches the wildcard.
    #[tokio::test]
    async fn static_routes_and_the_rpc_wildcard_coexist() {
        let app = Router::new()
            .route("/v1/track", axum::routing::post(|| async { "track" }))
            .route("/{service}/{method}", any(|| async { "rpc" }))
            .fallback(|| async { "fallback" });
        for (path, want) in
            [("/v1/track", "track"), ("/v1/accounts", "rpc"), ("/v1/accounts/x", "fallback"), ("/a.B/C", "rpc")]
        {
            let req = Request::post(path).body(Body::empty()).unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, want.as_bytes(), "{path}");
        }
    }

    #[test]
    fn grpc_timeouts_parse_and_print() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(GRPC_TIMEOUT, HeaderValue::from_str(v).unwrap());
            grpc_timeout(&m)
        };
        assert_eq!(h("10S").unwrap(), Some(Duration::from_secs(10)));
        assert_eq!(h("250m").unwrap(), Some(Duration::from_millis(250)));
        assert_eq!(h("2H").unwrap(), Some(Duration::from_secs(7200)));
        for bad in ["", "S", "10", "123456789S", "10s", "-1S", "1.5S"] {
            let err = h(bad).unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
            assert!(err.message().starts_with("grpc-timeout"), "{}", err.message());
        }
        assert_eq!(grpc_timeout(&HeaderMap::new()).unwrap(), None);
        assert_eq!(format_grpc_timeout(Duration::from_secs(30)), "30000m");
        assert_eq!(format_grpc_timeout(Duration::from_micros(5)), "5u");
        assert_eq!(format_grpc_timeout(Duration::from_secs(200_000)), "200000S");
    }

    #[test]
    fn rpc_paths_are_told_from_rest_paths() {
        assert!(is_rpc_path("/banso.accounts.v1.AccountsService/GetAccount"));
        assert!(is_rpc_path("/x.Y/Z"));
        assert!(!is_rpc_path("/v1/accounts"));
        assert!(!is_rpc_path("/v1/accounts:batchGet"));
        let ct = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            protocol(&m).0
        };
        assert_eq!(ct("application/grpc-web+proto"), Protocol::GrpcWeb { text: false });
        assert_eq!(ct("application/grpc-web-text; charset=x"), Protocol::GrpcWeb { text: true });
        assert_eq!(ct("application/grpc"), Protocol::Grpc);
        assert_eq!(ct("application/JSON; charset=utf-8"), Protocol::ConnectJson);
        assert_eq!(ct("application/proto"), Protocol::ConnectProto);
        assert_eq!(ct("text/plain"), Protocol::Other);
    }

    #[test]
    fn connect_errors_carry_code_status_and_details() {
        let s = Status::from(banso_kit::error::Error::invalid("account.name", "must not be empty"));
        let pool = crate::descriptor_pool().unwrap();
        let mut with_rpc = pool.clone();
        with_rpc.decode_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET).unwrap();
        let details = connect_details(&s, Some(&with_rpc));
        let bad = details.iter().find(|d| d["type"] == "google.rpc.BadRequest").unwrap();
        assert_eq!(bad["debug"]["fieldViolations"][0]["field"], "account.name");
        assert!(!bad["value"].as_str().unwrap().ends_with('='));
        let res = connect_error(&s, None);
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn json_is_read_strictly_naming_the_field() {
        let pool = crate::descriptor_pool().unwrap();
        let desc = pool.get_message_by_name("banso.accounts.v1.CreateAccountRequest").unwrap();
        assert!(read_json(&desc, b"").is_ok());
        assert!(read_json(&desc, br#"{"account": {"name": "A", "external_id": "x"}}"#).is_ok());
        let e = read_json(&desc, br#"{"account": {"nope": 1}}"#).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("nope"), "{}", e.message());
        let e = read_json(&desc, br#"{"account": {"name": 5}}"#).unwrap_err();
        assert!(e.message().starts_with("account.name"), "{}", e.message());
        assert_eq!(e.get_error_details().bad_request().unwrap().field_violations[0].field, "account.name");
        for bad in [&b"{"[..], b"[1]", b"{} x", b"\xff"] {
            assert_eq!(read_json(&desc, bad).unwrap_err().code(), Code::InvalidArgument);
        }
    }
}
