//! The behaviour every [`CutoffStore`](jwt_revoke::CutoffStore) must have.
//!
//! A backend's test file implements [`TestStore`] for its store and invokes
//! `store_conformance!(TheStore);` inside a module: the macro expands to one
//! `#[tokio::test]` per property below.

use jwt_revoke::{Cutoff, CutoffStore};

/// How the suite gets a store and adds a subject (a registered user) to it.
pub trait TestStore: CutoffStore + Sized {
    /// A store connected to the test backend. Stores may share state
    /// across tests (one server); the suite uses unique subject names.
    fn fresh() -> impl std::future::Future<Output = Self> + Send;
    /// Adds `sub` with `cutoff`, as the host does when a user registers.
    fn put(&self, sub: &str, cutoff: Cutoff) -> impl std::future::Future<Output = ()> + Send;
}

#[macro_export]
macro_rules! store_conformance {
    (@shared $store:ty) => {
        use jwt_revoke::{Cutoff, CutoffStore};
        use $crate::common::conformance::TestStore as _;
        use $crate::common::unique;

        async fn store() -> $store {
            <$store as $crate::common::conformance::TestStore>::fresh().await
        }

        #[tokio::test]
        async fn unknown_subject_loads_none() {
            let s = store().await;
            assert_eq!(s.load(&unique("nobody")).await.unwrap(), None);
        }

        #[tokio::test]
        async fn put_then_load_round_trips() {
            let s = store().await;
            let sub = unique("alice");
            s.put(&sub, Cutoff::new(7, 1_700_000_000)).await;
            assert_eq!(
                s.load(&sub).await.unwrap(),
                Some(Cutoff::new(7, 1_700_000_000))
            );
        }

        #[tokio::test]
        async fn bump_increments_by_one_and_returns_the_new_cutoff() {
            let s = store().await;
            let sub = unique("bob");
            s.put(&sub, Cutoff::new(0, 55)).await;
            for expected in 1..=3u64 {
                let c = s.bump_version(&sub).await.unwrap();
                assert_eq!(c, Cutoff::new(expected, 55));
            }
            assert_eq!(s.load(&sub).await.unwrap(), Some(Cutoff::new(3, 55)));
        }

        #[tokio::test]
        async fn revoke_before_sets_at_plus_one_and_never_moves_back() {
            let s = store().await;
            let sub = unique("carol");
            s.put(&sub, Cutoff::new(4, 0)).await;
            assert_eq!(
                s.revoke_before(&sub, 1_000).await.unwrap(),
                Cutoff::new(4, 1_001)
            );
            // An earlier `at` does not lower the cutoff.
            assert_eq!(
                s.revoke_before(&sub, 10).await.unwrap(),
                Cutoff::new(4, 1_001)
            );
            assert_eq!(s.load(&sub).await.unwrap(), Some(Cutoff::new(4, 1_001)));
            // Version untouched, and bump keeps not_before.
            assert_eq!(s.bump_version(&sub).await.unwrap(), Cutoff::new(5, 1_001));
        }

        #[tokio::test]
        async fn subjects_are_isolated() {
            let s = store().await;
            let a = unique("iso-a");
            let b = unique("iso-b");
            s.put(&a, Cutoff::default()).await;
            s.put(&b, Cutoff::default()).await;
            s.bump_version(&a).await.unwrap();
            s.revoke_before(&a, 500).await.unwrap();
            assert_eq!(s.load(&b).await.unwrap(), Some(Cutoff::default()));
            assert_eq!(s.load(&a).await.unwrap(), Some(Cutoff::new(1, 501)));
        }

        #[tokio::test]
        async fn odd_subject_names_round_trip() {
            let s = store().await;
            let base = unique("odd");
            for sub in [
                format!("{base}-'; DROP TABLE users; --"),
                format!("{base}-\u{1F600}-ünïcödé"),
                format!("{base}-\"quoted\"\\slash"),
                format!("{base}-{}", "x".repeat(1000)),
                format!("{base} with spaces:and:colons*?[]"),
            ] {
                assert_eq!(s.load(&sub).await.unwrap(), None, "{sub}");
                register(&s, &sub).await;
                assert_eq!(
                    s.bump_version(&sub).await.unwrap(),
                    Cutoff::new(1, 0),
                    "{sub}"
                );
                assert_eq!(
                    s.load(&sub).await.unwrap(),
                    Some(Cutoff::new(1, 0)),
                    "{sub}"
                );
            }
        }


        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_bumps_are_atomic() {
            let s = std::sync::Arc::new(store().await);
            let sub = unique("race");
            s.put(&sub, Cutoff::default()).await;
            let mut tasks = Vec::new();
            for _ in 0..50 {
                let s = s.clone();
                let sub = sub.clone();
                tasks.push(tokio::spawn(async move {
                    s.bump_version(&sub).await.unwrap().version
                }));
            }
            let mut seen = Vec::new();
            for t in tasks {
                seen.push(t.await.unwrap());
            }
            seen.sort_unstable();
            assert_eq!(
                seen,
                (1..=50).collect::<Vec<u64>>(),
                "every bump returns a distinct version"
            );
            assert_eq!(s.load(&sub).await.unwrap().unwrap().version, 50);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_revoke_before_keeps_the_maximum() {
            let s = std::sync::Arc::new(store().await);
            let sub = unique("race-nb");
            s.put(&sub, Cutoff::default()).await;
            let mut tasks = Vec::new();
            for at in (0..40i64).rev() {
                let s = s.clone();
                let sub = sub.clone();
                tasks.push(tokio::spawn(async move {
                    s.revoke_before(&sub, at * 100).await.unwrap()
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(s.load(&sub).await.unwrap(), Some(Cutoff::new(0, 3_901)));
        }

        #[tokio::test]
        async fn a_guard_on_this_store_revokes_old_tokens() {
            let s = store().await;
            let sub = unique("guard");
            s.put(&sub, Cutoff::default()).await;
            let keys = jwt_revoke::Keys::hmac(jwt_revoke::Algorithm::HS256, $crate::common::SECRET)
                .unwrap();
            let guard = jwt_revoke::Guard::builder(keys, s).build().unwrap();
            let old = guard.issue(&sub, &()).await.unwrap();
            assert!(guard.validate::<()>(&old).await.is_ok());
            guard.bump_version(&sub).await.unwrap();
            assert_eq!(
                guard.validate::<()>(&old).await.unwrap_err().code(),
                "token_revoked"
            );
            let new = guard.issue(&sub, &()).await.unwrap();
            assert_eq!(guard.validate::<()>(&new).await.unwrap().version(), Some(1));
        }

        #[tokio::test]
        async fn a_subject_with_a_nul_byte_is_unknown_and_cannot_be_written() {
            // A validly signed token can carry any string as `sub`; PostgreSQL
            // cannot hold a NUL byte in TEXT. Every store answers alike: such
            // a subject is unknown (401), never a store error (503), and
            // writing it is a clear error, not a half-written row.
            let s = store().await;
            let base = unique("nul");
            for sub in [
                format!("{base}\0"),
                format!("{base}\0tail"),
                format!("\0{base}"),
            ] {
                assert_eq!(s.load(&sub).await.unwrap(), None, "{sub:?}");
                assert!(s.bump_version(&sub).await.is_err(), "{sub:?}");
                assert!(s.revoke_before(&sub, 10).await.is_err(), "{sub:?}");
                assert_eq!(s.load(&sub).await.unwrap(), None, "{sub:?}");
            }
            // Nothing was written under the part before the NUL either.
            assert_eq!(s.load(&base).await.unwrap(), None);

            // Through a guard: a correctly signed token whose `sub` holds a
            // NUL is an unknown subject (401), not store_unavailable (503).
            let keys = jwt_revoke::Keys::hmac(jwt_revoke::Algorithm::HS256, $crate::common::SECRET)
                .unwrap();
            let guard = jwt_revoke::Guard::builder(keys, s).build().unwrap();
            let token = $crate::common::signed_token(&format!("{base}\0"), 0);
            let err = guard.validate::<()>(&token).await.unwrap_err();
            assert_eq!((err.code(), err.status()), ("unknown_subject", 401));
            assert!(guard.bump_version(&format!("{base}\0")).await.is_err());
        }

        #[tokio::test]
        async fn global_cutoff_is_monotone() {
            let s = store().await;
            // The global row may be shared with other tests: assert relative to it.
            let before = s.load_global().await.unwrap();
            let at = before.max(1_000_000) + 1_000;
            assert_eq!(s.revoke_all_before(at).await.unwrap(), at + 1);
            assert!(s.load_global().await.unwrap() > at);
            let lower = s.revoke_all_before(at - 500).await.unwrap();
            assert!(lower > at, "a lower `at` never lowers the global cutoff");
        }
    };
    // A store whose writes create the subjects they name (upsert), as every
    // cutoff-table store does.
    ($store:ty) => {
        $crate::store_conformance!(@shared $store);

        #[tokio::test]
        async fn bump_on_unknown_subject_creates_it() {
            let s = store().await;
            let sub = unique("new");
            assert_eq!(s.bump_version(&sub).await.unwrap(), Cutoff::new(1, 0));
            assert_eq!(s.load(&sub).await.unwrap(), Some(Cutoff::new(1, 0)));
        }

        #[tokio::test]
        async fn revoke_before_on_unknown_subject_creates_it() {
            let s = store().await;
            let sub = unique("lock");
            assert_eq!(
                s.revoke_before(&sub, 99).await.unwrap(),
                Cutoff::new(0, 100)
            );
            assert_eq!(s.load(&sub).await.unwrap(), Some(Cutoff::new(0, 100)));
        }

        /// Upsert stores create a subject on its first write.
        async fn register(_: &$store, _: &str) {}
    };
    // A store that holds only the subjects the host created (a users
    // table): writes of an unknown subject fail as unknown, and create
    // nothing.
    ($store:ty, existing_subjects_only) => {
        $crate::store_conformance!(@shared $store);

        #[tokio::test]
        async fn bump_on_unknown_subject_fails_as_unknown_and_creates_nothing() {
            let s = store().await;
            let sub = unique("new");
            let err = s.bump_version(&sub).await.unwrap_err();
            assert!(err.is_unknown_subject(), "{err}");
            assert_eq!(s.load(&sub).await.unwrap(), None);
        }

        #[tokio::test]
        async fn revoke_before_on_unknown_subject_fails_as_unknown_and_creates_nothing() {
            let s = store().await;
            let sub = unique("lock");
            let err = s.revoke_before(&sub, 99).await.unwrap_err();
            assert!(err.is_unknown_subject(), "{err}");
            assert_eq!(s.load(&sub).await.unwrap(), None);
        }

        #[tokio::test]
        async fn a_guard_answers_a_revocation_of_an_unknown_subject_as_unknown_not_503() {
            let s = store().await;
            let sub = unique("gone");
            let keys = jwt_revoke::Keys::hmac(jwt_revoke::Algorithm::HS256, $crate::common::SECRET)
                .unwrap();
            let guard = jwt_revoke::Guard::builder(keys, s).build().unwrap();
            for err in [
                guard.bump_version(&sub).await.unwrap_err(),
                guard.revoke_before(&sub, 1_000).await.unwrap_err(),
            ] {
                assert!(matches!(err, jwt_revoke::Error::UnknownSubject), "{err:?}");
                assert_eq!((err.code(), err.status()), ("unknown_subject", 401));
            }
            assert_eq!(guard.stats().store_errors, 0, "not counted as an outage");
            assert_eq!(guard.store().load(&sub).await.unwrap(), None);
        }

        /// A users table holds only the users the host created.
        async fn register(s: &$store, sub: &str) {
            s.put(sub, Cutoff::default()).await;
        }
    };
}
