use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use super::*;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 3, 0, 0).unwrap()
}

fn compile(src: &str) -> Expression {
    Expression::compile(src, &account_schema()).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn compile_err(src: &str) -> CompileError {
    Expression::compile(src, &account_schema()).expect_err(src)
}

fn eval(src: &str, facts: &Facts) -> Result<bool, EvalError> {
    compile(src).evaluate_bool(facts)
}

/// A Japanese manufacturer up for renewal in 45 days.
fn renewing(tags: &[String]) -> Facts {
    let mut attributes = BTreeMap::new();
    attributes.insert("seats".to_string(), Fact::Int(250));
    attributes.insert("sso".to_string(), Fact::Bool(true));
    attributes.insert("go_live".to_string(), Fact::Date(date(2024, 5, 1)));
    AccountFacts {
        name: "株式会社サンプル",
        external_id: Some("crm-42"),
        industry: "製造業",
        employee_count: Some(1200),
        revenue_band: "100M-1B",
        region: "jp-east",
        plan_tier: "enterprise",
        lifecycle_stage: "renewal",
        touch_model: "high",
        owner_id: "u-7",
        arr: 12_000_000,
        arr_currency: "JPY",
        contract_start_date: Some(date(2025, 3, 1)),
        renewal_date: Some(date(2026, 3, 1)),
        tags,
        attributes,
        today: date(2026, 1, 15),
    }
    .into_facts(now())
}

/// A small onboarding account with almost nothing set.
fn bare() -> Facts {
    AccountFacts {
        name: "Tiny",
        lifecycle_stage: "onboarding",
        touch_model: "tech",
        today: date(2026, 1, 15),
        ..Default::default()
    }
    .into_facts(now())
}

fn tags(t: &[&str]) -> Vec<String> {
    t.iter().map(|s| s.to_string()).collect()
}

#[test]
fn typical_segments_evaluate() {
    let vip = tags(&["vip", "jp-tokyo"]);
    let a = renewing(&vip);
    let b = bare();
    for (src, on_a, on_b) in [
        ("account.lifecycle_stage == 'renewal' && account.days_to_renewal <= 90", true, false),
        ("'vip' in account.tags", true, false),
        ("account.arr >= 10000000 && account.arr_currency == 'JPY'", true, false),
        ("account.industry == '製造業'", true, false),
        ("has(account.attributes.seats) && account.attributes.seats > 100", true, false),
        ("account.tags.exists(t, t.startsWith('jp-'))", true, false),
        ("account.tags.all(t, t.size() <= 8)", true, true),
        ("account.touch_model == 'tech' || account.employee_count == null", false, true),
        ("account.external_id == '' && account.arr == 0 && account.arr_currency == ''", false, true),
        ("account.renewal_date == null", false, true),
        ("account.renewal_date != null && account.renewal_date < timestamp('2027-01-01T00:00:00Z')", true, false),
        ("has(account.attributes.go_live) && account.attributes.go_live < now - duration('8760h')", true, false),
        ("'sso' in account.attributes && account.attributes.sso", true, false),
    ] {
        assert_eq!(eval(src, &a).unwrap(), on_a, "{src} on a");
        assert_eq!(eval(src, &b).unwrap(), on_b, "{src} on b");
    }
    // Without the null guard the account without a renewal date is an error.
    let src = "account.renewal_date < timestamp('2027-01-01T00:00:00Z')";
    assert!(eval(src, &a).unwrap());
    assert!(matches!(eval(src, &b), Err(EvalError::Failed(_))));
}

#[test]
fn account_facts_follow_the_documented_shape() {
    let t = tags(&["vip"]);
    let a = renewing(&t);
    for src in [
        "account.days_to_renewal == 45",
        "account.renewal_date == timestamp('2026-03-01T00:00:00Z')",
        "account.contract_start_date == timestamp('2025-03-01T00:00:00Z')",
        "account.attributes.go_live == timestamp('2024-05-01T00:00:00Z')",
        "account.employee_count == 1200",
        "account.external_id == 'crm-42'",
        "now == timestamp('2026-01-15T03:00:00Z')",
        "size(account.tags) == 1 && size(account.attributes) == 3",
    ] {
        assert!(eval(src, &a).unwrap(), "{src}");
    }
    let past = AccountFacts { renewal_date: Some(date(2026, 1, 10)), today: date(2026, 1, 15), ..Default::default() }
        .into_facts(now());
    assert!(eval("account.days_to_renewal == -5", &past).unwrap());
    let b = bare();
    for src in [
        "account.days_to_renewal == null",
        "account.employee_count == null",
        "account.contract_start_date == null",
        "account.external_id == ''",
        "account.tags == [] && account.attributes == {}",
    ] {
        assert!(eval(src, &b).unwrap(), "{src}");
    }
}

#[test]
fn functions_and_macros_that_work() {
    let t = tags(&["vip", "jp-tokyo", "beta"]);
    let a = renewing(&t);
    for src in [
        // strings
        "account.name.startsWith('株式会社')",
        "account.region.endsWith('-east')",
        "account.name.contains('サンプル')",
        "account.plan_tier.matches('^ent.*e$')",
        "account.region.matches('jp-(east|west)')",
        "size(account.industry) == 3 && account.industry.size() == 3",
        "account.region + '/' + account.plan_tier == 'jp-east/enterprise'",
        // lists and maps
        "size(account.tags) == 3",
        "account.tags.contains('beta')",
        "account.tags.exists_one(t, t.startsWith('jp-'))",
        "account.tags.filter(t, t.size() == 3) == ['vip']",
        "account.tags.map(t, t + '!')[0] == 'vip!'",
        "account.attributes.exists(k, k == 'sso')",
        "account.tags[1] == 'jp-tokyo'",
        "account.attributes['seats'] == 250",
        "account.attributes['missing'] == null",
        "[1, 2, 3].all(x, x > 0) && {'a': 1}.a == 1",
        // numbers and conversions
        "account.arr / 100 == 120000 && account.arr % 7 == 5",
        "double(account.attributes.seats) / 2.0 == 125.0",
        "int('42') == 42 && string(42) == '42' && uint(3) == 3u",
        "max(1, 5, 3) == 5 && min([4, 2]) == 2",
        "1 == 1.0",
        // timestamps and durations
        "account.renewal_date.getFullYear() == 2026",
        "account.renewal_date.getMonth() == 2",
        "account.renewal_date.getDayOfMonth() == 0 && account.renewal_date.getDate() == 1",
        "account.renewal_date.getDayOfWeek() == 0",
        "now.getHours() == 3",
        "account.renewal_date - now < duration('1080h')",
        "now + duration('24h') > now",
        "timestamp('2026-03-01T09:00:00+09:00') == account.renewal_date",
        // conditional
        "(account.arr > 0 ? account.arr_currency : 'none') == 'JPY'",
    ] {
        assert_eq!(eval(src, &a), Ok(true), "{src}");
    }
}

#[test]
fn the_rest_of_the_documented_list() {
    // Everything docs/cel.md lists as working and the tests above do not use.
    let f = bare();
    for src in [
        "!false && !(1 > 2)",
        "(1 < 2 ? 'a' : 'b') == 'a'",
        "[1, 2, 3].existsOne(x, x == 2)",
        "[1, 2, 3].map(x, x > 1, x * 10) == [20, 30]",
        "[1, 2] + [3] == [1, 2, 3] && [1, 2].contains(2)",
        "{'k': 1}.k == 1 && 'k' in {'k': 1}",
        "'''multi\nline''' == 'multi\\nline' && \"\"\"x\"\"\" == \"x\"",
        "r'\\d' == '\\\\d' && b'ab' == bytes('ab')",
        "uint('7') == 7u && double('1.5') == 1.5 && int(2.9) == 2 && string(1.5) == '1.5'",
        "timestamp('2026-02-03T04:05:06.789Z').getDayOfYear() == 33",
        "timestamp('2026-02-03T04:05:06.789Z').getMinutes() == 5",
        "timestamp('2026-02-03T04:05:06.789Z').getSeconds() == 6",
        "timestamp('2026-02-03T04:05:06.789Z').getMilliseconds() == 789",
        "duration('1h30m') == duration('90m') && duration('1.5s') == duration('1500ms')",
        "now - duration('24h') < now && now - timestamp('2026-01-14T03:00:00Z') == duration('24h')",
        "size({'a': 1, 'b': 2}) == 2 && size(b'abc') == 3",
        "-account.arr == 0 && 7 % 3 == 1 && 7 / 2 == 3 && 7.0 / 2.0 == 3.5",
    ] {
        assert_eq!(eval(src, &f), Ok(true), "{src}");
    }
}

#[test]
fn every_checked_function_is_registered() {
    // The checker's table and the interpreter's context must agree: calling
    // each with no arguments may fail, but never as an unknown name.
    for name in check::function_names() {
        let program = cel_interpreter::Program::compile(&format!("{name}()")).unwrap();
        let result = program.execute(&runtime::ROOT.new_inner_scope());
        if let Err(cel_interpreter::ExecutionError::UndeclaredReference(n)) = result {
            panic!("{n} is checked but not registered");
        }
    }
}

#[test]
fn syntax_error_on_line_two() {
    let e = compile_err("account.lifecycle_stage == 'renewal' &&\n  account.tags.exists(t, t ==)");
    assert_eq!((e.line, e.column), (2, 30), "{e}");
    assert_eq!(e.message, "expected an expression, found ')'");
    assert_eq!(e.to_string(), "line 2, column 30: expected an expression, found ')'");

    let e = compile_err("account.arr > 0 ||\n  account.arr_currency == 'JPY' &&");
    assert_eq!((e.line, e.column), (2, 35), "{e}");
    assert_eq!(e.message, "expected an expression, found end of expression");
}

#[test]
fn syntax_errors_cel_parser_would_panic_on() {
    // cel-parser 0.10 panics on each of these; they must be plain errors.
    for (src, line, column) in [("1 +", 1, 4), ("account.arr > 1 ||", 1, 19), ("'open", 1, 1), ("a\n  && )", 2, 6)] {
        let e = compile_err(src);
        assert_eq!((e.line, e.column), (line, column), "{src}: {e}");
    }
}

#[test]
fn comments_are_allowed_anywhere() {
    // cel-parser 0.10 rejects a leading comment; compile blanks comments out.
    let t = tags(&["vip"]);
    let e = compile("// 重要顧客\n'vip' in account.tags // and nothing else\n");
    assert_eq!(e.evaluate_bool(&renewing(&t)), Ok(true));
    assert_eq!(e.source(), "// 重要顧客\n'vip' in account.tags // and nothing else\n");
    // Positions after a comment are unaffected.
    assert_eq!((compile_err("// x\naccount.nmae").line, compile_err("// x\naccount.nmae").column), (2, 9));
    // cel-parser cannot read negative hexadecimal literals.
    assert!(compile_err("account.arr > -0x10").message.starts_with("negative hexadecimal literals"));
    compile("account.arr > -(0x10) && account.arr > 1 - 0x10");
}

#[test]
fn unknown_variable() {
    let e = compile_err("account.arr > 0 && acount.name == 'x'");
    assert_eq!((e.line, e.column), (1, 20));
    assert_eq!(e.message, "unknown variable acount; known: account, now");
    // Macro variables are in scope only inside the macro.
    assert!(Expression::compile("account.tags.exists(t, t == 'x')", &account_schema()).is_ok());
    let e = compile_err("account.tags.exists(t, t == 'x') || t == 'y'");
    assert_eq!((e.line, e.column, e.message.as_str()), (1, 37, "unknown variable t; known: account, now"));
}

#[test]
fn unknown_account_field() {
    let e = compile_err("account.name == 'a' ||\n  account.nmae == 'b'");
    assert_eq!((e.line, e.column), (2, 11), "{e}");
    assert!(e.message.starts_with("unknown field nmae of account; known: arr, arr_currency, attributes,"), "{e}");
    // Index syntax, has() and method receivers are checked too.
    assert_eq!(
        compile_err("account['regoin'] == 'x'").message.split(';').next(),
        Some("unknown field regoin of account")
    );
    assert_eq!(compile_err("has(account.tag)").column, 13);
    assert_eq!(compile_err("account.nmae.startsWith('a')").column, 9);
    // Custom attributes are an open map.
    compile(
        "account.attributes.anything_at_all == 1 && has(account.attributes.x) && account.attributes['with-dash'] == 2",
    );
}

#[test]
fn empty_and_over_long_sources() {
    for src in ["", "   \n\t "] {
        let e = compile_err(src);
        assert_eq!((e.line, e.column, e.message.as_str()), (1, 1, "expression is empty"));
    }
    // 4,096 characters (not bytes) is the limit.
    let at_limit = format!("'{}' == account.name", "製".repeat(MAX_SOURCE_CHARS - 18));
    assert_eq!(at_limit.chars().count(), MAX_SOURCE_CHARS);
    compile(&at_limit);
    let over = format!("account.name == 'x' ||\n{}", "account.name == 'y' || ".repeat(200));
    let e = compile_err(&over);
    assert_eq!(e.line, 2);
    assert_eq!(e.column, u32::try_from(MAX_SOURCE_CHARS - 23 + 1).unwrap());
    assert_eq!(e.message, format!("expression is {} characters long; the limit is 4096", over.chars().count()));
}

#[test]
fn other_mistakes_caught_on_save() {
    for (src, column, message) in [
        ("account.name.lowerAscii() == 'a'", 14, "unknown function lowerAscii; known: contains,"),
        ("account.name.exists(c, c == 'a')", 14, "exists() needs a list or a map, but account.name is a string"),
        (
            "account.attributes.plan.all(c, true)",
            25,
            "all() needs a list or a map, but account.attributes.plan is a scalar",
        ),
        ("account.tags.exists(t)", 14, "exists() is called on a list or map"),
        ("account.tags.exists('t', true)", 21, "the first argument of exists() must be a variable name"),
        (
            "account.renewal_date.getMonth('Asia/Tokyo') == 0",
            22,
            "getMonth() takes no arguments: time zones are not supported",
        ),
        ("account.name.startsWith() ", 14, "startsWith() as a method takes 1 argument, not 0"),
        ("'1h'.duration() == now", 6, "duration() is not a method"),
        ("has(account.attributes['x'])", 1, "has() takes one field selection"),
        ("account.name.first == 'a'", 14, "account.name is a string and has no field first"),
        ("account.tags.first == 'a'", 14, "account.tags is a list and has no field first"),
        ("account.arr.exists(x, true)", 13, "exists() needs a list or a map, but account.arr is an int"),
        ("1.exists(x, true)", 3, "exists() needs a list or a map, but this value is an int"),
        ("Account{name: 'a'}", 1, "message construction (Type{…}) is not supported"),
        ("account.attributes.`my-key`", 20, "escaped identifiers (`…`) are not supported"),
    ] {
        let e = compile_err(src);
        assert_eq!(e.column, column, "{src}: {e}");
        assert!(e.message.starts_with(message), "{src}: {e}");
    }
}

#[test]
fn non_bool_result() {
    let e = eval("account.name", &bare()).unwrap_err();
    assert_eq!(e, EvalError::NotABool("string".into()));
    assert_eq!(e.to_string(), "the expression gave a string, not a bool");
    assert_eq!(eval("account.employee_count", &bare()), Err(EvalError::NotABool("null".into())));
    assert_eq!(eval("account.arr", &bare()).unwrap_err().to_string(), "the expression gave an int, not a bool");
    // cel-interpreter's || yields its left operand when that is truthy.
    assert_eq!(eval("account.name || false", &bare()), Err(EvalError::NotABool("string".into())));
}

#[test]
fn null_comparison_fails_readably() {
    let e = eval("account.renewal_date < timestamp('2027-01-01T00:00:00Z')", &bare()).unwrap_err();
    assert_eq!(
        e,
        EvalError::Failed(
            "cannot compare null with timestamp 2027-01-01T00:00:00Z (a field without a value is null: test it with != null first)"
                .into()
        )
    );
    let e = eval("account.days_to_renewal <= 90", &bare()).unwrap_err();
    assert!(e.to_string().starts_with("cannot compare null with int 90"), "{e}");
    // An error on the left of || is not absorbed by a true right side.
    assert!(eval("account.days_to_renewal <= 90 || true", &bare()).is_err());
    assert_eq!(eval("true || account.days_to_renewal <= 90", &bare()), Ok(true));
}

#[test]
fn other_evaluation_errors_are_readable() {
    let t = tags(&[]);
    let a = renewing(&t);
    let cases = [
        ("account.attributes.plan == 'gold'", "no such key plan (test it with has() first)"),
        ("account.arr / 0 == 1", "division of int 12000000 by zero"),
        ("account.arr + 'x' == 1", "cannot add int 12000000 and string \"x\""),
        ("account.arr > 'x'", "cannot compare int 12000000 with string \"x\""),
        ("int(account.name) == 1", "int(): string parse error: invalid digit found in string"),
        ("timestamp('2026-13-01') < now", "timestamp(): "),
        ("account.name.matches('(') ", "matches(): '(' not a valid regex:"),
    ];
    for (src, message) in cases {
        let e = eval(src, &a).unwrap_err();
        assert!(e.to_string().starts_with(message), "{src}: {e}");
    }
}

#[test]
fn interpreter_panics_become_errors() {
    // With a variable of unknown shape the checks cannot rule out a macro over
    // a string, on which cel-interpreter 0.10 hits a todo!().
    let schema = Schema::new().with_variable("x", Shape::Any);
    let e = Expression::compile("x.exists(c, true)", &schema).unwrap();
    let result = e.evaluate_bool(&Facts::new().with("x", "abc"));
    let Err(EvalError::Failed(message)) = result else { panic!("{result:?}") };
    assert!(message.starts_with("the interpreter cannot evaluate this expression on these values"), "{message}");
    assert!(e.evaluate_bool(&Facts::new().with("x", vec!["a"])).unwrap());
}

#[test]
fn missing_variable_is_an_evaluation_error() {
    let e = compile("now > timestamp('2020-01-01T00:00:00Z')");
    assert_eq!(e.evaluate_bool(&Facts::new()), Err(EvalError::Failed("undeclared reference to now".into())));
}

#[test]
fn limits_keep_the_interpreter_within_a_small_stack() {
    // The bracket and depth limits exist because cel-parser recurses ~10 KiB
    // per bracket level; the deepest accepted sources must run on 1 MiB.
    let worker = std::thread::Builder::new().stack_size(1 << 20).spawn(|| {
        let n = syntax::MAX_NESTING;
        let brackets = format!("{}account.arr{} > 0", "(".repeat(n), ")".repeat(n));
        // account.arr is one level (a selection), each + one, > one.
        let chain = format!("account.arr{} > 0", " + 1".repeat(syntax::MAX_DEPTH - 2));
        // size( is a bracket too.
        let lists = format!("size({}1{}) == 1", "[".repeat(n - 1), "]".repeat(n - 1));
        let facts = bare();
        for (src, expected) in [(brackets, false), (chain, true), (lists, true)] {
            assert_eq!(compile(&src).evaluate_bool(&facts), Ok(expected), "{src}");
        }
        let too_deep = format!("{}1{}", "(".repeat(n + 1), ")".repeat(n + 1));
        assert!(compile_err(&too_deep).message.starts_with("brackets nest too deeply"));
        let too_long = format!("account.arr{} > 0", " + 1".repeat(syntax::MAX_DEPTH - 1));
        assert!(compile_err(&too_long).message.starts_with("expression is nested too deeply"));
    });
    worker.unwrap().join().unwrap();
}

const _: fn() = || {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<Expression>();
    assert_send_sync_clone::<Facts>();
};

#[test]
fn one_expression_from_four_threads_matches_sequential() {
    let expr = compile(
        "account.lifecycle_stage == 'renewal' && account.days_to_renewal != null && account.days_to_renewal <= 90 \
         && (account.tags.exists(t, t.startsWith('jp-')) || account.arr >= 5000000)",
    );
    let stages = ["onboarding", "adoption", "expansion", "renewal", "churned"];
    let tag_sets = [tags(&[]), tags(&["vip"]), tags(&["jp-osaka", "beta"])];
    let facts: Vec<Facts> = (0..10_000i64)
        .map(|i| {
            AccountFacts {
                name: "n",
                lifecycle_stage: stages[(i % 5) as usize],
                arr: i * 1_000,
                tags: &tag_sets[(i % 3) as usize],
                renewal_date: (i % 7 != 0).then(|| date(2026, 1, 1) + chrono::Days::new((i % 200) as u64)),
                today: date(2026, 1, 15),
                ..Default::default()
            }
            .into_facts(now())
        })
        .collect();
    let sequential: Vec<Result<bool, EvalError>> = facts.iter().map(|f| expr.evaluate_bool(f)).collect();
    assert!(sequential.iter().any(|r| r == &Ok(true)) && sequential.iter().any(|r| r == &Ok(false)));

    let chunks: Vec<&[Facts]> = facts.chunks(facts.len() / 4).collect();
    let parallel: Vec<Result<bool, EvalError>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                let expr = expr.clone();
                s.spawn(move || chunk.iter().map(|f| expr.evaluate_bool(f)).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(parallel, sequential);
}

#[test]
fn what_our_parser_accepts_cel_parser_compiles() {
    // Differential check on random token soup: a source our front end accepts
    // must reach cel-parser without an error or a panic, or positions and
    // messages would come from cel-parser (or nowhere).
    let pieces = [
        "a",
        "b.c",
        ".",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        "?",
        "!",
        "-",
        "+",
        "*",
        "/",
        "%",
        "==",
        "!=",
        "<",
        "<=",
        "&&",
        "||",
        " in ",
        "1",
        "2.5",
        "3u",
        "0x1F",
        "'s'",
        "\"t\"",
        "r'x'",
        "b'y'",
        "true",
        "null",
        "has",
        "exists",
        "x",
        "size",
        " ",
        "\n",
        "//c\n",
        "'''m\nl'''",
        "1e3",
        ".5",
        "u",
        "e",
        "'製'",
    ];
    let mut seed: u64 = 0x5eed;
    let mut next = || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(seed >> 33).unwrap()
    };
    let mut accepted = 0;
    for _ in 0..20_000 {
        let n = 1 + next() % 8;
        let src: String = (0..n).map(|_| pieces[next() % pieces.len()]).collect();
        if syntax::parse(&src).is_ok() {
            accepted += 1;
            let theirs = interpreter_parse(&src);
            assert!(theirs.is_ok(), "{src:?}: {:?}", theirs.err());
        }
    }
    assert!(accepted > 1_000, "only {accepted} accepted");
}
