//! Contract events on the wire.

use banso_kit::{Result, Violations, auth::Caller, paging::QueryKey, server::Kit, wire};
use banso_proto::accounts as pb;
use chrono::NaiveDate;
use uuid::Uuid;

use super::{
    accounts,
    convert::{Paged, money_from_proto, money_to_proto, page_size, request_id, required},
};
use crate::{
    app::RecordContract,
    domain::contract::{ContractEvent, ContractInput, ContractKind, Recorded},
};

fn kind_from_proto(v: &mut Violations, field: &str, raw: i32) -> Option<ContractKind> {
    use ContractKind as K;
    match pb::ContractEventKind::try_from(raw) {
        Ok(pb::ContractEventKind::New) => Some(K::New),
        Ok(pb::ContractEventKind::Renewal) => Some(K::Renewal),
        Ok(pb::ContractEventKind::Expansion) => Some(K::Expansion),
        Ok(pb::ContractEventKind::Contraction) => Some(K::Contraction),
        Ok(pb::ContractEventKind::Churn) => Some(K::Churn),
        Ok(pb::ContractEventKind::Reactivation) => Some(K::Reactivation),
        Ok(pb::ContractEventKind::Unspecified) => {
            v.add(field, "is required (CONTRACT_EVENT_KIND_UNSPECIFIED is not a kind)");
            None
        }
        Err(_) => {
            v.add(field, format!("{raw} is not a ContractEventKind"));
            None
        }
    }
}

fn kind_to_proto(k: ContractKind) -> pb::ContractEventKind {
    use ContractKind as K;
    match k {
        K::New => pb::ContractEventKind::New,
        K::Renewal => pb::ContractEventKind::Renewal,
        K::Expansion => pb::ContractEventKind::Expansion,
        K::Contraction => pb::ContractEventKind::Contraction,
        K::Churn => pb::ContractEventKind::Churn,
        K::Reactivation => pb::ContractEventKind::Reactivation,
    }
}

pub(crate) fn to_proto(e: &ContractEvent) -> pb::ContractEvent {
    pb::ContractEvent {
        id: e.id.to_string(),
        account_id: e.account_id.to_string(),
        kind: kind_to_proto(e.kind) as i32,
        arr_before: Some(money_to_proto(&e.arr_before)),
        arr_after: Some(money_to_proto(&e.arr_after)),
        effective_date: Some(wire::date_to_proto(e.effective_date)),
        term_end: e.term_end.map(wire::date_to_proto),
        reason_code: e.reason_code.clone(),
        note: e.note.clone(),
        recorded_by: e.recorded_by.clone(),
        create_time: Some(wire::timestamp(e.create_time)),
    }
}

pub(crate) fn record_reply(r: &Recorded) -> pb::RecordContractEventResponse {
    pb::RecordContractEventResponse {
        contract_event: Some(to_proto(&r.event)),
        account: Some(accounts::to_proto(&r.account)),
    }
}

pub(crate) fn record(r: pb::RecordContractEventRequest) -> Result<RecordContract> {
    let mut v = Violations::new();
    let request_id = request_id(&mut v, &r.request_id);
    let p = required(&mut v, "contract_event", r.contract_event.as_ref());
    let account_id = p.and_then(|p| v.take(wire::uuid("contract_event.account_id", &p.account_id)));
    let input = p.and_then(|p| {
        let kind = kind_from_proto(&mut v, "contract_event.kind", p.kind);
        let arr_after = p.arr_after.as_ref().and_then(|m| money_from_proto(&mut v, "contract_event.arr_after", m));
        let effective_date = required(&mut v, "contract_event.effective_date", p.effective_date.as_ref())
            .and_then(|d| wire::date(&mut v, "contract_event.effective_date", d.year, d.month, d.day));
        let term_end = wire::optional_date(&mut v, "contract_event.term_end", p.term_end.as_ref());
        wire::text(&mut v, "contract_event.reason_code", &p.reason_code, 64);
        wire::text(&mut v, "contract_event.note", &p.note, 2000);
        Some(ContractInput {
            kind: kind?,
            arr_after,
            effective_date: effective_date?,
            term_end,
            reason_code: p.reason_code.clone(),
            note: p.note.clone(),
        })
    });
    let (account_id, input) = v.finish_with((account_id, input))?;
    Ok(RecordContract { request_id, account_id, input })
}

/// A ListContractEvents request, parsed.
pub(crate) struct ListContractEvents {
    pub account_id: Uuid,
    pub page: Paged<(NaiveDate, Uuid)>,
}

pub(crate) fn list(kit: &Kit, caller: &Caller, r: pb::ListContractEventsRequest) -> Result<ListContractEvents> {
    let mut v = Violations::new();
    let account_id = v.take(wire::uuid("account_id", &r.account_id));
    let limit = page_size(&mut v, r.page_size);
    let (account_id, limit) = v.finish_with((account_id, limit))?;
    let key = QueryKey::new("ListContractEvents", &caller.tenant_id).part(account_id.as_bytes());
    Ok(ListContractEvents { account_id, page: Paged::new(&kit.page_tokens, key, &r.page_token, limit)? })
}

pub(crate) fn list_reply(
    kit: &Kit,
    q: &ListContractEvents,
    rows: Vec<ContractEvent>,
) -> Result<pb::ListContractEventsResponse> {
    let (rows, next_page_token) = q.page.page(&kit.page_tokens, rows, |last| (last.effective_date, last.id))?;
    Ok(pb::ListContractEventsResponse { contract_events: rows.iter().map(to_proto).collect(), next_page_token })
}
