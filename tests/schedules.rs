//! Schedules against the README's promises on revocation ordering, caching,
//! cancellation, timeouts and the same-second rule that combine mechanisms
//! the other schedule tests exercise one at a time: read stamps with
//! eviction, a single flight whose only waiter is parked, a global refresh
//! joined by requests with more time left than the one that started it,
//! foreign tokens across a second boundary, the counters of
//! `Guard::stats()`, and settings the builder accepts.
//!
//! Each test is deterministic (fake clock, store calls held on semaphores,
//! Tokio's paused clock wherever a timeout matters) and its assertion
//! message names the promise it checks.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::fixture::{Store, T0, assert_revoked, keys, setup, until};
use jwt_revoke::{
    Algorithm, Clock, Cutoff, CutoffStore, DecodingKey, EncodingKey, Error, FakeClock, Guard, Keys,
    MemoryStore, RevokedReason, StoreError,
};

/// A second instance over the same store, without a bus.
fn other_instance(clock: &FakeClock, store: &Store) -> Guard<Store> {
    Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap()
}

async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Moves the guard's clock and Tokio's paused clock together.
async fn advance(clock: &FakeClock, by: Duration) {
    clock.advance(by);
    tokio::time::advance(by).await;
}

// ---------------------------------------------------------------------------
// A single flight whose only waiter is parked: the store answered long ago,
// nobody polled the shared future since, so the map still holds it as "under
// way" and a request minutes later joins it and decides from the old read.

#[tokio::test(start_paused = true)]
async fn a_load_only_a_parked_request_waits_on_answers_a_request_minutes_later_with_its_old_read() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .store_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let other = other_instance(&clock, &store);
    let old = other.issue("alice", &()).await.unwrap();

    // A request reads alice (v0); the reply is held, and its handler stops
    // polling it (the only waiter of the load).
    let _gate = store.hold_loads();
    let loads = store.loads();
    let mut parked = Box::pin(g.validate::<()>(&old));
    assert!(futures::poll!(parked.as_mut()).is_pending());
    assert_eq!(store.loads(), loads + 1, "the parked request read v0");

    // Instance two logs alice out everywhere (no bus).
    other.bump_version("alice").await.unwrap();
    // Two minutes pass: far past the cache TTL and past the load's own
    // store_timeout. The store's answer to that old read is available.
    advance(&clock, Duration::from_secs(120)).await;
    store.release_loads();

    let before = store.loads();
    let r = g.validate::<()>(&old).await.map(|_| ());
    let read_store = store.loads() > before;
    drop(parked);
    assert_revoked(
        r,
        RevokedReason::Version,
        &format!(
            "Other instances: bounded (\"without a bus, within the cache TTL (default 30 s) of \
             the revocation returning, counted from when a cached read *started*, so a slow \
             read cannot stretch it\") / Single flight (\"a request its handler stops polling \
             holds nobody up\"): 120 s after the revocation returned, a new request joined the \
             load a parked request started before it and accepted the revoked token (store \
             read by the new request: {read_store})"
        ),
    );
}

#[tokio::test(start_paused = true)]
async fn a_global_refresh_only_a_parked_request_waits_on_answers_a_request_minutes_later() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .store_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let other = other_instance(&clock, &store);
    let old = other.issue("alice", &()).await.unwrap();
    g.validate::<()>(&old).await.unwrap();
    advance(&clock, Duration::from_secs(31)).await;

    // A request refreshes the global cutoff (reads 0); the reply is held
    // and its handler stops polling it.
    let gate = store.hold_global_loads();
    let global_loads = store.global_loads.load(Ordering::SeqCst);
    let mut parked = Box::pin(g.validate::<()>(&old));
    assert!(futures::poll!(parked.as_mut()).is_pending());
    assert_eq!(
        store.global_loads.load(Ordering::SeqCst),
        global_loads + 1,
        "the parked request read the global cutoff"
    );
    *store.global_gate.lock().unwrap() = None;

    // Key compromise handled on instance two (no bus).
    other.revoke_all_before(T0 + 31).await.unwrap();
    advance(&clock, Duration::from_secs(120)).await;
    // The old read's reply arrives; nobody polls the parked request.
    gate.add_permits(1000);

    let r = g.validate::<()>(&old).await.map(|_| ());
    drop(parked);
    assert_revoked(
        r,
        RevokedReason::Global,
        "Other instances: bounded (\"within the cache TTL ... counted from when a cached read \
         *started*, so a slow read cannot stretch it\"): 120 s after revoke_all_before returned \
         on instance two, a request joined the global refresh a parked request started before \
         it and accepted a token the global cutoff revokes",
    );
}

// ---------------------------------------------------------------------------
// Read stamps do not survive eviction: an older read caches over a newer
// one once the newer entry was evicted (`max_entries` tiny).

#[tokio::test]
async fn an_older_read_caches_over_a_newer_one_once_the_newer_entry_was_evicted() {
    let (clock, store, b) = setup(&["alice", "bob"]);
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .max_entries(1)
        .build()
        .unwrap();
    let other = other_instance(&clock, &store);
    let old = other.issue("alice", &()).await.unwrap();
    let bob = other.issue("bob", &()).await.unwrap();

    // A request on this instance reads alice (v0); its reply is slow.
    let loads = store.loads();
    let held = store.hold_loads();
    let slow = tokio::spawn({
        let (g, t) = (g.clone(), old.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    until(|| store.loads() == loads + 1).await;
    *store.gate.lock().unwrap() = None;

    // Instance two logs alice out; alice logs in again here: issue reads v1
    // (a later read) and caches it.
    other.bump_version("alice").await.unwrap();
    let new = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&new).await.unwrap();
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Version,
        "after the login read",
    );
    // Another user's request fills the one-entry cache: alice is evicted
    // ("an evicted entry only costs a reload").
    g.validate::<()>(&bob).await.unwrap();
    let evictions = g.stats().evictions;
    assert!(evictions >= 1, "alice was evicted");

    // The older read (v0) lands.
    held.add_permits(1);
    let _ = slow.await.unwrap();
    let loads = store.loads();
    let r = g.validate::<()>(&old).await.map(|_| ());
    let reloaded = store.loads() > loads;
    assert_revoked(
        r,
        RevokedReason::Version,
        &format!(
            "Cutoffs only move forward / How the cache stays right (\"every read takes a stamp \
             when it starts; a later read always wins\") / Design decisions (\"An evicted entry \
             only costs a reload\"): this instance rejected the old token after reading v1, then \
             an older read of v0 was cached over the evicted entry and the token was accepted \
             again (store read: {reloaded})"
        ),
    );
}

#[tokio::test]
async fn an_older_unknown_answer_caches_over_a_login_read_once_the_login_entry_was_evicted() {
    let (clock, store, b) = setup(&["carol"]);
    let g = b.max_entries(1).build().unwrap();
    let other = other_instance(&clock, &store);
    let carol = other.issue("carol", &()).await.unwrap();
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
    let loads = store.loads();
    let held = store.hold_loads();
    let slow = tokio::spawn({
        let (g, t) = (g.clone(), early.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    until(|| store.loads() == loads + 1).await;
    *store.gate.lock().unwrap() = None;
    // Bob registers and logs in: issue reads his row (a later read) and
    // warms the cache.
    store.inner.insert("bob", Cutoff::default());
    let token = g.issue("bob", &()).await.unwrap();
    g.validate::<()>(&token).await.unwrap();
    // Another user's request fills the one-entry cache: bob is evicted.
    g.validate::<()>(&carol).await.unwrap();
    assert!(g.stats().evictions >= 1, "bob was evicted");
    // The older "unknown" read lands.
    held.add_permits(1);
    let _ = slow.await.unwrap();
    let r = g.validate::<()>(&token).await.map(|_| ());
    assert!(
        r.is_ok(),
        "How the cache stays right (\"a later read always wins, for 'unknown subject' answers \
         too\") / Design decisions (\"An evicted entry only costs a reload\"): after bob's login \
         read was cached and evicted, an older \"unknown\" read was cached and bob's new token \
         is rejected: {r:?}"
    );
}

// ---------------------------------------------------------------------------
// One shared global refresh, waiters with different deadlines: the refresh
// is bounded by the deadline of the request that started it, which may have
// spent most of its budget on its own subject load. A request that joins
// with its full budget gives up at the other request's deadline.

#[tokio::test(start_paused = true)]
async fn a_request_joining_a_global_refresh_gives_up_at_the_deadline_of_the_request_that_started_it()
 {
    let (clock, store, b) = setup(&["alice", "bob", "carol"]);
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .store_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let other = other_instance(&clock, &store);
    let alice = other.issue("alice", &()).await.unwrap();
    let bob = other.issue("bob", &()).await.unwrap();
    // The global cutoff is cached at T, bob's cutoff at T+20: at T+31 bob
    // is a fresh hit whose global cutoff is due.
    g.issue("carol", &()).await.unwrap();
    advance(&clock, Duration::from_secs(20)).await;
    g.validate::<()>(&bob).await.unwrap();
    advance(&clock, Duration::from_secs(11)).await;

    // Request A (alice, a miss) spends 1.9 s of its 2 s on its subject load,
    // then starts the global refresh (held).
    let loads = store.loads();
    let held = store.hold_loads();
    let a = tokio::spawn({
        let (g, t) = (g.clone(), alice.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    until(|| store.loads() == loads + 1).await;
    advance(&clock, Duration::from_millis(1900)).await;
    let global_gate = store.hold_global_loads();
    let global_loads = store.global_loads.load(Ordering::SeqCst);
    held.add_permits(1);
    store.release_loads();
    until(|| store.global_loads.load(Ordering::SeqCst) == global_loads + 1).await;
    *store.global_gate.lock().unwrap() = None;

    // Request B (bob, a cache hit with the global cutoff due) starts now,
    // with its full 2 s, and joins the refresh under way.
    let start = tokio::time::Instant::now();
    let b_task = tokio::spawn({
        let (g, t) = (g.clone(), bob.clone());
        async move {
            let r = g.validate::<()>(&t).await.map(|_| ());
            (r, tokio::time::Instant::now())
        }
    });
    settle().await;
    // The store answers the refresh 500 ms after B started, well within
    // B's budget (the reply is released once B has given up or not).
    advance(&clock, Duration::from_millis(150)).await;
    settle().await;
    advance(&clock, Duration::from_millis(350)).await;
    settle().await;
    global_gate.add_permits(1000);
    let (r, ended) = b_task.await.unwrap();
    let _ = a.await.unwrap();
    assert!(
        r.is_ok(),
        "A store that hangs (\"Every store call has a deadline (store_timeout, default 2 s)\") / \
         GuardBuilder::store_timeout (\"Longest wait on the store for one call ... give up after \
         it\"): a request gave up after {:?} of its 2 s with {r:?}, although the store \
         answered the refresh 500 ms after it started: it joined a global refresh bounded by another request's \
         nearly spent deadline",
        ended - start
    );
}

// ---------------------------------------------------------------------------
// Same-second rule across a second boundary, foreign tokens: the version bump
// that covers our own tokens does nothing for tokens without `ver`.

#[tokio::test]
async fn revoke_before_now_read_just_before_a_second_boundary_misses_a_foreign_token_of_the_new_second()
 {
    let idp_secret = b"identity-provider-secret-32bytes";
    let clock = FakeClock::from_millis(T0 * 1000 + 999);
    let store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
    store.insert("ext-user", Cutoff::default());
    let g = Guard::builder(
        Keys::verify_only(Algorithm::HS256, DecodingKey::from_secret(idp_secret)).unwrap(),
        store,
    )
    .clock(clock.clone())
    .foreign_tokens(true)
    .build()
    .unwrap();
    let mint = |iat: i64| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "ext-user", "iat": iat, "exp": iat + 600}),
            &EncodingKey::from_secret(idp_secret),
        )
        .unwrap()
    };
    // T.999: the operator reads "now" (second T) to log the user out
    // everywhere.
    let now = clock.now_seconds();
    assert_eq!(now, T0);
    // T+1.000: the identity provider mints a token (iat = T + 1).
    clock.advance(Duration::from_millis(1));
    let token = mint(clock.now_seconds());
    g.validate::<()>(&token).await.unwrap();
    // T+1.001: the revocation is called.
    clock.advance(Duration::from_millis(1));
    g.revoke_before("ext-user", now).await.unwrap();
    assert_revoked(
        g.validate::<()>(&token).await,
        RevokedReason::NotBefore,
        "Everything is revoked (\"A revocation 'up to now' (... revoke_before(sub, now) ...) \
         revokes every token issued before it was called, including one issued earlier in the \
         same second\") / Same-second rule (\"at >= now - 1 (so a 'now' read just before a \
         second boundary counts)\") / Foreign tokens (\"logout-everywhere works with \
         revoke_before(sub, now)\"): a foreign token minted 1 ms before the call survived it",
    );
}

// ---------------------------------------------------------------------------
// A request in flight when a local revocation returns: a cache hit waiting
// for the global refresh decides from the cutoff it read before waiting,
// while a miss merges its read with the revocation.

#[tokio::test]
async fn a_cache_hit_waiting_for_the_global_refresh_accepts_a_token_revoked_while_it_waited() {
    let (clock, store, b) = setup(&["alice", "carol"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let other = other_instance(&clock, &store);
    let old = other.issue("alice", &()).await.unwrap();
    // Global cached at T, alice at T+20: at T+31 alice is a hit, the global
    // cutoff is due.
    g.issue("carol", &()).await.unwrap();
    clock.advance(Duration::from_secs(20));
    g.validate::<()>(&old).await.unwrap();
    clock.advance(Duration::from_secs(11));

    let global_loads = store.global_loads.load(Ordering::SeqCst);
    let held = store.hold_global_loads();
    let in_flight = tokio::spawn({
        let (g, t) = (g.clone(), old.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    until(|| store.global_loads.load(Ordering::SeqCst) == global_loads + 1).await;
    *store.global_gate.lock().unwrap() = None;
    // This instance logs alice out everywhere, and the call returns.
    let bumped = g.bump_version("alice").await.unwrap();
    assert_eq!(bumped.version, 1);
    // Then the global refresh answers and the request finishes.
    held.add_permits(1);
    let r = in_flight.await.unwrap();
    assert_revoked(
        r,
        RevokedReason::Version,
        "Same instance: immediate (\"When bump_version ... returns, the guard that made the call \
         rejects every token the returned cutoff revokes. No window, whatever arrives later\"): \
         a validation answered after bump_version returned accepted the token it revokes (a miss \
         in the same position is merged with the revocation and rejected)",
    );
}

// ---------------------------------------------------------------------------
// Settings the builder accepts that panic at the first request.

#[tokio::test]
async fn a_store_timeout_the_builder_accepts_panics_at_the_first_store_wait() {
    // "Never time out" does not fit in any cache TTL: refused by build(),
    // which checks the settings, with the reason.
    let (_clock, _store, b) = setup(&["alice"]);
    let err = b.store_timeout(Duration::MAX).build().unwrap_err();
    assert!(err.to_string().contains("store_timeout"), "{err}");
    // The longest timeout build() accepts (under a 10-year TTL) works.
    let (_clock, _store, b) = setup(&["alice"]);
    let g = b
        .cache_ttl(Duration::from_secs(10 * 365 * 86_400))
        .store_timeout(Duration::from_secs(9 * 365 * 86_400))
        .build()
        .unwrap();
    let joined = tokio::spawn(async move { g.issue("alice", &()).await.map(|_| ()) }).await;
    assert!(
        matches!(joined, Ok(Ok(()))),
        "GuardBuilder::build (\"Builds the guard, checking the settings\") accepted \
         a 9-year store_timeout, and the first issue {}",
        match &joined {
            Err(e) if e.is_panic() => "panicked (Tokio runtime with timers enabled)".to_owned(),
            other => format!("returned {other:?}"),
        }
    );
}

// ---------------------------------------------------------------------------
// Counters of Guard::stats() that lie.

/// A store whose `bump_version` fails while `fail_bumps` is set.
struct FailBumps {
    inner: MemoryStore,
    fail_bumps: AtomicBool,
}

impl CutoffStore for FailBumps {
    async fn load(&self, sub: &str) -> Result<Option<Cutoff>, StoreError> {
        self.inner.load(sub).await
    }
    async fn bump_version(&self, sub: &str) -> Result<Cutoff, StoreError> {
        if self.fail_bumps.load(Ordering::SeqCst) {
            return Err(StoreError::msg("injected bump failure"));
        }
        self.inner.bump_version(sub).await
    }
    async fn revoke_before(&self, sub: &str, at: i64) -> Result<Cutoff, StoreError> {
        self.inner.revoke_before(sub, at).await
    }
}

#[tokio::test]
async fn a_revoke_before_that_fails_between_its_writes_is_counted_as_a_successful_revocation() {
    let clock = FakeClock::new(T0);
    let store = Arc::new(FailBumps {
        inner: MemoryStore::with_clock(jwt_revoke::FakeClock::new(0)),
        fail_bumps: AtomicBool::new(true),
    });
    store.inner.insert("alice", Cutoff::default());
    let g = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let r = g.revoke_before("alice", clock.now_seconds()).await;
    assert!(
        matches!(r, Err(Error::StoreUnavailable(_))),
        "the version bump failed: {r:?}"
    );
    let stats = g.stats();
    assert_eq!(
        stats.revocations, 0,
        "Stats::revocations (\"Successful revocations made through this guard\"; \
         jwt_revoke_revocations_total: \"successful bump_version / revoke_before / \
         revoke_all_before\"): a revoke_before that returned store_unavailable was counted"
    );
}

#[tokio::test]
async fn a_failed_global_refresh_answered_from_stale_if_error_is_not_counted_as_a_store_error() {
    let (clock, store, b) = setup(&["alice", "bob", "carol"]);
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .stale_if_error(Duration::from_secs(60))
        .build()
        .unwrap();
    let other = other_instance(&clock, &store);
    let alice = other.issue("alice", &()).await.unwrap();
    let bob = other.issue("bob", &()).await.unwrap();
    // Global cached at T, alice and bob at T+20.
    g.issue("carol", &()).await.unwrap();
    clock.advance(Duration::from_secs(20));
    g.validate::<()>(&alice).await.unwrap();
    g.validate::<()>(&bob).await.unwrap();
    clock.advance(Duration::from_secs(11));
    store.fail(true);

    // T+31: bob is a fresh hit; the global refresh fails and is answered
    // from stale-if-error.
    let global_loads = store.global_loads.load(Ordering::SeqCst);
    let before = g.stats();
    g.validate::<()>(&bob).await.unwrap();
    let after = g.stats();
    assert_eq!(
        store.global_loads.load(Ordering::SeqCst),
        global_loads + 1,
        "the global refresh was sent to the store"
    );
    assert_eq!(
        after.stale_answers,
        before.stale_answers + 1,
        "answered stale"
    );
    let global_errors = after.store_errors - before.store_errors;

    // T+51: alice's cutoff is due too; its failed load, answered stale the
    // same way, is counted.
    clock.advance(Duration::from_secs(20));
    let before = g.stats().store_errors;
    g.validate::<()>(&alice).await.unwrap();
    let subject_errors = g.stats().store_errors - before;
    assert!(subject_errors >= 1, "a failed subject load is counted");

    assert_eq!(
        global_errors, 1,
        "Stats::store_errors (\"Store calls that failed or timed out, as seen by callers\"): a \
         failed global refresh answered from stale-if-error was not counted, while a failed \
         subject load answered the same way was ({subject_errors})"
    );
}

#[tokio::test]
async fn loads_in_flight_undercounts_when_a_login_read_replaces_a_shared_load() {
    let (_clock, store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.clear_cache();
    let loads = store.loads();
    let held = store.hold_loads();
    let validating = tokio::spawn({
        let (g, t) = (g.clone(), t.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    until(|| store.loads() == loads + 1).await;
    // A login starts its own store read ("issue also starts its own store
    // read rather than joining a load already under way").
    let issuing = tokio::spawn({
        let g = g.clone();
        async move { g.issue("alice", &()).await.map(|_| ()) }
    });
    until(|| store.loads() == loads + 2).await;
    let pending = g.loads_in_flight();
    let stats_pending = g.stats().loads_in_flight;
    held.add_permits(2);
    store.release_loads();
    validating.await.unwrap().unwrap();
    issuing.await.unwrap().unwrap();
    assert_eq!(g.loads_in_flight(), 0);
    assert_eq!(
        (pending, stats_pending),
        (2, 2),
        "Guard::loads_in_flight (\"Number of store loads pending right now\") / \
         Stats::loads_in_flight (\"Store loads pending now\"): two store loads were pending"
    );
}

// ---------------------------------------------------------------------------
// One guard shared by several runtimes (actix-web runs one Tokio runtime per
// worker thread, each with its timer): a load's deadline timer belongs to
// the runtime of the request that started it. When that runtime shuts down
// (a worker stopped or restarted) while requests of other workers wait on
// the load, they poll a timer whose driver is gone.

#[test]
fn a_request_waiting_on_a_load_started_on_a_runtime_that_shut_down_panics() {
    let (_clock, store, b) = setup(&["alice"]);
    let g = b.store_timeout(Duration::from_secs(2)).build().unwrap();
    let rt = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let (worker1, worker2) = (rt(), rt());
    let t = worker2.block_on(g.issue("alice", &())).unwrap();
    g.clear_cache();
    let _gate = store.hold_loads();
    // Worker 1 starts the load of alice; the store is slow.
    let mut first = Box::pin(g.validate::<()>(&t));
    worker1.block_on(async {
        assert!(futures::poll!(first.as_mut()).is_pending());
    });
    // Worker 2's request joins it.
    let joined = worker2.spawn({
        let (g, t) = (g.clone(), t.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    worker2.block_on(settle());
    assert_eq!(g.stats().flight_joins, 1, "worker 2 joined the load");
    // Worker 1 stops (its request goes with it).
    drop(first);
    drop(worker1);
    worker2.block_on(settle());
    store.release_loads();
    let r = worker2.block_on(joined);
    assert!(
        matches!(r, Ok(Ok(()))),
        "GuardBuilder::store_timeout (\"the guard must run inside a Tokio runtime with the time \
         driver enabled (#[tokio::main] and actix-web's runtime have it)\") / Guard (\"clones \
         share the cache, so one guard can be stored in framework state and handed to every \
         request\"): a request on a timer-enabled runtime {}",
        match &r {
            Err(e) if e.is_panic() => "panicked".to_owned(),
            other => format!("returned {other:?}"),
        }
    );
}
