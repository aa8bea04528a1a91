//! A small map whose entries live for a fixed time, bounded in size: what
//! the tracking API remembers between requests (verified keys, users'
//! accounts, traits waiting for a user's group). Per replica and in memory:
//! losing it costs a lookup, never correctness.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

pub struct TtlCache<K, V> {
    ttl: Duration,
    cap: usize,
    map: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// Entries live `ttl` (zero: nothing is kept); at most `cap` of them.
    pub fn new(ttl: Duration, cap: usize) -> Self {
        TtlCache { ttl, cap, map: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, k: &K) -> Option<V> {
        let mut map = self.lock();
        match map.get(k) {
            Some((until, v)) if *until > Instant::now() => Some(v.clone()),
            Some(_) => {
                map.remove(k);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, k: K, v: V) {
        if self.ttl.is_zero() || self.cap == 0 {
            return;
        }
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= self.cap && !map.contains_key(&k) {
            map.retain(|_, (until, _)| *until > now);
            // Still full of live entries: start over rather than track age
            // order (the entries are cheap to learn again).
            if map.len() >= self.cap {
                map.clear();
            }
        }
        map.insert(k, (now + self.ttl, v));
    }

    pub fn remove(&self, k: &K) -> Option<V> {
        let now = Instant::now();
        self.lock().remove(k).filter(|(until, _)| *until > now).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_size_is_bounded() {
        let c = TtlCache::new(Duration::from_secs(60), 2);
        c.insert(1, "a");
        c.insert(2, "b");
        assert_eq!(c.get(&1), Some("a"));
        c.insert(3, "c");
        assert!(c.lock().len() <= 2);
        assert_eq!(c.get(&3), Some("c"));
        assert_eq!(c.remove(&3), Some("c"));
        assert_eq!(c.get(&3), None);

        let none = TtlCache::new(Duration::ZERO, 10);
        none.insert(1, "a");
        assert_eq!(none.get(&1), None);
        let short = TtlCache::new(Duration::from_nanos(1), 10);
        short.insert(1, "a");
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(short.get(&1), None);
    }
}
