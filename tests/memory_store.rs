//! `MemoryStore` runs the store conformance suite.

mod common;

use jwt_revoke::{Cutoff, MemoryStore};

impl common::conformance::TestStore for MemoryStore {
    async fn fresh() -> Self {
        MemoryStore::new()
    }
    async fn put(&self, sub: &str, cutoff: Cutoff) {
        self.insert(sub, cutoff);
    }
    async fn lose(&self, sub: &str) -> bool {
        self.remove(sub).is_some()
    }
}

mod conformance {
    crate::store_conformance!(jwt_revoke::MemoryStore);
}

impl common::session_conformance::SessionTestStore for MemoryStore {}

mod session_conformance {
    crate::session_conformance!(jwt_revoke::MemoryStore);
}

#[tokio::test]
async fn insert_merges_by_maximum_and_remove_forgets() {
    use jwt_revoke::CutoffStore;
    let s = MemoryStore::new();
    // Far ahead of any clock: a new record's floor (now + 1) is below.
    const NB: i64 = 4_000_000_000;
    s.insert("a", Cutoff::new(5, NB + 100));
    s.insert("a", Cutoff::new(3, NB + 200));
    assert_eq!(s.load("a").await.unwrap(), Some(Cutoff::new(5, NB + 200)));
    assert_eq!(s.len(), 1);
    assert_eq!(s.remove("a"), Some(Cutoff::new(5, NB + 200)));
    assert_eq!(s.load("a").await.unwrap(), None);
    assert!(s.is_empty());
}
