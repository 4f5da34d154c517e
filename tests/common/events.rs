//! A publisher that keeps every event a guard publishes, for tests that
//! count what a revocation (or its retry) announced.

use std::sync::{Arc, Mutex};

use jwt_revoke::{BoxFuture, CutoffEvent, Publisher, StoreError};

/// Every event published through it, in order. Clones share the list.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<CutoffEvent>>>);

impl Recorder {
    /// The events published so far.
    pub fn events(&self) -> Vec<CutoffEvent> {
        self.0.lock().unwrap().clone()
    }

    /// How many events announced the session `sid`.
    pub fn sessions_announced(&self, sid: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| matches!(e, CutoffEvent::Session { sid: s, .. } if s == sid))
            .count()
    }
}

impl Publisher for Recorder {
    fn publish<'a>(&'a self, event: &'a CutoffEvent) -> BoxFuture<'a, Result<(), StoreError>> {
        self.0.lock().unwrap().push(event.clone());
        Box::pin(async { Ok(()) })
    }
}
