//! Campaigns: who is invited, the throttle, schedules, delivery, bad input.

use std::time::Duration;

use banso_events::Payload;
use banso_proto::{accounts as apb, events as ev, feedback as pb, types as tpb};
use tonic::Code;

use crate::common::*;

/// Two accounts with a manager and a practitioner each, one without
/// contacts; a campaign to managers of all three.
#[tokio::test]
async fn a_campaign_invites_the_contacts_it_selects_once_each() {
    let app = spawn().await;
    let mut c = admin(&app);
    let (a, b, empty) = (account("Alpha", "retail"), account("Beta", "finance"), account("Empty", "retail"));
    let mut managers = Vec::new();
    for x in [&a, &b, &empty] {
        publish_account(&app, TENANT, x).await;
    }
    for x in [&a, &b] {
        let m = contact(x, &format!("{} Manager", x.name), apb::ContactLevel::Manager);
        publish_contact(&app, TENANT, &m).await;
        publish_contact(&app, TENANT, &contact(x, &format!("{} User", x.name), apb::ContactLevel::Practitioner)).await;
        managers.push(m);
    }
    settle(&app, TENANT).await;
    let s = create_survey(&mut c, survey("NPS", pb::SurveyKind::Nps)).await;
    let campaign = create_campaign(
        &mut c,
        pb::Campaign {
            contacts: Some(pb::ContactSelector {
                levels: vec![apb::ContactLevel::Manager as i32],
                ..Default::default()
            }),
            ..campaign_to(&s, &[&a, &b, &empty])
        },
    )
    .await;
    assert_eq!(campaign.state, pb::CampaignState::Active as i32);
    let counts = campaign.counts.unwrap();
    assert_eq!((counts.invited, counts.throttled, counts.accounts_without_contacts), (2, 0, 1));
    assert!(campaign.close_time.is_some(), "a one-off campaign closes when its tokens expire");
    let inv = invitations(&mut c, &campaign.id).await;
    let mut contacts: Vec<_> = inv.iter().map(|i| i.contact_id.clone()).collect();
    contacts.sort();
    let mut expected: Vec<_> = managers.iter().map(|m| m.id.clone()).collect();
    expected.sort();
    assert_eq!(contacts, expected);
    for i in &inv {
        assert_eq!(i.status, pb::InvitationStatus::Sent as i32);
        assert!(i.answer_url.ends_with(&i.token) && i.answer_url.starts_with("/v1/public/surveyForms/"), "{i:?}");
        assert!(i.email.ends_with(".example"));
    }
    // Delivery: marked once; a second mark and an unknown id count nothing.
    let ids = vec![inv[0].id.clone(), uuid::Uuid::now_v7().to_string()];
    let r = c
        .mark_invitations_delivered(pb::MarkInvitationsDeliveredRequest {
            campaign_id: campaign.id.clone(),
            invitation_ids: ids.clone(),
            deliver_time: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.marked, 1);
    let r = c
        .mark_invitations_delivered(pb::MarkInvitationsDeliveredRequest {
            campaign_id: campaign.id.clone(),
            invitation_ids: ids,
            deliver_time: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.marked, 0);
    let delivered = c
        .list_invitations(pb::ListInvitationsRequest {
            campaign_id: campaign.id.clone(),
            status: pb::InvitationStatus::Delivered as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(delivered.invitations.len(), 1);
    let got = c.get_campaign(pb::GetCampaignRequest { id: campaign.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got.counts.unwrap().delivered, 1);
    // Closing stops it; closing again changes nothing.
    let closed = c.close_campaign(pb::CloseCampaignRequest { id: campaign.id.clone() }).await.unwrap().into_inner();
    assert_eq!(closed.state, pb::CampaignState::Closed as i32);
    let again = c.close_campaign(pb::CloseCampaignRequest { id: campaign.id.clone() }).await.unwrap().into_inner();
    assert_eq!(again.close_time, closed.close_time);
    // Another tenant sees nothing; a viewer cannot list the tokens.
    let mut other = client(&app, "globex", Role::Admin);
    for e in [
        other.get_campaign(pb::GetCampaignRequest { id: campaign.id.clone() }).await.unwrap_err(),
        other
            .list_invitations(pb::ListInvitationsRequest { campaign_id: campaign.id.clone(), ..Default::default() })
            .await
            .unwrap_err(),
        other
            .mark_invitations_delivered(pb::MarkInvitationsDeliveredRequest {
                campaign_id: campaign.id.clone(),
                invitation_ids: vec![inv[1].id.clone()],
                deliver_time: None,
            })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(e.code(), Code::NotFound, "{e:?}");
    }
    let mut viewer = client(&app, TENANT, Role::Viewer);
    let e = viewer
        .list_invitations(pb::ListInvitationsRequest { campaign_id: campaign.id.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    app.stop().await.unwrap();
}

/// A contact invited to an NPS survey is not invited to another within 90
/// days (skipped and counted, across campaigns); a CES survey is another
/// kind; a throttle of 0 days lets them through.
#[tokio::test]
async fn the_throttle_skips_and_counts_recently_invited_contacts() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = account("Alpha", "retail");
    publish_account(&app, TENANT, &a).await;
    publish_contact(&app, TENANT, &contact(&a, "Ann", apb::ContactLevel::Manager)).await;
    publish_contact(&app, TENANT, &contact(&a, "Bob", apb::ContactLevel::Executive)).await;
    settle(&app, TENANT).await;
    let nps = create_survey(&mut c, survey("NPS", pb::SurveyKind::Nps)).await;
    let nps2 = create_survey(&mut c, survey("NPS again", pb::SurveyKind::Nps)).await;
    let ces = create_survey(&mut c, survey("CES", pb::SurveyKind::Ces)).await;
    let first = create_campaign(&mut c, campaign_to(&nps, &[&a])).await;
    assert_eq!(first.counts.unwrap().invited, 2);
    let second = create_campaign(&mut c, campaign_to(&nps2, &[&a])).await.counts.unwrap();
    assert_eq!((second.invited, second.throttled), (0, 2));
    let third = create_campaign(&mut c, campaign_to(&nps2, &[&a])).await;
    assert!(invitations(&mut c, &third.id).await.is_empty(), "a skip is not an invitation");
    let other_kind = create_campaign(&mut c, campaign_to(&ces, &[&a])).await.counts.unwrap();
    assert_eq!((other_kind.invited, other_kind.throttled), (2, 0));
    c.update_feedback_settings(pb::UpdateFeedbackSettingsRequest {
        settings: Some(pb::FeedbackSettings {
            throttles: vec![pb::KindThrottle { kind: pb::SurveyKind::Nps as i32, days: 0 }],
        }),
    })
    .await
    .unwrap();
    let unthrottled = create_campaign(&mut c, campaign_to(&nps2, &[&a])).await.counts.unwrap();
    assert_eq!((unthrottled.invited, unthrottled.throttled), (2, 0));
    app.stop().await.unwrap();
}

/// A campaign to a segment invites its members as the segment's CEL
/// expression decides on the projection.
#[tokio::test]
async fn a_segment_selects_its_members() {
    let app = spawn().await;
    let mut c = admin(&app);
    let (retail, finance) = (account("Shop", "retail"), account("Bank", "finance"));
    for x in [&retail, &finance] {
        publish_account(&app, TENANT, x).await;
        publish_contact(&app, TENANT, &contact(x, "Pat", apb::ContactLevel::Manager)).await;
    }
    let segment = uuid::Uuid::now_v7().to_string();
    publish(
        &app,
        TENANT,
        "accounts",
        Payload::SegmentChanged(ev::SegmentChanged {
            change: ev::segment_changed::Change::Created as i32,
            segment: Some(apb::Segment {
                id: segment.clone(),
                display_name: "Retail".into(),
                expression: "account.industry == 'retail'".into(),
                ..Default::default()
            }),
        }),
    )
    .await;
    settle(&app, TENANT).await;
    let s = create_survey(&mut c, survey("CSAT", pb::SurveyKind::Csat)).await;
    let campaign = create_campaign(&mut c, pb::Campaign { segment_id: segment.clone(), ..campaign_to(&s, &[]) }).await;
    let inv = invitations(&mut c, &campaign.id).await;
    assert_eq!(inv.iter().map(|i| i.account_id.as_str()).collect::<Vec<_>>(), [retail.id.as_str()]);
    // A segment the projection has not seen is NOT_FOUND.
    let e = c
        .create_campaign(pb::CreateCampaignRequest {
            campaign: Some(pb::Campaign { segment_id: uuid::Uuid::now_v7().to_string(), ..campaign_to(&s, &[]) }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    app.stop().await.unwrap();
}

/// A campaign sent later is SCHEDULED until the sender's round reaches it;
/// a standing campaign invites each account when its renewal comes within
/// its days, and a later account when its own day comes.
#[tokio::test]
async fn scheduled_and_standing_campaigns_are_sent_by_the_sender() {
    let app =
        spawn_with(&[("BANSO_FEEDBACK_SEND_TICK_SECS", "1"), ("BANSO_FEEDBACK_STANDING_INTERVAL_SECS", "1")]).await;
    let mut c = admin(&app);
    let today = chrono::Utc::now().date_naive();
    let date = |days: i64| {
        let d = today + chrono::Duration::days(days);
        use chrono::Datelike as _;
        Some(tpb::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 })
    };
    let soon = apb::Account { renewal_date: date(10), ..account("Soon", "retail") };
    let later = apb::Account { renewal_date: date(200), ..account("Later", "retail") };
    for x in [&soon, &later] {
        publish_account(&app, TENANT, x).await;
        publish_contact(&app, TENANT, &contact(x, "Pat", apb::ContactLevel::Manager)).await;
    }
    settle(&app, TENANT).await;
    let s = create_survey(&mut c, survey("Renewal CES", pb::SurveyKind::Ces)).await;
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let scheduled = create_campaign(
        &mut c,
        pb::Campaign {
            send_time: Some(pbjson_types::Timestamp { seconds: at.timestamp(), nanos: 0 }),
            ..campaign_to(&s, &[&soon])
        },
    )
    .await;
    assert_eq!(scheduled.state, pb::CampaignState::Scheduled as i32);
    assert_eq!(scheduled.counts.unwrap().invited, 0);
    until("the scheduled campaign is sent", || {
        let mut c = c.clone();
        let id = scheduled.id.clone();
        async move {
            let got = c.get_campaign(pb::GetCampaignRequest { id }).await.unwrap().into_inner();
            (got.state == pb::CampaignState::Active as i32 && got.counts.unwrap().invited == 1).then_some(())
        }
    })
    .await;
    // 30 days before renewal; a different kind so the throttle stays out of it.
    let nps = create_survey(&mut c, survey("Renewal NPS", pb::SurveyKind::Nps)).await;
    let standing = create_campaign(
        &mut c,
        pb::Campaign {
            standing: Some(pb::StandingSchedule { days_before_renewal: 30, ..Default::default() }),
            ..campaign_to(&nps, &[])
        },
    )
    .await;
    assert!(standing.close_time.is_none());
    let inv = invitations(&mut c, &standing.id).await;
    assert_eq!(inv.iter().map(|i| i.account_id.as_str()).collect::<Vec<_>>(), [soon.id.as_str()]);
    // Later renews sooner now: the next run invites it too, and Soon not again.
    publish(
        &app,
        TENANT,
        "accounts",
        Payload::AccountUpdated(ev::AccountUpdated {
            account: Some(apb::Account { renewal_date: date(5), ..later.clone() }),
            changed_fields: vec!["renewal_date".into()],
            ..Default::default()
        }),
    )
    .await;
    until("the standing campaign invites the account that came due", || {
        let mut c = c.clone();
        let id = standing.id.clone();
        async move { (invitations(&mut c, &id).await.len() == 2).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(invitations(&mut c, &standing.id).await.len(), 2);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn every_bad_field_of_a_campaign_is_named() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = account("Alpha", "retail");
    publish_account(&app, TENANT, &a).await;
    settle(&app, TENANT).await;
    let s = create_survey(&mut c, survey("NPS", pb::SurveyKind::Nps)).await;
    let past = pbjson_types::Timestamp { seconds: 1_000_000_000, nanos: 0 };
    let far = pbjson_types::Timestamp { seconds: chrono::Utc::now().timestamp() + 400 * 86_400, nanos: 0 };
    let bad = pb::Campaign {
        survey_id: "x".into(),
        display_name: String::new(),
        segment_id: uuid::Uuid::now_v7().to_string(),
        account_ids: vec![a.id.clone(), a.id.clone(), "nope".into()],
        contacts: Some(pb::ContactSelector { levels: vec![0, 9], departments: vec![" ".into()], ..Default::default() }),
        send_time: Some(far),
        standing: Some(pb::StandingSchedule::default()),
        token_valid_days: 91,
        close_time: Some(past),
        ..Default::default()
    };
    let e = c
        .create_campaign(pb::CreateCampaignRequest { campaign: Some(bad), request_id: String::new() })
        .await
        .unwrap_err();
    let fields: Vec<String> = violations(&e).into_iter().map(|(f, _)| f).collect();
    for f in [
        "campaign.survey_id",
        "campaign.display_name",
        "campaign.account_ids[1]",
        "campaign.account_ids[2]",
        "campaign.account_ids",
        "campaign.contacts.levels[0]",
        "campaign.contacts.levels[1]",
        "campaign.contacts.departments[0]",
        "campaign.send_time",
        "campaign.standing",
        "campaign.token_valid_days",
        "campaign.close_time",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
    }
    let both = pb::StandingSchedule {
        after_stage: tpb::LifecycleStage::Adoption as i32,
        days_before_renewal: 30,
        ..Default::default()
    };
    let e = c
        .create_campaign(pb::CreateCampaignRequest {
            campaign: Some(pb::Campaign { standing: Some(both), ..campaign_to(&s, &[]) }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_violation(&e, "campaign.standing");
    // Unknown survey and account: NOT_FOUND, as is another tenant's survey.
    for campaign in [
        pb::Campaign { survey_id: uuid::Uuid::now_v7().to_string(), ..campaign_to(&s, &[]) },
        pb::Campaign { account_ids: vec![uuid::Uuid::now_v7().to_string()], ..campaign_to(&s, &[]) },
    ] {
        let e = c
            .create_campaign(pb::CreateCampaignRequest { campaign: Some(campaign), request_id: String::new() })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{e:?}");
    }
    let mut other = client(&app, "globex", Role::Admin);
    let e = other
        .create_campaign(pb::CreateCampaignRequest { campaign: Some(campaign_to(&s, &[])), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Idempotent: the same request_id gives the same campaign and invites once.
    let req = pb::CreateCampaignRequest { campaign: Some(campaign_to(&s, &[&a])), request_id: "c-1".into() };
    let x = c.create_campaign(req.clone()).await.unwrap().into_inner();
    let y = c.create_campaign(req).await.unwrap().into_inner();
    assert_eq!(x.id, y.id);
    let e = c
        .mark_invitations_delivered(pb::MarkInvitationsDeliveredRequest {
            campaign_id: x.id.clone(),
            invitation_ids: vec![],
            deliver_time: Some(pbjson_types::Timestamp { seconds: chrono::Utc::now().timestamp() + 86_400, nanos: 0 }),
        })
        .await
        .unwrap_err();
    let fields: Vec<String> = violations(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["invitation_ids", "deliver_time"]);
    let e = c
        .list_invitations(pb::ListInvitationsRequest { campaign_id: x.id.clone(), status: 99, ..Default::default() })
        .await
        .unwrap_err();
    assert_violation(&e, "status");
    app.stop().await.unwrap();
}

/// A campaign delivered through a Playbooks webhook endpoint announces
/// each invitation (with its answer link) for Playbooks' outreach; the
/// OutreachSent that comes back for it marks it delivered, and outreach
/// for anything else changes nothing.
#[tokio::test]
async fn invitations_delivered_through_playbooks_outreach() {
    let app = spawn().await;
    let issued = collect(&app, "banso.feedback.survey_invitation_issued");
    let mut c = admin(&app);
    let a = account("Alpha", "retail");
    publish_account(&app, TENANT, &a).await;
    let ann = contact(&a, "Ann", apb::ContactLevel::Manager);
    publish_contact(&app, TENANT, &ann).await;
    settle(&app, TENANT).await;
    let s = create_survey(&mut c, pb::Survey { language: "ja".into(), ..survey("CES", pb::SurveyKind::Ces) }).await;
    let endpoint = uuid::Uuid::now_v7().to_string();
    let campaign =
        create_campaign(&mut c, pb::Campaign { delivery_endpoint_id: endpoint.clone(), ..campaign_to(&s, &[&a]) })
            .await;
    assert_eq!(campaign.delivery_endpoint_id, endpoint);
    let inv = invitations(&mut c, &campaign.id).await.pop().unwrap();
    let got = until("the invitation is announced", || {
        let issued = issued.clone();
        async move { issued.lock().unwrap().first().cloned() }
    })
    .await;
    let Some(Payload::SurveyInvitationIssued(e)) = got.payload else { panic!("{got:?}") };
    assert_eq!(
        (e.invitation_id.as_str(), e.contact_id.as_str(), e.endpoint_id.as_str()),
        (inv.id.as_str(), ann.id.as_str(), endpoint.as_str())
    );
    assert_eq!((e.contact_name.as_str(), e.email.as_str(), e.language.as_str()), ("Ann", inv.email.as_str(), "ja"));
    assert_eq!(e.answer_url, inv.answer_url);
    assert!(e.question.contains("簡単"), "{}", e.question);
    // Outreach for something else, then for this invitation.
    let sent = |correlation: String| {
        Payload::OutreachSent(ev::OutreachSent {
            delivery_id: uuid::Uuid::now_v7().to_string(),
            account_id: a.id.clone(),
            contact_id: ann.id.clone(),
            endpoint_id: endpoint.clone(),
            sent_time: Some(pbjson_types::Timestamp { seconds: chrono::Utc::now().timestamp(), nanos: 0 }),
            attempts: 1,
            correlation_id: correlation,
            ..Default::default()
        })
    };
    publish(&app, TENANT, "playbooks", sent(String::new())).await;
    publish(&app, TENANT, "playbooks", sent(format!("survey_invitation:{}", uuid::Uuid::now_v7()))).await;
    publish(&app, TENANT, "playbooks", sent(format!("survey_invitation:{}", inv.id))).await;
    until("the invitation is delivered", || {
        let mut c = c.clone();
        let id = campaign.id.clone();
        async move {
            let got = c.get_campaign(pb::GetCampaignRequest { id }).await.unwrap().into_inner();
            (got.counts.unwrap().delivered == 1).then_some(())
        }
    })
    .await;
    assert_eq!(invitations(&mut c, &campaign.id).await[0].status, pb::InvitationStatus::Delivered as i32);
    // A campaign the caller delivers announces nothing.
    let nps = create_survey(&mut c, survey("NPS", pb::SurveyKind::Nps)).await;
    create_campaign(&mut c, campaign_to(&nps, &[&a])).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(issued.lock().unwrap().len(), 1);
    let e = c
        .create_campaign(pb::CreateCampaignRequest {
            campaign: Some(pb::Campaign { delivery_endpoint_id: "nope".into(), ..campaign_to(&nps, &[&a]) }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_violation(&e, "campaign.delivery_endpoint_id");
    app.stop().await.unwrap();
}

/// Playbooks' OutreachFailed for an invitation shows it FAILED, with why,
/// in the listing, its filter and the campaign's counts — not SENT
/// forever; a redelivery that succeeds makes it DELIVERED, and a failure
/// that comes after the delivery changes nothing.
#[tokio::test]
async fn an_invitation_whose_outreach_failed_shows_failed_until_delivered() {
    let app = spawn().await;
    let mut c = admin(&app);
    let a = account("Alpha", "retail");
    publish_account(&app, TENANT, &a).await;
    let ann = contact(&a, "Ann", apb::ContactLevel::Manager);
    let bob = contact(&a, "Bob", apb::ContactLevel::Practitioner);
    publish_contact(&app, TENANT, &ann).await;
    publish_contact(&app, TENANT, &bob).await;
    settle(&app, TENANT).await;
    let s = create_survey(&mut c, survey("CES", pb::SurveyKind::Ces)).await;
    let endpoint = uuid::Uuid::now_v7().to_string();
    let campaign =
        create_campaign(&mut c, pb::Campaign { delivery_endpoint_id: endpoint.clone(), ..campaign_to(&s, &[&a]) })
            .await;
    let all = invitations(&mut c, &campaign.id).await;
    assert_eq!(all.len(), 2, "{all:?}");
    let (failing, other) = (all[0].clone(), all[1].clone());
    let failed = |correlation: String, error: &str| {
        Payload::OutreachFailed(ev::OutreachFailed {
            delivery_id: uuid::Uuid::now_v7().to_string(),
            account_id: a.id.clone(),
            contact_id: failing.contact_id.clone(),
            endpoint_id: endpoint.clone(),
            attempts: 5,
            last_error: error.into(),
            correlation_id: correlation,
            ..Default::default()
        })
    };
    let counts = async |c: &mut Client| {
        c.get_campaign(pb::GetCampaignRequest { id: campaign.id.clone() }).await.unwrap().into_inner().counts.unwrap()
    };
    // A failure of something else, then of this invitation (twice: the
    // same event redelivered).
    publish(&app, TENANT, "playbooks", failed(format!("survey_invitation:{}", uuid::Uuid::now_v7()), "x")).await;
    let env = publish(&app, TENANT, "playbooks", failed(format!("survey_invitation:{}", failing.id), "HTTP 503")).await;
    publish_envelope(&app, &env).await;
    until("the invitation shows failed", || {
        let mut c = c.clone();
        async move { (counts(&mut c).await.failed == 1).then_some(()) }
    })
    .await;
    let by_id = |xs: Vec<pb::Invitation>, id: &str| xs.into_iter().find(|x| x.id == id).unwrap();
    let got = by_id(invitations(&mut c, &campaign.id).await, &failing.id);
    assert_eq!(got.status, pb::InvitationStatus::Failed as i32);
    assert_eq!(got.delivery_error, "HTTP 503 (5 attempts)");
    assert!(got.fail_time.is_some() && got.deliver_time.is_none(), "{got:?}");
    assert_eq!(by_id(invitations(&mut c, &campaign.id).await, &other.id).status, pb::InvitationStatus::Sent as i32);
    let lister = c.clone();
    let listed = |status: pb::InvitationStatus| {
        let mut c = lister.clone();
        let id = campaign.id.clone();
        async move {
            c.list_invitations(pb::ListInvitationsRequest {
                campaign_id: id,
                status: status as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .invitations
            .into_iter()
            .map(|x| x.id)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(pb::InvitationStatus::Failed).await, std::slice::from_ref(&failing.id));
    assert_eq!(listed(pb::InvitationStatus::Sent).await, std::slice::from_ref(&other.id));
    let n = counts(&mut c).await;
    assert_eq!((n.invited, n.delivered, n.failed), (2, 0, 1));

    // Playbooks' redelivery gets through: delivered, no longer failed.
    publish(
        &app,
        TENANT,
        "playbooks",
        Payload::OutreachSent(ev::OutreachSent {
            delivery_id: uuid::Uuid::now_v7().to_string(),
            account_id: a.id.clone(),
            contact_id: failing.contact_id.clone(),
            endpoint_id: endpoint.clone(),
            sent_time: Some(pbjson_types::Timestamp { seconds: chrono::Utc::now().timestamp(), nanos: 0 }),
            attempts: 1,
            correlation_id: format!("survey_invitation:{}", failing.id),
            ..Default::default()
        }),
    )
    .await;
    until("the invitation is delivered", || {
        let mut c = c.clone();
        async move { (counts(&mut c).await.delivered == 1).then_some(()) }
    })
    .await;
    // A failure after the delivery (another message's) changes nothing;
    // the other invitation's failure, published after it on the same
    // account's stream, shows when both were read.
    publish(&app, TENANT, "playbooks", failed(format!("survey_invitation:{}", failing.id), "HTTP 500")).await;
    publish(&app, TENANT, "playbooks", failed(format!("survey_invitation:{}", other.id), "HTTP 410")).await;
    until("the other invitation shows failed", || {
        let mut c = c.clone();
        async move { (counts(&mut c).await.failed == 1).then_some(()) }
    })
    .await;
    let got = by_id(invitations(&mut c, &campaign.id).await, &failing.id);
    assert_eq!(got.status, pb::InvitationStatus::Delivered as i32);
    let n = counts(&mut c).await;
    assert_eq!((n.delivered, n.failed), (1, 1));
    assert_eq!(listed(pb::InvitationStatus::Failed).await, std::slice::from_ref(&other.id));
    app.stop().await.unwrap();
}
