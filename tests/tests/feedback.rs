//! The customer's voice, end to end, as `banso up` runs it: an account and
//! its contacts made in Accounts reach Feedback's projection; an NPS
//! campaign invites them; a contact answers on the public path with the
//! invitation's token alone (gRPC, and REST through the gateway, with no
//! bearer token); SurveyAnswered becomes Health's `external:nps` and the
//! account's score, and a detractor's answer opens a risk CTA for the
//! owner through a `survey_answered` playbook.

mod health;

use banso_proto::{accounts as apb, feedback as fpb, health as hpb, playbooks as ppb, types as tpb};
use banso_testkit::{Bearer, TestApp, TestRole as Role, eventually};
use banso_tests::spawn_gateway;
use health::{WAIT, create_account, create_scorecard, health_until, linear, measure, raw};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tonic::{Code, codegen::InterceptedService, transport::Channel};

const TENANT: &str = "acme";

type Surveys = fpb::surveys_service_client::SurveysServiceClient<InterceptedService<Channel, Bearer>>;
type Playbooks = ppb::playbooks_service_client::PlaybooksServiceClient<InterceptedService<Channel, Bearer>>;

fn surveys(app: &TestApp) -> Surveys {
    fpb::surveys_service_client::SurveysServiceClient::with_interceptor(
        app.channel.clone(),
        app.bearer(TENANT, Role::Admin),
    )
}

fn playbooks(app: &TestApp, role: Role) -> Playbooks {
    ppb::playbooks_service_client::PlaybooksServiceClient::with_interceptor(
        app.channel.clone(),
        app.bearer(TENANT, role),
    )
}

/// The public answer path: a client with no bearer token at all.
fn public(app: &TestApp) -> fpb::survey_response_service_client::SurveyResponseServiceClient<Channel> {
    fpb::survey_response_service_client::SurveyResponseServiceClient::new(app.channel.clone())
}

async fn create_contact(app: &TestApp, account: &str, name: &str, email: &str) -> apb::Contact {
    health::accounts(app, TENANT)
        .create_contact(apb::CreateContactRequest {
            contact: Some(apb::Contact {
                account_id: account.into(),
                name: name.into(),
                email: email.into(),
                level: apb::ContactLevel::Manager as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Waits until Playbooks' projection knows the account (TestCondition is
/// NOT_FOUND until then): an answer for an account it does not know fires
/// nothing.
async fn playbooks_know(app: &TestApp, account: &str) {
    let c = playbooks(app, Role::Admin);
    eventually(&format!("playbooks to learn of account {account}"), WAIT, || {
        let mut c = c.clone();
        let req =
            ppb::TestConditionRequest { condition: "true".into(), account_id: account.into(), event_id: String::new() };
        async move {
            match c.test_condition(req).await {
                Ok(_) => Some(()),
                Err(s) if s.code() == Code::NotFound => None,
                Err(s) => panic!("{s:?}"),
            }
        }
    })
    .await
}

/// The detractor playbook of docs/playbooks.md ("Survey answers"), enabled.
async fn detractor_playbook(app: &TestApp) -> ppb::Playbook {
    let mut c = playbooks(app, Role::Admin);
    let p = c
        .create_playbook(ppb::CreatePlaybookRequest {
            playbook: Some(ppb::Playbook {
                display_name: "A detractor answered".into(),
                trigger: Some(ppb::Trigger {
                    kind: Some(ppb::trigger::Kind::Event(ppb::EventTrigger {
                        event_type: "survey_answered".into(),
                        ..Default::default()
                    })),
                }),
                condition: "event.data.nps_category == 'NPS_CATEGORY_DETRACTOR'".into(),
                actions: vec![ppb::Action {
                    touch_models: vec![],
                    kind: Some(ppb::action::Kind::OpenCta(ppb::OpenCtaAction {
                        r#type: ppb::CtaType::Risk as i32,
                        priority: ppb::CtaPriority::High as i32,
                        title_template: "{{account.name}}: a detractor answered".into(),
                        owner: Some(ppb::OwnerRule { rule: Some(ppb::owner_rule::Rule::AccountOwner(true)) }),
                        due_in_days: 2,
                        task_titles: vec!["call the contact back".into()],
                        ..Default::default()
                    })),
                }],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    c.enable_playbook(ppb::EnablePlaybookRequest { id: p.id.clone(), version: 0, etag: p.etag.clone() })
        .await
        .unwrap()
        .into_inner()
}

/// An NPS campaign to `accounts`, once Feedback's projection knows them
/// all (CreateCampaign is NOT_FOUND until then).
async fn campaign_once_known(c: &Surveys, survey: &fpb::Survey, accounts: &[&str]) -> fpb::Campaign {
    eventually("feedback to learn of the accounts", WAIT, || {
        let mut c = c.clone();
        let req = fpb::CreateCampaignRequest {
            campaign: Some(fpb::Campaign {
                survey_id: survey.id.clone(),
                display_name: "Quarterly NPS".into(),
                account_ids: accounts.iter().map(|a| a.to_string()).collect(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        async move {
            match c.create_campaign(req).await {
                Ok(r) => Some(r.into_inner()),
                Err(s) if s.code() == Code::NotFound => None,
                Err(s) => panic!("{s:?}"),
            }
        }
    })
    .await
}

async fn invitations(c: &Surveys, campaign: &str) -> Vec<fpb::Invitation> {
    c.clone()
        .list_invitations(fpb::ListInvitationsRequest { campaign_id: campaign.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .invitations
}

/// A call to the gateway with no Authorization header.
async fn anonymous(
    http: &Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let res = req.send().await.expect("the gateway answers");
    let (status, headers) = (res.status(), res.headers().clone());
    let text = res.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{status}: {json}"
        );
    }
    (status, headers, json)
}

#[tokio::test]
async fn a_detractors_answer_without_a_login_moves_health_and_opens_a_risk_cta() {
    let app = health::spawn().await;
    let gw = spawn_gateway(&app, &[]).await;
    let http = Client::new();

    // Health: a scorecard of the survey measure alone, NPS 0–10 → 0–100 points.
    let admin = health::health(&app, TENANT, Role::Admin);
    let card = create_scorecard(
        &admin,
        hpb::Scorecard {
            name: "Customer voice".into(),
            measures: vec![measure("external:nps", 100.0, linear(0.0, 10.0))],
            ..Default::default()
        },
    )
    .await;
    let p = detractor_playbook(&app).await;

    // Accounts: the account, its two contacts, then a second account: when
    // Feedback knows the second, it knows the contacts made before it
    // (one tenant's events arrive in order).
    let account = create_account(
        &app,
        TENANT,
        apb::Account {
            name: "Acme Corp".into(),
            lifecycle_stage: tpb::LifecycleStage::Adoption as i32,
            touch_model: tpb::TouchModel::High as i32,
            owner_id: "csm-ann".into(),
            ..Default::default()
        },
    )
    .await;
    let ann = create_contact(&app, &account, "Ann Alder", "ann@acme.example").await;
    let ben = create_contact(&app, &account, "Ben Birch", "ben@acme.example").await;
    let later = health::account(&app, TENANT, "Initech", "crm-initech").await;
    playbooks_know(&app, &account).await;

    // Feedback: an NPS survey and a campaign to both accounts.
    let c = surveys(&app);
    let survey = c
        .clone()
        .create_survey(fpb::CreateSurveyRequest {
            survey: Some(fpb::Survey {
                display_name: "Relationship NPS".into(),
                kind: fpb::SurveyKind::Nps as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let campaign = campaign_once_known(&c, &survey, &[&account, &later]).await;
    let counts = campaign.counts.unwrap_or_default();
    assert_eq!((counts.invited, counts.accounts_without_contacts), (2, 1), "{campaign:?}");
    let invited = invitations(&c, &campaign.id).await;
    let token_of = |contact: &apb::Contact| {
        invited.iter().find(|i| i.contact_id == contact.id).unwrap_or_else(|| panic!("{invited:?}")).token.clone()
    };
    let (ann_token, ben_token) = (token_of(&ann), token_of(&ben));
    assert!(invited.iter().all(|i| i.account_id == account), "{invited:?}");

    // Ann answers over gRPC, with no bearer token: 2, a detractor.
    let mut p_client = public(&app);
    let form =
        p_client.get_survey_form(fpb::GetSurveyFormRequest { token: ann_token.clone() }).await.unwrap().into_inner();
    assert_eq!((form.kind, form.scale_min, form.scale_max), (fpb::SurveyKind::Nps as i32, 0, 10));
    let answered = p_client
        .submit_survey_answer(fpb::SubmitSurveyAnswerRequest {
            token: ann_token.clone(),
            score: Some(2),
            comment: "請求書の画面が分かりにくい".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered.nps_category, fpb::NpsCategory::Detractor as i32);
    assert!(!answered.answer_id.is_empty());

    // Health: external:nps is 2 → 20 points, the whole score.
    let h = health_until(&admin, &account, |h| raw(h, "external:nps") == Some(2.0)).await;
    assert_eq!((h.score, h.band), (20.0, hpb::Band::Red as i32), "{h:?}");
    assert_eq!((h.scorecard_id.as_str(), h.scorecard_version), (card.id.as_str(), 1));

    // Playbooks: the owner's risk CTA.
    let csm = playbooks(&app, Role::Csm);
    let cta = eventually("the owner's risk CTA", WAIT, || {
        let mut c = csm.clone();
        let account = account.clone();
        async move {
            let r = c
                .list_calls_to_action(ppb::ListCallsToActionRequest {
                    filter: Some(ppb::CtaFilter { account_id: account, ..Default::default() }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            r.ctas.into_iter().next()
        }
    })
    .await;
    assert_eq!(
        (cta.r#type, cta.owner_id.as_str(), cta.playbook_id.as_str(), cta.title.as_str()),
        (ppb::CtaType::Risk as i32, "csm-ann", p.id.as_str(), "Acme Corp: a detractor answered")
    );

    // Ben answers through the gateway's REST path, with no Authorization
    // header: the form, then the answer (10, a promoter).
    let form_url = format!("{}/v1/public/surveyForms/{ben_token}", gw.url);
    let (s, _, form) = anonymous(&http, reqwest::Method::GET, &form_url, None).await;
    assert_eq!(s, StatusCode::OK, "{form}");
    assert_eq!(
        (&form["kind"], &form["scaleMin"], &form["scaleMax"], &form["language"]),
        (&json!("SURVEY_KIND_NPS"), &json!(0), &json!(10), &json!("en")),
        "{form}"
    );
    assert!(form["question"].as_str().unwrap().contains("recommend"), "{form}");
    let answer_url = format!("{form_url}:answer");
    let (s, _, r) =
        anonymous(&http, reqwest::Method::POST, &answer_url, Some(json!({"score": 10, "comment": "great"}))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["npsCategory"], json!("NPS_CATEGORY_PROMOTER"), "{r}");
    assert!(r["answerId"].as_str().is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()), "{r}");
    // Once: the same token again is 400 TOKEN_USED.
    let (s, _, again) = anonymous(&http, reqwest::Method::POST, &answer_url, Some(json!({"score": 3}))).await;
    assert_eq!((s, &again["code"]), (StatusCode::BAD_REQUEST, &json!("TOKEN_USED")), "{again}");
    // A forged token: 400 naming `token`, saying nothing of any survey; the
    // form likewise.
    for (method, url, body) in [
        (
            reqwest::Method::POST,
            format!("{}/v1/public/surveyForms/forged.token:answer", gw.url),
            Some(json!({"score": 9})),
        ),
        (reqwest::Method::GET, format!("{}/v1/public/surveyForms/forged.token", gw.url), None),
    ] {
        let (s, _, p) = anonymous(&http, method, &url, body).await;
        assert_eq!((s, &p["code"]), (StatusCode::BAD_REQUEST, &json!("INVALID_ARGUMENT")), "{url}: {p}");
        let errors = p["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{p}");
        assert_eq!((&errors[0]["field"], &errors[0]["pointer"]), (&json!("token"), &json!("#/token")), "{p}");
    }
    // Connect (and gRPC-Web) alike: no token, the token's answer.
    let res = http
        .post(format!("{}/banso.feedback.v1.SurveyResponseService/GetSurveyForm", gw.url))
        .header("content-type", "application/json")
        .body(json!({"token": ben_token}).to_string())
        .send()
        .await
        .unwrap();
    let (s, e): (StatusCode, Value) = (res.status(), res.json().await.unwrap());
    assert_eq!((s, &e["code"]), (StatusCode::BAD_REQUEST, &json!("failed_precondition")), "{e}");
    // The rest of Feedback still needs a token over REST.
    let (s, _, p) = anonymous(&http, reqwest::Method::GET, &format!("{}/v1/surveys", gw.url), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{p}");

    // Health: the mean of each contact's latest score, (2 + 10) ÷ 2 = 6.
    let h = health_until(&admin, &account, |h| raw(h, "external:nps") == Some(6.0)).await;
    assert_eq!(h.score, 60.0, "{h:?}");
    // The promoter opened nothing: one firing, one CTA.
    let firings = csm
        .clone()
        .list_firings(ppb::ListFiringsRequest { account_id: account.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .firings;
    assert_eq!(firings.len(), 1, "{firings:?}");
    let got = c.clone().get_campaign(fpb::GetCampaignRequest { id: campaign.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got.counts.unwrap_or_default().answered, 2);
}

/// The answer path takes no token, so the gateway's rate limit keys it by
/// the client's address: answered (never 401), 429 past the burst, and a
/// tenant's own calls keep their own bucket.
#[tokio::test]
async fn the_public_path_is_rate_limited_by_address_not_refused() {
    let app = banso_tests::spawn_all().await;
    let gw = spawn_gateway(&app, &[("BANSO_GATEWAY_RATE_LIMIT", "1"), ("BANSO_GATEWAY_RATE_BURST", "2")]).await;
    let http = Client::new();
    let url = format!("{}/v1/public/surveyForms/not-a-token", gw.url);
    let (s, _, p) = anonymous(&http, reqwest::Method::GET, &url, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "answered without a token: {p}");
    let mut refused = None;
    for _ in 0..6 {
        let (s, h, p) = anonymous(&http, reqwest::Method::GET, &url, None).await;
        match s {
            StatusCode::TOO_MANY_REQUESTS => {
                refused = Some((h, p));
                break;
            }
            StatusCode::BAD_REQUEST => {}
            other => panic!("{other}: {p}"),
        }
    }
    let (h, p) = refused.expect("a call past the burst is refused");
    assert_eq!(p["code"], json!("RATE_LIMITED"));
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let res =
        http.get(format!("{}/v1/surveys", gw.url)).bearer_auth(app.token(TENANT, Role::Admin)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "a tenant's bucket is not the address's");
}
