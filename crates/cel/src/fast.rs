//! The fast path: the common subset of CEL compiled to a tree of typed
//! nodes that reads [`Facts`] by slot, beside the interpreter.
//!
//! Playbook and segment conditions are mostly comparisons of fields with
//! literals joined by `&&` and `||`. The interpreter evaluates them through
//! its dynamic values (a map lookup per selection, a boxed value per
//! operand); these nodes read a fixed field by its slot index and compare
//! plain numbers and borrowed strings, with no allocation.
//!
//! The fast path never decides anything the interpreter would decide
//! differently: it handles the operand types whose semantics are plain
//! (same-type comparisons; an int with a double when the int is exact as a
//! double; `== null`), and anything else — a missing key, a `null`
//! compared with `<`, an overflow, a division by zero, a NaN, a type it
//! does not know — is a [`Bail`], after which the interpreter evaluates
//! the whole expression (and gives its error, or its absorbed `&&`/`||`
//! result). An expression with a construct outside the subset (a function
//! call, a macro, an index, a map literal) has no fast form at all. A
//! differential test checks both agree on generated expressions and facts.

use cel::IdedExpr;
use cel::common::ast::{Expr, LiteralValue};
use chrono::{DateTime, NaiveTime, Utc};

use crate::facts::{Fact, Facts, SLOTS, Slot, slot};

/// Ints beyond ±2^53 are not all exact as doubles.
const EXACT_AS_DOUBLE: i64 = 1 << 53;

/// The interpreter must decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bail;

type R<'a> = Result<V<'a>, Bail>;

/// A value during fast evaluation, borrowing from the facts or the tree.
#[derive(Debug, Clone, Copy)]
enum V<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(&'a str),
    Time(DateTime<Utc>),
    /// A list read from the facts.
    Facts(&'a [Fact]),
    /// A list of strings read from the facts (`account.tags`).
    Texts(&'a [String]),
    /// A list literal of the expression.
    Nodes(&'a [Node]),
    /// A map: only ever handed to the interpreter.
    Map,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

/// A literal a specialised node compares with.
#[derive(Debug, Clone)]
pub(crate) enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
}

impl Lit {
    fn value(&self) -> V<'_> {
        match self {
            Lit::Null => V::Null,
            Lit::Bool(b) => V::Bool(*b),
            Lit::Int(i) => V::Int(*i),
            Lit::Double(d) => V::Double(*d),
            Lit::Str(s) => V::Str(s),
        }
    }

    fn of(n: Node) -> Result<Lit, Node> {
        Ok(match n {
            Node::Null => Lit::Null,
            Node::Bool(b) => Lit::Bool(b),
            Node::Int(i) => Lit::Int(i),
            Node::Double(d) => Lit::Double(d),
            Node::Str(s) => Lit::Str(s),
            other => return Err(other),
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
    /// A fixed field, and the keys below it (`health.measures` then
    /// `events_30d`, `value`).
    Slot(usize, Vec<String>),
    /// A variable without a slot and the keys below it.
    Named(String, Vec<String>),
    List(Vec<Node>),
    /// `a && b && …`, flattened: left to right, the first false decides.
    And(Vec<Node>),
    /// `a || b || …`, flattened: left to right, the first true decides.
    Or(Vec<Node>),
    /// The most common shapes, read straight from a slot's fact: a fixed
    /// field compared with a literal, tested against a list of string
    /// literals, or a string literal tested against a list field. Each
    /// falls back to the general comparison on any other value.
    SlotCmp(Cmp, usize, Lit),
    SlotInStrs(usize, Vec<String>),
    StrInSlot(String, usize),
    Not(Box<Node>),
    Neg(Box<Node>),
    Cmp(Cmp, Box<Node>, Box<Node>),
    Arith(Arith, Box<Node>, Box<Node>),
    In(Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
}

/// The fast form of an expression (as the interpreter runs it: macros
/// expanded), if all of it is in the subset.
pub(crate) fn compile(e: &IdedExpr) -> Option<Node> {
    generic(e).map(specialise)
}

/// The specialised form of a node, when it has one.
fn specialise(n: Node) -> Node {
    match n {
        Node::And(items) => Node::And(flatten(items, true)),
        Node::Or(items) => Node::Or(flatten(items, false)),
        // `x op literal` and `literal op x` (the operator mirrored).
        Node::Cmp(op, l, r) => match (*l, *r) {
            (Node::Slot(i, keys), lit) if keys.is_empty() => match Lit::of(lit) {
                Ok(lit) => Node::SlotCmp(op, i, lit),
                Err(lit) => Node::Cmp(op, Box::new(Node::Slot(i, keys)), Box::new(lit)),
            },
            (lit, Node::Slot(i, keys)) if keys.is_empty() => match Lit::of(lit) {
                Ok(lit) => Node::SlotCmp(op.mirrored(), i, lit),
                Err(lit) => Node::Cmp(op, Box::new(lit), Box::new(Node::Slot(i, keys))),
            },
            (l, r) => Node::Cmp(op, Box::new(l), Box::new(r)),
        },
        Node::In(x, list) => match (*x, *list) {
            (Node::Slot(i, keys), Node::List(items))
                if keys.is_empty() && items.iter().all(|n| matches!(n, Node::Str(_))) =>
            {
                Node::SlotInStrs(
                    i,
                    items.into_iter().filter_map(|n| if let Node::Str(s) = n { Some(s) } else { None }).collect(),
                )
            }
            (Node::Str(s), Node::Slot(i, keys)) if keys.is_empty() => Node::StrInSlot(s, i),
            (x, list) => Node::In(Box::new(x), Box::new(list)),
        },
        // `-3.0` is parsed as a negation of `3.0`.
        Node::Neg(x) => match *x {
            Node::Int(i) if i != i64::MIN => Node::Int(-i),
            Node::Double(d) => Node::Double(-d),
            x => Node::Neg(Box::new(x)),
        },
        other => other,
    }
}

/// `a && (b && c)` as `[a, b, c]`: the same result, as `&&` is associative
/// (so is `||`) and the fast path leaves every error to the interpreter.
fn flatten(items: Vec<Node>, and: bool) -> Vec<Node> {
    let mut out = Vec::with_capacity(items.len());
    for n in items {
        match n {
            Node::And(inner) if and => out.extend(inner),
            Node::Or(inner) if !and => out.extend(inner),
            n => out.push(n),
        }
    }
    out
}

fn generic(e: &IdedExpr) -> Option<Node> {
    let b = |e: &IdedExpr| compile(e).map(Box::new);
    let v = |e: &IdedExpr| compile(e);
    Some(match &e.expr {
        Expr::Literal(l) => match l {
            LiteralValue::Null => Node::Null,
            LiteralValue::Boolean(v) => Node::Bool(*v.inner()),
            LiteralValue::Int(v) => Node::Int(*v.inner()),
            LiteralValue::Double(v) => Node::Double(*v.inner()),
            LiteralValue::String(v) => Node::Str(v.inner().to_string()),
            LiteralValue::UInt(_) | LiteralValue::Bytes(_) => return None,
        },
        Expr::Ident(_) | Expr::Select(_) => path(e)?,
        Expr::List(l) if l.optional_indices.is_empty() => {
            Node::List(l.elements.iter().map(compile).collect::<Option<_>>()?)
        }
        Expr::Call(c) if c.target.is_none() => match (c.func_name.as_str(), c.args.as_slice()) {
            ("_&&_", [l, r]) => Node::And(vec![v(l)?, v(r)?]),
            ("_||_", [l, r]) => Node::Or(vec![v(l)?, v(r)?]),
            ("!_", [x]) => Node::Not(b(x)?),
            ("-_", [x]) => Node::Neg(b(x)?),
            ("_?_:_", [c, t, f]) => Node::Cond(b(c)?, b(t)?, b(f)?),
            ("@in", [x, list]) => Node::In(b(x)?, b(list)?),
            (op, [l, r]) => {
                let cmp = match op {
                    "_==_" => Some(Cmp::Eq),
                    "_!=_" => Some(Cmp::Ne),
                    "_<_" => Some(Cmp::Lt),
                    "_<=_" => Some(Cmp::Le),
                    "_>_" => Some(Cmp::Gt),
                    "_>=_" => Some(Cmp::Ge),
                    _ => None,
                };
                if let Some(cmp) = cmp {
                    Node::Cmp(cmp, b(l)?, b(r)?)
                } else {
                    let op = match op {
                        "_+_" => Arith::Add,
                        "_-_" => Arith::Sub,
                        "_*_" => Arith::Mul,
                        "_/_" => Arith::Div,
                        _ => return None,
                    };
                    Node::Arith(op, b(l)?, b(r)?)
                }
            }
            _ => return None,
        },
        _ => return None,
    })
}

/// `account.arr`, `health.measures.events_30d.value`, `now`: the longest
/// slot the chain starts with, then its keys.
fn path(e: &IdedExpr) -> Option<Node> {
    let mut keys = Vec::new();
    let mut at = e;
    let root = loop {
        match &at.expr {
            Expr::Ident(name) => break name,
            // `has(x.f)` is a select with `test`: not in the subset.
            Expr::Select(s) if !s.test => {
                keys.push(s.field.clone());
                at = &s.operand;
            }
            _ => return None,
        }
    };
    keys.reverse();
    for n in (0..=keys.len()).rev() {
        let mut p = root.clone();
        for k in &keys[..n] {
            p.push('.');
            p.push_str(k);
        }
        if let Some(i) = slot(&p) {
            return Some(Node::Slot(i, keys[n..].to_vec()));
        }
    }
    Some(Node::Named(root.clone(), keys))
}

/// A condition compiled for evaluation: the connectives, and below them
/// typed operations — a fixed field compared with a literal of a known type,
/// `== null`, a field in a list of strings, a string in a list field, and
/// comparisons of numeric operands (fields, measure fields with the keys
/// resolved now, payload fields, literals, arithmetic). [`run`] walks it
/// with one `match` per operation: no call through a pointer, no value
/// built. Any other node, and any value of another type than the
/// operation's, is evaluated as the tree evaluates it ([`boolean`]), so
/// the answers are the tree's.
#[derive(Debug, Clone)]
pub(crate) enum Compiled {
    And(Vec<Compiled>),
    Or(Vec<Compiled>),
    Not(Box<Compiled>),
    /// `slot op literal` for a double literal (not NaN).
    Double(Cmp, usize, f64),
    Int(Cmp, usize, i64),
    /// `slot == literal` (or `!=` when the flag is set).
    Str(bool, usize, String),
    /// `slot == null` (or `!=` when the flag is clear).
    Null(bool, usize, Node),
    InStrs(usize, Vec<String>, Node),
    StrIn(String, usize, Node),
    Num(Cmp, Operand, Operand, Node),
    Tree(Node),
}

/// A numeric operand of [`Compiled::Num`].
#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Int(i64),
    Double(f64),
    /// A fixed field and the keys below it; for a measure field
    /// (`health.measures.<id>.<field>`), which of its three fields.
    Field(usize, Vec<String>, Option<usize>),
    Arith(Arith, Box<Operand>, Box<Operand>),
}

pub(crate) fn lower(n: Node) -> Compiled {
    match n {
        Node::And(items) => Compiled::And(items.into_iter().map(lower).collect()),
        Node::Or(items) => Compiled::Or(items.into_iter().map(lower).collect()),
        Node::Not(x) => Compiled::Not(Box::new(lower(*x))),
        Node::SlotCmp(op, i, Lit::Double(b)) if !b.is_nan() => Compiled::Double(op, i, b),
        Node::SlotCmp(op, i, Lit::Int(b)) => Compiled::Int(op, i, b),
        Node::SlotCmp(op @ (Cmp::Eq | Cmp::Ne), i, Lit::Str(b)) => Compiled::Str(op == Cmp::Ne, i, b),
        Node::SlotCmp(op @ (Cmp::Eq | Cmp::Ne), i, Lit::Null) => {
            Compiled::Null(op == Cmp::Eq, i, Node::SlotCmp(op, i, Lit::Null))
        }
        Node::SlotInStrs(i, items) => Compiled::InStrs(i, items.clone(), Node::SlotInStrs(i, items)),
        Node::StrInSlot(s, i) => Compiled::StrIn(s.clone(), i, Node::StrInSlot(s, i)),
        Node::Cmp(op, l, r) => match (operand(&l), operand(&r)) {
            // Numbers on both sides: read without the tree, and the tree
            // decides whatever is not a plain number.
            (Some(left), Some(right)) => Compiled::Num(op, left, right, Node::Cmp(op, l, r)),
            _ => Compiled::Tree(Node::Cmp(op, l, r)),
        },
        other => Compiled::Tree(other),
    }
}

/// The operand of a numeric comparison: a literal, a fixed field (with the
/// keys of a measure resolved now), or arithmetic on such operands.
fn operand(n: &Node) -> Option<Operand> {
    Some(match n {
        Node::Int(i) => Operand::Int(*i),
        Node::Double(d) => Operand::Double(*d),
        Node::Slot(i, keys) => {
            let measure_field = match keys.as_slice() {
                [_, field] => ["value", "previous_value", "points"].iter().position(|x| x == field),
                _ => None,
            };
            Operand::Field(*i, keys.clone(), measure_field)
        }
        Node::Arith(op, l, r) => Operand::Arith(*op, Box::new(operand(l)?), Box::new(operand(r)?)),
        _ => return None,
    })
}

/// The value of a compiled condition, or [`Bail`] when the interpreter
/// must decide.
pub(crate) fn run(c: &Compiled, f: &Facts<'_>) -> Result<bool, Bail> {
    match c {
        Compiled::And(items) => {
            for c in items {
                if !run(c, f)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Compiled::Or(items) => {
            for c in items {
                if run(c, f)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Compiled::Not(x) => Ok(!run(x, f)?),
        Compiled::Double(op, i, b) => match &f.slots[*i] {
            Slot::Fact(Fact::Double(a)) if !a.is_nan() => Ok(holds(*op, *a, *b)),
            _ => compare(*op, read(f, *i, &[])?, V::Double(*b)),
        },
        Compiled::Int(op, i, b) => match &f.slots[*i] {
            Slot::Fact(Fact::Int(a)) => Ok(holds(*op, *a, *b)),
            _ => compare(*op, read(f, *i, &[])?, V::Int(*b)),
        },
        Compiled::Str(ne, i, b) => match &f.slots[*i] {
            Slot::Text(t) => Ok(same(t, b) != *ne),
            _ => compare(if *ne { Cmp::Ne } else { Cmp::Eq }, read(f, *i, &[])?, V::Str(b)),
        },
        Compiled::Null(eq, i, node) => match &f.slots[*i] {
            Slot::Fact(Fact::Null) => Ok(*eq),
            Slot::Fact(
                Fact::Bool(_) | Fact::Int(_) | Fact::Double(_) | Fact::String(_) | Fact::Date(_) | Fact::Timestamp(_),
            )
            | Slot::Text(_) => Ok(!*eq),
            _ => boolean(node, f),
        },
        Compiled::InStrs(i, items, node) => match &f.slots[*i] {
            Slot::Text(t) => Ok(items.iter().any(|x| same(x, t))),
            _ => boolean(node, f),
        },
        Compiled::StrIn(s, i, node) => match &f.slots[*i] {
            Slot::Texts(items) => Ok(items.iter().any(|x| same(x, s))),
            _ => boolean(node, f),
        },
        Compiled::Num(op, l, r, node) => num_cmp(*op, num(l, f), num(r, f), node, f),
        Compiled::Tree(node) => boolean(node, f),
    }
}

/// A fixed field's value when it is a plain number (an int, or a double
/// not NaN): what [`Compiled::Double`] and [`Compiled::Int`] compare
/// without the tree.
#[inline]
pub(crate) fn plain(f: &Facts<'_>, slot: usize) -> Option<Num> {
    match &f.slots[slot] {
        Slot::Fact(Fact::Double(a)) if !a.is_nan() => Some(Num::Double(*a)),
        Slot::Fact(Fact::Int(a)) => Some(Num::Int(*a)),
        _ => None,
    }
}

/// `l op r` for the values of two numeric operands ([`num`]); `node`, the
/// comparison as a tree, decides when either is not a plain number.
#[inline]
pub(crate) fn num_cmp(op: Cmp, l: Option<Num>, r: Option<Num>, node: &Node, f: &Facts<'_>) -> Result<bool, Bail> {
    match (l, r) {
        (Some(Num::Double(a)), Some(Num::Double(b))) => Ok(holds(op, a, b)),
        (Some(Num::Int(a)), Some(Num::Int(b))) => Ok(holds(op, a, b)),
        (Some(a), Some(b)) => compare(op, a.value(), b.value()),
        _ => boolean(node, f),
    }
}

/// `a op b` for two plain numbers of one type (doubles not NaN).
#[inline]
fn holds<T: PartialOrd>(op: Cmp, a: T, b: T) -> bool {
    match op {
        Cmp::Eq => a == b,
        Cmp::Ne => a != b,
        Cmp::Lt => a < b,
        Cmp::Le => a <= b,
        Cmp::Gt => a > b,
        Cmp::Ge => a >= b,
    }
}

/// A number during compiled evaluation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    Int(i64),
    Double(f64),
}

impl Num {
    fn value(self) -> V<'static> {
        match self {
            Num::Int(i) => V::Int(i),
            Num::Double(d) => V::Double(d),
        }
    }
}

/// An operand's value: `None` when it is not a plain number (or the
/// arithmetic would overflow, divide by zero or give a NaN), and the tree
/// must decide.
pub(crate) fn num(o: &Operand, f: &Facts<'_>) -> Option<Num> {
    match o {
        Operand::Int(i) => Some(Num::Int(*i)),
        Operand::Double(d) => Some(Num::Double(*d)),
        Operand::Field(i, keys, measure_field) => {
            let v = match (&f.slots[*i], measure_field) {
                (Slot::Measures(m), Some(at)) => {
                    let reading = measure(m, &keys[0]).ok()?;
                    let x = [reading.value, reading.previous_value, reading.points][*at];
                    return x.filter(|x| !x.is_nan()).map(Num::Double);
                }
                (Slot::Fact(Fact::Double(d)), _) if keys.is_empty() => return (!d.is_nan()).then_some(Num::Double(*d)),
                (Slot::Fact(Fact::Int(i)), _) if keys.is_empty() => return Some(Num::Int(*i)),
                _ => read(f, *i, keys).ok()?,
            };
            match v {
                V::Int(i) => Some(Num::Int(i)),
                V::Double(d) if !d.is_nan() => Some(Num::Double(d)),
                _ => None,
            }
        }
        Operand::Arith(op, l, r) => match arith(*op, num(l, f)?.value(), num(r, f)?.value()).ok()? {
            V::Int(i) => Some(Num::Int(i)),
            V::Double(d) => Some(Num::Double(d)),
            _ => None,
        },
    }
}

/// The expression's value by the tree, or [`Bail`] when the interpreter
/// must decide (the differential test checks the compiled form against it).
#[cfg(test)]
pub(crate) fn evaluate_bool(n: &Node, f: &Facts<'_>) -> Result<bool, Bail> {
    boolean(n, f)
}

/// A node that must give a bool, evaluated without going through [`V`]
/// where its shape allows: the connectives and the specialised comparisons.
fn boolean(n: &Node, f: &Facts<'_>) -> Result<bool, Bail> {
    match n {
        Node::And(items) => {
            for n in items {
                if !boolean(n, f)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Node::Or(items) => {
            for n in items {
                if boolean(n, f)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Node::Not(x) => Ok(!boolean(x, f)?),
        Node::Bool(b) => Ok(*b),
        Node::SlotCmp(op, i, lit) => match (read(f, *i, &[])?, lit) {
            (V::Int(a), Lit::Int(b)) => Ok(op.holds(a.cmp(b))),
            (V::Double(a), Lit::Double(b)) if !a.is_nan() && !b.is_nan() => Ok(op.holds(a.partial_cmp(b).ok_or(Bail)?)),
            (V::Str(a), Lit::Str(b)) if matches!(op, Cmp::Eq) => Ok(same(a, b)),
            (V::Str(a), Lit::Str(b)) if matches!(op, Cmp::Ne) => Ok(!same(a, b)),
            (v, lit) => compare(*op, v, lit.value()),
        },
        Node::SlotInStrs(i, items) => match read(f, *i, &[])? {
            V::Str(s) => Ok(items.iter().any(|x| same(x, s))),
            x => {
                let mut found = false;
                for item in items {
                    found |= compare(Cmp::Eq, x, V::Str(item))?;
                }
                Ok(found)
            }
        },
        Node::StrInSlot(s, i) => contains(read(f, *i, &[])?, V::Str(s), f),
        Node::Cmp(op, l, r) => compare(*op, eval(l, f)?, eval(r, f)?),
        Node::In(x, list) => contains(eval(list, f)?, eval(x, f)?, f),
        other => truth(eval(other, f)?),
    }
}

/// `x in list`.
fn contains(list: V<'_>, x: V<'_>, f: &Facts<'_>) -> Result<bool, Bail> {
    let mut found = false;
    match list {
        V::Texts(items) => {
            for item in items {
                found |= match x {
                    V::Str(s) => same(item, s),
                    _ => compare(Cmp::Eq, x, V::Str(item))?,
                };
            }
        }
        V::Facts(items) => {
            for item in items {
                found |= match (x, item) {
                    (V::Str(s), Fact::String(t)) => same(s, t),
                    _ => compare(Cmp::Eq, x, value(item))?,
                };
            }
        }
        V::Nodes(items) => {
            for item in items {
                found |= compare(Cmp::Eq, x, eval(item, f)?)?;
            }
        }
        _ => return Err(Bail),
    }
    Ok(found)
}

fn eval<'a>(n: &'a Node, f: &'a Facts<'_>) -> R<'a> {
    Ok(match n {
        Node::Null => V::Null,
        Node::Bool(b) => V::Bool(*b),
        Node::Int(i) => V::Int(*i),
        Node::Double(d) => V::Double(*d),
        Node::Str(s) => V::Str(s),
        Node::Slot(i, keys) => read(f, *i, keys)?,
        Node::Named(root, keys) => value(walk(f.named(root).ok_or(Bail)?, keys)?),
        Node::List(items) => V::Nodes(items),
        Node::And(_)
        | Node::Or(_)
        | Node::Not(_)
        | Node::SlotCmp(..)
        | Node::SlotInStrs(..)
        | Node::StrInSlot(..)
        | Node::Cmp(..)
        | Node::In(..) => V::Bool(boolean(n, f)?),
        Node::Neg(x) => match eval(x, f)? {
            V::Int(i) => V::Int(i.checked_neg().ok_or(Bail)?),
            V::Double(d) => V::Double(-d),
            _ => return Err(Bail),
        },
        Node::Cond(c, t, e) => {
            if boolean(c, f)? {
                eval(t, f)?
            } else {
                eval(e, f)?
            }
        }
        Node::Arith(op, l, r) => arith(*op, eval(l, f)?, eval(r, f)?)?,
    })
}

/// The value of fixed field `i` and the keys below it: from its slot, or,
/// when the slot is not set, from the variables set by name.
fn read<'a>(f: &'a Facts<'_>, i: usize, keys: &[String]) -> R<'a> {
    match &f.slots[i] {
        Slot::Fact(fact) => Ok(value(walk(fact, keys)?)),
        Slot::Text(s) if keys.is_empty() => Ok(V::Str(s)),
        Slot::Texts(items) if keys.is_empty() => Ok(V::Texts(items)),
        Slot::Text(_) | Slot::Texts(_) => Err(Bail),
        Slot::Measures(m) => match keys {
            [] => Ok(V::Map),
            [id] => measure(m, id).map(|_| V::Map),
            [id, field] => {
                let reading = measure(m, id)?;
                Ok(reading.field(field).ok_or(Bail)?.map_or(V::Null, V::Double))
            }
            _ => Err(Bail),
        },
        Slot::Lazy(l) => Ok(value(walk(l.get(), keys)?)),
        Slot::Record(r) => match keys.split_first() {
            None => Ok(value(r.whole())),
            Some((k, rest)) => Ok(value(walk(r.field(k).ok_or(Bail)?, rest)?)),
        },
        Slot::Unset => {
            let mut steps = SLOTS[i].split('.');
            let mut at = f.named(steps.next().ok_or(Bail)?).ok_or(Bail)?;
            for s in steps {
                at = key(at, s)?;
            }
            Ok(value(walk(at, keys)?))
        }
    }
}

fn key<'a>(fact: &'a Fact, k: &str) -> Result<&'a Fact, Bail> {
    match fact {
        // The maps read here are small (a payload's fields, a measure's):
        // a scan that rejects most keys by their length beats the tree's
        // ordered search, which compares bytes at every step.
        Fact::Map(m) if m.len() <= 32 => m.iter().find(|(name, _)| same(name, k)).map(|(_, v)| v).ok_or(Bail),
        Fact::Map(m) => m.get(k).ok_or(Bail),
        _ => Err(Bail),
    }
}

/// A measure's entry, scanned as [`key`] scans a small map.
fn measure<'a>(
    m: &'a std::collections::BTreeMap<String, crate::facts::MeasureFacts>,
    id: &str,
) -> Result<&'a crate::facts::MeasureFacts, Bail> {
    if m.len() <= 32 { m.iter().find(|(k, _)| same(k, id)).map(|(_, v)| v) } else { m.get(id) }.ok_or(Bail)
}

/// String equality without a call to `memcmp` for the short strings
/// conditions compare (bands, stages, keys): lengths first, then up to 16
/// bytes as two overlapping words.
#[inline]
pub(crate) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    let word = |x: &[u8], at: usize| u64::from_le_bytes(x[at..at + 8].try_into().unwrap_or([0; 8]));
    let half = |x: &[u8], at: usize| u32::from_le_bytes(x[at..at + 4].try_into().unwrap_or([0; 4]));
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

fn walk<'a>(mut fact: &'a Fact, keys: &[String]) -> Result<&'a Fact, Bail> {
    for k in keys {
        fact = key(fact, k)?;
    }
    Ok(fact)
}

fn value(fact: &Fact) -> V<'_> {
    match fact {
        Fact::Null => V::Null,
        Fact::Bool(b) => V::Bool(*b),
        Fact::Int(i) => V::Int(*i),
        Fact::Double(d) => V::Double(*d),
        Fact::String(s) => V::Str(s),
        Fact::Date(d) => V::Time(d.and_time(NaiveTime::MIN).and_utc()),
        Fact::Timestamp(t) => V::Time(*t),
        Fact::List(items) => V::Facts(items),
        Fact::Map(_) => V::Map,
    }
}

fn truth(v: V<'_>) -> Result<bool, Bail> {
    match v {
        V::Bool(b) => Ok(b),
        _ => Err(Bail),
    }
}

/// An int as an exact double, or [`Bail`].
fn exact(i: i64) -> Result<f64, Bail> {
    if (-EXACT_AS_DOUBLE..=EXACT_AS_DOUBLE).contains(&i) { Ok(i as f64) } else { Err(Bail) }
}

fn number(d: f64) -> Result<f64, Bail> {
    if d.is_nan() { Err(Bail) } else { Ok(d) }
}

fn compare(op: Cmp, l: V<'_>, r: V<'_>) -> Result<bool, Bail> {
    use std::cmp::Ordering;
    let ord: Ordering = match (l, r) {
        (V::Int(a), V::Int(b)) => a.cmp(&b),
        (V::Double(a), V::Double(b)) => number(a)?.partial_cmp(&number(b)?).ok_or(Bail)?,
        (V::Int(a), V::Double(b)) => exact(a)?.partial_cmp(&number(b)?).ok_or(Bail)?,
        (V::Double(a), V::Int(b)) => number(a)?.partial_cmp(&exact(b)?).ok_or(Bail)?,
        (V::Time(a), V::Time(b)) => a.cmp(&b),
        // Strings, bools and null: equality only.
        (V::Str(a), V::Str(b)) if matches!(op, Cmp::Eq | Cmp::Ne) => bool_ord(same(a, b)),
        (V::Bool(a), V::Bool(b)) if matches!(op, Cmp::Eq | Cmp::Ne) => bool_ord(a == b),
        (V::Null, V::Null) if matches!(op, Cmp::Eq | Cmp::Ne) => Ordering::Equal,
        (V::Null, x) | (x, V::Null) if matches!(op, Cmp::Eq | Cmp::Ne) && scalar(x) => Ordering::Less,
        _ => return Err(Bail),
    };
    Ok(op.holds(ord))
}

impl Cmp {
    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering;
        match self {
            Cmp::Eq => ord == Ordering::Equal,
            Cmp::Ne => ord != Ordering::Equal,
            Cmp::Lt => ord == Ordering::Less,
            Cmp::Le => ord != Ordering::Greater,
            Cmp::Gt => ord == Ordering::Greater,
            Cmp::Ge => ord != Ordering::Less,
        }
    }

    /// The operator with its operands swapped: `1 < x` is `x > 1`.
    pub(crate) fn mirrored(self) -> Cmp {
        match self {
            Cmp::Eq | Cmp::Ne => self,
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
        }
    }
}

/// Equal or not, as an ordering for [`compare`].
fn bool_ord(equal: bool) -> std::cmp::Ordering {
    if equal { std::cmp::Ordering::Equal } else { std::cmp::Ordering::Less }
}

/// A value `== null` is plainly false for.
fn scalar(v: V<'_>) -> bool {
    matches!(v, V::Bool(_) | V::Int(_) | V::Double(_) | V::Str(_) | V::Time(_))
}

fn arith<'a>(op: Arith, l: V<'a>, r: V<'a>) -> R<'a> {
    Ok(match (l, r) {
        (V::Int(a), V::Int(b)) => V::Int(
            match op {
                Arith::Add => a.checked_add(b),
                Arith::Sub => a.checked_sub(b),
                Arith::Mul => a.checked_mul(b),
                Arith::Div => a.checked_div(b),
            }
            .ok_or(Bail)?,
        ),
        (V::Double(a), V::Double(b)) => {
            let d = match op {
                Arith::Add => a + b,
                Arith::Sub => a - b,
                Arith::Mul => a * b,
                Arith::Div if b == 0.0 => return Err(Bail),
                Arith::Div => a / b,
            };
            V::Double(number(d)?)
        }
        _ => return Err(Bail),
    })
}
