//! Closing the loop, pure: inward — a decision logged, each department the
//! theme concerns acknowledging it, reach (themes acknowledged by every
//! department they concern ÷ themes) — and outward — the roadmap's status
//! history, and on SHIPPED or DECLINED who is told: every account that
//! raised the theme, with its contacts and items. docs/feedback.md
//! ("Closing the loop") and docs/metrics.md ("Reach") say the same.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::voice::{Acknowledgement, Decision, Department, RoadmapChange, RoadmapStatus, Theme};

/// Why a change to the theme's loop is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The department is not one the theme concerns.
    NotConcerned(Department),
    /// The tenant requires a recorded decision before SHIPPED or DECLINED.
    DecisionRequired(RoadmapStatus),
}

/// Appends a decision to the theme's log (oldest first).
pub(crate) fn decide(t: &mut Theme, d: Decision) {
    t.log.decisions.push(d);
}

/// A department the theme concerns acknowledges it. The first
/// acknowledgement of a department is kept (who and when the voice first
/// reached it): a second one changes nothing and gives `Ok(false)`.
pub(crate) fn acknowledge(t: &mut Theme, department: Department, by: &str, at: DateTime<Utc>) -> Result<bool, Refusal> {
    if !t.body.departments.contains(&department) {
        return Err(Refusal::NotConcerned(department));
    }
    if t.log.acknowledgements.iter().any(|a| a.department == department) {
        return Ok(false);
    }
    t.log.acknowledgements.push(Acknowledgement { department, acknowledged_by: by.to_string(), acknowledge_time: at });
    Ok(true)
}

/// A status change that happened: its place in the history (from 1) and
/// the status before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Moved {
    pub change: i32,
    pub old: Option<RoadmapStatus>,
    pub new: RoadmapStatus,
}

/// Moves the theme's roadmap item to `status`. The current status again
/// changes nothing (`Ok(None)`). SHIPPED and DECLINED close the loop: when
/// the tenant requires it (`require_decision`), only after a decision is
/// in the log.
pub(crate) fn move_to(
    t: &mut Theme,
    status: RoadmapStatus,
    by: &str,
    at: DateTime<Utc>,
    require_decision: bool,
) -> Result<Option<Moved>, Refusal> {
    let old = t.status();
    if old == Some(status) {
        return Ok(None);
    }
    if status.closes_loop() && require_decision && t.log.decisions.is_empty() {
        return Err(Refusal::DecisionRequired(status));
    }
    t.log.roadmap_history.push(RoadmapChange { status, changed_by: by.to_string(), change_time: at, accounts_told: 0 });
    let change = i32::try_from(t.log.roadmap_history.len()).unwrap_or(i32::MAX);
    Ok(Some(Moved { change, old, new: status }))
}

/// The theme's latest decision, if any.
pub(crate) fn latest_decision(t: &Theme) -> Option<&Decision> {
    t.log.decisions.last()
}

/// Sets each change's `accounts_told` from what the loops told: `told`
/// maps a change's place in the history (from 1) to the accounts told.
pub(crate) fn with_told(t: &mut Theme, told: &BTreeMap<i32, i64>) {
    for (i, c) in t.log.roadmap_history.iter_mut().enumerate() {
        let change = i32::try_from(i + 1).unwrap_or(i32::MAX);
        c.accounts_told = told.get(&change).copied().unwrap_or(0);
    }
}

/// One item of a theme as the fan-out reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Raised {
    pub item: Uuid,
    pub account: Uuid,
    pub contact: Option<Uuid>,
}

/// An account that raised the theme: its contacts that did and its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Raiser {
    pub account: Uuid,
    pub contacts: Vec<Uuid>,
    pub items: Vec<Uuid>,
}

/// Most item ids a LoopClosed names (an account rarely raises a theme more
/// often; the event stays small).
pub(crate) const MAX_ITEMS_TOLD: usize = 1000;

/// Who a closed loop tells: each account of the theme's items once, by
/// account id, with its distinct contacts and its items (oldest first, at
/// most [`MAX_ITEMS_TOLD`]).
pub(crate) fn raisers(items: &[Raised]) -> Vec<Raiser> {
    let mut by: BTreeMap<Uuid, (BTreeSet<Uuid>, BTreeSet<Uuid>)> = BTreeMap::new();
    for x in items {
        let (contacts, items) = by.entry(x.account).or_default();
        contacts.extend(x.contact);
        items.insert(x.item);
    }
    by.into_iter()
        .map(|(account, (contacts, items))| Raiser {
            account,
            contacts: contacts.into_iter().collect(),
            items: items.into_iter().take(MAX_ITEMS_TOLD).collect(),
        })
        .collect()
}

/// Whether a department the theme concerns acknowledged it.
fn acknowledged_by(t: &Theme, d: Department) -> bool {
    t.body.departments.contains(&d) && t.log.acknowledgements.iter().any(|a| a.department == d)
}

/// Whether any department the theme concerns acknowledged it.
pub(crate) fn acknowledged_at_all(t: &Theme) -> bool {
    t.body.departments.iter().any(|d| acknowledged_by(t, *d))
}

/// Reach of one department (`None`: every department together) in one period.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReachRow {
    pub department: Option<Department>,
    /// "2026-04", or "" for the whole range.
    pub period: String,
    /// Themes concerning the department (all themes for the all-departments row).
    pub themes: i64,
    /// Of those, acknowledged by every department they concern.
    pub fully_acknowledged: i64,
    /// Of those, acknowledged by this department (by any department they
    /// concern, for the all-departments row).
    pub acknowledged: i64,
    /// fully_acknowledged ÷ themes × 100; `None` without themes.
    pub reach_percent: Option<f64>,
}

/// Reach and the themes no department acknowledged.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Reach {
    pub rows: Vec<ReachRow>,
    pub unacknowledged: Vec<Uuid>,
}

fn row(department: Option<Department>, period: &str, themes: &[&Theme]) -> ReachRow {
    let concerned: Vec<&&Theme> =
        themes.iter().filter(|t| department.is_none_or(|d| t.body.departments.contains(&d))).collect();
    let n = concerned.len() as i64;
    let full = concerned.iter().filter(|t| t.fully_acknowledged()).count() as i64;
    let acknowledged = concerned
        .iter()
        .filter(|t| match department {
            Some(d) => acknowledged_by(t, d),
            None => acknowledged_at_all(t),
        })
        .count() as i64;
    ReachRow {
        department,
        period: period.to_string(),
        themes: n,
        fully_acknowledged: full,
        acknowledged,
        reach_percent: (n > 0).then(|| full as f64 / n as f64 * 100.0),
    }
}

/// Reach of `themes`, each with the label of its period ("" for the whole
/// range): per period (in label order), the all-departments row first, then
/// one row per department (every department, a row without themes having no
/// reach); and the themes no department they concern has acknowledged, in
/// the order given.
pub(crate) fn reach(themes: &[(String, &Theme)]) -> Reach {
    let mut periods: BTreeMap<&str, Vec<&Theme>> = BTreeMap::new();
    for (p, t) in themes {
        periods.entry(p.as_str()).or_default().push(t);
    }
    let mut rows = Vec::new();
    for (p, ts) in &periods {
        rows.push(row(None, p, ts));
        rows.extend(Department::ALL.iter().map(|d| row(Some(*d), p, ts)));
    }
    let unacknowledged = themes.iter().filter(|(_, t)| !acknowledged_at_all(t)).map(|(_, t)| t.id).collect();
    Reach { rows, unacknowledged }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        rank::Assessment,
        voice::{Roadmap, ThemeBody, ThemeLog},
    };
    use Department::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + s, 0).unwrap()
    }

    fn theme(n: u128, departments: &[Department], acks: &[Department]) -> Theme {
        Theme {
            id: Uuid::from_u128(n),
            body: ThemeBody {
                display_name: format!("theme {n}"),
                description: String::new(),
                keywords: vec![],
                decision_owner: "vp-product".into(),
                departments: departments.to_vec(),
                assessment: Assessment::default(),
                roadmap: Roadmap::default(),
            },
            log: ThemeLog {
                acknowledgements: acks
                    .iter()
                    .map(|d| Acknowledgement { department: *d, acknowledged_by: "x".into(), acknowledge_time: at(0) })
                    .collect(),
                ..Default::default()
            },
            create_time: at(0),
            update_time: at(0),
            version: 1,
        }
    }

    fn decision() -> Decision {
        Decision {
            decision: "build it".into(),
            rationale: "eight accounts".into(),
            departments_consulted: vec![Product, Support],
            decided_by: "vp-product".into(),
            decide_time: at(5),
        }
    }

    #[test]
    fn a_department_acknowledges_once_and_only_a_concerned_one() {
        let mut t = theme(1, &[Product, Support], &[]);
        assert_eq!(acknowledge(&mut t, Sales, "sam", at(1)), Err(Refusal::NotConcerned(Sales)));
        assert_eq!(acknowledge(&mut t, Product, "pat", at(2)), Ok(true));
        // The first acknowledgement is kept: who and when it first reached product.
        assert_eq!(acknowledge(&mut t, Product, "pia", at(3)), Ok(false));
        assert_eq!(t.log.acknowledgements.len(), 1);
        assert_eq!(
            (t.log.acknowledgements[0].acknowledged_by.as_str(), t.log.acknowledgements[0].acknowledge_time),
            ("pat", at(2))
        );
        assert!(!t.fully_acknowledged());
        assert_eq!(acknowledge(&mut t, Support, "sue", at(4)), Ok(true));
        assert!(t.fully_acknowledged());
    }

    #[test]
    fn the_roadmap_moves_closes_the_loop_and_may_need_a_decision() {
        use RoadmapStatus::*;
        let mut t = theme(1, &[Product], &[]);
        assert_eq!(move_to(&mut t, Planned, "pm", at(1), true), Ok(Some(Moved { change: 1, old: None, new: Planned })));
        // The same status again: nothing.
        assert_eq!(move_to(&mut t, Planned, "pm", at(2), true), Ok(None));
        assert_eq!(t.log.roadmap_history.len(), 1);
        // Shipped without a decision, where the tenant requires one: refused, nothing kept.
        assert_eq!(move_to(&mut t, Shipped, "pm", at(3), true), Err(Refusal::DecisionRequired(Shipped)));
        assert_eq!(t.status(), Some(Planned));
        // Where it does not: allowed. Declined after a decision too.
        let mut u = t.clone();
        assert_eq!(move_to(&mut u, Declined, "pm", at(3), false).unwrap().unwrap().change, 2);
        decide(&mut t, decision());
        assert_eq!(latest_decision(&t).map(|d| d.decision.as_str()), Some("build it"));
        let m = move_to(&mut t, Shipped, "pm", at(4), true).unwrap().unwrap();
        assert_eq!(m, Moved { change: 2, old: Some(Planned), new: Shipped });
        assert_eq!(t.status(), Some(Shipped));
        // Reopened and shipped again: a change of its own, a loop of its own.
        assert_eq!(move_to(&mut t, InProgress, "pm", at(5), true).unwrap().unwrap().change, 3);
        assert_eq!(move_to(&mut t, Shipped, "pm", at(6), true).unwrap().unwrap().change, 4);
        with_told(&mut t, &BTreeMap::from([(2, 3), (4, 5)]));
        let told: Vec<i64> = t.log.roadmap_history.iter().map(|c| c.accounts_told).collect();
        assert_eq!(told, vec![0, 3, 0, 5]);
    }

    #[test]
    fn each_account_that_raised_the_theme_is_told_once_with_its_contacts_and_items() {
        let (a, b) = (Uuid::from_u128(0xa), Uuid::from_u128(0xb));
        let (c1, c2) = (Uuid::from_u128(0xc1), Uuid::from_u128(0xc2));
        let i = |n: u128| Uuid::from_u128(0x100 + n);
        let items = [
            Raised { item: i(3), account: b, contact: None },
            Raised { item: i(1), account: a, contact: Some(c2) },
            Raised { item: i(2), account: a, contact: Some(c1) },
            Raised { item: i(4), account: a, contact: Some(c2) },
        ];
        assert_eq!(
            raisers(&items),
            vec![
                Raiser { account: a, contacts: vec![c1, c2], items: vec![i(1), i(2), i(4)] },
                Raiser { account: b, contacts: vec![], items: vec![i(3)] },
            ]
        );
        assert!(raisers(&[]).is_empty());
    }

    /// docs/metrics.md's worked example.
    #[test]
    fn reach_per_department_and_period() {
        let t1 = theme(1, &[Product, Support], &[Product, Support]);
        let t2 = theme(2, &[Product, Sales], &[Product]);
        let t3 = theme(3, &[Support], &[]);
        let t4 = theme(4, &[Product], &[Product]);
        let t5 = theme(5, &[], &[]);
        let all = [
            ("2026-04".to_string(), &t1),
            ("2026-04".to_string(), &t2),
            ("2026-04".to_string(), &t3),
            ("2026-05".to_string(), &t4),
            ("2026-05".to_string(), &t5),
        ];
        let r = reach(&all);
        let get = |p: &str, d: Option<Department>| {
            r.rows.iter().find(|x| x.period == p && x.department == d).unwrap().clone()
        };
        assert_eq!(r.rows.len(), 12, "two periods × (all + 5 departments)");
        assert_eq!(r.rows[0].department, None, "the all-departments row first");
        let april = get("2026-04", None);
        assert_eq!((april.themes, april.fully_acknowledged, april.acknowledged), (3, 1, 2));
        assert!((april.reach_percent.unwrap() - 100.0 / 3.0).abs() < 1e-9);
        let product = get("2026-04", Some(Product));
        assert_eq!(
            (product.themes, product.fully_acknowledged, product.acknowledged, product.reach_percent),
            (2, 1, 2, Some(50.0))
        );
        let support = get("2026-04", Some(Support));
        assert_eq!(
            (support.themes, support.fully_acknowledged, support.acknowledged, support.reach_percent),
            (2, 1, 1, Some(50.0))
        );
        let sales = get("2026-04", Some(Sales));
        assert_eq!(
            (sales.themes, sales.fully_acknowledged, sales.acknowledged, sales.reach_percent),
            (1, 0, 0, Some(0.0))
        );
        let billing = get("2026-04", Some(Billing));
        assert_eq!((billing.themes, billing.reach_percent), (0, None), "no themes: no reach");
        // A theme that concerns no department reached no one.
        let may = get("2026-05", None);
        assert_eq!((may.themes, may.fully_acknowledged, may.acknowledged, may.reach_percent), (2, 1, 1, Some(50.0)));
        assert_eq!(r.unacknowledged, vec![t3.id, t5.id]);

        // The whole range: one period "".
        let whole: Vec<(String, &Theme)> = all.iter().map(|(_, t)| (String::new(), *t)).collect();
        let r = reach(&whole);
        assert_eq!(r.rows.len(), 6);
        assert_eq!(r.rows[0].period, "");
        assert_eq!((r.rows[0].themes, r.rows[0].fully_acknowledged, r.rows[0].reach_percent), (5, 2, Some(40.0)));
        assert!(reach(&[]).rows.is_empty());
    }
}
