//! A service in-process against a fresh PostgreSQL database that is dropped
//! at the end: the testkit's recipe, with the production defaults for pool,
//! limits and message size, and a database URL from the command line.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use banso_events::service::Context as ServiceContext;
use banso_kit::{
    auth::{DevTokenIssuer, Role},
    config::{Config, Vars},
    server::{self, Kit, RunningServer, ServiceSet},
    supervise::Supervisor,
};
use banso_testkit::Bearer;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub type Client = banso_proto::accounts::accounts_service_client::AccountsServiceClient<
    tonic::codegen::InterceptedService<Channel, Bearer>,
>;
pub type HealthClient = banso_proto::health::health_service_client::HealthServiceClient<
    tonic::codegen::InterceptedService<Channel, Bearer>,
>;

/// The tenant every benchmark writes to.
pub const TENANT: &str = "bench";

pub type PlaybooksClient = banso_proto::playbooks::playbooks_service_client::PlaybooksServiceClient<
    tonic::codegen::InterceptedService<Channel, Bearer>,
>;

/// Server-side deadline of one call. The production default (30 s) would cut
/// a slow 100,000-row stream short; the bench reports when an import needs
/// more than that default.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Which service the harness runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Accounts; without `relay`, assembled without its outbox relay (a
    /// diagnostic: events are recorded but not published).
    Accounts { relay: bool },
    /// Health, as `banso serve health` assembles it (`banso_health::build`:
    /// relay, scorer, Accounts consumer).
    Health,
    /// Playbooks, as `banso serve playbooks` assembles it (its schedule
    /// ticks hourly: the bench runs the pass itself).
    Playbooks,
    /// Health and Playbooks in one process on one bus.
    HealthAndPlaybooks,
}

pub struct Harness {
    pub config: Config,
    pub channel: Channel,
    /// The database's URL (with the fresh database's name).
    pub db_url: String,
    token: String,
    server: Option<RunningServer>,
    pub events: banso_events::Runtime,
    db: FreshDatabase,
    bus_dir: PathBuf,
    /// NATS namespace of this run's streams (deleted at the end).
    nats: Option<(String, String)>,
    pub keep: bool,
    grpc_addr: String,
    /// Further replicas of the service ([`Harness::add_replica`]).
    replicas: Vec<ExtraReplica>,
}

/// Another replica of the harness's service, in this process: a runtime,
/// a bus connection and a server of its own, on the same database.
struct ExtraReplica {
    events: banso_events::Runtime,
    server: RunningServer,
    channel: Channel,
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

/// A database `banso_bench_<uuid>` created for one run.
pub struct FreshDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl FreshDatabase {
    pub async fn create(admin_url: &str) -> anyhow::Result<FreshDatabase> {
        anyhow::ensure!(
            admin_url.starts_with("postgres://") || admin_url.starts_with("postgresql://"),
            "--database-url must be a postgres:// URL"
        );
        let name = format!("banso_bench_{}", uuid::Uuid::now_v7().simple());
        let admin = Database::connect(admin_url.to_owned())
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {admin_url}"))?;
        admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
        admin.close().await.ok();
        Ok(FreshDatabase { url: with_database(admin_url, &name), name, admin_url: admin_url.to_owned() })
    }

    pub async fn drop_or_keep(&self, keep: bool) -> anyhow::Result<()> {
        if keep {
            eprintln!("kept database {} (drop it with: DROP DATABASE \"{}\")", self.url, self.name);
            return Ok(());
        }
        let admin = Database::connect(self.admin_url.clone()).await?;
        admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)).await?;
        admin.close().await.ok();
        Ok(())
    }
}

impl Harness {
    /// Creates a fresh database on the server at `admin_url` and starts the
    /// Accounts service on 127.0.0.1:0 against it.
    /// Without `relay`, the service is assembled without its outbox relay
    /// (a diagnostic: events are recorded but not published).
    pub async fn start(admin_url: &str, relay: bool) -> anyhow::Result<Harness> {
        Self::start_service(admin_url, Service::Accounts { relay }, None).await
    }

    /// Creates a fresh database and starts `service` against it, on the
    /// embedded bus (a SQLite log in a temp directory), or on NATS JetStream
    /// at `nats_url` under a namespace of its own.
    pub async fn start_service(admin_url: &str, service: Service, nats_url: Option<&str>) -> anyhow::Result<Harness> {
        Self::start_partitioned(admin_url, service, nats_url, 1).await
    }

    /// Like [`Harness::start_service`], on NATS split into `partitions`
    /// (`BANSO_NATS_PARTITIONS`).
    pub async fn start_partitioned(
        admin_url: &str,
        service: Service,
        nats_url: Option<&str>,
        partitions: u32,
    ) -> anyhow::Result<Harness> {
        let db = FreshDatabase::create(admin_url).await?;
        let bus_dir = std::env::temp_dir().join(&db.name);
        std::fs::create_dir_all(&bus_dir)?;

        let mut vars = Vars::from_pairs([
            ("BANSO_GRPC_ADDR", "127.0.0.1:0"),
            ("BANSO_ADMIN_ADDR", "off"),
            ("BANSO_JWT_HS256_SECRET", banso_testkit::TEST_SECRET),
            ("BANSO_DATABASE_URL", db.url.as_str()),
            ("BANSO_MIGRATE_ON_START", "true"),
            ("BANSO_REQUEST_TIMEOUT_SECS", &REQUEST_TIMEOUT.as_secs().to_string()),
            ("BANSO_SHUTDOWN_GRACE_SECS", "2"),
            ("BANSO_PLAYBOOKS_SCHEDULE_TICK_SECS", "3600"),
        ]);
        // The service's own settings from the bench's environment
        // (`BANSO_HEALTH_GIVE_WAY_MS=0 banso-bench health-ingest`, say).
        for (k, v) in std::env::vars() {
            if k.starts_with("BANSO_HEALTH_") || k.starts_with("BANSO_PLAYBOOKS_") {
                vars.set(k, v);
            }
        }
        let config = Config::from_vars(&vars)?;
        let kit = Kit::from_config(&config);
        let (bus, nats): (Arc<dyn banso_events::Bus>, _) = match nats_url {
            Some(url) => {
                let ns = format!("bench{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
                let bus = banso_events::nats::NatsBus::connect_in(url, Some(&ns)).await?.with_partitions(partitions)?;
                (Arc::new(bus), Some((url.to_owned(), ns)))
            }
            None => (Arc::new(banso_events::embedded::EmbeddedBus::open(&bus_dir.join("bus")).await?), None),
        };
        let events = banso_events::Runtime::new(bus, Supervisor::new(CancellationToken::new()));
        let mut harness = Harness {
            config: config.clone(),
            channel: Channel::from_static("http://127.0.0.1:1").connect_lazy(),
            db_url: db.url.clone(),
            token: String::new(),
            server: None,
            events: events.clone(),
            db,
            bus_dir,
            nats,
            keep: false,
            grpc_addr: String::new(),
            replicas: Vec::new(),
        };
        match harness.boot(&kit, service).await {
            Ok(()) => Ok(harness),
            Err(e) => {
                harness.stop().await.ok();
                Err(e)
            }
        }
    }

    async fn boot(&mut self, kit: &Kit, service: Service) -> anyhow::Result<()> {
        let cx = ServiceContext { config: &self.config, kit, runtime: &self.events };
        let services = match service {
            Service::Accounts { relay: true } => (banso_accounts::SERVICE.build)(&cx, ServiceSet::new()).await?,
            Service::Accounts { relay: false } => {
                banso_accounts::bench::without_relay(&self.config, kit, ServiceSet::new()).await?
            }
            Service::Health => (banso_health::SERVICE.build)(&cx, ServiceSet::new()).await?,
            Service::Playbooks => (banso_playbooks::SERVICE.build)(&cx, ServiceSet::new()).await?,
            Service::HealthAndPlaybooks => {
                let set = (banso_health::SERVICE.build)(&cx, ServiceSet::new()).await?;
                (banso_playbooks::SERVICE.build)(&cx, set).await?
            }
        };
        let auth = server::auth_layer(&self.config)?;
        let running = server::start(&self.config.server, auth, services, &self.events.supervisor).await?;
        let addr = running.grpc_addr;
        self.events.serving_at(addr);
        self.grpc_addr = addr.to_string();
        self.server = Some(running);
        self.channel = Channel::from_shared(format!("http://{addr}"))?.connect().await?;
        self.token = mint(&self.config)?;
        Ok(())
    }

    /// Starts one more replica of Health on the same database and NATS
    /// namespace (a connection of its own, split like the first): it takes
    /// its share of the partitions. NATS only.
    pub async fn add_replica(&mut self) -> anyhow::Result<()> {
        let kit = &Kit::from_config(&self.config);
        let (url, ns) = self.nats.clone().context("replicas share the work on NATS only (--nats-url)")?;
        let bus = banso_events::nats::NatsBus::connect_in(&url, Some(&ns))
            .await?
            .with_partitions(self.events.bus.partitions())?;
        let events = banso_events::Runtime::new(Arc::new(bus), Supervisor::new(CancellationToken::new()));
        let cx = ServiceContext { config: &self.config, kit, runtime: &events };
        let services = (banso_health::SERVICE.build)(&cx, ServiceSet::new()).await?;
        let auth = server::auth_layer(&self.config)?;
        let server = server::start(&self.config.server, auth, services, &events.supervisor).await?;
        events.serving_at(server.grpc_addr);
        let channel = Channel::from_shared(format!("http://{}", server.grpc_addr))?.connect().await?;
        self.replicas.push(ExtraReplica { events, server, channel });
        Ok(())
    }

    /// A Health client of each replica: the first, then those added.
    pub fn health_clients(&self) -> Vec<HealthClient> {
        std::iter::once(&self.channel)
            .chain(self.replicas.iter().map(|r| &r.channel))
            .map(|c| health_client(c.clone(), &self.token, self.config.server.max_message_bytes))
            .collect()
    }

    /// The JetStream context and namespace of a NATS run.
    pub async fn jetstream(&self) -> anyhow::Result<Option<(async_nats::jetstream::Context, String)>> {
        let Some((url, ns)) = &self.nats else { return Ok(None) };
        Ok(Some((async_nats::jetstream::new(async_nats::connect(url).await?), ns.clone())))
    }

    pub fn channel_addr(&self) -> &str {
        &self.grpc_addr
    }

    /// "embedded" or "nats".
    pub fn bus_kind(&self) -> &'static str {
        self.events.bus.kind()
    }

    pub fn client(&self) -> Client {
        banso_proto::accounts::accounts_service_client::AccountsServiceClient::with_interceptor(
            self.channel.clone(),
            Bearer::new(&self.token),
        )
        .max_encoding_message_size(self.config.server.max_message_bytes)
        .max_decoding_message_size(self.config.server.max_message_bytes)
    }

    pub fn playbooks_client(&self) -> PlaybooksClient {
        banso_proto::playbooks::playbooks_service_client::PlaybooksServiceClient::with_interceptor(
            self.channel.clone(),
            Bearer::new(&self.token),
        )
    }

    pub fn health_client(&self) -> HealthClient {
        health_client(self.channel.clone(), &self.token, self.config.server.max_message_bytes)
    }

    /// A pool on the service's database with the service's own settings
    /// (size, timeouts, `accounts` first on the search path).
    pub async fn pool(&self) -> anyhow::Result<DatabaseConnection> {
        self.pool_for(banso_accounts::NAME).await
    }

    /// A pool with the service's settings and `schema` first on the search path.
    pub async fn pool_for(&self, schema: &str) -> anyhow::Result<DatabaseConnection> {
        banso_kit::db::connect(&self.db_url, schema, &self.config.database).await
    }

    /// Stops the server and the relay, then drops the database (unless kept).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for r in self.replicas.drain(..) {
            r.events.shutdown().cancel();
            r.server.shutdown();
            r.server.wait().await?;
        }
        self.events.shutdown().cancel();
        if let Some(s) = self.server.take() {
            s.shutdown();
            s.wait().await?;
        }
        let _ = std::fs::remove_dir_all(&self.bus_dir);
        if let Some((url, ns)) = &self.nats
            && let Err(e) = delete_nats_streams(url, ns).await
        {
            eprintln!("note: could not delete the NATS streams of namespace {ns}: {e:#}");
        }
        self.db.drop_or_keep(self.keep).await
    }
}

/// An admin token of the bench tenant, valid for 10 hours.
pub fn mint(config: &Config) -> anyhow::Result<String> {
    let issuer = DevTokenIssuer::from_config(&config.auth).context("an HS256 secret is configured")?;
    Ok(issuer.mint(TENANT, "banso-bench", &[Role::Admin], Duration::from_secs(36_000)))
}

pub fn health_client(channel: Channel, token: &str, max_message_bytes: usize) -> HealthClient {
    banso_proto::health::health_service_client::HealthServiceClient::with_interceptor(channel, Bearer::new(token))
        .max_encoding_message_size(max_message_bytes)
        .max_decoding_message_size(max_message_bytes)
}

/// Deletes the JetStream streams of namespace `ns` (`BANSO_<NS>_*`).
async fn delete_nats_streams(url: &str, ns: &str) -> anyhow::Result<()> {
    use futures::TryStreamExt;
    let client = async_nats::connect(url).await?;
    let js = async_nats::jetstream::new(client);
    let prefix = format!("BANSO_{}_", ns.to_ascii_uppercase());
    let names: Vec<String> = js.stream_names().try_collect().await?;
    // The partition leases' key-value buckets too (`KV_BANSO_<NS>_LEASES_…`).
    for name in names
        .into_iter()
        .filter(|n| n.starts_with(&prefix) || n.strip_prefix("KV_").is_some_and(|k| k.starts_with(&prefix)))
    {
        js.delete_stream(&name).await.map_err(|e| anyhow::anyhow!("delete stream {name}: {e}"))?;
    }
    Ok(())
}

/// `copy`: a table with `table`'s columns, types and indexes, for a
/// baseline of plain INSERTs into the same shape (`LIKE … INCLUDING ALL`
/// on PostgreSQL; the table's own DDL, renamed, on SQLite).
pub async fn copy_table(pool: &DatabaseConnection, table: &str, copy: &str) -> anyhow::Result<()> {
    use sea_orm::{DbBackend, Statement};
    if pool.get_database_backend() == DbBackend::Postgres {
        pool.execute_unprepared(&format!("CREATE TABLE {copy} (LIKE {table} INCLUDING ALL)")).await?;
        return Ok(());
    }
    let rows = pool
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "SELECT type, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type DESC",
            [table.into()],
        ))
        .await?;
    anyhow::ensure!(!rows.is_empty(), "no {table} table in the SQLite file");
    for r in rows {
        let kind: String = r.try_get_by_index(0)?;
        let sql: String = r.try_get_by_index(1)?;
        pool.execute_unprepared(&sqlite_copy(table, copy, &kind, &sql)?).await?;
    }
    Ok(())
}

/// The DDL of `table` (a table's or an index's) for `copy`.
pub fn sqlite_copy(table: &str, copy: &str, kind: &str, sql: &str) -> anyhow::Result<String> {
    let (from, to) = match kind {
        // `CREATE TABLE "answers" ( … "answers" text …)`: the first is the table.
        "table" => (format!("\"{table}\""), format!("\"{copy}\"")),
        // `CREATE INDEX "answers_x" ON "answers" (…)`.
        "index" => (format!("\"{table}_"), format!("\"{copy}_")),
        other => anyhow::bail!("unexpected {other} on the {table} table"),
    };
    anyhow::ensure!(sql.contains(&from), "cannot copy {sql:?}: no {from}");
    let mut out = sql.replacen(&from, &to, 1);
    if kind == "index" {
        let on = format!(" ON \"{table}\"");
        anyhow::ensure!(out.contains(&on), "cannot copy {sql:?}: not on {table}");
        out = out.replacen(&on, &format!(" ON \"{copy}\""), 1);
    }
    Ok(out)
}

/// The one integer `sql` selects.
pub async fn count(pool: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row = pool
        .query_one_raw(sea_orm::Statement::from_string(pool.get_database_backend(), sql))
        .await?
        .with_context(|| format!("no row from {sql}"))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// The one text `sql` selects.
pub async fn scalar(pool: &DatabaseConnection, sql: &str) -> anyhow::Result<String> {
    let row = pool
        .query_one_raw(sea_orm::Statement::from_string(pool.get_database_backend(), sql))
        .await?
        .with_context(|| format!("no row from {sql}"))?;
    Ok(row.try_get_by_index::<String>(0)?)
}

/// Waits (up to `within`) until the relay has published every event of the
/// service's outbox, then checkpoints, so no phase pays for the one before.
pub async fn settle_outbox(pool: &DatabaseConnection, within: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while count(pool, "SELECT count(*) FROM outbox WHERE published_time IS NULL").await? > 0 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the outbox relay left events unpublished for {} s",
            within.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if pool.get_database_backend() == sea_orm::DbBackend::Postgres {
        pool.execute_unprepared("CHECKPOINT").await?;
    } else {
        pool.query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "PRAGMA wal_checkpoint(TRUNCATE)",
        ))
        .await?;
    }
    Ok(())
}

/// Waits (up to 600 s) until the tenant's projection tables hold at least
/// the rows `want` gives (table, rows): the seeded events were taken.
pub async fn await_projection(pool: &DatabaseConnection, tenant: &str, want: &[(&str, usize)]) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        let mut done = true;
        for (table, n) in want {
            if count(pool, &format!("SELECT count(*) FROM {table} WHERE tenant_id = '{tenant}'")).await? < *n as i64 {
                done = false;
            }
        }
        if done {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the projection did not take the seeded events within 600 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
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
