//! Revocations racing many validations: once a `bump_version` or a
//! `revoke_before` has returned, no token older than it is ever accepted,
//! with or without cache evictions, and nothing deadlocks.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use jwt_revoke::{Algorithm, Cutoff, Error, FakeClock, Guard, Keys, MemoryStore, RevokedReason};

const T0: i64 = 1_800_000_000;

const BUMPS: u64 = 2_000;

/// How the race revokes: by version or by timestamp.
#[derive(Clone, Copy)]
enum Mode {
    Bump,
    RevokeBefore,
}

fn guard(store: MemoryStore, max_entries: usize, clock: &FakeClock) -> Guard<MemoryStore> {
    Guard::builder(Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(), store)
        .max_entries(max_entries)
        .clock(clock.clone())
        .access_ttl(Duration::from_secs(86_400))
        .build()
        .unwrap()
}

fn subjects() -> MemoryStore {
    let store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
    store.insert("bob", Cutoff::default());
    for i in 0..50 {
        store.insert(format!("filler-{i}"), Cutoff::default());
    }
    store
}

async fn race(mode: Mode, max_entries: usize, clear_every: u64) {
    // A minting guard (same keys, its own store) produces one token per
    // step: bob_tokens[k] carries ver = k (Bump) or iat = T0 + k
    // (RevokeBefore), so step k of the race revokes exactly tokens[..k].
    let mint_clock = FakeClock::new(T0);
    let minter = guard(subjects(), 100_000, &mint_clock);
    let mut bob_tokens = Vec::new();
    for v in 0..=BUMPS {
        bob_tokens.push(minter.issue("bob", &()).await.unwrap());
        match mode {
            Mode::Bump => minter.store().insert("bob", Cutoff::new(v + 1, 0)),
            Mode::RevokeBefore => mint_clock.advance(Duration::from_secs(1)),
        }
    }
    let mut fillers = Vec::new();
    for i in 0..50 {
        fillers.push(minter.issue(&format!("filler-{i}"), &()).await.unwrap());
    }
    let (bob_tokens, fillers) = (Arc::new(bob_tokens), Arc::new(fillers));

    // The guard under test starts with bob at version 0, after every iat.
    let g = guard(
        subjects(),
        max_entries,
        &FakeClock::new(T0 + BUMPS as i64 + 1),
    );
    let expected_reason = match mode {
        Mode::Bump => RevokedReason::Version,
        Mode::RevokeBefore => RevokedReason::NotBefore,
    };
    let bumped = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let violations = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let validations = Arc::new(AtomicU64::new(0));

    let mut validators = Vec::new();
    for w in 0..6u64 {
        let (g, toks, fill) = (g.clone(), bob_tokens.clone(), fillers.clone());
        let (bumped, done, violations, accepted, validations) = (
            bumped.clone(),
            done.clone(),
            violations.clone(),
            accepted.clone(),
            validations.clone(),
        );
        validators.push(tokio::spawn(async move {
            let mut i = w;
            while !done.load(Ordering::Acquire) {
                i = i
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let floor = bumped.load(Ordering::Acquire);
                // Mostly tokens near the current version, where races live.
                let v = (floor + (i >> 33) % 3).saturating_sub(1).min(BUMPS);
                match g.validate::<()>(&toks[v as usize]).await {
                    Ok(_) => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        if v < floor {
                            violations.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(Error::Revoked(r)) if r == expected_reason => {}
                    Err(e) => panic!("unexpected error: {e:?}"),
                }
                validations.fetch_add(1, Ordering::Release);
                // Churn other subjects so bob's entry gets evicted.
                let f = &fill[(i % fill.len() as u64) as usize];
                let _ = g.validate::<()>(f).await;
                tokio::task::yield_now().await;
            }
        }));
    }

    for k in 1..=BUMPS {
        match mode {
            Mode::Bump => assert_eq!(g.bump_version("bob").await.unwrap().version, k),
            Mode::RevokeBefore => {
                let at = T0 + k as i64 - 1;
                assert_eq!(g.revoke_before("bob", at).await.unwrap().not_before, at + 1);
            }
        }
        bumped.store(k, Ordering::Release);
        if clear_every > 0 && k % clear_every == 0 {
            g.clear_cache();
        }
        // Let the validators interleave with every bump (bounded wait).
        let seen = validations.load(Ordering::Acquire);
        for _ in 0..10_000 {
            if validations.load(Ordering::Acquire) >= seen + 3 {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    done.store(true, Ordering::Release);
    for v in validators {
        v.await.unwrap();
    }
    assert_eq!(
        violations.load(Ordering::Relaxed),
        0,
        "a token older than a returned bump was accepted"
    );
    assert!(
        accepted.load(Ordering::Relaxed) > 0,
        "the race exercised the accepting path"
    );
    // After the last bump only the newest token is valid.
    assert!(g.validate::<()>(&bob_tokens[BUMPS as usize]).await.is_ok());
    assert!(
        g.validate::<()>(&bob_tokens[BUMPS as usize - 1])
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bumps_racing_validations_never_let_an_older_token_through() {
    tokio::time::timeout(Duration::from_secs(60), race(Mode::Bump, 100_000, 0))
        .await
        .expect("no deadlock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bumps_racing_validations_with_evictions_and_cache_clears() {
    tokio::time::timeout(Duration::from_secs(60), race(Mode::Bump, 8, 7))
        .await
        .expect("no deadlock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoke_before_racing_validations_with_evictions() {
    tokio::time::timeout(Duration::from_secs(60), race(Mode::RevokeBefore, 8, 5))
        .await
        .expect("no deadlock");
}
