//! The concurrent cutoff cache: TTL, bounded size, single flight, and the
//! revocation epochs that keep a slow load from resurrecting a revoked token.
//!
//! # Keys
//! Entries are keyed by a 128-bit SipHash-1-3 of the subject under a random
//! per-process key, so a lookup never allocates and an entry costs 40 bytes
//! of table space instead of a heap-allocated string. Two subjects share a
//! slot only on a 128-bit collision of a keyed PRF (probability about
//! n²/2¹²⁹, ≈ 10⁻²⁷ for a million subjects, and not steerable by an attacker
//! who does not know the key).
//!
//! # Correctness under races
//! Cutoffs merge by component-wise maximum, so updates to an entry that exists
//! commute. The remaining hazard is a `load` that read the store *before* a
//! revocation and inserts *after* the revocation's entry was evicted or
//! expired. Every subject hashes to one of [`STRIPES`] epoch counters. A
//! revocation (1) writes the store, (2) increments the epoch, (3) merges the
//! new cutoff into the cache. A load reads the epoch before calling the store
//! and inserts only if, under the entry's shard lock, the epoch is unchanged.
//! If the revocation's increment came first, the load does not insert; if it
//! came later, the revocation's merge runs after the insert and wins the max.
//!
//! A flight (one shared `load` for concurrent misses) is joined only by
//! callers whose epoch equals the flight's: a validation that starts after a
//! revocation returned never decides from a load that started before it.

use std::future::Future;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use siphasher::sip128::{Hasher128, SipHasher13};
use tokio::sync::OnceCell;

use crate::clock::Clock;
use crate::cutoff::Cutoff;
use crate::store::StoreError;

/// Number of revocation epoch stripes. A revocation only disturbs in-flight
/// loads of subjects on its stripe.
pub(crate) const STRIPES: usize = 64;

/// A subject's cache key: its keyed 128-bit hash.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct SubjectKey(u64, u64);

impl Hash for SubjectKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already a uniformly distributed keyed hash: feed one word.
        state.write_u64(self.0);
    }
}

impl SubjectKey {
    fn stripe(self) -> usize {
        (self.1 % STRIPES as u64) as usize
    }
}

/// Passes a [`SubjectKey`]'s first word through as the table hash.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `SubjectKey`; fold bytes in for completeness.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type Map<V> = DashMap<SubjectKey, V, BuildHasherDefault<PassThrough>>;

/// A cached cutoff and when it stops being fresh (Unix milliseconds).
#[derive(Clone, Copy, Debug)]
struct Slot {
    cutoff: Cutoff,
    expires_ms: i64,
}

/// Settings of the cache, all in milliseconds or counts.
#[derive(Clone, Debug)]
pub(crate) struct CacheConfig {
    pub(crate) ttl_ms: i64,
    pub(crate) negative_ttl_ms: i64,
    pub(crate) stale_if_error_ms: Option<i64>,
    pub(crate) max_entries: usize,
    pub(crate) max_negative_entries: usize,
}

/// What the cache knows about a subject right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// A fresh cutoff: decide without the store.
    Fresh(Cutoff),
    /// Recently seen as unknown by the store.
    Unknown,
    /// Nothing fresh: ask the store.
    Miss,
}

/// Whether a load may join a flight already under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Join {
    /// Any flight that started at this caller's epoch or later.
    Any,
    /// None: start a new store read.
    Fresh,
}

/// One shared store load.
struct Flight {
    epoch: u64,
    result: OnceCell<Result<Option<Cutoff>, StoreError>>,
}

/// The global cutoff, cached like a subject's.
struct Global {
    not_before: AtomicI64,
    /// 0 until the first successful load.
    expires_ms: AtomicI64,
    /// Held by the one refresh in progress; holds the error of the last
    /// attempt if it failed, so callers queued behind a failed attempt
    /// share its outcome instead of repeating it one after the other.
    refresh: tokio::sync::Mutex<Option<StoreError>>,
    /// Number of finished refresh attempts.
    attempts: AtomicU64,
}

pub(crate) struct CutoffCache {
    entries: Map<Slot>,
    negative: Map<i64>,
    flights: Map<Arc<Flight>>,
    epochs: Box<[AtomicU64]>,
    len: AtomicUsize,
    negative_len: AtomicUsize,
    /// Milliseconds by which entries count as older than they are: 0
    /// normally, `ttl - max_age` while the age of entries is limited (an
    /// invalidation channel is down).
    age_margin_ms: AtomicI64,
    global: Global,
    hash_keys: (u64, u64),
    cfg: CacheConfig,
    clock: Arc<dyn Clock>,
}

fn random_keys() -> (u64, u64) {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to the standard library's per-process
        // random hasher keys, which are still unknown to an attacker.
        use std::hash::BuildHasher;
        let s = std::collections::hash_map::RandomState::new();
        return (s.hash_one(1u8), s.hash_one(2u8));
    }
    let (a, b) = bytes.split_at(8);
    (
        u64::from_le_bytes(a.try_into().unwrap_or_default()),
        u64::from_le_bytes(b.try_into().unwrap_or_default()),
    )
}

impl CutoffCache {
    pub(crate) fn new(cfg: CacheConfig, clock: Arc<dyn Clock>) -> Self {
        CutoffCache {
            entries: Map::default(),
            negative: Map::default(),
            flights: Map::default(),
            epochs: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            len: AtomicUsize::new(0),
            negative_len: AtomicUsize::new(0),
            age_margin_ms: AtomicI64::new(0),
            global: Global {
                not_before: AtomicI64::new(i64::MIN),
                expires_ms: AtomicI64::new(0),
                refresh: tokio::sync::Mutex::new(None),
                attempts: AtomicU64::new(0),
            },
            hash_keys: random_keys(),
            cfg,
            clock,
        }
    }

    pub(crate) fn key(&self, sub: &str) -> SubjectKey {
        let mut h = SipHasher13::new_with_keys(self.hash_keys.0, self.hash_keys.1);
        h.write(sub.as_bytes());
        let out = h.finish128();
        SubjectKey(out.h1, out.h2)
    }

    fn ttl_ms(&self) -> i64 {
        self.cfg.ttl_ms
    }

    /// Looks a subject up without waiting. Never holds a map guard beyond the
    /// copy of the slot.
    pub(crate) fn lookup(&self, key: SubjectKey, now_ms: i64) -> Lookup {
        let margin = self.age_margin_ms.load(Ordering::Relaxed);
        if let Some(slot) = self.entries.get(&key).map(|s| *s)
            && slot.expires_ms.saturating_sub(margin) > now_ms
        {
            return Lookup::Fresh(slot.cutoff);
        }
        if let Some(expires) = self.negative.get(&key).map(|e| *e)
            && expires > now_ms
        {
            return Lookup::Unknown;
        }
        Lookup::Miss
    }

    /// The cached cutoff if it is still within the stale-if-error window.
    pub(crate) fn stale(&self, key: SubjectKey, now_ms: i64) -> Option<Cutoff> {
        let window = self.cfg.stale_if_error_ms?;
        let slot = self.entries.get(&key).map(|s| *s)?;
        (slot.expires_ms.saturating_add(window) > now_ms).then_some(slot.cutoff)
    }

    /// The cached cutoff, fresh or not (used to merge a load's result).
    fn current(&self, key: SubjectKey) -> Option<Cutoff> {
        self.entries.get(&key).map(|s| s.cutoff)
    }

    fn epoch(&self, key: SubjectKey) -> &AtomicU64 {
        &self.epochs[key.stripe()]
    }

    /// Loads a subject's cutoff from the store, sharing one call among
    /// concurrent callers, and caches the result unless a revocation on the
    /// same stripe happened meanwhile.
    ///
    /// With `Join::Fresh` the caller never joins a flight already under way:
    /// `issue` must read the store itself, since a revocation made on another
    /// instance (invisible to this one's epochs) may have landed after an
    /// older flight read the store. Later callers may join the new flight.
    pub(crate) async fn load<F, Fut>(
        &self,
        key: SubjectKey,
        join: Join,
        load: F,
    ) -> Result<Option<Cutoff>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Cutoff>, StoreError>>,
    {
        let epoch = self.epoch(key).load(Ordering::Acquire);
        let flight = match self.flights.entry(key) {
            // A flight that started at our epoch or later saw every
            // revocation that returned before we started.
            Entry::Occupied(o) if join == Join::Any && o.get().epoch >= epoch => {
                Arc::clone(o.get())
            }
            Entry::Occupied(mut o) => {
                let f = Arc::new(Flight::new(epoch));
                o.insert(Arc::clone(&f));
                f
            }
            Entry::Vacant(v) => {
                let f = Arc::new(Flight::new(epoch));
                v.insert(Arc::clone(&f));
                f
            }
        };
        // The shard guard of `flights` is dropped above, before any await.
        let result = flight
            .result
            .get_or_init(|| async {
                let loaded = load().await;
                if let Ok(found) = &loaded {
                    self.insert_loaded(key, flight.epoch, *found);
                }
                loaded
            })
            .await
            .clone();
        // Runs in the same poll as the completion above, so a cancelled
        // caller cannot leave a finished flight behind.
        self.flights.remove_if(&key, |_, f| Arc::ptr_eq(f, &flight));
        // Merge with whatever revocations arrived meanwhile.
        result.map(|found| found.map(|c| self.current(key).map_or(c, |cur| c.merge(cur))))
    }

    /// Caches a load's result if no revocation on the stripe happened since
    /// `epoch` was read. The check runs under the entry's shard lock.
    fn insert_loaded(&self, key: SubjectKey, epoch: u64, found: Option<Cutoff>) {
        let now = self.clock.now_millis();
        match found {
            Some(cutoff) => {
                self.make_room(now);
                let expires_ms = now.saturating_add(self.ttl_ms());
                match self.entries.entry(key) {
                    Entry::Occupied(mut o) => {
                        if self.epoch(key).load(Ordering::Acquire) == epoch {
                            let slot = o.get_mut();
                            slot.cutoff = slot.cutoff.merge(cutoff);
                            slot.expires_ms = slot.expires_ms.max(expires_ms);
                        }
                    }
                    Entry::Vacant(v) => {
                        if self.epoch(key).load(Ordering::Acquire) == epoch {
                            v.insert(Slot { cutoff, expires_ms });
                            self.len.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                if self.negative.remove(&key).is_some() {
                    self.negative_len.fetch_sub(1, Ordering::Relaxed);
                }
            }
            None => {
                // Under the shard lock, like the inserts: a load that started
                // before a revocation must not drop the revocation's entry.
                if self
                    .entries
                    .remove_if(&key, |_, _| {
                        self.epoch(key).load(Ordering::Acquire) == epoch
                    })
                    .is_some()
                {
                    self.len.fetch_sub(1, Ordering::Relaxed);
                }
                self.make_negative_room(now);
                let expires = now.saturating_add(self.cfg.negative_ttl_ms);
                match self.negative.entry(key) {
                    Entry::Occupied(mut o) => {
                        if self.epoch(key).load(Ordering::Acquire) == epoch {
                            *o.get_mut() = expires;
                        }
                    }
                    Entry::Vacant(v) => {
                        if self.epoch(key).load(Ordering::Acquire) == epoch {
                            v.insert(expires);
                            self.negative_len.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
    }

    /// Applies a revocation whose store write has completed: bumps the
    /// stripe's epoch, then merges `cutoff` into the entry (creating it), and
    /// forgets any negative entry. After this returns, every lookup of the
    /// subject on this cache sees at least `cutoff`.
    pub(crate) fn apply(&self, key: SubjectKey, cutoff: Cutoff) {
        self.epoch(key).fetch_add(1, Ordering::AcqRel);
        let now = self.clock.now_millis();
        let expires_ms = now.saturating_add(self.ttl_ms());
        if self.negative.remove(&key).is_some() {
            self.negative_len.fetch_sub(1, Ordering::Relaxed);
        }
        self.make_room(now);
        match self.entries.entry(key) {
            Entry::Occupied(mut o) => {
                let slot = o.get_mut();
                // A revocation's cutoff is what the store holds right now, so
                // the merged entry is fresh again.
                slot.cutoff = slot.cutoff.merge(cutoff);
                slot.expires_ms = slot.expires_ms.max(expires_ms);
            }
            Entry::Vacant(v) => {
                v.insert(Slot { cutoff, expires_ms });
                self.len.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Drops every cached cutoff (positive and negative) and disturbs every
    /// in-flight load, so the next validation of any subject asks the store.
    pub(crate) fn clear(&self) {
        for e in self.epochs.iter() {
            e.fetch_add(1, Ordering::AcqRel);
        }
        self.entries.retain(|_, _| {
            self.len.fetch_sub(1, Ordering::Relaxed);
            false
        });
        self.negative.retain(|_, _| {
            self.negative_len.fetch_sub(1, Ordering::Relaxed);
            false
        });
        self.global.expires_ms.store(0, Ordering::Release);
    }

    /// While `Some(max_age)`, entries loaded longer ago than `max_age` are
    /// treated as expired (and the global cutoff is reloaded as often).
    pub(crate) fn limit_age(&self, max_age_ms: Option<i64>) {
        let margin = match max_age_ms {
            Some(age) => self.cfg.ttl_ms.saturating_sub(age).max(0),
            None => 0,
        };
        self.age_margin_ms.store(margin, Ordering::Relaxed);
    }

    /// Number of cached positive entries.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Number of cached negative entries.
    pub(crate) fn negative_len(&self) -> usize {
        self.negative_len.load(Ordering::Relaxed)
    }

    /// Keeps the positive map under `max_entries`, dropping entries past
    /// their stale window first. Dropping an entry only costs a reload; the
    /// epochs keep a racing load from re-caching an old cutoff.
    fn make_room(&self, now_ms: i64) {
        let keep_after = now_ms.saturating_sub(self.cfg.stale_if_error_ms.unwrap_or(0));
        enforce_bound(&self.entries, &self.len, self.cfg.max_entries, |slot| {
            slot.expires_ms > keep_after
        });
    }

    fn make_negative_room(&self, now_ms: i64) {
        enforce_bound(
            &self.negative,
            &self.negative_len,
            self.cfg.max_negative_entries,
            |expires| *expires > now_ms,
        );
    }

    /// The global `not_before`, loaded through `load` when the cached value
    /// is older than the TTL. One refresh at a time.
    pub(crate) async fn global<F, Fut>(&self, now_ms: i64, load: F) -> Result<i64, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<i64, StoreError>>,
    {
        if let Some(nb) = self.fresh_global(now_ms) {
            return Ok(nb);
        }
        let seen = self.global.attempts.load(Ordering::Acquire);
        let mut last_error = self.global.refresh.lock().await;
        // Another caller may have refreshed it while this one waited.
        if let Some(nb) = self.fresh_global(now_ms) {
            return Ok(nb);
        }
        // ... or failed to: share that failure rather than queueing one
        // more store round trip behind it.
        if self.global.attempts.load(Ordering::Acquire) != seen
            && let Some(e) = last_error.clone()
        {
            return self.stale_global(now_ms, e);
        }
        let loaded = load().await;
        self.global.attempts.fetch_add(1, Ordering::AcqRel);
        match loaded {
            Ok(nb) => {
                *last_error = None;
                Ok(self.refresh_global(nb))
            }
            Err(e) => {
                *last_error = Some(e.clone());
                self.stale_global(now_ms, e)
            }
        }
    }

    /// The cached global `not_before` within the stale-if-error window, or `e`.
    fn stale_global(&self, now_ms: i64, e: StoreError) -> Result<i64, StoreError> {
        let loaded_before = self.global.expires_ms.load(Ordering::Acquire);
        match self.cfg.stale_if_error_ms {
            Some(window) if loaded_before != 0 && loaded_before.saturating_add(window) > now_ms => {
                Ok(self.global.not_before.load(Ordering::Acquire))
            }
            _ => Err(e),
        }
    }

    /// The cached global `not_before`, if still fresh.
    fn fresh_global(&self, now_ms: i64) -> Option<i64> {
        let margin = self.age_margin_ms.load(Ordering::Relaxed);
        let expires = self.global.expires_ms.load(Ordering::Acquire);
        (expires.saturating_sub(margin) > now_ms)
            .then(|| self.global.not_before.load(Ordering::Acquire))
    }

    /// Records a global `not_before` just read from the store: merged, and
    /// fresh for a TTL.
    pub(crate) fn refresh_global(&self, not_before: i64) -> i64 {
        let merged = self.merge_global(not_before);
        let expires = self.clock.now_millis().saturating_add(self.ttl_ms());
        self.global.expires_ms.fetch_max(expires, Ordering::AcqRel);
        merged
    }

    /// Raises the cached global `not_before` (never lowers it).
    pub(crate) fn merge_global(&self, not_before: i64) -> i64 {
        let prev = self
            .global
            .not_before
            .fetch_max(not_before, Ordering::AcqRel);
        prev.max(not_before)
    }
}

/// When `map` holds `max` entries or more: drops the entries `live` rejects,
/// then arbitrary ones until fewer than 90 % of `max` remain. `len` is the
/// map's entry count, kept in step under the shard locks.
fn enforce_bound<V>(map: &Map<V>, len: &AtomicUsize, max: usize, live: impl Fn(&V) -> bool) {
    if len.load(Ordering::Relaxed) < max {
        return;
    }
    map.retain(|_, v| {
        let keep = live(v);
        if !keep {
            len.fetch_sub(1, Ordering::Relaxed);
        }
        keep
    });
    let target = max - max / 10;
    if len.load(Ordering::Relaxed) >= max {
        map.retain(|_, _| {
            if len.load(Ordering::Relaxed) >= target {
                len.fetch_sub(1, Ordering::Relaxed);
                false
            } else {
                true
            }
        });
    }
}

impl Flight {
    fn new(epoch: u64) -> Self {
        Flight {
            epoch,
            result: OnceCell::new(),
        }
    }
}
