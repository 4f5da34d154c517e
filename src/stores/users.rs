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
//! A valid name can still be wrong (a typo, a migration not run). SQLite
//! reads a double-quoted name that is no column as a string literal, so
//! `WHERE "user_id" = ?1` on a table whose column is `id` would match every
//! row for the subject `"user_id"`. Two safeguards make a wrong name an
//! error instead:
//!
//! - the statements name every column they read with its table
//!   (`"users"."id"`), which both databases refuse when there is no such
//!   column;
//! - before its first statement, the store checks the configured names
//!   against the schema (SQLite `pragma_table_info`, PostgreSQL
//!   `pg_attribute`): [`SqliteUsersStore::check`] and
//!   [`PostgresUsersStore::check`], which the host may also call at
//!   startup. Until the check passes, every operation fails with an error
//!   that names the missing table or column and what to do. SQLite's
//!   implicit `rowid` is no declared column and is refused as an id.
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
    table: Name,
    id: Name,
    ids: UserIds,
    version: Name,
    not_before: Name,
    global: Option<Name>,
}

/// A validated name: its parts as written (for the schema check) and its
/// SQL form, each part double-quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Name {
    schema: Option<String>,
    name: String,
    sql: String,
}

/// Longest identifier PostgreSQL keeps (`NAMEDATALEN - 1`); a longer one
/// would be truncated silently and name another object.
const MAX_IDENTIFIER: usize = 63;

/// `name` as a quoted identifier; `qualified` allows one `schema.` prefix.
fn quote(name: &str, qualified: bool, what: &str) -> Result<Name, Error> {
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
    let sql = parts
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(".");
    let (schema, name) = match parts.as_slice() {
        [schema, name] => (Some((*schema).to_owned()), (*name).to_owned()),
        _ => (None, name.to_owned()),
    };
    Ok(Name { schema, name, sql })
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
        &self.table.sql
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
    /// Creates the global row found missing, as a revocation now.
    recreate_global: Option<String>,
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
        // Every column read is named with its table ("users"."id"): SQLite
        // reads a double-quoted name that is no column as a string literal
        // (`"user_id" = ?1` would be true on every row for the subject
        // "user_id"), but a qualified one that is no column is an error.
        // The table's own name, not a schema or an alias: SQLite's
        // RETURNING takes neither. (A name assigned by `SET` is never a
        // literal.)
        let qualifier = format!("\"{}\"", t.table.name);
        let column = |c: &Name| format!("{qualifier}.{}", c.sql);
        // SQLite holds any value in any column: read only integers (another
        // type reads as NULL, which fails closed), and write only over them.
        let int = |col: &str| {
            if sqlite {
                format!("CASE WHEN typeof({col}) = 'integer' THEN {col} END")
            } else {
                col.to_owned()
            }
        };
        let table = &t.table.sql;
        let (v, nb, id) = (column(&t.version), column(&t.not_before), column(&t.id));
        let (set_v, set_nb) = (&t.version.sql, &t.not_before.sql);
        let id = match (dialect, t.ids) {
            (Dialect::Postgres, UserIds::Uuid) => format!("{id} = CAST({p1} AS uuid)"),
            // SQLite compares text with an INTEGER column as a number
            // ("042" = 42): the text of the stored id must match too, so
            // one user has one spelling (and one cache entry).
            (Dialect::Sqlite, UserIds::Text) => {
                format!("{id} = {p1} AND CAST({id} AS TEXT) = {p1}")
            }
            _ => format!("{id} = {p1}"),
        };
        let readable = format!(
            "{} IS NOT NULL AND {} IS NOT NULL AND {v} >= 0 AND {nb} >= 0",
            int(&v),
            int(&nb)
        );
        let returning = format!("RETURNING {}, {}", int(&v), int(&nb));
        let integer = if sqlite { "INTEGER" } else { "BIGINT" };
        let mut migration = format!(
            "ALTER TABLE {table} ADD COLUMN {set_v} {integer} NOT NULL DEFAULT 0 CHECK ({set_v} >= 0);\n\
             ALTER TABLE {table} ADD COLUMN {set_nb} {integer} NOT NULL DEFAULT 0 CHECK ({set_nb} >= 0);\n"
        );
        // Existing users keep 0; a user created later (a sign-up, or the
        // same id again after a deletion) starts after now, so a recreated
        // user never inherits the old one's tokens.
        if sqlite {
            // SQLite cannot change a column's default: a trigger raises it.
            let trigger = format!("\"jwt_revoke_{}_created\"", t.table.name);
            let id_col = &t.id.sql;
            migration.push_str(&format!(
                "CREATE TRIGGER IF NOT EXISTS {trigger} AFTER INSERT ON {table} BEGIN\n    \
                 UPDATE {table} SET {set_nb} = MAX({set_nb}, CAST(strftime('%s', 'now') AS INTEGER) + 2) \
                 WHERE {id_col} = NEW.{id_col};\nEND;\n"
            ));
        } else {
            migration.push_str(&format!(
                "ALTER TABLE {table} ALTER COLUMN {set_nb} SET DEFAULT \
                 (FLOOR(EXTRACT(EPOCH FROM clock_timestamp()))::BIGINT + 2);\n"
            ));
        }
        // Repairs never re-arm a token: a version never goes down, and
        // `not_before` goes down only to lift a future lock, to now + 1 at
        // the lowest.
        let monotone = format!("\"jwt_revoke_{}_monotone\"", t.table.name);
        let message = "jwt-revoke: a cutoff never goes back (the version never decreases; \
                       not_before decreases only down to now + 1)";
        if sqlite {
            migration.push_str(&format!(
                "CREATE TRIGGER IF NOT EXISTS {monotone} BEFORE UPDATE OF {set_v}, {set_nb} ON {table}\n\
                 WHEN NEW.{set_v} < OLD.{set_v} OR (NEW.{set_nb} < OLD.{set_nb} \
                 AND NEW.{set_nb} < CAST(strftime('%s', 'now') AS INTEGER) + 1)\n\
                 BEGIN\n    SELECT RAISE(ABORT, '{message}');\nEND;\n"
            ));
        } else {
            migration.push_str(&format!(
                "CREATE OR REPLACE FUNCTION {monotone}() RETURNS trigger AS $$\nBEGIN\n    \
                 IF NEW.{set_v} < OLD.{set_v} OR (NEW.{set_nb} < OLD.{set_nb} \
                 AND NEW.{set_nb} < FLOOR(EXTRACT(EPOCH FROM clock_timestamp()))::BIGINT + 1) THEN\n        \
                 RAISE EXCEPTION '{message}' USING ERRCODE = 'check_violation';\n    END IF;\n    \
                 RETURN NEW;\nEND\n$$ LANGUAGE plpgsql;\n\
                 CREATE TRIGGER {monotone} BEFORE UPDATE ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION {monotone}();\n"
            ));
        }
        // The global table's columns are written unquoted: an unquoted
        // name that is no column is always an error, never a literal.
        let now_sql = if sqlite {
            "CAST(strftime('%s', 'now') AS INTEGER)"
        } else {
            "FLOOR(EXTRACT(EPOCH FROM clock_timestamp()))::BIGINT"
        };
        let (load_global, recreate_global, revoke_all) = match &t.global {
            None => (None, None, None),
            Some(g) => {
                let g = &g.sql;
                // Created with the migration at its second (nothing issued
                // before it existed is accepted); a row lost later is
                // created again by the next read, two seconds ahead.
                migration.push_str(&format!(
                    "CREATE TABLE IF NOT EXISTS {g} (\n    id INTEGER PRIMARY KEY CHECK (id = 1),\n    not_before {integer} NOT NULL\n);\n\
                     INSERT INTO {g} (id, not_before) VALUES (1, {now_sql}) ON CONFLICT (id) DO NOTHING;\n"
                ));
                (
                    Some(format!(
                        "SELECT {} FROM {g} WHERE id = 1",
                        int("not_before")
                    )),
                    Some(format!(
                        "INSERT INTO {g} AS g (id, not_before) VALUES (1, {now_sql} + 2) \
                         ON CONFLICT (id) DO UPDATE SET not_before = g.not_before \
                         RETURNING {}",
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
            load: format!("SELECT {}, {} FROM {table} WHERE {id}", int(&v), int(&nb)),
            bump: format!(
                "UPDATE {table} SET {set_v} = {v} + 1 \
                 WHERE {id} AND {readable} AND {v} < 9223372036854775807 {returning}"
            ),
            revoke: format!(
                "UPDATE {table} SET {set_nb} = {max}({nb}, {p2}) WHERE {id} AND {readable} {returning}"
            ),
            load_global,
            recreate_global,
            revoke_all,
            migration,
        }
    }
}

/// The columns of a table as the database describes them, `(name,
/// type)`; empty when there is no such table.
type Columns = Vec<(String, String)>;

/// The columns of `table` in SQLite (`pragma_table_info`).
#[cfg(feature = "sqlite")]
async fn sqlite_columns(
    conn: &mut sqlx::SqliteConnection,
    table: &Name,
) -> Result<Columns, sqlx::Error> {
    let query = match &table.schema {
        Some(schema) => sqlx::query_as("SELECT name, type FROM pragma_table_info(?1, ?2)")
            .bind(table.name.as_str())
            .bind(schema.as_str()),
        None => {
            sqlx::query_as("SELECT name, type FROM pragma_table_info(?1)").bind(table.name.as_str())
        }
    };
    query.fetch_all(conn).await
}

/// The columns of `table` in PostgreSQL, the table found as the statements
/// find it (`to_regclass` of the quoted name, so through the `search_path`
/// when it has no schema).
#[cfg(feature = "postgres")]
async fn postgres_columns(
    conn: &mut sqlx::PgConnection,
    table: &Name,
) -> Result<Columns, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
         FROM pg_catalog.pg_attribute a \
         WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .bind(table.sql.as_str())
    .fetch_all(conn)
    .await
}

/// Compares the configured names with the schema: `users` the columns of
/// the users table, `global` those of the global table when one is
/// configured. The error names what is missing and what to do.
fn verify(
    t: &UsersTable,
    dialect: Dialect,
    users: &Columns,
    global: Option<&Columns>,
) -> Result<(), StoreError> {
    // SQLite matches names regardless of ASCII case; PostgreSQL matches a
    // quoted name exactly.
    let type_of = |columns: &'_ Columns, name: &str| -> Option<String> {
        columns
            .iter()
            .find(|(column, _)| match dialect {
                Dialect::Sqlite => column.eq_ignore_ascii_case(name),
                Dialect::Postgres => column == name,
            })
            .map(|(_, ty)| ty.to_lowercase())
    };
    // In PostgreSQL the cutoff columns must decode as `i64`.
    let bigint = |what: &str, table: &str, column: &str, ty: &str| {
        if dialect == Dialect::Postgres && ty != "bigint" {
            return Err(StoreError::msg(format!(
                "{what} \"{column}\" of table {table} is {ty}, not bigint (see migration_sql())"
            )));
        }
        Ok(())
    };
    let table = &t.table.sql;
    if users.is_empty() {
        return Err(StoreError::msg(format!(
            "the users table {table} does not exist (UsersTable::new names it)"
        )));
    }
    let Some(id_type) = type_of(users, &t.id.name) else {
        return Err(StoreError::msg(format!(
            "table {table} has no column {} (the id column, named with UsersTable::id_column)",
            t.id.sql
        )));
    };
    if dialect == Dialect::Postgres && (t.ids == UserIds::Uuid) != (id_type == "uuid") {
        let fix = if t.ids == UserIds::Uuid {
            "UserIds::Uuid needs a uuid column"
        } else {
            "compare it with UserIds::Uuid"
        };
        return Err(StoreError::msg(format!(
            "the id column {} of table {table} is {id_type}: {fix}",
            t.id.sql
        )));
    }
    for (column, what, setter) in [
        (&t.version, "the token version column", "version_column"),
        (&t.not_before, "the not_before column", "not_before_column"),
    ] {
        let Some(ty) = type_of(users, &column.name) else {
            return Err(StoreError::msg(format!(
                "table {table} has no column {} ({what}): add it with migration_sql(), \
                 or name it with UsersTable::{setter}",
                column.sql
            )));
        };
        bigint(what, table, &column.name, &ty)?;
    }
    if let (Some(g), Some(columns)) = (&t.global, global) {
        let g = &g.sql;
        if columns.is_empty() {
            return Err(StoreError::msg(format!(
                "the global table {g} does not exist: create it with migration_sql()"
            )));
        }
        for column in ["id", "not_before"] {
            let Some(ty) = type_of(columns, column) else {
                return Err(StoreError::msg(format!(
                    "the global table {g} has no column \"{column}\" (see migration_sql())"
                )));
            };
            if column == "not_before" {
                bigint("the column", g, column, &ty)?;
            }
        }
    }
    Ok(())
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
        dialect: $dialect:expr,
        columns: $columns:path $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name {
            pool: $pool,
            table: Arc<UsersTable>,
            queries: Arc<Queries>,
            /// Set once the schema has passed [`Self::check`].
            checked: Arc<tokio::sync::OnceCell<()>>,
        }

        impl $name {
            /// A store over the host's pool and users table. The columns
            /// must exist ([`Self::migration_sql`]); the store checks them
            /// before its first statement ([`Self::check`]).
            pub fn new(pool: $pool, table: UsersTable) -> Self {
                let queries = Arc::new(Queries::new(&table, $dialect));
                Self {
                    pool,
                    table: Arc::new(table),
                    queries,
                    checked: Arc::default(),
                }
            }

            /// Checks the configured names against the database's schema:
            /// the users table exists and has the id, version and
            /// `not_before` columns (in PostgreSQL, the two cutoff columns
            /// are `bigint`, and the id column is `uuid` exactly when
            /// [`UserIds::Uuid`] is configured), and the
            /// [global table](UsersTable::global_table), when configured,
            /// exists with its `id` and `not_before` columns. The error
            /// names what is missing and what to do (typically: run
            /// [`Self::migration_sql`]).
            ///
            /// The store runs this check itself before its first statement
            /// (and again until it passes): every operation of a
            /// misconfigured store fails with this error, and no row is
            /// read or written. Call it at startup to fail there instead
            /// of on the first request.
            pub async fn check(&self) -> Result<(), StoreError> {
                let mut conn = self.pool.acquire().await.map_err(StoreError::new)?;
                self.check_on(&mut conn).await?;
                let _ = self.checked.set(());
                Ok(())
            }

            async fn check_on(&self, conn: &mut $conn) -> Result<(), StoreError> {
                let users = $columns(&mut *conn, &self.table.table)
                    .await
                    .map_err(StoreError::new)?;
                let global = match &self.table.global {
                    Some(g) => Some($columns(&mut *conn, g).await.map_err(StoreError::new)?),
                    None => None,
                };
                verify(&self.table, $dialect, &users, global.as_ref())
            }

            /// [`Self::check`] on `conn`, unless it passed before.
            async fn checked(&self, conn: &mut $conn) -> Result<(), StoreError> {
                if self.checked.initialized() {
                    return Ok(());
                }
                self.checked
                    .get_or_try_init(move || self.check_on(conn))
                    .await
                    .map(|_| ())
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
                self.checked(&mut *conn).await?;
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

            /// A connection of the pool, once the schema passed the check.
            async fn connection(&self) -> Result<sqlx::pool::PoolConnection<$db>, StoreError> {
                let mut conn = self.pool.acquire().await.map_err(StoreError::new)?;
                self.checked(&mut conn).await?;
                Ok(conn)
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
                let mut conn = self.connection().await?;
                let row: Option<(Option<i64>,)> = sqlx::query_as(sql)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::new)?;
                if row.is_some() {
                    return global_from_column(row);
                }
                // The row was lost (the migration writes it): a global
                // revocation at this moment, never "no global cutoff".
                let Some(recreate) = &self.queries.recreate_global else {
                    return Ok(0);
                };
                let row: Option<(Option<i64>,)> = sqlx::query_as(recreate)
                    .fetch_optional(&mut *conn)
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
                let mut conn = self.connection().await?;
                let row: (Option<i64>,) = sqlx::query_as(sql)
                    .bind(at.saturating_add(1))
                    .fetch_one(&mut *conn)
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
    columns: sqlite_columns,
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
    columns: postgres_columns,
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
            t.clone().not_before_column("_nb2").unwrap().not_before.sql,
            "\"_nb2\""
        );
        let t = UsersTable::new("app.users")
            .unwrap()
            .id_column("uid")
            .unwrap();
        assert_eq!(
            (t.table.schema.as_deref(), t.table.name.as_str()),
            (Some("app"), "users")
        );
        assert_eq!((t.id.schema, t.id.name.as_str()), (None, "uid"));
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
