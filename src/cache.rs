//! The concurrent cutoff cache: TTL, bounded size, single flight, and the
//! revocation epochs that keep a slow load from resurrecting a revoked token.
//!
//! # Keys and entries
//! Entries are keyed by 96 bits of a SipHash-1-3 of the subject under a
//! random per-process key, so a lookup never allocates and an entry costs
//! 36 bytes of table space instead of a heap-allocated string: the key (12),
//! the cutoff (16) and one read stamp (8) that both orders reads and says
//! when the read started (see [`Stamp`]). Two subjects share a slot only on
//! a 96-bit collision of a keyed PRF (probability about n²/2⁹⁷, ≈ 6·10⁻¹⁸
//! for a million subjects, ≈ 6·10⁻¹⁴ for a hundred million, and not
//! steerable by an attacker who does not know the key).
//!
//! # Correctness under races
//! Three kinds of information reach the cache:
//! - a **fresh read**: a store `load` that no revocation overtook. Only such
//!   a read makes an entry fresh, and it *replaces* the cached cutoff rather
//!   than merging with it: a repair (which never lowers a version, but may
//!   bring a future `not_before` back to now) and a subject deleted and
//!   recreated (a lower version, a later `not_before`) are both followed
//!   within the TTL.
//! - a **floor**: the store's reply to a revocation, or an event from another
//!   instance. It says "the cutoff was at least this, some time ago". It
//!   raises an existing entry by component-wise maximum but never makes it
//!   fresh or extends its freshness. An event never creates an entry; a
//!   local revocation creates one only as a floor (not fresh: the next
//!   request reads the store), so a late, duplicated or reordered message,
//!   or the slow reply of a racing revocation, cannot revive a token once a
//!   newer entry was evicted or cleared.
//! - a **stale read**: a `load` that a revocation overtook. It is returned
//!   to its callers merged with the current entry, but not cached.
//!
//! Every subject hashes to one of [`STRIPES`] epoch counters. A floor (1)
//! bumps the stripe's epoch, then (2) merges into the entry under the shard
//! lock. A load reads the epoch before calling the store and caches its
//! result only if, under the shard lock, the epoch is unchanged: if the
//! floor's bump came first, the load does not cache; if it came later, the
//! floor's merge runs after the replace and wins the max. A revocation's
//! store write completes before its bump, and an event is published after
//! its store write, so a load that passed the check read a store that
//! already held every floor applied before it started (stores must give
//! read-your-writes across connections, as a single database primary does).
//! The global cutoff has its own epoch with the same rule.
//!
//! A flight (one shared `load` for concurrent misses) is joined only by
//! callers whose epoch is not newer than the flight's: a validation that
//! starts after a revocation returned never decides from a load that
//! started before it. A flight is released by its last waiter, whether that
//! waiter completes or is dropped mid-way (a client that went away), so
//! cancelled requests leave nothing behind.
//!
//! Every wait on the store is bounded by the caller's deadline (the guard's
//! store timeout): a hung store makes requests fail (or use stale-if-error),
//! never wait longer.

use std::future::Future;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use siphasher::sip128::{Hasher128, SipHasher13};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::cutoff::Cutoff;
use crate::metrics::{Counter, Counters};
use crate::store::StoreError;

/// Number of revocation epoch stripes. A revocation only disturbs in-flight
/// loads of subjects on its stripe.
pub(crate) const STRIPES: usize = 256;

/// A subject's cache key: 96 bits of its keyed hash, as three 32-bit words
/// so that an entry packs without padding.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct SubjectKey([u32; 3]);

impl Hash for SubjectKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already a uniformly distributed keyed hash: feed the first two
        // words as the table hash (the third picks the epoch stripe).
        state.write_u64(u64::from(self.0[0]) | (u64::from(self.0[1]) << 32));
    }
}

impl SubjectKey {
    fn from_hash(h1: u64, h2: u64) -> Self {
        // Truncations on purpose: the key is 96 bits of the 128-bit hash.
        SubjectKey([h1 as u32, (h1 >> 32) as u32, h2 as u32])
    }

    fn stripe(self) -> usize {
        self.0[2] as usize % STRIPES
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

/// A 64-bit value stored as two 32-bit words (4-byte alignment, so a
/// table entry carries no padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Packed([u32; 2]);

impl Packed {
    fn new(v: i64) -> Self {
        // Bit-for-bit split; `get` puts the same bits back.
        let v = v as u64;
        Packed([v as u32, (v >> 32) as u32])
    }

    fn get(self) -> i64 {
        (u64::from(self.0[0]) | (u64::from(self.0[1]) << 32)) as i64
    }
}

/// A read stamp: orders reads and records when each started.
///
/// `(start in Unix ms) << 12 | sequence`, taken from a hybrid logical
/// clock. Its time part is the latest clock reading seen so far: when the
/// wall clock steps back, it stays where it was until the clock catches up
/// (so a read made meanwhile is fresh longer by at most the step, like the
/// entries read before the step), and it is never ahead of every clock
/// reading. The sequence counts reads within one time part; a new stamp is
/// above every earlier one until the sequence is used up (4 096 reads
/// within one millisecond, or within a step back), after which stamps of
/// the same time part are equal. Equal stamps never let one read replace
/// the other: their cutoffs are merged (maximum), and an "unknown subject"
/// answer prevails over a cutoff (see [`CutoffCache::insert_loaded`]), so
/// a tie only ever rejects more. An entry is fresh for a TTL from its
/// stamp's time. [`FLOOR`] marks an entry that no fresh read confirmed.
///
/// The clock recovers after a glitch: a bad reading fails closed while it
/// lasts and leaves nothing behind. A reading outside the stamps' range
/// fails its read and moves no stamp. A stamp whose time is ahead of the
/// clock by more than the cache's age (the TTL, or the reduced age while
/// [`CutoffCache::limit_age`] is in force; at least [`MIN_GLITCH_MS`])
/// came from a reading the clock has stepped back from (a glitch ahead, or
/// a large step back): such an entry is neither fresh nor stale, such a
/// load is neither joined nor decided on, and the next stamp sets the time
/// part back to the clock and drops everything cached (as
/// [`CutoffCache::clear`]), so that no read made before stays fresh or
/// keeps a later read from replacing it.
pub(crate) type Stamp = i64;

/// The stamp of a floor: older than every read, never fresh, never within
/// a stale window.
const FLOOR: Stamp = i64::MIN;

const SEQ_BITS: u32 = 12;
const SEQ_MASK: i64 = (1 << SEQ_BITS) - 1;
/// Time parts of stamps stay within ±2⁵¹ ms (±71 000 years), so a stamp
/// never overflows and never equals [`FLOOR`]. A clock beyond that range
/// fails closed: no read is made or decided on (`store_unavailable`), and
/// the stamp clock does not move.
const MAX_STAMP_MS: i64 = (1 << 51) - 1;

/// The least step back taken as the end of a glitch, however short the
/// cache's age: readings that concurrent requests took a moment apart
/// must not clear the cache.
const MIN_GLITCH_MS: i64 = 1_000;

/// Whether a clock reading can be a stamp's time.
fn in_range(now_ms: i64) -> bool {
    (-MAX_STAMP_MS..=MAX_STAMP_MS).contains(&now_ms)
}

/// What a read fails with when the clock reads outside the stamps' range.
fn clock_out_of_range() -> StoreError {
    StoreError::msg("the clock reads outside the cache's range (±2^51 ms from 1970)")
}

/// Whether a read that started at `start_ms` is fresh at `now_ms`: less
/// than `age_ms` old, and not more than `ahead_ms` ahead (a start further
/// ahead came from a clock reading the clock has since stepped back from).
fn fresh_at(start_ms: i64, now_ms: i64, age_ms: i64, ahead_ms: i64) -> bool {
    start_ms.saturating_add(age_ms) > now_ms && start_ms.saturating_sub(now_ms) <= ahead_ms
}

/// When the read of `stamp` started (Unix ms).
fn stamp_ms(stamp: Stamp) -> i64 {
    stamp >> SEQ_BITS
}

/// A stamp for a read that started at `start_ms`, with `stamp`'s sequence.
fn restamp(stamp: Stamp, start_ms: i64) -> Stamp {
    (start_ms.clamp(-MAX_STAMP_MS, MAX_STAMP_MS) << SEQ_BITS) | (stamp & SEQ_MASK)
}

/// `expires_ms` of a floor: never fresh, never within a stale window.
const NEVER_FRESH: i64 = i64::MIN;

/// A cached cutoff and the read that made it fresh: 24 bytes, aligned to
/// 4, so that with its key an entry is 36 bytes.
#[derive(Clone, Copy, Debug)]
struct Slot {
    version: Packed,
    not_before: Packed,
    /// [`FLOOR`] for a floor that no fresh read confirmed; otherwise the
    /// read that made the entry fresh, fresh for a TTL from its time: a
    /// read that started earlier never replaces it.
    stamp: Packed,
}

impl Slot {
    fn new(cutoff: Cutoff, stamp: Stamp) -> Self {
        Slot {
            // The version's bits as they are (`cutoff` puts them back).
            version: Packed::new(cutoff.version as i64),
            not_before: Packed::new(cutoff.not_before),
            stamp: Packed::new(stamp),
        }
    }

    fn cutoff(&self) -> Cutoff {
        Cutoff {
            version: self.version.get() as u64,
            not_before: self.not_before.get(),
        }
    }

    fn set_cutoff(&mut self, cutoff: Cutoff) {
        *self = Slot::new(cutoff, self.stamp());
    }

    fn stamp(&self) -> Stamp {
        self.stamp.get()
    }

    /// Whether the entry is fresh at `now_ms` for an age of `age_ms`,
    /// stamped at most `ahead_ms` ahead (see [`fresh_at`]; a floor never
    /// is).
    fn fresh(&self, now_ms: i64, age_ms: i64, ahead_ms: i64) -> bool {
        match self.stamp() {
            FLOOR => false,
            s => fresh_at(stamp_ms(s), now_ms, age_ms, ahead_ms),
        }
    }

    /// When the entry stops being fresh (Unix ms), for a cache of `ttl_ms`.
    fn expires_ms(&self, ttl_ms: i64) -> i64 {
        match self.stamp() {
            FLOOR => NEVER_FRESH,
            s => stamp_ms(s).saturating_add(ttl_ms),
        }
    }
}

/// A cached "unknown subject" answer: fresh for the negative TTL from its
/// read's stamp.
#[derive(Clone, Copy, Debug)]
struct Unknown {
    stamp: Stamp,
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

/// Where a floor comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// This guard's own revocation, whose store write has completed.
    Local,
    /// An event from another instance (possibly late, duplicated or
    /// replayed).
    Remote,
}

/// Whether a load may join a flight already under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Join {
    /// Any flight that started at this caller's epoch or later.
    Any,
    /// None: start a new store read.
    Fresh,
}

type SharedLoad<T> = Shared<BoxFuture<'static, Result<T, StoreError>>>;

/// One shared store load. Every waiter polls the same shared future, so a
/// waiter that stops being polled (a request parked by its handler) holds
/// nobody up, and the last waiter to leave drops the load.
struct Flight {
    epoch: u64,
    /// Orders reads (a later read replaces an earlier one, never the
    /// reverse) and says when the flight started: its read is fresh for a
    /// TTL from then, not from when the store answered, so a slow read
    /// cannot stretch the cross-instance bound.
    stamp: Stamp,
    /// Callers waiting on it; changed only under the `flights` shard lock.
    waiters: AtomicUsize,
    /// Set by the first waiter that caches the result.
    cached: std::sync::atomic::AtomicBool,
    load: SharedLoad<Option<Cutoff>>,
    /// The cache's count of live flights, decremented when this one goes.
    live: Arc<AtomicUsize>,
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A caller's stake in a flight: leaving (done or dropped) releases it, and
/// the last one to leave removes the flight from the map.
struct Waiter<'a> {
    flights: &'a Map<Arc<Flight>>,
    key: SubjectKey,
    flight: Arc<Flight>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        // The count is changed under the shard lock only, so a caller that
        // joins cannot interleave with the last one leaving. A flight that
        // was replaced or removed is no longer counted.
        self.flights.remove_if(&self.key, |_, f| {
            Arc::ptr_eq(f, &self.flight) && f.waiters.fetch_sub(1, Ordering::AcqRel) == 1
        });
    }
}

/// One shared refresh of the global cutoff.
struct GlobalFlight {
    epoch: u64,
    stamp: Stamp,
    load: SharedLoad<i64>,
}

/// The global cutoff, cached like a subject's.
struct Global {
    not_before: AtomicI64,
    /// 0 until the first successful load.
    expires_ms: AtomicI64,
    /// Bumped by every floor and by `clear` / `mark_stale`; a refresh whose
    /// epoch changed is merged as a floor, not made fresh.
    epoch: AtomicU64,
    /// The read that made the value fresh; changed under `write`.
    stamp: AtomicI64,
    /// Serializes replacing the value with merging a floor into it.
    write: std::sync::Mutex<()>,
    /// The refresh under way, if any (never held across an await). Weak:
    /// the refresh lives only as long as a caller waits for it.
    flight: std::sync::Mutex<std::sync::Weak<GlobalFlight>>,
}

pub(crate) struct CutoffCache {
    entries: Map<Slot>,
    negative: Map<Unknown>,
    /// The last read stamp handed out (see [`Stamp`]).
    last_stamp: AtomicI64,
    /// Subject loads alive (in the map or still awaited by someone).
    live_flights: Arc<AtomicUsize>,
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
    /// What the cache and the guard did (see [`crate::metrics`]).
    pub(crate) counters: Arc<Counters>,
}

pub(crate) fn random_keys() -> (u64, u64) {
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
        Self::with_counters(cfg, clock, Arc::new(Counters::new()))
    }

    /// A cache that counts into `counters` (shared with another cache of
    /// the same guard: the session cache counts with the subject cache).
    pub(crate) fn with_counters(
        cfg: CacheConfig,
        clock: Arc<dyn Clock>,
        counters: Arc<Counters>,
    ) -> Self {
        CutoffCache {
            entries: Map::default(),
            negative: Map::default(),
            last_stamp: AtomicI64::new(FLOOR),
            live_flights: Arc::new(AtomicUsize::new(0)),
            flights: Map::default(),
            epochs: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            len: AtomicUsize::new(0),
            negative_len: AtomicUsize::new(0),
            age_margin_ms: AtomicI64::new(0),
            global: Global {
                not_before: AtomicI64::new(i64::MIN),
                expires_ms: AtomicI64::new(0),
                epoch: AtomicU64::new(0),
                stamp: AtomicI64::new(FLOOR),
                write: std::sync::Mutex::new(()),
                flight: std::sync::Mutex::new(std::sync::Weak::new()),
            },
            hash_keys: random_keys(),
            cfg,
            clock,
            counters,
        }
    }

    pub(crate) fn key(&self, sub: &str) -> SubjectKey {
        let mut h = SipHasher13::new_with_keys(self.hash_keys.0, self.hash_keys.1);
        h.write(sub.as_bytes());
        let out = h.finish128();
        SubjectKey::from_hash(out.h1, out.h2)
    }

    /// The key of a pair of strings (a subject and one of its session
    /// ids): the subject, a separator no UTF-8 text contains, the second.
    pub(crate) fn key2(&self, a: &str, b: &str) -> SubjectKey {
        let mut h = SipHasher13::new_with_keys(self.hash_keys.0, self.hash_keys.1);
        h.write(a.as_bytes());
        h.write(&[0xff]);
        h.write(b.as_bytes());
        let out = h.finish128();
        SubjectKey::from_hash(out.h1, out.h2)
    }

    fn ttl_ms(&self) -> i64 {
        self.cfg.ttl_ms
    }

    /// How long an entry is fresh after its read started, and how old a
    /// load may be to be joined: the TTL, or the reduced age while
    /// [`CutoffCache::limit_age`] is in force.
    fn max_age_ms(&self) -> i64 {
        self.cfg
            .ttl_ms
            .saturating_sub(self.age_margin_ms.load(Ordering::Relaxed))
    }

    /// How far ahead of the clock a read's start may be: the age, at
    /// least [`MIN_GLITCH_MS`]. A start further ahead was stamped from a
    /// reading the clock has since stepped back from (see [`Stamp`]).
    fn max_ahead_ms(&self) -> i64 {
        self.max_age_ms().max(MIN_GLITCH_MS)
    }

    /// Whether a read that started at `start_ms` is further ahead of
    /// `now_ms` than [`CutoffCache::max_ahead_ms`]: a glitch's.
    fn glitched(&self, start_ms: i64, now_ms: i64) -> bool {
        start_ms.saturating_sub(now_ms) > self.max_ahead_ms()
    }

    /// Looks a subject up without waiting. Never holds a map guard beyond the
    /// copy of the slot.
    pub(crate) fn lookup(&self, key: SubjectKey, now_ms: i64) -> Lookup {
        let ahead = self.max_ahead_ms();
        if let Some(slot) = self.entries.get(&key).map(|s| *s)
            && slot.fresh(now_ms, self.max_age_ms(), ahead)
        {
            return Lookup::Fresh(slot.cutoff());
        }
        if let Some(unknown) = self.negative.get(&key).map(|e| *e)
            && fresh_at(
                stamp_ms(unknown.stamp),
                now_ms,
                self.cfg.negative_ttl_ms,
                ahead,
            )
        {
            return Lookup::Unknown;
        }
        Lookup::Miss
    }

    /// The cached cutoff if it is still within the stale-if-error window.
    pub(crate) fn stale(&self, key: SubjectKey, now_ms: i64) -> Option<Cutoff> {
        let window = self.cfg.stale_if_error_ms?;
        let slot = self.entries.get(&key).map(|s| *s)?;
        // The stale window counts from the entry's expiry as the reduced
        // age (a disconnected bus) sees it. An entry stamped from a glitch
        // ahead is no stale answer: its age is unknown.
        let usable = slot.expires_ms(self.max_age_ms()).saturating_add(window) > now_ms
            && !self.glitched(stamp_ms(slot.stamp()), now_ms);
        usable.then(|| slot.cutoff())
    }

    /// The cached cutoff, fresh or not (used to merge a load's result).
    pub(crate) fn current(&self, key: SubjectKey) -> Option<Cutoff> {
        self.entries.get(&key).map(|s| s.cutoff())
    }

    fn unknown_expires_ms(&self, unknown: Unknown) -> i64 {
        stamp_ms(unknown.stamp).saturating_add(self.cfg.negative_ttl_ms)
    }

    fn epoch(&self, key: SubjectKey) -> &AtomicU64 {
        &self.epochs[key.stripe()]
    }

    /// A counter that moves whenever a floor, a `forget`, an eviction or a
    /// clear touches `key`'s stripe: a read that starts and ends with the
    /// same value was overtaken by none of them.
    pub(crate) fn disturbances(&self, key: SubjectKey) -> u64 {
        self.epoch(key).load(Ordering::Acquire)
    }

    /// A new read stamp: the clock's time if it is past every stamp handed
    /// out before, otherwise the last stamp's time with the next sequence
    /// number, or the last stamp itself once the sequence is used up (see
    /// [`Stamp`]). After a glitch ahead, the clock's time again.
    pub(crate) fn stamp(&self) -> Stamp {
        self.stamp_at(self.clock.now_millis())
    }

    /// [`CutoffCache::stamp`] for a read starting at `now_ms` (the clock's
    /// reading, taken once by the caller).
    ///
    /// A reading outside the stamps' range gets [`FLOOR`] (older than every
    /// read: it never makes anything fresh nor replaces anything) and moves
    /// nothing; `load` and `global` refuse such a reading before stamping.
    /// When the last stamp is further ahead of `now_ms` than an entry may
    /// be fresh for, the stamp clock goes back to `now_ms` and the cache is
    /// cleared, so that no stamp of the glitch outranks the reads to come.
    /// Called with a `flights` shard held (by `load`): touches no flight.
    fn stamp_at(&self, now_ms: i64) -> Stamp {
        if !in_range(now_ms) {
            return FLOOR;
        }
        let now = restamp(0, now_ms);
        // One reading of the bound for every try of the update below.
        let ahead = self.max_ahead_ms();
        let behind = |prev: Stamp| stamp_ms(prev).saturating_sub(now_ms) > ahead;
        let next = |prev: Stamp| {
            if now > prev || behind(prev) {
                now
            } else if prev & SEQ_MASK != SEQ_MASK {
                prev + 1
            } else {
                prev
            }
        };
        let prev = match self
            .last_stamp
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |prev| Some(next(prev)))
        {
            Ok(prev) | Err(prev) => prev,
        };
        if behind(prev) {
            // This call moved the stamp clock back: what was stamped since
            // the glitch may outrank every later read, and loads under way
            // may carry such stamps. Drop the one, disturb the other.
            #[cfg(feature = "tracing")]
            tracing::warn!(
                target: "jwt_revoke",
                ahead_ms = stamp_ms(prev).saturating_sub(now_ms),
                "the clock stepped back further than the cache age: cache cleared"
            );
            self.clear();
        }
        next(prev)
    }

    /// Sets the stamp clock back if a glitch left it ahead of `now_ms` (see
    /// [`CutoffCache::stamp_at`]). Called before a read's epoch is taken,
    /// so that the read that ends a glitch may still cache what it reads.
    fn recover(&self, now_ms: i64) {
        let last = self.last_stamp.load(Ordering::Acquire);
        if in_range(now_ms) && self.glitched(stamp_ms(last), now_ms) {
            self.stamp_at(now_ms);
        }
    }

    /// Loads a subject's cutoff from the store, sharing one call among
    /// concurrent callers, and caches the result unless a floor on the same
    /// stripe was applied meanwhile or a later read was cached first. Gives
    /// up at `deadline` with a timeout error (the load itself is bounded by
    /// the deadline of the caller that started it, so callers queued on it
    /// share the failure).
    ///
    /// With `Join::Fresh` the caller never joins a flight already under way:
    /// `issue` must read the store itself, since a revocation made on another
    /// instance (invisible to this one's epochs) may have landed after an
    /// older flight read the store. Later callers may join the new flight.
    /// Its caller also gets the store's answer as read, not merged with the
    /// cached cutoff: a token is stamped with the record the store holds,
    /// and a cached floor of a record since lost (a higher version than the
    /// record created again) would stamp a token that outlives the new
    /// record's revocations. (Other callers decide whether to accept, and
    /// there the maximum only ever rejects more.)
    pub(crate) async fn load<F, Fut>(
        &self,
        key: SubjectKey,
        join: Join,
        deadline: Instant,
        timeout: std::time::Duration,
        load: F,
    ) -> Result<Option<Cutoff>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Cutoff>, StoreError>> + Send + 'static,
    {
        let now = self.clock.now_millis();
        if !in_range(now) {
            // Fails closed: no stamp could say how old the read is.
            return Err(clock_out_of_range());
        }
        self.recover(now);
        let epoch = self.epoch(key).load(Ordering::Acquire);
        let new_flight = || {
            let stamp = self.stamp_at(now);
            self.counters.store_loads.incr();
            self.live_flights.fetch_add(1, Ordering::AcqRel);
            // No timer inside the shared load: each waiter bounds its own
            // wait, so a load started on a runtime that has since shut down
            // is never asked for that runtime's timer.
            Arc::new(Flight {
                epoch,
                stamp,
                waiters: AtomicUsize::new(1),
                cached: std::sync::atomic::AtomicBool::new(false),
                load: load().boxed().shared(),
                live: Arc::clone(&self.live_flights),
            })
        };
        let flight = match self.flights.entry(key) {
            // A flight that started at our epoch or later saw every
            // revocation that returned before we started; a finished one
            // may be arbitrarily old, so it is never joined, nor one that
            // started a TTL ago (only a parked request can keep one that
            // long, and its read is too old to decide on) or, while the age
            // of entries is limited, longer ago than that age; nor one
            // stamped from a glitch ahead (its age is unknown).
            Entry::Occupied(o)
                if join == Join::Any
                    && o.get().epoch >= epoch
                    && o.get().load.peek().is_none()
                    && fresh_at(
                        stamp_ms(o.get().stamp),
                        now,
                        self.max_age_ms(),
                        self.max_ahead_ms(),
                    ) =>
            {
                o.get().waiters.fetch_add(1, Ordering::AcqRel);
                self.counters.flight_joins.incr();
                Arc::clone(o.get())
            }
            Entry::Occupied(mut o) => {
                let f = new_flight();
                o.insert(Arc::clone(&f));
                f
            }
            Entry::Vacant(v) => {
                let f = new_flight();
                v.insert(Arc::clone(&f));
                f
            }
        };
        // The shard guard of `flights` is dropped above, before any await.
        let waiter = Waiter {
            flights: &self.flights,
            key,
            flight,
        };
        let flight = &waiter.flight;
        let mut result = match tokio::time::timeout_at(deadline, flight.load.clone()).await {
            Ok(result) => result,
            Err(_) => {
                // A load that outlived a caller's deadline is taken as hung:
                // later callers start their own instead of joining it.
                self.flights.remove_if(&key, |_, f| Arc::ptr_eq(f, flight));
                Err(StoreError::timed_out(timeout))
            }
        };
        let now = self.clock.now_millis();
        let start = stamp_ms(flight.stamp);
        if result.is_ok()
            && (start.saturating_add(self.ttl_ms()) <= now || self.glitched(start, now))
        {
            // A read that started a TTL ago is too old to decide on. (Under
            // a reduced age it was joined only while younger than that age,
            // so it is at most that old for every request it answers.) Nor
            // is one stamped from a glitch ahead: its age is unknown.
            result = Err(StoreError::timed_out(timeout));
        }
        if let Ok(found) = &result
            && !flight.cached.swap(true, Ordering::AcqRel)
        {
            self.insert_loaded(key, flight, *found);
        }
        // A finished flight leaves the map at once: a later miss reads the
        // store again.
        if flight.load.peek().is_some() {
            self.flights.remove_if(&key, |_, f| Arc::ptr_eq(f, flight));
        }
        drop(waiter);
        if join == Join::Fresh {
            return result;
        }
        // Merge with whatever floors arrived meanwhile.
        result.map(|found| found.map(|c| self.current(key).map_or(c, |cur| c.merge(cur))))
    }

    /// [`CutoffCache::load`], and when the store fails (or does not answer
    /// by `deadline`), the cached cutoff within the stale-if-error window,
    /// marked `true` (a stale answer). The window is checked when the
    /// answer is given, not when the request started: a hung store must
    /// not stretch it. A failure is counted as a store error.
    pub(crate) async fn load_or_stale<F, Fut>(
        &self,
        key: SubjectKey,
        deadline: Instant,
        timeout: std::time::Duration,
        load: F,
    ) -> Result<(Option<Cutoff>, bool), StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Cutoff>, StoreError>> + Send + 'static,
    {
        match self.load(key, Join::Any, deadline, timeout, load).await {
            Ok(found) => Ok((found, false)),
            Err(e) => {
                self.counters.store_errors.incr();
                #[cfg(feature = "tracing")]
                tracing::warn!(target: "jwt_revoke", error = %e, "cutoff load failed");
                self.stale(key, self.clock.now_millis())
                    .map(|c| (Some(c), true))
                    .ok_or(e)
            }
        }
    }

    /// Caches a load's result if no floor on the stripe was applied since
    /// its epoch was read and no later read was cached: the read is then
    /// the subject's current cutoff and replaces the entry. Runs under the
    /// entry's shard lock (positive and negative answers alike, so the two
    /// maps agree on which read came last). A read whose stamp equals the
    /// entry's (see [`Stamp`]) cannot be told apart from it in time: the
    /// answer that rejects more is kept (the maximum of two cutoffs, or
    /// "unknown subject" over a cutoff).
    fn insert_loaded(&self, key: SubjectKey, flight: &Flight, found: Option<Cutoff>) {
        let now = self.clock.now_millis();
        let stamp = flight.stamp;
        let unchanged = || self.epoch(key).load(Ordering::Acquire) == flight.epoch;
        let newer_unknown = || self.negative.get(&key).is_some_and(|u| u.stamp >= stamp);
        match found {
            Some(cutoff) => {
                self.make_room(now);
                let fresh = Slot::new(cutoff, stamp);
                match self.entries.entry(key) {
                    Entry::Occupied(mut o) => {
                        let current = o.get().stamp();
                        if unchanged() && stamp >= current && !newer_unknown() {
                            if stamp == current {
                                let merged = o.get().cutoff().merge(cutoff);
                                o.get_mut().set_cutoff(merged);
                            } else {
                                *o.get_mut() = fresh;
                            }
                            self.forget_unknown(key);
                        }
                    }
                    Entry::Vacant(v) => {
                        if unchanged() && !newer_unknown() {
                            v.insert(fresh);
                            self.len.fetch_add(1, Ordering::Relaxed);
                            self.forget_unknown(key);
                        }
                    }
                }
            }
            None => {
                self.make_negative_room(now);
                let unknown = Unknown { stamp };
                // Under the entry's shard lock, like the inserts: a load that
                // started before a revocation must not drop the revocation's
                // entry, nor an earlier read a later one.
                match self.entries.entry(key) {
                    Entry::Occupied(o) => {
                        if unchanged() && stamp >= o.get().stamp() {
                            o.remove();
                            self.len.fetch_sub(1, Ordering::Relaxed);
                            self.remember_unknown(key, unknown);
                        }
                    }
                    Entry::Vacant(_) => {
                        if unchanged() {
                            self.remember_unknown(key, unknown);
                        }
                    }
                }
            }
        }
    }

    fn forget_unknown(&self, key: SubjectKey) {
        if self.negative.remove(&key).is_some() {
            self.negative_len.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Caches "unknown" unless a later read already answered.
    fn remember_unknown(&self, key: SubjectKey, unknown: Unknown) {
        match self.negative.entry(key) {
            Entry::Occupied(mut o) => {
                if unknown.stamp > o.get().stamp {
                    *o.get_mut() = unknown;
                }
            }
            Entry::Vacant(v) => {
                v.insert(unknown);
                self.negative_len.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Applies a floor: a cutoff the subject had at least, at some point
    /// (the store's reply to a revocation, or an event from another
    /// instance). Bumps the stripe's epoch, so no load that started earlier
    /// caches its result, then raises the entry by maximum without touching
    /// its freshness.
    ///
    /// Where no entry exists, `Origin::Local` (this guard's own revocation,
    /// whose store write has completed) keeps the cutoff as a floor that is
    /// not fresh and forgets a negative entry (writes create the subject);
    /// `Origin::Remote` changes nothing: the next request reads the store.
    pub(crate) fn floor(&self, key: SubjectKey, cutoff: Cutoff, origin: Origin) {
        self.epoch(key).fetch_add(1, Ordering::AcqRel);
        if origin == Origin::Remote {
            if let Some(mut slot) = self.entries.get_mut(&key) {
                let merged = slot.cutoff().merge(cutoff);
                slot.set_cutoff(merged);
            }
            return;
        }
        let now = self.clock.now_millis();
        self.forget_unknown(key);
        self.make_room(now);
        match self.entries.entry(key) {
            Entry::Occupied(mut o) => {
                let slot = o.get_mut();
                slot.set_cutoff(slot.cutoff().merge(cutoff));
            }
            Entry::Vacant(v) => {
                v.insert(Slot::new(cutoff, FLOOR));
                self.len.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Forgets a subject at once (a deleted user): drops its entry, caches
    /// "unknown" for the negative TTL, and keeps loads already under way
    /// from caching what they read.
    pub(crate) fn forget(&self, key: SubjectKey) {
        self.epoch(key).fetch_add(1, Ordering::AcqRel);
        if self.entries.remove(&key).is_some() {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        let now = self.clock.now_millis();
        self.make_negative_room(now);
        let unknown = Unknown {
            stamp: self.stamp(),
        };
        self.remember_unknown(key, unknown);
    }

    /// Number of store loads pending: every load still in the map or
    /// awaited by a caller (a load `issue` replaced in the map included).
    pub(crate) fn loads_in_flight(&self) -> usize {
        self.live_flights.load(Ordering::Acquire)
    }

    /// Makes every cached cutoff (and the global one) not fresh, so the next
    /// validation of each subject reads the store, but keeps them for
    /// stale-if-error and as floors. Disturbs every in-flight load.
    pub(crate) fn mark_stale(&self) {
        for e in self.epochs.iter() {
            e.fetch_add(1, Ordering::AcqRel);
        }
        let now = self.clock.now_millis();
        // Expiry as a reduced age (a disconnected bus) had it, so the
        // stale-if-error window does not restart for reads made while
        // events may have been missed.
        let margin = self.age_margin_ms.load(Ordering::Relaxed);
        let (ttl, max_age) = (self.ttl_ms(), self.max_age_ms());
        self.entries.alter_all(|_, mut slot| {
            // The entry keeps its place among reads only relative to reads
            // that can no longer cache (every epoch was bumped above), so
            // moving its stamp back is safe: every later read's is larger.
            let stamp = slot.stamp();
            if stamp != FLOOR {
                let expires = slot.expires_ms(max_age).min(now);
                let moved = restamp(stamp, expires.saturating_sub(ttl)).min(stamp);
                slot.stamp = Packed::new(moved);
            }
            slot
        });
        let _w = self.global_write();
        self.global.epoch.fetch_add(1, Ordering::AcqRel);
        // Every refresh under way was disturbed (epoch): the next one to
        // land is the latest read, whatever its stamp (a used-up sequence
        // would otherwise tie it with the read it must replace).
        self.global.stamp.store(FLOOR, Ordering::Release);
        let expires = self.global.expires_ms.load(Ordering::Acquire);
        if expires != 0 {
            self.global.expires_ms.store(
                expires.saturating_sub(margin).min(now).max(1),
                Ordering::Release,
            );
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
        let _w = self.global_write();
        self.global.epoch.fetch_add(1, Ordering::AcqRel);
        self.global.stamp.store(FLOOR, Ordering::Release);
        self.global.expires_ms.store(0, Ordering::Release);
    }

    fn global_write(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded data is `()`: a poisoned lock holds nothing broken.
        self.global
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        enforce_bound(
            &self.entries,
            &self.len,
            self.cfg.max_entries,
            &self.counters.evictions,
            &self.epochs,
            |slot| slot.expires_ms(self.ttl_ms()) > keep_after,
        );
    }

    fn make_negative_room(&self, now_ms: i64) {
        enforce_bound(
            &self.negative,
            &self.negative_len,
            self.cfg.max_negative_entries,
            &self.counters.evictions,
            &self.epochs,
            |unknown| self.unknown_expires_ms(*unknown) > now_ms,
        );
    }

    /// The global `not_before`, loaded through `load` when the cached value
    /// is older than the TTL. Concurrent callers share one refresh, which
    /// any of them drives (a caller that stops being polled holds nobody
    /// up); a caller gives up at `deadline`. A finished refresh is never
    /// joined: a later caller starts its own.
    pub(crate) async fn global<F, Fut>(
        &self,
        now_ms: i64,
        deadline: Instant,
        timeout: std::time::Duration,
        load: F,
    ) -> Result<i64, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<i64, StoreError>> + Send + 'static,
    {
        if let Some(nb) = self.fresh_global(now_ms) {
            return Ok(nb);
        }
        // The request may have waited (on its subject's load) since `now_ms`.
        let joined_at = self.clock.now_millis();
        if !in_range(joined_at) {
            // Fails closed, like a subject load.
            self.counters.store_errors.incr();
            return self.stale_global(joined_at, clock_out_of_range());
        }
        self.recover(joined_at);
        let flight = {
            let mut current = self
                .global
                .flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match current.upgrade() {
                Some(f)
                    if f.load.peek().is_none()
                        && f.epoch >= self.global.epoch.load(Ordering::Acquire)
                        && fresh_at(
                            stamp_ms(f.stamp),
                            joined_at,
                            self.max_age_ms(),
                            self.max_ahead_ms(),
                        ) =>
                {
                    f
                }
                _ => {
                    let f = Arc::new(GlobalFlight {
                        epoch: self.global_epoch(),
                        stamp: self.stamp(),
                        // No timer inside: each waiter bounds its own wait.
                        load: load().boxed().shared(),
                    });
                    *current = Arc::downgrade(&f);
                    f
                }
            }
        };
        let mut loaded = match tokio::time::timeout_at(deadline, flight.load.clone()).await {
            Ok(loaded) => loaded,
            Err(_) => {
                // Taken as hung: later callers start their own refresh.
                let mut current = self
                    .global
                    .flight
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if std::ptr::eq(current.as_ptr(), Arc::as_ptr(&flight)) {
                    *current = std::sync::Weak::new();
                }
                Err(StoreError::timed_out(timeout))
            }
        };
        let now = self.clock.now_millis();
        let start = stamp_ms(flight.stamp);
        if loaded.is_ok()
            && (start.saturating_add(self.ttl_ms()) <= now || self.glitched(start, now))
        {
            // A read that started a TTL ago is too old to decide on. (Under
            // a reduced age it was joined only while younger than that age,
            // so it is at most that old for every request it answers.) Nor
            // is one stamped from a glitch ahead: its age is unknown.
            loaded = Err(StoreError::timed_out(timeout));
        }
        match loaded {
            Ok(nb) => Ok(self.loaded_global(flight.epoch, flight.stamp, nb)),
            Err(e) => {
                self.counters.store_errors.incr();
                self.stale_global(now, e)
            }
        }
    }

    /// The cached global `not_before` within the stale-if-error window, or `e`.
    pub(crate) fn stale_global(&self, now_ms: i64, e: StoreError) -> Result<i64, StoreError> {
        let loaded_before = self.global.expires_ms.load(Ordering::Acquire);
        let margin = self.age_margin_ms.load(Ordering::Relaxed);
        // The read's start, to tell one stamped from a glitch ahead.
        let start = loaded_before.saturating_sub(self.ttl_ms());
        match self.cfg.stale_if_error_ms {
            Some(window)
                if loaded_before != 0
                    && loaded_before.saturating_sub(margin).saturating_add(window) > now_ms
                    && !self.glitched(start, now_ms) =>
            {
                self.counters.stale_answers.incr();
                Ok(self.global.not_before.load(Ordering::Acquire))
            }
            _ => Err(e),
        }
    }

    /// The cached global `not_before`, if still fresh (as an entry: see
    /// [`fresh_at`]).
    pub(crate) fn fresh_global(&self, now_ms: i64) -> Option<i64> {
        let expires = self.global.expires_ms.load(Ordering::Acquire);
        // `expires` is the read's start + the TTL (`mark_stale` moves it
        // back; 0 until the first load, never fresh at or after 1970).
        let start = expires.saturating_sub(self.ttl_ms());
        fresh_at(start, now_ms, self.max_age_ms(), self.max_ahead_ms())
            .then(|| self.global.not_before.load(Ordering::Acquire))
    }

    /// The cached global `not_before` as it is now, fresh or not (floors
    /// raise it).
    pub(crate) fn global_floor(&self) -> i64 {
        self.global.not_before.load(Ordering::Acquire)
    }

    /// The global epoch, read before a store read of the global cutoff.
    pub(crate) fn global_epoch(&self) -> u64 {
        self.global.epoch.load(Ordering::Acquire)
    }

    /// Records a global `not_before` read from the store after `epoch` was
    /// read, by a read with `stamp`. If no floor, clear or mark-stale
    /// happened since and no later read was recorded, the read is the
    /// current value: it replaces the cached one (so a repaired, lowered
    /// cutoff is followed) and is fresh for a TTL from the stamp's time. A
    /// read overtaken by a floor is merged as a floor; one overtaken by a
    /// later read changes nothing. Returns the value now in force. Several
    /// waiters of one refresh may record it: the same stamp recorded twice
    /// changes nothing.
    pub(crate) fn loaded_global(&self, epoch: u64, stamp: Stamp, not_before: i64) -> i64 {
        let _w = self.global_write();
        let same_epoch = self.global.epoch.load(Ordering::Acquire) == epoch;
        let current = self.global.stamp.load(Ordering::Acquire);
        if same_epoch && stamp > current {
            self.global.stamp.store(stamp, Ordering::Release);
            self.global.not_before.store(not_before, Ordering::Release);
            let expires = stamp_ms(stamp).saturating_add(self.ttl_ms());
            self.global.expires_ms.store(expires, Ordering::Release);
            not_before
        } else if !same_epoch || stamp == current {
            // Overtaken by a floor: merged as one. Or the same stamp again
            // (another waiter of this refresh, or a read stamped alike):
            // never lowers the value.
            let prev = self
                .global
                .not_before
                .fetch_max(not_before, Ordering::AcqRel);
            prev.max(not_before)
        } else {
            // A later read is already recorded: this one is older news.
            self.global.not_before.load(Ordering::Acquire)
        }
    }

    /// Raises the cached global `not_before` with a floor (a revocation's
    /// reply or an event): never lowers it, never makes it fresh, and keeps
    /// a refresh already under way from making its older read fresh.
    pub(crate) fn floor_global(&self, not_before: i64) -> i64 {
        let _w = self.global_write();
        self.global.epoch.fetch_add(1, Ordering::AcqRel);
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
fn enforce_bound<V>(
    map: &Map<V>,
    len: &AtomicUsize,
    max: usize,
    evictions: &Counter,
    epochs: &[AtomicU64],
    live: impl Fn(&V) -> bool,
) {
    // Dropping an entry forgets which read it held: a read still under way
    // for that subject may be older, so it must not cache (epoch bump).
    let evicted = |key: &SubjectKey| {
        epochs[key.stripe()].fetch_add(1, Ordering::AcqRel);
        len.fetch_sub(1, Ordering::Relaxed);
        evictions.incr();
    };
    if len.load(Ordering::Relaxed) < max {
        return;
    }
    map.retain(|k, v| {
        let keep = live(v);
        if !keep {
            evicted(k);
        }
        keep
    });
    let target = max - max / 10;
    if len.load(Ordering::Relaxed) >= max {
        map.retain(|k, _| {
            if len.load(Ordering::Relaxed) >= target {
                evicted(k);
                false
            } else {
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;

    const T0_MS: i64 = 1_700_000_000_000;

    fn cache(clock: &FakeClock) -> CutoffCache {
        let cfg = CacheConfig {
            ttl_ms: 60_000,
            negative_ttl_ms: 5_000,
            stale_if_error_ms: Some(300_000),
            max_entries: 1_000,
            max_negative_entries: 1_000,
        };
        CutoffCache::new(cfg, Arc::new(clock.clone()))
    }

    async fn load(c: &CutoffCache, key: SubjectKey, cutoff: Cutoff) -> Option<Cutoff> {
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        c.load(
            key,
            Join::Fresh,
            deadline,
            std::time::Duration::from_secs(5),
            || async move { Ok(Some(cutoff)) },
        )
        .await
        .expect("load")
    }

    fn cutoff(version: u64, not_before: i64) -> Cutoff {
        Cutoff {
            version,
            not_before,
        }
    }

    /// What `examples/memory` measures per subject: the key and the slot,
    /// packed without padding.
    #[test]
    fn an_entry_is_36_bytes() {
        // The table stores `(key, value)` pairs, the value in a
        // `#[repr(transparent)]` cell.
        assert_eq!(std::mem::size_of::<(SubjectKey, Slot)>(), 36);
    }

    #[test]
    fn packed_words_round_trip_every_value() {
        for v in [
            0,
            1,
            -1,
            i64::MIN,
            i64::MAX,
            T0_MS,
            -T0_MS,
            1 << 32,
            (1 << 32) - 1,
        ] {
            assert_eq!(Packed::new(v).get(), v);
        }
        let c = cutoff(u64::MAX, i64::MIN);
        assert_eq!(Slot::new(c, 7).cutoff(), c);
        let c = cutoff(u64::MAX - 1, i64::MAX);
        assert_eq!(Slot::new(c, 7).cutoff(), c);
    }

    /// Within the cache's age (here a TTL of 60 s), a step back leaves
    /// the stamps increasing.
    #[test]
    fn stamps_keep_increasing_when_the_clock_steps_back() {
        let clock = FakeClock::from_millis(T0_MS);
        let c = cache(&clock);
        let a = c.stamp();
        let b = c.stamp();
        assert!(b > a);
        assert_eq!(stamp_ms(a), T0_MS, "the time part is the clock's");
        clock.set(T0_MS / 1000 - 60); // a TTL back
        let d = c.stamp();
        assert!(d > b, "a later stamp is larger even after a step back");
        assert_eq!(stamp_ms(d), T0_MS, "its time part waits for the clock");
        clock.set(T0_MS / 1000 + 10);
        let e = c.stamp();
        assert_eq!(stamp_ms(e), T0_MS + 10_000);
        assert_ne!(e, FLOOR);
    }

    /// A step back beyond the cache's age (an hour, the TTL is a minute)
    /// is taken as the end of a glitch ahead: the stamps' time part goes
    /// back with the clock, and what was cached is dropped. While the age
    /// is reduced, the bound is the reduced age.
    #[tokio::test(flavor = "current_thread")]
    async fn a_step_back_beyond_the_age_sets_the_stamps_back_and_clears_the_cache() {
        let clock = FakeClock::from_millis(T0_MS);
        let c = cache(&clock);
        let key = c.key("alice");
        load(&c, key, cutoff(1, 0)).await;
        let b = c.stamp();
        clock.set(T0_MS / 1000 - 3_600); // an hour back
        let d = c.stamp();
        assert!(d < b, "the stamp clock went back");
        assert_eq!(stamp_ms(d), T0_MS - 3_600_000, "to the clock's time");
        assert_eq!(
            (c.len(), c.current(key)),
            (0, None),
            "the cache was cleared"
        );

        load(&c, key, cutoff(1, 0)).await;
        c.limit_age(Some(1_000));
        clock.set(T0_MS / 1000 - 3_602); // two seconds back, beyond the age
        assert_eq!(c.lookup(key, clock.now_millis()), Lookup::Miss);
        let e = c.stamp();
        assert_eq!(stamp_ms(e), T0_MS - 3_602_000);
        assert_eq!(c.current(key), None);
    }

    /// Readings a moment apart (concurrent requests) never count as a
    /// glitch, however short the age: the stamps keep increasing and the
    /// cache stays.
    #[tokio::test(flavor = "current_thread")]
    async fn readings_a_moment_apart_never_clear_the_cache() {
        let clock = FakeClock::from_millis(T0_MS);
        let c = cache(&clock);
        c.limit_age(Some(1));
        let key = c.key("alice");
        load(&c, key, cutoff(1, 0)).await;
        let a = c.stamp_at(T0_MS + MIN_GLITCH_MS);
        let b = c.stamp_at(T0_MS);
        assert!(b > a, "still increasing");
        assert_eq!(stamp_ms(b), T0_MS + MIN_GLITCH_MS);
        assert_eq!(c.current(key), Some(cutoff(1, 0)), "nothing cleared");
    }

    /// A read made after the wall clock stepped back still replaces the
    /// entry of a read made before the step (a clock-ordered stamp would
    /// refuse it until the clock caught up, and keep serving the older read).
    #[tokio::test(flavor = "current_thread")]
    async fn a_read_after_a_clock_step_back_replaces_the_older_entry() {
        let clock = FakeClock::from_millis(T0_MS);
        let c = cache(&clock);
        let key = c.key("alice");
        load(&c, key, cutoff(1, 0)).await;
        assert_eq!(c.lookup(key, T0_MS), Lookup::Fresh(cutoff(1, 0)));
        clock.set(T0_MS / 1000 - 30);
        // alice was deleted and recreated: a lower version, a later
        // not_before.
        let recreated = cutoff(0, T0_MS / 1000 + 1);
        load(&c, key, recreated).await;
        assert_eq!(c.current(key), Some(recreated));
    }

    /// The clock at `unix_ms` (a fake clock is set in whole seconds).
    fn set_ms(clock: &FakeClock, unix_ms: i64) {
        clock.set(unix_ms.div_euclid(1000));
    }

    /// A reading outside the stamps' range fails its read closed, serves
    /// nothing cached as fresh or stale, and moves no stamp: once the
    /// clock is right again, stamps and entries are as before.
    #[tokio::test(flavor = "current_thread")]
    async fn a_reading_outside_the_range_fails_closed_and_moves_no_stamp() {
        let clock = FakeClock::from_millis(T0_MS);
        let c = cache(&clock);
        let key = c.key("alice");
        load(&c, key, cutoff(1, 0)).await;
        c.loaded_global(c.global_epoch(), c.stamp(), 0);
        let before = c.stamp();
        for far in [
            MAX_STAMP_MS + 1_000,
            i64::MAX,
            -MAX_STAMP_MS - 1_000,
            i64::MIN,
        ] {
            set_ms(&clock, far);
            let now = clock.now_millis();
            assert_eq!(c.lookup(key, now), Lookup::Miss, "at {now}");
            assert_eq!(c.stale(key, now), None, "at {now}");
            assert_eq!(c.fresh_global(now), None, "at {now}");
            let deadline = Instant::now() + std::time::Duration::from_secs(5);
            let timeout = std::time::Duration::from_secs(5);
            let r = c
                .load(key, Join::Any, deadline, timeout, || async {
                    Ok(Some(cutoff(0, 0)))
                })
                .await;
            assert!(r.is_err(), "a read at {now} fails closed: {r:?}");
            let g = c
                .global(now, deadline, timeout, || async { Ok(i64::MIN) })
                .await;
            assert!(g.is_err(), "a global refresh at {now} fails closed: {g:?}");
            c.forget(c.key("bob"));
        }
        set_ms(&clock, T0_MS);
        let after = c.stamp();
        assert!(after > before, "stamps still increase");
        assert_eq!(stamp_ms(after), T0_MS, "the time part is the clock's again");
        assert_eq!(c.lookup(key, T0_MS), Lookup::Fresh(cutoff(1, 0)));
        assert_eq!(c.fresh_global(T0_MS), Some(0));
    }

    /// After a glitch ahead (here an hour, the TTL is a minute), nothing
    /// read during the glitch is fresh once the clock is back, the next
    /// stamp takes the clock's time again, and later reads replace what the
    /// glitch left, fresh for the TTL only.
    #[tokio::test(flavor = "current_thread")]
    async fn after_a_glitch_ahead_nothing_read_during_it_stays_fresh_or_blocks_a_later_read() {
        let clock = FakeClock::from_millis(T0_MS);
        let c = cache(&clock);
        let (alice, bob) = (c.key("alice"), c.key("bob"));
        let glitch = T0_MS + 3_600_000;
        set_ms(&clock, glitch);
        load(&c, alice, cutoff(5, 0)).await;
        c.loaded_global(c.global_epoch(), c.stamp(), 7);
        c.forget(bob);
        assert_eq!(c.lookup(alice, glitch), Lookup::Fresh(cutoff(5, 0)));
        assert_eq!(c.fresh_global(glitch), Some(7));

        let now = T0_MS + 1_000;
        set_ms(&clock, now);
        assert_eq!(c.lookup(alice, now), Lookup::Miss, "stamped a glitch ahead");
        assert_eq!(c.stale(alice, now), None, "no stale answer either");
        assert_eq!(c.lookup(bob, now), Lookup::Miss, "an unknown answer alike");
        assert_eq!(c.fresh_global(now), None);
        assert!(c.stale_global(now, StoreError::msg("down")).is_err());

        let next = c.stamp();
        assert_eq!(
            stamp_ms(next),
            now,
            "the stamp clock is back with the clock"
        );
        load(&c, alice, cutoff(6, 0)).await;
        assert_eq!(c.lookup(alice, now), Lookup::Fresh(cutoff(6, 0)));
        assert_eq!(c.lookup(alice, now + 60_000), Lookup::Miss, "TTL only");
        load(&c, bob, cutoff(1, 0)).await;
        assert_eq!(c.lookup(bob, now), Lookup::Fresh(cutoff(1, 0)));
        c.loaded_global(c.global_epoch(), c.stamp(), 3);
        assert_eq!(c.fresh_global(now), Some(3));
        assert_eq!(c.fresh_global(now + 60_000), None, "TTL only");
    }

    /// A load that started during a glitch ahead and lands after the clock
    /// came back is not joined, not decided on and not cached.
    #[tokio::test(flavor = "current_thread")]
    async fn a_load_started_during_a_glitch_ahead_is_not_joined_or_cached_afterwards() {
        let clock = FakeClock::from_millis(T0_MS);
        let c = cache(&clock);
        let key = c.key("alice");
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let timeout = std::time::Duration::from_secs(5);
        set_ms(&clock, T0_MS + 3_600_000);
        let (tx, rx) = tokio::sync::oneshot::channel::<Cutoff>();
        let mut slow = std::pin::pin!(c.load(key, Join::Any, deadline, timeout, || async {
            rx.await.map(Some).map_err(StoreError::new)
        }));
        assert!(futures::poll!(slow.as_mut()).is_pending());

        set_ms(&clock, T0_MS);
        tx.send(cutoff(1, 0)).expect("the slow load waits");
        let later = c
            .load(key, Join::Any, deadline, timeout, || async {
                Ok(Some(cutoff(2, 0)))
            })
            .await
            .expect("a later read");
        assert_eq!(
            later,
            Some(cutoff(2, 0)),
            "the glitch's load was not joined"
        );
        assert!(
            slow.await.is_err(),
            "a read stamped a glitch ahead is refused"
        );
        assert_eq!(c.lookup(key, T0_MS), Lookup::Fresh(cutoff(2, 0)));
    }

    /// Marking the cache stale moves entries' stamps back; a read that
    /// started before the mark must still not cache, and one after it must.
    #[tokio::test(flavor = "current_thread")]
    async fn mark_stale_expires_entries_and_later_reads_replace_them() {
        let clock = FakeClock::from_millis(T0_MS);
        let c = cache(&clock);
        let key = c.key("alice");
        load(&c, key, cutoff(3, 0)).await;
        c.mark_stale();
        assert_eq!(c.lookup(key, T0_MS), Lookup::Miss, "no longer fresh");
        assert_eq!(
            c.stale(key, T0_MS),
            Some(cutoff(3, 0)),
            "kept for stale-if-error"
        );
        assert_eq!(
            c.stale(key, T0_MS + 300_000),
            None,
            "the stale window counts from the mark"
        );
        load(&c, key, cutoff(2, 0)).await;
        assert_eq!(c.lookup(key, T0_MS), Lookup::Fresh(cutoff(2, 0)));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_floor_is_never_fresh_and_any_read_replaces_it() {
        let clock = FakeClock::from_millis(0); // stamps with a time part of 0
        let c = cache(&clock);
        let key = c.key("alice");
        c.floor(key, cutoff(5, 0), Origin::Local);
        assert_eq!(c.lookup(key, 0), Lookup::Miss);
        assert_eq!(c.stale(key, 0), None, "a floor is no stale answer either");
        load(&c, key, cutoff(5, 0)).await;
        assert_eq!(c.lookup(key, 0), Lookup::Fresh(cutoff(5, 0)));
        assert_eq!(
            c.lookup(key, 60_000),
            Lookup::Miss,
            "fresh for the TTL only"
        );
    }

    /// Once the sequence of a millisecond is used up, stamps are equal and
    /// a tie keeps the answer that rejects more, whichever lands last.
    #[tokio::test(flavor = "current_thread")]
    async fn equal_stamps_keep_the_answer_that_rejects_more() {
        let clock = FakeClock::from_millis(T0_MS);
        let c = cache(&clock);
        for _ in 0..=SEQ_MASK {
            c.stamp();
        }
        let (a, b) = (c.stamp(), c.stamp());
        assert_eq!(a, b, "a used-up sequence gives equal stamps");
        assert_eq!(stamp_ms(a), T0_MS, "and never moves the time part ahead");

        let key = c.key("alice");
        load(&c, key, cutoff(4, 0)).await;
        load(&c, key, cutoff(2, 9)).await; // equal stamp, lower version
        assert_eq!(c.current(key), Some(cutoff(4, 9)), "merged, not replaced");

        let other = c.key("bob");
        load(&c, other, cutoff(1, 0)).await;
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let gone = c
            .load(
                other,
                Join::Fresh,
                deadline,
                std::time::Duration::from_secs(5),
                || async { Ok(None) },
            )
            .await
            .unwrap();
        assert_eq!(gone, None);
        assert_eq!(c.lookup(other, T0_MS), Lookup::Unknown, "unknown prevails");
        load(&c, other, cutoff(1, 0)).await;
        assert_eq!(
            c.lookup(other, T0_MS),
            Lookup::Unknown,
            "a cutoff stamped alike does not undo it"
        );
        clock.advance(std::time::Duration::from_millis(1));
        load(&c, other, cutoff(1, 0)).await;
        assert_eq!(c.lookup(other, T0_MS + 1), Lookup::Fresh(cutoff(1, 0)));
    }
}
