//! The Feedback service through a real gRPC client, against a real server
//! on port 0 and a fresh database (SQLite, or PostgreSQL with
//! BANSO_TEST_DATABASE_URL; NATS with BANSO_TEST_NATS_URL), with Accounts',
//! Health's and Playbooks' events published onto its bus.

mod answers;
mod campaigns;
mod common;
mod perception;
mod results;
mod surveys;
mod voice_axes;
mod voice_corpus;
mod voice_items;
mod voice_loops;
mod voice_rank;
mod voice_routing;
