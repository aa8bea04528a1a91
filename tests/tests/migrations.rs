//! Migrations run once per release: `banso migrate` serializes concurrent
//! runs (a PostgreSQL advisory lock per schema), and a service that starts
//! with `BANSO_MIGRATE_ON_START=false` checks the schema instead of
//! migrating, refusing a missing migration or one it does not know. On
//! SQLite, or on PostgreSQL when BANSO_TEST_DATABASE_URL is set.

use banso_events::ServiceDef;
use banso_kit::config::{Config, Vars};
use banso_testkit::{TestDb, fresh_database};
use sea_orm::{ConnectionTrait, Statement};

fn config(db: &TestDb, extra: &[(&str, &str)]) -> Config {
    let mut vars = Vars::from_pairs(extra.iter().copied());
    if db.is_postgres() {
        vars.set("BANSO_DATABASE_URL", db.url.clone());
    } else {
        vars.set("BANSO_DATA_DIR", db.dir().display().to_string());
    }
    Config::from_vars(&vars).expect("valid settings")
}

/// How many times each migration of `service` is recorded.
async fn applied(db: &TestDb, service: &str) -> Vec<(String, i64)> {
    let conn = banso_kit::db::connect_existing(&db.url_for(service), service, &config(db, &[]).database).await.unwrap();
    let backend = conn.get_database_backend();
    conn.query_all_raw(Statement::from_string(
        backend,
        "SELECT version, COUNT(*) AS n FROM seaql_migrations GROUP BY version ORDER BY version",
    ))
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.try_get::<String>("", "version").unwrap(), r.try_get::<i64>("", "n").unwrap()))
    .collect()
}

/// Starts `def` as `banso serve` would build it, returning the error if it refuses.
async fn start(def: &ServiceDef, config: &Config) -> anyhow::Result<()> {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let runtime = banso_events::Runtime {
        bus: banso_testkit::test_bus(&std::env::temp_dir().join(format!("banso-mig-{}", uuid::Uuid::now_v7()))).await?,
        supervisor: banso_kit::supervise::Supervisor::new(shutdown.clone()),
    };
    let kit = banso_kit::server::Kit::from_config(config);
    let cx = banso_events::service::Context { config, kit: &kit, runtime: &runtime };
    let res = (def.build)(&cx, banso_kit::server::ServiceSet::new()).await.map(drop);
    shutdown.cancel();
    res
}

#[tokio::test]
async fn concurrent_migrate_runs_apply_each_migration_once() {
    let db = fresh_database().await.unwrap();
    for def in banso::SERVICES {
        let cfg = config(&db, &[]);
        let runs = (0..3).map(|_| (def.migrate)(&cfg));
        for res in futures::future::join_all(runs).await {
            res.unwrap_or_else(|e| panic!("{}: a concurrent migrate failed: {e:#}", def.name));
        }
        let applied = applied(&db, def.name).await;
        assert!(!applied.is_empty(), "{}: migrations recorded", def.name);
        assert!(applied.iter().all(|(_, n)| *n == 1), "{}: each migration once: {applied:?}", def.name);
    }
}

#[tokio::test]
async fn serve_without_migrating_refuses_an_unmigrated_schema_then_starts_once_migrated() {
    let db = fresh_database().await.unwrap();
    for def in banso::SERVICES {
        let serve = config(&db, &[("BANSO_MIGRATE_ON_START", "false")]);
        let err = start(def, &serve).await.expect_err("an unmigrated schema is refused");
        let msg = format!("{err:#}");
        assert!(msg.contains(&format!("banso migrate {}", def.name)), "{}: {msg}", def.name);
        assert!(msg.contains("missing migration"), "{}: {msg}", def.name);

        (def.migrate)(&config(&db, &[])).await.unwrap();
        start(def, &serve).await.unwrap_or_else(|e| panic!("{}: starts once migrated: {e:#}", def.name));
    }
}

#[tokio::test]
async fn serve_refuses_a_schema_a_newer_release_migrated() {
    let db = fresh_database().await.unwrap();
    let def = banso::SERVICES[0];
    (def.migrate)(&config(&db, &[])).await.unwrap();
    let conn = banso_kit::db::connect(&db.url_for(def.name), def.name, &config(&db, &[]).database).await.unwrap();
    conn.execute_unprepared(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29991231_000000_from_the_future', 0)",
    )
    .await
    .unwrap();
    let err = start(def, &config(&db, &[("BANSO_MIGRATE_ON_START", "false")])).await.expect_err("refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("m29991231_000000_from_the_future") && msg.contains("newer release"), "{msg}");
}

#[test]
fn the_migrate_url_takes_postgres_only_and_migrating_at_start_defaults_by_backend() {
    let err = Config::from_vars(&Vars::from_pairs([("BANSO_MIGRATE_DATABASE_URL", "sqlite://x.db")])).unwrap_err();
    assert_eq!(err.var, "BANSO_MIGRATE_DATABASE_URL");
    assert!(Config::from_vars(&Vars::default()).unwrap().database.migrate_on_start, "SQLite migrates at start");
    let pg = Config::from_vars(&Vars::from_pairs([("BANSO_DATABASE_URL", "postgres://db/banso")])).unwrap();
    assert!(!pg.database.migrate_on_start, "PostgreSQL is migrated by `banso migrate`");
    let err = Config::from_vars(&Vars::from_pairs([("BANSO_MIGRATE_ON_START", "sometimes")])).unwrap_err();
    assert_eq!(err.var, "BANSO_MIGRATE_ON_START");
}
