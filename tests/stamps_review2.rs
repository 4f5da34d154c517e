//! Adversarial review, round 2, of the read stamps (commit 08bca63: a
//! 12-bit sequence that saturates into EQUAL stamps, ties keeping the
//! answer that rejects more; `mark_stale` moving stamps back).
//!
//! FINDINGS (each test failed on 08bca63; all are fixed and kept as
//! regressions, each message naming the promise it checks):
//! - `f1_*`: the global cutoff's tie path after `clear_cache`. `clear`
//!   drops the global's freshness but keeps its stamp (and value). Once the
//!   sequence is used up (4 096 reads during a clock step back, or within
//!   one millisecond), every later global read is stamped exactly like the
//!   cached one, so `loaded_global` takes the tie branch: `fetch_max`. An
//!   operator who lowers a mistaken global cutoff and calls `clear_cache`
//!   "to follow at once" is not followed, by any read, until the wall
//!   clock has caught up with the step (minutes/hours), and logins keep
//!   failing. The subject cache does not have this (a cleared entry is
//!   vacant; see `held_*`). Fixed: `clear` and `mark_stale` reset the
//!   global's stamp, so the next refresh to land is taken as the latest.
//! - `f2_*`: the same tie after `mark_cache_stale`: `mark_stale` restamps
//!   subject entries back (so a later read outranks them) but leaves the
//!   global's stamp, so no global read made during the rest of the step
//!   back is ever recorded as fresh: every request reads the global cutoff
//!   from the store again (and a repair is not followed either). Fixed
//!   with the same reset.
//! - `f3_*`: `limit_cache_age` (bus down) and single flight. The join
//!   check and the "too old to decide on" check compare the flight's stamp
//!   with the full TTL, ignoring the age margin, so a request joins (and
//!   decides from) a load a parked request started 20 s ago while the age
//!   is limited to 1 s: a token revoked on another instance 20 s earlier
//!   is accepted, far past `liveness_timeout + degraded_max_age`. Subject
//!   loads and the global refresh alike. Fixed: both checks use the
//!   reduced age while it is in force.
//!
//! HELD (attacks tried that the code withstood; these tests pass):
//! - `held_*` below, each with a comment saying what was tried.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::fixture::{Store, T0, assert_revoked, keys, setup};
use common::repairable::Repairable;
use jwt_revoke::{
    Cutoff, CutoffStore, Error, FakeClock, Guard, RefreshKey, RevokedReason, SessionConfig,
};

/// 4 096: a full 12-bit sequence.
const SEQ: usize = 1 << 12;

/// A second instance over the same store, without a bus.
fn other_instance(clock: &FakeClock, store: &Store) -> Guard<Store> {
    Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// Hands out `n` read stamps on `g`'s subject cache without touching the
/// subjects under test (each `forget` takes one stamp).
fn burn_stamps<S: CutoffStore>(g: &Guard<S>, n: usize) {
    for _ in 0..n {
        g.forget("ghost-not-alice");
    }
}

/// Moves the guard's clock and Tokio's paused clock together.
async fn advance(clock: &FakeClock, by: Duration) {
    clock.advance(by);
    tokio::time::advance(by).await;
}

/// A guard over a repairable store, its clock stepped back by 10 minutes
/// after a first read at `T0`, and its sequence used up during the step
/// (4 096 reads: a few minutes of ordinary traffic). Returns a token
/// minted after the step; the login read the global cutoff, so the cached
/// global carries the saturated stamp.
async fn saturated_after_step_back(
    ttl: Duration,
) -> (FakeClock, Arc<Repairable>, Guard<Arc<Repairable>>, String) {
    let clock = FakeClock::new(T0);
    let store = Arc::new(Repairable::default());
    store.set("alice", Cutoff::default());
    let g = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .cache_ttl(ttl)
        .build()
        .unwrap();
    g.issue("alice", &()).await.unwrap(); // stamps of T0
    clock.set(T0 - 600); // NTP steps the clock back by 10 minutes
    burn_stamps(&g, SEQ); // the sequence of T0 is used up
    let t = g.issue("alice", &()).await.unwrap(); // global read, saturated stamp
    g.validate::<()>(&t).await.unwrap();
    (clock, store, g, t)
}

// ===========================================================================
// F1. clear_cache does not make a repaired global cutoff followed.

/// A mistaken `revoke_all_before` far ahead (within the horizon) locks
/// everyone out; the operator lowers the global row and calls
/// `clear_cache`, as the README says, "to follow at once". During the step
/// back the refresh after the clear is stamped like the cached global read,
/// the tie keeps the maximum, and everyone stays locked out.
#[tokio::test]
async fn f1_clear_cache_after_a_global_repair_follows_it_at_once_during_a_step_back() {
    let (clock, store, g, t) = saturated_after_step_back(Duration::from_secs(30)).await;
    let now = T0 - 600;
    g.revoke_all_before(now + 86_400).await.unwrap(); // the mistake
    assert_revoked(
        g.validate::<()>(&t).await,
        RevokedReason::Global,
        "locked out",
    );

    store.set_global(0); // the repair, by hand
    g.clear_cache();
    let at_once = g.validate::<()>(&t).await.map(|_| ());
    // And "within the cache TTL" too, after the clear.
    clock.advance(Duration::from_secs(31));
    let after_ttl = g.validate::<()>(&t).await.map(|_| ());
    let login = g
        .issue("alice", &())
        .await
        .map(|_| ())
        .map_err(|e| e.code());
    assert!(
        at_once.is_ok() && after_ttl.is_ok() && login.is_ok(),
        "Repairing a cutoff (\"Every instance follows within the cache TTL ... To follow at \
         once, call Guard::clear_cache on every instance after the repair\") / How the cache \
         stays right (\"a fresh read replaces the cached value\"): the clock stepped back by \
         10 min and 4 096 reads used up the sequence; after the global row was lowered and \
         clear_cache called, the token got {at_once:?} at once, {after_ttl:?} a TTL later, \
         and a login {login:?}: every global read after the clear is stamped like the cached \
         one and the tie keeps the mistaken maximum until the clock catches up with the step"
    );
}

// ===========================================================================
// F2. mark_cache_stale: the global cutoff is never fresh again.

/// After `mark_cache_stale` the next validation asks the store, and the
/// read it makes is fresh again (as for subjects, whose stamps `mark_stale`
/// moves back). The global's stamp is not moved back: each later refresh
/// ties with it, is merged as a floor, never made fresh, and every request
/// reads the global cutoff from the store for the rest of the step back.
#[tokio::test]
async fn f2_after_mark_cache_stale_the_global_read_is_fresh_again() {
    let (clock, store, g, t) = saturated_after_step_back(Duration::from_secs(30)).await;
    let before = store.global_loads();
    g.validate::<()>(&t).await.unwrap();
    assert_eq!(store.global_loads(), before, "the global is cached");

    g.mark_cache_stale();
    for _ in 0..5 {
        g.validate::<()>(&t).await.unwrap();
        clock.advance(Duration::from_secs(1));
    }
    let reads = store.global_loads() - before;
    assert_eq!(
        reads, 1,
        "Guard::mark_cache_stale (\"Makes every cached cutoff not fresh, so the next \
         validation of each subject (and of the global cutoff) asks the store\") / Clock skew \
         (\"reads are stamped by a clock that never goes back, so a later read still replaces \
         an earlier one\"): after mark_cache_stale during a step back with a used-up \
         sequence, 5 validations over 5 s read the global cutoff {reads} times (the read \
         after the mark ties with the cached global's stamp, which mark_stale did not move \
         back, so it is never fresh again until the clock catches up)"
    );
}

/// The repair variant of F2: after `mark_cache_stale` the global is read
/// from the store, but a lowered (repaired) value is not followed.
#[tokio::test]
async fn f2_a_global_repair_is_followed_after_mark_cache_stale() {
    let (clock, store, g, t) = saturated_after_step_back(Duration::from_secs(30)).await;
    g.revoke_all_before(T0 - 600 + 86_400).await.unwrap(); // the mistake
    store.set_global(0);
    g.mark_cache_stale();
    clock.advance(Duration::from_secs(31)); // and a full TTL on the clock
    let r = g.validate::<()>(&t).await.map(|_| ());
    assert!(
        r.is_ok(),
        "Repairing a cutoff (\"Every instance follows within the cache TTL ... a fresh read \
         replaces the cached value\"): global row lowered, mark_cache_stale, then a TTL on the \
         clock; the token still got {r:?} (each read of the repaired row ties with the \
         cached global's stamp and is merged as a floor)"
    );
}

// ===========================================================================
// F3. limit_cache_age and single flight.

/// The bus is down: the subscriber limits the cache age to 1 s. A request
/// starts alice's load (reads v0) and its handler stops polling it. Another
/// instance logs alice out (the event is lost). 20 s later a new request
/// joins the old load (its stamp is checked against the 30 s TTL, not the
/// 1 s age) and accepts the revoked token.
#[tokio::test(start_paused = true)]
async fn f3_a_request_under_limit_cache_age_never_decides_from_a_load_older_than_the_age() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .store_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let other = other_instance(&clock, &store);
    let old = other.issue("alice", &()).await.unwrap();
    g.limit_cache_age(Some(Duration::from_secs(1))); // bus down

    let _gate = store.hold_loads();
    let loads = store.loads();
    let mut parked = Box::pin(g.validate::<()>(&old));
    assert!(futures::poll!(parked.as_mut()).is_pending());
    assert_eq!(store.loads(), loads + 1, "the parked request read v0");

    other.bump_version("alice").await.unwrap(); // the event is lost
    advance(&clock, Duration::from_secs(20)).await;
    store.release_loads();

    let joins = g.stats().flight_joins;
    let r = g.validate::<()>(&old).await.map(|_| ());
    let joined = g.stats().flight_joins > joins;
    drop(parked);
    assert_revoked(
        r,
        RevokedReason::Version,
        &format!(
            "Many instances (\"bus closed or silent: liveness_timeout + degraded_max_age\") / \
             Guard::limit_cache_age (\"cached cutoffs older than max_age are reloaded from the \
             store instead of trusted\"): with the age limited to 1 s, a request 20 s after \
             the revocation returned decided from a read that started before it (joined the \
             parked load: {joined}) and accepted the revoked token"
        ),
    );
}

/// The same for the global cutoff: a parked refresh is joined 20 s later
/// while the age is limited to 1 s.
#[tokio::test(start_paused = true)]
async fn f3_a_global_refresh_under_limit_cache_age_is_not_joined_past_the_age() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .store_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let other = other_instance(&clock, &store);
    let old = other.issue("alice", &()).await.unwrap();
    g.validate::<()>(&old).await.unwrap();
    g.limit_cache_age(Some(Duration::from_secs(1))); // bus down
    advance(&clock, Duration::from_secs(2)).await;

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

    other.revoke_all_before(T0 + 2).await.unwrap(); // the event is lost
    advance(&clock, Duration::from_secs(20)).await;
    gate.add_permits(1000);

    let r = g.validate::<()>(&old).await.map(|_| ());
    drop(parked);
    assert_revoked(
        r,
        RevokedReason::Global,
        "Many instances (\"bus closed or silent: liveness_timeout + degraded_max_age\") / \
         Guard::limit_cache_age (\"the global cutoff is reloaded as often\"): with the age \
         limited to 1 s, a request 20 s after revoke_all_before returned on another instance \
         joined a parked global refresh that started before it and accepted the token",
    );
}

// ===========================================================================
// HELD: attacks that did not break anything.

/// HELD. The subject analog of F1: with the same used-up sequence during a
/// step back, a lowered subject cutoff is followed at once after
/// `clear_cache` (the cleared entry is vacant, any read fills it) and
/// after `mark_cache_stale` (its stamp is moved back below every later
/// read, sequence bits and all).
#[tokio::test]
async fn held_a_subject_repair_is_followed_after_clear_or_mark_stale_during_a_step_back() {
    let (_clock, store, g, t) = saturated_after_step_back(Duration::from_secs(30)).await;
    g.revoke_before("alice", T0 - 600 + 86_400).await.unwrap(); // mistake
    assert_revoked(
        g.validate::<()>(&t).await,
        RevokedReason::NotBefore,
        "locked",
    );
    store.set("alice", Cutoff::default());
    g.clear_cache();
    g.validate::<()>(&t)
        .await
        .expect("a subject repair is followed at once after clear_cache");

    g.revoke_before("alice", T0 - 600 + 86_400).await.unwrap(); // again
    store.set("alice", Cutoff::default());
    g.mark_cache_stale();
    g.validate::<()>(&t)
        .await
        .expect("a subject repair is followed after mark_cache_stale");
}

/// HELD. A tie never accepts a revoked token: with the sequence used up, a
/// slow read of v0 and a later read of v1 (another instance logged alice
/// out, no bus) carry equal stamps; whichever lands last, the entry keeps
/// v1 and the old token is rejected.
#[tokio::test]
async fn held_equal_stamps_never_let_an_older_read_undo_a_revocation() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let other = other_instance(&clock, &store);
    g.issue("bob-not-here", &()).await.unwrap_err(); // a stamp at T0
    clock.set(T0 - 600);
    burn_stamps(&g, SEQ);
    let old = other.issue("alice", &()).await.unwrap();

    let loads = store.loads();
    let held = store.hold_loads();
    let slow = tokio::spawn({
        let (g, t) = (g.clone(), old.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    common::fixture::until(|| store.loads() == loads + 1).await; // read v0
    *store.gate.lock().unwrap() = None;
    other.bump_version("alice").await.unwrap();
    g.issue("alice", &()).await.unwrap(); // reads v1, equal stamp, caches it
    held.add_permits(1);
    let _ = slow.await.unwrap(); // v0 with an equal stamp lands last
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Version,
        "a tie keeps the answer that rejects more",
    );
}

/// HELD. A saturated sequence during a long step back: a read made during
/// the step is fresh on the clock until the step's start + TTL, i.e. at
/// most TTL + s after it started, not longer.
#[tokio::test]
async fn held_a_read_during_a_saturated_step_back_is_fresh_at_most_ttl_plus_s() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let other = other_instance(&clock, &store);
    g.forget("ghost-not-alice"); // a stamp at T0
    clock.set(T0 - 600);
    burn_stamps(&g, 3 * SEQ);
    let old = g.issue("alice", &()).await.unwrap(); // read at T0 - 600
    other.bump_version("alice").await.unwrap();
    // TTL + s after the read on the clock is T0 + 30.
    clock.set(T0 + 30);
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Version,
        "Clock skew: fresh at most s longer, with a used-up sequence too",
    );
}

/// HELD. An "unknown" cached with a saturated stamp during a step back is
/// gone once the clock reaches its stamp's time + the negative TTL: the
/// next read (a later stamp) replaces it; reads tying with it meanwhile
/// never cache a cutoff over it.
#[tokio::test]
async fn held_an_unknown_with_a_saturated_stamp_goes_away_after_the_negative_ttl() {
    let (clock, _store, b) = setup(&["alice"]);
    let g = b.negative_ttl(Duration::from_secs(5)).build().unwrap();
    let token = g.issue("alice", &()).await.unwrap(); // stamps of T0
    clock.set(T0 - 60);
    burn_stamps(&g, SEQ);
    g.forget("alice"); // unknown, saturated stamp (time part T0)
    assert!(matches!(
        g.validate::<()>(&token).await,
        Err(Error::UnknownSubject)
    ));
    // A login read ties with the unknown: not cached over it.
    let _ = g.issue("alice", &()).await;
    assert!(matches!(
        g.validate::<()>(&token).await,
        Err(Error::UnknownSubject)
    ));
    clock.set(T0 + 5);
    g.validate::<()>(&token)
        .await
        .expect("after the negative TTL (on the clock) the store decides again");
}

/// HELD. The session cache (a CutoffCache of its own, own stamps) with a
/// used-up sequence during a step back: a session revoked on another
/// instance is seen after `mark_cache_stale` and after `clear_cache`, and
/// a session revoked locally stays revoked whatever ties follow.
#[tokio::test]
async fn held_sessions_with_a_used_up_sequence_never_revive() {
    let (clock, store, b) = setup(&["alice"]);
    let cfg = || SessionConfig::new(RefreshKey::new(common::SECRET).unwrap());
    let g = b.sessions(cfg()).build().unwrap();
    let other = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .sessions(cfg())
        .build()
        .unwrap();
    let first = g.login("alice", &()).await.unwrap();
    g.validate::<()>(&first.access_token).await.unwrap();
    clock.set(T0 - 600);
    let s = g.login("alice", &()).await.unwrap();
    // 4 096 session loads during the step: the session cache's sequence.
    for _ in 0..SEQ {
        g.clear_cache();
        g.validate::<()>(&s.access_token).await.unwrap();
    }
    other.revoke_session("alice", &s.session_id).await.unwrap();
    g.mark_cache_stale();
    assert!(matches!(
        g.validate::<()>(&s.access_token).await,
        Err(Error::SessionRevoked)
    ));
    g.clear_cache();
    assert!(matches!(
        g.validate::<()>(&s.access_token).await,
        Err(Error::SessionRevoked)
    ));
    // A local revocation, then more tying reads.
    let s2 = g.login("alice", &()).await.unwrap();
    g.validate::<()>(&s2.access_token).await.unwrap();
    g.revoke_session("alice", &s2.session_id).await.unwrap();
    for _ in 0..3 {
        assert!(matches!(
            g.validate::<()>(&s2.access_token).await,
            Err(Error::SessionRevoked)
        ));
    }
}
