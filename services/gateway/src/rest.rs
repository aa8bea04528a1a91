//! REST/JSON transcoding. (Being written.)

use std::sync::Arc;

use axum::{extract::Request, response::Response};

use crate::Gateway;

pub async fn handle(_gw: Arc<Gateway>, _req: Request) -> Response {
    crate::problem::Problem::new(http::StatusCode::NOT_IMPLEMENTED, "UNIMPLEMENTED", "soon").into_response()
}
use axum::response::IntoResponse;
