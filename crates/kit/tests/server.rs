//! The kit's server as a process sees it: a real server on 127.0.0.1:0
//! hosting a tiny test service, called over a real channel. What only a
//! server can prove: a handler's panic is answered and counted while the
//! connection and health go on; a background task's death turns its
//! service's health NOT_SERVING until the supervisor has it running again.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use banso_kit::{
    auth::{DevTokenIssuer, Role},
    config::{Config, Vars},
    server::{self, RunningServer, ServiceSet},
    supervise::{self, Supervisor},
};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tonic::{Code, body::Body, codegen::http, server::NamedService, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_prost::ProstCodec;
use tonic_types::StatusExt as _;

/// A test service with three methods: `Ok` answers, `Panic` panics in its
/// future, `PanicEarly` panics before it has one. Each test gives it its
/// own name (so metrics of parallel tests never mix).
#[derive(Clone)]
struct Boom<const N: usize>;

macro_rules! named {
    ($n:literal, $name:literal) => {
        impl NamedService for Boom<$n> {
            const NAME: &'static str = $name;
        }
    };
}
named!(1, "banso.test.v1.PanicService");
named!(2, "banso.test.v1.TaskService");

struct Answer;

impl tonic::server::UnaryService<()> for Answer {
    type Response = ();
    type Future = std::future::Ready<Result<tonic::Response<()>, tonic::Status>>;
    fn call(&mut self, _: tonic::Request<()>) -> Self::Future {
        std::future::ready(Ok(tonic::Response::new(())))
    }
}

impl<const N: usize> tower::Service<http::Request<Body>> for Boom<N> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let method = req.uri().path().rsplit('/').next().unwrap_or_default().to_owned();
        if method == "PanicEarly" {
            panic!("test handler panics before making its future");
        }
        Box::pin(async move {
            if method == "Panic" {
                panic!("test handler panics");
            }
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<(), ()>::default());
            Ok(grpc.unary(Answer, req).await)
        })
    }
}

struct Server {
    running: RunningServer,
    channel: Channel,
    token: String,
    supervisor: Supervisor,
}

async fn start(set: ServiceSet) -> Server {
    start_with(set, &[]).await
}

async fn start_with(set: ServiceSet, extra: &[(&str, &str)]) -> Server {
    let mut vars = Vars::from_pairs([
        ("BANSO_GRPC_ADDR", "127.0.0.1:0"),
        ("BANSO_ADMIN_ADDR", "off"),
        ("BANSO_JWT_HS256_SECRET", "kit-server-test-secret-kit-server-test"),
        ("BANSO_SHUTDOWN_DELAY_SECS", "0"),
        ("BANSO_SHUTDOWN_GRACE_SECS", "1"),
    ]);
    for (k, v) in extra {
        vars.set(*k, *v);
    }
    let config = Config::from_vars(&vars).unwrap();
    let supervisor = Supervisor::new(CancellationToken::new());
    let running = server::start(&config.server, server::auth_layer(&config).unwrap(), set, &supervisor).await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", running.grpc_addr)).unwrap().connect().await.unwrap();
    let token = DevTokenIssuer::from_config(&config.auth).unwrap().mint(
        "t1",
        "tester",
        &[Role::Admin],
        Duration::from_secs(600),
    );
    Server { running, channel, token, supervisor }
}

async fn call(s: &Server, path: &str) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(s.channel.clone());
    grpc.ready().await.unwrap();
    let mut req = tonic::Request::new(());
    req.metadata_mut().insert("authorization", format!("Bearer {}", s.token).parse().unwrap());
    grpc.unary(req, path.parse().unwrap(), ProstCodec::<(), ()>::default()).await.map(|_| ())
}

async fn health(s: &Server, service: &str) -> i32 {
    let mut client = HealthClient::new(s.channel.clone());
    client.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status
}

/// The value of the series `name{label="value"}` in the metrics render.
fn metric(name: &str, label: &str, value: &str) -> Option<f64> {
    let text = banso_kit::telemetry::prometheus().render();
    let series = format!("{name}{{{label}=\"{value}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)).map(|v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn a_panicking_handler_is_answered_internal_and_the_server_goes_on() {
    let s = start(ServiceSet::new().with(Boom::<1>)).await;
    let name = <Boom<1> as NamedService>::NAME;

    for method in ["Panic", "PanicEarly"] {
        let path = format!("/{name}/{method}");
        let status = call(&s, &path).await.unwrap_err();
        assert_eq!(status.code(), Code::Internal, "{status:?}");
        let info = status.get_error_details().error_info().cloned().expect("ErrorInfo details");
        assert_eq!(info.reason, "PANIC");
        assert!(!status.message().contains("test handler"), "the panic's text stays in the log: {status:?}");
        // The same channel (and connection) serves the next call.
        call(&s, &format!("/{name}/Ok")).await.expect("a call after the panic");
        assert_eq!(metric(server::PANICS_TOTAL, "method", &path), Some(1.0), "{path} counted once");
    }
    assert_eq!(health(&s, "").await, ServingStatus::Serving as i32);
    assert_eq!(health(&s, name).await, ServingStatus::Serving as i32);
    s.supervisor.shutdown().cancel();
    s.running.wait().await.unwrap();
}

#[tokio::test]
async fn a_dead_background_task_takes_its_service_out_of_rotation_until_it_runs_again() {
    let s = start(ServiceSet::new().with(Boom::<2>)).await;
    let name = <Boom<2> as NamedService>::NAME;
    let mut watch = HealthClient::new(s.channel.clone())
        .watch(HealthCheckRequest { service: name.into() })
        .await
        .unwrap()
        .into_inner();
    let mut next = async || watch.message().await.unwrap().expect("a health update").status;
    assert_eq!(next().await, ServingStatus::Serving as i32);

    // The first run panics when told to; the restarted one runs until shutdown.
    let die = Arc::new(tokio::sync::Notify::new());
    let runs = Arc::new(AtomicU32::new(0));
    let (die2, runs2) = (die.clone(), runs.clone());
    let task = "kit-server-test-task";
    s.supervisor.spawn(name, task, move |stop| {
        let (die, n) = (die2.clone(), runs2.fetch_add(1, Ordering::SeqCst));
        async move {
            if n == 0 {
                die.notified().await;
                panic!("background task dies");
            }
            stop.cancelled().await;
            Ok(())
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(metric(supervise::TASK_RESTARTS_TOTAL, "task", task), Some(0.0), "registered at zero");
    die.notify_one();

    let down_at = tokio::time::Instant::now();
    assert_eq!(next().await, ServingStatus::NotServing as i32, "the service is out while its task is down");
    assert_eq!(health(&s, name).await, ServingStatus::NotServing as i32);
    assert_eq!(health(&s, "").await, ServingStatus::NotServing as i32, "and so is the server as a whole");
    assert_eq!(metric(supervise::TASK_RESTARTS_TOTAL, "task", task), Some(1.0));

    assert_eq!(next().await, ServingStatus::Serving as i32, "back once the restarted task has run");
    assert!(down_at.elapsed() >= supervise::UP_AFTER, "SERVING only after UP_AFTER: {:?}", down_at.elapsed());
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(health(&s, "").await, ServingStatus::Serving as i32);
    // The service answered calls all along.
    call(&s, &format!("/{name}/Ok")).await.unwrap();
    s.supervisor.shutdown().cancel();
    s.running.wait().await.unwrap();
}

named!(3, "banso.test.v1.ConditionService");
named!(4, "banso.test.v1.AgeService");
named!(5, "banso.test.v1.FollowerService");

#[tokio::test]
async fn a_failing_condition_takes_its_service_out_of_rotation_until_cleared() {
    let name = "banso.test.v1.ConditionService";
    let follower = "banso.test.v1.FollowerService";
    let s = start(ServiceSet::new().with(Boom::<3>).with_following(Boom::<5>, name)).await;
    assert_eq!(health(&s, name).await, ServingStatus::Serving as i32);
    assert_eq!(health(&s, follower).await, ServingStatus::Serving as i32);
    s.supervisor.set_condition(name, "database unreachable", true);
    let mut watch = s.supervisor.watch();
    watch.wait_for(|d| d.get(name).is_some_and(|r| r.contains("database unreachable"))).await.unwrap();
    for _ in 0..500 {
        if health(&s, name).await == ServingStatus::NotServing as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(health(&s, name).await, ServingStatus::NotServing as i32);
    assert_eq!(health(&s, follower).await, ServingStatus::NotServing as i32, "it follows its leader");
    assert_eq!(s.supervisor.not_ready().as_deref(), Some("banso.test.v1.ConditionService: database unreachable"));
    assert_eq!(call(&s, "/banso.test.v1.ConditionService/Ok").await.map_err(|e| e.code()), Ok(()), "calls still work");
    s.supervisor.set_condition(name, "database unreachable", false);
    for _ in 0..500 {
        if health(&s, name).await == ServingStatus::Serving as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(health(&s, name).await, ServingStatus::Serving as i32);
    assert_eq!(health(&s, follower).await, ServingStatus::Serving as i32);
    assert_eq!(s.supervisor.not_ready(), None);
}

/// Connections older than BANSO_MAX_CONNECTION_AGE_SECS are sent GOAWAY; a
/// client goes on over a new connection. Counted at a proxy in between.
#[tokio::test]
async fn connections_are_recycled_after_the_max_age_and_clients_keep_working() {
    use std::sync::atomic::AtomicUsize;
    let s = start_with(
        ServiceSet::new().with(Boom::<4>),
        &[("BANSO_MAX_CONNECTION_AGE_SECS", "0.3"), ("BANSO_MAX_CONNECTION_AGE_GRACE_SECS", "1")],
    )
    .await;
    let target = s.running.grpc_addr;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut server = tokio::net::TcpStream::connect(target).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    let channel = Channel::from_shared(format!("http://{proxy}")).unwrap().connect().await.unwrap();
    let through = Server { channel, ..s };
    let mut ok_after_reconnect = false;
    for _ in 0..1000 {
        let res = call(&through, "/banso.test.v1.AgeService/Ok").await;
        if accepted.load(Ordering::SeqCst) >= 2 && res.is_ok() {
            ok_after_reconnect = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok_after_reconnect, "the client reconnected after GOAWAY and its calls work");
}
