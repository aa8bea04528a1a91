//! One way to serve a set of tonic services.
//!
//! Every server gets `grpc.health.v1`, server reflection (v1 and v1alpha) of
//! exactly the services it hosts, the layers (per-RPC span and metrics,
//! panic catching, concurrency limit, auth), request timeouts, and graceful
//! shutdown: when the shutdown token fires (SIGTERM or SIGINT in a binary),
//! health turns NOT_SERVING for every service, the server keeps answering
//! for `shutdown_delay` so load balancers stop routing to it, then stops
//! accepting and lets in-flight calls finish for at most `shutdown_grace`.
//!
//! Health also follows the [`Supervisor`]: a service whose background task
//! is down, or whose database or bus is failing (its conditions), is
//! NOT_SERVING until that is over. The admin port's `/readyz` tells the same.

use std::{
    convert::Infallible,
    net::SocketAddr,
    panic::AssertUnwindSafe,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use anyhow::Context as _;
use futures::{FutureExt as _, future::BoxFuture};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::{body::Body, server::NamedService, service::Routes, transport::server::TcpIncoming};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    auth::AuthLayer,
    config::ServerConfig,
    supervise::{Supervisor, panic_message},
    telemetry::RpcObserveLayer,
};

/// Handlers that panicked, by method (each caught and answered INTERNAL).
pub const PANICS_TOTAL: &str = "banso_grpc_server_panics_total";

/// 1 while a hosted service is SERVING, 0 while it is not, by service.
pub const READY: &str = "banso_ready";

/// The services one server will host.
pub struct ServiceSet {
    routes: Routes,
    names: Vec<&'static str>,
    /// (service, the service whose readiness it shares): services of one
    /// component on one database report NOT_SERVING together.
    follows: Vec<(&'static str, &'static str)>,
}

impl Default for ServiceSet {
    fn default() -> Self {
        Self::new()
    }
}

impl ServiceSet {
    pub fn new() -> Self {
        ServiceSet { routes: Routes::default(), names: Vec::new(), follows: Vec::new() }
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

    /// Adds `svc`, whose readiness follows `leader`'s: a task of the leader
    /// down, or its database or bus failing, takes both out of rotation
    /// (Playbooks' ProgrammesService and OutreachService follow
    /// PlaybooksService, whose probes watch the database they share).
    pub fn with_following<S>(mut self, svc: S, leader: &'static str) -> Self
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.follows.push((S::NAME, leader));
        self.with(svc)
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

/// Binds, starts serving in a background task and returns at once. The
/// server stops when the supervisor's shutdown token fires.
pub async fn start(
    cfg: &ServerConfig,
    auth: AuthLayer,
    services: ServiceSet,
    supervisor: &Supervisor,
) -> anyhow::Result<RunningServer> {
    let shutdown = supervisor.shutdown().clone();
    let listener = TcpListener::bind(cfg.grpc_addr)
        .await
        .with_context(|| format!("cannot listen on {} (BANSO_GRPC_ADDR)", cfg.grpc_addr))?;
    let grpc_addr = listener.local_addr()?;

    let admin_stop = CancellationToken::new();
    let admin_addr = match cfg.admin_addr {
        Some(addr) => {
            let (sup, stopping) = (supervisor.clone(), shutdown.clone());
            let ready: crate::telemetry::ReadyCheck = Arc::new(move || {
                if stopping.is_cancelled() {
                    return Err("shutting down".into());
                }
                sup.not_ready().map_or(Ok(()), Err)
            });
            // The admin port outlives the drain: /readyz says 503 and
            // /livez 200 until the gRPC server has stopped.
            Some(start_admin(addr, admin_stop.clone(), ready).await?)
        }
        None => None,
    };

    let (health, health_service) = tonic_health::server::health_reporter();
    let down = supervisor.watch().borrow().clone();
    sync_health(&health, &services.names, &services.follows, &down, false).await;
    spawn_health_sync(health.clone(), services.names.clone(), services.follows.clone(), supervisor);

    // Reflection lists what this process serves, not the whole API.
    let reflection = || {
        let mut b = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(banso_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for name in &services.names {
            b = b.with_service_name(*name);
        }
        b
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    crate::telemetry::register_rpc_metrics(&services.names);

    let routes = services.routes.add_service(health_service).add_service(reflection_v1).add_service(reflection_v1alpha);

    auth.stop_on(&shutdown);
    let layers = tower::ServiceBuilder::new()
        .layer(RpcObserveLayer)
        .layer(CatchPanicLayer)
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(cfg.concurrency_limit))
        .layer(auth)
        .into_inner();

    let mut builder = tonic::transport::Server::builder();
    if let Some(age) = cfg.max_connection_age {
        // GOAWAY after `age`: clients reconnect, through the load balancer,
        // to replicas added since; calls in flight get the grace.
        builder = builder.max_connection_age(age).max_connection_age_grace(cfg.max_connection_age_grace);
    }
    let router = builder
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

    // The builder's tcp_nodelay applies only to listeners tonic binds itself;
    // without it small replies wait for the peer's delayed ACK (~40 ms).
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let waiter = shutdown.clone();
    let task = tokio::spawn(async move {
        let _admin = admin_stop.drop_guard();
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

/// Sets every hosted service (and the server as a whole, `""`) SERVING
/// unless it is shutting down or one of its background tasks is down.
async fn sync_health(
    health: &HealthReporter,
    names: &[&'static str],
    follows: &[(&'static str, &'static str)],
    down: &crate::supervise::Down,
    stopping: bool,
) {
    let is_down = |name: &str| down.get(name).is_some_and(|t| !t.is_empty());
    let mut any_down = stopping;
    for name in names {
        let leader = follows.iter().find(|(f, _)| f == name).map(|(_, l)| *l);
        let out = stopping || is_down(name) || leader.is_some_and(is_down);
        any_down |= out;
        let status = if out { ServingStatus::NotServing } else { ServingStatus::Serving };
        metrics::gauge!(READY, "service" => *name).set(if out { 0.0 } else { 1.0 });
        health.set_service_status(*name, status).await;
    }
    let status = if any_down { ServingStatus::NotServing } else { ServingStatus::Serving };
    health.set_service_status("", status).await;
}

/// Follows the supervisor's view of the background tasks until shutdown
/// (after which health stays NOT_SERVING).
fn spawn_health_sync(
    health: HealthReporter,
    names: Vec<&'static str>,
    follows: Vec<(&'static str, &'static str)>,
    supervisor: &Supervisor,
) {
    let mut watch = supervisor.watch();
    let shutdown = supervisor.shutdown().clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = watch.changed() => if changed.is_err() { return },
                _ = shutdown.cancelled() => return,
            }
            let down = watch.borrow_and_update().clone();
            sync_health(&health, &names, &follows, &down, shutdown.is_cancelled()).await;
        }
    });
}

/// Tower layer: a handler that panics is answered INTERNAL (ErrorInfo
/// reason `PANIC`), logged with its method and counted in
/// [`PANICS_TOTAL`]; the connection and every other call on it go on.
/// (tower-http's `CatchPanicLayer` does not tell its handler which method
/// panicked, and the reply must be a gRPC status, not an HTTP 500.)
#[derive(Clone, Copy, Default)]
pub struct CatchPanicLayer;

impl<S> tower::Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic { inner }
    }
}

#[derive(Clone)]
pub struct CatchPanic<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for CatchPanic<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().to_owned();
        // A service may panic while it builds its future, or while it runs.
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(fut) => Box::pin(async move {
                match AssertUnwindSafe(fut).catch_unwind().await {
                    Ok(res) => res,
                    Err(payload) => Ok(panic_reply(&method, payload.as_ref())),
                }
            }),
            Err(payload) => {
                let reply = panic_reply(&method, payload.as_ref());
                Box::pin(async move { Ok(reply) })
            }
        }
    }
}

fn panic_reply(method: &str, payload: &(dyn std::any::Any + Send)) -> http::Response<Body> {
    tracing::error!(method, panic = panic_message(payload), "handler panicked; answered INTERNAL");
    metrics::counter!(PANICS_TOTAL, "method" => method.to_owned()).increment(1);
    let mut details = tonic_types::ErrorDetails::new();
    details.set_error_info("PANIC", crate::error::ERROR_DOMAIN, std::collections::HashMap::new());
    use tonic_types::StatusExt as _;
    tonic::Status::with_error_details(tonic::Code::Internal, "internal error", details).into_http()
}

/// Serves the admin HTTP routes (Prometheus `/metrics`, `/livez`, `/readyz`
/// answered by `ready`) until shutdown.
pub async fn start_admin(
    addr: SocketAddr,
    shutdown: CancellationToken,
    ready: crate::telemetry::ReadyCheck,
) -> anyhow::Result<SocketAddr> {
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (BANSO_ADMIN_ADDR)"))?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        let serve = axum::serve(listener, crate::telemetry::admin_router(ready))
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "admin server failed");
        }
    });
    Ok(local)
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C). The handlers are installed when
/// this is called, not when the future is first polled: call it before the
/// process says it is ready, or a signal that comes right after is handled
/// by the default action (the process dies without draining).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let int = signal(SignalKind::interrupt()).ok();
        let term = signal(SignalKind::terminate()).ok();
        async fn recv(s: Option<Signal>) {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        async move {
            tokio::select! {
                _ = recv(int) => tracing::info!("SIGINT received"),
                _ = recv(term) => tracing::info!("SIGTERM received"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C received");
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
