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
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;

use super::{Checked, Credentials, ExtractError, Rejection, bearer_credentials, extract};
use crate::claims::Verified;
use crate::guard::Guard;
use crate::store::CutoffStore;

/// Builds the actix response for a rejection: status,
/// [`Rejection::headers`] and [`Rejection::body`], as the tower layer does.
pub fn rejection_response(rejection: &Rejection) -> HttpResponse {
    let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut res = HttpResponse::build(status);
    for header in rejection.headers() {
        res.insert_header(header);
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
                        match verified {
                            Some(v) => {
                                ext.insert(v);
                                ext.insert(Checked::Authenticated);
                            }
                            None => {
                                ext.insert(Checked::Anonymous);
                            }
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
///
/// Behind an [`optional`](RevokeMiddleware::optional) middleware, a request
/// without an `Authorization` header gets the same 401 the required
/// middleware answers. Wiring mistakes fail with a 500 that says what to fix
/// ([`ExtractError`]): no middleware on the route, or a middleware
/// validating another claims type `C`. See the [module](self) example.
#[derive(Debug, Clone)]
pub struct Authenticated<C = ()>(pub Verified<C>);

/// Like [`Authenticated`], but `None` when the request carried no
/// `Authorization` header (with an [`optional`](RevokeMiddleware::optional)
/// middleware); a header that is present must still hold a valid token.
/// actix's own `Option<T>` extractor would also turn a missing middleware or
/// a claims-type mismatch into `None`; this one fails loudly instead.
///
/// ```
/// use actix_web::{App, web};
/// use jwt_revoke::integrations::actix::{MaybeAuthenticated, RevokeMiddleware};
/// use jwt_revoke::{Algorithm, Guard, Keys, MemoryStore};
///
/// async fn home(user: MaybeAuthenticated) -> String {
///     match user.0 {
///         Some(v) => format!("hello {}", v.sub()),
///         None => "hello stranger".to_owned(),
///     }
/// }
///
/// let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
/// let guard = Guard::builder(keys, MemoryStore::new()).build().unwrap();
/// let app = App::new()
///     .wrap(RevokeMiddleware::<_, ()>::new(guard).optional())
///     .route("/", web::get().to(home));
/// ```
#[derive(Debug, Clone)]
pub struct MaybeAuthenticated<C = ()>(pub Option<Verified<C>>);

impl ResponseError for ExtractError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        match self.rejection() {
            Some(r) => rejection_response(&r),
            None => HttpResponse::build(self.status_code())
                .content_type("text/plain; charset=utf-8")
                .body(self.to_string()),
        }
    }
}

fn extract_request<C: Clone + 'static>(
    req: &HttpRequest,
) -> Result<Option<Verified<C>>, ExtractError> {
    let ext = req.extensions();
    extract(ext.get::<Verified<C>>(), ext.get::<Checked>())
}

impl<C: Clone + 'static> FromRequest for Authenticated<C> {
    type Error = ExtractError;
    type Future = Ready<Result<Self, ExtractError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            extract_request(req)
                .and_then(|v| v.map(Authenticated).ok_or(ExtractError::MissingToken)),
        )
    }
}

impl<C: Clone + 'static> FromRequest for MaybeAuthenticated<C> {
    type Error = ExtractError;
    type Future = Ready<Result<Self, ExtractError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(extract_request(req).map(MaybeAuthenticated))
    }
}
