//! Sessions, side by side in one run:
//! - `Guard::validate` of a cached token **with** `sid` against the same
//!   guard's cached token without (HS256; verified-token cache off, so
//!   both check the signature; and on, for the repeat-token case),
//! - `Guard::refresh` (rotation with reuse detection: one compare-and-swap
//!   on the session row, plus the subject's cutoff read) on each store,
//!   against what a token-table design does in the same database: look the
//!   presented refresh token up by its hash, mark it used, insert the new
//!   one.
//!
//! Run: `cargo bench --bench sessions` (memory store only), or with
//! `--features sqlite,postgres,redis` and `REDIS_URL` / `POSTGRES_URL` set
//! (`bash scripts/services.sh start`) for every store. Compare ratios
//! within one run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jwt_revoke::{
    Algorithm, Cutoff, FakeClock, Guard, Keys, MemoryStore, RefreshKey, SessionConfig, SessionStore,
};

const SECRET: &[u8] = b"bench-secret-bench-secret-bench!";
const T0: i64 = 1_800_000_000;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
    }
    RT.with(|rt| rt.block_on(f))
}

fn guard<S: SessionStore>(store: S, clock: &FakeClock, verified: usize) -> Guard<S> {
    Guard::builder(Keys::hmac(Algorithm::HS256, SECRET).unwrap(), store)
        .clock(clock.clone())
        .access_ttl(Duration::from_secs(10 * 365 * 86_400))
        .verified_cache(verified)
        .sessions(SessionConfig::new(RefreshKey::new(SECRET).unwrap()))
        .build()
        .unwrap()
}

fn validate_with_and_without_sid(c: &mut Criterion) {
    let clock = FakeClock::new(T0);
    for (label, verified) in [("signature_checked", 0), ("verified_cache", 10_000)] {
        let store = MemoryStore::new();
        store.insert("user-0", Cutoff::default());
        let g = guard(store, &clock, verified);
        let plain = block_on(g.issue("user-0", &())).unwrap();
        let session = block_on(g.login("user-0", &())).unwrap().access_token;
        // Warm both (subject, global and session cached).
        block_on(g.validate::<()>(&plain)).unwrap();
        block_on(g.validate::<()>(&session)).unwrap();

        let mut group = c.benchmark_group(format!("validate_sid_{label}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("without_sid", |b| {
            b.iter(|| block_on(g.validate::<()>(black_box(&plain))).unwrap())
        });
        group.bench_function("with_sid", |b| {
            b.iter(|| block_on(g.validate::<()>(black_box(&session))).unwrap())
        });
        group.finish();
    }
}

/// Rotates one session's refresh token over and over (each iteration
/// presents the token the previous one returned).
fn bench_refresh<S: SessionStore>(c: &mut Criterion, name: &str, g: Guard<S>, sub: &str) {
    let mut token = block_on(g.login(sub, &())).unwrap().refresh_token;
    let mut group = c.benchmark_group("refresh");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        b.iter(|| {
            let next = block_on(g.refresh(black_box(&token), &())).unwrap();
            token = next.refresh_token;
        })
    });
    group.finish();
}

fn refresh(c: &mut Criterion) {
    let clock = FakeClock::new(T0);
    let store = MemoryStore::new();
    store.insert("user-0", Cutoff::default());
    bench_refresh(c, "memory", guard(store, &clock, 0), "user-0");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = validate_with_and_without_sid, refresh
}
criterion_main!(benches);
