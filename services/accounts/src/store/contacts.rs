//! Contacts (stakeholders) of accounts.

use banso_kit::{Error, Result, db};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{corrupt, entities::contact, is_foreign_key_violation};
use crate::domain::{Contact, ContactFields, ContactFilter, ContactLevel};

fn from_model(m: contact::Model) -> Result<Contact> {
    let level = match m.level.as_deref() {
        None => None,
        Some(l) => Some(ContactLevel::parse(l).ok_or_else(|| corrupt("contact level", l))?),
    };
    Ok(Contact {
        id: m.id,
        account_id: m.account_id,
        fields: ContactFields {
            name: m.name,
            email: m.email,
            title: m.title,
            department: m.department,
            level,
            champion: m.champion,
            decision_maker: m.decision_maker,
            external_id: m.external_id,
        },
        create_time: m.create_time,
        update_time: m.update_time,
        version: m.version,
    })
}

fn active(tenant: &str, c: &Contact) -> contact::ActiveModel {
    let f = &c.fields;
    contact::ActiveModel {
        id: Set(c.id),
        tenant_id: Set(tenant.to_owned()),
        account_id: Set(c.account_id),
        name: Set(f.name.clone()),
        email: Set(f.email.clone()),
        email_lower: Set(f.email.to_lowercase()),
        title: Set(f.title.clone()),
        department: Set(f.department.clone()),
        level: Set(f.level.map(|l| l.as_str().to_owned())),
        champion: Set(f.champion),
        decision_maker: Set(f.decision_maker),
        external_id: Set(f.external_id.clone()),
        create_time: Set(c.create_time),
        update_time: Set(c.update_time),
        version: Set(c.version),
    }
}

/// The contact, or NOT_FOUND (also for another tenant's).
pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Contact> {
    contact::Entity::find_by_id(id)
        .filter(contact::Column::TenantId.eq(tenant))
        .one(conn)
        .await?
        .map(from_model)
        .transpose()?
        .ok_or_else(|| Error::not_found("contact", id.to_string()))
}

pub(crate) async fn find_by_external_id(
    conn: &impl ConnectionTrait,
    tenant: &str,
    external_id: &str,
) -> Result<Option<Contact>> {
    contact::Entity::find()
        .filter(contact::Column::TenantId.eq(tenant))
        .filter(contact::Column::ExternalId.eq(external_id))
        .one(conn)
        .await?
        .map(from_model)
        .transpose()
}

/// Which of `ids` are contacts of `account_id`.
pub(crate) async fn of_account(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Uuid>> {
    Ok(contact::Entity::find()
        .filter(contact::Column::TenantId.eq(tenant))
        .filter(contact::Column::AccountId.eq(account_id))
        .filter(contact::Column::Id.is_in(ids.iter().copied()))
        .all(conn)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect())
}

/// Contacts in creation order after `after`.
pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    filter: &ContactFilter,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Contact>> {
    use contact::Column as C;
    let mut q = contact::Entity::find().filter(C::TenantId.eq(tenant));
    if let Some(a) = filter.account_id {
        q = q.filter(C::AccountId.eq(a));
    }
    if let Some(l) = filter.level {
        q = q.filter(C::Level.eq(l.as_str()));
    }
    if filter.champions_only {
        q = q.filter(C::Champion.eq(true));
    }
    if filter.decision_makers_only {
        q = q.filter(C::DecisionMaker.eq(true));
    }
    if let Some(e) = &filter.email {
        q = q.filter(C::EmailLower.eq(e.as_str()));
    }
    if let Some(e) = &filter.external_id {
        q = q.filter(C::ExternalId.eq(e.as_str()));
    }
    if let Some(id) = after {
        q = q.filter(C::Id.gt(id));
    }
    q.order_by(C::Id, Order::Asc).limit(limit).all(conn).await?.into_iter().map(from_model).collect()
}

/// Inserts a new contact. ALREADY_EXISTS: its external_id is taken;
/// NOT_FOUND: its account is gone.
pub(crate) async fn insert(conn: &impl ConnectionTrait, tenant: &str, c: &Contact) -> Result<()> {
    match contact::Entity::insert(active(tenant, c)).exec_without_returning(conn).await {
        Ok(_) => Ok(()),
        Err(e) if is_foreign_key_violation(&e) => Err(Error::not_found("account", c.account_id.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// Writes `next` over `current` if the stored version is still
/// `current`'s (the versioned UPDATE first); returns whether it was.
pub(crate) async fn update(
    conn: &impl ConnectionTrait,
    tenant: &str,
    current: &Contact,
    next: &Contact,
) -> Result<bool> {
    db::update_at_version::<contact::Entity>(conn, tenant, current.id, current.version, active(tenant, next)).await
}

/// Deletes the contact if the stored version is still `current`'s.
pub(crate) async fn delete(conn: &impl ConnectionTrait, tenant: &str, current: &Contact) -> Result<bool> {
    db::delete_at_version::<contact::Entity>(conn, tenant, current.id, current.version).await
}
