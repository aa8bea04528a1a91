//! Migrations run once: `banso migrate` serialises on a PostgreSQL advisory
//! lock per schema, and a service that does not migrate at start refuses a
//! schema that is behind or ahead of its binary.
#![allow(clippy::disallowed_methods)]

use banso_kit::config::DatabaseConfig;
use sea_orm::{ConnectionTrait, DbErr, Statement};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager, async_trait::async_trait};

struct CreateThings;
impl MigrationName for CreateThings {
    fn name(&self) -> &str {
        "m20260101_000001_create_things"
    }
}
#[async_trait]
impl MigrationTrait for CreateThings {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Slow enough that two unserialised runs would overlap.
        if m.get_database_backend() == sea_orm::DbBackend::Postgres {
            m.get_connection().execute_unprepared("SELECT pg_sleep(0.3)").await?;
        }
        m.get_connection().execute_unprepared("CREATE TABLE things (id BIGINT PRIMARY KEY)").await?;
        Ok(())
    }
}

struct AddName;
impl MigrationName for AddName {
    fn name(&self) -> &str {
        "m20260102_000001_add_name"
    }
}
#[async_trait]
impl MigrationTrait for AddName {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection().execute_unprepared("ALTER TABLE things ADD COLUMN name TEXT").await?;
        Ok(())
    }
}

/// This release: both migrations.
struct Current;
impl MigratorTrait for Current {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateThings), Box::new(AddName)]
    }
}

/// The release before: the first only.
struct Older;
impl MigratorTrait for Older {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateThings)]
    }
}

const SCHEMA: &str = "things";

#[tokio::test]
async fn concurrent_migrations_apply_once_and_serve_checks_the_version() {
    let db = banso_testkit::fresh_database().await.unwrap();
    let url = db.url_for(SCHEMA);
    let cfg = DatabaseConfig::default();

    // Before any migration, a service that does not migrate refuses to start.
    let pool = banso_kit::db::connect(&url, SCHEMA, &cfg).await.unwrap();
    let err = banso_kit::db::check::<Older>(&pool, SCHEMA).await.unwrap_err().to_string();
    assert!(err.contains("missing migration m20260101_000001_create_things"), "{err}");
    assert!(err.contains("banso migrate things"), "{err}");
    pool.close().await.unwrap();

    // The older release migrates; the newer binary finds one missing.
    banso_kit::db::migrate_at::<Older>(&url, SCHEMA, &cfg).await.unwrap();
    let pool = banso_kit::db::connect(&url, SCHEMA, &cfg).await.unwrap();
    banso_kit::db::check::<Older>(&pool, SCHEMA).await.unwrap();
    let err = banso_kit::db::check::<Current>(&pool, SCHEMA).await.unwrap_err().to_string();
    assert!(err.contains("missing migration m20260102_000001_add_name"), "{err}");

    // Two runs of the new release at once:
    // both succeed, each migration is applied once.
    let (a, b) = tokio::join!(
        banso_kit::db::migrate_at::<Current>(&url, SCHEMA, &cfg),
        banso_kit::db::migrate_at::<Current>(&url, SCHEMA, &cfg),
    );
    a.unwrap();
    b.unwrap();
    let rows = pool
        .query_all_raw(Statement::from_string(pool.get_database_backend(), "SELECT version FROM seaql_migrations"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    banso_kit::db::check::<Current>(&pool, SCHEMA).await.unwrap();

    // The old binary against the new schema: refused, naming the unknown migration.
    let err = banso_kit::db::check::<Older>(&pool, SCHEMA).await.unwrap_err().to_string();
    assert!(err.contains("m20260102_000001_add_name") && err.contains("does not know"), "{err}");
    pool.close().await.unwrap();
}

#[tokio::test]
async fn two_fresh_runs_on_postgres_take_turns_on_the_advisory_lock() {
    let db = banso_testkit::fresh_database().await.unwrap();
    if !db.is_postgres() {
        eprintln!("SKIPPED: BANSO_TEST_DATABASE_URL is not PostgreSQL; the advisory lock is PostgreSQL's");
        return;
    }
    let url = db.url_for(SCHEMA);
    let cfg = DatabaseConfig::default();
    // A fresh database: without the lock both would race to CREATE SCHEMA
    // and CREATE TABLE (one would fail with "already exists").
    let (a, b, c) = tokio::join!(
        banso_kit::db::migrate_at::<Current>(&url, SCHEMA, &cfg),
        banso_kit::db::migrate_at::<Current>(&url, SCHEMA, &cfg),
        banso_kit::db::migrate_at::<Current>(&url, SCHEMA, &cfg),
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    let pool = banso_kit::db::connect(&url, SCHEMA, &cfg).await.unwrap();
    banso_kit::db::check::<Current>(&pool, SCHEMA).await.unwrap();
    pool.close().await.unwrap();
}
