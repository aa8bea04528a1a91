//! Checks a parsed expression against a [`Schema`] and the functions the
//! interpreter provides, so that mistakes surface when a segment is saved
//! rather than as an evaluation error on every account.

use crate::schema::{Schema, Shape};
use crate::syntax::{Kind, MACROS, Node, SyntaxError, path};

/// How a function may be called: the number of arguments as a method
/// (`x.f(…)`, not counting `x`) and as a global function (`f(…)`); `None` if
/// it cannot be called that way, `VARIADIC` for one or more.
struct Func {
    name: &'static str,
    method: Option<usize>,
    global: Option<usize>,
}

const VARIADIC: usize = usize::MAX;

const fn f(name: &'static str, method: Option<usize>, global: Option<usize>) -> Func {
    Func { name, method, global }
}

/// Every function registered in the interpreter's context (see
/// `runtime::ROOT`); a test evaluates each to keep the two in step.
const FUNCTIONS: &[Func] = &[
    f("contains", Some(1), Some(2)),
    f("size", Some(0), Some(1)),
    f("max", None, Some(VARIADIC)),
    f("min", None, Some(VARIADIC)),
    f("startsWith", Some(1), Some(2)),
    f("endsWith", Some(1), Some(2)),
    f("matches", Some(1), Some(2)),
    f("string", Some(0), Some(1)),
    f("bytes", None, Some(1)),
    f("double", Some(0), Some(1)),
    f("int", Some(0), Some(1)),
    f("uint", Some(0), Some(1)),
    f("duration", None, Some(1)),
    f("timestamp", None, Some(1)),
    f("getFullYear", Some(0), Some(1)),
    f("getMonth", Some(0), Some(1)),
    f("getDayOfYear", Some(0), Some(1)),
    f("getDayOfMonth", Some(0), Some(1)),
    f("getDate", Some(0), Some(1)),
    f("getDayOfWeek", Some(0), Some(1)),
    f("getHours", Some(0), Some(1)),
    f("getMinutes", Some(0), Some(1)),
    f("getSeconds", Some(0), Some(1)),
    f("getMilliseconds", Some(0), Some(1)),
];

/// The names of the functions, for docs and tests.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|f| f.name)
}

fn arguments(n: usize) -> String {
    match n {
        VARIADIC => "one or more arguments".into(),
        1 => "1 argument".into(),
        n => format!("{n} arguments"),
    }
}

pub fn check(root: &Node, schema: &Schema) -> Result<(), SyntaxError> {
    Checker { schema, scope: Vec::new() }.shape(root).map(|_| ())
}

struct Checker<'s> {
    schema: &'s Schema,
    /// Variables bound by the macros around the current node, innermost last.
    scope: Vec<(String, Shape)>,
}

fn fail<T>(at: usize, message: String) -> Result<T, SyntaxError> {
    Err(SyntaxError { at, message })
}

/// "a string", "an int".
pub(crate) fn a(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {type_name}")
}

fn name_of(n: &Node) -> String {
    path(n).unwrap_or_else(|| "this value".into())
}

impl Checker<'_> {
    fn shape(&mut self, n: &Node) -> Result<Shape, SyntaxError> {
        match &n.kind {
            Kind::Ident(name) => {
                if let Some((_, s)) = self.scope.iter().rev().find(|(v, _)| v == name) {
                    return Ok(s.clone());
                }
                match self.schema.variable(name) {
                    Some(s) => Ok(s.clone()),
                    None => {
                        let known: Vec<&str> = self.schema.variable_names().collect();
                        fail(n.at, format!("unknown variable {name}; known: {}", known.join(", ")))
                    }
                }
            }
            Kind::Select { operand, field } => {
                let s = self.shape(operand)?;
                self.field(&s, operand, field, n.at)
            }
            Kind::Index { operand, index } => {
                let s = self.shape(operand)?;
                self.shape(index)?;
                match (&index.kind, &s) {
                    (Kind::Str(key), Shape::Record(_) | Shape::Map(_)) => self.field(&s, operand, key, index.at),
                    _ => Ok(Shape::Any),
                }
            }
            Kind::Call { target, name, args } => self.call(n, target.as_deref(), name, args),
            Kind::Str(_) => Ok(Shape::String),
            Kind::Literal(t) => Ok(match *t {
                "bool" => Shape::Bool,
                "int" => Shape::Int,
                "double" => Shape::Double,
                _ => Shape::Any,
            }),
            Kind::Compound(parts) => {
                for p in parts {
                    self.shape(p)?;
                }
                Ok(Shape::Any)
            }
        }
    }

    /// The shape of `field` of a value of shape `s` (which `operand` gave).
    fn field(&self, s: &Shape, operand: &Node, field: &str, at: usize) -> Result<Shape, SyntaxError> {
        match s {
            Shape::Record(fields) => match fields.get(field) {
                Some(f) => Ok(f.clone()),
                None => {
                    let known: Vec<&str> = fields.keys().map(String::as_str).collect();
                    fail(at, format!("unknown field {field} of {}; known: {}", name_of(operand), known.join(", ")))
                }
            },
            Shape::Map(values) => Ok((**values).clone()),
            Shape::List(_) => fail(at, format!("{} is a list and has no field {field}", name_of(operand))),
            other => match other.scalar_name() {
                Some(t) => fail(at, format!("{} is {} and has no field {field}", name_of(operand), a(t))),
                None => Ok(Shape::Any),
            },
        }
    }

    fn call(&mut self, n: &Node, target: Option<&Node>, name: &str, args: &[Node]) -> Result<Shape, SyntaxError> {
        if name == "has" && target.is_none() {
            return match args {
                [arg @ Node { kind: Kind::Select { operand, field }, .. }] => {
                    let s = self.shape(operand)?;
                    if let Shape::Record(_) = s {
                        self.field(&s, operand, field, arg.at)?;
                    }
                    Ok(Shape::Bool)
                }
                _ => fail(n.at, "has() takes one field selection, as in has(account.attributes.seats)".into()),
            };
        }
        if let Some((_, counts)) = MACROS.iter().find(|(m, _)| *m == name) {
            return self.comprehension(n, target, name, counts, args);
        }
        let Some(func) = FUNCTIONS.iter().find(|f| f.name == name) else {
            let known: Vec<&str> = function_names().collect();
            return fail(n.at, format!("unknown function {name}; known: {}", known.join(", ")));
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
            None if target.is_some() => fail(n.at, format!("{name}() is not a method; call it as {name}(…)")),
            None => fail(n.at, format!("{name}() is a method; call it as value.{name}(…)")),
            Some(VARIADIC) if !args.is_empty() => Ok(Shape::Any),
            Some(count) if count == args.len() => Ok(Shape::Any),
            Some(_) if name.starts_with("get") && target.is_some() && args.len() == 1 => fail(
                n.at,
                format!("{name}() takes no arguments: time zones are not supported and timestamps are read in UTC"),
            ),
            Some(count) => fail(n.at, format!("{name}() as {form} takes {}, not {}", arguments(count), args.len())),
        }
    }

    /// `list.exists(x, cond)` and the other macros cel-parser expands into
    /// comprehensions.
    fn comprehension(
        &mut self,
        n: &Node,
        target: Option<&Node>,
        name: &str,
        counts: &[usize],
        args: &[Node],
    ) -> Result<Shape, SyntaxError> {
        let usage = format!(
            "{name}() is called on a list or map with a variable name and an expression, as in account.tags.{name}(t, t == 'vip')"
        );
        let Some(target) = target else {
            return fail(n.at, usage);
        };
        if !counts.contains(&args.len()) {
            return fail(n.at, usage);
        }
        let Kind::Ident(var) = &args[0].kind else {
            return fail(args[0].at, format!("the first argument of {name}() must be a variable name"));
        };
        let element = match self.shape(target)? {
            Shape::List(e) => *e,
            // Iterating a map gives its keys.
            Shape::Map(_) | Shape::Record(_) => Shape::String,
            other => match other.scalar_name() {
                // cel-interpreter 0.10 panics when a macro iterates a scalar.
                Some(t) => {
                    return fail(n.at, format!("{name}() needs a list or a map, but {} is {}", name_of(target), a(t)));
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
}
