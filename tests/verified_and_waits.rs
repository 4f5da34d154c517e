//! Verified-token cache: a hit behaves like a miss (a clock stepped back
//! included) and the cache stays within its byte budget; and what a request
//! that waited on the store must still see: revocations (global too) and
//! `forget` calls that returned meanwhile, a global refresh too old to
//! join, and stale answers counted only when they answer.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::counting::Counting;
use common::fixture::{T0, keys, setup};
use jwt_revoke::{Cutoff, FakeClock, Guard, MemoryStore};

/// Live heap bytes (requested sizes), for the memory bound.
struct Live;
static LIVE: AtomicI64 = AtomicI64::new(0);

unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as i64 - l.size() as i64, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Live = Live;

fn live() -> i64 {
    LIVE.load(Ordering::SeqCst)
}

/// A clock stepped back: a miss rejects the token (`issued_in_future`,
/// its `iat` is now beyond the leeway ahead), a hit must too.
#[tokio::test(flavor = "current_thread")]
async fn a_hit_after_the_clock_steps_back_rejects_a_future_iat_like_a_miss() {
    let (clock, _store, b) = setup(&["alice"]);
    let cached = b.build().unwrap(); // default leeway 60 s, cache on
    let store = Arc::new(Counting::new(MemoryStore::with_clock(
        jwt_revoke::FakeClock::new(0),
    )));
    store.inner.insert("alice", Cutoff::default());
    let uncached = Guard::builder(keys(), store)
        .clock(clock.clone())
        .verified_cache(0)
        .build()
        .unwrap();

    let t = cached.issue("alice", &()).await.unwrap(); // iat = T0
    cached.validate::<()>(&t).await.unwrap(); // cached now
    uncached.validate::<()>(&t).await.unwrap();

    clock.set(T0 - 120); // NTP steps the wall clock back two minutes
    let miss = uncached
        .validate::<()>(&t)
        .await
        .map(|_| ())
        .map_err(|e| e.code());
    assert_eq!(miss, Err("issued_in_future"), "the miss path (setup)");
    let hit = cached
        .validate::<()>(&t)
        .await
        .map(|_| ())
        .map_err(|e| e.code());
    assert_eq!(
        hit, miss,
        "README Guarantees, Verified tokens: a cached token must get the same answer \
         as a miss (here: a future `iat` beyond the leeway is `issued_in_future`, \
         README Clock skew), yet the verified-token cache accepted it"
    );
}

/// Same with `nbf`: a token whose `nbf` is beyond the leeway ahead again.
#[tokio::test(flavor = "current_thread")]
async fn a_hit_after_the_clock_steps_back_still_refuses_before_nbf() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let clock = FakeClock::new(T0);
    let mk = |cache: usize| {
        let store = Arc::new(Counting::new(MemoryStore::with_clock(
            jwt_revoke::FakeClock::new(0),
        )));
        store.inner.insert("alice", Cutoff::default());
        Guard::builder(keys(), store)
            .clock(clock.clone())
            .verified_cache(cache)
            .build()
            .unwrap()
    };
    let cached = mk(10);
    let uncached = mk(0);
    let claims = serde_json::json!({
        "sub": "alice", "iat": T0 - 50, "nbf": T0 - 5, "exp": T0 + 600, "ver": 0
    });
    let t = encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(common::SECRET),
    )
    .unwrap();
    cached.validate::<()>(&t).await.unwrap();
    uncached.validate::<()>(&t).await.unwrap();
    clock.set(T0 - 100); // iat = now + 50 (within the leeway), nbf = now + 95
    let miss = uncached
        .validate::<()>(&t)
        .await
        .map(|_| ())
        .map_err(|e| e.code());
    assert_eq!(miss, Err("not_yet_valid"), "the miss path (setup)");
    let hit = cached
        .validate::<()>(&t)
        .await
        .map(|_| ())
        .map_err(|e| e.code());
    assert_eq!(
        hit, miss,
        "README Guarantees, Verified tokens: a cached token must get the same answer \
         as a miss (`nbf` beyond the leeway ahead), yet the cache accepted it"
    );
}

/// The byte budget is the cache's memory bound: the heap the entries take
/// must stay within `verified_cache_bytes`.
#[tokio::test(flavor = "current_thread")]
async fn the_verified_cache_heap_stays_within_verified_cache_bytes() {
    const BUDGET: usize = 64 * 1024;
    let (_clock, _store, b) = setup(&["a"]);
    let g = b
        .verified_cache(1_000_000)
        .verified_cache_bytes(BUDGET)
        .build()
        .unwrap();
    // Warm up: the subject's cutoff, the global cutoff, one verified entry.
    let t = g.issue("a", &serde_json::json!({"n": 0})).await.unwrap();
    g.validate::<()>(&t).await.unwrap();
    drop(t);
    let s = g.stats();
    let (base_bytes, base_tokens) = (s.verified_bytes, s.verified_tokens);
    drop(s);
    let base = live();

    let mut peak_heap = 0i64;
    let mut peak_counted = 0usize;
    for n in 1..5_000u32 {
        let t = g.issue("a", &serde_json::json!({"n": n})).await.unwrap();
        g.validate::<()>(&t).await.unwrap();
        drop(t);
        let heap = live() - base;
        let s = g.stats();
        if s.verified_tokens < base_tokens + n as usize {
            break; // the budget was reached: entries were evicted
        }
        if heap > peak_heap {
            peak_heap = heap;
            peak_counted = s.verified_bytes;
        }
    }
    let heap_with_first = peak_heap + base_bytes as i64; // the first entry, counted
    assert!(
        heap_with_first <= BUDGET as i64,
        "README Guarantees, Verified tokens (\"10 000 tokens, 4 MiB\"): the cache's memory \
         stays within verified_cache_bytes; with a budget of {BUDGET} bytes the entries \
         took {heap_with_first} heap bytes (requested sizes only) while the cache counted \
         {peak_counted}"
    );
}

/// Control for the test above: the same schedule without mark_cache_stale
/// serves the stale entry (so the failure above is mark_cache_stale's).
#[tokio::test(flavor = "current_thread")]
async fn control_without_mark_cache_stale_the_entry_is_served_stale() {
    use std::time::Duration;
    let (clock, store, b) = setup(&["alice"]);
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .stale_if_error(Duration::from_secs(60))
        .build()
        .unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&t).await.unwrap();
    g.limit_cache_age(Some(Duration::from_secs(10)));
    clock.set(T0 + 15);
    store.fail(true);
    clock.set(T0 + 60);
    g.validate::<()>(&t).await.unwrap();
}

/// `Stats::stale_answers` counts "answers served from a stale entry because
/// the store failed". A request whose subject cutoff could be served stale
/// but whose global cutoff could not gets `store_unavailable`: no stale
/// answer was served.
#[tokio::test(flavor = "current_thread")]
async fn a_503_is_not_counted_as_a_stale_answer() {
    use std::time::Duration;
    let (clock, store, b) = setup(&["alice", "bob"]);
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .stale_if_error(Duration::from_secs(30))
        .build()
        .unwrap();
    let bob = g.issue("bob", &()).await.unwrap();
    g.validate::<()>(&bob).await.unwrap(); // global read at T0: stale until T0 + 60
    clock.set(T0 + 20);
    let alice = g.issue("alice", &()).await.unwrap();
    g.clear_cache(); // drop what issue read, so the reads below set the windows
    clock.set(T0 + 25);
    g.validate::<()>(&bob).await.unwrap(); // global again at T0 + 25: stale until T0 + 85
    clock.set(T0 + 40);
    g.validate::<()>(&alice).await.unwrap(); // alice read at T0 + 40: stale until T0 + 100
    store.fail(true);
    clock.set(T0 + 90); // alice within her stale window, the global past its own
    let before = g.stats();
    let r = g
        .validate::<()>(&alice)
        .await
        .map(|_| ())
        .map_err(|e| e.code());
    assert_eq!(
        r,
        Err("store_unavailable"),
        "setup: the global cutoff is past its window"
    );
    let after = g.stats();
    assert_eq!(
        after.stale_answers - before.stale_answers,
        0,
        "Stats::stale_answers counts \"answers served from a stale entry because the store \
         failed\"; this request was answered store_unavailable, yet it was counted"
    );
    assert_eq!(after.loads_in_flight, 0);
}

/// "A load older than the TTL is never joined nor decided on": a request
/// whose own subject load took a while joins the global refresh by the time
/// it *started*, so it joins a refresh that is already older than the TTL,
/// then refuses the refresh's answer as too old: a healthy store, and the
/// request gets `store_unavailable`.
#[tokio::test(flavor = "current_thread")]
async fn a_global_refresh_older_than_the_ttl_is_never_joined() {
    use std::time::Duration;
    let (clock, store, b) = setup(&["alice", "bob"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let alice = g.issue("alice", &()).await.unwrap();
    let bob = g.issue("bob", &()).await.unwrap();
    g.validate::<()>(&alice).await.unwrap(); // alice and the global: fresh until T0 + 30

    // A: a request its handler stops polling, holding a global refresh
    // started at T0 + 30.
    clock.set(T0 + 30);
    let global_gate = store.hold_global_loads();
    let mut a = Box::pin(g.validate::<()>(&alice));
    assert!(
        futures::poll!(a.as_mut()).is_pending(),
        "A waits on the global refresh"
    );

    // B starts at T0 + 59 (the refresh is 29 s old); its subject load
    // answers at T0 + 61, when the refresh is 31 s old.
    clock.set(T0 + 59);
    let _subject_gate = store.hold_loads();
    let mut b_req = Box::pin(g.validate::<()>(&bob));
    assert!(
        futures::poll!(b_req.as_mut()).is_pending(),
        "B waits on bob's load"
    );
    clock.set(T0 + 61);
    store.release_loads();
    global_gate.add_permits(100);
    let loads_before_b = store.global_loads.load(std::sync::atomic::Ordering::SeqCst);
    let r = b_req.await.map(|_| ()).map_err(|e| e.code());
    let b_own = store.global_loads.load(std::sync::atomic::Ordering::SeqCst) - loads_before_b;
    assert_eq!(
        (r, b_own),
        (Ok(()), 1),
        "README How the cache stays right: \"A load older than the TTL is never joined nor \
         decided on\"; B joined the global refresh A started 31 s earlier (TTL 30 s), found \
         it too old and answered {r:?} while the store is healthy (global reads B started: \
         {b_own})"
    );
    drop(a);
    assert_eq!(g.loads_in_flight(), 0);
}

/// The global counterpart of "Revocations that returned while this request
/// waited on the store apply too": a request whose subject load is slow
/// took the (fresh) global cutoff before waiting, and never looks at it
/// again. A `revoke_all_before(now)` that returned on this very guard while
/// the request waited does not apply to it.
#[tokio::test(flavor = "current_thread")]
async fn a_global_revocation_that_returned_while_a_request_waited_applies_to_it() {
    let (_clock, store, b) = setup(&["alice", "bob"]);
    let g = b.build().unwrap();
    let alice = g.issue("alice", &()).await.unwrap(); // iat = T0
    let bob = g.issue("bob", &()).await.unwrap();
    g.clear_cache();
    g.validate::<()>(&bob).await.unwrap(); // the global cutoff is cached and fresh

    let _gate = store.hold_loads();
    let mut req = Box::pin(g.validate::<()>(&alice)); // alice is not cached
    assert!(
        futures::poll!(req.as_mut()).is_pending(),
        "the request waits on alice's load"
    );
    let nb = g.revoke_all_before(T0).await.unwrap(); // returned: everyone logs in again
    assert!(nb > T0);
    store.release_loads();
    let r = req.await.map(|_| ()).map_err(|e| e.code());
    assert_eq!(
        r,
        Err("token_revoked"),
        "README Guarantees, Same instance: immediate: \"When ... revoke_all_before returns, \
         the guard that made the call rejects every token the returned cutoff revokes. No \
         window\" (and the guard's own rule: revocations that returned while a request waited \
         on the store apply too); a request answered after revoke_all_before(now) returned \
         accepted a token with iat = {T0} < global not_before = {nb}"
    );
    assert_eq!(
        g.validate::<()>(&alice)
            .await
            .map(|_| ())
            .map_err(|e| e.code()),
        Err("token_revoked"),
        "a later request rejects it (sanity)"
    );
}

/// `forget` while a cache hit waits for the global refresh: the request
/// merges "revocations that landed meanwhile" from the cache entry, but
/// `forget` removed that entry, so the request answers with the cutoff it
/// read before and accepts a token of a subject this guard was told to
/// reject "from now on".
#[tokio::test(flavor = "current_thread")]
async fn forget_while_a_hit_waits_for_the_global_refresh_rejects_the_token() {
    let (clock, store, b) = setup(&["alice", "bob"]);
    let g = b
        .cache_ttl(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    let alice = g.issue("alice", &()).await.unwrap();
    let bob = g.issue("bob", &()).await.unwrap();
    g.clear_cache();
    g.validate::<()>(&bob).await.unwrap(); // global read at T0: fresh until T0 + 30
    clock.set(T0 + 20);
    g.validate::<()>(&alice).await.unwrap(); // alice read at T0 + 20: fresh until T0 + 50
    clock.set(T0 + 35); // alice fresh, the global due
    let gate = store.hold_global_loads();
    let mut req = Box::pin(g.validate::<()>(&alice));
    assert!(
        futures::poll!(req.as_mut()).is_pending(),
        "the hit waits on the global refresh"
    );
    g.forget("alice"); // the user was deleted
    gate.add_permits(100);
    let r = req.await.map(|_| ()).map_err(|e| e.code());
    assert_eq!(
        r,
        Err("unknown_subject"),
        "README How the cache stays right (forget) / Guard::forget: \"its tokens are rejected \
         with unknown_subject on this instance from now on\"; a hit that waited for the global \
         refresh and was answered after forget returned accepted the token"
    );
}
