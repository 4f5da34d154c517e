//! axum extractors for the identity [`RevokeLayer`](super::tower::RevokeLayer)
//! established.

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use super::{Checked, ExtractError, Rejection, extract};
use crate::claims::Verified;

/// The verified token of the request, inserted by
/// [`RevokeLayer`](super::tower::RevokeLayer).
///
/// As `Option<Authenticated<C>>` it is `None` only when the request carried
/// no `Authorization` header and the layer is
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
///     .layer(RevokeLayer::<_, Claims>::new(guard).optional());
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
