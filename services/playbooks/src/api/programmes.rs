//! Programmes and enrolments on the wire.

use banso_kit::{
    Violations,
    auth::Access,
    etag, field_paths, fieldmask,
    paging::{self, Paged, QueryKey},
    rpc::{Rpc, handle},
    server::Kit,
    wire,
};
use banso_proto::playbooks as pb;
use tonic::Request;
use uuid::Uuid;

use crate::{
    app::{App, programmes::ProgrammeFields},
    domain::programme::{Enrolment, Kind, Programme, Status},
};

pub struct ProgrammesApi {
    app: App,
    kit: Kit,
}

impl ProgrammesApi {
    pub(crate) fn new(app: App, kit: Kit) -> Self {
        ProgrammesApi { app, kit }
    }
}

field_paths! {
    /// What UpdateProgramme may change.
    pub(crate) enum ProgrammeField {
        DisplayName = "display_name",
        Description = "description",
        Kind = "kind",
        Capacity = "capacity",
        Open = "open",
    }
}

fn kind_from(raw: i32) -> Option<Kind> {
    match pb::ProgrammeKind::try_from(raw).ok()? {
        pb::ProgrammeKind::WebinarSeries => Some(Kind::WebinarSeries),
        pb::ProgrammeKind::Course => Some(Kind::Course),
        pb::ProgrammeKind::OfficeHours => Some(Kind::OfficeHours),
        pb::ProgrammeKind::UserGroup => Some(Kind::UserGroup),
        pb::ProgrammeKind::Other => Some(Kind::Other),
        pb::ProgrammeKind::Unspecified => None,
    }
}

fn kind_proto(k: Kind) -> pb::ProgrammeKind {
    match k {
        Kind::WebinarSeries => pb::ProgrammeKind::WebinarSeries,
        Kind::Course => pb::ProgrammeKind::Course,
        Kind::OfficeHours => pb::ProgrammeKind::OfficeHours,
        Kind::UserGroup => pb::ProgrammeKind::UserGroup,
        Kind::Other => pb::ProgrammeKind::Other,
    }
}

fn status_proto(s: Status) -> pb::EnrolmentStatus {
    match s {
        Status::Enrolled => pb::EnrolmentStatus::Enrolled,
        Status::Active => pb::EnrolmentStatus::Active,
        Status::Completed => pb::EnrolmentStatus::Completed,
        Status::Withdrawn => pb::EnrolmentStatus::Withdrawn,
    }
}

fn to_proto((p, enrolled): &(Programme, i64)) -> pb::Programme {
    pb::Programme {
        id: p.id.to_string(),
        display_name: p.display_name.clone(),
        description: p.description.clone(),
        kind: kind_proto(p.kind) as i32,
        capacity: p.capacity,
        open: p.open,
        enrolled: i32::try_from(*enrolled).unwrap_or(i32::MAX),
        create_time: Some(wire::timestamp(p.create_time)),
        update_time: Some(wire::timestamp(p.update_time)),
        etag: etag::of(p.version),
    }
}

fn enrolment_proto(e: &Enrolment) -> pb::Enrolment {
    pb::Enrolment {
        id: e.id.to_string(),
        programme_id: e.programme_id.to_string(),
        account_id: e.account_id.to_string(),
        status: status_proto(e.status) as i32,
        playbook_id: e.playbook_id.map(|p| p.to_string()).unwrap_or_default(),
        enrolled_by: e.enrolled_by.clone(),
        create_time: Some(wire::timestamp(e.create_time)),
        update_time: Some(wire::timestamp(e.update_time)),
        etag: etag::of(e.version),
    }
}

fn fields(v: &mut Violations, p: &pb::Programme, mask: &[ProgrammeField]) -> ProgrammeFields {
    let mut f = ProgrammeFields::default();
    for field in mask {
        match field {
            ProgrammeField::DisplayName => {
                wire::required_text(v, "programme.display_name", &p.display_name, 200);
                f.display_name = Some(p.display_name.trim().to_string());
            }
            ProgrammeField::Description => {
                wire::multiline_text(v, "programme.description", &p.description, 2000);
                f.description = Some(p.description.clone());
            }
            ProgrammeField::Kind => {
                f.kind = kind_from(p.kind);
                if f.kind.is_none() {
                    let what = if p.kind == 0 {
                        "is required".to_string()
                    } else {
                        format!("{} is not a programme kind", p.kind)
                    };
                    v.add(
                        "programme.kind",
                        format!(
                            "{what}: use PROGRAMME_KIND_WEBINAR_SERIES, _COURSE, _OFFICE_HOURS, _USER_GROUP or _OTHER"
                        ),
                    );
                }
            }
            ProgrammeField::Capacity => {
                if !(0..=1_000_000).contains(&p.capacity) {
                    v.add("programme.capacity", format!("must be 0 (no limit) to 1000000, got {}", p.capacity));
                }
                f.capacity = Some(p.capacity);
            }
            ProgrammeField::Open => f.open = Some(p.open),
        }
    }
    f
}

#[tonic::async_trait]
impl pb::programmes_service_server::ProgrammesService for ProgrammesApi {
    async fn create_programme(&self, req: Request<pb::CreateProgrammeRequest>) -> Rpc<pb::Programme> {
        handle(req, Access::Admin, async |caller, r| {
            let mut v = Violations::new();
            let request_id = wire::request_id(&mut v, &r.request_id);
            let p = wire::required(&mut v, "programme", r.programme.as_ref());
            let f = p.map(|p| fields(&mut v, p, <ProgrammeField as fieldmask::FieldPath>::ALL));
            let f = v.finish_with(f)?;
            let p = self.app.create_programme(&caller, request_id, f).await?;
            Ok(to_proto(&(p, 0)))
        })
        .await
    }

    async fn get_programme(&self, req: Request<pb::GetProgrammeRequest>) -> Rpc<pb::Programme> {
        handle(req, Access::Read, async |caller, r| {
            let id = wire::uuid("id", &r.id)?;
            Ok(to_proto(&self.app.get_programme(&caller, id).await?))
        })
        .await
    }

    async fn list_programmes(&self, req: Request<pb::ListProgrammesRequest>) -> Rpc<pb::ListProgrammesResponse> {
        handle(req, Access::Read, async |caller, r| {
            let limit = paging::page_size(r.page_size)?;
            let key = QueryKey::new("ListProgrammes", &caller.tenant_id);
            let page: Paged<Uuid> = Paged::new(&self.kit.page_tokens, key, &r.page_token, limit)?;
            let rows = self.app.list_programmes(&caller, page.after, page.fetch()).await?;
            let (rows, next_page_token) = page.page(&self.kit.page_tokens, rows, |(p, _)| p.id)?;
            Ok(pb::ListProgrammesResponse { programmes: rows.iter().map(to_proto).collect(), next_page_token })
        })
        .await
    }

    async fn update_programme(&self, req: Request<pb::UpdateProgrammeRequest>) -> Rpc<pb::Programme> {
        handle(req, Access::Admin, async |caller, r| {
            let mut v = Violations::new();
            let mask = v.take(fieldmask::parse::<ProgrammeField>("update_mask", r.update_mask.as_ref()));
            let p = wire::required(&mut v, "programme", r.programme.as_ref());
            let id = p.and_then(|p| v.take(wire::uuid("programme.id", &p.id)));
            let tag = p.and_then(|p| v.take(etag::parse("programme.etag", &p.etag)));
            let f = p.map(|p| fields(&mut v, p, mask.as_deref().unwrap_or_default()));
            let (id, tag, f) = v.finish_with((id, tag, f))?;
            Ok(to_proto(&self.app.update_programme(&caller, id, tag, f).await?))
        })
        .await
    }

    async fn enrol_account(&self, req: Request<pb::EnrolAccountRequest>) -> Rpc<pb::Enrolment> {
        handle(req, Access::Write, async |caller, r| {
            let mut v = Violations::new();
            let programme = v.take(wire::uuid("programme_id", &r.programme_id));
            let account = v.take(wire::uuid("account_id", &r.account_id));
            let (programme, account) = v.finish_with((programme, account))?;
            Ok(enrolment_proto(&self.app.enrol_account(&caller, programme, account).await?))
        })
        .await
    }

    async fn list_enrolments(&self, req: Request<pb::ListEnrolmentsRequest>) -> Rpc<pb::ListEnrolmentsResponse> {
        handle(req, Access::Read, async |caller, r| {
            let mut v = Violations::new();
            let limit = v.take(paging::page_size(r.page_size));
            let programme = v.take(wire::optional_uuid("programme_id", &r.programme_id));
            let account = v.take(wire::optional_uuid("account_id", &r.account_id));
            let (limit, programme, account) = v.finish_with((limit, programme, account))?;
            let key = QueryKey::new("ListEnrolments", &caller.tenant_id).part(format!("{programme:?}/{account:?}"));
            let page: Paged<Uuid> = Paged::new(&self.kit.page_tokens, key, &r.page_token, limit)?;
            let rows = self.app.list_enrolments(&caller, programme, account, page.after, page.fetch()).await?;
            let (rows, next_page_token) = page.page(&self.kit.page_tokens, rows, |e| e.id)?;
            Ok(pb::ListEnrolmentsResponse { enrolments: rows.iter().map(enrolment_proto).collect(), next_page_token })
        })
        .await
    }

    async fn update_enrolment_status(&self, req: Request<pb::UpdateEnrolmentStatusRequest>) -> Rpc<pb::Enrolment> {
        handle(req, Access::Write, async |caller, r| {
            let mut v = Violations::new();
            let id = v.take(wire::uuid("id", &r.id));
            let status = match pb::EnrolmentStatus::try_from(r.status) {
                Ok(pb::EnrolmentStatus::Active) => Some(Status::Active),
                Ok(pb::EnrolmentStatus::Completed) => Some(Status::Completed),
                Ok(pb::EnrolmentStatus::Withdrawn) => Some(Status::Withdrawn),
                _ => {
                    v.add(
                        "status",
                        format!("{} cannot be set: use ENROLMENT_STATUS_ACTIVE, _COMPLETED or _WITHDRAWN", r.status),
                    );
                    None
                }
            };
            let tag = v.take(etag::parse("etag", &r.etag));
            let (id, status, tag) = v.finish_with((id, status, tag))?;
            Ok(enrolment_proto(&self.app.set_enrolment_status(&caller, id, status, tag).await?))
        })
        .await
    }
}
