//! TLS to PostgreSQL and to an OTLP collector.
//!
//! The PostgreSQL tests run against the local server after `.ci/tls.sh` has
//! turned its TLS on with a certificate from a private CA
//! (BANSO_TEST_PG_TLS_URL, BANSO_TEST_TLS_CA, BANSO_TEST_TLS_WRONG_CA);
//! without those they say SKIPPED and pass, and `.ci/tls.sh` fails if they
//! skip.
#![allow(clippy::disallowed_methods)]

use banso_kit::config::{Config, Vars};
use sea_orm::{ConnectionTrait, Statement};

struct Pg {
    url: String,
    ca: String,
    wrong_ca: String,
}

fn pg() -> Option<Pg> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (get("BANSO_TEST_PG_TLS_URL"), get("BANSO_TEST_TLS_CA"), get("BANSO_TEST_TLS_WRONG_CA")) {
        (Some(url), Some(ca), Some(wrong_ca)) => Some(Pg { url, ca, wrong_ca }),
        _ => {
            eprintln!("SKIPPED: BANSO_TEST_PG_TLS_URL is not set; .ci/tls.sh sets it to run the PostgreSQL TLS tests");
            None
        }
    }
}

/// `base` with `sslmode` and more query parameters.
fn with_params(base: &str, params: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{params}")
}

/// Connects as `banso serve` would with these settings; the connection's
/// `ssl` flag from pg_stat_ssl.
async fn connect(url: &str, extra: &[(&str, &str)]) -> anyhow::Result<bool> {
    let mut vars = Vars::from_pairs([("BANSO_DATABASE_URL", url)]);
    for (k, v) in extra {
        vars.set(*k, *v);
    }
    let cfg = Config::from_vars(&vars)?;
    let db = banso_kit::db::connect(url, "banso_tls_check", &cfg.database).await?;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no pg_stat_ssl row"))?;
    let ssl: bool = row.try_get("", "ssl")?;
    db.close().await.ok();
    Ok(ssl)
}

#[tokio::test]
async fn verify_full_with_the_ca_file_connects_over_tls() {
    let Some(p) = pg() else { return };
    // The certificate names 127.0.0.1 and localhost: both verify.
    for url in [p.url.clone(), p.url.replace("127.0.0.1", "localhost")] {
        let url = with_params(&url, "sslmode=verify-full");
        let ssl = connect(&url, &[("BANSO_DATABASE_CA_FILE", &p.ca)]).await.expect("verify-full connects");
        assert!(ssl, "{url}: the connection is encrypted");
    }
}

#[tokio::test]
async fn sslrootcert_in_the_url_works_as_libpq_reads_it() {
    let Some(p) = pg() else { return };
    let url = with_params(&p.url, &format!("sslmode=verify-ca&sslrootcert={}", p.ca));
    assert!(connect(&url, &[]).await.expect("verify-ca connects"));
}

#[tokio::test]
async fn require_encrypts_without_checking_the_ca() {
    let Some(p) = pg() else { return };
    let url = with_params(&p.url, "sslmode=require");
    assert!(connect(&url, &[]).await.expect("require connects"));
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let Some(p) = pg() else { return };
    let url = with_params(&p.url, "sslmode=verify-full");
    for (name, extra) in [("wrong CA", vec![("BANSO_DATABASE_CA_FILE", p.wrong_ca.as_str())]), ("no CA", vec![])] {
        let err = connect(&url, &extra).await.err().unwrap_or_else(|| panic!("{name}: must be refused"));
        let msg = format!("{err:#}").to_lowercase();
        assert!(msg.contains("certificate") || msg.contains("unknownissuer"), "{name}: {msg}");
    }
}

#[test]
fn a_missing_ca_file_fails_at_start_naming_the_setting() {
    let err = Config::from_vars(&Vars::from_pairs([("BANSO_DATABASE_CA_FILE", "/nonexistent/ca.pem")])).unwrap_err();
    assert_eq!(err.var, "BANSO_DATABASE_CA_FILE");
    assert!(err.reason.contains("/nonexistent/ca.pem"), "{err}");
}

#[tokio::test]
async fn an_https_collector_gets_tls_with_the_private_ca() {
    let dir = std::env::temp_dir().join(format!("banso-otlp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    // Any well-formed certificate will do to build the client.
    std::fs::write(&ca, include_str!("keys/ca.pem")).unwrap();
    banso_kit::telemetry::otlp_exporter("https://otel-collector.example:4317", Some(&ca)).expect("an https exporter");
    banso_kit::telemetry::otlp_exporter("https://otel-collector.example:4317", None).expect("web roots only");
    banso_kit::telemetry::otlp_exporter("http://127.0.0.1:4317", None).expect("plain http");
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let err = banso_kit::telemetry::otlp_exporter("https://c:4317", Some(&not_pem)).unwrap_err();
    assert!(format!("{err:#}").contains("OTEL_EXPORTER_OTLP_CERTIFICATE"), "{err:#}");
    let err = Config::from_vars(&Vars::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", "otel:4317")])).unwrap_err();
    assert_eq!(err.var, "OTEL_EXPORTER_OTLP_ENDPOINT");
    std::fs::remove_dir_all(&dir).ok();
}
