//! Surveys: the kinds, custom questions, Japanese text, bad input.

use banso_proto::feedback as pb;
use tonic::Code;

use crate::common::*;

#[tokio::test]
async fn surveys_are_created_read_and_listed_by_kind() {
    let app = spawn().await;
    let mut c = admin(&app);
    let ces = create_survey(&mut c, survey("Support effort", pb::SurveyKind::Ces)).await;
    assert_eq!(ces.kind, pb::SurveyKind::Ces as i32);
    assert_eq!(ces.language, "en");
    let ja = create_survey(
        &mut c,
        pb::Survey {
            language: "ja".into(),
            default_outcome: "月次決算の短縮".into(),
            perception_statement: "この会社は私たちの立場で仕事をしている".into(),
            questions: vec![
                pb::CustomQuestion {
                    text: "最も役に立った機能は？".into(),
                    r#type: pb::QuestionType::Choice as i32,
                    choices: vec!["レポート".into(), "通知".into()],
                    ..Default::default()
                },
                pb::CustomQuestion {
                    text: "理由".into(), r#type: pb::QuestionType::Text as i32, ..Default::default()
                },
                pb::CustomQuestion {
                    text: "使いやすさ".into(),
                    r#type: pb::QuestionType::Scale as i32,
                    scale_min: 0,
                    scale_max: 10,
                    required: true,
                    ..Default::default()
                },
            ],
            ..survey("導入成果アンケート", pb::SurveyKind::Outcome)
        },
    )
    .await;
    let ids: Vec<_> = ja.questions.iter().map(|q| (q.id.as_str(), q.scale_min, q.scale_max)).collect();
    assert_eq!(ids, [("q1", 0, 0), ("q2", 0, 0), ("q3", 0, 10)]);
    let got = c.get_survey(pb::GetSurveyRequest { id: ja.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got, ja);
    // A retry with the same request_id returns the first survey.
    let req = pb::CreateSurveyRequest { survey: Some(survey("NPS", pb::SurveyKind::Nps)), request_id: "r-1".into() };
    let a = c.create_survey(req.clone()).await.unwrap().into_inner();
    let b = c.create_survey(req).await.unwrap().into_inner();
    assert_eq!(a.id, b.id);
    let outcome = c
        .list_surveys(pb::ListSurveysRequest { kind: pb::SurveyKind::Outcome as i32, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcome.surveys.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [ja.id.as_str()]);
    // Pages of one.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_surveys(pb::ListSurveysRequest { page_size: 1, page_token: token, kind: 0 })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.surveys.into_iter().map(|s| s.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, [ces.id.clone(), ja.id.clone(), a.id.clone()]);
    // Another tenant sees none of it.
    let mut other = client(&app, "globex", Role::Admin);
    let e = other.get_survey(pb::GetSurveyRequest { id: ces.id.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // A CSM reads but does not create surveys.
    let mut csm = client(&app, TENANT, Role::Csm);
    assert!(csm.get_survey(pb::GetSurveyRequest { id: ces.id }).await.is_ok());
    let e = csm
        .create_survey(pb::CreateSurveyRequest {
            survey: Some(survey("x", pb::SurveyKind::Ces)),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn every_bad_field_of_a_survey_is_named() {
    let app = spawn().await;
    let mut c = admin(&app);
    let bad = pb::Survey {
        display_name: " ".into(),
        kind: 42,
        question: "あ".repeat(501),
        language: "fr".into(),
        perception_statement: "x".repeat(301),
        questions: vec![
            pb::CustomQuestion { text: String::new(), r#type: 0, ..Default::default() },
            pb::CustomQuestion {
                text: "pick".into(),
                r#type: pb::QuestionType::Choice as i32,
                choices: vec!["a".into(), "a".into()],
                ..Default::default()
            },
            pb::CustomQuestion {
                text: "rate".into(),
                r#type: pb::QuestionType::Scale as i32,
                scale_min: 5,
                scale_max: 3,
                multiple: true,
                ..Default::default()
            },
            pb::CustomQuestion {
                text: "why".into(),
                r#type: pb::QuestionType::Text as i32,
                choices: vec!["no".into()],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let e = c
        .create_survey(pb::CreateSurveyRequest { survey: Some(bad), request_id: "not a uuid!".into() })
        .await
        .unwrap_err();
    let fields: Vec<String> = violations(&e).into_iter().map(|(f, _)| f).collect();
    for f in [
        "request_id",
        "survey.display_name",
        "survey.kind",
        "survey.question",
        "survey.perception_statement",
        "survey.language",
        "survey.questions[0].text",
        "survey.questions[0].type",
        "survey.questions[1].choices[1]",
        "survey.questions[2].scale_max",
        "survey.questions[2].multiple",
        "survey.questions[3].choices",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
    }
    // 500 Japanese characters (1,500 bytes) is within the limit: characters, not bytes.
    let ok = c
        .create_survey(pb::CreateSurveyRequest {
            survey: Some(pb::Survey { question: "あ".repeat(500), ..survey("長い質問", pb::SurveyKind::Csat) }),
            request_id: String::new(),
        })
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    // A custom survey needs a question; a missing survey is named.
    let e = c
        .create_survey(pb::CreateSurveyRequest {
            survey: Some(survey("c", pb::SurveyKind::Custom)),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_violation(&e, "survey.questions");
    let e = c.create_survey(pb::CreateSurveyRequest { survey: None, request_id: String::new() }).await.unwrap_err();
    assert_violation(&e, "survey");
    let e = c.get_survey(pb::GetSurveyRequest { id: "nope".into() }).await.unwrap_err();
    assert_violation(&e, "id");
    let e = c.list_surveys(pb::ListSurveysRequest { page_size: -1, ..Default::default() }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e =
        c.list_surveys(pb::ListSurveysRequest { page_token: "forged".into(), ..Default::default() }).await.unwrap_err();
    assert_violation(&e, "page_token");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn throttle_settings_are_per_kind() {
    let app = spawn().await;
    let mut c = admin(&app);
    let s = c.get_feedback_settings(pb::GetFeedbackSettingsRequest {}).await.unwrap().into_inner();
    assert!(s.throttles.iter().all(|t| t.days == 90), "{s:?}");
    let s = c
        .update_feedback_settings(pb::UpdateFeedbackSettingsRequest {
            settings: Some(pb::FeedbackSettings {
                throttles: vec![pb::KindThrottle { kind: pb::SurveyKind::Nps as i32, days: 30 }],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let days =
        |s: &pb::FeedbackSettings, k: pb::SurveyKind| s.throttles.iter().find(|t| t.kind == k as i32).unwrap().days;
    assert_eq!((days(&s, pb::SurveyKind::Nps), days(&s, pb::SurveyKind::Ces)), (30, 90));
    let e = c
        .update_feedback_settings(pb::UpdateFeedbackSettingsRequest {
            settings: Some(pb::FeedbackSettings {
                throttles: vec![
                    pb::KindThrottle { kind: 0, days: 731 },
                    pb::KindThrottle { kind: pb::SurveyKind::Ces as i32, days: 1 },
                    pb::KindThrottle { kind: pb::SurveyKind::Ces as i32, days: 2 },
                ],
            }),
        })
        .await
        .unwrap_err();
    let fields: Vec<_> = violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["settings.throttles[0].kind", "settings.throttles[0].days", "settings.throttles[2].kind"]);
    let mut csm = client(&app, TENANT, Role::Csm);
    let e = csm
        .update_feedback_settings(pb::UpdateFeedbackSettingsRequest { settings: Some(Default::default()) })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Another tenant keeps its defaults.
    let mut other = client(&app, "globex", Role::Admin);
    let s = other.get_feedback_settings(pb::GetFeedbackSettingsRequest {}).await.unwrap().into_inner();
    assert_eq!(days(&s, pb::SurveyKind::Nps), 90);
    app.stop().await.unwrap();
}
