//! Shared test helpers: unique subject names and session ids, key
//! material, and the conformance suites every `CutoffStore` and
//! `SessionStore` runs.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

pub mod conformance;
pub mod events;
pub mod http_cases;
pub mod proxy;
pub mod redis_server;
pub mod repairable;
pub mod session_conformance;
pub mod session_probe;

/// A subject name unique to this process and call, so tests sharing one
/// database server never see each other's rows.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A new session id like the library makes them: 16 random bytes,
/// base64url without padding (22 characters).
pub fn session_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// A 32-byte HS256 test secret.
pub const SECRET: &[u8] = b"test-secret-test-secret-test-sec";

pub mod counting {
    //! A store wrapper that counts calls and can be told to fail or to hold
    //! loads until released: a fault injector around a real store.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use jwt_revoke::{Cutoff, CutoffStore, Rotate, Rotation, Session, SessionStore, StoreError};
    use tokio::sync::Semaphore;

    #[derive(Default)]
    pub struct Counting<S> {
        pub inner: S,
        pub loads: AtomicUsize,
        pub global_loads: AtomicUsize,
        pub failing: AtomicBool,
        /// When set, every `load` reads the store, then waits for a permit
        /// before returning what it read: a slow load holding old data.
        pub gate: std::sync::Mutex<Option<Arc<Semaphore>>>,
        /// When set, every `load_global` reads the store, then waits for a
        /// permit before returning what it read.
        pub global_gate: std::sync::Mutex<Option<Arc<Semaphore>>>,
        /// When set, the next write (bump, revoke_before, revoke_all_before)
        /// is applied in the store, then its reply waits for a permit: a
        /// slow reply that another revocation can overtake.
        pub write_gate: std::sync::Mutex<Option<Arc<Semaphore>>>,
        /// When set, every call waits forever: a store that hangs instead
        /// of failing.
        pub hanging: AtomicBool,
    }

    impl<S: CutoffStore> Counting<S> {
        pub fn new(inner: S) -> Self {
            Counting {
                inner,
                loads: AtomicUsize::new(0),
                global_loads: AtomicUsize::new(0),
                failing: AtomicBool::new(false),
                gate: std::sync::Mutex::new(None),
                global_gate: std::sync::Mutex::new(None),
                write_gate: std::sync::Mutex::new(None),
                hanging: AtomicBool::new(false),
            }
        }
        pub fn loads(&self) -> usize {
            self.loads.load(Ordering::SeqCst)
        }
        pub fn fail(&self, on: bool) {
            self.failing.store(on, Ordering::SeqCst);
        }
        /// Holds every later `load` until permits are added to the returned
        /// semaphore.
        pub fn hold_loads(&self) -> Arc<Semaphore> {
            let s = Arc::new(Semaphore::new(0));
            *self.gate.lock().unwrap() = Some(s.clone());
            s
        }
        pub fn release_loads(&self) {
            if let Some(s) = self.gate.lock().unwrap().take() {
                s.add_permits(Semaphore::MAX_PERMITS / 2);
            }
        }
        /// Holds every later `load_global` until permits are added.
        pub fn hold_global_loads(&self) -> Arc<Semaphore> {
            let s = Arc::new(Semaphore::new(0));
            *self.global_gate.lock().unwrap() = Some(s.clone());
            s
        }
        /// Holds the reply of the next write (already applied in the store)
        /// until a permit is added.
        pub fn hold_next_write_reply(&self) -> Arc<Semaphore> {
            let s = Arc::new(Semaphore::new(0));
            *self.write_gate.lock().unwrap() = Some(s.clone());
            s
        }
        pub fn hang(&self, on: bool) {
            self.hanging.store(on, Ordering::SeqCst);
        }
        async fn check(&self) -> Result<(), StoreError> {
            if self.hanging.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.failing.load(Ordering::SeqCst) {
                Err(StoreError::msg("injected outage"))
            } else {
                Ok(())
            }
        }
        async fn write_reply<T>(&self, reply: T) -> T {
            let gate = self.write_gate.lock().unwrap().take();
            if let Some(gate) = gate {
                let _permit = gate.acquire().await;
            }
            reply
        }
    }

    impl<S: CutoffStore> CutoffStore for Counting<S> {
        async fn load(&self, sub: &str) -> Result<Option<Cutoff>, StoreError> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            self.check().await?;
            let read = self.inner.load(sub).await;
            let gate = self.gate.lock().unwrap().clone();
            if let Some(gate) = gate {
                let _permit = gate.acquire().await.map_err(StoreError::new)?;
            }
            read
        }
        async fn bump_version(&self, sub: &str) -> Result<Cutoff, StoreError> {
            self.check().await?;
            let reply = self.inner.bump_version(sub).await;
            self.write_reply(reply).await
        }
        async fn revoke_before(&self, sub: &str, at: i64) -> Result<Cutoff, StoreError> {
            self.check().await?;
            let reply = self.inner.revoke_before(sub, at).await;
            self.write_reply(reply).await
        }
        async fn load_global(&self) -> Result<i64, StoreError> {
            self.global_loads.fetch_add(1, Ordering::SeqCst);
            self.check().await?;
            let read = self.inner.load_global().await;
            let gate = self.global_gate.lock().unwrap().clone();
            if let Some(gate) = gate {
                let _permit = gate.acquire().await.map_err(StoreError::new)?;
            }
            read
        }
        async fn revoke_all_before(&self, at: i64) -> Result<i64, StoreError> {
            self.check().await?;
            let reply = self.inner.revoke_all_before(at).await;
            self.write_reply(reply).await
        }
    }

    /// Sessions pass through (outages apply to them too).
    impl<S: SessionStore> SessionStore for Counting<S> {
        async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
            self.check().await?;
            self.inner.create_session(session).await
        }
        async fn load_session(&self, sub: &str, sid: &str) -> Result<Option<Session>, StoreError> {
            self.check().await?;
            self.inner.load_session(sub, sid).await
        }
        async fn rotate_refresh(
            &self,
            sub: &str,
            sid: &str,
            rotate: Rotate,
        ) -> Result<Rotation, StoreError> {
            self.check().await?;
            self.inner.rotate_refresh(sub, sid, rotate).await
        }
        async fn revoke_session(&self, sub: &str, sid: &str, at: i64) -> Result<bool, StoreError> {
            self.check().await?;
            self.inner.revoke_session(sub, sid, at).await
        }
        async fn revoke_sessions(&self, sub: &str, at: i64) -> Result<Vec<String>, StoreError> {
            self.check().await?;
            self.inner.revoke_sessions(sub, at).await
        }
        async fn list_sessions(&self, sub: &str, now: i64) -> Result<Vec<Session>, StoreError> {
            self.check().await?;
            self.inner.list_sessions(sub, now).await
        }
        async fn purge_sessions(&self, before: i64) -> Result<u64, StoreError> {
            self.check().await?;
            self.inner.purge_sessions(before).await
        }
    }
}

/// A server URL from the environment. Missing is a failure, not a skip: the
/// test command (`scripts/test.sh`) starts the servers and exports the URLs.
/// A `PostgresStore` in a schema of its own on the test server (the
/// shipped tables, the global cutoff included, shared with no other test).
#[cfg(feature = "postgres")]
pub async fn isolated_postgres() -> jwt_revoke::PostgresStore {
    use std::str::FromStr;
    let url = server_url("POSTGRES_URL");
    let schema = unique("jr").replace('-', "_");
    let admin = jwt_revoke::sqlx::PgPool::connect(&url).await.unwrap();
    jwt_revoke::sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let options = jwt_revoke::sqlx::postgres::PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let pool = jwt_revoke::sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .unwrap();
    let store = jwt_revoke::PostgresStore::new(pool);
    store.migrate().await.unwrap();
    store
}

pub fn server_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests through scripts/test.sh, or `eval \"$(bash scripts/services.sh start)\"` first")
    })
}

pub mod fixture {
    //! One guard over a `Counting<MemoryStore>` on a fake clock: the setup
    //! of the cache, ordering and race tests.

    use std::sync::Arc;

    use jwt_revoke::{Algorithm, Cutoff, FakeClock, Guard, GuardBuilder, Keys, MemoryStore};

    use super::counting::Counting;

    /// The fake clock's start (Unix seconds).
    pub const T0: i64 = 1_800_000_000;

    pub type Store = Arc<Counting<MemoryStore>>;

    /// HS256 keys over the test secret.
    pub fn keys() -> Keys {
        Keys::hmac(Algorithm::HS256, super::SECRET).unwrap()
    }

    /// Fails with `promise` unless `r` is a revocation for `reason`.
    #[track_caller]
    pub fn assert_revoked<T: std::fmt::Debug>(
        r: Result<T, jwt_revoke::Error>,
        reason: jwt_revoke::RevokedReason,
        promise: &str,
    ) {
        match r {
            Err(jwt_revoke::Error::Revoked(got)) => assert_eq!(got, reason, "{promise}"),
            other => panic!("{promise}: expected a revocation ({reason}), got {other:?}"),
        }
    }

    /// Yields until `cond` holds (bounded: a schedule that never gets
    /// there fails rather than hangs).
    pub async fn until(cond: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if cond() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("condition never reached");
    }

    /// A clock at `T0`, a store holding `subjects`, and a builder over both.
    pub fn setup(subjects: &[&str]) -> (FakeClock, Store, GuardBuilder<Store>) {
        let clock = FakeClock::new(T0);
        let store = Arc::new(Counting::new(MemoryStore::with_clock(
            jwt_revoke::FakeClock::new(0),
        )));
        for s in subjects {
            store.inner.insert(*s, Cutoff::default());
        }
        let b = Guard::builder(keys(), store.clone()).clock(clock.clone());
        (clock, store, b)
    }
}

/// An HS256 token over [`SECRET`] for `sub` with version `ver`, issued now
/// and valid for ten minutes, minted without a guard (for subjects no
/// guard would issue a token to).
pub fn signed_token(sub: &str, ver: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": sub, "iat": now, "exp": now + 600, "ver": ver}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}
