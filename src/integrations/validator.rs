//! [`Validator`]: a guard and a policy with the store type erased, for the
//! extractors that validate without a layer or middleware (axum's and
//! actix's `Validated`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::{Policy, RejectHook, Rejection, TokenSource};
use crate::claims::Verified;
use crate::guard::Guard;
use crate::store::CutoffStore;

/// What the `Validated` extractors check with: a guard and the same
/// settings as a layer or middleware (token source, claims requirements,
/// rejection hook), without the store type, so that an extractor can find
/// it in the application state (axum's `FromRef`, actix's `web::Data`).
///
/// Build it from a guard ([`Validator::new`]) or from a configured layer
/// or middleware (`Validator::from(layer)`), once, and keep it in the
/// state: cloning it is one reference count.
///
/// Why not the [`Guard`] itself: `Validated<C>` would have to be an
/// extractor for every state holding some `Guard<S>`, and the store type
/// `S` appears nowhere in `Validated<C>`, which Rust does not allow (E0207);
/// the validator erases it (one boxed future per request, as the layer).
pub struct Validator<C = ()> {
    check: Arc<dyn Check<C>>,
}

impl<C> Clone for Validator<C> {
    fn clone(&self) -> Self {
        Validator {
            check: Arc::clone(&self.check),
        }
    }
}

impl<C> std::fmt::Debug for Validator<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").finish_non_exhaustive()
    }
}

impl<C: DeserializeOwned + Send + Sync + 'static> Validator<C> {
    /// Reads `Authorization: Bearer`, no requirements, the default bodies.
    pub fn new<S: CutoffStore>(guard: Guard<S>) -> Self {
        Validator::from_policy(Policy::new(guard))
    }

    /// A layer's or middleware's settings; whether it is `optional` does
    /// not matter here: `Validated` requires a token, the optional
    /// extractors do not.
    pub(crate) fn from_policy<S: CutoffStore>(policy: Policy<S, C>) -> Self {
        Validator {
            check: Arc::new(policy),
        }
    }
}

impl<C> Validator<C> {
    /// The erased policy.
    pub(crate) fn check(&self) -> &dyn Check<C> {
        &*self.check
    }
}

/// The store-independent part of a [`Policy`].
pub(crate) trait Check<C>: Send + Sync {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Verified<C>, Rejection>> + Send + 'a>>;
    fn sources(&self) -> &[TokenSource];
    fn hook(&self) -> Option<&RejectHook>;
}

impl<S: CutoffStore, C: DeserializeOwned + Send + Sync + 'static> Check<C> for Policy<S, C> {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Verified<C>, Rejection>> + Send + 'a>> {
        Box::pin(Policy::verify(self, token))
    }

    fn sources(&self) -> &[TokenSource] {
        &self.sources
    }

    fn hook(&self) -> Option<&RejectHook> {
        self.on_reject.as_ref()
    }
}
