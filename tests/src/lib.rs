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
