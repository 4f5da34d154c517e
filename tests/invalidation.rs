//! Two guards ("instances") on one real store and one real bus: a
//! revocation on one reaches the other in milliseconds; only authenticated
//! messages count; when the subscription is lost or goes silent, cached
//! cutoffs are trusted only briefly, and the subscriber comes back by
//! itself; a publisher survives a bus restart.
#![cfg(all(feature = "redis", feature = "postgres"))]

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jwt_revoke::invalidation::{BusConfigError, BusKey, SubscriberConfig, SubscriberHandle};
use jwt_revoke::{Algorithm, Cutoff, CutoffStore, FakeClock, Guard, Keys, Publisher};
use sha2::Sha256;

const T0: i64 = 1_800_000_000;

/// A 32-byte bus key.
const BUS_KEY: &[u8] = b"bus-key-bus-key-bus-key-bus-key-";

/// A key that is not the bus key.
const FORGER_KEY: &[u8] = b"forger-key-forger-key-forger-key";

fn bus_key() -> BusKey {
    BusKey::from_bytes(BUS_KEY).unwrap()
}

const DEGRADED: Duration = Duration::from_secs(1);

fn config() -> SubscriberConfig {
    SubscriberConfig {
        degraded_max_age: DEGRADED,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        heartbeat_interval: Duration::from_millis(200),
        // Generous: a test machine under load must not miss a deadline.
        liveness_timeout: Duration::from_secs(2),
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

/// Polls `cond` every 10 ms for up to 20 s.
async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
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

/// A bus message in the documented wire format, MAC'd with `key`.
fn sealed(key: &[u8], channel: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(b"jwt-revoke bus v1\0");
    mac.update(channel.as_bytes());
    mac.update(b"\0");
    mac.update(body.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("jr1.{tag}.{body}")
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
    // Genuine messages only: heartbeats of two subscribers included.
    for h in [&h1, &h2] {
        assert_eq!(h.unauthenticated_messages(), 0);
        assert_eq!(h.malformed_messages(), 0);
    }
}

/// The bus goes silent (frozen server, or a path that drops everything)
/// while the subscription's sockets stay open: the subscriber must notice,
/// limit the cache age, and come back when the bus does.
async fn silence<S: CutoffStore + Clone>(
    store: S,
    subscribe: impl Fn(Guard<S>) -> SubscriberHandle,
    go_silent: impl FnOnce(),
    mut reconnect_attempted: impl AsyncFnMut() -> bool,
    speak_again: impl FnOnce(),
) {
    let clock = FakeClock::new(T0);
    let sub = common::unique("silent");
    store.bump_version(&sub).await.unwrap(); // creates the subject
    let two = guard(
        store.clone(),
        &clock,
        None::<jwt_revoke::invalidation::redis::RedisPublisher>,
    );
    let h = subscribe(two.clone());
    connected(&h).await;
    let token = two.issue(&sub, &()).await.unwrap();
    assert!(two.validate::<()>(&token).await.is_ok());

    go_silent();
    // A revocation whose event cannot arrive.
    store.bump_version(&sub).await.unwrap();
    eventually("the subscriber notices the silence", async || {
        !h.is_connected()
    })
    .await;
    assert!(h.disconnects() >= 1);
    // Cutoffs younger than the degraded age are still used…
    assert!(two.validate::<()>(&token).await.is_ok());
    // …older ones are reloaded: the revocation is seen.
    clock.advance(DEGRADED + Duration::from_millis(1));
    assert!(revoked(&two, &token).await);

    // A reconnection attempted into the silence must not hang the
    // subscriber for good: each step has a deadline.
    eventually("a reconnection is attempted while silent", async || {
        reconnect_attempted().await
    })
    .await;
    speak_again();
    connected(&h).await;
    let fresh = two.issue(&sub, &()).await.unwrap();
    assert!(two.validate::<()>(&fresh).await.is_ok());
}

#[test]
fn bus_keys_are_at_least_32_bytes_and_never_printed() {
    assert_eq!(
        BusKey::from_bytes([7u8; 31]).unwrap_err(),
        BusConfigError::KeyTooShort { len: 31 }
    );
    let key = BusKey::from_bytes(b"0123456789abcdef0123456789abcdef").unwrap();
    let printed = format!("{key:?}");
    assert!(!printed.contains("0123"), "{printed}");
    assert!(printed.contains("redacted"));
}

mod redis_bus {
    use super::*;
    use jwt_revoke::RedisStore;
    use jwt_revoke::invalidation::redis::{RedisPublisher, spawn_subscriber};

    use common::redis_server::{OwnRedis as BusServer, free_port};

    async fn publisher_when_up(client: &redis::Client, channel: &str) -> RedisPublisher {
        for _ in 0..200 {
            if let Ok(p) = RedisPublisher::connect(client, channel, bus_key()).await {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("bus server did not start");
    }

    async fn publish_raw(client: &redis::Client, channel: &str, payload: &str) {
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: i64 = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bump_reaches_the_other_instance_over_redis() {
        let url = common::server_url("REDIS_URL");
        let client = redis::Client::open(url.as_str()).unwrap();
        let channel = common::unique("jwt-revoke-test");
        let store = RedisStore::connect(&url).await.unwrap();
        let publisher = RedisPublisher::connect(&client, channel.clone(), bus_key())
            .await
            .unwrap();
        propagation(store, publisher, |g| {
            spawn_subscriber(g, client.clone(), channel.clone(), bus_key(), config()).unwrap()
        })
        .await;
    }

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

        let publisher = publisher_when_up(&client, "bus").await;
        let one = guard(store.clone(), &clock, Some(publisher));
        let two = guard(store.clone(), &clock, None::<RedisPublisher>);
        let handle =
            spawn_subscriber(two.clone(), client.clone(), "bus", bus_key(), config()).unwrap();
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
        one.bump_version(&sub).await.unwrap();
        eventually("events flow again", async || revoked(&two, &fresh).await).await;
        assert_eq!(one.publish_errors(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_frozen_redis_is_noticed_by_the_heartbeat_deadline() {
        let port = free_port();
        let server = BusServer::start(port);
        let client = redis::Client::open(server.url()).unwrap();
        publisher_when_up(&client, "up").await;
        let store = RedisStore::connect(&common::server_url("REDIS_URL"))
            .await
            .unwrap();
        silence(
            store,
            |g| spawn_subscriber(g, client.clone(), "frozen", bus_key(), config()).unwrap(),
            || server.pause(),
            async || true,
            || server.resume(),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_redis_path_that_drops_everything_is_noticed() {
        let url = common::server_url("REDIS_URL");
        let proxy = common::proxy::Proxy::start(&common::proxy::target_of(&url)).await;
        let client = redis::Client::open(proxy.url(&url)).unwrap();
        let channel = common::unique("jwt-revoke-blackhole");
        let store = RedisStore::connect(&url).await.unwrap();
        silence(
            store,
            |g| spawn_subscriber(g, client.clone(), channel.clone(), bus_key(), config()).unwrap(),
            || proxy.set_silent(true),
            async || proxy.accepted_while_silent() > 0,
            || proxy.set_silent(false),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replayed_heartbeats_do_not_keep_a_subscription_alive() {
        let port = free_port();
        let server = BusServer::start(port);
        let admin = redis::Client::open(server.url()).unwrap();
        publisher_when_up(&admin, "up").await;
        let mut conn = admin.get_multiplexed_async_connection().await.unwrap();
        let user = "app";
        let _: () = redis::cmd("ACL")
            .arg(&["SETUSER", user, "on", "nopass", "+@all", "~*", "&*"][..])
            .query_async(&mut conn)
            .await
            .unwrap();
        let app = redis::Client::open(format!("redis://{user}:pw@127.0.0.1:{port}/")).unwrap();
        let channel = "replayed";
        // An eavesdropper records the subscriber's heartbeats.
        let mut tap = admin.get_async_pubsub().await.unwrap();
        tap.subscribe(channel).await.unwrap();
        let mut tapped = tap.into_on_message();

        let g = guard(
            RedisStore::connect(&common::server_url("REDIS_URL"))
                .await
                .unwrap(),
            &FakeClock::new(T0),
            None::<RedisPublisher>,
        );
        let h = spawn_subscriber(g, app, channel, bus_key(), config()).unwrap();
        connected(&h).await;
        let mut recorded = Vec::new();
        while recorded.len() < 3 {
            let msg = futures::StreamExt::next(&mut tapped).await.unwrap();
            recorded.push(msg.get_payload::<String>().unwrap());
        }
        assert!(recorded.iter().all(|m| m.contains("heartbeat")));

        // The subscriber can no longer publish its heartbeats; the
        // eavesdropper replays the recorded ones.
        let _: () = redis::cmd("ACL")
            .arg(&["SETUSER", user, "-publish"][..])
            .query_async(&mut conn)
            .await
            .unwrap();
        eventually("the subscriber notices despite the replays", async || {
            for m in &recorded {
                publish_raw(&admin, channel, m).await;
            }
            !h.is_connected()
        })
        .await;
        assert_eq!(h.unauthenticated_messages(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_first_revocation_after_a_bus_restart_is_delivered() {
        let port = free_port();
        let server = BusServer::start(port);
        let client = redis::Client::open(server.url()).unwrap();
        let store = RedisStore::connect(&common::server_url("REDIS_URL"))
            .await
            .unwrap();
        let clock = FakeClock::new(T0);
        let sub = common::unique("restart");
        store.insert(&sub, Cutoff::default()).await.unwrap();
        let one = guard(
            store.clone(),
            &clock,
            Some(publisher_when_up(&client, "restart").await),
        );
        let two = guard(store.clone(), &clock, None::<RedisPublisher>);
        let h =
            spawn_subscriber(two.clone(), client.clone(), "restart", bus_key(), config()).unwrap();
        connected(&h).await;
        let token = one.issue(&sub, &()).await.unwrap();
        assert!(two.validate::<()>(&token).await.is_ok());
        one.bump_version(&sub).await.unwrap();
        eventually("the first revocation arrives", async || {
            revoked(&two, &token).await
        })
        .await;

        // Restart the bus; the publisher's connection is now stale.
        drop(server);
        let _server = BusServer::start(port);
        eventually("the subscriber is back", async || {
            h.disconnects() >= 1 && h.is_connected()
        })
        .await;
        let fresh = one.issue(&sub, &()).await.unwrap();
        assert!(two.validate::<()>(&fresh).await.is_ok());
        one.bump_version(&sub).await.unwrap();
        // The cache TTL is 300 s and the clock does not move: only the bus
        // can bring this revocation.
        eventually("the revocation after the restart arrives", async || {
            revoked(&two, &fresh).await
        })
        .await;
        assert_eq!(one.publish_errors(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unauthenticated_and_malformed_messages_are_counted_and_dropped() {
        let url = common::server_url("REDIS_URL");
        let client = redis::Client::open(url.as_str()).unwrap();
        let channel = common::unique("jwt-revoke-junk");
        let store = RedisStore::connect(&url).await.unwrap();
        let sub = common::unique("junk");
        store.insert(&sub, Cutoff::default()).await.unwrap();
        let clock = FakeClock::new(T0);
        let g = guard(store, &clock, None::<RedisPublisher>);
        let h = spawn_subscriber(
            g.clone(),
            client.clone(),
            channel.clone(),
            bus_key(),
            config(),
        )
        .unwrap();
        connected(&h).await;
        let token = g.issue(&sub, &()).await.unwrap();
        assert!(g.validate::<()>(&token).await.is_ok());
        let cached = g.cached_subjects();

        let raise = format!(
            r#"{{"kind":"subject","sub":"{sub}","cutoff":{{"version":99,"not_before":0}}}}"#
        );
        let other_key = b"another-key-another-key-another-key";
        let genuine = sealed(BUS_KEY, &channel, &raise);
        let tampered = genuine.replace("99", "98");
        let unauthenticated = [
            "not json".to_owned(),
            raise.clone(), // the old, unauthenticated format
            format!("jr1.{}.{raise}", "A".repeat(43)), // a made-up MAC
            sealed(other_key, &channel, &raise), // another key
            sealed(BUS_KEY, "another-channel", &raise), // captured on another channel
            tampered,
            genuine.replace("jr1.", "jr2."), // an unknown format version
        ];
        let malformed = [
            sealed(BUS_KEY, &channel, "not json"),
            sealed(BUS_KEY, &channel, r#"{"kind":"subject"}"#),
            sealed(BUS_KEY, &channel, r#"{"kind":"global","not_before":"x"}"#),
            // Over 8 KiB: dropped before the MAC is even checked.
            sealed(
                BUS_KEY,
                &channel,
                &format!(r#"{{"kind":"global","pad":"{}"}}"#, "x".repeat(9000)),
            ),
        ];
        for m in unauthenticated.iter().chain(&malformed) {
            publish_raw(&client, &channel, m).await;
        }
        eventually("every bad message counted", async || {
            h.unauthenticated_messages() == unauthenticated.len() as u64
                && h.malformed_messages() == malformed.len() as u64
        })
        .await;
        assert_eq!(h.events_received(), 0);
        assert!(g.validate::<()>(&token).await.is_ok());
        assert_eq!(g.cached_subjects(), cached);
        assert!(h.is_connected());

        // The genuine message is accepted (and is a floor: raises the entry).
        publish_raw(&client, &channel, &genuine).await;
        eventually("the genuine event arrives", async || {
            h.events_received() == 1
        })
        .await;
        assert_eq!(h.unauthenticated_messages(), unauthenticated.len() as u64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forged_publishes_on_redis_change_nothing() {
        let url = common::server_url("REDIS_URL");
        let client = redis::Client::open(url.as_str()).unwrap();
        let channel = common::unique("jwt-revoke-forged");
        let store = RedisStore::connect(&url).await.unwrap();
        let clock = FakeClock::new(T0);
        let (valid_sub, revoked_sub) = (common::unique("victim"), common::unique("revoked"));
        store.insert(&valid_sub, Cutoff::default()).await.unwrap();
        store.insert(&revoked_sub, Cutoff::default()).await.unwrap();
        let g = guard(store, &clock, None::<RedisPublisher>);
        let h = spawn_subscriber(
            g.clone(),
            client.clone(),
            channel.clone(),
            bus_key(),
            config(),
        )
        .unwrap();
        connected(&h).await;
        let valid = g.issue(&valid_sub, &()).await.unwrap();
        let dead = g.issue(&revoked_sub, &()).await.unwrap();
        g.bump_version(&revoked_sub).await.unwrap();
        assert!(g.validate::<()>(&valid).await.is_ok());
        assert!(revoked(&g, &dead).await);
        let cached = g.cached_subjects();

        let forged = [
            // Would revoke a valid token (denial of service)…
            format!(
                r#"{{"kind":"subject","sub":"{valid_sub}","cutoff":{{"version":1000,"not_before":0}}}}"#
            ),
            format!(r#"{{"kind":"global","not_before":{}}}"#, T0 + 10),
            // …or plant an entry for a subject not cached.
            format!(
                r#"{{"kind":"subject","sub":"{}","cutoff":{{"version":0,"not_before":0}}}}"#,
                common::unique("planted")
            ),
        ];
        for f in &forged {
            publish_raw(&client, &channel, f).await;
            // In the wire format, with a MAC under the forger's own key.
            publish_raw(&client, &channel, &sealed(FORGER_KEY, &channel, f)).await;
        }
        eventually("forgeries counted", async || {
            h.unauthenticated_messages() == 2 * forged.len() as u64
        })
        .await;
        assert_eq!(h.events_received(), 0);
        assert!(g.validate::<()>(&valid).await.is_ok());
        assert!(revoked(&g, &dead).await);
        assert_eq!(g.cached_subjects(), cached);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_setups_are_refused() {
        let client = redis::Client::open(common::server_url("REDIS_URL").as_str()).unwrap();
        let g = guard(
            jwt_revoke::MemoryStore::new(),
            &FakeClock::new(T0),
            None::<RedisPublisher>,
        );
        assert!(matches!(
            spawn_subscriber(g.clone(), client.clone(), "", bus_key(), config()),
            Err(BusConfigError::InvalidChannel { .. })
        ));
        let slow_heartbeat = SubscriberConfig {
            heartbeat_interval: Duration::from_secs(3),
            liveness_timeout: Duration::from_secs(3),
            ..SubscriberConfig::default()
        };
        assert!(matches!(
            spawn_subscriber(g, client.clone(), "ok", bus_key(), slow_heartbeat),
            Err(BusConfigError::InvalidConfig { .. })
        ));
        assert!(
            RedisPublisher::connect(&client, "", bus_key())
                .await
                .is_err()
        );
    }
}

mod postgres_bus {
    use super::*;
    use jwt_revoke::PostgresStore;
    use jwt_revoke::invalidation::postgres::{PgPublisher, spawn_subscriber};
    use sqlx::postgres::PgPoolOptions;

    /// A unique channel name of exactly 63 bytes (the PostgreSQL maximum).
    fn channel_63(prefix: &str) -> String {
        let mut c = common::unique(prefix).replace('-', "_");
        c.truncate(63);
        while c.len() < 63 {
            c.push('x');
        }
        c
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bump_reaches_the_other_instance_over_listen_notify() {
        let url = common::server_url("POSTGRES_URL");
        // The longest name PostgreSQL keeps works end to end.
        let channel = channel_63("jwt_revoke_test");
        let store = PostgresStore::connect(&url).await.unwrap();
        let publisher = PgPublisher::new(store.pool().clone(), channel.clone(), bus_key()).unwrap();
        propagation(store, publisher, |g| {
            spawn_subscriber(g, url.clone(), channel.clone(), bus_key(), config()).unwrap()
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn channel_names_postgres_would_truncate_are_refused() {
        let url = common::server_url("POSTGRES_URL");
        let store = PostgresStore::connect(&url).await.unwrap();
        let g = guard(store.clone(), &FakeClock::new(T0), None::<PgPublisher>);
        let long = format!("{}y", channel_63("long"));
        assert_eq!(long.len(), 64);
        for bad in [long.as_str(), "", "nul\0inside"] {
            assert!(matches!(
                PgPublisher::new(store.pool().clone(), bad, bus_key()),
                Err(BusConfigError::InvalidChannel { .. })
            ));
            assert!(matches!(
                spawn_subscriber(g.clone(), url.clone(), bad, bus_key(), config()),
                Err(BusConfigError::InvalidChannel { .. })
            ));
        }
        // Multi-byte characters count in bytes.
        let accents = "é".repeat(32);
        assert_eq!(accents.len(), 64);
        assert!(PgPublisher::new(store.pool().clone(), accents, bus_key()).is_err());
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
            Some(PgPublisher::new(store.pool().clone(), channel.clone(), bus_key()).unwrap()),
        );
        let two = guard(store.clone(), &clock, None::<PgPublisher>);
        let h = spawn_subscriber(
            two.clone(),
            listen_url,
            channel.clone(),
            bus_key(),
            config(),
        )
        .unwrap();
        connected(&h).await;
        let token = one.issue(&sub, &()).await.unwrap();
        assert!(two.validate::<()>(&token).await.is_ok());

        // Kill the subscriber's backends (listener and heartbeats), as a
        // failover or network cut would.
        let killed: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(&app_name)
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert!(!killed.is_empty());
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_postgres_path_that_drops_everything_is_noticed() {
        let url = common::server_url("POSTGRES_URL");
        let proxy = common::proxy::Proxy::start(&common::proxy::target_of(&url)).await;
        let bus_url = proxy.url(&url);
        let channel = common::unique("jwt_revoke_blackhole").replace('-', "_");
        let store = PostgresStore::connect(&url).await.unwrap();
        silence(
            store,
            |g| spawn_subscriber(g, bus_url.clone(), channel.clone(), bus_key(), config()).unwrap(),
            || proxy.set_silent(true),
            async || proxy.accepted_while_silent() > 0,
            || proxy.set_silent(false),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_publisher_pool_with_dead_connections_still_delivers() {
        let url = common::server_url("POSTGRES_URL");
        let proxy = common::proxy::Proxy::start(&common::proxy::target_of(&url)).await;
        // A pool that does not test connections before use (a common
        // latency setting) hands out connections a restart killed.
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .test_before_acquire(false)
            .connect(&proxy.url(&url))
            .await
            .unwrap();
        let channel = common::unique("jwt_revoke_cut").replace('-', "_");
        let store = PostgresStore::connect(&url).await.unwrap();
        let clock = FakeClock::new(T0);
        let sub = common::unique("pg-cut");
        store.insert(&sub, Cutoff::default()).await.unwrap();
        let one = guard(
            store.clone(),
            &clock,
            Some(PgPublisher::new(pool, channel.clone(), bus_key()).unwrap()),
        );
        let two = guard(store.clone(), &clock, None::<PgPublisher>);
        let h = spawn_subscriber(two.clone(), url.clone(), channel, bus_key(), config()).unwrap();
        connected(&h).await;
        let token = one.issue(&sub, &()).await.unwrap();
        assert!(two.validate::<()>(&token).await.is_ok());
        one.bump_version(&sub).await.unwrap();
        eventually("the first revocation arrives", async || {
            revoked(&two, &token).await
        })
        .await;

        // Every connection of the publisher's pool dies.
        proxy.cut();
        let fresh = one.issue(&sub, &()).await.unwrap();
        assert!(two.validate::<()>(&fresh).await.is_ok());
        one.bump_version(&sub).await.unwrap();
        eventually("the revocation after the cut arrives", async || {
            revoked(&two, &fresh).await
        })
        .await;
        assert_eq!(one.publish_errors(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forged_notifies_from_an_unprivileged_role_change_nothing() {
        let url = common::server_url("POSTGRES_URL");
        let store = PostgresStore::connect(&url).await.unwrap();
        let role = common::unique("forger").replace('-', "_");
        sqlx::query(&format!("CREATE ROLE \"{role}\" LOGIN"))
            .execute(store.pool())
            .await
            .unwrap();
        let forger_url = {
            let (scheme, rest) = url.split_once("://").unwrap();
            let host = rest.split_once('@').map(|(_, h)| h).unwrap_or(rest);
            format!("{scheme}://{role}@{host}")
        };
        let mut forger = <sqlx::PgConnection as sqlx::Connection>::connect(&forger_url)
            .await
            .unwrap();
        // Unprivileged indeed: it cannot read the cutoffs table.
        assert!(
            sqlx::query("SELECT * FROM jwt_revoke_cutoffs")
                .execute(&mut forger)
                .await
                .is_err()
        );

        let channel = common::unique("jwt_revoke_forged").replace('-', "_");
        let clock = FakeClock::new(T0);
        let (valid_sub, revoked_sub) = (common::unique("victim"), common::unique("revoked"));
        store.insert(&valid_sub, Cutoff::default()).await.unwrap();
        store.insert(&revoked_sub, Cutoff::default()).await.unwrap();
        let g = guard(store.clone(), &clock, None::<PgPublisher>);
        let h =
            spawn_subscriber(g.clone(), url.clone(), channel.clone(), bus_key(), config()).unwrap();
        connected(&h).await;
        let valid = g.issue(&valid_sub, &()).await.unwrap();
        let dead = g.issue(&revoked_sub, &()).await.unwrap();
        g.bump_version(&revoked_sub).await.unwrap();
        assert!(g.validate::<()>(&valid).await.is_ok());
        assert!(revoked(&g, &dead).await);
        let cached = g.cached_subjects();

        let forged = [
            format!(
                r#"{{"kind":"subject","sub":"{valid_sub}","cutoff":{{"version":1000,"not_before":0}}}}"#
            ),
            format!(r#"{{"kind":"global","not_before":{}}}"#, T0 + 10),
            format!(
                r#"{{"kind":"subject","sub":"{}","cutoff":{{"version":0,"not_before":0}}}}"#,
                common::unique("planted")
            ),
        ];
        for f in &forged {
            for payload in [f.clone(), sealed(FORGER_KEY, &channel, f)] {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(&channel)
                    .bind(payload)
                    .execute(&mut forger)
                    .await
                    .unwrap();
            }
        }
        eventually("forgeries counted", async || {
            h.unauthenticated_messages() == 2 * forged.len() as u64
        })
        .await;
        assert_eq!(h.events_received(), 0);
        assert!(g.validate::<()>(&valid).await.is_ok());
        assert!(revoked(&g, &dead).await);
        assert_eq!(g.cached_subjects(), cached);

        drop(forger);
        drop(h);
        let _ = sqlx::query(&format!("DROP ROLE IF EXISTS \"{role}\""))
            .execute(store.pool())
            .await;
    }
}
