//! NATS over TLS with a token, against the private nats-server `.ci/tls.sh`
//! starts (BANSO_TEST_NATS_TLS_URL, BANSO_TEST_NATS_TLS_TOKEN,
//! BANSO_TEST_TLS_CA, BANSO_TEST_TLS_WRONG_CA). Without them these tests say
//! SKIPPED and pass; `.ci/tls.sh` fails if they skip. The event suites run
//! over the same server there too.
#![allow(clippy::disallowed_methods)]

use banso_events::{Bus, nats::NatsBus};
use banso_kit::config::{Config, NatsAuth, Vars};

struct Tls {
    url: String,
    token: String,
    ca: String,
    wrong_ca: String,
}

fn tls() -> Option<Tls> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        get("BANSO_TEST_NATS_TLS_URL"),
        get("BANSO_TEST_NATS_TLS_TOKEN"),
        get("BANSO_TEST_TLS_CA"),
        get("BANSO_TEST_TLS_WRONG_CA"),
    ) {
        (Some(url), Some(token), Some(ca), Some(wrong_ca)) => Some(Tls { url, token, ca, wrong_ca }),
        _ => {
            eprintln!("SKIPPED: BANSO_TEST_NATS_TLS_URL is not set; .ci/tls.sh sets it to run the NATS TLS tests");
            None
        }
    }
}

/// The NATS settings as `banso serve` reads them.
fn auth(pairs: &[(&str, &str)]) -> NatsAuth {
    Config::from_vars(&Vars::from_pairs(pairs.iter().copied())).expect("valid settings").bus.nats
}

fn namespace() -> String {
    format!("tls{}", &uuid::Uuid::now_v7().simple().to_string()[20..])
}

#[tokio::test]
async fn tls_with_the_ca_and_the_token_carries_jetstream() {
    let Some(t) = tls() else { return };
    let auth = auth(&[("BANSO_NATS_CA_FILE", &t.ca), ("BANSO_NATS_TOKEN", &t.token)]);
    let bus = NatsBus::connect_with(&t.url, Some(&namespace()), &auth).await.expect("connects over TLS");
    bus.prepare_source("tlscheck").await.expect("JetStream answers over TLS");
}

#[tokio::test]
async fn the_token_can_come_from_a_file() {
    let Some(t) = tls() else { return };
    let dir = std::env::temp_dir().join(format!("banso-nats-token-{}", namespace()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, format!("{}\n", t.token)).unwrap();
    let auth = auth(&[("BANSO_NATS_CA_FILE", &t.ca), ("BANSO_NATS_TOKEN_FILE", file.to_str().unwrap())]);
    let bus = NatsBus::connect_with(&t.url, Some(&namespace()), &auth).await.expect("connects over TLS");
    bus.prepare_source("tlscheck").await.expect("JetStream answers over TLS");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_wrong_token_stops_start_up_with_the_reason() {
    let Some(t) = tls() else { return };
    let auth = auth(&[("BANSO_NATS_CA_FILE", &t.ca), ("BANSO_NATS_TOKEN", "not-the-token")]);
    let err = NatsBus::connect_with(&t.url, None, &auth).await.err().expect("a wrong token is refused");
    let msg = format!("{err:#}").to_lowercase();
    assert!(msg.contains("authorization"), "{msg}");
    assert!(!msg.contains("not-the-token"), "the token must not be printed: {msg}");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let Some(t) = tls() else { return };
    for (name, auth) in [
        ("the wrong CA", auth(&[("BANSO_NATS_CA_FILE", &t.wrong_ca), ("BANSO_NATS_TOKEN", &t.token)])),
        // The web roots do not know a private CA either.
        ("no CA", auth(&[("BANSO_NATS_TOKEN", &t.token)])),
    ] {
        let err = NatsBus::connect_with(&t.url, None, &auth).await.err().unwrap_or_else(|| panic!("{name}: refused"));
        let msg = format!("{err:#}").to_lowercase();
        assert!(msg.contains("certificate") || msg.contains("tls"), "{name}: {msg}");
    }
}

#[test]
fn bad_nats_settings_name_their_variable() {
    let bad = |pairs: &[(&str, &str)]| Config::from_vars(&Vars::from_pairs(pairs.iter().copied())).unwrap_err();
    assert_eq!(bad(&[("BANSO_NATS_CA_FILE", "/nonexistent/ca.pem")]).var, "BANSO_NATS_CA_FILE");
    assert_eq!(bad(&[("BANSO_NATS_USER", "banso")]).var, "BANSO_NATS_PASSWORD");
    assert_eq!(bad(&[("BANSO_NATS_NKEY_SEED", "not-a-seed")]).var, "BANSO_NATS_NKEY_SEED");
    let two = bad(&[("BANSO_NATS_TOKEN", "t"), ("BANSO_NATS_USER", "u"), ("BANSO_NATS_PASSWORD", "p")]);
    assert!(two.reason.contains("only one NATS credential"), "{two}");
    assert!(!two.to_string().contains("\"t\""), "{two}");
}
