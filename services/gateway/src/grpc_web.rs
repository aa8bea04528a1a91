//! gRPC-Web (and Connect) for every service: a generic proxy to the
//! service's channel. (To be written.)

use std::sync::Arc;

use crate::{Gateway, settings::GatewaySettings};

/// Routes `/<package>.<Service>/<Method>` for browser clients.
pub fn router(_gw: Arc<Gateway>) -> axum::Router {
    axum::Router::new()
}

/// CORS for the allow-listed origins (REST and gRPC-Web alike).
pub fn cors(settings: &GatewaySettings) -> tower_http::cors::CorsLayer {
    let _ = settings;
    tower_http::cors::CorsLayer::new()
}
