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
