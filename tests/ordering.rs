//! Revocation ordering: no late, duplicated or reordered event, no slow
//! store reply, no cancelled call and no hung store may let a revoked token
//! through. Each test drives one scenario deterministically (fake clock,
//! held store replies, Tokio's paused time for timeouts).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fixture::{T0, keys, setup};
use common::repairable::Repairable;
use jwt_revoke::{
    Cutoff, CutoffEvent, CutoffStore, Error, FakeClock, Guard, MemoryStore, RevokedReason,
};

fn subject_event(sub: &str, cutoff: Cutoff) -> CutoffEvent {
    CutoffEvent::Subject {
        sub: sub.to_owned(),
        cutoff,
    }
}

#[track_caller]
fn assert_revoked<T: std::fmt::Debug>(r: Result<T, Error>, reason: RevokedReason) {
    match r {
        Err(Error::Revoked(got)) => assert_eq!(got, reason),
        other => panic!("expected a revocation ({reason}), got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// 1. A cutoff that is not a fresh store read is a floor.

#[tokio::test]
async fn a_late_event_after_eviction_does_not_revive_a_revoked_token() {
    let (_clock, store, b) = setup(&["alice"]);
    let g = b.max_entries(8).build().unwrap();
    let v1 = g.bump_version("alice").await.unwrap();
    let old = g.issue("alice", &()).await.unwrap();
    g.bump_version("alice").await.unwrap();
    assert_revoked(g.validate::<()>(&old).await, RevokedReason::Version);
    // Other subjects' traffic evicts alice's entry; then the v1 event,
    // delayed on the bus, arrives.
    for i in 0..64 {
        let other = format!("filler-{i}");
        store.inner.insert(other.as_str(), Cutoff::default());
        let t = g.issue(&other, &()).await.unwrap();
        g.validate::<()>(&t).await.unwrap();
    }
    g.apply_event(&subject_event("alice", v1)).unwrap();
    assert_revoked(g.validate::<()>(&old).await, RevokedReason::Version);
}

#[tokio::test]
async fn a_late_event_after_clear_cache_does_not_revive_a_revoked_token() {
    let (_clock, _store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let v1 = g.bump_version("alice").await.unwrap();
    let old = g.issue("alice", &()).await.unwrap();
    g.bump_version("alice").await.unwrap();
    g.clear_cache();
    g.apply_event(&subject_event("alice", v1)).unwrap();
    assert_revoked(g.validate::<()>(&old).await, RevokedReason::Version);
    // Duplicated and reordered: still nothing.
    g.apply_event(&subject_event("alice", v1)).unwrap();
    g.apply_event(&subject_event("alice", Cutoff::default()))
        .unwrap();
    assert_revoked(g.validate::<()>(&old).await, RevokedReason::Version);
}

#[tokio::test]
async fn the_slow_reply_of_a_racing_bump_does_not_revive_a_revoked_token() {
    // No bus at all: two bumps on one guard; the first one's store reply
    // (v1) arrives after the second returned v2 and the entry was evicted.
    let (_clock, store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let held = store.hold_next_write_reply();
    let first = tokio::spawn({
        let g = g.clone();
        async move { g.bump_version("alice").await }
    });
    // The first bump is written (v1); its reply is held.
    while store.inner.load("alice").await.unwrap().unwrap().version != 1 {
        tokio::task::yield_now().await;
    }
    let v1_token = g.issue("alice", &()).await.unwrap();
    let v2 = g.bump_version("alice").await.unwrap();
    assert_eq!(v2.version, 2);
    assert_revoked(g.validate::<()>(&v1_token).await, RevokedReason::Version);
    g.clear_cache();
    held.add_permits(1);
    assert_eq!(first.await.unwrap().unwrap().version, 1);
    assert_revoked(g.validate::<()>(&v1_token).await, RevokedReason::Version);
}

#[tokio::test]
async fn an_old_event_never_overrides_a_newer_cutoff_in_the_store() {
    // Instance B holds no entry for alice; the store already has v2 when
    // B receives the v1 event.
    let clock = FakeClock::new(T0);
    let store = Arc::new(MemoryStore::with_clock(jwt_revoke::FakeClock::new(0)));
    store.insert("alice", Cutoff::default());
    let a = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let b = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let v1 = a.bump_version("alice").await.unwrap();
    let v1_token = a.issue("alice", &()).await.unwrap();
    a.bump_version("alice").await.unwrap();
    b.apply_event(&subject_event("alice", v1)).unwrap();
    assert_revoked(b.validate::<()>(&v1_token).await, RevokedReason::Version);
}

#[tokio::test]
async fn remote_events_never_create_remove_or_evict_entries() {
    let (_clock, store, b) = setup(&["alice"]);
    let g = b.max_entries(100).build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&t).await.unwrap();
    // A subject the store does not know is cached negatively.
    let ghost = {
        let ghost_store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
        ghost_store.insert("ghost", Cutoff::default());
        let minter = Guard::builder(keys(), ghost_store)
            .clock(FakeClock::new(T0))
            .build()
            .unwrap();
        minter.issue("ghost", &()).await.unwrap()
    };
    assert_eq!(
        g.validate::<()>(&ghost).await.unwrap_err().code(),
        "unknown_subject"
    );
    let (cached, unknown, loads) = (
        g.cached_subjects(),
        g.cached_unknown_subjects(),
        store.loads(),
    );
    for i in 0..1_000 {
        g.apply_event(&subject_event(&format!("made-up-{i}"), Cutoff::new(9, 0)))
            .unwrap();
    }
    // An event for the negatively cached subject does not make it known.
    g.apply_event(&subject_event("ghost", Cutoff::default()))
        .unwrap();
    assert_eq!(g.cached_subjects(), cached, "no entry was created");
    assert_eq!(g.cached_unknown_subjects(), unknown);
    assert_eq!(
        g.validate::<()>(&ghost).await.unwrap_err().code(),
        "unknown_subject"
    );
    g.validate::<()>(&t).await.unwrap();
    assert_eq!(store.loads(), loads, "alice is still cached (not evicted)");
}

#[tokio::test]
async fn an_event_raises_an_existing_entry_but_does_not_extend_its_freshness() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    let loads = store.loads();
    clock.advance(Duration::from_secs(20));
    // Another instance bumped alice to v1: the event raises the entry.
    let v1 = store.inner.bump_version("alice").await.unwrap();
    g.apply_event(&subject_event("alice", v1)).unwrap();
    assert_revoked(g.validate::<()>(&t).await, RevokedReason::Version);
    assert_eq!(store.loads(), loads);
    // The entry still expires 30 s after it was read, not after the event.
    clock.advance(Duration::from_secs(10));
    assert_revoked(g.validate::<()>(&t).await, RevokedReason::Version);
    assert_eq!(store.loads(), loads + 1, "reloaded at the original expiry");
}

// ---------------------------------------------------------------------------
// 2. Same-second sequences.

#[tokio::test]
async fn revoke_issue_revoke_in_one_second_kills_the_token_in_between() {
    let (clock, _store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    g.revoke_before("alice", T0).await.unwrap(); // T0.0
    clock.advance(Duration::from_millis(300));
    let between = g.issue("alice", &()).await.unwrap(); // T0.3, iat = T0 + 1
    assert_eq!(
        g.validate::<()>(&between).await.unwrap().issued_at(),
        T0 + 1
    );
    clock.advance(Duration::from_millis(300));
    g.revoke_before("alice", T0).await.unwrap(); // T0.6
    assert!(g.validate::<()>(&between).await.is_err());
    // Another instance over the same store agrees once it reads the store.
    // A login after the last revocation works at once.
    clock.advance(Duration::from_millis(300));
    let after = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&after).await.unwrap();
}

#[tokio::test]
async fn revoke_issue_revoke_in_one_second_is_seen_by_another_instance() {
    let clock = FakeClock::new(T0);
    let store = Arc::new(MemoryStore::with_clock(jwt_revoke::FakeClock::new(0)));
    store.insert("alice", Cutoff::default());
    let a = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let b = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    a.revoke_before("alice", T0).await.unwrap();
    clock.advance(Duration::from_millis(300));
    let between = b.issue("alice", &()).await.unwrap();
    clock.advance(Duration::from_millis(300));
    a.revoke_before("alice", T0).await.unwrap();
    assert!(a.validate::<()>(&between).await.is_err());
    clock.advance(Duration::from_secs(31));
    assert!(b.validate::<()>(&between).await.is_err());
}

#[tokio::test]
async fn revoke_all_issue_revoke_all_in_one_second_kills_the_token_in_between() {
    let (clock, _store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    g.revoke_all_before(T0).await.unwrap(); // T0.0
    clock.advance(Duration::from_millis(300));
    // Either no token is handed out before the next second, or the one
    // handed out dies with the next revocation.
    let between = g.issue("alice", &()).await;
    clock.advance(Duration::from_millis(300));
    g.revoke_all_before(T0).await.unwrap(); // T0.6
    match between {
        Ok(t) => assert!(g.validate::<()>(&t).await.is_err()),
        Err(e) => assert_eq!(e.code(), "retry_later"),
    }
    // Logins work again at the global `not_before`: the second call raised
    // it above the first one's (`T0 + 3`), two seconds after that call.
    clock.advance(Duration::from_millis(400));
    assert_eq!(
        g.issue("alice", &()).await.unwrap_err().code(),
        "retry_later"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        g.issue("alice", &()).await.unwrap_err().code(),
        "retry_later"
    );
    clock.advance(Duration::from_secs(1));
    let after = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&after).await.unwrap();
}

// ---------------------------------------------------------------------------
// 3. The global cutoff has the same protection as subjects.

#[tokio::test]
async fn clear_cache_disturbs_a_global_refresh_already_in_flight() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    clock.advance(Duration::from_secs(31)); // the global cutoff is due
    let held = store.hold_global_loads();
    let validation = tokio::spawn({
        let g = g.clone();
        let t = t.clone();
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    while store.global_loads.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    // The refresh read "no global cutoff". Meanwhile another instance
    // revokes everyone, and this one, having missed the event, clears its
    // cache (what a bus subscriber does on resubscribing).
    store.inner.revoke_all_before(T0 + 31).await.unwrap();
    g.clear_cache();
    held.add_permits(1000);
    // The in-flight validation started before: either outcome is fine.
    let _ = validation.await.unwrap();
    store.global_gate.lock().unwrap().take();
    assert_revoked(g.validate::<()>(&t).await, RevokedReason::Global);
}

// ---------------------------------------------------------------------------
// 4. Cancellation.

#[tokio::test]
async fn cancelled_validations_release_their_pending_loads() {
    let (clock, store, b) = setup(&[]);
    let minter = {
        let s = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
        for i in 0..2_000 {
            s.insert(format!("user-{i}"), Cutoff::default());
            store.inner.insert(format!("user-{i}"), Cutoff::default());
        }
        Guard::builder(keys(), s).clock(clock).build().unwrap()
    };
    let g = b.build().unwrap();
    let mut tokens = Vec::new();
    for i in 0..2_000 {
        tokens.push(minter.issue(&format!("user-{i}"), &()).await.unwrap());
    }
    let _held = store.hold_loads();
    let mut tasks = Vec::new();
    for t in tokens {
        let g = g.clone();
        tasks.push(tokio::spawn(async move { g.validate::<()>(&t).await }));
    }
    while store.loads() < 2_000 {
        tokio::task::yield_now().await;
    }
    assert_eq!(g.loads_in_flight(), 2_000);
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        assert!(task.await.unwrap_err().is_cancelled());
    }
    assert_eq!(g.loads_in_flight(), 0, "every flight was released");
    assert_eq!(g.cached_subjects(), 0);
    assert_eq!(g.cached_unknown_subjects(), 0);
}

#[tokio::test]
async fn a_pending_load_survives_the_cancellation_of_one_of_its_waiters() {
    let (_clock, store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.clear_cache();
    let held = store.hold_loads();
    let first = tokio::spawn({
        let (g, t) = (g.clone(), t.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    let second = tokio::spawn({
        let (g, t) = (g.clone(), t.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    while store.loads() < 2 {
        tokio::task::yield_now().await;
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    first.abort();
    let _ = first.await;
    assert_eq!(g.loads_in_flight(), 1, "the second waiter still waits");
    held.add_permits(1000);
    second.await.unwrap().unwrap();
    assert_eq!(g.loads_in_flight(), 0);
}

// ---------------------------------------------------------------------------
// 5. A hung store.

#[tokio::test(start_paused = true)]
async fn a_hung_store_answers_store_unavailable_within_the_timeout() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.store_timeout(Duration::from_secs(2)).build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.clear_cache();
    store.hang(true);
    let start = tokio::time::Instant::now();
    let err = g.validate::<()>(&t).await.unwrap_err();
    assert_eq!(err.code(), "store_unavailable");
    assert!(start.elapsed() <= Duration::from_secs(2));
    // Writes too: the caller learns the outcome is unknown.
    let start = tokio::time::Instant::now();
    assert_eq!(
        g.bump_version("alice").await.unwrap_err().code(),
        "store_unavailable"
    );
    assert_eq!(
        g.revoke_all_before(T0).await.unwrap_err().code(),
        "store_unavailable"
    );
    assert_eq!(
        g.issue("alice", &()).await.unwrap_err().code(),
        "store_unavailable"
    );
    assert!(start.elapsed() <= Duration::from_secs(6));
    drop(clock);
}

#[tokio::test(start_paused = true)]
async fn a_hung_global_refresh_adds_at_most_the_timeout_to_any_request() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b
        .store_timeout(Duration::from_secs(2))
        .cache_ttl(Duration::from_secs(30))
        .build()
        .unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    clock.advance(Duration::from_secs(31));
    // Every global refresh from now on reads the store, then never answers.
    let _never = store.hold_global_loads();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (g, t) = (g.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            // Requests arrive over time while the refresh hangs.
            tokio::time::sleep(Duration::from_millis(100 * i)).await;
            let start = tokio::time::Instant::now();
            let r = g.validate::<()>(&t).await;
            (start.elapsed(), r.map(|_| ()))
        }));
    }
    for task in tasks {
        let (waited, r) = task.await.unwrap();
        assert!(
            waited <= Duration::from_secs(2),
            "a request waited {waited:?} on the store"
        );
        assert_eq!(r.unwrap_err().code(), "store_unavailable");
    }
}

#[tokio::test(start_paused = true)]
async fn a_hung_store_falls_back_to_stale_if_error_when_enabled() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b
        .store_timeout(Duration::from_secs(1))
        .stale_if_error(Duration::from_secs(60))
        .build()
        .unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&t).await.unwrap();
    clock.advance(Duration::from_secs(31));
    store.hang(true);
    g.validate::<()>(&t).await.unwrap();
}

// ---------------------------------------------------------------------------
// 6. Implausible cutoffs and repairs (issue "the bus and the stores").

#[tokio::test]
async fn an_absurdly_far_future_cutoff_is_an_error_not_a_lock_out() {
    let (_clock, store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    let millis = T0 * 1000;
    assert_eq!(
        g.revoke_all_before(millis).await.unwrap_err().code(),
        "invalid_cutoff"
    );
    assert_eq!(
        g.revoke_before("alice", millis).await.unwrap_err().code(),
        "invalid_cutoff"
    );
    assert_eq!(
        store.inner.load_global().await.unwrap(),
        0,
        "nothing written"
    );
    assert!(
        g.apply_event(&CutoffEvent::Global { not_before: millis })
            .is_err()
    );
    assert!(
        g.apply_event(&subject_event("alice", Cutoff::new(0, millis)))
            .is_err()
    );
    g.validate::<()>(&t).await.unwrap();
    // A lock within the horizon is fine.
    g.revoke_before("alice", T0 + 30 * 86_400).await.unwrap();
}

#[tokio::test]
async fn a_repaired_global_cutoff_is_followed_within_the_ttl() {
    let clock = FakeClock::new(T0);
    let store = Arc::new(Repairable::default());
    store.set("alice", Cutoff::default());
    let a = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let b = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let t = a.issue("alice", &()).await.unwrap();
    b.validate::<()>(&t).await.unwrap();
    // A mistaken global revocation far ahead (within the horizon) reaches
    // both instances: everyone is locked out ...
    let mistake = a.revoke_all_before(T0 + 86_400).await.unwrap();
    b.apply_event(&CutoffEvent::Global {
        not_before: mistake,
    })
    .unwrap();
    assert_revoked(a.validate::<()>(&t).await, RevokedReason::Global);
    assert_revoked(b.validate::<()>(&t).await, RevokedReason::Global);
    // ... until the operator lowers the row: both follow within the TTL,
    // without a restart, and even after duplicated old events.
    store.set_global(0);
    clock.advance(Duration::from_secs(31));
    b.apply_event(&CutoffEvent::Global {
        not_before: mistake,
    })
    .unwrap();
    a.validate::<()>(&t).await.unwrap();
    b.validate::<()>(&t).await.unwrap();
    let fresh = a.issue("alice", &()).await.unwrap();
    b.validate::<()>(&fresh).await.unwrap();
}

#[tokio::test]
async fn a_repaired_subject_cutoff_is_followed_within_the_ttl() {
    let clock = FakeClock::new(T0);
    let store = Arc::new(Repairable::default());
    store.set("alice", Cutoff::default());
    let g = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.revoke_before("alice", T0 + 86_400).await.unwrap();
    assert_revoked(g.validate::<()>(&t).await, RevokedReason::NotBefore);
    store.set("alice", Cutoff::default());
    clock.advance(Duration::from_secs(31));
    g.validate::<()>(&t).await.unwrap();
}

// ---------------------------------------------------------------------------
// A slow load that read old data cannot undo a revocation made while it was
// in flight, now that a fresh read replaces the cached cutoff.

#[tokio::test]
async fn a_fresh_read_replaces_the_entry_but_a_stale_one_never_does() {
    let (_clock, store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.clear_cache();
    let held = store.hold_loads();
    let slow = tokio::spawn({
        let (g, t) = (g.clone(), t.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    while store.loads() < 2 {
        tokio::task::yield_now().await;
    }
    g.bump_version("alice").await.unwrap();
    held.add_permits(1000);
    let _ = slow.await.unwrap();
    store.gate.lock().unwrap().take();
    assert_revoked(g.validate::<()>(&t).await, RevokedReason::Version);
}

#[tokio::test]
async fn marking_the_cache_stale_keeps_the_stale_if_error_cover_clearing_does_not() {
    let (_clock, store, b) = setup(&["alice"]);
    let g = b.stale_if_error(Duration::from_secs(600)).build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&t).await.unwrap();
    let loads = store.loads();
    store.fail(true);
    // A bus subscriber resubscribes while the store is down.
    g.mark_cache_stale();
    g.validate::<()>(&t).await.unwrap();
    assert!(store.loads() > loads, "a stale entry is reloaded first");
    // A revocation merged into the stale entry still applies.
    store.fail(false);
    let v1 = store.inner.bump_version("alice").await.unwrap();
    store.fail(true);
    g.apply_event(&subject_event("alice", v1)).unwrap();
    assert_revoked(g.validate::<()>(&t).await, RevokedReason::Version);
    g.clear_cache();
    assert_eq!(
        g.validate::<()>(&t).await.unwrap_err().code(),
        "store_unavailable"
    );
}
