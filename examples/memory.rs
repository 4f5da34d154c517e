//! Memory per cached subject: fills the guard's cache with N subjects and
//! reports what the cache holds on the heap (bytes allocated and not freed,
//! counted by a wrapper around the system allocator) and the growth of the
//! resident set (Linux `/proc/self/statm`); then the same for the
//! verified-token cache (M distinct tokens validated once each), with what
//! its byte budget counted for them.
//!
//! The two figures differ by what the allocator keeps after the hash
//! tables double: each doubling frees the smaller table, and glibc keeps
//! such freed blocks in the process for later allocations instead of
//! returning them to the system (with `MALLOC_MMAP_THRESHOLD_=131072` it
//! returns them, and the resident growth matches the heap figure).
//!
//! Run: `cargo run --release --example memory -- 1000000 100000`

use std::alloc::System;
use std::time::Duration;

use jwt_revoke::{Algorithm, Cutoff, Guard, Keys, MemoryStore};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static ALLOC: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes allocated and not freed since `region` began.
fn live_bytes(region: &Region<'_, System>) -> i64 {
    let c = region.change();
    c.bytes_allocated as i64 - c.bytes_deallocated as i64 + c.bytes_reallocated as i64
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let names: Vec<String> = (0..n).map(|i| format!("user-{i}")).collect();
    let store = MemoryStore::new();
    for name in &names {
        store.insert(name.as_str(), Cutoff::default());
    }
    let guard = Guard::builder(
        Keys::hmac(Algorithm::HS256, b"memory-example-secret-32-bytes!!").expect("key"),
        store,
    )
    .max_entries(n + 1)
    .cache_ttl(Duration::from_secs(3_600))
    .build()
    .expect("guard");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The store and the names are allocated before the baseline: only the
    // cache's growth is measured.
    let before = rss_bytes().expect("/proc/self/statm (Linux only)");
    let region = Region::new(ALLOC);
    rt.block_on(async {
        for name in &names {
            // A write through the guard inserts the subject into the cache.
            guard.bump_version(name).await.expect("bump");
        }
    });
    let heap = live_bytes(&region);
    let after = rss_bytes().expect("rss");
    assert_eq!(guard.cached_subjects(), n);
    println!(
        "cached subjects: {n}\n\
         heap held: {:.1} MiB, {:.1} bytes per cached subject\n\
         rss growth: {:.1} MiB, {:.1} bytes per cached subject",
        heap as f64 / (1024.0 * 1024.0),
        heap as f64 / n as f64,
        (after - before) as f64 / (1024.0 * 1024.0),
        after.saturating_sub(before) as f64 / n as f64,
    );

    // The verified-token cache: M distinct tokens (of M subjects), each
    // validated once, with a budget large enough to keep them all. The
    // subjects' cutoffs are cached (and the tokens issued) before the
    // baseline, so only the verified entries are measured.
    let m: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000)
        .min(n);
    let store = MemoryStore::new();
    for name in &names[..m] {
        store.insert(name.as_str(), Cutoff::default());
    }
    let verified = Guard::builder(
        Keys::hmac(Algorithm::HS256, b"memory-example-secret-32-bytes!!").expect("key"),
        store,
    )
    .max_entries(m + 1)
    .cache_ttl(Duration::from_secs(3_600))
    .verified_cache(m + 1)
    .verified_cache_bytes(usize::MAX / 2)
    .build()
    .expect("guard");
    let tokens: Vec<String> = rt.block_on(async {
        let mut tokens = Vec::with_capacity(m);
        for name in &names[..m] {
            // `issue` reads the store and caches the subject's cutoff.
            tokens.push(verified.issue(name, &()).await.expect("issue"));
        }
        tokens
    });
    let before = rss_bytes().expect("rss");
    let region = Region::new(ALLOC);
    rt.block_on(async {
        for t in &tokens {
            verified.validate::<()>(t).await.expect("valid");
        }
    });
    let heap = live_bytes(&region);
    let after = rss_bytes().expect("rss");
    let stats = verified.stats();
    assert_eq!(stats.verified_tokens, m);
    let avg_len = tokens.iter().map(String::len).sum::<usize>() / m.max(1);
    println!(
        "verified tokens: {m} (tokens of {avg_len} bytes)\n\
         heap held: {:.1} bytes per verified token\n\
         rss growth: {:.1} MiB, {:.1} bytes per verified token\n\
         bytes per verified token counted by its budget: {:.1}",
        heap as f64 / m as f64,
        (after - before) as f64 / (1024.0 * 1024.0),
        after.saturating_sub(before) as f64 / m as f64,
        stats.verified_bytes as f64 / m as f64
    );
}
