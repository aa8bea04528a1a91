//! Target selection (RankThemes): every factor against hand-computed
//! values — docs/metrics.md's worked example through the API — the
//! quadrant, the ARR columns, the segment, the weights, bad input and
//! tenancy.

use std::collections::BTreeSet;

use banso_events::Payload;
use banso_proto::{accounts as apb, events as ev, feedback as pb, health as hpb, types as tpb};
use banso_testkit::{Bearer, TestApp};
use chrono::{DateTime, Datelike, NaiveDate};
use tonic::{Code, codegen::InterceptedService, transport::Channel};

use crate::common::*;

type Voice = pb::voice_service_client::VoiceServiceClient<InterceptedService<Channel, Bearer>>;

fn voice(app: &TestApp, tenant: &str, role: Role) -> Voice {
    pb::voice_service_client::VoiceServiceClient::with_interceptor(app.channel.clone(), app.bearer(tenant, role))
}

fn eq(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-9, "{what}: {a} vs {b}");
}

fn jpy(minor: i64) -> tpb::Money {
    tpb::Money { currency_code: "JPY".into(), amount_minor: minor }
}

fn money(code: &str, minor: i64) -> tpb::Money {
    tpb::Money { currency_code: code.into(), amount_minor: minor }
}

async fn publish_segment(app: &TestApp, tenant: &str, expression: &str) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    publish(
        app,
        tenant,
        "accounts",
        Payload::SegmentChanged(ev::SegmentChanged {
            change: ev::segment_changed::Change::Created as i32,
            segment: Some(apb::Segment {
                id: id.clone(),
                display_name: expression.into(),
                expression: expression.into(),
                ..Default::default()
            }),
        }),
    )
    .await;
    id
}

/// An account of `industry` with ARR, and `n` contacts (the first a
/// champion when asked), published.
async fn customer(
    app: &TestApp,
    tenant: &str,
    name: &str,
    industry: &str,
    arr: tpb::Money,
    n: usize,
    champion: bool,
) -> (apb::Account, Vec<apb::Contact>) {
    let a = apb::Account { arr: Some(arr), ..account(name, industry) };
    publish_account(app, tenant, &a).await;
    let mut cs = Vec::new();
    for i in 0..n {
        let c = apb::Contact {
            champion: champion && i == 0,
            ..contact(&a, &format!("{name} Person {i}"), apb::ContactLevel::Manager)
        };
        publish_contact(app, tenant, &c).await;
        cs.push(c);
    }
    (a, cs)
}

async fn create_theme(v: &mut Voice, name: &str, assessment: pb::ThemeAssessment) -> pb::Theme {
    v.create_theme(pb::CreateThemeRequest {
        theme: Some(pb::Theme { display_name: name.into(), assessment: Some(assessment), ..Default::default() }),
        request_id: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
}

/// An item of `account` (by `contact`) of `severity`, put in `theme`; its
/// day (UTC, the tenant's zone by default).
async fn mention(v: &mut Voice, theme: &str, account: &str, contact: Option<&str>, severity: i32) -> NaiveDate {
    mention_on(v, theme, account, contact, severity, None).await
}

/// [`mention`], said on `day` (noon UTC) when given, else today.
async fn mention_on(
    v: &mut Voice,
    theme: &str,
    account: &str,
    contact: Option<&str>,
    severity: i32,
    day: Option<&str>,
) -> NaiveDate {
    let mention_time = day.map(|d| {
        let t = NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap().and_hms_opt(12, 0, 0).unwrap().and_utc();
        pbjson_types::Timestamp { seconds: t.timestamp(), nanos: 0 }
    });
    let item = v
        .create_feedback_item(pb::CreateFeedbackItemRequest {
            item: Some(pb::FeedbackItem {
                text: format!("severity {severity} trouble"),
                channel: pb::Channel::CsmNote as i32,
                account_id: account.into(),
                contact_id: contact.unwrap_or_default().into(),
                department: pb::Department::Product as i32,
                severity,
                mention_time,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    v.assign_theme(pb::AssignThemeRequest { item_id: item.id.clone(), theme_id: theme.into() }).await.unwrap();
    let t = item.mention_time.expect("a mention time");
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap()).unwrap().date_naive()
}

/// (span in days, share of months with a mention) of these days, by hand.
fn span_and_coverage(days: &[NaiveDate]) -> (i64, f64) {
    let (first, last) = (*days.iter().min().unwrap(), *days.iter().max().unwrap());
    let month = |d: NaiveDate| d.year() * 12 + d.month0() as i32;
    let months: BTreeSet<i32> = days.iter().map(|d| month(*d)).collect();
    ((last - first).num_days(), months.len() as f64 / f64::from(month(last) - month(first) + 1))
}

async fn rank(v: &mut Voice, segment: &str, weights: Option<pb::RankWeights>) -> pb::RankThemesResponse {
    v.rank_themes(pb::RankThemesRequest { segment_id: segment.into(), weights }).await.unwrap().into_inner()
}

fn row<'a>(r: &'a pb::RankThemesResponse, theme: &str) -> &'a pb::RankedTheme {
    r.themes.iter().find(|t| t.theme_id == theme).unwrap_or_else(|| panic!("theme {theme} ranked: {r:?}"))
}

/// Waits until the theme's row in the ranking passes `ok`.
async fn until_row(v: &Voice, segment: &str, theme: &str, what: &str, ok: impl Fn(&pb::RankedTheme) -> bool) {
    until(what, || {
        let mut v = v.clone();
        let (segment, theme) = (segment.to_string(), theme.to_string());
        let ok = &ok;
        async move {
            let r =
                v.rank_themes(pb::RankThemesRequest { segment_id: segment, weights: None }).await.ok()?.into_inner();
            r.themes.iter().find(|t| t.theme_id == theme).filter(|t| ok(t)).map(|_| ())
        }
    })
    .await;
}

/// docs/metrics.md's worked example: the theme's assessment.
fn worked_assessment() -> pb::ThemeAssessment {
    pb::ThemeAssessment {
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
    }
}

/// docs/metrics.md's worked example, through the API: a retail segment of
/// 10 accounts (ARR ¥1,000,000 each) and 40 contacts; accounts 1–4 raised
/// the theme in 6 items of 6 contacts, severities 4, 5, 3, 4, 4, 4;
/// account 2 is red (health 30), the others 70; accounts 1 and 2 have a
/// champion. The items are dated as the document dates them (their
/// mention times: January 10 to October 7, 2026), so every factor is the
/// document's number; the tech account's item is from December 2025.
#[tokio::test]
async fn the_worked_example_every_factor_by_hand() {
    let app = spawn().await;
    let mut v = voice(&app, TENANT, Role::Admin);
    let retail = publish_segment(&app, TENANT, "account.industry == 'retail'").await;
    let mut accounts = Vec::new();
    for i in 1..=10 {
        accounts.push(customer(&app, TENANT, &format!("Retail {i}"), "retail", jpy(1_000_000), 4, i <= 2).await);
    }
    // Outside the segment: a tech account that raised it too.
    let (tech, tech_contacts) = customer(&app, TENANT, "Tech", "tech", jpy(1_000_000), 1, false).await;
    for (a, _) in [&accounts[0], &accounts[2], &accounts[3]] {
        publish_band(&app, TENANT, &a.id, 70.0, hpb::Band::Green).await;
    }
    publish_band(&app, TENANT, &tech.id, 50.0, hpb::Band::Yellow).await;
    publish_band(&app, TENANT, &accounts[1].0.id, 30.0, hpb::Band::Red).await;
    let theme = create_theme(&mut v, "Invoices are hard to read", worked_assessment()).await;
    until_row(&v, &retail, &theme.id, "the segment's accounts and contacts", |t| {
        t.segment_accounts == 10 && t.segment_contacts == 40
    })
    .await;
    let c = |i: usize, k: usize| Some(accounts[i].1[k].id.as_str());
    let mut days = Vec::new();
    for (i, k, severity, day) in [
        (0, 0, 4, "2026-01-10"),
        (0, 1, 5, "2026-02-03"),
        (1, 0, 3, "2026-04-20"),
        (2, 0, 4, "2026-06-01"),
        (3, 0, 4, "2026-10-07"),
        (3, 1, 4, "2026-10-07"),
    ] {
        days.push(mention_on(&mut v, &theme.id, &accounts[i].0.id, c(i, k), severity, Some(day)).await);
    }
    let tech_day = mention_on(&mut v, &theme.id, &tech.id, Some(&tech_contacts[0].id), 2, Some("2025-12-20")).await;
    until_row(&v, &retail, &theme.id, "health of the mentioning accounts", |t| {
        (t.relationship - 0.6).abs() < 1e-9 && (t.at_risk_share - 0.25).abs() < 1e-9
    })
    .await;

    let r = rank(&mut v, &retail, None).await;
    assert_eq!(r.themes.len(), 1);
    let t = row(&r, &theme.id);
    assert_eq!(t.display_name, "Invoices are hard to read");
    assert_eq!((t.accounts, t.segment_accounts, t.contacts, t.segment_contacts), (4, 10, 6, 40));
    eq(t.generality, (4.0 / 10.0 + 6.0 / 40.0) / 2.0, "generality"); // 0.275
    assert_eq!(t.span_days, 270);
    eq(t.month_coverage, 0.5, "month coverage");
    let longevity = 270.0 / 365.0 * 0.5; // 0.369863
    eq(t.longevity, longevity, "longevity");
    eq(t.mean_severity, 4.0, "mean severity");
    eq(t.at_risk_share, 0.25, "at-risk share");
    assert_eq!(t.lenses, 2);
    let severity = (4.0 / 5.0 + 0.25 + 2.0 / 4.0) / 3.0;
    eq(t.severity, severity, "severity");
    eq(t.impact, 0.275 * longevity * severity, "impact");
    assert!((t.impact - 0.052551).abs() < 5e-7, "impact {} is the document's 0.052551", t.impact);
    assert_eq!(t.quadrant, pb::Quadrant::WidenConsultation as i32);
    eq(t.champion_share, 0.5, "champion share");
    eq(t.relationship, 0.6, "relationship"); // (70 + 30 + 70 + 70) ÷ 4 ÷ 100
    let opportunity = (4.0 / 5.0 + 0.5 + 0.6) / 3.0 * 0.75; // 0.475
    eq(t.opportunity, opportunity, "opportunity");
    eq(t.ease, (4.0 + 2.0) / 10.0, "ease");
    eq(t.contribution, opportunity * 0.6, "contribution"); // 0.285
    eq(t.cost, 100.0 + 5.0 * 4.0, "cost");
    eq(t.priority, 0.275 * longevity * severity * 0.285 / 120.0, "priority");
    assert!((t.priority - 0.000124810).abs() < 5e-10, "priority {} is the document's 0.000124810", t.priority);
    assert_eq!(t.arr, [jpy(4_000_000)]);
    assert_eq!(t.arr_at_risk, [jpy(1_000_000)]);
    assert_eq!(
        r.weights,
        Some(pb::RankWeights { impact: Some(1.0), contribution: Some(1.0), cost: Some(1.0), arr: Some(0.0) })
    );

    // Weights asked for: impact left out, ARR weighed in — the document's
    // ÷ 120 × 0.4 (4 of the segment's ¥10,000,000).
    let w = pb::RankWeights { impact: Some(0.0), arr: Some(1.0), ..Default::default() };
    let r = rank(&mut v, &retail, Some(w)).await;
    eq(row(&r, &theme.id).priority, 0.285 / 120.0 * 0.4, "priority with weights");
    assert_eq!(
        r.weights,
        Some(pb::RankWeights { impact: Some(0.0), contribution: Some(1.0), cost: Some(1.0), arr: Some(1.0) })
    );

    // Without a segment: every live account (11, 41 contacts), the tech
    // account's mention too.
    let r = rank(&mut v, "", Some(w)).await;
    let t = row(&r, &theme.id);
    assert_eq!((t.accounts, t.segment_accounts, t.contacts, t.segment_contacts), (5, 11, 7, 41));
    let mut all_days = days.clone();
    all_days.push(tech_day);
    let (span, coverage) = span_and_coverage(&all_days);
    // December 20, 2025 to October 7, 2026; 6 of 11 months.
    assert_eq!((span, coverage), (291, 6.0 / 11.0));
    assert_eq!(t.span_days, span);
    eq(t.month_coverage, coverage, "month coverage of all");
    eq(t.mean_severity, 26.0 / 7.0, "mean severity of all");
    eq(t.at_risk_share, 0.2, "at-risk share of all");
    eq(t.champion_share, 0.4, "champion share of all");
    eq(t.relationship, 0.58, "relationship of all"); // (70 + 30 + 70 + 70 + 50) ÷ 5 ÷ 100
    let opportunity = (0.8 + 0.4 + 0.58) / 3.0 * 0.75;
    eq(t.opportunity, opportunity, "opportunity of all");
    eq(t.cost, 125.0, "cost of all");
    eq(t.priority, opportunity * 0.6 / 125.0 * (5.0 / 11.0), "priority of all");
    assert_eq!(t.arr, [jpy(5_000_000)]);

    // An NPS detractor is at risk; only the account's latest answer counts.
    let mut s = admin(&app);
    let nps = create_survey(&mut s, survey("NPS", pb::SurveyKind::Nps)).await;
    let campaign = create_campaign(&mut s, campaign_to(&nps, &[&accounts[0].0, &accounts[2].0])).await;
    let tokens = tokens(&mut s, &campaign.id).await;
    let mut p = public(&app);
    let token = |c: &apb::Contact| tokens[&c.id].token.clone();
    answer(&mut p, &token(&accounts[0].1[0]), Some(2)).await.unwrap();
    answer(&mut p, &token(&accounts[0].1[1]), Some(10)).await.unwrap(); // account 1: latest a promoter
    answer(&mut p, &token(&accounts[2].1[0]), Some(5)).await.unwrap(); // account 3: a detractor
    let r = rank(&mut v, &retail, None).await;
    let t = row(&r, &theme.id);
    eq(t.at_risk_share, 0.5, "at-risk share with a detractor");
    eq(t.severity, (0.8 + 0.5 + 0.5) / 3.0, "severity with a detractor");
    assert_eq!(t.arr_at_risk, [jpy(2_000_000)]);
}

/// The essay's quadrant, all four, and a competitor that meets the need:
/// opportunity = (expertise ÷ 5 + champion share + relationship) ÷ 3 ×
/// quadrant factor × competitor factor; ranked by priority (here, with
/// impact weighed out and no cost, contribution = opportunity × ease).
#[tokio::test]
async fn the_quadrant_for_all_four_and_the_order() {
    let app = spawn().await;
    let mut v = voice(&app, TENANT, Role::Admin);
    let (a, cs) = customer(&app, TENANT, "Solo", "retail", jpy(1), 1, true).await;
    publish_band(&app, TENANT, &a.id, 80.0, hpb::Band::Green).await;
    let q = |support: bool, consult: bool, competitor: bool| pb::ThemeAssessment {
        we_can_support: support,
        customers_consult_us: consult,
        competitor_meets_need: competitor,
        expertise: 5,
        ..Default::default()
    };
    let cases = [
        ("act now", q(true, true, false), pb::Quadrant::ActNow, 1.0),
        ("widen", q(true, false, false), pb::Quadrant::WidenConsultation, 0.75),
        ("build", q(false, true, false), pb::Quadrant::BuildCapability, 0.5),
        ("last", q(false, false, false), pb::Quadrant::Last, 0.25),
        ("act now, met by a competitor", q(true, true, true), pb::Quadrant::ActNow, 0.5),
    ];
    let mut themes = Vec::new();
    for (name, assessment, _, _) in &cases {
        themes.push(create_theme(&mut v, name, *assessment).await);
    }
    until_row(&v, "", &themes[0].id, "the account", |t| t.segment_accounts == 1).await;
    for t in &themes {
        mention(&mut v, &t.id, &a.id, Some(&cs[0].id), 3).await;
    }
    until_row(&v, "", &themes[0].id, "the account's health", |t| (t.relationship - 0.8).abs() < 1e-9).await;
    let w = pb::RankWeights { impact: Some(0.0), ..Default::default() };
    let r = rank(&mut v, "", Some(w)).await;
    for ((name, _, quadrant, factor), theme) in cases.iter().zip(&themes) {
        let t = row(&r, &theme.id);
        assert_eq!(t.quadrant, *quadrant as i32, "{name}");
        eq(t.champion_share, 1.0, name);
        let opportunity = (5.0 / 5.0 + 1.0 + 0.8) / 3.0 * factor;
        eq(t.opportunity, opportunity, name);
        eq(t.ease, 0.6, name); // certainty and speed not assessed: 3 each
        eq(t.contribution, opportunity * 0.6, name);
        eq(t.cost, 0.0, name);
        eq(t.priority, opportunity * 0.6, name); // no cost: not divided
    }
    // Highest priority first; "build" and the met "act now" tie (0.5):
    // the smaller theme id first.
    let order: Vec<&str> = r.themes.iter().map(|t| t.theme_id.as_str()).collect();
    let (tie_a, tie_b) = (themes[2].id.as_str(), themes[4].id.as_str());
    let (lo, hi) = if tie_a < tie_b { (tie_a, tie_b) } else { (tie_b, tie_a) };
    assert_eq!(order, [themes[0].id.as_str(), themes[1].id.as_str(), lo, hi, themes[3].id.as_str()]);
    // Every role reads it.
    let mut viewer = voice(&app, TENANT, Role::Viewer);
    assert_eq!(rank(&mut viewer, "", None).await.themes.len(), 5);
}

/// ARR per currency as columns beside the score, never inside it unless
/// weighed: the main currency is the one with the largest total among the
/// segment's accounts, and only ARR in it makes the ARR share.
#[tokio::test]
async fn arr_columns_per_currency_and_the_main_currency() {
    let app = spawn().await;
    let mut v = voice(&app, TENANT, Role::Admin);
    let (yen, _) = customer(&app, TENANT, "Yen", "retail", jpy(500_000), 0, false).await;
    let (dollar, _) = customer(&app, TENANT, "Dollar", "retail", money("USD", 300_000), 0, false).await;
    customer(&app, TENANT, "Quiet", "retail", money("USD", 400_000), 0, false).await;
    publish_band(&app, TENANT, &yen.id, 20.0, hpb::Band::Red).await;
    let theme = create_theme(&mut v, "Exports", pb::ThemeAssessment::default()).await;
    until_row(&v, "", &theme.id, "the accounts", |t| t.segment_accounts == 3).await;
    mention(&mut v, &theme.id, &yen.id, None, 3).await;
    mention(&mut v, &theme.id, &dollar.id, None, 3).await;
    until_row(&v, "", &theme.id, "the red account", |t| t.at_risk_share > 0.0).await;
    let r = rank(&mut v, "", None).await;
    let t = row(&r, &theme.id);
    assert_eq!(t.arr, [jpy(500_000), money("USD", 300_000)]);
    assert_eq!(t.arr_at_risk, [jpy(500_000)]);
    assert_eq!((t.contacts, t.segment_contacts), (0, 0));
    eq(t.generality, (2.0 / 3.0 + 0.0) / 2.0, "generality without contacts");
    eq(t.at_risk_share, 0.5, "at-risk share");
    eq(t.relationship, 0.2, "relationship of the one scored account");
    // USD totals 700,000 against JPY's 500,000 (minor units, no exchange
    // rates): the share is 300,000 ÷ 700,000.
    let plain = t.priority;
    let w = pb::RankWeights { arr: Some(1.0), ..Default::default() };
    let weighed = row(&rank(&mut v, "", Some(w)).await, &theme.id).priority;
    eq(weighed, plain * 3.0 / 7.0, "priority with ARR weighed");
    let w = pb::RankWeights { impact: Some(0.0), arr: Some(1.0), ..Default::default() };
    let t = rank(&mut v, "", Some(w)).await;
    eq(row(&t, &theme.id).priority, row(&t, &theme.id).contribution * 3.0 / 7.0, "contribution × ARR share");

    // The tenant's weights are the default of every ranking; a request's
    // weights override them one by one.
    v.update_voice_settings(pb::UpdateVoiceSettingsRequest {
        settings: Some(pb::VoiceSettings {
            weights: Some(pb::RankWeights { impact: Some(0.0), arr: Some(1.0), ..Default::default() }),
            ..Default::default()
        }),
        update_mask: Some(pbjson_types::FieldMask { paths: vec!["weights".into()] }),
    })
    .await
    .unwrap();
    let r = rank(&mut v, "", None).await;
    assert_eq!(
        r.weights,
        Some(pb::RankWeights { impact: Some(0.0), contribution: Some(1.0), cost: Some(1.0), arr: Some(1.0) })
    );
    eq(row(&r, &theme.id).priority, row(&r, &theme.id).contribution * 3.0 / 7.0, "the tenant's weights");
    let r = rank(&mut v, "", Some(pb::RankWeights { arr: Some(0.0), ..Default::default() })).await;
    assert_eq!(
        r.weights,
        Some(pb::RankWeights { impact: Some(0.0), contribution: Some(1.0), cost: Some(1.0), arr: Some(0.0) })
    );
    eq(row(&r, &theme.id).priority, row(&r, &theme.id).contribution, "the tenant's weights, ARR overridden");
}

#[tokio::test]
async fn bad_input_and_another_tenant() {
    let app = spawn().await;
    let mut v = voice(&app, TENANT, Role::Admin);
    let retail = publish_segment(&app, TENANT, "account.industry == 'retail'").await;
    let (a, _) = customer(&app, TENANT, "Alpha", "retail", jpy(1), 0, false).await;
    let theme = create_theme(&mut v, "Alpha's wish", pb::ThemeAssessment::default()).await;
    until_row(&v, &retail, &theme.id, "the segment", |t| t.segment_accounts == 1).await;
    mention(&mut v, &theme.id, &a.id, None, 5).await;

    let bad =
        |w: pb::RankWeights, segment: &str| pb::RankThemesRequest { segment_id: segment.into(), weights: Some(w) };
    let e = v
        .rank_themes(bad(
            pb::RankWeights {
                impact: Some(10.5),
                contribution: Some(-0.1),
                cost: Some(f64::NAN),
                arr: Some(f64::INFINITY),
            },
            "not-a-uuid",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let fields: BTreeSet<String> = violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        ["segment_id", "weights.arr", "weights.contribution", "weights.cost", "weights.impact"]
            .map(String::from)
            .into()
    );
    // The bounds themselves are weights.
    let edge = pb::RankWeights { impact: Some(0.0), contribution: Some(10.0), cost: Some(0.0), arr: Some(10.0) };
    assert_eq!(rank(&mut v, &retail, Some(edge)).await.weights, Some(edge));

    let e = v
        .rank_themes(pb::RankThemesRequest { segment_id: uuid::Uuid::now_v7().to_string(), weights: None })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Another tenant sees no theme, and not the segment.
    let mut other = voice(&app, "globex", Role::Admin);
    assert!(rank(&mut other, "", None).await.themes.is_empty());
    let e = other.rank_themes(pb::RankThemesRequest { segment_id: retail, weights: None }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Without a token, no ranking.
    let mut anonymous = pb::voice_service_client::VoiceServiceClient::new(app.channel.clone());
    let e = anonymous.rank_themes(pb::RankThemesRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}
