//! Ingesting usage: the late window, unknown accounts, the tenant's days,
//! idempotent storage; the rollups and the scores follow in the background.

use banso_kit::{Result, auth::Caller, shown};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::App;
use crate::{
    domain::rollup::day_of,
    metrics,
    store::{self, ingest::AcceptedEvent},
};

/// How far ahead of the server's clock an event may be (clock skew).
const FUTURE_SLACK: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Where a usage event's account is, before it is looked up.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AccountRef {
    Id(Uuid),
    External(String),
}

/// A usage event whose fields are valid; its time and account are checked here.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UsageEvent {
    /// Its place in the request (across the messages of a stream).
    pub index: i64,
    pub event_id: String,
    pub account: AccountRef,
    pub user_key: String,
    pub event_name: String,
    pub occur_time: DateTime<Utc>,
    pub quantity: f64,
    pub duration_secs: Option<f64>,
    pub properties: serde_json::Value,
}

/// Why an event was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RejectReason {
    /// A field is malformed.
    Invalid,
    /// No live account of the tenant has that id or external id.
    UnknownAccount,
    /// Older than the late window.
    TooOld,
    /// Ahead of the server's clock by more than the slack.
    InFuture,
}

impl RejectReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RejectReason::Invalid => "INVALID",
            RejectReason::UnknownAccount => "UNKNOWN_ACCOUNT",
            RejectReason::TooOld => "TOO_OLD",
            RejectReason::InFuture => "IN_FUTURE",
        }
    }
}

/// One refused event, or one bad field of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rejection {
    pub index: i64,
    pub event_id: String,
    pub reason: RejectReason,
    pub field: String,
    pub description: String,
}

/// One batch as the API parsed it: the events with valid fields, and for
/// the others every bad field.
#[derive(Debug, Default)]
pub(crate) struct IngestBatch {
    pub events: Vec<UsageEvent>,
    /// Events refused for their fields (one rejection per bad field).
    pub invalid: Vec<Rejection>,
    /// How many events `invalid` names.
    pub invalid_events: u64,
}

/// What became of a batch.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct IngestOutcome {
    /// Events stored now.
    pub accepted: u64,
    /// Events whose id was stored before.
    pub duplicates: u64,
    /// Events refused.
    pub rejected: u64,
    /// Why, by index (an invalid event once per bad field).
    pub rejections: Vec<Rejection>,
}

impl App {
    /// Ingests one batch: events outside the late window or of accounts
    /// the tenant does not have are refused one by one, the rest stored
    /// once per event id (the acknowledgement means durable); the rollup
    /// task folds them and has their accounts rescored.
    pub(crate) async fn ingest_batch(&self, caller: &Caller, batch: IngestBatch) -> Result<IngestOutcome> {
        let tenant = caller.tenant_id.as_str();
        let now = Utc::now();
        let late_window = chrono::Duration::from_std(self.settings.late_window).unwrap_or(chrono::TimeDelta::MAX);
        let oldest = now.checked_sub_signed(late_window).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let newest = now.checked_add_signed(FUTURE_SLACK).unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut out = IngestOutcome { rejected: batch.invalid_events, rejections: batch.invalid, ..Default::default() };
        let mut reject = |e: &UsageEvent, reason: RejectReason, field: &str, description: String| {
            out.rejected += 1;
            out.rejections.push(Rejection {
                index: e.index,
                event_id: e.event_id.clone(),
                reason,
                field: field.to_owned(),
                description,
            });
        };
        let mut timely = Vec::with_capacity(batch.events.len());
        for e in batch.events {
            if e.occur_time < oldest {
                let hours = self.settings.late_window.as_secs() / 3600;
                reject(
                    &e,
                    RejectReason::TooOld,
                    "timestamp",
                    format!("{} is older than the late window ({hours} hours)", e.occur_time),
                );
            } else if e.occur_time > newest {
                reject(&e, RejectReason::InFuture, "timestamp", format!("{} is in the future", e.occur_time));
            } else {
                timely.push(e);
            }
        }
        let conn = self.db.conn();
        let ids: Vec<Uuid> =
            timely.iter().filter_map(|e| if let AccountRef::Id(id) = e.account { Some(id) } else { None }).collect();
        let externals: Vec<&str> = timely
            .iter()
            .filter_map(|e| if let AccountRef::External(x) = &e.account { Some(x.as_str()) } else { None })
            .collect();
        let (known, by_external) = store::accounts::resolve(conn, tenant, &ids, &externals).await?;
        let tz = store::tenants::time_zone(conn, tenant).await?;
        let mut accepted = Vec::with_capacity(timely.len());
        for e in timely {
            let account = match &e.account {
                AccountRef::Id(id) => known.contains(id).then_some(*id),
                AccountRef::External(x) => by_external.get(x).copied(),
            };
            // Events of unknown accounts are refused, never dropped silently:
            // the sender learns at once and can resend once the account exists.
            let Some(account_id) = account else {
                let which = match &e.account {
                    AccountRef::Id(id) => format!("account {id}"),
                    AccountRef::External(x) => format!("account with external_id {}", shown(x)),
                };
                reject(&e, RejectReason::UnknownAccount, "account_id", format!("{which} is not known to this tenant"));
                continue;
            };
            accepted.push(AcceptedEvent {
                day: day_of(e.occur_time, tz),
                event_id: e.event_id,
                account_id,
                user_key: e.user_key,
                event_name: e.event_name,
                occur_time: e.occur_time,
                quantity: e.quantity,
                duration_secs: e.duration_secs,
                properties: e.properties,
            });
        }
        let stored = self.ingest.store(conn, tenant, &accepted).await?;
        if !stored.is_empty() {
            // The rollup task folds the batch and has its accounts rescored.
            self.rollups.wake();
        }
        out.accepted = stored.len() as u64;
        out.duplicates = (accepted.len() - stored.len()) as u64;
        out.rejections.sort_by_key(|r| r.index);
        metrics::ingested(&out);
        Ok(out)
    }
}
