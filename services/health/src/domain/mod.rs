//! The scoring rules: measures, normalisations, scorecards, scores. No I/O.
//!
//! - [`backtest`]: labels from churns within a horizon; AUC (DeLong), calibration, lift, lead time.
//! - [`churn_model`]: churn prediction, a logistic regression (IRLS, L2, class weights) and its reasons.
//! - [`account`]: the projection of an account, and what CEL conditions see of it.
//! - [`portfolio`]: portfolio filters and the band distribution.
//! - [`replay`]: what a scorecard version would have scored on past days, from the usage rollups.
//! - [`rollup`]: days cut in the tenant's time zone, daily usage rollups.
//! - [`measure`]: the measure catalog (ids, parsing, usage measures from rollups).
//! - [`scorecard`]: scorecard definitions, validation, which one scores an account.
//! - [`outcome`]: labelled outcomes (churned, renewed, expanded, contracted) from contract events.
//! - [`score`]: weighted scores, bands, explanations, trend, "has it moved".
//! - [`survey`]: survey answers as external measures: each contact's latest answer within the window, averaged.

pub mod account;
pub mod backtest;
pub mod churn_features;
pub mod churn_model;
pub mod measure;
pub mod outcome;
pub mod portfolio;
pub mod renewal_forecast;
pub mod replay;
pub mod rollup;
pub mod score;
pub mod scorecard;
pub mod survey;
