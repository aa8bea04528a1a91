//! Contract events and retention KPIs through the API: RecordContractEvent
//! moves the account (ARR, renewal date, stage), refuses contradictions
//! without writing anything, and GetRetentionMetrics answers a hand-computed
//! example for a quarter, a month, a fiscal year, a date range, a segment
//! and a currency (docs/metrics.md).

use banso_proto::{accounts as pb, types as tpb};
use pb::{ContractEventKind as K, get_retention_metrics_request::Period as P};
use tonic::Code;

use crate::common::*;

type Ymd = (i32, i32, i32);

fn d((y, m, day): Ymd) -> Option<tpb::Date> {
    date(y, m, day)
}

fn event(
    account_id: &str,
    kind: K,
    arr_after: Option<tpb::Money>,
    effective: Ymd,
    term_end: Option<Ymd>,
) -> pb::ContractEvent {
    pb::ContractEvent {
        account_id: account_id.into(),
        kind: kind as i32,
        arr_after,
        effective_date: d(effective),
        term_end: term_end.and_then(d),
        ..Default::default()
    }
}

async fn record(c: &mut Client, e: pb::ContractEvent) -> pb::RecordContractEventResponse {
    c.record_contract_event(pb::RecordContractEventRequest {
        contract_event: Some(e.clone()),
        request_id: String::new(),
    })
    .await
    .unwrap_or_else(|err| panic!("record {e:?}: {err:?}"))
    .into_inner()
}

async fn refused(c: &mut Client, e: pb::ContractEvent) -> tonic::Status {
    c.record_contract_event(pb::RecordContractEventRequest {
        contract_event: Some(e.clone()),
        request_id: String::new(),
    })
    .await
    .expect_err(&format!("{e:?} should be refused"))
}

async fn events(c: &mut Client, account_id: &str) -> Vec<pb::ContractEvent> {
    c.list_contract_events(pb::ListContractEventsRequest {
        account_id: account_id.into(),
        page_size: 1000,
        page_token: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
    .contract_events
}

/// The account and its contract history, to show a refused request wrote nothing.
async fn snapshot(c: &mut Client, account_id: &str) -> (pb::Account, Vec<pb::ContractEvent>) {
    let a = c.get_account(pb::GetAccountRequest { id: account_id.into() }).await.unwrap().into_inner();
    (a, events(c, account_id).await)
}

fn metrics_req(period: P) -> pb::GetRetentionMetricsRequest {
    pb::GetRetentionMetricsRequest { period: Some(period), ..Default::default() }
}

async fn metrics(c: &mut Client, req: pb::GetRetentionMetricsRequest) -> pb::RetentionMetrics {
    let m =
        c.get_retention_metrics(req.clone()).await.unwrap_or_else(|e| panic!("metrics {req:?}: {e:?}")).into_inner();
    check_identities(&m);
    m
}

fn quarter(fiscal_year: i32, quarter: i32) -> P {
    P::FiscalQuarter(pb::FiscalQuarter { fiscal_year, quarter })
}

fn month(year: i32, month: i32) -> P {
    P::Month(pb::YearMonth { year, month })
}

fn range(start: Ymd, end: Ymd) -> P {
    P::DateRange(pb::DateRange { start: d(start), end: d(end) })
}

const EPS: f64 = 1e-9;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < EPS
}

/// The identities every answer satisfies (docs/metrics.md).
fn check_identities(m: &pb::RetentionMetrics) {
    assert_eq!(
        m.starting_arr - m.churned_arr - m.contraction_arr + m.expansion_arr + m.new_arr,
        m.ending_arr,
        "the ARR bridge balances: {m:?}"
    );
    assert!(m.churned_logos <= m.starting_logos, "{m:?}");
    assert!(m.renewal_arr_retained <= m.renewal_arr_due, "{m:?}");
    if m.starting_arr > 0 {
        let s = m.starting_arr as f64;
        let grr = m.gross_revenue_retention.expect("GRR is set when starting ARR is above 0");
        let nrr = m.net_revenue_retention.expect("NRR is set when starting ARR is above 0");
        assert!((-EPS..=1.0 + EPS).contains(&grr), "0 <= GRR <= 1: {m:?}");
        assert!(close(grr, 1.0 - m.revenue_churn_rate.unwrap()), "GRR = 1 - revenue churn: {m:?}");
        assert!(close(nrr, grr + m.expansion_arr as f64 / s), "NRR = GRR + expansion / starting: {m:?}");
        assert!(close(nrr * s, (m.starting_arr - m.churned_arr - m.contraction_arr + m.expansion_arr) as f64));
        assert!(close(m.net_revenue_churn_rate.unwrap(), 1.0 - nrr), "net revenue churn = 1 - NRR: {m:?}");
    } else {
        assert_eq!(
            (m.revenue_churn_rate, m.net_revenue_churn_rate, m.gross_revenue_retention, m.net_revenue_retention),
            (None, None, None, None),
            "rates over a zero denominator are absent: {m:?}"
        );
    }
    if m.starting_logos == 0 {
        assert_eq!(m.logo_churn_rate, None);
    } else {
        let r = m.logo_churn_rate.unwrap();
        assert!((0.0..=1.0).contains(&r) && close(r, m.churned_logos as f64 / m.starting_logos as f64));
    }
    if m.renewals + m.renewal_churns == 0 {
        assert_eq!(m.renewal_rate, None);
    }
    if m.renewal_arr_due == 0 {
        assert_eq!((m.arr_renewal_rate, m.net_arr_renewal_rate), (None, None));
    } else {
        assert!(m.arr_renewal_rate.unwrap() <= 1.0 + EPS, "{m:?}");
    }
}

/// What a period's metrics must be; rates as (numerator, denominator).
#[derive(Debug, Default)]
struct Want {
    period: (Ymd, Ymd),
    currency: &'static str,
    starting_logos: i64,
    starting_arr: i64,
    ending_logos: i64,
    ending_arr: i64,
    churned_logos: i64,
    churned_arr: i64,
    contraction_arr: i64,
    expansion_arr: i64,
    new_logos: i64,
    new_arr: i64,
    renewals: i64,
    renewal_churns: i64,
    renewal_arr_due: i64,
    renewal_arr_retained: i64,
    renewal_arr_booked: i64,
    logo_churn_rate: Option<f64>,
    revenue_churn_rate: Option<f64>,
    net_revenue_churn_rate: Option<f64>,
    gross_revenue_retention: Option<f64>,
    net_revenue_retention: Option<f64>,
    renewal_rate: Option<f64>,
    arr_renewal_rate: Option<f64>,
    net_arr_renewal_rate: Option<f64>,
}

fn assert_metrics(m: &pb::RetentionMetrics, w: &Want, what: &str) {
    assert_eq!((m.period_start, m.period_end), (d(w.period.0), d(w.period.1)), "{what}: period");
    assert_eq!(m.currency_code, w.currency, "{what}: currency");
    let got = [
        ("starting_logos", m.starting_logos),
        ("starting_arr", m.starting_arr),
        ("ending_logos", m.ending_logos),
        ("ending_arr", m.ending_arr),
        ("churned_logos", m.churned_logos),
        ("churned_arr", m.churned_arr),
        ("contraction_arr", m.contraction_arr),
        ("expansion_arr", m.expansion_arr),
        ("new_logos", m.new_logos),
        ("new_arr", m.new_arr),
        ("renewals", m.renewals),
        ("renewal_churns", m.renewal_churns),
        ("renewal_arr_due", m.renewal_arr_due),
        ("renewal_arr_retained", m.renewal_arr_retained),
        ("renewal_arr_booked", m.renewal_arr_booked),
    ];
    let want = [
        w.starting_logos,
        w.starting_arr,
        w.ending_logos,
        w.ending_arr,
        w.churned_logos,
        w.churned_arr,
        w.contraction_arr,
        w.expansion_arr,
        w.new_logos,
        w.new_arr,
        w.renewals,
        w.renewal_churns,
        w.renewal_arr_due,
        w.renewal_arr_retained,
        w.renewal_arr_booked,
    ];
    for ((name, g), w) in got.iter().zip(want) {
        assert_eq!(*g, w, "{what}: {name} in {m:?}");
    }
    let rates = [
        ("logo_churn_rate", m.logo_churn_rate, w.logo_churn_rate),
        ("revenue_churn_rate", m.revenue_churn_rate, w.revenue_churn_rate),
        ("net_revenue_churn_rate", m.net_revenue_churn_rate, w.net_revenue_churn_rate),
        ("gross_revenue_retention", m.gross_revenue_retention, w.gross_revenue_retention),
        ("net_revenue_retention", m.net_revenue_retention, w.net_revenue_retention),
        ("renewal_rate", m.renewal_rate, w.renewal_rate),
        ("arr_renewal_rate", m.arr_renewal_rate, w.arr_renewal_rate),
        ("net_arr_renewal_rate", m.net_arr_renewal_rate, w.net_arr_renewal_rate),
    ];
    for (name, g, w) in rates {
        match (g, w) {
            (Some(g), Some(w)) => assert!(close(g, w), "{what}: {name} is {g}, want {w}"),
            (g, w) => assert_eq!(g, w, "{what}: {name}"),
        }
    }
}

fn r(numerator: f64, denominator: f64) -> Option<f64> {
    Some(numerator / denominator)
}

const M: i64 = 1_000_000;

fn jpy(n: i64) -> Option<tpb::Money> {
    money("JPY", n)
}

struct Book {
    /// a b c d e f g h i, then the USD account u.
    ids: std::collections::BTreeMap<char, String>,
}

/// Tenant "acme" in Asia/Tokyo, fiscal year from April, yen by default;
/// nine yen accounts and one dollar account with these contract histories.
/// Target: FY2025 Q3 = [2025-10-01, 2026-01-01).
///
/// | acct | tags | events (effective date: kind, ARR before → after) |
/// |---|---|---|
/// | A | enterprise | 2024-10-01 NEW 0 → 10M; 2025-10-01 RENEWAL 10M → 12M (uplift) |
/// | B | enterprise | 2024-04-01 NEW 0 → 8M; 2025-11-15 CHURN 8M → 0 |
/// | C | – | 2025-01-10 NEW 0 → 6M; 2025-12-01 CONTRACTION 6M → 4.5M |
/// | D | enterprise | 2025-02-01 NEW 0 → 5M; 2025-10-20 EXPANSION 5M → 7M; 2025-12-20 CONTRACTION 7M → 5.5M |
/// | E | – | 2025-11-01 NEW 0 → 3M |
/// | F | enterprise | 2023-06-01 NEW 0 → 2M; 2024-06-01 CHURN 2M → 0; 2025-12-10 REACTIVATION 0 → 2.5M |
/// | G | – | 2024-12-01 NEW 0 → 4M; 2025-12-01 RENEWAL 4M → 3M (downsell) |
/// | H | enterprise | 2024-07-01 NEW 0 → 1M; 2025-07-01 RENEWAL 1M → 1M; 2025-10-15 CHURN 1M → 0; 2025-12-15 REACTIVATION 0 → 1.2M |
/// | I | – | 2026-01-01 NEW 0 → 9M (the first day of the next quarter) |
/// | U | enterprise | USD: 2025-05-01 NEW 0 → 1,000,000; 2025-11-01 EXPANSION → 1,500,000 |
async fn book(app: &banso_testkit::TestApp) -> Book {
    let mut c = admin(app);
    let s = c
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            settings: Some(pb::TenantSettings {
                time_zone: "Asia/Tokyo".into(),
                fiscal_year_start_month: 4,
                default_currency_code: "JPY".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (s.time_zone.as_str(), s.fiscal_year_start_month, s.default_currency_code.as_str()),
        ("Asia/Tokyo", 4, "JPY")
    );

    let mut ids = std::collections::BTreeMap::new();
    for (key, name, tags) in [
        ('a', "株式会社エー", &["enterprise"][..]),
        ('b', "株式会社ビー", &["enterprise"]),
        ('c', "株式会社シー", &[]),
        ('d', "株式会社ディー", &["enterprise"]),
        ('e', "株式会社イー", &[]),
        ('f', "株式会社エフ", &["enterprise"]),
        ('g', "株式会社ジー", &[]),
        ('h', "株式会社エイチ", &["enterprise"]),
        ('i', "株式会社アイ", &[]),
        ('u', "Uniform Inc", &["enterprise"]),
    ] {
        let a =
            create(&mut c, pb::Account { tags: tags.iter().map(|t| t.to_string()).collect(), ..account(name) }).await;
        ids.insert(key, a.id);
    }
    let id = |k: char| ids[&k].clone();
    let history: Vec<pb::ContractEvent> = vec![
        event(&id('a'), K::New, jpy(10 * M), (2024, 10, 1), Some((2025, 10, 1))),
        event(&id('a'), K::Renewal, jpy(12 * M), (2025, 10, 1), Some((2026, 10, 1))),
        event(&id('b'), K::New, jpy(8 * M), (2024, 4, 1), Some((2025, 11, 15))),
        event(&id('b'), K::Churn, None, (2025, 11, 15), None),
        event(&id('c'), K::New, jpy(6 * M), (2025, 1, 10), Some((2026, 1, 10))),
        event(&id('c'), K::Contraction, jpy(4_500_000), (2025, 12, 1), None),
        event(&id('d'), K::New, jpy(5 * M), (2025, 2, 1), Some((2026, 2, 1))),
        event(&id('d'), K::Expansion, jpy(7 * M), (2025, 10, 20), None),
        event(&id('d'), K::Contraction, jpy(5_500_000), (2025, 12, 20), None),
        event(&id('e'), K::New, jpy(3 * M), (2025, 11, 1), Some((2026, 11, 1))),
        event(&id('f'), K::New, jpy(2 * M), (2023, 6, 1), Some((2024, 6, 1))),
        event(&id('f'), K::Churn, jpy(0), (2024, 6, 1), None),
        event(&id('f'), K::Reactivation, jpy(2_500_000), (2025, 12, 10), Some((2026, 12, 10))),
        event(&id('g'), K::New, jpy(4 * M), (2024, 12, 1), Some((2025, 12, 1))),
        event(&id('g'), K::Renewal, jpy(3 * M), (2025, 12, 1), Some((2026, 12, 1))),
        event(&id('h'), K::New, jpy(M), (2024, 7, 1), Some((2025, 7, 1))),
        event(&id('h'), K::Renewal, jpy(M), (2025, 7, 1), Some((2026, 7, 1))),
        event(&id('h'), K::Churn, None, (2025, 10, 15), None),
        event(&id('h'), K::Reactivation, jpy(1_200_000), (2025, 12, 15), Some((2026, 12, 15))),
        event(&id('i'), K::New, jpy(9 * M), (2026, 1, 1), Some((2027, 1, 1))),
        event(&id('u'), K::New, money("USD", 1_000_000), (2025, 5, 1), Some((2026, 5, 1))),
        event(&id('u'), K::Expansion, money("USD", 1_500_000), (2025, 11, 1), None),
    ];
    for e in history {
        record(&mut c, e).await;
    }
    Book { ids }
}

/// FY2025 Q3, [2025-10-01, 2026-01-01), yen, every account. Per account,
/// ARR as of 10-01 (before that day's events) → as of 01-01:
///
/// | acct | start | end | counts as |
/// |---|---:|---:|---|
/// | A | 10M | 12M | expansion 2M (renewal on 10-01 is in the quarter) |
/// | B | 8M | 0 | churned logo, churned 8M |
/// | C | 6M | 4.5M | contraction 1.5M |
/// | D | 5M | 5.5M | expansion 0.5M (+2M then −1.5M: net) |
/// | E | 0 | 3M | new logo 3M |
/// | F | 0 | 2.5M | new logo 2.5M (reactivated; churned last year) |
/// | G | 4M | 3M | contraction 1M (downsell at renewal) |
/// | H | 1M | 1.2M | expansion 0.2M (churned and came back: not a churned logo) |
/// | I | 0 | 0 | nothing: its NEW is on 2026-01-01, the next quarter |
///
/// - starting: A B C D G H = 6 logos, 10 + 8 + 6 + 5 + 4 + 1 = 34M
/// - ending: A C D E F G H = 7 logos, 12 + 4.5 + 5.5 + 3 + 2.5 + 3 + 1.2 = 31.7M
/// - churned 1 logo, 8M; contraction 1.5 + 1 = 2.5M; expansion 2 + 0.5 + 0.2 = 2.7M
/// - new 2 logos (E F), 3 + 2.5 = 5.5M
/// - bridge: 34 − 8 − 2.5 + 2.7 + 5.5 = 31.7 ✓
/// - logo churn 1/6; revenue churn (8 + 2.5)/34 = 10.5/34; net revenue churn
///   (10.5 − 2.7)/34 = 7.8/34; GRR (34 − 10.5)/34 = 23.5/34; NRR (23.5 + 2.7)/34 = 26.2/34
/// - renewal decisions: RENEWAL A (10-01), G (12-01); CHURN H (10-15), B (11-15);
///   F's churn (2024) and H's renewal (07-01) are outside: renewals 2, renewal_churns 2, rate 2/4
/// - due: A 10 + G 4 + H 1 + B 8 = 23M; retained: A min(10, 12) + G min(4, 3) = 13M;
///   booked: A 12 + G 3 = 15M; ARR renewal rate 13/23; net ARR renewal rate 15/23
fn fy2025_q3() -> Want {
    Want {
        period: ((2025, 10, 1), (2026, 1, 1)),
        currency: "JPY",
        starting_logos: 6,
        starting_arr: 34 * M,
        ending_logos: 7,
        ending_arr: 31_700_000,
        churned_logos: 1,
        churned_arr: 8 * M,
        contraction_arr: 2_500_000,
        expansion_arr: 2_700_000,
        new_logos: 2,
        new_arr: 5_500_000,
        renewals: 2,
        renewal_churns: 2,
        renewal_arr_due: 23 * M,
        renewal_arr_retained: 13 * M,
        renewal_arr_booked: 15 * M,
        logo_churn_rate: r(1.0, 6.0),
        revenue_churn_rate: r(10.5, 34.0),
        net_revenue_churn_rate: r(7.8, 34.0),
        gross_revenue_retention: r(23.5, 34.0),
        net_revenue_retention: r(26.2, 34.0),
        renewal_rate: r(2.0, 4.0),
        arr_renewal_rate: r(13.0, 23.0),
        net_arr_renewal_rate: r(15.0, 23.0),
    }
}

/// December 2025, [2025-12-01, 2026-01-01):
///
/// | acct | start | end | counts as |
/// |---|---:|---:|---|
/// | A | 12M | 12M | expansion 0 |
/// | B | 0 | 0 | – (churned in November) |
/// | C | 6M | 4.5M | contraction 1.5M (its contraction is on 12-01: in the month) |
/// | D | 7M | 5.5M | contraction 1.5M |
/// | E | 3M | 3M | expansion 0 |
/// | F | 0 | 2.5M | new 2.5M |
/// | G | 4M | 3M | contraction 1M (renewal on 12-01) |
/// | H | 0 | 1.2M | new 1.2M (churned in October) |
///
/// - starting A C D E G = 5, 12 + 6 + 7 + 3 + 4 = 32M; ending 7, 31.7M
/// - churned 0; contraction 1.5 + 1.5 + 1 = 4M; expansion 0; new F H = 2, 3.7M
/// - bridge: 32 − 0 − 4 + 0 + 3.7 = 31.7 ✓
/// - logo churn 0/5 = 0 (present, not absent); revenue churn 4/32; net 4/32; GRR 28/32; NRR 28/32
/// - decisions: G's renewal only: rate 1/1; due 4M, retained 3M, booked 3M: 3/4 and 3/4
fn december_2025() -> Want {
    Want {
        period: ((2025, 12, 1), (2026, 1, 1)),
        currency: "JPY",
        starting_logos: 5,
        starting_arr: 32 * M,
        ending_logos: 7,
        ending_arr: 31_700_000,
        churned_logos: 0,
        churned_arr: 0,
        contraction_arr: 4 * M,
        expansion_arr: 0,
        new_logos: 2,
        new_arr: 3_700_000,
        renewals: 1,
        renewal_churns: 0,
        renewal_arr_due: 4 * M,
        renewal_arr_retained: 3 * M,
        renewal_arr_booked: 3 * M,
        logo_churn_rate: Some(0.0),
        revenue_churn_rate: r(4.0, 32.0),
        net_revenue_churn_rate: r(4.0, 32.0),
        gross_revenue_retention: r(28.0, 32.0),
        net_revenue_retention: r(28.0, 32.0),
        renewal_rate: Some(1.0),
        arr_renewal_rate: r(3.0, 4.0),
        net_arr_renewal_rate: r(3.0, 4.0),
    }
}

/// FY2025, [2025-04-01, 2026-04-01): as the quarter, except
/// - H starts with its first contract (1M, from 2024-07-01) and its 07-01
///   renewal (1M → 1M) is a decision of the year;
/// - I's NEW on 2026-01-01 is inside: a third new logo, 9M.
///
/// - starting A B C D G H = 6, 34M (same cohort as the quarter)
/// - ending A C D E F G H I = 8, 31.7 + 9 = 40.7M
/// - churned 1, 8M; contraction 2.5M; expansion 2.7M; new E F I = 3, 14.5M
/// - bridge: 34 − 8 − 2.5 + 2.7 + 14.5 = 40.7 ✓
/// - renewals A G H = 3; churns B H = 2; rate 3/5
/// - due 10 + 4 + 1 + 8 + 1 = 24M; retained 10 + 3 + 1 = 14M; booked 12 + 3 + 1 = 16M
fn fy2025() -> Want {
    Want {
        period: ((2025, 4, 1), (2026, 4, 1)),
        ending_logos: 8,
        ending_arr: 40_700_000,
        new_logos: 3,
        new_arr: 14_500_000,
        renewals: 3,
        renewal_churns: 2,
        renewal_arr_due: 24 * M,
        renewal_arr_retained: 14 * M,
        renewal_arr_booked: 16 * M,
        renewal_rate: r(3.0, 5.0),
        arr_renewal_rate: r(14.0, 24.0),
        net_arr_renewal_rate: r(16.0, 24.0),
        ..fy2025_q3()
    }
}

/// The 'enterprise' segment (A B D F H; U is in dollars) over FY2025 Q3:
///
/// - A 10M → 12M expansion 2M; B 8M → 0 churned; D 5M → 5.5M expansion 0.5M;
///   F 0 → 2.5M new; H 1M → 1.2M expansion 0.2M
/// - starting A B D H = 4, 24M; ending A D F H = 4, 12 + 5.5 + 2.5 + 1.2 = 21.2M
/// - churned 1, 8M; contraction 0; expansion 2.7M; new 1, 2.5M
/// - bridge: 24 − 8 − 0 + 2.7 + 2.5 = 21.2 ✓
/// - logo churn 1/4; revenue churn 8/24; net (8 − 2.7)/24 = 5.3/24; GRR 16/24; NRR 18.7/24
/// - renewals A = 1; churns B H = 2; rate 1/3; due 10 + 8 + 1 = 19M; retained 10M;
///   booked 12M: 10/19 and 12/19
fn enterprise_q3() -> Want {
    Want {
        period: ((2025, 10, 1), (2026, 1, 1)),
        currency: "JPY",
        starting_logos: 4,
        starting_arr: 24 * M,
        ending_logos: 4,
        ending_arr: 21_200_000,
        churned_logos: 1,
        churned_arr: 8 * M,
        contraction_arr: 0,
        expansion_arr: 2_700_000,
        new_logos: 1,
        new_arr: 2_500_000,
        renewals: 1,
        renewal_churns: 2,
        renewal_arr_due: 19 * M,
        renewal_arr_retained: 10 * M,
        renewal_arr_booked: 12 * M,
        logo_churn_rate: r(1.0, 4.0),
        revenue_churn_rate: r(8.0, 24.0),
        net_revenue_churn_rate: r(5.3, 24.0),
        gross_revenue_retention: r(16.0, 24.0),
        net_revenue_retention: r(18.7, 24.0),
        renewal_rate: r(1.0, 3.0),
        arr_renewal_rate: r(10.0, 19.0),
        net_arr_renewal_rate: r(12.0, 19.0),
    }
}

/// U alone, in dollars, over FY2025 Q3: 1,000,000 → 1,500,000 (minor units).
/// Starting 1 logo 1,000,000; ending 1, 1,500,000; expansion 500,000;
/// no churn, no contraction, nothing new: logo churn 0, revenue churn 0,
/// net revenue churn −0.5, GRR 1, NRR 1.5; no renewal decision: renewal
/// rates absent.
fn usd_q3() -> Want {
    Want {
        period: ((2025, 10, 1), (2026, 1, 1)),
        currency: "USD",
        starting_logos: 1,
        starting_arr: 1_000_000,
        ending_logos: 1,
        ending_arr: 1_500_000,
        expansion_arr: 500_000,
        logo_churn_rate: Some(0.0),
        revenue_churn_rate: Some(0.0),
        net_revenue_churn_rate: Some(-0.5),
        gross_revenue_retention: Some(1.0),
        net_revenue_retention: Some(1.5),
        ..Default::default()
    }
}

#[tokio::test]
async fn hand_computed_metrics_for_a_quarter_a_month_a_year_and_a_range() {
    let app = spawn().await;
    let b = book(&app).await;
    let mut c = admin(&app);

    let q3 = metrics(&mut c, metrics_req(quarter(2025, 3))).await;
    assert_metrics(&q3, &fy2025_q3(), "FY2025 Q3");

    // The same days as an explicit range, and with the default currency named: the same answer.
    let as_range = metrics(&mut c, metrics_req(range((2025, 10, 1), (2026, 1, 1)))).await;
    assert_eq!(as_range, q3, "a date range over the quarter's days answers as the quarter");
    let named = metrics(
        &mut c,
        pb::GetRetentionMetricsRequest { currency_code: "JPY".into(), ..metrics_req(quarter(2025, 3)) },
    )
    .await;
    assert_eq!(named, q3);

    let december = metrics(&mut c, metrics_req(month(2025, 12))).await;
    assert_metrics(&december, &december_2025(), "December 2025");

    let year = metrics(&mut c, metrics_req(P::FiscalYear(2025))).await;
    assert_metrics(&year, &fy2025(), "FY2025");

    // Fiscal quarters follow the April start: Q4 of FY2025 is January to March 2026.
    let q4 = metrics(&mut c, metrics_req(quarter(2025, 4))).await;
    assert_eq!((q4.period_start, q4.period_end), (date(2026, 1, 1), date(2026, 4, 1)));
    // Q4 starts where Q3 ended: its starting state is Q3's ending state.
    assert_eq!((q4.starting_logos, q4.starting_arr), (q3.ending_logos, q3.ending_arr));
    // I's NEW on 2026-01-01 is Q4's; nothing else moves in Q4 (C's renewal date
    // passes with no event: pending, not a decision).
    assert_eq!((q4.new_logos, q4.new_arr, q4.ending_arr), (1, 9 * M, q3.ending_arr + 9 * M));
    assert_eq!((q4.renewals, q4.renewal_churns, q4.renewal_rate), (0, 0, None));

    // A quarter before any contract: everything 0, every rate absent.
    let empty = metrics(&mut c, metrics_req(quarter(2022, 1))).await;
    assert_metrics(
        &empty,
        &Want { period: ((2022, 4, 1), (2022, 7, 1)), currency: "JPY", ..Default::default() },
        "FY2022 Q1",
    );

    // Deleting an account deletes its contract history: E, a new logo of
    // 3M, leaves the quarter's numbers.
    c.delete_account(pb::DeleteAccountRequest { id: b.ids[&'e'].clone(), etag: String::new() }).await.unwrap();
    let without_e = metrics(&mut c, metrics_req(quarter(2025, 3))).await;
    assert_metrics(
        &without_e,
        &Want { ending_logos: 6, ending_arr: 28_700_000, new_logos: 1, new_arr: 2_500_000, ..fy2025_q3() },
        "FY2025 Q3 without E",
    );
    let q3 = without_e;

    // A viewer may read the metrics.
    let mut viewer = client(&app, "acme", Role::Viewer);
    assert_eq!(metrics(&mut viewer, metrics_req(quarter(2025, 3))).await, q3);
    // Another tenant has no contracts: zeros, in its own default currency (USD).
    let mut globex = client(&app, "globex", Role::Viewer);
    let theirs = metrics(&mut globex, metrics_req(quarter(2025, 3))).await;
    // globex keeps the default January start: Q3 is July to September.
    assert_metrics(
        &theirs,
        &Want { period: ((2025, 7, 1), (2025, 10, 1)), currency: "USD", ..Default::default() },
        "globex",
    );
}

#[tokio::test]
async fn metrics_of_a_segment_and_of_another_currency() {
    let app = spawn().await;
    let b = book(&app).await;
    let mut c = admin(&app);
    let seg = c
        .create_segment(pb::CreateSegmentRequest {
            segment: Some(pb::Segment {
                display_name: "Enterprise".into(),
                expression: "'enterprise' in account.tags".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let enterprise =
        metrics(&mut c, pb::GetRetentionMetricsRequest { segment_id: seg.id.clone(), ..metrics_req(quarter(2025, 3)) })
            .await;
    assert_metrics(&enterprise, &enterprise_q3(), "enterprise FY2025 Q3");

    // The segment's complement plus the segment is the whole book.
    let others = c
        .create_segment(pb::CreateSegmentRequest {
            segment: Some(pb::Segment {
                display_name: "Others".into(),
                expression: "!('enterprise' in account.tags)".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let rest = metrics(
        &mut c,
        pb::GetRetentionMetricsRequest { segment_id: others.id.clone(), ..metrics_req(quarter(2025, 3)) },
    )
    .await;
    let all = fy2025_q3();
    assert_eq!(
        (rest.starting_arr + enterprise.starting_arr, rest.ending_arr + enterprise.ending_arr),
        (all.starting_arr, all.ending_arr)
    );
    assert_eq!((rest.starting_logos, rest.ending_logos, rest.new_logos), (2, 3, 1), "C G; C E G; E");

    // Dollars: U alone. The yen metrics above never counted it.
    let usd = metrics(
        &mut c,
        pb::GetRetentionMetricsRequest { currency_code: "USD".into(), ..metrics_req(quarter(2025, 3)) },
    )
    .await;
    assert_metrics(&usd, &usd_q3(), "USD FY2025 Q3");
    let usd_enterprise = metrics(
        &mut c,
        pb::GetRetentionMetricsRequest {
            currency_code: "USD".into(),
            segment_id: seg.id.clone(),
            ..metrics_req(quarter(2025, 3))
        },
    )
    .await;
    assert_metrics(&usd_enterprise, &usd_q3(), "USD enterprise");
    // A currency nobody uses: zeros.
    let eur = metrics(
        &mut c,
        pb::GetRetentionMetricsRequest { currency_code: "EUR".into(), ..metrics_req(quarter(2025, 3)) },
    )
    .await;
    assert_eq!((eur.currency_code.as_str(), eur.starting_logos, eur.ending_logos), ("EUR", 0, 0));

    // Segments are evaluated now: tagging C 'enterprise' moves it into the segment.
    c.update_account(pb::UpdateAccountRequest {
        account: Some(pb::Account { id: b.ids[&'c'].clone(), tags: vec!["enterprise".into()], ..Default::default() }),
        update_mask: mask(&["tags"]),
    })
    .await
    .unwrap();
    let moved =
        metrics(&mut c, pb::GetRetentionMetricsRequest { segment_id: seg.id.clone(), ..metrics_req(quarter(2025, 3)) })
            .await;
    assert_eq!(
        (moved.starting_logos, moved.starting_arr, moved.contraction_arr),
        (5, 30 * M, 1_500_000),
        "C (6M → 4.5M) joins the segment"
    );

    // Another tenant's segment does not exist for the caller.
    let err = client(&app, "globex", Role::Admin)
        .get_retention_metrics(pb::GetRetentionMetricsRequest {
            segment_id: seg.id.clone(),
            ..metrics_req(quarter(2025, 3))
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn each_event_moves_the_account_and_the_history_lists_oldest_first() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("株式会社ライフサイクル")).await;
    let id = a.id.clone();
    use pb::LifecycleStage as S;

    // NEW: ARR, contract start = effective date, renewal date = term end, ONBOARDING.
    let new = record(&mut c, event(&id, K::New, jpy(1_200_000), (2024, 4, 1), Some((2025, 4, 1)))).await;
    let (e, acc) = (new.contract_event.unwrap(), new.account.unwrap());
    assert_eq!(uuid::Uuid::parse_str(&e.id).unwrap().get_version_num(), 7);
    assert_eq!((e.kind, e.arr_before.clone(), e.arr_after.clone()), (K::New as i32, jpy(0), jpy(1_200_000)));
    assert_eq!(
        (e.effective_date, e.term_end, e.account_id.as_str()),
        (date(2024, 4, 1), date(2025, 4, 1), id.as_str())
    );
    assert_eq!(e.recorded_by, "test-user", "the token's subject");
    assert!(e.create_time.is_some());
    assert_eq!(acc.arr, jpy(1_200_000));
    assert_eq!((acc.contract_start_date, acc.renewal_date), (date(2024, 4, 1), date(2025, 4, 1)));
    assert_eq!(acc.lifecycle_stage, S::Onboarding as i32);
    assert_ne!(acc.etag, a.etag, "the account changed");
    let got = c.get_account(pb::GetAccountRequest { id: id.clone() }).await.unwrap().into_inner();
    assert_eq!(got, acc, "the response holds the account as stored");

    // EXPANSION without term end: ARR up, renewal date kept, EXPANSION.
    let r = record(&mut c, event(&id, K::Expansion, jpy(1_500_000), (2024, 6, 1), None)).await;
    let (e, acc) = (r.contract_event.unwrap(), r.account.unwrap());
    assert_eq!((e.arr_before, e.arr_after), (jpy(1_200_000), jpy(1_500_000)));
    assert_eq!(
        (acc.arr, acc.renewal_date, acc.lifecycle_stage),
        (jpy(1_500_000), date(2025, 4, 1), S::Expansion as i32)
    );

    // CONTRACTION the same day, with a term end: ARR down, renewal date moves, stage kept.
    let r = record(
        &mut c,
        pb::ContractEvent {
            reason_code: "budget".into(),
            note: "予算削減のため席数を削減".into(),
            ..event(&id, K::Contraction, jpy(1_400_000), (2024, 6, 1), Some((2025, 6, 30)))
        },
    )
    .await;
    let (e, acc) = (r.contract_event.unwrap(), r.account.unwrap());
    assert_eq!((e.arr_before, e.arr_after), (jpy(1_500_000), jpy(1_400_000)));
    assert_eq!((e.reason_code.as_str(), e.note.as_str()), ("budget", "予算削減のため席数を削減"));
    assert_eq!(
        (acc.arr, acc.renewal_date, acc.lifecycle_stage),
        (jpy(1_400_000), date(2025, 6, 30), S::Expansion as i32)
    );

    // RENEWAL of an account not in the RENEWAL stage: ARR and renewal date follow, stage kept.
    let r = record(&mut c, event(&id, K::Renewal, jpy(1_600_000), (2025, 6, 30), Some((2026, 6, 30)))).await;
    let (e, acc) = (r.contract_event.unwrap(), r.account.unwrap());
    assert_eq!((e.arr_before, e.arr_after), (jpy(1_400_000), jpy(1_600_000)));
    assert_eq!(
        (acc.arr, acc.renewal_date, acc.lifecycle_stage),
        (jpy(1_600_000), date(2026, 6, 30), S::Expansion as i32)
    );
    assert_eq!(acc.contract_start_date, date(2024, 4, 1), "a renewal keeps the contract start");

    // RENEWAL of an account in the RENEWAL stage: back to ADOPTION.
    c.update_account(pb::UpdateAccountRequest {
        account: Some(pb::Account { id: id.clone(), lifecycle_stage: S::Renewal as i32, ..Default::default() }),
        update_mask: mask(&["lifecycle_stage"]),
    })
    .await
    .unwrap();
    let r = record(&mut c, event(&id, K::Renewal, jpy(1_600_000), (2026, 6, 30), Some((2027, 6, 30)))).await;
    let acc = r.account.unwrap();
    assert_eq!(
        (acc.arr, acc.renewal_date, acc.lifecycle_stage),
        (jpy(1_600_000), date(2027, 6, 30), S::Adoption as i32)
    );

    // CHURN (before the term ends): ARR 0, renewal date cleared, CHURNED.
    let r = record(
        &mut c,
        pb::ContractEvent { reason_code: "competitor".into(), ..event(&id, K::Churn, None, (2027, 1, 31), None) },
    )
    .await;
    let (e, acc) = (r.contract_event.unwrap(), r.account.unwrap());
    assert_eq!((e.arr_before, e.arr_after, e.term_end), (jpy(1_600_000), jpy(0), None));
    assert_eq!((acc.arr, acc.renewal_date, acc.lifecycle_stage), (jpy(0), None, S::Churned as i32));

    // REACTIVATION: ARR back, a new contract start and renewal date, ONBOARDING.
    let r = record(&mut c, event(&id, K::Reactivation, jpy(900_000), (2027, 9, 1), Some((2028, 8, 31)))).await;
    let (e, acc) = (r.contract_event.unwrap(), r.account.unwrap());
    assert_eq!((e.arr_before, e.arr_after), (jpy(0), jpy(900_000)));
    assert_eq!(
        (acc.arr, acc.contract_start_date, acc.renewal_date, acc.lifecycle_stage),
        (jpy(900_000), date(2027, 9, 1), date(2028, 8, 31), S::Onboarding as i32)
    );

    // The history, oldest first (same-day events in recording order), in pages of 3.
    let all = events(&mut c, &id).await;
    let kinds: Vec<i32> = all.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [K::New, K::Expansion, K::Contraction, K::Renewal, K::Renewal, K::Churn, K::Reactivation].map(|k| k as i32)
    );
    let mut paged = Vec::new();
    let mut sizes = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_contract_events(pb::ListContractEventsRequest {
                account_id: id.clone(),
                page_size: 3,
                page_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        sizes.push(page.contract_events.len());
        paged.extend(page.contract_events);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(paged, all);
    // Arr before of each event is the arr after of the one before it.
    for w in all.windows(2) {
        assert_eq!(w[1].arr_before, w[0].arr_after, "{:?}", w[1]);
    }

    // Bad paging input and other accounts.
    let err = c
        .list_contract_events(pb::ListContractEventsRequest {
            account_id: id.clone(),
            page_size: 3,
            page_token: "garbage!".into(),
        })
        .await
        .unwrap_err();
    assert_violation(&err, "page_token");
    let other = create(&mut c, account("Other")).await;
    let first = c
        .list_contract_events(pb::ListContractEventsRequest {
            account_id: id.clone(),
            page_size: 3,
            page_token: "".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let err = c
        .list_contract_events(pb::ListContractEventsRequest {
            account_id: other.id.clone(),
            page_size: 3,
            page_token: first.next_page_token,
        })
        .await
        .unwrap_err();
    assert_violation(&err, "page_token");
    assert!(events(&mut c, &other.id).await.is_empty());
    let err = c
        .list_contract_events(pb::ListContractEventsRequest { account_id: "x".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_violation(&err, "account_id");
    let err = client(&app, "globex", Role::Admin)
        .list_contract_events(pb::ListContractEventsRequest { account_id: id.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn a_retried_record_with_a_request_id_writes_one_event() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("株式会社リトライ")).await;
    let req = pb::RecordContractEventRequest {
        contract_event: Some(event(&a.id, K::New, jpy(500_000), (2025, 4, 1), Some((2026, 4, 1)))),
        request_id: "contract-req-1".into(),
    };
    let first = c.record_contract_event(req.clone()).await.unwrap().into_inner();
    let second = c.record_contract_event(req.clone()).await.unwrap().into_inner();
    assert_eq!(second.contract_event, first.contract_event, "the same event, not a second NEW");
    assert_eq!(second.account, first.account);
    let listed = events(&mut c, &a.id).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(Some(&listed[0]), first.contract_event.as_ref());

    let got = c.get_account(pb::GetAccountRequest { id: a.id.clone() }).await.unwrap().into_inner();
    assert_eq!(Some(got), first.account, "the retry wrote nothing to the account");

    // A key is per tenant: the same key elsewhere is another request (here
    // NOT_FOUND: the account is not globex's).
    let err = client(&app, "globex", Role::Admin).record_contract_event(req).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn racing_retries_with_one_request_id_record_one_event() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = create(&mut c, account("株式会社レース")).await;
    record(&mut c, event(&a.id, K::New, jpy(500_000), (2025, 4, 1), Some((2026, 4, 1)))).await;
    // Concurrent first attempts with one key: one event, and every attempt
    // answers with it ("also when the retries race", docs/api.md).
    let expand = pb::RecordContractEventRequest {
        contract_event: Some(event(&a.id, K::Expansion, jpy(800_000), (2025, 8, 1), None)),
        request_id: "contract-req-2".into(),
    };
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let mut c = c.clone();
            let req = expand.clone();
            async move { c.record_contract_event(req).await.map(|r| r.into_inner().contract_event.unwrap().id) }
        })
        .collect();
    let results = futures::future::join_all(racers).await;
    // Whatever the answers, exactly one event was written.
    assert_eq!(events(&mut c, &a.id).await.len(), 2, "NEW and one EXPANSION");
    let got = c.get_account(pb::GetAccountRequest { id: a.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got.arr, jpy(800_000));
    // A racer that read the key before the winner committed re-reads the
    // account after the winner's EXPANSION (ARR now 800,000): it must find
    // the key and return the winner's event, not be refused with
    // NOT_AN_EXPANSION (as CreateAccount and CreateSegment do).
    let ids: std::collections::HashSet<String> = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("a racing retry with the same request_id was refused: {e:?}")))
        .collect();
    assert_eq!(ids.len(), 1, "one event for one key: {ids:?}");
}

#[tokio::test]
async fn contradictions_and_bad_input_are_refused_and_write_nothing() {
    let app = spawn().await;
    let mut c = admin(&app);
    let active = create(&mut c, account("株式会社アクティブ")).await.id;
    record(&mut c, event(&active, K::New, jpy(1_000_000), (2025, 4, 1), Some((2026, 4, 1)))).await;
    record(&mut c, event(&active, K::Expansion, jpy(1_200_000), (2025, 7, 1), None)).await;
    let churned = create(&mut c, account("株式会社チャーン")).await.id;
    record(&mut c, event(&churned, K::New, jpy(700_000), (2024, 4, 1), Some((2025, 4, 1)))).await;
    record(&mut c, event(&churned, K::Churn, None, (2025, 4, 1), None)).await;
    // A manual contract start and ARR, no contract history.
    let manual = create(
        &mut c,
        pb::Account {
            arr: jpy(300_000), contract_start_date: date(2025, 4, 1), ..account("株式会社マニュアル")
        },
    )
    .await
    .id;
    let fresh = create(&mut c, account("株式会社フレッシュ")).await.id;
    let usd = create(&mut c, account("Dollar Corp")).await.id;
    record(&mut c, event(&usd, K::New, money("USD", 10_000), (2025, 4, 1), Some((2026, 4, 1)))).await;

    // (account, event, code, reason or field)
    let cases: Vec<(&str, pb::ContractEvent, Code, &str)> = vec![
        (&churned, event(&churned, K::Churn, None, (2025, 6, 1), None), Code::FailedPrecondition, "ALREADY_CHURNED"),
        (
            &active,
            event(&active, K::Expansion, jpy(1_100_000), (2025, 8, 1), None),
            Code::FailedPrecondition,
            "NOT_AN_EXPANSION",
        ),
        (
            &active,
            event(&active, K::Expansion, jpy(1_200_000), (2025, 8, 1), None),
            Code::FailedPrecondition,
            "NOT_AN_EXPANSION",
        ),
        (
            &active,
            event(&active, K::Contraction, jpy(1_300_000), (2025, 8, 1), None),
            Code::FailedPrecondition,
            "NOT_A_CONTRACTION",
        ),
        (
            &active,
            event(&active, K::Expansion, jpy(2_000_000), (2025, 6, 30), None),
            Code::FailedPrecondition,
            "OUT_OF_ORDER",
        ),
        (
            &active,
            event(&active, K::New, jpy(5_000_000), (2025, 8, 1), Some((2026, 8, 1))),
            Code::FailedPrecondition,
            "CONTRACT_EXISTS",
        ),
        (
            &active,
            event(&active, K::Reactivation, jpy(5_000_000), (2025, 8, 1), Some((2026, 8, 1))),
            Code::FailedPrecondition,
            "NOT_CHURNED",
        ),
        (
            &churned,
            event(&churned, K::Renewal, jpy(700_000), (2025, 6, 1), Some((2026, 6, 1))),
            Code::FailedPrecondition,
            "ACCOUNT_NOT_ACTIVE",
        ),
        (
            &manual,
            event(&manual, K::Expansion, jpy(400_000), (2025, 3, 1), None),
            Code::FailedPrecondition,
            "BEFORE_CONTRACT_START",
        ),
        (
            &usd,
            event(&usd, K::Expansion, jpy(5_000_000), (2025, 8, 1), None),
            Code::FailedPrecondition,
            "CURRENCY_MISMATCH",
        ),
        (&fresh, event(&fresh, K::Churn, None, (2025, 8, 1), None), Code::FailedPrecondition, "NO_ARR"),
        // Bad input: INVALID_ARGUMENT naming the field.
        (
            &active,
            event(&active, K::Expansion, jpy(-5), (2025, 8, 1), None),
            Code::InvalidArgument,
            "contract_event.arr_after.amount_minor",
        ),
        (
            &fresh,
            event(&fresh, K::New, jpy(0), (2025, 8, 1), Some((2026, 8, 1))),
            Code::InvalidArgument,
            "contract_event.arr_after.amount_minor",
        ),
        (
            &active,
            event(&active, K::Churn, jpy(10), (2025, 8, 1), None),
            Code::InvalidArgument,
            "contract_event.arr_after.amount_minor",
        ),
        (
            &active,
            pb::ContractEvent {
                effective_date: None,
                ..event(&active, K::Expansion, jpy(2_000_000), (2025, 8, 1), None)
            },
            Code::InvalidArgument,
            "contract_event.effective_date",
        ),
        (
            &active,
            event(&active, K::Expansion, jpy(2_000_000), (2025, 2, 30), None),
            Code::InvalidArgument,
            "contract_event.effective_date",
        ),
        (
            &active,
            event(&active, K::Unspecified, jpy(2_000_000), (2025, 8, 1), None),
            Code::InvalidArgument,
            "contract_event.kind",
        ),
        (
            &active,
            pb::ContractEvent { kind: 42, ..event(&active, K::Expansion, jpy(2_000_000), (2025, 8, 1), None) },
            Code::InvalidArgument,
            "contract_event.kind",
        ),
        (
            &active,
            event(&active, K::Expansion, money("YEN", 2_000_000), (2025, 8, 1), None),
            Code::InvalidArgument,
            "contract_event.arr_after.currency_code",
        ),
        (
            &active,
            event(&active, K::Expansion, None, (2025, 8, 1), None),
            Code::InvalidArgument,
            "contract_event.arr_after",
        ),
        (&fresh, event(&fresh, K::New, jpy(100), (2025, 8, 1), None), Code::InvalidArgument, "contract_event.term_end"),
        (
            &active,
            event(&active, K::Renewal, jpy(1_200_000), (2025, 8, 1), Some((2025, 8, 1))),
            Code::InvalidArgument,
            "contract_event.term_end",
        ),
        (
            &active,
            pb::ContractEvent {
                reason_code: "r".repeat(65),
                ..event(&active, K::Expansion, jpy(2_000_000), (2025, 8, 1), None)
            },
            Code::InvalidArgument,
            "contract_event.reason_code",
        ),
        (
            &active,
            pb::ContractEvent {
                account_id: "acct-1".into(),
                ..event(&active, K::Expansion, jpy(2_000_000), (2025, 8, 1), None)
            },
            Code::InvalidArgument,
            "contract_event.account_id",
        ),
    ];
    for (account_id, e, code, what) in cases {
        let before = snapshot(&mut c, account_id).await;
        let err = refused(&mut c, e.clone()).await;
        assert_eq!(err.code(), code, "{what}: {e:?} gave {err:?}");
        if code == Code::InvalidArgument {
            assert_violation(&err, what);
        } else {
            assert_eq!(reason(&err), what, "{e:?} gave {err:?}");
        }
        assert_eq!(snapshot(&mut c, account_id).await, before, "{what}: nothing was written");
    }

    // Every bad field at once.
    let err = refused(
        &mut c,
        pb::ContractEvent {
            account_id: "nope".into(),
            kind: 0,
            arr_after: money("yen", -1),
            effective_date: None,
            ..Default::default()
        },
    )
    .await;
    let fields: Vec<String> = violations(&err).into_iter().map(|(f, _)| f).collect();
    for f in [
        "contract_event.account_id",
        "contract_event.kind",
        "contract_event.arr_after.currency_code",
        "contract_event.arr_after.amount_minor",
        "contract_event.effective_date",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} missing in {fields:?}");
    }
    let err = c
        .record_contract_event(pb::RecordContractEventRequest { contract_event: None, request_id: "".into() })
        .await
        .unwrap_err();
    assert_violation(&err, "contract_event");

    // Unknown accounts and other tenants' accounts: NOT_FOUND, nothing written.
    let unknown = uuid::Uuid::now_v7().to_string();
    let err = refused(&mut c, event(&unknown, K::New, jpy(100), (2025, 8, 1), Some((2026, 8, 1)))).await;
    assert_eq!(err.code(), Code::NotFound);
    let mut globex = client(&app, "globex", Role::Admin);
    let before = snapshot(&mut c, &active).await;
    let err = refused(&mut globex, event(&active, K::Expansion, jpy(9_000_000), (2025, 8, 1), None)).await;
    assert_eq!(err.code(), Code::NotFound);
    let err = refused(&mut globex, event(&fresh, K::New, jpy(100), (2025, 8, 1), Some((2026, 8, 1)))).await;
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(snapshot(&mut c, &active).await, before);
    assert!(events(&mut c, &fresh).await.is_empty());

    // A viewer cannot record (checked before validation).
    let mut viewer = client(&app, "acme", Role::Viewer);
    let err = refused(&mut viewer, event(&active, K::Expansion, jpy(9_000_000), (2025, 8, 1), None)).await;
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = refused(&mut viewer, pb::ContractEvent::default()).await;
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(snapshot(&mut c, &active).await, before);

    // The refusals left the metrics alone: one active yen account of 1.2M and
    // the manual account (no contract event: not counted).
    let m =
        metrics(&mut c, pb::GetRetentionMetricsRequest { currency_code: "JPY".into(), ..metrics_req(month(2025, 8)) })
            .await;
    assert_eq!((m.starting_logos, m.starting_arr, m.ending_arr), (1, 1_200_000, 1_200_000));

    // After all that, the valid events still go through.
    let r = record(&mut c, event(&active, K::Expansion, jpy(2_000_000), (2025, 8, 1), None)).await;
    assert_eq!(r.account.unwrap().arr, jpy(2_000_000));
    let r = record(&mut c, event(&churned, K::Reactivation, jpy(800_000), (2025, 9, 1), Some((2026, 9, 1)))).await;
    assert_eq!(r.account.unwrap().lifecycle_stage, pb::LifecycleStage::Onboarding as i32);
    // NEW on an account with a manual contract start may start earlier: it starts the contract.
    let r = record(&mut c, event(&manual, K::New, jpy(300_000), (2025, 3, 1), Some((2026, 3, 1)))).await;
    assert_eq!(r.account.unwrap().contract_start_date, date(2025, 3, 1));
}

#[tokio::test]
async fn bad_metrics_requests_name_the_field() {
    let app = spawn().await;
    let mut c = admin(&app);
    let q = || metrics_req(quarter(2025, 1));
    let cases: Vec<(pb::GetRetentionMetricsRequest, &str)> = vec![
        (pb::GetRetentionMetricsRequest::default(), "period"),
        (metrics_req(month(2025, 13)), "month.month"),
        (metrics_req(month(2025, 0)), "month.month"),
        (metrics_req(month(2025, -1)), "month.month"),
        (metrics_req(quarter(2025, 5)), "fiscal_quarter.quarter"),
        (metrics_req(quarter(2025, 0)), "fiscal_quarter.quarter"),
        (metrics_req(range((2025, 10, 1), (2025, 9, 30))), "date_range.end"),
        (metrics_req(range((2025, 10, 1), (2025, 10, 1))), "date_range.end"),
        (metrics_req(range((2005, 1, 1), (2025, 1, 1))), "date_range.end"),
        (metrics_req(range((2025, 2, 30), (2025, 4, 1))), "date_range.start"),
        (metrics_req(P::DateRange(pb::DateRange { start: date(2025, 1, 1), end: None })), "date_range.end"),
        (pb::GetRetentionMetricsRequest { currency_code: "YEN".into(), ..q() }, "currency_code"),
        (pb::GetRetentionMetricsRequest { currency_code: "jpy".into(), ..q() }, "currency_code"),
        (pb::GetRetentionMetricsRequest { segment_id: "segment-1".into(), ..q() }, "segment_id"),
    ];
    for (req, field) in cases {
        let err = c.get_retention_metrics(req.clone()).await.expect_err(&format!("{req:?} should be refused"));
        assert_violation(&err, field);
    }
    // Every bad field at once.
    let err = c
        .get_retention_metrics(pb::GetRetentionMetricsRequest {
            period: Some(month(2025, 13)),
            segment_id: "x".into(),
            currency_code: "XX".into(),
        })
        .await
        .unwrap_err();
    let fields: Vec<String> = violations(&err).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields.len(), 3, "{fields:?}");
    for f in ["month.month", "segment_id", "currency_code"] {
        assert!(fields.iter().any(|x| x == f), "{f} missing in {fields:?}");
    }
    // The longest range allowed is exactly 10 years.
    metrics(&mut c, metrics_req(range((2015, 1, 1), (2025, 1, 1)))).await;
    let err = c.get_retention_metrics(metrics_req(range((2015, 1, 1), (2025, 1, 2)))).await.unwrap_err();
    assert_violation(&err, "date_range.end");
    // A well-formed unknown segment.
    let err = c
        .get_retention_metrics(pb::GetRetentionMetricsRequest { segment_id: uuid::Uuid::now_v7().to_string(), ..q() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn metrics_periods_outside_the_documented_ranges_are_refused() {
    let app = spawn().await;
    let mut c = admin(&app);
    // YearMonth.year and FiscalQuarter.fiscal_year are documented as 1900 to
    // 9999, like every Date of the API.
    let cases: Vec<(P, &str)> = vec![
        (month(1800, 1), "month.year"),
        (month(10_000, 1), "month.year"),
        (quarter(0, 1), "fiscal_quarter.fiscal_year"),
        (P::FiscalYear(-5), "fiscal_year"),
        (P::FiscalYear(300_000), "fiscal_year"),
    ];
    let mut accepted = Vec::new();
    for (period, field) in cases {
        match c.get_retention_metrics(metrics_req(period)).await {
            Ok(m) => {
                let m = m.into_inner();
                accepted.push(format!("{period:?} gave [{:?}, {:?})", m.period_start, m.period_end));
            }
            Err(e) => {
                let vs = violations(&e);
                assert!(vs.iter().any(|(f, _)| f.starts_with(field)), "{period:?}: expected {field}, got {vs:?}");
            }
        }
    }
    // Years outside 1900-9999 (as YearMonth.year documents) are refused,
    // not answered with all-zero metrics for a period nobody can mean.
    assert!(accepted.is_empty(), "out-of-range periods were accepted: {accepted:#?}");
}

#[tokio::test]
async fn a_bad_period_value_is_quoted_in_the_description() {
    let app = spawn().await;
    let mut c = admin(&app);
    for (period, field, value) in
        [(month(2025, -3), "month.month", "-3"), (quarter(2025, -1), "fiscal_quarter.quarter", "-1")]
    {
        let err = c.get_retention_metrics(metrics_req(period)).await.unwrap_err();
        let vs = violations(&err);
        let (_, description) = vs.iter().find(|(f, _)| f == field).unwrap_or_else(|| panic!("{field} in {vs:?}"));
        // The description quotes the value as sent (-3, not a clamped 0).
        assert!(description.contains(value), "{field}: {description:?} should quote {value}");
    }
}
