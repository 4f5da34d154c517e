//! `RedisStore` against a real Redis server (started by
//! `scripts/services.sh`): the conformance suite plus Redis specifics.
#![cfg(feature = "redis")]

mod common;

use std::time::{Duration, Instant};

use jwt_revoke::{Algorithm, Cutoff, CutoffStore, Guard, Keys, RedisStore};

impl common::conformance::TestStore for RedisStore {
    async fn fresh() -> Self {
        // A prefix of its own: the global cutoff is not shared with tests
        // running at the same time.
        RedisStore::builder(common::server_url("REDIS_URL"))
            .prefix(format!("{}:", common::unique("conformance")))
            .connect()
            .await
            .expect("connect to Redis")
    }
    async fn put(&self, sub: &str, cutoff: Cutoff) {
        self.insert(sub, cutoff).await.unwrap();
    }
    async fn lose(&self, sub: &str) -> bool {
        self.remove(sub).await.unwrap()
    }
}

mod conformance {
    crate::store_conformance!(jwt_revoke::RedisStore);
}

impl common::session_conformance::SessionTestStore for RedisStore {}

mod session_conformance {
    crate::session_conformance!(jwt_revoke::RedisStore);
}

#[tokio::test]
async fn a_new_connection_sees_the_same_cutoffs_and_remove_forgets() {
    let url = common::server_url("REDIS_URL");
    let a = RedisStore::connect(&url).await.unwrap();
    let sub = common::unique("redis-conn");
    let bumped = a.bump_version(&sub).await.unwrap();
    let b = RedisStore::connect(&url).await.unwrap();
    assert_eq!(bumped.version, 1);
    assert_eq!(b.load(&sub).await.unwrap(), Some(bumped));
    assert!(b.remove(&sub).await.unwrap());
    assert_eq!(b.load(&sub).await.unwrap(), None);
}

#[tokio::test]
async fn versions_are_exact_up_to_u64_max_and_overflow_is_an_error() {
    let s = RedisStore::connect(&common::server_url("REDIS_URL"))
        .await
        .unwrap();
    let sub = common::unique("redis-max");
    // Above 2^53, where a Lua double would round.
    let big = (1u64 << 60) + 1;
    s.insert(&sub, Cutoff::new(big, 0)).await.unwrap();
    assert_eq!(
        s.insert(&sub, Cutoff::new(big - 1, 0))
            .await
            .unwrap()
            .version,
        big
    );
    assert_eq!(s.bump_version(&sub).await.unwrap().version, big + 1);
    let max = common::unique("redis-i64max");
    s.insert(&max, Cutoff::new(i64::MAX as u64, 4_000_000_000))
        .await
        .unwrap();
    assert!(
        s.bump_version(&max).await.is_err(),
        "HINCRBY overflow is reported"
    );
    assert_eq!(
        s.load(&max).await.unwrap(),
        Some(Cutoff::new(i64::MAX as u64, 4_000_000_000))
    );
}

#[tokio::test]
async fn prefixes_keep_applications_apart() {
    let url = common::server_url("REDIS_URL");
    let a = RedisStore::connect(&url)
        .await
        .unwrap()
        .with_prefix(common::unique("app-a:"));
    let b = RedisStore::connect(&url)
        .await
        .unwrap()
        .with_prefix(common::unique("app-b:"));
    a.bump_version("shared-name").await.unwrap();
    assert_eq!(b.load("shared-name").await.unwrap(), None);
}

use common::redis_server::{OwnRedis, free_port};

async fn connect_retrying(url: &str) -> RedisStore {
    for _ in 0..100 {
        if let Ok(s) = RedisStore::connect(url).await {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("redis at {url} did not come up");
}

#[tokio::test]
async fn an_outage_fails_closed_with_503_and_recovers_without_restart() {
    let port = free_port();
    let server = OwnRedis::start(port);
    let store = connect_retrying(&server.url()).await;
    store.insert("alice", Cutoff::default()).await.unwrap();
    let guard = Guard::builder(Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(), store)
        .build()
        .unwrap();
    let token = guard.issue("alice", &()).await.unwrap();
    assert!(guard.validate::<()>(&token).await.is_ok());

    drop(server); // the server dies
    guard.clear_cache();
    let err = guard.validate::<()>(&token).await.unwrap_err();
    assert_eq!((err.code(), err.status()), ("store_unavailable", 503));

    // It comes back with its append-only file: the guard reconnects by
    // itself and the token is accepted again.
    let server = OwnRedis::start(port);
    let mut recovered = None;
    for _ in 0..100 {
        match guard.validate::<()>(&token).await {
            Err(e) if e.code() == "store_unavailable" => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => {
                recovered = Some(other);
                break;
            }
        }
    }
    assert_eq!(recovered.expect("reconnected").unwrap().sub(), "alice");
    drop(server);
}

/// A plain connection for writing rows as another tool would.
async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Deletes `field` of the hash `key` (`None`, as `HDEL` would) or sets it
/// raw, as another tool would.
async fn damage(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
    field: &str,
    value: Option<&str>,
) {
    match value {
        None => {
            let n: u64 = redis::cmd("HDEL")
                .arg(key)
                .arg(field)
                .query_async(conn)
                .await
                .unwrap();
            assert_eq!(n, 1);
        }
        Some(v) => {
            let () = redis::cmd("HSET")
                .arg(key)
                .arg(field)
                .arg(v)
                .query_async(conn)
                .await
                .unwrap();
        }
    }
}

async fn fields(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<Option<String>> {
    redis::cmd("HMGET")
        .arg(key)
        .arg("v")
        .arg("nb")
        .query_async(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_partial_or_non_canonical_row_fails_closed_and_is_never_overwritten() {
    let url = common::server_url("REDIS_URL");
    let prefix = common::unique("corrupt:");
    let s = RedisStore::builder(url.clone())
        .prefix(prefix.clone())
        .connect()
        .await
        .unwrap();
    let mut conn = raw(&url).await;

    // (field, value): None deletes the field (HDEL), Some sets it raw.
    let mut cases: Vec<(&str, Option<&str>)> = vec![("v", None), ("nb", None)];
    for bad in [
        "007",
        "+1",
        " 1",
        "1 ",
        "",
        "seven",
        "1.5",
        "1e3",
        "0x10",
        "-0",
        "18446744073709551616",
        "99999999999999999999999",
    ] {
        cases.push(("v", Some(bad)));
    }
    for bad in [
        "007",
        "+1",
        " 1",
        "",
        "soon",
        "1.0",
        "-0",
        "-007",
        "9223372036854775808",
        "-9223372036854775809",
    ] {
        cases.push(("nb", Some(bad)));
    }
    cases.push(("v", Some("-1")));

    for (i, (field, value)) in cases.into_iter().enumerate() {
        let sub = format!("row-{i}");
        let key = format!("{prefix}sub:{sub}");
        // A good row first (version 5, not_before 1000), then the damage.
        s.insert(&sub, Cutoff::new(5, 1_000)).await.unwrap();
        damage(&mut conn, &key, field, value).await;
        let damaged = fields(&mut conn, &key).await;
        let what = format!("{field} = {value:?}");

        assert!(s.load(&sub).await.is_err(), "load with {what}");
        assert!(s.bump_version(&sub).await.is_err(), "bump with {what}");
        assert!(
            s.revoke_before(&sub, 2_000).await.is_err(),
            "revoke_before with {what}"
        );
        assert!(
            s.insert(&sub, Cutoff::new(1, 0)).await.is_err(),
            "insert with {what}"
        );
        assert_eq!(
            fields(&mut conn, &key).await,
            damaged,
            "a write went over the row with {what}"
        );
    }

    // Through a guard: a token of a subject whose row lost `v` is answered
    // store_unavailable, never accepted.
    let sub = "guarded";
    s.insert(sub, Cutoff::default()).await.unwrap();
    let guard = Guard::builder(Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(), s)
        .build()
        .unwrap();
    let token = guard.issue(sub, &()).await.unwrap();
    guard.bump_version(sub).await.unwrap();
    let _: u64 = redis::cmd("HDEL")
        .arg(format!("{prefix}sub:{sub}"))
        .arg("v")
        .query_async(&mut conn)
        .await
        .unwrap();
    guard.clear_cache();
    let err = guard.validate::<()>(&token).await.unwrap_err();
    assert_eq!((err.code(), err.status()), ("store_unavailable", 503));
}

#[tokio::test]
async fn a_non_canonical_global_cutoff_fails_closed_and_is_never_overwritten() {
    let url = common::server_url("REDIS_URL");
    let prefix = common::unique("corrupt-global:");
    let s = RedisStore::connect(&url)
        .await
        .unwrap()
        .with_prefix(prefix.clone());
    let mut conn = raw(&url).await;
    let key = format!("{prefix}global");
    for bad in ["007", "+5", " 5", "", "later", "5.0", "9223372036854775808"] {
        let () = redis::cmd("SET")
            .arg(&key)
            .arg(bad)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(s.load_global().await.is_err(), "{bad:?}");
        assert!(s.revoke_all_before(10).await.is_err(), "{bad:?}");
        let now: String = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(now, bad);
    }
}

#[tokio::test]
async fn timestamps_are_exact_over_the_whole_i64_range() {
    let s = RedisStore::connect(&common::server_url("REDIS_URL"))
        .await
        .unwrap();
    let sub = common::unique("redis-nb-exact");
    // Above 2^53, where a Lua double would round.
    let big = (1i64 << 60) + 1;
    assert_eq!(
        s.revoke_before(&sub, big).await.unwrap(),
        Cutoff::new(0, big + 1)
    );
    assert_eq!(
        s.revoke_before(&sub, big - 1).await.unwrap(),
        Cutoff::new(0, big + 1),
        "an earlier `at` one below does not lower it"
    );
    assert_eq!(
        s.insert(&sub, Cutoff::new(0, big)).await.unwrap(),
        Cutoff::new(0, big + 1)
    );
    assert_eq!(
        s.revoke_before(&sub, i64::MAX).await.unwrap(),
        Cutoff::new(0, i64::MAX)
    );
    // Negative timestamps compare as numbers, not strings.
    // (A record is created after now, so the negative one is written by
    // hand, as another tool could.)
    let neg = common::unique("redis-nb-neg");
    let _: () = redis::cmd("HSET")
        .arg(format!("jwt-revoke:sub:{neg}"))
        .arg(&["v", "0", "nb", "-99"])
        .query_async(
            &mut redis::Client::open(common::server_url("REDIS_URL").as_str())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(s.revoke_before(&neg, -5).await.unwrap(), Cutoff::new(0, -4));
    assert_eq!(
        s.revoke_before(&neg, -1_000).await.unwrap(),
        Cutoff::new(0, -4)
    );
}

/// A store on a server that is gone answers each call with an error, fast:
/// no reconnect backoff on the request path.
#[tokio::test]
async fn calls_fail_fast_while_the_server_is_down() {
    let bound = std::time::Duration::from_secs(3);
    let port = free_port();
    let server = OwnRedis::start(port);
    let store = connect_retrying(&server.url()).await;
    store.insert("alice", Cutoff::default()).await.unwrap();
    drop(server);
    for i in 0..4 {
        let res = tokio::time::timeout(bound, store.load("alice")).await;
        assert!(
            matches!(res, Ok(Err(_))),
            "load #{i} during the outage did not fail within the bound: {res:?}"
        );
        let res = tokio::time::timeout(bound, store.bump_version("alice")).await;
        assert!(matches!(res, Ok(Err(_))), "bump #{i}: {res:?}");
    }
    // Connecting to a server that is down fails fast too.
    let res = tokio::time::timeout(
        bound,
        RedisStore::connect(&format!("redis://127.0.0.1:{port}/")),
    )
    .await;
    assert!(
        matches!(res, Ok(Err(_))),
        "connect: {:?}",
        res.map(|r| r.map(|_| ()))
    );
}

#[test]
fn the_builder_documents_fail_fast_defaults() {
    let b = RedisStore::builder("redis://127.0.0.1:1/");
    let config = b.manager_config();
    assert_eq!(
        config.number_of_retries(),
        jwt_revoke::stores::redis::RedisStoreBuilder::DEFAULT_NUMBER_OF_RETRIES
    );
    assert!(config.connection_timeout().is_some());
    assert!(config.response_timeout().is_some());
    let b = b
        .number_of_retries(0)
        .connection_timeout(std::time::Duration::from_millis(250))
        .response_timeout(std::time::Duration::from_millis(750))
        .retry_delay(std::time::Duration::from_millis(20))
        .prefix("app:");
    let config = b.manager_config();
    assert_eq!(config.number_of_retries(), 0);
    assert_eq!(
        config.connection_timeout(),
        Some(std::time::Duration::from_millis(250))
    );
    assert_eq!(
        config.response_timeout(),
        Some(std::time::Duration::from_millis(750))
    );
    assert_eq!(config.min_delay(), std::time::Duration::from_millis(20));
}

/// README, "Stores", *Outages*: `RedisStore::connect` fails fast, "500 ms to
/// connect, 1 s for a reply". A frozen server (SIGSTOP: the kernel still
/// accepts connections, nothing answers) is the case a TCP refusal does not
/// cover: calls on a connected store and a new `connect` must both give up
/// within a few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_fails_calls_and_connect_fast() {
    let port = free_port();
    let server = OwnRedis::start(port);
    let mut store = None;
    for _ in 0..200 {
        if let Ok(s) = RedisStore::connect(&server.url()).await {
            store = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let store = store.expect("redis up");
    store.insert("alice", Cutoff::default()).await.unwrap();
    server.pause();
    let bound = Duration::from_secs(3);
    for i in 0..3 {
        let started = Instant::now();
        let res = tokio::time::timeout(bound, store.load("alice")).await;
        assert!(
            matches!(res, Ok(Err(_))),
            "README Stores: '1 s for a reply'; load #{i} on a frozen Redis: {res:?} after {:?}",
            started.elapsed()
        );
        let res = tokio::time::timeout(bound, store.bump_version("alice")).await;
        assert!(
            matches!(res, Ok(Err(_))),
            "README Stores: '1 s for a reply'; bump #{i} on a frozen Redis: {res:?}"
        );
    }
    let started = Instant::now();
    let res = tokio::time::timeout(bound, RedisStore::connect(&server.url())).await;
    let elapsed = started.elapsed();
    server.resume();
    assert!(
        matches!(res, Ok(Err(_))),
        "README Stores: RedisStore::connect fails fast ('500 ms to connect, 1 s for a reply'); \
         against a frozen Redis it gave {:?} after {elapsed:?}",
        res.map(|r| r.map(|_| ()))
    );
}

async fn session_fields(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> Vec<Option<String>> {
    redis::cmd("HMGET")
        .arg(key)
        .arg(&["sub", "g", "v", "c", "u", "e", "r"])
        .query_async(conn)
        .await
        .unwrap()
}

fn redis_session(sub: &str) -> jwt_revoke::Session {
    jwt_revoke::Session {
        id: common::session_id(),
        sub: sub.to_owned(),
        generation: 4,
        version: 2,
        created_at: 1_000,
        last_used_at: 1_000,
        expires_at: 5_000,
        revoked_at: None,
        not_before_seen: 0,
    }
}

#[tokio::test]
async fn a_partial_or_non_canonical_session_fails_closed_and_is_never_overwritten() {
    use jwt_revoke::{Rotate, SessionStore};
    let url = common::server_url("REDIS_URL");
    let prefix = common::unique("corrupt-session:");
    let s = RedisStore::connect(&url)
        .await
        .unwrap()
        .with_prefix(prefix.clone());
    let mut conn = raw(&url).await;
    let mut cases: Vec<(&str, Option<&str>)> = ["g", "v", "c", "u", "e", "r", "sub"]
        .into_iter()
        .map(|f| (f, None))
        .collect();
    for bad in [
        "007",
        "+1",
        " 1",
        "",
        "four",
        "4.0",
        "-0",
        "-1",
        "18446744073709551616",
    ] {
        cases.push(("g", Some(bad)));
        cases.push(("v", Some(bad)));
    }
    for bad in ["007", "+1", " 1", "", "soon", "-0", "9223372036854775808"] {
        cases.push(("e", Some(bad)));
        if !bad.is_empty() {
            cases.push(("r", Some(bad)));
        }
    }
    for (field, value) in cases {
        let sub = common::unique("sess");
        let session = redis_session(&sub);
        s.create_session(&session).await.unwrap();
        let key = format!("{prefix}session:{}", session.id);
        damage(&mut conn, &key, field, value).await;
        let damaged = session_fields(&mut conn, &key).await;
        let what = format!("{field} = {value:?}");
        let rotate = Rotate {
            generation: 4,
            now: 2_000,
            expires_at: 9_000,
            grace: None,
        };
        assert!(
            s.load_session(&sub, &session.id).await.is_err(),
            "load with {what}"
        );
        assert!(
            s.list_sessions(&sub, 2_000).await.is_err(),
            "list with {what}"
        );
        assert!(
            s.rotate_refresh(&sub, &session.id, rotate).await.is_err(),
            "rotate with {what}"
        );
        assert!(
            s.revoke_session(&sub, &session.id, 2_000).await.is_err(),
            "revoke with {what}"
        );
        assert_eq!(
            session_fields(&mut conn, &key).await,
            damaged,
            "a write went over the session with {what}"
        );
    }
}

#[tokio::test]
async fn session_keys_stay_under_the_prefix_and_purge_cleans_the_sets() {
    use jwt_revoke::SessionStore;
    let url = common::server_url("REDIS_URL");
    let prefix = common::unique("sessions-app:");
    let s = RedisStore::connect(&url)
        .await
        .unwrap()
        .with_prefix(prefix.clone());
    let other = RedisStore::connect(&url)
        .await
        .unwrap()
        .with_prefix(common::unique("sessions-other:"));
    let mut conn = raw(&url).await;
    let sub = "shared-name";
    let gone = redis_session(sub);
    let kept = jwt_revoke::Session {
        expires_at: 8_000,
        ..redis_session(sub)
    };
    s.create_session(&gone).await.unwrap();
    s.create_session(&kept).await.unwrap();
    assert_eq!(other.load_session(sub, &gone.id).await.unwrap(), None);
    assert_eq!(other.list_sessions(sub, 0).await.unwrap(), vec![]);

    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.sort();
    let mut expected = vec![
        format!("{prefix}session-expiry"),
        format!("{prefix}session:{}", gone.id),
        format!("{prefix}session:{}", kept.id),
        format!("{prefix}sessions:{sub}"),
    ];
    expected.sort();
    assert_eq!(keys, expected);

    // Purging one: its hash, its id in the subject's set and in the expiry
    // index go; the other stays.
    assert_eq!(s.purge_sessions(6_000).await.unwrap(), 1);
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{prefix}sessions:{sub}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(members, vec![kept.id.clone()]);
    let indexed: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{prefix}session-expiry"))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(indexed, vec![kept.id.clone()]);
    // The other prefix's purge never reaches this one's sessions.
    assert_eq!(other.purge_sessions(i64::MAX).await.unwrap(), 0);
    assert_eq!(s.purge_sessions(i64::MAX).await.unwrap(), 1);
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, Vec::<String>::new());
}

#[tokio::test]
async fn purge_is_exact_beyond_double_precision_and_over_many_batches() {
    use jwt_revoke::SessionStore;
    let url = common::server_url("REDIS_URL");
    let s = RedisStore::connect(&url)
        .await
        .unwrap()
        .with_prefix(common::unique("purge-exact:"));
    // Near i64::MAX, neighbouring timestamps share one double score: the
    // exact comparison decides.
    let top = i64::MAX - 10;
    let at = |expires_at: i64| jwt_revoke::Session {
        expires_at,
        ..redis_session("exact")
    };
    let below = at(top - 1);
    let edge = at(top);
    let above = at(top + 1);
    for sess in [&below, &edge, &above] {
        s.create_session(sess).await.unwrap();
    }
    assert_eq!(s.purge_sessions(top).await.unwrap(), 1);
    assert_eq!(s.load_session("exact", &below.id).await.unwrap(), None);
    assert!(s.load_session("exact", &edge.id).await.unwrap().is_some());
    assert_eq!(s.purge_sessions(top + 1).await.unwrap(), 1);
    assert!(s.load_session("exact", &above.id).await.unwrap().is_some());

    // More sessions than one batch holds.
    let n = jwt_revoke::stores::redis::PURGE_BATCH + 7;
    for _ in 0..n {
        s.create_session(&at(100)).await.unwrap();
    }
    assert_eq!(s.purge_sessions(101).await.unwrap(), n as u64);
    assert_eq!(s.purge_sessions(101).await.unwrap(), 0);
}

/// A Redis that may lose what the store writes (no persistence, or an
/// eviction policy that may drop keys without an expiry) is refused by
/// `connect`, with an error naming the setting; `accept_data_loss(true)`
/// is the explicit opt-out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_may_lose_revocations_is_refused_unless_accepted() {
    use common::redis_server::{OwnRedis, free_port};
    let dir = std::env::temp_dir().join(format!("jr-evicting-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.to_str().unwrap().to_owned();
    let cases: [(&[&str], &str); 2] = [
        (&["--save", "", "--appendonly", "no"], "no persistence"),
        (
            &[
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                &dir,
                "--maxmemory-policy",
                "allkeys-lru",
            ],
            "maxmemory-policy is allkeys-lru",
        ),
    ];
    for (settings, says) in cases {
        let server = OwnRedis::start_with(free_port(), settings);
        let accepting = || {
            RedisStore::builder(server.url())
                .prefix(common::unique("lossy"))
                .accept_data_loss(true)
                .connect()
        };
        let mut up = false;
        for _ in 0..200 {
            if accepting().await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(up, "redis-server with {settings:?} came up");
        let err = RedisStore::connect(&server.url()).await.unwrap_err();
        assert!(err.to_string().contains(says), "{says}: {err}");
    }
}

/// The global key written at setup and lost later (evicted, deleted, a
/// restart without its data) is a global revocation when found missing,
/// never "no global cutoff": a token revoked by `revoke_all_before` stays
/// revoked, and so does every token issued before the loss was found.
#[tokio::test]
async fn a_lost_global_key_is_a_global_revocation_not_none() {
    let url = common::server_url("REDIS_URL");
    let prefix = common::unique("lost-global");
    let store = RedisStore::builder(url.clone())
        .prefix(prefix.clone())
        .connect()
        .await
        .unwrap();
    let set_up = store.load_global().await.unwrap();
    let now = common::conformance::wall_now();
    assert!(
        (now - 5..=now).contains(&set_up),
        "set up at the current second: {set_up}"
    );
    store.insert("alice", Cutoff::default()).await.unwrap();
    let guard = Guard::builder(Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(), store)
        .build()
        .unwrap();
    let revoked = common::signed_token("alice", 0);
    guard.revoke_all_before(now - 5).await.unwrap();
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}global"))
        .query_async(&mut conn)
        .await
        .unwrap();
    guard.clear_cache();
    let global = guard.store().load_global().await.unwrap();
    assert!(global > now, "recreated after now, not 0: {global}");
    let err = guard.validate::<()>(&revoked).await.unwrap_err();
    assert_eq!(err.code(), "token_revoked");
}
