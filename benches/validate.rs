//! Validation cost, side by side in one run:
//! - bare `jsonwebtoken::decode` of an HS256 token (the baseline),
//! - `Guard::validate` of the same token on a cache hit (verified-token
//!   cache off: signature checked every time), and repeated with the
//!   verified-token cache on (the default),
//! - the same for ES256 and RS256 against a bare `jsonwebtoken::decode` of
//!   the same token,
//! - `Guard::validate` on a cache miss (MemoryStore),
//! - `Guard::issue`,
//! - a cache miss through `DynStore` against the concrete store,
//! - cache-hit validation with 100 000 cached subjects,
//! - throughput on 1 and 2 threads.
//!
//! Hits are polled once in the runtime context (as in a handler that is
//! already on a runtime); misses and `issue` run in `block_on`.
//!
//! Run: `cargo bench --bench validate`. Compare ratios within one run; the
//! absolute times depend on the machine and its load.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use jwt_revoke::{Algorithm, Cutoff, FakeClock, Guard, Keys, MemoryStore};
use serde::Deserialize;

const SECRET: &[u8] = b"bench-secret-bench-secret-bench!";
const T0: i64 = 1_800_000_000;

#[derive(Deserialize)]
#[allow(dead_code)]
struct BareClaims {
    sub: String,
    iat: i64,
    exp: i64,
    ver: u64,
}

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
}

/// Runs a future on this thread's Tokio runtime (store timeouts need its
/// timer): misses, `issue`, set-up.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    RT.with(|rt| rt.block_on(f))
}

/// Polls a validation that must finish without waiting (a cache hit) once,
/// in this thread's runtime context, as it runs inside a request handler
/// that is already on a runtime: no `block_on` per call, whose own cost
/// would be added to every row but the bare decode. Panics if it would
/// wait.
fn hit<F: std::future::Future>(f: F) -> F::Output {
    use futures::FutureExt;
    RT.with(|rt| {
        let _entered = rt.enter();
        f.now_or_never()
            .expect("a cache hit finishes without waiting")
    })
}

fn guard_with(
    keys: Keys,
    subjects: usize,
    clock: &FakeClock,
    cache_ttl: Duration,
    verified: usize,
) -> Guard<MemoryStore> {
    let store = MemoryStore::new();
    for i in 0..subjects {
        store.insert(format!("user-{i}"), Cutoff::default());
    }
    Guard::builder(keys, store)
        .clock(clock.clone())
        .access_ttl(Duration::from_secs(10 * 365 * 86_400))
        .cache_ttl(cache_ttl)
        .max_entries(1_000_000)
        .verified_cache(verified)
        .build()
        .unwrap()
}

/// An HS256 guard with the verified-token cache off: every validation
/// checks the signature.
fn guard(subjects: usize, clock: &FakeClock, cache_ttl: Duration) -> Guard<MemoryStore> {
    let keys = Keys::hmac(Algorithm::HS256, SECRET).unwrap();
    guard_with(keys, subjects, clock, cache_ttl, 0)
}

fn es256_keys() -> (Keys, jsonwebtoken::DecodingKey) {
    let private = include_bytes!("../tests/vectors/keys/ec_private.pem");
    let public = include_bytes!("../tests/vectors/keys/ec_public.pem");
    let decoding = jsonwebtoken::DecodingKey::from_ec_pem(public).unwrap();
    let keys = Keys::new(
        Algorithm::ES256,
        jsonwebtoken::EncodingKey::from_ec_pem(private).unwrap(),
        decoding.clone(),
    )
    .unwrap();
    (keys, decoding)
}

fn validate(c: &mut Criterion) {
    let clock = FakeClock::new(T0);
    let g = guard(1, &clock, Duration::from_secs(30));
    let token = block_on(g.issue("user-0", &())).unwrap();

    let mut group = c.benchmark_group("validate_hs256");
    group.throughput(Throughput::Elements(1));

    let key = jsonwebtoken::DecodingKey::from_secret(SECRET);
    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    // Same work as the guard's claim checks: exp with leeway, no clock skew
    // games (the bare decode reads the system clock, so exp is far ahead).
    validation.set_required_spec_claims(&["exp", "sub", "iat"]);
    group.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| jsonwebtoken::decode::<BareClaims>(black_box(&token), &key, &validation).unwrap())
    });

    group.bench_function("guard_validate_hit", |b| {
        b.iter(|| hit(g.validate::<()>(black_box(&token))).unwrap())
    });

    // The same token again and again, verified-token cache on (default).
    let repeat = guard_with(
        Keys::hmac(Algorithm::HS256, SECRET).unwrap(),
        1,
        &clock,
        Duration::from_secs(30),
        10_000,
    );
    let repeat_token = block_on(repeat.issue("user-0", &())).unwrap();
    group.bench_function("guard_validate_repeat_verified_cache", |b| {
        b.iter(|| hit(repeat.validate::<()>(black_box(&repeat_token))).unwrap())
    });

    // Every iteration misses: a 1 ms cache TTL and a clock advanced by 1 ms.
    let miss_clock = FakeClock::new(T0);
    let miss = guard(1, &miss_clock, Duration::from_millis(1));
    let miss_token = block_on(miss.issue("user-0", &())).unwrap();
    group.bench_function("guard_validate_miss_memory_store", |b| {
        b.iter(|| {
            miss_clock.advance(Duration::from_millis(1));
            block_on(miss.validate::<()>(black_box(&miss_token))).unwrap()
        })
    });

    group.bench_function("guard_issue", |b| {
        b.iter(|| block_on(g.issue(black_box("user-0"), &())).unwrap())
    });
    group.finish();

    // The miss path through `DynStore` (one boxed future per store call)
    // against the concrete store, side by side.
    let mut group = c.benchmark_group("miss_store_type");
    group.throughput(Throughput::Elements(1));
    let concrete_clock = FakeClock::new(T0);
    let concrete = guard(1, &concrete_clock, Duration::from_millis(1));
    let concrete_token = block_on(concrete.issue("user-0", &())).unwrap();
    group.bench_function("memory_store", |b| {
        b.iter(|| {
            concrete_clock.advance(Duration::from_millis(1));
            block_on(concrete.validate::<()>(black_box(&concrete_token))).unwrap()
        })
    });
    let dyn_clock = FakeClock::new(T0);
    let memory = MemoryStore::new();
    memory.insert("user-0", Cutoff::default());
    let dynamic = Guard::builder(
        Keys::hmac(Algorithm::HS256, SECRET).unwrap(),
        jwt_revoke::DynStore::new(memory),
    )
    .clock(dyn_clock.clone())
    .access_ttl(Duration::from_secs(10 * 365 * 86_400))
    .cache_ttl(Duration::from_millis(1))
    .verified_cache(0)
    .build()
    .unwrap();
    let dyn_token = block_on(dynamic.issue("user-0", &())).unwrap();
    group.bench_function("dyn_store_over_memory_store", |b| {
        b.iter(|| {
            dyn_clock.advance(Duration::from_millis(1));
            block_on(dynamic.validate::<()>(black_box(&dyn_token))).unwrap()
        })
    });
    group.finish();

    // ES256: what a token from an identity provider costs.
    let (es_keys, es_decoding) = es256_keys();
    let es = guard_with(es_keys, 1, &clock, Duration::from_secs(30), 0);
    let es_repeat = guard_with(es256_keys().0, 1, &clock, Duration::from_secs(30), 10_000);
    let es_token = block_on(es.issue("user-0", &())).unwrap();
    let mut es_validation = jsonwebtoken::Validation::new(Algorithm::ES256);
    es_validation.set_required_spec_claims(&["exp", "sub", "iat"]);
    let mut group = c.benchmark_group("validate_es256");
    group.throughput(Throughput::Elements(1));
    group.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<BareClaims>(black_box(&es_token), &es_decoding, &es_validation)
                .unwrap()
        })
    });
    group.bench_function("guard_validate_hit", |b| {
        b.iter(|| hit(es.validate::<()>(black_box(&es_token))).unwrap())
    });
    group.bench_function("guard_validate_repeat_verified_cache", |b| {
        b.iter(|| hit(es_repeat.validate::<()>(black_box(&es_token))).unwrap())
    });
    group.finish();

    // RS256 (2048-bit): the other common identity-provider algorithm.
    let rs_keys = || {
        let private = include_bytes!("../tests/vectors/keys/rsa_private.pem");
        let public = include_bytes!("../tests/vectors/keys/rsa_public.pem");
        let decoding = jsonwebtoken::DecodingKey::from_rsa_pem(public).unwrap();
        let keys = Keys::new(
            Algorithm::RS256,
            jsonwebtoken::EncodingKey::from_rsa_pem(private).unwrap(),
            decoding.clone(),
        )
        .unwrap();
        (keys, decoding)
    };
    let (rs_guard_keys, rs_decoding) = rs_keys();
    let rs = guard_with(rs_guard_keys, 1, &clock, Duration::from_secs(30), 0);
    let rs_repeat = guard_with(rs_keys().0, 1, &clock, Duration::from_secs(30), 10_000);
    let rs_token = block_on(rs.issue("user-0", &())).unwrap();
    let mut rs_validation = jsonwebtoken::Validation::new(Algorithm::RS256);
    rs_validation.set_required_spec_claims(&["exp", "sub", "iat"]);
    let mut group = c.benchmark_group("validate_rs256");
    group.throughput(Throughput::Elements(1));
    group.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<BareClaims>(black_box(&rs_token), &rs_decoding, &rs_validation)
                .unwrap()
        })
    });
    group.bench_function("guard_validate_hit", |b| {
        b.iter(|| hit(rs.validate::<()>(black_box(&rs_token))).unwrap())
    });
    group.bench_function("guard_validate_repeat_verified_cache", |b| {
        b.iter(|| hit(rs_repeat.validate::<()>(black_box(&rs_token))).unwrap())
    });
    group.finish();

    // A large cache: 100 000 cached subjects, validate one of them.
    let big_clock = FakeClock::new(T0);
    let big = guard(100_000, &big_clock, Duration::from_secs(3_600));
    // Each bump writes the store and inserts the subject into the cache.
    for i in 0..100_000 {
        block_on(big.bump_version(&format!("user-{i}"))).unwrap();
    }
    let tokens: Vec<String> = (0..1_000)
        .map(|i| block_on(big.issue(&format!("user-{}", i * 97), &())).unwrap())
        .collect();
    let mut group = c.benchmark_group("validate_hs256_100k_cached");
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    group.bench_function("guard_validate_hit", |b| {
        b.iter(|| {
            i = (i + 1) % tokens.len();
            hit(big.validate::<()>(black_box(&tokens[i]))).unwrap()
        })
    });
    group.finish();
}

fn threads(c: &mut Criterion) {
    let clock = FakeClock::new(T0);
    let g = Arc::new(guard(64, &clock, Duration::from_secs(3_600)));
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..64)
            .map(|i| block_on(g.issue(&format!("user-{i}"), &())).unwrap())
            .collect(),
    );
    let mut group = c.benchmark_group("validate_threads");
    let key = jsonwebtoken::DecodingKey::from_secret(SECRET);
    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub", "iat"]);
    // The guard, and the same harness around a bare `jsonwebtoken::decode`
    // (how well the machine itself scales, for reference).
    let guard_step = |t: &str| {
        hit(g.validate::<()>(black_box(t))).unwrap();
    };
    let decode_step = |t: &str| {
        jsonwebtoken::decode::<BareClaims>(black_box(t), &key, &validation).unwrap();
    };
    for (name, step) in [
        ("guard_validate_hit", &guard_step as &(dyn Fn(&str) + Sync)),
        (
            "jsonwebtoken_decode",
            &decode_step as &(dyn Fn(&str) + Sync),
        ),
    ] {
        for n in [1usize, 2] {
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, &n| {
                // Each of `n` threads validates `iters` tokens; the time is
                // that of the slowest thread, from a common start after
                // every thread is up and warm (thread start-up and the
                // per-thread runtime are not timed), so elements/s is the
                // aggregate throughput.
                b.iter_custom(|iters| {
                    let barrier = std::sync::Barrier::new(n);
                    std::thread::scope(|s| {
                        let workers: Vec<_> = (0..n)
                            .map(|t| {
                                let (tokens, barrier) = (&tokens, &barrier);
                                s.spawn(move || {
                                    step(&tokens[t]);
                                    barrier.wait();
                                    let start = Instant::now();
                                    for k in 0..iters as usize {
                                        step(&tokens[(k + t * 7) % tokens.len()]);
                                    }
                                    start.elapsed()
                                })
                            })
                            .collect();
                        workers
                            .into_iter()
                            .map(|w| w.join().unwrap())
                            .max()
                            .unwrap_or_default()
                    })
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = validate, threads
}
criterion_main!(benches);
