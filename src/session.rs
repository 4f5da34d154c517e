//! Sessions and refresh tokens: log out one device, rotate refresh tokens
//! with reuse detection, and still store no token.
//!
//! A login ([`Guard::login`]) creates a **session**: one row in the store
//! ([`SessionStore`]) with a random, unguessable id, the subject, a refresh
//! **generation**, the subject's token version at login, and times. The
//! access tokens of a session carry its id as `sid`; its refresh token
//! (see [`crate::refresh`]) names the session and one generation. State is
//! O(sessions), never O(tokens).
//!
//! # The rule
//!
//! A token is accepted when
//!
//! ```text
//! token.ver >= user.version  AND  token.iat >= user.not_before  AND  token.iat >= global.not_before
//!   AND (token has no sid  OR  (session sid of token.sub exists, is not revoked,
//!        and session.not_before_seen >= user.not_before
//!        AND session.not_before_seen >= global.not_before))
//! ```
//!
//! So `bump_version`, `revoke_before` and `revoke_all_before` still end every
//! session at once (a session that began before a timestamp revocation
//! ends with it, its access tokens minted by later refreshes included), and
//! [`Guard::revoke_session`] ends one. (A session's tokens always carry the
//! version it began with: a refresh after a version bump is refused.) A token without
//! `sid` (minted by [`Guard::issue`], before sessions existed, or by another
//! implementation with the same key) is checked against the user and global
//! cutoffs only.
//!
//! # The cache
//!
//! Each session's state (live or revoked) is cached like a subject's cutoff,
//! in a second cache of the same guard with the same TTL, bounds, single
//! flight, epochs, floors and store timeout (see the crate's cache rules):
//! a cached, live session costs one more map lookup on the hot path; a
//! revocation on this instance applies at once; other instances learn it
//! through the bus ([`CutoffEvent::Session`])
//! or within the TTL. A session the store does not hold (purged after it
//! expired, or another subject's) is revoked.
//!
//! # Refresh
//!
//! [`Guard::refresh`] checks the refresh token's MAC, reads the subject's
//! cutoffs from the store, then moves the session's generation forward with
//! one atomic compare-and-swap in the store
//! ([`SessionStore::rotate_refresh`]). [`Guard::refresh_with`] asks the
//! application for the new access token's claims (its role, its tenant)
//! for the subject and session the refresh token names, between the read
//! and the compare-and-swap: a failed lookup spends nothing. A generation that was already spent
//! is **reuse**: a copy of the token is in someone else's hands, so the
//! whole session is revoked (refresh and access tokens; the subject's other
//! sessions are untouched) and the caller gets [`Error::RefreshReused`]. Of
//! two concurrent refreshes with the same token, exactly one rotates; the
//! other is reuse.
//!
//! With [`SessionConfig::reuse_grace`] (off by default), the generation just
//! before the current one is accepted once more within the grace period
//! after the last rotation, and rotates again (skipping a generation): a
//! client whose response was lost can retry. What it opens up: a thief who
//! presents a stolen token within the grace period after its owner
//! refreshed gets a valid pair; the owner's next refresh is then reuse and
//! revokes the session, so the branch lives at most one access-token
//! lifetime. The grace never chains: the generation it bypassed is two
//! behind afterwards.
//!
//! A session whose subject was logged out everywhere, changed password or
//! was revoked by a timestamp after the login (its version, or the
//! timestamp cutoffs its login saw, are below the subject's cutoffs now) is
//! refused with [`Error::SessionRevoked`].
//!
//! # No clock decides a session's fate
//!
//! A session lives for weeks (sliding), so it must not be compared with a
//! timestamp cutoff through two servers' clocks: a login on an instance
//! whose clock runs a few seconds ahead, just before `revoke_all_before(now)`
//! on another, would be stamped after the cutoff and survive it for good.
//! Instead a session records [`Session::not_before_seen`]: the highest
//! `not_before` (the subject's or the global) in force when it began, as
//! the login read it from the store. The login reads the store before it
//! writes the session, so a timestamp revocation that the login did not see
//! landed after that read and raises a cutoff above what the session
//! recorded: the session ends, whatever any clock says. A revocation the
//! login did see is at or below it: the session began after it. The
//! comparison is between two values read from the store, like versions.
//! (A revocation with an `at` in the past that still raises the cutoff
//! therefore ends every session that began before the call, not only those
//! that began before `at`.)
//!
//! ```
//! use jwt_revoke::{Algorithm, Cutoff, Error, Guard, Keys, MemoryStore, RefreshKey, SessionConfig};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! store.insert("alice", Cutoff::default());
//! let secret = b"a secret of at least thirty-two bytes";
//! let guard = Guard::builder(Keys::hmac(Algorithm::HS256, secret)?, store)
//!     .sessions(SessionConfig::new(RefreshKey::new(secret)?))
//!     .build()?;
//!
//! let phone = guard.login("alice", &()).await?;
//! let laptop = guard.login("alice", &()).await?;
//!
//! // Rotate the phone's refresh token; the old one is now spent.
//! let phone2 = guard.refresh(&phone.refresh_token, &()).await?;
//! assert_eq!(phone2.session_id, phone.session_id);
//!
//! // Presenting the spent token again revokes the phone's session...
//! assert!(matches!(guard.refresh(&phone.refresh_token, &()).await, Err(Error::RefreshReused)));
//! assert!(matches!(guard.validate::<()>(&phone2.access_token).await, Err(Error::SessionRevoked)));
//! // ...and only that one.
//! assert!(guard.validate::<()>(&laptop.access_token).await.is_ok());
//!
//! // Log the laptop out (this device only).
//! assert!(guard.revoke_session("alice", &laptop.session_id).await?);
//! assert!(guard.validate::<()>(&laptop.access_token).await.is_err());
//! assert!(guard.sessions("alice").await?.is_empty());
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::bus::CutoffEvent;
use crate::cache::{CacheConfig, CutoffCache, Lookup, Origin, SubjectKey};
use crate::claims::Verified;
use crate::clock::Clock;
use crate::cutoff::Cutoff;
use crate::error::Error;
use crate::guard::{Guard, GuardBuilder, Inner, extra_claims, secs};
use crate::metrics::Counters;
use crate::refresh::{self, RefreshKey};
use crate::store::{CutoffStore, StoreError};

/// One session: a login on one device. Stored one row per session, never
/// one per token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Session {
    /// The session id: 16 random bytes, base64url (22 characters).
    pub id: String,
    /// The subject (user) it belongs to.
    pub sub: String,
    /// The refresh generation: 0 at login, plus one at each rotation. Only
    /// the refresh token of the current generation rotates.
    pub generation: u64,
    /// The subject's token version at login. A session whose version is
    /// below the subject's current version was ended by a `bump_version`.
    pub version: u64,
    /// When the session was created, Unix seconds, by the clock of the
    /// instance that logged it in. Shown and used for ordering, never
    /// compared with a cutoff (see [`Session::not_before_seen`]).
    pub created_at: i64,
    /// The last login or rotation, Unix seconds.
    pub last_used_at: i64,
    /// When the refresh token expires, Unix seconds: `refresh_ttl` after the
    /// last login or rotation (sliding).
    pub expires_at: i64,
    /// When the session was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// The highest timestamp cutoff in force when the session began: the
    /// maximum of the subject's and the global `not_before` that the login
    /// read from the store. A subject or global `not_before` above it ends
    /// the session (see the [module documentation](crate::session)): no
    /// clock takes part in the comparison.
    pub not_before_seen: i64,
}

impl Session {
    /// `true` while the session can refresh at `now`: not revoked, not
    /// expired.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// A compare-and-swap request for [`SessionStore::rotate_refresh`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotate {
    /// The generation the presented refresh token names.
    pub generation: u64,
    /// Now, Unix seconds: becomes `last_used_at`; revocations on reuse are
    /// stamped with it; a session with `expires_at <= now` is expired.
    pub now: i64,
    /// The new `expires_at` after a rotation.
    pub expires_at: i64,
    /// Seconds after the last rotation during which the generation just
    /// before the current one still rotates (`None`: never; a negative
    /// value is taken as `None`).
    pub grace: Option<i64>,
}

/// What [`SessionStore::rotate_refresh`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rotation {
    /// The generation matched (or the grace applied): it moved forward by
    /// one. Holds the session after the update.
    Rotated(Session),
    /// The generation did not match a live session's: the session was
    /// revoked by this call. Holds the session after the update.
    Reused(Session),
    /// The session was already revoked; nothing changed.
    Revoked,
    /// The session's refresh token expired; nothing changed.
    Expired,
    /// No session with this id belongs to this subject.
    Unknown,
}

/// Sessions in the host's database, next to the cutoffs: one row per
/// session. Implemented by [`MemoryStore`](crate::MemoryStore) and the
/// SQLite, PostgreSQL and Redis stores.
///
/// Every method is atomic in the store. The shipped stores pass the same
/// conformance suite, including 50 concurrent rotations of one generation
/// with exactly one [`Rotation::Rotated`].
pub trait SessionStore: CutoffStore {
    /// Stores a new session (`generation` 0, not revoked). Its id is new
    /// (random); an existing id is an error.
    fn create_session(
        &self,
        session: &Session,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The session `sid` of `sub`, revoked or not; `None` when there is no
    /// such session, or it belongs to another subject.
    fn load_session(
        &self,
        sub: &str,
        sid: &str,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// Atomically, for the session `sid` of `sub`:
    /// 1. none: [`Rotation::Unknown`];
    /// 2. revoked: [`Rotation::Revoked`];
    /// 3. `expires_at <= rotate.now`: [`Rotation::Expired`];
    /// 4. `generation == rotate.generation`: `generation += 1`,
    ///    `last_used_at = rotate.now`, `expires_at = rotate.expires_at`,
    ///    [`Rotation::Rotated`];
    /// 5. with `rotate.grace = Some(g)`, `generation ==
    ///    rotate.generation + 1` and `last_used_at + g >= rotate.now` (the
    ///    generation just before the current one, within the grace):
    ///    `generation = rotate.generation + 3`, times as in 4,
    ///    [`Rotation::Rotated`]. The skipped generation makes the grace
    ///    apply once per rotation: the holder of the generation it bypassed
    ///    is then two behind, and its next refresh is reuse;
    /// 6. otherwise: `revoked_at = rotate.now`, [`Rotation::Reused`].
    fn rotate_refresh(
        &self,
        sub: &str,
        sid: &str,
        rotate: Rotate,
    ) -> impl Future<Output = Result<Rotation, StoreError>> + Send;

    /// Revokes the session `sid` of `sub` at `at` (Unix seconds). `true`
    /// when a session of `sub` that was not revoked is revoked now; `false`
    /// for no such session, another subject's, or one already revoked.
    fn revoke_session(
        &self,
        sub: &str,
        sid: &str,
        at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Revokes every session of `sub` that is not revoked yet, at `at`
    /// (Unix seconds): a deleted user's, or "log out every device" without
    /// touching the subject's cutoffs. Atomically revokes every session of
    /// `sub` that is not revoked yet, expired or not (expiry is judged by
    /// each instance's clock: one expired by the caller's may not be by
    /// another's), and returns the ids of every session of `sub` the store
    /// holds, those revoked before the call included, so that a call
    /// retried after a lost reply still names every session it ended (the
    /// guard announces each one on the bus).
    fn revoke_sessions(
        &self,
        sub: &str,
        at: i64,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// The sessions of `sub` that are active at `now` (not revoked, not
    /// expired), oldest first.
    fn list_sessions(
        &self,
        sub: &str,
        now: i64,
    ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send;

    /// Deletes every session with `expires_at < before`, revoked or not.
    /// Returns how many were deleted.
    fn purge_sessions(&self, before: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

impl<S: SessionStore> SessionStore for Arc<S> {
    fn create_session(
        &self,
        session: &Session,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).create_session(session)
    }
    fn load_session(
        &self,
        sub: &str,
        sid: &str,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send {
        (**self).load_session(sub, sid)
    }
    fn rotate_refresh(
        &self,
        sub: &str,
        sid: &str,
        rotate: Rotate,
    ) -> impl Future<Output = Result<Rotation, StoreError>> + Send {
        (**self).rotate_refresh(sub, sid, rotate)
    }
    fn revoke_session(
        &self,
        sub: &str,
        sid: &str,
        at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).revoke_session(sub, sid, at)
    }
    fn revoke_sessions(
        &self,
        sub: &str,
        at: i64,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        (**self).revoke_sessions(sub, at)
    }
    fn list_sessions(
        &self,
        sub: &str,
        now: i64,
    ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send {
        (**self).list_sessions(sub, now)
    }
    fn purge_sessions(&self, before: i64) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).purge_sessions(before)
    }
}

/// The rotation rule of [`SessionStore::rotate_refresh`] on a session held
/// in memory (the memory store's implementation; a store that locks a row
/// can use it too).
pub fn apply_rotation(session: &mut Session, rotate: Rotate) -> Rotation {
    if session.revoked_at.is_some() {
        return Rotation::Revoked;
    }
    if session.expires_at <= rotate.now {
        return Rotation::Expired;
    }
    // With a grace of zero or more, the saturating sum is exact for the
    // comparison (a sum beyond i64::MAX is >= any `now`).
    let graced = rotate.grace.filter(|g| *g >= 0).is_some_and(|g| {
        rotate.generation.checked_add(1) == Some(session.generation)
            && session.last_used_at.saturating_add(g) >= rotate.now
    });
    let next = if session.generation == rotate.generation {
        rotate.generation.checked_add(1)
    } else if graced {
        rotate.generation.checked_add(3)
    } else {
        None
    };
    match next {
        Some(next) => {
            session.generation = next;
            session.last_used_at = rotate.now;
            session.expires_at = rotate.expires_at;
            Rotation::Rotated(session.clone())
        }
        // A spent generation, or one that cannot move forward any more.
        None => {
            session.revoked_at = Some(rotate.now);
            Rotation::Reused(session.clone())
        }
    }
}

/// Settings of sessions and refresh tokens ([`GuardBuilder::sessions`]).
#[derive(Debug, Clone)]
#[must_use]
pub struct SessionConfig {
    key: RefreshKey,
    refresh_ttl: Duration,
    reuse_grace: Option<Duration>,
}

impl SessionConfig {
    /// Sessions whose refresh tokens are authenticated with `key`.
    /// Defaults: refresh tokens live 30 days after the last login or
    /// rotation; no reuse grace.
    pub fn new(key: RefreshKey) -> Self {
        SessionConfig {
            key,
            refresh_ttl: Duration::from_secs(30 * 86_400),
            reuse_grace: None,
        }
    }

    /// How long a refresh token stays usable after the login or rotation
    /// that minted it (sliding: each rotation starts it again). Default 30
    /// days.
    pub fn refresh_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// Accepts the refresh token of the generation just before the current
    /// one for `grace` after the last rotation, for clients that retry a
    /// refresh whose answer they lost. Off by default; see the [module
    /// documentation](crate::session) for what it opens up. Keep it short
    /// (seconds).
    ///
    /// Sessions store whole seconds, so the grace is applied in whole
    /// seconds rounded so that it never exceeds `grace`: a retry is
    /// accepted only when its second and the last rotation's are less than
    /// `grace` apart (a grace of one second accepts a retry within the same
    /// second). A zero grace is none; a grace between zero and one second
    /// is refused by [`GuardBuilder::build`].
    pub fn reuse_grace(mut self, grace: Duration) -> Self {
        self.reuse_grace = Some(grace);
        self
    }
}

/// A session's state in the cutoff cache: `version` 1 when revoked, 0 when
/// live (the cache's maximum merge makes a revocation stick), `not_before`
/// the session's `not_before_seen` (constant per session, so the merge
/// keeps it). A revocation's floor carries `(1, 0)`.
const REVOKED: Cutoff = Cutoff::new(1, 0);

/// `true` when a session whose login saw the timestamp cutoffs up to
/// `seen` is ended by a timestamp revocation since: the subject's
/// `not_before` or the global one is above it.
fn begun_before_cutoffs(seen: i64, cutoff: Cutoff, global: i64) -> bool {
    seen < cutoff.not_before || seen < global
}

/// `true` when a session in `state` (cached) is ended for a subject with
/// `cutoff` and the global `not_before`: revoked, or begun before a
/// timestamp revocation. (Its tokens carry the version it began with, which
/// the token's own `ver` check covers.)
pub(crate) fn is_ended(state: Cutoff, cutoff: Cutoff, global: i64) -> bool {
    state.version > 0 || begun_before_cutoffs(state.not_before, cutoff, global)
}

/// `true` when the subject's cutoffs ended `session`: a version bump since
/// its login, a timestamp revocation after it began, or a record that is
/// not the one the session began with (a version below the session's: the
/// row was lost and created again, since versions never go down
/// otherwise).
fn ended_by_cutoffs(session: &Session, cutoff: Cutoff, global: i64) -> bool {
    session.version != cutoff.version
        || begun_before_cutoffs(session.not_before_seen, cutoff, global)
}

fn state_of(session: &Session) -> Cutoff {
    Cutoff::new(
        u64::from(session.revoked_at.is_some()),
        session.not_before_seen,
    )
}

/// Longest subject a session takes: its refresh token carries it.
const MAX_SESSION_SUBJECT_BYTES: usize = 1024;

/// How a guard over `S` loads a session's state: set only by
/// [`GuardBuilder::sessions`], where `S: SessionStore` is known.
pub(crate) type SessionLoad<S> =
    fn(
        Arc<Inner<S>>,
        String,
        String,
    ) -> crate::BoxFuture<'static, Result<Option<Cutoff>, StoreError>>;

fn load_state<S: SessionStore>(
    inner: Arc<Inner<S>>,
    sub: String,
    sid: String,
) -> crate::BoxFuture<'static, Result<Option<Cutoff>, StoreError>> {
    Box::pin(async move {
        let session =
            crate::guard::traced("load_session", inner.store.load_session(&sub, &sid)).await?;
        Ok(session.map(|s| state_of(&s)))
    })
}

/// Extra time a purged session's row is kept beyond its last access
/// token's lifetime and the leeway: covers a clock that runs ahead on the
/// instance that minted the token.
const PURGE_MARGIN_SECS: i64 = 300;

/// What a guard with sessions holds.
pub(crate) struct SessionSupport<S> {
    pub(crate) cache: CutoffCache,
    load: SessionLoad<S>,
    key: RefreshKey,
    refresh_ttl: i64,
    grace: Option<i64>,
}

impl<S: CutoffStore> SessionSupport<S> {
    pub(crate) fn new(
        config: SessionConfig,
        load: SessionLoad<S>,
        cache: CacheConfig,
        clock: Arc<dyn Clock>,
        counters: Arc<Counters>,
    ) -> Result<Self, Error> {
        if config.refresh_ttl.as_secs() == 0 {
            return Err(Error::Config(
                "refresh_ttl must be at least a second".into(),
            ));
        }
        // Two whole-second stamps `d` apart are up to `d + 1` seconds apart
        // in time: the rule `last_used_at + g >= now` stays within `grace`
        // with `g = floor(grace) - 1`.
        let grace = match config.reuse_grace {
            None => None,
            Some(g) if g.is_zero() => None,
            Some(g) if g < Duration::from_secs(1) => {
                return Err(Error::Config(
                    "reuse_grace is applied in whole seconds: use at least 1 s, or none".into(),
                ));
            }
            Some(g) => Some(secs(g) - 1),
        };
        Ok(SessionSupport {
            cache: CutoffCache::with_counters(cache, clock, counters),
            load,
            key: config.key,
            refresh_ttl: secs(config.refresh_ttl),
            grace,
        })
    }

    /// Records a revoked session in the cache (a floor: raises, never makes
    /// fresh; a remote one creates nothing).
    pub(crate) fn revoked(&self, sub: &str, sid: &str, origin: Origin) {
        let key = self.cache.key2(sub, sid);
        self.cache.floor(key, REVOKED, origin);
    }

    /// The session's state for a validation whose cache lookup gave
    /// `lookup`: from the cache when fresh, else from the store (one shared
    /// load), else (store down) from a stale entry within stale-if-error,
    /// marked `true`.
    pub(crate) async fn state(
        &self,
        guard: &Guard<S>,
        sub: &str,
        sid: &str,
        key: SubjectKey,
        lookup: Lookup,
        deadline: tokio::time::Instant,
    ) -> Result<(Cutoff, bool), Error> {
        match lookup {
            Lookup::Fresh(state) => return Ok((state, false)),
            Lookup::Unknown => return Err(Error::SessionRevoked),
            Lookup::Miss => {}
        }
        if !refresh::is_session_id(sid) {
            // Not a session id this library makes: no store holds it.
            return Err(Error::SessionRevoked);
        }
        let inner = &guard.inner;
        let load = self.load;
        match self
            .cache
            .load_or_stale(key, deadline, inner.settings.store_timeout, || {
                load(Arc::clone(inner), sub.to_owned(), sid.to_owned())
            })
            .await
        {
            Ok((Some(state), stale)) => Ok((state, stale)),
            Ok((None, _)) => Err(Error::SessionRevoked),
            Err(e) => Err(Error::StoreUnavailable(e)),
        }
    }
}

impl<S: SessionStore> GuardBuilder<S> {
    /// Enables sessions and refresh tokens ([`Guard::login`],
    /// [`Guard::refresh`], [`Guard::revoke_session`]). Every instance that
    /// validates tokens of sessions must enable them: a guard without
    /// sessions refuses a token with `sid` ([`Error::SessionsDisabled`], a
    /// loud 500) rather than skip the session check. In foreign-token mode
    /// ([`GuardBuilder::foreign_tokens`]), which reads no `ver` and checks
    /// timestamp cutoffs only, a guard without sessions ignores `sid` (an
    /// identity provider's tokens carry their own). With sessions on, every
    /// token with a `sid` is checked against the store's sessions, so do not
    /// enable them on a guard that validates an identity provider's tokens
    /// carrying its own `sid`.
    pub fn sessions(mut self, config: SessionConfig) -> Self {
        self.sessions = Some((config, load_state::<S>));
        self
    }
}

/// The answer to a login or a refresh: what an OAuth token endpoint returns.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionTokens {
    /// The subject (user) the session belongs to: for a refresh, the one
    /// the refresh token named.
    pub sub: String,
    /// The access token (a JWT with `sid`).
    pub access_token: String,
    /// The refresh token of the session's current generation.
    pub refresh_token: String,
    /// The session id (also the access token's `sid`).
    pub session_id: String,
    /// Lifetime of the access token (OAuth's `expires_in`).
    pub expires_in: Duration,
    /// When the refresh token expires, Unix seconds.
    pub refresh_expires_at: i64,
}

impl std::fmt::Debug for SessionTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens are credentials: never printed.
        f.debug_struct("SessionTokens")
            .field("session_id", &self.session_id)
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish_non_exhaustive()
    }
}

impl<S: SessionStore> Guard<S> {
    fn session_support(&self) -> Result<&SessionSupport<S>, Error> {
        self.inner
            .sessions
            .as_ref()
            .ok_or(Error::SessionsNotConfigured)
    }

    /// Logs `sub` in on a new device: creates a session in the store and
    /// returns an access token (with `sid` and the caller's claims `extra`)
    /// and the session's first refresh token.
    ///
    /// Errors: as [`Guard::issue`], and [`Error::SessionsNotConfigured`]
    /// without [`GuardBuilder::sessions`].
    pub async fn login<C: Serialize + ?Sized>(
        &self,
        sub: &str,
        extra: &C,
    ) -> Result<SessionTokens, Error> {
        let support = self.session_support()?;
        if sub.len() > MAX_SESSION_SUBJECT_BYTES {
            return Err(Error::Issue(format!(
                "a session's subject is at most {MAX_SESSION_SUBJECT_BYTES} bytes"
            )));
        }
        let claims = extra_claims(extra)?;
        let deadline = self.deadline();
        let stamp = self.stamp(sub, deadline).await?;
        let sid = refresh::new_session_id()?;
        let now = self.inner.clock.now_seconds();
        let session = Session {
            id: sid.clone(),
            sub: sub.to_owned(),
            generation: 0,
            version: stamp.cutoff.version,
            created_at: now,
            last_used_at: now,
            expires_at: now.saturating_add(support.refresh_ttl),
            revoked_at: None,
            not_before_seen: stamp.cutoff.not_before.max(stamp.global),
        };
        let access_token = self.sign(sub, claims, &stamp, Some(&sid))?;
        let refresh_token = refresh::encode(&support.key, sub, &sid, 0)?;
        self.store_call_until(deadline, self.inner.store.create_session(&session))
            .await?;
        self.inner.cache.counters.sessions_created.incr();
        Ok(SessionTokens {
            sub: session.sub,
            access_token,
            refresh_token,
            session_id: sid,
            expires_in: self.access_ttl(),
            refresh_expires_at: session.expires_at,
        })
    }

    /// Rotates a refresh token: returns a new access token and the refresh
    /// token of the next generation, for the same session.
    ///
    /// The access token carries the claims `extra`, which the caller gives
    /// before knowing whose refresh token this is: use
    /// [`Guard::refresh_with`] when the claims depend on the subject (a
    /// role, a tenant), so that an admin stays an admin after a refresh.
    ///
    /// Errors: [`Error::RefreshInvalid`] for a token this guard did not
    /// issue (garbage, tampered, another key, an access token) or of a
    /// session the store does not hold or whose refresh token expired;
    /// [`Error::RefreshReused`] for a spent generation (the session is
    /// revoked by this call); [`Error::SessionRevoked`] for a revoked
    /// session or one that the subject's cutoffs ended (logged out
    /// everywhere, password changed); [`Error::UnknownSubject`],
    /// [`Error::Revoked`] (account locked), [`Error::RetryLater`] and
    /// [`Error::StoreUnavailable`] as for [`Guard::issue`];
    /// [`Error::SessionsNotConfigured`] without [`GuardBuilder::sessions`].
    pub async fn refresh<C: Serialize + ?Sized>(
        &self,
        refresh_token: &str,
        extra: &C,
    ) -> Result<SessionTokens, Error> {
        self.session_support()?;
        let claims = extra_claims(extra)?;
        self.rotate_refresh_token(refresh_token, move |_, _| std::future::ready(Ok(claims)))
            .await
    }

    /// Rotates a refresh token like [`Guard::refresh`], with the claims of
    /// the new access token computed by the application for the subject
    /// and session the refresh token names: `claims(sub, session_id)`
    /// returns a future of the claims (any `Serialize` that is a JSON
    /// object, as for [`Guard::issue`]), e.g. the user's current role read
    /// from the application's database. A plain closure returning an
    /// `async move` block and an async closure both fit; the subject and
    /// the session id are owned `String`s, so the future may keep them.
    ///
    /// The claims are asked for after the refresh token's MAC is checked
    /// and the subject's cutoffs are read (a forged token or an unknown
    /// subject never reaches the application), and before the rotation: if
    /// the closure fails, or its claims cannot ride in a token, nothing is
    /// spent and the same refresh token can be presented again. The
    /// closure may still run for a refresh that the rotation then refuses
    /// (a reused generation, a revoked session), so it should only read.
    /// Time spent in it does not count against
    /// [`GuardBuilder::store_timeout`]: the rotation gets its whole timeout
    /// afterwards.
    ///
    /// Errors: [`Error::ClaimsUnavailable`] (503, the closure's error as
    /// its source) when the closure fails; [`Error::Issue`] when its claims
    /// are not a JSON object or use a registered claim name; otherwise as
    /// [`Guard::refresh`].
    ///
    /// An axum `/refresh` endpoint whose users keep their role:
    ///
    /// ```
    /// # #[cfg(feature = "axum")] {
    /// use axum::{Json, Router, extract::State, routing::post};
    /// use jwt_revoke::{Error, Guard, MemoryStore};
    ///
    /// #[derive(serde::Serialize)]
    /// struct Claims {
    ///     role: String,
    /// }
    ///
    /// #[derive(Clone)]
    /// struct App {
    ///     guard: Guard<MemoryStore>,
    ///     users: Users,
    /// }
    ///
    /// /// The application's users table (e.g. a database pool).
    /// #[derive(Clone)]
    /// struct Users;
    ///
    /// impl Users {
    ///     async fn role_of(&self, sub: &str) -> Result<String, std::io::Error> {
    ///         Ok(if sub == "alice" { "admin" } else { "user" }.to_owned())
    ///     }
    /// }
    ///
    /// #[derive(serde::Deserialize)]
    /// struct RefreshRequest {
    ///     refresh_token: String,
    /// }
    ///
    /// async fn refresh(
    ///     State(app): State<App>,
    ///     Json(body): Json<RefreshRequest>,
    /// ) -> Result<Json<serde_json::Value>, Error> {
    ///     let users = &app.users; // the future borrows it
    ///     let tokens = app
    ///         .guard
    ///         .refresh_with(&body.refresh_token, |sub, _session_id| async move {
    ///             let role = users.role_of(&sub).await?;
    ///             Ok::<_, std::io::Error>(Claims { role })
    ///         })
    ///         .await?; // a failed lookup answers 503 claims_unavailable
    ///     Ok(Json(serde_json::json!({
    ///         "access_token": tokens.access_token,
    ///         "refresh_token": tokens.refresh_token,
    ///         "expires_in": tokens.expires_in.as_secs(),
    ///     })))
    /// }
    ///
    /// # use jwt_revoke::{Algorithm, Keys, RefreshKey, SessionConfig};
    /// # let secret = b"a secret of at least thirty-two bytes";
    /// # let guard = Guard::builder(Keys::hmac(Algorithm::HS256, secret).unwrap(), MemoryStore::new())
    /// #     .sessions(SessionConfig::new(RefreshKey::new(secret).unwrap()))
    /// #     .build()
    /// #     .unwrap();
    /// let app: Router = Router::new()
    ///     .route("/refresh", post(refresh))
    ///     .with_state(App { guard, users: Users });
    /// # }
    /// ```
    pub async fn refresh_with<F, Fut, C, E>(
        &self,
        refresh_token: &str,
        claims: F,
    ) -> Result<SessionTokens, Error>
    where
        F: FnOnce(String, String) -> Fut,
        Fut: Future<Output = Result<C, E>>,
        C: Serialize,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.rotate_refresh_token(refresh_token, |sub, sid| {
            let claims = claims(sub.to_owned(), sid.to_owned());
            async move {
                let claims = claims
                    .await
                    .map_err(|e| Error::ClaimsUnavailable(e.into()))?;
                extra_claims(&claims)
            }
        })
        .await
    }

    /// The refresh itself: `claims_for(sub, sid)` gives the new access
    /// token's claims, asked for between the cutoffs' read and the
    /// rotation.
    async fn rotate_refresh_token<F, Fut>(
        &self,
        refresh_token: &str,
        claims_for: F,
    ) -> Result<SessionTokens, Error>
    where
        F: FnOnce(&str, &str) -> Fut,
        Fut: Future<Output = Result<serde_json::Map<String, serde_json::Value>, Error>>,
    {
        let support = self.session_support()?;
        let presented = refresh::decode(&support.key, refresh_token)?;
        let sub = presented.sub.as_str();
        let sid = presented.sid.as_str();
        // The subject's cutoffs first: read from the store before the
        // rotation, so nothing after the rotation can fail on the store
        // and cost the client its session.
        let stamp = self.stamp(sub, self.deadline()).await?;
        // The claims next, for the same reason: a failure here spends
        // nothing. The token is stamped from the read above, so a
        // revocation during this call still ends it.
        let claims = claims_for(sub, sid).await?;
        // The application's time is its own: the rotation gets the whole
        // store timeout.
        let deadline = self.deadline();
        let now = self.inner.clock.now_seconds();
        let rotate = Rotate {
            generation: presented.generation,
            now,
            expires_at: now.saturating_add(support.refresh_ttl),
            grace: support.grace,
        };
        let rotation = self
            .store_call_until(deadline, self.inner.store.rotate_refresh(sub, sid, rotate))
            .await?;
        let counters = &self.inner.cache.counters;
        match rotation {
            Rotation::Rotated(session) => {
                if ended_by_cutoffs(&session, stamp.cutoff, stamp.global) {
                    // Its access tokens are already revoked by the same
                    // cutoffs; the session cannot refresh any more.
                    return Err(Error::SessionRevoked);
                }
                let access_token = self.sign(sub, claims, &stamp, Some(sid))?;
                let refresh_token = refresh::encode(&support.key, sub, sid, session.generation)?;
                counters.refreshes.incr();
                Ok(SessionTokens {
                    sub: presented.sub,
                    access_token,
                    refresh_token,
                    session_id: presented.sid,
                    expires_in: self.access_ttl(),
                    refresh_expires_at: session.expires_at,
                })
            }
            Rotation::Reused(_) => {
                counters.refresh_reuses.incr();
                counters.sessions_revoked.incr();
                #[cfg(feature = "tracing")]
                tracing::warn!(target: "jwt_revoke", "refresh token reused; session revoked");
                self.session_revoked(support, sub, sid, true).await;
                Err(Error::RefreshReused)
            }
            Rotation::Revoked => {
                // Perhaps revoked by this very refresh, retried after its
                // reply was lost (reuse detected, the answer never came
                // back): publish again, so other instances learn it even
                // then. Events are floors; a duplicate changes nothing.
                self.session_revoked(support, sub, sid, true).await;
                Err(Error::SessionRevoked)
            }
            Rotation::Expired | Rotation::Unknown => Err(Error::RefreshInvalid),
        }
    }

    /// Records a session revoked in the store: at once in this guard's
    /// cache, then (`publish`) on the bus.
    async fn session_revoked(
        &self,
        support: &SessionSupport<S>,
        sub: &str,
        sid: &str,
        publish: bool,
    ) {
        support.revoked(sub, sid, Origin::Local);
        if publish {
            self.publish(CutoffEvent::Session {
                sub: sub.to_owned(),
                sid: sid.to_owned(),
            })
            .await;
        }
    }

    /// Revokes one session of `sub` (log out one device): its refresh token
    /// stops rotating and its access tokens are rejected by this guard as
    /// soon as this returns, by other instances through the bus or within
    /// their cache TTL. The subject's other sessions are untouched.
    ///
    /// Returns `true` when a session of `sub` was revoked now, `false` when
    /// there is no such session of `sub` (another subject's session is never
    /// touched) or it was revoked already.
    pub async fn revoke_session(&self, sub: &str, sid: &str) -> Result<bool, Error> {
        let support = self.session_support()?;
        if !refresh::is_session_id(sid) {
            return Ok(false);
        }
        let now = self.inner.clock.now_seconds();
        let revoked = self
            .store_call_until(
                self.deadline(),
                self.inner.store.revoke_session(sub, sid, now),
            )
            .await?;
        if revoked {
            self.inner.cache.counters.sessions_revoked.incr();
        }
        // Also when it was revoked already: perhaps by another instance
        // whose event this one missed, or by this very call, retried after
        // its reply was lost. This guard knows at once, and the event goes
        // out again (a floor: a duplicate changes nothing), so a retry
        // does everything the first call would have done after the write.
        self.session_revoked(support, sub, sid, true).await;
        Ok(revoked)
    }

    /// Revokes every session of `sub` (log out every device, or the first
    /// step of deleting a user): their refresh tokens stop rotating and
    /// their access tokens are rejected by this guard as soon as this
    /// returns, by other instances through the bus or within their cache
    /// TTL. Returns how many sessions of the subject the store holds, all
    /// revoked after the call (those revoked earlier included). The
    /// subject's cutoffs are untouched (tokens without a session stay
    /// valid: use [`Guard::bump_version`] to end those too).
    ///
    /// Retrying after an error is safe: every session the store names is
    /// recorded and announced again (events are floors).
    pub async fn revoke_sessions(&self, sub: &str) -> Result<usize, Error> {
        let support = self.session_support()?;
        let now = self.inner.clock.now_seconds();
        let ended = self
            .store_call_until(self.deadline(), self.inner.store.revoke_sessions(sub, now))
            .await?;
        for sid in &ended {
            self.session_revoked(support, sub, sid, true).await;
        }
        Ok(ended.len())
    }

    /// Revokes the session of a validated token ("log out this device").
    /// Returns `false` for a token without a session (`sid`); see
    /// [`Guard::revoke_session`].
    pub async fn logout<C>(&self, token: &Verified<C>) -> Result<bool, Error> {
        match token.session_id() {
            Some(sid) => self.revoke_session(token.sub(), sid).await,
            None => Ok(false),
        }
    }

    /// The active sessions of `sub`, oldest first: not revoked, not expired,
    /// and not ended by the subject's cutoffs (read from the store).
    pub async fn sessions(&self, sub: &str) -> Result<Vec<Session>, Error> {
        self.session_support()?;
        let inner = &*self.inner;
        let deadline = self.deadline();
        let now = inner.clock.now_seconds();
        // Three independent reads: one round trip.
        let (cutoff, global, mut sessions) = futures_util::future::try_join3(
            self.store_call_until(deadline, inner.store.load(sub)),
            self.store_call_until(deadline, inner.store.load_global()),
            self.store_call_until(deadline, inner.store.list_sessions(sub, now)),
        )
        .await?;
        let cutoff = cutoff.unwrap_or_default();
        sessions.retain(|s| s.is_active(now) && !ended_by_cutoffs(s, cutoff, global));
        Ok(sessions)
    }

    /// Deletes sessions whose refresh token expired long enough ago that no
    /// access token of theirs can still validate (`expires_at` older than
    /// the access-token lifetime, the leeway and five minutes for clock
    /// skew). Returns how many were deleted. Call it periodically.
    pub async fn purge_sessions(&self) -> Result<u64, Error> {
        self.session_support()?;
        let inner = &*self.inner;
        let keep = inner
            .settings
            .access_ttl
            .saturating_add(inner.settings.leeway)
            .saturating_add(PURGE_MARGIN_SECS);
        let before = inner.clock.now_seconds().saturating_sub(keep);
        self.store_call_until(self.deadline(), inner.store.purge_sessions(before))
            .await
    }
}
