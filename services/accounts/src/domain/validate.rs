//! Field rules of the Accounts resources beyond the kit's (`banso_kit::wire`:
//! ids, times, dates, text lengths in characters).

use banso_kit::{Violations, shown};

/// A plausible e-mail address: one `@`, a local part, a domain with a dot,
/// no spaces; at most 254 characters (RFC 5321).
pub fn email(v: &mut Violations, field: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    let bad = || format!("{} is not an e-mail address", shown(value));
    if value.chars().count() > 254 {
        v.add(field, "must be at most 254 characters");
        return;
    }
    let Some((local, domain)) = value.split_once('@') else {
        v.add(field, bad());
        return;
    };
    let ok = !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        v.add(field, bad());
    }
}

/// An ISO 4217 currency with a defined minor unit; returns its exponent.
pub fn currency(v: &mut Violations, field: &str, code: &str) -> Option<u16> {
    if code.is_empty() {
        v.add(field, "is required");
        return None;
    }
    match iso_currency::Currency::from_code(code).and_then(|c| c.exponent()) {
        Some(e) => Some(e),
        None => {
            v.add(
                field,
                format!("{} is not an ISO 4217 currency code with a minor unit (e.g. JPY, USD, EUR)", shown(code)),
            );
            None
        }
    }
}

/// A custom attribute name: `[a-z][a-z0-9_]{0,63}`, so it can be named in
/// CEL expressions (segments, playbook conditions).
pub fn attribute_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Tags: at most 50, each 1 to 64 characters; returns them trimmed, without
/// duplicates, in first-seen order.
pub fn tags(v: &mut Violations, field: &str, tags: &[String]) -> Vec<String> {
    if tags.len() > 50 {
        v.add(field, format!("at most 50 tags, got {}", tags.len()));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let t = t.trim();
        let n = t.chars().count();
        if n == 0 || n > 64 {
            v.add(format!("{field}[{i}]"), format!("must be 1 to 64 characters, got {n}"));
        } else if t.chars().any(char::is_control) {
            v.add(format!("{field}[{i}]"), "must not contain control characters");
        } else if !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violations(f: impl FnOnce(&mut Violations)) -> usize {
        let mut v = Violations::new();
        f(&mut v);
        match v.finish() {
            Ok(()) => 0,
            Err(banso_kit::Error::InvalidArgument(vs)) => vs.len(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "taro.yamada@example.co.jp", "x+y@sub.example.com"] {
            assert_eq!(violations(|v| email(v, "email", ok)), 0, "{ok}");
        }
        for bad in ["a", "a@b", "@b.co", "a@@b.co", "a b@c.co", "a@.co", "a@b..co", "a@b.co."] {
            assert_eq!(violations(|v| email(v, "email", bad)), 1, "{bad}");
        }
    }

    #[test]
    fn currencies_and_their_exponents() {
        let mut v = Violations::new();
        assert_eq!(currency(&mut v, "c", "JPY"), Some(0));
        assert_eq!(currency(&mut v, "c", "USD"), Some(2));
        assert_eq!(currency(&mut v, "c", "KWD"), Some(3));
        assert!(v.is_empty());
        assert_eq!(currency(&mut v, "c", "usd"), None);
        assert_eq!(currency(&mut v, "c", "XAU"), None); // gold: no minor unit
        assert_eq!(currency(&mut v, "c", "ZZZ"), None);
    }

    #[test]
    fn attribute_names_and_tags() {
        assert!(attribute_name("seats"));
        assert!(attribute_name("nps_2024"));
        assert!(!attribute_name("Seats"));
        assert!(!attribute_name("1x"));
        assert!(!attribute_name(""));
        assert!(!attribute_name("座席"));
        let mut v = Violations::new();
        assert_eq!(tags(&mut v, "tags", &["vip".into(), " vip ".into(), "重要".into()]), vec!["vip", "重要"]);
        assert!(v.is_empty());
        tags(&mut v, "tags", &["".into()]);
        assert!(!v.is_empty());
    }
}
