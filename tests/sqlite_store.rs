//! `SqliteStore` runs the store conformance suite, plus SQLite specifics.
#![cfg(feature = "sqlite")]

mod common;

use jwt_revoke::{Algorithm, Cutoff, CutoffStore, Guard, Keys, SqliteStore};

/// Where the test databases live, apart from everything else in the temp dir.
fn test_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join("jwt-revoke-sqlite-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A database file unique to this test, removed when dropped.
struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new() -> Self {
        TempDb(test_dir().join(format!("{}.db", common::unique("db"))))
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

/// Removes databases that earlier conformance runs left behind: a store
/// cannot own its file, so `fresh()` cannot delete it when the test ends.
fn sweep_old_databases() {
    let Ok(entries) = std::fs::read_dir(test_dir()) else {
        return;
    };
    let hour = std::time::Duration::from_secs(3600);
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > hour);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl common::conformance::TestStore for SqliteStore {
    async fn fresh() -> Self {
        // A file database (WAL, pooled connections), like production; tests
        // share nothing. The file outlives the test and is swept an hour later.
        sweep_old_databases();
        let db = TempDb::new();
        let url = db.url();
        std::mem::forget(db);
        SqliteStore::connect(&url).await.unwrap()
    }
    async fn put(&self, sub: &str, cutoff: Cutoff) {
        self.insert(sub, cutoff).await.unwrap();
    }
    async fn lose(&self, sub: &str) -> bool {
        self.remove(sub).await.unwrap()
    }
}

mod conformance {
    crate::store_conformance!(jwt_revoke::SqliteStore);
}

impl common::session_conformance::SessionTestStore for SqliteStore {
    const MAX_GENERATION: u64 = i64::MAX as u64;
}

mod session_conformance {
    crate::session_conformance!(jwt_revoke::SqliteStore);
}

#[tokio::test]
async fn migrate_is_idempotent_and_revocations_survive_a_restart() {
    let db = TempDb::new();
    let bumped = {
        let store = SqliteStore::connect(&db.url()).await.unwrap();
        store.migrate().await.unwrap();
        store.insert("alice", Cutoff::default()).await.unwrap();
        let bumped = store.bump_version("alice").await.unwrap();
        assert_eq!(bumped.version, 1);
        store.revoke_all_before(4_000_000_000).await.unwrap();
        store.pool().close().await;
        bumped
    };
    let reopened = SqliteStore::connect(&db.url()).await.unwrap();
    assert_eq!(reopened.load("alice").await.unwrap(), Some(bumped));
    assert_eq!(reopened.load_global().await.unwrap(), 4_000_000_001);
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
        .insert("max", Cutoff::new(i64::MAX as u64, 4_000_000_000))
        .await
        .unwrap();
    assert!(store.bump_version("max").await.is_err());
    assert_eq!(
        store.load("max").await.unwrap(),
        Some(Cutoff::new(i64::MAX as u64, 4_000_000_000))
    );
    assert!(
        store
            .insert("huge", Cutoff::new(u64::MAX, 0))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_in_memory_database_keeps_its_only_connection() {
    // `sqlite::memory:` dies with its last connection: the pool must never
    // retire that connection, or every cutoff would vanish after a while.
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    let options = store.pool().options();
    assert_eq!(options.get_max_connections(), 1);
    assert_eq!(options.get_idle_timeout(), None);
    assert_eq!(options.get_max_lifetime(), None);
    let alice = store.insert("alice", Cutoff::new(2, 0)).await.unwrap();
    assert_eq!(alice.version, 2);
    assert_eq!(store.load("alice").await.unwrap(), Some(alice));
    // Each in-memory store is its own database.
    let other = SqliteStore::connect("sqlite::memory:").await.unwrap();
    assert_eq!(other.load("alice").await.unwrap(), None);
}

#[tokio::test]
async fn a_logout_survives_a_server_restart() {
    let db = TempDb::new();
    let keys = || Keys::hmac(Algorithm::HS256, common::SECRET).unwrap();
    let (old, now) = {
        let store = SqliteStore::connect(&db.url()).await.unwrap();
        store.insert("alice", Cutoff::default()).await.unwrap();
        let guard = Guard::builder(keys(), store).build().unwrap();
        let old = guard.issue("alice", &()).await.unwrap();
        let now = guard.validate::<()>(&old).await.unwrap().issued_at();
        guard.bump_version("alice").await.unwrap();
        // (Below the global cutoff the migration set: changes nothing.)
        guard.revoke_all_before(now - 10).await.unwrap();
        guard.store().pool().close().await;
        (old, now)
    };
    // A new process: empty cache, same database file, same key.
    let store = SqliteStore::connect(&db.url()).await.unwrap();
    let guard = Guard::builder(keys(), store).build().unwrap();
    assert_eq!(
        guard.validate::<()>(&old).await.unwrap_err().code(),
        "token_revoked"
    );
    let new = guard.issue("alice", &()).await.unwrap();
    let verified = guard.validate::<()>(&new).await.unwrap();
    assert_eq!(verified.version(), Some(1));
    assert!(verified.issued_at() >= now);
    let global = guard.store().load_global().await.unwrap();
    assert!(global <= now, "the migration's global cutoff: {global}");
}

#[tokio::test]
async fn a_call_waiting_for_a_pool_connection_fails_within_seconds() {
    // Every connection of the pool is held (stuck elsewhere): a load waits
    // for the pool's acquire timeout, not sqlx's default 30 s, and fails.
    let db = TempDb::new();
    let store = SqliteStore::connect(&db.url()).await.unwrap();
    let max = store.pool().options().get_max_connections();
    let mut held = Vec::new();
    for _ in 0..max {
        held.push(store.pool().acquire().await.unwrap());
    }
    let res = tokio::time::timeout(std::time::Duration::from_secs(4), store.load("alice")).await;
    assert!(matches!(res, Ok(Err(_))), "{res:?}");
    drop(held);
    assert_eq!(store.load("alice").await.unwrap(), None);
}

#[tokio::test]
async fn a_corrupt_session_row_is_a_store_error_never_a_default() {
    use jwt_revoke::{Rotate, SessionStore};
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    // A table without the CHECKs, holding rows something else wrote.
    sqlx::raw_sql(
        "DROP TABLE jwt_revoke_sessions; \
         CREATE TABLE jwt_revoke_sessions (id TEXT PRIMARY KEY, sub TEXT, generation INTEGER, \
           version INTEGER, created_at INTEGER, last_used_at INTEGER, expires_at INTEGER, revoked_at INTEGER); \
         INSERT INTO jwt_revoke_sessions VALUES \
           ('neg-gen', 'alice', -1, 0, 0, 0, 9000000000, NULL), \
           ('neg-ver', 'alice', 0, -3, 0, 0, 9000000000, NULL), \
           ('text-gen', 'alice', 'one', 0, 0, 0, 9000000000, NULL), \
           ('null-exp', 'alice', 0, 0, 0, 0, NULL, NULL), \
           ('null-gen', 'alice', NULL, 0, 0, 0, 9000000000, NULL);",
    )
    .execute(store.pool())
    .await
    .unwrap();
    for sid in ["neg-gen", "neg-ver", "text-gen", "null-exp", "null-gen"] {
        assert!(store.load_session("alice", sid).await.is_err(), "{sid}");
    }
    assert!(store.list_sessions("alice", 0).await.is_err());
    let rotate = Rotate {
        generation: 0,
        now: 10,
        expires_at: 100,
        grace: None,
    };
    // The rotation matches the row but cannot return it: an error (the row
    // may be left revoked, the safe side), never a rotation.
    assert!(
        store
            .rotate_refresh("alice", "neg-ver", rotate)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn sessions_rotate_and_a_reused_refresh_token_stays_dead_after_a_restart() {
    use jwt_revoke::{Error, RefreshKey, SessionConfig};
    let db = TempDb::new();
    let guard_over = |store: SqliteStore| {
        Guard::builder(Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(), store)
            .sessions(SessionConfig::new(RefreshKey::new(common::SECRET).unwrap()))
            .build()
            .unwrap()
    };
    let (first, second, laptop) = {
        let store = SqliteStore::connect(&db.url()).await.unwrap();
        store.insert("alice", Cutoff::default()).await.unwrap();
        let guard = guard_over(store);
        let phone = guard.login("alice", &()).await.unwrap();
        let laptop = guard.login("alice", &()).await.unwrap();
        let second = guard.refresh(&phone.refresh_token, &()).await.unwrap();
        guard.validate::<()>(&second.access_token).await.unwrap();
        guard.store().pool().close().await;
        (phone, second, laptop)
    };
    // A new process over the same file: the spent token is reuse and ends
    // the phone's session; the laptop's is untouched.
    let guard = guard_over(SqliteStore::connect(&db.url()).await.unwrap());
    assert!(matches!(
        guard.refresh(&first.refresh_token, &()).await,
        Err(Error::RefreshReused)
    ));
    assert!(matches!(
        guard.refresh(&second.refresh_token, &()).await,
        Err(Error::SessionRevoked)
    ));
    assert!(matches!(
        guard.validate::<()>(&second.access_token).await,
        Err(Error::SessionRevoked)
    ));
    guard.validate::<()>(&laptop.access_token).await.unwrap();
    let listed = guard.sessions("alice").await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        vec![laptop.session_id.as_str()]
    );
}

/// A store over an in-memory database where nothing was migrated.
async fn unmigrated() -> SqliteStore {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    SqliteStore::new(pool)
}

#[tokio::test]
async fn check_names_the_missing_tables_and_the_fix_until_migrate_runs() {
    let store = unmigrated().await;
    let message = store.check().await.unwrap_err().to_string();
    for table in [
        "jwt_revoke_cutoffs",
        "jwt_revoke_global",
        "jwt_revoke_sessions",
    ] {
        assert!(message.contains(table), "{message}");
    }
    assert!(
        message.contains("run SqliteStore::migrate(), or apply SqliteStore::SCHEMA"),
        "{message}"
    );
    store.migrate().await.unwrap();
    store.check().await.unwrap();
    // `connect` migrates: its store passes at once.
    SqliteStore::connect("sqlite::memory:")
        .await
        .unwrap()
        .check()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_call_on_an_unmigrated_store_names_the_missing_table() {
    let store = unmigrated().await;
    let err = store.load("alice").await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("table jwt_revoke_cutoffs does not exist")
            && message.contains("SqliteStore::migrate()"),
        "{message}"
    );
    // The database's own error stays the source.
    let source = std::error::Error::source(err.inner()).map(|s| s.to_string());
    assert!(
        source
            .as_deref()
            .is_some_and(|s| s.contains("no such table")),
        "{source:?}"
    );

    for message in [
        store.bump_version("alice").await.unwrap_err().to_string(),
        store.load_global().await.unwrap_err().to_string(),
        jwt_revoke::SessionStore::list_sessions(&store, "alice", 0)
            .await
            .unwrap_err()
            .to_string(),
    ] {
        assert!(
            message.contains("does not exist") && message.contains("SqliteStore::migrate()"),
            "{message}"
        );
    }
    assert!(
        store
            .load_global()
            .await
            .unwrap_err()
            .to_string()
            .contains("jwt_revoke_global")
    );

    // Through the guard it stays a 503, the reason in its source.
    let keys = Keys::hmac(Algorithm::HS256, common::SECRET).unwrap();
    let guard = Guard::builder(keys, store).build().unwrap();
    let err = guard.bump_version("alice").await.unwrap_err();
    assert_eq!((err.code(), err.status()), ("store_unavailable", 503));
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("jwt_revoke_cutoffs"), "{source}");
}

#[tokio::test]
async fn check_names_a_missing_column_of_an_older_table() {
    let store = unmigrated().await;
    // A sessions table from before `not_before_seen`: `migrate` creates the
    // missing tables but does not change this one.
    sqlx::raw_sql(
        "CREATE TABLE jwt_revoke_sessions (id TEXT PRIMARY KEY, sub TEXT NOT NULL, \
         generation INTEGER NOT NULL, version INTEGER NOT NULL, created_at INTEGER NOT NULL, \
         last_used_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let message = store.check().await.unwrap_err().to_string();
    assert!(
        message.contains("column jwt_revoke_sessions.not_before_seen does not exist")
            && message.contains("SqliteStore::SCHEMA")
            && !message.contains("jwt_revoke_cutoffs"),
        "{message}"
    );
    let message = jwt_revoke::SessionStore::list_sessions(&store, "alice", 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains("not_before_seen"), "{message}");
}
