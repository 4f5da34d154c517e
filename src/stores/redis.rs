//! A [`CutoffStore`] and [`SessionStore`] on Redis, through redis-rs.
//!
//! One hash per subject, `{prefix}sub:{sub}` with fields `v` (version) and
//! `nb` (not_before), and one string `{prefix}global`. Every write is one
//! Lua script, so it is atomic, and it keeps both fields monotone.
//!
//! # Rows it does not understand fail closed
//!
//! A row is read back only when both fields are present and canonical
//! decimal integers (`v` a `u64`, `nb` an `i64`: digits only, an optional
//! `-` for `nb`, no leading zero, no `+`, no spaces, in range). A hash that
//! lost a field (another tool, `HDEL`, a per-field expiry) or holds
//! anything else (`"007"`, `"+1"`, `" 1"`, `""`, `"1e3"`) is a
//! [`StoreError`] on `load`, so the guard answers `store_unavailable`: it
//! is never read as version 0 and never revokes less than was written. The
//! write scripts refuse such a row too (an error, the row left as it is)
//! rather than reset it. The same holds for the global cutoff.
//!
//! Lua numbers are doubles, so the scripts never compare cutoffs as
//! numbers: both fields are compared as canonical decimal strings, exact
//! for all of `u64` and `i64`.
//!
//! # Sessions
//!
//! As a [`SessionStore`], one hash per session, `{prefix}session:{sid}`,
//! with fields `sub`, `g` (generation), `v` (version), `c` (created_at),
//! `u` (last_used_at), `e` (expires_at) and `r` (revoked_at, the empty
//! string while the session is live); never a token. A set per subject,
//! `{prefix}sessions:{sub}`, holds its session ids (for listing), and a
//! sorted set `{prefix}session-expiry` ranks sessions by `expires_at` (for
//! purging). Each operation is one Lua script over the hash and the sets,
//! so it is atomic; generations are compared and incremented as decimal
//! strings, exact up to `u64::MAX` (a generation there cannot move
//! forward: presenting it is reuse). The same rules hold as for cutoff
//! rows: a session hash that lost a field or holds a non-canonical number
//! is a [`StoreError`] when read, and the scripts never write over it.
//!
//! A session script touches keys it finds in the sets, so the session
//! store needs one Redis server (or a primary with replicas), not Redis
//! Cluster. Purging runs in batches of [`PURGE_BATCH`] sessions per script
//! call, so it never holds Redis for long; each batch is atomic.
//!
//! # Failing fast during an outage
//!
//! redis-rs's [`ConnectionManager`] reconnects after a dropped connection,
//! and a call made meanwhile waits for that reconnection. With redis-rs's
//! defaults (6 retries, exponential backoff) that put about ten seconds of
//! waiting on every request during an outage. [`RedisStore::connect`] and
//! [`RedisStoreBuilder`] configure the manager to fail fast instead: one
//! retry after 100 ms, 500 ms to connect, 1 s for a reply, so a call fails
//! in about two seconds at worst and the guard answers `store_unavailable`.
//! The manager still reconnects on the next call once Redis is back.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use crate::cutoff::Cutoff;
use crate::session::{Rotate, Rotation, Session, SessionStore};
use crate::store::{CutoffStore, StoreError};
use crate::stores::{check_storable, storable};

/// Lua helpers every script starts with: canonical integer checks, exact
/// comparison, and the row read that refuses a partial or corrupt row.
const PRELUDE: &str = r"
local function ule(a, b)
  if #a ~= #b then return #a < #b end
  return a <= b
end
local function canon(s, signed)
  if type(s) ~= 'string' then return false end
  local neg, d = false, s
  if signed and s:sub(1, 1) == '-' then neg, d = true, s:sub(2) end
  if d == '0' then return not neg end
  if not d:match('^[1-9][0-9]*$') then return false end
  if not signed then return ule(d, '18446744073709551615') end
  if neg then return ule(d, '9223372036854775808') end
  return ule(d, '9223372036854775807')
end
local function gt(a, b)
  local an, bn = a:sub(1, 1) == '-', b:sub(1, 1) == '-'
  if an ~= bn then return bn end
  if an then a, b = b:sub(2), a:sub(2) end
  if #a ~= #b then return #a > #b end
  return a > b
end
-- A record created now starts after now: Redis's clock plus two seconds,
-- and at least `nb` (a decimal string).
local function born(nb)
  local t = tostring(tonumber(redis.call('TIME')[1]) + 2)
  if nb and gt(nb, t) then return nb end
  return t
end
local function row(key)
  local r = redis.call('HMGET', key, 'v', 'nb')
  local v, nb = r[1], r[2]
  if (not v) and (not nb) then return nil, nil, nil end
  if canon(v, false) and canon(nb, true) then return v, nb, nil end
  return nil, nil, 'jwt-revoke: partial or non-canonical cutoff row, not overwritten'
end
";

const BUMP: &str = r"
local v, nb, err = row(KEYS[1])
if err then return redis.error_reply(err) end
if not v then
  redis.call('HSET', KEYS[1], 'v', '1', 'nb', born(nil))
else
  redis.call('HINCRBY', KEYS[1], 'v', 1)
end
return redis.call('HMGET', KEYS[1], 'v', 'nb')
";

const REVOKE_BEFORE: &str = r"
local v, nb, err = row(KEYS[1])
if err then return redis.error_reply(err) end
if not v then
  redis.call('HSET', KEYS[1], 'v', '0', 'nb', born(ARGV[1]))
elseif gt(ARGV[1], nb) then
  redis.call('HSET', KEYS[1], 'nb', ARGV[1])
end
return redis.call('HMGET', KEYS[1], 'v', 'nb')
";

/// Merges `(ARGV[1] version, ARGV[2] not_before)` by maximum.
const MERGE: &str = r"
local v, nb, err = row(KEYS[1])
if err then return redis.error_reply(err) end
if not v then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'nb', born(ARGV[2]))
else
  if gt(ARGV[1], v) then redis.call('HSET', KEYS[1], 'v', ARGV[1]) end
  if gt(ARGV[2], nb) then redis.call('HSET', KEYS[1], 'nb', ARGV[2]) end
end
return redis.call('HMGET', KEYS[1], 'v', 'nb')
";

/// The global cutoff, created when missing as a global revocation at that
/// moment, never read as "no global cutoff": by the setup of
/// [`RedisStore::connect`] (`ARGV[1]` = `setup`) at the current second
/// (nothing issued before the key existed is accepted; a new Redis, or one
/// that lost its data, before this instance started); by a read that finds
/// the key gone later (evicted, deleted, lost in a restart) two seconds
/// ahead, like `revoke_all_before(now)`.
const GLOBAL: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
local nb
if ARGV[1] == 'setup' then
  nb = redis.call('TIME')[1]
else
  nb = born(nil)
end
redis.call('SET', KEYS[1], nb)
return nb
";

const REVOKE_ALL: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and not canon(cur, true) then
  return redis.error_reply('jwt-revoke: non-canonical global cutoff, not overwritten')
end
if (not cur) or gt(ARGV[1], cur) then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('GET', KEYS[1])
";

/// Lua helpers of the session scripts (after [`PRELUDE`]): the session
/// read that refuses a partial or corrupt hash, and exact increment.
const SESSION_PRELUDE: &str = r"
local function session(key)
  local s = redis.call('HMGET', key, 'sub', 'g', 'v', 'c', 'u', 'e', 'r', 's')
  local any = false
  for i = 1, 8 do
    if s[i] then any = true end
  end
  if not any then return nil, nil end
  local ok = type(s[1]) == 'string' and canon(s[2], false) and canon(s[3], false)
    and canon(s[4], true) and canon(s[5], true) and canon(s[6], true)
    and (s[7] == '' or canon(s[7], true)) and canon(s[8], true)
  if not ok then
    return nil, 'jwt-revoke: partial or non-canonical session row, not overwritten'
  end
  return s, nil
end
local function incr(d)
  local tail = ''
  for i = #d, 1, -1 do
    local c = d:byte(i) - 48
    if c < 9 then return d:sub(1, i - 1) .. string.char(c + 49) .. tail end
    tail = '0' .. tail
  end
  return '1' .. tail
end
";

/// `KEYS`: session, subject set, expiry index. `ARGV`: sid, sub, g, v, c,
/// u, e, r, s.
const CREATE_SESSION: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('jwt-revoke: a session with this id exists')
end
redis.call('HSET', KEYS[1], 'sub', ARGV[2], 'g', ARGV[3], 'v', ARGV[4], 'c', ARGV[5],
  'u', ARGV[6], 'e', ARGV[7], 'r', ARGV[8], 's', ARGV[9])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
return 1
";

/// The rules of `SessionStore::rotate_refresh`, in their order. `KEYS`:
/// session, expiry index. `ARGV`: sub, the presented generation, that
/// plus one when a grace applies (else empty), `now - grace` (else empty),
/// now, the new `expires_at`, sid, the presented generation plus three
/// (the target of a graced rotation, rule 5; empty when it would
/// overflow). Answers the outcome, followed by the
/// session's fields after a rotation or a reuse.
const ROTATE: &str = r"
local s, err = session(KEYS[1])
if err then return redis.error_reply(err) end
if (not s) or s[1] ~= ARGV[1] then return {'unknown'} end
if s[7] ~= '' then return {'revoked'} end
if not gt(s[6], ARGV[5]) then return {'expired'} end
local g = s[2]
local graced = ARGV[3] ~= '' and g == ARGV[3] and not gt(ARGV[4], s[5]) and ARGV[8] ~= ''
local target
if g == ARGV[2] and g ~= '18446744073709551615' then
  target = incr(g)
elseif graced then
  target = ARGV[8]
end
local outcome
if target then
  redis.call('HSET', KEYS[1], 'g', target, 'u', ARGV[5], 'e', ARGV[6])
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[7])
  outcome = 'rotated'
else
  redis.call('HSET', KEYS[1], 'r', ARGV[5])
  outcome = 'reused'
end
local out = redis.call('HMGET', KEYS[1], 'sub', 'g', 'v', 'c', 'u', 'e', 'r', 's')
table.insert(out, 1, outcome)
return out
";

/// `KEYS`: session. `ARGV`: sub, revoked_at. Answers 1 when it revoked.
const REVOKE_SESSION: &str = r"
local s, err = session(KEYS[1])
if err then return redis.error_reply(err) end
if (not s) or s[1] ~= ARGV[1] or s[7] ~= '' then return 0 end
redis.call('HSET', KEYS[1], 'r', ARGV[2])
return 1
";

/// `KEYS`: subject set. `ARGV`: the session key prefix. Answers, for each
/// id in the set, the id and the session's fields (absent ones nil): the
/// caller parses and filters them.
const LIST_SESSIONS: &str = r"
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local s = redis.call('HMGET', ARGV[1] .. id, 'sub', 'g', 'v', 'c', 'u', 'e', 'r', 's')
  table.insert(out, id)
  for i = 1, 8 do table.insert(out, s[i]) end
end
return out
";

/// `KEYS`: subject set. `ARGV`: the session key prefix, sub, revoked_at
/// (now). Revokes every live session of the subject, expired or not (expiry
/// is judged by each instance's clock), and answers the ids of all its
/// sessions, revoked before or now (a retry after a lost reply names them
/// again). A session hash this store does not understand is an error, and
/// nothing is written.
const REVOKE_SESSIONS: &str = r"
local found = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local s, err = session(ARGV[1] .. id)
  if err then return redis.error_reply(err) end
  if s and s[1] == ARGV[2] then
    table.insert(found, {id, s[7]})
  end
end
local out = {}
for _, f in ipairs(found) do
  if f[2] == '' then redis.call('HSET', ARGV[1] .. f[1], 'r', ARGV[3]) end
  table.insert(out, f[1])
end
return out
";

/// One batch of a purge. `KEYS`: expiry index. `ARGV`: before, the batch
/// size, how many candidates earlier batches kept (skipped), the session
/// key prefix, the subject set prefix. Scores are doubles, so the index
/// only finds candidates (every `expires_at < before` has a score at most
/// `before` rounded, since rounding is monotone); the exact comparison is
/// on the hash's `e`. A hash that is gone leaves the index; one whose `e`
/// is not canonical is left alone. Answers `{deleted, candidates, kept}`.
const PURGE_SESSIONS: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', ARGV[3], ARGV[2])
local deleted, kept = 0, 0
for _, id in ipairs(ids) do
  local key = ARGV[4] .. id
  local r = redis.call('HMGET', key, 'sub', 'e')
  if (not r[1]) and (not r[2]) then
    redis.call('ZREM', KEYS[1], id)
  elseif canon(r[2], true) and gt(ARGV[1], r[2]) then
    redis.call('DEL', key)
    if r[1] then redis.call('SREM', ARGV[5] .. r[1], id) end
    redis.call('ZREM', KEYS[1], id)
    deleted = deleted + 1
  else
    kept = kept + 1
  end
end
return {deleted, #ids, kept}
";

/// How many sessions one purge script examines at most.
pub const PURGE_BATCH: usize = 1000;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

fn session_script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{SESSION_PRELUDE}{body}"))
}

/// Parses a canonical decimal integer: digits with an optional leading `-`
/// when `signed`, no leading zero, no `+`, no `-0`, no spaces.
fn canonical(s: &str, signed: bool) -> bool {
    let digits = match s.strip_prefix('-') {
        Some(d) if signed => d,
        Some(_) => return false,
        None => s,
    };
    if digits == "0" {
        return digits.len() == s.len();
    }
    digits
        .as_bytes()
        .first()
        .is_some_and(|b| (b'1'..=b'9').contains(b))
        && digits.bytes().all(|b| b.is_ascii_digit())
}

fn parse_u64(s: &str) -> Option<u64> {
    canonical(s, false).then(|| s.parse().ok()).flatten()
}

fn parse_i64(s: &str) -> Option<i64> {
    canonical(s, true).then(|| s.parse().ok()).flatten()
}

/// Cutoffs and sessions in Redis (see the [module documentation](self)).
/// Cloning is cheap and clones share the connection.
///
/// The [`ConnectionManager`] reconnects by itself after a dropped
/// connection; a call made while Redis is unreachable fails fast with a
/// [`StoreError`] (see [`RedisStoreBuilder`] for the bounds), so the guard
/// fails closed.
///
/// A row this store does not understand (a missing field, a non-canonical
/// number) is a [`StoreError`], never read as zero (see the [module
/// documentation](self)). A subject containing a NUL byte is never stored,
/// as in every shipped store: it loads as unknown and writing it is an error.
///
/// Persistence is Redis's: without AOF or RDB snapshots, a Redis restart
/// forgets every cutoff. [`RedisStore::connect`] therefore refuses a Redis
/// without persistence or with an `allkeys-*` eviction policy (see
/// [`RedisStore::check_durability`]). A lost key still fails closed: a
/// subject's record reads as unknown (its tokens are rejected) and is
/// created again after now; a lost global key is created again as a global
/// revocation at the moment it is found missing.
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
    global: Script,
    create_session: Script,
    rotate: Script,
    revoke_session: Script,
    revoke_sessions: Script,
    list_sessions: Script,
    purge_sessions: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// How [`RedisStore`] connects: the URL, the key prefix, and the
/// connection manager's retry and timeout settings, chosen so that a call
/// fails fast while Redis is down instead of waiting out reconnection
/// backoff on the request path.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`number_of_retries`](Self::number_of_retries) | 1 | reconnection attempts after the first one fails |
/// | [`retry_delay`](Self::retry_delay) | 100 ms | wait before each retry (not growing) |
/// | [`connection_timeout`](Self::connection_timeout) | 500 ms | limit on each connection attempt |
/// | [`response_timeout`](Self::response_timeout) | 1 s | limit on each reply |
///
/// With these, while Redis is unreachable a call fails within about
/// `(retries + 1) × connection_timeout + retries × retry_delay` (much sooner
/// when connections are refused outright), and within `response_timeout`
/// when Redis accepts but does not answer. Keep that under the guard's own
/// per-call store timeout.
///
/// ```no_run
/// use std::time::Duration;
/// use jwt_revoke::RedisStore;
///
/// # async fn run() -> Result<(), jwt_revoke::StoreError> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379/")
///     .prefix("my-app:")
///     .response_timeout(Duration::from_millis(500))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    number_of_retries: usize,
    retry_delay: Duration,
    connection_timeout: Duration,
    response_timeout: Duration,
    accept_data_loss: bool,
}

impl RedisStoreBuilder {
    /// Default [`number_of_retries`](Self::number_of_retries): 1.
    pub const DEFAULT_NUMBER_OF_RETRIES: usize = 1;
    /// Default [`retry_delay`](Self::retry_delay): 100 ms.
    pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(100);
    /// Default [`connection_timeout`](Self::connection_timeout): 500 ms.
    pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_millis(500);
    /// Default [`response_timeout`](Self::response_timeout): 1 s.
    pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

    /// The key prefix (default `jwt-revoke:`), to keep several
    /// applications apart on one Redis.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How many times a failed connection attempt is retried before the
    /// call that waits on it fails. `0` tries once.
    #[must_use]
    pub fn number_of_retries(mut self, n: usize) -> Self {
        self.number_of_retries = n;
        self
    }

    /// The wait before each retry. It does not grow between retries.
    #[must_use]
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// The limit on each connection attempt (a host that drops packets
    /// would otherwise hold it for the operating system's TCP timeout).
    #[must_use]
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// The limit on each reply from a connected server.
    #[must_use]
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Connects to a Redis that may lose what this store writes (no
    /// persistence, an `allkeys-*` eviction policy) or whose settings
    /// cannot be read (`CONFIG` disabled): skips
    /// [`RedisStore::check_durability`]. Off by default. What a loss costs:
    /// a lost subject key fails closed (its tokens are `unknown_subject`
    /// until a write or a registration creates it again, after now); a
    /// lost global key is taken as a global revocation when found missing.
    #[must_use]
    pub fn accept_data_loss(mut self, accept: bool) -> Self {
        self.accept_data_loss = accept;
        self
    }

    /// The connection manager configuration these settings make, for hosts
    /// that build their own [`ConnectionManager`] and pass it to
    /// [`RedisStore::new`].
    pub fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_number_of_retries(self.number_of_retries)
            .set_min_delay(self.retry_delay)
            .set_max_delay(self.retry_delay)
            .set_connection_timeout(Some(self.connection_timeout))
            .set_response_timeout(Some(self.response_timeout))
    }

    /// Connects (once, now, within the bounds above), checks that Redis
    /// keeps what the store writes ([`RedisStore::check_durability`],
    /// unless [`accept_data_loss`](Self::accept_data_loss)), runs
    /// [`RedisStore::setup`] and returns the store.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(self.url.as_str()).map_err(StoreError::new)?;
        let conn = client
            .get_connection_manager_with_config(self.manager_config())
            .await
            .map_err(StoreError::new)?;
        let store = RedisStore::new(conn).with_prefix(self.prefix);
        if !self.accept_data_loss {
            store.check_durability().await?;
        }
        store.setup().await?;
        Ok(store)
    }
}

/// A `(v, nb)` reply as a cutoff: both absent is an unknown subject; both
/// present and canonical is a cutoff; anything else is an error.
fn parse_row(row: Vec<Option<String>>) -> Result<Option<Cutoff>, StoreError> {
    match row.as_slice() {
        [None, None] => Ok(None),
        [Some(v), Some(nb)] => match (parse_u64(v), parse_i64(nb)) {
            (Some(version), Some(not_before)) => Ok(Some(Cutoff::new(version, not_before))),
            _ => Err(StoreError::msg(format!(
                "redis cutoff row is not canonical (v = {v:?}, nb = {nb:?})"
            ))),
        },
        [_, _] => Err(StoreError::msg(
            "redis cutoff row is partial: field `v` or `nb` is missing",
        )),
        _ => Err(StoreError::msg("unexpected reply shape from redis")),
    }
}

fn written(row: Vec<Option<String>>) -> Result<Cutoff, StoreError> {
    parse_row(row)?.ok_or_else(|| StoreError::msg("redis write returned no cutoff"))
}

/// A session hash's fields (`sub g v c u e r s`, as the scripts read them) as
/// the session `id`: all absent is no session; all present and canonical
/// (`r` empty or a timestamp) is a session; anything else is an error.
fn parse_session(id: &str, fields: &[Option<String>]) -> Result<Option<Session>, StoreError> {
    if fields.iter().all(Option::is_none) {
        return Ok(None);
    }
    fn corrupt() -> StoreError {
        StoreError::msg("redis session row is partial or not canonical")
    }
    fn field(f: &Option<String>) -> Result<&str, StoreError> {
        f.as_deref().ok_or_else(corrupt)
    }
    let [sub, g, v, c, u, e, r, seen] = fields else {
        return Err(StoreError::msg("unexpected reply shape from redis"));
    };
    let int = |f: &Option<String>| parse_i64(field(f)?).ok_or_else(corrupt);
    let revoked_at = match field(r)? {
        "" => None,
        r => Some(parse_i64(r).ok_or_else(corrupt)?),
    };
    Ok(Some(Session {
        id: id.to_owned(),
        sub: field(sub)?.to_owned(),
        generation: parse_u64(field(g)?).ok_or_else(corrupt)?,
        version: parse_u64(field(v)?).ok_or_else(corrupt)?,
        created_at: int(c)?,
        last_used_at: int(u)?,
        expires_at: int(e)?,
        revoked_at,
        not_before_seen: int(seen)?,
    }))
}

/// The session a rotation wrote.
fn rotated_session(id: &str, fields: &[Option<String>]) -> Result<Session, StoreError> {
    parse_session(id, fields)?.ok_or_else(|| StoreError::msg("redis rotation returned no session"))
}

impl RedisStore {
    /// A store over a connection manager, with key prefix `jwt-revoke:`.
    ///
    /// The manager's own retry settings apply: redis-rs's defaults wait
    /// out several seconds of reconnection backoff on every call during an
    /// outage. Build it with [`RedisStoreBuilder::manager_config`] (or use
    /// [`RedisStore::connect`] / [`RedisStore::builder`]) to fail fast.
    ///
    /// Call [`RedisStore::check_durability`] and [`RedisStore::setup`]
    /// (with the final prefix) once before use, as `connect` does: without
    /// the setup, the first read of the global cutoff finds no key and
    /// takes it as lost (a global revocation at that moment).
    pub fn new(conn: ConnectionManager) -> Self {
        RedisStore {
            conn,
            prefix: "jwt-revoke:".to_owned(),
            bump: script(BUMP),
            revoke_before: script(REVOKE_BEFORE),
            merge: script(MERGE),
            revoke_all: script(REVOKE_ALL),
            global: script(GLOBAL),
            create_session: session_script(CREATE_SESSION),
            rotate: session_script(ROTATE),
            revoke_session: session_script(REVOKE_SESSION),
            revoke_sessions: session_script(REVOKE_SESSIONS),
            list_sessions: session_script(LIST_SESSIONS),
            purge_sessions: session_script(PURGE_SESSIONS),
        }
    }

    /// A builder for a store on `url` (e.g. `redis://127.0.0.1:6379/`), with
    /// the fail-fast defaults listed on [`RedisStoreBuilder`].
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: "jwt-revoke:".to_owned(),
            number_of_retries: RedisStoreBuilder::DEFAULT_NUMBER_OF_RETRIES,
            retry_delay: RedisStoreBuilder::DEFAULT_RETRY_DELAY,
            connection_timeout: RedisStoreBuilder::DEFAULT_CONNECTION_TIMEOUT,
            response_timeout: RedisStoreBuilder::DEFAULT_RESPONSE_TIMEOUT,
            accept_data_loss: false,
        }
    }

    /// Connects to `url` (e.g. `redis://127.0.0.1:6379/`) with the
    /// fail-fast defaults of [`RedisStoreBuilder`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        RedisStore::builder(url).connect().await
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

    /// Where session keys start: `{prefix}session:`, then the id.
    fn session_prefix(&self) -> String {
        format!("{}session:", self.prefix)
    }

    fn session_key(&self, sid: &str) -> String {
        format!("{}session:{sid}", self.prefix)
    }

    /// Where subject sets start: `{prefix}sessions:`, then the subject.
    fn subject_sessions_prefix(&self) -> String {
        format!("{}sessions:", self.prefix)
    }

    fn subject_sessions_key(&self, sub: &str) -> String {
        format!("{}sessions:{sub}", self.prefix)
    }

    fn session_expiry_key(&self) -> String {
        format!("{}session-expiry", self.prefix)
    }

    /// Adds a subject (a registered user), merging by maximum if it exists.
    /// A subject containing a NUL byte, or a row this store does not
    /// understand, is an error.
    pub async fn insert(&self, sub: &str, cutoff: Cutoff) -> Result<Cutoff, StoreError> {
        check_storable(sub)?;
        let row: Vec<Option<String>> = self
            .merge
            .key(self.key(sub))
            .arg(cutoff.version.to_string())
            .arg(cutoff.not_before.to_string())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::new)?;
        written(row)
    }

    /// Prepares a Redis for this store: writes the global cutoff key when
    /// Redis does not hold it (a new Redis, or one that lost its data), at
    /// the current second of Redis's clock: nothing issued before it
    /// existed is accepted, so an instance starting after a loss never
    /// reads it as "no global cutoff". [`RedisStore::connect`] runs it.
    pub async fn setup(&self) -> Result<(), StoreError> {
        self.global_or("setup").await.map(|_| ())
    }

    async fn global_or(&self, missing: &str) -> Result<i64, StoreError> {
        let nb: Option<String> = self
            .global
            .key(self.global_key())
            .arg(missing)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::new)?;
        let nb = nb.ok_or_else(|| StoreError::msg("redis returned no global cutoff"))?;
        parse_i64(&nb).ok_or_else(|| {
            StoreError::msg(format!("redis global cutoff is not canonical ({nb:?})"))
        })
    }

    /// Checks that Redis keeps what this store writes: persistence on (an
    /// append-only file or RDB snapshots) and an eviction policy that never
    /// evicts keys without an expiry (`noeviction` or a `volatile-*`
    /// policy; this store sets no expiry). A server that fails the check,
    /// or that refuses `CONFIG GET` (a managed Redis may), is an error
    /// naming what to change. [`RedisStore::connect`] runs it unless
    /// [`RedisStoreBuilder::accept_data_loss`] says otherwise.
    pub async fn check_durability(&self) -> Result<(), StoreError> {
        let config = |name: &'static str| {
            let mut conn = self.conn.clone();
            async move {
                let pairs: Vec<String> = redis::cmd("CONFIG")
                    .arg("GET")
                    .arg(name)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| {
                        StoreError::msg(format!(
                            "cannot read Redis's {name} setting ({e}); check persistence and \
                             eviction by hand, then build the store with accept_data_loss(true)"
                        ))
                    })?;
                Ok::<String, StoreError>(pairs.get(1).cloned().unwrap_or_default())
            }
        };
        let policy = config("maxmemory-policy").await?;
        if policy.starts_with("allkeys-") {
            return Err(StoreError::msg(format!(
                "Redis's maxmemory-policy is {policy}: it may evict cutoffs and sessions, \
                 which revives revoked tokens; set maxmemory-policy noeviction"
            )));
        }
        let aof = config("appendonly").await?;
        let save = config("save").await?;
        if aof != "yes" && save.trim().is_empty() {
            return Err(StoreError::msg(
                "Redis has no persistence (appendonly no, save \"\"): a restart forgets every \
                 revocation; set appendonly yes (or RDB snapshots), or build the store with \
                 accept_data_loss(true)",
            ));
        }
        Ok(())
    }

    /// Forgets a subject (a deleted user). Returns whether it existed. Its
    /// sessions stay: end them first with
    /// [`Guard::revoke_sessions`](crate::Guard::revoke_sessions). A record
    /// created again later starts after now.
    pub async fn remove(&self, sub: &str) -> Result<bool, StoreError> {
        if !storable(sub) {
            return Ok(false);
        }
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
        if !storable(sub) {
            return Ok(None);
        }
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
        check_storable(sub)?;
        let row: Vec<Option<String>> = self
            .bump
            .key(self.key(sub))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::new)?;
        written(row)
    }

    async fn revoke_before(&self, sub: &str, at: i64) -> Result<Cutoff, StoreError> {
        check_storable(sub)?;
        let row: Vec<Option<String>> = self
            .revoke_before
            .key(self.key(sub))
            .arg(at.saturating_add(1).to_string())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::new)?;
        written(row)
    }

    /// [`RedisStore::setup`] (run by [`RedisStore::connect`]) writes the
    /// global key; a key missing later was lost (evicted, deleted, gone in
    /// a restart without persistence), so it is created again as a global
    /// revocation at this moment (Redis's `TIME` plus two seconds): a lost
    /// `revoke_all_before` is never read as "no global cutoff".
    async fn load_global(&self) -> Result<i64, StoreError> {
        self.global_or("").await
    }

    async fn revoke_all_before(&self, at: i64) -> Result<i64, StoreError> {
        let now: Option<String> = self
            .revoke_all
            .key(self.global_key())
            .arg(at.saturating_add(1).to_string())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::new)?;
        let now = now.ok_or_else(|| StoreError::msg("redis write returned no global cutoff"))?;
        parse_i64(&now).ok_or_else(|| {
            StoreError::msg(format!("redis global cutoff is not canonical ({now:?})"))
        })
    }
}

impl SessionStore for RedisStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        check_storable(&session.sub)?;
        check_storable(&session.id)?;
        let _: i64 = self
            .create_session
            .key(self.session_key(&session.id))
            .key(self.subject_sessions_key(&session.sub))
            .key(self.session_expiry_key())
            .arg(&session.id)
            .arg(&session.sub)
            .arg(session.generation.to_string())
            .arg(session.version.to_string())
            .arg(session.created_at.to_string())
            .arg(session.last_used_at.to_string())
            .arg(session.expires_at.to_string())
            .arg(
                session
                    .revoked_at
                    .map_or_else(String::new, |r| r.to_string()),
            )
            .arg(session.not_before_seen.to_string())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::new)?;
        Ok(())
    }

    async fn load_session(&self, sub: &str, sid: &str) -> Result<Option<Session>, StoreError> {
        if !storable(sub) || !storable(sid) {
            return Ok(None);
        }
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.session_key(sid))
            .arg(&["sub", "g", "v", "c", "u", "e", "r", "s"])
            .query_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::new)?;
        Ok(parse_session(sid, &fields)?.filter(|s| s.sub == sub))
    }

    async fn rotate_refresh(
        &self,
        sub: &str,
        sid: &str,
        rotate: Rotate,
    ) -> Result<Rotation, StoreError> {
        if !storable(sub) || !storable(sid) {
            return Ok(Rotation::Unknown);
        }
        // The grace arithmetic happens here, exactly: the script compares
        // decimal strings only.
        let plus = |n: u64| {
            rotate
                .generation
                .checked_add(n)
                .map_or_else(String::new, |g| g.to_string())
        };
        // A negative grace is no grace (`Rotate::grace`).
        let (next, since, graced) = match rotate.grace.filter(|g| *g >= 0) {
            Some(grace) => (
                plus(1),
                rotate.now.saturating_sub(grace).to_string(),
                plus(3),
            ),
            None => (String::new(), String::new(), String::new()),
        };
        let reply: Vec<Option<String>> = self
            .rotate
            .key(self.session_key(sid))
            .key(self.session_expiry_key())
            .arg(sub)
            .arg(rotate.generation.to_string())
            .arg(next)
            .arg(since)
            .arg(rotate.now.to_string())
            .arg(rotate.expires_at.to_string())
            .arg(sid)
            .arg(graced)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::new)?;
        match reply.split_first() {
            Some((Some(outcome), fields)) => match outcome.as_str() {
                "rotated" => Ok(Rotation::Rotated(rotated_session(sid, fields)?)),
                "reused" => Ok(Rotation::Reused(rotated_session(sid, fields)?)),
                "revoked" => Ok(Rotation::Revoked),
                "expired" => Ok(Rotation::Expired),
                "unknown" => Ok(Rotation::Unknown),
                _ => Err(StoreError::msg("unexpected rotation outcome from redis")),
            },
            _ => Err(StoreError::msg("unexpected reply shape from redis")),
        }
    }

    async fn revoke_session(&self, sub: &str, sid: &str, at: i64) -> Result<bool, StoreError> {
        if !storable(sub) || !storable(sid) {
            return Ok(false);
        }
        let revoked: i64 = self
            .revoke_session
            .key(self.session_key(sid))
            .arg(sub)
            .arg(at.to_string())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::new)?;
        Ok(revoked == 1)
    }

    async fn revoke_sessions(&self, sub: &str, at: i64) -> Result<Vec<String>, StoreError> {
        if !storable(sub) {
            return Ok(Vec::new());
        }
        self.revoke_sessions
            .key(self.subject_sessions_key(sub))
            .arg(self.session_prefix())
            .arg(sub)
            .arg(at.to_string())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::new)
    }

    async fn list_sessions(&self, sub: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        if !storable(sub) {
            return Ok(Vec::new());
        }
        let reply: Vec<Option<String>> = self
            .list_sessions
            .key(self.subject_sessions_key(sub))
            .arg(self.session_prefix())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::new)?;
        let mut sessions = Vec::new();
        for entry in reply.chunks(9) {
            let Some((Some(id), fields)) = entry.split_first() else {
                return Err(StoreError::msg("unexpected reply shape from redis"));
            };
            // An id whose hash is gone, or names another subject, is not
            // one of this subject's sessions.
            if let Some(s) = parse_session(id, fields)?
                && s.sub == sub
                && s.is_active(now)
            {
                sessions.push(s);
            }
        }
        crate::stores::oldest_first(&mut sessions);
        Ok(sessions)
    }

    async fn purge_sessions(&self, before: i64) -> Result<u64, StoreError> {
        let mut purged = 0;
        let mut kept = 0u64;
        loop {
            let (deleted, candidates, batch_kept): (u64, usize, u64) = self
                .purge_sessions
                .key(self.session_expiry_key())
                .arg(before.to_string())
                .arg(PURGE_BATCH)
                .arg(kept)
                .arg(self.session_prefix())
                .arg(self.subject_sessions_prefix())
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(StoreError::new)?;
            purged += deleted;
            kept += batch_kept;
            if candidates < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }
}
