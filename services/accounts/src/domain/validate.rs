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

/// A custom attribute name: `[a-z][a-z0-9_]{0,63}` (the kit's rule, shared
/// with Playbooks' update_account action).
pub use banso_kit::wire::attribute_name;

/// Tags: at most 50, each 1 to 64 characters; returns them trimmed, without
/// duplicates, in first-seen order.
pub fn tags(v: &mut Violations, field: &str, tags: &[String]) -> Vec<String> {
    banso_kit::wire::tags(v, field, tags, 50)
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
