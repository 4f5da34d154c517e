//! Two guards ("instances") on one real store and one real bus: a
//! revocation on one reaches the other in milliseconds; when the
//! subscription is lost, cached cutoffs are trusted only briefly, and the
//! subscriber comes back by itself.
#![cfg(all(feature = "redis", feature = "postgres"))]

mod common;

use std::time::{Duration, Instant};

use jwt_revoke::invalidation::{SubscriberConfig, SubscriberHandle};
use jwt_revoke::{Algorithm, Cutoff, CutoffStore, FakeClock, Guard, Keys, Publisher};

const T0: i64 = 1_800_000_000;

fn config() -> SubscriberConfig {
    SubscriberConfig {
        degraded_max_age: Duration::from_secs(1),
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    }
}

fn guard<S: CutoffStore>(
    store: S,
    clock: &FakeClock,
    publisher: Option<impl Publisher>,
) -> Guard<S> {
    let b = Guard::builder(Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(), store)
        .clock(clock.clone())
        .cache_ttl(Duration::from_secs(300));
    match publisher {
        Some(p) => b.publisher(p).build().unwrap(),
        None => b.build().unwrap(),
    }
}

/// Polls `cond` every 10 ms for up to 10 s.
async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

async fn connected(h: &SubscriberHandle) {
    eventually("subscriber connected", async || h.is_connected()).await;
}

async fn revoked<S: CutoffStore>(g: &Guard<S>, token: &str) -> bool {
    matches!(g.validate::<()>(token).await, Err(e) if e.code() == "token_revoked")
}

/// The scenario both buses must pass.
async fn propagation<S: CutoffStore + Clone>(
    store: S,
    publisher: impl Publisher + Clone,
    subscribe: impl Fn(Guard<S>) -> SubscriberHandle,
) {
    let clock = FakeClock::new(T0);
    let sub = common::unique("bus");
    let one = guard(store.clone(), &clock, Some(publisher.clone()));
    let two = guard(store.clone(), &clock, Some(publisher));
    let no_bus = guard(
        store.clone(),
        &clock,
        None::<jwt_revoke::invalidation::redis::RedisPublisher>,
    );
    let (h1, h2) = (subscribe(one.clone()), subscribe(two.clone()));
    connected(&h1).await;
    connected(&h2).await;

    one.bump_version(&sub).await.unwrap(); // creates the subject at version 1
    let token = one.issue(&sub, &()).await.unwrap();
    assert!(two.validate::<()>(&token).await.is_ok());
    assert!(no_bus.validate::<()>(&token).await.is_ok());

    one.bump_version(&sub).await.unwrap();
    eventually("instance two rejects the old token", async || {
        revoked(&two, &token).await
    })
    .await;
    assert!(
        no_bus.validate::<()>(&token).await.is_ok(),
        "without the bus the other instance trusts its cache until the TTL"
    );
    assert!(h2.events_received() >= 1);
    assert_eq!(one.publish_errors(), 0);

    // Timestamp and global revocations travel too.
    let fresh = one.issue(&sub, &()).await.unwrap();
    assert!(two.validate::<()>(&fresh).await.is_ok());
    one.revoke_before(&sub, T0).await.unwrap();
    eventually("revoke_before propagates", async || {
        revoked(&two, &fresh).await
    })
    .await;
}

mod redis_bus {
    use super::*;
    use jwt_revoke::RedisStore;
    use jwt_revoke::invalidation::redis::{RedisPublisher, spawn_subscriber};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bump_reaches_the_other_instance_over_redis() {
        let url = common::server_url("REDIS_URL");
        let client = redis::Client::open(url.as_str()).unwrap();
        let channel = common::unique("jwt-revoke-test");
        let store = RedisStore::connect(&url).await.unwrap();
        let publisher = RedisPublisher::connect(&client, channel.clone())
            .await
            .unwrap();
        propagation(store, publisher, |g| {
            spawn_subscriber(g, client.clone(), channel.clone(), config())
        })
        .await;
    }

    use common::redis_server::{OwnRedis as BusServer, free_port};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_subscription_limits_cache_age_and_resubscribes() {
        let port = free_port();
        let bus_url = format!("redis://127.0.0.1:{port}/");
        let server = BusServer::start(port);
        let client = redis::Client::open(bus_url.as_str()).unwrap();
        let store = RedisStore::connect(&common::server_url("REDIS_URL"))
            .await
            .unwrap();
        let clock = FakeClock::new(T0);
        let sub = common::unique("bus-down");
        store.insert(&sub, Cutoff::default()).await.unwrap();

        let mut publisher = None;
        for _ in 0..200 {
            if let Ok(p) = RedisPublisher::connect(&client, "bus").await {
                publisher = Some(p);
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let one = guard(store.clone(), &clock, publisher);
        let two = guard(store.clone(), &clock, None::<RedisPublisher>);
        let handle = spawn_subscriber(two.clone(), client.clone(), "bus", config());
        connected(&handle).await;
        let token = one.issue(&sub, &()).await.unwrap();
        assert!(two.validate::<()>(&token).await.is_ok());

        // The bus dies; a logout happens meanwhile and cannot be published.
        drop(server);
        eventually("the subscriber notices", async || !handle.is_connected()).await;
        one.bump_version(&sub).await.unwrap();
        assert_eq!(one.publish_errors(), 1);
        // Within the degraded age the cached cutoff is still used…
        assert!(two.validate::<()>(&token).await.is_ok());
        // …and once it is older than that, the store is asked again.
        clock.advance(Duration::from_millis(1_001));
        assert!(revoked(&two, &token).await);

        // The bus comes back: the subscriber resubscribes by itself.
        let _server = BusServer::start(port);
        connected(&handle).await;
        assert!(handle.disconnects() >= 1);
        let fresh = one.issue(&sub, &()).await.unwrap();
        assert!(two.validate::<()>(&fresh).await.is_ok());
        eventually("a publish goes through again", async || {
            let before = one.publish_errors();
            one.bump_version(&sub).await.is_ok() && one.publish_errors() == before
        })
        .await;
        eventually("events flow again", async || revoked(&two, &fresh).await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn malformed_messages_are_counted_and_ignored() {
        let url = common::server_url("REDIS_URL");
        let client = redis::Client::open(url.as_str()).unwrap();
        let channel = common::unique("jwt-revoke-junk");
        let store = RedisStore::connect(&url).await.unwrap();
        let g = guard(store, &FakeClock::new(T0), None::<RedisPublisher>);
        let h = spawn_subscriber(g.clone(), client.clone(), channel.clone(), config());
        connected(&h).await;
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        for junk in [
            "not json",
            "{\"kind\":\"subject\"}",
            "{\"kind\":\"global\",\"not_before\":\"x\"}",
        ] {
            let _: i64 = redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(junk)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        eventually("three malformed messages counted", async || {
            h.malformed_messages() == 3
        })
        .await;
        assert_eq!(h.events_received(), 0);
        assert!(h.is_connected());
    }
}

mod postgres_bus {
    use super::*;
    use jwt_revoke::PostgresStore;
    use jwt_revoke::invalidation::postgres::{PgPublisher, spawn_subscriber};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bump_reaches_the_other_instance_over_listen_notify() {
        let url = common::server_url("POSTGRES_URL");
        let channel = common::unique("jwt_revoke_test").replace('-', "_");
        let store = PostgresStore::connect(&url).await.unwrap();
        let publisher = PgPublisher::new(store.pool().clone(), channel.clone());
        propagation(store, publisher, |g| {
            spawn_subscriber(g, url.clone(), channel.clone(), config())
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_terminated_listener_reconnects_and_clears_the_cache() {
        let url = common::server_url("POSTGRES_URL");
        let app_name = common::unique("listener").replace('-', "_");
        let listen_url = format!("{url}?application_name={app_name}");
        let channel = common::unique("jwt_revoke_kill").replace('-', "_");
        let store = PostgresStore::connect(&url).await.unwrap();
        let clock = FakeClock::new(T0);
        let sub = common::unique("pg-bus");
        store.insert(&sub, Cutoff::default()).await.unwrap();
        let one = guard(
            store.clone(),
            &clock,
            Some(PgPublisher::new(store.pool().clone(), channel.clone())),
        );
        let two = guard(store.clone(), &clock, None::<PgPublisher>);
        let h = spawn_subscriber(two.clone(), listen_url, channel.clone(), config());
        connected(&h).await;
        let token = one.issue(&sub, &()).await.unwrap();
        assert!(two.validate::<()>(&token).await.is_ok());

        // Kill the listener's backend, as a failover or network cut would.
        let killed: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(&app_name)
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(killed.len(), 1);
        eventually("the subscriber notices and resubscribes", async || {
            h.disconnects() >= 1 && h.is_connected()
        })
        .await;
        // Resubscribing cleared the cache: a bump made directly in the store
        // (missed by the bus) is seen at once.
        store.bump_version(&sub).await.unwrap();
        assert!(revoked(&two, &token).await);
        // And events flow again.
        let fresh = one.issue(&sub, &()).await.unwrap();
        assert!(two.validate::<()>(&fresh).await.is_ok());
        one.bump_version(&sub).await.unwrap();
        eventually("events flow again", async || revoked(&two, &fresh).await).await;
    }
}
