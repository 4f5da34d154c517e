//! A [`CutoffStore`] on Redis, through redis-rs.
//!
//! One hash per subject, `{prefix}sub:{sub}` with fields `v` (version) and
//! `nb` (not_before), and one string `{prefix}global`. Every write is one
//! Lua script, so it is atomic, and it keeps both fields monotone.
//!
//! Lua numbers are doubles: versions are therefore compared as decimal
//! strings (exact for all of `u64`), and timestamps passed to
//! `revoke_before` / `revoke_all_before` are clamped to ±2⁵³ seconds
//! (about 285 million years), where doubles are still exact.

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use crate::cutoff::Cutoff;
use crate::store::{CutoffStore, StoreError};

/// The largest magnitude a timestamp may have inside a Lua script.
const LUA_EXACT: i64 = 1 << 53;

const BUMP: &str = r"
redis.call('HINCRBY', KEYS[1], 'v', 1)
if redis.call('HEXISTS', KEYS[1], 'nb') == 0 then redis.call('HSET', KEYS[1], 'nb', 0) end
return redis.call('HMGET', KEYS[1], 'v', 'nb')
";

const REVOKE_BEFORE: &str = r"
local cur = redis.call('HGET', KEYS[1], 'nb')
if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'nb', ARGV[1]) end
if redis.call('HEXISTS', KEYS[1], 'v') == 0 then redis.call('HSET', KEYS[1], 'v', 0) end
return redis.call('HMGET', KEYS[1], 'v', 'nb')
";

/// Merges `(ARGV[1] version, ARGV[2] not_before)` by maximum. Versions are
/// canonical non-negative decimal strings: longer is larger, else compare
/// lexically.
const MERGE: &str = r"
local function gt(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
local v = redis.call('HGET', KEYS[1], 'v')
if (not v) or gt(ARGV[1], v) then redis.call('HSET', KEYS[1], 'v', ARGV[1]) end
local nb = redis.call('HGET', KEYS[1], 'nb')
if (not nb) or tonumber(nb) < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], 'nb', ARGV[2]) end
return redis.call('HMGET', KEYS[1], 'v', 'nb')
";

const REVOKE_ALL: &str = r"
local cur = redis.call('GET', KEYS[1])
if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('GET', KEYS[1])
";

/// Cutoffs in Redis. Cloning is cheap and clones share the connection.
///
/// The [`ConnectionManager`] reconnects by itself after a dropped
/// connection; a call made while Redis is unreachable fails with a
/// [`StoreError`], so the guard fails closed.
///
/// Persistence is Redis's: without AOF or RDB snapshots, a Redis restart
/// forgets every cutoff (and, since unknown subjects are rejected, every
/// token). Configure persistence accordingly, or use a SQL store.
///
/// ```no_run
/// use jwt_revoke::{CutoffStore, RedisStore};
///
/// # async fn run() -> Result<(), jwt_revoke::StoreError> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?;
/// store.bump_version("user-42").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    bump: Script,
    revoke_before: Script,
    merge: Script,
    revoke_all: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn parse_row(row: Vec<Option<String>>) -> Result<Option<Cutoff>, StoreError> {
    match row.as_slice() {
        [None, None] => Ok(None),
        [v, nb] => {
            let version = v
                .as_deref()
                .unwrap_or("0")
                .parse::<u64>()
                .map_err(|_| StoreError::msg("redis field `v` is not a u64"))?;
            let not_before = nb
                .as_deref()
                .unwrap_or("0")
                .parse::<i64>()
                .map_err(|_| StoreError::msg("redis field `nb` is not an i64"))?;
            Ok(Some(Cutoff::new(version, not_before)))
        }
        _ => Err(StoreError::msg("unexpected reply shape from redis")),
    }
}

fn written(row: Vec<Option<String>>) -> Result<Cutoff, StoreError> {
    parse_row(row)?.ok_or_else(|| StoreError::msg("redis write returned no cutoff"))
}

impl RedisStore {
    /// A store over a connection manager, with key prefix `jwt-revoke:`.
    pub fn new(conn: ConnectionManager) -> Self {
        RedisStore {
            conn,
            prefix: "jwt-revoke:".to_owned(),
            bump: Script::new(BUMP),
            revoke_before: Script::new(REVOKE_BEFORE),
            merge: Script::new(MERGE),
            revoke_all: Script::new(REVOKE_ALL),
        }
    }

    /// Connects to `url` (e.g. `redis://127.0.0.1:6379/`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(StoreError::new)?;
        let conn = client
            .get_connection_manager()
            .await
            .map_err(StoreError::new)?;
        Ok(RedisStore::new(conn))
    }

    /// Uses another key prefix (several applications on one Redis).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn key(&self, sub: &str) -> String {
        format!("{}sub:{sub}", self.prefix)
    }

    fn global_key(&self) -> String {
        format!("{}global", self.prefix)
    }

    /// Adds a subject (a registered user), merging by maximum if it exists.
    pub async fn insert(&self, sub: &str, cutoff: Cutoff) -> Result<Cutoff, StoreError> {
        let row: Vec<Option<String>> = self
            .merge
            .key(self.key(sub))
            .arg(cutoff.version.to_string())
            .arg(cutoff.not_before.clamp(-LUA_EXACT, LUA_EXACT))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::new)?;
        written(row)
    }

    /// Forgets a subject (a deleted user). Returns whether it existed.
    pub async fn remove(&self, sub: &str) -> Result<bool, StoreError> {
        let n: u64 = self
            .conn
            .clone()
            .del(self.key(sub))
            .await
            .map_err(StoreError::new)?;
        Ok(n > 0)
    }
}

impl CutoffStore for RedisStore {
    async fn load(&self, sub: &str) -> Result<Option<Cutoff>, StoreError> {
        let row: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.key(sub))
            .arg("v")
            .arg("nb")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::new)?;
        parse_row(row)
    }

    async fn bump_version(&self, sub: &str) -> Result<Cutoff, StoreError> {
        let row: Vec<Option<String>> = self
            .bump
            .key(self.key(sub))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::new)?;
        written(row)
    }

    async fn revoke_before(&self, sub: &str, at: i64) -> Result<Cutoff, StoreError> {
        let nb = at.saturating_add(1).clamp(-LUA_EXACT, LUA_EXACT);
        let row: Vec<Option<String>> = self
            .revoke_before
            .key(self.key(sub))
            .arg(nb)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::new)?;
        written(row)
    }

    async fn load_global(&self) -> Result<i64, StoreError> {
        let nb: Option<i64> = self
            .conn
            .clone()
            .get(self.global_key())
            .await
            .map_err(StoreError::new)?;
        Ok(nb.unwrap_or(0))
    }

    async fn revoke_all_before(&self, at: i64) -> Result<i64, StoreError> {
        let nb = at.saturating_add(1).clamp(-LUA_EXACT, LUA_EXACT);
        let now: Option<String> = self
            .revoke_all
            .key(self.global_key())
            .arg(nb)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::new)?;
        now.as_deref()
            .unwrap_or("0")
            .parse()
            .map_err(|_| StoreError::msg("redis global cutoff is not an i64"))
    }
}
