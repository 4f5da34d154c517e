//! The common alternative side by side with jwt-revoke, in one run:
//! - `jsonwebtoken::decode` + a Redis `GET` of a per-token denylist key on
//!   every request (the usual "logout with JWT" recipe),
//! - `Guard::validate` of the same token (cache hit),
//! - `Guard::validate` on a cache miss against each real store.
//!
//! Needs the servers: `bash scripts/bench.sh` (starts them, runs this).
//! Also prints the state each approach keeps for a simulated workload.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use jwt_revoke::{
    Algorithm, Cutoff, CutoffStore, FakeClock, Guard, Keys, PostgresStore, RedisStore, SqliteStore,
};
use serde::Deserialize;

const SECRET: &[u8] = b"bench-secret-bench-secret-bench!";
const T0: i64 = 1_800_000_000;

#[derive(Deserialize)]
#[allow(dead_code)]
struct Claims {
    sub: String,
    jti: String,
    exp: i64,
}

fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run scripts/bench.sh"))
}

fn guard<S: CutoffStore>(store: S, clock: &FakeClock, ttl: Duration) -> Guard<S> {
    Guard::builder(Keys::hmac(Algorithm::HS256, SECRET).unwrap(), store)
        .clock(clock.clone())
        .cache_ttl(ttl)
        .build()
        .unwrap()
}

/// One token both approaches accept: `sub`, `iat`, `exp`, `ver`, `jti`.
fn token(sub: &str) -> String {
    let claims = serde_json::json!({
        "sub": sub, "iat": T0, "exp": T0 + 3_153_600_000i64, "ver": 0, "jti": format!("{sub}-session-1"),
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn state_table() {
    // 100 000 users, 3 devices each, 15-minute access tokens refreshed while
    // active, 8 active hours a day, 5 % of users log out everywhere daily.
    let users = 100_000u64;
    let devices = 3u64;
    let live_tokens = users * devices; // one live access token per device
    let issued_per_day = live_tokens * 8 * 4;
    let logouts_per_day = users / 20;
    // A denylist must hold every revoked, unexpired token: logging a user out
    // everywhere means listing each of their live tokens (which also needs a
    // registry of issued tokens, i.e. storing tokens).
    let denylist_keys = logouts_per_day * devices;
    let registry_rows = issued_per_day; // to know which tokens to denylist
    println!(
        "state kept (simulated: {users} users, {devices} devices, 15-min tokens, 5 % daily logout-all)"
    );
    println!(
        "  denylist:   {denylist_keys} keys alive at any time + a registry of {registry_rows} issued tokens/day"
    );
    println!("  jwt-revoke: {users} rows (one per user) + 1 global row, whatever the traffic");
}

fn main() {
    state_table();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    let redis_url = env("REDIS_URL");
    let pg_url = env("POSTGRES_URL");
    let t = token("bench-user");
    let (redis_store, pg_store, sqlite_store) = rt.block_on(async {
        let r = RedisStore::connect(&redis_url).await.unwrap();
        let p = PostgresStore::connect(&pg_url).await.unwrap();
        let s = SqliteStore::connect("sqlite::memory:").await.unwrap();
        r.insert("bench-user", Cutoff::default()).await.unwrap();
        p.insert("bench-user", Cutoff::default()).await.unwrap();
        s.insert("bench-user", Cutoff::default()).await.unwrap();
        (r, p, s)
    });

    let mut group = c.benchmark_group("per_request");
    group.throughput(Throughput::Elements(1));
    let key = jsonwebtoken::DecodingKey::from_secret(SECRET);
    let validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut conn = rt
        .block_on(client.get_multiplexed_async_connection())
        .unwrap();
    group.bench_function("decode_plus_redis_denylist_get", |b| {
        b.iter(|| {
            rt.block_on(async {
                let data =
                    jsonwebtoken::decode::<Claims>(black_box(&t), &key, &validation).unwrap();
                let hit: Option<String> = redis::cmd("GET")
                    .arg(format!("denylist:{}", data.claims.jti))
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                assert!(hit.is_none());
            })
        })
    });

    let clock = FakeClock::new(T0);
    let hit = guard(redis_store.clone(), &clock, Duration::from_secs(3_600));
    rt.block_on(hit.validate::<()>(&t)).unwrap();
    group.bench_function("jwt_revoke_validate_cache_hit", |b| {
        b.iter(|| rt.block_on(hit.validate::<()>(black_box(&t))).unwrap())
    });

    // Misses: a 1 ms cache TTL and a fake clock moved by 1 ms per request.
    macro_rules! miss {
        ($name:literal, $store:expr) => {{
            let clock = FakeClock::new(T0);
            let g = guard($store, &clock, Duration::from_millis(1));
            group.bench_function($name, |b| {
                b.iter(|| {
                    clock.advance(Duration::from_millis(1));
                    rt.block_on(g.validate::<()>(black_box(&t))).unwrap()
                })
            });
        }};
    }
    miss!("jwt_revoke_validate_miss_redis", redis_store);
    miss!("jwt_revoke_validate_miss_postgres", pg_store);
    miss!("jwt_revoke_validate_miss_sqlite", sqlite_store);
    group.finish();
    c.final_summary();
}
