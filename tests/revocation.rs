//! Revocation semantics as a user of the guard sees them.

mod common;

use std::time::Duration;

use jwt_revoke::{
    Algorithm, Cutoff, DecodingKey, EncodingKey, Error, FakeClock, Guard, Keys, MemoryStore,
    RevokedReason,
};
use serde::{Deserialize, Serialize};

const T0: i64 = 1_800_000_000;

fn guard_at(clock: &FakeClock) -> Guard<MemoryStore> {
    let store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
    for u in ["alice", "bob"] {
        store.insert(u, Cutoff::default());
    }
    Guard::builder(Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(), store)
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn revoked(r: Result<jwt_revoke::Verified, Error>) -> RevokedReason {
    match r {
        Err(Error::Revoked(reason)) => reason,
        other => panic!("expected a revocation, got {other:?}"),
    }
}

#[tokio::test]
async fn bump_rejects_every_older_token_and_accepts_new_ones() {
    let clock = FakeClock::new(T0);
    let g = guard_at(&clock);
    let t1 = g.issue("alice", &()).await.unwrap();
    clock.advance(Duration::from_secs(5));
    let t2 = g.issue("alice", &()).await.unwrap();
    let bob = g.issue("bob", &()).await.unwrap();
    assert_eq!(g.validate::<()>(&t1).await.unwrap().version(), Some(0));
    assert!(g.validate::<()>(&t2).await.is_ok());

    assert_eq!(g.bump_version("alice").await.unwrap().version, 1);
    assert_eq!(revoked(g.validate(&t1).await), RevokedReason::Version);
    assert_eq!(revoked(g.validate(&t2).await), RevokedReason::Version);
    // Other subjects are untouched.
    assert_eq!(g.validate::<()>(&bob).await.unwrap().sub(), "bob");

    let t3 = g.issue("alice", &()).await.unwrap();
    assert_eq!(g.validate::<()>(&t3).await.unwrap().version(), Some(1));
}

#[tokio::test]
async fn revoke_before_kills_tokens_issued_up_to_that_second() {
    let clock = FakeClock::new(T0);
    let g = guard_at(&clock);
    let old = g.issue("alice", &()).await.unwrap();
    clock.advance(Duration::from_secs(10));
    let newer = g.issue("alice", &()).await.unwrap();

    g.revoke_before("alice", T0).await.unwrap();
    assert_eq!(revoked(g.validate(&old).await), RevokedReason::NotBefore);
    assert!(g.validate::<()>(&newer).await.is_ok(), "iat = T0+10 > at");

    // `at` is the current second: the same-second rule also bumps the
    // version, which is the reason reported first.
    g.revoke_before("alice", T0 + 10).await.unwrap();
    assert_eq!(revoked(g.validate(&newer).await), RevokedReason::Version);
}

#[tokio::test]
async fn relogin_in_the_same_second_as_logout_all_is_accepted() {
    let clock = FakeClock::new(T0);
    let g = guard_at(&clock);
    let before = g.issue("alice", &()).await.unwrap();
    // Log out everywhere by timestamp at `now`, then log in again at once.
    g.revoke_before("alice", T0).await.unwrap();
    let after = g.issue("alice", &()).await.unwrap();
    assert_eq!(revoked(g.validate(&before).await), RevokedReason::Version);
    let v = g.validate::<()>(&after).await.unwrap();
    assert_eq!(v.issued_at(), T0 + 1, "stamped iat = not_before");
}

#[tokio::test]
async fn global_cutoff_revokes_everyone_and_relogin_works() {
    let clock = FakeClock::new(T0);
    let g = guard_at(&clock);
    let a = g.issue("alice", &()).await.unwrap();
    let b = g.issue("bob", &()).await.unwrap();
    // `at` in the current second is raised to `now + 1` (same-second rule):
    // logins wait until the global `not_before`, two seconds at most.
    assert_eq!(g.revoke_all_before(T0).await.unwrap(), T0 + 2);
    assert_eq!(revoked(g.validate(&a).await), RevokedReason::Global);
    assert_eq!(revoked(g.validate(&b).await), RevokedReason::Global);
    assert_eq!(
        g.issue("alice", &()).await.unwrap_err().code(),
        "retry_later"
    );
    clock.advance(Duration::from_secs(2));
    let a2 = g.issue("alice", &()).await.unwrap();
    assert!(g.validate::<()>(&a2).await.is_ok());
}

#[tokio::test]
async fn unknown_subject_is_rejected_on_issue_and_validate() {
    let clock = FakeClock::new(T0);
    let g = guard_at(&clock);
    assert!(matches!(
        g.issue("mallory", &()).await,
        Err(Error::UnknownSubject)
    ));

    // A token for a user who is later deleted.
    let t = g.issue("bob", &()).await.unwrap();
    g.store().remove("bob");
    // Cached for up to the TTL, then the store says "unknown".
    assert!(g.validate::<()>(&t).await.is_ok());
    clock.advance(Duration::from_secs(31));
    let err = g.validate::<()>(&t).await.unwrap_err();
    assert_eq!(err.code(), "unknown_subject");
    assert_eq!(err.status(), 401);
}

#[tokio::test]
async fn locking_an_account_until_a_future_time_refuses_new_logins() {
    let clock = FakeClock::new(T0);
    let g = guard_at(&clock);
    g.revoke_before("alice", T0 + 3_600).await.unwrap();
    assert!(matches!(
        g.issue("alice", &()).await,
        Err(Error::Revoked(RevokedReason::NotBefore))
    ));
    clock.advance(Duration::from_secs(3_601));
    let t = g.issue("alice", &()).await.unwrap();
    assert!(g.validate::<()>(&t).await.is_ok());
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Roles {
    role: String,
    org: u32,
}

#[tokio::test]
async fn custom_claims_round_trip_and_reserved_names_are_refused() {
    let clock = FakeClock::new(T0);
    let g = guard_at(&clock);
    let claims = Roles {
        role: "admin".into(),
        org: 7,
    };
    let t = g.issue("alice", &claims).await.unwrap();
    let v = g.validate::<Roles>(&t).await.unwrap();
    assert_eq!(v.claims(), &claims);
    assert_eq!(v.expires_at(), T0 + 15 * 60);

    #[derive(Serialize)]
    struct Sneaky {
        ver: u64,
    }
    let err = g.issue("alice", &Sneaky { ver: 99 }).await.unwrap_err();
    assert_eq!(err.code(), "issue_failed");
    let err = g.issue("alice", &42u32).await.unwrap_err();
    assert_eq!(err.code(), "issue_failed");
    // Claims that do not match `C` are invalid_claims (a genuine token of
    // another shape, not a malformed one), not a panic.
    let plain = g.issue("alice", &()).await.unwrap();
    assert_eq!(
        g.validate::<Roles>(&plain).await.unwrap_err().code(),
        "invalid_claims"
    );
}

#[tokio::test]
async fn foreign_tokens_are_checked_against_timestamp_cutoffs_only() {
    // An identity provider signs with its own key; we only verify.
    let idp_secret = b"identity-provider-secret-32bytes";
    let clock = FakeClock::new(T0);
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

    let mint = |iat: i64, ver: serde_json::Value| {
        let mut claims = serde_json::json!({"sub": "ext-user", "iat": iat, "exp": iat + 600});
        if !ver.is_null() {
            claims["ver"] = ver;
        }
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(idp_secret),
        )
        .unwrap()
    };
    let no_ver = mint(T0, serde_json::Value::Null);
    // Some providers use `ver` for their own purposes ("2.0"): ignored.
    let idp_ver = mint(T0, serde_json::json!("2.0"));
    assert_eq!(g.validate::<()>(&no_ver).await.unwrap().version(), None);
    assert!(g.validate::<()>(&idp_ver).await.is_ok());

    // bump_version cannot reach them; revoke_before does.
    g.bump_version("ext-user").await.unwrap();
    assert!(g.validate::<()>(&no_ver).await.is_ok());
    g.revoke_before("ext-user", T0).await.unwrap();
    assert_eq!(revoked(g.validate(&no_ver).await), RevokedReason::NotBefore);
    assert_eq!(
        revoked(g.validate(&idp_ver).await),
        RevokedReason::NotBefore
    );
    let later = mint(T0 + 1, serde_json::Value::Null);
    assert!(g.validate::<()>(&later).await.is_ok());
    // This guard cannot mint.
    assert_eq!(
        g.issue("ext-user", &()).await.unwrap_err().code(),
        "issue_failed"
    );
}

#[tokio::test]
async fn native_mode_requires_ver() {
    let clock = FakeClock::new(T0);
    let g = guard_at(&clock);
    let t = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &serde_json::json!({"sub": "alice", "iat": T0, "exp": T0 + 60}),
        &EncodingKey::from_secret(common::SECRET),
    )
    .unwrap();
    assert!(matches!(
        g.validate::<()>(&t).await,
        Err(Error::MissingClaim("ver"))
    ));
}

#[tokio::test]
async fn issuer_and_audience_are_stamped_and_required() {
    let clock = FakeClock::new(T0);
    let store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
    store.insert("alice", Cutoff::default());
    let keys = || Keys::hmac(Algorithm::HS256, common::SECRET).unwrap();
    let g = Guard::builder(keys(), store)
        .clock(clock.clone())
        .issuer("https://auth.example")
        .audience("api")
        .build()
        .unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    assert!(g.validate::<()>(&t).await.is_ok());

    let other_store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
    other_store.insert("alice", Cutoff::default());
    let other = Guard::builder(keys(), other_store)
        .clock(clock.clone())
        .issuer("https://other.example")
        .build()
        .unwrap();
    assert_eq!(
        other.validate::<()>(&t).await.unwrap_err().code(),
        "invalid_issuer"
    );
    let other_store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
    other_store.insert("alice", Cutoff::default());
    let other_aud = Guard::builder(keys(), other_store)
        .clock(clock.clone())
        .audience("billing")
        .build()
        .unwrap();
    assert_eq!(
        other_aud.validate::<()>(&t).await.unwrap_err().code(),
        "invalid_audience"
    );
}

#[tokio::test]
async fn expiry_and_future_iat_use_the_leeway_and_the_fake_clock() {
    let clock = FakeClock::new(T0);
    let g = guard_at(&clock);
    let t = g.issue("alice", &()).await.unwrap();
    // exp = T0 + 900; leeway 60 s.
    clock.set(T0 + 900 + 60);
    assert!(g.validate::<()>(&t).await.is_ok(), "inside the leeway");
    clock.set(T0 + 900 + 61);
    assert_eq!(g.validate::<()>(&t).await.unwrap_err().code(), "expired");

    // A token minted by a server whose clock runs 2 minutes ahead.
    clock.set(T0 + 120);
    let ahead = g.issue("alice", &()).await.unwrap();
    clock.set(T0);
    assert_eq!(
        g.validate::<()>(&ahead).await.unwrap_err().code(),
        "issued_in_future"
    );
    clock.set(T0 + 60);
    assert!(
        g.validate::<()>(&ahead).await.is_ok(),
        "60 s ahead is within leeway"
    );
}

#[tokio::test]
async fn key_rotation_selects_by_kid() {
    let old_secret = b"old-secret-old-secret-old-secret";
    let new_secret = b"new-secret-new-secret-new-secret";
    let clock = FakeClock::new(T0);
    let mk_store = || {
        let s = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
        s.insert("alice", Cutoff::default());
        s
    };
    let old = Guard::builder(
        Keys::hmac(Algorithm::HS256, old_secret)
            .unwrap()
            .with_kid("k1"),
        mk_store(),
    )
    .clock(clock.clone())
    .build()
    .unwrap();
    let old_token = old.issue("alice", &()).await.unwrap();

    let rotated = Guard::builder(
        Keys::hmac(Algorithm::HS256, new_secret)
            .unwrap()
            .with_kid("k2")
            .with_verifying_key("k1", Algorithm::HS256, DecodingKey::from_secret(old_secret))
            .unwrap(),
        mk_store(),
    )
    .clock(clock.clone())
    .build()
    .unwrap();
    let new_token = rotated.issue("alice", &()).await.unwrap();
    assert!(rotated.validate::<()>(&old_token).await.is_ok());
    assert!(rotated.validate::<()>(&new_token).await.is_ok());
    // The old deployment does not know k2.
    assert_eq!(
        old.validate::<()>(&new_token).await.unwrap_err().code(),
        "unknown_key"
    );
}

#[test]
fn key_configuration_errors_are_reported() {
    assert_eq!(
        Keys::hmac(Algorithm::HS256, b"short").unwrap_err().code(),
        "invalid_config"
    );
    assert!(Keys::hmac(Algorithm::RS256, common::SECRET).is_err());
    assert!(
        Keys::new(
            Algorithm::ES256,
            EncodingKey::from_secret(common::SECRET),
            DecodingKey::from_secret(common::SECRET)
        )
        .is_err(),
        "an HMAC key cannot be used for ES256"
    );
    let keys = Keys::hmac(Algorithm::HS256, common::SECRET).unwrap();
    let dbg = format!("{keys:?}");
    assert!(
        !dbg.contains("test-secret"),
        "Debug must not show key material: {dbg}"
    );
}
