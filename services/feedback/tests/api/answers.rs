//! The public answer path: the token alone, once, never telling whether a
//! survey exists; SurveyAnswered in the answer's transaction.

use std::time::Duration;

use banso_events::Payload;
use banso_proto::{accounts as apb, events as ev, feedback as pb, playbooks as ppb};
use tonic::Code;

use crate::common::*;

/// A token in the service's format, signed with `secret`, for `invitation`
/// of `tenant`, expiring at `expire` (Unix seconds).
fn sign(secret: &str, tenant: &str, invitation: uuid::Uuid, expire: i64) -> String {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    use hmac::{Hmac, Mac};
    let mut payload = vec![1u8];
    payload.extend_from_slice(invitation.as_bytes());
    payload.extend_from_slice(&expire.to_be_bytes());
    payload.extend_from_slice(tenant.as_bytes());
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(&payload);
    let mac = m.finalize().into_bytes();
    format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(&mac[..16]))
}

async fn one_invitation(app: &banso_testkit::TestApp, s: pb::Survey) -> (pb::Survey, apb::Account, pb::Invitation) {
    let mut c = admin(app);
    let a = account("Alpha", "retail");
    publish_account(app, TENANT, &a).await;
    publish_contact(app, TENANT, &contact(&a, "Ann", apb::ContactLevel::Manager)).await;
    settle(app, TENANT).await;
    let s = create_survey(&mut c, s).await;
    let campaign = create_campaign(&mut c, campaign_to(&s, &[&a])).await;
    let inv = invitations(&mut c, &campaign.id).await.pop().expect("one invitation");
    (s, a, inv)
}

#[tokio::test]
async fn a_token_answers_once_without_a_login_and_publishes_survey_answered() {
    let app = spawn().await;
    let seen = collect(&app, "banso.feedback.survey_answered");
    let (s, a, inv) = one_invitation(
        &app,
        pb::Survey { perception_statement: "works in our shoes".into(), ..survey("NPS", pb::SurveyKind::Nps) },
    )
    .await;
    let mut p = public(&app);
    let form = p.get_survey_form(pb::GetSurveyFormRequest { token: inv.token.clone() }).await.unwrap().into_inner();
    assert_eq!((form.kind, form.scale_min, form.scale_max), (pb::SurveyKind::Nps as i32, 0, 10));
    assert!(form.question.contains("recommend"), "{form:?}");
    assert_eq!(form.perception_statement, "works in our shoes");
    let r = p
        .submit_survey_answer(pb::SubmitSurveyAnswerRequest {
            token: inv.token.clone(),
            score: Some(3),
            comment: "請求書の画面が分かりにくい".into(),
            perception_agreement: Some(2),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.nps_category, pb::NpsCategory::Detractor as i32);
    // Single use: a second answer, and the form, are refused.
    for e in [
        answer(&mut p, &inv.token, Some(10)).await.unwrap_err(),
        p.get_survey_form(pb::GetSurveyFormRequest { token: inv.token.clone() }).await.unwrap_err(),
    ] {
        assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "TOKEN_USED"), "{e:?}");
    }
    let got = until("SurveyAnswered is published", || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().first().cloned() }
    })
    .await;
    let Some(Payload::SurveyAnswered(e)) = got.payload else { panic!("{got:?}") };
    assert_eq!(
        (e.answer_id.as_str(), e.survey_id.as_str(), e.account_id.as_str(), e.contact_id.as_str(), e.score),
        (r.answer_id.as_str(), s.id.as_str(), a.id.as_str(), inv.contact_id.as_str(), Some(3))
    );
    assert_eq!(
        (e.kind, e.nps_category, e.perception_agreement),
        (pb::SurveyKind::Nps as i32, pb::NpsCategory::Detractor as i32, Some(2))
    );
    assert_eq!(e.comment, "請求書の画面が分かりにくい");
    let mut c = admin(&app);
    let listed = invitations(&mut c, &inv.campaign_id).await;
    assert_eq!(listed[0].status, pb::InvitationStatus::Answered as i32);
    assert!(listed[0].deliver_time.is_some(), "an answered invitation was delivered");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(seen.lock().unwrap().len(), 1);
    app.stop().await.unwrap();
}

/// Forged, cut, foreign and unknown tokens all get the same answer, which
/// says nothing about any survey; an expired one of ours says it expired.
#[tokio::test]
async fn bad_tokens_reveal_nothing() {
    let app = spawn().await;
    let (_, _, inv) = one_invitation(&app, survey("CSAT", pb::SurveyKind::Csat)).await;
    let mut p = public(&app);
    let id: uuid::Uuid = inv.id.parse().unwrap();
    let later = chrono::Utc::now().timestamp() + 86_400;
    let invalid = [
        "garbage".to_string(),
        inv.token[..inv.token.len() - 3].to_string(),
        sign("another-secret-another-secret-another-secret", TENANT, id, later),
        // Ours, but of another tenant, or of no invitation at all.
        sign(TOKEN_SECRET, "globex", id, later),
        sign(TOKEN_SECRET, TENANT, uuid::Uuid::now_v7(), later),
    ];
    let mut messages = std::collections::BTreeSet::new();
    for t in &invalid {
        for e in [
            answer(&mut p, t, Some(5)).await.unwrap_err(),
            p.get_survey_form(pb::GetSurveyFormRequest { token: t.clone() }).await.unwrap_err(),
        ] {
            assert_eq!(e.code(), Code::InvalidArgument, "{t}: {e:?}");
            let v = violations(&e);
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].0, "token");
            messages.insert(e.message().to_string());
        }
    }
    assert_eq!(messages.len(), 1, "one message for every bad token: {messages:?}");
    let expired = sign(TOKEN_SECRET, TENANT, id, chrono::Utc::now().timestamp() - 1);
    let e = answer(&mut p, &expired, Some(5)).await.unwrap_err();
    assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "TOKEN_EXPIRED"));
    let e = answer(&mut p, "", Some(5)).await.unwrap_err();
    assert_violation(&e, "token");
    let e = answer(&mut p, &"a".repeat(10_000), Some(5)).await.unwrap_err();
    assert_violation(&e, "token");
    // The invitation itself is still open.
    assert!(answer(&mut p, &inv.token, Some(4)).await.is_ok());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn bad_answers_name_every_field_and_take_nothing() {
    let app = spawn().await;
    let s = pb::Survey {
        questions: vec![
            pb::CustomQuestion {
                text: "rate".into(),
                r#type: pb::QuestionType::Scale as i32,
                required: true,
                ..Default::default()
            },
            pb::CustomQuestion { text: "why".into(), r#type: pb::QuestionType::Text as i32, ..Default::default() },
        ],
        ..survey("CES", pb::SurveyKind::Ces)
    };
    let (_, _, inv) = one_invitation(&app, s).await;
    let mut p = public(&app);
    let bad = pb::SubmitSurveyAnswerRequest {
        token: inv.token.clone(),
        score: Some(8),
        comment: "x".repeat(2001),
        answers: vec![
            pb::QuestionAnswer { question_id: "q2".into(), text: "a\u{0}b".into(), ..Default::default() },
            pb::QuestionAnswer { question_id: "q9".into(), ..Default::default() },
        ],
        perception_agreement: Some(3),
    };
    let e = p.submit_survey_answer(bad).await.unwrap_err();
    let fields: Vec<_> = violations(&e).into_iter().map(|(f, _)| f).collect();
    // The wire's checks first; the survey's checks once the wire's pass.
    assert_eq!(fields, ["comment", "answers[0].text"], "{e:?}");
    let bad = pb::SubmitSurveyAnswerRequest {
        token: inv.token.clone(),
        score: Some(8),
        comment: "あ".repeat(2000),
        answers: vec![pb::QuestionAnswer { question_id: "q9".into(), ..Default::default() }],
        perception_agreement: Some(3),
    };
    let e = p.submit_survey_answer(bad).await.unwrap_err();
    let fields: Vec<_> = violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["score", "perception_agreement", "answers[0].question_id", "answers"], "{e:?}");
    // Nothing was taken: the token still answers, with 2,000 Japanese characters.
    let ok = p
        .submit_survey_answer(pb::SubmitSurveyAnswerRequest {
            token: inv.token.clone(),
            score: Some(7),
            comment: "あ".repeat(2000),
            answers: vec![pb::QuestionAnswer { question_id: "q1".into(), scale: Some(5), ..Default::default() }],
            perception_agreement: None,
        })
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    app.stop().await.unwrap();
}

/// Many answers with one token at once: exactly one is taken.
#[tokio::test]
async fn concurrent_answers_with_one_token_take_one() {
    let app = spawn().await;
    let (_, _, inv) = one_invitation(&app, survey("NPS", pb::SurveyKind::Nps)).await;
    let tries = (0..8).map(|i| {
        let mut p = public(&app);
        let t = inv.token.clone();
        async move { answer(&mut p, &t, Some(i)).await }
    });
    let results = futures::future::join_all(tries).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    }
    let mut c = admin(&app);
    let survey_id = inv_survey(&mut c, &inv).await;
    let r = c
        .get_survey_results(pb::GetSurveyResultsRequest { survey_id, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.total.unwrap().answers, 1);
    app.stop().await.unwrap();
}

async fn inv_survey(c: &mut Client, inv: &pb::Invitation) -> String {
    c.get_campaign(pb::GetCampaignRequest { id: inv.campaign_id.clone() }).await.unwrap().into_inner().survey_id
}

/// The outcome question names what the account's success plan aims at;
/// without a plan, what the survey names.
#[tokio::test]
async fn the_outcome_question_names_the_success_plans_objective() {
    let app = spawn().await;
    let (_, a, inv) =
        one_invitation(&app, pb::Survey { language: "ja".into(), ..survey("成果", pb::SurveyKind::Outcome) }).await;
    let mut p = public(&app);
    let form = p.get_survey_form(pb::GetSurveyFormRequest { token: inv.token.clone() }).await.unwrap().into_inner();
    assert_eq!(form.outcome, "製品を導入した目的の成果");
    publish(
        &app,
        TENANT,
        "playbooks",
        Payload::PlanCreated(ev::PlanCreated {
            plan: Some(ppb::SuccessPlan {
                id: uuid::Uuid::now_v7().to_string(),
                account_id: a.id.clone(),
                objectives: vec!["月次決算を3日短縮".into()],
                ..Default::default()
            }),
        }),
    )
    .await;
    let form = until("the plan's objective reaches the form", || {
        let mut p = p.clone();
        let t = inv.token.clone();
        async move {
            let f = p.get_survey_form(pb::GetSurveyFormRequest { token: t }).await.unwrap().into_inner();
            (f.outcome == "月次決算を3日短縮").then_some(f)
        }
    })
    .await;
    assert_eq!(form.question, "月次決算を3日短縮を達成できましたか？");
    assert_eq!((form.scale_min, form.scale_max), (1, 5));
    app.stop().await.unwrap();
}

/// A burst of answers over many invitations of two tenants, as a campaign's
/// e-mail brings them (they share group-commit rounds): each caller gets its
/// own outcome — taken with its category, refused as used (the second of a
/// pair with one token), refused for its score — and what was taken is
/// stored once, published once and its comment made an item once, while a
/// refused answer takes nothing (its invitation can still be answered).
#[tokio::test]
async fn a_burst_of_answers_gets_each_its_own_outcome() {
    let app = spawn().await;
    let seen = collect(&app, "banso.feedback.survey_answered");
    let other = "globex";
    let mut per_tenant = Vec::new();
    for (tenant, accounts) in [(TENANT, 6), (other, 2)] {
        let mut c = client(&app, tenant, Role::Admin);
        let mut targets = Vec::new();
        for n in 0..accounts {
            let a = account(&format!("{tenant} {n}"), "retail");
            publish_account(&app, tenant, &a).await;
            for k in 0..5 {
                publish_contact(
                    &app,
                    tenant,
                    &contact(&a, &format!("{tenant} {n} person {k}"), apb::ContactLevel::Manager),
                )
                .await;
            }
            targets.push(a);
        }
        settle(&app, tenant).await;
        let s = create_survey(&mut c, survey("NPS", pb::SurveyKind::Nps)).await;
        let campaign = create_campaign(&mut c, campaign_to(&s, &targets.iter().collect::<Vec<_>>())).await;
        let invs = invitations(&mut c, &campaign.id).await;
        assert_eq!(invs.len(), accounts * 5);
        per_tenant.push((tenant, s, invs));
    }

    // (tenant, token, score, comment, what it should get)
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Expect {
        Taken,
        UsedOrTaken,
        BadScore,
    }
    let mut calls = Vec::new();
    for (tenant, _, invs) in &per_tenant {
        for (i, inv) in invs.iter().enumerate() {
            let score = (i % 11) as i32;
            let comment = if i % 3 == 0 {
                format!("{tenant}: 請求書の画面が分かりにくい ({i})")
            } else {
                String::new()
            };
            match i % 10 {
                // Two answers with one token: one is taken.
                4 => {
                    calls.push((*tenant, inv.token.clone(), score, comment.clone(), Expect::UsedOrTaken));
                    calls.push((*tenant, inv.token.clone(), score, comment, Expect::UsedOrTaken));
                }
                7 => calls.push((*tenant, inv.token.clone(), 11, comment, Expect::BadScore)),
                _ => calls.push((*tenant, inv.token.clone(), score, comment, Expect::Taken)),
            }
        }
    }
    let outcomes = futures::future::join_all(calls.iter().map(|(_, token, score, comment, _)| {
        let mut p = public(&app);
        let req = pb::SubmitSurveyAnswerRequest {
            token: token.clone(),
            score: Some(*score),
            comment: comment.clone(),
            ..Default::default()
        };
        async move { p.submit_survey_answer(req).await.map(|r| r.into_inner()) }
    }))
    .await;

    let mut taken: std::collections::HashMap<&str, (usize, usize)> = Default::default();
    let mut pairs: std::collections::HashMap<&str, usize> = Default::default();
    for ((tenant, token, score, comment, expect), outcome) in calls.iter().zip(&outcomes) {
        match (expect, outcome) {
            (Expect::Taken | Expect::UsedOrTaken, Ok(r)) => {
                let category = match score {
                    0..=6 => pb::NpsCategory::Detractor,
                    7..=8 => pb::NpsCategory::Passive,
                    _ => pb::NpsCategory::Promoter,
                };
                assert_eq!(r.nps_category, category as i32, "{score}");
                let t = taken.entry(tenant).or_default();
                t.0 += 1;
                t.1 += usize::from(!comment.is_empty());
                if *expect == Expect::UsedOrTaken {
                    *pairs.entry(token.as_str()).or_default() += 1;
                }
            }
            (Expect::UsedOrTaken, Err(e)) => {
                assert_eq!((e.code(), reason(e).as_str()), (Code::FailedPrecondition, "TOKEN_USED"), "{e:?}");
                pairs.entry(token.as_str()).or_default();
            }
            (Expect::BadScore, Err(e)) => {
                assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
                assert_violation(e, "score");
            }
            (expect, outcome) => panic!("{tenant} {score}: expected {expect:?}, got {outcome:?}"),
        }
    }
    assert!(pairs.values().all(|n| *n == 1), "a token was taken other than once: {pairs:?}");

    for (tenant, s, _) in &per_tenant {
        let mut c = client(&app, tenant, Role::Admin);
        let r = c
            .get_survey_results(pb::GetSurveyResultsRequest { survey_id: s.id.clone(), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.total.unwrap().answers as usize, taken[tenant].0, "{tenant}");
        let mut v = voice_as(&app, tenant, Role::Admin);
        let items = v
            .list_feedback_items(pb::ListFeedbackItemsRequest { page_size: 1000, ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .items;
        assert_eq!(items.len(), taken[tenant].1, "{tenant}: one item a taken comment");
        assert!(items.iter().all(|i| i.text.starts_with(&format!("{tenant}:"))), "{tenant}: another tenant's item");
    }
    let all: usize = taken.values().map(|t| t.0).sum();
    until("every SurveyAnswered is published", || {
        let n = seen.lock().unwrap().len();
        async move { (n >= all).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(seen.lock().unwrap().len(), all, "one SurveyAnswered a taken answer");

    // A refused answer took nothing: its invitation answers now.
    let (tenant, token) = calls.iter().find(|c| c.4 == Expect::BadScore).map(|c| (c.0, c.1.clone())).unwrap();
    let mut p = public(&app);
    answer(&mut p, &token, Some(9)).await.unwrap_or_else(|e| panic!("{tenant}: {e:?}"));
    app.stop().await.unwrap();
}

/// ListSurveyAnswers reads the answers back one by one, newest first —
/// score, category, comment, the custom questions' answers, perception —
/// filtered by campaign, account, time and comment, paged; bad input is
/// every field at once, and another tenant's survey or campaign is
/// NOT_FOUND.
#[tokio::test]
async fn answers_are_read_back_one_by_one() {
    let app = spawn().await;
    let mut c = admin(&app);
    let (a, ann) = account_with_contacts(&app, "Alpha", "retail", 2).await;
    let (b, bob) = account_with_contacts(&app, "Beta", "retail", 1).await;
    settle(&app, TENANT).await;
    let s = create_survey(
        &mut c,
        pb::Survey {
            perception_statement: "works in our shoes".into(),
            questions: vec![pb::CustomQuestion {
                text: "why".into(),
                r#type: pb::QuestionType::Text as i32,
                ..Default::default()
            }],
            ..survey("NPS", pb::SurveyKind::Nps)
        },
    )
    .await;
    let first = create_campaign(&mut c, campaign_to(&s, &[&a])).await;
    let second = create_campaign(&mut c, campaign_to(&s, &[&b])).await;
    let (t1, t2) = (tokens(&mut c, &first.id).await, tokens(&mut c, &second.id).await);
    let mut p = public(&app);
    let submit = |token: &str, score: i32, comment: &str| pb::SubmitSurveyAnswerRequest {
        token: token.into(),
        score: Some(score),
        comment: comment.into(),
        answers: vec![pb::QuestionAnswer {
            question_id: "q1".into(),
            text: format!("because {score}"),
            ..Default::default()
        }],
        perception_agreement: Some(4),
    };
    let mut ids = Vec::new();
    for (token, score, comment) in [
        (&t1[&ann[0].id].token, 3, "請求書が分かりにくい"),
        (&t1[&ann[1].id].token, 9, ""),
        (&t2[&bob[0].id].token, 7, "fine"),
    ] {
        ids.push(p.submit_survey_answer(submit(token, score, comment)).await.unwrap().into_inner().answer_id);
    }
    let list = async |c: &mut Client, r: pb::ListSurveyAnswersRequest| {
        c.list_survey_answers(pb::ListSurveyAnswersRequest { survey_id: s.id.clone(), ..r })
            .await
            .map(|x| x.into_inner())
    };
    let all = list(&mut c, Default::default()).await.unwrap();
    assert_eq!(all.answers.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), [&ids[2], &ids[1], &ids[0]]);
    let oldest = &all.answers[2];
    assert_eq!(
        (
            oldest.account_id.as_str(),
            oldest.contact_id.as_str(),
            oldest.campaign_id.as_str(),
            oldest.survey_id.as_str()
        ),
        (a.id.as_str(), ann[0].id.as_str(), first.id.as_str(), s.id.as_str())
    );
    assert_eq!(oldest.invitation_id, t1[&ann[0].id].id);
    assert_eq!(
        (oldest.kind, oldest.score, oldest.nps_category),
        (pb::SurveyKind::Nps as i32, Some(3), pb::NpsCategory::Detractor as i32)
    );
    assert_eq!((oldest.comment.as_str(), oldest.perception_agreement), ("請求書が分かりにくい", Some(4)));
    assert_eq!(oldest.answers.len(), 1);
    assert_eq!((oldest.answers[0].question_id.as_str(), oldest.answers[0].text.as_str()), ("q1", "because 3"));
    assert!(oldest.answer_time.is_some());
    assert_eq!(all.answers[1].nps_category, pb::NpsCategory::Promoter as i32);

    // Filters.
    let ids_of = |r: pb::ListSurveyAnswersResponse| r.answers.into_iter().map(|x| x.id).collect::<Vec<_>>();
    let by_campaign =
        list(&mut c, pb::ListSurveyAnswersRequest { campaign_id: second.id.clone(), ..Default::default() });
    assert_eq!(ids_of(by_campaign.await.unwrap()), [ids[2].clone()]);
    let by_account = list(&mut c, pb::ListSurveyAnswersRequest { account_id: a.id.clone(), ..Default::default() });
    assert_eq!(ids_of(by_account.await.unwrap()), [ids[1].clone(), ids[0].clone()]);
    let commented = list(&mut c, pb::ListSurveyAnswersRequest { with_comment: true, ..Default::default() });
    assert_eq!(ids_of(commented.await.unwrap()), [ids[2].clone(), ids[0].clone()]);
    let future = pbjson_types::Timestamp { seconds: chrono::Utc::now().timestamp() + 3600, nanos: 0 };
    let later = list(&mut c, pb::ListSurveyAnswersRequest { start_time: Some(future), ..Default::default() });
    assert!(later.await.unwrap().answers.is_empty());

    // Pages of one, newest first, to the end.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(&mut c, pb::ListSurveyAnswersRequest { page_size: 1, page_token: token, ..Default::default() })
            .await
            .unwrap();
        seen.extend(page.answers.into_iter().map(|x| x.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, [ids[2].clone(), ids[1].clone(), ids[0].clone()]);

    // Any role reads them.
    let mut viewer = client(&app, TENANT, Role::Viewer);
    assert_eq!(list(&mut viewer, Default::default()).await.unwrap().answers.len(), 3);

    // Bad input: every field at once.
    let e = c
        .list_survey_answers(pb::ListSurveyAnswersRequest {
            survey_id: "nope".into(),
            campaign_id: "x".into(),
            account_id: "y".into(),
            start_time: Some(pbjson_types::Timestamp { seconds: 2_000_000_000, nanos: 0 }),
            end_time: Some(pbjson_types::Timestamp { seconds: 1_000_000_000, nanos: 0 }),
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let fields: Vec<String> = violations(&e).into_iter().map(|(f, _)| f).collect();
    for f in ["survey_id", "campaign_id", "account_id", "end_time", "page_size"] {
        assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
    }
    // A campaign of another survey, and another tenant's survey or
    // campaign, are not found.
    let other = create_survey(&mut c, survey("CSAT", pb::SurveyKind::Csat)).await;
    let e = c
        .list_survey_answers(pb::ListSurveyAnswersRequest {
            survey_id: other.id.clone(),
            campaign_id: first.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let mut globex = client(&app, "globex", Role::Admin);
    assert_eq!(list(&mut globex, Default::default()).await.unwrap_err().code(), Code::NotFound);
    app.stop().await.unwrap();
}
