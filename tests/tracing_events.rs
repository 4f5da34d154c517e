//! With the `tracing` feature, rejections, store failures and revocations
//! are reported as events, and no event carries a token or a subject.
#![cfg(feature = "tracing")]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::fixture::setup;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn rejections_and_revocations_are_traced_without_secrets() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let (_clock, store, b) = setup(&["alice-secret-name"]);
    let g = b.build().unwrap();
    let token = g.issue("alice-secret-name", &()).await.unwrap();
    g.validate::<()>(&token).await.unwrap();
    g.bump_version("alice-secret-name").await.unwrap();
    assert!(g.validate::<()>(&token).await.is_err());
    g.clear_cache();
    store.fail(true);
    assert!(g.validate::<()>(&token).await.is_err());

    let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(out.contains("token accepted"), "{out}");
    assert!(out.contains("token rejected"), "{out}");
    assert!(out.contains("code=\"token_revoked\""), "{out}");
    assert!(out.contains("reason=\"version\""), "{out}");
    assert!(out.contains("subject cutoff raised"), "{out}");
    assert!(out.contains("cutoff load failed"), "{out}");
    assert!(out.contains("code=\"store_unavailable\""), "{out}");
    // One span per validation, with its outcome; store calls with latency.
    assert!(out.contains("validate{outcome=\"accepted\"}"), "{out}");
    assert!(
        out.contains("validate{outcome=\"token_revoked\" reason=\"version\"}"),
        "{out}"
    );
    assert!(
        out.contains("store call operation=\"load\" ok=true latency_us="),
        "{out}"
    );
    assert!(out.contains("operation=\"load\" ok=false"), "{out}");
    assert!(
        !out.contains("alice-secret-name"),
        "a subject leaked: {out}"
    );
    assert!(!out.contains(&token), "a token leaked: {out}");
    let signature = token.rsplit('.').next().unwrap();
    assert!(!out.contains(signature), "a signature leaked: {out}");
}
