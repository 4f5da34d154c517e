//! actix-web 4: a middleware that validates tokens ([`RevokeMiddleware`]),
//! extractors for the verified token ([`Authenticated`],
//! [`MaybeAuthenticated`]), extractors that validate by themselves without
//! a middleware ([`Validated`], [`MaybeValidated`]), and [`ResponseError`]
//! for [`Error`] and [`Rejection`].
//!
//! # Wrap the scopes that need it, not the app
//!
//! Wrap the scopes or resources that need authentication, not the whole
//! `App`: an app-wide middleware runs before routing, so a request for a
//! path that does not exist gets a 401 instead of its 404, and public routes
//! are authenticated too. (Inside a wrapped scope, unknown paths are the
//! scope's, and authenticated first.) This is the example of docs/web-frameworks.md,
//! kept identical to it by a test (README snippet):
//!
//! ```
//! # use jwt_revoke::{Algorithm, Guard, Keys, MemoryStore};
//! use actix_web::{App, web};
//! use jwt_revoke::Verified;
//! use jwt_revoke::integrations::actix::{Authenticated, RevokeMiddleware};
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
//! // The claims type is named: the middleware parses the claims before any handler runs.
//! let signed_in = RevokeMiddleware::<_, MyClaims>::new(guard.clone());
//! let admins = signed_in
//!     .clone()
//!     .require(|v: &Verified<MyClaims>| v.claims().role == "admin"); // else 403
//!
//! let app = App::new()
//!     .service(web::scope("/api").wrap(signed_in).route("/me", web::get().to(me)))
//!     .service(web::resource("/admin").wrap(admins).get(admin))
//!     .route("/health", web::get().to(|| async { "ok" })); // public; unknown paths stay 404
//! ```

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;

use super::{
    Checked, Credentials, DefaultBody, ExtractError, Policy, RejectHook, Rejection, RejectionBody,
    TokenSource, Validator, extract, find_credentials,
};
use crate::claims::Verified;
use crate::error::Error;
use crate::guard::Guard;
use crate::store::CutoffStore;

/// Builds the actix response for a rejection: status,
/// [`Rejection::headers`] and [`Rejection::body`], as the tower layer does,
/// with the [`Rejection`] in the response extensions.
pub fn rejection_response(rejection: &Rejection) -> HttpResponse {
    let mut res = hooked_response(rejection, None);
    res.extensions_mut().insert(DefaultBody);
    res
}

/// A response from behind the middleware: a library rejection with the
/// default body gets the hook's body (status and other headers untouched).
fn reshape<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
    hook: Option<&RejectHook>,
) -> ServiceResponse<EitherBody<B>> {
    let custom = match hook {
        Some(hook) => {
            let ext = res.response().extensions();
            match (ext.get::<Rejection>(), ext.get::<DefaultBody>()) {
                (Some(rejection), Some(_)) => Some(hook(rejection)),
                _ => None,
            }
        }
        None => None,
    };
    let Some(custom) = custom else {
        return res.map_into_left_body();
    };
    let (req, res) = res.into_parts();
    let mut res = res.set_body(custom.body);
    res.extensions_mut().remove::<DefaultBody>();
    let headers = res.headers_mut();
    headers.remove(header::CONTENT_LENGTH);
    match header::HeaderValue::from_str(&custom.content_type) {
        Ok(v) => headers.insert(header::CONTENT_TYPE, v),
        Err(_) => headers.remove(header::CONTENT_TYPE),
    };
    ServiceResponse::new(req, res.map_into_boxed_body()).map_into_right_body()
}

/// [`rejection_response`], with the body from the middleware's hook if any.
fn hooked_response(rejection: &Rejection, hook: Option<&RejectHook>) -> HttpResponse {
    let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::UNAUTHORIZED);
    let (headers, body) = rejection.answer(hook);
    let mut res = HttpResponse::build(status);
    for header in headers {
        res.insert_header(header);
    }
    let mut res = res.body(body);
    res.extensions_mut().insert(rejection.clone());
    res
}

/// The answer for a guard error, as the middleware gives it: lets `?` on a
/// [`jwt_revoke::Error`](crate::Error) work in handlers returning
/// `Result<_, actix_web::Error>`.
impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(Error::status(self)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        rejection_response(&Rejection::from_error(self))
    }
}

/// A [`Rejection`] answers itself, e.g. from a handler returning
/// `Result<_, Rejection>`.
impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::UNAUTHORIZED)
    }

    fn error_response(&self) -> HttpResponse {
        rejection_response(self)
    }
}

/// Validates tokens (`Authorization: Bearer` unless another
/// [`token_source`](Self::token_source), or several
/// [`token_sources`](Self::token_sources), are set); on success the
/// [`Verified<C>`](crate::Verified) goes into the request extensions.
///
/// The builder methods are those of the tower layer
/// ([`RevokeLayer`](super::tower::RevokeLayer) when the `tower` feature is
/// on), with the same answers.
pub struct RevokeMiddleware<S: CutoffStore, C = ()> {
    policy: Policy<S, C>,
}

impl<S: CutoffStore, C> Clone for RevokeMiddleware<S, C> {
    fn clone(&self) -> Self {
        RevokeMiddleware {
            policy: self.policy.clone(),
        }
    }
}

impl<S: CutoffStore, C> std::fmt::Debug for RevokeMiddleware<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeMiddleware")
            .field("policy", &self.policy)
            .finish()
    }
}

impl<S: CutoffStore, C> RevokeMiddleware<S, C> {
    /// Every request must carry a valid token.
    pub fn new(guard: Guard<S>) -> Self {
        RevokeMiddleware {
            policy: Policy::new(guard),
        }
    }

    /// Requests without a token pass through unauthenticated; a token that
    /// is present must still be valid. A middleware with a
    /// [`require`](Self::require) check lets no anonymous request through.
    pub fn optional(mut self) -> Self {
        self.policy.optional = true;
        self
    }

    /// Where to read the token; [`TokenSource::Bearer`] by default.
    /// Replaces any source set before; for several, see
    /// [`token_sources`](Self::token_sources).
    ///
    /// # Panics
    ///
    /// When the cookie or header name is not a valid HTTP token: such a
    /// source could never find a token.
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
    /// use jwt_revoke::integrations::{TokenSource, actix::RevokeMiddleware};
    /// # let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
    /// # let guard = Guard::builder(keys, MemoryStore::new()).build().unwrap();
    /// // API clients send `Authorization: Bearer`, the browser app a cookie.
    /// let middleware = RevokeMiddleware::<_, ()>::new(guard)
    ///     .token_sources([TokenSource::Bearer, TokenSource::Cookie("session")]);
    /// ```
    pub fn token_sources(mut self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        self.policy.set_sources(sources);
        self
    }

    /// A check on the verified token: a valid token that fails it is
    /// answered 403 `insufficient_scope` (RFC 6750 §3.1). Several checks
    /// must all pass.
    pub fn require(mut self, check: impl Fn(&Verified<C>) -> bool + Send + Sync + 'static) -> Self {
        self.policy.requirements.push(Arc::new(check));
        self
    }

    /// Shapes the body of every answer the middleware refuses with; the
    /// status, `WWW-Authenticate`, `Retry-After` and `Cache-Control` stay
    /// the library's. The [`Rejection`] is in the response extensions
    /// (`res.response().extensions()`) for outer middleware. The hook also
    /// shapes the library's rejections from the routes behind the
    /// middleware (a required extractor behind an optional middleware, a
    /// handler returning an [`Error`]).
    pub fn on_reject(
        mut self,
        hook: impl Fn(&Rejection) -> RejectionBody + Send + Sync + 'static,
    ) -> Self {
        self.policy.on_reject = Some(Arc::new(hook));
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
            policy: Rc::new(self.policy.clone()),
        }))
    }
}

/// The service produced by [`RevokeMiddleware`].
pub struct RevokeService<S: CutoffStore, C, Svc> {
    service: Rc<Svc>,
    policy: Rc<Policy<S, C>>,
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
        let policy = Rc::clone(&self.policy);
        Box::pin(async move {
            let outcome = {
                let headers = req.headers();
                let credentials =
                    find_credentials(&policy.sources, |name| header_values(headers, name));
                policy.decide(credentials).await
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
                    let res = service.call(req).await?;
                    Ok(reshape(res, policy.on_reject.as_ref()))
                }
                Err(r) => Ok(req
                    .into_response(hooked_response(&r, policy.on_reject.as_ref()))
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

/// The middleware's settings as a [`Validator`] for [`Validated`]: token
/// source, requirements and rejection hook. Whether it is `optional` does
/// not matter: [`Validated`] requires a token, [`MaybeValidated`] does not.
impl<S: CutoffStore, C: DeserializeOwned + Send + Sync + 'static> From<RevokeMiddleware<S, C>>
    for Validator<C>
{
    fn from(middleware: RevokeMiddleware<S, C>) -> Self {
        Validator::from_policy(middleware.policy)
    }
}

/// A token validated by the extractor itself, for apps that prefer
/// extractors to middleware: it takes the [`Validator<C>`] from the app
/// data (`App::app_data(web::Data::new(validator))`, or the validator
/// itself as app data) and gives exactly the middleware's answers (status,
/// `WWW-Authenticate`, `Retry-After`, JSON body, the hook's body if any).
///
/// No middleware is needed (and a [`RevokeMiddleware`] on the same route
/// would validate the token twice: use [`Authenticated`] behind one). A
/// route whose app has no `Validator<C>` answers a plain-text 500 naming
/// the missing app data, not a 401.
///
/// ```
/// use actix_web::{App, web};
/// use jwt_revoke::integrations::Validator;
/// use jwt_revoke::integrations::actix::{MaybeValidated, Validated};
/// use jwt_revoke::{Algorithm, Guard, Keys, MemoryStore};
///
/// async fn me(Validated(user): Validated) -> String {
///     user.sub().to_owned()
/// }
///
/// // Anonymous visitors are welcome; a bad token is still a 401.
/// async fn home(MaybeValidated(user): MaybeValidated) -> String {
///     user.map_or_else(|| "hello stranger".to_owned(), |v| format!("hello {}", v.sub()))
/// }
///
/// let keys = Keys::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes").unwrap();
/// let guard = Guard::builder(keys, MemoryStore::new()).build().unwrap();
/// let validator: Validator = Validator::new(guard);
/// let app = App::new()
///     .app_data(web::Data::new(validator))
///     .route("/", web::get().to(home))
///     .route("/me", web::get().to(me));
/// ```
#[derive(Debug, Clone)]
pub struct Validated<C = ()>(pub Verified<C>);

/// Like [`Validated`], but `None` when the request carries no token; a
/// token that is present must be valid. (actix's own `Option<Validated>`
/// would turn every rejection, a bad token included, into `None`.)
#[derive(Debug, Clone)]
pub struct MaybeValidated<C = ()>(pub Option<Verified<C>>);

/// The app's `Validator<C>`: as `web::Data`, or as plain app data.
fn app_validator<C: 'static>(req: &HttpRequest) -> Result<Validator<C>, actix_web::Error> {
    if let Some(data) = req.app_data::<actix_web::web::Data<Validator<C>>>() {
        return Ok(Validator::clone(data));
    }
    if let Some(validator) = req.app_data::<Validator<C>>() {
        return Ok(validator.clone());
    }
    let claims = std::any::type_name::<C>();
    let message = format!(
        "jwt-revoke: the Validated extractor found no Validator<{claims}> in the app data: \
         add .app_data(web::Data::new(Validator::<{claims}>::new(guard))) to the App \
         (or wrap the route in RevokeMiddleware and use Authenticated)"
    );
    let response = HttpResponse::InternalServerError()
        .content_type("text/plain; charset=utf-8")
        .body(message.clone());
    Err(actix_web::error::InternalError::from_response(message, response).into())
}

/// Every value of a header, in order.
fn header_values<'h>(headers: &'h header::HeaderMap, name: &str) -> Vec<&'h [u8]> {
    headers.get_all(name).map(|v| v.as_bytes()).collect()
}

/// The answer for a rejection, with the validator's hook if any.
fn validated_rejection(rejection: Rejection, hook: Option<&RejectHook>) -> actix_web::Error {
    let response = match hook {
        Some(hook) => hooked_response(&rejection, Some(hook)),
        None => rejection_response(&rejection),
    };
    actix_web::error::InternalError::from_response(rejection, response).into()
}

type ValidatedFuture<T> = Pin<Box<dyn Future<Output = Result<T, actix_web::Error>>>>;

/// `Ok(None)`: no token at all, which a `required` extractor answers with
/// the 401 `missing_token`.
fn validate_request<C: 'static>(
    req: &HttpRequest,
    required: bool,
) -> ValidatedFuture<Option<Verified<C>>> {
    let validator = match app_validator::<C>(req) {
        Ok(v) => v,
        Err(e) => return Box::pin(ready(Err(e))),
    };
    let check = validator.check();
    let token = {
        let headers = req.headers();
        match find_credentials(check.sources(), |name| header_values(headers, name)) {
            Credentials::Missing if required => Err(Rejection::missing_token()),
            Credentials::Missing => Ok(None),
            Credentials::Invalid => Err(Rejection::invalid_request()),
            Credentials::Bearer(token) => Ok(Some(token.to_owned())),
        }
    };
    let token = match token {
        Ok(Some(token)) => token,
        Ok(None) => return Box::pin(ready(Ok(None))),
        Err(r) => return Box::pin(ready(Err(validated_rejection(r, check.hook())))),
    };
    Box::pin(async move {
        let check = validator.check();
        match check.verify(&token).await {
            Ok(v) => Ok(Some(v)),
            Err(r) => Err(validated_rejection(r, check.hook())),
        }
    })
}

impl<C: 'static> FromRequest for Validated<C> {
    type Error = actix_web::Error;
    type Future = ValidatedFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let validated = validate_request::<C>(req, true);
        Box::pin(async move {
            match validated.await? {
                Some(v) => Ok(Validated(v)),
                // A required extractor never gets `None` (answered above).
                None => Err(validated_rejection(Rejection::missing_token(), None)),
            }
        })
    }
}

impl<C: 'static> FromRequest for MaybeValidated<C> {
    type Error = actix_web::Error;
    type Future = ValidatedFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let validated = validate_request::<C>(req, false);
        Box::pin(async move { validated.await.map(MaybeValidated) })
    }
}
