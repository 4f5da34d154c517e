//! Hostile schedules against the ordering, caching and timeout promises of
//! the README: requests parked mid-way by their handler, reads overtaken by
//! later reads, revocations across a second boundary, hung stores and hung
//! buses. Each test drives one schedule deterministically (fake clock, held
//! store calls, Tokio's paused clock for timeouts) and is named after the
//! failure it guards against; its assertion names the promise.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::fixture::{T0, assert_revoked, keys, setup, until};
use jwt_revoke::{
    BoxFuture, Clock, Cutoff, CutoffEvent, CutoffStore, Error, FakeClock, Guard, MemoryStore,
    Publisher, RevokedReason, StoreError,
};

// ---------------------------------------------------------------------------
// A waiter that joined a flight and is then parked (polled once, kept alive,
// not polled again: a request future held by a slow handler, a `select!`
// branch that lost but is kept) keeps the flight in the map with its result.
// Every later miss joins that finished flight instead of reading the store.

#[tokio::test]
async fn a_parked_waiter_keeps_an_old_read_joinable_past_the_cache_ttl() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    // Another instance, same store, no bus.
    let other = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let old = other.issue("alice", &()).await.unwrap();
    let loads_after_issue = store.loads();

    let held = store.hold_loads();
    let first = tokio::spawn({
        let (g, t) = (g.clone(), old.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    until(|| store.loads() == loads_after_issue + 1).await;
    // A second request for alice joins the pending load, then is parked.
    let mut parked = Box::pin(g.validate::<()>(&old));
    assert!(futures::poll!(parked.as_mut()).is_pending());
    assert_eq!(store.loads(), loads_after_issue + 1, "it joined the flight");
    held.add_permits(1);
    store.release_loads();
    first.await.unwrap().unwrap();

    // Instance two logs alice out everywhere; this instance has no bus.
    other.bump_version("alice").await.unwrap();
    // Well past the TTL of the read this instance cached.
    clock.advance(Duration::from_secs(120));
    let loads_before = store.loads();
    let r = g.validate::<()>(&old).await;
    let read_store = store.loads() > loads_before;
    drop(parked);
    assert_revoked(
        r,
        RevokedReason::Version,
        &format!(
            "Other instances: bounded (\"without a bus, within the cache TTL\"): 90 s past the \
             TTL the old token was accepted from a finished flight a parked request kept alive \
             (store read: {read_store})"
        ),
    );
}

#[tokio::test(start_paused = true)]
async fn a_parked_waiter_keeps_a_timed_out_load_answering_after_the_store_recovered() {
    let (_clock, store, b) = setup(&["alice"]);
    let g = b.store_timeout(Duration::from_secs(2)).build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.clear_cache();
    store.hang(true);
    let loads = store.loads();
    let first = tokio::spawn({
        let (g, t) = (g.clone(), t.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    until(|| store.loads() == loads + 1).await;
    let mut parked = Box::pin(g.validate::<()>(&t));
    assert!(futures::poll!(parked.as_mut()).is_pending());
    assert_eq!(
        first.await.unwrap().unwrap_err().code(),
        "store_unavailable"
    );
    // The store is back. Every request from now on should read it.
    store.hang(false);
    tokio::time::advance(Duration::from_secs(60)).await;
    let before = store.loads();
    let r = g.validate::<()>(&t).await.map(|_| ());
    let reads = store.loads() - before;
    let in_flight = g.loads_in_flight();
    drop(parked);
    assert!(
        r.is_ok(),
        "A store that hangs / Single flight: a minute after the store recovered, a request \
         was answered {r:?} from a timed-out load kept in the map by a parked waiter \
         ({reads} store reads, {in_flight} loads in flight)"
    );
}

// ---------------------------------------------------------------------------
// Same-second rule across a second boundary: a token stamped `iat = T + 1`
// while the clock read T survives `revoke_before(sub, T)` made at T+1.000.

#[tokio::test]
async fn revoke_before_for_the_second_just_ended_misses_a_token_stamped_ahead() {
    let (clock, _store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    // T.000: log out everywhere.
    g.revoke_before("alice", T0).await.unwrap();
    // T.300: log in again; the token is stamped iat = T + 1.
    clock.advance(Duration::from_millis(300));
    let token = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&token).await.unwrap();
    // T.999: the operator reads "now" (second T) and, one millisecond
    // later, revokes every token minted up to and including second T.
    clock.advance(Duration::from_millis(699));
    let now = clock.now_seconds();
    assert_eq!(now, T0);
    clock.advance(Duration::from_millis(1));
    g.revoke_before("alice", now).await.unwrap();
    // The same-second rule bumps the version: that is the reason reported.
    assert_revoked(
        g.validate::<()>(&token).await,
        RevokedReason::Version,
        "\"revoke_before(sub, at) kills every token with iat <= at, including one minted \
         earlier in the same second\": a token minted at T.300 survived revoke_before(sub, T)",
    );
}

#[tokio::test]
async fn revoke_all_before_for_the_second_just_ended_misses_a_token_stamped_ahead() {
    let (clock, _store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    g.revoke_before("alice", T0).await.unwrap();
    clock.advance(Duration::from_millis(300));
    let token = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&token).await.unwrap();
    clock.advance(Duration::from_millis(699));
    let now = clock.now_seconds();
    clock.advance(Duration::from_millis(1));
    // Key compromise: everyone minted up to second T logs in again.
    g.revoke_all_before(now).await.unwrap();
    assert_revoked(
        g.validate::<()>(&token).await,
        RevokedReason::Global,
        "Everything issued before is revoked: a token minted at T.300 survived \
         revoke_all_before(T)",
    );
}

// ---------------------------------------------------------------------------
// stale-if-error: the window is checked against the time the request
// started, not the time the store gave up.

#[tokio::test(start_paused = true)]
async fn stale_if_error_answers_past_its_window_when_the_store_hangs() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .stale_if_error(Duration::from_secs(5))
        .store_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&t).await.unwrap();
    // The cached read is fresh until T+30 s and may be served stale until
    // T+35 s. A request arrives at T+34.999 s; the store hangs.
    clock.advance(Duration::from_millis(34_999));
    store.hang(true);
    let loads = store.loads();
    let task = tokio::spawn({
        let (g, t) = (g.clone(), t.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    until(|| store.loads() == loads + 1).await;
    // Wall time passes with the timeout (both clocks move together).
    clock.advance(Duration::from_secs(2));
    let r = task.await.unwrap();
    assert!(
        r.is_err(),
        "stale_if_error (\"keep using a cached cutoff for up to `window` past its expiry\"; \
         \"exact to the millisecond\"): the stale cutoff was used at T+36.999 s, 1.999 s past \
         the window"
    );
}

// ---------------------------------------------------------------------------
// A publisher that never answers holds the revocation forever.

struct HungPublisher;

impl Publisher for HungPublisher {
    fn publish<'a>(&'a self, _event: &'a CutoffEvent) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn a_hung_publisher_holds_a_revocation_past_the_store_timeout() {
    let (_clock, _store, b) = setup(&["alice"]);
    let g = b
        .store_timeout(Duration::from_secs(2))
        .publisher(HungPublisher)
        .build()
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(60), g.bump_version("alice")).await;
    assert!(
        matches!(r, Ok(Ok(_))),
        "\"A failed publish never fails the revocation\" / store_timeout bounds every wait: \
         bump_version with a bus that does not answer did not return within 60 s ({r:?})"
    );
}

// ---------------------------------------------------------------------------
// Cancellation between the two writes of `revoke_before`.

/// A store whose `bump_version` hangs while `hang_bumps` is set.
struct HangBumps {
    inner: MemoryStore,
    hang_bumps: AtomicBool,
}

impl CutoffStore for HangBumps {
    async fn load(&self, sub: &str) -> Result<Option<Cutoff>, StoreError> {
        self.inner.load(sub).await
    }
    async fn bump_version(&self, sub: &str) -> Result<Cutoff, StoreError> {
        if self.hang_bumps.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.bump_version(sub).await
    }
    async fn revoke_before(&self, sub: &str, at: i64) -> Result<Cutoff, StoreError> {
        self.inner.revoke_before(sub, at).await
    }
}

#[tokio::test(start_paused = true)]
async fn revoke_before_dropped_between_its_writes_then_retried_kills_the_same_second_login() {
    let clock = FakeClock::new(T0);
    let store = Arc::new(HangBumps {
        inner: MemoryStore::with_clock(jwt_revoke::FakeClock::new(0)),
        hang_bumps: AtomicBool::new(false),
    });
    store.inner.insert("alice", Cutoff::default());
    let g = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let before = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&before).await.unwrap();
    // The timestamp write lands, then the caller goes away during the bump.
    store.hang_bumps.store(true, Ordering::SeqCst);
    let r = tokio::time::timeout(Duration::from_millis(10), g.revoke_before("alice", T0)).await;
    assert!(r.is_err(), "dropped mid-way");
    store.hang_bumps.store(false, Ordering::SeqCst);
    // A login in the same second is stamped ahead (iat = T + 1, old version).
    clock.advance(Duration::from_millis(300));
    let ahead = g.issue("alice", &()).await.unwrap();
    // Retrying is safe: the retry in the same second bumps the version.
    clock.advance(Duration::from_millis(300));
    g.revoke_before("alice", T0).await.unwrap();
    assert_revoked(
        g.validate::<()>(&before).await,
        RevokedReason::Version,
        "retry after a cancelled revoke_before",
    );
    assert_revoked(
        g.validate::<()>(&ahead).await,
        RevokedReason::Version,
        "retry after a cancelled revoke_before, same-second login",
    );
}

#[tokio::test]
async fn stale_if_error_never_serves_a_cutoff_older_than_a_local_revocation_after_mark_stale() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b
        .stale_if_error(Duration::from_secs(60))
        .max_entries(2)
        .build()
        .unwrap();
    let old = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&old).await.unwrap();
    // A load of alice is under way when the local bump returns.
    g.clear_cache();
    let held = store.hold_loads();
    let racing = tokio::spawn({
        let (g, t) = (g.clone(), old.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    until(|| store.loads() >= 2).await;
    g.bump_version("alice").await.unwrap();
    held.add_permits(1);
    store.release_loads();
    assert_revoked(racing.await.unwrap(), RevokedReason::Version, "racing load");
    g.mark_cache_stale();
    store.fail(true);
    clock.advance(Duration::from_secs(1));
    match g.validate::<()>(&old).await {
        Err(Error::Revoked(_)) | Err(Error::StoreUnavailable(_)) => {}
        other => panic!("stale_if_error served a cutoff older than a local revocation: {other:?}"),
    }
}

#[tokio::test]
async fn issue_racing_a_local_bump_neither_mints_a_live_old_token_nor_caches_the_old_cutoff() {
    let (_clock, store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let old = g.issue("alice", &()).await.unwrap();
    let held = store.hold_loads();
    let issuing = tokio::spawn({
        let g = g.clone();
        async move { g.issue("alice", &()).await }
    });
    until(|| store.loads() >= 2).await;
    let bumped = g.bump_version("alice").await.unwrap();
    held.add_permits(1);
    store.release_loads();
    let minted = issuing.await.unwrap().unwrap();
    // The racing issue read v0 but finished after the bump returned: its
    // token carries the merged (bumped) version, and the old read is not
    // cached.
    let v = g.validate::<()>(&minted).await.unwrap();
    assert_eq!(v.version(), Some(bumped.version));
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Version,
        "older token",
    );
}

// ---------------------------------------------------------------------------
// A read overtaken by a newer read (not by a revocation) still replaces it.

#[tokio::test]
async fn an_older_read_overtaken_by_a_login_read_rolls_the_cached_cutoff_back() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let other = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let old = other.issue("alice", &()).await.unwrap();
    let loads = store.loads();
    // A request on this instance reads v0; its reply is slow.
    let held = store.hold_loads();
    let slow = tokio::spawn({
        let (g, t) = (g.clone(), old.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    until(|| store.loads() == loads + 1).await;
    *store.gate.lock().unwrap() = None; // later loads answer at once
    // Instance two logs alice out everywhere (no bus).
    other.bump_version("alice").await.unwrap();
    // Alice logs in again on this instance: issue reads v1 and warms the cache.
    let new = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&new).await.unwrap();
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Version,
        "after the login read",
    );
    // The slow read of v0 lands.
    held.add_permits(1);
    let _ = slow.await.unwrap();
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Version,
        "Cutoffs only move forward (\"The API never lowers a cutoff ... Only an operator who \
         edits the store by hand can lower one\"): this instance rejected the old token, then \
         a slower, older read replaced the cached v1 with v0 and the token was accepted again",
    );
}

// ---------------------------------------------------------------------------
// The global refresh lock held by a parked request.

#[tokio::test(start_paused = true)]
async fn a_parked_request_holding_the_global_refresh_fails_every_request_with_a_healthy_store() {
    let (clock, store, b) = setup(&["alice", "bob"]);
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .store_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let ta = g.issue("alice", &()).await.unwrap();
    let tb = g.issue("bob", &()).await.unwrap();
    clock.advance(Duration::from_secs(31));
    // The global refresh reads the store, then its reply is held briefly.
    let gate = store.hold_global_loads();
    let global_loads = store.global_loads.load(Ordering::SeqCst);
    let mut parked = Box::pin(g.validate::<()>(&ta));
    assert!(futures::poll!(parked.as_mut()).is_pending());
    assert_eq!(store.global_loads.load(Ordering::SeqCst), global_loads + 1);
    // The store answers; the parked request is simply not polled again.
    gate.add_permits(1000);
    *store.global_gate.lock().unwrap() = None;
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(g.validate::<()>(&tb).await.map(|_| ()));
        tokio::time::advance(Duration::from_secs(60)).await;
    }
    drop(parked);
    assert!(
        answers.iter().all(Result::is_ok),
        "A store that hangs / Fail closed: the store is healthy, yet every request of the \
         instance (another subject, minutes later) waited store_timeout and failed: {answers:?}"
    );
}

#[tokio::test]
async fn a_replayed_global_event_after_clear_cache_does_not_lower_the_global_cutoff() {
    let (clock, _store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    clock.advance(Duration::from_secs(5));
    let nb = g.revoke_all_before(T0 + 5).await.unwrap();
    g.clear_cache();
    g.apply_event(&CutoffEvent::Global { not_before: 0 })
        .unwrap();
    g.apply_event(&CutoffEvent::Global { not_before: nb - 3 })
        .unwrap();
    assert_revoked(g.validate::<()>(&t).await, RevokedReason::Global, "global");
}

#[tokio::test]
async fn an_older_global_refresh_overtaken_by_a_login_read_rolls_the_global_cutoff_back() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let other = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let old = other.issue("alice", &()).await.unwrap();
    g.validate::<()>(&old).await.unwrap();
    clock.advance(Duration::from_secs(31));
    // This instance's global refresh reads 0; its reply is slow.
    let held = store.hold_global_loads();
    let global_loads = store.global_loads.load(Ordering::SeqCst);
    let slow = tokio::spawn({
        let (g, t) = (g.clone(), old.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    until(|| store.global_loads.load(Ordering::SeqCst) == global_loads + 1).await;
    *store.global_gate.lock().unwrap() = None;
    // Key compromise handled on instance two (no bus): every token issued
    // up to T+10 is revoked.
    other.revoke_all_before(T0 + 10).await.unwrap();
    // A login on this instance reads the new global cutoff and caches it.
    g.issue("alice", &()).await.unwrap();
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Global,
        "after the login read",
    );
    held.add_permits(1);
    let _ = slow.await.unwrap();
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Global,
        "Cutoffs only move forward: this instance rejected the token by the global cutoff, \
         then an older global refresh replaced it with 0 and the token was accepted again",
    );
}

#[tokio::test]
async fn an_older_unknown_answer_overtaken_by_a_login_read_rejects_the_fresh_login() {
    let (clock, store, b) = setup(&[]);
    let g = b.build().unwrap();
    let minter = {
        let s = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
        s.insert("bob", Cutoff::default());
        Guard::builder(keys(), s)
            .clock(clock.clone())
            .build()
            .unwrap()
    };
    let early = minter.issue("bob", &()).await.unwrap();
    // A request for bob reads "unknown" (bob is registering); slow reply.
    let held = store.hold_loads();
    let slow = tokio::spawn({
        let (g, t) = (g.clone(), early.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    until(|| store.loads() == 1).await;
    *store.gate.lock().unwrap() = None;
    store.inner.insert("bob", Cutoff::default());
    let token = g.issue("bob", &()).await.unwrap();
    g.validate::<()>(&token).await.unwrap();
    held.add_permits(1);
    let _ = slow.await.unwrap();
    let r = g.validate::<()>(&token).await.map(|_| ());
    assert!(
        r.is_ok(),
        "\"issue warms the cache with the cutoff it read\": after a successful login and one \
         accepted request, an older \"unknown\" read replaced the entry and the new token is \
         rejected: {r:?}"
    );
}

#[tokio::test]
async fn a_read_started_before_limit_cache_age_is_not_trusted_past_the_reduced_age() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let other = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let old = other.issue("alice", &()).await.unwrap();
    let loads = store.loads();
    // A slow read of v0 starts; then the bus drops (age limited to 1 s).
    let held = store.hold_loads();
    let slow = tokio::spawn({
        let (g, t) = (g.clone(), old.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    until(|| store.loads() == loads + 1).await;
    g.limit_cache_age(Some(Duration::from_secs(1)));
    clock.advance(Duration::from_secs(2));
    // A revocation on instance two while the bus is down: its event is lost.
    *store.gate.lock().unwrap() = None;
    other.bump_version("alice").await.unwrap();
    held.add_permits(1);
    slow.await.unwrap().unwrap();
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Version,
        "a read older than the reduced age must not be trusted",
    );
}

#[tokio::test(start_paused = true)]
async fn a_bump_whose_reply_times_out_is_covered_by_the_retry() {
    let (_clock, store, b) = setup(&["alice"]);
    let g = b.store_timeout(Duration::from_secs(2)).build().unwrap();
    let old = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&old).await.unwrap();
    // The write lands in the store, its reply never arrives in time.
    let held = store.hold_next_write_reply();
    assert_eq!(
        g.bump_version("alice").await.unwrap_err().code(),
        "store_unavailable"
    );
    // Retry: the guard then rejects every token the returned cutoff revokes.
    let c = g.bump_version("alice").await.unwrap();
    assert_eq!(c.version, 2);
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Version,
        "retry",
    );
    drop(held);
    let new = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&new).await.unwrap();
}

#[tokio::test]
async fn a_login_between_the_two_writes_of_revoke_before_is_revoked_when_it_returns() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    g.revoke_before("alice", T0).await.unwrap();
    clock.advance(Duration::from_millis(300));
    // The timestamp write lands; its reply (and so the version bump) waits.
    let held = store.hold_next_write_reply();
    let revoking = tokio::spawn({
        let g = g.clone();
        async move { g.revoke_before("alice", T0).await }
    });
    until(|| store.write_gate.lock().unwrap().is_none()).await;
    // A login in between reads the written timestamp and the old version.
    clock.advance(Duration::from_millis(100));
    let between = g.issue("alice", &()).await.unwrap();
    held.add_permits(1);
    revoking.await.unwrap().unwrap();
    assert_revoked(
        g.validate::<()>(&between).await,
        RevokedReason::Version,
        "a login between the two writes",
    );
}

#[tokio::test]
async fn a_global_refresh_under_way_when_revoke_all_before_returns_does_not_lower_it() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    clock.advance(Duration::from_secs(31));
    let held = store.hold_global_loads();
    let global_loads = store.global_loads.load(Ordering::SeqCst);
    let refreshing = tokio::spawn({
        let (g, t) = (g.clone(), t.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    until(|| store.global_loads.load(Ordering::SeqCst) == global_loads + 1).await;
    *store.global_gate.lock().unwrap() = None;
    g.revoke_all_before(T0 + 10).await.unwrap();
    held.add_permits(1);
    let _ = refreshing.await.unwrap();
    assert_revoked(g.validate::<()>(&t).await, RevokedReason::Global, "global");
    assert_eq!(
        store.global_loads.load(Ordering::SeqCst),
        global_loads + 2,
        "the next request read the store again"
    );
}

#[tokio::test(start_paused = true)]
async fn aborting_the_request_that_holds_the_global_refresh_frees_it_at_once() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .store_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    clock.advance(Duration::from_secs(31));
    let _held = store.hold_global_loads();
    let global_loads = store.global_loads.load(Ordering::SeqCst);
    let holder = tokio::spawn({
        let (g, t) = (g.clone(), t.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    until(|| store.global_loads.load(Ordering::SeqCst) == global_loads + 1).await;
    holder.abort();
    assert!(holder.await.unwrap_err().is_cancelled());
    *store.global_gate.lock().unwrap() = None;
    let start = tokio::time::Instant::now();
    g.validate::<()>(&t).await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no wait behind a cancelled refresh"
    );
    assert_eq!(g.loads_in_flight(), 0);
}

#[tokio::test]
async fn a_parked_waiter_lets_a_cache_miss_be_accepted_while_the_store_is_down() {
    let (clock, store, b) = setup(&["alice"]);
    // No stale_if_error: the guard must fail closed. Tokens live a day, so
    // only the cutoff decides.
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .access_ttl(Duration::from_secs(86_400))
        .build()
        .unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.clear_cache();
    let loads = store.loads();
    let held = store.hold_loads();
    let first = tokio::spawn({
        let (g, t) = (g.clone(), t.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    until(|| store.loads() == loads + 1).await;
    let mut parked = Box::pin(g.validate::<()>(&t));
    assert!(futures::poll!(parked.as_mut()).is_pending());
    held.add_permits(1);
    store.release_loads();
    first.await.unwrap().unwrap();
    // Hours later the store is down; alice's entry expired long ago.
    clock.advance(Duration::from_secs(3 * 3600));
    store.fail(true);
    let r = g.validate::<()>(&t).await.map(|_| ());
    drop(parked);
    assert!(
        matches!(&r, Err(Error::StoreUnavailable(_))),
        "Fail closed (\"A cache miss while the store is down is store_unavailable (HTTP 503), \
         never an accept\"): got {r:?} three hours after the cached read expired"
    );
}
