//! Many conditions evaluated against one set of facts, as rule engines
//! evaluate their rules: compiled together, so that a predicate written in
//! many of them is decided once per evaluation.
//!
//! A tenant's live playbooks are evaluated against every event, each
//! condition on its own heap tree: 200 conditions meant 200 trees walked and
//! `health.band == 'red'` decided 34 times (docs/benchmarks.md, rule
//! throughput). A [`ConditionSet`] keeps the leaves of every condition —
//! the fast path's typed comparisons — as *atoms*, each distinct one
//! (compared by its compiled form) once, and what joins them as masks over
//! the atoms. An [`Evaluation`] decides every atom once, into bits; a
//! condition that is `&&` or `||` of atoms (most are) is then a few mask
//! operations, without a branch per atom; others walk their formula over
//! the bits. The work per event grows with the distinct predicates, not
//! with the playbooks.
//!
//! Atoms that compare one number with literals by one operator
//! (`health.score < 30.0`, `< 31.0`, … in thirty playbooks) form a *group*:
//! its literals sorted, its atoms numbered in that order, one binary search
//! of the number decides them all as a range of bits.
//!
//! The answers are [`Expression::evaluate_bool`]'s: an atom the fast path
//! leaves to the interpreter ([`fast::Bail`]) makes its condition's result
//! the interpreter's, and a condition with no fast form is interpreted
//! whole. `a && b` is false when any operand is false and true when all are
//! true, whatever order they are decided in; anything else is left to the
//! interpreter, which absorbs or reports the error as CEL specifies.

use std::collections::HashMap;

use crate::fast::{self, Cmp, Compiled, Node, Num, Operand};
use crate::{EvalError, Expression, Facts};

/// A node of a condition's formula.
#[derive(Debug, Clone, Copy)]
enum Formula {
    Atom(u32),
    /// Over the formulas `kids[from..to]`.
    And(u32, u32),
    Or(u32, u32),
    Not(u32),
}

/// How one condition of the set is decided.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// No condition: always true.
    Always,
    Atom(u32),
    /// `&&` / `||` of atoms, as masks `masks[from..to]` (most conditions).
    All(u32, u32),
    Any(u32, u32),
    /// By its formula, from `nodes[root]`.
    Formula(u32),
    /// By the interpreter (no fast form).
    Interpreted,
}

/// A predicate shared by the set's conditions.
#[derive(Debug, Clone)]
enum Atom {
    /// A typed comparison of the fast path.
    Leaf(Compiled),
    /// A comparison of two numeric operands, by their place in
    /// [`ConditionSet::operands`] (each computed once an evaluation: the
    /// score drop `event.data.old_score - event.data.new_score` is read
    /// once for every threshold compared with it), and the comparison as
    /// a tree for what is not a plain number.
    Num(Cmp, u32, u32, Node),
}

/// Where a group's number is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    Slot(usize),
    Operand(u32),
}

/// Literals of one type, sorted.
#[derive(Debug)]
enum Literals {
    Int(Vec<i64>),
    Double(Vec<f64>),
}

/// Comparisons of one number with literals of one type by one operator:
/// atoms `base..base + n`, in the order of their sorted literals.
#[derive(Debug)]
struct Group {
    source: Source,
    op: Cmp,
    literals: Literals,
    base: u32,
}

/// Conditions compiled together; see the module documentation.
#[derive(Debug, Default)]
pub struct ConditionSet {
    /// Every group's atoms first, then the atoms decided alone.
    atoms: Vec<Atom>,
    groups: Vec<Group>,
    /// Atoms from here on are decided alone.
    alone: u32,
    operands: Vec<Operand>,
    nodes: Vec<Formula>,
    kids: Vec<u32>,
    /// The atoms of `&&` and `||` entries, as (word, bits) pairs.
    masks: Vec<(u32, u64)>,
    entries: Vec<Entry>,
    expressions: Vec<Option<Expression>>,
}

/// What an atom was decided to be.
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const BAIL: u8 = 3;

/// Interned by their compiled form, which names everything that decides
/// them (operator, slot, keys, literal): equal forms decide equally on the
/// same facts.
#[derive(Default)]
struct Builder {
    atom_ids: HashMap<String, u32>,
    operand_ids: HashMap<String, u32>,
    atoms: Vec<Atom>,
    operands: Vec<Operand>,
    nodes: Vec<Formula>,
    kids: Vec<u32>,
    /// Per condition, before the atoms are renumbered.
    entries: Vec<Pending>,
}

/// An entry whose atoms are not numbered yet.
enum Pending {
    Always,
    Atom(u32),
    All(Vec<u32>),
    Any(Vec<u32>),
    Formula(u32),
    Interpreted,
}

impl Builder {
    fn entry(&mut self, c: &Compiled) -> Pending {
        let leaf = |c: &Compiled| !matches!(c, Compiled::And(_) | Compiled::Or(_) | Compiled::Not(_));
        match c {
            Compiled::And(items) | Compiled::Or(items) if items.iter().all(leaf) => {
                let atoms: Vec<u32> = items.iter().map(|c| self.atom(c)).collect();
                if matches!(c, Compiled::And(_)) { Pending::All(atoms) } else { Pending::Any(atoms) }
            }
            c if leaf(c) => Pending::Atom(self.atom(c)),
            c => Pending::Formula(self.formula(c)),
        }
    }

    fn formula(&mut self, c: &Compiled) -> u32 {
        let node = match c {
            Compiled::And(items) | Compiled::Or(items) => {
                let kids: Vec<u32> = items.iter().map(|c| self.formula(c)).collect();
                let from = index(self.kids.len());
                self.kids.extend(kids);
                let to = index(self.kids.len());
                if matches!(c, Compiled::And(_)) { Formula::And(from, to) } else { Formula::Or(from, to) }
            }
            Compiled::Not(x) => Formula::Not(self.formula(x)),
            leaf => Formula::Atom(self.atom(leaf)),
        };
        self.nodes.push(node);
        index(self.nodes.len() - 1)
    }

    /// The atom of a leaf, shared with every identical one.
    fn atom(&mut self, leaf: &Compiled) -> u32 {
        let next = index(self.atoms.len());
        let id = *self.atom_ids.entry(format!("{leaf:?}")).or_insert(next);
        if id == next {
            let atom = match leaf {
                Compiled::Num(op, l, r, node) => Atom::Num(*op, self.operand(l), self.operand(r), node.clone()),
                other => Atom::Leaf(other.clone()),
            };
            self.atoms.push(atom);
        }
        id
    }

    fn operand(&mut self, o: &Operand) -> u32 {
        let next = index(self.operands.len());
        let id = *self.operand_ids.entry(format!("{o:?}")).or_insert(next);
        if id == next {
            self.operands.push(o.clone());
        }
        id
    }

    /// What atom `a` compares, when it may join a group: (number, operator
    /// with the number on the left, literal as a double or an int).
    fn rankable(&self, a: &Atom) -> Option<(Source, Cmp, Result<f64, i64>)> {
        let literal = |o: &Operand| match o {
            Operand::Double(d) if !d.is_nan() => Some(Ok(*d)),
            Operand::Int(i) => Some(Err(*i)),
            _ => None,
        };
        let (source, op, lit) = match a {
            Atom::Leaf(Compiled::Double(op, slot, b)) if !b.is_nan() => (Source::Slot(*slot), *op, Ok(*b)),
            Atom::Leaf(Compiled::Int(op, slot, b)) => (Source::Slot(*slot), *op, Err(*b)),
            Atom::Num(op, l, r, _) => {
                let (l_op, r_op) = (&self.operands[*l as usize], &self.operands[*r as usize]);
                match (literal(l_op), literal(r_op)) {
                    (None, Some(lit)) => (Source::Operand(*l), *op, lit),
                    (Some(lit), None) => (Source::Operand(*r), op.mirrored(), lit),
                    _ => return None,
                }
            }
            Atom::Leaf(_) => return None,
        };
        (!matches!(op, Cmp::Eq | Cmp::Ne)).then_some((source, op, lit))
    }

    /// The set: atoms of two or more to a group numbered first, group by
    /// group in the order of their literals, then the others.
    fn build(self, expressions: Vec<Option<Expression>>) -> ConditionSet {
        type Members = Vec<(u32, Result<f64, i64>)>;
        let mut by_key: HashMap<(Source, Cmp, bool), Members> = HashMap::new();
        for (id, atom) in self.atoms.iter().enumerate() {
            if let Some((source, op, lit)) = self.rankable(atom) {
                by_key.entry((source, op, lit.is_ok())).or_default().push((index(id), lit));
            }
        }
        let mut keyed: Vec<((Source, Cmp, bool), Members)> = by_key.into_iter().filter(|(_, m)| m.len() > 1).collect();
        keyed.sort_by_key(|(_, m)| m[0].0);
        let mut order: Vec<u32> = Vec::with_capacity(self.atoms.len());
        let mut groups = Vec::new();
        for ((source, op, double), mut members) in keyed {
            let base = index(order.len());
            let literals = if double {
                members.sort_by(|a, b| a.1.unwrap_or(0.0).total_cmp(&b.1.unwrap_or(0.0)));
                Literals::Double(members.iter().map(|m| m.1.unwrap_or(0.0)).collect())
            } else {
                members.sort_by_key(|m| m.1.err().unwrap_or(0));
                Literals::Int(members.iter().map(|m| m.1.err().unwrap_or(0)).collect())
            };
            order.extend(members.iter().map(|m| m.0));
            groups.push(Group { source, op, literals, base });
        }
        let alone = index(order.len());
        let mut grouped = vec![false; self.atoms.len()];
        for &a in &order {
            grouped[a as usize] = true;
        }
        order.extend((0..self.atoms.len()).filter(|a| !grouped[*a]).map(index));
        // `renumbered[old] = new`.
        let mut renumbered = vec![0u32; self.atoms.len()];
        for (new, &old) in order.iter().enumerate() {
            renumbered[old as usize] = index(new);
        }
        let atoms = order.iter().map(|&old| self.atoms[old as usize].clone()).collect();
        let nodes = self
            .nodes
            .iter()
            .map(|n| match n {
                Formula::Atom(a) => Formula::Atom(renumbered[*a as usize]),
                other => *other,
            })
            .collect();
        let mut masks = Vec::new();
        let mut mask = |atoms: &[u32]| {
            let from = index(masks.len());
            let mut words: Vec<(u32, u64)> = Vec::new();
            for a in atoms {
                let a = renumbered[*a as usize];
                let (word, bit) = (a / 64, 1u64 << (a % 64));
                match words.iter_mut().find(|(w, _)| *w == word) {
                    Some((_, bits)) => *bits |= bit,
                    None => words.push((word, bit)),
                }
            }
            masks.extend(words);
            (from, index(masks.len()))
        };
        let entries = self
            .entries
            .iter()
            .map(|e| match e {
                Pending::Always => Entry::Always,
                Pending::Atom(a) => Entry::Atom(renumbered[*a as usize]),
                Pending::All(atoms) => {
                    let (from, to) = mask(atoms);
                    Entry::All(from, to)
                }
                Pending::Any(atoms) => {
                    let (from, to) = mask(atoms);
                    Entry::Any(from, to)
                }
                Pending::Formula(root) => Entry::Formula(*root),
                Pending::Interpreted => Entry::Interpreted,
            })
            .collect();
        ConditionSet {
            atoms,
            groups,
            alone,
            operands: self.operands,
            nodes,
            kids: self.kids,
            masks,
            entries,
            expressions,
        }
    }
}

impl ConditionSet {
    /// The set of `conditions`, in order; `None` is a condition that always
    /// holds (a playbook without one).
    pub fn new(conditions: impl IntoIterator<Item = Option<Expression>>) -> ConditionSet {
        let mut b = Builder::default();
        let mut expressions = Vec::new();
        for expression in conditions {
            let entry = match expression.as_ref().map(|e| e.inner.compiled.as_ref()) {
                None => Pending::Always,
                Some(Some(compiled)) => b.entry(compiled),
                Some(None) => Pending::Interpreted,
            };
            b.entries.push(entry);
            expressions.push(expression);
        }
        b.build(expressions)
    }

    /// How many conditions the set holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many distinct predicates its conditions share.
    pub fn atoms(&self) -> usize {
        self.atoms.len()
    }

    /// How many of them are decided by a group's one search.
    pub fn ranked(&self) -> usize {
        self.alone as usize
    }

    /// Condition `i`, as given to [`ConditionSet::new`].
    pub fn expression(&self, i: usize) -> Option<&Expression> {
        self.expressions.get(i).and_then(Option::as_ref)
    }

    /// Every predicate of the set decided against `facts`, once, then
    /// every condition; [`Evaluation::condition`] answers any of them.
    pub fn evaluation<'s, 'f, 'a>(&'s self, facts: &'f Facts<'a>) -> Evaluation<'s, 'f, 'a> {
        let all = vec![u64::MAX; self.entries.len().div_ceil(64)];
        self.evaluation_of(facts, &all)
    }

    /// [`ConditionSet::evaluation`] of the conditions whose bits are set
    /// in `wanted` (condition `i` is bit `i % 64` of word `i / 64`); the
    /// others hold.
    pub fn evaluation_of<'s, 'f, 'a>(&'s self, facts: &'f Facts<'a>, wanted: &[u64]) -> Evaluation<'s, 'f, 'a> {
        let words = self.atoms.len().div_ceil(64);
        let mut ev = Evaluation { set: self, facts, bits: vec![0; 2 * words], words, decided: Vec::new() };
        let mut operands: Vec<Option<Option<Num>>> = vec![None; self.operands.len()];
        for g in &self.groups {
            let value = match g.source {
                Source::Slot(slot) => fast::plain(facts, slot),
                Source::Operand(o) => self.operand(&mut operands, o, facts),
            };
            // For `<` and `>=`: how many literals are at or below the
            // number; for `<=` and `>`: how many are below it.
            let at_or_below = matches!(g.op, Cmp::Lt | Cmp::Ge);
            let past = match (&g.literals, value) {
                (Literals::Double(lits), Some(Num::Double(x))) => {
                    Some((lits.len(), lits.partition_point(|l| if at_or_below { *l <= x } else { *l < x })))
                }
                (Literals::Int(lits), Some(Num::Int(x))) => {
                    Some((lits.len(), lits.partition_point(|l| if at_or_below { *l <= x } else { *l < x })))
                }
                _ => None,
            };
            let base = g.base as usize;
            match past {
                // Sorted literals: `x < lit` holds for the literals past
                // those `x` is not below, `x > lit` for those before.
                Some((n, past)) => match g.op {
                    Cmp::Lt | Cmp::Le => ev.set_true(base + past, base + n),
                    _ => ev.set_true(base, base + past),
                },
                // Not a plain number of the literals' type: each alone.
                None => {
                    let n = match &g.literals {
                        Literals::Double(l) => l.len(),
                        Literals::Int(l) => l.len(),
                    };
                    for a in base..base + n {
                        let v = self.alone(&mut operands, &self.atoms[a], facts);
                        ev.set(a, v);
                    }
                }
            }
        }
        for a in self.alone as usize..self.atoms.len() {
            let v = self.alone(&mut operands, &self.atoms[a], facts);
            ev.set(a, v);
        }
        // Then the conditions wanted, in one pass.
        let half = self.entries.len().div_ceil(64);
        let mut decided = vec![0u64; 2 * half];
        for w in 0..half {
            let mut bits = wanted.get(w).copied().unwrap_or(0);
            if w == half - 1 && !self.entries.len().is_multiple_of(64) {
                bits &= (1u64 << (self.entries.len() % 64)) - 1;
            }
            decided[w] = !bits;
            while bits != 0 {
                let bit = bits & bits.wrapping_neg();
                bits ^= bit;
                match ev.decide(w * 64 + bit.trailing_zeros() as usize) {
                    TRUE => decided[w] |= bit,
                    FALSE => {}
                    _ => decided[half + w] |= bit,
                }
            }
        }
        ev.decided = decided;
        ev
    }

    fn alone(&self, operands: &mut [Option<Option<Num>>], atom: &Atom, facts: &Facts<'_>) -> u8 {
        let v = match atom {
            Atom::Leaf(c) => fast::run(c, facts),
            Atom::Num(op, l, r, node) => {
                let (l, r) = (self.operand(operands, *l, facts), self.operand(operands, *r, facts));
                fast::num_cmp(*op, l, r, node, facts)
            }
        };
        match v {
            Ok(true) => TRUE,
            Ok(false) => FALSE,
            Err(fast::Bail) => BAIL,
        }
    }

    /// Operand `o`'s value, computed once an evaluation.
    fn operand(&self, operands: &mut [Option<Option<Num>>], o: u32, facts: &Facts<'_>) -> Option<Num> {
        let at = o as usize;
        if let Some(v) = operands[at] {
            return v;
        }
        let v = fast::num(&self.operands[at], facts);
        operands[at] = Some(v);
        v
    }
}

/// Formula and atom indexes are `u32`: a set is far smaller than 4 billion
/// nodes (conditions are at most 4,096 characters each).
fn index(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The conditions of a [`ConditionSet`] decided against one set of facts.
pub struct Evaluation<'s, 'f, 'a> {
    set: &'s ConditionSet,
    facts: &'f Facts<'a>,
    /// One bit an atom: `words` words of the atoms that hold, then `words`
    /// of those left to the interpreter; an atom in neither is false.
    bits: Vec<u64>,
    words: usize,
    /// One bit a condition, the same way: those that hold, then those left
    /// to the interpreter.
    decided: Vec<u64>,
}

impl Evaluation<'_, '_, '_> {
    /// Atoms `from..to` hold.
    fn set_true(&mut self, from: usize, to: usize) {
        let mut a = from;
        while a < to {
            // The bits of `a..to` in `a`'s word, at once.
            let (w, lo) = (a / 64, a % 64);
            let hi = (to - w * 64).min(64);
            let mask = if hi - lo == 64 { u64::MAX } else { ((1u64 << (hi - lo)) - 1) << lo };
            self.bits[w] |= mask;
            a = w * 64 + hi;
        }
    }

    fn set(&mut self, a: usize, v: u8) {
        match v {
            TRUE => self.bits[a / 64] |= 1 << (a % 64),
            BAIL => self.bits[self.words + a / 64] |= 1 << (a % 64),
            _ => {}
        }
    }

    fn atom(&self, a: u32) -> u8 {
        let (w, bit) = (a as usize / 64, 1u64 << (a % 64));
        if self.bits[w] & bit != 0 {
            TRUE
        } else if self.bits[self.words + w] & bit != 0 {
            BAIL
        } else {
            FALSE
        }
    }

    /// The conditions that hold, a bit each (condition `i` is bit `i % 64`
    /// of word `i / 64`), and those left to the interpreter.
    pub fn bits(&self) -> (&[u64], &[u64]) {
        self.decided.split_at(self.decided.len() / 2)
    }

    /// Condition `i`'s value when the fast path decided it; `None` when it
    /// is the interpreter's to decide ([`Evaluation::condition`]).
    #[inline]
    pub fn holds(&self, i: usize) -> Option<bool> {
        let (w, bit) = (i / 64, 1u64 << (i % 64));
        let half = self.decided.len() / 2;
        if w >= half {
            return Some(true);
        }
        if self.decided[half + w] & bit != 0 { None } else { Some(self.decided[w] & bit != 0) }
    }

    /// Condition `i`'s value, as [`Expression::evaluate_bool`] gives it
    /// (`true` for a condition that is not there, and for an index beyond
    /// the set).
    pub fn condition(&self, i: usize) -> Result<bool, EvalError> {
        match self.holds(i) {
            Some(b) => Ok(b),
            None => self.set.expression(i).map_or(Ok(true), |e| e.evaluate_slow(self.facts)),
        }
    }

    /// Condition `i` over the atoms' bits: [`TRUE`], [`FALSE`] or
    /// [`BAIL`].
    fn decide(&self, i: usize) -> u8 {
        match self.set.entries.get(i) {
            None | Some(Entry::Always) => TRUE,
            Some(Entry::Atom(a)) => self.atom(*a),
            Some(Entry::All(from, to)) => {
                let (mut false_, mut bail) = (0u64, 0u64);
                for &(w, m) in &self.set.masks[*from as usize..*to as usize] {
                    let (t, b) = (self.bits[w as usize], self.bits[self.words + w as usize]);
                    false_ |= m & !(t | b);
                    bail |= m & b;
                }
                if false_ != 0 {
                    FALSE
                } else if bail != 0 {
                    BAIL
                } else {
                    TRUE
                }
            }
            Some(Entry::Any(from, to)) => {
                let (mut true_, mut bail) = (0u64, 0u64);
                for &(w, m) in &self.set.masks[*from as usize..*to as usize] {
                    true_ |= m & self.bits[w as usize];
                    bail |= m & self.bits[self.words + w as usize];
                }
                if true_ != 0 {
                    TRUE
                } else if bail != 0 {
                    BAIL
                } else {
                    FALSE
                }
            }
            Some(Entry::Formula(root)) => self.node(*root),
            Some(Entry::Interpreted) => BAIL,
        }
    }

    fn node(&self, n: u32) -> u8 {
        match self.set.nodes[n as usize] {
            Formula::Atom(a) => self.atom(a),
            Formula::And(from, to) => self.all(from, to, FALSE),
            Formula::Or(from, to) => self.all(from, to, TRUE),
            Formula::Not(x) => match self.node(x) {
                TRUE => FALSE,
                FALSE => TRUE,
                other => other,
            },
        }
    }

    /// `&&` (`decides` [`FALSE`]) or `||` (`decides` [`TRUE`]) over the
    /// formulas `kids[from..to]`: any kid that decides does; otherwise a
    /// kid the fast path could not decide leaves the whole to the
    /// interpreter.
    fn all(&self, from: u32, to: u32, decides: u8) -> u8 {
        let mut bail = false;
        for k in from..to {
            match self.node(self.set.kids[k as usize]) {
                v if v == decides => return decides,
                BAIL => bail = true,
                _ => {}
            }
        }
        if bail {
            BAIL
        } else if decides == FALSE {
            TRUE
        } else {
            FALSE
        }
    }
}
