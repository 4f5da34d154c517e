//! The read-stamp clock after a clock glitch: one wrong reading (beyond the
//! stamps' range, or far ahead, e.g. the year 50000) and then the right
//! time again.
//!
//! The rule: the read-stamp clock recovers after a glitch; a bad reading
//! fails closed while it lasts and leaves nothing behind. Before it, one
//! such reading left the stamps' time part at the end of its range (or far
//! ahead) for good: every later read was fresh for millennia, so another
//! instance's revocation was never seen after the cache TTL, the bus's
//! degraded age limit limited nothing, and an "unknown subject" answer made
//! during the glitch outlived its negative TTL, until a restart.

mod common;

use std::time::Duration;

use common::fixture::{Store, T0, assert_revoked, keys, setup};
use jwt_revoke::{Error, FakeClock, Guard, RefreshKey, RevokedReason, SessionConfig};

/// 2⁵¹ ms and a little more, in Unix seconds: beyond the stamps' range.
const BEYOND_RANGE: i64 = (1 << 51) / 1000 + 1_000;
/// 50000-01-01T00:00:00Z in Unix seconds: within the range, far ahead.
const YEAR_50000: i64 = 1_515_680_380_800;

/// A second instance over the same store, without a bus.
fn other_instance(clock: &FakeClock, store: &Store) -> Guard<Store> {
    Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// An HS256 token over the test secret, issued at `iat` (Unix seconds).
fn token_at(sub: &str, ver: u64, iat: i64) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": sub, "iat": iat, "exp": iat + 600, "ver": ver}),
        &jsonwebtoken::EncodingKey::from_secret(common::SECRET),
    )
    .unwrap()
}

fn code<T>(r: Result<T, Error>) -> Result<(), &'static str> {
    r.map(|_| ()).map_err(|e| e.code())
}

/// (a) One reading beyond +2⁵¹ ms fails closed; once the clock is right
/// again, a read is fresh for the TTL only, so another instance's
/// revocation is seen after the TTL.
#[tokio::test]
async fn a_reading_beyond_the_stamp_range_leaves_nothing_behind() {
    let (clock, store, b) = setup(&["alice", "bob"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let other = other_instance(&clock, &store);
    let bob = other.issue("bob", &()).await.unwrap();

    clock.set(BEYOND_RANGE); // one bad reading
    assert_eq!(
        code(g.issue("alice", &()).await),
        Err("store_unavailable"),
        "a reading beyond the range fails closed"
    );
    clock.set(T0 + 1); // the clock is right again

    g.validate::<()>(&bob).await.unwrap(); // a read after the glitch
    let loads = store.loads();
    g.validate::<()>(&bob).await.unwrap();
    assert_eq!(store.loads(), loads, "reads are cached again");
    other.bump_version("bob").await.unwrap(); // no bus: seen within the TTL
    clock.advance(Duration::from_millis(30_001));
    assert_revoked(
        g.validate::<()>(&bob).await,
        RevokedReason::Version,
        "Clock skew (\"a bad reading fails closed while it lasts and leaves nothing behind\"): \
         after one clock reading beyond 2^51 ms and back, a read of bob stayed fresh past the \
         TTL and another instance's revocation was never seen",
    );
}

/// (b) An entry read during a glitch to the year 50000 is not fresh once
/// the clock is back: another instance's revocation is seen after the TTL.
#[tokio::test]
async fn an_entry_read_during_a_glitch_ahead_is_not_fresh_once_the_clock_is_back() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let other = other_instance(&clock, &store);
    let old = other.issue("alice", &()).await.unwrap();
    g.validate::<()>(&old).await.unwrap();

    clock.set(YEAR_50000);
    g.issue("alice", &()).await.unwrap(); // alice read in the year 50000
    clock.set(T0 + 1);
    other.bump_version("alice").await.unwrap();
    clock.advance(Duration::from_millis(30_001));
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Version,
        "Clock skew: alice's cutoff read during a glitch to the year 50000 stayed fresh after \
         the clock came back, and a revocation on another instance was missed past the TTL",
    );
}

/// (b) Reads made after a glitch to the year 50000 are fresh for the TTL
/// only (the stamps' time part went back with the clock), and the cache
/// works normally again: one store read per TTL.
#[tokio::test]
async fn reads_after_a_glitch_ahead_are_fresh_for_the_ttl_only() {
    let (clock, store, b) = setup(&["alice", "bob"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let other = other_instance(&clock, &store);
    let bob = other.issue("bob", &()).await.unwrap();

    clock.set(YEAR_50000);
    g.issue("alice", &()).await.unwrap();
    clock.set(T0 + 1);

    g.validate::<()>(&bob).await.unwrap();
    let loads = store.loads();
    for _ in 0..3 {
        g.validate::<()>(&bob).await.unwrap();
    }
    assert_eq!(store.loads(), loads, "a read after the glitch is cached");
    other.bump_version("bob").await.unwrap();
    clock.advance(Duration::from_millis(30_001));
    assert_revoked(
        g.validate::<()>(&bob).await,
        RevokedReason::Version,
        "Clock skew: after a glitch to the year 50000 and back, a read of bob made at T0 + 1 \
         stayed fresh past the TTL (its stamp kept the glitch's time), and another \
         instance's revocation was never seen",
    );
}

/// (b) The global cutoff read during a glitch is not fresh once the clock
/// is back: another instance's `revoke_all_before` is seen after the TTL.
#[tokio::test]
async fn a_global_cutoff_read_during_a_glitch_ahead_is_not_fresh_once_the_clock_is_back() {
    let (clock, store, b) = setup(&["alice", "bob"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let other = other_instance(&clock, &store);
    let old = other.issue("alice", &()).await.unwrap();
    g.validate::<()>(&old).await.unwrap();

    clock.set(YEAR_50000);
    g.issue("bob", &()).await.unwrap(); // reads the global cutoff too
    clock.set(T0 + 1);
    other.revoke_all_before(T0 + 1).await.unwrap();
    clock.advance(Duration::from_millis(30_001));
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Global,
        "Clock skew: the global cutoff read during a glitch to the year 50000 stayed fresh \
         after the clock came back; a revoke_all_before on another instance was missed past \
         the TTL",
    );
}

/// (b) An "unknown subject" answer cached during a glitch lasts no longer
/// than the negative TTL once the clock is back (a restored user is let in
/// again), and does not keep later reads from being cached.
#[tokio::test]
async fn an_unknown_subject_answer_from_a_glitch_lasts_the_negative_ttl_only() {
    let (clock, store, b) = setup(&["carol"]);
    let g = b.negative_ttl(Duration::from_secs(5)).build().unwrap();
    let other = other_instance(&clock, &store);
    let token = other.issue("carol", &()).await.unwrap();

    clock.set(YEAR_50000);
    g.forget("carol"); // "unknown" stamped in the year 50000
    clock.set(T0 + 1);
    clock.advance(Duration::from_millis(5_001));
    let r = code(g.validate::<()>(&token).await);
    assert_eq!(
        r,
        Ok(()),
        "Guard::forget (\"after the negative TTL, the store decides again\"): an unknown \
         answer cached during a glitch to the year 50000 still rejected carol (held by the \
         store) after the clock came back and the negative TTL passed"
    );
    let loads = store.loads();
    g.validate::<()>(&token).await.unwrap();
    assert_eq!(store.loads(), loads, "the read after it was cached");
}

/// (c) While the clock reads beyond the range, a cache miss fails closed
/// (store_unavailable), whatever the token, stale-if-error or not; a
/// login fails too, on either side of the range; nothing is cached.
#[tokio::test]
async fn a_cache_miss_fails_closed_while_the_clock_is_beyond_the_stamp_range() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .stale_if_error(Duration::from_secs(300))
        .build()
        .unwrap();
    let other = other_instance(&clock, &store);
    let old = other.issue("alice", &()).await.unwrap();
    g.validate::<()>(&old).await.unwrap(); // v0 cached
    other.bump_version("alice").await.unwrap(); // v1 in the store

    for far in [BEYOND_RANGE, BEYOND_RANGE + 10 * 365 * 86_400] {
        clock.set(far);
        let revoked = token_at("alice", 0, far);
        let current = token_at("alice", 1, far);
        for t in [&revoked, &current] {
            let r = code(g.validate::<()>(t).await);
            assert_eq!(
                r,
                Err("store_unavailable"),
                "Clock skew (\"beyond, every read counts as too old and requests fail with \
                 store_unavailable (closed, never open)\"): at Unix second {far}, a token got \
                 {r:?}"
            );
        }
        assert_eq!(code(g.issue("alice", &()).await), Err("store_unavailable"));
    }
    let cached = g.cached_subjects();
    clock.set(-BEYOND_RANGE);
    let r = code(g.issue("alice", &()).await);
    assert_eq!(
        r,
        Err("store_unavailable"),
        "Clock skew: with the clock at Unix second {}, issue answered {r:?}",
        -BEYOND_RANGE
    );
    assert_eq!(g.cached_subjects(), cached, "nothing cached");

    clock.set(T0 + 1);
    g.issue("alice", &())
        .await
        .expect("the store is read again once the clock is right");
    assert_revoked(
        g.validate::<()>(&old).await,
        RevokedReason::Version,
        "the login's read (v1) is cached",
    );
}

/// (d) With the bus down (`limit_cache_age`), after a glitch to the year
/// 50000 and back, the degraded age limit holds again: for entries read
/// during the glitch, for reads after it, and after `mark_cache_stale`.
#[tokio::test]
async fn the_degraded_age_limit_holds_again_after_a_glitch_ahead() {
    let (clock, store, b) = setup(&["alice", "bob"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let other = other_instance(&clock, &store);
    let alice = other.issue("alice", &()).await.unwrap();
    let bob = other.issue("bob", &()).await.unwrap();

    clock.set(YEAR_50000);
    g.issue("alice", &()).await.unwrap(); // read during the glitch
    clock.set(T0 + 1);
    g.limit_cache_age(Some(Duration::from_secs(1))); // the bus is down

    other.bump_version("alice").await.unwrap(); // the event is lost
    clock.advance(Duration::from_millis(1_001));
    assert_revoked(
        g.validate::<()>(&alice).await,
        RevokedReason::Version,
        "Guard::limit_cache_age (\"cached cutoffs older than max_age are reloaded\"): alice \
         was read during a glitch to the year 50000 and the age was limited to 1 s after the \
         clock came back, yet her revoked token was accepted from the cache",
    );

    g.validate::<()>(&bob).await.unwrap(); // a read after the glitch
    other.bump_version("bob").await.unwrap(); // lost too
    clock.advance(Duration::from_millis(1_001));
    assert_revoked(
        g.validate::<()>(&bob).await,
        RevokedReason::Version,
        "Guard::limit_cache_age: a read of bob after the glitch stayed fresh past the 1 s age",
    );

    // The subscriber reconnects: marks the cache stale, keeps the limit a
    // moment longer; a read after the mark is held to the age too.
    let bob = other.issue("bob", &()).await.unwrap();
    g.mark_cache_stale();
    g.validate::<()>(&bob).await.unwrap();
    other.bump_version("bob").await.unwrap();
    clock.advance(Duration::from_millis(1_001));
    assert_revoked(
        g.validate::<()>(&bob).await,
        RevokedReason::Version,
        "Guard::mark_cache_stale / limit_cache_age: after a glitch, a read made after the \
         mark stayed fresh past the 1 s age",
    );
}

/// The session cache keeps its own read stamps: after a glitch to the year
/// 50000 and back, a session revoked on another instance is seen after the
/// TTL.
#[tokio::test]
async fn a_session_revoked_elsewhere_is_seen_after_a_glitch_ahead() {
    let (clock, store, b) = setup(&["alice"]);
    let cfg = || SessionConfig::new(RefreshKey::new(common::SECRET).unwrap());
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .sessions(cfg())
        .build()
        .unwrap();
    let other = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .sessions(cfg())
        .build()
        .unwrap();
    let s = other.login("alice", &()).await.unwrap();
    g.validate::<()>(&s.access_token).await.unwrap();

    clock.set(YEAR_50000);
    // A session read during the glitch: a login there, and its token.
    let during = g.login("alice", &()).await.unwrap();
    g.validate::<()>(&during.access_token).await.unwrap();
    clock.set(T0 + 1);
    clock.advance(Duration::from_millis(30_001));
    g.validate::<()>(&s.access_token).await.unwrap(); // reads the session again
    other.revoke_session("alice", &s.session_id).await.unwrap();
    clock.advance(Duration::from_millis(30_001));
    let r = g.validate::<()>(&s.access_token).await.map(|_| ());
    assert!(
        matches!(r, Err(Error::SessionRevoked)),
        "Clock skew: after a glitch to the year 50000 and back, a session read at T0 + 31 s \
         stayed fresh past the TTL; its revocation on another instance got {r:?}"
    );
}
