//! Database connection and migration: PostgreSQL (each service in its own
//! schema) or SQLite (one file per service), chosen by URL.

use std::{path::Path, time::Duration};

use anyhow::Context as _;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use sea_orm_migration::MigratorTrait;

use crate::config::DatabaseConfig;

pub mod copy;

/// The SQLite URL of `<dir>/<service>.db`, creating `dir`.
pub fn sqlite_url_in(dir: &Path, service: &str) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
    Ok(format!("sqlite://{}?mode=rwc", dir.join(format!("{service}.db")).display()))
}

/// Connects to `url`. On PostgreSQL, `schema` is created if missing and put
/// first on the search path of every pooled connection; on SQLite the file
/// is created if missing, in WAL mode so readers do not block the writer.
pub async fn connect(url: &str, schema: &str, cfg: &DatabaseConfig) -> anyhow::Result<DatabaseConnection> {
    check_schema_name(schema)?;
    if is_postgres_url(url) {
        let db = Database::connect(pg_options(url, cfg, 1)).await.context("cannot connect to PostgreSQL")?;
        create_schema(&db, schema).await?;
        db.close().await.ok();
    }
    pool(url, schema, cfg).await
}

/// The pool of `schema` at `url`, creating nothing in PostgreSQL: what a
/// service runs on when `banso migrate` owns the schema.
async fn pool(url: &str, schema: &str, cfg: &DatabaseConfig) -> anyhow::Result<DatabaseConnection> {
    let mut opts;
    if is_postgres_url(url) {
        opts = pg_options(url, cfg, cfg.max_connections);
        opts.set_schema_search_path(schema.to_owned());
    } else {
        opts = ConnectOptions::new(url.to_owned());
        opts.max_connections(cfg.max_connections).connect_timeout(Duration::from_secs(10)).sqlx_logging(false);
        opts.map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
        });
    }
    opts.min_connections(cfg.min_connections).acquire_timeout(cfg.acquire_timeout);
    let db = Database::connect(opts).await.context("cannot connect to the database")?;
    Ok(db)
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn check_schema_name(schema: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !schema.is_empty() && schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "schema name {schema:?} must be lower-case letters and underscores"
    );
    Ok(())
}

/// PostgreSQL options with at most `max` connections. TLS (rustls): the
/// URL's own `sslmode`/`sslrootcert`/`sslcert`/`sslkey` as libpq reads them;
/// BANSO_DATABASE_CA_FILE names the CA without putting a path in the URL.
fn pg_options(url: &str, cfg: &DatabaseConfig, max: u32) -> ConnectOptions {
    crate::tls::install_provider();
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max).connect_timeout(Duration::from_secs(10)).sqlx_logging(false);
    if let Some(ca) = cfg.ca_file.clone() {
        opts.map_sqlx_postgres_opts(move |pg| pg.ssl_root_cert(ca.clone()));
    }
    opts
}

async fn create_schema(db: &DatabaseConnection, schema: &str) -> anyhow::Result<()> {
    match db.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")).await {
        Ok(_) => Ok(()),
        // IF NOT EXISTS is not safe against a concurrent creator (two
        // replicas starting together): the loser's insert into pg_namespace
        // fails with a unique violation, and the schema exists — as wanted.
        Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot create schema {schema}"))),
    }
}

/// The database of `service`, ready to serve. With `BANSO_MIGRATE_ON_START`
/// its pending migrations are applied first (as `banso migrate` does); without
/// it (`serve`'s default) the schema must hold exactly the migrations this
/// binary knows, or start-up stops naming what is missing or unknown.
pub async fn open<M: MigratorTrait>(cfg: &crate::config::Config, service: &str) -> anyhow::Result<DatabaseConnection> {
    let url = url_for(cfg, service)?;
    if cfg.database.migrate_on_start {
        migrate_at::<M>(&url, service, &cfg.database).await?;
    }
    check_schema_name(service)?;
    let db = pool(&url, service, &cfg.database).await?;
    if !cfg.database.migrate_on_start {
        check::<M>(&db, service).await?;
    }
    Ok(db)
}

/// `banso migrate <service>`: applies the pending migrations of `service`
/// with `BANSO_MIGRATE_DATABASE_URL` (a role allowed to change the schema),
/// else the service's own URL.
pub async fn migrate_service<M: MigratorTrait>(cfg: &crate::config::Config, service: &str) -> anyhow::Result<()> {
    let url = match &cfg.database.migrate_url {
        Some(url) => url.expose().to_owned(),
        None => url_for(cfg, service)?,
    };
    migrate_at::<M>(&url, service, &cfg.database).await
}

/// Applies the pending migrations of `schema` at `url`. On PostgreSQL one
/// connection holds a session advisory lock of the schema
/// (`pg_advisory_lock(hashtext('banso.migrate.<schema>'))`) from before the
/// schema is created until the last migration is recorded, so runs that
/// overlap (a Job retried, two releases) take turns, and the later finds
/// nothing left to do.
pub async fn migrate_at<M: MigratorTrait>(url: &str, schema: &str, cfg: &DatabaseConfig) -> anyhow::Result<()> {
    check_schema_name(schema)?;
    if !is_postgres_url(url) {
        // SQLite: an exclusive lock on a file beside the database serialises
        // runs the way the advisory lock does, across processes too
        // (`banso migrate` beside a running `banso up`).
        let _turn = sqlite_migration_lock(url).await?;
        let db = pool(url, schema, cfg).await?;
        let res = migrate::<M>(&db).await;
        db.close().await.ok();
        return res;
    }
    // One connection that stays open: the lock is the session's, and the
    // migrations' transactions run on the same connection.
    let mut opts = pg_options(url, cfg, 1);
    opts.min_connections(1).acquire_timeout(Duration::from_secs(3600));
    opts.set_schema_search_path(schema.to_owned());
    let db = Database::connect(opts).await.context("cannot connect to PostgreSQL")?;
    let key = format!("banso.migrate.{schema}");
    let lock = |sql: &'static str| {
        sea_orm::Statement::from_sql_and_values(DbBackend::Postgres, sql, [sea_orm::Value::from(key.clone())])
    };
    db.execute_raw(lock("SELECT pg_advisory_lock(hashtext($1))"))
        .await
        .with_context(|| format!("cannot take the migration lock of schema {schema}"))?;
    let res = async {
        create_schema(&db, schema).await?;
        migrate::<M>(&db).await
    }
    .await;
    // Closing the connection would release the lock as well.
    let _ = db.execute_raw(lock("SELECT pg_advisory_unlock(hashtext($1))")).await;
    db.close().await.ok();
    res.with_context(|| format!("migrating schema {schema}"))
}

/// An exclusive lock on `<database file>.migrate.lock`, held while the
/// returned file is open.
async fn sqlite_migration_lock(url: &str) -> anyhow::Result<std::fs::File> {
    let file = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let file = file.split('?').next().unwrap_or(file);
    let path = std::path::PathBuf::from(format!("{file}.migrate.lock"));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the migration lock {}", path.display()))?;
    tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
        .await
        .context("the migration lock task failed")?
        .with_context(|| format!("cannot take the migration lock {}", path.display()))
}

/// Fails unless the migrations applied to `schema` are exactly those of `M`:
/// one missing means `banso migrate` has not run for this release; one
/// unknown means a newer release migrated it, and this binary would not
/// know the schema it writes to. Creates nothing (the runtime role may not
/// be allowed to).
pub async fn check<M: MigratorTrait>(db: &DatabaseConnection, schema: &str) -> anyhow::Result<()> {
    let known: Vec<String> = M::migrations().iter().map(|m| m.name().to_owned()).collect();
    let exists_sql = match db.get_database_backend() {
        DbBackend::Postgres => "SELECT 1 AS one WHERE to_regclass('seaql_migrations') IS NOT NULL",
        _ => "SELECT 1 AS one FROM sqlite_master WHERE type = 'table' AND name = 'seaql_migrations'",
    };
    let backend = db.get_database_backend();
    let exists = db
        .query_one_raw(sea_orm::Statement::from_string(backend, exists_sql))
        .await
        .with_context(|| format!("cannot read the migrations of schema {schema}"))?
        .is_some();
    let applied: Vec<String> = if exists {
        db.query_all_raw(sea_orm::Statement::from_string(backend, "SELECT version FROM seaql_migrations"))
            .await
            .with_context(|| format!("cannot read the migrations of schema {schema}"))?
            .iter()
            .map(|row| row.try_get::<String>("", "version"))
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let unknown: Vec<&str> = applied.iter().filter(|v| !known.contains(v)).map(String::as_str).collect();
    if !unknown.is_empty() {
        anyhow::bail!(
            "schema {schema} has migration {} that this binary does not know: a newer release migrated it; \
             run that release (or a newer one), not this one",
            unknown.join(", ")
        );
    }
    let missing: Vec<&str> = known.iter().filter(|v| !applied.contains(v)).map(String::as_str).collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "schema {schema} is missing migration {}; run `banso migrate {schema}` (or set \
             BANSO_MIGRATE_ON_START=true to migrate at start)",
            missing.join(", ")
        );
    }
    Ok(())
}

/// Why a service is not ready while its database does not answer.
pub const DATABASE_UNREACHABLE: &str = "database unreachable";

/// Readiness of `service`'s database: every `every`, `SELECT 1` on its pool
/// with `every` as the timeout; while it fails the service is NOT_SERVING
/// (reason [`DATABASE_UNREACHABLE`]), and SERVING again once it answers.
pub fn supervise_probe(
    supervisor: &crate::supervise::Supervisor,
    service: &'static str,
    db: DatabaseConnection,
    every: Duration,
) {
    let sup = supervisor.clone();
    supervisor.spawn(service, format!("{service}-db-probe"), move |shutdown| {
        let (db, sup) = (db.clone(), sup.clone());
        async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
                let ok = matches!(tokio::time::timeout(every, db.execute_unprepared("SELECT 1")).await, Ok(Ok(_)));
                sup.set_condition(service, DATABASE_UNREACHABLE, !ok);
            }
        }
    });
}

/// A work queue kept in a table (outreach deliveries, account changes): rows
/// with a status, a due time and a lease, taken by any replica's worker.
pub trait LeasedQueue: sea_orm::EntityTrait {
    const ID: Self::Column;
    const STATUS: Self::Column;
    /// The status of a row waiting for its (next) attempt.
    const PENDING: &'static str;
    const NEXT_ATTEMPT_TIME: Self::Column;
    const LEASE_OWNER: Self::Column;
    const LEASE_UNTIL: Self::Column;
}

/// Claims up to `limit` due pending rows of any tenant for `owner` (unique
/// to this claim) until `until`, oldest due first: one UPDATE whose WHERE
/// repeats the due test, so of two replicas racing for a row exactly one
/// wins it. Returns what it won. A worker that outlives its lease loses the
/// row to the next claim; its writes must name `owner` to land.
pub async fn claim_due<Q: LeasedQueue>(
    conn: &impl ConnectionTrait,
    owner: &str,
    now: chrono::DateTime<chrono::Utc>,
    until: chrono::DateTime<chrono::Utc>,
    limit: u64,
) -> crate::Result<Vec<Q::Model>> {
    use sea_orm::{ColumnTrait as _, Condition, QueryFilter as _, QueryOrder as _, QuerySelect as _, sea_query::Expr};
    let free = || {
        Condition::all()
            .add(Q::STATUS.eq(Q::PENDING))
            .add(Q::NEXT_ATTEMPT_TIME.lte(now))
            .add(Condition::any().add(Q::LEASE_UNTIL.is_null()).add(Q::LEASE_UNTIL.lt(now)))
    };
    let ids: Vec<uuid::Uuid> = Q::find()
        .select_only()
        .column(Q::ID)
        .filter(free())
        .order_by(Q::NEXT_ATTEMPT_TIME, sea_orm::Order::Asc)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    if ids.is_empty() {
        return Ok(vec![]);
    }
    Q::update_many()
        .col_expr(Q::LEASE_OWNER, Expr::value(owner))
        .col_expr(Q::LEASE_UNTIL, Expr::value(until))
        .filter(Q::ID.is_in(ids.clone()))
        .filter(free())
        .exec(conn)
        .await?;
    Ok(Q::find().filter(Q::ID.is_in(ids)).filter(Q::LEASE_OWNER.eq(owner)).all(conn).await?)
}

/// A table of versioned rows, each keyed by tenant and id: what the
/// optimistic writes below need to know of it.
pub trait VersionedTable: sea_orm::EntityTrait {
    const ID: Self::Column;
    const TENANT: Self::Column;
    const VERSION: Self::Column;
}

/// The row of `tenant` and `id` while it is still at `version`.
fn at_version<T: VersionedTable>(tenant: &str, id: uuid::Uuid, version: i64) -> sea_orm::Condition {
    use sea_orm::ColumnTrait as _;
    sea_orm::Condition::all().add(T::ID.eq(id)).add(T::TENANT.eq(tenant)).add(T::VERSION.eq(version))
}

/// `UPDATE … SET <row> WHERE tenant_id = ? AND id = ? AND version = ?`:
/// writes the next version of a row only if the stored one is still
/// `version`; returns whether it did (`false`: another writer won the race,
/// or the row is gone). The write of `banso_events::Db::update_versioned`.
pub async fn update_at_version<T: VersionedTable>(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: uuid::Uuid,
    version: i64,
    row: T::ActiveModel,
) -> crate::Result<bool> {
    use sea_orm::QueryFilter as _;
    let res = T::update_many().set(row).filter(at_version::<T>(tenant, id, version)).exec(conn).await?;
    Ok(res.rows_affected == 1)
}

/// `DELETE … WHERE tenant_id = ? AND id = ? AND version = ?`; returns
/// whether it deleted the row.
pub async fn delete_at_version<T: VersionedTable>(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: uuid::Uuid,
    version: i64,
) -> crate::Result<bool> {
    use sea_orm::QueryFilter as _;
    let res = T::delete_many().filter(at_version::<T>(tenant, id, version)).exec(conn).await?;
    Ok(res.rows_affected == 1)
}

/// `CREATE INDEX IF NOT EXISTS <table>_<name> ON <table> (cols…)`: the one
/// way services' migrations name and create their indexes.
pub fn index(table: &str, name: &str, cols: &[&str]) -> sea_orm_migration::prelude::IndexCreateStatement {
    use sea_orm_migration::prelude::{Alias, Index};
    let mut i = Index::create();
    i.name(format!("{table}_{name}")).table(Alias::new(table)).if_not_exists();
    for c in cols {
        i.col(Alias::new(*c));
    }
    i.to_owned()
}

/// Applies every pending migration of `M`.
pub async fn migrate<M: MigratorTrait>(db: &DatabaseConnection) -> anyhow::Result<()> {
    M::up(db, None).await.context("migration failed")
}

pub fn is_postgres(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

/// `col` is one of `ids`. On PostgreSQL the ids travel as one array
/// (`col = ANY($1)`), which stays an index probe whatever the statistics;
/// an `IN` list of hundreds of parameters gets a generic plan after five
/// executions that can scan the whole tenant per row (measured: imports and
/// recomputes quadratic in the tenant's size, docs/benchmarks.md).
pub fn uuid_in(
    db: &impl ConnectionTrait,
    col: sea_orm::sea_query::SimpleExpr,
    ids: &[uuid::Uuid],
) -> sea_orm::sea_query::SimpleExpr {
    one_of(db, col, sea_orm::sea_query::ArrayType::Uuid, ids.iter().map(|id| sea_orm::Value::from(*id)).collect())
}

/// `col` is one of `values` (external ids, names), bound as [`uuid_in`]
/// binds ids.
pub fn text_in(
    db: &impl ConnectionTrait,
    col: sea_orm::sea_query::SimpleExpr,
    values: &[&str],
) -> sea_orm::sea_query::SimpleExpr {
    one_of(db, col, sea_orm::sea_query::ArrayType::String, values.iter().map(|v| sea_orm::Value::from(*v)).collect())
}

/// `col` is one of `times`, bound as [`uuid_in`] binds ids.
pub fn time_in(
    db: &impl ConnectionTrait,
    col: sea_orm::sea_query::SimpleExpr,
    times: &[chrono::DateTime<chrono::Utc>],
) -> sea_orm::sea_query::SimpleExpr {
    one_of(
        db,
        col,
        sea_orm::sea_query::ArrayType::ChronoDateTimeUtc,
        times.iter().map(|t| sea_orm::Value::from(*t)).collect(),
    )
}

/// A PostgreSQL array parameter of `items` mapped by `f` (for `unnest($n::…[])`
/// statements). The driver's arrays hold no NULL: send a value and a
/// "present" flag array instead.
pub fn pg_array<T>(ty: sea_orm::sea_query::ArrayType, items: &[T], f: impl Fn(&T) -> sea_orm::Value) -> sea_orm::Value {
    sea_orm::Value::Array(ty, Some(Box::new(items.iter().map(f).collect())))
}

/// `INSERT INTO table (…) SELECT … FROM unnest($n::type[], …) AS t(…)`
/// for PostgreSQL: a chunk of rows as one typed array per column, one short
/// statement whatever the chunk's size (a multi-row VALUES of thousands of
/// rows cost a fifth of a recompute in parsing and planning,
/// docs/benchmarks.md). Each column is added once with the expression it
/// takes, so no value can drift from its column.
#[derive(Default)]
pub struct Unnest {
    columns: Vec<String>,
    exprs: Vec<String>,
    arrays: Vec<String>,
    aliases: Vec<String>,
    values: Vec<sea_orm::Value>,
}

impl Unnest {
    /// A parameter every row shares; its placeholder.
    pub fn param(&mut self, v: impl Into<sea_orm::Value>) -> String {
        self.values.push(v.into());
        format!("${}", self.values.len())
    }

    /// An array of one value per row, of PostgreSQL type `pg_type`; the name
    /// a column's expression reads it by. (The driver's arrays hold no NULL:
    /// a nullable value travels as a value and a "present" flag array.)
    pub fn array(&mut self, pg_type: &str, v: sea_orm::Value) -> String {
        self.values.push(v);
        self.arrays.push(format!("${}::{pg_type}[]", self.values.len()));
        let alias = format!("u{}", self.aliases.len());
        self.aliases.push(alias.clone());
        alias
    }

    /// A column and the expression (of parameters and arrays) it takes.
    pub fn column(&mut self, c: impl sea_orm::sea_query::Iden, expr: impl Into<String>) {
        self.columns.push(c.to_string());
        self.exprs.push(expr.into());
    }

    /// The statement into `table`, followed by `tail` (`ON CONFLICT …`, `RETURNING …`).
    pub fn statement(self, table: impl sea_orm::sea_query::Iden, tail: &str) -> sea_orm::Statement {
        let sql = format!(
            "INSERT INTO {} ({}) SELECT {} FROM unnest({}) AS t({}) {tail}",
            table.to_string(),
            self.columns.join(", "),
            self.exprs.join(", "),
            self.arrays.join(", "),
            self.aliases.join(", "),
        );
        sea_orm::Statement::from_sql_and_values(DbBackend::Postgres, sql.trim_end(), self.values)
    }
}

fn one_of(
    db: &impl ConnectionTrait,
    col: sea_orm::sea_query::SimpleExpr,
    ty: sea_orm::sea_query::ArrayType,
    values: Vec<sea_orm::Value>,
) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::{Expr, ExprTrait, PgFunc};
    if is_postgres(db) {
        col.eq(PgFunc::any(Expr::val(sea_orm::Value::Array(ty, Some(Box::new(values))))))
    } else {
        col.is_in(values)
    }
}

/// The database URL of `service`: `BANSO_DATABASE_URL` when set (one
/// PostgreSQL database, a schema per service), else a SQLite file per
/// service under the data directory.
pub fn url_for(cfg: &crate::config::Config, service: &str) -> anyhow::Result<String> {
    match &cfg.database.url {
        Some(url) => Ok(url.expose().to_owned()),
        None => sqlite_url_in(&cfg.data_dir, service),
    }
}

/// A stored value written by the service itself that no longer reads (a
/// JSON column, a name): a bug or a hand edit, never the caller's fault.
pub fn corrupt(what: &str, e: impl std::fmt::Display) -> crate::Error {
    crate::Error::internal(anyhow::anyhow!("stored {what} does not read: {e}"))
}

/// A JSON column's text.
pub fn to_json<T: serde::Serialize>(what: &str, v: &T) -> crate::Result<String> {
    serde_json::to_string(v).map_err(|e| corrupt(what, e))
}

/// A JSON column read back ([`corrupt`] when it does not read).
pub fn from_json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> crate::Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt(what, e))
}

#[cfg(test)]
mod tests {
    /// PostgreSQL renders a jsonb number in full decimal; every finite
    /// double a service stores in a JSON column must read back (the
    /// workspace enables serde_json's `float_roundtrip` for this).
    #[test]
    fn json_columns_read_back_the_largest_doubles_as_postgres_prints_them() {
        for (printed, want) in [
            (format!("17976931348623157{}", "0".repeat(292)), f64::MAX),
            (format!("-17976931348623157{}", "0".repeat(292)), f64::MIN),
            (format!("{{\"v\": 17976931348623157{}}}", "0".repeat(292)), f64::MAX),
        ] {
            let v: serde_json::Value = serde_json::from_str(&printed).expect("parses");
            let got = v.as_f64().or_else(|| v["v"].as_f64()).expect("a number");
            assert_eq!(got, want);
        }
    }
}
