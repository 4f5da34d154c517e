//! axum: extractors for the identity [`RevokeLayer`]
//! established ([`Authenticated`]), an extractor that validates by itself
//! ([`Validated`]), and [`IntoResponse`] for [`Error`] and [`Rejection`].
//!
//! # Layer the routes, not the router
//!
//! Put the layer on the routes that need it with
//! [`route_layer`](https://docs.rs/axum/0.8/axum/struct.Router.html#method.route_layer),
//! not on the whole router with `layer`: a router-wide layer runs before
//! routing, so a request for a path that does not exist gets a 401 instead of
//! its 404, and public routes added later are authenticated too.
//! `Router::route_layer` covers the routes added before it and leaves unknown
//! paths at 404 (a wrong method on a protected path is authenticated before
//! its 405; `get(handler).route_layer(layer)` on the method router keeps the
//! 405 as well). This is the example of the README, kept identical to it by
//! a test (README snippet):
//!
//! ```
//! # use jwt_revoke::{Algorithm, Guard, Keys, MemoryStore};
//! use axum::{Router, routing::get};
//! use jwt_revoke::Verified;
//! use jwt_revoke::integrations::{axum::Authenticated, tower::RevokeLayer};
//!
//! #[derive(Clone, serde::Deserialize)]
//! struct MyClaims {
//!     role: String,
//! }
//!
//! async fn me(Authenticated(user): Authenticated<MyClaims>) -> String {
//!     user.sub().to_owned()
//! }
//!
//! async fn admin(Authenticated(user): Authenticated<MyClaims>) -> String {
//!     format!("{} ({})", user.sub(), user.claims().role)
//! }
//!
//! # let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
//! # let guard = Guard::builder(keys, MemoryStore::new()).build().unwrap();
//! // The claims type is named: the layer parses the claims before any handler runs.
//! let signed_in = RevokeLayer::<_, MyClaims>::new(guard.clone());
//! let admins = signed_in
//!     .clone()
//!     .require(|v: &Verified<MyClaims>| v.claims().role == "admin"); // else 403
//!
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route_layer(signed_in) // the routes above; unknown paths stay 404
//!     .merge(Router::new().route("/admin", get(admin)).route_layer(admins))
//!     .route("/health", get(|| async { "ok" })); // public
//! ```

use axum_core::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use serde::de::DeserializeOwned;

pub use super::Validator;
use super::tower::{RevokeLayer, header_values, hooked_response, rejection_response};
use super::{Checked, Credentials, ExtractError, RejectHook, Rejection, extract, find_credentials};
use crate::claims::Verified;
use crate::error::Error;
use crate::store::CutoffStore;

/// The verified token of the request, inserted by
/// [`RevokeLayer`].
///
/// As `Option<Authenticated<C>>` it is `None` only when the request carried
/// no token (no `Authorization: Bearer`, or none in the layer's
/// [`TokenSource`](super::TokenSource)) and the layer is
/// [`optional`](super::tower::RevokeLayer::optional); a bad token is still
/// rejected by the layer. As plain `Authenticated<C>` behind an optional
/// layer, a request without a header gets the same 401 the required layer
/// answers. Wiring mistakes fail with a 500 that says what to fix
/// ([`ExtractError`]): no layer on the route, or a layer validating another
/// claims type `C` (which would otherwise look like an anonymous request).
///
/// ```
/// use axum::{Router, routing::get};
/// use jwt_revoke::integrations::axum::Authenticated;
/// use jwt_revoke::integrations::tower::RevokeLayer;
/// use jwt_revoke::{Algorithm, Guard, Keys, MemoryStore};
///
/// #[derive(Clone, serde::Deserialize)]
/// struct Claims {
///     role: String,
/// }
///
/// // Anonymous visitors are welcome here; a bad token is still a 401.
/// async fn home(user: Option<Authenticated<Claims>>) -> String {
///     match user {
///         Some(Authenticated(v)) => format!("{} ({})", v.sub(), v.claims().role),
///         None => "hello stranger".to_owned(),
///     }
/// }
///
/// // Requires a token: a request without one gets the layer's 401.
/// async fn me(Authenticated(v): Authenticated<Claims>) -> String {
///     v.sub().to_owned()
/// }
///
/// let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
/// let guard = Guard::builder(keys, MemoryStore::new()).build().unwrap();
/// let app: Router = Router::new()
///     .route("/", get(home))
///     .route("/me", get(me))
///     .route_layer(RevokeLayer::<_, Claims>::new(guard).optional());
/// ```
#[derive(Debug, Clone)]
pub struct Authenticated<C = ()>(pub Verified<C>);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        super::tower::rejection_response(&self)
    }
}

impl IntoResponse for ExtractError {
    fn into_response(self) -> Response {
        match self.rejection() {
            Some(r) => r.into_response(),
            None => (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response(),
        }
    }
}

fn extract_parts<C: Clone + Send + Sync + 'static>(
    parts: &Parts,
) -> Result<Option<Authenticated<C>>, ExtractError> {
    let extensions = &parts.extensions;
    extract(extensions.get::<Verified<C>>(), extensions.get::<Checked>())
        .map(|v| v.map(Authenticated))
}

impl<St, C> FromRequestParts<St> for Authenticated<C>
where
    St: Send + Sync,
    C: Clone + Send + Sync + 'static,
{
    type Rejection = ExtractError;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        extract_parts(parts)?.ok_or(ExtractError::MissingToken)
    }
}

impl<St, C> OptionalFromRequestParts<St> for Authenticated<C>
where
    St: Send + Sync,
    C: Clone + Send + Sync + 'static,
{
    type Rejection = ExtractError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &St,
    ) -> Result<Option<Self>, Self::Rejection> {
        extract_parts(parts)
    }
}

/// The answer for a guard error, as the layer gives it: a handler returning
/// `Result<_, jwt_revoke::Error>` can use `?` on the guard's calls (e.g. a
/// login answering 503 with `Retry-After` on [`Error::RetryLater`]).
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Rejection::from_error(&self).into_response()
    }
}

/// The layer's settings as a [`Validator`] for [`Validated`].
impl<S: CutoffStore, C: DeserializeOwned + Send + Sync + 'static> From<RevokeLayer<S, C>>
    for Validator<C>
{
    /// Whether the layer is `optional` does not matter here:
    /// [`Validated`] requires a token, `Option<Validated>` does not.
    fn from(layer: RevokeLayer<S, C>) -> Self {
        Validator::from_policy(layer.into_policy())
    }
}

/// A token validated by the extractor itself, for apps that prefer
/// extractors to layers: it takes a [`Validator<C>`] from the router state
/// through [`FromRef`] and gives exactly the layer's answers (status,
/// `WWW-Authenticate`, `Retry-After`, JSON body, the hook's body if any).
///
/// As `Option<Validated<C>>` it is `None` when the request carries no token;
/// a token that is present must be valid. No layer is needed (and a
/// [`RevokeLayer`] on the same route would
/// validate the token twice: use [`Authenticated`] behind a layer).
///
/// ```
/// use axum::extract::FromRef;
/// use axum::{Router, routing::get};
/// use jwt_revoke::integrations::axum::{Validated, Validator};
/// use jwt_revoke::{Algorithm, Guard, Keys, MemoryStore};
///
/// #[derive(Clone)]
/// struct AppState {
///     validator: Validator,
///     // … the application's own state
/// }
///
/// impl FromRef<AppState> for Validator {
///     fn from_ref(state: &AppState) -> Self {
///         state.validator.clone()
///     }
/// }
///
/// async fn me(Validated(user): Validated) -> String {
///     user.sub().to_owned()
/// }
///
/// let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
/// let guard = Guard::builder(keys, MemoryStore::new()).build().unwrap();
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     .with_state(AppState { validator: Validator::new(guard) });
/// ```
#[derive(Debug, Clone)]
pub struct Validated<C = ()>(pub Verified<C>);

impl<C: Send + Sync + 'static> Validator<C> {
    /// `Ok(None)`: no token at all.
    async fn validate_parts(&self, parts: &Parts) -> Result<Option<Verified<C>>, Response> {
        let check = self.check();
        let credentials =
            find_credentials(check.sources(), |name| header_values(&parts.headers, name));
        let outcome = match credentials {
            Credentials::Missing => Ok(None),
            Credentials::Invalid => Err(Rejection::invalid_request()),
            Credentials::Bearer(token) => check.verify(token).await.map(Some),
        };
        outcome.map_err(|r| answer(&r, check.hook()))
    }
}

/// The response for a rejection, with the validator's hook if any.
fn answer(rejection: &Rejection, hook: Option<&RejectHook>) -> Response {
    match hook {
        Some(hook) => hooked_response(rejection, Some(hook)),
        None => rejection_response(rejection),
    }
}

impl<St, C> FromRequestParts<St> for Validated<C>
where
    Validator<C>: FromRef<St>,
    St: Send + Sync,
    C: Send + Sync + 'static,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let validator = Validator::<C>::from_ref(state);
        match validator.validate_parts(parts).await? {
            Some(v) => Ok(Validated(v)),
            None => Err(answer(
                &Rejection::missing_token(),
                validator.check().hook(),
            )),
        }
    }
}

impl<St, C> OptionalFromRequestParts<St> for Validated<C>
where
    Validator<C>: FromRef<St>,
    St: Send + Sync,
    C: Send + Sync + 'static,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &St,
    ) -> Result<Option<Self>, Self::Rejection> {
        let validator = Validator::<C>::from_ref(state);
        Ok(validator.validate_parts(parts).await?.map(Validated))
    }
}
