//! A store an operator can repair by hand: values can be lowered, as an
//! operator fixing a mistaken cutoff in the database would. Counts its
//! reads of the global cutoff.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use jwt_revoke::{Cutoff, CutoffStore, StoreError};

#[derive(Default)]
pub struct Repairable {
    rows: Mutex<HashMap<String, Cutoff>>,
    global: Mutex<i64>,
    global_loads: AtomicUsize,
}

impl Repairable {
    /// Sets a subject's row, lower or higher.
    pub fn set(&self, sub: &str, c: Cutoff) {
        self.rows.lock().unwrap().insert(sub.to_owned(), c);
    }

    /// Sets the global row, lower or higher.
    pub fn set_global(&self, nb: i64) {
        *self.global.lock().unwrap() = nb;
    }

    /// Reads of the global cutoff so far.
    pub fn global_loads(&self) -> usize {
        self.global_loads.load(Ordering::SeqCst)
    }
}

impl CutoffStore for Repairable {
    async fn load(&self, sub: &str) -> Result<Option<Cutoff>, StoreError> {
        Ok(self.rows.lock().unwrap().get(sub).copied())
    }
    async fn bump_version(&self, sub: &str) -> Result<Cutoff, StoreError> {
        let mut rows = self.rows.lock().unwrap();
        let c = rows.entry(sub.to_owned()).or_default();
        *c = c.bumped();
        Ok(*c)
    }
    async fn revoke_before(&self, sub: &str, at: i64) -> Result<Cutoff, StoreError> {
        let mut rows = self.rows.lock().unwrap();
        let c = rows.entry(sub.to_owned()).or_default();
        *c = c.revoked_before(at);
        Ok(*c)
    }
    async fn load_global(&self) -> Result<i64, StoreError> {
        self.global_loads.fetch_add(1, Ordering::SeqCst);
        Ok(*self.global.lock().unwrap())
    }
    async fn revoke_all_before(&self, at: i64) -> Result<i64, StoreError> {
        let mut g = self.global.lock().unwrap();
        *g = (*g).max(at + 1);
        Ok(*g)
    }
}
