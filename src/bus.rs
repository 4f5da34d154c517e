//! Cross-instance invalidation: telling other guards about a revocation.
//!
//! Without a bus, a revocation made on one instance reaches the others when
//! their cache entry for the subject expires (at most the cache TTL). With a
//! [`Publisher`] configured, the guard publishes a [`CutoffEvent`] after each
//! revocation; subscribers on the other instances pass received events to
//! [`Guard::apply_event`](crate::Guard::apply_event), which merges them into
//! the local cache by maximum (an old or duplicated event never rolls a cutoff
//! back).

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::cutoff::Cutoff;
use crate::store::StoreError;

/// A cutoff change, as sent between instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CutoffEvent {
    /// A subject's cutoff after a `bump_version` or `revoke_before`.
    Subject {
        /// The subject.
        sub: String,
        /// Its cutoff as returned by the store.
        cutoff: Cutoff,
    },
    /// The global `not_before` after a `revoke_all_before`.
    Global {
        /// The new global `not_before`.
        not_before: i64,
    },
}

/// A boxed future, for the object-safe [`Publisher`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sends cutoff changes to the other instances (Redis pub/sub, PostgreSQL
/// `NOTIFY`, …). Called by the guard after the store write and the local
/// cache update, so a failed publish never loses the revocation: the store
/// holds it, and other instances see it within their cache TTL.
pub trait Publisher: Send + Sync + 'static {
    /// Publishes one event.
    fn publish<'a>(&'a self, event: &'a CutoffEvent) -> BoxFuture<'a, Result<(), StoreError>>;
}
