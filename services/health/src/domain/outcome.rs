//! Labelled outcomes: what happened to an account's contract, as Health
//! learns it from Accounts' ContractChanged events — the truth a backtest
//! measures a score against (docs/metrics.md, *Churn as a label*).

use chrono::NaiveDate;
use uuid::Uuid;

/// What a contract event means for an account's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeKind {
    /// Logo churn: a CHURN event (at or before renewal, whenever it takes
    /// effect), or a CONTRACTION to an ARR of 0.
    Churned,
    /// A RENEWAL (at any ARR above 0).
    Renewed,
    /// An EXPANSION.
    Expanded,
    /// A CONTRACTION that leaves some ARR.
    Contracted,
    /// A REACTIVATION: a churned customer came back. Not a label of its
    /// own; it ends the churned spell (snapshots after it count again).
    Reactivated,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Churned => "churned",
            OutcomeKind::Renewed => "renewed",
            OutcomeKind::Expanded => "expanded",
            OutcomeKind::Contracted => "contracted",
            OutcomeKind::Reactivated => "reactivated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            OutcomeKind::Churned,
            OutcomeKind::Renewed,
            OutcomeKind::Expanded,
            OutcomeKind::Contracted,
            OutcomeKind::Reactivated,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Which kind of expansion, where the contract event says it: its
/// `reason_code` is `upsell` (a higher edition) or `cross_sell` (another
/// product); any other expansion is unspecified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpansionKind {
    Upsell,
    CrossSell,
}

impl ExpansionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpansionKind::Upsell => "upsell",
            ExpansionKind::CrossSell => "cross_sell",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "upsell" => Some(ExpansionKind::Upsell),
            "cross_sell" => Some(ExpansionKind::CrossSell),
            _ => None,
        }
    }

    /// The kind a reason code names: `upsell`, `cross_sell` (also written
    /// `cross-sell`, `crosssell`, any case).
    pub fn from_reason_code(code: &str) -> Option<Self> {
        let c: String = code.trim().to_ascii_lowercase().chars().filter(|c| !matches!(c, '-' | '_' | ' ')).collect();
        match c.as_str() {
            "upsell" => Some(ExpansionKind::Upsell),
            "crosssell" => Some(ExpansionKind::CrossSell),
            _ => None,
        }
    }
}

/// The kind of a contract event, as Accounts records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractKind {
    New,
    Renewal,
    Expansion,
    Contraction,
    Churn,
    Reactivation,
}

/// One labelled outcome of an account.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The contract event's id (one outcome per event).
    pub event_id: Uuid,
    pub account_id: Uuid,
    pub kind: OutcomeKind,
    pub expansion: Option<ExpansionKind>,
    /// The day it takes effect (the contract event's `effective_date`).
    pub effective_date: NaiveDate,
    /// ISO 4217 code of the amounts.
    pub currency: String,
    /// ARR just before and from then on, minor units.
    pub arr_before: i64,
    pub arr_after: i64,
}

impl Outcome {
    /// The ARR lost by a churn (its ARR just before), gained by an
    /// expansion, lost by a contraction; 0 for a renewal at the same ARR.
    #[cfg(test)]
    pub fn arr_change(&self) -> i64 {
        self.arr_after.saturating_sub(self.arr_before)
    }
}

/// The outcome a contract event records, if any: a NEW contract is no
/// outcome (nothing was decided about an existing customer).
pub fn classify(kind: ContractKind, arr_after: i64, reason_code: &str) -> Option<(OutcomeKind, Option<ExpansionKind>)> {
    match kind {
        ContractKind::New => None,
        ContractKind::Churn => Some((OutcomeKind::Churned, None)),
        ContractKind::Contraction if arr_after <= 0 => Some((OutcomeKind::Churned, None)),
        ContractKind::Contraction => Some((OutcomeKind::Contracted, None)),
        ContractKind::Renewal => Some((OutcomeKind::Renewed, None)),
        ContractKind::Expansion => Some((OutcomeKind::Expanded, ExpansionKind::from_reason_code(reason_code))),
        ContractKind::Reactivation => Some((OutcomeKind::Reactivated, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_is_a_churn_event_or_a_contraction_to_zero() {
        assert_eq!(classify(ContractKind::Churn, 0, ""), Some((OutcomeKind::Churned, None)));
        assert_eq!(classify(ContractKind::Contraction, 0, ""), Some((OutcomeKind::Churned, None)));
        assert_eq!(classify(ContractKind::Contraction, 1, ""), Some((OutcomeKind::Contracted, None)));
        assert_eq!(classify(ContractKind::Renewal, 100, "upsell"), Some((OutcomeKind::Renewed, None)));
        assert_eq!(classify(ContractKind::New, 100, ""), None);
        assert_eq!(classify(ContractKind::Reactivation, 100, ""), Some((OutcomeKind::Reactivated, None)));
    }

    #[test]
    fn an_expansion_is_upsell_or_cross_sell_where_its_reason_says() {
        let e = |code| classify(ContractKind::Expansion, 200, code);
        assert_eq!(e("upsell"), Some((OutcomeKind::Expanded, Some(ExpansionKind::Upsell))));
        assert_eq!(e("Cross-Sell"), Some((OutcomeKind::Expanded, Some(ExpansionKind::CrossSell))));
        assert_eq!(e("cross_sell"), Some((OutcomeKind::Expanded, Some(ExpansionKind::CrossSell))));
        assert_eq!(e("price_increase"), Some((OutcomeKind::Expanded, None)));
        assert_eq!(e(""), Some((OutcomeKind::Expanded, None)));
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in [
            OutcomeKind::Churned,
            OutcomeKind::Renewed,
            OutcomeKind::Expanded,
            OutcomeKind::Contracted,
            OutcomeKind::Reactivated,
        ] {
            assert_eq!(OutcomeKind::parse(k.as_str()), Some(k));
        }
        for k in [ExpansionKind::Upsell, ExpansionKind::CrossSell] {
            assert_eq!(ExpansionKind::parse(k.as_str()), Some(k));
        }
    }
}
