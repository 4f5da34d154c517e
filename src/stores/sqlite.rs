//! A [`CutoffStore`](crate::CutoffStore) and
//! [`SessionStore`](crate::SessionStore) on SQLite, through sqlx.
//!
//! # Schema
//!
//! The tables are in [`SqliteStore::SCHEMA`] (the file `migrations/sqlite.sql`
//! of the crate): plain, idempotent SQL (`CREATE TABLE IF NOT EXISTS`) that
//! [`SqliteStore::migrate`] runs, and that [`SqliteStore::connect`] runs for
//! you. It is deliberately not an sqlx migration (`sqlx::migrate!`): sqlx's
//! migrator records what it applied in the database's `_sqlx_migrations`
//! table, which belongs to the host application, and foreign entries there
//! break the host's own migrations. Hosts that manage their schema with a
//! migration tool copy `SCHEMA` into one of their migrations instead of
//! calling `migrate`. [`SqliteStore::check`] tells at startup whether the
//! tables are there: a store without them fails every call, with an error
//! that names the missing table and this fix.
//!
//! Versions and session generations are `u64` in Rust and `INTEGER`
//! (64-bit signed) in SQLite: one that does not fit either way is a
//! [`StoreError`], never a wrap.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::store::StoreError;
use crate::stores::sql::sql_store;

sql_store! {
    /// Cutoffs and sessions in an SQLite database: one row per subject in
    /// `jwt_revoke_cutoffs`, the global cutoff in `jwt_revoke_global`, one
    /// row per session (a [`SessionStore`](crate::SessionStore)) in
    /// `jwt_revoke_sessions`.
    ///
    /// Every write is one atomic `INSERT … ON CONFLICT … DO UPDATE …
    /// RETURNING` statement, so concurrent bumps never lose an increment and
    /// `not_before` only grows.
    ///
    /// ```
    /// use jwt_revoke::{Cutoff, CutoffStore, SqliteStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = SqliteStore::connect("sqlite::memory:").await?;
    /// store.check().await?; // the tables are there (`connect` migrated)
    /// store.insert("alice", Cutoff::default()).await?;
    /// assert_eq!(store.bump_version("alice").await?.version, 1);
    ///
    /// // Over a pool of your own, nothing migrated: the error says what to do.
    /// let pool = jwt_revoke::sqlx::SqlitePool::connect("sqlite::memory:").await?;
    /// let bare = SqliteStore::new(pool);
    /// let err = bare.check().await.unwrap_err();
    /// assert!(err.to_string().contains("run SqliteStore::migrate()"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    store: SqliteStore,
    pool: SqlitePool,
    conn: sqlx::SqliteConnection,
    columns: crate::stores::sql::sqlite_columns,
    schema: include_str!("../../migrations/sqlite.sql"),
    load: "SELECT token_version, not_before FROM jwt_revoke_cutoffs WHERE sub = ?1",
    // A row a write creates starts after now (`Cutoff::created`): the
    // database's clock, plus two seconds.
    bump: "INSERT INTO jwt_revoke_cutoffs (sub, token_version, not_before) \
           VALUES (?1, 1, CAST(strftime('%s', 'now') AS INTEGER) + 2) \
           ON CONFLICT (sub) DO UPDATE SET token_version = token_version + 1 \
           WHERE token_version < 9223372036854775807 \
           RETURNING token_version, not_before",
    revoke_before: "INSERT INTO jwt_revoke_cutoffs (sub, token_version, not_before) \
                    VALUES (?1, 0, MAX(?2, CAST(strftime('%s', 'now') AS INTEGER) + 2)) \
                    ON CONFLICT (sub) DO UPDATE SET not_before = MAX(not_before, ?2) \
                    RETURNING token_version, not_before",
    merge: "INSERT INTO jwt_revoke_cutoffs (sub, token_version, not_before) \
            VALUES (?1, ?2, MAX(?3, CAST(strftime('%s', 'now') AS INTEGER) + 2)) \
            ON CONFLICT (sub) DO UPDATE SET \
              token_version = MAX(token_version, ?2), \
              not_before = MAX(not_before, ?3) \
            RETURNING token_version, not_before",
    remove: "DELETE FROM jwt_revoke_cutoffs WHERE sub = ?1",
    load_global: "SELECT not_before FROM jwt_revoke_global WHERE id = 1",
    recreate_global: "INSERT INTO jwt_revoke_global (id, not_before) \
                      VALUES (1, CAST(strftime('%s', 'now') AS INTEGER) + 2) \
                      ON CONFLICT (id) DO UPDATE SET not_before = not_before \
                      RETURNING not_before",
    revoke_all_before: "INSERT INTO jwt_revoke_global (id, not_before) VALUES (1, ?1) \
                        ON CONFLICT (id) DO UPDATE SET not_before = MAX(not_before, excluded.not_before) \
                        RETURNING not_before",
}

impl SqliteStore {
    /// How long [`SqliteStore::connect`]'s pool waits for a free connection
    /// before a call fails.
    pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

    /// Opens (creating if missing) the database at `url` (e.g.
    /// `sqlite://app.db` or `sqlite::memory:`) and applies the schema.
    ///
    /// The file is opened in WAL mode with a 5 s busy timeout, so readers do
    /// not block the writer.
    ///
    /// The pool waits at most [`Self::ACQUIRE_TIMEOUT`] (2 s) for a
    /// connection (sqlx's default is 30 s), so a call made while every
    /// connection is stuck fails with a [`StoreError`] quickly instead of
    /// holding the request. Build your own pool with `SqlitePoolOptions` and
    /// [`SqliteStore::new`] for other settings.
    ///
    /// An in-memory database (`sqlite::memory:`) lives only as long as a
    /// connection to it is open, so it gets exactly one connection that the
    /// pool never closes for being idle or old (sqlx's defaults would drop
    /// it after 10 or 30 minutes, and every cutoff with it).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::new)?
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = if in_memory {
            options
        } else {
            options.journal_mode(SqliteJournalMode::Wal)
        };
        let pool_options = if in_memory {
            SqlitePoolOptions::new()
                .min_connections(1)
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(8)
        };
        let pool_options = pool_options.acquire_timeout(Self::ACQUIRE_TIMEOUT);
        let pool = pool_options
            .connect_with(options)
            .await
            .map_err(StoreError::new)?;
        let store = SqliteStore::new(pool);
        store.migrate().await?;
        Ok(store)
    }
}
