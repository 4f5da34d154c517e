//! Adversarial review of sessions and refresh tokens: each test is named
//! after the promise it checks. Tests that fail show a broken promise; the
//! others are kept as regression tests.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::fixture::{T0, keys, until};
use jwt_revoke::session::apply_rotation;
use jwt_revoke::{
    Algorithm, CutoffEvent, EncodingKey, Error, FakeClock, Guard, GuardBuilder, RefreshKey, Rotate,
    Rotation, Session, SessionConfig,
};

use common::session_probe::{Store, assert_session_revoked, builder, config, hold, release, setup};

fn other_instance(
    clock: &FakeClock,
    store: &Store,
    b: impl FnOnce(GuardBuilder<Store>) -> GuardBuilder<Store>,
) -> Guard<Store> {
    b(Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .sessions(config()))
    .build()
    .unwrap()
}

fn token_with(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(common::SECRET),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------
// Reuse grace
// ---------------------------------------------------------------------------

/// Module docs (`session`, Refresh): "a thief who presents a stolen token
/// within the grace period after its owner refreshed gets a valid pair; the
/// owner's next refresh is then reuse and revokes the session, so the branch
/// lives at most one access-token lifetime."
#[tokio::test]
async fn reuse_grace_the_owners_next_refresh_after_a_thiefs_graced_refresh_is_reuse() {
    let (clock, _, b) = builder(&["alice"], config().reuse_grace(Duration::from_secs(10)));
    let guard = b.access_ttl(Duration::from_secs(60)).build().unwrap();
    let login = guard.login("alice", &()).await.unwrap();
    let stolen = login.refresh_token.clone();
    // The owner refreshes; the thief, within the grace, uses the stolen copy.
    let mut owner = guard.refresh(&login.refresh_token, &()).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let mut thief = guard
        .refresh(&stolen, &())
        .await
        .expect("documented: the thief gets a pair within the grace");
    // Both keep refreshing, each a few seconds after the other. The docs
    // promise that the owner's next refresh is reuse; the thief's branch must
    // not outlive one access-token lifetime (60 s).
    let mut refused = None;
    for round in 0..40 {
        clock.advance(Duration::from_secs(2));
        match guard.refresh(&owner.refresh_token, &()).await {
            Ok(t) => owner = t,
            Err(e) => {
                refused = Some((round, "owner", e));
                break;
            }
        }
        clock.advance(Duration::from_secs(2));
        match guard.refresh(&thief.refresh_token, &()).await {
            Ok(t) => thief = t,
            Err(e) => {
                refused = Some((round, "thief", e));
                break;
            }
        }
    }
    match refused {
        Some((0, "owner", Error::RefreshReused)) => {}
        other => panic!(
            "the owner's next refresh after the thief's must be reuse; got {other:?} \
             (the two branches rotated each other for 160 s past one access-token lifetime)"
        ),
    }
    assert_session_revoked(
        guard.validate::<()>(&thief.access_token).await,
        "the thief's access token dies with the session",
    );
}

/// Module docs: of concurrent refreshes with one token exactly one rotates;
/// with the grace, the previous generation rotates "once more", no more.
#[tokio::test]
async fn reuse_grace_fifty_concurrent_refreshes_rotate_at_most_twice_and_then_revoke() {
    let (_, _, b) = builder(&["alice"], config().reuse_grace(Duration::from_secs(10)));
    let guard = b.build().unwrap();
    let login = guard.login("alice", &()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let guard = guard.clone();
        let t = login.refresh_token.clone();
        tasks.push(tokio::spawn(async move { guard.refresh(&t, &()).await }));
    }
    let mut ok = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(s) => ok.push(s),
            Err(Error::RefreshReused | Error::SessionRevoked) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(!ok.is_empty() && ok.len() <= 2, "{} rotations", ok.len());
    for s in &ok {
        assert_session_revoked(
            guard.validate::<()>(&s.access_token).await,
            "the third presentation is reuse and ends the session",
        );
    }
}

/// `SessionStore::rotate_refresh` rule 4 at the top of the range: no
/// wrap-around, never a rotation past `u64::MAX`.
#[test]
fn rotation_at_generation_u64_max_never_wraps() {
    let mut s = Session {
        id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        sub: "alice".into(),
        generation: u64::MAX - 1,
        version: 0,
        created_at: T0,
        last_used_at: T0,
        expires_at: T0 + 1000,
        revoked_at: None,
        not_before_seen: 0,
    };
    let r = |generation| Rotate {
        generation,
        now: T0 + 1,
        expires_at: T0 + 2000,
        grace: Some(100),
    };
    assert!(matches!(
        apply_rotation(&mut s, r(u64::MAX - 1)),
        Rotation::Rotated(_)
    ));
    assert_eq!(s.generation, u64::MAX);
    // Current generation at MAX: cannot move forward; fails closed.
    assert!(!matches!(
        apply_rotation(&mut s.clone(), r(u64::MAX)),
        Rotation::Rotated(_)
    ));
    // Grace from MAX - 1 onto MAX: cannot move forward either.
    assert!(!matches!(
        apply_rotation(&mut s, r(u64::MAX - 1)),
        Rotation::Rotated(_)
    ));
    assert!(s.revoked_at.is_some());
    // A generation that would overflow `+ 1` in the grace check.
    let mut t = Session {
        generation: 0,
        revoked_at: None,
        ..s.clone()
    };
    assert!(matches!(
        apply_rotation(&mut t, r(u64::MAX)),
        Rotation::Reused(_)
    ));
}

// ---------------------------------------------------------------------------
// Refresh racing revocations
// ---------------------------------------------------------------------------

/// Module docs: "`bump_version`, `revoke_before` and `revoke_all_before`
/// still end every session at once", and a session "revoked by a timestamp
/// after the login (its ... login time is below the subject's cutoffs) is
/// refused". An access token a refresh minted before the revocation must
/// not keep the ended session usable.
#[tokio::test]
async fn revoke_before_a_past_time_ends_every_session_at_once_including_refreshed_access_tokens() {
    for global in [true, false] {
        let (clock, _, guard) = setup(&["alice"]);
        let s = guard.login("alice", &()).await.unwrap();
        clock.advance(Duration::from_secs(100));
        let refreshed = guard.refresh(&s.refresh_token, &()).await.unwrap();
        clock.advance(Duration::from_secs(100));
        // "Revoke everything from before T0 + 50" (e.g. a compromise
        // detected then). The session was created at T0: it is ended.
        if global {
            guard.revoke_all_before(T0 + 50).await.unwrap();
        } else {
            guard.revoke_before("alice", T0 + 50).await.unwrap();
        }
        assert!(guard.sessions("alice").await.unwrap().is_empty(), "ended");
        assert_session_revoked(
            guard.refresh(&refreshed.refresh_token, &()).await,
            "its refresh token is refused",
        );
        assert!(
            guard.validate::<()>(&refreshed.access_token).await.is_err(),
            "global={global}: an ended session's access token (minted by a refresh at \
             T0 + 100) is still accepted for a whole access-token lifetime"
        );
    }
}

/// Guard::refresh docs: a session the subject's cutoffs ended is refused; a
/// refresh whose cutoff read raced `bump_version` must not hand out a
/// usable access or refresh token after the bump returned.
#[tokio::test]
async fn a_refresh_racing_bump_version_yields_no_usable_token() {
    let (_, store, guard) = setup(&["alice"]);
    let s = guard.login("alice", &()).await.unwrap();
    let _gate = hold(&store.load_gate);
    let before = store.loads.load(Ordering::SeqCst);
    let refresh = {
        let guard = guard.clone();
        let t = s.refresh_token.clone();
        tokio::spawn(async move { guard.refresh(&t, &()).await })
    };
    until(|| store.loads.load(Ordering::SeqCst) > before).await;
    guard.bump_version("alice").await.unwrap();
    release(&store.load_gate);
    if let Ok(t) = refresh.await.unwrap() {
        assert!(guard.validate::<()>(&t.access_token).await.is_err());
        assert!(guard.refresh(&t.refresh_token, &()).await.is_err());
    }
    assert!(guard.sessions("alice").await.unwrap().is_empty());
}

/// Same for `revoke_before(now)` (same-second rule) and
/// `revoke_all_before(now)`.
#[tokio::test]
async fn a_refresh_racing_a_same_second_revocation_yields_no_usable_token() {
    for global in [false, true] {
        let (clock, store, guard) = setup(&["alice"]);
        let s = guard.login("alice", &()).await.unwrap();
        clock.advance(Duration::from_secs(5));
        let _gate = hold(&store.load_gate);
        let before = store.loads.load(Ordering::SeqCst);
        let refresh = {
            let guard = guard.clone();
            let t = s.refresh_token.clone();
            tokio::spawn(async move { guard.refresh(&t, &()).await })
        };
        until(|| store.loads.load(Ordering::SeqCst) > before).await;
        if global {
            guard.revoke_all_before(T0 + 5).await.unwrap();
        } else {
            guard.revoke_before("alice", T0 + 5).await.unwrap();
        }
        release(&store.load_gate);
        if let Ok(t) = refresh.await.unwrap() {
            assert!(
                guard.validate::<()>(&t.access_token).await.is_err(),
                "global={global}: access token"
            );
            clock.advance(Duration::from_secs(3));
            assert!(
                guard.refresh(&t.refresh_token, &()).await.is_err(),
                "global={global}: refresh token"
            );
        }
    }
}

/// Guard::revoke_session docs: access tokens are rejected by this guard as
/// soon as it returns, the refresh token stops rotating; a refresh whose
/// rotation landed just before must not hand out usable tokens.
#[tokio::test]
async fn a_refresh_racing_revoke_session_yields_no_usable_token() {
    let (_, store, guard) = setup(&["alice"]);
    let s = guard.login("alice", &()).await.unwrap();
    guard.validate::<()>(&s.access_token).await.unwrap();
    let _gate = hold(&store.rotate_gate);
    let refresh = {
        let guard = guard.clone();
        let t = s.refresh_token.clone();
        tokio::spawn(async move { guard.refresh(&t, &()).await })
    };
    until(|| store.rotations.load(Ordering::SeqCst) == 1).await;
    assert!(guard.revoke_session("alice", &s.session_id).await.unwrap());
    release(&store.rotate_gate);
    let t = refresh
        .await
        .unwrap()
        .expect("rotated before the revocation");
    assert_session_revoked(guard.validate::<()>(&t.access_token).await, "access token");
    assert_session_revoked(guard.refresh(&t.refresh_token, &()).await, "refresh token");
}

// ---------------------------------------------------------------------------
// Cache traps for session state
// ---------------------------------------------------------------------------

/// stale_if_error docs + "a revocation on this instance applies at once": a
/// revoked session is never served as live from a stale entry.
#[tokio::test]
async fn stale_if_error_never_serves_a_revoked_session_as_live() {
    let (clock, store, b) = builder(&["alice"], config());
    let guard = b.stale_if_error(Duration::from_secs(600)).build().unwrap();
    let s = guard.login("alice", &()).await.unwrap();
    guard.validate::<()>(&s.access_token).await.unwrap();
    guard.revoke_session("alice", &s.session_id).await.unwrap();
    guard.mark_cache_stale();
    store.failing_sessions.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(40));
    assert_session_revoked(
        guard.validate::<()>(&s.access_token).await,
        "mark_stale + outage",
    );

    // Revoked on another instance, learnt by event, then an outage.
    let other = other_instance(&clock, &store, |b| {
        b.stale_if_error(Duration::from_secs(600))
    });
    store.failing_sessions.store(false, Ordering::SeqCst);
    let s2 = guard.login("alice", &()).await.unwrap();
    other.validate::<()>(&s2.access_token).await.unwrap();
    guard.revoke_session("alice", &s2.session_id).await.unwrap();
    other
        .apply_event(&CutoffEvent::Session {
            sub: "alice".into(),
            sid: s2.session_id.clone(),
        })
        .unwrap();
    store.failing_sessions.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(40));
    assert_session_revoked(
        other.validate::<()>(&s2.access_token).await,
        "event + outage",
    );
}

/// Bounded memory + fail closed: a revoked session whose floor was evicted
/// (small `max_entries`) is decided by the store again, never accepted, and
/// with the store down it fails closed.
#[tokio::test]
async fn an_evicted_revoked_session_is_never_accepted() {
    let (_, store, b) = builder(&["alice"], config());
    let guard = b
        .max_entries(4)
        .stale_if_error(Duration::from_secs(600))
        .build()
        .unwrap();
    let victim = guard.login("alice", &()).await.unwrap();
    guard.validate::<()>(&victim.access_token).await.unwrap();
    guard
        .revoke_session("alice", &victim.session_id)
        .await
        .unwrap();
    for _ in 0..20 {
        let s = guard.login("alice", &()).await.unwrap();
        guard.validate::<()>(&s.access_token).await.unwrap();
    }
    assert!(guard.stats().evictions > 0, "the session cache is bounded");
    assert_session_revoked(
        guard.validate::<()>(&victim.access_token).await,
        "store decides",
    );
    for _ in 0..20 {
        let s = guard.login("alice", &()).await.unwrap();
        guard.validate::<()>(&s.access_token).await.unwrap();
    }
    store.failing_sessions.store(true, Ordering::SeqCst);
    let r = guard.validate::<()>(&victim.access_token).await;
    assert!(
        matches!(r, Err(Error::SessionRevoked | Error::StoreUnavailable(_))),
        "{r:?}"
    );
}

/// A load that started before a revocation must not be cached after it,
/// here with eviction (not `clear_cache`) and a revocation learnt by event.
#[tokio::test]
async fn a_slow_session_load_overtaken_by_a_remote_revocation_and_eviction_is_not_cached() {
    let (clock, store, guard) = setup(&["alice"]);
    let other = other_instance(&clock, &store, |b| b.max_entries(3));
    let s = guard.login("alice", &()).await.unwrap();
    let gate = hold(&store.session_gate);
    let before = store.session_loads.load(Ordering::SeqCst);
    let slow = {
        let other = other.clone();
        let t = s.access_token.clone();
        tokio::spawn(async move { other.validate::<()>(&t).await })
    };
    until(|| store.session_loads.load(Ordering::SeqCst) > before).await;
    guard.revoke_session("alice", &s.session_id).await.unwrap();
    other
        .apply_event(&CutoffEvent::Session {
            sub: "alice".into(),
            sid: s.session_id.clone(),
        })
        .unwrap();
    *store.session_gate.lock().unwrap() = None;
    // Fill the other instance's session cache so it evicts.
    for _ in 0..10 {
        let x = guard.login("alice", &()).await.unwrap();
        other.validate::<()>(&x.access_token).await.unwrap();
    }
    gate.add_permits(100);
    let _ = slow.await.unwrap();
    assert_session_revoked(
        other.validate::<()>(&s.access_token).await,
        "old read not cached",
    );
}

/// Verified-token cache docs: the session is checked on every request,
/// cache hits included, also after `clear_cache` and `mark_cache_stale`.
#[tokio::test]
async fn the_verified_token_cache_never_revives_a_revoked_session() {
    let (clock, _, guard) = setup(&["alice"]);
    let s = guard.login("alice", &()).await.unwrap();
    for _ in 0..3 {
        guard.validate::<()>(&s.access_token).await.unwrap();
    }
    guard.revoke_session("alice", &s.session_id).await.unwrap();
    assert_session_revoked(guard.validate::<()>(&s.access_token).await, "hit");
    guard.clear_cache();
    assert_session_revoked(guard.validate::<()>(&s.access_token).await, "after clear");
    guard.mark_cache_stale();
    assert_session_revoked(
        guard.validate::<()>(&s.access_token).await,
        "after mark_stale",
    );
    clock.advance(Duration::from_secs(31));
    assert_session_revoked(guard.validate::<()>(&s.access_token).await, "after the TTL");
    assert!(guard.stats().verified_hits >= 3);
}

/// Cancellation at any `.await` releases state: validations and refreshes
/// dropped while the session load or the rotation is held.
#[tokio::test]
async fn cancelled_refreshes_and_validations_leave_no_flight_and_no_spent_token_by_themselves() {
    let (_, store, guard) = setup(&["alice"]);
    let s = guard.login("alice", &()).await.unwrap();
    let _g = hold(&store.load_gate);
    for _ in 0..20 {
        let f = guard.refresh(&s.refresh_token, &());
        let _ = tokio::time::timeout(Duration::from_millis(1), f).await;
    }
    assert_eq!(guard.loads_in_flight(), 0);
    release(&store.load_gate);
    // Cancelled before the rotation: the token is not spent.
    assert_eq!(store.rotations.load(Ordering::SeqCst), 0);
    guard.refresh(&s.refresh_token, &()).await.unwrap();
}

/// A hung store is bounded by the store timeout, for refresh too; and a
/// rotation that landed but whose reply never came can be retried within
/// the reuse grace.
#[tokio::test(start_paused = true)]
async fn a_refresh_on_a_hung_store_is_bounded_and_retryable_within_the_grace() {
    let (_, store, b) = builder(&["alice"], config().reuse_grace(Duration::from_secs(10)));
    let guard = b.store_timeout(Duration::from_secs(2)).build().unwrap();
    let s = guard.login("alice", &()).await.unwrap();
    store.hang_after_rotate.store(true, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    let r = guard.refresh(&s.refresh_token, &()).await;
    assert!(matches!(r, Err(Error::StoreUnavailable(_))), "{r:?}");
    assert!(started.elapsed() <= Duration::from_secs(2));
    store.hang_after_rotate.store(false, Ordering::SeqCst);
    let retried = guard
        .refresh(&s.refresh_token, &())
        .await
        .expect("the landed rotation is retried within the grace");
    guard.validate::<()>(&retried.access_token).await.unwrap();
}

// ---------------------------------------------------------------------------
// Token confusion and hostile sid values
// ---------------------------------------------------------------------------

/// Error::RefreshInvalid: "The refresh token is not one this guard issued".
/// `Guard::login` returns the session's first refresh token: it must
/// refresh, whatever subject `login` accepted.
#[tokio::test]
async fn every_refresh_token_login_returns_is_accepted_by_refresh() {
    for len in [1usize, 500, 1024, 1100, 1200, 2000, 4000] {
        let sub = "a".repeat(len);
        let (_, _, guard) = setup(&[sub.as_str()]);
        let Ok(s) = guard.login(&sub, &()).await else {
            continue; // refusing the login is fine
        };
        guard.validate::<()>(&s.access_token).await.unwrap();
        let r = guard.refresh(&s.refresh_token, &()).await;
        assert!(
            r.is_ok(),
            "subject of {len} bytes: login returned a refresh token that refresh calls {r:?}"
        );
    }
}

/// GuardBuilder::sessions docs: a guard without sessions refuses a token
/// with `sid`, except in foreign-token mode, which reads no `ver` and checks
/// timestamp cutoffs only (an identity provider's `sid` means nothing
/// here). Both halves, so neither drifts.
#[tokio::test]
async fn a_guard_without_sessions_refuses_sid_tokens_and_foreign_mode_ignores_sid() {
    let (clock, store, guard) = setup(&["alice"]);
    let s = guard.login("alice", &()).await.unwrap();
    guard.revoke_session("alice", &s.session_id).await.unwrap();
    let plain = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    assert!(matches!(
        plain.validate::<()>(&s.access_token).await,
        Err(Error::SessionsDisabled)
    ));
    let foreign = Guard::builder(keys(), store)
        .clock(clock.clone())
        .foreign_tokens(true)
        .build()
        .unwrap();
    foreign
        .validate::<()>(&s.access_token)
        .await
        .expect("documented: foreign-token mode ignores sid (and ver)");
    // Its timestamp cutoffs still apply (another instance: within its TTL).
    clock.advance(Duration::from_secs(5));
    guard.revoke_before("alice", T0 + 1).await.unwrap();
    clock.advance(Duration::from_secs(30));
    assert!(foreign.validate::<()>(&s.access_token).await.is_err());
}

/// Hostile input: `sid` values that are no session id of this library are
/// refused (never a panic, never accepted), on guards with and without
/// sessions; a well-formed but unknown id too.
#[tokio::test]
async fn unusual_sid_values_are_refused_without_panicking() {
    let (clock, store, guard) = setup(&["alice"]);
    let real = guard.login("alice", &()).await.unwrap();
    let plain = Guard::builder(keys(), store).clock(clock).build().unwrap();
    let upper = real.session_id.to_uppercase();
    let padded = format!(" {}", real.session_id);
    let sids: Vec<String> = vec![
        String::new(),
        "x".repeat(6_000),
        "ü".repeat(11),
        "AAAAAAAAAAAAAAAAAAAAA=".into(),
        "AAAAAAAAAAAAAAAAAAAAAB".into(), // 22 chars, non-canonical trailing bits
        "AAAAAAAAAAAAAAAAAAAAAA".into(), // well-formed, never created
        "\u{0}AAAAAAAAAAAAAAAAAAAAA".into(),
        upper,
        padded,
    ];
    for sid in &sids {
        if *sid == real.session_id {
            continue;
        }
        let t = token_with(serde_json::json!({
            "sub": "alice", "ver": 0, "iat": T0, "exp": T0 + 600, "sid": sid,
        }));
        let r = guard.validate::<()>(&t).await;
        assert!(
            matches!(r, Err(Error::SessionRevoked | Error::TooLarge { .. })),
            "sid {:?}: {r:?}",
            sid.chars().take(30).collect::<String>()
        );
        let r = plain.validate::<()>(&t).await;
        assert!(
            matches!(r, Err(Error::SessionsDisabled | Error::TooLarge { .. })),
            "no sessions, sid {:?}: {r:?}",
            sid.chars().take(30).collect::<String>()
        );
        // revoke_session with such an id touches nothing, never panics.
        let _ = guard.revoke_session("alice", sid).await;
    }
    // The escaped form of the real id is the real id.
    let escaped: String = real
        .session_id
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let payload = format!(
        r#"{{"sub":"alice","ver":0,"iat":{T0},"exp":{},"sid":"{escaped}"}}"#,
        T0 + 600
    );
    let b64 = |b: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    };
    let signed = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(payload.as_bytes())
    );
    let sig = jsonwebtoken::crypto::sign(
        signed.as_bytes(),
        &EncodingKey::from_secret(common::SECRET),
        Algorithm::HS256,
    )
    .unwrap();
    let t = format!("{signed}.{sig}");
    guard.validate::<()>(&t).await.unwrap();
    guard
        .revoke_session("alice", &real.session_id)
        .await
        .unwrap();
    assert_session_revoked(
        guard.validate::<()>(&t).await,
        "escaped sid is the same session",
    );
}

/// Module docs: "A session the store does not hold (purged after it
/// expired, or another subject's) is revoked."
#[tokio::test]
async fn a_token_naming_a_purged_session_is_refused() {
    let (clock, _, b) = builder(
        &["alice", "bob"],
        config().refresh_ttl(Duration::from_secs(60)),
    );
    let guard = b
        .access_ttl(Duration::from_secs(60))
        .leeway(Duration::from_secs(0))
        .build()
        .unwrap();
    let s = guard.login("alice", &()).await.unwrap();
    clock.advance(Duration::from_secs(61 + 60 + 301));
    assert_eq!(guard.purge_sessions().await.unwrap(), 1);
    // A token naming it, freshly signed with the key (e.g. a leaked key is
    // not the point; the store decides).
    let now = T0 + 61 + 60 + 301;
    for sub in ["alice", "bob"] {
        let t = token_with(serde_json::json!({
            "sub": sub, "ver": 0, "iat": now, "exp": now + 60, "sid": s.session_id,
        }));
        assert_session_revoked(guard.validate::<()>(&t).await, sub);
    }
    assert!(matches!(
        guard.refresh(&s.refresh_token, &()).await,
        Err(Error::RefreshInvalid)
    ));
}

/// Guard::sessions docs: only active sessions, not ended by the subject's
/// cutoffs; a session revoked by reuse or by id is never listed, and
/// neither is one whose login was cancelled before its tokens came back?
/// (A cancelled login may leave a row: it must at least be revocable and
/// carry no usable token.)
#[tokio::test]
async fn sessions_lists_no_dead_session_and_a_cancelled_login_leaves_nothing_usable() {
    let (clock, store, guard) = setup(&["alice"]);
    let a = guard.login("alice", &()).await.unwrap();
    let b = guard.login("alice", &()).await.unwrap();
    let _ = guard.refresh(&a.refresh_token, &()).await.unwrap();
    assert!(matches!(
        guard.refresh(&a.refresh_token, &()).await,
        Err(Error::RefreshReused)
    ));
    guard.revoke_session("alice", &b.session_id).await.unwrap();
    assert!(guard.sessions("alice").await.unwrap().is_empty());

    let _g = hold(&store.create_gate);
    let before = store.creates.load(Ordering::SeqCst);
    let login = {
        let guard = guard.clone();
        tokio::spawn(async move { guard.login("alice", &()).await })
    };
    until(|| store.creates.load(Ordering::SeqCst) > before).await;
    login.abort();
    let _ = login.await;
    release(&store.create_gate);
    let orphans = guard.sessions("alice").await.unwrap();
    for o in &orphans {
        assert!(guard.revoke_session("alice", &o.id).await.unwrap());
    }
    assert!(guard.sessions("alice").await.unwrap().is_empty());
    let _ = clock;
}

/// A refresh token is no access token and an access token no refresh
/// token, even when the refresh key is the JWT secret.
#[tokio::test]
async fn tokens_are_not_interchangeable_even_with_one_shared_secret() {
    let (clock, store, _) = setup(&["alice"]);
    let guard = Guard::builder(keys(), store)
        .clock(clock)
        .sessions(SessionConfig::new(RefreshKey::new(common::SECRET).unwrap()))
        .build()
        .unwrap();
    let s = guard.login("alice", &()).await.unwrap();
    assert!(guard.validate::<()>(&s.refresh_token).await.is_err());
    assert!(matches!(
        guard.refresh(&s.access_token, &()).await,
        Err(Error::RefreshInvalid)
    ));
    // The refresh MAC over `jrt1.sub.sid.gen` as a JWT signature of a
    // forged header/payload: impossible to line up, check it is refused.
    let parts: Vec<&str> = s.refresh_token.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], parts[1], parts[4]);
    assert!(guard.validate::<()>(&forged).await.is_err());
    let plain = guard.issue("alice", &()).await.unwrap();
    let jwt: Vec<&str> = plain.split('.').collect();
    let forged = format!("jrt1.{}.{}.0.{}", jwt[0], s.session_id, jwt[2]);
    assert!(matches!(
        guard.refresh(&forged, &()).await,
        Err(Error::RefreshInvalid)
    ));
}

/// Login and refresh tokens of one subject's session never pass as
/// another's, even when refresh is asked with the right MAC but a session
/// id of someone else (only the MAC's owner can mint that: refresh tokens
/// bind the subject).
#[tokio::test]
async fn a_session_of_one_subject_never_serves_another() {
    let (_, _, guard) = setup(&["alice", "bob"]);
    let a = guard.login("alice", &()).await.unwrap();
    let b = guard.login("bob", &()).await.unwrap();
    let t = token_with(serde_json::json!({
        "sub": "bob", "ver": 0, "iat": T0, "exp": T0 + 600, "sid": a.session_id,
    }));
    assert_session_revoked(guard.validate::<()>(&t).await, "alice's sid with bob");
    // Bob logging out alice's session id does nothing.
    assert!(!guard.revoke_session("bob", &a.session_id).await.unwrap());
    guard.validate::<()>(&a.access_token).await.unwrap();
    guard.validate::<()>(&b.access_token).await.unwrap();
    guard.refresh(&a.refresh_token, &()).await.unwrap();
}

/// Clock stepped back: the grace window and expiry still hold their bounds
/// (no rotation of a refresh token older than the grace allows, no reuse
/// that goes unrevoked).
#[tokio::test]
async fn a_clock_stepped_back_does_not_open_reuse_without_revocation() {
    let (clock, _, guard) = setup(&["alice"]);
    clock.advance(Duration::from_secs(100));
    let s = guard.login("alice", &()).await.unwrap();
    let next = guard.refresh(&s.refresh_token, &()).await.unwrap();
    clock.set(T0);
    assert!(matches!(
        guard.refresh(&s.refresh_token, &()).await,
        Err(Error::RefreshReused)
    ));
    assert_session_revoked(guard.refresh(&next.refresh_token, &()).await, "revoked");
}
