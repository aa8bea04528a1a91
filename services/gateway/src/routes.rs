//! The route table: every RPC's `google.api.http` rule, read from the
//! descriptor pool at start-up and matched against request paths.
//!
//! Path templates follow google/api/http.proto: literal segments,
//! variables `{field.path}` (one segment) or `{field.path=**}` (the rest of
//! the path), and an optional custom verb `:verb` after the last segment.

use std::collections::BTreeSet;

use anyhow::{Context as _, bail};
use http::Method;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, Value};

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// A variable bound to a field path (proto names), one segment wide.
    Var(Vec<String>),
    /// A variable taking every remaining segment (`{name=**}`).
    Rest(Vec<String>),
}

/// One HTTP binding of an RPC.
#[derive(Debug, Clone)]
pub struct Route {
    pub http_method: Method,
    /// The template as written (`/v1/accounts/{id}`): the metrics label.
    pub template: String,
    pub segments: Vec<Segment>,
    pub verb: Option<String>,
    pub method: MethodDescriptor,
    /// `None`: no body; `Some("*")`: the whole request; else a field name.
    pub body: Option<String>,
    /// The response field returned, or the whole response.
    pub response_body: Option<String>,
}

impl Route {
    /// The field paths bound in the path.
    pub fn path_fields(&self) -> impl Iterator<Item = &[String]> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Var(f) | Segment::Rest(f) => Some(f.as_slice()),
            Segment::Literal(_) => None,
        })
    }

    /// Client-streaming RPCs take an NDJSON body: one request message a line.
    pub fn is_client_streaming(&self) -> bool {
        self.method.is_client_streaming()
    }

    /// The OpenAPI path: variables named in lowerCamelCase (`{account.id}`
    /// → `{accountId}`: URI-template tools read a dot as an operator), the
    /// verb appended.
    pub fn openapi_path(&self) -> String {
        let mut p = String::new();
        for s in &self.segments {
            p.push('/');
            match s {
                Segment::Literal(l) => p.push_str(l),
                Segment::Var(f) | Segment::Rest(f) => {
                    p.push('{');
                    p.push_str(&param_name(f));
                    p.push('}');
                }
            }
        }
        if let Some(v) = &self.verb {
            p.push(':');
            p.push_str(v);
        }
        p
    }

    /// Matches the segments of a request path (already split, not yet
    /// decoded). Returns the bound field paths and their decoded values.
    fn matches(&self, raw: &[&str]) -> Option<Vec<(Vec<String>, String)>> {
        let mut raw: Vec<&str> = raw.to_vec();
        if let Some(verb) = &self.verb {
            let last = raw.last_mut()?;
            *last = last.strip_suffix(verb.as_str())?.strip_suffix(':')?;
        }
        let mut bound = Vec::new();
        let mut i = 0;
        for (n, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Literal(l) => {
                    if raw.get(i).is_none_or(|r| decode(r).as_deref() != Some(l.as_str())) {
                        return None;
                    }
                    i += 1;
                }
                Segment::Var(f) => {
                    let value = decode(raw.get(i)?)?;
                    if value.is_empty() {
                        return None;
                    }
                    bound.push((f.clone(), value));
                    i += 1;
                }
                Segment::Rest(f) => {
                    // `**` is last in every template we accept.
                    debug_assert_eq!(n, self.segments.len() - 1);
                    let rest: Option<Vec<String>> = raw[i..].iter().map(|r| decode(r)).collect();
                    let rest = rest?.join("/");
                    if rest.is_empty() {
                        return None;
                    }
                    bound.push((f.clone(), rest));
                    i = raw.len();
                }
            }
        }
        (i == raw.len()).then_some(bound)
    }

    /// How specific the route is: verbs first, then more literal segments.
    fn rank(&self) -> (bool, usize, usize) {
        let literals = self.segments.iter().filter(|s| matches!(s, Segment::Literal(_))).count();
        (self.verb.is_some(), literals, self.segments.len())
    }
}

/// The OpenAPI name of a path variable: its field path in lowerCamelCase.
pub fn param_name(field_path: &[String]) -> String {
    crate::problem::lower_camel(&field_path.join("_"))
}

fn decode(raw: &str) -> Option<String> {
    percent_encoding::percent_decode_str(raw).decode_utf8().ok().map(|s| s.into_owned())
}

/// What a request path resolved to.
pub enum Resolved<'a> {
    Found(&'a Route, Vec<(Vec<String>, String)>),
    /// The path exists with other methods.
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

/// Every route, most specific first.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    pub routes: Vec<Route>,
}

impl RouteTable {
    /// Reads the `google.api.http` rule of every Banso RPC. An RPC without
    /// one, or a rule that does not parse, stops start-up: every RPC is
    /// meant to be reachable over REST.
    pub fn build(pool: &DescriptorPool) -> anyhow::Result<RouteTable> {
        let ext = pool
            .get_extension_by_name("google.api.http")
            .context("the descriptor set has no google.api.http extension (proto/google/api/annotations.proto)")?;
        let mut routes = Vec::new();
        let mut seen = BTreeSet::new();
        for service in crate::upstream::services(pool) {
            for method in service.methods() {
                let options = method.options();
                if !options.has_extension(&ext) {
                    bail!("{} has no google.api.http annotation", method.full_name());
                }
                let rule = match options.get_extension(&ext).as_ref() {
                    Value::Message(m) => m.clone(),
                    _ => bail!("{}: google.api.http is not a message", method.full_name()),
                };
                let mut rules = vec![rule.clone()];
                if let Some(Value::List(more)) = rule.get_field_by_name("additional_bindings").as_deref() {
                    rules.extend(more.iter().filter_map(|v| v.as_message().cloned()));
                }
                for r in rules {
                    let route =
                        parse_rule(&method, &r).with_context(|| format!("{}: google.api.http", method.full_name()))?;
                    let key = (route.http_method.to_string(), route.openapi_path());
                    if !seen.insert(key.clone()) {
                        bail!("{} {} is bound twice (again by {})", key.0, key.1, method.full_name());
                    }
                    routes.push(route);
                }
            }
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.rank()));
        Ok(RouteTable { routes })
    }

    /// The route for a request, with its path variables.
    pub fn resolve(&self, method: &Method, path: &str) -> Resolved<'_> {
        let Some(rest) = path.strip_prefix('/') else { return Resolved::NotFound };
        let raw: Vec<&str> = rest.split('/').collect();
        let mut allowed = Vec::new();
        for route in &self.routes {
            if let Some(bound) = route.matches(&raw) {
                if route.http_method == *method {
                    return Resolved::Found(route, bound);
                }
                if !allowed.contains(&route.http_method) {
                    allowed.push(route.http_method.clone());
                }
            }
        }
        if allowed.is_empty() { Resolved::NotFound } else { Resolved::MethodNotAllowed(allowed) }
    }
}

fn string_field(m: &DynamicMessage, name: &str) -> Option<String> {
    m.get_field_by_name(name).and_then(|v| v.as_str().map(str::to_owned)).filter(|s| !s.is_empty())
}

fn parse_rule(method: &MethodDescriptor, rule: &DynamicMessage) -> anyhow::Result<Route> {
    let mut found = None;
    for (name, verb) in [
        ("get", Method::GET),
        ("put", Method::PUT),
        ("post", Method::POST),
        ("delete", Method::DELETE),
        ("patch", Method::PATCH),
    ] {
        if rule.has_field_by_name(name) {
            found = Some((verb, string_field(rule, name).unwrap_or_default()));
        }
    }
    if found.is_none()
        && rule.has_field_by_name("custom")
        && let Some(Value::Message(c)) = rule.get_field_by_name("custom").as_deref()
    {
        let kind = string_field(c, "kind").unwrap_or_default();
        let verb = Method::from_bytes(kind.as_bytes()).with_context(|| format!("custom verb {kind:?}"))?;
        found = Some((verb, string_field(c, "path").unwrap_or_default()));
    }
    let (http_method, template) = found.context("no verb and path")?;
    let (segments, verb) = parse_template(&template)?;
    let input = method.input();
    for s in &segments {
        if let Segment::Var(f) | Segment::Rest(f) = s {
            check_field_path(&input, f).with_context(|| format!("path variable {{{}}}", f.join(".")))?;
        }
    }
    let body = string_field(rule, "body");
    if let Some(b) = &body
        && b != "*"
        && input.get_field_by_name(b).is_none()
    {
        bail!("body field {b:?} is not a field of {}", input.full_name());
    }
    let response_body = string_field(rule, "response_body");
    if method.is_server_streaming() {
        bail!("server-streaming RPCs are not served over REST");
    }
    if method.is_client_streaming() && body.as_deref() != Some("*") {
        bail!("a client-streaming RPC takes the whole request as its body (body: \"*\")");
    }
    Ok(Route { http_method, template, segments, verb, method: method.clone(), body, response_body })
}

/// A path variable must name a singular string or number field.
fn check_field_path(input: &prost_reflect::MessageDescriptor, path: &[String]) -> anyhow::Result<()> {
    let mut msg = input.clone();
    for (i, name) in path.iter().enumerate() {
        let f =
            msg.get_field_by_name(name).with_context(|| format!("{name:?} is not a field of {}", msg.full_name()))?;
        if f.is_list() || f.is_map() {
            bail!("{name:?} is repeated");
        }
        match f.kind() {
            prost_reflect::Kind::Message(m) if i + 1 < path.len() => msg = m,
            prost_reflect::Kind::Message(_) => bail!("{name:?} is a message"),
            _ if i + 1 < path.len() => bail!("{name:?} is not a message"),
            _ => {}
        }
    }
    Ok(())
}

/// `/v1/accounts/{account.id}:verb` → segments and verb.
pub fn parse_template(template: &str) -> anyhow::Result<(Vec<Segment>, Option<String>)> {
    let Some(rest) = template.strip_prefix('/') else { bail!("{template:?} does not start with /") };
    // The verb follows the last segment, outside any variable.
    let (path, verb) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('}') && !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_owned())),
        _ => (rest, None),
    };
    let mut segments = Vec::new();
    for raw in path.split('/') {
        if raw.is_empty() {
            bail!("{template:?} has an empty segment");
        }
        if let Some(var) = raw.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            let (field, pattern) = match var.split_once('=') {
                Some((f, p)) => (f, p),
                None => (var, "*"),
            };
            let field: Vec<String> = field.split('.').map(str::to_owned).collect();
            match pattern {
                "*" => segments.push(Segment::Var(field)),
                "**" => segments.push(Segment::Rest(field)),
                other => bail!("{template:?}: variable pattern {other:?} is not supported (only * and **)"),
            }
        } else if raw.contains(['{', '}', '*']) {
            bail!("{template:?}: segment {raw:?} is not supported");
        } else {
            segments.push(Segment::Literal(raw.to_owned()));
        }
    }
    if segments.iter().enumerate().any(|(i, s)| matches!(s, Segment::Rest(_)) && i + 1 != segments.len()) {
        bail!("{template:?}: ** must be the last segment");
    }
    Ok((segments, verb))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::build(&crate::descriptor_pool().unwrap()).unwrap()
    }

    #[test]
    fn every_rpc_has_a_route() {
        let pool = crate::descriptor_pool().unwrap();
        let t = table();
        for s in crate::upstream::services(&pool) {
            for m in s.methods() {
                assert!(
                    t.routes.iter().any(|r| r.method.full_name() == m.full_name()),
                    "{} has no route",
                    m.full_name()
                );
            }
        }
    }

    #[test]
    fn paths_resolve_to_their_rpcs_with_variables() {
        let t = table();
        let found = |m: Method, p: &str| match t.resolve(&m, p) {
            Resolved::Found(r, b) => (r.method.name().to_owned(), b),
            _ => panic!("{m} {p} did not resolve"),
        };
        assert_eq!(found(Method::GET, "/v1/accounts").0, "ListAccounts");
        assert_eq!(found(Method::GET, "/v1/accounts:batchGet").0, "BatchGetAccounts");
        let (name, bound) = found(Method::GET, "/v1/accounts/a%20b");
        assert_eq!((name.as_str(), bound), ("GetAccount", vec![(vec!["id".to_owned()], "a b".to_owned())]));
        let (name, bound) = found(Method::PATCH, "/v1/accounts/x1");
        assert_eq!((name.as_str(), bound[0].0.clone()), ("UpdateAccount", vec!["account".to_owned(), "id".to_owned()]));
        assert_eq!(found(Method::POST, "/v1/segments/s1:evaluate").0, "EvaluateSegment");
        assert_eq!(found(Method::PUT, "/v1/health/accounts/a/measures/nps").0, "SetMeasureValue");
        assert_eq!(found(Method::GET, "/v1/touchMixRules").0, "GetTouchMixRules");
        assert_eq!(found(Method::PUT, "/v1/touchMixRules").0, "UpdateTouchMixRules");
        assert_eq!(found(Method::POST, "/v1/touchMixRules:preview").0, "PreviewTouchMixRules");
        assert!(matches!(t.resolve(&Method::PUT, "/v1/accounts/x"), Resolved::MethodNotAllowed(_)));
        assert!(matches!(t.resolve(&Method::GET, "/v1/nothing"), Resolved::NotFound));
        assert!(matches!(t.resolve(&Method::GET, "/v1/accounts/"), Resolved::NotFound));
        assert!(matches!(t.resolve(&Method::GET, "/v1/accounts/%FF"), Resolved::NotFound));
    }

    #[test]
    fn templates_parse_or_are_refused() {
        let (s, v) = parse_template("/v1/segments/{segment_id}:evaluate").unwrap();
        assert_eq!(
            s,
            vec![
                Segment::Literal("v1".into()),
                Segment::Literal("segments".into()),
                Segment::Var(vec!["segment_id".into()])
            ]
        );
        assert_eq!(v.as_deref(), Some("evaluate"));
        let (s, _) = parse_template("/v1/files/{name=**}").unwrap();
        assert_eq!(s[2], Segment::Rest(vec!["name".into()]));
        for bad in ["v1/x", "/v1//x", "/v1/{a=b/*}", "/v1/{a=**}/x", "/v1/x*"] {
            assert!(parse_template(bad).is_err(), "{bad}");
        }
    }
}
