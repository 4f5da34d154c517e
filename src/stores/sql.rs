//! What the SQL stores share: row conversion and the store implementation,
//! generated once for each sqlx database by `sql_store!`.
//!
//! Schemas are shipped as plain SQL (`SCHEMA`) and applied with `migrate()`
//! (`CREATE TABLE IF NOT EXISTS`), not through sqlx's migrator: that one
//! records its migrations in the host's own `_sqlx_migrations` table, where
//! ours would break the host's migration history. Hosts that manage their
//! schema themselves copy `SCHEMA` into their own migrations.

use crate::cutoff::Cutoff;
use crate::session::{Rotate, Rotation, Session};
use crate::store::StoreError;

/// A row `(token_version, not_before)` as a cutoff. A negative version
/// cannot come from this crate's writes (the schema forbids it); it is
/// reported, not wrapped.
pub(crate) fn cutoff_from_row((version, not_before): (i64, i64)) -> Result<Cutoff, StoreError> {
    Ok(Cutoff::new(unsigned("token_version", version)?, not_before))
}

/// A cutoff's version as a SQL `BIGINT`.
pub(crate) fn version_to_sql(version: u64) -> Result<i64, StoreError> {
    bigint("token_version", version)
}

/// An unsigned counter (`column`) as a SQL `BIGINT`: one above `i64::MAX`
/// is an error, never a wrap.
fn bigint(column: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::msg(format!("{column} {value} does not fit in BIGINT")))
}

/// A `BIGINT` column (`column`) as an unsigned counter. A negative value
/// cannot come from this crate's writes (the schema forbids it): it is
/// reported, never wrapped or defaulted.
fn unsigned(column: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::msg(format!("{column} {value} is out of range")))
}

/// The columns of `jwt_revoke_sessions`, in the order of [`SessionRow`].
macro_rules! session_columns {
    () => {
        "id, sub, generation, version, created_at, last_used_at, expires_at, revoked_at, not_before_seen"
    };
}

/// A row of `jwt_revoke_sessions`, columns as in `session_columns!`.
/// Every column is read as nullable: SQLite would decode a NULL (in a
/// table whose `NOT NULL` was bypassed) as `0` or `""` for a plain `i64`
/// or `String`, and a missing value must fail closed instead.
pub(crate) type SessionRow = (
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// A column that the schema declares `NOT NULL`.
fn required<T>(column: &str, value: Option<T>) -> Result<T, StoreError> {
    value.ok_or_else(|| StoreError::msg(format!("session {column} is NULL")))
}

/// A session row as a [`Session`]: a NULL where the schema forbids one, or
/// a negative generation or version, fails closed (an error, so the guard
/// answers `store_unavailable`), never a default.
pub(crate) fn session_from_row(row: SessionRow) -> Result<Session, StoreError> {
    let (
        id,
        sub,
        generation,
        version,
        created_at,
        last_used_at,
        expires_at,
        revoked_at,
        not_before_seen,
    ) = row;
    Ok(Session {
        id: required("id", id)?,
        sub: required("sub", sub)?,
        generation: unsigned("session generation", required("generation", generation)?)?,
        version: unsigned("session version", required("version", version)?)?,
        created_at: required("created_at", created_at)?,
        last_used_at: required("last_used_at", last_used_at)?,
        expires_at: required("expires_at", expires_at)?,
        revoked_at,
        not_before_seen: required("not_before_seen", not_before_seen)?,
    })
}

/// The generation and version of a new session as `BIGINT`s.
pub(crate) fn session_counters(session: &Session) -> Result<(i64, i64), StoreError> {
    Ok((
        bigint("session generation", session.generation)?,
        bigint("session version", session.version)?,
    ))
}

/// The condition under which `ROTATE_SESSION` rotates rather than revokes:
/// the current generation (rule 4), or the grace (rule 5: the generation
/// just before, within the grace, and a target `$8` that fits).
macro_rules! rotate_matches {
    () => {
        "((generation = $3 AND generation < 9223372036854775807) OR \
          (generation = $6 AND last_used_at >= $7 AND $8 IS NOT NULL))"
    };
}

/// The session statements: the same text for SQLite and PostgreSQL (sqlx
/// binds `$N` on both).
pub(crate) const CREATE_SESSION: &str = concat!(
    "INSERT INTO jwt_revoke_sessions (",
    session_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);

/// `$1` id, `$2` sub.
pub(crate) const LOAD_SESSION: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM jwt_revoke_sessions WHERE id = $1 AND sub = $2"
);

/// The rotation: rules 4 to 6 of `SessionStore::rotate_refresh` in one
/// statement. It touches only a live session of the subject (`revoked_at
/// IS NULL AND expires_at > now`); on it, it either rotates (the generation
/// matches, or the grace applies) or revokes (anything else: reuse). All
/// `CASE`s test the same condition on the row as it was before the update
/// (in both databases every `SET` expression reads the old row), so a
/// rotated row comes back with `revoked_at` NULL and a revoked one with
/// `revoked_at = now`. The row lock of the update (PostgreSQL re-checks the
/// `WHERE` on the newest row version after waiting for it; SQLite runs one
/// writer at a time) makes the compare and the swap one atomic step, so of
/// concurrent rotations of one generation exactly one matches.
///
/// `$1` id, `$2` sub, `$3` the presented generation (NULL when it does not
/// fit in `BIGINT`, so it matches no row), `$4` now, `$5` the new
/// `expires_at`, `$6` the presented generation plus one when a grace
/// applies (else NULL), `$7` `now - grace` (the oldest `last_used_at` the
/// grace accepts; NULL without grace). A generation at `i64::MAX` cannot
/// move forward: it is treated as spent, like `apply_rotation` does at
/// `u64::MAX`.
///
/// SQLite holds any value in any column: the statement touches only rows
/// whose times and generation are integers (`CAST(x AS BIGINT) = x`, always
/// true in PostgreSQL's typed columns), so a value this crate never writes
/// fails closed in the read that follows instead of being compared as text.
pub(crate) const ROTATE_SESSION: &str = concat!(
    "UPDATE jwt_revoke_sessions SET \
       generation = CASE WHEN ",
    rotate_matches!(),
    " THEN CASE WHEN generation = $3 THEN generation + 1 ELSE $8 END \
       ELSE generation END, \
       last_used_at = CASE WHEN ",
    rotate_matches!(),
    " THEN $4 ELSE last_used_at END, \
       expires_at = CASE WHEN ",
    rotate_matches!(),
    " THEN $5 ELSE expires_at END, \
       revoked_at = CASE WHEN ",
    rotate_matches!(),
    " THEN NULL ELSE $4 END \
     WHERE id = $1 AND sub = $2 AND revoked_at IS NULL AND expires_at > $4 \
       AND CAST(expires_at AS BIGINT) = expires_at \
       AND CAST(last_used_at AS BIGINT) = last_used_at \
       AND CAST(generation AS BIGINT) = generation \
     RETURNING ",
    session_columns!()
);

/// `$1` id, `$2` sub, `$3` revoked_at.
pub(crate) const REVOKE_SESSION: &str = "UPDATE jwt_revoke_sessions SET revoked_at = $3 WHERE id = $1 AND sub = $2 AND revoked_at IS NULL";

/// `$1` sub, `$2` revoked_at (now). Revokes the subject's sessions that
/// are live and names every one it holds, revoked before or now (a retry
/// after a lost reply names them again). Expiry is not looked at: it is
/// judged by each instance's clock, and a session expired by the caller's
/// may not be by another's.
pub(crate) const REVOKE_SESSIONS: &str = "UPDATE jwt_revoke_sessions \
     SET revoked_at = COALESCE(revoked_at, $2) WHERE sub = $1 RETURNING id";

/// `$1` sub, `$2` now.
pub(crate) const LIST_SESSIONS: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM jwt_revoke_sessions WHERE sub = $1 AND revoked_at IS NULL AND expires_at > $2 \
     ORDER BY created_at, id"
);

/// `$1` before.
pub(crate) const PURGE_SESSIONS: &str = "DELETE FROM jwt_revoke_sessions WHERE expires_at < $1";

/// The bound values of `ROTATE_SESSION` that depend on the request:
/// `(current, previous_plus_one, since, graced_target)` = `($3, $6, $7,
/// $8)`; the graced target is the presented generation plus three (rule
/// 5).
///
/// The arithmetic happens here, exactly, rather than in SQL, where
/// `generation + 1` or `last_used_at + grace` could overflow: a generation
/// that does not fit in `BIGINT` is NULL and matches nothing (it is then
/// reuse, as in the memory store); `last_used_at + grace >= now` is
/// `last_used_at >= now - grace`.
pub(crate) fn rotate_binds(
    rotate: &Rotate,
) -> (Option<i64>, Option<i64>, Option<i64>, Option<i64>) {
    let current = i64::try_from(rotate.generation).ok();
    let plus = |n: u64| {
        rotate
            .generation
            .checked_add(n)
            .and_then(|g| i64::try_from(g).ok())
    };
    // A negative grace is no grace (`Rotate::grace`).
    match rotate.grace.filter(|g| *g >= 0) {
        Some(grace) => (
            current,
            plus(1),
            Some(rotate.now.saturating_sub(grace)),
            plus(3),
        ),
        None => (current, None, None, None),
    }
}

/// What a rotation that updated `row` did: a row still live was rotated, a
/// revoked one was revoked by this statement (reuse).
pub(crate) fn rotated(row: SessionRow) -> Result<Rotation, StoreError> {
    let session = session_from_row(row)?;
    Ok(if session.revoked_at.is_none() {
        Rotation::Rotated(session)
    } else {
        Rotation::Reused(session)
    })
}

/// What a rotation that updated nothing answers, from the session read
/// right after (`found`): unknown, revoked or expired (rules 1 to 3, and
/// nothing changed). `None` when the session read is live and unexpired,
/// which the update would have matched: it changed between the two
/// statements, and the rotation runs again.
///
/// The two statements are not one atomic step, yet the answer is one the
/// contract allows at the moment of the read: the update matched nothing
/// because at that moment the session was absent (or another subject's),
/// revoked or expired. `revoked_at` is only ever set, never cleared, so a
/// session revoked then is revoked at the read; one absent then and absent
/// at the read is unknown; one expired then and still expired at the read
/// is expired. Neither answer writes, so no state the read did not see is
/// acted on. Only a session that came back to life in between (created
/// under that id, or rotated by an instance whose clock is behind) reads
/// as live, and is retried rather than guessed.
pub(crate) fn unmatched(found: Option<Session>, now: i64) -> Option<Rotation> {
    match found {
        None => Some(Rotation::Unknown),
        Some(s) if s.revoked_at.is_some() => Some(Rotation::Revoked),
        Some(s) if s.expires_at <= now => Some(Rotation::Expired),
        Some(_) => None,
    }
}

/// Listed rows as sessions, oldest first; ties in `created_at` by id,
/// compared bytewise in every database and collation (as the memory store
/// does).
pub(crate) fn listed(rows: Vec<SessionRow>) -> Result<Vec<Session>, StoreError> {
    let mut sessions = rows
        .into_iter()
        .map(session_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    crate::stores::oldest_first(&mut sessions);
    Ok(sessions)
}

/// How often a rotation runs again when the session changed between its
/// update and its read (see [`unmatched`]) before it gives up with an
/// error.
pub(crate) const ROTATE_ATTEMPTS: usize = 3;

/// A read's result, where a value the database cannot represent in its
/// encoding (see [`unrepresentable`]) cannot be in the table: `absent`.
/// Other errors as [`db_error`] reports them for `store`.
pub(crate) fn or_absent<T>(
    store: &'static str,
    result: Result<T, sqlx::Error>,
    absent: impl FnOnce() -> T,
) -> Result<T, StoreError> {
    match result {
        Ok(value) => Ok(value),
        Err(e) if unrepresentable(&e) => Ok(absent()),
        Err(e) => Err(db_error(store, e)),
    }
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

/// A database error of a write by `store`; the one for a subject the
/// database's encoding cannot represent says so.
pub(crate) fn write_error(store: &'static str, e: sqlx::Error) -> StoreError {
    if unrepresentable(&e) {
        StoreError::msg(format!(
            "subject cannot be represented in the database's encoding: {e}"
        ))
    } else {
        db_error(store, e)
    }
}

/// The tables of `SCHEMA` and the columns the statements use, as
/// `check()` verifies them (names in lower case).
pub(crate) const TABLES: [(&str, &[&str]); 3] = [
    (
        "jwt_revoke_cutoffs",
        &["sub", "token_version", "not_before"],
    ),
    ("jwt_revoke_global", &["id", "not_before"]),
    (
        "jwt_revoke_sessions",
        &[
            "id",
            "sub",
            "generation",
            "version",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
            "not_before_seen",
        ],
    ),
];

/// The columns of `table` in SQLite (`pragma_table_info`, in lower case:
/// SQLite matches names regardless of ASCII case); empty when there is no
/// such table.
#[cfg(feature = "sqlite")]
pub(crate) async fn sqlite_columns(
    conn: &mut sqlx::SqliteConnection,
    table: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT lower(name) FROM pragma_table_info(?1)")
        .bind(table)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|(name,)| name).collect())
}

/// The columns of `table` in PostgreSQL, the table found as the
/// statements find it (`to_regclass` of the unqualified name, through the
/// `search_path`); empty when there is no such table.
#[cfg(feature = "postgres")]
pub(crate) async fn postgres_columns(
    conn: &mut sqlx::PgConnection,
    table: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT a.attname::text FROM pg_catalog.pg_attribute a \
         WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .bind(table)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(name,)| name).collect())
}

/// What [`TABLES`] expects and `found` (each table's columns, empty for a
/// missing table, in the order of `TABLES`) lacks, as the error `check()`
/// returns.
pub(crate) fn verify_schema(store: &'static str, found: &[Vec<String>]) -> Result<(), StoreError> {
    let mut missing = Vec::new();
    for ((table, columns), found) in TABLES.iter().zip(found) {
        if found.is_empty() {
            missing.push(Missing::Table((*table).to_owned()));
            continue;
        }
        for column in columns.iter().filter(|c| !found.iter().any(|f| f == *c)) {
            missing.push(Missing::Column {
                table: Some((*table).to_owned()),
                column: (*column).to_owned(),
            });
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StoreError::new(MissingSchema {
            store,
            missing,
            source: None,
        }))
    }
}

/// A database error of `store`. One that says a table or column of the
/// schema does not exist (SQLite "no such table", PostgreSQL SQLSTATE
/// `42P01` / `42703`) names it and the fix in its message, with the
/// database's error as its source: it is what a store whose migration
/// never ran answers to every call.
pub(crate) fn db_error(store: &'static str, e: sqlx::Error) -> StoreError {
    match missing_in(&e) {
        Some(missing) => StoreError::new(MissingSchema {
            store,
            missing: vec![missing],
            source: Some(e),
        }),
        None => StoreError::new(e),
    }
}

/// A part of the schema that the database does not have.
#[derive(Debug, PartialEq)]
enum Missing {
    Table(String),
    /// `table` is `None` when the database's message does not name it.
    Column {
        table: Option<String>,
        column: String,
    },
}

/// What `e` says is missing, from PostgreSQL's SQLSTATE or SQLite's
/// message (SQLite reports both as its generic `SQLITE_ERROR`).
fn missing_in(e: &sqlx::Error) -> Option<Missing> {
    let sqlx::Error::Database(db) = e else {
        return None;
    };
    let message = db.message();
    // The first double-quoted name of a PostgreSQL message, and the one
    // after `of relation` (an INSERT's column).
    let quoted = |text: &str| text.split('"').nth(1).map(str::to_owned);
    let relation = || {
        message
            .split_once(" of relation ")
            .and_then(|(_, rest)| quoted(rest))
    };
    match db.code().as_deref() {
        // undefined_table: `relation "jwt_revoke_cutoffs" does not exist`
        Some("42P01") => quoted(message).map(Missing::Table),
        // undefined_column: `column "x" does not exist`, or
        // `column "x" of relation "t" does not exist`
        Some("42703") => quoted(message).map(|column| Missing::Column {
            table: relation(),
            column,
        }),
        _ => {
            // SQLite: `no such table: t` (`main.t` when qualified), `no
            // such column: x`, `table t has no column named x`.
            let unqualified = |name: &str| {
                let name = name.trim();
                name.rsplit_once('.').map_or(name, |(_, n)| n).to_owned()
            };
            if let Some(table) = message.strip_prefix("no such table: ") {
                return Some(Missing::Table(unqualified(table)));
            }
            if let Some(column) = message.strip_prefix("no such column: ") {
                return Some(Missing::Column {
                    table: None,
                    column: unqualified(column),
                });
            }
            let (table, column) = message
                .strip_prefix("table ")?
                .split_once(" has no column named ")?;
            Some(Missing::Column {
                table: Some(unqualified(table)),
                column: unqualified(column),
            })
        }
    }
}

/// The schema a SQL store needs is missing from its database, in whole or
/// in part: the message names what is missing and the fix; the source is
/// the database's error when a statement failed on it.
#[derive(Debug)]
struct MissingSchema {
    /// The store's type name, for the fix (`SqliteStore::migrate()`).
    store: &'static str,
    missing: Vec<Missing>,
    source: Option<sqlx::Error>,
}

impl std::fmt::Display for MissingSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let store = self.store;
        let tables: Vec<&str> = self
            .missing
            .iter()
            .filter_map(|m| match m {
                Missing::Table(table) => Some(table.as_str()),
                Missing::Column { .. } => None,
            })
            .collect();
        let columns: Vec<String> = self
            .missing
            .iter()
            .filter_map(|m| match m {
                Missing::Column {
                    table: Some(table),
                    column,
                } => Some(format!("{table}.{column}")),
                Missing::Column {
                    table: None,
                    column,
                } => Some(column.clone()),
                Missing::Table(_) => None,
            })
            .collect();
        match tables.as_slice() {
            [] => {}
            [table] => write!(f, "table {table} does not exist")?,
            tables => write!(f, "tables {} do not exist", tables.join(", "))?,
        }
        if !tables.is_empty() {
            write!(
                f,
                ": run {store}::migrate(), or apply {store}::SCHEMA in your migrations"
            )?;
        }
        if !columns.is_empty() {
            if !tables.is_empty() {
                f.write_str("; ")?;
            }
            let (noun, verb) = if columns.len() == 1 {
                ("column", "does")
            } else {
                ("columns", "do")
            };
            write!(
                f,
                "{noun} {} {verb} not exist: the table predates this version of the schema; \
                 add what {store}::SCHEMA declares ({store}::migrate() creates missing tables, \
                 it does not change existing ones)",
                columns.join(", ")
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for MissingSchema {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Generates a `CutoffStore` over an sqlx pool from the dialect's SQL.
macro_rules! sql_store {
    (
        $(#[$meta:meta])*
        store: $name:ident,
        pool: $pool:ty,
        conn: $conn:ty,
        columns: $columns:path,
        schema: $schema:expr,
        load: $load:expr,
        bump: $bump:expr,
        revoke_before: $revoke:expr,
        merge: $merge:expr,
        remove: $remove:expr,
        load_global: $load_global:expr,
        recreate_global: $recreate_global:expr,
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
            /// [`Self::SCHEMA`] in your own migrations) before use;
            /// [`Self::check`] tells whether that was done.
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
                    .map_err(Self::error)
            }

            /// Checks that the database has the schema: the tables
            /// `jwt_revoke_cutoffs`, `jwt_revoke_global` and
            /// `jwt_revoke_sessions`, each with the columns the store's
            /// statements use. Reads the database's catalog only.
            ///
            /// The error names every missing table and column and the fix:
            #[doc = concat!("run [`", stringify!($name), "::migrate`], or apply [`", stringify!($name), "::SCHEMA`]")]
            /// in your own migrations (for a table that exists without a
            /// column, add the column as `SCHEMA` declares it: `migrate`
            /// does not change existing tables).
            ///
            /// A store without its schema answers every call with an error
            /// (the guard's `503 store_unavailable`); call this at startup
            /// to fail there instead, with the reason. Those errors name a
            /// missing table too.
            pub async fn check(&self) -> Result<(), $crate::StoreError> {
                let mut conn = self.pool.acquire().await.map_err($crate::StoreError::new)?;
                let mut found = Vec::with_capacity($crate::stores::sql::TABLES.len());
                for (table, _) in $crate::stores::sql::TABLES {
                    found.push($columns(&mut conn, table).await.map_err($crate::StoreError::new)?);
                }
                $crate::stores::sql::verify_schema(stringify!($name), &found)
            }

            /// A database error of this store (a missing table named).
            fn error(e: sqlx::Error) -> $crate::StoreError {
                $crate::stores::sql::db_error(stringify!($name), e)
            }

            /// A database error of a write by this store.
            fn write_error(e: sqlx::Error) -> $crate::StoreError {
                $crate::stores::sql::write_error(stringify!($name), e)
            }

            /// Adds a subject (a registered user). A new row starts at
            /// `cutoff` with `not_before` raised to at least the database's
            /// clock plus two seconds ([`Cutoff::created`](crate::Cutoff::created)),
            /// so a subject deleted and registered again never inherits the
            /// old one's tokens. If it exists, the cutoffs are merged by
            /// maximum: a cutoff never moves backwards.
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
                    .map_err(Self::write_error)?;
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
                    .map_err(Self::write_error)?;
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
                    .map_err(Self::write_error)?;
                $crate::stores::sql::cutoff_from_row(row)
            }

            /// Forgets a subject (a deleted user): its tokens are rejected as
            /// unknown once the guard's cache entry expires. Returns whether it
            /// existed. Its sessions stay: end them first with
            /// [`Guard::revoke_sessions`](crate::Guard::revoke_sessions). A
            /// row created again later starts after now.
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
                    Err(e) => return Err(Self::error(e)),
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
                let row: Option<(i64, i64)> = $crate::stores::sql::or_absent(
                    stringify!($name),
                    sqlx::query_as($load).bind(sub).fetch_optional(&self.pool).await,
                    || None,
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

            /// [`migrate`](Self::migrate) creates the global row when it is
            /// missing, at the second it runs (nothing issued before the row
            /// existed is accepted). A row missing later (deleted by hand)
            /// is created again here as a global revocation at this moment
            /// (the database's clock plus two seconds), never read as "no
            /// global cutoff": a `revoke_all_before` it held is not undone.
            async fn load_global(&self) -> Result<i64, $crate::StoreError> {
                let row: Option<(i64,)> = sqlx::query_as($load_global)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(Self::error)?;
                if let Some((nb,)) = row {
                    return Ok(nb);
                }
                let (nb,): (i64,) = sqlx::query_as($recreate_global)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(Self::error)?;
                Ok(nb)
            }

            async fn revoke_all_before(&self, at: i64) -> Result<i64, $crate::StoreError> {
                let (nb,): (i64,) = sqlx::query_as($revoke_all)
                    .bind(at.saturating_add(1))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(Self::error)?;
                Ok(nb)
            }
        }

        /// One row per session in `jwt_revoke_sessions`, never one per
        /// token. Every method is one statement. A rotation is one
        /// `UPDATE … RETURNING` that either rotates or (reuse) revokes a
        /// live session of the subject; only when it matched none does a
        /// second statement read the session, to answer unknown, revoked
        /// or expired, which writes nothing. A subject or session id
        /// containing a NUL byte, or one the database's encoding cannot
        /// represent, is not in the table: unknown, and creating it is an
        /// error. A generation above `i64::MAX` cannot be stored (an
        /// error on create); one at `i64::MAX` cannot move forward, so
        /// presenting it is reuse.
        impl $crate::session::SessionStore for $name {
            async fn create_session(&self, session: &$crate::Session) -> Result<(), $crate::StoreError> {
                $crate::stores::check_storable(&session.sub)?;
                $crate::stores::check_storable(&session.id)?;
                let (generation, version) = $crate::stores::sql::session_counters(session)?;
                sqlx::query($crate::stores::sql::CREATE_SESSION)
                    .bind(&session.id)
                    .bind(&session.sub)
                    .bind(generation)
                    .bind(version)
                    .bind(session.created_at)
                    .bind(session.last_used_at)
                    .bind(session.expires_at)
                    .bind(session.revoked_at)
                    .bind(session.not_before_seen)
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(Self::write_error)
            }

            async fn load_session(&self, sub: &str, sid: &str) -> Result<Option<$crate::Session>, $crate::StoreError> {
                if !$crate::stores::storable(sub) || !$crate::stores::storable(sid) {
                    return Ok(None);
                }
                let row: Option<$crate::stores::sql::SessionRow> = $crate::stores::sql::or_absent(
                        stringify!($name),
                    sqlx::query_as($crate::stores::sql::LOAD_SESSION)
                        .bind(sid)
                        .bind(sub)
                        .fetch_optional(&self.pool)
                        .await,
                    || None,
                )?;
                row.map($crate::stores::sql::session_from_row).transpose()
            }

            async fn rotate_refresh(
                &self,
                sub: &str,
                sid: &str,
                rotate: $crate::Rotate,
            ) -> Result<$crate::Rotation, $crate::StoreError> {
                if !$crate::stores::storable(sub) || !$crate::stores::storable(sid) {
                    return Ok($crate::Rotation::Unknown);
                }
                let (current, next, since, graced) = $crate::stores::sql::rotate_binds(&rotate);
                for _ in 0..$crate::stores::sql::ROTATE_ATTEMPTS {
                    let row: Option<$crate::stores::sql::SessionRow> = $crate::stores::sql::or_absent(
                        stringify!($name),
                        sqlx::query_as($crate::stores::sql::ROTATE_SESSION)
                            .bind(sid)
                            .bind(sub)
                            .bind(current)
                            .bind(rotate.now)
                            .bind(rotate.expires_at)
                            .bind(next)
                            .bind(since)
                            .bind(graced)
                            .fetch_optional(&self.pool)
                            .await,
                        || None,
                    )?;
                    if let Some(row) = row {
                        return $crate::stores::sql::rotated(row);
                    }
                    let found = $crate::session::SessionStore::load_session(self, sub, sid).await?;
                    if let Some(rotation) = $crate::stores::sql::unmatched(found, rotate.now) {
                        return Ok(rotation);
                    }
                }
                Err($crate::StoreError::msg(
                    "the session changed during each rotation attempt; try again",
                ))
            }

            async fn revoke_session(&self, sub: &str, sid: &str, at: i64) -> Result<bool, $crate::StoreError> {
                if !$crate::stores::storable(sub) || !$crate::stores::storable(sid) {
                    return Ok(false);
                }
                let revoked = $crate::stores::sql::or_absent(
                        stringify!($name),
                    sqlx::query($crate::stores::sql::REVOKE_SESSION)
                        .bind(sid)
                        .bind(sub)
                        .bind(at)
                        .execute(&self.pool)
                        .await
                        .map(|done| done.rows_affected() > 0),
                    || false,
                )?;
                Ok(revoked)
            }

            async fn revoke_sessions(&self, sub: &str, at: i64) -> Result<Vec<String>, $crate::StoreError> {
                if !$crate::stores::storable(sub) {
                    return Ok(Vec::new());
                }
                let ids: Vec<(String,)> = $crate::stores::sql::or_absent(
                        stringify!($name),
                    sqlx::query_as($crate::stores::sql::REVOKE_SESSIONS)
                        .bind(sub)
                        .bind(at)
                        .fetch_all(&self.pool)
                        .await,
                    Vec::new,
                )?;
                Ok(ids.into_iter().map(|(id,)| id).collect())
            }

            async fn list_sessions(&self, sub: &str, now: i64) -> Result<Vec<$crate::Session>, $crate::StoreError> {
                if !$crate::stores::storable(sub) {
                    return Ok(Vec::new());
                }
                let rows: Vec<$crate::stores::sql::SessionRow> = $crate::stores::sql::or_absent(
                        stringify!($name),
                    sqlx::query_as($crate::stores::sql::LIST_SESSIONS)
                        .bind(sub)
                        .bind(now)
                        .fetch_all(&self.pool)
                        .await,
                    Vec::new,
                )?;
                $crate::stores::sql::listed(rows)
            }

            async fn purge_sessions(&self, before: i64) -> Result<u64, $crate::StoreError> {
                sqlx::query($crate::stores::sql::PURGE_SESSIONS)
                    .bind(before)
                    .execute(&self.pool)
                    .await
                    .map(|done| done.rows_affected())
                    .map_err(Self::error)
            }
        }
    };
}

pub(crate) use sql_store;

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    /// A database error as a driver reports it: a SQLSTATE (PostgreSQL) or
    /// SQLite's generic code, and the message.
    #[derive(Debug)]
    struct DbError(&'static str, &'static str);

    impl std::fmt::Display for DbError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.1)
        }
    }

    impl std::error::Error for DbError {}

    impl sqlx::error::DatabaseError for DbError {
        fn message(&self) -> &str {
            self.1
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn missing(code: &'static str, message: &'static str) -> Option<Missing> {
        missing_in(&sqlx::Error::Database(Box::new(DbError(code, message))))
    }

    fn column(table: Option<&str>, column: &str) -> Option<Missing> {
        Some(Missing::Column {
            table: table.map(str::to_owned),
            column: column.to_owned(),
        })
    }

    #[test]
    fn missing_tables_and_columns_are_read_from_either_database() {
        let table = |t: &str| Some(Missing::Table(t.to_owned()));
        assert_eq!(
            missing("42P01", "relation \"jwt_revoke_cutoffs\" does not exist"),
            table("jwt_revoke_cutoffs")
        );
        assert_eq!(
            missing("42703", "column \"not_before_seen\" does not exist"),
            column(None, "not_before_seen")
        );
        assert_eq!(
            missing(
                "42703",
                "column \"not_before_seen\" of relation \"jwt_revoke_sessions\" does not exist"
            ),
            column(Some("jwt_revoke_sessions"), "not_before_seen")
        );
        assert_eq!(
            missing("1", "no such table: jwt_revoke_global"),
            table("jwt_revoke_global")
        );
        assert_eq!(
            missing("1", "no such table: main.jwt_revoke_global"),
            table("jwt_revoke_global")
        );
        assert_eq!(
            missing("1", "no such column: created_at"),
            column(None, "created_at")
        );
        assert_eq!(
            missing(
                "1",
                "table jwt_revoke_sessions has no column named not_before_seen"
            ),
            column(Some("jwt_revoke_sessions"), "not_before_seen")
        );
        // Anything else is not about the schema.
        assert_eq!(missing("23505", "duplicate key value"), None);
        assert_eq!(missing("1", "database is locked"), None);
        assert_eq!(missing_in(&sqlx::Error::PoolTimedOut), None);
    }

    #[test]
    fn the_message_names_what_is_missing_and_the_fix() {
        let e = db_error(
            "PostgresStore",
            sqlx::Error::Database(Box::new(DbError(
                "42P01",
                "relation \"jwt_revoke_cutoffs\" does not exist",
            ))),
        );
        assert_eq!(
            e.inner().to_string(),
            "table jwt_revoke_cutoffs does not exist: run PostgresStore::migrate(), \
             or apply PostgresStore::SCHEMA in your migrations"
        );
        assert!(std::error::Error::source(e.inner()).is_some());

        // `check`: every table and column at once; a present table with
        // every column passes.
        let all = |t: usize| {
            TABLES[t]
                .1
                .iter()
                .map(|c| (*c).to_owned())
                .collect::<Vec<_>>()
        };
        let mut sessions = all(2);
        sessions.retain(|c| c != "not_before_seen");
        let e = verify_schema("SqliteStore", &[Vec::new(), all(1), sessions]).unwrap_err();
        let message = e.inner().to_string();
        assert!(
            message
                .starts_with("table jwt_revoke_cutoffs does not exist: run SqliteStore::migrate()")
                && message.contains("; column jwt_revoke_sessions.not_before_seen does not exist")
                && !message.contains("jwt_revoke_global"),
            "{message}"
        );
        assert!(verify_schema("SqliteStore", &[all(0), all(1), all(2)]).is_ok());
    }
}
