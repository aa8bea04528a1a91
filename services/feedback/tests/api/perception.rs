//! The perception gap on both forms (the paired statement; the CSM's
//! prediction), and the band × category matrix.

use banso_proto::{feedback as pb, health as hpb};
use tonic::Code;

use crate::common::*;

/// Customers: Alpha's contacts agree 5 and 2, Beta's 4 and 1 → 2 of 4
/// agree (50%). The account team: csm-1 on Alpha 5 then 2 (the latest
/// counts), csm-2 on Alpha 4, csm-1 on Beta 5 → 2 of 3 (66.7%). Gap 16.7
/// points (Newcombe −41.1 to 61.0).
#[tokio::test]
async fn the_paired_statement_shows_the_gap_per_tenant_account_and_segment() {
    let app = spawn().await;
    let mut c = admin(&app);
    let (a, ca) = account_with_contacts(&app, "Alpha", "retail", 2).await;
    let (b, cb) = account_with_contacts(&app, "Beta", "finance", 2).await;
    settle(&app, TENANT).await;
    let s = create_survey(
        &mut c,
        pb::Survey {
            perception_statement: "This company works as if it were in our shoes".into(),
            ..survey("NPS", pb::SurveyKind::Nps)
        },
    )
    .await;
    let campaign = create_campaign(&mut c, campaign_to(&s, &[&a, &b])).await;
    let t = tokens(&mut c, &campaign.id).await;
    let mut p = public(&app);
    for (x, agree) in ca.iter().zip([5, 2]).chain(cb.iter().zip([4, 1])) {
        p.submit_survey_answer(pb::SubmitSurveyAnswerRequest {
            token: t[&x.id].token.clone(),
            score: Some(8),
            perception_agreement: Some(agree),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let team = |subject: &str| client_as(&app, TENANT, subject, Role::Csm);
    let (mut csm1, mut csm2) = (team("csm-1"), team("csm-2"));
    for (who, account, agreement) in [(1, &a, 5), (2, &a, 4), (1, &b, 5), (1, &a, 2)] {
        let cl = if who == 1 { &mut csm1 } else { &mut csm2 };
        let r = cl
            .answer_as_account_team(pb::AnswerAsAccountTeamRequest {
                survey_id: s.id.clone(),
                account_id: account.id.clone(),
                agreement,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.respondent.starts_with("csm-"));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let gap = |scope: pb::GapScope, id: &str| {
        let mut c = c.clone();
        let req = pb::GetPerceptionGapRequest {
            survey_id: s.id.clone(),
            scope: scope as i32,
            scope_id: id.into(),
            ..Default::default()
        };
        async move { c.get_perception_gap(req).await.map(|r| r.into_inner()) }
    };
    let tenant = gap(pb::GapScope::Unspecified, "").await.unwrap();
    assert_eq!(tenant.statement, "This company works as if it were in our shoes");
    let total = tenant.total.unwrap();
    let (v, cu, g) = (total.vendor_agreement.unwrap(), total.customer_agreement.unwrap(), total.gap_points.unwrap());
    assert_eq!((v.n, cu.n), (3, 4));
    close(v.value, 66.67);
    close(cu.value, 50.0);
    close(g.value, 16.67);
    close(g.low, -41.05);
    close(g.high, 60.98);
    let alpha = gap(pb::GapScope::Account, &a.id).await.unwrap().total.unwrap();
    assert_eq!(
        (alpha.vendor_agreement.unwrap().value, alpha.customer_agreement.unwrap().value),
        (Some(50.0), Some(50.0))
    );
    close(alpha.gap_points.unwrap().value, 0.0);
    // Unknown account or segment: NOT_FOUND; a survey without a statement: FAILED_PRECONDITION.
    assert_eq!(gap(pb::GapScope::Account, &uuid::Uuid::now_v7().to_string()).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(gap(pb::GapScope::Segment, &uuid::Uuid::now_v7().to_string()).await.unwrap_err().code(), Code::NotFound);
    let e = gap(pb::GapScope::Account, "nope").await.unwrap_err();
    assert_violation(&e, "scope_id");
    let plain = create_survey(&mut c, survey("plain", pb::SurveyKind::Nps)).await;
    let e = csm1
        .answer_as_account_team(pb::AnswerAsAccountTeamRequest {
            survey_id: plain.id,
            account_id: a.id.clone(),
            agreement: 3,
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "NO_PERCEPTION_STATEMENT");
    let e = csm1
        .answer_as_account_team(pb::AnswerAsAccountTeamRequest {
            survey_id: s.id.clone(),
            account_id: a.id.clone(),
            agreement: 6,
        })
        .await
        .unwrap_err();
    assert_violation(&e, "agreement");
    app.stop().await.unwrap();
}

/// A CSM predicts before the answer; the gap per account and per CSM; the
/// band × category matrix lists the green detractors.
#[tokio::test]
async fn predictions_and_the_matrix_against_the_answers() {
    let app = spawn().await;
    let mut c = admin(&app);
    let (a, ca) = account_with_contacts(&app, "Alpha", "retail", 2).await;
    let (b, cb) = account_with_contacts(&app, "Beta", "finance", 1).await;
    publish_band(&app, TENANT, &a.id, 82.0, hpb::Band::Green).await;
    publish_band(&app, TENANT, &b.id, 30.0, hpb::Band::Red).await;
    settle(&app, TENANT).await;
    let s = create_survey(&mut c, survey("NPS", pb::SurveyKind::Nps)).await;
    let campaign = create_campaign(&mut c, campaign_to(&s, &[&a, &b])).await;
    let mut csm1 = client_as(&app, TENANT, "csm-1", Role::Csm);
    let predict = |account: &str, score: Option<i32>, healthy: Option<bool>| pb::RecordPredictionRequest {
        campaign_id: campaign.id.clone(),
        account_id: account.into(),
        predicted_score: score,
        predicted_healthy: healthy,
    };
    csm1.record_prediction(predict(&a.id, Some(7), None)).await.unwrap();
    // The latest replaces the earlier.
    let p = csm1.record_prediction(predict(&a.id, Some(9), None)).await.unwrap().into_inner();
    assert_eq!((p.predictor.as_str(), p.predicted_score), ("csm-1", Some(9)));
    csm1.record_prediction(predict(&b.id, None, Some(false))).await.unwrap();
    for (bad, field) in [
        (predict(&a.id, Some(11), None), "predicted_score"),
        (predict(&a.id, None, None), "predicted_score"),
        (predict(&a.id, Some(5), Some(true)), "predicted_healthy"),
    ] {
        assert_violation(&csm1.record_prediction(bad).await.unwrap_err(), field);
    }
    let t = tokens(&mut c, &campaign.id).await;
    let mut pub_ = public(&app);
    // Alpha: 3 and 6 → mean 4.5, a detractor; Beta: 2, a detractor.
    answer(&mut pub_, &t[&ca[0].id].token, Some(3)).await.unwrap();
    answer(&mut pub_, &t[&ca[1].id].token, Some(6)).await.unwrap();
    answer(&mut pub_, &t[&cb[0].id].token, Some(2)).await.unwrap();
    // After the answer it is too late.
    let e = csm1.record_prediction(predict(&a.id, Some(5), None)).await.unwrap_err();
    assert_eq!(reason(&e), "ALREADY_ANSWERED");
    let g = c
        .get_prediction_gap(pb::GetPredictionGapRequest {
            survey_id: s.id.clone(),
            group_by: pb::PredictionGrouping::Csm as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.accounts.len(), 2);
    let alpha = g.accounts.iter().find(|x| x.account_id == a.id).unwrap();
    assert_eq!((alpha.predicted_score, alpha.actual_score, alpha.gap), (Some(9), 4.5, Some(4.5)));
    assert_eq!(
        (alpha.predicted_category, alpha.actual_category),
        (pb::NpsCategory::Promoter as i32, pb::NpsCategory::Detractor as i32)
    );
    assert!(alpha.category_mismatch);
    let beta = g.accounts.iter().find(|x| x.account_id == b.id).unwrap();
    assert_eq!((beta.predicted_healthy, beta.category_mismatch, beta.gap), (Some(false), false, None));
    assert_eq!(g.summaries.len(), 1);
    let sm = &g.summaries[0];
    assert_eq!((sm.group.as_str(), sm.n), ("csm-1", 2));
    close(sm.mean_gap.unwrap().value, 4.5);
    close(sm.mismatch_rate.unwrap().value, 50.0);
    // The matrix: Alpha green but a detractor, Beta red and a detractor.
    // (Health's stream is not Accounts': its bands may land a moment later.)
    let m = until("both bands are known", || {
        let mut c = c.clone();
        let id = s.id.clone();
        async move {
            let m = c
                .get_band_category_matrix(pb::GetBandCategoryMatrixRequest { survey_id: id, ..Default::default() })
                .await
                .unwrap()
                .into_inner();
            m.cells.iter().all(|x| x.band != hpb::Band::Unspecified as i32 || x.accounts == 0).then_some(m)
        }
    })
    .await;
    assert_eq!(m.cells.len(), 12);
    let cell = |band: hpb::Band, cat: pb::NpsCategory| {
        m.cells.iter().find(|x| x.band == band as i32 && x.category == cat as i32).unwrap().clone()
    };
    let green_detractor = cell(hpb::Band::Green, pb::NpsCategory::Detractor);
    assert_eq!(green_detractor.accounts, 1);
    assert_eq!(
        (green_detractor.arr[0].currency_code.as_str(), green_detractor.arr[0].amount_minor),
        ("JPY", 12_000_000)
    );
    assert_eq!(cell(hpb::Band::Red, pb::NpsCategory::Detractor).accounts, 1);
    assert_eq!(cell(hpb::Band::Green, pb::NpsCategory::Promoter).accounts, 0);
    let list = c
        .list_matrix_accounts(pb::ListMatrixAccountsRequest {
            survey_id: s.id.clone(),
            band: hpb::Band::Green as i32,
            category: pb::NpsCategory::Detractor as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let got: Vec<_> = list
        .accounts
        .iter()
        .map(|x| (x.account_id.as_str(), x.display_name.as_str(), x.nps_score, x.respondents, x.health_score))
        .collect();
    assert_eq!(got, [(a.id.as_str(), "Alpha", 4.5, 2, Some(82.0))]);
    let e = c
        .list_matrix_accounts(pb::ListMatrixAccountsRequest {
            survey_id: s.id.clone(),
            band: 9,
            category: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    let fields: Vec<_> = violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["band", "category"]);
    // A CES survey has no categories; a CES campaign takes no prediction.
    let ces = create_survey(&mut c, survey("CES", pb::SurveyKind::Ces)).await;
    let e = c
        .get_band_category_matrix(pb::GetBandCategoryMatrixRequest { survey_id: ces.id.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "NOT_AN_NPS_SURVEY");
    let ces_campaign = create_campaign(&mut c, campaign_to(&ces, &[&a])).await;
    let e = csm1
        .record_prediction(pb::RecordPredictionRequest {
            campaign_id: ces_campaign.id,
            ..predict(&b.id, Some(5), None)
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "NOT_AN_NPS_CAMPAIGN");
    app.stop().await.unwrap();
}
