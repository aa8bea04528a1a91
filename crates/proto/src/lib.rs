//! Code generated from `proto/`: one crate that every service, client and the
//! gateway share, so a message has exactly one Rust type.

// Caller data must never reach a panic: the lints hold it outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::unreachable, clippy::todo)
)]

/// The encoded `FileDescriptorSet` of every Banso proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/banso_descriptor.bin"));

// Generated code: its shape is prost's, not ours to lint.
#[allow(clippy::all)]
pub mod banso {
    pub mod types {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/banso.types.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/banso.types.v1.serde.rs"));
        }
    }
    pub mod accounts {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/banso.accounts.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/banso.accounts.v1.serde.rs"));
            // Shared with Health since they moved to banso.types.v1; Accounts'
            // code keeps naming them here.
            pub use super::super::types::v1::{LifecycleStage, TouchModel};
        }
    }
    pub mod health {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/banso.health.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/banso.health.v1.serde.rs"));
        }
    }
    pub mod playbooks {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/banso.playbooks.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/banso.playbooks.v1.serde.rs"));
        }
    }
    pub mod feedback {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/banso.feedback.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/banso.feedback.v1.serde.rs"));
        }
    }
    pub mod events {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/banso.events.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/banso.events.v1.serde.rs"));
        }
    }
}

pub mod vocab;

pub use banso::{
    accounts::v1 as accounts, events::v1 as events, feedback::v1 as feedback, health::v1 as health,
    playbooks::v1 as playbooks, types::v1 as types,
};
