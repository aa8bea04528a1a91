//! Low touch: playbooks enrol accounts in programmes; people manage them.

use banso_proto::{health::Band, playbooks as pb, types as tpb};

use crate::common::*;

type Programmes = pb::programmes_service_client::ProgrammesServiceClient<
    tonic::codegen::InterceptedService<tonic::transport::Channel, banso_testkit::Bearer>,
>;

fn programmes(app: &banso_testkit::TestApp, tenant: &str, role: Role) -> Programmes {
    pb::programmes_service_client::ProgrammesServiceClient::with_interceptor(
        app.channel.clone(),
        app.bearer(tenant, role),
    )
}

#[tokio::test]
async fn a_playbook_enrols_low_touch_accounts_until_the_programme_is_full() {
    let app = spawn().await;
    let mut admin_p = programmes(&app, TENANT, Role::Admin);
    let webinars = admin_p
        .create_programme(pb::CreateProgrammeRequest {
            programme: Some(pb::Programme {
                display_name: "Recovery webinars".into(),
                kind: pb::ProgrammeKind::WebinarSeries as i32,
                capacity: 1,
                open: true,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut c = admin(&app);
    let mut p = red_playbook("Teach the red ones");
    p.actions = vec![
        open_cta("call {{account.name}}", pb::CtaPriority::High, &[tpb::TouchModel::High]),
        pb::Action {
            touch_models: vec![tpb::TouchModel::Low as i32],
            kind: Some(pb::action::Kind::Enrol(pb::EnrolAction { programme_id: webinars.id.clone() })),
        },
    ];
    let p = create_enabled(&mut c, p).await;
    let first = account("First", "ann", tpb::TouchModel::Low);
    let second = account("Second", "ann", tpb::TouchModel::Low);
    for a in [&first, &second] {
        known_account(&app, TENANT, a).await;
        publish(&app, TENANT, "health", score_changed(&a.id, Some((50.0, Band::Yellow)), (20.0, Band::Red))).await;
    }
    let f = until("both fire", || {
        let mut c = c.clone();
        let id = p.id.clone();
        async move {
            let f = c
                .list_firings(pb::ListFiringsRequest { playbook_id: id, ..Default::default() })
                .await
                .unwrap()
                .into_inner()
                .firings;
            (f.len() == 2).then_some(f)
        }
    })
    .await;
    let of = |a: &str| f.iter().find(|x| x.account_id == a).unwrap().actions.clone();
    let one = of(&first.id);
    assert_eq!(one[0].status, pb::ActionStatus::Skipped as i32, "no CTA for low touch");
    assert_eq!(one[1].status, pb::ActionStatus::Done as i32);
    let two = of(&second.id);
    assert_eq!(two[1].status, pb::ActionStatus::Failed as i32);
    assert_eq!(two[1].detail, "programme Recovery webinars is full (1 of 1)");
    let enrolled = admin_p
        .list_enrolments(pb::ListEnrolmentsRequest { programme_id: webinars.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .enrolments;
    assert_eq!(enrolled.len(), 1);
    assert_eq!((enrolled[0].account_id.as_str(), enrolled[0].playbook_id.as_str()), (first.id.as_str(), p.id.as_str()));
    assert_eq!(enrolled[0].status, pb::EnrolmentStatus::Enrolled as i32);

    // By hand: full until the first withdraws.
    let mut csm = programmes(&app, TENANT, Role::Csm);
    let full = csm
        .enrol_account(pb::EnrolAccountRequest { programme_id: webinars.id.clone(), account_id: second.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(full.code(), tonic::Code::FailedPrecondition);
    assert_eq!(reason(&full), "PROGRAMME_REFUSES");
    let withdrawn = csm
        .update_enrolment_status(pb::UpdateEnrolmentStatusRequest {
            id: enrolled[0].id.clone(),
            status: pb::EnrolmentStatus::Withdrawn as i32,
            etag: enrolled[0].etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(withdrawn.status, pb::EnrolmentStatus::Withdrawn as i32);
    let back = csm
        .update_enrolment_status(pb::UpdateEnrolmentStatusRequest {
            id: enrolled[0].id.clone(),
            status: pb::EnrolmentStatus::Active as i32,
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(back.code(), tonic::Code::FailedPrecondition, "withdrawn is final");
    let e = csm
        .enrol_account(pb::EnrolAccountRequest { programme_id: webinars.id.clone(), account_id: second.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(e.enrolled_by, "test-user");
    // Enrolling again returns the same enrolment.
    let again = csm
        .enrol_account(pb::EnrolAccountRequest { programme_id: webinars.id.clone(), account_id: second.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, e.id);
    let got = csm.get_programme(pb::GetProgrammeRequest { id: webinars.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got.enrolled, 1);

    // Closed: refused, and the simulation says it would enrol (it writes nothing).
    let closed = admin_p
        .update_programme(pb::UpdateProgrammeRequest {
            programme: Some(pb::Programme {
                id: webinars.id.clone(),
                open: false,
                etag: got.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["open"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!closed.open);
    let third = account("Third", "ann", tpb::TouchModel::Low);
    known_account(&app, TENANT, &third).await;
    let e = csm
        .enrol_account(pb::EnrolAccountRequest { programme_id: webinars.id.clone(), account_id: third.id.clone() })
        .await
        .unwrap_err();
    assert!(e.message().contains("is closed"), "{e:?}");

    // Tenancy, roles and bad input.
    let mut other = programmes(&app, "globex", Role::Admin);
    assert_eq!(
        other.get_programme(pb::GetProgrammeRequest { id: webinars.id.clone() }).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    let mut viewer = programmes(&app, TENANT, Role::Viewer);
    let e = viewer
        .enrol_account(pb::EnrolAccountRequest { programme_id: webinars.id.clone(), account_id: third.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    let e = admin_p
        .create_programme(pb::CreateProgrammeRequest {
            programme: Some(pb::Programme { capacity: -1, kind: 99, ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    for field in ["programme.display_name", "programme.kind", "programme.capacity"] {
        assert_violation(&e, field);
    }
    let mut bad = red_playbook("bad enrol");
    bad.actions = vec![pb::Action {
        touch_models: vec![],
        kind: Some(pb::action::Kind::Enrol(pb::EnrolAction { programme_id: "x".into() })),
    }];
    let e = c
        .create_playbook(pb::CreatePlaybookRequest { playbook: Some(bad), request_id: String::new() })
        .await
        .unwrap_err();
    assert_violation(&e, "playbook.actions[0].enrol.programme_id");
}
