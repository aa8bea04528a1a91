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
fn renewing(tags: &[String]) -> Facts<'_> {
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
fn bare() -> Facts<'static> {
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
        // New with cel 0.15.
        "bool('true') && !bool('false') && matches('jp-east', '^jp-')",
        "int(timestamp('1970-01-01T00:01:00Z')) == 60 && timestamp(60) == timestamp('1970-01-01T00:01:00Z')",
        "string(timestamp(0)) == '1970-01-01T00:00:00Z' && string(duration('1h')) == '3600s'",
        "now.getHours('Asia/Tokyo') == 12 && now.getDate('+09:00') == 15 && now.getDayOfWeek('-05:00') == 3",
        "duration('90m').getHours() == 1 && duration('90m').getMinutes() == 90",
        "duration('1.5s').getSeconds() == 1 && duration('1.5s').getMilliseconds() == 1500",
        "-0x10 == -16",
    ] {
        assert_eq!(eval(src, &f), Ok(true), "{src}");
    }
}

#[test]
fn every_checked_function_is_registered() {
    // The checker's table and the interpreter's environment must agree: each
    // form the checker accepts must evaluate.
    let sample = |name: &str, method: bool, n: usize| -> String {
        let receiver = match name {
            "contains" | "startsWith" | "endsWith" | "matches" | "size" => "'abc'",
            _ => "timestamp('2026-02-03T04:05:06Z')",
        };
        let arg = match name {
            "contains" | "startsWith" | "endsWith" | "matches" => "'a'",
            "size" | "string" | "bytes" => "'abc'",
            "bool" => "'true'",
            "max" | "min" | "double" | "int" | "uint" => "'1'",
            "duration" => "'1h'",
            "timestamp" => "'2026-02-03T04:05:06Z'",
            _ => "'Asia/Tokyo'",
        };
        let args = match (name, n) {
            ("max" | "min", _) => "1, 2, 3".to_string(),
            ("matches", 2) => "'abc', 'a'".to_string(),
            (_, n) => vec![arg; n].join(", "),
        };
        if method { format!("{receiver}.{name}({args})") } else { format!("{name}({args})") }
    };
    let mut forms = 0;
    for (name, method, n) in check::function_forms() {
        let call = sample(name, method, n);
        let src = format!("{call} == {call}");
        assert_eq!(eval(&src, &bare()), Ok(true), "{src}");
        forms += 1;
    }
    assert_eq!(forms, 37);
    // The forms the docs name besides.
    for src in ["[1, 2].contains(2) && !account.tags.contains('x')", "account.arr + 1 > account.arr"] {
        assert_eq!(eval(src, &bare()), Ok(true), "{src}");
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
    // cel-parser 0.10 panicked on each of these; they must be plain errors.
    for (src, line, column) in [("1 +", 1, 4), ("account.arr > 1 ||", 1, 19), ("'open", 1, 1), ("a\n  && )", 2, 6)] {
        let e = compile_err(src);
        assert_eq!((e.line, e.column), (line, column), "{src}: {e}");
    }
}

#[test]
fn comments_are_allowed_anywhere() {
    // cel-parser 0.10 rejected a leading comment; cel 0.15 does not.
    let t = tags(&["vip"]);
    let e = compile("// 重要顧客\n'vip' in account.tags // and nothing else\n");
    assert_eq!(e.evaluate_bool(&renewing(&t)), Ok(true));
    assert_eq!(e.source(), "// 重要顧客\n'vip' in account.tags // and nothing else\n");
    // Positions after a comment are unaffected.
    assert_eq!((compile_err("// x\naccount.nmae").line, compile_err("// x\naccount.nmae").column), (2, 9));
    // cel-parser 0.10 could not read negative hexadecimal literals; cel 0.15 can.
    assert_eq!(eval("account.arr > -0x10 && account.arr > -(0x10) && account.arr > 1 - 0x10", &renewing(&t)), Ok(true));
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
            "account.renewal_date.getMonth('Asia/Tokyo', 1) == 0",
            22,
            "getMonth() as a method takes 0 or 1 argument, not 2",
        ),
        ("has()", 1, "has() takes one field selection"),
        ("has(account.name.first)", 18, "account.name is a string and has no field first"),
        (".account.arr > 0", 2, "write account without the leading '.'"),
        ("max() == 1", 1, "max() as a function takes one or more arguments, not 0"),
        ("startsWith(account.name, 'a')", 1, "startsWith() is a method; call it as value.startsWith(…)"),
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
    // cel-interpreter 0.10's || yielded its left operand when that was
    // truthy; cel 0.15 takes only bools.
    assert_eq!(
        eval("account.name || false", &bare()),
        Err(EvalError::Failed("cannot apply || to a string and a bool".into()))
    );
}

#[test]
fn null_comparison_fails_readably() {
    let e = eval("account.renewal_date < timestamp('2027-01-01T00:00:00Z')", &bare()).unwrap_err();
    assert_eq!(
        e,
        EvalError::Failed(
            "cannot compare null with a timestamp (a field without a value is null: test it with != null first)".into()
        )
    );
    let e = eval("account.days_to_renewal <= 90", &bare()).unwrap_err();
    assert!(e.to_string().starts_with("cannot compare null with an int"), "{e}");
    // As the CEL specification has it (cel-interpreter 0.10 did not), an
    // error on either side of || is absorbed by a true other side, and of &&
    // by a false one; otherwise it is the result.
    assert_eq!(eval("account.days_to_renewal <= 90 || true", &bare()), Ok(true));
    assert_eq!(eval("true || account.days_to_renewal <= 90", &bare()), Ok(true));
    assert_eq!(eval("account.days_to_renewal <= 90 && false", &bare()), Ok(false));
    assert!(eval("account.days_to_renewal <= 90 || false", &bare()).is_err());
    assert!(eval("account.days_to_renewal <= 90 && true", &bare()).is_err());
}

#[test]
fn other_evaluation_errors_are_readable() {
    let t = tags(&[]);
    let a = renewing(&t);
    let cases = [
        ("account.attributes.plan == 'gold'", "no such key plan (test it with has() first)"),
        ("account.arr / 0 == 1", "division of int 12000000 by zero"),
        ("account.arr + 'x' == 1", "cannot add int 12000000 and string \"x\""),
        ("account.arr > 'x'", "cannot compare an int with a string"),
        ("int(account.name) == 1", "int(): string parse error: invalid digit found in string"),
        ("account.tags[5] == 'x'", "index int 5 is out of bounds"),
        ("account.tags['x'] == 1", "cannot index a list with a string"),
        ("size(account.renewal_date) > 0", "size() cannot take (a timestamp)"),
        ("account.name.startsWith(1)", "startsWith() cannot be called on a string with (an int)"),
        ("account.attributes.seats * 1.5 > 0.0", "cannot multiply int 250 and double 1.5"),
        (
            "account.arr * 9223372036854775807 > 0",
            "overflow in the multiplication of int 12000000 and int 9223372036854775807",
        ),
        ("!account.name", "cannot apply ! to a string"),
        ("account.name ? true : false", "expected a bool, got a string"),
        ("{account.name: 1, account.name: 2}.size() == 1", "map literal repeats the key string \"株式会社サンプル\""),
        ("account.renewal_date.getMonth(account.name) == 1", "timezone(): unknown time zone 株式会社サンプル"),
        // cel-interpreter 0.10 read it as a substring test.
        ("'a' in account.name", "cannot test whether a string is in a string"),
    ];
    for (src, message) in cases {
        let e = eval(src, &a).unwrap_err();
        assert_eq!(e.to_string(), message, "{src}");
    }
}

#[test]
fn macro_over_a_value_of_unknown_shape() {
    // With a variable of unknown shape the checks cannot rule out a macro over
    // a string: cel-interpreter 0.10 panicked on it (a todo!()), cel 0.15
    // fails.
    let schema = Schema::new().with_variable("x", Shape::Any);
    let e = Expression::compile("x.exists(c, true)", &schema).unwrap();
    let result = e.evaluate_bool(&Facts::new().with("x", "abc"));
    assert_eq!(result, Err(EvalError::Failed("expected an iterable, got a string".into())));
    assert!(e.evaluate_bool(&Facts::new().with("x", vec!["a"])).unwrap());
}

#[test]
fn missing_variable_is_an_evaluation_error() {
    let e = compile("now > timestamp('2020-01-01T00:00:00Z')");
    assert_eq!(e.evaluate_bool(&Facts::new()), Err(EvalError::Failed("undeclared reference to now".into())));
}

#[test]
fn limits_keep_the_interpreter_within_a_small_stack() {
    // The bracket and depth limits exist because cel's parser and interpreter
    // recurse; the deepest accepted sources must compile and run on 1 MiB.
    let worker = std::thread::Builder::new().stack_size(1 << 20).spawn(|| {
        let n = parse::MAX_NESTING;
        let brackets = format!("{}account.arr{} > 0", "(".repeat(n), ")".repeat(n));
        // account.arr is one level (a selection), each + one, > one.
        let chain = format!("account.arr{} > 0", " + 1".repeat(parse::MAX_DEPTH - 2));
        // size( is a bracket too.
        let lists = format!("size({}1{}) == 1", "[".repeat(n - 1), "]".repeat(n - 1));
        let macros: String =
            (0..n).map(|i| format!("[{i}].exists(x{i}, ")).collect::<String>() + "true" + &")".repeat(n);
        let facts = bare();
        for (src, expected) in [(brackets, false), (chain, true), (lists, true), (macros, true)] {
            assert_eq!(compile(&src).evaluate_bool(&facts), Ok(expected), "{src}");
        }
        let too_deep = format!("{}1{}", "(".repeat(n + 1), ")".repeat(n + 1));
        assert!(compile_err(&too_deep).message.starts_with("brackets nest too deeply"));
        let too_long = format!("account.arr{} > 0", " + 1".repeat(parse::MAX_DEPTH - 1));
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
fn syntax_errors_in_our_words() {
    for (src, line, column, message) in [
        ("'製造業' == x &&& y", 1, 14, "unexpected character '&'; use && for and"),
        ("1 +", 1, 4, "expected an expression, found end of expression"),
        ("a ||", 1, 5, "expected an expression, found end of expression"),
        ("x == 'open", 1, 6, "unterminated string"),
        ("x == 'a\nb'", 1, 6, "unterminated string (use ''' or \"\"\" for text over several lines)"),
        ("(a && b", 1, 8, "expected ')', found end of expression"),
        ("a = 1", 1, 3, "unexpected character '='; compare with =="),
        ("a | b", 1, 3, "unexpected character '|'; use || for or"),
        ("1 2", 1, 3, "unexpected number after a complete expression"),
        ("a\n  && )", 2, 6, "expected an expression, found ')'"),
        ("製造業", 1, 1, "unexpected character '製'"),
        ("99999999999999999999", 1, 1, "integer literal 99999999999999999999 is out of range"),
        ("18446744073709551616u", 1, 1, "unsigned integer literal 18446744073709551616u is out of range"),
        ("1e999", 1, 1, "double literal 1e999 is out of range"),
        ("'\\q'", 1, 2, "invalid escape sequence \\q"),
        ("'ok' + '\\u12'", 1, 9, "invalid escape sequence \\u12"),
        ("'\\uD800'", 1, 1, "invalid escape sequence: surrogates"),
        ("b'\\u00e9'", 1, 1, "invalid escape sequence in a bytes literal"),
        ("a.?b", 1, 2, "optional syntax (a.?b, a[?b], [?x], {?k: v}) is not supported"),
        ("a[?0]", 1, 2, "optional syntax"),
        ("[?a]", 1, 2, "optional syntax"),
        ("{?'k': a}", 1, 2, "optional syntax"),
        ("a.`b-c`", 1, 3, "escaped identifiers (`…`) are not supported"),
        ("a.", 1, 3, "expected a field or method name after '.', found end of expression"),
        ("a.1", 1, 2, "unexpected '.1' after a complete expression"),
        ("if", 1, 1, "if is a reserved word"),
        ("a ? b", 1, 6, "expected an operator or ':', found end of expression"),
        ("[1 2]", 1, 4, "expected ']' or ',', found number"),
        ("f(1,)", 1, 5, "expected an expression, found ')'"),
        ("/* no */ a", 1, 1, "expected an expression, found '/'"),
    ] {
        let e = compile_err(src);
        assert_eq!((e.line, e.column), (line, column), "{src}: {e}");
        assert!(e.message.starts_with(message), "{src}: {e}");
    }
}

/// Sources that are not CEL: those of the tests above, a fuzz-ish set, and
/// every truncation and one-character deletion of real segments.
fn malformed() -> Vec<String> {
    let mut v: Vec<String> = [
        "1 +",
        "account.arr > 1 ||",
        "'open",
        "a\n  && )",
        "account.tags.exists(t, t ==)",
        "a ||",
        "x == 'open",
        "(a && b",
        "a = 1",
        "1 2",
        "製造業",
        "99999999999999999999",
        "'\\q'",
        "Foo{a: 1}",
        "a.b.Foo{}",
        "a.?b",
        "a[?0]",
        "[?a]",
        "{?1: 2}",
        "a.`b-c`",
        "'製造業' == x &&& y",
        "Account{name: 'a'}",
        "",
        " ",
        "\n",
        "\0",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "((",
        "(()",
        "[[]",
        "{{}",
        "{:}",
        "{1:}",
        "{:1}",
        "'",
        "\"",
        "'''",
        "\"\"\"",
        "'''abc",
        "r'",
        "b'",
        "br'",
        "rb'x'",
        "'\n'",
        "1e999",
        "-1e999",
        "1e",
        "1e+",
        "0x",
        "0xg",
        "0x8000000000000000",
        "-0x8000000000000001",
        "0xFFFFFFFFFFFFFFFFFFFF",
        "18446744073709551616u",
        "9223372036854775808",
        "-9223372036854775809",
        "--9223372036854775808",
        "1u1",
        "1.5u",
        "1..2",
        "1.",
        "'\\'",
        "'\\x'",
        "'\\x4'",
        "'\\xZZ'",
        "'\\u12'",
        "'\\uD800'",
        "'\\uDFFF'",
        "'\\ud83d\\ude00'",
        "'\\U0011FFFF'",
        "'\\UFFFFFFFF'",
        "'\\400'",
        "'\\8'",
        "'\\0'",
        "b'\\uD800'",
        "b'\\u0041'",
        "b'\\400'",
        "'\\c'",
        "'\\\n'",
        ".",
        "..a",
        "a..b",
        "a.",
        "a.1",
        "a.(b)",
        "a[",
        "a[]",
        "a[1",
        "a]",
        "a(",
        "a(,)",
        "a(1,)",
        "has()",
        "has(a)",
        "has(1)",
        "a.all(1, true)",
        "a ? b",
        "a ? : c",
        "? a : b",
        "a ? b : ",
        "a : b",
        "a ?? b",
        "a?.b",
        "in",
        "a in",
        "a in in b",
        "true true",
        "a.true",
        "a.in",
        "@",
        "#",
        "a & b",
        "a | b",
        "a === b",
        "a => b",
        "!",
        "-",
        "--",
        "a++",
        "+a",
        "/",
        "//",
        "/* c */ a",
        "if",
        "namespace.x",
        "\u{FEFF}a",
        "a\u{200B}b",
        "ａ",
        "f(1)(2)",
        "[1][0][",
        "{}.a.b(",
        "timestamp(",
        "duration('",
        "'a' 'b'",
        "'''a''''",
        "Foo{",
        "Foo{a}",
        "Foo{1:1}",
        "{a:b",
        "{a:b,",
        "[1,,2]",
        "{1 2}",
        "(1,2)",
        "()",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for n in [31, 32, 33, 96, 97, 1000, 10_000] {
        for (open, close) in
            [("(", ")"), ("[", "]"), ("{1:", "}"), ("f(", ")"), ("a[", "]"), ("!(", ")"), ("[1].exists(x,", ")")]
        {
            v.push(format!("{}1{}", open.repeat(n), close.repeat(n)));
            v.push(open.repeat(n));
        }
        v.push(format!("{}a", "!".repeat(n)));
        v.push(format!("{}1", "-".repeat(n)));
        v.push(format!("a{}", "?a:a".repeat(n)));
    }
    // The longest chains that fit in 4,096 characters, alone and within 32
    // brackets: the most stack cel's parser can be made to use.
    for (open, close) in
        [("", ""), ("(", ")"), ("f(", ")"), ("[", "]"), ("{1:", "}"), ("a?a:", ""), ("a.exists(x,", ")")]
    {
        for link in [".b", "+1", "==1", ".f()"] {
            let wrap = open.len() + close.len();
            let links = (MAX_SOURCE_CHARS - 32 * wrap - 1) / link.len();
            v.push(format!("{}a{}{}", open.repeat(32), link.repeat(links), close.repeat(32)));
        }
    }
    let good = [
        "account.lifecycle_stage == 'renewal' && account.days_to_renewal <= 90",
        "has(account.attributes.seats) && account.attributes.seats > 100",
        "account.tags.exists(t, t.startsWith('jp-'))",
        "account.renewal_date != null && account.renewal_date < timestamp('2027-01-01T00:00:00Z')",
        "[1, 2, 3].map(x, x > 1, x * 10) == [20, 30] && {'k': 1}.k == 1",
        "r'\\d' == '\\\\d' && b'ab' == bytes('ab') && '''m\nl''' != \"\\u00e9\\x41\\101\"",
        "(account.arr > 0 ? account.arr_currency : 'none') == 'JPY' // c\n",
    ];
    for g in good {
        let at: Vec<usize> = g.char_indices().map(|(i, _)| i).chain([g.len()]).collect();
        for &i in &at {
            v.push(g[..i].to_string());
            v.push(g[i..].to_string());
        }
        for w in at.windows(2) {
            v.push(format!("{}{}", &g[..w[0]], &g[w[1]..]));
        }
    }
    // Token soup.
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
        "'",
        "\"",
        "`",
        "\\",
        "map",
        "all",
        "filter",
        ".?",
        "[?",
        "Foo{",
        "=",
        "&",
        "|",
        "@",
        "9999999999999999999999",
        "'\\u",
    ];
    let mut seed: u64 = 0x5eed;
    let mut next = || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(seed >> 33).unwrap()
    };
    for _ in 0..10_000 {
        let n = 1 + next() % 12;
        v.push((0..n).map(|_| pieces[next() % pieces.len()]).collect());
    }
    v
}

#[test]
fn cel_parser_never_panics_and_places_its_errors() {
    // cel-parser 0.10 panicked on `1 +` and overflowed the stack at a few
    // hundred brackets. cel 0.15's parser, with our nesting limit, does
    // neither. It overflows a 2 MiB stack on chains of 10,000 links
    // (`a.b.b…`, `1+1+…`), which the 4,096-character limit keeps from it, and
    // needs up to 1 MiB for the longest accepted, which compile gives it.
    let worker = std::thread::Builder::new().stack_size(1 << 20).spawn(|| {
        let mut errors = 0;
        for src in malformed() {
            let parse = || parse::parse(&src, &runtime::PLAIN).map(|_| ());
            let result = std::panic::catch_unwind(|| parse::on_parser_stack(&src, parse).unwrap());
            let Ok(result) = result else {
                return Err(format!("cel's parser panicked on {src:?}"));
            };
            let compiled = std::panic::catch_unwind(|| Expression::compile(&src, &account_schema()).map(|_| ()));
            let Ok(compiled) = compiled else {
                return Err(format!("compile panicked on {src:?}"));
            };
            for e in [result.err(), compiled.err()].into_iter().flatten() {
                errors += 1;
                let lines: Vec<&str> = src.split('\n').collect();
                let line = usize::try_from(e.line).unwrap();
                let within = line >= 1
                    && line <= lines.len()
                    && e.column >= 1
                    && usize::try_from(e.column).unwrap() <= lines[line - 1].chars().count() + 1;
                if !within {
                    return Err(format!("{src:?}: {e} is outside the source"));
                }
            }
        }
        Ok(errors)
    });
    let errors = worker.unwrap().join().unwrap().unwrap();
    assert!(errors > 15_000, "only {errors} errors");
}

#[test]
fn nesting_limits_are_exactly_as_documented() {
    // 32 nested comprehensions over data cost far more than COST_LIMIT;
    // the nesting limits hold without it.
    let schema = Schema::new().with_variable("a", Shape::Any).with_cost_limit(u64::MAX);
    let n = parse::MAX_NESTING;
    for (open, close) in [("(", ")"), ("[", "]"), ("int(", ")"), ("a[", "]"), ("{1: ", "}"), ("a.exists(x, ", ")")] {
        let at = format!("{}1{}", open.repeat(n), close.repeat(n));
        assert!(Expression::compile(&at, &schema).is_ok(), "{at}");
        let over = format!("{}1{}", open.repeat(n + 1), close.repeat(n + 1));
        let e = Expression::compile(&over, &schema).expect_err(&over);
        assert_eq!(e.message, "brackets nest too deeply (more than 32 levels)", "{over}");
    }
    let d = parse::MAX_DEPTH;
    for (start, link) in [("1", " + 1"), ("a", ".b"), ("a", "[0]"), ("a", ".f()"), ("1", " == 1")] {
        let at = format!("{start}{}", link.repeat(d));
        let result = Expression::compile(&at, &schema);
        assert!(!result.as_ref().is_err_and(|e| e.message.contains("nested")), "{at}: {result:?}");
        let over = format!("{start}{}", link.repeat(d + 1));
        let e = Expression::compile(&over, &schema).expect_err(&over);
        assert_eq!(e.message, "expression is nested too deeply (more than 100 levels)", "{over}");
    }
    // A chain of || (or &&) is one level, however long.
    let e = Expression::compile(&format!("a{}", " || a".repeat(800)), &schema);
    assert!(e.is_ok(), "{e:?}");
}

#[test]
fn what_fails_on_every_account_fails_on_save() {
    // An expression that saves must evaluate: literal arguments are checked
    // by evaluating them now, with the interpreter that will run them.
    for (src, line, column, message) in [
        (
            "account.renewal_date != null &&\n  now - duration('30d') > account.renewal_date",
            2,
            18,
            "invalid duration \"30d\": write a number and a unit, h, m, s, ms, us or ns, as in '90m' (there is no unit for days: 30 days is '720h')",
        ),
        ("duration('x') > duration('1h')", 1, 10, "invalid duration \"x\": write a number and a unit"),
        (
            "account.renewal_date < timestamp('2027-01-01')",
            1,
            34,
            "invalid timestamp \"2027-01-01\": write RFC 3339, as in '2027-01-01T00:00:00Z' (premature end of input)",
        ),
        (
            "timestamp('2026-13-01T00:00:00Z') < now",
            1,
            11,
            "invalid timestamp \"2026-13-01T00:00:00Z\": write RFC 3339",
        ),
        (
            "timestamp(253402300800) < now",
            1,
            11,
            "invalid argument 253402300800 of timestamp(): timestamp out of range",
        ),
        ("account.name.matches('(')", 1, 22, "invalid pattern \"(\": unclosed group"),
        ("matches(account.name, 'jp-[')", 1, 23, "invalid pattern \"jp-[\": unclosed character class"),
        (
            "account.renewal_date.getMonth('Asia/Tokio') == 1",
            1,
            31,
            "invalid time zone \"Asia/Tokio\": unknown time zone Asia/Tokio; write an IANA name, as in 'Asia/Tokyo', or an offset, as in '+09:00'",
        ),
        ("now.getHours('+25:00') == 1", 1, 14, "invalid time zone \"+25:00\": timezone offset hours out of range"),
        ("int('x') == account.arr", 1, 5, "invalid argument \"x\" of int(): string parse error"),
        ("uint(-1) == 1u", 1, 7, "invalid argument -1 of uint(): unsigned integer overflow"),
        ("int(1e100) == 1", 1, 5, "invalid argument 1e100 of int(): integer overflow"),
        ("bool('maybe')", 1, 6, "invalid argument \"maybe\" of bool()"),
        ("string(b'\\xff') == account.name", 1, 8, "invalid argument of string(): invalid UTF-8"),
        ("max(1, 'a') == account.arr", 1, 1, "max() always fails here: cannot compare int 1 with string \"a\""),
        // Operators and literals of lists and maps too.
        ("account.arr / 0 == 1 || 1 / 0 == 1", 1, 27, "this always fails: division of int 1 by zero"),
        ("1 < 2 < 3", 1, 7, "this always fails: cannot compare a bool with an int"),
        ("[1, 2][5] == account.arr", 1, 7, "this always fails: index int 5 is out of bounds"),
        ("{'a': 1}.b == account.arr", 1, 9, "this always fails: no such key b"),
        ("{'a': 1, 'a': 2}.size() == 1", 1, 1, "this always fails: map literal repeats the key string \"a\""),
        ("9223372036854775807 + 1 > account.arr", 1, 21, "this always fails: overflow in the addition"),
        // Wherever it stands: on the right of ||, inside a macro.
        ("account.arr > 0 || duration('30d') > duration('1h')", 1, 29, "invalid duration \"30d\""),
        ("account.tags.exists(t, t == string(duration('1d')))", 1, 45, "invalid duration \"1d\""),
    ] {
        let e = compile_err(src);
        assert_eq!((e.line, e.column), (line, column), "{src}: {e}");
        assert!(e.message.starts_with(message), "{src}: {e}");
    }
    // What evaluates is fine, and what depends on the account is left to
    // evaluation.
    let t = tags(&["vip"]);
    for src in [
        "now - duration('720h') < account.renewal_date && duration('1h') + duration('30m') == duration('90m')",
        "account.name.matches('^株式') && account.renewal_date.getMonth('Asia/Tokyo') == 2",
        "timestamp('2027-01-01T00:00:00+09:00') > now && [1, 2][1] == 2 && {'a': 1}.a == 1",
    ] {
        assert_eq!(eval(src, &renewing(&t)), Ok(true), "{src}");
    }
    compile("timestamp(account.name) < now && account.renewal_date.getMonth(account.region) == 2");
}

#[test]
fn a_pattern_read_from_an_account_fails_on_one_line() {
    let schema = Schema::new().with_variable("s", Shape::String).with_variable("p", Shape::String);
    let e = Expression::compile("s.matches(p)", &schema).unwrap();
    let result = e.evaluate_bool(&Facts::new().with("s", "a").with("p", "("));
    let Err(EvalError::Failed(message)) = result else { panic!("{result:?}") };
    assert!(message.starts_with("matches(): '(' not a valid regex: ") && !message.contains('\n'), "{message}");
    assert!(message.ends_with("error: unclosed group"), "{message}");
}
