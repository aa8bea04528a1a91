//! The interpreter's function context and readable evaluation errors.

use std::any::Any;
use std::sync::LazyLock;

use cel_interpreter::extractors::This;
use cel_interpreter::{Context, ExecutionError, FunctionContext, Value};
use chrono::SecondsFormat;

/// The built-in functions, shared by every evaluation: each evaluation adds
/// its variables to a child scope of it.
pub(crate) static ROOT: LazyLock<Context<'static>> = LazyLock::new(|| {
    let mut ctx = Context::default();
    ctx.add_function("size", size);
    ctx
});

/// `size()` as CEL defines it: a string's size is its number of code points.
/// cel-interpreter 0.10 counts UTF-8 bytes, which makes `size('製造業')` 9.
fn size(ftx: &FunctionContext, This(this): This<Value>) -> Result<i64, ExecutionError> {
    let n = match &this {
        Value::String(s) => s.chars().count(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.map.len(),
        Value::Bytes(b) => b.len(),
        other => return Err(ftx.error(format!("cannot take the size of {}", describe(other)))),
    };
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
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
    }
}

/// The interpreter's error in our words. Its own messages print values with
/// Rust's `Debug` (`Null can not be compared to Timestamp(…)`).
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
        E::UnsupportedBinaryOperator(op, a, b) => format!("cannot {op} {} and {}", describe(&a), describe(&b)),
        E::UnsupportedUnaryOperator(op, v) => format!("cannot apply {op} to {}", describe(&v)),
        E::DivisionByZero(v) => format!("division of {} by zero", describe(&v)),
        E::RemainderByZero(v) => format!("remainder of {} by zero", describe(&v)),
        E::Overflow(op, a, b) => format!("overflow in {op} of {} and {}", describe(&a), describe(&b)),
        E::InvalidArgumentCount { expected, actual } => {
            format!("wrong number of arguments: expected {expected}, got {actual}")
        }
        E::UnexpectedType { got, want } => {
            let want = match want.as_str() {
                "Arc<String>" => "string",
                "i64" => "int",
                "u64" => "uint",
                "f64" => "double",
                "Arc<Vec<u8>>" => "bytes",
                "Arc<Vec<Value>>" => "list",
                "chrono::DateTime<chrono::FixedOffset>" => "timestamp",
                "chrono::Duration" => "duration",
                other => other,
            };
            format!("expected a {want}, got {got}")
        }
        E::FunctionError { function, message } => format!("{function}(): {message}"),
        E::UnsupportedMapIndex(v) | E::UnsupportedListIndex(v) => format!("cannot index with {}", describe(&v)),
        E::UnsupportedIndex(v, i) => format!("cannot index {} with {}", describe(&v), describe(&i)),
        E::UnsupportedKeyType(v) => format!("{} cannot be a map key", describe(&v)),
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
