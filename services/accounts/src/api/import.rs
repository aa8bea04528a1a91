//! Import streams on the wire: each message parsed into chunks of rows
//! (valid, or refused with every violation), the tally as the response.

use banso_kit::{Error, Violations, fieldmask::FieldPath as _, wire};
use banso_proto::accounts as pb;
use futures::{Stream, StreamExt};
use tonic::{Status, Streaming};

use super::{accounts, contacts};
use crate::{
    app::{AccountChunk, AccountRef, AccountRow, Chunk, ContactRow, ImportTally, Refused},
    domain::ContactField,
};

/// Rows a message may hold (the proto says so): a chunk is one message.
const MAX_ROWS: usize = 1000;

/// A broken request stream (a bad message, the client gone).
fn stream_error(s: &Status) -> Error {
    Error::invalid("stream", format!("cannot read the request stream: {}", s.message()))
}

/// INVALID_ARGUMENT for a message over [`MAX_ROWS`]; the rows of the
/// messages before it are kept, as for any broken stream.
fn too_many(field: &str, n: usize) -> Error {
    Error::invalid(field, format!("a message holds at most {MAX_ROWS} rows, got {n}: send them in several messages"))
}

/// The violations of a refused row (every one, from a finished `Violations`).
fn refused(row: i64, external_id: &str, e: Error) -> Refused {
    let violations = match e {
        Error::InvalidArgument(vs) => vs,
        other => vec![banso_kit::error::FieldViolation { field: String::new(), description: other.to_string() }],
    };
    Refused { row, external_id: external_id.to_owned(), violations }
}

/// An ImportAccounts stream as chunks of parsed rows, numbered from 0
/// across messages.
pub(crate) fn account_chunks(
    stream: Streaming<pb::ImportAccountsRequest>,
) -> impl Stream<Item = banso_kit::Result<AccountChunk>> + Send + 'static {
    let mut next_row: i64 = 0;
    stream.map(move |msg| match msg {
        Ok(msg) if msg.accounts.len() > MAX_ROWS => Err(too_many("accounts", msg.accounts.len())),
        Ok(msg) => Ok(account_chunk(&msg.accounts, &mut next_row)),
        Err(s) => Err(stream_error(&s)),
    })
}

fn account_chunk(rows: &[pb::Account], next_row: &mut i64) -> AccountChunk {
    let mut chunk = Chunk { rows: 0, valid: Vec::new(), refused: Vec::new() };
    for acc in rows {
        let row = *next_row;
        *next_row += 1;
        chunk.rows += 1;
        let mut v = Violations::new();
        if acc.external_id.is_empty() {
            v.add("external_id", "is required: imports match on it");
        }
        let fields = accounts::whole(acc, "", &mut v);
        match v.finish() {
            Ok(()) => chunk.valid.push(AccountRow { row, fields }),
            Err(e) => chunk.refused.push(refused(row, &acc.external_id, e)),
        }
    }
    chunk
}

/// An ImportContacts stream as one chunk of parsed rows a message.
pub(crate) fn contact_chunks(
    stream: Streaming<pb::ImportContactsRequest>,
) -> impl Stream<Item = banso_kit::Result<Chunk<ContactRow>>> + Send + 'static {
    let mut next_row: i64 = 0;
    stream.map(move |msg| match msg {
        Ok(msg) if msg.rows.len() > MAX_ROWS => Err(too_many("rows", msg.rows.len())),
        Ok(msg) => Ok(contact_chunk(&msg.rows, &mut next_row)),
        Err(s) => Err(stream_error(&s)),
    })
}

fn contact_chunk(rows: &[pb::ContactImportRow], next_row: &mut i64) -> Chunk<ContactRow> {
    let mut chunk = Chunk { rows: 0, valid: Vec::new(), refused: Vec::new() };
    for r in rows {
        let row = *next_row;
        *next_row += 1;
        chunk.rows += 1;
        let default = pb::Contact::default();
        let c = r.contact.as_ref().unwrap_or(&default);
        let mut v = Violations::new();
        if r.contact.is_none() {
            v.add("contact", "is required");
        }
        if c.external_id.is_empty() {
            v.add("external_id", "is required: imports match on it");
        }
        let account_id = v.take(wire::optional_uuid("account_id", &c.account_id)).flatten();
        wire::text(&mut v, "account_external_id", &r.account_external_id, 128);
        let account = match (account_id, r.account_external_id.is_empty()) {
            (Some(id), _) => Some(AccountRef::Id(id)),
            (None, false) => Some(AccountRef::ExternalId(r.account_external_id.clone())),
            (None, true) => {
                if c.account_id.is_empty() {
                    v.add("account_external_id", "is required when contact.account_id is empty");
                }
                None
            }
        };
        let fields = contacts::fields(c, "", ContactField::ALL, &mut v);
        match v.finish_with(account) {
            Ok(account) => chunk.valid.push(ContactRow { row, account, fields }),
            Err(e) => chunk.refused.push(refused(row, &c.external_id, e)),
        }
    }
    chunk
}

fn errors(t: &mut ImportTally) -> Vec<pb::ImportRowError> {
    std::mem::take(&mut t.errors)
        .into_iter()
        .map(|e| pb::ImportRowError {
            row: e.row,
            external_id: e.external_id,
            field: e.field,
            description: e.description,
        })
        .collect()
}

pub(crate) fn accounts_reply(mut t: ImportTally) -> pb::ImportAccountsResponse {
    pb::ImportAccountsResponse {
        errors: errors(&mut t),
        rows: t.rows,
        created: t.created,
        updated: t.updated,
        unchanged: t.unchanged,
        failed: t.failed,
    }
}

pub(crate) fn contacts_reply(mut t: ImportTally) -> pb::ImportContactsResponse {
    pb::ImportContactsResponse {
        errors: errors(&mut t),
        rows: t.rows,
        created: t.created,
        updated: t.updated,
        unchanged: t.unchanged,
        failed: t.failed,
    }
}
