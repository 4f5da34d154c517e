//! Invalidation buses: revocations made on one instance reach the caches of
//! the others in milliseconds instead of within the cache TTL.
//!
//! Each bus has a [`Publisher`](crate::Publisher) (give it to
//! [`GuardBuilder::publisher`](crate::GuardBuilder::publisher)) and a
//! subscriber task that merges received [`CutoffEvent`]s
//! into the local guard's cache (by maximum, so late, duplicated or
//! reordered events are harmless).
//!
//! # Staleness bound
//! - Connected: the time for one message on the bus (milliseconds).
//! - Subscriber disconnected: events may be missed. The subscriber limits
//!   the age of cached cutoffs to [`SubscriberConfig::degraded_max_age`]
//!   (default 1 s) until it has resubscribed, then clears the cache (what was
//!   missed is reloaded from the store) and lifts the limit. A revocation
//!   made during the outage therefore reaches this instance within
//!   `degraded_max_age` plus the time to notice the disconnection.
//! - The cache TTL bound always holds, bus or not.
//!
//! A malformed message is counted and ignored.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::bus::CutoffEvent;
use crate::guard::Guard;
use crate::store::CutoffStore;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

/// How a subscriber behaves around disconnections.
#[derive(Debug, Clone)]
pub struct SubscriberConfig {
    /// While disconnected, cached cutoffs older than this are reloaded
    /// (default 1 s).
    pub degraded_max_age: Duration,
    /// First delay before reconnecting (default 50 ms); doubles up to
    /// `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest delay between reconnection attempts (default 5 s).
    pub max_backoff: Duration,
}

impl Default for SubscriberConfig {
    fn default() -> Self {
        SubscriberConfig {
            degraded_max_age: Duration::from_secs(1),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Default)]
struct Stats {
    connected: AtomicBool,
    received: AtomicU64,
    malformed: AtomicU64,
    disconnects: AtomicU64,
}

/// A running subscriber. Dropping it (or [`SubscriberHandle::stop`]) ends
/// the task.
#[derive(Debug)]
pub struct SubscriberHandle {
    stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl SubscriberHandle {
    /// `true` while subscribed.
    pub fn is_connected(&self) -> bool {
        self.stats.connected.load(Ordering::Acquire)
    }

    /// Events merged into the cache so far.
    pub fn events_received(&self) -> u64 {
        self.stats.received.load(Ordering::Relaxed)
    }

    /// Messages that were not a valid event (ignored).
    pub fn malformed_messages(&self) -> u64 {
        self.stats.malformed.load(Ordering::Relaxed)
    }

    /// Times the subscription was lost.
    pub fn disconnects(&self) -> u64 {
        self.stats.disconnects.load(Ordering::Relaxed)
    }

    /// Stops the subscriber.
    pub fn stop(self) {}
}

impl Drop for SubscriberHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The bus-independent half of a subscriber: what to do on (re)connection,
/// on a message and on disconnection.
struct Session<S: CutoffStore> {
    guard: Guard<S>,
    stats: Arc<Stats>,
    config: SubscriberConfig,
    backoff: Duration,
}

impl<S: CutoffStore> Session<S> {
    fn new(guard: Guard<S>, config: SubscriberConfig) -> (Self, Arc<Stats>) {
        let stats = Arc::new(Stats::default());
        // Until the first subscription, events may be missed too.
        guard.limit_cache_age(Some(config.degraded_max_age));
        let backoff = config.initial_backoff;
        (
            Session {
                guard,
                stats: Arc::clone(&stats),
                config,
                backoff,
            },
            stats,
        )
    }

    /// Subscribed: whatever was missed is reloaded from the store. Entries
    /// are marked stale rather than dropped, so stale-if-error still covers
    /// users while the store is down.
    fn connected(&mut self) {
        self.guard.mark_cache_stale();
        self.guard.limit_cache_age(None);
        self.backoff = self.config.initial_backoff;
        self.stats.connected.store(true, Ordering::Release);
    }

    fn message(&self, payload: &[u8]) {
        match serde_json::from_slice::<CutoffEvent>(payload) {
            Ok(event) if self.guard.apply_event(&event).is_ok() => {
                self.stats.received.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lost (or never got) the subscription: distrust old entries, wait,
    /// and let the caller retry.
    async fn disconnected(&mut self) {
        if self.stats.connected.swap(false, Ordering::AcqRel) {
            self.stats.disconnects.fetch_add(1, Ordering::Relaxed);
        }
        self.guard
            .limit_cache_age(Some(self.config.degraded_max_age));
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(self.config.max_backoff);
    }
}

/// Serializes an event for the wire.
fn encode(event: &CutoffEvent) -> Result<String, crate::StoreError> {
    serde_json::to_string(event).map_err(crate::StoreError::new)
}
