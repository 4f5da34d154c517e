//! axum extractors for the identity [`RevokeLayer`](super::tower::RevokeLayer)
//! established.

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use super::{Checked, MISSING_LAYER, Rejection};
use crate::claims::Verified;

/// The verified token of the request, inserted by
/// [`RevokeLayer`](super::tower::RevokeLayer).
///
/// As `Option<Authenticated<C>>` it is `None` only when the request carried
/// no `Authorization` header and the layer is
/// [`optional`](super::tower::RevokeLayer::optional); a bad token is still
/// rejected by the layer. Without the layer, extraction fails with a 500
/// that names it, rather than a misleading 401.
///
/// See [`RevokeLayer`](super::tower::RevokeLayer) for a complete example.
#[derive(Debug, Clone)]
pub struct Authenticated<C = ()>(pub Verified<C>);

/// Extraction failed because [`RevokeLayer`](super::tower::RevokeLayer) is
/// not installed on the route (a 500).
#[derive(Debug, Clone, Copy)]
pub struct MissingLayer;

impl IntoResponse for MissingLayer {
    fn into_response(self) -> Response {
        (http::StatusCode::INTERNAL_SERVER_ERROR, MISSING_LAYER).into_response()
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        super::tower::rejection_response(&self)
    }
}

impl<St, C> FromRequestParts<St> for Authenticated<C>
where
    St: Send + Sync,
    C: Clone + Send + Sync + 'static,
{
    type Rejection = MissingLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Verified<C>>()
            .cloned()
            .map(Authenticated)
            .ok_or(MissingLayer)
    }
}

impl<St, C> OptionalFromRequestParts<St> for Authenticated<C>
where
    St: Send + Sync,
    C: Clone + Send + Sync + 'static,
{
    type Rejection = MissingLayer;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &St,
    ) -> Result<Option<Self>, Self::Rejection> {
        match parts.extensions.get::<Verified<C>>() {
            Some(v) => Ok(Some(Authenticated(v.clone()))),
            None if parts.extensions.get::<Checked>().is_some() => Ok(None),
            None => Err(MissingLayer),
        }
    }
}
