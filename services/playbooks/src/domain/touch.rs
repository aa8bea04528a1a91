//! How a playbook's actions meet an account's touch mix.
//!
//! An account is served by a blend of patterns (high 60 / tech 40). An
//! action limited to touch models runs when the account is served by one of
//! them: under DOMINANT routing only the largest share counts (ties: high,
//! then low, then tech); under BLEND every share of at least
//! [`BLEND_MIN_SHARE`]% does. A pattern forbidden by a segment the account
//! is in is never served: its actions are skipped, and the firing says which
//! segment forbids it.

use serde::{Deserialize, Serialize};

use super::{
    TouchModel,
    playbook::{Action, BLEND_MIN_SHARE, Routing},
};

/// Patterns in order of precedence for ties.
const ORDER: [TouchModel; 3] = [TouchModel::High, TouchModel::Low, TouchModel::Tech];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Share {
    pub model: TouchModel,
    pub percent: u8,
}

/// The largest share's pattern; ties go to high, then low, then tech.
pub(crate) fn dominant(mix: &[Share], fallback: TouchModel) -> TouchModel {
    let mut best: Option<Share> = None;
    for model in ORDER {
        if let Some(s) = mix.iter().find(|s| s.model == model)
            && best.is_none_or(|b| s.percent > b.percent)
        {
            best = Some(*s);
        }
    }
    best.map_or(fallback, |b| b.model)
}

/// The patterns that serve the account under `routing`.
pub(crate) fn served(mix: &[Share], fallback: TouchModel, routing: Routing) -> Vec<TouchModel> {
    match routing {
        Routing::Dominant => vec![dominant(mix, fallback)],
        Routing::Blend => {
            let v: Vec<_> = ORDER
                .into_iter()
                .filter(|m| mix.iter().any(|s| s.model == *m && s.percent >= BLEND_MIN_SHARE))
                .collect();
            if v.is_empty() { vec![dominant(mix, fallback)] } else { v }
        }
    }
}

/// Why an action does not run for an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Skip {
    /// The account is not served by any of the action's patterns.
    NotServed { served: Vec<TouchModel>, wanted: Vec<TouchModel> },
    /// Every pattern that would run it is forbidden, by these segments.
    Forbidden(Vec<(TouchModel, String)>),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |v: &[TouchModel]| v.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ");
        match self {
            Skip::NotServed { served, wanted } => {
                write!(f, "skipped: the account is served {} touch; the action is for {}", names(served), names(wanted))
            }
            Skip::Forbidden(v) => {
                let parts: Vec<_> = v
                    .iter()
                    .map(|(m, seg)| format!("touch model {} is forbidden in segment {seg}", m.as_str()))
                    .collect();
                write!(f, "skipped: {}", parts.join("; "))
            }
        }
    }
}

/// Whether `action` runs for an account served by `served`, with the
/// patterns `forbidden` (each with the segment that forbids it).
pub(crate) fn route(action: &Action, served: &[TouchModel], forbidden: &[(TouchModel, String)]) -> Result<(), Skip> {
    if action.touch_models.is_empty() {
        return Ok(());
    }
    let candidates: Vec<TouchModel> = served.iter().copied().filter(|m| action.touch_models.contains(m)).collect();
    if candidates.is_empty() {
        return Err(Skip::NotServed { served: served.to_vec(), wanted: action.touch_models.clone() });
    }
    let allowed = candidates.iter().any(|m| !forbidden.iter().any(|(f, _)| f == m));
    if allowed {
        Ok(())
    } else {
        Err(Skip::Forbidden(forbidden.iter().filter(|(f, _)| candidates.contains(f)).cloned().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::playbook::{ActionKind, UpdateAccount};

    fn mix(v: &[(TouchModel, u8)]) -> Vec<Share> {
        v.iter().map(|(model, percent)| Share { model: *model, percent: *percent }).collect()
    }

    fn action(models: &[TouchModel]) -> Action {
        Action { touch_models: models.to_vec(), kind: ActionKind::UpdateAccount(UpdateAccount::default()) }
    }

    use TouchModel::{High, Low, Tech};

    #[test]
    fn dominant_is_the_largest_share_ties_to_the_higher_touch() {
        assert_eq!(dominant(&mix(&[(High, 60), (Tech, 40)]), Low), High);
        assert_eq!(dominant(&mix(&[(Tech, 50), (Low, 50)]), High), Low);
        assert_eq!(dominant(&mix(&[(Tech, 50), (High, 50)]), Low), High);
        assert_eq!(dominant(&[], Tech), Tech);
    }

    #[test]
    fn blend_serves_every_share_of_twenty_percent_or_more() {
        let m = mix(&[(High, 60), (Low, 15), (Tech, 25)]);
        assert_eq!(served(&m, High, Routing::Blend), vec![High, Tech]);
        assert_eq!(served(&m, High, Routing::Dominant), vec![High]);
    }

    #[test]
    fn actions_route_by_pattern_and_forbidden_patterns_are_skipped_with_the_segment() {
        let served = [High, Tech];
        assert_eq!(route(&action(&[]), &served, &[]), Ok(()));
        assert_eq!(route(&action(&[Tech]), &served, &[]), Ok(()));
        assert_eq!(
            route(&action(&[Low]), &served, &[]),
            Err(Skip::NotServed { served: served.to_vec(), wanted: vec![Low] })
        );
        let forbidden = vec![(Tech, "Regulated".to_string())];
        let skip = route(&action(&[Tech]), &served, &forbidden).unwrap_err();
        assert_eq!(skip.to_string(), "skipped: touch model tech is forbidden in segment Regulated");
        // Another serving pattern of the action is still allowed.
        assert_eq!(route(&action(&[High, Tech]), &served, &forbidden), Ok(()));
    }
}
