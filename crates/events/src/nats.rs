//! The NATS JetStream bus, used when `BANSO_NATS_URL` is set.
//!
//! - One stream per source service, `BANSO_<SOURCE>` over `banso.<source>.>`,
//!   created or updated at start; file storage; a 2-minute duplicate window
//!   in which a message id (`Nats-Msg-Id` = envelope id) is stored once, so a
//!   relay that retries a batch after a lost ack publishes nothing twice.
//! - One durable pull consumer per consuming service and source, explicit
//!   ack, handled one message at a time in stream order (see `bus::deliver`)
//!   with at most one message unacknowledged, so order survives a crash.
//! - A message that keeps being rejected is published to `banso.dlq.<consumer>`
//!   (stream `BANSO_DLQ`, with the error in the `Banso-Error` header) and
//!   terminated, so it is not redelivered.
//! - `BANSO_NATS_NAMESPACE` prefixes every subject and stream name, so
//!   several environments can share one NATS cluster.
//! - The client reconnects by itself; a consumer whose subscription breaks is
//!   recreated by `bus::supervise_consumer` and resumes from its durable
//!   position.
//! - `BANSO_NATS_PARTITIONS` > 1 splits each source into partitions by
//!   account (`crate::partition`): subjects end in `.p<k>`, each partition
//!   has its own durable consumer, and replicas lease partitions in the
//!   key-value bucket `BANSO_[<NS>_]LEASES_<SERVICE>`.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{
    self, AckKind,
    consumer::{Consumer, pull},
    kv,
    message::PublishMessage,
    stream,
};
use async_trait::async_trait;
use futures::StreamExt;
use prost::Message;
use tokio_util::sync::CancellationToken;

use banso_kit::config::NatsAuth;

use crate::{
    bus::{Bus, DeliveryPolicy, Handler, Outcome, Outgoing, deliver},
    envelope::Envelope,
    partition::{Leases, lease_key, replica_key},
};

pub struct NatsBus {
    js: jetstream::Context,
    /// For its connection state (readiness).
    client: async_nats::Client,
    /// Prefix of every subject and stream, so several environments (or
    /// parallel tests) can share one NATS without seeing each other.
    namespace: Option<String>,
    /// Partitions of each source (1: subjects carry none).
    partitions: u32,
}

/// The most partitions a source may be split into.
pub const MAX_PARTITIONS: u32 = 64;

/// How long a partition lease (and a replica's announcement) lasts
/// unrenewed: a replica that dies hands its partitions over after this.
pub const LEASE_TTL: Duration = Duration::from_secs(5);

/// The stream of `source` in `namespace`: `BANSO_[<NS>_]<SOURCE>`.
pub fn stream_name(namespace: Option<&str>, source: &str) -> String {
    match namespace {
        Some(ns) => format!("BANSO_{}_{}", ns.to_ascii_uppercase(), source.to_ascii_uppercase()),
        None => format!("BANSO_{}", source.to_ascii_uppercase()),
    }
}

/// How long the server waits for an ack before redelivering; also how long
/// a crashed consumer's message waits before its successor gets it.
const ACK_WAIT: Duration = Duration::from_secs(6);

/// The source service of a subject pattern `banso.<source>.…`.
fn source_of(subject: &str) -> anyhow::Result<&str> {
    let mut parts = subject.split('.');
    match (parts.next(), parts.next()) {
        (Some("banso"), Some(source)) if !source.is_empty() && source != "*" && source != ">" => Ok(source),
        _ => anyhow::bail!("subject {subject:?} does not name a source (banso.<source>.…)"),
    }
}

/// The client options for `auth` (TLS roots, client certificate, one credential).
async fn options(auth: &NatsAuth) -> anyhow::Result<async_nats::ConnectOptions> {
    banso_kit::tls::install_provider();
    let mut o = match &auth.creds_file {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| anyhow::anyhow!("BANSO_NATS_CREDS_FILE {}: {e}", path.display()))?,
        None => async_nats::ConnectOptions::new(),
    };
    o = o.name("banso").connection_timeout(Duration::from_secs(5));
    if let Some(ca) = &auth.ca_file {
        o = o.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some((cert, key)) = &auth.client_cert {
        o = o.add_client_certificate(cert.clone(), key.clone()).require_tls(true);
    }
    if let Some(token) = &auth.token {
        o = o.token(token.expose().to_owned());
    }
    if let Some((user, password)) = &auth.user_password {
        o = o.user_and_password(user.clone(), password.expose().to_owned());
    }
    if let Some(seed) = &auth.nkey_seed {
        o = o.nkey(seed.expose().to_owned());
    }
    Ok(o)
}

/// A NATS client for `url` with `auth`. NATS that is not up yet is waited
/// for in the background (pods start in any order), but a TLS or credential
/// failure is returned with its reason: retrying a wrong CA or token forever
/// would only hide it.
pub async fn client(url: &str, auth: &NatsAuth) -> anyhow::Result<async_nats::Client> {
    let shown = redact(url);
    match options(auth).await?.connect(url).await {
        Ok(client) => Ok(client),
        Err(e) if fatal(&e) => anyhow::bail!("cannot connect to NATS at {shown}: {e}"),
        Err(e) => {
            tracing::warn!(nats = %shown, error = %e, "NATS is not reachable yet; retrying in the background");
            options(auth)
                .await?
                .retry_on_initial_connect()
                .connect(url)
                .await
                .map_err(|e| anyhow::anyhow!("cannot connect to NATS at {shown}: {e}"))
        }
    }
}

/// A connect error that retrying cannot cure: a bad URL, refused
/// credentials, a certificate that does not verify.
fn fatal(e: &async_nats::ConnectError) -> bool {
    use async_nats::ConnectErrorKind as K;
    match e.kind() {
        K::ServerParse | K::Authentication | K::AuthorizationViolation | K::Tls => true,
        // rustls reports a failed handshake as an I/O error.
        K::Io => {
            let m = e.to_string().to_ascii_lowercase();
            m.contains("certificate") || m.contains("tls") || m.contains("handshake")
        }
        _ => false,
    }
}

/// `url` without a password or token in it, for logs and errors.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}***@{}", &url[..scheme + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

impl NatsBus {
    /// Connects to `url`; keeps retrying in the background if NATS is not up yet.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_in(url, None).await
    }

    /// Connects, with every subject under `namespace` (letters, digits, `_`).
    pub async fn connect_in(url: &str, namespace: Option<&str>) -> anyhow::Result<Self> {
        Self::connect_with(url, namespace, &NatsAuth::default()).await
    }

    /// Connects with TLS and credentials (`BANSO_NATS_*`); see [`client`].
    pub async fn connect_with(url: &str, namespace: Option<&str>, auth: &NatsAuth) -> anyhow::Result<Self> {
        if let Some(ns) = namespace {
            anyhow::ensure!(
                !ns.is_empty() && ns.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "NATS namespace {ns:?} must be letters, digits and underscores"
            );
        }
        let client = client(url, auth).await?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(Duration::from_secs(5));
        Ok(NatsBus { js, client, namespace: namespace.map(str::to_owned), partitions: 1 })
    }

    /// Splits each source into `partitions` (1 to [`MAX_PARTITIONS`]).
    pub fn with_partitions(mut self, partitions: u32) -> anyhow::Result<Self> {
        anyhow::ensure!(
            (1..=MAX_PARTITIONS).contains(&partitions),
            "NATS partitions {partitions} must be from 1 to {MAX_PARTITIONS}"
        );
        self.partitions = partitions;
        Ok(self)
    }

    /// What the stream of a source says of its partitioning (its
    /// description), so a consumer split differently from the publisher
    /// refuses to start instead of missing events.
    fn described(&self) -> String {
        format!("banso events; partitions={}", self.partitions)
    }

    /// The wire subject of a message: partitioned by its account when the
    /// bus is. (Decoded here, once per message, rather than stored with
    /// every outbox row of every service.)
    fn wire_of(&self, m: &Outgoing) -> String {
        if self.partitions <= 1 {
            return self.wire(&m.subject);
        }
        let p = match Envelope::decode(m.payload.clone()) {
            Ok(env) => crate::partition::partition_of_event(&env, self.partitions),
            // Not an envelope: a consumer dead-letters it whichever partition it is in.
            Err(_) => 0,
        };
        self.wire(&format!("{}.p{p}", m.subject))
    }

    /// The filter of partition `p` for a subject pattern of one source:
    /// `banso.<source>.>` → `banso.<source>.*.p<p>`, `banso.<source>.<type>`
    /// → `banso.<source>.<type>.p<p>`.
    fn partition_filter(subject: &str, p: u32) -> anyhow::Result<String> {
        let tokens: Vec<&str> = subject.split('.').collect();
        match tokens.as_slice() {
            ["banso", source, ">"] => Ok(format!("banso.{source}.*.p{p}")),
            ["banso", source, ty] if *ty != "*" => Ok(format!("banso.{source}.{ty}.p{p}")),
            _ => anyhow::bail!("subject {subject:?} cannot be partitioned (banso.<source>.> or banso.<source>.<type>)"),
        }
    }

    /// The subject on the wire for a Banso subject.
    fn wire(&self, subject: &str) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}.{subject}"),
            None => subject.to_owned(),
        }
    }

    fn dlq_stream(&self) -> String {
        stream_name(self.namespace.as_deref(), "dlq")
    }

    async fn ensure_stream(&self, name: &str, subjects: Vec<String>, max_age: Duration) -> anyhow::Result<()> {
        self.js
            .create_or_update_stream(stream::Config {
                name: name.to_owned(),
                description: Some(self.described()),
                subjects,
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                max_age,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("cannot create or update stream {name}: {e}"))?;
        Ok(())
    }
}

#[async_trait]
impl Bus for NatsBus {
    fn kind(&self) -> &'static str {
        "nats"
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    async fn prepare_source(&self, source: &str) -> anyhow::Result<()> {
        self.ensure_stream(
            &stream_name(self.namespace.as_deref(), source),
            vec![self.wire(&crate::envelope::all_of(source))],
            Duration::from_secs(7 * 24 * 3600),
        )
        .await
    }

    async fn publish(&self, batch: &[Outgoing]) -> anyhow::Result<()> {
        // Send the whole batch, then wait for the acks: one connection keeps
        // the order, and the round trips overlap.
        let mut acks = Vec::with_capacity(batch.len());
        for m in batch {
            let msg = PublishMessage::build().payload(m.payload.clone()).message_id(&m.id);
            acks.push(self.js.send_publish(self.wire_of(m), msg).await?);
        }
        for ack in acks {
            ack.await?;
        }
        Ok(())
    }

    async fn consume(
        &self,
        consumer: &str,
        subjects: &[String],
        handler: Arc<dyn Handler>,
        policy: DeliveryPolicy,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let source = self.prepare_consumer(subjects).await?;
        let durable = format!("{consumer}-{source}");
        let filters = subjects.iter().map(|s| self.wire(s)).collect();
        self.consume_durable(consumer, &source, durable, filters, handler, policy, shutdown).await
    }

    fn partitions(&self) -> u32 {
        self.partitions
    }

    async fn leases(&self, service: &str) -> anyhow::Result<Arc<dyn Leases>> {
        let bucket = stream_name(self.namespace.as_deref(), &format!("leases_{service}"));
        // The bucket's stream as the key-value API lays it out, created
        // here: the client's own bucket creation asks for account details
        // in a form NATS 2.9 does not answer in.
        let stream = format!("KV_{bucket}");
        self.js
            .create_or_update_stream(stream::Config {
                name: stream.clone(),
                description: Some(format!("which replica of {service} holds which partition")),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: 1,
                max_age: LEASE_TTL,
                storage: stream::StorageType::File,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: stream::DiscardPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("cannot create or update stream {stream}: {e}"))?;
        let kv = self.js.get_key_value(&bucket).await.map_err(|e| anyhow::anyhow!("key-value bucket {bucket}: {e}"))?;
        Ok(Arc::new(NatsLeases { kv }))
    }

    async fn consume_partition(
        &self,
        consumer: &str,
        subjects: &[String],
        partition: u32,
        handler: Arc<dyn Handler>,
        policy: DeliveryPolicy,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            partition < self.partitions,
            "partition {partition} of consumer {consumer} is not one of {}",
            self.partitions
        );
        let source = self.prepare_consumer(subjects).await?;
        let stream = self.js.get_stream(stream_name(self.namespace.as_deref(), &source)).await?;
        let described = stream.cached_info().config.description.clone().unwrap_or_default();
        anyhow::ensure!(
            described == self.described(),
            "stream of {source} is described as {described:?}, not {:?}: its publisher is partitioned differently \
             (BANSO_NATS_PARTITIONS must be the same in every service)",
            self.described()
        );
        let durable = format!("{consumer}-{source}-p{partition}");
        let filters = subjects
            .iter()
            .map(|s| Self::partition_filter(s, partition).map(|f| self.wire(&f)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        self.consume_durable(consumer, &source, durable, filters, handler, policy, shutdown).await
    }
}

impl NatsBus {
    /// The one source `subjects` are of, its stream and the dead-letter
    /// stream made sure of.
    async fn prepare_consumer(&self, subjects: &[String]) -> anyhow::Result<String> {
        let source = source_of(subjects.first().ok_or_else(|| anyhow::anyhow!("no subjects to consume"))?)?;
        for s in subjects {
            anyhow::ensure!(source_of(s)? == source, "one consumer reads one source; {s:?} is not of {source}");
        }
        // Created if it is not there yet (the consumer may start first), but
        // never updated from here: its description is the publisher's
        // partitioning, which a partition's consumer checks.
        if self.js.get_stream(stream_name(self.namespace.as_deref(), source)).await.is_err() {
            self.prepare_source(source).await?;
        }
        self.ensure_stream(&self.dlq_stream(), vec![self.wire("banso.dlq.>")], Duration::from_secs(30 * 24 * 3600))
            .await?;
        Ok(source.to_owned())
    }

    /// Where a new durable consumer of `consumer` starts: a partition's
    /// consumer created where the unpartitioned one was (the bus was split
    /// after it ran) starts after what that one acknowledged, so the
    /// retained stream is not handled again; any other, from the start.
    /// (Changing the partitions of a running system is done with the
    /// services stopped and their consumers caught up: docs/operations.md.)
    async fn first_position(
        &self,
        stream: &async_nats::jetstream::stream::Stream,
        consumer: &str,
        source: &str,
    ) -> jetstream::consumer::DeliverPolicy {
        match stream.consumer_info(format!("{consumer}-{source}")).await {
            Ok(info) => jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: info.ack_floor.stream_sequence + 1,
            },
            Err(_) => jetstream::consumer::DeliverPolicy::All,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn consume_durable(
        &self,
        consumer: &str,
        source: &str,
        durable: String,
        filter_subjects: Vec<String>,
        handler: Arc<dyn Handler>,
        policy: DeliveryPolicy,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let stream = self.js.get_stream(stream_name(self.namespace.as_deref(), source)).await?;
        let unpartitioned = durable == format!("{consumer}-{source}");
        let deliver_policy = match stream.consumer_info(&durable).await {
            Err(_) if !unpartitioned => self.first_position(&stream, consumer, source).await,
            _ => jetstream::consumer::DeliverPolicy::All,
        };
        let config = pull::Config {
            durable_name: Some(durable.clone()),
            // One subject as `filter_subject`: NATS before 2.10
            // ignores `filter_subjects` and would deliver the whole
            // stream (every partition) to the consumer.
            filter_subject: if filter_subjects.len() == 1 { filter_subjects[0].clone() } else { String::new() },
            filter_subjects: if filter_subjects.len() == 1 { Vec::new() } else { filter_subjects },
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            deliver_policy,
            // One unacknowledged message at a time: after a crash,
            // the message the dead consumer held comes back before
            // anything newer, which keeps each tenant's order.
            ack_wait: ACK_WAIT,
            max_ack_pending: 1,
            // Redeliveries after a lost consumer wait longer each
            // time. Our own policy dead-letters after
            // `policy.max_attempts` deliveries; JetStream's limit is
            // a backstop above it, so nothing is dropped unseen.
            backoff: vec![ACK_WAIT, ACK_WAIT * 2, ACK_WAIT * 5],
            max_deliver: (policy.max_attempts as i64 * 2).max(10),
            ..Default::default()
        };
        let mut pull_consumer: Consumer<pull::Config> =
            stream
                .get_or_create_consumer(&durable, config.clone())
                .await
                .map_err(|e| anyhow::anyhow!("cannot create consumer {durable}: {e}"))?;
        // A consumer made by an older release keeps its subjects: a service
        // that now consumes more (or fewer) event types moves its filter,
        // keeping its position (the deliver policy cannot change).
        let kept = &pull_consumer.cached_info().config;
        if kept.filter_subject != config.filter_subject || kept.filter_subjects != config.filter_subjects {
            let deliver_policy = kept.deliver_policy;
            tracing::info!(consumer = %durable, "moving the consumer's subject filter to this release's");
            pull_consumer = stream
                .update_consumer(pull::Config { deliver_policy, ..config })
                .await
                .map_err(|e| anyhow::anyhow!("cannot update consumer {durable}: {e}"))?;
        }
        let mut messages = pull_consumer.messages().await?;
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                _ = shutdown.cancelled() => return Ok(()),
            };
            let msg = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => anyhow::bail!("consumer {durable} failed: {e}"),
                None => anyhow::bail!("consumer {durable} stream ended"),
            };
            let delivered = msg.info().map(|i| i.delivered.max(1) as u32).unwrap_or(1);
            let outcome = match Envelope::decode(msg.payload.clone()) {
                Ok(envelope) => {
                    let work = deliver(handler.as_ref(), consumer, &envelope, delivered, &policy, &shutdown);
                    tokio::pin!(work);
                    // While the handler works (or retries), tell the server
                    // the message is in progress so it is not redelivered.
                    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + ACK_WAIT / 3, ACK_WAIT / 3);
                    loop {
                        tokio::select! {
                            outcome = &mut work => break outcome,
                            _ = tick.tick() => { let _ = msg.ack_with(AckKind::Progress).await; }
                        }
                    }
                }
                Err(e) => Outcome::DeadLetter(format!("payload is not an Envelope: {e}")),
            };
            match outcome {
                // Confirmed ack: if it is lost, the message comes back and
                // the consumer's inbox makes the second handling a no-op.
                Outcome::Handled => msg.double_ack().await.map_err(|e| anyhow::anyhow!("ack failed: {e}"))?,
                Outcome::DeadLetter(error) => {
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert("Banso-Error", error.replace(['\r', '\n'], " ").as_str());
                    headers.insert("Banso-Subject", msg.subject.as_str());
                    let dead = PublishMessage::build().payload(msg.payload.clone()).headers(headers);
                    self.js.send_publish(self.wire(&format!("banso.dlq.{consumer}")), dead).await?.await?;
                    msg.ack_with(AckKind::Term).await.map_err(|e| anyhow::anyhow!("term failed: {e}"))?;
                }
                Outcome::Stopped => return Ok(()),
            }
        }
    }
}

/// Partition leases in a key-value bucket with a ttl ([`LEASE_TTL`]) and
/// one revision per key: acquiring is a create (only if absent), renewing
/// an update at the revision held (compare-and-set), lapsing is the
/// bucket's max age.
struct NatsLeases {
    kv: kv::Store,
}

#[async_trait]
impl Leases for NatsLeases {
    fn ttl(&self) -> Duration {
        LEASE_TTL
    }

    async fn announce(&self, replica: &str) -> anyhow::Result<()> {
        self.kv
            .put(replica_key(replica), bytes::Bytes::from(replica.to_owned()))
            .await
            .map_err(|e| anyhow::anyhow!("announcing replica {replica}: {e}"))?;
        Ok(())
    }

    async fn withdraw(&self, replica: &str) -> anyhow::Result<()> {
        self.kv.delete(replica_key(replica)).await.map_err(|e| anyhow::anyhow!("withdrawing replica {replica}: {e}"))
    }

    async fn replicas(&self) -> anyhow::Result<usize> {
        let mut keys = self.kv.keys().await.map_err(|e| anyhow::anyhow!("listing replicas: {e}"))?;
        let mut n = 0;
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| anyhow::anyhow!("listing replicas: {e}"))?;
            if key.starts_with("replica.") {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn acquire(&self, p: u32, replica: &str) -> anyhow::Result<Option<u64>> {
        match self.kv.create(lease_key(p), bytes::Bytes::from(replica.to_owned())).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => anyhow::bail!("taking partition {p}: {e}"),
        }
    }

    async fn renew(&self, p: u32, replica: &str, revision: u64) -> anyhow::Result<Option<u64>> {
        match self.kv.update(lease_key(p), bytes::Bytes::from(replica.to_owned()), revision).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => anyhow::bail!("renewing partition {p}: {e}"),
        }
    }

    async fn release(&self, p: u32, revision: u64) -> anyhow::Result<()> {
        match self.kv.delete_expect_revision(lease_key(p), Some(revision)).await {
            Ok(()) => Ok(()),
            // Lapsed and taken meanwhile: not ours to delete.
            Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => Ok(()),
            Err(e) => anyhow::bail!("releasing partition {p}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_of_subjects() {
        assert_eq!(source_of("banso.accounts.>").unwrap(), "accounts");
        assert_eq!(source_of("banso.accounts.account_created").unwrap(), "accounts");
        assert!(source_of("banso.>").is_err());
        assert!(source_of("other.accounts").is_err());
        assert_eq!(stream_name(None, "accounts"), "BANSO_ACCOUNTS");
        assert_eq!(stream_name(Some("t1"), "accounts"), "BANSO_T1_ACCOUNTS");
    }

    #[test]
    fn urls_lose_their_credentials_in_messages() {
        assert_eq!(redact("tls://user:hunter2@nats:4222"), "tls://***@nats:4222");
        assert_eq!(redact("nats://s3cr3t-token@nats:4222"), "nats://***@nats:4222");
        assert_eq!(redact("nats://nats:4222"), "nats://nats:4222");
    }

    #[test]
    fn partition_filters_keep_to_one_source() {
        assert_eq!(NatsBus::partition_filter("banso.accounts.>", 3).unwrap(), "banso.accounts.*.p3");
        assert_eq!(
            NatsBus::partition_filter("banso.health.accounts_to_score", 0).unwrap(),
            "banso.health.accounts_to_score.p0"
        );
        assert!(NatsBus::partition_filter("banso.accounts.*", 0).is_err());
        assert!(NatsBus::partition_filter("banso.accounts.a.b", 0).is_err());
    }
}
