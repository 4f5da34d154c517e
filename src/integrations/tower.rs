//! A [`tower`](https://docs.rs/tower) layer that validates bearer tokens.
//!
//! [`RevokeLayer`] wraps any `Service<http::Request<B>>` whose response body
//! can be built from a `String` (axum's `Body`, `String`, …). On success the
//! [`Verified<C>`](crate::Verified) is inserted into the request extensions
//! and the inner service is called; otherwise the layer answers with the
//! [`Rejection`] and the inner service never sees the
//! request.
//!
//! The response future is boxed: validation is an `async fn` whose future
//! type cannot be named, and one allocation per request is small next to a
//! signature check.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue, Request, Response, header};
use serde::de::DeserializeOwned;
use tower_layer::Layer;
use tower_service::Service;

use super::{Checked, Credentials, Rejection, bearer_credentials};
use crate::guard::Guard;
use crate::store::CutoffStore;

/// Validates `Authorization: Bearer` tokens in front of a service.
///
/// `C` is the type of the application's own claims (`()` for none).
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use axum::{Router, routing::get};
/// use jwt_revoke::integrations::axum::Authenticated;
/// use jwt_revoke::integrations::tower::RevokeLayer;
/// use jwt_revoke::{Algorithm, Guard, Keys, MemoryStore};
///
/// async fn me(Authenticated(user): Authenticated) -> String {
///     format!("hello {}", user.sub())
/// }
///
/// let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
/// let guard = Guard::builder(keys, MemoryStore::new()).build().unwrap();
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     .layer(RevokeLayer::<_, ()>::new(guard));
/// # }
/// ```
pub struct RevokeLayer<S: CutoffStore, C = ()> {
    guard: Guard<S>,
    optional: bool,
    _claims: PhantomData<fn() -> C>,
}

impl<S: CutoffStore, C> Clone for RevokeLayer<S, C> {
    fn clone(&self) -> Self {
        RevokeLayer {
            guard: self.guard.clone(),
            optional: self.optional,
            _claims: PhantomData,
        }
    }
}

impl<S: CutoffStore, C> std::fmt::Debug for RevokeLayer<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeLayer")
            .field("optional", &self.optional)
            .finish_non_exhaustive()
    }
}

impl<S: CutoffStore, C> RevokeLayer<S, C> {
    /// Every request must carry a valid token.
    pub fn new(guard: Guard<S>) -> Self {
        RevokeLayer {
            guard,
            optional: false,
            _claims: PhantomData,
        }
    }

    /// Requests without an `Authorization` header pass through
    /// unauthenticated (handlers see `None`); a header that is present must
    /// still be valid.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
}

impl<S: CutoffStore, C, Inner> Layer<Inner> for RevokeLayer<S, C> {
    type Service = RevokeService<S, C, Inner>;

    fn layer(&self, inner: Inner) -> Self::Service {
        RevokeService {
            inner,
            guard: self.guard.clone(),
            optional: self.optional,
            _claims: PhantomData,
        }
    }
}

/// The service produced by [`RevokeLayer`].
pub struct RevokeService<S: CutoffStore, C, Inner> {
    inner: Inner,
    guard: Guard<S>,
    optional: bool,
    _claims: PhantomData<fn() -> C>,
}

impl<S: CutoffStore, C, Inner: Clone> Clone for RevokeService<S, C, Inner> {
    fn clone(&self) -> Self {
        RevokeService {
            inner: self.inner.clone(),
            guard: self.guard.clone(),
            optional: self.optional,
            _claims: PhantomData,
        }
    }
}

impl<S: CutoffStore, C, Inner> std::fmt::Debug for RevokeService<S, C, Inner> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeService")
            .field("optional", &self.optional)
            .finish_non_exhaustive()
    }
}

/// Builds the HTTP response for a rejection: status, [`Rejection::headers`]
/// and [`Rejection::body`].
pub fn rejection_response<B: From<String>>(rejection: &Rejection) -> Response<B> {
    let mut res = Response::new(B::from(rejection.body()));
    *res.status_mut() =
        http::StatusCode::from_u16(rejection.status).unwrap_or(http::StatusCode::UNAUTHORIZED);
    let headers = res.headers_mut();
    for (name, value) in rejection.headers() {
        // Values are built from printable ASCII (descriptions are
        // sanitised), so a failure here would be a bug, not input.
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    res
}

impl<S, C, Inner, B, ResBody> Service<Request<B>> for RevokeService<S, C, Inner>
where
    S: CutoffStore,
    C: DeserializeOwned + Clone + Send + Sync + 'static,
    Inner: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    Inner::Future: Send + 'static,
    B: Send + 'static,
    ResBody: From<String> + 'static,
{
    type Response = Response<ResBody>;
    type Error = Inner::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // Take the service that was driven to readiness; leave a clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        let optional = self.optional;
        Box::pin(async move {
            let header = req
                .headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes().to_vec());
            let checked = match bearer_credentials(header.as_deref()) {
                Credentials::Missing if optional => Ok(Checked::Anonymous),
                Credentials::Missing => Err(Rejection::missing_token()),
                Credentials::Invalid => Err(Rejection::invalid_request()),
                Credentials::Bearer(token) => match guard.validate::<C>(token).await {
                    Ok(verified) => {
                        req.extensions_mut().insert(verified);
                        Ok(Checked::Authenticated)
                    }
                    Err(e) => Err(Rejection::from_error(&e)),
                },
            };
            match checked {
                Ok(checked) => {
                    req.extensions_mut().insert(checked);
                    inner.call(req).await
                }
                Err(r) => Ok(rejection_response(&r)),
            }
        })
    }
}
