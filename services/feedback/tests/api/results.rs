//! Results against hand-computed values: NPS with its interval, CSAT,
//! CES, outcome, the response rate by send date; by group and period.

use banso_events::Payload;
use banso_proto::{accounts as apb, events as ev, feedback as pb};

use crate::common::*;

/// Ten answers of twelve invitations, eleven delivered (docs/metrics.md's
/// worked example): 5 promoters, 2 passives, 3 detractors → NPS 20 ±
/// 54.03; response rate 10 ÷ 11 = 90.9% (Wilson 62.3–98.4).
#[tokio::test]
async fn nps_and_the_response_rate_match_the_hand_computed_values() {
    let app = spawn().await;
    let mut c = admin(&app);
    let (a, ca) = account_with_contacts(&app, "Alpha", "retail", 5).await;
    let (b, cb) = account_with_contacts(&app, "Beta", "finance", 7).await;
    settle(&app, TENANT).await;
    let s = create_survey(&mut c, survey("NPS", pb::SurveyKind::Nps)).await;
    let campaign = create_campaign(&mut c, campaign_to(&s, &[&a, &b])).await;
    assert_eq!(campaign.counts.unwrap().invited, 12);
    let t = tokens(&mut c, &campaign.id).await;
    // Eleven delivered: all but Beta's last contact.
    let delivered: Vec<String> = ca.iter().chain(&cb[..6]).map(|x| t[&x.id].id.clone()).collect();
    c.mark_invitations_delivered(pb::MarkInvitationsDeliveredRequest {
        campaign_id: campaign.id.clone(),
        invitation_ids: delivered,
        deliver_time: None,
    })
    .await
    .unwrap();
    let mut p = public(&app);
    for (x, score) in ca.iter().zip([9, 10, 10, 9, 7]).chain(cb.iter().zip([8, 3, 6, 0, 10])) {
        answer(&mut p, &t[&x.id].token, Some(score)).await.unwrap();
    }
    let r = c
        .get_survey_results(pb::GetSurveyResultsRequest { survey_id: s.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let total = r.total.unwrap();
    assert_eq!((total.answers, total.promoters, total.passives, total.detractors, total.delivered), (10, 5, 2, 3, 11));
    let nps = total.nps.unwrap();
    assert_eq!(nps.n, 10);
    close(nps.value, 20.0);
    close(nps.low, -34.03);
    close(nps.high, 74.03);
    let rate = total.response_rate.unwrap();
    close(rate.value, 90.91);
    close(rate.low, 62.26);
    close(rate.high, 98.38);
    assert_eq!(total.csat.unwrap().n, 0, "an NPS survey has no CSAT");
    // By industry and month: retail 4 promoters + 1 passive → 80; finance
    // 1 promoter, 1 passive, 3 detractors → −40; both this month.
    let r = c
        .get_survey_results(pb::GetSurveyResultsRequest {
            survey_id: s.id.clone(),
            group_by: pb::ResultGrouping::Industry as i32,
            period: pb::Period::Month as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let rows: Vec<_> =
        r.rows.iter().map(|x| (x.period.as_str(), x.group.as_str(), x.answers, x.nps.unwrap().value)).collect();
    assert_eq!(rows, [(month.as_str(), "finance", 5, Some(-40.0)), (month.as_str(), "retail", 5, Some(80.0))]);
    // The tenant's fiscal calendar: a year starting in April, in Tokyo.
    publish(
        &app,
        TENANT,
        "accounts",
        Payload::TenantSettingsChanged(ev::TenantSettingsChanged {
            settings: Some(apb::TenantSettings {
                time_zone: "Asia/Tokyo".into(),
                fiscal_year_start_month: 4,
                ..Default::default()
            }),
        }),
    )
    .await;
    settle(&app, TENANT).await;
    let r = c
        .get_survey_results(pb::GetSurveyResultsRequest {
            survey_id: s.id.clone(),
            period: pb::Period::FiscalYear as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let tokyo = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Tokyo).date_naive();
    use chrono::Datelike as _;
    let fy = if tokyo.month() >= 4 { tokyo.year() } else { tokyo.year() - 1 };
    assert_eq!(r.rows.len(), 1);
    assert_eq!(r.rows[0].period, format!("FY{fy}"));
    assert_eq!(r.rows[0].period_start.unwrap().month, 4);
    // A range before the answers holds nothing; a range that ends before it starts is refused.
    let r = c
        .get_survey_results(pb::GetSurveyResultsRequest {
            survey_id: s.id.clone(),
            end_time: Some(pbjson_types::Timestamp { seconds: 1_000_000_000, nanos: 0 }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.total.unwrap().answers, 0);
    let e = c
        .get_survey_results(pb::GetSurveyResultsRequest {
            survey_id: s.id.clone(),
            start_time: Some(pbjson_types::Timestamp { seconds: 2_000_000_000, nanos: 0 }),
            end_time: Some(pbjson_types::Timestamp { seconds: 1_000_000_000, nanos: 0 }),
            group_by: 99,
            period: 99,
        })
        .await
        .unwrap_err();
    let fields: Vec<_> = violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["group_by", "period", "end_time"]);
    let mut other = client(&app, "globex", Role::Admin);
    let e = other
        .get_survey_results(pb::GetSurveyResultsRequest { survey_id: s.id, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    app.stop().await.unwrap();
}

/// CSAT 5, 4, 3, 1, 4 → 60% (Wilson 23.1–88.2); CES 5, 6, 7, 4, 6 → 5.6
/// (t interval 4.18–7); outcome 2, 4 → 3 (1–5, clamped).
#[tokio::test]
async fn csat_ces_and_outcome_match_the_hand_computed_values() {
    let app = spawn().await;
    let mut c = admin(&app);
    let (a, ca) = account_with_contacts(&app, "Alpha", "retail", 5).await;
    settle(&app, TENANT).await;
    let mut p = public(&app);
    let mut run = async |kind: pb::SurveyKind, scores: &[i32]| {
        let s = create_survey(&mut c, survey("s", kind)).await;
        let campaign = create_campaign(&mut c, campaign_to(&s, &[&a])).await;
        let t = tokens(&mut c, &campaign.id).await;
        for (x, score) in ca.iter().zip(scores) {
            answer(&mut p, &t[&x.id].token, Some(*score)).await.unwrap();
        }
        let r =
            c.get_survey_results(pb::GetSurveyResultsRequest { survey_id: s.id, ..Default::default() }).await.unwrap();
        r.into_inner().total.unwrap()
    };
    let csat = run(pb::SurveyKind::Csat, &[5, 4, 3, 1, 4]).await.csat.unwrap();
    close(csat.value, 60.0);
    close(csat.low, 23.07);
    close(csat.high, 88.24);
    let ces = run(pb::SurveyKind::Ces, &[5, 6, 7, 4, 6]).await.ces.unwrap();
    close(ces.value, 5.6);
    close(ces.low, 4.18);
    close(ces.high, 7.0);
    let outcome = run(pb::SurveyKind::Outcome, &[2, 4]).await.outcome.unwrap();
    assert_eq!(outcome.n, 2);
    close(outcome.value, 3.0);
    close(outcome.low, 1.0);
    close(outcome.high, 5.0);
    app.stop().await.unwrap();
}
