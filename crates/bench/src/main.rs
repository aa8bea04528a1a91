//! Benchmark programs. Each prints its figure beside a baseline measured in
//! the same run on the same machine; docs/benchmarks.md says how to run them
//! and what they measure.

mod data;
mod harness;
mod import;
mod monitor;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "banso-bench", version, about = "Banso benchmarks: each figure beside a baseline from the same run")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// ImportAccounts (create, then the idempotent re-run) against a plain
    /// multi-row INSERT of the same rows into a copy of the accounts table.
    Import(import::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Import(args) => import::run(args).await,
    }
}
