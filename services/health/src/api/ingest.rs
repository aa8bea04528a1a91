//! Usage events on the wire: each event's fields parsed (a bad event is
//! rejected by itself, naming every bad field), batches handed to the
//! ingest use case, the outcomes merged into one reply.

use banso_kit::{Error, Result, Violations, auth::Caller, shown, wire};
use banso_proto::health as pb;
use tonic::{Status, Streaming};

use crate::{
    app::{
        App,
        ingest::{AccountRef, IngestBatch, IngestOutcome, RejectReason, Rejection, UsageEvent},
    },
    domain::measure::is_event_name,
};

/// Events one request message may carry.
pub(crate) const MAX_BATCH: usize = 5_000;
/// Rejections a response lists (all are counted).
const MAX_REJECTIONS: usize = 1_000;
/// Messages of one IngestUsage stream stored at once ([`stream`]).
const PIPELINE: usize = 2;

/// One event's fields, or every bad one.
fn event(index: i64, e: &pb::UsageEvent) -> std::result::Result<UsageEvent, Vec<(String, String)>> {
    let mut v = Violations::new();
    let chars = e.event_id.chars().count();
    if chars == 0 || chars > 128 || e.event_id.chars().any(char::is_control) {
        v.add("event_id", format!("must be 1 to 128 printable characters, got {}", shown(&e.event_id)));
    }
    let account = if !e.account_id.is_empty() {
        v.take(wire::uuid("account_id", &e.account_id)).map(AccountRef::Id)
    } else if !e.account_external_id.is_empty() {
        // A bad one is a violation; the event is refused with it.
        wire::text(&mut v, "account_external_id", &e.account_external_id, 128);
        Some(AccountRef::External(e.account_external_id.clone()))
    } else {
        v.add("account_id", "is required (or account_external_id)");
        None
    };
    wire::text(&mut v, "user_id", &e.user_id, 256);
    if !is_event_name(&e.event_name) {
        v.add("event_name", format!("must be 1 to 128 of [A-Za-z0-9_.:-], got {}", shown(&e.event_name)));
    }
    let occur_time = match &e.timestamp {
        None => {
            v.add("timestamp", "is required");
            None
        }
        Some(t) => v.take(wire::time("timestamp", t)),
    };
    let quantity = e.quantity.unwrap_or(1.0);
    if !quantity.is_finite() || quantity < 0.0 {
        v.add("quantity", format!("must be finite and not negative, got {quantity}"));
    }
    if let Some(d) = e.duration_seconds
        && !(d.is_finite() && (0.0..=86_400.0).contains(&d))
    {
        v.add("duration_seconds", format!("must be 0 to 86400, got {d}"));
    }
    if e.properties.len() > 50 {
        v.add("properties", format!("at most 50 entries, got {}", e.properties.len()));
    }
    for (k, val) in &e.properties {
        let field = format!("properties[{}]", shown(k));
        if k.is_empty() {
            v.add(field.clone(), "keys must be 1 to 64 characters");
        }
        wire::text(&mut v, &field, k, 64);
        wire::multiline_text(&mut v, &field, val, 1024);
    }
    match v.finish_with((account, occur_time)) {
        Ok((account, occur_time)) => Ok(UsageEvent {
            index,
            event_id: e.event_id.clone(),
            account,
            user_key: e.user_id.clone(),
            event_name: e.event_name.clone(),
            occur_time,
            quantity,
            duration_secs: e.duration_seconds,
            properties: serde_json::Value::Object(
                e.properties.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect(),
            ),
        }),
        Err(Error::InvalidArgument(vs)) => Err(vs.into_iter().map(|x| (x.field, x.description)).collect()),
        Err(other) => Err(vec![(String::new(), other.to_string())]),
    }
}

/// A batch of events, numbered from `first_index`: those with valid fields,
/// and a rejection for each bad field of the others.
pub(crate) fn batch(events: &[pb::UsageEvent], first_index: i64) -> IngestBatch {
    let mut out = IngestBatch::default();
    for (i, e) in events.iter().enumerate() {
        let index = first_index + i as i64;
        match event(index, e) {
            Ok(ok) => out.events.push(ok),
            Err(violations) => {
                out.invalid_events += 1;
                out.invalid.extend(violations.into_iter().map(|(field, description)| Rejection {
                    index,
                    event_id: e.event_id.clone(),
                    reason: RejectReason::Invalid,
                    field,
                    description,
                }));
            }
        }
    }
    out
}

/// BatchIngestUsage's events: at most [`MAX_BATCH`].
pub(crate) fn one_batch(r: &pb::BatchIngestUsageRequest) -> Result<IngestBatch> {
    if r.events.len() > MAX_BATCH {
        return Err(Error::invalid(
            "events",
            format!("at most {MAX_BATCH} events per batch, got {}; use IngestUsage to stream more", r.events.len()),
        ));
    }
    Ok(batch(&r.events, 0))
}

/// Adds a batch's outcome to the reply (listing at most [`MAX_REJECTIONS`]).
pub(crate) fn merge(resp: &mut pb::IngestUsageResponse, o: IngestOutcome) {
    resp.accepted += o.accepted as i64;
    resp.duplicates += o.duplicates as i64;
    resp.rejected += o.rejected as i64;
    let room = MAX_REJECTIONS.saturating_sub(resp.rejections.len());
    resp.rejections.extend(o.rejections.into_iter().take(room).map(|r| pb::UsageRejection {
        index: r.index,
        event_id: r.event_id,
        reason: r.reason.as_str().to_owned(),
        field: r.field,
        description: r.description,
    }));
}

/// IngestUsage: each message in batches of at most [`MAX_BATCH`], numbered
/// across the stream. Up to [`PIPELINE`] messages are stored at once, each
/// in its own transaction, while the next is read and decoded: the
/// service's CPU (decoding, checks, encoding the COPY) and the database's
/// overlap, and one message's commit does not hold up the next's COPY.
/// Outcomes are merged in stream order. If one fails, the stream fails,
/// and messages stored before or beside it stay stored: a client resends
/// the stream, and event ids make that safe.
pub(crate) async fn stream(
    app: &App,
    caller: &Caller,
    mut stream: Streaming<pb::IngestUsageRequest>,
) -> Result<pb::IngestUsageResponse> {
    use futures::{StreamExt, stream::FuturesOrdered};
    let read = |r: std::result::Result<pb::IngestUsageRequest, Status>| {
        r.map_err(|s| Error::invalid("stream", format!("cannot read the request stream: {}", shown(s.message()))))
    };
    let mut resp = pb::IngestUsageResponse::default();
    let mut next = 0i64;
    let mut storing = FuturesOrdered::new();
    let mut reading = true;
    loop {
        tokio::select! {
            // `next` on the stream is cancel-safe: a message half read stays in it.
            m = stream.next(), if reading && storing.len() < PIPELINE => {
                let Some(m) = m else {
                    reading = false;
                    continue;
                };
                let msg = read(m)?;
                let first = next;
                next += msg.events.len() as i64;
                // Busy from the message in hand until it is stored (its checks
                // and lookups included), for the background tasks that give
                // way to a saturated ingest (`IngestLoad`); not while waiting
                // for the client. Only streams count: the bulk path. Many
                // clients each sending a few live events (BatchIngestUsage,
                // the gateway's tracking routes) keep some call in flight
                // most of the time without saturating anything, and their
                // scores must not wait.
                let busy = app.ingest_load.storing();
                storing.push_back(async move {
                    let mut outcomes = Vec::new();
                    let mut index = first;
                    for chunk in msg.events.chunks(MAX_BATCH) {
                        outcomes.push(app.ingest_batch(caller, batch(chunk, index)).await?);
                        index += chunk.len() as i64;
                    }
                    drop(busy);
                    Ok::<_, Error>(outcomes)
                });
            }
            Some(stored) = storing.next(), if !storing.is_empty() => {
                for outcome in stored? {
                    merge(&mut resp, outcome);
                }
            }
            else => break,
        }
    }
    Ok(resp)
}
