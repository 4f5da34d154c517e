//! `SqliteStore` runs the store conformance suite, plus SQLite specifics.
#![cfg(feature = "sqlite")]

mod common;

use jwt_revoke::{Cutoff, CutoffStore, SqliteStore};

/// A database file unique to this test, removed when dropped.
struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new() -> Self {
        TempDb(std::env::temp_dir().join(format!("{}.db", common::unique("jwt-revoke-test"))))
    }
    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

impl common::conformance::TestStore for SqliteStore {
    async fn fresh() -> Self {
        // A file database (WAL, pooled connections), like production. The
        // file is left in the temp dir; tests share nothing.
        let db = TempDb::new();
        let url = db.url();
        std::mem::forget(db);
        SqliteStore::connect(&url).await.unwrap()
    }
    async fn put(&self, sub: &str, cutoff: Cutoff) {
        self.insert(sub, cutoff).await.unwrap();
    }
}

mod conformance {
    crate::store_conformance!(jwt_revoke::SqliteStore);
}

#[tokio::test]
async fn migrate_is_idempotent_and_revocations_survive_a_restart() {
    let db = TempDb::new();
    {
        let store = SqliteStore::connect(&db.url()).await.unwrap();
        store.migrate().await.unwrap();
        store.insert("alice", Cutoff::default()).await.unwrap();
        store.bump_version("alice").await.unwrap();
        store.revoke_all_before(1_000).await.unwrap();
        store.pool().close().await;
    }
    let reopened = SqliteStore::connect(&db.url()).await.unwrap();
    assert_eq!(
        reopened.load("alice").await.unwrap(),
        Some(Cutoff::new(1, 0))
    );
    assert_eq!(reopened.load_global().await.unwrap(), 1_001);
}

#[tokio::test]
async fn a_corrupt_row_is_a_store_error_not_a_panic() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    // Bypass the CHECK constraint's intent: SQLite lets a table be rebuilt
    // without it; simulate a row written by something else.
    sqlx::raw_sql(
        "DROP TABLE jwt_revoke_cutoffs; \
         CREATE TABLE jwt_revoke_cutoffs (sub TEXT PRIMARY KEY, token_version INTEGER, not_before INTEGER); \
         INSERT INTO jwt_revoke_cutoffs VALUES ('neg', -5, 0), ('text', 'seven', 0);",
    )
    .execute(store.pool())
    .await
    .unwrap();
    assert!(store.load("neg").await.is_err());
    assert!(store.load("text").await.is_err());
}

#[tokio::test]
async fn version_at_the_maximum_is_reported_not_wrapped() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    store
        .insert("max", Cutoff::new(i64::MAX as u64, 0))
        .await
        .unwrap();
    assert!(store.bump_version("max").await.is_err());
    assert_eq!(
        store.load("max").await.unwrap(),
        Some(Cutoff::new(i64::MAX as u64, 0))
    );
    assert!(
        store
            .insert("huge", Cutoff::new(u64::MAX, 0))
            .await
            .is_err()
    );
}
