//! The storage contract the host application implements over its own database.
//!
//! A [`CutoffStore`] holds one [`Cutoff`] per subject (one row per user, never
//! one per token) and optionally one global `not_before`. The
//! [`Guard`](crate::Guard) caches what `load` returns and calls the write
//! methods on logout, password change or account lock.
//!
//! Every write must be atomic in the store (an `UPDATE … RETURNING`, a
//! `HINCRBY`, a lock) and must never move a cutoff backwards: `bump_version`
//! adds one, `revoke_before` takes the maximum.
//!
//! # Lost rows
//!
//! A row can disappear: a user is deleted and later created again with the
//! same `sub`, an operator runs `DELETE`, Redis evicts a key or restarts
//! without its data. Versions restart from zero then, so a store must
//! never *create* a subject's record in a state that accepts a token an
//! earlier state rejected: every record it creates (a registration, or a
//! revocation of a subject it does not hold) starts with `not_before` at
//! least its own clock's now plus two seconds ([`Cutoff::created`]), which
//! rejects every token issued before the record existed, whatever its
//! version. The shipped stores take that time from the database (SQL
//! `now`, Redis `TIME`) or, for [`MemoryStore`](crate::MemoryStore), from
//! its clock. A missing record otherwise reads as unknown (`None`), and
//! the guard rejects the subject's tokens: a loss fails closed.
//!
//! # A custom store
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use jwt_revoke::{Cutoff, CutoffStore, StoreError};
//!
//! /// A store over a mutex-protected map; a real one would talk to a database.
//! #[derive(Default)]
//! struct MyStore {
//!     rows: Mutex<HashMap<String, Cutoff>>,
//! }
//!
//! impl MyStore {
//!     fn rows(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Cutoff>>, StoreError> {
//!         self.rows.lock().map_err(|_| StoreError::msg("poisoned lock"))
//!     }
//! }
//!
//! impl CutoffStore for MyStore {
//!     async fn load(&self, sub: &str) -> Result<Option<Cutoff>, StoreError> {
//!         Ok(self.rows()?.get(sub).copied())
//!     }
//!     async fn bump_version(&self, sub: &str) -> Result<Cutoff, StoreError> {
//!         let mut rows = self.rows()?;
//!         // A record created now rejects every token issued before it.
//!         let row = rows.entry(sub.to_owned()).or_insert_with(|| Cutoff::default().created(now()));
//!         *row = row.bumped();
//!         Ok(*row)
//!     }
//!     async fn revoke_before(&self, sub: &str, at: i64) -> Result<Cutoff, StoreError> {
//!         let mut rows = self.rows()?;
//!         let row = rows.entry(sub.to_owned()).or_insert_with(|| Cutoff::default().created(now()));
//!         *row = row.revoked_before(at);
//!         Ok(*row)
//!     }
//! }
//!
//! /// The store's clock, Unix seconds.
//! fn now() -> i64 {
//!     std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
//! }
//!
//! # tokio_test_block_on(async {
//! let store = MyStore::default();
//! assert_eq!(store.bump_version("alice").await.unwrap().version, 1);
//! let created = store.load("alice").await.unwrap().unwrap();
//! assert!(created.version == 1 && created.not_before > now() - 5);
//! assert_eq!(store.load("bob").await.unwrap(), None);
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;

use crate::bus::BoxFuture;
use crate::cutoff::Cutoff;
use crate::session::{Rotate, Rotation, Session, SessionStore};

/// An error from a [`CutoffStore`]: the database is down, a query failed, a
/// connection timed out. The guard turns it into
/// [`Error::StoreUnavailable`](crate::Error::StoreUnavailable) (HTTP 503).
///
/// One error is not an outage: a write for a subject the store does not
/// hold and will not create ([`StoreError::unknown_subject`], e.g. a user
/// deleted from a users table) reaches the caller of the guard's
/// revocation methods as [`Error::UnknownSubject`](crate::Error::UnknownSubject).
///
/// Cloning is cheap (the source is shared), so one failed load can be
/// reported to every caller that waited on it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cutoff store error: {source}")]
pub struct StoreError {
    #[source]
    source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    unknown_subject: bool,
}

impl StoreError {
    /// Wraps any error of the underlying database client.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        StoreError {
            source: Arc::from(source.into()),
            unknown_subject: false,
        }
    }

    /// An error from a message.
    pub fn msg(message: impl Into<String>) -> Self {
        let boxed: Box<dyn std::error::Error + Send + Sync> = message.into().into();
        StoreError {
            source: Arc::from(boxed),
            unknown_subject: false,
        }
    }

    /// A write named a subject the store does not hold and does not create
    /// (a store without upsert, such as the users-table stores: a deleted
    /// user must not come back). The guard's
    /// [`bump_version`](crate::Guard::bump_version) and
    /// [`revoke_before`](crate::Guard::revoke_before) answer it with
    /// [`Error::UnknownSubject`](crate::Error::UnknownSubject), not
    /// [`Error::StoreUnavailable`](crate::Error::StoreUnavailable).
    pub fn unknown_subject() -> Self {
        StoreError {
            unknown_subject: true,
            ..StoreError::msg("the subject does not exist in the store")
        }
    }

    /// Whether this is [`StoreError::unknown_subject`].
    pub fn is_unknown_subject(&self) -> bool {
        self.unknown_subject
    }

    /// The store did not answer within the guard's
    /// [`store_timeout`](crate::GuardBuilder::store_timeout). For a write,
    /// the outcome is unknown: it may still land.
    pub fn timed_out(after: std::time::Duration) -> Self {
        StoreError::msg(format!("no answer from the cutoff store within {after:?}"))
    }

    /// The operation is not supported by this store (the default for the
    /// global cutoff methods).
    pub fn unsupported(operation: &'static str) -> Self {
        StoreError::msg(format!("{operation} is not supported by this store"))
    }

    /// The underlying error.
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.source
    }
}

/// Per-subject cutoffs in the host application's database.
///
/// Implementations must be atomic per call and monotone: a returned or stored
/// cutoff never has a lower `version` or `not_before` than before the call.
/// See the [module documentation](crate::store) for a complete implementation.
pub trait CutoffStore: Send + Sync + 'static {
    /// The subject's cutoff, or `None` when the subject is unknown (a deleted
    /// user, a forged `sub`): the guard then rejects the token with
    /// [`Error::UnknownSubject`](crate::Error::UnknownSubject).
    fn load(&self, sub: &str) -> impl Future<Output = Result<Option<Cutoff>, StoreError>> + Send;

    /// Atomically increments the subject's version and returns the new cutoff.
    /// Creates the subject (from [`Cutoff::default`]) when absent, or, in a
    /// store that holds only subjects the host created (a users table),
    /// fails with [`StoreError::unknown_subject`].
    fn bump_version(&self, sub: &str) -> impl Future<Output = Result<Cutoff, StoreError>> + Send;

    /// Revokes every token of the subject with `iat <= at`: the stored
    /// `not_before` becomes `max(not_before, at + 1)` (see
    /// [`Cutoff::revoked_before`]). Returns the new cutoff. Creates the
    /// subject when absent, or fails with [`StoreError::unknown_subject`]
    /// (as `bump_version`).
    fn revoke_before(
        &self,
        sub: &str,
        at: i64,
    ) -> impl Future<Output = Result<Cutoff, StoreError>> + Send;

    /// The global `not_before` (Unix seconds) that applies to every subject;
    /// `0` means none. The default implementation has no global cutoff.
    fn load_global(&self) -> impl Future<Output = Result<i64, StoreError>> + Send {
        async { Ok(0) }
    }

    /// Revokes every token of every subject with `iat <= at`: the global
    /// `not_before` becomes `max(not_before, at + 1)`, which is returned.
    /// The default implementation returns an "unsupported" error.
    fn revoke_all_before(&self, at: i64) -> impl Future<Output = Result<i64, StoreError>> + Send {
        let _ = at;
        async { Err(StoreError::unsupported("revoke_all_before")) }
    }
}

/// A shared store is a store, so the host can keep a handle next to the guard.
impl<S: CutoffStore> CutoffStore for Arc<S> {
    fn load(&self, sub: &str) -> impl Future<Output = Result<Option<Cutoff>, StoreError>> + Send {
        (**self).load(sub)
    }
    fn bump_version(&self, sub: &str) -> impl Future<Output = Result<Cutoff, StoreError>> + Send {
        (**self).bump_version(sub)
    }
    fn revoke_before(
        &self,
        sub: &str,
        at: i64,
    ) -> impl Future<Output = Result<Cutoff, StoreError>> + Send {
        (**self).revoke_before(sub, at)
    }
    fn load_global(&self) -> impl Future<Output = Result<i64, StoreError>> + Send {
        (**self).load_global()
    }
    fn revoke_all_before(&self, at: i64) -> impl Future<Output = Result<i64, StoreError>> + Send {
        (**self).revoke_all_before(at)
    }
}

/// The object-safe twin of [`CutoffStore`], implemented for every store;
/// what [`DynStore`] holds.
trait ErasedStore: Send + Sync + 'static {
    fn load<'a>(&'a self, sub: &'a str) -> BoxFuture<'a, Result<Option<Cutoff>, StoreError>>;
    fn bump_version<'a>(&'a self, sub: &'a str) -> BoxFuture<'a, Result<Cutoff, StoreError>>;
    fn revoke_before<'a>(
        &'a self,
        sub: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<Cutoff, StoreError>>;
    fn load_global(&self) -> BoxFuture<'_, Result<i64, StoreError>>;
    fn revoke_all_before(&self, at: i64) -> BoxFuture<'_, Result<i64, StoreError>>;
}

impl<S: CutoffStore> ErasedStore for S {
    fn load<'a>(&'a self, sub: &'a str) -> BoxFuture<'a, Result<Option<Cutoff>, StoreError>> {
        Box::pin(CutoffStore::load(self, sub))
    }
    fn bump_version<'a>(&'a self, sub: &'a str) -> BoxFuture<'a, Result<Cutoff, StoreError>> {
        Box::pin(CutoffStore::bump_version(self, sub))
    }
    fn revoke_before<'a>(
        &'a self,
        sub: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<Cutoff, StoreError>> {
        Box::pin(CutoffStore::revoke_before(self, sub, at))
    }
    fn load_global(&self) -> BoxFuture<'_, Result<i64, StoreError>> {
        Box::pin(CutoffStore::load_global(self))
    }
    fn revoke_all_before(&self, at: i64) -> BoxFuture<'_, Result<i64, StoreError>> {
        Box::pin(CutoffStore::revoke_all_before(self, at))
    }
}

/// The object-safe twin of [`SessionStore`], for [`DynStore::with_sessions`].
trait ErasedSessions: Send + Sync + 'static {
    fn create_session<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<(), StoreError>>;
    fn load_session<'a>(
        &'a self,
        sub: &'a str,
        sid: &'a str,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>>;
    fn rotate_refresh<'a>(
        &'a self,
        sub: &'a str,
        sid: &'a str,
        rotate: Rotate,
    ) -> BoxFuture<'a, Result<Rotation, StoreError>>;
    fn revoke_session<'a>(
        &'a self,
        sub: &'a str,
        sid: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    fn revoke_sessions<'a>(
        &'a self,
        sub: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>>;
    fn list_sessions<'a>(
        &'a self,
        sub: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Vec<Session>, StoreError>>;
    fn purge_sessions(&self, before: i64) -> BoxFuture<'_, Result<u64, StoreError>>;
}

impl<S: SessionStore> ErasedSessions for S {
    fn create_session<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(SessionStore::create_session(self, session))
    }
    fn load_session<'a>(
        &'a self,
        sub: &'a str,
        sid: &'a str,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        Box::pin(SessionStore::load_session(self, sub, sid))
    }
    fn rotate_refresh<'a>(
        &'a self,
        sub: &'a str,
        sid: &'a str,
        rotate: Rotate,
    ) -> BoxFuture<'a, Result<Rotation, StoreError>> {
        Box::pin(SessionStore::rotate_refresh(self, sub, sid, rotate))
    }
    fn revoke_session<'a>(
        &'a self,
        sub: &'a str,
        sid: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(SessionStore::revoke_session(self, sub, sid, at))
    }
    fn revoke_sessions<'a>(
        &'a self,
        sub: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(SessionStore::revoke_sessions(self, sub, at))
    }
    fn list_sessions<'a>(
        &'a self,
        sub: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Vec<Session>, StoreError>> {
        Box::pin(SessionStore::list_sessions(self, sub, now))
    }
    fn purge_sessions(&self, before: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(SessionStore::purge_sessions(self, before))
    }
}

/// Any [`CutoffStore`] behind one type, so application state need not be
/// generic over the store (`Guard<DynStore>`), and tests can swap a
/// [`MemoryStore`](crate::MemoryStore) for SQLite without changing types.
///
/// Each store call costs one boxed future more than the concrete store;
/// cache hits never call the store, so only misses and revocations pay it.
///
/// A `DynStore` is also a [`SessionStore`]: built with
/// [`DynStore::with_sessions`] it passes session calls to the store; built
/// with [`DynStore::new`], every session call fails ("unsupported"), so a
/// guard with sessions over it answers `store_unavailable`, never accepts.
///
/// ```
/// use jwt_revoke::{Algorithm, Cutoff, DynStore, Guard, Keys, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let memory = MemoryStore::new();
/// memory.insert("alice", Cutoff::default());
/// let store = DynStore::new(memory); // or DynStore::new(SqliteStore::connect(..).await?)
/// let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
/// let guard: Guard<DynStore> = Guard::builder(keys, store).build().unwrap();
/// let token = guard.issue("alice", &()).await.unwrap();
/// assert!(guard.validate::<()>(&token).await.is_ok());
/// # });
/// ```
#[derive(Clone)]
pub struct DynStore {
    cutoffs: Arc<dyn ErasedStore>,
    sessions: Option<Arc<dyn ErasedSessions>>,
}

impl DynStore {
    /// Wraps a store (its session calls, if any, are not reachable: see
    /// [`DynStore::with_sessions`]).
    pub fn new(store: impl CutoffStore) -> Self {
        DynStore {
            cutoffs: Arc::new(store),
            sessions: None,
        }
    }

    /// Wraps a store with sessions.
    pub fn with_sessions(store: impl SessionStore) -> Self {
        let store = Arc::new(store);
        DynStore {
            cutoffs: store.clone(),
            sessions: Some(store),
        }
    }

    fn sessions(&self, operation: &'static str) -> Result<&dyn ErasedSessions, StoreError> {
        self.sessions
            .as_deref()
            .ok_or_else(|| StoreError::unsupported(operation))
    }
}

impl std::fmt::Debug for DynStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynStore")
            .field("sessions", &self.sessions.is_some())
            .finish_non_exhaustive()
    }
}

impl CutoffStore for DynStore {
    async fn load(&self, sub: &str) -> Result<Option<Cutoff>, StoreError> {
        self.cutoffs.load(sub).await
    }
    async fn bump_version(&self, sub: &str) -> Result<Cutoff, StoreError> {
        self.cutoffs.bump_version(sub).await
    }
    async fn revoke_before(&self, sub: &str, at: i64) -> Result<Cutoff, StoreError> {
        self.cutoffs.revoke_before(sub, at).await
    }
    async fn load_global(&self) -> Result<i64, StoreError> {
        self.cutoffs.load_global().await
    }
    async fn revoke_all_before(&self, at: i64) -> Result<i64, StoreError> {
        self.cutoffs.revoke_all_before(at).await
    }
}

impl SessionStore for DynStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.sessions("create_session")?
            .create_session(session)
            .await
    }
    async fn load_session(&self, sub: &str, sid: &str) -> Result<Option<Session>, StoreError> {
        self.sessions("load_session")?.load_session(sub, sid).await
    }
    async fn rotate_refresh(
        &self,
        sub: &str,
        sid: &str,
        rotate: Rotate,
    ) -> Result<Rotation, StoreError> {
        self.sessions("rotate_refresh")?
            .rotate_refresh(sub, sid, rotate)
            .await
    }
    async fn revoke_session(&self, sub: &str, sid: &str, at: i64) -> Result<bool, StoreError> {
        self.sessions("revoke_session")?
            .revoke_session(sub, sid, at)
            .await
    }
    async fn revoke_sessions(&self, sub: &str, at: i64) -> Result<Vec<String>, StoreError> {
        self.sessions("revoke_sessions")?
            .revoke_sessions(sub, at)
            .await
    }
    async fn list_sessions(&self, sub: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        self.sessions("list_sessions")?
            .list_sessions(sub, now)
            .await
    }
    async fn purge_sessions(&self, before: i64) -> Result<u64, StoreError> {
        self.sessions("purge_sessions")?
            .purge_sessions(before)
            .await
    }
}
