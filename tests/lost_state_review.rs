//! An adversarial review of the lost-row, repair, clock and retry rules,
//! kept as regression tests. Each test is named after the attack it makes
//! and asserts that the promise holds. Those marked `// Broke before:`
//! showed a break of the promise named, fixed since (same-second
//! recreation: records are created at now + 2 and a login in the creation
//! second waits; `revoke_sessions` ignores expiry; a "now" global
//! revocation always raises the cutoff; `revoke_sessions` is required of
//! every session store; a lost global cutoff is recreated as a revocation
//! by setup, migration and read; users-table migrations make new rows start
//! after now and refuse lowering a version). Those marked `// HELD` are
//! attacks that held from the start.
#![cfg(all(feature = "sqlite", feature = "postgres", feature = "redis"))]

mod common;

use common::{SECRET, unique};

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jwt_revoke::{
    Algorithm, Cutoff, CutoffEvent, CutoffStore, Error, FakeClock, Guard, Keys, MemoryStore,
    RedisStore, RefreshKey, SessionConfig, SessionStore, SqliteStore, SqliteUsersStore, UsersTable,
};

const T0: i64 = 1_800_000_000;

fn keys() -> Keys {
    Keys::hmac(Algorithm::HS256, SECRET).unwrap()
}

fn sessions() -> SessionConfig {
    SessionConfig::new(RefreshKey::new(SECRET).unwrap())
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6391/".into())
}

fn guard_on<S: SessionStore>(store: S, clock: &FakeClock) -> Guard<S> {
    Guard::builder(keys(), store)
        .clock(clock.clone())
        .sessions(sessions())
        .build()
        .unwrap()
}

/// A memory store on a fake clock holding "alice" with three revocations
/// (her tokens carry version 3), and a guard over it at the earliest second
/// a login can be: the second after the record's creation (stamped
/// `iat = T + 2`); the tests then lose and recreate the record in that
/// second.
async fn old_account() -> (Arc<MemoryStore>, Guard<Arc<MemoryStore>>) {
    let clock = FakeClock::new(T0);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    store.insert("alice", Cutoff::default());
    for _ in 0..3 {
        store.bump_version("alice").await.unwrap();
    }
    clock.advance(Duration::from_secs(1));
    let guard = guard_on(store.clone(), &clock);
    (store, guard)
}

/// Fails unless `r` is a rejection (any error).
#[track_caller]
fn assert_rejected<T: std::fmt::Debug>(r: Result<T, Error>, promise: &str) {
    if let Ok(v) = r {
        panic!("{promise}: accepted ({v:?})");
    }
}

use common::events::Recorder;

// ---------------------------------------------------------------------------
// Promise 1: a recreated subject never inherits the old one's tokens.
// ---------------------------------------------------------------------------

// Broke before: 1 (a recreated subject never inherits the old one's access tokens)
//
// A subject created at T gets `not_before = T + 1`; a login in that same
// second is stamped `iat = T + 1`. Deleted and created again within the
// second, the new record is `(0, T + 1)` again: the old token (whatever its
// version) passes `iat >= not_before` and `ver >= 0`.
#[tokio::test]
async fn memory_a_subject_recreated_in_the_same_second_accepts_the_old_token() {
    let (store, guard) = old_account().await;
    let old = guard.issue("alice", &()).await.unwrap();
    guard.validate::<()>(&old).await.unwrap();

    // The user is deleted (the guard forgets it at once, as documented)...
    store.remove("alice");
    guard.forget("alice");
    assert!(matches!(
        guard.validate::<()>(&old).await,
        Err(Error::UnknownSubject)
    ));
    // ...and a new user registers with the same `sub`, in the same second.
    store.insert("alice", Cutoff::default());
    guard.clear_cache();
    assert_rejected(
        guard.validate::<()>(&old).await,
        "the deleted user's token, rejected a moment ago, validates for the new user",
    );
}

// Broke before: 1 (a recreated subject never inherits the old one's sessions or
// refresh tokens)
//
// Same sequence with a session: the session's `version` (3) is not below
// the new record's (0), and its `not_before_seen` (T + 1) is not below the
// new `not_before` (T + 1). The row was lost (no `revoke_sessions` ran: the
// promise covers loss, not only a tidy deletion).
#[tokio::test]
async fn memory_a_subject_recreated_in_the_same_second_inherits_the_old_session() {
    let (store, guard) = old_account().await;
    let old = guard.login("alice", &()).await.unwrap();

    store.remove("alice");
    store.insert("alice", Cutoff::default());
    guard.clear_cache();
    let refreshed = guard.refresh(&old.refresh_token, &()).await;
    assert_rejected(
        refreshed,
        "the old user's refresh token rotates for the new user",
    );
    assert_rejected(
        guard.validate::<()>(&old.access_token).await,
        "the old user's session token validates for the new user",
    );
}

// Broke before: 1 (revocation of a subject the store does not hold creates a
// record that rejects every token issued before it)
//
// Worse than a registration: the deleted user's token is rejected
// (unknown subject) until an admin "revokes everything" for that `sub` in
// the same second. `Guard::bump_version` creates `(1, T + 1)`, and the old
// token (version 3, iat T + 1) becomes valid again. The revocation revives.
#[tokio::test]
async fn memory_bump_version_of_a_deleted_subject_revives_its_token() {
    let (store, guard) = old_account().await;
    let old = guard.issue("alice", &()).await.unwrap();
    store.remove("alice");
    guard.forget("alice");
    assert!(matches!(
        guard.validate::<()>(&old).await,
        Err(Error::UnknownSubject)
    ));
    // "Make sure": log the deleted account out everywhere.
    guard.bump_version("alice").await.unwrap();
    guard.clear_cache();
    assert_rejected(
        guard.validate::<()>(&old).await,
        "a bump_version on the deleted subject brought its token back",
    );
}

// HELD
//
// The same recreation one second later: `not_before = T + 2` rejects the
// old token (iat T + 1) and ends the old session.
#[tokio::test]
async fn memory_a_subject_recreated_a_second_later_rejects_the_old_tokens() {
    let clock = FakeClock::new(T0);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    store.insert("alice", Cutoff::default());
    clock.advance(Duration::from_secs(1));
    let guard = guard_on(store.clone(), &clock);
    let old = guard.login("alice", &()).await.unwrap();
    store.remove("alice");
    clock.advance(Duration::from_secs(1));
    store.insert("alice", Cutoff::default());
    guard.clear_cache();
    assert_rejected(guard.validate::<()>(&old.access_token).await, "old token");
    assert_rejected(guard.refresh(&old.refresh_token, &()).await, "old session");
}

/// The same-second recreation against an SQL store (or Redis), with the
/// guard's clock on the store's: the first creation lands in database
/// second T (`not_before = T + 2`); the login happens at the earliest
/// second it can, T + 1 (waiting for the database's clock to get there);
/// the record is lost and created again in that same second. Retried
/// until the recreation lands in the login's database second.
macro_rules! sql_same_second {
    ($store:expr) => {{
        let store = Arc::new($store);
        let mut last = None;
        for _ in 0..20 {
            let sub = unique("r3-same-second");
            let first = store.insert(&sub, Cutoff::default()).await.unwrap();
            // Wait for the store's clock to reach T + 1 (a probe record
            // created then has `not_before = T + 3`).
            let mut reached = false;
            for _ in 0..60 {
                let probe = store
                    .insert(&unique("r3-probe"), Cutoff::default())
                    .await
                    .unwrap();
                if probe.not_before > first.not_before {
                    reached = probe.not_before == first.not_before + 1;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !reached {
                continue;
            }
            let clock = FakeClock::new(first.not_before - 1);
            let guard = guard_on(store.clone(), &clock);
            let old = guard.login(&sub, &()).await.unwrap();
            assert!(store.remove(&sub).await.unwrap());
            let again = store.insert(&sub, Cutoff::default()).await.unwrap();
            if again.not_before != first.not_before + 1 {
                continue; // crossed a second boundary: try again
            }
            guard.clear_cache();
            let access = guard.validate::<()>(&old.access_token).await.is_ok();
            let refresh = guard.refresh(&old.refresh_token, &()).await.is_ok();
            last = Some((access, refresh));
            break;
        }
        let (access, refresh) = last.expect("never recreated within one database second");
        assert!(
            !access && !refresh,
            "the recreated subject inherits the old one's access token ({access}) \
             and refresh token ({refresh})"
        );
    }};
}

// Broke before: 1 (SqliteStore: a recreated subject never inherits the old one's
// access tokens, sessions or refresh tokens)
#[tokio::test]
async fn sqlite_a_subject_recreated_in_the_same_second_inherits_tokens_and_session() {
    sql_same_second!(SqliteStore::connect("sqlite::memory:").await.unwrap());
}

// Broke before: 1 (PostgresStore: same)
#[tokio::test]
async fn postgres_a_subject_recreated_in_the_same_second_inherits_tokens_and_session() {
    sql_same_second!(common::isolated_postgres().await);
}

// Broke before: 1 (RedisStore: same)
#[tokio::test]
async fn redis_a_subject_recreated_in_the_same_second_inherits_tokens_and_session() {
    let prefix = format!("{}:", unique("r3"));
    sql_same_second!(
        RedisStore::builder(redis_url())
            .prefix(prefix)
            .connect()
            .await
            .unwrap()
    );
}

// Broke before: 1 (recreation through `bump_version_in` inside a transaction and
// `apply_committed`)
//
// The host deletes the user, then (same second) recreates it the way the
// docs suggest for a password change: `bump_version_in(&mut tx)` on the
// missing row, commit, `apply_committed`. The row is `(1, T + 1)`; the old
// token (version 3, iat T + 1) is accepted, by the very guard that applied
// the committed cutoff.
#[tokio::test]
async fn sqlite_recreation_through_bump_version_in_and_apply_committed_revives_the_token() {
    let store = Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
    let mut outcome = None;
    for _ in 0..20 {
        let sub = unique("r3-tx");
        let first = store.insert(&sub, Cutoff::new(3, 0)).await.unwrap();
        // The earliest second a login can be (see `sql_same_second!`).
        let mut reached = false;
        for _ in 0..60 {
            let probe = store
                .insert(&unique("r3-probe"), Cutoff::default())
                .await
                .unwrap();
            if probe.not_before > first.not_before {
                reached = probe.not_before == first.not_before + 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !reached {
            continue;
        }
        let clock = FakeClock::new(first.not_before - 1);
        let guard = guard_on(store.clone(), &clock);
        let old = guard.issue(&sub, &()).await.unwrap();
        assert!(store.remove(&sub).await.unwrap());
        let mut tx = store.pool().begin().await.unwrap();
        let created = store.bump_version_in(&mut tx, &sub).await.unwrap();
        tx.commit().await.unwrap();
        if created.not_before != first.not_before + 1 {
            continue;
        }
        guard.apply_committed(&sub, created).await.unwrap();
        outcome = Some(guard.validate::<()>(&old).await.is_ok());
        break;
    }
    assert!(
        !outcome.expect("never within one second"),
        "the old subject's token validates after the recreation"
    );
}

// ---------------------------------------------------------------------------
// Promise 1 / 3: revoke_sessions ends every session, whatever the clocks.
// ---------------------------------------------------------------------------

// Broke before: 1 (`Guard::revoke_sessions(sub)` ends every session of a subject)
// and 3 (a session's fate does not depend on any instance's clock)
//
// `revoke_sessions` skips sessions with `expires_at <= at`, `at` being the
// calling instance's clock. Called on an instance 1 s ahead, it leaves a
// session that expires within that second untouched; an instance whose
// clock is right then rotates it (not expired by its clock), and the
// session lives on for another `refresh_ttl`.
#[tokio::test]
async fn revoke_sessions_on_an_instance_ahead_misses_a_session_a_behind_one_keeps_alive() {
    // (The record was created a while before.)
    let store_clock = FakeClock::new(T0 - 10);
    let store = Arc::new(MemoryStore::with_clock(store_clock.clone()));
    store.insert("alice", Cutoff::default());
    let ahead = FakeClock::new(T0 + 1);
    let right = FakeClock::new(T0);
    let config = || sessions().refresh_ttl(Duration::from_secs(100));
    let a = Guard::builder(keys(), store.clone())
        .clock(ahead.clone())
        .sessions(config())
        .build()
        .unwrap();
    let b = Guard::builder(keys(), store.clone())
        .clock(right.clone())
        .sessions(config())
        .build()
        .unwrap();
    let login = b.login("alice", &()).await.unwrap(); // expires at T0 + 100
    for c in [&ahead, &right, &store_clock] {
        c.advance(Duration::from_secs(99));
    }
    // b: T0 + 99 (1 s left); a: T0 + 100.
    let ended = a.revoke_sessions("alice").await.unwrap();
    let rotated = b.refresh(&login.refresh_token, &()).await;
    assert!(
        rotated.is_err(),
        "revoke_sessions (ended {ended}) left the session alive: it rotated on the other \
         instance and now expires at {:?}",
        rotated.as_ref().map(|t| t.refresh_expires_at)
    );
}

// ---------------------------------------------------------------------------
// Promise 3: no clock decides a session's fate against a global cutoff.
// ---------------------------------------------------------------------------

// Broke before: 3 (a login on an instance whose clock runs ahead, just before
// `revoke_all_before(now)` on another instance, does not survive it —
// sessions never)
//
// A's clock is T, B's T + 2. A: `revoke_all_before(T)` writes T + 2
// (same-second rule). B: at its T + 2 the global is not ahead of it, so a
// login passes, and records `not_before_seen = T + 2`. A, still in second
// T: `revoke_all_before(T)` again ("log everyone out" pressed twice, or two
// admins): the global stays T + 2, which is not above the session's seen
// value. The session, which began before this call, survives it for good.
#[tokio::test]
async fn a_login_ahead_between_two_global_revocations_survives_the_second() {
    let store = Arc::new(MemoryStore::with_clock(FakeClock::new(T0)));
    store.insert("alice", Cutoff::default());
    let clock_a = FakeClock::new(T0 + 10);
    let clock_b = FakeClock::new(T0 + 12);
    let a = guard_on(store.clone(), &clock_a);
    let b = guard_on(store.clone(), &clock_b);

    let first = a.revoke_all_before(T0 + 10).await.unwrap();
    assert_eq!(first, T0 + 12);
    let login = b.login("alice", &()).await.unwrap();
    let second = a.revoke_all_before(T0 + 10).await.unwrap();
    assert!(
        second > first,
        "the second call raises the cutoff: {second}"
    );

    // Past the same-second wait (logins and refreshes get RetryLater until
    // the global cutoff is reached on the refreshing instance's clock).
    clock_a.advance(Duration::from_secs(5));
    clock_b.advance(Duration::from_secs(5));
    a.clear_cache();
    let refreshed = a.refresh(&login.refresh_token, &()).await;
    assert!(
        matches!(refreshed, Err(Error::SessionRevoked)),
        "the session that began before revoke_all_before(now) survives it: {:?}",
        refreshed.map(|t| t.session_id)
    );
}

// HELD
//
// The single-revocation version: B ahead by 2 s logs in, then A revokes
// all at its now: the global (T + 2 on A's clock) is above what B's login
// saw, so the session ends on every instance.
#[tokio::test]
async fn a_login_ahead_just_before_a_global_revocation_does_not_survive_it() {
    let store = Arc::new(MemoryStore::with_clock(FakeClock::new(T0)));
    store.insert("alice", Cutoff::default());
    let clock_a = FakeClock::new(T0 + 10);
    let clock_b = FakeClock::new(T0 + 12);
    let a = guard_on(store.clone(), &clock_a);
    let b = guard_on(store.clone(), &clock_b);
    let login = b.login("alice", &()).await.unwrap();
    a.revoke_all_before(T0 + 10).await.unwrap();
    clock_a.advance(Duration::from_secs(5));
    clock_b.advance(Duration::from_secs(5));
    assert!(matches!(
        a.refresh(&login.refresh_token, &()).await,
        Err(Error::SessionRevoked)
    ));
    b.clear_cache();
    assert!(matches!(
        b.validate::<()>(&login.access_token).await,
        Err(Error::SessionRevoked)
    ));
}

// ---------------------------------------------------------------------------
// Promise 4: every retry publishes.
// ---------------------------------------------------------------------------

// Broke before: 4 (every retry publishes: `revoke_sessions` retried after a lost
// reply still publishes its events)
//
// With a store whose reply to `revoke_sessions` is lost, the
// first call revokes the session in the store and its reply is lost (the
// guard times out, nothing published). The retry finds the session
// revoked already: the default names only what it revoked itself, so the
// guard publishes nothing and reports 0. Other instances keep the session
// live in their caches until the TTL.
#[tokio::test(start_paused = true)]
async fn a_retried_revoke_sessions_after_a_lost_reply_publishes_again() {
    let clock = FakeClock::new(T0);
    let store = Arc::new(common::session_probe::Probe {
        inner: MemoryStore::with_clock(clock.clone()),
        ..Default::default()
    });
    store.inner.insert("alice", Cutoff::default());
    clock.advance(Duration::from_secs(1));
    let bus = Recorder::default();
    let guard = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .sessions(sessions())
        .store_timeout(Duration::from_millis(200))
        .publisher(bus.clone())
        .build()
        .unwrap();
    let login = guard.login("alice", &()).await.unwrap();

    store.lose_revoke_reply.store(true, Ordering::SeqCst);
    assert!(matches!(
        guard.revoke_sessions("alice").await,
        Err(Error::StoreUnavailable(_))
    ));
    assert!(
        store
            .inner
            .load_session("alice", &login.session_id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some(),
        "the first call's write landed"
    );
    let n = guard.revoke_sessions("alice").await.unwrap();
    let announced = bus
        .events()
        .iter()
        .any(|e| matches!(e, CutoffEvent::Session { sid, .. } if *sid == login.session_id));
    assert!(
        announced,
        "the retry (which reported {n} sessions) never published the session's revocation"
    );
}

// HELD
//
// The shipped memory store's `revoke_sessions` names sessions revoked
// before the call too: a retry publishes again.
#[tokio::test]
async fn a_retried_revoke_sessions_on_a_shipped_store_publishes_again() {
    let clock = FakeClock::new(T0);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    store.insert("alice", Cutoff::default());
    clock.advance(Duration::from_secs(1));
    let bus = Recorder::default();
    let guard = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .sessions(sessions())
        .publisher(bus.clone())
        .build()
        .unwrap();
    let login = guard.login("alice", &()).await.unwrap();
    // The first call's write landed; its reply was lost.
    store.revoke_sessions("alice", T0 + 1).await.unwrap();
    assert_eq!(guard.revoke_sessions("alice").await.unwrap(), 1);
    assert!(
        bus.events()
            .iter()
            .any(|e| matches!(e, CutoffEvent::Session { sid, .. } if *sid == login.session_id))
    );
    // And `revoke_session` returning false publishes too.
    let before = bus.events().len();
    assert!(
        !guard
            .revoke_session("alice", &login.session_id)
            .await
            .unwrap()
    );
    assert_eq!(bus.events().len(), before + 1);
}

// ---------------------------------------------------------------------------
// Promise 5: lost global cutoffs fail closed.
// ---------------------------------------------------------------------------

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// Broke before: 5 (Redis: a missing global key later is recreated as a global
// revocation at that moment, never read as "no global cutoff")
//
// `RedisStore::connect` runs `setup`, which writes the global key at 0
// whenever it is missing. An instance that starts (a deploy, autoscaling,
// a crash loop) after the key was lost therefore resets the global cutoff
// to "none", and every token a `revoke_all_before` ended is valid again.
#[tokio::test]
async fn redis_a_new_instance_resets_a_lost_global_key_to_none() {
    let prefix = format!("{}:", unique("r3-global"));
    let first = RedisStore::builder(redis_url())
        .prefix(prefix.clone())
        .connect()
        .await
        .unwrap();
    let nb = first.revoke_all_before(unix_now()).await.unwrap();
    assert!(nb > unix_now() - 5);
    // The key is lost (deleted by hand, evicted, a restart that lost it).
    let client = jwt_revoke::redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = jwt_revoke::redis::cmd("DEL")
        .arg(format!("{prefix}global"))
        .query_async(&mut conn)
        .await
        .unwrap();
    // Another instance starts.
    let second = RedisStore::builder(redis_url())
        .prefix(prefix.clone())
        .connect()
        .await
        .unwrap();
    let now = unix_now();
    let global = second.load_global().await.unwrap();
    assert!(
        global >= nb.min(now),
        "the lost global cutoff ({nb}) reads as {global}: \"no global cutoff\""
    );
}

// HELD
//
// Without a restart, the read that finds the key gone recreates it as a
// revocation at that moment (Redis's TIME + 1).
#[tokio::test]
async fn redis_a_lost_global_key_found_by_a_read_is_a_revocation() {
    let prefix = format!("{}:", unique("r3-global-read"));
    let store = RedisStore::builder(redis_url())
        .prefix(prefix.clone())
        .connect()
        .await
        .unwrap();
    let set_up = store.load_global().await.unwrap();
    assert!(set_up > unix_now() - 5 && set_up <= unix_now(), "{set_up}");
    let client = jwt_revoke::redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = jwt_revoke::redis::cmd("DEL")
        .arg(format!("{prefix}global"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let before = unix_now();
    let global = store.load_global().await.unwrap();
    assert!(global > before && global <= unix_now() + 2, "{global}");
}

// HELD
//
// A Redis hash written by hand with one field missing, or a non-canonical
// number, fails closed on load and is never overwritten by a write.
#[tokio::test]
async fn redis_hand_written_rows_fail_closed() {
    let prefix = format!("{}:", unique("r3-hand"));
    let store = RedisStore::builder(redis_url())
        .prefix(prefix.clone())
        .connect()
        .await
        .unwrap();
    let client = jwt_revoke::redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for (sub, fields) in [
        ("partial", vec![("v", "3")]),
        ("padded", vec![("v", "03"), ("nb", "5")]),
        ("float", vec![("v", "1"), ("nb", "1e3")]),
    ] {
        let mut cmd = jwt_revoke::redis::cmd("HSET");
        cmd.arg(format!("{prefix}sub:{sub}"));
        for (k, v) in &fields {
            cmd.arg(*k).arg(*v);
        }
        let _: () = cmd.query_async(&mut conn).await.unwrap();
        assert!(store.load(sub).await.is_err(), "{sub} loads");
        assert!(store.bump_version(sub).await.is_err(), "{sub} bumps");
        assert!(store.revoke_before(sub, 10).await.is_err(), "{sub} revokes");
    }
}

// Broke before: 5 (SQL: a missing global row is recreated as a revocation at that
// moment)
//
// The schema seeds the global row at 0 whenever it is missing and the
// cutoff table is empty. "Safe to run at every start": an instance that
// starts after the global row was lost, while no subject row exists (all
// users deleted, or the host keeps users elsewhere and this table is
// empty), re-seeds it at 0 instead of recreating it as a revocation.
#[tokio::test]
async fn sqlite_migrate_reseeds_a_lost_global_row_at_zero() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    let nb = store.revoke_all_before(unix_now()).await.unwrap();
    jwt_revoke::sqlx::query("DELETE FROM jwt_revoke_global")
        .execute(store.pool())
        .await
        .unwrap();
    // An instance starts: `connect` runs `migrate`.
    store.migrate().await.unwrap();
    let global = store.load_global().await.unwrap();
    assert!(
        global >= nb.min(unix_now()),
        "the lost global cutoff ({nb}) came back as {global}"
    );
}

// HELD
//
// Without a restart, the SQL store recreates a deleted global row as a
// revocation at that moment.
#[tokio::test]
async fn sqlite_a_lost_global_row_found_by_a_read_is_a_revocation() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    store.insert("someone", Cutoff::default()).await.unwrap();
    jwt_revoke::sqlx::query("DELETE FROM jwt_revoke_global")
        .execute(store.pool())
        .await
        .unwrap();
    // A migration (an instance starting) creates it again at its second.
    let before = unix_now();
    store.migrate().await.unwrap();
    let global = store.load_global().await.unwrap();
    assert!(global >= before && global <= unix_now(), "{global}");
    // A read that finds it gone later, two seconds ahead.
    jwt_revoke::sqlx::query("DELETE FROM jwt_revoke_global")
        .execute(store.pool())
        .await
        .unwrap();
    let before = unix_now();
    let global = store.load_global().await.unwrap();
    assert!(global > before && global <= unix_now() + 2, "{global}");
}

/// A users table in an in-memory SQLite database, with the store's
/// migration applied and a global table named.
async fn users_store() -> SqliteUsersStore {
    let pool = jwt_revoke::sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    jwt_revoke::sqlx::raw_sql("CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT)")
        .execute(&pool)
        .await
        .unwrap();
    let table = UsersTable::new("users")
        .unwrap()
        .global_table("jwt_revoke_global")
        .unwrap();
    let store = SqliteUsersStore::new(pool.clone(), table);
    jwt_revoke::sqlx::raw_sql(store.migration_sql())
        .execute(&pool)
        .await
        .unwrap();
    jwt_revoke::sqlx::query("INSERT INTO users (id, name) VALUES ('alice', 'a')")
        .execute(&pool)
        .await
        .unwrap();
    store
}

// Broke before: 5 (SQL: a missing global row is recreated as a revocation, never
// read as "no global cutoff") — for the users-table stores, whose global
// table has the shipped shape (and may be the shipped table)
#[tokio::test]
async fn users_store_reads_a_lost_global_row_as_no_global_cutoff() {
    let store = users_store().await;
    let nb = store.revoke_all_before(unix_now()).await.unwrap();
    jwt_revoke::sqlx::query("DELETE FROM jwt_revoke_global")
        .execute(store.pool())
        .await
        .unwrap();
    let global = store.load_global().await.unwrap();
    assert!(
        global >= nb.min(unix_now()),
        "the lost global cutoff ({nb}) reads as {global}"
    );
}

// ---------------------------------------------------------------------------
// Promise 2: repairs never re-arm.
// ---------------------------------------------------------------------------

// Broke before: 2 (the shipped SQL refuses an UPDATE that lowers token_version)
// — the SQL the users-table stores ship (`migration_sql`) adds the columns
// without the monotone trigger: a "repair" that resets the version is
// accepted and re-arms every revoked token.
#[tokio::test]
async fn users_store_migration_sql_lets_a_repair_lower_the_version() {
    let store = users_store().await;
    store.bump_version("alice").await.unwrap();
    store.bump_version("alice").await.unwrap();
    let reset = jwt_revoke::sqlx::query("UPDATE users SET token_version = 0 WHERE id = 'alice'")
        .execute(store.pool())
        .await;
    assert!(
        reset.is_err(),
        "a repair lowered the version: {:?}",
        store.load("alice").await
    );
}

// HELD
//
// The shipped SQLite schema: lowering a version, or a `not_before` below
// now + 1, is refused (also through an upsert, and on the global row);
// bringing a future lock back to now + 1 is allowed.
#[tokio::test]
async fn sqlite_schema_refuses_repairs_that_re_arm() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    let now = unix_now();
    store
        .insert("alice", Cutoff::new(5, now + 3600))
        .await
        .unwrap();
    store.revoke_all_before(now + 100).await.unwrap();
    let pool = store.pool();
    for sql in [
        "UPDATE jwt_revoke_cutoffs SET token_version = 4 WHERE sub = 'alice'",
        "UPDATE jwt_revoke_cutoffs SET not_before = 0 WHERE sub = 'alice'",
        "UPDATE jwt_revoke_cutoffs SET not_before = CAST(strftime('%s','now') AS INTEGER) WHERE sub = 'alice'",
        "INSERT INTO jwt_revoke_cutoffs (sub, token_version, not_before) VALUES ('alice', 0, 0) \
         ON CONFLICT (sub) DO UPDATE SET token_version = excluded.token_version",
        "UPDATE jwt_revoke_global SET not_before = 0",
    ] {
        assert!(
            jwt_revoke::sqlx::query(sql).execute(pool).await.is_err(),
            "accepted: {sql}"
        );
    }
    jwt_revoke::sqlx::query(
        "UPDATE jwt_revoke_cutoffs SET not_before = CAST(strftime('%s','now') AS INTEGER) + 1 WHERE sub = 'alice'",
    )
    .execute(pool)
    .await
    .expect("lifting a future lock to now + 1");
    assert_eq!(store.load("alice").await.unwrap().unwrap().version, 5);
}

// HELD
//
// The shipped PostgreSQL schema, the same repairs.
#[tokio::test]
async fn postgres_schema_refuses_repairs_that_re_arm() {
    let store = common::isolated_postgres().await;
    let sub = unique("r3-repair");
    let now = unix_now();
    store
        .insert(&sub, Cutoff::new(5, now + 3600))
        .await
        .unwrap();
    let pool = store.pool();
    for sql in [
        "UPDATE jwt_revoke_cutoffs SET token_version = 4 WHERE sub = $1",
        "UPDATE jwt_revoke_cutoffs SET not_before = 0 WHERE sub = $1",
        "UPDATE jwt_revoke_cutoffs SET not_before = FLOOR(EXTRACT(EPOCH FROM now()))::BIGINT WHERE sub = $1",
        "INSERT INTO jwt_revoke_cutoffs (sub, token_version, not_before) VALUES ($1, 0, 0) \
         ON CONFLICT (sub) DO UPDATE SET token_version = EXCLUDED.token_version",
    ] {
        assert!(
            jwt_revoke::sqlx::query(sql)
                .bind(&sub)
                .execute(pool)
                .await
                .is_err(),
            "accepted: {sql}"
        );
    }
    // A global cutoff in the past (harmless to other tests on this database).
    store.revoke_all_before(now - 100).await.unwrap();
    assert!(
        jwt_revoke::sqlx::query("UPDATE jwt_revoke_global SET not_before = not_before - 1")
            .execute(pool)
            .await
            .is_err(),
        "lowered the global cutoff"
    );
    jwt_revoke::sqlx::query(
        "UPDATE jwt_revoke_cutoffs SET not_before = FLOOR(EXTRACT(EPOCH FROM clock_timestamp()))::BIGINT + 1 WHERE sub = $1",
    )
    .bind(&sub)
    .execute(pool)
    .await
    .expect("lifting a future lock to now + 1");
}

// ---------------------------------------------------------------------------
// Promise 3 (cache stamps) and availability notes.
// ---------------------------------------------------------------------------

// HELD (availability note, fail-closed): an instance that cached the old
// subject's high version rejects the recreated user's fresh tokens only
// until its entry expires (fresh reads replace), not for good.
#[tokio::test]
async fn a_recreated_user_is_locked_out_on_other_instances_for_one_ttl_only() {
    let clock = FakeClock::new(T0);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    store.insert("alice", Cutoff::default());
    for _ in 0..5 {
        store.bump_version("alice").await.unwrap();
    }
    clock.advance(Duration::from_secs(1));
    let a = guard_on(store.clone(), &clock);
    let b = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .sessions(sessions())
        .cache_ttl(Duration::from_secs(30))
        .build()
        .unwrap();
    let old = a.issue("alice", &()).await.unwrap();
    b.validate::<()>(&old).await.unwrap(); // b caches version 5
    store.remove("alice");
    clock.advance(Duration::from_secs(2));
    store.insert("alice", Cutoff::default());
    clock.advance(Duration::from_secs(2));
    let fresh = a.issue("alice", &()).await.unwrap(); // version 0
    assert!(
        b.validate::<()>(&fresh).await.is_err(),
        "locked out (fail closed)"
    );
    clock.advance(Duration::from_secs(31));
    b.validate::<()>(&fresh)
        .await
        .expect("after the TTL the recreated user gets in");
    assert!(b.validate::<()>(&old).await.is_err());
}

// Broke before: 1 (a recreated subject never inherits the old one's access
// tokens) — users-table stores never create rows, but the SQL they ship
// (`migration_sql`) makes every row the host creates start at
// `tokens_not_before DEFAULT 0`, unlike the shipped cutoff tables (now + 1).
// A user deleted and registered again under the same id accepts every
// token of the deleted account, however old, whatever its version.
#[tokio::test]
async fn users_store_a_re_registered_user_inherits_every_old_token() {
    let store = Arc::new(users_store().await);
    // The row was created at the database's second T (`T + 2`); a login
    // at the earliest second it can, T + 1.
    let created = unix_now();
    let clock = FakeClock::new(created + 1);
    let guard = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    store.bump_version("alice").await.unwrap();
    store.bump_version("alice").await.unwrap();
    let old = guard.issue("alice", &()).await.unwrap(); // ver 2
    // The database's clock gets to T + 1 too (deletion and sign-up follow).
    while unix_now() <= created {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    jwt_revoke::sqlx::query("DELETE FROM users WHERE id = 'alice'")
        .execute(store.pool())
        .await
        .unwrap();
    guard.forget("alice");
    assert!(matches!(
        guard.validate::<()>(&old).await,
        Err(Error::UnknownSubject)
    ));
    // Minutes later, someone registers "alice" again.
    clock.advance(Duration::from_secs(600));
    jwt_revoke::sqlx::query("INSERT INTO users (id, name) VALUES ('alice', 'new')")
        .execute(store.pool())
        .await
        .unwrap();
    guard.clear_cache();
    assert_rejected(
        guard.validate::<()>(&old).await,
        "the deleted account's token validates for the new account",
    );
}
