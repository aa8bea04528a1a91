//! Touch-mix rules on the wire.

use banso_kit::{Result, Violations, etag, wire};
use banso_proto::accounts as pb;

use super::{
    accounts::{touch_mix, touch_mix_to_proto},
    convert::required,
};
use crate::{
    app::{RulesPreview, UpdateTouchMixRules},
    domain::touch_rules::{self, MAX_RULES, TouchMixRule, TouchMixRules},
};

pub(crate) fn to_proto(r: &TouchMixRules) -> pb::TouchMixRules {
    pb::TouchMixRules {
        rules: r
            .rules
            .iter()
            .map(|x| pb::TouchMixRule {
                name: x.name.clone(),
                condition: x.condition.clone(),
                touch_mix: touch_mix_to_proto(&x.touch_mix),
            })
            .collect(),
        update_time: r.update_time.map(wire::timestamp),
        etag: etag::of(r.version),
    }
}

/// The whole list, every rule checked: a name (unique), a condition that
/// compiles (with its line and column), a valid mix; at most [`MAX_RULES`].
pub(crate) fn update(r: pb::UpdateTouchMixRulesRequest) -> Result<UpdateTouchMixRules> {
    let mut v = Violations::new();
    let p = required(&mut v, "touch_mix_rules", r.touch_mix_rules.as_ref());
    let etag = p.and_then(|p| v.take(etag::parse("touch_mix_rules.etag", &p.etag)));
    let mut rules = Vec::new();
    if let Some(p) = p {
        if p.rules.len() > MAX_RULES {
            v.add("touch_mix_rules.rules", format!("at most {MAX_RULES} rules, got {}", p.rules.len()));
        }
        for (i, x) in p.rules.iter().enumerate().take(MAX_RULES + 1) {
            let at = |f: &str| format!("touch_mix_rules.rules[{i}].{f}");
            wire::required_text(&mut v, &at("name"), &x.name, 100);
            let name = x.name.trim().to_owned();
            if !name.is_empty() && rules.iter().any(|r: &TouchMixRule| r.name == name) {
                v.add(
                    at("name"),
                    format!("{} is the name of an earlier rule; names must be unique", banso_kit::shown(&name)),
                );
            }
            if x.condition.trim().is_empty() {
                v.add(at("condition"), "is required");
            } else if let Err(e) = touch_rules::compile(&x.condition) {
                v.add(at("condition"), e.to_string());
            }
            let mix = match touch_mix(&mut v, &at("touch_mix"), &x.touch_mix) {
                None => {
                    v.add(at("touch_mix"), "must hold at least one share (the shares add up to 100)");
                    Vec::new()
                }
                Some(None) => Vec::new(),
                Some(Some(mix)) => mix,
            };
            rules.push(TouchMixRule { name, condition: x.condition.clone(), touch_mix: mix });
        }
    }
    let etag = v.finish_with(etag)?;
    Ok(UpdateTouchMixRules { etag, rules })
}

/// The rule list of a preview, checked as an update's.
pub(crate) fn preview(r: pb::PreviewTouchMixRulesRequest) -> Result<Vec<TouchMixRule>> {
    let mut rules = r.touch_mix_rules;
    if let Some(r) = rules.as_mut() {
        r.etag.clear();
    }
    Ok(update(pb::UpdateTouchMixRulesRequest { touch_mix_rules: rules })?.rules)
}

pub(crate) fn preview_reply(p: RulesPreview) -> pb::PreviewTouchMixRulesResponse {
    pb::PreviewTouchMixRulesResponse {
        rules: p
            .rules
            .into_iter()
            .map(|(name, matched, changed)| pb::TouchMixRulePreview {
                name,
                accounts_matched: matched,
                accounts_changed: changed,
            })
            .collect(),
        accounts_evaluated: p.evaluated,
        accounts_held: p.held,
    }
}
