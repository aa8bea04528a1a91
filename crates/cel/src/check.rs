//! Checks a parsed expression against a [`Schema`] and the functions the
//! interpreter provides, so that mistakes surface when a segment is saved
//! rather than as an evaluation error on every account.
//!
//! It walks cel's tree as parsed without macros (`has()`, `exists()`, … are
//! still the calls they were written as), so each check can point at what
//! the person wrote.

use std::fmt::Write as _;

use cel::IdedExpr;
use cel::common::ast::{CallExpr, EntryExpr, Expr, LiteralValue, SourceInfo};
use cel::common::types::{CelInt, CelString};

use crate::parse::offset;
use crate::runtime;
use crate::schema::{Schema, Shape};

/// How a function may be called: the numbers of arguments it takes as a
/// method (`x.f(…)`, not counting `x`) and as a global function (`f(…)`);
/// empty if it cannot be called that way, `VARIADIC` for one or more.
struct Func {
    name: &'static str,
    method: &'static [usize],
    global: &'static [usize],
}

const VARIADIC: usize = usize::MAX;

const fn f(name: &'static str, method: &'static [usize], global: &'static [usize]) -> Func {
    Func { name, method, global }
}

/// Every function the interpreter's environment offers (see `runtime::ENV`
/// and `runtime::ROOT`) that segments may call; a test calls each form to
/// keep the two in step. The optional-value library, `type()` and `dyn()`
/// are left out: without type names and optional syntax they serve nothing.
const FUNCTIONS: &[Func] = &[
    f("contains", &[1], &[]),
    f("size", &[0], &[1]),
    f("max", &[], &[VARIADIC]),
    f("min", &[], &[VARIADIC]),
    f("startsWith", &[1], &[]),
    f("endsWith", &[1], &[]),
    f("matches", &[1], &[2]),
    f("string", &[], &[1]),
    f("bytes", &[], &[1]),
    f("bool", &[], &[1]),
    f("double", &[], &[1]),
    f("int", &[], &[1]),
    f("uint", &[], &[1]),
    f("duration", &[], &[1]),
    f("timestamp", &[], &[1]),
    // On a timestamp, optionally with a time zone; the last four also on a
    // duration, without.
    f("getFullYear", &[0, 1], &[]),
    f("getMonth", &[0, 1], &[]),
    f("getDayOfYear", &[0, 1], &[]),
    f("getDayOfMonth", &[0, 1], &[]),
    f("getDate", &[0, 1], &[]),
    f("getDayOfWeek", &[0, 1], &[]),
    f("getHours", &[0, 1], &[]),
    f("getMinutes", &[0, 1], &[]),
    f("getSeconds", &[0, 1], &[]),
    f("getMilliseconds", &[0, 1], &[]),
];

/// The macros cel expands, and how many arguments each takes.
pub const MACROS: &[(&str, &[usize])] =
    &[("all", &[2]), ("exists", &[2]), ("exists_one", &[2]), ("existsOne", &[2]), ("map", &[2, 3]), ("filter", &[2])];

/// The names of the functions, for docs and tests.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|f| f.name)
}

/// Each way a function may be called, as (name, is a method, argument count);
/// `VARIADIC` for one or more. For tests.
#[cfg(test)]
pub fn function_forms() -> impl Iterator<Item = (&'static str, bool, usize)> {
    FUNCTIONS
        .iter()
        .flat_map(|f| f.method.iter().map(|n| (f.name, true, *n)).chain(f.global.iter().map(|n| (f.name, false, *n))))
}

fn arguments(counts: &[usize]) -> String {
    let one = |n: usize| match n {
        VARIADIC => "one or more arguments".to_string(),
        1 => "1 argument".to_string(),
        n => format!("{n} arguments"),
    };
    match counts {
        [n] => one(*n),
        [a, b] => format!("{a} or {}", one(*b)),
        _ => counts.iter().map(|n| one(*n)).collect::<Vec<_>>().join(" or "),
    }
}

/// A check's failure: a byte offset of the source and a message.
pub(crate) type Failure = (usize, String);

/// Checks the tree of `source`; returns where (the byte offsets of their
/// `[`) it indexes a map whose keys are data (custom attributes), for
/// [`null_for_missing_keys`].
pub(crate) fn check(root: &IdedExpr, schema: &Schema, source: &str, info: &SourceInfo) -> Result<Vec<usize>, Failure> {
    let mut checker = Checker { schema, source, info, scope: Vec::new(), map_indexes: Vec::new() };
    checker.shape(root)?;
    checker.constants(root)?;
    Ok(checker.map_indexes)
}

/// Makes `m[k]` on the maps at `indexes` (byte offsets of their `[`)
/// `k in m ? m[k] : null`, in the tree the interpreter runs.
///
/// cel-interpreter 0.10 gave `null` for a missing key read with `[…]`, and
/// docs/cel.md promises it for `account.attributes['seats']`; cel 0.15, as
/// the CEL specification, fails instead, as it does for `.seats`.
pub(crate) fn null_for_missing_keys(e: &mut IdedExpr, info: &SourceInfo, source: &str, indexes: &[usize]) {
    if indexes.is_empty() {
        return;
    }
    for child in children_mut(e) {
        null_for_missing_keys(child, info, source, indexes);
    }
    let Expr::Call(c) = &e.expr else { return };
    if c.func_name != "_[_]"
        || c.target.is_some()
        || c.args.len() != 2
        || !indexes.contains(&offset(info, source, e.id))
    {
        return;
    }
    let (map, key) = (c.args[0].clone(), c.args[1].clone());
    let index = std::mem::take(e);
    let id = index.id;
    let call = |func_name: &str, args: Vec<IdedExpr>| IdedExpr {
        id,
        expr: Expr::Call(CallExpr { func_name: func_name.into(), target: None, args }),
    };
    let present = call("@in", vec![key, map]);
    let null = IdedExpr { id, expr: Expr::Literal(LiteralValue::Null) };
    *e = call("_?_:_", vec![present, index, null]);
}

fn children_mut(node: &mut IdedExpr) -> Vec<&mut IdedExpr> {
    match &mut node.expr {
        Expr::Call(c) => c.target.iter_mut().map(|t| &mut **t).chain(c.args.iter_mut()).collect(),
        Expr::Select(s) => vec![&mut *s.operand],
        Expr::List(l) => l.elements.iter_mut().collect(),
        Expr::Map(m) => m
            .entries
            .iter_mut()
            .flat_map(|entry| match &mut entry.expr {
                EntryExpr::MapEntry(e) => vec![&mut e.key, &mut e.value],
                EntryExpr::StructField(f) => vec![&mut f.value],
            })
            .collect(),
        Expr::Struct(s) => s
            .entries
            .iter_mut()
            .flat_map(|entry| match &mut entry.expr {
                EntryExpr::MapEntry(e) => vec![&mut e.key, &mut e.value],
                EntryExpr::StructField(f) => vec![&mut f.value],
            })
            .collect(),
        Expr::Comprehension(c) => {
            let c = &mut **c;
            vec![&mut c.iter_range, &mut c.accu_init, &mut c.loop_cond, &mut c.loop_step, &mut c.result]
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

struct Checker<'s> {
    schema: &'s Schema,
    source: &'s str,
    info: &'s SourceInfo,
    /// Variables bound by the macros around the current node, innermost last.
    scope: Vec<(String, Shape)>,
    /// Where the tree indexes a [`Shape::Map`].
    map_indexes: Vec<usize>,
}

fn fail<T>(at: usize, message: String) -> Result<T, Failure> {
    Err((at, message))
}

/// "a string", "an int".
pub(crate) fn a(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {type_name}")
}

/// A readable `account.attributes.seats` for a chain of selections, if the
/// node is one.
fn path(n: &IdedExpr) -> Option<String> {
    match &n.expr {
        Expr::Ident(name) => Some(name.clone()),
        Expr::Select(s) => {
            let mut p = path(&s.operand)?;
            let _ = write!(p, ".{}", s.field);
            Some(p)
        }
        Expr::Call(c) if c.func_name == "_[_]" && c.target.is_none() && c.args.len() == 2 => match &c.args[1].expr {
            Expr::Literal(LiteralValue::String(key)) => {
                let mut p = path(&c.args[0])?;
                let _ = write!(p, "[{:?}]", key.inner());
                Some(p)
            }
            _ => None,
        },
        _ => None,
    }
}

/// Where the name of the call `n` is written: cel records its `(`.
pub(crate) fn name_at(info: &SourceInfo, source: &str, n: &IdedExpr, name: &str) -> usize {
    let paren = offset(info, source, n.id);
    let before = source.get(..paren).unwrap_or("").trim_end();
    match before.strip_suffix(name) {
        Some(start) => start.len(),
        None => paren,
    }
}

fn name_of(n: &IdedExpr) -> String {
    path(n).unwrap_or_else(|| "this value".into())
}

/// Whether cel's parser made `call` of an operator (`_+_`, `!_`, `@in`, …).
fn is_operator(call: &CallExpr) -> bool {
    call.target.is_none()
        && (call.func_name.starts_with('_') || call.func_name.ends_with('_') || call.func_name == "@in")
}

fn is_macro(call: &CallExpr) -> bool {
    (call.func_name == "has" && call.target.is_none()) || MACROS.iter().any(|(m, _)| *m == call.func_name)
}

impl Checker<'_> {
    /// Where node `n` was written: the identifier, operator or opening
    /// bracket; for a selection, the `.`.
    fn at(&self, n: &IdedExpr) -> usize {
        offset(self.info, self.source, n.id)
    }

    /// Where the field of a selection is written, after its `.`.
    fn field_at(&self, n: &IdedExpr) -> usize {
        let dot = self.at(n);
        let rest = self.source.get(dot..).unwrap_or("");
        match rest.strip_prefix('.') {
            Some(after) => dot + 1 + (after.len() - after.trim_start().len()),
            None => dot,
        }
    }

    /// Where the name of a call is written: cel records its `(`.
    fn name_at(&self, n: &IdedExpr, name: &str) -> usize {
        name_at(self.info, self.source, n, name)
    }

    fn shape(&mut self, n: &IdedExpr) -> Result<Shape, Failure> {
        match &n.expr {
            Expr::Ident(name) => {
                if let Some(root) = name.strip_prefix('.') {
                    // cel 0.15 looks `.name` up in the root scope only, where
                    // the variables of an evaluation are not.
                    return fail(self.at(n), format!("write {} without the leading '.'", short(root)));
                }
                if let Some((_, s)) = self.scope.iter().rev().find(|(v, _)| v == name) {
                    return Ok(s.clone());
                }
                match self.schema.variable(name) {
                    Some(s) => Ok(s.clone()),
                    None => {
                        let known: Vec<&str> = self.schema.variable_names().collect();
                        fail(self.at(n), format!("unknown variable {}; known: {}", short(name), known.join(", ")))
                    }
                }
            }
            Expr::Select(s) => {
                let operand_shape = self.shape(&s.operand)?;
                self.field(&operand_shape, &s.operand, &s.field, self.field_at(n))
            }
            Expr::Call(c) if c.func_name == "_[_]" && c.target.is_none() && c.args.len() == 2 => {
                let (operand, index) = (&c.args[0], &c.args[1]);
                let s = self.shape(operand)?;
                self.shape(index)?;
                if let Shape::Map(_) = s {
                    self.map_indexes.push(self.at(n));
                }
                match (&index.expr, &s) {
                    (Expr::Literal(LiteralValue::String(key)), Shape::Record(_) | Shape::Map(_)) => {
                        self.field(&s, operand, key.inner(), self.at(index))
                    }
                    _ => Ok(Shape::Any),
                }
            }
            Expr::Call(c) if is_operator(c) => {
                for arg in &c.args {
                    self.shape(arg)?;
                }
                Ok(Shape::Any)
            }
            Expr::Call(c) => self.call(n, c),
            Expr::Literal(l) => Ok(match l {
                LiteralValue::String(_) => Shape::String,
                LiteralValue::Boolean(_) => Shape::Bool,
                LiteralValue::Int(_) => Shape::Int,
                LiteralValue::Double(_) => Shape::Double,
                _ => Shape::Any,
            }),
            Expr::List(l) => {
                for e in &l.elements {
                    self.shape(e)?;
                }
                Ok(Shape::Any)
            }
            Expr::Map(_) => {
                for e in crate::parse::children(n) {
                    self.shape(e)?;
                }
                Ok(Shape::Any)
            }
            Expr::Struct(s) => {
                let brace = self.at(n);
                let before = self.source.get(..brace).unwrap_or("").trim_end();
                let at = before.strip_suffix(s.type_name.as_str()).map_or(brace, str::len);
                fail(at, "message construction (Type{…}) is not supported".into())
            }
            // Only in trees of sources that did not parse.
            Expr::Comprehension(_) | Expr::Unspecified => Ok(Shape::Any),
        }
    }

    /// The shape of `field` of a value of shape `s` (which `operand` gave).
    fn field(&self, s: &Shape, operand: &IdedExpr, field: &str, at: usize) -> Result<Shape, Failure> {
        match s {
            Shape::Record(fields) => match fields.get(field) {
                Some(f) => Ok(f.clone()),
                None => {
                    let known: Vec<&str> = fields.keys().map(String::as_str).collect();
                    fail(
                        at,
                        format!("unknown field {} of {}; known: {}", short(field), name_of(operand), known.join(", ")),
                    )
                }
            },
            Shape::Map(values) => Ok((**values).clone()),
            Shape::List(_) => fail(at, format!("{} is a list and has no field {}", name_of(operand), short(field))),
            other => match other.scalar_name() {
                Some(t) => fail(at, format!("{} is {} and has no field {}", name_of(operand), a(t), short(field))),
                None => Ok(Shape::Any),
            },
        }
    }

    fn call(&mut self, n: &IdedExpr, c: &CallExpr) -> Result<Shape, Failure> {
        let name = c.func_name.as_str();
        let (target, args) = (c.target.as_deref(), c.args.as_slice());
        let name_at = self.name_at(n, name);
        if name == "has" && target.is_none() {
            return match args {
                [arg @ IdedExpr { expr: Expr::Select(s), .. }] => {
                    // A field of a record must exist; a string, int, … has
                    // none to test (has() fails on it).
                    let operand_shape = self.shape(&s.operand)?;
                    self.field(&operand_shape, &s.operand, &s.field, self.field_at(arg))?;
                    Ok(Shape::Bool)
                }
                _ => fail(name_at, "has() takes one field selection, as in has(account.attributes.seats)".into()),
            };
        }
        if let Some((_, counts)) = MACROS.iter().find(|(m, _)| *m == name) {
            return self.comprehension(name_at, target, name, counts, args);
        }
        let Some(func) = FUNCTIONS.iter().find(|f| f.name == name) else {
            let known: Vec<&str> = function_names().collect();
            return fail(name_at, format!("unknown function {}; known: {}", short(name), known.join(", ")));
        };
        if let Some(t) = target {
            self.shape(t)?;
        }
        for a in args {
            self.shape(a)?;
        }
        let (allowed, form) = match target {
            Some(_) => (func.method, "a method"),
            None => (func.global, "a function"),
        };
        match allowed {
            [] if target.is_some() => fail(name_at, format!("{name}() is not a method; call it as {name}(…)")),
            [] => fail(name_at, format!("{name}() is a method; call it as value.{name}(…)")),
            [VARIADIC] if !args.is_empty() => Ok(Shape::Any),
            counts if counts.contains(&args.len()) => Ok(Shape::Any),
            counts => fail(name_at, format!("{name}() as {form} takes {}, not {}", arguments(counts), args.len())),
        }
    }

    /// `list.exists(x, cond)` and the other macros cel expands into
    /// comprehensions.
    fn comprehension(
        &mut self,
        name_at: usize,
        target: Option<&IdedExpr>,
        name: &str,
        counts: &[usize],
        args: &[IdedExpr],
    ) -> Result<Shape, Failure> {
        let usage = format!(
            "{name}() is called on a list or map with a variable name and an expression, as in account.tags.{name}(t, t == 'vip')"
        );
        let Some(target) = target else {
            return fail(name_at, usage);
        };
        if !counts.contains(&args.len()) {
            return fail(name_at, usage);
        }
        let var = match &args[0].expr {
            Expr::Ident(var) if !var.starts_with('.') => var,
            _ => {
                return fail(self.at(&args[0]), format!("the first argument of {name}() must be a variable name"));
            }
        };
        let element = match self.shape(target)? {
            Shape::List(e) => *e,
            // Iterating a map gives its keys.
            Shape::Map(_) | Shape::Record(_) => Shape::String,
            other => match other.scalar_name() {
                // Fails on every evaluation: cel iterates only lists and maps.
                Some(t) => {
                    return fail(
                        name_at,
                        format!("{name}() needs a list or a map, but {} is {}", name_of(target), a(t)),
                    );
                }
                None => Shape::Any,
            },
        };
        self.scope.push((var.clone(), element));
        let result = args[1..].iter().try_for_each(|a| self.shape(a).map(|_| ()));
        self.scope.pop();
        result?;
        Ok(match name {
            "map" | "filter" => Shape::List(Box::new(Shape::Any)),
            _ => Shape::Bool,
        })
    }

    /// Evaluates what can be evaluated now, so that an expression that is
    /// saved can be evaluated: every largest subexpression without variables
    /// (`duration('30d')`, `1 / 0`, `{'a': 1}.b`), and the format arguments
    /// of calls on variables (the pattern of `matches()`, the time zone of
    /// `getMonth()`).
    fn constants(&self, n: &IdedExpr) -> Result<(), Failure> {
        if self.is_constant(n) {
            if !matches!(n.expr, Expr::Literal(_)) && runtime::evaluate_constant(n).is_err() {
                return Err(self.innermost_failure(n));
            }
            return Ok(());
        }
        // The parts first, so that a failing argument is reported as such.
        for child in crate::parse::children(n) {
            self.constants(child)?;
        }
        if let Expr::Call(c) = &n.expr
            && c.target.is_some()
            && !is_macro(c)
            && let [arg] = c.args.as_slice()
            && self.is_constant(arg)
        {
            // Stand-ins for the receiver: a string for matches(), a timestamp
            // for the accessors. Any other receiver fails anyway.
            let receiver = match c.func_name.as_str() {
                "matches" => Some(literal(LiteralValue::String(CelString::from(String::new())))),
                f if f.starts_with("get") => Some(IdedExpr {
                    id: 0,
                    expr: Expr::Call(CallExpr {
                        func_name: "timestamp".into(),
                        target: None,
                        args: vec![literal(LiteralValue::Int(CelInt::from(0)))],
                    }),
                }),
                _ => None,
            };
            if let Some(receiver) = receiver {
                let probe = IdedExpr {
                    id: n.id,
                    expr: Expr::Call(CallExpr {
                        func_name: c.func_name.clone(),
                        target: Some(Box::new(receiver)),
                        args: vec![arg.clone()],
                    }),
                };
                if let Err(e) = runtime::evaluate_constant(&probe) {
                    return fail(self.at(arg), explain(&c.func_name, arg, &e));
                }
            }
        }
        if let Expr::Call(c) = &n.expr
            && c.target.is_none()
            && c.func_name == "matches"
            && let [_, pattern] = c.args.as_slice()
            && self.is_constant(pattern)
        {
            let text = literal(LiteralValue::String(CelString::from(String::new())));
            let probe = IdedExpr {
                id: n.id,
                expr: Expr::Call(CallExpr {
                    func_name: "matches".into(),
                    target: None,
                    args: vec![text, pattern.clone()],
                }),
            };
            if let Err(e) = runtime::evaluate_constant(&probe) {
                return fail(self.at(pattern), explain("matches", pattern, &e));
            }
        }
        Ok(())
    }

    /// Whether `n` reads no variable: it evaluates the same on every account.
    fn is_constant(&self, n: &IdedExpr) -> bool {
        match &n.expr {
            Expr::Literal(_) => true,
            Expr::Ident(_) | Expr::Struct(_) | Expr::Comprehension(_) | Expr::Unspecified => false,
            Expr::Call(c) if is_macro(c) => false,
            _ => crate::parse::children(n).into_iter().all(|c| self.is_constant(c)),
        }
    }

    /// The smallest failing part of a constant `n` that fails, for the error.
    fn innermost_failure(&self, n: &IdedExpr) -> Failure {
        for child in crate::parse::children(n) {
            if !matches!(child.expr, Expr::Literal(_)) && runtime::evaluate_constant(child).is_err() {
                return self.innermost_failure(child);
            }
        }
        let error = match runtime::evaluate_constant(n) {
            Err(e) => e,
            Ok(_) => "evaluation failed".into(),
        };
        match &n.expr {
            Expr::Call(c) if !is_operator(c) => {
                let name = c.func_name.as_str();
                match c.args.as_slice() {
                    [arg] if c.target.is_none() => (self.at(arg), explain(name, arg, &error)),
                    _ => (self.name_at(n, name), format!("{name}() always fails here: {error}")),
                }
            }
            _ => (self.at(n), format!("this always fails: {error}")),
        }
    }
}

/// A name or literal of the source as a message repeats it: at most 64
/// characters (an expression may be 4,096), so errors stay small.
fn short(s: &str) -> String {
    const MAX: usize = 64;
    let n = s.chars().count();
    if n <= MAX { s.to_owned() } else { format!("{}… ({n} characters)", s.chars().take(MAX).collect::<String>()) }
}

/// Why a constant argument of `function` makes it fail, from cel's `error`.
fn explain(function: &str, arg: &IdedExpr, error: &str) -> String {
    let value = match &arg.expr {
        Expr::Literal(LiteralValue::String(s)) => format!(" {:?}", short(s.inner())),
        Expr::Literal(LiteralValue::Int(i)) => format!(" {}", i.inner()),
        Expr::Literal(LiteralValue::UInt(u)) => format!(" {}u", u.inner()),
        Expr::Literal(LiteralValue::Double(d)) => format!(" {:?}", d.inner()),
        _ => String::new(),
    };
    let error = error.strip_prefix(&format!("{function}(): ")).unwrap_or(error);
    let error = error.strip_prefix("timezone(): ").unwrap_or(error);
    match function {
        // cel shows the parser's (nom's) state, not the mistake.
        "duration" if error.starts_with("Parsing Error") => format!(
            "invalid duration{value}: write a number and a unit, h, m, s, ms, us or ns, as in '90m' \
             (there is no unit for days: 30 days is '720h')"
        ),
        "duration" => format!("invalid duration{value}: {error}"),
        "timestamp" if matches!(arg.expr, Expr::Literal(LiteralValue::String(_))) => {
            format!("invalid timestamp{value}: write RFC 3339, as in '2027-01-01T00:00:00Z' ({error})")
        }
        // The regex crate's message ends with the mistake: "… error: unclosed group".
        "matches" => format!("invalid pattern{value}: {}", error.rsplit("error: ").next().unwrap_or(error)),
        f if f.starts_with("get") => {
            format!(
                "invalid time zone{value}: {error}; write an IANA name, as in 'Asia/Tokyo', or an offset, as in '+09:00'"
            )
        }
        f => format!("invalid argument{value} of {f}(): {error}"),
    }
}

fn literal(value: LiteralValue) -> IdedExpr {
    IdedExpr { id: 0, expr: Expr::Literal(value) }
}
