//! The Accounts rules: types, validation and list semantics. No I/O.

pub mod account;
pub mod activity;
pub mod contact;
pub mod contract;
pub mod retention;
pub mod segment;
pub mod settings;
pub mod touch_rules;
pub mod validate;
pub mod write_key;

pub use account::*;
pub use contact::*;
pub use settings::*;
