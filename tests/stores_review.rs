//! Adversarial review of the session stores (SQLite, PostgreSQL, Redis)
//! against `SessionStore`'s contract and the memory reference
//! (`apply_rotation`), and of the users-table stores and
//! `Guard::apply_committed`. Each test is named after the promise it checks:
//! a failing test shows a broken promise, the others stay as regressions.
//!
//! Needs the servers of `scripts/services.sh` (`REDIS_URL`, `POSTGRES_URL`).
#![cfg(all(feature = "sqlite", feature = "postgres", feature = "redis"))]

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jwt_revoke::session::apply_rotation;
use jwt_revoke::sqlx;
use jwt_revoke::{
    Algorithm, Cutoff, CutoffStore, Error, FakeClock, Guard, Keys, MemoryStore, PostgresStore,
    PostgresUsersStore, RedisStore, Rotate, Rotation, Session, SessionStore, SqliteStore,
    SqliteUsersStore, StoreError, UserIds, UsersTable,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} not set: run scripts/services.sh start"))
}

fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// splitmix64: a deterministic generator, so a failing seed replays.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

fn norm<T: Debug>(r: &Result<T, StoreError>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(_) => "Err".to_owned(),
    }
}

async fn sqlite_file_store() -> SqliteStore {
    let path = format!("/tmp/jr-review2-{}.db", unique("sq"));
    SqliteStore::connect(&format!("sqlite://{path}"))
        .await
        .unwrap()
}

async fn pg() -> PostgresStore {
    PostgresStore::connect(&url("POSTGRES_URL")).await.unwrap()
}

/// A store on a database of its own on the test server: purges delete by
/// time across the whole table, so tests that purge, and tests that leave
/// sessions expiring at extreme times (which the conformance suite's purge
/// test would count), must not share one.
async fn pg_fresh() -> PostgresStore {
    let base = url("POSTGRES_URL");
    let name = unique("jr_review2").replace('-', "_");
    let admin = pg().await;
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(admin.pool())
        .await
        .unwrap();
    let (server, _) = base.rsplit_once('/').unwrap();
    PostgresStore::connect(&format!("{server}/{name}"))
        .await
        .unwrap()
}

async fn redis() -> RedisStore {
    RedisStore::builder(url("REDIS_URL"))
        .prefix(format!("{}:", unique("rv2")))
        .connect()
        .await
        .unwrap()
}

fn session(id: &str, sub: &str, generation: u64, last_used_at: i64, expires_at: i64) -> Session {
    Session {
        id: id.to_owned(),
        sub: sub.to_owned(),
        generation,
        version: 0,
        created_at: last_used_at,
        last_used_at,
        expires_at,
        revoked_at: None,
        not_before_seen: 0,
    }
}

// ---------------------------------------------------------------------------
// 1. Differential: one random operation sequence on MemoryStore and a real
//    store, in lockstep; every answer must be the same.
// ---------------------------------------------------------------------------

/// Runs `seeds` random sequences. `max_generation` is the largest
/// generation the store holds (SQL: `i64::MAX`, a documented difference):
/// the generator stays far below it.
async fn differential<S: SessionStore>(store: &S, name: &str, seeds: u64) {
    let run = unique(name);
    // Far below every other test's times, lower at every run, one region per
    // seed (a purge only ever reaches this seed's sessions).
    let base = -3 * micros() - 10_000_000;
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for seed in 0..seeds {
        let mem = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
        let mut rng = Rng(seed.wrapping_mul(0xA24B_AED4_963E_E407) ^ 0x5EED);
        let t0 = base - (seed as i64) * 1_000;
        let subs = [
            format!("{run}-{seed}-o'ne\"%_"),
            format!("{run}-{seed}-tw\\o é🎉 ;--"),
            format!("{run}-{seed}-{}", "long".repeat(100)),
        ];
        let sids: Vec<String> = ["s0", "s1%", "s2_", "s'3", "s 4:x"]
            .iter()
            .map(|s| format!("{run}-{seed}-{s}"))
            .collect();
        let mut log = Vec::new();
        for step in 0..40 {
            let now = t0 + rng.range(0, 60);
            let sid_i = rng.below(sids.len() as u64) as usize;
            let sid = &sids[sid_i];
            // Mostly the owner, sometimes another subject.
            let owner = sid_i % subs.len();
            let sub = if rng.below(6) == 0 {
                rng.pick(&subs).clone()
            } else {
                subs[owner].clone()
            };
            let current = mem
                .load_session(&subs[owner], sid)
                .await
                .unwrap()
                .map(|s| s.generation);
            let (op, a, b) = match rng.below(10) {
                0 | 1 => {
                    let s = Session {
                        id: sid.clone(),
                        sub: subs[owner].clone(),
                        generation: *rng.pick(&[0, 0, 0, 2, 1_000]),
                        version: rng.below(3),
                        created_at: now - rng.range(0, 5),
                        last_used_at: now - rng.range(0, 5),
                        expires_at: now + rng.range(-2, 10),
                        revoked_at: if rng.below(8) == 0 { Some(now) } else { None },
                        not_before_seen: now - rng.range(0, 5),
                    };
                    let op = format!("create {s:?}");
                    (
                        op,
                        norm(&mem.create_session(&s).await),
                        norm(&store.create_session(&s).await),
                    )
                }
                2..=5 => {
                    let presented = match current {
                        Some(g) => {
                            g.saturating_add_signed(*rng.pick(&[-3, -2, -1, -1, 0, 0, 0, 1]))
                        }
                        None => rng.below(3),
                    };
                    let r = Rotate {
                        generation: presented,
                        now,
                        expires_at: now + rng.range(-1, 8),
                        grace: *rng.pick(&[None, None, Some(0), Some(1), Some(3), Some(10)]),
                    };
                    let op = format!("rotate {sub:?} {sid:?} {r:?}");
                    (
                        op,
                        norm(&mem.rotate_refresh(&sub, sid, r).await),
                        norm(&store.rotate_refresh(&sub, sid, r).await),
                    )
                }
                6 => {
                    let op = format!("revoke {sub:?} {sid:?} {now}");
                    (
                        op,
                        norm(&mem.revoke_session(&sub, sid, now).await),
                        norm(&store.revoke_session(&sub, sid, now).await),
                    )
                }
                7 => {
                    let op = format!("load {sub:?} {sid:?}");
                    (
                        op,
                        norm(&mem.load_session(&sub, sid).await),
                        norm(&store.load_session(&sub, sid).await),
                    )
                }
                8 => {
                    let op = format!("list {sub:?} {now}");
                    (
                        op,
                        norm(&mem.list_sessions(&sub, now).await),
                        norm(&store.list_sessions(&sub, now).await),
                    )
                }
                _ => {
                    let before = t0 + rng.range(0, 70);
                    let op = format!("purge {before}");
                    (
                        op,
                        norm(&mem.purge_sessions(before).await),
                        norm(&store.purge_sessions(before).await),
                    )
                }
            };
            let kind = a.split(['(', ' ']).next().unwrap_or("").to_owned();
            *kinds
                .entry(format!("{} {kind}", &op[..op.find(' ').unwrap_or(0)]))
                .or_default() += 1;
            log.push(op.clone());
            assert_eq!(
                a,
                b,
                "{name}: seed {seed} step {step} differs from MemoryStore\nop: {op}\nhistory:\n{}",
                log.join("\n")
            );
        }
    }
    // The sequences reach every outcome of a rotation.
    for kind in ["Rotated", "Reused", "Revoked", "Expired", "Unknown"] {
        assert!(
            kinds.get(&format!("rotate {kind}")).copied().unwrap_or(0) > 0,
            "{name}: no {kind}: {kinds:?}"
        );
    }
    eprintln!("{name}: {kinds:?}");
}

#[tokio::test]
async fn differential_sqlite_matches_memory_store_on_random_sequences() {
    differential(
        &SqliteStore::connect("sqlite::memory:").await.unwrap(),
        "sqlite",
        300,
    )
    .await;
}

#[tokio::test]
async fn differential_postgres_matches_memory_store_on_random_sequences() {
    differential(&pg_fresh().await, "postgres", 300).await;
}

#[tokio::test]
async fn differential_redis_matches_memory_store_on_random_sequences() {
    differential(&redis().await, "redis", 300).await;
}

// ---------------------------------------------------------------------------
// 2. Boundary values: each store against the reference `apply_rotation`.
// ---------------------------------------------------------------------------

/// `(session before, rotation)` cases at the edges of the rules. Each store
/// must answer what `apply_rotation` answers on the same session (within
/// `max_generation`).
fn edge_cases(max_generation: u64) -> Vec<(Session, Rotate)> {
    const MAX: i64 = i64::MAX;
    const MIN: i64 = i64::MIN;
    let s = |g: u64, u: i64, e: i64| session("", "", g, u, e);
    let r = |g: u64, now: i64, e: i64, grace: Option<i64>| Rotate {
        generation: g,
        now,
        expires_at: e,
        grace,
    };
    let mut v = vec![
        // expires_at == now is expired (rule 3).
        (s(4, 100, 100), r(4, 100, 200, None)),
        (s(4, 100, 101), r(4, 100, 200, None)),
        // grace 0: last_used_at + 0 >= now only in the same second.
        (s(4, 100, 200), r(3, 100, 300, Some(0))),
        (s(4, 100, 200), r(3, 101, 300, Some(0))),
        // The grace's last second.
        (s(4, 100, 200), r(3, 105, 300, Some(5))),
        (s(4, 100, 200), r(3, 106, 300, Some(5))),
        // Two behind is reuse even within the grace.
        (s(4, 100, 200), r(2, 100, 300, Some(50))),
        // Ahead of the current generation is reuse.
        (s(4, 100, 200), r(5, 100, 300, Some(50))),
        // Extreme timestamps.
        (s(1, MIN, MAX), r(1, MIN, MIN, None)),
        (s(1, MAX, MAX), r(1, MAX - 1, MAX, Some(MAX))),
        (s(1, MIN, MAX), r(0, MAX - 1, MAX, Some(MAX))),
        (s(1, MIN, MAX), r(0, 0, MAX, Some(MAX))),
        (s(1, MAX, MAX), r(0, MIN, MAX, Some(MIN))),
        (s(1, 0, MAX), r(0, MAX - 1, MAX, Some(MIN))),
        (s(1, MAX, MAX), r(1, MAX, MAX, None)),
        // Huge grace, normal times.
        (s(1, 0, 10), r(0, 5, 10, Some(MAX))),
        // Generations near the store's maximum.
        (
            s(max_generation - 4, 0, 10),
            r(max_generation - 4, 5, 10, None),
        ),
        (
            s(max_generation - 3, 0, 10),
            r(max_generation - 4, 5, 10, Some(10)),
        ),
        (
            s(max_generation - 1, 0, 10),
            r(max_generation - 1, 5, 10, None),
        ),
        // A presented generation no store holds.
        (s(0, 0, 10), r(u64::MAX, 5, 10, Some(10))),
    ];
    // At the very top (the SQL stores stop at i64::MAX, a documented
    // difference from the memory store's u64::MAX): reuse, never a wrap.
    if max_generation == u64::MAX {
        v.push((s(u64::MAX, 0, 10), r(u64::MAX, 5, 10, None)));
        v.push((s(u64::MAX, 0, 10), r(u64::MAX - 1, 5, 10, Some(10))));
        v.push((s(u64::MAX - 1, 0, 10), r(u64::MAX - 2, 5, 10, Some(10))));
    }
    v
}

/// Negative grace (the trait takes any `i64`) at the top of the time range:
/// rule 5 says `last_used_at + g >= now`, i.e. `MAX - 2 >= MAX - 1`: false,
/// so presenting the previous generation is reuse.
fn negative_grace_case() -> (Session, Rotate) {
    (
        session("", "", 1, i64::MAX, i64::MAX),
        Rotate {
            generation: 0,
            now: i64::MAX - 1,
            expires_at: i64::MAX,
            grace: Some(-2),
        },
    )
}

async fn rotation_matches_reference<S: SessionStore>(
    store: &S,
    name: &str,
    cases: Vec<(Session, Rotate)>,
) {
    let sub = unique(&format!("{name}-edge"));
    let mut failures = Vec::new();
    for (i, (mut s, r)) in cases.into_iter().enumerate() {
        s.id = unique("edge");
        s.sub = sub.clone();
        store.create_session(&s).await.unwrap();
        let mut reference = s.clone();
        let want = apply_rotation(&mut reference, r);
        let got = store.rotate_refresh(&sub, &s.id, r).await;
        let after = store.load_session(&sub, &s.id).await;
        if norm(&got) != format!("{want:?}") || norm(&after) != format!("{:?}", Some(&reference)) {
            failures.push(format!(
                "case {i}: {s:?} {r:?}\n  want {want:?}\n  got  {}\n  after {}",
                norm(&got),
                norm(&after)
            ));
        }
    }
    assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn sqlite_rotation_matches_apply_rotation_at_the_boundaries() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    rotation_matches_reference(&store, "sqlite", edge_cases(i64::MAX as u64)).await;
}

#[tokio::test]
async fn postgres_rotation_matches_apply_rotation_at_the_boundaries() {
    rotation_matches_reference(&pg_fresh().await, "postgres", edge_cases(i64::MAX as u64)).await;
}

#[tokio::test]
async fn redis_rotation_matches_apply_rotation_at_the_boundaries() {
    rotation_matches_reference(&redis().await, "redis", edge_cases(u64::MAX)).await;
}

#[tokio::test]
async fn sqlite_negative_grace_at_the_end_of_time_is_reuse_as_rule_5_says() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    rotation_matches_reference(&store, "sqlite", vec![negative_grace_case()]).await;
}

#[tokio::test]
async fn postgres_negative_grace_at_the_end_of_time_is_reuse_as_rule_5_says() {
    rotation_matches_reference(&pg_fresh().await, "postgres", vec![negative_grace_case()]).await;
}

#[tokio::test]
async fn redis_negative_grace_at_the_end_of_time_is_reuse_as_rule_5_says() {
    rotation_matches_reference(&redis().await, "redis", vec![negative_grace_case()]).await;
}

/// The reference itself against rule 5 read literally (exact arithmetic):
/// `last_used_at + g >= now`.
#[test]
fn apply_rotation_grace_rule_5_is_exact_arithmetic() {
    let mut failures = Vec::new();
    let lus = [i64::MIN, i64::MIN + 1, -5, 0, 5, i64::MAX - 1, i64::MAX];
    let graces = [i64::MIN, -5, -1, 0, 1, 5, i64::MAX];
    let nows = [i64::MIN, i64::MIN + 1, -3, 0, 3, i64::MAX - 2, i64::MAX - 1];
    for &u in &lus {
        for &g in &graces {
            for &now in &nows {
                let mut s = session("x", "y", 1, u, i64::MAX);
                let r = Rotate {
                    generation: 0,
                    now,
                    expires_at: i64::MAX,
                    grace: Some(g),
                };
                // A negative grace is no grace (`Rotate::grace`).
                let exact = g >= 0 && i128::from(u) + i128::from(g) >= i128::from(now);
                let got = apply_rotation(&mut s, r);
                if matches!(got, Rotation::Rotated(_)) != exact {
                    failures.push(format!("last_used_at {u}, grace {g}, now {now}: {got:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// 3. Concurrency on real servers: rotations, revocations, loads and purges
//    at once.
// ---------------------------------------------------------------------------

#[derive(Debug, Default)]
struct History {
    rotated: Vec<(u64, u64)>, // (presented, new generation)
    reused: usize,
    revoked_answers: usize,
    revoke_true: usize,
    errors: Vec<String>,
}

async fn concurrent_invariants<S: SessionStore + Send + Sync + 'static>(
    store: Arc<S>,
    name: &str,
    grace: Option<i64>,
) {
    const SESSIONS: usize = 4;
    const TASKS: usize = 24;
    const EXPIRED: usize = 30;
    let sub = unique(&format!("{name}-conc"));
    let now = 1_900_000_000;
    let mut ids = Vec::new();
    for _ in 0..SESSIONS {
        let id = unique("conc");
        store
            .create_session(&session(&id, &sub, 0, now, now + 1_000_000))
            .await
            .unwrap();
        ids.push(id);
    }
    // Expired sessions of this test only, far in the past: concurrent purges
    // must delete each exactly once, and nothing else of this test.
    let past = -3 * micros() - 5_000_000_000;
    for i in 0..EXPIRED {
        let s = session(&unique("old"), &sub, 0, past - 10, past + i as i64);
        store.create_session(&s).await.unwrap();
    }
    let histories: Vec<Arc<std::sync::Mutex<History>>> =
        (0..SESSIONS).map(|_| Arc::default()).collect();
    let purged = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        let ids = ids.clone();
        let sub = sub.clone();
        let histories = histories.clone();
        let purged = purged.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(t as u64 + 77);
            // Each task watches one session: once it reads it revoked, it
            // must never read it live again.
            let mut seen_revoked = vec![false; ids.len()];
            for _ in 0..30 {
                let i = rng.below(ids.len() as u64) as usize;
                let id = &ids[i];
                let h = &histories[i];
                match rng.below(12) {
                    0 => match store.revoke_session(&sub, id, now + 1).await {
                        Ok(true) => h.lock().unwrap().revoke_true += 1,
                        Ok(false) => {}
                        Err(e) => h.lock().unwrap().errors.push(format!("revoke: {e}")),
                    },
                    1 => match store.purge_sessions(past + EXPIRED as i64 + 1).await {
                        Ok(n) => {
                            purged.fetch_add(n, Ordering::SeqCst);
                        }
                        Err(e) => h.lock().unwrap().errors.push(format!("purge: {e}")),
                    },
                    _ => {
                        // Read the current generation, then present it (or,
                        // sometimes, the one before): racing readers.
                        let loaded = match store.load_session(&sub, id).await {
                            Ok(Some(s)) => s,
                            Ok(None) => {
                                h.lock().unwrap().errors.push("session vanished".into());
                                continue;
                            }
                            Err(e) => {
                                h.lock().unwrap().errors.push(format!("load: {e}"));
                                continue;
                            }
                        };
                        if loaded.revoked_at.is_some() {
                            seen_revoked[i] = true;
                        } else if seen_revoked[i] {
                            h.lock()
                                .unwrap()
                                .errors
                                .push("a revoked session read live again".into());
                        }
                        let presented = if rng.below(8) == 0 {
                            loaded.generation.saturating_sub(1)
                        } else {
                            loaded.generation
                        };
                        let r = Rotate {
                            generation: presented,
                            now: now + 2,
                            expires_at: now + 1_000_000,
                            grace,
                        };
                        match store.rotate_refresh(&sub, id, r).await {
                            Ok(Rotation::Rotated(s)) => {
                                if seen_revoked[i] {
                                    h.lock()
                                        .unwrap()
                                        .errors
                                        .push("rotated after read revoked".into());
                                }
                                h.lock().unwrap().rotated.push((presented, s.generation));
                            }
                            Ok(Rotation::Reused(s)) => {
                                assert!(s.revoked_at.is_some());
                                seen_revoked[i] = true;
                                h.lock().unwrap().reused += 1;
                            }
                            Ok(Rotation::Revoked) => {
                                seen_revoked[i] = true;
                                h.lock().unwrap().revoked_answers += 1;
                            }
                            Ok(other) => {
                                h.lock().unwrap().errors.push(format!("rotate: {other:?}"))
                            }
                            Err(e) => h.lock().unwrap().errors.push(format!("rotate: {e}")),
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // One more purge: every expired session of this test is gone, counted once.
    purged.fetch_add(
        store
            .purge_sessions(past + EXPIRED as i64 + 1)
            .await
            .unwrap(),
        Ordering::SeqCst,
    );
    let mut problems = Vec::new();
    if purged.load(Ordering::SeqCst) != EXPIRED as u64 {
        problems.push(format!(
            "concurrent purges deleted {} sessions, not {EXPIRED}",
            purged.load(Ordering::SeqCst)
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        let fin = store
            .load_session(&sub, id)
            .await
            .unwrap()
            .expect("live session purged");
        let h = std::mem::take(&mut *histories[i].lock().unwrap());
        let mut new_gens: Vec<u64> = h.rotated.iter().map(|&(_, g)| g).collect();
        new_gens.sort_unstable();
        let distinct = {
            let mut d = new_gens.clone();
            d.dedup();
            d.len() == new_gens.len()
        };
        if !distinct {
            problems.push(format!(
                "session {i}: two rotations to one generation: {:?}",
                h.rotated
            ));
        }
        // Each presented generation rotates at most once (grace aside: it
        // lets the previous one rotate once more).
        let mut by_presented: HashMap<u64, usize> = HashMap::new();
        for &(p, _) in &h.rotated {
            *by_presented.entry(p).or_default() += 1;
        }
        let limit = if grace.is_some() { 2 } else { 1 };
        if by_presented.values().any(|&n| n > limit) {
            problems.push(format!(
                "session {i}: a generation rotated too often: {:?}",
                h.rotated
            ));
        }
        for &(p, g) in &h.rotated {
            let ok = g == p + 1 || (grace.is_some() && g == p + 3);
            if !ok {
                problems.push(format!("session {i}: rotation {p} -> {g}"));
            }
        }
        let max_gen = new_gens.last().copied().unwrap_or(0);
        if fin.generation != max_gen {
            problems.push(format!(
                "session {i}: final generation {} but the last rotation answered {max_gen}",
                fin.generation
            ));
        }
        if grace.is_none() && fin.generation != h.rotated.len() as u64 {
            problems.push(format!(
                "session {i}: {} rotations answered but generation is {}",
                h.rotated.len(),
                fin.generation
            ));
        }
        // Exactly one call moves a session from live to revoked.
        let transitions = h.revoke_true + h.reused;
        let revoked = fin.revoked_at.is_some();
        if transitions != usize::from(revoked) {
            problems.push(format!(
                "session {i}: {} revoke_session true + {} reuse, final revoked = {revoked}",
                h.revoke_true, h.reused
            ));
        }
        if !revoked && (h.revoked_answers > 0) {
            problems.push(format!("session {i}: answered Revoked but is live"));
        }
        if revoked {
            // A revoked session never rotates again.
            let r = Rotate {
                generation: fin.generation,
                now: now + 3,
                expires_at: now + 10,
                grace,
            };
            let again = store.rotate_refresh(&sub, id, r).await.unwrap();
            if again != Rotation::Revoked {
                problems.push(format!("session {i}: revoked session rotated: {again:?}"));
            }
        }
        for e in &h.errors {
            problems.push(format!("session {i}: {e}"));
        }
    }
    assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_concurrent_rotations_revocations_and_purges_keep_every_invariant() {
    concurrent_invariants(Arc::new(sqlite_file_store().await), "sqlite", None).await;
    concurrent_invariants(
        Arc::new(sqlite_file_store().await),
        "sqlite-grace",
        Some(30),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_rotations_revocations_and_purges_keep_every_invariant() {
    concurrent_invariants(Arc::new(pg_fresh().await), "postgres", None).await;
    concurrent_invariants(Arc::new(pg_fresh().await), "postgres-grace", Some(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_concurrent_rotations_revocations_and_purges_keep_every_invariant() {
    concurrent_invariants(Arc::new(redis().await), "redis", None).await;
    concurrent_invariants(Arc::new(redis().await), "redis-grace", Some(30)).await;
}

// ---------------------------------------------------------------------------
// 4. Corrupt rows fail closed.
// ---------------------------------------------------------------------------

/// SQLite stores any value in any column, and `CHECK (x >= 0)` lets text
/// through (text sorts above every integer). `load_session` refuses a
/// session whose `expires_at` (or `last_used_at`) is not an integer; the
/// rotation must too (fail closed: an error), not treat the text as "later
/// than now", rotate the session and overwrite the bad value.
#[tokio::test]
async fn sqlite_a_session_with_a_non_integer_time_fails_closed_on_rotation_too() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    let sub = "alice";
    let mut problems = Vec::new();
    for (column, value, presented, grace) in [
        ("expires_at", "'never'", 0u64, None),
        ("expires_at", "1e300", 0, None),
        ("expires_at", "x'00'", 0, None),
        ("last_used_at", "'soon'", 0, Some(5)), // grace on the previous generation
    ] {
        let id = unique("corrupt");
        // Expired at 10 and last used long ago: no rule lets it rotate at 1000.
        // Expired at 10, or (for the grace case) generation 1 last used at
        // 0: at 1000, no rule lets generation 0 rotate.
        let s = if column == "last_used_at" {
            session(&id, sub, 1, 0, 1_000_000)
        } else {
            session(&id, sub, 0, 0, 10)
        };
        store.create_session(&s).await.unwrap();
        sqlx::query(&format!(
            "UPDATE jwt_revoke_sessions SET {column} = {value} WHERE id = ?1"
        ))
        .bind(&id)
        .execute(store.pool())
        .await
        .unwrap();
        let load = store.load_session(sub, &id).await;
        let r = Rotate {
            generation: presented,
            now: 1_000,
            expires_at: 2_000,
            grace,
        };
        let rotated = store.rotate_refresh(sub, &id, r).await;
        if load.is_ok() || matches!(rotated, Ok(Rotation::Rotated(_))) {
            problems.push(format!(
                "{column} = {value}: load_session {}, rotate_refresh {}",
                norm(&load),
                norm(&rotated)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Corrupt Redis session hashes: an error on every read and every write,
/// and the hash is left exactly as it was.
#[tokio::test]
async fn redis_corrupt_session_hashes_fail_closed_and_are_not_overwritten() {
    use jwt_revoke::redis::AsyncCommands;
    let prefix = format!("{}:", unique("rv2c"));
    let store = RedisStore::builder(url("REDIS_URL"))
        .prefix(prefix.clone())
        .connect()
        .await
        .unwrap();
    let client = jwt_revoke::redis::Client::open(url("REDIS_URL")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let sub = "alice";
    let mut problems = Vec::new();
    for (field, value) in [
        ("g", "18446744073709551616"),
        ("g", "-1"),
        ("g", "01"),
        ("r", "-0"),
        ("r", " 5"),
        ("e", "1.5"),
        ("u", ""),
        ("v", "+3"),
    ] {
        let id = unique("bad");
        store
            .create_session(&session(&id, sub, 0, 100, 1_000_000))
            .await
            .unwrap();
        let key = format!("{prefix}session:{id}");
        let _: () = conn.hset(&key, field, value).await.unwrap();
        let before: HashMap<String, String> = conn.hgetall(&key).await.unwrap();
        let load = store.load_session(sub, &id).await;
        let rot = store
            .rotate_refresh(
                sub,
                &id,
                Rotate {
                    generation: 0,
                    now: 200,
                    expires_at: 300,
                    grace: Some(5),
                },
            )
            .await;
        let rev = store.revoke_session(sub, &id, 200).await;
        let list = store.list_sessions(sub, 200).await;
        let after: HashMap<String, String> = conn.hgetall(&key).await.unwrap();
        if load.is_ok() || rot.is_ok() || rev.is_ok() || list.is_ok() || before != after {
            problems.push(format!(
                "{field} = {value:?}: load {}, rotate {}, revoke {}, list {}, changed {}",
                norm(&load),
                norm(&rot),
                norm(&rev),
                norm(&list),
                before != after
            ));
        }
        let _: () = conn.del(&key).await.unwrap();
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every key a `RedisStore` writes starts with its prefix (a private Redis
/// database, so nothing else writes there), whatever the subject and session
/// ids hold.
#[tokio::test]
async fn redis_every_key_written_stays_inside_the_prefix() {
    let db_url = format!("{}9", url("REDIS_URL"));
    let client = jwt_revoke::redis::Client::open(db_url.clone()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = jwt_revoke::redis::cmd("FLUSHDB")
        .query_async(&mut conn)
        .await
        .unwrap();
    let prefix = "app:";
    let store = RedisStore::builder(db_url)
        .prefix(prefix)
        .connect()
        .await
        .unwrap();
    let hostile = [
        "*",
        "../x",
        "{tag}",
        "a:b",
        " ",
        "session:x",
        "sessions:y",
        "\u{7f}\u{1b}[2J",
        "%_'\"",
    ];
    for (i, sub) in hostile.iter().enumerate() {
        store.bump_version(sub).await.unwrap();
        store.revoke_before(sub, 5).await.unwrap();
        let sid = format!("{}{i}", hostile[(i + 3) % hostile.len()]);
        store
            .create_session(&session(&sid, sub, 0, -50, -40))
            .await
            .unwrap();
        store
            .rotate_refresh(
                sub,
                &sid,
                Rotate {
                    generation: 0,
                    now: -45,
                    expires_at: -30,
                    grace: None,
                },
            )
            .await
            .unwrap();
        store.list_sessions(sub, -45).await.unwrap();
        store.revoke_session(sub, &sid, -44).await.unwrap();
    }
    store.revoke_all_before(7).await.unwrap();
    store.purge_sessions(0).await.unwrap();
    let keys: Vec<String> = jwt_revoke::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let outside: Vec<_> = keys.iter().filter(|k| !k.starts_with(prefix)).collect();
    assert!(outside.is_empty(), "keys outside {prefix:?}: {outside:?}");
    // Purged sessions leave nothing behind in the listing sets.
    for sub in hostile {
        assert!(store.list_sessions(sub, -1_000).await.unwrap().is_empty());
    }
}

// ---------------------------------------------------------------------------
// 5. Odd ids and subjects.
// ---------------------------------------------------------------------------

/// A session id no store can hold (a NUL byte) is refused alike by every
/// store: `create_session` is an error, `load_session` finds nothing.
#[tokio::test]
async fn every_store_refuses_a_session_id_with_a_nul_byte_alike() {
    let id = format!("{}\0tail", unique("nul"));
    let s = session(&id, "alice", 0, 0, i64::MAX);
    let memory = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
    let sqlite = SqliteStore::connect("sqlite::memory:").await.unwrap();
    let (pg, redis) = (pg().await, redis().await);
    let answers = [
        (
            "memory",
            norm(&memory.create_session(&s).await),
            norm(&memory.load_session("alice", &id).await),
        ),
        (
            "sqlite",
            norm(&sqlite.create_session(&s).await),
            norm(&sqlite.load_session("alice", &id).await),
        ),
        (
            "postgres",
            norm(&pg.create_session(&s).await),
            norm(&pg.load_session("alice", &id).await),
        ),
        (
            "redis",
            norm(&redis.create_session(&s).await),
            norm(&redis.load_session("alice", &id).await),
        ),
    ];
    let differ: Vec<_> = answers
        .iter()
        .filter(|a| a.1 != "Err" || a.2 != "None")
        .collect();
    assert!(differ.is_empty(), "stores answer differently: {differ:?}");
}

/// LIKE metacharacters and quotes in ids are compared exactly: `%` never
/// matches another session.
#[tokio::test]
async fn wildcards_and_quotes_in_ids_match_only_themselves() {
    async fn check<S: SessionStore>(store: &S, name: &str) {
        let sub = unique(&format!("{name}-wild"));
        let base = unique("w");
        let real = format!("{base}abc");
        store
            .create_session(&session(&real, &sub, 0, 0, i64::MAX))
            .await
            .unwrap();
        for probe in [
            format!("{base}%"),
            format!("{base}ab_"),
            format!("{base}ABC"),
            format!("{base}abc "),
        ] {
            assert_eq!(
                store.load_session(&sub, &probe).await.unwrap(),
                None,
                "{name} {probe}"
            );
            assert_eq!(
                store
                    .rotate_refresh(
                        &sub,
                        &probe,
                        Rotate {
                            generation: 0,
                            now: 1,
                            expires_at: 2,
                            grace: None
                        }
                    )
                    .await
                    .unwrap(),
                Rotation::Unknown,
                "{name} {probe}"
            );
            assert!(
                !store.revoke_session(&sub, &probe, 1).await.unwrap(),
                "{name} {probe}"
            );
        }
        for probe in [
            "%".to_owned(),
            "_".to_owned(),
            sub.to_uppercase(),
            format!("{sub} "),
        ] {
            assert!(
                store.list_sessions(&probe, 0).await.unwrap().is_empty(),
                "{name} {probe}"
            );
        }
        assert_eq!(store.list_sessions(&sub, 0).await.unwrap().len(), 1);
    }
    check(
        &SqliteStore::connect("sqlite::memory:").await.unwrap(),
        "sqlite",
    )
    .await;
    check(&pg().await, "postgres").await;
    check(&redis().await, "redis").await;
}

// ---------------------------------------------------------------------------
// 6. Users-table stores and apply_committed.
// ---------------------------------------------------------------------------

const SECRET: &[u8] = b"test-secret-test-secret-test-sec";
const NOW: i64 = 1_800_000_000;

fn guard<S: CutoffStore>(store: S) -> (FakeClock, Guard<S>) {
    let clock = FakeClock::new(NOW);
    let guard = Guard::builder(Keys::hmac(Algorithm::HS256, SECRET).unwrap(), store)
        .clock(clock.clone())
        .max_future_cutoff(Duration::from_secs(3_600))
        .build()
        .unwrap();
    (clock, guard)
}

async fn sqlite_users(ddl: &str, ids: UserIds) -> SqliteUsersStore {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    sqlx::raw_sql(ddl).execute(&pool).await.unwrap();
    SqliteUsersStore::new(pool, UsersTable::new("users").unwrap().ids(ids))
}

/// README "Ids compare exactly": "Anything else is an unknown subject." On
/// SQLite, the default `UserIds::Text` on an `INTEGER PRIMARY KEY` id
/// column lets SQLite's type affinity convert `"042"`, `" 42"` or `"4.2e1"`
/// to 42: every spelling names user 42 (each with its own cache entry, so a
/// revocation through one misses the others). PostgreSQL refuses the same
/// configuration loudly (`bigint = text`), SQLite accepts it silently.
#[tokio::test]
async fn sqlite_users_default_text_ids_on_an_integer_column_still_compare_exactly() {
    let store = sqlite_users(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, token_version INTEGER NOT NULL DEFAULT 0, \
           tokens_not_before INTEGER NOT NULL DEFAULT 0); INSERT INTO users (id) VALUES (42);",
        UserIds::Text,
    )
    .await;
    assert_eq!(store.load("42").await.unwrap(), Some(Cutoff::default()));
    let mut found = Vec::new();
    for other in ["042", " 42", "42.0", "4.2e1", "+42"] {
        if !matches!(store.load(other).await, Ok(None)) {
            found.push(other);
        }
    }
    assert!(found.is_empty(), "these spellings name user 42: {found:?}");
}

/// Integer ids: only the canonical decimal names the user, on both
/// databases (`"042"` is unknown, never user 42), and a write through a
/// non-canonical spelling is an unknown subject that creates nothing.
#[tokio::test]
async fn integer_ids_only_the_canonical_decimal_names_the_user() {
    let sqlite = sqlite_users(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, token_version INTEGER NOT NULL DEFAULT 0, \
           tokens_not_before INTEGER NOT NULL DEFAULT 0); INSERT INTO users (id) VALUES (42), (-7);",
        UserIds::Integer,
    )
    .await;
    let pool = pg().await.pool().clone();
    let table = unique("users_int").replace('-', "_");
    sqlx::raw_sql(&format!(
        "CREATE TABLE {table} (id BIGINT PRIMARY KEY, token_version BIGINT NOT NULL DEFAULT 0, \
           tokens_not_before BIGINT NOT NULL DEFAULT 0); INSERT INTO {table} (id) VALUES (42), (-7);"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let pgs = PostgresUsersStore::new(pool, UsersTable::new(&table).unwrap().ids(UserIds::Integer));
    async fn check<S: CutoffStore>(s: &S, name: &str) {
        assert_eq!(
            s.load("42").await.unwrap(),
            Some(Cutoff::default()),
            "{name}"
        );
        assert_eq!(
            s.load("-7").await.unwrap(),
            Some(Cutoff::default()),
            "{name}"
        );
        for other in [
            "042", "+42", " 42", "42 ", "42.0", "4.2e1", "-07", "-0", "0x2a", "٤٢",
        ] {
            assert_eq!(s.load(other).await.unwrap(), None, "{name} {other:?}");
            assert!(
                s.bump_version(other)
                    .await
                    .unwrap_err()
                    .is_unknown_subject(),
                "{name} {other:?}"
            );
            assert!(
                s.revoke_before(other, 5)
                    .await
                    .unwrap_err()
                    .is_unknown_subject(),
                "{name} {other:?}"
            );
        }
        assert_eq!(
            s.load("42").await.unwrap(),
            Some(Cutoff::default()),
            "{name}: untouched"
        );
    }
    check(&sqlite, "sqlite").await;
    check(&pgs, "postgres").await;
}

/// A bump racing the deletion of the user (PostgreSQL, two transactions):
/// the bump waits for the delete's row lock, then finds no row: unknown
/// subject, and the user stays deleted.
#[tokio::test]
async fn postgres_users_a_bump_racing_a_delete_never_resurrects_the_user() {
    let pool = pg().await.pool().clone();
    let table = unique("users_del").replace('-', "_");
    sqlx::raw_sql(&format!(
        "CREATE TABLE {table} (id TEXT PRIMARY KEY, token_version BIGINT NOT NULL DEFAULT 0, \
           tokens_not_before BIGINT NOT NULL DEFAULT 0); INSERT INTO {table} (id) VALUES ('bob');"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let store = PostgresUsersStore::new(pool.clone(), UsersTable::new(&table).unwrap());
    let (_clock, guard) = guard(store.clone());
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(&format!("DELETE FROM {table} WHERE id = 'bob'"))
        .execute(&mut *tx)
        .await
        .unwrap();
    let g = guard.clone();
    let bump = tokio::spawn(async move { g.bump_version("bob").await });
    let g = guard.clone();
    let revoke = tokio::spawn(async move { g.revoke_before("bob", NOW - 100).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    tx.commit().await.unwrap();
    assert!(matches!(bump.await.unwrap(), Err(Error::UnknownSubject)));
    assert!(matches!(revoke.await.unwrap(), Err(Error::UnknownSubject)));
    let rows: (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows.0, 0, "the user came back");
    assert!(matches!(
        guard.issue("bob", &()).await,
        Err(Error::UnknownSubject)
    ));
}

/// Rows the users store does not understand fail closed (SQLite: any type
/// in any column), and no write touches them.
#[tokio::test]
async fn sqlite_users_odd_values_fail_closed_and_are_left_alone() {
    let mut problems = Vec::new();
    for (v, nb) in [
        ("1.5", "0"),
        ("x'01'", "0"),
        ("'abc'", "0"),
        ("0", "'later'"),
        ("0", "-1"),
        ("-1", "0"),
        ("0", "2.5"),
        ("NULL", "0"),
    ] {
        // No CHECK and no NOT NULL: the host's own table may lack them.
        let store = sqlite_users(
            &format!(
                "CREATE TABLE users (id TEXT PRIMARY KEY, token_version INTEGER, tokens_not_before INTEGER); \
                 INSERT INTO users VALUES ('u', {v}, {nb});"
            ),
            UserIds::Text,
        )
        .await;
        let before = quoted_row(store.pool()).await;
        let load = store.load("u").await;
        let bump = store.bump_version("u").await;
        let revoke = store.revoke_before("u", NOW).await;
        let after = quoted_row(store.pool()).await;
        if load.is_ok() || bump.is_ok() || revoke.is_ok() || before != after {
            problems.push(format!(
                "({v}, {nb}): load {}, bump {}, revoke {}, {before:?} -> {after:?}",
                norm(&load),
                norm(&bump),
                norm(&revoke)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

async fn quoted_row(pool: &sqlx::SqlitePool) -> (String, String) {
    sqlx::query_as(
        "SELECT quote(token_version), quote(tokens_not_before) FROM users WHERE id = 'u'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// `apply_committed` is a floor: a cutoff lower than the cached one (an old
/// commit handed over late) never lowers it; one beyond `max_future_cutoff`
/// is refused and changes nothing; one exactly at the horizon is applied.
#[tokio::test]
async fn apply_committed_never_lowers_a_cutoff_and_refuses_one_beyond_the_horizon() {
    let store = sqlite_users(
        "CREATE TABLE users (id TEXT PRIMARY KEY, token_version INTEGER NOT NULL DEFAULT 0, \
           tokens_not_before INTEGER NOT NULL DEFAULT 0); INSERT INTO users (id) VALUES ('alice');",
        UserIds::Text,
    )
    .await;
    let (clock, guard) = guard(store.clone());
    let old = guard.issue("alice", &()).await.unwrap();
    guard.validate::<()>(&old).await.unwrap();
    let mut tx = store.pool().begin().await.unwrap();
    let c1 = store.bump_version_in(&mut tx, "alice").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(c1, Cutoff::new(1, 0));
    guard.apply_committed("alice", c1).await.unwrap();
    assert!(matches!(
        guard.validate::<()>(&old).await,
        Err(Error::Revoked(_))
    ));
    // A late, lower cutoff.
    guard
        .apply_committed("alice", Cutoff::new(0, 0))
        .await
        .unwrap();
    assert!(matches!(
        guard.validate::<()>(&old).await,
        Err(Error::Revoked(_))
    ));
    // A token of the new version works; a lower commit does not revive the old.
    clock.advance(Duration::from_secs(2));
    let fresh = guard.issue("alice", &()).await.unwrap();
    guard.validate::<()>(&fresh).await.unwrap();
    // Beyond the horizon: refused, nothing applied.
    let far = Cutoff::new(1, NOW + 2 + 3_600 + 1);
    assert!(matches!(
        guard.apply_committed("alice", far).await,
        Err(Error::InvalidCutoff(_))
    ));
    guard.validate::<()>(&fresh).await.unwrap();
    // At the horizon: applied (the fresh token is older).
    let edge = Cutoff::new(1, NOW + 2 + 3_600);
    guard.apply_committed("alice", edge).await.unwrap();
    assert!(matches!(
        guard.validate::<()>(&fresh).await,
        Err(Error::Revoked(_))
    ));
    // ...and a lower one afterwards does not lift it.
    guard
        .apply_committed("alice", Cutoff::new(1, NOW))
        .await
        .unwrap();
    assert!(matches!(
        guard.validate::<()>(&fresh).await,
        Err(Error::Revoked(_))
    ));
    // A subject with nothing cached: the floor is no fresh entry, the store decides.
    guard
        .apply_committed("nobody", Cutoff::new(9, 0))
        .await
        .unwrap();
    assert!(matches!(
        guard.issue("nobody", &()).await,
        Err(Error::UnknownSubject)
    ));
}

/// Identifiers that look harmless but are not `[A-Za-z_][A-Za-z0-9_]*` are
/// refused at construction, for every name.
#[test]
fn users_table_refuses_every_non_identifier_name() {
    let bad = [
        "users\0",
        "users\n",
        "ｕsers",
        "users\u{200b}",
        "a..b",
        "a.",
        ".a",
        "a b",
        "a-b",
        "\"a\"",
        "`a`",
        "[a]",
        "a;b",
        "a/*",
        "--",
        "0a",
        "",
    ];
    for name in bad {
        assert!(UsersTable::new(name).is_err(), "table {name:?}");
        assert!(
            UsersTable::new("u").unwrap().global_table(name).is_err(),
            "global {name:?}"
        );
        let t = UsersTable::new("u").unwrap();
        assert!(t.clone().id_column(name).is_err(), "id {name:?}");
        assert!(t.clone().version_column(name).is_err(), "version {name:?}");
        assert!(
            t.clone().not_before_column(name).is_err(),
            "not_before {name:?}"
        );
    }
    let long = "a".repeat(63);
    assert!(UsersTable::new(&format!("{long}.{long}")).is_ok());
    assert!(UsersTable::new(&format!("{long}.{long}a")).is_err());
    assert_eq!(UsersTable::new("user").unwrap().table(), "\"user\"");
}
