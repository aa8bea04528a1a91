//! Feedback items and themes: recording with the account's snapshot,
//! keyword rules, assigning, an import stream with refusals, survey
//! comments as items, suggestions, candidate themes, bad input, tenancy.

use banso_events::Payload;
use banso_proto::{accounts as apb, feedback as pb, health as hpb};
use tonic::Code;

use crate::common::*;

#[tokio::test]
async fn items_keep_the_account_as_it_was_and_join_themes_by_keyword_and_by_hand() {
    let app = spawn().await;
    let mut v = voice(&app);
    let a = account("Alpha", "retail");
    publish_account(&app, TENANT, &a).await;
    let ann = contact(&a, "Ann", apb::ContactLevel::Manager);
    publish_contact(&app, TENANT, &ann).await;
    publish_band(&app, TENANT, &a.id, 35.0, hpb::Band::Red).await;
    settle(&app, TENANT).await;
    let csv = create_theme(
        &mut v,
        pb::Theme {
            keywords: vec!["CSV".into(), "エクスポート".into()],
            departments: vec![pb::Department::Product as i32, pb::Department::Support as i32],
            ..theme("CSV export")
        },
    )
    .await;
    assert_eq!((csv.items, csv.keywords.len()), (0, 2));
    let got = until("the band is projected", || {
        let mut v = v.clone();
        let a = a.clone();
        async move {
            let i = create_item(&mut v, item(&a, "ＣＳＶが文字化けする", pb::Department::Product, 4)).await;
            (i.snapshot.as_ref().unwrap().health_band == hpb::Band::Red as i32).then_some(i)
        }
    })
    .await;
    let s = got.snapshot.clone().unwrap();
    assert_eq!((s.plan.as_str(), s.arr.unwrap().amount_minor), ("gold", 12_000_000));
    assert_eq!(got.theme_ids, vec![csv.id.clone()], "full-width ＣＳＶ matches the keyword");
    let other = create_item(
        &mut v,
        pb::FeedbackItem {
            contact_id: ann.id.clone(), ..item(&a, "ログインが遅い", pb::Department::Support, 2)
        },
    )
    .await;
    assert!(other.theme_ids.is_empty());
    let login = create_theme(&mut v, theme("Login")).await;
    let assigned = v
        .assign_theme(pb::AssignThemeRequest { item_id: other.id.clone(), theme_id: login.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(assigned.theme_ids, vec![login.id.clone()]);
    // Assigning again changes nothing; a new keyword takes existing items.
    v.assign_theme(pb::AssignThemeRequest { item_id: other.id.clone(), theme_id: login.id.clone() }).await.unwrap();
    let updated = v
        .update_theme(pb::UpdateThemeRequest {
            theme: Some(pb::Theme {
                id: login.id.clone(),
                keywords: vec!["ログイン".into()],
                etag: login.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask { paths: vec!["keywords".into()] }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.items, updated.display_name.as_str()), (1, "Login"));
    // A stale etag is refused.
    let e = v
        .update_theme(pb::UpdateThemeRequest {
            theme: Some(pb::Theme {
                id: login.id.clone(),
                display_name: "x".into(),
                etag: login.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask { paths: vec!["display_name".into()] }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    let listed = v
        .list_feedback_items(pb::ListFeedbackItemsRequest { theme_id: csv.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(listed.iter().all(|i| i.theme_ids.contains(&csv.id)) && !listed.is_empty());
    let unassigned = v
        .unassign_theme(pb::UnassignThemeRequest { item_id: other.id.clone(), theme_id: login.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(unassigned.theme_ids.is_empty());
    let unthemed = v
        .list_feedback_items(pb::ListFeedbackItemsRequest { unthemed: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(unthemed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), [other.id.as_str()]);
    // Another tenant sees none of it.
    let mut globex = voice_as(&app, "globex", Role::Admin);
    for e in [
        globex.get_feedback_item(pb::GetFeedbackItemRequest { id: other.id.clone() }).await.unwrap_err(),
        globex.get_theme(pb::GetThemeRequest { id: csv.id.clone() }).await.unwrap_err(),
        globex
            .assign_theme(pb::AssignThemeRequest { item_id: other.id.clone(), theme_id: csv.id.clone() })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(e.code(), Code::NotFound, "{e:?}");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn every_bad_field_of_an_item_and_a_theme_is_named() {
    let app = spawn().await;
    let mut v = voice(&app);
    let a = account("Alpha", "retail");
    publish_account(&app, TENANT, &a).await;
    settle(&app, TENANT).await;
    let bad = pb::FeedbackItem {
        text: "あ".repeat(5001),
        channel: pb::Channel::SurveyComment as i32,
        account_id: "nope".into(),
        contact_id: "x".into(),
        department: 0,
        category: "c".repeat(101),
        cx_dimension: 9,
        journey_phase: 9,
        severity: 6,
        // A client's zero time, not a customer's words.
        mention_time: Some(pbjson_types::Timestamp { seconds: 0, nanos: 0 }),
        ..Default::default()
    };
    let e = v
        .create_feedback_item(pb::CreateFeedbackItemRequest { item: Some(bad), request_id: String::new() })
        .await
        .unwrap_err();
    let fields: Vec<_> = violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        [
            "item.text",
            "item.channel",
            "item.account_id",
            "item.contact_id",
            "item.department",
            "item.category",
            "item.cx_dimension",
            "item.journey_phase",
            "item.severity",
            "item.mention_time"
        ]
    );
    // A mention time in the future, or not a time at all.
    let now = chrono::Utc::now().timestamp();
    for (t, says) in [
        (pbjson_types::Timestamp { seconds: now + 3600, nanos: 0 }, "future"),
        (pbjson_types::Timestamp { seconds: now, nanos: -1 }, "nanos"),
        (pbjson_types::Timestamp { seconds: 946_684_799, nanos: 0 }, "2000-01-01"),
    ] {
        let e = v
            .create_feedback_item(pb::CreateFeedbackItemRequest {
                item: Some(pb::FeedbackItem { mention_time: Some(t), ..item(&a, "t", pb::Department::Cs, 1) }),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        let vs = violations(&e);
        assert_eq!(vs.len(), 1, "{vs:?}");
        assert_eq!(vs[0].0, "item.mention_time");
        assert!(vs[0].1.contains(says), "{:?} says {says}", vs[0].1);
    }
    // 5,000 Japanese characters fit: characters, not bytes.
    let ok = v
        .create_feedback_item(pb::CreateFeedbackItemRequest {
            item: Some(item(&a, &"あ".repeat(5000), pb::Department::Product, 3)),
            request_id: String::new(),
        })
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    // An unknown account or a contact of no account: NOT_FOUND.
    let stranger = account("Stranger", "x");
    let e = v
        .create_feedback_item(pb::CreateFeedbackItemRequest {
            item: Some(item(&stranger, "t", pb::Department::Cs, 1)),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = v
        .create_feedback_item(pb::CreateFeedbackItemRequest {
            item: Some(pb::FeedbackItem {
                contact_id: uuid::Uuid::now_v7().to_string(),
                ..item(&a, "t", pb::Department::Cs, 1)
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let bad = pb::Theme {
        display_name: String::new(),
        keywords: vec![" ".into()],
        departments: vec![pb::Department::Product as i32, pb::Department::Product as i32, 0],
        assessment: Some(pb::ThemeAssessment { expertise: 6, initial_cost: -1.0, ..Default::default() }),
        roadmap: Some(pb::RoadmapLink {
            url: "ftp://x".into(),
            status: pb::RoadmapStatus::Shipped as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = v.create_theme(pb::CreateThemeRequest { theme: Some(bad), request_id: String::new() }).await.unwrap_err();
    let fields: Vec<_> = violations(&e).into_iter().map(|(f, _)| f).collect();
    for f in [
        "theme.display_name",
        "theme.keywords[0]",
        "theme.departments[1]",
        "theme.departments[2]",
        "theme.assessment.expertise",
        "theme.assessment.initial_cost",
        "theme.roadmap.url",
        "theme.roadmap.status",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
    }
    // Roles: a viewer reads but does not record; a CSM does not create themes.
    let mut viewer = voice_as(&app, TENANT, Role::Viewer);
    let e = viewer
        .create_feedback_item(pb::CreateFeedbackItemRequest {
            item: Some(item(&a, "t", pb::Department::Cs, 1)),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let mut csm = voice_as(&app, TENANT, Role::Csm);
    let e = csm
        .create_theme(pb::CreateThemeRequest { theme: Some(theme("x")), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = v
        .suggest_themes(pb::SuggestThemesRequest { item_id: String::new(), text: String::new(), max_suggestions: 21 })
        .await
        .unwrap_err();
    let fields: Vec<_> = violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["text", "max_suggestions"]);
    app.stop().await.unwrap();
}

/// An import keeps the good items and reports each bad one by its place.
#[tokio::test]
async fn an_import_stream_keeps_the_good_items_and_names_the_bad() {
    let app = spawn().await;
    let mut v = voice(&app);
    let a = account("Alpha", "retail");
    publish_account(&app, TENANT, &a).await;
    settle(&app, TENANT).await;
    create_theme(&mut v, pb::Theme { keywords: vec!["invoice".into()], ..theme("Invoices") }).await;
    let mut items: Vec<pb::FeedbackItem> = (0..1200)
        .map(|i| item(&a, &format!("invoice number {i} is wrong"), pb::Department::Billing, 1 + i % 5))
        .collect();
    items[3].severity = 9;
    items[700].account_id = uuid::Uuid::now_v7().to_string();
    items[1100].text = String::new();
    // History from another tool keeps the day it was said; a day to come is refused.
    let said = pbjson_types::Timestamp { seconds: 1_718_000_000, nanos: 0 }; // 2024-06-10
    items[5].mention_time = Some(said);
    items[5].text = "an invoice from 2024".into();
    items[6].mention_time =
        Some(pbjson_types::Timestamp { seconds: chrono::Utc::now().timestamp() + 86_400, nanos: 0 });
    let texts: Vec<String> =
        items.iter().enumerate().filter(|(k, _)| ![3, 6, 700, 1100].contains(k)).map(|(_, i)| i.text.clone()).collect();
    let imported = collect(&app, "banso.feedback.>");
    let stream = futures::stream::iter(items.into_iter().map(|i| pb::ImportFeedbackItemsRequest { item: Some(i) }));
    let r = v.import_feedback_items(stream).await.unwrap().into_inner();
    assert_eq!((r.created, r.failed), (1196, 4));
    let places: Vec<i64> = r.failures.iter().map(|f| f.index).collect();
    assert_eq!(places, [3, 6, 700, 1100]);
    assert!(r.failures[0].violations[0].starts_with("item.severity"), "{:?}", r.failures[0]);
    assert!(r.failures[1].violations[0].starts_with("item.mention_time"), "{:?}", r.failures[1]);
    assert!(r.failures[2].violations[0].starts_with("item.account_id"), "{:?}", r.failures[2]);
    let themes = v.list_themes(pb::ListThemesRequest::default()).await.unwrap().into_inner().themes;
    assert_eq!(themes[0].items, 1196, "every imported item met the keyword rule");
    // Each item says when it was said: the 2024 one its day, the others when recorded.
    let (mut listed, mut page_token) = (Vec::new(), String::new());
    loop {
        let page = v
            .list_feedback_items(pb::ListFeedbackItemsRequest { page_size: 1000, page_token, ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        listed.extend(page.items);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(listed.len(), 1196);
    let old = listed.iter().find(|i| i.text == "an invoice from 2024").expect("the 2024 item");
    assert_eq!(old.mention_time, Some(said));
    assert!(old.create_time.unwrap().seconds > said.seconds);
    assert!(listed.iter().filter(|i| i.id != old.id).all(|i| i.mention_time == i.create_time));

    // Announced together (FeedbackImported), in the order sent, with their
    // keyword themes; no FeedbackReceived.
    let batches: Vec<Vec<pb::FeedbackItem>> = until("the import's events", || {
        let imported = imported.clone();
        async move {
            let seen = imported.lock().unwrap();
            let batches: Vec<_> = seen
                .iter()
                .filter_map(|e| match &e.payload {
                    Some(Payload::FeedbackImported(x)) => Some(x.items.clone()),
                    _ => None,
                })
                .collect();
            (batches.iter().map(Vec::len).sum::<usize>() >= 1196).then_some(batches)
        }
    })
    .await;
    // Three transactions (500, 500, 196 items), each announced in events
    // of at most 64 KiB of items (two here for a full batch).
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert!(sizes.len() <= 6 && sizes.last() == Some(&196), "{sizes:?}");
    let announced: Vec<&str> = batches.iter().flatten().map(|i| i.text.as_str()).collect();
    assert_eq!(announced, texts);
    assert!(batches.iter().flatten().all(|i| i.theme_ids == [themes[0].id.clone()]));
    let old_said = batches.iter().flatten().find(|i| i.text == "an invoice from 2024").unwrap();
    assert_eq!(old_said.mention_time, Some(said), "the event says when it was said");
    assert!(
        !imported.lock().unwrap().iter().any(|e| matches!(e.payload, Some(Payload::FeedbackReceived(_)))),
        "an import's items are not announced one by one"
    );
    app.stop().await.unwrap();
}

/// A survey answer's comment becomes an item of the account, once, its
/// severity from the score.
#[tokio::test]
async fn a_survey_comment_becomes_an_item() {
    let app = spawn().await;
    let mut c = admin(&app);
    let mut v = voice(&app);
    let a = account("Alpha", "retail");
    publish_account(&app, TENANT, &a).await;
    let ann = contact(&a, "Ann", apb::ContactLevel::Manager);
    publish_contact(&app, TENANT, &ann).await;
    settle(&app, TENANT).await;
    let s = create_survey(&mut c, survey("NPS", pb::SurveyKind::Nps)).await;
    let campaign = create_campaign(&mut c, campaign_to(&s, &[&a])).await;
    let inv = invitations(&mut c, &campaign.id).await.pop().unwrap();
    let mut p = public(&app);
    let answered = p
        .submit_survey_answer(pb::SubmitSurveyAnswerRequest {
            token: inv.token.clone(),
            score: Some(2),
            comment: "請求書の画面が分かりにくい".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let items = v
        .list_feedback_items(pb::ListFeedbackItemsRequest { account_id: a.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(items.len(), 1);
    let i = &items[0];
    assert_eq!(
        (i.channel, i.contact_id.as_str(), i.answer_id.as_str(), i.severity, i.text.as_str()),
        (
            pb::Channel::SurveyComment as i32,
            ann.id.as_str(),
            answered.answer_id.as_str(),
            4,
            "請求書の画面が分かりにくい"
        )
    );
    app.stop().await.unwrap();
}

/// Suggestions rank the themes of like items first; unthemed items that
/// are alike make a candidate.
#[tokio::test]
async fn suggestions_and_candidate_themes() {
    let app = spawn().await;
    let mut v = voice(&app);
    let a = account("Alpha", "retail");
    publish_account(&app, TENANT, &a).await;
    settle(&app, TENANT).await;
    let billing =
        create_theme(&mut v, pb::Theme { description: "invoices, billing, 請求書".into(), ..theme("請求書") }).await;
    let login = create_theme(&mut v, pb::Theme { description: "SSO, sign in".into(), ..theme("ログイン") }).await;
    for (text, t) in
        [("請求書の金額が違う", &billing), ("請求書を再発行したい", &billing), ("SSOでログインできない", &login)]
    {
        let i = create_item(&mut v, item(&a, text, pb::Department::Product, 3)).await;
        v.assign_theme(pb::AssignThemeRequest { item_id: i.id, theme_id: t.id.clone() }).await.unwrap();
    }
    let s = v
        .suggest_themes(pb::SuggestThemesRequest {
            text: "請求書の宛名を直したい".into(), ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .suggestions;
    assert_eq!(s[0].theme_id, billing.id, "{s:?}");
    assert!(s[0].similarity > 0.0 && s[0].similarity <= 1.0);
    // An item in a theme is suggested the others.
    let i = create_item(&mut v, item(&a, "ログイン画面でSSOが失敗する", pb::Department::Product, 3)).await;
    let s = v
        .suggest_themes(pb::SuggestThemesRequest { item_id: i.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.suggestions[0].theme_id, login.id);
    v.assign_theme(pb::AssignThemeRequest { item_id: i.id.clone(), theme_id: login.id.clone() }).await.unwrap();
    let s = v
        .suggest_themes(pb::SuggestThemesRequest { item_id: i.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(s.suggestions.iter().all(|x| x.theme_id != login.id));
    for text in
        ["モバイルアプリが落ちる", "モバイルアプリがすぐ落ちます", "モバイルアプリが起動しない", "全然関係ない話"]
    {
        create_item(&mut v, item(&a, text, pb::Department::Product, 2)).await;
    }
    let c = v
        .suggest_candidate_themes(pb::SuggestCandidateThemesRequest { max_candidates: 5, min_items: 3 })
        .await
        .unwrap()
        .into_inner()
        .candidates;
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!((c[0].item_ids.len(), c[0].accounts), (3, 1));
    assert!(c[0].top_terms.iter().any(|t| t.contains("モバ") || t.contains("アプ")), "{:?}", c[0].top_terms);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn voice_settings_are_the_tenants() {
    let app = spawn().await;
    let mut v = voice(&app);
    let s = v.get_voice_settings(pb::GetVoiceSettingsRequest {}).await.unwrap().into_inner();
    assert_eq!((s.require_decision, s.min_similarity, s.digest_time.as_str()), (false, Some(0.05), "08:00"));
    let s = v
        .update_voice_settings(pb::UpdateVoiceSettingsRequest {
            settings: Some(pb::VoiceSettings {
                require_decision: true,
                digest_time: "07:30".into(),
                weights: Some(pb::RankWeights { arr: Some(1.0), ..Default::default() }),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["require_decision".into(), "digest_time".into(), "weights".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((s.require_decision, s.digest_time.as_str(), s.weights.unwrap().arr), (true, "07:30", Some(1.0)));
    let e = v
        .update_voice_settings(pb::UpdateVoiceSettingsRequest {
            settings: Some(pb::VoiceSettings {
                digest_time: "25:00".into(),
                min_similarity: Some(2.0),
                weights: Some(pb::RankWeights { cost: Some(-1.0), ..Default::default() }),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["digest_time".into(), "min_similarity".into(), "weights".into()],
            }),
        })
        .await
        .unwrap_err();
    let fields: Vec<_> = violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["settings.digest_time", "settings.min_similarity", "settings.weights.cost"]);
    let mut other = voice_as(&app, "globex", Role::Admin);
    assert!(!other.get_voice_settings(pb::GetVoiceSettingsRequest {}).await.unwrap().into_inner().require_decision);
    app.stop().await.unwrap();
}
