//! The verified-token cache: a repeat token skips the signature check, but
//! revocation is still checked on every request, an entry never outlives
//! the token, a token that differs in one byte never hits, memory stays
//! within the bounds, and the caller's claims come out right for every type.

mod common;

use std::time::Duration;

use common::fixture::{T0, keys, setup};
use jwt_revoke::{Algorithm, Cutoff, EncodingKey, FakeClock, Guard, MemoryStore, RevokedReason};
use serde::{Deserialize, Serialize};

#[tokio::test]
async fn a_repeat_token_skips_the_signature_check_but_not_revocation() {
    let (_clock, _store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&t).await.unwrap();
    assert_eq!(
        g.stats().verified_hits,
        0,
        "the first sight is a full check"
    );
    for _ in 0..10 {
        assert_eq!(g.validate::<()>(&t).await.unwrap().sub(), "alice");
    }
    assert_eq!(g.stats().verified_hits, 10);
    assert_eq!(g.stats().verified_tokens, 1);
    // Revoked while cached: rejected at once.
    g.bump_version("alice").await.unwrap();
    assert_eq!(
        g.validate::<()>(&t).await.unwrap_err().revoked_reason(),
        Some(RevokedReason::Version)
    );
    assert_eq!(g.stats().verified_hits, 11, "the cached token was revoked");
}

#[tokio::test]
async fn an_entry_never_outlives_the_token() {
    let (clock, _store, b) = setup(&["alice"]);
    let g = b
        .access_ttl(Duration::from_secs(60))
        .leeway(Duration::from_secs(5))
        .cache_ttl(Duration::from_secs(3600))
        .build()
        .unwrap();
    let t = g.issue("alice", &()).await.unwrap(); // exp = T0 + 60
    g.validate::<()>(&t).await.unwrap();
    clock.set(T0 + 65); // exp + leeway: still accepted
    g.validate::<()>(&t).await.unwrap();
    let hits = g.stats().verified_hits;
    clock.set(T0 + 66);
    assert_eq!(g.validate::<()>(&t).await.unwrap_err().code(), "expired");
    assert_eq!(g.stats().verified_hits, hits, "no hit past exp + leeway");
}

#[tokio::test]
async fn a_token_that_differs_in_one_byte_never_hits() {
    let (_clock, _store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&t).await.unwrap();
    let bytes = t.as_bytes();
    for i in 0..bytes.len() {
        let mut forged = bytes.to_vec();
        forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        if forged == t {
            continue;
        }
        assert!(
            g.validate::<()>(&forged).await.is_err(),
            "byte {i} changed and the token was accepted"
        );
    }
    assert_eq!(g.stats().verified_hits, 0);
}

#[tokio::test]
async fn a_flood_of_distinct_valid_tokens_stays_within_the_bounds() {
    let clock = FakeClock::new(T0);
    let store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
    for i in 0..3_000 {
        store.insert(format!("user-{i}"), Cutoff::default());
    }
    let g = Guard::builder(keys(), store)
        .clock(clock.clone())
        .verified_cache(1_000)
        .verified_cache_bytes(256 * 1024)
        .build()
        .unwrap();
    for i in 0..3_000 {
        let t = g.issue(&format!("user-{i}"), &()).await.unwrap();
        g.validate::<()>(&t).await.unwrap();
        let s = g.stats();
        assert!(s.verified_tokens <= 1_000, "{} tokens", s.verified_tokens);
        assert!(s.verified_bytes <= 256 * 1024, "{} bytes", s.verified_bytes);
    }
    // Big payloads: the byte budget binds before the entry count.
    #[derive(Serialize)]
    struct Big {
        blob: String,
    }
    let big = Big {
        blob: "x".repeat(3_000),
    };
    for i in 0..200 {
        let t = g.issue(&format!("user-{i}"), &big).await.unwrap();
        g.validate::<()>(&t).await.unwrap();
        assert!(g.stats().verified_bytes <= 256 * 1024);
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Role {
    role: String,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Org {
    org: u32,
}

#[tokio::test]
async fn caller_claims_come_out_right_for_every_type_on_a_hit() {
    let (_clock, _store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    #[derive(Serialize)]
    struct Both {
        role: String,
        org: u32,
    }
    let t = g
        .issue(
            "alice",
            &Both {
                role: "admin".into(),
                org: 7,
            },
        )
        .await
        .unwrap();
    g.validate::<()>(&t).await.unwrap();
    let role = g.validate::<Role>(&t).await.unwrap();
    assert_eq!(role.claims().role, "admin");
    let org = g.validate::<Org>(&t).await.unwrap();
    assert_eq!(org.claims().org, 7);
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Missing {
        tenant: String,
    }
    assert_eq!(
        g.validate::<Missing>(&t).await.unwrap_err().code(),
        "invalid_claims"
    );
    assert_eq!(g.stats().verified_hits, 3);
}

#[tokio::test]
async fn the_cache_can_be_turned_off() {
    let (_clock, _store, b) = setup(&["alice"]);
    let g = b.verified_cache(0).build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    for _ in 0..3 {
        g.validate::<()>(&t).await.unwrap();
    }
    assert_eq!(g.stats().verified_hits, 0);
    assert_eq!(g.stats().verified_tokens, 0);
}

#[tokio::test]
async fn a_token_rejected_by_its_claims_is_never_cached() {
    let (clock, _store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    // Signed with the guard's key, but issued in the future.
    let t = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &serde_json::json!({"sub": "alice", "iat": T0 + 3600, "exp": T0 + 7200, "ver": 0}),
        &EncodingKey::from_secret(common::SECRET),
    )
    .unwrap();
    assert_eq!(
        g.validate::<()>(&t).await.unwrap_err().code(),
        "issued_in_future"
    );
    assert_eq!(g.stats().verified_tokens, 0);
    clock.set(T0 + 3600);
    g.validate::<()>(&t).await.unwrap();
}
