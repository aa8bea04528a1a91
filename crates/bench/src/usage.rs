//! Deterministic, realistic usage for the Health benchmarks: a tenant of
//! accounts (Health's projection rows, as Accounts' events would make them),
//! each with its own users, and usage events over about 100 event names,
//! skewed the way product usage is (a few accounts and a few features make
//! most of the events), timestamps spread over the last days.

use anyhow::Context;
use banso_health::bench::AccountRow;
use banso_proto::{accounts as apb, health as pb};
use chrono::{DateTime, NaiveDate, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use uuid::Uuid;

use crate::{data, harness::TENANT};

const OBJECTS: &[&str] =
    &["report", "dashboard", "project", "task", "invoice", "user", "integration", "comment", "file", "workflow"];
const VERBS: &[&str] =
    &["viewed", "created", "updated", "deleted", "exported", "shared", "searched", "filtered", "imported", "archived"];
const PROPERTY_KEYS: &[&str] = &["browser", "os", "plan", "page", "locale", "app_version"];
const PROPERTY_VALUES: &[&[&str]] = &[
    &["chrome", "safari", "edge", "firefox"],
    &["macos", "windows", "ios", "android", "linux"],
    &["starter", "standard", "professional", "enterprise"],
    &["/home", "/reports", "/dashboards/sales", "/settings/users", "/projects/roadmap"],
    &["ja-JP", "en-US", "en-GB", "de-DE"],
    &["4.12.0", "4.12.1", "4.13.0", "5.0.0-beta.2"],
];

/// The ~100 event names, most used first: `report_viewed`, `report_created`, …
pub fn event_names() -> Vec<String> {
    let mut names = Vec::with_capacity(OBJECTS.len() * VERBS.len());
    for v in VERBS {
        for o in OBJECTS {
            names.push(format!("{o}_{v}"));
        }
    }
    names
}

/// One account of the tenant.
#[derive(Debug, Clone)]
pub struct BenchAccount {
    pub row: AccountRow,
    /// Users of the account (`usr_<n>_<k>`, k below this).
    pub users: u32,
}

/// Cumulative weights for sampling index `i` with probability ∝ 1/(i+1)^s.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut acc = 0.0;
        Zipf(
            (0..n)
                .map(|i| {
                    acc += 1.0 / ((i + 1) as f64).powf(s);
                    acc
                })
                .collect(),
        )
    }

    fn sample(&self, rng: &mut StdRng) -> usize {
        let x = rng.random::<f64>() * self.0.last().copied().unwrap_or(0.0);
        self.0.partition_point(|&c| c < x).min(self.0.len() - 1)
    }
}

/// A tenant's accounts and how to make usage for them.
pub struct Tenant {
    pub accounts: Vec<BenchAccount>,
    pub names: Vec<String>,
    account_pick: Zipf,
    name_pick: Zipf,
    seed: u64,
}

/// An event, and what the service should store for it.
pub struct Generated {
    pub event: pb::UsageEvent,
    pub account: usize,
    pub occur_time: DateTime<Utc>,
    /// The `properties` JSON as the service stores it.
    pub properties_json: String,
}

impl Tenant {
    /// `n` accounts from the accounts generator (`crm-000001`…, its stages,
    /// touch models, ARR and renewal dates), with fresh UUIDv7 ids and 3 to
    /// 300 users each (log-uniform).
    pub fn new(n: usize, seed: u64) -> Tenant {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_u64);
        let accounts = data::accounts(n, seed)
            .into_iter()
            .map(|a| {
                let users = (3f64.ln() + rng.random::<f64>() * (300f64.ln() - 3f64.ln())).exp().round() as u32;
                BenchAccount { row: projection_row(&a), users }
            })
            .collect();
        let names = event_names();
        Tenant { account_pick: Zipf::new(n, 0.8), name_pick: Zipf::new(names.len(), 1.0), accounts, names, seed }
    }

    /// Writes the accounts into Health's projection through the store's own
    /// upsert (what the Accounts consumer does for AccountCreated), 16 at a time.
    pub async fn seed(&self, pool: &sea_orm::DatabaseConnection) -> anyhow::Result<()> {
        use futures::{StreamExt, TryStreamExt};
        futures::stream::iter(&self.accounts)
            .map(|a| banso_health::bench::upsert_account(pool, TENANT, &a.row))
            .buffer_unordered(16)
            .try_collect::<()>()
            .await
            .context("seeding the accounts projection")
    }

    /// Event `i` of message `batch` (deterministic for the seed): a random
    /// account (skewed), one of its users, a name (skewed), a time in the
    /// `spread` before `now` (whole microseconds), quantity for a third,
    /// duration for half, 0 to 3 properties. One in five names its account
    /// by external id.
    pub fn event(&self, rng: &mut StdRng, now: DateTime<Utc>, spread: chrono::Duration) -> Generated {
        let account = self.account_pick.sample(rng);
        let a = &self.accounts[account];
        let by_external = rng.random_bool(0.2) && a.row.external_id.is_some();
        let back = rng.random_range(0..spread.num_microseconds().unwrap_or(1).max(1));
        let occur_time = now - chrono::Duration::microseconds(back);
        let mut properties = std::collections::HashMap::new();
        for _ in 0..rng.random_range(0..=3) {
            let k = rng.random_range(0..PROPERTY_KEYS.len());
            properties
                .insert(PROPERTY_KEYS[k].to_owned(), PROPERTY_VALUES[k].choose(rng).expect("non-empty").to_string());
        }
        let properties_json =
            serde_json::to_string(&serde_json::to_value(&properties).expect("a string map")).expect("serializes");
        let event = pb::UsageEvent {
            event_id: uuid::Builder::from_random_bytes(rng.random()).into_uuid().to_string(),
            account_id: if by_external { String::new() } else { a.row.account_id.to_string() },
            account_external_id: if by_external {
                a.row.external_id.clone().unwrap_or_default()
            } else {
                String::new()
            },
            user_id: format!("usr_{account}_{}", rng.random_range(0..a.users)),
            event_name: self.names[self.name_pick.sample(rng)].clone(),
            timestamp: Some(timestamp(occur_time)),
            quantity: rng.random_bool(0.33).then(|| f64::from(rng.random_range(1..=10_000u32)) / 100.0),
            duration_seconds: rng.random_bool(0.5).then(|| f64::from(rng.random_range(1..=1_800_000u32)) / 1000.0),
            properties,
        };
        Generated { event, account, occur_time, properties_json }
    }

    /// Message `index` of a stream: `size` events, the same for the same
    /// seed, index, `now` and `spread`.
    pub fn message(&self, index: u64, size: usize, now: DateTime<Utc>, spread: chrono::Duration) -> Vec<Generated> {
        let mut rng = StdRng::seed_from_u64(self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index);
        (0..size).map(|_| self.event(&mut rng, now, spread)).collect()
    }
}

pub fn timestamp(t: DateTime<Utc>) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

/// The projection row Accounts' AccountCreated would give Health: the
/// consumer's own conversion, with a fresh UUIDv7 id (the generator's
/// accounts have none, and always a stage and a touch model).
fn projection_row(a: &apb::Account) -> AccountRow {
    let a = apb::Account { id: Uuid::now_v7().to_string(), ..a.clone() };
    banso_health::bench::account_row(&a).expect("generated accounts convert")
}

/// The UTC day of a time (the bench tenant has no time zone set: UTC).
pub fn day(t: DateTime<Utc>) -> NaiveDate {
    t.date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_deterministic_and_valid() {
        let t = Tenant::new(50, 7);
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let spread = chrono::Duration::days(6);
        let a = t.message(3, 200, now, spread);
        let b = t.message(3, 200, now, spread);
        assert_eq!(a.len(), 200);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.event, y.event);
            assert!(x.occur_time <= now && x.occur_time > now - spread);
            assert!(t.names.contains(&x.event.event_name));
            assert!(x.event.account_id.is_empty() != x.event.account_external_id.is_empty());
        }
        assert_eq!(event_names().len(), 100);
    }
}
