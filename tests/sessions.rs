//! Sessions and refresh tokens through the guard: log out one device,
//! rotation with reuse detection, the combined rule, and the cache traps
//! (stale loads, late events, cancellation, hung stores) for session state.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::fixture::{T0, assert_revoked, keys, until};
use jwt_revoke::{
    Algorithm, Cutoff, CutoffEvent, CutoffStore, EncodingKey, Error, FakeClock, Guard, RefreshKey,
    RevokedReason, Session, SessionConfig, SessionStore,
};

use common::session_probe::{
    Probe, assert_session_revoked, builder as setup_with, config, hold, release, setup,
};

#[tokio::test]
async fn a_login_gives_a_session_token_that_validates_and_names_its_session() {
    let (_, _, guard) = setup(&["alice"]);
    let login = guard.login("alice", &()).await.unwrap();
    let v = guard.validate::<()>(&login.access_token).await.unwrap();
    assert_eq!(v.session_id(), Some(login.session_id.as_str()));
    assert_eq!(v.sub(), "alice");
    assert_eq!(login.expires_in, guard.access_ttl());
    assert_eq!(login.session_id.len(), 22);
    assert!(login.refresh_token.starts_with("jrt1."));
    // Tokens never appear in Debug output.
    let shown = format!("{login:?}");
    assert!(!shown.contains(&login.access_token) && !shown.contains(&login.refresh_token));
}

#[tokio::test]
async fn logging_out_one_device_leaves_the_others_working() {
    let (_, _, guard) = setup(&["alice"]);
    let phone = guard.login("alice", &()).await.unwrap();
    let laptop = guard.login("alice", &()).await.unwrap();
    assert_ne!(phone.session_id, laptop.session_id);
    // Warm the cache for both: the revocation must beat a fresh entry.
    guard.validate::<()>(&phone.access_token).await.unwrap();
    guard.validate::<()>(&laptop.access_token).await.unwrap();

    let v = guard.validate::<()>(&phone.access_token).await.unwrap();
    assert!(guard.logout(&v).await.unwrap());
    assert_session_revoked(
        guard.validate::<()>(&phone.access_token).await,
        "the logged-out device's access token dies at once",
    );
    assert_session_revoked(
        guard.refresh(&phone.refresh_token, &()).await,
        "and its refresh token",
    );
    guard
        .validate::<()>(&laptop.access_token)
        .await
        .expect("the other device keeps working");
    guard
        .refresh(&laptop.refresh_token, &())
        .await
        .expect("and can refresh");
    // Logging out twice changes nothing and says so.
    assert!(
        !guard
            .revoke_session("alice", &phone.session_id)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_rotated_refresh_token_presented_again_revokes_only_its_session() {
    let (_, _, guard) = setup(&["alice"]);
    let phone = guard.login("alice", &()).await.unwrap();
    let laptop = guard.login("alice", &()).await.unwrap();
    let next = guard.refresh(&phone.refresh_token, &()).await.unwrap();
    assert_eq!(next.session_id, phone.session_id);
    assert_ne!(next.refresh_token, phone.refresh_token);
    guard.validate::<()>(&next.access_token).await.unwrap();

    assert!(matches!(
        guard.refresh(&phone.refresh_token, &()).await,
        Err(Error::RefreshReused)
    ));
    assert_session_revoked(
        guard.validate::<()>(&next.access_token).await,
        "reuse kills the session's newest access token",
    );
    assert_session_revoked(
        guard.validate::<()>(&phone.access_token).await,
        "and its first one",
    );
    assert_session_revoked(
        guard.refresh(&next.refresh_token, &()).await,
        "and its newest refresh token",
    );
    guard.validate::<()>(&laptop.access_token).await.unwrap();
    guard.refresh(&laptop.refresh_token, &()).await.unwrap();
    let stats = guard.stats();
    assert_eq!(stats.refresh_reuses, 1);
    assert_eq!(stats.sessions_created, 2);
}

#[tokio::test]
async fn fifty_concurrent_refreshes_of_one_token_rotate_exactly_once() {
    let (_, _, guard) = setup(&["alice"]);
    let login = guard.login("alice", &()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let guard = guard.clone();
        let token = login.refresh_token.clone();
        tasks.push(tokio::spawn(
            async move { guard.refresh(&token, &()).await },
        ));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::RefreshReused | Error::SessionRevoked) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 1, "exactly one concurrent refresh rotates");
}

#[tokio::test]
async fn logging_out_everywhere_ends_every_session_and_refresh_token() {
    for how in ["bump", "revoke_before_now", "revoke_before_past", "global"] {
        let (clock, _, guard) = setup(&["alice"]);
        let a = guard.login("alice", &()).await.unwrap();
        let b = guard.login("alice", &()).await.unwrap();
        guard.validate::<()>(&a.access_token).await.unwrap();
        clock.advance(Duration::from_secs(5));
        match how {
            "bump" => drop(guard.bump_version("alice").await.unwrap()),
            "revoke_before_now" => drop(guard.revoke_before("alice", T0 + 5).await.unwrap()),
            "revoke_before_past" => drop(guard.revoke_before("alice", T0 + 1).await.unwrap()),
            _ => drop(guard.revoke_all_before(T0 + 1).await.unwrap()),
        }
        for s in [&a, &b] {
            assert!(
                guard.validate::<()>(&s.access_token).await.is_err(),
                "{how}: access token revoked"
            );
            clock.advance(Duration::from_secs(3));
            assert_session_revoked(
                guard.refresh(&s.refresh_token, &()).await,
                &format!("{how}: refresh refused"),
            );
        }
        assert!(guard.sessions("alice").await.unwrap().is_empty(), "{how}");
        // A new login works at once and is the only session listed.
        let c = guard.login("alice", &()).await.unwrap();
        guard.validate::<()>(&c.access_token).await.unwrap();
        let listed = guard.sessions("alice").await.unwrap();
        assert_eq!(listed.len(), 1, "{how}");
        assert_eq!(listed[0].id, c.session_id);
    }
}

#[tokio::test]
async fn a_login_and_a_revocation_in_the_same_second_end_the_session() {
    // Login at T0 after a revocation at T0 (iat stamped T0 + 1), then a
    // second revocation at T0: the session must end too.
    let (_, _, guard) = setup(&["alice"]);
    guard.revoke_before("alice", T0).await.unwrap();
    let s = guard.login("alice", &()).await.unwrap();
    guard.validate::<()>(&s.access_token).await.unwrap();
    guard.revoke_before("alice", T0).await.unwrap();
    assert_revoked(
        guard.validate::<()>(&s.access_token).await,
        RevokedReason::Version,
        "the same-second rule bumps the version",
    );
    assert_session_revoked(
        guard.refresh(&s.refresh_token, &()).await,
        "the session's refresh token is refused",
    );
}

#[tokio::test]
async fn tokens_without_a_session_are_checked_against_the_user_and_global_cutoffs() {
    let (_, _, guard) = setup(&["alice"]);
    let plain = guard.issue("alice", &()).await.unwrap();
    let v = guard.validate::<()>(&plain).await.unwrap();
    assert_eq!(v.session_id(), None);
    assert!(!guard.logout(&v).await.unwrap(), "nothing to log out");
    guard.validate::<()>(&plain).await.unwrap();
    guard.bump_version("alice").await.unwrap();
    assert_revoked(
        guard.validate::<()>(&plain).await,
        RevokedReason::Version,
        "a sid-less token still dies by the user's cutoff",
    );
}

#[tokio::test]
async fn a_guard_without_sessions_refuses_session_tokens_loudly() {
    let (clock, store, guard) = setup(&["alice"]);
    let s = guard.login("alice", &()).await.unwrap();
    let plain = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let err = plain.validate::<()>(&s.access_token).await.unwrap_err();
    assert!(matches!(err, Error::SessionsDisabled));
    assert_eq!((err.code(), err.status()), ("sessions_disabled", 500));
    assert_eq!(
        err.to_string(),
        "token has a session id but sessions are not enabled on this guard"
    );
    // Foreign-token mode ignores an identity provider's own `sid`.
    let foreign = Guard::builder(keys(), store)
        .clock(clock)
        .foreign_tokens(true)
        .build()
        .unwrap();
    foreign.validate::<()>(&s.access_token).await.unwrap();
}

#[tokio::test]
async fn a_session_call_on_a_guard_without_sessions_says_how_to_enable_them() {
    let (clock, store, guard) = setup(&["alice"]);
    let s = guard.login("alice", &()).await.unwrap();
    let plain = Guard::builder(keys(), store).clock(clock).build().unwrap();
    let errors = [
        plain.login("alice", &()).await.unwrap_err(),
        plain.refresh(&s.refresh_token, &()).await.unwrap_err(),
        plain
            .refresh_with(&s.refresh_token, |_, _| async { Ok::<_, Error>(()) })
            .await
            .unwrap_err(),
        plain
            .revoke_session("alice", &s.session_id)
            .await
            .unwrap_err(),
        plain.revoke_sessions("alice").await.unwrap_err(),
        plain.sessions("alice").await.unwrap_err(),
        plain.purge_sessions().await.unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, Error::SessionsNotConfigured), "{err:?}");
        assert_eq!(
            err.to_string(),
            "sessions are not enabled on this guard: \
             build it with GuardBuilder::sessions(SessionConfig::new(..))"
        );
        // The same code and status as before: dashboards and clients
        // matching on them see no change.
        assert_eq!((err.code(), err.status()), ("sessions_disabled", 500));
    }
}

#[tokio::test]
async fn garbage_tampered_and_crossed_refresh_tokens_are_refused() {
    let (clock, _, guard) = setup(&["alice"]);
    let s = guard.login("alice", &()).await.unwrap();
    let mut cases: Vec<String> = vec![
        String::new(),
        "garbage".into(),
        "jrt1....".into(),
        "x".repeat(100_000),
        s.access_token.clone(),
    ];
    // One changed character anywhere.
    for i in (0..s.refresh_token.len()).step_by(7) {
        let mut b = s.refresh_token.clone().into_bytes();
        b[i] = if b[i] == b'a' { b'b' } else { b'a' };
        cases.push(String::from_utf8(b).unwrap());
    }
    // Minted with another refresh key.
    let other = setup_with(
        &["alice"],
        SessionConfig::new(RefreshKey::new(b"another-refresh-secret-of-32-byt").unwrap()),
    )
    .2
    .build()
    .unwrap();
    cases.push(other.login("alice", &()).await.unwrap().refresh_token);
    for (i, c) in cases.iter().enumerate() {
        if *c == s.refresh_token {
            continue;
        }
        assert!(
            matches!(guard.refresh(c, &()).await, Err(Error::RefreshInvalid)),
            "case {i}"
        );
    }
    // A refresh token is no access token.
    assert!(matches!(
        guard.validate::<()>(&s.refresh_token).await,
        Err(Error::Malformed(_))
    ));
    // None of that touched the session.
    let next = guard.refresh(&s.refresh_token, &()).await.unwrap();
    // An expired refresh token is invalid, and does not count as reuse.
    clock.advance(Duration::from_secs(31 * 86_400));
    assert!(matches!(
        guard.refresh(&next.refresh_token, &()).await,
        Err(Error::RefreshInvalid)
    ));
}

#[tokio::test]
async fn the_refresh_lifetime_slides_with_each_rotation() {
    let (clock, _, b) = setup_with(&["alice"], config().refresh_ttl(Duration::from_secs(100)));
    let guard = b.build().unwrap();
    let mut s = guard.login("alice", &()).await.unwrap();
    for _ in 0..5 {
        clock.advance(Duration::from_secs(90));
        s = guard.refresh(&s.refresh_token, &()).await.unwrap();
        assert_eq!(s.refresh_expires_at, clock_secs(&clock) + 100);
    }
    clock.advance(Duration::from_secs(100));
    assert!(matches!(
        guard.refresh(&s.refresh_token, &()).await,
        Err(Error::RefreshInvalid)
    ));
}

fn clock_secs(clock: &FakeClock) -> i64 {
    use jwt_revoke::Clock;
    clock.now_seconds()
}

#[tokio::test]
async fn without_grace_a_retried_refresh_is_reuse() {
    let (_, _, guard) = setup(&["alice"]);
    let s = guard.login("alice", &()).await.unwrap();
    let _lost = guard.refresh(&s.refresh_token, &()).await.unwrap();
    assert!(matches!(
        guard.refresh(&s.refresh_token, &()).await,
        Err(Error::RefreshReused)
    ));
}

#[tokio::test]
async fn the_reuse_grace_allows_one_retry_of_the_previous_generation_and_no_more() {
    let (clock, _, b) = setup_with(&["alice"], config().reuse_grace(Duration::from_secs(10)));
    let guard = b.build().unwrap();
    let s = guard.login("alice", &()).await.unwrap();
    let lost = guard.refresh(&s.refresh_token, &()).await.unwrap();
    clock.advance(Duration::from_secs(5));
    let retried = guard
        .refresh(&s.refresh_token, &())
        .await
        .expect("within the grace, the previous generation rotates once more");
    // The grace does not allow endless refresh from an old token: the
    // token before is now two generations behind.
    assert!(matches!(
        guard.refresh(&s.refresh_token, &()).await,
        Err(Error::RefreshReused)
    ));
    assert_session_revoked(guard.refresh(&lost.refresh_token, &()).await, "revoked");
    assert_session_revoked(guard.refresh(&retried.refresh_token, &()).await, "revoked");

    // Past the grace, the previous generation is reuse.
    let s = guard.login("alice", &()).await.unwrap();
    let _next = guard.refresh(&s.refresh_token, &()).await.unwrap();
    clock.advance(Duration::from_secs(11));
    assert!(matches!(
        guard.refresh(&s.refresh_token, &()).await,
        Err(Error::RefreshReused)
    ));
}

#[tokio::test]
async fn a_session_is_revoked_only_by_its_own_subject() {
    let (_, _, guard) = setup(&["alice", "mallory"]);
    let alice = guard.login("alice", &()).await.unwrap();
    assert!(
        !guard
            .revoke_session("mallory", &alice.session_id)
            .await
            .unwrap()
    );
    assert!(
        !guard
            .revoke_session("alice", "not-a-session-id")
            .await
            .unwrap()
    );
    guard.validate::<()>(&alice.access_token).await.unwrap();
    guard.refresh(&alice.refresh_token, &()).await.unwrap();
    assert!(guard.sessions("mallory").await.unwrap().is_empty());
    assert_eq!(guard.sessions("alice").await.unwrap().len(), 1);
}

#[tokio::test]
async fn listing_shows_active_sessions_oldest_first() {
    let (clock, _, guard) = setup(&["alice"]);
    let a = guard.login("alice", &()).await.unwrap();
    clock.advance(Duration::from_secs(10));
    let b = guard.login("alice", &()).await.unwrap();
    clock.advance(Duration::from_secs(10));
    let c = guard.login("alice", &()).await.unwrap();
    guard.revoke_session("alice", &b.session_id).await.unwrap();
    clock.advance(Duration::from_secs(10));
    guard.refresh(&a.refresh_token, &()).await.unwrap();
    let listed = guard.sessions("alice").await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [a.session_id.as_str(), c.session_id.as_str()]);
    assert_eq!(listed[0].last_used_at, T0 + 30);
    assert_eq!(listed[0].created_at, T0);
    assert_eq!(listed[0].generation, 1);
}

#[tokio::test]
async fn purging_keeps_a_session_while_its_access_tokens_can_live() {
    let (clock, store, b) = setup_with(&["alice"], config().refresh_ttl(Duration::from_secs(60)));
    let guard = b.build().unwrap();
    let s = guard.login("alice", &()).await.unwrap();
    guard.revoke_session("alice", &s.session_id).await.unwrap();
    // Refresh expired, but an access token minted at the last rotation
    // could still be within its lifetime and the leeway.
    clock.advance(Duration::from_secs(61));
    assert_eq!(guard.purge_sessions().await.unwrap(), 0);
    clock.advance(guard.access_ttl() + Duration::from_secs(60 + 300));
    assert_eq!(guard.purge_sessions().await.unwrap(), 1);
    assert_eq!(
        store
            .inner
            .load_session("alice", &s.session_id)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_cached_live_session_costs_no_store_call() {
    let (_, store, guard) = setup(&["alice"]);
    let s = guard.login("alice", &()).await.unwrap();
    for _ in 0..100 {
        guard.validate::<()>(&s.access_token).await.unwrap();
    }
    assert_eq!(
        store.session_loads.load(Ordering::SeqCst),
        1,
        "one session load, then cache hits"
    );
    let stats = guard.stats();
    assert_eq!((stats.session_misses, stats.session_hits), (1, 99));
}

#[tokio::test]
async fn concurrent_misses_for_one_session_share_one_load() {
    let (_, store, guard) = setup(&["alice"]);
    let s = guard.login("alice", &()).await.unwrap();
    let gate = hold(&store.session_gate);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let guard = guard.clone();
        let token = s.access_token.clone();
        tasks.push(tokio::spawn(
            async move { guard.validate::<()>(&token).await },
        ));
    }
    until(|| store.session_loads.load(Ordering::SeqCst) >= 1).await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(1_000);
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.session_loads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn another_instance_sees_a_session_revocation_within_the_ttl_or_at_once_by_event() {
    let (clock, store, guard) = setup(&["alice"]);
    let other = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .sessions(config())
        .build()
        .unwrap();
    let a = guard.login("alice", &()).await.unwrap();
    let b = guard.login("alice", &()).await.unwrap();
    other.validate::<()>(&a.access_token).await.unwrap();
    other.validate::<()>(&b.access_token).await.unwrap();

    guard.revoke_session("alice", &a.session_id).await.unwrap();
    other
        .validate::<()>(&a.access_token)
        .await
        .expect("without the bus, the other instance may accept within its TTL");
    clock.advance(Duration::from_secs(30));
    assert_session_revoked(other.validate::<()>(&a.access_token).await, "after the TTL");
    // b is cached fresh again on the other instance.
    other.validate::<()>(&b.access_token).await.unwrap();

    guard.revoke_session("alice", &b.session_id).await.unwrap();
    other
        .apply_event(&CutoffEvent::Session {
            sub: "alice".into(),
            sid: b.session_id.clone(),
        })
        .unwrap();
    assert_session_revoked(
        other.validate::<()>(&b.access_token).await,
        "the event applies at once",
    );
}

#[tokio::test]
async fn a_session_load_overtaken_by_its_revocation_never_revives_the_session() {
    let (_, store, guard) = setup(&["alice"]);
    let s = guard.login("alice", &()).await.unwrap();
    // A validation reads "live", then stalls before answering.
    let gate = hold(&store.session_gate);
    let slow = {
        let guard = guard.clone();
        let token = s.access_token.clone();
        tokio::spawn(async move { guard.validate::<()>(&token).await })
    };
    until(|| store.session_loads.load(Ordering::SeqCst) == 1).await;
    // The session is revoked and the cache cleared (an eviction) while the
    // old read is still on its way.
    guard.revoke_session("alice", &s.session_id).await.unwrap();
    guard.clear_cache();
    drop(gate);
    release(&store.session_gate);
    let _ = slow.await.unwrap();
    // Whatever the slow request answered, the old read was not cached.
    assert_session_revoked(
        guard.validate::<()>(&s.access_token).await,
        "a stale 'live' read must not be cached after the revocation",
    );
}

#[tokio::test]
async fn a_validation_after_a_revocation_never_joins_an_older_session_load() {
    let (_, store, guard) = setup(&["alice"]);
    let s = guard.login("alice", &()).await.unwrap();
    let gate = hold(&store.session_gate);
    let early = {
        let guard = guard.clone();
        let token = s.access_token.clone();
        tokio::spawn(async move { guard.validate::<()>(&token).await })
    };
    until(|| store.session_loads.load(Ordering::SeqCst) == 1).await;
    guard.revoke_session("alice", &s.session_id).await.unwrap();
    let late = {
        let guard = guard.clone();
        let token = s.access_token.clone();
        tokio::spawn(async move { guard.validate::<()>(&token).await })
    };
    until(|| store.session_loads.load(Ordering::SeqCst) == 2).await;
    gate.add_permits(10);
    let _ = early.await.unwrap();
    assert_session_revoked(
        late.await.unwrap(),
        "a validation that started after the revocation returned",
    );
}

#[tokio::test]
async fn late_and_replayed_session_events_create_nothing() {
    let (_, store, guard) = setup(&["alice"]);
    let s = guard.login("alice", &()).await.unwrap();
    // An event for a session this instance never cached creates nothing;
    // the store decides (here: the session is live).
    guard
        .apply_event(&CutoffEvent::Session {
            sub: "alice".into(),
            sid: s.session_id.clone(),
        })
        .unwrap();
    guard.validate::<()>(&s.access_token).await.unwrap();
    assert_eq!(store.session_loads.load(Ordering::SeqCst), 1);
    // An event for an unknown subject or a malformed id is harmless.
    guard
        .apply_event(&CutoffEvent::Session {
            sub: "nobody".into(),
            sid: "x".into(),
        })
        .unwrap();
    guard.validate::<()>(&s.access_token).await.unwrap();
}

#[tokio::test]
async fn cancelled_validations_release_their_session_loads() {
    let (_, store, guard) = setup(&["alice"]);
    let s = guard.login("alice", &()).await.unwrap();
    let _gate = hold(&store.session_gate);
    for _ in 0..100 {
        let v = guard.validate::<()>(&s.access_token);
        let _ = tokio::time::timeout(Duration::from_millis(1), v).await;
    }
    assert_eq!(guard.loads_in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_hung_session_store_answers_store_unavailable_within_the_timeout() {
    let (_, store, b) = setup_with(&["alice"], config());
    let guard = b.store_timeout(Duration::from_secs(2)).build().unwrap();
    let s = guard.login("alice", &()).await.unwrap();
    store.hanging_sessions.store(true, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    let r = guard.validate::<()>(&s.access_token).await;
    assert!(matches!(r, Err(Error::StoreUnavailable(_))), "{r:?}");
    assert!(started.elapsed() <= Duration::from_secs(2));
}

#[tokio::test]
async fn a_failing_session_store_fails_closed_unless_stale_if_error() {
    let (clock, store, b) = setup_with(&["alice"], config());
    let guard = b.build().unwrap();
    let s = guard.login("alice", &()).await.unwrap();
    store.failing_sessions.store(true, Ordering::SeqCst);
    let r = guard.validate::<()>(&s.access_token).await;
    assert!(matches!(r, Err(Error::StoreUnavailable(_))), "{r:?}");

    let (clock2, store2, b) = setup_with(&["alice"], config());
    let guard = b.stale_if_error(Duration::from_secs(60)).build().unwrap();
    let s = guard.login("alice", &()).await.unwrap();
    guard.validate::<()>(&s.access_token).await.unwrap();
    store2.failing_sessions.store(true, Ordering::SeqCst);
    clock2.advance(Duration::from_secs(40));
    guard
        .validate::<()>(&s.access_token)
        .await
        .expect("a stale live session within the window");
    let _ = clock;
}

#[tokio::test]
async fn a_refresh_that_fails_on_the_store_before_rotating_keeps_the_session() {
    let (_, store, guard) = setup(&["alice"]);
    let s = guard.login("alice", &()).await.unwrap();
    // The subject's cutoff is read first; with the subject gone, nothing
    // rotates.
    let cutoff = store.inner.remove("alice").unwrap();
    assert!(matches!(
        guard.refresh(&s.refresh_token, &()).await,
        Err(Error::UnknownSubject)
    ));
    store.inner.insert("alice", cutoff);
    guard
        .refresh(&s.refresh_token, &())
        .await
        .expect("the refresh token was not spent by the failed attempt");
}

#[tokio::test]
async fn extra_claims_ride_in_session_tokens_and_sid_is_reserved() {
    #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
    struct Claims {
        role: String,
    }
    let (_, _, guard) = setup(&["alice"]);
    let claims = Claims {
        role: "admin".into(),
    };
    let s = guard.login("alice", &claims).await.unwrap();
    let v = guard.validate::<Claims>(&s.access_token).await.unwrap();
    assert_eq!(v.claims(), &claims);
    let r = guard.refresh(&s.refresh_token, &claims).await.unwrap();
    assert_eq!(
        guard
            .validate::<Claims>(&r.access_token)
            .await
            .unwrap()
            .claims(),
        &claims
    );
    let err = guard
        .issue("alice", &serde_json::json!({"sid": "mine"}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Issue(_)));
}

/// The application's own claims, from its own users table.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
struct Role {
    role: String,
}

/// What the application's users table says about `sub`.
fn role_of(sub: &str) -> Role {
    let role = if sub == "alice" { "admin" } else { "user" };
    Role { role: role.into() }
}

#[tokio::test]
async fn a_refresh_carries_the_claims_the_application_computes_for_its_subject() {
    let (_, _, guard) = setup(&["alice", "bob"]);
    for sub in ["alice", "bob"] {
        let login = guard.login(sub, &role_of(sub)).await.unwrap();
        assert_eq!(login.sub, sub);
        // A closure returning a future...
        let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = asked.clone();
        let next = guard
            .refresh_with(&login.refresh_token, |sub, sid| async move {
                log.lock().unwrap().push((sub.clone(), sid));
                Ok::<_, Error>(role_of(&sub))
            })
            .await
            .unwrap();
        assert_eq!(
            *asked.lock().unwrap(),
            [(sub.to_owned(), login.session_id.clone())],
            "the application is told whose session refreshes"
        );
        assert_eq!(
            (next.sub.as_str(), &next.session_id),
            (sub, &login.session_id)
        );
        let v = guard.validate::<Role>(&next.access_token).await.unwrap();
        assert_eq!((v.sub(), v.claims()), (sub, &role_of(sub)));
        // ...or an async closure.
        let again = guard
            .refresh_with(
                &next.refresh_token,
                async move |sub: String, _sid: String| Ok::<_, Error>(role_of(&sub)),
            )
            .await
            .unwrap();
        let v = guard.validate::<Role>(&again.access_token).await.unwrap();
        assert_eq!(v.claims(), &role_of(sub));
    }
}

#[tokio::test]
async fn a_failed_claims_lookup_aborts_the_refresh_and_spends_nothing() {
    let (_, _, guard) = setup(&["alice"]);
    let login = guard.login("alice", &role_of("alice")).await.unwrap();
    let err = guard
        .refresh_with(&login.refresh_token, |_, _| async {
            Err::<Role, _>(std::io::Error::other("users table unreachable"))
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ClaimsUnavailable(_)), "{err:?}");
    assert_eq!((err.code(), err.status()), ("claims_unavailable", 503));
    assert_eq!(
        err.to_string(),
        "the application could not compute the token's claims"
    );
    assert_eq!(
        std::error::Error::source(&err).map(ToString::to_string),
        Some("users table unreachable".to_owned()),
        "the application's error is kept as the source"
    );
    // Claims that cannot ride in a token are refused before rotating, too.
    for bad in [
        serde_json::json!(["admin"]),
        serde_json::json!({"sid": "x"}),
    ] {
        let err = guard
            .refresh_with(
                &login.refresh_token,
                |_, _| async move { Ok::<_, Error>(bad) },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Issue(_)), "{err:?}");
    }
    guard
        .validate::<Role>(&login.access_token)
        .await
        .expect("the session lives on");
    // The same refresh token still rotates: its generation was not spent.
    let next = guard
        .refresh_with(&login.refresh_token, |sub, _| async move {
            Ok::<_, Error>(role_of(&sub))
        })
        .await
        .expect("the refresh token still rotates");
    guard.validate::<Role>(&next.access_token).await.unwrap();
    // And it rotated only now: presenting it again is reuse.
    assert!(matches!(
        guard.refresh(&login.refresh_token, &role_of("alice")).await,
        Err(Error::RefreshReused)
    ));
}

#[tokio::test]
async fn the_application_is_asked_for_claims_only_for_a_genuine_token_of_a_known_subject() {
    let (_, store, guard) = setup(&["alice"]);
    let login = guard.login("alice", &()).await.unwrap();
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let claims = || {
        let asked = asked.clone();
        move |_: String, _: String| async move {
            asked.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Error>(())
        }
    };
    let mut forged = login.refresh_token.clone();
    forged.replace_range(5..6, if forged[5..6] == *"A" { "B" } else { "A" });
    assert!(matches!(
        guard.refresh_with(&forged, claims()).await,
        Err(Error::RefreshInvalid)
    ));
    let cutoff = store.inner.remove("alice").unwrap();
    assert!(matches!(
        guard.refresh_with(&login.refresh_token, claims()).await,
        Err(Error::UnknownSubject)
    ));
    assert_eq!(asked.load(Ordering::SeqCst), 0, "nobody was asked");
    store.inner.insert("alice", cutoff);
    guard
        .refresh_with(&login.refresh_token, claims())
        .await
        .unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_slow_claims_lookup_does_not_use_up_the_store_timeout() {
    let (_, _, b) = setup_with(&["alice"], config());
    let guard = b.store_timeout(Duration::from_secs(2)).build().unwrap();
    let login = guard.login("alice", &()).await.unwrap();
    let next = guard
        .refresh_with(&login.refresh_token, |sub, _| async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, Error>(role_of(&sub))
        })
        .await
        .expect("the store gets its whole timeout after the lookup");
    guard.validate::<Role>(&next.access_token).await.unwrap();
}

/// A token with the given registered claims, signed with the test key.
fn token(sub: &str, ver: u64, iat: i64, sid: Option<&str>) -> String {
    let mut claims = serde_json::json!({"sub": sub, "ver": ver, "iat": iat, "exp": iat + 3600});
    if let Some(sid) = sid {
        claims["sid"] = sid.into();
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(common::SECRET),
    )
    .unwrap()
}

#[tokio::test]
async fn wrong_sid_types_are_malformed() {
    let (_, _, guard) = setup(&["alice"]);
    for sid in [
        serde_json::json!(7),
        serde_json::json!(["a"]),
        serde_json::json!({}),
    ] {
        let claims =
            serde_json::json!({"sub": "alice", "ver": 0, "iat": T0, "exp": T0 + 60, "sid": sid});
        let t = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(common::SECRET),
        )
        .unwrap();
        assert!(
            matches!(guard.validate::<()>(&t).await, Err(Error::Malformed(_))),
            "{sid}"
        );
    }
    // A sid that is no session id of this library, or another subject's.
    let alice = guard.login("alice", &()).await.unwrap();
    for (sub, sid) in [("alice", "short"), ("bob", alice.session_id.as_str())] {
        let t = token(sub, 0, T0, Some(sid));
        assert!(guard.validate::<()>(&t).await.is_err(), "{sub} {sid}");
    }
}

mod combined_rule {
    //! The one rule, checked against a direct statement of it over random
    //! states: user cutoff, global cutoff, session live / revoked / absent,
    //! token with or without `sid`.
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
        #[test]
        fn the_guard_accepts_exactly_what_the_rule_accepts(
            version in 0u64..4,
            not_before in 0i64..4,
            global in 0i64..4,
            token_ver in 0u64..4,
            token_iat in 0i64..4,
            session in 0u8..4, // 0: no sid, 1: live, 2: revoked, 3: absent from the store
            created in 0i64..4,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let store = Arc::new(Probe::default());
                store.inner.insert("u", Cutoff::new(version, T0 + not_before));
                if global > 0 {
                    store.inner.revoke_all_before(T0 + global - 1).await.unwrap();
                }
                let sid = "AAAAAAAAAAAAAAAAAAAAAA";
                if session == 1 || session == 2 {
                    store.inner.create_session(&Session {
                        id: sid.into(), sub: "u".into(), generation: 0, version: 0,
                        created_at: T0 + created, last_used_at: T0, expires_at: T0 + 1000,
                        revoked_at: (session == 2).then_some(T0),
                        // The rule compares the cutoffs the login saw.
                        not_before_seen: T0 + created,
                    }).await.unwrap();
                }
                let clock = FakeClock::new(T0 + 3);
                let guard = Guard::builder(keys(), store).clock(clock).sessions(config()).build().unwrap();
                let t = token("u", token_ver, T0 + token_iat, (session > 0).then_some(sid));
                let accepted = guard.validate::<()>(&t).await.is_ok();
                let g = if global > 0 { T0 + global } else { 0 };
                let rule = token_ver >= version
                    && T0 + token_iat >= T0 + not_before
                    && T0 + token_iat >= g
                    && (session == 0
                        || (session == 1 && T0 + created >= T0 + not_before && T0 + created >= g));
                prop_assert_eq!(accepted, rule);
                Ok(())
            })?;
        }
    }
}
