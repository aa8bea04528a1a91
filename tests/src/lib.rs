//! What the cross-service suites share: every service of `banso::SERVICES`
//! in one server on a fresh database and bus, as `banso up` runs them; a
//! client for any method by its descriptor ([`raw`]); and hostile input
//! generated from descriptors ([`sweep`]).

pub mod raw;
pub mod sweep;

use banso_testkit::TestApp;

/// Every service, on a fresh database and bus.
pub async fn spawn_all() -> TestApp {
    banso_testkit::spawn(banso::SERVICES).await.expect("test server starts")
}

/// A gateway in front of a test server, on a free port.
pub struct TestGateway {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts a gateway in front of `app`, with `vars` over the app's settings.
pub async fn spawn_gateway(app: &TestApp, vars: &[(&str, &str)]) -> TestGateway {
    let mut all = app.config.vars().clone();
    all.set("BANSO_GATEWAY_ADDR", "127.0.0.1:0");
    for (k, v) in vars {
        all.set(*k, *v);
    }
    let config = banso_kit::config::Config::from_vars(&all).expect("gateway settings are valid");
    let upstreams = banso::local_upstreams(&config, app.addr).expect("upstreams");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = banso::start_gateway(&config, upstreams, shutdown.clone()).await.expect("gateway starts");
    TestGateway { url: format!("http://{}", running.addr), shutdown }
}
