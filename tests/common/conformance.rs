//! The behaviour every [`CutoffStore`](jwt_revoke::CutoffStore) must have.
//!
//! A backend's test file implements [`TestStore`] for its store and invokes
//! `store_conformance!(TheStore);` inside a module: the macro expands to one
//! `#[tokio::test]` per property below.

use jwt_revoke::{Cutoff, CutoffStore};

/// A `not_before` far ahead of any clock the suite runs under (2096), so
/// that values the tests write are above the "created after now" floor a
/// store puts on a new record, and come back as written.
pub const FAR: i64 = 4_000_000_000;

/// Now on the system clock (Unix seconds): the stores' clock in the suite
/// (a database's `now`, Redis's `TIME`, a memory store's system clock).
pub fn wall_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How the suite gets a store and adds a subject (a registered user) to it.
pub trait TestStore: CutoffStore + Sized {
    /// A store connected to the test backend. Stores may share state
    /// across tests (one server); the suite uses unique subject names.
    fn fresh() -> impl std::future::Future<Output = Self> + Send;
    /// Adds `sub` with `cutoff`, as the host does when a user registers.
    fn put(&self, sub: &str, cutoff: Cutoff) -> impl std::future::Future<Output = ()> + Send;
    /// Makes the store lose `sub`'s record behind its back, as a `DELETE`,
    /// an eviction or a deleted user would; `true` when it was there. Only
    /// the stores that create records (upsert) run the test that uses it.
    fn lose(&self, sub: &str) -> impl std::future::Future<Output = bool> + Send {
        let _ = sub;
        async { false }
    }
}

#[macro_export]
macro_rules! store_conformance {
    (@shared $store:ty) => {
        use jwt_revoke::{Cutoff, CutoffStore};
        use $crate::common::conformance::TestStore as _;
        use $crate::common::conformance::FAR;
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
            s.put(&sub, Cutoff::new(7, FAR)).await;
            assert_eq!(s.load(&sub).await.unwrap(), Some(Cutoff::new(7, FAR)));
        }

        #[tokio::test]
        async fn bump_increments_by_one_and_returns_the_new_cutoff() {
            let s = store().await;
            let sub = unique("bob");
            s.put(&sub, Cutoff::new(0, FAR + 55)).await;
            for expected in 1..=3u64 {
                let c = s.bump_version(&sub).await.unwrap();
                assert_eq!(c, Cutoff::new(expected, FAR + 55));
            }
            assert_eq!(s.load(&sub).await.unwrap(), Some(Cutoff::new(3, FAR + 55)));
        }

        #[tokio::test]
        async fn revoke_before_sets_at_plus_one_and_never_moves_back() {
            let s = store().await;
            let sub = unique("carol");
            s.put(&sub, Cutoff::new(4, 0)).await;
            assert_eq!(
                s.revoke_before(&sub, FAR + 1_000).await.unwrap(),
                Cutoff::new(4, FAR + 1_001)
            );
            // An earlier `at` does not lower the cutoff.
            assert_eq!(
                s.revoke_before(&sub, 10).await.unwrap(),
                Cutoff::new(4, FAR + 1_001)
            );
            assert_eq!(s.load(&sub).await.unwrap(), Some(Cutoff::new(4, FAR + 1_001)));
            // Version untouched, and bump keeps not_before.
            assert_eq!(s.bump_version(&sub).await.unwrap(), Cutoff::new(5, FAR + 1_001));
        }

        #[tokio::test]
        async fn subjects_are_isolated() {
            let s = store().await;
            let a = unique("iso-a");
            let b = unique("iso-b");
            s.put(&a, Cutoff::default()).await;
            s.put(&b, Cutoff::default()).await;
            let b0 = s.load(&b).await.unwrap();
            s.bump_version(&a).await.unwrap();
            s.revoke_before(&a, FAR + 500).await.unwrap();
            assert_eq!(s.load(&b).await.unwrap(), b0);
            assert_eq!(s.load(&a).await.unwrap(), Some(Cutoff::new(1, FAR + 501)));
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
                let bumped = s.bump_version(&sub).await.unwrap();
                assert_eq!(bumped.version, 1, "{sub}");
                assert_eq!(s.load(&sub).await.unwrap(), Some(bumped), "{sub}");
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
                    s.revoke_before(&sub, FAR + at * 100).await.unwrap()
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(s.load(&sub).await.unwrap(), Some(Cutoff::new(0, FAR + 3_901)));
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
            // The global row may be shared with other tests, which log in
            // now: assert relative to it, and never raise it past now.
            let before = s.load_global().await.unwrap();
            let lower = s.revoke_all_before(before - 500).await.unwrap();
            assert_eq!(lower, before, "a lower `at` never lowers the global cutoff");
            if before < $crate::common::conformance::wall_now() - 5 {
                let at = before + 1;
                assert_eq!(s.revoke_all_before(at).await.unwrap(), at + 1);
                assert!(s.load_global().await.unwrap() > at);
                let lower = s.revoke_all_before(at - 500).await.unwrap();
                assert!(lower > at, "a lower `at` never lowers the global cutoff");
            }
        }
    };
    // A store whose writes create the subjects they name (upsert), as every
    // cutoff-table store does.
    ($store:ty) => {
        $crate::store_conformance!(@shared $store);

        use $crate::common::conformance::wall_now;

        /// `c.not_before` is the creation floor of a record created
        /// between `before` and `after` (the store's clock, plus two).
        fn created_between(c: Cutoff, before: i64, after: i64) -> bool {
            (before + 2..=after + 2).contains(&c.not_before)
        }

        #[tokio::test]
        async fn bump_on_unknown_subject_creates_it_after_now() {
            let s = store().await;
            let sub = unique("new");
            let before = wall_now();
            let c = s.bump_version(&sub).await.unwrap();
            let after = wall_now();
            assert_eq!(c.version, 1);
            assert!(created_between(c, before, after), "{c:?} {before}..{after}");
            assert_eq!(s.load(&sub).await.unwrap(), Some(c));
        }

        #[tokio::test]
        async fn revoke_before_on_unknown_subject_creates_it_after_now() {
            let s = store().await;
            let sub = unique("lock");
            let before = wall_now();
            let c = s.revoke_before(&sub, 99).await.unwrap();
            let after = wall_now();
            assert_eq!(c.version, 0);
            assert!(created_between(c, before, after), "{c:?} {before}..{after}");
            assert_eq!(s.load(&sub).await.unwrap(), Some(c));
            // A lock in the future is kept as asked.
            let locked = unique("lock");
            assert_eq!(
                s.revoke_before(&locked, FAR).await.unwrap(),
                Cutoff::new(0, FAR + 1)
            );
        }

        #[tokio::test]
        async fn a_registration_starts_after_now() {
            let s = store().await;
            let sub = unique("signup");
            let before = wall_now();
            s.put(&sub, Cutoff::default()).await;
            let after = wall_now();
            let c = s.load(&sub).await.unwrap().unwrap();
            assert_eq!(c.version, 0);
            assert!(created_between(c, before, after), "{c:?} {before}..{after}");
        }

        /// A row that disappears (a deleted user created again, an SQL
        /// `DELETE`, a Redis key lost) comes back in a state that rejects
        /// every token issued before it came back, whatever its version:
        /// the version restarts, but `not_before` starts after now.
        #[tokio::test]
        async fn a_lost_row_never_brings_a_revoked_token_back() {
            let s = store().await;
            let sub = unique("lost");
            s.put(&sub, Cutoff::default()).await;
            for _ in 0..4 {
                s.bump_version(&sub).await.unwrap();
            }
            let keys = jwt_revoke::Keys::hmac(jwt_revoke::Algorithm::HS256, $crate::common::SECRET)
                .unwrap();
            let guard = jwt_revoke::Guard::builder(keys, s).build().unwrap();
            // Tokens of every version up to far beyond the current one,
            // issued now, by any instance with the key.
            let tokens: Vec<String> = [0u64, 1, 2, 3, 4, 5, 1_000]
                .iter()
                .map(|&ver| $crate::common::signed_token(&sub, ver))
                .collect();
            for recreate in ["bump_version", "revoke_before(0)", "registration"] {
                assert!(
                    <$store as $crate::common::conformance::TestStore>::lose(guard.store(), &sub).await,
                    "{recreate}: the row was there"
                );
                match recreate {
                    "bump_version" => drop(guard.bump_version(&sub).await.unwrap()),
                    "revoke_before(0)" => drop(guard.store().revoke_before(&sub, 0).await.unwrap()),
                    _ => guard.store().put(&sub, Cutoff::default()).await,
                }
                guard.clear_cache();
                for (i, t) in tokens.iter().enumerate() {
                    let err = guard.validate::<()>(t).await.unwrap_err();
                    assert_eq!(err.code(), "token_revoked", "{recreate}: token {i}");
                }
                // A login after it works.
                let fresh = guard.issue(&sub, &()).await.unwrap();
                guard.validate::<()>(&fresh).await.unwrap();
            }
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
