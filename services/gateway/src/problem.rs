//! Errors as RFC 9457 problem documents (`application/problem+json`).
//!
//! One table maps a gRPC code to its HTTP status (the standard mapping of
//! google.rpc.Code); the service's ErrorInfo reason becomes `code` and the
//! `type` URI, and BadRequest field violations become `errors`, each with a
//! JSON pointer into the request body as proto3 JSON spells it.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Where the `type` URIs of problems point: the error reasons in docs/api.md.
pub const TYPE_BASE: &str = "https://banso.dev/errors/";

/// The HTTP status of a gRPC code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The snake_case name of a gRPC code, as Connect and problem `code`s spell it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// One bad field of the request.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldError {
    /// JSON pointer into the request as proto3 JSON spells it: `#/account/annualRevenue`.
    pub pointer: String,
    /// The field path as the service named it (`account.annual_revenue`).
    pub field: String,
    pub detail: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The machine-readable reason (ErrorInfo reason, e.g. `ETAG_MISMATCH`).
    pub code: String,
    /// The gRPC code the service answered.
    #[serde(rename = "grpcCode")]
    pub grpc_code: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Seconds to wait before retrying (429, 503).
    #[serde(rename = "retryAfter", skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem found by the gateway itself.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        let grpc = grpc_code_of(status);
        Problem {
            type_uri: format!("{TYPE_BASE}{}", code.to_ascii_lowercase().replace('_', "-")),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
            grpc_code: code_name(grpc),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// 400 naming one bad field of the request.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let mut p = Problem::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", detail.clone());
        p.errors.push(FieldError { pointer: pointer(field), field: field.to_owned(), detail });
        p
    }

    pub fn not_found_route(method: &http::Method, path: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "ROUTE_NOT_FOUND",
            format!("no route {method} {} (see /openapi.json)", banso_kit::error::shown(path)),
        )
    }

    /// The problem for a service's reply. `etag_given`: the caller sent
    /// If-Match, so a stale etag is 412 Precondition Failed.
    pub fn from_status(status: &Status) -> Self {
        let details = status.get_error_details();
        let reason = details
            .error_info()
            .map(|i| i.reason.clone())
            .unwrap_or_else(|| code_name(status.code()).to_ascii_uppercase());
        let mut http = http_status(status.code());
        if reason == "ETAG_MISMATCH" {
            http = StatusCode::PRECONDITION_FAILED;
        }
        let mut p = Problem::new(http, &reason, status.message());
        p.grpc_code = code_name(status.code());
        if let Some(bad) = details.bad_request() {
            p.errors = bad
                .field_violations
                .iter()
                .map(|v| FieldError {
                    pointer: pointer(&v.field),
                    field: v.field.clone(),
                    detail: v.description.clone(),
                })
                .collect();
        }
        if let Some(retry) = details.retry_info().and_then(|r| r.retry_delay) {
            p.retry_after = Some(retry.as_secs().max(1));
        }
        if p.retry_after.is_none() && matches!(status.code(), Code::Unavailable | Code::ResourceExhausted) {
            p.retry_after = Some(1);
        }
        p
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let retry = self.retry_after;
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut res = (status, body).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = retry {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// The gRPC code a gateway-made HTTP status stands for.
fn grpc_code_of(status: StatusCode) -> Code {
    match status.as_u16() {
        400 | 413 | 415 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 | 405 => Code::NotFound,
        409 => Code::Aborted,
        412 => Code::FailedPrecondition,
        429 => Code::ResourceExhausted,
        501 => Code::Unimplemented,
        503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        _ => Code::Internal,
    }
}

/// A field path as services name it (`account.custom_attributes[2]`, with
/// snake_case names) as a JSON pointer into proto3 JSON
/// (`#/account/customAttributes/2`).
pub fn pointer(field: &str) -> String {
    let mut out = String::from("#");
    for part in field.split('.').filter(|p| !p.is_empty()) {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        out.push('/');
        out.push_str(&escape(&lower_camel(name)));
        for idx in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            out.push('/');
            out.push_str(&escape(idx.trim_matches('"')));
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// `annual_revenue` → `annualRevenue`, as proto3 JSON names fields (the
/// kit's one conversion, which field masks use too).
pub use banso_kit::fieldmask::camel as lower_camel;

/// Where proto3 JSON reading stopped and why, for a problem or a Connect
/// error: the path of the refused value (empty at the top) and the
/// reader's message, bounded (an unknown-field message lists every field).
pub fn refused_at(path: &serde_path_to_error::Path, error: &impl std::fmt::Display) -> (String, String) {
    let path = path.to_string();
    let field = if path == "?" || path == "." { String::new() } else { path };
    let mut msg = error.to_string();
    if msg.len() > 300 {
        let mut cut = 300;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
        msg.push('…');
    }
    (field, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_follow_proto3_json_names() {
        assert_eq!(pointer("account.annual_revenue"), "#/account/annualRevenue");
        assert_eq!(pointer("events[3].event_id"), "#/events/3/eventId");
        assert_eq!(pointer("account.custom_attributes[\"a/b\"]"), "#/account/customAttributes/a~1b");
        assert_eq!(pointer(""), "#");
    }

    #[test]
    fn etag_mismatch_is_412_and_violations_are_listed() {
        let s = Status::from(banso_kit::error::Error::Aborted { reason: "ETAG_MISMATCH", message: "stale".into() });
        let p = Problem::from_status(&s);
        assert_eq!((p.status, p.code.as_str(), p.grpc_code), (412, "ETAG_MISMATCH", "aborted"));
        let s = Status::from(banso_kit::error::Error::invalid("account.name", "must not be empty"));
        let p = Problem::from_status(&s);
        assert_eq!(p.status, 400);
        assert_eq!(p.errors[0].pointer, "#/account/name");
    }
}
