//! A memory store with fault injection on every path the session code
//! uses: counted loads, gates that hold a read's answer (an old answer on
//! its way), outages and hangs. Shared by the session suites.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use jwt_revoke::{
    Cutoff, CutoffStore, MemoryStore, Rotate, Rotation, Session, SessionStore, StoreError,
};
use tokio::sync::Semaphore;

pub type Gate = std::sync::Mutex<Option<Arc<Semaphore>>>;

/// A memory store with fault injection on every path the session code uses.
#[derive(Default)]
pub struct Probe {
    pub inner: MemoryStore,
    pub loads: AtomicUsize,
    pub session_loads: AtomicUsize,
    pub rotations: AtomicUsize,
    pub creates: AtomicUsize,
    /// Subject loads read, then wait here (an old answer on its way).
    pub load_gate: Gate,
    /// Session loads read, then wait here.
    pub session_gate: Gate,
    /// Rotations are applied, then their reply waits here.
    pub rotate_gate: Gate,
    /// Session creations are applied, then their reply waits here.
    pub create_gate: Gate,
    pub failing_sessions: AtomicBool,
    /// Session loads never answer.
    pub hanging_sessions: AtomicBool,
    pub hang_after_rotate: AtomicBool,
    /// The next session revocation (`revoke_session` or `revoke_sessions`)
    /// is applied, then its reply is lost: it never answers.
    pub lose_revoke_reply: AtomicBool,
}

pub fn hold(g: &Gate) -> Arc<Semaphore> {
    let s = Arc::new(Semaphore::new(0));
    *g.lock().unwrap() = Some(s.clone());
    s
}

pub fn release(g: &Gate) {
    if let Some(s) = g.lock().unwrap().take() {
        s.add_permits(1_000);
    }
}

pub async fn pass(g: &Gate) {
    let gate = g.lock().unwrap().clone();
    if let Some(gate) = gate {
        let _p = gate.acquire().await;
    }
}

impl CutoffStore for Probe {
    async fn load(&self, sub: &str) -> Result<Option<Cutoff>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let read = self.inner.load(sub).await;
        pass(&self.load_gate).await;
        read
    }
    async fn bump_version(&self, sub: &str) -> Result<Cutoff, StoreError> {
        self.inner.bump_version(sub).await
    }
    async fn revoke_before(&self, sub: &str, at: i64) -> Result<Cutoff, StoreError> {
        self.inner.revoke_before(sub, at).await
    }
    async fn load_global(&self) -> Result<i64, StoreError> {
        self.inner.load_global().await
    }
    async fn revoke_all_before(&self, at: i64) -> Result<i64, StoreError> {
        self.inner.revoke_all_before(at).await
    }
}

impl SessionStore for Probe {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        let r = self.inner.create_session(session).await;
        self.creates.fetch_add(1, Ordering::SeqCst);
        pass(&self.create_gate).await;
        r
    }
    async fn load_session(&self, sub: &str, sid: &str) -> Result<Option<Session>, StoreError> {
        self.session_loads.fetch_add(1, Ordering::SeqCst);
        if self.hanging_sessions.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.failing_sessions.load(Ordering::SeqCst) {
            return Err(StoreError::msg("injected outage"));
        }
        let read = self.inner.load_session(sub, sid).await;
        pass(&self.session_gate).await;
        read
    }
    async fn rotate_refresh(
        &self,
        sub: &str,
        sid: &str,
        rotate: Rotate,
    ) -> Result<Rotation, StoreError> {
        tokio::task::yield_now().await;
        let r = self.inner.rotate_refresh(sub, sid, rotate).await;
        self.rotations.fetch_add(1, Ordering::SeqCst);
        if self.hang_after_rotate.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        pass(&self.rotate_gate).await;
        r
    }
    async fn revoke_session(&self, sub: &str, sid: &str, at: i64) -> Result<bool, StoreError> {
        let r = self.inner.revoke_session(sub, sid, at).await;
        self.lost_revoke_reply().await;
        r
    }
    async fn revoke_sessions(&self, sub: &str, at: i64) -> Result<Vec<String>, StoreError> {
        let r = self.inner.revoke_sessions(sub, at).await;
        self.lost_revoke_reply().await;
        r
    }
    async fn list_sessions(&self, sub: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        self.inner.list_sessions(sub, now).await
    }
    async fn purge_sessions(&self, before: i64) -> Result<u64, StoreError> {
        self.inner.purge_sessions(before).await
    }
}

impl Probe {
    /// Never returns when a lost revocation reply was asked for (once).
    async fn lost_revoke_reply(&self) {
        if self.lose_revoke_reply.swap(false, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    }
}

/// The refresh-token secret of the session suites.
pub const REFRESH_SECRET: &[u8] = b"refresh-secret-refresh-secret-32";

/// The store of the session suites.
pub type Store = Arc<Probe>;

/// Sessions with the default settings.
pub fn config() -> jwt_revoke::SessionConfig {
    jwt_revoke::SessionConfig::new(jwt_revoke::RefreshKey::new(REFRESH_SECRET).unwrap())
}

/// A clock at `T0`, a probe holding `subjects`, and a builder with
/// sessions (`config`) over both.
pub fn builder(
    subjects: &[&str],
    config: jwt_revoke::SessionConfig,
) -> (
    jwt_revoke::FakeClock,
    Store,
    jwt_revoke::GuardBuilder<Store>,
) {
    let clock = jwt_revoke::FakeClock::new(super::fixture::T0);
    let store = Arc::new(Probe::default());
    for s in subjects {
        store.inner.insert(*s, Cutoff::default());
    }
    let b = jwt_revoke::Guard::builder(super::fixture::keys(), store.clone())
        .clock(clock.clone())
        .sessions(config);
    (clock, store, b)
}

/// [`builder`] with the default settings, built.
pub fn setup(subjects: &[&str]) -> (jwt_revoke::FakeClock, Store, jwt_revoke::Guard<Store>) {
    let (c, s, b) = builder(subjects, config());
    (c, s, b.build().unwrap())
}

/// Fails with `promise` unless `r` is `session_revoked`.
#[track_caller]
pub fn assert_session_revoked<T: std::fmt::Debug>(r: Result<T, jwt_revoke::Error>, promise: &str) {
    match r {
        Err(jwt_revoke::Error::SessionRevoked) => {}
        other => panic!("{promise}: expected session_revoked, got {other:?}"),
    }
}
