//! What the SQL stores share: row conversion and the store implementation,
//! generated once for each sqlx database by `sql_store!`.
//!
//! Schemas are shipped as plain SQL (`SCHEMA`) and applied with `migrate()`
//! (`CREATE TABLE IF NOT EXISTS`), not through sqlx's migrator: that one
//! records its migrations in the host's own `_sqlx_migrations` table, where
//! ours would break the host's migration history. Hosts that manage their
//! schema themselves copy `SCHEMA` into their own migrations.

use crate::cutoff::Cutoff;
use crate::store::StoreError;

/// A row `(token_version, not_before)` as a cutoff. A negative version
/// cannot come from this crate's writes (the schema forbids it); it is
/// reported, not wrapped.
pub(crate) fn cutoff_from_row((version, not_before): (i64, i64)) -> Result<Cutoff, StoreError> {
    let version = u64::try_from(version)
        .map_err(|_| StoreError::msg(format!("token_version {version} is out of range")))?;
    Ok(Cutoff::new(version, not_before))
}

/// A cutoff's version as a SQL `BIGINT`.
pub(crate) fn version_to_sql(version: u64) -> Result<i64, StoreError> {
    i64::try_from(version)
        .map_err(|_| StoreError::msg(format!("token_version {version} does not fit in BIGINT")))
}

/// Whether `e` says the database cannot represent a bound value in its
/// encoding (PostgreSQL `22P05` untranslatable_character, `22021`
/// character_not_in_repertoire): a subject a non-UTF-8 database (LATIN1, …)
/// cannot hold. Such a subject cannot be in the table either.
pub(crate) fn unrepresentable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if matches!(db.code().as_deref(), Some("22P05" | "22021")))
}

/// The outcome of a read by subject: a subject the database's encoding
/// cannot represent cannot be in a table, so it reads as absent (`None`),
/// not as a database error that the guard would answer as an outage.
pub(crate) fn read_by_subject<T>(
    result: Result<Option<T>, sqlx::Error>,
) -> Result<Option<T>, StoreError> {
    match result {
        Ok(row) => Ok(row),
        Err(e) if unrepresentable(&e) => Ok(None),
        Err(e) => Err(StoreError::new(e)),
    }
}

/// A database error; the one for a subject the database's encoding cannot
/// represent says so.
pub(crate) fn write_error(e: sqlx::Error) -> StoreError {
    if unrepresentable(&e) {
        StoreError::msg(format!(
            "subject cannot be represented in the database's encoding: {e}"
        ))
    } else {
        StoreError::new(e)
    }
}

/// Generates a `CutoffStore` over an sqlx pool from the dialect's SQL.
macro_rules! sql_store {
    (
        $(#[$meta:meta])*
        store: $name:ident,
        pool: $pool:ty,
        conn: $conn:ty,
        schema: $schema:expr,
        load: $load:expr,
        bump: $bump:expr,
        revoke_before: $revoke:expr,
        merge: $merge:expr,
        remove: $remove:expr,
        load_global: $load_global:expr,
        revoke_all_before: $revoke_all:expr $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name {
            pool: $pool,
        }

        impl $name {
            /// The schema this store needs: idempotent SQL
            /// (`CREATE TABLE IF NOT EXISTS`), applied by [`Self::migrate`].
            ///
            /// Not an sqlx migration on purpose: sqlx's migrator would record
            /// it in the host's own `_sqlx_migrations` table and break the
            /// host's migration history. Copy it into your own migrations if
            /// a migration tool owns your schema.
            pub const SCHEMA: &'static str = $schema;

            /// A store over an existing pool. Call [`Self::migrate`] (or apply
            /// [`Self::SCHEMA`] in your own migrations) before use.
            pub fn new(pool: $pool) -> Self {
                Self { pool }
            }

            /// The underlying pool.
            pub fn pool(&self) -> &$pool {
                &self.pool
            }

            /// Creates the tables if they do not exist.
            pub async fn migrate(&self) -> Result<(), $crate::StoreError> {
                sqlx::raw_sql(Self::SCHEMA)
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err($crate::StoreError::new)
            }

            /// Adds a subject (a registered user). If it exists, the cutoffs
            /// are merged by maximum: a cutoff never moves backwards.
            ///
            /// A subject containing a NUL byte is an error: no store holds
            /// one (PostgreSQL's `TEXT` cannot); so is one the database's
            /// encoding cannot represent (a non-UTF-8 PostgreSQL database).
            pub async fn insert(&self, sub: &str, cutoff: $crate::Cutoff) -> Result<$crate::Cutoff, $crate::StoreError> {
                $crate::stores::check_storable(sub)?;
                let row: (i64, i64) = sqlx::query_as($merge)
                    .bind(sub)
                    .bind($crate::stores::sql::version_to_sql(cutoff.version)?)
                    .bind(cutoff.not_before)
                    .fetch_one(&self.pool)
                    .await
                    .map_err($crate::stores::sql::write_error)?;
                $crate::stores::sql::cutoff_from_row(row)
            }

            /// [`bump_version`](crate::CutoffStore::bump_version) on the
            /// host's own connection, typically `&mut *tx` inside its
            /// transaction, so that "change the password and log out
            /// everywhere" is one commit. The returned cutoff holds once the
            /// transaction commits: then hand it to
            /// [`Guard::apply_committed`](crate::Guard::apply_committed) so
            /// that the guard enforces it at once. After a rollback nothing
            /// changed; drop it.
            pub async fn bump_version_in(&self, conn: &mut $conn, sub: &str) -> Result<$crate::Cutoff, $crate::StoreError> {
                $crate::stores::check_storable(sub)?;
                let row: Option<(i64, i64)> = sqlx::query_as($bump)
                    .bind(sub)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err($crate::stores::sql::write_error)?;
                let row = row.ok_or_else(|| $crate::StoreError::msg("token_version is at its maximum"))?;
                $crate::stores::sql::cutoff_from_row(row)
            }

            /// [`revoke_before`](crate::CutoffStore::revoke_before) on the
            /// host's own connection or transaction (`&mut *tx`); see
            /// [`Self::bump_version_in`]. This is the store's write only: the
            /// guard's same-second rule and its
            /// [`max_future_cutoff`](crate::GuardBuilder::max_future_cutoff)
            /// check are not applied (the latter is, when the cutoff is
            /// handed to [`Guard::apply_committed`](crate::Guard::apply_committed)).
            pub async fn revoke_before_in(&self, conn: &mut $conn, sub: &str, at: i64) -> Result<$crate::Cutoff, $crate::StoreError> {
                $crate::stores::check_storable(sub)?;
                let row: (i64, i64) = sqlx::query_as($revoke)
                    .bind(sub)
                    .bind(at.saturating_add(1))
                    .fetch_one(&mut *conn)
                    .await
                    .map_err($crate::stores::sql::write_error)?;
                $crate::stores::sql::cutoff_from_row(row)
            }

            /// Forgets a subject (a deleted user): its tokens are rejected as
            /// unknown once the guard's cache entry expires. Returns whether it
            /// existed.
            pub async fn remove(&self, sub: &str) -> Result<bool, $crate::StoreError> {
                if !$crate::stores::storable(sub) {
                    return Ok(false);
                }
                let done = match sqlx::query($remove)
                    .bind(sub)
                    .execute(&self.pool)
                    .await
                {
                    Ok(done) => done,
                    Err(e) if $crate::stores::sql::unrepresentable(&e) => return Ok(false),
                    Err(e) => return Err($crate::StoreError::new(e)),
                };
                Ok(done.rows_affected() > 0)
            }
        }

        impl $crate::store::CutoffStore for $name {
            /// A subject containing a NUL byte cannot be in the table
            /// (PostgreSQL's `TEXT` cannot hold one, and no shipped store
            /// writes one), nor one the database's encoding cannot represent
            /// (PostgreSQL SQLSTATE `22P05` or `22021`, in a non-UTF-8
            /// database): it is unknown, `Ok(None)`, not a database error
            /// that the guard would answer as an outage.
            async fn load(&self, sub: &str) -> Result<Option<$crate::Cutoff>, $crate::StoreError> {
                if !$crate::stores::storable(sub) {
                    return Ok(None);
                }
                let row: Option<(i64, i64)> = $crate::stores::sql::read_by_subject(
                    sqlx::query_as($load).bind(sub).fetch_optional(&self.pool).await,
                )?;
                row.map($crate::stores::sql::cutoff_from_row).transpose()
            }

            async fn bump_version(&self, sub: &str) -> Result<$crate::Cutoff, $crate::StoreError> {
                let mut conn = self.pool.acquire().await.map_err($crate::StoreError::new)?;
                self.bump_version_in(&mut conn, sub).await
            }

            async fn revoke_before(&self, sub: &str, at: i64) -> Result<$crate::Cutoff, $crate::StoreError> {
                let mut conn = self.pool.acquire().await.map_err($crate::StoreError::new)?;
                self.revoke_before_in(&mut conn, sub, at).await
            }

            async fn load_global(&self) -> Result<i64, $crate::StoreError> {
                let row: Option<(i64,)> = sqlx::query_as($load_global)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($crate::StoreError::new)?;
                Ok(row.map_or(0, |(nb,)| nb))
            }

            async fn revoke_all_before(&self, at: i64) -> Result<i64, $crate::StoreError> {
                let (nb,): (i64,) = sqlx::query_as($revoke_all)
                    .bind(at.saturating_add(1))
                    .fetch_one(&self.pool)
                    .await
                    .map_err($crate::StoreError::new)?;
                Ok(nb)
            }
        }
    };
}

pub(crate) use sql_store;
