//! Playbooks are versioned: an edit makes a draft while the live version runs.

use banso_proto::playbooks as pb;

use crate::common::*;

#[tokio::test]
async fn edits_make_new_versions_and_the_live_one_stays_until_enabled() {
    let app = spawn().await;
    let mut c = admin(&app);
    let created = c
        .create_playbook(pb::CreatePlaybookRequest {
            playbook: Some(red_playbook("Red alert")),
            request_id: "r1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((created.version, created.head_version, created.live_version), (1, 1, 0));
    // A retry with the same request_id returns the first.
    let again = c
        .create_playbook(pb::CreatePlaybookRequest {
            playbook: Some(red_playbook("Red alert")),
            request_id: "r1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, created.id);

    let live = c
        .enable_playbook(pb::EnablePlaybookRequest { id: created.id.clone(), version: 0, etag: created.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(live.live_version, 1);

    let mut edit = live.clone();
    edit.display_name = "Red alert v2".into();
    let draft = c
        .update_playbook(pb::UpdatePlaybookRequest { playbook: Some(edit), update_mask: mask(&["display_name"]) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((draft.version, draft.head_version, draft.live_version), (2, 2, 1));
    assert_eq!(draft.display_name, "Red alert v2");

    // The old version is still there, as it was.
    let v1 = c.get_playbook(pb::GetPlaybookRequest { id: created.id.clone(), version: 1 }).await.unwrap().into_inner();
    assert_eq!(v1.display_name, "Red alert");
    let versions = c
        .list_playbook_versions(pb::ListPlaybookVersionsRequest {
            id: created.id.clone(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(versions.versions.iter().map(|v| v.version).collect::<Vec<_>>(), vec![2]);
    let next = c
        .list_playbook_versions(pb::ListPlaybookVersionsRequest {
            id: created.id.clone(),
            page_size: 1,
            page_token: versions.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.versions.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1]);

    // An update that changes nothing makes no version.
    let same = c
        .update_playbook(pb::UpdatePlaybookRequest {
            playbook: Some(draft.clone()),
            update_mask: mask(&["display_name"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same.head_version, 2);

    // A stale etag is ABORTED.
    let stale = c
        .enable_playbook(pb::EnablePlaybookRequest { id: created.id.clone(), version: 2, etag: created.etag.clone() })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Aborted);
    let enabled = c
        .enable_playbook(pb::EnablePlaybookRequest { id: created.id.clone(), version: 2, etag: same.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(enabled.live_version, 2);

    let listed = c
        .list_playbooks(pb::ListPlaybooksRequest { enabled: Some(true), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.playbooks.len(), 1);
    let disabled = c
        .disable_playbook(pb::DisablePlaybookRequest { id: created.id.clone(), etag: enabled.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(disabled.live_version, 0);
    let listed = c
        .list_playbooks(pb::ListPlaybooksRequest { enabled: Some(true), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.playbooks.is_empty());

    c.delete_playbook(pb::DeletePlaybookRequest { id: created.id.clone(), etag: disabled.etag }).await.unwrap();
    let gone = c.get_playbook(pb::GetPlaybookRequest { id: created.id.clone(), version: 0 }).await.unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn another_tenants_playbook_is_not_found_and_viewers_cannot_write() {
    let app = spawn().await;
    let mut c = admin(&app);
    let p = create_enabled(&mut c, red_playbook("Mine")).await;
    let mut other = client(&app, "globex", Role::Admin);
    let e = other.get_playbook(pb::GetPlaybookRequest { id: p.id.clone(), version: 0 }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e =
        other.disable_playbook(pb::DisablePlaybookRequest { id: p.id.clone(), etag: String::new() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let mut viewer = client(&app, TENANT, Role::Viewer);
    let e = viewer
        .create_playbook(pb::CreatePlaybookRequest { playbook: Some(red_playbook("x")), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    let mut csm = client(&app, TENANT, Role::Csm);
    let e =
        csm.disable_playbook(pb::DisablePlaybookRequest { id: p.id.clone(), etag: String::new() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "playbooks need admin");
    assert!(viewer.get_playbook(pb::GetPlaybookRequest { id: p.id, version: 0 }).await.is_ok());
}
