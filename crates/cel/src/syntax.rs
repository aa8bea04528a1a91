//! A validating front end for CEL: lexer and recursive-descent parser.
//!
//! cel-interpreter's own parser (cel-parser 0.10, ANTLR-generated) keeps no
//! positions after a successful parse and panics on common mistakes such as
//! `1 +` or an unterminated string, and its recursion overflows a 2 MiB stack
//! at a few hundred nested brackets. So every source goes through this parser
//! first: it follows the grammar of cel-parser (`CEL.g4`), records the byte
//! offset of every node, rejects what the interpreter cannot run (message
//! construction, optional syntax, escaped identifiers) and bounds the nesting.
//! Only sources it accepts reach cel-parser.

use std::fmt::Write as _;

/// Brackets (parentheses, lists, maps, call arguments, indexes) may nest this
/// deep: `((…1…))` with 32 pairs is accepted, with 33 refused. cel-parser
/// spends ~10 KiB of stack per level in a debug build; real segments nest
/// fewer than ten.
pub const MAX_NESTING: usize = 32;

/// The deepest tree of operators, selections and calls accepted: `1 + 1 + …`
/// with 100 `+` is accepted, with 101 refused (identifiers and literals are
/// no level). A chain of `&&` or `||` counts as one level (the interpreter
/// balances it).
pub const MAX_DEPTH: usize = 100;

/// A syntax error at a byte offset of the source.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub at: usize,
    pub message: String,
}

fn err<T>(at: usize, message: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError { at, message: message.into() })
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Str(String),
    Bytes,
    Int {
        hex: bool,
    },
    Uint,
    Double,
    True,
    False,
    Null,
    In,
    /// An operator or punctuation, spelled as in the source.
    Punct(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub tok: Tok,
    pub at: usize,
}

const PUNCTS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "-", "+", "*", "/", "%", ".", ",", "?", ":", "(", ")", "[", "]",
    "{", "}",
];

pub fn lex(src: &str) -> Result<Vec<Token>, SyntaxError> {
    lex_with_comments(src).map(|(tokens, _)| tokens)
}

/// The source with each comment replaced by as many spaces as it has
/// characters, so lines and columns stay put. cel-parser 0.10 rejects a
/// source that starts with a comment.
pub fn blank_comments(src: &str) -> String {
    let Ok((_, comments)) = lex_with_comments(src) else {
        return src.to_string();
    };
    let mut out = String::with_capacity(src.len());
    let mut from = 0;
    for (start, end) in comments {
        out.push_str(&src[from..start]);
        out.extend(src[start..end].chars().map(|_| ' '));
        from = end;
    }
    out.push_str(&src[from..]);
    out
}

/// Byte ranges of comments.
type Comments = Vec<(usize, usize)>;

/// Tokens, and where the comments are.
fn lex_with_comments(src: &str) -> Result<(Vec<Token>, Comments), SyntaxError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut comments = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' | 0x0c => i += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let start = i;
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                comments.push((start, i));
            }
            b'0'..=b'9' => {
                let (tok, end) = lex_number(src, i)?;
                out.push(Token { tok, at: i });
                i = end;
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let (tok, end) = lex_number(src, i)?;
                out.push(Token { tok, at: i });
                i = end;
            }
            b'\'' | b'"' => {
                let (s, end) = lex_string(src, i, false)?;
                out.push(Token { tok: Tok::Str(s), at: i });
                i = end;
            }
            b'`' => {
                return err(i, "escaped identifiers (`…`) are not supported; index the map instead, as in m['my-key']");
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                // String prefixes: r'…' (raw), b'…' (bytes), br'…'.
                let mut j = i;
                let bytes = matches!(c, b'b' | b'B');
                if bytes {
                    j += 1;
                }
                let raw = matches!(b.get(j), Some(b'r' | b'R'));
                if raw {
                    j += 1;
                }
                if (bytes || raw) && matches!(b.get(j), Some(b'\'' | b'"')) {
                    let (s, end) = lex_string(src, j, raw)?;
                    out.push(Token { tok: if bytes { Tok::Bytes } else { Tok::Str(s) }, at: i });
                    i = end;
                    continue;
                }
                let mut end = i;
                while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                    end += 1;
                }
                let word = &src[i..end];
                let tok = match word {
                    "true" => Tok::True,
                    "false" => Tok::False,
                    "null" => Tok::Null,
                    "in" => Tok::In,
                    _ => Tok::Ident(word.to_string()),
                };
                out.push(Token { tok, at: i });
                i = end;
            }
            _ => {
                if let Some(p) = PUNCTS.iter().find(|p| src[i..].starts_with(**p)) {
                    out.push(Token { tok: Tok::Punct(p), at: i });
                    i += p.len();
                    continue;
                }
                let ch = src[i..].chars().next().unwrap_or('?');
                let hint = match ch {
                    '=' => "; compare with ==",
                    '&' => "; use && for and",
                    '|' => "; use || for or",
                    _ => "",
                };
                return err(i, format!("unexpected character {ch:?}{hint}"));
            }
        }
    }
    out.push(Token { tok: Tok::Eof, at: src.len() });
    Ok((out, comments))
}

/// Numbers as CEL.g4 spells them: `12`, `0x1F`, `12u`, `1.5`, `1e3`, `.5`.
fn lex_number(src: &str, start: usize) -> Result<(Tok, usize), SyntaxError> {
    let b = src.as_bytes();
    let digits = |mut i: usize, hex: bool| {
        while i < b.len() && (b[i].is_ascii_digit() || (hex && b[i].is_ascii_hexdigit())) {
            i += 1;
        }
        i
    };
    let mut i = start;
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        let end = digits(i + 2, true);
        if end == i + 2 {
            return err(start, "a hexadecimal literal needs digits after 0x");
        }
        let text = &src[i + 2..end];
        if matches!(b.get(end), Some(b'u' | b'U')) {
            return match u64::from_str_radix(text, 16) {
                Ok(_) => Ok((Tok::Uint, end + 1)),
                Err(_) => err(start, format!("unsigned integer literal {} is out of range", &src[start..=end])),
            };
        }
        return match i64::from_str_radix(text, 16) {
            Ok(_) => Ok((Tok::Int { hex: true }, end)),
            Err(_) => err(start, format!("integer literal {} is out of range", &src[start..end])),
        };
    }
    i = digits(i, false);
    let mut float = false;
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        float = true;
        i = digits(i + 1, false);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            float = true;
            i = digits(j, false);
        }
    }
    let text = &src[start..i];
    if float {
        return match text.parse::<f64>() {
            Ok(d) if d.is_finite() => Ok((Tok::Double, i)),
            _ => err(start, format!("double literal {text} is out of range")),
        };
    }
    if matches!(b.get(i), Some(b'u' | b'U')) {
        return match text.parse::<u64>() {
            Ok(_) => Ok((Tok::Uint, i + 1)),
            Err(_) => err(start, format!("unsigned integer literal {text}u is out of range")),
        };
    }
    match text.parse::<i64>() {
        Ok(_) => Ok((Tok::Int { hex: false }, i)),
        Err(_) => err(start, format!("integer literal {text} is out of range")),
    }
}

/// A quoted string starting at `start` (the quote); returns its value and the
/// offset after it.
fn lex_string(src: &str, start: usize, raw: bool) -> Result<(String, usize), SyntaxError> {
    let b = src.as_bytes();
    let q = b[start];
    let triple = b.get(start + 1) == Some(&q) && b.get(start + 2) == Some(&q);
    let mut i = if triple { start + 3 } else { start + 1 };
    let mut value = String::new();
    loop {
        let Some(ch) = src[i..].chars().next() else {
            return err(start, "unterminated string");
        };
        if triple {
            if b[i] == q && b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q) {
                return Ok((value, i + 3));
            }
        } else if b[i] == q {
            return Ok((value, i + 1));
        } else if ch == '\n' || ch == '\r' {
            return err(start, "unterminated string (use ''' or \"\"\" for text over several lines)");
        }
        if ch == '\\' && !raw {
            let (c, len) = escape(src, i)?;
            value.push(c);
            i += len;
        } else {
            value.push(ch);
            i += ch.len_utf8();
        }
    }
}

/// Decodes the escape sequence at `at` (a backslash); returns the character
/// and the length of the sequence in bytes.
fn escape(src: &str, at: usize) -> Result<(char, usize), SyntaxError> {
    let rest = &src[at + 1..];
    let Some(c) = rest.chars().next() else {
        return err(at, "unterminated string");
    };
    let simple = match c {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '"' | '\'' | '\\' | '?' | '`' => Some(c),
        _ => None,
    };
    if let Some(s) = simple {
        return Ok((s, 2));
    }
    let code = |digits: usize, radix: u32, skip: usize| -> Result<(char, usize), SyntaxError> {
        let text = rest.get(skip..skip + digits).filter(|t| t.chars().all(|c| c.is_digit(radix)));
        let bad = || SyntaxError { at, message: format!("invalid escape sequence \\{c}") };
        let n = u32::from_str_radix(text.ok_or_else(bad)?, radix).map_err(|_| bad())?;
        Ok((char::from_u32(n).ok_or_else(bad)?, 1 + skip + digits))
    };
    match c {
        '0'..='3' => code(3, 8, 0),
        'x' | 'X' => code(2, 16, 1),
        'u' => code(4, 16, 1),
        'U' => code(8, 16, 1),
        _ => err(at, format!("invalid escape sequence \\{c}")),
    }
}

/// A node of the syntax tree with the byte offset it is reported at: the
/// identifier, field or function name for those, the operator otherwise.
#[derive(Debug, Clone)]
pub struct Node {
    pub at: usize,
    pub depth: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Ident(String),
    Select {
        operand: Box<Node>,
        field: String,
    },
    Index {
        operand: Box<Node>,
        index: Box<Node>,
    },
    Call {
        target: Option<Box<Node>>,
        name: String,
        args: Vec<Node>,
    },
    Str(String),
    /// Any other literal: int, uint, double, bytes, bool, null.
    Literal(&'static str),
    /// Operators, lists and maps: only their operands matter to the checks.
    Compound(Vec<Node>),
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    nesting: usize,
}

pub fn parse(src: &str) -> Result<Node, SyntaxError> {
    let toks = lex(src)?;
    let mut p = Parser { toks, pos: 0, nesting: 0 };
    let node = p.expr()?;
    let t = p.peek();
    if t.tok != Tok::Eof {
        return err(t.at, format!("unexpected {} after a complete expression", describe(&t.tok)));
    }
    Ok(node)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("identifier {s}"),
        Tok::Str(_) => "string".into(),
        Tok::Bytes => "bytes literal".into(),
        Tok::Int { .. } | Tok::Uint | Tok::Double => "number".into(),
        Tok::True => "true".into(),
        Tok::False => "false".into(),
        Tok::Null => "null".into(),
        Tok::In => "in".into(),
        Tok::Punct(p) => format!("'{p}'"),
        Tok::Eof => "end of expression".into(),
    }
}

fn node(at: usize, kind: Kind) -> Result<Node, SyntaxError> {
    let below = match &kind {
        Kind::Ident(_) | Kind::Str(_) | Kind::Literal(_) => 0,
        Kind::Select { operand, .. } => operand.depth,
        Kind::Index { operand, index } => operand.depth.max(index.depth),
        Kind::Call { target, args, .. } => {
            args.iter().map(|a| a.depth).chain(target.iter().map(|t| t.depth)).max().unwrap_or(0)
        }
        Kind::Compound(parts) => parts.iter().map(|a| a.depth).max().unwrap_or(0),
    };
    let depth = match &kind {
        Kind::Ident(_) | Kind::Str(_) | Kind::Literal(_) => 0,
        _ => below + 1,
    };
    if depth > MAX_DEPTH {
        return err(at, format!("expression is nested too deeply (more than {MAX_DEPTH} levels)"));
    }
    Ok(Node { at, depth, kind })
}

/// The macros cel-parser expands, and how many arguments each takes.
pub const MACROS: &[(&str, &[usize])] =
    &[("all", &[2]), ("exists", &[2]), ("exists_one", &[2]), ("existsOne", &[2]), ("map", &[2, 3]), ("filter", &[2])];

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.pos]
    }

    fn is(&self, p: &str) -> bool {
        matches!(&self.peek().tok, Tok::Punct(q) if *q == p)
    }

    fn eat(&mut self, p: &str) -> Option<usize> {
        if self.is(p) {
            self.pos += 1;
            Some(self.toks[self.pos - 1].at)
        } else {
            None
        }
    }

    fn expect(&mut self, p: &str, opened: Option<(&str, usize)>) -> Result<usize, SyntaxError> {
        if let Some(at) = self.eat(p) {
            return Ok(at);
        }
        let t = self.peek();
        let found = describe(&t.tok);
        match opened {
            Some((open, _)) => err(t.at, format!("expected '{p}' to close '{open}', found {found}")),
            None => err(t.at, format!("expected '{p}', found {found}")),
        }
    }

    fn expr(&mut self) -> Result<Node, SyntaxError> {
        // `nesting` counts the brackets around this expression: none around
        // the whole source.
        if self.nesting > MAX_NESTING {
            return err(self.peek().at, format!("brackets nest too deeply (more than {MAX_NESTING} levels)"));
        }
        self.nesting += 1;
        let cond = self.or()?;
        let result = if let Some(at) = self.eat("?") {
            let yes = self.or()?;
            self.expect(":", None)?;
            let no = self.expr()?;
            node(at, Kind::Compound(vec![cond, yes, no]))
        } else {
            Ok(cond)
        };
        self.nesting -= 1;
        result
    }

    /// `a || b || c` (and `&&`): one flat level, as the interpreter builds a
    /// balanced tree from the chain.
    fn chain(&mut self, op: &str, next: fn(&mut Self) -> Result<Node, SyntaxError>) -> Result<Node, SyntaxError> {
        let first = next(self)?;
        let Some(at) = self.eat(op) else {
            return Ok(first);
        };
        let mut terms = vec![first, next(self)?];
        while self.eat(op).is_some() {
            terms.push(next(self)?);
        }
        node(at, Kind::Compound(terms))
    }

    fn or(&mut self) -> Result<Node, SyntaxError> {
        self.chain("||", Self::and)
    }

    fn and(&mut self) -> Result<Node, SyntaxError> {
        self.chain("&&", Self::relation)
    }

    fn relation(&mut self) -> Result<Node, SyntaxError> {
        let mut left = self.calc()?;
        loop {
            let t = self.peek();
            let is_rel = matches!(&t.tok, Tok::In | Tok::Punct("<" | "<=" | ">=" | ">" | "==" | "!="));
            if !is_rel {
                return Ok(left);
            }
            let at = t.at;
            self.pos += 1;
            let right = self.calc()?;
            left = node(at, Kind::Compound(vec![left, right]))?;
        }
    }

    fn calc(&mut self) -> Result<Node, SyntaxError> {
        let mut left = self.product()?;
        while self.is("+") || self.is("-") {
            let at = self.peek().at;
            self.pos += 1;
            let right = self.product()?;
            left = node(at, Kind::Compound(vec![left, right]))?;
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Node, SyntaxError> {
        let mut left = self.unary()?;
        while self.is("*") || self.is("/") || self.is("%") {
            let at = self.peek().at;
            self.pos += 1;
            let right = self.unary()?;
            left = node(at, Kind::Compound(vec![left, right]))?;
        }
        Ok(left)
    }

    /// `!…` and `-…` apply to a member expression, not to another unary
    /// operator of the other kind (CEL.g4: `'!'+ member | '-'+ member`).
    fn unary(&mut self) -> Result<Node, SyntaxError> {
        for op in ["!", "-"] {
            if let Some(at) = self.eat(op) {
                while self.eat(op).is_some() {}
                if op == "-" && self.peek().tok == (Tok::Int { hex: true }) {
                    // cel-parser reads `-0x1F` as one literal and fails on it.
                    return err(at, "negative hexadecimal literals are not supported; write -(0x…)");
                }
                let operand = self.member()?;
                return node(at, Kind::Compound(vec![operand]));
            }
        }
        self.member()
    }

    fn member(&mut self) -> Result<Node, SyntaxError> {
        let mut left = self.primary()?;
        loop {
            if let Some(dot) = self.eat(".") {
                if self.is("?") {
                    return err(dot, "optional selection (.?) is not supported");
                }
                let t = self.peek().clone();
                let Tok::Ident(name) = t.tok else {
                    return err(t.at, format!("expected a field or method name after '.', found {}", describe(&t.tok)));
                };
                self.pos += 1;
                if let Some(open) = self.eat("(") {
                    let args = self.args(open)?;
                    left = node(t.at, Kind::Call { target: Some(Box::new(left)), name, args })?;
                } else if self.is("{") {
                    return err(t.at, "message construction (Type{…}) is not supported");
                } else {
                    left = node(t.at, Kind::Select { operand: Box::new(left), field: name })?;
                }
            } else if let Some(open) = self.eat("[") {
                if self.is("?") {
                    return err(open, "optional index ([?…]) is not supported");
                }
                let index = self.expr()?;
                self.expect("]", Some(("[", open)))?;
                left = node(open, Kind::Index { operand: Box::new(left), index: Box::new(index) })?;
            } else {
                return Ok(left);
            }
        }
    }

    fn args(&mut self, open: usize) -> Result<Vec<Node>, SyntaxError> {
        let mut args = Vec::new();
        if self.eat(")").is_some() {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if self.eat(",").is_none() {
                self.expect(")", Some(("(", open)))?;
                return Ok(args);
            }
        }
    }

    fn primary(&mut self) -> Result<Node, SyntaxError> {
        let t = self.peek().clone();
        self.pos += 1;
        match t.tok {
            Tok::Punct(".") => {
                // `.name` names a variable from the root scope.
                let n = self.peek().clone();
                if let Tok::Ident(_) = n.tok {
                    self.primary()
                } else {
                    err(n.at, format!("expected an identifier after '.', found {}", describe(&n.tok)))
                }
            }
            Tok::Ident(name) => {
                if let Some(open) = self.eat("(") {
                    let args = self.args(open)?;
                    node(t.at, Kind::Call { target: None, name, args })
                } else if self.is("{") {
                    err(t.at, "message construction (Type{…}) is not supported")
                } else {
                    node(t.at, Kind::Ident(name))
                }
            }
            Tok::Punct("(") => {
                let inner = self.expr()?;
                self.expect(")", Some(("(", t.at)))?;
                Ok(inner)
            }
            Tok::Punct("[") => {
                let items = self.items("]", t.at, false)?;
                node(t.at, Kind::Compound(items))
            }
            Tok::Punct("{") => {
                let items = self.items("}", t.at, true)?;
                node(t.at, Kind::Compound(items))
            }
            Tok::Str(s) => node(t.at, Kind::Str(s)),
            Tok::Bytes => node(t.at, Kind::Literal("bytes")),
            Tok::Int { .. } => node(t.at, Kind::Literal("int")),
            Tok::Uint => node(t.at, Kind::Literal("uint")),
            Tok::Double => node(t.at, Kind::Literal("double")),
            Tok::True | Tok::False => node(t.at, Kind::Literal("bool")),
            Tok::Null => node(t.at, Kind::Literal("null")),
            Tok::In | Tok::Punct(_) | Tok::Eof => {
                err(t.at, format!("expected an expression, found {}", describe(&t.tok)))
            }
        }
    }

    /// List elements or map entries up to `close`, with an optional trailing
    /// comma.
    fn items(&mut self, close: &str, open: usize, map: bool) -> Result<Vec<Node>, SyntaxError> {
        let opener = if map { "{" } else { "[" };
        let mut items = Vec::new();
        loop {
            if self.eat(close).is_some() {
                return Ok(items);
            }
            if self.is("?") {
                return err(self.peek().at, "optional entries (?…) are not supported");
            }
            items.push(self.expr()?);
            if map {
                self.expect(":", None)?;
                items.push(self.expr()?);
            }
            if self.eat(",").is_none() {
                self.expect(close, Some((opener, open)))?;
                return Ok(items);
            }
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, at: usize) -> (u32, u32) {
    let at = at.min(src.len());
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (u32::try_from(line).unwrap_or(u32::MAX), u32::try_from(column).unwrap_or(u32::MAX))
}

/// A readable `account.attributes.seats` for a chain of selections, if the
/// node is one.
pub fn path(n: &Node) -> Option<String> {
    match &n.kind {
        Kind::Ident(name) => Some(name.clone()),
        Kind::Select { operand, field } => {
            let mut p = path(operand)?;
            let _ = write!(p, ".{field}");
            Some(p)
        }
        Kind::Index { operand, index } => match &index.kind {
            Kind::Str(key) => {
                let mut p = path(operand)?;
                let _ = write!(p, "[{key:?}]");
                Some(p)
            }
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(src: &str) -> (u32, u32, String) {
        let e = parse(src).expect_err(src);
        let (l, c) = line_col(src, e.at);
        (l, c, e.message)
    }

    #[test]
    fn accepts_the_grammar() {
        for src in [
            "account.lifecycle_stage == 'renewal' && account.days_to_renewal <= 90",
            "'vip' in account.tags",
            "has(account.attributes.seats) && account.attributes.seats > 100",
            "account.tags.exists(t, t.startsWith('jp-'))",
            "a ? b : c ? d : e",
            "-1 + --2 * !!true - 3 % 2 / 1.5e3 + .5 + 0x1F + 7u + 0xAu",
            "[1, 2, 3,] + [] == {'a': 1, 'b': {}, }.b",
            "r'raw\\d' + b'bytes' + br'x' + '''multi\nline''' + \"\\u00e9\\x41\\101\"",
            ".account.name // a comment\n  != ''",
            "account['name'][0]",
            "f()",
        ] {
            parse(src).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        }
    }

    #[test]
    fn decodes_strings() {
        let Kind::Str(s) = parse(r#""\u00e9\x41\101\n'""#).unwrap().kind else { panic!() };
        assert_eq!(s, "éAA\n'");
        let Kind::Str(s) = parse(r"r'\d+'").unwrap().kind else { panic!() };
        assert_eq!(s, r"\d+");
    }

    #[test]
    fn reports_positions_in_characters() {
        assert_eq!(fails("'製造業' == x &&& y").0..=fails("'製造業' == x &&& y").1, 1..=14);
        assert_eq!(fails("1 +"), (1, 4, "expected an expression, found end of expression".into()));
        assert_eq!(fails("a ||"), (1, 5, "expected an expression, found end of expression".into()));
        assert_eq!(fails("x == 'open").2, "unterminated string");
        assert_eq!(fails("(a && b"), (1, 8, "expected ')' to close '(', found end of expression".into()));
        assert_eq!(fails("a = 1"), (1, 3, "unexpected character '='; compare with ==".into()));
        assert_eq!(fails("1 2"), (1, 3, "unexpected number after a complete expression".into()));
        assert_eq!(fails("a\n  && )").0..=fails("a\n  && )").1, 2..=6);
        assert_eq!(fails("製造業").2, "unexpected character '製'");
        assert_eq!(fails("99999999999999999999").2, "integer literal 99999999999999999999 is out of range");
        assert_eq!(fails("'\\q'").2, "invalid escape sequence \\q");
    }

    #[test]
    fn rejects_what_the_interpreter_cannot_run() {
        assert!(fails("Foo{a: 1}").2.contains("message construction"));
        assert!(fails("a.b.Foo{}").2.contains("message construction"));
        assert!(fails("a.?b").2.contains("optional selection"));
        assert!(fails("a[?0]").2.contains("optional index"));
        assert!(fails("[?a]").2.contains("optional entries"));
        assert!(fails("a.`b-c`").2.contains("escaped identifiers"));
    }

    #[test]
    fn bounds_nesting() {
        // Exactly at the documented limits is accepted; one more is not.
        for (open, close) in [("(", ")"), ("[", "]"), ("f(", ")"), ("a[", "]")] {
            let at = format!("{}1{}", open.repeat(MAX_NESTING), close.repeat(MAX_NESTING));
            assert!(parse(&at).is_ok(), "{at}");
            let over = format!("{}1{}", open.repeat(MAX_NESTING + 1), close.repeat(MAX_NESTING + 1));
            assert!(fails(&over).2.contains("brackets nest too deeply"), "{over}");
        }
        let at = format!("1{}", " + 1".repeat(MAX_DEPTH));
        assert!(parse(&at).is_ok());
        let over = format!("1{}", " + 1".repeat(MAX_DEPTH + 1));
        assert!(fails(&over).2.contains("nested too deeply"));
        let at = format!("a{}", ".b".repeat(MAX_DEPTH));
        assert!(parse(&at).is_ok());
        assert!(fails(&format!("{at}.b")).2.contains("nested too deeply"));
        // A long chain of || is one level.
        assert!(parse(&format!("a{}", " || a".repeat(1000))).is_ok());
    }

    #[test]
    fn lines_and_columns() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("製造\nx", 7), (2, 1));
        assert_eq!(line_col("製造", 6), (1, 3));
    }
}
