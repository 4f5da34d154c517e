//! `DynStore` runs the store conformance suite (over a `MemoryStore`
//! reached only through the boxed, dyn-compatible path), and a guard over
//! it behaves like a guard over the concrete store.

mod common;

use std::sync::Arc;

use jwt_revoke::{Cutoff, CutoffStore, DynStore, MemoryStore, StoreError};

/// Every call goes through `DynStore`; `put` reaches the memory behind it.
struct Erased {
    store: DynStore,
    memory: Arc<MemoryStore>,
}

impl CutoffStore for Erased {
    async fn load(&self, sub: &str) -> Result<Option<Cutoff>, StoreError> {
        self.store.load(sub).await
    }
    async fn bump_version(&self, sub: &str) -> Result<Cutoff, StoreError> {
        self.store.bump_version(sub).await
    }
    async fn revoke_before(&self, sub: &str, at: i64) -> Result<Cutoff, StoreError> {
        self.store.revoke_before(sub, at).await
    }
    async fn load_global(&self) -> Result<i64, StoreError> {
        self.store.load_global().await
    }
    async fn revoke_all_before(&self, at: i64) -> Result<i64, StoreError> {
        self.store.revoke_all_before(at).await
    }
}

impl common::conformance::TestStore for Erased {
    async fn fresh() -> Self {
        let memory = Arc::new(MemoryStore::new());
        Erased {
            store: DynStore::new(memory.clone()),
            memory,
        }
    }
    async fn put(&self, sub: &str, cutoff: Cutoff) {
        self.memory.insert(sub, cutoff);
    }
    async fn lose(&self, sub: &str) -> bool {
        self.memory.remove(sub).is_some()
    }
}

mod conformance {
    crate::store_conformance!(super::Erased);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn one_state_type_holds_either_store() {
    use jwt_revoke::{Algorithm, Guard, Keys, SqliteStore};

    async fn round_trip(guard: &Guard<DynStore>) {
        let t = guard.issue("alice", &()).await.unwrap();
        guard.validate::<()>(&t).await.unwrap();
        guard.bump_version("alice").await.unwrap();
        assert_eq!(
            guard.validate::<()>(&t).await.unwrap_err().code(),
            "token_revoked"
        );
    }
    let keys = || Keys::hmac(Algorithm::HS256, common::SECRET).unwrap();
    let memory = MemoryStore::new();
    memory.insert("alice", Cutoff::default());
    let sqlite = SqliteStore::connect("sqlite::memory:").await.unwrap();
    sqlite.bump_version("alice").await.unwrap();
    let guards: Vec<Guard<DynStore>> = vec![
        Guard::builder(keys(), DynStore::new(memory))
            .build()
            .unwrap(),
        Guard::builder(keys(), DynStore::new(sqlite))
            .build()
            .unwrap(),
    ];
    for g in &guards {
        round_trip(g).await;
    }
}

#[tokio::test]
async fn sessions_work_through_a_dyn_store_built_with_them_and_fail_closed_without() {
    use jwt_revoke::{Algorithm, Error, FakeClock, Guard, Keys, RefreshKey, SessionConfig};
    let build = |store: DynStore| {
        Guard::builder(Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(), store)
            .clock(FakeClock::new(1_800_000_000))
            .sessions(SessionConfig::new(RefreshKey::new(common::SECRET).unwrap()))
            .build()
            .unwrap()
    };
    let memory = Arc::new(MemoryStore::new());
    memory.insert("alice", Cutoff::default());
    let guard = build(DynStore::with_sessions(memory.clone()));
    let s = guard.login("alice", &()).await.unwrap();
    guard.validate::<()>(&s.access_token).await.unwrap();
    let next = guard.refresh(&s.refresh_token, &()).await.unwrap();
    assert!(matches!(
        guard.refresh(&s.refresh_token, &()).await,
        Err(Error::RefreshReused)
    ));
    assert!(matches!(
        guard.validate::<()>(&next.access_token).await,
        Err(Error::SessionRevoked)
    ));

    // The same memory behind a DynStore without sessions: session tokens
    // are never accepted, logins fail as a store error.
    let blind = build(DynStore::new(memory));
    let other = guard.login("alice", &()).await.unwrap();
    assert!(matches!(
        blind.validate::<()>(&other.access_token).await,
        Err(Error::StoreUnavailable(_))
    ));
    assert!(matches!(
        blind.login("alice", &()).await,
        Err(Error::StoreUnavailable(_))
    ));
}
