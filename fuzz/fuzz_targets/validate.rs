//! Arbitrary bytes as a token: validation must answer (accept or reject with
//! a code), never panic. Inputs that look like a JWT are also re-signed with
//! the guard's key, so the fuzzer reaches the claim parsing behind the
//! signature check.
#![no_main]

use std::sync::LazyLock;

use jwt_revoke::{Algorithm, Cutoff, EncodingKey, FakeClock, Guard, Keys, MemoryStore};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-secret-fuzz-secret-fuzz-sec";

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime")
});

static GUARD: LazyLock<Guard<MemoryStore>> = LazyLock::new(|| {
    let store = MemoryStore::new();
    store.insert("alice", Cutoff::new(1, 0));
    Guard::builder(Keys::hmac(Algorithm::HS256, SECRET).expect("key"), store)
        .clock(FakeClock::new(1_800_000_000))
        .max_entries(64)
        .max_negative_entries(64)
        .build()
        .expect("guard")
});

fn check(token: &str) {
    match RT.block_on(GUARD.validate::<serde_json::Value>(token)) {
        Ok(v) => assert!(!v.sub().is_empty()),
        Err(e) => assert!(!e.code().is_empty()),
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
            check(&format!("{message}.{sig}"));
        }
    }
});
