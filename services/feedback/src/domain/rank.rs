//! Target selection, the essay's step 0: impact = generality × longevity ×
//! severity; contribution possibility = opportunity × ease; support cost;
//! priority = impact^wi × contribution^wc ÷ cost^wk (× ARR share^wa). Every
//! factor is returned, and docs/metrics.md works an example a test
//! reproduces.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};

/// The essay's quadrant: what we can support × what customers consult us about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quadrant {
    ActNow,
    WidenConsultation,
    BuildCapability,
    Last,
}

impl Quadrant {
    pub(crate) fn of(we_can_support: bool, customers_consult_us: bool) -> Quadrant {
        match (we_can_support, customers_consult_us) {
            (true, true) => Quadrant::ActNow,
            (true, false) => Quadrant::WidenConsultation,
            (false, true) => Quadrant::BuildCapability,
            (false, false) => Quadrant::Last,
        }
    }

    /// How much of the opportunity the quadrant leaves: act now 1, widen
    /// what customers bring us 0.75, build the capability 0.5, last 0.25.
    pub(crate) fn factor(self) -> f64 {
        match self {
            Quadrant::ActNow => 1.0,
            Quadrant::WidenConsultation => 0.75,
            Quadrant::BuildCapability => 0.5,
            Quadrant::Last => 0.25,
        }
    }
}

/// What a person judges of a theme (0 for a 1–5 scale: not assessed, 3).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Assessment {
    pub main_component: bool,
    pub mainstream: bool,
    pub root_cause: bool,
    pub bottleneck: bool,
    pub we_can_support: bool,
    pub customers_consult_us: bool,
    pub expertise: i32,
    pub competitor_meets_need: bool,
    pub certainty: i32,
    pub speed: i32,
    pub initial_cost: f64,
    pub operating_cost_per_account: f64,
}

impl Assessment {
    pub(crate) fn lenses(&self) -> i32 {
        [self.main_component, self.mainstream, self.root_cause, self.bottleneck].iter().filter(|x| **x).count() as i32
    }
}

/// A 1–5 judgement, 3 when not given.
fn scale(x: i32) -> f64 {
    if (1..=5).contains(&x) { f64::from(x) } else { 3.0 }
}

/// One mention of the theme: an item of an account of the segment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mention {
    pub account: uuid::Uuid,
    pub contact: Option<uuid::Uuid>,
    pub day: NaiveDate,
    pub severity: i32,
}

/// What is known of a mentioning account now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MentioningAccount {
    /// Red in health, or its latest NPS answer a detractor's.
    pub at_risk: bool,
    pub has_champion: bool,
    /// Latest health score 0–100.
    pub health: Option<f64>,
    /// ARR in minor units of the segment's main currency (0: none or another).
    pub arr: i64,
}

/// The exponents of the priority.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Weights {
    pub impact: f64,
    pub contribution: f64,
    pub cost: f64,
    pub arr: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights { impact: 1.0, contribution: 1.0, cost: 1.0, arr: 0.0 }
    }
}

/// Every factor of a theme's priority.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Factors {
    pub accounts: i64,
    pub segment_accounts: i64,
    pub contacts: i64,
    pub segment_contacts: i64,
    pub generality: f64,
    pub span_days: i64,
    pub month_coverage: f64,
    pub longevity: f64,
    pub mean_severity: f64,
    pub at_risk_share: f64,
    pub lenses: i32,
    pub severity: f64,
    pub impact: f64,
    pub quadrant: Quadrant,
    pub champion_share: f64,
    pub relationship: f64,
    pub opportunity: f64,
    pub ease: f64,
    pub contribution: f64,
    pub cost: f64,
    pub arr_share: f64,
    pub priority: f64,
}

fn share(k: i64, n: i64) -> f64 {
    if n > 0 { k as f64 / n as f64 } else { 0.0 }
}

fn month_index(d: NaiveDate) -> i32 {
    d.year() * 12 + d.month0() as i32
}

/// The factors of a theme mentioned by `mentions` in a segment of
/// `segment_accounts` accounts and `segment_contacts` contacts whose ARR
/// (main currency) is `segment_arr`; `accounts` says what is known of each
/// mentioning account (looked up by the caller, in mention order).
pub(crate) fn factors(
    a: &Assessment,
    mentions: &[Mention],
    accounts: &dyn Fn(uuid::Uuid) -> MentioningAccount,
    segment: (i64, i64, i64),
    w: &Weights,
) -> Factors {
    let (segment_accounts, segment_contacts, segment_arr) = segment;
    let account_ids: BTreeSet<uuid::Uuid> = mentions.iter().map(|m| m.account).collect();
    let contact_ids: BTreeSet<uuid::Uuid> = mentions.iter().filter_map(|m| m.contact).collect();
    let n_accounts = account_ids.len() as i64;
    let n_contacts = contact_ids.len() as i64;
    let generality = (share(n_accounts, segment_accounts) + share(n_contacts, segment_contacts)) / 2.0;
    let first = mentions.iter().map(|m| m.day).min();
    let last = mentions.iter().map(|m| m.day).max();
    let (span_days, month_coverage) = match (first, last) {
        (Some(f), Some(l)) => {
            let months: BTreeSet<i32> = mentions.iter().map(|m| month_index(m.day)).collect();
            let all = month_index(l) - month_index(f) + 1;
            ((l - f).num_days(), months.len() as f64 / f64::from(all))
        }
        _ => (0, 0.0),
    };
    let longevity = (span_days as f64 / 365.0).min(1.0) * month_coverage;
    let mean_severity = if mentions.is_empty() {
        0.0
    } else {
        mentions.iter().map(|m| f64::from(m.severity)).sum::<f64>() / mentions.len() as f64
    };
    let known: Vec<MentioningAccount> = account_ids.iter().map(|id| accounts(*id)).collect();
    let at_risk_share = share(known.iter().filter(|k| k.at_risk).count() as i64, n_accounts);
    let lenses = a.lenses();
    let severity = (mean_severity / 5.0 + at_risk_share + f64::from(lenses) / 4.0) / 3.0;
    let impact = generality * longevity * severity;
    let quadrant = Quadrant::of(a.we_can_support, a.customers_consult_us);
    let champion_share = share(known.iter().filter(|k| k.has_champion).count() as i64, n_accounts);
    let scored: Vec<f64> = known.iter().filter_map(|k| k.health).collect();
    let relationship = if scored.is_empty() { 0.5 } else { scored.iter().sum::<f64>() / scored.len() as f64 / 100.0 };
    let competitor = if a.competitor_meets_need { 0.5 } else { 1.0 };
    let opportunity = (scale(a.expertise) / 5.0 + champion_share + relationship) / 3.0 * quadrant.factor() * competitor;
    let ease = (scale(a.certainty) + scale(a.speed)) / 10.0;
    let contribution = opportunity * ease;
    let cost = a.initial_cost + a.operating_cost_per_account * n_accounts as f64;
    let arr_share = share(known.iter().map(|k| k.arr).sum(), segment_arr);
    // A cost not given (0) does not divide; an ARR weight of 0 leaves ARR out.
    let cost_factor = if cost > 0.0 { cost.powf(w.cost) } else { 1.0 };
    let arr_factor = if w.arr == 0.0 { 1.0 } else { arr_share.powf(w.arr) };
    let priority = impact.powf(w.impact) * contribution.powf(w.contribution) / cost_factor * arr_factor;
    Factors {
        accounts: n_accounts,
        segment_accounts,
        contacts: n_contacts,
        segment_contacts,
        generality,
        span_days,
        month_coverage,
        longevity,
        mean_severity,
        at_risk_share,
        lenses,
        severity,
        impact,
        quadrant,
        champion_share,
        relationship,
        opportunity,
        ease,
        contribution,
        cost,
        arr_share,
        priority,
    }
}

/// Exponents a ranking was asked for; each one not given falls back to
/// the next source (the request's over the tenant's over the defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct WeightsGiven {
    pub impact: Option<f64>,
    pub contribution: Option<f64>,
    pub cost: Option<f64>,
    pub arr: Option<f64>,
}

impl WeightsGiven {
    /// These weights where given, `base`'s elsewhere.
    pub(crate) fn over(self, base: Weights) -> Weights {
        Weights {
            impact: self.impact.unwrap_or(base.impact),
            contribution: self.contribution.unwrap_or(base.contribution),
            cost: self.cost.unwrap_or(base.cost),
            arr: self.arr.unwrap_or(base.arr),
        }
    }
}

/// The largest weight a ranking takes (weights are 0 to this).
pub(crate) const MAX_WEIGHT: f64 = 10.0;

/// An account of the segment as a ranking reads it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SegmentAccount {
    pub id: uuid::Uuid,
    /// Its ARR: currency code and minor units.
    pub arr: Option<(String, i64)>,
    /// Red in health.
    pub red: bool,
    /// Its latest scored NPS answer is a detractor's (0–6).
    pub detractor: bool,
    /// Latest health score 0–100.
    pub health: Option<f64>,
    /// One of its live contacts is a champion.
    pub has_champion: bool,
}

impl SegmentAccount {
    pub(crate) fn at_risk(&self) -> bool {
        self.red || self.detractor
    }
}

/// The segment's main currency: the one whose accounts' ARR adds up to the
/// most (a tie goes to the code first in alphabetical order), with that total.
pub(crate) fn main_currency(accounts: &[SegmentAccount]) -> Option<(String, i64)> {
    let totals = per_currency(accounts.iter());
    totals.into_iter().fold(None, |best: Option<(String, i64)>, (code, total)| match best {
        Some((_, b)) if b >= total => best,
        _ => Some((code, total)),
    })
}

/// ARR per currency, by code.
fn per_currency<'a>(accounts: impl Iterator<Item = &'a SegmentAccount>) -> Vec<(String, i64)> {
    let mut totals: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for (code, minor) in accounts.filter_map(|a| a.arr.as_ref()) {
        let t = totals.entry(code.as_str()).or_default();
        *t = t.saturating_add(*minor);
    }
    totals.into_iter().map(|(c, t)| (c.to_string(), t)).collect()
}

/// A theme to rank.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ThemeToRank {
    pub id: uuid::Uuid,
    pub display_name: String,
    pub assessment: Assessment,
}

/// A ranked theme: every factor, and the ARR at stake beside them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ranked {
    pub theme_id: uuid::Uuid,
    pub display_name: String,
    pub factors: Factors,
    /// ARR of the mentioning accounts per currency, by code.
    pub arr: Vec<(String, i64)>,
    /// ARR of those at risk (red or detractors) per currency, by code.
    pub arr_at_risk: Vec<(String, i64)>,
}

/// Ranks `themes` within a segment of `accounts` whose live contacts are
/// `contacts`. `mentions` are (theme, mention) pairs: a mention of an
/// account outside the segment is left out, and its contact counts only if
/// it is one of the segment's live contacts (so the contact share stays
/// within 0–1). An account's ARR counts in the priority only in the
/// segment's main currency. Highest priority first; a tie goes to the
/// smaller theme id.
pub(crate) fn rank(
    themes: &[ThemeToRank],
    accounts: &[SegmentAccount],
    contacts: &std::collections::HashSet<uuid::Uuid>,
    mentions: impl IntoIterator<Item = (uuid::Uuid, Mention)>,
    w: &Weights,
) -> Vec<Ranked> {
    use std::collections::HashMap;
    let by_id: HashMap<uuid::Uuid, &SegmentAccount> = accounts.iter().map(|a| (a.id, a)).collect();
    let main = main_currency(accounts);
    let segment_arr = main.as_ref().map_or(0, |(_, t)| *t);
    let mut of_theme: HashMap<uuid::Uuid, Vec<Mention>> = HashMap::new();
    for (theme, mut m) in mentions {
        if !by_id.contains_key(&m.account) {
            continue;
        }
        if m.contact.is_some_and(|c| !contacts.contains(&c)) {
            m.contact = None;
        }
        of_theme.entry(theme).or_default().push(m);
    }
    let know = |id: uuid::Uuid| match by_id.get(&id) {
        Some(a) => MentioningAccount {
            at_risk: a.at_risk(),
            has_champion: a.has_champion,
            health: a.health,
            arr: match (&a.arr, &main) {
                (Some((code, minor)), Some((main, _))) if code == main => *minor,
                _ => 0,
            },
        },
        None => MentioningAccount { at_risk: false, has_champion: false, health: None, arr: 0 },
    };
    let segment = (accounts.len() as i64, contacts.len() as i64, segment_arr);
    let mut out: Vec<Ranked> = themes
        .iter()
        .map(|t| {
            let ms = of_theme.get(&t.id).map(Vec::as_slice).unwrap_or_default();
            let raised: std::collections::BTreeSet<uuid::Uuid> = ms.iter().map(|m| m.account).collect();
            let raised: Vec<&SegmentAccount> = raised.iter().filter_map(|id| by_id.get(id).copied()).collect();
            Ranked {
                theme_id: t.id,
                display_name: t.display_name.clone(),
                factors: factors(&t.assessment, ms, &know, segment, w),
                arr: per_currency(raised.iter().copied()),
                arr_at_risk: per_currency(raised.iter().copied().filter(|a| a.at_risk())),
            }
        })
        .collect();
    out.sort_by(|a, b| b.factors.priority.total_cmp(&a.factors.priority).then(a.theme_id.cmp(&b.theme_id)));
    out
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }

    /// docs/metrics.md's worked example: a segment of 10 accounts and 40
    /// contacts; 4 accounts (6 contacts) raised the theme in 6 items from
    /// January 10 to October 7 (270 days), in 5 of its 10 months, severities
    /// 4, 5, 3, 4, 4, 4 (mean 4); one of the four is red; two lenses tagged.
    #[test]
    fn the_worked_example() {
        let acct: Vec<Uuid> = (1..=4).map(Uuid::from_u128).collect();
        let cont: Vec<Uuid> = (11..=16).map(Uuid::from_u128).collect();
        let mentions = vec![
            Mention { account: acct[0], contact: Some(cont[0]), day: day("2026-01-10"), severity: 4 },
            Mention { account: acct[0], contact: Some(cont[1]), day: day("2026-02-03"), severity: 5 },
            Mention { account: acct[1], contact: Some(cont[2]), day: day("2026-04-20"), severity: 3 },
            Mention { account: acct[2], contact: Some(cont[3]), day: day("2026-06-01"), severity: 4 },
            Mention { account: acct[3], contact: Some(cont[4]), day: day("2026-10-07"), severity: 4 },
            Mention { account: acct[3], contact: Some(cont[5]), day: day("2026-10-07"), severity: 4 },
        ];
        let a = Assessment {
            root_cause: true,
            bottleneck: true,
            we_can_support: true,
            customers_consult_us: false,
            expertise: 4,
            certainty: 4,
            speed: 2,
            initial_cost: 100.0,
            operating_cost_per_account: 5.0,
            ..Default::default()
        };
        let know = |id: Uuid| MentioningAccount {
            at_risk: id == Uuid::from_u128(2),
            has_champion: id.as_u128() <= 2,
            health: Some(if id == Uuid::from_u128(2) { 30.0 } else { 70.0 }),
            arr: 1_000_000,
        };
        let f = factors(&a, &mentions, &know, (10, 40, 10_000_000), &Weights::default());
        assert_eq!((f.accounts, f.contacts), (4, 6));
        close(f.generality, (0.4 + 0.15) / 2.0); // 0.275
        assert_eq!(f.span_days, 270);
        close(f.month_coverage, 0.5); // Jan, Feb, Apr, Jun, Oct of Jan–Oct
        close(f.longevity, 270.0 / 365.0 * 0.5);
        close(f.mean_severity, 4.0);
        close(f.at_risk_share, 0.25);
        close(f.severity, (0.8 + 0.25 + 0.5) / 3.0);
        close(f.impact, 0.275 * (270.0 / 365.0 * 0.5) * ((0.8 + 0.25 + 0.5) / 3.0));
        assert_eq!(f.quadrant, Quadrant::WidenConsultation);
        close(f.champion_share, 0.5);
        close(f.relationship, 0.6); // (70 + 30 + 70 + 70) ÷ 4 ÷ 100
        close(f.opportunity, (0.8 + 0.5 + 0.6) / 3.0 * 0.75);
        close(f.ease, 0.6);
        close(f.contribution, (0.8 + 0.5 + 0.6) / 3.0 * 0.75 * 0.6);
        close(f.cost, 120.0);
        close(f.arr_share, 0.4);
        close(f.priority, f.impact * f.contribution / 120.0);
        // ARR weighted in: × 0.4.
        let w = Weights { arr: 1.0, ..Weights::default() };
        close(factors(&a, &mentions, &know, (10, 40, 10_000_000), &w).priority, f.priority * 0.4);
    }

    /// A fad: many mentions in one month score no longevity, and so no impact.
    #[test]
    fn a_fad_scores_low() {
        let mentions: Vec<Mention> = (0..20)
            .map(|i| Mention { account: Uuid::from_u128(i), contact: None, day: day("2026-03-05"), severity: 5 })
            .collect();
        let f = factors(
            &Assessment::default(),
            &mentions,
            &|_| MentioningAccount { at_risk: false, has_champion: false, health: None, arr: 0 },
            (20, 0, 0),
            &Weights::default(),
        );
        close(f.generality, 0.5);
        close(f.longevity, 0.0);
        close(f.impact, 0.0);
        close(f.relationship, 0.5);
        assert_eq!(f.quadrant, Quadrant::Last);
    }

    #[test]
    fn a_competitor_halves_the_opportunity_and_no_cost_does_not_divide() {
        let m = [Mention { account: Uuid::from_u128(1), contact: None, day: day("2026-01-01"), severity: 3 }];
        let know = |_| MentioningAccount { at_risk: false, has_champion: true, health: Some(100.0), arr: 0 };
        let a = Assessment { we_can_support: true, customers_consult_us: true, expertise: 5, ..Default::default() };
        let f = factors(&a, &m, &know, (1, 0, 0), &Weights::default());
        close(f.opportunity, 1.0);
        let c = factors(&Assessment { competitor_meets_need: true, ..a }, &m, &know, (1, 0, 0), &Weights::default());
        close(c.opportunity, 0.5);
        close(f.cost, 0.0);
        close(f.priority, f.impact * f.contribution);
    }

    fn seg(id: u128, arr: Option<(&str, i64)>, red: bool, detractor: bool) -> SegmentAccount {
        SegmentAccount {
            id: Uuid::from_u128(id),
            arr: arr.map(|(c, m)| (c.to_string(), m)),
            red,
            detractor,
            health: None,
            has_champion: false,
        }
    }

    #[test]
    fn the_main_currency_has_the_largest_total_and_ties_go_alphabetically() {
        let accounts = [
            seg(1, Some(("USD", 600)), false, false),
            seg(2, Some(("JPY", 500)), false, false),
            seg(3, Some(("JPY", 200)), false, false),
            seg(4, None, false, false),
        ];
        assert_eq!(main_currency(&accounts), Some(("JPY".into(), 700)));
        let tie = [seg(1, Some(("USD", 5)), false, false), seg(2, Some(("EUR", 5)), false, false)];
        assert_eq!(main_currency(&tie), Some(("EUR".into(), 5)));
        assert_eq!(main_currency(&[seg(1, None, false, false)]), None);
    }

    #[test]
    fn ranking_keeps_to_the_segment_and_shows_arr_per_currency() {
        let (t1, t2, t3) = (Uuid::from_u128(101), Uuid::from_u128(102), Uuid::from_u128(103));
        let accounts = [
            seg(1, Some(("JPY", 1_000)), true, false),
            seg(2, Some(("JPY", 3_000)), false, true),
            seg(3, Some(("USD", 50)), false, false),
            seg(4, None, false, false),
        ];
        let contacts: std::collections::HashSet<Uuid> = [11, 12, 13].into_iter().map(Uuid::from_u128).collect();
        let m = |account: u128, contact: u128, d: &str| Mention {
            account: Uuid::from_u128(account),
            contact: Some(Uuid::from_u128(contact)),
            day: day(d),
            severity: 3,
        };
        let mentions = vec![
            (t1, m(1, 11, "2026-01-01")),
            (t1, m(2, 12, "2027-01-01")),
            (t1, m(3, 13, "2027-01-01")),
            // Outside the segment: left out.
            (t1, m(9, 19, "2026-06-01")),
            // A contact not of the segment: the account counts, the contact not.
            (t2, m(4, 99, "2026-01-01")),
        ];
        let themes: Vec<ThemeToRank> = [t3, t2, t1]
            .into_iter()
            .map(|id| ThemeToRank {
                id,
                display_name: format!("theme {}", id.as_u128()),
                assessment: Assessment::default(),
            })
            .collect();
        let r = rank(&themes, &accounts, &contacts, mentions, &Weights::default());
        // t1, the only one with a span (impact > 0), first: 3 accounts of 4
        // (two at risk), 3 contacts of 3.
        let first = &r[0];
        assert!(first.factors.priority > 0.0);
        assert_eq!(first.theme_id, t1);
        assert_eq!((first.factors.accounts, first.factors.segment_accounts), (3, 4));
        assert_eq!((first.factors.contacts, first.factors.segment_contacts), (3, 3));
        close(first.factors.at_risk_share, 2.0 / 3.0);
        assert_eq!(first.factors.span_days, 365);
        // JPY is the main currency (4,000); USD 50 does not count in the share.
        close(first.factors.arr_share, 1.0);
        assert_eq!(first.arr, [("JPY".to_string(), 4_000), ("USD".to_string(), 50)]);
        assert_eq!(first.arr_at_risk, [("JPY".to_string(), 4_000)]);
        // t2: one account, no contact counted, no ARR.
        let second = r.iter().find(|x| x.theme_id == t2).unwrap();
        assert_eq!((second.factors.accounts, second.factors.contacts), (1, 0));
        assert!(second.arr.is_empty() && second.arr_at_risk.is_empty());
        // Unmentioned t3 is listed with no accounts; t2 (one day, no span)
        // and t3 tie at priority 0: the smaller id first.
        let third = &r[2];
        assert_eq!(third.factors.accounts, 0);
        close(second.factors.priority, 0.0);
        close(third.factors.priority, 0.0);
        assert_eq!((r[1].theme_id, r[2].theme_id), (t2, t3));
    }

    #[test]
    fn weights_given_fall_back_one_by_one() {
        let tenant = WeightsGiven { cost: Some(2.0), arr: Some(1.0), ..Default::default() }.over(Weights::default());
        let asked = WeightsGiven { arr: Some(0.5), impact: Some(0.0), ..Default::default() }.over(tenant);
        assert_eq!(asked, Weights { impact: 0.0, contribution: 1.0, cost: 2.0, arr: 0.5 });
    }
}
