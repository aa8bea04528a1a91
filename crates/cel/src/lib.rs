//! The CEL (Common Expression Language) environment shared by segments and
//! playbook conditions.
//!
//! An [`Expression`] is compiled once, when a segment or condition is saved,
//! and checked against a [`Schema`]: syntax errors, unknown variables and
//! unknown fields of `account`, and literal arguments no evaluation could
//! take (`duration('30d')`) are reported there as a [`CompileError`] with a
//! 1-based line and column. It is then evaluated with
//! [`Expression::evaluate_bool`] against the [`Facts`] of each account; it is
//! `Send + Sync + Clone` (an `Arc` inside), so one compiled expression serves
//! any number of threads or tasks.
//!
//! ```
//! use banso_cel::{AccountFacts, Expression, account_schema};
//! use chrono::{NaiveDate, TimeZone, Utc};
//!
//! let segment = Expression::compile(
//!     "account.lifecycle_stage == 'renewal' && account.days_to_renewal <= 90",
//!     &account_schema(),
//! )?;
//! let tags = vec!["vip".to_string()];
//! let facts = AccountFacts {
//!     name: "Acme",
//!     lifecycle_stage: "renewal",
//!     renewal_date: NaiveDate::from_ymd_opt(2026, 3, 1),
//!     tags: &tags,
//!     today: NaiveDate::from_ymd_opt(2026, 1, 15).unwrap(),
//!     ..Default::default()
//! }
//! .into_facts(Utc.with_ymd_and_hms(2026, 1, 15, 3, 0, 0).unwrap());
//! assert!(segment.evaluate_bool(&facts)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The account environment
//!
//! [`account_schema`] declares two variables. `now` is a timestamp (the
//! evaluation time the caller passes). `account` is a map with exactly these
//! fields (any other is a compile error):
//!
//! | field | type |
//! |---|---|
//! | `name`, `external_id`, `industry`, `revenue_band`, `region`, `plan_tier`, `owner_id` | string, `""` when unset |
//! | `employee_count` | int, or `null` |
//! | `lifecycle_stage` | string: `onboarding`, `adoption`, `expansion`, `renewal`, `churned` |
//! | `touch_model` | string: `high`, `low`, `tech` |
//! | `arr` | int: the amount in minor units (`1234500` is 12,345.00 USD), `0` when none |
//! | `arr_currency` | string: ISO 4217 code, `""` when none |
//! | `contract_start_date`, `renewal_date` | timestamp at 00:00 UTC of the date, or `null` |
//! | `tags` | list of strings: `'vip' in account.tags` |
//! | `attributes` | map of custom attributes: any key may be read; values are bool, int, double, string, or timestamp (dates at 00:00 UTC) |
//! | `days_to_renewal` | int: `renewal_date` − today in the tenant's time zone (negative once past), or `null` |
//!
//! # The playbook environment
//!
//! [`playbook_schema`] declares `account` (the record above plus
//! `touch_mix`, a record of `high`, `low` and `tech` percents, and
//! `stage_days`, int or `null`), `health` (`score`, `band`, `trend_7d`,
//! `trend_30d`, and `measures`, a map from measure id to `value`,
//! `previous_value` and `points`), `event` (`type`, `id`, `occurred_at`, and
//! `data`, the payload, not checked) and `now`. [`PlaybookFacts`] builds them;
//! [`Expression::paths`] and [`Facts::lookup`] show what a condition read.
//!
//! ```
//! use banso_cel::{AccountFacts, EventFacts, Expression, Fact, HealthFacts, MeasureFacts, PlaybookFacts, playbook_schema};
//! use chrono::{NaiveDate, TimeZone, Utc};
//!
//! let condition = Expression::compile(
//!     "health.measures.events_30d.previous_value > 0 && \
//!      health.measures.events_30d.value < health.measures.events_30d.previous_value * 0.5",
//!     &playbook_schema(),
//! )?;
//! let reading = MeasureFacts { value: Some(400.0), previous_value: Some(1000.0), points: None };
//! let facts = PlaybookFacts {
//!     account: AccountFacts { name: "Acme", today: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(), ..Default::default() },
//!     health: HealthFacts { measures: std::borrow::Cow::Owned([("events_30d".to_string(), reading)].into()), ..Default::default() },
//!     event: EventFacts {
//!         event_type: "HealthScoreChanged".into(),
//!         data: Fact::from_json(serde_json::json!({"new_score": 38.5})).into(),
//!         ..Default::default()
//!     },
//!     ..Default::default()
//! }
//! .into_facts(Utc.with_ymd_and_hms(2026, 12, 4, 3, 0, 0).unwrap());
//! assert!(condition.evaluate_bool(&facts)?);
//! let read: Vec<(String, Option<String>)> =
//!     condition.paths().into_iter().map(|p| (p.clone(), facts.lookup(&p))).collect();
//! assert_eq!(read[0], ("health.measures.events_30d.previous_value".to_string(), Some("1000.0".to_string())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The cost limit
//!
//! An expression whose estimated cost ([`Expression::cost`]) exceeds its
//! schema's [`Schema::cost_limit`] ([`COST_LIMIT`], 1,000,000, unless
//! [`Schema::with_cost_limit`] says otherwise) does not compile: the error
//! points at the comprehension that goes over. Every node counts 1; a
//! comprehension its body once per element of its range (a literal's size,
//! else [`ASSUMED_COLLECTION_SIZE`]); string functions the characters they
//! scan ([`ASSUMED_STRING_CHARS`] for data). Two comprehensions nested over
//! data are refused. docs/cel.md has the details.
//!
//! # Semantics worth knowing
//!
//! * A comparison with `null` is an evaluation error, not `false`:
//!   `account.renewal_date < timestamp('2027-01-01T00:00:00Z')` fails for an
//!   account without a renewal date. Segments count such accounts as not
//!   members (and count the errors); guard the field to make the intent
//!   explicit: `account.renewal_date != null && account.renewal_date < …`.
//! * An error on either side of `&&` or `||` is absorbed when the other side
//!   decides the result (`x < 1 || true` is `true`), as the CEL
//!   specification has it; otherwise it is the result.
//! * Reading a missing custom attribute with `.` is an error; test it with
//!   `has(account.attributes.seats)` first. `account.attributes['seats']`
//!   gives `null` instead (kept from cel-interpreter 0.10: cel 0.15 fails).
//! * The result must be a bool, else [`EvalError::NotABool`].
//!
//! `docs/cel.md` lists the functions and macros that work with cel 0.15
//! and those that do not.

// Caller data must never reach a panic: the lints hold it outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::unreachable, clippy::todo)
)]

mod attr;
mod check;
mod cost;
mod facts;
mod fast;
mod parse;
mod paths;
mod runtime;
mod schema;
mod set;

use std::sync::Arc;

use cel::{IdedExpr, Value};

pub use attr::Attr;
pub use cost::{ASSUMED_COLLECTION_SIZE, ASSUMED_STRING_CHARS, COST_LIMIT, PATTERN_CHAR_COST};
pub use facts::{
    AccountFacts, EventData, EventFacts, Fact, Facts, HealthFacts, MeasureFacts, PlaybookFacts, Record, TouchMix,
};
pub use schema::{Schema, Shape, account_schema, playbook_schema};
pub use set::{ConditionSet, Evaluation};

/// The longest source accepted, in characters.
pub const MAX_SOURCE_CHARS: usize = 4096;

/// Why a source does not compile, and where: 1-based line and column, the
/// column counted in characters (not bytes) so it matches what an editor shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct CompileError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl CompileError {
    fn at(source: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, column) = parse::line_col(source, offset);
        CompileError { line, column, message: message.into() }
    }
}

/// Why an evaluation gave no bool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The expression evaluated to a value of this CEL type.
    #[error("the expression gave {}, not a bool", check::a(.0))]
    NotABool(String),
    /// The interpreter's error, reworded: values shown as CEL writes them,
    /// with a hint where a guard (`!= null`, `has()`) avoids it.
    #[error("{0}")]
    Failed(String),
}

/// A compiled expression and its source.
#[derive(Clone)]
pub struct Expression {
    inner: Arc<Inner>,
}

struct Inner {
    source: String,
    /// cel's tree with the macros expanded, as the interpreter runs it.
    program: IdedExpr,
    /// See [`Expression::cost`].
    cost: u64,
    /// See [`Expression::paths`].
    paths: Vec<String>,
    /// The same program on the fast path, when all of it is in its subset.
    fast: Option<fast::Node>,
    /// The fast path's tree lowered to typed operations.
    compiled: Option<fast::Compiled>,
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expression").field(&self.inner.source).finish()
    }
}

impl Expression {
    /// Parses `source` and checks it against `schema`.
    pub fn compile(source: &str, schema: &Schema) -> Result<Expression, CompileError> {
        if source.trim().is_empty() {
            return Err(CompileError::at(source, 0, "expression is empty"));
        }
        if let Some((beyond, _)) = source.char_indices().nth(MAX_SOURCE_CHARS) {
            let n = source.chars().count();
            return Err(CompileError::at(
                source,
                beyond,
                format!("expression is {n} characters long; the limit is {MAX_SOURCE_CHARS}"),
            ));
        }
        parse::on_parser_stack(source, || Self::compile_checked(source, schema))
            .unwrap_or_else(|message| Err(CompileError::at(source, 0, message)))
    }

    fn compile_checked(source: &str, schema: &Schema) -> Result<Expression, CompileError> {
        // Parsed twice: without macros for the checks, which then see
        // `has()` and `exists()` as written, and with them for evaluation.
        let (tree, info) = parse::parse(source, &runtime::PLAIN)?;
        parse::check_depth(&tree).map_err(|id| {
            CompileError::at(
                source,
                parse::offset(&info, source, id),
                format!("expression is nested too deeply (more than {} levels)", parse::MAX_DEPTH),
            )
        })?;
        let map_indexes = check::check(&tree, schema, source, &info)
            .map_err(|(at, message)| CompileError::at(source, at, message))?;
        let limit = schema.cost_limit();
        let cost = cost::estimate(&tree, limit, source, &info).map_err(|(at, cost)| {
            CompileError::at(
                source,
                at,
                format!(
                    "expression may cost about {} operations per evaluation; the limit is {} — nest fewer comprehensions",
                    cost::thousands(cost),
                    cost::thousands(limit)
                ),
            )
        })?;
        let paths = paths::paths(&tree, source, &info);
        let env = runtime::env().map_err(|message| CompileError::at(source, 0, message))?;
        let (mut program, program_info) = parse::parse(source, env)?;
        check::null_for_missing_keys(&mut program, &program_info, source, &map_indexes);
        let fast = fast::compile(&program);
        let compiled = fast.clone().map(fast::lower);
        Ok(Expression { inner: Arc::new(Inner { source: source.to_string(), program, cost, paths, fast, compiled }) })
    }

    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// The estimated work of one evaluation, in operations: every node of
    /// the expression counts 1, a comprehension its body once per element
    /// of its range, a string function the characters it scans (see
    /// [`COST_LIMIT`] and docs/cel.md). An expression whose estimate exceeds
    /// its schema's [`Schema::cost_limit`] does not compile.
    pub fn cost(&self) -> u64 {
        self.inner.cost
    }

    /// Every value the expression reads, as a path from a variable:
    /// `account.arr`, `health.measures.events_30d.value`,
    /// `event.data.new_score`, `now`. Selections and literal string indexes
    /// are steps (`account.attributes['seats']` is `account.attributes.seats`,
    /// a key that is not an identifier is written `['go-live']`); a chain
    /// ends at any other index or a call (`account.tags.exists(…)` reads
    /// `account.tags`); comprehension variables are not paths. Deduplicated,
    /// in the order written. [`Facts::lookup`] shows each one's value.
    pub fn paths(&self) -> Vec<String> {
        self.inner.paths.clone()
    }

    /// Whether the expression is evaluated on the fast path (the common
    /// subset: fields, literals, comparisons, `&&`, `||`, `!`, arithmetic,
    /// `in`, `?:`), falling back to the interpreter only on the values the
    /// fast path leaves to it. Either way the result is the interpreter's.
    pub fn is_fast(&self) -> bool {
        self.inner.fast.is_some()
    }

    /// Evaluates the expression; only a bool result is a success.
    pub fn evaluate_bool(&self, facts: &Facts<'_>) -> Result<bool, EvalError> {
        if let Some(compiled) = &self.inner.compiled
            && let Ok(b) = fast::run(compiled, facts)
        {
            return Ok(b);
        }
        self.evaluate_slow(facts)
    }

    /// The interpreter alone.
    fn evaluate_slow(&self, facts: &Facts<'_>) -> Result<bool, EvalError> {
        match self.evaluate(facts)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError::NotABool(runtime::type_name(&other).to_string())),
        }
    }

    fn evaluate(&self, facts: &Facts<'_>) -> Result<Value, EvalError> {
        runtime::evaluate(&self.inner.program, facts).map_err(EvalError::Failed)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod playbook_tests;

#[cfg(test)]
mod fast_tests;
