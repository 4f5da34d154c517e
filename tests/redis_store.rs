//! `RedisStore` against a real Redis server (started by
//! `scripts/services.sh`): the conformance suite plus Redis specifics.
#![cfg(feature = "redis")]

mod common;

use jwt_revoke::{Algorithm, Cutoff, CutoffStore, Guard, Keys, RedisStore};

impl common::conformance::TestStore for RedisStore {
    async fn fresh() -> Self {
        RedisStore::connect(&common::server_url("REDIS_URL"))
            .await
            .expect("connect to Redis")
    }
    async fn put(&self, sub: &str, cutoff: Cutoff) {
        self.insert(sub, cutoff).await.unwrap();
    }
}

mod conformance {
    crate::store_conformance!(jwt_revoke::RedisStore);
}

#[tokio::test]
async fn a_new_connection_sees_the_same_cutoffs_and_remove_forgets() {
    let url = common::server_url("REDIS_URL");
    let a = RedisStore::connect(&url).await.unwrap();
    let sub = common::unique("redis-conn");
    a.bump_version(&sub).await.unwrap();
    let b = RedisStore::connect(&url).await.unwrap();
    assert_eq!(b.load(&sub).await.unwrap(), Some(Cutoff::new(1, 0)));
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
    s.insert(&max, Cutoff::new(i64::MAX as u64, 0))
        .await
        .unwrap();
    assert!(
        s.bump_version(&max).await.is_err(),
        "HINCRBY overflow is reported"
    );
    assert_eq!(
        s.load(&max).await.unwrap(),
        Some(Cutoff::new(i64::MAX as u64, 0))
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

    // It comes back empty (no persistence): the subject is unknown until
    // re-registered; the guard reconnects by itself.
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
    assert_eq!(
        recovered.expect("reconnected").unwrap_err().code(),
        "unknown_subject"
    );
    drop(server);
}
