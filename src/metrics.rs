//! What the guard did: counters for every outcome, read as a
//! dependency-free [`Stats`] snapshot ([`Guard::stats`](crate::Guard::stats))
//! and, with the `metrics` feature, reported through the
//! [`metrics`](https://docs.rs/metrics) facade so any exporter (Prometheus,
//! StatsD, …) picks them up.
//!
//! Counters on the hot path (cache hits, accepted tokens) are striped over
//! cache-line-padded slots chosen per thread, so threads validating in
//! parallel do not contend on one atomic. Labels take bounded values only
//! (error codes, revocation reasons, cache outcomes), never a subject, a
//! token or a claim.
//!
//! # With the `metrics` feature
//!
//! Install the application's recorder **before** building the guard: the
//! guard registers its counters once, at build time, so that counting costs
//! an atomic add and no registry lookup per request.
//!
//! | name | labels | what |
//! |---|---|---|
//! | `jwt_revoke_validations_total` | `outcome`: `accepted` or an [`Error::code`](crate::Error::code) | every finished validation |
//! | `jwt_revoke_revoked_total` | `reason`: `version`, `not_before`, `global`, `session` | rejections by a cutoff or a revoked session |
//! | `jwt_revoke_cache_total` | `result`: `hit`, `miss`, `negative_hit`, `stale` | cutoff lookups (`stale`: a stale-if-error answer) |
//! | `jwt_revoke_store_loads_total` | — | subject loads sent to the store |
//! | `jwt_revoke_flight_joins_total` | — | misses that shared a load already under way |
//! | `jwt_revoke_store_errors_total` | — | store calls that failed or timed out |
//! | `jwt_revoke_evictions_total` | — | cache entries dropped to keep the bounds |
//! | `jwt_revoke_revocations_total` | — | successful `bump_version` / `revoke_before` / `revoke_all_before` |
//! | `jwt_revoke_events_total` | `result`: `applied`, `refused` | events from other instances |
//! | `jwt_revoke_publish_errors_total` | — | revocations whose publication failed |
//! | `jwt_revoke_verified_hits_total` | — | validations that skipped the signature check (verified-token cache) |
//! | `jwt_revoke_session_cache_total` | `result`: `hit`, `miss` | session lookups of tokens with a `sid` |
//! | `jwt_revoke_sessions_created_total` | — | sessions created by `login` |
//! | `jwt_revoke_refreshes_total` | `result`: `rotated`, `reused` | refresh-token rotations (`reused`: a spent token came back; its session was revoked) |
//! | `jwt_revoke_sessions_revoked_total` | — | sessions revoked (logout, by id, reuse) |

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::cutoff::RevokedReason;
use crate::error::{CODES, Error};

/// Slots per counter; threads are spread over them.
const SLOTS: usize = 8;

#[repr(align(64))]
#[derive(Default)]
struct Slot(AtomicU64);

fn slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
    }
    SLOT.with(|s| *s)
}

/// One counter: striped in-process slots, plus the facade's handle.
pub(crate) struct Counter {
    slots: [Slot; SLOTS],
    #[cfg(feature = "metrics")]
    handle: ::metrics::Counter,
}

impl Counter {
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn new(name: &'static str, label: Option<(&'static str, &'static str)>) -> Self {
        Counter {
            slots: Default::default(),
            #[cfg(feature = "metrics")]
            handle: match label {
                Some((k, v)) => ::metrics::counter!(name, k => v),
                None => ::metrics::counter!(name),
            },
        }
    }

    pub(crate) fn incr(&self) {
        self.slots[slot()].0.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.handle.increment(1);
    }

    fn get(&self) -> u64 {
        self.slots.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

const VALIDATIONS: &str = "jwt_revoke_validations_total";
const REVOKED: &str = "jwt_revoke_revoked_total";
const CACHE: &str = "jwt_revoke_cache_total";
const SESSION_CACHE: &str = "jwt_revoke_session_cache_total";
const REFRESHES: &str = "jwt_revoke_refreshes_total";

/// Every counter of one guard.
pub(crate) struct Counters {
    pub(crate) accepted: Counter,
    rejected: [Counter; CODES.len()],
    revoked: [Counter; 4],
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
    pub(crate) negative_hits: Counter,
    pub(crate) stale_answers: Counter,
    pub(crate) store_loads: Counter,
    pub(crate) flight_joins: Counter,
    pub(crate) store_errors: Counter,
    pub(crate) evictions: Counter,
    pub(crate) revocations: Counter,
    pub(crate) events_applied: Counter,
    pub(crate) events_refused: Counter,
    pub(crate) publish_errors: Counter,
    pub(crate) verified_hits: Counter,
    pub(crate) session_hits: Counter,
    pub(crate) session_misses: Counter,
    pub(crate) sessions_created: Counter,
    pub(crate) refreshes: Counter,
    pub(crate) refresh_reuses: Counter,
    pub(crate) sessions_revoked: Counter,
}

impl Counters {
    pub(crate) fn new() -> Self {
        #[cfg(feature = "metrics")]
        describe();
        Counters {
            accepted: Counter::new(VALIDATIONS, Some(("outcome", "accepted"))),
            rejected: CODES.map(|code| Counter::new(VALIDATIONS, Some(("outcome", code)))),
            revoked: [
                RevokedReason::Version,
                RevokedReason::NotBefore,
                RevokedReason::Global,
                RevokedReason::Session,
            ]
            .map(|r| Counter::new(REVOKED, Some(("reason", r.as_str())))),
            hits: Counter::new(CACHE, Some(("result", "hit"))),
            misses: Counter::new(CACHE, Some(("result", "miss"))),
            negative_hits: Counter::new(CACHE, Some(("result", "negative_hit"))),
            stale_answers: Counter::new(CACHE, Some(("result", "stale"))),
            store_loads: Counter::new("jwt_revoke_store_loads_total", None),
            flight_joins: Counter::new("jwt_revoke_flight_joins_total", None),
            store_errors: Counter::new("jwt_revoke_store_errors_total", None),
            evictions: Counter::new("jwt_revoke_evictions_total", None),
            revocations: Counter::new("jwt_revoke_revocations_total", None),
            events_applied: Counter::new("jwt_revoke_events_total", Some(("result", "applied"))),
            events_refused: Counter::new("jwt_revoke_events_total", Some(("result", "refused"))),
            publish_errors: Counter::new("jwt_revoke_publish_errors_total", None),
            verified_hits: Counter::new("jwt_revoke_verified_hits_total", None),
            session_hits: Counter::new(SESSION_CACHE, Some(("result", "hit"))),
            session_misses: Counter::new(SESSION_CACHE, Some(("result", "miss"))),
            sessions_created: Counter::new("jwt_revoke_sessions_created_total", None),
            refreshes: Counter::new(REFRESHES, Some(("result", "rotated"))),
            refresh_reuses: Counter::new(REFRESHES, Some(("result", "reused"))),
            sessions_revoked: Counter::new("jwt_revoke_sessions_revoked_total", None),
        }
    }

    /// Counts a finished validation.
    pub(crate) fn validation<T>(&self, result: &Result<T, Error>) {
        match result {
            Ok(_) => self.accepted.incr(),
            Err(e) => {
                self.rejected[e.code_index()].incr();
                if let Some(reason) = e.revoked_reason() {
                    self.revoked[reason_index(reason)].incr();
                }
            }
        }
    }

    pub(crate) fn publish_errors_now(&self) -> u64 {
        self.publish_errors.get()
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let rejected_by_code: Vec<(&'static str, u64)> = CODES
            .iter()
            .zip(&self.rejected)
            .map(|(code, c)| (*code, c.get()))
            .filter(|(_, n)| *n > 0)
            .collect();
        Stats {
            accepted: self.accepted.get(),
            rejected: rejected_by_code.iter().map(|(_, n)| n).sum(),
            rejected_by_code,
            revoked_by_version: self.revoked[0].get(),
            revoked_by_not_before: self.revoked[1].get(),
            revoked_by_global: self.revoked[2].get(),
            revoked_by_session: self.revoked[3].get(),
            session_hits: self.session_hits.get(),
            session_misses: self.session_misses.get(),
            sessions_created: self.sessions_created.get(),
            refreshes: self.refreshes.get(),
            refresh_reuses: self.refresh_reuses.get(),
            sessions_revoked: self.sessions_revoked.get(),
            cache_hits: self.hits.get(),
            cache_misses: self.misses.get(),
            negative_hits: self.negative_hits.get(),
            stale_answers: self.stale_answers.get(),
            store_loads: self.store_loads.get(),
            flight_joins: self.flight_joins.get(),
            store_errors: self.store_errors.get(),
            evictions: self.evictions.get(),
            revocations: self.revocations.get(),
            events_applied: self.events_applied.get(),
            events_refused: self.events_refused.get(),
            publish_errors: self.publish_errors.get(),
            verified_hits: self.verified_hits.get(),
            verified_tokens: 0,
            verified_bytes: 0,
            cached_subjects: 0,
            cached_unknown_subjects: 0,
            loads_in_flight: 0,
        }
    }
}

fn reason_index(r: RevokedReason) -> usize {
    match r {
        RevokedReason::Version => 0,
        RevokedReason::NotBefore => 1,
        RevokedReason::Global => 2,
        RevokedReason::Session => 3,
    }
}

#[cfg(feature = "metrics")]
fn describe() {
    use ::metrics::describe_counter;
    describe_counter!(
        VALIDATIONS,
        "Finished token validations, by outcome (accepted or error code)."
    );
    describe_counter!(REVOKED, "Tokens rejected by a cutoff, by reason.");
    describe_counter!(CACHE, "Cutoff cache lookups, by result.");
    describe_counter!(
        "jwt_revoke_store_loads_total",
        "Subject cutoff loads sent to the store."
    );
    describe_counter!(
        "jwt_revoke_flight_joins_total",
        "Cache misses that shared a store load already under way."
    );
    describe_counter!(
        "jwt_revoke_store_errors_total",
        "Store calls that failed or timed out."
    );
    describe_counter!(
        "jwt_revoke_evictions_total",
        "Cache entries dropped to keep the bounds."
    );
    describe_counter!(
        "jwt_revoke_revocations_total",
        "Successful revocations made by this instance."
    );
    describe_counter!(
        "jwt_revoke_events_total",
        "Cutoff events from other instances, by result."
    );
    describe_counter!(
        "jwt_revoke_publish_errors_total",
        "Revocations whose publication to other instances failed."
    );
    describe_counter!(
        "jwt_revoke_verified_hits_total",
        "Validations that skipped the signature check (verified-token cache)."
    );
    describe_counter!(
        SESSION_CACHE,
        "Session lookups of tokens with a session id, by result."
    );
    describe_counter!(
        "jwt_revoke_sessions_created_total",
        "Sessions created by logins through this instance."
    );
    describe_counter!(
        REFRESHES,
        "Refresh-token rotations, by result (rotated, or reused: the session was revoked)."
    );
    describe_counter!(
        "jwt_revoke_sessions_revoked_total",
        "Sessions revoked through this instance (logout, by id, reuse)."
    );
}

/// A snapshot of a guard's counters since it was built
/// ([`Guard::stats`](crate::Guard::stats)). Counters only grow; take two
/// snapshots and subtract for a rate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Validations that accepted the token.
    pub accepted: u64,
    /// Validations that rejected it (the sum of `rejected_by_code`).
    pub rejected: u64,
    /// Rejections by [`Error::code`](crate::Error::code); codes never seen
    /// are left out.
    pub rejected_by_code: Vec<(&'static str, u64)>,
    /// Tokens revoked by the subject's version.
    pub revoked_by_version: u64,
    /// Tokens revoked by the subject's `not_before`.
    pub revoked_by_not_before: u64,
    /// Tokens revoked by the global `not_before`.
    pub revoked_by_global: u64,
    /// Tokens rejected because their session is revoked.
    pub revoked_by_session: u64,
    /// Session lookups (tokens with a `sid`) answered by the cache.
    pub session_hits: u64,
    /// Session lookups that had to ask the store.
    pub session_misses: u64,
    /// Sessions created through this guard ([`Guard::login`](crate::Guard::login)).
    pub sessions_created: u64,
    /// Refresh tokens rotated ([`Guard::refresh`](crate::Guard::refresh)).
    pub refreshes: u64,
    /// Refresh tokens presented again after they were spent (each revoked
    /// its session).
    pub refresh_reuses: u64,
    /// Sessions revoked through this guard (logout, by id, or reuse).
    pub sessions_revoked: u64,
    /// Lookups answered by a fresh cached cutoff.
    pub cache_hits: u64,
    /// Lookups that had to ask the store.
    pub cache_misses: u64,
    /// Lookups answered by a cached "unknown subject".
    pub negative_hits: u64,
    /// Answers served from a stale entry because the store failed
    /// (`stale_if_error`).
    pub stale_answers: u64,
    /// Subject loads sent to the store.
    pub store_loads: u64,
    /// Misses that shared a load already under way (single flight).
    pub flight_joins: u64,
    /// Store calls that failed or timed out, as seen by callers.
    pub store_errors: u64,
    /// Cache entries dropped to keep `max_entries` / `max_negative_entries`.
    pub evictions: u64,
    /// Successful revocations made through this guard.
    pub revocations: u64,
    /// Events from other instances merged into the cache.
    pub events_applied: u64,
    /// Events refused (a cutoff beyond `max_future_cutoff`).
    pub events_refused: u64,
    /// Revocations whose publication to other instances failed.
    pub publish_errors: u64,
    /// Validations that skipped the signature check (verified-token cache).
    pub verified_hits: u64,
    /// Tokens in the verified-token cache now.
    pub verified_tokens: usize,
    /// Bytes the verified-token cache holds now (its budget's measure).
    pub verified_bytes: usize,
    /// Subjects cached now.
    pub cached_subjects: usize,
    /// "Unknown subject" answers cached now.
    pub cached_unknown_subjects: usize,
    /// Store loads pending now.
    pub loads_in_flight: usize,
}
