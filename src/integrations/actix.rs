//! actix-web 4: a middleware that validates bearer tokens and an extractor
//! for the verified token.
//!
//! ```
//! use actix_web::{App, HttpResponse, web};
//! use jwt_revoke::integrations::actix::{Authenticated, RevokeMiddleware};
//! use jwt_revoke::{Algorithm, Guard, Keys, MemoryStore};
//!
//! async fn me(user: Authenticated) -> HttpResponse {
//!     HttpResponse::Ok().body(format!("hello {}", user.0.sub()))
//! }
//!
//! let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
//! let guard = Guard::builder(keys, MemoryStore::new()).build().unwrap();
//! let app = App::new()
//!     .wrap(RevokeMiddleware::<_, ()>::new(guard))
//!     .route("/me", web::get().to(me));
//! ```

use std::future::{Future, Ready, ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;

use super::{Checked, Credentials, MISSING_LAYER, Rejection, bearer_credentials};
use crate::claims::Verified;
use crate::guard::Guard;
use crate::store::CutoffStore;

/// Builds the actix response for a rejection (same as the tower layer's).
pub fn rejection_response(rejection: &Rejection) -> HttpResponse {
    let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(value) = rejection
        .www_authenticate
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        res.insert_header((header::WWW_AUTHENTICATE, value));
    }
    if let Some(secs) = rejection.retry_after {
        res.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    res.body(rejection.body())
}

/// Validates `Authorization: Bearer` tokens; on success the
/// [`Verified<C>`](crate::Verified) goes into the request extensions.
pub struct RevokeMiddleware<S: CutoffStore, C = ()> {
    guard: Guard<S>,
    optional: bool,
    _claims: PhantomData<fn() -> C>,
}

impl<S: CutoffStore, C> RevokeMiddleware<S, C> {
    /// Every request must carry a valid token.
    pub fn new(guard: Guard<S>) -> Self {
        RevokeMiddleware {
            guard,
            optional: false,
            _claims: PhantomData,
        }
    }

    /// Requests without an `Authorization` header pass through
    /// unauthenticated; a header that is present must still be valid.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
}

impl<S, C, Svc, B> Transform<Svc, ServiceRequest> for RevokeMiddleware<S, C>
where
    S: CutoffStore,
    C: DeserializeOwned + Clone + 'static,
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RevokeService<S, C, Svc>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: Svc) -> Self::Future {
        ready(Ok(RevokeService {
            service: Rc::new(service),
            guard: self.guard.clone(),
            optional: self.optional,
            _claims: PhantomData,
        }))
    }
}

/// The service produced by [`RevokeMiddleware`].
pub struct RevokeService<S: CutoffStore, C, Svc> {
    service: Rc<Svc>,
    guard: Guard<S>,
    optional: bool,
    _claims: PhantomData<fn() -> C>,
}

impl<S, C, Svc, B> Service<ServiceRequest> for RevokeService<S, C, Svc>
where
    S: CutoffStore,
    C: DeserializeOwned + Clone + 'static,
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let guard = self.guard.clone();
        let optional = self.optional;
        Box::pin(async move {
            let token = match bearer_credentials(
                req.headers()
                    .get(header::AUTHORIZATION)
                    .map(|v| v.as_bytes()),
            ) {
                Credentials::Missing if optional => None,
                Credentials::Missing => Some(Err(Rejection::missing_token())),
                Credentials::Invalid => Some(Err(Rejection::invalid_request())),
                Credentials::Bearer(t) => Some(Ok(t.to_owned())),
            };
            let outcome = match token {
                None => Ok(None),
                Some(Err(r)) => Err(r),
                Some(Ok(t)) => guard
                    .validate::<C>(&t)
                    .await
                    .map(Some)
                    .map_err(|e| Rejection::from_error(&e)),
            };
            match outcome {
                Ok(verified) => {
                    {
                        let mut ext = req.extensions_mut();
                        ext.insert(Checked);
                        if let Some(v) = verified {
                            ext.insert(v);
                        }
                    }
                    service
                        .call(req)
                        .await
                        .map(ServiceResponse::map_into_left_body)
                }
                Err(r) => Ok(req
                    .into_response(rejection_response(&r))
                    .map_into_right_body()),
            }
        })
    }
}

/// The verified token of the request, inserted by [`RevokeMiddleware`].
/// Without the middleware, extraction fails with a 500 that names it.
#[derive(Debug, Clone)]
pub struct Authenticated<C = ()>(pub Verified<C>);

/// Like [`Authenticated`], but `None` when the request carried no
/// `Authorization` header (with an [`optional`](RevokeMiddleware::optional)
/// middleware). actix's own `Option<T>` extractor would also turn a missing
/// middleware into `None`; this one fails loudly instead.
#[derive(Debug, Clone)]
pub struct MaybeAuthenticated<C = ()>(pub Option<Verified<C>>);

/// The middleware is not installed on the route (a 500).
#[derive(Debug, Clone, Copy)]
pub struct MissingMiddleware;

impl std::fmt::Display for MissingMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MISSING_LAYER)
    }
}

impl ResponseError for MissingMiddleware {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

impl<C: Clone + 'static> FromRequest for Authenticated<C> {
    type Error = MissingMiddleware;
    type Future = Ready<Result<Self, MissingMiddleware>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Verified<C>>()
                .cloned()
                .map(Authenticated)
                .ok_or(MissingMiddleware),
        )
    }
}

impl<C: Clone + 'static> FromRequest for MaybeAuthenticated<C> {
    type Error = MissingMiddleware;
    type Future = Ready<Result<Self, MissingMiddleware>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ext = req.extensions();
        ready(match ext.get::<Verified<C>>() {
            Some(v) => Ok(MaybeAuthenticated(Some(v.clone()))),
            None if ext.get::<Checked>().is_some() => Ok(MaybeAuthenticated(None)),
            None => Err(MissingMiddleware),
        })
    }
}
