//! Write keys on the wire. The key itself is never echoed in an error.

use banso_kit::{
    Error, Result, Violations,
    auth::{Caller, Role},
    paging::QueryKey,
    server::Kit,
    wire,
};
use banso_proto::accounts as pb;
use uuid::Uuid;

use super::convert::{Paged, page_size, required};
use crate::domain::write_key::{self, WriteKey};

pub(crate) fn to_proto(k: &WriteKey) -> pb::WriteKey {
    pb::WriteKey {
        id: k.id.to_string(),
        display_name: k.display_name.clone(),
        key_prefix: k.key_prefix.clone(),
        creator: k.creator.clone(),
        create_time: Some(wire::timestamp(k.create_time)),
        revoke_time: k.revoke_time.map(wire::timestamp),
    }
}

/// CreateWriteKey's display name.
pub(crate) fn create(r: &pb::CreateWriteKeyRequest) -> Result<String> {
    let mut v = Violations::new();
    let p = required(&mut v, "write_key", r.write_key.as_ref());
    if let Some(p) = p {
        wire::required_text(&mut v, "write_key.display_name", &p.display_name, 200);
    }
    v.finish()?;
    Ok(p.map(|p| p.display_name.trim().to_owned()).unwrap_or_default())
}

pub(crate) fn list_page(kit: &Kit, caller: &Caller, r: &pb::ListWriteKeysRequest) -> Result<Paged<Uuid>> {
    let mut v = Violations::new();
    let limit = page_size(&mut v, r.page_size);
    let limit = v.finish_with(limit)?;
    Paged::new(&kit.page_tokens, QueryKey::new("ListWriteKeys", &caller.tenant_id), &r.page_token, limit)
}

pub(crate) fn list_reply(kit: &Kit, page: &Paged<Uuid>, rows: Vec<WriteKey>) -> Result<pb::ListWriteKeysResponse> {
    let (rows, next_page_token) = page.page(&kit.page_tokens, rows, |last| last.id)?;
    Ok(pb::ListWriteKeysResponse { write_keys: rows.iter().map(to_proto).collect(), next_page_token })
}

/// VerifyWriteKey is the gateway's: it needs the service role (any role
/// may read, but only a service checks keys).
pub(crate) fn require_service(caller: &Caller) -> Result<()> {
    if caller.roles.contains(&Role::Service) {
        return Ok(());
    }
    let roles: Vec<_> = caller.roles.iter().map(|r| r.as_str()).collect();
    Err(Error::PermissionDenied(format!("this call needs role service; the caller has [{}]", roles.join(", "))))
}

/// The key to verify: it must look like one (never echoed: it is a secret).
pub(crate) fn verify(r: &pb::VerifyWriteKeyRequest) -> Result<&str> {
    if r.key.is_empty() {
        return Err(Error::invalid("key", "is required"));
    }
    if write_key::tenant_of(&r.key).is_none() {
        return Err(Error::invalid(
            "key",
            format!("is not a write key (bk.<tenant>.<{} characters>)", write_key::SECRET_CHARS),
        ));
    }
    Ok(&r.key)
}
