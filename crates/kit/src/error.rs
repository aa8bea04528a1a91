//! One error type for every service and one table from it to `tonic::Status`.
//!
//! Handlers return [`Error`]; the conversion to a gRPC status happens once,
//! here, with google.rpc details (`BadRequest` field violations, `ErrorInfo`
//! with an UPPER_SNAKE reason). Database errors are classified here too, so
//! SQL text never reaches a caller.
//!
//! A reply stays small whatever the request held: values echoed into
//! messages go through [`shown`] (cut after [`MAX_SHOWN_CHARS`]), and the
//! table itself cuts every field path, description and message and drops
//! violations past a byte budget, so the whole status (`grpc-message`
//! percent-encoded plus `grpc-status-details-bin` in base64) stays under
//! [`MAX_STATUS_BYTES`]. Stock gRPC clients refuse response metadata over
//! 16 KiB; a reply that big would hide its own field violations.

use std::fmt;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The google.rpc.ErrorInfo domain of every Banso error.
pub const ERROR_DOMAIN: &str = "banso.dev";

/// Characters of a caller's value an error message repeats; the rest is cut.
pub const MAX_SHOWN_CHARS: usize = 64;
/// What a whole error status may take on the wire, message and details
/// together, whatever the input (tested over every method).
pub const MAX_STATUS_BYTES: usize = 8 * 1024;
/// Bytes of the status message (percent-encoding may triple it).
const MAX_MESSAGE_BYTES: usize = 512;
/// Bytes of one violation's field path and of its description.
const MAX_FIELD_BYTES: usize = 160;
const MAX_DESCRIPTION_BYTES: usize = 512;
/// Bytes of encoded details (base64 adds a third): room for a few dozen
/// violations, after which the rest are counted, not listed.
const MAX_DETAILS_BYTES: usize = 3 * 1024;

/// A caller's value as an error message shows it: quoted, and cut after
/// [`MAX_SHOWN_CHARS`] characters with the full length named, so a
/// 100,000-character id does not come back 100,000 characters long.
pub fn shown(value: &str) -> String {
    let n = value.chars().count();
    if n <= MAX_SHOWN_CHARS {
        return format!("{value:?}");
    }
    let head: String = value.chars().take(MAX_SHOWN_CHARS).collect();
    format!("{head:?}… ({n} characters)")
}

/// `s` cut to at most `max` bytes on a character boundary, marked when cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// One bad field of a request: its path (e.g. `account.arr.currency_code`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// What went wrong, in the terms of the API rather than of the storage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; each bad field is named.
    #[error("invalid argument: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// The resource does not exist for this tenant (also: belongs to another).
    #[error("{resource} {} not found", shown(.id))]
    NotFound { resource: &'static str, id: String },
    /// A unique key is already taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is valid but the system's state forbids it.
    #[error("{message}")]
    FailedPrecondition { reason: &'static str, message: String },
    /// A concurrency conflict, such as a stale etag; re-read and retry.
    #[error("{message}")]
    Aborted { reason: &'static str, message: String },
    /// No or bad credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Valid credentials, too weak a role.
    #[error("{0}")]
    PermissionDenied(String),
    /// A dependency (the database) is unreachable; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure. Its text is logged, never returned.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

fn describe(violations: &[FieldViolation]) -> String {
    violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A handler's answer: its value, or its error through the one table.
pub fn reply<T>(r: Result<T>) -> std::result::Result<tonic::Response<T>, Status> {
    r.map(tonic::Response::new).map_err(Status::from)
}

impl Error {
    /// A single bad field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![FieldViolation { field: field.into(), description: description.into() }])
    }

    pub fn not_found(resource: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound { resource, id: id.into() }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Error::Internal(e.into())
    }

    /// The canonical code and `ErrorInfo` reason of this error: the one table.
    pub fn code_and_reason(&self) -> (Code, &'static str) {
        match self {
            Error::InvalidArgument(_) => (Code::InvalidArgument, "INVALID_ARGUMENT"),
            Error::NotFound { .. } => (Code::NotFound, "NOT_FOUND"),
            Error::AlreadyExists(_) => (Code::AlreadyExists, "ALREADY_EXISTS"),
            Error::FailedPrecondition { reason, .. } => (Code::FailedPrecondition, reason),
            Error::Aborted { reason, .. } => (Code::Aborted, reason),
            Error::Unauthenticated(_) => (Code::Unauthenticated, "UNAUTHENTICATED"),
            Error::PermissionDenied(_) => (Code::PermissionDenied, "PERMISSION_DENIED"),
            Error::Unavailable(_) => (Code::Unavailable, "UNAVAILABLE"),
            Error::Internal(_) => (Code::Internal, "INTERNAL"),
        }
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        let (code, reason) = err.code_and_reason();
        let mut details = ErrorDetails::new();
        details.set_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new());
        let message = match &err {
            Error::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                "internal error".to_owned()
            }
            Error::Unavailable(m) => {
                tracing::warn!(error = %m, "dependency unavailable");
                "service temporarily unavailable; retry later".to_owned()
            }
            other => other.to_string(),
        };
        if let Error::InvalidArgument(violations) = &err {
            // Each violation costs its two strings and a few bytes of framing.
            let mut budget = MAX_DETAILS_BYTES;
            for (i, v) in violations.iter().enumerate() {
                let field = cut(&v.field, MAX_FIELD_BYTES);
                let description = cut(&v.description, MAX_DESCRIPTION_BYTES);
                let cost = field.len() + description.len() + 8;
                // Keep room for the line that counts the rest.
                if cost + 64 > budget {
                    let rest = violations.len() - i;
                    details.add_bad_request_violation("", format!("… and {rest} more violations"));
                    break;
                }
                budget -= cost;
                details.add_bad_request_violation(field, description);
            }
        }
        Status::with_error_details(code, cut(&message, MAX_MESSAGE_BYTES), details)
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(err: sea_orm::DbErr) -> Error {
        use sea_orm::{DbErr, RuntimeErr, SqlErr};
        if let Some(SqlErr::UniqueConstraintViolation(_)) = err.sql_err() {
            // The constraint's text names tables and columns: keep it in the log only.
            tracing::debug!(error = %err, "unique violation");
            return Error::AlreadyExists("a resource with the same unique key already exists".into());
        }
        // A text the database cannot store (PostgreSQL: a NUL, SQLSTATE 22021
        // or 22P05). Every text field is checked where it is parsed; this is
        // the backstop, so a field that slipped through is still the
        // caller's error, not an INTERNAL one.
        if let DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) = &err
            && let sea_orm::sqlx::Error::Database(d) = e.as_ref()
            && matches!(d.code().as_deref(), Some("22021" | "22P05"))
        {
            tracing::warn!(error = %err, "a text value the database cannot store reached it");
            return Error::invalid("", "a text value holds a character that cannot be stored (NUL, U+0000)");
        }
        match &err {
            DbErr::RecordNotFound(what) => Error::NotFound { resource: "record", id: what.clone() },
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Error::Unavailable(err.to_string()),
            DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))
                if is_connection_error(e) =>
            {
                Error::Unavailable(err.to_string())
            }
            _ => Error::Internal(anyhow::Error::new(err)),
        }
    }
}

/// Errors of statements sent through the driver itself (PostgreSQL's COPY,
/// which the ORM does not speak) map as the ORM's do.
impl From<sea_orm::sqlx::Error> for Error {
    fn from(err: sea_orm::sqlx::Error) -> Error {
        Error::from(sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(err))))
    }
}

fn is_connection_error(e: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    matches!(e, E::Io(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Tls(_))
}

/// Collects field violations so a request reports every bad field at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation { field: field.into(), description: description.into() });
    }

    /// Records a violation when `bad` holds.
    pub fn check(&mut self, bad: bool, field: impl Into<String>, description: impl fmt::Display) {
        if bad {
            self.add(field, description.to_string());
        }
    }

    /// The value of a validating step, or `None` with its violations kept,
    /// so one response names every bad field.
    pub fn take<T>(&mut self, result: Result<T>) -> Option<T> {
        match result {
            Ok(t) => Some(t),
            Err(Error::InvalidArgument(vs)) => {
                self.0.extend(vs);
                None
            }
            Err(other) => {
                self.add("", other.to_string());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` if nothing was bad, else INVALID_ARGUMENT with every violation.
    pub fn finish(self) -> Result<()> {
        if self.0.is_empty() { Ok(()) } else { Err(Error::InvalidArgument(self.0)) }
    }

    /// The values of the parsing steps (a tuple of `Option`s, or one) once
    /// nothing was bad, else INVALID_ARGUMENT with every violation: parse
    /// every field, then take them all at once, with no `expect` after the
    /// check. A step that gave no value must have added a violation; if one
    /// did not, that is a bug, reported as INTERNAL rather than a panic.
    pub fn finish_with<P: Parsed>(self, parts: P) -> Result<P::Values> {
        self.finish()?;
        parts.all().ok_or_else(|| Error::internal(anyhow::anyhow!("a parsing step gave no value and no violation")))
    }
}

/// The results of several parsing steps, each `Some` if its field was good.
pub trait Parsed {
    type Values;
    /// All the values, if every step gave one.
    fn all(self) -> Option<Self::Values>;
}

impl<A> Parsed for Option<A> {
    type Values = A;
    fn all(self) -> Option<A> {
        self
    }
}

macro_rules! parsed_tuple {
    ($($t:ident),+) => {
        impl<$($t),+> Parsed for ($(Option<$t>,)+) {
            type Values = ($($t,)+);
            #[allow(non_snake_case)]
            fn all(self) -> Option<Self::Values> {
                let ($($t,)+) = self;
                Some(($($t?,)+))
            }
        }
    };
}
parsed_tuple!(A);
parsed_tuple!(A, B);
parsed_tuple!(A, B, C);
parsed_tuple!(A, B, C, D);
parsed_tuple!(A, B, C, D, E);
parsed_tuple!(A, B, C, D, E, F);
parsed_tuple!(A, B, C, D, E, F, G);
parsed_tuple!(A, B, C, D, E, F, G, H);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_field_violations() {
        let mut v = Violations::new();
        v.add("account.name", "must not be empty");
        v.add("account.arr.currency_code", "\"XXQ\" is not an ISO 4217 code");
        let status: Status = v.finish().unwrap_err().into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request details");
        assert_eq!(bad.field_violations.len(), 2);
        assert_eq!(bad.field_violations[0].field, "account.name");
        assert_eq!(details.error_info().unwrap().reason, "INVALID_ARGUMENT");
    }

    /// The bytes a status takes in response metadata.
    fn wire_size(s: &Status) -> usize {
        let encoded_message: usize =
            s.message().bytes().map(|b| if b.is_ascii_graphic() || b == b' ' { 1 } else { 3 }).sum();
        encoded_message + s.details().len().div_ceil(3) * 4
    }

    #[test]
    fn replies_stay_small_whatever_the_input() {
        let huge = "x".repeat(100_000);
        let mut v = Violations::new();
        v.add("id", format!("{} is not a UUID", shown(&huge)));
        let status: Status = v.finish().unwrap_err().into();
        assert!(wire_size(&status) < 1024, "{}", wire_size(&status));
        assert!(status.message().contains("(100000 characters)"), "{}", status.message());

        // Many violations, each long, in Japanese (3 bytes a character, 9 percent-encoded).
        let mut v = Violations::new();
        for i in 0..10_000 {
            v.add(format!("items[{i}].{}", "名".repeat(1000)), "値".repeat(10_000));
        }
        let status: Status = v.finish().unwrap_err().into();
        assert!(wire_size(&status) < MAX_STATUS_BYTES, "{}", wire_size(&status));
        let details = status.get_error_details();
        let bad = details.bad_request().unwrap();
        assert!(bad.field_violations.last().unwrap().description.contains("more violations"));

        let status: Status = Error::not_found("account", huge.clone()).into();
        assert!(wire_size(&status) < 1024);
        let status: Status = Error::AlreadyExists("名".repeat(100_000)).into();
        assert!(wire_size(&status) < MAX_STATUS_BYTES);
    }

    #[test]
    fn shown_cuts_long_values_and_names_their_length() {
        assert_eq!(shown("abc"), "\"abc\"");
        let s = shown(&"é".repeat(65));
        assert!(s.ends_with("… (65 characters)"), "{s}");
        assert_eq!(s.chars().filter(|c| *c == 'é').count(), MAX_SHOWN_CHARS);
    }

    #[test]
    fn finish_with_takes_every_value_or_every_violation() {
        let v = Violations::new();
        assert_eq!(v.finish_with((Some(1), Some("a"))).unwrap(), (1, "a"));
        let mut v = Violations::new();
        v.add("a", "bad");
        assert_eq!(Status::from(v.finish_with((None::<i32>, Some(2))).unwrap_err()).code(), Code::InvalidArgument);
        // No value and no violation is a bug, not a panic.
        let v = Violations::new();
        assert_eq!(Status::from(v.finish_with(None::<i32>).unwrap_err()).code(), Code::Internal);
    }

    #[test]
    fn internal_errors_hide_their_text() {
        let status: Status = Error::internal(anyhow::anyhow!("SELECT secret FROM t")).into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("SELECT"));
    }

    #[test]
    fn missing_row_maps_to_not_found_and_lost_connection_to_unavailable() {
        let e: Error = sea_orm::DbErr::RecordNotFound("x".into()).into();
        assert_eq!(Status::from(e).code(), Code::NotFound);
        let e: Error = sea_orm::DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout).into();
        assert_eq!(Status::from(e).code(), Code::Unavailable);
    }
}
