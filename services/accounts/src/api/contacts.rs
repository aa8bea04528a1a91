//! Contacts on the wire.

use banso_kit::{
    Result, Violations, auth::Caller, etag, fieldmask, fieldmask::FieldPath as _, paging::QueryKey, server::Kit, wire,
};
use banso_proto::accounts as pb;
use uuid::Uuid;

use super::convert::{Paged, external_id, page_size, path, request_id, required};
use crate::{
    app::{CreateContact, UpdateContact},
    domain::{Contact, ContactField, ContactFields, ContactFilter, ContactLevel, validate},
};

fn level_from_proto(v: &mut Violations, field: &str, raw: i32) -> Option<ContactLevel> {
    match pb::ContactLevel::try_from(raw) {
        Ok(pb::ContactLevel::Unspecified) => None,
        Ok(pb::ContactLevel::Executive) => Some(ContactLevel::Executive),
        Ok(pb::ContactLevel::Manager) => Some(ContactLevel::Manager),
        Ok(pb::ContactLevel::Practitioner) => Some(ContactLevel::Practitioner),
        Err(_) => {
            v.add(field, format!("{raw} is not a ContactLevel"));
            None
        }
    }
}

fn level_to_proto(l: Option<ContactLevel>) -> pb::ContactLevel {
    match l {
        None => pb::ContactLevel::Unspecified,
        Some(ContactLevel::Executive) => pb::ContactLevel::Executive,
        Some(ContactLevel::Manager) => pb::ContactLevel::Manager,
        Some(ContactLevel::Practitioner) => pb::ContactLevel::Practitioner,
    }
}

/// The contact fields of `p` named in `mask`, each parsed; `prefix` is the
/// message's path (`contact`; empty for an import row).
pub(crate) fn fields(p: &pb::Contact, prefix: &str, mask: &[ContactField], v: &mut Violations) -> ContactFields {
    let f = |name: &str| path(prefix, name);
    let mut out = ContactFields {
        name: String::new(),
        email: String::new(),
        title: String::new(),
        department: String::new(),
        level: None,
        champion: false,
        decision_maker: false,
        external_id: None,
    };
    for field in mask {
        match field {
            ContactField::Name => {
                wire::required_text(v, &f("name"), &p.name, 200);
                out.name = p.name.trim().to_owned();
            }
            ContactField::Email => {
                let email = p.email.trim();
                validate::email(v, &f("email"), email);
                out.email = email.to_owned();
            }
            ContactField::Title => {
                wire::text(v, &f("title"), &p.title, 200);
                out.title = p.title.clone();
            }
            ContactField::Department => {
                wire::text(v, &f("department"), &p.department, 200);
                out.department = p.department.clone();
            }
            ContactField::Level => out.level = level_from_proto(v, &f("level"), p.level),
            ContactField::Champion => out.champion = p.champion,
            ContactField::DecisionMaker => out.decision_maker = p.decision_maker,
            ContactField::ExternalId => out.external_id = external_id(v, &f("external_id"), &p.external_id),
        }
    }
    out
}

pub(crate) fn to_proto(c: &Contact) -> pb::Contact {
    let f = &c.fields;
    pb::Contact {
        id: c.id.to_string(),
        account_id: c.account_id.to_string(),
        name: f.name.clone(),
        email: f.email.clone(),
        title: f.title.clone(),
        department: f.department.clone(),
        level: level_to_proto(f.level) as i32,
        champion: f.champion,
        decision_maker: f.decision_maker,
        external_id: f.external_id.clone().unwrap_or_default(),
        create_time: Some(wire::timestamp(c.create_time)),
        update_time: Some(wire::timestamp(c.update_time)),
        etag: etag::of(c.version),
    }
}

pub(crate) fn create(r: pb::CreateContactRequest) -> Result<CreateContact> {
    let mut v = Violations::new();
    let request_id = request_id(&mut v, &r.request_id);
    let p = required(&mut v, "contact", r.contact.as_ref());
    let account_id = p.and_then(|p| v.take(wire::uuid("contact.account_id", &p.account_id)));
    let fields = p.map(|p| fields(p, "contact", ContactField::ALL, &mut v));
    let (account_id, fields) = v.finish_with((account_id, fields))?;
    Ok(CreateContact { request_id, account_id, fields })
}

pub(crate) fn update(r: pb::UpdateContactRequest) -> Result<UpdateContact> {
    let mut v = Violations::new();
    let mask = v.take(fieldmask::parse::<ContactField>("update_mask", r.update_mask.as_ref()));
    let p = required(&mut v, "contact", r.contact.as_ref());
    let id = p.and_then(|p| v.take(wire::uuid("contact.id", &p.id)));
    let etag = p.and_then(|p| v.take(etag::parse("contact.etag", &p.etag)));
    let fields = p.map(|p| fields(p, "contact", mask.as_deref().unwrap_or_default(), &mut v));
    let (mask, id, etag, fields) = v.finish_with((mask, id, etag, fields))?;
    Ok(UpdateContact { id, etag, mask, fields })
}

/// A ListContacts request, parsed.
pub(crate) struct ListContacts {
    pub filter: ContactFilter,
    pub page: Paged<Uuid>,
}

pub(crate) fn list(kit: &Kit, caller: &Caller, r: pb::ListContactsRequest) -> Result<ListContacts> {
    let mut v = Violations::new();
    let limit = page_size(&mut v, r.page_size);
    let account_id = v.take(wire::optional_uuid("account_id", &r.account_id)).flatten();
    let level = level_from_proto(&mut v, "level", r.level);
    let email = r.email.trim().to_lowercase();
    wire::text(&mut v, "email", &email, 254);
    let external_id = external_id(&mut v, "external_id", &r.external_id);
    let limit = v.finish_with(limit)?;
    let filter = ContactFilter {
        account_id,
        level,
        champions_only: r.champions_only,
        decision_makers_only: r.decision_makers_only,
        email: (!email.is_empty()).then_some(email),
        external_id,
    };
    let key = QueryKey::new("ListContacts", &caller.tenant_id).part(format!("{filter:?}"));
    Ok(ListContacts { page: Paged::new(&kit.page_tokens, key, &r.page_token, limit)?, filter })
}

pub(crate) fn list_reply(kit: &Kit, q: &ListContacts, rows: Vec<Contact>) -> Result<pb::ListContactsResponse> {
    let (rows, next_page_token) = q.page.page(&kit.page_tokens, rows, |last| last.id)?;
    Ok(pb::ListContactsResponse { contacts: rows.iter().map(to_proto).collect(), next_page_token })
}
