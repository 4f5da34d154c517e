//! The entry point: issue, validate and revoke tokens.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;
use serde::de::{Deserialize, DeserializeOwned};

use crate::bus::{CutoffEvent, Publisher};
use crate::cache::{CacheConfig, CutoffCache, Join, Lookup, Origin, SubjectKey};
use crate::claims::{
    RESERVED, Segments, Skip, Verified, WireClaims, b64, parse_canonical, parse_claims,
    parse_extra, parse_header, time_claim,
};
use crate::clock::{Clock, SystemClock};
use crate::cutoff::{Cutoff, RevokedReason};
use crate::error::Error;
use crate::keys::{Keys, Signature, VerifyingKey};
use crate::session::{SessionConfig, SessionLoad, SessionSupport};
use crate::store::{CutoffStore, StoreError};
use crate::verified::VerifiedCache;

#[cfg(not(any(feature = "rust_crypto", feature = "aws_lc_rs")))]
compile_error!(
    "jwt-revoke needs a crypto backend: enable the `rust_crypto` or `aws_lc_rs` feature"
);

/// Default size limit of a token, checked before any parsing.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Validates, issues and revokes tokens for one application instance.
///
/// Cloning is cheap (a reference count) and clones share the cache, so one
/// guard can be stored in framework state and handed to every request.
///
/// See the [crate documentation](crate) for an example.
pub struct Guard<S: CutoffStore> {
    pub(crate) inner: Arc<Inner<S>>,
}

impl<S: CutoffStore> Clone for Guard<S> {
    fn clone(&self) -> Self {
        Guard {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: CutoffStore> std::fmt::Debug for Guard<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("keys", &self.inner.keys)
            .field("cached_subjects", &self.inner.cache.len())
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) leeway: i64,
    max_token_bytes: usize,
    pub(crate) access_ttl: i64,
    issuer: Option<String>,
    audience: Option<String>,
    accept_any_audience: bool,
    foreign_tokens: bool,
    pub(crate) store_timeout: Duration,
    /// Seconds a cutoff's `not_before` may lie ahead of now.
    max_future_cutoff: i64,
}

pub(crate) struct Inner<S> {
    keys: Keys,
    pub(crate) store: S,
    pub(crate) cache: CutoffCache,
    verified: VerifiedCache,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: Settings,
    publisher: Option<Box<dyn Publisher>>,
    /// The header segment of this guard's own tokens and the key that
    /// verifies it (see `verify_signature`).
    own_header: Option<(String, usize)>,
    /// Sessions and refresh tokens, when enabled
    /// ([`GuardBuilder::sessions`]).
    pub(crate) sessions: Option<SessionSupport<S>>,
}

/// Configures a [`Guard`]. Every setting documents its default; the defaults
/// are the secure ones.
#[must_use]
pub struct GuardBuilder<S: CutoffStore> {
    keys: Keys,
    store: S,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    negative_ttl: Duration,
    stale_if_error: Option<Duration>,
    max_entries: usize,
    max_negative_entries: usize,
    leeway: Duration,
    max_token_bytes: usize,
    access_ttl: Duration,
    issuer: Option<String>,
    audience: Option<String>,
    accept_any_audience: bool,
    foreign_tokens: bool,
    publisher: Option<Box<dyn Publisher>>,
    store_timeout: Duration,
    max_future_cutoff: Duration,
    verified_tokens: usize,
    verified_bytes: usize,
    pub(crate) sessions: Option<(SessionConfig, SessionLoad<S>)>,
}

pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The longest cache TTL the builder accepts: long enough for "trust the
/// bus", short enough that every time the cache derives from a read stamp
/// (see `cache::Stamp`) stays in range.
const MAX_CACHE_TTL: Duration = Duration::from_secs(10 * 366 * 86_400);

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl<S: CutoffStore> GuardBuilder<S> {
    /// The clock (default: [`SystemClock`]). Tests pass a
    /// [`FakeClock`](crate::FakeClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How long a cached cutoff is trusted before the store is asked again
    /// (default 30 s; at least 1 ms and at most 10 years, or
    /// [`build`](Self::build) fails). Without an invalidation bus this is
    /// the bound on how long another instance keeps accepting a token
    /// revoked elsewhere.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long "unknown subject" answers are cached (default 5 s), so a
    /// flood of tokens for nonexistent subjects cannot hammer the store.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// Opt-in: when the store fails, keep using a cached cutoff for up to
    /// `window` past its expiry (default: off, the guard fails closed with
    /// [`Error::StoreUnavailable`]). Cutoffs never move backwards, so a stale
    /// cutoff only misses revocations made on other instances meanwhile.
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.stale_if_error = Some(window);
        self
    }

    /// Bound on cached subjects (default 100 000). When full, expired
    /// entries are dropped first, then arbitrary ones down to 90 %. The bound
    /// can be exceeded momentarily by the number of concurrent inserts.
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// Bound on cached "unknown subject" answers (default 10 000), kept
    /// apart from `max_entries` so a flood of unknown subjects cannot evict
    /// real ones.
    pub fn max_negative_entries(mut self, n: usize) -> Self {
        self.max_negative_entries = n;
        self
    }

    /// Clock tolerance for `exp`, `nbf` and a future `iat` (default 60 s).
    /// Never applied to cutoffs. A future `iat` is allowed up to
    /// `max(leeway, 1 s)` so a login stamped `iat = not_before` right after a
    /// revocation is accepted.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Tokens longer than this are rejected before parsing (default 8 KiB).
    pub fn max_token_bytes(mut self, n: usize) -> Self {
        self.max_token_bytes = n;
        self
    }

    /// Lifetime of issued tokens: `exp = now + access_ttl` (default 15 min).
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// Stamp `iss` on issued tokens and require it on validated ones
    /// (default: not stamped, not checked).
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuer = Some(iss.into());
        self
    }

    /// Stamp `aud` on issued tokens and require validated ones to contain it
    /// (default: not stamped; a token that carries an `aud` is rejected, see
    /// [`GuardBuilder::accept_any_audience`]).
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audience = Some(aud.into());
        self
    }

    /// Opt-out (default off): with no [`audience`](GuardBuilder::audience)
    /// configured, accept tokens whatever their `aud` claim says.
    ///
    /// By default a guard without an audience rejects every token that
    /// carries an `aud` (a string or an array, even empty) with
    /// [`Error::InvalidAudience`]: RFC 7519 §4.1.3 requires a recipient that
    /// does not identify itself with a value in `aud` to reject the token,
    /// and a token minted for another service must not be honoured here.
    /// `aud: null` counts as absent. Turn this on only when the tokens'
    /// audience is checked elsewhere; `aud` must still be a string or an
    /// array of strings. Combining it with `audience` is a configuration
    /// error.
    pub fn accept_any_audience(mut self, on: bool) -> Self {
        self.accept_any_audience = on;
        self
    }

    /// Foreign-token mode (default off): tokens minted elsewhere, e.g. by an
    /// identity provider, carry no `ver`. Their `ver` claim, if any, is
    /// ignored and only the timestamp cutoffs apply, so log-out-everywhere is
    /// done with [`Guard::revoke_before`], not [`Guard::bump_version`].
    pub fn foreign_tokens(mut self, on: bool) -> Self {
        self.foreign_tokens = on;
        self
    }

    /// Longest wait on the store for one call (default 2 s). A validation
    /// that needs the store, `issue` and every revocation give up after it
    /// with [`Error::StoreUnavailable`] (or, for validations, the
    /// [`stale_if_error`](Self::stale_if_error) answer where enabled), so a
    /// store that hangs instead of failing never holds a request longer.
    /// A validation waits at most this long in total, cache hits included
    /// (a hit waits only when the global cutoff is due). A revocation that
    /// times out may still land in the store: its outcome is unknown, and
    /// retrying is safe (cutoffs only move forward).
    ///
    /// Timeouts use Tokio's timer: the guard must run inside a Tokio runtime
    /// with the time driver enabled (`#[tokio::main]` and actix-web's
    /// runtime have it).
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// How far in the future a revocation's `not_before` may lie (default
    /// 400 days). [`Guard::revoke_before`] and [`Guard::revoke_all_before`]
    /// with a later `at`, and events from other instances carrying one, are
    /// refused with [`Error::InvalidCutoff`]: a value passed in milliseconds
    /// instead of seconds would otherwise lock every user out for
    /// millennia.
    pub fn max_future_cutoff(mut self, horizon: Duration) -> Self {
        self.max_future_cutoff = horizon;
        self
    }

    /// The verified-token cache (default on: 10 000 tokens, 4 MiB). A token
    /// seen before skips signature verification and registered-claim
    /// parsing, which dominate the cost of RS256, ES256 and EdDSA tokens;
    /// its revocation is still checked against the cutoff on every request,
    /// and an entry is never used past the token's `exp` (plus the leeway).
    /// Entries are keyed by a keyed hash of the exact token bytes. `0` turns
    /// it off.
    pub fn verified_cache(mut self, max_tokens: usize) -> Self {
        self.verified_tokens = max_tokens;
        self
    }

    /// Byte budget of the verified-token cache: the subjects and payloads
    /// it holds plus a fixed overhead per entry (default 4 MiB). A token
    /// whose entry would take more than an eighth of it is not cached.
    pub fn verified_cache_bytes(mut self, max_bytes: usize) -> Self {
        self.verified_bytes = max_bytes;
        self
    }

    /// Publish every revocation to other instances (default: none).
    pub fn publisher(mut self, publisher: impl Publisher) -> Self {
        self.publisher = Some(Box::new(publisher));
        self
    }

    /// Builds the guard, checking the settings.
    pub fn build(self) -> Result<Guard<S>, Error> {
        if self.ttl < Duration::from_millis(1) || self.ttl > MAX_CACHE_TTL {
            return Err(Error::Config(
                "cache_ttl must be between 1 ms and 10 years".into(),
            ));
        }
        if self.max_entries == 0 || self.max_negative_entries == 0 {
            return Err(Error::Config("cache bounds must be positive".into()));
        }
        if self.max_token_bytes < 16 {
            return Err(Error::Config("max_token_bytes is too small".into()));
        }
        if self.access_ttl.is_zero() {
            return Err(Error::Config("access_ttl must be positive".into()));
        }
        if self.store_timeout.is_zero() {
            return Err(Error::Config("store_timeout must be positive".into()));
        }
        if self.store_timeout >= self.ttl {
            // A read that returns a TTL after it started is too old to
            // decide on: with a store slower than the TTL but within the
            // timeout, every miss would be `store_unavailable`.
            return Err(Error::Config(format!(
                "store_timeout ({:?}) must be shorter than cache_ttl ({:?}): a store read \
                 that takes longer than the TTL is too old to decide on",
                self.store_timeout, self.ttl
            )));
        }
        if self.accept_any_audience && self.audience.is_some() {
            return Err(Error::Config(
                "accept_any_audience contradicts a configured audience".into(),
            ));
        }
        self.keys.check()?;
        install_crypto_provider();
        let cache_config = CacheConfig {
            ttl_ms: millis(self.ttl),
            negative_ttl_ms: millis(self.negative_ttl),
            stale_if_error_ms: self.stale_if_error.map(millis),
            max_entries: self.max_entries,
            max_negative_entries: self.max_negative_entries,
        };
        let cache = CutoffCache::new(cache_config.clone(), Arc::clone(&self.clock));
        let sessions = match self.sessions {
            Some((config, load)) => Some(SessionSupport::new(
                config,
                load,
                cache_config,
                Arc::clone(&self.clock),
                Arc::clone(&cache.counters),
            )?),
            None => None,
        };
        // Recognised without parsing only if the full path agrees on it.
        let own_header = self.keys.own_header().filter(|(segment, index)| {
            header_key(&self.keys, segment).is_ok_and(|k| {
                self.keys
                    .key_at(*index)
                    .is_some_and(|own| std::ptr::eq(k, own))
            })
        });
        Ok(Guard {
            inner: Arc::new(Inner {
                own_header,
                keys: self.keys,
                store: self.store,
                cache,
                verified: VerifiedCache::new(
                    self.verified_tokens,
                    self.verified_bytes,
                    crate::cache::random_keys(),
                ),
                clock: self.clock,
                settings: Settings {
                    leeway: secs(self.leeway),
                    max_token_bytes: self.max_token_bytes,
                    access_ttl: secs(self.access_ttl).max(1),
                    issuer: self.issuer,
                    audience: self.audience,
                    accept_any_audience: self.accept_any_audience,
                    foreign_tokens: self.foreign_tokens,
                    store_timeout: self.store_timeout,
                    max_future_cutoff: secs(self.max_future_cutoff),
                },
                publisher: self.publisher,
                sessions,
            }),
        })
    }
}

/// A store call, reported with its latency as a `tracing` event (feature
/// `tracing`; nothing otherwise): the operation and whether it succeeded,
/// never its arguments.
pub(crate) async fn traced<T>(
    operation: &'static str,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    #[cfg(feature = "tracing")]
    {
        let started = std::time::Instant::now();
        let result = call.await;
        tracing::debug!(
            target: "jwt_revoke",
            operation,
            ok = result.is_ok(),
            latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "store call"
        );
        result
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = operation;
        call.await
    }
}

/// The key that verifies a token with this header segment: decoded,
/// parsed (every member type-checked), `alg` allowed, no `crit`, the key
/// its `kid` selects, of that algorithm.
fn header_key<'k>(keys: &'k Keys, segment: &str) -> Result<&'k VerifyingKey, Error> {
    let header_bytes = b64(segment)?;
    let header = parse_header(&header_bytes)?;
    let alg_name = header
        .alg
        .as_deref()
        .ok_or(Error::Malformed("header has no `alg`"))?;
    let alg: Algorithm = alg_name.parse().map_err(|_| Error::AlgorithmNotAllowed)?;
    if header.crit.is_some() {
        return Err(Error::UnsupportedCriticalHeader);
    }
    let key = keys.select(header.kid.as_deref())?;
    if key.alg != alg {
        return Err(Error::AlgorithmNotAllowed);
    }
    Ok(key)
}

/// With both backends compiled in (e.g. `--all-features`), jsonwebtoken
/// cannot pick one and would panic at the first signature; choose aws-lc-rs
/// explicitly. A provider the host installed first is kept.
fn install_crypto_provider() {
    #[cfg(all(feature = "rust_crypto", feature = "aws_lc_rs"))]
    {
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
        );
    }
}

/// How `ver` is read: required `u64` for our tokens, skipped (but checked as
/// JSON, see `claims::Skip`) for foreign ones.
trait VersionClaim: Sized {
    fn version(v: Option<Self>) -> Result<Option<u64>, Error>;
    /// What the general parser makes of a `ver` that is a `u64`.
    fn from_number(n: u64) -> Self;
}

impl VersionClaim for u64 {
    fn version(v: Option<Self>) -> Result<Option<u64>, Error> {
        v.map(Some).ok_or(Error::MissingClaim("ver"))
    }
    fn from_number(n: u64) -> Self {
        n
    }
}

impl VersionClaim for Skip {
    fn version(_: Option<Self>) -> Result<Option<u64>, Error> {
        Ok(None)
    }
    fn from_number(_: u64) -> Self {
        Skip
    }
}

/// The registered claims of a token whose signature checked out.
struct Checked<'p> {
    sub: std::borrow::Cow<'p, str>,
    iat: i64,
    exp: i64,
    ver: Option<u64>,
    nbf: Option<i64>,
    sid: Option<std::borrow::Cow<'p, str>>,
    /// The subject's cache key and, for a token with `sid` on a guard with
    /// sessions, the session's; hashed once per token (a verified-token
    /// entry keeps them).
    keys: CacheKeys,
}

/// A subject's cache key and its session's (when the token has one).
pub(crate) type CacheKeys = (SubjectKey, Option<SubjectKey>);

/// What a token is stamped with: read from the store (not the cache) just
/// before signing.
pub(crate) struct Stamp {
    pub(crate) cutoff: Cutoff,
    pub(crate) global: i64,
    pub(crate) iat: i64,
    pub(crate) exp: i64,
}

/// How far ahead a global `not_before` still makes logins wait
/// ([`Error::RetryLater`]) rather than count as a lock: `now + 2` for one
/// "now" call, plus one for each further one in the same second.
const GLOBAL_WAIT_SECS: i64 = 5;

/// Why a token cannot be stamped now.
enum StampWait {
    /// The subject's record was created in this second: the next second
    /// can stamp.
    CreatedThisSecond,
    /// A revocation (or a clear) of this instance overtook the read: read
    /// again.
    Overtaken,
    Error(Error),
}

impl StampWait {
    fn into_error(self) -> Error {
        match self {
            StampWait::CreatedThisSecond | StampWait::Overtaken => Error::RetryLater,
            StampWait::Error(e) => e,
        }
    }
}

/// The caller's extra claims as a JSON object, refusing registered names.
pub(crate) fn extra_claims<C: Serialize + ?Sized>(
    extra: &C,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let claims = match serde_json::to_value(extra) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(serde_json::Value::Null) => serde_json::Map::new(),
        Ok(_) => return Err(Error::Issue("extra claims must be a JSON object".into())),
        Err(e) => return Err(Error::Issue(format!("extra claims: {e}"))),
    };
    if let Some(name) = RESERVED.iter().find(|r| claims.contains_key(**r)) {
        return Err(Error::Issue(format!("claim `{name}` is reserved")));
    }
    Ok(claims)
}

impl<S: CutoffStore> Guard<S> {
    /// Starts configuring a guard over `keys` and the host's `store`.
    pub fn builder(keys: Keys, store: S) -> GuardBuilder<S> {
        GuardBuilder {
            keys,
            store,
            clock: Arc::new(SystemClock),
            ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
            stale_if_error: None,
            max_entries: 100_000,
            max_negative_entries: 10_000,
            leeway: Duration::from_secs(60),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            access_ttl: Duration::from_secs(15 * 60),
            issuer: None,
            audience: None,
            accept_any_audience: false,
            foreign_tokens: false,
            publisher: None,
            store_timeout: Duration::from_secs(2),
            max_future_cutoff: Duration::from_secs(400 * 86_400),
            verified_tokens: 10_000,
            verified_bytes: 4 << 20,
            sessions: None,
        }
    }

    /// The store this guard reads and writes.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// Lifetime of issued tokens (the `expires_in` of an OAuth response).
    pub fn access_ttl(&self) -> Duration {
        Duration::from_secs(self.inner.settings.access_ttl.unsigned_abs())
    }

    /// Number of subjects whose cutoff is cached.
    pub fn cached_subjects(&self) -> usize {
        self.inner.cache.len()
    }

    /// Number of cached "unknown subject" answers.
    pub fn cached_unknown_subjects(&self) -> usize {
        self.inner.cache.negative_len()
    }

    /// A snapshot of what this guard did since it was built (counters for
    /// every outcome; see [`crate::metrics`]), with the current cache sizes.
    pub fn stats(&self) -> crate::metrics::Stats {
        let cache = &self.inner.cache;
        let mut stats = cache.counters.snapshot();
        stats.cached_subjects = cache.len();
        stats.cached_unknown_subjects = cache.negative_len();
        stats.loads_in_flight = cache.loads_in_flight();
        stats.verified_tokens = self.inner.verified.len();
        stats.verified_bytes = self.inner.verified.bytes();
        stats
    }

    /// Number of store loads pending right now (concurrent misses for one
    /// subject share one). Falls back to zero when no request waits: a
    /// cancelled request releases its share.
    pub fn loads_in_flight(&self) -> usize {
        self.inner.cache.loads_in_flight()
    }

    /// Number of revocations whose publication to other instances failed.
    pub fn publish_errors(&self) -> u64 {
        self.inner.cache.counters.publish_errors_now()
    }

    /// Mints a token for `sub` with the caller's own claims `extra` (`&()`
    /// for none).
    ///
    /// Reads the subject's cutoff from the store (not the cache) and stamps
    /// `ver = cutoff.version` and `iat = max(now, cutoff.not_before, global
    /// not_before)`, so a login right after a revocation (even in the same
    /// second) yields a token that validates. The cutoff read also warms the
    /// cache, so the first request with the new token is a cache hit.
    ///
    /// Errors: [`Error::UnknownSubject`] if the store has no such subject,
    /// [`Error::StoreUnavailable`], [`Error::Revoked`] when the subject is
    /// locked until a time in the future (a token would not validate), and
    /// [`Error::Issue`] when there is no signing key, `sub` is empty, or
    /// `extra` is not a JSON object or uses a registered claim name.
    pub async fn issue<C: Serialize + ?Sized>(
        &self,
        sub: &str,
        extra: &C,
    ) -> Result<String, Error> {
        self.signing_key()?;
        let claims = extra_claims(extra)?;
        let stamp = self.stamp(sub, self.deadline()).await?;
        self.sign(sub, claims, &stamp, None)
    }

    fn signing_key(&self) -> Result<(Option<&str>, Algorithm, &jsonwebtoken::EncodingKey), Error> {
        self.inner
            .keys
            .signing()
            .ok_or_else(|| Error::Issue("no signing key configured".into()))
    }

    /// Reads what a new token for `sub` is stamped with: the subject's
    /// cutoff (from the store, never a flight that started earlier) and the
    /// global cutoff, and decides `iat` and `exp`. The read also warms the
    /// cache.
    pub(crate) async fn stamp(
        &self,
        sub: &str,
        deadline: tokio::time::Instant,
    ) -> Result<Stamp, Error> {
        // A read overtaken by a revocation of this instance is read again:
        // a token is stamped from the store's answer as read, and only a
        // read that no local revocation overtook is the latest.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.read_and_stamp(sub, deadline).await {
                Err(StampWait::Overtaken) if attempts < 3 => continue,
                Err(StampWait::CreatedThisSecond) => break,
                decided => return decided.map_err(StampWait::into_error),
            }
        }
        // The subject's record was created in this second (`not_before =
        // now + 2`, see `Cutoff::created`): wait for the next second when
        // the request's deadline allows, then read and stamp again (the
        // record read may have been lost and created again meanwhile).
        let now_ms = self.inner.clock.now_millis();
        let to_next = u64::try_from(1_000 - now_ms.rem_euclid(1_000)).unwrap_or(1_000);
        let wake = tokio::time::Instant::now() + std::time::Duration::from_millis(to_next);
        if wake >= deadline || !self.inner.clock.moves_by_itself() {
            return Err(Error::RetryLater);
        }
        tokio::time::sleep_until(wake).await;
        self.read_and_stamp(sub, deadline)
            .await
            .map_err(StampWait::into_error)
    }

    /// One read of the cutoffs and the decision on it.
    async fn read_and_stamp(
        &self,
        sub: &str,
        deadline: tokio::time::Instant,
    ) -> Result<Stamp, StampWait> {
        let inner = &*self.inner;
        if sub.is_empty() {
            return Err(StampWait::Error(Error::Issue("empty subject".into())));
        }
        // Read before the store: a record created after this instant is
        // created at this second or later, so its `not_before` (`now + 2`
        // at least) is above any `iat` decided at this `now` (at most
        // `now + 1`), whatever the read found.
        let now = inner.clock.now_seconds();
        let ckey = inner.cache.key(sub);
        let undisturbed = inner.cache.disturbances(ckey);
        // The two reads are independent: one round trip, not two.
        let subject = async {
            inner
                .cache
                .load(
                    ckey,
                    Join::Fresh,
                    deadline,
                    inner.settings.store_timeout,
                    || self.owned_load(sub),
                )
                .await
                .map_err(|e| self.store_error(e))?
                .ok_or(Error::UnknownSubject)
        };
        let epoch = inner.cache.global_epoch();
        let stamp = inner.cache.stamp();
        let global = self.store_call_until(deadline, inner.store.load_global());
        let (cutoff, global) = futures_util::future::try_join(subject, global)
            .await
            .map_err(StampWait::Error)?;
        let global = inner.cache.loaded_global(epoch, stamp, global);
        if inner.cache.disturbances(ckey) != undisturbed {
            return Err(StampWait::Overtaken);
        }
        self.stamp_at(cutoff, global, now)
    }

    /// Decides `iat` and `exp` at `now` for the cutoffs a new token is
    /// stamped with.
    fn stamp_at(&self, cutoff: Cutoff, global: i64, now: i64) -> Result<Stamp, StampWait> {
        // A global cutoff for the current second (`revoke_all_before(now)`
        // writes `now + 2`, see there) must not push `iat` ahead: a second
        // such call within this second could not reach that token (there is
        // no global version to bump). Logins wait instead.
        if global > now && global <= now.saturating_add(GLOBAL_WAIT_SECS) {
            return Err(StampWait::Error(Error::RetryLater));
        }
        let iat = now.max(cutoff.not_before).max(global);
        // Only the same-second case (`not_before = at + 1`) may push `iat`
        // ahead of the clock. Stamping anything later would hand out a token
        // during an account lock shorter than the leeway, and a token whose
        // future `iat` outlives every `revoke_before` made before that `iat`.
        if iat > now.saturating_add(1) {
            if iat == cutoff.not_before && iat == now.saturating_add(2) {
                return Err(StampWait::CreatedThisSecond);
            }
            let reason = if iat == global {
                RevokedReason::Global
            } else {
                RevokedReason::NotBefore
            };
            return Err(StampWait::Error(Error::Revoked(reason)));
        }
        let exp = now
            .saturating_add(self.inner.settings.access_ttl)
            .max(iat + 1);
        Ok(Stamp {
            cutoff,
            global,
            iat,
            exp,
        })
    }

    /// Signs an access token for `sub` with `claims` (the caller's, checked
    /// by [`extra_claims`]) and the registered claims of `stamp`; `sid` for a
    /// session's token.
    pub(crate) fn sign(
        &self,
        sub: &str,
        mut claims: serde_json::Map<String, serde_json::Value>,
        stamp: &Stamp,
        sid: Option<&str>,
    ) -> Result<String, Error> {
        let inner = &*self.inner;
        let (kid, alg, key) = self.signing_key()?;
        claims.insert("sub".into(), sub.into());
        claims.insert("iat".into(), stamp.iat.into());
        claims.insert("exp".into(), stamp.exp.into());
        claims.insert("ver".into(), stamp.cutoff.version.into());
        if let Some(sid) = sid {
            claims.insert("sid".into(), sid.into());
        }
        if let Some(iss) = &inner.settings.issuer {
            claims.insert("iss".into(), iss.as_str().into());
        }
        if let Some(aud) = &inner.settings.audience {
            claims.insert("aud".into(), aud.as_str().into());
        }
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, &claims, key).map_err(|e| Error::Issue(e.to_string()))
    }

    fn future_iat_allowance(&self) -> i64 {
        self.inner.settings.leeway.max(1)
    }

    /// Validates a token: size, structure, algorithm, signature, registered
    /// claims, then the subject's cutoffs (cached; the store is asked on a
    /// miss). `C` is the caller's own claims type (`()` for none).
    pub async fn validate<C: DeserializeOwned + 'static>(
        &self,
        token: &str,
    ) -> Result<Verified<C>, Error> {
        // One span per validation, its outcome recorded when known; store
        // calls made for it are events inside it.
        #[cfg(feature = "tracing")]
        let span = tracing::debug_span!(
            target: "jwt_revoke",
            "validate",
            outcome = tracing::field::Empty,
            reason = tracing::field::Empty
        );
        #[cfg(feature = "tracing")]
        let result = {
            use tracing::Instrument;
            self.validate_uncounted(token)
                .instrument(span.clone())
                .await
        };
        #[cfg(not(feature = "tracing"))]
        let result = self.validate_uncounted(token).await;
        self.inner.cache.counters.validation(&result);
        #[cfg(feature = "tracing")]
        {
            let _entered = span.enter();
            match &result {
                Ok(_) => {
                    span.record("outcome", "accepted");
                    tracing::trace!(target: "jwt_revoke", "token accepted");
                }
                Err(e) => {
                    span.record("outcome", e.code());
                    if let Some(r) = e.revoked_reason() {
                        span.record("reason", r.as_str());
                    }
                    tracing::debug!(
                        target: "jwt_revoke",
                        code = e.code(),
                        reason = e.revoked_reason().map(|r| r.as_str()),
                        "token rejected"
                    );
                }
            }
        }
        result
    }

    async fn validate_uncounted<C: DeserializeOwned + 'static>(
        &self,
        token: &str,
    ) -> Result<Verified<C>, Error> {
        let inner = &*self.inner;
        let now_ms = inner.clock.now_millis();
        if let Some(hit) = inner.verified.get(token, now_ms) {
            // Seen before: signature and registered claims hold until the
            // entry's expiry; the cutoffs are checked as for any token.
            inner.cache.counters.verified_hits.incr();
            self.check_start(hit.iat, hit.nbf, now_ms.div_euclid(1000))?;
            let checked = Checked {
                sub: std::borrow::Cow::Borrowed(&hit.sub),
                iat: hit.iat,
                exp: hit.exp,
                ver: hit.ver,
                nbf: hit.nbf,
                sid: hit.sid.as_deref().map(std::borrow::Cow::Borrowed),
                keys: hit.keys,
            };
            self.check_cutoffs(&checked, now_ms).await?;
            let claims = parse_extra::<C>(&hit.payload)?;
            return Ok(Verified {
                sub: String::from(&*hit.sub),
                iat: hit.iat,
                exp: hit.exp,
                ver: hit.ver,
                sid: hit.sid.clone(),
                claims,
            });
        }
        let payload = self.verify_signature(token)?;
        let checked = if inner.settings.foreign_tokens {
            self.check_claims::<Skip>(&payload, now_ms)?
        } else {
            self.check_claims::<u64>(&payload, now_ms)?
        };
        let sid: Option<std::sync::Arc<str>> = checked.sid.as_deref().map(std::sync::Arc::from);
        inner.verified.insert(
            token,
            now_ms,
            crate::verified::Registered {
                sub: &checked.sub,
                iat: checked.iat,
                exp: checked.exp,
                ver: checked.ver,
                nbf: checked.nbf,
                sid: sid.clone(),
                keys: checked.keys,
            },
            &payload,
            inner.settings.leeway,
        );
        self.check_cutoffs(&checked, now_ms).await?;
        let claims = parse_extra::<C>(&payload)?;
        Ok(Verified {
            sub: checked.sub.into_owned(),
            iat: checked.iat,
            exp: checked.exp,
            ver: checked.ver,
            sid,
            claims,
        })
    }

    /// The subject's cache key, and the session's when the token has a
    /// `sid` and sessions are on.
    fn keys_of(&self, sub: &str, sid: Option<&str>) -> CacheKeys {
        let inner = &*self.inner;
        let session = match (sid, &inner.sessions) {
            (Some(sid), Some(s)) => Some(s.cache.key2(sub, sid)),
            _ => None,
        };
        (inner.cache.key(sub), session)
    }

    /// Structure, header, algorithm, key and signature. Returns the decoded
    /// payload, authenticated but not yet checked.
    fn verify_signature(&self, token: &str) -> Result<Vec<u8>, Error> {
        let settings = &self.inner.settings;
        if token.len() > settings.max_token_bytes {
            return Err(Error::TooLarge {
                size: token.len(),
                limit: settings.max_token_bytes,
            });
        }
        let seg = Segments::split(token)?;
        // The header of the tokens this guard issues, byte for byte: the
        // full path below would parse it to the same algorithm and key (it
        // has no `crit`), so it is recognised without decoding. Checked at
        // build time against that path.
        if let Some((own, index)) = &self.inner.own_header
            && seg.header == own
            && let Some(key) = self.inner.keys.key_at(*index)
        {
            return self.check_signature(&seg, key);
        }
        let key = header_key(&self.inner.keys, seg.header)?;
        self.check_signature(&seg, key)
    }

    /// The signature of `seg` under `key`, then the decoded payload.
    fn check_signature(&self, seg: &Segments<'_>, key: &VerifyingKey) -> Result<Vec<u8>, Error> {
        match key.verify(seg.signature, seg.signed.as_bytes()) {
            Signature::Valid => {}
            Signature::Invalid => return Err(Error::InvalidSignature),
            Signature::NotBase64 => return Err(Error::Malformed("signature is not base64url")),
        }
        b64(seg.payload)
    }

    /// Registered claims against the clock and the configured issuer and
    /// audience. Leeway applies here, never to cutoffs.
    fn check_claims<'p, V>(&self, payload: &'p [u8], now_ms: i64) -> Result<Checked<'p>, Error>
    where
        V: Deserialize<'p> + VersionClaim,
    {
        let settings = &self.inner.settings;
        let now = now_ms.div_euclid(1000);
        let mut wire: WireClaims<'p, V> = WireClaims::empty();
        // The claims as `issue` writes them take a short path; anything
        // else, the general one (same answers, see `parse_canonical`).
        if !parse_canonical(payload, V::from_number, &mut wire) {
            parse_claims(payload, &mut wire)?;
        }
        let sub = wire.sub.ok_or(Error::MissingClaim("sub"))?;
        if sub.is_empty() {
            return Err(Error::Malformed("empty `sub`"));
        }
        let exp = time_claim(wire.exp, "exp")?;
        let iat = time_claim(wire.iat, "iat")?;
        let ver = V::version(wire.ver)?;
        if exp.saturating_add(settings.leeway) < now {
            return Err(Error::Expired);
        }
        let nbf = match wire.nbf {
            Some(_) => Some(time_claim(wire.nbf, "nbf")?),
            None => None,
        };
        self.check_start(iat, nbf, now)?;
        if let Some(expected) = &settings.issuer
            && wire.iss.as_deref() != Some(expected.as_str())
        {
            return Err(Error::InvalidIssuer);
        }
        match (&settings.audience, &wire.aud) {
            (Some(expected), aud) if !aud.as_ref().is_some_and(|a| a.contains(expected)) => {
                return Err(Error::InvalidAudience);
            }
            // RFC 7519 §4.1.3: a token for some audience, and we are none.
            (None, Some(_)) if !settings.accept_any_audience => {
                return Err(Error::InvalidAudience);
            }
            _ => {}
        }
        let keys = self.keys_of(&sub, wire.sid.as_deref());
        Ok(Checked {
            sub,
            iat,
            exp,
            ver,
            nbf,
            sid: wire.sid,
            keys,
        })
    }

    /// The claims that say when a token starts to be valid: a future `iat`
    /// beyond `max(leeway, 1 s)`, an `nbf` beyond the leeway. Checked on
    /// every request, verified-token cache hits included (a clock stepped
    /// back can make them fail again).
    fn check_start(&self, iat: i64, nbf: Option<i64>, now: i64) -> Result<(), Error> {
        if iat > now.saturating_add(self.future_iat_allowance()) {
            return Err(Error::IssuedInFuture);
        }
        if let Some(nbf) = nbf
            && nbf > now.saturating_add(self.inner.settings.leeway)
        {
            return Err(Error::NotYetValid);
        }
        Ok(())
    }

    async fn check_cutoffs(&self, checked: &Checked<'_>, now_ms: i64) -> Result<(), Error> {
        let inner = &*self.inner;
        let sub: &str = &checked.sub;
        let keys = checked.keys;
        let session = match (checked.sid.as_deref(), &inner.sessions) {
            (Some(sid), Some(sessions)) => Some((
                sessions,
                sid,
                keys.1.unwrap_or_else(|| sessions.cache.key2(sub, sid)),
            )),
            // A token minted for a session by an instance with sessions on:
            // refusing it loudly beats accepting a revoked session. Foreign
            // tokens (whose `ver` is not read) may carry their issuer's own
            // `sid`, which means nothing here.
            (Some(_), None) if !inner.settings.foreign_tokens => {
                return Err(Error::SessionsDisabled);
            }
            _ => None,
        };
        let key = keys.0;
        let lookup = inner.cache.lookup(key, now_ms);
        let fresh_global = inner.cache.fresh_global(now_ms);
        let session_lookup = session.map(|(s, _, skey)| s.cache.lookup(skey, now_ms));
        // The hot path: all cached and fresh, no timer, no await.
        let counters = &inner.cache.counters;
        match lookup {
            Lookup::Fresh(_) => counters.hits.incr(),
            Lookup::Unknown => counters.negative_hits.incr(),
            Lookup::Miss => counters.misses.incr(),
        }
        match session_lookup {
            Some(Lookup::Fresh(_)) => counters.session_hits.incr(),
            Some(_) => counters.session_misses.incr(),
            None => {}
        }
        let (cutoff, global, session_state) = match (lookup, fresh_global, session_lookup) {
            (Lookup::Unknown, _, _) => return Err(Error::UnknownSubject),
            (Lookup::Fresh(c), Some(g), None | Some(Lookup::Fresh(_))) => {
                let state = match session_lookup {
                    Some(Lookup::Fresh(s)) => Some(s),
                    _ => None,
                };
                (c, g, state)
            }
            (lookup, global, session_lookup) => {
                // One deadline for every store wait of this request.
                let deadline = self.deadline();
                let subject = async {
                    match lookup {
                        Lookup::Fresh(c) => Ok((c, false)),
                        _ => self.load_cutoff(sub, key, deadline).await,
                    }
                };
                let session_state = async {
                    match (session, session_lookup) {
                        (Some((s, sid, skey)), Some(l)) => {
                            s.state(self, sub, sid, skey, l, deadline).await.map(Some)
                        }
                        _ => Ok(None),
                    }
                };
                let ((cutoff, subject_stale), session_state) =
                    futures_util::future::try_join(subject, session_state).await?;
                // One answer, stale if either part of it is.
                let stale = subject_stale || session_state.is_some_and(|(_, stale)| stale);
                let session_state = session_state.map(|(state, _)| state);
                let global = match global {
                    Some(g) => g,
                    None => inner
                        .cache
                        .global(now_ms, deadline, inner.settings.store_timeout, || {
                            let owner = Arc::clone(&self.inner);
                            traced(
                                "load_global",
                                async move { owner.store.load_global().await },
                            )
                        })
                        .await
                        // Counted by the cache (also when stale-if-error
                        // answers).
                        .map_err(Error::StoreUnavailable)?,
                };
                // Revocations that returned while this request waited on
                // the store apply too, subject, session and global alike,
                // and so does a `forget`.
                let now = inner.clock.now_millis();
                if inner.cache.lookup(key, now) == Lookup::Unknown {
                    return Err(Error::UnknownSubject);
                }
                let cutoff = inner.cache.current(key).map_or(cutoff, |c| cutoff.merge(c));
                let global = global.max(inner.cache.global_floor());
                let session_state = match (session, session_state) {
                    (Some((s, _, skey)), Some(state)) => {
                        Some(s.cache.current(skey).map_or(state, |c| state.merge(c)))
                    }
                    _ => None,
                };
                if stale {
                    counters.stale_answers.incr();
                }
                (cutoff, global, session_state)
            }
        };
        cutoff
            .check(checked.ver, checked.iat, global)
            .map_err(Error::Revoked)?;
        match session_state {
            Some(state) if crate::session::is_ended(state, cutoff, global) => {
                Err(Error::SessionRevoked)
            }
            _ => Ok(()),
        }
    }

    /// A subject load that owns what it needs, so that every caller waiting
    /// for it can drive it (see the cache's single flight).
    fn owned_load(
        &self,
        sub: &str,
    ) -> impl std::future::Future<Output = Result<Option<Cutoff>, StoreError>> + Send + 'static
    {
        let owner = Arc::clone(&self.inner);
        let sub = sub.to_owned();
        traced("load", async move { owner.store.load(&sub).await })
    }

    /// When a store wait that starts now must end.
    pub(crate) fn deadline(&self) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        now.checked_add(self.inner.settings.store_timeout)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400))
    }

    /// A store call bounded by `deadline`; a store error or the timeout is
    /// [`Error::StoreUnavailable`].
    pub(crate) async fn store_call_until<T>(
        &self,
        deadline: tokio::time::Instant,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout_at(deadline, traced("call", call)).await {
            Ok(result) => result.map_err(|e| self.store_error(e)),
            Err(_) => {
                Err(self.store_error(StoreError::timed_out(self.inner.settings.store_timeout)))
            }
        }
    }

    /// Counts a store failure and turns it into the caller's error. A write
    /// for a subject the store does not hold (and does not create) is the
    /// caller's [`Error::UnknownSubject`], not an outage.
    pub(crate) fn store_error(&self, e: StoreError) -> Error {
        if e.is_unknown_subject() {
            return Error::UnknownSubject;
        }
        self.inner.cache.counters.store_errors.incr();
        #[cfg(feature = "tracing")]
        tracing::warn!(target: "jwt_revoke", error = %e, "cutoff store call failed");
        Error::StoreUnavailable(e)
    }

    async fn load_cutoff(
        &self,
        sub: &str,
        key: SubjectKey,
        deadline: tokio::time::Instant,
    ) -> Result<(Cutoff, bool), Error> {
        let inner = &*self.inner;
        match inner
            .cache
            .load_or_stale(key, deadline, inner.settings.store_timeout, || {
                self.owned_load(sub)
            })
            .await
        {
            Ok((Some(c), stale)) => Ok((c, stale)),
            Ok((None, _)) => Err(Error::UnknownSubject),
            Err(e) => Err(Error::StoreUnavailable(e)),
        }
    }

    /// Refuses a `not_before` further ahead than `max_future_cutoff`.
    fn check_horizon(&self, not_before: i64) -> Result<(), Error> {
        let limit = self
            .inner
            .clock
            .now_seconds()
            .saturating_add(self.inner.settings.max_future_cutoff);
        if not_before > limit {
            return Err(Error::InvalidCutoff(
                "not_before is further in the future than max_future_cutoff",
            ));
        }
        Ok(())
    }

    /// Revokes every token of `sub` issued so far (log out everywhere,
    /// password change, role change): increments the subject's version in
    /// the store, then updates this guard's cache, then publishes to other
    /// instances. When this returns, this guard rejects every older token of
    /// `sub`, with no window. Returns the new cutoff.
    ///
    /// Errors: [`Error::StoreUnavailable`] when the store fails or does not
    /// answer in time; [`Error::UnknownSubject`] when the store holds no
    /// such subject and does not create one (the users-table stores: a
    /// deleted user is not brought back).
    pub async fn bump_version(&self, sub: &str) -> Result<Cutoff, Error> {
        let cutoff = self
            .store_call_until(self.deadline(), self.inner.store.bump_version(sub))
            .await?;
        self.inner.cache.counters.revocations.incr();
        self.apply_subject(sub, cutoff).await;
        Ok(cutoff)
    }

    /// Revokes every token of `sub` with `iat <= at` (Unix seconds). With a
    /// future `at`, also refuses tokens issued until then (an account lock).
    /// Same ordering and guarantees as [`Guard::bump_version`].
    ///
    /// **Same-second rule.** With `at` in the current second (the usual
    /// `revoke_before(sub, now)`), a login earlier in this second after an
    /// earlier revocation may hold a token stamped `iat = at + 1`, which no
    /// `not_before` of `at + 1` reaches. In that case (`at >= now` and the
    /// new `not_before` is at most `now + 1`), the version is bumped as
    /// well, so every token issued before this call returned is revoked;
    /// a login after it gets the new version and works at once.
    ///
    /// Errors: [`Error::InvalidCutoff`] when `at` lies further ahead than
    /// [`GuardBuilder::max_future_cutoff`] (nothing is written);
    /// [`Error::StoreUnavailable`] when the store fails or does not answer
    /// within the store timeout (the outcome is then unknown; retrying is
    /// safe); [`Error::UnknownSubject`] as for [`Guard::bump_version`].
    pub async fn revoke_before(&self, sub: &str, at: i64) -> Result<Cutoff, Error> {
        self.check_horizon(at.saturating_add(1))?;
        let now = self.inner.clock.now_seconds();
        // A "now" read just before a second boundary means now: tokens of
        // the new second issued before this call (foreign ones carry no
        // version to bump) are revoked too.
        let at = if at >= now.saturating_sub(1) {
            at.max(now)
        } else {
            at
        };
        let deadline = self.deadline();
        let mut cutoff = self
            .store_call_until(deadline, self.inner.store.revoke_before(sub, at))
            .await?;
        if at >= now.saturating_sub(1) && cutoff.not_before <= now.saturating_add(1) {
            match self
                .store_call_until(deadline, self.inner.store.bump_version(sub))
                .await
            {
                Ok(bumped) => cutoff = cutoff.merge(bumped),
                Err(e) => {
                    // The timestamp part landed: apply it, and report that
                    // the revocation is incomplete.
                    self.apply_subject(sub, cutoff).await;
                    return Err(e);
                }
            }
        }
        self.inner.cache.counters.revocations.incr();
        self.apply_subject(sub, cutoff).await;
        Ok(cutoff)
    }

    /// Revokes every token of every subject with `iat <= at`. Returns the new
    /// global `not_before`.
    ///
    /// **Same-second rule.** With `at` in the current second (`at >= now`),
    /// `at` is raised to `now + 1`: a login earlier in this second may hold
    /// a token stamped `iat = now + 1` (after a per-subject revocation in
    /// this second), and there is no global version to bump. Logins are
    /// then refused with [`Error::RetryLater`] until the global `not_before`
    /// (`now + 2`) is reached, at most two seconds later: no token issued
    /// before this call returned survives it, and none can be stamped with
    /// a time a second call in this second would miss.
    ///
    /// **Every such call raises the global cutoff.** With `at` in the
    /// current second, the new global `not_before` is also above the one
    /// the store held when the call began (read first): a second "now"
    /// call in the same second, or one made on an instance whose clock is
    /// behind the one that logged a session in, still ends every session
    /// whose login read the cutoff before it (sessions compare the cutoffs
    /// they saw, not clocks). Errors as for [`Guard::revoke_before`].
    pub async fn revoke_all_before(&self, at: i64) -> Result<i64, Error> {
        self.check_horizon(at.saturating_add(1))?;
        let now = self.inner.clock.now_seconds();
        // One deadline for the call's store waits, the read included.
        let deadline = self.deadline();
        let at = if at >= now.saturating_sub(1) {
            let current = self
                .store_call_until(deadline, self.inner.store.load_global())
                .await?;
            at.max(now.saturating_add(1)).max(current)
        } else {
            at
        };
        let nb = self
            .store_call_until(deadline, self.inner.store.revoke_all_before(at))
            .await?;
        let nb = self.inner.cache.floor_global(nb);
        self.inner.cache.counters.revocations.incr();
        #[cfg(feature = "tracing")]
        tracing::info!(target: "jwt_revoke", not_before = nb, "global cutoff raised");
        self.publish(CutoffEvent::Global { not_before: nb }).await;
        Ok(nb)
    }

    async fn apply_subject(&self, sub: &str, cutoff: Cutoff) {
        #[cfg(feature = "tracing")]
        tracing::debug!(
            target: "jwt_revoke",
            version = cutoff.version,
            not_before = cutoff.not_before,
            "subject cutoff raised"
        );
        let key = self.inner.cache.key(sub);
        self.inner.cache.floor(key, cutoff, Origin::Local);
        if self.inner.publisher.is_some() {
            self.publish(CutoffEvent::Subject {
                sub: sub.to_owned(),
                cutoff,
            })
            .await;
        }
    }

    pub(crate) async fn publish(&self, event: CutoffEvent) {
        // Bounded like a store call: a hung bus must not hold the
        // revocation (which already holds in the store) from returning.
        if let Some(p) = &self.inner.publisher
            && !matches!(
                tokio::time::timeout(self.inner.settings.store_timeout, p.publish(&event)).await,
                Ok(Ok(()))
            )
        {
            // The store holds the revocation; other instances converge
            // within their cache TTL. Counted, not returned: the revocation
            // itself succeeded.
            self.inner.cache.counters.publish_errors.incr();
            #[cfg(feature = "tracing")]
            tracing::warn!(target: "jwt_revoke", "publishing a revocation failed");
        }
    }

    /// Makes this guard (and, through the publisher, the other instances)
    /// enforce a cutoff written to the store by the host itself, inside its
    /// own transaction (e.g. `SqliteUsersStore::bump_version_in` next to a
    /// password change). Call it after the commit, with the cutoff the write
    /// returned: from then on this guard rejects the older tokens of `sub`
    /// as [`Guard::bump_version`] would. Never call it after a rollback.
    ///
    /// The cutoff is merged as this guard's own revocation: a floor that
    /// raises a cached entry by maximum (or waits, not fresh, for the next
    /// store read), then published. Without this call, this guard keeps its
    /// cached cutoff until the cache TTL ends.
    ///
    /// The guard's same-second rule ([`Guard::revoke_before`]) is the
    /// guard's, not the store's: in a transaction, bump the version (which
    /// has no same-second or clock-skew hole) rather than rely on
    /// `revoke_before_in` alone.
    ///
    /// Errors: [`Error::InvalidCutoff`] (nothing applied) when the cutoff's
    /// `not_before` lies beyond [`GuardBuilder::max_future_cutoff`].
    ///
    /// ```
    /// use jwt_revoke::{Algorithm, Cutoff, CutoffStore, Guard, Keys, MemoryStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = std::sync::Arc::new(MemoryStore::new());
    /// store.insert("alice", Cutoff::default());
    /// let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
    /// let guard = Guard::builder(keys, store.clone()).build().unwrap();
    /// let token = guard.issue("alice", &()).await.unwrap();
    /// assert!(guard.validate::<()>(&token).await.is_ok()); // cached now
    ///
    /// // The host's own write (with an SQL store: `bump_version_in(&mut *tx, ..)`, then commit).
    /// let cutoff = store.bump_version("alice").await.unwrap();
    /// guard.apply_committed("alice", cutoff).await.unwrap();
    /// assert_eq!(guard.validate::<()>(&token).await.unwrap_err().code(), "token_revoked");
    /// # });
    /// ```
    pub async fn apply_committed(&self, sub: &str, cutoff: Cutoff) -> Result<(), Error> {
        self.check_horizon(cutoff.not_before)?;
        self.inner.cache.counters.revocations.incr();
        self.apply_subject(sub, cutoff).await;
        Ok(())
    }

    /// Merges a cutoff change received from another instance into this
    /// guard's cache.
    ///
    /// An event is a floor, not a fresh read: it raises a cached cutoff by
    /// maximum but never creates an entry, never extends an entry's
    /// freshness, never forgets an "unknown subject" answer and never evicts
    /// anything. So a late, duplicated, reordered or replayed event is
    /// harmless: at worst it is ignored, and the next store read decides.
    ///
    /// Errors: [`Error::InvalidCutoff`] (nothing applied) when the event's
    /// `not_before` lies beyond [`GuardBuilder::max_future_cutoff`].
    pub fn apply_event(&self, event: &CutoffEvent) -> Result<(), Error> {
        let counters = &self.inner.cache.counters;
        let applied = self.apply_event_uncounted(event);
        match applied {
            Ok(()) => counters.events_applied.incr(),
            Err(_) => counters.events_refused.incr(),
        }
        applied
    }

    fn apply_event_uncounted(&self, event: &CutoffEvent) -> Result<(), Error> {
        match event {
            CutoffEvent::Subject { sub, cutoff } => {
                self.check_horizon(cutoff.not_before)?;
                let key = self.inner.cache.key(sub);
                self.inner.cache.floor(key, *cutoff, Origin::Remote);
            }
            CutoffEvent::Global { not_before } => {
                self.check_horizon(*not_before)?;
                self.inner.cache.floor_global(*not_before);
            }
            CutoffEvent::Session { sub, sid } => {
                // A guard without sessions has no session to raise.
                if let Some(s) = &self.inner.sessions {
                    s.revoked(sub, sid, Origin::Remote);
                }
            }
        }
        Ok(())
    }

    /// Drops every cached cutoff, so the next validation of each subject
    /// asks the store, and keeps loads already under way from caching what
    /// they read.
    pub fn clear_cache(&self) {
        self.caches().for_each(CutoffCache::clear);
    }

    /// The subject cache and, with sessions, the session cache: what
    /// clearing, marking stale and limiting the age apply to alike.
    fn caches(&self) -> impl Iterator<Item = &CutoffCache> {
        std::iter::once(&self.inner.cache).chain(self.inner.sessions.as_ref().map(|s| &s.cache))
    }

    /// Forgets a subject at once, for a user deleted from the store: its
    /// cached cutoff is dropped and "unknown subject" is cached for the
    /// negative TTL, so its tokens are rejected with
    /// [`Error::UnknownSubject`] on this instance from now on (other
    /// instances within their cache TTL). Delete the user from the store
    /// first: after the negative TTL, the store decides again.
    pub fn forget(&self, sub: &str) {
        let key = self.inner.cache.key(sub);
        self.inner.cache.forget(key);
    }

    /// Makes every cached cutoff not fresh, so the next validation of each
    /// subject (and of the global cutoff) asks the store, but keeps the
    /// entries: [`stale_if_error`](GuardBuilder::stale_if_error) can still
    /// answer from them while the store is down, and they stay floors. An
    /// invalidation subscriber calls this when it resubscribes after a gap
    /// (events may have been missed). Loads already under way do not cache
    /// what they read.
    ///
    /// With a reduced cache age in force ([`Guard::limit_cache_age`]), the
    /// stale window of each entry counts from its expiry as that reduced age
    /// measures it (reads made while events may have been missed are not
    /// served stale past it). If the reduced age stays in force afterwards,
    /// it is applied once more: stricter, never more lenient.
    pub fn mark_cache_stale(&self) {
        self.caches().for_each(CutoffCache::mark_stale);
    }

    /// While `Some(max_age)`, cached cutoffs older than `max_age` are
    /// reloaded from the store instead of trusted for the full cache TTL.
    /// An invalidation subscriber sets this while disconnected (events may be
    /// missed), and clears it with `None` once resubscribed (after
    /// [`Guard::clear_cache`]). Has no effect when `max_age >= cache_ttl`.
    pub fn limit_cache_age(&self, max_age: Option<Duration>) {
        let max_age = max_age.map(millis);
        self.caches().for_each(|c| c.limit_age(max_age));
    }
}
