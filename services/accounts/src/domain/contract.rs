//! Contract events and how they move an account's ARR, renewal date and
//! lifecycle stage. Pure rules; the store applies them in one transaction.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

pub use super::retention::ContractKind;
use super::{Account, AccountFields, LifecycleStage, Money};
use banso_events::db::Identified;
use banso_kit::{Error, shown};

impl ContractKind {
    pub const ALL: [ContractKind; 6] = [
        ContractKind::New,
        ContractKind::Renewal,
        ContractKind::Expansion,
        ContractKind::Contraction,
        ContractKind::Churn,
        ContractKind::Reactivation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContractKind::New => "new",
            ContractKind::Renewal => "renewal",
            ContractKind::Expansion => "expansion",
            ContractKind::Contraction => "contraction",
            ContractKind::Churn => "churn",
            ContractKind::Reactivation => "reactivation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What a client asks to record.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractInput {
    pub kind: ContractKind,
    /// `None` only for a churn (it is 0 then).
    pub arr_after: Option<Money>,
    pub effective_date: NaiveDate,
    pub term_end: Option<NaiveDate>,
    pub reason_code: String,
    pub note: String,
}

/// A recorded contract event.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractEvent {
    pub id: Uuid,
    pub account_id: Uuid,
    pub kind: ContractKind,
    pub arr_before: Money,
    pub arr_after: Money,
    pub effective_date: NaiveDate,
    pub term_end: Option<NaiveDate>,
    pub reason_code: String,
    pub note: String,
    pub recorded_by: String,
    pub create_time: DateTime<Utc>,
}

/// A recorded contract event with its account as the event left it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub event: ContractEvent,
    pub account: Account,
}

impl Identified for Recorded {
    fn resource_id(&self) -> String {
        self.event.id.to_string()
    }
}

fn refuse(reason: &'static str, message: String) -> Error {
    Error::FailedPrecondition { reason, message }
}

/// Is the account a paying customer now?
pub fn is_active(a: &AccountFields) -> bool {
    a.lifecycle_stage != LifecycleStage::Churned && a.arr.as_ref().is_some_and(|m| m.amount_minor > 0)
}

/// Checks `input` against the account and its history and applies it:
/// returns the ARR before and after. The rules:
///
/// | kind | needs | ARR after | renewal date | stage |
/// |---|---|---|---|---|
/// | NEW | no contract history, not churned | > 0 | term_end (required) | ONBOARDING; contract start = effective date |
/// | RENEWAL | active | > 0 | term_end (required) | RENEWAL → ADOPTION, else unchanged |
/// | EXPANSION | active | > before | term_end if given | EXPANSION |
/// | CONTRACTION | active | 0 < after < before | term_end if given | unchanged |
/// | CHURN | active (not already churned) | 0 | cleared | CHURNED |
/// | REACTIVATION | churned | > 0 | term_end (required) | ONBOARDING; contract start = effective date |
///
/// For every kind: the currency is the account's ARR currency once it has
/// one; the effective date is not before the previous contract event's, nor
/// (except NEW and REACTIVATION, which start a contract) before the
/// account's contract start; term_end is after the effective date.
pub fn apply(
    account: &mut AccountFields,
    last_effective: Option<NaiveDate>,
    input: &ContractInput,
) -> Result<(Money, Money), Error> {
    use ContractKind as K;
    let currency = match (&input.arr_after, &account.arr) {
        (Some(m), _) => m.currency_code.clone(),
        (None, Some(a)) => a.currency_code.clone(),
        (None, None) => {
            return Err(refuse("NO_ARR", "the account has no ARR to churn".into()));
        }
    };
    if let Some(a) = &account.arr
        && a.currency_code != currency
    {
        return Err(refuse(
            "CURRENCY_MISMATCH",
            format!("arr_after is in {} but the account's ARR is in {}", shown(&currency), a.currency_code),
        ));
    }
    let before = account.arr.clone().unwrap_or(Money { currency_code: currency.clone(), amount_minor: 0 });
    let after = match (input.kind, &input.arr_after) {
        (K::Churn, None) => Money { currency_code: currency.clone(), amount_minor: 0 },
        (K::Churn, Some(m)) if m.amount_minor != 0 => {
            return Err(Error::invalid(
                "contract_event.arr_after.amount_minor",
                format!("a churn leaves no ARR: must be 0, got {}", m.amount_minor),
            ));
        }
        (_, Some(m)) => m.clone(),
        (kind, None) => {
            return Err(Error::invalid("contract_event.arr_after", format!("is required for {}", kind.as_str())));
        }
    };
    if let Some(last) = last_effective
        && input.effective_date < last
    {
        return Err(refuse(
            "OUT_OF_ORDER",
            format!("effective_date {} is before the previous contract event ({last})", input.effective_date),
        ));
    }
    if !matches!(input.kind, K::New | K::Reactivation)
        && let Some(start) = account.contract_start_date
        && input.effective_date < start
    {
        return Err(refuse(
            "BEFORE_CONTRACT_START",
            format!("effective_date {} is before the contract start {start}", input.effective_date),
        ));
    }
    if let Some(end) = input.term_end
        && end <= input.effective_date
    {
        return Err(Error::invalid(
            "contract_event.term_end",
            format!("{end} must be after effective_date {}", input.effective_date),
        ));
    }
    let needs_term = matches!(input.kind, K::New | K::Renewal | K::Reactivation);
    if needs_term && input.term_end.is_none() {
        return Err(Error::invalid("contract_event.term_end", format!("is required for {}", input.kind.as_str())));
    }
    let active = is_active(account);
    let churned = account.lifecycle_stage == LifecycleStage::Churned;
    match input.kind {
        K::New if last_effective.is_some() => {
            return Err(refuse(
                "CONTRACT_EXISTS",
                "the account already has contract history: record a RENEWAL, EXPANSION or CONTRACTION".into(),
            ));
        }
        K::New if churned => {
            return Err(refuse("ACCOUNT_CHURNED", "the account is churned: record a REACTIVATION".into()));
        }
        K::Reactivation if !churned => {
            return Err(refuse("NOT_CHURNED", "only a churned account can be reactivated".into()));
        }
        K::Churn if churned => {
            return Err(refuse("ALREADY_CHURNED", "the account is already churned".into()));
        }
        K::Renewal | K::Expansion | K::Contraction | K::Churn if !active => {
            return Err(refuse(
                "ACCOUNT_NOT_ACTIVE",
                format!("a {} needs a paying account (ARR above 0, not churned)", input.kind.as_str()),
            ));
        }
        _ => {}
    }
    let positive = |m: &Money| m.amount_minor > 0;
    match input.kind {
        K::New | K::Renewal | K::Reactivation if !positive(&after) => {
            return Err(Error::invalid(
                "contract_event.arr_after.amount_minor",
                format!("must be above 0 for {}, got {}", input.kind.as_str(), after.amount_minor),
            ));
        }
        K::Expansion if after.amount_minor <= before.amount_minor => {
            return Err(refuse(
                "NOT_AN_EXPANSION",
                format!("an expansion must raise ARR: {} is not above {}", after.amount_minor, before.amount_minor),
            ));
        }
        K::Contraction if after.amount_minor >= before.amount_minor || !positive(&after) => {
            return Err(refuse(
                "NOT_A_CONTRACTION",
                format!(
                    "a contraction lowers ARR and keeps it above 0: {} is not between 0 and {}",
                    after.amount_minor, before.amount_minor
                ),
            ));
        }
        _ => {}
    }

    account.arr = Some(after.clone());
    match input.kind {
        K::New | K::Reactivation => {
            account.contract_start_date = Some(input.effective_date);
            account.renewal_date = input.term_end;
            account.lifecycle_stage = LifecycleStage::Onboarding;
        }
        K::Renewal => {
            account.renewal_date = input.term_end;
            if account.lifecycle_stage == LifecycleStage::Renewal {
                account.lifecycle_stage = LifecycleStage::Adoption;
            }
        }
        K::Expansion => {
            account.renewal_date = input.term_end.or(account.renewal_date);
            account.lifecycle_stage = LifecycleStage::Expansion;
        }
        K::Contraction => account.renewal_date = input.term_end.or(account.renewal_date),
        K::Churn => {
            account.renewal_date = None;
            account.lifecycle_stage = LifecycleStage::Churned;
        }
    }
    Ok((before, after))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::TouchModel;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn jpy(n: i64) -> Option<Money> {
        Some(Money { currency_code: "JPY".into(), amount_minor: n })
    }

    fn fresh() -> AccountFields {
        AccountFields {
            name: "株式会社サンプル".into(),
            external_id: None,
            industry: String::new(),
            employee_count: None,
            revenue_band: String::new(),
            region: String::new(),
            plan_tier: String::new(),
            lifecycle_stage: LifecycleStage::Onboarding,
            touch_model: TouchModel::High,
            touch_mix: crate::domain::single_mix(TouchModel::High),
            touch_mix_manual: false,
            owner_id: String::new(),
            arr: None,
            contract_start_date: None,
            renewal_date: None,
            tags: vec![],
            custom_attributes: BTreeMap::new(),
        }
    }

    fn input(kind: ContractKind, arr: Option<Money>, eff: NaiveDate, term: Option<NaiveDate>) -> ContractInput {
        ContractInput {
            kind,
            arr_after: arr,
            effective_date: eff,
            term_end: term,
            reason_code: String::new(),
            note: String::new(),
        }
    }

    fn reason(e: Error) -> &'static str {
        e.code_and_reason().1
    }

    #[test]
    fn a_contract_life_new_expand_renew_contract_churn_reactivate() {
        use ContractKind as K;
        let mut a = fresh();
        let (before, after) =
            apply(&mut a, None, &input(K::New, jpy(1_200_000), d(2025, 4, 1), Some(d(2026, 3, 31)))).unwrap();
        assert_eq!((before.amount_minor, Some(after)), (0, jpy(1_200_000)));
        assert_eq!(
            (a.arr.clone(), a.renewal_date, a.contract_start_date),
            (jpy(1_200_000), Some(d(2026, 3, 31)), Some(d(2025, 4, 1)))
        );

        apply(&mut a, Some(d(2025, 4, 1)), &input(K::Expansion, jpy(1_500_000), d(2025, 10, 1), None)).unwrap();
        assert_eq!(
            (a.arr.clone(), a.lifecycle_stage, a.renewal_date),
            (jpy(1_500_000), LifecycleStage::Expansion, Some(d(2026, 3, 31)))
        );

        a.lifecycle_stage = LifecycleStage::Renewal;
        let (b, _) = apply(
            &mut a,
            Some(d(2025, 10, 1)),
            &input(K::Renewal, jpy(1_500_000), d(2026, 3, 31), Some(d(2027, 3, 31))),
        )
        .unwrap();
        assert_eq!(b.amount_minor, 1_500_000);
        assert_eq!((a.lifecycle_stage, a.renewal_date), (LifecycleStage::Adoption, Some(d(2027, 3, 31))));

        apply(&mut a, Some(d(2026, 3, 31)), &input(K::Contraction, jpy(900_000), d(2026, 6, 1), None)).unwrap();
        assert_eq!(a.arr, jpy(900_000));

        apply(&mut a, Some(d(2026, 6, 1)), &input(K::Churn, None, d(2027, 3, 31), None)).unwrap();
        assert_eq!((a.arr.clone(), a.lifecycle_stage, a.renewal_date), (jpy(0), LifecycleStage::Churned, None));

        apply(&mut a, Some(d(2027, 3, 31)), &input(K::Reactivation, jpy(600_000), d(2027, 9, 1), Some(d(2028, 8, 31))))
            .unwrap();
        assert_eq!(
            (a.arr.clone(), a.lifecycle_stage, a.contract_start_date),
            (jpy(600_000), LifecycleStage::Onboarding, Some(d(2027, 9, 1)))
        );
    }

    #[test]
    fn contradictions_are_refused_with_a_reason() {
        use ContractKind as K;
        let mut churned = fresh();
        churned.lifecycle_stage = LifecycleStage::Churned;
        churned.arr = jpy(0);
        assert_eq!(
            reason(
                apply(&mut churned.clone(), Some(d(2025, 1, 1)), &input(K::Churn, None, d(2025, 2, 1), None))
                    .unwrap_err()
            ),
            "ALREADY_CHURNED"
        );
        assert_eq!(
            reason(
                apply(&mut churned.clone(), None, &input(K::New, jpy(1), d(2025, 2, 1), Some(d(2026, 2, 1))))
                    .unwrap_err()
            ),
            "ACCOUNT_CHURNED"
        );
        assert_eq!(
            reason(
                apply(&mut churned, None, &input(K::Renewal, jpy(1), d(2025, 2, 1), Some(d(2026, 2, 1)))).unwrap_err()
            ),
            "ACCOUNT_NOT_ACTIVE"
        );

        let mut active = fresh();
        apply(&mut active, None, &input(K::New, jpy(1000), d(2025, 4, 1), Some(d(2026, 4, 1)))).unwrap();
        let last = Some(d(2025, 4, 1));
        assert_eq!(
            reason(
                apply(&mut active.clone(), last, &input(K::New, jpy(5), d(2025, 5, 1), Some(d(2026, 5, 1))))
                    .unwrap_err()
            ),
            "CONTRACT_EXISTS"
        );
        assert_eq!(
            reason(apply(&mut active.clone(), last, &input(K::Expansion, jpy(900), d(2025, 5, 1), None)).unwrap_err()),
            "NOT_AN_EXPANSION"
        );
        assert_eq!(
            reason(
                apply(&mut active.clone(), last, &input(K::Contraction, jpy(1000), d(2025, 5, 1), None)).unwrap_err()
            ),
            "NOT_A_CONTRACTION"
        );
        assert_eq!(
            reason(apply(&mut active.clone(), last, &input(K::Contraction, jpy(0), d(2025, 5, 1), None)).unwrap_err()),
            "NOT_A_CONTRACTION"
        );
        assert_eq!(
            reason(
                apply(&mut active.clone(), last, &input(K::Reactivation, jpy(9), d(2025, 5, 1), Some(d(2026, 5, 1))))
                    .unwrap_err()
            ),
            "NOT_CHURNED"
        );
        assert_eq!(
            reason(apply(&mut active.clone(), last, &input(K::Expansion, jpy(2000), d(2025, 3, 1), None)).unwrap_err()),
            "OUT_OF_ORDER"
        );
        let usd = Some(Money { currency_code: "USD".into(), amount_minor: 5000 });
        assert_eq!(
            reason(apply(&mut active.clone(), last, &input(K::Expansion, usd, d(2025, 5, 1), None)).unwrap_err()),
            "CURRENCY_MISMATCH"
        );
        assert_eq!(
            reason(apply(&mut active.clone(), last, &input(K::Churn, jpy(10), d(2025, 5, 1), None)).unwrap_err()),
            "INVALID_ARGUMENT"
        );
        assert_eq!(
            reason(apply(&mut active.clone(), last, &input(K::Renewal, jpy(10), d(2025, 5, 1), None)).unwrap_err()),
            "INVALID_ARGUMENT"
        );
        assert_eq!(
            reason(
                apply(&mut active.clone(), last, &input(K::Renewal, jpy(10), d(2025, 5, 1), Some(d(2025, 5, 1))))
                    .unwrap_err()
            ),
            "INVALID_ARGUMENT"
        );

        // An account with a manual contract start refuses earlier events.
        let mut manual = fresh();
        manual.arr = jpy(100);
        manual.contract_start_date = Some(d(2025, 4, 1));
        assert_eq!(
            reason(apply(&mut manual, None, &input(K::Expansion, jpy(200), d(2025, 3, 1), None)).unwrap_err()),
            "BEFORE_CONTRACT_START"
        );
    }

    #[test]
    fn a_refused_event_leaves_the_account_untouched() {
        let mut a = fresh();
        apply(&mut a, None, &input(ContractKind::New, jpy(1000), d(2025, 4, 1), Some(d(2026, 4, 1)))).unwrap();
        let snapshot = a.clone();
        let _ = apply(&mut a, Some(d(2025, 4, 1)), &input(ContractKind::Expansion, jpy(10), d(2025, 5, 1), None));
        assert_eq!(a, snapshot);
    }
}
