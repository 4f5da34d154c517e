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
        max_event_age: Duration::from_secs(30),
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
    mac.update(b"jwt-revoke bus v2\0");
    mac.update(channel.as_bytes());
    mac.update(b"\0");
    mac.update(body.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("jr2.{tag}.{body}")
}

/// The wall clock in Unix milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A JSON object body with the send time `at_ms` added in front.
fn sent_at(at_ms: i64, body: &str) -> String {
    format!("{{\"at\":{at_ms},{}", &body[1..])
}

/// A subject whose event after one `bump_version` (cutoff version 1) is a
/// sealed message of exactly `total` bytes: `jr2.`, the 43-character MAC,
/// `.`, and the JSON body, which starts with the send time (`"at":`, 13
/// digits of Unix milliseconds, `,`).
fn subject_for_message_of(total: usize) -> String {
    let probe = serde_json::to_string(&jwt_revoke::CutoffEvent::Subject {
        sub: String::new(),
        cutoff: Cutoff::new(1, 0),
    })
    .unwrap();
    "s".repeat(total - 48 - 19 - probe.len())
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

/// A session revoked on one instance is rejected by the other within
/// milliseconds; the subject's other session keeps working there.
async fn session_propagation(
    publisher: impl Publisher + Clone,
    subscribe: impl Fn(Guard<std::sync::Arc<jwt_revoke::MemoryStore>>) -> SubscriberHandle,
) {
    use jwt_revoke::{RefreshKey, SessionConfig};
    let clock = FakeClock::new(T0);
    let store = std::sync::Arc::new(jwt_revoke::MemoryStore::with_clock(
        jwt_revoke::FakeClock::new(0),
    ));
    store.insert("alice", Cutoff::default());
    let with_sessions = |p: Option<_>| {
        let b = Guard::builder(
            Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(),
            store.clone(),
        )
        .clock(clock.clone())
        .cache_ttl(Duration::from_secs(300))
        .sessions(SessionConfig::new(RefreshKey::new(common::SECRET).unwrap()));
        match p {
            Some(p) => b.publisher(p).build().unwrap(),
            None => b.build().unwrap(),
        }
    };
    let one = with_sessions(Some(publisher.clone()));
    let two = with_sessions(Some(publisher));
    let h2 = subscribe(two.clone());
    connected(&h2).await;
    let phone = one.login("alice", &()).await.unwrap();
    let laptop = one.login("alice", &()).await.unwrap();
    two.validate::<()>(&phone.access_token).await.unwrap();
    two.validate::<()>(&laptop.access_token).await.unwrap();

    assert!(
        one.revoke_session("alice", &phone.session_id)
            .await
            .unwrap()
    );
    eventually("instance two rejects the logged-out session", async || {
        matches!(
            two.validate::<()>(&phone.access_token).await,
            Err(jwt_revoke::Error::SessionRevoked)
        )
    })
    .await;
    two.validate::<()>(&laptop.access_token)
        .await
        .expect("the other session is untouched");

    // Reuse detected on one instance ends the session on the other too.
    let next = one.refresh(&laptop.refresh_token, &()).await.unwrap();
    two.validate::<()>(&next.access_token).await.unwrap();
    assert!(one.refresh(&laptop.refresh_token, &()).await.is_err());
    eventually("instance two rejects the reused session", async || {
        two.validate::<()>(&next.access_token).await.is_err()
    })
    .await;
    assert_eq!(one.publish_errors(), 0);
    assert_eq!(h2.unauthenticated_messages(), 0);
    assert_eq!(h2.malformed_messages(), 0);
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
    async fn a_session_revocation_reaches_the_other_instance_over_redis() {
        let url = common::server_url("REDIS_URL");
        let client = redis::Client::open(url.as_str()).unwrap();
        let channel = common::unique("jwt-revoke-test");
        let publisher = RedisPublisher::connect(&client, channel.clone(), bus_key())
            .await
            .unwrap();
        session_propagation(publisher, |g| {
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
        let raise = sent_at(now_ms(), &raise);
        let genuine = sealed(BUS_KEY, &channel, &raise);
        let tampered = genuine.replace("99", "98");
        let unauthenticated = [
            "not json".to_owned(),
            raise.clone(), // the old, unauthenticated format
            format!("jr2.{}.{raise}", "A".repeat(43)), // a made-up MAC
            sealed(other_key, &channel, &raise), // another key
            sealed(BUS_KEY, "another-channel", &raise), // captured on another channel
            tampered,
            genuine.replace("jr2.", "jr3."), // an unknown format version
            genuine.replace("jr2.", "jr1."), // the previous one (no send time)
        ];
        let malformed = [
            sealed(BUS_KEY, &channel, "not json"),
            sealed(
                BUS_KEY,
                &channel,
                &sent_at(now_ms(), r#"{"kind":"subject"}"#),
            ),
            sealed(
                BUS_KEY,
                &channel,
                &sent_at(now_ms(), r#"{"kind":"global","not_before":"x"}"#),
            ),
            // A valid event without its send time.
            sealed(BUS_KEY, &channel, r#"{"kind":"global","not_before":0}"#),
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
            jwt_revoke::MemoryStore::with_clock(jwt_revoke::FakeClock::new(0)),
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
    async fn a_session_revocation_reaches_the_other_instance_over_listen_notify() {
        let url = common::server_url("POSTGRES_URL");
        let channel = channel_63("jwt_revoke_sess");
        let pool = PgPoolOptions::new().connect(&url).await.unwrap();
        let publisher = PgPublisher::new(pool, channel.clone(), bus_key()).unwrap();
        session_propagation(publisher, |g| {
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

    /// PostgreSQL refuses a `NOTIFY` payload of 8000 bytes or more, under the
    /// bus's own 8 KiB limit. At the edge, through the real publisher and
    /// subscriber: a message of 7999 bytes travels and is applied; from 8000
    /// bytes up to the largest message the bus seals, the publisher refuses
    /// the event before sending it, with an error that names the limit,
    /// counted in `publish_errors`: never lost without a trace.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_event_over_the_notify_limit_is_refused_by_the_publisher_and_one_under_travels() {
        use jwt_revoke::invalidation::MAX_MESSAGE_BYTES;
        use jwt_revoke::{CutoffEvent, MemoryStore};
        use std::sync::Arc;

        let url = common::server_url("POSTGRES_URL");
        let channel = common::unique("jwt_revoke_edge").replace('-', "_");
        let clock = FakeClock::new(T0);
        let store = Arc::new(MemoryStore::with_clock(jwt_revoke::FakeClock::new(0)));
        let fits = subject_for_message_of(7999);
        let too_large = [
            subject_for_message_of(8000),
            subject_for_message_of(MAX_MESSAGE_BYTES),
        ];
        for s in std::iter::once(&fits).chain(&too_large) {
            store.insert(s.clone(), Cutoff::default());
        }
        let build = |publisher: Option<PgPublisher>| {
            let b = Guard::builder(
                Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(),
                Arc::clone(&store),
            )
            .clock(clock.clone())
            .cache_ttl(Duration::from_secs(300))
            .max_token_bytes(64 * 1024);
            match publisher {
                Some(p) => b.publisher(p).build().unwrap(),
                None => b.build().unwrap(),
            }
        };
        let pool = PgPoolOptions::new().connect(&url).await.unwrap();
        let publisher = PgPublisher::new(pool, channel.clone(), bus_key()).unwrap();
        let one = build(Some(publisher.clone()));
        let two = build(None);
        let h = spawn_subscriber(two.clone(), url.clone(), channel, bus_key(), config()).unwrap();
        connected(&h).await;
        let t_fits = one.issue(&fits, &()).await.unwrap();
        let t_large = [
            one.issue(&too_large[0], &()).await.unwrap(),
            one.issue(&too_large[1], &()).await.unwrap(),
        ];
        for t in std::iter::once(&t_fits).chain(&t_large) {
            assert!(two.validate::<()>(t).await.is_ok());
        }

        one.bump_version(&fits).await.unwrap();
        eventually("the 7999-byte event is applied", async || {
            revoked(&two, &t_fits).await
        })
        .await;
        assert_eq!((one.publish_errors(), h.events_received()), (0, 1));

        for (n, sub) in too_large.iter().enumerate() {
            // The revocation itself holds; only its event is refused.
            one.bump_version(sub).await.unwrap();
            assert_eq!(one.publish_errors(), n as u64 + 1);
            let err = publisher
                .publish(&CutoffEvent::Subject {
                    sub: sub.clone(),
                    cutoff: Cutoff::new(1, 0),
                })
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("8000"), "the error names the limit: {err}");
        }
        // A later event arrives alone: nothing of the refused ones was sent.
        one.bump_version(&fits).await.unwrap();
        eventually("the next event is applied", async || {
            h.events_received() == 2
        })
        .await;
        assert_eq!(h.malformed_messages(), 0);
        for t in &t_large {
            assert!(
                two.validate::<()>(t).await.is_ok(),
                "the cache TTL bound applies"
            );
        }
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

/// Hostile publishers and edge cases on a real Redis bus: replays of
/// genuine events recorded by an eavesdropper, events sent too long ago or
/// ahead, a publish over Redis's pub/sub buffer limit, the message size
/// limit at its edge, and setups the subscriber refuses.
mod redis_hostile {
    use super::*;
    use std::sync::Arc;

    use futures_util::StreamExt;
    use jwt_revoke::invalidation::redis::{RedisPublisher, spawn_subscriber};
    use jwt_revoke::{MemoryStore, RedisStore};

    fn guard<S: CutoffStore>(
        store: S,
        clock: &FakeClock,
        publisher: Option<RedisPublisher>,
    ) -> Guard<S> {
        super::guard(store, clock, publisher)
    }

    async fn publish_bytes(client: &redis::Client, channel: &str, payload: &[u8]) {
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: i64 = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    /// An eavesdropper on the channel (anyone who may SUBSCRIBE): records
    /// every genuine message that is not a heartbeat.
    struct Recorder {
        rx: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
        _task: tokio::task::JoinHandle<()>,
    }

    impl Recorder {
        async fn start(client: &redis::Client, channel: &str) -> Recorder {
            let mut pubsub = client.get_async_pubsub().await.unwrap();
            pubsub.subscribe(channel).await.unwrap();
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let task = tokio::spawn(async move {
                let mut messages = pubsub.into_on_message();
                while let Some(m) = messages.next().await {
                    let payload = m.get_payload_bytes().to_vec();
                    if !String::from_utf8_lossy(&payload).contains("\"heartbeat\"") {
                        let _ = tx.send(payload);
                    }
                }
            });
            Recorder { rx, _task: task }
        }

        async fn next(&mut self) -> Vec<u8> {
            tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
                .await
                .expect("no genuine event recorded")
                .unwrap()
        }
    }

    async fn redis_store(url: &str) -> (RedisStore, String) {
        let prefix = format!("{}:", common::unique("hostile"));
        let store = RedisStore::builder(url)
            .prefix(prefix.clone())
            .connect()
            .await
            .unwrap();
        (store, prefix)
    }

    /// README, "Repairing a cutoff": a mistaken `revoke_all_before` is lowered in
    /// the store and every instance calls `clear_cache`. An attacker without
    /// the key who recorded the genuine event republishes it: the subscriber
    /// has seen that message (same MAC) within `max_event_age` and refuses it
    /// as a replay; the repair stands.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replayed_global_event_is_refused_and_the_repair_stands() {
        let url = common::server_url("REDIS_URL");
        let client = redis::Client::open(url.as_str()).unwrap();
        let channel = common::unique("hostile-global");
        let (store, prefix) = redis_store(&url).await;
        let clock = FakeClock::new(T0);
        let sub = common::unique("alice");
        store.insert(&sub, Cutoff::default()).await.unwrap();

        let publisher = RedisPublisher::connect(&client, channel.clone(), bus_key())
            .await
            .unwrap();
        let one = guard(store.clone(), &clock, Some(publisher));
        let two = guard(store.clone(), &clock, None);
        let h = spawn_subscriber(
            two.clone(),
            client.clone(),
            channel.clone(),
            bus_key(),
            config(),
        )
        .unwrap();
        connected(&h).await;
        let mut attacker = Recorder::start(&client, &channel).await;

        // The mistake: "everyone logs in again" an hour ahead, instead of now.
        one.revoke_all_before(T0 + 3600).await.unwrap();
        let captured = attacker.next().await;
        eventually("instance two gets the event", async || {
            h.events_received() >= 1
        })
        .await;

        // The documented repair: bring the lock back to now + 1 by hand,
        // clear every cache.
        let mut admin = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}global"))
            .arg((T0 + 1).to_string())
            .query_async(&mut admin)
            .await
            .unwrap();
        one.clear_cache();
        two.clear_cache();
        // (A global cutoff one second ahead: logins wait for it.)
        clock.advance(Duration::from_secs(1));
        let token = two
            .issue(&sub, &())
            .await
            .expect("logins work after the repair");
        assert!(two.validate::<()>(&token).await.is_ok());

        // An attacker without the key replays the genuine message it recorded.
        publish_bytes(&client, &channel, &captured).await;
        eventually("the replay is refused", async || h.replayed_messages() == 1).await;
        assert_eq!(h.events_received(), 1);
        let verdict = two.validate::<()>(&token).await;
        assert!(verdict.is_ok(), "the repair stands: {verdict:?}");
    }

    /// The same for a subject: an account locked by mistake (`revoke_before`
    /// with a future `at`), repaired with `HSET … nb …` and `clear_cache`, stays
    /// open when the recorded event is replayed (refused as seen before).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replayed_subject_event_is_refused_and_the_repaired_account_stays_open() {
        let url = common::server_url("REDIS_URL");
        let client = redis::Client::open(url.as_str()).unwrap();
        let channel = common::unique("hostile-subject");
        let (store, prefix) = redis_store(&url).await;
        let clock = FakeClock::new(T0);
        let sub = common::unique("bob");
        store.insert(&sub, Cutoff::default()).await.unwrap();

        let publisher = RedisPublisher::connect(&client, channel.clone(), bus_key())
            .await
            .unwrap();
        let one = guard(store.clone(), &clock, Some(publisher));
        let two = guard(store.clone(), &clock, None);
        let h = spawn_subscriber(
            two.clone(),
            client.clone(),
            channel.clone(),
            bus_key(),
            config(),
        )
        .unwrap();
        connected(&h).await;
        let mut attacker = Recorder::start(&client, &channel).await;

        // The mistake: bob locked for a day.
        one.revoke_before(&sub, T0 + 86_400).await.unwrap();
        let captured = attacker.next().await;
        eventually("instance two gets the event", async || {
            h.events_received() >= 1
        })
        .await;

        // The documented repair.
        let mut admin = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("HSET")
            .arg(format!("{prefix}sub:{sub}"))
            .arg("nb")
            .arg((T0 + 1).to_string())
            .query_async(&mut admin)
            .await
            .unwrap();
        one.clear_cache();
        two.clear_cache();
        let token = two
            .issue(&sub, &())
            .await
            .expect("bob logs in after the repair");
        assert!(two.validate::<()>(&token).await.is_ok());

        publish_bytes(&client, &channel, &captured).await;
        eventually("the replay is refused", async || h.replayed_messages() == 1).await;
        assert_eq!(h.events_received(), 1);
        let verdict = two.validate::<()>(&token).await;
        assert!(
            verdict.is_ok(),
            "the repaired account stays open: {verdict:?}"
        );
    }

    /// A subscriber remembers a bounded number of events
    /// (`MAX_REMEMBERED_EVENTS`). An attacker who can cause genuine events
    /// (its own logouts, each a publish) sends more than that, then replays a
    /// victim's earlier event, still within `max_event_age`, that the
    /// subscriber had to forget: it is refused all the same, and the repair
    /// stands.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replay_after_a_flood_that_overflows_the_remembered_events_is_refused() {
        use jwt_revoke::invalidation::MAX_REMEMBERED_EVENTS;
        let url = common::server_url("REDIS_URL");
        let client = redis::Client::open(url.as_str()).unwrap();
        let channel = common::unique("hostile-flood");
        let (store, prefix) = redis_store(&url).await;
        let clock = FakeClock::new(T0);
        let sub = common::unique("victim");
        store.insert(&sub, Cutoff::default()).await.unwrap();

        let publisher = RedisPublisher::connect(&client, channel.clone(), bus_key())
            .await
            .unwrap();
        let one = guard(store.clone(), &clock, Some(publisher));
        let two = guard(store.clone(), &clock, None);
        let h = spawn_subscriber(
            two.clone(),
            client.clone(),
            channel.clone(),
            bus_key(),
            config(),
        )
        .unwrap();
        connected(&h).await;
        let mut attacker = Recorder::start(&client, &channel).await;

        // The mistake (the victim locked for a day), then the repair.
        one.revoke_before(&sub, T0 + 86_400).await.unwrap();
        let captured = attacker.next().await;
        eventually("instance two gets the event", async || {
            h.events_received() >= 1
        })
        .await;
        let mut admin = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("HSET")
            .arg(format!("{prefix}sub:{sub}"))
            .arg("nb")
            .arg((T0 + 1).to_string())
            .query_async(&mut admin)
            .await
            .unwrap();
        one.clear_cache();
        two.clear_cache();
        let token = two.issue(&sub, &()).await.unwrap();
        assert!(two.validate::<()>(&token).await.is_ok());

        // The flood: genuine events of the attacker's own subject, one more
        // than the subscriber remembers, all sent after the captured one.
        let flood = MAX_REMEMBERED_EVENTS + 1;
        let mut pipe = redis::pipe();
        for n in 0..flood {
            let body = format!(
                r#"{{"kind":"subject","sub":"mallory","cutoff":{{"version":{n},"not_before":0}}}}"#
            );
            let m = sealed(BUS_KEY, &channel, &sent_at(now_ms(), &body));
            pipe.cmd("PUBLISH").arg(&channel).arg(m).ignore();
        }
        let _: () = pipe.query_async(&mut admin).await.unwrap();
        eventually("the flood is applied", async || {
            h.events_received() == 1 + flood as u64
        })
        .await;

        publish_bytes(&client, &channel, &captured).await;
        eventually("the replay is handled", async || {
            h.replayed_messages() + h.events_received() > 1 + flood as u64
        })
        .await;
        assert_eq!(
            (h.replayed_messages(), h.events_received()),
            (1, 1 + flood as u64),
            "refused as a replay, not applied"
        );
        let verdict = two.validate::<()>(&token).await;
        assert!(verdict.is_ok(), "the repair stands: {verdict:?}");
    }

    /// A replayed (old, harmless) global event that lands while the global
    /// cutoff is being refreshed is refused as a replay: it does not disturb the
    /// refresh, and the next validation of the just-read subject is a cache hit
    /// that does not wait on the store (which is down by then).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replayed_global_events_leave_cache_hits_off_the_store() {
        let url = common::server_url("REDIS_URL");
        let client = redis::Client::open(url.as_str()).unwrap();
        let channel = common::unique("hostile-hits");
        let clock = FakeClock::new(T0);
        let store = Arc::new(common::counting::Counting::new(MemoryStore::with_clock(
            jwt_revoke::FakeClock::new(0),
        )));
        let sub = common::unique("carol");
        store.inner.insert(sub.clone(), Cutoff::default());

        let publisher = RedisPublisher::connect(&client, channel.clone(), bus_key())
            .await
            .unwrap();
        let one = guard(Arc::clone(&store), &clock, Some(publisher));
        let two = guard(Arc::clone(&store), &clock, None);
        let h = spawn_subscriber(
            two.clone(),
            client.clone(),
            channel.clone(),
            bus_key(),
            config(),
        )
        .unwrap();
        connected(&h).await;
        let mut attacker = Recorder::start(&client, &channel).await;

        // A genuine, long past global revocation: harmless to replay.
        one.revoke_all_before(T0 - 86_400).await.unwrap();
        let captured = attacker.next().await;
        eventually("instance two gets the event", async || {
            h.events_received() >= 1
        })
        .await;

        let token = one.issue(&sub, &()).await.unwrap();
        // Instance two loads the subject and the global cutoff; the global
        // read is slow, and the replay lands during it.
        let gate = store.hold_global_loads();
        let before = store.global_loads.load(std::sync::atomic::Ordering::SeqCst);
        let validating = {
            let two = two.clone();
            let token = token.clone();
            tokio::spawn(async move { two.validate::<()>(&token).await.map(|_| ()) })
        };
        eventually("the global load started", async || {
            store.global_loads.load(std::sync::atomic::Ordering::SeqCst) > before
        })
        .await;
        publish_bytes(&client, &channel, &captured).await;
        eventually("the replay is refused", async || h.replayed_messages() == 1).await;
        assert_eq!(h.events_received(), 1);
        gate.add_permits(1000);
        validating.await.unwrap().expect("the token is valid");
        *store.global_gate.lock().unwrap() = None;

        // Both the subject and the global cutoff were just read: a cache hit.
        let loads = store.global_loads.load(std::sync::atomic::Ordering::SeqCst);
        store.fail(true);
        let verdict = two.validate::<()>(&token).await;
        assert!(verdict.is_ok(), "a cache hit: {verdict:?}");
        assert_eq!(
            store.global_loads.load(std::sync::atomic::Ordering::SeqCst),
            loads,
            "the cache hit did not go to the store"
        );
    }

    /// Authenticated events (sealed with the bus key) whose send time lies
    /// further than `max_event_age` in the past or in the future are refused as
    /// replays, and so is a fresh event received a second time; the first copy
    /// of a fresh one is applied.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_sent_outside_max_event_age_or_seen_before_are_refused_as_replays() {
        let url = common::server_url("REDIS_URL");
        let client = redis::Client::open(url.as_str()).unwrap();
        let channel = common::unique("hostile-age");
        let clock = FakeClock::new(T0);
        let store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
        let sub = common::unique("gina");
        store.insert(sub.clone(), Cutoff::default());
        let two = guard(store, &clock, None);
        let h = spawn_subscriber(
            two.clone(),
            client.clone(),
            channel.clone(),
            bus_key(),
            config(),
        )
        .unwrap();
        connected(&h).await;
        let token = two.issue(&sub, &()).await.unwrap();
        assert!(two.validate::<()>(&token).await.is_ok());

        let raise = format!(
            r#"{{"kind":"subject","sub":"{sub}","cutoff":{{"version":5,"not_before":0}}}}"#
        );
        let minute = 60_000;
        for at in [now_ms() - 2 * minute, now_ms() + 2 * minute] {
            let m = sealed(BUS_KEY, &channel, &sent_at(at, &raise));
            publish_bytes(&client, &channel, m.as_bytes()).await;
        }
        eventually("both refused", async || h.replayed_messages() == 2).await;
        assert_eq!(h.events_received(), 0);
        assert!(two.validate::<()>(&token).await.is_ok());

        let fresh = sealed(BUS_KEY, &channel, &sent_at(now_ms(), &raise));
        publish_bytes(&client, &channel, fresh.as_bytes()).await;
        eventually("the fresh event is applied", async || {
            h.events_received() == 1
        })
        .await;
        assert!(revoked(&two, &token).await);
        publish_bytes(&client, &channel, fresh.as_bytes()).await;
        eventually("its second copy is refused", async || {
            h.replayed_messages() == 3
        })
        .await;
        assert_eq!((h.events_received(), h.unauthenticated_messages()), (1, 0));
    }

    /// A zero (or sub-millisecond) `initial_backoff` would stay zero when
    /// doubled, a reconnection loop without pause; a `max_backoff` below it, or
    /// a `max_event_age` under 1 s, makes no sense either: all are refused at
    /// setup, like the other configuration checks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn backoffs_below_one_ms_or_inverted_and_tiny_event_ages_are_refused_at_setup() {
        let client = redis::Client::open(common::server_url("REDIS_URL").as_str()).unwrap();
        let clock = FakeClock::new(T0);
        let g = guard(
            MemoryStore::with_clock(jwt_revoke::FakeClock::new(0)),
            &clock,
            None,
        );
        let bad = [
            SubscriberConfig {
                initial_backoff: Duration::ZERO,
                ..config()
            },
            SubscriberConfig {
                initial_backoff: Duration::from_micros(999),
                ..config()
            },
            SubscriberConfig {
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_millis(99),
                ..config()
            },
            SubscriberConfig {
                max_event_age: Duration::from_millis(999),
                ..config()
            },
        ];
        for c in bad {
            let what = format!("{c:?}");
            assert!(
                matches!(
                    spawn_subscriber(g.clone(), client.clone(), "cfg", bus_key(), c),
                    Err(BusConfigError::InvalidConfig { .. })
                ),
                "{what}"
            );
        }
        let edge = SubscriberConfig {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            max_event_age: Duration::from_secs(1),
            ..config()
        };
        assert!(spawn_subscriber(g, client, "cfg", bus_key(), edge).is_ok());
    }

    /// README, "Trust model": Redis closes a subscriber whose output buffer
    /// passes `client-output-buffer-limit pubsub` (32 MB by default), so one raw
    /// PUBLISH of a larger message, without the key, disconnects every
    /// subscriber. The library cannot prevent it; it fails safe: the disconnect
    /// is counted, the subscriber reconnects by itself, and a token revoked
    /// before stays rejected throughout. (A 1 MiB message, under Redis's limit,
    /// is dropped and counted as malformed, without a disconnect.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_large_raw_publish_disconnects_subscribers_which_fail_safe_and_reconnect() {
        let url = common::server_url("REDIS_URL");
        let client = redis::Client::open(url.as_str()).unwrap();
        let channel = common::unique("hostile-large");
        let clock = FakeClock::new(T0);
        let store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
        let sub = common::unique("frank");
        store.insert(sub.clone(), Cutoff::default());
        let two = guard(store, &clock, None);
        let h = spawn_subscriber(
            two.clone(),
            client.clone(),
            channel.clone(),
            bus_key(),
            config(),
        )
        .unwrap();
        connected(&h).await;
        let token = two.issue(&sub, &()).await.unwrap();
        two.bump_version(&sub).await.unwrap();
        assert!(revoked(&two, &token).await);

        // Control: a 1 MiB message is oversized, dropped and counted.
        publish_bytes(&client, &channel, &vec![b'x'; 1024 * 1024]).await;
        eventually("the 1 MiB message is counted", async || {
            h.malformed_messages() == 1
        })
        .await;
        assert_eq!(h.disconnects(), 0);

        publish_bytes(&client, &channel, &vec![b'x'; 40 * 1024 * 1024]).await;
        eventually("the subscriber is disconnected", async || {
            assert!(revoked(&two, &token).await, "revoked throughout");
            h.disconnects() == 1
        })
        .await;
        eventually("the subscriber reconnects", async || {
            assert!(revoked(&two, &token).await, "revoked throughout");
            h.is_connected()
        })
        .await;
        assert!(revoked(&two, &token).await);
        assert_eq!(h.malformed_messages(), 1);
    }

    /// The 8 KiB limit at its edge, through the real publisher and subscriber:
    /// an event of exactly `MAX_MESSAGE_BYTES` is sent and applied; one byte
    /// more is refused by the publisher (counted in `publish_errors`) and never
    /// reaches the bus.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_event_of_exactly_max_message_bytes_travels_and_one_byte_more_is_not_sent() {
        use jwt_revoke::invalidation::MAX_MESSAGE_BYTES;
        let url = common::server_url("REDIS_URL");
        let client = redis::Client::open(url.as_str()).unwrap();
        let channel = common::unique("hostile-edge");
        let clock = FakeClock::new(T0);
        let store = Arc::new(MemoryStore::with_clock(jwt_revoke::FakeClock::new(0)));
        let (exact, over) = (
            subject_for_message_of(MAX_MESSAGE_BYTES),
            subject_for_message_of(MAX_MESSAGE_BYTES + 1),
        );
        for s in [&exact, &over] {
            store.insert(s.clone(), Cutoff::default());
        }
        let build = |publisher: Option<RedisPublisher>| {
            let b = Guard::builder(
                Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(),
                Arc::clone(&store),
            )
            .clock(clock.clone())
            .cache_ttl(Duration::from_secs(300))
            .max_token_bytes(64 * 1024);
            match publisher {
                Some(p) => b.publisher(p).build().unwrap(),
                None => b.build().unwrap(),
            }
        };
        let publisher = RedisPublisher::connect(&client, channel.clone(), bus_key())
            .await
            .unwrap();
        let one = build(Some(publisher));
        let two = build(None);
        let h = spawn_subscriber(
            two.clone(),
            client.clone(),
            channel.clone(),
            bus_key(),
            config(),
        )
        .unwrap();
        connected(&h).await;
        let t_exact = one.issue(&exact, &()).await.unwrap();
        let t_over = one.issue(&over, &()).await.unwrap();
        assert!(two.validate::<()>(&t_exact).await.is_ok());
        assert!(two.validate::<()>(&t_over).await.is_ok());

        one.bump_version(&exact).await.unwrap();
        eventually("the 8 KiB event is applied", async || {
            matches!(two.validate::<()>(&t_exact).await, Err(e) if e.code() == "token_revoked")
        })
        .await;
        assert_eq!(one.publish_errors(), 0);
        assert_eq!(h.events_received(), 1);

        one.bump_version(&over).await.unwrap();
        assert_eq!(one.publish_errors(), 1, "8 KiB + 1 is refused when sealing");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!((h.events_received(), h.malformed_messages()), (1, 0));
        assert!(
            two.validate::<()>(&t_over).await.is_ok(),
            "cache TTL bound applies"
        );
    }

    /// README, "Guarantees": "Other instances: bounded … while the bus is
    /// disconnected or silent, within `liveness_timeout + degraded_max_age`";
    /// stale-if-error serves a cutoff for "a bounded window" past its expiry.
    /// While the bus is down the subscriber shortens the age of cached cutoffs
    /// to `degraded_max_age`, but the stale-if-error fallback measures its
    /// window from the full cache TTL: with the bus and the store unreachable
    /// together (one partition, or one Redis for both), an instance keeps
    /// accepting a token revoked elsewhere for the whole TTL plus the window,
    /// not for `liveness_timeout + degraded_max_age` (+ the window).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stale_if_error_respects_the_degraded_age_while_the_bus_is_down() {
        use common::redis_server::{OwnRedis, free_port};
        let port = free_port();
        let server = OwnRedis::start(port);
        let client = redis::Client::open(server.url()).unwrap();
        eventually("bus server up", async || {
            client.get_multiplexed_async_connection().await.is_ok()
        })
        .await;

        let clock = FakeClock::new(T0);
        let store = Arc::new(common::counting::Counting::new(MemoryStore::with_clock(
            jwt_revoke::FakeClock::new(0),
        )));
        let sub = common::unique("dave");
        store.inner.insert(sub.clone(), Cutoff::default());
        let keys = || Keys::hmac(Algorithm::HS256, common::SECRET).unwrap();
        let one = Guard::builder(keys(), Arc::clone(&store))
            .clock(clock.clone())
            .build()
            .unwrap();
        let two = Guard::builder(keys(), Arc::clone(&store))
            .clock(clock.clone())
            .cache_ttl(Duration::from_secs(300))
            .stale_if_error(Duration::from_secs(1))
            .build()
            .unwrap();
        let h = spawn_subscriber(two.clone(), client.clone(), "bus", bus_key(), config()).unwrap();
        connected(&h).await;
        let token = one.issue(&sub, &()).await.unwrap();
        assert!(two.validate::<()>(&token).await.is_ok());

        // The bus dies; a logout happens elsewhere; then the store is
        // unreachable from instance two too.
        drop(server);
        eventually("the subscriber notices", async || !h.is_connected()).await;
        one.bump_version(&sub).await.unwrap();
        store.fail(true);
        // Far beyond liveness_timeout + degraded_max_age + the 1 s window.
        clock.advance(Duration::from_secs(20));
        let verdict = two.validate::<()>(&token).await;
        assert!(
            verdict.is_err(),
            "README Guarantees: with the bus down, another instance's revocation is seen 'within \
             liveness_timeout + degraded_max_age', and stale-if-error only adds 'a bounded window' \
             (1 s here); 20 s after the logout, with the store unreachable, instance two still \
             accepts the revoked token (stale window counted from the 300 s TTL, not the degraded age)"
        );
    }

    /// README, "Liveness": "Once its heartbeats come back, it drops what it
    /// cached before and lifts the limit." It does not drop it: it marks it
    /// stale *now*, which opens a fresh stale-if-error window for cutoffs
    /// loaded before the gap. A logout made elsewhere during a 30 s bus outage
    /// (event lost) is then ignored after the bus comes back if the store
    /// blips: the old cutoff, read before the logout, is served again,
    /// far beyond `liveness_timeout + degraded_max_age` (+ the 1 s window).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_gap_cutoffs_read_before_it_are_not_served_by_stale_if_error() {
        use common::redis_server::{OwnRedis, free_port};
        let port = free_port();
        let server = OwnRedis::start(port);
        let client = redis::Client::open(server.url()).unwrap();
        eventually("bus server up", async || {
            client.get_multiplexed_async_connection().await.is_ok()
        })
        .await;

        let clock = FakeClock::new(T0);
        let store = Arc::new(common::counting::Counting::new(MemoryStore::with_clock(
            jwt_revoke::FakeClock::new(0),
        )));
        let sub = common::unique("erin");
        store.inner.insert(sub.clone(), Cutoff::default());
        let keys = || Keys::hmac(Algorithm::HS256, common::SECRET).unwrap();
        let one = Guard::builder(keys(), Arc::clone(&store))
            .clock(clock.clone())
            .build()
            .unwrap();
        let two = Guard::builder(keys(), Arc::clone(&store))
            .clock(clock.clone())
            .cache_ttl(Duration::from_secs(300))
            .stale_if_error(Duration::from_secs(1))
            .build()
            .unwrap();
        let h = spawn_subscriber(two.clone(), client.clone(), "bus", bus_key(), config()).unwrap();
        connected(&h).await;
        let token = one.issue(&sub, &()).await.unwrap();
        assert!(two.validate::<()>(&token).await.is_ok()); // read at T0

        // The bus dies for 30 s; a logout elsewhere meanwhile (event lost).
        drop(server);
        eventually("the subscriber notices", async || !h.is_connected()).await;
        clock.advance(Duration::from_secs(5));
        one.bump_version(&sub).await.unwrap();
        clock.advance(Duration::from_secs(25));
        let _server = OwnRedis::start(port);
        eventually("the subscriber is back", async || h.is_connected()).await;
        assert!(h.disconnects() >= 1);

        // The store blips right after the bus came back.
        store.fail(true);
        clock.advance(Duration::from_millis(500));
        let verdict = two.validate::<()>(&token).await;
        assert!(
            verdict.is_err(),
            "README Liveness: once heartbeats come back the subscriber 'drops what it cached \
             before'; Guarantees: a revocation reaches the instance within liveness_timeout + \
             degraded_max_age. 25 s after a logout, with the bus back and the store blipping, \
             instance two accepts the logged-out token from a cutoff read before the gap: {verdict:?}"
        );
    }
}
