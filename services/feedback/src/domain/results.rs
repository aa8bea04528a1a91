//! The figures built from answers, pure: results by group and period, the
//! perception gap, the CSMs' predictions against the answers, and the
//! health band × NPS category matrix. The app layer reads the rows; every
//! formula is here and in docs/metrics.md.

use std::collections::{BTreeMap, HashMap};

use banso_kit::calendar::{Period, PeriodKind};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{
    projection::{Band, Snapshot},
    stats::{self, Estimate},
    survey::{Kind, NpsCategory, nps_category},
};

named!(Grouping {
    None = "none",
    Industry = "industry",
    Size = "size",
    Region = "region",
    Plan = "plan",
    LifecycleStage = "lifecycle_stage",
    TouchModel = "touch_model",
    HealthBand = "health_band",
});

impl Grouping {
    /// The group of an account as it was; "unknown" where it was not known.
    pub(crate) fn key(self, s: &Snapshot) -> String {
        let v = match self {
            Grouping::None => return String::new(),
            Grouping::Industry => &s.industry,
            Grouping::Size => &s.size,
            Grouping::Region => &s.region,
            Grouping::Plan => &s.plan,
            Grouping::LifecycleStage => &s.lifecycle_stage,
            Grouping::TouchModel => &s.touch_model,
            Grouping::HealthBand => &s.health_band,
        };
        if v.is_empty() { "unknown".into() } else { v.clone() }
    }
}

/// How rows are cut in time: the whole range, or periods of the tenant's
/// calendar (months, fiscal quarters, fiscal years).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Periods {
    Whole,
    Of(PeriodKind),
}

/// The tenant's calendar: its zone and its fiscal year's first month.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Calendar {
    pub tz: chrono_tz::Tz,
    pub fy_start_month: u32,
}

impl Calendar {
    pub(crate) fn day(&self, t: DateTime<Utc>) -> NaiveDate {
        banso_kit::calendar::today_in(self.tz, t)
    }

    /// The period of `t` and its label ("2026-04", "FY2026 Q1", "FY2026"),
    /// or the range's own start for the whole range. Fiscal year N starts
    /// in the start month of calendar year N.
    pub(crate) fn period(&self, periods: Periods, t: DateTime<Utc>, range_start: NaiveDate) -> (NaiveDate, String) {
        let day = self.day(t);
        let Periods::Of(kind) = periods else { return (range_start, String::new()) };
        let Ok(p) = Period::containing(day, kind, self.fy_start_month) else { return (day, String::new()) };
        let fy = banso_kit::calendar::fiscal_year_of(p.start, self.fy_start_month).unwrap_or(0);
        let label = match kind {
            PeriodKind::Month => p.start.format("%Y-%m").to_string(),
            PeriodKind::FiscalQuarter => {
                let months = (chrono::Datelike::month(&p.start) + 12 - self.fy_start_month) % 12;
                format!("FY{fy} Q{}", months / 3 + 1)
            }
            PeriodKind::FiscalYear => format!("FY{fy}"),
        };
        (p.start, label)
    }
}

/// One answer as results read it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AnswerFact {
    pub account_id: Uuid,
    pub contact_id: Uuid,
    pub score: Option<i32>,
    pub perception: Option<i32>,
    pub answer_time: DateTime<Utc>,
    pub snapshot: Snapshot,
}

/// One invitation as the response rate reads it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InvitationFact {
    pub send_time: DateTime<Utc>,
    /// Delivered (marked, or answered).
    pub delivered: bool,
    pub answered: bool,
    pub snapshot: Snapshot,
}

/// The figures of one group in one period.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Row {
    pub group: String,
    pub period_start: Option<NaiveDate>,
    pub period: String,
    pub answers: i64,
    pub promoters: i64,
    pub passives: i64,
    pub detractors: i64,
    pub nps: Estimate,
    pub csat: Estimate,
    pub ces: Estimate,
    pub outcome: Estimate,
    pub response_rate: Estimate,
    pub delivered: i64,
}

#[derive(Default)]
struct Tally {
    scores: Vec<f64>,
    delivered: i64,
    answered: i64,
}

fn row(kind: Kind, group: String, period_start: Option<NaiveDate>, period: String, t: &Tally) -> Row {
    let n = t.scores.len() as i64;
    let count = |f: &dyn Fn(f64) -> bool| t.scores.iter().filter(|s| f(**s)).count() as i64;
    let mut r = Row {
        group,
        period_start,
        period,
        answers: n,
        response_rate: stats::percent(t.answered, t.delivered),
        delivered: t.delivered,
        ..Row::default()
    };
    match kind {
        Kind::Nps => {
            r.promoters = count(&|s| nps_category(s) == NpsCategory::Promoter);
            r.detractors = count(&|s| nps_category(s) == NpsCategory::Detractor);
            r.passives = n - r.promoters - r.detractors;
            r.nps = stats::nps(r.promoters, r.detractors, n);
        }
        Kind::Csat => r.csat = stats::percent(count(&|s| s >= 4.0), n),
        Kind::Ces => r.ces = stats::mean(&t.scores, 1.0, 7.0),
        Kind::Outcome => r.outcome = stats::mean(&t.scores, 1.0, 5.0),
        Kind::Custom => {}
    }
    r
}

/// Results of a survey of `kind`: rows by period (oldest first), then
/// group; and the total. Answers count in the period of their answer time,
/// invitations in that of their send time.
pub(crate) fn results(
    kind: Kind,
    grouping: Grouping,
    periods: Periods,
    cal: &Calendar,
    range_start: NaiveDate,
    answers: &[AnswerFact],
    invitations: &[InvitationFact],
) -> (Vec<Row>, Row) {
    let mut cells: BTreeMap<(NaiveDate, String, String), Tally> = BTreeMap::new();
    let mut total = Tally::default();
    for a in answers {
        let Some(s) = a.score else { continue };
        let (start, label) = cal.period(periods, a.answer_time, range_start);
        cells.entry((start, label, grouping.key(&a.snapshot))).or_default().scores.push(f64::from(s));
        total.scores.push(f64::from(s));
    }
    for i in invitations.iter().filter(|i| i.delivered) {
        let (start, label) = cal.period(periods, i.send_time, range_start);
        let t = cells.entry((start, label, grouping.key(&i.snapshot))).or_default();
        t.delivered += 1;
        t.answered += i64::from(i.answered);
        total.delivered += 1;
        total.answered += i64::from(i.answered);
    }
    let rows = cells.into_iter().map(|((start, label, group), t)| row(kind, group, Some(start), label, &t)).collect();
    (rows, row(kind, String::new(), Some(range_start), String::new(), &total))
}

/// Agreement with a perception statement: 4 or 5 of 1–5.
pub(crate) fn agrees(x: i32) -> bool {
    x >= 4
}

/// One account-team answer to the statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TeamFact {
    pub account_id: Uuid,
    pub respondent: String,
    pub agreement: i32,
    pub answer_time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GapRow {
    pub period_start: NaiveDate,
    pub period: String,
    pub vendor: Estimate,
    pub customer: Estimate,
    pub gap: Estimate,
}

/// The perception gap by period and in total: within each, the latest
/// answer of each (respondent, account) on the vendor's side and of each
/// contact on the customer's counts once; agreement is the share of 4–5;
/// the gap is vendor − customer in points with Newcombe's interval.
pub(crate) fn perception_gap(
    periods: Periods,
    cal: &Calendar,
    range_start: NaiveDate,
    team: &[TeamFact],
    customers: &[AnswerFact],
) -> (Vec<GapRow>, GapRow) {
    type Latest<K> = HashMap<K, (DateTime<Utc>, i32)>;
    fn keep<K: std::hash::Hash + Eq>(m: &mut Latest<K>, k: K, t: DateTime<Utc>, x: i32) {
        let e = m.entry(k).or_insert((t, x));
        if t >= e.0 {
            *e = (t, x);
        }
    }
    fn share<K>(m: &Latest<K>) -> (i64, i64) {
        (m.values().filter(|(_, x)| agrees(*x)).count() as i64, m.len() as i64)
    }
    fn gap_row(start: NaiveDate, label: String, v: (i64, i64), c: (i64, i64)) -> GapRow {
        GapRow {
            period_start: start,
            period: label,
            vendor: stats::percent(v.0, v.1),
            customer: stats::percent(c.0, c.1),
            gap: stats::difference(v.0, v.1, c.0, c.1),
        }
    }
    let mut vendor: BTreeMap<(NaiveDate, String), Latest<(String, Uuid)>> = BTreeMap::new();
    let mut customer: BTreeMap<(NaiveDate, String), Latest<Uuid>> = BTreeMap::new();
    let (mut all_v, mut all_c): (Latest<(String, Uuid)>, Latest<Uuid>) = Default::default();
    for t in team {
        let p = cal.period(periods, t.answer_time, range_start);
        keep(vendor.entry(p).or_default(), (t.respondent.clone(), t.account_id), t.answer_time, t.agreement);
        keep(&mut all_v, (t.respondent.clone(), t.account_id), t.answer_time, t.agreement);
    }
    for a in customers {
        let Some(x) = a.perception else { continue };
        let p = cal.period(periods, a.answer_time, range_start);
        keep(customer.entry(p).or_default(), a.contact_id, a.answer_time, x);
        keep(&mut all_c, a.contact_id, a.answer_time, x);
    }
    let mut keys: Vec<_> = vendor.keys().chain(customer.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    let rows = keys
        .into_iter()
        .map(|k| {
            let v = vendor.get(&k).map(share).unwrap_or_default();
            let c = customer.get(&k).map(share).unwrap_or_default();
            gap_row(k.0, k.1, v, c)
        })
        .collect();
    (rows, gap_row(range_start, String::new(), share(&all_v), share(&all_c)))
}

/// What a CSM predicted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Predicted {
    Score(i32),
    /// Healthy (true) or at risk (false).
    Healthy(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PredictionFact {
    pub campaign_id: Uuid,
    pub account_id: Uuid,
    pub predictor: String,
    pub predicted: Predicted,
}

/// An account's answers in a campaign: the mean score and the first answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Actual {
    pub mean: f64,
    pub first_answer: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AccountGap {
    pub fact: PredictionFact,
    pub actual: Actual,
    pub actual_category: NpsCategory,
    /// From the score; "at risk" is a detractor's; "healthy" has none (a
    /// promoter's or a passive's).
    pub predicted_category: Option<NpsCategory>,
    pub gap: Option<f64>,
    pub mismatch: bool,
}

/// The prediction against the answer: a score's gap is predicted − actual
/// mean; the categories differ when the predicted score's category is not
/// the mean's, when "healthy" meets a detractor, or "at risk" meets a
/// promoter or passive.
pub(crate) fn account_gap(fact: PredictionFact, actual: Actual) -> AccountGap {
    let actual_category = nps_category(actual.mean);
    let (predicted_category, gap, mismatch) = match fact.predicted {
        Predicted::Score(s) => {
            let c = nps_category(f64::from(s));
            (Some(c), Some(f64::from(s) - actual.mean), c != actual_category)
        }
        Predicted::Healthy(h) => {
            ((!h).then_some(NpsCategory::Detractor), None, h == (actual_category == NpsCategory::Detractor))
        }
    };
    AccountGap { fact, actual, actual_category, predicted_category, gap, mismatch }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GapSummary {
    pub group: String,
    pub period_start: NaiveDate,
    pub period: String,
    pub n: i64,
    pub mean_gap: Estimate,
    pub mean_absolute_gap: Option<f64>,
    pub mismatch_rate: Estimate,
}

/// Summaries of `gaps` by `group_of` and period of the first answer.
pub(crate) fn summarise(
    gaps: &[AccountGap],
    group_of: impl Fn(&AccountGap) -> String,
    periods: Periods,
    cal: &Calendar,
    range_start: NaiveDate,
) -> Vec<GapSummary> {
    let mut cells: BTreeMap<(NaiveDate, String, String), Vec<&AccountGap>> = BTreeMap::new();
    for g in gaps {
        let (start, label) = cal.period(periods, g.actual.first_answer, range_start);
        cells.entry((start, label, group_of(g))).or_default().push(g);
    }
    cells
        .into_iter()
        .map(|((start, label, group), gs)| {
            let scored: Vec<f64> = gs.iter().filter_map(|g| g.gap).collect();
            let n = gs.len() as i64;
            GapSummary {
                group,
                period_start: start,
                period: label,
                n,
                mean_gap: stats::mean(&scored, -10.0, 10.0),
                mean_absolute_gap: (!scored.is_empty())
                    .then(|| scored.iter().map(|g| g.abs()).sum::<f64>() / scored.len() as f64),
                mismatch_rate: stats::percent(gs.iter().filter(|g| g.mismatch).count() as i64, n),
            }
        })
        .collect()
}

/// An account's place in the band × category matrix.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MatrixEntry {
    pub account_id: Uuid,
    pub band: Option<Band>,
    pub category: NpsCategory,
    /// The mean of its contacts' latest scores.
    pub score: f64,
    pub respondents: i64,
}

/// Each account's category from the mean of its contacts' latest NPS
/// answers (`answers` of one survey in the range), beside its band.
pub(crate) fn matrix(answers: &[AnswerFact], band_of: impl Fn(Uuid) -> Option<Band>) -> Vec<MatrixEntry> {
    let mut latest: HashMap<(Uuid, Uuid), (DateTime<Utc>, i32)> = HashMap::new();
    for a in answers {
        let Some(s) = a.score else { continue };
        let e = latest.entry((a.account_id, a.contact_id)).or_insert((a.answer_time, s));
        if a.answer_time >= e.0 {
            *e = (a.answer_time, s);
        }
    }
    let mut per_account: BTreeMap<Uuid, Vec<f64>> = BTreeMap::new();
    for ((account, _), (_, s)) in latest {
        per_account.entry(account).or_default().push(f64::from(s));
    }
    per_account
        .into_iter()
        .map(|(account_id, scores)| {
            let score = scores.iter().sum::<f64>() / scores.len() as f64;
            MatrixEntry {
                account_id,
                band: band_of(account_id),
                category: nps_category(score),
                score,
                respondents: scores.len() as i64,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calendar {
        Calendar { tz: chrono_tz::Asia::Tokyo, fy_start_month: 4 }
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn answer(contact: u128, score: i32, at: &str, industry: &str) -> AnswerFact {
        AnswerFact {
            account_id: Uuid::from_u128(contact / 10),
            contact_id: Uuid::from_u128(contact),
            score: Some(score),
            perception: None,
            answer_time: t(at),
            snapshot: Snapshot { industry: industry.into(), ..Snapshot::default() },
        }
    }

    /// Periods are the tenant's: 2026-03-31T16:00Z is April 1st in Tokyo,
    /// the first day of FY2026 when the year starts in April.
    #[test]
    fn periods_follow_the_tenants_zone_and_fiscal_year() {
        let c = cal();
        let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let at = t("2026-03-31T16:00:00Z");
        assert_eq!(c.period(Periods::Of(PeriodKind::Month), at, start).1, "2026-04");
        assert_eq!(c.period(Periods::Of(PeriodKind::FiscalQuarter), at, start).1, "FY2026 Q1");
        assert_eq!(c.period(Periods::Of(PeriodKind::FiscalYear), at, start).1, "FY2026");
        let before = t("2026-03-31T14:00:00Z");
        assert_eq!(c.period(Periods::Of(PeriodKind::FiscalQuarter), before, start).1, "FY2025 Q4");
        assert_eq!(c.period(Periods::Whole, at, start), (start, String::new()));
    }

    /// NPS by industry and month, with the response rate by send date.
    #[test]
    fn results_by_group_and_period() {
        let answers = [
            answer(11, 10, "2026-05-01T00:00:00Z", "retail"),
            answer(12, 9, "2026-05-02T00:00:00Z", "retail"),
            answer(21, 3, "2026-05-03T00:00:00Z", "finance"),
            answer(22, 8, "2026-06-03T00:00:00Z", "finance"),
        ];
        let inv = |at: &str, delivered, answered, industry: &str| InvitationFact {
            send_time: t(at),
            delivered,
            answered,
            snapshot: Snapshot { industry: industry.into(), ..Snapshot::default() },
        };
        let invitations = [
            inv("2026-04-30T00:00:00Z", true, true, "retail"),
            inv("2026-04-30T00:00:00Z", true, true, "retail"),
            inv("2026-04-30T00:00:00Z", true, false, "retail"),
            inv("2026-04-30T00:00:00Z", false, false, "retail"),
        ];
        let start = NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
        let (rows, total) = results(
            Kind::Nps,
            Grouping::Industry,
            Periods::Of(PeriodKind::Month),
            &cal(),
            start,
            &answers,
            &invitations,
        );
        let brief: Vec<_> =
            rows.iter().map(|r| (r.period.as_str(), r.group.as_str(), r.answers, r.delivered)).collect();
        assert_eq!(
            brief,
            [
                ("2026-04", "retail", 0, 3),
                ("2026-05", "finance", 1, 0),
                ("2026-05", "retail", 2, 0),
                ("2026-06", "finance", 1, 0)
            ]
        );
        assert_eq!(rows[0].response_rate.value.map(|v| (v * 100.0).round() / 100.0), Some(66.67));
        assert_eq!(rows[2].nps.value, Some(100.0));
        assert_eq!(rows[1].nps.value, Some(-100.0));
        assert_eq!((total.promoters, total.passives, total.detractors), (2, 1, 1));
        assert_eq!(total.nps.value, Some(25.0));
        assert_eq!(total.nps.n, 4);
    }

    #[test]
    fn csat_ces_and_outcome() {
        let a = |s| answer(11, s, "2026-05-01T00:00:00Z", "");
        let start = NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
        let csat: Vec<_> = [5, 4, 3, 1, 4].into_iter().map(a).collect();
        let (_, total) = results(Kind::Csat, Grouping::None, Periods::Whole, &cal(), start, &csat, &[]);
        assert_eq!(total.csat.value, Some(60.0));
        let ces: Vec<_> = [5, 6, 7, 4, 6].into_iter().map(a).collect();
        let (rows, total) = results(Kind::Ces, Grouping::Size, Periods::Whole, &cal(), start, &ces, &[]);
        assert!((total.ces.value.unwrap() - 5.6).abs() < 1e-9);
        assert_eq!(rows[0].group, "unknown");
        let (_, total) = results(Kind::Outcome, Grouping::None, Periods::Whole, &cal(), start, &[a(2), a(4)], &[]);
        assert_eq!(total.outcome.value, Some(3.0));
        assert_eq!(total.nps.n, 0, "only the survey's own figure");
    }

    /// The source's gap: 8 of 10 of the vendor's people agree, 8 of 100
    /// customers do: 72 points. A respondent's latest answer counts once.
    #[test]
    fn the_perception_gap() {
        let team: Vec<_> = (0..10)
            .map(|i| TeamFact {
                account_id: Uuid::from_u128(1),
                respondent: format!("csm-{i}"),
                agreement: if i < 8 { 5 } else { 2 },
                answer_time: t("2026-05-01T00:00:00Z"),
            })
            .chain([TeamFact {
                account_id: Uuid::from_u128(1),
                respondent: "csm-9".into(),
                agreement: 1,
                answer_time: t("2026-04-20T00:00:00Z"),
            }])
            .collect();
        let customers: Vec<_> = (0..100u128)
            .map(|i| AnswerFact {
                perception: Some(if i < 8 { 4 } else { 2 }),
                ..answer(100 + i, 5, "2026-05-03T00:00:00Z", "")
            })
            .collect();
        let start = NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
        let (rows, total) = perception_gap(Periods::Whole, &cal(), start, &team, &customers);
        assert_eq!(rows.len(), 1);
        assert_eq!((total.vendor.value, total.vendor.n), (Some(80.0), 10));
        assert_eq!((total.customer.value, total.customer.n), (Some(8.0), 100));
        assert!((total.gap.value.unwrap() - 72.0).abs() < 1e-9);
    }

    #[test]
    fn predictions_against_answers() {
        let fact = |p| PredictionFact {
            campaign_id: Uuid::nil(),
            account_id: Uuid::nil(),
            predictor: "csm".into(),
            predicted: p,
        };
        let actual = |mean| Actual { mean, first_answer: t("2026-05-01T00:00:00Z") };
        let g = account_gap(fact(Predicted::Score(9)), actual(6.5));
        assert_eq!(
            (g.gap, g.predicted_category, g.actual_category, g.mismatch),
            (Some(2.5), Some(NpsCategory::Promoter), NpsCategory::Detractor, true)
        );
        assert!(!account_gap(fact(Predicted::Score(7)), actual(8.0)).mismatch);
        assert!(account_gap(fact(Predicted::Healthy(true)), actual(5.0)).mismatch, "healthy but a detractor");
        assert!(!account_gap(fact(Predicted::Healthy(true)), actual(7.0)).mismatch);
        let at_risk = account_gap(fact(Predicted::Healthy(false)), actual(2.0));
        assert_eq!((at_risk.mismatch, at_risk.predicted_category), (false, Some(NpsCategory::Detractor)));
        assert_eq!(account_gap(fact(Predicted::Healthy(true)), actual(9.0)).predicted_category, None);
        assert!(account_gap(fact(Predicted::Healthy(false)), actual(9.5)).mismatch);
        let gaps = [
            account_gap(fact(Predicted::Score(9)), actual(6.5)),
            account_gap(fact(Predicted::Score(5)), actual(6.5)),
            account_gap(fact(Predicted::Healthy(true)), actual(9.0)),
        ];
        let s = summarise(&gaps, |g| g.fact.predictor.clone(), Periods::Whole, &cal(), NaiveDate::MIN);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].n, 3);
        assert_eq!(s[0].mean_gap.value, Some(0.5));
        assert_eq!(s[0].mean_absolute_gap, Some(2.0));
        assert!((s[0].mismatch_rate.value.unwrap() - 100.0 / 3.0).abs() < 1e-9);
    }

    /// An account's category is that of the mean of its contacts' latest
    /// scores: contact 11 answered 3 then 10, contact 12 answered 6 → mean 8, passive.
    #[test]
    fn the_matrix_uses_each_contacts_latest_answer() {
        let answers = [
            answer(11, 3, "2026-05-01T00:00:00Z", ""),
            answer(11, 10, "2026-06-01T00:00:00Z", ""),
            answer(12, 6, "2026-05-01T00:00:00Z", ""),
            answer(21, 2, "2026-05-01T00:00:00Z", ""),
        ];
        let m = matrix(&answers, |a| (a == Uuid::from_u128(1)).then_some(Band::Green));
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].band, m[0].category, m[0].score, m[0].respondents),
            (Some(Band::Green), NpsCategory::Passive, 8.0, 2)
        );
        assert_eq!((m[1].band, m[1].category), (None, NpsCategory::Detractor));
    }
}
