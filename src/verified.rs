//! The verified-token cache: a token seen before skips signature
//! verification and registered-claim parsing. Revocation is still checked
//! against the cutoff on every request.
//!
//! Entries are keyed by a keyed 128-bit SipHash of the exact token bytes
//! (under the guard's random per-process key, so an attacker can neither
//! predict nor steer a collision): a token that differs in one byte is a
//! different key and goes through the full checks. An entry records what
//! the full checks established (subject, `iat`, `exp`, `ver`, the decoded
//! payload for the caller's own claims) and is used only until the token
//! would expire (`exp` plus the leeway). On a hit the guard checks the
//! time-dependent claims again (`nbf` and a future `iat`, which a clock
//! stepped back can make fail) so a hit answers exactly as a miss would; the
//! others (`iss`, `aud`, the algorithm and key) cannot change, since the
//! guard's settings and keys never do.
//!
//! Memory is bounded twice: by entries and by the bytes of subjects and
//! payloads they hold. When either bound is reached, expired entries go
//! first, then arbitrary ones down to 90 %.

use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use siphasher::sip128::{Hasher128, SipHasher13};

use crate::cache::PassThrough;
use crate::guard::CacheKeys;

/// What the full checks established, as the guard hands it over.
pub(crate) struct Registered<'a> {
    pub(crate) sub: &'a str,
    pub(crate) iat: i64,
    pub(crate) exp: i64,
    pub(crate) ver: Option<u64>,
    pub(crate) nbf: Option<i64>,
    pub(crate) sid: Option<Arc<str>>,
    pub(crate) keys: CacheKeys,
}

/// Bytes an entry costs beyond its subject and payload, counted against the
/// byte budget: the `Arc`'d entry (160 with the reference counts and the
/// cache keys), the map slot (key and pointer, 24) and the table's spare
/// capacity (up to as much again), and the allocator's header of each of
/// the entry's three allocations (16 each). A conservative estimate, so the
/// resident memory stays under the budget (`examples/memory` measures
/// both).
const ENTRY_OVERHEAD: usize = 264;

/// What the full checks established about one token.
pub(crate) struct Entry {
    pub(crate) sub: Box<str>,
    pub(crate) iat: i64,
    pub(crate) exp: i64,
    pub(crate) ver: Option<u64>,
    /// `nbf`, if the token has one: checked again on a hit, since a clock
    /// stepped back can make it fail.
    pub(crate) nbf: Option<i64>,
    /// The session id (`sid`), if any: the session is checked on every
    /// request, like the cutoffs.
    pub(crate) sid: Option<Arc<str>>,
    /// The subject's (and session's) cache keys, so a hit hashes neither.
    pub(crate) keys: CacheKeys,
    /// The decoded payload, for the caller's own claims.
    pub(crate) payload: Box<[u8]>,
    /// Unix ms from which the token would be expired (`exp` + leeway).
    until_ms: i64,
}

impl Entry {
    fn bytes(&self) -> usize {
        // A session id is counted with its own allocation's header.
        ENTRY_OVERHEAD
            + self.sub.len()
            + self.sid.as_ref().map_or(0, |s| s.len() + 16)
            + self.payload.len()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct TokenKey(u64, u64);

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

pub(crate) struct VerifiedCache {
    map: DashMap<TokenKey, Arc<Entry>, BuildHasherDefault<PassThrough>>,
    len: AtomicUsize,
    bytes: AtomicUsize,
    max_entries: usize,
    max_bytes: usize,
    hash_keys: (u64, u64),
}

impl VerifiedCache {
    /// `max_entries == 0` turns the cache off.
    pub(crate) fn new(max_entries: usize, max_bytes: usize, hash_keys: (u64, u64)) -> Self {
        VerifiedCache {
            map: DashMap::default(),
            len: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            max_entries,
            max_bytes,
            hash_keys,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.max_entries > 0
    }

    fn key(&self, token: &str) -> TokenKey {
        let mut h = SipHasher13::new_with_keys(self.hash_keys.1, self.hash_keys.0);
        h.write(token.as_bytes());
        let out = h.finish128();
        TokenKey(out.h1, out.h2)
    }

    /// The entry for exactly this token, if it is cached and the token has
    /// not expired. The map guard is dropped before returning.
    pub(crate) fn get(&self, token: &str, now_ms: i64) -> Option<Arc<Entry>> {
        if !self.enabled() {
            return None;
        }
        let entry = self.map.get(&self.key(token)).map(|e| Arc::clone(&e))?;
        (entry.until_ms > now_ms).then_some(entry)
    }

    /// Records a token that passed the signature and registered-claim
    /// checks. `leeway` is the guard's, in seconds.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert(
        &self,
        token: &str,
        now_ms: i64,
        registered: Registered<'_>,
        payload: &[u8],
        leeway: i64,
    ) {
        let Registered {
            sub,
            iat,
            exp,
            ver,
            nbf,
            sid,
            keys,
        } = registered;
        if !self.enabled() {
            return;
        }
        let until_ms = exp
            .saturating_add(leeway)
            .saturating_add(1)
            .saturating_mul(1000);
        let entry = Entry {
            sub: sub.into(),
            iat,
            exp,
            ver,
            nbf,
            sid,
            keys,
            payload: payload.into(),
            until_ms,
        };
        let size = entry.bytes();
        if size > self.max_bytes / 8 {
            // One token may not take a large share of the budget.
            return;
        }
        self.make_room(now_ms, size);
        if let Some(old) = self.map.insert(self.key(token), Arc::new(entry)) {
            self.bytes.fetch_sub(old.bytes(), Ordering::Relaxed);
        } else {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
        self.bytes.fetch_add(size, Ordering::Relaxed);
    }

    fn full(&self, extra: usize) -> bool {
        self.len.load(Ordering::Relaxed) >= self.max_entries
            || self.bytes.load(Ordering::Relaxed).saturating_add(extra) > self.max_bytes
    }

    fn make_room(&self, now_ms: i64, extra: usize) {
        if !self.full(extra) {
            return;
        }
        self.map.retain(|_, e| {
            let keep = e.until_ms > now_ms;
            if !keep {
                self.forget(e);
            }
            keep
        });
        let target_entries = self.max_entries - self.max_entries / 10;
        let target_bytes = self.max_bytes - self.max_bytes / 10;
        if self.full(extra) {
            self.map.retain(|_, e| {
                if self.len.load(Ordering::Relaxed) >= target_entries
                    || self.bytes.load(Ordering::Relaxed).saturating_add(extra) > target_bytes
                {
                    self.forget(e);
                    false
                } else {
                    true
                }
            });
        }
    }

    fn forget(&self, e: &Entry) {
        self.len.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(e.bytes(), Ordering::Relaxed);
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}
