//! A service in-process against a fresh PostgreSQL database that is dropped
//! at the end: the testkit's recipe, with the production defaults for pool,
//! limits and message size, and a database URL from the command line.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use banso_kit::{
    auth::{DevTokenIssuer, Role},
    config::{Config, Vars},
    server::{self, Kit, RunningServer, ServiceSet},
};
use banso_testkit::Bearer;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub type Client = banso_proto::accounts::accounts_service_client::AccountsServiceClient<
    tonic::codegen::InterceptedService<Channel, Bearer>,
>;

/// The tenant every benchmark writes to.
pub const TENANT: &str = "bench";

/// Server-side deadline of one call. The production default (30 s) would cut
/// a slow 100,000-row stream short; the bench reports when an import needs
/// more than that default.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Harness {
    pub config: Config,
    pub channel: Channel,
    /// The database's URL (with the fresh database's name).
    pub db_url: String,
    token: String,
    server: Option<RunningServer>,
    events: banso_events::Runtime,
    admin_url: String,
    db_name: String,
    bus_dir: PathBuf,
    pub keep: bool,
    grpc_addr: String,
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = base[scheme_end..].find('/').map_or(base, |i| &base[..scheme_end + i]);
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

impl Harness {
    /// Creates a fresh database on the server at `admin_url` and starts the
    /// Accounts service on 127.0.0.1:0 against it.
    /// Without `relay`, the service is assembled without its outbox relay
    /// (a diagnostic: events are recorded but not published).
    pub async fn start(admin_url: &str, relay: bool) -> anyhow::Result<Harness> {
        anyhow::ensure!(
            admin_url.starts_with("postgres://") || admin_url.starts_with("postgresql://"),
            "--database-url must be a postgres:// URL"
        );
        let db_name = format!("banso_bench_{}", uuid::Uuid::now_v7().simple());
        let admin = Database::connect(admin_url.to_owned())
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {admin_url}"))?;
        admin.execute_unprepared(&format!("CREATE DATABASE \"{db_name}\"")).await?;
        admin.close().await.ok();
        let db_url = with_database(admin_url, &db_name);
        let bus_dir = std::env::temp_dir().join(&db_name);
        std::fs::create_dir_all(&bus_dir)?;

        let vars = Vars::from_pairs([
            ("BANSO_GRPC_ADDR", "127.0.0.1:0"),
            ("BANSO_ADMIN_ADDR", "off"),
            ("BANSO_JWT_HS256_SECRET", banso_testkit::TEST_SECRET),
            ("BANSO_DATABASE_URL", db_url.as_str()),
            ("BANSO_REQUEST_TIMEOUT_SECS", &REQUEST_TIMEOUT.as_secs().to_string()),
            ("BANSO_SHUTDOWN_GRACE_SECS", "2"),
        ]);
        let config = Config::from_vars(&vars)?;
        let kit = Kit::from_config(&config);
        let events =
            banso_events::Runtime { bus: banso_testkit::test_bus(&bus_dir).await?, shutdown: CancellationToken::new() };
        let mut harness = Harness {
            config: config.clone(),
            channel: Channel::from_static("http://127.0.0.1:1").connect_lazy(),
            db_url,
            token: String::new(),
            server: None,
            events: events.clone(),
            admin_url: admin_url.to_owned(),
            db_name,
            bus_dir,
            keep: false,
            grpc_addr: String::new(),
        };
        match harness.boot(&kit, relay).await {
            Ok(()) => Ok(harness),
            Err(e) => {
                harness.stop().await.ok();
                Err(e)
            }
        }
    }

    async fn boot(&mut self, kit: &Kit, relay: bool) -> anyhow::Result<()> {
        let service = if relay {
            banso_accounts::build(&self.config, kit, &self.events).await?
        } else {
            let db = banso_accounts::connect(&self.config).await?;
            banso_accounts::service(db, banso_events::outbox::OutboxSignal::default(), kit)
        };
        let services = ServiceSet::new().with(service);
        let auth = server::auth_layer(&self.config)?;
        let running = server::start(&self.config.server, auth, services, CancellationToken::new()).await?;
        let addr = running.grpc_addr;
        self.grpc_addr = addr.to_string();
        self.server = Some(running);
        self.channel = Channel::from_shared(format!("http://{addr}"))?.connect().await?;
        let issuer = DevTokenIssuer::from_config(&self.config.auth).context("an HS256 secret is configured")?;
        self.token = issuer.mint(TENANT, "banso-bench", &[Role::Admin], Duration::from_secs(3600));
        Ok(())
    }

    pub fn channel_addr(&self) -> &str {
        &self.grpc_addr
    }

    pub fn client(&self) -> Client {
        banso_proto::accounts::accounts_service_client::AccountsServiceClient::with_interceptor(
            self.channel.clone(),
            Bearer::new(&self.token),
        )
        .max_encoding_message_size(self.config.server.max_message_bytes)
        .max_decoding_message_size(self.config.server.max_message_bytes)
    }

    /// A pool on the service's database with the service's own settings
    /// (size, timeouts, `accounts` first on the search path).
    pub async fn pool(&self) -> anyhow::Result<DatabaseConnection> {
        banso_kit::db::connect(&self.db_url, banso_accounts::NAME, &self.config.database).await
    }

    /// Stops the server and the relay, then drops the database (unless kept).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.events.shutdown.cancel();
        if let Some(s) = self.server.take() {
            s.shutdown();
            s.wait().await?;
        }
        let _ = std::fs::remove_dir_all(&self.bus_dir);
        if self.keep {
            eprintln!("kept database {} (drop it with: DROP DATABASE \"{}\")", self.db_url, self.db_name);
            return Ok(());
        }
        let admin = Database::connect(self.admin_url.clone()).await?;
        admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.db_name)).await?;
        admin.close().await.ok();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(with_database("postgres://h/db?sslmode=disable", "x"), "postgres://h/x?sslmode=disable");
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
