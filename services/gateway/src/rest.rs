//! REST/JSON transcoding: an HTTP request becomes the RPC's request message
//! as its `google.api.http` rule says, and the reply comes back as proto3
//! JSON. One handler for every route; the descriptors supply the rest.
//!
//! The request is assembled as one proto3 JSON object — the body (all of it
//! or one field), the path variables and the query parameters, each put at
//! its field — and read by prost-reflect's proto3 JSON reader, so every
//! field type (int64 as strings, enums by name, Timestamps, FieldMasks,
//! wrappers) is read the way a JSON client of any gRPC gateway expects, and
//! an unknown field is refused with its name.

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::Request,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, StatusCode, header, request::Parts};
use prost_reflect::{DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, SerializeOptions};
use serde_json::{Map, Value as Json};

use crate::{
    Gateway,
    edge::{labelled, metadata_of, read_body},
    problem::Problem,
    routes::{Resolved, Route},
};

/// Serves one REST request (the edge's fallback: every path not taken by
/// the tracking API, gRPC-Web or the gateway's own routes).
pub async fn handle(gw: Arc<Gateway>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    match gw.routes.resolve(&parts.method, parts.uri.path()) {
        Resolved::Found(route, bound) => {
            let label = route.template.clone();
            let res = match serve(&gw, route, bound, &parts, body).await {
                Ok(res) => res,
                Err(problem) => problem.into_response(),
            };
            labelled(&label, res)
        }
        Resolved::MethodNotAllowed(allowed) => {
            let list = allowed.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ");
            let mut res = Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                format!("{} is not served on this path; it takes {list}", parts.method),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&list) {
                res.headers_mut().insert(header::ALLOW, v);
            }
            labelled("unmatched", res)
        }
        Resolved::NotFound => {
            labelled("unmatched", Problem::not_found_route(&parts.method, parts.uri.path()).into_response())
        }
    }
}

async fn serve(
    gw: &Gateway,
    route: &Route,
    bound: Vec<(Vec<String>, String)>,
    parts: &Parts,
    body: Body,
) -> Result<Response, Problem> {
    let bytes = read_body(body, gw.settings.max_body_bytes).await?;
    let query = parts.uri.query().unwrap_or_default();
    let input = route.method.input();
    let metadata = metadata_of(&parts.headers);
    let call = async {
        if route.is_client_streaming() {
            if !query.is_empty() {
                return Err(Problem::invalid("", "a streaming route takes no query parameters"));
            }
            let messages = ndjson_messages(&input, &bytes, &bound)?;
            let mut request = tonic::Request::new(futures::stream::iter(messages));
            *request.metadata_mut() = metadata;
            request.set_timeout(gw.settings.timeout);
            gw.upstreams.client_streaming(&route.method, request).await.map_err(|s| Problem::from_status(&s))
        } else {
            // If-Match makes a write conditional; on a read it asks nothing.
            let if_match = if parts.method == http::Method::GET { None } else { if_match(&parts.headers)? };
            let message = request_message(route, &input, &bytes, &bound, query, if_match.as_deref())?;
            let mut request = tonic::Request::new(message);
            *request.metadata_mut() = metadata;
            request.set_timeout(gw.settings.timeout);
            gw.upstreams.unary(&route.method, request).await.map_err(|s| Problem::from_status(&s))
        }
    };
    // The deadline travels to the service as grpc-timeout; this bounds the
    // wait for a service that cannot be reached at all.
    let reply = match tokio::time::timeout(gw.settings.timeout + Duration::from_secs(1), call).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "DEADLINE_EXCEEDED",
                format!("no answer within {:?} (BANSO_GATEWAY_TIMEOUT_SECS)", gw.settings.timeout),
            ));
        }
    };
    Ok(json_response(route, reply.into_inner()))
}

/// How replies are written: proto3 JSON with lowerCamelCase names, int64 as
/// strings, enums by name, and fields without presence printed at their
/// defaults (a score of 0 shows as 0, `created: false` shows).
pub fn serialize_options() -> SerializeOptions {
    SerializeOptions::new().skip_default_fields(false)
}

/// Proto3 JSON of `message`.
pub fn to_json(message: &DynamicMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::new(&mut out);
    if message.serialize_with_options(&mut ser, &serialize_options()).is_err() {
        // Serializing a decoded message into memory has no failure mode
        // left but a non-finite float map key; answer the empty object.
        return b"{}".to_vec();
    }
    out
}

fn json_response(route: &Route, reply: DynamicMessage) -> Response {
    let etag = reply.get_field_by_name("etag").and_then(|v| v.as_str().map(str::to_owned)).filter(|s| !s.is_empty());
    let body_message = match &route.response_body {
        Some(field) => match reply.get_field_by_name(field).as_deref() {
            Some(prost_reflect::Value::Message(m)) => m.clone(),
            _ => reply,
        },
        None => reply,
    };
    let mut res = (StatusCode::OK, to_json(&body_message)).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(&format!("\"{t}\"")).ok()) {
        res.headers_mut().insert(header::ETAG, tag);
    }
    res
}

/// The etag an `If-Match` header asks for (`"v3"`, `W/"v3"`; `*` asks for
/// nothing in particular).
fn if_match(headers: &http::HeaderMap) -> Result<Option<String>, Problem> {
    let Some(raw) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let s = raw.to_str().map_err(|_| Problem::invalid("If-Match", "the If-Match header is not ASCII"))?.trim();
    if s == "*" {
        return Ok(None);
    }
    let s = s.strip_prefix("W/").unwrap_or(s);
    if s.contains(',') {
        return Err(Problem::invalid("If-Match", "give one etag in If-Match"));
    }
    Ok(Some(s.trim_matches('"').to_owned()))
}

/// The request message of a unary route.
fn request_message(
    route: &Route,
    input: &MessageDescriptor,
    bytes: &[u8],
    bound: &[(Vec<String>, String)],
    query: &str,
    if_match: Option<&str>,
) -> Result<DynamicMessage, Problem> {
    let mut root = match route.body.as_deref() {
        None => {
            if !is_blank_object(bytes) {
                return Err(Problem::invalid(
                    "",
                    format!(
                        "{} {} takes no body; send its fields as query parameters",
                        route.http_method, route.template
                    ),
                ));
            }
            Map::new()
        }
        Some("*") => match parse_body(bytes)? {
            Json::Object(m) => m,
            other => {
                return Err(Problem::invalid("", format!("the body must be a JSON object, not {}", kind_of(&other))));
            }
        },
        Some(field) => {
            let f = input.get_field_by_name(field).ok_or_else(|| Problem::invalid(field, "no such field"))?;
            let mut m = Map::new();
            m.insert(f.json_name().to_owned(), parse_body(bytes)?);
            m
        }
    };
    for (path, value) in bound {
        put(&mut root, input, path, Json::String(value.clone()))?;
    }
    apply_query(&mut root, route, input, query, bound)?;
    if let Some(tag) = if_match {
        apply_if_match(&mut root, route, input, tag)?;
    }
    read_message(input, Json::Object(root))
}

/// Sets the etag field the request carries (top level, else in the body
/// field's message) from `If-Match`.
fn apply_if_match(
    root: &mut Map<String, Json>,
    route: &Route,
    input: &MessageDescriptor,
    tag: &str,
) -> Result<(), Problem> {
    if input.get_field_by_name("etag").is_some() {
        return put(root, input, &["etag".to_owned()], Json::String(tag.to_owned()));
    }
    if let Some(body) = route.body.as_deref().filter(|b| *b != "*")
        && let Some(Kind::Message(m)) = input.get_field_by_name(body).map(|f| f.kind())
        && m.get_field_by_name("etag").is_some()
    {
        return put(root, input, &[body.to_owned(), "etag".to_owned()], Json::String(tag.to_owned()));
    }
    Err(Problem::invalid("If-Match", format!("{} {} has no etag to match", route.http_method, route.template)))
}

/// Every message of an NDJSON body (or of a JSON array), path variables set
/// on each.
fn ndjson_messages(
    input: &MessageDescriptor,
    bytes: &[u8],
    bound: &[(Vec<String>, String)],
) -> Result<Vec<DynamicMessage>, Problem> {
    let text = std::str::from_utf8(bytes).map_err(|e| Problem::invalid("", format!("the body is not UTF-8: {e}")))?;
    let values: Vec<(String, Json)> = if text.trim_start().starts_with('[') {
        match parse_body(bytes)? {
            Json::Array(items) => items.into_iter().enumerate().map(|(i, v)| (format!("[{i}]"), v)).collect(),
            _ => return Err(Problem::invalid("", "the body must be NDJSON or a JSON array")),
        }
    } else {
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v = serde_json::from_str::<Json>(line)
                .map_err(|e| Problem::invalid(&format!("[{n}]"), format!("line {} is not JSON: {e}", n + 1)))?;
            out.push((format!("[{n}]"), v));
        }
        out
    };
    let mut messages = Vec::with_capacity(values.len());
    for (at, v) in values {
        let Json::Object(mut m) = v else {
            return Err(Problem::invalid(&at, "each line must be a JSON object (one request message)"));
        };
        for (path, value) in bound {
            put(&mut m, input, path, Json::String(value.clone()))?;
        }
        let msg = read_message(input, Json::Object(m)).map_err(|mut p| {
            for e in &mut p.errors {
                e.field = format!("{at}{}{}", if e.field.is_empty() { "" } else { "." }, e.field);
                e.pointer = crate::problem::pointer(&e.field);
            }
            p
        })?;
        messages.push(msg);
    }
    Ok(messages)
}

fn is_blank_object(bytes: &[u8]) -> bool {
    let t = String::from_utf8_lossy(bytes);
    let t = t.trim();
    t.is_empty() || t.replace(char::is_whitespace, "") == "{}"
}

fn parse_body(bytes: &[u8]) -> Result<Json, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Json::Object(Map::new()));
    }
    serde_json::from_slice(bytes).map_err(|e| Problem::invalid("", format!("the body is not valid JSON: {e}")))
}

fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Reads proto3 JSON into a message, naming the path of a refused value.
fn read_message(desc: &MessageDescriptor, json: Json) -> Result<DynamicMessage, Problem> {
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(json, &mut track);
    DynamicMessage::deserialize_with_options(desc.clone(), de, &DeserializeOptions::new()).map_err(|e| {
        let (field, msg) = crate::problem::refused_at(&track.path(), &e);
        Problem::invalid(&field, msg)
    })
}

/// Finds a field by its proto name or its JSON name.
fn field_named(desc: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    desc.get_field_by_name(name).or_else(|| desc.get_field_by_json_name(name))
}

/// Puts `value` at the field path (proto names) in the JSON object,
/// replacing the field under either of its spellings.
fn put(root: &mut Map<String, Json>, desc: &MessageDescriptor, path: &[String], value: Json) -> Result<(), Problem> {
    let dotted = path.join(".");
    let mut obj = root;
    let mut msg = desc.clone();
    for (i, name) in path.iter().enumerate() {
        let f = field_named(&msg, name).ok_or_else(|| Problem::invalid(&dotted, format!("{name:?} is not a field")))?;
        let json = f.json_name().to_owned();
        if f.name() != json {
            // The other spelling would make the field appear twice.
            if let Some(v) = obj.remove(f.name()) {
                obj.entry(json.clone()).or_insert(v);
            }
        }
        if i + 1 == path.len() {
            obj.insert(json, value);
            return Ok(());
        }
        let Kind::Message(next) = f.kind() else {
            return Err(Problem::invalid(&dotted, format!("{name:?} is not a message")));
        };
        msg = next;
        let slot = obj.entry(json).or_insert_with(|| Json::Object(Map::new()));
        if slot.is_null() {
            *slot = Json::Object(Map::new());
        }
        obj = match slot {
            Json::Object(m) => m,
            other => {
                return Err(Problem::invalid(&dotted, format!("{name} must be an object, not {}", kind_of(other))));
            }
        };
    }
    Ok(())
}

/// Message types given as one string in query parameters (their proto3 JSON
/// is a string or a number).
fn is_scalar_message(m: &MessageDescriptor) -> bool {
    matches!(
        m.full_name(),
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
            | "google.protobuf.Int32Value"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.FloatValue"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.BoolValue"
    )
}

/// Whether a field can be given in a query string, and how.
pub fn query_kind(f: &FieldDescriptor) -> Option<QueryKind> {
    if f.is_map() {
        return None;
    }
    match f.kind() {
        Kind::Bool => Some(QueryKind::Bool),
        Kind::Message(m) if m.full_name() == "google.protobuf.BoolValue" => Some(QueryKind::Bool),
        Kind::Message(m) if is_scalar_message(&m) => Some(QueryKind::String),
        Kind::Message(_) => None,
        _ => Some(QueryKind::String),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    Bool,
    /// Given as the string proto3 JSON reads (numbers, enums, timestamps…).
    String,
}

/// Puts every query parameter at its field. Parameters name fields by
/// proto or JSON name, nested with dots (`filter.lifecycleStages=ADOPTION`);
/// a repeated field takes the parameter once per value. A field the path or
/// the body already sets cannot be given again here.
fn apply_query(
    root: &mut Map<String, Json>,
    route: &Route,
    input: &MessageDescriptor,
    query: &str,
    bound: &[(Vec<String>, String)],
) -> Result<(), Problem> {
    if query.is_empty() {
        return Ok(());
    }
    let mut seen: Vec<Vec<String>> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        let shown_key = banso_kit::error::shown(key);
        let parts: Vec<&str> = key.split('.').collect();
        let mut msg = input.clone();
        let mut path = Vec::new();
        let mut target = None;
        for (i, p) in parts.iter().enumerate() {
            let Some(f) = field_named(&msg, p) else {
                return Err(Problem::invalid(
                    key,
                    format!(
                        "query parameter {shown_key}: {} is not a field of the request",
                        banso_kit::error::shown(p)
                    ),
                ));
            };
            path.push(f.name().to_owned());
            if i + 1 == parts.len() {
                target = Some(f);
            } else {
                match f.kind() {
                    Kind::Message(m) if !f.is_list() && !f.is_map() && !is_scalar_message(&m) => msg = m,
                    _ => return Err(Problem::invalid(key, format!("query parameter {shown_key}: {p} has no fields"))),
                }
            }
        }
        let Some(f) = target else { continue };
        if route.body.as_deref() == Some("*") || route.body.as_deref() == Some(path[0].as_str()) {
            return Err(Problem::invalid(key, format!("query parameter {shown_key}: set it in the body")));
        }
        if bound.iter().any(|(b, _)| b == &path) {
            return Err(Problem::invalid(key, format!("query parameter {shown_key}: already set by the path")));
        }
        let Some(kind) = query_kind(&f) else {
            return Err(Problem::invalid(
                key,
                format!("query parameter {shown_key}: this field cannot be given in a query string"),
            ));
        };
        let v = match kind {
            QueryKind::Bool => match value.as_ref() {
                "true" | "1" => Json::Bool(true),
                "false" | "0" => Json::Bool(false),
                other => {
                    return Err(Problem::invalid(
                        key,
                        format!("query parameter {shown_key}: {} is not true or false", banso_kit::error::shown(other)),
                    ));
                }
            },
            QueryKind::String => Json::String(value.into_owned()),
        };
        if f.is_list() {
            let mut existing = take_at(root, input, &path).unwrap_or(Json::Array(Vec::new()));
            match &mut existing {
                Json::Array(items) => items.push(v),
                _ => existing = Json::Array(vec![v]),
            }
            put(root, input, &path, existing)?;
        } else {
            if seen.contains(&path) {
                return Err(Problem::invalid(key, format!("query parameter {shown_key} is given twice")));
            }
            put(root, input, &path, v)?;
        }
        seen.push(path);
    }
    Ok(())
}

/// Removes and returns the value at a field path, if set.
fn take_at(root: &mut Map<String, Json>, desc: &MessageDescriptor, path: &[String]) -> Option<Json> {
    let mut obj = root;
    let mut msg = desc.clone();
    for (i, name) in path.iter().enumerate() {
        let f = field_named(&msg, name)?;
        if i + 1 == path.len() {
            return obj.remove(f.json_name()).or_else(|| obj.remove(f.name()));
        }
        let Kind::Message(next) = f.kind() else { return None };
        msg = next;
        obj = obj.get_mut(f.json_name())?.as_object_mut()?;
    }
    None
}
