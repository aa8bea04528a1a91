//! One way to serve a set of tonic services.
//!
//! Every server gets `grpc.health.v1`, server reflection (v1 and v1alpha),
//! the layers (per-RPC span and metrics, concurrency limit, auth), request
//! timeouts, and graceful shutdown: when the shutdown token fires (SIGTERM or
//! SIGINT in a binary), health turns NOT_SERVING for every service, the
//! server keeps answering for `shutdown_delay` so load balancers stop routing
//! to it, then stops accepting and lets in-flight calls finish for at most
//! `shutdown_grace`.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{body::Body, server::NamedService, service::Routes};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{auth::AuthLayer, config::ServerConfig, telemetry::RpcObserveLayer};

/// The services one server will host.
pub struct ServiceSet {
    routes: Routes,
    names: Vec<&'static str>,
}

impl Default for ServiceSet {
    fn default() -> Self {
        Self::new()
    }
}

impl ServiceSet {
    pub fn new() -> Self {
        ServiceSet { routes: Routes::default(), names: Vec::new() }
    }

    pub fn with<S>(mut self, svc: S) -> Self
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes = self.routes.add_service(svc);
        self
    }

    pub fn names(&self) -> &[&'static str] {
        &self.names
    }
}

/// A server that is running; dropping it does not stop it: cancel its token.
pub struct RunningServer {
    pub grpc_addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub health: HealthReporter,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Begins graceful shutdown.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the server has stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task panicked")?
    }
}

/// Binds, starts serving in a background task and returns at once.
pub async fn start(
    cfg: &ServerConfig,
    auth: AuthLayer,
    services: ServiceSet,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningServer> {
    let listener = TcpListener::bind(cfg.grpc_addr)
        .await
        .with_context(|| format!("cannot listen on {} (BANSO_GRPC_ADDR)", cfg.grpc_addr))?;
    let grpc_addr = listener.local_addr()?;

    let admin_addr = match cfg.admin_addr {
        Some(addr) => Some(start_admin(addr, shutdown.clone()).await?),
        None => None,
    };

    let (health, health_service) = tonic_health::server::health_reporter();
    for name in &services.names {
        health.set_service_status(*name, ServingStatus::Serving).await;
    }
    health.set_service_status("", ServingStatus::Serving).await;

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(banso_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(banso_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let routes = services.routes.add_service(health_service).add_service(reflection_v1).add_service(reflection_v1alpha);

    let layers = tower::ServiceBuilder::new()
        .layer(RpcObserveLayer)
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(cfg.concurrency_limit))
        .layer(auth)
        .into_inner();

    let router = tonic::transport::Server::builder()
        .timeout(cfg.request_timeout)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .tcp_nodelay(true)
        .layer(layers)
        .add_routes(routes);

    let names: Vec<&'static str> = services.names.clone();
    let reporter = health.clone();
    let delay = cfg.shutdown_delay;
    let grace = cfg.shutdown_grace;
    let signal_token = shutdown.clone();
    let signal = async move {
        signal_token.cancelled().await;
        tracing::info!("shutdown: health NOT_SERVING, draining");
        for name in &names {
            reporter.set_service_status(*name, ServingStatus::NotServing).await;
        }
        reporter.set_service_status("", ServingStatus::NotServing).await;
        tokio::time::sleep(delay).await;
    };

    let incoming = TcpListenerStream::new(listener);
    let waiter = shutdown.clone();
    let task = tokio::spawn(async move {
        let serve = router.serve_with_incoming_shutdown(incoming, signal);
        tokio::pin!(serve);
        tokio::select! {
            res = &mut serve => return res.context("gRPC server failed"),
            _ = waiter.cancelled() => {}
        }
        // Shutdown began: the in-flight calls get `delay + grace` in all.
        match tokio::time::timeout(delay + grace, &mut serve).await {
            Ok(res) => res.context("gRPC server failed")?,
            Err(_) => tracing::warn!(grace_secs = grace.as_secs_f64(), "in-flight calls did not finish in time"),
        }
        tracing::info!("server stopped");
        Ok(())
    });

    Ok(RunningServer { grpc_addr, admin_addr, health, shutdown, task })
}

/// Serves the admin HTTP routes (Prometheus `/metrics`, `/livez`) until shutdown.
pub async fn start_admin(addr: SocketAddr, shutdown: CancellationToken) -> anyhow::Result<SocketAddr> {
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (BANSO_ADMIN_ADDR)"))?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        let serve = axum::serve(listener, crate::telemetry::admin_router())
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "admin server failed");
        }
    });
    Ok(local)
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}

/// Shared state every service handler needs from the kit.
#[derive(Clone)]
pub struct Kit {
    pub page_tokens: crate::paging::PageTokens,
    pub max_message_bytes: usize,
}

impl Kit {
    pub fn from_config(cfg: &crate::config::Config) -> Self {
        let page_tokens = match &cfg.page_token_secret {
            Some(s) => crate::paging::PageTokens::new(s.expose().as_bytes()),
            None => crate::paging::PageTokens::random(),
        };
        Kit { page_tokens, max_message_bytes: cfg.server.max_message_bytes }
    }
}

/// The auth layer for a configuration.
pub fn auth_layer(cfg: &crate::config::Config) -> anyhow::Result<AuthLayer> {
    cfg.require_auth_keys()?;
    Ok(AuthLayer::new(Arc::new(crate::auth::Authenticator::from_config(&cfg.auth)?)))
}
