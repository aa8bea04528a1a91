//! Configuration from `BANSO_*` environment variables, optionally a TOML file.
//!
//! Layering: defaults, then the file named by `BANSO_CONFIG_FILE` (keys are
//! the variable names without the prefix, lower case: `grpc_addr = "…"`),
//! then the environment. Every value is parsed and checked at start; a bad
//! one stops start-up with a message naming the variable. Secrets are held
//! in [`Secret`], whose `Debug` and `Display` never show the value.
//!
//! This module is the only code that reads the process environment
//! (`clippy.toml` forbids `std::env::var*` elsewhere). A service's own
//! settings (`BANSO_HEALTH_*`, …) are read from [`Config::vars`] with the
//! same typed getters, so a file value reaches them too. The standard
//! `OTEL_*` variables and `RUST_LOG` are read here as well.

use std::{collections::BTreeMap, fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

pub const PREFIX: &str = "BANSO_";
/// Other variables configuration reads: OpenTelemetry's and the log filter.
const OTHER_PREFIXES: &[&str] = &["OTEL_", "RUST_LOG"];

/// A value that must never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("configuration variable {var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human format on a terminal, JSON otherwise.
    Auto,
    Json,
    Pretty,
}

/// Which algorithm production tokens are signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rs256,
    EdDsa,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `postgres://…` or `sqlite://path`; when unset the service uses a SQLite
    /// file under `data_dir`.
    pub url: Option<Secret>,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout: Duration,
    /// `BANSO_DATABASE_CA_FILE`: the CA that signed PostgreSQL's certificate
    /// (as the URL's `sslrootcert=` would name it), for `sslmode=verify-ca`
    /// or `verify-full` against a private CA.
    pub ca_file: Option<PathBuf>,
    /// `BANSO_MIGRATE_DATABASE_URL`: what `banso migrate` connects with (a
    /// role that may change the schema); `url` when unset.
    pub migrate_url: Option<Secret>,
    /// `BANSO_MIGRATE_ON_START`: apply pending migrations when a service
    /// starts (`banso up`, tests). Off by default: `serve` only checks that
    /// the schema is the one it was built for, and `banso migrate` (a Job
    /// run once per release) changes it.
    pub migrate_on_start: bool,
    /// `BANSO_READINESS_PROBE_SECS`: how often readiness runs `SELECT 1`
    /// against the service's pool (also the probe's timeout).
    pub probe_interval: Duration,
}

/// The defaults of the settings, for pools built in code (the embedded bus, tests).
impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            ca_file: None,
            migrate_url: None,
            migrate_on_start: false,
            probe_interval: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// HS256 shared secret: development only.
    pub hs256_secret: Option<Secret>,
    /// PEM public key (RS256 or EdDSA) for production tokens.
    pub public_key_pem: Option<String>,
    pub algorithm: KeyAlgorithm,
    /// `BANSO_JWT_ISSUER` (default `banso`).
    pub issuer: String,
    /// Whether `BANSO_JWT_ISSUER` was set: with OIDC discovery an unset
    /// issuer means "the one the discovery document names".
    pub issuer_set: bool,
    pub audience: String,
    /// Keys from an identity provider's JWKS, fetched and refreshed.
    pub jwks: Option<JwksConfig>,
    /// `BANSO_JWT_TENANT_CLAIM`: the claim (or dotted path) holding the tenant id.
    pub tenant_claim: String,
    /// `BANSO_JWT_ROLES_CLAIM`: the claim (or dotted path) holding the roles.
    pub roles_claim: String,
    /// `BANSO_SERVICE_TOKEN_SECRET`: the HS256 key Banso's services sign the
    /// tokens they call each other with (the `service` role, for the tenant
    /// they act for), shared by every service. Unset: no service calls
    /// another, and service tokens are refused.
    pub service_token_secret: Option<Secret>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            hs256_secret: None,
            public_key_pem: None,
            algorithm: KeyAlgorithm::Rs256,
            issuer: "banso".into(),
            issuer_set: false,
            audience: "banso".into(),
            jwks: None,
            tenant_claim: "tenant_id".into(),
            service_token_secret: None,
            roles_claim: "roles".into(),
        }
    }
}

/// Where the signing keys of an identity provider are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksLocation {
    /// `BANSO_JWT_OIDC_ISSUER_URL`: the issuer; its discovery document
    /// (`<issuer>/.well-known/openid-configuration`) names the JWKS.
    Discovery(String),
    /// `BANSO_JWT_JWKS_URL`: the JWKS itself.
    Direct(String),
}

#[derive(Debug, Clone)]
pub struct JwksConfig {
    pub location: JwksLocation,
    /// `BANSO_JWT_JWKS_CA_FILE`: a private CA for an https identity provider
    /// (the system's and Mozilla's roots are trusted too).
    pub ca_file: Option<PathBuf>,
    /// `BANSO_JWT_JWKS_REFRESH_SECS` (default 300): how often the keys are
    /// fetched again, so a key the provider removed stops verifying.
    pub refresh: Duration,
}

impl JwksConfig {
    fn from_vars(v: &Vars) -> Result<Option<Self>, ConfigError> {
        let url = |name: &str| -> Result<Option<String>, ConfigError> {
            let Some(raw) = v.get(name) else { return Ok(None) };
            let raw = raw.trim();
            let parsed = reqwest::Url::parse(raw)
                .map_err(|e| ConfigError { var: name.into(), reason: format!("{raw:?} is not a URL: {e}") })?;
            if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
                return Err(ConfigError {
                    var: name.into(),
                    reason: format!("{raw:?} must be an http:// or https:// URL with a host"),
                });
            }
            Ok(Some(raw.to_owned()))
        };
        let location = match (url("BANSO_JWT_OIDC_ISSUER_URL")?, url("BANSO_JWT_JWKS_URL")?) {
            (Some(_), Some(_)) => {
                return Err(ConfigError {
                    var: "BANSO_JWT_JWKS_URL".into(),
                    reason: "set BANSO_JWT_OIDC_ISSUER_URL (discovery) or BANSO_JWT_JWKS_URL, not both".into(),
                });
            }
            (Some(issuer), None) => JwksLocation::Discovery(issuer),
            (None, Some(jwks)) => {
                if v.get("BANSO_JWT_ISSUER").is_none() {
                    return Err(ConfigError {
                        var: "BANSO_JWT_ISSUER".into(),
                        reason: "is required with BANSO_JWT_JWKS_URL: the `iss` your identity provider puts in \
                                 its tokens (or set BANSO_JWT_OIDC_ISSUER_URL to discover it)"
                            .into(),
                    });
                }
                JwksLocation::Direct(jwks)
            }
            (None, None) => {
                for name in ["BANSO_JWT_JWKS_CA_FILE", "BANSO_JWT_JWKS_REFRESH_SECS"] {
                    if v.get(name).is_some() {
                        return Err(ConfigError {
                            var: name.into(),
                            reason: "has no effect without BANSO_JWT_OIDC_ISSUER_URL or BANSO_JWT_JWKS_URL".into(),
                        });
                    }
                }
                return Ok(None);
            }
        };
        let refresh = v.secs("BANSO_JWT_JWKS_REFRESH_SECS", 300.0)?;
        if refresh < Duration::from_millis(100) {
            return Err(ConfigError {
                var: "BANSO_JWT_JWKS_REFRESH_SECS".into(),
                reason: format!("{} is too short; use at least 0.1 (seconds)", refresh.as_secs_f64()),
            });
        }
        Ok(Some(JwksConfig { location, ca_file: v.readable_file("BANSO_JWT_JWKS_CA_FILE")?, refresh }))
    }
}

/// A claim name setting: a top-level name or a dotted path, no empty parts.
fn claim_name(v: &Vars, name: &str, default: &str) -> Result<String, ConfigError> {
    let value = v.get(name).map(str::trim).unwrap_or(default);
    if value.split('.').any(str::is_empty) {
        return Err(ConfigError {
            var: name.into(),
            reason: format!("{value:?} is not a claim name or a dotted path like realm_access.roles"),
        });
    }
    Ok(value.to_owned())
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub grpc_addr: SocketAddr,
    /// Admin HTTP port: Prometheus `/metrics`. `None` turns it off.
    pub admin_addr: Option<SocketAddr>,
    pub request_timeout: Duration,
    pub concurrency_limit: usize,
    pub max_message_bytes: usize,
    /// After SIGTERM: how long health reports NOT_SERVING while still serving,
    /// so load balancers stop routing before connections close.
    pub shutdown_delay: Duration,
    /// After that: how long in-flight calls may take to finish.
    pub shutdown_grace: Duration,
    /// `BANSO_MAX_CONNECTION_AGE_SECS`: a client connection older than this
    /// is sent GOAWAY, so long-lived clients spread over replicas the
    /// autoscaler adds. `None` (the default): connections live on.
    pub max_connection_age: Option<Duration>,
    /// `BANSO_MAX_CONNECTION_AGE_GRACE_SECS`: how long the calls of an aged
    /// connection may still take before it is closed.
    pub max_connection_age_grace: Duration,
    /// `BANSO_READINESS_BUS_GRACE_SECS`: how long the bus may stay
    /// disconnected, while the service has events to publish or consume,
    /// before the service reports NOT_SERVING.
    pub bus_grace: Duration,
}

/// The event bus: NATS JetStream when a URL is set, else the embedded log.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// `BANSO_NATS_URL` (may hold credentials).
    pub nats_url: Option<Secret>,
    /// `BANSO_NATS_NAMESPACE`: prefixes subjects and streams.
    pub nats_namespace: Option<String>,
    /// `BANSO_NATS_PARTITIONS` (default 1; 1 to 64): each source's events
    /// split by account into this many partitions, shared by a service's
    /// replicas. The same in every service of a deployment.
    pub nats_partitions: u32,
    /// TLS and credentials for NATS.
    pub nats: NatsAuth,
}

/// How Banso proves itself to NATS and checks NATS's certificate. At most
/// one credential kind; every secret may come from a file (`*_FILE`).
#[derive(Debug, Clone, Default)]
pub struct NatsAuth {
    /// `BANSO_NATS_CA_FILE`: trust this CA (and require TLS even on `nats://`).
    pub ca_file: Option<PathBuf>,
    /// `BANSO_NATS_CLIENT_CERT_FILE` + `BANSO_NATS_CLIENT_KEY_FILE`: mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// `BANSO_NATS_TOKEN`.
    pub token: Option<Secret>,
    /// `BANSO_NATS_USER` + `BANSO_NATS_PASSWORD`.
    pub user_password: Option<(String, Secret)>,
    /// `BANSO_NATS_NKEY_SEED`: an NKey seed (`SU…`).
    pub nkey_seed: Option<Secret>,
    /// `BANSO_NATS_CREDS_FILE`: a `.creds` file (user JWT and NKey seed), as
    /// `nsc` writes it for decentralised auth.
    pub creds_file: Option<PathBuf>,
}

impl NatsAuth {
    fn from_vars(v: &Vars) -> Result<Self, ConfigError> {
        let err = |var: &str, reason: String| ConfigError { var: var.into(), reason };
        let client_cert = match (
            v.certificate_file("BANSO_NATS_CLIENT_CERT_FILE")?,
            v.private_key_file("BANSO_NATS_CLIENT_KEY_FILE")?,
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(err("BANSO_NATS_CLIENT_KEY_FILE", "is required with BANSO_NATS_CLIENT_CERT_FILE".into()));
            }
            (None, Some(_)) => {
                return Err(err("BANSO_NATS_CLIENT_CERT_FILE", "is required with BANSO_NATS_CLIENT_KEY_FILE".into()));
            }
        };
        let user_password = match (v.get("BANSO_NATS_USER"), v.secret("BANSO_NATS_PASSWORD")?) {
            (Some(u), Some(p)) => Some((u.to_owned(), p)),
            (None, None) => None,
            (Some(_), None) => return Err(err("BANSO_NATS_PASSWORD", "is required with BANSO_NATS_USER".into())),
            (None, Some(_)) => return Err(err("BANSO_NATS_USER", "is required with BANSO_NATS_PASSWORD".into())),
        };
        let auth = NatsAuth {
            ca_file: v.certificate_file("BANSO_NATS_CA_FILE")?,
            client_cert,
            token: v.secret("BANSO_NATS_TOKEN")?,
            user_password,
            nkey_seed: v.secret("BANSO_NATS_NKEY_SEED")?,
            creds_file: v.readable_file("BANSO_NATS_CREDS_FILE")?,
        };
        let kinds: Vec<&str> = [
            auth.token.as_ref().map(|_| "BANSO_NATS_TOKEN"),
            auth.user_password.as_ref().map(|_| "BANSO_NATS_USER"),
            auth.nkey_seed.as_ref().map(|_| "BANSO_NATS_NKEY_SEED"),
            auth.creds_file.as_ref().map(|_| "BANSO_NATS_CREDS_FILE"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if kinds.len() > 1 {
            return Err(err(kinds[1], format!("only one NATS credential may be set; found {}", kinds.join(", "))));
        }
        if let Some(seed) = &auth.nkey_seed
            && !seed.expose().starts_with("SU")
        {
            return Err(err("BANSO_NATS_NKEY_SEED", "is not a user NKey seed (it must start with \"SU\")".into()));
        }
        Ok(auth)
    }
}

/// Traces: exported over OTLP when an endpoint is set (the standard
/// `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_SERVICE_NAME`).
#[derive(Debug, Clone, Default)]
pub struct TraceConfig {
    pub otlp_endpoint: Option<String>,
    pub service_name: Option<String>,
    /// `OTEL_EXPORTER_OTLP_CERTIFICATE`: the CA of an `https://` collector
    /// (the public web roots are trusted too).
    pub otlp_certificate: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub bus: BusConfig,
    pub traces: TraceConfig,
    /// Key that signs page tokens; random per process when unset.
    pub page_token_secret: Option<Secret>,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    /// `tracing` filter directive, e.g. `info,banso_accounts=debug`
    /// (`RUST_LOG` wins over `BANSO_LOG`).
    pub log_filter: String,
    /// Every raw value, for the settings of one service (`BANSO_HEALTH_*`).
    vars: Vars,
}

/// The raw `NAME → value` pairs configuration is parsed from.
#[derive(Default, Clone)]
pub struct Vars(BTreeMap<String, String>);

/// Names only: any value may be a secret.
impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Vars {
    /// The process environment, layered over the file in `BANSO_CONFIG_FILE`.
    #[allow(clippy::disallowed_methods, reason = "the one place that reads the environment")]
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut vars = Vars::default();
        if let Ok(path) = std::env::var("BANSO_CONFIG_FILE") {
            vars.merge_toml_file(&path)?;
        }
        for (k, v) in std::env::vars() {
            if k.starts_with(PREFIX) || OTHER_PREFIXES.iter().any(|p| k.starts_with(p)) {
                vars.0.insert(k, v);
            }
        }
        Ok(vars)
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Vars(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    fn merge_toml_file(&mut self, path: &str) -> Result<(), ConfigError> {
        let err = |reason: String| ConfigError { var: "BANSO_CONFIG_FILE".into(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read {path:?}: {e}")))?;
        let table: toml::Table = text.parse().map_err(|e| err(format!("{path:?} is not valid TOML: {e}")))?;
        for (key, value) in table {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => return Err(err(format!("key {key:?} must be a string, number or boolean, not {other}"))),
            };
            self.0.insert(format!("{PREFIX}{}", key.to_uppercase()), value);
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    /// The value of `name` parsed as a `T`, or `default` when unset.
    pub fn parse<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError { var: name.into(), reason: format!("{raw:?} is not valid: {e}") }),
        }
    }

    /// A number between `lo` and `hi` (inclusive), or `default` when unset.
    pub fn number<T>(&self, name: &str, default: T, lo: T, hi: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
        T::Err: fmt::Display,
    {
        range(name, self.parse(name, default)?, lo, hi)
    }

    /// A duration in (fractional) seconds, 0 to 86,400.
    pub fn secs(&self, name: &str, default: f64) -> Result<Duration, ConfigError> {
        let v: f64 = self.parse(name, default)?;
        if !(0.0..=86_400.0).contains(&v) {
            return Err(ConfigError { var: name.into(), reason: format!("{v} is not between 0 and 86400 seconds") });
        }
        Ok(Duration::from_secs_f64(v))
    }

    /// A path that must name a readable file (a CA, a certificate), checked
    /// at start so a mistyped mount fails there, not at the first connection.
    pub fn readable_file(&self, name: &str) -> Result<Option<PathBuf>, ConfigError> {
        let Some(path) = self.get(name) else { return Ok(None) };
        std::fs::File::open(path)
            .map_err(|e| ConfigError { var: name.into(), reason: format!("cannot read {path:?}: {e}") })?;
        Ok(Some(PathBuf::from(path)))
    }

    /// A path that must name a PEM file of certificates (a CA bundle, a
    /// client certificate), checked at start: a mounted Secret with the
    /// wrong key in it fails here, naming the setting and the path.
    pub fn certificate_file(&self, name: &str) -> Result<Option<PathBuf>, ConfigError> {
        let Some(path) = self.get(name) else { return Ok(None) };
        crate::tls::load_certificates(std::path::Path::new(path))
            .map_err(|e| ConfigError { var: name.into(), reason: e.to_string() })?;
        Ok(Some(PathBuf::from(path)))
    }

    /// A path that must name a PEM private key, checked at start (the
    /// error names the path, never the key).
    pub fn private_key_file(&self, name: &str) -> Result<Option<PathBuf>, ConfigError> {
        let Some(path) = self.get(name) else { return Ok(None) };
        crate::tls::load_private_key(std::path::Path::new(path))
            .map_err(|e| ConfigError { var: name.into(), reason: e.to_string() })?;
        Ok(Some(PathBuf::from(path)))
    }

    /// A value that must never be logged: `name` itself, or the contents of
    /// the file at `<name>_FILE` (a Kubernetes Secret mounted as a file, so
    /// the value never shows in an environment listing). One trailing line
    /// break is dropped, as `echo` and `kubectl create secret` leave one.
    pub fn secret(&self, name: &str) -> Result<Option<Secret>, ConfigError> {
        let file_var = format!("{name}_FILE");
        match (self.get(name), self.get(&file_var)) {
            (Some(_), Some(_)) => {
                Err(ConfigError { var: file_var, reason: format!("set {name} or {name}_FILE, not both") })
            }
            (Some(value), None) => Ok(Some(Secret::new(value))),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError { var: file_var.clone(), reason: format!("cannot read {path:?}: {e}") })?;
                let value = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
                if value.trim().is_empty() {
                    return Err(ConfigError { var: file_var, reason: format!("{path:?} is empty") });
                }
                Ok(Some(Secret::new(value)))
            }
            (None, None) => Ok(None),
        }
    }
}

/// A secret PostgreSQL URL (inline or `<name>_FILE`), its scheme checked.
fn postgres_url(v: &Vars, name: &str) -> Result<Option<Secret>, ConfigError> {
    let url = v.secret(name)?;
    if let Some(u) = &url {
        let s = u.expose();
        if s.starts_with("sqlite:") {
            // One SQLite file holds one service's migrations: a URL
            // shared by several services would mix them up.
            return Err(ConfigError {
                var: name.into(),
                reason: "takes a postgres:// URL only; for SQLite leave it unset and set BANSO_DATA_DIR: \
                         each service keeps its own file there (accounts.db, health.db, …)"
                    .into(),
            });
        }
        if !(s.starts_with("postgres://") || s.starts_with("postgresql://")) {
            return Err(ConfigError {
                var: name.into(),
                // The URL may hold a password: name only its scheme.
                reason: format!(
                    "scheme {:?} is not supported; use postgres://",
                    s.split(':').next().unwrap_or_default()
                ),
            });
        }
    }
    Ok(url)
}

/// A duration in seconds that must be more than zero (an interval, an age).
fn positive(v: &Vars, name: &str, default: f64) -> Result<Duration, ConfigError> {
    let d = v.secs(name, default)?;
    if d.is_zero() {
        return Err(ConfigError { var: name.into(), reason: "must be more than 0 seconds".into() });
    }
    Ok(d)
}

fn range<T: PartialOrd + fmt::Display + Copy>(name: &str, v: T, lo: T, hi: T) -> Result<T, ConfigError> {
    if v < lo || v > hi {
        return Err(ConfigError { var: name.into(), reason: format!("{v} is not between {lo} and {hi}") });
    }
    Ok(v)
}

impl Config {
    /// Reads the process environment (and the optional file).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Vars::from_env()?)
    }

    pub fn from_vars(v: &Vars) -> Result<Self, ConfigError> {
        let admin_addr = match v.get("BANSO_ADMIN_ADDR") {
            Some(s) if s.eq_ignore_ascii_case("off") => None,
            _ => Some(v.parse("BANSO_ADMIN_ADDR", SocketAddr::from(([0, 0, 0, 0], 9090)))?),
        };
        let server = ServerConfig {
            grpc_addr: v.parse("BANSO_GRPC_ADDR", SocketAddr::from(([0, 0, 0, 0], 50051)))?,
            admin_addr,
            // Shorter than the drain grace below, so a call that started
            // before SIGTERM can end in time.
            request_timeout: v.secs("BANSO_REQUEST_TIMEOUT_SECS", 20.0)?,
            concurrency_limit: range(
                "BANSO_CONCURRENCY_LIMIT",
                v.parse("BANSO_CONCURRENCY_LIMIT", 1024usize)?,
                1,
                1_000_000,
            )?,
            max_message_bytes: range(
                "BANSO_MAX_MESSAGE_BYTES",
                v.parse("BANSO_MAX_MESSAGE_BYTES", 16 * 1024 * 1024usize)?,
                1024,
                1024 * 1024 * 1024,
            )?,
            shutdown_delay: v.secs("BANSO_SHUTDOWN_DELAY_SECS", 0.0)?,
            shutdown_grace: v.secs("BANSO_SHUTDOWN_GRACE_SECS", 20.0)?,
            max_connection_age: match v.get("BANSO_MAX_CONNECTION_AGE_SECS") {
                None => None,
                Some(_) => Some(positive(v, "BANSO_MAX_CONNECTION_AGE_SECS", 0.0)?),
            },
            max_connection_age_grace: v.secs("BANSO_MAX_CONNECTION_AGE_GRACE_SECS", 10.0)?,
            bus_grace: v.secs("BANSO_READINESS_BUS_GRACE_SECS", 30.0)?,
        };

        let url = postgres_url(v, "BANSO_DATABASE_URL")?;
        let migrate_url = postgres_url(v, "BANSO_MIGRATE_DATABASE_URL")?;
        let max_connections = range("BANSO_DB_MAX_CONNECTIONS", v.parse("BANSO_DB_MAX_CONNECTIONS", 10u32)?, 1, 1000)?;
        let min_connections = v.parse("BANSO_DB_MIN_CONNECTIONS", 0u32)?;
        if min_connections > max_connections {
            return Err(ConfigError {
                var: "BANSO_DB_MIN_CONNECTIONS".into(),
                reason: format!("{min_connections} is more than BANSO_DB_MAX_CONNECTIONS ({max_connections})"),
            });
        }
        let database = DatabaseConfig {
            url,
            max_connections,
            min_connections,
            acquire_timeout: v.secs("BANSO_DB_ACQUIRE_TIMEOUT_SECS", 5.0)?,
            ca_file: v.certificate_file("BANSO_DATABASE_CA_FILE")?,
            migrate_url,
            migrate_on_start: v.parse("BANSO_MIGRATE_ON_START", false)?,
            probe_interval: positive(v, "BANSO_READINESS_PROBE_SECS", 5.0)?,
        };

        let algorithm = match v.get("BANSO_JWT_ALGORITHM").map(str::to_ascii_uppercase).as_deref() {
            None | Some("RS256") => KeyAlgorithm::Rs256,
            Some("EDDSA") => KeyAlgorithm::EdDsa,
            Some(other) => {
                return Err(ConfigError {
                    var: "BANSO_JWT_ALGORITHM".into(),
                    reason: format!("{other:?} is not supported; use RS256 or EdDSA"),
                });
            }
        };
        // Not a secret, but read the same way: inline or from a mounted file.
        let public_key_pem = v.secret("BANSO_JWT_PUBLIC_KEY")?.map(|pem| pem.expose().to_owned());
        let hs256_secret = v.secret("BANSO_JWT_HS256_SECRET")?;
        let service_token_secret = v.secret("BANSO_SERVICE_TOKEN_SECRET")?;
        if let Some(s) = &service_token_secret
            && s.expose().len() < 32
        {
            return Err(ConfigError {
                var: "BANSO_SERVICE_TOKEN_SECRET".into(),
                reason: "must be at least 32 bytes".into(),
            });
        }
        if let Some(s) = &hs256_secret
            && s.expose().len() < 32
        {
            return Err(ConfigError {
                var: "BANSO_JWT_HS256_SECRET".into(),
                reason: "must be at least 32 bytes".into(),
            });
        }
        let auth = AuthConfig {
            hs256_secret,
            public_key_pem,
            algorithm,
            issuer: v.get("BANSO_JWT_ISSUER").unwrap_or("banso").to_owned(),
            issuer_set: v.get("BANSO_JWT_ISSUER").is_some(),
            audience: v.get("BANSO_JWT_AUDIENCE").unwrap_or("banso").to_owned(),
            jwks: JwksConfig::from_vars(v)?,
            tenant_claim: claim_name(v, "BANSO_JWT_TENANT_CLAIM", "tenant_id")?,
            roles_claim: claim_name(v, "BANSO_JWT_ROLES_CLAIM", "roles")?,
            service_token_secret,
        };

        let log_format = match v.get("BANSO_LOG_FORMAT").map(str::to_ascii_lowercase).as_deref() {
            None | Some("auto") => LogFormat::Auto,
            Some("json") => LogFormat::Json,
            Some("pretty") | Some("text") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError {
                    var: "BANSO_LOG_FORMAT".into(),
                    reason: format!("{other:?} is not one of auto, json, pretty"),
                });
            }
        };
        let page_token_secret = v.secret("BANSO_PAGE_TOKEN_SECRET")?;
        if let Some(s) = &page_token_secret
            && s.expose().len() < 32
        {
            return Err(ConfigError {
                var: "BANSO_PAGE_TOKEN_SECRET".into(),
                reason: "must be at least 32 bytes".into(),
            });
        }
        let nats_url = v.secret("BANSO_NATS_URL")?;
        if let Some(u) = &nats_url
            && !u.expose().starts_with("nats://")
            && !u.expose().starts_with("tls://")
        {
            return Err(ConfigError {
                var: "BANSO_NATS_URL".into(),
                reason: "must start with nats:// or tls://".into(),
            });
        }
        let bus = BusConfig {
            nats_url,
            nats_namespace: v.get("BANSO_NATS_NAMESPACE").map(str::to_owned),
            nats_partitions: v.number("BANSO_NATS_PARTITIONS", 1u32, 1, 64)?,
            nats: NatsAuth::from_vars(v)?,
        };
        let traces = TraceConfig {
            otlp_endpoint: v.get("OTEL_EXPORTER_OTLP_ENDPOINT").map(str::to_owned),
            service_name: v.get("OTEL_SERVICE_NAME").map(str::to_owned),
            otlp_certificate: v.certificate_file("OTEL_EXPORTER_OTLP_CERTIFICATE")?,
        };
        if let Some(endpoint) = &traces.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(ConfigError {
                var: "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                reason: format!("{endpoint:?} must start with http:// or https://"),
            });
        }
        Ok(Config {
            server,
            database,
            auth,
            bus,
            traces,
            page_token_secret,
            data_dir: PathBuf::from(v.get("BANSO_DATA_DIR").unwrap_or("./banso-data")),
            log_format,
            log_filter: v.get("RUST_LOG").or(v.get("BANSO_LOG")).unwrap_or("info").to_owned(),
            vars: v.clone(),
        })
    }

    /// The raw values, for a service's own settings.
    pub fn vars(&self) -> &Vars {
        &self.vars
    }

    /// Fails unless some way to verify tokens is configured.
    pub fn require_auth_keys(&self) -> Result<(), ConfigError> {
        if self.auth.hs256_secret.is_none() && self.auth.public_key_pem.is_none() && self.auth.jwks.is_none() {
            return Err(ConfigError {
                var: "BANSO_JWT_PUBLIC_KEY".into(),
                reason: "no token verification key: set BANSO_JWT_OIDC_ISSUER_URL or BANSO_JWT_JWKS_URL (an \
                         identity provider's keys), BANSO_JWT_PUBLIC_KEY(_FILE) or, for development, \
                         BANSO_JWT_HS256_SECRET"
                    .into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::from_vars(&Vars::default()).unwrap();
        assert_eq!(c.server.grpc_addr.port(), 50051);
        assert_eq!(c.database.max_connections, 10);
        assert_eq!(c.log_format, LogFormat::Auto);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = Config::from_vars(&Vars::from_pairs([("BANSO_GRPC_ADDR", "nowhere")])).unwrap_err();
        assert_eq!(err.var, "BANSO_GRPC_ADDR");
        assert!(err.to_string().contains("nowhere"));
        let err = Config::from_vars(&Vars::from_pairs([("BANSO_DB_MAX_CONNECTIONS", "0")])).unwrap_err();
        assert_eq!(err.var, "BANSO_DB_MAX_CONNECTIONS");
    }

    #[test]
    fn a_sqlite_url_is_refused_with_the_setting_that_works() {
        let err = Config::from_vars(&Vars::from_pairs([("BANSO_DATABASE_URL", "sqlite://banso.db")])).unwrap_err();
        assert_eq!(err.var, "BANSO_DATABASE_URL");
        assert!(err.reason.contains("BANSO_DATA_DIR"), "{err}");
    }

    #[test]
    fn secrets_never_print() {
        let secret = "postgres://u:hunter2-hunter2@db/banso";
        let c = Config::from_vars(&Vars::from_pairs([("BANSO_DATABASE_URL", secret)])).unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        let err = Config::from_vars(&Vars::from_pairs([("BANSO_DATABASE_URL", "mysql://u:hunter2@db")])).unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn every_secret_can_come_from_a_file() {
        let dir = std::env::temp_dir().join(format!("banso-config-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path.to_str().unwrap().to_owned()
        };
        let url = write("db-url", "postgres://u:hunter2@db/banso\n");
        let hs = write("hs", &format!("{}\r\n", "k".repeat(40)));
        let page = write("page", &"p".repeat(32));
        let nats = write("nats", "tls://nats:4222\n");
        let c = Config::from_vars(&Vars::from_pairs([
            ("BANSO_DATABASE_URL_FILE", url.as_str()),
            ("BANSO_JWT_HS256_SECRET_FILE", hs.as_str()),
            ("BANSO_PAGE_TOKEN_SECRET_FILE", page.as_str()),
            ("BANSO_NATS_URL_FILE", nats.as_str()),
        ]))
        .unwrap();
        assert_eq!(c.database.url.unwrap().expose(), "postgres://u:hunter2@db/banso");
        assert_eq!(c.auth.hs256_secret.unwrap().expose(), "k".repeat(40));
        assert_eq!(c.page_token_secret.unwrap().expose(), "p".repeat(32));
        assert_eq!(c.bus.nats_url.unwrap().expose(), "tls://nats:4222");

        // A file value is checked like an inline one, and errors name the _FILE variable.
        let bad = write("bad-url", "mysql://u:hunter2@db\n");
        let err = Config::from_vars(&Vars::from_pairs([("BANSO_DATABASE_URL_FILE", bad.as_str())])).unwrap_err();
        assert_eq!(err.var, "BANSO_DATABASE_URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = Config::from_vars(&Vars::from_pairs([("BANSO_JWT_HS256_SECRET_FILE", "/nonexistent/banso-secret")]))
            .unwrap_err();
        assert_eq!(err.var, "BANSO_JWT_HS256_SECRET_FILE");
        assert!(err.reason.contains("/nonexistent/banso-secret"), "{err}");
        let empty = write("empty", "\n");
        let err = Config::from_vars(&Vars::from_pairs([("BANSO_PAGE_TOKEN_SECRET_FILE", empty.as_str())])).unwrap_err();
        assert_eq!(err.var, "BANSO_PAGE_TOKEN_SECRET_FILE");
        let err = Config::from_vars(&Vars::from_pairs([
            ("BANSO_NATS_URL", "nats://a:4222"),
            ("BANSO_NATS_URL_FILE", nats.as_str()),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "BANSO_NATS_URL_FILE");
        assert!(err.reason.contains("not both"), "{err}");
    }

    #[test]
    fn the_migration_url_is_a_secret_checked_like_the_database_url() {
        let dir = std::env::temp_dir().join(format!("banso-config-migrate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("migrate-url");
        std::fs::write(&path, "postgres://owner:hunter2@db/banso\n").unwrap();
        let c = Config::from_vars(&Vars::from_pairs([
            ("BANSO_MIGRATE_DATABASE_URL_FILE", path.to_str().unwrap()),
            ("BANSO_MIGRATE_ON_START", "true"),
        ]))
        .unwrap();
        assert_eq!(c.database.migrate_url.unwrap().expose(), "postgres://owner:hunter2@db/banso");
        assert!(c.database.migrate_on_start);
        assert!(!Config::from_vars(&Vars::default()).unwrap().database.migrate_on_start, "serve checks, not migrates");
        let err =
            Config::from_vars(&Vars::from_pairs([("BANSO_MIGRATE_DATABASE_URL", "mysql://u:hunter2@db")])).unwrap_err();
        assert_eq!(err.var, "BANSO_MIGRATE_DATABASE_URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = Config::from_vars(&Vars::from_pairs([("BANSO_MIGRATE_ON_START", "yes")])).unwrap_err();
        assert_eq!(err.var, "BANSO_MIGRATE_ON_START");
        assert!(err.reason.contains("yes"), "{err}");
    }

    #[test]
    fn readiness_and_connection_age_settings() {
        let c = Config::from_vars(&Vars::default()).unwrap();
        assert_eq!(c.server.max_connection_age, None);
        assert_eq!(c.server.max_connection_age_grace, Duration::from_secs(10));
        assert_eq!(c.server.bus_grace, Duration::from_secs(30));
        assert_eq!(c.database.probe_interval, Duration::from_secs(5));
        assert!(c.server.request_timeout <= c.server.shutdown_grace, "a call started before SIGTERM can finish");
        let c = Config::from_vars(&Vars::from_pairs([
            ("BANSO_MAX_CONNECTION_AGE_SECS", "300"),
            ("BANSO_MAX_CONNECTION_AGE_GRACE_SECS", "15"),
            ("BANSO_READINESS_BUS_GRACE_SECS", "0.5"),
            ("BANSO_READINESS_PROBE_SECS", "1"),
        ]))
        .unwrap();
        assert_eq!(c.server.max_connection_age, Some(Duration::from_secs(300)));
        assert_eq!(c.server.max_connection_age_grace, Duration::from_secs(15));
        assert_eq!(c.server.bus_grace, Duration::from_millis(500));
        assert_eq!(c.database.probe_interval, Duration::from_secs(1));
        for (var, bad) in [("BANSO_MAX_CONNECTION_AGE_SECS", "0"), ("BANSO_READINESS_PROBE_SECS", "0")] {
            let err = Config::from_vars(&Vars::from_pairs([(var, bad)])).unwrap_err();
            assert_eq!(err.var, var);
        }
    }

    #[test]
    fn nats_partitions_are_one_by_default_and_bounded() {
        assert_eq!(Config::from_vars(&Vars::default()).unwrap().bus.nats_partitions, 1);
        let c = Config::from_vars(&Vars::from_pairs([("BANSO_NATS_PARTITIONS", "12")])).unwrap();
        assert_eq!(c.bus.nats_partitions, 12);
        for bad in ["0", "65", "eight"] {
            let err = Config::from_vars(&Vars::from_pairs([("BANSO_NATS_PARTITIONS", bad)])).unwrap_err();
            assert_eq!(err.var, "BANSO_NATS_PARTITIONS", "{bad}");
        }
    }

    #[test]
    fn service_settings_read_through_vars_see_the_file_too() {
        let dir = std::env::temp_dir().join(format!("banso-config-svc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("banso.toml");
        std::fs::write(
            &path,
            "health_score_step = 7.5\nnats_url = \"nats://127.0.0.1:4222\"\nnats_namespace = \"blue\"\n",
        )
        .unwrap();
        let mut vars = Vars::default();
        vars.merge_toml_file(path.to_str().unwrap()).unwrap();
        let c = Config::from_vars(&vars).unwrap();
        assert_eq!(c.vars().number("BANSO_HEALTH_SCORE_STEP", 5.0, 0.0, 100.0).unwrap(), 7.5);
        assert!(c.bus.nats_url.is_some());
        assert_eq!(c.bus.nats_namespace.as_deref(), Some("blue"));
        let err = c.vars().number("BANSO_HEALTH_SCORE_STEP", 5.0, 0.0, 1.0).unwrap_err();
        assert_eq!(err.var, "BANSO_HEALTH_SCORE_STEP");
    }

    #[test]
    fn file_values_sit_under_the_environment() {
        let dir = std::env::temp_dir().join(format!("banso-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("banso.toml");
        std::fs::write(&path, "grpc_addr = \"127.0.0.1:7000\"\ndb_max_connections = 3\n").unwrap();
        let mut vars = Vars::default();
        vars.merge_toml_file(path.to_str().unwrap()).unwrap();
        vars.set("BANSO_DB_MAX_CONNECTIONS", "4");
        let c = Config::from_vars(&vars).unwrap();
        assert_eq!(c.server.grpc_addr.port(), 7000);
        assert_eq!(c.database.max_connections, 4);
    }
}
