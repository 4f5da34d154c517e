//! Sessions, side by side in one run:
//! - `Guard::validate` of a cached token **with** `sid` against the same
//!   guard's cached token without (HS256; verified-token cache off, so
//!   both check the signature, and on, for a repeated token),
//! - `Guard::refresh` (the subject's cutoffs read from the store, one
//!   compare-and-swap on the session row, a new access token signed) on
//!   each store, against what a token-table design does in the same
//!   database: look the presented refresh token up by its hash, mark it
//!   used, store the new one (one transaction), and sign an access token.
//!
//! Run: `bash scripts/services.sh start` (prints `REDIS_URL` and
//! `POSTGRES_URL` to export), then
//! `cargo bench --bench sessions --features sqlite,postgres,redis`.
//! Compare ratios within one run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use jwt_revoke::{
    Algorithm, Cutoff, FakeClock, Guard, Keys, MemoryStore, PostgresStore, RedisStore, RefreshKey,
    SessionConfig, SessionStore, SqliteStore,
};
use sha2::{Digest, Sha256};

const SECRET: &[u8] = b"bench-secret-bench-secret-bench!";
const T0: i64 = 1_800_000_000;

fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: see the header of this file"))
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

fn validate_with_and_without_sid(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let clock = FakeClock::new(T0);
    for (label, verified) in [("signature_checked", 0), ("verified_cache", 10_000)] {
        let store = MemoryStore::new();
        store.insert("user-0", Cutoff::default());
        let g = guard(store, &clock, verified);
        let plain = rt.block_on(g.issue("user-0", &())).unwrap();
        let session = rt.block_on(g.login("user-0", &())).unwrap().access_token;
        // Warm both: subject, global and session cached.
        rt.block_on(g.validate::<()>(&plain)).unwrap();
        rt.block_on(g.validate::<()>(&session)).unwrap();

        let mut group = c.benchmark_group(format!("validate_sid_{label}"));
        group.throughput(Throughput::Elements(1));
        // Polled once in the runtime's context (a hit never waits), as in a
        // handler already on a runtime.
        let _entered = rt.enter();
        let hit = |t: &str| {
            use futures::FutureExt;
            g.validate::<()>(black_box(t))
                .now_or_never()
                .expect("a cache hit finishes without waiting")
                .unwrap()
        };
        group.bench_function("without_sid", |b| b.iter(|| hit(&plain)));
        group.bench_function("with_sid", |b| b.iter(|| hit(&session)));
        group.finish();
    }
}

/// Rotates one session's refresh token over and over (each iteration
/// presents the token the previous one returned).
fn bench_refresh<S: SessionStore>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    store: S,
) {
    let clock = FakeClock::new(T0);
    let g = guard(store, &clock, 0);
    let mut token = rt
        .block_on(g.login("bench-user", &()))
        .unwrap()
        .refresh_token;
    let mut group = c.benchmark_group("refresh");
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("jwt_revoke_{name}"), |b| {
        b.iter(|| {
            let next = rt.block_on(g.refresh(black_box(&token), &())).unwrap();
            token = next.refresh_token;
        })
    });
    group.finish();
}

/// An access token as a refresh endpoint of the token-table design signs it.
fn sign_access(sub: &str) -> String {
    let claims = serde_json::json!({"sub": sub, "iat": T0, "exp": T0 + 900});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

/// A new opaque refresh token and the hash a token table keys it by.
fn new_refresh(n: u64) -> (String, String) {
    let token = format!("refresh-token-{n}-{}", "x".repeat(32));
    let hash = hex(&Sha256::digest(token.as_bytes()));
    (token, hash)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const TOKEN_TABLE: &str = "CREATE TABLE IF NOT EXISTS bench_refresh_tokens (
    hash TEXT PRIMARY KEY, sub TEXT NOT NULL, family TEXT NOT NULL,
    expires_at BIGINT NOT NULL, used BIGINT NOT NULL DEFAULT 0)";

macro_rules! token_table_refresh {
    ($c:expr, $rt:expr, $name:literal, $pool:expr) => {{
        let pool = $pool;
        $rt.block_on(async {
            sqlx::raw_sql(TOKEN_TABLE).execute(&pool).await.unwrap();
            sqlx::raw_sql("DELETE FROM bench_refresh_tokens")
                .execute(&pool)
                .await
                .unwrap();
        });
        let mut n = 0u64;
        let (_, mut current) = new_refresh(n);
        $rt.block_on(
            sqlx::query(
                "INSERT INTO bench_refresh_tokens (hash, sub, family, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&current)
            .bind("bench-user")
            .bind("family-1")
            .bind(T0 + 86_400)
            .execute(&pool),
        )
        .unwrap();
        let mut group = $c.benchmark_group("refresh");
        group.throughput(Throughput::Elements(1));
        group.bench_function(concat!("token_table_", $name), |b| {
            b.iter(|| {
                n += 1;
                let (_, next) = new_refresh(n);
                $rt.block_on(async {
                    let mut tx = pool.begin().await.unwrap();
                    let row: Option<(String, i64)> = sqlx::query_as(
                        "UPDATE bench_refresh_tokens SET used = 1 WHERE hash = $1 AND used = 0 \
                         RETURNING sub, expires_at",
                    )
                    .bind(&current)
                    .fetch_optional(&mut *tx)
                    .await
                    .unwrap();
                    let (sub, _) = row.expect("a live refresh token");
                    sqlx::query(
                        "INSERT INTO bench_refresh_tokens (hash, sub, family, expires_at) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&next)
                    .bind(&sub)
                    .bind("family-1")
                    .bind(T0 + 86_400)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                    tx.commit().await.unwrap();
                    black_box(sign_access(&sub));
                });
                current = next;
            })
        });
        group.finish();
    }};
}

fn redis_token_table(c: &mut Criterion, rt: &tokio::runtime::Runtime, url: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = rt
        .block_on(client.get_multiplexed_async_connection())
        .unwrap();
    let mut n = 0u64;
    let (_, mut current) = new_refresh(n);
    let _: () = rt
        .block_on(
            redis::cmd("SET")
                .arg(format!("bench:rt:{current}"))
                .arg("bench-user")
                .query_async(&mut conn),
        )
        .unwrap();
    let mut group = c.benchmark_group("refresh");
    group.throughput(Throughput::Elements(1));
    group.bench_function("token_table_redis", |b| {
        b.iter(|| {
            n += 1;
            let (_, next) = new_refresh(n);
            rt.block_on(async {
                // GETDEL spends the presented token atomically; the new one
                // is stored with an expiry.
                let sub: Option<String> = redis::cmd("GETDEL")
                    .arg(format!("bench:rt:{current}"))
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                let sub = sub.expect("a live refresh token");
                let _: () = redis::cmd("SET")
                    .arg(format!("bench:rt:{next}"))
                    .arg(&sub)
                    .arg("EX")
                    .arg(86_400)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                black_box(sign_access(&sub));
            });
            current = next;
        })
    });
    group.finish();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    validate_with_and_without_sid(&mut c, &rt);

    let redis_url = env("REDIS_URL");
    let pg_url = env("POSTGRES_URL");
    let dir = std::env::temp_dir().join(format!("jwt-revoke-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite_url = format!("sqlite://{}?mode=rwc", dir.join("sessions.db").display());
    let (sqlite, postgres, redis) = rt.block_on(async {
        let s = SqliteStore::connect(&sqlite_url).await.unwrap();
        let p = PostgresStore::connect(&pg_url).await.unwrap();
        let r = RedisStore::connect(&redis_url).await.unwrap();
        s.insert("bench-user", Cutoff::default()).await.unwrap();
        p.insert("bench-user", Cutoff::default()).await.unwrap();
        r.insert("bench-user", Cutoff::default()).await.unwrap();
        (s, p, r)
    });
    let memory = MemoryStore::new();
    memory.insert("bench-user", Cutoff::default());

    bench_refresh(&mut c, &rt, "memory", memory);
    let sqlite_pool = sqlite.pool().clone();
    bench_refresh(&mut c, &rt, "sqlite", sqlite);
    token_table_refresh!(c, rt, "sqlite", sqlite_pool);
    let pg_pool = postgres.pool().clone();
    bench_refresh(&mut c, &rt, "postgres", postgres);
    token_table_refresh!(c, rt, "postgres", pg_pool);
    bench_refresh(&mut c, &rt, "redis", redis);
    redis_token_table(&mut c, &rt, &redis_url);

    c.final_summary();
    let _ = std::fs::remove_dir_all(&dir);
}
