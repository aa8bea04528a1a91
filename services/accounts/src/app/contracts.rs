//! Contract events: recorded once per request_id, with the account change
//! they cause, in one transaction; the history of an account.

use banso_events::db::{RequestKey, Versioned as _};
use banso_kit::{Result, auth::Caller, wire};
use chrono::NaiveDate;
use uuid::Uuid;

use super::{App, remembered};
use crate::{
    domain::contract::{self, ContractEvent, ContractInput, Recorded},
    events, store,
};

const OP_RECORD_CONTRACT: &str = "RecordContractEvent";

/// RecordContractEvent: `input` on `account_id`.
pub(crate) struct RecordContract {
    pub request_id: Option<String>,
    pub account_id: Uuid,
    pub input: ContractInput,
}

impl App {
    /// Applies the event to the account (the rules of `domain::contract`)
    /// and records both; a retry with the same request_id returns the first
    /// result, also when the retries race.
    pub(crate) async fn record_contract_event(&self, caller: &Caller, cmd: RecordContract) -> Result<Recorded> {
        let RecordContract { request_id, account_id, input } = cmd;
        let key = request_id.as_deref().map(|request_id| RequestKey { operation: OP_RECORD_CONTRACT, request_id });
        let (found, read, recorded_by) =
            (self.scope(&caller.tenant_id), self.scope(&caller.tenant_id), caller.subject.clone());
        self.db
            .create_once_with(
                &caller.tenant_id,
                &format!("account {account_id}"),
                key,
                async move |id| {
                    let event = store::contracts::get(&found.conn, &found.tenant, remembered(id)?).await?;
                    let account = store::accounts::get(&found.conn, &found.tenant, event.account_id).await?;
                    Ok(Recorded { event, account })
                },
                async move || {
                    let current = store::accounts::get(&read.conn, &read.tenant, account_id).await?;
                    let last = store::contracts::last_effective_date(&read.conn, &read.tenant, account_id).await?;
                    let mut account = current.clone();
                    let (arr_before, arr_after) = contract::apply(&mut account.fields, last, &input)?;
                    let t = wire::now();
                    account.advance(t);
                    let event = ContractEvent {
                        id: Uuid::now_v7(),
                        account_id,
                        kind: input.kind,
                        arr_before,
                        arr_after,
                        effective_date: input.effective_date,
                        term_end: input.term_end,
                        reason_code: input.reason_code.clone(),
                        note: input.note.clone(),
                        recorded_by: recorded_by.clone(),
                        create_time: t,
                    };
                    Ok((current, last, Recorded { event, account }))
                },
                async move |tx, (current, last, recorded)| {
                    // The versioned UPDATE first, so SQLite takes its write
                    // lock at once; then no event may have landed since the read.
                    if !store::accounts::update(tx.conn(), tx.tenant(), &current, &recorded.account).await?
                        || store::contracts::last_effective_date(tx.conn(), tx.tenant(), account_id).await? != last
                    {
                        return Ok(None);
                    }
                    store::contracts::insert(tx.conn(), tx.tenant(), &recorded.event).await?;
                    tx.emit(events::contract_changed(&recorded.event, &recorded.account)).await?;
                    Ok(Some(recorded))
                },
            )
            .await
    }

    /// An account's contract history, oldest first, after `(date, id)`.
    pub(crate) async fn list_contract_events(
        &self,
        caller: &Caller,
        account_id: Uuid,
        after: Option<(NaiveDate, Uuid)>,
        limit: u64,
    ) -> Result<Vec<ContractEvent>> {
        let tenant = &caller.tenant_id;
        store::accounts::must_exist(self.db.conn(), tenant, account_id).await?;
        store::contracts::list(self.db.conn(), tenant, account_id, after, limit).await
    }
}
