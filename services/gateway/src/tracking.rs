//! The Segment-compatible tracking API. (To be written.)

use std::sync::Arc;

use banso_kit::config::Config;

use crate::Gateway;

/// What the tracking API needs beyond the gateway: how it authenticates to
/// the services on behalf of a write key's tenant.
#[derive(Clone, Default)]
pub struct Tracking {}

impl Tracking {
    pub fn from_config(_config: &Config) -> anyhow::Result<Tracking> {
        Ok(Tracking {})
    }
}

/// `POST /v1/track`, `/v1/identify`, `/v1/group`, `/v1/page`, `/v1/screen`, `/v1/batch`.
pub fn router(_gw: Arc<Gateway>) -> axum::Router {
    axum::Router::new()
}
