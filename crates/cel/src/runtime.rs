//! The interpreter's environment, evaluation, and readable evaluation errors.

use std::any::Any;
use std::sync::{Arc, LazyLock};

use cel::common::types::{CelBool, DYN_TYPE, LIST_TYPE};
use cel::common::value::CowVal;
use cel::{Context, DeclarationError, Env, ExecutionError, IdedExpr, Value};
use chrono::SecondsFormat;

use crate::facts::{Facts, Resolver};

/// cel's standard library and macros, without the optional syntax (`a.?b`),
/// plus `list.contains(v)`: what expressions are compiled and evaluated with.
static ENV: LazyLock<Result<Arc<Env>, DeclarationError>> = LazyLock::new(|| {
    let mut env = Env::stdlib().with_optional_support(false);
    // cel-interpreter 0.10 had it and docs/cel.md promises it; cel 0.15's
    // standard library has `contains` for strings only.
    env.add_member_overload("contains", "list_contains_dyn", LIST_TYPE, vec![DYN_TYPE], list_contains)?;
    Ok(Arc::new(env))
});

pub(crate) fn env() -> Result<&'static Env, String> {
    match &*ENV {
        Ok(env) => Ok(env),
        Err(e) => Err(format!("the interpreter could not be set up: {e}")),
    }
}

/// `list.contains(v)`: `v in list`.
fn list_contains<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [list, value] = args.as_slice() else {
        return Err(ExecutionError::invalid_argument_count(2, args.len()));
    };
    let Some(container) = list.as_container() else {
        return Err(ExecutionError::function_error("contains", "needs a list"));
    };
    Ok(CowVal::owned(CelBool::from(container.contains(&**value)?)))
}

/// An environment without macros, whose parser leaves `has()`, `exists()`, …
/// as the calls they are written as, to be checked as such.
pub(crate) static PLAIN: LazyLock<Env> = LazyLock::new(|| Env::default().with_optional_support(false));

/// The root scope of every evaluation: [`ENV`] plus `max()` and `min()`,
/// which cel 0.15 ships as functions but does not register.
static ROOT: LazyLock<Result<Context<'static, 'static>, String>> = LazyLock::new(|| {
    let env = match &*ENV {
        Ok(env) => Arc::clone(env),
        Err(e) => return Err(format!("the interpreter could not be set up: {e}")),
    };
    let mut ctx = Context::with_env(env);
    let setup = |e: DeclarationError| format!("the interpreter could not be set up: {e}");
    ctx.add_function("max", cel::functions::max).map_err(setup)?;
    ctx.add_function("min", cel::functions::min).map_err(setup)?;
    Ok(ctx)
});

fn root<'a>() -> Result<&'a Context<'a, 'a>, String> {
    match &*ROOT {
        Ok(ctx) => Ok(ctx),
        Err(e) => Err(e.clone()),
    }
}

/// Evaluates a compiled expression against `facts`.
pub(crate) fn evaluate(expr: &IdedExpr, facts: &Facts<'_>) -> Result<Value, String> {
    let resolver = Resolver(facts);
    let mut ctx = root()?.new_inner_scope();
    ctx.set_variable_resolver(&resolver);
    guarded(|| Value::resolve(expr, &ctx))
}

/// Evaluates an expression without variables: the compile-time check of
/// literal arguments.
pub(crate) fn evaluate_constant(expr: &IdedExpr) -> Result<Value, String> {
    let ctx = root()?;
    guarded(|| Value::resolve(expr, ctx))
}

/// No panic of the interpreter may take a worker down: one is an error like
/// any other. None is known in cel 0.15, but it still has `unwrap()`s on
/// paths our checks cannot rule out.
fn guarded(run: impl FnOnce() -> Result<Value, ExecutionError>) -> Result<Value, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(describe_error(e)),
        Err(panic) => Err(format!(
            "the interpreter cannot evaluate this expression on these values: {}",
            panic_message(panic.as_ref())
        )),
    }
}

/// The CEL name of a value's type.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "double",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::List(_) => "list",
        Value::Map(_) => "map",
        Value::Timestamp(_) => "timestamp",
        Value::Duration(_) => "duration",
        Value::Function(..) => "function",
        Value::Opaque(_) => "opaque value",
        Value::Struct(_) => "message",
    }
}

/// A value for a message: its type and, for scalars, the value.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("bool {b}"),
        Value::Int(i) => format!("int {i}"),
        Value::UInt(u) => format!("uint {u}"),
        Value::Float(d) => format!("double {d}"),
        Value::String(s) if s.chars().count() > 40 => {
            format!("string {:?}…", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("string {s:?}"),
        Value::Bytes(b) => format!("bytes of length {}", b.len()),
        Value::List(l) => format!("list of {} items", l.len()),
        Value::Map(m) => format!("map of {} entries", m.map.len()),
        Value::Timestamp(t) => format!("timestamp {}", t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        Value::Duration(d) => format!("duration {}s", d.num_seconds()),
        Value::Function(name, _) => format!("function {name}"),
        Value::Opaque(_) | Value::Struct(_) => type_name(v).into(),
    }
}

/// "a timestamp", "null": a cel type name for messages.
fn kind(type_name: &str) -> String {
    match type_name {
        "null_type" => "null".into(),
        "google.protobuf.Timestamp" => "a timestamp".into(),
        "google.protobuf.Duration" => "a duration".into(),
        other => crate::check::a(other),
    }
}

/// The verb and noun of the names cel gives arithmetic in its errors.
fn arithmetic(op: &str) -> Option<(&'static str, &'static str)> {
    Some(match op {
        "add" => ("add", "addition"),
        "sub" => ("subtract", "subtraction"),
        "mul" => ("multiply", "multiplication"),
        "div" => ("divide", "division"),
        "rem" => ("take the remainder of", "remainder"),
        _ => return None,
    })
}

/// What an operator's internal name (`_+_`) does, for messages.
fn operation(function: &str) -> Option<&'static str> {
    Some(match function {
        "_+_" => "add",
        "_-_" => "subtract",
        "_*_" => "multiply",
        "_/_" => "divide",
        "_%_" => "take the remainder of",
        "_<_" | "_<=_" | "_>_" | "_>=_" => "compare",
        "_==_" | "_!=_" => "test the equality of",
        "@in" => "test membership with",
        "_[_]" => "index",
        "_&&_" => "apply && to",
        "_||_" => "apply || to",
        "!_" => "apply ! to",
        "-_" => "negate",
        "_?_:_" => "choose with",
        _ => return None,
    })
}

/// The interpreter's error in our words. Its own messages print values with
/// Rust's `Debug` (`Null can not be compared to Timestamp(…)`) and operators
/// by their internal names (`_+_`).
pub(crate) fn describe_error(e: ExecutionError) -> String {
    use ExecutionError as E;
    match e {
        E::ValuesNotComparable(a, b) => {
            let hint = if matches!(a, Value::Null) || matches!(b, Value::Null) {
                " (a field without a value is null: test it with != null first)"
            } else {
                ""
            };
            format!("cannot compare {} with {}{hint}", describe(&a), describe(&b))
        }
        E::NoSuchKey(key) => format!("no such key {key} (test it with has() first)"),
        E::UndeclaredReference(name) => format!("undeclared reference to {name}"),
        E::UnsupportedBinaryOperator(op, a, b) => {
            let verb = arithmetic(op).map_or(op, |(verb, _)| verb);
            format!("cannot {verb} {} and {}", describe(&a), describe(&b))
        }
        E::DivisionByZero(v) => format!("division of {} by zero", describe(&v)),
        E::RemainderByZero(v) => format!("remainder of {} by zero", describe(&v)),
        E::Overflow(op, a, b) => {
            let noun = arithmetic(op).map_or(op, |(_, noun)| noun);
            format!("overflow in the {noun} of {} and {}", describe(&a), describe(&b))
        }
        E::InvalidArgumentCount { expected, actual } => {
            format!("wrong number of arguments: expected {expected}, got {actual}")
        }
        E::UnexpectedType { got, want } => format!("expected {}, got {}", kind(&want), kind(&got)),
        E::NoSuchOverload(o) => {
            let types = o.argument_types();
            let hint = if types.iter().any(|t| t == "null_type") {
                " (a field without a value is null: test it with != null first)"
            } else {
                ""
            };
            let kinds: Vec<String> = types.iter().map(|t| kind(t)).collect();
            match (o.function(), operation(o.function()), kinds.as_slice()) {
                ("_<_" | "_<=_" | "_>_" | "_>=_", _, [left, right]) => {
                    format!("cannot compare {left} with {right}{hint}")
                }
                ("_[_]", _, [left, right]) => format!("cannot index {left} with {right}{hint}"),
                ("@in", _, [left, right]) => format!("cannot test whether {left} is in {right}{hint}"),
                (_, Some(op), [one]) => format!("cannot {op} {one}{hint}"),
                (_, Some(op), [left, right, ..]) => format!("cannot {op} {left} and {right}{hint}"),
                (f, None, [receiver, args @ ..]) if o.is_member_function() => {
                    format!("{f}() cannot be called on {receiver} with ({}){hint}", args.join(", "))
                }
                (f, _, kinds) => format!("{f}() cannot take ({}){hint}", kinds.join(", ")),
            }
        }
        E::FunctionError { function, message } => {
            // One line for a field violation or a log: the regex crate's
            // messages span several.
            let message: Vec<&str> = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            format!("{function}(): {}", message.join(" "))
        }
        E::UnsupportedIndex(v, i) => format!("cannot index {} with {}", describe(&v), describe(&i)),
        E::UnsupportedKeyType(v) => format!("{} cannot be a map key", describe(&v)),
        E::IndexOutOfBounds(i) => format!("index {} is out of bounds", describe(&i)),
        E::DuplicateKey(k) => format!("map literal repeats the key {}", describe(&k)),
        other => {
            let text = other.to_string();
            let mut chars = text.chars();
            match chars.next() {
                Some(c) => c.to_lowercase().chain(chars).collect(),
                None => "evaluation failed".into(),
            }
        }
    }
}

pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_of_the_interpreter_is_an_error() {
        let result = guarded(|| panic!("boom"));
        assert_eq!(result, Err("the interpreter cannot evaluate this expression on these values: boom".into()));
    }
}
