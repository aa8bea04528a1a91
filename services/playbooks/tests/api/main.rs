//! The Playbooks service through a real gRPC client, against a real server
//! on port 0 and a fresh database (SQLite, or PostgreSQL with
//! BANSO_TEST_DATABASE_URL; NATS with BANSO_TEST_NATS_URL), with Accounts',
//! Health's and Feedback's events published onto its bus.

mod account_changes;
mod common;
mod ctas;
mod feedback;
mod firing;
mod loops;
mod outreach;
mod plans;
mod playbooks;
mod programmes;
mod simulate;
mod validation;
