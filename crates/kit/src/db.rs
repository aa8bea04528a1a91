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
    anyhow::ensure!(
        !schema.is_empty() && schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "schema name {schema:?} must be lower-case letters and underscores"
    );
    let is_pg = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(cfg.max_connections)
        .min_connections(cfg.min_connections)
        .acquire_timeout(cfg.acquire_timeout)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if is_pg {
        // TLS (rustls): the URL's own `sslmode`/`sslrootcert`/`sslcert`/`sslkey`
        // as libpq reads them; BANSO_DATABASE_CA_FILE names the CA without
        // putting a path in the URL. Both connections below use the same.
        crate::tls::install_provider();
        let tls = |o: &mut ConnectOptions| {
            if let Some(ca) = cfg.ca_file.clone() {
                o.map_sqlx_postgres_opts(move |pg| pg.ssl_root_cert(ca.clone()));
            }
        };
        tls(&mut opts);
        {
            let mut bootstrap = ConnectOptions::new(url.to_owned());
            bootstrap.max_connections(1).sqlx_logging(false).connect_timeout(Duration::from_secs(10));
            tls(&mut bootstrap);
            let db = Database::connect(bootstrap).await.context("cannot connect to PostgreSQL")?;
            db.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .await
                .with_context(|| format!("cannot create schema {schema}"))?;
            db.close().await.ok();
        }
        opts.set_schema_search_path(schema.to_owned());
    } else {
        opts.map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
        });
    }
    let db = Database::connect(opts).await.context("cannot connect to the database")?;
    Ok(db)
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
