//! State that goes missing, replies that get lost and clocks that
//! disagree: a deleted or recreated subject, a revocation retried after
//! its reply was lost, two instances whose clocks differ by seconds, a
//! repair in the database, limits that must agree with each other. Each
//! test is a way the revocation promise was broken before.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::events::Recorder;
use jwt_revoke::{
    Algorithm, Cutoff, Error, FakeClock, Guard, Keys, MemoryStore, RefreshKey, SessionConfig,
};

const T0: i64 = 1_800_000_000;

fn keys() -> Keys {
    Keys::hmac(Algorithm::HS256, common::SECRET).unwrap()
}

fn sessions() -> SessionConfig {
    SessionConfig::new(RefreshKey::new(common::SECRET).unwrap())
}

/// A guard with sessions over `store`, on `clock`.
fn guard(store: Arc<MemoryStore>, clock: &FakeClock) -> Guard<Arc<MemoryStore>> {
    Guard::builder(keys(), store)
        .clock(clock.clone())
        .sessions(sessions())
        .build()
        .unwrap()
}

/// A guard with sessions over a memory store holding `subjects`
/// (registered two seconds before), publishing to a recorder.
fn announcing(subjects: &[&str]) -> (Guard<Arc<MemoryStore>>, Recorder) {
    let clock = FakeClock::new(T0);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    for sub in subjects {
        store.insert(*sub, Cutoff::default());
    }
    let bus = Recorder::default();
    let g = Guard::builder(keys(), store)
        .clock(clock.clone())
        .sessions(sessions())
        .publisher(bus.clone())
        .build()
        .unwrap();
    clock.advance(Duration::from_secs(2));
    (g, bus)
}

/// A user deleted and registered again under the same `sub` inherits
/// nothing: not the old account's access tokens (whatever their version),
/// not its sessions, not its refresh tokens.
#[tokio::test]
async fn a_recreated_subject_inherits_no_token_session_or_refresh_token() {
    let clock = FakeClock::new(T0);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    store.insert("alice", Cutoff::default());
    let g = guard(store.clone(), &clock);
    // The old account: a few logouts everywhere, then a live session and
    // a live plain token, copied by someone.
    for _ in 0..3 {
        g.bump_version("alice").await.unwrap();
    }
    clock.advance(Duration::from_secs(5));
    let phone = g.login("alice", &()).await.unwrap();
    let plain = g.issue("alice", &()).await.unwrap();
    assert_eq!(g.validate::<()>(&plain).await.unwrap().version(), Some(3));

    // The account is deleted (the row goes), then a new one takes the name.
    clock.advance(Duration::from_secs(60));
    store.remove("alice");
    g.forget("alice");
    clock.advance(Duration::from_secs(60));
    store.insert("alice", Cutoff::default());
    g.clear_cache();
    // (A login or refresh in the record's creation second waits for the
    // next one.)
    clock.advance(Duration::from_secs(1));

    for (what, token) in [("plain", &plain), ("session", &phone.access_token)] {
        let err = g.validate::<()>(token).await.unwrap_err();
        assert!(
            matches!(err.code(), "token_revoked" | "session_revoked"),
            "{what}: {err:?}"
        );
    }
    let refreshed = g.refresh(&phone.refresh_token, &()).await;
    assert!(
        matches!(refreshed, Err(Error::SessionRevoked)),
        "{refreshed:?}"
    );
    // The new account works at once.
    let fresh = g.login("alice", &()).await.unwrap();
    g.validate::<()>(&fresh.access_token).await.unwrap();
}

/// The same through a revocation that recreates the lost row (the version
/// restarts at 1, below the old tokens' versions).
#[tokio::test]
async fn a_revocation_of_a_lost_row_never_revives_older_versions() {
    let clock = FakeClock::new(T0);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    store.insert("alice", Cutoff::default());
    let g = guard(store.clone(), &clock);
    let mut tokens = Vec::new();
    for _ in 0..4 {
        clock.advance(Duration::from_secs(2));
        tokens.push(g.issue("alice", &()).await.unwrap());
        g.bump_version("alice").await.unwrap();
    }
    clock.advance(Duration::from_secs(2));
    store.remove("alice");
    g.bump_version("alice").await.unwrap(); // recreated at version 1
    g.clear_cache();
    for (ver, t) in tokens.iter().enumerate() {
        assert_eq!(
            g.validate::<()>(t).await.unwrap_err().code(),
            "token_revoked",
            "version {ver}"
        );
    }
}

/// `revoke_sessions` ends every session of a subject (a deleted user's),
/// leaves other subjects alone, and a retry names the sessions again.
#[tokio::test]
async fn revoke_sessions_ends_every_session_of_the_subject_and_a_retry_announces_them() {
    let (g, bus) = announcing(&["alice", "bob"]);
    let a1 = g.login("alice", &()).await.unwrap();
    let a2 = g.login("alice", &()).await.unwrap();
    let b = g.login("bob", &()).await.unwrap();
    assert_eq!(g.revoke_sessions("alice").await.unwrap(), 2);
    for t in [&a1, &a2] {
        assert_eq!(
            g.validate::<()>(&t.access_token).await.unwrap_err().code(),
            "session_revoked"
        );
        assert!(g.refresh(&t.refresh_token, &()).await.is_err());
    }
    g.validate::<()>(&b.access_token).await.unwrap();
    // Retried (say its reply was lost): every session is announced again.
    assert_eq!(g.revoke_sessions("alice").await.unwrap(), 2);
    // Announced by the first call, by the refused refresh, and again.
    assert_eq!(bus.sessions_announced(&a1.session_id), 3);
    assert_eq!(bus.sessions_announced(&b.session_id), 0);
}

/// Two instances over one store, the first one's clock 5 s ahead. A login
/// there one second before `revoke_all_before(now)` on the second stamps
/// its session after the cutoff by its own clock; the session must still
/// end (its access token may live until its `exp`, never a refresh).
#[tokio::test]
async fn a_session_begun_on_a_clock_ahead_does_not_outlive_a_global_revocation() {
    let on_time = FakeClock::new(T0);
    let ahead = FakeClock::new(T0 + 5);
    let store = Arc::new(MemoryStore::with_clock(on_time.clone()));
    store.insert("alice", Cutoff::new(0, T0 - 100));
    let a = guard(store.clone(), &ahead);
    let b = guard(store.clone(), &on_time);
    on_time.advance(Duration::from_secs(100));
    ahead.advance(Duration::from_secs(100));
    let login = a.login("alice", &()).await.unwrap();
    on_time.advance(Duration::from_secs(1));
    ahead.advance(Duration::from_secs(1));
    b.revoke_all_before(T0 + 101).await.unwrap();
    // Past the access token's life, on either instance.
    for clock in [&on_time, &ahead] {
        clock.advance(Duration::from_secs(3600));
    }
    let refreshed = a.refresh(&login.refresh_token, &()).await;
    assert!(
        matches!(refreshed, Err(Error::SessionRevoked)),
        "{refreshed:?}"
    );
    // (On the other instance too; the refused refresh above spent the
    // token, so this one is reuse.)
    assert!(b.refresh(&login.refresh_token, &()).await.is_err());
    // A login after the revocation works on both.
    for g in [&a, &b] {
        let t = loop {
            match g.login("alice", &()).await {
                Err(Error::RetryLater) => {
                    for clock in [&on_time, &ahead] {
                        clock.advance(Duration::from_secs(1));
                    }
                }
                other => break other.unwrap(),
            }
        };
        g.validate::<()>(&t.access_token).await.unwrap();
    }
}

/// The same with a subject's `revoke_before` and an `at` in the past: the
/// session whose login did not see the revocation ends, whatever the
/// clock of the instance that stamped it.
#[tokio::test]
async fn a_session_begun_on_a_clock_ahead_does_not_outlive_a_past_revoke_before() {
    let on_time = FakeClock::new(T0);
    let ahead = FakeClock::new(T0 + 5);
    let store = Arc::new(MemoryStore::with_clock(on_time.clone()));
    store.insert("alice", Cutoff::new(0, T0 - 100));
    let a = guard(store.clone(), &ahead);
    let b = guard(store.clone(), &on_time);
    let login = a.login("alice", &()).await.unwrap(); // created_at T0 + 5
    on_time.advance(Duration::from_secs(10));
    ahead.advance(Duration::from_secs(10));
    b.revoke_before("alice", T0 + 2).await.unwrap();
    let refreshed = a.refresh(&login.refresh_token, &()).await;
    assert!(
        matches!(refreshed, Err(Error::SessionRevoked)),
        "{refreshed:?}"
    );
}

/// `revoke_session` retried after its reply was lost finds the session
/// already revoked (`false`) and still announces it, so other instances
/// learn it even then.
#[tokio::test]
async fn a_retried_revoke_session_publishes_again() {
    let (g, bus) = announcing(&["alice"]);
    let s = g.login("alice", &()).await.unwrap();
    assert!(g.revoke_session("alice", &s.session_id).await.unwrap());
    assert!(!g.revoke_session("alice", &s.session_id).await.unwrap());
    assert_eq!(bus.sessions_announced(&s.session_id), 2);
}

/// A reuse detected by the store whose answer was lost: the client retries
/// the same refresh and finds the session revoked. That answer announces
/// the revocation too.
#[tokio::test]
async fn a_refresh_retried_after_a_lost_reuse_answer_publishes_again() {
    let (g, bus) = announcing(&["alice"]);
    let s = g.login("alice", &()).await.unwrap();
    g.refresh(&s.refresh_token, &()).await.unwrap();
    // Reuse: the session is revoked (announced once)...
    assert!(matches!(
        g.refresh(&s.refresh_token, &()).await,
        Err(Error::RefreshReused)
    ));
    // ...and the retry of that request is announced again.
    assert!(matches!(
        g.refresh(&s.refresh_token, &()).await,
        Err(Error::SessionRevoked)
    ));
    assert_eq!(bus.sessions_announced(&s.session_id), 2);
}

/// A store read that takes longer than the TTL is too old to decide on, so
/// a store timeout that does not fit in the TTL is refused at build.
#[test]
fn a_store_timeout_that_does_not_fit_the_ttl_is_refused() {
    let build = |ttl: u64, timeout: u64| {
        Guard::builder(keys(), MemoryStore::new())
            .cache_ttl(Duration::from_millis(ttl))
            .store_timeout(Duration::from_millis(timeout))
            .build()
    };
    let err = build(1_000, 2_000).unwrap_err();
    assert!(
        err.to_string().contains("store_timeout") && err.to_string().contains("cache_ttl"),
        "{err}"
    );
    assert!(build(1_000, 1_000).is_err());
    assert!(build(1_000, 999).is_ok());
}

/// A reuse grace never accepts a spent refresh token longer than it says:
/// zero is none (not "up to a second"), and a grace under a second, which
/// whole-second session stamps cannot honour, is refused.
#[tokio::test]
async fn a_reuse_grace_never_exceeds_what_it_says() {
    let clock = FakeClock::new(T0);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    store.insert("alice", Cutoff::default());
    let with_grace = |grace: Duration| {
        Guard::builder(keys(), store.clone())
            .clock(clock.clone())
            .sessions(sessions().reuse_grace(grace))
            .build()
    };
    assert!(with_grace(Duration::from_millis(500)).is_err());
    let g = with_grace(Duration::ZERO).unwrap();
    clock.advance(Duration::from_secs(2));
    let s = g.login("alice", &()).await.unwrap();
    g.refresh(&s.refresh_token, &()).await.unwrap();
    // The same second, a zero grace: the spent token is reuse.
    assert!(matches!(
        g.refresh(&s.refresh_token, &()).await,
        Err(Error::RefreshReused)
    ));
    // A 2 s grace: a retry in the same second rotates; one two seconds
    // later (up to three seconds apart in time) is reuse.
    let g = with_grace(Duration::from_secs(2)).unwrap();
    let s = g.login("alice", &()).await.unwrap();
    g.refresh(&s.refresh_token, &()).await.unwrap();
    g.refresh(&s.refresh_token, &())
        .await
        .expect("within the grace");
    let s = g.login("alice", &()).await.unwrap();
    g.refresh(&s.refresh_token, &()).await.unwrap();
    clock.advance(Duration::from_secs(2));
    assert!(matches!(
        g.refresh(&s.refresh_token, &()).await,
        Err(Error::RefreshReused)
    ));
}

/// Repairs in the database never re-arm a token: the shipped schema
/// refuses lowering a version, and lets a future `not_before` come back to
/// now + 1 but no further.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn the_sqlite_schema_refuses_a_repair_that_would_re_arm_tokens() {
    use jwt_revoke::{CutoffStore, SqliteStore};
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    store.insert("alice", Cutoff::default()).await.unwrap();
    store.bump_version("alice").await.unwrap();
    store.revoke_before("alice", 4_000_000_000).await.unwrap(); // a lock, by mistake
    let run = |sql: &'static str| {
        let pool = store.pool().clone();
        async move { jwt_revoke::sqlx::query(sql).execute(&pool).await }
    };
    let lowered = run("UPDATE jwt_revoke_cutoffs SET token_version = 0 WHERE sub = 'alice'").await;
    assert!(lowered.is_err(), "a version never goes down");
    let too_far = run("UPDATE jwt_revoke_cutoffs SET not_before = 0 WHERE sub = 'alice'").await;
    assert!(too_far.is_err(), "not_before never goes below now + 1");
    run(
        "UPDATE jwt_revoke_cutoffs SET not_before = CAST(strftime('%s', 'now') AS INTEGER) + 1 \
         WHERE sub = 'alice'",
    )
    .await
    .expect("a future lock comes back to now + 1");
    let c = store.load("alice").await.unwrap().unwrap();
    assert_eq!(c.version, 1);
    assert!(c.not_before <= common::conformance::wall_now() + 1);
    // The global row alike.
    store.revoke_all_before(4_000_000_000).await.unwrap();
    assert!(
        run("UPDATE jwt_revoke_global SET not_before = 5")
            .await
            .is_err()
    );
    run("UPDATE jwt_revoke_global SET not_before = CAST(strftime('%s', 'now') AS INTEGER) + 1")
        .await
        .expect("the global lock comes back to now + 1");
    // A global row deleted by hand comes back as a revocation, not as 0.
    run("DELETE FROM jwt_revoke_global").await.unwrap();
    assert!(store.load_global().await.unwrap() > common::conformance::wall_now());
}

/// The same on PostgreSQL.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn the_postgres_schema_refuses_a_repair_that_would_re_arm_tokens() {
    use jwt_revoke::{CutoffStore, PostgresStore};
    let store = PostgresStore::connect(&common::server_url("POSTGRES_URL"))
        .await
        .unwrap();
    let sub = common::unique("repair");
    store.insert(&sub, Cutoff::default()).await.unwrap();
    store.bump_version(&sub).await.unwrap();
    store.revoke_before(&sub, 4_000_000_000).await.unwrap();
    let run = |sql: &'static str| {
        let pool = store.pool().clone();
        let sub = sub.clone();
        async move { jwt_revoke::sqlx::query(sql).bind(sub).execute(&pool).await }
    };
    assert!(
        run("UPDATE jwt_revoke_cutoffs SET token_version = 0 WHERE sub = $1")
            .await
            .is_err()
    );
    assert!(
        run("UPDATE jwt_revoke_cutoffs SET not_before = 0 WHERE sub = $1")
            .await
            .is_err()
    );
    run("UPDATE jwt_revoke_cutoffs \
         SET not_before = FLOOR(EXTRACT(EPOCH FROM clock_timestamp()))::BIGINT + 1 WHERE sub = $1")
    .await
    .expect("a future lock comes back to now + 1");
    let c = store.load(&sub).await.unwrap().unwrap();
    assert_eq!(c.version, 1);
}
