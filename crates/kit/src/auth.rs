//! Authentication and tenancy: a bearer JWT names the caller's tenant,
//! subject and roles.
//!
//! [`AuthLayer`] validates the token on every gRPC call except those of the
//! [`PUBLIC_SERVICES`] (health and reflection: probes and tools carry no
//! token; the survey answer path: a customer has none) and puts the [`Caller`] in
//! the request's extensions; handlers read it with [`caller`] and check roles
//! with [`Caller::require`]. Missing or invalid token → UNAUTHENTICATED; too
//! weak a role → PERMISSION_DENIED.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{
    config::{AuthConfig, KeyAlgorithm},
    error::{Error, Result},
};

mod jwks;

pub use jwks::{JWKS_REFRESH_TOTAL, KID_REFRESH_INTERVAL};

/// What a caller may do. Reads need any role; writes need admin, csm or
/// service; tenant administration needs admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Administers the tenant: settings, scorecards, everything a CSM can do.
    Admin,
    /// A customer success manager: reads and changes customer data.
    Csm,
    /// Reads only.
    Viewer,
    /// Another system (CRM sync, tracking): reads and writes data.
    Service,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "csm" => Some(Role::Csm),
            "viewer" => Some(Role::Viewer),
            "service" => Some(Role::Service),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Csm => "csm",
            Role::Viewer => "viewer",
            Role::Service => "service",
        }
    }
}

/// What an operation needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Admin,
}

impl Access {
    fn allows(self, role: Role) -> bool {
        match self {
            Access::Read => true,
            Access::Write => matches!(role, Role::Admin | Role::Csm | Role::Service),
            Access::Admin => role == Role::Admin,
        }
    }
}

/// A tenant id: 1 to 64 characters of `[A-Za-z0-9_-]`.
pub fn valid_tenant_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant_id: String,
    pub subject: String,
    pub roles: Vec<Role>,
}

impl Caller {
    /// PERMISSION_DENIED unless one of the caller's roles allows `access`.
    pub fn require(&self, access: Access) -> Result<()> {
        if self.roles.iter().any(|r| access.allows(*r)) {
            return Ok(());
        }
        let roles: Vec<_> = self.roles.iter().map(|r| r.as_str()).collect();
        let needed = match access {
            Access::Read => "any role",
            Access::Write => "role admin, csm or service",
            Access::Admin => "role admin",
        };
        Err(Error::PermissionDenied(format!("this call needs {needed}; the caller has [{}]", roles.join(", "))))
    }
}

/// The caller that [`AuthLayer`] put in the request.
pub fn caller<T>(req: &tonic::Request<T>) -> Result<Caller> {
    req.extensions().get::<Caller>().cloned().ok_or_else(|| Error::Unauthenticated("missing bearer token".into()))
}

/// The claims of a Banso token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tenant_id: String,
    pub roles: Vec<String>,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
}

/// Verifies tokens with the configured keys: an HS256 secret (tokens Banso
/// mints itself), a static PEM public key, an identity provider's JWKS —
/// any of them together. The token header's `alg` (and `kid`) picks the key.
pub struct Authenticator {
    hs256: Option<(DecodingKey, Validation)>,
    /// Service tokens ([`ServiceTokens`]), told apart by their `kid`.
    service: Option<(DecodingKey, Validation)>,
    public_key: Option<(DecodingKey, Validation)>,
    jwks: Option<jwks::Jwks>,
    audience: String,
    /// Claim names of tokens from the public key and the JWKS.
    tenant_claim: String,
    roles_claim: String,
}

/// What one look at the keys decided.
enum Step {
    Done(Result<Caller>),
    /// No JWKS key for the token (yet): a fetch may help. `generation` is the
    /// key set looked at; `why` the error if it does not.
    Refresh {
        generation: u64,
        why: String,
    },
}

fn validation(alg: Algorithm, issuer: &str, audience: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.leeway = 30;
    v
}

fn unauthenticated(msg: impl Into<String>) -> Error {
    Error::Unauthenticated(msg.into())
}

impl Authenticator {
    /// Builds the verifier; with a JWKS configured it starts fetching the
    /// keys in the background (so it needs a tokio runtime) and returns at
    /// once: tokens fail until the first fetch succeeds.
    pub fn from_config(cfg: &AuthConfig) -> anyhow::Result<Self> {
        let public_key = match &cfg.public_key_pem {
            Some(pem) => {
                let (key, alg) = match cfg.algorithm {
                    KeyAlgorithm::Rs256 => (DecodingKey::from_rsa_pem(pem.as_bytes()), Algorithm::RS256),
                    KeyAlgorithm::EdDsa => (DecodingKey::from_ed_pem(pem.as_bytes()), Algorithm::EdDSA),
                };
                let key = key.map_err(|e| anyhow::anyhow!("BANSO_JWT_PUBLIC_KEY is not a valid PEM key: {e}"))?;
                Some((key, validation(alg, &cfg.issuer, &cfg.audience)))
            }
            None => None,
        };
        let hs256 = cfg.hs256_secret.as_ref().map(|secret| {
            (
                DecodingKey::from_secret(secret.expose().as_bytes()),
                validation(Algorithm::HS256, &cfg.issuer, &cfg.audience),
            )
        });
        let jwks = match &cfg.jwks {
            Some(j) => Some(jwks::Jwks::start(j, cfg.issuer_set.then(|| cfg.issuer.clone()))?),
            None => None,
        };
        anyhow::ensure!(
            hs256.is_some() || public_key.is_some() || jwks.is_some(),
            "no token verification key configured"
        );
        let service = cfg.service_token_secret.as_ref().map(|secret| {
            (
                DecodingKey::from_secret(secret.expose().as_bytes()),
                validation(Algorithm::HS256, SERVICE_TOKEN_ISSUER, &cfg.audience),
            )
        });
        Ok(Authenticator {
            hs256,
            service,
            public_key,
            jwks,
            audience: cfg.audience.clone(),
            tenant_claim: cfg.tenant_claim.clone(),
            roles_claim: cfg.roles_claim.clone(),
        })
    }

    /// Stops fetching JWKS keys when `shutdown` fires (they also stop when
    /// the authenticator is dropped).
    pub fn stop_on(&self, shutdown: &CancellationToken) {
        if let Some(j) = &self.jwks {
            j.stop_on(shutdown);
        }
    }

    /// The caller named by an `authorization` header value. Never waits: a
    /// token whose `kid` the JWKS cache lacks is refused ("refreshing") and a
    /// fetch is started, so a retry succeeds once the provider's new key is in.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Caller> {
        let token = bearer(header)?;
        match self.step(token) {
            Step::Done(r) => r,
            Step::Refresh { why, .. } => {
                if let Some(j) = &self.jwks {
                    j.request_refresh();
                }
                Err(unauthenticated(format!("{why}; refreshing")))
            }
        }
    }

    /// As [`Authenticator::authenticate`], but a token whose `kid` is unknown
    /// waits for a fetch of the JWKS (rate-limited, one at a time), so a key
    /// the provider has just rotated in is accepted on the first call.
    pub async fn authenticate_async(&self, header: Option<&str>) -> Result<Caller> {
        let token = bearer(header)?;
        let (generation, why) = match self.step(token) {
            Step::Done(r) => return r,
            Step::Refresh { generation, why } => (generation, why),
        };
        let Some(j) = &self.jwks else { return Err(unauthenticated(why)) };
        if !j.refresh_for_unknown_kid(generation).await {
            return Err(unauthenticated(why));
        }
        match self.step(token) {
            Step::Done(r) => r,
            Step::Refresh { why, .. } => Err(unauthenticated(why)),
        }
    }

    fn step(&self, token: &str) -> Step {
        let header = match jsonwebtoken::decode_header(token) {
            Ok(h) => h,
            Err(e) => return Step::Done(Err(malformed(token, e))),
        };
        let alg = header.alg;
        let not_accepted = || unauthenticated(format!("tokens signed with {alg:?} are not accepted"));
        if header.kid.as_deref() == Some(SERVICE_TOKEN_KID) {
            return Step::Done(match &self.service {
                Some((key, v)) if v.algorithms.contains(&alg) => self.verify_service(token, key, v),
                Some(_) => Err(not_accepted()),
                None => {
                    Err(unauthenticated("service tokens are not accepted here: BANSO_SERVICE_TOKEN_SECRET is not set"))
                }
            });
        }
        if alg.family() == AlgorithmFamily::Hmac {
            // Only ever the configured secret: never a JWKS or public key
            // (algorithm confusion).
            return Step::Done(match &self.hs256 {
                Some((key, v)) if v.algorithms.contains(&alg) => self.verify(token, key, v, false),
                _ => Err(not_accepted()),
            });
        }
        let static_key = self.public_key.as_ref().filter(|(_, v)| v.algorithms.contains(&alg));
        let Some(jwks) = &self.jwks else {
            return Step::Done(match static_key {
                Some((key, v)) => self.verify(token, key, v, true),
                None => Err(not_accepted()),
            });
        };
        let set = jwks.snapshot();
        let url = jwks.url();
        if let Some(kid) = &header.kid
            && let Some(key) = set.by_kid.get(kid)
        {
            return Step::Done(self.verify_jwk(token, alg, key, &set));
        }
        if let Some((key, v)) = static_key {
            let r = self.verify(token, key, v, true);
            // A token of the static key's algorithm with an unknown kid
            // may still be the identity provider's, signed with a new key.
            if r.is_ok() || header.kid.is_none() {
                return Step::Done(r);
            }
        }
        if set.generation == 0 {
            return Step::Refresh { generation: 0, why: format!("no signing keys from {url} yet") };
        }
        match &header.kid {
            Some(kid) => Step::Refresh { generation: set.generation, why: format!("key id {kid:?} unknown to {url}") },
            None => {
                // No kid: any key of the set that takes this algorithm.
                let mut last = None;
                for key in set.all.iter().filter(|k| k.algorithms.contains(&alg)) {
                    match self.verify_jwk(token, alg, key, &set) {
                        Ok(c) => return Step::Done(Ok(c)),
                        Err(e) => last = Some(e),
                    }
                }
                Step::Done(Err(last.unwrap_or_else(|| {
                    unauthenticated(format!("no key of {url} takes {alg:?} tokens (and the token names no kid)"))
                })))
            }
        }
    }

    fn verify_jwk(&self, token: &str, alg: Algorithm, key: &jwks::Key, set: &jwks::KeySet) -> Result<Caller> {
        if !key.algorithms.contains(&alg) {
            let kid = key.kid.as_deref().unwrap_or_default();
            return Err(unauthenticated(format!(
                "key {kid:?} verifies {:?} tokens, not {alg:?}",
                key.algorithms.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join("/")
            )));
        }
        let issuer = set.issuer.as_deref().unwrap_or_default();
        self.verify(token, &key.key, &validation(alg, issuer, &self.audience), true)
    }

    /// A service token: signed with the service key, for one tenant, with
    /// the `service` role alone and a `service:` subject — a service acts
    /// for any tenant, so it may never carry more than it needs.
    fn verify_service(&self, token: &str, key: &DecodingKey, v: &Validation) -> Result<Caller> {
        let caller = self.verify(token, key, v, false)?;
        if caller.roles != [Role::Service] || !caller.subject.starts_with(SERVICE_SUBJECT_PREFIX) {
            return Err(unauthenticated(format!(
                "invalid service token: subject {:?} with roles {:?}; a service token carries the service role alone",
                caller.subject,
                caller.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()
            )));
        }
        Ok(caller)
    }

    /// Checks the signature and the standard claims, then reads the
    /// caller. `external`: the token comes from an identity provider, whose
    /// claim names are configured; Banso's own (HS256) use Banso's names.
    fn verify(&self, token: &str, key: &DecodingKey, v: &Validation, external: bool) -> Result<Caller> {
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, key, v)
            .map_err(|e| unauthenticated(format!("invalid token: {}", describe(&e, v))))?;
        let (tenant_claim, roles_claim) =
            if external { (self.tenant_claim.as_str(), self.roles_claim.as_str()) } else { ("tenant_id", "roles") };
        caller_from_claims(&data.claims, tenant_claim, roles_claim)
    }
}

/// The token of an `authorization` header value.
fn bearer(header: Option<&str>) -> Result<&str> {
    let header = header.ok_or_else(|| unauthenticated("missing bearer token"))?;
    Ok(header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or_else(|| unauthenticated("authorization must be \"Bearer <token>\""))?
        .trim())
}

/// A header jsonwebtoken cannot read; `alg: none` (which it has no name
/// for) is named as such.
fn malformed(token: &str, e: jsonwebtoken::errors::Error) -> Error {
    use base64::Engine as _;
    let alg = token
        .split('.')
        .next()
        .and_then(|h| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h.trim_end_matches('=')).ok())
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .and_then(|h| h.get("alg").and_then(|a| a.as_str()).map(str::to_owned));
    match alg {
        Some(alg) if alg.eq_ignore_ascii_case("none") => {
            unauthenticated("tokens signed with alg \"none\" are not accepted")
        }
        Some(alg) if !KNOWN_ALGS.contains(&alg.as_str()) => {
            unauthenticated(format!("tokens signed with {alg:?} are not accepted"))
        }
        _ => unauthenticated(format!("malformed token: {e}")),
    }
}

const KNOWN_ALGS: &[&str] =
    &["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// jsonwebtoken's error, with the value that was expected where it helps.
fn describe(e: &jsonwebtoken::errors::Error, v: &Validation) -> String {
    use jsonwebtoken::errors::ErrorKind;
    let list = |s: &Option<std::collections::HashSet<String>>| {
        s.as_ref().map(|s| s.iter().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default()
    };
    match e.kind() {
        ErrorKind::InvalidIssuer => format!("issuer is not {}", list(&v.iss)),
        ErrorKind::InvalidAudience => format!("audience is not {}", list(&v.aud)),
        ErrorKind::ExpiredSignature => "token has expired".into(),
        _ => e.to_string(),
    }
}

/// A claim by name, or else by dotted path (`realm_access.roles`): a name
/// may itself hold dots (`https://banso.example/roles`).
fn claim<'a>(claims: &'a serde_json::Map<String, serde_json::Value>, name: &str) -> Option<&'a serde_json::Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

fn caller_from_claims(
    claims: &serde_json::Map<String, serde_json::Value>,
    tenant_claim: &str,
    roles_claim: &str,
) -> Result<Caller> {
    let subject = match claims.get("sub") {
        Some(serde_json::Value::String(s)) => s.clone(),
        _ => return Err(unauthenticated("invalid token: sub is not a string")),
    };
    let tenant_id = match claim(claims, tenant_claim) {
        Some(serde_json::Value::String(s)) if valid_tenant_id(s) => s.clone(),
        Some(serde_json::Value::String(s)) => {
            return Err(unauthenticated(format!("invalid token: {tenant_claim} {s:?} is malformed")));
        }
        Some(_) => return Err(unauthenticated(format!("invalid token: {tenant_claim} is not a string"))),
        None => return Err(unauthenticated(format!("invalid token: no tenant claim {tenant_claim:?}"))),
    };
    let names: Vec<&str> = match claim(claims, roles_claim) {
        None => Vec::new(),
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
        // As OAuth's `scope`: names separated by spaces.
        Some(serde_json::Value::String(s)) => s.split_whitespace().collect(),
        Some(_) => {
            return Err(unauthenticated(format!(
                "invalid token: {roles_claim} is neither a list nor a space-separated string"
            )));
        }
    };
    // Unknown roles grant nothing rather than failing the token: an issuer
    // may carry roles of other systems.
    let mut roles: Vec<Role> = names.into_iter().filter_map(Role::parse).collect();
    roles.dedup();
    Ok(Caller { tenant_id, subject, roles })
}

/// Mints HS256 tokens: for development (`banso token`, `banso up`) and tests.
#[derive(Clone)]
pub struct DevTokenIssuer {
    key: EncodingKey,
    issuer: String,
    audience: String,
}

impl DevTokenIssuer {
    pub fn new(secret: &str, issuer: &str, audience: &str) -> Self {
        DevTokenIssuer {
            key: EncodingKey::from_secret(secret.as_bytes()),
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }

    pub fn from_config(cfg: &AuthConfig) -> Option<Self> {
        cfg.hs256_secret.as_ref().map(|s| Self::new(s.expose(), &cfg.issuer, &cfg.audience))
    }

    #[allow(clippy::expect_used, reason = "HS256 over claims of strings and numbers cannot fail")]
    pub fn mint(&self, tenant_id: &str, subject: &str, roles: &[Role], ttl: Duration) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = Claims {
            sub: subject.into(),
            tenant_id: tenant_id.into(),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now + ttl.as_secs(),
            iat: now,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key).expect("HS256 signing cannot fail")
    }
}

/// The `kid` of service tokens: picks the service key among the HS256 ones.
pub const SERVICE_TOKEN_KID: &str = "banso-service";
/// The issuer of service tokens.
pub const SERVICE_TOKEN_ISSUER: &str = "banso-service";
/// Subjects of service tokens start with it: `service:playbooks`.
pub const SERVICE_SUBJECT_PREFIX: &str = "service:";
/// How long a service token lives; [`ServiceTokens::token`] mints a new one
/// when the cached one has less than a minute left.
const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(300);

/// Mints the tokens one Banso service calls another with: the `service`
/// role, for the tenant it acts for, signed with `BANSO_SERVICE_TOKEN_SECRET`
/// (shared by the services, never given to users), cached per tenant.
#[derive(Clone)]
pub struct ServiceTokens {
    key: EncodingKey,
    audience: String,
    subject: String,
    cache: Arc<std::sync::Mutex<std::collections::HashMap<String, (String, u64)>>>,
}

impl std::fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTokens").field("subject", &self.subject).finish_non_exhaustive()
    }
}

impl ServiceTokens {
    /// Tokens of `service` (`playbooks`), if a service key is configured.
    pub fn from_config(cfg: &AuthConfig, service: &str) -> Option<Self> {
        cfg.service_token_secret.as_ref().map(|secret| ServiceTokens {
            key: EncodingKey::from_secret(secret.expose().as_bytes()),
            audience: cfg.audience.clone(),
            subject: format!("{SERVICE_SUBJECT_PREFIX}{service}"),
            cache: Default::default(),
        })
    }

    /// The subject the tokens name: `service:playbooks`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// A bearer token acting for `tenant_id`.
    #[allow(clippy::expect_used, reason = "HS256 over claims of strings and numbers cannot fail")]
    pub fn token(&self, tenant_id: &str) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((token, exp)) = cache.get(tenant_id)
            && *exp > now + 60
        {
            return token.clone();
        }
        let exp = now + SERVICE_TOKEN_TTL.as_secs();
        let claims = Claims {
            sub: self.subject.clone(),
            tenant_id: tenant_id.into(),
            roles: vec![Role::Service.as_str().to_owned()],
            iss: SERVICE_TOKEN_ISSUER.into(),
            aud: self.audience.clone(),
            exp,
            iat: now,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(SERVICE_TOKEN_KID.into());
        let token = jsonwebtoken::encode(&header, &claims, &self.key).expect("HS256 signing cannot fail");
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(tenant_id.to_owned(), (token.clone(), exp));
        token
    }
}

/// The gRPC services served without a token: probes, schema discovery, and
/// the survey answer path, whose only credential is the invitation's signed
/// response token (banso.feedback.v1; it answers nothing else). The one
/// list: [`AuthLayer`] lets their calls through, and the gateway's OpenAPI
/// document declares no security for their routes.
pub const PUBLIC_SERVICES: &[&str] = &[
    "grpc.health.v1.Health",
    "banso.feedback.v1.SurveyResponseService",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Whether the service of this full name (`banso.feedback.v1.SurveyResponseService`)
/// is served without a token.
pub fn is_public_service(full_name: &str) -> bool {
    PUBLIC_SERVICES.contains(&full_name)
}

/// Whether the gRPC path `/<service>/<method>` is served without a token.
pub fn is_public_path(path: &str) -> bool {
    path.strip_prefix('/').and_then(|p| p.split_once('/')).is_some_and(|(service, _)| is_public_service(service))
}

/// Tower layer that authenticates every non-public gRPC call.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<Authenticator>,
}

impl AuthLayer {
    pub fn new(auth: Arc<Authenticator>) -> Self {
        AuthLayer { auth }
    }

    /// Stops the authenticator's background work (JWKS fetching) when
    /// `shutdown` fires.
    pub fn stop_on(&self, shutdown: &CancellationToken) {
        self.auth.stop_on(shutdown);
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, auth: self.auth.clone() }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // Take the service that was driven to readiness; leave a clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if is_public_path(req.uri().path()) {
            return Box::pin(inner.call(req));
        }
        let header = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        // Verification is synchronous but for an unknown JWKS `kid`, which
        // waits for a fetch of the provider's keys.
        let auth = self.auth.clone();
        let span = tracing::Span::current();
        Box::pin(async move {
            match auth.authenticate_async(header.as_deref()).await {
                Ok(caller) => {
                    span.record("tenant_id", caller.tenant_id.as_str());
                    req.extensions_mut().insert(caller);
                    inner.call(req).await
                }
                Err(e) => Ok(tonic::Status::from(e).into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn cfg() -> AuthConfig {
        AuthConfig { hs256_secret: Some(Secret::new("0123456789abcdef0123456789abcdef")), ..AuthConfig::default() }
    }

    #[test]
    fn public_paths_are_the_methods_of_the_public_services() {
        assert!(is_public_path("/grpc.health.v1.Health/Check"));
        assert!(is_public_path("/banso.feedback.v1.SurveyResponseService/SubmitSurveyAnswer"));
        assert!(is_public_path("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
        for private in [
            "/banso.feedback.v1.SurveysService/CreateSurvey",
            "/banso.feedback.v1.SurveyResponseServiceX/GetSurveyForm",
            "/banso.feedback.v1.SurveyResponseService",
            "banso.feedback.v1.SurveyResponseService/GetSurveyForm",
            "/",
            "",
        ] {
            assert!(!is_public_path(private), "{private}");
        }
        assert!(is_public_service("banso.feedback.v1.SurveyResponseService"));
        assert!(!is_public_service("banso.feedback.v1.SurveysService"));
    }

    #[test]
    fn minted_tokens_authenticate() {
        let auth = Authenticator::from_config(&cfg()).unwrap();
        let issuer = DevTokenIssuer::from_config(&cfg()).unwrap();
        let token = issuer.mint("acme", "alice", &[Role::Csm], Duration::from_secs(60));
        let caller = auth.authenticate(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(caller.tenant_id, "acme");
        assert_eq!(caller.roles, vec![Role::Csm]);
        assert!(caller.require(Access::Write).is_ok());
        assert!(matches!(caller.require(Access::Admin), Err(Error::PermissionDenied(_))));
    }

    fn with_service_key() -> AuthConfig {
        AuthConfig { service_token_secret: Some(Secret::new("s".repeat(32))), ..cfg() }
    }

    #[test]
    fn service_tokens_act_for_one_tenant_with_the_service_role_alone() {
        let auth = Authenticator::from_config(&with_service_key()).unwrap();
        let tokens = ServiceTokens::from_config(&with_service_key(), "playbooks").unwrap();
        let t = tokens.token("acme");
        assert_eq!(tokens.token("acme"), t, "cached");
        let caller = auth.authenticate(Some(&format!("Bearer {t}"))).unwrap();
        assert_eq!((caller.tenant_id.as_str(), caller.subject.as_str()), ("acme", "service:playbooks"));
        assert_eq!(caller.roles, vec![Role::Service]);
        assert!(caller.require(Access::Write).is_ok());
        assert!(caller.require(Access::Admin).is_err());
        assert_eq!(auth.authenticate(Some(&format!("Bearer {}", tokens.token("globex")))).unwrap().tenant_id, "globex");

        // Where no service key is configured, service tokens are refused…
        let plain = Authenticator::from_config(&cfg()).unwrap();
        let err = plain.authenticate(Some(&format!("Bearer {t}"))).unwrap_err();
        assert!(err.to_string().contains("BANSO_SERVICE_TOKEN_SECRET"), "{err}");
        // …and a service token signed with the user key (or the other way
        // round) is not one.
        let user_key = ServiceTokens::from_config(
            &AuthConfig { service_token_secret: Some(Secret::new("0123456789abcdef0123456789abcdef")), ..cfg() },
            "playbooks",
        )
        .unwrap();
        assert!(auth.authenticate(Some(&format!("Bearer {}", user_key.token("acme")))).is_err());

        // A token of the service key with more than the service role is refused.
        let key = EncodingKey::from_secret("s".repeat(32).as_bytes());
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(SERVICE_TOKEN_KID.into());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let claims = |sub: &str, roles: &[&str]| Claims {
            sub: sub.into(),
            tenant_id: "acme".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            iss: SERVICE_TOKEN_ISSUER.into(),
            aud: "banso".into(),
            exp: now + 60,
            iat: now,
        };
        for (sub, roles) in [("service:x", &["service", "admin"][..]), ("alice", &["service"][..])] {
            let t = jsonwebtoken::encode(&header, &claims(sub, roles), &key).unwrap();
            let err = auth.authenticate(Some(&format!("Bearer {t}"))).unwrap_err();
            assert!(err.to_string().contains("service role alone"), "{err}");
        }
    }

    #[test]
    fn wrong_key_issuer_audience_or_expiry_is_unauthenticated() {
        let auth = Authenticator::from_config(&cfg()).unwrap();
        let other = DevTokenIssuer::new("another-secret-another-secret-000", "banso", "banso");
        let t = other.mint("acme", "a", &[Role::Admin], Duration::from_secs(60));
        assert!(matches!(auth.authenticate(Some(&format!("Bearer {t}"))), Err(Error::Unauthenticated(_))));
        let wrong_iss = DevTokenIssuer::new("0123456789abcdef0123456789abcdef", "evil", "banso");
        let t = wrong_iss.mint("acme", "a", &[Role::Admin], Duration::from_secs(60));
        assert!(auth.authenticate(Some(&format!("Bearer {t}"))).is_err());
        let wrong_aud = DevTokenIssuer::new("0123456789abcdef0123456789abcdef", "banso", "other");
        let t = wrong_aud.mint("acme", "a", &[Role::Admin], Duration::from_secs(60));
        assert!(auth.authenticate(Some(&format!("Bearer {t}"))).is_err());
        assert!(auth.authenticate(None).is_err());
        assert!(auth.authenticate(Some("Basic abc")).is_err());
        assert!(auth.authenticate(Some("Bearer not.a.jwt")).is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let auth = Authenticator::from_config(&cfg()).unwrap();
        let key = EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
        let claims = Claims {
            sub: "a".into(),
            tenant_id: "acme".into(),
            roles: vec!["admin".into()],
            iss: "banso".into(),
            aud: "banso".into(),
            exp: 1_000_000,
            iat: 999_000,
        };
        let t = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        assert!(matches!(auth.authenticate(Some(&format!("Bearer {t}"))), Err(Error::Unauthenticated(_))));
    }

    #[test]
    fn viewer_reads_but_does_not_write() {
        let viewer = Caller { tenant_id: "t".into(), subject: "v".into(), roles: vec![Role::Viewer] };
        assert!(viewer.require(Access::Read).is_ok());
        assert!(matches!(viewer.require(Access::Write), Err(Error::PermissionDenied(_))));
    }
}
