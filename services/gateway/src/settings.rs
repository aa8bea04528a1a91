//! The gateway's settings (`BANSO_GATEWAY_*`), read through the kit's
//! configuration so a file value reaches them too.

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use banso_kit::config::{Config, ConfigError};

#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// `BANSO_GATEWAY_ADDR`: the HTTP listen address (REST, gRPC-Web, tracking).
    pub addr: SocketAddr,
    /// `BANSO_GATEWAY_<SERVICE>_URL`: where each service is, by short name
    /// (`accounts` → `BANSO_GATEWAY_ACCOUNTS_URL`); default
    /// `http://banso-<service>:50051`, its Kubernetes Service.
    pub upstream_urls: HashMap<String, String>,
    /// `BANSO_GATEWAY_CORS_ORIGINS`: comma-separated origins allowed to call
    /// from a browser; empty: no cross-origin calls.
    pub cors_origins: Vec<String>,
    /// `BANSO_GATEWAY_RATE_LIMIT`: requests per second per tenant (0: off).
    pub rate_per_sec: u32,
    /// `BANSO_GATEWAY_RATE_BURST`: how many requests a tenant may send at once.
    pub rate_burst: u32,
    /// `BANSO_GATEWAY_MAX_BODY_BYTES`: larger bodies are refused with 413.
    pub max_body_bytes: usize,
    /// `BANSO_GATEWAY_TIMEOUT_SECS`: a request's deadline, passed to the
    /// services as the gRPC deadline (default: BANSO_REQUEST_TIMEOUT_SECS).
    pub timeout: Duration,
    /// The largest gRPC message to or from a service (BANSO_MAX_MESSAGE_BYTES).
    pub max_message_bytes: usize,
}

impl GatewaySettings {
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let v = config.vars();
        let mut upstream_urls = HashMap::new();
        if let Ok(pool) = crate::descriptor_pool() {
            for s in crate::upstream::services(&pool) {
                let short = crate::upstream::short_name(s.full_name()).to_owned();
                let var = format!("BANSO_GATEWAY_{}_URL", short.to_ascii_uppercase());
                let url = v.get(&var).map(str::to_owned).unwrap_or_else(|| format!("http://banso-{short}:50051"));
                upstream_urls.insert(short, url);
            }
        }
        let cors_origins = v
            .get("BANSO_GATEWAY_CORS_ORIGINS")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().trim_end_matches('/').to_owned())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>();
        for o in &cors_origins {
            if !(o == "*" || o.starts_with("http://") || o.starts_with("https://")) {
                return Err(ConfigError {
                    var: "BANSO_GATEWAY_CORS_ORIGINS".into(),
                    reason: format!("{o:?} is not an origin (http://host[:port] or https://…)"),
                });
            }
        }
        Ok(GatewaySettings {
            addr: v.parse("BANSO_GATEWAY_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))?,
            upstream_urls,
            cors_origins,
            rate_per_sec: v.number("BANSO_GATEWAY_RATE_LIMIT", 200, 0, 1_000_000)?,
            rate_burst: v.number("BANSO_GATEWAY_RATE_BURST", 400, 1, 1_000_000)?,
            max_body_bytes: v.number("BANSO_GATEWAY_MAX_BODY_BYTES", 16 * 1024 * 1024, 1024, 1024 * 1024 * 1024)?,
            timeout: match v.get("BANSO_GATEWAY_TIMEOUT_SECS") {
                Some(_) => v.secs("BANSO_GATEWAY_TIMEOUT_SECS", 30.0)?,
                None => config.server.request_timeout,
            },
            max_message_bytes: config.server.max_message_bytes,
        })
    }
}
