//! Contacts: read and list; create once per request_id (on an account of
//! the tenant); update and delete by version.

use banso_events::db::RequestKey;
use banso_kit::{Result, auth::Caller, wire};
use banso_proto::events::contact_changed::Change;
use uuid::Uuid;

use super::{App, external_id_taken, remembered};
use crate::{
    domain::{Contact, ContactField, ContactFields, ContactFilter},
    events, store,
};

const OP_CREATE_CONTACT: &str = "CreateContact";

/// CreateContact: a valid contact of `account_id`.
pub(crate) struct CreateContact {
    pub request_id: Option<String>,
    pub account_id: Uuid,
    pub fields: ContactFields,
}

/// UpdateContact: the fields of `mask` set from `fields`.
pub(crate) struct UpdateContact {
    pub id: Uuid,
    pub etag: Option<i64>,
    pub mask: Vec<ContactField>,
    pub fields: ContactFields,
}

impl App {
    pub(crate) async fn get_contact(&self, caller: &Caller, id: Uuid) -> Result<Contact> {
        store::contacts::get(self.db.conn(), &caller.tenant_id, id).await
    }

    pub(crate) async fn list_contacts(
        &self,
        caller: &Caller,
        filter: &ContactFilter,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Contact>> {
        store::contacts::list(self.db.conn(), &caller.tenant_id, filter, after, limit).await
    }

    pub(crate) async fn create_contact(&self, caller: &Caller, cmd: CreateContact) -> Result<Contact> {
        let key = cmd.request_id.as_deref().map(|request_id| RequestKey { operation: OP_CREATE_CONTACT, request_id });
        self.insert_contact(&caller.tenant_id, key, cmd.account_id, &cmd.fields).await
    }

    /// Creates a contact of `account_id` with its ContactChanged.
    pub(super) async fn insert_contact(
        &self,
        tenant: &str,
        key: Option<RequestKey<'_>>,
        account_id: Uuid,
        fields: &ContactFields,
    ) -> Result<Contact> {
        let (s, s2, fields) = (self.scope(tenant), self.scope(tenant), fields.clone());
        self.db
            .create_once_with(
                tenant,
                "contact",
                key,
                async move |id| store::contacts::get(&s.conn, &s.tenant, remembered(id)?).await,
                // The account must be this tenant's: a foreign key alone
                // would accept another tenant's account.
                async move || store::accounts::must_exist(&s2.conn, &s2.tenant, account_id).await,
                async move |tx, ()| {
                    let t = wire::now();
                    let c = Contact {
                        id: Uuid::now_v7(),
                        account_id,
                        fields: fields.clone(),
                        create_time: t,
                        update_time: t,
                        version: 1,
                    };
                    store::contacts::insert(tx.conn(), tx.tenant(), &c)
                        .await
                        .map_err(|e| external_id_taken(e, "contact", c.fields.external_id.as_deref()))?;
                    tx.emit(events::contact_changed(&c, Change::Created)).await?;
                    Ok(Some(c))
                },
            )
            .await
    }

    pub(crate) async fn update_contact(&self, caller: &Caller, cmd: UpdateContact) -> Result<Contact> {
        self.change_contact(&caller.tenant_id, cmd.id, cmd.etag, |f| f.apply(&cmd.fields, &cmd.mask)).await
    }

    /// The one way a contact's fields change.
    pub(super) async fn change_contact(
        &self,
        tenant: &str,
        id: Uuid,
        etag: Option<i64>,
        change: impl Fn(&mut ContactFields),
    ) -> Result<Contact> {
        let s = self.scope(tenant);
        self.db
            .update_versioned(
                tenant,
                &format!("contact {id}"),
                etag,
                async move || store::contacts::get(&s.conn, &s.tenant, id).await,
                |c| {
                    change(&mut c.fields);
                    Ok(())
                },
                async |tx, current, next| {
                    let written = store::contacts::update(tx.conn(), tx.tenant(), current, next)
                        .await
                        .map_err(|e| external_id_taken(e, "contact", next.fields.external_id.as_deref()))?;
                    if written {
                        tx.emit(events::contact_changed(next, Change::Updated)).await?;
                    }
                    Ok(written)
                },
            )
            .await
    }

    pub(crate) async fn delete_contact(&self, caller: &Caller, id: Uuid, etag: Option<i64>) -> Result<()> {
        let s = self.scope(&caller.tenant_id);
        self.db
            .delete_versioned(
                &caller.tenant_id,
                &format!("contact {id}"),
                etag,
                async move || store::contacts::get(&s.conn, &s.tenant, id).await,
                async |tx, current| {
                    if !store::contacts::delete(tx.conn(), tx.tenant(), current).await? {
                        return Ok(false);
                    }
                    tx.emit(events::contact_changed(current, Change::Deleted)).await?;
                    Ok(true)
                },
            )
            .await
            .map(drop)
    }
}
