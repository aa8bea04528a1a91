//! The outreach worker: sends due deliveries to their webhook endpoints,
//! signed, and records each attempt; retries with exponential backoff and
//! full jitter; dead-letters after the last attempt. Replicas share the
//! work through a lease on each delivery, so none is sent twice at once.
//!
//! It wakes when a firing that queued a delivery commits
//! ([`Signal::after_commit`]) and looks for due deliveries every second.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use banso_events::Db;
use banso_kit::{config::Config, supervise::Supervisor, wire};
use banso_proto::events as ev;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{
    domain::outreach::{self as rules, DeliveryStatus, UrlPolicy},
    store::outreach::{self as store, AttemptResult, Delivery, Endpoint},
};

/// How long one attempt may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// How long a claimed delivery stays with its replica: well past the
/// timeout, so a slow attempt is never sent a second time beside it.
const LEASE: chrono::Duration = chrono::Duration::seconds(60);

/// Deliveries one claim takes, sent concurrently.
const BATCH: u64 = 16;

/// The webhook settings of the service.
#[derive(Debug, Clone)]
pub(crate) struct OutreachSettings {
    pub policy: UrlPolicy,
    pub max_attempts: u32,
    pub base_delay: Duration,
}

impl OutreachSettings {
    /// `BANSO_PLAYBOOKS_WEBHOOK_ALLOW_HTTP` (default false),
    /// `BANSO_PLAYBOOKS_WEBHOOK_ALLOW_PRIVATE` (default false),
    /// `BANSO_PLAYBOOKS_WEBHOOK_MAX_ATTEMPTS` (default 8; 1 to 50),
    /// `BANSO_PLAYBOOKS_WEBHOOK_BASE_DELAY_MS` (default 5000; 1 to 3,600,000).
    pub(crate) fn from_config(cfg: &Config) -> anyhow::Result<Self> {
        let v = cfg.vars();
        Ok(OutreachSettings {
            policy: UrlPolicy {
                allow_http: v.parse("BANSO_PLAYBOOKS_WEBHOOK_ALLOW_HTTP", false)?,
                allow_private: v.parse("BANSO_PLAYBOOKS_WEBHOOK_ALLOW_PRIVATE", false)?,
            },
            max_attempts: v.number("BANSO_PLAYBOOKS_WEBHOOK_MAX_ATTEMPTS", 8u32, 1, 50)?,
            base_delay: Duration::from_millis(v.number(
                "BANSO_PLAYBOOKS_WEBHOOK_BASE_DELAY_MS",
                5000u64,
                1,
                3_600_000,
            )?),
        })
    }
}

/// Wakes the worker once a transaction that queued a delivery commits.
#[derive(Clone, Default)]
pub(crate) struct Signal {
    notify: Arc<Notify>,
    queued: Arc<AtomicBool>,
}

impl Signal {
    /// A delivery was queued in a transaction not yet committed.
    pub(crate) fn queued(&self) {
        self.queued.store(true, Ordering::Release);
    }

    /// A transaction that may have queued deliveries committed: wake the
    /// worker if one did. (Two transactions racing may spend one wake-up
    /// early; the once-a-second poll then finds the other's.)
    pub(crate) fn after_commit(&self) {
        if self.queued.swap(false, Ordering::AcqRel) {
            self.notify.notify_one();
        }
    }

    /// Runs a queue worker's `round` (given this replica's id) under the
    /// supervisor as task `task`: again whenever a commit wakes it, and at
    /// least every second; a failed round is logged and the next tries again.
    pub(crate) fn drive<F, Fut>(&self, supervisor: &Supervisor, service: &'static str, task: &'static str, round: F)
    where
        F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = banso_kit::Result<()>> + Send + 'static,
    {
        let replica = format!("{}-{}", std::process::id(), Uuid::now_v7().simple());
        let signal = self.clone();
        supervisor.spawn(service, task, move |shutdown| {
            let (signal, round, replica) = (signal.clone(), round.clone(), replica.clone());
            async move {
                loop {
                    if let Err(e) = round(replica.clone()).await {
                        tracing::warn!(task, error = %e, "worker round failed");
                    }
                    tokio::select! {
                        _ = signal.notify.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => return Ok(()),
                    }
                }
            }
        });
    }

    /// Wakes the worker now (a redelivery committed).
    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }
}

/// Runs the worker under the supervisor.
pub(crate) fn supervise(
    supervisor: &Supervisor,
    service: &'static str,
    db: Db,
    signal: Signal,
    settings: OutreachSettings,
) {
    signal.drive(supervisor, service, "playbooks-outreach", move |replica| {
        let (db, settings) = (db.clone(), settings.clone());
        async move { round(&db, &settings, &replica).await }
    });
}

/// Sends every due delivery, a claimed batch at a time.
async fn round(db: &Db, settings: &OutreachSettings, replica: &str) -> banso_kit::Result<()> {
    loop {
        let owner = format!("{replica}-{}", Uuid::now_v7().simple());
        let now = wire::now();
        let claimed = store::claim_due(db.conn(), &owner, now, now + LEASE, BATCH).await?;
        let n = claimed.len() as u64;
        let sends = claimed.into_iter().map(|(tenant, d)| {
            let owner = owner.clone();
            async move {
                if let Err(e) = send(db, settings, &tenant, d, &owner).await {
                    tracing::warn!(tenant, error = %e, "outreach delivery failed to record");
                }
            }
        });
        futures::future::join_all(sends).await;
        if n < BATCH {
            return Ok(());
        }
    }
}

/// One attempt of one claimed delivery, recorded with its outcome.
async fn send(db: &Db, settings: &OutreachSettings, tenant: &str, d: Delivery, owner: &str) -> banso_kit::Result<()> {
    let conn = db.conn();
    let Some(endpoint) = store::find_endpoint(conn, tenant, d.endpoint_id).await? else {
        let now = wire::now();
        let r = AttemptResult {
            status: DeliveryStatus::Dead,
            attempts: d.attempts,
            next_attempt_time: None,
            last_error: "the webhook endpoint was deleted".into(),
            sent_time: None,
        };
        return db
            .write(tenant, async |tx| {
                if store::finish_attempt(tx.conn(), tx.tenant(), d.id, owner, &r, now).await? {
                    tx.emit(failed(&d, d.attempts, &r.last_error)).await?;
                }
                Ok(())
            })
            .await;
    };
    if !endpoint.enabled {
        // A disabled endpoint's deliveries wait until it is enabled again.
        return store::postpone(conn, tenant, d.id, owner, wire::now() + chrono::Duration::seconds(60)).await;
    }
    let started = wire::now();
    let clock = Instant::now();
    let outcome = post(settings, &endpoint, &d, started).await;
    let duration = clock.elapsed();
    let number = d.attempts + 1;
    let (http_status, error) = match &outcome {
        Ok(s) if (200..300).contains(s) => (*s, String::new()),
        Ok(s) => (*s, format!("HTTP {s}")),
        Err(e) => (0, e.clone()),
    };
    let now = wire::now();
    let r = if error.is_empty() {
        AttemptResult {
            status: DeliveryStatus::Succeeded,
            attempts: number,
            next_attempt_time: None,
            last_error: String::new(),
            sent_time: Some(now),
        }
    } else if number as u32 >= settings.max_attempts {
        AttemptResult {
            status: DeliveryStatus::Dead,
            attempts: number,
            next_attempt_time: None,
            last_error: error.clone(),
            sent_time: None,
        }
    } else {
        let wait = rules::backoff(settings.base_delay, rules::MAX_DELAY, number as u32, rand::random::<f64>());
        let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
        AttemptResult {
            status: DeliveryStatus::Pending,
            attempts: number,
            next_attempt_time: Some(now + wait),
            last_error: error.clone(),
            sent_time: None,
        }
    };
    let attempt = store::Attempt {
        series: d.series,
        number,
        attempt_time: started,
        duration_micros: duration.as_micros().min(i64::MAX as u128) as i64,
        http_status: i32::from(http_status),
        error,
    };
    metrics::counter!("banso_outreach_attempts_total", "outcome" => r.status.as_str()).increment(1);
    db.write(tenant, async |tx| {
        // Written only while the lease is ours: a replica that took over an
        // expired lease records its own attempt instead.
        if !store::finish_attempt(tx.conn(), tx.tenant(), d.id, owner, &r, now).await? {
            return Ok(());
        }
        store::insert_attempt(tx.conn(), tx.tenant(), d.id, &attempt).await?;
        match r.status {
            DeliveryStatus::Succeeded => tx.emit(sent(&d, number, now)).await?,
            DeliveryStatus::Dead => tx.emit(failed(&d, number, &r.last_error)).await?,
            _ => {}
        }
        Ok(())
    })
    .await
}

fn opt(id: Option<Uuid>) -> String {
    id.map(|x| x.to_string()).unwrap_or_default()
}

/// What another service sent a delivery for ("survey_invitation:<id>",
/// "feedback_notice:<id>"), echoed in OutreachSent and OutreachFailed so
/// it can follow its message.
fn correlation(d: &Delivery) -> String {
    use crate::app::outreach::{FEEDBACK_NOTICE, SURVEY_INVITATION, SURVEY_INVITATION_KIND};
    match d.trigger_kind.as_str() {
        SURVEY_INVITATION_KIND => format!("{SURVEY_INVITATION}:{}", d.trigger_event_id),
        FEEDBACK_NOTICE => format!("{FEEDBACK_NOTICE}:{}", d.trigger_event_id),
        _ => String::new(),
    }
}

fn sent(d: &Delivery, attempts: i32, at: DateTime<Utc>) -> banso_events::Payload {
    banso_events::Payload::OutreachSent(ev::OutreachSent {
        delivery_id: d.id.to_string(),
        account_id: d.account_id.to_string(),
        contact_id: opt(d.contact_id),
        playbook_id: opt(d.playbook_id),
        endpoint_id: d.endpoint_id.to_string(),
        subject: d.subject.clone(),
        sent_time: Some(wire::timestamp(at)),
        attempts,
        correlation_id: correlation(d),
    })
}

pub(crate) fn failed(d: &Delivery, attempts: i32, error: &str) -> banso_events::Payload {
    banso_events::Payload::OutreachFailed(ev::OutreachFailed {
        delivery_id: d.id.to_string(),
        account_id: d.account_id.to_string(),
        contact_id: opt(d.contact_id),
        playbook_id: opt(d.playbook_id),
        endpoint_id: d.endpoint_id.to_string(),
        attempts,
        last_error: error.to_string(),
        correlation_id: correlation(d),
    })
}

/// Posts the delivery's payload, signed; the HTTP status, or why there was none.
async fn post(settings: &OutreachSettings, e: &Endpoint, d: &Delivery, now: DateTime<Utc>) -> Result<u16, String> {
    let url = reqwest::Url::parse(&e.url).map_err(|x| format!("the endpoint's URL does not parse: {x}"))?;
    let host = url.host_str().ok_or("the endpoint's URL has no host")?.to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let mut client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        // A redirect could lead anywhere, past the guard: 3xx is a failure.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("banso-webhooks/", env!("CARGO_PKG_VERSION")));
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        guard(settings, &host, ip)?;
    } else {
        // Resolve once, check every address, and connect only to those
        // checked: a second lookup (DNS rebinding) cannot change them.
        let addrs: Vec<SocketAddr> = tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((bare, port)))
            .await
            .map_err(|_| format!("resolving {host} timed out"))?
            .map_err(|x| format!("resolving {host} failed: {x}"))?
            .collect();
        let mut allowed = Vec::new();
        let mut refused = None;
        for a in addrs {
            match guard(settings, &host, a.ip()) {
                Ok(()) => allowed.push(a),
                Err(why) => refused = Some(why),
            }
        }
        if allowed.is_empty() {
            return Err(refused.unwrap_or_else(|| format!("{host} resolves to no address")));
        }
        client = client.resolve_to_addrs(bare, &allowed);
    }
    let client = client.build().map_err(|x| format!("no HTTP client: {x}"))?;
    let t = now.timestamp();
    let body = d.payload.clone().into_bytes();
    let signature = rules::signature_header(&e.signing_secrets(now), t, &body);
    let res = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Banso-Webhook-Id", d.id.to_string())
        .header("Banso-Webhook-Timestamp", t.to_string())
        .header("Banso-Signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|x| describe(&x))?;
    Ok(res.status().as_u16())
}

fn guard(settings: &OutreachSettings, host: &str, ip: IpAddr) -> Result<(), String> {
    match rules::forbidden(ip) {
        Some(why) if !settings.policy.allow_private => {
            Err(format!("refused: {host} resolves to {ip}, a {why} address, which webhooks may not reach"))
        }
        _ => Ok(()),
    }
}

/// A transport error with its causes, shortened.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("timed out after {} s", TIMEOUT.as_secs());
    }
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s.chars().take(500).collect()
}
