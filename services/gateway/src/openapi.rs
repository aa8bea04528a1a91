//! OpenAPI 3.1 from the descriptors. (Being written.)

use prost_reflect::DescriptorPool;

use crate::routes::RouteTable;

pub fn document(_pool: &DescriptorPool, _routes: &RouteTable) -> serde_json::Value {
    serde_json::json!({"openapi": "3.1.0"})
}
