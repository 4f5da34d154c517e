//! A [`tower`](https://docs.rs/tower) layer that validates bearer tokens
//! (or tokens from a cookie or another header: [`TokenSource`]), checks
//! claims ([`RevokeLayer::require`]) and lets the application shape its
//! rejections ([`RevokeLayer::on_reject`]).
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
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue, Request, Response};
use serde::de::DeserializeOwned;
use tower_layer::Layer;
use tower_service::Service;

use super::{
    Checked, DefaultBody, OwnedCredentials, Policy, RejectHook, Rejection, RejectionBody,
    TokenSource, find_credentials,
};
use crate::claims::Verified;
use crate::guard::Guard;
use crate::store::CutoffStore;

/// Validates tokens (`Authorization: Bearer` unless another
/// [`token_source`](Self::token_source), or several
/// [`token_sources`](Self::token_sources), are set) in front of a service.
///
/// `C` is the type of the application's own claims (`()` for none). It must
/// be named (`RevokeLayer::<_, MyClaims>::new`): the layer parses the claims
/// before any handler runs, and nothing in the router tells Rust which type
/// the handlers' extractors will ask for (a layer and an extractor that
/// disagree are a 500 at run time, [`ExtractError::ClaimsTypeMismatch`](super::ExtractError::ClaimsTypeMismatch)).
///
/// ```compile_fail,E0282
/// # use jwt_revoke::{Algorithm, Guard, Keys, MemoryStore};
/// # use jwt_revoke::integrations::tower::RevokeLayer;
/// # let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
/// # let guard = Guard::builder(keys, MemoryStore::new()).build().unwrap();
/// let layer = RevokeLayer::new(guard); // error[E0282]: type annotations needed
/// ```
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
/// // route_layer, not layer: unknown paths stay 404 (see the axum module).
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     .route_layer(RevokeLayer::<_, ()>::new(guard));
/// # }
/// ```
pub struct RevokeLayer<S: CutoffStore, C = ()> {
    policy: Policy<S, C>,
}

impl<S: CutoffStore, C> Clone for RevokeLayer<S, C> {
    fn clone(&self) -> Self {
        RevokeLayer {
            policy: self.policy.clone(),
        }
    }
}

impl<S: CutoffStore, C> std::fmt::Debug for RevokeLayer<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeLayer")
            .field("policy", &self.policy)
            .finish()
    }
}

impl<S: CutoffStore, C> RevokeLayer<S, C> {
    /// Every request must carry a valid token.
    pub fn new(guard: Guard<S>) -> Self {
        RevokeLayer {
            policy: Policy::new(guard),
        }
    }

    /// Requests without a token (no `Authorization` header, another scheme,
    /// or no token in the configured [`token_source`](Self::token_source))
    /// pass through unauthenticated (handlers see `None`); a token that is
    /// present must still be valid. A layer with a
    /// [`require`](Self::require) check lets no anonymous request through.
    pub fn optional(mut self) -> Self {
        self.policy.optional = true;
        self
    }

    /// Where to read the token; [`TokenSource::Bearer`] by default. Replaces
    /// any source set before; for several, see
    /// [`token_sources`](Self::token_sources).
    ///
    /// # Panics
    ///
    /// When the cookie or header name is not a valid HTTP token (e.g. it
    /// contains a space, `=` or `;`): such a source could never find a
    /// token, and every request would silently be anonymous.
    ///
    /// ```
    /// # use jwt_revoke::{Algorithm, Guard, Keys, MemoryStore};
    /// use jwt_revoke::integrations::{TokenSource, tower::RevokeLayer};
    /// # let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
    /// # let guard = Guard::builder(keys, MemoryStore::new()).build().unwrap();
    /// let layer = RevokeLayer::<_, ()>::new(guard).token_source(TokenSource::Cookie("session"));
    /// ```
    pub fn token_source(mut self, source: TokenSource) -> Self {
        self.policy.set_sources([source]);
        self
    }

    /// Reads the token from several sources in order: the **first source
    /// present in the request decides**, and a bad token there (malformed,
    /// expired, revoked, …) is the answer, never skipped for a later
    /// source. A request that carries none is "missing". Why, and what
    /// "present" means: [`TokenSource`], "Several sources". Replaces any
    /// source set before.
    ///
    /// # Panics
    ///
    /// When the list is empty, or a cookie or header name in it is not a
    /// valid HTTP token (such a source could never find a token).
    ///
    /// ```
    /// # use jwt_revoke::{Algorithm, Guard, Keys, MemoryStore};
    /// use jwt_revoke::integrations::{TokenSource, tower::RevokeLayer};
    /// # let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
    /// # let guard = Guard::builder(keys, MemoryStore::new()).build().unwrap();
    /// // API clients send `Authorization: Bearer`, the browser app a cookie.
    /// let layer = RevokeLayer::<_, ()>::new(guard)
    ///     .token_sources([TokenSource::Bearer, TokenSource::Cookie("session")]);
    /// ```
    pub fn token_sources(mut self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        self.policy.set_sources(sources);
        self
    }

    /// A check on the verified token, e.g. a role for an admin route: a
    /// valid token that fails it is answered 403 with
    /// `WWW-Authenticate: Bearer error="insufficient_scope"` and
    /// `{"error":"insufficient_scope"}` (RFC 6750 §3.1). Several checks must
    /// all pass.
    ///
    /// ```
    /// # use jwt_revoke::{Algorithm, Guard, Keys, MemoryStore, Verified};
    /// use jwt_revoke::integrations::tower::RevokeLayer;
    ///
    /// #[derive(Clone, serde::Deserialize)]
    /// struct Claims {
    ///     role: String,
    /// }
    /// # let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
    /// # let guard = Guard::builder(keys, MemoryStore::new()).build().unwrap();
    /// let admins_only =
    ///     RevokeLayer::<_, Claims>::new(guard).require(|v: &Verified<Claims>| v.claims().role == "admin");
    /// ```
    pub fn require(mut self, check: impl Fn(&Verified<C>) -> bool + Send + Sync + 'static) -> Self {
        self.policy.requirements.push(Arc::new(check));
        self
    }

    /// Shapes the body of every answer the layer refuses with (e.g.
    /// `application/problem+json`, or the application's own envelope). The
    /// status, `WWW-Authenticate`, `Retry-After` and `Cache-Control` stay
    /// the library's; the hook sets `Content-Type` and the body.
    ///
    /// Whatever the body, the [`Rejection`] is in the response extensions,
    /// for outer middleware to log or count the reason.
    ///
    /// The hook also shapes the library's rejections from the routes behind
    /// the layer: the 401 of a required extractor behind an
    /// [`optional`](Self::optional) layer, and a handler's `?` on an
    /// [`Error`](crate::Error).
    ///
    /// ```
    /// # use jwt_revoke::{Algorithm, Guard, Keys, MemoryStore};
    /// use jwt_revoke::integrations::{Rejection, RejectionBody, tower::RevokeLayer};
    /// # let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
    /// # let guard = Guard::builder(keys, MemoryStore::new()).build().unwrap();
    /// let layer = RevokeLayer::<_, ()>::new(guard).on_reject(|r: &Rejection| {
    ///     RejectionBody::new(
    ///         "application/problem+json",
    ///         serde_json::json!({ "type": "about:blank", "status": r.status, "title": r.code })
    ///             .to_string(),
    ///     )
    /// });
    /// ```
    pub fn on_reject(
        mut self,
        hook: impl Fn(&Rejection) -> RejectionBody + Send + Sync + 'static,
    ) -> Self {
        self.policy.on_reject = Some(Arc::new(hook));
        self
    }

    #[cfg(feature = "axum")]
    pub(crate) fn into_policy(self) -> Policy<S, C> {
        self.policy
    }
}

impl<S: CutoffStore, C, Inner> Layer<Inner> for RevokeLayer<S, C> {
    type Service = RevokeService<S, C, Inner>;

    fn layer(&self, inner: Inner) -> Self::Service {
        RevokeService {
            inner,
            policy: Arc::new(self.policy.clone()),
        }
    }
}

/// The service produced by [`RevokeLayer`].
pub struct RevokeService<S: CutoffStore, C, Inner> {
    inner: Inner,
    policy: Arc<Policy<S, C>>,
}

impl<S: CutoffStore, C, Inner: Clone> Clone for RevokeService<S, C, Inner> {
    fn clone(&self) -> Self {
        RevokeService {
            inner: self.inner.clone(),
            policy: Arc::clone(&self.policy),
        }
    }
}

impl<S: CutoffStore, C, Inner> std::fmt::Debug for RevokeService<S, C, Inner> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeService")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Builds the HTTP response for a rejection: status, [`Rejection::headers`]
/// and [`Rejection::body`], with the [`Rejection`] in the response
/// extensions.
pub fn rejection_response<B: From<String>>(rejection: &Rejection) -> Response<B> {
    let mut res = hooked_response(rejection, None);
    res.extensions_mut().insert(DefaultBody);
    res
}

/// A response from behind the layer: a library rejection with the default
/// body gets the hook's body (status and other headers untouched).
fn reshape<B: From<String>>(res: Response<B>, hook: Option<&RejectHook>) -> Response<B> {
    let (Some(hook), Some(rejection), Some(_)) = (
        hook,
        res.extensions().get::<Rejection>(),
        res.extensions().get::<DefaultBody>(),
    ) else {
        return res;
    };
    let custom = hook(rejection);
    let (mut parts, _default) = res.into_parts();
    parts.extensions.remove::<DefaultBody>();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    match HeaderValue::from_str(&custom.content_type) {
        Ok(v) => parts.headers.insert(http::header::CONTENT_TYPE, v),
        Err(_) => parts.headers.remove(http::header::CONTENT_TYPE),
    };
    Response::from_parts(parts, B::from(custom.body))
}

/// [`rejection_response`], with the body from the layer's hook if any
/// (a response with the hook's body is not marked [`DefaultBody`]).
pub(crate) fn hooked_response<B: From<String>>(
    rejection: &Rejection,
    hook: Option<&RejectHook>,
) -> Response<B> {
    let (header_values, body) = rejection.answer(hook);
    let mut res = Response::new(B::from(body));
    *res.status_mut() =
        http::StatusCode::from_u16(rejection.status).unwrap_or(http::StatusCode::UNAUTHORIZED);
    res.extensions_mut().insert(rejection.clone());
    let headers = res.headers_mut();
    for (name, value) in header_values {
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
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            // Copied out: a request body need not be `Sync`, so no borrow of
            // the request may live across the validation.
            let credentials = OwnedCredentials::new(find_credentials(&policy.sources, |name| {
                header_values(req.headers(), name)
            }));
            let decision = policy.decide(credentials.get()).await;
            match decision {
                Ok(verified) => {
                    let checked = match verified {
                        Some(v) => {
                            req.extensions_mut().insert(v);
                            Checked::Authenticated
                        }
                        None => Checked::Anonymous,
                    };
                    req.extensions_mut().insert(checked);
                    let res = inner.call(req).await?;
                    Ok(reshape(res, policy.on_reject.as_ref()))
                }
                Err(r) => Ok(hooked_response(&r, policy.on_reject.as_ref())),
            }
        })
    }
}

/// Every value of a header, in order.
pub(crate) fn header_values<'h>(headers: &'h http::HeaderMap, name: &str) -> Vec<&'h [u8]> {
    headers
        .get_all(name)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect()
}
