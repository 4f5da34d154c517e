//! An in-process [`CutoffStore`] for tests, demos and single-process apps.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use dashmap::DashMap;

use crate::clock::{Clock, SystemClock};
use crate::cutoff::Cutoff;
use crate::session::{Rotate, Rotation, Session, SessionStore, apply_rotation};
use crate::store::{CutoffStore, StoreError};
use crate::stores::{check_storable, storable};

/// An in-memory [`CutoffStore`] and [`SessionStore`] on concurrent maps.
///
/// Every operation is atomic per subject or session (it runs under the
/// map's shard lock) and never blocks on I/O. Listing and purging sessions
/// walk every session held. State is lost when the process exits, so a
/// revocation does not survive a restart: use a database-backed store when
/// that matters.
///
/// Like every shipped store, it holds no subject containing a NUL byte
/// (PostgreSQL cannot): such a subject loads as unknown, and writing it is
/// an error, so behaviour does not change when the backend does.
///
/// A subject's record is created (by [`MemoryStore::insert`], or by a
/// revocation of a subject it does not hold) with `not_before` at least
/// the store's clock plus two seconds ([`Cutoff::created`]): a subject
/// removed and created again, or registered again after a restart, never
/// accepts a token issued before. The clock is the system's by default;
/// [`MemoryStore::with_clock`] shares a test's fake clock.
///
/// ```
/// use jwt_revoke::{Cutoff, CutoffStore, FakeClock, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::with_clock(FakeClock::new(1_000));
/// store.insert("alice", Cutoff::default());
/// assert_eq!(store.bump_version("alice").await.unwrap(), Cutoff::new(1, 1_002));
/// assert_eq!(store.load("nobody").await.unwrap(), None);
/// # });
/// ```
pub struct MemoryStore {
    subjects: DashMap<String, Cutoff>,
    global_not_before: AtomicI64,
    /// Sessions by id ([`SessionStore`]).
    sessions: DashMap<String, Session>,
    /// Stamps the creation of records.
    clock: Arc<dyn Clock>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_clock(SystemClock)
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("subjects", &self.subjects.len())
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store: every subject is unknown until inserted or written.
    /// Records are stamped with the system clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose records are stamped with `clock` (a
    /// [`FakeClock`](crate::FakeClock) in tests, the same as the guard's).
    pub fn with_clock(clock: impl Clock) -> Self {
        MemoryStore {
            subjects: DashMap::new(),
            global_not_before: AtomicI64::new(0),
            sessions: DashMap::new(),
            clock: Arc::new(clock),
        }
    }

    /// Adds a subject (a registered user). A new record starts at `cutoff`
    /// with `not_before` raised to at least now + 2 s
    /// ([`Cutoff::created`]), so a subject registered again after a
    /// [`remove`](Self::remove) never inherits the old one's tokens. If the
    /// subject exists, the cutoffs are merged by maximum: a cutoff never
    /// moves backwards.
    ///
    /// A subject containing a NUL byte is not stored (no store holds one;
    /// its tokens stay unknown).
    pub fn insert(&self, sub: impl Into<String>, cutoff: Cutoff) {
        let sub = sub.into();
        if !storable(&sub) {
            return;
        }
        let now = self.clock.now_seconds();
        self.subjects
            .entry(sub)
            .and_modify(|c| *c = c.merge(cutoff))
            .or_insert_with(|| cutoff.created(now));
    }

    /// Forgets a subject (a deleted user): its tokens are then rejected as
    /// [`Error::UnknownSubject`](crate::Error::UnknownSubject) once the guard's
    /// cache entry expires. Returns the cutoff it had. The subject's
    /// sessions stay: end them first with
    /// [`Guard::revoke_sessions`](crate::Guard::revoke_sessions). A subject
    /// created again later starts after now (see [`MemoryStore::insert`]).
    pub fn remove(&self, sub: &str) -> Option<Cutoff> {
        self.subjects.remove(sub).map(|(_, c)| c)
    }

    /// Number of subjects held.
    pub fn len(&self) -> usize {
        self.subjects.len()
    }

    /// `true` when no subject is held.
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }

    fn update(&self, sub: &str, mut f: impl FnMut(Cutoff) -> Cutoff) -> Cutoff {
        // `get_mut` first so the common case does not allocate the key.
        if let Some(mut c) = self.subjects.get_mut(sub) {
            *c = f(*c);
            return *c;
        }
        let now = self.clock.now_seconds();
        let mut entry = self
            .subjects
            .entry(sub.to_owned())
            .or_insert_with(|| Cutoff::default().created(now));
        *entry = f(*entry);
        *entry
    }
}

impl CutoffStore for MemoryStore {
    async fn load(&self, sub: &str) -> Result<Option<Cutoff>, StoreError> {
        Ok(self.subjects.get(sub).map(|c| *c))
    }

    async fn bump_version(&self, sub: &str) -> Result<Cutoff, StoreError> {
        check_storable(sub)?;
        // At u64::MAX, `bumped` saturates: the "revocation" would change
        // nothing yet report success. Fail like the SQL and Redis stores.
        let mut saturated = false;
        let c = self.update(sub, |c| {
            saturated = c.version == u64::MAX;
            c.bumped()
        });
        if saturated {
            return Err(StoreError::msg("token_version is at its maximum"));
        }
        Ok(c)
    }

    async fn revoke_before(&self, sub: &str, at: i64) -> Result<Cutoff, StoreError> {
        check_storable(sub)?;
        Ok(self.update(sub, |c| c.revoked_before(at)))
    }

    async fn load_global(&self) -> Result<i64, StoreError> {
        Ok(self.global_not_before.load(Ordering::Acquire))
    }

    async fn revoke_all_before(&self, at: i64) -> Result<i64, StoreError> {
        let next = at.saturating_add(1);
        let prev = self.global_not_before.fetch_max(next, Ordering::AcqRel);
        Ok(prev.max(next))
    }
}

impl SessionStore for MemoryStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        check_storable(&session.sub)?;
        check_storable(&session.id)?;
        match self.sessions.entry(session.id.clone()) {
            dashmap::mapref::entry::Entry::Occupied(_) => {
                Err(StoreError::msg("a session with this id exists"))
            }
            dashmap::mapref::entry::Entry::Vacant(v) => {
                v.insert(session.clone());
                Ok(())
            }
        }
    }

    async fn load_session(&self, sub: &str, sid: &str) -> Result<Option<Session>, StoreError> {
        Ok(self
            .sessions
            .get(sid)
            .filter(|s| s.sub == sub)
            .map(|s| s.clone()))
    }

    async fn rotate_refresh(
        &self,
        sub: &str,
        sid: &str,
        rotate: Rotate,
    ) -> Result<Rotation, StoreError> {
        Ok(match self.sessions.get_mut(sid) {
            Some(mut s) if s.sub == sub => apply_rotation(&mut s, rotate),
            _ => Rotation::Unknown,
        })
    }

    async fn revoke_session(&self, sub: &str, sid: &str, at: i64) -> Result<bool, StoreError> {
        Ok(match self.sessions.get_mut(sid) {
            Some(mut s) if s.sub == sub && s.revoked_at.is_none() => {
                s.revoked_at = Some(at);
                true
            }
            _ => false,
        })
    }

    async fn revoke_sessions(&self, sub: &str, at: i64) -> Result<Vec<String>, StoreError> {
        let mut ended = Vec::new();
        for mut s in self.sessions.iter_mut() {
            if s.sub == sub {
                s.revoked_at.get_or_insert(at);
                ended.push(s.id.clone());
            }
        }
        Ok(ended)
    }

    async fn list_sessions(&self, sub: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        let mut found: Vec<Session> = self
            .sessions
            .iter()
            .filter(|s| s.sub == sub && s.is_active(now))
            .map(|s| s.clone())
            .collect();
        crate::stores::oldest_first(&mut found);
        Ok(found)
    }

    async fn purge_sessions(&self, before: i64) -> Result<u64, StoreError> {
        let mut purged = 0;
        self.sessions.retain(|_, s| {
            let keep = s.expires_at >= before;
            purged += u64::from(!keep);
            keep
        });
        Ok(purged)
    }
}
