//! update_account where Accounts cannot take the change: refused at once
//! when nothing can succeed, retried then failed when Accounts is away.
//! (The happy path runs with Accounts in the same process:
//! tests/tests/playbooks.rs.)

use banso_proto::{playbooks as pb, types as tpb};

use crate::common::*;

async fn queue_update(app: &banso_testkit::TestApp) -> (Client, pb::Playbook, String, String) {
    let mut c = admin(app);
    let account = account("Initech", "csm-1", tpb::TouchModel::High);
    known_account(app, TENANT, &account).await;
    let p = c
        .create_playbook(pb::CreatePlaybookRequest {
            playbook: Some(pb::Playbook {
                display_name: "Tag it".into(),
                trigger: Some(pb::Trigger { kind: Some(pb::trigger::Kind::Manual(Default::default())) }),
                actions: vec![pb::Action {
                    touch_models: vec![],
                    kind: Some(pb::action::Kind::UpdateAccount(pb::UpdateAccountAction {
                        add_tags: vec!["at-risk".into()],
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
    c.enable_playbook(pb::EnablePlaybookRequest { id: p.id.clone(), version: 0, etag: p.etag.clone() }).await.unwrap();
    let fired = c
        .run_playbook(pb::RunPlaybookRequest {
            id: p.id.clone(),
            account_ids: vec![account.id.clone()],
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .firings;
    assert_eq!(fired[0].actions[0].detail, "queued account update: +at-risk");
    (c, p, account.id, fired[0].id.clone())
}

async fn settled(c: &Client, playbook: &str, account: &str, firing: &str) -> pb::ActionOutcome {
    until("the account change settles", || {
        let mut c = c.clone();
        let (playbook, account, firing) = (playbook.to_string(), account.to_string(), firing.to_string());
        async move {
            let r = c
                .list_firings(pb::ListFiringsRequest {
                    playbook_id: playbook,
                    account_id: account,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let a = r.firings.into_iter().find(|f| f.id == firing)?.actions.into_iter().next()?;
            (!a.detail.starts_with("queued")).then_some(a)
        }
    })
    .await
}

#[tokio::test]
async fn a_change_accounts_cannot_take_fails_at_once_with_its_reason() {
    // Only Playbooks is served here: Accounts' API answers UNIMPLEMENTED.
    let app = spawn().await;
    let (c, p, account, firing) = queue_update(&app).await;
    let outcome = settled(&c, &p.id, &account, &firing).await;
    assert_eq!(outcome.status, pb::ActionStatus::Failed as i32, "{}", outcome.detail);
    assert!(outcome.detail.contains("set BANSO_ACCOUNTS_URL"), "{}", outcome.detail);
}

#[tokio::test]
async fn an_unreachable_accounts_is_retried_then_the_change_fails() {
    // A port nothing listens on: every attempt is UNAVAILABLE.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let app = banso_testkit::spawn_with(
        banso_testkit::Options {
            vars: vec![
                ("BANSO_ACCOUNTS_URL".into(), format!("http://{closed}")),
                ("BANSO_PLAYBOOKS_ACCOUNT_UPDATE_MAX_ATTEMPTS".into(), "3".into()),
                ("BANSO_PLAYBOOKS_ACCOUNT_UPDATE_BASE_DELAY_MS".into(), "1".into()),
            ],
            ..Default::default()
        },
        &[&banso_playbooks::SERVICE],
    )
    .await
    .unwrap();
    let (c, p, account, firing) = queue_update(&app).await;
    let outcome = settled(&c, &p.id, &account, &firing).await;
    assert_eq!(outcome.status, pb::ActionStatus::Failed as i32, "{}", outcome.detail);
    assert!(
        outcome.detail.starts_with("gave up after 3 attempts: Accounts answered Unavailable"),
        "{}",
        outcome.detail
    );
}
