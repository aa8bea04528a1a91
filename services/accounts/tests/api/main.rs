//! Black-box tests of the Accounts service: a real gRPC client against a
//! real server on 127.0.0.1:0, on a fresh SQLite file, or a fresh PostgreSQL
//! database when BANSO_TEST_DATABASE_URL is set.

mod common;

mod accounts;
mod auth;
mod contacts;
mod events;
mod import;
mod loops;
mod paging;
mod readiness;
mod retention;
mod segments;
mod server;
mod settings;
mod timeline;
mod touch;
mod touch_rules;
mod validation;
mod write_keys;
