//! The OpenAPI 3.1 document, generated from the same descriptors and route
//! table the transcoder serves: paths and parameters from the
//! `google.api.http` rules, schemas from the messages as proto3 JSON writes
//! them, descriptions from the proto comments. `docs/openapi.json` is this
//! document checked in; CI compares the two so an API change shows in review.

use std::collections::{BTreeMap, HashMap};

use prost_reflect::{DescriptorPool, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use crate::{
    rest::{QueryKind, query_kind},
    routes::{Route, RouteTable, Segment},
};

/// Leading comments by (file, source path).
struct Comments(HashMap<(String, Vec<i32>), String>);

impl Comments {
    fn of(pool: &DescriptorPool) -> Self {
        let mut map = HashMap::new();
        for file in pool.files() {
            let Some(info) = &file.file_descriptor_proto().source_code_info else { continue };
            for loc in &info.location {
                if let Some(c) = &loc.leading_comments {
                    let text = c.lines().map(str::trim).collect::<Vec<_>>().join("\n").trim().to_owned();
                    if !text.is_empty() {
                        map.insert((file.name().to_owned(), loc.path.clone()), text);
                    }
                }
            }
        }
        Comments(map)
    }

    fn get(&self, file: &str, path: &[i32]) -> Option<&str> {
        self.0.get(&(file.to_owned(), path.to_vec())).map(String::as_str)
    }

    fn message(&self, m: &MessageDescriptor) -> Option<&str> {
        self.get(m.parent_file().name(), m.path())
    }

    fn field(&self, f: &FieldDescriptor) -> Option<&str> {
        self.get(f.parent_file().name(), f.path())
    }

    fn enumeration(&self, e: &EnumDescriptor) -> Option<&str> {
        self.get(e.parent_file().name(), e.path())
    }
}

/// The schema name of a message or enum: its full proto name.
fn schema_ref(full_name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{full_name}") })
}

struct Builder<'a> {
    comments: &'a Comments,
    schemas: BTreeMap<String, Value>,
}

impl Builder<'_> {
    /// The schema of a message type, registering it (and what it uses).
    fn message(&mut self, m: &MessageDescriptor) -> Value {
        if let Some(wkt) = well_known(m) {
            return wkt;
        }
        let name = m.full_name().to_owned();
        if !self.schemas.contains_key(&name) {
            // Placeholder first: messages may refer to themselves.
            self.schemas.insert(name.clone(), Value::Null);
            let mut props = Map::new();
            let mut required = Vec::new();
            for f in m.fields() {
                let mut s = self.field(&f);
                if let Some(c) = self.comments.field(&f) {
                    s = with_description(s, c);
                    // The protos say "Required." of fields a request must
                    // set. Only fields without presence are listed: replies
                    // always print those, so the schema holds both ways.
                    if c.starts_with("Required") && !f.supports_presence() && !f.is_list() && !f.is_map() {
                        required.push(json!(f.json_name()));
                    }
                }
                props.insert(f.json_name().to_owned(), s);
            }
            let mut schema = json!({
                "type": "object",
                "properties": props,
                // Unknown fields are refused (proto3 JSON: either spelling
                // of a field is read; the schema lists lowerCamelCase).
                "additionalProperties": false,
            });
            if !required.is_empty() {
                schema["required"] = Value::Array(required);
            }
            if let Some(c) = self.comments.message(m) {
                schema["description"] = json!(c);
            }
            self.schemas.insert(name.clone(), schema);
        }
        schema_ref(&name)
    }

    fn enumeration(&mut self, e: &EnumDescriptor) -> Value {
        let name = e.full_name().to_owned();
        if !self.schemas.contains_key(&name) {
            let values: Vec<Value> = e.values().map(|v| json!(v.name())).collect();
            let mut schema = json!({ "type": "string", "enum": values });
            if let Some(c) = self.comments.enumeration(e) {
                schema["description"] = json!(c);
            }
            self.schemas.insert(name.clone(), schema);
        }
        schema_ref(&name)
    }

    /// The schema of one value of a field's type.
    fn single(&mut self, kind: Kind) -> Value {
        match kind {
            Kind::Double | Kind::Float => json!({ "type": "number" }),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => json!({ "type": "integer", "format": "int32" }),
            Kind::Uint32 | Kind::Fixed32 => json!({ "type": "integer", "minimum": 0, "maximum": 4_294_967_295u64 }),
            // proto3 JSON writes 64-bit integers as strings.
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({ "type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$" })
            }
            Kind::Uint64 | Kind::Fixed64 => json!({ "type": "string", "format": "uint64", "pattern": "^[0-9]{1,20}$" }),
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
            Kind::Message(m) => self.message(&m),
            Kind::Enum(e) => self.enumeration(&e),
        }
    }

    fn field(&mut self, f: &FieldDescriptor) -> Value {
        if f.is_map() {
            let value = match f.kind() {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other,
            };
            return json!({ "type": "object", "additionalProperties": self.single(value) });
        }
        let one = self.single(f.kind());
        if f.is_list() { json!({ "type": "array", "items": one }) } else { one }
    }
}

fn with_description(schema: Value, description: &str) -> Value {
    // A $ref with siblings is allowed in 3.1; keep the ref intact.
    let mut s = schema;
    if let Value::Object(m) = &mut s {
        m.insert("description".into(), json!(description));
    }
    s
}

/// Schemas of the well-known types, as proto3 JSON writes them.
fn well_known(m: &MessageDescriptor) -> Option<Value> {
    let s = match m.full_name() {
        "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
        "google.protobuf.Duration" => json!({ "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$" }),
        "google.protobuf.FieldMask" => {
            json!({ "type": "string", "description": "comma-separated field paths, lowerCamelCase" })
        }
        "google.protobuf.Empty" => json!({ "type": "object", "additionalProperties": false }),
        "google.protobuf.Struct" => json!({ "type": "object" }),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({ "type": "array" }),
        "google.protobuf.StringValue" => json!({ "type": ["string", "null"] }),
        "google.protobuf.BytesValue" => json!({ "type": ["string", "null"], "contentEncoding": "base64" }),
        "google.protobuf.BoolValue" => json!({ "type": ["boolean", "null"] }),
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => json!({ "type": ["number", "null"] }),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => json!({ "type": ["integer", "null"] }),
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => json!({ "type": ["string", "null"] }),
        _ => return None,
    };
    Some(s)
}

/// The query parameters of a route: every field the path and body leave,
/// by dotted lowerCamelCase path (nested messages walked, at most 3 deep).
fn query_parameters(b: &mut Builder<'_>, route: &Route) -> Vec<Value> {
    if route.body.as_deref() == Some("*") {
        return Vec::new();
    }
    let bound: Vec<Vec<String>> = route.path_fields().map(<[String]>::to_vec).collect();
    let mut out = Vec::new();
    walk_query(b, route, &route.method.input(), &mut Vec::new(), &mut Vec::new(), &bound, &mut out);
    out
}

fn walk_query(
    b: &mut Builder<'_>,
    route: &Route,
    msg: &MessageDescriptor,
    proto_path: &mut Vec<String>,
    json_path: &mut Vec<String>,
    bound: &[Vec<String>],
    out: &mut Vec<Value>,
) {
    for f in msg.fields() {
        proto_path.push(f.name().to_owned());
        json_path.push(f.json_name().to_owned());
        let is_body = proto_path.len() == 1 && route.body.as_deref() == Some(f.name());
        if !is_body && !bound.contains(proto_path) {
            match (query_kind(&f), f.kind()) {
                (Some(kind), _) => {
                    let mut schema = b.field(&f);
                    if kind == QueryKind::Bool && !f.is_list() {
                        schema = json!({ "type": "boolean" });
                    }
                    let mut p = json!({
                        "name": json_path.join("."),
                        "in": "query",
                        "required": false,
                        "schema": schema,
                    });
                    if f.is_list() {
                        p["style"] = json!("form");
                        p["explode"] = json!(true);
                    }
                    if let Some(c) = b.comments.field(&f) {
                        p["description"] = json!(c);
                    }
                    out.push(p);
                }
                (None, Kind::Message(m)) if !f.is_list() && !f.is_map() && proto_path.len() < 3 => {
                    walk_query(b, route, &m, proto_path, json_path, bound, out);
                }
                _ => {}
            }
        }
        proto_path.pop();
        json_path.pop();
    }
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "An RFC 9457 problem document.",
        "required": ["type", "title", "status", "code"],
        "properties": {
            "type": { "type": "string", "description": "URI of the error reason" },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "detail": { "type": "string" },
            "code": { "type": "string", "description": "the ErrorInfo reason, e.g. ETAG_MISMATCH" },
            "grpcCode": { "type": "string" },
            "retryAfter": { "type": "integer" },
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "pointer": { "type": "string", "description": "JSON pointer into the request body" },
                        "field": { "type": "string" },
                        "detail": { "type": "string" }
                    }
                }
            }
        }
    })
}

/// The document as served and checked in (pretty JSON).
pub fn render() -> anyhow::Result<Vec<u8>> {
    let pool = crate::descriptor_pool()?;
    render_with(&pool, &RouteTable::build(&pool)?)
}

/// The same, from a pool and route table already built (the gateway's).
pub fn render_with(pool: &DescriptorPool, routes: &RouteTable) -> anyhow::Result<Vec<u8>> {
    let mut out = serde_json::to_vec_pretty(&document(pool, routes))?;
    out.push(b'\n');
    Ok(out)
}

/// The document.
pub fn document(pool: &DescriptorPool, routes: &RouteTable) -> Value {
    let comments = Comments::of(pool);
    let mut b = Builder { comments: &comments, schemas: BTreeMap::new() };
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut tags = BTreeMap::new();
    for route in &routes.routes {
        let service = route.method.parent_service();
        let tag = service.name().to_owned();
        tags.entry(tag.clone()).or_insert_with(|| {
            let mut t = json!({ "name": tag });
            if let Some(c) = comments.get(service.parent_file().name(), service.path()) {
                t["description"] = json!(c);
            }
            t
        });
        let input = route.method.input();
        let mut parameters = Vec::new();
        for seg in &route.segments {
            if let Segment::Var(f) | Segment::Rest(f) = seg {
                let field = field_at(&input, f);
                let mut p = json!({
                    "name": crate::routes::param_name(f),
                    "in": "path",
                    "required": true,
                    "schema": field.as_ref().map(|f| b.field(f)).unwrap_or(json!({ "type": "string" })),
                });
                if let Some(c) = field.as_ref().and_then(|f| comments.field(f)) {
                    p["description"] = json!(c);
                }
                parameters.push(p);
            }
        }
        parameters.extend(query_parameters(&mut b, route));
        if ["PATCH", "DELETE"].contains(&route.http_method.as_str()) && has_etag(route) {
            parameters.push(json!({
                "name": "If-Match", "in": "header", "required": false,
                "description": "the etag of the resource as last read; a stale one is 412 ETAG_MISMATCH",
                "schema": { "type": "string" }
            }));
        }
        let public = banso_kit::auth::is_public_service(service.full_name());
        let mut op = json!({
            "operationId": format!("{}_{}", service.name(), route.method.name()),
            "tags": [tag],
            "parameters": parameters,
            "responses": responses(&mut b, route, public),
        });
        if public {
            // Served without a token (the services' one list): no bearer
            // scheme, which the document asks of every other operation.
            op["security"] = json!([]);
        }
        if let Some(c) = comments.get(service.parent_file().name(), route.method.path()) {
            op["summary"] = json!(c.lines().next().unwrap_or_default());
            op["description"] = json!(c);
        }
        if let Some(body) = request_body(&mut b, route, &input) {
            op["requestBody"] = body;
        }
        paths.entry(route.openapi_path()).or_default().insert(route.http_method.as_str().to_ascii_lowercase(), op);
    }
    add_links(&mut paths, routes);
    let (tracking_paths, tracking_schemas) = crate::tracking::openapi();
    for (path, ops) in tracking_paths {
        if let Value::Object(ops) = ops {
            paths.insert(path, ops);
        }
    }
    tags.insert(
        "Tracking".to_owned(),
        json!({ "name": "Tracking", "description": "The Segment-compatible tracking API (docs/tracking.md)" }),
    );
    let mut schemas: Map<String, Value> = b.schemas.into_iter().collect();
    schemas.extend(tracking_schemas);
    schemas.insert("Problem".into(), problem_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Banso API",
            "version": "v1",
            "description": "Banso's REST/JSON API, transcoded from its gRPC services (the protos are the source). \
                Fields are proto3 JSON: lowerCamelCase (snake_case also read), 64-bit integers as strings, \
                enums by name, timestamps in RFC 3339. Errors are RFC 9457 problem documents.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" }
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "tags": tags.into_values().collect::<Vec<_>>(),
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                "Problem": {
                    "description": "An error: the request was refused or could not be served",
                    "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
                }
            },
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                            "description": "a JWT naming the tenant and roles" },
                "writeKey": { "type": "http", "scheme": "basic",
                              "description": "tracking API: the write key as the user name, no password" }
            }
        }
    })
}

/// OpenAPI links from each create (`POST /v1/accounts`) to the routes of
/// the resource it made (`/v1/accounts/{id}…`), the new `id` as their first
/// path variable: clients and stateful fuzzers (schemathesis) follow them.
fn add_links(paths: &mut BTreeMap<String, Map<String, Value>>, routes: &RouteTable) {
    for create in routes.routes.iter().filter(|r| r.http_method == http::Method::POST && r.verb.is_none()) {
        if create.path_fields().next().is_some() || create.method.output().get_field_by_name("id").is_none() {
            continue;
        }
        let prefix = create.openapi_path();
        let mut links = Map::new();
        for r in &routes.routes {
            let path = r.openapi_path();
            let Some(rest) = path.strip_prefix(&format!("{prefix}/{{")) else { continue };
            let Some(var) = rest.split('}').next() else { continue };
            let op = format!("{}_{}", r.method.parent_service().name(), r.method.name());
            links.insert(op.clone(), json!({ "operationId": op, "parameters": { var: "$response.body#/id" } }));
        }
        if links.is_empty() {
            continue;
        }
        if let Some(op) = paths.get_mut(&prefix).and_then(|p| p.get_mut("post")) {
            op["responses"]["200"]["links"] = Value::Object(links);
        }
    }
}

fn field_at(input: &MessageDescriptor, path: &[String]) -> Option<FieldDescriptor> {
    let mut msg = input.clone();
    let mut found = None;
    for name in path {
        let f = msg.get_field_by_name(name)?;
        if let Kind::Message(m) = f.kind() {
            msg = m;
        }
        found = Some(f);
    }
    found
}

fn has_etag(route: &Route) -> bool {
    let input = route.method.input();
    input.get_field_by_name("etag").is_some()
        || route.body.as_deref().and_then(|b| input.get_field_by_name(b)).is_some_and(|f| match f.kind() {
            Kind::Message(m) => m.get_field_by_name("etag").is_some(),
            _ => false,
        })
}

fn request_body(b: &mut Builder<'_>, route: &Route, input: &MessageDescriptor) -> Option<Value> {
    let body = route.body.as_deref()?;
    if route.is_client_streaming() {
        let one = b.message(input);
        return Some(json!({
            "required": true,
            "description": "the stream's messages: NDJSON (one request message a line) or a JSON array",
            "content": {
                "application/json": { "schema": { "type": "array", "items": one } },
                "application/x-ndjson": { "schema": one }
            }
        }));
    }
    let schema = if body == "*" {
        // The path variables are part of the request too; the body may
        // repeat them, the path wins.
        b.message(input)
    } else {
        let f = input.get_field_by_name(body)?;
        b.field(&f)
    };
    Some(json!({ "required": true, "content": { "application/json": { "schema": schema } } }))
}

/// The responses of a route; a public one (no token) is never 401 or 403.
fn responses(b: &mut Builder<'_>, route: &Route, public: bool) -> Value {
    let output = route.method.output();
    let schema = match &route.response_body {
        Some(f) => output.get_field_by_name(f).map(|f| b.field(&f)).unwrap_or(json!({})),
        None => b.message(&output),
    };
    let problem = json!({ "$ref": "#/components/responses/Problem" });
    let mut r = json!({
        "200": {
            "description": "OK",
            "content": { "application/json": { "schema": schema } }
        },
        "400": problem, "401": problem, "403": problem, "404": problem, "405": problem, "409": problem,
        "413": problem, "429": problem, "503": problem, "504": problem,
        "default": problem,
    });
    if ["PATCH", "DELETE", "PUT"].contains(&route.http_method.as_str()) {
        r["412"] = problem.clone();
    }
    if public && let Value::Object(codes) = &mut r {
        codes.remove("401");
        codes.remove("403");
    }
    if route.method.output().get_field_by_name("etag").is_some() {
        r["200"]["headers"] =
            json!({ "ETag": { "description": "the resource's etag", "schema": { "type": "string" } } });
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described_with_schemas_and_comments() {
        let pool = crate::descriptor_pool().unwrap();
        let routes = RouteTable::build(&pool).unwrap();
        let doc = document(&pool, &routes);
        let get = &doc["paths"]["/v1/accounts/{id}"]["get"];
        assert!(doc["paths"].get("/v1/accounts/{accountId}").is_some());
        assert_eq!(get["operationId"], json!("AccountsService_GetAccount"));
        assert!(get["description"].as_str().unwrap().contains("NOT_FOUND"));
        let account = &doc["components"]["schemas"]["banso.accounts.v1.Account"];
        assert_eq!(account["properties"]["employeeCount"]["type"], json!("string"));
        assert_eq!(account["properties"]["createTime"]["format"], json!("date-time"));
        let list = &doc["paths"]["/v1/accounts"]["get"]["parameters"];
        let names: Vec<&str> = list.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"filter.lifecycleStages") && names.contains(&"pageSize"), "{names:?}");
        let patch = &doc["paths"]["/v1/accounts/{accountId}"]["patch"];
        let names: Vec<&str> =
            patch["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["accountId", "updateMask", "If-Match"]);
        let links = &doc["paths"]["/v1/accounts"]["post"]["responses"]["200"]["links"];
        assert_eq!(links["AccountsService_GetAccount"]["parameters"]["id"], json!("$response.body#/id"));
        assert_eq!(links["AccountsService_UpdateAccount"]["parameters"]["accountId"], json!("$response.body#/id"));
        let n: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(n, routes.routes.len() + 6, "every RPC route and the six tracking routes");
        assert_eq!(doc["paths"]["/v1/batch"]["post"]["security"][0], json!({ "writeKey": [] }));
        // The survey answer path takes no token: its operations ask for no
        // security (the document's default is the bearer scheme), and
        // nothing else is public.
        assert_eq!(doc["security"], json!([{ "bearer": [] }]));
        let public: Vec<String> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|p| p.as_object().unwrap().values())
            .filter(|op| op.get("security") == Some(&json!([])))
            .map(|op| op["operationId"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(public, ["SurveyResponseService_GetSurveyForm", "SurveyResponseService_SubmitSurveyAnswer"]);
        let answer = &doc["paths"]["/v1/public/surveyForms/{token}:answer"]["post"];
        assert!(answer["responses"].get("401").is_none() && answer["responses"].get("400").is_some(), "{answer}");
        assert!(doc["paths"]["/v1/surveys"]["post"].get("security").is_none(), "the bearer default applies");
    }
}
