//! The playbook environment, the cost limit, and the values a condition reads.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use super::*;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 3, 0, 0).unwrap()
}

fn compile(src: &str) -> Expression {
    Expression::compile(src, &playbook_schema()).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn compile_err(src: &str) -> CompileError {
    Expression::compile(src, &playbook_schema()).expect_err(src)
}

/// A big high-touch account whose usage halved and whose score turned red,
/// on the HealthScoreChanged that says so.
fn red(tags: &[String]) -> Facts<'_> {
    let mut attributes = BTreeMap::new();
    attributes.insert("seats".to_string(), Fact::Int(250));
    attributes.insert("go-live".to_string(), Fact::Date(date(2024, 5, 1)));
    let mut measures = BTreeMap::new();
    measures.insert(
        "events_30d".to_string(),
        MeasureFacts { value: Some(400.0), previous_value: Some(1000.0), points: Some(12.5) },
    );
    measures.insert("nps".to_string(), MeasureFacts { value: None, previous_value: Some(40.0), points: None });
    let payload = serde_json::json!({
        "account_id": "a-1",
        "new_score": 38.5,
        "old_score": 61,
        "band": "red",
        "previous_band": "yellow",
        "reasons": ["usage", "nps"],
    });
    PlaybookFacts {
        account: AccountFacts {
            name: "Acme",
            lifecycle_stage: "adoption",
            touch_model: "high",
            arr: 2_500_000,
            arr_currency: "USD",
            renewal_date: Some(date(2027, 2, 1)),
            tags,
            attributes,
            today: date(2026, 12, 4),
            ..Default::default()
        },
        touch_mix: TouchMix { high: 60, low: 0, tech: 40 },
        stage_days: Some(45),
        health: HealthFacts {
            score: Some(38.5),
            band: "red".into(),
            trend_7d: Some(-12.0),
            trend_30d: None,
            measures: std::borrow::Cow::Owned(measures),
        },
        event: EventFacts {
            event_type: "HealthScoreChanged".into(),
            id: "ev-9".into(),
            occurred_at: Some(Utc.with_ymd_and_hms(2026, 12, 4, 0, 0, 0).unwrap()),
            data: Fact::from_json(payload).into(),
        },
    }
    .into_facts(now())
}

/// A schedule trigger on an account never scored: no event, no health.
fn unscored() -> Facts<'static> {
    PlaybookFacts {
        account: AccountFacts {
            name: "Tiny",
            lifecycle_stage: "onboarding",
            today: date(2026, 12, 4),
            ..Default::default()
        },
        ..Default::default()
    }
    .into_facts(now())
}

fn tags(t: &[&str]) -> Vec<String> {
    t.iter().map(|s| s.to_string()).collect()
}

#[test]
fn playbook_conditions_evaluate() {
    let vip = tags(&["vip"]);
    let a = red(&vip);
    let b = unscored();
    for (src, on_a, on_b) in [
        ("health.band == 'red' && account.arr > 1000000", Ok(true), Ok(false)),
        (
            "health.measures.events_30d.previous_value > 0 && \
             health.measures.events_30d.value < health.measures.events_30d.previous_value * 0.5",
            Ok(true),
            // No measure yet: reading it is an error, which has() avoids.
            Err(()),
        ),
        ("has(health.measures.events_30d) && health.measures.events_30d.value < 500.0", Ok(true), Ok(false)),
        ("health.measures['events_30d'] != null", Ok(true), Ok(false)),
        ("health.measures.exists(m, health.measures[m].points == null)", Ok(true), Ok(false)),
        ("health.score != null && health.score < 40.0", Ok(true), Ok(false)),
        ("health.trend_7d != null && health.trend_7d <= -10.0", Ok(true), Ok(false)),
        ("health.trend_30d == null", Ok(true), Ok(true)),
        ("health.band == ''", Ok(false), Ok(true)),
        ("event.type == 'HealthScoreChanged' && event.id == 'ev-9'", Ok(true), Ok(false)),
        ("event.occurred_at != null && now - event.occurred_at < duration('24h')", Ok(true), Ok(false)),
        ("event.data.new_score < 40.0 && event.data.old_score >= 60", Ok(true), Err(())),
        ("has(event.data.band) && event.data.band == 'red'", Ok(true), Ok(false)),
        ("'usage' in event.data.reasons", Ok(true), Err(())),
        ("event.data.previous_band != event.data.band", Ok(true), Err(())),
        ("account.touch_mix.high >= 50 && account.touch_mix.tech > 0", Ok(true), Ok(false)),
        ("account.touch_mix.low == 0", Ok(true), Ok(true)),
        ("account.touch_mix.exists(p, account.touch_mix[p] == 100)", Ok(false), Ok(false)),
        ("account.stage_days != null && account.stage_days > 30", Ok(true), Ok(false)),
        ("account.stage_days == null", Ok(false), Ok(true)),
        // Everything a segment reads is there too.
        ("'vip' in account.tags && account.days_to_renewal < 90", Ok(true), Ok(false)),
        ("account.attributes['go-live'] < timestamp('2025-01-01T00:00:00Z')", Ok(true), Err(())),
    ] {
        let e = compile(src);
        for (facts, expected, which) in [(&a, on_a, "red"), (&b, on_b, "unscored")] {
            let got = e.evaluate_bool(facts);
            match expected {
                Ok(v) => assert_eq!(got, Ok(v), "{src} on {which}"),
                Err(()) => assert!(got.is_err(), "{src} on {which}: {got:?}"),
            }
        }
    }
}

#[test]
fn playbook_schema_is_the_account_schema_plus_three() {
    let playbook = playbook_schema();
    let segments = account_schema();
    assert_eq!(playbook.variable_names().collect::<Vec<_>>(), ["account", "event", "health", "now"]);
    let (Some(Shape::Record(segment)), Some(Shape::Record(condition))) =
        (segments.variable("account"), playbook.variable("account"))
    else {
        panic!("account is a record");
    };
    for (field, shape) in segment {
        assert_eq!(condition.get(field), Some(shape), "{field}");
    }
    let extra: Vec<&str> = condition.keys().filter(|f| !segment.contains_key(*f)).map(String::as_str).collect();
    assert_eq!(extra, ["stage_days", "touch_mix"]);
    assert_eq!(playbook.cost_limit(), COST_LIMIT);
    assert_eq!(account_schema().cost_limit(), COST_LIMIT);
}

#[test]
fn playbook_facts_follow_the_schema() {
    // Every field the schema declares is in the facts, for an account with
    // everything and one with nothing; nothing else is.
    fn fields(shape: &Shape, path: &str, out: &mut Vec<String>) {
        if let Shape::Record(fs) = shape {
            for (f, s) in fs {
                let p = format!("{path}.{f}");
                out.push(p.clone());
                fields(s, &p, out);
            }
        }
    }
    let schema = playbook_schema();
    let vip = tags(&["vip"]);
    for facts in [red(&vip), unscored()] {
        for var in schema.variable_names() {
            assert!(facts.contains(var), "{var}");
            let mut paths = Vec::new();
            fields(schema.variable(var).unwrap(), var, &mut paths);
            for p in paths {
                assert!(facts.lookup(&p).is_some(), "{p}");
            }
        }
    }
    let f = red(&vip);
    assert_eq!(f.lookup("health.measures.events_30d.junk"), None);
    assert_eq!(f.lookup("account.junk"), None);
}

#[test]
fn segments_do_not_see_the_playbook_variables() {
    for (src, message) in [
        ("account.touch_mix.high > 50", "unknown field touch_mix of account"),
        ("account.stage_days > 30", "unknown field stage_days of account"),
        ("health.band == 'red'", "unknown variable health"),
        ("event.type == 'x'", "unknown variable event"),
    ] {
        let e = Expression::compile(src, &account_schema()).expect_err(src);
        assert!(e.message.starts_with(message), "{src}: {e}");
    }
}

#[test]
fn playbook_conditions_are_checked_when_saved() {
    for (src, column, message) in [
        ("health.scor < 40.0", 8, "unknown field scor of health; known: band, measures, score, trend_30d, trend_7d"),
        ("account.touch_mix.medium > 0", 19, "unknown field medium of account.touch_mix; known: high, low, tech"),
        ("health.measures.events_30d.val > 0", 28, "unknown field val of health.measures.events_30d"),
        ("event.typ == 'x'", 7, "unknown field typ of event; known: data, id, occurred_at, type"),
        ("health.band.exists(c, true)", 13, "exists() needs a list or a map, but health.band is a string"),
        ("evnt.type == 'x'", 1, "unknown variable evnt; known: account, event, health, now"),
    ] {
        let e = compile_err(src);
        assert_eq!((e.line, e.column), (1, column), "{src}: {e}");
        assert!(e.message.starts_with(message), "{src}: {e}");
    }
    // event.data is open: any field, any depth.
    compile("event.data.a.b.c == 1 && event.data['x-y'] == null");
}

#[test]
fn from_json_follows_the_brief() {
    let json = serde_json::json!({
        "int": 12,
        "negative": -3,
        "double": 1.5,
        "whole_double": 2.0,
        "huge": 18446744073709551615u64,
        "exp": 1e300,
        "s": "x",
        "b": true,
        "n": null,
        "list": [1, "a"],
        "map": {"k": {"deep": 1}},
    });
    let Fact::Map(m) = Fact::from_json(json) else { panic!("a map") };
    assert_eq!(m["int"], Fact::Int(12));
    assert_eq!(m["negative"], Fact::Int(-3));
    assert_eq!(m["double"], Fact::Double(1.5));
    assert_eq!(m["whole_double"], Fact::Double(2.0));
    assert_eq!(m["huge"], Fact::Double(18446744073709551615.0));
    assert_eq!(m["exp"], Fact::Double(1e300));
    assert_eq!(m["s"], Fact::String("x".into()));
    assert_eq!(m["b"], Fact::Bool(true));
    assert_eq!(m["n"], Fact::Null);
    assert_eq!(m["list"], Fact::List(vec![Fact::Int(1), Fact::String("a".into())]));
    let deep = BTreeMap::from([("deep".to_string(), Fact::Int(1))]);
    assert_eq!(m["map"], Fact::Map(BTreeMap::from([("k".to_string(), Fact::Map(deep))])));
}

#[test]
fn a_triple_nested_comprehension_over_data_is_refused_where_it_goes_over() {
    let src = "account.tags.exists(a,\n  account.tags.exists(b,\n    account.tags.exists(c, a == b && b == c)))";
    for schema in [playbook_schema(), account_schema()] {
        let e = Expression::compile(src, &schema).expect_err(src);
        // The middle one: the innermost alone is 1,000 × 8.
        assert_eq!((e.line, e.column), (2, 16), "{e}");
        assert_eq!(
            e.message,
            "expression may cost about 8,004,004,003 operations per evaluation; the limit is 1,000,000 \
             — nest fewer comprehensions"
        );
    }
    // Two over data are refused too: 1,000 × 1,000 × 4 operations.
    let e = compile_err("health.measures.exists(a, account.tags.exists(t, t == a))");
    assert_eq!((e.line, e.column), (1, 17), "{e}");
    assert!(e.message.starts_with("expression may cost about 4,004,003 "), "{e}");
    // A schema may lift the limit.
    let unlimited = playbook_schema().with_cost_limit(u64::MAX);
    let e = Expression::compile(src, &unlimited).unwrap();
    assert_eq!(e.cost(), 8_004_004_003);
    // Literal ranges count their elements.
    let e = compile("account.tags.exists(t, ['a', 'b', 'c'].exists(x, [1, 2].exists(y, t == x && y > 0)))");
    assert!(e.cost() < 100_000, "{}", e.cost());
    // Several comprehensions that add up over the limit: the costliest.
    let one = "account.tags.exists(t, t.matches('^[a-z]+-[0-9]+$'))";
    let e = compile(one);
    assert!(e.cost() > 200_000 && e.cost() < 400_000, "{}", e.cost());
    let many = format!("{one} ||\n {one} ||\n {one} ||\n {one} ||\n {one}");
    let e = compile_err(&many);
    assert_eq!((e.line, e.column), (1, 14), "{e}");
}

#[test]
fn costs_are_as_documented() {
    let schema = Schema::new().with_variable("l", Shape::Any).with_variable("s", Shape::String);
    for (src, cost) in [
        ("true", 1),
        ("s == 'x'", 3),
        ("s.startsWith('ab')", 1 + 1 + 1 + 2),
        ("s.contains('ab')", 3 + ASSUMED_STRING_CHARS),
        ("'abc'.contains('b')", 3 + 3),
        ("s.matches('a+')", 3 + ASSUMED_STRING_CHARS + 2 * PATTERN_CHAR_COST),
        ("size(s) > 1", 4 + ASSUMED_STRING_CHARS),
        ("size([1, 2]) > 1", 6),
        ("'x' in l", 3 + ASSUMED_COLLECTION_SIZE),
        ("'x' in ['x', 'y']", 5 + 2),
        ("'x' in {'x': 1}", 5),
        // 1 + range + size × (1 + body)
        ("l.exists(x, x)", 1 + 1 + ASSUMED_COLLECTION_SIZE * 2),
        ("[1, 2, 3].all(x, x > 0)", 1 + 4 + 3 * 4),
        ("[1, 2].map(x, x * 2).exists(y, y > 2)", 1 + (1 + 3 + 2 * 4) + 2 * 4),
        ("([1] + [2, 3]).exists(y, y > 2)", 1 + 6 + 3 * 4),
        ("[1, 2].map(x, x > 1, x * 2) == [4]", 1 + (1 + 3 + 2 * 7) + 2),
    ] {
        let e = Expression::compile(src, &schema).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(e.cost(), cost, "{src}");
    }
}

#[test]
fn ordinary_segments_stay_well_within_the_limit() {
    for src in [
        "account.lifecycle_stage == 'renewal' && account.days_to_renewal <= 90",
        "'vip' in account.tags",
        "account.arr >= 10000000 && account.arr_currency == 'JPY'",
        "has(account.attributes.seats) && account.attributes.seats > 100",
        "account.tags.exists(t, t.startsWith('jp-'))",
        "account.tags.all(t, t.size() <= 8)",
        "account.tags.exists_one(t, t.startsWith('jp-'))",
        "account.tags.filter(t, t.size() == 3) == ['vip']",
        "account.tags.map(t, t + '!')[0] == 'vip!'",
        "account.attributes.exists(k, k == 'sso')",
        "account.tags.exists(t, t.matches('^jp-[a-z]+$'))",
        "account.name.matches('(?i)acme') || account.name.contains('Acme')",
    ] {
        let e = Expression::compile(src, &account_schema()).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert!(e.cost() <= COST_LIMIT / 4, "{src}: {}", e.cost());
    }
}

#[test]
fn paths_are_what_the_expression_reads() {
    for (src, paths) in [
        ("health.band == 'red' && account.arr > 1000000", vec!["health.band", "account.arr"]),
        (
            "health.measures.events_30d.previous_value > 0 && \
             health.measures.events_30d.value < health.measures.events_30d.previous_value * 0.5",
            vec!["health.measures.events_30d.previous_value", "health.measures.events_30d.value"],
        ),
        (
            "event.data.new_score < 40.0 && now > event.occurred_at",
            vec!["event.data.new_score", "now", "event.occurred_at"],
        ),
        (
            "account.attributes['seats'] > 10 || has(account.attributes.sso) || account.attributes.seats < 2",
            vec!["account.attributes.seats", "account.attributes.sso"],
        ),
        ("account.attributes['go-live'] != null", vec!["account.attributes['go-live']"]),
        // A chain ends at a call or a computed index; macro variables are not paths.
        (
            "account.tags.exists(t, t.startsWith(account.region)) && account.name.size() > 3",
            vec!["account.tags", "account.region", "account.name"],
        ),
        (
            "health.measures.exists(m, health.measures[m].value > 1.0 && m != event.type)",
            vec!["health.measures", "event.type"],
        ),
        ("account.tags[0] == 'vip'", vec!["account.tags"]),
        ("[1, 2].exists(now, now > 1) && now > event.occurred_at", vec!["now", "event.occurred_at"]),
        ("true", vec![]),
    ] {
        assert_eq!(compile(src).paths(), paths, "{src}");
    }
}

#[test]
fn lookup_writes_values_as_cel_does() {
    let vip = tags(&["vip", "it's"]);
    let f = red(&vip);
    for (path, shown) in [
        ("account.arr", Some("2500000")),
        ("account.name", Some("'Acme'")),
        ("account.tags", Some("['vip', 'it\\'s']")),
        ("account.external_id", Some("''")),
        ("account.employee_count", Some("null")),
        ("account.renewal_date", Some("timestamp('2027-02-01T00:00:00Z')")),
        ("account.days_to_renewal", Some("59")),
        ("account.attributes.seats", Some("250")),
        ("account.attributes['go-live']", Some("timestamp('2024-05-01T00:00:00Z')")),
        ("account.attributes.sso", None),
        ("account.touch_mix", Some("{'high': 60, 'low': 0, 'tech': 40}")),
        ("account.touch_mix.tech", Some("40")),
        ("account.stage_days", Some("45")),
        ("health.score", Some("38.5")),
        ("health.band", Some("'red'")),
        ("health.trend_7d", Some("-12.0")),
        ("health.trend_30d", Some("null")),
        ("health.measures.events_30d.value", Some("400.0")),
        ("health.measures.events_30d", Some("{'points': 12.5, 'previous_value': 1000.0, 'value': 400.0}")),
        ("health.measures.nps.value", Some("null")),
        ("health.measures.logins", None),
        ("event.type", Some("'HealthScoreChanged'")),
        ("event.occurred_at", Some("timestamp('2026-12-04T00:00:00Z')")),
        ("event.data.new_score", Some("38.5")),
        ("event.data.old_score", Some("61")),
        ("event.data.reasons", Some("['usage', 'nps']")),
        ("now", Some("timestamp('2026-12-04T03:00:00Z')")),
        // Not a map, not a variable, not a path.
        ("account.arr.x", None),
        ("acount.arr", None),
        ("account.", None),
        ("account['arr", None),
        ("", None),
    ] {
        assert_eq!(f.lookup(path).as_deref(), shown, "{path}");
    }
    // What TestCondition shows: each path of a condition and its value.
    let e = compile("health.band == 'red' && account.attributes['go-live'] < now && account.attributes.sso");
    let read: Vec<(String, Option<String>)> = e.paths().into_iter().map(|p| (p.clone(), f.lookup(&p))).collect();
    assert_eq!(
        read,
        [
            ("health.band".to_string(), Some("'red'".to_string())),
            ("account.attributes['go-live']".to_string(), Some("timestamp('2024-05-01T00:00:00Z')".to_string())),
            ("now".to_string(), Some("timestamp('2026-12-04T03:00:00Z')".to_string())),
            ("account.attributes.sso".to_string(), None),
        ]
    );
}

#[test]
fn lookup_quotes_keys_and_writes_every_kind_of_value() {
    let weird = BTreeMap::from([
        ("a.b".to_string(), Fact::Int(1)),
        ("it's".to_string(), Fact::Int(2)),
        ("new\nline".to_string(), Fact::Int(3)),
    ]);
    let f = Facts::new()
        .with("m", Fact::Map(weird))
        .with("d", Fact::Double(f64::NAN))
        .with("i", Fact::Double(f64::NEG_INFINITY))
        .with("big", Fact::Double(1e300))
        .with("b", true)
        .with("empty", Fact::List(vec![]));
    let e = Expression::compile(
        "m['a.b'] == 1 && m['it\\'s'] == 2 && m['new\\nline'] == 3",
        &Schema::new().with_variable("m", Shape::Any),
    )
    .unwrap();
    assert_eq!(e.paths(), ["m['a.b']", "m['it\\'s']", "m['new\\nline']"]);
    for (p, v) in e.paths().iter().zip(["1", "2", "3"]) {
        assert_eq!(f.lookup(p).as_deref(), Some(v), "{p}");
    }
    assert_eq!(f.lookup("m").as_deref(), Some("{'a.b': 1, 'it\\'s': 2, 'new\\nline': 3}"));
    assert_eq!(f.lookup("d").as_deref(), Some("double('NaN')"));
    assert_eq!(f.lookup("i").as_deref(), Some("double('-Infinity')"));
    assert_eq!(f.lookup("big").as_deref(), Some("1e300"));
    assert_eq!(f.lookup("b").as_deref(), Some("true"));
    assert_eq!(f.lookup("empty").as_deref(), Some("[]"));
}
