//! Segments on the wire.

use banso_kit::{
    Result, Violations, auth::Caller, etag, fieldmask, fieldmask::FieldPath as _, paging::QueryKey, server::Kit, wire,
};
use banso_proto::accounts as pb;
use uuid::Uuid;

use super::{
    accounts,
    convert::{Paged, page_size, request_id, required},
};
use crate::{
    app::{CreateSegment, SegmentCount, UpdateSegment},
    domain::{
        Account, TouchModel,
        segment::{self, Segment, SegmentField, SegmentFields},
    },
};

/// The segment fields of `p` named in `mask`, each parsed: the expression
/// must compile (with the line and column of what does not).
fn fields(p: &pb::Segment, mask: &[SegmentField], v: &mut Violations) -> SegmentFields {
    let mut out = SegmentFields {
        display_name: String::new(),
        description: String::new(),
        expression: String::new(),
        forbidden_touch_models: Vec::new(),
    };
    for field in mask {
        match field {
            SegmentField::DisplayName => {
                wire::required_text(v, "segment.display_name", &p.display_name, 200);
                out.display_name = p.display_name.trim().to_owned();
            }
            SegmentField::Description => {
                wire::text(v, "segment.description", &p.description, 2000);
                out.description = p.description.clone();
            }
            SegmentField::Expression => {
                if let Err(e) = segment::compile(&p.expression) {
                    v.add("segment.expression", e.to_string());
                }
                out.expression = p.expression.clone();
            }
            SegmentField::ForbiddenTouchModels => {
                let mut forbidden = Vec::new();
                for (i, raw) in p.forbidden_touch_models.iter().enumerate() {
                    let field = format!("segment.forbidden_touch_models[{i}]");
                    if let Some(t) = wire::touch_model(v, &field, *raw) {
                        if forbidden.contains(&t) {
                            v.add(&field, format!("{} appears more than once", t.as_str()));
                        }
                        forbidden.push(t);
                    }
                }
                if forbidden.len() == TouchModel::ALL.len() {
                    v.add("segment.forbidden_touch_models", "cannot forbid every touch pattern (high, low and tech)");
                }
                forbidden.sort();
                forbidden.dedup();
                out.forbidden_touch_models = forbidden;
            }
        }
    }
    out
}

pub(crate) fn to_proto(s: &Segment) -> pb::Segment {
    pb::Segment {
        id: s.id.to_string(),
        display_name: s.fields.display_name.clone(),
        description: s.fields.description.clone(),
        expression: s.fields.expression.clone(),
        forbidden_touch_models: s.fields.forbidden_touch_models.iter().map(|t| t.to_proto() as i32).collect(),
        create_time: Some(wire::timestamp(s.create_time)),
        update_time: Some(wire::timestamp(s.update_time)),
        etag: etag::of(s.version),
    }
}

pub(crate) fn create(r: pb::CreateSegmentRequest) -> Result<CreateSegment> {
    let mut v = Violations::new();
    let request_id = request_id(&mut v, &r.request_id);
    let fields = required(&mut v, "segment", r.segment.as_ref()).map(|p| fields(p, SegmentField::ALL, &mut v));
    let fields = v.finish_with(fields)?;
    Ok(CreateSegment { request_id, fields })
}

pub(crate) fn update(r: pb::UpdateSegmentRequest) -> Result<UpdateSegment> {
    let mut v = Violations::new();
    let mask = v.take(fieldmask::parse::<SegmentField>("update_mask", r.update_mask.as_ref()));
    let p = required(&mut v, "segment", r.segment.as_ref());
    let id = p.and_then(|p| v.take(wire::uuid("segment.id", &p.id)));
    let etag = p.and_then(|p| v.take(etag::parse("segment.etag", &p.etag)));
    let fields = p.map(|p| fields(p, mask.as_deref().unwrap_or_default(), &mut v));
    let (mask, id, etag, fields) = v.finish_with((mask, id, etag, fields))?;
    Ok(UpdateSegment { id, etag, mask, fields })
}

pub(crate) fn list_page(kit: &Kit, caller: &Caller, r: &pb::ListSegmentsRequest) -> Result<Paged<Uuid>> {
    let mut v = Violations::new();
    let limit = page_size(&mut v, r.page_size);
    let limit = v.finish_with(limit)?;
    Paged::new(&kit.page_tokens, QueryKey::new("ListSegments", &caller.tenant_id), &r.page_token, limit)
}

pub(crate) fn list_reply(kit: &Kit, page: &Paged<Uuid>, rows: Vec<Segment>) -> Result<pb::ListSegmentsResponse> {
    let (rows, next_page_token) = page.page(&kit.page_tokens, rows, |last| last.id)?;
    Ok(pb::ListSegmentsResponse { segments: rows.iter().map(to_proto).collect(), next_page_token })
}

/// An EvaluateSegment request, parsed: its tokens resume the scan after an
/// account.
pub(crate) struct Evaluate {
    pub segment_id: Uuid,
    pub page: Paged<Uuid>,
}

pub(crate) fn evaluate(kit: &Kit, caller: &Caller, r: pb::EvaluateSegmentRequest) -> Result<Evaluate> {
    let mut v = Violations::new();
    let segment_id = v.take(wire::uuid("segment_id", &r.segment_id));
    let limit = page_size(&mut v, r.page_size);
    let (segment_id, limit) = v.finish_with((segment_id, limit))?;
    let key = QueryKey::new("EvaluateSegment", &caller.tenant_id).part(segment_id.as_bytes());
    Ok(Evaluate { segment_id, page: Paged::new(&kit.page_tokens, key, &r.page_token, limit)? })
}

pub(crate) fn evaluate_reply(
    kit: &Kit,
    q: &Evaluate,
    (members, resume): (Vec<Account>, Option<Uuid>),
) -> Result<pb::EvaluateSegmentResponse> {
    Ok(pb::EvaluateSegmentResponse {
        accounts: members.iter().map(accounts::to_proto).collect(),
        next_page_token: q.page.token(&kit.page_tokens, resume.as_ref())?,
    })
}

pub(crate) fn count_reply(c: SegmentCount) -> pb::CountSegmentMembersResponse {
    pb::CountSegmentMembersResponse { evaluated_count: c.evaluated, member_count: c.members, error_count: c.errors }
}

pub(crate) fn membership(r: &pb::CheckSegmentMembershipRequest) -> Result<(Uuid, Uuid)> {
    let mut v = Violations::new();
    let segment_id = v.take(wire::uuid("segment_id", &r.segment_id));
    let account_id = v.take(wire::uuid("account_id", &r.account_id));
    v.finish_with((segment_id, account_id))
}

pub(crate) fn membership_reply(m: std::result::Result<bool, String>) -> pb::CheckSegmentMembershipResponse {
    match m {
        Ok(member) => pb::CheckSegmentMembershipResponse { member, evaluation_error: String::new() },
        Err(e) => pb::CheckSegmentMembershipResponse { member: false, evaluation_error: e },
    }
}
