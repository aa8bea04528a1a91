//! banso-testkit: start a service in-process on 127.0.0.1:0 against a fresh
//! database, with a connected channel and tokens for any tenant and role.
//!
//! The database is a fresh SQLite file by default, or a fresh PostgreSQL
//! database when `BANSO_TEST_DATABASE_URL` points at PostgreSQL, so the same
//! suites run on both backends. Tests share nothing and run in parallel.
//! Logs stay quiet unless `BANSO_TEST_LOG` holds a filter (e.g. `debug`).
//!
//! Each app gets its own event bus: an embedded log in its temp directory,
//! or, when `BANSO_TEST_NATS_URL` is set, NATS JetStream under a namespace of
//! its own, so parallel tests never see each other's events.
//!
//! This crate reads its own settings (`BANSO_TEST_*`) from the environment:
//! they configure the test run, not a service.
#![allow(clippy::disallowed_methods)]

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use banso_events::{ServiceDef, service::Context};
use banso_kit::{
    auth::{DevTokenIssuer, Role},
    config::{Config, Vars},
    server::{self, Kit, RunningServer, ServiceSet},
    supervise::Supervisor,
};
use sea_orm::{ConnectionTrait, Database};
use tokio_util::sync::CancellationToken;
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::Interceptor,
    transport::Channel,
};

pub use banso_kit::auth::Role as TestRole;

/// The HS256 secret every test server trusts.
pub const TEST_SECRET: &str = "banso-test-secret-banso-test-secret";

/// A fresh database for one test; removed when dropped.
pub struct TestDb {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    pub fn is_postgres(&self) -> bool {
        matches!(self.cleanup, Cleanup::Postgres { .. })
    }

    /// The URL `service` connects to: its own SQLite file, or the fresh
    /// PostgreSQL database (the service then uses its own schema in it).
    pub fn url_for(&self, service: &str) -> String {
        match &self.cleanup {
            Cleanup::Dir(dir) => banso_kit::db::sqlite_url_in(dir, service).expect("test dir is writable"),
            Cleanup::Postgres { .. } => self.url.clone(),
        }
    }

    /// A directory that lives as long as this database (for the embedded bus).
    pub fn dir(&self) -> PathBuf {
        match &self.cleanup {
            Cleanup::Dir(dir) => dir.clone(),
            Cleanup::Postgres { name, .. } => {
                let dir = std::env::temp_dir().join(name);
                std::fs::create_dir_all(&dir).expect("temp dir is writable");
                dir
            }
        }
    }

    /// Connects `service` to this database and applies its migrations.
    pub async fn connect<M: sea_orm_migration::MigratorTrait>(
        &self,
        service: &str,
    ) -> anyhow::Result<sea_orm::DatabaseConnection> {
        let cfg = banso_kit::config::DatabaseConfig {
            url: None,
            max_connections: 5,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(30),
            ..Default::default()
        };
        let db = banso_kit::db::connect(&self.url_for(service), service, &cfg).await?;
        banso_kit::db::migrate::<M>(&db).await?;
        Ok(db)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                let _ = std::fs::remove_dir_all(std::env::temp_dir().join(name));
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime: use a thread of our own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                    rt.block_on(async {
                        let db = Database::connect(admin_url).await.ok()?;
                        db.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.ok()
                    })
                })
                .join();
            }
        }
    }
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// A fresh, empty database.
pub async fn fresh_database() -> anyhow::Result<TestDb> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    match std::env::var("BANSO_TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let name = format!("banso_test_{id}");
            let admin = Database::connect(url.clone()).await?;
            admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
            admin.close().await.ok();
            Ok(TestDb { url: with_database(&url, &name), cleanup: Cleanup::Postgres { admin_url: url, name } })
        }
        Ok(url) if !url.is_empty() && !url.starts_with("sqlite") => {
            anyhow::bail!(
                "BANSO_TEST_DATABASE_URL must be a postgres:// URL or unset, got a {:?} URL",
                url.split(':').next()
            )
        }
        _ => {
            let dir = std::env::temp_dir().join(format!("banso-test-{id}"));
            std::fs::create_dir_all(&dir)?;
            Ok(TestDb { url: String::new(), cleanup: Cleanup::Dir(dir) })
        }
    }
}

/// Options for [`spawn`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// How long health reports NOT_SERVING before the server stops accepting.
    pub shutdown_delay: Duration,
    /// More configuration (e.g. a service's `BANSO_HEALTH_*` settings).
    pub vars: Vec<(String, String)>,
    /// Reach PostgreSQL through this address (a [`Proxy`]) instead of the
    /// one in `BANSO_TEST_DATABASE_URL`.
    pub database_via: Option<SocketAddr>,
    /// Reach NATS through this address (a [`Proxy`]) instead of the one in
    /// `BANSO_TEST_NATS_URL`.
    pub nats_via: Option<SocketAddr>,
}

/// A running test server.
pub struct TestApp {
    /// The app's bus and the supervisor of its background tasks.
    pub runtime: banso_events::Runtime,
    pub addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub channel: Channel,
    pub config: Config,
    tokens: DevTokenIssuer,
    server: Option<RunningServer>,
    _db: TestDb,
}

impl TestApp {
    /// A token for `tenant` with `role`, valid for an hour.
    pub fn token(&self, tenant: &str, role: Role) -> String {
        self.tokens.mint(tenant, "test-user", &[role], Duration::from_secs(3600))
    }

    /// An interceptor that sends `token` as the bearer token.
    pub fn bearer(&self, tenant: &str, role: Role) -> Bearer {
        Bearer::new(&self.token(tenant, role))
    }

    /// Begins graceful shutdown (health turns NOT_SERVING).
    pub fn begin_shutdown(&self) {
        if let Some(s) = &self.server {
            s.shutdown();
        }
    }

    /// Shuts down and waits until the server has stopped.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        match self.server.take() {
            Some(s) => {
                s.shutdown();
                s.wait().await
            }
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.runtime.shutdown().cancel();
        if let Some(s) = &self.server {
            s.shutdown();
        }
    }
}

/// A bus of its own for one test app.
pub async fn test_bus(dir: &std::path::Path) -> anyhow::Result<Arc<dyn banso_events::Bus>> {
    test_bus_via(dir, None).await
}

async fn test_bus_via(dir: &std::path::Path, via: Option<SocketAddr>) -> anyhow::Result<Arc<dyn banso_events::Bus>> {
    match std::env::var("BANSO_TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => {
            let url = match via {
                Some(addr) => with_host(&url, addr),
                None => url,
            };
            let ns = format!("t{}", &uuid::Uuid::now_v7().simple().to_string()[16..]);
            Ok(Arc::new(banso_events::nats::NatsBus::connect_with(&url, Some(&ns), &test_nats_auth()?).await?))
        }
        _ => Ok(Arc::new(banso_events::embedded::EmbeddedBus::open(&dir.join("bus")).await?)),
    }
}

/// The TLS and credentials of the test NATS, as `BANSO_NATS_*` would give
/// them: `BANSO_TEST_NATS_CA_FILE` and `BANSO_TEST_NATS_TOKEN` (`.ci/tls.sh`
/// runs the event suites over a TLS NATS that wants a token).
pub fn test_nats_auth() -> anyhow::Result<banso_kit::config::NatsAuth> {
    let mut vars = Vars::default();
    for (test, real) in
        [("BANSO_TEST_NATS_CA_FILE", "BANSO_NATS_CA_FILE"), ("BANSO_TEST_NATS_TOKEN", "BANSO_NATS_TOKEN")]
    {
        if let Ok(v) = std::env::var(test) {
            vars.set(real, v);
        }
    }
    Ok(Config::from_vars(&vars)?.bus.nats)
}

/// Sends a bearer token with every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    pub fn new(token: &str) -> Self {
        Bearer(format!("Bearer {token}").parse().expect("a JWT is valid metadata"))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("BANSO_TEST_LOG") {
            let vars = Vars::from_pairs([("BANSO_LOG", filter.as_str()), ("BANSO_LOG_FORMAT", "pretty")]);
            if let Ok(cfg) = Config::from_vars(&vars) {
                let _ = banso_kit::telemetry::init("banso-test", &cfg).map(std::mem::forget);
            }
        }
    });
}

/// Starts `services` in one server on a fresh database, as `banso up` does.
pub async fn spawn(services: &[&ServiceDef]) -> anyhow::Result<TestApp> {
    spawn_with(Options::default(), services).await
}

pub async fn spawn_with(options: Options, services: &[&ServiceDef]) -> anyhow::Result<TestApp> {
    init_logs();
    let db = fresh_database().await?;
    let mut vars = Vars::from_pairs([
        ("BANSO_GRPC_ADDR", "127.0.0.1:0"),
        ("BANSO_ADMIN_ADDR", "127.0.0.1:0"),
        ("BANSO_JWT_HS256_SECRET", TEST_SECRET),
        ("BANSO_PAGE_TOKEN_SECRET", "banso-test-page-token-secret-0123456789"),
        ("BANSO_SERVICE_TOKEN_SECRET", "banso-test-service-token-secret-0123456789"),
        ("BANSO_FEEDBACK_TOKEN_SECRET", "banso-test-feedback-token-secret-0123456789"),
        ("BANSO_SHUTDOWN_GRACE_SECS", "2"),
        ("BANSO_DB_MAX_CONNECTIONS", "5"),
        // A fresh database each time: migrate it, as `banso up` does.
        ("BANSO_MIGRATE_ON_START", "true"),
    ]);
    vars.set("BANSO_SHUTDOWN_DELAY_SECS", options.shutdown_delay.as_secs_f64().to_string());
    for (k, v) in &options.vars {
        vars.set(k.clone(), v.clone());
    }
    match &db.cleanup {
        Cleanup::Dir(dir) => vars.set("BANSO_DATA_DIR", dir.display().to_string()),
        Cleanup::Postgres { .. } => vars.set(
            "BANSO_DATABASE_URL",
            match options.database_via {
                Some(addr) => with_host(&db.url, addr),
                None => db.url.clone(),
            },
        ),
    }
    let config = Config::from_vars(&vars)?;
    let kit = Kit::from_config(&config);
    let runtime = banso_events::Runtime::new(
        test_bus_via(&db.dir(), options.nats_via).await?,
        Supervisor::new(CancellationToken::new()),
    );
    let mut set = ServiceSet::new();
    {
        let cx = Context { config: &config, kit: &kit, runtime: &runtime };
        for def in services {
            set = (def.build)(&cx, set).await?;
        }
    }
    let auth = server::auth_layer(&config)?;
    let running = server::start(&config.server, auth, set, &runtime.supervisor).await?;
    runtime.serving_at(running.grpc_addr);
    let channel = Channel::from_shared(format!("http://{}", running.grpc_addr))?.connect().await?;
    Ok(TestApp {
        runtime,
        addr: running.grpc_addr,
        admin_addr: running.admin_addr,
        channel,
        tokens: DevTokenIssuer::from_config(&config.auth)
            .ok_or_else(|| anyhow::anyhow!("test config has an HS256 secret"))?,
        config,
        server: Some(running),
        _db: db,
    })
}

/// `url` with its host and port replaced by `addr` (user, path and query kept).
pub fn with_host(url: &str, addr: SocketAddr) -> String {
    let start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &url[start..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let user = rest[..end].rfind('@').map(|i| &rest[..=i]).unwrap_or("");
    format!("{}{user}{addr}{}", &url[..start], &rest[end..])
}

/// The host and port of `url` (`postgres://u@127.0.0.1:5432/db` →
/// `127.0.0.1:5432`), resolved.
pub fn addr_of(url: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs as _;
    let start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &url[start..];
    let hostport = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
    hostport.to_socket_addrs()?.next().ok_or_else(|| anyhow::anyhow!("{hostport} does not resolve"))
}

/// A TCP proxy in front of a dependency (PostgreSQL, NATS), to take it away
/// from a service and give it back: [`Proxy::cut`] drops every connection
/// through it and closes new ones at once; [`Proxy::restore`] forwards again.
pub struct Proxy {
    pub addr: SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on 127.0.0.1:0 and forwards to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<Proxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, watch) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if *watch.borrow() {
                    drop(client);
                    continue;
                }
                let mut watch = watch.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = watch.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Ok(Proxy { addr, cut, task })
    }

    /// Drops every connection through the proxy and closes new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut.send_replace(true);
        self.task.abort();
    }
}

/// `GET path` on an HTTP/1.1 server (the admin port): the status code and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes()).await?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await?;
    let status = reply.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// Waits until `probe` gives a value, polling every 20 ms, and returns it;
/// after `timeout` the test fails, naming what it waited for. Every test
/// that waits for something asynchronous (events, rollups, scores) waits
/// through this, so none gives up silently.
pub async fn eventually<T, Fut>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The bytes an error status takes in response metadata: the
/// percent-encoded `grpc-message` plus the base64 `grpc-status-details-bin`.
pub fn status_wire_size(status: &tonic::Status) -> usize {
    let message: usize =
        status.message().bytes().map(|b| if (0x20..0x7f).contains(&b) && b != b'%' { 1 } else { 3 }).sum();
    message + status.details().len().div_ceil(3) * 4
}

/// The (field, description) pairs of an INVALID_ARGUMENT status; panics on
/// another code or without BadRequest details.
pub fn field_violations(status: &tonic::Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "expected INVALID_ARGUMENT, got {status:?}");
    let details = status.get_error_details();
    let bad = details.bad_request().unwrap_or_else(|| panic!("no BadRequest details in {status:?}"));
    bad.field_violations.iter().map(|v| (v.field.clone(), v.description.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_replaced_in_urls() {
        let addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        assert_eq!(
            with_host("postgres://u:p@127.0.0.1:5432/x?sslmode=disable", addr),
            "postgres://u:p@127.0.0.1:7000/x?sslmode=disable"
        );
        assert_eq!(with_host("nats://127.0.0.1:4222", addr), "nats://127.0.0.1:7000");
        assert_eq!(addr_of("postgres://postgres@127.0.0.1:5432/postgres").unwrap().port(), 5432);
    }

    #[test]
    fn database_name_is_replaced_in_the_url() {
        assert_eq!(with_database("postgres://u@127.0.0.1:5432/test", "x"), "postgres://u@127.0.0.1:5432/x");
        assert_eq!(
            with_database("postgres://127.0.0.1/test?sslmode=disable", "x"),
            "postgres://127.0.0.1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://127.0.0.1", "x"), "postgres://127.0.0.1/x");
    }
}
