//! The use cases: one `pub(crate) async fn` each, one transaction each
//! through [`banso_events::Db`] — read, apply the domain rule, write, emit —
//! called by the API with commands of valid domain values.

pub(crate) mod backtest;
pub(crate) mod churn;
pub(crate) mod ingest;
pub(crate) mod jobs;
pub(crate) mod measures;
pub(crate) mod portfolio;
pub(crate) mod scorecards;
pub(crate) mod scores;

use banso_events::Db;
use banso_kit::paging::PageTokens;

use crate::{
    HealthSettings, backtests::Backtests, ingest_load::IngestLoad, recompute::Recompute, rollups::Rollups,
    scorer::Scorer, store::ingest::Ingest,
};

/// What the use cases work with (handles, cheap to clone).
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) db: Db,
    pub(crate) ingest: Ingest,
    pub(crate) ingest_load: IngestLoad,
    pub(crate) settings: HealthSettings,
    pub(crate) scorer: Scorer,
    pub(crate) recompute: Recompute,
    pub(crate) rollups: Rollups,
    pub(crate) backtests: Backtests,
    pub(crate) page_tokens: PageTokens,
}

/// A page a list request asks for: its size (checked) and the token of the
/// previous page (checked against the query when it is decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageRequest {
    pub size: u64,
    pub token: String,
}
