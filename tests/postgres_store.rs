//! `PostgresStore` against a real PostgreSQL server (started by
//! `scripts/services.sh`): the conformance suite plus PostgreSQL specifics.
#![cfg(feature = "postgres")]

mod common;

use jwt_revoke::{Algorithm, Cutoff, CutoffStore, Guard, Keys, PostgresStore};

impl common::conformance::TestStore for PostgresStore {
    async fn fresh() -> Self {
        PostgresStore::connect(&common::server_url("POSTGRES_URL"))
            .await
            .expect("connect to PostgreSQL")
    }
    async fn put(&self, sub: &str, cutoff: Cutoff) {
        self.insert(sub, cutoff).await.unwrap();
    }
}

mod conformance {
    crate::store_conformance!(jwt_revoke::PostgresStore);
}

#[tokio::test]
async fn migrate_is_idempotent_and_a_new_pool_sees_the_same_rows() {
    let url = common::server_url("POSTGRES_URL");
    let a = PostgresStore::connect(&url).await.unwrap();
    a.migrate().await.unwrap();
    let sub = common::unique("pg-restart");
    a.bump_version(&sub).await.unwrap();
    a.pool().close().await;
    let b = PostgresStore::connect(&url).await.unwrap();
    assert_eq!(b.load(&sub).await.unwrap(), Some(Cutoff::new(1, 0)));
    assert!(b.remove(&sub).await.unwrap());
    assert_eq!(b.load(&sub).await.unwrap(), None);
}

#[tokio::test]
async fn a_version_at_the_maximum_is_reported_not_wrapped() {
    let s = PostgresStore::connect(&common::server_url("POSTGRES_URL"))
        .await
        .unwrap();
    let sub = common::unique("pg-max");
    s.insert(&sub, Cutoff::new(i64::MAX as u64, 0))
        .await
        .unwrap();
    assert!(s.bump_version(&sub).await.is_err());
    assert!(
        s.insert(&common::unique("pg-huge"), Cutoff::new(u64::MAX, 0))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_guard_on_an_unreachable_server_fails_closed_with_503() {
    // Mint a token on a working store, validate it on a guard whose pool
    // points at a port where nothing listens.
    let good = PostgresStore::connect(&common::server_url("POSTGRES_URL"))
        .await
        .unwrap();
    let sub = common::unique("pg-down");
    good.insert(&sub, Cutoff::default()).await.unwrap();
    let keys = || Keys::hmac(Algorithm::HS256, common::SECRET).unwrap();
    let token = Guard::builder(keys(), good)
        .build()
        .unwrap()
        .issue(&sub, &())
        .await
        .unwrap();

    let dead_pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy("postgres://postgres@127.0.0.1:9/none")
        .unwrap();
    let guard = Guard::builder(keys(), PostgresStore::new(dead_pool))
        .build()
        .unwrap();
    let err = guard.validate::<()>(&token).await.unwrap_err();
    assert_eq!((err.code(), err.status()), ("store_unavailable", 503));
}

#[tokio::test]
async fn connecting_to_a_server_that_is_down_fails_within_seconds() {
    // sqlx retries a refused connection until the pool's acquire timeout:
    // the store's bound, not sqlx's default 30 s, decides how long a call
    // waits while the server is down.
    let res = tokio::time::timeout(
        std::time::Duration::from_secs(4),
        PostgresStore::connect("postgres://postgres@127.0.0.1:9/none"),
    )
    .await;
    assert!(
        matches!(res, Ok(Err(_))),
        "{:?}",
        res.map(|r| r.map(|_| ()))
    );
}
