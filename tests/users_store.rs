//! `SqliteUsersStore` and `PostgresUsersStore`: cutoffs on columns of the
//! host's own users table. The store conformance suite (for stores that
//! hold only existing subjects), then what differs: no upsert, hostile
//! identifiers, rows that fail closed, writes inside the host's transaction.
#![cfg(any(feature = "sqlite", feature = "postgres"))]

mod common;

use jwt_revoke::{Algorithm, Guard, Keys};

fn keys() -> Keys {
    Keys::hmac(Algorithm::HS256, common::SECRET).unwrap()
}

/// After the commit, the cached old cutoff still admits `token` on `guard`;
/// once the committed cutoff is applied, `token` is revoked at once.
async fn applying_the_commit_revokes<S: jwt_revoke::CutoffStore>(
    guard: &Guard<S>,
    sub: &str,
    cutoff: jwt_revoke::Cutoff,
    token: &str,
) {
    assert!(
        guard.validate::<()>(token).await.is_ok(),
        "before apply_committed the cache still holds the old cutoff"
    );
    guard.apply_committed(sub, cutoff).await.unwrap();
    assert_eq!(
        guard.validate::<()>(token).await.unwrap_err().code(),
        "token_revoked"
    );
}

/// `sub` names no user of `store`: it loads as unknown and a write fails as
/// unknown, creating nothing.
async fn is_no_user(store: &impl jwt_revoke::CutoffStore, sub: &str) {
    assert_eq!(store.load(sub).await.unwrap(), None, "{sub:?}");
    let err = store.bump_version(sub).await.unwrap_err();
    assert!(err.is_unknown_subject(), "{sub:?}: {err}");
    assert_eq!(store.load(sub).await.unwrap(), None, "{sub:?}");
}

/// Names an attacker (or a careless configuration) might pass as a table or
/// column: every one is refused at construction.
const HOSTILE_NAMES: &[&str] = &[
    "users; DROP TABLE users",
    "users\"; DROP TABLE users; --",
    "users WHERE 1=1",
    "users--",
    "users/*",
    "\"users\"",
    "users'",
    "users`",
    "users\0",
    "a.b.c",
    "",
    " users",
    "1users",
    "usérs",
];

#[test]
fn hostile_identifiers_are_refused_at_construction() {
    use jwt_revoke::UsersTable;
    for name in HOSTILE_NAMES {
        let table = UsersTable::new(name);
        assert!(
            matches!(table, Err(jwt_revoke::Error::Config(_))),
            "table {name:?}"
        );
        let t = UsersTable::new("users").unwrap();
        assert!(t.clone().id_column(name).is_err(), "id {name:?}");
        assert!(t.clone().version_column(name).is_err(), "version {name:?}");
        assert!(t.clone().not_before_column(name).is_err(), "nb {name:?}");
        assert!(t.clone().global_table(name).is_err(), "global {name:?}");
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::str::FromStr;
    use std::time::Duration;

    use jwt_revoke::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
    use jwt_revoke::sqlx::{self, SqlitePool};
    use jwt_revoke::{
        Cutoff, CutoffStore, Error, Guard, SqliteStore, SqliteUsersStore, UserIds, UsersTable,
    };

    use super::{HOSTILE_NAMES, applying_the_commit_revokes, is_no_user, keys};
    use crate::common;

    /// The table of the conformance runs: names that are not the defaults,
    /// one of them an SQL keyword (it must be quoted to work at all).
    fn table() -> UsersTable {
        columns("app_users").global_table("jwt_global").unwrap()
    }

    /// `name` with the conformance runs' column names, no global table.
    fn columns(name: &str) -> UsersTable {
        UsersTable::new(name)
            .unwrap()
            .id_column("select")
            .unwrap()
            .version_column("jwt_ver")
            .unwrap()
            .not_before_column("jwt_nb")
            .unwrap()
    }

    const USERS_DDL: &str = "CREATE TABLE app_users (\"select\" TEXT PRIMARY KEY, email TEXT);";

    /// A pool over one in-memory database, kept open.
    async fn memory_pool() -> SqlitePool {
        SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect("sqlite::memory:")
            .await
            .unwrap()
    }

    /// A users table as a host has it, with the store's migration applied.
    async fn memory_store() -> SqliteUsersStore {
        let pool = memory_pool().await;
        sqlx::raw_sql(USERS_DDL).execute(&pool).await.unwrap();
        let store = SqliteUsersStore::new(pool, table());
        sqlx::raw_sql(store.migration_sql())
            .execute(store.pool())
            .await
            .unwrap();
        store
    }

    async fn add_user(pool: &SqlitePool, sub: &str, cutoff: Cutoff) {
        sqlx::query(
            "INSERT INTO app_users (\"select\", email, jwt_ver, jwt_nb) VALUES (?1, 'x', ?2, ?3)",
        )
        .bind(sub)
        .bind(i64::try_from(cutoff.version).unwrap())
        .bind(cutoff.not_before)
        .execute(pool)
        .await
        .unwrap();
    }

    impl common::conformance::TestStore for SqliteUsersStore {
        async fn fresh() -> Self {
            memory_store().await
        }
        async fn put(&self, sub: &str, cutoff: Cutoff) {
            add_user(self.pool(), sub, cutoff).await;
        }
    }

    mod conformance {
        crate::store_conformance!(jwt_revoke::SqliteUsersStore, existing_subjects_only);
    }

    /// A database file (WAL, several connections, as in production),
    /// removed when dropped.
    struct TempDb(std::path::PathBuf);

    impl TempDb {
        fn new() -> Self {
            let dir = std::env::temp_dir().join("jwt-revoke-users-tests");
            std::fs::create_dir_all(&dir).unwrap();
            TempDb(dir.join(format!("{}.db", common::unique("users"))))
        }
        async fn pool(&self) -> SqlitePool {
            let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", self.0.display()))
                .unwrap()
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5));
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .unwrap()
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    #[tokio::test]
    async fn the_migration_adds_the_columns_to_an_existing_table_with_integer_ids() {
        let pool = memory_pool().await;
        sqlx::raw_sql(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL); \
             INSERT INTO users (id, email) VALUES (42, 'alice@example.com');",
        )
        .execute(&pool)
        .await
        .unwrap();
        let table = UsersTable::new("users").unwrap().ids(UserIds::Integer);
        let store = SqliteUsersStore::new(pool, table);
        sqlx::raw_sql(store.migration_sql())
            .execute(store.pool())
            .await
            .unwrap();
        // Existing users start at the default cutoff.
        assert_eq!(store.load("42").await.unwrap(), Some(Cutoff::default()));
        assert_eq!(store.bump_version("42").await.unwrap(), Cutoff::new(1, 0));
        // Only the canonical spelling names the user: another one would have
        // a cache entry of its own that a revocation would not reach.
        for other in ["042", "+42", " 42", "42.0", "4.2e1", "forty-two"] {
            is_no_user(&store, other).await;
        }
        assert_eq!(store.load("42").await.unwrap(), Some(Cutoff::new(1, 0)));
        // The schema keeps bad values out.
        let negative = sqlx::query("UPDATE users SET token_version = -1 WHERE id = 42")
            .execute(store.pool())
            .await;
        assert!(negative.is_err(), "CHECK (token_version >= 0)");
    }

    #[tokio::test]
    async fn a_hostile_name_never_reaches_the_database() {
        let store = memory_store().await;
        add_user(store.pool(), "alice", Cutoff::default()).await;
        for name in HOSTILE_NAMES {
            assert!(UsersTable::new(name).is_err(), "{name:?}");
        }
        // A schema-qualified name is quoted part by part.
        let qualified = columns("main.app_users");
        assert_eq!(qualified.table(), "\"main\".\"app_users\"");
        let again = SqliteUsersStore::new(store.pool().clone(), qualified);
        assert_eq!(again.bump_version("alice").await.unwrap().version, 1);
        // A name that is valid but wrong is a store error, not an injection.
        let wrong = SqliteUsersStore::new(
            store.pool().clone(),
            UsersTable::new("app_users_typo").unwrap(),
        );
        let err = wrong.load("alice").await.unwrap_err();
        assert!(!err.is_unknown_subject(), "{err}");
        assert_eq!(
            store.load("alice").await.unwrap().map(|c| c.version),
            Some(1)
        );
    }

    /// Two users at the default cutoff on a `users (id, token_version,
    /// tokens_not_before)` table, and a snapshot of every row.
    async fn two_users() -> SqlitePool {
        let pool = memory_pool().await;
        sqlx::raw_sql(
            "CREATE TABLE users (id TEXT PRIMARY KEY, \
               token_version INTEGER NOT NULL DEFAULT 0, tokens_not_before INTEGER NOT NULL DEFAULT 0); \
             INSERT INTO users (id) VALUES ('alice'), ('bob');",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool
    }

    async fn rows(pool: &SqlitePool) -> Vec<(String, i64, i64)> {
        sqlx::query_as("SELECT * FROM users ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    const UNTOUCHED: [(&str, i64, i64); 2] = [("alice", 0, 0), ("bob", 0, 0)];

    fn untouched() -> Vec<(String, i64, i64)> {
        UNTOUCHED
            .iter()
            .map(|&(id, v, nb)| (id.to_owned(), v, nb))
            .collect()
    }

    /// SQLite reads a double-quoted name that is no column as a string
    /// literal: with `id_column("user_id")` on a table whose column is `id`,
    /// `WHERE "user_id" = ?1` is true for the subject `"user_id"` on every
    /// row. A misnamed column must be an error that names it, for every
    /// operation, and no row may change.
    #[tokio::test]
    async fn a_misnamed_column_is_an_error_naming_it_not_a_string_literal() {
        let pool = two_users().await;
        let users = || UsersTable::new("users").unwrap();
        let misnamed = [
            (users().id_column("user_id").unwrap(), "user_id"),
            (
                users().version_column("jwt_version").unwrap(),
                "jwt_version",
            ),
            (users().not_before_column("jwt_nb").unwrap(), "jwt_nb"),
        ];
        for (table, column) in misnamed {
            let store = SqliteUsersStore::new(pool.clone(), table);
            // At startup, the check names it.
            let err = store.check().await.unwrap_err().to_string();
            assert!(err.contains(column), "{err}");
            for sub in ["alice", column] {
                let errors = [
                    store.load(sub).await.map(|_| ()).unwrap_err(),
                    store.bump_version(sub).await.map(|_| ()).unwrap_err(),
                    store
                        .revoke_before(sub, 1_000)
                        .await
                        .map(|_| ())
                        .unwrap_err(),
                ];
                for err in errors {
                    assert!(!err.is_unknown_subject(), "{column}/{sub}: {err}");
                    let text = err.to_string();
                    assert!(
                        text.contains(column) && text.contains("users"),
                        "{column}/{sub}: the error names the column and the table: {text}"
                    );
                }
            }
            assert_eq!(rows(&pool).await, untouched(), "{column}: no row changed");
        }
        // A missing table is named too.
        let store = SqliteUsersStore::new(pool.clone(), UsersTable::new("userz").unwrap());
        let err = store.load("alice").await.unwrap_err();
        assert!(err.to_string().contains("userz"), "{err}");
        // Names match regardless of ASCII case, as SQLite matches them.
        let store = SqliteUsersStore::new(pool.clone(), UsersTable::new("main.USERS").unwrap());
        store.check().await.unwrap();
        assert_eq!(store.load("alice").await.unwrap(), Some(Cutoff::default()));

        // Through a guard: a 503, never a token accepted or a user revoked.
        let store = SqliteUsersStore::new(pool.clone(), users().id_column("user_id").unwrap());
        let guard = Guard::builder(keys(), store).build().unwrap();
        let token = common::signed_token("user_id", 0);
        let err = guard.validate::<()>(&token).await.unwrap_err();
        assert_eq!(err.code(), "store_unavailable");
        assert!(guard.bump_version("user_id").await.is_err());
        assert_eq!(rows(&pool).await, untouched());
    }

    /// A column renamed after the store's first use: the statements name
    /// every column with its table, so the old name is an SQL error, never
    /// the string literal that bumps every user.
    #[tokio::test]
    async fn a_column_renamed_under_a_running_store_is_an_error_not_a_literal() {
        let pool = two_users().await;
        let store = SqliteUsersStore::new(pool.clone(), UsersTable::new("users").unwrap());
        assert_eq!(store.load("alice").await.unwrap(), Some(Cutoff::default()));
        sqlx::raw_sql("ALTER TABLE users RENAME COLUMN id TO user_id")
            .execute(&pool)
            .await
            .unwrap();
        // The subject "id" would match every row if "id" were read as 'id'.
        assert!(store.bump_version("id").await.is_err());
        assert!(store.revoke_before("id", 1_000).await.is_err());
        assert!(store.load("id").await.is_err());
        let after: Vec<(String, i64, i64)> = sqlx::query_as("SELECT * FROM users ORDER BY user_id")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(after, untouched(), "no user was bumped");
    }

    /// A table without the migration's constraints, holding rows this store
    /// must not understand: each fails closed, and no write changes it.
    #[tokio::test]
    async fn bad_rows_fail_closed_and_are_left_as_they_are() {
        let pool = memory_pool().await;
        sqlx::raw_sql(
            "CREATE TABLE users (id TEXT PRIMARY KEY, token_version INTEGER, tokens_not_before INTEGER); \
             INSERT INTO users VALUES \
               ('null-ver', NULL, 0), ('null-nb', 0, NULL), ('neg-ver', -5, 0), ('neg-nb', 0, -1), \
               ('text-ver', 'seven', 0), ('real-ver', 1.5, 0), ('blob-nb', 0, x'00'), \
               ('max', 9223372036854775807, 0);",
        )
        .execute(&pool)
        .await
        .unwrap();
        let store = SqliteUsersStore::new(pool.clone(), UsersTable::new("users").unwrap());
        let snapshot = || async {
            sqlx::query_as::<_, (String, String, String)>(
                "SELECT id, quote(token_version), quote(tokens_not_before) FROM users ORDER BY id",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        };
        let before = snapshot().await;
        for sub in [
            "null-ver", "null-nb", "neg-ver", "neg-nb", "text-ver", "real-ver", "blob-nb",
        ] {
            let loaded = store.load(sub).await;
            assert!(loaded.is_err(), "{sub}: {loaded:?}");
            for write in [
                store.bump_version(sub).await,
                store.revoke_before(sub, 1_000).await,
            ] {
                let err = write.unwrap_err();
                assert!(
                    !err.is_unknown_subject(),
                    "{sub}: a bad row is not a missing user"
                );
            }
        }
        // At the maximum, the version is reported, not wrapped or turned
        // into a float.
        let err = store.bump_version("max").await.unwrap_err();
        assert!(err.to_string().contains("maximum"), "{err}");
        assert_eq!(before, snapshot().await, "no write touched a bad row");

        // Through a guard: a 503, never an accepted token.
        let guard = Guard::builder(keys(), store).build().unwrap();
        let token = common::signed_token("null-ver", 0);
        let err = guard.validate::<()>(&token).await.unwrap_err();
        assert_eq!((err.code(), err.status()), ("store_unavailable", 503));
        let err = guard.bump_version("neg-ver").await.unwrap_err();
        assert_eq!(err.code(), "store_unavailable");
    }

    #[tokio::test]
    async fn a_bump_of_a_deleted_user_does_not_bring_it_back() {
        let store = memory_store().await;
        add_user(store.pool(), "alice", Cutoff::default()).await;
        let guard = Guard::builder(keys(), store).build().unwrap();
        let token = guard.issue("alice", &()).await.unwrap();
        guard.bump_version("alice").await.unwrap();
        sqlx::query("DELETE FROM app_users WHERE \"select\" = 'alice'")
            .execute(guard.store().pool())
            .await
            .unwrap();
        let err = guard.bump_version("alice").await.unwrap_err();
        assert!(matches!(err, Error::UnknownSubject), "{err:?}");
        let err = guard.revoke_before("alice", 1_000).await.unwrap_err();
        assert!(matches!(err, Error::UnknownSubject), "{err:?}");
        let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM app_users")
            .fetch_one(guard.store().pool())
            .await
            .unwrap();
        assert_eq!(rows, 0, "no row was created");
        guard.forget("alice");
        assert_eq!(
            guard.validate::<()>(&token).await.unwrap_err().code(),
            "unknown_subject"
        );
    }

    /// A user deleted and signed up again under the same id (a user name,
    /// an e-mail address) starts after now: the migration's trigger raises
    /// a new row's `not_before`, so the old account's tokens stay dead.
    #[tokio::test]
    async fn a_user_deleted_and_created_again_inherits_no_token() {
        let store = memory_store().await;
        add_user(store.pool(), "alice", Cutoff::default()).await;
        let guard = Guard::builder(keys(), store).build().unwrap();
        for _ in 0..3 {
            guard.bump_version("alice").await.unwrap();
        }
        let old = common::signed_token("alice", 3);
        sqlx::query("DELETE FROM app_users WHERE \"select\" = 'alice'")
            .execute(guard.store().pool())
            .await
            .unwrap();
        // Signed up again: the host inserts the row without the columns.
        sqlx::query("INSERT INTO app_users (\"select\", email) VALUES ('alice', 'x')")
            .execute(guard.store().pool())
            .await
            .unwrap();
        guard.clear_cache();
        let c = guard.store().load("alice").await.unwrap().unwrap();
        assert_eq!(c.version, 0);
        assert!(c.not_before > common::conformance::wall_now(), "{c:?}");
        for t in [old, common::signed_token("alice", 0)] {
            assert_eq!(
                guard.validate::<()>(&t).await.unwrap_err().code(),
                "token_revoked"
            );
        }
    }

    #[tokio::test]
    async fn without_a_global_table_global_revocation_is_unsupported() {
        let pool = memory_pool().await;
        sqlx::raw_sql(USERS_DDL).execute(&pool).await.unwrap();
        let table = table();
        let no_global = columns("app_users");
        let store = SqliteUsersStore::new(pool, no_global);
        sqlx::raw_sql(store.migration_sql())
            .execute(store.pool())
            .await
            .unwrap();
        assert!(!store.migration_sql().contains("jwt_global"));
        assert_eq!(store.load_global().await.unwrap(), 0);
        assert!(store.revoke_all_before(1_000).await.is_err());
        add_user(store.pool(), "alice", Cutoff::default()).await;
        let guard = Guard::builder(keys(), store).build().unwrap();
        // Logins and validations work without one.
        let token = guard.issue("alice", &()).await.unwrap();
        assert!(guard.validate::<()>(&token).await.is_ok());
        assert!(guard.revoke_all_before(1_000).await.is_err());
        // With one, the migration creates it.
        let with = SqliteUsersStore::new(guard.store().pool().clone(), table);
        assert!(
            with.migration_sql()
                .contains("CREATE TABLE IF NOT EXISTS \"jwt_global\"")
        );
    }

    /// The password change and the revocation are one commit; the guard
    /// learns the cutoff from `apply_committed`.
    #[tokio::test]
    async fn rollback_changes_nothing_and_commit_revokes_at_once_on_that_guard() {
        let db = TempDb::new();
        let pool = db.pool().await;
        sqlx::raw_sql(
            "CREATE TABLE users (id TEXT PRIMARY KEY, password_hash TEXT NOT NULL, \
               token_version INTEGER NOT NULL DEFAULT 0, tokens_not_before INTEGER NOT NULL DEFAULT 0); \
             INSERT INTO users (id, password_hash) VALUES ('alice', 'old');",
        )
        .execute(&pool)
        .await
        .unwrap();
        let store = SqliteUsersStore::new(pool.clone(), UsersTable::new("users").unwrap());
        let guard = Guard::builder(keys(), store).build().unwrap();
        let token = guard.issue("alice", &()).await.unwrap();
        assert!(guard.validate::<()>(&token).await.is_ok());

        let change_password = |hash: &'static str| {
            sqlx::query("UPDATE users SET password_hash = ?1 WHERE id = 'alice'").bind(hash)
        };

        // Rolled back: nothing changed, in the database or for the token.
        let mut tx = pool.begin().await.unwrap();
        change_password("new").execute(&mut *tx).await.unwrap();
        let cutoff = guard
            .store()
            .bump_version_in(&mut tx, "alice")
            .await
            .unwrap();
        assert_eq!(cutoff, Cutoff::new(1, 0));
        tx.rollback().await.unwrap();
        assert_eq!(
            guard.store().load("alice").await.unwrap(),
            Some(Cutoff::default())
        );
        guard.clear_cache();
        assert!(guard.validate::<()>(&token).await.is_ok());

        // Committed: the old token dies on this guard the moment the cutoff
        // is applied, though its cached entry is fresh.
        let mut tx = pool.begin().await.unwrap();
        change_password("new").execute(&mut *tx).await.unwrap();
        let cutoff = guard
            .store()
            .bump_version_in(&mut tx, "alice")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        applying_the_commit_revokes(&guard, "alice", cutoff, &token).await;
        let (hash,): (String,) =
            sqlx::query_as("SELECT password_hash FROM users WHERE id = 'alice'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(hash, "new");
        let fresh = guard.issue("alice", &()).await.unwrap();
        assert_eq!(
            guard.validate::<()>(&fresh).await.unwrap().version(),
            Some(1)
        );

        // revoke_before_in: the same, for a timestamp cutoff.
        let mut tx = pool.begin().await.unwrap();
        let at = guard.validate::<()>(&fresh).await.unwrap().issued_at();
        let cutoff = guard
            .store()
            .revoke_before_in(&mut tx, "alice", at)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(cutoff, Cutoff::new(1, at + 1));
        applying_the_commit_revokes(&guard, "alice", cutoff, &fresh).await;

        // An unknown user inside a transaction: unknown, and the host's
        // transaction is still usable.
        let mut tx = pool.begin().await.unwrap();
        let err = guard
            .store()
            .bump_version_in(&mut tx, "bob")
            .await
            .unwrap_err();
        assert!(err.is_unknown_subject());
        change_password("newer").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn apply_committed_refuses_a_cutoff_beyond_the_horizon() {
        let store = memory_store().await;
        add_user(store.pool(), "alice", Cutoff::default()).await;
        let guard = Guard::builder(keys(), store).build().unwrap();
        let token = guard.issue("alice", &()).await.unwrap();
        // Milliseconds where seconds are expected.
        let err = guard
            .apply_committed("alice", Cutoff::new(0, 1_800_000_000_000))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_cutoff");
        assert!(
            guard.validate::<()>(&token).await.is_ok(),
            "nothing applied"
        );
    }

    /// The cutoff-table store writes inside the host's transaction too.
    #[tokio::test]
    async fn the_cutoff_table_store_writes_inside_a_transaction() {
        let db = TempDb::new();
        let store = SqliteStore::connect(&format!("sqlite://{}", db.0.display()))
            .await
            .unwrap();
        let registered = store.insert("alice", Cutoff::default()).await.unwrap();
        let guard = Guard::builder(keys(), store).build().unwrap();
        let token = guard.issue("alice", &()).await.unwrap();

        let mut tx = guard.store().pool().begin().await.unwrap();
        guard
            .store()
            .bump_version_in(&mut tx, "alice")
            .await
            .unwrap();
        guard
            .store()
            .revoke_before_in(&mut tx, "alice", 5)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(guard.store().load("alice").await.unwrap(), Some(registered));

        let mut tx = guard.store().pool().begin().await.unwrap();
        let cutoff = guard
            .store()
            .bump_version_in(&mut tx, "alice")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        applying_the_commit_revokes(&guard, "alice", cutoff, &token).await;
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use jwt_revoke::sqlx::{self, PgPool};
    use jwt_revoke::{
        Cutoff, CutoffStore, Error, Guard, PostgresStore, PostgresUsersStore, UserIds, UsersTable,
    };

    use super::{applying_the_commit_revokes, is_no_user, keys};
    use crate::common;

    /// The shared test schema: a table named by a reserved word, in a
    /// schema of its own, and tables with integer and uuid ids. Created
    /// once per server; concurrent test processes serialize on a lock.
    const SCHEMA: &str = "SELECT pg_advisory_xact_lock(7245030172); \
        CREATE SCHEMA IF NOT EXISTS jr_app; \
        CREATE TABLE IF NOT EXISTS jr_app.\"user\" ( \
            id TEXT PRIMARY KEY, email TEXT, \
            token_version BIGINT NOT NULL DEFAULT 0 CHECK (token_version >= 0), \
            tokens_not_before BIGINT NOT NULL DEFAULT 0 CHECK (tokens_not_before >= 0)); \
        CREATE TABLE IF NOT EXISTS jr_app.cutoff_global (id INTEGER PRIMARY KEY CHECK (id = 1), not_before BIGINT NOT NULL); \
        INSERT INTO jr_app.cutoff_global (id, not_before) VALUES (1, 0) ON CONFLICT (id) DO NOTHING; \
        CREATE TABLE IF NOT EXISTS jr_app.numbered (id BIGSERIAL PRIMARY KEY, email TEXT, \
            token_version BIGINT NOT NULL DEFAULT 0, tokens_not_before BIGINT NOT NULL DEFAULT 0); \
        CREATE TABLE IF NOT EXISTS jr_app.uuids (id UUID PRIMARY KEY, \
            token_version BIGINT NOT NULL DEFAULT 0, tokens_not_before BIGINT NOT NULL DEFAULT 0); \
        CREATE TABLE IF NOT EXISTS jr_app.loose (id TEXT PRIMARY KEY, token_version BIGINT, tokens_not_before BIGINT); \
        CREATE TABLE IF NOT EXISTS jr_app.narrow (id TEXT PRIMARY KEY, \
            token_version INTEGER NOT NULL DEFAULT 0, tokens_not_before BIGINT NOT NULL DEFAULT 0);";

    async fn pool() -> PgPool {
        let pool = PgPool::connect(&common::server_url("POSTGRES_URL"))
            .await
            .expect("connect to PostgreSQL");
        sqlx::raw_sql(SCHEMA).execute(&pool).await.unwrap();
        pool
    }

    fn table() -> UsersTable {
        UsersTable::new("jr_app.user")
            .unwrap()
            .global_table("jr_app.cutoff_global")
            .unwrap()
    }

    impl common::conformance::TestStore for PostgresUsersStore {
        async fn fresh() -> Self {
            PostgresUsersStore::new(pool().await, table())
        }
        async fn put(&self, sub: &str, cutoff: Cutoff) {
            sqlx::query(
                "INSERT INTO jr_app.\"user\" (id, email, token_version, tokens_not_before) VALUES ($1, 'x', $2, $3)",
            )
            .bind(sub)
            .bind(i64::try_from(cutoff.version).unwrap())
            .bind(cutoff.not_before)
            .execute(self.pool())
            .await
            .unwrap();
        }
    }

    mod conformance {
        crate::store_conformance!(jwt_revoke::PostgresUsersStore, existing_subjects_only);
    }

    #[tokio::test]
    async fn integer_and_uuid_ids_compare_only_in_their_canonical_form() {
        let pool = pool().await;
        let (id,): (i64,) =
            sqlx::query_as("INSERT INTO jr_app.numbered (email) VALUES ('a') RETURNING id")
                .fetch_one(&pool)
                .await
                .unwrap();
        let numbered = PostgresUsersStore::new(
            pool.clone(),
            UsersTable::new("jr_app.numbered")
                .unwrap()
                .ids(UserIds::Integer),
        );
        let sub = id.to_string();
        assert_eq!(numbered.load(&sub).await.unwrap(), Some(Cutoff::default()));
        assert_eq!(
            numbered.bump_version(&sub).await.unwrap(),
            Cutoff::new(1, 0)
        );
        for other in [
            format!("0{sub}"),
            format!("+{sub}"),
            format!("{sub}.0"),
            "x".into(),
        ] {
            is_no_user(&numbered, &other).await;
        }

        let uuid = format!("{:032x}", rand::random::<u128>());
        let uuid = format!(
            "{}-{}-{}-{}-{}",
            &uuid[..8],
            &uuid[8..12],
            &uuid[12..16],
            &uuid[16..20],
            &uuid[20..]
        );
        sqlx::query("INSERT INTO jr_app.uuids (id) VALUES (CAST($1 AS uuid))")
            .bind(&uuid)
            .execute(&pool)
            .await
            .unwrap();
        let uuids = PostgresUsersStore::new(
            pool.clone(),
            UsersTable::new("jr_app.uuids").unwrap().ids(UserIds::Uuid),
        );
        assert_eq!(
            uuids.revoke_before(&uuid, 99).await.unwrap(),
            Cutoff::new(0, 100)
        );
        for other in [
            uuid.to_uppercase(),
            uuid.replace('-', ""),
            format!("{{{uuid}}}"),
            "x".into(),
        ] {
            is_no_user(&uuids, &other).await;
        }
        // A text id on a uuid column without UserIds::Uuid is a store error
        // (uuid = text), never an unknown user.
        let wrong = PostgresUsersStore::new(pool, UsersTable::new("jr_app.uuids").unwrap());
        assert!(!wrong.load(&uuid).await.unwrap_err().is_unknown_subject());
    }

    /// A table or column that is not there (a typo, a migration not run)
    /// is an error naming it, with what to do, for every operation; never a
    /// bare "column does not exist" behind a 503.
    #[tokio::test]
    async fn a_missing_table_or_column_is_an_error_naming_it() {
        let pool = pool().await;
        let sub = common::unique("pg-misnamed");
        let user = || UsersTable::new("jr_app.user").unwrap();
        common::conformance::TestStore::put(
            &PostgresUsersStore::new(pool.clone(), user()),
            &sub,
            Cutoff::default(),
        )
        .await;
        let cases = [
            (
                user().id_column("user_id").unwrap(),
                "\"user_id\"",
                "id_column",
            ),
            (
                user().version_column("jwt_version").unwrap(),
                "\"jwt_version\"",
                "migration_sql",
            ),
            (
                user().not_before_column("jwt_nb").unwrap(),
                "\"jwt_nb\"",
                "migration_sql",
            ),
            (
                UsersTable::new("jr_app.nobody").unwrap(),
                "\"jr_app\".\"nobody\"",
                "does not exist",
            ),
            (
                user().global_table("jr_app.no_global").unwrap(),
                "\"jr_app\".\"no_global\"",
                "migration_sql",
            ),
            (
                UsersTable::new("jr_app.narrow").unwrap(),
                "\"token_version\"",
                "bigint",
            ),
        ];
        for (table, named, hint) in cases {
            let store = PostgresUsersStore::new(pool.clone(), table);
            let err = store.check().await.unwrap_err().to_string();
            assert!(err.contains(named) && err.contains(hint), "{err}");
            let errors = [
                store.load(&sub).await.map(|_| ()).unwrap_err(),
                store.bump_version(&sub).await.map(|_| ()).unwrap_err(),
                store
                    .revoke_before(&sub, 1_000)
                    .await
                    .map(|_| ())
                    .unwrap_err(),
            ];
            for err in errors {
                assert!(!err.is_unknown_subject(), "{named}: {err}");
                let text = err.to_string();
                assert!(
                    text.contains(named) && text.contains(hint),
                    "{named}: names it and says what to do: {text}"
                );
            }
        }
        let store = PostgresUsersStore::new(pool.clone(), user());
        store.check().await.unwrap();
        assert_eq!(store.load(&sub).await.unwrap(), Some(Cutoff::default()));
        // A text id compared as a uuid, and the reverse: named at the check.
        let uuids = UsersTable::new("jr_app.uuids").unwrap();
        for table in [uuids.clone(), user().ids(UserIds::Uuid)] {
            let store = PostgresUsersStore::new(pool.clone(), table);
            let err = store.check().await.unwrap_err().to_string();
            assert!(err.contains("UserIds::Uuid"), "{err}");
        }
        let store = PostgresUsersStore::new(pool.clone(), uuids.ids(UserIds::Uuid));
        store.check().await.unwrap();
    }

    #[tokio::test]
    async fn null_and_negative_values_fail_closed_and_are_left_as_they_are() {
        let pool = pool().await;
        let base = common::unique("loose");
        let rows = [
            (format!("{base}-null-ver"), None, Some(0)),
            (format!("{base}-null-nb"), Some(0), None),
            (format!("{base}-neg-ver"), Some(-3), Some(0)),
            (format!("{base}-neg-nb"), Some(0), Some(-1)),
        ];
        for (id, v, nb) in &rows {
            sqlx::query("INSERT INTO jr_app.loose VALUES ($1, $2, $3)")
                .bind(id)
                .bind(v)
                .bind(nb)
                .execute(&pool)
                .await
                .unwrap();
        }
        let store = PostgresUsersStore::new(pool.clone(), UsersTable::new("jr_app.loose").unwrap());
        for (id, v, nb) in &rows {
            assert!(store.load(id).await.is_err(), "{id}");
            assert!(
                !store
                    .bump_version(id)
                    .await
                    .unwrap_err()
                    .is_unknown_subject()
            );
            assert!(
                !store
                    .revoke_before(id, 10)
                    .await
                    .unwrap_err()
                    .is_unknown_subject()
            );
            let now: (Option<i64>, Option<i64>) = sqlx::query_as(
                "SELECT token_version, tokens_not_before FROM jr_app.loose WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
            assert_eq!(now, (*v, *nb), "{id}: untouched");
        }
        let guard = Guard::builder(keys(), store).build().unwrap();
        let err = guard.bump_version(&rows[0].0).await.unwrap_err();
        assert_eq!(err.code(), "store_unavailable");
    }

    #[tokio::test]
    async fn rollback_changes_nothing_and_commit_revokes_at_once_on_that_guard() {
        let pool = pool().await;
        let sub = common::unique("pg-tx");
        let store = PostgresUsersStore::new(pool.clone(), table());
        common::conformance::TestStore::put(&store, &sub, Cutoff::default()).await;
        let guard = Guard::builder(keys(), store).build().unwrap();
        let token = guard.issue(&sub, &()).await.unwrap();
        assert!(guard.validate::<()>(&token).await.is_ok());
        let change_email = |email: &'static str| {
            sqlx::query("UPDATE jr_app.\"user\" SET email = $1 WHERE id = $2")
                .bind(email)
                .bind(sub.clone())
        };

        let mut tx = pool.begin().await.unwrap();
        change_email("new").execute(&mut *tx).await.unwrap();
        guard.store().bump_version_in(&mut tx, &sub).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(
            guard.store().load(&sub).await.unwrap(),
            Some(Cutoff::default())
        );
        guard.clear_cache();
        assert!(guard.validate::<()>(&token).await.is_ok());

        let mut tx = pool.begin().await.unwrap();
        change_email("new").execute(&mut *tx).await.unwrap();
        let cutoff = guard.store().bump_version_in(&mut tx, &sub).await.unwrap();
        // Until the commit, other connections still read the old row.
        assert_eq!(
            guard.store().load(&sub).await.unwrap(),
            Some(Cutoff::default())
        );
        tx.commit().await.unwrap();
        applying_the_commit_revokes(&guard, &sub, cutoff, &token).await;

        // An unknown user in a transaction leaves the transaction usable.
        let mut tx = pool.begin().await.unwrap();
        let err = guard
            .store()
            .revoke_before_in(&mut tx, &common::unique("pg-nobody"), 5)
            .await
            .unwrap_err();
        assert!(err.is_unknown_subject());
        change_email("newer").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();

        // Deleted: the guard's revocations answer unknown_subject.
        sqlx::query("DELETE FROM jr_app.\"user\" WHERE id = $1")
            .bind(&sub)
            .execute(&pool)
            .await
            .unwrap();
        assert!(matches!(
            guard.bump_version(&sub).await.unwrap_err(),
            Error::UnknownSubject
        ));
        assert_eq!(guard.store().load(&sub).await.unwrap(), None);
    }

    #[tokio::test]
    async fn the_cutoff_table_store_writes_inside_a_transaction() {
        let store = PostgresStore::connect(&common::server_url("POSTGRES_URL"))
            .await
            .unwrap();
        let sub = common::unique("pg-cutoff-tx");
        let registered = store.insert(&sub, Cutoff::default()).await.unwrap();
        let mut tx = store.pool().begin().await.unwrap();
        store.bump_version_in(&mut tx, &sub).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(store.load(&sub).await.unwrap(), Some(registered));
        let mut tx = store.pool().begin().await.unwrap();
        let cutoff = store
            .revoke_before_in(&mut tx, &sub, 4_000_000_041)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(cutoff, Cutoff::new(0, 4_000_000_042));
        assert_eq!(store.load(&sub).await.unwrap(), Some(cutoff));
    }
}

/// The guard's revocation methods answer a store's unknown-subject error
/// as `unknown_subject`, whatever the store.
#[tokio::test]
async fn a_store_reporting_an_unknown_subject_is_answered_401_not_503() {
    use jwt_revoke::{Cutoff, CutoffStore, StoreError};

    struct NoUpsert;
    impl CutoffStore for NoUpsert {
        async fn load(&self, _: &str) -> Result<Option<Cutoff>, StoreError> {
            Ok(None)
        }
        async fn bump_version(&self, _: &str) -> Result<Cutoff, StoreError> {
            Err(StoreError::unknown_subject())
        }
        async fn revoke_before(&self, _: &str, _: i64) -> Result<Cutoff, StoreError> {
            Err(StoreError::unknown_subject())
        }
    }
    let guard = Guard::builder(keys(), NoUpsert).build().unwrap();
    let err = guard.bump_version("ghost").await.unwrap_err();
    assert_eq!((err.code(), err.status()), ("unknown_subject", 401));
    let err = guard.revoke_before("ghost", 0).await.unwrap_err();
    assert_eq!((err.code(), err.status()), ("unknown_subject", 401));
    assert!(!StoreError::msg("down").is_unknown_subject());
    assert!(StoreError::unknown_subject().is_unknown_subject());
}
