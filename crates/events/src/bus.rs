//! The bus: one trait, two implementations, one delivery policy.
//!
//! Delivery is at-least-once and ordered: a consumer handles its messages one
//! at a time, in the order they were published, and moves on only when the
//! handler succeeded or the message was dead-lettered. A handler error is
//! retried in place with backoff ([`deliver`]), so a later event of the same
//! tenant is never handled before an earlier one:
//! - [`HandlerError::Transient`] (the database is down, a write lost a race)
//!   is retried until it succeeds or the consumer stops;
//! - [`HandlerError::Rejected`] (the event cannot be applied) is retried
//!   [`DeliveryPolicy::max_attempts`] times in all, counting earlier
//!   deliveries, then goes to the dead letter and is counted in
//!   `banso_events_dead_lettered_total`.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    envelope::Envelope,
    partition::{Leases, Partitions},
};

pub const CONSUMED_TOTAL: &str = "banso_events_consumed_total";
pub const RETRIES_TOTAL: &str = "banso_events_handler_retries_total";
pub const DEAD_LETTERED_TOTAL: &str = "banso_events_dead_lettered_total";
pub const PUBLISHED_TOTAL: &str = "banso_events_published_total";

/// Why a handler could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Try again later: it may work then.
    #[error("transient failure: {0:#}")]
    Transient(anyhow::Error),
    /// The event cannot be applied as it is.
    #[error("rejected: {0:#}")]
    Rejected(anyhow::Error),
}

impl From<banso_kit::Error> for HandlerError {
    fn from(e: banso_kit::Error) -> Self {
        use banso_kit::Error as E;
        match e {
            E::Unavailable(_) | E::Aborted { .. } => HandlerError::Transient(anyhow::anyhow!("{e}")),
            other => HandlerError::Rejected(anyhow::anyhow!("{other}")),
        }
    }
}

impl From<sea_orm::DbErr> for HandlerError {
    fn from(e: sea_orm::DbErr) -> Self {
        banso_kit::Error::from(e).into()
    }
}

/// What a consuming service does with each event.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, envelope: &Envelope) -> Result<(), HandlerError>;
}

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The envelope id: the bus deduplicates on it (`Nats-Msg-Id`).
    pub id: String,
    pub subject: String,
    /// The encoded `Envelope`.
    pub payload: Bytes,
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// "nats" or "embedded".
    fn kind(&self) -> &'static str;

    /// Whether the bus is connected now (NATS: the client's connection
    /// state; the embedded log is in the process, always connected).
    /// Readiness reads it ([`supervise_readiness`]).
    fn connected(&self) -> bool {
        true
    }

    /// Makes sure `source`'s stream exists before its first publish.
    async fn prepare_source(&self, source: &str) -> anyhow::Result<()>;

    /// Publishes `batch` in order; returns once the bus has stored all of it.
    /// Publishing the same id again is a no-op.
    async fn publish(&self, batch: &[Outgoing]) -> anyhow::Result<()>;

    /// Delivers every message on `subjects` (of one source, e.g.
    /// `banso.accounts.>`) to `handler`, as durable consumer `consumer`,
    /// until `shutdown`; resumes where it stopped after a restart.
    async fn consume(
        &self,
        consumer: &str,
        subjects: &[String],
        handler: Arc<dyn Handler>,
        policy: DeliveryPolicy,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()>;

    /// How many partitions the bus splits each source into
    /// ([`crate::partition`]); 1: none.
    fn partitions(&self) -> u32 {
        1
    }

    /// The leases by which the replicas of `service` share the partitions.
    async fn leases(&self, service: &str) -> anyhow::Result<Arc<dyn Leases>> {
        anyhow::bail!("the {} bus has no partitions to lease (service {service})", self.kind())
    }

    /// Like [`Bus::consume`], for the messages of partition `partition` only,
    /// as a durable consumer of its own.
    async fn consume_partition(
        &self,
        consumer: &str,
        subjects: &[String],
        partition: u32,
        _handler: Arc<dyn Handler>,
        _policy: DeliveryPolicy,
        _shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        anyhow::bail!(
            "the {} bus has no partitions: consumer {consumer} of {subjects:?} cannot read partition {partition}",
            self.kind()
        )
    }
}

/// How hard a consumer tries before dead-lettering.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryPolicy {
    /// Attempts at a rejected message, counting earlier deliveries.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy { max_attempts: 5, backoff_base: Duration::from_millis(50), backoff_max: Duration::from_secs(5) }
    }
}

impl DeliveryPolicy {
    /// Exponential backoff with full jitter before attempt `n` (from 1).
    pub fn backoff(&self, n: u32) -> Duration {
        let exp = self.backoff_base.saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(16)));
        let cap = exp.min(self.backoff_max);
        cap.mul_f64(0.5 + rand::random::<f64>() * 0.5)
    }
}

/// What became of one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Handled,
    /// Rejected too often: the error, for the dead letter.
    DeadLetter(String),
    /// The consumer is stopping; the message stays for redelivery.
    Stopped,
}

/// Runs `handler` on one message until it succeeds, is dead-lettered, or the
/// consumer stops. `delivered` is how often the bus delivered it before.
pub async fn deliver(
    handler: &dyn Handler,
    consumer: &str,
    envelope: &Envelope,
    delivered: u32,
    policy: &DeliveryPolicy,
    shutdown: &CancellationToken,
) -> Outcome {
    let span = crate::envelope::span("process", consumer, envelope);
    let mut attempt = delivered.max(1);
    async move {
        let mut local = 0u32;
        loop {
            if shutdown.is_cancelled() {
                return Outcome::Stopped;
            }
            let outcome = handler.handle(envelope).await;
            let labels = [("consumer", consumer.to_owned()), ("type", envelope.r#type.clone())];
            match outcome {
                Ok(()) => {
                    metrics::counter!(CONSUMED_TOTAL, &labels).increment(1);
                    return Outcome::Handled;
                }
                Err(HandlerError::Rejected(e)) if attempt >= policy.max_attempts => {
                    tracing::error!(error = format!("{e:#}"), attempt, "event dead-lettered");
                    metrics::counter!(DEAD_LETTERED_TOTAL, &labels).increment(1);
                    return Outcome::DeadLetter(format!("{e:#}"));
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "event handler failed; retrying");
                    metrics::counter!(RETRIES_TOTAL, &labels).increment(1);
                    if matches!(e, HandlerError::Rejected(_)) {
                        attempt += 1;
                    }
                    local += 1;
                    tokio::select! {
                        _ = tokio::time::sleep(policy.backoff(local)) => {}
                        _ = shutdown.cancelled() => return Outcome::Stopped,
                    }
                }
            }
        }
    }
    .instrument(span)
    .await
}

/// Runs a consumer as a task of the gRPC service `service` under the
/// supervisor: a bus failure is retried here with backoff (the consumer
/// resumes where its durable position is); a panic or other death is the
/// supervisor's to log and restart.
///
/// On a partitioned bus, one consumer per partition `partitions` holds,
/// started and stopped as the replica's leases come and go
/// ([`crate::partition`]).
#[allow(clippy::too_many_arguments)]
pub fn supervise_consumer(
    supervisor: &banso_kit::supervise::Supervisor,
    service: &'static str,
    bus: Arc<dyn Bus>,
    consumer: &str,
    subjects: Vec<String>,
    handler: Arc<dyn Handler>,
    policy: DeliveryPolicy,
    partitions: &Partitions,
) -> tokio::task::JoinHandle<()> {
    let consumer = consumer.to_owned();
    // Zero before the first event, so an alert on dead letters has a series.
    for t in crate::envelope::all_types() {
        let labels = [("consumer", consumer.clone()), ("type", t.clone())];
        metrics::counter!(CONSUMED_TOTAL, &labels).increment(0);
        metrics::counter!(RETRIES_TOTAL, &labels).increment(0);
        metrics::counter!(DEAD_LETTERED_TOTAL, &labels).increment(0);
    }
    let partitioned = bus.partitions() > 1;
    let partitions = partitions.clone();
    supervisor.spawn(service, format!("consumer-{consumer}"), move |shutdown| {
        let (bus, consumer, subjects, handler) = (bus.clone(), consumer.clone(), subjects.clone(), handler.clone());
        let partitions = partitions.clone();
        async move {
            if partitioned {
                return consume_held_partitions(bus, consumer, subjects, handler, policy, partitions, shutdown).await;
            }
            keep_consuming(&shutdown, policy, &consumer, None, || {
                bus.consume(&consumer, &subjects, handler.clone(), policy, shutdown.clone())
            })
            .await;
            Ok(())
        }
    })
}

/// Runs `consume` again after each failure, with backoff, until `shutdown`.
async fn keep_consuming<F, Fut>(
    shutdown: &CancellationToken,
    policy: DeliveryPolicy,
    consumer: &str,
    partition: Option<u32>,
    mut consume: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        match consume().await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                tracing::warn!(consumer, partition, error = format!("{e:#}"), "consumer stopped; restarting");
                tokio::select! {
                    _ = tokio::time::sleep(policy.backoff(failures)) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
    }
}

/// One consumer per partition held, each stopped when its partition is
/// handed over (its message in hand is finished or left for redelivery;
/// JetStream gives the partition's next message to no one before that).
async fn consume_held_partitions(
    bus: Arc<dyn Bus>,
    consumer: String,
    subjects: Vec<String>,
    handler: Arc<dyn Handler>,
    policy: DeliveryPolicy,
    partitions: Partitions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut held = partitions.subscribe();
    let mut running: std::collections::BTreeMap<u32, (CancellationToken, tokio::task::JoinHandle<()>)> =
        Default::default();
    loop {
        let now = held.borrow_and_update().clone();
        // Handed over: stop it (it finishes its message in the background).
        // Died (a panic in a handler): started again below.
        running.retain(|p, (stop, task)| {
            if !now.contains(p) {
                stop.cancel();
            }
            now.contains(p) && !task.is_finished()
        });
        for p in now {
            if running.contains_key(&p) {
                continue;
            }
            let stop = shutdown.child_token();
            let (bus, consumer, subjects, handler, token) =
                (bus.clone(), consumer.clone(), subjects.clone(), handler.clone(), stop.clone());
            let task = tokio::spawn(async move {
                keep_consuming(&token, policy, &consumer, Some(p), || {
                    bus.consume_partition(&consumer, &subjects, p, handler.clone(), policy, token.clone())
                })
                .await;
            });
            running.insert(p, (stop, task));
        }
        tokio::select! {
            changed = held.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    for (_, (stop, task)) in running {
        stop.cancel();
        let _ = task.await;
    }
    Ok(())
}

/// Why a service is not ready while its bus is away.
pub const BUS_DISCONNECTED: &str = "bus disconnected";

/// Readiness of `service`'s bus: once the bus has been disconnected for
/// `grace` while the service has events to publish (rows in its outbox) or
/// consumes events (`consumes`), the service is NOT_SERVING (reason
/// [`BUS_DISCONNECTED`]) until the bus is back. A short blip, or a service
/// with nothing to send, stays SERVING: its calls still work.
pub fn supervise_readiness(
    supervisor: &banso_kit::supervise::Supervisor,
    service: &'static str,
    bus: Arc<dyn Bus>,
    db: sea_orm::DatabaseConnection,
    consumes: bool,
    grace: Duration,
) {
    let sup = supervisor.clone();
    // Often enough to notice within a fraction of the grace.
    let every = (grace / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    supervisor.spawn(service, format!("{service}-bus-readiness"), move |shutdown| {
        let (bus, db, sup) = (bus.clone(), db.clone(), sup.clone());
        async move {
            let mut away_since: Option<tokio::time::Instant> = None;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
                if bus.connected() {
                    away_since = None;
                    sup.set_condition(service, BUS_DISCONNECTED, false);
                    continue;
                }
                let since = *away_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() < grace {
                    continue;
                }
                // Only now look at the outbox: it costs a query.
                let waiting = consumes || crate::outbox::pending_rows(&db).await.map(|n| n > 0).unwrap_or(true);
                sup.set_condition(service, BUS_DISCONNECTED, waiting);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    struct Flaky {
        calls: AtomicU32,
        fail_first: u32,
        transient: bool,
    }

    #[async_trait]
    impl Handler for Flaky {
        async fn handle(&self, _: &Envelope) -> Result<(), HandlerError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.fail_first {
                let e = anyhow::anyhow!("failure {n}");
                return Err(if self.transient { HandlerError::Transient(e) } else { HandlerError::Rejected(e) });
            }
            Ok(())
        }
    }

    fn fast() -> DeliveryPolicy {
        DeliveryPolicy {
            max_attempts: 3,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn transient_failures_retry_until_success() {
        let h = Flaky { calls: AtomicU32::new(0), fail_first: 10, transient: true };
        let out = deliver(&h, "c", &Envelope::default(), 1, &fast(), &CancellationToken::new()).await;
        assert_eq!(out, Outcome::Handled);
        assert_eq!(h.calls.load(Ordering::SeqCst), 11);
    }

    #[tokio::test]
    async fn rejections_dead_letter_after_max_attempts_counting_earlier_deliveries() {
        let h = Flaky { calls: AtomicU32::new(0), fail_first: 100, transient: false };
        let out = deliver(&h, "c", &Envelope::default(), 1, &fast(), &CancellationToken::new()).await;
        assert!(matches!(out, Outcome::DeadLetter(_)));
        assert_eq!(h.calls.load(Ordering::SeqCst), 3);
        // Delivered twice before (e.g. the process crashed): one attempt left.
        let h = Flaky { calls: AtomicU32::new(0), fail_first: 100, transient: false };
        let out = deliver(&h, "c", &Envelope::default(), 3, &fast(), &CancellationToken::new()).await;
        assert!(matches!(out, Outcome::DeadLetter(_)));
        assert_eq!(h.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_stopping_consumer_leaves_the_message() {
        let h = Flaky { calls: AtomicU32::new(0), fail_first: 100, transient: true };
        let stop = CancellationToken::new();
        stop.cancel();
        assert_eq!(deliver(&h, "c", &Envelope::default(), 1, &fast(), &stop).await, Outcome::Stopped);
    }
}
