//! The fast path against the interpreter: on generated expressions and
//! generated facts, whenever the fast path decides, it decides what the
//! interpreter decides; and it decides the common cases itself.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone, Utc};

use super::*;

/// A small deterministic generator (no dependency for a test).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const INT_PATHS: &[&str] = &[
    "account.arr",
    "account.employee_count",
    "account.days_to_renewal",
    "account.stage_days",
    "account.touch_mix.high",
    "account.attributes.seats",
    "event.data.count",
];
const DOUBLE_PATHS: &[&str] = &[
    "health.score",
    "health.trend_7d",
    "health.trend_30d",
    "health.measures.logins.value",
    "health.measures.logins.previous_value",
    "health.measures.missing.value",
    "event.data.new_score",
    "event.data.old_score",
];
const STRING_PATHS: &[&str] = &[
    "account.lifecycle_stage",
    "account.industry",
    "account.owner_id",
    "health.band",
    "event.type",
    "account.attributes.plan",
    "event.data.new_band",
];
const TIME_PATHS: &[&str] = &["now", "account.renewal_date", "account.contract_start_date", "event.occurred_at"];
const STRINGS: &[&str] = &["'red'", "'adoption'", "'renewal'", "'software'", "''", "'csm-1'", "'vip'", "'gold'"];
const INTS: &[&str] = &["0", "1", "-5", "30", "90", "100000", "9007199254740993", "-9223372036854775807"];
const DOUBLES: &[&str] = &["0.0", "0.5", "40.0", "-3.0", "1e300", "70.5"];

fn number(g: &mut Gen, depth: usize) -> String {
    match g.below(if depth == 0 { 4 } else { 6 }) {
        0 => g.pick(INT_PATHS).to_string(),
        1 => g.pick(DOUBLE_PATHS).to_string(),
        2 => g.pick(INTS).to_string(),
        3 => g.pick(DOUBLES).to_string(),
        4 => format!("({} {} {})", number(g, depth - 1), g.pick(&["+", "-", "*", "/"]), number(g, depth - 1)),
        _ => format!("-{}", number(g, depth - 1)),
    }
}

fn operand(g: &mut Gen) -> String {
    match g.below(5) {
        0 | 1 => number(g, 2),
        2 => g.pick(STRING_PATHS).to_string(),
        3 => g.pick(STRINGS).to_string(),
        _ => {
            let time = *g.pick(TIME_PATHS);
            g.pick(&["null", "true", "account.tags", "health.measures", time]).to_string()
        }
    }
}

fn boolean(g: &mut Gen, depth: usize) -> String {
    let leaf = depth == 0 || g.chance(30);
    if leaf {
        return match g.below(6) {
            0 => format!("{} {} {}", number(g, 1), g.pick(&["<", "<=", ">", ">=", "==", "!="]), number(g, 1)),
            1 => format!("{} {} {}", g.pick(STRING_PATHS), g.pick(&["==", "!="]), g.pick(STRINGS)),
            2 => format!("{} {} null", operand(g), g.pick(&["==", "!="])),
            3 => format!("{} in account.tags", g.pick(STRINGS)),
            4 => format!("{} in [{}, {}]", g.pick(STRING_PATHS), g.pick(STRINGS), g.pick(STRINGS)),
            _ => format!("{} {} {}", operand(g), g.pick(&["<", "==", ">="]), operand(g)),
        };
    }
    match g.below(5) {
        0 | 1 => format!("({} && {})", boolean(g, depth - 1), boolean(g, depth - 1)),
        2 => format!("({} || {})", boolean(g, depth - 1), boolean(g, depth - 1)),
        3 => format!("!({})", boolean(g, depth - 1)),
        _ => format!("({} ? {} : {})", boolean(g, depth - 1), boolean(g, depth - 1), boolean(g, depth - 1)),
    }
}

fn opt<T>(g: &mut Gen, v: impl FnOnce(&mut Gen) -> T) -> Option<T> {
    if g.chance(20) { None } else { Some(v(g)) }
}

fn facts<'a>(g: &mut Gen, tags: &'a [String]) -> Facts<'a> {
    let today = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap_or_default();
    let mut attributes = BTreeMap::new();
    if g.chance(70) {
        attributes.insert("seats".into(), Fact::Int(*g.pick(&[0, 12, 250, i64::MAX])));
    }
    if g.chance(70) {
        attributes.insert("plan".into(), Fact::String(g.pick(&["gold", "silver"]).to_string()));
    }
    let double = |g: &mut Gen| *g.pick(&[0.0, 12.5, 39.9, 40.0, 70.5, -3.0, f64::NAN, 1e308, 9007199254740992.0]);
    let measure = |g: &mut Gen| MeasureFacts {
        value: opt(g, |g| double(g)),
        previous_value: opt(g, |g| double(g)),
        points: None,
    };
    let mut data = BTreeMap::new();
    data.insert("new_score".to_string(), Fact::Double(double(g)));
    data.insert("old_score".to_string(), if g.chance(80) { Fact::Double(double(g)) } else { Fact::Null });
    data.insert("count".to_string(), Fact::Int(*g.pick(&[0, 7, i64::MIN, i64::MAX])));
    data.insert("new_band".to_string(), Fact::String(g.pick(&["BAND_RED", "BAND_GREEN"]).to_string()));
    PlaybookFacts {
        account: AccountFacts {
            name: "Acme",
            industry: g.pick::<&str>(&["software", "retail"]),
            employee_count: opt(g, |g| *g.pick(&[0, 250, 9007199254740993])),
            lifecycle_stage: g.pick::<&str>(&["adoption", "renewal", "onboarding"]),
            touch_model: "high",
            owner_id: g.pick::<&str>(&["", "csm-1"]),
            arr: *g.pick(&[0, 100_000, 5_000_000, i64::MAX]),
            renewal_date: opt(g, |g| today + chrono::Duration::days(*g.pick(&[-10, 0, 45, 400]))),
            contract_start_date: opt(g, |_| today),
            tags,
            attributes,
            today,
            ..Default::default()
        },
        touch_mix: TouchMix { high: 60, low: 0, tech: 40 },
        stage_days: opt(g, |g| *g.pick(&[0, 30, 200])),
        health: HealthFacts {
            score: opt(g, |g| double(g)),
            band: g.pick(&["red", "yellow", "green", ""]).to_string().into(),
            trend_7d: opt(g, |g| double(g)),
            trend_30d: opt(g, |g| double(g)),
            measures: std::borrow::Cow::Owned([("logins".to_string(), measure(g))].into()),
        },
        event: EventFacts {
            event_type: "HealthScoreChanged".into(),
            id: "e1".into(),
            occurred_at: opt(g, |_| Utc.with_ymd_and_hms(2026, 12, 4, 3, 0, 0).unwrap()),
            data: Fact::Map(data).into(),
        },
    }
    .into_facts(Utc.with_ymd_and_hms(2026, 12, 4, 3, 0, 0).unwrap())
}

#[test]
fn the_fast_path_agrees_with_the_interpreter() {
    let schema = playbook_schema();
    let mut g = Gen(0x5eed_2026_1204);
    let (mut compiled, mut fast_forms, mut evaluations, mut decided) = (0, 0, 0, 0);
    for _ in 0..3000 {
        let source = boolean(&mut g, 3);
        let Ok(expr) = Expression::compile(&source, &schema) else { continue };
        compiled += 1;
        let Some(node) = &expr.inner.fast else { continue };
        fast_forms += 1;
        for _ in 0..8 {
            let tags: Vec<String> = if g.chance(50) { vec!["vip".into()] } else { vec![] };
            let f = facts(&mut g, &tags);
            evaluations += 1;
            let slow = expr.evaluate_slow(&f);
            let tree = fast::evaluate_bool(node, &f);
            if let Ok(b) = tree {
                decided += 1;
                assert_eq!(slow, Ok(b), "{source}: the fast path said {b}, the interpreter {slow:?}");
            }
            let compiled = fast::run(expr.inner.compiled.as_ref().unwrap(), &f);
            if let Ok(b) = compiled {
                assert_eq!(slow, Ok(b), "{source}: the compiled form said {b}, the interpreter {slow:?}");
            }
            // The public entry point gives the interpreter's answer either way.
            assert_eq!(expr.evaluate_bool(&f), slow, "{source}");
        }
    }
    assert!(compiled > 1500, "only {compiled} generated expressions compiled");
    assert_eq!(fast_forms, compiled, "every generated expression is in the subset");
    // Generated facts are full of nulls, NaNs and overflows on purpose: a
    // good share is still decided without the interpreter.
    assert!(decided * 2 > evaluations, "the fast path decided only {decided} of {evaluations}");
}

#[test]
fn facts_set_by_name_are_read_like_slots() {
    let expr = Expression::compile("account.arr > 10 && account.touch_mix.tech == 40", &playbook_schema()).unwrap();
    let by_name = Facts::new().with(
        "account",
        Fact::Map(
            [
                ("arr".to_string(), Fact::Int(11)),
                ("touch_mix".to_string(), Fact::Map([("tech".to_string(), Fact::Int(40))].into())),
            ]
            .into(),
        ),
    );
    assert!(fast::evaluate_bool(expr.inner.fast.as_ref().unwrap(), &by_name).unwrap());
    assert_eq!(expr.evaluate_bool(&by_name), Ok(true));
    // Replacing a slotted variable by name replaces all of it.
    let mut slotted =
        AccountFacts { arr: 5, today: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), ..Default::default() }
            .into_facts(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    slotted.insert("account", Fact::Map([("arr".to_string(), Fact::Int(99))].into()));
    assert_eq!(slotted.lookup("account.arr"), Some("99".into()));
    assert_eq!(slotted.lookup("account.name"), None);
    assert!(slotted.contains("now"));
}

#[test]
fn what_is_outside_the_subset_has_no_fast_form() {
    let schema = playbook_schema();
    for src in [
        "account.tags.exists(t, t == 'vip')",
        "has(account.attributes.seats)",
        "account.attributes['go-live'] == null",
        "size(account.tags) > 1",
        "account.renewal_date < now + duration('720h')",
        "account.name.startsWith('A')",
    ] {
        assert!(!Expression::compile(src, &schema).unwrap().is_fast(), "{src}");
    }
    for src in [
        "health.score < 40 && account.arr > 100000",
        "account.lifecycle_stage in ['adoption', 'renewal'] && 'vip' in account.tags",
        "account.days_to_renewal != null && account.days_to_renewal < 90",
        "event.data.old_score - event.data.new_score >= 5.0",
    ] {
        assert!(Expression::compile(src, &schema).unwrap().is_fast(), "{src}");
    }
}

#[test]
fn short_string_equality_agrees_with_eq() {
    let base: Vec<String> = (0..40).map(|n| "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"[..n].to_string()).collect();
    for a in &base {
        for b in &base {
            assert_eq!(crate::fast::same(a, b), a == b, "{a:?} {b:?}");
        }
        // The same length, one byte different, at every position.
        for i in 0..a.len() {
            let mut c = a.clone().into_bytes();
            c[i] = b'!';
            let c = String::from_utf8(c).unwrap();
            assert!(!crate::fast::same(a, &c), "{a:?} {c:?}");
        }
    }
    assert!(crate::fast::same("日本語", "日本語"));
    assert!(!crate::fast::same("日本語", "日本人"));
}

/// `event.data` read field by field, over a map: field `i` is the map's
/// `i`-th key.
struct MapRecord(BTreeMap<String, Fact>);

impl Record for MapRecord {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn index(&self, name: &str) -> Option<usize> {
        self.0.keys().position(|k| k == name)
    }
    fn field(&self, i: usize) -> Option<Fact> {
        self.0.values().nth(i).cloned()
    }
    fn fact(&self) -> Fact {
        Fact::Map(self.0.clone())
    }
}

/// The same facts with `event.data` read field by field.
fn with_record<'a>(f: &Facts<'a>) -> Facts<'a> {
    let mut f = f.clone();
    let data = match f.slots[crate::facts::slot("event.data").unwrap()].to_fact() {
        Fact::Map(m) => m,
        _ => BTreeMap::new(),
    };
    f.event_data(EventData::Record(std::sync::Arc::new(MapRecord(data))));
    f
}

#[test]
fn a_condition_set_decides_each_condition_as_the_condition_alone() {
    let schema = playbook_schema();
    let mut g = Gen(0x5e7_2026_1206);
    let mut conditions: Vec<Option<Expression>> = Vec::new();
    while conditions.len() < 400 {
        let source = match g.below(20) {
            // No condition, and conditions off the fast path.
            0 => None,
            1 => Some(
                g.pick(&["size(account.tags) > 1", "has(event.data.old_score)", "event.data.new_score > 1"])
                    .to_string(),
            ),
            // Thresholds: one number against many literals, grouped.
            2..=7 => {
                let number = if g.chance(70) {
                    let paths = if g.chance(50) { INT_PATHS } else { DOUBLE_PATHS };
                    g.pick(paths).to_string()
                } else {
                    g.pick(&["event.data.old_score - event.data.new_score", "health.measures.logins.value * 2.0"])
                        .to_string()
                };
                let literals = if g.chance(50) { INTS } else { DOUBLES };
                let literal = g.pick(literals).to_string();
                let op = *g.pick(&["<", "<=", ">", ">="]);
                let threshold =
                    if g.chance(20) { format!("{literal} {op} {number}") } else { format!("{number} {op} {literal}") };
                Some(if g.chance(50) { format!("{threshold} && {}", boolean(&mut g, 0)) } else { threshold })
            }
            _ => Some(boolean(&mut g, 2)),
        };
        match source {
            None => conditions.push(None),
            Some(s) => {
                if let Ok(e) = Expression::compile(&s, &schema) {
                    conditions.push(Some(e));
                }
            }
        }
    }
    let set = ConditionSet::new(conditions.clone());
    assert_eq!(set.len(), conditions.len());
    // Generated from a few paths and literals, the conditions share some
    // leaves, and compare some numbers with several literals.
    let leaves: usize = conditions.iter().flatten().filter_map(|e| e.inner.fast.as_ref()).map(leaf_count).sum();
    assert!(set.atoms() < leaves, "{} atoms for {leaves} leaves", set.atoms());
    assert!(set.ranked() > 50, "{} atoms ranked in groups", set.ranked());
    let mut order: Vec<usize> = (0..conditions.len()).collect();
    for round in 0..300 {
        let tags: Vec<String> = if g.chance(50) { vec!["vip".into()] } else { vec![] };
        let plain = facts(&mut g, &tags);
        let f = if round % 2 == 0 { plain } else { with_record(&plain) };
        // A different order each round: what one condition decided first
        // must not change another's answer.
        for i in (1..order.len()).rev() {
            order.swap(i, g.below(i + 1));
        }
        let ev = set.evaluation(&f);
        for &i in &order {
            let alone = conditions[i].as_ref().map_or(Ok(true), |e| e.evaluate_bool(&f));
            assert_eq!(ev.condition(i), alone, "condition {i}: {:?}", conditions[i]);
        }
    }
}

fn leaf_count(n: &fast::Node) -> usize {
    match n {
        fast::Node::And(items) | fast::Node::Or(items) => items.iter().map(leaf_count).sum(),
        fast::Node::Not(x) => leaf_count(x),
        _ => 1,
    }
}

#[test]
fn a_predicate_written_in_many_conditions_is_one_atom() {
    let schema = playbook_schema();
    let c = |s: &str| Some(Expression::compile(s, &schema).unwrap());
    let set = ConditionSet::new([
        c("health.band == 'red' && account.arr > 5"),
        c("health.band == 'red' || health.score < 40.0"),
        None,
        c("!(account.arr > 5) && health.score < 40.0"),
        c("account.tags.exists(t, t == 'vip')"),
    ]);
    assert_eq!(set.atoms(), 3);
    let tags = vec!["vip".to_string()];
    let f = AccountFacts { arr: 10, tags: &tags, ..Default::default() }.into_facts(Utc::now());
    let ev = set.evaluation(&f);
    // No health: `health.band == 'red'` is left to the interpreter, which
    // finds no `health` variable.
    assert!(ev.condition(0).is_err());
    assert_eq!(ev.condition(2), Ok(true));
    assert_eq!(ev.condition(3), Ok(false), "false && error is false");
    assert_eq!(ev.condition(4), Ok(true));
    assert_eq!(ev.condition(99), Ok(true), "beyond the set: no condition");
}

#[test]
fn a_payload_read_field_by_field_reads_only_those_fields() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    struct Counting(MapRecord, AtomicUsize, AtomicUsize);
    impl Record for Counting {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn index(&self, name: &str) -> Option<usize> {
            self.0.index(name)
        }
        fn field(&self, i: usize) -> Option<Fact> {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.field(i)
        }
        fn fact(&self) -> Fact {
            self.2.fetch_add(1, Ordering::Relaxed);
            self.0.fact()
        }
    }
    let data: BTreeMap<String, Fact> = [
        ("old_score".to_string(), Fact::Double(70.0)),
        ("new_score".to_string(), Fact::Double(38.0)),
        ("account_id".to_string(), Fact::String("a1".into())),
    ]
    .into();
    let record = std::sync::Arc::new(Counting(MapRecord(data), AtomicUsize::new(0), AtomicUsize::new(0)));
    let f = PlaybookFacts {
        event: EventFacts { data: EventData::Record(record.clone()), ..Default::default() },
        ..Default::default()
    }
    .into_facts(Utc::now());
    let schema = playbook_schema();
    for _ in 0..3 {
        let drop = Expression::compile("event.data.old_score - event.data.new_score >= 30.0", &schema).unwrap();
        assert_eq!(drop.evaluate_bool(&f), Ok(true));
    }
    assert_eq!(record.1.load(Ordering::Relaxed), 2, "each field read once");
    assert_eq!(record.2.load(Ordering::Relaxed), 0, "never the whole payload");
    // A field it does not have is the interpreter's to report, from the whole.
    let missing = Expression::compile("event.data.seats > 1", &schema).unwrap();
    assert!(missing.evaluate_bool(&f).is_err());
    assert_eq!(record.2.load(Ordering::Relaxed), 1);
    assert_eq!(f.lookup("event.data.account_id"), Some("'a1'".into()));
}
