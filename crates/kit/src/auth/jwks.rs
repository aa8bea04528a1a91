//! Signing keys from an identity provider's JWKS, as Kubernetes and Envoy
//! take them: fetched at start (a provider that is down does not stop the
//! process; tokens fail until the first fetch succeeds, retried with
//! backoff), cached by `kid`, fetched again every refresh interval, and at
//! once when a token names a `kid` the cache lacks — at most once per
//! [`KID_REFRESH_INTERVAL`] and one fetch at a time, so forged key ids
//! cannot hammer the provider. A failed fetch keeps the last good keys.
//!
//! Tokens are verified against a snapshot (`RwLock<Arc<KeySet>>`), so
//! verification never waits on the network; only an unknown `kid` does.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock, Weak},
    time::Duration,
};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse},
};
use serde::Deserialize;
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::config::{JwksConfig, JwksLocation};

/// Fetches of the key set, by outcome (`ok`, `error`).
pub const JWKS_REFRESH_TOTAL: &str = "banso_auth_jwks_refresh_total";

/// At most one fetch for an unknown `kid` in this time.
pub const KID_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// One fetch (discovery document or key set) may take this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A response larger than this is not a key set.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// One usable verification key.
pub(crate) struct Key {
    pub kid: Option<String>,
    pub key: DecodingKey,
    /// The algorithms this key may verify: its `alg`, or those of its type.
    pub algorithms: Vec<Algorithm>,
}

/// The keys of one successful fetch.
pub(crate) struct KeySet {
    /// 0 until the first fetch succeeds; +1 on every successful fetch.
    pub generation: u64,
    pub by_kid: HashMap<String, Arc<Key>>,
    pub all: Vec<Arc<Key>>,
    /// The `iss` tokens must carry: the configured one, else the discovered one.
    pub issuer: Option<String>,
}

/// The keys of one identity provider, kept fresh by a background task that
/// stops when the last [`Jwks`] handle is dropped or [`Jwks::stop_on`]'s token fires.
#[derive(Clone)]
pub(crate) struct Jwks {
    shared: Arc<Shared>,
}

struct Shared {
    client: reqwest::Client,
    location: JwksLocation,
    /// `BANSO_JWT_ISSUER` when set: wins over the discovered issuer.
    issuer_override: Option<String>,
    refresh: Duration,
    keys: RwLock<Arc<KeySet>>,
    /// Single flight: whoever holds it fetches; it also keeps when the last
    /// unknown-kid fetch was.
    fetching: tokio::sync::Mutex<Option<Instant>>,
    /// Asks the background task for an unknown-kid fetch (from the
    /// synchronous path, which cannot wait).
    kick: Arc<Notify>,
    stop: CancellationToken,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Jwks {
    /// Starts the background fetching (the first fetch begins at once).
    /// Needs a tokio runtime.
    pub fn start(cfg: &JwksConfig, issuer_override: Option<String>) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            anyhow::anyhow!("the JWKS of {} is fetched in the background: start it in a tokio runtime", cfg.location)
        })?;
        let mut builder = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .user_agent(concat!("banso/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("BANSO_JWT_JWKS_CA_FILE: cannot read {path:?}: {e}"))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow::anyhow!("BANSO_JWT_JWKS_CA_FILE: {path:?} holds no PEM certificate: {e}"))?;
            anyhow::ensure!(!certs.is_empty(), "BANSO_JWT_JWKS_CA_FILE: {path:?} holds no PEM certificate");
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| anyhow::anyhow!("cannot build the JWKS HTTP client: {e}"))?;
        warn_if_plain_http(cfg.location.url());
        metrics::counter!(JWKS_REFRESH_TOTAL, "outcome" => "ok").increment(0);
        metrics::counter!(JWKS_REFRESH_TOTAL, "outcome" => "error").increment(0);
        let shared = Arc::new(Shared {
            client,
            location: cfg.location.clone(),
            issuer_override,
            refresh: cfg.refresh,
            keys: RwLock::new(Arc::new(KeySet {
                generation: 0,
                by_kid: HashMap::new(),
                all: Vec::new(),
                issuer: None,
            })),
            fetching: tokio::sync::Mutex::new(None),
            kick: Arc::new(Notify::new()),
            stop: CancellationToken::new(),
        });
        runtime.spawn(background(Arc::downgrade(&shared), shared.kick.clone(), shared.stop.clone()));
        Ok(Jwks { shared })
    }

    /// The keys as of now.
    pub fn snapshot(&self) -> Arc<KeySet> {
        match self.shared.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Where the keys come from, for messages.
    pub fn url(&self) -> &str {
        self.shared.location.url()
    }

    /// Asks for an unknown-kid fetch without waiting for it.
    pub fn request_refresh(&self) {
        self.shared.kick.notify_one();
    }

    /// An unknown-kid fetch, waited for: true when the keys changed since
    /// `seen` (the generation the caller looked at), so looking again may
    /// help. Rate-limited and single-flight.
    pub async fn refresh_for_unknown_kid(&self, seen: u64) -> bool {
        self.shared.refresh_for_unknown_kid(seen).await
    }

    /// Stops the background task when `shutdown` fires.
    pub fn stop_on(&self, shutdown: &CancellationToken) {
        let (shutdown, stop) = (shutdown.clone(), self.shared.stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => stop.cancel(),
                _ = stop.cancelled() => {}
            }
        });
    }
}

impl std::fmt::Display for JwksLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.url())
    }
}

impl JwksLocation {
    pub fn url(&self) -> &str {
        match self {
            JwksLocation::Discovery(u) | JwksLocation::Direct(u) => u,
        }
    }
}

/// Fetches at start and every refresh interval (with backoff after a
/// failure), and for unknown key ids when kicked, until stopped.
async fn background(shared: Weak<Shared>, kick: Arc<Notify>, stop: CancellationToken) {
    let mut failures = 0u32;
    let mut wait = Duration::ZERO;
    loop {
        let kicked = tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => false,
            _ = kick.notified() => true,
        };
        let Some(shared) = shared.upgrade() else { return };
        if kicked {
            let seen = shared.snapshot_generation();
            shared.refresh_for_unknown_kid(seen).await;
            // The periodic schedule goes on from where it was.
            continue;
        }
        // Single flight with unknown-kid fetches; a periodic fetch does not
        // use up their allowance.
        let ok = {
            let _one_at_a_time = shared.fetching.lock().await;
            shared.fetch_and_store().await
        };
        if ok {
            failures = 0;
            wait = shared.refresh;
        } else {
            failures += 1;
            let backoff = BACKOFF_FIRST.saturating_mul(1 << (failures - 1).min(16));
            wait = backoff.min(BACKOFF_MAX).min(shared.refresh.max(BACKOFF_FIRST));
        }
    }
}

impl Shared {
    fn snapshot_generation(&self) -> u64 {
        match self.keys.read() {
            Ok(k) => k.generation,
            Err(p) => p.into_inner().generation,
        }
    }

    async fn refresh_for_unknown_kid(&self, seen: u64) -> bool {
        let mut last = self.fetching.lock().await;
        if self.snapshot_generation() != seen {
            // Someone fetched while we waited for the lock.
            return true;
        }
        if last.is_some_and(|t| t.elapsed() < KID_REFRESH_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        self.fetch_and_store().await
    }

    /// One fetch; on success the new keys replace the old. Logs and counts.
    async fn fetch_and_store(&self) -> bool {
        match self.fetch().await {
            Ok((keys, issuer, skipped)) => {
                let mut slot = match self.keys.write() {
                    Ok(s) => s,
                    Err(p) => p.into_inner(),
                };
                let generation = slot.generation + 1;
                let kids: Vec<&str> = keys.iter().filter_map(|k| k.kid.as_deref()).collect();
                tracing::debug!(url = %self.location, generation, ?kids, ?skipped, "fetched signing keys");
                if generation == 1 {
                    tracing::info!(url = %self.location, keys = keys.len(), "fetched the identity provider's signing keys");
                }
                let by_kid = keys.iter().filter_map(|k| Some((k.kid.clone()?, k.clone()))).collect();
                *slot = Arc::new(KeySet { generation, by_kid, all: keys, issuer: Some(issuer) });
                metrics::counter!(JWKS_REFRESH_TOTAL, "outcome" => "ok").increment(1);
                true
            }
            Err(e) => {
                tracing::warn!(url = %self.location, error = %e, "cannot fetch signing keys; keeping the last good ones");
                metrics::counter!(JWKS_REFRESH_TOTAL, "outcome" => "error").increment(1);
                false
            }
        }
    }

    /// The keys, the issuer tokens must name, and what was skipped (and why).
    async fn fetch(&self) -> anyhow::Result<(Vec<Arc<Key>>, String, Vec<String>)> {
        let (jwks_url, discovered) = match &self.location {
            JwksLocation::Direct(url) => (url.clone(), None),
            JwksLocation::Discovery(issuer) => {
                let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
                let doc: Discovery = serde_json::from_slice(&self.get(&url).await?)
                    .map_err(|e| anyhow::anyhow!("{url} is not an OpenID discovery document: {e}"))?;
                // OpenID Connect Discovery 1.0 §4.3: the document must name
                // the issuer it was fetched for, or it may be someone else's.
                if doc.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
                    anyhow::bail!("{url} names issuer {:?}, not {issuer:?}", doc.issuer);
                }
                warn_if_plain_http(&doc.jwks_uri);
                (doc.jwks_uri, Some(doc.issuer))
            }
        };
        let issuer = match (&self.issuer_override, discovered) {
            (Some(i), _) => i.clone(),
            (None, Some(i)) => i,
            (None, None) => anyhow::bail!("no issuer: set BANSO_JWT_ISSUER"),
        };
        let body = self.get(&jwks_url).await?;
        let set: RawSet =
            serde_json::from_slice(&body).map_err(|e| anyhow::anyhow!("{jwks_url} is not a JWK set: {e}"))?;
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for raw in set.keys {
            match parse_key(raw) {
                Ok(k) => keys.push(Arc::new(k)),
                Err(why) => skipped.push(why),
            }
        }
        if keys.is_empty() {
            anyhow::bail!("{jwks_url} has no usable signing key (skipped: {})", skipped.join("; "));
        }
        Ok((keys, issuer, skipped))
    }

    async fn get(&self, url: &str) -> anyhow::Result<Vec<u8>> {
        let resp = self.client.get(url).send().await.map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            anyhow::bail!("GET {url}: HTTP {status}");
        }
        if resp.content_length().is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            anyhow::bail!("GET {url}: the response is larger than {MAX_BODY_BYTES} bytes");
        }
        let body = resp.bytes().await.map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
        if body.len() > MAX_BODY_BYTES {
            anyhow::bail!("GET {url}: the response is larger than {MAX_BODY_BYTES} bytes");
        }
        Ok(body.to_vec())
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

/// A signing key of the set, or why it is not one Banso uses.
fn parse_key(raw: serde_json::Value) -> Result<Key, String> {
    let kid = raw.get("kid").and_then(|v| v.as_str()).map(str::to_owned);
    let name = kid.clone().unwrap_or_else(|| "(no kid)".into());
    let jwk: Jwk = serde_json::from_value(raw).map_err(|e| format!("{name}: not a JWK: {e}"))?;
    if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature) {
        return Err(format!("{name}: not a signing key"));
    }
    let by_type: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return Err(format!("{name}: curve {:?} is not supported", p.curve)),
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
        AlgorithmParameters::OctetKeyPair(p) => return Err(format!("{name}: curve {:?} is not supported", p.curve)),
        // A shared secret published for all to read would let anyone sign.
        AlgorithmParameters::OctetKey(_) => return Err(format!("{name}: symmetric keys are never taken from a JWKS")),
        #[allow(unreachable_patterns, reason = "AlgorithmParameters is non-exhaustive")]
        _ => return Err(format!("{name}: key type not supported")),
    };
    let algorithms = match jwk.common.key_algorithm {
        None => by_type,
        Some(alg) => {
            let alg = key_algorithm(alg).ok_or_else(|| format!("{name}: alg {alg:?} is not a signature algorithm"))?;
            if !by_type.contains(&alg) {
                return Err(format!("{name}: alg {alg:?} does not fit its key type"));
            }
            vec![alg]
        }
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("{name}: {e}"))?;
    Ok(Key { kid, key, algorithms })
}

fn key_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Plain http lets anyone on the path swap the keys: fine on loopback and
/// perhaps inside a cluster, worth a warning anywhere else.
fn warn_if_plain_http(url: &str) {
    let Ok(parsed) = reqwest::Url::parse(url) else { return };
    if parsed.scheme() != "http" {
        return;
    }
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        tracing::warn!(url, "signing keys are fetched over plain http: anyone on the network path could swap them");
    }
}
