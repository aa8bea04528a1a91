//! Authentication and tenancy: a bearer JWT names the caller's tenant,
//! subject and roles.
//!
//! [`AuthLayer`] validates the token on every gRPC call except health and
//! reflection (probes and tools carry no token) and puts the [`Caller`] in
//! the request's extensions; handlers read it with [`caller`] and check roles
//! with [`Caller::require`]. Missing or invalid token → UNAUTHENTICATED; too
//! weak a role → PERMISSION_DENIED.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{
    config::{AuthConfig, KeyAlgorithm},
    error::{Error, Result},
};

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

/// Verifies tokens with the configured keys.
pub struct Authenticator {
    keys: Vec<(DecodingKey, Validation)>,
}

impl Authenticator {
    pub fn from_config(cfg: &AuthConfig) -> anyhow::Result<Self> {
        let validation = |alg| {
            let mut v = Validation::new(alg);
            v.set_issuer(&[&cfg.issuer]);
            v.set_audience(&[&cfg.audience]);
            v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            v.leeway = 30;
            v
        };
        let mut keys = Vec::new();
        if let Some(pem) = &cfg.public_key_pem {
            let (key, alg) = match cfg.algorithm {
                KeyAlgorithm::Rs256 => (DecodingKey::from_rsa_pem(pem.as_bytes()), Algorithm::RS256),
                KeyAlgorithm::EdDsa => (DecodingKey::from_ed_pem(pem.as_bytes()), Algorithm::EdDSA),
            };
            let key = key.map_err(|e| anyhow::anyhow!("BANSO_JWT_PUBLIC_KEY is not a valid PEM key: {e}"))?;
            keys.push((key, validation(alg)));
        }
        if let Some(secret) = &cfg.hs256_secret {
            keys.push((DecodingKey::from_secret(secret.expose().as_bytes()), validation(Algorithm::HS256)));
        }
        anyhow::ensure!(!keys.is_empty(), "no token verification key configured");
        Ok(Authenticator { keys })
    }

    /// The caller named by an `authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Caller> {
        let header = header.ok_or_else(|| Error::Unauthenticated("missing bearer token".into()))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| Error::Unauthenticated("authorization must be \"Bearer <token>\"".into()))?
            .trim();
        let alg = jsonwebtoken::decode_header(token)
            .map_err(|e| Error::Unauthenticated(format!("malformed token: {e}")))?
            .alg;
        let (key, validation) = self
            .keys
            .iter()
            .find(|(_, v)| v.algorithms.contains(&alg))
            .ok_or_else(|| Error::Unauthenticated(format!("tokens signed with {alg:?} are not accepted")))?;
        let data = jsonwebtoken::decode::<Claims>(token, key, validation)
            .map_err(|e| Error::Unauthenticated(format!("invalid token: {e}")))?;
        let c = data.claims;
        if !valid_tenant_id(&c.tenant_id) {
            return Err(Error::Unauthenticated(format!("invalid token: tenant_id {:?} is malformed", c.tenant_id)));
        }
        let mut roles = Vec::new();
        for r in &c.roles {
            // Unknown roles grant nothing rather than failing the token: an
            // issuer may carry roles of other systems.
            if let Some(role) = Role::parse(r) {
                roles.push(role);
            }
        }
        Ok(Caller { tenant_id: c.tenant_id, subject: c.sub, roles })
    }
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

/// gRPC paths served without a token: probes and schema discovery.
fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.v1.ServerReflection/")
        || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")
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
        if !is_public(req.uri().path()) {
            let header = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            match self.auth.authenticate(header) {
                Ok(caller) => {
                    tracing::Span::current().record("tenant_id", caller.tenant_id.as_str());
                    req.extensions_mut().insert(caller);
                }
                Err(e) => {
                    let status = tonic::Status::from(e);
                    return Box::pin(async move { Ok(status.into_http()) });
                }
            }
        }
        // Take the service that was driven to readiness; leave a clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn cfg() -> AuthConfig {
        AuthConfig {
            hs256_secret: Some(Secret::new("0123456789abcdef0123456789abcdef")),
            public_key_pem: None,
            algorithm: KeyAlgorithm::Rs256,
            issuer: "banso".into(),
            audience: "banso".into(),
        }
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
