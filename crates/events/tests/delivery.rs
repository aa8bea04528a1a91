//! Exactly-once effects and per-tenant order through outbox → relay → bus →
//! consumer + inbox, while the relay, the consumer and (on NATS) the NATS
//! server are stopped, crashed and restarted mid-stream. Every test runs on
//! the embedded bus; the NATS ones run when BANSO_TEST_NATS_URL is set (as
//! .ci/run does) and say so when they are skipped.

// The test run's settings (BANSO_TEST_*) come from the environment.
#![allow(clippy::disallowed_methods)]

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use banso_events::{
    Bus, Envelope, Handler, HandlerError,
    bus::{DeliveryPolicy, supervise_consumer},
    embedded::EmbeddedBus,
    envelope::{self, Payload},
    inbox,
    nats::NatsBus,
    outbox::{self, OutboxSignal, Relay, RelayConfig},
};
use banso_kit::supervise::Supervisor;
use banso_proto::{accounts::Account, events::AccountCreated};
use banso_testkit::TestDb;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio_util::sync::CancellationToken;

struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(outbox::Migration), Box::new(outbox::PendingIndex), Box::new(inbox::Migration)]
    }
}

fn sql(db: &impl ConnectionTrait, s: &str) -> Statement {
    let backend = db.get_database_backend();
    let s = if backend == DbBackend::Postgres {
        // Number the placeholders for PostgreSQL.
        let mut n = 0;
        s.chars()
            .map(|c| {
                if c == '?' {
                    n += 1;
                    format!("${n}")
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        s.to_owned()
    };
    Statement::from_string(backend, s)
}

/// The producing service: state changes and their events in one transaction.
struct Producer {
    db: DatabaseConnection,
    source: String,
    signal: OutboxSignal,
}

impl Producer {
    async fn record(&self, tenant: &str, n: u64) {
        let env = envelope::new(
            tenant,
            &self.source,
            Payload::AccountCreated(AccountCreated {
                account: Some(Account { name: format!("{tenant}:{n}"), ..Default::default() }),
            }),
        );
        let txn = self.db.begin().await.unwrap();
        outbox::record(&txn, &env).await.unwrap();
        txn.commit().await.unwrap();
        self.signal.notify();
    }
}

/// The consuming service: its effect and its inbox claim in one transaction.
/// Fails transiently now and then, and rejects poison events for good.
struct Effects {
    db: DatabaseConnection,
    consumer: String,
    calls: AtomicU64,
    flaky: bool,
    poison: Option<u64>,
}

fn parse(env: &Envelope) -> (String, u64) {
    let Some(Payload::AccountCreated(c)) = &env.payload else { panic!("unexpected payload") };
    let name = &c.account.as_ref().unwrap().name;
    let (tenant, n) = name.split_once(':').unwrap();
    (tenant.to_owned(), n.parse().unwrap())
}

#[async_trait]
impl Handler for Effects {
    async fn handle(&self, env: &Envelope) -> Result<(), HandlerError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.flaky && call % 7 == 3 {
            return Err(HandlerError::Transient(anyhow::anyhow!("injected failure {call}")));
        }
        let (tenant, n) = parse(env);
        if Some(n) == self.poison {
            return Err(HandlerError::Rejected(anyhow::anyhow!("event {n} cannot be applied")));
        }
        let txn = self.db.begin().await?;
        if inbox::claim(&txn, &self.consumer, env).await? {
            let mut stmt = sql(&txn, "INSERT INTO effects (event_id, tenant_id, n) VALUES (?, ?, ?)");
            stmt.values = Some(sea_orm::Values(vec![env.id.clone().into(), tenant.into(), (n as i64).into()]));
            txn.execute_raw(stmt).await?;
        }
        txn.commit().await?;
        Ok(())
    }
}

struct World {
    _db: TestDb,
    db: DatabaseConnection,
    producer: Producer,
    source: String,
}

async fn world() -> World {
    let db = banso_testkit::fresh_database().await.unwrap();
    let conn = db.connect::<Migrator>("events").await.unwrap();
    let pos = if conn.get_database_backend() == DbBackend::Postgres {
        "pos BIGSERIAL PRIMARY KEY"
    } else {
        "pos INTEGER PRIMARY KEY AUTOINCREMENT"
    };
    conn.execute_unprepared(&format!(
        "CREATE TABLE effects ({pos}, event_id TEXT NOT NULL, tenant_id TEXT NOT NULL, n BIGINT NOT NULL)"
    ))
    .await
    .unwrap();
    // A source of its own per test: its own NATS stream, so tests run in parallel.
    let source = format!("t{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let producer = Producer { db: conn.clone(), source: source.clone(), signal: OutboxSignal::default() };
    World { _db: db, db: conn, producer, source }
}

fn fast_policy() -> DeliveryPolicy {
    DeliveryPolicy { max_attempts: 3, backoff_base: Duration::from_millis(2), backoff_max: Duration::from_millis(20) }
}

fn relay(w: &World, bus: &Arc<dyn Bus>) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let config = RelayConfig { batch: 50, poll_interval: Duration::from_millis(50), ..Default::default() };
    let handle = Relay::new(w.db.clone(), bus.clone(), &w.source, w.producer.signal.clone(), config)
        .supervise(&Supervisor::new(stop.clone()), "test");
    (stop, handle)
}

/// The handler of consumer "tester".
fn effects_of(w: &World, flaky: bool, poison: Option<u64>) -> Effects {
    Effects { db: w.db.clone(), consumer: "tester".into(), calls: AtomicU64::new(0), flaky, poison }
}

fn consumer(
    w: &World,
    bus: &Arc<dyn Bus>,
    flaky: bool,
    poison: Option<u64>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let handler = Arc::new(effects_of(w, flaky, poison));
    let handle = supervise_consumer(
        &Supervisor::new(stop.clone()),
        "test",
        bus.clone(),
        "tester",
        vec![envelope::all_of(&w.source)],
        handler,
        fast_policy(),
        &banso_events::partition::Partitions::all(bus.partitions()),
    );
    (stop, handle)
}

async fn effects(db: &DatabaseConnection) -> Vec<(String, String, u64)> {
    let rows = db.query_all_raw(sql(db, "SELECT event_id, tenant_id, n FROM effects ORDER BY pos")).await.unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get("", "event_id").unwrap(),
                r.try_get("", "tenant_id").unwrap(),
                r.try_get::<i64>("", "n").unwrap() as u64,
            )
        })
        .collect()
}

async fn wait_for(db: &DatabaseConnection, n: usize) -> Vec<(String, String, u64)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let e = effects(db).await;
        if e.len() >= n || tokio::time::Instant::now() > deadline {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Exactly one effect per event, and each tenant's events in the order recorded.
fn assert_exactly_once_in_order(
    effects: &[(String, String, u64)],
    tenants: &[&str],
    per_tenant: u64,
    skip: Option<u64>,
) {
    let mut seen = HashMap::new();
    for (id, _, _) in effects {
        *seen.entry(id.clone()).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "events with more than one effect: {twice:?}");
    for t in tenants {
        let ns: Vec<u64> = effects.iter().filter(|(_, tenant, _)| tenant == t).map(|(_, _, n)| *n).collect();
        let want: Vec<u64> = (0..per_tenant).filter(|n| Some(*n) != skip).collect();
        assert_eq!(ns, want, "tenant {t}: effects out of order or missing");
    }
}

/// Records 3 × `per_tenant` events while the relay and the consumer are
/// stopped, crashed and restarted, and `disrupt` runs at the midpoint.
async fn scenario<F, Fut>(w: &World, bus: Arc<dyn Bus>, per_tenant: u64, mut disrupt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let tenants = ["acme", "globex", "initech"];
    let (mut relay_stop, mut relay_task) = relay(w, &bus);
    let (mut consumer_stop, mut consumer_task) = consumer(w, &bus, true, None);
    for n in 0..per_tenant {
        for t in tenants {
            w.producer.record(t, n).await;
        }
        if n == per_tenant / 5 {
            // A clean stop of the relay: it flushes and exits; events pile up in the outbox.
            relay_stop.cancel();
            (&mut relay_task).await.unwrap();
        }
        if n == per_tenant / 4 {
            (relay_stop, relay_task) = relay(w, &bus);
        }
        if n == per_tenant / 3 {
            // A crash of the consumer: aborted wherever it is, even mid-transaction.
            consumer_task.abort();
            let _ = (&mut consumer_task).await;
        }
        if n == per_tenant / 2 {
            disrupt().await;
            (consumer_stop, consumer_task) = consumer(w, &bus, true, None);
        }
        if n == 2 * per_tenant / 3 {
            // A clean stop of the consumer, and a restart.
            consumer_stop.cancel();
            (&mut consumer_task).await.unwrap();
            (consumer_stop, consumer_task) = consumer(w, &bus, true, None);
        }
        if n % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let total = (per_tenant as usize) * tenants.len();
    let got = wait_for(&w.db, total).await;
    // Anything extra would show up now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_later = effects(&w.db).await;
    assert_eq!(got.len(), total, "every event has an effect");
    assert_eq!(got_later.len(), total, "and no event has a second one");
    assert_exactly_once_in_order(&got_later, &tenants, per_tenant, None);
    relay_stop.cancel();
    consumer_stop.cancel();
    let _ = relay_task.await;
    let _ = consumer_task.await;
}

async fn embedded(w: &World) -> (Arc<EmbeddedBus>, Arc<dyn Bus>) {
    let bus = Arc::new(EmbeddedBus::open(&w._db.dir().join("bus")).await.unwrap());
    (bus.clone(), bus)
}

#[tokio::test]
async fn embedded_bus_exactly_once_and_ordered_across_restarts() {
    let w = world().await;
    let (_, bus) = embedded(&w).await;
    scenario(&w, bus, 120, || async {}).await;
}

#[tokio::test]
async fn embedded_bus_survives_a_reopen_of_its_log() {
    // Stop everything, reopen the bus from its file (a process restart), and
    // the consumer resumes where it was.
    let w = world().await;
    let (_, bus) = embedded(&w).await;
    let (rs, rt) = relay(&w, &bus);
    for n in 0..30 {
        w.producer.record("acme", n).await;
    }
    wait_for(&w.db, 0).await;
    rs.cancel();
    rt.await.unwrap();
    drop(bus);
    let (_, bus) = embedded(&w).await;
    let (rs, rt) = relay(&w, &bus);
    let (cs, ct) = consumer(&w, &bus, false, None);
    for n in 30..60 {
        w.producer.record("acme", n).await;
    }
    let got = wait_for(&w.db, 60).await;
    assert_exactly_once_in_order(&got, &["acme"], 60, None);
    rs.cancel();
    cs.cancel();
    let _ = (rt.await, ct.await);
}

#[tokio::test]
async fn embedded_bus_dead_letters_a_poison_event_and_moves_on() {
    let w = world().await;
    let (embedded_bus, bus) = embedded(&w).await;
    let (rs, rt) = relay(&w, &bus);
    let (cs, ct) = consumer(&w, &bus, false, Some(13));
    for n in 0..30 {
        w.producer.record("acme", n).await;
    }
    let got = wait_for(&w.db, 29).await;
    assert_exactly_once_in_order(&got, &["acme"], 30, Some(13));
    let dead = embedded_bus.dead_letters("tester").await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].1.contains("event 13 cannot be applied"), "{dead:?}");
    rs.cancel();
    cs.cancel();
    let _ = (rt.await, ct.await);
}

/// Kills its consumer (a panic, as a crash of the process) on one event,
/// every time it is delivered; handles the rest as [`Effects`] does.
struct Killer(Effects, u64);

#[async_trait]
impl Handler for Killer {
    async fn handle(&self, env: &Envelope) -> Result<(), HandlerError> {
        assert_ne!(parse(env).1, self.1, "event {} kills its consumer", self.1);
        self.0.handle(env).await
    }
}

#[tokio::test]
async fn embedded_bus_dead_letters_an_event_that_kills_its_consumer_every_time() {
    let w = world().await;
    let (embedded_bus, bus) = embedded(&w).await;
    let (rs, rt) = relay(&w, &bus);
    for n in 0..30 {
        w.producer.record("acme", n).await;
    }
    // Restarted at once each time it dies, as a process manager would.
    let mut deaths = 0;
    loop {
        let effects = effects_of(&w, false, None);
        let (bus, subjects, stop) = (bus.clone(), vec![envelope::all_of(&w.source)], CancellationToken::new());
        let task = tokio::spawn({
            let stop = stop.clone();
            async move { bus.consume("tester", &subjects, Arc::new(Killer(effects, 13)), fast_policy(), stop).await }
        });
        let got = wait_for_or(&w.db, 29, &task).await;
        if got.len() >= 29 {
            stop.cancel();
            task.await.unwrap().unwrap();
            break;
        }
        assert!(task.await.unwrap_err().is_panic(), "the consumer died of the event");
        deaths += 1;
        assert!(deaths <= 15, "event 13 was never set aside after {deaths} deaths");
    }
    // Its deliveries were counted across the deaths, one at a time: the
    // events before it were handled and kept, the rest after it.
    assert!(deaths >= 10, "dead-lettered after {deaths} deaths, before the backstop");
    let got = effects(&w.db).await;
    assert_exactly_once_in_order(&got, &["acme"], 30, Some(13));
    let dead = embedded_bus.dead_letters("tester").await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].1.contains("without an outcome"), "{dead:?}");
    rs.cancel();
    let _ = rt.await;
}

/// [`wait_for`], or until `task` ends.
async fn wait_for_or<T>(
    db: &DatabaseConnection,
    n: usize,
    task: &tokio::task::JoinHandle<T>,
) -> Vec<(String, String, u64)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let e = effects(db).await;
        if e.len() >= n || task.is_finished() || tokio::time::Instant::now() > deadline {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_failed_publish_leaves_rows_in_the_outbox_for_the_next_round() {
    struct Down;
    #[async_trait]
    impl Bus for Down {
        fn kind(&self) -> &'static str {
            "down"
        }
        async fn prepare_source(&self, _: &str) -> anyhow::Result<()> {
            Ok(())
        }
        async fn publish(&self, _: &[banso_events::bus::Outgoing]) -> anyhow::Result<()> {
            anyhow::bail!("bus unreachable")
        }
        async fn consume(
            &self,
            _: &str,
            _: &[String],
            _: Arc<dyn Handler>,
            _: DeliveryPolicy,
            _: CancellationToken,
        ) -> anyhow::Result<()> {
            anyhow::bail!("bus unreachable")
        }
    }
    let w = world().await;
    for n in 0..5 {
        w.producer.record("acme", n).await;
    }
    let down = Relay::new(w.db.clone(), Arc::new(Down), &w.source, OutboxSignal::default(), RelayConfig::default());
    assert!(down.publish_pending().await.is_err());
    assert_eq!(down.pending().await.unwrap(), 5, "nothing marked published");
    let (_, bus) = embedded(&w).await;
    let up = Relay::new(w.db.clone(), bus, &w.source, OutboxSignal::default(), RelayConfig::default());
    assert_eq!(up.publish_pending().await.unwrap(), 5);
    assert_eq!(up.pending().await.unwrap(), 0);
}

// ----- NATS JetStream -----

fn nats_url() -> Option<String> {
    match std::env::var("BANSO_TEST_NATS_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!("SKIPPED: BANSO_TEST_NATS_URL is not set; .ci/run sets it to run the NATS suites");
            None
        }
    }
}

#[tokio::test]
async fn nats_bus_exactly_once_and_ordered_across_restarts() {
    let Some(url) = nats_url() else { return };
    let w = world().await;
    let bus: Arc<dyn Bus> =
        Arc::new(NatsBus::connect_with(&url, None, &banso_testkit::test_nats_auth().unwrap()).await.unwrap());
    scenario(&w, bus, 120, || async {}).await;
}

#[tokio::test]
async fn nats_bus_dead_letters_a_poison_event_and_moves_on() {
    let Some(url) = nats_url() else { return };
    let w = world().await;
    let bus: Arc<dyn Bus> =
        Arc::new(NatsBus::connect_with(&url, None, &banso_testkit::test_nats_auth().unwrap()).await.unwrap());
    let (rs, rt) = relay(&w, &bus);
    let (cs, ct) = consumer(&w, &bus, false, Some(7));
    for n in 0..20 {
        w.producer.record("acme", n).await;
    }
    let got = wait_for(&w.db, 19).await;
    assert_exactly_once_in_order(&got, &["acme"], 20, Some(7));
    // The poison event is on the dead-letter subject, with its error.
    let client = banso_events::nats::client(&url, &banso_testkit::test_nats_auth().unwrap()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let dlq = js.get_stream("BANSO_DLQ").await.unwrap();
    let msg = dlq.get_last_raw_message_by_subject("banso.dlq.tester").await.unwrap();
    let env = <Envelope as prost::Message>::decode(msg.payload.clone()).unwrap();
    assert_eq!(parse(&env).1, 7);
    rs.cancel();
    cs.cancel();
    let _ = (rt.await, ct.await);
}

/// A private nats-server on a free port, so this test may kill it.
struct PrivateNats {
    child: Option<std::process::Child>,
    port: u16,
    dir: PathBuf,
}

impl PrivateNats {
    fn binary() -> PathBuf {
        if let Ok(p) = std::env::var("BANSO_TEST_NATS_SERVER") {
            return p.into();
        }
        for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/sbin", "/usr/local/bin"]) {
            let p = PathBuf::from(dir).join("nats-server");
            if p.exists() {
                return p;
            }
        }
        panic!("nats-server not found (PATH, /usr/sbin); .ci/run installs it");
    }

    fn start(port: u16, dir: PathBuf) -> Self {
        let mut n = PrivateNats { child: None, port, dir };
        n.up();
        n
    }

    fn up(&mut self) {
        let child = std::process::Command::new(Self::binary())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("private nats-server did not listen on {}", self.port);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn nats_bus_survives_a_nats_server_restart_mid_stream() {
    let Some(_) = nats_url() else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let w = world().await;
    let server = Arc::new(std::sync::Mutex::new(PrivateNats::start(port, w._db.dir().join("nats"))));
    let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&format!("nats://127.0.0.1:{port}")).await.unwrap());
    let s = server.clone();
    scenario(&w, bus, 90, move || {
        let s = s.clone();
        async move {
            s.lock().unwrap().kill();
            tokio::time::sleep(Duration::from_millis(700)).await;
            s.lock().unwrap().up();
        }
    })
    .await;
}

// ----- Partitions shared by replicas (NATS) -----

/// One replica of the consuming service on a partitioned bus: its own NATS
/// connection, its lease keeper, its consumers of the partitions it holds.
struct Replica {
    partitions: banso_events::partition::Partitions,
    handler: Arc<Effects>,
    keeper: tokio::task::JoinHandle<anyhow::Result<()>>,
    stop: CancellationToken,
    consumers: tokio::task::JoinHandle<()>,
}

async fn replica(w: &World, url: &str, name: &str) -> Replica {
    let bus: Arc<dyn Bus> = Arc::new(
        NatsBus::connect_with(url, None, &banso_testkit::test_nats_auth().unwrap())
            .await
            .unwrap()
            .with_partitions(4)
            .unwrap(),
    );
    let partitions = banso_events::partition::Partitions::none(4);
    let stop = CancellationToken::new();
    // The service's leases are its own per test: its name is the source's.
    let service: &'static str = Box::leak(w.source.clone().into_boxed_str());
    let leases = bus.leases(service).await.unwrap();
    let keeper =
        tokio::spawn(banso_events::partition::keep(leases, service, name.to_owned(), partitions.clone(), stop.clone()));
    let handler = Arc::new(effects_of(w, false, None));
    let consumers = supervise_consumer(
        &Supervisor::new(stop.clone()),
        "test",
        bus,
        "tester",
        vec![envelope::all_of(&w.source)],
        handler.clone(),
        fast_policy(),
        &partitions,
    );
    Replica { partitions, handler, keeper, stop, consumers }
}

async fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two replicas split four partitions, each handling its share; one dies
/// (its leases left to lapse, its message in hand unacknowledged) mid-stream;
/// the survivor takes its partitions over, and every event still has
/// exactly one effect, each tenant's in order.
#[tokio::test]
async fn nats_replicas_share_partitions_and_the_survivor_takes_over() {
    let Some(url) = nats_url() else { return };
    let w = world().await;
    let publisher: Arc<dyn Bus> = Arc::new(
        NatsBus::connect_with(&url, None, &banso_testkit::test_nats_auth().unwrap())
            .await
            .unwrap()
            .with_partitions(4)
            .unwrap(),
    );
    publisher.prepare_source(&w.source).await.unwrap();
    let a = replica(&w, &url, "a").await;
    let b = replica(&w, &url, "b").await;
    until("each replica holds two partitions", || a.partitions.held().len() == 2 && b.partitions.held().len() == 2)
        .await;
    assert!(a.partitions.held().is_disjoint(&b.partitions.held()));
    let (relay_stop, relay_task) = relay(&w, &publisher);
    let tenants: Vec<String> = (0..12).map(|i| format!("tenant{i}")).collect();
    let per_tenant = 30u64;
    for n in 0..per_tenant {
        for t in &tenants {
            w.producer.record(t, n).await;
        }
        if n == per_tenant / 2 {
            // Both had a share of the work before one dies.
            until("both replicas handled events", || {
                a.handler.calls.load(Ordering::SeqCst) > 0 && b.handler.calls.load(Ordering::SeqCst) > 0
            })
            .await;
            // Kill -9 of b: no lease released, the message in hand unacknowledged.
            b.keeper.abort();
            b.consumers.abort();
            b.stop.cancel();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    until("the survivor holds every partition", || a.partitions.held().len() == 4).await;
    let total = tenants.len() * per_tenant as usize;
    let got = wait_for(&w.db, total).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_later = effects(&w.db).await;
    assert_eq!(got.len(), total, "every event has an effect");
    assert_eq!(got_later.len(), total, "and no event has a second one");
    let names: Vec<&str> = tenants.iter().map(String::as_str).collect();
    assert_exactly_once_in_order(&got_later, &names, per_tenant, None);
    // Each event went to one partition's consumer: the handlers were called
    // about once per event (the dead replica's message in hand comes again).
    let calls = a.handler.calls.load(Ordering::SeqCst) + b.handler.calls.load(Ordering::SeqCst);
    assert!(calls as usize <= total + 4, "{calls} handler calls for {total} events");
    a.stop.cancel();
    relay_stop.cancel();
    let _ = (a.keeper.await, a.consumers.await, relay_task.await);
}

/// A consumer split into partitions refuses a stream its publisher does
/// not split the same way, naming the setting, rather than miss events.
#[tokio::test]
async fn nats_partition_consumer_refuses_a_publisher_split_differently() {
    let Some(url) = nats_url() else { return };
    let w = world().await;
    let auth = banso_testkit::test_nats_auth().unwrap();
    let publisher: Arc<dyn Bus> = Arc::new(NatsBus::connect_with(&url, None, &auth).await.unwrap());
    publisher.prepare_source(&w.source).await.unwrap();
    let consumer = NatsBus::connect_with(&url, None, &auth).await.unwrap().with_partitions(4).unwrap();
    let refused = |p: u32| {
        let (consumer, w) = (&consumer, &w);
        async move {
            let handler = Arc::new(effects_of(w, false, None));
            let subjects = [envelope::all_of(&w.source)];
            let res =
                consumer.consume_partition("tester", &subjects, p, handler, fast_policy(), CancellationToken::new());
            res.await.unwrap_err().to_string()
        }
    };
    let err = refused(1).await;
    assert!(err.contains("BANSO_NATS_PARTITIONS") && err.contains("partitions=4"), "{err}");
    // And a partition it does not have is refused too.
    let err = refused(4).await;
    assert!(err.contains("partition 4"), "{err}");
}

/// A durable consumer made by an older release with another subject filter
/// takes this release's filter (a service that consumes a new event type
/// after an upgrade gets it) and keeps its name and position.
#[tokio::test]
async fn nats_consumer_moves_to_a_new_subject_filter() {
    let Some(url) = nats_url() else { return };
    let w = world().await;
    let bus: Arc<dyn Bus> =
        Arc::new(NatsBus::connect_with(&url, None, &banso_testkit::test_nats_auth().unwrap()).await.unwrap());
    let (rs, rt) = relay(&w, &bus);
    let start = |subject: String| {
        let stop = CancellationToken::new();
        let handle = supervise_consumer(
            &Supervisor::new(stop.clone()),
            "test",
            bus.clone(),
            "tester",
            vec![subject],
            Arc::new(effects_of(&w, false, None)),
            fast_policy(),
            &banso_events::partition::Partitions::all(bus.partitions()),
        );
        (stop, handle)
    };
    // The old release consumed only deletions.
    let (old, old_task) = start(format!("banso.{}.account_deleted", w.source));
    w.producer.record("acme", 0).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(effects(&w.db).await.is_empty(), "the old filter does not deliver creations");
    old.cancel();
    let _ = old_task.await;
    // The new one consumes creations, from where the old one stood.
    let (new, new_task) = start(format!("banso.{}.account_created", w.source));
    for n in 1..4 {
        w.producer.record("acme", n).await;
    }
    let got = wait_for(&w.db, 3).await;
    let ns: Vec<u64> = got.iter().map(|(_, _, n)| *n).collect();
    assert!(ns.ends_with(&[1, 2, 3]), "creations after the upgrade arrive: {ns:?}");
    new.cancel();
    rs.cancel();
    let _ = (new_task.await, rt.await);
}
