//! The values an expression reads: every chain of selections rooted at a
//! variable (`account.arr`, `health.measures.events_30d.value`, `now`), as
//! [`Expression::paths`](crate::Expression::paths) lists them and
//! [`Facts::lookup`](crate::Facts::lookup) reads them back.
//!
//! A path is the variable's name followed by its steps: `.field` for a key
//! that is an identifier, `['key']` (a CEL string literal) for any other,
//! so that every path can be read back unambiguously.

use cel::IdedExpr;
use cel::common::ast::{Expr, LiteralValue, SourceInfo};

use crate::check::MACROS;
use crate::parse::offset;

/// The paths `root` reads, deduplicated, in the order they are written.
pub(crate) fn paths(root: &IdedExpr, source: &str, info: &SourceInfo) -> Vec<String> {
    let mut walker = Walker { source, info, scope: Vec::new(), found: Vec::new() };
    walker.walk(root);
    let mut found = walker.found;
    found.sort_by_key(|(at, _)| *at);
    let mut paths: Vec<String> = Vec::with_capacity(found.len());
    for (_, p) in found {
        if !paths.contains(&p) {
            paths.push(p);
        }
    }
    paths
}

struct Walker<'s> {
    source: &'s str,
    info: &'s SourceInfo,
    /// Comprehension variables around the current node.
    scope: Vec<String>,
    /// Each path and the byte offset of its variable.
    found: Vec<(usize, String)>,
}

impl Walker<'_> {
    fn walk(&mut self, n: &IdedExpr) {
        if let Some((root, steps)) = self.chain(n) {
            let mut path = match &root.expr {
                Expr::Ident(name) => name.clone(),
                _ => return,
            };
            for step in steps.iter().rev() {
                push_step(&mut path, step);
            }
            self.found.push((offset(self.info, self.source, root.id), path));
            return;
        }
        if let Expr::Call(c) = &n.expr
            && let Some(target) = c.target.as_deref()
            && MACROS.iter().any(|(m, _)| *m == c.func_name)
            && let Some(IdedExpr { expr: Expr::Ident(var), .. }) = c.args.first()
        {
            self.walk(target);
            self.scope.push(var.clone());
            for arg in &c.args[1..] {
                self.walk(arg);
            }
            self.scope.pop();
            return;
        }
        for child in crate::parse::children(n) {
            self.walk(child);
        }
    }

    /// The variable a chain of selections and literal string indexes starts
    /// at, and its steps, last first; `None` if `n` is not such a chain.
    fn chain<'e>(&self, n: &'e IdedExpr) -> Option<(&'e IdedExpr, Vec<String>)> {
        match &n.expr {
            Expr::Ident(name) if !name.starts_with('.') && !self.scope.contains(name) => Some((n, Vec::new())),
            Expr::Select(s) if !s.test => {
                let (root, mut steps) = self.chain(&s.operand)?;
                steps.insert(0, s.field.clone());
                Some((root, steps))
            }
            Expr::Call(c) if c.func_name == "_[_]" && c.target.is_none() && c.args.len() == 2 => {
                let Expr::Literal(LiteralValue::String(key)) = &c.args[1].expr else { return None };
                let (root, mut steps) = self.chain(&c.args[0])?;
                steps.insert(0, key.inner().to_string());
                Some((root, steps))
            }
            _ => None,
        }
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Appends `.key`, or `['key']` if `key` is not an identifier.
pub(crate) fn push_step(path: &mut String, key: &str) {
    if is_identifier(key) {
        path.push('.');
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&quote(key));
        path.push(']');
    }
}

/// `s` as a single-quoted CEL string literal.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The variable and the keys of a path as [`push_step`] writes it; `None`
/// if it is not one.
pub(crate) fn split(path: &str) -> Option<(&str, Vec<String>)> {
    let end = path.find(['.', '[']).unwrap_or(path.len());
    let (root, mut rest) = path.split_at(end);
    if !is_identifier(root) {
        return None;
    }
    let mut keys = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let (key, tail) = after.split_at(end);
            if key.is_empty() {
                return None;
            }
            keys.push(key.to_string());
            rest = tail;
        } else {
            let after = rest.strip_prefix("['")?;
            let mut key = String::new();
            let mut chars = after.char_indices();
            let close = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\'' => break i,
                    '\\' => {
                        let (_, e) = chars.next()?;
                        match e {
                            'n' => key.push('\n'),
                            'r' => key.push('\r'),
                            't' => key.push('\t'),
                            'u' => {
                                let hex: String =
                                    (0..4).map(|_| chars.next().map(|(_, h)| h)).collect::<Option<_>>()?;
                                key.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                            }
                            other => key.push(other),
                        }
                    }
                    c => key.push(c),
                }
            };
            rest = after.get(close + 1..)?.strip_prefix(']')?;
            keys.push(key);
        }
    }
    Some((root, keys))
}
