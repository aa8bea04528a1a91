//! Two `banso serve health` processes sharing one PostgreSQL database and a
//! NATS JetStream bus split into four partitions: each takes two, both
//! apply Accounts events and score; one is killed with SIGKILL mid-load,
//! and the survivor takes its partitions over. At the end every account
//! is known and scored from all of its usage, and no score move was
//! announced twice. Runs where .ci/run runs the PostgreSQL suites; says
//! so when it is skipped.

// The test run's settings (BANSO_TEST_*) come from the environment.
#![allow(clippy::disallowed_methods)]

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use banso_events::{
    Bus, Envelope, Handler, HandlerError, Payload,
    bus::{DeliveryPolicy, Outgoing},
    envelope,
    nats::NatsBus,
};
use banso_kit::auth::{DevTokenIssuer, Role};
use banso_proto::{accounts as apb, events as ev, health as pb};
use banso_testkit::{Bearer, TEST_SECRET};
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_banso");
const TENANT: &str = "acme";
const ACCOUNTS: usize = 120;

fn settings() -> Option<(String, String)> {
    let db = std::env::var("BANSO_TEST_DATABASE_URL").ok().filter(|u| u.starts_with("postgres"));
    let nats = std::env::var("BANSO_TEST_NATS_URL").ok().filter(|u| !u.is_empty());
    match (db, nats) {
        (Some(db), Some(nats)) => Some((db, nats)),
        (None, _) => {
            eprintln!("SKIPPED: BANSO_TEST_DATABASE_URL is not set; .ci/run sets it (and NATS) for the replica test");
            None
        }
        (_, None) => {
            eprintln!("SKIPPED: BANSO_TEST_NATS_URL is not set; .ci/run sets it for the replica test");
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One `banso serve health` process, killed when dropped.
struct Replica {
    child: Child,
    grpc: String,
    admin: String,
}

impl Replica {
    fn start(db: &str, nats: &str, namespace: &str, log: &std::path::Path) -> Replica {
        let (grpc, admin) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
        let child = Command::new(BIN)
            .args(["serve", "health"])
            .env_clear()
            .envs([
                ("BANSO_DATABASE_URL", db),
                ("BANSO_NATS_URL", nats),
                ("BANSO_NATS_NAMESPACE", namespace),
                ("BANSO_NATS_PARTITIONS", "4"),
                ("BANSO_GRPC_ADDR", &grpc),
                ("BANSO_ADMIN_ADDR", &admin),
                ("BANSO_JWT_HS256_SECRET", TEST_SECRET),
                ("BANSO_LOG", "info"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        Replica { child, grpc, admin }
    }

    /// A metric's value on this replica's /metrics (0 if absent).
    async fn metric(&self, line_start: &str) -> f64 {
        let Ok(r) = reqwest::get(format!("http://{}/metrics", self.admin)).await else { return -1.0 };
        let body = r.text().await.unwrap_or_default();
        body.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    async fn held(&self) -> f64 {
        self.metric("banso_bus_partitions_held{service=\"health\"}").await
    }

    async fn client(
        &self,
        token: &str,
    ) -> pb::health_service_client::HealthServiceClient<
        tonic::codegen::InterceptedService<tonic::transport::Channel, Bearer>,
    > {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(ch) =
                tonic::transport::Endpoint::from_shared(format!("http://{}", self.grpc)).unwrap().connect().await
            {
                return pb::health_service_client::HealthServiceClient::with_interceptor(ch, Bearer::new(token));
            }
            assert!(Instant::now() < deadline, "banso serve health did not listen within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill_9(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn until<F, Fut>(what: &str, secs: u64, mut ok: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// HealthScoreChanged as published, by envelope id.
struct Moves(Mutex<HashMap<String, ev::HealthScoreChanged>>);

#[async_trait::async_trait]
impl Handler for Moves {
    async fn handle(&self, env: &Envelope) -> Result<(), HandlerError> {
        if let Some(Payload::HealthScoreChanged(c)) = &env.payload {
            self.0.lock().unwrap().insert(env.id.clone(), c.clone());
        }
        Ok(())
    }
}

fn usage(id: String, account: &str, user: &str) -> pb::UsageEvent {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    pb::UsageEvent {
        event_id: id,
        account_id: account.into(),
        user_id: user.into(),
        event_name: "login".into(),
        timestamp: Some(pbjson_types::Timestamp { seconds: now - 5, nanos: 0 }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_health_replicas_share_partitions_and_one_survives_the_others_kill_9() {
    let Some((_, nats)) = settings() else { return };
    let db = banso_testkit::fresh_database().await.unwrap();
    assert!(db.is_postgres());
    let url = db.url.clone();
    let namespace = format!("rep{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let logs = db.dir();
    let migrate = Command::new(BIN)
        .args(["migrate", "health"])
        .env_clear()
        .env("BANSO_DATABASE_URL", &url)
        .env("BANSO_JWT_HS256_SECRET", TEST_SECRET)
        .output()
        .unwrap();
    assert!(migrate.status.success(), "banso migrate health: {}", String::from_utf8_lossy(&migrate.stderr));

    // Accounts, as the Accounts service would publish them (partitioned).
    let bus = NatsBus::connect_with(&nats, Some(&namespace), &banso_testkit::test_nats_auth().unwrap())
        .await
        .unwrap()
        .with_partitions(4)
        .unwrap();
    let bus: Arc<dyn Bus> = Arc::new(bus);
    bus.prepare_source("accounts").await.unwrap();
    let accounts: Vec<String> = (0..ACCOUNTS).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let created: Vec<Outgoing> = accounts
        .iter()
        .map(|id| {
            let env = envelope::new(
                TENANT,
                "accounts",
                Payload::AccountCreated(ev::AccountCreated {
                    account: Some(apb::Account {
                        id: id.clone(),
                        name: format!("account {id}"),
                        lifecycle_stage: banso_proto::types::LifecycleStage::Adoption as i32,
                        touch_model: banso_proto::types::TouchModel::Tech as i32,
                        ..Default::default()
                    }),
                }),
            );
            Outgoing {
                id: env.id.clone(),
                subject: envelope::subject(&env),
                payload: prost::Message::encode_to_vec(&env).into(),
            }
        })
        .collect();

    let a = Replica::start(&url, &nats, &namespace, &logs.join("a.log"));
    let mut b = Replica::start(&url, &nats, &namespace, &logs.join("b.log"));
    let log_of = |name: &str| std::fs::read_to_string(logs.join(name)).unwrap_or_default();
    until("each replica holds two of the four partitions", 60, || async {
        a.held().await == 2.0 && b.held().await == 2.0
    })
    .await;
    bus.publish(&created).await.unwrap();

    // Every HealthScoreChanged, read back from the bus.
    let moves = Arc::new(Moves(Mutex::new(HashMap::new())));
    let stop = CancellationToken::new();
    let reader = {
        let (bus, moves, stop) = (bus.clone(), moves.clone(), stop.clone());
        tokio::spawn(async move {
            let _ = bus
                .consume("replica-test", &[envelope::all_of("health")], moves, DeliveryPolicy::default(), stop)
                .await;
        })
    };

    let issuer = DevTokenIssuer::new(TEST_SECRET, "banso", "banso");
    let admin = issuer.mint(TENANT, "test-admin", &[Role::Admin], Duration::from_secs(3600));
    let service = issuer.mint(TENANT, "test-service", &[Role::Service], Duration::from_secs(3600));
    let mut admin_a = a.client(&admin).await;
    // Both replicas learn of the accounts (each applies its partitions'
    // events): a measure value for an account Health does not know yet is
    // NOT_FOUND.
    let mut svc = [a.client(&service).await, b.client(&service).await];
    for id in &accounts {
        let h = svc[0].clone();
        until(&format!("health knows account {id}"), 60, || {
            let probe =
                pb::SetMeasureValueRequest { account_id: id.clone(), measure: "probe".into(), ..Default::default() };
            let mut h = h.clone();
            async move { h.set_measure_value(probe).await.is_ok() }
        })
        .await;
    }
    admin_a
        .create_scorecard(pb::CreateScorecardRequest {
            scorecard: Some(pb::Scorecard {
                name: "active users".into(),
                measures: vec![pb::WeightedMeasure {
                    measure: "active_users_7d".into(),
                    weight: 100.0,
                    normalisation: Some(pb::Normalisation {
                        kind: Some(pb::normalisation::Kind::Linear(pb::normalisation::Linear { min: 0.0, max: 4.0 })),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            request_id: "card".into(),
        })
        .await
        .unwrap();

    // Four rounds of usage, a new user per account each round, sent to both
    // replicas; b is killed after the second.
    for round in 0..4 {
        for (i, chunk) in accounts.chunks(30).enumerate() {
            let events = chunk.iter().map(|acc| usage(format!("{acc}-{round}"), acc, &format!("u{round}"))).collect();
            let to = if round < 2 { i % 2 } else { 0 };
            svc[to].batch_ingest_usage(pb::BatchIngestUsageRequest { events }).await.unwrap();
        }
        if round == 1 {
            until("both replicas scored accounts, and handed over those of the other's partitions", 60, || async {
                a.metric("banso_health_live_scored_accounts_total").await > 0.0
                    && b.metric("banso_health_live_scored_accounts_total").await > 0.0
                    && a.metric("banso_health_handed_over_accounts_total").await > 0.0
                    && b.metric("banso_health_handed_over_accounts_total").await > 0.0
            })
            .await;
            b.kill_9();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    until("the survivor holds every partition", 60, || async { a.held().await == 4.0 }).await;

    // Every account scored from its four users: 4 of 4 → 100.
    until("every account scores 100", 90, || {
        let mut h = admin_a.clone();
        async move {
            let Ok(r) =
                h.list_account_health(pb::ListAccountHealthRequest { page_size: 200, ..Default::default() }).await
            else {
                return false;
            };
            let r = r.into_inner().accounts;
            r.len() == ACCOUNTS && r.iter().all(|h| h.score == 100.0)
        }
    })
    .await;
    // No move announced twice: each (account, old, new) once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut seen: HashMap<(String, Option<u64>, u64), usize> = HashMap::new();
    for m in moves.0.lock().unwrap().values() {
        *seen.entry((m.account_id.clone(), m.old_score.map(f64::to_bits), m.new_score.to_bits())).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "moves announced twice: {twice:?}\n{}", log_of("a.log"));
    assert!(
        seen.keys().any(|(_, _, new)| f64::from_bits(*new) == 100.0),
        "the final scores were announced: {} moves",
        seen.len()
    );
    let survivor = log_of("a.log");
    for line in survivor.lines().filter(|l| l.contains("partition")) {
        eprintln!("survivor: {line}");
    }
    assert!(survivor.contains("partitions taken"), "the survivor says it took partitions over");
    stop.cancel();
    let _ = reader.await;
    drop(a);
}
