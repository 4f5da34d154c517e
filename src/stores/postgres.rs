//! A [`CutoffStore`](crate::CutoffStore) and
//! [`SessionStore`](crate::SessionStore) on PostgreSQL, through sqlx.
//!
//! # Schema
//!
//! The tables are in [`PostgresStore::SCHEMA`] (the file
//! `migrations/postgres.sql` of the crate), applied by
//! [`PostgresStore::migrate`] and [`PostgresStore::connect`], or copied into
//! the host's own migrations (not an sqlx migration: sqlx's migrator would
//! record it in the host's `_sqlx_migrations` table). The store finds them
//! through the connection's `search_path`. [`PostgresStore::check`] tells
//! at startup whether they are there: a store without them fails every
//! call, with an error that names the missing table and the fix.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::store::StoreError;
use crate::stores::sql::sql_store;

sql_store! {
    /// Cutoffs and sessions in a PostgreSQL database: one row per subject in
    /// `jwt_revoke_cutoffs`, the global cutoff in `jwt_revoke_global`, one
    /// row per session (a [`SessionStore`](crate::SessionStore)) in
    /// `jwt_revoke_sessions`.
    ///
    /// Every write is one atomic `INSERT … ON CONFLICT … DO UPDATE …
    /// RETURNING` statement (row-locked by PostgreSQL), so concurrent bumps
    /// from many instances never lose an increment and `not_before` only
    /// grows (`GREATEST`).
    ///
    /// ```no_run
    /// use jwt_revoke::{CutoffStore, PostgresStore};
    ///
    /// # async fn run() -> Result<(), jwt_revoke::StoreError> {
    /// let store = PostgresStore::connect("postgres://app@127.0.0.1/app").await?;
    /// let cutoff = store.bump_version("user-42").await?;
    /// # Ok(()) }
    /// ```
    store: PostgresStore,
    pool: PgPool,
    conn: sqlx::PgConnection,
    columns: crate::stores::sql::postgres_columns,
    schema: include_str!("../../migrations/postgres.sql"),
    load: "SELECT token_version, not_before FROM jwt_revoke_cutoffs WHERE sub = $1",
    // A row a write creates starts after now (`Cutoff::created`): the
    // database's clock, plus two seconds.
    bump: "INSERT INTO jwt_revoke_cutoffs AS c (sub, token_version, not_before) \
           VALUES ($1, 1, FLOOR(EXTRACT(EPOCH FROM clock_timestamp()))::BIGINT + 2) \
           ON CONFLICT (sub) DO UPDATE SET token_version = c.token_version + 1 \
           WHERE c.token_version < 9223372036854775807 \
           RETURNING token_version, not_before",
    revoke_before: "INSERT INTO jwt_revoke_cutoffs AS c (sub, token_version, not_before) \
                    VALUES ($1, 0, GREATEST($2::BIGINT, FLOOR(EXTRACT(EPOCH FROM clock_timestamp()))::BIGINT + 2)) \
                    ON CONFLICT (sub) DO UPDATE SET not_before = GREATEST(c.not_before, $2::BIGINT) \
                    RETURNING token_version, not_before",
    merge: "INSERT INTO jwt_revoke_cutoffs AS c (sub, token_version, not_before) \
            VALUES ($1, $2, GREATEST($3::BIGINT, FLOOR(EXTRACT(EPOCH FROM clock_timestamp()))::BIGINT + 2)) \
            ON CONFLICT (sub) DO UPDATE SET \
              token_version = GREATEST(c.token_version, $2::BIGINT), \
              not_before = GREATEST(c.not_before, $3::BIGINT) \
            RETURNING token_version, not_before",
    remove: "DELETE FROM jwt_revoke_cutoffs WHERE sub = $1",
    load_global: "SELECT not_before FROM jwt_revoke_global WHERE id = 1",
    recreate_global: "INSERT INTO jwt_revoke_global AS g (id, not_before) VALUES (1, FLOOR(EXTRACT(EPOCH FROM clock_timestamp()))::BIGINT + 2) \
                      ON CONFLICT (id) DO UPDATE SET not_before = g.not_before \
                      RETURNING not_before",
    revoke_all_before: "INSERT INTO jwt_revoke_global AS g (id, not_before) VALUES (1, $1) \
                        ON CONFLICT (id) DO UPDATE SET not_before = GREATEST(g.not_before, EXCLUDED.not_before) \
                        RETURNING not_before",
}

impl PostgresStore {
    /// How long [`PostgresStore::connect`]'s pool waits for a connection
    /// (a free one, or a new one to a server that refuses or does not
    /// answer) before a call fails.
    pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

    /// Connects to `url` and applies the schema.
    ///
    /// The pool holds up to 10 connections and waits at most
    /// [`Self::ACQUIRE_TIMEOUT`] (2 s) for one: while the server is down,
    /// sqlx keeps retrying a refused connection until that deadline, so it
    /// bounds how long a cache miss waits before the guard answers
    /// `store_unavailable` (sqlx's own default is 30 s). The same bound
    /// applies to this call. For other settings, build the pool yourself
    /// with `PgPoolOptions` and use [`PostgresStore::new`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Self::ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(StoreError::new)?;
        let store = PostgresStore::new(pool);
        store.migrate().await?;
        Ok(store)
    }
}
