//! Segments: saved once per request_id, updated and deleted by version,
//! evaluated over the tenant's accounts.

use std::collections::HashSet;

use banso_events::db::RequestKey;
use banso_kit::{Error, Result, auth::Caller, wire};
use banso_proto::events::segment_changed::Change;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{App, remembered};
use crate::{
    domain::{
        Account, AccountCursor, AccountFilter, AccountOrder, AccountSort, SortKey, retention,
        segment::{self, Segment, SegmentField, SegmentFields},
    },
    events, store,
};

const OP_CREATE_SEGMENT: &str = "CreateSegment";
/// Accounts an EvaluateSegment call looks at before it returns a page: a
/// page of a narrow segment may hold fewer members than asked, and its
/// token resumes the scan.
const SEGMENT_SCAN_PER_CALL: u64 = 5_000;

/// CreateSegment: a segment whose expression compiled.
pub(crate) struct CreateSegment {
    pub request_id: Option<String>,
    pub fields: SegmentFields,
}

/// UpdateSegment: the fields of `mask` set from `fields`.
pub(crate) struct UpdateSegment {
    pub id: Uuid,
    pub etag: Option<i64>,
    pub mask: Vec<SegmentField>,
    pub fields: SegmentFields,
}

/// Members of a segment among the tenant's accounts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentCount {
    pub evaluated: i64,
    pub members: i64,
    /// Accounts the expression could not be evaluated on (not members).
    pub errors: i64,
}

/// A segment's compiled expression and the instant it is evaluated at.
struct Program {
    expr: banso_cel::Expression,
    /// Today in the tenant's time zone.
    today: NaiveDate,
    now: DateTime<Utc>,
}

impl Program {
    fn is_member(&self, a: &Account) -> std::result::Result<bool, String> {
        segment::is_member(&self.expr, a, self.today, self.now)
    }
}

impl App {
    pub(crate) async fn create_segment(&self, caller: &Caller, cmd: CreateSegment) -> Result<Segment> {
        let CreateSegment { request_id, fields } = cmd;
        let key = request_id.as_deref().map(|request_id| RequestKey { operation: OP_CREATE_SEGMENT, request_id });
        let scope = self.scope(&caller.tenant_id);
        self.db
            .create_once(
                &caller.tenant_id,
                key,
                async move |id| store::segments::get(&scope.conn, &scope.tenant, remembered(id)?).await,
                async move |tx| {
                    let t = wire::now();
                    let s = Segment { id: Uuid::now_v7(), fields, create_time: t, update_time: t, version: 1 };
                    store::segments::insert(tx.conn(), tx.tenant(), &s).await?;
                    tx.emit(events::segment_changed(&s, Change::Created)).await?;
                    Ok(s)
                },
            )
            .await
    }

    pub(crate) async fn get_segment(&self, caller: &Caller, id: Uuid) -> Result<Segment> {
        store::segments::get(self.db.conn(), &caller.tenant_id, id).await
    }

    pub(crate) async fn list_segments(&self, caller: &Caller, after: Option<Uuid>, limit: u64) -> Result<Vec<Segment>> {
        store::segments::list(self.db.conn(), &caller.tenant_id, after, limit).await
    }

    pub(crate) async fn update_segment(&self, caller: &Caller, cmd: UpdateSegment) -> Result<Segment> {
        let (s, id) = (self.scope(&caller.tenant_id), cmd.id);
        self.db
            .update_versioned(
                &caller.tenant_id,
                &format!("segment {id}"),
                cmd.etag,
                async move || store::segments::get(&s.conn, &s.tenant, id).await,
                |s| {
                    s.fields.apply(&cmd.fields, &cmd.mask);
                    Ok(())
                },
                async |tx, current, next| {
                    let written = store::segments::update(tx.conn(), tx.tenant(), current, next).await?;
                    if written {
                        tx.emit(events::segment_changed(next, Change::Updated)).await?;
                    }
                    Ok(written)
                },
            )
            .await
    }

    pub(crate) async fn delete_segment(&self, caller: &Caller, id: Uuid, etag: Option<i64>) -> Result<()> {
        let s = self.scope(&caller.tenant_id);
        self.db
            .delete_versioned(
                &caller.tenant_id,
                &format!("segment {id}"),
                etag,
                async move || store::segments::get(&s.conn, &s.tenant, id).await,
                async |tx, current| {
                    if !store::segments::delete(tx.conn(), tx.tenant(), current).await? {
                        return Ok(false);
                    }
                    tx.emit(events::segment_changed(current, Change::Deleted)).await?;
                    Ok(true)
                },
            )
            .await
            .map(drop)
    }

    /// Up to `limit` members in creation order after account `after`,
    /// scanning at most [`SEGMENT_SCAN_PER_CALL`] accounts; with the account
    /// to resume after, `None` once every account was looked at.
    pub(crate) async fn evaluate_segment(
        &self,
        caller: &Caller,
        segment_id: Uuid,
        mut after: Option<Uuid>,
        limit: u64,
    ) -> Result<(Vec<Account>, Option<Uuid>)> {
        let tenant = &caller.tenant_id;
        let program = self.program(tenant, segment_id).await?;
        let mut members = Vec::new();
        let mut scanned = 0u64;
        while (members.len() as u64) < limit && scanned < SEGMENT_SCAN_PER_CALL {
            let batch = self.scan(tenant, after, 500).await?;
            if batch.is_empty() {
                return Ok((members, None));
            }
            for a in batch {
                scanned += 1;
                after = Some(a.id);
                if program.is_member(&a).unwrap_or(false) {
                    members.push(a);
                    if members.len() as u64 == limit {
                        break;
                    }
                }
            }
        }
        Ok((members, after))
    }

    pub(crate) async fn count_segment_members(&self, caller: &Caller, segment_id: Uuid) -> Result<SegmentCount> {
        let tenant = &caller.tenant_id;
        let program = self.program(tenant, segment_id).await?;
        let mut count = SegmentCount::default();
        let mut after = None;
        loop {
            let batch = self.scan(tenant, after, 1000).await?;
            let Some(last) = batch.last() else { return Ok(count) };
            after = Some(last.id);
            for a in &batch {
                count.evaluated += 1;
                match program.is_member(a) {
                    Ok(true) => count.members += 1,
                    Ok(false) => {}
                    Err(_) => count.errors += 1,
                }
            }
        }
    }

    /// Whether the account is a member now, or why the expression could not
    /// be evaluated on it.
    pub(crate) async fn check_segment_membership(
        &self,
        caller: &Caller,
        segment_id: Uuid,
        account_id: Uuid,
    ) -> Result<std::result::Result<bool, String>> {
        let tenant = &caller.tenant_id;
        let program = self.program(tenant, segment_id).await?;
        let account = store::accounts::get(self.db.conn(), tenant, account_id).await?;
        Ok(program.is_member(&account))
    }

    /// The ids of a segment's members now.
    pub(super) async fn segment_members(&self, tenant: &str, segment_id: Uuid) -> Result<HashSet<Uuid>> {
        let program = self.program(tenant, segment_id).await?;
        let mut members = HashSet::new();
        let mut after = None;
        loop {
            let batch = self.scan(tenant, after, 1000).await?;
            let Some(last) = batch.last() else { return Ok(members) };
            after = Some(last.id);
            members.extend(batch.iter().filter(|a| program.is_member(a).unwrap_or(false)).map(|a| a.id));
        }
    }

    /// The ids of every segment of the tenant, in creation order.
    pub(super) async fn all_segment_ids(&self, tenant: &str) -> Result<Vec<Uuid>> {
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let batch = store::segments::list(self.db.conn(), tenant, after, 1000).await?;
            let Some(last) = batch.last() else { return Ok(ids) };
            after = Some(last.id);
            ids.extend(batch.iter().map(|s| s.id));
        }
    }

    /// A segment's compiled expression, with "today" in the tenant's zone.
    async fn program(&self, tenant: &str, segment_id: Uuid) -> Result<Program> {
        let s = store::segments::get(self.db.conn(), tenant, segment_id).await?;
        // Stored expressions compiled when saved; one that no longer does
        // (a stricter CEL engine since) must be edited, not retried.
        let expr = segment::compile(&s.fields.expression).map_err(|e| Error::FailedPrecondition {
            reason: "SEGMENT_EXPRESSION_INVALID",
            message: format!("segment {segment_id}'s expression no longer compiles ({e}); update the segment"),
        })?;
        let settings = store::settings::get(self.db.conn(), tenant).await?;
        let now = Utc::now();
        Ok(Program { expr, today: retention::today_in(settings.tz(), now), now })
    }

    /// Accounts in creation order after `after`.
    async fn scan(&self, tenant: &str, after: Option<Uuid>, limit: u64) -> Result<Vec<Account>> {
        let order = AccountOrder { sort: AccountSort::CreateTime, desc: false };
        let cursor = after.map(|id| AccountCursor { key: SortKey::Id, id });
        store::accounts::list(self.db.conn(), tenant, &AccountFilter::default(), order, cursor.as_ref(), limit).await
    }
}
