//! Cutoffs kept in two columns of the host's own users table, for SQLite
//! ([`SqliteUsersStore`]) and PostgreSQL ([`PostgresUsersStore`]), through
//! sqlx.
//!
//! Where [`SqliteStore`](crate::SqliteStore) and
//! [`PostgresStore`](crate::PostgresStore) keep a table of their own, these
//! stores read and write a version and a `not_before` column on the table
//! that already holds one row per user. [`UsersTable`] names the table and
//! its columns:
//!
//! ```sql
//! ALTER TABLE users ADD COLUMN token_version BIGINT NOT NULL DEFAULT 0 CHECK (token_version >= 0);
//! ALTER TABLE users ADD COLUMN tokens_not_before BIGINT NOT NULL DEFAULT 0 CHECK (tokens_not_before >= 0);
//! ```
//!
//! ([`SqliteUsersStore::migration_sql`] and
//! [`PostgresUsersStore::migration_sql`] give this SQL for the configured
//! names, to copy into the host's migrations.)
//!
//! # What differs from the cutoff-table stores
//!
//! - **No upsert.** The host creates and deletes users; the store never
//!   does. `load` of an id with no row is `None` (the guard answers
//!   `unknown_subject`), and `bump_version` / `revoke_before` of an id with
//!   no row fail with [`StoreError::unknown_subject`], which the guard's
//!   revocation methods answer as [`Error::UnknownSubject`], not as a 503:
//!   a revocation racing the deletion of the user never brings the row
//!   back.
//! - **Writes are one `UPDATE … RETURNING`** of the user's row: the version
//!   is incremented in the database, `not_before` becomes
//!   `max(not_before, at + 1)` (saturating), and neither moves backwards.
//! - **Rows fail closed.** A `NULL`, a negative value, a value that is not an
//!   integer (SQLite stores any type in any column) or a version at its
//!   maximum is a [`StoreError`] (the guard answers 503), never read as 0,
//!   and the writes leave such a row untouched.
//! - **The global cutoff** needs a one-row table, named with
//!   [`UsersTable::global_table`], of the shape of the shipped
//!   `jwt_revoke_global` (`id INTEGER PRIMARY KEY CHECK (id = 1), not_before
//!   BIGINT NOT NULL`). Without one, `load_global` is `0` and
//!   `revoke_all_before` fails as unsupported.
//! - **Writes inside the host's transaction**: `bump_version_in(&mut *tx,
//!   sub)` and `revoke_before_in(&mut *tx, sub, at)`, then, after the
//!   commit, [`Guard::apply_committed`](crate::Guard::apply_committed).
//!
//! # Names and ids
//!
//! Every name is validated when it is set: an identifier is
//! `[A-Za-z_][A-Za-z0-9_]*` of at most 63 bytes (PostgreSQL would silently
//! truncate a longer one), the table names may be schema-qualified
//! (`app.users`), and each part is written double-quoted. Nothing else is
//! accepted, so a name can never carry SQL. Quoted names are matched
//! exactly: PostgreSQL folds unquoted names to lower case, so name a table
//! created as `CREATE TABLE Users` as `"users"`.
//!
//! The id column compares the token's `sub` exactly: [`UserIds::Text`]
//! (the default) for a text column, [`UserIds::Integer`] for an integer
//! one (the `sub` must be the id's canonical decimal, `"42"`, never
//! `"042"`), [`UserIds::Uuid`] for a PostgreSQL `uuid` column (the `sub`
//! must be the canonical lower-case form). Two spellings of one user would
//! have two entries in the guard's cache, and a revocation through one
//! would not reach the other's cached tokens; for the same reason, a text
//! id column must not compare case-insensitively (`COLLATE NOCASE`,
//! `citext`). A `sub` that cannot be an id (or holds a NUL byte) is an
//! unknown subject.
//!
//! Columns are `BIGINT` in PostgreSQL (another integer type is a load
//! error) and `INTEGER` in SQLite.

use std::sync::Arc;

use crate::cutoff::Cutoff;
use crate::error::Error;
use crate::store::StoreError;

/// How the id column is compared with the token's `sub`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserIds {
    /// A text column holding the `sub` as it is (the default).
    #[default]
    Text,
    /// An integer column: the `sub` is the id in canonical decimal (`"42"`,
    /// `"-7"`; not `"042"`, `"+42"` or `" 42"`).
    Integer,
    /// A PostgreSQL `uuid` column (in SQLite, a text column holding the
    /// same form): the `sub` is the canonical lower-case UUID,
    /// `"67e55044-10b1-426f-9247-bb680e5fe0c8"`.
    Uuid,
}

/// The users table the cutoffs live on: its name, its id column and the
/// two cutoff columns, validated and quoted when set.
///
/// Defaults: id column `id` compared as text ([`UserIds::Text`]), version
/// column `token_version`, `not_before` column `tokens_not_before`, no
/// global table.
///
/// ```
/// use jwt_revoke::{UserIds, UsersTable};
///
/// let table = UsersTable::new("app.users")?
///     .id_column("user_id")?
///     .ids(UserIds::Integer)
///     .version_column("jwt_version")?
///     .not_before_column("jwt_not_before")?
///     .global_table("jwt_revoke_global")?;
/// assert_eq!(table.table(), r#""app"."users""#);
///
/// // A name is an identifier, never SQL.
/// assert!(UsersTable::new("users; DROP TABLE users").is_err());
/// assert!(UsersTable::new("users")?.id_column(r#"id" = id OR "1"#).is_err());
/// # Ok::<(), jwt_revoke::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsersTable {
    table: String,
    id: String,
    ids: UserIds,
    version: String,
    not_before: String,
    global: Option<String>,
}

/// Longest identifier PostgreSQL keeps (`NAMEDATALEN - 1`); a longer one
/// would be truncated silently and name another object.
const MAX_IDENTIFIER: usize = 63;

/// `name` as a quoted identifier; `qualified` allows one `schema.` prefix.
fn quote(name: &str, qualified: bool, what: &str) -> Result<String, Error> {
    let parts: Vec<&str> = name.split('.').collect();
    let valid = |part: &str| {
        let mut bytes = part.bytes();
        part.len() <= MAX_IDENTIFIER
            && bytes
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let shape_ok = parts.len() == 1 || (qualified && parts.len() == 2);
    if !shape_ok || !parts.iter().all(|p| valid(p)) {
        let shape = if qualified {
            "[schema.]name"
        } else {
            "a plain name"
        };
        return Err(Error::Config(format!(
            "{what} must be {shape} of [A-Za-z_][A-Za-z0-9_]* (at most {MAX_IDENTIFIER} bytes each), not {name:?}"
        )));
    }
    Ok(parts
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join("."))
}

impl UsersTable {
    /// The table `name` (`users`, or schema-qualified `app.users`) with the
    /// default columns.
    ///
    /// Errors: [`Error::Config`] when `name` is not an identifier (see the
    /// [module](self) docs).
    pub fn new(name: &str) -> Result<Self, Error> {
        Ok(UsersTable {
            table: quote(name, true, "the users table")?,
            id: quote("id", false, "the id column")?,
            ids: UserIds::Text,
            version: quote("token_version", false, "the version column")?,
            not_before: quote("tokens_not_before", false, "the not_before column")?,
            global: None,
        })
    }

    /// The column holding the user's id, which tokens carry as `sub`
    /// (default `id`). Errors as [`UsersTable::new`], without a schema.
    pub fn id_column(mut self, name: &str) -> Result<Self, Error> {
        self.id = quote(name, false, "the id column")?;
        Ok(self)
    }

    /// How the id column compares with `sub` (default [`UserIds::Text`]).
    pub fn ids(mut self, ids: UserIds) -> Self {
        self.ids = ids;
        self
    }

    /// The column holding the token version (default `token_version`).
    pub fn version_column(mut self, name: &str) -> Result<Self, Error> {
        self.version = quote(name, false, "the version column")?;
        Ok(self)
    }

    /// The column holding `not_before`, Unix seconds (default
    /// `tokens_not_before`).
    pub fn not_before_column(mut self, name: &str) -> Result<Self, Error> {
        self.not_before = quote(name, false, "the not_before column")?;
        Ok(self)
    }

    /// A one-row table for the global cutoff (default: none, so
    /// `load_global` is `0` and `revoke_all_before` is unsupported): columns
    /// `id` (always 1) and `not_before`, as the shipped `jwt_revoke_global`,
    /// which may be named here. May be schema-qualified.
    pub fn global_table(mut self, name: &str) -> Result<Self, Error> {
        self.global = Some(quote(name, true, "the global table")?);
        Ok(self)
    }

    /// The table's name as it appears in the SQL (quoted).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// How ids compare.
    pub fn user_ids(&self) -> UserIds {
        self.ids
    }

    /// `sub` as a value of the id column, or `None` when it cannot be one.
    fn key<'s>(&self, sub: &'s str) -> Option<Key<'s>> {
        if !crate::stores::storable(sub) {
            return None;
        }
        match self.ids {
            UserIds::Text => Some(Key::Text(sub)),
            UserIds::Integer => sub
                .parse::<i64>()
                .ok()
                .filter(|n| n.to_string() == sub)
                .map(Key::Integer),
            UserIds::Uuid => canonical_uuid(sub).then_some(Key::Text(sub)),
        }
    }
}

/// `8-4-4-4-12` lower-case hex digits.
fn canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// A subject as a value of the id column.
#[derive(Debug, Clone, Copy)]
enum Key<'s> {
    Text(&'s str),
    Integer(i64),
}

/// The SQL dialects of the users-table stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Sqlite,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
}

/// The statements of one users-table store, written once at construction
/// from validated, quoted names.
#[derive(Debug)]
struct Queries {
    load: String,
    bump: String,
    revoke: String,
    load_global: Option<String>,
    revoke_all: Option<String>,
    migration: String,
}

impl Queries {
    fn new(t: &UsersTable, dialect: Dialect) -> Self {
        let sqlite = dialect == Dialect::Sqlite;
        let (p1, p2, max) = if sqlite {
            ("?1", "?2", "MAX")
        } else {
            ("$1", "$2", "GREATEST")
        };
        // SQLite holds any value in any column: read only integers (another
        // type reads as NULL, which fails closed), and write only over them.
        let int = |col: &str| {
            if sqlite {
                format!("CASE WHEN typeof({col}) = 'integer' THEN {col} END")
            } else {
                col.to_owned()
            }
        };
        let (table, v, nb) = (&t.table, &t.version, &t.not_before);
        let id = match (dialect, t.ids) {
            (Dialect::Postgres, UserIds::Uuid) => format!("{} = CAST({p1} AS uuid)", t.id),
            // SQLite compares text with an INTEGER column as a number
            // ("042" = 42): the text of the stored id must match too, so
            // one user has one spelling (and one cache entry).
            (Dialect::Sqlite, UserIds::Text) => {
                format!("{id} = {p1} AND CAST({id} AS TEXT) = {p1}", id = t.id)
            }
            _ => format!("{} = {p1}", t.id),
        };
        let readable = format!(
            "{} IS NOT NULL AND {} IS NOT NULL AND {v} >= 0 AND {nb} >= 0",
            int(v),
            int(nb)
        );
        let returning = format!("RETURNING {}, {}", int(v), int(nb));
        let integer = if sqlite { "INTEGER" } else { "BIGINT" };
        let mut migration = format!(
            "ALTER TABLE {table} ADD COLUMN {v} {integer} NOT NULL DEFAULT 0 CHECK ({v} >= 0);\n\
             ALTER TABLE {table} ADD COLUMN {nb} {integer} NOT NULL DEFAULT 0 CHECK ({nb} >= 0);\n"
        );
        let (load_global, revoke_all) = match &t.global {
            None => (None, None),
            Some(g) => {
                migration.push_str(&format!(
                    "CREATE TABLE IF NOT EXISTS {g} (\n    id INTEGER PRIMARY KEY CHECK (id = 1),\n    not_before {integer} NOT NULL\n);\n"
                ));
                (
                    Some(format!(
                        "SELECT {} FROM {g} WHERE id = 1",
                        int("not_before")
                    )),
                    Some(format!(
                        "INSERT INTO {g} AS g (id, not_before) VALUES (1, {p1}) \
                         ON CONFLICT (id) DO UPDATE SET not_before = {max}(g.not_before, EXCLUDED.not_before) \
                         RETURNING {}",
                        int("not_before")
                    )),
                )
            }
        };
        Queries {
            load: format!("SELECT {}, {} FROM {table} WHERE {id}", int(v), int(nb)),
            bump: format!(
                "UPDATE {table} SET {v} = {v} + 1 \
                 WHERE {id} AND {readable} AND {v} < 9223372036854775807 {returning}"
            ),
            revoke: format!(
                "UPDATE {table} SET {nb} = {max}({nb}, {p2}) WHERE {id} AND {readable} {returning}"
            ),
            load_global,
            revoke_all,
            migration,
        }
    }
}

/// A user's row `(version, not_before)` as a cutoff: `NULL` (or, in
/// SQLite, not an integer) and negative values are errors.
fn cutoff_from_columns(row: (Option<i64>, Option<i64>)) -> Result<Cutoff, StoreError> {
    match row {
        (Some(version), Some(not_before)) if not_before >= 0 => {
            crate::stores::sql::cutoff_from_row((version, not_before))
        }
        (Some(_), Some(not_before)) => Err(StoreError::msg(format!(
            "the user's not_before {not_before} is negative"
        ))),
        _ => Err(StoreError::msg(
            "the user's token version or not_before is NULL or not an integer",
        )),
    }
}

/// The global table's `not_before`: `0` without a row; `NULL` (or not an
/// integer) and negative values are errors.
fn global_from_column(row: Option<(Option<i64>,)>) -> Result<i64, StoreError> {
    match row {
        None => Ok(0),
        Some((Some(nb),)) if nb >= 0 => Ok(nb),
        Some(_) => Err(StoreError::msg(
            "the global not_before is NULL, negative or not an integer",
        )),
    }
}

/// Generates a users-table store for one sqlx database.
macro_rules! users_store {
    (
        $(#[$meta:meta])*
        store: $name:ident,
        db: $db:ty,
        pool: $pool:ty,
        conn: $conn:ty,
        dialect: $dialect:expr $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name {
            pool: $pool,
            table: Arc<UsersTable>,
            queries: Arc<Queries>,
        }

        impl $name {
            /// A store over the host's pool and users table. The columns
            /// must exist ([`Self::migration_sql`]).
            pub fn new(pool: $pool, table: UsersTable) -> Self {
                let queries = Arc::new(Queries::new(&table, $dialect));
                Self {
                    pool,
                    table: Arc::new(table),
                    queries,
                }
            }

            /// The underlying pool.
            pub fn pool(&self) -> &$pool {
                &self.pool
            }

            /// The table and columns this store reads and writes.
            pub fn table(&self) -> &UsersTable {
                &self.table
            }

            /// SQL for the host's migrations: adds the two columns
            /// (`NOT NULL DEFAULT 0`, checked non-negative) and, when
            /// configured, creates the global table. Not idempotent (adding
            /// a column twice fails): run it once, as a migration.
            pub fn migration_sql(&self) -> &str {
                &self.queries.migration
            }

            fn bind<'q, O>(
                query: sqlx::query::QueryAs<'q, $db, O, <$db as sqlx::Database>::Arguments<'q>>,
                key: Key<'q>,
            ) -> sqlx::query::QueryAs<'q, $db, O, <$db as sqlx::Database>::Arguments<'q>> {
                match key {
                    Key::Text(sub) => query.bind(sub),
                    Key::Integer(id) => query.bind(id),
                }
            }

            async fn load_key(&self, conn: &mut $conn, key: Key<'_>) -> Result<Option<Cutoff>, StoreError> {
                let row: Option<(Option<i64>, Option<i64>)> = crate::stores::sql::read_by_subject(
                    Self::bind(sqlx::query_as(&self.queries.load), key)
                        .fetch_optional(&mut *conn)
                        .await,
                )?;
                row.map(cutoff_from_columns).transpose()
            }

            /// One `UPDATE … RETURNING` of the user's row (`at`: the new
            /// `not_before` floor, for `revoke_before`). No row updated: an
            /// unknown user, or a row the update refuses to touch, which a
            /// read tells apart.
            async fn update(
                &self,
                conn: &mut $conn,
                sql: &str,
                sub: &str,
                at: Option<i64>,
            ) -> Result<Cutoff, StoreError> {
                let Some(key) = self.table.key(sub) else {
                    return Err(StoreError::unknown_subject());
                };
                let mut query = Self::bind(sqlx::query_as(sql), key);
                if let Some(at) = at {
                    query = query.bind(at);
                }
                let row = match query.fetch_optional(&mut *conn).await {
                    Ok(row) => row,
                    // Not representable in the database's encoding: no
                    // user has this id.
                    Err(e) if crate::stores::sql::unrepresentable(&e) => {
                        return Err(StoreError::unknown_subject());
                    }
                    Err(e) => return Err(StoreError::new(e)),
                };
                let Some(row) = row else {
                    // The row was not updated: find out why (an unknown
                    // user, or a row this store does not understand).
                    return match self.load_key(conn, key).await? {
                        None => Err(StoreError::unknown_subject()),
                        Some(c) if c.version == i64::MAX.unsigned_abs() => {
                            Err(StoreError::msg("token_version is at its maximum"))
                        }
                        Some(_) => Err(StoreError::msg("the user's row changed during the update; retry")),
                    };
                };
                cutoff_from_columns(row)
            }

            /// [`bump_version`](crate::CutoffStore::bump_version) on the
            /// host's own connection, typically `&mut *tx` inside its
            /// transaction, so that "change the password and log out
            /// everywhere" is one commit. The returned cutoff holds once the
            /// transaction commits: then hand it to
            /// [`Guard::apply_committed`](crate::Guard::apply_committed) so
            /// that the guard enforces it at once. After a rollback nothing
            /// changed; drop it.
            ///
            /// Errors: [`StoreError::unknown_subject`] when no row has this
            /// id; a [`StoreError`] for a row this store does not
            /// understand (left as it was) or a database failure.
            pub async fn bump_version_in(&self, conn: &mut $conn, sub: &str) -> Result<Cutoff, StoreError> {
                self.update(conn, &self.queries.bump, sub, None).await
            }

            /// [`revoke_before`](crate::CutoffStore::revoke_before) on the
            /// host's own connection or transaction (`&mut *tx`); see
            /// [`Self::bump_version_in`]. This is the store's write only: the
            /// guard's same-second rule and its
            /// [`max_future_cutoff`](crate::GuardBuilder::max_future_cutoff)
            /// check are not applied (the latter is, when the cutoff is
            /// handed to [`Guard::apply_committed`](crate::Guard::apply_committed)).
            pub async fn revoke_before_in(&self, conn: &mut $conn, sub: &str, at: i64) -> Result<Cutoff, StoreError> {
                self.update(conn, &self.queries.revoke, sub, Some(at.saturating_add(1))).await
            }

            async fn connection(&self) -> Result<sqlx::pool::PoolConnection<$db>, StoreError> {
                self.pool.acquire().await.map_err(StoreError::new)
            }
        }

        impl crate::store::CutoffStore for $name {
            /// The user's row; `None` when there is none, or when `sub`
            /// cannot be an id (a NUL byte, not an integer for integer ids,
            /// not representable in the database's encoding).
            async fn load(&self, sub: &str) -> Result<Option<Cutoff>, StoreError> {
                let Some(key) = self.table.key(sub) else {
                    return Ok(None);
                };
                let mut conn = self.connection().await?;
                self.load_key(&mut conn, key).await
            }

            /// Fails with [`StoreError::unknown_subject`] when the user does
            /// not exist: the row is never created.
            async fn bump_version(&self, sub: &str) -> Result<Cutoff, StoreError> {
                let mut conn = self.connection().await?;
                self.bump_version_in(&mut conn, sub).await
            }

            /// Fails with [`StoreError::unknown_subject`] when the user does
            /// not exist: the row is never created.
            async fn revoke_before(&self, sub: &str, at: i64) -> Result<Cutoff, StoreError> {
                let mut conn = self.connection().await?;
                self.revoke_before_in(&mut conn, sub, at).await
            }

            /// `0` without a [global table](UsersTable::global_table) or
            /// without its row.
            async fn load_global(&self) -> Result<i64, StoreError> {
                let Some(sql) = &self.queries.load_global else {
                    return Ok(0);
                };
                let row: Option<(Option<i64>,)> = sqlx::query_as(sql)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::new)?;
                global_from_column(row)
            }

            /// Unsupported without a [global table](UsersTable::global_table).
            async fn revoke_all_before(&self, at: i64) -> Result<i64, StoreError> {
                let Some(sql) = &self.queries.revoke_all else {
                    return Err(StoreError::unsupported(
                        "revoke_all_before without a global table (UsersTable::global_table)",
                    ));
                };
                let row: (Option<i64>,) = sqlx::query_as(sql)
                    .bind(at.saturating_add(1))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(StoreError::new)?;
                global_from_column(Some(row))
            }
        }
    };
}

#[cfg(feature = "sqlite")]
users_store! {
    /// Cutoffs on the host's users table in SQLite: see the
    /// [module](self) docs for the columns and the rules.
    ///
    /// ```
    /// use jwt_revoke::sqlx::sqlite::SqlitePoolOptions;
    /// use jwt_revoke::{Cutoff, CutoffStore, SqliteUsersStore, UsersTable};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let pool = SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await?;
    /// jwt_revoke::sqlx::raw_sql(
    ///     "CREATE TABLE users (id TEXT PRIMARY KEY, password_hash TEXT NOT NULL, \
    ///        token_version INTEGER NOT NULL DEFAULT 0, tokens_not_before INTEGER NOT NULL DEFAULT 0);
    ///      INSERT INTO users (id, password_hash) VALUES ('alice', 'x');",
    /// )
    /// .execute(&pool)
    /// .await?;
    /// let store = SqliteUsersStore::new(pool.clone(), UsersTable::new("users")?);
    /// assert_eq!(store.load("alice").await?, Some(Cutoff::default()));
    ///
    /// // A password change and its revocation in one transaction.
    /// let mut tx = pool.begin().await?;
    /// jwt_revoke::sqlx::query("UPDATE users SET password_hash = 'y' WHERE id = 'alice'")
    ///     .execute(&mut *tx)
    ///     .await?;
    /// let cutoff = store.bump_version_in(&mut tx, "alice").await?;
    /// tx.commit().await?;
    /// assert_eq!(cutoff, Cutoff::new(1, 0)); // then: guard.apply_committed("alice", cutoff)
    ///
    /// // No upsert: a user that does not exist stays so.
    /// assert!(store.bump_version("mallory").await.unwrap_err().is_unknown_subject());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    store: SqliteUsersStore,
    db: sqlx::Sqlite,
    pool: sqlx::SqlitePool,
    conn: sqlx::SqliteConnection,
    dialect: Dialect::Sqlite,
}

#[cfg(feature = "postgres")]
users_store! {
    /// Cutoffs on the host's users table in PostgreSQL: see the
    /// [module](self) docs for the columns and the rules. Each write is
    /// one row-locked `UPDATE … RETURNING`, so concurrent bumps from many
    /// instances never lose an increment.
    ///
    /// ```no_run
    /// use jwt_revoke::{Guard, PostgresUsersStore, UsersTable};
    ///
    /// # async fn run(guard: Guard<PostgresUsersStore>, pool: jwt_revoke::sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
    /// # let store = guard.store();
    /// let mut tx = pool.begin().await?;
    /// jwt_revoke::sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
    ///     .bind("…")
    ///     .bind("user-42")
    ///     .execute(&mut *tx)
    ///     .await?;
    /// let cutoff = store.bump_version_in(&mut tx, "user-42").await?;
    /// tx.commit().await?;
    /// guard.apply_committed("user-42", cutoff).await?;
    /// # Ok(()) }
    /// ```
    store: PostgresUsersStore,
    db: sqlx::Postgres,
    pool: sqlx::PgPool,
    conn: sqlx::PgConnection,
    dialect: Dialect::Postgres,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_identifiers_or_refused() {
        let t = UsersTable::new("app.users").unwrap();
        assert_eq!(t.table(), "\"app\".\"users\"");
        for bad in [
            "",
            "users;",
            "users\"",
            "a.b.c",
            ".users",
            "users.",
            "1users",
            "us ers",
            "usérs",
            "users--",
            "\"users\"",
        ] {
            assert!(UsersTable::new(bad).is_err(), "{bad:?}");
        }
        assert!(UsersTable::new(&"u".repeat(63)).is_ok());
        assert!(UsersTable::new(&"u".repeat(64)).is_err());
        let t = UsersTable::new("users").unwrap();
        assert!(
            t.clone().id_column("app.id").is_err(),
            "columns take no schema"
        );
        assert!(t.clone().version_column("v\0").is_err());
        assert_eq!(
            t.clone().not_before_column("_nb2").unwrap().not_before,
            "\"_nb2\""
        );
    }

    #[test]
    fn only_canonical_ids_are_keys() {
        let t = UsersTable::new("users").unwrap().ids(UserIds::Integer);
        assert!(matches!(t.key("42"), Some(Key::Integer(42))));
        assert!(matches!(t.key("-7"), Some(Key::Integer(-7))));
        for bad in [
            "042",
            "+42",
            " 42",
            "42 ",
            "4.2",
            "",
            "9223372036854775808",
            "x",
        ] {
            assert!(t.key(bad).is_none(), "{bad:?}");
        }
        let t = t.ids(UserIds::Uuid);
        assert!(t.key("67e55044-10b1-426f-9247-bb680e5fe0c8").is_some());
        for bad in [
            "67E55044-10B1-426F-9247-BB680E5FE0C8",
            "67e5504410b1426f9247bb680e5fe0c8",
            "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
            "67e55044-10b1-426f-9247-bb680e5fe0cg",
        ] {
            assert!(t.key(bad).is_none(), "{bad:?}");
        }
        assert!(UsersTable::new("users").unwrap().key("a\0b").is_none());
    }
}
