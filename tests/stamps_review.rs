//! Adversarial review of the read stamps of commit b27c43a (one 64-bit
//! hybrid-logical-clock stamp per entry, `(start ms << 16) | sequence`,
//! from which freshness is derived; `mark_stale` moves stamps back).
//!
//! FINDINGS (each test failed on b27c43a; all are fixed and kept as
//! regressions, each message naming the promise it checks):
//! - `f1_*`: the 16-bit sequence overflows into the time part: after 65 536
//!   stamps within one clock millisecond (or while the clock is behind the
//!   last stamp, after a step back) every further stamp's "start" moves one
//!   millisecond into the future, so entries (and the stale window) outlive
//!   the TTL / the clock-skew bound. Fixed: the time part is never ahead of
//!   the latest clock reading; a used-up sequence gives equal stamps, and a
//!   tie keeps the answer that rejects more.
//! - `f2_*`: `mark_cache_stale` restamps an entry to `now - ttl`, clamped to
//!   -2^47 ms; with a cache TTL longer than now + 2^47 ms (about 4 500
//!   years, e.g. "cache forever, the bus tells us") the clamp leaves the
//!   entry fresh: marking stale is a no-op and a missed revocation is never
//!   seen. Fixed: the builder accepts cache TTLs up to 10 years.
//! - `f3_*`: a clock beyond 2^47 ms (year 6429): every stamp is clamped, so
//!   every read is "a TTL old" when it returns; every validation and every
//!   `issue` answers `store_unavailable` although the store is healthy.
//!   Fixed: stamps' time parts cover ±2^51 ms (±71 000 years); beyond, the
//!   guard fails closed (`f3_a_clock_beyond_the_stamps_range_fails_closed`).
//! - `f4_*` (older than b27c43a, same derived-freshness check): a cache TTL
//!   under one millisecond is accepted by the builder and makes every read
//!   "a TTL old": the guard answers `store_unavailable` to everything.
//!   Fixed: the builder refuses a cache TTL under 1 ms.
//!
//! HELD (attacks tried that the code withstood; these tests pass):
//! - `held_*` below, each with a comment saying what was tried.

mod common;

use std::time::Duration;

use common::fixture::{Store, T0, assert_revoked, keys, setup};
use jwt_revoke::{Cutoff, CutoffEvent, Error, FakeClock, Guard, RevokedReason};

/// A second instance over the same store, without a bus.
fn other_instance(clock: &FakeClock, store: &Store) -> Guard<Store> {
    Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// Hands out `n` read stamps on `g` without touching `alice`: each
/// `forget` of an unrelated subject takes one stamp (it caches an
/// "unknown subject" answer), like each store load does.
fn burn_stamps(g: &Guard<Store>, n: usize) {
    for _ in 0..n {
        g.forget("ghost-not-alice");
    }
}

const SEQ: usize = 1 << 16;

// ===========================================================================
// F1. The sequence overflows into the time part.

/// No clock step at all: the clock simply did not move while 3 * 65 536
/// stamps were handed out (a frozen or coarse clock, or a burst). The
/// next read is stamped 3 ms in the future and stays fresh 3 ms past its
/// TTL: another instance's revocation is missed past the promised bound.
#[tokio::test]
async fn f1_a_read_after_65536_stamps_in_one_millisecond_is_fresh_for_the_ttl_only() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let other = other_instance(&clock, &store);
    let old = other.issue("alice", &()).await.unwrap();

    burn_stamps(&g, 3 * SEQ);
    let loads = store.loads();
    g.validate::<()>(&old).await.unwrap(); // the read starts at T0 (clock)
    assert_eq!(store.loads(), loads + 1, "alice was read at T0");

    other.bump_version("alice").await.unwrap(); // returns at T0 too
    clock.advance(Duration::from_millis(30_001)); // 1 ms past the TTL
    let loads = store.loads();
    let r = g.validate::<()>(&old).await.map(|_| ());
    assert_revoked(
        r,
        RevokedReason::Version,
        &format!(
            "How the cache stays right (\"A fresh read ... is fresh for the TTL from when it \
             started\") / Other instances: bounded (\"Without a bus, within the cache TTL ... \
             counted from when a cached read *started*\"): alice's cutoff was read at T0 and the \
             revocation returned at T0, yet 30.001 s later (TTL 30 s) the revoked token is still \
             accepted from the cache (store read: {}); the read's stamp was 3 ms ahead of the \
             clock because the 16-bit sequence overflowed into the time part",
            store.loads() > loads
        ),
    );
}

/// The README's clock-skew bound: a clock stepped back by s keeps a cached
/// cutoff fresh at most s longer. During the step, stamps keep the time of
/// the last stamp before it and count up the sequence; every 65 536 of them
/// push the time part one more millisecond ahead, beyond s.
#[tokio::test]
async fn f1_a_clock_stepped_back_by_s_keeps_a_cutoff_fresh_at_most_s_longer() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let other = other_instance(&clock, &store);
    let old = other.issue("alice", &()).await.unwrap();
    // A first read at T0 sets the stamps' time to T0.
    g.forget("warm-up");

    let s = 10; // the clock steps back 10 s
    clock.set(T0 - s);
    burn_stamps(&g, 3 * SEQ);
    g.validate::<()>(&old).await.unwrap(); // read starts at T0 - 10 s
    other.bump_version("alice").await.unwrap();

    // Fresh at most TTL + s from the read: until T0 - 10 + 30 + 10 = T0 + 30.
    clock.set(T0 + 30);
    clock.advance(Duration::from_millis(1));
    let r = g.validate::<()>(&old).await.map(|_| ());
    assert_revoked(
        r,
        RevokedReason::Version,
        "Clock skew (\"A clock stepped *back* by *s* seconds keeps a cached cutoff fresh *s* \
         seconds longer\"): the clock stepped back by 10 s, alice was read right after, and \
         TTL + s + 1 ms after that read the revoked token is still accepted: the read's stamp \
         ran 3 ms further ahead than the step (sequence overflow into the time part)",
    );
}

/// The stale-if-error window is promised exact to the millisecond; the
/// same overflow stretches it, so a revoked token is served stale past it.
#[tokio::test]
async fn f1_the_stale_if_error_window_is_not_stretched_by_a_used_up_sequence() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .stale_if_error(Duration::from_secs(60))
        .build()
        .unwrap();
    let other = other_instance(&clock, &store);
    let old = other.issue("alice", &()).await.unwrap();

    burn_stamps(&g, 3 * SEQ);
    g.validate::<()>(&old).await.unwrap(); // read at T0
    other.bump_version("alice").await.unwrap();
    store.fail(true);
    // TTL + window + 1 ms after the read.
    clock.advance(Duration::from_millis(90_001));
    let r = g.validate::<()>(&old).await.map(|_| ());
    assert!(
        matches!(r, Err(Error::StoreUnavailable(_))),
        "Guarantees (\"With stale_if_error, the bounds stretch by the stale window while the \
         store fails, and only then\") / Security (\"whose window is exact to the millisecond\"): \
         alice was read at T0 (TTL 30 s, window 60 s); at T0 + 90.001 s, store down, the \
         revoked token got {r:?} instead of store_unavailable"
    );
}

/// The same overflow on "unknown subject" answers: `forget` promises the
/// negative TTL, after which the store decides again. A user deleted by
/// mistake and restored is refused past the negative TTL.
#[tokio::test]
async fn f1_an_unknown_subject_answer_lasts_the_negative_ttl_only() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.negative_ttl(Duration::from_secs(5)).build().unwrap();
    let other = other_instance(&clock, &store);
    let token = other.issue("alice", &()).await.unwrap();

    burn_stamps(&g, 3 * SEQ);
    g.forget("alice"); // at T0; alice stays in the store
    clock.advance(Duration::from_millis(5_001));
    let r = g.validate::<()>(&token).await.map(|_| ());
    assert!(
        r.is_ok(),
        "Guard::forget (\"'unknown subject' is cached for the negative TTL ... after the \
         negative TTL, the store decides again\"): 5.001 s after forget (negative TTL 5 s) \
         the store holds alice but her token got {r:?}"
    );
}

// ===========================================================================
// F2. mark_cache_stale with a very long cache TTL.

/// A deployment that relies on its bus sets a cache TTL of "forever" and
/// counts on the subscriber's `mark_cache_stale` after a gap. Restamping
/// to `now - ttl` is clamped at -2^47 ms, so the entry stays fresh.
#[tokio::test]
async fn f2_cache_ttls_beyond_ten_years_are_refused_at_build() {
    for ttl in [
        Duration::from_secs(10_000 * 365 * 86_400),
        Duration::MAX,
        Duration::from_secs(11 * 366 * 86_400),
    ] {
        let (_clock, _store, b) = setup(&["alice"]);
        let built = b.cache_ttl(ttl).build().map(|_| ()).map_err(|e| e.code());
        assert_eq!(
            built,
            Err("invalid_config"),
            "GuardBuilder::cache_ttl (\"at most 10 years, or build fails\"): {ttl:?} gave {built:?}"
        );
    }
}

/// At the longest TTL the builder accepts, `mark_cache_stale` still makes
/// the entry not fresh: a revocation missed while the bus was down is seen.
#[tokio::test]
async fn f2_mark_cache_stale_works_at_the_longest_accepted_ttl() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b
        .cache_ttl(Duration::from_secs(10 * 366 * 86_400))
        .build()
        .unwrap();
    let other = other_instance(&clock, &store);
    let old = other.issue("alice", &()).await.unwrap();
    g.validate::<()>(&old).await.unwrap(); // cached

    // Instance two logs alice out while this instance's bus is down (the
    // event is missed); the subscriber reconnects and marks the cache stale.
    other.bump_version("alice").await.unwrap();
    g.mark_cache_stale();
    let loads = store.loads();
    let r = g.validate::<()>(&old).await.map(|_| ());
    assert_revoked(
        r,
        RevokedReason::Version,
        &format!(
            "Guard::mark_cache_stale (\"Makes every cached cutoff not fresh, so the next \
             validation of each subject ... asks the store\") / Liveness (\"it marks what it \
             cached before as stale (reloaded before it is trusted again)\"): with a 10-year \
             cache TTL the entry is still fresh after mark_cache_stale (store read: {}), and a \
             token revoked on another instance is accepted",
            store.loads() > loads
        ),
    );
}

// ===========================================================================
// F3. A clock beyond the stamps' range.

/// A guard over a store holding alice, its clock at `unix_seconds`.
fn guard_at(
    unix_seconds: i64,
) -> Guard<std::sync::Arc<common::counting::Counting<jwt_revoke::MemoryStore>>> {
    let store = std::sync::Arc::new(common::counting::Counting::new(
        jwt_revoke::MemoryStore::with_clock(jwt_revoke::FakeClock::new(0)),
    ));
    store.inner.insert("alice", Cutoff::default());
    Guard::builder(keys(), store)
        .clock(FakeClock::new(unix_seconds))
        .build()
        .unwrap()
}

/// Unix time 2^47 ms + 1 000 000 s (year ~6429): with 16-bit sequences
/// every stamp was clamped to 2^47 - 1 ms, so every read returned "a TTL
/// after it started" and was refused as too old.
#[tokio::test]
async fn f3_a_clock_past_2_pow_47_ms_still_issues() {
    let far = (1i64 << 47) / 1000 + 1_000_000;
    let g = guard_at(far);
    let r = g.issue("alice", &()).await;
    assert!(
        r.is_ok(),
        "Errors (\"store_unavailable: the store failed or did not answer within \
         store_timeout\") / How the cache stays right (\"fresh for the TTL from when it \
         started\"): with the clock at Unix second {far} (a valid i64 time; the old explicit \
         expiry handled it) and a healthy store, issue answered {:?}",
        r.as_ref().err()
    );
}

/// Beyond the stamps' range (±2^51 ms) the guard fails closed: a read
/// counts as a TTL old when it returns, never as fresh.
#[tokio::test]
async fn f3_a_clock_beyond_the_stamps_range_fails_closed() {
    let far = (1i64 << 51) / 1000 + 1_000_000;
    let g = guard_at(far);
    let r = g
        .issue("alice", &())
        .await
        .map(|_| ())
        .map_err(|e| e.code());
    assert_eq!(
        r,
        Err("store_unavailable"),
        "Stamp range (\"a clock beyond that range fails closed\"): with the clock at Unix \
         second {far}, issue answered {r:?}"
    );
    assert_eq!(g.cached_subjects(), 0, "nothing was cached as fresh");
}

// ===========================================================================
// F4. A sub-millisecond cache TTL (not introduced by b27c43a).

#[tokio::test]
async fn f4_a_sub_millisecond_cache_ttl_is_refused_at_build() {
    let (_clock, _store, b) = setup(&["alice"]);
    let built = b
        .cache_ttl(Duration::from_micros(500))
        .build()
        .map(|_| ())
        .map_err(|e| e.code());
    assert_eq!(
        built,
        Err("invalid_config"),
        "GuardBuilder::cache_ttl (\"at least 1 ms\"): a 500 µs TTL would be 0 ms, and every \
         read would be 'a TTL old' when it returns (store_unavailable for every request)"
    );
    let (_clock, _store, b) = setup(&["alice"]);
    let g = b
        .cache_ttl(Duration::from_millis(1))
        .store_timeout(Duration::from_micros(500))
        .build()
        .unwrap();
    g.issue("alice", &()).await.expect("a 1 ms TTL works");
}

// ===========================================================================
// HELD: attacks that did not break anything.

/// HELD. Clock skew without the overflow: a read before a step back of s
/// is fresh exactly TTL + s (clock) and not a millisecond more.
#[tokio::test]
async fn held_a_step_back_keeps_an_entry_fresh_exactly_s_longer() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let other = other_instance(&clock, &store);
    let old = other.issue("alice", &()).await.unwrap();
    g.validate::<()>(&old).await.unwrap(); // read at T0
    other.bump_version("alice").await.unwrap();
    clock.set(T0 - 10);
    // A read after the step (another subject) must not disturb alice.
    g.forget("bob");
    clock.set(T0 + 29);
    g.validate::<()>(&old)
        .await
        .expect("still fresh within the TTL on the clock");
    clock.set(T0 + 30);
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Version,
        "Clock skew: at most s longer",
    );
}

/// HELD. A later read wins after a step back, for "unknown subject"
/// answers too, both ways: a login read made after the step replaces an
/// "unknown" cached before it, and an "unknown" read made after the step
/// replaces a cutoff cached before it.
#[tokio::test]
async fn held_a_later_read_wins_over_unknown_answers_after_a_step_back() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    g.forget("alice"); // unknown, stamped at T0
    clock.set(T0 - 60);
    let token = g.issue("alice", &()).await.expect("issue reads the store");
    g.validate::<()>(&token)
        .await
        .expect("the login read replaced the older unknown answer");

    let minted = g.issue("alice", &()).await.unwrap();
    clock.set(T0 - 100);
    store.inner.remove("alice");
    assert!(matches!(
        g.issue("alice", &()).await,
        Err(Error::UnknownSubject)
    ));
    assert!(
        matches!(g.validate::<()>(&minted).await, Err(Error::UnknownSubject)),
        "a later unknown read replaced the older cutoff"
    );
}

/// HELD. Extreme cutoffs round-trip through the 32-bit words, as fresh
/// reads and as floors (local and remote).
#[tokio::test]
async fn held_extreme_versions_and_not_before_round_trip() {
    let (clock, store, b) = setup(&["big", "neg"]);
    store
        .inner
        .insert("big", Cutoff::new(u64::MAX - 1, i64::MIN));
    store.inner.insert("neg", Cutoff::new(1 << 32, -1));
    let g = b.build().unwrap();
    let other = other_instance(&clock, &store);
    let big = g.issue("big", &()).await.unwrap();
    for _ in 0..3 {
        let v = g.validate::<()>(&big).await.unwrap();
        assert_eq!(v.version(), Some(u64::MAX - 1));
    }
    let neg = g.issue("neg", &()).await.unwrap();
    g.validate::<()>(&neg).await.unwrap();
    // Remote floor to u64::MAX on a fresh entry.
    let c = other.bump_version("big").await.unwrap();
    assert_eq!(c.version, u64::MAX);
    g.apply_event(&CutoffEvent::Subject {
        sub: "big".into(),
        cutoff: c,
    })
    .unwrap();
    assert_revoked(
        g.validate::<()>(&big).await,
        RevokedReason::Version,
        "a floor at u64::MAX",
    );
    // Local floor raising version across the 32-bit word boundary.
    g.bump_version("neg").await.unwrap();
    assert_revoked(
        g.validate::<()>(&neg).await,
        RevokedReason::Version,
        "1<<32 bumped",
    );
}

/// HELD. Floors near time 0: a floor created at clock 0 is never fresh
/// (the next request reads the store) and a read at clock 0 replaces it.
#[tokio::test]
async fn held_a_floor_at_time_zero_is_never_fresh() {
    let clock = FakeClock::new(0);
    // (The record was created before the guard's time.)
    let store = std::sync::Arc::new(common::counting::Counting::new(
        jwt_revoke::MemoryStore::with_clock(jwt_revoke::FakeClock::new(-10)),
    ));
    store.inner.insert("alice", Cutoff::default());
    let g = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let old = g.issue("alice", &()).await.unwrap();
    g.clear_cache();
    g.bump_version("alice").await.unwrap(); // a floor, no entry before
    let loads = store.loads();
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Version,
        "floor at 0",
    );
    assert_eq!(store.loads(), loads + 1, "a floor is not fresh");
    let new = g.issue("alice", &()).await.unwrap();
    let loads = store.loads();
    g.validate::<()>(&new).await.unwrap();
    g.validate::<()>(&new).await.unwrap();
    assert_eq!(store.loads(), loads, "the read at 0 made it fresh");
}

/// HELD. mark_cache_stale then loads, with an ordinary TTL and a clock
/// stepped back: the entry is no longer fresh, a read made before the mark
/// does not cache, and the read after it does.
#[tokio::test]
async fn held_mark_cache_stale_after_a_step_back_forces_a_reload() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let other = other_instance(&clock, &store);
    let old = other.issue("alice", &()).await.unwrap();
    g.validate::<()>(&old).await.unwrap();
    clock.set(T0 - 20);
    other.bump_version("alice").await.unwrap();
    g.mark_cache_stale();
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Version,
        "mark stale after a step back",
    );
    let loads = store.loads();
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Version,
        "cached",
    );
    assert_eq!(
        store.loads(),
        loads,
        "the read after the mark is fresh again"
    );
}

/// HELD. A read that started before `mark_cache_stale` and returns after
/// it does not cache (its restamped neighbours cannot make it win either):
/// the next request reads the store and sees the revocation.
#[tokio::test]
async fn held_a_read_started_before_mark_cache_stale_does_not_cache() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let other = other_instance(&clock, &store);
    let old = other.issue("alice", &()).await.unwrap();
    g.validate::<()>(&old).await.unwrap();
    g.mark_cache_stale();
    let loads = store.loads();
    let held = store.hold_loads();
    let slow = tokio::spawn({
        let (g, t) = (g.clone(), old.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    common::fixture::until(|| store.loads() == loads + 1).await;
    *store.gate.lock().unwrap() = None;
    other.bump_version("alice").await.unwrap();
    g.mark_cache_stale();
    held.add_permits(1);
    let _ = slow.await.unwrap();
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Version,
        "mark_cache_stale: loads already under way do not cache what they read",
    );
}
