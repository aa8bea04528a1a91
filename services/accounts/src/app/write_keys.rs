//! Write keys: created with a fresh random secret (shown once, stored as a
//! hash), listed, revoked, and verified for the gateway.

use banso_kit::{Error, Result, auth::Caller, wire};
use uuid::Uuid;

use super::App;
use crate::{
    domain::write_key::{self, WriteKey},
    store,
};

impl App {
    /// A new key of the caller's tenant, and the key itself (which only
    /// this reply ever holds).
    pub(crate) async fn create_write_key(&self, caller: &Caller, display_name: String) -> Result<(WriteKey, String)> {
        // ThreadRng: a CSPRNG seeded from the OS.
        let secret: [u8; write_key::SECRET_BYTES] = rand::random();
        let key = write_key::compose(&caller.tenant_id, &secret);
        let k = WriteKey {
            id: Uuid::now_v7(),
            display_name,
            key_prefix: write_key::visible_prefix(&key),
            key_hash: write_key::hash(&key),
            creator: caller.subject.clone(),
            create_time: wire::now(),
            revoke_time: None,
        };
        let stored = k.clone();
        self.db
            .write(&caller.tenant_id, async move |tx| store::write_keys::insert(tx.conn(), tx.tenant(), &stored).await)
            .await?;
        Ok((k, key))
    }

    pub(crate) async fn list_write_keys(
        &self,
        caller: &Caller,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<WriteKey>> {
        store::write_keys::list(self.db.conn(), &caller.tenant_id, after, limit).await
    }

    /// Revokes the key; a revoked key stays as it was (its first revoke time).
    pub(crate) async fn revoke_write_key(&self, caller: &Caller, id: Uuid) -> Result<WriteKey> {
        self.db
            .write(&caller.tenant_id, async move |tx| {
                store::write_keys::revoke(tx.conn(), tx.tenant(), id, wire::now()).await?;
                store::write_keys::get(tx.conn(), tx.tenant(), id).await
            })
            .await
    }

    /// The id of `key` if it is a valid key of the caller's tenant. A key of
    /// another tenant, an unknown key and a revoked key are all the same
    /// NOT_FOUND: the answer says nothing of other tenants' keys.
    pub(crate) async fn verify_write_key(&self, caller: &Caller, key: &str) -> Result<Uuid> {
        let not_found = || Error::not_found("write key", write_key::visible_prefix(key));
        if write_key::tenant_of(key) != Some(caller.tenant_id.as_str()) {
            return Err(not_found());
        }
        match store::write_keys::by_hash(self.db.conn(), &caller.tenant_id, &write_key::hash(key)).await? {
            Some(k) if !k.is_revoked() => Ok(k.id),
            _ => Err(not_found()),
        }
    }
}
