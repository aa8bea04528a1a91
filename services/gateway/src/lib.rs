//! The gateway: Banso over HTTP for frontends and product teams.
//!
//! - REST/JSON under `/v1/…`, transcoded from the `google.api.http`
//!   annotations of every RPC ([`rest`]), with the OpenAPI 3.1 document
//!   generated from the same descriptors at `/openapi.json` ([`openapi`]);
//! - gRPC-Web (and Connect) for every service on the same port ([`grpc_web`]);
//! - the Segment-compatible tracking API ([`tracking`]).
//!
//! Nothing here is written per RPC: the routes, the JSON and the schema come
//! from the descriptor set the proto crate emits, so a service added later
//! is served as soon as its protos carry annotations. The gateway checks
//! nothing the services check (tokens, roles, fields): it passes the
//! bearer token through and maps their answers.

// Caller data must never reach a panic: the lints hold it outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::unreachable, clippy::todo)
)]
// A Problem is the HTTP answer itself, built once per failed request; its
// size on the error path costs nothing worth a Box on every construction.
#![allow(clippy::result_large_err)]

pub mod edge;
pub mod grpc_web;
pub mod openapi;
pub mod problem;
pub mod rest;
pub mod routes;
pub mod settings;
pub mod tracking;
pub mod upstream;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use banso_kit::config::Config;
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use settings::GatewaySettings;
pub use upstream::Upstreams;

/// The descriptor pool of every Banso proto (with comments, for OpenAPI).
pub fn descriptor_pool() -> anyhow::Result<DescriptorPool> {
    DescriptorPool::decode(banso_proto::FILE_DESCRIPTOR_SET).context("the proto crate's descriptor set does not decode")
}

/// What every handler shares.
pub struct Gateway {
    pub pool: DescriptorPool,
    pub routes: routes::RouteTable,
    pub upstreams: Upstreams,
    pub settings: GatewaySettings,
    /// The OpenAPI document, rendered once.
    pub openapi: bytes::Bytes,
    /// Verifies bearer tokens for the rate limiter's key (the services
    /// verify them again: they stay the place that checks).
    pub auth: Option<Arc<banso_kit::auth::Authenticator>>,
    /// Mints the service tokens the tracking API calls the services with.
    pub tracking: tracking::Tracking,
}

impl Gateway {
    pub fn new(config: &Config, upstreams: Upstreams) -> anyhow::Result<Arc<Gateway>> {
        let settings = GatewaySettings::from_config(config)?;
        let pool = descriptor_pool()?;
        let routes = routes::RouteTable::build(&pool)?;
        let openapi = bytes::Bytes::from(openapi::render_with(&pool, &routes)?);
        let auth = banso_kit::auth::Authenticator::from_config(&config.auth).ok().map(Arc::new);
        let tracking = tracking::Tracking::from_config(config)?;
        metrics::describe_counter!(edge::REQUESTS_TOTAL, "gateway HTTP requests, by method, route template and status");
        metrics::describe_histogram!(
            edge::REQUEST_DURATION,
            "gateway HTTP request latency in seconds, by method, route template and status"
        );
        Ok(Arc::new(Gateway { pool, routes, upstreams, settings, openapi, auth, tracking }))
    }
}

/// A gateway serving until shutdown.
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Listens on the settings' address and serves until `shutdown`, then lets
/// in-flight requests finish (axum's graceful shutdown).
pub async fn start(gateway: Arc<Gateway>, shutdown: CancellationToken) -> anyhow::Result<RunningGateway> {
    let listener = TcpListener::bind(gateway.settings.addr)
        .await
        .with_context(|| format!("cannot listen on {} (BANSO_GATEWAY_ADDR)", gateway.settings.addr))?;
    let addr = listener.local_addr()?;
    let app = edge::app(gateway);
    // Without TCP_NODELAY a reply written in more than one segment waits for
    // the client's delayed ACK (~40 ms) on a kept-alive connection.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on a gateway connection: {e}");
        }
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .context("gateway server failed")
    });
    Ok(RunningGateway { addr, task })
}
