//! Touch-mix rules: a tenant's ordered list of `{name, condition, mix}`.
//! The first rule whose condition (CEL over `account`, as a segment's
//! expression) holds gives an account's mix, unless the mix was set by
//! hand; none holds, the mix is left as is. A share the rule gives to a
//! pattern forbidden by a segment the account is in moves to the next
//! allowed pattern ([`without_forbidden`]).

use banso_cel::Expression;
use banso_events::db::Versioned;
use chrono::{DateTime, NaiveDate, Utc};

use super::{AccountFields, TouchModel, TouchShare, dominant, segment, without_forbidden};

/// The most rules a tenant keeps: each account write evaluates them all in
/// the worst case.
pub const MAX_RULES: usize = 50;

/// One rule, as stored (its condition compiled when saved).
#[derive(Debug, Clone, PartialEq)]
pub struct TouchMixRule {
    pub name: String,
    pub condition: String,
    /// Canonical, adding up to 100.
    pub touch_mix: Vec<TouchShare>,
}

/// A tenant's rules, in order; version 0 (none stored) until first set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TouchMixRules {
    pub rules: Vec<TouchMixRule>,
    pub update_time: Option<DateTime<Utc>>,
    pub version: i64,
}

impl Versioned for TouchMixRules {
    fn version(&self) -> i64 {
        self.version
    }

    fn advance(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.update_time = Some(now);
    }
}

/// Compiles a rule's condition against the account environment (the one
/// segment expressions use).
pub fn compile(source: &str) -> Result<Expression, banso_cel::CompileError> {
    segment::compile(source)
}

/// What the rules need at an account write: the rules compiled, the
/// segments that forbid patterns, and the instant they are evaluated at.
#[derive(Clone)]
pub struct MixPolicy {
    rules: Vec<(String, Expression, Vec<TouchShare>)>,
    /// Each segment forbidding a pattern: its expression and what it forbids.
    forbidding: Vec<(Expression, Vec<TouchModel>)>,
    today: NaiveDate,
    now: DateTime<Utc>,
}

impl MixPolicy {
    /// The policy of `rules`; a stored condition or segment expression that
    /// no longer compiles is left out (it holds for nobody).
    pub fn new(
        rules: &[TouchMixRule],
        forbidding: &[(String, Vec<TouchModel>)],
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Self {
        MixPolicy {
            rules: rules
                .iter()
                .filter_map(|r| Some((r.name.clone(), compile(&r.condition).ok()?, r.touch_mix.clone())))
                .collect(),
            forbidding: forbidding
                .iter()
                .filter_map(|(expr, forbidden)| Some((segment::compile(expr).ok()?, forbidden.clone())))
                .collect(),
            today,
            now,
        }
    }

    /// No rule: nothing to do.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule that sets `f`'s mix and the mix it sets (after moving
    /// forbidden shares); `None` when the mix was set by hand or no rule
    /// holds. An evaluation error is "does not hold".
    pub fn rule_for(&self, f: &AccountFields) -> Option<(&str, Vec<TouchShare>)> {
        if f.touch_mix_manual {
            return None;
        }
        let facts = segment::facts_of(f, self.today, self.now);
        let (name, _, mix) = self.rules.iter().find(|(_, e, _)| e.evaluate_bool(&facts).unwrap_or(false))?;
        let mut forbidden: Vec<TouchModel> = Vec::new();
        for (expr, models) in &self.forbidding {
            if expr.evaluate_bool(&facts).unwrap_or(false) {
                forbidden.extend(models.iter().copied());
            }
        }
        Some((name, without_forbidden(mix, &forbidden)))
    }

    /// The rule names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|(n, _, _)| n.as_str())
    }

    /// Applies the rules to `f` (mix and its dominant touch_model); returns
    /// the rule's name if that changed the mix.
    pub fn apply(&self, f: &mut AccountFields) -> Option<String> {
        let (name, mix) = self.rule_for(f)?;
        if mix == f.touch_mix {
            return None;
        }
        if let Some(t) = dominant(&mix) {
            f.touch_model = t;
        }
        f.touch_mix = mix;
        Some(name.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LifecycleStage, Money, single_mix};
    use TouchModel::*;

    fn fields(industry: &str, arr: i64) -> AccountFields {
        AccountFields {
            name: "Acme".into(),
            external_id: None,
            industry: industry.into(),
            employee_count: None,
            revenue_band: String::new(),
            region: String::new(),
            plan_tier: String::new(),
            lifecycle_stage: LifecycleStage::Adoption,
            touch_model: High,
            touch_mix: single_mix(High),
            touch_mix_manual: false,
            owner_id: String::new(),
            arr: Some(Money { currency_code: "JPY".into(), amount_minor: arr }),
            contract_start_date: None,
            renewal_date: None,
            tags: Vec::new(),
            custom_attributes: Default::default(),
        }
    }

    fn rule(name: &str, condition: &str, mix: &[(TouchModel, u8)]) -> TouchMixRule {
        TouchMixRule {
            name: name.into(),
            condition: condition.into(),
            touch_mix: mix.iter().map(|(t, p)| TouchShare { touch_model: *t, percent: *p }).collect(),
        }
    }

    fn policy(rules: &[TouchMixRule], forbidding: &[(&str, &[TouchModel])]) -> MixPolicy {
        let forbidding: Vec<_> = forbidding.iter().map(|(e, f)| ((*e).to_owned(), f.to_vec())).collect();
        MixPolicy::new(rules, &forbidding, NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(), Utc::now())
    }

    #[test]
    fn the_first_rule_that_holds_sets_the_mix_and_its_dominant_pattern() {
        let p = policy(
            &[rule("big", "account.arr >= 10000000", &[(High, 60), (Tech, 40)]), rule("rest", "true", &[(Tech, 100)])],
            &[],
        );
        let mut big = fields("saas", 20_000_000);
        assert_eq!(p.apply(&mut big).as_deref(), Some("big"));
        assert_eq!((big.touch_model, big.touch_mix.len()), (High, 2));
        let mut small = fields("saas", 1);
        assert_eq!(p.apply(&mut small).as_deref(), Some("rest"));
        assert_eq!((small.touch_model, &small.touch_mix), (Tech, &single_mix(Tech)));
        assert_eq!(p.apply(&mut small), None, "already the rule's mix: no change");
    }

    #[test]
    fn a_mix_set_by_hand_wins_and_no_rule_leaves_the_mix() {
        let p = policy(&[rule("medical", "account.industry == 'medical'", &[(Tech, 100)])], &[]);
        let mut manual = fields("medical", 1);
        manual.touch_mix_manual = true;
        assert_eq!(p.apply(&mut manual), None);
        let mut other = fields("retail", 1);
        assert_eq!(p.apply(&mut other), None);
        assert_eq!(other.touch_mix, single_mix(High));
    }

    #[test]
    fn forbidden_shares_fall_back_for_members_only() {
        let p =
            policy(&[rule("all", "true", &[(High, 60), (Tech, 40)])], &[("account.industry == 'medical'", &[Tech])]);
        let mut medical = fields("medical", 1);
        p.apply(&mut medical);
        assert_eq!(
            medical.touch_mix,
            vec![TouchShare { touch_model: High, percent: 60 }, TouchShare { touch_model: Low, percent: 40 }]
        );
        let mut retail = fields("retail", 1);
        p.apply(&mut retail);
        assert_eq!(retail.touch_mix[1], TouchShare { touch_model: Tech, percent: 40 });
    }

    #[test]
    fn an_evaluation_error_does_not_hold() {
        // renewal_date is null here: comparing it fails, so the next rule wins.
        let p = policy(
            &[rule("renewing", "account.days_to_renewal < 90", &[(High, 100)]), rule("rest", "true", &[(Low, 100)])],
            &[],
        );
        let mut f = fields("saas", 1);
        assert_eq!(p.apply(&mut f).as_deref(), Some("rest"));
    }
}
