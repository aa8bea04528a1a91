//! Programmes and enrolments, by hand and by playbook.

use banso_events::{
    Tx,
    db::{Identified, RequestKey, Versioned, remembered},
};
use banso_kit::{Error, Result, auth::Caller, wire};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::App;
use crate::{
    domain::programme::{Enrolment, Kind, Programme, Status},
    store,
};

const OP_CREATE_PROGRAMME: &str = "CreateProgramme";

impl Versioned for Programme {
    fn version(&self) -> i64 {
        self.version
    }

    fn advance(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.update_time = now;
    }
}

impl Identified for Programme {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

impl Versioned for Enrolment {
    fn version(&self) -> i64 {
        self.version
    }

    fn advance(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.update_time = now;
    }
}

/// A programme's fields, each `Some` where a create or an update sets it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProgrammeFields {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub kind: Option<Kind>,
    pub capacity: Option<i32>,
    pub open: Option<bool>,
}

impl ProgrammeFields {
    fn apply(&self, p: &mut Programme) {
        if let Some(v) = &self.display_name {
            p.display_name = v.clone();
        }
        if let Some(v) = &self.description {
            p.description = v.clone();
        }
        if let Some(v) = self.kind {
            p.kind = v;
        }
        if let Some(v) = self.capacity {
            p.capacity = v;
        }
        if let Some(v) = self.open {
            p.open = v;
        }
    }
}

/// What an enrolment attempt did.
pub(crate) enum Enrolled {
    New(Enrolment),
    Already(Enrolment),
    Refused(String),
}

/// Enrols an account in the use case's transaction (a playbook's action or
/// a person): an account already enrolled keeps its enrolment; a closed,
/// full or missing programme refuses.
pub(crate) async fn enrol(
    tx: &Tx,
    programme: Uuid,
    account: Uuid,
    playbook: Option<Uuid>,
    by: &str,
) -> Result<Enrolled> {
    let (conn, tenant) = (tx.conn(), tx.tenant());
    let Some(p) = store::programmes::find(conn, tenant, programme).await? else {
        return Ok(Enrolled::Refused(format!("programme {programme} does not exist (deleted?)")));
    };
    if let Some(e) = store::programmes::live_enrolment(conn, tenant, programme, account).await? {
        return Ok(Enrolled::Already(e));
    }
    if let Some(why) = p.refuses(store::programmes::enrolled(conn, tenant, programme).await?) {
        return Ok(Enrolled::Refused(why));
    }
    let t = wire::now();
    let e = Enrolment {
        id: Uuid::now_v7(),
        programme_id: programme,
        account_id: account,
        status: Status::Enrolled,
        playbook_id: playbook,
        enrolled_by: by.to_string(),
        create_time: t,
        update_time: t,
        version: 1,
    };
    store::programmes::insert_enrolment(conn, tenant, &e).await?;
    Ok(Enrolled::New(e))
}

impl App {
    pub(crate) async fn create_programme(
        &self,
        caller: &Caller,
        request_id: Option<String>,
        f: ProgrammeFields,
    ) -> Result<Programme> {
        let key = request_id.as_deref().map(|request_id| RequestKey { operation: OP_CREATE_PROGRAMME, request_id });
        let scope = self.scope(&caller.tenant_id);
        self.db
            .create_once(
                &caller.tenant_id,
                key,
                async move |id| store::programmes::get(&scope.conn, &scope.tenant, remembered(id)?).await,
                async move |tx| {
                    let t = wire::now();
                    let mut p = Programme {
                        id: Uuid::now_v7(),
                        display_name: String::new(),
                        description: String::new(),
                        kind: Kind::Other,
                        capacity: 0,
                        open: true,
                        create_time: t,
                        update_time: t,
                        version: 1,
                    };
                    f.apply(&mut p);
                    store::programmes::insert(tx.conn(), tx.tenant(), &p).await?;
                    Ok(p)
                },
            )
            .await
    }

    /// A programme with the number of accounts enrolled in it.
    pub(crate) async fn get_programme(&self, caller: &Caller, id: Uuid) -> Result<(Programme, i64)> {
        let conn = self.db.conn();
        let p = store::programmes::get(conn, &caller.tenant_id, id).await?;
        let n = store::programmes::enrolled(conn, &caller.tenant_id, id).await?;
        Ok((p, n))
    }

    pub(crate) async fn list_programmes(
        &self,
        caller: &Caller,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<(Programme, i64)>> {
        let conn = self.db.conn();
        let mut out = Vec::new();
        for p in store::programmes::list(conn, &caller.tenant_id, after, limit).await? {
            let n = store::programmes::enrolled(conn, &caller.tenant_id, p.id).await?;
            out.push((p, n));
        }
        Ok(out)
    }

    pub(crate) async fn update_programme(
        &self,
        caller: &Caller,
        id: Uuid,
        etag: Option<i64>,
        f: ProgrammeFields,
    ) -> Result<(Programme, i64)> {
        let s = self.scope(&caller.tenant_id);
        let p = self
            .db
            .update_versioned(
                &caller.tenant_id,
                &format!("programme {id}"),
                etag,
                async move || store::programmes::get(&s.conn, &s.tenant, id).await,
                |p| {
                    f.apply(p);
                    Ok(())
                },
                async |tx, current, next| store::programmes::update(tx.conn(), tx.tenant(), current, next).await,
            )
            .await?;
        let n = store::programmes::enrolled(self.db.conn(), &caller.tenant_id, id).await?;
        Ok((p, n))
    }

    pub(crate) async fn enrol_account(&self, caller: &Caller, programme: Uuid, account: Uuid) -> Result<Enrolment> {
        let conn = self.db.conn();
        store::programmes::get(conn, &caller.tenant_id, programme).await?;
        if store::projection::get(conn, &caller.tenant_id, account).await?.is_none() {
            return Err(Error::not_found("account", account.to_string()));
        }
        let by = caller.subject.clone();
        match self.db.write(&caller.tenant_id, async |tx| enrol(tx, programme, account, None, &by).await).await? {
            Enrolled::New(e) | Enrolled::Already(e) => Ok(e),
            Enrolled::Refused(why) => Err(Error::FailedPrecondition { reason: "PROGRAMME_REFUSES", message: why }),
        }
    }

    pub(crate) async fn list_enrolments(
        &self,
        caller: &Caller,
        programme: Option<Uuid>,
        account: Option<Uuid>,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Enrolment>> {
        store::programmes::enrolments(self.db.conn(), &caller.tenant_id, programme, account, before, limit).await
    }

    pub(crate) async fn set_enrolment_status(
        &self,
        caller: &Caller,
        id: Uuid,
        status: Status,
        etag: Option<i64>,
    ) -> Result<Enrolment> {
        let s = self.scope(&caller.tenant_id);
        self.db
            .update_versioned(
                &caller.tenant_id,
                &format!("enrolment {id}"),
                etag,
                async move || store::programmes::get_enrolment(&s.conn, &s.tenant, id).await,
                |e| e.move_to(status).map_err(|m| Error::FailedPrecondition { reason: "ENROLMENT_STATUS", message: m }),
                async |tx, current, next| {
                    store::programmes::update_enrolment(tx.conn(), tx.tenant(), current, next).await
                },
            )
            .await
    }
}
