//! How database errors reach a caller: a text PostgreSQL cannot store is
//! the caller's INVALID_ARGUMENT, not INTERNAL. Runs against the PostgreSQL
//! of BANSO_TEST_DATABASE_URL (as .ci/run sets it); on the SQLite run there
//! is nothing to check (SQLite stores a NUL), and the test says so.

#![allow(clippy::disallowed_methods)]

use banso_kit::Error;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

#[tokio::test]
async fn a_nul_that_postgresql_refuses_is_invalid_argument() {
    let url = match std::env::var("BANSO_TEST_DATABASE_URL") {
        Ok(u) if u.starts_with("postgres") => u,
        _ => {
            eprintln!("SQLite run: PostgreSQL's NUL refusal is checked on the PostgreSQL run");
            return;
        }
    };
    let db = Database::connect(url).await.unwrap();
    let err = db
        .execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, "SELECT $1::text", ["a\u{0}b".into()]))
        .await
        .unwrap_err();
    let err = Error::from(err);
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let jsonb = db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT $1::jsonb",
            [serde_json::json!({"k": "a\u{0}b"}).into()],
        ))
        .await
        .unwrap_err();
    assert!(matches!(Error::from(jsonb), Error::InvalidArgument(_)));
}
