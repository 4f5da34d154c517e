//! The behaviour every [`SessionStore`](jwt_revoke::SessionStore) must
//! have: each rule of the trait's documentation, and its atomicity under
//! concurrent rotations and revocations.
//!
//! A backend's test file implements [`SessionTestStore`] for its store (on
//! top of [`TestStore`]) and invokes `session_conformance!(TheStore);`
//! inside a module: the macro expands to one `#[tokio::test]` per property.
//! Tests use unique subjects and session ids, so they can share one server.
//! Purging deletes by time across the whole store, so the purge test works
//! far in the past (negative timestamps, lower at every run) where no other
//! test writes.

use jwt_revoke::{Rotate, Session, SessionStore};

use super::conformance::TestStore;

/// A store under the session suite.
pub trait SessionTestStore: SessionStore + TestStore {
    /// The largest generation the store holds (SQL `BIGINT`: `i64::MAX`).
    const MAX_GENERATION: u64 = u64::MAX;
}

/// The time the tests start from (Unix seconds).
pub const T: i64 = 1_800_000_000;

/// The refresh lifetime the tests give sessions.
pub const TTL: i64 = 3_600;

/// A live session of `sub` created at `now`: generation 0, version 3,
/// expiring `TTL` later, with an id like the library's.
pub fn new_session(sub: &str, now: i64) -> Session {
    Session {
        id: super::session_id(),
        sub: sub.to_owned(),
        generation: 0,
        version: 3,
        created_at: now,
        last_used_at: now,
        expires_at: now + TTL,
        revoked_at: None,
        not_before_seen: now - 1,
    }
}

/// A rotation request for `generation` at `now`, without grace.
pub fn rotate(generation: u64, now: i64) -> Rotate {
    Rotate {
        generation,
        now,
        expires_at: now + TTL,
        grace: None,
    }
}

/// A rotation request for `generation` at `now` with `grace` seconds.
pub fn rotate_with_grace(generation: u64, now: i64, grace: i64) -> Rotate {
    Rotate {
        grace: Some(grace),
        ..rotate(generation, now)
    }
}

/// A timestamp below every earlier run's (microseconds since the epoch,
/// negated): where the purge test's sessions live.
pub fn past_base() -> i64 {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    -i64::try_from(micros).unwrap_or(i64::MAX) - 1_000
}

#[macro_export]
macro_rules! session_conformance {
    ($store:ty) => {
        use std::sync::Arc;

        use jwt_revoke::{Rotation, Session, SessionStore};
        use $crate::common::session_conformance::{
            SessionTestStore, T, TTL, new_session, past_base, rotate, rotate_with_grace,
        };
        use $crate::common::{session_id, unique};

        async fn store() -> $store {
            <$store as $crate::common::conformance::TestStore>::fresh().await
        }

        /// Creates `session` and returns it.
        async fn created(s: &$store, session: Session) -> Session {
            s.create_session(&session).await.unwrap();
            session
        }

        async fn load(s: &$store, session: &Session) -> Option<Session> {
            s.load_session(&session.sub, &session.id).await.unwrap()
        }

        #[tokio::test]
        async fn a_created_session_loads_as_written() {
            let s = store().await;
            let sub = unique("sess-rt");
            let live = created(&s, new_session(&sub, T)).await;
            assert_eq!(load(&s, &live).await, Some(live.clone()));
            // Every field round-trips, revoked_at and large counters too.
            let revoked = created(
                &s,
                Session {
                    generation: 41,
                    version: 1 << 40,
                    created_at: T - 5,
                    last_used_at: T - 2,
                    expires_at: T + 7,
                    revoked_at: Some(T - 1),
                    ..new_session(&sub, T)
                },
            )
            .await;
            assert_eq!(load(&s, &revoked).await, Some(revoked.clone()));
            assert_eq!(load(&s, &live).await, Some(live));
        }

        #[tokio::test]
        async fn creating_an_existing_id_is_an_error_and_changes_nothing() {
            let s = store().await;
            let first = created(&s, new_session(&unique("sess-dup"), T)).await;
            let again = Session {
                sub: unique("sess-dup-other"),
                generation: 9,
                ..first.clone()
            };
            assert!(s.create_session(&again).await.is_err());
            assert_eq!(load(&s, &first).await, Some(first.clone()));
            assert_eq!(s.load_session(&again.sub, &again.id).await.unwrap(), None);
        }

        #[tokio::test]
        async fn another_subjects_session_or_an_unknown_id_loads_none() {
            let s = store().await;
            let mine = created(&s, new_session(&unique("sess-a"), T)).await;
            let other = unique("sess-b");
            assert_eq!(s.load_session(&other, &mine.id).await.unwrap(), None);
            assert_eq!(
                s.load_session(&mine.sub, &session_id()).await.unwrap(),
                None
            );
        }

        #[tokio::test]
        async fn the_current_generation_rotates_by_one() {
            let s = store().await;
            let start = created(&s, new_session(&unique("sess-rot"), T)).await;
            let mut expected = start.clone();
            for (generation, now) in [(0u64, T + 10), (1, T + 20), (2, T + 20)] {
                let r = s
                    .rotate_refresh(&start.sub, &start.id, rotate(generation, now))
                    .await
                    .unwrap();
                expected.generation = generation + 1;
                expected.last_used_at = now;
                expected.expires_at = now + TTL;
                assert_eq!(
                    r,
                    Rotation::Rotated(expected.clone()),
                    "generation {generation}"
                );
                assert_eq!(load(&s, &start).await, Some(expected.clone()));
            }
            // What a rotation never touches.
            assert_eq!(expected.created_at, start.created_at);
            assert_eq!(expected.version, start.version);
        }

        #[tokio::test]
        async fn a_spent_generation_is_reuse_and_revokes_the_session() {
            let s = store().await;
            let start = created(&s, new_session(&unique("sess-reuse"), T)).await;
            let Rotation::Rotated(rotated) = s
                .rotate_refresh(&start.sub, &start.id, rotate(0, T + 10))
                .await
                .unwrap()
            else {
                panic!("the first rotation rotates");
            };
            // Generation 0 again: reuse. Only revoked_at changes.
            let reused = Session {
                revoked_at: Some(T + 30),
                ..rotated.clone()
            };
            assert_eq!(
                s.rotate_refresh(&start.sub, &start.id, rotate(0, T + 30))
                    .await
                    .unwrap(),
                Rotation::Reused(reused.clone())
            );
            assert_eq!(load(&s, &start).await, Some(reused.clone()));
            // From now on the session is revoked, for every generation, and
            // nothing changes any more.
            for generation in [0u64, 1, 2] {
                assert_eq!(
                    s.rotate_refresh(&start.sub, &start.id, rotate(generation, T + 40))
                        .await
                        .unwrap(),
                    Rotation::Revoked,
                    "generation {generation}"
                );
            }
            assert_eq!(load(&s, &start).await, Some(reused));
        }

        #[tokio::test]
        async fn a_generation_never_issued_is_reuse_too() {
            let s = store().await;
            let start = created(&s, new_session(&unique("sess-future"), T)).await;
            let r = s
                .rotate_refresh(&start.sub, &start.id, rotate(7, T + 1))
                .await
                .unwrap();
            let revoked = Session {
                revoked_at: Some(T + 1),
                ..start.clone()
            };
            assert_eq!(r, Rotation::Reused(revoked.clone()));
            assert_eq!(load(&s, &start).await, Some(revoked));
        }

        #[tokio::test]
        async fn an_expired_session_is_expired_and_unchanged() {
            let s = store().await;
            let start = created(&s, new_session(&unique("sess-exp"), T)).await;
            // expires_at <= now is expired: the boundary included, whatever
            // the generation (expiry is checked before reuse).
            for (generation, now) in [(0u64, T + TTL), (5, T + TTL), (0, T + TTL + 1)] {
                assert_eq!(
                    s.rotate_refresh(&start.sub, &start.id, rotate(generation, now))
                        .await
                        .unwrap(),
                    Rotation::Expired,
                    "generation {generation} at {now}"
                );
            }
            assert_eq!(load(&s, &start).await, Some(start.clone()));
            // One second earlier it still rotates.
            assert!(matches!(
                s.rotate_refresh(&start.sub, &start.id, rotate(0, T + TTL - 1))
                    .await
                    .unwrap(),
                Rotation::Rotated(_)
            ));
        }

        #[tokio::test]
        async fn a_revoked_session_is_revoked_even_when_expired() {
            let s = store().await;
            let sub = unique("sess-rev-exp");
            let gone = created(
                &s,
                Session {
                    revoked_at: Some(T + 1),
                    ..new_session(&sub, T)
                },
            )
            .await;
            assert_eq!(
                s.rotate_refresh(&sub, &gone.id, rotate(0, T + TTL + 50))
                    .await
                    .unwrap(),
                Rotation::Revoked
            );
            assert_eq!(load(&s, &gone).await, Some(gone));
        }

        #[tokio::test]
        async fn an_unknown_id_or_another_subject_is_unknown_and_unchanged() {
            let s = store().await;
            let mine = created(&s, new_session(&unique("sess-own"), T)).await;
            let other = unique("sess-thief");
            for generation in [0u64, 1] {
                assert_eq!(
                    s.rotate_refresh(&other, &mine.id, rotate(generation, T + 1))
                        .await
                        .unwrap(),
                    Rotation::Unknown
                );
            }
            assert_eq!(
                s.rotate_refresh(&mine.sub, &session_id(), rotate(0, T + 1))
                    .await
                    .unwrap(),
                Rotation::Unknown
            );
            assert_eq!(load(&s, &mine).await, Some(mine));
        }

        #[tokio::test]
        async fn the_previous_generation_rotates_within_the_grace_only() {
            let s = store().await;
            let sub = unique("sess-grace");
            // Rotated once at T + 10: generation 1, last used T + 10.
            let within = created(&s, new_session(&sub, T)).await;
            let outside = created(&s, new_session(&sub, T)).await;
            let without = created(&s, new_session(&sub, T)).await;
            for sess in [&within, &outside, &without] {
                assert!(matches!(
                    s.rotate_refresh(&sub, &sess.id, rotate(0, T + 10))
                        .await
                        .unwrap(),
                    Rotation::Rotated(_)
                ));
            }
            // last_used_at + grace >= now: the boundary rotates, skipping a
            // generation (1 -> 3: presented + 3).
            match s
                .rotate_refresh(&sub, &within.id, rotate_with_grace(0, T + 15, 5))
                .await
                .unwrap()
            {
                Rotation::Rotated(r) => {
                    assert_eq!(r.generation, 3);
                    assert_eq!(r.last_used_at, T + 15);
                    assert_eq!(r.expires_at, T + 15 + TTL);
                    assert_eq!(r.revoked_at, None);
                }
                other => panic!("within the grace: {other:?}"),
            }
            // The generation the grace bypassed (1) is two behind now: its
            // holder's refresh is reuse, grace or not. The grace never chains.
            assert!(matches!(
                s.rotate_refresh(&sub, &within.id, rotate_with_grace(1, T + 16, 60))
                    .await
                    .unwrap(),
                Rotation::Reused(_)
            ));
            // One second past the grace: reuse, revoked.
            match s
                .rotate_refresh(&sub, &outside.id, rotate_with_grace(0, T + 16, 5))
                .await
                .unwrap()
            {
                Rotation::Reused(r) => assert_eq!(r.revoked_at, Some(T + 16)),
                other => panic!("outside the grace: {other:?}"),
            }
            // No grace: the previous generation is reuse at once.
            assert!(matches!(
                s.rotate_refresh(&sub, &without.id, rotate(0, T + 10))
                    .await
                    .unwrap(),
                Rotation::Reused(_)
            ));
            for sess in [&within, &outside, &without] {
                assert!(load(&s, sess).await.unwrap().revoked_at.is_some());
            }
        }

        #[tokio::test]
        async fn the_current_generation_rotates_with_a_grace_set() {
            let s = store().await;
            let sess = created(&s, new_session(&unique("sess-grace-cur"), T)).await;
            for generation in 0..3u64 {
                match s
                    .rotate_refresh(
                        &sess.sub,
                        &sess.id,
                        rotate_with_grace(generation, T + 100, 5),
                    )
                    .await
                    .unwrap()
                {
                    Rotation::Rotated(r) => assert_eq!(r.generation, generation + 1),
                    other => panic!("generation {generation}: {other:?}"),
                }
            }
        }

        #[tokio::test]
        async fn generations_at_the_limit_are_handled_without_panic() {
            let max = <$store as SessionTestStore>::MAX_GENERATION;
            let s = store().await;
            let sub = unique("sess-max");
            // The last step up to the maximum rotates.
            let near = created(
                &s,
                Session {
                    generation: max - 1,
                    ..new_session(&sub, T)
                },
            )
            .await;
            match s
                .rotate_refresh(&sub, &near.id, rotate(max - 1, T + 1))
                .await
                .unwrap()
            {
                Rotation::Rotated(r) => assert_eq!(r.generation, max),
                other => panic!("to the maximum: {other:?}"),
            }
            // At the maximum it cannot move on: spent, the session revoked.
            match s
                .rotate_refresh(&sub, &near.id, rotate(max, T + 2))
                .await
                .unwrap()
            {
                Rotation::Reused(r) => {
                    assert_eq!(r.generation, max);
                    assert_eq!(r.revoked_at, Some(T + 2));
                }
                other => panic!("at the maximum: {other:?}"),
            }
            // The grace at the maximum: the previous generation cannot move
            // it on either.
            let at_max = created(
                &s,
                Session {
                    generation: max,
                    ..new_session(&sub, T)
                },
            )
            .await;
            assert!(matches!(
                s.rotate_refresh(&sub, &at_max.id, rotate_with_grace(max - 1, T + 1, 60))
                    .await
                    .unwrap(),
                Rotation::Reused(_)
            ));
            // Generations near u64::MAX presented to a young session (the
            // grace's `+ 1` would overflow): reuse, never a panic or error.
            for generation in [u64::MAX, u64::MAX - 1, i64::MAX as u64, i64::MAX as u64 + 1] {
                let young = created(&s, new_session(&sub, T)).await;
                assert!(
                    matches!(
                        s.rotate_refresh(&sub, &young.id, rotate_with_grace(generation, T + 1, 60))
                            .await
                            .unwrap(),
                        Rotation::Reused(_)
                    ),
                    "presented {generation}"
                );
            }
            // A store that cannot hold a generation refuses it on create.
            if max < u64::MAX {
                let huge = Session {
                    generation: max + 1,
                    ..new_session(&sub, T)
                };
                assert!(s.create_session(&huge).await.is_err());
                assert_eq!(load(&s, &huge).await, None);
            }
        }

        #[tokio::test]
        async fn revoke_session_revokes_once_and_only_the_subjects() {
            let s = store().await;
            let sess = created(&s, new_session(&unique("sess-revoke"), T)).await;
            let other = unique("sess-revoke-other");
            assert!(!s.revoke_session(&other, &sess.id, T + 1).await.unwrap());
            assert_eq!(load(&s, &sess).await, Some(sess.clone()));
            assert!(
                !s.revoke_session(&sess.sub, &session_id(), T + 1)
                    .await
                    .unwrap()
            );

            assert!(s.revoke_session(&sess.sub, &sess.id, T + 2).await.unwrap());
            let revoked = Session {
                revoked_at: Some(T + 2),
                ..sess.clone()
            };
            assert_eq!(load(&s, &sess).await, Some(revoked.clone()));
            // Again: false, and the first revocation time stays.
            assert!(!s.revoke_session(&sess.sub, &sess.id, T + 9).await.unwrap());
            assert_eq!(load(&s, &sess).await, Some(revoked));
            assert_eq!(
                s.rotate_refresh(&sess.sub, &sess.id, rotate(0, T + 10))
                    .await
                    .unwrap(),
                Rotation::Revoked
            );
        }

        #[tokio::test]
        async fn revoke_session_works_on_an_expired_session() {
            let s = store().await;
            let sess = created(&s, new_session(&unique("sess-revoke-exp"), T)).await;
            assert!(
                s.revoke_session(&sess.sub, &sess.id, T + TTL + 5)
                    .await
                    .unwrap()
            );
            assert_eq!(load(&s, &sess).await.unwrap().revoked_at, Some(T + TTL + 5));
        }

        #[tokio::test]
        async fn list_sessions_gives_the_active_ones_oldest_first() {
            let s = store().await;
            let sub = unique("sess-list");
            let now = T + 100;
            let newest = created(&s, new_session(&sub, T + 50)).await;
            let oldest = created(&s, new_session(&sub, T - 50)).await;
            // Same created_at: ordered by id.
            let mut twins = vec![
                created(&s, new_session(&sub, T)).await,
                created(&s, new_session(&sub, T)).await,
            ];
            twins.sort_by(|a, b| a.id.cmp(&b.id));
            let _revoked = created(
                &s,
                Session {
                    revoked_at: Some(T + 1),
                    ..new_session(&sub, T - 10)
                },
            )
            .await;
            let _expired = created(
                &s,
                Session {
                    expires_at: now,
                    ..new_session(&sub, T - 20)
                },
            )
            .await;
            let revoked_later = created(&s, new_session(&sub, T + 60)).await;
            assert!(
                s.revoke_session(&sub, &revoked_later.id, T + 61)
                    .await
                    .unwrap()
            );
            let _others = created(&s, new_session(&unique("sess-list-other"), T)).await;

            let listed = s.list_sessions(&sub, now).await.unwrap();
            let mut expected = vec![oldest];
            expected.extend(twins);
            expected.push(newest);
            assert_eq!(listed, expected);
            assert_eq!(
                s.list_sessions(&unique("sess-list-none"), now)
                    .await
                    .unwrap(),
                vec![]
            );
            // Later, the same sessions have expired.
            assert_eq!(s.list_sessions(&sub, T + 50 + TTL).await.unwrap(), vec![]);
        }

        #[tokio::test]
        async fn purge_deletes_exactly_the_sessions_expired_before() {
            let s = store().await;
            let sub = unique("sess-purge");
            let base = past_base();
            let at = |expires_at: i64, revoked_at: Option<i64>| Session {
                created_at: base - 100,
                last_used_at: base - 100,
                expires_at,
                revoked_at,
                ..new_session(&sub, base)
            };
            let purged = [
                created(&s, at(base - 10, None)).await,
                created(&s, at(base - 1, Some(base - 50))).await,
                created(&s, at(base - 1, None)).await,
            ];
            let kept = [
                created(&s, at(base, None)).await,
                created(&s, at(base, Some(base - 50))).await,
                created(&s, at(base + 1, None)).await,
            ];
            assert_eq!(s.purge_sessions(base).await.unwrap(), 3);
            for sess in &purged {
                assert_eq!(load(&s, sess).await, None);
            }
            for sess in &kept {
                assert_eq!(load(&s, sess).await.as_ref(), Some(sess));
            }
            // Nothing left below `base`; the kept ones still list.
            assert_eq!(s.purge_sessions(base).await.unwrap(), 0);
            let mut live = vec![kept[0].clone(), kept[2].clone()];
            live.sort_by(|a, b| a.id.cmp(&b.id));
            assert_eq!(s.list_sessions(&sub, base - 1).await.unwrap(), live);
            assert_eq!(s.purge_sessions(base + 2).await.unwrap(), 3);
            for sess in &kept {
                assert_eq!(load(&s, sess).await, None);
            }
            assert_eq!(s.list_sessions(&sub, base - 1).await.unwrap(), vec![]);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_rotations_of_one_generation_rotate_exactly_once() {
            let s = Arc::new(store().await);
            let sess = created(&s, new_session(&unique("sess-race"), T)).await;
            let barrier = Arc::new(tokio::sync::Barrier::new(50));
            let mut tasks = Vec::new();
            for _ in 0..50 {
                let (s, sess, barrier) = (s.clone(), sess.clone(), barrier.clone());
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    s.rotate_refresh(&sess.sub, &sess.id, rotate(0, T + 1))
                        .await
                        .unwrap()
                }));
            }
            let (mut rotated, mut reused, mut revoked) = (0, 0, 0);
            for t in tasks {
                match t.await.unwrap() {
                    Rotation::Rotated(r) => {
                        assert_eq!(r.generation, 1);
                        rotated += 1;
                    }
                    Rotation::Reused(r) => {
                        assert_eq!(r.revoked_at, Some(T + 1));
                        reused += 1;
                    }
                    Rotation::Revoked => revoked += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
            // One rotation, then the first loser finds a spent generation
            // and revokes; every later one finds the session revoked.
            assert_eq!((rotated, reused, revoked), (1, 1, 48));
            let end = load(&s, &sess).await.unwrap();
            assert_eq!(end.generation, 1);
            assert_eq!(end.revoked_at, Some(T + 1));
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_revocation_racing_a_rotation_always_sticks() {
            let s = Arc::new(store().await);
            let sub = unique("sess-race-revoke");
            for round in 0..20 {
                let sess = created(&s, new_session(&sub, T)).await;
                let (s1, s2) = (s.clone(), s.clone());
                let (sub1, sub2) = (sub.clone(), sub.clone());
                let (id1, id2) = (sess.id.clone(), sess.id.clone());
                let rotation = tokio::spawn(async move {
                    s1.rotate_refresh(&sub1, &id1, rotate(0, T + 1))
                        .await
                        .unwrap()
                });
                let revocation =
                    tokio::spawn(
                        async move { s2.revoke_session(&sub2, &id2, T + 1).await.unwrap() },
                    );
                let rotation = rotation.await.unwrap();
                assert!(
                    revocation.await.unwrap(),
                    "round {round}: the revocation revokes"
                );
                assert!(
                    matches!(rotation, Rotation::Rotated(_) | Rotation::Revoked),
                    "round {round}: {rotation:?}"
                );
                let end = load(&s, &sess).await.unwrap();
                assert_eq!(end.revoked_at, Some(T + 1), "round {round}");
                let expected = if matches!(rotation, Rotation::Rotated(_)) {
                    1
                } else {
                    0
                };
                assert_eq!(end.generation, expected, "round {round}");
            }
        }

        #[tokio::test]
        async fn a_subject_with_a_nul_byte_has_no_sessions() {
            let s = store().await;
            let sub = format!("{}\0x", unique("sess-nul"));
            let sess = new_session(&sub, T);
            assert!(s.create_session(&sess).await.is_err());
            assert_eq!(load(&s, &sess).await, None);
            assert_eq!(
                s.rotate_refresh(&sub, &sess.id, rotate(0, T + 1))
                    .await
                    .unwrap(),
                Rotation::Unknown
            );
            assert!(!s.revoke_session(&sub, &sess.id, T + 1).await.unwrap());
            assert_eq!(s.list_sessions(&sub, T).await.unwrap(), vec![]);
        }

        #[tokio::test]
        async fn odd_subject_names_keep_their_sessions_apart() {
            let s = store().await;
            let base = unique("sess-odd");
            let subs = [
                format!("{base}-'; DROP TABLE jwt_revoke_sessions; --"),
                format!("{base}-\u{1F600}-ünïcödé"),
                format!("{base}:session:*?[]"),
                format!("{base}-{}", "x".repeat(1000)),
            ];
            let mut all = Vec::new();
            for sub in &subs {
                all.push(created(&s, new_session(sub, T)).await);
            }
            for sess in &all {
                assert_eq!(
                    s.list_sessions(&sess.sub, T).await.unwrap(),
                    vec![sess.clone()]
                );
                assert!(matches!(
                    s.rotate_refresh(&sess.sub, &sess.id, rotate(0, T + 1))
                        .await
                        .unwrap(),
                    Rotation::Rotated(_)
                ));
            }
        }
    };
}
