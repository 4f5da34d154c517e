//! Arbitrary bytes as a token: validation must answer (accept or reject with
//! a code), never panic. Inputs that look like a JWT are also re-signed with
//! the guard's key, so the fuzzer reaches the claim parsing behind the
//! signature check.
//!
//! Differential mode (always on): every re-signed token is also judged by a
//! guard on the wall clock and by `jsonwebtoken::decode` with the same key and
//! equivalent `Validation` (HS256, leeway 60 s, `exp` and `sub` required,
//! `nbf` checked, no audience). The guard may be stricter, never laxer:
//! guard accepts ⇒ jsonwebtoken accepts.
#![no_main]

use std::sync::LazyLock;

use jwt_revoke::{Algorithm, Cutoff, EncodingKey, FakeClock, Guard, Keys, MemoryStore};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-secret-fuzz-secret-fuzz-sec";

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
});

fn guard(clock: FakeClock) -> Guard<MemoryStore> {
    let store = MemoryStore::new();
    store.insert("alice", Cutoff::new(1, 0));
    Guard::builder(Keys::hmac(Algorithm::HS256, SECRET).expect("key"), store)
        .clock(clock)
        .max_entries(64)
        .max_negative_entries(64)
        .build()
        .expect("guard")
}

static GUARD: LazyLock<Guard<MemoryStore>> =
    LazyLock::new(|| guard(FakeClock::new(1_800_000_000)));

/// jsonwebtoken reads the system clock, so the differential guard's clock is
/// set to it before each comparison.
static WALL: LazyLock<FakeClock> = LazyLock::new(|| FakeClock::new(wall_now()));
static DIFF_GUARD: LazyLock<Guard<MemoryStore>> = LazyLock::new(|| guard(WALL.clone()));

static VALIDATION: LazyLock<jsonwebtoken::Validation> = LazyLock::new(|| {
    let mut v = jsonwebtoken::Validation::new(Algorithm::HS256);
    v.leeway = 60;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.set_required_spec_claims(&["exp", "sub"]);
    v
});

fn wall_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn check(token: &str) {
    match RT.block_on(GUARD.validate::<serde_json::Value>(token)) {
        Ok(v) => assert!(!v.sub().is_empty()),
        Err(e) => assert!(!e.code().is_empty()),
    }
}

/// Guard accepts ⇒ jsonwebtoken accepts. `()` claims: the guard's laxest
/// mode (no second parse of the payload).
fn differential(token: &str) {
    let before = wall_now();
    WALL.set(before);
    if RT.block_on(DIFF_GUARD.validate::<()>(token)).is_err() {
        return;
    }
    let reference = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(SECRET),
        &VALIDATION,
    );
    if let Err(e) = reference {
        use jsonwebtoken::errors::ErrorKind;
        // A second boundary between the two clock reads makes a time
        // verdict inconclusive, not a difference.
        let time_kind = matches!(
            e.kind(),
            ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature
        );
        if time_kind && wall_now() != before {
            return;
        }
        panic!("guard accepts a token jsonwebtoken rejects ({e:?}): {token}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check(text);
    // Re-sign `header.payload` so the claims parser sees fuzzed input.
    let mut parts = text.splitn(3, '.');
    if let (Some(h), Some(p)) = (parts.next(), parts.next()) {
        let message = format!("{h}.{p}");
        if let Ok(sig) = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &EncodingKey::from_secret(SECRET),
            Algorithm::HS256,
        ) {
            let token = format!("{message}.{sig}");
            check(&token);
            differential(&token);
        }
    }
});
