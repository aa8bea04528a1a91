//! A static estimate of the work one evaluation may do, so that no saved
//! expression can stall the engine that evaluates it on every event.
//!
//! It is computed on the tree as written (macros not expanded), once the
//! checks passed. Every node costs 1. A comprehension (`all`, `exists`,
//! `exists_one`, `map`, `filter`) costs its range once plus its body once per
//! element: the size of a literal list or map, the size of the range of a
//! `map()` or `filter()` it is called on, else
//! [`ASSUMED_COLLECTION_SIZE`]; nested comprehensions multiply. String
//! functions cost the length of the text they scan, a literal's or
//! [`ASSUMED_STRING_CHARS`]; `in` costs the size of its list.

use cel::IdedExpr;
use cel::common::ast::{CallExpr, Expr, LiteralValue, SourceInfo};

use crate::check::{MACROS, name_at};

/// The most an expression may cost ([`Expression::cost`](crate::Expression::cost))
/// unless its [`Schema`](crate::Schema) says otherwise: about a millisecond
/// of the interpreter's time.
pub const COST_LIMIT: u64 = 1_000_000;

/// The size assumed for a list or map of data (`account.tags`,
/// `account.attributes`, `health.measures`, a list in `event.data`, …) that
/// a comprehension iterates or `in` searches.
pub const ASSUMED_COLLECTION_SIZE: u64 = 1_000;

/// The length, in characters, assumed for a string of data that
/// `contains()`, `matches()` or `size()` scans.
pub const ASSUMED_STRING_CHARS: u64 = 100;

/// What `matches()` costs per character of its pattern, which it compiles on
/// each call.
pub const PATTERN_CHAR_COST: u64 = 10;

/// The estimated cost of `root`, or, if it exceeds `limit`, the byte offset
/// of the comprehension that pushes it over and the estimate.
pub(crate) fn estimate(root: &IdedExpr, limit: u64, source: &str, info: &SourceInfo) -> Result<u64, (usize, u64)> {
    let mut e = Estimator { source, info, limit, over: None, costliest: None };
    let total = e.cost(root);
    if total <= limit {
        return Ok(total);
    }
    // The innermost comprehension over the limit on its own; else the
    // costliest one (several add up); else the start (none: the source's
    // length bounds everything else far below any sensible limit).
    let at = e.over.or(e.costliest.map(|(_, at)| at)).unwrap_or(0);
    Err((at, total))
}

struct Estimator<'s> {
    source: &'s str,
    info: &'s SourceInfo,
    limit: u64,
    /// Where the first comprehension (innermost first) over the limit is.
    over: Option<usize>,
    /// The costliest comprehension, and where it is.
    costliest: Option<(u64, usize)>,
}

fn is_comprehension(c: &CallExpr) -> bool {
    c.target.is_some() && MACROS.iter().any(|(m, _)| *m == c.func_name)
}

/// The characters of a literal string, or the assumed length.
fn chars(n: &IdedExpr) -> u64 {
    match &n.expr {
        Expr::Literal(LiteralValue::String(s)) => u64::try_from(s.inner().chars().count()).unwrap_or(u64::MAX),
        _ => ASSUMED_STRING_CHARS,
    }
}

/// How many elements iterating `n` visits: known for literals and for the
/// result of `map()` or `filter()` over a known range.
fn size(n: &IdedExpr) -> u64 {
    let len = |l: usize| u64::try_from(l).unwrap_or(u64::MAX);
    match &n.expr {
        Expr::List(l) => len(l.elements.len()),
        Expr::Map(m) => len(m.entries.len()),
        Expr::Call(c) if is_comprehension(c) && (c.func_name == "map" || c.func_name == "filter") => {
            c.target.as_deref().map_or(ASSUMED_COLLECTION_SIZE, size)
        }
        Expr::Call(c) if c.func_name == "_+_" && c.target.is_none() && c.args.len() == 2 => {
            size(&c.args[0]).saturating_add(size(&c.args[1]))
        }
        _ => ASSUMED_COLLECTION_SIZE,
    }
}

/// What a call costs beyond its node and its arguments.
fn extra(c: &CallExpr) -> u64 {
    let target = c.target.as_deref();
    match (c.func_name.as_str(), target, c.args.as_slice()) {
        ("matches", Some(text), [pattern]) | ("matches", None, [text, pattern]) => {
            chars(text).saturating_add(PATTERN_CHAR_COST.saturating_mul(chars(pattern)))
        }
        // Scans the text (or, on a list, its elements: costed alike).
        ("contains", Some(text), [_]) => chars(text),
        // Compares as many characters as the prefix has.
        ("startsWith" | "endsWith", Some(_), [affix]) => chars(affix),
        // Counts characters (a list's size is known without it).
        ("size", Some(x), []) | ("size", None, [x]) => match &x.expr {
            Expr::List(_) | Expr::Map(_) => 0,
            _ => chars(x),
        },
        ("@in", None, [_, collection]) => match &collection.expr {
            // A map finds a key without a scan.
            Expr::Map(_) => 0,
            _ => size(collection),
        },
        _ => 0,
    }
}

impl Estimator<'_> {
    fn cost(&mut self, n: &IdedExpr) -> u64 {
        match &n.expr {
            Expr::Call(c) if is_comprehension(c) => {
                let range = c.target.as_deref().map_or(0, |t| self.cost(t));
                // The first argument is the variable's name.
                let body = c.args.iter().skip(1).fold(1u64, |sum, a| sum.saturating_add(self.cost(a)));
                let range_size = c.target.as_deref().map_or(ASSUMED_COLLECTION_SIZE, size);
                let total = 1u64.saturating_add(range).saturating_add(range_size.saturating_mul(body));
                let at = name_at(self.info, self.source, n, &c.func_name);
                if total > self.limit && self.over.is_none() {
                    self.over = Some(at);
                }
                if self.costliest.is_none_or(|(most, _)| total > most) {
                    self.costliest = Some((total, at));
                }
                total
            }
            Expr::Call(c) => {
                let parts = crate::parse::children(n).into_iter().fold(0u64, |sum, a| sum.saturating_add(self.cost(a)));
                1u64.saturating_add(parts).saturating_add(extra(c))
            }
            _ => crate::parse::children(n).into_iter().fold(1u64, |sum, a| sum.saturating_add(self.cost(a))),
        }
    }
}

/// `1234567` as `1,234,567`, for messages.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}
