//! `banso`: one binary, one role per process (the Loki/Mimir model).
//!
//! - `banso up`: every service in one process on SQLite files under
//!   `./banso-data`, printing the gRPC address and a development token.
//! - `banso serve <service>`: one service, configured from the environment
//!   (what a Kubernetes pod runs); `banso serve gateway` runs the gateway
//!   alone, in front of the services' addresses.
//! - `banso migrate [service]`: apply migrations and exit.
//! - `banso token --tenant T --role R`: mint a development token.

use std::{path::Path, time::Duration};

use anyhow::Context as _;
use banso::{SERVICES, service, service_names};
use banso_events::ServiceDef;
use banso_kit::{
    auth::{DevTokenIssuer, Role, valid_tenant_id},
    config::{Config, Secret, Vars},
    server, telemetry,
};
use clap::{Parser, Subcommand, ValueEnum, builder::PossibleValuesParser};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "banso", version, about = "Banso: self-hosted Customer Success platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Csm,
    Viewer,
    Service,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Csm => Role::Csm,
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Service => Role::Service,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in one process on SQLite (nothing to install).
    Up {
        /// Where the SQLite files and development keys live.
        #[arg(long, env = "BANSO_DATA_DIR", default_value = "./banso-data")]
        data_dir: String,
        /// gRPC listen address.
        #[arg(long, env = "BANSO_GRPC_ADDR", default_value = "127.0.0.1:50051")]
        grpc_addr: String,
        /// Admin (metrics) listen address, or "off".
        #[arg(long, env = "BANSO_ADMIN_ADDR", default_value = "127.0.0.1:9090")]
        admin_addr: String,
        /// Gateway (REST, gRPC-Web, tracking) listen address.
        #[arg(long, env = "BANSO_GATEWAY_ADDR", default_value = "127.0.0.1:8080")]
        gateway_addr: String,
        /// Tenant of the printed development token.
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Run one service (or the gateway), configured from BANSO_* environment variables.
    Serve {
        #[arg(value_parser = PossibleValuesParser::new(servable()))]
        service: String,
    },
    /// Apply database migrations (of one service, or all) and exit.
    Migrate {
        #[arg(value_parser = PossibleValuesParser::new(service_names()))]
        service: Option<String>,
    },
    /// Print the gateway's OpenAPI 3.1 document (docs/openapi.json is this, checked in).
    Openapi,
    /// Mint a development token (HS256; needs BANSO_JWT_HS256_SECRET or `banso up`'s data directory).
    Token {
        #[arg(long, default_value = "default")]
        tenant: String,
        #[arg(long, value_enum, default_value = "admin")]
        role: RoleArg,
        #[arg(long, default_value = "dev")]
        subject: String,
        /// Lifetime in hours.
        #[arg(long, default_value_t = 24 * 30)]
        ttl_hours: u64,
        #[arg(long, env = "BANSO_DATA_DIR", default_value = "./banso-data")]
        data_dir: String,
    },
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("banso: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up { data_dir, grpc_addr, admin_addr, gateway_addr, tenant } => {
            up(data_dir, grpc_addr, admin_addr, gateway_addr, tenant).await
        }
        Command::Serve { service: name } if name == GATEWAY => serve_gateway(Config::from_env()?).await,
        Command::Serve { service: name } => {
            let config = Config::from_env()?;
            let def = service(&name).with_context(|| format!("no service {name:?}"))?;
            serve(config, &[def], None).await
        }
        Command::Migrate { service: name } => {
            let config = Config::from_env()?;
            let _telemetry = telemetry::init("banso-migrate", &config)?;
            let defs: Vec<&ServiceDef> = match name {
                Some(n) => vec![service(&n).with_context(|| format!("no service {n:?}"))?],
                None => SERVICES.to_vec(),
            };
            banso::migrate(&config, &defs).await
        }
        Command::Openapi => {
            use std::io::Write as _;
            std::io::stdout().write_all(&banso_gateway::openapi::render()?)?;
            Ok(())
        }
        Command::Token { tenant, role, subject, ttl_hours, data_dir } => {
            anyhow::ensure!(valid_tenant_id(&tenant), "--tenant {tenant:?} must be 1 to 64 of [A-Za-z0-9_-]");
            let mut vars = Vars::from_env()?;
            if vars.get("BANSO_JWT_HS256_SECRET").is_none() {
                let path = Path::new(&data_dir).join("dev-jwt-secret");
                let secret = std::fs::read_to_string(&path).with_context(|| {
                    format!("no BANSO_JWT_HS256_SECRET and no {} (run `banso up` first)", path.display())
                })?;
                vars.set("BANSO_JWT_HS256_SECRET", secret.trim());
            }
            let config = Config::from_vars(&vars)?;
            let issuer = DevTokenIssuer::from_config(&config.auth).context("no development signing key")?;
            println!("{}", issuer.mint(&tenant, &subject, &[role.into()], Duration::from_secs(ttl_hours * 3600)));
            Ok(())
        }
    }
}

/// A secret kept in the data directory, made on first use.
fn dev_secret(dir: &Path, name: &str) -> anyhow::Result<Secret> {
    let path = dir.join(name);
    if let Ok(s) = std::fs::read_to_string(&path) {
        return Ok(Secret::new(s.trim()));
    }
    let bytes: [u8; 32] = rand::random();
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&path, &secret).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(Secret::new(secret))
}

/// `banso serve gateway`: the gateway is a role of the binary, not a service.
const GATEWAY: &str = "gateway";

fn servable() -> Vec<&'static str> {
    let mut names = service_names();
    names.push(GATEWAY);
    names
}

async fn up(
    data_dir: String,
    grpc_addr: String,
    admin_addr: String,
    gateway_addr: String,
    tenant: String,
) -> anyhow::Result<()> {
    anyhow::ensure!(valid_tenant_id(&tenant), "--tenant {tenant:?} must be 1 to 64 of [A-Za-z0-9_-]");
    let dir = Path::new(&data_dir);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut vars = Vars::from_env()?;
    vars.set("BANSO_DATA_DIR", data_dir.clone());
    vars.set("BANSO_GRPC_ADDR", grpc_addr);
    vars.set("BANSO_ADMIN_ADDR", admin_addr);
    vars.set("BANSO_GATEWAY_ADDR", gateway_addr);
    // The embedded default is SQLite: ignore a database URL meant for `serve`.
    if vars.get("BANSO_DATABASE_URL").is_some() {
        eprintln!("banso up: ignoring BANSO_DATABASE_URL; `banso up` keeps its data in {data_dir}");
    }
    vars.set("BANSO_DATABASE_URL", "");
    // One process owns its SQLite files: it migrates them itself.
    if vars.get("BANSO_MIGRATE_ON_START").is_none() {
        vars.set("BANSO_MIGRATE_ON_START", "true");
    }
    if vars.get("BANSO_JWT_HS256_SECRET").is_none() {
        vars.set("BANSO_JWT_HS256_SECRET", dev_secret(dir, "dev-jwt-secret")?.expose());
    }
    if vars.get("BANSO_SERVICE_TOKEN_SECRET").is_none() {
        vars.set("BANSO_SERVICE_TOKEN_SECRET", dev_secret(dir, "service-token-secret")?.expose());
    }
    if vars.get("BANSO_PAGE_TOKEN_SECRET").is_none() {
        vars.set("BANSO_PAGE_TOKEN_SECRET", dev_secret(dir, "page-token-secret")?.expose());
    }
    if vars.get("BANSO_FEEDBACK_TOKEN_SECRET").is_none() && vars.get("BANSO_FEEDBACK_TOKEN_SECRET_FILE").is_none() {
        vars.set("BANSO_FEEDBACK_TOKEN_SECRET", dev_secret(dir, "feedback-token-secret")?.expose());
    }
    // On a terminal the banner is what a newcomer reads: start-up detail
    // (migrations applied, tasks started) stays at debug level unless asked for.
    if vars.get("BANSO_LOG").is_none() && vars.get("RUST_LOG").is_none() {
        vars.set("BANSO_LOG", "warn");
    }
    let config = Config::from_vars(&vars)?;
    let issuer = DevTokenIssuer::from_config(&config.auth).context("no development signing key")?;
    let token = issuer.mint(&tenant, "dev", &[Role::Admin], Duration::from_secs(30 * 24 * 3600));
    serve(config, SERVICES, Some((tenant, token))).await
}

async fn serve(config: Config, services: &[&ServiceDef], dev: Option<(String, String)>) -> anyhow::Result<()> {
    let role = if services.len() == 1 { services[0].name } else { "all" };
    let _telemetry = telemetry::init(&format!("banso-{role}"), &config)?;
    if config.page_token_secret.is_none() {
        tracing::warn!("BANSO_PAGE_TOKEN_SECRET is not set: page tokens will not survive a restart or cross replicas");
    }
    if config.bus.nats_url.is_none() && dev.is_none() {
        tracing::warn!(
            "BANSO_NATS_URL is not set: events use the embedded log in {} and reach only this process",
            config.data_dir.display()
        );
    }
    let shutdown = CancellationToken::new();
    // Listening for SIGTERM before the process says it is up: a signal
    // right after the banner must drain, not kill.
    let signal = server::shutdown_signal();
    let process = banso::start(&config, services, shutdown.clone()).await?;
    let (running, events) = (process.server, process.runtime);
    // `banso up` fronts its services with the gateway in the same process.
    let gateway = match &dev {
        Some(_) => {
            let upstreams = banso::local_upstreams(&config, running.grpc_addr)?;
            Some(banso::start_gateway(&config, upstreams, shutdown.clone()).await?)
        }
        None => None,
    };
    tracing::info!(grpc = %running.grpc_addr, admin = ?running.admin_addr, role, bus = events.bus.kind(), "banso is serving");
    if let Some((tenant, token)) = dev {
        println!();
        println!("Banso is up (embedded mode: SQLite under {}).", config.data_dir.display());
        if let Some(g) = &gateway {
            println!("  REST:    http://{}/v1/accounts  (OpenAPI: http://{}/openapi.json)", g.addr, g.addr);
        }
        println!("  gRPC:    {}", running.grpc_addr);
        if let Some(admin) = running.admin_addr {
            println!("  metrics: http://{admin}/metrics");
        }
        println!("  tenant:  {tenant}");
        println!("  token (admin, 30 days):");
        println!("{token}");
        println!();
        if let Some(g) = &gateway {
            println!("Try: curl -H \"authorization: Bearer $TOKEN\" http://{}/v1/accounts", g.addr);
        }
        println!("     buf curl --protocol grpc --http2-prior-knowledge -H \"authorization: Bearer $TOKEN\" \\");
        println!("       http://{}/banso.accounts.v1.AccountsService/ListAccounts", running.grpc_addr);
        println!();
    }
    tokio::select! {
        _ = signal => shutdown.cancel(),
        _ = shutdown.cancelled() => {}
    }
    if let Some(g) = gateway {
        g.task.await??;
    }
    running.wait().await
}

/// `banso serve gateway`: the gateway alone, in front of the services at
/// `BANSO_GATEWAY_<SERVICE>_URL` (their Kubernetes Services by default).
async fn serve_gateway(config: Config) -> anyhow::Result<()> {
    let _telemetry = telemetry::init("banso-gateway", &config)?;
    let shutdown = CancellationToken::new();
    let signal = server::shutdown_signal();
    let settings = banso_gateway::GatewaySettings::from_config(&config)?;
    let pool = banso_gateway::descriptor_pool()?;
    let upstreams = banso_gateway::Upstreams::from_urls(
        &pool,
        &settings.upstream_urls,
        Duration::from_secs(5),
        config.server.max_message_bytes,
    )?;
    let running = banso::start_gateway(&config, upstreams, shutdown.clone()).await?;
    let draining = CancellationToken::new();
    // Ready once its listener is up (it is, here) and until shutdown begins;
    // an unreachable service answers its own routes UNAVAILABLE.
    let admin = match config.server.admin_addr {
        Some(addr) => {
            let stopping = draining.clone();
            let ready: telemetry::ReadyCheck =
                std::sync::Arc::new(move || if stopping.is_cancelled() { Err("shutting down".into()) } else { Ok(()) });
            Some(server::start_admin(addr, shutdown.clone(), ready).await?)
        }
        None => None,
    };
    tracing::info!(http = %running.addr, admin = ?admin, upstreams = ?settings.upstream_urls, "banso gateway is serving");
    signal.await;
    // As the services do: not ready at once, but stop taking new
    // connections only after the delay that lets load balancers stop
    // routing here.
    draining.cancel();
    tokio::time::sleep(config.server.shutdown_delay).await;
    shutdown.cancel();
    match tokio::time::timeout(config.server.shutdown_grace, running.task).await {
        Ok(res) => res??,
        Err(_) => tracing::warn!("in-flight requests did not finish in time"),
    }
    Ok(())
}
