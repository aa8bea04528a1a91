//! cel's parser, its errors in our words, and the bounds on nesting.
//!
//! cel 0.15's parser no longer panics on malformed input, and reports syntax
//! errors at a 1-based line and a column in characters, as ours did; its
//! messages are ANTLR's ("mismatched input ')' expecting {…}"), reworded here.
//! Its recursion is bounded only for bracket nesting (`max_recursion_depth`):
//! on chains (`a.b.b…`, `1+1+…`) it recurses once per link, and a
//! 10,000-link chain overflows a 2 MiB stack. So
//! [`MAX_SOURCE_CHARS`](crate::MAX_SOURCE_CHARS) is checked first, long
//! sources are parsed on a thread with a stack known to suffice
//! ([`on_parser_stack`]), and, as the interpreter's evaluation recurses too,
//! [`check_depth`] bounds the tree before anything else walks it.

use std::panic::{AssertUnwindSafe, catch_unwind};

use cel::common::ast::{EntryExpr, Expr, SourceInfo};
use cel::parser::{ParseError, ParseErrors};
use cel::{Env, IdedExpr};

use crate::CompileError;

/// Brackets (parentheses, lists, maps, call arguments, indexes, the branches
/// of `? :`) may nest this deep; real segments nest fewer than ten. cel's
/// parser counts the same levels (its `expr` rule) and stops at this depth.
pub const MAX_NESTING: usize = 32;

/// The deepest tree of operators, selections, indexes, calls, lists and maps
/// accepted: `1 + 1 + …` with 100 `+` is accepted, with 101 refused. A chain
/// of `&&` or `||` counts as one level, as cel builds a balanced tree of it.
pub const MAX_DEPTH: usize = 100;

/// Sources up to this long are parsed on the caller's stack: cel's parser
/// needs about 450 bytes of it per link of a chain (`a.b.b…`, `1+1+…`) in a
/// debug build, so at most 250 KiB for these.
const INLINE_PARSE_BYTES: usize = 1024;

/// The stack of the thread longer sources are parsed on: the longest
/// accepted (4,096 characters, 2,047 links in 32 brackets) needs just under
/// 1 MiB in a debug build, more than a caller on a small stack may have. A
/// stack overflow aborts the process; it cannot be caught.
const PARSER_STACK_BYTES: usize = 4 << 20;

/// Runs `f` (the parse of `source` and whatever walks cel's tree before its
/// depth is checked) where the stack is deep enough for it.
pub(crate) fn on_parser_stack<T: Send>(source: &str, f: impl FnOnce() -> T + Send) -> Result<T, String> {
    if source.len() <= INLINE_PARSE_BYTES {
        return Ok(f());
    }
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("banso-cel-parse".into())
            .stack_size(PARSER_STACK_BYTES)
            .spawn_scoped(scope, f)
            .map_err(|e| format!("the expression could not be parsed: no thread for the parser ({e})"))?;
        worker.join().map_err(|_| "the expression could not be parsed".to_string())
    })
}

/// Parses `source` with `env`'s parser: [`runtime::ENV`](crate::runtime::ENV)
/// expands the macros, [`runtime::PLAIN`](crate::runtime::PLAIN) leaves them
/// as calls.
pub(crate) fn parse(source: &str, env: &Env) -> Result<(IdedExpr, SourceInfo), CompileError> {
    let parser =
        env.parser().enable_optional_syntax(false).max_recursion_depth(u16::try_from(MAX_NESTING).unwrap_or(u16::MAX));
    // No panic is known (see the crate's parser_never_panics test); a parse
    // error is still better than a worker taken down if one remains.
    match catch_unwind(AssertUnwindSafe(|| parser.parse_with_source_info(source))) {
        Ok(Ok(parsed)) => Ok(parsed),
        Ok(Err(errors)) => Err(first_error(source, &errors)),
        Err(_) => Err(CompileError::at(source, 0, "the expression could not be parsed")),
    }
}

/// Byte offset where the node `id` was written; 0 if cel recorded none.
pub(crate) fn offset(info: &SourceInfo, source: &str, id: u64) -> usize {
    info.offset_for(id).map_or(0, |(start, _)| usize::try_from(start).unwrap_or(0).min(source.len()))
}

/// The error a person should fix first: the earliest, leaving out ANTLR's
/// follow-up messages and cel's internal ones ("Incomplete `IndexContext`!").
fn first_error(source: &str, errors: &ParseErrors) -> CompileError {
    let internal = |e: &&ParseError| !e.msg.starts_with("Syntax error") && e.msg.ends_with('!');
    let cascade = |e: &&ParseError| e.msg.contains("error recovery attempt limit exceeded");
    let chosen = errors
        .errors
        .iter()
        .find(|e| e.pos.0 >= 1 && !internal(e) && !cascade(e))
        .or_else(|| errors.errors.iter().find(|e| !internal(e)));
    match chosen {
        Some(e) => reword(source, e),
        None => CompileError::at(source, 0, "the expression could not be parsed"),
    }
}

fn clamp(n: isize) -> u32 {
    u32::try_from(n.max(1)).unwrap_or(u32::MAX)
}

/// The byte offset of a 1-based line and a column in characters.
fn offset_of(source: &str, line: u32, column: u32) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match source[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return source.len(),
        }
    }
    let skip = usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX);
    source[start..].char_indices().nth(skip).map_or(source.len(), |(i, _)| start + i)
}

/// cel's (ANTLR's) message in the words of Banso's other compile errors.
fn reword(source: &str, e: &ParseError) -> CompileError {
    let (line, column) = (clamp(e.pos.0), clamp(e.pos.1));
    let at = offset_of(source, line, column);
    let here = |message: String| CompileError { line, column, message };
    let msg = e.msg.strip_prefix("Syntax error: ").unwrap_or(&e.msg);
    if msg.contains("Recursion limit of") {
        return here(format!("brackets nest too deeply (more than {MAX_NESTING} levels)"));
    }
    if let Some(text) = msg.strip_prefix("token recognition error at: '").and_then(|t| t.strip_suffix('\'')) {
        return unrecognized(source, at, text).unwrap_or_else(|| here(format!("unexpected text {text:?}")));
    }
    for prefix in ["mismatched input ", "extraneous input "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let (token, expected) = rest.split_once(" expecting ").unwrap_or((rest, ""));
            return here(expecting(expected, &describe_token(token)));
        }
    }
    if let Some(rest) = msg.strip_prefix("missing ") {
        let (wanted, token) = rest.split_once(" at ").unwrap_or((rest, "'<EOF>'"));
        return here(expecting(wanted, &describe_token(token)));
    }
    if msg.starts_with("no viable alternative at input") {
        let found = found_at(source, at);
        let before = source[..at].trim_end();
        return here(if before.ends_with('.') {
            format!("expected a field or method name after '.', found {found}")
        } else {
            format!("unexpected {found}")
        });
    }
    let literal = || {
        source[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'))
            .collect::<String>()
    };
    let message = match msg {
        "invalid int literal" => format!("integer literal {} is out of range", literal()),
        "invalid uint literal" => format!("unsigned integer literal {} is out of range", literal()),
        "invalid double literal" => format!("double literal {} is out of range", literal()),
        "unsupported syntax '.?'" | "unsupported syntax '[?'" | "unsupported syntax '?'" => {
            "optional syntax (a.?b, a[?b], [?x], {?k: v}) is not supported".into()
        }
        "unsupported syntax: '`'" => {
            // cel reports it at the '.' before the backquote.
            let tick = source[at..].find('`').map_or(at, |i| at + i);
            return CompileError::at(
                source,
                tick,
                "escaped identifiers (`…`) are not supported; index the map instead, as in m['my-key']",
            );
        }
        m if m.starts_with("invalid string literal: InvalidUnicode") => {
            "invalid escape sequence: surrogates (\\uD800–\\uDFFF) and code points above \\U0010FFFF are not characters"
                .into()
        }
        m if m.starts_with("invalid bytes literal: InvalidEscape") => {
            "invalid escape sequence in a bytes literal: \\u and \\U are for strings; use \\x".into()
        }
        m if m.starts_with("invalid string literal") || m.starts_with("invalid bytes literal") => {
            "invalid string literal".into()
        }
        m if m.starts_with("reserved identifier: ") => {
            format!("{} is a reserved word", &m["reserved identifier: ".len()..])
        }
        m if m.contains("error recovery attempt limit exceeded") => "too many syntax errors".into(),
        m => {
            let mut chars = m.chars();
            match chars.next() {
                Some(c) => c.to_lowercase().chain(chars).collect(),
                None => "the expression could not be parsed".into(),
            }
        }
    };
    here(message)
}

/// "expected an expression, found ')'" from ANTLR's set of expected tokens.
fn expecting(expected: &str, found: &str) -> String {
    const EXPRESSION: &[&str] = &[
        "'['",
        "'{'",
        "'('",
        "'.'",
        "'-'",
        "'!'",
        "'?'",
        "'true'",
        "'false'",
        "'null'",
        "NUM_FLOAT",
        "NUM_INT",
        "NUM_UINT",
        "STRING",
        "BYTES",
        "IDENTIFIER",
        "ESC_IDENTIFIER",
    ];
    const OPERATOR: &[&str] = &[
        "'=='", "'!='", "'in'", "'<'", "'<='", "'>='", "'>'", "'&&'", "'||'", "'['", "'.'", "'-'", "'?'", "'+'", "'*'",
        "'/'", "'%'",
    ];
    let items: Vec<&str> = expected.trim_start_matches('{').trim_end_matches('}').split(", ").collect();
    if items == ["<EOF>"] {
        return format!("unexpected {found} after a complete expression");
    }
    let mut wanted = Vec::new();
    let mut rest: Vec<&str> = items.clone();
    if items.contains(&"IDENTIFIER") {
        wanted.push("an expression".to_string());
        rest.retain(|i| !EXPRESSION.contains(i));
    }
    if items.contains(&"'=='") {
        wanted.push("an operator".to_string());
        rest.retain(|i| !OPERATOR.contains(i));
    }
    for item in rest {
        wanted.push(if item == "<EOF>" { "the end of the expression".into() } else { item.to_string() });
    }
    let wanted = match wanted.as_slice() {
        [] => "something else".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    };
    format!("expected {wanted}, found {found}")
}

/// A token as ANTLR quotes it (`')'`, `'<EOF>'`, `''vip''`), for messages.
fn describe_token(token: &str) -> String {
    let text = token.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')).unwrap_or(token);
    match text {
        "<EOF>" => "end of expression".into(),
        "true" | "false" | "null" | "in" => text.into(),
        t if t.starts_with(['\'', '"']) || t.starts_with(['r', 'R', 'b', 'B']) && t.contains(['\'', '"']) => {
            "string".into()
        }
        t if t.starts_with(|c: char| c.is_ascii_digit()) => "number".into(),
        t if t.starts_with(|c: char| c.is_alphabetic() || c == '_') => format!("identifier {t}"),
        t => format!("'{t}'"),
    }
}

/// What the source has at `at`, for messages.
fn found_at(source: &str, at: usize) -> String {
    let rest = &source[at..];
    let Some(c) = rest.chars().next() else {
        return "end of expression".into();
    };
    if c.is_alphanumeric() || c == '_' {
        let word: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        return describe_token(&word);
    }
    format!("'{c}'")
}

/// The lexer's "token recognition error": `text` is what it could not make
/// a token of, from `at`.
fn unrecognized(source: &str, at: usize, text: &str) -> Option<CompileError> {
    let first = text.chars().next()?;
    if !matches!(first, '\'' | '"') {
        let hint = match first {
            '=' => "; compare with ==",
            '&' => "; use && for and",
            '|' => "; use || for or",
            _ => "",
        };
        return Some(CompileError::at(source, at, format!("unexpected character {first:?}{hint}")));
    }
    let raw = source[..at].ends_with(['r', 'R']);
    if text.contains(['\n', '\r']) {
        return Some(CompileError::at(
            source,
            at,
            "unterminated string (use ''' or \"\"\" for text over several lines)",
        ));
    }
    match text.rfind('\\') {
        Some(i) if !raw => {
            let escape = text[i..].trim_end_matches(['\'', '"']);
            Some(CompileError::at(source, at + i, format!("invalid escape sequence {escape}")))
        }
        _ => Some(CompileError::at(source, at, "unterminated string")),
    }
}

/// Refuses a tree deeper than [`MAX_DEPTH`], without recursion: cel's parser
/// builds chains thousands of links deep, which the checker and the
/// interpreter walk recursively. The error is the id of the node where the
/// limit is crossed.
pub(crate) fn check_depth(root: &IdedExpr) -> Result<(), u64> {
    let logical = |e: &IdedExpr| match &e.expr {
        Expr::Call(c) if c.func_name == "_&&_" || c.func_name == "_||_" => Some(c.func_name.clone()),
        _ => None,
    };
    let mut stack: Vec<(&IdedExpr, usize)> = vec![(root, 0)];
    while let Some((node, above)) = stack.pop() {
        let here = match &node.expr {
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => above,
            _ => above + 1,
        };
        if here > MAX_DEPTH {
            return Err(node.id);
        }
        let chain = logical(node);
        for child in children(node) {
            // `a || b || c` is one level: a nested || (or &&) of the same
            // operator stands at its parent's level.
            let same_chain = chain.is_some() && logical(child) == chain;
            stack.push((child, if same_chain { here - 1 } else { here }));
        }
    }
    Ok(())
}

/// The direct subexpressions of a node.
pub(crate) fn children(node: &IdedExpr) -> Vec<&IdedExpr> {
    match &node.expr {
        Expr::Call(c) => c.target.iter().map(|t| &**t).chain(&c.args).collect(),
        Expr::Select(s) => vec![&*s.operand],
        Expr::List(l) => l.elements.iter().collect(),
        Expr::Map(m) => m
            .entries
            .iter()
            .flat_map(|entry| match &entry.expr {
                EntryExpr::MapEntry(e) => vec![&e.key, &e.value],
                EntryExpr::StructField(f) => vec![&f.value],
            })
            .collect(),
        Expr::Struct(s) => s
            .entries
            .iter()
            .flat_map(|entry| match &entry.expr {
                EntryExpr::MapEntry(e) => vec![&e.key, &e.value],
                EntryExpr::StructField(f) => vec![&f.value],
            })
            .collect(),
        Expr::Comprehension(c) => vec![&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result],
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, at: usize) -> (u32, u32) {
    let mut at = at.min(src.len());
    while !src.is_char_boundary(at) {
        at -= 1;
    }
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (u32::try_from(line).unwrap_or(u32::MAX), u32::try_from(column).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("製造\nx", 7), (2, 1));
        assert_eq!(line_col("製造", 6), (1, 3));
        // Inside a character: the character's column.
        assert_eq!(line_col("製造", 4), (1, 2));
        for (src, line, column) in [("ab\ncd", 2, 2), ("製造\nx", 2, 1), ("製造", 1, 2), ("a", 1, 5)] {
            let at = offset_of(src, line, column);
            assert!(at <= src.len());
            if at < src.len() {
                assert_eq!(line_col(src, at), (line, column), "{src:?}");
            }
        }
    }
}
