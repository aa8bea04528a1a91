//! Code generated from `proto/`: one crate that every service, client and the
//! gateway share, so a message has exactly one Rust type.

/// The encoded `FileDescriptorSet` of every Banso proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/banso_descriptor.bin"));

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
        }
    }
}

pub use banso::{accounts::v1 as accounts, types::v1 as types};
