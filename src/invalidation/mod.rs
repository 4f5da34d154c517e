//! Invalidation buses: revocations made on one instance reach the caches of
//! the others in milliseconds instead of within the cache TTL.
//!
//! Each bus has a [`Publisher`](crate::Publisher) (give it to
//! [`GuardBuilder::publisher`](crate::GuardBuilder::publisher)) and a
//! subscriber task that passes received [`CutoffEvent`](crate::CutoffEvent)s
//! to [`Guard::apply_event`](crate::Guard::apply_event) (floors: late,
//! duplicated, reordered or replayed events are harmless).
//!
//! # Authentication: wire format (version 2)
//!
//! Every message on the bus is ASCII text:
//!
//! ```text
//! jr2.<MAC>.<BODY>
//! ```
//!
//! - `jr2.` names the format version, so that it can evolve (version 1,
//!   `jr1.`, had no send time and is refused as unauthenticated);
//! - `<BODY>` is a JSON object with an `at` field, the publisher's send time
//!   in Unix milliseconds, and a `kind` field: `subject` (with `sub` and
//!   `cutoff`), `global` (with `not_before`) or `heartbeat` (with `from` and
//!   `seq`, sent by subscribers to check that the bus still delivers);
//! - `<MAC>` is HMAC-SHA256 under the [`BusKey`] of
//!   `"jwt-revoke bus v2" 0x00 <channel> 0x00 <BODY>`, in unpadded base64url
//!   (43 characters). Binding the channel name stops a message captured on
//!   one channel from being accepted on another.
//!
//! A message is at most [`MAX_MESSAGE_BYTES`] (8 KiB). A subscriber checks
//! the size, then the version prefix and the MAC (in constant time), and only
//! then parses the body. A message without a valid MAC is counted
//! ([`SubscriberHandle::unauthenticated_messages`]) and dropped; an oversized
//! one, or one whose authenticated body does not parse, is counted as
//! malformed ([`SubscriberHandle::malformed_messages`]) and dropped. An
//! authenticated event is counted as a replay
//! ([`SubscriberHandle::replayed_messages`]) and dropped when it was sent
//! more than [`SubscriberConfig::max_event_age`] (default 30 s) ago or that
//! far ahead, when the subscriber already received it, or when it was sent
//! no later than an event the subscriber had to forget (see [Remembered
//! events](#remembered-events)).
//!
//! ## Trust model
//!
//! The MAC stops anyone who can reach the bus but does not hold the key
//! (PostgreSQL lets every role `NOTIFY`, Redis without ACLs lets every client
//! `PUBLISH`) from forging events. Whoever can publish can still resend a
//! genuine event seen earlier: a subscriber refuses such a *replay* once the
//! event is older than `max_event_age`, and within that age when it received
//! the same message before (or may have: see below). So a replay cannot
//! undo a repair made in the store (a cutoff lowered by hand, then `clear_cache`) once the original
//! event has passed, nor keep disturbing the cache. What a subscriber does
//! accept, a genuine event it sees for the first time within the window, is
//! what it is: a floor (it can only raise a cached cutoff, never create an
//! entry or make one fresh). The wall clocks of the instances must agree to
//! well within `max_event_age` (NTP): events from an instance whose clock is
//! further off are dropped as replays, and its revocations then reach the
//! others within their cache TTL. Heartbeats carry the subscriber's random
//! identity and a sequence number, and only the subscriber's own, newer
//! heartbeats prove the bus alive, so a replayed heartbeat cannot hide a
//! dead bus either.
//!
//! ## Remembered events
//!
//! A subscriber remembers the events it received within `max_event_age`,
//! at most [`MAX_REMEMBERED_EVENTS`] of them, so its memory stays bounded.
//! Past the bound it forgets the event sent first (by the send time inside
//! the MAC), and from then on refuses every event sent at or before the
//! newest one it forgot: it could not tell such an event from one it forgot.
//! A flood of genuine events (an attacker's own logouts, each of them
//! published) therefore never makes room to replay an earlier one. The cost
//! falls on late events only: once the bound was reached, an event arriving
//! after more than `MAX_REMEMBERED_EVENTS` events sent later than it (a
//! slow path, a publisher whose clock is behind) is refused as a replay as
//! well, and its revocation reaches this instance within the cache TTL.
//!
//! Redis closes a subscriber's connection when its output buffer passes
//! `client-output-buffer-limit pubsub` (32 MB by default): one raw `PUBLISH`
//! of a larger message, needing no key, disconnects every subscriber of the
//! channel. The library cannot prevent it; it fails safe (the disconnect is
//! counted, cached cutoffs are trusted only for `degraded_max_age`, and the
//! subscriber reconnects). Restrict `PUBLISH` on the channel to the
//! application with ACLs; lowering the pub/sub buffer limit bounds what such
//! a message costs Redis in memory (subscribers are still disconnected).
//!
//! Deployment: give the bus key only to the application's instances (a
//! random secret of its own, not the JWT key; rotate it by restarting the
//! instances with the new one: while two keys are in use, events between
//! instances on different keys are dropped, and those revocations arrive
//! within the cache TTL). Keep the bus on a private network, with Redis ACLs
//! (`PUBLISH` and `SUBSCRIBE` on the channel only: subscribers publish their
//! heartbeats too) and TLS where the network is not trusted: whoever can drop
//! or delay messages can delay propagation.
//!
//! # Liveness
//!
//! A subscription can look open while nothing arrives: a frozen server, or a
//! network path that silently drops packets. So each subscriber publishes an
//! authenticated heartbeat on its channel every
//! [`SubscriberConfig::heartbeat_interval`] (default 1 s) over a second
//! connection, and counts itself subscribed only while its own heartbeats
//! come back: if none arrives within [`SubscriberConfig::liveness_timeout`]
//! (default 3 s), the subscription is treated as lost. Every network step
//! (connect, subscribe, publish a heartbeat, wait for a message) has that
//! deadline, so a hung server cannot hang the reconnection loop.
//!
//! # Staleness bound
//! - Connected: the time for one message on the bus (milliseconds).
//! - Subscription lost (closed, or silent for `liveness_timeout`): events
//!   may have been missed. The subscriber limits the age of cached cutoffs
//!   to [`SubscriberConfig::degraded_max_age`] (default 1 s) until its
//!   heartbeats come back on a new subscription, then drops what it cached
//!   before (what was missed is reloaded from the store) and lifts the limit.
//!   A revocation whose event is lost therefore reaches this instance within
//!   `liveness_timeout + degraded_max_age` (default 4 s).
//! - A publish that failed even after its retry (counted by
//!   [`Guard::publish_errors`](crate::Guard::publish_errors)) is not seen by
//!   subscribers that stayed connected: the cache TTL bound applies.
//! - The cache TTL bound always holds, bus or not.
//!
//! # Publishing
//!
//! Publishers put every attempt under a deadline (default 1 s,
//! `with_timeout`) and, when an attempt fails, retry once on a fresh
//! connection: the first revocation after a bus restart is not lost to a
//! stale connection. A publish that still fails is counted by the guard
//! ([`Guard::publish_errors`](crate::Guard::publish_errors)); the
//! revocation itself is in the store and reaches the other instances within
//! the bound above or their cache TTL.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::bus::wire::{Body, Opened, Rejected, now_ms, open, seal};
pub use crate::bus::wire::{BusConfigError, BusKey, MAX_MESSAGE_BYTES};
use crate::guard::Guard;
use crate::store::{CutoffStore, StoreError};

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

/// How a subscriber behaves around disconnections.
#[derive(Debug, Clone)]
pub struct SubscriberConfig {
    /// While the subscription is lost, cached cutoffs older than this are
    /// reloaded (default 1 s).
    pub degraded_max_age: Duration,
    /// First delay before reconnecting (default 50 ms); doubles up to
    /// `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest delay between reconnection attempts (default 5 s).
    pub max_backoff: Duration,
    /// How often the subscriber publishes its heartbeat (default 1 s).
    pub heartbeat_interval: Duration,
    /// The subscription counts as lost when none of the subscriber's own
    /// heartbeats arrived for this long (default 3 s); also the deadline of
    /// each connect, subscribe and publish step. Must exceed
    /// `heartbeat_interval`.
    pub liveness_timeout: Duration,
    /// Replay window (default 30 s): an event whose send time (stamped by
    /// the publisher, inside the MAC) is older than this, or further than
    /// this in the future, is dropped and counted
    /// ([`SubscriberHandle::replayed_messages`]); so is an event already
    /// received within it, or sent no later than one the subscriber had to
    /// forget ([`MAX_REMEMBERED_EVENTS`]). The wall clocks of the instances
    /// must agree to well within this (NTP): an instance whose clock is off
    /// by more drops every event of the others, and their revocations then
    /// reach it within its cache TTL only. At least 1 s.
    pub max_event_age: Duration,
}

impl Default for SubscriberConfig {
    fn default() -> Self {
        SubscriberConfig {
            degraded_max_age: Duration::from_secs(1),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(1),
            liveness_timeout: Duration::from_secs(3),
            max_event_age: DEFAULT_MAX_EVENT_AGE,
        }
    }
}

/// The default [`SubscriberConfig::max_event_age`].
const DEFAULT_MAX_EVENT_AGE: Duration = Duration::from_secs(30);

/// The most events a subscriber remembers to refuse replays within
/// [`SubscriberConfig::max_event_age`]. Beyond it, the event sent first is
/// forgotten, and from then on every event sent at or before a forgotten
/// one is refused as a replay (see the [module](self) docs).
pub const MAX_REMEMBERED_EVENTS: usize = 4096;

impl SubscriberConfig {
    fn check(&self) -> Result<(), BusConfigError> {
        if self.heartbeat_interval.is_zero() {
            return Err(BusConfigError::InvalidConfig {
                reason: "heartbeat_interval is zero",
            });
        }
        if self.liveness_timeout <= self.heartbeat_interval {
            return Err(BusConfigError::InvalidConfig {
                reason: "liveness_timeout must exceed heartbeat_interval",
            });
        }
        // A zero backoff would stay zero when doubled: a reconnection loop
        // without pause against a server that closes every connection.
        if self.initial_backoff < Duration::from_millis(1) {
            return Err(BusConfigError::InvalidConfig {
                reason: "initial_backoff is below 1 ms",
            });
        }
        if self.max_backoff < self.initial_backoff {
            return Err(BusConfigError::InvalidConfig {
                reason: "max_backoff is below initial_backoff",
            });
        }
        if self.max_event_age < Duration::from_secs(1) {
            return Err(BusConfigError::InvalidConfig {
                reason: "max_event_age is below 1 s",
            });
        }
        Ok(())
    }
}

/// The default deadline of each publish attempt.
pub(crate) const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Stats {
    connected: AtomicBool,
    received: AtomicU64,
    malformed: AtomicU64,
    unauthenticated: AtomicU64,
    replayed: AtomicU64,
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
    /// `true` while subscribed and the subscriber's heartbeats come back
    /// within the liveness timeout.
    pub fn is_connected(&self) -> bool {
        self.stats.connected.load(Ordering::Acquire)
    }

    /// Events merged into the cache so far (heartbeats not included).
    pub fn events_received(&self) -> u64 {
        self.stats.received.load(Ordering::Relaxed)
    }

    /// Messages with a valid MAC whose body was not a valid message, or
    /// messages over [`MAX_MESSAGE_BYTES`] (dropped).
    pub fn malformed_messages(&self) -> u64 {
        self.stats.malformed.load(Ordering::Relaxed)
    }

    /// Messages without a valid MAC for this channel and key (dropped
    /// unparsed): forgeries, another key, another format version.
    pub fn unauthenticated_messages(&self) -> u64 {
        self.stats.unauthenticated.load(Ordering::Relaxed)
    }

    /// Authenticated events dropped as replays: sent longer ago than
    /// [`SubscriberConfig::max_event_age`] (or that far in the future),
    /// already received, or sent no later than an event the subscriber had
    /// to forget ([`MAX_REMEMBERED_EVENTS`]).
    pub fn replayed_messages(&self) -> u64 {
        self.stats.replayed.load(Ordering::Relaxed)
    }

    /// Times the subscription was lost (closed, or silent past the
    /// liveness timeout).
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

/// What a subscriber's heartbeat task needs: the key, the channel, and the
/// subscriber's identity and sequence.
struct Beat {
    key: BusKey,
    channel: String,
    id: String,
    sent: AtomicU64,
}

impl Beat {
    /// The next heartbeat message.
    fn next(&self) -> Result<String, StoreError> {
        let seq = self.sent.fetch_add(1, Ordering::AcqRel) + 1;
        seal(
            &self.key,
            &self.channel,
            &Body::Heartbeat {
                from: self.id.clone(),
                seq,
            },
        )
    }
}

/// The events received within the replay window, by send time (at most
/// [`MAX_REMEMBERED_EVENTS`]), and the newest send time among those
/// forgotten: an event sent at or before it may be one of them, so it is
/// refused.
struct Seen {
    events: BTreeSet<(i64, [u8; 32])>,
    forgotten_ms: i64,
}

impl Default for Seen {
    fn default() -> Self {
        Seen {
            events: BTreeSet::new(),
            forgotten_ms: i64::MIN,
        }
    }
}

impl Seen {
    /// `true` when the event sent at `at_ms` with MAC `tag` is new (and now
    /// remembered). Forgets the events sent before `oldest_ms` (outside the
    /// replay window) and, beyond the bound, those sent first.
    fn remember(&mut self, tag: [u8; 32], at_ms: i64, oldest_ms: i64) -> bool {
        while let Some(&(at, _)) = self.events.first() {
            if at >= oldest_ms {
                break;
            }
            self.forget_first();
        }
        // Not newer than an event already forgotten: it may be that event.
        if at_ms <= self.forgotten_ms || !self.events.insert((at_ms, tag)) {
            return false;
        }
        if self.events.len() > MAX_REMEMBERED_EVENTS {
            self.forget_first();
        }
        true
    }

    /// Forgets the event sent first, and refuses from now on every event
    /// sent at or before it.
    fn forget_first(&mut self) {
        if let Some((at, _)) = self.events.pop_first() {
            self.forgotten_ms = self.forgotten_ms.max(at);
        }
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The bus-independent half of a subscriber: what to do on (re)connection,
/// on a message and on disconnection.
struct Session<S: CutoffStore> {
    guard: Guard<S>,
    stats: Arc<Stats>,
    config: SubscriberConfig,
    backoff: Duration,
    beat: Arc<Beat>,
    /// The highest sequence of our own heartbeats received.
    acked: u64,
    /// Events received within the replay window.
    seen: Seen,
}

impl<S: CutoffStore> Session<S> {
    fn new(
        guard: Guard<S>,
        channel: String,
        key: BusKey,
        config: SubscriberConfig,
    ) -> Result<(Self, Arc<Stats>), BusConfigError> {
        config.check()?;
        let stats = Arc::new(Stats::default());
        let mut id = [0u8; 16];
        // Uniqueness, not secrecy: a clock-derived fallback is good enough.
        if getrandom::fill(&mut id).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            id = nanos.to_le_bytes();
        }
        let id = id.iter().map(|b| format!("{b:02x}")).collect();
        // Until the first subscription, events may be missed too.
        guard.limit_cache_age(Some(config.degraded_max_age));
        let backoff = config.initial_backoff;
        Ok((
            Session {
                guard,
                stats: Arc::clone(&stats),
                config,
                backoff,
                beat: Arc::new(Beat {
                    key,
                    channel,
                    id,
                    sent: AtomicU64::new(0),
                }),
                acked: 0,
                seen: Seen::default(),
            },
            stats,
        ))
    }

    fn channel(&self) -> &str {
        &self.beat.channel
    }

    fn timeout(&self) -> Duration {
        self.config.liveness_timeout
    }

    /// Runs `fut` under the liveness deadline; `None` on timeout or error.
    async fn deadline<T, E>(&self, fut: impl Future<Output = Result<T, E>>) -> Option<T> {
        match tokio::time::timeout(self.timeout(), fut).await {
            Ok(Ok(value)) => Some(value),
            _ => None,
        }
    }

    /// Spawns the heartbeat task of one connection: `publish` sends one
    /// message; the task stops at the first failed or late publish (the
    /// liveness deadline then ends the connection). Dropping the returned
    /// guard stops it.
    fn spawn_heartbeats<P, F>(&self, mut publish: P) -> AbortOnDrop
    where
        P: FnMut(String) -> F + Send + 'static,
        F: Future<Output = Result<(), StoreError>> + Send,
    {
        let beat = Arc::clone(&self.beat);
        let (interval, limit) = (self.config.heartbeat_interval, self.timeout());
        AbortOnDrop(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Ok(message) = beat.next() else { return };
                match tokio::time::timeout(limit, publish(message)).await {
                    Ok(Ok(())) => {}
                    _ => return,
                }
            }
        }))
    }

    /// The instant by which the next heartbeat must arrive.
    fn next_deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.timeout()
    }

    /// Subscribed and proven live: whatever was missed is reloaded from the
    /// store. Entries are marked stale rather than dropped, so
    /// stale-if-error still covers users while the store is down.
    fn connected(&mut self) {
        self.guard.mark_cache_stale();
        self.guard.limit_cache_age(None);
        self.backoff = self.config.initial_backoff;
        self.stats.connected.store(true, Ordering::Release);
    }

    /// Merges an authenticated event; one the guard refuses (a cutoff
    /// beyond its `max_future_cutoff`) is counted as malformed.
    fn applied(&self, event: &crate::CutoffEvent) {
        let counter = match self.guard.apply_event(event) {
            Ok(()) => &self.stats.received,
            Err(_) => &self.stats.malformed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `true` when an authenticated event is fresh: sent within the replay
    /// window and not received before.
    fn fresh(&mut self, opened: &Opened) -> bool {
        let window = i64::try_from(self.config.max_event_age.as_millis()).unwrap_or(i64::MAX);
        let now = now_ms();
        let oldest = now.saturating_sub(window);
        opened.at_ms >= oldest
            && opened.at_ms <= now.saturating_add(window)
            && self.seen.remember(opened.tag, opened.at_ms, oldest)
    }

    /// Handles one message; `true` when it was one of our own heartbeats,
    /// newer than any seen before (the bus is live).
    fn message(&mut self, payload: &[u8]) -> bool {
        let opened = match open(&self.beat.key, &self.beat.channel, payload) {
            Ok(opened) => opened,
            Err(Rejected::Unauthenticated) => {
                self.stats.unauthenticated.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            Err(Rejected::Malformed) => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        };
        if !matches!(opened.body, Body::Heartbeat { .. }) && !self.fresh(&opened) {
            self.stats.replayed.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        match opened.body {
            Body::Subject { sub, cutoff } => {
                self.applied(&crate::CutoffEvent::Subject { sub, cutoff });
                false
            }
            Body::Global { not_before } => {
                self.applied(&crate::CutoffEvent::Global { not_before });
                false
            }
            Body::Session { sub, sid } => {
                self.applied(&crate::CutoffEvent::Session { sub, sid });
                false
            }
            Body::Heartbeat { from, seq } => {
                // Only our own heartbeats, each at most once: a replayed
                // heartbeat proves nothing about the bus now.
                if from != self.beat.id
                    || seq <= self.acked
                    || seq > self.beat.sent.load(Ordering::Acquire)
                {
                    return false;
                }
                self.acked = seq;
                if !self.stats.connected.load(Ordering::Acquire) {
                    self.connected();
                }
                true
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

/// Runs a publish `attempt` under `timeout`; when it fails or is late,
/// runs it once more with `fresh = true` (the attempt must then use a new
/// connection, not one that may be stale), under the same deadline.
pub(crate) async fn publish_with_retry<F>(
    timeout: Duration,
    mut attempt: impl FnMut(bool) -> F,
) -> Result<(), StoreError>
where
    F: Future<Output = Result<(), StoreError>>,
{
    let mut last = StoreError::msg("publish not attempted");
    for fresh in [false, true] {
        match tokio::time::timeout(timeout, attempt(fresh)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => last = e,
            Err(_) => last = StoreError::msg("publish timed out"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(n: usize) -> [u8; 32] {
        let mut tag = [0; 32];
        tag[..8].copy_from_slice(&(n as u64).to_le_bytes());
        tag
    }

    #[test]
    fn an_event_the_subscriber_may_have_forgotten_is_refused() {
        let mut seen = Seen::default();
        let in_window = 0;
        assert!(
            seen.remember(tag(0), 1_000, in_window),
            "the victim's event"
        );
        assert!(!seen.remember(tag(0), 1_000, in_window), "received before");
        // A flood of newer events, one more than the bound.
        for n in 1..=MAX_REMEMBERED_EVENTS {
            assert!(seen.remember(tag(n), 1_000 + n as i64, in_window));
        }
        assert_eq!(seen.events.len(), MAX_REMEMBERED_EVENTS);
        // The victim's event is forgotten, and refused all the same; so is
        // any other event sent no later. A newer one is accepted.
        assert!(!seen.remember(tag(0), 1_000, in_window));
        assert!(!seen.remember(tag(usize::MAX), 999, in_window));
        assert!(seen.remember(tag(usize::MAX), 1_000_000, in_window));
        assert_eq!(seen.events.len(), MAX_REMEMBERED_EVENTS);
    }

    #[test]
    fn under_the_bound_late_events_are_accepted_once() {
        let mut seen = Seen::default();
        assert!(seen.remember(tag(1), 2_000, 0));
        assert!(seen.remember(tag(2), 1_000, 0), "late, but new");
        assert!(!seen.remember(tag(2), 1_000, 0));
        // Out of the window, it is forgotten; a wall clock stepping back
        // (a smaller window start) does not make it acceptable again.
        assert!(seen.remember(tag(3), 5_000, 1_500));
        assert!(!seen.remember(tag(2), 1_000, 0));
        assert!(!seen.remember(tag(1), 2_000, 0), "still remembered");
    }
}
