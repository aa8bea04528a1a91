//! Partitions: how the replicas of a service share its work on NATS.
//!
//! With `BANSO_NATS_PARTITIONS` = N > 1:
//! - every event's subject ends in `.p<k>`, k = [`partition_of`] its
//!   account (an account's events all go to one partition, in order), or of
//!   its tenant for a tenant-wide event (settings, segments);
//! - each consuming service has one durable consumer per source and
//!   partition, each with at most one message unacknowledged, so an
//!   account's events are handled one at a time in order, and N partitions
//!   are handled side by side;
//! - which replica runs a partition's consumers (and, in Health, scores its
//!   accounts) is decided by leases in a JetStream key-value bucket
//!   ([`Leases`]): a replica holds about N ÷ replicas partitions
//!   ([`keep`]), renews each lease every third of its time to live, gives
//!   up what is beyond its share when another replica appears, and takes
//!   over the leases of a replica that died once they lapse. No membership
//!   protocol of our own: JetStream's compare-and-set and expiry decide.
//!
//! With one partition (the default, and always on the embedded bus) the
//! subjects carry no partition, every replica runs every consumer (the
//! durable consumer hands each message to one of them), and
//! [`Partitions::all`] holds the only partition.

use std::{
    collections::{BTreeMap, BTreeSet},
    hash::Hasher,
    sync::Arc,
    time::Duration,
};

use async_trait::async_trait;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Partitions of a service this replica holds now (gauge, by `service`).
pub const PARTITIONS_HELD: &str = "banso_bus_partitions_held";

/// The partitions this replica holds, out of `count`.
#[derive(Clone, Debug)]
pub struct Partitions {
    count: u32,
    held: Arc<watch::Sender<BTreeSet<u32>>>,
}

impl Partitions {
    /// All `count` partitions, held for good (one replica, or one partition).
    pub fn all(count: u32) -> Self {
        let count = count.max(1);
        Partitions { count, held: Arc::new(watch::Sender::new((0..count).collect())) }
    }

    /// None of `count` yet: the lease keeper ([`keep`]) fills it.
    pub fn none(count: u32) -> Self {
        Partitions { count: count.max(1), held: Arc::new(watch::Sender::new(BTreeSet::new())) }
    }

    /// How many partitions there are.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether this replica holds partition `p` now.
    pub fn holds(&self, p: u32) -> bool {
        self.held.borrow().contains(&p)
    }

    /// Whether this replica does `account`'s work now.
    pub fn holds_account(&self, tenant: &str, account: Uuid) -> bool {
        self.holds(partition_of(tenant, Some(account), self.count))
    }

    /// The partitions held now.
    pub fn held(&self) -> BTreeSet<u32> {
        self.held.borrow().clone()
    }

    /// Changes to the partitions held.
    pub fn subscribe(&self) -> watch::Receiver<BTreeSet<u32>> {
        self.held.subscribe()
    }

    fn set(&self, held: BTreeSet<u32>) {
        self.held.send_if_modified(|now| {
            let changed = *now != held;
            *now = held;
            changed
        });
    }
}

/// The partition, of `count`, of `account` of `tenant` (`None`: the tenant
/// as a whole). FNV-1a over the tenant and the account's 16 bytes: the same
/// in every process and release, so every publisher and consumer agrees.
pub fn partition_of(tenant: &str, account: Option<Uuid>, count: u32) -> u32 {
    if count <= 1 {
        return 0;
    }
    let mut h = fnv::FnvHasher::default();
    h.write(tenant.as_bytes());
    h.write(&[0]);
    if let Some(a) = account {
        h.write(a.as_bytes());
    }
    (h.finish() % u64::from(count)) as u32
}

/// The partition, of `count`, of an event: its account's, else its tenant's.
pub fn partition_of_event(envelope: &crate::Envelope, count: u32) -> u32 {
    let account = crate::envelope::account_of(envelope).and_then(|a| Uuid::parse_str(a).ok());
    partition_of(&envelope.tenant_id, account, count)
}

/// Leases on partitions, shared by the replicas of one service: a lease is
/// held by one replica until it releases it or stops renewing it for
/// [`Leases::ttl`]; replicas announce themselves the same way, so each can
/// tell its share.
#[async_trait]
pub trait Leases: Send + Sync + 'static {
    /// How long a lease or an announcement lasts unrenewed.
    fn ttl(&self) -> Duration;
    /// Says `replica` is alive, for another `ttl`.
    async fn announce(&self, replica: &str) -> anyhow::Result<()>;
    /// Says `replica` is stopping: it no longer counts.
    async fn withdraw(&self, replica: &str) -> anyhow::Result<()>;
    /// How many replicas announced themselves within `ttl`.
    async fn replicas(&self) -> anyhow::Result<usize>;
    /// Takes partition `p` for `replica` if nobody holds it: the lease's
    /// revision, `None` if it is held.
    async fn acquire(&self, p: u32, replica: &str) -> anyhow::Result<Option<u64>>;
    /// Renews the lease of `p` held at `revision`: the new revision, `None`
    /// if it lapsed and is no longer this replica's.
    async fn renew(&self, p: u32, replica: &str, revision: u64) -> anyhow::Result<Option<u64>>;
    /// Gives up the lease of `p` held at `revision`.
    async fn release(&self, p: u32, revision: u64) -> anyhow::Result<()>;
}

/// This process's name among a service's replicas: the host (a pod's
/// name), the process id and a random suffix, so a restarted process is a
/// new replica and never mistakes an old lease for its own.
pub fn replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "banso".to_owned());
    let host: String = host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .take(40)
        .collect();
    format!("{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
}

/// The lease partition `p` is held under: partitions of one service are
/// keyed in its own bucket.
pub fn lease_key(p: u32) -> String {
    format!("partition.{p}")
}

/// The key `replica` announces itself under.
pub fn replica_key(replica: &str) -> String {
    format!("replica.{replica}")
}

/// How many partitions of `count` each of `replicas` holds at most.
pub fn fair_share(count: u32, replicas: usize) -> u32 {
    let r = replicas.clamp(1, count as usize) as u32;
    count.div_ceil(r)
}

/// Holds this replica's share of the partitions until `shutdown`, then
/// releases them (a replica that dies instead leaves them to lapse). Every
/// third of the ttl: announce, renew what is held (a lease that could not
/// be renewed for two thirds of the ttl is dropped before another replica
/// may take it), give up what is beyond the fair share, take free ones up
/// to it. `partitions` shows what is held at each moment.
pub async fn keep(
    leases: Arc<dyn Leases>,
    service: &'static str,
    replica: String,
    partitions: Partitions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let gauge = metrics::gauge!(PARTITIONS_HELD, "service" => service);
    let ttl = leases.ttl();
    let tick = ttl / 3;
    // Partition → (revision, when it was last renewed).
    let mut held: BTreeMap<u32, (u64, tokio::time::Instant)> = BTreeMap::new();
    // Where this replica starts looking for free partitions, so replicas
    // starting together do not all race for partition 0.
    let offset = partition_of(&replica, None, partitions.count());
    loop {
        if let Err(e) = round(leases.as_ref(), &replica, &partitions, &mut held, offset).await {
            tracing::warn!(error = format!("{e:#}"), "partition leases: a round failed; retrying");
        }
        // A lease not renewed for two thirds of its ttl may be taken soon:
        // stop its work first.
        let now = tokio::time::Instant::now();
        held.retain(|p, (_, renewed)| {
            let keep = now.duration_since(*renewed) < ttl * 2 / 3;
            if !keep {
                tracing::warn!(partition = p, "partition lease could not be renewed in time; giving up its work");
            }
            keep
        });
        partitions.set(held.keys().copied().collect());
        gauge.set(held.len() as f64);
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    // Stop the work first, then hand the leases over at once rather than
    // after they lapse.
    partitions.set(BTreeSet::new());
    gauge.set(0.0);
    for (p, (revision, _)) in held {
        if let Err(e) = leases.release(p, revision).await {
            tracing::warn!(partition = p, error = format!("{e:#}"), "releasing a partition lease failed");
        }
    }
    if let Err(e) = leases.withdraw(&replica).await {
        tracing::warn!(error = format!("{e:#}"), "withdrawing the replica's announcement failed");
    }
    Ok(())
}

async fn round(
    leases: &dyn Leases,
    replica: &str,
    partitions: &Partitions,
    held: &mut BTreeMap<u32, (u64, tokio::time::Instant)>,
    offset: u32,
) -> anyhow::Result<()> {
    leases.announce(replica).await?;
    for (p, (revision, renewed)) in held.clone() {
        match leases.renew(p, replica, revision).await {
            Ok(Some(r)) => {
                held.insert(p, (r, tokio::time::Instant::now()));
            }
            Ok(None) => {
                tracing::warn!(partition = p, "partition lease lapsed; another replica holds it");
                held.remove(&p);
            }
            Err(e) => {
                tracing::warn!(partition = p, error = format!("{e:#}"), "renewing a partition lease failed");
                held.insert(p, (revision, renewed));
            }
        }
    }
    let count = partitions.count();
    let share = fair_share(count, leases.replicas().await?);
    // Beyond the share (a replica joined): stop the work, then release.
    while held.len() as u32 > share {
        let Some((&p, &(revision, _))) = held.iter().next_back() else { break };
        held.remove(&p);
        partitions.set(held.keys().copied().collect());
        leases.release(p, revision).await?;
        tracing::info!(partition = p, share, "partition handed over to balance the replicas");
    }
    for i in 0..count {
        if held.len() as u32 >= share {
            break;
        }
        let p = (offset + i) % count;
        if held.contains_key(&p) {
            continue;
        }
        if let Some(revision) = leases.acquire(p, replica).await? {
            tracing::info!(partition = p, share, "partition taken");
            held.insert(p, (revision, tokio::time::Instant::now()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn partitions_are_stable_and_spread() {
        let t = "acme";
        let a = Uuid::parse_str("0190f5a2-7c3e-7d2a-9b1e-2f4c6a8e0b1d").unwrap();
        // Fixed forever: publishers and consumers of every release agree.
        assert_eq!(partition_of(t, Some(a), 8), partition_of(t, Some(a), 8));
        assert_eq!(partition_of(t, Some(a), 1), 0);
        let mut counts = [0u32; 8];
        for _ in 0..8000 {
            counts[partition_of(t, Some(Uuid::now_v7()), 8) as usize] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "uneven spread: {counts:?}");
        }
        assert_eq!(fair_share(8, 0), 8);
        assert_eq!(fair_share(8, 3), 3);
        assert_eq!(fair_share(2, 5), 1);
    }

    /// Leases in memory, with time from tokio's clock (paused in tests).
    #[derive(Default)]
    struct Memory {
        state: Mutex<MemoryState>,
    }

    #[derive(Default)]
    struct MemoryState {
        leases: BTreeMap<u32, (String, u64, tokio::time::Instant)>,
        replicas: BTreeMap<String, tokio::time::Instant>,
        revision: u64,
    }

    const TTL: Duration = Duration::from_secs(3);

    impl MemoryState {
        fn expire(&mut self) {
            let now = tokio::time::Instant::now();
            self.leases.retain(|_, (_, _, at)| now.duration_since(*at) < TTL);
            self.replicas.retain(|_, at| now.duration_since(*at) < TTL);
        }
    }

    #[async_trait]
    impl Leases for Memory {
        fn ttl(&self) -> Duration {
            TTL
        }
        async fn announce(&self, replica: &str) -> anyhow::Result<()> {
            let mut s = self.state.lock().unwrap();
            s.replicas.insert(replica.to_owned(), tokio::time::Instant::now());
            Ok(())
        }
        async fn withdraw(&self, replica: &str) -> anyhow::Result<()> {
            self.state.lock().unwrap().replicas.remove(replica);
            Ok(())
        }
        async fn replicas(&self) -> anyhow::Result<usize> {
            let mut s = self.state.lock().unwrap();
            s.expire();
            Ok(s.replicas.len())
        }
        async fn acquire(&self, p: u32, replica: &str) -> anyhow::Result<Option<u64>> {
            let mut s = self.state.lock().unwrap();
            s.expire();
            if s.leases.contains_key(&p) {
                return Ok(None);
            }
            s.revision += 1;
            let r = s.revision;
            s.leases.insert(p, (replica.to_owned(), r, tokio::time::Instant::now()));
            Ok(Some(r))
        }
        async fn renew(&self, p: u32, replica: &str, revision: u64) -> anyhow::Result<Option<u64>> {
            let mut s = self.state.lock().unwrap();
            s.expire();
            s.revision += 1;
            let r = s.revision;
            match s.leases.get_mut(&p) {
                Some(lease) if lease.1 == revision => {
                    *lease = (replica.to_owned(), r, tokio::time::Instant::now());
                    Ok(Some(r))
                }
                _ => Ok(None),
            }
        }
        async fn release(&self, p: u32, revision: u64) -> anyhow::Result<()> {
            let mut s = self.state.lock().unwrap();
            if s.leases.get(&p).is_some_and(|l| l.1 == revision) {
                s.leases.remove(&p);
            }
            Ok(())
        }
    }

    fn replica(leases: &Arc<Memory>, name: &str) -> (Partitions, CancellationToken, tokio::task::JoinHandle<()>) {
        let partitions = Partitions::none(8);
        let stop = CancellationToken::new();
        let task =
            tokio::spawn(keep(leases.clone(), "test", name.to_owned(), partitions.clone(), stop.clone()).map(|_| ()));
        (partitions, stop, task)
    }

    use futures::FutureExt as _;

    async fn settle() {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn assert_disjoint_and_complete(sets: &[BTreeSet<u32>]) {
        let mut all = BTreeSet::new();
        for s in sets {
            for p in s {
                assert!(all.insert(*p), "partition {p} held twice: {sets:?}");
            }
        }
        assert_eq!(all, (0..8).collect(), "every partition held: {sets:?}");
    }

    /// One replica holds all; a second takes half; a third leaves each
    /// about a third; one that dies without releasing has its partitions
    /// taken over once its leases lapse; one that stops releases at once.
    #[tokio::test(start_paused = true)]
    async fn replicas_share_the_partitions_and_take_over_from_the_dead() {
        let leases = Arc::new(Memory::default());
        let (a, stop_a, task_a) = replica(&leases, "a");
        settle().await;
        assert_eq!(a.held().len(), 8);
        let (b, stop_b, task_b) = replica(&leases, "b");
        settle().await;
        assert_eq!((a.held().len(), b.held().len()), (4, 4));
        assert_disjoint_and_complete(&[a.held(), b.held()]);
        let (c, _stop_c, task_c) = replica(&leases, "c");
        settle().await;
        let sizes = [a.held().len(), b.held().len(), c.held().len()];
        assert!(sizes.iter().all(|n| (2..=3).contains(n)), "{sizes:?}");
        assert_disjoint_and_complete(&[a.held(), b.held(), c.held()]);
        // Kill -9: the task vanishes, its leases stay until they lapse.
        task_c.abort();
        let _ = task_c.await;
        settle().await;
        assert_eq!((a.held().len(), b.held().len()), (4, 4));
        assert_disjoint_and_complete(&[a.held(), b.held()]);
        // A stopping replica hands its partitions over at once.
        stop_b.cancel();
        task_b.await.unwrap();
        assert!(b.held().is_empty());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(a.held().len(), 8);
        stop_a.cancel();
        task_a.await.unwrap();
        assert!(leases.state.lock().unwrap().leases.is_empty());
    }

    /// A replica that cannot reach the leases stops the work of its
    /// partitions before another replica can take them.
    #[tokio::test(start_paused = true)]
    async fn a_replica_cut_off_from_its_leases_stops_their_work_in_time() {
        struct Away(Arc<Memory>, Arc<std::sync::atomic::AtomicBool>);
        #[async_trait]
        impl Leases for Away {
            fn ttl(&self) -> Duration {
                TTL
            }
            async fn announce(&self, r: &str) -> anyhow::Result<()> {
                self.check()?;
                self.0.announce(r).await
            }
            async fn withdraw(&self, r: &str) -> anyhow::Result<()> {
                self.check()?;
                self.0.withdraw(r).await
            }
            async fn replicas(&self) -> anyhow::Result<usize> {
                self.check()?;
                self.0.replicas().await
            }
            async fn acquire(&self, p: u32, r: &str) -> anyhow::Result<Option<u64>> {
                self.check()?;
                self.0.acquire(p, r).await
            }
            async fn renew(&self, p: u32, r: &str, rev: u64) -> anyhow::Result<Option<u64>> {
                self.check()?;
                self.0.renew(p, r, rev).await
            }
            async fn release(&self, p: u32, rev: u64) -> anyhow::Result<()> {
                self.check()?;
                self.0.release(p, rev).await
            }
        }
        impl Away {
            fn check(&self) -> anyhow::Result<()> {
                anyhow::ensure!(!self.1.load(std::sync::atomic::Ordering::SeqCst), "nats is away");
                Ok(())
            }
        }
        let memory = Arc::new(Memory::default());
        let away = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let partitions = Partitions::none(8);
        let stop = CancellationToken::new();
        let leases: Arc<dyn Leases> = Arc::new(Away(memory.clone(), away.clone()));
        let task = tokio::spawn(keep(leases, "test", "a".into(), partitions.clone(), stop.clone()));
        settle().await;
        assert_eq!(partitions.held().len(), 8);
        away.store(true, std::sync::atomic::Ordering::SeqCst);
        // Before the leases lapse (TTL), the work has stopped.
        tokio::time::sleep(TTL - Duration::from_millis(100)).await;
        assert!(partitions.held().is_empty(), "{:?}", partitions.held());
        away.store(false, std::sync::atomic::Ordering::SeqCst);
        settle().await;
        assert_eq!(partitions.held().len(), 8);
        stop.cancel();
        task.await.unwrap().unwrap();
    }
}
