//! Shared test helpers: unique subject names, key material, and the store
//! conformance suite every `CutoffStore` runs.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

pub mod conformance;

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

/// A 32-byte HS256 test secret.
pub const SECRET: &[u8] = b"test-secret-test-secret-test-sec";
