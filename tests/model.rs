//! Model-based concurrency test: random schedules of issue / validate /
//! bump_version / revoke_before / revoke_all_before on two instances over
//! one store, with invalidation events delivered late, duplicated,
//! reordered or replayed, a tiny cache bound (constant eviction),
//! `clear_cache`, `mark_cache_stale`, `limit_cache_age`, TTL expiry, store
//! faults, rows lost and created again (by a revocation or a registration,
//! from a lower version), two instances whose clocks disagree by up to 3 s
//! (the store keeps the world's), and store calls that yield at random points so loads and
//! revocations interleave. Every run is checked against the sequential
//! rules:
//!
//! 1. once a revocation returned on an instance, that instance accepts no
//!    token the returned cutoff revokes;
//! 2. any instance accepts no such token once the cache TTL has passed
//!    since the revocation returned;
//! 3. a revocation "up to now" (`bump_version`, `revoke_before(sub, now)`,
//!    `revoke_all_before(now)`) revokes every token issued before it was
//!    called, same second included.
//!
//! Schedules are seeded: a failure prints its seed. `MODEL_SEEDS` (default
//! 40) sets how many run; a longer campaign is `MODEL_SEEDS=2000 cargo
//! nextest run --test model`.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jwt_revoke::{
    Algorithm, BoxFuture, Clock, Cutoff, CutoffEvent, CutoffStore, FakeClock, Guard, Keys,
    MemoryStore, Publisher, StoreError,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T0: i64 = 1_800_000_000;
const TTL: Duration = Duration::from_secs(30);
const SUBJECTS: [&str; 3] = ["alice", "bob", "carol"];

/// The real in-memory store, with random yields around each call (so calls
/// interleave with everything else) and injectable faults.
struct Chaos {
    inner: MemoryStore,
    rng: Mutex<StdRng>,
    failing: AtomicBool,
}

impl Chaos {
    async fn jitter(&self) -> Result<(), StoreError> {
        let (yields, fail) = {
            let mut rng = self.rng.lock().unwrap();
            (rng.random_range(0..6), rng.random_bool(0.05))
        };
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
        if fail && self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::msg("injected fault"));
        }
        Ok(())
    }
}

impl CutoffStore for Chaos {
    async fn load(&self, sub: &str) -> Result<Option<Cutoff>, StoreError> {
        self.jitter().await?;
        let r = self.inner.load(sub).await;
        self.jitter().await?;
        r
    }
    async fn bump_version(&self, sub: &str) -> Result<Cutoff, StoreError> {
        self.jitter().await?;
        let r = self.inner.bump_version(sub).await;
        // A fault after the write: the outcome is unknown to the caller.
        self.jitter().await?;
        r
    }
    async fn revoke_before(&self, sub: &str, at: i64) -> Result<Cutoff, StoreError> {
        self.jitter().await?;
        let r = self.inner.revoke_before(sub, at).await;
        self.jitter().await?;
        r
    }
    async fn load_global(&self) -> Result<i64, StoreError> {
        self.jitter().await?;
        let r = self.inner.load_global().await;
        self.jitter().await?;
        r
    }
    async fn revoke_all_before(&self, at: i64) -> Result<i64, StoreError> {
        self.jitter().await?;
        let r = self.inner.revoke_all_before(at).await;
        self.jitter().await?;
        r
    }
}

/// Every published event, kept for late, duplicated and replayed delivery.
#[derive(Clone, Default)]
struct Bus(Arc<Mutex<Vec<CutoffEvent>>>);

impl Publisher for Bus {
    fn publish<'a>(&'a self, event: &'a CutoffEvent) -> BoxFuture<'a, Result<(), StoreError>> {
        self.0.lock().unwrap().push(event.clone());
        Box::pin(async { Ok(()) })
    }
}

#[derive(Clone, Debug)]
struct Issued {
    sub: &'static str,
    token: String,
    ver: u64,
    iat: i64,
    returned: u64,
    instance: usize,
}

/// An instance's clock: the world's, a fixed number of milliseconds off
/// (instances whose clocks disagree; the store keeps the world's).
struct Skewed {
    base: FakeClock,
    offset_ms: i64,
}

impl Clock for Skewed {
    fn now_millis(&self) -> i64 {
        self.base.now_millis() + self.offset_ms
    }

    fn moves_by_itself(&self) -> bool {
        false
    }
}

#[derive(Clone, Debug)]
enum Kind {
    Subject(&'static str, Cutoff),
    Global(i64),
}

#[derive(Clone, Debug)]
struct Revocation {
    instance: usize,
    kind: Kind,
    up_to_now: bool,
    called: u64,
    returned: u64,
    returned_ms: i64,
}

#[derive(Clone, Debug)]
struct Accepted {
    instance: usize,
    token: Issued,
    started: u64,
    started_ms: i64,
    /// When the validation returned: its store read may come from any
    /// moment in between.
    returned: u64,
}

#[derive(Default)]
struct Log {
    issued: Vec<Issued>,
    revocations: Vec<Revocation>,
    accepted: Vec<Accepted>,
    /// Rows lost: the subject and when.
    lost: Vec<(&'static str, u64)>,
}

struct World {
    guards: Vec<Guard<Arc<Chaos>>>,
    /// Each instance's clock offset from the world's (the store's).
    offsets_ms: Vec<i64>,
    store: Arc<Chaos>,
    clock: FakeClock,
    bus: Bus,
    seq: AtomicU64,
    log: Mutex<Log>,
}

impl World {
    fn tick(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst)
    }
}

async fn worker(world: Arc<World>, seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..steps {
        let g = rng.random_range(0..world.guards.len());
        let guard = &world.guards[g];
        let sub = SUBJECTS[rng.random_range(0..SUBJECTS.len())];
        match rng.random_range(0..100) {
            0..=19 => {
                if let Ok(token) = guard.issue(sub, &()).await {
                    let returned = world.tick();
                    let v = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(&token)
                        .unwrap()
                        .claims;
                    world.log.lock().unwrap().issued.push(Issued {
                        sub,
                        token,
                        ver: v["ver"].as_u64().unwrap(),
                        iat: v["iat"].as_i64().unwrap(),
                        returned,
                        instance: g,
                    });
                }
            }
            20..=54 => {
                let token = {
                    let log = world.log.lock().unwrap();
                    if log.issued.is_empty() {
                        continue;
                    }
                    log.issued[rng.random_range(0..log.issued.len())].clone()
                };
                let started = world.tick();
                let started_ms = world.clock.now_millis();
                if guard.validate::<()>(&token.token).await.is_ok() {
                    let returned = world.tick();
                    world.log.lock().unwrap().accepted.push(Accepted {
                        instance: g,
                        token,
                        started,
                        started_ms,
                        returned,
                    });
                }
            }
            55..=74 => {
                let called = world.tick();
                // "Now" on the revoking instance's clock.
                let now = (world.clock.now_millis() + world.offsets_ms[g]).div_euclid(1000);
                let (kind, up_to_now) = match rng.random_range(0..5) {
                    0 | 1 => (
                        guard.bump_version(sub).await.map(|c| Kind::Subject(sub, c)),
                        true,
                    ),
                    2 | 3 => {
                        // Mostly "now", sometimes a past second.
                        let at = now - rng.random_range(0..3i64).saturating_sub(1).max(0);
                        (
                            guard
                                .revoke_before(sub, at)
                                .await
                                .map(|c| Kind::Subject(sub, c)),
                            at >= now,
                        )
                    }
                    _ => (guard.revoke_all_before(now).await.map(Kind::Global), true),
                };
                if let Ok(kind) = kind {
                    let returned = world.tick();
                    world.log.lock().unwrap().revocations.push(Revocation {
                        instance: g,
                        kind,
                        up_to_now,
                        called,
                        returned,
                        returned_ms: world.clock.now_millis(),
                    });
                }
            }
            75..=84 => {
                // Deliver a random published event (late, duplicated,
                // reordered, possibly back to its own origin).
                let event = {
                    let bus = world.bus.0.lock().unwrap();
                    if bus.is_empty() {
                        continue;
                    }
                    bus[rng.random_range(0..bus.len())].clone()
                };
                guard.apply_event(&event).unwrap();
            }
            85..=88 => match rng.random_range(0..4) {
                0 => guard.clear_cache(),
                1 => guard.mark_cache_stale(),
                2 => guard.limit_cache_age(Some(Duration::from_secs(1))),
                _ => guard.limit_cache_age(None),
            },
            89..=97 => world
                .clock
                .advance(Duration::from_millis(rng.random_range(0..900))),
            98 => {
                world
                    .store
                    .failing
                    .store(rng.random_bool(0.5), Ordering::SeqCst);
            }
            _ if rng.random_bool(0.5) => {
                // The subject's row is lost (a deleted user, an eviction):
                // the next revocation or registration creates it again,
                // from a lower version.
                world.store.inner.remove(sub);
                let tick = world.tick();
                world.log.lock().unwrap().lost.push((sub, tick));
                if rng.random_bool(0.5) {
                    world.store.inner.insert(sub, Cutoff::default());
                }
            }
            _ => {}
        }
        tokio::task::yield_now().await;
    }
}

fn revokes(kind: &Kind, t: &Issued) -> bool {
    match kind {
        Kind::Subject(sub, c) => *sub == t.sub && c.is_revoked(Some(t.ver), t.iat, i64::MIN),
        Kind::Global(nb) => t.iat < *nb,
    }
}

fn check(log: &Log, offsets_ms: &[i64], seed: u64) {
    let ttl_ms = TTL.as_millis() as i64;
    // A token issued after its subject's row was lost and created again
    // belongs to the new record (its versions restart): a revocation of
    // the old record, made before the loss, says nothing about it. Tokens
    // issued before the loss are still held to every revocation.
    let later_record = |r: &Revocation, t: &Issued| {
        matches!(r.kind, Kind::Subject(..))
            && log
                .lost
                .iter()
                .any(|&(sub, at)| sub == t.sub && at > r.called && at < t.returned)
    };
    // A row lost after the revocation and created again: the new record
    // (created at the store's second `S`, `not_before = S + 2`) rejects
    // every token stamped up to `S + 1` on the store's clock; one minted on
    // an instance whose clock runs ahead of the store's may pass it (the
    // documented skew bound, until the token's `exp`). The loss may land
    // while the validation waits on the store: up to when it returned.
    let recreated_past_skew = |r: &Revocation, a: &Accepted| {
        matches!(r.kind, Kind::Subject(..))
            && offsets_ms[a.token.instance] > 0
            && log
                .lost
                .iter()
                .any(|&(sub, at)| sub == a.token.sub && at > r.called && at < a.returned)
    };
    for a in &log.accepted {
        for r in &log.revocations {
            if r.returned >= a.started
                || !revokes(&r.kind, &a.token)
                || later_record(r, &a.token)
                || recreated_past_skew(r, a)
            {
                continue;
            }
            assert!(
                r.instance != a.instance,
                "seed {seed}: instance {} accepted {:?} (started {}) after its own revocation \
                 {r:?} returned (rows lost: {:?}; clock offsets {offsets_ms:?} ms)",
                a.instance,
                a.token,
                a.started,
                log.lost
            );
            assert!(
                a.started_ms < r.returned_ms + ttl_ms,
                "seed {seed}: instance {} accepted {:?} a TTL after revocation {r:?}",
                a.instance,
                a.token
            );
        }
    }
    // The documented skew bound: a token minted on an instance whose clock
    // runs `d` seconds ahead of the revoking one's may escape a timestamp
    // cutoff by up to `d` seconds (plus the second a same-second login is
    // stamped ahead, and the rounding to whole seconds); never a version.
    let skew_escape = |r: &Revocation, t: &Issued| {
        let ahead_ms = offsets_ms[t.instance] - offsets_ms[r.instance];
        let nb = match &r.kind {
            Kind::Subject(_, c) if t.ver < c.version => return false,
            Kind::Subject(_, c) => c.not_before,
            Kind::Global(nb) => *nb,
        };
        let escapes = |ahead_ms: i64| ahead_ms > 0 && t.iat - nb < ahead_ms.div_euclid(1000) + 2;
        // A record created again since the token (a loss in between) was
        // created on the store's clock: the same bound against the store.
        // (A loss while the token's issue was under way counts: its read
        // may have come before the loss.)
        let recreated = log
            .lost
            .iter()
            .any(|&(sub, at)| sub == t.sub && at < r.returned);
        escapes(ahead_ms) || (recreated && escapes(offsets_ms[t.instance]))
    };
    for r in log.revocations.iter().filter(|r| r.up_to_now) {
        for t in &log.issued {
            let same_target = match r.kind {
                Kind::Subject(sub, _) => sub == t.sub,
                Kind::Global(_) => true,
            };
            if same_target && t.returned < r.called {
                assert!(
                    revokes(&r.kind, t) || skew_escape(r, t),
                    "seed {seed}: revocation {r:?} misses {t:?}, issued before it was called \
                     (clock offsets {offsets_ms:?} ms)"
                );
            }
        }
    }
}

async fn run(seed: u64) -> (usize, usize, usize) {
    let clock = FakeClock::new(T0);
    let store = Arc::new(Chaos {
        // Records a lost row's recreation with the world's clock.
        inner: MemoryStore::with_clock(clock.clone()),
        rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x5eed)),
        failing: AtomicBool::new(false),
    });
    for s in SUBJECTS {
        store.inner.insert(s, Cutoff::default());
    }
    let bus = Bus::default();
    // Instance 0 on the store's clock, instance 1 up to 3 s ahead or behind.
    let offsets_ms = vec![
        0,
        StdRng::seed_from_u64(seed ^ 0xc10c).random_range(-3_000..=3_000),
    ];
    let guards = offsets_ms
        .iter()
        .map(|&offset_ms| {
            Guard::builder(
                Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(),
                store.clone(),
            )
            .clock(Skewed {
                base: clock.clone(),
                offset_ms,
            })
            .cache_ttl(TTL)
            .max_entries(2)
            .publisher(bus.clone())
            .build()
            .unwrap()
        })
        .collect();
    let world = Arc::new(World {
        guards,
        offsets_ms,
        store,
        clock,
        bus,
        seq: AtomicU64::new(0),
        log: Mutex::new(Log::default()),
    });
    let tasks: Vec<_> = (0..4)
        .map(|w| tokio::spawn(worker(world.clone(), seed * 31 + w, 400)))
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let log = world.log.lock().unwrap();
    check(&log, &world.offsets_ms, seed);
    (log.accepted.len(), log.revocations.len(), log.issued.len())
}

#[tokio::test]
async fn random_schedules_never_accept_a_revoked_token() {
    let seeds: u64 = std::env::var("MODEL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let (mut accepted, mut revocations, mut issued) = (0, 0, 0);
    for seed in 0..seeds {
        let (a, r, i) = run(seed).await;
        accepted += a;
        revocations += r;
        issued += i;
    }
    // The schedules exercise what they claim to: plenty of each.
    assert!(accepted > 100 * seeds as usize / 10, "{accepted} accepted");
    assert!(
        revocations > 100 * seeds as usize / 10,
        "{revocations} revocations"
    );
    assert!(issued > 100 * seeds as usize / 10, "{issued} issued");
}
