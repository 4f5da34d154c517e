//! Propagation latency across instances: instance one bumps a subject's
//! version; how long until instance two rejects the old token? p50/p99 over
//! many bumps, for each bus, on loopback.
//!
//! Needs the servers: `bash scripts/bench.sh`.

use std::time::{Duration, Instant};

use jwt_revoke::invalidation::{BusKey, SubscriberConfig};
use jwt_revoke::invalidation::{postgres as pg_bus, redis as redis_bus};
use jwt_revoke::{
    Algorithm, Cutoff, CutoffStore, Guard, Keys, PostgresStore, Publisher, RedisStore,
};

const ROUNDS: usize = 300;

fn guard<S: CutoffStore>(store: S, publisher: impl Publisher) -> Guard<S> {
    Guard::builder(
        Keys::hmac(Algorithm::HS256, b"bench-secret-bench-secret-bench!").unwrap(),
        store,
    )
    .cache_ttl(Duration::from_secs(3_600))
    .publisher(publisher)
    .build()
    .unwrap()
}

async fn measure<S: CutoffStore>(name: &str, one: Guard<S>, two: Guard<S>, sub: &str) {
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let token = one.issue(sub, &()).await.unwrap();
        assert!(two.validate::<()>(&token).await.is_ok());
        let start = Instant::now();
        one.bump_version(sub).await.unwrap();
        loop {
            match two.validate::<()>(&token).await {
                Err(e) if e.code() == "token_revoked" => break,
                _ if start.elapsed() > Duration::from_secs(5) => panic!("{name}: not propagated"),
                _ => tokio::task::yield_now().await,
            }
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "{name:<28} rounds={ROUNDS} p50={:>8.3} ms  p99={:>8.3} ms  max={:>8.3} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3
    );
}

async fn wait_connected(h: &jwt_revoke::invalidation::SubscriberHandle) {
    let start = Instant::now();
    while !h.is_connected() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "subscriber did not connect"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let redis_url = std::env::var("REDIS_URL").expect("REDIS_URL: run scripts/bench.sh");
    let pg_url = std::env::var("POSTGRES_URL").expect("POSTGRES_URL: run scripts/bench.sh");
    println!(
        "propagation: bump on instance one -> instance two rejects the old token (includes the store write)"
    );

    let bus_key = BusKey::from_bytes(b"bench-bus-key-bench-bus-key-bench").unwrap();
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let store = RedisStore::connect(&redis_url).await.unwrap();
    store.insert("prop-redis", Cutoff::default()).await.unwrap();
    let publisher = redis_bus::RedisPublisher::connect(&client, "bench-prop", bus_key.clone())
        .await
        .unwrap();
    let (one, two) = (
        guard(store.clone(), publisher.clone()),
        guard(store, publisher),
    );
    let h = redis_bus::spawn_subscriber(
        two.clone(),
        client,
        "bench-prop",
        bus_key.clone(),
        SubscriberConfig::default(),
    )
    .unwrap();
    wait_connected(&h).await;
    measure("redis pub/sub", one, two, "prop-redis").await;

    let store = PostgresStore::connect(&pg_url).await.unwrap();
    store.insert("prop-pg", Cutoff::default()).await.unwrap();
    let publisher =
        pg_bus::PgPublisher::new(store.pool().clone(), "bench_prop", bus_key.clone()).unwrap();
    let (one, two) = (
        guard(store.clone(), publisher.clone()),
        guard(store, publisher),
    );
    let h = pg_bus::spawn_subscriber(
        two.clone(),
        pg_url,
        "bench_prop",
        bus_key,
        SubscriberConfig::default(),
    )
    .unwrap();
    wait_connected(&h).await;
    measure("postgres listen/notify", one, two, "prop-pg").await;
}
