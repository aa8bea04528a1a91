//! The scoring rules: measures, normalisations, scorecards, scores. No I/O.
//!
//! - [`rollup`]: days cut in the tenant's time zone, daily usage rollups.
//! - [`measure`]: the measure catalog (ids, parsing, usage measures from rollups).
//! - [`scorecard`]: scorecard definitions, validation, which one scores an account.
//! - [`score`]: weighted scores, bands, explanations, trend, "has it moved".

pub mod measure;
pub mod rollup;
pub mod score;
pub mod scorecard;
