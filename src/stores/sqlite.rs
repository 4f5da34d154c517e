//! A [`CutoffStore`](crate::CutoffStore) on SQLite, through sqlx.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::store::StoreError;
use crate::stores::sql::sql_store;

sql_store! {
    /// Cutoffs in an SQLite database: one row per subject in
    /// `jwt_revoke_cutoffs`, the global cutoff in `jwt_revoke_global`.
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
    /// store.insert("alice", Cutoff::default()).await?;
    /// assert_eq!(store.bump_version("alice").await?.version, 1);
    /// # Ok::<(), jwt_revoke::StoreError>(())
    /// # }).unwrap();
    /// ```
    store: SqliteStore,
    pool: SqlitePool,
    schema: include_str!("../../migrations/sqlite.sql"),
    load: "SELECT token_version, not_before FROM jwt_revoke_cutoffs WHERE sub = ?1",
    bump: "INSERT INTO jwt_revoke_cutoffs (sub, token_version, not_before) VALUES (?1, 1, 0) \
           ON CONFLICT (sub) DO UPDATE SET token_version = token_version + 1 \
           WHERE token_version < 9223372036854775807 \
           RETURNING token_version, not_before",
    revoke_before: "INSERT INTO jwt_revoke_cutoffs (sub, token_version, not_before) VALUES (?1, 0, ?2) \
                    ON CONFLICT (sub) DO UPDATE SET not_before = MAX(not_before, excluded.not_before) \
                    RETURNING token_version, not_before",
    merge: "INSERT INTO jwt_revoke_cutoffs (sub, token_version, not_before) VALUES (?1, ?2, ?3) \
            ON CONFLICT (sub) DO UPDATE SET \
              token_version = MAX(token_version, excluded.token_version), \
              not_before = MAX(not_before, excluded.not_before) \
            RETURNING token_version, not_before",
    remove: "DELETE FROM jwt_revoke_cutoffs WHERE sub = ?1",
    load_global: "SELECT not_before FROM jwt_revoke_global WHERE id = 1",
    revoke_all_before: "INSERT INTO jwt_revoke_global (id, not_before) VALUES (1, ?1) \
                        ON CONFLICT (id) DO UPDATE SET not_before = MAX(not_before, excluded.not_before) \
                        RETURNING not_before",
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (e.g.
    /// `sqlite://app.db` or `sqlite::memory:`) and applies the schema.
    ///
    /// The file is opened in WAL mode with a 5 s busy timeout, so readers do
    /// not block the writer. An in-memory database uses a single connection
    /// (each connection of `sqlite::memory:` would be a separate database).
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
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { 8 })
            .connect_with(options)
            .await
            .map_err(StoreError::new)?;
        let store = SqliteStore::new(pool);
        store.migrate().await?;
        Ok(store)
    }
}
