//! Runs cache-hit validations (HS256, verified-token cache off) in a loop,
//! for a profiler, or bare `jsonwebtoken::decode`s of the same token with
//! `decode` as the second argument (`repeat`: the verified-token cache on):
//! `cargo build --release --example profile_hit`, then e.g.
//! `valgrind --tool=callgrind target/release/examples/profile_hit 20000`
//! (instruction counts per function: the breakdown in the README).

use std::time::Duration;

use jwt_revoke::{Algorithm, Cutoff, Guard, Keys, MemoryStore};

/// The claims a bare decode reads (as in `benches/validate.rs`).
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct BareClaims {
    sub: String,
    iat: i64,
    exp: i64,
    ver: u64,
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mode = std::env::args().nth(2).unwrap_or_default();
    let decode_only = mode == "decode";
    // `repeat`: the verified-token cache on, so the same token skips the
    // signature check.
    let verified = if mode == "repeat" { 10_000 } else { 0 };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = MemoryStore::new();
    store.insert("user-0", Cutoff::default());
    let secret = b"bench-secret-bench-secret-bench!";
    let guard = Guard::builder(Keys::hmac(Algorithm::HS256, secret).expect("keys"), store)
        .access_ttl(Duration::from_secs(86_400))
        .cache_ttl(Duration::from_secs(3_600))
        .verified_cache(verified)
        .build()
        .expect("guard");
    let token = rt.block_on(guard.issue("user-0", &())).expect("token");
    rt.block_on(async {
        guard.validate::<()>(&token).await.expect("valid");
        if decode_only {
            let key = jsonwebtoken::DecodingKey::from_secret(secret);
            let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
            validation.set_required_spec_claims(&["exp", "sub", "iat"]);
            for _ in 0..n {
                let t = jsonwebtoken::decode::<BareClaims>(
                    std::hint::black_box(&token),
                    &key,
                    &validation,
                );
                std::hint::black_box(t.is_ok());
            }
        } else {
            for _ in 0..n {
                let v = guard.validate::<()>(std::hint::black_box(&token)).await;
                std::hint::black_box(v.is_ok());
            }
        }
    });
}
