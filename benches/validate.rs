//! Validation cost, side by side in one run:
//! - bare `jsonwebtoken::decode` of an HS256 token (the baseline),
//! - `Guard::validate` of the same token on a cache hit,
//! - `Guard::validate` on a cache miss (MemoryStore),
//! - `Guard::issue`,
//! - cache-hit validation with 100 000 cached subjects,
//! - throughput on 1 and 2 threads.
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

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

fn guard(subjects: usize, clock: &FakeClock, cache_ttl: Duration) -> Guard<MemoryStore> {
    let store = MemoryStore::new();
    for i in 0..subjects {
        store.insert(format!("user-{i}"), Cutoff::default());
    }
    Guard::builder(Keys::hmac(Algorithm::HS256, SECRET).unwrap(), store)
        .clock(clock.clone())
        .access_ttl(Duration::from_secs(10 * 365 * 86_400))
        .cache_ttl(cache_ttl)
        .max_entries(1_000_000)
        .build()
        .unwrap()
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
        b.iter(|| block_on(g.validate::<()>(black_box(&token))).unwrap())
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
            block_on(big.validate::<()>(black_box(&tokens[i]))).unwrap()
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
    for n in [1usize, 2] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("guard_validate_hit", n), &n, |b, &n| {
            // Each of `n` threads validates `iters` tokens: time per round of
            // n validations, so elements/s is the aggregate throughput.
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..n {
                        let (g, tokens) = (g.clone(), tokens.clone());
                        s.spawn(move || {
                            for k in 0..iters as usize {
                                let tok = &tokens[(k + t * 7) % tokens.len()];
                                block_on(g.validate::<()>(black_box(tok))).unwrap();
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    // The same harness around bare `jsonwebtoken::decode`: how well the
    // machine itself scales, for reference.
    let key = jsonwebtoken::DecodingKey::from_secret(SECRET);
    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub", "iat"]);
    for n in [1usize, 2] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("jsonwebtoken_decode", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..n {
                        let (tokens, key, validation) = (tokens.clone(), &key, &validation);
                        s.spawn(move || {
                            for k in 0..iters as usize {
                                let tok = &tokens[(k + t * 7) % tokens.len()];
                                jsonwebtoken::decode::<BareClaims>(black_box(tok), key, validation)
                                    .unwrap();
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
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
