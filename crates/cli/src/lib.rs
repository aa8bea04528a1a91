//! The `banso` process: the list of services and how a process runs some of
//! them. The binary (`up`, `serve`, `migrate`), the cross-service tests and
//! the bench all start services through here, so they run what production
//! runs.

// Caller data must never reach a panic: the lints hold it outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::unreachable, clippy::todo)
)]

use banso_events::{Runtime, ServiceDef, service::Context};
use banso_kit::{
    config::Config,
    server::{self, Kit, RunningServer, ServiceSet},
    supervise::Supervisor,
};
use tokio_util::sync::CancellationToken;

/// Every service, in start order. Adding a service is one line here.
pub const SERVICES: &[&ServiceDef] =
    &[&banso_accounts::SERVICE, &banso_health::SERVICE, &banso_playbooks::SERVICE, &banso_feedback::SERVICE];

/// The service called `name`.
pub fn service(name: &str) -> Option<&'static ServiceDef> {
    SERVICES.iter().copied().find(|s| s.name == name)
}

/// The names of every service, for the command line.
pub fn service_names() -> Vec<&'static str> {
    SERVICES.iter().map(|s| s.name).collect()
}

/// A process serving some services: its server and its runtime.
pub struct Process {
    pub server: RunningServer,
    pub runtime: Runtime,
    pub kit: Kit,
}

/// Connects the bus, builds `services` (their background tasks start under
/// one supervisor) and serves them on one gRPC server.
pub async fn start(config: &Config, services: &[&ServiceDef], shutdown: CancellationToken) -> anyhow::Result<Process> {
    let kit = Kit::from_config(config);
    let auth = server::auth_layer(config)?;
    let bus = banso_events::connect_bus(config).await?;
    let runtime = Runtime::new(bus, Supervisor::new(shutdown));
    let mut set = ServiceSet::new();
    {
        let cx = Context { config, kit: &kit, runtime: &runtime };
        for def in services {
            set = (def.build)(&cx, set).await?;
        }
    }
    let server = server::start(&config.server, auth, set, &runtime.supervisor).await?;
    runtime.serving_at(server.grpc_addr);
    Ok(Process { server, runtime, kit })
}

/// Applies the migrations of `services`.
pub async fn migrate(config: &Config, services: &[&ServiceDef]) -> anyhow::Result<()> {
    for def in services {
        (def.migrate)(config).await?;
        tracing::info!(service = def.name, "migrations applied");
    }
    Ok(())
}

/// Starts the gateway in front of `upstreams` (`banso up`: this process's
/// own gRPC server; `banso serve gateway`: the services' addresses).
pub async fn start_gateway(
    config: &Config,
    upstreams: banso_gateway::Upstreams,
    shutdown: CancellationToken,
) -> anyhow::Result<banso_gateway::RunningGateway> {
    let gateway = banso_gateway::Gateway::new(config, upstreams)?;
    banso_gateway::start(gateway, shutdown).await
}

/// The upstreams of a gateway in the same process as the services: every
/// service through one channel to the process's gRPC address.
pub fn local_upstreams(config: &Config, grpc_addr: std::net::SocketAddr) -> anyhow::Result<banso_gateway::Upstreams> {
    let pool = banso_gateway::descriptor_pool()?;
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{grpc_addr}"))?.tcp_nodelay(true).connect_lazy();
    Ok(banso_gateway::Upstreams::all_at(&pool, channel, config.server.max_message_bytes))
}
