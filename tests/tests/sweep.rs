//! The generated sweep over every RPC (issue #10, "Done when"): every
//! method of every service `banso up` serves, found through reflection and
//! the descriptor set, gets hostile input built from its request's
//! descriptor — an empty request; a valid one (the caller's own seeded
//! objects); then one field at a time, nested, in lists and in maps:
//! 100,000-character strings (ASCII and Japanese), a NUL character, deep
//! nesting; extreme integers, floats, timestamps and dates; unknown enum
//! values; update masks of 51 long unknown paths; garbage page tokens and
//! another method's or tenant's; another tenant's ids in every id field —
//! with an admin token, then a viewer token, then none. Client-streaming
//! methods get each message alone and in streams of several.
//!
//! Every answer must be: not INTERNAL or UNKNOWN (a handler panic is
//! INTERNAL reason PANIC, so no panic either), not a hang or a dropped
//! connection, an error status under 8 KiB on the wire, never another
//! tenant's data, another tenant's id answered as an id that exists nowhere,
//! no write accepted from a viewer and nothing without a token but UNAUTHENTICATED
//! — except on the public survey answer path (banso-kit's
//! `PUBLIC_SERVICES`), which must reach its handler without one and never
//! asks for one; the server
//! must be SERVING at the end, and tenant acme's view (every read method,
//! by every id) must be what it was before tenant globex's calls. Every
//! failure is collected and reported at once (and written to the file named
//! by `BANSO_SWEEP_REPORT`, if set).
//!
//! Not sent: bytes that are not a valid message of the request type (e.g.
//! invalid UTF-8 in a string field). gRPC's status code table makes "error
//! parsing request proto" INTERNAL, and tonic's codec follows it.
//!
//! Nothing here names a method: the only hand-written part is the seed
//! (a few valid resources per tenant), which a new service may extend to
//! reach deeper, but need not.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    fmt::Write as _,
    sync::Arc,
    time::{Duration, Instant},
};

use banso_proto::{accounts as apb, feedback as fpb, health as hpb, playbooks as ppb, types as tpb};
use banso_testkit::{TestApp, TestRole as Role};
use banso_tests::{
    raw,
    sweep::{self, Gen, Leaf, Objects},
};
use bytes::Bytes;
use futures::StreamExt as _;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MethodDescriptor, Value};
use tonic::{Code, Status};

/// The tenant whose data must stay out of reach.
const VICTIM: &str = "acme";
/// The tenant that sends everything.
const CALLER: &str = "globex";
/// In every text the seed writes, so a reply that carries any of it is seen.
const MARK: &str = "-private-";
/// An error status must stay under this on the wire (grpc-core refuses 16 KiB).
const MAX_STATUS_BYTES: usize = 8 * 1024;
/// Calls in flight at once.
const CONCURRENCY: usize = 8;
/// Messages per stream in the "several" streams of client-streaming methods.
const STREAM_GROUP: usize = 8;
const CALL_TIMEOUT: Duration = Duration::from_secs(45);
/// No single call may take longer: work per request is bounded whatever
/// the input (the valid calls take milliseconds here).
const SLOW_CALL: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- seeding

/// A tenant's seeded resources: every object seen, and its page tokens.
struct Tenant {
    name: &'static str,
    objects: Objects,
    /// `next_page_token`s the tenant got, by method path.
    page_tokens: Vec<(String, String)>,
}

struct Seeder<'a> {
    app: &'a TestApp,
    pool: &'a DescriptorPool,
    token: String,
    objects: Objects,
}

impl Seeder<'_> {
    /// Calls `method` (`<package>.<Service>/<Method>`) with typed messages,
    /// recording the requests and the reply as dynamic messages.
    async fn call<Req: prost::Message, Resp: prost::Message + Default>(
        &mut self,
        method: &str,
        reqs: Vec<Req>,
    ) -> Resp {
        let m = method_by_path(self.pool, method);
        let bytes: Vec<Bytes> = reqs.iter().map(|r| Bytes::from(r.encode_to_vec())).collect();
        for b in &bytes {
            self.objects.record(&DynamicMessage::decode(m.input(), b.clone()).expect("request decodes"));
        }
        let reply = raw::call(&self.app.channel, &m, bytes, Some(&self.token), CALL_TIMEOUT)
            .await
            .unwrap_or_else(|s| panic!("seed call {method} failed: {s:?}"));
        let reply = reply.into_iter().next().expect("one reply");
        self.objects.record(&DynamicMessage::decode(m.output(), reply.clone()).expect("reply decodes"));
        Resp::decode(reply).expect("reply decodes")
    }

    /// As [`Seeder::call`], but its request is not a base for the sweep
    /// (it would not be valid a second time).
    async fn setup<Req: prost::Message, Resp: prost::Message + Default>(&mut self, method: &str, req: Req) -> Resp {
        let reply = self.try_call(method, Bytes::from(req.encode_to_vec())).await;
        let reply = reply.unwrap_or_else(|s| panic!("seed call {method} failed: {s:?}"));
        let m = method_by_path(self.pool, method);
        self.objects.record(&DynamicMessage::decode(m.output(), reply.clone()).expect("reply decodes"));
        Resp::decode(reply).expect("reply decodes")
    }

    async fn try_call(&self, method: &str, req: Bytes) -> Result<Bytes, Status> {
        let m = method_by_path(self.pool, method);
        raw::call(&self.app.channel, &m, vec![req], Some(&self.token), CALL_TIMEOUT).await.map(|r| r[0].clone())
    }
}

fn method_by_path(pool: &DescriptorPool, path: &str) -> MethodDescriptor {
    let (svc, method) = path.rsplit_once('/').expect("Service/Method");
    let svc = pool.get_service_by_name(svc).unwrap_or_else(|| panic!("no service {svc}"));
    svc.methods().find(|m| m.name() == method).unwrap_or_else(|| panic!("no method {path}"))
}

const ACCOUNTS: &str = "banso.accounts.v1.AccountsService";
const HEALTH: &str = "banso.health.v1.HealthService";
const PLAYBOOKS: &str = "banso.playbooks.v1.PlaybooksService";
const SURVEYS: &str = "banso.feedback.v1.SurveysService";
const RESPONSES: &str = "banso.feedback.v1.SurveyResponseService";

fn date(year: i32, month: i32, day: i32) -> Option<tpb::Date> {
    Some(tpb::Date { year, month, day })
}

fn usd(amount_minor: i64) -> Option<tpb::Money> {
    Some(tpb::Money { currency_code: "USD".into(), amount_minor })
}

/// The minimum resources of each kind, two where a list can page.
async fn seed(app: &TestApp, pool: &DescriptorPool, tenant: &'static str) -> Tenant {
    let mut s = Seeder { app, pool, token: app.token(tenant, Role::Admin), objects: Objects::default() };
    let t = tenant;
    let mut accounts = Vec::new();
    for (i, stage, touch) in [
        (1, apb::LifecycleStage::Adoption, apb::TouchModel::Tech),
        (2, apb::LifecycleStage::Onboarding, apb::TouchModel::High),
    ] {
        let a: apb::Account = s
            .call(
                &format!("{ACCOUNTS}/CreateAccount"),
                vec![apb::CreateAccountRequest {
                    account: Some(apb::Account {
                        name: format!("{t}{MARK}account {i}"),
                        external_id: format!("{t}-ext-{i}"),
                        industry: "software".into(),
                        region: "EMEA".into(),
                        plan_tier: "pro".into(),
                        revenue_band: "10m-50m".into(),
                        employee_count: Some(120),
                        lifecycle_stage: stage as i32,
                        touch_model: touch as i32,
                        owner_id: format!("{t}-owner"),
                        arr: usd(1_200_000),
                        contract_start_date: date(2025, 7, 1),
                        renewal_date: date(2026, 6, 30),
                        tags: vec!["vip".into()],
                        custom_attributes: [(
                            "tier".to_owned(),
                            tpb::AttributeValue { kind: Some(tpb::attribute_value::Kind::StringValue("gold".into())) },
                        )]
                        .into(),
                        ..Default::default()
                    }),
                    request_id: format!("{t}-create-{i}"),
                }],
            )
            .await;
        accounts.push(a.id);
    }
    let _: apb::ImportAccountsResponse = s
        .call(
            &format!("{ACCOUNTS}/ImportAccounts"),
            vec![apb::ImportAccountsRequest {
                accounts: vec![apb::Account {
                    name: format!("{t}{MARK}imported"),
                    external_id: format!("{t}-ext-3"),
                    ..Default::default()
                }],
            }],
        )
        .await;
    let mut contacts = Vec::new();
    for i in 1..=2 {
        let c: apb::Contact = s
            .call(
                &format!("{ACCOUNTS}/CreateContact"),
                vec![apb::CreateContactRequest {
                    contact: Some(apb::Contact {
                        account_id: accounts[0].clone(),
                        name: format!("{t}{MARK}contact {i}"),
                        email: format!("c{i}@{t}.example"),
                        title: "CTO".into(),
                        department: "engineering".into(),
                        level: apb::ContactLevel::Executive as i32,
                        champion: true,
                        decision_maker: true,
                        external_id: format!("{t}-contact-{i}"),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                }],
            )
            .await;
        contacts.push(c.id);
    }
    let _: apb::ImportContactsResponse = s
        .call(
            &format!("{ACCOUNTS}/ImportContacts"),
            vec![apb::ImportContactsRequest {
                rows: vec![apb::ContactImportRow {
                    contact: Some(apb::Contact {
                        name: format!("{t}{MARK}imported contact"),
                        email: format!("c3@{t}.example"),
                        external_id: format!("{t}-contact-3"),
                        ..Default::default()
                    }),
                    account_external_id: format!("{t}-ext-1"),
                }],
            }],
        )
        .await;
    let _: apb::Activity = s
        .call(
            &format!("{ACCOUNTS}/LogActivity"),
            vec![apb::LogActivityRequest {
                activity: Some(apb::Activity {
                    account_id: accounts[0].clone(),
                    kind: apb::ActivityKind::EmailSent as i32,
                    contact_ids: vec![contacts[0].clone()],
                    author_id: format!("{t}-author"),
                    occur_time: Some(banso_kit::wire::timestamp(chrono::Utc::now() - chrono::Duration::hours(1))),
                    subject: format!("{t}{MARK}subject"),
                    body: format!("{t}{MARK}body"),
                    external_ref: format!("{t}-ref"),
                    ..Default::default()
                }),
                request_id: String::new(),
            }],
        )
        .await;
    // A contract, then a renewal: a renewal can be recorded again, so it
    // is the base the sweep varies.
    let contract =
        |kind: apb::ContractEventKind, from: (i32, i32, i32), to: (i32, i32, i32)| apb::RecordContractEventRequest {
            contract_event: Some(apb::ContractEvent {
                account_id: accounts[0].clone(),
                kind: kind as i32,
                arr_after: usd(1_200_000),
                effective_date: date(from.0, from.1, from.2),
                term_end: date(to.0, to.1, to.2),
                reason_code: "signed".into(),
                note: format!("{t}{MARK}note"),
                ..Default::default()
            }),
            request_id: String::new(),
        };
    let _: apb::RecordContractEventResponse = s
        .setup(
            &format!("{ACCOUNTS}/RecordContractEvent"),
            contract(apb::ContractEventKind::New, (2025, 7, 1), (2026, 6, 30)),
        )
        .await;
    let _: apb::RecordContractEventResponse = s
        .call(
            &format!("{ACCOUNTS}/RecordContractEvent"),
            vec![contract(apb::ContractEventKind::Renewal, (2026, 6, 30), (2027, 6, 30))],
        )
        .await;
    let mut segments = Vec::new();
    for i in 1..=2 {
        let seg: apb::Segment = s
            .call(
                &format!("{ACCOUNTS}/CreateSegment"),
                vec![apb::CreateSegmentRequest {
                    segment: Some(apb::Segment {
                        display_name: format!("{t}{MARK}segment {i}"),
                        description: format!("{t}{MARK}description"),
                        expression: "'vip' in account.tags".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                }],
            )
            .await;
        segments.push(seg.id);
    }
    let _: apb::TenantSettings =
        s.call(&format!("{ACCOUNTS}/GetTenantSettings"), vec![apb::GetTenantSettingsRequest {}]).await;
    let _: apb::RetentionMetrics = s
        .call(
            &format!("{ACCOUNTS}/GetRetentionMetrics"),
            vec![apb::GetRetentionMetricsRequest {
                period: Some(apb::get_retention_metrics_request::Period::Month(apb::YearMonth {
                    year: 2025,
                    month: 7,
                })),
                ..Default::default()
            }],
        )
        .await;

    // Health learns of accounts through events: wait until it knows them.
    for id in &accounts {
        let probe = hpb::SetMeasureValueRequest {
            account_id: id.clone(),
            measure: "probe".into(),
            value: None,
            observe_time: None,
        };
        let probe = Bytes::from(probe.encode_to_vec());
        let s = &s;
        banso_testkit::eventually(&format!("health knows account {id} of {t}"), Duration::from_secs(30), || {
            let probe = probe.clone();
            async move {
                match s.try_call(&format!("{HEALTH}/SetMeasureValue"), probe).await {
                    Ok(_) => Some(()),
                    Err(st) if st.code() == Code::NotFound => None,
                    Err(st) => panic!("probe failed: {st:?}"),
                }
            }
        })
        .await;
    }
    let linear = |min, max| hpb::Normalisation {
        kind: Some(hpb::normalisation::Kind::Linear(hpb::normalisation::Linear { min, max })),
    };
    let _: hpb::Scorecard = s
        .call(
            &format!("{HEALTH}/CreateScorecard"),
            vec![hpb::CreateScorecardRequest {
                scorecard: Some(hpb::Scorecard {
                    name: format!("{t}{MARK}scorecard"),
                    measures: vec![
                        hpb::WeightedMeasure {
                            measure: "active_users_30d".into(),
                            weight: 1.0,
                            normalisation: Some(linear(0.0, 10.0)),
                            ..Default::default()
                        },
                        hpb::WeightedMeasure {
                            measure: "external:nps".into(),
                            weight: 1.0,
                            normalisation: Some(linear(0.0, 10.0)),
                            missing: hpb::MissingData::SkipAndReweight as i32,
                            ..Default::default()
                        },
                    ],
                    bands: Some(hpb::Bands { yellow_from: 40.0, green_from: 70.0 }),
                    ..Default::default()
                }),
                request_id: String::new(),
            }],
        )
        .await;
    let _: hpb::Scorecard = s
        .call(
            &format!("{HEALTH}/CreateScorecard"),
            vec![hpb::CreateScorecardRequest {
                scorecard: Some(hpb::Scorecard {
                    name: format!("{t}{MARK}segment scorecard"),
                    scope: Some(hpb::Scope { kind: Some(hpb::scope::Kind::SegmentId(segments[0].clone())) }),
                    measures: vec![hpb::WeightedMeasure {
                        measure: "external:nps".into(),
                        weight: 1.0,
                        normalisation: Some(hpb::Normalisation {
                            kind: Some(hpb::normalisation::Kind::Thresholds(hpb::normalisation::Thresholds {
                                thresholds: vec![
                                    hpb::normalisation::Threshold { at: 0.0, points: 0.0 },
                                    hpb::normalisation::Threshold { at: 7.0, points: 100.0 },
                                ],
                            })),
                        }),
                        direction: hpb::Direction::HigherIsBetter as i32,
                        missing: hpb::MissingData::CountAsZero as i32,
                    }],
                    ..Default::default()
                }),
                request_id: String::new(),
            }],
        )
        .await;
    let _: hpb::SetMeasureValueResponse = s
        .call(
            &format!("{HEALTH}/SetMeasureValue"),
            vec![hpb::SetMeasureValueRequest {
                account_id: accounts[0].clone(),
                measure: "nps".into(),
                value: Some(8.0),
                observe_time: Some(banso_kit::wire::timestamp(chrono::Utc::now())),
            }],
        )
        .await;
    let event = |i: usize, account: &str| hpb::UsageEvent {
        event_id: format!("{t}-event-{i}"),
        account_id: account.to_owned(),
        user_id: format!("{t}-user-{i}"),
        event_name: "report_exported".into(),
        timestamp: Some(banso_kit::wire::timestamp(chrono::Utc::now() - chrono::Duration::minutes(5))),
        quantity: Some(1.0),
        duration_seconds: Some(3.0),
        properties: [("plan".to_owned(), "pro".to_owned())].into(),
        ..Default::default()
    };
    let _: hpb::IngestUsageResponse = s
        .call(
            &format!("{HEALTH}/BatchIngestUsage"),
            vec![hpb::BatchIngestUsageRequest { events: vec![event(1, &accounts[0])] }],
        )
        .await;
    let _: hpb::IngestUsageResponse = s
        .call(&format!("{HEALTH}/IngestUsage"), vec![hpb::IngestUsageRequest { events: vec![event(2, &accounts[1])] }])
        .await;
    let job: hpb::RecomputeJob = s
        .call(
            &format!("{HEALTH}/StartRecompute"),
            vec![hpb::StartRecomputeRequest { request_id: format!("{t}-recompute") }],
        )
        .await;
    let get_job = Bytes::from(hpb::GetRecomputeJobRequest { id: job.id.clone() }.encode_to_vec());
    let s_ref = &s;
    banso_testkit::eventually(&format!("recompute job of {t} ends"), Duration::from_secs(60), || {
        let get_job = get_job.clone();
        async move {
            let reply = s_ref.try_call(&format!("{HEALTH}/GetRecomputeJob"), get_job).await.expect("job");
            let job = hpb::RecomputeJob::decode(reply).expect("decodes");
            (job.state >= hpb::recompute_job::State::Succeeded as i32).then_some(())
        }
    })
    .await;
    // Scores are made in the background: wait until the scored account shows.
    let get_health = Bytes::from(hpb::GetAccountHealthRequest { account_id: accounts[0].clone() }.encode_to_vec());
    let health = banso_testkit::eventually(&format!("account health of {t}"), Duration::from_secs(30), || {
        let get_health = get_health.clone();
        async move { s_ref.try_call(&format!("{HEALTH}/GetAccountHealth"), get_health).await.ok() }
    })
    .await;
    let m = method_by_path(pool, &format!("{HEALTH}/GetAccountHealth"));
    s.objects.record(&DynamicMessage::decode(m.output(), health).expect("decodes"));
    seed_playbooks(&mut s, t, &accounts).await;
    seed_feedback(&mut s, t, &accounts, &segments).await;
    Tenant { name: tenant, objects: s.objects, page_tokens: Vec::new() }
}

/// Two playbooks (one live), a CTA by hand and one a playbook opened.
async fn seed_playbooks(s: &mut Seeder<'_>, t: &str, accounts: &[String]) {
    let red = |name: String| ppb::Playbook {
        display_name: name,
        description: format!("{t}{MARK}playbook"),
        trigger: Some(ppb::Trigger {
            kind: Some(ppb::trigger::Kind::Event(ppb::EventTrigger {
                event_type: "health_score_changed".into(),
                score_fell_by: Some(1.0),
                ..Default::default()
            })),
        }),
        condition: "account.arr > 0 && health.score != null".into(),
        audience: Some(ppb::Audience {
            lifecycle_stages: vec![tpb::LifecycleStage::Adoption as i32],
            ..Default::default()
        }),
        actions: vec![ppb::Action {
            touch_models: vec![tpb::TouchModel::Tech as i32],
            kind: Some(ppb::action::Kind::OpenCta(ppb::OpenCtaAction {
                r#type: ppb::CtaType::Risk as i32,
                priority: ppb::CtaPriority::High as i32,
                title_template: format!("{t}{MARK}{{{{account.name}}}}"),
                task_titles: vec!["call".into()],
                ..Default::default()
            })),
        }],
        cooldown: Some(pbjson_types::Duration { seconds: 3600, nanos: 0 }),
        enrolment_limit: Some(ppb::EnrolmentLimit {
            limit: Some(ppb::enrolment_limit::Limit::Rolling(ppb::RollingLimit { times: 2, days: 7 })),
        }),
        ..Default::default()
    };
    let mut ids = Vec::new();
    for i in 1..=2 {
        let p: ppb::Playbook = s
            .call(
                &format!("{PLAYBOOKS}/CreatePlaybook"),
                vec![ppb::CreatePlaybookRequest {
                    playbook: Some(red(format!("{t}{MARK}playbook {i}"))),
                    request_id: format!("{t}-pb-{i}"),
                }],
            )
            .await;
        ids.push((p.id, p.etag));
    }
    let (id, etag) = ids[0].clone();
    let _: ppb::Playbook = s
        .setup(&format!("{PLAYBOOKS}/EnablePlaybook"), ppb::EnablePlaybookRequest { id: id.clone(), version: 0, etag })
        .await;
    // The projection learns of the accounts from Accounts' events.
    let create = ppb::CreateCallToActionRequest {
        cta: Some(ppb::CallToAction {
            account_id: accounts[0].clone(),
            r#type: ppb::CtaType::Opportunity as i32,
            priority: ppb::CtaPriority::Medium as i32,
            title: format!("{t}{MARK}cta"),
            owner_id: format!("{t}-owner"),
            due_date: date(2030, 1, 1),
            tasks: vec![ppb::CtaTask { title: "first".into(), ..Default::default() }],
            ..Default::default()
        }),
        request_id: format!("{t}-cta-1"),
    };
    let bytes = Bytes::from(create.encode_to_vec());
    let s_ref = &*s;
    banso_testkit::eventually(&format!("playbooks of {t} to know the accounts"), Duration::from_secs(30), || {
        let bytes = bytes.clone();
        async move { s_ref.try_call(&format!("{PLAYBOOKS}/CreateCallToAction"), bytes).await.ok() }
    })
    .await;
    let _: ppb::CallToAction = s.call(&format!("{PLAYBOOKS}/CreateCallToAction"), vec![create]).await;
    let _: ppb::RunPlaybookResponse = s
        .setup(
            &format!("{PLAYBOOKS}/RunPlaybook"),
            ppb::RunPlaybookRequest { id, account_ids: accounts.to_vec(), request_id: format!("{t}-run") },
        )
        .await;
}

/// Two surveys, a campaign with its invitations (one delivered, one
/// answered), a prediction, an account team's answer; and the public
/// path's bases: a form read by a token, and an answer with a token not
/// yet used (the first valid call of the sweep takes it).
async fn seed_feedback(s: &mut Seeder<'_>, t: &str, accounts: &[String], segments: &[String]) {
    let nps: fpb::Survey = s
        .call(
            &format!("{SURVEYS}/CreateSurvey"),
            vec![fpb::CreateSurveyRequest {
                survey: Some(fpb::Survey {
                    display_name: format!("{t}{MARK}survey"),
                    kind: fpb::SurveyKind::Nps as i32,
                    question: format!("{t}{MARK}would you recommend us?"),
                    perception_statement: format!("{t}{MARK}works in our shoes"),
                    questions: vec![
                        fpb::CustomQuestion {
                            text: format!("{t}{MARK}rate the onboarding"),
                            r#type: fpb::QuestionType::Scale as i32,
                            scale_min: 1,
                            scale_max: 5,
                            ..Default::default()
                        },
                        fpb::CustomQuestion {
                            text: format!("{t}{MARK}what do you use"),
                            r#type: fpb::QuestionType::Choice as i32,
                            choices: vec!["reports".into(), "alerts".into()],
                            multiple: true,
                            ..Default::default()
                        },
                        fpb::CustomQuestion {
                            text: format!("{t}{MARK}anything else"),
                            r#type: fpb::QuestionType::Text as i32,
                            ..Default::default()
                        },
                    ],
                    language: "ja".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }],
        )
        .await;
    let _: fpb::Survey = s
        .call(
            &format!("{SURVEYS}/CreateSurvey"),
            vec![fpb::CreateSurveyRequest {
                survey: Some(fpb::Survey {
                    display_name: format!("{t}{MARK}effort"),
                    kind: fpb::SurveyKind::Ces as i32,
                    ..Default::default()
                }),
                request_id: String::new(),
            }],
        )
        .await;
    let _: fpb::FeedbackSettings = s
        .call(
            &format!("{SURVEYS}/UpdateFeedbackSettings"),
            vec![fpb::UpdateFeedbackSettingsRequest {
                settings: Some(fpb::FeedbackSettings {
                    throttles: vec![fpb::KindThrottle { kind: fpb::SurveyKind::Nps as i32, days: 90 }],
                }),
            }],
        )
        .await;
    // A campaign to the segment's members: the segment was made after the
    // accounts and contacts, so once Feedback knows it (NOT_FOUND until
    // then), it knows them too.
    let create = fpb::CreateCampaignRequest {
        campaign: Some(fpb::Campaign {
            survey_id: nps.id.clone(),
            display_name: format!("{t}{MARK}campaign"),
            segment_id: segments[0].clone(),
            token_valid_days: 30,
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let bytes = Bytes::from(create.encode_to_vec());
    let s_ref = &*s;
    let reply =
        banso_testkit::eventually(&format!("feedback of {t} to know the segment"), Duration::from_secs(30), || {
            let bytes = bytes.clone();
            async move {
                match s_ref.try_call(&format!("{SURVEYS}/CreateCampaign"), bytes).await {
                    Ok(r) => Some(r),
                    Err(st) if st.code() == Code::NotFound => None,
                    Err(st) => panic!("seed call CreateCampaign failed: {st:?}"),
                }
            }
        })
        .await;
    let m = method_by_path(s.pool, &format!("{SURVEYS}/CreateCampaign"));
    s.objects.record(&DynamicMessage::decode(m.input(), bytes).expect("request decodes"));
    s.objects.record(&DynamicMessage::decode(m.output(), reply.clone()).expect("reply decodes"));
    let campaign = fpb::Campaign::decode(reply).expect("reply decodes");
    let invitations: fpb::ListInvitationsResponse = s
        .call(
            &format!("{SURVEYS}/ListInvitations"),
            vec![fpb::ListInvitationsRequest { campaign_id: campaign.id.clone(), ..Default::default() }],
        )
        .await;
    let inv = invitations.invitations;
    assert!(inv.len() >= 3, "the campaign of {t} invites the three contacts of its first account: {inv:?}");
    let _: fpb::MarkInvitationsDeliveredResponse = s
        .call(
            &format!("{SURVEYS}/MarkInvitationsDelivered"),
            vec![fpb::MarkInvitationsDeliveredRequest {
                campaign_id: campaign.id.clone(),
                invitation_ids: vec![inv[0].id.clone(), inv[1].id.clone()],
                deliver_time: None,
            }],
        )
        .await;
    // The second account has no contact, so it never answers: a prediction
    // for it stays valid.
    let _: fpb::Prediction = s
        .call(
            &format!("{SURVEYS}/RecordPrediction"),
            vec![fpb::RecordPredictionRequest {
                campaign_id: campaign.id.clone(),
                account_id: accounts[1].clone(),
                predicted_score: Some(6),
                predicted_healthy: None,
            }],
        )
        .await;
    let _: fpb::TeamAnswer = s
        .call(
            &format!("{SURVEYS}/AnswerAsAccountTeam"),
            vec![fpb::AnswerAsAccountTeamRequest {
                survey_id: nps.id.clone(),
                account_id: accounts[0].clone(),
                agreement: 4,
            }],
        )
        .await;
    let answer = |token: &str| fpb::SubmitSurveyAnswerRequest {
        token: token.to_owned(),
        score: Some(3),
        comment: format!("{t}{MARK}comment"),
        answers: vec![
            fpb::QuestionAnswer { question_id: "q1".into(), scale: Some(4), ..Default::default() },
            fpb::QuestionAnswer { question_id: "q2".into(), choices: vec!["reports".into()], ..Default::default() },
            fpb::QuestionAnswer { question_id: "q3".into(), text: format!("{t}{MARK}text"), ..Default::default() },
        ],
        perception_agreement: Some(2),
    };
    // One answer, for the results; the form of another invitation, which
    // reading never uses up; and the answer of a third, not sent: the base.
    let _: fpb::SubmitSurveyAnswerResponse =
        s.setup(&format!("{RESPONSES}/SubmitSurveyAnswer"), answer(&inv[1].token)).await;
    let _: fpb::SurveyForm = s
        .call(&format!("{RESPONSES}/GetSurveyForm"), vec![fpb::GetSurveyFormRequest { token: inv[0].token.clone() }])
        .await;
    let m = method_by_path(s.pool, &format!("{RESPONSES}/SubmitSurveyAnswer"));
    let base = Bytes::from(answer(&inv[2].token).encode_to_vec());
    s.objects.record(&DynamicMessage::decode(m.input(), base).expect("request decodes"));
    let _: fpb::PerceptionGap = s
        .call(
            &format!("{SURVEYS}/GetPerceptionGap"),
            vec![fpb::GetPerceptionGapRequest {
                survey_id: nps.id.clone(),
                scope: fpb::GapScope::Account as i32,
                scope_id: accounts[0].clone(),
                ..Default::default()
            }],
        )
        .await;
    let _: fpb::PredictionGap = s
        .call(
            &format!("{SURVEYS}/GetPredictionGap"),
            vec![fpb::GetPredictionGapRequest {
                survey_id: nps.id.clone(),
                campaign_id: campaign.id.clone(),
                group_by: fpb::PredictionGrouping::Csm as i32,
                period: fpb::Period::Quarter as i32,
                ..Default::default()
            }],
        )
        .await;
    let _: fpb::ListMatrixAccountsResponse = s
        .call(
            &format!("{SURVEYS}/ListMatrixAccounts"),
            vec![fpb::ListMatrixAccountsRequest {
                survey_id: nps.id.clone(),
                category: fpb::NpsCategory::Detractor as i32,
                ..Default::default()
            }],
        )
        .await;
}

// ---------------------------------------------------------------- cases

/// One message of a call: a base message and at most one hostile value.
#[derive(Clone)]
struct Msg {
    base: Arc<DynamicMessage>,
    change: Option<(Arc<Leaf>, Gen)>,
    /// Client-chosen unique keys of the base that get a fresh value in
    /// every call, so a create is not answered ALREADY_EXISTS before it
    /// reaches the store.
    fresh: Arc<Vec<Arc<Leaf>>>,
}

impl Msg {
    fn plain(base: &Arc<DynamicMessage>) -> Self {
        Msg { base: base.clone(), change: None, fresh: Arc::default() }
    }
    fn build(&self) -> Bytes {
        let mut m = (*self.base).clone();
        for key in self.fresh.iter() {
            let changed = self.change.as_ref().is_some_and(|(leaf, _)| leaf.name == key.name);
            let set = sweep::get(&m, &key.path).is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()));
            if set && !changed {
                sweep::apply(&mut m, &key.path, Value::String(format!("sweep-{}", uuid::Uuid::now_v7().simple())));
            }
        }
        if let Some((leaf, g)) = &self.change {
            g.apply_to(&mut m, leaf);
        }
        raw::encode(&m)
    }
}

/// `msg` without any `etag`: an etag is optional in every write, and one
/// recorded at seeding goes stale as soon as the sweep writes.
fn without_etags(mut msg: DynamicMessage) -> DynamicMessage {
    fn strip(m: &mut DynamicMessage) {
        m.clear_field_by_name("etag");
        for (_, v) in m.fields_mut() {
            match v {
                Value::Message(m) => strip(m),
                Value::List(l) => l.iter_mut().filter_map(Value::as_message_mut).for_each(strip),
                _ => {}
            }
        }
    }
    strip(&mut msg);
    msg
}

/// The fields of a create's request that name it uniquely on the client's
/// side (AIP: `request_id`; `external_id`, `external_ref` of a CRM): fresh
/// in every call of a Create…/Log… method.
fn fresh_keys(method: &MethodDescriptor, leaves: &[Arc<Leaf>]) -> Arc<Vec<Arc<Leaf>>> {
    if !["Create", "Log"].iter().any(|v| method.name().starts_with(v)) {
        return Arc::default();
    }
    let keys = ["request_id", "external_id", "external_ref"];
    Arc::new(leaves.iter().filter(|l| keys.contains(&l.field_name.as_str())).cloned().collect())
}

#[derive(Clone)]
struct Case {
    method: MethodDescriptor,
    variant: String,
    field: String,
    messages: Vec<Msg>,
    /// Another tenant's id (or, for the twin, an id that exists nowhere).
    foreign: Option<Foreign>,
}

/// The id a cross-tenant case puts in one id field.
#[derive(Clone)]
struct Foreign {
    id: String,
    /// The twin of the victim's ids in this field: an id that was never
    /// made. The victim's ids must be answered as this one is.
    unknown: bool,
}

/// Methods that write nothing, by the API's verbs (AIP): the victim's view is
/// taken through these before and after the sweep. Simulate, Test and
/// Preview are dry runs (a playbook, a condition, touch-mix rules) with no
/// side effect, and Backtest reads scores and outcomes; Suggest and Rank read
/// feedback themes: a viewer may call them.
fn is_read(m: &MethodDescriptor) -> bool {
    [
        "Get", "List", "BatchGet", "Count", "Evaluate", "Check", "Simulate", "Test", "Preview", "Backtest", "Suggest",
        "Rank",
    ]
    .iter()
    .any(|v| m.name().starts_with(v))
}

/// A method of a service served without a bearer token (banso-kit's one list).
fn is_public(m: &MethodDescriptor) -> bool {
    banso_kit::auth::is_public_service(m.parent_service().full_name())
}

fn field(m: &MethodDescriptor, name: &str) -> Option<prost_reflect::FieldDescriptor> {
    m.input().get_field_by_name(name)
}

/// Every case for `method`, sent by the caller with its objects.
fn cases(method: &MethodDescriptor, caller: &Tenant, victim: &Tenant) -> Vec<Case> {
    let input = method.input();
    let empty = Arc::new(DynamicMessage::new(input.clone()));
    let filled = Arc::new(without_etags(caller.objects.fill(&input, method.name())));
    let leaves: Vec<Arc<Leaf>> = sweep::leaves(&input).into_iter().map(Arc::new).collect();
    let fresh = fresh_keys(method, &leaves);
    let changed =
        |leaf: &Arc<Leaf>, g: Gen| Msg { base: filled.clone(), change: Some((leaf.clone(), g)), fresh: fresh.clone() };
    let case = |variant: String, field: String, msg: Msg, foreign: Option<Foreign>| Case {
        method: method.clone(),
        variant,
        field,
        messages: vec![msg],
        foreign,
    };
    let mut out = vec![
        case("empty request".into(), String::new(), Msg::plain(&empty), None),
        case("valid request".into(), String::new(), Msg { fresh: fresh.clone(), ..Msg::plain(&filled) }, None),
    ];
    for leaf in &leaves {
        for (label, g) in sweep::hostile(leaf) {
            out.push(case(label, leaf.name.clone(), changed(leaf, g), None));
        }
    }
    if let Some(f) = field(method, "page_token").filter(|f| f.kind() == Kind::String && !f.is_list()) {
        let leaf = Arc::new(Leaf {
            path: vec![sweep::Step::Field(f.clone())],
            name: f.name().to_owned(),
            kind: sweep::LeafKind::Scalar(Kind::String),
            field_name: f.name().to_owned(),
        });
        let mut tokens = sweep::garbage_tokens();
        let me = raw::path(method);
        for (from, token) in &caller.page_tokens {
            if *from != me {
                tokens.push((format!("page token of {from}"), token.clone()));
            }
        }
        for (from, token) in &victim.page_tokens {
            tokens.push((format!("page token of tenant {} for {from}", victim.name), token.clone()));
        }
        for (label, token) in tokens {
            out.push(case(label, leaf.name.clone(), changed(&leaf, Gen::Text(token)), None));
        }
    }
    // Another tenant's ids in every id field, and an id of each form (a
    // UUID, a key) that exists nowhere.
    for leaf in leaves.iter().filter(|l| l.is_id()) {
        let nowhere = [
            ("a UUID that exists nowhere".to_owned(), uuid::Uuid::now_v7().to_string(), true),
            (
                "a key that exists nowhere".to_owned(),
                format!("nowhere-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]),
                true,
            ),
        ];
        let ids = victim.objects.all_ids().map(|(seen, id)| {
            let label = match seen.rsplit_once('.') {
                // A key (Account.external_id), or the id of an object (banso.….Account).
                Some((ty, field)) if !ty.contains('.') => format!("tenant {}'s {ty}.{field} {id:?}", victim.name),
                _ => format!("id of tenant {}'s {}", victim.name, seen.rsplit('.').next().unwrap_or(seen)),
            };
            (label, id.clone(), false)
        });
        for (label, id, twin) in ids.chain(nowhere) {
            out.push(case(
                label,
                leaf.name.clone(),
                changed(leaf, Gen::Text(id.clone())),
                Some(Foreign { id, unknown: twin }),
            ));
        }
    }
    if method.is_client_streaming() {
        // Each message alone (above), and in streams of several.
        let singles: Vec<Case> = out.iter().filter(|c| c.foreign.is_none()).cloned().collect();
        for group in singles.chunks(STREAM_GROUP) {
            out.push(Case {
                method: method.clone(),
                variant: format!(
                    "stream of {}: {}",
                    group.len(),
                    group.iter().map(|c| format!("{} {}", c.field, c.variant)).collect::<Vec<_>>().join("; ")
                ),
                field: String::new(),
                messages: group.iter().flat_map(|c| c.messages.clone()).collect(),
                foreign: None,
            });
        }
        out.push(Case {
            method: method.clone(),
            variant: "stream of 3 valid messages".into(),
            field: String::new(),
            messages: vec![Msg::plain(&filled); 3],
            foreign: None,
        });
    }
    out
}

// ---------------------------------------------------------------- checks

#[derive(Debug)]
struct Failure {
    pass: &'static str,
    method: String,
    variant: String,
    field: String,
    what: &'static str,
    code: Code,
    size: usize,
    message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let variant: String = self.variant.chars().take(160).collect();
        write!(
            f,
            "[{}] {} {}{}: {} (code {:?}, {} bytes): {}",
            self.pass,
            self.method,
            if self.field.is_empty() { String::new() } else { format!("field {} = ", self.field) },
            variant,
            self.what,
            self.code,
            self.size,
            self.message.chars().take(200).collect::<String>()
        )
    }
}

struct Outcome {
    case: Case,
    result: Result<Vec<Bytes>, Status>,
    took: Duration,
}

/// The texts that give away the victim's data in a reply.
struct Secrets {
    mark: Vec<u8>,
    ids: Vec<String>,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn check(pass: &'static str, o: &Outcome, secrets: &Secrets, planted: &HashSet<String>, out: &mut Vec<Failure>) {
    let fail = |what, code, size, message: String| Failure {
        pass,
        method: raw::path(&o.case.method),
        variant: o.case.variant.clone(),
        field: o.case.field.clone(),
        what,
        code,
        size,
        message,
    };
    if o.took > SLOW_CALL {
        let code = o.result.as_ref().err().map_or(Code::Ok, Status::code);
        out.push(fail("took longer than 5 s", code, 0, format!("{:.1?}", o.took)));
    }
    // The survey answer path takes no bearer token (its credential is the
    // invitation's token in the request): it must reach its handler
    // without one, and whatever role a token names is nothing to it.
    let public = is_public(&o.case.method);
    match &o.result {
        Err(s) => {
            let size = banso_testkit::status_wire_size(s);
            if pass.starts_with("no token") {
                if public && s.code() == Code::Unauthenticated {
                    out.push(fail("a public method asked for a bearer token", s.code(), size, s.message().to_owned()));
                } else if !public && s.code() != Code::Unauthenticated {
                    out.push(fail(
                        "refused without a token, but not UNAUTHENTICATED",
                        s.code(),
                        size,
                        s.message().to_owned(),
                    ));
                }
            }
            let what = match s.code() {
                Code::Internal | Code::Unknown => Some("INTERNAL or UNKNOWN"),
                Code::Unavailable | Code::DataLoss => Some("server unavailable or connection lost"),
                Code::DeadlineExceeded if s.message().contains("client-side") => Some("no answer in time"),
                _ => None,
            };
            if let Some(what) = what {
                out.push(fail(what, s.code(), size, s.message().to_owned()));
            }
            if size >= MAX_STATUS_BYTES {
                out.push(fail("error status over 8 KiB", s.code(), size, s.message().to_owned()));
            }
        }
        Ok(replies) => {
            // The API's access rules (proto/…/*_service.proto): every call
            // but the public ones needs a token; reads need any role,
            // writes more than viewer.
            if !public && pass.starts_with("no token") {
                out.push(fail("answered without a token", Code::Ok, 0, String::new()));
            } else if !public && pass.starts_with("viewer") && !is_read(&o.case.method) {
                out.push(fail("a viewer's write was accepted", Code::Ok, 0, String::new()));
            }
            for r in replies {
                if contains(r, &secrets.mark) {
                    out.push(fail(
                        "reply carries the other tenant's data",
                        Code::Ok,
                        r.len(),
                        excerpt(r, &secrets.mark),
                    ));
                    continue;
                }
                // The id a case sent may come back (an echo is not the
                // victim's data); any other id of the victim may not.
                let sent = o.case.foreign.as_ref().map(|f| f.id.as_str());
                let leaked = secrets
                    .ids
                    .iter()
                    .find(|id| Some(id.as_str()) != sent && !planted.contains(*id) && contains(r, id.as_bytes()));
                if let Some(id) = leaked {
                    out.push(fail(
                        "reply carries an id of the other tenant",
                        Code::Ok,
                        r.len(),
                        format!("id {id}: {}", excerpt(r, id.as_bytes())),
                    ));
                }
            }
        }
    }
}

/// What an answer looks like, without its values: the code, and for a
/// reply the paths of the fields it sets (`accepted`, `accounts[].name`…).
fn shape(o: &Outcome) -> (Code, BTreeSet<String>) {
    fn walk(m: &DynamicMessage, prefix: &str, out: &mut BTreeSet<String>) {
        for (f, v) in m.fields() {
            let name = format!("{prefix}{}", f.name());
            match v {
                Value::Message(m) => walk(m, &format!("{name}."), out),
                Value::List(l) => {
                    for v in l {
                        match v {
                            Value::Message(m) => walk(m, &format!("{name}[]."), out),
                            _ => {
                                out.insert(format!("{name}[]"));
                            }
                        }
                    }
                }
                _ => {
                    out.insert(name);
                }
            }
        }
    }
    match &o.result {
        Err(s) => (s.code(), BTreeSet::new()),
        Ok(replies) => {
            let mut paths = BTreeSet::new();
            for r in replies {
                if let Ok(m) = DynamicMessage::decode(o.case.method.output(), r.clone()) {
                    walk(&m, "", &mut paths);
                }
            }
            (Code::Ok, paths)
        }
    }
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// Another tenant's id must be answered by a read as an id that exists
/// nowhere: with the same code, and an OK reply setting the same fields; a
/// different answer tells the caller the id exists in another tenant.
fn same_as_unknown(pass: &'static str, outcomes: &[Outcome], out: &mut Vec<Failure>) {
    let mut twins: HashMap<(String, String, bool), (Code, BTreeSet<String>)> = HashMap::new();
    for o in outcomes {
        if let Some(f) = &o.case.foreign
            && f.unknown
        {
            twins.insert((raw::path(&o.case.method), o.case.field.clone(), is_uuid(&f.id)), shape(o));
        }
    }
    for o in outcomes {
        let Some(f) = &o.case.foreign else { continue };
        // A write may meet what another write of the same value planted in
        // the caller's own data (an external_id, a request_id, a changed
        // etag): writes are judged by the victim's view and their replies.
        if f.unknown || !is_read(&o.case.method) {
            continue;
        }
        let Some(twin) = twins.get(&(raw::path(&o.case.method), o.case.field.clone(), is_uuid(&f.id))) else {
            continue;
        };
        let (code, fields) = shape(o);
        if code != twin.0 || fields != twin.1 {
            let message = match &o.result {
                Err(s) => s.message().to_owned(),
                Ok(_) => format!(
                    "OK setting {:?} where the unknown id's reply set {:?}",
                    fields.symmetric_difference(&twin.1).filter(|p| fields.contains(*p)).collect::<Vec<_>>(),
                    fields.symmetric_difference(&twin.1).filter(|p| twin.1.contains(*p)).collect::<Vec<_>>()
                ),
            };
            out.push(Failure {
                pass,
                method: raw::path(&o.case.method),
                variant: format!("{} ({})", o.case.variant, f.id),
                field: o.case.field.clone(),
                what: "answered unlike an id that exists nowhere",
                code,
                size: 0,
                message: format!("an unknown id got {:?}; this one: {message}", twin.0),
            });
        }
    }
}

fn excerpt(hay: &[u8], needle: &[u8]) -> String {
    let at = hay.windows(needle.len()).position(|w| w == needle).unwrap_or(0);
    let from = at.saturating_sub(60);
    String::from_utf8_lossy(&hay[from..(at + needle.len() + 60).min(hay.len())]).into_owned()
}

async fn run(app: &TestApp, cases: Vec<Case>, token: Option<String>) -> Vec<Outcome> {
    let channel = app.channel.clone();
    futures::stream::iter(cases)
        .map(|case| {
            let channel = channel.clone();
            let token = token.clone();
            async move {
                let messages = case.messages.iter().map(Msg::build).collect();
                let started = Instant::now();
                let result = raw::call(&channel, &case.method, messages, token.as_deref(), CALL_TIMEOUT).await;
                Outcome { case, result, took: started.elapsed() }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

/// The next page tokens `tenant` gets from every paged method (page size 1).
async fn harvest_tokens(app: &TestApp, methods: &[MethodDescriptor], tenant: &mut Tenant) {
    let token = app.token(tenant.name, Role::Admin);
    for m in methods {
        let (Some(size), Some(_)) = (field(m, "page_size"), field(m, "page_token")) else { continue };
        let mut req = tenant.objects.fill(&m.input(), m.name());
        req.set_field(&size, Value::I32(1));
        let Ok(replies) = raw::call(&app.channel, m, vec![raw::encode(&req)], Some(&token), CALL_TIMEOUT).await else {
            continue;
        };
        for r in replies {
            let reply = DynamicMessage::decode(m.output(), r).expect("reply decodes");
            if let Some(t) = reply.get_field_by_name("next_page_token").and_then(|v| v.as_str().map(str::to_owned))
                && !t.is_empty()
            {
                tenant.page_tokens.push((raw::path(m), t));
            }
        }
    }
}

/// What the victim sees through every read method: with its own objects,
/// and with each of its ids in each id field.
async fn view(app: &TestApp, methods: &[MethodDescriptor], victim: &Tenant) -> BTreeMap<String, String> {
    let mut cases = Vec::new();
    for m in methods.iter().filter(|m| is_read(m)) {
        let filled = Arc::new(victim.objects.fill(&m.input(), m.name()));
        let empty = Arc::new(DynamicMessage::new(m.input()));
        let mk = |variant: String, field: String, msg: Msg| Case {
            method: m.clone(),
            variant,
            field,
            messages: vec![msg],
            foreign: None,
        };
        cases.push(mk("empty".into(), String::new(), Msg::plain(&empty)));
        cases.push(mk("own objects".into(), String::new(), Msg::plain(&filled)));
        for leaf in sweep::leaves(&m.input()).into_iter().filter(Leaf::is_id).map(Arc::new) {
            for (_, id) in victim.objects.all_ids() {
                cases.push(mk(
                    id.clone(),
                    leaf.name.clone(),
                    Msg {
                        base: filled.clone(),
                        change: Some((leaf.clone(), Gen::Text(id.clone()))),
                        fresh: Arc::default(),
                    },
                ));
            }
        }
    }
    let outcomes = run(app, cases, Some(app.token(victim.name, Role::Admin))).await;
    outcomes
        .into_iter()
        .map(|o| {
            let key = format!("{} {} {}", raw::path(&o.case.method), o.case.field, o.case.variant);
            let shown = match o.result {
                Ok(r) => {
                    let reply = DynamicMessage::decode(o.case.method.output(), r[0].clone()).expect("decodes");
                    format!("OK {reply:?}")
                }
                Err(s) => format!("{:?} {}", s.code(), s.message()),
            };
            (key, shown)
        })
        .collect()
}

async fn serving(app: &TestApp, names: &[String]) -> Vec<String> {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let mut client = HealthClient::new(app.channel.clone());
    let mut problems = Vec::new();
    for name in std::iter::once(String::new()).chain(names.iter().cloned()) {
        match client.check(HealthCheckRequest { service: name.clone() }).await {
            Ok(r) if r.get_ref().status == ServingStatus::Serving as i32 => {}
            other => problems.push(format!("health of {name:?} is not SERVING: {other:?}")),
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_survives_generated_bad_input() {
    let started = Instant::now();
    let app = banso_tests::spawn_all().await;
    let pool = raw::pool();
    let services = raw::served_services(&app.channel, &pool).await;
    assert!(!services.is_empty(), "reflection lists no service of the descriptor set");
    let names: Vec<String> = services.iter().map(|s| s.full_name().to_owned()).collect();
    let methods: Vec<MethodDescriptor> = services.iter().flat_map(|s| s.methods()).collect();

    let mut victim = seed(&app, &pool, VICTIM).await;
    let mut caller = seed(&app, &pool, CALLER).await;
    harvest_tokens(&app, &methods, &mut victim).await;
    harvest_tokens(&app, &methods, &mut caller).await;
    let seeded = started.elapsed();
    eprintln!(
        "sweep: seeded {} ids, {} keys and {} page tokens of {VICTIM}, {} ids and {} page tokens of {CALLER}",
        victim.objects.ids.len(),
        victim.objects.keys.len(),
        victim.page_tokens.len(),
        caller.objects.ids.len(),
        caller.page_tokens.len()
    );

    // The victim's view once background work (rollups, scoring) has
    // settled: until two looks half a second apart agree, at most 10 s.
    // Entries that still change by themselves are not compared afterwards.
    let mut before = view(&app, &methods, &victim).await;
    let mut again = before.clone();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        again = view(&app, &methods, &victim).await;
        if again == before {
            break;
        }
        before = again.clone();
    }
    let stable: BTreeMap<String, String> = before.into_iter().filter(|(k, v)| again.get(k) == Some(v)).collect();
    // The leak check can see the victim's data: its own view shows it.
    assert!(
        stable.values().filter(|v| v.contains(&format!("{VICTIM}{MARK}"))).count() >= 5,
        "the victim's own reads do not show its seeded data: the sweep's leak check would see nothing"
    );

    let secrets = Secrets {
        mark: format!("{VICTIM}{MARK}").into_bytes(),
        ids: victim.objects.all_ids().map(|(_, id)| id.clone()).collect(),
    };
    let all: Vec<Case> = methods.iter().flat_map(|m| cases(m, &caller, &victim)).collect();
    let (own, foreign): (Vec<Case>, Vec<Case>) = all.into_iter().partition(|c| c.foreign.is_none());

    let sweep_started = Instant::now();
    let mut outcomes: Vec<(&'static str, Vec<Outcome>)> = Vec::new();
    outcomes.push(("admin", run(&app, own.clone(), Some(app.token(CALLER, Role::Admin))).await));
    outcomes.push(("viewer", run(&app, own.clone(), Some(app.token(CALLER, Role::Viewer))).await));
    let empties: Vec<Case> = methods
        .iter()
        .map(|m| Case {
            method: m.clone(),
            variant: "empty request".into(),
            field: String::new(),
            messages: vec![Msg::plain(&Arc::new(DynamicMessage::new(m.input())))],
            foreign: None,
        })
        .collect();
    // The public methods' valid requests too: they answer without a token.
    let public_valid = own.iter().filter(|c| is_public(&c.method) && c.variant == "valid request").cloned();
    let no_token: Vec<Case> = empties.into_iter().chain(public_valid).collect();
    assert!(
        no_token.iter().any(|c| is_public(&c.method)),
        "no public method is served: the sweep would not see one answer without a token"
    );
    outcomes.push(("no token", run(&app, no_token, None).await));
    // Another tenant's ids last, so the passes above never see what these
    // plant; reads before writes, so a read meets none of them either.
    let (foreign_reads, foreign_writes): (Vec<Case>, Vec<Case>) =
        foreign.iter().cloned().partition(|c| is_read(&c.method));
    for (pass, cases, role) in [
        ("admin, other tenant's ids", &foreign_reads, Role::Admin),
        ("viewer, other tenant's ids", &foreign_reads, Role::Viewer),
        ("admin, other tenant's ids", &foreign_writes, Role::Admin),
        ("viewer, other tenant's ids", &foreign_writes, Role::Viewer),
    ] {
        outcomes.push((pass, run(&app, cases.clone(), Some(app.token(CALLER, role))).await));
    }
    // Every read once more, over everything the passes above stored: a
    // value accepted by a write must not break a later read (a sum that
    // overflows, a row that no longer decodes).
    let reads_after: Vec<Case> = own
        .iter()
        .filter(|c| is_read(&c.method) && (c.variant == "empty request" || c.variant == "valid request"))
        .cloned()
        .collect();
    outcomes.push(("admin, reads after the sweep", run(&app, reads_after, Some(app.token(CALLER, Role::Admin))).await));
    let swept = sweep_started.elapsed();
    let n_calls: usize = outcomes.iter().map(|(_, os)| os.len()).sum();

    // An id of the victim that a call accepted (and so planted in the
    // caller's data) is reported there, not again wherever it shows up.
    let mut planted = HashSet::new();
    for (_, os) in &outcomes {
        for o in os {
            if let (Some(f), Ok(r)) = (&o.case.foreign, &o.result)
                && r.iter().any(|r| contains(r, f.id.as_bytes()))
            {
                planted.insert(f.id.clone());
            }
        }
    }
    let mut failures = Vec::new();
    for (pass, os) in &outcomes {
        for o in os {
            check(pass, o, &secrets, &planted, &mut failures);
        }
        same_as_unknown(pass, os, &mut failures);
    }

    let after = view(&app, &methods, &victim).await;
    let mut changed = Vec::new();
    for (k, v) in &stable {
        match after.get(k) {
            Some(a) if a == v => {}
            a => changed.push(format!(
                "tenant {VICTIM}'s view changed after tenant {CALLER}'s calls: {k}\n      before: {}\n      after:  {}",
                v.chars().take(300).collect::<String>(),
                a.map(|a| a.chars().take(300).collect::<String>()).unwrap_or_default()
            )),
        }
    }
    let mut unhealthy = serving(&app, &names).await;
    // A background task that died and came back before the end is not
    // NOT_SERVING any more, but the supervisor counted it.
    let metrics = banso_kit::telemetry::prometheus().render();
    for line in metrics.lines().filter(|l| l.starts_with(banso_kit::supervise::TASK_RESTARTS_TOTAL)) {
        if line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).is_some_and(|v| v > 0.0) {
            unhealthy.push(format!("a background task died during the sweep: {line}"));
        }
    }

    // The checks can fail: the victim reading its own objects by the same
    // cases must look like a leak to them (its data in replies, its ids
    // answered unlike an unknown one).
    let control_cases: Vec<Case> = foreign.iter().filter(|c| is_read(&c.method)).cloned().collect();
    let control = run(&app, control_cases, Some(app.token(VICTIM, Role::Admin))).await;
    let mut seen = Vec::new();
    for o in &control {
        check("control", o, &secrets, &HashSet::new(), &mut seen);
    }
    same_as_unknown("control", &control, &mut seen);
    for what in ["reply carries the other tenant's data", "answered unlike an id that exists nowhere"] {
        assert!(
            seen.iter().any(|f| f.what == what),
            "the sweep's check {what:?} never fires, even on the tenant's own reads"
        );
    }

    // What came back, so a run shows what the sweep exercised.
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut largest: Option<(usize, String)> = None;
    for (_, os) in &outcomes {
        for o in os {
            let c = o.result.as_ref().err().map_or(Code::Ok, Status::code);
            *codes.entry(format!("{c:?}")).or_default() += 1;
            if let Err(s) = &o.result {
                let size = banso_testkit::status_wire_size(s);
                if largest.as_ref().is_none_or(|(l, _)| size > *l) {
                    largest =
                        Some((size, format!("{} {} {}", raw::path(&o.case.method), o.case.field, o.case.variant)));
                }
            }
        }
    }
    eprintln!("sweep: codes {codes:?}; largest error status {largest:?}");
    let mut slow: Vec<&Outcome> = outcomes.iter().flat_map(|(_, os)| os).collect();
    slow.sort_by_key(|o| std::cmp::Reverse(o.took));
    for o in slow.iter().take(5) {
        let code = o.result.as_ref().err().map_or(Code::Ok, Status::code);
        eprintln!(
            "sweep: slowest {:?} {} {} {} -> {code:?}",
            o.took,
            raw::path(&o.case.method),
            o.case.field,
            o.case.variant.chars().take(80).collect::<String>()
        );
    }
    #[allow(clippy::disallowed_methods, reason = "a test's own setting, not a service's")]
    if std::env::var("BANSO_SWEEP_VERBOSE").is_ok() {
        for o in outcomes.iter().filter(|(p, _)| *p == "admin").flat_map(|(_, os)| os) {
            if o.case.variant == "valid request" {
                let r = o.result.as_ref().err().map(|s| format!("{:?} {}", s.code(), s.message()));
                eprintln!("sweep: valid request {} -> {}", raw::path(&o.case.method), r.unwrap_or("OK".into()));
            }
        }
    }

    eprintln!(
        "sweep: {} services, {} methods, {n_calls} calls; seeded in {:.1?}, swept in {:.1?}; {} failures, {} changes to {VICTIM}'s view ({} entries compared)",
        names.len(),
        methods.len(),
        seeded,
        swept,
        failures.len(),
        changed.len(),
        stable.len()
    );
    if failures.is_empty() && changed.is_empty() && unhealthy.is_empty() {
        return;
    }
    failures.sort_by(|a, b| {
        (&a.method, a.what, &a.field, &a.variant, a.pass).cmp(&(&b.method, b.what, &b.field, &b.variant, b.pass))
    });
    let mut by_method: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &failures {
        *by_method.entry(f.method.as_str()).or_default() += 1;
    }
    let mut report =
        format!("{} failures in the generated sweep\n\nby method:\n", failures.len() + changed.len() + unhealthy.len());
    for (m, n) in &by_method {
        let _ = writeln!(report, "  {n:5}  {m}");
    }
    let _ = writeln!(report, "\nevery failure:");
    for f in &failures {
        let _ = writeln!(report, "  {f}");
    }
    for c in &changed {
        let _ = writeln!(report, "  {c}");
    }
    for u in &unhealthy {
        let _ = writeln!(report, "  {u}");
    }
    // Where to keep the whole report too (the panic message is cut by some runners).
    #[allow(clippy::disallowed_methods, reason = "a test's own setting, not a service's")]
    if let Ok(path) = std::env::var("BANSO_SWEEP_REPORT") {
        let _ = std::fs::write(path, &report);
    }
    panic!("{report}");
}
