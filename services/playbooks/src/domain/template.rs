//! Title, description and message templates: text with `{{placeholder}}`s
//! filled from the firing. Placeholders are checked when a playbook is
//! saved; an unknown one is a field violation, never an empty hole later.

use std::collections::BTreeMap;

/// Every placeholder a template may use (docs/playbooks.md).
pub(crate) const PLACEHOLDERS: &[&str] = &[
    "account.id",
    "account.name",
    "account.external_id",
    "account.owner_id",
    "account.lifecycle_stage",
    "account.touch_model",
    "account.arr",
    "account.arr_currency",
    "account.renewal_date",
    "account.days_to_renewal",
    "account.industry",
    "account.region",
    "account.plan_tier",
    "health.score",
    "health.band",
    "health.trend_7d",
    "health.trend_30d",
    "event.type",
    "event.id",
    "playbook.name",
    "trigger.kind",
    "today",
];

/// The pieces of a template: text and placeholders.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(&'a str),
    Hole(&'a str),
}

fn pieces(t: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find("{{") {
        out.push(Piece::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            let col = t.len() - rest.len() + open;
            return Err(format!("has an unclosed {{{{ at character {}", t[..col].chars().count() + 1));
        };
        out.push(Piece::Hole(after[..close].trim()));
        rest = &after[close + 2..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// Every problem of a template: an unclosed `{{`, unknown placeholders.
pub(crate) fn check(t: &str) -> Result<(), String> {
    let unknown: Vec<&str> = pieces(t)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Hole(h) if !PLACEHOLDERS.contains(&h) => Some(h),
            _ => None,
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "has unknown placeholder{} {}; known: {}",
            if unknown.len() > 1 { "s" } else { "" },
            unknown.iter().map(|u| banso_kit::shown(&format!("{{{{{u}}}}}"))).collect::<Vec<_>>().join(", "),
            PLACEHOLDERS.join(", ")
        ))
    }
}

/// Fills a template; a placeholder with no value is left empty.
pub(crate) fn render(t: &str, values: &BTreeMap<&'static str, String>) -> String {
    match pieces(t) {
        Ok(ps) => ps
            .into_iter()
            .map(|p| match p {
                Piece::Text(s) => s.to_string(),
                Piece::Hole(h) => values.get(h).cloned().unwrap_or_default(),
            })
            .collect(),
        // Checked on save; a template that does not parse is shown as written.
        Err(_) => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_known_placeholders_and_refuses_unknown_ones() {
        let mut v = BTreeMap::new();
        v.insert("account.name", "Acme".to_string());
        v.insert("health.score", "31.5".to_string());
        assert_eq!(render("{{ account.name }} fell to {{health.score}}", &v), "Acme fell to 31.5");
        assert_eq!(render("no holes", &v), "no holes");
        assert!(check("{{account.name}} {{health.band}}").is_ok());
        let e = check("{{account.nme}} and {{x}}").unwrap_err();
        assert!(e.starts_with("has unknown placeholders \"{{account.nme}}\", \"{{x}}\""), "{e}");
        assert_eq!(check("ab {{account.name").unwrap_err(), "has an unclosed {{ at character 4");
    }
}
